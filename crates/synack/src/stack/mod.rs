//! The stack: one host's IP and TCP, sans-IO.
//!
//! Packets come in with [`Stack::handle_packet`] and go out through
//! [`Stack::poll_transmit`]; time moves with [`Stack::handle_timeout`] at or after
//! [`Stack::poll_timeout`]. In between, the stack validates IPv4 and IPv6 (walking IPv6's
//! extension headers, RFC 8200 §4), reassembles fragments of both families within a memory
//! bound (`fragments.rs`), answers ICMP and ICMPv6 echo, maps ICMP errors onto connections,
//! demultiplexes TCP by 4-tuple in a keyed hash map (O(1), no scan; `hash.rs`), keeps listeners'
//! half-open connections as compact SYN-queue entries and answers with SYN cookies when that
//! queue is full (RFC 4987; `handshake.rs`, `syn_queue.rs`), keeps completed handshakes in
//! bounded accept queues, answers segments for closed ports with RSTs (RFC 9293 §3.10.7.1:
//! never a RST for a RST), picks ephemeral ports (RFC 6056), and keeps every connection's
//! next deadline in one timing wheel so arming is O(1) and a tick costs O(expired). UDP
//! sockets take datagrams for its addresses (`udp.rs`); in forwarder mode (`forward.rs`,
//! [`Stack::enable_forwarding`]) it takes TCP, UDP and echo for *any* address in configured
//! prefixes, and the application decides on each flow before it is answered.
//!
//! A host has addresses of either family or both (dual-stack); a listener on `[::]` takes
//! IPv4 connections too unless it is IPv6-only (RFC 3493 §3.7, Linux's default), and an
//! IPv4-mapped address (`::ffff:a.b.c.d`) is its IPv4 address. There is no neighbour
//! discovery: the links the stack runs on (TUN, SimNet) are layer 3.
//!
//! Sockets are addressed by [`SocketHandle`]s; the application-facing calls mirror the
//! sockets API (`listen`, `accept`, `connect`, `send`, `recv`, `shutdown`, `close`).
//!
//! One concept per file:
//!
//! | file | what |
//! |---|---|
//! | `route.rs` | addresses, gateway, source address selection, MSS, path MTU cache |
//! | `slots.rs` | the slot table behind [`SocketHandle`]s; bookkeeping after a connection is touched |
//! | `socket.rs` | the socket calls |
//! | `timer.rs` | the connections', SYN queue's and reassembly's deadlines |
//! | `wheel.rs` | the timing wheel of the connections' deadlines |
//! | `ipv4.rs` | IPv4 input (and the entry point of both families) |
//! | `ipv6.rs` | IPv6 input: the extension-header walk and its parameter problems |
//! | `fragments.rs` | fragment reassembly, both families, bounded |
//! | `icmp.rs` | ICMP echo and errors; what both ICMPs share (error rules, rate limit) |
//! | `icmpv6.rs` | ICMPv6 echo, packet too big, errors sent |
//! | `demux.rs` | TCP input: connection, SYN-queue entry, listener, forwarder, or RST |
//! | `hash.rs` | the keyed hash of the 4-tuple tables |
//! | `udp.rs` | UDP sockets: input, checksums, port unreachable, send (in fragments when large) |
//! | `forward.rs` | forwarder mode: flows to any destination in configured prefixes, decided by the application |
//! | `handshake.rs`, `syn_queue.rs` | listeners' half-open connections and SYN cookies |
//! | `time_wait.rs` | compact TIME-WAIT entries that replace closed connections for the 2 MSL |
//! | `ports.rs` | ephemeral ports |
//! | `egress.rs` | [`Stack::poll_transmit`], IP headers, flow labels, the packets the stack itself owes (in fragments when large) |
//! | `trace.rs` | trace events |
//! | `shortcuts.rs` | the switch (tests) and counts of the stack's shortcuts around its general paths |

mod demux;
mod egress;
mod fastopen;
pub use fastopen::FastOpenConnect;
mod forward;
pub mod fragments;
mod handshake;
pub(crate) mod hash;
mod icmp;
mod icmpv6;
mod ipv4;
mod ipv6;
mod ports;
mod route;
mod shortcuts;
mod slots;
mod socket;
mod syn_queue;
mod time_wait;
pub use time_wait::TIME_WAIT_ENTRY_SIZE;
mod timer;
mod trace;
mod udp;
mod wheel;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use crate::tcp::isn::IsnGenerator;
use crate::tcp::syncookie::CookieKeys;
use crate::tcp::{Config, Counters};
use crate::trace::TraceEvent;

pub use crate::wire::cidr::{IpCidr, Ipv4Cidr, Ipv6Cidr};
pub use forward::{
    ForwardConfig, ForwardEvent, Forwarding, PendingEcho, PendingId, PendingTcp, Refusal,
    UdpCloseReason, Unreachable,
};
pub use handshake::SYN_QUEUE_ENTRY_SIZE;
use hash::KeyedHasher;
pub use ports::PortAllocator;
use slots::Slot;
pub use socket::SocketOption;
pub(crate) use udp::datagram_charge;
pub use udp::{RecvMeta, UDP_RCVBUF, UdpHandle};

/// A socket: a connection or a listener, valid until closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    index: u32,
    generation: u32,
}

/// The smallest link MTU the stack works on (a wire-format fact: the headers and TCP's
/// smallest MSS; [`Stack::mss`] never announces less).
pub use crate::wire::MIN_MTU;

/// The error text for an MTU below [`MIN_MTU`].
pub fn mtu_too_small(mtu: u16) -> String {
    format!(
        "MTU {mtu} is too small: synack needs at least {MIN_MTU} (IPv4 and TCP headers and TCP's \
         smallest MSS, 88 bytes)"
    )
}

/// RFC 8200 §5: every IPv6 link carries 1280-byte packets, so no path MTU is below it, and a
/// link with a smaller MTU cannot carry IPv6 (Linux disables IPv6 on such an interface).
/// Runtimes and simulations refuse an IPv6 address on a link below it.
pub const IPV6_MIN_MTU: u16 = 1280;

/// The error text for an IPv6 address on a link whose MTU is below [`IPV6_MIN_MTU`].
pub fn mtu_too_small_for_ipv6(mtu: u16) -> String {
    format!(
        "MTU {mtu} is too small for IPv6: every IPv6 link carries packets of {IPV6_MIN_MTU} \
         bytes (RFC 8200 §5)"
    )
}

/// Stack-wide settings.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// TCP settings shared by every connection.
    pub tcp: Arc<Config>,
    /// Link MTU (bytes of IP packet); the MSS we announce is this minus 40 (IPv4) or 60
    /// (IPv6). At least [`MIN_MTU`].
    pub mtu: u16,
    /// TTL of IPv4 packets we send (Linux ip_default_ttl, 64).
    pub ttl: u8,
    /// Hop limit of IPv6 packets we send (Linux net.ipv6.conf.*.hop_limit, 64).
    pub hop_limit: u8,
    /// A listener on `[::]` takes IPv6 connections only, not IPv4 ones as IPv4-mapped
    /// addresses (Linux net.ipv6.bindv6only, off; the IPV6_V6ONLY socket option per
    /// listener, see [`Stack::listen_opts`]).
    pub bindv6only: bool,
    /// Fragment reassembly bounds, per family (Linux ipfrag_high_thresh 4 MiB, ipfrag_time
    /// 30 s, and the same for IPv6).
    pub fragments: fragments::Limits,
    /// Ephemeral port range (Linux ip_local_port_range, 32768–60999).
    pub ephemeral_ports: (u16, u16),
    /// Collect [`TraceEvent`]s for [`Stack::poll_trace`].
    pub trace: bool,
    /// The name this host has in traces.
    pub name: crate::trace::NodeName,
    /// Heap parts of finished connections (small ring storage, scoreboards, congestion
    /// controllers, the sender's transmit state) kept for the next ones, at most this many of
    /// each kind (`tcp::connection::Spares`; Linux keeps freed sockets in slab caches), each
    /// kept small (rings below 4 KiB, scoreboards with room for 16 entries, transmit states
    /// emptied). 64 by default: at most 256 KiB of rings and a few tens of KiB of the rest,
    /// whatever the traffic was; 0 keeps none.
    pub spare_parts: usize,
    /// At most this many compact TIME-WAIT entries (Linux `tcp_max_tw_buckets`, which the
    /// kernel sizes from its connection hash table: 131,072 on the development machine). A
    /// connection that would make one more goes at once, without TIME-WAIT, counted as
    /// `TCPTimeWaitOverflow` (Linux `tcp_time_wait` when no bucket is left). Connections that
    /// stay whole in TIME-WAIT (traced, ECN, held by the application) are not counted here.
    pub max_time_wait: usize,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            tcp: Arc::new(Config::default()),
            mtu: 1500,
            ttl: 64,
            hop_limit: 64,
            bindv6only: false,
            fragments: fragments::Limits::default(),
            ephemeral_ports: (32768, 60999),
            trace: false,
            name: "host".into(),
            spare_parts: 64,
            max_time_wait: 131_072,
        }
    }
}

/// Connections are found by (local address, local port, remote address, remote port).
type Tuple = (IpAddr, u16, IpAddr, u16);

/// One host's TCP/IP stack.
pub struct Stack {
    cfg: StackConfig,
    addrs: Vec<IpCidr>,
    gateway: Option<Ipv4Addr>,
    gateway6: Option<Ipv6Addr>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Parts of finished connections for the next ones (`StackConfig::spare_parts`).
    spares: crate::tcp::connection::Spares,
    conns: demux::Demux,
    listeners: HashMap<(IpAddr, u16), SocketHandle, KeyedHasher>,
    timers: wheel::Wheel,
    /// Connections in TIME-WAIT as compact entries (`time_wait.rs`).
    time_waits: time_wait::TimeWaits,
    dirty: VecDeque<SocketHandle>,
    /// Sockets something happened to since the last [`Stack::poll_changed`] (only while
    /// [`Stack::report_changes`] is on: a driver publishing per-socket readiness asks for it).
    changed: Option<VecDeque<SocketHandle>>,
    /// IP packets the stack itself owes (RST replies, ICMP echo replies).
    control: egress::ControlQueue,
    /// SYN-ACKs owed for SYN-queue entries and cookies, written out by poll_transmit.
    synacks: VecDeque<crate::tcp::handshake::SynAck>,
    /// Half-open connections of every listener.
    syn_queue: syn_queue::SynQueue,
    cookies: CookieKeys,
    /// The Fast Open key when `Config::fastopen_key` sets none (RFC 7413 §4.1.2).
    fastopen_key: crate::tcp::FastOpenKey,
    /// Fast Open cookies and MSS per server, for the client side (RFC 7413 §4.1.3).
    fastopen_cache: HashMap<IpAddr, fastopen::Cached, KeyedHasher>,
    isn: IsnGenerator,
    ports: PortAllocator,
    ip_ident: u16,
    /// Identification of the next IPv6 datagram we fragment.
    ip6_ident: u32,
    /// Keys the IPv6 flow labels (RFC 6437 §3: a hash of the flow, with a secret).
    flow_key: (u64, u64),
    /// Incomplete IPv4 and IPv6 datagrams.
    frags4: fragments::Reassembler,
    frags6: fragments::Reassembler,
    /// Tokens for ICMP errors (Linux icmp_msgs_per_sec 1000, icmp_msgs_burst 50).
    icmp_tokens: icmp::RateLimit,
    ts_key: u64,
    counters: Counters,
    trace: VecDeque<TraceEvent>,
    /// Path MTUs learned from ICMP fragmentation-needed, by destination (RFC 1191 §5: new
    /// connections to the same host start with it, as Linux's route cache does).
    pmtu: HashMap<IpAddr, u16, KeyedHasher>,
    /// UDP sockets.
    udp: udp::Udp,
    /// Forwarder mode, when on.
    forward: Option<Box<forward::Forwarder>>,
    /// The packet being handled came through [`Stack::handle_packet_checksummed`]: its TCP
    /// and UDP checksums are not verified again.
    rx_checksummed: bool,
}

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
        let limits = cfg.fragments;
        let spares = crate::tcp::connection::Spares::new(cfg.spare_parts);
        Stack {
            ports: PortAllocator::new(cfg.ephemeral_ports, (k(16) ^ k(0), k(24) ^ k(8))),
            cfg,
            addrs: Vec::new(),
            gateway: None,
            gateway6: None,
            // The identification counters start at a value drawn from the secret through
            // SipHash, never at raw key bits: the first packet would show them.
            ip6_ident: crate::tcp::siphash::sip24(k(0), k(8), b"synack ip6 ident") as u32,
            flow_key: (k(8) ^ k(16), k(0).rotate_left(17) ^ k(24)),
            frags4: fragments::Reassembler::new(limits),
            frags6: fragments::Reassembler::new(limits),
            icmp_tokens: icmp::RateLimit::default(),
            slots: Vec::new(),
            spares,
            free: Vec::new(),
            conns: demux::Demux::new(hasher),
            listeners: HashMap::with_hasher(hasher),
            pmtu: HashMap::with_hasher(hasher),
            udp: udp::Udp::new(hasher),
            forward: None,
            rx_checksummed: false,
            syn_queue: syn_queue::SynQueue::default(),
            synacks: VecDeque::new(),
            cookies: CookieKeys::new(cookie_key),
            fastopen_key: fastopen::key_from_secret(&secret),
            fastopen_cache: HashMap::with_hasher(hasher),
            timers: wheel::Wheel::default(),
            time_waits: time_wait::TimeWaits::default(),
            dirty: VecDeque::new(),
            changed: None,
            control: egress::ControlQueue::default(),
            isn: IsnGenerator::new(isn_key),
            ip_ident: crate::tcp::siphash::sip24(k(0), k(8), b"synack ipv4 ident") as u16,
            ts_key: k(0) ^ k(24),
            counters: Counters::default(),
            trace: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &StackConfig {
        &self.cfg
    }

    /// Bytes held by incomplete fragmented datagrams, both families (each bounded by
    /// [`StackConfig::fragments`]).
    pub fn reassembly_memory(&self) -> usize {
        self.frags4.memory() + self.frags6.memory()
    }

    /// Stack-wide counters (nstat names).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

#[cfg(test)]
mod tests;
