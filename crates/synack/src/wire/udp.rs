//! UDP datagrams (RFC 768), with the checksum rules of both families: over IPv4 a checksum
//! of zero means "none computed" and is accepted (RFC 768, RFC 1122 §4.1.3.4), and one that
//! computes to zero is sent as all ones; over IPv6 the checksum is mandatory and a datagram
//! carrying zero is discarded (RFC 8200 §8.1).
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |     Source      |   Destination   |
//! |      Port       |      Port       |
//! +--------+--------+--------+--------+
//! |                 |                 |
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! |          data octets ...
//! +---------------- ...
//! ```

use core::net::IpAddr;

use super::checksum;
use super::{Error, IpProtocol, Result, be16, put16};

/// Byte offsets of the header fields, as in the RFC 768 diagram.
mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// A view over a UDP datagram. [`Packet::new_checked`] validates that the header is there and
/// that the Length field (at least 8, at most the buffer) holds; bytes after Length (link
/// padding) are not part of the datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view whose accessors never panic: the header is present and Length is in range.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        let b = p.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(p.len());
        if len < HEADER_LEN || len > b.len() {
            return Err(Error::BadLength);
        }
        Ok(p)
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The Length field: header and data.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The datagram's data (up to Length).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// True if the checksum over the pseudo-header (RFC 768; RFC 8200 §8.1), header and data
    /// verifies. A zero checksum verifies over IPv4 (none was computed) and never over IPv6.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        let len = self.len();
        let mut c = checksum::pseudo_header(src, dst, IpProtocol::Udp, u32::from(len));
        c.add_bytes(&self.buffer.as_ref()[..usize::from(len)]);
        c.verifies()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v)
    }

    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v)
    }

    pub fn set_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v)
    }

    /// Computes and writes the checksum over Length bytes; a sum of zero goes out as all
    /// ones (RFC 768: zero would mean "no checksum").
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let len = self.len();
        let mut c = checksum::pseudo_header(src, dst, IpProtocol::Udp, u32::from(len));
        c.add_bytes(&self.buffer.as_ref()[..usize::from(len)]);
        let sum = match c.finish() {
            0 => 0xffff,
            s => s,
        };
        self.set_checksum(sum);
    }
}

/// A parsed UDP datagram: ports and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a checked datagram, verifying its checksum when `verify` is set
    /// ([`Error::BadChecksum`], which for IPv6 includes a zero checksum). Destination port 0
    /// is reserved (RFC 768 lists it for no service): [`Error::Unrecognized`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: IpAddr,
        dst: IpAddr,
        verify: bool,
    ) -> Result<Repr<'a>> {
        if verify && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        if packet.dst_port() == 0 {
            return Err(Error::Unrecognized);
        }
        let b: &'a [u8] = packet.buffer.as_ref();
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload: &b[HEADER_LEN..usize::from(packet.len())],
        })
    }

    /// Header and data.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram with its checksum into the front of `out`.
    /// [`Error::BufferTooSmall`] if it does not fit, [`Error::BadLength`] if it is longer
    /// than Length can say.
    pub fn emit(&self, out: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize> {
        let len = self.buffer_len();
        let len16 = u16::try_from(len).map_err(|_| Error::BadLength)?;
        let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        out[HEADER_LEN..].copy_from_slice(self.payload);
        let mut p = Packet::new_unchecked(out);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(len16);
        p.fill_checksum(src, dst);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const S4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    const D4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 77));
    const S6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 1));
    const D6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 2));

    fn emitted(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
        let r = Repr {
            src_port: 5353,
            dst_port: 53,
            payload,
        };
        let mut b = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit(&mut b, src, dst), Ok(8 + payload.len()));
        b
    }

    #[test]
    fn emit_writes_the_rfc_768_header_byte_for_byte() {
        let b = emitted(S4, D4, b"dns?");
        assert_eq!(&b[..6], &[0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c]);
        assert_eq!(&b[8..], b"dns?");
        // The checksum as etherparse computes it over the same pseudo-header.
        let (IpAddr::V4(s), IpAddr::V4(d)) = (S4, D4) else {
            unreachable!()
        };
        let h = etherparse::UdpHeader::with_ipv4_checksum(
            5353,
            53,
            &etherparse::Ipv4Header::new(12, 64, etherparse::IpNumber::UDP, s.octets(), d.octets())
                .unwrap(),
            b"dns?",
        )
        .unwrap();
        assert_eq!(be16(&b, 6), h.checksum);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(S4, D4));
        let r = Repr::parse(&p, S4, D4, true).unwrap();
        assert_eq!(
            (r.src_port, r.dst_port, r.payload),
            (5353, 53, &b"dns?"[..])
        );
    }

    #[test]
    fn ipv6_checksum_matches_etherparse_and_zero_is_refused() {
        let mut b = emitted(S6, D6, b"dns?");
        let (IpAddr::V6(s), IpAddr::V6(d)) = (S6, D6) else {
            unreachable!()
        };
        let h = etherparse::UdpHeader::with_ipv6_checksum(
            5353,
            53,
            &etherparse::Ipv6Header {
                payload_length: 12,
                next_header: etherparse::IpNumber::UDP,
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
                ..Default::default()
            },
            b"dns?",
        )
        .unwrap();
        assert_eq!(be16(&b, 6), h.checksum);
        put16(&mut b, 6, 0);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, S6, D6, true), Err(Error::BadChecksum));
        // Over IPv4 zero means "no checksum" and is accepted.
        assert!(Repr::parse(&p, S4, D4, true).is_ok());
    }

    #[test]
    fn a_corrupted_byte_fails_the_checksum() {
        let mut b = emitted(S4, D4, b"dns?");
        b[9] ^= 0x40;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, S4, D4, true), Err(Error::BadChecksum));
    }

    #[test]
    fn lengths_are_checked_and_padding_is_not_data() {
        assert_eq!(
            Packet::new_checked(&[0u8; 7][..]).err(),
            Some(Error::Truncated)
        );
        let mut b = emitted(S4, D4, b"dns?");
        put16(&mut b, 4, 7);
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::BadLength));
        put16(&mut b, 4, 13);
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::BadLength));
        let mut padded = emitted(S4, D4, b"dns?");
        padded.extend_from_slice(&[0xee; 6]);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), b"dns?");
        assert!(p.verify_checksum(S4, D4));
    }

    #[test]
    fn a_sum_of_zero_goes_out_as_all_ones() {
        // Find a payload whose checksum computes to zero, and check it is sent as 0xffff
        // (which verifies: 0xffff and 0 are the same value in one's complement).
        for x in 0..=u16::MAX {
            let payload = x.to_be_bytes();
            let b = emitted(S4, D4, &payload);
            let p = Packet::new_checked(&b[..]).unwrap();
            assert!(p.verify_checksum(S4, D4));
            if p.checksum() == 0xffff {
                return;
            }
        }
        panic!("no payload sums to zero");
    }

    #[test]
    fn destination_port_zero_is_refused_and_too_long_is_an_error() {
        let r = Repr {
            src_port: 1,
            dst_port: 0,
            payload: b"x",
        };
        let mut b = vec![0u8; 9];
        r.emit(&mut b, S4, D4).unwrap();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, S4, D4, true), Err(Error::Unrecognized));
        let big = vec![0u8; 65528];
        let r = Repr {
            src_port: 1,
            dst_port: 2,
            payload: &big,
        };
        let mut out = vec![0u8; 70000];
        assert_eq!(r.emit(&mut out, S4, D4), Err(Error::BadLength));
        assert_eq!(
            Repr { payload: b"x", ..r }.emit(&mut [0u8; 8], S4, D4),
            Err(Error::BufferTooSmall)
        );
    }
}
