//! Test harness: virtual time, segment capture and injection, and a lossy pipe between two
//! connections. Not every test uses every helper.
#![allow(dead_code)]

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;

pub use crate::device::SimRng;
use crate::device::sim::{LinkConfig, Loss};
use crate::sim::{TransferConfig, transfer};
use crate::tcp::ecn::Codepoint;
use crate::tcp::{Config, Connection, Counters, SeqNum, Shutdown, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, Options, Packet, Repr, Timestamps};

pub const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), 49152);
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), 80);
pub const CLIENT_ISS: SeqNum = SeqNum(1000);
pub const SERVER_ISS: SeqNum = SeqNum(5000);
pub const MSS: u16 = 1460;

/// A segment as sent, owned, with its parse at hand.
#[derive(Clone)]
pub struct Seg {
    pub bytes: Vec<u8>,
    pub from: SocketAddr,
    pub to: SocketAddr,
    /// The IP header's ECN codepoint: as the sender chose it, or as the pipe marked it.
    pub ecn: Codepoint,
}

impl Seg {
    pub fn repr(&self) -> Repr<'_> {
        let p = Packet::new_checked(&self.bytes[..]).expect("emitted segment must parse");
        Repr::parse(&p, self.from.ip(), self.to.ip(), true).expect("emitted segment must verify")
    }
    pub fn flags(&self) -> Flags {
        self.repr().flags
    }
    pub fn seq(&self) -> SeqNum {
        self.repr().seq
    }
    pub fn ack(&self) -> SeqNum {
        self.repr().ack
    }
    pub fn len(&self) -> usize {
        self.repr().payload.len()
    }
    pub fn window(&self) -> u16 {
        self.repr().window
    }
}

impl core::fmt::Debug for Seg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.repr())
    }
}

/// Every segment `c` wants to send now. Every test that sends through here also checks
/// `wants_poll`, on which a stack relies to poll only connections with something to do:
/// when it says false, the poll sends nothing and leaves the next deadline as it was.
pub fn drain(c: &mut Connection, now: Instant, ctr: &mut Counters) -> Vec<Seg> {
    drain_into(c, now, ctr, 1600)
}

/// [`drain`] with a caller's buffer of `buf_len` bytes.
pub fn drain_into(
    c: &mut Connection,
    now: Instant,
    ctr: &mut Counters,
    buf_len: usize,
) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; buf_len];
    for _ in 0..10_000 {
        let idle = !c.wants_poll();
        let deadline = c.poll_timeout();
        match c.poll_transmit(now, &mut buf, ctr) {
            Some(n) => {
                assert!(!idle, "wants_poll said no, yet a segment went: {:?}", c);
                out.push(Seg {
                    bytes: buf[..n].to_vec(),
                    from: c.local(),
                    to: c.remote(),
                    ecn: c.ecn_codepoint(),
                });
            }
            None => {
                if idle {
                    assert_eq!(c.poll_timeout(), deadline, "an idle poll moved a timer");
                }
                return out;
            }
        }
    }
    panic!("poll_transmit never stopped");
}

/// Feeds `seg` (sent by the peer) to `c`, passing a SYN to a listener through accept_syn.
pub fn deliver(c: &mut Connection, now: Instant, seg: &Seg, ctr: &mut Counters) {
    let r = seg.repr();
    if c.state() == State::Listen && r.flags.syn() && !r.flags.ack() && !r.flags.rst() {
        assert!(c.accept_syn(now, seg.from, &r, SERVER_ISS, ctr));
    } else {
        c.handle_segment(now, &r, ctr);
    }
}

/// [`deliver`] for a synchronized connection, with the segment's IP codepoint.
pub fn deliver_ecn(c: &mut Connection, now: Instant, seg: &Seg, ctr: &mut Counters) {
    c.handle_segment_ecn(now, &seg.repr(), seg.ecn, ctr);
}

pub fn config() -> Config {
    Config {
        initial_window: 10,
        ..Config::default()
    }
}

pub fn client(cfg: &Arc<Config>) -> Connection {
    Connection::new(cfg.clone(), CLIENT, MSS, 0)
}

pub fn server(cfg: &Arc<Config>) -> Connection {
    let mut s = Connection::new(cfg.clone(), SERVER, MSS, 0);
    s.listen().unwrap();
    s
}

/// A client of `cfg` that connected at time zero (ISS `iss`) and got the SYN-ACK at `t`,
/// offering MSS `mss` and SACK: established, the handshake's segments drained.
pub fn sack_client_established(
    cfg: &Arc<Config>,
    iss: u32,
    mss: u16,
    t: Instant,
    ctr: &mut Counters,
) -> Connection {
    let mut c = client(cfg);
    c.connect(Instant::ZERO, SERVER, SeqNum(iss), ctr).unwrap();
    drain(&mut c, Instant::ZERO, ctr);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, 299, iss + 1)
        .mss(mss)
        .sack_permitted();
    deliver(&mut c, t, &synack.seg(), ctr);
    assert_eq!(c.state(), State::Established);
    drain(&mut c, t, ctr);
    c
}

/// Builder for segments injected "from the peer" of a connection.
#[derive(Clone)]
pub struct Inject {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: Flags,
    pub window: u16,
    pub urgent: u16,
    pub options: Options,
    pub payload: Vec<u8>,
}

impl Inject {
    /// A segment from the server to the client.
    pub fn to_client(flags: Flags, seq: u32, ack: u32) -> Inject {
        Inject::new(SERVER, CLIENT, flags, seq, ack)
    }

    /// A segment from the client to the server.
    pub fn to_server(flags: Flags, seq: u32, ack: u32) -> Inject {
        Inject::new(CLIENT, SERVER, flags, seq, ack)
    }

    pub fn new(from: SocketAddr, to: SocketAddr, flags: Flags, seq: u32, ack: u32) -> Inject {
        Inject {
            from,
            to,
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags,
            window: 65535,
            urgent: 0,
            options: Options::default(),
            payload: Vec::new(),
        }
    }

    pub fn data(mut self, d: &[u8]) -> Inject {
        self.payload = d.to_vec();
        self
    }

    pub fn window(mut self, w: u16) -> Inject {
        self.window = w;
        self
    }

    pub fn mss(mut self, m: u16) -> Inject {
        self.options.mss = Some(m);
        self
    }

    pub fn ts(mut self, tsval: u32, tsecr: u32) -> Inject {
        self.options.timestamps = Some(Timestamps { tsval, tsecr });
        self
    }

    pub fn sack_permitted(mut self) -> Inject {
        self.options.sack_permitted = true;
        self
    }

    pub fn wscale(mut self, s: u8) -> Inject {
        self.options.window_scale = Some(s);
        self
    }

    pub fn urgent(mut self, up: u16) -> Inject {
        self.urgent = up;
        self.flags |= Flags::URG;
        self
    }

    pub fn seg(&self) -> Seg {
        let r = Repr {
            src_port: self.from.port(),
            dst_port: self.to.port(),
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            urgent: self.urgent,
            options: self.options,
            payload: &self.payload,
        };
        let mut bytes = vec![0u8; r.buffer_len()];
        r.emit(
            &mut Packet::new_unchecked(&mut bytes[..]),
            self.from.ip(),
            self.to.ip(),
        )
        .unwrap();
        Seg {
            bytes,
            from: self.from,
            to: self.to,
            ecn: Codepoint::NotEct,
        }
    }
}

/// Impairments of the pipe, per direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impair {
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
    /// Chance that a segment sent ECN-capable (ECT) arrives marked CE (RFC 3168 §5). When
    /// non-zero, every segment is delivered with its codepoint (`handle_segment_ecn`).
    pub ce: f64,
}

/// Two connections joined by a pipe with one-way `delay`, in virtual time.
pub struct Pipe {
    pub a: Connection,
    pub b: Connection,
    pub now: Instant,
    pub delay: Duration,
    pub impair: Impair,
    pub rng: SimRng,
    pub ctr_a: Counters,
    pub ctr_b: Counters,
    /// (arrival time, to_b, segment)
    in_flight: VecDeque<(Instant, bool, Seg)>,
    /// Every segment that was put on the wire, in order, with its send time and direction.
    pub log: Vec<(Instant, bool, Seg)>,
    pub keep_log: bool,
    /// Drop the n-th segment sent from a to b (0-based), once.
    pub drop_a_to_b: Vec<usize>,
    sent_a_to_b: usize,
    /// The caller's buffer each end's segments are polled into (1600 bytes: a header and
    /// a full MSS).
    pub buf_len: usize,
}

impl Pipe {
    pub fn new(a: Connection, b: Connection, delay: Duration) -> Pipe {
        Pipe {
            a,
            b,
            now: Instant::ZERO,
            delay,
            impair: Impair::default(),
            rng: SimRng::new(1),
            ctr_a: Counters::default(),
            ctr_b: Counters::default(),
            in_flight: VecDeque::new(),
            log: Vec::new(),
            keep_log: true,
            drop_a_to_b: Vec::new(),
            sent_a_to_b: 0,
            buf_len: 1600,
        }
    }

    /// A client (a) connecting to a listening server (b).
    pub fn connected(cfg: Config, delay: Duration) -> Pipe {
        let cfg = Arc::new(cfg);
        let mut p = Pipe::new(client(&cfg), server(&cfg), delay);
        p.a.connect(p.now, SERVER, CLIENT_ISS, &mut p.ctr_a)
            .unwrap();
        p.run_until(
            |p| p.a.state() == State::Established && p.b.state() == State::Established,
            Duration::from_secs(60),
        );
        p
    }

    fn send_from(&mut self, from_a: bool) {
        let now = self.now;
        let segs = if from_a {
            drain_into(&mut self.a, now, &mut self.ctr_a, self.buf_len)
        } else {
            drain_into(&mut self.b, now, &mut self.ctr_b, self.buf_len)
        };
        for s in segs {
            if self.keep_log {
                self.log.push((now, from_a, s.clone()));
            }
            if from_a {
                let n = self.sent_a_to_b;
                self.sent_a_to_b += 1;
                if let Some(i) = self.drop_a_to_b.iter().position(|&d| d == n) {
                    self.drop_a_to_b.remove(i);
                    continue;
                }
            }
            if self.rng.chance(self.impair.loss) {
                continue;
            }
            let mut s = s;
            if self.impair.ce > 0.0 && s.ecn != Codepoint::NotEct && self.rng.chance(self.impair.ce)
            {
                s.ecn = Codepoint::Ce;
            }
            let mut at = now + self.delay;
            if self.rng.chance(self.impair.reorder) {
                at += self.delay / 2 + Duration::from_micros(self.rng.below(5000));
            }
            if self.rng.chance(self.impair.duplicate) {
                self.push(at + Duration::from_micros(100), from_a, s.clone());
            }
            self.push(at, from_a, s);
        }
    }

    fn push(&mut self, at: Instant, to_b: bool, s: Seg) {
        let pos = self
            .in_flight
            .iter()
            .position(|(t, _, _)| *t > at)
            .unwrap_or(self.in_flight.len());
        self.in_flight.insert(pos, (at, to_b, s));
    }

    /// One step: deliver what is due, run timers, send. Returns false when nothing is left.
    pub fn step(&mut self) -> bool {
        while let Some((t, _, _)) = self.in_flight.front() {
            if *t > self.now {
                break;
            }
            let (_, to_b, s) = self.in_flight.pop_front().unwrap();
            let now = self.now;
            // Like a stack, poll the receiver after every segment, so each out-of-order
            // segment gets its own duplicate ACK.
            let with_ecn = self.impair.ce > 0.0;
            let (c, ctr) = match to_b {
                true => (&mut self.b, &mut self.ctr_b),
                false => (&mut self.a, &mut self.ctr_a),
            };
            match with_ecn && c.state().is_synchronized() {
                true => deliver_ecn(c, now, &s, ctr),
                false => deliver(c, now, &s, ctr),
            }
            self.send_from(!to_b);
        }
        let now = self.now;
        if self.a.poll_timeout().is_some_and(|t| t <= now) {
            self.a.handle_timeout(now, &mut self.ctr_a);
        }
        if self.b.poll_timeout().is_some_and(|t| t <= now) {
            self.b.handle_timeout(now, &mut self.ctr_b);
        }
        self.send_from(true);
        self.send_from(false);
        let next = [
            self.in_flight.front().map(|x| x.0),
            self.a.poll_timeout(),
            self.b.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) => {
                self.now = self.now.max(t);
                true
            }
            None => false,
        }
    }

    /// Steps until `done` holds; panics if it does not within `limit` of virtual time.
    pub fn run_until(&mut self, mut done: impl FnMut(&mut Pipe) -> bool, limit: Duration) {
        let end = self.now + limit;
        for _ in 0..5_000_000 {
            if done(self) {
                return;
            }
            if !self.step() || self.now > end {
                break;
            }
        }
        assert!(
            done(self),
            "condition not reached by {:?}; a={:?} b={:?}",
            self.now,
            self.a,
            self.b
        );
    }

    /// Steps until nothing is left to do or `limit` passes.
    pub fn run_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        for _ in 0..5_000_000 {
            if !self.step() || self.now > end {
                return;
            }
        }
    }

    /// Writes `data` from a to b and reads it all at b, returning what b read.
    pub fn transfer_a_to_b(&mut self, data: &[u8], limit: Duration) -> Vec<u8> {
        let mut sent = 0;
        let mut got = Vec::with_capacity(data.len());
        let mut buf = vec![0u8; 65536];
        let end = self.now + limit;
        for _ in 0..10_000_000 {
            if sent < data.len() {
                sent += self.a.send(&data[sent..]).unwrap();
            }
            loop {
                let n = self.b.recv(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            if got.len() >= data.len() || self.now > end {
                break;
            }
            if !self.step() {
                break;
            }
        }
        got
    }

    /// Segments sent by a (true) or b (false), in order.
    pub fn sent_by(&self, a: bool) -> Vec<Seg> {
        self.log
            .iter()
            .filter(|(_, from_a, _)| *from_a == a)
            .map(|(_, _, s)| s.clone())
            .collect()
    }
}

/// Deterministic test data.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    SimRng::new(seed).fill_bytes(&mut out);
    out
}

/// One exchange driven by a seeded script of application calls at both ends: writes of
/// random sizes (one byte to several segments), some with MSG_MORE or MSG_EOR, some
/// urgent, Nagle and cork switched on and off, reads that drain or pause; then both close.
/// Everything observable is written into one string: every segment sent, the events of
/// both ends after every step, what `observe` writes of each end after every step, and at
/// the end their statistics and counters. The differential tests (plain header, output
/// prediction) run it twice, their shortcut on and off.
pub fn scripted_exchange(
    cfg: &Config,
    impair: Impair,
    seed: u64,
    steps: usize,
    observe: impl Fn(&mut String, &str, &Connection),
) -> String {
    let mut p = Pipe::connected(cfg.clone(), Duration::from_millis(2));
    p.impair = impair;
    p.rng = SimRng::new(seed);
    let mut app = SimRng::new(seed ^ 0xa99);
    let mut out = String::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut written = [0usize; 2];
    for step in 0..steps {
        for (i, c) in [&mut p.a, &mut p.b].into_iter().enumerate() {
            match app.below(16) {
                0 => c.set_nodelay(app.chance(0.5)),
                1 => c.set_cork(app.chance(0.3)),
                2 if app.chance(0.2) => {
                    written[i] += c
                        .send_urgent(&pattern(1 + app.below(20) as usize, step as u64))
                        .unwrap();
                }
                3..=5 => {
                    let len = 1 + app.below(5000) as usize;
                    let (more, eor) = (app.chance(0.3), app.chance(0.2));
                    written[i] += c.send_with(&pattern(len, step as u64), more, eor).unwrap();
                }
                6..=10 => {
                    let most = if app.chance(0.7) { 100 } else { 3000 };
                    let len = 1 + app.below(most) as usize;
                    written[i] += c.send(&pattern(len, step as u64)).unwrap();
                }
                _ => {}
            }
            if app.chance(0.8) {
                while let Ok(k @ 1..) = c.recv(&mut buf) {
                    writeln!(out, "{:?} {i} read {k}", p.now).unwrap();
                }
            }
        }
        // A few steps of the pipe between the application's turns, sometimes none.
        for _ in 0..app.below(4) {
            if !p.step() {
                break;
            }
        }
        for (name, c) in [("a", &mut p.a), ("b", &mut p.b)] {
            while let Some(e) = c.poll_event() {
                writeln!(out, "{:?} {name} event {e:?}", p.now).unwrap();
            }
            observe(&mut out, name, c);
        }
    }
    p.a.set_cork(false);
    p.b.set_cork(false);
    p.a.shutdown(Shutdown::Write).unwrap();
    p.b.shutdown(Shutdown::Write).unwrap();
    let end = p.now + Duration::from_secs(30);
    for _ in 0..200_000 {
        while let Ok(k @ 1..) = p.a.recv(&mut buf) {
            writeln!(out, "{:?} a read {k}", p.now).unwrap();
        }
        while let Ok(k @ 1..) = p.b.recv(&mut buf) {
            writeln!(out, "{:?} b read {k}", p.now).unwrap();
        }
        if !p.step() || p.now > end {
            break;
        }
        observe(&mut out, "a", &p.a);
        observe(&mut out, "b", &p.b);
    }
    let mut log = String::new();
    for (t, to_b, s) in &p.log {
        writeln!(log, "{t:?} {to_b} {:?} {:?} {:02x?}", s, s.ecn, s.bytes).unwrap();
    }
    log.push_str(&out);
    for (name, c) in [("a", &p.a), ("b", &p.b)] {
        writeln!(log, "{name} {:?}\n{:?}", c.info(), c.state()).unwrap();
    }
    writeln!(log, "{written:?}\n{:?}\n{:?}", p.ctr_a, p.ctr_b).unwrap();
    log
}

/// The differential tests' verdict: `general` (a shortcut off) and `fast` (on) are the same
/// outcome, or the test fails naming the first line where they differ.
pub fn assert_same_outcome(shortcut: &str, general: &str, fast: &str) {
    if general == fast {
        return;
    }
    let (g, f) = (general.lines().count(), fast.lines().count());
    let at = general
        .lines()
        .zip(fast.lines())
        .position(|(g, f)| g != f)
        .unwrap_or(g.min(f));
    panic!(
        "{shortcut} changed the outcome at line {at} ({g} lines without, {f} with):\n general: {}\n fast:    {}",
        general.lines().nth(at).unwrap_or("(end)"),
        fast.lines().nth(at).unwrap_or("(end)")
    );
}

/// The differential tests' whole-stack cases: a clean and a 2 %-loss 10 ms link, each traced
/// (a trace takes the stack's full refresh after every call) and not.
pub fn sim_transfer_cases() -> impl Iterator<Item = (LinkConfig, u64, bool)> {
    [
        LinkConfig::delay_ms(10),
        LinkConfig::delay_ms(10).with_loss(Loss::Bernoulli(0.02)),
    ]
    .into_iter()
    .enumerate()
    .flat_map(|(i, l)| [(l, 11 + i as u64, true), (l, 11 + i as u64, false)])
}

/// One `sim::transfer` of 300 kB on `link`: its trace, both ends' TCP_INFO and statistics,
/// and how long it took, as one string.
pub fn sim_transfer_outcome(link: LinkConfig, seed: u64, trace: bool) -> String {
    let r = transfer(&TransferConfig {
        bytes: 300_000,
        link,
        seed,
        trace,
        ..TransferConfig::default()
    })
    .unwrap();
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        r.trace, r.info, r.server_info, r.client, r.server, r.elapsed
    )
}
