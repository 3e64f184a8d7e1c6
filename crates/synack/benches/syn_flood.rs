//! SYNs handled per second by one stack, in-process: `cargo bench -p synack --bench syn_flood`.
//!
//! A listener takes spoofed SYNs (pre-built IPv4 packets from 65,536 random sources, options
//! like Linux's) through `Stack::handle_packet`, and every SYN-ACK it owes is written out with
//! `Stack::poll_transmit`, so a figure covers the whole answer: IPv4 and TCP parsing and
//! checksums, demultiplexing, the SYN queue or the cookie, and building the SYN-ACK (and the
//! queued entries' SYN-ACK retransmissions as they fall due). Virtual time advances 1 µs per
//! SYN. A plain timing loop (no harness dependency); figures are noisy
//! on shared machines.

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

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn spoofed_syns(n: usize, seed: u64) -> Vec<Vec<u8>> {
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
                .unwrap();
            seg.emit(
                &mut TcpPacket::new_unchecked(ip.payload_mut()),
                IpAddr::V4(src),
                IpAddr::V4(SERVER),
            )
            .unwrap();
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
        .unwrap();
    s
}

/// Feeds SYNs from `pool` (round-robin), time `t0` on at 1 µs each, for `budget` of wall time
/// or `limit` SYNs; returns (SYNs, SYNs/s, replies written).
fn measure(
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

fn main() {
    // Distinct sources, so no SYN is a retransmission of an earlier one: the measured pool,
    // and another that fills the SYN queue first.
    let pool = spoofed_syns(1 << 18, 1);
    let filler = spoofed_syns(8192, 2);
    let budget = Duration::from_millis(500);
    println!("| mode | SYNs | SYNs/s | ns/SYN | SYN-ACKs | SYN queue after |");
    println!("|---|---:|---:|---:|---:|---:|");
    let cases: [(&str, SynCookies, usize, u64); 4] = [
        (
            "cookies always (syncookies=2)",
            SynCookies::Always,
            4096,
            u64::MAX,
        ),
        (
            "queue full, cookies (syncookies=1)",
            SynCookies::OnOverflow,
            4096,
            u64::MAX,
        ),
        (
            "queue full, no cookies: dropped (syncookies=0)",
            SynCookies::Never,
            4096,
            u64::MAX,
        ),
        (
            "new SYN-queue entries (queue not full)",
            SynCookies::Never,
            1 << 20,
            1 << 18,
        ),
    ];
    for (name, mode, backlog, limit) in cases {
        let mut s = server(mode, backlog);
        // Warm up; for the queue-full cases this fills the queue first.
        let warm = if limit == u64::MAX { 8192 } else { 0 };
        let (w, _, _) = measure(&mut s, &filler, 0, Duration::from_secs(5), warm);
        let (n, rate, replies) = measure(&mut s, &pool, w, budget, limit);
        println!(
            "| {name} | {n} | {rate:.0} | {:.0} | {replies} | {} |",
            1e9 / rate,
            s.syn_queue_len()
        );
    }
}
