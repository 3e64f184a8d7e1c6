//! flood: SYNs handled per second by one synack stack, in-process, per syncookies mode, as a row
//! of the side-by-side table and its JSON (the project's one SYN-rate benchmark).
//!
//! A listener takes spoofed SYNs (pre-built IPv4 packets from 65,536 random sources in
//! 198.19.0.0/16, options like Linux's) through `Stack::handle_packet`, and every SYN-ACK it owes
//! is written out with `Stack::poll_transmit`, so a figure covers the whole answer: IPv4 and TCP
//! parsing and checksums, demultiplexing, the SYN queue or the cookie, and building the SYN-ACK
//! (and the queued entries' SYN-ACK retransmissions as they fall due). Virtual time advances 1 µs
//! per SYN. No peer row: smoltcp's listening socket takes one SYN at a time (no SYN queue, no
//! cookies), and flooding the kernel would need raw sockets and root.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant as WallClock};

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use synack::device::SimRng;
use synack::stack::{Ipv4Cidr, Stack, StackConfig};
use synack::tcp::{Config, SeqNum, SynCookies};
use synack::time::Instant;
use synack::wire::tcp::{Flags, Options, Packet as TcpPacket, Repr, Timestamps};
use synack::wire::{IpProtocol, ipv4};

use crate::report::Row;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

pub fn spoofed_syns(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SimRng::new(seed);
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            let src = Ipv4Addr::new(198, 19, (r >> 8) as u8, r as u8);
            let seg = Repr {
                src_port: (r >> 16) as u16 | 1024,
                dst_port: 80,
                seq: SeqNum((r >> 32) as u32),
                ack: SeqNum(0),
                flags: Flags::SYN,
                window: 64240,
                urgent: 0,
                options: Options {
                    mss: Some(1460),
                    window_scale: Some(7),
                    sack_permitted: true,
                    timestamps: Some(Timestamps {
                        tsval: r as u32,
                        tsecr: 0,
                    }),
                    ..Options::default()
                },
                payload: &[],
            };
            let len = seg.buffer_len();
            let mut pkt = vec![0u8; ipv4::HEADER_LEN + len];
            let mut ip = ipv4::Packet::new_unchecked(&mut pkt[..]);
            ipv4::Repr::new(src, SERVER, IpProtocol::Tcp, len)
                .emit(&mut ip, true)
                .expect("emit IPv4");
            seg.emit(
                &mut TcpPacket::new_unchecked(ip.payload_mut()),
                IpAddr::V4(src),
                IpAddr::V4(SERVER),
            )
            .expect("emit TCP");
            pkt
        })
        .collect()
}

fn server(syncookies: SynCookies, max_syn_backlog: usize) -> Stack {
    let cfg = StackConfig {
        tcp: Arc::new(Config {
            syncookies,
            max_syn_backlog,
            ..Config::default()
        }),
        ..StackConfig::default()
    };
    let mut s = Stack::new(cfg, [7; 32]);
    s.add_address(Ipv4Cidr::new(SERVER, 24));
    s.listen(SocketAddr::new(IpAddr::V4(SERVER), 80), 1024)
        .expect("listen");
    s
}

/// Feeds SYNs from `pool` (round-robin), time `t0` on at 1 µs each, for `budget` of wall time
/// or `limit` SYNs; returns (SYNs, SYNs/s, replies written).
pub fn measure(
    s: &mut Stack,
    pool: &[Vec<u8>],
    t0: u64,
    budget: Duration,
    limit: u64,
) -> (u64, f64, u64) {
    let mut out = [0u8; 1500];
    let (mut n, mut replies) = (0u64, 0u64);
    let start = WallClock::now();
    'outer: while start.elapsed() < budget {
        for _ in 0..1024 {
            if n >= limit {
                break 'outer;
            }
            let now = Instant::from_micros(t0 + n);
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now); // SYN-ACK retransmissions of queued entries
            }
            let p = &pool[(n % pool.len() as u64) as usize];
            s.handle_packet(now, black_box(p));
            while let Some(k) = s.poll_transmit(now, &mut out) {
                black_box(&out[..k]);
                replies += 1;
            }
            n += 1;
        }
    }
    (n, n as f64 / start.elapsed().as_secs_f64(), replies)
}

pub fn run(budget: Duration) -> Vec<Row> {
    // Distinct sources, so no SYN is a retransmission of an earlier one: the measured pool,
    // and another that fills the SYN queue first.
    let pool = spoofed_syns(1 << 18, 1);
    let filler = spoofed_syns(8192, 2);
    let cases: [(&str, SynCookies, usize, u64); 4] = [
        (
            "flood: cookies always (syncookies=2)",
            SynCookies::Always,
            4096,
            u64::MAX,
        ),
        (
            "flood: queue full, cookies (syncookies=1)",
            SynCookies::OnOverflow,
            4096,
            u64::MAX,
        ),
        (
            "flood: queue full, no cookies, dropped (syncookies=0)",
            SynCookies::Never,
            4096,
            u64::MAX,
        ),
        (
            "flood: new SYN-queue entries (queue not full)",
            SynCookies::Never,
            1 << 20,
            1 << 18,
        ),
    ];
    let mut rows = Vec::new();
    for (name, mode, backlog, limit) in cases {
        let mut s = server(mode, backlog);
        // Warm up; for the queue-full cases this fills the queue first.
        let warm = if limit == u64::MAX { 8192 } else { 0 };
        let (w, _, _) = measure(&mut s, &filler, 0, Duration::from_secs(5), warm);
        let (n, rate, replies) = measure(&mut s, &pool, w, budget, limit);
        rows.push(
            Row::higher(name, "SYNs/s", Some(rate), None, None).note(format!(
                "{n} SYNs, {:.0} ns each, {replies} SYN-ACKs written, SYN queue {} after",
                1e9 / rate,
                s.syn_queue_len()
            )),
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_answer_every_syn_and_queue_stays_empty() {
        let pool = spoofed_syns(1000, 3);
        let mut s = server(SynCookies::Always, 4096);
        let (n, rate, replies) = measure(&mut s, &pool, 0, Duration::from_secs(30), 1000);
        assert_eq!((n, replies), (1000, 1000));
        assert!(rate > 0.0);
        assert_eq!(s.syn_queue_len(), 0);
    }
}
