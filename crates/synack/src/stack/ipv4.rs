//! IPv4 input: header validation, the address checks of RFC 1122 §3.2.1.3, fragments into
//! reassembly (`fragments.rs`), and dispatch to TCP and ICMP. [`Stack::handle_packet`] is
//! the entry point of both families.

use core::net::IpAddr;

use super::Stack;
use super::fragments::{Drop, Fragment, Key, Outcome};
use crate::time::Instant;
use crate::trace::Direction;
use crate::wire::{self, IpProtocol, ipv4};

/// RFC 1858 §3.1 ("tiny fragment attack"): a first fragment too short to hold the
/// upper-layer header a filter would look at is dropped. The bytes each protocol needs, as
/// Linux requires of IPv6 first fragments (`ipv6frag_thdr_truncated`, RFC 7112).
pub(super) fn min_first_fragment(protocol: IpProtocol) -> usize {
    match protocol {
        IpProtocol::Tcp => 20,
        IpProtocol::Udp | IpProtocol::Icmp | IpProtocol::Icmpv6 => 8,
        _ => 1,
    }
}

impl Stack {
    /// Processes one received IP packet (IPv4 or IPv6, by its version nibble).
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.rx_checksummed = false;
        self.ip_input(now, bytes);
    }

    /// [`Stack::handle_packet`] for a packet whose TCP or UDP checksum the device computed
    /// or checked itself, so that the stack does not verify it again: Linux's
    /// `CHECKSUM_UNNECESSARY` from a NIC with receive checksum offload. A TUN device with
    /// offloads hands over the kernel's own packets with checksums it completed
    /// ([`Tun::recv_with`](crate::device::tun::Tun::recv_with) says which).
    pub fn handle_packet_checksummed(&mut self, now: Instant, bytes: &[u8]) {
        self.rx_checksummed = true;
        self.ip_input(now, bytes);
        self.rx_checksummed = false;
    }

    fn ip_input(&mut self, now: Instant, bytes: &[u8]) {
        self.trace_packet(now, Direction::In, bytes);
        if bytes.first().is_some_and(|b| b >> 4 == 6) {
            return self.ipv6_input(now, bytes);
        }
        self.counters.ip_in_receives += 1;
        // Unchecked: `Repr::parse` runs the length checks (`Packet::check_len`) itself, first,
        // with the same errors.
        let packet = ipv4::Packet::new_unchecked(bytes);
        let ip = match ipv4::Repr::parse(&packet, true) {
            Ok(r) => r,
            Err(e) => return self.ip_error(now, e, bytes),
        };
        // Only packets for us, from a plausible peer (RFC 1122 §3.2.1.3: never accept a
        // broadcast, multicast or own address as source; §4.2.3.10: TCP ignores broadcast).
        let dst = ip.dst_addr;
        let src = ip.src_addr;
        let bad_src = src.is_multicast()
            || src.is_unspecified()
            || self.is_local(IpAddr::V4(src))
            || self.is_broadcast(src);
        if !self.accepts(IpAddr::V4(dst)) || bad_src {
            self.counters.ip_in_addr_errors += 1;
            self.trace_drop(now, "not for us, or impossible source address", bytes);
            return;
        }
        if packet.is_fragment() {
            return self.ipv4_fragment(now, &packet, bytes);
        }
        self.ipv4_deliver(now, &ip, packet.payload(), bytes);
    }

    /// Hands a whole datagram's payload to its protocol. Inlined (into `ip_input` and the
    /// reassembly's delivery): out of line, every packet paid for its call, its frame and
    /// the header's addresses handed over through memory.
    #[inline(always)]
    fn ipv4_deliver(&mut self, now: Instant, ip: &ipv4::Repr, payload: &[u8], bytes: &[u8]) {
        let (src, dst) = (IpAddr::V4(ip.src_addr), IpAddr::V4(ip.dst_addr));
        match ip.protocol {
            IpProtocol::Tcp => {
                // The ECN field as the header's parse read it (what `ecn_of` would read again).
                let ecn = crate::tcp::ecn::Codepoint::from_bits(ip.ecn);
                self.handle_tcp(now, src, dst, payload, bytes, ecn)
            }
            IpProtocol::Icmp => self.handle_icmp(now, ip, payload, bytes),
            IpProtocol::Udp => self.handle_udp(now, src, dst, payload, bytes),
            _ => {
                self.counters.ip_in_unknown_protos += 1;
                self.trace_drop(now, "protocol not supported", bytes);
            }
        }
    }

    /// RFC 791 §3.2: a fragment goes into reassembly; the datagram it completes is delivered.
    fn ipv4_fragment(&mut self, now: Instant, packet: &ipv4::Packet<&[u8]>, bytes: &[u8]) {
        self.counters.ip_reasm_reqds += 1;
        let protocol = packet.protocol();
        let (offset, more) = (usize::from(packet.frag_offset()), packet.more_frags());
        let payload = packet.payload();
        // RFC 1858 §3: a first fragment without the whole upper-layer header, or a TCP
        // fragment at offset 8 (which could only rewrite the header's flags), is an attack on
        // filters, never what a real sender produces.
        let tiny = offset == 0 && more && payload.len() < min_first_fragment(protocol);
        if tiny || (protocol == IpProtocol::Tcp && offset == 8) {
            self.counters.ip_reasm_fails += 1;
            return self.trace_drop(now, "tiny or header-overlapping fragment (RFC 1858)", bytes);
        }
        let hl = packet.header_len();
        let f = Fragment {
            key: Key {
                src: IpAddr::V4(packet.src_addr()),
                dst: IpAddr::V4(packet.dst_addr()),
                ident: u32::from(packet.ident()),
                protocol: u8::from(protocol),
            },
            offset,
            more,
            payload,
            header: &bytes[..hl],
        };
        let mut dg = match self.frags4.insert(now, &f) {
            Outcome::Queued => return,
            Outcome::Duplicate => return self.trace_drop(now, "duplicate fragment", bytes),
            Outcome::Dropped(d) => {
                self.counters.ip_reasm_fails += 1;
                if d == Drop::Overlap {
                    self.counters.ip_reasm_overlaps += 1;
                }
                return self.trace_drop(now, d.reason(), bytes);
            }
            Outcome::Complete(dg) => dg,
        };
        // Whether the device checked the fragment that completed it says nothing of the
        // others: the datagram's checksum is verified.
        self.rx_checksummed = false;
        let Ok(total) = u16::try_from(dg.bytes.len()) else {
            self.counters.ip_reasm_fails += 1;
            return self.trace_drop(now, "reassembled datagram over 65535 bytes", bytes);
        };
        // Fragment 0's header becomes the datagram's: whole length, no fragment fields.
        let mut p = ipv4::Packet::new_unchecked(&mut dg.bytes[..]);
        p.set_total_len(total);
        p.set_more_frags(false);
        p.set_frag_offset(0);
        p.fill_checksum();
        self.counters.ip_reasm_oks += 1;
        if self.trace_on() {
            let text = format!("reassembled {} fragments: {total} bytes", dg.fragments);
            self.trace_note(now, text);
        }
        let packet = ipv4::Packet::new_unchecked(&dg.bytes[..]);
        match ipv4::Repr::parse(&packet, true) {
            Ok(ip) => self.ipv4_deliver(now, &ip, packet.payload(), &dg.bytes),
            Err(e) => self.ip_error(now, e, &dg.bytes),
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
}
