//! A SYN flood on SimNet (RFC 4987): an attacker host sends 1,000,000 SYNs from random spoofed
//! sources at the line rate of its 100 Mbit/s link while 1,000 real clients connect to the
//! same listener and each sends 64 KiB, verified by hash on arrival.
//!
//! With SYN cookies on (Linux's default, `syncookies` = 1) every real client gets through
//! during the flood and the server's half-open state stays bounded by `max_syn_backlog`. With
//! cookies off the same flood fills the SYN queue within milliseconds and no real client gets
//! through while it lasts: that is the attack the defence defeats.
//!
//! Run with `--nocapture` to see the figures.

use core::hash::Hasher;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::collections::HashMap;
use std::sync::Arc;

use siphasher::sip::SipHasher13;
use synack::device::SimRng;
use synack::device::sim::LinkConfig;
use synack::sim::{World, pattern_byte};
use synack::stack::{SYN_QUEUE_ENTRY_SIZE, SocketHandle, StackConfig};
use synack::tcp::{Config, SeqNum, SynCookies};
use synack::time::{Duration, Instant};
use synack::wire::tcp::{Flags, Options, Packet as TcpPacket, Repr, Timestamps};
use synack::wire::{IpProtocol, ipv4};

const SYNS: u64 = 1_000_000;
const CLIENTS: usize = 1000;
const CLIENT_HOSTS: usize = 4;
const BYTES: usize = 64 * 1024;
/// The attacker's link: its line rate bounds the flood.
const ATTACK_BPS: u64 = 100_000_000;
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), 80);
/// Client i starts at CLIENT_START + i * CLIENT_GAP (the flood starts at zero).
const CLIENT_START: Duration = Duration::from_millis(100);
const CLIENT_GAP: Duration = Duration::from_millis(1);

/// What one run showed.
#[derive(Debug)]
struct Report {
    syns_sent: u64,
    /// When the attacker's last SYN reached the server.
    flood_end: Instant,
    /// Clients whose 64 KiB arrived intact, and the last such arrival.
    succeeded: usize,
    succeeded_during_flood: usize,
    last_success: Option<Instant>,
    corrupted: usize,
    peak_syn_queue: usize,
    peak_syn_queue_bytes: usize,
    peak_connections: usize,
    end: Instant,
    wall: std::time::Duration,
    sent_cookies: u64,
    recv_cookies: u64,
    failed_cookies: u64,
    listen_drops: u64,
    req_q_full_drop: u64,
}

/// The attacker: SYNs with random spoofed sources (198.19.0.0/16, which no host owns, so the
/// SYN-ACKs die at the switch), random ports, ISNs and timestamps, options like Linux's.
struct Attacker {
    rng: SimRng,
    buf: Vec<u8>,
}

impl Attacker {
    fn syn(&mut self) -> &[u8] {
        let r = self.rng.next_u64();
        let src = Ipv4Addr::new(198, 19, (r >> 8) as u8, r as u8);
        let seg = Repr {
            src_port: (r >> 16) as u16 | 1024,
            dst_port: SERVER.port(),
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
                    tsval: r as u32 ^ 0x5a5a_5a5a,
                    tsecr: 0,
                }),
                ..Options::default()
            },
            payload: &[],
        };
        let IpAddr::V4(dst) = SERVER.ip() else {
            unreachable!()
        };
        let len = seg.buffer_len();
        self.buf.resize(ipv4::HEADER_LEN + len, 0);
        let mut ip = ipv4::Packet::new_unchecked(&mut self.buf[..]);
        ipv4::Repr::new(src, dst, IpProtocol::Tcp, len)
            .emit(&mut ip, true)
            .unwrap();
        seg.emit(
            &mut TcpPacket::new_unchecked(ip.payload_mut()),
            IpAddr::V4(src),
            SERVER.ip(),
        )
        .unwrap();
        &self.buf
    }
}

fn digest(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h = SipHasher13::new_with_keys(1, 2);
    for b in bytes {
        h.write_u8(b);
    }
    h.finish()
}

/// One real client's transfer as the server sees it.
#[derive(Default)]
struct Incoming {
    bytes: usize,
    hash: Option<SipHasher13>,
}

fn run(syncookies: SynCookies, limit: Duration) -> Report {
    let started = std::time::Instant::now();
    let mut w = World::new(7);
    let sw = w.net.add_switch("switch");
    let fast = LinkConfig::delay_ms(1).with_bandwidth(1_000_000_000);
    let server_cfg = StackConfig {
        tcp: Arc::new(Config {
            syncookies,
            ..Config::default()
        }),
        ..StackConfig::default()
    };
    let IpAddr::V4(server_ip) = SERVER.ip() else {
        unreachable!()
    };
    let server = w.add_host("server", server_ip, server_cfg, 2);
    let clients: Vec<usize> = (0..CLIENT_HOSTS)
        .map(|i| {
            let ip = Ipv4Addr::new(198, 18, 0, 10 + i as u8);
            w.add_host("client", ip, StackConfig::default(), 100 + i as u64)
        })
        .collect();
    for &h in clients.iter().chain([&server]) {
        let id = w.hosts[h].0;
        w.net.connect(id, sw, fast).unwrap();
    }
    let attacker_id = w.net.add_host("attacker");
    let attack_link = LinkConfig::delay_ms(1).with_bandwidth(ATTACK_BPS);
    w.net.connect(attacker_id, sw, attack_link).unwrap();
    let mut attacker = Attacker {
        rng: SimRng::new(99),
        buf: Vec::new(),
    };
    let syn_len = attacker.syn().len() as u64;
    // Serialisation time of one SYN, in nanoseconds (Instant counts whole microseconds).
    let per_syn_ns = syn_len * 8 * 1_000_000_000 / ATTACK_BPS;

    let listener = w.hosts[server].1.listen(SERVER, 1024).unwrap();
    let expected: Vec<u64> = (0..CLIENTS)
        .map(|i| digest((0..BYTES as u64).map(|j| pattern_byte(i as u64, j))))
        .collect();
    // Server side: accepted handle -> client index (by the client's address and port).
    let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
    let mut accepted: Vec<(SocketHandle, usize)> = Vec::new();
    let mut incoming: Vec<Incoming> = (0..CLIENTS).map(|_| Incoming::default()).collect();
    let mut done = vec![false; CLIENTS];
    let mut r = Report {
        syns_sent: 0,
        flood_end: Instant::ZERO,
        succeeded: 0,
        succeeded_during_flood: 0,
        last_success: None,
        corrupted: 0,
        peak_syn_queue: 0,
        peak_syn_queue_bytes: 0,
        peak_connections: 0,
        end: Instant::ZERO,
        wall: std::time::Duration::ZERO,
        sent_cookies: 0,
        recv_cookies: 0,
        failed_cookies: 0,
        listen_drops: 0,
        req_q_full_drop: 0,
    };
    // When the attacker's link finishes what it was given, in nanoseconds.
    let mut flood_busy_ns = 0u64;
    let mut next_client = 0;
    let mut next_poll = Instant::ZERO;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = w.now;
        // The attacker keeps its link busy, ~10 ms of SYNs queued ahead.
        let now_ns = now.total_micros() * 1000;
        while r.syns_sent < SYNS && flood_busy_ns <= now_ns + 10_000_000 {
            let pkt = attacker.syn();
            w.net.send(now, attacker_id, pkt).unwrap();
            r.syns_sent += 1;
            flood_busy_ns = flood_busy_ns.max(now_ns) + per_syn_ns;
        }
        if r.syns_sent == SYNS && r.flood_end == Instant::ZERO {
            // Serialised by then, plus the two 1 ms hops.
            r.flood_end = Instant::from_micros(flood_busy_ns.div_ceil(1000) + 2000);
        }
        // Real clients start one per millisecond and queue their 64 KiB at once (it goes out
        // when the connection is established, RFC 9293 §3.10.2).
        while next_client < CLIENTS
            && CLIENT_START + CLIENT_GAP * next_client as u32 <= now - Instant::ZERO
        {
            let i = next_client;
            let stack = &mut w.hosts[clients[i % CLIENT_HOSTS]].1;
            let h = stack.connect(now, SERVER, None).unwrap();
            let local = stack.connection(h).unwrap().local();
            let bytes: Vec<u8> = (0..BYTES as u64)
                .map(|j| pattern_byte(i as u64, j))
                .collect();
            assert_eq!(stack.send(now, h, &bytes).unwrap(), BYTES);
            by_addr.insert(local, i);
            next_client += 1;
        }
        // The server application: accept, read, verify.
        if now >= next_poll {
            next_poll = now + Duration::from_millis(1);
            let s = &mut w.hosts[server].1;
            while let Some(h) = s.accept(listener).unwrap() {
                let peer = s.connection(h).unwrap().remote();
                let i = by_addr[&peer];
                incoming[i].hash = Some(SipHasher13::new_with_keys(1, 2));
                accepted.push((h, i));
            }
            accepted.retain(|&(h, i)| {
                loop {
                    let n = s.recv(now, h, &mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    let inc = &mut incoming[i];
                    inc.bytes += n;
                    if let Some(hh) = inc.hash.as_mut() {
                        for &b in &buf[..n] {
                            hh.write_u8(b);
                        }
                    }
                }
                if incoming[i].bytes < BYTES {
                    return true;
                }
                let ok = incoming[i].bytes == BYTES
                    && incoming[i].hash.take().map(|h| h.finish()) == Some(expected[i]);
                if ok {
                    done[i] = true;
                    r.succeeded += 1;
                    r.last_success = Some(now);
                    if r.flood_end == Instant::ZERO || now <= r.flood_end {
                        r.succeeded_during_flood += 1;
                    }
                } else {
                    r.corrupted += 1;
                }
                s.close(now, h);
                false
            });
            r.peak_syn_queue_bytes = r.peak_syn_queue_bytes.max(s.syn_queue_memory());
            r.peak_connections = r.peak_connections.max(s.connection_count());
        }
        let all_done = r.succeeded + r.corrupted == CLIENTS;
        if (all_done && r.syns_sent == SYNS && now >= r.flood_end) || now - Instant::ZERO > limit {
            break;
        }
        if !w.step() {
            // Idle until the next client starts or the next poll.
            let next = if next_client < CLIENTS {
                Instant::ZERO + CLIENT_START + CLIENT_GAP * next_client as u32
            } else {
                next_poll
            };
            w.now = next.max(now + Duration::from_millis(1));
        }
    }
    let s = &w.hosts[server].1;
    let c = s.counters();
    r.peak_syn_queue = s.syn_queue_peak();
    r.sent_cookies = c.syncookies_sent;
    r.recv_cookies = c.syncookies_recv;
    r.failed_cookies = c.syncookies_failed;
    r.listen_drops = c.listen_drops;
    r.req_q_full_drop = c.req_q_full_drop;
    r.end = w.now;
    r.wall = started.elapsed();
    r
}

#[test]
fn syn_flood_real_clients_get_through_with_cookies_and_not_without() {
    let max_syn_backlog = Config::default().max_syn_backlog;

    let on = run(SynCookies::OnOverflow, Duration::from_secs(60));
    eprintln!(
        "syn flood, cookies on: {} SYNs at {} Mbit/s, flood over at {:?}; {}/{CLIENTS} clients \
         ok ({} during the flood, last at {:?}); peak SYN queue {} entries of {} B, {} B held; \
         peak connections {}; SyncookiesSent {} Recv {} Failed {}; ListenDrops {}; run ended at \
         {:?} virtual, {:.1?} wall",
        on.syns_sent,
        ATTACK_BPS / 1_000_000,
        on.flood_end,
        on.succeeded,
        on.succeeded_during_flood,
        on.last_success,
        on.peak_syn_queue,
        SYN_QUEUE_ENTRY_SIZE,
        on.peak_syn_queue_bytes,
        on.peak_connections,
        on.sent_cookies,
        on.recv_cookies,
        on.failed_cookies,
        on.listen_drops,
        on.end,
        on.wall,
    );
    assert_eq!(on.syns_sent, SYNS);
    assert_eq!(on.corrupted, 0);
    assert_eq!(on.succeeded, CLIENTS, "every real client gets through");
    assert_eq!(on.succeeded_during_flood, CLIENTS, "while the flood lasts");
    // Bounded: the queue never passes its limit, and holds well under a megabyte.
    assert!(on.peak_syn_queue <= max_syn_backlog);
    assert!(
        on.peak_syn_queue_bytes < 1 << 20,
        "{}",
        on.peak_syn_queue_bytes
    );
    assert!(on.peak_connections <= CLIENTS);
    // The queue filled with spoofed entries; every other SYN got a cookie, and every real
    // client's cookie came back.
    assert_eq!(on.peak_syn_queue, max_syn_backlog);
    assert!(on.sent_cookies >= SYNS - max_syn_backlog as u64);
    assert_eq!(on.failed_cookies, 0);
    assert!(on.recv_cookies <= CLIENTS as u64);
    assert!(on.end < Instant::from_secs(10), "bounded virtual time");

    let off = run(SynCookies::Never, Duration::from_secs(90));
    eprintln!(
        "syn flood, cookies off: {} SYNs, flood over at {:?}; {}/{CLIENTS} clients ok during \
         the flood; {} in the end, last at {:?} (after the spoofed entries timed out); peak SYN \
         queue {}; SYNs dropped (ListenDrops) {}; {:.1?} wall",
        off.syns_sent,
        off.flood_end,
        off.succeeded_during_flood,
        off.succeeded,
        off.last_success,
        off.peak_syn_queue,
        off.listen_drops,
        off.wall,
    );
    assert_eq!(off.sent_cookies, 0);
    assert_eq!(
        off.succeeded_during_flood, 0,
        "without cookies no real client gets through during the flood"
    );
    // Without cookies the last quarter of the queue stays free (Linux tcp_conn_request), so
    // it never fills and every drop is that rule's.
    assert_eq!(
        off.peak_syn_queue,
        max_syn_backlog - max_syn_backlog / 4 + 1
    );
    assert_eq!(off.req_q_full_drop, 0);
    assert!(off.listen_drops > SYNS / 2);
}
