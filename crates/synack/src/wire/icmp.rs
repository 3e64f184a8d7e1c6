//! What ICMP for IPv4 ([`icmpv4`](super::icmpv4), RFC 792) and ICMP for IPv6
//! ([`icmpv6`](super::icmpv6), RFC 4443) share: the 8-byte header (type, code, checksum, one
//! word whose meaning depends on the type), echo messages, and error messages that quote the
//! start of the packet that caused them. The quote is read here, once, with the IP views
//! ([`ipv4::Packet`], [`ipv6::Packet`] and the extension-header walk of [`ipv6ext`]), as
//! [`Quote`]; the two family modules only name their types and codes and handle the checksum
//! (IPv6's covers a pseudo-header).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Identifier          |        Sequence Number        |  echo
//! |             unused, MTU, pointer (per type and family)        |  errors
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  echo data, or the start of the invoking packet ...
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::net::{IpAddr, SocketAddr};

use super::{Error, IpProtocol, Result, be16, be32, ipv4, ipv6, ipv6ext, put16, put32};

/// Field offsets of the header both families share (RFC 792, RFC 4443 §2.1).
pub(super) mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    /// The second 32-bit word, whose meaning depends on the type.
    pub const REST_OF_HEADER: usize = 4;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ_NO: usize = 6;
    pub const DATA: usize = 8;
}

/// Length of the fixed header: the shortest valid message of either family.
pub const HEADER_LEN: usize = field::DATA;

/// RFC 792's "Internet Header + 64 bits of Original Data": the upper-layer bytes a quote must
/// hold for this module to read it (ports, and a TCP sequence number).
pub const MIN_QUOTED_PAYLOAD: usize = 8;

/// Defines a one-byte wire enum with an `Unknown(u8)` catch-all, both `From` conversions and a
/// `Display` that prints the short name (or `<unknown_label>=<value>`).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident (unknown = $unknown:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this enum does not name.
            Unknown(u8),
        }

        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                match v {
                    $( $value => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                match v {
                    $( $name::$variant => $value, )*
                    $name::Unknown(other) => other,
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self {
                    $( $name::$variant => f.write_str($text), )*
                    $name::Unknown(v) => write!(f, concat!($unknown, "={}"), v),
                }
            }
        }
    };
}

pub(super) use wire_enum;

/// What distinguishes ICMP from ICMPv6 in the shared [`Packet`] view: the message types.
/// The checksum differs too (ICMPv6's covers a pseudo-header, RFC 4443 §2.3), so each family
/// module adds its own `verify_checksum` and `fill_checksum`, and its type-specific fields.
pub trait Family {
    /// The message types the family names.
    type Message: Copy + From<u8> + Into<u8>;
}

/// A view over the bytes of one ICMP or ICMPv6 message (`icmpv4::Packet`,
/// `icmpv6::Packet`). It must span exactly the message (the IP payload): its length is what
/// the checksum covers and where the data ends.
///
/// After [`new_checked`](Self::new_checked) succeeds no accessor panics. With
/// [`new_unchecked`](Self::new_unchecked) the caller promises at least [`HEADER_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>, F> {
    pub(super) buffer: T,
    family: PhantomData<F>,
}

impl<T: AsRef<[u8]>, F: Family> Packet<T, F> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet {
            buffer,
            family: PhantomData,
        }
    }

    /// Wraps `buffer` after checking that it holds the fixed header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Truncated)` if the buffer is shorter than the 8-byte header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The message type.
    pub fn msg_type(&self) -> F::Message {
        F::Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The raw message code (its meaning depends on the type).
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The echo identifier (meaningful for echo request and reply).
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// The echo sequence number (meaningful for echo request and reply).
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQ_NO)
    }

    /// The whole second header word, whatever the type.
    pub fn rest_of_header(&self) -> u32 {
        be32(self.buffer.as_ref(), field::REST_OF_HEADER)
    }

    /// The bytes after the 8-byte header: echo data, or the quoted invoking packet.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    /// The quoted invoking packet of an error message, read; see [`Quote::parse`].
    pub fn quote(&self) -> Result<Quote<'_>> {
        Quote::parse(self.data())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>, F: Family> Packet<T, F> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: F::Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the raw message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::ECHO_SEQ_NO, value);
    }

    /// Sets the whole second header word.
    pub fn set_rest_of_header(&mut self, value: u32) {
        put32(self.buffer.as_mut(), field::REST_OF_HEADER, value);
    }

    /// The bytes after the header, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }
}

impl<T: AsRef<[u8]>, F> AsRef<[u8]> for Packet<T, F> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The data of a message of either family, after the length and (with `checksum_ok` given)
/// checksum checks both `Repr::parse`s start with.
pub(super) fn parse_data<'a, T: AsRef<[u8]> + ?Sized, F: Family>(
    packet: &Packet<&'a T, F>,
    checksum_ok: Option<bool>,
) -> Result<&'a [u8]> {
    packet.check_len()?;
    if checksum_ok == Some(false) {
        return Err(Error::BadChecksum);
    }
    let bytes: &'a [u8] = packet.buffer.as_ref();
    Ok(&bytes[field::DATA..])
}

/// Writes the header both families share (checksum zero) and `data` into the first
/// `HEADER_LEN + data.len()` bytes of `packet`'s buffer, and returns a view over exactly the
/// message, for the family's checksum. `Err(BufferTooSmall)`, with nothing written, if the
/// buffer is shorter.
pub(super) fn emit_message<'b, T: AsRef<[u8]> + AsMut<[u8]>, F: Family>(
    packet: &'b mut Packet<T, F>,
    msg_type: F::Message,
    code: u8,
    rest_of_header: u32,
    data: &[u8],
) -> Result<Packet<&'b mut [u8], F>> {
    let len = HEADER_LEN + data.len();
    let buf = packet
        .buffer
        .as_mut()
        .get_mut(..len)
        .ok_or(Error::BufferTooSmall)?;
    let mut out = Packet::new_unchecked(buf);
    out.set_msg_type(msg_type);
    out.set_msg_code(code);
    out.set_checksum(0);
    out.set_rest_of_header(rest_of_header);
    out.data_mut().copy_from_slice(data);
    Ok(out)
}

/// The rest-of-header word of an echo message.
pub(super) fn echo_word(ident: u16, seq_no: u16) -> u32 {
    u32::from(ident) << 16 | u32::from(seq_no)
}

/// `<name> id=<ident> seq=<seq> len=<data length>`: how both families show echo messages.
pub(super) fn fmt_echo(
    f: &mut fmt::Formatter<'_>,
    proto: &str,
    msg: impl fmt::Display,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) -> fmt::Result {
    write!(
        f,
        "{proto} {msg} id={ident} seq={seq_no} len={}",
        data.len()
    )
}

/// Appends " for <quoted packet>" when the quote is readable.
pub(super) fn fmt_quote(f: &mut fmt::Formatter<'_>, invoking: &[u8]) -> fmt::Result {
    match Quote::parse(invoking) {
        Ok(q) => write!(f, " for {q}"),
        Err(_) => Ok(()),
    }
}

/// The start of the packet an ICMP or ICMPv6 error message was sent about, as quoted in the
/// message: its IP header (IPv4 with options; IPv6 with its extension headers, walked) and at
/// least the first [`MIN_QUOTED_PAYLOAD`] bytes of the upper layer, which for TCP and UDP
/// hold the ports (and for TCP the sequence number), so the error can be matched to a
/// connection (RFC 1122 §4.2.3.9, RFC 5927 §4.1).
///
/// The quote is normally truncated, so its length fields are reported but not checked against
/// the bytes present, and an IPv4 header checksum is not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote<'a> {
    /// The quoted IP header (with options or extension headers).
    header: &'a [u8],
    /// The upper-layer protocol.
    protocol: IpProtocol,
    /// Fragment offset in bytes (IPv4 header, or an IPv6 Fragment header); 0 otherwise.
    frag_offset: u16,
    /// The quoted upper-layer bytes; at least [`MIN_QUOTED_PAYLOAD`].
    payload: &'a [u8],
}

impl<'a> Quote<'a> {
    /// Reads a quoted packet of either family (by its version nibble).
    ///
    /// Errors: fewer bytes than the fixed IP header, an IPv6 extension header cut off, or
    /// fewer than 8 upper-layer bytes → `Truncated`; a version other than 4 or 6 →
    /// `BadVersion`; an IPv4 IHL below 5 or past the end of the quote → `BadHeaderLength`.
    pub fn parse(bytes: &'a [u8]) -> Result<Quote<'a>> {
        let quote = match bytes.first().map(|b| b >> 4) {
            None => return Err(Error::Truncated),
            Some(4) => {
                if bytes.len() < ipv4::HEADER_LEN {
                    return Err(Error::Truncated);
                }
                let p = ipv4::Packet::new_unchecked(bytes);
                let header_len = p.header_len();
                if header_len < ipv4::HEADER_LEN || header_len > bytes.len() {
                    return Err(Error::BadHeaderLength);
                }
                Quote {
                    header: &bytes[..header_len],
                    protocol: p.protocol(),
                    frag_offset: p.frag_offset(),
                    payload: &bytes[header_len..],
                }
            }
            Some(6) => {
                if bytes.len() < ipv6::HEADER_LEN {
                    return Err(Error::Truncated);
                }
                let p = ipv6::Packet::new_unchecked(bytes);
                let rest = &bytes[ipv6::HEADER_LEN..];
                let chain = ipv6ext::Chain::walk(u8::from(p.next_header()), rest)
                    .map_err(|_| Error::Truncated)?;
                let frag_offset = chain.fragment().map_or(0, |h| {
                    ipv6ext::FragmentHeader::new_unchecked(&rest[h.offset..]).frag_offset()
                });
                let start = ipv6::HEADER_LEN + chain.upper_offset;
                Quote {
                    header: &bytes[..start],
                    protocol: IpProtocol::from(chain.upper),
                    frag_offset,
                    payload: &bytes[start.min(bytes.len())..],
                }
            }
            Some(_) => return Err(Error::BadVersion),
        };
        if quote.payload.len() < MIN_QUOTED_PAYLOAD {
            return Err(Error::Truncated);
        }
        Ok(quote)
    }

    pub fn is_ipv6(&self) -> bool {
        self.header[0] >> 4 == 6
    }

    /// The quoted IP header, options or extension headers included.
    pub fn header(&self) -> &'a [u8] {
        self.header
    }

    /// The original source address (ours, when we sent the packet).
    pub fn src_addr(&self) -> IpAddr {
        if self.is_ipv6() {
            IpAddr::V6(ipv6::Packet::new_unchecked(self.header).src_addr())
        } else {
            IpAddr::V4(ipv4::Packet::new_unchecked(self.header).src_addr())
        }
    }

    /// The original destination address.
    pub fn dst_addr(&self) -> IpAddr {
        if self.is_ipv6() {
            IpAddr::V6(ipv6::Packet::new_unchecked(self.header).dst_addr())
        } else {
            IpAddr::V4(ipv4::Packet::new_unchecked(self.header).dst_addr())
        }
    }

    /// The upper-layer protocol (after any IPv6 extension headers).
    pub fn protocol(&self) -> IpProtocol {
        self.protocol
    }

    /// The original packet's length as its header states it: IPv4 Total Length, or the IPv6
    /// fixed header plus Payload Length (RFC 1191 §5 uses it when a router reports no MTU).
    pub fn ip_len(&self) -> usize {
        if self.is_ipv6() {
            ipv6::HEADER_LEN + usize::from(ipv6::Packet::new_unchecked(self.header).payload_len())
        } else {
            usize::from(ipv4::Packet::new_unchecked(self.header).total_len())
        }
    }

    /// The original TTL or Hop Limit, as it reached the reporting node.
    pub fn hop_limit(&self) -> u8 {
        if self.is_ipv6() {
            ipv6::Packet::new_unchecked(self.header).hop_limit()
        } else {
            ipv4::Packet::new_unchecked(self.header).ttl()
        }
    }

    /// The original fragment offset in bytes. Ports and sequence number are only present when
    /// it is zero.
    pub fn frag_offset(&self) -> u16 {
        self.frag_offset
    }

    /// The quoted upper-layer bytes: at least 8.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The TCP or UDP source port (upper-layer bytes 0–1).
    pub fn src_port(&self) -> u16 {
        be16(self.payload, 0)
    }

    /// The TCP or UDP destination port (upper-layer bytes 2–3).
    pub fn dst_port(&self) -> u16 {
        be16(self.payload, 2)
    }

    /// The TCP sequence number (upper-layer bytes 4–7), to check against SND.UNA..SND.NXT
    /// (RFC 5927 §4.1).
    pub fn tcp_seq_no(&self) -> u32 {
        be32(self.payload, 4)
    }
}

impl fmt::Display for Quote<'_> {
    /// `TCP 198.18.0.1:40000 > 198.18.0.2:80 seq=1`, `UDP [fd00::1]:53 > [fd00::2]:9`, or
    /// `proto=N SRC > DST` (also for a non-first fragment, which has no ports).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = self.frag_offset == 0;
        let src = SocketAddr::new(self.src_addr(), self.src_port());
        let dst = SocketAddr::new(self.dst_addr(), self.dst_port());
        match self.protocol {
            IpProtocol::Tcp if ports => {
                write!(f, "TCP {src} > {dst} seq={}", self.tcp_seq_no())
            }
            IpProtocol::Udp if ports => write!(f, "UDP {src} > {dst}"),
            other => write!(
                f,
                "proto={} {} > {}",
                u8::from(other),
                self.src_addr(),
                self.dst_addr()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn v4_quote(protocol: IpProtocol, frag_units: u16, ihl: u8, payload: &[u8]) -> Vec<u8> {
        let hl = usize::from(ihl) * 4;
        let mut b = vec![0u8; hl + payload.len()];
        b[0] = 0x40 | ihl;
        b[2..4].copy_from_slice(&1500u16.to_be_bytes());
        b[6..8].copy_from_slice(&frag_units.to_be_bytes());
        b[8] = 63;
        b[9] = u8::from(protocol);
        b[12..16].copy_from_slice(&[198, 18, 0, 2]);
        b[16..20].copy_from_slice(&[198, 18, 0, 1]);
        b[hl..].copy_from_slice(payload);
        b
    }

    const TCP_START: [u8; 8] = [0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 7];

    #[test]
    fn an_ipv4_quote_is_read_with_options() {
        let b = v4_quote(IpProtocol::Tcp, 0, 6, &TCP_START);
        let q = Quote::parse(&b).unwrap();
        assert_eq!(q.header().len(), 24);
        assert_eq!(q.src_addr(), IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        assert_eq!((q.src_port(), q.dst_port(), q.tcp_seq_no()), (40000, 80, 7));
        assert_eq!((q.ip_len(), q.hop_limit(), q.frag_offset()), (1500, 63, 0));
        assert_eq!(q.to_string(), "TCP 198.18.0.2:40000 > 198.18.0.1:80 seq=7");
        let frag = v4_quote(IpProtocol::Tcp, 185, 5, &TCP_START);
        let q = Quote::parse(&frag).unwrap();
        assert_eq!(q.frag_offset(), 1480);
        assert_eq!(q.to_string(), "proto=6 198.18.0.2 > 198.18.0.1");
    }

    #[test]
    fn an_ipv6_quote_is_read_past_its_extension_headers() {
        let mut b = vec![0u8; 40];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&24u16.to_be_bytes());
        b[6] = 60; // Destination Options
        b[7] = 9;
        b[8..24].copy_from_slice(&Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).octets());
        b[24..40].copy_from_slice(&Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).octets());
        b.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        b.extend_from_slice(&[0, 53, 0, 9, 0, 8, 0, 0]);
        let q = Quote::parse(&b).unwrap();
        assert_eq!(q.protocol(), IpProtocol::Udp);
        assert_eq!(q.header().len(), 48);
        assert_eq!((q.ip_len(), q.hop_limit()), (64, 9));
        assert_eq!(q.to_string(), "UDP [fd00::2]:53 > [fd00::1]:9");
    }

    #[test]
    fn bad_quotes_are_typed_errors() {
        assert_eq!(Quote::parse(&[]), Err(Error::Truncated));
        assert_eq!(Quote::parse(&[0x45; 19]), Err(Error::Truncated));
        assert_eq!(Quote::parse(&[0x55; 40]), Err(Error::BadVersion));
        let mut short_ihl = v4_quote(IpProtocol::Tcp, 0, 5, &TCP_START);
        short_ihl[0] = 0x44;
        assert_eq!(Quote::parse(&short_ihl), Err(Error::BadHeaderLength));
        let mut long_ihl = v4_quote(IpProtocol::Tcp, 0, 5, &TCP_START);
        long_ihl[0] = 0x4f;
        assert_eq!(Quote::parse(&long_ihl), Err(Error::BadHeaderLength));
        let no_ports = v4_quote(IpProtocol::Tcp, 0, 5, &TCP_START[..7]);
        assert_eq!(Quote::parse(&no_ports), Err(Error::Truncated));
        let mut v6 = vec![0x60u8; 40];
        v6[6] = 0; // Hop-by-Hop, cut off
        assert_eq!(Quote::parse(&v6), Err(Error::Truncated));
    }
}
