//! Output: [`Stack::poll_transmit`] writes the next IP packet, in this order: control packets
//! the stack itself owes (RSTs, ICMP replies), SYN-ACKs of the SYN queue, then connections
//! with something to send.

use core::net::{IpAddr, Ipv4Addr};

use super::Stack;
use crate::tcp::connection::MAX_HEADER;
use crate::time::Instant;
use crate::trace::Direction;
use crate::wire::{IpProtocol, ipv4};

/// Bound on queued control packets (RST replies to a flood of stray segments are dropped
/// beyond it).
pub(super) const MAX_CONTROL: usize = 1024;

impl Stack {
    /// Writes the next IP packet to send into `buf` and returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(p) = self.control.pop_front() {
            let n = p.len().min(buf.len());
            buf[..n].copy_from_slice(&p[..n]);
            self.trace_packet(now, Direction::Out, &buf[..n]);
            self.counters.ip_out_requests += 1;
            return Some(n);
        }
        if let Some(n) = self.transmit_synack(buf) {
            self.trace_packet(now, Direction::Out, &buf[..n]);
            self.counters.ip_out_requests += 1;
            return Some(n);
        }
        while let Some(h) = self.dirty.front().copied() {
            let (ttl, ident) = (self.cfg.ttl, self.ip_ident);
            let mut sent = None;
            if let Some((c, ctr)) = self.slot_and_counters(h) {
                if let (IpAddr::V4(src), IpAddr::V4(dst)) =
                    (c.conn.local().ip(), c.conn.remote().ip())
                {
                    let tcp_room = buf.len().saturating_sub(ipv4::HEADER_LEN);
                    if tcp_room > MAX_HEADER {
                        if let Some(n) =
                            c.conn.poll_transmit(now, &mut buf[ipv4::HEADER_LEN..], ctr)
                        {
                            let mut ip = ipv4::Repr::new(src, dst, IpProtocol::Tcp, n);
                            ip.ttl = ttl;
                            ip.ident = ident;
                            let total = ipv4::HEADER_LEN + n;
                            let mut pkt = ipv4::Packet::new_unchecked(&mut buf[..total]);
                            if ip.emit(&mut pkt, true).is_ok() {
                                sent = Some(total);
                            }
                        }
                    }
                }
                if sent.is_none() {
                    c.dirty = false;
                }
            }
            if sent.is_none() {
                self.dirty.pop_front();
            }
            // The send may have armed timers or produced events; a finished connection goes.
            self.refresh(h, now);
            if let Some(total) = sent {
                self.ip_ident = self.ip_ident.wrapping_add(1);
                self.counters.ip_out_requests += 1;
                self.trace_packet(now, Direction::Out, &buf[..total]);
                // It stays at the front of the queue: it may have more to send.
                return Some(total);
            }
        }
        None
    }

    fn queue_control(&mut self, packet: Vec<u8>) {
        if self.control.len() < MAX_CONTROL {
            self.control.push_back(packet);
        }
    }

    /// Builds an IPv4 packet of `len` payload bytes that `fill` writes, and queues it as a
    /// control packet. Returns whether it was queued.
    pub(super) fn queue_ip(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> bool {
        let mut out = vec![0u8; ipv4::HEADER_LEN + len];
        let mut ip = ipv4::Repr::new(src, dst, protocol, len);
        ip.ttl = self.cfg.ttl;
        ip.ident = self.ip_ident;
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let mut pkt = ipv4::Packet::new_unchecked(&mut out[..]);
        if ip.emit(&mut pkt, true).is_err() || !fill(pkt.payload_mut()) {
            return false;
        }
        self.queue_control(out);
        true
    }
}
