//! The plain header (`write_segment` writing a segment with no option but timestamps and no
//! urgent pointer at fixed offsets, `wire::tcp::PlainHeader`) is only a shortcut for the
//! header writer: what segment to send is still decided by the general planner
//! (`send_plan`), untouched. The same exchanges, run once with it and once through the
//! general header writer alone, put the same segments on the wire at the same instants and
//! report the same events, counters and statistics. Each run also checks that the shortcut
//! was taken, so that a predicate that never holds cannot pass. (The stack's own shortcuts
//! have their test in `stack/tests/shortcuts.rs`.)

use proptest::prelude::*;

use super::super::output::{plain_syns, set_plain_header};
use super::harness::*;
use crate::tcp::Config;
use crate::tcp::congestion::Algorithm;
use crate::tcp::ecn::EcnMode;

/// [`scripted_exchange`], the wire and the events only.
fn exchange(cfg: &Config, impair: Impair, seed: u64, steps: usize) -> String {
    scripted_exchange(cfg, impair, seed, steps, |_, _, _| {})
}

/// Runs `f` with the plain header off and on; requires the same outcome, and that the
/// second run wrote at least `min` segments with the plain header and at least one SYN
/// (each exchange's handshake: its connection's own SYN) with the handshake's writer.
fn same_either_way(min: u64, f: impl Fn() -> String) {
    set_plain_header(false);
    let before = set_plain_header(false);
    let syns_before = plain_syns();
    let general = f();
    assert_eq!(
        set_plain_header(true),
        before,
        "predicted while switched off"
    );
    assert_eq!(plain_syns(), syns_before, "a plain SYN while switched off");
    let fast = f();
    let hits = set_plain_header(true) - before;
    assert!(hits >= min, "only {hits} segments with the plain header");
    let syns = plain_syns() - syns_before;
    assert!(syns >= 1, "no SYN written by write_plain_syn");
    assert_same_outcome("the plain header", &general, &fast);
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
            "small buffers, no window scaling",
            Config {
                window_scaling: false,
                recv_buffer: 8192,
                send_buffer: 16384,
                ..base.clone()
            },
        ),
        (
            "paced, ecn, newreno",
            Config {
                pacing: true,
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
fn clean_exchanges_are_the_same_with_and_without_the_plain_header() {
    for (name, cfg) in configs() {
        eprintln!("{name}");
        same_either_way(200, || exchange(&cfg, Impair::default(), 1, 300));
    }
}

#[test]
fn lossy_exchanges_are_the_same_with_and_without_the_plain_header() {
    let impair = Impair {
        loss: 0.03,
        duplicate: 0.01,
        reorder: 0.05,
        ce: 0.02,
    };
    for (name, cfg) in configs() {
        for seed in [2, 3] {
            eprintln!("{name} seed {seed}");
            same_either_way(100, || exchange(&cfg, impair, seed, 200));
        }
    }
}

/// Whole stacks on the simulated network (`sim::transfer`), with the trace of every packet
/// and state change, and without it.
#[test]
fn sim_transfers_are_the_same_with_and_without_the_plain_header() {
    for (link, seed, trace) in sim_transfer_cases() {
        same_either_way(100, || sim_transfer_outcome(link, seed, trace));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn random_exchanges_are_the_same_with_and_without_the_plain_header(
        seed in 0u64..1_000_000,
        loss in 0.0f64..0.05,
        reorder in 0.0f64..0.1,
        duplicate in 0.0f64..0.02,
        ce in prop_oneof![Just(0.0), 0.0f64..0.1],
        which in 0usize..6,
    ) {
        let (_, cfg) = configs().swap_remove(which);
        let impair = Impair { loss, duplicate, reorder, ce };
        same_either_way(1, || exchange(&cfg, impair, seed, 60));
    }
}
