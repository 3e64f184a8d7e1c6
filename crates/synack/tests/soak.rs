//! Seeded soak: many seeds × impairment profiles over SimNet, in virtual time. Every byte
//! must arrive once, in order (verified byte by byte), or the transfer must end with a clear
//! connection error; corruption of delivered data or a stall is a failure. CI runs 1200 seeds;
//! set SYNACK_SOAK_SEEDS for more.

use synack::device::sim::{LinkConfig, Loss};
use synack::sim::{TransferConfig, TransferError, transfer};
use synack::time::Duration;

fn profiles() -> Vec<(&'static str, LinkConfig)> {
    let base = LinkConfig::delay_ms(10);
    vec![
        ("clean", base),
        ("loss 1%", base.with_loss(Loss::Bernoulli(0.01))),
        ("loss 5%", base.with_loss(Loss::Bernoulli(0.05))),
        ("loss 20%", base.with_loss(Loss::Bernoulli(0.20))),
        (
            "burst loss",
            base.with_loss(Loss::GilbertElliott {
                p_good_to_bad: 0.01,
                p_bad_to_good: 0.3,
                loss_good: 0.0,
                loss_bad: 0.8,
            }),
        ),
        (
            "reorder 10%",
            base.with_reorder(0.10)
                .with_reorder_delay(Duration::from_millis(15)),
        ),
        ("duplicate 5%", base.with_duplicate(0.05)),
        ("corrupt 2%", base.with_corrupt(0.02)),
        (
            "10 Mbit/s, 32 KiB queue",
            base.with_bandwidth(10_000_000).with_queue_limit(32 * 1024),
        ),
        ("jitter 5 ms", base.with_jitter(Duration::from_millis(5))),
        (
            "everything",
            base.with_loss(Loss::Bernoulli(0.03))
                .with_reorder(0.05)
                .with_duplicate(0.02)
                .with_corrupt(0.01)
                .with_bandwidth(20_000_000)
                .with_queue_limit(64 * 1024)
                .with_jitter(Duration::from_millis(2)),
        ),
        (
            "asymmetric-ish: 40% loss",
            base.with_loss(Loss::Bernoulli(0.40)),
        ),
    ]
}

#[test]
fn soak_every_byte_once_in_order_or_a_clear_error() {
    let seeds: u64 = std::env::var("SYNACK_SOAK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1200);
    let profiles = profiles();
    let mut failures = Vec::new();
    let mut errors = 0;
    let started = std::time::Instant::now();
    for seed in 0..seeds {
        let (name, link) = profiles[(seed % profiles.len() as u64) as usize];
        let bytes = 64 * 1024 + (seed % 7) * 17_000;
        let cfg = TransferConfig {
            bytes,
            link,
            seed,
            limit: Duration::from_secs(4 * 3600),
            ..TransferConfig::default()
        };
        match transfer(&cfg) {
            Ok(r) => assert_eq!(r.bytes, bytes, "seed {seed} ({name})"),
            // Giving up with an error the application sees is allowed under heavy impairment.
            Err(TransferError::Connection(e)) => {
                assert!(
                    name.contains("40%") || name.contains("20%"),
                    "seed {seed} ({name}): unexpected error {e}"
                );
                errors += 1;
            }
            Err(e) => failures.push(format!("seed {seed} ({name}): {e}")),
        }
    }
    eprintln!(
        "soak: {seeds} runs, {errors} ended with a connection error, {:?} wall",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
