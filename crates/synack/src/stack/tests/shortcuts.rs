//! The stack's shortcuts (`stack/shortcuts.rs`: no refresh after a write or a read on an
//! open connection, the fixed-offset IPv4 header) change nothing anyone can see. The same
//! seeded exchange between two untraced stacks (a trace takes the full refresh, so the
//! shortcuts apply only without one), over several connections at once, IPv4 and IPv6,
//! with loss, runs once with the shortcuts off and once on: it must put the same packets
//! on the wire at the same instants, report the same sockets changed in the same order
//! through `poll_changed`, with the same readiness, connection states and deadlines after
//! every step, and end with the same counters. Each run with them on must
//! take each shortcut a number of times, so that the comparison cannot pass vacuously.

use std::fmt::Write as _;

use super::*;
use crate::stack::shortcuts::{Shortcut, set_shortcuts};

/// A stack like [`stack`]'s, without the trace, reporting changed sockets.
fn untraced(ip: Ipv4Addr, name: &'static str, secret: u8) -> Stack {
    let cfg = StackConfig {
        name: name.into(),
        trace: false,
        ..StackConfig::default()
    };
    let mut s = Stack::new(cfg, [secret; 32]);
    s.add_address(Ipv4Cidr::new(ip, 24));
    let ip6 = if ip == A_IP { A_IP6 } else { B_IP6 };
    s.add_address(Ipv6Cidr::new(ip6, 64));
    s.report_changes(true);
    s
}

/// A small seeded generator (xorshift64*), for the script and the losses.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.below(1 << 20) as f64) < p * (1 << 20) as f64
    }
}

/// What a driver sees of stack `s` after a step: the sockets `poll_changed` reports, in
/// order, then for every handle its readiness, state and deadline, and the stack's
/// deadline.
fn observe(log: &mut String, name: &str, s: &mut Stack, handles: &[SocketHandle]) {
    let mut changed = Vec::new();
    while let Some(h) = s.poll_changed() {
        changed.push(h.index);
    }
    write!(
        log,
        "{name} changed {changed:?} next {:?};",
        s.poll_timeout()
    )
    .unwrap();
    for &h in handles {
        let events = s.poll_events(h);
        let conn = s
            .connection(h)
            .map(|c| (c.state(), c.poll_timeout(), c.send_queue_len()));
        write!(log, " {}:{events:?} {conn:?}", h.index).unwrap();
    }
    log.push('\n');
}

/// Both stacks, the packets between them (a `loss` share of them dropped), and a script of
/// application calls on `conns` connections from a to b (every third over IPv6): writes of
/// 1 to 5000 bytes, some with MSG_MORE or MSG_EOR, reads, Nagle and cork switched; after
/// `steps` steps both ends shut down, read what is left and close. Returns everything
/// observable, with how many connections were accepted (a check of the script itself).
fn exchange(seed: u64, loss: f64, conns: usize, steps: usize) -> String {
    let mut a = untraced(A_IP, "client", 1);
    let mut b = untraced(B_IP, "server", 2);
    let (mut now, delay) = (Instant::ZERO, Duration::from_millis(3));
    let mut wire: VecDeque<(Instant, bool, Vec<u8>)> = VecDeque::new();
    let (mut net, mut app) = (Rng::new(seed), Rng::new(seed ^ 0xa99));
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut log = String::new();
    let l = b
        .listen(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 80), 64)
        .unwrap();
    let clients: Vec<SocketHandle> = (0..conns)
        .map(|i| {
            let ip: IpAddr = if i % 3 == 2 {
                B_IP6.into()
            } else {
                B_IP.into()
            };
            a.connect(now, SocketAddr::new(ip, 80), None).unwrap()
        })
        .collect();
    let mut servers = Vec::new();
    let (mut buf, mut rbuf) = (vec![0u8; 2048], vec![0u8; 1 << 16]);
    let end = steps + 400;
    for step in 0..end {
        while let Some(s) = b.accept(l).unwrap() {
            servers.push(s);
        }
        for (name, s, hs) in [("a", &mut a, &clients), ("b", &mut b, &servers)] {
            if hs.is_empty() {
                continue;
            }
            if step == steps {
                for &h in hs.iter() {
                    let _ = s.set_option(now, h, SocketOption::Cork(false));
                    let r = s.shutdown(now, h, Shutdown::Write);
                    writeln!(log, "{now:?} {name} {} shutdown {r:?}", h.index).unwrap();
                }
            }
            if step == end - 100 {
                for &h in hs.iter() {
                    s.close(now, h);
                }
            }
            if step >= end - 100 {
                continue;
            }
            let h = hs[app.below(hs.len() as u64) as usize];
            let r = match app.below(12) {
                0 => s
                    .set_option(now, h, SocketOption::NoDelay(app.chance(0.5)))
                    .map(|()| 0),
                1 => s
                    .set_option(now, h, SocketOption::Cork(app.chance(0.3)))
                    .map(|()| 0),
                2..=4 if step < steps => {
                    let len = 1 + app.below(data.len() as u64) as usize;
                    s.send(now, h, &data[..len])
                }
                5 | 6 if step < steps => {
                    let len = 1 + app.below(3000) as usize;
                    let (more, eor) = (app.chance(0.3), app.chance(0.2));
                    s.send_with(now, h, &data[..len], more, eor)
                }
                _ => Ok(0),
            };
            writeln!(
                log,
                "{now:?} {name} {} {:?}",
                h.index,
                r.map_err(|e| e.kind())
            )
            .unwrap();
            // Reads: all of it usually, a little sometimes, none for a while now and then.
            if app.chance(0.7) {
                for &h in hs.iter() {
                    let want = if app.chance(0.2) { 100 } else { rbuf.len() };
                    while let Ok(k @ 1..) = s.recv(now, h, &mut rbuf[..want]) {
                        writeln!(log, "{now:?} {name} {} read {k}", h.index).unwrap();
                    }
                }
            }
        }
        // The network's turn: what each sends, the arrivals due, the timers.
        for from_a in [true, false, true, false] {
            let s = if from_a { &mut a } else { &mut b };
            while let Some(n) = s.poll_transmit(now, &mut buf) {
                writeln!(log, "{now:?} {from_a} {:02x?}", &buf[..n]).unwrap();
                if !net.chance(loss) {
                    wire.push_back((now + delay, from_a, buf[..n].to_vec()));
                }
            }
            if from_a {
                continue;
            }
            while wire.front().is_some_and(|(t, _, _)| *t <= now) {
                let (_, to_b, p) = wire.pop_front().unwrap();
                if to_b {
                    b.handle_packet(now, &p);
                } else {
                    a.handle_packet(now, &p);
                }
            }
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        observe(&mut log, "a", &mut a, &clients);
        let mut hs = servers.clone();
        hs.push(l);
        observe(&mut log, "b", &mut b, &hs);
        // The next instant: an arrival or a deadline, or the application's next turn.
        let next = [
            wire.front().map(|w| w.0),
            a.poll_timeout(),
            b.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .filter(|&t| t > now)
        .min();
        let tick = now + Duration::from_millis(1 + app.below(4));
        now = next.map_or(tick, |t| t.min(tick));
    }
    writeln!(log, "{} accepted of {conns}", servers.len()).unwrap();
    writeln!(log, "{:?}\n{:?}", a.counters(), b.counters()).unwrap();
    log
}

/// Runs `f` with the shortcuts off, then on: the same outcome, and each shortcut taken at
/// least `min` times (indexed by [`Shortcut`]) in the second run, never in the first.
/// Returns the outcome.
fn same_either_way(min: [u64; 3], f: impl Fn() -> String) -> String {
    let before = set_shortcuts(false);
    let general = f();
    assert_eq!(set_shortcuts(true), before, "a shortcut taken while off");
    let fast = f();
    let after = set_shortcuts(true);
    for s in [Shortcut::Write, Shortcut::Read, Shortcut::Ipv4Header] {
        let hits = after[s as usize] - before[s as usize];
        assert!(hits >= min[s as usize], "{s:?} taken only {hits} times");
    }
    if general != fast {
        let at = general
            .lines()
            .zip(fast.lines())
            .position(|(g, f)| g != f)
            .unwrap_or(general.lines().count().min(fast.lines().count()));
        panic!(
            "the shortcuts changed the outcome at line {at}:\n general: {}\n fast:    {}",
            general.lines().nth(at).unwrap_or("(end)"),
            fast.lines().nth(at).unwrap_or("(end)")
        );
    }
    fast
}

#[test]
fn exchanges_are_the_same_with_and_without_the_stack_shortcuts() {
    for (seed, loss) in [(1, 0.0), (2, 0.02), (3, 0.05)] {
        let out = same_either_way([300, 100, 500], || exchange(seed, loss, 6, 600));
        assert!(
            out.contains("6 accepted of 6"),
            "seed {seed}: not all connected"
        );
    }
}
