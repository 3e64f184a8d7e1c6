//! UDP (RFC 768; RFC 1122 §4.1): datagram sockets bound to an address and port of ours, and
//! the forwarder's socket that takes datagrams to any forwarded destination (`forward.rs`).
//! Input checks the Length field and the checksum (mandatory over IPv6, RFC 8200 §8.1);
//! a datagram for a port nobody has bound is answered with ICMP port unreachable (RFC 1122
//! §4.1.3.1), within the ICMP error rules and rate limit; ICMP errors that quote a datagram
//! we sent are reported to its socket, or end the forwarded flow. Output leaves in fragments
//! when larger than the path MTU (the control queue's fragmentation, `egress.rs`).
//!
//! Counters are nstat's `Udp*` and `Udp6*`. Each socket's receive queue is bounded in bytes
//! (its data plus a fixed charge per datagram, as Linux charges an skb's truesize); past it,
//! datagrams are dropped (`UdpRcvbufErrors`). Unlike Linux, a socket on `[::]` takes IPv6
//! only.

use crate::tcp::ecn::Codepoint;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::collections::{HashMap, VecDeque};
use std::io;

use super::egress::IpHeader;
use super::forward::UdpCloseReason;
use super::icmp::ErrorKind;
use super::route::canonical;
use super::{KeyedHasher, Stack, err};
use crate::tcp::Counters;
use crate::time::Instant;
use crate::wire::icmp::Quote;
use crate::wire::{self, IpProtocol, udp};

/// A UDP socket, valid until closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UdpHandle {
    index: u32,
    generation: u32,
}

/// Bytes of receive queue a socket gets (Linux `net.core.rmem_default`, 212992).
pub const UDP_RCVBUF: usize = 212_992;

/// What a queued datagram of `len` bytes counts against a receive buffer: its data and a
/// fixed overhead (about what Linux's skb truesize adds to a small datagram), so that a flood
/// of empty datagrams is bounded too. The runtimes' datagram pipes charge the same.
pub(crate) fn datagram_charge(len: usize) -> usize {
    len + 256
}

/// The largest UDP payload of each family: 65535 − 20 − 8 over IPv4, 65535 − 8 over IPv6
/// (the Payload Length field counts no fixed header).
fn max_payload(v6: bool) -> usize {
    if v6 { 65535 - 8 } else { 65535 - 20 - 8 }
}

/// A datagram taken with [`Stack::recv_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The datagram's length; more than `len` when the buffer was too small (the rest is
    /// lost, as with MSG_TRUNC).
    pub datagram_len: usize,
    /// Who sent it.
    pub src: SocketAddr,
    /// Where it was sent: the socket's address, or on the forwarder's socket the original
    /// destination.
    pub dst: SocketAddr,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    src: SocketAddr,
    dst: SocketAddr,
    len: usize,
}

/// Queued datagrams, their data back to back in one reused buffer (no allocation per
/// datagram once it has grown).
#[derive(Debug, Default)]
struct Datagrams {
    meta: VecDeque<Meta>,
    bytes: Vec<u8>,
    head: usize,
    /// Charged bytes now, and the bound.
    used: usize,
    limit: usize,
}

impl Datagrams {
    fn push(&mut self, m: Meta, data: &[u8]) -> bool {
        let charge = datagram_charge(data.len());
        if self.used + charge > self.limit {
            return false;
        }
        if self.head > 0 && self.head >= self.bytes.len() / 2 {
            self.bytes.drain(..self.head);
            self.head = 0;
        }
        self.bytes.extend_from_slice(data);
        self.meta.push_back(m);
        self.used += charge;
        true
    }

    fn pop(&mut self, out: &mut [u8]) -> Option<RecvMeta> {
        let m = self.meta.pop_front()?;
        let data = &self.bytes[self.head..self.head + m.len];
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        self.head += m.len;
        self.used -= datagram_charge(m.len);
        if self.meta.is_empty() {
            self.bytes.clear();
            self.head = 0;
        }
        Some(RecvMeta {
            len: n,
            datagram_len: m.len,
            src: m.src,
            dst: m.dst,
        })
    }
}

struct UdpSock {
    /// The bound address; `None` for the forwarder's socket.
    local: Option<SocketAddr>,
    rx: Datagrams,
    /// The last ICMP error about a datagram it sent (SO_ERROR with IP_RECVERR).
    error: Option<io::Error>,
    /// On [`Udp::changed`] already.
    changed: bool,
}

struct UdpSlot {
    generation: u32,
    sock: Option<UdpSock>,
}

/// Every UDP socket.
pub(super) struct Udp {
    slots: Vec<UdpSlot>,
    free: Vec<u32>,
    bound: HashMap<(IpAddr, u16), UdpHandle, KeyedHasher>,
    forward: Option<UdpHandle>,
    /// Sockets a datagram or an error arrived on since the last [`Stack::poll_udp_changed`]
    /// (only while [`Stack::report_changes`] is on).
    changed: Option<VecDeque<UdpHandle>>,
}

impl Udp {
    pub(super) fn new(hasher: KeyedHasher) -> Udp {
        Udp {
            slots: Vec::new(),
            free: Vec::new(),
            bound: HashMap::with_hasher(hasher),
            forward: None,
            changed: None,
        }
    }

    pub(super) fn report_changes(&mut self, on: bool) {
        self.changed = on.then(VecDeque::new);
    }

    /// Something happened to `h` (each socket once until read).
    fn mark_changed(&mut self, h: UdpHandle) {
        let Some(q) = self.changed.as_mut() else {
            return;
        };
        if let Some(UdpSlot {
            generation,
            sock: Some(s),
        }) = self.slots.get_mut(h.index as usize)
            && *generation == h.generation
            && !std::mem::replace(&mut s.changed, true)
        {
            q.push_back(h);
        }
    }

    fn alloc(&mut self, sock: UdpSock) -> UdpHandle {
        if let Some(i) = self.free.pop() {
            let s = &mut self.slots[i as usize];
            s.sock = Some(sock);
            return UdpHandle {
                index: i,
                generation: s.generation,
            };
        }
        self.slots.push(UdpSlot {
            generation: 0,
            sock: Some(sock),
        });
        UdpHandle {
            index: (self.slots.len() - 1) as u32,
            generation: 0,
        }
    }

    fn get(&mut self, h: UdpHandle) -> Option<&mut UdpSock> {
        match self.slots.get_mut(h.index as usize) {
            Some(UdpSlot {
                generation,
                sock: Some(s),
            }) if *generation == h.generation => Some(s),
            _ => None,
        }
    }

    fn sock(&mut self, h: UdpHandle) -> io::Result<&mut UdpSock> {
        self.get(h).ok_or_else(|| {
            err(
                io::ErrorKind::NotConnected,
                "no such UDP socket (closed handle?)",
            )
        })
    }

    /// The socket bound to `dst:port`, or to the unspecified address of its family.
    fn lookup(&self, dst: IpAddr, port: u16) -> Option<UdpHandle> {
        let any = match dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        self.bound
            .get(&(dst, port))
            .or_else(|| self.bound.get(&(any, port)))
            .copied()
    }
}

/// Which counter of the pair (`Udp*`, `Udp6*`).
#[derive(Clone, Copy)]
enum Count {
    InDatagrams,
    NoPorts,
    InErrors,
    OutDatagrams,
    RcvbufErrors,
    SndbufErrors,
    InCsumErrors,
}

fn count(c: &mut Counters, v6: bool, what: Count) {
    let field = match (what, v6) {
        (Count::InDatagrams, false) => &mut c.udp_in_datagrams,
        (Count::InDatagrams, true) => &mut c.udp6_in_datagrams,
        (Count::NoPorts, false) => &mut c.udp_no_ports,
        (Count::NoPorts, true) => &mut c.udp6_no_ports,
        (Count::InErrors, false) => &mut c.udp_in_errors,
        (Count::InErrors, true) => &mut c.udp6_in_errors,
        (Count::OutDatagrams, false) => &mut c.udp_out_datagrams,
        (Count::OutDatagrams, true) => &mut c.udp6_out_datagrams,
        (Count::RcvbufErrors, false) => &mut c.udp_rcvbuf_errors,
        (Count::RcvbufErrors, true) => &mut c.udp6_rcvbuf_errors,
        (Count::SndbufErrors, false) => &mut c.udp_sndbuf_errors,
        (Count::SndbufErrors, true) => &mut c.udp6_sndbuf_errors,
        (Count::InCsumErrors, false) => &mut c.udp_in_csum_errors,
        (Count::InCsumErrors, true) => &mut c.udp6_in_csum_errors,
    };
    *field += 1;
}

/// Where `sub` (a slice of `whole`) starts in it.
pub(super) fn offset_in(whole: &[u8], sub: &[u8]) -> usize {
    (sub.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

impl Stack {
    /// Binds a UDP socket to `local` (an address of ours, or the unspecified address of a
    /// family for all of them; port 0 picks a free ephemeral port). Errors: AddrNotAvailable
    /// for an address that is not ours, AddrInUse for a taken port.
    pub fn udp_bind(&mut self, local: SocketAddr) -> io::Result<UdpHandle> {
        let a = canonical(local.ip());
        if !a.is_unspecified() && !self.is_local(a) {
            return Err(err(
                io::ErrorKind::AddrNotAvailable,
                format!("{a} is not an address of this stack"),
            ));
        }
        let port = match local.port() {
            0 => {
                let (lo, hi) = self.cfg.ephemeral_ports;
                let span = u32::from(hi.saturating_sub(lo)) + 1;
                let start = self.ip_ident as u32;
                (0..span)
                    .map(|i| lo + ((start + i) % span) as u16)
                    .find(|&p| !self.udp.bound.contains_key(&(a, p)))
                    .ok_or_else(|| {
                        err(
                            io::ErrorKind::AddrInUse,
                            format!("no free ephemeral UDP port on {a}"),
                        )
                    })?
            }
            p if self.udp.bound.contains_key(&(a, p)) => {
                return Err(err(
                    io::ErrorKind::AddrInUse,
                    format!("{} is already bound", SocketAddr::new(a, p)),
                ));
            }
            p => p,
        };
        let local = SocketAddr::new(a, port);
        let h = self.udp.alloc(UdpSock {
            local: Some(local),
            rx: Datagrams {
                limit: UDP_RCVBUF,
                ..Datagrams::default()
            },
            error: None,
            changed: false,
        });
        self.udp.bound.insert((a, port), h);
        Ok(h)
    }

    /// The forwarder's datagram socket, with a receive queue of `rcvbuf` bytes.
    pub(super) fn udp_forward_socket(&mut self, rcvbuf: usize) -> UdpHandle {
        let h = self.udp.alloc(UdpSock {
            local: None,
            rx: Datagrams {
                limit: rcvbuf,
                ..Datagrams::default()
            },
            error: None,
            changed: false,
        });
        self.udp.forward = Some(h);
        h
    }

    /// The address a UDP socket is bound to (`None` for the forwarder's socket).
    pub fn udp_local_addr(&mut self, h: UdpHandle) -> io::Result<Option<SocketAddr>> {
        Ok(self.udp.sock(h)?.local)
    }

    /// Datagrams waiting on a UDP socket.
    pub fn udp_queued(&mut self, h: UdpHandle) -> usize {
        self.udp.get(h).map_or(0, |s| s.rx.meta.len())
    }

    /// The next UDP socket a datagram or an ICMP error arrived on, each once until read: the
    /// datagram side of [`poll_changed`](Self::poll_changed), on while
    /// [`report_changes`](Self::report_changes) is. A handle may be stale.
    pub fn poll_udp_changed(&mut self) -> Option<UdpHandle> {
        let h = self.udp.changed.as_mut()?.pop_front()?;
        if let Some(s) = self.udp.get(h) {
            s.changed = false;
        }
        Some(h)
    }

    /// The last ICMP error reported about a datagram the socket sent, taken (SO_ERROR):
    /// ConnectionRefused for port unreachable, HostUnreachable, NetworkUnreachable.
    pub fn udp_take_error(&mut self, h: UdpHandle) -> Option<io::Error> {
        self.udp.get(h)?.error.take()
    }

    /// Closes a UDP socket; its queued datagrams are dropped.
    pub fn udp_close(&mut self, h: UdpHandle) {
        let Some(s) = self.udp.get(h) else { return };
        if let Some(l) = s.local {
            self.udp.bound.remove(&(l.ip(), l.port()));
        }
        if self.udp.forward == Some(h) {
            self.udp.forward = None;
        }
        if let Some(slot) = self.udp.slots.get_mut(h.index as usize) {
            slot.sock = None;
            slot.generation = slot.generation.wrapping_add(1);
            self.udp.free.push(h.index);
        }
    }

    /// The length of the next datagram waiting on a UDP socket (`None` when none waits), so
    /// that a caller can size its buffer before [`recv_from`](Self::recv_from).
    pub fn udp_next_len(&mut self, h: UdpHandle) -> io::Result<Option<usize>> {
        Ok(self.udp.sock(h)?.rx.meta.front().map(|m| m.len))
    }

    /// Takes the next datagram on a UDP socket into `buf`, with its source and destination
    /// (the original destination on the forwarder's socket). WouldBlock when none waits.
    /// A datagram counts in `UdpInDatagrams` here, when the application reads it (a
    /// truncated read too), not when it is queued: Linux counts `UDP_MIB_INDATAGRAMS` in
    /// `udp_recvmsg` (a peek does not count); one dropped at a full queue counts in
    /// `RcvbufErrors` and `InErrors` when it arrives (`__udp_queue_rcv_skb`).
    pub fn recv_from(&mut self, h: UdpHandle, buf: &mut [u8]) -> io::Result<RecvMeta> {
        let m = self.recv_from_uncounted(h, buf)?;
        count(&mut self.counters, m.dst.is_ipv6(), Count::InDatagrams);
        Ok(m)
    }

    /// [`recv_from`](Self::recv_from) without counting the read: the runtime's driver moves
    /// datagrams into a socket's own queue (its pipe) this way, and the socket's calls count
    /// them as they take them (see `Host::counters`).
    pub(crate) fn recv_from_uncounted(
        &mut self,
        h: UdpHandle,
        buf: &mut [u8],
    ) -> io::Result<RecvMeta> {
        self.udp
            .sock(h)?
            .rx
            .pop(buf)
            .ok_or_else(|| err(io::ErrorKind::WouldBlock, "no datagram waiting"))
    }

    /// Sends `data` as one datagram to `to` from the socket's address (routing picks the
    /// source address of a socket bound to the unspecified address). Errors: InvalidInput for
    /// a datagram too long for its family (EMSGSIZE) or a family mismatch, NetworkUnreachable
    /// without a route, WouldBlock when the output queue is full.
    pub fn send_to(
        &mut self,
        now: Instant,
        h: UdpHandle,
        data: &[u8],
        to: SocketAddr,
    ) -> io::Result<usize> {
        let local = self.udp.sock(h)?.local.ok_or_else(|| {
            err(
                io::ErrorKind::InvalidInput,
                "the forwarder's socket sends with send_from (from the original destination)",
            )
        })?;
        let to = SocketAddr::new(canonical(to.ip()), to.port());
        let src = if local.ip().is_unspecified() {
            if local.is_ipv4() != to.is_ipv4() {
                return Err(family_mismatch(local.ip(), to.ip()));
            }
            self.route(to.ip()).ok_or_else(|| {
                err(
                    io::ErrorKind::NetworkUnreachable,
                    format!("no route to {}", to.ip()),
                )
            })?
        } else {
            local.ip()
        };
        self.queue_udp(now, SocketAddr::new(src, local.port()), to, data)
    }

    /// Sends `data` as one datagram from `from` to `to`. On the forwarder's socket `from` is
    /// the original destination of a flow the client opened (the reply makes the flow
    /// replied: its longer idle timeout applies); NotConnected when there is no such flow.
    /// On a bound socket `from` must be its address.
    pub fn send_from(
        &mut self,
        now: Instant,
        h: UdpHandle,
        data: &[u8],
        from: SocketAddr,
        to: SocketAddr,
    ) -> io::Result<usize> {
        let local = self.udp.sock(h)?.local;
        let (from, to) = (
            SocketAddr::new(canonical(from.ip()), from.port()),
            SocketAddr::new(canonical(to.ip()), to.port()),
        );
        match local {
            None => self.forward_udp_reply(now, from, to)?,
            Some(l) if l == from || (l.ip().is_unspecified() && l.port() == from.port()) => {
                if !self.is_local(from.ip()) {
                    return Err(err(
                        io::ErrorKind::AddrNotAvailable,
                        format!("{} is not an address of this stack", from.ip()),
                    ));
                }
            }
            Some(l) => {
                return Err(err(
                    io::ErrorKind::InvalidInput,
                    format!("the socket is bound to {l}, not {from}"),
                ));
            }
        }
        if from.is_ipv4() != to.is_ipv4() {
            return Err(family_mismatch(from.ip(), to.ip()));
        }
        self.queue_udp(now, from, to, data)
    }

    fn queue_udp(
        &mut self,
        _now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
    ) -> io::Result<usize> {
        let v6 = to.is_ipv6();
        if data.len() > max_payload(v6) {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!(
                    "datagram of {} bytes is longer than UDP over {} carries ({})",
                    data.len(),
                    if v6 { "IPv6" } else { "IPv4" },
                    max_payload(v6)
                ),
            ));
        }
        let (src, dst) = (from.ip(), to.ip());
        let ip = IpHeader {
            src,
            dst,
            protocol: IpProtocol::Udp,
            // Larger than the path MTU: fragments, as Linux sends a datagram bigger than
            // the MTU (IP_PMTUDISC_WANT).
            dont_frag: false,
            flow_label: self.flow_label(src, from.port(), dst, to.port(), 0),
            ttl: None,
            ecn: Codepoint::NotEct,
        };
        let repr = udp::Repr {
            src_port: from.port(),
            dst_port: to.port(),
            payload: data,
        };
        let queued = self.queue_ip(ip, repr.buffer_len(), |p| repr.emit(p, src, dst).is_ok());
        if !queued {
            count(&mut self.counters, v6, Count::SndbufErrors);
            return Err(err(
                io::ErrorKind::WouldBlock,
                "output queue full: poll_transmit, then send again",
            ));
        }
        count(&mut self.counters, v6, Count::OutDatagrams);
        Ok(data.len())
    }

    /// A UDP datagram (`payload`, inside the IP packet `bytes`) from `src` to `dst`.
    pub(super) fn handle_udp(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
        bytes: &[u8],
    ) {
        let v6 = dst.is_ipv6();
        let Ok(packet) = udp::Packet::new_checked(payload) else {
            count(&mut self.counters, v6, Count::InErrors);
            return self.trace_drop(now, "UDP header truncated or bad length", bytes);
        };
        let repr = match udp::Repr::parse(&packet, src, dst, !self.rx_checksummed) {
            Ok(r) => r,
            Err(wire::Error::BadChecksum) => {
                count(&mut self.counters, v6, Count::InCsumErrors);
                count(&mut self.counters, v6, Count::InErrors);
                return self.trace_drop(now, "UDP checksum", bytes);
            }
            Err(_) => {
                count(&mut self.counters, v6, Count::InErrors);
                return self.trace_drop(now, "UDP destination port 0", bytes);
            }
        };
        let from = SocketAddr::new(src, repr.src_port);
        let to = SocketAddr::new(dst, repr.dst_port);
        let h = if self.forwards(dst) {
            let upper = offset_in(bytes, payload);
            if !self.forward_udp_flow(now, to, from, bytes, upper) {
                count(&mut self.counters, v6, Count::InErrors);
                return self.trace_drop(now, "forwarder: UDP flow table full", bytes);
            }
            self.udp.forward
        } else {
            self.udp.lookup(dst, repr.dst_port)
        };
        let Some(h) = h else {
            // RFC 1122 §4.1.3.1: no socket: ICMP port unreachable.
            count(&mut self.counters, v6, Count::NoPorts);
            self.trace_drop(now, "UDP port unreachable", bytes);
            return self.send_port_unreachable(now, bytes);
        };
        let m = Meta {
            src: from,
            dst: to,
            len: repr.payload.len(),
        };
        let queued = self.udp.get(h).is_some_and(|s| s.rx.push(m, repr.payload));
        if !queued {
            count(&mut self.counters, v6, Count::RcvbufErrors);
            count(&mut self.counters, v6, Count::InErrors);
            return self.trace_drop(now, "UDP receive queue full", bytes);
        }
        // `UdpInDatagrams` counts when the application reads it (`recv_from`).
        self.udp.mark_changed(h);
    }

    /// ICMP port unreachable (RFC 1122 §4.1.3.1; RFC 4443 §3.1 code 4) about `bytes`.
    fn send_port_unreachable(&mut self, now: Instant, bytes: &[u8]) {
        if bytes.first().is_some_and(|b| b >> 4 == 6) {
            if self.send_icmpv6_error(now, bytes, |quote| wire::icmpv6::Repr::DstUnreachable {
                reason: wire::icmpv6::DstUnreachable::PortUnreachable,
                invoking: quote,
            }) {
                self.counters.icmp6_out_dest_unreachs += 1;
            }
        } else if self.send_icmpv4_error(now, bytes, |quote| wire::icmpv4::Repr::DstUnreachable {
            reason: wire::icmpv4::DstUnreachable::PortUnreachable,
            next_hop_mtu: None,
            invoking: quote,
        }) {
            self.counters.icmp_out_dest_unreachs += 1;
        }
    }

    /// An ICMP error quoting a datagram we sent (RFC 1122 §4.1.3.3: passed to the
    /// application): a forwarded flow ends (the client's port is closed), a socket records
    /// the error; a path MTU is learned either way.
    pub(super) fn udp_icmp_error(&mut self, now: Instant, kind: ErrorKind, orig: &Quote<'_>) {
        let local = SocketAddr::new(orig.src_addr(), orig.src_port());
        let remote = SocketAddr::new(orig.dst_addr(), orig.dst_port());
        let reason = match kind {
            ErrorKind::PathMtu(mtu) => {
                self.learn_path_mtu(remote.ip(), mtu);
                return;
            }
            // Linux's icmp_err_convert / icmpv6_err_convert give UDP the same errors as TCP.
            ErrorKind::Error { what, err, .. } => (what, err),
        };
        let (reason, error) = reason;
        if self.forwards(local.ip()) {
            let tuple = (local.ip(), local.port(), remote.ip(), remote.port());
            if self.close_udp_flow(tuple, UdpCloseReason::Unreachable) && self.trace_on() {
                self.trace_note(
                    now,
                    format!("forwarder: ICMP {reason} from {remote}: UDP flow closed"),
                );
            }
            return;
        }
        let Some(h) = self.udp.lookup(local.ip(), local.port()) else {
            return;
        };
        if let Some(s) = self.udp.get(h) {
            s.error = Some(err(error.kind(), format!("ICMP {reason} from {remote}")));
            self.udp.mark_changed(h);
        }
    }
}

fn family_mismatch(a: IpAddr, b: IpAddr) -> io::Error {
    err(
        io::ErrorKind::InvalidInput,
        format!("cannot send from {a} to {b}: different address families"),
    )
}
