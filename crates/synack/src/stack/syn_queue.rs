//! The SYN queue: every listener's half-open connections (SYN-RECEIVED), each a compact
//! [`Entry`] (no TCB, no buffers; RFC 4987 §3.1 and §3.2 on keeping half-open state small),
//! found by 4-tuple, with its SYN-ACK retransmission deadline in one heap. The rules for
//! what goes in and out live in `stack/handshake.rs`; this is only the container.

use core::mem::size_of;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::{KeyedHasher, SocketHandle, Tuple};
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

/// A heap item: (deadline, entry). Stale items (the entry left, or its deadline moved) are
/// skipped when they come up.
type Timer = Reverse<(Instant, Tuple)>;

/// Every listener's half-open connections.
pub struct SynQueue {
    entries: HashMap<Tuple, Entry, KeyedHasher>,
    timers: BinaryHeap<Timer>,
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
    pub fn new(hasher: KeyedHasher) -> SynQueue {
        SynQueue {
            entries: HashMap::with_hasher(hasher),
            timers: BinaryHeap::new(),
            peak: 0,
            acks: AckBudget::default(),
        }
    }

    /// Entries of every listener.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The most entries held at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    pub fn get(&self, t: &Tuple) -> Option<&Entry> {
        self.entries.get(t)
    }

    pub fn get_mut(&mut self, t: &Tuple) -> Option<&mut Entry> {
        self.entries.get_mut(t)
    }

    /// Adds (or replaces) the entry for `t`.
    pub fn insert(&mut self, t: Tuple, e: Entry) {
        self.timers.push(Reverse((e.deadline, t)));
        self.entries.insert(t, e);
        self.peak = self.peak.max(self.entries.len());
        self.compact();
    }

    pub fn remove(&mut self, t: &Tuple) -> Option<Entry> {
        self.entries.remove(t)
    }

    /// Moves the deadline of `t`'s entry.
    pub fn set_deadline(&mut self, t: Tuple, at: Instant) {
        if let Some(e) = self.entries.get_mut(&t) {
            e.deadline = at;
            self.timers.push(Reverse((at, t)));
        }
    }

    /// The earliest deadline (possibly of an entry that left since: waking for nothing is
    /// harmless, sleeping through a deadline is not).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// The next entry whose deadline is at or before `now` (it stays queued; set a new
    /// deadline or remove it).
    pub fn pop_due(&mut self, now: Instant) -> Option<(Tuple, Entry)> {
        while let Some(&Reverse((t, tuple))) = self.timers.peek() {
            if t > now {
                return None;
            }
            self.timers.pop();
            if let Some(e) = self.entries.get(&tuple) {
                if e.deadline == t {
                    return Some((tuple, *e));
                }
            }
        }
        None
    }

    /// Drops every entry of `listener` and their timers; returns how many.
    pub fn remove_listener(&mut self, listener: SocketHandle) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.listener != listener);
        self.rebuild_timers();
        before - self.entries.len()
    }

    /// Bytes held: the table and the heap at their current capacity.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * (size_of::<(Tuple, Entry)>() + 1)
            + self.timers.capacity() * size_of::<Timer>()
    }

    /// Keeps stale heap items from piling up: rebuilds the heap from the live entries when
    /// most of it is stale (amortised O(1) per insert).
    fn compact(&mut self) {
        if self.timers.len() > 2 * self.entries.len() + 64 {
            self.rebuild_timers();
        }
    }

    fn rebuild_timers(&mut self) {
        self.timers.clear();
        self.timers
            .extend(self.entries.iter().map(|(t, e)| Reverse((e.deadline, *t))));
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
    fn timers_pop_in_order_and_skip_stale_items() {
        let mut q = SynQueue::new(KeyedHasher(1, 2));
        let at = |s| Instant::from_secs(s);
        q.insert(tuple(1), Entry::new(L, &hs(1), 0, at(3)));
        q.insert(tuple(2), Entry::new(L, &hs(2), 0, at(1)));
        q.insert(tuple(3), Entry::new(L, &hs(3), 0, at(2)));
        q.remove(&tuple(3));
        q.set_deadline(tuple(2), at(4));
        assert_eq!(q.next_deadline(), Some(at(1)));
        assert_eq!(q.pop_due(at(2)), None);
        assert_eq!(q.pop_due(at(3)).map(|(t, _)| t), Some(tuple(1)));
        q.remove(&tuple(1));
        assert_eq!(q.pop_due(at(10)).map(|(t, _)| t), Some(tuple(2)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.peak(), 3);
        assert_eq!(q.remove_listener(L), 1);
        assert_eq!(q.len(), 0);
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
    fn stale_timers_stay_bounded() {
        let mut q = SynQueue::new(KeyedHasher(1, 2));
        for i in 0..10_000u16 {
            q.insert(tuple(i), Entry::new(L, &hs(1), 0, Instant::from_secs(60)));
            q.remove(&tuple(i));
        }
        assert!(q.timers.len() <= 64 + 1, "{}", q.timers.len());
    }
}
