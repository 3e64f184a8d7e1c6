//! Time: every connection's earliest deadline in one heap (a tick costs O(expired), not
//! O(connections)), and the SYN queue's own deadlines.

use std::cmp::Reverse;

use super::{SocketHandle, Stack};
use crate::time::Instant;

impl Stack {
    /// The earliest instant at which the stack has work: now if packets wait, else the
    /// earliest connection deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.control.is_empty() || !self.synacks.is_empty() || !self.dirty.is_empty() {
            return Some(Instant::ZERO);
        }
        let conns = self.timers.peek().map(|Reverse((t, _, _))| *t);
        match (conns, self.syn_queue.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers of every connection and SYN-queue entry due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.syn_queue_timeouts(now);
        while let Some(Reverse((t, index, generation))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let h = SocketHandle { index, generation };
            let due = match self.slot_and_counters(h) {
                Some((c, ctr)) if c.timer == Some(t) => {
                    c.timer = None;
                    // The deadline may have moved later since this entry was queued.
                    if c.conn.poll_timeout().is_some_and(|d| d <= now) {
                        c.conn.handle_timeout(now, ctr);
                    }
                    true // refreshed below: the real deadline is queued again
                }
                _ => false, // superseded by an earlier entry that already popped
            };
            if due {
                self.touched(h, now);
            }
        }
    }
}
