//! Output prediction (`send_predicted`: the next segment of a synchronized connection that
//! may still send, ESTABLISHED, CLOSE-WAIT, or FIN-WAIT-1 and LAST-ACK before their FIN
//! went, with no recovery state, no SACK blocks, no urgent data, nothing to resend, no probe
//! and no pacing, is new data or the first FIN, alone or with the last data, planned and
//! written without the general planner's other branches) is only a shortcut: the same
//! exchanges, run once with it and once through `plan_data`, `send_plan` and
//! `write_segment`, put byte-identical segments on the wire at the same instants, and leave
//! the same TCP_INFO, deadline, queued bytes and whole connection state (`state_dump`) at
//! both ends after every step, the same events and counters at the end. Each run also checks
//! that the shortcut was taken, so that a predicate that never holds cannot pass.

use std::fmt::Write as _;

use proptest::prelude::*;

use super::super::output::{fast_fins, set_fast_output};
use super::harness::*;
use crate::tcp::congestion::{Algorithm, CongestionControl};
use crate::tcp::connection::Connection;
use crate::tcp::ecn::EcnMode;
use crate::tcp::{Config, Shutdown};
use crate::time::Duration;

/// [`scripted_exchange`] with every end's state written after every step ([`snapshot`]).
fn exchange(cfg: &Config, impair: Impair, seed: u64, steps: usize) -> String {
    scripted_exchange(cfg, impair, seed, steps, snapshot)
}

/// What a step leaves at one end: TCP_INFO, the next deadline, the bytes queued each way,
/// and every field of the connection's state (`state_dump`), so that a difference shows on
/// the step that made it, not only once it changes what goes on the wire.
fn snapshot(out: &mut String, name: &str, c: &Connection) {
    writeln!(
        out,
        "{name} {:?} {:?} {} {}",
        c.info(),
        c.poll_timeout(),
        c.send_queue_len(),
        c.recv_queue_len()
    )
    .unwrap();
    writeln!(out, "{name} {}", state_dump(c)).unwrap();
}

/// The connection's whole state, field by field (`Connection`'s own `Debug` is a summary):
/// the send side (scoreboard and its PSH bits, `sml`, push marks, burst, rate state), the
/// receive side (`rcv.adv`, delayed ACK), recovery, options, ECN (a CWR owed), timers, RTT,
/// the congestion controller. Left out: nothing but `cfg` (the same `Arc` in both runs) and
/// `events` (compared as they are polled).
fn state_dump(c: &Connection) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        c.state,
        c.local_ip,
        c.remote_ip,
        c.local_port,
        c.remote_port,
        c.passive,
        c.orphaned,
        c.fast_open,
        c.fast_open_active,
        c.snd,
        c.rcv,
        c.recovery,
        c.opts,
        c.ecn,
        c.timers,
        c.keepalive_due,
        c.rtt,
        c.cc,
        c.pending_rst,
        (&c.error, &c.soft_error, c.error_reported),
        c.record_events,
    )
}

/// Runs `f` with output prediction off and on; requires the same outcome, and that the
/// second run sent at least `min` segments the predicted way.
fn same_either_way(min: u64, f: impl Fn() -> String) {
    set_fast_output(false);
    let before = set_fast_output(false);
    let general = f();
    assert_eq!(
        set_fast_output(true),
        before,
        "predicted while switched off"
    );
    let fast = f();
    let hits = set_fast_output(true) - before;
    assert!(hits >= min, "only {hits} segments sent the predicted way");
    assert_same_outcome("output prediction", &general, &fast);
}

/// The configurations, and whether their connections are predicted at all (a paced one
/// never is: `pacing`, or BBR's own).
fn configs() -> Vec<(&'static str, Config, bool)> {
    let base = config();
    vec![
        ("default", base.clone(), true),
        (
            "no sack",
            Config {
                sack: false,
                ..base.clone()
            },
            true,
        ),
        (
            "no timestamps",
            Config {
                timestamps: false,
                ..base.clone()
            },
            true,
        ),
        (
            "small buffers, no window scaling",
            Config {
                window_scaling: false,
                recv_buffer: 8192,
                send_buffer: 16384,
                ..base.clone()
            },
            true,
        ),
        (
            "ecn, newreno",
            Config {
                ecn: EcnMode::On,
                congestion: Algorithm::NewReno,
                ..base.clone()
            },
            true,
        ),
        (
            "paced, ecn, newreno",
            Config {
                pacing: true,
                ecn: EcnMode::On,
                congestion: Algorithm::NewReno,
                ..base.clone()
            },
            false,
        ),
        (
            "bbr",
            Config {
                congestion: Algorithm::Bbr,
                ..base
            },
            false,
        ),
    ]
}

#[test]
fn clean_exchanges_are_the_same_with_and_without_output_prediction() {
    for (name, cfg, predicted) in configs() {
        eprintln!("{name}");
        same_either_way(if predicted { 200 } else { 0 }, || {
            exchange(&cfg, Impair::default(), 1, 300)
        });
    }
}

#[test]
fn lossy_exchanges_are_the_same_with_and_without_output_prediction() {
    let impair = Impair {
        loss: 0.03,
        duplicate: 0.01,
        reorder: 0.05,
        ce: 0.02,
    };
    for (name, cfg, predicted) in configs() {
        for seed in [2, 3, 4, 5] {
            eprintln!("{name} seed {seed}");
            same_either_way(if predicted { 10 } else { 0 }, || {
                exchange(&cfg, impair, seed, 200)
            });
        }
    }
}

/// Short exchanges under heavy loss, so that FINs (with the last data or alone) are sent
/// the predicted way and then lost: the loss probe and the timeout's resend read what the
/// predicted FIN recorded (its sequence number, whether it went alone). Both kinds of
/// predicted FIN, alone and with data, must have been sent across the seeds.
#[test]
fn lost_fins_are_the_same_with_and_without_output_prediction() {
    let impair = Impair {
        loss: 0.2,
        ..Impair::default()
    };
    let before = fast_fins();
    for (name, cfg, predicted) in configs().into_iter().filter(|c| c.2) {
        for seed in 0..30 {
            eprintln!("{name} seed {seed}");
            same_either_way(u64::from(predicted), || exchange(&cfg, impair, seed, 8));
        }
    }
    let after = fast_fins();
    let (alone, with_data) = (after[0] - before[0], after[1] - before[1]);
    assert!(
        alone > 0 && with_data > 0,
        "predicted FINs: {alone} alone, {with_data} with data"
    );
    eprintln!("predicted FINs: {alone} alone, {with_data} with data");
}

/// Whole stacks on the simulated network (`sim::transfer`), with the trace of every packet
/// and state change, and without it. (Its sender queues everything and its FIN at once: its
/// data is predicted in ESTABLISHED and, after the shutdown, in FIN-WAIT-1, with the FIN.)
#[test]
fn sim_transfers_are_the_same_with_and_without_output_prediction() {
    for (link, seed, trace) in sim_transfer_cases() {
        same_either_way(5, || sim_transfer_outcome(link, seed, trace));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn random_exchanges_are_the_same_with_and_without_output_prediction(
        seed in 0u64..1_000_000,
        loss in 0.0f64..0.05,
        reorder in 0.0f64..0.1,
        duplicate in 0.0f64..0.02,
        ce in prop_oneof![Just(0.0), 0.0f64..0.1],
        which in 0usize..7,
    ) {
        let (_, cfg, predicted) = configs().swap_remove(which);
        let impair = Impair { loss, duplicate, reorder, ce };
        same_either_way(u64::from(predicted), || exchange(&cfg, impair, seed, 60));
    }
}

/// Deterministic edges (review item 4, part): a bulk transfer under loss (so that CUBIC has
/// left slow start), an idle period far past the RTO (the idle restart, RFC 5681 §4.1, with
/// `slow_start_after_idle` on), then more data, a path MTU drop mid-stream (RFC 1191 §6.3:
/// an MSS other than the first), more data, and the close. Whole state compared after
/// every step.
#[test]
fn idle_restart_and_mss_change_are_the_same_with_and_without_output_prediction() {
    same_either_way(20, || {
        let mut p = Pipe::connected(config(), Duration::from_millis(2));
        p.impair = Impair {
            loss: 0.02,
            ..Impair::default()
        };
        p.rng = SimRng::new(7);
        let mut out = String::new();
        let got = p.transfer_a_to_b(&pattern(200_000, 1), Duration::from_secs(30));
        writeln!(out, "{} {}", got.len(), state_dump(&p.a)).unwrap();
        p.impair = Impair::default();
        p.run_for(Duration::from_secs(3));
        // Nothing left to do: the pipe stops, the clock does not move by itself.
        p.now += Duration::from_secs(3);
        writeln!(out, "idle {:?} {}", p.now, state_dump(&p.a)).unwrap();
        let got = p.transfer_a_to_b(&pattern(30_000, 2), Duration::from_secs(30));
        writeln!(out, "{} {}", got.len(), state_dump(&p.a)).unwrap();
        writeln!(out, "pmtu {:?}", p.a.on_path_mtu(1200, 20)).unwrap();
        let got = p.transfer_a_to_b(&pattern(30_000, 3), Duration::from_secs(30));
        writeln!(out, "{} {}", got.len(), state_dump(&p.a)).unwrap();
        p.a.shutdown(Shutdown::Write).unwrap();
        p.b.shutdown(Shutdown::Write).unwrap();
        p.run_for(Duration::from_secs(30));
        for (t, to_b, s) in &p.log {
            writeln!(out, "{t:?} {to_b} {:?} {:02x?}", s, s.bytes).unwrap();
        }
        writeln!(out, "{}\n{}", state_dump(&p.a), state_dump(&p.b)).unwrap();
        out
    });
}

/// Output prediction after data out of order: a receiver that held a segment beyond a hole
/// gives its reassembly record back once the hole is filled and the ACK saying so went out,
/// so that its own data goes the predicted way again (the record used to stay, and with it
/// every later segment on the general path).
#[test]
fn a_filled_hole_gives_output_prediction_back() {
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    let mss = p.a.info().snd_mss as usize;
    let data = pattern(10 * mss, 2);
    // Segments from a so far: SYN (0), ACK (1); drop the second data segment.
    p.drop_a_to_b.push(3);
    assert!(p.transfer_a_to_b(&data, Duration::from_secs(10)) == data);
    p.run_for(Duration::from_secs(1));
    assert!(p.ctr_b.ofo_queue > 0, "b held data out of order");
    assert!(p.b.rcv.ooo.is_none(), "b kept its reassembly record");
    let before = set_fast_output(true);
    assert_eq!(p.b.send(&pattern(3 * mss, 3)).unwrap(), 3 * mss);
    p.run_for(Duration::from_secs(1));
    let predicted = set_fast_output(true) - before;
    assert_eq!(predicted, 3, "b's segments sent the predicted way");
    assert_eq!(p.a.recv_queue_len(), 3 * mss);
}

/// The edges below: a pipe driven by a script, every end's state written after every step
/// (as [`exchange`] does), the wire at the end.
struct Edge {
    p: Pipe,
    out: String,
}

impl Edge {
    fn new(cfg: Config) -> Edge {
        Edge {
            p: Pipe::connected(cfg, Duration::from_millis(2)),
            out: String::new(),
        }
    }

    /// Steps until `done` holds or nothing is left to do (at most `limit` of virtual time),
    /// writing both ends' state after every step.
    fn run_until(&mut self, done: impl Fn(&Pipe) -> bool, limit: Duration) {
        let end = self.p.now + limit;
        for _ in 0..1_000_000 {
            if done(&self.p) || !self.p.step() || self.p.now > end {
                return;
            }
            snapshot(&mut self.out, "a", &self.p.a);
            snapshot(&mut self.out, "b", &self.p.b);
        }
    }

    fn read_all(&mut self) {
        let mut buf = vec![0u8; 1 << 16];
        for (name, c) in [("a", &mut self.p.a), ("b", &mut self.p.b)] {
            while let Ok(k @ 1..) = c.recv(&mut buf) {
                writeln!(self.out, "{:?} {name} read {k}", self.p.now).unwrap();
            }
        }
    }

    /// Both ends close; the outcome: the wire, the steps' states, the last state, events
    /// and counters.
    fn finish(mut self) -> String {
        self.read_all();
        self.p.a.shutdown(Shutdown::Write).unwrap();
        self.p.b.shutdown(Shutdown::Write).unwrap();
        self.run_until(|_| false, Duration::from_secs(30));
        self.read_all();
        let mut log = String::new();
        for (t, to_b, s) in &self.p.log {
            writeln!(log, "{t:?} {to_b} {:?} {:02x?}", s, s.bytes).unwrap();
        }
        log.push_str(&self.out);
        for (name, c) in [("a", &mut self.p.a), ("b", &mut self.p.b)] {
            while let Some(e) = c.poll_event() {
                writeln!(log, "{name} event {e:?}").unwrap();
            }
            writeln!(log, "{name} {}", state_dump(c)).unwrap();
        }
        writeln!(log, "{:?}\n{:?}", self.p.ctr_a, self.p.ctr_b).unwrap();
        log
    }
}

/// A reply sent right after the request arrived (within the ACK timeout of received data):
/// the send makes the exchange interactive (Linux `tcp_event_data_sent` sets ping-pong
/// mode, here `delack.on_data_sent`), which decides how the next request is acknowledged.
#[test]
fn replies_right_after_received_data_are_the_same_with_and_without_output_prediction() {
    same_either_way(20, || {
        let mut e = Edge::new(config());
        for i in 0..20usize {
            let req = 50 + i;
            assert_eq!(e.p.a.send(&pattern(req, i as u64)).unwrap(), req);
            e.run_until(|p| p.b.recv_queue_len() >= req, Duration::from_secs(5));
            e.read_all();
            assert_eq!(e.p.b.send(&pattern(300, i as u64)).unwrap(), 300);
            e.run_until(|p| p.a.recv_queue_len() >= 300, Duration::from_secs(5));
            e.read_all();
        }
        e.finish()
    });
}

/// A caller's buffer smaller than a header and an MSS: each segment is cut to what fits
/// (`poll_synchronized`'s room), a full segment being one that fills the buffer.
#[test]
fn a_buffer_smaller_than_the_mss_is_the_same_with_and_without_output_prediction() {
    same_either_way(20, || {
        let mut e = Edge::new(config());
        e.p.buf_len = 600;
        assert_eq!(e.p.a.send(&pattern(20_000, 1)).unwrap(), 20_000);
        assert_eq!(e.p.b.send(&pattern(3000, 2)).unwrap(), 3000);
        e.run_until(|p| p.b.recv_queue_len() >= 20_000, Duration::from_secs(10));
        e.read_all();
        assert!(
            e.p.log.iter().all(|(_, _, s)| s.bytes.len() <= 600),
            "a segment beyond the caller's buffer"
        );
        e.finish()
    });
}

/// A peer whose largest window is small: the send MSS is half of it (Linux
/// `tcp_bound_to_half_wnd`), below the MSS it announced.
#[test]
fn an_mss_bounded_by_half_a_small_window_is_the_same_with_and_without_output_prediction() {
    same_either_way(20, || {
        let mut e = Edge::new(Config {
            window_scaling: false,
            recv_buffer: 2048,
            ..config()
        });
        let mss = e.p.a.info().snd_mss;
        assert!(
            mss < u32::from(e.p.a.opts.peer_mss) - 12 && 2 * mss <= e.p.a.snd.max_wnd,
            "send MSS {mss}, peer's largest window {}",
            e.p.a.snd.max_wnd
        );
        assert_eq!(e.p.a.send(&pattern(20_000, 1)).unwrap(), 20_000);
        for _ in 0..40 {
            e.run_until(|p| p.b.recv_queue_len() >= 1000, Duration::from_secs(5));
            e.read_all();
        }
        e.finish()
    });
}

/// CUBIC in congestion avoidance (a loss made ssthresh finite and the window has grown past
/// it) when the connection goes idle for longer than the RTO: the restart (RFC 5681 §4.1,
/// CA_EVENT_TX_START) comes with the first predicted send after it, and the window it
/// leaves decides the rest.
#[test]
fn cubic_restarting_in_congestion_avoidance_is_the_same_with_and_without_output_prediction() {
    same_either_way(20, || {
        let mut e = Edge::new(config());
        e.p.drop_a_to_b.push(12);
        assert_eq!(e.p.a.send(&pattern(60_000, 1)).unwrap(), 60_000);
        e.run_until(|p| p.b.recv_queue_len() >= 60_000, Duration::from_secs(10));
        e.read_all();
        let more = pattern(60_000, 2);
        assert_eq!(e.p.a.send(&more).unwrap(), 60_000);
        e.run_until(|p| p.a.snd.una == p.a.snd.max, Duration::from_secs(10));
        e.read_all();
        let (cwnd, ssthresh) = (e.p.a.cc.cwnd(), e.p.a.cc.ssthresh());
        assert!(
            e.p.a.recovery.is_none() && ssthresh < u32::MAX && cwnd > ssthresh,
            "not in congestion avoidance: cwnd {cwnd}, ssthresh {ssthresh}"
        );
        writeln!(e.out, "idle from {:?}: {}", e.p.now, state_dump(&e.p.a)).unwrap();
        // Nothing left to do: the clock does not move by itself.
        e.p.now += Duration::from_secs(3);
        assert_eq!(e.p.a.send(&pattern(30_000, 3)).unwrap(), 30_000);
        e.run_until(|p| p.b.recv_queue_len() >= 30_000, Duration::from_secs(10));
        e.finish()
    });
}

/// Two ends joined by a pipe from the server's SYN-RECEIVED on: the client connects (with
/// Fast Open and `syn_data` in its SYN if given: no cookie asked), the server takes its SYN
/// (a Fast Open child then), and `then` runs on the server before the pipe goes on.
fn from_syn_received(syn_data: Option<&[u8]>, then: impl Fn(&mut Connection)) -> Edge {
    use crate::time::Instant;
    use std::sync::Arc;
    let cfg = Arc::new(config());
    let (mut a, mut b) = (client(&cfg), server(&cfg));
    let (mut ca, mut cb) = Default::default();
    match syn_data {
        Some(d) => {
            a.connect_fast_open(Instant::ZERO, SERVER, CLIENT_ISS, None, d, d.len(), &mut ca)
        }
        None => a
            .connect(Instant::ZERO, SERVER, CLIENT_ISS, &mut ca)
            .map(|()| 0),
    }
    .unwrap();
    let syn = drain(&mut a, Instant::ZERO, &mut ca);
    let (from, r) = (syn[0].from, syn[0].repr());
    assert!(match syn_data {
        Some(_) => b.accept_fast_open_syn(Instant::ZERO, from, &r, SERVER_ISS, &mut cb),
        None => b.accept_syn(Instant::ZERO, from, &r, SERVER_ISS, &mut cb),
    });
    assert_eq!(b.state(), crate::tcp::State::SynReceived);
    then(&mut b);
    let mut p = Pipe::new(a, b, Duration::from_millis(2));
    p.ctr_a = ca;
    p.ctr_b = cb;
    Edge {
        p,
        out: String::new(),
    }
}

/// The server's application writes and shuts its side down while the handshake is still in
/// SYN-RECEIVED: the data and the FIN wait for the handshake's last ACK, then go out in
/// FIN-WAIT-1, the predicted way.
#[test]
fn a_shutdown_in_syn_received_is_the_same_with_and_without_output_prediction() {
    same_either_way(3, || {
        let mut e = from_syn_received(None, |b| {
            assert_eq!(b.send(&pattern(4000, 1)).unwrap(), 4000);
            b.shutdown(Shutdown::Write).unwrap();
        });
        e.run_until(|p| p.a.recv_queue_len() >= 4000, Duration::from_secs(5));
        assert_eq!(e.p.a.send(&pattern(100, 2)).unwrap(), 100);
        e.finish()
    });
}

/// A Fast Open child (RFC 7413 §4.2.2): the SYN's data is taken in SYN-RECEIVED, the child
/// answers before the handshake completes (the general path: `output_predicted` excludes
/// SYN-RECEIVED), and goes on the predicted way once ESTABLISHED.
#[test]
fn a_fast_open_child_is_the_same_with_and_without_output_prediction() {
    same_either_way(5, || {
        let mut e = from_syn_received(Some(&pattern(300, 1)), |b| {
            assert!(b.fast_open_pending());
            assert_eq!(b.recv_queue_len(), 300, "the SYN's data");
            assert_eq!(b.send(&pattern(5000, 2)).unwrap(), 5000);
        });
        e.run_until(|p| p.a.recv_queue_len() >= 5000, Duration::from_secs(5));
        e.read_all();
        assert_eq!(e.p.b.send(&pattern(5000, 3)).unwrap(), 5000);
        e.run_until(|p| p.a.recv_queue_len() >= 5000, Duration::from_secs(5));
        e.finish()
    });
}
