//! Compact TIME-WAIT entries: a connection that reaches TIME-WAIT after its application
//! closed it gives its slot (and the TCB in it) back and leaves a [`TimeWait`] entry for the
//! 2 MSL, as Linux replaces the socket with an `inet_timewait_sock` (`tcp_time_wait`). The
//! demux table maps the 4-tuple to the entry with a handle whose index has [`TW_BIT`] set, so
//! a segment finds it in the same lookup as a connection's, and an ICMP error or a port
//! choice sees the 4-tuple in use as before. The entries' deadlines are in a timing wheel of
//! their own (the connections' wheel is indexed by slot).
//!
//! A connection whose ACKs a compact entry could not write the same (ECN, urgent data,
//! SACK state, traced), or that its application still holds, stays whole until its
//! TIME-WAIT ends (`Connection::time_wait_entry`).

use super::slots::{SlotKind, tuple_of as tuple_of_conn};
use super::{SocketHandle, Stack, Tuple, wheel};
use crate::tcp::connection::{TimeWait, TimeWaitOutcome};
use crate::tcp::seq::SeqNum;
use crate::tcp::{Config, State};
use crate::time::Instant;
use crate::wire::tcp::Repr;

/// Set in a demux handle's index: the handle names a TIME-WAIT entry, not a slot (slot
/// indices stay below it and `syn_queue::SQ_BIT`: the slot table would need 2^30 sockets).
pub(super) const TW_BIT: u32 = 1 << 31;

/// An entry and what the connection's slot held for its packets.
struct Entry {
    tw: TimeWait,
    flow_label: u32,
    ttl: Option<u8>,
}

/// The stack's TIME-WAIT entries: a slab, its free list, and their deadlines.
#[derive(Default)]
pub(super) struct TimeWaits {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    len: usize,
    wheel: wheel::Wheel,
}

/// Bytes one compact TIME-WAIT entry takes in its slab (the demux table and the wheel hold
/// a few dozen more: the 4-tuple key, a handle, a deadline).
pub const TIME_WAIT_ENTRY_SIZE: usize = size_of::<Option<Entry>>();

impl TimeWaits {
    /// The earliest deadline of an entry.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        self.wheel.next_deadline()
    }

    fn insert(&mut self, e: Entry, deadline: Instant) -> u32 {
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = Some(e);
                i
            }
            None => {
                self.entries.push(Some(e));
                (self.entries.len() - 1) as u32
            }
        };
        self.len += 1;
        // A free index has no deadline queued (`remove` cancelled it).
        self.wheel.push_new(wheel::Entry {
            at: deadline,
            index: i,
            generation: 0,
        });
        i
    }

    fn arm(&mut self, i: u32, at: Instant) {
        self.wheel.push(wheel::Entry {
            at,
            index: i,
            generation: 0,
        });
    }

    fn remove(&mut self, i: u32) -> Option<Entry> {
        let e = self.entries.get_mut(i as usize)?.take()?;
        self.wheel.cancel(i);
        self.free.push(i);
        self.len -= 1;
        Some(e)
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut Entry> {
        self.entries.get_mut(i as usize)?.as_mut()
    }
}

fn tuple_of(tw: &TimeWait) -> Tuple {
    let (l, r) = (tw.local(), tw.remote());
    (l.ip(), l.port(), r.ip(), r.port())
}

impl Stack {
    /// Connection `h` left the transmit queue in TIME-WAIT, closed by its application and
    /// owing nothing: it becomes a compact entry if it can (see the module), and its slot
    /// is freed for the next connection. One that cannot stays whole, and gets from
    /// [`time_wait_stays`](Self::time_wait_stays) the final deadline and the parts' return
    /// that the refresh left to this call.
    pub(super) fn compact_time_wait(&mut self, h: SocketHandle) {
        // One slot lookup serves the checks, the entry and the slot's freeing.
        let Some(s) = self.slots.get_mut(h.index as usize) else {
            return;
        };
        let SlotKind::Conn(c) = &mut s.kind else {
            return;
        };
        if s.generation != h.generation {
            return;
        }
        // Still held by its application, or not yet accepted: it stays whole.
        let held = c.user && !c.released;
        if c.conn.state() != State::TimeWait || held || c.parent.is_some() {
            return;
        }
        let (flow_label, ttl) = (c.flow_label, c.ttl);
        // Its demux entry, found where it went in (no hash of the 4-tuple).
        let conn = &c.conn;
        let Some(demuxed) = self.conns.get_mut_at(c.bucket, h, || tuple_of_conn(conn)) else {
            return self.time_wait_stays(h);
        };
        let Some((tw, deadline)) = c.conn.time_wait_entry() else {
            return self.time_wait_stays(h);
        };
        if self.time_waits.len >= self.cfg.max_time_wait {
            // No entry left: the connection goes without TIME-WAIT, as Linux's does.
            self.counters.tw_overflow += 1;
            self.remove_conn(h);
            return;
        }
        let entry = Entry {
            tw,
            flow_label,
            ttl,
        };
        let i = self.time_waits.insert(entry, deadline);
        *demuxed = SocketHandle {
            index: i | TW_BIT,
            generation: 0,
        };
        super::slots::free_slot(s, h, &mut self.spares, &mut self.free, &mut self.timers);
    }

    /// A segment for TIME-WAIT entry `h` (a demux handle with [`TW_BIT`]): answered as the
    /// connection would have. Returns the ISN for a new incarnation when it is a SYN that
    /// may reuse the 4-tuple and `may_reopen` (something takes it: the entry is gone then,
    /// and the caller hands the SYN on); without `may_reopen` such a SYN draws the entry's
    /// ACK, as the connection's ([`Connection::ack_reopening_syn`]).
    pub(super) fn time_wait_segment(
        &mut self,
        now: Instant,
        h: SocketHandle,
        tuple: &Tuple,
        seg: &Repr<'_>,
        may_reopen: bool,
    ) -> Option<SeqNum> {
        let i = h.index & !TW_BIT;
        let e = self.time_waits.get_mut(i)?;
        let (restart, ack) = if let Some(isn) = e.tw.accepts_syn(seg) {
            if may_reopen {
                self.drop_time_wait(h, tuple);
                return Some(isn);
            }
            self.counters.in_segs += 1;
            (false, true)
        } else {
            match e.tw.handle_segment(now, seg, &mut self.counters) {
                TimeWaitOutcome::Closed => {
                    self.drop_time_wait(h, tuple);
                    return None;
                }
                TimeWaitOutcome::Keep { restart } => (restart, false),
                TimeWaitOutcome::Ack { restart } => (restart, true),
            }
        };
        let e = self.time_waits.get_mut(i)?;
        let at = now + e.tw.duration();
        let ack = ack.then(|| {
            (
                e.tw.ack(now),
                e.tw.local(),
                e.tw.remote(),
                e.flow_label,
                e.ttl,
            )
        });
        if restart {
            self.time_waits.arm(i, at);
        }
        if let Some((seg, local, remote, flow_label, ttl)) = ack
            && self.queue_tcp_with(local, remote, &seg, flow_label, ttl)
        {
            self.counters.out_segs += 1;
        }
        None
    }

    fn drop_time_wait(&mut self, h: SocketHandle, tuple: &Tuple) {
        self.unhash(*tuple, h);
        self.time_waits.remove(h.index & !TW_BIT);
    }

    /// TIME-WAIT entries whose 2 MSL ran out (§3.10.8: "delete the TCB").
    pub(super) fn time_wait_timeouts(&mut self, now: Instant) {
        while let Some(e) = self.time_waits.wheel.pop_expired(now) {
            let Some(entry) = self.time_waits.remove(e.index) else {
                continue;
            };
            let tuple = tuple_of(&entry.tw);
            let h = SocketHandle {
                index: e.index | TW_BIT,
                generation: 0,
            };
            self.unhash(tuple, h);
        }
    }

    /// The settings of every compact TIME-WAIT entry, to change (as
    /// [`connections_mut`](Self::connections_mut) gives the connections': a setting read
    /// live, such as `rfc1337`).
    pub fn time_wait_configs_mut(&mut self) -> impl Iterator<Item = &mut Config> + '_ {
        self.time_waits
            .entries
            .iter_mut()
            .flatten()
            .map(|e| e.tw.config_mut())
    }

    /// Connections in TIME-WAIT held as compact entries (they count in
    /// [`connection_count`](Self::connection_count), not in
    /// [`connections`](Self::connections)).
    pub fn time_wait_count(&self) -> usize {
        self.time_waits.len
    }
}
