//! Header prediction (`Connection::predicted`) is only a shortcut: the same exchanges, run
//! once with it and once through the general path alone, put the same segments on the wire
//! at the same instants and report the same events, counters and statistics. Each run also
//! checks that the shortcut was taken, so that a predicate that never holds cannot pass.

use std::fmt::Write as _;

use proptest::prelude::*;

use super::super::input::set_header_prediction;
use super::harness::*;
use crate::device::sim::{LinkConfig, Loss};
use crate::sim::{TransferConfig, transfer};
use crate::tcp::congestion::Algorithm;
use crate::tcp::ecn::EcnMode;
use crate::tcp::{Config, Shutdown};
use crate::time::Duration;

/// One exchange between two connections: `rounds` request/response pairs of random sizes
/// (some above the MSS, some filling the receiver), then a bulk transfer each way, then
/// both close. Everything observable is written into one string.
fn exchange(cfg: &Config, impair: Impair, seed: u64, rounds: usize) -> String {
    let mut p = Pipe::connected(cfg.clone(), Duration::from_millis(5));
    p.impair = impair;
    p.rng = SimRng::new(seed);
    let mut sizes = SimRng::new(seed ^ 0x5eed);
    let mut buf = vec![0u8; 1 << 16];
    for round in 0..rounds {
        let (req, resp) = (
            1 + sizes.below(3000) as usize,
            1 + sizes.below(20_000) as usize,
        );
        move_bytes(&mut p, true, &pattern(req, round as u64), &mut buf);
        move_bytes(&mut p, false, &pattern(resp, !(round as u64)), &mut buf);
    }
    move_bytes(&mut p, true, &pattern(300_000, seed), &mut buf);
    p.a.shutdown(Shutdown::Write).unwrap();
    p.b.shutdown(Shutdown::Write).unwrap();
    p.run_for(Duration::from_secs(5));
    let mut out = String::new();
    for (t, to_b, s) in &p.log {
        writeln!(out, "{t:?} {to_b} {:?} {:02x?}", s, s.bytes).unwrap();
    }
    for (name, c) in [("a", &mut p.a), ("b", &mut p.b)] {
        while let Some(e) = c.poll_event() {
            writeln!(out, "{name} event {e:?}").unwrap();
        }
        writeln!(out, "{name} {:?}\n{:?}", c.info(), c.state()).unwrap();
    }
    writeln!(out, "{:?}\n{:?}", p.ctr_a, p.ctr_b).unwrap();
    out
}

/// Writes `data` from a (`from_a`) or b and reads it at the other end, the application
/// acting between every two steps of the pipe; checks what arrived.
fn move_bytes(p: &mut Pipe, from_a: bool, data: &[u8], buf: &mut [u8]) {
    let (mut sent, mut got) = (0, Vec::with_capacity(data.len()));
    let end = p.now + Duration::from_secs(600);
    let mut idle = false;
    while got.len() < data.len() {
        let (tx, rx) = if from_a {
            (&mut p.a, &mut p.b)
        } else {
            (&mut p.b, &mut p.a)
        };
        let wrote = tx.send(&data[sent..]).unwrap();
        sent += wrote;
        let mut read = 0;
        while let Ok(k @ 1..) = rx.recv(buf) {
            got.extend_from_slice(&buf[..k]);
            read += k;
        }
        // The pipe going idle twice in a row with the application doing nothing in between
        // (the last step may have delivered the ACK that makes room) is a stall.
        let quiet = !p.step() && wrote + read == 0;
        assert!(
            !(quiet && idle) && p.now <= end,
            "stalled: {} of {} bytes sent, {} read",
            sent,
            data.len(),
            got.len()
        );
        idle = quiet;
    }
    assert!(got == data, "the bytes read differ from those written");
}

/// Runs `f` with header prediction off and on; requires the same outcome, and that the
/// second run predicted at least `min` segments.
fn same_either_way(min: u64, f: impl Fn() -> String) {
    set_header_prediction(false);
    let before = set_header_prediction(false);
    let general = f();
    assert_eq!(
        set_header_prediction(true),
        before,
        "predicted while switched off"
    );
    let fast = f();
    let predicted = set_header_prediction(true) - before;
    assert!(predicted >= min, "only {predicted} segments predicted");
    if general != fast {
        let at = general
            .lines()
            .zip(fast.lines())
            .position(|(g, f)| g != f)
            .unwrap_or(0);
        panic!(
            "header prediction changed the outcome at line {at}:\n general: {}\n fast:    {}",
            general.lines().nth(at).unwrap_or(""),
            fast.lines().nth(at).unwrap_or("")
        );
    }
}

fn configs() -> Vec<(&'static str, Config)> {
    let base = config();
    vec![
        ("default", base.clone()),
        (
            "no sack",
            Config {
                sack: false,
                ..base.clone()
            },
        ),
        (
            "no timestamps",
            Config {
                timestamps: false,
                ..base.clone()
            },
        ),
        (
            "no window scaling, small buffers",
            Config {
                window_scaling: false,
                recv_buffer: 8192,
                send_buffer: 16384,
                ..base.clone()
            },
        ),
        (
            "ecn, newreno",
            Config {
                ecn: EcnMode::On,
                congestion: Algorithm::NewReno,
                ..base.clone()
            },
        ),
        (
            "bbr",
            Config {
                congestion: Algorithm::Bbr,
                ..base
            },
        ),
    ]
}

#[test]
fn clean_exchanges_are_the_same_with_and_without_prediction() {
    for (name, cfg) in configs() {
        eprintln!("{name}");
        same_either_way(100, || exchange(&cfg, Impair::default(), 1, 20));
    }
}

#[test]
fn lossy_reordered_exchanges_are_the_same_with_and_without_prediction() {
    let impair = Impair {
        loss: 0.03,
        duplicate: 0.01,
        reorder: 0.05,
    };
    for (name, cfg) in configs() {
        for seed in [2, 3] {
            eprintln!("{name} seed {seed}");
            same_either_way(50, || exchange(&cfg, impair, seed, 10));
        }
    }
}

/// Whole stacks on the simulated network (`sim::transfer`), with the trace of every packet
/// and state change.
#[test]
fn sim_transfers_are_the_same_with_and_without_prediction() {
    let links = [
        LinkConfig::delay_ms(10),
        LinkConfig::delay_ms(10).with_loss(Loss::Bernoulli(0.02)),
        LinkConfig::delay_ms(5)
            .with_reorder(0.05)
            .with_reorder_delay(Duration::from_millis(3)),
    ];
    // A receive buffer of fixed size keeps the window the same from ACK to ACK once open,
    // as header prediction wants it; an autotuned one grows it on most.
    let locked = Config {
        recv_buffer_locked: true,
        ..TransferConfig::default().tcp
    };
    let cases = links
        .into_iter()
        .flat_map(|l| [(l, TransferConfig::default().tcp), (l, locked.clone())]);
    for (i, (link, tcp)) in cases.enumerate() {
        same_either_way(20, || {
            let r = transfer(&TransferConfig {
                bytes: 400_000,
                link,
                seed: 7 + i as u64,
                trace: true,
                tcp: tcp.clone(),
                ..TransferConfig::default()
            })
            .unwrap();
            format!(
                "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                r.trace, r.info, r.server_info, r.client, r.server, r.elapsed
            )
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn random_exchanges_are_the_same_with_and_without_prediction(
        seed in 0u64..1_000_000,
        loss in 0.0f64..0.05,
        reorder in 0.0f64..0.1,
        duplicate in 0.0f64..0.02,
        which in 0usize..6,
    ) {
        let (_, cfg) = configs().swap_remove(which);
        let impair = Impair { loss, duplicate, reorder };
        same_either_way(1, || exchange(&cfg, impair, seed, 4));
    }
}
