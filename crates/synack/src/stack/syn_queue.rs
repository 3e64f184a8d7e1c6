//! The SYN queue: every listener's half-open connections (SYN-RECEIVED), each a compact
//! [`Entry`] (no TCB, no buffers; RFC 4987 §3.1 and §3.2 on keeping half-open state small),
//! found by 4-tuple in the demux table, with its SYN-ACK retransmission deadline in a timing
//! wheel. The rules for what goes in and out live in `stack/handshake.rs`; this is only the
//! container.

use core::mem::size_of;

use super::{SocketHandle, Tuple, wheel};
use crate::tcp::SeqNum;
use crate::tcp::handshake::Handshake;
use crate::time::{Duration, Instant};

/// `Entry::window_scale` when the SYN had no window scale option.
const NO_WSCALE: u8 = 0xff;
/// `Entry::flags` bits.
const SACK_OK: u8 = 1;
const TS_OK: u8 = 2;
/// The SYN-ACK went out more than once (retransmitted, or resent for a duplicate SYN): no
/// RTT sample from the ACK (Karn).
const RESENT: u8 = 4;
/// The SYN asked for ECN (RFC 3168 §6.1.1).
const ECN: u8 = 8;

/// One half-open connection: what the SYN negotiated, and the SYN-ACK timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub listener: SocketHandle,
    pub iss: SeqNum,
    pub irs: SeqNum,
    /// The TSval of the SYN (valid with `TS_OK`).
    ts_recent: u32,
    /// The connection's timestamp offset (`Stack::ts_offset`, a hash of the addresses and
    /// ports): computed once, for the SYN-ACKs and the connection.
    pub ts_offset: u32,
    /// When the SYN-ACK is sent again (or the entry dropped, once retries are used up).
    pub deadline: Instant,
    /// The SYN's MSS option; 0 without one.
    mss: u16,
    window_scale: u8,
    flags: u8,
    /// SYN-ACK retransmissions so far.
    pub retries: u8,
}

impl Entry {
    /// The entry for the SYN `hs` describes; its SYN-ACK goes out now, `deadline` is when it
    /// is sent again.
    pub fn new(listener: SocketHandle, hs: &Handshake, ts_offset: u32, deadline: Instant) -> Entry {
        let mut flags = 0;
        if hs.sack_permitted {
            flags |= SACK_OK;
        }
        if hs.ts_recent.is_some() {
            flags |= TS_OK;
        }
        if hs.ecn {
            flags |= ECN;
        }
        Entry {
            listener,
            iss: hs.iss,
            irs: hs.irs,
            ts_recent: hs.ts_recent.unwrap_or(0),
            ts_offset,
            deadline,
            mss: hs.mss.unwrap_or(0),
            window_scale: hs.window_scale.unwrap_or(NO_WSCALE),
            flags,
            retries: 0,
        }
    }

    /// The SYN-ACK went out again for a duplicate SYN (timer retransmissions count in
    /// `retries`).
    pub fn mark_resent(&mut self) {
        self.flags |= RESENT;
    }

    /// What the handshake negotiated. `rto_initial` is the first SYN-ACK timeout: with no
    /// retransmission, the SYN-ACK went out that long before the first deadline.
    pub fn handshake(&self, rto_initial: Duration) -> Handshake {
        Handshake {
            iss: self.iss,
            irs: self.irs,
            mss: (self.mss != 0).then_some(self.mss),
            window_scale: (self.window_scale != NO_WSCALE).then_some(self.window_scale),
            sack_permitted: self.flags & SACK_OK != 0,
            ts_recent: (self.flags & TS_OK != 0).then_some(self.ts_recent),
            synack_sent: (self.flags & RESENT == 0 && self.retries == 0)
                .then(|| self.deadline - rto_initial),
            retransmits: self.retries + (self.flags & RESENT != 0) as u8,
            ecn: self.flags & ECN != 0,
        }
    }
}

/// Set in a demux handle's index: the handle names a SYN-queue entry (its index in the
/// slab), not a slot or a TIME-WAIT entry (`time_wait::TW_BIT`; slot indices stay below both).
pub(super) const SQ_BIT: u32 = 1 << 30;

/// Every listener's half-open connections: a slab of entries and their 4-tuples, and their
/// deadlines in a timing wheel indexed by slab index. The demux table (`Stack::conns`) maps
/// each entry's 4-tuple to a handle with [`SQ_BIT`], as Linux keeps request sockets in the
/// established hash (`inet_ehash_insert` from `reqsk_queue_hash_req`): a segment finds its
/// connection, TIME-WAIT entry or half-open entry in one lookup, and a 4-tuple that is
/// half-open is in use for a connect.
#[derive(Default)]
pub struct SynQueue {
    entries: Vec<Option<(Tuple, Entry)>>,
    free: Vec<u32>,
    len: usize,
    wheel: wheel::Wheel,
    peak: usize,
    /// The ACKs entries may send in answer to invalid segments.
    pub acks: AckBudget,
}

/// How many ACKs the half-open connections together may send per second in answer to invalid
/// segments (challenge ACKs, RFC 5961 §7: "An implementation SHOULD include an ACK throttling
/// mechanism"). One budget for all entries, like Linux's host-wide `tcp_challenge_ack_limit`:
/// an entry is too small to keep a throttle of its own, and spoofed segments aimed at many
/// entries must not multiply the answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct AckBudget {
    /// Start of the current one-second window.
    window: Option<Instant>,
    sent: u32,
}

impl AckBudget {
    /// Takes one ACK from the budget of `limit` per second at `now`; false if it is spent.
    pub fn take(&mut self, now: Instant, limit: u32) -> bool {
        if self
            .window
            .is_none_or(|w| now - w >= Duration::from_secs(1))
        {
            self.window = Some(now);
            self.sent = 0;
        }
        if self.sent >= limit {
            return false;
        }
        self.sent += 1;
        true
    }
}

impl SynQueue {
    /// Entries of every listener.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The most entries held at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    pub fn get(&self, i: u32) -> Option<&Entry> {
        self.entries.get(i as usize)?.as_ref().map(|(_, e)| e)
    }

    /// Entry `i` if it is `t`'s (as the demux table maps `t` to it).
    pub fn get_for(&self, i: u32, t: &Tuple) -> Option<&Entry> {
        match self.entries.get(i as usize)? {
            Some((at, e)) if at == t => Some(e),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, i: u32) -> Option<&mut Entry> {
        self.entries.get_mut(i as usize)?.as_mut().map(|(_, e)| e)
    }

    /// Adds the entry for `t` with its deadline armed; returns its index (the caller enters
    /// `t` in the demux table with it).
    pub fn insert(&mut self, t: Tuple, e: Entry) -> u32 {
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = Some((t, e));
                i
            }
            None => {
                self.entries.push(Some((t, e)));
                (self.entries.len() - 1) as u32
            }
        };
        self.len += 1;
        self.peak = self.peak.max(self.len);
        // A free index has no deadline queued (`remove` cancelled it).
        self.wheel.push_new(wheel::Entry {
            at: e.deadline,
            index: i,
            generation: 0,
        });
        i
    }

    /// Takes entry `i` and its deadline out; its 4-tuple is for the demux table.
    pub fn remove(&mut self, i: u32) -> Option<(Tuple, Entry)> {
        let taken = self.entries.get_mut(i as usize)?.take()?;
        self.wheel.cancel(i);
        self.free.push(i);
        self.len -= 1;
        Some(taken)
    }

    /// Moves the deadline of entry `i`.
    pub fn set_deadline(&mut self, i: u32, at: Instant) {
        if let Some(e) = self.get_mut(i) {
            e.deadline = at;
            self.arm(i, at);
        }
    }

    fn arm(&mut self, i: u32, at: Instant) {
        self.wheel.push(wheel::Entry {
            at,
            index: i,
            generation: 0,
        });
    }

    /// The earliest deadline (no later than the earliest entry's: waking for nothing is
    /// harmless, sleeping through a deadline is not).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        self.wheel.next_deadline()
    }

    /// The next entry whose deadline is at or before `now`, earliest first (it stays queued
    /// without a deadline: set a new one or remove it).
    pub fn pop_due(&mut self, now: Instant) -> Option<(u32, Tuple, Entry)> {
        while let Some(w) = self.wheel.pop_expired(now) {
            if let Some(Some((t, e))) = self.entries.get(w.index as usize) {
                return Some((w.index, *t, *e));
            }
        }
        None
    }

    /// Takes out every entry of `listener` and their deadlines; returns their indices and
    /// 4-tuples (for the demux table).
    pub fn remove_listener(&mut self, listener: SocketHandle) -> Vec<(u32, Tuple)> {
        let of_listener: Vec<u32> = (0..self.entries.len() as u32)
            .filter(|&i| self.get(i).is_some_and(|e| e.listener == listener))
            .collect();
        of_listener
            .into_iter()
            .filter_map(|i| self.remove(i).map(|(t, _)| (i, t)))
            .collect()
    }

    /// Bytes held: the slab, its free list and the wheel at their capacity (the 4-tuples'
    /// entries in the demux table are counted with it).
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<Option<(Tuple, Entry)>>()
            + self.free.capacity() * size_of::<u32>()
            + self.wheel.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    fn tuple(port: u16) -> Tuple {
        let a = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
        let b = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
        (a, 80, b, port)
    }

    fn hs(irs: u32) -> Handshake {
        Handshake {
            iss: SeqNum(7),
            irs: SeqNum(irs),
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ts_recent: Some(99),
            synack_sent: None,
            retransmits: 0,
            ecn: true,
        }
    }

    const L: SocketHandle = SocketHandle {
        index: 0,
        generation: 0,
    };

    #[test]
    fn entry_is_compact_and_round_trips_the_handshake() {
        assert!(size_of::<Entry>() <= 40, "{}", size_of::<Entry>());
        let t0 = Instant::from_secs(5);
        let e = Entry::new(L, &hs(1), 0, t0 + Duration::from_secs(1));
        let back = e.handshake(Duration::from_secs(1));
        assert_eq!(
            back,
            Handshake {
                synack_sent: Some(t0),
                retransmits: 0,
                ..hs(1)
            }
        );
        let bare = Handshake {
            mss: None,
            window_scale: None,
            sack_permitted: false,
            ts_recent: None,
            ..hs(2)
        };
        let mut e = Entry::new(L, &bare, 0, t0);
        e.mark_resent();
        assert_eq!(
            e.handshake(Duration::from_secs(1)),
            Handshake {
                retransmits: 1,
                ..bare
            }
        );
    }

    #[test]
    fn timers_pop_in_order_and_follow_moves_and_removals() {
        let mut q = SynQueue::default();
        let at = |s| Instant::from_secs(s);
        let a = q.insert(tuple(1), Entry::new(L, &hs(1), 0, at(3)));
        let b = q.insert(tuple(2), Entry::new(L, &hs(2), 0, at(1)));
        let c = q.insert(tuple(3), Entry::new(L, &hs(3), 0, at(2)));
        assert_eq!(q.remove(c).map(|(t, _)| t), Some(tuple(3)));
        q.set_deadline(b, at(4));
        assert_eq!(q.get(b).map(|e| e.deadline), Some(at(4)));
        assert_eq!(q.next_deadline(), Some(at(3)));
        assert_eq!(q.pop_due(at(2)), None);
        let due = q.pop_due(at(3)).map(|(i, t, e)| (i, t, e.irs));
        assert_eq!(due, Some((a, tuple(1), SeqNum(1))));
        q.remove(a);
        assert_eq!(
            q.pop_due(at(10)).map(|(i, t, _)| (i, t)),
            Some((b, tuple(2)))
        );
        // Popped, it has no deadline until one is set again.
        assert_eq!(q.pop_due(at(100)), None);
        q.set_deadline(b, at(11));
        assert_eq!(q.next_deadline(), Some(at(11)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.peak(), 3);
        let other = SocketHandle {
            index: 1,
            generation: 0,
        };
        let d = q.insert(tuple(4), Entry::new(other, &hs(4), 0, at(12)));
        assert_eq!(q.remove_listener(L), [(b, tuple(2))]);
        assert_eq!(q.len(), 1);
        assert_eq!(
            q.pop_due(at(11)),
            None,
            "the removed entry's deadline went with it"
        );
        assert_eq!(q.pop_due(at(12)).map(|(i, _, _)| i), Some(d));
    }

    #[test]
    fn ack_budget_refills_every_second() {
        let mut b = AckBudget::default();
        let t = Instant::from_secs(10);
        assert!((0..3).all(|_| b.take(t, 3)));
        assert!(!b.take(t + Duration::from_millis(999), 3));
        assert!(b.take(t + Duration::from_secs(1), 3));
        assert!(!AckBudget::default().take(t, 0));
    }

    #[test]
    fn slab_places_are_reused() {
        let mut q = SynQueue::default();
        for i in 0..10_000u16 {
            let e = q.insert(tuple(i), Entry::new(L, &hs(1), 0, Instant::from_secs(60)));
            assert_eq!(e, 0);
            q.remove(e);
        }
        assert_eq!((q.len(), q.entries.len()), (0, 1));
        assert_eq!(q.next_deadline(), None);
    }
}
