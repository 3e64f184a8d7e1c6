//! What a connection holds: the TCB stays within its size goal, and the parts allocated on
//! first use (recovery, transmit, reception, out-of-order, answer limits, liveness, events)
//! are not allocated until something needs them.

use std::sync::Arc;

use super::harness::*;
use crate::tcp::handshake::Handshake;
use crate::tcp::{Connection, Event, State};
use crate::time::{Duration, Instant};

/// Issue 20's goal for `size_of::<tcp::Connection>()` (`synack-bench sizes` itemises it).
const SIZE_GOAL: usize = 512;

#[test]
fn the_tcb_fits_its_size_goal() {
    let size = size_of::<Connection>();
    assert!(
        size <= SIZE_GOAL,
        "size_of::<Connection>() = {size} > {SIZE_GOAL}"
    );
}

/// Drains the trace events, which frees their queue.
fn drain_events(c: &mut Connection) -> usize {
    std::iter::from_fn(|| c.poll_event()).count()
}

/// The parts allocated on first use that `c` holds, by name.
fn allocated(c: &Connection) -> Vec<&'static str> {
    let parts = [
        ("recovery", c.recovery.is_some()),
        ("transmit", c.snd.tx.is_some()),
        ("reception", c.rcv.data.is_some()),
        ("out-of-order", c.rcv.ooo.is_some()),
        ("answer limits", c.rcv.limits.is_some()),
        ("liveness", c.opts.liveness.is_some()),
        ("events", c.events.is_some()),
    ];
    parts.iter().filter(|p| p.1).map(|p| p.0).collect()
}

#[test]
fn an_idle_established_connection_holds_nothing_allocated_on_first_use() {
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    p.run_for(Duration::from_secs(1));
    assert!(drain_events(&mut p.a) > 0 && drain_events(&mut p.b) > 0);
    assert_eq!(allocated(&p.a), Vec::<&str>::new(), "client");
    assert_eq!(allocated(&p.b), Vec::<&str>::new(), "server");
    assert_eq!(p.a.snd.sb.len(), 0);

    // The same for a connection built from a SYN-queue entry or a cookie.
    let cfg = Arc::new(config());
    let hs = Handshake {
        iss: SERVER_ISS,
        irs: CLIENT_ISS,
        mss: Some(MSS),
        window_scale: Some(7),
        sack_permitted: true,
        ts_recent: Some(1),
        synack_sent: Some(Instant::ZERO),
        retransmits: 0,
        ecn: true,
    };
    let c = Connection::from_handshake(cfg, SERVER, CLIENT, MSS, 0, Instant::ZERO, &hs);
    assert_eq!(allocated(&c), Vec::<&str>::new(), "from a handshake");
}

#[test]
fn in_order_data_allocates_only_the_transmit_and_reception_state() {
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    let data = pattern(4000, 1);
    assert!(p.transfer_a_to_b(&data, Duration::from_secs(10)) == data);
    p.run_for(Duration::from_secs(1));
    drain_events(&mut p.a);
    drain_events(&mut p.b);
    assert_eq!(allocated(&p.a), ["transmit"], "sender");
    assert_eq!(allocated(&p.b), ["reception"], "receiver");
}

#[test]
fn a_lost_segment_allocates_recovery_and_reassembly_state_until_repaired() {
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    let mss = p.a.info().snd_mss as usize;
    let data = pattern(10 * mss, 2);
    // Segments from a so far: SYN (0), ACK (1); drop the second data segment.
    p.drop_a_to_b.push(3);
    assert!(p.transfer_a_to_b(&data, Duration::from_secs(10)) == data);
    // The sender retransmitted, and gives its recovery state back once everything is
    // acknowledged; what outlives it (the counters TCP_INFO reports) is kept.
    assert!(p.a.recovery.is_some(), "the sender retransmitted");
    p.run_until(|p| p.a.snd.una == p.a.snd.max, Duration::from_secs(5));
    assert!(p.a.recovery.is_none(), "recovery state given back");
    assert!(p.a.snd.tx.as_ref().is_some_and(|t| t.carried.is_some()));
    // The receiver held data out of order, and gave its reassembly record back once the
    // hole was filled and the ACK saying so went out.
    assert!(p.ctr_b.ofo_queue > 0, "the receiver held data out of order");
    assert!(p.b.rcv.ooo.is_none(), "reassembly state given back");
    assert_eq!(p.a.info().retransmits, 1);
}

#[test]
fn without_event_recording_state_changes_queue_nothing() {
    let cfg = Arc::new(config());
    let (mut a, mut b) = (client(&cfg), server(&cfg));
    a.record_events(false);
    b.record_events(false);
    let mut p = Pipe::new(a, b, Duration::from_millis(10));
    p.a.connect(p.now, SERVER, CLIENT_ISS, &mut p.ctr_a)
        .unwrap();
    p.run_until(
        |p| p.a.state() == State::Established && p.b.state() == State::Established,
        Duration::from_secs(5),
    );
    assert_eq!(allocated(&p.a), Vec::<&str>::new(), "client");
    assert_eq!(allocated(&p.b), Vec::<&str>::new(), "server");
    assert_eq!(p.a.poll_event(), None);

    // Turned back on, the next state change is queued again.
    p.a.record_events(true);
    p.a.close(p.now, &mut p.ctr_a);
    assert!(matches!(
        p.a.poll_event(),
        Some(Event::StateChanged {
            from: State::Established,
            to: State::FinWait1,
            ..
        })
    ));
}
