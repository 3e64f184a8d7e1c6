//! RFC 9293 Figure 5, the state diagram, tested as a whole: every edge is driven by a small
//! scenario, the transitions the connections report (their `StateChanged` events) are
//! collected, and the set must equal the diagram's edges, no more, no less.
//!
//! One edge is left out on purpose: LISTEN -> SYN-SENT on SEND. No sockets API can send on a
//! listening socket (Linux and the BSDs refuse it), so synack does not offer it. A FIN that
//! also acknowledges our FIN in FIN-WAIT-1 goes FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT within
//! the one segment, as §3.10.7.4 processes the ACK (fifth) before the FIN (eighth); the
//! diagram has no direct edge for it either.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::harness::*;
use crate::tcp::{Connection, Counters, Event, SeqNum, Shutdown, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

const T0: Instant = Instant::ZERO;

fn edges(c: &mut Connection, into: &mut BTreeSet<(&'static str, &'static str)>) {
    while let Some(e) = c.poll_event() {
        if let Event::StateChanged { from, to, .. } = e {
            into.insert((from.name(), to.name()));
        }
    }
}

#[test]
fn every_edge_of_figure5_and_nothing_else() {
    use State::*;
    let expected: BTreeSet<(&str, &str)> = [
        (Closed, Listen),           // passive OPEN
        (Closed, SynSent),          // active OPEN / snd SYN
        (Listen, SynReceived),      // rcv SYN / snd SYN,ACK
        (Listen, Closed),           // CLOSE
        (SynSent, SynReceived),     // rcv SYN / snd ACK (simultaneous open)
        (SynSent, Established),     // rcv SYN,ACK / snd ACK
        (SynSent, Closed),          // CLOSE
        (SynReceived, Established), // rcv ACK of SYN
        (SynReceived, FinWait1),    // CLOSE / snd FIN
        (SynReceived, Listen),      // rcv RST (passive)
        (Established, FinWait1),    // CLOSE / snd FIN
        (Established, CloseWait),   // rcv FIN / snd ACK
        (FinWait1, FinWait2),       // rcv ACK of FIN
        (FinWait1, Closing),        // rcv FIN / snd ACK
        (FinWait2, TimeWait),       // rcv FIN / snd ACK
        (Closing, TimeWait),        // rcv ACK of FIN
        (CloseWait, LastAck),       // CLOSE / snd FIN
        (LastAck, Closed),          // rcv ACK of FIN
        (TimeWait, Closed),         // timeout = 2 MSL
    ]
    .into_iter()
    .map(|(a, b)| (a.name(), b.name()))
    .collect();

    let mut seen = BTreeSet::new();
    let cfg = Arc::new(config());

    // Passive open, RST back to LISTEN, CLOSE from LISTEN.
    let mut s = server(&cfg);
    let mut ctr = Counters::default();
    deliver(
        &mut s,
        T0,
        &Inject::to_server(Flags::SYN, 10, 0).seg(),
        &mut ctr,
    );
    deliver(
        &mut s,
        T0,
        &Inject::to_server(Flags::RST, 11, 0).seg(),
        &mut ctr,
    );
    assert_eq!(s.state(), Listen);
    s.shutdown(Shutdown::Both).unwrap();
    assert_eq!(s.state(), Closed);
    edges(&mut s, &mut seen);

    // Active open then CLOSE in SYN-SENT.
    let mut c = client(&cfg);
    c.connect(T0, SERVER, CLIENT_ISS, &mut ctr).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.state(), Closed);
    edges(&mut c, &mut seen);

    // Simultaneous open (SYN-SENT -> SYN-RECEIVED -> ESTABLISHED), then both close at once
    // (FIN-WAIT-1 -> CLOSING -> TIME-WAIT -> CLOSED).
    let mut a = client(&cfg);
    let mut b = Connection::new(cfg.clone(), SERVER, MSS, 0);
    let (mut ac, mut bc) = (Counters::default(), Counters::default());
    a.connect(T0, SERVER, CLIENT_ISS, &mut ac).unwrap();
    b.connect(T0, CLIENT, SERVER_ISS, &mut bc).unwrap();
    let (sa, sb) = (drain(&mut a, T0, &mut ac), drain(&mut b, T0, &mut bc));
    deliver(&mut a, T0, &sb[0], &mut ac);
    deliver(&mut b, T0, &sa[0], &mut bc);
    let (sa, sb) = (drain(&mut a, T0, &mut ac), drain(&mut b, T0, &mut bc));
    deliver(&mut a, T0, &sb[0], &mut ac);
    deliver(&mut b, T0, &sa[0], &mut bc);
    assert_eq!((a.state(), b.state()), (Established, Established));
    a.shutdown(Shutdown::Write).unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    let (fa, fb) = (drain(&mut a, T0, &mut ac), drain(&mut b, T0, &mut bc));
    deliver(&mut a, T0, fb.last().unwrap(), &mut ac);
    deliver(&mut b, T0, fa.last().unwrap(), &mut bc);
    assert_eq!((a.state(), b.state()), (Closing, Closing));
    let (fa, fb) = (drain(&mut a, T0, &mut ac), drain(&mut b, T0, &mut bc));
    deliver(&mut a, T0, fb.last().unwrap(), &mut ac);
    deliver(&mut b, T0, fa.last().unwrap(), &mut bc);
    assert_eq!((a.state(), b.state()), (TimeWait, TimeWait));
    let t = Instant::from_secs(61);
    a.handle_timeout(t, &mut ac);
    assert_eq!(a.state(), Closed);
    edges(&mut a, &mut seen);
    edges(&mut b, &mut seen);

    // Ordinary open and close: FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT; CLOSE-WAIT -> LAST-ACK -> CLOSED.
    let mut p = Pipe::connected(config(), Duration::from_millis(5));
    p.a.shutdown(Shutdown::Write).unwrap();
    p.run_until(|p| p.a.state() == FinWait2, Duration::from_secs(5));
    p.b.close(p.now, &mut Counters::default());
    p.run_until(
        |p| p.b.state() == Closed && p.a.state() == TimeWait,
        Duration::from_secs(5),
    );
    edges(&mut p.a, &mut seen);
    edges(&mut p.b, &mut seen);

    // FIN-WAIT-1 straight to TIME-WAIT: the peer's FIN acknowledges ours.
    let mut p = Pipe::connected(config(), Duration::from_millis(5));
    p.a.shutdown(Shutdown::Write).unwrap();
    let fin = drain(&mut p.a, p.now, &mut Counters::default());
    let f = fin.last().unwrap().repr();
    let fin_ack = Inject::to_client(Flags::FIN | Flags::ACK, (f.ack).0, (f.seq + 1u32).0).seg();
    deliver(&mut p.a, p.now, &fin_ack, &mut Counters::default());
    assert_eq!(p.a.state(), TimeWait);
    edges(&mut p.a, &mut seen);

    // SYN-RECEIVED -> FIN-WAIT-1: CLOSE before the handshake completes.
    let mut s = server(&cfg);
    deliver(
        &mut s,
        T0,
        &Inject::to_server(Flags::SYN, 10, 0).seg(),
        &mut ctr,
    );
    // (The CLOSE call: shutdown(SHUT_WR) in SYN-RECEIVED waits for the open to complete,
    // as Linux's does.)
    s.close(T0, &mut ctr);
    assert_eq!(s.state(), FinWait1);
    edges(&mut s, &mut seen);
    let _ = SeqNum(0);

    assert_eq!(
        seen,
        expected,
        "missing: {:?}\nextra: {:?}",
        expected.difference(&seen).collect::<Vec<_>>(),
        seen.difference(&expected).collect::<Vec<_>>()
    );
}
