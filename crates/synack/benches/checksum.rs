//! Internet checksum throughput: `cargo bench -p synack --bench checksum`.
//!
//! A plain timing loop (no harness dependency): for each size, sums the same buffer enough
//! times to run ~0.3 s and reports GB/s, plus a naive 16-bit loop for comparison in the same
//! run. Figures are noisy on shared machines; compare the two columns, not absolute numbers.

use std::hint::black_box;
use std::time::{Duration, Instant};

use synack::wire::checksum::Checksum;

fn naive(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let hi = pair[0] as u32;
        let lo = pair.get(1).copied().unwrap_or(0) as u32;
        sum += (hi << 8) | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn measure(data: &[u8], f: impl Fn(&[u8]) -> u16) -> f64 {
    let budget = Duration::from_millis(300);
    let mut iters: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..1000 {
            black_box(f(black_box(data)));
        }
        iters += 1000;
    }
    let secs = start.elapsed().as_secs_f64();
    (iters as f64 * data.len() as f64) / secs / 1e9
}

fn main() {
    println!("| size (B) | synack GB/s | naive u16 loop GB/s | ratio |");
    println!("|---:|---:|---:|---:|");
    for size in [40usize, 576, 1500, 9000, 65535] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        let ours = measure(&data, |d| {
            let mut c = Checksum::new();
            c.add_bytes(d);
            c.finish()
        });
        let base = measure(&data, naive);
        println!("| {size} | {ours:.1} | {base:.1} | {:.1}x |", ours / base);
    }
}
