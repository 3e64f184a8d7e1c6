//! IPv4 (RFC 791): a [`Packet`] view over header bytes and a [`Repr`] of what synack needs.
//!
//! [`Packet::new_checked`] validates the version and every length field once (see
//! [`Packet::check_len`]); after it succeeds no accessor panics. Options are honoured for parsing
//! (the header is `IHL * 4` bytes, the options are skipped and available raw through
//! [`Packet::options`]) but never interpreted. Bytes after `Total Length` (Ethernet padding) are
//! allowed and ignored: [`Packet::payload`] ends at `Total Length`.
//!
//! Fragments parse like any other packet; [`Packet::is_fragment`], [`Packet::more_frags`] and
//! [`Packet::frag_offset`] expose the fragment fields so the stack can decide what to do with
//! them. A [`Repr`] does not carry them: check [`Packet::is_fragment`] before treating the
//! payload as a whole transport segment.
//!
//! Emitting writes a 20-byte header with no options, MF clear and fragment offset 0.
//! [`Repr::emit`] returns [`Error::BufferTooSmall`] when the target is shorter than
//! [`Repr::buffer_len`], so size the buffer with `buffer_len()` and write the payload through
//! [`Packet::payload_mut`] afterwards.
//!
//! Accessors and setters on a view made with [`Packet::new_unchecked`] index the buffer directly
//! and panic if it is shorter than the 20-byte fixed header; [`Packet::options`] and
//! [`Packet::payload`] clamp their ranges to the buffer and never panic.

use core::fmt;
use core::net::Ipv4Addr;

use super::checksum::{self, Checksum};
use super::{Error, IpProtocol, Result, be16, be32, put16, put32};

/// Length of the fixed IPv4 header (IHL = 5), which is also what [`Repr::emit`] writes.
pub const HEADER_LEN: usize = 20;

/// Longest possible IPv4 header (IHL = 15): 20 fixed bytes and 40 bytes of options.
pub const MAX_HEADER_LEN: usize = 60;

/// Largest payload a 20-byte header can describe (`Total Length` is 16 bits).
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize - HEADER_LEN;

/// TTL used by [`Repr::new`] (the Linux default, `net.ipv4.ip_default_ttl`).
pub const DEFAULT_TTL: u8 = 64;

/// Byte offsets of the header fields, following the diagram in RFC 791 §3.1.
mod field {
    use core::ops::Range;

    //  0                   1                   2                   3
    //  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |Version|  IHL  |Type of Service|          Total Length         |
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |         Identification        |Flags|      Fragment Offset    |
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |  Time to Live |    Protocol   |         Header Checksum       |
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |                       Source Address                          |
    pub const SRC_ADDR: Range<usize> = 12..16;
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |                    Destination Address                        |
    pub const DST_ADDR: Range<usize> = 16..20;
    // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    // |                    Options                    |    Padding    |
    pub const OPTIONS: usize = 20;

    /// Flags bit 1: Don't Fragment (bit 0 is reserved and must be zero).
    pub const FLAG_DF: u16 = 0x4000;
    /// Flags bit 2: More Fragments.
    pub const FLAG_MF: u16 = 0x2000;
    /// Fragment Offset: 13 bits, in units of 8 octets.
    pub const FRAG_OFFSET_MASK: u16 = 0x1fff;
}

/// A read (and, with a mutable buffer, write) view of an IPv4 packet.
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

    /// Checks, in this order: the buffer holds the fixed header ([`Error::Truncated`]); the
    /// version is 4 ([`Error::BadVersion`]); IHL is at least 5 and the header fits in the
    /// buffer ([`Error::BadHeaderLength`]); `header_len <= Total Length <= buffer length`
    /// ([`Error::BadLength`]).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > len {
            return Err(Error::BadHeaderLength);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len || total_len > len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (4 for a valid packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// IHL, the raw 4-bit Internet Header Length in 32-bit words.
    #[inline]
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes (`IHL * 4`), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// The whole Type of Service octet (DSCP in the top six bits, ECN in the low two).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Differentiated Services Code Point (RFC 2474): the top six bits of the ToS octet.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// Explicit Congestion Notification (RFC 3168): the low two bits of the ToS octet.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// Total Length: header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    /// Identification, used to reassemble fragments.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    fn flags_frag(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG)
    }

    /// The reserved flag bit (must be zero; reported, not enforced).
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        self.flags_frag() & 0x8000 != 0
    }

    /// The DF (Don't Fragment) flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & field::FLAG_DF != 0
    }

    /// The MF (More Fragments) flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & field::FLAG_MF != 0
    }

    /// Fragment Offset converted to **bytes** (the field counts 8-byte units; the result is
    /// always a multiple of 8, at most 65528).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & field::FRAG_OFFSET_MASK) * 8
    }

    /// True for any fragment of a larger datagram: MF set or a non-zero fragment offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to Live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload. Always inlined: with `#[inline]` alone it stayed a call on
    /// every received packet's parse.
    #[inline(always)]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source Address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.buffer.as_ref(), field::SRC_ADDR.start))
    }

    /// Destination Address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.buffer.as_ref(), field::DST_ADDR.start))
    }

    /// The raw option bytes between the fixed header and the payload (empty when IHL = 5).
    /// Clamped to the buffer, so it never panics.
    #[inline]
    pub fn options(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = self.header_len().min(data.len());
        data.get(field::OPTIONS..end).unwrap_or(&[])
    }

    /// True when the header checksum verifies over the `IHL * 4` header bytes.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let data = self.buffer.as_ref();
        let end = self.header_len().min(data.len());
        let mut sum = Checksum::new();
        match <&[u8; 20]>::try_from(&data[..end]) {
            Ok(h) => sum.add_20(h),
            Err(_) => sum.add_bytes(&data[..end]),
        }
        sum.verifies()
    }

    /// The payload: from the end of the header to `Total Length` (trailing padding excluded).
    /// Clamped to the buffer, so it never panics.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let (start, end) = payload_range(self.header_len(), self.total_len(), data.len());
        &data[start..end]
    }
}

/// The payload byte range for a header length, total length and buffer length, clamped so
/// that `start <= end <= buffer_len`.
fn payload_range(header_len: usize, total_len: u16, buffer_len: usize) -> (usize, usize) {
    let end = usize::from(total_len).min(buffer_len);
    (header_len.min(end), end)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Version (the low four bits of `value`).
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Sets IHL from a header length in bytes (`len / 4`, low four bits kept); `len` should be
    /// a multiple of 4 between 20 and 60.
    pub fn set_header_len(&mut self, len: usize) {
        let words = ((len / 4) & 0x0f) as u8;
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | words;
    }

    /// Sets the whole Type of Service octet.
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::TOS] = value;
    }

    /// Sets DSCP (the low six bits of `value`), keeping ECN.
    pub fn set_dscp(&mut self, value: u8) {
        let tos = (self.tos() & 0x03) | (value << 2);
        self.set_tos(tos);
    }

    /// Sets ECN (the low two bits of `value`), keeping DSCP.
    pub fn set_ecn(&mut self, value: u8) {
        let tos = (self.tos() & 0xfc) | (value & 0x03);
        self.set_tos(tos);
    }

    /// Sets Total Length.
    pub fn set_total_len(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::TOTAL_LEN, value);
    }

    /// Sets Identification.
    pub fn set_ident(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::IDENT, value);
    }

    fn set_flags_frag(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::FLAGS_FRAG, value);
    }

    /// Sets or clears the DF flag.
    pub fn set_dont_frag(&mut self, value: bool) {
        let v = self.flags_frag() & !field::FLAG_DF;
        self.set_flags_frag(if value { v | field::FLAG_DF } else { v });
    }

    /// Sets or clears the MF flag.
    pub fn set_more_frags(&mut self, value: bool) {
        let v = self.flags_frag() & !field::FLAG_MF;
        self.set_flags_frag(if value { v | field::FLAG_MF } else { v });
    }

    /// Sets Fragment Offset from a **byte** offset; it is stored in 8-byte units, so the low
    /// three bits of `bytes` are dropped.
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = (self.flags_frag() & !field::FRAG_OFFSET_MASK) | (bytes / 8);
        self.set_flags_frag(v);
    }

    /// Sets Time to Live.
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets Protocol.
    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(value);
    }

    /// Sets Header Checksum to `value` as given (see [`fill_checksum`](Self::fill_checksum)).
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets Source Address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::SRC_ADDR.start, u32::from(addr));
    }

    /// Sets Destination Address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::DST_ADDR.start, u32::from(addr));
    }

    /// Computes the header checksum over the `IHL * 4` header bytes and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let end = self.header_len().min(self.buffer.as_ref().len());
        let header = &self.buffer.as_ref()[..end];
        let sum = match <&[u8; 20]>::try_from(header) {
            Ok(h) => {
                let mut c = Checksum::new();
                c.add_20(h);
                c.finish()
            }
            Err(_) => checksum::checksum(header),
        };
        self.set_checksum(sum);
    }

    /// The option bytes, mutable (see [`options`](Self::options)).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len().min(self.buffer.as_ref().len());
        self.buffer
            .as_mut()
            .get_mut(field::OPTIONS..end)
            .unwrap_or(&mut [])
    }

    /// The payload, mutable (see [`payload`](Self::payload)).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = payload_range(
            self.header_len(),
            self.total_len(),
            self.buffer.as_ref().len(),
        );
        &mut self.buffer.as_mut()[start..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The parts of an IPv4 header synack reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source Address.
    pub src_addr: Ipv4Addr,
    /// Destination Address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: IpProtocol,
    /// Payload length in bytes (`Total Length` minus the header length).
    pub payload_len: usize,
    /// Time to Live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// The DF flag.
    pub dont_frag: bool,
    /// DSCP, six bits (higher bits are dropped on emit).
    pub dscp: u8,
    /// ECN codepoint, two bits (higher bits are dropped on emit).
    pub ecn: u8,
}

impl Repr {
    /// A header with Linux-like defaults: TTL [`DEFAULT_TTL`], DF set, identification 0,
    /// DSCP 0 and ECN 0 (Not-ECT).
    pub fn new(
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
    ) -> Repr {
        Repr {
            src_addr,
            dst_addr,
            protocol,
            payload_len,
            ttl: DEFAULT_TTL,
            ident: 0,
            dont_frag: true,
            dscp: 0,
            ecn: 0,
        }
    }

    /// Parses a packet. Runs [`Packet::check_len`] itself, so an unchecked view is fine; with
    /// `verify_checksum` a wrong header checksum is [`Error::BadChecksum`]. Fragments parse
    /// (the fragment fields are on the [`Packet`]); options are skipped. Inlined: the
    /// receive path's one call, on every packet.
    #[inline(always)]
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, verify_checksum: bool) -> Result<Repr> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.payload().len(),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
        })
    }

    /// Length of the header [`emit`](Self::emit) writes: always [`HEADER_LEN`] (no options).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload: the buffer size [`emit`](Self::emit) needs (saturating, so an
    /// absurd `payload_len` cannot overflow).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload_len)
    }

    /// Writes a 20-byte header (no options, MF clear, fragment offset 0) into `packet`. The
    /// payload is left untouched; write it through [`Packet::payload_mut`]. The checksum is
    /// computed when `fill_checksum` is set, otherwise zeroed (for checksum offload).
    ///
    /// Errors: [`Error::BadLength`] if `payload_len` exceeds [`MAX_PAYLOAD_LEN`];
    /// [`Error::BufferTooSmall`] if the buffer is shorter than [`buffer_len`](Self::buffer_len).
    /// Nothing is written on error.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        fill_checksum: bool,
    ) -> Result<()> {
        let total_len = u16::try_from(self.buffer_len()).map_err(|_| Error::BadLength)?;
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_tos(((self.dscp & 0x3f) << 2) | (self.ecn & 0x03));
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        packet.set_flags_frag(if self.dont_frag { field::FLAG_DF } else { 0 });
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        if fill_checksum {
            packet.fill_checksum();
        } else {
            packet.set_checksum(0);
        }
        Ok(())
    }
}

/// IANA keyword for a protocol number, as printed by the `Display` impls of the IP reprs.
pub(super) struct ProtocolName(pub(super) IpProtocol);

impl fmt::Display for ProtocolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Icmpv6 => f.write_str("ICMPv6"),
            IpProtocol::HopByHop => f.write_str("HOPOPT"),
            IpProtocol::Routing => f.write_str("IPv6-Route"),
            IpProtocol::Fragment => f.write_str("IPv6-Frag"),
            IpProtocol::NoNextHeader => f.write_str("IPv6-NoNxt"),
            IpProtocol::DestOpts => f.write_str("IPv6-Opts"),
            IpProtocol::Unknown(n) => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for Repr {
    /// `IPv4 198.18.0.1 > 198.18.0.2 proto=TCP ttl=64 len=40`, where `len` is the payload
    /// length; ` ecn=N` is appended when ECN is non-zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv4 {} > {} proto={} ttl={} len={}",
            self.src_addr,
            self.dst_addr,
            ProtocolName(self.protocol),
            self.ttl,
            self.payload_len
        )?;
        if self.ecn != 0 {
            write!(f, " ecn={}", self.ecn)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A SYN from 198.18.0.1:41716 to 198.18.0.2:80 as Linux sends it: DF, TTL 64, 40 bytes of
    /// TCP (MSS 1460, SACK-permitted, timestamps, NOP, window scale 7). IP header checksum
    /// 0x924e, computed independently (Python) and checked below with our code and etherparse.
    #[rustfmt::skip]
    const SYN: [u8; 60] = [
        // IPv4 header, one 32-bit word per row as in RFC 791 §3.1
        0x45, 0x00, 0x00, 0x3c, // version 4, IHL 5, ToS 0, total length 60
        0x1c, 0x46, 0x40, 0x00, // identification, DF, fragment offset 0
        0x40, 0x06, 0x92, 0x4e, // TTL 64, TCP, header checksum
        0xc6, 0x12, 0x00, 0x01, // 198.18.0.1
        0xc6, 0x12, 0x00, 0x02, // 198.18.0.2
        // TCP header with options
        0xa2, 0xf4, 0x00, 0x50, 0x3f, 0x2a, 0x9c, 0x01, 0x00, 0x00, 0x00, 0x00,
        0xa0, 0x02, 0xfa, 0xf0, 0xe9, 0xfc, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
        0x04, 0x02, 0x08, 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x03, 0x03, 0x07,
    ];

    /// An IGMPv2 membership report for 239.1.2.3 with the Router Alert option (RFC 2113), as
    /// hosts send them: IHL = 6, ToS 0xc0 (CS6), TTL 1, protocol 2.
    #[rustfmt::skip]
    const IGMP_WITH_OPTIONS: [u8; 32] = [
        0x46, 0xc0, 0x00, 0x20, // version 4, IHL 6, ToS 0xc0, total length 32
        0x00, 0x00, 0x40, 0x00, // identification 0, DF
        0x01, 0x02, 0x2d, 0x00, // TTL 1, IGMP, header checksum
        0xc6, 0x12, 0x00, 0x01, // 198.18.0.1
        0xef, 0x01, 0x02, 0x03, // 239.1.2.3
        0x94, 0x04, 0x00, 0x00, // option: Router Alert, length 4, value 0
        0x16, 0x00, 0xf8, 0xfa, 0xef, 0x01, 0x02, 0x03, // IGMPv2 report
    ];

    /// A pure ACK (40 bytes of IP) in a minimum-size Ethernet frame: 6 bytes of padding follow
    /// Total Length. ECN bits = ECT(0).
    #[rustfmt::skip]
    const ACK_PADDED: [u8; 46] = [
        0x45, 0x02, 0x00, 0x28, // version 4, IHL 5, ECT(0), total length 40
        0x1c, 0x47, 0x40, 0x00, // identification, DF
        0x40, 0x06, 0x92, 0x5f, // TTL 64, TCP, header checksum
        0xc6, 0x12, 0x00, 0x01, // 198.18.0.1
        0xc6, 0x12, 0x00, 0x02, // 198.18.0.2
        0xa2, 0xf4, 0x00, 0x50, 0x3f, 0x2a, 0x9c, 0x02, 0x99, 0x88, 0x77, 0x66, // TCP
        0x50, 0x10, 0x01, 0xf6, 0x92, 0x56, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // Ethernet padding
    ];

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    #[test]
    fn parses_captured_syn_field_by_field() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.ihl(), 5);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.tos(), 0);
        assert_eq!(p.dscp(), 0);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.total_len(), 60);
        assert_eq!(p.ident(), 0x1c46);
        assert!(!p.reserved_flag());
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Tcp);
        assert_eq!(p.checksum(), 0x924e);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), A);
        assert_eq!(p.dst_addr(), B);
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload(), &SYN[20..]);
        // The checksum agrees with the RFC 1071 sum of the header with the field zeroed.
        let mut zeroed = SYN;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum::checksum(&zeroed[..20]), 0x924e);

        let repr = Repr::parse(&p, true).unwrap();
        assert_eq!(
            repr,
            Repr {
                src_addr: A,
                dst_addr: B,
                protocol: IpProtocol::Tcp,
                payload_len: 40,
                ttl: 64,
                ident: 0x1c46,
                dont_frag: true,
                dscp: 0,
                ecn: 0,
            }
        );
        assert_eq!(
            repr.to_string(),
            "IPv4 198.18.0.1 > 198.18.0.2 proto=TCP ttl=64 len=40"
        );

        // Re-emitting the repr reproduces the captured header byte for byte.
        let mut out = [0u8; 60];
        let mut q = Packet::new_unchecked(&mut out[..]);
        repr.emit(&mut q, true).unwrap();
        q.payload_mut().copy_from_slice(&SYN[20..]);
        assert_eq!(out, SYN);
    }

    #[test]
    fn options_are_skipped_and_exposed() {
        let p = Packet::new_checked(&IGMP_WITH_OPTIONS[..]).unwrap();
        assert_eq!(p.ihl(), 6);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &IGMP_WITH_OPTIONS[24..]);
        assert_eq!(
            p.payload()[0],
            0x16,
            "payload starts at the IGMP type, after the option"
        );
        assert_eq!(p.dscp(), 48);
        assert_eq!(p.ttl(), 1);
        assert_eq!(p.protocol(), IpProtocol::Unknown(2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(239, 1, 2, 3));
        assert!(p.verify_checksum(), "checksum covers the options too");
        let repr = Repr::parse(&p, true).unwrap();
        assert_eq!(repr.payload_len, 8);
        assert_eq!(repr.protocol, IpProtocol::Unknown(2));
        assert_eq!(
            repr.to_string(),
            "IPv4 198.18.0.1 > 239.1.2.3 proto=2 ttl=1 len=8"
        );

        // Corrupting an option byte breaks the checksum: options are inside the covered header.
        let mut bad = IGMP_WITH_OPTIONS;
        bad[21] ^= 0x01;
        let p = Packet::new_checked(&bad[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Repr::parse(&p, true), Err(Error::BadChecksum));
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let p = Packet::new_checked(&ACK_PADDED[..]).unwrap();
        assert_eq!(p.total_len(), 40);
        assert_eq!(p.payload(), &ACK_PADDED[20..40]);
        assert_eq!(p.ecn(), 2);
        assert!(p.verify_checksum());
        let repr = Repr::parse(&p, true).unwrap();
        assert_eq!(repr.payload_len, 20);
        assert_eq!(repr.ecn, 2);
        assert_eq!(
            repr.to_string(),
            "IPv4 198.18.0.1 > 198.18.0.2 proto=TCP ttl=64 len=20 ecn=2"
        );
    }

    #[test]
    fn every_short_buffer_is_truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&SYN[..len]),
                Err(Error::Truncated),
                "len {len}"
            );
            let p = Packet::new_unchecked(&SYN[..len]);
            assert_eq!(Repr::parse(&p, false), Err(Error::Truncated), "len {len}");
        }
    }

    #[test]
    fn every_wrong_version_is_rejected() {
        for version in (0u8..16).filter(|&v| v != 4) {
            let mut b = SYN;
            b[0] = (version << 4) | 5;
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(Error::BadVersion),
                "version {version}"
            );
        }
    }

    #[test]
    fn ihl_below_five_is_rejected() {
        for ihl in 0u8..5 {
            let mut b = SYN;
            b[0] = 0x40 | ihl;
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(Error::BadHeaderLength),
                "ihl {ihl}"
            );
        }
    }

    #[test]
    fn ihl_past_the_buffer_is_rejected() {
        // A 20-byte buffer cannot hold IHL 6..15; a 24-byte one cannot hold IHL 7..15.
        for ihl in 6u8..16 {
            let mut b = [0u8; 20];
            b.copy_from_slice(&SYN[..20]);
            b[0] = 0x40 | ihl;
            b[3] = 20;
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(Error::BadHeaderLength),
                "ihl {ihl}"
            );
        }
        for ihl in 7u8..16 {
            let mut b = IGMP_WITH_OPTIONS;
            b[0] = 0x40 | ihl;
            assert_eq!(
                Packet::new_checked(&b[..24]),
                Err(Error::BadHeaderLength),
                "ihl {ihl}"
            );
        }
    }

    #[test]
    fn total_length_out_of_range_is_rejected() {
        // Past the buffer: one byte more than we have, and the maximum.
        for total in [61u16, 100, u16::MAX] {
            let mut b = SYN;
            b[2..4].copy_from_slice(&total.to_be_bytes());
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(Error::BadLength),
                "total {total}"
            );
        }
        // Shorter than the header (20), and shorter than a header with options (24).
        for total in 0u16..20 {
            let mut b = SYN;
            b[2..4].copy_from_slice(&total.to_be_bytes());
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(Error::BadLength),
                "total {total}"
            );
        }
        for total in 0u16..24 {
            let mut b = IGMP_WITH_OPTIONS;
            b[2..4].copy_from_slice(&total.to_be_bytes());
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(Error::BadLength),
                "total {total}"
            );
        }
        // Boundaries that are fine: total = header (empty payload), total = buffer.
        let mut b = SYN;
        b[2..4].copy_from_slice(&20u16.to_be_bytes());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload(), &[] as &[u8]);
    }

    #[test]
    fn bad_checksum_is_reported_only_when_verifying() {
        for byte in [0usize, 1, 4, 8, 9, 10, 11, 15, 19] {
            let mut b = SYN;
            b[byte] ^= 0x01;
            let p = Packet::new_unchecked(&b[..]);
            if p.check_len().is_err() {
                continue; // flipping the version/IHL byte makes a different error
            }
            assert_eq!(
                Repr::parse(&p, true),
                Err(Error::BadChecksum),
                "byte {byte}"
            );
            assert!(Repr::parse(&p, false).is_ok(), "byte {byte}");
        }
        // The payload is not covered by the IP header checksum.
        let mut b = SYN;
        b[40] ^= 0xff;
        assert!(Repr::parse(&Packet::new_checked(&b[..]).unwrap(), true).is_ok());
    }

    #[test]
    fn fragments_parse_and_are_flagged() {
        let mut b = SYN;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_more_frags(true);
        p.fill_checksum();
        assert!(p.more_frags() && p.dont_frag() && p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert!(Repr::parse(&p, true).is_ok());

        p.set_more_frags(false);
        p.set_frag_offset(1480);
        p.fill_checksum();
        assert!(!p.more_frags() && p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(
            &p.as_ref()[6..8],
            &[0x40, 185],
            "offset is stored in 8-byte units"
        );
        assert!(Repr::parse(&p, true).is_ok());

        p.set_frag_offset(65535); // largest: 8191 units; low bits dropped
        assert_eq!(p.frag_offset(), 65528);
        assert!(
            p.dont_frag() && !p.more_frags(),
            "offset setter keeps the flags"
        );
        p.set_dont_frag(false);
        assert_eq!(p.frag_offset(), 65528, "flag setter keeps the offset");
        p.set_frag_offset(0);
        assert!(!p.is_fragment());
    }

    #[test]
    fn emit_checks_sizes() {
        let repr = Repr::new(A, B, IpProtocol::Tcp, 40);
        assert_eq!(repr.header_len(), 20);
        assert_eq!(repr.buffer_len(), 60);
        let mut small = [0xaau8; 59];
        assert_eq!(
            repr.emit(&mut Packet::new_unchecked(&mut small[..]), true),
            Err(Error::BufferTooSmall)
        );
        assert!(
            small.iter().all(|&b| b == 0xaa),
            "nothing is written on error"
        );

        let big = Repr::new(A, B, IpProtocol::Udp, MAX_PAYLOAD_LEN + 1);
        let mut buf = vec![0u8; 70000];
        assert_eq!(
            big.emit(&mut Packet::new_unchecked(&mut buf[..]), true),
            Err(Error::BadLength)
        );
        let huge = Repr::new(A, B, IpProtocol::Udp, usize::MAX);
        assert_eq!(huge.buffer_len(), usize::MAX);
        assert_eq!(
            huge.emit(&mut Packet::new_unchecked(&mut buf[..]), true),
            Err(Error::BadLength)
        );

        let max = Repr::new(A, B, IpProtocol::Udp, MAX_PAYLOAD_LEN);
        max.emit(&mut Packet::new_unchecked(&mut buf[..]), true)
            .unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.total_len(), u16::MAX);
        assert_eq!(Repr::parse(&p, true), Ok(max));
    }

    #[test]
    fn emit_without_checksum_zeroes_the_field() {
        let mut buf = SYN;
        let repr = Repr::parse(&Packet::new_checked(&SYN[..]).unwrap(), true).unwrap();
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]), false)
            .unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.checksum(), 0);
        assert_eq!(Repr::parse(&p, true), Err(Error::BadChecksum));
        assert_eq!(Repr::parse(&p, false), Ok(repr));
    }

    #[test]
    fn setters_touch_only_their_bits() {
        let mut b = SYN;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_dscp(46);
        p.set_ecn(3);
        assert_eq!((p.dscp(), p.ecn(), p.tos()), (46, 3, 0xbb));
        p.set_ecn(1);
        assert_eq!((p.dscp(), p.ecn()), (46, 1));
        p.set_header_len(24);
        assert_eq!((p.version(), p.ihl()), (4, 6));
        p.set_version(6);
        assert_eq!((p.version(), p.ihl()), (6, 6));
    }

    #[test]
    fn etherparse_agrees_on_the_literals() {
        for bytes in [&SYN[..], &IGMP_WITH_OPTIONS[..], &ACK_PADDED[..]] {
            let theirs = etherparse::Ipv4HeaderSlice::from_slice(bytes).unwrap();
            let ours = Packet::new_checked(bytes).unwrap();
            assert_eq!(theirs.to_header().calc_header_checksum(), ours.checksum());
            assert_eq!(theirs.options(), ours.options());
            assert_eq!(
                usize::from(theirs.payload_len().unwrap()),
                ours.payload().len()
            );
        }
    }

    fn addr() -> impl Strategy<Value = Ipv4Addr> {
        any::<[u8; 4]>().prop_map(Ipv4Addr::from)
    }

    fn protocol() -> impl Strategy<Value = IpProtocol> {
        any::<u8>().prop_map(IpProtocol::from)
    }

    prop_compose! {
        fn repr()(
            src_addr in addr(),
            dst_addr in addr(),
            protocol in protocol(),
            payload_len in prop_oneof![0usize..1600, (MAX_PAYLOAD_LEN - 100)..=MAX_PAYLOAD_LEN],
            ttl in any::<u8>(),
            ident in any::<u16>(),
            dont_frag in any::<bool>(),
            dscp in 0u8..64,
            ecn in 0u8..4,
        ) -> Repr {
            Repr { src_addr, dst_addr, protocol, payload_len, ttl, ident, dont_frag, dscp, ecn }
        }
    }

    /// Fields for a header written through the view setters, options and fragments included.
    #[derive(Debug, Clone)]
    struct Raw {
        repr: Repr,
        options: Vec<u8>,
        more_frags: bool,
        frag_units: u16,
    }

    prop_compose! {
        fn raw()(
            repr in repr().prop_map(|r| Repr { payload_len: r.payload_len % 300, ..r }),
            words in 0usize..=10,
            option_bytes in any::<[u8; 40]>(),
            more_frags in any::<bool>(),
            frag_units in 0u16..8192,
        ) -> Raw {
            Raw { repr, options: option_bytes[..words * 4].to_vec(), more_frags, frag_units }
        }
    }

    /// Touches every accessor of a checked view; must not panic on any input.
    fn exercise(bytes: &[u8]) {
        let unchecked = Packet::new_unchecked(bytes);
        let parsed = Repr::parse(&unchecked, true);
        let _ = Repr::parse(&unchecked, false);
        let Ok(p) = Packet::new_checked(bytes) else {
            assert!(parsed.is_err());
            return;
        };
        let _ = (
            p.version(),
            p.ihl(),
            p.header_len(),
            p.tos(),
            p.dscp(),
            p.ecn(),
        );
        let _ = (
            p.total_len(),
            p.ident(),
            p.reserved_flag(),
            p.dont_frag(),
            p.more_frags(),
        );
        let _ = (
            p.frag_offset(),
            p.is_fragment(),
            p.ttl(),
            p.protocol(),
            p.checksum(),
        );
        let _ = (
            p.src_addr(),
            p.dst_addr(),
            p.options(),
            p.payload(),
            p.verify_checksum(),
        );
        assert_eq!(p.options().len(), p.header_len() - HEADER_LEN);
        assert_eq!(
            p.header_len() + p.payload().len(),
            usize::from(p.total_len())
        );
        let no_verify = Repr::parse(&p, false).expect("a checked view parses without verify");
        assert_eq!(no_verify.payload_len, p.payload().len());
        let _ = no_verify.to_string();
        assert_eq!(parsed.is_ok(), p.verify_checksum());

        // After filling the checksum, verification succeeds and nothing else changes.
        let mut copy = bytes.to_vec();
        let mut q = Packet::new_checked(&mut copy[..]).expect("same bytes");
        q.fill_checksum();
        let _ = (q.options_mut().len(), q.payload_mut().len());
        assert_eq!(Repr::parse(&q, true), Ok(no_verify));
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(repr in repr(), padding in 0usize..8) {
            let mut buf = vec![0u8; repr.buffer_len() + padding];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut p, true).unwrap();
            prop_assert_eq!(p.payload_mut().len(), repr.payload_len);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert!(!p.is_fragment());
            prop_assert_eq!(Repr::parse(&p, true), Ok(repr));
            prop_assert_eq!(p.payload().len(), repr.payload_len);
        }

        #[test]
        fn our_emit_parsed_by_etherparse(repr in repr()) {
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]), true).unwrap();
            let h = etherparse::Ipv4HeaderSlice::from_slice(&buf).unwrap();
            prop_assert_eq!(h.source_addr(), repr.src_addr);
            prop_assert_eq!(h.destination_addr(), repr.dst_addr);
            prop_assert_eq!(h.protocol().0, u8::from(repr.protocol));
            prop_assert_eq!(usize::from(h.payload_len().unwrap()), repr.payload_len);
            prop_assert_eq!(h.ttl(), repr.ttl);
            prop_assert_eq!(h.identification(), repr.ident);
            prop_assert_eq!(h.dont_fragment(), repr.dont_frag);
            prop_assert!(!h.more_fragments());
            prop_assert_eq!(h.fragments_offset().value(), 0);
            prop_assert_eq!(h.dcp().value(), repr.dscp);
            prop_assert_eq!(h.ecn().value(), repr.ecn);
            prop_assert_eq!(h.ihl(), 5);
            prop_assert!(h.options().is_empty());
            prop_assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
        }

        #[test]
        fn our_setters_parsed_by_etherparse(raw in raw()) {
            let header_len = HEADER_LEN + raw.options.len();
            let total = header_len + raw.repr.payload_len;
            let mut buf = vec![0u8; total];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            p.set_version(4);
            p.set_header_len(header_len);
            p.set_dscp(raw.repr.dscp);
            p.set_ecn(raw.repr.ecn);
            p.set_total_len(total as u16);
            p.set_ident(raw.repr.ident);
            p.set_dont_frag(raw.repr.dont_frag);
            p.set_more_frags(raw.more_frags);
            p.set_frag_offset(raw.frag_units * 8);
            p.set_ttl(raw.repr.ttl);
            p.set_protocol(raw.repr.protocol);
            p.set_src_addr(raw.repr.src_addr);
            p.set_dst_addr(raw.repr.dst_addr);
            p.options_mut().copy_from_slice(&raw.options);
            p.fill_checksum();

            let h = etherparse::Ipv4HeaderSlice::from_slice(&buf).unwrap();
            prop_assert_eq!(usize::from(h.ihl()) * 4, header_len);
            prop_assert_eq!(h.options(), &raw.options[..]);
            prop_assert_eq!(usize::from(h.total_len()), total);
            prop_assert_eq!(h.more_fragments(), raw.more_frags);
            prop_assert_eq!(h.dont_fragment(), raw.repr.dont_frag);
            prop_assert_eq!(h.fragments_offset().value(), raw.frag_units);
            prop_assert_eq!(h.dcp().value(), raw.repr.dscp);
            prop_assert_eq!(h.ecn().value(), raw.repr.ecn);
            prop_assert_eq!(h.identification(), raw.repr.ident);
            prop_assert_eq!(h.ttl(), raw.repr.ttl);
            prop_assert_eq!(h.protocol().0, u8::from(raw.repr.protocol));
            prop_assert_eq!(h.source_addr(), raw.repr.src_addr);
            prop_assert_eq!(h.destination_addr(), raw.repr.dst_addr);
            prop_assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());

            // And we read back what we wrote, fragment or not.
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(p.is_fragment(), raw.more_frags || raw.frag_units != 0);
            prop_assert_eq!(Repr::parse(&p, true), Ok(raw.repr));
        }

        #[test]
        fn etherparse_output_parsed_by_us(
            raw in raw(),
            payload_byte in any::<u8>(),
            padding in 0usize..8,
        ) {
            let r = raw.repr;
            let header = etherparse::Ipv4Header {
                dscp: etherparse::IpDscp::try_new(r.dscp).unwrap(),
                ecn: etherparse::IpEcn::try_new(r.ecn).unwrap(),
                total_len: (HEADER_LEN + raw.options.len() + r.payload_len) as u16,
                identification: r.ident,
                dont_fragment: r.dont_frag,
                more_fragments: raw.more_frags,
                fragment_offset: etherparse::IpFragOffset::try_new(raw.frag_units).unwrap(),
                time_to_live: r.ttl,
                protocol: etherparse::IpNumber(u8::from(r.protocol)),
                header_checksum: 0,
                source: r.src_addr.octets(),
                destination: r.dst_addr.octets(),
                options: etherparse::Ipv4Options::try_from(&raw.options[..]).unwrap(),
            };
            let mut buf = Vec::new();
            header.write(&mut buf).unwrap();
            buf.extend(core::iter::repeat_n(payload_byte, r.payload_len + padding));

            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(p.version(), 4);
            prop_assert_eq!(p.header_len(), header.header_len());
            prop_assert_eq!(p.options(), header.options.as_slice());
            prop_assert_eq!(p.total_len(), header.total_len);
            prop_assert_eq!(p.ident(), header.identification);
            prop_assert_eq!(p.dont_frag(), header.dont_fragment);
            prop_assert_eq!(p.more_frags(), header.more_fragments);
            prop_assert_eq!(p.frag_offset(), header.fragment_offset.byte_offset());
            prop_assert_eq!(p.is_fragment(), header.is_fragmenting_payload());
            prop_assert_eq!(p.ttl(), header.time_to_live);
            prop_assert_eq!(p.checksum(), header.calc_header_checksum());
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(p.payload().len(), r.payload_len);
            prop_assert!(p.payload().iter().all(|&b| b == payload_byte));
            prop_assert_eq!(Repr::parse(&p, true), Ok(r));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            exercise(&bytes);
        }

        #[test]
        fn plausible_bytes_never_panic(
            mut bytes in proptest::collection::vec(any::<u8>(), 20..100),
            ihl in 0u8..16,
            total in 0u16..110,
        ) {
            // Steer past the early checks so the later ones and the accessors get exercised.
            bytes[0] = 0x40 | ihl;
            bytes[2..4].copy_from_slice(&total.to_be_bytes());
            exercise(&bytes);
        }
    }
}
