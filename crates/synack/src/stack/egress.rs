//! Output: [`Stack::poll_transmit`] writes the next IP packet, in this order: control packets
//! the stack itself owes (RSTs, ICMP replies), SYN-ACKs of the SYN queue, then connections
//! with something to send. IP headers of both families are written here, straight into the
//! caller's buffer, and control packets larger than the path MTU leave in fragments (RFC 791
//! §3.2, RFC 8200 §4.5); TCP never needs them: its segments fit the path MTU and carry DF
//! (RFC 1191).

use core::net::IpAddr;
use std::collections::VecDeque;

use super::Stack;
use super::shortcuts::{self, Shortcut};
use crate::tcp::State;
use crate::tcp::connection::MAX_HEADER;
use crate::tcp::ecn::Codepoint;
use crate::time::Instant;
use crate::trace::Direction;
use crate::wire::ip_header_len;
use crate::wire::ipv6ext::{FRAGMENT_HEADER_LEN, FragmentRepr};
use crate::wire::{IpProtocol, ipv4, ipv6};

/// Bound on queued control packets (RST replies to a flood of stray segments are dropped
/// beyond it).
pub(super) const MAX_CONTROL: usize = 1024;
/// Bound on the payload bytes of queued control packets (echo replies can be large).
const MAX_CONTROL_BYTES: usize = 1 << 20;

/// The IP header fields of one packet the stack sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: IpProtocol,
    /// IPv4 DF: set on TCP (path MTU discovery, RFC 1191), clear on ICMP replies (Linux's
    /// ICMP socket uses IP_PMTUDISC_DONT).
    pub dont_frag: bool,
    /// IPv6 flow label (RFC 6437); 0 for IPv4.
    pub flow_label: u32,
    /// A connection's own IP_TTL / IPV6_UNICAST_HOPS (see
    /// [`SocketOption::Ttl`](super::SocketOption)); `None`: the stack's default.
    pub ttl: Option<u8>,
    /// The ECN field (RFC 3168 §5: the two low bits of the IPv4 TOS or IPv6 traffic class).
    pub ecn: Codepoint,
}

/// The ECN field of a received IP packet (`bytes` from its first byte).
pub(super) fn ecn_of(bytes: &[u8]) -> Codepoint {
    let bits = match bytes.first().map(|b| b >> 4) {
        Some(4) => bytes.get(1).copied().unwrap_or(0),
        // The traffic class straddles the first two bytes; its ECN bits are byte 1's 5th, 6th.
        Some(6) => bytes.get(1).map_or(0, |b| b >> 4),
        _ => 0,
    };
    Codepoint::from_bits(bits)
}

/// A packet the stack itself owes (a RST, an ACK for a half-open connection, an ICMP
/// message): its IP header's fields, and its payload, already written, at the front of
/// [`ControlQueue::bytes`]. The IP header is written straight into the caller's buffer by
/// `poll_transmit`, as SYN-ACKs are; nothing is allocated per packet.
#[derive(Debug, Clone, Copy)]
struct Control {
    ip: IpHeader,
    len: usize,
    /// Payload bytes already sent in fragments.
    sent: usize,
    /// Identification of its fragments, once the first one left.
    ident: u32,
}

/// The control packets in order, their payloads back to back in one reused buffer.
#[derive(Default)]
pub(super) struct ControlQueue {
    packets: VecDeque<Control>,
    bytes: Vec<u8>,
    /// Where the front packet's payload starts in `bytes`.
    head: usize,
}

impl ControlQueue {
    pub(super) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Appends a packet whose payload of `len` bytes `fill` writes in place. False (and
    /// nothing queued) when the queue is full or `fill` fails.
    fn push(&mut self, c: Control, fill: impl FnOnce(&mut [u8]) -> bool) -> bool {
        if self.packets.len() >= MAX_CONTROL
            || self.bytes.len() - self.head + c.len > MAX_CONTROL_BYTES
        {
            return false;
        }
        if self.head > 0 && self.head >= self.bytes.len() / 2 {
            // Reclaim the sent half: amortised O(1), and the buffer's capacity is kept.
            self.bytes.drain(..self.head);
            self.head = 0;
        }
        let at = self.bytes.len();
        self.bytes.resize(at + c.len, 0);
        if !fill(&mut self.bytes[at..]) {
            self.bytes.truncate(at);
            return false;
        }
        self.packets.push_back(c);
        true
    }

    /// The front packet and its payload.
    fn front(&self) -> Option<(Control, &[u8])> {
        let c = *self.packets.front()?;
        Some((c, &self.bytes[self.head..self.head + c.len]))
    }

    /// Records progress on the front packet's fragments.
    fn set_front(&mut self, c: Control) {
        if let Some(f) = self.packets.front_mut() {
            *f = c;
        }
    }

    fn pop(&mut self) {
        if let Some(c) = self.packets.pop_front() {
            self.head += c.len;
            if self.packets.is_empty() {
                self.bytes.clear();
                self.head = 0;
            }
        }
    }
}

/// Where a fragment's payload goes: its offset in the datagram's payload, and whether more
/// fragments follow.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frag {
    offset: usize,
    more: bool,
    ident: u32,
}

impl Stack {
    /// Writes the next IP packet to send into `buf` and returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(n) = self.transmit_control(buf) {
            self.trace_packet(now, Direction::Out, &buf[..n]);
            return Some(n);
        }
        if let Some(n) = self.transmit_synack(buf) {
            self.trace_packet(now, Direction::Out, &buf[..n]);
            return Some(n);
        }
        while let Some(h) = self.dirty.front().copied() {
            let mut sent = None;
            // Sending changes what a socket's reader or writer sees only through the state
            // (our FIN went, a RST).
            let mut state_changed = false;
            // Skipped: `wants_poll` said the poll would find nothing.
            let mut idle = false;
            // Leaves the queue in TIME-WAIT: it may become a compact entry.
            let mut time_wait = false;
            if let Some((c, ctr)) = self.slot_and_counters(h) {
                let before = c.conn.state();
                let hlen = ip_header_len(c.conn.remote().ip());
                if buf.len().saturating_sub(hlen) <= MAX_HEADER {
                    // No segment fits the caller's buffer: the connection stays queued with
                    // what it owes (an ACK, data, a FIN) for a call that brings room, rather
                    // than leaving the queue and waiting for something to touch it again.
                    return None;
                }
                // A connection queued with nothing to do (a segment that owed no ACK, a read
                // that opened no window, the poll after its last segment went) leaves the
                // queue without the poll: `wants_poll` says the poll would find nothing. The
                // queue and its order are the same either way.
                if !c.conn.wants_poll() {
                    idle = true;
                } else if let Some(n) = c.conn.poll_transmit(now, &mut buf[hlen..], ctr) {
                    // The header's fields are read only for a segment sent (not for each
                    // poll that finds nothing).
                    let ip = IpHeader {
                        src: c.conn.local().ip(),
                        dst: c.conn.remote().ip(),
                        protocol: IpProtocol::Tcp,
                        dont_frag: true,
                        flow_label: c.flow_label,
                        ttl: c.ttl,
                        ecn: c.conn.ecn_codepoint(),
                    };
                    sent = Some((ip, n));
                }
                if sent.is_none() {
                    c.dirty = false;
                    time_wait = c.conn.state() == State::TimeWait;
                }
                state_changed = c.conn.state() != before;
            }
            if sent.is_none() {
                self.dirty.pop_front();
            }
            if idle && !self.cfg.trace {
                // Nothing happened to it since the refresh that followed what queued it (a
                // synchronized connection: no listener to report to, not finished).
                debug_assert!(
                    self.refreshed(h),
                    "an idle connection's timer is not queued"
                );
                if time_wait {
                    self.compact_time_wait(h);
                }
                continue;
            }
            // The send may have armed timers or produced events; a finished connection goes.
            self.refresh_reporting(h, now, state_changed);
            if time_wait {
                self.compact_time_wait(h);
            }
            if let Some((ip, n)) = sent {
                let Some(total) = self.emit_segment_ip(buf, &ip, n) else {
                    continue;
                };
                self.trace_packet(now, Direction::Out, &buf[..total]);
                // It stays at the front of the queue: it may have more to send.
                return Some(total);
            }
        }
        None
    }

    /// Whether connection `h`'s next deadline is in the timer wheel (an entry at or before
    /// it), as a refresh leaves it.
    pub(super) fn refreshed(&self, h: crate::stack::SocketHandle) -> bool {
        self.conn_slot_ref(h).is_none_or(|c| {
            c.conn
                .poll_timeout()
                .is_none_or(|t| c.timer.is_some_and(|queued| queued <= t))
        })
    }

    /// Writes the IP header (and, for a fragment, the IPv6 Fragment header) in front of the
    /// `payload_len` bytes already at `buf[header_len..]`, and counts the packet. `None` if
    /// the header cannot be written (a buffer too small, a payload too long).
    pub(super) fn emit_ip(
        &mut self,
        buf: &mut [u8],
        ip: &IpHeader,
        payload_len: usize,
        frag: Option<Frag>,
    ) -> Option<usize> {
        match (ip.src, ip.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) if frag.is_none() && shortcuts::on() => {
                self.emit_ipv4_fixed(buf, src, dst, ip, payload_len)
            }
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let total = ipv4::HEADER_LEN + payload_len;
                let mut r = ipv4::Repr::new(src, dst, ip.protocol, payload_len);
                r.ttl = ip.ttl.unwrap_or(self.cfg.ttl);
                r.ecn = ip.ecn.bits();
                r.dont_frag = ip.dont_frag && frag.is_none();
                r.ident = match frag {
                    Some(f) => f.ident as u16,
                    None => {
                        self.ip_ident = self.ip_ident.wrapping_add(1);
                        self.ip_ident.wrapping_sub(1)
                    }
                };
                let mut pkt = ipv4::Packet::new_unchecked(buf.get_mut(..total)?);
                r.emit(&mut pkt, false).ok()?;
                if let Some(f) = frag {
                    // RFC 791 §3.2: offset in 8-octet units, MF on all but the last.
                    pkt.set_frag_offset(f.offset as u16);
                    pkt.set_more_frags(f.more);
                }
                pkt.fill_checksum();
                self.counters.ip_out_requests += 1;
                Some(total)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let ext = if frag.is_some() {
                    FRAGMENT_HEADER_LEN
                } else {
                    0
                };
                let total = ipv6::HEADER_LEN + ext + payload_len;
                let next = if frag.is_some() {
                    IpProtocol::Fragment
                } else {
                    ip.protocol
                };
                let mut r = ipv6::Repr::new(src, dst, next, ext + payload_len);
                r.hop_limit = ip.ttl.unwrap_or(self.cfg.hop_limit);
                let mut pkt = ipv6::Packet::new_unchecked(buf.get_mut(..total)?);
                r.emit(&mut pkt).ok()?;
                pkt.set_traffic_class(ip.ecn.bits());
                pkt.set_flow_label(ip.flow_label);
                if let Some(f) = frag {
                    let fr = FragmentRepr {
                        next_header: ip.protocol,
                        frag_offset: f.offset as u16,
                        more_frags: f.more,
                        ident: f.ident,
                    };
                    fr.emit(pkt.payload_mut()).ok()?;
                }
                self.counters.ip6_out_requests += 1;
                Some(total)
            }
            _ => None,
        }
    }

    /// [`emit_ip`](Self::emit_ip) for a connection's segment (never a fragment), its IPv4
    /// header inline in the caller (`poll_transmit`, once per segment): no call, and the
    /// header's fields not passed through memory.
    #[inline(always)]
    fn emit_segment_ip(
        &mut self,
        buf: &mut [u8],
        ip: &IpHeader,
        payload_len: usize,
    ) -> Option<usize> {
        match (ip.src, ip.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) if shortcuts::on() => {
                self.emit_ipv4_fixed(buf, src, dst, ip, payload_len)
            }
            _ => self.emit_ip(buf, ip, payload_len, None),
        }
    }

    /// The IPv4 header of every packet but a fragment, built at fixed offsets (what
    /// `ipv4::Repr::emit` and `fill_checksum` write for it, see `ipv4_header`; the same IP
    /// ID taken and the same `None` cases, see the tests).
    #[inline(always)]
    fn emit_ipv4_fixed(
        &mut self,
        buf: &mut [u8],
        src: core::net::Ipv4Addr,
        dst: core::net::Ipv4Addr,
        ip: &IpHeader,
        payload_len: usize,
    ) -> Option<usize> {
        shortcuts::taken(Shortcut::Ipv4Header);
        let total = ipv4::HEADER_LEN + payload_len;
        let ident = self.ip_ident;
        self.ip_ident = ident.wrapping_add(1);
        let total = u16::try_from(total).ok().filter(|_| buf.len() >= total)?;
        let out = buf.get_mut(..ipv4::HEADER_LEN)?;
        let ttl = ip.ttl.unwrap_or(self.cfg.ttl);
        let h = ipv4_header(src, dst, ip.protocol, total, ident, ttl, ip);
        out.copy_from_slice(&h);
        self.counters.ip_out_requests += 1;
        Some(usize::from(total))
    }

    /// The RFC 6437 flow label of the flow `src:sport → dst:dport`: a keyed hash, never 0,
    /// so every packet of a connection (and its SYN-ACK, sent before the connection exists)
    /// carries the same label until [`rehash`](Self::flow_label) changes it after a
    /// retransmission timeout, as Linux's `sk_rethink_txhash` does. 0 for IPv4.
    pub(super) fn flow_label(
        &self,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        rehash: u32,
    ) -> u32 {
        let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
            return 0;
        };
        let mut input = [0u8; 40];
        input[..16].copy_from_slice(&s.octets());
        input[16..32].copy_from_slice(&d.octets());
        input[32..34].copy_from_slice(&sport.to_le_bytes());
        input[34..36].copy_from_slice(&dport.to_le_bytes());
        input[36..].copy_from_slice(&rehash.to_le_bytes());
        let h = crate::tcp::siphash::sip13_array(self.flow_key.0, self.flow_key.1, &input);
        let label = (h as u32) & 0xf_ffff;
        label.max(1)
    }

    /// Writes the front control packet, or its next fragment, into `buf` (a packet that does
    /// not fit `buf` is dropped).
    fn transmit_control(&mut self, buf: &mut [u8]) -> Option<usize> {
        while let Some((mut c, _)) = self.control.front() {
            let hlen = ip_header_len(c.ip.dst);
            let mtu = usize::from(self.mtu_to(c.ip.dst));
            if c.sent == 0 && hlen + c.len <= mtu {
                if buf.len() < hlen + c.len {
                    // The caller's buffer cannot hold it: it stays first in the queue for a
                    // call that brings room (as a connection's segment does), not dropped.
                    return None;
                }
                let written = self.write_control(buf, &c, 0, c.len, None);
                self.control.pop();
                if written.is_some() {
                    return written;
                }
                continue;
            }
            // Too big for the path: fragments, each carrying a multiple of 8 bytes but the
            // last (RFC 791 §3.2; RFC 8200 §4.5, where the Fragment header takes 8 more).
            let room = match c.ip.dst {
                IpAddr::V4(_) => mtu.saturating_sub(hlen),
                IpAddr::V6(_) => mtu.saturating_sub(hlen + FRAGMENT_HEADER_LEN),
            } & !7;
            if room == 0 || c.ip.dont_frag {
                self.control.pop();
                continue;
            }
            let n = room.min(c.len - c.sent);
            let frag_hlen = match c.ip.dst {
                IpAddr::V4(_) => hlen,
                IpAddr::V6(_) => hlen + FRAGMENT_HEADER_LEN,
            };
            if buf.len() < frag_hlen + n {
                // Likewise for the next fragment.
                return None;
            }
            if c.sent == 0 {
                c.ident = self.next_fragment_ident(c.ip.dst);
                match c.ip.dst {
                    IpAddr::V4(_) => self.counters.ip_frag_oks += 1,
                    IpAddr::V6(_) => self.counters.ip6_frag_oks += 1,
                }
            }
            let frag = Frag {
                offset: c.sent,
                more: c.sent + n < c.len,
                ident: c.ident,
            };
            let written = self.write_control(buf, &c, c.sent, n, Some(frag));
            c.sent += n;
            if c.sent >= c.len {
                self.control.pop();
            } else {
                self.control.set_front(c);
            }
            if written.is_some() {
                match c.ip.dst {
                    IpAddr::V4(_) => self.counters.ip_frag_creates += 1,
                    IpAddr::V6(_) => self.counters.ip6_frag_creates += 1,
                }
                return written;
            }
        }
        None
    }

    /// Writes bytes `from..from + n` of the front control packet's payload, with its headers.
    fn write_control(
        &mut self,
        buf: &mut [u8],
        c: &Control,
        from: usize,
        n: usize,
        frag: Option<Frag>,
    ) -> Option<usize> {
        let hlen = ip_header_len(c.ip.dst)
            + match (frag, c.ip.dst) {
                (Some(_), IpAddr::V6(_)) => FRAGMENT_HEADER_LEN,
                _ => 0,
            };
        let (_, payload) = self.control.front()?;
        buf.get_mut(hlen..hlen + n)?
            .copy_from_slice(&payload[from..from + n]);
        self.emit_ip(buf, &c.ip, n, frag)
    }

    /// Identification for a datagram sent in fragments.
    fn next_fragment_ident(&mut self, dst: IpAddr) -> u32 {
        match dst {
            IpAddr::V4(_) => {
                self.ip_ident = self.ip_ident.wrapping_add(1);
                u32::from(self.ip_ident.wrapping_sub(1))
            }
            IpAddr::V6(_) => {
                self.ip6_ident = self.ip6_ident.wrapping_add(1);
                self.ip6_ident
            }
        }
    }

    /// Queues a packet of `len` payload bytes that `fill` writes in place, as a control
    /// packet. Returns whether it was queued.
    pub(super) fn queue_ip(
        &mut self,
        ip: IpHeader,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> bool {
        let c = Control {
            ip,
            len,
            sent: 0,
            ident: 0,
        };
        self.control.push(c, fill)
    }
}

/// The IPv4 header of a packet that is not a fragment (RFC 791 §3.1: no options, DSCP 0,
/// the ECN codepoint of `ip`, DF as `ip` asks), checksum filled in: the bytes
/// `ipv4::Repr::emit` and `Packet::fill_checksum` write, built on the stack and summed as five
/// words.
#[inline]
fn ipv4_header(
    src: core::net::Ipv4Addr,
    dst: core::net::Ipv4Addr,
    protocol: IpProtocol,
    total: u16,
    ident: u16,
    ttl: u8,
    ip: &IpHeader,
) -> [u8; ipv4::HEADER_LEN] {
    let mut h = [0u8; ipv4::HEADER_LEN];
    h[0] = 0x45;
    h[1] = ip.ecn.bits() & 0x03;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    if ip.dont_frag {
        h[6] = 0x40;
    }
    h[8] = ttl;
    h[9] = u8::from(protocol);
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let mut c = crate::wire::checksum::Checksum::new();
    c.add_20(&h);
    h[10..12].copy_from_slice(&c.finish().to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    proptest! {
        /// The fixed-offset IPv4 header is what the general emitter writes.
        #[test]
        fn ipv4_header_is_what_repr_emit_writes(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            tcp in any::<bool>(),
            payload_len in 0usize..65_516,
            ident in any::<u16>(),
            ttl in any::<u8>(),
            ecn in 0u8..4,
            dont_frag in any::<bool>(),
        ) {
            let ecn = [Codepoint::NotEct, Codepoint::Ect1, Codepoint::Ect0, Codepoint::Ce][ecn as usize];
            let protocol = if tcp { IpProtocol::Tcp } else { IpProtocol::Icmp };
            let ip = IpHeader {
                src: IpAddr::V4(src.into()),
                dst: IpAddr::V4(dst.into()),
                protocol,
                dont_frag,
                flow_label: 0,
                ttl: Some(ttl),
                ecn,
            };
            let mut r = ipv4::Repr::new(src.into(), dst.into(), protocol, payload_len);
            r.ttl = ttl;
            r.ecn = ecn.bits();
            r.dont_frag = dont_frag;
            r.ident = ident;
            let mut general = vec![0xa5u8; ipv4::HEADER_LEN + payload_len];
            let mut pkt = ipv4::Packet::new_unchecked(&mut general[..]);
            r.emit(&mut pkt, false).unwrap();
            pkt.fill_checksum();
            let total = (ipv4::HEADER_LEN + payload_len) as u16;
            let h = ipv4_header(src.into(), dst.into(), protocol, total, ident, ttl, &ip);
            prop_assert_eq!(&h[..], &general[..ipv4::HEADER_LEN]);
        }
    }

    /// `emit_ip`'s fixed-offset branch against its general one, on two stacks alike: the
    /// same bytes, the same IP IDs taken in the same order (one per call, a failed one
    /// included), the same `None` for a buffer too small or a payload too long, the same
    /// counters.
    #[test]
    fn emit_ip_fixed_header_is_the_general_branch() {
        use crate::stack::shortcuts::set_shortcuts;
        let new = || Stack::new(crate::stack::StackConfig::default(), [7; 32]);
        let (mut general, mut fast) = (new(), new());
        let sizes = [
            (1500, 1480),
            (60, 40),
            (59, 40),
            (20, 0),
            (19, 0),
            (0, 0),
            (65535, 65515),
            (65536, 65516),
            (70_000, 65_516),
            (100, 40),
        ];
        for (i, (buf_len, payload_len)) in sizes.into_iter().enumerate() {
            let ecn = [
                Codepoint::NotEct,
                Codepoint::Ect1,
                Codepoint::Ect0,
                Codepoint::Ce,
            ][i % 4];
            let ip = IpHeader {
                src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
                dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, i as u8)),
                protocol: if i % 3 == 0 {
                    IpProtocol::Udp
                } else {
                    IpProtocol::Tcp
                },
                dont_frag: i % 2 == 0,
                flow_label: 0,
                ttl: (i % 3 == 1).then_some(i as u8),
                ecn,
            };
            let mut g = vec![0x5au8; buf_len];
            let mut f = g.clone();
            set_shortcuts(false);
            let from_general = general.emit_ip(&mut g, &ip, payload_len, None);
            let before = set_shortcuts(true);
            let from_fast = fast.emit_ip(&mut f, &ip, payload_len, None);
            let taken = set_shortcuts(true)[Shortcut::Ipv4Header as usize];
            assert_eq!(taken - before[Shortcut::Ipv4Header as usize], 1, "case {i}");
            assert_eq!(from_fast, from_general, "case {i}");
            assert_eq!(f, g, "case {i}");
            assert_eq!(fast.ip_ident, general.ip_ident, "case {i}");
            assert_eq!(fast.counters, general.counters, "case {i}");
        }
        assert!(general.counters.ip_out_requests >= 4);
    }

    fn control(len: usize) -> Control {
        Control {
            ip: IpHeader {
                src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
                dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
                protocol: IpProtocol::Tcp,
                dont_frag: true,
                flow_label: 0,
                ttl: None,
                ecn: Codepoint::NotEct,
            },
            len,
            sent: 0,
            ident: 0,
        }
    }

    #[test]
    fn control_packets_come_out_in_order_with_their_payloads() {
        let mut q = ControlQueue::default();
        for i in 0..3u8 {
            assert!(q.push(control(usize::from(i) + 1), |b| {
                b.fill(i);
                true
            }));
        }
        for i in 0..3u8 {
            let (c, payload) = q.front().unwrap();
            assert_eq!(c.len, usize::from(i) + 1);
            assert_eq!(payload, &vec![i; usize::from(i) + 1][..]);
            q.pop();
        }
        assert!(q.is_empty() && q.front().is_none());
    }

    #[test]
    fn a_failed_fill_queues_nothing_and_the_bounds_hold() {
        let mut q = ControlQueue::default();
        assert!(!q.push(control(20), |_| false));
        assert!(q.is_empty());
        assert!(!q.push(control(MAX_CONTROL_BYTES + 1), |_| true));
        for _ in 0..MAX_CONTROL {
            assert!(q.push(control(20), |_| true));
        }
        assert!(!q.push(control(20), |_| true), "count bound");
    }

    #[test]
    fn the_payload_buffer_is_reused_not_regrown() {
        // A queue that never drains completely (one packet always waiting) still reclaims
        // the sent bytes: its buffer stops growing.
        let mut q = ControlQueue::default();
        assert!(q.push(control(40), |_| true));
        let mut cap = 0;
        for round in 0..10_000 {
            assert!(q.push(control(40), |_| true));
            q.pop();
            if round == 100 {
                cap = q.bytes.capacity();
            }
        }
        assert_eq!(q.bytes.capacity(), cap);
        assert!(q.bytes.len() <= 4 * 40);
    }

    #[test]
    fn emit_ip_writes_ttl_and_ecn_in_one_pass_in_both_families() {
        use crate::stack::{Stack, StackConfig};
        use core::net::Ipv6Addr;
        let mut s = Stack::new(StackConfig::default(), [3; 32]);
        let mut buf = [0u8; 64];
        let mut ip = IpHeader {
            src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            protocol: IpProtocol::Tcp,
            dont_frag: true,
            flow_label: 0,
            ttl: Some(7),
            ecn: Codepoint::Ect0,
        };
        let n = s.emit_ip(&mut buf, &ip, 0, None).unwrap();
        let p = ipv4::Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!((p.ttl(), p.ecn(), p.dscp()), (7, 2, 0));
        assert!(p.verify_checksum());
        assert_eq!(ecn_of(&buf[..n]), Codepoint::Ect0);
        // No TTL of its own: the stack's default, Not-ECT.
        ip.ttl = None;
        ip.ecn = Codepoint::NotEct;
        let n = s.emit_ip(&mut buf, &ip, 0, None).unwrap();
        let p = ipv4::Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!((p.ttl(), p.ecn()), (StackConfig::default().ttl, 0));
        assert!(p.verify_checksum());

        let a: Ipv6Addr = "fd00:5ac::1".parse().unwrap();
        let ip = IpHeader {
            src: IpAddr::V6(a),
            dst: IpAddr::V6(a),
            protocol: IpProtocol::Tcp,
            dont_frag: true,
            flow_label: 0xabcde,
            ttl: Some(9),
            ecn: Codepoint::Ce,
        };
        let n = s.emit_ip(&mut buf, &ip, 0, None).unwrap();
        let p = ipv6::Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            (p.hop_limit(), p.traffic_class(), p.ecn(), p.flow_label()),
            (9, 3, 3, 0xabcde)
        );
        assert_eq!(ecn_of(&buf[..n]), Codepoint::Ce);
    }
}
