//! The stack: one host's IP and TCP, sans-IO.
//!
//! Packets come in with [`Stack::handle_packet`] and go out through
//! [`Stack::poll_transmit`]; time moves with [`Stack::handle_timeout`] at or after
//! [`Stack::poll_timeout`]. In between, the stack validates IPv4, answers ICMP echo, maps ICMP
//! errors onto connections, demultiplexes TCP by 4-tuple in a keyed hash map (O(1), no scan),
//! keeps listeners' half-open connections as compact SYN-queue entries and answers with SYN
//! cookies when that queue is full (RFC 4987; `handshake.rs`, `syn_queue.rs`), keeps
//! completed handshakes in bounded accept queues, answers
//! segments for closed ports with RSTs (RFC 9293 §3.10.7.1: never a RST for a RST), picks
//! ephemeral ports (RFC 6056), and keeps every connection's next deadline in one heap so a
//! tick costs O(expired).
//!
//! Fragments are counted (`IpReasmFails`) and dropped: reassembly does not exist yet. IPv6
//! packets are counted and dropped likewise (the wire layer parses them; the stack does not
//! route them yet).
//!
//! Sockets are addressed by [`SocketHandle`]s; the application-facing calls mirror the
//! sockets API (`listen`, `accept`, `connect`, `send`, `recv`, `shutdown`, `close`).

mod handshake;
mod ports;
mod syn_queue;

use core::hash::BuildHasher;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use crate::tcp::connection::{Event, MAX_HEADER};
use crate::tcp::isn::IsnGenerator;
use crate::tcp::syncookie::CookieKeys;
use crate::tcp::{Config, Connection, Counters, Shutdown, State};
use crate::time::Instant;
use crate::trace::{Direction, TraceEvent};
use crate::wire::{self, IpProtocol, icmpv4, ipv4, tcp as wtcp};

pub use handshake::SYN_QUEUE_ENTRY_SIZE;
pub use ports::PortAllocator;

/// A socket: a connection or a listener, valid until closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    index: u32,
    generation: u32,
}

/// An IPv4 address with its on-link prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Ipv4Cidr {
        Ipv4Cidr {
            addr,
            prefix: prefix.min(32),
        }
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// True if `a` is on this prefix's link.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr) & self.mask()
    }

    /// The directed broadcast address of the prefix.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
}

impl core::str::FromStr for Ipv4Cidr {
    type Err = io::Error;
    /// `198.18.0.1/24`
    fn from_str(s: &str) -> io::Result<Ipv4Cidr> {
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("expected ADDR/PREFIX like 198.18.0.1/24, got {s:?}"),
            )
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Ipv4Cidr::new(addr, prefix))
    }
}

/// The smallest link MTU the stack works on: a 20-byte IPv4 header, a 20-byte TCP header and
/// TCP's smallest MSS, 88 bytes (Linux's `TCP_MIN_MSS`; [`Stack::mss`] never announces less).
/// Runtimes and simulations refuse a smaller MTU instead of sending packets that do not fit.
pub const MIN_MTU: u16 = 128;

/// The error text for an MTU below [`MIN_MTU`].
pub fn mtu_too_small(mtu: u16) -> String {
    format!(
        "MTU {mtu} is too small: synack needs at least {MIN_MTU} (IPv4 and TCP headers and TCP's \
         smallest MSS, 88 bytes)"
    )
}

/// Stack-wide settings.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// TCP settings shared by every connection.
    pub tcp: Arc<Config>,
    /// Link MTU (bytes of IP packet); the MSS we announce is this minus 40. At least
    /// [`MIN_MTU`].
    pub mtu: u16,
    /// TTL of packets we send (Linux ip_default_ttl, 64).
    pub ttl: u8,
    /// Ephemeral port range (Linux ip_local_port_range, 32768–60999).
    pub ephemeral_ports: (u16, u16),
    /// Collect [`TraceEvent`]s for [`Stack::poll_trace`].
    pub trace: bool,
    /// The name this host has in traces.
    pub name: crate::trace::NodeName,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            tcp: Arc::new(Config::default()),
            mtu: 1500,
            ttl: 64,
            ephemeral_ports: (32768, 60999),
            trace: false,
            name: "host".into(),
        }
    }
}

/// Connections are found by (local address, local port, remote address, remote port).
type Tuple = (IpAddr, u16, IpAddr, u16);

/// SipHash keyed from the stack's secret: hash-flooding the demux table is not possible
/// without the key, and runs stay deterministic (no OS randomness).
#[derive(Clone)]
struct KeyedHasher(u64, u64);

impl BuildHasher for KeyedHasher {
    type Hasher = siphasher::sip::SipHasher13;
    fn build_hasher(&self) -> Self::Hasher {
        siphasher::sip::SipHasher13::new_with_keys(self.0, self.1)
    }
}

struct Listener {
    local: SocketAddr,
    backlog: usize,
    /// Established children waiting for accept().
    accept_queue: VecDeque<SocketHandle>,
    /// Half-open connections of this listener in the SYN queue.
    syn_queue_len: usize,
    /// The TCP settings its connections get (socket options set before listen()).
    tcp: Arc<Config>,
    /// When this listener last answered a SYN with a cookie: ACKs are checked as cookies
    /// for the cookies' lifetime after.
    last_cookie: Option<Instant>,
}

struct Slot {
    generation: u32,
    kind: SlotKind,
}

enum SlotKind {
    Free,
    /// Boxed: a listener is rare and 104 bytes, and every connection's slot would otherwise be
    /// that large too.
    Listener(Box<Listener>),
    Conn(Box<ConnSlot>),
}

struct ConnSlot {
    conn: Connection,
    /// The earliest heap entry queued for this connection. A later deadline needs no entry of
    /// its own: when this one pops, the real deadline is queued again. So an ACK that restarts
    /// the retransmission timer (every ACK of a bulk transfer) costs no heap push.
    timer: Option<Instant>,
    /// Queued for poll_transmit.
    dirty: bool,
    /// The listener this connection came from, until accepted.
    parent: Option<SocketHandle>,
    /// The application holds this handle (connect()ed, or accepted).
    user: bool,
    /// The application closed the handle: free the slot once CLOSED.
    released: bool,
}

/// The demux key of a connection: (local address, local port, remote address, remote port).
fn tuple_of(c: &Connection) -> Tuple {
    let (l, r) = (c.local(), c.remote());
    (l.ip(), l.port(), r.ip(), r.port())
}

/// One host's TCP/IP stack.
pub struct Stack {
    cfg: StackConfig,
    addrs: Vec<Ipv4Cidr>,
    gateway: Option<Ipv4Addr>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    conns: HashMap<Tuple, SocketHandle, KeyedHasher>,
    listeners: HashMap<(IpAddr, u16), SocketHandle, KeyedHasher>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    dirty: VecDeque<SocketHandle>,
    /// IP packets the stack itself owes (RST replies, ICMP echo replies).
    control: VecDeque<Vec<u8>>,
    /// SYN-ACKs owed for SYN-queue entries and cookies, written out by poll_transmit.
    synacks: VecDeque<crate::tcp::handshake::SynAck>,
    /// Half-open connections of every listener.
    syn_queue: syn_queue::SynQueue,
    cookies: CookieKeys,
    isn: IsnGenerator,
    ports: PortAllocator,
    ip_ident: u16,
    ts_key: u64,
    counters: Counters,
    trace: VecDeque<TraceEvent>,
    /// Path MTUs learned from ICMP fragmentation-needed, by destination (RFC 1191 §5: new
    /// connections to the same host start with it, as Linux's route cache does).
    pmtu: HashMap<IpAddr, u16, KeyedHasher>,
}

/// Destinations whose path MTU the stack remembers.
const MAX_PMTU_ENTRIES: usize = 4096;

/// Trace events kept when nobody drains them.
const MAX_TRACE: usize = 1 << 16;
/// Bound on queued control packets (RST replies to a flood of stray segments are dropped
/// beyond it).
const MAX_CONTROL: usize = 1024;

fn err(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

impl Stack {
    /// A stack with no addresses. `secret` keys the ISN generator (RFC 6528), ephemeral port
    /// selection (RFC 6056), timestamp offsets and the demux hash; give each run its own
    /// random secret, or a fixed one for reproducible tests.
    pub fn new(cfg: StackConfig, secret: [u8; 32]) -> Stack {
        let k = |i: usize| u64::from_le_bytes(secret[i..i + 8].try_into().unwrap_or([0; 8]));
        let mut isn_key = [0u8; 16];
        isn_key.copy_from_slice(&secret[..16]);
        let hasher = KeyedHasher(k(16), k(24));
        let mut cookie_key = [0u8; 16];
        for (i, b) in cookie_key.iter_mut().enumerate() {
            *b = secret[i] ^ secret[16 + i];
        }
        Stack {
            ports: PortAllocator::new(cfg.ephemeral_ports, (k(16) ^ k(0), k(24) ^ k(8))),
            cfg,
            addrs: Vec::new(),
            gateway: None,
            slots: Vec::new(),
            free: Vec::new(),
            conns: HashMap::with_hasher(hasher.clone()),
            listeners: HashMap::with_hasher(hasher.clone()),
            pmtu: HashMap::with_hasher(hasher.clone()),
            syn_queue: syn_queue::SynQueue::new(hasher),
            synacks: VecDeque::new(),
            cookies: CookieKeys::new(cookie_key),
            timers: BinaryHeap::new(),
            dirty: VecDeque::new(),
            control: VecDeque::new(),
            isn: IsnGenerator::new(isn_key),
            ip_ident: (k(8) & 0xffff) as u16,
            ts_key: k(0) ^ k(24),
            counters: Counters::default(),
            trace: VecDeque::new(),
        }
    }

    /// Adds an address with its on-link prefix.
    pub fn add_address(&mut self, cidr: Ipv4Cidr) {
        if !self.addrs.contains(&cidr) {
            self.addrs.push(cidr);
        }
    }

    /// Routes everything off-link through `gw` (which must be on a link of ours).
    pub fn set_gateway(&mut self, gw: Option<Ipv4Addr>) {
        self.gateway = gw;
    }

    pub fn addresses(&self) -> &[Ipv4Cidr] {
        &self.addrs
    }

    pub fn config(&self) -> &StackConfig {
        &self.cfg
    }

    /// Stack-wide counters (nstat names).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The MSS we announce: the MTU minus IPv4 and TCP headers.
    pub fn mss(&self) -> u16 {
        self.cfg.mtu.saturating_sub(40).max(88)
    }

    fn is_local(&self, a: Ipv4Addr) -> bool {
        self.addrs.iter().any(|c| c.addr == a)
    }

    /// The source address to use towards `dst`, if it is routable.
    fn route(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if let Some(c) = self.addrs.iter().find(|c| c.contains(dst)) {
            return Some(c.addr);
        }
        let gw = self.gateway?;
        self.addrs.iter().find(|c| c.contains(gw)).map(|c| c.addr)
    }

    fn trace_on(&self) -> bool {
        self.cfg.trace
    }

    fn push_trace(&mut self, e: TraceEvent) {
        if self.trace.len() >= MAX_TRACE {
            self.trace.pop_front();
        }
        self.trace.push_back(e);
    }

    fn trace_drop(&mut self, now: Instant, reason: &'static str, bytes: &[u8]) {
        if self.trace_on() {
            let e = TraceEvent::Drop {
                time: now,
                node: self.cfg.name.clone(),
                reason,
                bytes: Some(bytes.to_vec()),
            };
            self.push_trace(e);
        }
    }

    /// Next trace event (when `StackConfig::trace` is on).
    pub fn poll_trace(&mut self) -> Option<TraceEvent> {
        self.trace.pop_front()
    }

    /// The time of the next trace event, without taking it (to merge several hosts' events in
    /// time order).
    pub fn next_trace_time(&self) -> Option<Instant> {
        self.trace.front().map(TraceEvent::time)
    }

    // ----- slots -----

    fn alloc(&mut self, kind: SlotKind) -> SocketHandle {
        if let Some(i) = self.free.pop() {
            let s = &mut self.slots[i as usize];
            s.kind = kind;
            SocketHandle {
                index: i,
                generation: s.generation,
            }
        } else {
            self.slots.push(Slot {
                generation: 0,
                kind,
            });
            SocketHandle {
                index: (self.slots.len() - 1) as u32,
                generation: 0,
            }
        }
    }

    fn release(&mut self, h: SocketHandle) {
        if let Some(s) = self.slots.get_mut(h.index as usize) {
            if s.generation == h.generation {
                s.kind = SlotKind::Free;
                s.generation = s.generation.wrapping_add(1);
                self.free.push(h.index);
            }
        }
    }

    fn conn_slot(&mut self, h: SocketHandle) -> Option<&mut ConnSlot> {
        match self.slots.get_mut(h.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Conn(c),
            }) if *generation == h.generation => Some(c),
            _ => None,
        }
    }

    fn listener_slot(&mut self, h: SocketHandle) -> Option<&mut Listener> {
        match self.slots.get_mut(h.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Listener(l),
            }) if *generation == h.generation => Some(l),
            _ => None,
        }
    }

    /// The connection behind a handle.
    pub fn connection(&self, h: SocketHandle) -> Option<&Connection> {
        match self.slots.get(h.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Conn(c),
            }) if *generation == h.generation => Some(&c.conn),
            _ => None,
        }
    }

    /// The connection behind a handle, for socket options (nodelay, keepalive, ...).
    pub fn connection_mut(&mut self, h: SocketHandle) -> Option<&mut Connection> {
        let c = self.conn_slot(h)?;
        Some(&mut c.conn)
    }

    /// A connection's slot and the stack's counters together (disjoint borrows), for calls
    /// into the connection that count things.
    fn slot_and_counters(&mut self, h: SocketHandle) -> Option<(&mut ConnSlot, &mut Counters)> {
        match self.slots.get_mut(h.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Conn(c),
            }) if *generation == h.generation => Some((c, &mut self.counters)),
            _ => None,
        }
    }

    fn conn_or_err(&mut self, h: SocketHandle) -> io::Result<&mut ConnSlot> {
        self.conn_slot(h).ok_or_else(|| {
            err(
                io::ErrorKind::NotConnected,
                "no such connection (closed handle?)",
            )
        })
    }

    /// After anything touched a connection: queue it for transmission, then [`refresh`].
    fn touched(&mut self, h: SocketHandle, now: Instant) {
        if let Some(c) = self.conn_slot(h) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push_back(h);
            }
        }
        self.refresh(h, now);
    }

    /// Update a connection's timer, collect its events, move it between the listener queues,
    /// and free it when it is finished.
    fn refresh(&mut self, h: SocketHandle, now: Instant) {
        let name_trace = self.cfg.trace;
        let c = match self.slots.get_mut(h.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Conn(c),
            }) if *generation == h.generation => c,
            _ => return,
        };
        if let Some(t) = c.conn.poll_timeout() {
            if c.timer.is_none_or(|queued| t < queued) {
                c.timer = Some(t);
                self.timers.push(Reverse((t, h.index, h.generation)));
            }
        }
        let (local, remote, state, parent, user, iss) = (
            c.conn.local(),
            c.conn.remote(),
            c.conn.state(),
            c.parent,
            c.user,
            c.conn.iss(),
        );
        let mut events = Vec::new();
        while let Some(e) = c.conn.poll_event() {
            if name_trace {
                events.push(e);
            }
        }
        for e in events {
            let node = self.cfg.name.clone();
            let te = match e {
                Event::StateChanged { from, to, reason } => TraceEvent::State {
                    time: now,
                    node,
                    local,
                    remote,
                    from,
                    to,
                    reason,
                },
                Event::Dropped { reason } => TraceEvent::Drop {
                    time: now,
                    node,
                    reason,
                    bytes: None,
                },
                Event::ResetSent { reason } => TraceEvent::Note {
                    time: now,
                    node,
                    text: format!("RST: {reason}"),
                },
                // Relative to our ISN, as the segment lines show Seq= (the SYN is 0).
                Event::Retransmit { seq, len, cause } => TraceEvent::Note {
                    time: now,
                    node,
                    text: format!("retransmit seq={} len={len} ({cause:?})", seq - iss),
                },
                Event::RtoFired { rto, backoff } => TraceEvent::Note {
                    time: now,
                    node,
                    text: format!("RTO fired, next {rto:?} (backoff {backoff})"),
                },
            };
            self.push_trace(te);
        }
        // A child of a listener: move it to the accept queue once established, drop it when
        // the handshake failed.
        if let Some(p) = parent {
            if !user {
                match state {
                    State::SynReceived => {}
                    State::Listen | State::Closed => self.remove_conn(h),
                    _ => {
                        let mut queued = false;
                        if let Some(l) = self.listener_slot(p) {
                            l.accept_queue.push_back(h);
                            queued = true;
                        }
                        if let Some(c) = self.conn_slot(h) {
                            c.parent = None;
                            c.user = queued;
                            if !queued {
                                // The listener went away: nobody will accept this one.
                                c.released = true;
                            }
                        }
                    }
                }
            }
        }
        self.reap(h);
    }

    /// Frees a connection that is finished and that nobody will read any more.
    fn reap(&mut self, h: SocketHandle) {
        let Some(c) = self.conn_slot(h) else { return };
        let done = c.conn.state() == State::Closed && (c.released || !c.user) && c.parent.is_none();
        if done && !c.dirty {
            self.remove_conn(h);
        }
    }

    fn remove_conn(&mut self, h: SocketHandle) {
        if let Some(c) = self.conn_slot(h) {
            let tuple = tuple_of(&c.conn);
            if self.conns.get(&tuple) == Some(&h) {
                self.conns.remove(&tuple);
            }
            self.release(h);
        }
    }

    // ----- user calls -----

    /// Starts listening on `local` (address 0.0.0.0 for every address of ours) with an accept
    /// queue of `backlog` completed connections.
    pub fn listen(&mut self, local: SocketAddr, backlog: usize) -> io::Result<SocketHandle> {
        self.listen_with(local, backlog, self.cfg.tcp.clone())
    }

    /// [`listen`](Self::listen) with TCP settings of its own for the connections it accepts
    /// (what socket options set on a listening socket do).
    pub fn listen_with(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        tcp: Arc<Config>,
    ) -> io::Result<SocketHandle> {
        let IpAddr::V4(a) = local.ip() else {
            return Err(err(
                io::ErrorKind::Unsupported,
                "IPv6 sockets are not supported yet",
            ));
        };
        if !a.is_unspecified() && !self.is_local(a) {
            return Err(err(
                io::ErrorKind::AddrNotAvailable,
                format!("{a} is not an address of this stack"),
            ));
        }
        if local.port() == 0 {
            return Err(err(io::ErrorKind::InvalidInput, "listen needs a port"));
        }
        let key = (local.ip(), local.port());
        if self.listeners.contains_key(&key) {
            return Err(err(
                io::ErrorKind::AddrInUse,
                format!("{local} is already listening"),
            ));
        }
        let h = self.alloc(SlotKind::Listener(Box::new(Listener {
            local,
            backlog: backlog.max(1),
            accept_queue: VecDeque::new(),
            syn_queue_len: 0,
            tcp,
            last_cookie: None,
        })));
        self.listeners.insert(key, h);
        Ok(h)
    }

    /// Takes a completed connection off a listener's accept queue.
    pub fn accept(&mut self, listener: SocketHandle) -> io::Result<Option<SocketHandle>> {
        let l = self
            .listener_slot(listener)
            .ok_or_else(|| err(io::ErrorKind::InvalidInput, "not a listener"))?;
        Ok(l.accept_queue.pop_front())
    }

    /// Completed connections waiting on a listener.
    pub fn accept_queue_len(&mut self, listener: SocketHandle) -> usize {
        self.listener_slot(listener)
            .map_or(0, |l| l.accept_queue.len())
    }

    /// Opens a connection to `remote` from `local` (or a source address picked by routing
    /// and an ephemeral port).
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) -> io::Result<SocketHandle> {
        self.connect_with(now, remote, local, self.cfg.tcp.clone())
    }

    /// [`connect`](Self::connect) with TCP settings of its own (socket options set before
    /// connect()).
    pub fn connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        tcp: Arc<Config>,
    ) -> io::Result<SocketHandle> {
        let IpAddr::V4(rip) = remote.ip() else {
            return Err(err(
                io::ErrorKind::Unsupported,
                "IPv6 sockets are not supported yet",
            ));
        };
        if rip.is_unspecified() || rip.is_broadcast() || rip.is_multicast() || remote.port() == 0 {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!("cannot connect to {remote}"),
            ));
        }
        let src = match local.map(|l| l.ip()) {
            Some(IpAddr::V4(a)) if !a.is_unspecified() => {
                if !self.is_local(a) {
                    return Err(err(
                        io::ErrorKind::AddrNotAvailable,
                        format!("{a} is not an address of this stack"),
                    ));
                }
                a
            }
            _ => self.route(rip).ok_or_else(|| {
                err(
                    io::ErrorKind::NetworkUnreachable,
                    format!("no route to {rip}: add an address on its link or a gateway"),
                )
            })?,
        };
        let port = match local.map(|l| l.port()).filter(|&p| p != 0) {
            Some(p) => {
                if self
                    .conns
                    .contains_key(&(IpAddr::V4(src), p, remote.ip(), remote.port()))
                {
                    return Err(err(
                        io::ErrorKind::AddrInUse,
                        format!("{src}:{p} -> {remote} is in use"),
                    ));
                }
                p
            }
            None => {
                let conns = &self.conns;
                self.ports
                    .pick(IpAddr::V4(src), remote, |p| {
                        conns.contains_key(&(IpAddr::V4(src), p, remote.ip(), remote.port()))
                    })
                    .ok_or_else(|| {
                        err(
                            io::ErrorKind::AddrNotAvailable,
                            format!("no free ephemeral port from {src} to {remote}"),
                        )
                    })?
            }
        };
        let local = SocketAddr::new(IpAddr::V4(src), port);
        let mut conn = Connection::new(tcp, local, self.mss(), self.ts_offset(local, remote));
        if let Some(&mtu) = self.pmtu.get(&remote.ip()) {
            conn.on_path_mtu(mtu, ipv4::HEADER_LEN as u16);
        }
        let iss = self.isn.isn(now, local, remote);
        conn.connect(now, remote, iss, &mut self.counters)
            .map_err(io::Error::from)?;
        let tuple = (local.ip(), local.port(), remote.ip(), remote.port());
        let h = self.alloc(SlotKind::Conn(Box::new(ConnSlot {
            conn,
            timer: None,
            dirty: false,
            parent: None,
            user: true,
            released: false,
        })));
        self.conns.insert(tuple, h);
        self.touched(h, now);
        Ok(h)
    }

    fn ts_offset(&self, local: SocketAddr, remote: SocketAddr) -> u32 {
        use core::hash::Hasher;
        let mut h = siphasher::sip::SipHasher13::new_with_keys(self.ts_key, !self.ts_key);
        h.write(&local.port().to_be_bytes());
        h.write(&remote.port().to_be_bytes());
        if let (IpAddr::V4(a), IpAddr::V4(b)) = (local.ip(), remote.ip()) {
            h.write(&a.octets());
            h.write(&b.octets());
        }
        h.finish() as u32
    }

    /// Queues data on a connection (see [`Connection::send`]).
    pub fn send(&mut self, now: Instant, h: SocketHandle, data: &[u8]) -> io::Result<usize> {
        let n = self
            .conn_or_err(h)?
            .conn
            .send(data)
            .map_err(io::Error::from)?;
        if n > 0 {
            self.touched(h, now);
        }
        Ok(n)
    }

    /// Queues data with send() flags (see [`Connection::send_with`]: MSG_MORE, MSG_EOR).
    pub fn send_with(
        &mut self,
        now: Instant,
        h: SocketHandle,
        data: &[u8],
        more: bool,
        eor: bool,
    ) -> io::Result<usize> {
        let n = self
            .conn_or_err(h)?
            .conn
            .send_with(data, more, eor)
            .map_err(io::Error::from)?;
        self.touched(h, now);
        Ok(n)
    }

    /// Tells the stack a connection's options changed through [`connection_mut`]
    /// (Self::connection_mut), so it may have something to send now (TCP_NODELAY, uncork).
    pub fn poke(&mut self, now: Instant, h: SocketHandle) {
        self.touched(h, now);
    }

    /// Reads data (see [`Connection::recv`]).
    pub fn recv(&mut self, now: Instant, h: SocketHandle, out: &mut [u8]) -> io::Result<usize> {
        let n = self
            .conn_or_err(h)?
            .conn
            .recv(out)
            .map_err(io::Error::from)?;
        if n > 0 {
            self.touched(h, now);
        }
        Ok(n)
    }

    pub fn shutdown(&mut self, now: Instant, h: SocketHandle, how: Shutdown) -> io::Result<()> {
        self.conn_or_err(h)?
            .conn
            .shutdown(how)
            .map_err(io::Error::from)?;
        self.touched(h, now);
        Ok(())
    }

    /// Closes a handle: a listener stops listening (its unaccepted connections are reset),
    /// a connection closes in the background (see [`Connection::close`]).
    pub fn close(&mut self, now: Instant, h: SocketHandle) {
        if let Some(l) = self.listener_slot(h) {
            let key = (l.local.ip(), l.local.port());
            let pending: Vec<_> = l.accept_queue.drain(..).collect();
            self.listeners.remove(&key);
            self.drop_entries_of(h);
            self.release(h);
            for c in pending {
                self.abort(now, c);
            }
            return;
        }
        if let Some((c, ctr)) = self.slot_and_counters(h) {
            c.conn.close(now, ctr);
            c.released = true;
        }
        self.touched(h, now);
    }

    /// Resets a connection (ABORT) and releases the handle.
    pub fn abort(&mut self, now: Instant, h: SocketHandle) {
        if let Some((c, ctr)) = self.slot_and_counters(h) {
            c.conn.abort(now, ctr);
            c.released = true;
        }
        self.touched(h, now);
    }

    /// Every connection the stack holds (including unaccepted and TIME-WAIT ones).
    pub fn connections(&self) -> impl Iterator<Item = &Connection> + '_ {
        self.slots.iter().filter_map(|s| match &s.kind {
            SlotKind::Conn(c) => Some(&c.conn),
            _ => None,
        })
    }

    /// Number of live connection slots (for tests and memory accounting).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    // ----- time -----

    /// The earliest instant at which the stack has work: now if packets wait, else the
    /// earliest connection deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.control.is_empty() || !self.synacks.is_empty() || !self.dirty.is_empty() {
            return Some(Instant::ZERO);
        }
        let conns = self.timers.peek().map(|Reverse((t, _, _))| *t);
        match (conns, self.syn_queue.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers of every connection and SYN-queue entry due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.syn_queue_timeouts(now);
        while let Some(Reverse((t, index, generation))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let h = SocketHandle { index, generation };
            let due = match self.slot_and_counters(h) {
                Some((c, ctr)) if c.timer == Some(t) => {
                    c.timer = None;
                    // The deadline may have moved later since this entry was queued.
                    if c.conn.poll_timeout().is_some_and(|d| d <= now) {
                        c.conn.handle_timeout(now, ctr);
                    }
                    true // refreshed below: the real deadline is queued again
                }
                _ => false, // superseded by an earlier entry that already popped
            };
            if due {
                self.touched(h, now);
            }
        }
    }

    // ----- output -----

    /// Writes the next IP packet to send into `buf` and returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(p) = self.control.pop_front() {
            let n = p.len().min(buf.len());
            buf[..n].copy_from_slice(&p[..n]);
            self.trace_packet(now, Direction::Out, &buf[..n]);
            self.counters.ip_out_requests += 1;
            return Some(n);
        }
        if let Some(n) = self.transmit_synack(buf) {
            self.trace_packet(now, Direction::Out, &buf[..n]);
            self.counters.ip_out_requests += 1;
            return Some(n);
        }
        while let Some(h) = self.dirty.front().copied() {
            let (ttl, ident) = (self.cfg.ttl, self.ip_ident);
            let mut sent = None;
            if let Some((c, ctr)) = self.slot_and_counters(h) {
                if let (IpAddr::V4(src), IpAddr::V4(dst)) =
                    (c.conn.local().ip(), c.conn.remote().ip())
                {
                    let tcp_room = buf.len().saturating_sub(ipv4::HEADER_LEN);
                    if tcp_room > MAX_HEADER {
                        if let Some(n) =
                            c.conn.poll_transmit(now, &mut buf[ipv4::HEADER_LEN..], ctr)
                        {
                            let mut ip = ipv4::Repr::new(src, dst, IpProtocol::Tcp, n);
                            ip.ttl = ttl;
                            ip.ident = ident;
                            let total = ipv4::HEADER_LEN + n;
                            let mut pkt = ipv4::Packet::new_unchecked(&mut buf[..total]);
                            if ip.emit(&mut pkt, true).is_ok() {
                                sent = Some(total);
                            }
                        }
                    }
                }
                if sent.is_none() {
                    c.dirty = false;
                }
            }
            if sent.is_none() {
                self.dirty.pop_front();
            }
            // The send may have armed timers or produced events; a finished connection goes.
            self.refresh(h, now);
            if let Some(total) = sent {
                self.ip_ident = self.ip_ident.wrapping_add(1);
                self.counters.ip_out_requests += 1;
                self.trace_packet(now, Direction::Out, &buf[..total]);
                // It stays at the front of the queue: it may have more to send.
                return Some(total);
            }
        }
        None
    }

    fn trace_packet(&mut self, now: Instant, dir: Direction, bytes: &[u8]) {
        if self.trace_on() {
            let e = TraceEvent::Packet {
                time: now,
                dir,
                node: self.cfg.name.clone(),
                bytes: bytes.to_vec(),
            };
            self.push_trace(e);
        }
    }

    fn queue_control(&mut self, packet: Vec<u8>) {
        if self.control.len() < MAX_CONTROL {
            self.control.push_back(packet);
        }
    }

    // ----- input -----

    /// Processes one received IP packet.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.counters.ip_in_receives += 1;
        self.trace_packet(now, Direction::In, bytes);
        if bytes.first().is_some_and(|b| b >> 4 == 6) {
            self.counters.ip_in_unknown_protos += 1;
            self.trace_drop(now, "IPv6 not routed yet", bytes);
            return;
        }
        let packet = match ipv4::Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(e) => return self.ip_error(now, e, bytes),
        };
        let ip = match ipv4::Repr::parse(&packet, true) {
            Ok(r) => r,
            Err(e) => return self.ip_error(now, e, bytes),
        };
        // Only packets for us, from a plausible peer (RFC 1122 §3.2.1.3: never accept a
        // broadcast, multicast or own address as source; §4.2.3.10: TCP ignores broadcast).
        let dst = ip.dst_addr;
        let src = ip.src_addr;
        let bad_src = src.is_broadcast()
            || src.is_multicast()
            || src.is_unspecified()
            || self.is_local(src)
            || self.addrs.iter().any(|c| c.broadcast() == src);
        if !self.is_local(dst) || bad_src {
            self.counters.ip_in_addr_errors += 1;
            self.trace_drop(now, "not for us, or impossible source address", bytes);
            return;
        }
        if packet.is_fragment() {
            self.counters.ip_reasm_fails += 1;
            self.trace_drop(now, "IP fragment (no reassembly yet)", bytes);
            return;
        }
        let payload = packet.payload();
        match ip.protocol {
            IpProtocol::Tcp => self.handle_tcp(now, &ip, payload, bytes),
            IpProtocol::Icmp => self.handle_icmp(now, &ip, payload, bytes),
            _ => {
                self.counters.ip_in_unknown_protos += 1;
                self.trace_drop(now, "protocol not supported", bytes);
            }
        }
    }

    fn ip_error(&mut self, now: Instant, e: wire::Error, bytes: &[u8]) {
        self.counters.ip_in_hdr_errors += 1;
        let reason = match e {
            wire::Error::BadChecksum => "IPv4 header checksum",
            wire::Error::Truncated => "IPv4 header truncated",
            wire::Error::BadVersion => "not IPv4",
            _ => "malformed IPv4 header",
        };
        self.trace_drop(now, reason, bytes);
    }

    fn handle_icmp(&mut self, now: Instant, ip: &ipv4::Repr, payload: &[u8], bytes: &[u8]) {
        self.counters.icmp_in_msgs += 1;
        let Ok(packet) = icmpv4::Packet::new_checked(payload) else {
            self.counters.icmp_in_errors += 1;
            return self.trace_drop(now, "ICMP truncated", bytes);
        };
        let repr = match icmpv4::Repr::parse(&packet, true) {
            Ok(r) => r,
            Err(wire::Error::Unrecognized) => {
                return self.trace_drop(now, "ICMP type not handled", bytes);
            }
            Err(_) => {
                self.counters.icmp_in_errors += 1;
                return self.trace_drop(now, "ICMP malformed or bad checksum", bytes);
            }
        };
        match repr {
            icmpv4::Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                self.counters.icmp_in_echos += 1;
                let reply = icmpv4::Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                self.send_icmp(ip.dst_addr, ip.src_addr, &reply);
                self.counters.icmp_out_echo_reps += 1;
            }
            icmpv4::Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                invoking,
            } => {
                self.counters.icmp_in_dest_unreachs += 1;
                self.icmp_error_to_conn(now, reason, next_hop_mtu, invoking);
            }
            _ => {}
        }
    }

    /// RFC 1122 §4.2.3.9 / RFC 1191: map an ICMP error onto the connection it quotes.
    /// Fragmentation-needed lowers the MSS (PMTU discovery); the others are soft errors that
    /// the retransmission timer deals with (Linux reports them only if the connection then
    /// times out), so they are traced and counted only.
    fn icmp_error_to_conn(
        &mut self,
        now: Instant,
        reason: icmpv4::DstUnreachable,
        mtu: Option<u16>,
        invoking: &[u8],
    ) {
        let Ok(orig) = icmpv4::Invoking::parse(invoking) else {
            return;
        };
        if orig.protocol() != IpProtocol::Tcp {
            return;
        }
        let (sp, dp) = (orig.src_port(), orig.dst_port());
        let tuple = (
            IpAddr::V4(orig.src_addr()),
            sp,
            IpAddr::V4(orig.dst_addr()),
            dp,
        );
        let Some(&h) = self.conns.get(&tuple) else {
            return;
        };
        if reason == icmpv4::DstUnreachable::FragNeeded {
            let mtu = mtu.unwrap_or(576).max(68);
            if self.pmtu.len() >= MAX_PMTU_ENTRIES {
                self.pmtu.clear();
            }
            let known = self.pmtu.entry(tuple.2).or_insert(mtu);
            *known = (*known).min(mtu);
            if let Some(c) = self.conn_slot(h) {
                if let Some(mss) = c.conn.on_path_mtu(mtu, ipv4::HEADER_LEN as u16) {
                    if self.trace_on() {
                        let node = self.cfg.name.clone();
                        self.push_trace(TraceEvent::Note {
                            time: now,
                            node,
                            text: format!("PMTU {mtu}: MSS now {mss}"),
                        });
                    }
                }
            }
            self.touched(h, now);
        } else {
            if let Some(c) = self.conn_slot(h) {
                c.conn.on_icmp_unreachable();
            }
            if !self.trace_on() {
                return;
            }
            let node = self.cfg.name.clone();
            self.push_trace(TraceEvent::Note {
                time: now,
                node,
                text: format!(
                    "ICMP destination unreachable ({reason}) for a connection: soft error"
                ),
            });
        }
    }

    fn send_icmp(&mut self, src: Ipv4Addr, dst: Ipv4Addr, repr: &icmpv4::Repr<'_>) {
        let sent = self.queue_ip(src, dst, IpProtocol::Icmp, repr.buffer_len(), |payload| {
            repr.emit(&mut icmpv4::Packet::new_unchecked(payload), true)
                .is_ok()
        });
        if sent {
            self.counters.icmp_out_msgs += 1;
        }
    }

    /// Builds an IPv4 packet of `len` payload bytes that `fill` writes, and queues it as a
    /// control packet. Returns whether it was queued.
    fn queue_ip(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> bool {
        let mut out = vec![0u8; ipv4::HEADER_LEN + len];
        let mut ip = ipv4::Repr::new(src, dst, protocol, len);
        ip.ttl = self.cfg.ttl;
        ip.ident = self.ip_ident;
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let mut pkt = ipv4::Packet::new_unchecked(&mut out[..]);
        if ip.emit(&mut pkt, true).is_err() || !fill(pkt.payload_mut()) {
            return false;
        }
        self.queue_control(out);
        true
    }

    fn handle_tcp(&mut self, now: Instant, ip: &ipv4::Repr, payload: &[u8], bytes: &[u8]) {
        let (src, dst) = (IpAddr::V4(ip.src_addr), IpAddr::V4(ip.dst_addr));
        let packet = match wtcp::Packet::new_checked(payload) {
            Ok(p) => p,
            Err(_) => {
                self.counters.in_errs += 1;
                return self.trace_drop(now, "TCP header malformed", bytes);
            }
        };
        let seg = match wtcp::Repr::parse(&packet, src, dst, true) {
            Ok(s) => s,
            Err(e) => {
                self.counters.in_errs += 1;
                if e == wire::Error::BadChecksum {
                    self.counters.tcp_in_csum_errors += 1;
                    return self.trace_drop(now, "TCP checksum", bytes);
                }
                return self.trace_drop(now, "TCP options malformed", bytes);
            }
        };
        let remote = SocketAddr::new(src, seg.src_port);
        let local = SocketAddr::new(dst, seg.dst_port);
        let tuple = (dst, seg.dst_port, src, seg.src_port);

        if let Some(&h) = self.conns.get(&tuple) {
            let mut reuse = false;
            let mut overflow = false;
            if let Some((c, ctr)) = self.slot_and_counters(h) {
                if c.conn.time_wait_accepts_syn(&seg) {
                    // RFC 9293 §3.6.1 / Linux: a new incarnation replaces TIME-WAIT.
                    reuse = true;
                } else if c.conn.state() == State::SynReceived
                    && c.parent.is_some()
                    && seg.flags.ack()
                    && !seg.flags.rst()
                {
                    overflow = true; // decided below, needs the listener
                } else {
                    c.conn.handle_segment(now, &seg, ctr);
                }
            }
            if overflow {
                self.final_ack(now, h, &seg);
                return;
            }
            if reuse {
                self.remove_conn(h);
                // Fall through to the listener below.
            } else {
                self.touched(h, now);
                return;
            }
        }

        if self.syn_queue.get(&tuple).is_some() {
            return self.segment_to_entry(now, tuple, local, remote, &seg);
        }

        let listener = self.listeners.get(&(dst, seg.dst_port)).or_else(|| {
            self.listeners
                .get(&(IpAddr::V4(Ipv4Addr::UNSPECIFIED), seg.dst_port))
        });
        if let Some(&lh) = listener {
            if seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst() {
                return self.syn_to_listener(now, lh, local, remote, &seg);
            }
            // §3.10.7.2: RST ignored; ACK answered with a RST; anything else dropped.
            if seg.flags.rst() {
                return;
            }
            if seg.flags.ack() && !self.cookie_ack(now, lh, local, remote, &seg) {
                self.reply_rst(local, remote, seg.ack, None);
            }
            return;
        }
        // §3.10.7.1: no connection, no listener.
        self.counters.in_segs += 1;
        if let Some((seq, ack)) = crate::tcp::connection::reset_for_closed(&seg) {
            self.counters.no_port_rsts += 1;
            self.trace_drop(now, "no connection or listener: RST", bytes);
            self.reply_rst(local, remote, seq, ack);
        }
    }

    /// The final ACK of a handshake for a listener's child: Linux drops it when the accept
    /// queue is full (ListenOverflows); the client's data or the SYN-ACK retransmission
    /// completes the handshake later.
    fn final_ack(&mut self, now: Instant, h: SocketHandle, seg: &wtcp::Repr<'_>) {
        let parent = self.conn_slot(h).and_then(|c| c.parent);
        let full = parent
            .and_then(|p| self.listener_slot(p))
            .is_some_and(|l| l.accept_queue.len() >= l.backlog);
        if full {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            if self.trace_on() {
                let node = self.cfg.name.clone();
                self.push_trace(TraceEvent::Drop {
                    time: now,
                    node,
                    reason: "accept queue full: final ACK dropped",
                    bytes: None,
                });
            }
            return;
        }
        if let Some((c, ctr)) = self.slot_and_counters(h) {
            c.conn.handle_segment(now, seg, ctr);
        }
        self.touched(h, now);
    }

    /// Queues the RST that §3.10.7.1/§3.10.7.2 prescribe for a segment with no connection.
    fn reply_rst(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        seq: crate::tcp::SeqNum,
        ack: Option<crate::tcp::SeqNum>,
    ) {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (local.ip(), remote.ip()) else {
            return;
        };
        let flags = if ack.is_some() {
            wtcp::Flags::RST | wtcp::Flags::ACK
        } else {
            wtcp::Flags::RST
        };
        let seg = wtcp::Repr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq,
            ack: ack.unwrap_or_default(),
            flags,
            window: 0,
            urgent: 0,
            options: wtcp::Options::default(),
            payload: &[],
        };
        let sent = self.queue_ip(src, dst, IpProtocol::Tcp, seg.buffer_len(), |payload| {
            seg.emit(
                &mut wtcp::Packet::new_unchecked(payload),
                local.ip(),
                remote.ip(),
            )
            .is_ok()
        });
        if sent {
            self.counters.out_rsts += 1;
            self.counters.out_segs += 1;
        }
    }
}

#[cfg(test)]
mod tests;
