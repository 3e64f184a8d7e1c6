//! IPv4 input: header validation, the address checks of RFC 1122 §3.2.1.3, and dispatch to
//! TCP and ICMP.

use super::Stack;
use crate::time::Instant;
use crate::trace::Direction;
use crate::wire::{self, IpProtocol, ipv4};

impl Stack {
    /// Processes one received IP packet.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.counters.ip_in_receives += 1;
        self.trace_packet(now, Direction::In, bytes);
        if bytes.first().is_some_and(|b| b >> 4 == 6) {
            self.counters.ip_in_unknown_protos += 1;
            self.trace_drop(now, "IPv6 not routed yet", bytes);
            return;
        }
        let packet = match ipv4::Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(e) => return self.ip_error(now, e, bytes),
        };
        let ip = match ipv4::Repr::parse(&packet, true) {
            Ok(r) => r,
            Err(e) => return self.ip_error(now, e, bytes),
        };
        // Only packets for us, from a plausible peer (RFC 1122 §3.2.1.3: never accept a
        // broadcast, multicast or own address as source; §4.2.3.10: TCP ignores broadcast).
        let dst = ip.dst_addr;
        let src = ip.src_addr;
        let bad_src = src.is_broadcast()
            || src.is_multicast()
            || src.is_unspecified()
            || self.is_local(src)
            || self.addrs.iter().any(|c| c.broadcast() == src);
        if !self.is_local(dst) || bad_src {
            self.counters.ip_in_addr_errors += 1;
            self.trace_drop(now, "not for us, or impossible source address", bytes);
            return;
        }
        if packet.is_fragment() {
            self.counters.ip_reasm_fails += 1;
            self.trace_drop(now, "IP fragment (no reassembly yet)", bytes);
            return;
        }
        let payload = packet.payload();
        match ip.protocol {
            IpProtocol::Tcp => self.handle_tcp(now, &ip, payload, bytes),
            IpProtocol::Icmp => self.handle_icmp(now, &ip, payload, bytes),
            _ => {
                self.counters.ip_in_unknown_protos += 1;
                self.trace_drop(now, "protocol not supported", bytes);
            }
        }
    }

    fn ip_error(&mut self, now: Instant, e: wire::Error, bytes: &[u8]) {
        self.counters.ip_in_hdr_errors += 1;
        let reason = match e {
            wire::Error::BadChecksum => "IPv4 header checksum",
            wire::Error::Truncated => "IPv4 header truncated",
            wire::Error::BadVersion => "not IPv4",
            _ => "malformed IPv4 header",
        };
        self.trace_drop(now, reason, bytes);
    }
}
