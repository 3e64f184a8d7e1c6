//! ICMP for IPv4: echo replies (RFC 792), errors mapped onto the connection they quote
//! (RFC 1122 §4.2.3.9: destination unreachable, time exceeded, parameter problem;
//! fragmentation needed lowers the path MTU, RFC 1191), and what both
//! families share: matching an error to a connection, the rules for sending errors
//! (RFC 1122 §3.2.2, RFC 4443 §2.4) and their rate limit.

use crate::tcp::ecn::Codepoint;
use core::net::{IpAddr, Ipv4Addr};

use super::Stack;
use super::egress::IpHeader;
use crate::tcp::{Error as TcpError, SeqNum};
use crate::time::Instant;
use crate::wire::icmp::Quote;
use crate::wire::ip_header_len;
use crate::wire::{self, IpProtocol, icmpv4, ipv4};

/// Linux `icmp_msgs_per_sec`: ICMP errors the host sends per second, at most.
const ERRORS_PER_SEC: u64 = 1000;
/// Linux `icmp_msgs_burst`.
const ERROR_BURST: u64 = 50;

/// RFC 1812 §4.3.2.8 / RFC 4443 §2.4(f): a token bucket for the ICMP errors the host sends,
/// shared by both families (Linux's global limit).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RateLimit {
    tokens: u64,
    last: Option<Instant>,
}

impl RateLimit {
    /// Takes a token if there is one.
    fn take(&mut self, now: Instant) -> bool {
        let refill = match self.last {
            None => ERROR_BURST,
            Some(t) => (now - t).as_micros() as u64 * ERRORS_PER_SEC / 1_000_000,
        };
        if refill > 0 || self.last.is_none() {
            self.tokens = (self.tokens + refill).min(ERROR_BURST);
            self.last = Some(now);
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// The smallest IPv4 path MTU an ICMP "fragmentation needed" can set (Linux's
/// net.ipv4.route.min_pmtu default, 512 + 40): a smaller announced MTU is raised to it, so the
/// send MSS never falls below 512.
pub(super) const MIN_PMTU_V4: u16 = 552;

/// What an ICMP error tells a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ErrorKind {
    /// Packets this big do not get through (IPv4 fragmentation needed, IPv6 packet too big).
    PathMtu(u16),
    /// Any other error for a connection: the message (for the trace), what Linux makes of
    /// it (`icmp_err_convert`, `icmpv6_err_convert`), and whether it drops a half-open
    /// connection of a listener (`tcp_req_err`'s `abort`).
    Error {
        what: String,
        err: TcpError,
        drops_request: bool,
        /// A net or host unreachable (ICMPv4 codes 0 and 1): it may undo one step of the
        /// retransmission timer's backoff (RFC 6069, Linux `tcp_ld_RTO_revert`).
        reverts_rto: bool,
    },
}

impl ErrorKind {
    /// A parameter problem of either family: Linux `tcp_v4_err` / `icmpv6_err_convert` make
    /// it EPROTO, fatal (it aborts a connection attempt and drops a half-open connection; a
    /// soft error once established).
    pub(super) fn param_problem(reason: impl core::fmt::Display) -> ErrorKind {
        ErrorKind::Error {
            what: format!("parameter problem ({reason})"),
            err: TcpError::ProtocolError,
            drops_request: true,
            reverts_rto: false,
        }
    }
}

/// Linux's `icmp_err_convert` for ICMPv4 destination unreachable (every code but
/// fragmentation needed, which is a path MTU).
fn unreachable_error(code: icmpv4::DstUnreachable) -> TcpError {
    use icmpv4::DstUnreachable as D;
    match code {
        D::NetUnreachable | D::NetUnknown | D::NetProhibited | D::NetTosUnreachable => {
            TcpError::NetUnreachable
        }
        D::ProtoUnreachable => TcpError::ProtocolUnreachable,
        D::PortUnreachable => TcpError::Refused,
        D::SrcRouteFailed => TcpError::SourceRouteFailed,
        D::HostUnknown => TcpError::HostDown,
        D::SrcHostIsolated => TcpError::HostIsolated,
        _ => TcpError::Unreachable,
    }
}

/// The most of the invoking packet an ICMPv4 error quotes: Linux keeps the whole error
/// within 576 bytes (RFC 1812 §4.3.2.3), so 576 − 20 − 8.
const MAX_V4_QUOTE: usize = 576 - ipv4::HEADER_LEN - icmpv4::HEADER_LEN;

impl Stack {
    pub(super) fn handle_icmp(
        &mut self,
        now: Instant,
        ip: &ipv4::Repr,
        payload: &[u8],
        bytes: &[u8],
    ) {
        self.counters.icmp_in_msgs += 1;
        let Ok(packet) = icmpv4::Packet::new_checked(payload) else {
            self.counters.icmp_in_errors += 1;
            return self.trace_drop(now, "ICMP truncated", bytes);
        };
        let repr = match icmpv4::Repr::parse(&packet, true) {
            Ok(r) => r,
            Err(wire::Error::Unrecognized) => {
                return self.trace_drop(now, "ICMP type not handled", bytes);
            }
            Err(_) => {
                self.counters.icmp_in_errors += 1;
                return self.trace_drop(now, "ICMP malformed or bad checksum", bytes);
            }
        };
        match repr {
            icmpv4::Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                self.counters.icmp_in_echos += 1;
                if self.forwards(IpAddr::V4(ip.dst_addr)) {
                    // Not ours: the forwarder's application decides (forward.rs).
                    let (src, dst) = (IpAddr::V4(ip.src_addr), IpAddr::V4(ip.dst_addr));
                    return self.forward_echo(now, src, dst, ident, seq_no, data);
                }
                let reply = icmpv4::Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                if self.send_icmp(ip.dst_addr, ip.src_addr, &reply) {
                    self.counters.icmp_out_echo_reps += 1;
                }
            }
            icmpv4::Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                invoking,
            } => {
                self.counters.icmp_in_dest_unreachs += 1;
                let kind = match reason {
                    // RFC 1191 §5: a router that predates RFC 1191 sends no MTU; 576 is what
                    // every host accepts. RFC 1191 §3 lets a host keep a floor above RFC
                    // 791's 68: Linux's net.ipv4.route.min_pmtu, 552.
                    icmpv4::DstUnreachable::FragNeeded => {
                        ErrorKind::PathMtu(next_hop_mtu.unwrap_or(576).max(MIN_PMTU_V4))
                    }
                    // Codes beyond 15 (Linux NR_ICMP_UNREACH) are ignored.
                    icmpv4::DstUnreachable::Unknown(_) => return,
                    code => {
                        let net_or_host = matches!(
                            code,
                            icmpv4::DstUnreachable::NetUnreachable
                                | icmpv4::DstUnreachable::HostUnreachable
                        );
                        ErrorKind::Error {
                            what: format!("destination unreachable ({code})"),
                            err: unreachable_error(code),
                            drops_request: net_or_host,
                            // Linux `tcp_v4_err` reverts for the same two codes (not for
                            // IPv6).
                            reverts_rto: net_or_host,
                        }
                    }
                };
                self.icmp_error_to_conn(now, kind, invoking);
            }
            icmpv4::Repr::TimeExceeded { reason, invoking } => {
                // Linux `tcp_v4_err`: EHOSTUNREACH.
                let kind = ErrorKind::Error {
                    what: format!("time exceeded ({reason})"),
                    err: TcpError::Unreachable,
                    drops_request: true,
                    reverts_rto: false,
                };
                self.icmp_error_to_conn(now, kind, invoking);
            }
            icmpv4::Repr::ParamProblem {
                reason, invoking, ..
            } => self.icmp_error_to_conn(now, ErrorKind::param_problem(reason), invoking),
            _ => {}
        }
    }

    /// RFC 1122 §4.2.3.9, RFC 1191, RFC 8201: map an ICMP error onto the connection it
    /// quotes. A path MTU lowers the MSS (PMTU discovery); the others are soft errors that
    /// the retransmission timer deals with (Linux reports them only if the connection then
    /// times out), so they are traced and counted only.
    pub(super) fn icmp_error_to_conn(&mut self, now: Instant, kind: ErrorKind, invoking: &[u8]) {
        let Ok(orig) = Quote::parse(invoking) else {
            return;
        };
        if orig.frag_offset() != 0 {
            return;
        }
        if orig.protocol() == IpProtocol::Udp {
            return self.udp_icmp_error(now, kind, &orig);
        }
        if orig.protocol() != IpProtocol::Tcp {
            return;
        }
        let tuple = (
            orig.src_addr(),
            orig.src_port(),
            orig.dst_addr(),
            orig.dst_port(),
        );
        let seq = SeqNum(orig.tcp_seq_no());
        let Some(h) = self.conns.get(self.conns.hash(&tuple), &tuple) else {
            return;
        };
        if h.index & super::syn_queue::SQ_BIT != 0 {
            let drops = matches!(
                kind,
                ErrorKind::Error {
                    drops_request: true,
                    ..
                }
            );
            return self.icmp_error_to_request(now, h, seq, drops);
        }
        // RFC 5927 §4.1: the quoted segment must be one in flight, or a blind attacker who
        // knows the 4-tuple could lower the MSS at will. Checked before anything is learned
        // (Linux updates the path MTU only once TCP has accepted the error).
        if !self
            .conn_slot(h)
            .is_some_and(|c| c.conn.icmp_quote_acceptable(seq))
        {
            self.counters.out_of_window_icmps += 1;
            if self.trace_on() {
                self.trace_note(
                    now,
                    format!("ICMP error quoting seq {seq} outside SND.UNA..SND.NXT: ignored"),
                );
            }
            return;
        }
        match kind {
            ErrorKind::PathMtu(mtu) => {
                self.learn_path_mtu(tuple.2, mtu);
                let hlen = ip_header_len(tuple.2) as u16;
                let mss = self
                    .conn_slot(h)
                    .and_then(|c| c.conn.on_path_mtu(mtu, hlen));
                if let Some(mss) = mss {
                    self.trace_note(now, format!("PMTU {mtu}: MSS now {mss}"));
                }
                self.touched(h, now);
            }
            ErrorKind::Error {
                what,
                err,
                reverts_rto,
                ..
            } => {
                let aborted = self.conn_slot(h).is_some_and(|c| c.conn.on_icmp_error(err));
                if aborted {
                    self.counters.attempt_fails += 1;
                    self.touched(h, now);
                } else if reverts_rto {
                    let reverted = self
                        .slot_and_counters(h)
                        .is_some_and(|(c, ctr)| c.conn.revert_rto_backoff(seq, now, ctr));
                    if reverted {
                        self.trace_note(now, "RFC 6069: one RTO backoff step undone".into());
                        self.touched(h, now);
                    }
                }
                if self.trace_on() {
                    let effect = if aborted {
                        "the connection attempt fails"
                    } else {
                        "soft error"
                    };
                    self.trace_note(now, format!("ICMP {what} for a connection: {effect}"));
                }
            }
        }
    }

    /// Queues an ICMP message from `src` to `dst`; large ones leave in fragments. Returns
    /// whether it was queued.
    pub(super) fn send_icmp(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        repr: &icmpv4::Repr<'_>,
    ) -> bool {
        let ip = IpHeader {
            src: IpAddr::V4(src),
            dst: IpAddr::V4(dst),
            protocol: IpProtocol::Icmp,
            dont_frag: false,
            flow_label: 0,
            ttl: None,
            ecn: Codepoint::NotEct,
        };
        let sent = self.queue_ip(ip, repr.buffer_len(), |payload| {
            repr.emit(&mut icmpv4::Packet::new_unchecked(payload), true)
                .is_ok()
        });
        if sent {
            self.counters.icmp_out_msgs += 1;
        }
        sent
    }

    /// RFC 1122 §3.2.2: may an error be sent about `invoking`, an IPv4 packet that reached
    /// us? Not about an ICMP error, a non-initial fragment, or a packet from an address that
    /// is not one host's; and not beyond the rate limit.
    fn may_send_icmpv4_error(&mut self, now: Instant, invoking: &[u8]) -> bool {
        let Ok(p) = ipv4::Packet::new_checked(invoking) else {
            return false;
        };
        let src = p.src_addr();
        if src.is_unspecified() || src.is_multicast() || self.is_broadcast(src) {
            return false;
        }
        if p.frag_offset() != 0 {
            return false;
        }
        if p.protocol() == IpProtocol::Icmp {
            let ty = p.payload().first().copied();
            let informational = matches!(ty, Some(0 | 8 | 13 | 14 | 15 | 16 | 17 | 18));
            if !informational {
                return false;
            }
        }
        self.icmp_rate_ok(now)
    }

    /// Queues an ICMP error about `invoking` (a packet that reached us), quoting as much of it
    /// as keeps the error within 576 bytes, from its destination to its source; `msg` builds
    /// the message around the quote.
    pub(super) fn send_icmpv4_error(
        &mut self,
        now: Instant,
        invoking: &[u8],
        msg: impl FnOnce(&[u8]) -> icmpv4::Repr<'_>,
    ) -> bool {
        if !self.may_send_icmpv4_error(now, invoking) {
            return false;
        }
        let p = ipv4::Packet::new_unchecked(invoking);
        let (src, dst) = (p.dst_addr(), p.src_addr());
        let quote = &invoking[..invoking.len().min(MAX_V4_QUOTE)];
        self.send_icmp(src, dst, &msg(quote))
    }

    /// Takes a token from the ICMP error rate limit, counting a refusal.
    pub(super) fn icmp_rate_ok(&mut self, now: Instant) -> bool {
        if self.icmp_tokens.take(now) {
            return true;
        }
        self.counters.icmp_out_rate_limited += 1;
        false
    }

    /// Sends ICMP time exceeded, fragment reassembly time exceeded (RFC 792 code 1), quoting
    /// `first`, the datagram's fragment 0 (Linux `ip_expire`).
    pub(super) fn send_reassembly_timeout_v4(&mut self, now: Instant, first: &[u8]) {
        if !self.may_send_icmpv4_error(now, first) {
            return;
        }
        let p = ipv4::Packet::new_unchecked(first);
        let (src, dst) = (p.dst_addr(), p.src_addr());
        let quote = &first[..first.len().min(MAX_V4_QUOTE)];
        let msg = icmpv4::Repr::TimeExceeded {
            reason: icmpv4::TimeExceeded::FragReassemblyExceeded,
            invoking: quote,
        };
        if self.send_icmp(src, dst, &msg) {
            self.counters.icmp_out_time_excds += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn the_error_rate_limit_allows_a_burst_then_one_per_millisecond() {
        let mut r = RateLimit::default();
        let t0 = Instant::ZERO + Duration::from_secs(1);
        let burst = (0..100).filter(|_| r.take(t0)).count();
        assert_eq!(burst as u64, ERROR_BURST);
        assert!(!r.take(t0 + Duration::from_micros(500)));
        assert!(r.take(t0 + Duration::from_millis(1)));
        assert!(!r.take(t0 + Duration::from_millis(1)));
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            (0..100).filter(|_| r.take(later)).count() as u64,
            ERROR_BURST
        );
    }
}
