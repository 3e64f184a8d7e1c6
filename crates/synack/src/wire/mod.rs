//! Wire formats: a `Packet<T: AsRef<[u8]>>` view per protocol whose checked constructor validates
//! lengths once (after which no accessor panics), and a `Repr` holding the parsed, validated
//! meaning with `parse` and `emit`. Field offsets follow each RFC's header diagram.
//!
//! | module | protocol | reference |
//! |---|---|---|
//! | [`ipv4`] | IPv4 | RFC 791 |
//! | [`ipv6`] | IPv6 fixed header | RFC 8200 |
//! | [`ipv6ext`] | IPv6 extension headers, the Fragment header | RFC 8200 §4 |
//! | [`tcp`] | TCP header and options | RFC 9293 §3.1, RFC 7323, RFC 2018 |
//! | [`icmp`] | what both ICMPs share: header, the quoted packet | RFC 792, RFC 4443 |
//! | [`icmpv4`] | ICMP for IPv4 | RFC 792, RFC 1191 |
//! | [`icmpv6`] | ICMP for IPv6 | RFC 4443 |
//! | [`udp`] | UDP datagrams and their checksum | RFC 768, RFC 8200 §8.1 |
//! | [`checksum`] | Internet checksum | RFC 1071, RFC 1624 |
//! | [`cidr`] | addresses with their on-link prefix | RFC 4632 §3.1 |
//! | [`seq`] | TCP sequence numbers, modulo 2^32 | RFC 9293 §3.4 |

pub mod checksum;
pub mod cidr;
pub mod icmp;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6ext;
pub mod seq;
pub mod tcp;
pub mod udp;

/// The smallest link MTU synack works on: a 20-byte IPv4 header, a 20-byte TCP header and
/// TCP's smallest MSS, 88 bytes (Linux's `TCP_MIN_MSS`; the stack never announces less).
/// Runtimes and simulations refuse a smaller MTU instead of sending packets that do not fit
/// (re-exported as [`stack::MIN_MTU`](crate::stack::MIN_MTU)).
pub const MIN_MTU: u16 = 128;

use core::fmt;
use core::net::IpAddr;

/// Length of the IP header synack writes towards (or reads from) `a`, without options or
/// extension headers: 20 bytes for IPv4 (an IPv4-mapped IPv6 address included), 40 for IPv6.
pub fn ip_header_len(a: IpAddr) -> usize {
    match a.to_canonical() {
        IpAddr::V4(_) => ipv4::HEADER_LEN,
        IpAddr::V6(_) => ipv6::HEADER_LEN,
    }
}

/// Why a packet could not be parsed or emitted. Every malformed input maps to one of these;
/// no parser in this module panics on any input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the fixed part of the header.
    Truncated,
    /// The IP version field is not the one this parser handles.
    BadVersion,
    /// A header-length field (IPv4 IHL, TCP data offset) is below the minimum or points past
    /// the end of the buffer.
    BadHeaderLength,
    /// A length field (IPv4 total length, IPv6 payload length) disagrees with the buffer.
    BadLength,
    /// The checksum does not verify.
    BadChecksum,
    /// A TCP option is malformed: length 0 or 1, a length that runs past the header, or a
    /// known option with the wrong length.
    BadOption,
    /// A field holds a value this representation does not model (e.g. an ICMP type we do not
    /// parse into a `Repr`). The view still gives access to the raw fields.
    Unrecognized,
    /// An emit target buffer is too small for the representation.
    BufferTooSmall,
}

impl Error {
    /// A short stable name, usable as a counter key.
    pub fn name(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad-version",
            Error::BadHeaderLength => "bad-header-length",
            Error::BadLength => "bad-length",
            Error::BadChecksum => "bad-checksum",
            Error::BadOption => "bad-option",
            Error::Unrecognized => "unrecognized",
            Error::BufferTooSmall => "buffer-too-small",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::Truncated => "packet shorter than its fixed header",
            Error::BadVersion => "wrong IP version",
            Error::BadHeaderLength => "header length field out of range",
            Error::BadLength => "length field disagrees with the buffer",
            Error::BadChecksum => "checksum does not verify",
            Error::BadOption => "malformed TCP option",
            Error::Unrecognized => "field value not modelled",
            Error::BufferTooSmall => "buffer too small to emit into",
        };
        f.write_str(text)
    }
}

impl std::error::Error for Error {}

/// Result of parsing or emitting wire formats.
pub type Result<T> = core::result::Result<T, Error>;

/// IP protocol numbers (IPv4 "protocol", IPv6 "next header") that synack handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    Icmpv6,
    /// IPv6 hop-by-hop options extension header.
    HopByHop,
    /// IPv6 routing extension header.
    Routing,
    /// IPv6 fragment extension header.
    Fragment,
    /// IPv6 "no next header".
    NoNextHeader,
    /// IPv6 destination options extension header.
    DestOpts,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    /// Inlined: every received packet's header parse reads its protocol.
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            0 => IpProtocol::HopByHop,
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            43 => IpProtocol::Routing,
            44 => IpProtocol::Fragment,
            58 => IpProtocol::Icmpv6,
            59 => IpProtocol::NoNextHeader,
            60 => IpProtocol::DestOpts,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::HopByHop => 0,
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Routing => 43,
            IpProtocol::Fragment => 44,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::NoNextHeader => 59,
            IpProtocol::DestOpts => 60,
            IpProtocol::Unknown(v) => v,
        }
    }
}

/// Big-endian field helpers shared by the views. Callers have checked the length.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
