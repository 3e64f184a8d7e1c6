//! Forwarder mode: the stack terminates flows to *any* address inside configured prefixes, as
//! a tun2socks engine or a userspace VPN needs (packets for the whole Internet come in from a
//! TUN device; each flow leaves as an ordinary socket). The application sees every flow with
//! its source and its **original destination**, and decides:
//!
//! - **TCP**: a SYN to a forwarded destination becomes a [`PendingTcp`] *before* anything is
//!   answered. [`Stack::forward_accept`] sends the SYN-ACK (a full connection in SYN-RECEIVED,
//!   RFC 9293 §3.10.7.2, whose handle is returned at once); [`Stack::forward_refuse`] answers
//!   with a RST (what a closed port says, §3.10.7.1) or an ICMP destination unreachable (what
//!   a network that cannot reach the host says); [`Stack::forward_drop`] answers nothing. So an
//!   upstream that cannot be reached gives the client a refusal, not a connection that dies
//!   after its handshake. Decisions pending at once are capped ([`ForwardConfig::max_pending`]);
//!   past the cap the SYN is counted (`FwdTcpPendingFull`) and, with SYN cookies on (RFC 4987
//!   §3.6, the stack's `syncookies` setting), answered with a cookie: no state is kept, and a
//!   client that completes the handshake lands on the forwarder's accept queue already
//!   established ([`Forwarding::tcp`]), for the application to carry on or abort. With cookies
//!   off it is dropped.
//! - **UDP**: datagrams to forwarded destinations arrive on the forwarder's datagram socket
//!   ([`Forwarding::udp`]) with their original destination; replies go out with
//!   [`Stack::send_to`] *from* that destination. Flows are keyed by 4-tuple and end after an
//!   idle time, as Linux conntrack ends them (`nf_conntrack_udp_timeout` 30 s while unreplied,
//!   `nf_conntrack_udp_timeout_stream` 120 s once replied); the application hears of the end
//!   ([`ForwardEvent::UdpClosed`]) and closes its upstream socket.
//! - **ICMP echo** to a forwarded destination is never answered blindly: it becomes a
//!   [`PendingEcho`] that the application answers locally ([`Stack::forward_echo_reply`],
//!   after pinging upstream itself if it likes), refuses ([`Stack::forward_echo_refuse`]) or
//!   drops ([`Stack::forward_echo_drop`], or by ignoring it: the oldest go past the cap).
//!
//! The stack's own addresses keep their listeners and sockets: only destinations that are not
//! ours fall to the forwarder, and never a multicast, broadcast, loopback or unspecified one.

use core::net::{IpAddr, SocketAddr};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;

use super::udp::UdpHandle;
use super::{IpCidr, KeyedHasher, SocketHandle, Stack, Tuple, err};
use crate::tcp::{Connection, SeqNum, SynCookies};
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, Options, Repr, Timestamps};
use crate::wire::{IpProtocol, icmpv4, icmpv6, ipv4, ipv6};

/// What the forwarder takes and how long it keeps things.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// Destinations to forward (`0.0.0.0/0` and `::/0` for everything). Addresses of the
    /// stack itself are never forwarded.
    pub prefixes: Vec<IpCidr>,
    /// TCP decisions pending at once (2048: gVisor's forwarder as tun2socks configures it,
    /// `maxConnAttempts`). Past it, SYN cookies or drops.
    pub max_pending: usize,
    /// How long a pending decision waits (130 s: a Linux client gives up after its sixth SYN
    /// retransmission, 127 s after the first SYN, `tcp_syn_retries` 6). Then it is dropped.
    pub pending_timeout: Duration,
    /// Completed cookie handshakes waiting on the forwarder's accept queue (Linux somaxconn,
    /// 4096).
    pub backlog: usize,
    /// Idle time after which a UDP flow that never saw a reply ends (Linux
    /// `nf_conntrack_udp_timeout`, 30 s).
    pub udp_timeout: Duration,
    /// Idle time after which a replied UDP flow ends (Linux
    /// `nf_conntrack_udp_timeout_stream`, 120 s).
    pub udp_stream_timeout: Duration,
    /// UDP flows tracked at once (65536, Linux's `nf_conntrack_max` on a 4 GiB host);
    /// datagrams that would open one more are dropped (`FwdUdpFlowsFull`).
    pub max_udp_flows: usize,
    /// Bytes of datagrams the forwarder's socket queues for the application (4 MiB; a Linux
    /// socket's default is 208 KiB, but this one carries every flow).
    pub udp_rcvbuf: usize,
    /// Echo requests pending at once (256); past it the oldest is dropped.
    pub max_pending_echoes: usize,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            prefixes: Vec::new(),
            max_pending: 2048,
            pending_timeout: Duration::from_secs(130),
            backlog: 4096,
            udp_timeout: Duration::from_secs(30),
            udp_stream_timeout: Duration::from_secs(120),
            max_udp_flows: 65536,
            udp_rcvbuf: 4 << 20,
            max_pending_echoes: 256,
        }
    }
}

/// The forwarder's handles, from [`Stack::enable_forwarding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    /// A listener-like handle: connections completed by SYN cookies (past the cap on pending
    /// decisions) wait on its accept queue ([`Stack::accept`]).
    pub tcp: SocketHandle,
    /// The datagram socket of every forwarded UDP flow ([`Stack::recv_from`],
    /// [`Stack::send_to`] with the original destination as source).
    pub udp: UdpHandle,
}

/// Names one pending decision (TCP or echo); stale once decided or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PendingId {
    serial: u64,
    /// The flow's demux key (TCP); unspecified for echo requests.
    tuple: Tuple,
}

/// The tuple of echo ids.
const NO_TUPLE: Tuple = (
    IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
    0,
    IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
    0,
);

/// A SYN to a forwarded destination, waiting for the application's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingTcp {
    pub id: PendingId,
    /// The client.
    pub src: SocketAddr,
    /// Where the client wanted to go.
    pub dst: SocketAddr,
}

/// An echo request to a forwarded destination, waiting for the application's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEcho {
    pub id: PendingId,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ident: u16,
    pub seq_no: u16,
    pub data: Vec<u8>,
}

/// How a flow is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A RST (TCP only; for UDP it is [`Unreachable::Port`]): what a closed port says.
    Reset,
    /// An ICMP or ICMPv6 destination unreachable, from the original destination.
    Unreachable(Unreachable),
}

/// The destination-unreachable codes a forwarder gives, in both families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// No route to the network (ICMP code 0; ICMPv6 code 0, no route).
    Network,
    /// The host does not answer (ICMP code 1; ICMPv6 code 3, address unreachable).
    Host,
    /// Nothing listens on the port (ICMP code 3; ICMPv6 code 4).
    Port,
    /// Policy forbids it (ICMP code 13; ICMPv6 code 1).
    Prohibited,
}

impl Unreachable {
    fn v4(self) -> icmpv4::DstUnreachable {
        match self {
            Unreachable::Network => icmpv4::DstUnreachable::NetUnreachable,
            Unreachable::Host => icmpv4::DstUnreachable::HostUnreachable,
            Unreachable::Port => icmpv4::DstUnreachable::PortUnreachable,
            Unreachable::Prohibited => icmpv4::DstUnreachable::CommProhibited,
        }
    }

    fn v6(self) -> icmpv6::DstUnreachable {
        match self {
            Unreachable::Network => icmpv6::DstUnreachable::NoRoute,
            Unreachable::Host => icmpv6::DstUnreachable::AddrUnreachable,
            Unreachable::Port => icmpv6::DstUnreachable::PortUnreachable,
            Unreachable::Prohibited => icmpv6::DstUnreachable::AdminProhibited,
        }
    }
}

/// Why a UDP flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpCloseReason {
    /// Idle past its timeout.
    Idle,
    /// The client answered one of our datagrams with ICMP destination unreachable.
    Unreachable,
    /// The application refused it ([`Stack::forward_udp_refuse`]).
    Refused,
}

/// What the forwarder tells the application, from [`Stack::poll_forward`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardEvent {
    /// Decide with [`Stack::forward_accept`], [`Stack::forward_refuse`] or
    /// [`Stack::forward_drop`].
    Tcp(PendingTcp),
    /// Decide with [`Stack::forward_echo_reply`], [`Stack::forward_echo_refuse`] or
    /// [`Stack::forward_echo_drop`].
    Echo(PendingEcho),
    /// A UDP flow ended: close what carries it upstream.
    UdpClosed {
        client: SocketAddr,
        dst: SocketAddr,
        reason: UdpCloseReason,
    },
}

/// The start of a packet as an ICMP error quotes it: its fixed IP header and the first 8
/// bytes of TCP or UDP (RFC 792's "Internet Header + 64 bits of Data Datagram"; enough for
/// RFC 5927 §4.1's matching: addresses, ports, TCP sequence number). IPv4 options and IPv6
/// extension headers are left out (IHL set to 5, Next Header to the upper layer).
#[derive(Debug, Clone, Copy)]
pub(super) struct Quoted {
    bytes: [u8; ipv6::HEADER_LEN + 8],
    len: u8,
}

impl Quoted {
    /// The quote of `packet`, whose upper-layer header starts at `upper`.
    pub(super) fn of(packet: &[u8], upper: usize) -> Quoted {
        let mut q = Quoted {
            bytes: [0; ipv6::HEADER_LEN + 8],
            len: 0,
        };
        let v6 = packet.first().is_some_and(|b| b >> 4 == 6);
        let fixed = if v6 {
            ipv6::HEADER_LEN
        } else {
            ipv4::HEADER_LEN
        };
        let (Some(h), Some(up)) = (packet.get(..fixed), packet.get(upper..upper + 8)) else {
            return q;
        };
        q.bytes[..fixed].copy_from_slice(h);
        q.bytes[fixed..fixed + 8].copy_from_slice(up);
        q.len = (fixed + 8) as u8;
        if v6 {
            // The upper layer's number, in place of the first extension header's.
            q.bytes[6] = u8::from(upper_protocol(packet));
        } else if upper != ipv4::HEADER_LEN {
            let mut p = ipv4::Packet::new_unchecked(&mut q.bytes[..fixed]);
            p.set_header_len(ipv4::HEADER_LEN);
            p.fill_checksum();
        }
        q
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The upper-layer protocol of an IPv6 packet, after its extension headers.
fn upper_protocol(packet: &[u8]) -> IpProtocol {
    let p = ipv6::Packet::new_unchecked(packet);
    crate::wire::ipv6ext::Chain::walk(u8::from(p.next_header()), &packet[ipv6::HEADER_LEN..])
        .map_or(p.next_header(), |c| IpProtocol::from(c.upper))
}

/// A SYN waiting for a decision: what [`Connection::accept_syn`] needs to answer it later,
/// and what a refusal quotes.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u64,
    irs: SeqNum,
    /// SEG.SEQ + SEG.LEN of the SYN: the ACK of a RST refusing it (§3.10.7.1).
    rst_ack: SeqNum,
    window: u16,
    mss: Option<u16>,
    window_scale: Option<u8>,
    sack_permitted: bool,
    tsval: Option<u32>,
    quote: Quoted,
}

/// A forwarded UDP flow (local = original destination, remote = client).
#[derive(Debug, Clone, Copy)]
struct Flow {
    last: Instant,
    replied: bool,
    /// The quote of its first datagram, for an ICMP refusal.
    quote: Quoted,
}

/// The forwarder's state.
pub(super) struct Forwarder {
    pub(super) cfg: ForwardConfig,
    pub(super) handles: Forwarding,
    pending: HashMap<Tuple, Pending, KeyedHasher>,
    /// Pending decisions by arrival (so by deadline: the timeout is one constant).
    expiry: VecDeque<(Instant, Tuple, u64)>,
    flows: HashMap<Tuple, Flow, KeyedHasher>,
    /// UDP flow deadlines, at most one entry per flow; an entry found early (the flow saw
    /// traffic since) is queued again at the flow's real deadline.
    flow_timers: BinaryHeap<Reverse<(Instant, Tuple)>>,
    echoes: VecDeque<PendingEcho>,
    events: VecDeque<ForwardEvent>,
    next_id: u64,
}

impl Forwarder {
    /// Queues an event for [`Stack::poll_forward`]. The queue is bounded by what can be
    /// outstanding at once (pending decisions, pending echoes, UDP flows); an application that
    /// does not poll loses the oldest events, whose decisions then time out.
    fn event(&mut self, e: ForwardEvent) {
        let cap = self.cfg.max_pending + self.cfg.max_pending_echoes + self.cfg.max_udp_flows;
        if self.events.len() >= cap.max(1) {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn flow_deadline(&self, f: &Flow) -> Instant {
        f.last
            + if f.replied {
                self.cfg.udp_stream_timeout
            } else {
                self.cfg.udp_timeout
            }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let p = self.expiry.front().map(|e| e.0);
        let f = self.flow_timers.peek().map(|Reverse((t, _))| *t);
        p.into_iter().chain(f).min()
    }
}

impl Stack {
    /// Turns forwarder mode on (or reconfigures it): TCP, UDP and echo to any destination in
    /// `cfg.prefixes` that is not an address of ours go to the application, see
    /// [`poll_forward`](Self::poll_forward). The TCP settings are the stack's.
    pub fn enable_forwarding(&mut self, cfg: ForwardConfig) -> Forwarding {
        if let Some(handles) = self.forwarding() {
            if let Some(l) = self.listener_slot(handles.tcp) {
                l.backlog = cfg.backlog.max(1);
            }
            if let Some(f) = self.forward.as_mut() {
                f.cfg = cfg;
            }
            return handles;
        }
        let tcp = self.alloc(super::slots::SlotKind::Listener(Box::new(
            super::slots::Listener {
                local: SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0),
                backlog: cfg.backlog.max(1),
                accept_queue: VecDeque::new(),
                syn_queue_len: 0,
                tcp: self.cfg.tcp.clone(),
                last_cookie: None,
                v6only: false,
                fastopen_qlen: 0,
            },
        )));
        let udp = self.udp_forward_socket(cfg.udp_rcvbuf);
        let hasher = *self.conns.hasher();
        let handles = Forwarding { tcp, udp };
        self.forward = Some(Box::new(Forwarder {
            cfg,
            handles,
            pending: HashMap::with_hasher(hasher),
            expiry: VecDeque::new(),
            flows: HashMap::with_hasher(hasher),
            flow_timers: BinaryHeap::new(),
            echoes: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 0,
        }));
        handles
    }

    /// The forwarder's handles, if forwarding is on.
    pub fn forwarding(&self) -> Option<Forwarding> {
        self.forward.as_ref().map(|f| f.handles)
    }

    /// True if `dst` is a destination the forwarder takes: inside its prefixes, not ours, and
    /// a unicast address.
    pub(super) fn forwards(&self, dst: IpAddr) -> bool {
        let Some(f) = self.forward.as_ref() else {
            return false;
        };
        let unicast = match dst {
            IpAddr::V4(a) => {
                !(a.is_unspecified() || a.is_multicast() || a.is_loopback() || self.is_broadcast(a))
            }
            IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
        };
        unicast && f.cfg.prefixes.iter().any(|c| c.contains(dst)) && !self.is_local(dst)
    }

    /// True if a packet for `dst` is taken: ours, or forwarded.
    pub(super) fn accepts(&self, dst: IpAddr) -> bool {
        self.is_local(dst) || self.forwards(dst)
    }

    /// The next thing the forwarder asks of the application.
    pub fn poll_forward(&mut self) -> Option<ForwardEvent> {
        self.forward.as_mut()?.events.pop_front()
    }

    /// TCP decisions pending now.
    pub fn forward_pending_len(&self) -> usize {
        self.forward.as_ref().map_or(0, |f| f.pending.len())
    }

    /// UDP flows tracked now.
    pub fn forward_udp_flows(&self) -> usize {
        self.forward.as_ref().map_or(0, |f| f.flows.len())
    }

    /// A TCP segment for a forwarded destination that matched no connection: `local` is the
    /// original destination, `remote` the client.
    pub(super) fn forward_tcp(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Repr<'_>,
        bytes: &[u8],
        upper: usize,
    ) {
        let Some(f) = self.forward.as_mut() else {
            return;
        };
        let lh = f.handles.tcp;
        let tuple = (local.ip(), local.port(), remote.ip(), remote.port());
        let fl = seg.flags;
        if let Some(p) = f.pending.get(&tuple).copied() {
            self.counters.in_segs += 1;
            if fl.rst() {
                // The client gave up (§3.10.7.3 on its side): nothing left to decide.
                f.pending.remove(&tuple);
                self.trace_drop_note(now, "RST for a pending forwarded flow: forgotten");
            } else if fl.syn() && !fl.ack() && seg.seq == p.irs {
                self.trace_drop_note(now, "SYN again while the decision is pending");
            } else {
                self.trace_drop_note(now, "segment for a pending forwarded flow: dropped");
            }
            return;
        }
        if !(fl.syn() && !fl.ack() && !fl.rst()) {
            if fl.ack() && !fl.syn() && !fl.rst() {
                let hash = self.conns.hash(&tuple);
                if self.cookie_ack(now, lh, hash, local, remote, seg) {
                    return;
                }
            }
            // §3.10.7.1: no connection.
            self.counters.in_segs += 1;
            if let Some((seq, ack)) = crate::tcp::connection::reset_for_closed(seg) {
                self.trace_drop(now, "forwarded: no connection: RST", bytes);
                self.reply_rst(local, remote, seq, ack);
            }
            return;
        }
        self.counters.in_segs += 1;
        if f.pending.len() >= f.cfg.max_pending {
            self.counters.fwd_tcp_pending_full += 1;
            let cfg = self.cfg.tcp.clone();
            let room = self
                .listener_slot(lh)
                .is_some_and(|l| l.accept_queue.len() < l.backlog);
            if cfg.syncookies != SynCookies::Never && room {
                // RFC 4987 §3.6: past the cap, no state: a cookie.
                if let Some(l) = self.listener_slot(lh) {
                    l.last_cookie = Some(now);
                }
                self.counters.req_q_full_do_cookies += 1;
                return self.send_cookie(now, &cfg, local, remote, seg, true);
            }
            self.counters.listen_drops += 1;
            return self.trace_drop_note(now, "forwarder: pending decisions full: SYN dropped");
        }
        let id = f.id();
        if f.expiry.len() > 2 * f.cfg.max_pending.max(1) {
            // Decided entries leave the expiry queue lazily: compact it (amortised O(1)).
            let pending = &f.pending;
            f.expiry
                .retain(|(_, t, id)| pending.get(t).is_some_and(|p| p.id == *id));
        }
        let o = &seg.options;
        f.pending.insert(
            tuple,
            Pending {
                id,
                irs: seg.seq,
                rst_ack: seg.seq + seg.segment_len() as u32,
                window: seg.window,
                mss: o.mss,
                window_scale: o.window_scale,
                sack_permitted: o.sack_permitted,
                tsval: o.timestamps.map(|t| t.tsval),
                quote: Quoted::of(bytes, upper),
            },
        );
        let deadline = now + f.cfg.pending_timeout;
        f.expiry.push_back((deadline, tuple, id));
        f.event(ForwardEvent::Tcp(PendingTcp {
            id: PendingId { serial: id, tuple },
            src: remote,
            dst: local,
        }));
        self.counters.fwd_tcp_pending += 1;
        if self.trace_on() {
            self.trace_note(now, format!("forwarder: SYN {remote} -> {local} pending"));
        }
    }

    /// Takes the pending TCP decision `id`.
    fn take_pending(&mut self, id: PendingId) -> io::Result<(Tuple, Pending)> {
        let gone = || {
            err(
                io::ErrorKind::NotFound,
                "no such pending flow: already decided, reset by the client, or timed out",
            )
        };
        let f = self.forward.as_mut().ok_or_else(gone)?;
        let tuple = id.tuple;
        match f.pending.get(&tuple) {
            Some(p) if p.id == id.serial => {}
            _ => return Err(gone()),
        }
        let p = f.pending.remove(&tuple).ok_or_else(gone)?;
        Ok((tuple, p))
    }

    /// Accepts a pending TCP flow: the SYN-ACK goes out (from the original destination, with
    /// the options the client's SYN offered), and the connection's handle is returned at once;
    /// it is ESTABLISHED when the client's ACK arrives, and then reads and writes like any
    /// other. Errors: NotFound for a decision already made or expired.
    pub fn forward_accept(&mut self, now: Instant, id: PendingId) -> io::Result<SocketHandle> {
        let (tuple, p) = self.take_pending(id)?;
        let local = SocketAddr::new(tuple.0, tuple.1);
        let remote = SocketAddr::new(tuple.2, tuple.3);
        let cfg = self.cfg.tcp.clone();
        let mss = self.announced_mss(&cfg, remote.ip());
        // Its congestion controller from the spares, as for any other connection.
        let ts_offset = self.ts_offset(local, remote);
        let mut conn = Connection::new_in(cfg, local, mss, ts_offset, &mut self.spares);
        if let Some(mtu) = self.path_mtu(remote.ip()) {
            conn.on_path_mtu(mtu, crate::wire::ip_header_len(remote.ip()) as u16);
        }
        conn.listen().map_err(io::Error::from)?;
        let syn = Repr {
            src_port: remote.port(),
            dst_port: local.port(),
            seq: p.irs,
            ack: SeqNum(0),
            flags: Flags::SYN,
            window: p.window,
            urgent: 0,
            options: Options {
                mss: p.mss,
                window_scale: p.window_scale,
                sack_permitted: p.sack_permitted,
                timestamps: p.tsval.map(|tsval| Timestamps { tsval, tsecr: 0 }),
                ..Options::default()
            },
            payload: &[],
        };
        let iss = self.isn.isn(now, local, remote);
        conn.accept_syn(now, remote, &syn, iss, &mut self.counters);
        // The SYN was counted in InSegs when it arrived.
        self.counters.in_segs = self.counters.in_segs.saturating_sub(1);
        let h = self.insert_conn(conn, None, true);
        self.touched(h, now);
        Ok(h)
    }

    /// Refuses a pending TCP flow with a RST (`<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`,
    /// §3.10.7.1) or an ICMP destination unreachable from the original destination, quoting
    /// the SYN (a Linux client in SYN-SENT fails connect() at once on either: ECONNREFUSED,
    /// or EHOSTUNREACH / ENETUNREACH / ECONNREFUSED by the code).
    pub fn forward_refuse(&mut self, now: Instant, id: PendingId, how: Refusal) -> io::Result<()> {
        let (tuple, p) = self.take_pending(id)?;
        let local = SocketAddr::new(tuple.0, tuple.1);
        let remote = SocketAddr::new(tuple.2, tuple.3);
        self.counters.fwd_refused += 1;
        match how {
            Refusal::Reset => {
                self.trace_drop_note(now, "forwarder: refused with a RST");
                self.reply_rst(local, remote, SeqNum(0), Some(p.rst_ack));
            }
            Refusal::Unreachable(code) => {
                self.trace_drop_note(now, "forwarder: refused with ICMP unreachable");
                self.send_unreachable(tuple.0, tuple.2, code, &p.quote);
            }
        }
        Ok(())
    }

    /// Drops a pending TCP flow without a word (the client's SYN retransmissions will find
    /// nothing pending and be put before the application again).
    pub fn forward_drop(&mut self, id: PendingId) -> io::Result<()> {
        self.take_pending(id).map(|_| ())
    }

    /// An ICMP or ICMPv6 destination unreachable from `src` to `dst`, quoting `quote`.
    pub(super) fn send_unreachable(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        code: Unreachable,
        quote: &Quoted,
    ) {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let msg = icmpv4::Repr::DstUnreachable {
                    reason: code.v4(),
                    next_hop_mtu: None,
                    invoking: quote.bytes(),
                };
                if self.send_icmp(s, d, &msg) {
                    self.counters.icmp_out_dest_unreachs += 1;
                }
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let msg = icmpv6::Repr::DstUnreachable {
                    reason: code.v6(),
                    invoking: quote.bytes(),
                };
                if self.send_icmpv6(s, d, &msg) {
                    self.counters.icmp6_out_dest_unreachs += 1;
                }
            }
            _ => {}
        }
    }

    /// A UDP datagram to a forwarded destination (`local`) from `remote`: its flow is found
    /// or opened, and the datagram queued on the forwarder's socket. False if it was dropped
    /// (flow table full).
    pub(super) fn forward_udp_flow(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        upper: usize,
    ) -> bool {
        let Some(f) = self.forward.as_mut() else {
            return false;
        };
        let tuple = (local.ip(), local.port(), remote.ip(), remote.port());
        if let Some(flow) = f.flows.get_mut(&tuple) {
            flow.last = now;
            return true;
        }
        if f.flows.len() >= f.cfg.max_udp_flows {
            self.counters.fwd_udp_flows_full += 1;
            return false;
        }
        let flow = Flow {
            last: now,
            replied: false,
            quote: Quoted::of(bytes, upper),
        };
        let deadline = f.flow_deadline(&flow);
        f.flows.insert(tuple, flow);
        f.flow_timers.push(Reverse((deadline, tuple)));
        self.counters.fwd_udp_flows += 1;
        true
    }

    /// A reply on forwarded flow `local` → `remote` is going out: the flow is replied (its
    /// longer timeout applies) and fresh. NotConnected if there is no such flow: the
    /// forwarder only answers flows the client opened.
    pub(super) fn forward_udp_reply(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<()> {
        let tuple = (local.ip(), local.port(), remote.ip(), remote.port());
        let flow = self
            .forward
            .as_mut()
            .and_then(|f| f.flows.get_mut(&tuple))
            .ok_or_else(|| {
                err(
                    io::ErrorKind::NotConnected,
                    format!(
                        "no UDP flow from {remote} to {local}: the forwarder only answers flows \
                         the client opened (ended after an idle timeout?)"
                    ),
                )
            })?;
        flow.last = now;
        flow.replied = true;
        Ok(())
    }

    /// Ends forwarded UDP flow `tuple`, telling the application why.
    pub(super) fn close_udp_flow(&mut self, tuple: Tuple, reason: UdpCloseReason) -> bool {
        let Some(f) = self.forward.as_mut() else {
            return false;
        };
        if f.flows.remove(&tuple).is_none() {
            return false;
        }
        f.event(ForwardEvent::UdpClosed {
            client: SocketAddr::new(tuple.2, tuple.3),
            dst: SocketAddr::new(tuple.0, tuple.1),
            reason,
        });
        self.counters.fwd_udp_flows_closed += 1;
        true
    }

    /// Refuses forwarded UDP flow `client` → `dst` (its upstream cannot be reached): an ICMP
    /// destination unreachable from `dst`, quoting the flow's first datagram, and the flow
    /// ends. NotFound if there is no such flow.
    pub fn forward_udp_refuse(
        &mut self,
        client: SocketAddr,
        dst: SocketAddr,
        code: Unreachable,
    ) -> io::Result<()> {
        let tuple = (dst.ip(), dst.port(), client.ip(), client.port());
        let quote = self
            .forward
            .as_ref()
            .and_then(|f| f.flows.get(&tuple))
            .map(|fl| fl.quote)
            .ok_or_else(|| {
                err(
                    io::ErrorKind::NotFound,
                    format!("no UDP flow from {client} to {dst}"),
                )
            })?;
        self.counters.fwd_refused += 1;
        self.send_unreachable(dst.ip(), client.ip(), code, &quote);
        self.close_udp_flow(tuple, UdpCloseReason::Refused);
        Ok(())
    }

    /// An echo request to a forwarded destination: put before the application.
    pub(super) fn forward_echo(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        ident: u16,
        seq_no: u16,
        data: &[u8],
    ) {
        let Some(f) = self.forward.as_mut() else {
            return;
        };
        if f.echoes.len() >= f.cfg.max_pending_echoes {
            f.echoes.pop_front();
            self.counters.fwd_echo_full += 1;
        }
        let e = PendingEcho {
            id: PendingId {
                serial: f.id(),
                tuple: NO_TUPLE,
            },
            src,
            dst,
            ident,
            seq_no,
            data: data.to_vec(),
        };
        f.echoes.push_back(e.clone());
        f.event(ForwardEvent::Echo(e));
        self.counters.fwd_echo_pending += 1;
        if self.trace_on() {
            self.trace_note(
                now,
                format!("forwarder: echo request {src} -> {dst} pending"),
            );
        }
    }

    fn take_echo(&mut self, id: PendingId) -> io::Result<PendingEcho> {
        let f = self.forward.as_mut();
        let at = f
            .as_ref()
            .and_then(|f| f.echoes.iter().position(|e| e.id == id));
        match (f, at) {
            (Some(f), Some(i)) => Ok(f.echoes.remove(i).expect("position found")),
            _ => Err(err(
                io::ErrorKind::NotFound,
                "no such pending echo request: already decided, or dropped past the cap",
            )),
        }
    }

    /// Answers a pending echo request from its original destination, with its data (RFC 792;
    /// RFC 4443 §4.2). Large replies leave in fragments.
    pub fn forward_echo_reply(&mut self, id: PendingId) -> io::Result<()> {
        let e = self.take_echo(id)?;
        match (e.dst, e.src) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let reply = icmpv4::Repr::EchoReply {
                    ident: e.ident,
                    seq_no: e.seq_no,
                    data: &e.data,
                };
                if self.send_icmp(s, d, &reply) {
                    self.counters.icmp_out_echo_reps += 1;
                }
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let reply = icmpv6::Repr::EchoReply {
                    ident: e.ident,
                    seq_no: e.seq_no,
                    data: &e.data,
                };
                if self.send_icmpv6(s, d, &reply) {
                    self.counters.icmp6_out_echo_replies += 1;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Refuses a pending echo request with a destination unreachable, quoting it.
    pub fn forward_echo_refuse(&mut self, id: PendingId, code: Unreachable) -> io::Result<()> {
        let e = self.take_echo(id)?;
        // The quote: the request's IP header, rebuilt, and its first 8 ICMP bytes.
        let mut buf = [0u8; ipv6::HEADER_LEN + 8];
        let icmp_len = 8 + e.data.len();
        let mut head = [0u8; 8];
        head[0] = if e.src.is_ipv4() { 8 } else { 128 };
        head[4..6].copy_from_slice(&e.ident.to_be_bytes());
        head[6..8].copy_from_slice(&e.seq_no.to_be_bytes());
        // Written with 8 bytes of payload, then given the request's real length.
        let total = u16::try_from(icmp_len).unwrap_or(u16::MAX);
        let n = match (e.src, e.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let r = ipv4::Repr::new(s, d, IpProtocol::Icmp, 8);
                let mut p = ipv4::Packet::new_unchecked(&mut buf[..ipv4::HEADER_LEN + 8]);
                r.emit(&mut p, false).ok();
                p.set_total_len(total.saturating_add(ipv4::HEADER_LEN as u16));
                p.fill_checksum();
                ipv4::HEADER_LEN
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let r = ipv6::Repr::new(s, d, IpProtocol::Icmpv6, 8);
                let mut p = ipv6::Packet::new_unchecked(&mut buf[..]);
                r.emit(&mut p).ok();
                p.set_payload_len(total);
                ipv6::HEADER_LEN
            }
            _ => return Ok(()),
        };
        buf[n..n + 8].copy_from_slice(&head);
        let quote = Quoted::of(&buf[..n + 8], n);
        self.counters.fwd_refused += 1;
        self.send_unreachable(e.dst, e.src, code, &quote);
        Ok(())
    }

    /// Drops a pending echo request.
    pub fn forward_echo_drop(&mut self, id: PendingId) -> io::Result<()> {
        self.take_echo(id).map(|_| ())
    }

    /// Pending decisions and UDP flows whose time ran out.
    pub(super) fn forward_timeouts(&mut self, now: Instant) {
        let Some(f) = self.forward.as_mut() else {
            return;
        };
        while let Some(&(t, tuple, id)) = f.expiry.front() {
            if t > now {
                break;
            }
            f.expiry.pop_front();
            if f.pending.get(&tuple).is_some_and(|p| p.id == id) {
                f.pending.remove(&tuple);
                self.counters.fwd_tcp_pending_expired += 1;
            }
        }
        let mut closed = Vec::new();
        while let Some(&Reverse((t, tuple))) = f.flow_timers.peek() {
            if t > now {
                break;
            }
            f.flow_timers.pop();
            let Some(flow) = f.flows.get(&tuple) else {
                continue;
            };
            let due = f.flow_deadline(flow);
            if due > now {
                f.flow_timers.push(Reverse((due, tuple)));
            } else {
                closed.push(tuple);
            }
        }
        for tuple in closed {
            self.close_udp_flow(tuple, UdpCloseReason::Idle);
        }
    }

    /// Whether the tuple's pending decision is still there (tests).
    #[cfg(test)]
    pub(super) fn forward_is_pending(&self, src: SocketAddr, dst: SocketAddr) -> bool {
        let tuple = (dst.ip(), dst.port(), src.ip(), src.port());
        self.forward
            .as_ref()
            .is_some_and(|f| f.pending.contains_key(&tuple))
    }
}
