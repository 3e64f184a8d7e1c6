//! ICMP for IPv6 (RFC 4443): the error messages and echo.
//!
//! The 8-byte header, the echo messages and the quote an error carries are shared with
//! ICMPv4 ([`icmp`]); here are the ICMPv6 types and codes, the fields of packet
//! too big and parameter problem, and the checksum, which unlike ICMPv4's covers the IPv6
//! pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1): source, destination, upper-layer length and
//! next header 58. So the checksum methods and [`Repr::parse`]/[`Repr::emit`] take the IPv6
//! addresses. The second header word depends on the type:
//!
//! ```text
//! |                             Unused                            |  dst-unreachable (1)
//! |                              MTU                              |  packet-too-big (2)
//! |                             Unused                            |  time-exceeded (3)
//! |                            Pointer                            |  param-problem (4)
//! |           Identifier          |        Sequence Number        |  echo (128, 129)
//! ```
//!
//! Error messages quote as much of the invoking packet as fits; [`Repr::quote`] reads it
//! (addresses, upper-layer protocol past any extension headers, ports, TCP sequence number)
//! so the stack can map an error onto a connection.

use core::fmt;
use core::net::Ipv6Addr;

use super::checksum::{Checksum, pseudo_header_v6};
use super::icmp::{self, Family, Quote, wire_enum};
use super::{Error, IpProtocol, Result, ipv6};

pub use super::icmp::HEADER_LEN;

/// RFC 4443 §2.4(c): an error message must not make the IPv6 packet exceed the minimum IPv6
/// MTU (1280), so at most this much of the invoking packet fits after the 40-byte IPv6 and
/// 8-byte ICMPv6 headers.
pub const MAX_ERROR_INVOKING_LEN: usize = 1280 - ipv6::HEADER_LEN - HEADER_LEN;

wire_enum! {
    /// ICMPv6 message types this module models (RFC 4443). Other types (neighbor discovery,
    /// MLD, …) stay readable through the [`Packet`] view but do not parse into a [`Repr`].
    pub enum Message (unknown = "type") {
        /// Destination unreachable (type 1).
        DstUnreachable = 1 => "dst-unreachable",
        /// Packet too big (type 2).
        PacketTooBig = 2 => "packet-too-big",
        /// Time exceeded (type 3).
        TimeExceeded = 3 => "time-exceeded",
        /// Parameter problem (type 4).
        ParamProblem = 4 => "param-problem",
        /// Echo request (type 128).
        EchoRequest = 128 => "echo request",
        /// Echo reply (type 129).
        EchoReply = 129 => "echo reply",
    }
}

wire_enum! {
    /// Codes of a destination-unreachable message (RFC 4443 §3.1).
    pub enum DstUnreachable (unknown = "code") {
        /// No route to destination (0).
        NoRoute = 0 => "no-route",
        /// Communication with destination administratively prohibited (1).
        AdminProhibited = 1 => "admin-prohibited",
        /// Beyond scope of source address (2).
        BeyondScope = 2 => "beyond-scope",
        /// Address unreachable (3).
        AddrUnreachable = 3 => "addr-unreachable",
        /// Port unreachable (4).
        PortUnreachable = 4 => "port-unreachable",
        /// Source address failed ingress/egress policy (5).
        FailedPolicy = 5 => "failed-policy",
        /// Reject route to destination (6).
        RejectRoute = 6 => "reject-route",
    }
}

wire_enum! {
    /// Codes of a time-exceeded message (RFC 4443 §3.3).
    pub enum TimeExceeded (unknown = "code") {
        /// Hop limit exceeded in transit (0).
        HopLimitExceeded = 0 => "hop-limit-exceeded",
        /// Fragment reassembly time exceeded (1).
        FragReassemblyExceeded = 1 => "frag-reassembly-exceeded",
    }
}

wire_enum! {
    /// Codes of a parameter-problem message (RFC 4443 §3.4; code 3 from RFC 7112).
    pub enum ParamProblem (unknown = "code") {
        /// Erroneous header field encountered (0).
        ErroneousHeaderField = 0 => "erroneous-header-field",
        /// Unrecognized Next Header type encountered (1).
        UnrecognizedNextHeader = 1 => "unrecognized-next-header",
        /// Unrecognized IPv6 option encountered (2).
        UnrecognizedOption = 2 => "unrecognized-option",
        /// First fragment has an incomplete header chain (3, RFC 7112).
        IncompleteHeaderChain = 3 => "incomplete-header-chain",
    }
}

/// ICMPv6 in the shared [`icmp::Packet`] view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6 {}

impl Family for Icmpv6 {
    type Message = Message;
}

/// A view over the bytes of one ICMPv6 message; see [`icmp::Packet`] for what it shares with
/// ICMPv4.
pub type Packet<T> = icmp::Packet<T, Icmpv6>;

impl<T: AsRef<[u8]>> icmp::Packet<T, Icmpv6> {
    /// The MTU of a packet-too-big message (RFC 4443 §3.2).
    pub fn pkt_too_big_mtu(&self) -> u32 {
        self.rest_of_header()
    }

    /// The pointer of a parameter-problem message: the offset of the offending octet in the
    /// invoking packet (RFC 4443 §3.4).
    pub fn param_problem_ptr(&self) -> u32 {
        self.rest_of_header()
    }

    /// True if the checksum over the pseudo-header of `src`/`dst` and the whole message
    /// verifies.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let bytes = self.buffer.as_ref();
        let Ok(len) = u32::try_from(bytes.len()) else {
            return false;
        };
        let mut c = pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len);
        c.add_bytes(bytes);
        c.verifies()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> icmp::Packet<T, Icmpv6> {
    /// Sets the MTU of a packet-too-big message.
    pub fn set_pkt_too_big_mtu(&mut self, value: u32) {
        self.set_rest_of_header(value);
    }

    /// Sets the pointer of a parameter-problem message.
    pub fn set_param_problem_ptr(&mut self, value: u32) {
        self.set_rest_of_header(value);
    }

    /// Computes the checksum over the pseudo-header of `src`/`dst` and the whole message, and
    /// stores it. (A message longer than 4 GiB cannot be carried by IPv6 at all; its length is
    /// clamped rather than panicking.)
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let bytes = self.buffer.as_ref();
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let mut c: Checksum = pseudo_header_v6(src, dst, IpProtocol::Icmpv6, len);
        c.add_bytes(bytes);
        let sum = c.finish();
        self.set_checksum(sum);
    }
}

/// The meaning of an ICMPv6 message this module models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Echo request (RFC 4443 §4.1).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data to be echoed.
        data: &'a [u8],
    },
    /// Echo reply (RFC 4443 §4.2).
    EchoReply {
        /// Identifier, copied from the request.
        ident: u16,
        /// Sequence number, copied from the request.
        seq_no: u16,
        /// Data, copied from the request.
        data: &'a [u8],
    },
    /// Destination unreachable (RFC 4443 §3.1).
    DstUnreachable {
        /// The code.
        reason: DstUnreachable,
        /// The quoted invoking packet; see [`Quote`].
        invoking: &'a [u8],
    },
    /// Packet too big (RFC 4443 §3.2).
    PacketTooBig {
        /// The MTU of the next-hop link.
        mtu: u32,
        /// The quoted invoking packet; see [`Quote`].
        invoking: &'a [u8],
    },
    /// Time exceeded (RFC 4443 §3.3).
    TimeExceeded {
        /// The code.
        reason: TimeExceeded,
        /// The quoted invoking packet; see [`Quote`].
        invoking: &'a [u8],
    },
    /// Parameter problem (RFC 4443 §3.4).
    ParamProblem {
        /// The code.
        reason: ParamProblem,
        /// Offset of the offending octet in the invoking packet.
        pointer: u32,
        /// The quoted invoking packet; see [`Quote`].
        invoking: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses a message carried from `src` to `dst`. Errors: `Truncated` below 8 bytes,
    /// `BadChecksum` (when `verify_checksum`), `Unrecognized` for types other than those in
    /// [`Message`]. The code of packet-too-big (RFC 4443 §3.2: "ignored by the receiver") and
    /// echo messages, and unused header words, are ignored.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        verify_checksum: bool,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        let checked = verify_checksum.then(|| packet.verify_checksum(src, dst));
        let data = icmp::parse_data(packet, checked)?;
        match packet.msg_type() {
            Message::EchoRequest => Ok(Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Message::EchoReply => Ok(Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            Message::DstUnreachable => Ok(Repr::DstUnreachable {
                reason: DstUnreachable::from(packet.msg_code()),
                invoking: data,
            }),
            Message::PacketTooBig => Ok(Repr::PacketTooBig {
                mtu: packet.pkt_too_big_mtu(),
                invoking: data,
            }),
            Message::TimeExceeded => Ok(Repr::TimeExceeded {
                reason: TimeExceeded::from(packet.msg_code()),
                invoking: data,
            }),
            Message::ParamProblem => Ok(Repr::ParamProblem {
                reason: ParamProblem::from(packet.msg_code()),
                pointer: packet.param_problem_ptr(),
                invoking: data,
            }),
            Message::Unknown(_) => Err(Error::Unrecognized),
        }
    }

    /// The message type.
    pub fn msg_type(&self) -> Message {
        match self {
            Repr::EchoRequest { .. } => Message::EchoRequest,
            Repr::EchoReply { .. } => Message::EchoReply,
            Repr::DstUnreachable { .. } => Message::DstUnreachable,
            Repr::PacketTooBig { .. } => Message::PacketTooBig,
            Repr::TimeExceeded { .. } => Message::TimeExceeded,
            Repr::ParamProblem { .. } => Message::ParamProblem,
        }
    }

    /// The bytes after the header: echo data or the quoted invoking packet.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => data,
            Repr::DstUnreachable { invoking, .. }
            | Repr::PacketTooBig { invoking, .. }
            | Repr::TimeExceeded { invoking, .. }
            | Repr::ParamProblem { invoking, .. } => invoking,
        }
    }

    /// The quoted invoking packet of an error message, read; `None` for echo messages.
    pub fn quote(&self) -> Option<Result<Quote<'a>>> {
        match self {
            Repr::EchoRequest { .. } | Repr::EchoReply { .. } => None,
            _ => Some(Quote::parse(self.data())),
        }
    }

    /// The length of the message [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message carried from `src` to `dst` into the first
    /// [`buffer_len`](Self::buffer_len) bytes of `packet` (`Err(BufferTooSmall)` if it is
    /// shorter; bytes beyond are left alone and are not part of the message). Unused header
    /// words are zeroed. Without `fill_checksum` the checksum field is left zero, for offload.
    /// Nothing is written on error. Keeping an error message within
    /// [`MAX_ERROR_INVOKING_LEN`] is the caller's job.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        fill_checksum: bool,
    ) -> Result<()> {
        let (code, rest) = match *self {
            Repr::EchoRequest { ident, seq_no, .. } | Repr::EchoReply { ident, seq_no, .. } => {
                (0, icmp::echo_word(ident, seq_no))
            }
            Repr::DstUnreachable { reason, .. } => (reason.into(), 0),
            Repr::PacketTooBig { mtu, .. } => (0, mtu),
            Repr::TimeExceeded { reason, .. } => (reason.into(), 0),
            Repr::ParamProblem {
                reason, pointer, ..
            } => (reason.into(), pointer),
        };
        let mut out = icmp::emit_message(packet, self.msg_type(), code, rest, self.data())?;
        if fill_checksum {
            out.fill_checksum(src, dst);
        }
        Ok(())
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                return icmp::fmt_echo(f, "ICMPv6", self.msg_type(), ident, seq_no, data);
            }
            Repr::DstUnreachable { reason, .. } => write!(f, "ICMPv6 dst-unreachable {reason}")?,
            Repr::PacketTooBig { mtu, .. } => write!(f, "ICMPv6 packet-too-big mtu={mtu}")?,
            Repr::TimeExceeded { reason, .. } => write!(f, "ICMPv6 time-exceeded {reason}")?,
            Repr::ParamProblem {
                reason, pointer, ..
            } => write!(f, "ICMPv6 param-problem {reason} pointer={pointer}")?,
        }
        icmp::fmt_quote(f, self.data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{be16, be32};
    use proptest::prelude::*;

    const HOST_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const HOST_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);

    /// `ping -6` style echo request 2001:db8::1 > 2001:db8::2, id 0x2a2a, seq 7, 16-byte
    /// timeval then 0x10..=0x37. Checksum 0xa4d3 (with pseudo-header) computed independently.
    const PING6: [u8; 64] = [
        0x80, 0x00, 0xa4, 0xd3, 0x2a, 0x2a, 0x00, 0x07, // type 128, code, checksum, id, seq
        0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00, // tv_sec
        0x40, 0xe2, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // tv_usec
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, //
        0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, //
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, //
        0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, //
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, //
    ];

    /// Packet-too-big from 2001:db8:ff::1 to 2001:db8::1, MTU 1280, quoting a 1480-byte TCP
    /// packet [2001:db8::1]:40000 > [2001:db8::2]:80 seq 0xfffffff0 (IPv6 header and all 20
    /// TCP bytes). Checksum 0x3870 computed independently.
    const PTB: [u8; 68] = [
        0x02, 0x00, 0x38, 0x70, 0x00, 0x00, 0x05, 0x00, // type 2, code, cksum, mtu 1280
        0x60, 0x00, 0x00, 0x00, 0x05, 0xa0, 0x06, 0x40, // v6, payload 1440, TCP, hop 64
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // src
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // dst
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, //
        0x9c, 0x40, 0x00, 0x50, 0xff, 0xff, 0xff, 0xf0, // ports 40000 > 80, seq
        0x00, 0x00, 0x00, 0x01, 0x50, 0x10, 0x03, 0xe8, // ack, off, ACK, window
        0xab, 0xcd, 0x00, 0x00, // cksum, urg
    ];

    #[test]
    fn ping6_echo_request() {
        let p = Packet::new_checked(&PING6[..]).unwrap();
        assert_eq!(p.msg_type(), Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0xa4d3);
        assert_eq!(p.echo_ident(), 0x2a2a);
        assert_eq!(p.echo_seq_no(), 7);
        assert_eq!(p.data(), &PING6[8..]);
        assert!(p.verify_checksum(HOST_A, HOST_B));
        // The pseudo-header is covered: other addresses do not verify. (Swapping source and
        // destination does: the one's-complement sum is commutative.)
        assert!(!p.verify_checksum(HOST_A, ROUTER));
        assert!(p.verify_checksum(HOST_B, HOST_A));
        assert_eq!(
            Repr::parse(&p, ROUTER, HOST_B, true).unwrap_err(),
            Error::BadChecksum
        );

        let repr = Repr::parse(&p, HOST_A, HOST_B, true).unwrap();
        assert_eq!(
            repr,
            Repr::EchoRequest {
                ident: 0x2a2a,
                seq_no: 7,
                data: &PING6[8..]
            }
        );
        assert_eq!(repr.quote(), None);
        assert_eq!(
            repr.to_string(),
            "ICMPv6 echo request id=10794 seq=7 len=56"
        );

        let mut out = [0u8; 64];
        repr.emit(
            &mut Packet::new_unchecked(&mut out[..]),
            HOST_A,
            HOST_B,
            true,
        )
        .unwrap();
        assert_eq!(out, PING6);

        let mut copy = PING6;
        let mut p = Packet::new_unchecked(&mut copy[..]);
        p.set_checksum(0xbeef);
        p.fill_checksum(HOST_A, HOST_B);
        assert_eq!(p.checksum(), 0xa4d3);
    }

    #[test]
    fn packet_too_big_with_tcp_quote() {
        let p = Packet::new_checked(&PTB[..]).unwrap();
        assert_eq!(p.msg_type(), Message::PacketTooBig);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x3870);
        assert_eq!(p.pkt_too_big_mtu(), 1280);
        assert!(p.verify_checksum(ROUTER, HOST_A));

        let repr = Repr::parse(&p, ROUTER, HOST_A, true).unwrap();
        assert_eq!(
            repr,
            Repr::PacketTooBig {
                mtu: 1280,
                invoking: &PTB[8..]
            }
        );

        let orig = repr.quote().unwrap().unwrap();
        assert_eq!(orig, p.quote().unwrap());
        assert_eq!(IpProtocol::from(orig.header()[6]), IpProtocol::Tcp);
        assert_eq!(orig.protocol(), IpProtocol::Tcp);
        assert_eq!((orig.ip_len() - 40), 1440);
        assert_eq!(orig.hop_limit(), 64);
        assert_eq!(orig.frag_offset(), 0);
        assert_eq!(orig.src_addr(), HOST_A);
        assert_eq!(orig.dst_addr(), HOST_B);
        assert_eq!(orig.src_port(), 40000);
        assert_eq!(orig.dst_port(), 80);
        assert_eq!(orig.tcp_seq_no(), 0xffff_fff0);
        assert_eq!(orig.payload(), &PTB[48..]);
        assert_eq!(
            repr.to_string(),
            "ICMPv6 packet-too-big mtu=1280 \
             for TCP [2001:db8::1]:40000 > [2001:db8::2]:80 seq=4294967280"
        );

        let mut out = [0u8; 68];
        repr.emit(
            &mut Packet::new_unchecked(&mut out[..]),
            ROUTER,
            HOST_A,
            true,
        )
        .unwrap();
        assert_eq!(out, PTB);
    }

    #[test]
    fn packet_too_big_code_is_ignored() {
        // RFC 4443 §3.2: the code is "ignored by the receiver".
        let mut bytes = PTB;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_msg_code(9);
        p.fill_checksum(ROUTER, HOST_A);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(matches!(
            Repr::parse(&p, ROUTER, HOST_A, true),
            Ok(Repr::PacketTooBig { mtu: 1280, .. })
        ));
    }

    #[test]
    fn error_messages_round_trip_and_display() {
        let quote = &PTB[8..];
        let cases = [
            (
                Repr::DstUnreachable {
                    reason: DstUnreachable::PortUnreachable,
                    invoking: quote,
                },
                [1u8, 4],
                "ICMPv6 dst-unreachable port-unreachable for TCP",
            ),
            (
                Repr::TimeExceeded {
                    reason: TimeExceeded::HopLimitExceeded,
                    invoking: quote,
                },
                [3, 0],
                "ICMPv6 time-exceeded hop-limit-exceeded for TCP",
            ),
            (
                Repr::ParamProblem {
                    reason: ParamProblem::UnrecognizedNextHeader,
                    pointer: 6,
                    invoking: quote,
                },
                [4, 1],
                "ICMPv6 param-problem unrecognized-next-header pointer=6 for TCP",
            ),
        ];
        for (repr, type_code, text) in cases {
            let mut out = [0xffu8; 68];
            repr.emit(
                &mut Packet::new_unchecked(&mut out[..]),
                ROUTER,
                HOST_A,
                true,
            )
            .unwrap();
            assert_eq!(out[..2], type_code);
            let p = Packet::new_checked(&out[..]).unwrap();
            assert_eq!(Repr::parse(&p, ROUTER, HOST_A, true).unwrap(), repr);
            assert!(repr.to_string().starts_with(text), "{repr}");
        }

        // The unused word is written as zero; without fill_checksum so is the checksum field.
        let mut out = [0xffu8; 68];
        let repr = Repr::DstUnreachable {
            reason: DstUnreachable::NoRoute,
            invoking: quote,
        };
        repr.emit(
            &mut Packet::new_unchecked(&mut out[..]),
            ROUTER,
            HOST_A,
            false,
        )
        .unwrap();
        assert_eq!(be32(&out, 4), 0);
        assert_eq!(be16(&out, 2), 0);
    }

    #[test]
    fn every_short_length_is_truncated() {
        for len in 0..HEADER_LEN {
            let bytes = &PING6[..len];
            assert_eq!(Packet::new_checked(bytes).unwrap_err(), Error::Truncated);
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(bytes), HOST_A, HOST_B, false).unwrap_err(),
                Error::Truncated
            );
        }
    }

    #[test]
    fn bad_checksum() {
        for at in [0, 2, 3, 7, 30, 63] {
            let mut bytes = PING6;
            bytes[at] ^= 0x10;
            let p = Packet::new_checked(&bytes[..]).unwrap();
            assert!(!p.verify_checksum(HOST_A, HOST_B));
            assert_eq!(
                Repr::parse(&p, HOST_A, HOST_B, true).unwrap_err(),
                Error::BadChecksum
            );
        }
        // A truncated copy fails too: the length is in the pseudo-header.
        let p = Packet::new_checked(&PING6[..62]).unwrap();
        assert!(!p.verify_checksum(HOST_A, HOST_B));
    }

    #[test]
    fn unknown_type_is_unrecognized_but_readable() {
        // Neighbor solicitation (135): valid ICMPv6, not modelled here.
        let mut bytes = [0u8; 24];
        bytes[0] = 135;
        bytes[8..].copy_from_slice(&HOST_B.octets());
        Packet::new_unchecked(&mut bytes[..]).fill_checksum(HOST_A, HOST_B);
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.msg_type(), Message::Unknown(135));
        assert!(p.verify_checksum(HOST_A, HOST_B));
        assert_eq!(p.data(), &HOST_B.octets());
        assert_eq!(
            Repr::parse(&p, HOST_A, HOST_B, true).unwrap_err(),
            Error::Unrecognized
        );
    }

    #[test]
    fn quoted_header_errors() {
        let quote = &PTB[8..];
        for len in 0..48 {
            assert_eq!(
                Quote::parse(&quote[..len]).unwrap_err(),
                Error::Truncated,
                "len {len}"
            );
        }
        assert!(Quote::parse(&quote[..48]).is_ok());
        let mut v4 = [0u8; 60];
        v4.copy_from_slice(quote);
        v4[0] = 0x75;
        assert_eq!(Quote::parse(&v4).unwrap_err(), Error::BadVersion);
        // An IPv4 quote is read as IPv4 (an ICMPv6 error about a translated packet, RFC 7915).
        v4[0] = 0x45;
        assert!(Quote::parse(&v4).unwrap().src_addr().is_ipv4());

        // An error whose quote is too short still parses as a message.
        let repr = Repr::PacketTooBig {
            mtu: 1280,
            invoking: &quote[..44],
        };
        assert_eq!(repr.quote(), Some(Err(Error::Truncated)));
        assert_eq!(repr.to_string(), "ICMPv6 packet-too-big mtu=1280");
    }

    /// The PTB quote with extension headers inserted after the fixed header.
    fn quote_with_ext(exts: &[(u8, &[u8])]) -> Vec<u8> {
        let quote = &PTB[8..];
        let mut out = quote[..40].to_vec();
        out[6] = exts[0].0;
        for (i, (_, body)) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(6, |e| e.0);
            let mut ext = body.to_vec();
            ext[0] = next;
            out.extend_from_slice(&ext);
        }
        out.extend_from_slice(&quote[40..]);
        out
    }

    #[test]
    fn quoted_extension_headers_are_walked() {
        // Hop-by-Hop (8 bytes), Destination Options (16 bytes), then TCP.
        let hbh = [0u8, 0, 1, 4, 0, 0, 0, 0];
        let dst_opts = [0u8, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let q = quote_with_ext(&[(0, &hbh), (60, &dst_opts)]);
        let orig = Quote::parse(&q).unwrap();
        assert_eq!(IpProtocol::from(orig.header()[6]), IpProtocol::HopByHop);
        assert_eq!(orig.protocol(), IpProtocol::Tcp);
        assert_eq!((orig.src_port(), orig.dst_port()), (40000, 80));
        assert_eq!(orig.tcp_seq_no(), 0xffff_fff0);
        assert_eq!(orig.payload(), &PTB[48..]);
        // Cut inside the Destination Options header, and just after it.
        assert_eq!(Quote::parse(&q[..41]).unwrap_err(), Error::Truncated);
        assert_eq!(Quote::parse(&q[..60]).unwrap_err(), Error::Truncated);
        assert_eq!(Quote::parse(&q[..64]).unwrap_err(), Error::Truncated);
        assert!(Quote::parse(&q[..72]).is_ok());

        // A first fragment has offset 0 and its ports; a later one shows none.
        let first = [0u8, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]; // M flag set
        let q = quote_with_ext(&[(44, &first)]);
        let orig = Quote::parse(&q).unwrap();
        assert_eq!(IpProtocol::from(orig.header()[6]), IpProtocol::Fragment);
        assert_eq!((orig.protocol(), orig.frag_offset()), (IpProtocol::Tcp, 0));
        assert_eq!(orig.src_port(), 40000);
        let later = [0u8, 0, 0x05, 0xa8, 0xde, 0xad, 0xbe, 0xef]; // offset 181 * 8
        let q = quote_with_ext(&[(44, &later)]);
        let orig = Quote::parse(&q).unwrap();
        assert_eq!(orig.frag_offset(), 181 * 8);
        assert_eq!(orig.to_string(), "proto=6 2001:db8::1 > 2001:db8::2");

        // Authentication Header: Payload Len 1 → (1 + 2) * 4 = 12 bytes.
        let ah = [0u8, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        let q = quote_with_ext(&[(51, &ah)]);
        assert_eq!(Quote::parse(&q).unwrap().src_port(), 40000);
    }

    #[test]
    fn enums_round_trip_through_u8() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Message::from(v)), v);
            assert_eq!(u8::from(DstUnreachable::from(v)), v);
            assert_eq!(u8::from(TimeExceeded::from(v)), v);
            assert_eq!(u8::from(ParamProblem::from(v)), v);
        }
        assert_eq!(Message::from(2), Message::PacketTooBig);
        assert_eq!(Message::from(129), Message::EchoReply);
        assert_eq!(MAX_ERROR_INVOKING_LEN, 1232);
    }

    /// Everything needed to build any [`Repr`], owned so proptest can generate it.
    #[derive(Debug, Clone)]
    struct Gen {
        kind: u8,
        ident: u16,
        seq_no: u16,
        code: u8,
        word: u32,
        data: Vec<u8>,
    }

    impl Gen {
        fn repr(&self) -> Repr<'_> {
            let data = &self.data[..];
            match self.kind % 6 {
                0 => Repr::EchoRequest {
                    ident: self.ident,
                    seq_no: self.seq_no,
                    data,
                },
                1 => Repr::EchoReply {
                    ident: self.ident,
                    seq_no: self.seq_no,
                    data,
                },
                2 => Repr::DstUnreachable {
                    reason: self.code.into(),
                    invoking: data,
                },
                3 => Repr::PacketTooBig {
                    mtu: self.word,
                    invoking: data,
                },
                4 => Repr::TimeExceeded {
                    reason: self.code.into(),
                    invoking: data,
                },
                _ => Repr::ParamProblem {
                    reason: self.code.into(),
                    pointer: self.word,
                    invoking: data,
                },
            }
        }
    }

    fn gen_strategy(code: impl Strategy<Value = u8>) -> impl Strategy<Value = Gen> {
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            code,
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(kind, ident, seq_no, code, word, data)| Gen {
                kind,
                ident,
                seq_no,
                code,
                word,
                data,
            })
    }

    fn addr() -> impl Strategy<Value = Ipv6Addr> {
        any::<[u8; 16]>().prop_map(Ipv6Addr::from)
    }

    /// Our meaning in etherparse's terms, mapped by name (not by number) so that the code
    /// numbering is checked independently.
    fn to_etherparse(repr: &Repr<'_>) -> Option<etherparse::Icmpv6Type> {
        use etherparse::icmpv6::{
            DestUnreachableCode as D, ParameterProblemCode as P, ParameterProblemHeader,
            TimeExceededCode as T,
        };
        use etherparse::{IcmpEchoHeader, Icmpv6Type};
        Some(match *repr {
            Repr::EchoRequest { ident, seq_no, .. } => Icmpv6Type::EchoRequest(IcmpEchoHeader {
                id: ident,
                seq: seq_no,
            }),
            Repr::EchoReply { ident, seq_no, .. } => Icmpv6Type::EchoReply(IcmpEchoHeader {
                id: ident,
                seq: seq_no,
            }),
            Repr::DstUnreachable { reason, .. } => {
                Icmpv6Type::DestinationUnreachable(match reason {
                    DstUnreachable::NoRoute => D::NoRoute,
                    DstUnreachable::AdminProhibited => D::Prohibited,
                    DstUnreachable::BeyondScope => D::BeyondScope,
                    DstUnreachable::AddrUnreachable => D::Address,
                    DstUnreachable::PortUnreachable => D::Port,
                    DstUnreachable::FailedPolicy => D::SourceAddressFailedPolicy,
                    DstUnreachable::RejectRoute => D::RejectRoute,
                    DstUnreachable::Unknown(_) => return None,
                })
            }
            Repr::PacketTooBig { mtu, .. } => Icmpv6Type::PacketTooBig { mtu },
            Repr::TimeExceeded { reason, .. } => Icmpv6Type::TimeExceeded(match reason {
                TimeExceeded::HopLimitExceeded => T::HopLimitExceeded,
                TimeExceeded::FragReassemblyExceeded => T::FragmentReassemblyTimeExceeded,
                TimeExceeded::Unknown(_) => return None,
            }),
            Repr::ParamProblem {
                reason, pointer, ..
            } => Icmpv6Type::ParameterProblem(ParameterProblemHeader {
                code: match reason {
                    ParamProblem::ErroneousHeaderField => P::ErroneousHeaderField,
                    ParamProblem::UnrecognizedNextHeader => P::UnrecognizedNextHeader,
                    ParamProblem::UnrecognizedOption => P::UnrecognizedIpv6Option,
                    ParamProblem::IncompleteHeaderChain => {
                        P::Ipv6FirstFragmentIncompleteHeaderChain
                    }
                    ParamProblem::Unknown(_) => return None,
                },
                pointer,
            }),
        })
    }

    /// An etherparse ICMPv6 type that maps onto one of our Reprs.
    fn etherparse_type() -> impl Strategy<Value = etherparse::Icmpv6Type> {
        use etherparse::icmpv6::{
            DestUnreachableCode, ParameterProblemCode, ParameterProblemHeader, TimeExceededCode,
        };
        use etherparse::{IcmpEchoHeader, Icmpv6Type};
        prop_oneof![
            (any::<u16>(), any::<u16>())
                .prop_map(|(id, seq)| Icmpv6Type::EchoRequest(IcmpEchoHeader { id, seq })),
            (any::<u16>(), any::<u16>())
                .prop_map(|(id, seq)| Icmpv6Type::EchoReply(IcmpEchoHeader { id, seq })),
            (0u8..=6).prop_map(|code| Icmpv6Type::DestinationUnreachable(
                DestUnreachableCode::from_u8(code).expect("codes 0..=6 exist")
            )),
            any::<u32>().prop_map(|mtu| Icmpv6Type::PacketTooBig { mtu }),
            (0u8..=1).prop_map(|code| Icmpv6Type::TimeExceeded(
                TimeExceededCode::from_u8(code).expect("codes 0..=1 exist")
            )),
            (0u8..=3, any::<u32>()).prop_map(|(code, pointer)| {
                Icmpv6Type::ParameterProblem(ParameterProblemHeader {
                    code: ParameterProblemCode::from_u8(code).expect("codes 0..=3 exist"),
                    pointer,
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(g in gen_strategy(any::<u8>()), src in addr(), dst in addr()) {
            let repr = g.repr();
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst, true).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(src, dst));
            prop_assert_eq!(Repr::parse(&p, src, dst, true).unwrap(), repr);
            prop_assert!(repr.to_string().starts_with("ICMPv6 "));
        }

        #[test]
        fn etherparse_reads_what_we_write(
            mut g in gen_strategy(0u8..=6),
            src in addr(),
            dst in addr(),
        ) {
            // Only the codes both sides name.
            g.code %= match g.kind % 6 {
                4 => 2,
                5 => 4,
                _ => 7,
            };
            let repr = g.repr();
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst, true).unwrap();
            let slice = etherparse::Icmpv6Slice::from_slice(&buf).unwrap();
            prop_assert_eq!(Some(slice.icmp_type()), to_etherparse(&repr));
            prop_assert_eq!(slice.payload(), repr.data());
            prop_assert!(slice.is_checksum_valid(src.octets(), dst.octets()));
        }

        #[test]
        fn we_read_what_etherparse_writes(
            ty in etherparse_type(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            src in addr(),
            dst in addr(),
        ) {
            let header = etherparse::Icmpv6Header::with_checksum(
                ty,
                src.octets(),
                dst.octets(),
                &payload,
            )
            .unwrap();
            let mut buf = header.to_bytes().to_vec();
            buf.extend_from_slice(&payload);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(src, dst));
            prop_assert_eq!(p.checksum(), header.checksum);
            let repr = Repr::parse(&p, src, dst, true).unwrap();
            prop_assert_eq!(to_etherparse(&repr), Some(ty));
            prop_assert_eq!(repr.data(), &payload[..]);
        }

        #[test]
        fn quoted_header_matches_etherparse(
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
            payload_length in any::<u16>(),
            hop_limit in any::<u8>(),
            ports in any::<(u16, u16)>(),
            seq in any::<u32>(),
            cut in 0usize..13,
        ) {
            let ip = etherparse::Ipv6Header {
                payload_length,
                next_header: etherparse::IpNumber::TCP,
                hop_limit,
                source: src,
                destination: dst,
                ..Default::default()
            };
            let tcp = etherparse::TcpHeader::new(ports.0, ports.1, seq, 1000);
            let mut quote = ip.to_bytes().to_vec();
            quote.extend_from_slice(&tcp.to_bytes());
            quote.truncate(40 + 8 + cut);
            let orig = Quote::parse(&quote).unwrap();
            prop_assert_eq!(orig.src_addr(), Ipv6Addr::from(src));
            prop_assert_eq!(orig.dst_addr(), Ipv6Addr::from(dst));
            prop_assert_eq!(orig.protocol(), IpProtocol::Tcp);
            prop_assert_eq!(orig.ip_len() - 40, usize::from(payload_length));
            prop_assert_eq!(orig.hop_limit(), hop_limit);
            prop_assert_eq!(orig.src_port(), ports.0);
            prop_assert_eq!(orig.dst_port(), ports.1);
            prop_assert_eq!(orig.tcp_seq_no(), seq);
            prop_assert_eq!(Quote::parse(&quote[..47]).unwrap_err(), Error::Truncated);
        }

        #[test]
        fn never_panics(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..160),
            next_header in prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60), Just(6)],
            force_v6 in any::<bool>(),
            src in addr(),
            dst in addr(),
        ) {
            // Half the time make the quote look like IPv6 with an extension header chain so
            // the deeper checks are reached.
            if force_v6 && bytes.len() > 8 + 40 {
                bytes[8] = 0x60;
                bytes[8 + 6] = next_header;
            }
            let Ok(p) = Packet::new_checked(&bytes[..]) else {
                prop_assert!(bytes.len() < HEADER_LEN);
                return Ok(());
            };
            let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.pkt_too_big_mtu());
            let _ = (p.param_problem_ptr(), p.echo_ident(), p.echo_seq_no());
            let _ = (p.rest_of_header(), p.data(), p.verify_checksum(src, dst));
            if let Ok(orig) = p.quote() {
                let _ = (IpProtocol::from(orig.header()[6]), orig.protocol(), (orig.ip_len() - 40));
                let _ = (orig.hop_limit(), orig.frag_offset(), orig.src_addr(), orig.dst_addr());
                let _ = (orig.payload(), orig.src_port(), orig.dst_port(), orig.tcp_seq_no());
                let _ = orig.to_string();
            }
            for verify in [false, true] {
                if let Ok(repr) = Repr::parse(&p, src, dst, verify) {
                    let _ = repr.to_string();
                    let _ = repr.quote();
                    let mut out = vec![0u8; repr.buffer_len()];
                    let mut view = Packet::new_unchecked(&mut out[..]);
                    prop_assert!(repr.emit(&mut view, src, dst, true).is_ok());
                }
            }
        }
    }
}
