//! conns: memory per idle established connection. Each count runs in a fresh child process
//! (this binary again, `conns-child N`), so the RSS delta is not flattered by memory an earlier
//! figure freed into the allocator.

use core::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use synack::stack::{SocketHandle, Stack, StackConfig};
use synack::tcp::Config;
use synack::time::Instant;

use crate::link::{Link, now_micros};
use crate::pair::{CLIENT, SERVER, dir_from};
use crate::synack_pair;

/// Ephemeral ports per (client address, server port): 1024..=65535.
const PORTS_PER_SERVER_PORT: usize = 64_512;
const BUFFER: usize = 64 * 1024;

/// Resident set size of this process in bytes (VmRSS of /proc/self/status).
pub fn rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[derive(Debug, Clone, Copy)]
pub struct ConnsResult {
    pub n: usize,
    /// RSS growth for the n connections, both ends (two TCBs, two table entries each).
    pub rss_delta: u64,
    pub secs: f64,
}

fn carry(stacks: &mut [Stack; 2], link: &Link, from: usize, now: u64) {
    synack_pair::egress(&mut stacks[from], link, dir_from(from), now);
    synack_pair::ingress(&mut stacks[1 - from], link, dir_from(from), now);
}

/// Opens `n` connections between two stacks (client 198.18.0.1 with ephemeral ports
/// 1024–65535, server 198.18.0.2 listening on as many ports from 10000 up as `n` needs), all
/// established and accepted, then idle. With `touch`, each connection then carries one byte each
/// way (so its buffers have been used once). Returns the RSS growth.
pub fn open(n: usize, touch: bool) -> ConnsResult {
    let before = rss().unwrap_or(0);
    let start = std::time::Instant::now();
    // The client gets the whole port range 1024-65535 (Linux's default is 32768-60999).
    let cfg = StackConfig {
        ephemeral_ports: (1024, 65535),
        tcp: Arc::new(Config {
            send_buffer: BUFFER,
            recv_buffer: BUFFER,
            recv_buffer_max: BUFFER,
            ..Config::default()
        }),
        ..StackConfig::default()
    };
    let mut client = Stack::new(cfg, [1; 32]);
    client.add_address(synack::stack::Ipv4Cidr::new(synack_pair::CLIENT_IP, 24));
    let server = synack_pair::stack(
        synack_pair::Variant::Default,
        synack_pair::SERVER_IP,
        2,
        1500,
        BUFFER,
    );
    let mut stacks = [client, server];
    let link = Link::new(1500);
    let ports = n.div_ceil(PORTS_PER_SERVER_PORT);
    let listeners: Vec<SocketHandle> = (0..ports)
        .map(|i| {
            let a = SocketAddr::new(IpAddr::V4(synack_pair::SERVER_IP), 10_000 + i as u16);
            stacks[SERVER].listen(a, 4096).expect("listen")
        })
        .collect();
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    let mut opened = 0usize;
    while opened < n || servers.len() < n {
        let now = now_micros();
        let t = Instant::from_micros(now);
        let batch = (n - opened).min(1024);
        for _ in 0..batch {
            let port = 10_000 + (opened / PORTS_PER_SERVER_PORT) as u16;
            let to = SocketAddr::new(IpAddr::V4(synack_pair::SERVER_IP), port);
            clients.push(stacks[CLIENT].connect(t, to, None).expect("connect"));
            opened += 1;
        }
        for _ in 0..4 {
            carry(&mut stacks, &link, CLIENT, now);
            carry(&mut stacks, &link, SERVER, now);
        }
        for &l in &listeners {
            while let Some(h) = stacks[SERVER].accept(l).expect("accept") {
                servers.push(h);
            }
        }
        assert!(
            start.elapsed().as_secs() < 600,
            "conns: stuck at {opened}/{n}"
        );
    }
    if touch {
        let mut b = [0u8; 1];
        for (i, (&c, &s)) in clients.iter().zip(&servers).enumerate() {
            let t = Instant::from_micros(now_micros());
            stacks[CLIENT].send(t, c, b"x").expect("send");
            stacks[SERVER].send(t, s, b"y").expect("send");
            if i % 1024 == 1023 || i + 1 == n {
                for _ in 0..4 {
                    let now = now_micros();
                    carry(&mut stacks, &link, CLIENT, now);
                    carry(&mut stacks, &link, SERVER, now);
                }
            }
        }
        for (&c, &s) in clients.iter().zip(&servers) {
            let t = Instant::from_micros(now_micros());
            assert_eq!(stacks[CLIENT].recv(t, c, &mut b).expect("recv"), 1);
            assert_eq!(stacks[SERVER].recv(t, s, &mut b).expect("recv"), 1);
        }
        for _ in 0..4 {
            let now = now_micros();
            carry(&mut stacks, &link, CLIENT, now);
            carry(&mut stacks, &link, SERVER, now);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(stacks[CLIENT].connection_count(), n);
    assert_eq!(stacks[SERVER].connection_count(), n);
    let after = rss().unwrap_or(0);
    let r = ConnsResult {
        n,
        rss_delta: after.saturating_sub(before),
        secs,
    };
    // Keep everything alive until measured.
    std::hint::black_box((&stacks, &clients, &servers));
    r
}

/// Runs `open(n, touch)` in a child process and parses its one-line answer.
pub fn in_child(n: usize, touch: bool) -> Option<ConnsResult> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args([
            "conns-child",
            &n.to_string(),
            if touch { "touch" } else { "idle" },
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "conns {n}: child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let mut it = s.split_whitespace();
    let n: usize = it.next()?.parse().ok()?;
    let rss_delta: u64 = it.next()?.parse().ok()?;
    let secs: f64 = it.next()?.parse().ok()?;
    Some(ConnsResult { n, rss_delta, secs })
}

/// The child's side of [`in_child`].
pub fn child(args: &[String]) {
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let touch = args.get(1).is_some_and(|a| a == "touch");
    let r = open(n, touch);
    println!("{} {} {}", r.n, r.rss_delta, r.secs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_connections_across_server_ports() {
        // More than one server port's worth would be slow in a test; 2,000 with a touch checks
        // the bookkeeping and that every connection carries data.
        let r = open(2_000, true);
        assert_eq!(r.n, 2_000);
        assert!(rss().is_some_and(|b| b > 0));
    }
}
