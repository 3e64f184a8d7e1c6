//! SimNet: a deterministic in-memory network in virtual time.
//!
//! A [`SimNet`] holds *nodes* — hosts and switches — joined by duplex point-to-point *links*.
//! Each link is two independent directions, each with its own [`LinkConfig`], transmit queue,
//! loss state, random stream and [`LinkStats`]. Packets are whole IP datagrams; SimNet never
//! looks inside them except to read the destination address when it has to route.
//!
//! Nothing here reads a clock: every call that moves packets takes `now`, and the caller skips
//! idle periods by jumping straight to [`SimNet::next_delivery`]. Every random choice comes from
//! [`SimRng`] streams forked from the seed given to [`SimNet::new`] (one per link direction, in
//! the order the links were created), so the same seed and the same calls give the same packets
//! at the same instants, byte for byte.
//!
//! # Topology and routing
//!
//! * Two hosts joined by one link ([`SimNet::connect`]) is the simplest network: a host with
//!   exactly one link sends everything on it, so no addresses are needed.
//! * A star — for many hosts — is a switch ([`SimNet::add_switch`]) with one link to each host.
//!   Hosts register their addresses with [`SimNet::set_addr`]; the switch reads the destination
//!   of each IPv4 (header bytes 16..20) or IPv6 (bytes 24..40) packet and forwards it, unchanged
//!   and with no processing delay, on its link to the host that owns that address. A packet for
//!   an unknown address, or one that is not a well-formed enough IP header to have one, is
//!   dropped and counted in [`LinkStats::dropped_no_route`] of the direction that brought it.
//! * A host with several links routes the same way: to the neighbour owning the destination
//!   address, or [`SimNet::send`] fails with [`SimError::NoRoute`]. [`SimNet::send_on`] picks
//!   the link explicitly instead.
//!
//! Switches do not decrement the TTL, so checksums stay valid end to end.
//!
//! # What happens to a packet on one link direction
//!
//! When a packet is offered to a direction at `now`:
//!
//! 1. **Queue and serialisation** (only when `bandwidth_bps` is set). The backlog is every
//!    accepted packet not yet completely serialised, including the one on the wire. If
//!    `queue_limit_bytes` is set and backlog + this packet would exceed it, the packet is dropped
//!    (drop-tail, `dropped_queue`). Otherwise it starts when the previous one finishes,
//!    `start = max(now, busy_until)`, and takes `len * 8 / bandwidth_bps` seconds. The transmitter keeps
//!    exact fractions of a nanosecond, so back-to-back packets never drift however the rate
//!    divides. Without a bandwidth, serialisation is instant and the queue is always empty.
//! 2. **Loss** on the wire (`dropped_loss`), per [`Loss`]. A lost packet did use the bandwidth.
//! 3. **Duplication**: with probability `duplicate`, one extra copy that arrives at the same
//!    instant, right after the original (`duplicated`).
//! 4. **Corruption**: with probability `corrupt`, independently for each copy, one uniformly
//!    chosen bit of the packet is flipped (`corrupted`). The receiver's checksums must catch it.
//! 5. **Propagation**: arrival = end of serialisation + `delay` + uniform `[0, jitter]`, rounded
//!    up to the microsecond, then raised to at least the previous arrival on this direction.
//!    Each direction is FIFO: jitter alone bunches packets but never reorders them.
//! 6. **Reordering**: with probability `reorder`, the packet instead arrives `reorder_delay`
//!    after its FIFO arrival time and is left out of the FIFO bookkeeping, so packets sent up to
//!    about `reorder_delay` after it overtake it (`reordered` counts the packets held back).
//!
//! Arrivals are handed out by [`SimNet::poll_deliver`] in time order; packets due at the same
//! microsecond come out in the order they were put on their last link.
//!
//! # Buffers
//!
//! [`SimNet::send`] copies the packet into a buffer from a free list; [`Delivery::packet`] hands
//! that buffer to the receiver. Give it back with [`SimNet::recycle`] once done and a steady
//! stream of packets allocates nothing; dropped packets' buffers are reused automatically. The
//! free list keeps at most [`FREE_LIST_LIMIT`] buffers, so recycling never grows memory without
//! bound.
//!
//! # Example: a star
//!
//! ```
//! use std::net::Ipv4Addr;
//! use synack::device::sim::{LinkConfig, SimNet};
//! use synack::time::Instant;
//!
//! let mut net = SimNet::new(1);
//! let router = net.add_switch("router");
//! let client = net.add_host("client");
//! let server = net.add_host("server");
//! for (host, ip) in [(client, [198, 18, 0, 1]), (server, [198, 18, 0, 2])] {
//!     net.connect(host, router, LinkConfig::delay_ms(5)).unwrap();
//!     net.set_addr(host, Ipv4Addr::from(ip)).unwrap();
//! }
//!
//! // A (minimal) IPv4 header from 198.18.0.1 to 198.18.0.2.
//! let mut packet = [0u8; 20];
//! packet[0] = 0x45;
//! packet[12..16].copy_from_slice(&[198, 18, 0, 1]);
//! packet[16..20].copy_from_slice(&[198, 18, 0, 2]);
//! net.send(Instant::ZERO, client, &packet).unwrap();
//!
//! // Drive virtual time: the first step only moves the packet through the switch.
//! let mut got = None;
//! while let Some(t) = net.next_delivery() {
//!     if let Some(d) = net.poll_deliver(t) {
//!         got = Some(d);
//!     }
//! }
//! let d = got.unwrap();
//! assert_eq!((d.to, d.at), (server, Instant::from_millis(10)));
//! ```

use core::fmt;
use core::net::IpAddr;
use std::collections::HashMap;

use super::impair::{Channel, Fate, Timed, Timeline};
use crate::time::Instant;

use super::SimRng;
pub use super::impair::{LinkConfig, LinkStats, Loss};

/// The most packet buffers [`SimNet::recycle`] keeps for reuse.
pub const FREE_LIST_LIMIT: usize = 1024;

/// Buffers with more capacity than this are freed rather than kept on the free list.
const MAX_RECYCLED_CAPACITY: usize = 1 << 17;

/// A node of a [`SimNet`]: a host (which receives packets) or a switch (which forwards them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(usize);

impl HostId {
    /// The node's position in creation order (0 for the first node added): handy as an index
    /// into the caller's own per-host tables.
    pub fn index(self) -> usize {
        self.0
    }
}

/// A duplex link of a [`SimNet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(usize);

impl LinkId {
    /// The link's position in creation order (0 for the first link).
    pub fn index(self) -> usize {
        self.0
    }
}

/// The counters of both directions of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DuplexStats {
    /// From the first node given to [`SimNet::connect`] to the second.
    pub a_to_b: LinkStats,
    /// From the second node to the first.
    pub b_to_a: LinkStats,
}

impl DuplexStats {
    /// Both directions added together.
    pub fn sum(&self) -> LinkStats {
        let mut s = self.a_to_b;
        s.accumulate(&self.b_to_a);
        s
    }
}

/// A packet arriving at a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The receiving host.
    pub to: HostId,
    /// The link it arrived on (a host's "interface").
    pub link: LinkId,
    /// The packet; give the buffer back with [`SimNet::recycle`] when done with it.
    pub packet: Vec<u8>,
    /// When it arrived (never later than the `now` passed to [`SimNet::poll_deliver`]).
    pub at: Instant,
}

/// Why a [`SimNet`] call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SimError {
    /// The node id does not belong to this network.
    UnknownHost(HostId),
    /// The link id does not belong to this network.
    UnknownLink(LinkId),
    /// A link must join two different nodes.
    SelfLink(HostId),
    /// [`SimNet::send_on`] named a link that does not touch the sending node.
    NotOnLink(HostId, LinkId),
    /// The sender has no link, or several and none leads to the packet's destination.
    NoRoute(HostId),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::UnknownHost(h) => write!(f, "node {} is not part of this network", h.0),
            SimError::UnknownLink(l) => write!(f, "link {} is not part of this network", l.0),
            SimError::SelfLink(h) => write!(f, "cannot link node {} to itself", h.0),
            SimError::NotOnLink(h, l) => write!(f, "node {} is not an end of link {}", h.0, l.0),
            SimError::NoRoute(h) => write!(
                f,
                "node {} has no link towards the packet's destination (give it one link, or \
                 register the destination with set_addr and link it directly)",
                h.0
            ),
        }
    }
}

impl std::error::Error for SimError {}

struct Node {
    name: String,
    switch: bool,
    /// Outgoing direction indices, in link creation order.
    out: Vec<usize>,
}

/// One direction of a link: where it leads, and its impairment model.
struct Direction {
    link: usize,
    to: usize,
    channel: Channel,
}

/// A packet on its way to the end of link direction `dir`.
struct Hop {
    dir: usize,
    packet: Vec<u8>,
}

type InFlight = Timed<Hop>;

/// An in-memory network of hosts, switches and links, deterministic from a seed, in virtual
/// time. See the [module documentation](self) for the model.
pub struct SimNet {
    rng: SimRng,
    nodes: Vec<Node>,
    /// (a, b) of each link; directions `2 * i` (a → b) and `2 * i + 1` (b → a).
    links: Vec<(usize, usize)>,
    dirs: Vec<Direction>,
    /// (node, neighbour) → the first direction from node to neighbour.
    routes: HashMap<(usize, usize), usize>,
    addrs: HashMap<IpAddr, usize>,
    in_flight: Timeline<Hop>,
    next_seq: u64,
    free: Vec<Vec<u8>>,
    no_route_at_origin: u64,
}

impl fmt::Debug for SimNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimNet")
            .field("nodes", &self.nodes.len())
            .field("links", &self.links.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

/// The destination address of an IPv4 or IPv6 packet, if the header is long enough to hold one.
fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        6 => {
            let b: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

impl SimNet {
    /// An empty network whose every random choice follows from `seed`.
    pub fn new(seed: u64) -> SimNet {
        SimNet {
            rng: SimRng::new(seed),
            nodes: Vec::new(),
            links: Vec::new(),
            dirs: Vec::new(),
            routes: HashMap::new(),
            addrs: HashMap::new(),
            in_flight: Timeline::default(),
            next_seq: 0,
            free: Vec::new(),
            no_route_at_origin: 0,
        }
    }

    /// Adds a host: a node that sends packets and receives them from [`poll_deliver`].
    ///
    /// [`poll_deliver`]: SimNet::poll_deliver
    pub fn add_host(&mut self, name: &str) -> HostId {
        self.add_node(name, false)
    }

    /// Adds a switch: a node that forwards every packet reaching it towards the host owning
    /// its destination address (see [`set_addr`](SimNet::set_addr)) and never delivers any.
    pub fn add_switch(&mut self, name: &str) -> HostId {
        self.add_node(name, true)
    }

    fn add_node(&mut self, name: &str, switch: bool) -> HostId {
        self.nodes.push(Node {
            name: name.to_owned(),
            switch,
            out: Vec::new(),
        });
        HostId(self.nodes.len() - 1)
    }

    fn node(&self, h: HostId) -> Result<usize, SimError> {
        if h.0 < self.nodes.len() {
            Ok(h.0)
        } else {
            Err(SimError::UnknownHost(h))
        }
    }

    /// Joins `a` and `b` with a duplex link, both directions configured by `cfg`.
    pub fn connect(&mut self, a: HostId, b: HostId, cfg: LinkConfig) -> Result<LinkId, SimError> {
        self.connect_asym(a, b, cfg, cfg)
    }

    /// Joins `a` and `b` with a duplex link whose directions differ: `ab` shapes packets from
    /// `a` to `b`, `ba` those from `b` to `a` (an ADSL line, a satellite return channel).
    pub fn connect_asym(
        &mut self,
        a: HostId,
        b: HostId,
        ab: LinkConfig,
        ba: LinkConfig,
    ) -> Result<LinkId, SimError> {
        let (a, b) = (self.node(a)?, self.node(b)?);
        if a == b {
            return Err(SimError::SelfLink(HostId(a)));
        }
        let link = self.links.len();
        self.links.push((a, b));
        for (from, to, cfg) in [(a, b, ab), (b, a, ba)] {
            let dir = self.dirs.len();
            self.dirs.push(Direction {
                link,
                to,
                channel: Channel::new(cfg, self.rng.fork()),
            });
            self.nodes[from].out.push(dir);
            self.routes.entry((from, to)).or_insert(dir);
        }
        Ok(LinkId(link))
    }

    /// Gives `host` the address `addr` (IPv4 or IPv6), so that switches and multi-link hosts
    /// route packets for it there. A host may own several addresses; assigning an address that
    /// another node owned moves it.
    pub fn set_addr(&mut self, host: HostId, addr: impl Into<IpAddr>) -> Result<(), SimError> {
        let node = self.node(host)?;
        self.addrs.insert(addr.into(), node);
        Ok(())
    }

    /// The node owning `addr`, if any.
    pub fn host_for_addr(&self, addr: impl Into<IpAddr>) -> Option<HostId> {
        self.addrs.get(&addr.into()).map(|&n| HostId(n))
    }

    /// The name given when the node was added.
    pub fn name(&self, host: HostId) -> Option<&str> {
        self.nodes.get(host.0).map(|n| n.name.as_str())
    }

    /// The first node added with this name.
    pub fn host_by_name(&self, name: &str) -> Option<HostId> {
        self.nodes.iter().position(|n| n.name == name).map(HostId)
    }

    /// The two ends of `link`, in the order given to [`connect`](SimNet::connect).
    pub fn endpoints(&self, link: LinkId) -> Option<(HostId, HostId)> {
        self.links.get(link.0).map(|&(a, b)| (HostId(a), HostId(b)))
    }

    /// Which direction leaves `node` towards the packet's destination.
    fn route(&self, node: usize, packet: &[u8]) -> Option<usize> {
        let n = self.nodes.get(node)?;
        if !n.switch && n.out.len() == 1 {
            return n.out.first().copied();
        }
        let owner = *self.addrs.get(&destination(packet)?)?;
        self.routes.get(&(node, owner)).copied()
    }

    /// Sends `packet` from `from` at `now`. A host with one link sends on it; otherwise the
    /// packet goes on the link to the neighbour owning its destination address. Loss and
    /// queue drops are not errors (the network just drops and counts); only a packet with
    /// nowhere to go is, and it is counted in [`total_stats`](SimNet::total_stats) too.
    pub fn send(&mut self, now: Instant, from: HostId, packet: &[u8]) -> Result<(), SimError> {
        let node = self.node(from)?;
        match self.route(node, packet) {
            Some(dir) => {
                let buf = self.buffer_with(packet);
                self.transmit(now.total_micros(), dir, buf);
                Ok(())
            }
            None => {
                self.no_route_at_origin += 1;
                Err(SimError::NoRoute(from))
            }
        }
    }

    /// Sends `packet` from `from` at `now` on `link`, whatever its destination.
    pub fn send_on(
        &mut self,
        now: Instant,
        link: LinkId,
        from: HostId,
        packet: &[u8],
    ) -> Result<(), SimError> {
        let node = self.node(from)?;
        let &(a, b) = self.links.get(link.0).ok_or(SimError::UnknownLink(link))?;
        let dir = if node == a {
            2 * link.0
        } else if node == b {
            2 * link.0 + 1
        } else {
            return Err(SimError::NotOnLink(from, link));
        };
        let buf = self.buffer_with(packet);
        self.transmit(now.total_micros(), dir, buf);
        Ok(())
    }

    /// A buffer (recycled if possible) holding a copy of `packet`.
    fn buffer_with(&mut self, packet: &[u8]) -> Vec<u8> {
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        buf
    }

    /// Puts `buf` on direction `dir` at `now_us`, applying the direction's impairments.
    fn transmit(&mut self, now_us: u64, dir: usize, buf: Vec<u8>) {
        let Some(d) = self.dirs.get_mut(dir) else {
            self.recycle(buf);
            return;
        };
        let free = &mut self.free;
        match d
            .channel
            .offer(now_us, buf, || free.pop().unwrap_or_default())
        {
            Fate::Dropped(buf) => self.recycle(buf),
            Fate::Arrives {
                packet,
                copy,
                at_us,
            } => {
                for packet in core::iter::once(packet).chain(copy) {
                    self.in_flight.push(InFlight {
                        at_us,
                        seq: self.next_seq,
                        item: Hop { dir, packet },
                    });
                    self.next_seq += 1;
                }
            }
        }
    }

    /// When the earliest packet in flight reaches the end of its link, or `None` if nothing is
    /// in flight. Usually that is a delivery to a host; if it is a packet reaching a switch,
    /// [`poll_deliver`](SimNet::poll_deliver) at that instant forwards it and returns `None` —
    /// just ask again. Idle time between events can be skipped entirely.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|p| Instant::from_micros(p.at_us))
    }

    /// The next packet to reach a host at or before `now`, earliest first (ties in the order
    /// they were put on their link), or `None` when nothing more is due. Packets reaching a
    /// switch on the way are forwarded as of their own arrival instant, not `now`, so polling
    /// late changes nothing. Call until it returns `None`.
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Delivery> {
        let now_us = now.total_micros();
        while self.in_flight.peek().is_some_and(|p| p.at_us <= now_us) {
            let Timed {
                at_us,
                item: Hop { dir, packet },
                ..
            } = self.in_flight.pop()?;
            let Some(d) = self.dirs.get_mut(dir) else {
                self.recycle(packet);
                continue;
            };
            d.channel.delivered(packet.len());
            let (to, link) = (d.to, d.link);
            let is_switch = self.nodes.get(to).is_some_and(|n| n.switch);
            if !is_switch {
                return Some(Delivery {
                    to: HostId(to),
                    link: LinkId(link),
                    packet,
                    at: Instant::from_micros(at_us),
                });
            }
            match self.route(to, &packet) {
                Some(out) => self.transmit(at_us, out, packet),
                None => {
                    if let Some(d) = self.dirs.get_mut(dir) {
                        d.channel.no_route();
                    }
                    self.recycle(packet);
                }
            }
        }
        None
    }

    /// Returns a packet buffer (typically [`Delivery::packet`]) for reuse by later sends.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.free.len() < FREE_LIST_LIMIT
            && buf.capacity() > 0
            && buf.capacity() <= MAX_RECYCLED_CAPACITY
        {
            self.free.push(buf);
        }
    }

    /// Packets in flight (including those waiting in a queue to be serialised).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The counters of both directions of `link` (all zero for a link not in this network).
    pub fn stats(&self, link: LinkId) -> DuplexStats {
        let dir = |i: usize| {
            self.dirs
                .get(i)
                .map(|d| *d.channel.stats())
                .unwrap_or_default()
        };
        match link.0.checked_mul(2) {
            Some(i) if link.0 < self.links.len() => DuplexStats {
                a_to_b: dir(i),
                b_to_a: dir(i + 1),
            },
            _ => DuplexStats::default(),
        }
    }

    /// All link directions added together, plus the packets hosts could not send at all
    /// (in `dropped_no_route`).
    pub fn total_stats(&self) -> LinkStats {
        let mut total = LinkStats {
            dropped_no_route: self.no_route_at_origin,
            ..LinkStats::default()
        };
        for d in &self.dirs {
            total.accumulate(d.channel.stats());
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const T0: Instant = Instant::ZERO;

    fn us(t: u64) -> Instant {
        Instant::from_micros(t)
    }

    /// Runs virtual time until nothing is in flight, collecting every delivery.
    fn drain(net: &mut SimNet) -> Vec<Delivery> {
        let mut out = Vec::new();
        while let Some(t) = net.next_delivery() {
            while let Some(d) = net.poll_deliver(t) {
                out.push(d);
            }
        }
        out
    }

    fn two_hosts(seed: u64, cfg: LinkConfig) -> (SimNet, HostId, HostId, LinkId) {
        let mut net = SimNet::new(seed);
        let a = net.add_host("a");
        let b = net.add_host("b");
        let l = net.connect(a, b, cfg).unwrap();
        (net, a, b, l)
    }

    /// A packet whose first 4 bytes are `n`, padded to `len`.
    fn numbered(n: u32, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len.max(4)];
        p[..4].copy_from_slice(&n.to_be_bytes());
        p
    }

    fn number(p: &[u8]) -> u32 {
        u32::from_be_bytes([p[0], p[1], p[2], p[3]])
    }

    fn ipv4_to(dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&dst);
        p
    }

    fn conserved(s: &LinkStats) -> bool {
        s.sent + s.duplicated == s.delivered + s.dropped_loss + s.dropped_queue
    }

    fn impaired() -> LinkConfig {
        LinkConfig::delay_ms(3)
            .with_jitter(Duration::from_micros(700))
            .with_bandwidth(50_000_000)
            .with_queue_limit(20_000)
            .with_loss(Loss::Bernoulli(0.05))
            .with_duplicate(0.02)
            .with_reorder(0.03)
            .with_corrupt(0.01)
    }

    fn run_impaired(seed: u64) -> Vec<(Instant, HostId, Vec<u8>)> {
        let (mut net, a, b, _) = two_hosts(seed, impaired());
        for i in 0..2000u32 {
            let from = if i % 3 == 0 { b } else { a };
            net.send(us(u64::from(i) * 50), from, &numbered(i, 200))
                .unwrap();
        }
        drain(&mut net)
            .into_iter()
            .map(|d| (d.at, d.to, d.packet))
            .collect()
    }

    #[test]
    fn same_seed_same_deliveries_different_seed_different() {
        let x = run_impaired(11);
        let y = run_impaired(11);
        let z = run_impaired(12);
        assert!(!x.is_empty());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn delay_is_exact_and_idle_time_is_skipped() {
        let (mut net, a, b, l) = two_hosts(0, LinkConfig::delay_ms(25));
        assert_eq!(net.next_delivery(), None);
        net.send(Instant::from_secs(100), a, b"x").unwrap();
        let due = Instant::from_secs(100) + Duration::from_millis(25);
        assert_eq!(net.next_delivery(), Some(due));
        assert_eq!(net.poll_deliver(due - Duration::from_micros(1)), None);
        let d = net.poll_deliver(Instant::from_secs(1000)).unwrap();
        assert_eq!((d.to, d.link, d.at, &d.packet[..]), (b, l, due, &b"x"[..]));
        assert_eq!(net.poll_deliver(Instant::from_secs(1000)), None);
        // And back the other way.
        net.send(Instant::from_secs(200), b, b"y").unwrap();
        let d = drain(&mut net).pop().unwrap();
        assert_eq!(
            (d.to, d.at),
            (a, Instant::from_secs(200) + Duration::from_millis(25))
        );
    }

    #[test]
    fn bandwidth_spaces_back_to_back_packets_exactly() {
        // 1500 bytes at 12 Mbit/s = 12,000 bits / 12e6 bit/s = 1 ms each.
        let cfg = LinkConfig::delay_ms(5).with_bandwidth(12_000_000);
        let (mut net, a, _, _) = two_hosts(0, cfg);
        for i in 0..10 {
            net.send(T0, a, &numbered(i, 1500)).unwrap();
        }
        let got = drain(&mut net);
        let times: Vec<Instant> = got.iter().map(|d| d.at).collect();
        let want: Vec<Instant> = (1..=10).map(|k| Instant::from_millis(5 + k)).collect();
        assert_eq!(times, want);
        let order: Vec<u32> = got.iter().map(|d| number(&d.packet)).collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());

        // An idle link starts serialising at `now`, not at the end of the last burst.
        net.send(Instant::from_secs(1), a, &numbered(0, 1500))
            .unwrap();
        assert_eq!(net.next_delivery(), Some(Instant::from_micros(1_006_000)));
    }

    #[test]
    fn fractional_serialisation_times_do_not_drift() {
        // 1000 bytes at 3 Mbit/s = 2666.67 µs: three back-to-back packets end at exactly 8 ms.
        let cfg = LinkConfig::default().with_bandwidth(3_000_000);
        let (mut net, a, _, _) = two_hosts(0, cfg);
        for i in 0..3 {
            net.send(T0, a, &numbered(i, 1000)).unwrap();
        }
        let times: Vec<u64> = drain(&mut net)
            .iter()
            .map(|d| d.at.total_micros())
            .collect();
        assert_eq!(times, [2667, 5334, 8000]);
    }

    #[test]
    fn drop_tail_drops_exactly_the_excess() {
        // 1 ms per packet; the queue holds three 1500-byte packets including the one on the wire.
        let cfg = LinkConfig::default()
            .with_bandwidth(12_000_000)
            .with_queue_limit(4500);
        let (mut net, a, _, l) = two_hosts(0, cfg);
        for i in 0..10 {
            net.send(T0, a, &numbered(i, 1500)).unwrap();
        }
        let s = net.stats(l).a_to_b;
        assert_eq!((s.sent, s.dropped_queue), (10, 7));
        // At 1 ms the first packet has left the queue: room for exactly one more.
        net.send(Instant::from_millis(1), a, &numbered(10, 1500))
            .unwrap();
        net.send(Instant::from_millis(1), a, &numbered(11, 1500))
            .unwrap();
        let got = drain(&mut net);
        let order: Vec<u32> = got.iter().map(|d| number(&d.packet)).collect();
        assert_eq!(order, [0, 1, 2, 10]);
        assert_eq!(got[3].at, Instant::from_millis(4));
        let s = net.stats(l).a_to_b;
        assert_eq!((s.sent, s.delivered, s.dropped_queue), (12, 4, 8));
        // A packet larger than the whole queue never fits.
        net.send(Instant::from_secs(9), a, &[0u8; 4501]).unwrap();
        assert_eq!(net.stats(l).a_to_b.dropped_queue, 9);
        // Zero bandwidth carries nothing.
        let (mut net, a, _, l) = two_hosts(0, LinkConfig::default().with_bandwidth(0));
        net.send(T0, a, b"x").unwrap();
        assert!(drain(&mut net).is_empty());
        assert_eq!(net.stats(l).a_to_b.dropped_queue, 1);
    }

    #[test]
    fn bernoulli_loss_rate_is_within_tolerance() {
        let cfg = LinkConfig::default().with_loss(Loss::Bernoulli(0.1));
        let (mut net, a, _, l) = two_hosts(5, cfg);
        let n = 100_000;
        for i in 0..n {
            net.send(us(i), a, b"p").unwrap();
            while let Some(d) = net.poll_deliver(us(i)) {
                net.recycle(d.packet);
            }
        }
        let s = net.stats(l).a_to_b;
        let rate = s.dropped_loss as f64 / n as f64;
        // σ = sqrt(0.1 · 0.9 / 1e5) ≈ 0.00095; allow ~5σ.
        assert!((rate - 0.1).abs() < 0.005, "loss rate {rate}");
        assert_eq!(s.delivered + s.dropped_loss, n);
        assert_eq!(net.stats(l).b_to_a, LinkStats::default());
    }

    /// Lengths of the runs of consecutive losses in a delivered/lost sequence.
    fn loss_bursts(cfg: LinkConfig, seed: u64, n: u32) -> (f64, Vec<u32>) {
        let (mut net, a, _, _) = two_hosts(seed, cfg);
        let mut delivered = vec![false; n as usize];
        for i in 0..n {
            net.send(us(u64::from(i)), a, &numbered(i, 4)).unwrap();
            while let Some(d) = net.poll_deliver(us(u64::from(i))) {
                delivered[number(&d.packet) as usize] = true;
                net.recycle(d.packet);
            }
        }
        let mut bursts = Vec::new();
        let mut run = 0;
        for ok in delivered.iter().copied().chain([true]) {
            if ok {
                if run > 0 {
                    bursts.push(run);
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        let lost = delivered.iter().filter(|&&ok| !ok).count();
        (lost as f64 / f64::from(n), bursts)
    }

    #[test]
    fn gilbert_elliott_loses_in_bursts() {
        let ge = Loss::GilbertElliott {
            p_good_to_bad: 0.01,
            p_bad_to_good: 0.25,
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        let (rate, bursts) = loss_bursts(LinkConfig::default().with_loss(ge), 8, 200_000);
        let mean = bursts.iter().sum::<u32>() as f64 / bursts.len() as f64;
        assert!((mean - 4.0).abs() < 0.4, "mean burst {mean}");
        let want = 0.01 / 0.26;
        assert!((rate - want).abs() < 0.01, "loss rate {rate} vs {want}");
        // Independent loss at the same rate hardly ever loses two in a row.
        let (_, b) = loss_bursts(
            LinkConfig::default().with_loss(Loss::Bernoulli(want)),
            8,
            200_000,
        );
        let mean_b = b.iter().sum::<u32>() as f64 / b.len() as f64;
        assert!(mean_b < 1.1, "bernoulli mean burst {mean_b}");
    }

    #[test]
    fn duplication_and_corruption_are_counted() {
        let cfg = LinkConfig::delay_ms(1)
            .with_duplicate(0.2)
            .with_corrupt(0.1);
        let (mut net, a, _, l) = two_hosts(3, cfg);
        let n = 20_000u32;
        let original = numbered(0, 100);
        for i in 0..n {
            net.send(us(u64::from(i) * 10), a, &original).unwrap();
        }
        let got = drain(&mut net);
        let s = net.stats(l).a_to_b;
        assert_eq!(got.len() as u64, u64::from(n) + s.duplicated);
        assert_eq!(s.delivered, got.len() as u64);
        assert_eq!(s.bytes_delivered, 100 * got.len() as u64);
        assert!((3_600..4_400).contains(&s.duplicated), "{s:?}");
        let corrupted = got.iter().filter(|d| d.packet != original).count() as u64;
        assert_eq!(corrupted, s.corrupted);
        assert!((2_000..2_800).contains(&s.corrupted), "{s:?}");
        assert!(conserved(&s));
    }

    #[test]
    fn a_duplicate_arrives_with_its_original() {
        let cfg = LinkConfig::delay_ms(2).with_duplicate(1.0);
        let (mut net, a, _, _) = two_hosts(0, cfg);
        net.send(T0, a, b"once").unwrap();
        let got = drain(&mut net);
        assert_eq!(got.len(), 2);
        assert!(
            got.iter()
                .all(|d| d.at == Instant::from_millis(2) && d.packet == b"once")
        );
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let cfg = LinkConfig::default().with_corrupt(1.0);
        let (mut net, a, _, l) = two_hosts(4, cfg);
        let original: Vec<u8> = (0..=255).collect();
        let mut positions = std::collections::HashSet::new();
        for i in 0..500 {
            net.send(us(i), a, &original).unwrap();
            let d = net.poll_deliver(us(i)).unwrap();
            let diff: Vec<(usize, u8)> = d
                .packet
                .iter()
                .zip(&original)
                .enumerate()
                .filter(|(_, (x, y))| x != y)
                .map(|(k, (x, y))| (k, x ^ y))
                .collect();
            assert_eq!(diff.len(), 1);
            assert_eq!(diff[0].1.count_ones(), 1);
            positions.insert(diff[0]);
            net.recycle(d.packet);
        }
        assert!(
            positions.len() > 400,
            "bits should be spread over the packet"
        );
        assert_eq!(net.stats(l).a_to_b.corrupted, 500);
        // An empty packet has no bit to flip; nothing panics and nothing is counted.
        net.send(us(1000), a, &[]).unwrap();
        assert_eq!(net.poll_deliver(us(1000)).unwrap().packet, b"");
        assert_eq!(net.stats(l).a_to_b.corrupted, 500);
    }

    #[test]
    fn reordering_lets_later_packets_overtake() {
        let cfg = LinkConfig::delay_ms(1)
            .with_reorder(0.1)
            .with_reorder_delay(Duration::from_millis(2));
        let (mut net, a, _, l) = two_hosts(6, cfg);
        let n = 1000u32;
        for i in 0..n {
            net.send(us(u64::from(i) * 100), a, &numbered(i, 20))
                .unwrap();
        }
        let got = drain(&mut net);
        let order: Vec<u32> = got.iter().map(|d| number(&d.packet)).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..n).collect::<Vec<_>>(),
            "every packet arrives once"
        );
        let overtaken = order.windows(2).filter(|w| w[0] > w[1]).count();
        let s = net.stats(l).a_to_b;
        assert!((60..140).contains(&s.reordered), "{s:?}");
        assert!(overtaken > 50, "{overtaken} inversions");
        // Each held-back packet arrives exactly reorder_delay after its normal time.
        for d in &got {
            let sent = u64::from(number(&d.packet)) * 100;
            let late = d.at.total_micros() - sent;
            assert!(late == 1000 || late == 3000, "{late}");
        }
        // Times are non-decreasing: deliveries come out in time order.
        assert!(got.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn jitter_alone_keeps_fifo_order() {
        let cfg = LinkConfig::delay_ms(10).with_jitter(Duration::from_millis(5));
        let (mut net, a, _, _) = two_hosts(7, cfg);
        for i in 0..5000u32 {
            net.send(us(u64::from(i) * 100), a, &numbered(i, 20))
                .unwrap();
        }
        let got = drain(&mut net);
        let order: Vec<u32> = got.iter().map(|d| number(&d.packet)).collect();
        assert_eq!(order, (0..5000).collect::<Vec<_>>());
        let mut spread = std::collections::HashSet::new();
        for d in &got {
            let late = d.at.total_micros() - u64::from(number(&d.packet)) * 100;
            assert!(late >= 10_000);
            spread.insert(late);
        }
        assert!(spread.len() > 100, "jitter should vary the delay");
    }

    #[test]
    fn asymmetric_links_shape_each_direction_separately() {
        let mut net = SimNet::new(0);
        let a = net.add_host("a");
        let b = net.add_host("b");
        let l = net
            .connect_asym(a, b, LinkConfig::delay_ms(1), LinkConfig::delay_ms(30))
            .unwrap();
        net.send(T0, a, b"up").unwrap();
        net.send(T0, b, b"down").unwrap();
        let got = drain(&mut net);
        assert_eq!((got[0].to, got[0].at), (b, Instant::from_millis(1)));
        assert_eq!((got[1].to, got[1].at), (a, Instant::from_millis(30)));
        assert_eq!(net.endpoints(l), Some((a, b)));
        assert_eq!(net.stats(l).a_to_b.delivered, 1);
        assert_eq!(net.stats(l).b_to_a.delivered, 1);
    }

    #[test]
    fn star_routes_by_destination_and_drops_the_unknown() {
        let mut net = SimNet::new(9);
        let sw = net.add_switch("switch");
        let server = net.add_host("server");
        let server_link = net.connect(server, sw, LinkConfig::delay_ms(1)).unwrap();
        net.set_addr(server, Ipv4Addr::new(198, 18, 0, 1)).unwrap();
        net.set_addr(server, Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 1))
            .unwrap();
        let mut clients = Vec::new();
        for i in 0..1000u32 {
            let h = net.add_host(&format!("client{i}"));
            let l = net.connect(h, sw, LinkConfig::delay_ms(2)).unwrap();
            net.set_addr(h, Ipv4Addr::from(0xc612_1000 + i)).unwrap();
            clients.push((h, l));
        }
        assert_eq!(net.host_by_name("client7"), Some(clients[7].0));
        assert_eq!(net.name(server), Some("server"));

        // Every client reaches the server; the server answers one client.
        for (h, _) in &clients {
            net.send(T0, *h, &ipv4_to([198, 18, 0, 1])).unwrap();
        }
        net.send(T0, server, &ipv4_to([198, 18, 0x10, 0x05]))
            .unwrap();
        // IPv6 works the same way.
        let mut v6 = vec![0u8; 60];
        v6[0] = 0x60;
        v6[24..40].copy_from_slice(&Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 1).octets());
        net.send(T0, clients[0].0, &v6).unwrap();
        // Unknown destination, a truncated header and a non-IP packet: dropped at the switch.
        net.send(T0, clients[1].0, &ipv4_to([10, 0, 0, 1])).unwrap();
        net.send(T0, clients[1].0, &[0x45, 0, 0]).unwrap();
        net.send(T0, clients[1].0, &[]).unwrap();

        let got = drain(&mut net);
        let to_server: Vec<&Delivery> = got.iter().filter(|d| d.to == server).collect();
        assert_eq!(to_server.len(), 1001);
        assert!(to_server.iter().all(|d| d.at == Instant::from_millis(3)));
        assert!(to_server.iter().all(|d| d.link == server_link));
        let to_client: Vec<&Delivery> = got.iter().filter(|d| d.to != server).collect();
        assert_eq!(to_client.len(), 1);
        assert_eq!((to_client[0].to, to_client[0].link), clients[5]);
        assert_eq!(to_client[0].at, Instant::from_millis(3));
        assert_eq!(net.stats(clients[1].1).a_to_b.dropped_no_route, 3);
        let t = net.total_stats();
        assert_eq!(t.dropped_no_route, 3);
        assert_eq!(t.delivered, 2 * 1002 + 3);
        assert!(conserved(&t));
        assert_eq!(net.in_flight(), 0);
    }

    #[test]
    fn switch_links_keep_their_own_timing() {
        // Two senders share the switch→server link at 12 Mbit/s: the packet that reaches the
        // switch first is serialised first, whatever order the sends were made in.
        let mut net = SimNet::new(0);
        let sw = net.add_switch("sw");
        let server = net.add_host("server");
        let slow = net.add_host("slow");
        let fast = net.add_host("fast");
        let down = LinkConfig::default().with_bandwidth(12_000_000);
        net.connect(sw, server, down).unwrap();
        net.connect(slow, sw, LinkConfig::delay_ms(10)).unwrap();
        net.connect(fast, sw, LinkConfig::delay_ms(1)).unwrap();
        net.set_addr(server, Ipv4Addr::new(198, 18, 0, 1)).unwrap();
        let mut p = ipv4_to([198, 18, 0, 1]);
        p.resize(1500, 0);
        net.send(T0, slow, &p).unwrap();
        p[30] = 1;
        net.send(T0, fast, &p).unwrap();
        let got = drain(&mut net);
        assert_eq!(got[0].packet[30], 1);
        assert_eq!(got[0].at, Instant::from_millis(2));
        assert_eq!(got[1].at, Instant::from_millis(11));
    }

    #[test]
    fn errors_are_values() {
        let mut net = SimNet::new(0);
        let a = net.add_host("a");
        let b = net.add_host("b");
        let c = net.add_host("c");
        let ghost = HostId(99);
        assert_eq!(
            net.connect(a, ghost, LinkConfig::default()),
            Err(SimError::UnknownHost(ghost))
        );
        assert_eq!(
            net.connect(a, a, LinkConfig::default()),
            Err(SimError::SelfLink(a))
        );
        assert_eq!(net.send(T0, a, b"x"), Err(SimError::NoRoute(a)));
        assert_eq!(net.send(T0, ghost, b"x"), Err(SimError::UnknownHost(ghost)));
        assert_eq!(
            net.set_addr(ghost, Ipv4Addr::LOCALHOST),
            Err(SimError::UnknownHost(ghost))
        );
        let ab = net.connect(a, b, LinkConfig::default()).unwrap();
        let ac = net.connect(a, c, LinkConfig::default()).unwrap();
        // Two links and no address for the destination: no route; naming the link works.
        assert_eq!(
            net.send(T0, a, &ipv4_to([1, 2, 3, 4])),
            Err(SimError::NoRoute(a))
        );
        net.set_addr(c, Ipv4Addr::new(1, 2, 3, 4)).unwrap();
        net.send(T0, a, &ipv4_to([1, 2, 3, 4])).unwrap();
        net.send_on(T0, ab, a, b"y").unwrap();
        assert_eq!(
            net.send_on(T0, ab, c, b"y"),
            Err(SimError::NotOnLink(c, ab))
        );
        assert_eq!(
            net.send_on(T0, LinkId(7), a, b"y"),
            Err(SimError::UnknownLink(LinkId(7)))
        );
        let got = drain(&mut net);
        assert_eq!((got[0].to, got[0].link), (c, ac));
        assert_eq!(
            (got[1].to, got[1].link, &got[1].packet[..]),
            (b, ab, &b"y"[..])
        );
        assert_eq!(net.total_stats().dropped_no_route, 2);
        assert_eq!(net.stats(LinkId(7)), DuplexStats::default());
        assert_eq!(net.endpoints(LinkId(7)), None);
        assert!(SimError::NoRoute(a).to_string().contains("set_addr"));
    }

    #[test]
    fn hostile_configs_do_not_panic() {
        let cfg = LinkConfig {
            delay: Duration::MAX,
            jitter: Duration::MAX,
            bandwidth_bps: Some(1),
            queue_limit_bytes: Some(0),
            loss: Loss::GilbertElliott {
                p_good_to_bad: f64::NAN,
                p_bad_to_good: -3.0,
                loss_good: f64::INFINITY,
                loss_bad: 2.0,
            },
            duplicate: f64::NAN,
            reorder: 7.0,
            reorder_delay: Duration::MAX,
            corrupt: -1.0,
        };
        let (mut net, a, _, _) = two_hosts(0, cfg);
        net.send(Instant::from_micros(u64::MAX), a, &[1; 70_000])
            .unwrap();
        let cfg = LinkConfig {
            queue_limit_bytes: None,
            loss: Loss::Bernoulli(f64::NAN),
            ..cfg
        };
        let (mut net, a, _, _) = two_hosts(0, cfg);
        for i in 0..10 {
            net.send(Instant::from_micros(u64::MAX - i), a, &[1; 70_000])
                .unwrap();
        }
        let got = drain(&mut net);
        assert_eq!(got.len(), 10);
        assert!(conserved(&net.total_stats()));
    }

    #[test]
    fn impairment_accounting_balances() {
        for seed in 0..5 {
            let (mut net, a, b, l) = two_hosts(seed, impaired());
            for i in 0..3000u32 {
                let from = if i % 2 == 0 { a } else { b };
                net.send(us(u64::from(i) * 20), from, &numbered(i, 300))
                    .unwrap();
            }
            let got = drain(&mut net);
            let s = net.stats(l);
            assert!(conserved(&s.a_to_b) && conserved(&s.b_to_a), "{s:?}");
            assert_eq!(s.sum().delivered, got.len() as u64);
            assert_eq!(net.total_stats(), s.sum());
            assert!(s.a_to_b.dropped_queue > 0 && s.a_to_b.dropped_loss > 0);
        }
    }

    #[test]
    fn buffers_are_recycled() {
        let (mut net, a, _, _) = two_hosts(0, LinkConfig::delay_ms(1));
        net.send(T0, a, &[7; 1500]).unwrap();
        let d = drain(&mut net).pop().unwrap();
        let ptr = d.packet.as_ptr();
        net.recycle(d.packet);
        net.send(T0, a, &[8; 100]).unwrap();
        let d = drain(&mut net).pop().unwrap();
        assert_eq!(d.packet.as_ptr(), ptr, "the recycled buffer is reused");
        assert_eq!(d.packet, [8; 100]);
        // The free list is bounded.
        for _ in 0..FREE_LIST_LIMIT + 10 {
            net.recycle(Vec::with_capacity(64));
        }
        assert_eq!(net.free.len(), FREE_LIST_LIMIT);
    }

    #[test]
    fn throughput_100k_packets() {
        // A realistic impaired link, with the driver loop a stack would run.
        let cfg = LinkConfig::delay_ms(20)
            .with_jitter(Duration::from_millis(1))
            .with_bandwidth(10_000_000_000)
            .with_loss(Loss::Bernoulli(0.01));
        let (mut net, a, _, l) = two_hosts(1, cfg);
        let n = 100_000u64;
        let packet = [0x45u8; 1500];
        let start = std::time::Instant::now();
        let mut delivered = 0u64;
        for i in 0..n {
            let now = us(i * 10);
            net.send(now, a, &packet).unwrap();
            while let Some(d) = net.poll_deliver(now) {
                delivered += 1;
                net.recycle(d.packet);
            }
        }
        while let Some(t) = net.next_delivery() {
            while let Some(d) = net.poll_deliver(t) {
                delivered += 1;
                net.recycle(d.packet);
            }
        }
        let elapsed = start.elapsed();
        assert_eq!(delivered, net.stats(l).a_to_b.delivered);
        assert!(delivered > 98_000);
        let rate = n as f64 / elapsed.as_secs_f64();
        println!("SimNet: {n} packets in {elapsed:?} = {rate:.0} packets/s");
        assert!(elapsed < std::time::Duration::from_secs(1), "{elapsed:?}");
    }
}
