//! ICMP for IPv4 (RFC 792), with the Next-Hop MTU of RFC 1191 §4.
//!
//! The 8-byte header, the echo messages and the quote an error carries are shared with
//! ICMPv6 ([`icmp`]); here are the IPv4 types and codes, the Next-Hop MTU of a
//! frag-needed message, and the checksum, which covers the ICMP message only (no
//! pseudo-header). The second header word depends on the type:
//!
//! ```text
//! |           Identifier          |        Sequence Number        |  echo (0, 8)
//! |         unused = 0            |         Next-Hop MTU          |  dst-unreachable (3)
//! |                          unused = 0                           |  time-exceeded (11)
//! |    Pointer    |                   unused = 0                  |  parameter problem (12)
//! ```
//!
//! Error messages quote "Internet Header + 64 bits of Original Data"; [`Repr::quote`] reads
//! that with the IPv4 view, so the stack can map an error onto a connection (RFC 1191,
//! RFC 5927).

use core::fmt;

use super::checksum::{self, Checksum};
use super::icmp::{self, Family, Quote, wire_enum};
use super::{Error, Result, be16, put16};

pub use super::icmp::HEADER_LEN;

/// RFC 1191 §4: the low 16 bits of the second word of a frag-needed message.
const NEXT_HOP_MTU: usize = 6;
/// RFC 792: the first byte of the second word of a parameter-problem message.
const POINTER: usize = 4;

wire_enum! {
    /// ICMP message types this module models (RFC 792). Other types stay readable through the
    /// [`Packet`] view but do not parse into a [`Repr`].
    pub enum Message (unknown = "type") {
        /// Echo reply (type 0).
        EchoReply = 0 => "echo reply",
        /// Destination unreachable (type 3).
        DstUnreachable = 3 => "dst-unreachable",
        /// Echo request (type 8).
        EchoRequest = 8 => "echo request",
        /// Time exceeded (type 11).
        TimeExceeded = 11 => "time-exceeded",
        /// Parameter problem (type 12).
        ParamProblem = 12 => "param-problem",
    }
}

wire_enum! {
    /// Codes of a destination-unreachable message: RFC 792 (0–5), RFC 1122 §3.2.2.1 (6–12),
    /// RFC 1812 §5.2.7.1 (13–15).
    pub enum DstUnreachable (unknown = "code") {
        /// Net unreachable (0).
        NetUnreachable = 0 => "net-unreachable",
        /// Host unreachable (1).
        HostUnreachable = 1 => "host-unreachable",
        /// Protocol unreachable (2).
        ProtoUnreachable = 2 => "proto-unreachable",
        /// Port unreachable (3).
        PortUnreachable = 3 => "port-unreachable",
        /// Fragmentation needed and DF set (4); carries the Next-Hop MTU (RFC 1191).
        FragNeeded = 4 => "frag-needed",
        /// Source route failed (5).
        SrcRouteFailed = 5 => "src-route-failed",
        /// Destination network unknown (6).
        NetUnknown = 6 => "net-unknown",
        /// Destination host unknown (7).
        HostUnknown = 7 => "host-unknown",
        /// Source host isolated (8).
        SrcHostIsolated = 8 => "src-host-isolated",
        /// Communication with destination network administratively prohibited (9).
        NetProhibited = 9 => "net-prohibited",
        /// Communication with destination host administratively prohibited (10).
        HostProhibited = 10 => "host-prohibited",
        /// Network unreachable for type of service (11).
        NetTosUnreachable = 11 => "net-tos-unreachable",
        /// Host unreachable for type of service (12).
        HostTosUnreachable = 12 => "host-tos-unreachable",
        /// Communication administratively prohibited by filtering (13).
        CommProhibited = 13 => "comm-prohibited",
        /// Host precedence violation (14).
        HostPrecedenceViolation = 14 => "host-precedence-violation",
        /// Precedence cutoff in effect (15).
        PrecedenceCutoff = 15 => "precedence-cutoff",
    }
}

wire_enum! {
    /// Codes of a time-exceeded message (RFC 792).
    pub enum TimeExceeded (unknown = "code") {
        /// Time to live exceeded in transit (0).
        TtlExceeded = 0 => "ttl-exceeded",
        /// Fragment reassembly time exceeded (1).
        FragReassemblyExceeded = 1 => "frag-reassembly-exceeded",
    }
}

wire_enum! {
    /// Codes of a parameter-problem message: RFC 792 (0), RFC 1108 (1), the IANA registry (2).
    pub enum ParamProblem (unknown = "code") {
        /// The pointer indicates the error (0).
        Pointer = 0 => "pointer",
        /// A required option is missing (1).
        MissingOption = 1 => "missing-option",
        /// Bad length (2).
        BadLength = 2 => "bad-length",
    }
}

/// ICMP for IPv4 in the shared [`icmp::Packet`] view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4 {}

impl Family for Icmpv4 {
    type Message = Message;
}

/// A view over the bytes of one ICMP message; see [`icmp::Packet`] for what it shares with
/// ICMPv6.
pub type Packet<T> = icmp::Packet<T, Icmpv4>;

impl<T: AsRef<[u8]>> icmp::Packet<T, Icmpv4> {
    /// The Next-Hop MTU of a frag-needed message (RFC 1191 §4); zero from a router that
    /// predates RFC 1191.
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), NEXT_HOP_MTU)
    }

    /// The pointer of a parameter-problem message (RFC 792): the offset of the offending
    /// octet in the quoted datagram.
    pub fn param_problem_ptr(&self) -> u8 {
        self.buffer.as_ref()[POINTER]
    }

    /// True if the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        let mut c = Checksum::new();
        c.add_bytes(self.buffer.as_ref());
        c.verifies()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> icmp::Packet<T, Icmpv4> {
    /// Sets the Next-Hop MTU (RFC 1191 §4).
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        put16(self.buffer.as_mut(), NEXT_HOP_MTU, value);
    }

    /// Sets the pointer of a parameter-problem message (RFC 792).
    pub fn set_param_problem_ptr(&mut self, value: u8) {
        self.buffer.as_mut()[POINTER] = value;
    }

    /// Computes the checksum over the whole message and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(sum);
    }
}

/// The meaning of an ICMP message this module models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Echo request (RFC 792).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data to be echoed.
        data: &'a [u8],
    },
    /// Echo reply (RFC 792).
    EchoReply {
        /// Identifier, copied from the request.
        ident: u16,
        /// Sequence number, copied from the request.
        seq_no: u16,
        /// Data, copied from the request.
        data: &'a [u8],
    },
    /// Destination unreachable (RFC 792, RFC 1191).
    DstUnreachable {
        /// The code.
        reason: DstUnreachable,
        /// The Next-Hop MTU of a frag-needed message; `None` for other codes and when the
        /// router sent zero (RFC 1191 §5: it predates RFC 1191). `Some(0)` emits as zero and
        /// so parses back as `None`.
        next_hop_mtu: Option<u16>,
        /// The quoted original datagram; see [`Quote`].
        invoking: &'a [u8],
    },
    /// Time exceeded (RFC 792).
    TimeExceeded {
        /// The code.
        reason: TimeExceeded,
        /// The quoted original datagram; see [`Quote`].
        invoking: &'a [u8],
    },
    /// Parameter problem (RFC 792).
    ParamProblem {
        /// The code.
        reason: ParamProblem,
        /// The offset of the offending octet in the quoted datagram (meaningful for code 0).
        pointer: u8,
        /// The quoted original datagram; see [`Quote`].
        invoking: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses a message. Errors: `Truncated` below 8 bytes, `BadChecksum` (when
    /// `verify_checksum`), `Unrecognized` for types other than those in [`Message`]. The code
    /// of echo messages and the unused header bits are ignored, as RFC 1122 §3.2.2 allows.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        verify_checksum: bool,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        let data = icmp::parse_data(packet, verify_checksum.then(|| packet.verify_checksum()))?;
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
            Message::DstUnreachable => {
                let reason = DstUnreachable::from(packet.msg_code());
                let next_hop_mtu = match (reason, packet.next_hop_mtu()) {
                    (DstUnreachable::FragNeeded, mtu) if mtu != 0 => Some(mtu),
                    _ => None,
                };
                Ok(Repr::DstUnreachable {
                    reason,
                    next_hop_mtu,
                    invoking: data,
                })
            }
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
            Repr::TimeExceeded { .. } => Message::TimeExceeded,
            Repr::ParamProblem { .. } => Message::ParamProblem,
        }
    }

    /// The bytes after the header: echo data or the quoted datagram.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => data,
            Repr::DstUnreachable { invoking, .. }
            | Repr::TimeExceeded { invoking, .. }
            | Repr::ParamProblem { invoking, .. } => invoking,
        }
    }

    /// The quoted original datagram of an error message, read; `None` for echo messages.
    pub fn quote(&self) -> Option<Result<Quote<'a>>> {
        match *self {
            Repr::EchoRequest { .. } | Repr::EchoReply { .. } => None,
            Repr::DstUnreachable { invoking, .. }
            | Repr::TimeExceeded { invoking, .. }
            | Repr::ParamProblem { invoking, .. } => Some(Quote::parse(invoking)),
        }
    }

    /// The length of the message [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message into the first [`buffer_len`](Self::buffer_len) bytes of `packet`
    /// (`Err(BufferTooSmall)` if it is shorter; bytes beyond are left alone and are not part of
    /// the message). Unused header bits are zeroed. Without `fill_checksum` the checksum field
    /// is left zero, for offload. Nothing is written on error.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        fill_checksum: bool,
    ) -> Result<()> {
        let (code, rest) = match *self {
            Repr::EchoRequest { ident, seq_no, .. } | Repr::EchoReply { ident, seq_no, .. } => {
                (0, icmp::echo_word(ident, seq_no))
            }
            Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            } => {
                let mtu = match reason {
                    DstUnreachable::FragNeeded => next_hop_mtu.unwrap_or(0),
                    _ => 0,
                };
                (reason.into(), u32::from(mtu))
            }
            Repr::TimeExceeded { reason, .. } => (reason.into(), 0),
            Repr::ParamProblem {
                reason, pointer, ..
            } => (reason.into(), u32::from(pointer) << 24),
        };
        let mut out = icmp::emit_message(packet, self.msg_type(), code, rest, self.data())?;
        if fill_checksum {
            out.fill_checksum();
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
            } => icmp::fmt_echo(f, "ICMP", self.msg_type(), ident, seq_no, data),
            Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                invoking,
            } => {
                write!(f, "ICMP dst-unreachable {reason}")?;
                if let Some(mtu) = next_hop_mtu {
                    write!(f, " mtu={mtu}")?;
                }
                icmp::fmt_quote(f, invoking)
            }
            Repr::TimeExceeded { reason, invoking } => {
                write!(f, "ICMP time-exceeded {reason}")?;
                icmp::fmt_quote(f, invoking)
            }
            Repr::ParamProblem {
                reason,
                pointer,
                invoking,
            } => {
                write!(f, "ICMP param-problem {reason} pointer={pointer}")?;
                icmp::fmt_quote(f, invoking)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IpProtocol, be32};
    use core::net::{IpAddr, Ipv4Addr};
    use proptest::prelude::*;

    /// `ping` (iputils) echo request: id 0x1c2b, seq 1, 16-byte timeval then 0x10..=0x37.
    /// Checksum 0x86c8 computed independently.
    const PING: [u8; 64] = [
        0x08, 0x00, 0x86, 0xc8, 0x1c, 0x2b, 0x00, 0x01, // type, code, checksum, id, seq
        0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00, // tv_sec
        0x40, 0xe2, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // tv_usec
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, //
        0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, //
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, //
        0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, //
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, //
    ];

    /// Frag-needed, Next-Hop MTU 1400, quoting a 1500-byte DF TCP segment
    /// 192.168.1.10:51234 > 203.0.113.5:443 seq 0x12345678 (IPv4 header and all 20 TCP bytes).
    const FRAG_NEEDED: [u8; 48] = [
        0x03, 0x04, 0xe7, 0x09, 0x00, 0x00, 0x05, 0x78, // type 3, code 4, cksum, mtu 1400
        0x45, 0x00, 0x05, 0xdc, 0xbe, 0xef, 0x40, 0x00, // v4 ihl 5, len 1500, id, DF
        0x40, 0x06, 0x78, 0x74, 0xc0, 0xa8, 0x01, 0x0a, // ttl 64, TCP, cksum, src
        0xcb, 0x00, 0x71, 0x05, // dst
        0xc8, 0x22, 0x01, 0xbb, 0x12, 0x34, 0x56, 0x78, // ports, seq
        0x9a, 0xbc, 0xde, 0xf0, 0x50, 0x18, 0x01, 0xf6, // ack, off, flags, window
        0x12, 0x34, 0x00, 0x00, // cksum, urg
    ];

    #[test]
    fn ping_echo_request() {
        let p = Packet::new_checked(&PING[..]).unwrap();
        assert_eq!(p.msg_type(), Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x86c8);
        assert_eq!(p.echo_ident(), 0x1c2b);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data().len(), 56);
        assert!(p.verify_checksum());
        let repr = Repr::parse(&p, true).unwrap();
        assert_eq!(
            repr,
            Repr::EchoRequest {
                ident: 0x1c2b,
                seq_no: 1,
                data: &PING[8..]
            }
        );
        assert_eq!(repr.quote(), None);
        assert_eq!(repr.to_string(), "ICMP echo request id=7211 seq=1 len=56");

        // Emitting the parsed meaning reproduces the capture byte for byte.
        let mut out = [0u8; 64];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]), true)
            .unwrap();
        assert_eq!(out, PING);

        // And fill_checksum on the view computes the same value.
        let mut copy = PING;
        let mut p = Packet::new_unchecked(&mut copy[..]);
        p.set_checksum(0xdead);
        p.fill_checksum();
        assert_eq!(p.checksum(), 0x86c8);
    }

    #[test]
    fn echo_reply_to_ping() {
        let request = Repr::parse(&Packet::new_checked(&PING[..]).unwrap(), true).unwrap();
        let Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } = request
        else {
            panic!("not a request: {request:?}");
        };
        let reply = Repr::EchoReply {
            ident,
            seq_no,
            data,
        };
        let mut out = vec![0u8; reply.buffer_len()];
        reply
            .emit(&mut Packet::new_unchecked(&mut out[..]), true)
            .unwrap();
        // A reply differs from the request only in type and checksum (RFC 1624: +0x0800).
        assert_eq!(out[0], 0);
        assert_eq!(be16(&out, 2), 0x86c8 + 0x0800);
        assert_eq!(out[4..], PING[4..]);
        assert!(Packet::new_checked(&out[..]).unwrap().verify_checksum());
    }

    #[test]
    fn frag_needed_with_next_hop_mtu() {
        let p = Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
        assert_eq!(p.msg_type(), Message::DstUnreachable);
        assert_eq!(p.msg_code(), 4);
        assert_eq!(p.checksum(), 0xe709);
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.rest_of_header(), 1400);
        assert!(p.verify_checksum());

        let repr = Repr::parse(&p, true).unwrap();
        assert_eq!(
            repr,
            Repr::DstUnreachable {
                reason: DstUnreachable::FragNeeded,
                next_hop_mtu: Some(1400),
                invoking: &FRAG_NEEDED[8..],
            }
        );

        let orig = repr.quote().unwrap().unwrap();
        assert_eq!(orig, p.quote().unwrap());
        assert_eq!(orig.header().len(), 20);
        assert_eq!(orig.ip_len(), 1500);
        assert_eq!(orig.frag_offset(), 0);
        assert_eq!(orig.protocol(), IpProtocol::Tcp);
        assert_eq!(orig.src_addr(), IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)));
        assert_eq!(orig.dst_addr(), IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)));
        assert_eq!(orig.src_port(), 51234);
        assert_eq!(orig.dst_port(), 443);
        assert_eq!(orig.tcp_seq_no(), 0x1234_5678);
        assert_eq!(orig.payload(), &FRAG_NEEDED[28..]);
        assert_eq!(
            repr.to_string(),
            "ICMP dst-unreachable frag-needed mtu=1400 \
             for TCP 192.168.1.10:51234 > 203.0.113.5:443 seq=305419896"
        );

        let mut out = [0u8; 48];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]), true)
            .unwrap();
        assert_eq!(out, FRAG_NEEDED);
    }

    #[test]
    fn frag_needed_from_an_old_router_has_no_mtu() {
        // RFC 1191 §5: a router that predates RFC 1191 leaves the field zero.
        let mut bytes = FRAG_NEEDED;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_next_hop_mtu(0);
        p.fill_checksum();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&p, true).unwrap();
        assert!(matches!(
            repr,
            Repr::DstUnreachable {
                reason: DstUnreachable::FragNeeded,
                next_hop_mtu: None,
                ..
            }
        ));
        // The original Total Length is what the host falls back on.
        assert_eq!(repr.quote().unwrap().unwrap().ip_len(), 1500);
    }

    #[test]
    fn mtu_is_ignored_for_other_codes() {
        // Port unreachable with junk in the unused word: the junk is not an MTU.
        let mut bytes = FRAG_NEEDED;
        let mut p = Packet::new_unchecked(&mut bytes[..]);
        p.set_msg_code(3);
        p.fill_checksum();
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap(), true).unwrap();
        assert!(matches!(
            repr,
            Repr::DstUnreachable {
                reason: DstUnreachable::PortUnreachable,
                next_hop_mtu: None,
                ..
            }
        ));
        // Emitting a port-unreachable zeroes the unused word even if an MTU is supplied.
        let odd = Repr::DstUnreachable {
            reason: DstUnreachable::PortUnreachable,
            next_hop_mtu: Some(1400),
            invoking: &FRAG_NEEDED[8..],
        };
        let mut out = [0xffu8; 48];
        odd.emit(&mut Packet::new_unchecked(&mut out[..]), true)
            .unwrap();
        assert_eq!(be32(&out, 4), 0);
    }

    #[test]
    fn time_exceeded_round_trip_and_display() {
        let repr = Repr::TimeExceeded {
            reason: TimeExceeded::TtlExceeded,
            invoking: &FRAG_NEEDED[8..36],
        };
        let mut out = [0u8; 36];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]), true)
            .unwrap();
        assert_eq!(&out[..2], &[11, 0]);
        let p = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Repr::parse(&p, true).unwrap(), repr);
        assert_eq!(
            repr.to_string(),
            "ICMP time-exceeded ttl-exceeded \
             for TCP 192.168.1.10:51234 > 203.0.113.5:443 seq=305419896"
        );
    }

    /// Parameter problem, pointer 9 (the quoted header's protocol byte), quoting the same
    /// segment as [`FRAG_NEEDED`] does: the bytes, the view, the meaning and its quote.
    #[test]
    fn param_problem_bytes_round_trip_and_quote() {
        let mut bytes = [0u8; 36];
        bytes[..8].copy_from_slice(&[12, 0, 0, 0, 9, 0, 0, 0]);
        bytes[8..].copy_from_slice(&FRAG_NEEDED[8..36]);
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.msg_type(), Message::ParamProblem);
        assert_eq!(p.param_problem_ptr(), 9);
        let repr = Repr::parse(&p, true).unwrap();
        assert_eq!(
            repr,
            Repr::ParamProblem {
                reason: ParamProblem::Pointer,
                pointer: 9,
                invoking: &FRAG_NEEDED[8..36],
            }
        );
        let quote = repr.quote().unwrap().unwrap();
        assert_eq!(quote.src_addr(), IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)));
        assert_eq!(quote.dst_addr(), IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)));
        assert_eq!(quote.protocol(), IpProtocol::Tcp);
        assert_eq!((quote.src_port(), quote.dst_port()), (51234, 443));
        assert_eq!(quote.tcp_seq_no(), 0x1234_5678);
        assert_eq!(
            repr.to_string(),
            "ICMP param-problem pointer pointer=9 \
             for TCP 192.168.1.10:51234 > 203.0.113.5:443 seq=305419896"
        );
        // Emitting the meaning gives the same bytes back; the view's setter agrees.
        let mut out = [0u8; 36];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]), true)
            .unwrap();
        assert_eq!(out, bytes);
        let mut copy = bytes;
        let mut v = Packet::new_unchecked(&mut copy[..]);
        v.set_param_problem_ptr(20);
        assert_eq!(&copy[4..8], &[20, 0, 0, 0]);
    }

    #[test]
    fn every_short_length_is_truncated() {
        for len in 0..HEADER_LEN {
            let bytes = &PING[..len];
            assert_eq!(Packet::new_checked(bytes).unwrap_err(), Error::Truncated);
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(bytes), false).unwrap_err(),
                Error::Truncated
            );
        }
        // Exactly the header is a valid (empty) echo request once its checksum is right.
        let mut hdr = [8u8, 0, 0, 0, 0, 1, 0, 2];
        Packet::new_unchecked(&mut hdr[..]).fill_checksum();
        let repr = Repr::parse(&Packet::new_checked(&hdr[..]).unwrap(), true).unwrap();
        assert_eq!(
            repr,
            Repr::EchoRequest {
                ident: 1,
                seq_no: 2,
                data: &[]
            }
        );
    }

    #[test]
    fn bad_checksum() {
        for at in [2, 3, 5, 20, 63] {
            let mut bytes = PING;
            bytes[at] ^= 0x01;
            let p = Packet::new_checked(&bytes[..]).unwrap();
            assert!(!p.verify_checksum());
            assert_eq!(Repr::parse(&p, true).unwrap_err(), Error::BadChecksum);
            // Without verification the (corrupted) content still parses.
            assert!(Repr::parse(&p, false).is_ok());
        }
    }

    #[test]
    fn unknown_type_is_unrecognized_but_readable() {
        // Timestamp request (type 13): valid ICMP, not modelled.
        let mut bytes = [13u8, 0, 0, 0, 0x12, 0x34, 0x00, 0x05, 0, 0, 0, 0];
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.msg_type(), Message::Unknown(13));
        assert_eq!(p.msg_type().to_string(), "type=13");
        assert!(p.verify_checksum());
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(Repr::parse(&p, true).unwrap_err(), Error::Unrecognized);
    }

    #[test]
    fn quoted_header_errors() {
        let quote = &FRAG_NEEDED[8..];
        // Every prefix shorter than IPv4 header + 8 bytes is truncated: below 20 the header
        // itself, from 20 on (IHL 5 fits) the 8 payload bytes.
        for len in 0..28 {
            assert_eq!(
                Quote::parse(&quote[..len]).unwrap_err(),
                Error::Truncated,
                "len {len}"
            );
        }
        assert!(Quote::parse(&quote[..28]).is_ok());

        let mut bad = [0u8; 40];
        bad.copy_from_slice(quote);
        bad[0] = 0x55; // version 5
        assert_eq!(Quote::parse(&bad).unwrap_err(), Error::BadVersion);
        bad[0] = 0x65; // version 6: read as IPv6, whose 40-byte header leaves nothing
        assert_eq!(Quote::parse(&bad).unwrap_err(), Error::Truncated);
        bad[0] = 0x44; // IHL 4 < 5
        assert_eq!(Quote::parse(&bad).unwrap_err(), Error::BadHeaderLength);
        bad[0] = 0x4f; // IHL 15 = 60 bytes > 40 present
        assert_eq!(Quote::parse(&bad).unwrap_err(), Error::BadHeaderLength);
        bad[0] = 0x48; // IHL 8 = 32 bytes: fits, but leaves 8 payload bytes exactly
        let orig = Quote::parse(&bad).unwrap();
        assert_eq!(orig.header().len(), 32);
        assert_eq!(orig.payload(), &bad[32..]);
        bad[0] = 0x49; // IHL 9 = 36 bytes: only 4 payload bytes remain
        assert_eq!(Quote::parse(&bad).unwrap_err(), Error::Truncated);

        // Through a Repr: an error message whose quote is too short still parses; its
        // original header does not.
        let repr = Repr::DstUnreachable {
            reason: DstUnreachable::PortUnreachable,
            next_hop_mtu: None,
            invoking: &quote[..24],
        };
        assert_eq!(repr.quote(), Some(Err(Error::Truncated)));
        assert_eq!(repr.to_string(), "ICMP dst-unreachable port-unreachable");
    }

    #[test]
    fn non_first_fragment_shows_no_ports() {
        let mut quote = [0u8; 40];
        quote.copy_from_slice(&FRAG_NEEDED[8..]);
        quote[6] = 0x20; // MF, offset 0x00b9 * 8
        quote[7] = 0xb9;
        let orig = Quote::parse(&quote).unwrap();
        assert_eq!(orig.frag_offset(), 0xb9 * 8);
        assert_eq!(orig.to_string(), "proto=6 192.168.1.10 > 203.0.113.5");
    }

    #[test]
    fn emit_into_short_buffer_is_an_error() {
        let repr = Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: &[1, 2, 3],
        };
        let mut out = [0u8; 10];
        assert_eq!(
            repr.emit(&mut Packet::new_unchecked(&mut out[..]), true),
            Err(Error::BufferTooSmall)
        );
        // A longer buffer is fine; the message is its prefix.
        let mut out = [0xaau8; 16];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]), true)
            .unwrap();
        assert_eq!(out[11..], [0xaa; 5]);
        let p = Packet::new_checked(&out[..11]).unwrap();
        assert_eq!(Repr::parse(&p, true).unwrap(), repr);
    }

    #[test]
    fn enums_round_trip_through_u8() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Message::from(v)), v);
            assert_eq!(u8::from(DstUnreachable::from(v)), v);
            assert_eq!(u8::from(TimeExceeded::from(v)), v);
            assert_eq!(u8::from(ParamProblem::from(v)), v);
        }
        assert_eq!(Message::from(12), Message::ParamProblem);
        assert_eq!(ParamProblem::from(2), ParamProblem::BadLength);
        assert_eq!(DstUnreachable::from(4), DstUnreachable::FragNeeded);
        assert_eq!(DstUnreachable::from(16), DstUnreachable::Unknown(16));
        assert_eq!(DstUnreachable::Unknown(16).to_string(), "code=16");
    }

    /// Everything needed to build any [`Repr`], owned so proptest can generate it.
    #[derive(Debug, Clone)]
    struct Gen {
        kind: u8,
        ident: u16,
        seq_no: u16,
        code: u8,
        mtu: u16,
        data: Vec<u8>,
    }

    impl Gen {
        /// A canonical Repr: the one parsing its emitted bytes must give back.
        fn repr(&self) -> Repr<'_> {
            let reason = DstUnreachable::from(self.code);
            match self.kind % 5 {
                0 => Repr::EchoRequest {
                    ident: self.ident,
                    seq_no: self.seq_no,
                    data: &self.data,
                },
                1 => Repr::EchoReply {
                    ident: self.ident,
                    seq_no: self.seq_no,
                    data: &self.data,
                },
                2 => Repr::DstUnreachable {
                    reason,
                    next_hop_mtu: (reason == DstUnreachable::FragNeeded && self.mtu != 0)
                        .then_some(self.mtu),
                    invoking: &self.data,
                },
                3 => Repr::TimeExceeded {
                    reason: TimeExceeded::from(self.code),
                    invoking: &self.data,
                },
                _ => Repr::ParamProblem {
                    reason: ParamProblem::from(self.code),
                    pointer: self.mtu as u8,
                    invoking: &self.data,
                },
            }
        }
    }

    fn gen_strategy(max_code: u8) -> impl Strategy<Value = Gen> {
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            prop_oneof![Just(4u8), 0..=max_code],
            prop_oneof![Just(0u16), any::<u16>()],
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(kind, ident, seq_no, code, mtu, data)| Gen {
                kind,
                ident,
                seq_no,
                code,
                mtu,
                data,
            })
    }

    /// Our meaning in etherparse's terms, mapped by name (not by number) so that the code
    /// numbering is checked independently.
    fn to_etherparse(repr: &Repr<'_>) -> Option<etherparse::Icmpv4Type> {
        use etherparse::icmpv4::{
            DestUnreachableHeader as D, ParameterProblemHeader as P, TimeExceededCode as T,
        };
        use etherparse::{IcmpEchoHeader, Icmpv4Type};
        Some(match *repr {
            Repr::EchoRequest { ident, seq_no, .. } => Icmpv4Type::EchoRequest(IcmpEchoHeader {
                id: ident,
                seq: seq_no,
            }),
            Repr::EchoReply { ident, seq_no, .. } => Icmpv4Type::EchoReply(IcmpEchoHeader {
                id: ident,
                seq: seq_no,
            }),
            Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            } => Icmpv4Type::DestinationUnreachable(match reason {
                DstUnreachable::NetUnreachable => D::Network,
                DstUnreachable::HostUnreachable => D::Host,
                DstUnreachable::ProtoUnreachable => D::Protocol,
                DstUnreachable::PortUnreachable => D::Port,
                DstUnreachable::FragNeeded => D::FragmentationNeeded {
                    next_hop_mtu: next_hop_mtu.unwrap_or(0),
                },
                DstUnreachable::SrcRouteFailed => D::SourceRouteFailed,
                DstUnreachable::NetUnknown => D::NetworkUnknown,
                DstUnreachable::HostUnknown => D::HostUnknown,
                DstUnreachable::SrcHostIsolated => D::Isolated,
                DstUnreachable::NetProhibited => D::NetworkProhibited,
                DstUnreachable::HostProhibited => D::HostProhibited,
                DstUnreachable::NetTosUnreachable => D::TosNetwork,
                DstUnreachable::HostTosUnreachable => D::TosHost,
                DstUnreachable::CommProhibited => D::FilterProhibited,
                DstUnreachable::HostPrecedenceViolation => D::HostPrecedenceViolation,
                DstUnreachable::PrecedenceCutoff => D::PrecedenceCutoff,
                DstUnreachable::Unknown(_) => return None,
            }),
            Repr::TimeExceeded { reason, .. } => Icmpv4Type::TimeExceeded(match reason {
                TimeExceeded::TtlExceeded => T::TtlExceededInTransit,
                TimeExceeded::FragReassemblyExceeded => T::FragmentReassemblyTimeExceeded,
                TimeExceeded::Unknown(_) => return None,
            }),
            Repr::ParamProblem {
                reason, pointer, ..
            } => Icmpv4Type::ParameterProblem(match reason {
                ParamProblem::Pointer => P::PointerIndicatesError(pointer),
                ParamProblem::MissingOption => P::MissingRequiredOption,
                ParamProblem::BadLength => P::BadLength,
                ParamProblem::Unknown(_) => return None,
            }),
        })
    }

    /// An etherparse ICMPv4 type that maps onto one of our Reprs.
    fn etherparse_type() -> impl Strategy<Value = etherparse::Icmpv4Type> {
        use etherparse::icmpv4::{DestUnreachableHeader, ParameterProblemHeader, TimeExceededCode};
        use etherparse::{IcmpEchoHeader, Icmpv4Type};
        prop_oneof![
            (any::<u16>(), any::<u16>())
                .prop_map(|(id, seq)| Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq })),
            (any::<u16>(), any::<u16>())
                .prop_map(|(id, seq)| Icmpv4Type::EchoReply(IcmpEchoHeader { id, seq })),
            (0u8..=15, any::<u16>()).prop_map(|(code, mtu)| {
                Icmpv4Type::DestinationUnreachable(
                    DestUnreachableHeader::from_values(code, mtu).expect("codes 0..=15 exist"),
                )
            }),
            (0u8..=1).prop_map(|code| Icmpv4Type::TimeExceeded(
                TimeExceededCode::from_u8(code).expect("codes 0..=1 exist")
            )),
            (0u8..=2, any::<u8>()).prop_map(|(code, pointer)| {
                Icmpv4Type::ParameterProblem(
                    ParameterProblemHeader::from_values(code, pointer).expect("codes 0..=2 exist"),
                )
            }),
        ]
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(g in gen_strategy(255)) {
            let repr = g.repr();
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]), true).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Repr::parse(&p, true).unwrap(), repr);
            // Display never panics and names the type.
            prop_assert!(repr.to_string().starts_with("ICMP "));
        }

        #[test]
        fn etherparse_reads_what_we_write(mut g in gen_strategy(15)) {
            if g.kind % 5 == 3 {
                g.code %= 2; // etherparse names only the two time-exceeded codes
            }
            if g.kind % 5 == 4 {
                g.code %= 3; // and three parameter-problem codes, the pointer only for code 0
                if g.code != 0 {
                    g.mtu = 0;
                }
            }
            let repr = g.repr();
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]), true).unwrap();
            let slice = etherparse::Icmpv4Slice::from_slice(&buf).unwrap();
            let want = to_etherparse(&repr).unwrap();
            prop_assert_eq!(slice.icmp_type(), want.clone());
            prop_assert_eq!(slice.payload(), repr.data());
            prop_assert_eq!(slice.checksum(), want.calc_checksum(slice.payload()));
        }

        #[test]
        fn we_read_what_etherparse_writes(
            ty in etherparse_type(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let header = etherparse::Icmpv4Header::with_checksum(ty.clone(), &payload);
            let mut buf = header.to_bytes().to_vec();
            buf.extend_from_slice(&payload);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(p.checksum(), header.checksum);
            let repr = Repr::parse(&p, true).unwrap();
            prop_assert_eq!(to_etherparse(&repr), Some(ty));
            prop_assert_eq!(repr.data(), &payload[..]);
        }

        #[test]
        fn quoted_header_matches_etherparse(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            options in proptest::collection::vec(any::<u8>(), 0..=10),
            frag in 0u16..=0x1fff,
            total in 28u16..=1500,
            ports in any::<(u16, u16)>(),
            seq in any::<u32>(),
            cut in 0usize..20,
        ) {
            let mut ip = etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, src, dst)
                .unwrap();
            ip.options = etherparse::Ipv4Options::try_from(&vec![1u8; options.len() * 4][..])
                .unwrap();
            ip.fragment_offset = etherparse::IpFragOffset::try_new(frag).unwrap();
            ip.total_len = total;
            let tcp = etherparse::TcpHeader::new(ports.0, ports.1, seq, 1000);
            let mut quote = ip.to_bytes().to_vec();
            quote.extend_from_slice(&tcp.to_bytes());
            // Routers quote at least 8 payload bytes; cut somewhere in the rest of TCP.
            quote.truncate(ip.header_len() + 8 + cut % 13);
            let orig = Quote::parse(&quote).unwrap();
            prop_assert_eq!(orig.header().len(), ip.header_len());
            prop_assert_eq!(orig.src_addr(), IpAddr::V4(Ipv4Addr::from(src)));
            prop_assert_eq!(orig.dst_addr(), IpAddr::V4(Ipv4Addr::from(dst)));
            prop_assert_eq!(orig.protocol(), IpProtocol::Tcp);
            prop_assert_eq!(orig.ip_len(), usize::from(total));
            prop_assert_eq!(orig.frag_offset(), frag * 8);
            prop_assert_eq!(orig.src_port(), ports.0);
            prop_assert_eq!(orig.dst_port(), ports.1);
            prop_assert_eq!(orig.tcp_seq_no(), seq);
            // One byte short of the 8 payload bytes is a typed error.
            prop_assert_eq!(
                Quote::parse(&quote[..ip.header_len() + 7]).unwrap_err(),
                Error::Truncated
            );
        }

        #[test]
        fn never_panics(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..120),
            quote_ver_ihl in any::<u8>(),
            force_v4 in any::<bool>(),
        ) {
            // Half the time make the quote look like IPv4 so the deeper checks are reached.
            if force_v4 && bytes.len() > 8 {
                bytes[8] = 0x40 | (quote_ver_ihl & 0x0f);
            }
            let Ok(p) = Packet::new_checked(&bytes[..]) else {
                prop_assert!(bytes.len() < HEADER_LEN);
                return Ok(());
            };
            let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident());
            let _ = (p.echo_seq_no(), p.next_hop_mtu(), p.rest_of_header(), p.data());
            let _ = p.verify_checksum();
            if let Ok(orig) = p.quote() {
                let _ = (orig.header().len(), orig.ip_len(), orig.frag_offset());
                let _ = (orig.protocol(), orig.src_addr(), orig.dst_addr(), orig.payload());
                let _ = (orig.src_port(), orig.dst_port(), orig.tcp_seq_no());
                let _ = orig.to_string();
            }
            for verify in [false, true] {
                if let Ok(repr) = Repr::parse(&p, verify) {
                    let _ = repr.to_string();
                    let _ = repr.quote();
                    let mut out = vec![0u8; repr.buffer_len()];
                    prop_assert!(repr.emit(&mut Packet::new_unchecked(&mut out[..]), true).is_ok());
                }
            }
        }
    }
}
