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
use crate::tcp::congestion::Algorithm;
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
pub(super) fn state_dump(c: &Connection) -> String {
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
