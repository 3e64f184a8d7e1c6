//! IP fragment reassembly, for both families: IPv4 (RFC 791 §3.2, with RFC 815's holes kept
//! as sorted runs) and IPv6 (RFC 8200 §4.5), with the rules Linux applies
//! (`net/ipv4/ip_fragment.c`, `net/ipv6/reassembly.c`, `inet_fragment.c`):
//!
//! - a datagram is found by (source, destination, identification, protocol); its queue lives
//!   at most [`Limits::timeout`] (Linux `ipfrag_time`, 30 s) from its first fragment, and is
//!   then dropped ([`Reassembler::poll_expired`] hands it back so the stack can send a
//!   time-exceeded message quoting fragment 0, when that arrived);
//! - memory is bounded: while the queues hold more than [`Limits::high_thresh`] bytes (Linux
//!   `ipfrag_high_thresh`, 4 MiB) every fragment is dropped until timeouts free some;
//! - a fragment inside data already held is a duplicate: dropped, the queue kept; any other
//!   overlap drops the whole datagram (RFC 5722 for IPv6; Linux does the same for IPv4 since
//!   4.19, which is what defeats the overlapping-fragment attacks of RFC 1858 §4);
//! - a last fragment that ends before data already held, or a second last fragment that
//!   disagrees, or data beyond a known end, or an empty fragment, drops the datagram;
//! - a non-last fragment's length is cut to a multiple of 8 (IPv4; the IPv6 caller rejects
//!   such fragments with a parameter problem first, as RFC 8200 requires).
//!
//! This is the container and its rules; what the header of a reassembled datagram looks like,
//! and the counters, are the stack's (`ipv4.rs`, `ipv6.rs`).

use core::mem::size_of;
use core::net::IpAddr;
use std::collections::{HashMap, VecDeque};

use crate::time::{Duration, Instant};

/// Bounds of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes the incomplete datagrams may hold before fragments are dropped (Linux
    /// `ipfrag_high_thresh` and `ip6frag_high_thresh`: 4 MiB).
    pub high_thresh: usize,
    /// How long a datagram may take to complete, from its first fragment (Linux `ipfrag_time`
    /// and `ip6frag_time`: 30 s).
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            high_thresh: 4 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Which datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Identification: 16 bits in IPv4, 32 in IPv6.
    pub ident: u32,
    /// The IPv4 protocol (part of the key, RFC 791); 0 for IPv6.
    pub protocol: u8,
}

/// One fragment, as the stack read it.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub key: Key,
    /// Where `payload` goes in the datagram, in bytes.
    pub offset: usize,
    /// More fragments follow (the MF / M flag).
    pub more: bool,
    /// The fragment's share of the datagram's data.
    pub payload: &'a [u8],
    /// The header bytes in front of `payload` (kept from fragment 0: the reassembled
    /// datagram's header, and the quote of a time-exceeded message).
    pub header: &'a [u8],
}

/// Why a fragment was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// The queues hold more than `high_thresh` bytes.
    Memory,
    /// It overlaps data already held without being inside it: the datagram is dropped.
    Overlap,
    /// Its end contradicts the datagram's (a second, different last fragment; data past the
    /// last fragment), or it carries nothing: the datagram is dropped.
    Corrupt,
}

impl Drop {
    pub fn reason(self) -> &'static str {
        match self {
            Drop::Memory => "fragment dropped: reassembly memory full",
            Drop::Overlap => "overlapping fragment: datagram dropped",
            Drop::Corrupt => "fragment contradicts the datagram's length: datagram dropped",
        }
    }
}

/// What [`Reassembler::insert`] did with a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Queued; the datagram is not complete yet.
    Queued,
    /// Inside data already held: dropped, the datagram kept.
    Duplicate,
    /// The datagram is complete.
    Complete(Datagram),
    /// Dropped (with the datagram, for all but [`Drop::Memory`]).
    Dropped(Drop),
}

/// A reassembled datagram: fragment 0's header bytes, then all the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub key: Key,
    /// `header_len` bytes of header (fragment 0's), then the data.
    pub bytes: Vec<u8>,
    pub header_len: usize,
    /// Number of fragments it was built from.
    pub fragments: usize,
}

/// A datagram that timed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub key: Key,
    /// Fragment 0 as it arrived (header and payload), if it did: what a time-exceeded
    /// message quotes (RFC 792, RFC 4443 §3.3; Linux sends one only then).
    pub first: Option<Vec<u8>>,
}

/// A piece of data held: its range in the datagram and where it sits in the arena.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: u32,
    end: u32,
    at: u32,
}

/// An incomplete datagram.
#[derive(Debug)]
struct Queue {
    deadline: Instant,
    /// Sorted, disjoint ranges of data held. Linux's "runs": a fragment that continues the
    /// last run extends it; one elsewhere starts a run of its own.
    runs: Vec<(u32, u32)>,
    pieces: Vec<Piece>,
    /// The pieces' bytes, in arrival order.
    arena: Vec<u8>,
    /// Fragment 0's header; empty until it arrives.
    header: Vec<u8>,
    /// Fragment 0's payload length (for the time-exceeded quote).
    first_len: u32,
    first_in: bool,
    last_in: bool,
    /// The datagram's data length as far as known (Linux `q.len`).
    len: u32,
    /// Data bytes held (Linux `q.meat`).
    meat: u32,
    /// Bytes charged against the memory bound.
    charged: usize,
}

/// Fixed cost charged per datagram: the queue itself and its table slot.
const QUEUE_OVERHEAD: usize = size_of::<Queue>() + size_of::<Key>() + 64;

impl Queue {
    fn memory(&self) -> usize {
        QUEUE_OVERHEAD
            + self.runs.capacity() * size_of::<(u32, u32)>()
            + self.pieces.capacity() * size_of::<Piece>()
            + self.arena.capacity()
            + self.header.capacity()
    }

    /// Linux `inet_frag_queue_insert`: Ok(true) if inserted, Ok(false) for a duplicate,
    /// Err(()) for an overlap.
    fn insert_run(&mut self, start: u32, end: u32) -> Result<bool, ()> {
        let Some(&(_, last_end)) = self.runs.last() else {
            self.runs.push((start, end));
            return Ok(true);
        };
        if last_end < end {
            // The common case: it goes at the end.
            if start < last_end {
                return Err(());
            }
            if start == last_end {
                if let Some(last) = self.runs.last_mut() {
                    last.1 = end;
                }
            } else {
                self.runs.push((start, end));
            }
            return Ok(true);
        }
        // Inside the runs: it fits in a gap, or lies inside a run, or overlaps.
        let i = self.runs.partition_point(|&(_, e)| e <= start);
        match self.runs.get(i) {
            Some(&(s, e)) if start >= s && end <= e => Ok(false),
            Some(&(s, _)) if end > s => Err(()),
            _ => {
                self.runs.insert(i, (start, end));
                Ok(true)
            }
        }
    }
}

/// The incomplete datagrams of one family.
#[derive(Debug)]
pub struct Reassembler {
    limits: Limits,
    queues: HashMap<Key, Queue>,
    /// Deadlines in creation order (every queue gets the same timeout, so this is deadline
    /// order); entries of queues that completed earlier are skipped when they come up.
    deadlines: VecDeque<(Instant, Key)>,
    memory: usize,
}

impl Reassembler {
    pub fn new(limits: Limits) -> Reassembler {
        Reassembler {
            limits,
            queues: HashMap::new(),
            deadlines: VecDeque::new(),
            memory: 0,
        }
    }

    /// Bytes the incomplete datagrams hold now.
    pub fn memory(&self) -> usize {
        self.memory
    }

    /// Incomplete datagrams held now.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Adds a fragment received at `now`.
    pub fn insert(&mut self, now: Instant, f: &Fragment<'_>) -> Outcome {
        if self.memory > self.limits.high_thresh {
            return Outcome::Dropped(Drop::Memory);
        }
        let offset = u32::try_from(f.offset).unwrap_or(u32::MAX);
        let len = u32::try_from(f.payload.len()).unwrap_or(u32::MAX);
        let mut end = offset.saturating_add(len);
        let timeout = self.limits.timeout;
        let q = self.queues.entry(f.key).or_insert_with(|| Queue {
            deadline: now + timeout,
            runs: Vec::new(),
            pieces: Vec::new(),
            arena: Vec::new(),
            header: Vec::new(),
            first_len: 0,
            first_in: false,
            last_in: false,
            len: 0,
            meat: 0,
            charged: 0,
        });
        if q.charged == 0 {
            self.deadlines.push_back((q.deadline, f.key));
        }
        let corrupt = if !f.more {
            // The last fragment: its end is the datagram's.
            if end < q.len || (q.last_in && end != q.len) {
                true
            } else {
                q.last_in = true;
                q.len = end;
                false
            }
        } else {
            end &= !7;
            if end > q.len {
                if q.last_in {
                    true
                } else {
                    q.len = end;
                    false
                }
            } else {
                false
            }
        };
        if corrupt || end <= offset {
            self.kill(&f.key);
            return Outcome::Dropped(Drop::Corrupt);
        }
        match q.insert_run(offset, end) {
            Err(()) => {
                self.kill(&f.key);
                return Outcome::Dropped(Drop::Overlap);
            }
            Ok(false) => {
                self.recharge(&f.key);
                return Outcome::Duplicate;
            }
            Ok(true) => {}
        }
        let data = &f.payload[..(end - offset) as usize];
        let at = q.arena.len() as u32;
        q.arena.extend_from_slice(data);
        q.pieces.push(Piece {
            start: offset,
            end,
            at,
        });
        q.meat += end - offset;
        if offset == 0 {
            q.first_in = true;
            q.first_len = end;
            q.header.clear();
            q.header.extend_from_slice(f.header);
        }
        if q.first_in && q.last_in && q.meat == q.len {
            let Some(q) = self.queues.remove(&f.key) else {
                return Outcome::Queued;
            };
            self.memory -= q.charged;
            self.trim_front();
            self.compact();
            return Outcome::Complete(Self::assemble(f.key, q));
        }
        self.recharge(&f.key);
        Outcome::Queued
    }

    fn assemble(key: Key, q: Queue) -> Datagram {
        let header_len = q.header.len();
        let mut bytes = vec![0u8; header_len + q.len as usize];
        bytes[..header_len].copy_from_slice(&q.header);
        for p in &q.pieces {
            let (s, e, at) = (p.start as usize, p.end as usize, p.at as usize);
            bytes[header_len + s..header_len + e].copy_from_slice(&q.arena[at..at + (e - s)]);
        }
        Datagram {
            key,
            bytes,
            header_len,
            fragments: q.pieces.len(),
        }
    }

    /// Brings a queue's charge in line with what it holds now.
    fn recharge(&mut self, key: &Key) {
        if let Some(q) = self.queues.get_mut(key) {
            let now = q.memory();
            self.memory = self.memory - q.charged + now;
            q.charged = now;
        }
    }

    fn kill(&mut self, key: &Key) {
        if let Some(q) = self.queues.remove(key) {
            self.memory -= q.charged;
        }
        self.trim_front();
    }

    /// Pops deadline entries of datagrams that are gone from the front of the queue, so
    /// [`next_deadline`](Self::next_deadline) finds the live one at once.
    fn trim_front(&mut self) {
        while let Some((t, k)) = self.deadlines.front() {
            if self.queues.get(k).is_some_and(|q| q.deadline == *t) {
                break;
            }
            self.deadlines.pop_front();
        }
    }

    /// No incomplete datagram (nor a stale deadline) is held: nothing can expire.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.deadlines.is_empty()
    }

    /// When the next datagram times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines
            .iter()
            .find(|(t, k)| self.queues.get(k).is_some_and(|q| q.deadline == *t))
            .map(|(t, _)| *t)
    }

    /// A datagram whose time ran out at `now`, dropped; call until `None`.
    pub fn poll_expired(&mut self, now: Instant) -> Option<Expired> {
        while let Some(&(t, key)) = self.deadlines.front() {
            let live = self.queues.get(&key).is_some_and(|q| q.deadline == t);
            if !live {
                self.deadlines.pop_front();
                continue;
            }
            if t > now {
                return None;
            }
            self.deadlines.pop_front();
            let q = self.queues.remove(&key)?;
            self.memory -= q.charged;
            let first = q.first_in.then(|| {
                let mut b = q.header.clone();
                let mut data = vec![0u8; q.first_len as usize];
                for p in q.pieces.iter().filter(|p| p.start < q.first_len) {
                    let (s, e) = (p.start as usize, (p.end.min(q.first_len)) as usize);
                    let at = p.at as usize;
                    data[s..e].copy_from_slice(&q.arena[at..at + (e - s)]);
                }
                b.extend_from_slice(&data);
                b
            });
            return Some(Expired { key, first });
        }
        None
    }

    /// Drops deadline entries of datagrams that completed, once they pile up.
    fn compact(&mut self) {
        if self.deadlines.len() > 4 * self.queues.len() + 64 {
            let queues = &self.queues;
            self.deadlines
                .retain(|(t, k)| queues.get(k).is_some_and(|q| q.deadline == *t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn key(ident: u32) -> Key {
        Key {
            src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            ident,
            protocol: 1,
        }
    }

    const HDR: &[u8] = &[0x45, 0, 0, 0];

    fn frag(ident: u32, offset: usize, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            key: key(ident),
            offset,
            more,
            payload,
            header: HDR,
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram() {
        let d = data(3000);
        let orders: [&[usize]; 3] = [&[0, 1, 2], &[2, 1, 0], &[1, 2, 0]];
        for order in orders {
            let mut r = Reassembler::new(Limits::default());
            let parts = [(0, 1480), (1480, 2960), (2960, 3000)];
            let mut done = None;
            for (n, &i) in order.iter().enumerate() {
                let (s, e) = parts[i];
                let out = r.insert(Instant::ZERO, &frag(7, s, e != 3000, &d[s..e]));
                if n < 2 {
                    assert_eq!(out, Outcome::Queued, "{order:?}");
                    assert!(r.memory() > QUEUE_OVERHEAD);
                } else {
                    done = Some(out);
                }
            }
            let Some(Outcome::Complete(dg)) = done else {
                panic!("{order:?}: {done:?}")
            };
            assert_eq!(&dg.bytes[..4], HDR);
            assert_eq!(&dg.bytes[4..], &d[..]);
            assert_eq!((dg.header_len, dg.fragments), (4, 3));
            assert_eq!((r.memory(), r.len()), (0, 0));
        }
    }

    #[test]
    fn duplicates_are_dropped_and_overlaps_drop_the_datagram() {
        let d = data(2400);
        let mut r = Reassembler::new(Limits::default());
        assert_eq!(
            r.insert(Instant::ZERO, &frag(1, 0, true, &d[..800])),
            Outcome::Queued
        );
        assert_eq!(
            r.insert(Instant::ZERO, &frag(1, 1600, true, &d[1600..2400])),
            Outcome::Queued
        );
        // Inside the first run: a duplicate, the datagram kept.
        assert_eq!(
            r.insert(Instant::ZERO, &frag(1, 0, true, &d[..400])),
            Outcome::Duplicate
        );
        assert_eq!(r.len(), 1);
        // Half over the first run: an overlap, the datagram gone (RFC 5722).
        assert_eq!(
            r.insert(Instant::ZERO, &frag(1, 400, true, &d[400..1200])),
            Outcome::Dropped(Drop::Overlap)
        );
        assert_eq!((r.len(), r.memory()), (0, 0));
        // Overlapping the tail, the common case.
        assert_eq!(
            r.insert(Instant::ZERO, &frag(2, 0, true, &d[..800])),
            Outcome::Queued
        );
        assert_eq!(
            r.insert(Instant::ZERO, &frag(2, 792, true, &d[792..1600])),
            Outcome::Dropped(Drop::Overlap)
        );
        // A gap filled exactly is no overlap.
        assert_eq!(
            r.insert(Instant::ZERO, &frag(3, 0, true, &d[..800])),
            Outcome::Queued
        );
        assert_eq!(
            r.insert(Instant::ZERO, &frag(3, 1600, false, &d[1600..])),
            Outcome::Queued
        );
        assert!(matches!(
            r.insert(Instant::ZERO, &frag(3, 800, true, &d[800..1600])),
            Outcome::Complete(_)
        ));
    }

    #[test]
    fn contradicting_ends_and_empty_fragments_drop_the_datagram() {
        let d = data(2000);
        let mut r = Reassembler::new(Limits::default());
        // Two different last fragments.
        assert_eq!(
            r.insert(Instant::ZERO, &frag(1, 1000, false, &d[1000..])),
            Outcome::Queued
        );
        assert_eq!(
            r.insert(Instant::ZERO, &frag(1, 1000, false, &d[1000..1500])),
            Outcome::Dropped(Drop::Corrupt)
        );
        // Data beyond the last fragment's end.
        assert_eq!(
            r.insert(Instant::ZERO, &frag(2, 800, false, &d[800..1600])),
            Outcome::Queued
        );
        assert_eq!(
            r.insert(Instant::ZERO, &frag(2, 1600, true, &d[1600..])),
            Outcome::Dropped(Drop::Corrupt)
        );
        // A non-last fragment shorter than 8 bytes is empty once cut to a multiple of 8.
        assert_eq!(
            r.insert(Instant::ZERO, &frag(3, 0, true, &d[..7])),
            Outcome::Dropped(Drop::Corrupt)
        );
        assert_eq!((r.len(), r.memory()), (0, 0));
    }

    #[test]
    fn datagrams_time_out_with_fragment_zero_for_the_quote() {
        let d = data(3000);
        let mut r = Reassembler::new(Limits::default());
        r.insert(Instant::ZERO, &frag(1, 0, true, &d[..1480]));
        let t1 = Instant::ZERO + Duration::from_secs(5);
        r.insert(t1, &frag(2, 1480, true, &d[1480..2960]));
        assert_eq!(
            r.next_deadline(),
            Some(Instant::ZERO + Duration::from_secs(30))
        );
        assert_eq!(
            r.poll_expired(Instant::ZERO + Duration::from_secs(29)),
            None
        );
        let e = r
            .poll_expired(Instant::ZERO + Duration::from_secs(30))
            .unwrap();
        assert_eq!(e.key, key(1));
        let first = e.first.unwrap();
        assert_eq!(&first[..4], HDR);
        assert_eq!(&first[4..], &d[..1480]);
        assert_eq!(r.next_deadline(), Some(t1 + Duration::from_secs(30)));
        let e = r.poll_expired(t1 + Duration::from_secs(30)).unwrap();
        assert_eq!(
            (e.key, e.first),
            (key(2), None),
            "no fragment 0: nothing to quote"
        );
        assert_eq!((r.len(), r.memory(), r.next_deadline()), (0, 0, None));
    }

    #[test]
    fn memory_stays_within_the_bound_under_a_flood() {
        // Many incomplete datagrams of one 1480-byte fragment each.
        let limits = Limits::default();
        let mut r = Reassembler::new(limits);
        let d = data(1480);
        let (mut queued, mut dropped) = (0, 0);
        for ident in 0..20_000 {
            match r.insert(Instant::ZERO, &frag(ident, 1480, true, &d)) {
                Outcome::Queued => queued += 1,
                Outcome::Dropped(Drop::Memory) => dropped += 1,
                other => panic!("{other:?}"),
            }
            // Linux's rule: fragments are refused once the bound is passed, so it is passed by
            // at most one fragment's worth.
            assert!(
                r.memory() <= limits.high_thresh + 1480 + 512,
                "{}",
                r.memory()
            );
        }
        assert!(queued > 2000 && dropped > 15_000, "{queued} {dropped}");
        // They all time out; then there is room again.
        let later = Instant::ZERO + limits.timeout;
        let mut expired = 0;
        while r.poll_expired(later).is_some() {
            expired += 1;
        }
        assert_eq!((expired, r.memory(), r.len()), (queued, 0, 0));
        assert_eq!(r.insert(later, &frag(1, 1480, true, &d)), Outcome::Queued);
    }
}
