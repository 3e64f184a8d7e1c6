//! ICMP: echo replies (RFC 792), and errors mapped onto the connection they quote (RFC 1122
//! §4.2.3.9; fragmentation needed lowers the path MTU, RFC 1191).

use core::net::{IpAddr, Ipv4Addr};

use super::Stack;
use crate::time::Instant;
use crate::trace::TraceEvent;
use crate::wire::{self, IpProtocol, icmpv4, ipv4};

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
                let reply = icmpv4::Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                self.send_icmp(ip.dst_addr, ip.src_addr, &reply);
                self.counters.icmp_out_echo_reps += 1;
            }
            icmpv4::Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                invoking,
            } => {
                self.counters.icmp_in_dest_unreachs += 1;
                self.icmp_error_to_conn(now, reason, next_hop_mtu, invoking);
            }
            _ => {}
        }
    }

    /// RFC 1122 §4.2.3.9 / RFC 1191: map an ICMP error onto the connection it quotes.
    /// Fragmentation-needed lowers the MSS (PMTU discovery); the others are soft errors that
    /// the retransmission timer deals with (Linux reports them only if the connection then
    /// times out), so they are traced and counted only.
    fn icmp_error_to_conn(
        &mut self,
        now: Instant,
        reason: icmpv4::DstUnreachable,
        mtu: Option<u16>,
        invoking: &[u8],
    ) {
        let Ok(orig) = icmpv4::Invoking::parse(invoking) else {
            return;
        };
        if orig.protocol() != IpProtocol::Tcp {
            return;
        }
        let (sp, dp) = (orig.src_port(), orig.dst_port());
        let tuple = (
            IpAddr::V4(orig.src_addr()),
            sp,
            IpAddr::V4(orig.dst_addr()),
            dp,
        );
        let Some(&h) = self.conns.get(&tuple) else {
            return;
        };
        if reason == icmpv4::DstUnreachable::FragNeeded {
            let mtu = mtu.unwrap_or(576).max(68);
            self.learn_path_mtu(tuple.2, mtu);
            if let Some(c) = self.conn_slot(h) {
                if let Some(mss) = c.conn.on_path_mtu(mtu, ipv4::HEADER_LEN as u16) {
                    if self.trace_on() {
                        let node = self.cfg.name.clone();
                        self.push_trace(TraceEvent::Note {
                            time: now,
                            node,
                            text: format!("PMTU {mtu}: MSS now {mss}"),
                        });
                    }
                }
            }
            self.touched(h, now);
        } else {
            if let Some(c) = self.conn_slot(h) {
                c.conn.on_icmp_unreachable();
            }
            if !self.trace_on() {
                return;
            }
            let node = self.cfg.name.clone();
            self.push_trace(TraceEvent::Note {
                time: now,
                node,
                text: format!(
                    "ICMP destination unreachable ({reason}) for a connection: soft error"
                ),
            });
        }
    }

    fn send_icmp(&mut self, src: Ipv4Addr, dst: Ipv4Addr, repr: &icmpv4::Repr<'_>) {
        let sent = self.queue_ip(src, dst, IpProtocol::Icmp, repr.buffer_len(), |payload| {
            repr.emit(&mut icmpv4::Packet::new_unchecked(payload), true)
                .is_ok()
        });
        if sent {
            self.counters.icmp_out_msgs += 1;
        }
    }
}
