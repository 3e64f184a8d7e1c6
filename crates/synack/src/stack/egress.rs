//! Output: [`Stack::poll_transmit`] writes the next IP packet, in this order: control packets
//! the stack itself owes (RSTs, ICMP replies), SYN-ACKs of the SYN queue, then connections
//! with something to send.

use core::net::{IpAddr, Ipv4Addr};
use std::collections::VecDeque;

use super::Stack;
use crate::tcp::connection::MAX_HEADER;
use crate::time::Instant;
use crate::trace::Direction;
use crate::wire::{IpProtocol, ipv4};

/// Bound on queued control packets (RST replies to a flood of stray segments are dropped
/// beyond it).
pub(super) const MAX_CONTROL: usize = 1024;
/// Bound on the payload bytes of queued control packets (echo replies can be large).
const MAX_CONTROL_BYTES: usize = 1 << 20;

/// A packet the stack itself owes (a RST, an ACK for a half-open connection, an ICMP
/// message): its IP header's fields, and its payload, already written, at the front of
/// [`ControlQueue::bytes`]. The IP header is written straight into the caller's buffer by
/// `poll_transmit`, as SYN-ACKs are; nothing is allocated per packet.
#[derive(Debug, Clone, Copy)]
struct Control {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    len: usize,
}

/// The control packets in order, their payloads back to back in one reused buffer.
#[derive(Default)]
pub(super) struct ControlQueue {
    packets: VecDeque<Control>,
    bytes: Vec<u8>,
    /// Where the front packet's payload starts in `bytes`.
    head: usize,
}

impl ControlQueue {
    pub(super) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Appends a packet whose payload of `len` bytes `fill` writes in place. False (and
    /// nothing queued) when the queue is full or `fill` fails.
    fn push(&mut self, c: Control, fill: impl FnOnce(&mut [u8]) -> bool) -> bool {
        if self.packets.len() >= MAX_CONTROL
            || self.bytes.len() - self.head + c.len > MAX_CONTROL_BYTES
        {
            return false;
        }
        if self.head > 0 && self.head >= self.bytes.len() / 2 {
            // Reclaim the sent half: amortised O(1), and the buffer's capacity is kept.
            self.bytes.drain(..self.head);
            self.head = 0;
        }
        let at = self.bytes.len();
        self.bytes.resize(at + c.len, 0);
        if !fill(&mut self.bytes[at..]) {
            self.bytes.truncate(at);
            return false;
        }
        self.packets.push_back(c);
        true
    }

    /// The front packet and its payload.
    fn front(&self) -> Option<(Control, &[u8])> {
        let c = *self.packets.front()?;
        Some((c, &self.bytes[self.head..self.head + c.len]))
    }

    fn pop(&mut self) {
        if let Some(c) = self.packets.pop_front() {
            self.head += c.len;
            if self.packets.is_empty() {
                self.bytes.clear();
                self.head = 0;
            }
        }
    }
}

impl Stack {
    /// Writes the next IP packet to send into `buf` and returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(n) = self.transmit_control(buf) {
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

    /// Writes the front control packet into `buf` (dropped if `buf` is too small for it).
    fn transmit_control(&mut self, buf: &mut [u8]) -> Option<usize> {
        while let Some((c, payload)) = self.control.front() {
            let total = ipv4::HEADER_LEN + c.len;
            let mut written = None;
            if let Some(out) = buf.get_mut(..total) {
                let mut ip = ipv4::Repr::new(c.src, c.dst, c.protocol, c.len);
                ip.ttl = self.cfg.ttl;
                ip.ident = self.ip_ident;
                let mut pkt = ipv4::Packet::new_unchecked(out);
                if ip.emit(&mut pkt, true).is_ok() {
                    pkt.payload_mut().copy_from_slice(payload);
                    written = Some(total);
                }
            }
            self.control.pop();
            if written.is_some() {
                self.ip_ident = self.ip_ident.wrapping_add(1);
                return written;
            }
        }
        None
    }

    /// Queues an IPv4 packet of `len` payload bytes that `fill` writes in place, as a control
    /// packet. Returns whether it was queued.
    pub(super) fn queue_ip(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> bool {
        let c = Control {
            src,
            dst,
            protocol,
            len,
        };
        self.control.push(c, fill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(len: usize) -> Control {
        Control {
            src: Ipv4Addr::new(198, 18, 0, 2),
            dst: Ipv4Addr::new(198, 18, 0, 1),
            protocol: IpProtocol::Tcp,
            len,
        }
    }

    #[test]
    fn control_packets_come_out_in_order_with_their_payloads() {
        let mut q = ControlQueue::default();
        for i in 0..3u8 {
            assert!(q.push(control(usize::from(i) + 1), |b| {
                b.fill(i);
                true
            }));
        }
        for i in 0..3u8 {
            let (c, payload) = q.front().unwrap();
            assert_eq!(c.len, usize::from(i) + 1);
            assert_eq!(payload, &vec![i; usize::from(i) + 1][..]);
            q.pop();
        }
        assert!(q.is_empty() && q.front().is_none());
    }

    #[test]
    fn a_failed_fill_queues_nothing_and_the_bounds_hold() {
        let mut q = ControlQueue::default();
        assert!(!q.push(control(20), |_| false));
        assert!(q.is_empty());
        assert!(!q.push(control(MAX_CONTROL_BYTES + 1), |_| true));
        for _ in 0..MAX_CONTROL {
            assert!(q.push(control(20), |_| true));
        }
        assert!(!q.push(control(20), |_| true), "count bound");
    }

    #[test]
    fn the_payload_buffer_is_reused_not_regrown() {
        // A queue that never drains completely (one packet always waiting) still reclaims
        // the sent bytes: its buffer stops growing.
        let mut q = ControlQueue::default();
        assert!(q.push(control(40), |_| true));
        let mut cap = 0;
        for round in 0..10_000 {
            assert!(q.push(control(40), |_| true));
            q.pop();
            if round == 100 {
                cap = q.bytes.capacity();
            }
        }
        assert_eq!(q.bytes.capacity(), cap);
        assert!(q.bytes.len() <= 4 * 40);
    }
}
