//! IPv6 fixed header (RFC 8200 §3): a [`Packet`] view over header bytes and a [`Repr`].
//!
//! [`Packet::new_checked`] validates the version and the payload length once (see
//! [`Packet::check_len`]); after it succeeds no accessor panics. Bytes after `40 + Payload
//! Length` (Ethernet padding) are allowed and ignored: [`Packet::payload`] ends there.
//!
//! **Extension headers are not parsed here.** [`Packet::next_header`] is reported as-is, and
//! the payload starts right after the fixed 40-byte header. If it names an extension header
//! (hop-by-hop options, routing, fragment, destination options, ...), the payload begins with
//! that header; [`ipv6ext::Chain`](super::ipv6ext::Chain) walks the chain to the upper layer.
//!
//! **Jumbograms (RFC 2675) are not supported**: a Payload Length of 0 is read as an empty
//! payload, whatever a hop-by-hop Jumbo Payload option might say.
//!
//! [`Repr::emit`] returns [`Error::BufferTooSmall`] when the target is shorter than
//! [`Repr::buffer_len`], so size the buffer with `buffer_len()` and write the payload through
//! [`Packet::payload_mut`] afterwards. It writes traffic class 0 and flow label 0.
//!
//! Accessors and setters on a view made with [`Packet::new_unchecked`] index the buffer directly
//! and panic if it is shorter than the 40-byte header; [`Packet::payload`] clamps its range to
//! the buffer and never panics.

use core::fmt;
use core::net::Ipv6Addr;

use super::ipv4::ProtocolName;
use super::{Error, IpProtocol, Result, be16, be32, put16, put32};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// Largest payload the 16-bit Payload Length field can describe (no jumbograms).
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize;

/// Hop limit used by [`Repr::new`] (the Linux default, `net.ipv6.conf.*.hop_limit`).
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// Byte offsets of the header fields, following the diagram in RFC 8200 §3.
mod field {
    use core::ops::Range;

    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |Version| Traffic Class |           Flow Label                  |
    pub const VER_TC_FLOW: usize = 0;
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |         Payload Length        |  Next Header  |   Hop Limit   |
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |                                                               |
    // +                                                               +
    // |                                                               |
    // +                         Source Address                        +
    // |                                                               |
    // +                                                               +
    // |                                                               |
    pub const SRC_ADDR: Range<usize> = 8..24;
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |                                                               |
    // +                                                               +
    // |                                                               |
    // +                      Destination Address                      +
    // |                                                               |
    // +                                                               +
    // |                                                               |
    pub const DST_ADDR: Range<usize> = 24..40;
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    /// Bit position of Version in the first 32-bit word.
    pub const VERSION_SHIFT: u32 = 28;
    /// Bit position of Traffic Class in the first 32-bit word.
    pub const TRAFFIC_CLASS_SHIFT: u32 = 20;
    /// Flow Label: the low 20 bits of the first 32-bit word.
    pub const FLOW_LABEL_MASK: u32 = 0x000f_ffff;
}

/// A read (and, with a mutable buffer, write) view of an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it. Fixed-field accessors panic if it is shorter than
    /// [`HEADER_LEN`]; use [`new_checked`](Self::new_checked) for untrusted input.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len) accepts it. No accessor of the
    /// returned view panics.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks, in this order: the buffer holds the 40-byte header ([`Error::Truncated`]); the
    /// version is 6 ([`Error::BadVersion`]); `40 + Payload Length <= buffer length`
    /// ([`Error::BadLength`]).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::BadVersion);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn first_word(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW)
    }

    /// Version (6 for a valid packet).
    pub fn version(&self) -> u8 {
        (self.first_word() >> field::VERSION_SHIFT) as u8
    }

    /// Traffic Class (DSCP in the top six bits, ECN in the low two).
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> field::TRAFFIC_CLASS_SHIFT) as u8
    }

    /// Differentiated Services Code Point (RFC 2474): the top six bits of Traffic Class.
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    /// Explicit Congestion Notification (RFC 3168): the low two bits of Traffic Class.
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// Flow Label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.first_word() & field::FLOW_LABEL_MASK
    }

    /// Payload Length: bytes after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Next Header, as-is: a transport protocol or the first extension header.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    /// Hop Limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source Address.
    pub fn src_addr(&self) -> Ipv6Addr {
        read_addr(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    /// Destination Address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        read_addr(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    /// The payload: the `Payload Length` bytes after the fixed header (extension headers
    /// included, trailing padding excluded). Clamped to the buffer, so it never panics.
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let (start, end) = payload_range(self.payload_len(), data.len());
        &data[start..end]
    }
}

/// An address from 16 bytes at `at` (the caller has checked the length).
fn read_addr(data: &[u8], at: usize) -> Ipv6Addr {
    let hi = u64::from(be32(data, at)) << 32 | u64::from(be32(data, at + 4));
    let lo = u64::from(be32(data, at + 8)) << 32 | u64::from(be32(data, at + 12));
    Ipv6Addr::from(u128::from(hi) << 64 | u128::from(lo))
}

/// Writes an address as 16 bytes at `at`.
fn write_addr(data: &mut [u8], at: usize, addr: Ipv6Addr) {
    data[at..at + 16].copy_from_slice(&addr.octets());
}

/// The payload byte range for a payload length and buffer length, clamped so that
/// `start <= end <= buffer_len`.
fn payload_range(payload_len: u16, buffer_len: usize) -> (usize, usize) {
    let end = (HEADER_LEN + usize::from(payload_len)).min(buffer_len);
    (HEADER_LEN.min(end), end)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_first_word(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::VER_TC_FLOW, value);
    }

    /// Sets Version (the low four bits of `value`).
    pub fn set_version(&mut self, value: u8) {
        let keep = self.first_word() & !(0xf << field::VERSION_SHIFT);
        self.set_first_word(keep | (u32::from(value & 0x0f) << field::VERSION_SHIFT));
    }

    /// Sets Traffic Class.
    pub fn set_traffic_class(&mut self, value: u8) {
        let keep = self.first_word() & !(0xff << field::TRAFFIC_CLASS_SHIFT);
        self.set_first_word(keep | (u32::from(value) << field::TRAFFIC_CLASS_SHIFT));
    }

    /// Sets Flow Label (the low 20 bits of `value`).
    pub fn set_flow_label(&mut self, value: u32) {
        let keep = self.first_word() & !field::FLOW_LABEL_MASK;
        self.set_first_word(keep | (value & field::FLOW_LABEL_MASK));
    }

    /// Sets Payload Length.
    pub fn set_payload_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::PAYLOAD_LEN, value);
    }

    /// Sets Next Header.
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = u8::from(value);
    }

    /// Sets Hop Limit.
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets Source Address.
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        write_addr(self.buffer.as_mut(), field::SRC_ADDR.start, addr);
    }

    /// Sets Destination Address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        write_addr(self.buffer.as_mut(), field::DST_ADDR.start, addr);
    }

    /// The payload, mutable (see [`payload`](Self::payload)).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = payload_range(self.payload_len(), self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[start..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parts of an IPv6 fixed header synack reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source Address.
    pub src_addr: Ipv6Addr,
    /// Destination Address.
    pub dst_addr: Ipv6Addr,
    /// Next Header, as-is (extension headers are not walked).
    pub next_header: IpProtocol,
    /// Payload Length in bytes (extension headers included).
    pub payload_len: usize,
    /// Hop Limit.
    pub hop_limit: u8,
}

impl Repr {
    /// A header with hop limit [`DEFAULT_HOP_LIMIT`].
    pub fn new(
        src_addr: Ipv6Addr,
        dst_addr: Ipv6Addr,
        next_header: IpProtocol,
        payload_len: usize,
    ) -> Repr {
        Repr {
            src_addr,
            dst_addr,
            next_header,
            payload_len,
            hop_limit: DEFAULT_HOP_LIMIT,
        }
    }

    /// Parses a packet. Runs [`Packet::check_len`] itself, so an unchecked view is fine.
    /// Traffic class and flow label are not kept (read them from the [`Packet`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
        })
    }

    /// Length of the header [`emit`](Self::emit) writes: always [`HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload: the buffer size [`emit`](Self::emit) needs (saturating, so an
    /// absurd `payload_len` cannot overflow).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload_len)
    }

    /// Writes the 40-byte header (traffic class 0, flow label 0) into `packet`. The payload is
    /// left untouched; write it through [`Packet::payload_mut`].
    ///
    /// Errors: [`Error::BadLength`] if `payload_len` exceeds [`MAX_PAYLOAD_LEN`] (no
    /// jumbograms); [`Error::BufferTooSmall`] if the buffer is shorter than
    /// [`buffer_len`](Self::buffer_len). Nothing is written on error.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        let payload_len = u16::try_from(self.payload_len).map_err(|_| Error::BadLength)?;
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        packet.set_first_word(6 << field::VERSION_SHIFT);
        packet.set_payload_len(payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

impl fmt::Display for Repr {
    /// `IPv6 2001:db8::1 > 2001:db8::2 next=TCP hop=64 len=40`, where `len` is the payload
    /// length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv6 {} > {} next={} hop={} len={}",
            self.src_addr,
            self.dst_addr,
            ProtocolName(self.next_header),
            self.hop_limit,
            self.payload_len
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use proptest::prelude::*;

    /// An ICMPv6 echo request from 2001:db8::1 to 2001:db8::2: traffic class 0xb8 (EF), flow
    /// label 0x12345, hop limit 64, 14 bytes of ICMPv6 (id 0x1234, seq 1, data "synack"),
    /// ICMPv6 checksum 0xccc6 (computed independently, checked below).
    #[rustfmt::skip]
    const ECHO: [u8; 54] = [
        // IPv6 header, one 32-bit word per row as in RFC 8200 §3
        0x6b, 0x81, 0x23, 0x45, // version 6, traffic class 0xb8, flow label 0x12345
        0x00, 0x0e, 0x3a, 0x40, // payload length 14, next header ICMPv6, hop limit 64
        0x20, 0x01, 0x0d, 0xb8, // source 2001:db8::1
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01,
        0x20, 0x01, 0x0d, 0xb8, // destination 2001:db8::2
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x02,
        // ICMPv6 echo request: type, code, checksum, identifier, sequence, "synack"
        0x80, 0x00, 0xcc, 0xc6, 0x12, 0x34, 0x00, 0x01, 0x73, 0x79, 0x6e, 0x61, 0x63, 0x6b,
    ];

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    #[test]
    fn parses_literal_header_field_by_field() {
        let p = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.dscp(), 46);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 14);
        assert_eq!(p.next_header(), IpProtocol::Icmpv6);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), A);
        assert_eq!(p.dst_addr(), B);
        assert_eq!(p.payload(), &ECHO[40..]);
        assert_eq!(&p.payload()[8..], b"synack");

        // The ICMPv6 checksum verifies over the RFC 8200 §8.1 pseudo-header: the addresses
        // and lengths we read are the ones the literal was built from.
        let mut sum = checksum::pseudo_header_v6(
            p.src_addr(),
            p.dst_addr(),
            p.next_header(),
            u32::from(p.payload_len()),
        );
        sum.add_bytes(p.payload());
        assert!(sum.verifies());

        let repr = Repr::parse(&p).unwrap();
        assert_eq!(
            repr,
            Repr {
                src_addr: A,
                dst_addr: B,
                next_header: IpProtocol::Icmpv6,
                payload_len: 14,
                hop_limit: 64,
            }
        );
        assert_eq!(
            repr.to_string(),
            "IPv6 2001:db8::1 > 2001:db8::2 next=ICMPv6 hop=64 len=14"
        );

        // Re-emitting gives the same header except traffic class and flow label (zeroed).
        let mut out = [0xffu8; 54];
        let mut q = Packet::new_unchecked(&mut out[..]);
        repr.emit(&mut q).unwrap();
        q.payload_mut().copy_from_slice(&ECHO[40..]);
        assert_eq!(&out[..4], &[0x60, 0, 0, 0]);
        assert_eq!(&out[4..], &ECHO[4..]);
    }

    #[test]
    fn trailing_padding_is_ignored() {
        let mut padded = [0u8; 64];
        padded[..54].copy_from_slice(&ECHO);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), &ECHO[40..]);
        assert_eq!(Repr::parse(&p).unwrap().payload_len, 14);
    }

    #[test]
    fn extension_headers_are_reported_not_walked() {
        // A hop-by-hop header (8 bytes: next=TCP, len 0, PadN) followed by 20 bytes of TCP.
        let mut b = [0u8; 68];
        b[..40].copy_from_slice(&ECHO[..40]);
        b[4..6].copy_from_slice(&28u16.to_be_bytes());
        b[6] = 0; // Hop-by-Hop
        b[40..48].copy_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.next_header(), IpProtocol::HopByHop);
        assert_eq!(p.payload().len(), 28);
        assert_eq!(
            p.payload()[0],
            6,
            "the payload starts with the extension header"
        );
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(repr.next_header, IpProtocol::HopByHop);
        assert_eq!(repr.payload_len, 28);
    }

    #[test]
    fn zero_payload_length_is_an_empty_payload() {
        // No jumbogram support: length 0 means no payload, even with bytes following.
        let mut b = ECHO;
        b[4] = 0;
        b[5] = 0;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload(), &[] as &[u8]);
        assert_eq!(Repr::parse(&p).unwrap().payload_len, 0);
    }

    #[test]
    fn every_short_buffer_is_truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&ECHO[..len]),
                Err(Error::Truncated),
                "len {len}"
            );
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&ECHO[..len])),
                Err(Error::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn every_wrong_version_is_rejected() {
        for version in (0u8..16).filter(|&v| v != 6) {
            let mut b = ECHO;
            b[0] = (version << 4) | (b[0] & 0x0f);
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(Error::BadVersion),
                "version {version}"
            );
        }
    }

    #[test]
    fn payload_length_past_the_buffer_is_rejected() {
        for len in [15u16, 16, 1000, u16::MAX] {
            let mut b = ECHO;
            b[4..6].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(Error::BadLength),
                "len {len}"
            );
        }
        // A bare header claiming one payload byte.
        let mut b = [0u8; 40];
        b.copy_from_slice(&ECHO[..40]);
        b[4..6].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::BadLength));
        // Cutting the literal short by any amount is also BadLength.
        for len in 40..54 {
            assert_eq!(
                Packet::new_checked(&ECHO[..len]),
                Err(Error::BadLength),
                "len {len}"
            );
        }
    }

    #[test]
    fn emit_checks_sizes() {
        let repr = Repr::new(A, B, IpProtocol::Tcp, 20);
        assert_eq!(repr.header_len(), 40);
        assert_eq!(repr.buffer_len(), 60);
        let mut small = [0xaau8; 59];
        assert_eq!(
            repr.emit(&mut Packet::new_unchecked(&mut small[..])),
            Err(Error::BufferTooSmall)
        );
        assert!(
            small.iter().all(|&b| b == 0xaa),
            "nothing is written on error"
        );

        let mut buf = vec![0u8; HEADER_LEN + MAX_PAYLOAD_LEN + 1];
        let big = Repr::new(A, B, IpProtocol::Udp, MAX_PAYLOAD_LEN + 1);
        assert_eq!(
            big.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(Error::BadLength)
        );
        let huge = Repr::new(A, B, IpProtocol::Udp, usize::MAX);
        assert_eq!(huge.buffer_len(), usize::MAX);
        assert_eq!(
            huge.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(Error::BadLength)
        );

        let max = Repr::new(A, B, IpProtocol::Udp, MAX_PAYLOAD_LEN);
        max.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload_len(), u16::MAX);
        assert_eq!(Repr::parse(&p), Ok(max));
    }

    #[test]
    fn setters_touch_only_their_bits() {
        let mut b = ECHO;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_traffic_class(0x01);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0x01, 0x12345)
        );
        p.set_flow_label(0xfff_ffff);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0x01, 0xf_ffff)
        );
        p.set_version(0x1f);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (0xf, 0x01, 0xf_ffff)
        );
        p.set_flow_label(0);
        assert_eq!(&p.as_ref()[..4], &[0xf0, 0x10, 0x00, 0x00]);
    }

    #[test]
    fn etherparse_agrees_on_the_literal() {
        let theirs = etherparse::Ipv6HeaderSlice::from_slice(&ECHO).unwrap();
        let ours = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(theirs.traffic_class(), ours.traffic_class());
        assert_eq!(theirs.flow_label().value(), ours.flow_label());
        assert_eq!(theirs.payload_length(), ours.payload_len());
        assert_eq!(theirs.source_addr(), ours.src_addr());
        assert_eq!(theirs.destination_addr(), ours.dst_addr());
    }

    fn addr() -> impl Strategy<Value = Ipv6Addr> {
        any::<[u8; 16]>().prop_map(Ipv6Addr::from)
    }

    prop_compose! {
        fn repr()(
            src_addr in addr(),
            dst_addr in addr(),
            next_header in any::<u8>().prop_map(IpProtocol::from),
            payload_len in prop_oneof![0usize..1600, (MAX_PAYLOAD_LEN - 100)..=MAX_PAYLOAD_LEN],
            hop_limit in any::<u8>(),
        ) -> Repr {
            Repr { src_addr, dst_addr, next_header, payload_len, hop_limit }
        }
    }

    /// Touches every accessor; must not panic on any input.
    fn exercise(bytes: &[u8]) {
        let parsed = Repr::parse(&Packet::new_unchecked(bytes));
        let Ok(p) = Packet::new_checked(bytes) else {
            assert!(parsed.is_err());
            return;
        };
        let _ = (
            p.version(),
            p.traffic_class(),
            p.dscp(),
            p.ecn(),
            p.flow_label(),
        );
        let _ = (
            p.payload_len(),
            p.next_header(),
            p.hop_limit(),
            p.src_addr(),
            p.dst_addr(),
        );
        assert_eq!(p.payload().len(), usize::from(p.payload_len()));
        let repr = parsed.expect("a checked view parses");
        assert_eq!(repr.payload_len, p.payload().len());
        let _ = repr.to_string();
        let mut copy = bytes.to_vec();
        let mut q = Packet::new_checked(&mut copy[..]).expect("same bytes");
        assert_eq!(q.payload_mut().len(), repr.payload_len);
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(repr in repr(), padding in 0usize..8) {
            let mut buf = vec![0u8; repr.buffer_len() + padding];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut p).unwrap();
            prop_assert_eq!(p.payload_mut().len(), repr.payload_len);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!((p.traffic_class(), p.flow_label()), (0, 0));
            prop_assert_eq!(Repr::parse(&p), Ok(repr));
        }

        #[test]
        fn our_output_parsed_by_etherparse(
            repr in repr(),
            traffic_class in any::<u8>(),
            flow_label in 0u32..=0xf_ffff,
        ) {
            let mut buf = vec![0u8; repr.buffer_len()];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut p).unwrap();
            p.set_traffic_class(traffic_class);
            p.set_flow_label(flow_label);
            let h = etherparse::Ipv6HeaderSlice::from_slice(&buf).unwrap();
            prop_assert_eq!(h.version(), 6);
            prop_assert_eq!(h.traffic_class(), traffic_class);
            prop_assert_eq!(h.flow_label().value(), flow_label);
            prop_assert_eq!(usize::from(h.payload_length()), repr.payload_len);
            prop_assert_eq!(h.next_header().0, u8::from(repr.next_header));
            prop_assert_eq!(h.hop_limit(), repr.hop_limit);
            prop_assert_eq!(h.source_addr(), repr.src_addr);
            prop_assert_eq!(h.destination_addr(), repr.dst_addr);
        }

        #[test]
        fn etherparse_output_parsed_by_us(
            repr in repr(),
            traffic_class in any::<u8>(),
            flow_label in 0u32..=0xf_ffff,
            payload_byte in any::<u8>(),
            padding in 0usize..8,
        ) {
            let header = etherparse::Ipv6Header {
                traffic_class,
                flow_label: etherparse::Ipv6FlowLabel::try_new(flow_label).unwrap(),
                payload_length: repr.payload_len as u16,
                next_header: etherparse::IpNumber(u8::from(repr.next_header)),
                hop_limit: repr.hop_limit,
                source: repr.src_addr.octets(),
                destination: repr.dst_addr.octets(),
            };
            let mut buf = Vec::new();
            header.write(&mut buf).unwrap();
            buf.extend(core::iter::repeat_n(payload_byte, repr.payload_len + padding));

            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(p.version(), 6);
            prop_assert_eq!(p.traffic_class(), header.traffic_class);
            prop_assert_eq!(p.dscp(), header.dscp().value());
            prop_assert_eq!(p.ecn(), header.ecn().value());
            prop_assert_eq!(p.flow_label(), header.flow_label.value());
            prop_assert_eq!(p.payload_len(), header.payload_length);
            prop_assert_eq!(p.payload().len(), repr.payload_len);
            prop_assert!(p.payload().iter().all(|&b| b == payload_byte));
            prop_assert_eq!(Repr::parse(&p), Ok(repr));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            exercise(&bytes);
        }

        #[test]
        fn plausible_bytes_never_panic(
            mut bytes in proptest::collection::vec(any::<u8>(), 40..100),
            payload_len in 0u16..70,
        ) {
            // Steer past the early checks so the length check and the accessors get exercised.
            bytes[0] = 0x60 | (bytes[0] & 0x0f);
            bytes[4..6].copy_from_slice(&payload_len.to_be_bytes());
            exercise(&bytes);
        }
    }
}
