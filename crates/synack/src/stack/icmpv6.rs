//! ICMPv6 (RFC 4443): echo replies (§4.2), packet too big lowering the path MTU (§3.2, RFC
//! 8201: one below 1280 is discarded), destination unreachable as a soft error on the connection it
//! quotes (§3.1, as for IPv4), and the errors this host sends: parameter problems from the
//! header walk (`ipv6.rs`) and time exceeded when reassembly gives up, within the rules of
//! §2.4(e) and the shared rate limit.

use crate::tcp::ecn::Codepoint;
use core::net::{IpAddr, Ipv6Addr};

use super::IPV6_MIN_MTU;
use super::Stack;
use super::egress::IpHeader;
use super::icmp::ErrorKind;
use crate::tcp::Error as TcpError;
use crate::time::Instant;
use crate::wire::icmpv6::{self, MAX_ERROR_INVOKING_LEN, ParamProblem};
use crate::wire::ipv6ext::{Chain, FragmentHeader};
use crate::wire::{self, IpProtocol, ipv6};

impl Stack {
    /// The ICMPv6 message at `at` in `bytes`, an IPv6 packet for us.
    pub(super) fn handle_icmpv6(&mut self, now: Instant, bytes: &[u8], at: usize) {
        self.counters.icmp6_in_msgs += 1;
        let ip = ipv6::Packet::new_unchecked(bytes);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let Ok(packet) = icmpv6::Packet::new_checked(&bytes[at..]) else {
            self.counters.icmp6_in_errors += 1;
            return self.trace_drop(now, "ICMPv6 truncated", bytes);
        };
        let repr = match icmpv6::Repr::parse(&packet, src, dst, true) {
            Ok(r) => r,
            Err(wire::Error::Unrecognized) => {
                // Neighbour discovery, MLD, ...: nothing to do on a layer-3 link.
                return self.trace_drop(now, "ICMPv6 type not handled", bytes);
            }
            Err(_) => {
                self.counters.icmp6_in_errors += 1;
                return self.trace_drop(now, "ICMPv6 malformed or bad checksum", bytes);
            }
        };
        match repr {
            icmpv6::Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                self.counters.icmp6_in_echos += 1;
                if self.forwards(IpAddr::V6(dst)) {
                    // Not ours: the forwarder's application decides (forward.rs).
                    let (s, d) = (IpAddr::V6(src), IpAddr::V6(dst));
                    return self.forward_echo(now, s, d, ident, seq_no, data);
                }
                let reply = icmpv6::Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                if self.send_icmpv6(dst, src, &reply) {
                    self.counters.icmp6_out_echo_replies += 1;
                }
            }
            icmpv6::Repr::PacketTooBig { mtu, invoking } => {
                self.counters.icmp6_in_pkt_too_bigs += 1;
                // RFC 8201 §4: the path MTU never goes below the IPv6 minimum link MTU, and a
                // message reporting less is discarded (Linux's tcp_v6_err too).
                if mtu < u32::from(IPV6_MIN_MTU) {
                    return self.trace_drop(now, "packet too big below 1280: ignored", bytes);
                }
                let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
                self.icmp_error_to_conn(now, ErrorKind::PathMtu(mtu), invoking);
            }
            icmpv6::Repr::DstUnreachable { reason, invoking } => {
                self.counters.icmp6_in_dest_unreachs += 1;
                // Linux `icmpv6_err_convert`.
                use icmpv6::DstUnreachable as D;
                // Linux `icmpv6_err_convert`: the error, and whether it is fatal (which drops
                // a half-open connection, `tcp_req_err`).
                let (err, fatal) = match reason {
                    D::NoRoute => (TcpError::NetUnreachable, false),
                    D::AdminProhibited | D::FailedPolicy | D::RejectRoute => {
                        (TcpError::Prohibited, true)
                    }
                    D::PortUnreachable => (TcpError::Refused, true),
                    D::BeyondScope | D::AddrUnreachable => (TcpError::Unreachable, false),
                    D::Unknown(_) => (TcpError::ProtocolError, false),
                };
                let kind = ErrorKind::Error {
                    what: format!("destination unreachable ({reason})"),
                    err,
                    drops_request: fatal,
                    reverts_rto: false,
                };
                self.icmp_error_to_conn(now, kind, invoking);
            }
            icmpv6::Repr::TimeExceeded { reason, invoking } => {
                let kind = ErrorKind::Error {
                    what: format!("time exceeded ({reason})"),
                    err: TcpError::Unreachable,
                    drops_request: false,
                    reverts_rto: false,
                };
                self.icmp_error_to_conn(now, kind, invoking);
            }
            icmpv6::Repr::ParamProblem {
                reason, invoking, ..
            } => self.icmp_error_to_conn(now, ErrorKind::param_problem(reason), invoking),
            _ => {}
        }
    }

    /// Queues an ICMPv6 message from `src` to `dst` (large ones leave in fragments). Returns
    /// whether it was queued.
    pub(super) fn send_icmpv6(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        repr: &icmpv6::Repr<'_>,
    ) -> bool {
        let (s, d) = (IpAddr::V6(src), IpAddr::V6(dst));
        let ip = IpHeader {
            src: s,
            dst: d,
            protocol: IpProtocol::Icmpv6,
            dont_frag: false,
            flow_label: self.flow_label(s, 0, d, 0, 0),
            ttl: None,
            ecn: Codepoint::NotEct,
        };
        let sent = self.queue_ip(ip, repr.buffer_len(), |payload| {
            repr.emit(&mut icmpv6::Packet::new_unchecked(payload), src, dst, true)
                .is_ok()
        });
        if sent {
            self.counters.icmp6_out_msgs += 1;
        }
        sent
    }

    /// RFC 4443 §2.4(e): may an error be sent about `invoking`? Not about an ICMPv6 error
    /// (or a packet whose headers cannot be read far enough to tell), not to an address that
    /// is not one node's (unspecified, multicast: the input checks dropped those), and not
    /// beyond the rate limit (§2.4(f)).
    fn may_send_icmpv6_error(&mut self, now: Instant, invoking: &[u8]) -> bool {
        if invoking.len() < ipv6::HEADER_LEN {
            return false;
        }
        let p = ipv6::Packet::new_unchecked(invoking);
        let rest = &invoking[ipv6::HEADER_LEN..];
        let first = u8::from(p.next_header());
        if let Ok(chain) = Chain::walk(first, rest) {
            // After a non-first fragment's header come data, not an ICMPv6 header.
            let later_fragment = chain.fragment().is_some_and(|h| {
                FragmentHeader::new_unchecked(&rest[h.offset..]).frag_offset() != 0
            });
            if IpProtocol::from(chain.upper) == IpProtocol::Icmpv6 && !later_fragment {
                // Types 0–127 are errors (§2.1).
                match rest.get(chain.upper_offset) {
                    Some(&ty) if ty >= 128 => {}
                    _ => return false,
                }
            }
        }
        let src = p.src_addr();
        if src.is_unspecified() || src.is_multicast() {
            return false;
        }
        self.icmp_rate_ok(now)
    }

    /// Queues an ICMPv6 error about `invoking` (a packet that reached us), quoting as much of
    /// it as keeps the error within 1280 bytes (§2.4(c)).
    pub(super) fn send_icmpv6_error(
        &mut self,
        now: Instant,
        invoking: &[u8],
        msg: impl FnOnce(&[u8]) -> icmpv6::Repr<'_>,
    ) -> bool {
        if !self.may_send_icmpv6_error(now, invoking) {
            return false;
        }
        let p = ipv6::Packet::new_unchecked(invoking);
        let (src, dst) = (p.dst_addr(), p.src_addr());
        let quote = &invoking[..invoking.len().min(MAX_ERROR_INVOKING_LEN)];
        self.send_icmpv6(src, dst, &msg(quote))
    }

    /// RFC 4443 §3.4: parameter problem about `invoking`, `pointer` bytes into it.
    pub(super) fn send_param_problem(
        &mut self,
        now: Instant,
        invoking: &[u8],
        reason: ParamProblem,
        pointer: usize,
    ) {
        let pointer = u32::try_from(pointer).unwrap_or(u32::MAX);
        let sent = self.send_icmpv6_error(now, invoking, |quote| icmpv6::Repr::ParamProblem {
            reason,
            pointer,
            invoking: quote,
        });
        if sent {
            self.counters.icmp6_out_parm_problems += 1;
        }
    }

    /// RFC 8200 §4.5: "fragment reassembly time exceeded" (code 1), quoting fragment 0.
    pub(super) fn send_reassembly_timeout_v6(&mut self, now: Instant, first: &[u8]) {
        let sent = self.send_icmpv6_error(now, first, |quote| icmpv6::Repr::TimeExceeded {
            reason: icmpv6::TimeExceeded::FragReassemblyExceeded,
            invoking: quote,
        });
        if sent {
            self.counters.icmp6_out_time_excds += 1;
        }
    }
}
