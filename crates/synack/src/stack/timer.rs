//! Time: every connection's earliest deadline in one timing wheel (`wheel.rs`: arming is
//! O(1), a tick costs O(expired), not O(connections)), the SYN queue's own deadlines, and
//! fragment reassembly's.

use super::{SocketHandle, Stack};
use crate::time::Instant;

impl Stack {
    /// The earliest instant at which the stack has work: now if packets wait, else the
    /// earliest connection deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.control.is_empty() || !self.synacks.is_empty() || !self.dirty.is_empty() {
            return Some(Instant::ZERO);
        }
        // The earliest of the connections', the SYN queue's, reassembly's and the
        // forwarder's deadlines; the parts that hold nothing are not asked.
        let mut at = self.timers.next_deadline();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t
                && at.is_none_or(|a| t < a)
            {
                at = Some(t);
            }
        };
        consider(self.syn_queue.next_deadline());
        consider(self.time_waits.next_deadline());
        if !self.frags4.is_idle() {
            consider(self.frags4.next_deadline());
        }
        if !self.frags6.is_idle() {
            consider(self.frags6.next_deadline());
        }
        if let Some(f) = &self.forward {
            consider(f.next_deadline());
        }
        at
    }

    /// Runs the timers of every connection, SYN-queue entry and incomplete datagram due at
    /// `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each part is entered only when it has something due (drivers call this whenever
        // `poll_timeout` says now, which it does while packets wait). The SYN queue's and
        // TIME-WAIT's wheels answer "nothing due" themselves, from a bound they keep, cheaper
        // than working out their next deadline.
        if self.syn_queue.len() != 0 {
            self.syn_queue_timeouts(now);
        }
        if !(self.frags4.is_idle() && self.frags6.is_idle()) {
            self.reassembly_timeouts(now);
        }
        if self.forward.is_some() {
            self.forward_timeouts(now);
        }
        if self.time_wait_count() != 0 {
            self.time_wait_timeouts(now);
        }
        while let Some(e) = self.timers.pop_expired(now) {
            let (t, index, generation) = (e.at, e.index, e.generation);
            let h = SocketHandle { index, generation };
            let due = match self.slot_and_counters(h) {
                Some((c, ctr)) if c.timer == Some(t) => {
                    c.timer = None;
                    // The deadline may have moved later since this entry was queued (a
                    // delayed ACK that a data segment carried, a restarted retransmission
                    // timer): then nothing ran, and nothing is owed that a call or segment
                    // did not already queue for transmission.
                    let timeouts = ctr.timeouts;
                    let ran = c.conn.poll_timeout().is_some_and(|d| d <= now);
                    if ran {
                        c.conn.handle_timeout(now, ctr);
                    }
                    // refreshed below: the real deadline is queued again
                    Some((ran, ctr.timeouts != timeouts && c.conn.remote().is_ipv6()))
                }
                // Not the entry the slot holds: a safety check (the wheel replaces an index's
                // entry when it is armed again and cancels it when the slot is freed).
                _ => None,
            };
            match due {
                Some((true, rto)) => {
                    if rto {
                        self.rehash_flow_label(h);
                    }
                    self.touched(h, now);
                }
                // Nothing ran: nothing a socket sees changed either, so the connection is
                // not reported (the driver would look at its socket for nothing).
                Some((false, _)) => self.refresh_reporting(h, now, false),
                None => {}
            }
        }
    }

    /// A retransmission timeout may mean the path is broken: a new IPv6 flow label lets ECMP
    /// routers pick another (Linux sk_rethink_txhash on every RTO, net.core.txrehash on).
    fn rehash_flow_label(&mut self, h: SocketHandle) {
        let Some(c) = self.conn_slot(h) else { return };
        let (local, remote) = (c.conn.local(), c.conn.remote());
        let rehash = c.rehash.wrapping_add(1);
        let label = self.flow_label(local.ip(), local.port(), remote.ip(), remote.port(), rehash);
        if let Some(c) = self.conn_slot(h) {
            c.rehash = rehash;
            c.flow_label = label;
        }
        self.counters.timeout_rehash += 1;
    }

    /// Incomplete datagrams whose time ran out (Linux `ip_expire`, `ip6_frag_expire`): each
    /// counts as a failure and a timeout (for IPv6 a timeout only once fragment 0 came, as
    /// Linux counts it), and when fragment 0 came the sender hears ICMP time exceeded,
    /// "fragment reassembly time exceeded" (RFC 792; RFC 8200 §4.5).
    fn reassembly_timeouts(&mut self, now: Instant) {
        while let Some(e) = self.frags4.poll_expired(now) {
            self.counters.ip_reasm_fails += 1;
            self.counters.ip_reasm_timeout += 1;
            self.trace_drop_note(now, "fragment reassembly timed out");
            if let Some(first) = e.first {
                self.send_reassembly_timeout_v4(now, &first);
            }
        }
        while let Some(e) = self.frags6.poll_expired(now) {
            self.counters.ip6_reasm_fails += 1;
            self.trace_drop_note(now, "fragment reassembly timed out");
            if let Some(first) = e.first {
                self.counters.ip6_reasm_timeout += 1;
                self.send_reassembly_timeout_v6(now, &first);
            }
        }
    }
}
