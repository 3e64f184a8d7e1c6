//! bulk: one direction, `total` bytes, between two stacks in one process over the in-memory
//! link; the kernel between two threads over loopback.

use std::time::{Duration, Instant};

use crate::link::{TO_CLIENT, TO_SERVER, now_micros};
use crate::pair::{CLIENT, Pair, SERVER};
use crate::report::{Row, median};
use crate::smol_pair::SmolPair;
use crate::synack_pair::{LITE_NOTE, LITE_ROW, SynackPair, Variant};

/// Byte `i` of the stream: a period prime to every buffer size, so a misplaced byte shows.
#[inline]
pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// What one transfer did.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub secs: f64,
    pub data_packets: u64,
    pub ack_packets: u64,
}

/// The source of the stream: 64 KiB of pattern plus one period, so any offset into the stream
/// is a slice of it.
pub fn source() -> Vec<u8> {
    (0..64 * 1024 + 251).map(pattern).collect()
}

/// Moves `total` bytes client → server through an established pair. The application writes
/// as much as the send buffer takes, the client transmits, the server processes and the
/// application reads everything ready, the server transmits (ACKs), the client processes them;
/// one clock read per round. With `verify`, every received byte is checked against the pattern
/// (tests; the timed runs only count bytes).
pub fn transfer<P: Pair>(p: &mut P, total: u64, src: &[u8], verify: bool) -> Transfer {
    transfer_with(p, total, src, verify, now_micros)
}

/// [`transfer`] with the clock given: the instruction counts run on a virtual one so that no
/// timer depends on how slowly the instrumented run goes.
pub fn transfer_with<P: Pair>(
    p: &mut P,
    total: u64,
    src: &[u8],
    verify: bool,
    mut clock: impl FnMut() -> u64,
) -> Transfer {
    let mut sink = vec![0u8; 64 * 1024];
    let (d0, a0) = (p.link().packets(TO_SERVER), p.link().packets(TO_CLIENT));
    let (mut sent, mut got) = (0u64, 0u64);
    let start = Instant::now();
    let mut idle_rounds = 0u32;
    while got < total {
        let now = clock();
        while sent < total {
            let off = (sent % 251) as usize;
            let want = ((total - sent) as usize).min(src.len() - off);
            let n = p.send(CLIENT, now, &src[off..off + want]);
            if n == 0 {
                break;
            }
            sent += n as u64;
        }
        p.carry(CLIENT, now);
        let before = got;
        loop {
            let n = p.recv(SERVER, now, &mut sink);
            if n == 0 {
                break;
            }
            if verify {
                for (k, &b) in sink[..n].iter().enumerate() {
                    assert_eq!(
                        b,
                        pattern(got + k as u64),
                        "{}: byte {} wrong",
                        p.name(),
                        got + k as u64
                    );
                }
            }
            got += n as u64;
        }
        p.carry(SERVER, now);
        // A stall (waiting on a timer) is allowed, a dead transfer is not.
        if got == before {
            idle_rounds += 1;
            if idle_rounds > 1000 && start.elapsed() > Duration::from_secs(60) {
                panic!("{}: transfer stalled at {got} of {total} bytes", p.name());
            }
        } else {
            idle_rounds = 0;
        }
    }
    Transfer {
        secs: start.elapsed().as_secs_f64(),
        data_packets: p.link().packets(TO_SERVER) - d0,
        ack_packets: p.link().packets(TO_CLIENT) - a0,
    }
}

/// One timed transfer through a freshly connected pair.
pub fn run_pair<P: Pair>(mut p: P, total: u64, src: &[u8]) -> Transfer {
    transfer(&mut p, total, src, false)
}

fn gbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 * 8.0 / secs / 1e9
}

/// The bulk rows: for each MTU and buffer size, `runs` rounds, each round running synack,
/// synack-lite (not the default: smoltcp's feature set, its own row), smoltcp and the kernel
/// once, in that order.
pub fn run(total: u64, runs: usize) -> Vec<Row> {
    let src = source();
    let mut rows = Vec::new();
    for mtu in [1500usize, 65535] {
        for buffer in [64 * 1024usize, 1024 * 1024] {
            let (mut s, mut l, mut m, mut k) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut s_segs, mut m_segs) = ((0, 0), (0, 0));
            for _ in 0..runs {
                let t = run_pair(SynackPair::connected(mtu, buffer), total, &src);
                s.push(gbps(total, t.secs));
                s_segs = (t.data_packets, t.ack_packets);
                let lite = SynackPair::connected_as(Variant::Lite, mtu, buffer);
                l.push(gbps(total, run_pair(lite, total, &src).secs));
                let t = run_pair(SmolPair::connected(mtu, buffer), total, &src);
                m.push(gbps(total, t.secs));
                m_segs = (t.data_packets, t.ack_packets);
                k.push(gbps(total, crate::kernel::bulk(mtu, buffer, total)));
            }
            let label = format!("bulk MTU {mtu}, buffers {} KiB", buffer / 1024);
            eprintln!(
                "  {label}: synack {:.1?} synack-lite {:.1?} smoltcp {:.1?} kernel {:.1?} Gbps",
                s, l, m, k
            );
            rows.push(
                Row::higher(&label, "Gbps", Some(median(&s)), Some(median(&m)), Some(median(&k)))
                    .samples(&s, &m, &k)
                    .note(format!(
                        "{} MiB one way, median of {runs}; last run: synack {} data segments + {} ACKs, smoltcp {} + {}",
                        total >> 20,
                        s_segs.0,
                        s_segs.1,
                        m_segs.0,
                        m_segs.1
                    )),
            );
            rows.push(
                Row::higher(&format!("{label}, {LITE_ROW}"), "Gbps", Some(median(&l)), Some(median(&m)), None)
                    .samples(&l, &m, &[])
                    .note(format!("synack-lite in the synack column, the same rounds as the row above; {LITE_NOTE}")),
            );
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<P: Pair>(mut p: P, mtu: usize, buffer: usize) {
        let src = source();
        let total = 3 * buffer as u64 + 12345;
        let t = transfer(&mut p, total, &src, true);
        assert!(
            t.data_packets as usize >= total as usize / mtu,
            "{}",
            p.name()
        );
        assert!(t.ack_packets > 0);
    }

    #[test]
    fn synack_moves_every_byte_in_order() {
        for v in [Variant::Default, Variant::Lite] {
            for mtu in [1500, 65535] {
                check(SynackPair::connected_as(v, mtu, 64 * 1024), mtu, 64 * 1024);
            }
        }
    }

    #[test]
    fn smoltcp_moves_every_byte_in_order() {
        for mtu in [1500, 65535] {
            check(SmolPair::connected(mtu, 64 * 1024), mtu, 64 * 1024);
        }
    }

    #[test]
    fn kernel_loopback_moves_the_bytes() {
        assert!(crate::kernel::bulk(1500, 64 * 1024, 1 << 20) > 0.0);
    }
}
