//! TCP super-segments toward the kernel, built in place (segmentation offload on our side).
//!
//! An offloading TUN device takes a TCP packet of up to 64 KiB with a virtio-net header
//! that says how to cut it (`gso_type` TCPV4 or TCPV6, `gso_size`) and that its checksum is
//! left to the device (`VIRTIO_NET_HDR_F_NEEDS_CSUM`, the TCP checksum field holding the
//! pseudo-header's sum): the kernel's TCP takes it whole, as a GRO packet from a NIC (virtio
//! 1.2 §5.1.6.2; Linux `virtio_net_hdr_to_skb`).
//!
//! A [`Run`] is such a super-segment being built from consecutive segments the stack sends
//! on one connection: each new segment is written into the queue's last buffer so that its
//! payload lands right after the payload before it, over that payload's last bytes (which
//! the caller saves and puts back), and only its header has to go. What joins a run is what
//! Linux's `tcp_gro_receive` merges: the same addresses, ports, IP fields (but the IPv4
//! identification), acknowledgment number, window and TCP options, adjacent sequence
//! numbers, the flags ACK alone (PSH on the last segment), and every segment as long as the
//! first but the last. No byte of payload is copied or summed: the stack already summed each
//! segment, and the kernel sums the super-segment again only if it forwards it.

use crate::wire::IpProtocol;
use crate::wire::checksum::{Checksum, pseudo_header_v4, pseudo_header_v6};
use core::net::{Ipv4Addr, Ipv6Addr};

use tun_rs::{VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VirtioNetHdr};

/// TCP flags (RFC 9293 §3.1).
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
/// IPv4's "more fragments" bit and fragment offset in bytes 6 and 7 (RFC 791 §3.1): all
/// but DF.
const V4_FRAG_MASK: u16 = 0x3fff;

/// The longest IP and TCP headers of a segment that joins a run (IPv6's 40 bytes and TCP's
/// 60): what the caller saves of the payload that the next segment's header overwrites.
pub(super) const MAX_HEADERS: usize = 40 + 60;

/// The most segments in one run (the kernel's `gso_max_segs` is far larger; 64 KiB of
/// 1,448-byte segments is 45).
const MAX_SEGMENTS: u16 = 64;

/// A super-segment being built; see the [module documentation](self).
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    /// The IP header's length (20 or 40).
    ip: usize,
    /// IP and TCP headers' length, the same in every segment.
    pub(super) headers: usize,
    /// The first segment's payload: every segment but the last has as much (`gso_size`).
    size: usize,
    /// The sequence number the next segment must start at.
    next_seq: u32,
    segments: u16,
    /// The last segment had PSH: the run is closed, and the super-segment carries it.
    psh: bool,
    /// A segment shorter than the first: the run is closed.
    short: bool,
}

/// The sequence number of the TCP header `t`.
fn seq(t: &[u8]) -> u32 {
    u32::from_be_bytes([t[4], t[5], t[6], t[7]])
}

/// The IP header's length if `p` is a whole, unfragmented TCP packet without IPv4 options
/// or IPv6 extension headers (the only ones a run takes).
fn tcp_packet(p: &[u8]) -> Option<usize> {
    let ip = match p.first()? >> 4 {
        4 if p.len() >= 40
            && p[0] == 0x45
            && p[9] == 6
            && usize::from(u16::from_be_bytes([p[2], p[3]])) == p.len()
            && u16::from_be_bytes([p[6], p[7]]) & V4_FRAG_MASK == 0 =>
        {
            20
        }
        6 if p.len() >= 60
            && p[6] == 6
            && usize::from(u16::from_be_bytes([p[4], p[5]])) + 40 == p.len() =>
        {
            40
        }
        _ => return None,
    };
    let t = &p[ip..];
    let headers = ip + usize::from(t[12] >> 4) * 4;
    (headers >= ip + 20 && headers <= p.len()).then_some(ip)
}

impl Run {
    /// A run begun by the packet `p`, if it may begin one: a TCP segment with data and ACK
    /// as its only flag.
    pub(super) fn start(p: &[u8]) -> Option<Run> {
        let ip = tcp_packet(p)?;
        let t = &p[ip..];
        let headers = ip + usize::from(t[12] >> 4) * 4;
        let size = p.len() - headers;
        if t[13] != ACK || t[18..20] != [0, 0] || size == 0 {
            return None;
        }
        Some(Run {
            ip,
            headers,
            size,
            next_seq: seq(t).wrapping_add(size as u32),
            segments: 1,
            psh: false,
            short: false,
        })
    }

    /// Whether a segment of up to `room` bytes may still join (the super-segment stays an
    /// IP packet, at most 65,535 bytes, of `total` bytes so far).
    pub(super) fn open(&self, total: usize, room: usize) -> bool {
        !self.psh
            && !self.short
            && room > self.headers
            && self.segments < MAX_SEGMENTS
            && total + room.saturating_sub(self.headers) <= usize::from(u16::MAX)
    }

    /// Whether the segment `s` continues the run whose first segment's headers are
    /// `first`; if it does, the run counts it.
    pub(super) fn join(&mut self, first: &[u8], s: &[u8]) -> bool {
        if tcp_packet(s) != Some(self.ip) || s.len() <= self.headers {
            return false;
        }
        let (ip, h) = (self.ip, self.headers);
        let same_ip = if ip == 20 {
            // Version and IHL, TOS, DF, TTL, protocol, addresses; not the identification.
            s[..2] == first[..2]
                && s[6] & 0x40 == first[6] & 0x40
                && s[8..10] == first[8..10]
                && s[12..20] == first[12..20]
        } else {
            // Version, traffic class, flow label, next header, hop limit, addresses.
            s[..4] == first[..4] && s[6..40] == first[6..40]
        };
        let (t, f) = (&s[ip..], &first[ip..h]);
        let payload = s.len() - h;
        let joins = same_ip
            && t[..4] == f[..4]
            && seq(t) == self.next_seq
            && t[8..13] == f[8..13]
            && t[13] & !PSH == ACK
            && t[14..16] == f[14..16]
            && t[18..20] == [0, 0]
            && t[20..h - ip] == f[20..]
            && payload <= self.size;
        if joins {
            self.segments += 1;
            self.next_seq = self.next_seq.wrapping_add(payload as u32);
            self.psh = t[13] & PSH != 0;
            self.short = payload < self.size;
        }
        joins
    }

    /// Makes `b` (a virtio-net header, then the run's first headers and every segment's
    /// payload) the super-segment it stands for: the IP length (and IPv4 header checksum),
    /// PSH if the last segment had it, the pseudo-header's sum in the TCP checksum field,
    /// and the virtio-net header. A run of one segment stays the packet it is.
    pub(super) fn finish(&self, b: &mut [u8]) {
        if self.segments < 2 {
            return;
        }
        let (hdr, p) = b.split_at_mut(tun_rs::VIRTIO_NET_HDR_LEN);
        let total = p.len();
        let ip = self.ip;
        let tcp_len = (total - ip) as u32;
        let pseudo = if ip == 20 {
            p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            p[10..12].fill(0);
            let mut c = Checksum::new();
            c.add_bytes(&p[..20]);
            p[10..12].copy_from_slice(&c.finish().to_be_bytes());
            let src = Ipv4Addr::from([p[12], p[13], p[14], p[15]]);
            let dst = Ipv4Addr::from([p[16], p[17], p[18], p[19]]);
            pseudo_header_v4(src, dst, IpProtocol::Tcp, tcp_len)
        } else {
            p[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            let mut a = [0u8; 16];
            a.copy_from_slice(&p[8..24]);
            let src = Ipv6Addr::from(a);
            a.copy_from_slice(&p[24..40]);
            pseudo_header_v6(src, Ipv6Addr::from(a), IpProtocol::Tcp, tcp_len)
        };
        if self.psh {
            p[ip + 13] |= PSH;
        }
        p[ip + 16..ip + 18].copy_from_slice(&pseudo.sum().to_be_bytes());
        let v = VirtioNetHdr {
            flags: super::VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type: if ip == 20 {
                VIRTIO_NET_HDR_GSO_TCPV4
            } else {
                VIRTIO_NET_HDR_GSO_TCPV6
            },
            hdr_len: self.headers as u16,
            gso_size: self.size as u16,
            csum_start: ip as u16,
            csum_offset: 16,
        };
        // The buffer has the header's room: encode fails only on a shorter one.
        let _ = v.encode(hdr);
    }
}
