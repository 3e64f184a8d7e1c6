//! Byte rings for the send and receive buffers (ARCHITECTURE.md rule 6).
//!
//! One [`RingBuffer`] type serves both directions:
//!
//! * **Send buffer.** Offset 0 is `SND.UNA`. The committed bytes are everything the application
//!   has written and the peer has not yet acknowledged: first the bytes in flight
//!   (`SND.UNA .. SND.NXT`), then the bytes not yet sent. The retransmission queue is nothing but
//!   byte ranges into this ring; a segment's payload is taken with [`RingBuffer::slices`] and
//!   copied straight into the outgoing packet, and an ACK that advances `SND.UNA` by `n` is
//!   [`RingBuffer::consume`]`(n)` (RFC 9293 §3.10.7.4, "SND.UNA < SEG.ACK =< SND.NXT": "Any
//!   segments on the retransmission queue that are thereby entirely acknowledged are removed").
//! * **Receive buffer.** The committed bytes are in-order data ready for the application
//!   (`RCV.NXT` is the committed end). Out-of-order segments that fall inside the window are
//!   written *past* the committed end with [`RingBuffer::write_at`]; once the reassembler
//!   (`tcp::reassembly`) reports that the hole before them is filled, [`RingBuffer::commit`]
//!   makes them readable. RFC 9293 §3.10.7.4 ("Segment text", seventh step) allows the receiver
//!   to keep such segments "for later processing"; RFC 1122 §4.2.2.20 recommends it.
//!
//! Memory: the storage is a boxed slice that starts empty (no allocation at all) and grows on
//! demand, doubling from [`MIN_ALLOCATION`], never beyond the limit. So a connection that never
//! carries data holds no buffer memory, and one that exchanges a few small messages holds a few
//! hundred bytes, not its limit (ARCHITECTURE.md rule 6). An idle connection whose buffers are empty
//! can give the memory back with [`RingBuffer::shrink_if_empty`]. Apart from that growth no
//! operation allocates, and every operation costs O(bytes touched); growing to the limit by
//! doubling copies at most about twice the limit in all.
//!
//! No method panics, whatever its arguments: counts and offsets are clamped and the number of
//! bytes actually handled is returned.

use core::fmt;
use core::ops::Range;

/// The smallest storage a ring allocates once it needs any (unless its limit is smaller). Small:
/// a request/response connection then never pays for (or zero-fills) more than it uses, and a
/// bulk transfer reaches a 1 MiB limit in 14 doublings, once per connection.
pub const MIN_ALLOCATION: usize = 64;

/// Storage at least this large is allocated zeroed (`calloc`): above glibc's mmap threshold
/// (128 KiB by default, rising after frees) that is fresh zero pages from the OS, whose
/// untouched pages cost no memory; between this and the threshold it is heap memory that
/// calloc zeroes. Smaller storage is allocated plainly and filled, which reuses freed blocks
/// from the allocator's per-thread cache (glibc's calloc bypasses it).
pub(crate) const ZEROED_BY_THE_OS: usize = 4096;

/// A byte ring with a size limit, lazily allocated storage, and room past its committed end for
/// out-of-order data. See the module documentation for how TCP uses it.
///
/// Logical offsets are relative to the first committed byte. Bytes `0 .. len()` are
/// *committed*; bytes from `len()` up to `len() + uncommitted()` may hold data placed there by
/// [`write_at`](RingBuffer::write_at) and not yet [`commit`](RingBuffer::commit)ted.
#[derive(Clone, Default)]
pub struct RingBuffer {
    /// The ring; its length is the allocated capacity. Empty until first needed.
    storage: Box<[u8]>,
    // Sizes and offsets in 32 bits: a ring holds at most `u32::MAX` bytes (a TCP window is
    // at most 1 GiB), and the ring takes 32 bytes instead of 56.
    /// Physical index of logical offset 0; always `< storage.len()`, or 0 when unallocated.
    head: u32,
    /// Committed bytes.
    len: u32,
    /// Extent, measured from the committed end, of the region that `write_at` has written into.
    /// Invariant: `len + pending <= limit` and `len + pending <= storage.len()`.
    pending: u32,
    /// The most bytes (committed plus uncommitted) this ring may hold. Invariant: `len <= limit`.
    limit: u32,
}

/// A size as the ring keeps it: at most `u32::MAX`.
fn narrow(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl RingBuffer {
    /// An empty ring that may hold up to `limit` bytes (at most `u32::MAX`). Allocates nothing.
    pub fn new(limit: usize) -> RingBuffer {
        RingBuffer {
            storage: Box::default(),
            head: 0,
            len: 0,
            pending: 0,
            limit: narrow(limit),
        }
    }

    /// The most bytes this ring may hold.
    #[inline]
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// Changes the limit (at most `u32::MAX`). It is never set below the committed length (so
    /// no committed byte is lost); uncommitted bytes past the new limit are forgotten. Storage
    /// already allocated is kept even if it is now larger than the limit.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = narrow(limit).max(self.len);
        self.pending = self.pending.min(self.limit - self.len);
    }

    /// Committed bytes held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True if no committed byte is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left: `limit() - len()`. For a send buffer this is how much the application may
    /// still write; for a receive buffer it is the window we can offer (RFC 9293 §3.8.6).
    #[inline]
    pub fn free(&self) -> usize {
        (self.limit - self.len) as usize
    }

    /// The extent past the committed end that out-of-order writes have reached (it may contain
    /// holes; the reassembler knows where they are).
    #[inline]
    pub fn uncommitted(&self) -> usize {
        self.pending as usize
    }

    /// Bytes of heap this ring holds.
    #[inline]
    #[cfg(test)]
    pub fn allocated(&self) -> usize {
        self.storage.len()
    }

    /// Appends as much of `data` as fits under the limit and returns how many bytes that was.
    /// The bytes are committed at once. They overwrite (and shorten by as much) any uncommitted
    /// region, which only matters if one ring is used both ways.
    pub fn enqueue(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        let len = self.len();
        self.reserve(len + n);
        // The usual case, the bytes contiguous after the committed end (no wrap around the
        // storage's end): one copy without `spans`' general arithmetic.
        let start = self.wrap(self.head as usize + len);
        match self.storage.get_mut(start..start + n) {
            Some(to) => to.copy_from_slice(&data[..n]),
            None => self.write_physical(len, &data[..n]),
        }
        self.len += n as u32;
        self.pending = self.pending.saturating_sub(n as u32);
        n
    }

    /// Moves committed bytes from the front into `out`; returns how many.
    pub fn dequeue(&mut self, out: &mut [u8]) -> usize {
        // What `peek(0, out)` then `consume` do, from the head directly.
        let n = out.len().min(self.len());
        if n == 0 {
            return 0;
        }
        // `len > 0`: storage is allocated and `head < capacity`.
        let head = self.head as usize;
        let first = n.min(self.storage.len() - head);
        out[..first].copy_from_slice(&self.storage[head..head + first]);
        if first < n {
            out[first..n].copy_from_slice(&self.storage[..n - first]);
        }
        self.consume(n)
    }

    /// Drops up to `n` committed bytes from the front (for a send buffer: data the peer has
    /// acknowledged) and returns how many were dropped.
    pub fn consume(&mut self, n: usize) -> usize {
        let n = n.min(self.len());
        if n == 0 {
            return 0;
        }
        // `len > 0` so storage is allocated; `head + n < 2 * capacity`.
        self.head = self.wrap(self.head as usize + n) as u32;
        self.len -= n as u32;
        if self.len == 0 && self.pending == 0 {
            // Nothing is held: start over at the beginning so later data is contiguous.
            self.head = 0;
        }
        n
    }

    /// Copies committed bytes starting `offset` bytes from the front into `out` without
    /// consuming them; returns how many were copied.
    pub fn peek(&self, offset: usize, out: &mut [u8]) -> usize {
        let (a, b) = self.slices(offset, out.len());
        let n = a.len() + b.len();
        out[..a.len()].copy_from_slice(a);
        // The second piece is empty unless the range wraps: no call to copy nothing.
        if !b.is_empty() {
            out[a.len()..n].copy_from_slice(b);
        }
        n
    }

    /// The committed bytes `offset .. offset + len` (clamped to what is committed) as at most
    /// two contiguous pieces, in order; the second is empty unless the range wraps around the
    /// end of the storage. A sender copies these straight into the segment it emits.
    pub fn slices(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        if offset >= self.len() {
            return (&[], &[]);
        }
        let n = len.min(self.len() - offset);
        let (a, b) = self.spans(offset, n);
        (&self.storage[a], &self.storage[b])
    }

    /// Writes `data` at `offset` bytes past the committed end, without committing it; returns
    /// how many bytes were written (the write is cut at the limit). Storage grows as needed.
    /// This is where a receiver puts an out-of-order segment (RFC 9293 §3.10.7.4).
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let Some(start) = self.len().checked_add(offset) else {
            return 0;
        };
        if start >= self.limit() {
            return 0;
        }
        let n = data.len().min(self.limit() - start);
        if n == 0 {
            return 0;
        }
        self.reserve(start + n);
        self.write_physical(start, &data[..n]);
        // `offset + n <= limit - len`, so it fits.
        self.pending = self.pending.max((offset + n) as u32);
        n
    }

    /// Commits up to `n` bytes that follow the committed end (written earlier by
    /// [`write_at`](RingBuffer::write_at)), making them readable; returns how many. Never
    /// commits beyond the region `write_at` has reached.
    pub fn commit(&mut self, n: usize) -> usize {
        let n = n.min(self.uncommitted());
        self.len += n as u32;
        self.pending -= n as u32;
        n
    }

    /// Forgets every uncommitted byte (for example when the reassembly state is thrown away).
    #[cfg(test)]
    pub fn discard_uncommitted(&mut self) {
        self.pending = 0;
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// Forgets all contents, committed and not. Keeps the storage.
    pub fn clear(&mut self) {
        self.len = 0;
        self.pending = 0;
        self.head = 0;
    }

    /// Frees the storage if the ring holds nothing (no committed and no uncommitted bytes), so
    /// an idle connection costs no buffer memory. Returns true if memory was freed.
    #[cfg(test)]
    pub fn shrink_if_empty(&mut self) -> bool {
        self.take_storage().is_some()
    }

    /// Whether the ring has storage allocated (holding bytes or not).
    #[inline]
    pub fn has_storage(&self) -> bool {
        !self.storage.is_empty()
    }

    /// Takes the storage out if the ring holds nothing (as
    /// [`shrink_if_empty`](Self::shrink_if_empty)), for another ring to
    /// [`adopt`](Self::adopt_storage): a stack keeps a few for its next connections.
    pub fn take_storage(&mut self) -> Option<Box<[u8]>> {
        if self.len != 0 || self.pending != 0 || self.storage.is_empty() {
            return None;
        }
        self.head = 0;
        Some(core::mem::take(&mut self.storage))
    }

    /// Uses `storage` (from [`take_storage`](Self::take_storage) of another ring) as this
    /// ring's room, zeroed first so that nothing of its former ring can be read here (bytes
    /// committed past a hole, for one). Only into a ring that has none yet, and only if it
    /// fits the limit; otherwise `storage` is handed back.
    pub fn adopt_storage(&mut self, mut storage: Box<[u8]>) -> Result<(), Box<[u8]>> {
        if !self.storage.is_empty() || storage.is_empty() || storage.len() > self.limit() {
            return Err(storage);
        }
        storage.fill(0);
        self.storage = storage;
        self.head = 0;
        Ok(())
    }

    /// Maps `head + i` (with `i < 2 * capacity`) into the storage.
    #[inline]
    fn wrap(&self, i: usize) -> usize {
        let cap = self.storage.len();
        if i >= cap { i - cap } else { i }
    }

    /// The physical ranges holding logical bytes `offset .. offset + n`. The caller guarantees
    /// `offset + n <= capacity` (and `offset < capacity` when `n > 0`).
    fn spans(&self, offset: usize, n: usize) -> (Range<usize>, Range<usize>) {
        let cap = self.storage.len();
        if n == 0 || offset >= cap {
            return (0..0, 0..0);
        }
        let start = self.wrap(self.head as usize + offset);
        let n = n.min(cap - offset);
        let first = n.min(cap - start);
        (start..start + first, 0..n - first)
    }

    /// Copies `data` into logical bytes `offset ..`; storage must already be large enough.
    fn write_physical(&mut self, offset: usize, data: &[u8]) {
        let (a, b) = self.spans(offset, data.len());
        let split = a.len();
        let end = split + b.len();
        self.storage[a].copy_from_slice(&data[..split]);
        // Empty unless the data wraps around the end of the storage.
        if !b.is_empty() {
            self.storage[b].copy_from_slice(&data[split..end]);
        }
    }

    /// Makes sure logical bytes `0 .. needed` fit in the storage. `needed <= limit`. Grows by
    /// doubling from [`MIN_ALLOCATION`] until `needed` fits, capped at the limit; the old
    /// contents, committed and uncommitted, keep their logical offsets.
    fn reserve(&mut self, needed: usize) {
        if needed > self.storage.len() {
            self.grow(needed);
        }
    }

    /// [`reserve`](Self::reserve) when the storage is too small: out of line, as it happens
    /// a few times per connection.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, needed: usize) {
        let cap = self.storage.len();
        let mut target = cap.max(MIN_ALLOCATION);
        while target < needed {
            target = target.saturating_mul(2);
        }
        let target = target.min(self.limit()).max(needed);
        // The held bytes, committed and uncommitted, copied to the start of the new storage:
        // logical offset 0 at index 0.
        let held = (self.len() + self.uncommitted()).min(cap);
        let (a, b) = self.spans(0, held);
        let fresh = if target < ZEROED_BY_THE_OS {
            // A small one from the allocator's caches: the held bytes, then zeros. (A zeroed
            // allocation would bypass glibc's per-thread cache, and `calloc` clears memory
            // from the heap anyway.)
            let mut v = Vec::with_capacity(target);
            v.extend_from_slice(&self.storage[a]);
            v.extend_from_slice(&self.storage[b]);
            v.resize(target, 0);
            v.into_boxed_slice()
        } else {
            // A large one is allocated zeroed: past the mmap threshold it comes from the OS
            // as zero pages, so its memory is only resident once written.
            let mut fresh = vec![0u8; target].into_boxed_slice();
            let split = a.len();
            fresh[..split].copy_from_slice(&self.storage[a]);
            fresh[split..split + b.len()].copy_from_slice(&self.storage[b]);
            fresh
        };
        self.storage = fresh;
        self.head = 0;
    }
}

impl fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuffer")
            .field("len", &self.len)
            .field("uncommitted", &self.pending)
            .field("limit", &self.limit)
            .field("allocated", &self.storage.len())
            .field("head", &self.head)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn contents(r: &RingBuffer) -> Vec<u8> {
        let (a, b) = r.slices(0, r.len());
        [a, b].concat()
    }

    fn bytes(range: Range<usize>) -> Vec<u8> {
        range.map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn lazy_allocation() {
        let mut r = RingBuffer::new(64 * 1024);
        assert_eq!(r.allocated(), 0);
        assert_eq!(r.free(), 64 * 1024);
        assert!(r.is_empty());
        // Reading, peeking, consuming and committing on an empty ring allocate nothing.
        assert_eq!(r.dequeue(&mut [0; 10]), 0);
        assert_eq!(r.consume(10), 0);
        assert_eq!(r.commit(10), 0);
        assert_eq!(r.slices(0, 10), (&[][..], &[][..]));
        assert_eq!(r.allocated(), 0);

        assert_eq!(r.enqueue(b"hello"), 5);
        assert_eq!(r.allocated(), MIN_ALLOCATION);
        // Doubling from the minimum to the first size that holds 5,005 bytes.
        assert_eq!(r.enqueue(&bytes(0..5000)), 5000);
        assert_eq!(r.allocated(), 8192);
        assert_eq!(contents(&r)[5..], bytes(0..5000)[..]);
        assert_eq!(r.enqueue(&bytes(0..100_000)), 64 * 1024 - 5005);
        assert_eq!(r.allocated(), 64 * 1024);

        let mut out = vec![0; 64 * 1024];
        assert_eq!(r.dequeue(&mut out), 64 * 1024);
        assert!(r.shrink_if_empty());
        assert_eq!(r.allocated(), 0);
        assert!(!r.shrink_if_empty());
    }

    #[test]
    fn adopted_storage_shows_nothing_of_its_former_ring() {
        let mut old = RingBuffer::new(1024);
        assert_eq!(old.enqueue(&[0xAA; 64]), 64);
        // Not taken while it holds something.
        assert!(old.take_storage().is_none());
        assert_eq!(old.consume(64), 64);
        let storage = old.take_storage().expect("an empty ring gives its storage");
        assert_eq!((storage.len(), old.allocated()), (64, 0));

        // Too large for the new ring's limit: handed back.
        let mut small = RingBuffer::new(32);
        let storage = small.adopt_storage(storage).unwrap_err();

        let mut new = RingBuffer::new(1024);
        assert!(new.adopt_storage(storage).is_ok());
        assert_eq!((new.len(), new.uncommitted(), new.allocated()), (0, 0, 64));
        // One byte placed past a hole, then the hole committed with it: the hole reads as
        // zeros, not as the old ring's 0xAA.
        assert_eq!(new.write_at(10, b"x"), 1);
        assert_eq!(new.commit(11), 11);
        let mut out = [0xFF; 64];
        assert_eq!(new.peek(0, &mut out), 11);
        assert_eq!(&out[..11], b"\0\0\0\0\0\0\0\0\0\0x");
        // A ring that has storage adopts none.
        let spare = vec![0u8; 64].into_boxed_slice();
        assert!(new.adopt_storage(spare).is_err());
    }

    #[test]
    fn small_messages_need_little_memory_whatever_the_limit() {
        // A request/response connection with 1 MiB buffers: each side's rings only ever hold
        // a few bytes, so they stay at the minimum allocation.
        let mut r = RingBuffer::new(1 << 20);
        let mut out = [0u8; 100];
        for i in 0..1000usize {
            let msg = bytes(i..i + 1 + i % 40);
            assert_eq!(r.enqueue(&msg), msg.len());
            assert_eq!(r.dequeue(&mut out), msg.len());
            assert_eq!(out[..msg.len()], msg[..]);
        }
        assert_eq!(r.allocated(), MIN_ALLOCATION);
        // Out-of-order data 100 bytes ahead needs 200 bytes of room, no more than 256.
        assert_eq!(r.write_at(100, &[1; 100]), 100);
        assert_eq!(r.allocated(), 256);
    }

    #[test]
    fn growth_keeps_uncommitted_data_across_the_wrap() {
        let mut r = RingBuffer::new(1 << 16);
        assert_eq!(r.enqueue(&bytes(0..60)), 60);
        assert_eq!(r.consume(50), 50);
        // Committed 50..60 at physical 50..60; a hole of 4, then out-of-order bytes that wrap.
        assert_eq!(r.write_at(4, &bytes(64..70)), 6);
        assert_eq!(r.allocated(), MIN_ALLOCATION);
        // Growing (to hold 10 + 200 bytes) must keep both the committed and the uncommitted
        // bytes at their logical offsets.
        assert_eq!(r.write_at(10, &bytes(70..270)), 200);
        assert_eq!(r.allocated(), 256);
        assert_eq!(r.write_at(0, &bytes(60..64)), 4);
        assert_eq!(r.commit(300), 210);
        assert_eq!(contents(&r), bytes(50..270));
    }

    #[test]
    fn enqueue_places_bytes_up_to_and_across_the_storage_end() {
        // `enqueue`'s contiguous case (after the committed end, before the storage's end)
        // and its wrapping one, at every head position of a minimum-size ring.
        for head in 0..MIN_ALLOCATION {
            for n in [1, MIN_ALLOCATION / 2, MIN_ALLOCATION - head, MIN_ALLOCATION] {
                let mut r = RingBuffer::new(MIN_ALLOCATION);
                assert_eq!(r.enqueue(&vec![0xEE; head.max(1)]), head.max(1));
                assert_eq!(r.consume(head.max(1)), head.max(1));
                assert_eq!(r.enqueue(&bytes(0..n)), n, "head {head}, {n} bytes");
                assert_eq!(r.allocated(), MIN_ALLOCATION);
                assert_eq!(contents(&r), bytes(0..n), "head {head}, {n} bytes");
                // And once more behind them (a second append, possibly across the end).
                let m = (MIN_ALLOCATION - n).min(3);
                assert_eq!(r.enqueue(&bytes(n..n + m)), m);
                assert_eq!(
                    contents(&r),
                    bytes(0..n + m),
                    "head {head}, {n} + {m} bytes"
                );
            }
        }
    }

    #[test]
    fn small_limit_caps_allocation() {
        let mut r = RingBuffer::new(100);
        assert_eq!(r.enqueue(&[1; 10]), 10);
        assert_eq!(r.allocated(), MIN_ALLOCATION);
        assert_eq!(r.enqueue(&[2; 80]), 80);
        assert_eq!(r.allocated(), 100, "doubling stops at the limit");
        let mut zero = RingBuffer::new(0);
        assert_eq!(zero.enqueue(b"x"), 0);
        assert_eq!(zero.write_at(0, b"x"), 0);
        assert_eq!(zero.allocated(), 0);
    }

    #[test]
    fn limit_respected() {
        let mut r = RingBuffer::new(10);
        assert_eq!(r.enqueue(b"0123456"), 7);
        assert_eq!(r.free(), 3);
        assert_eq!(r.enqueue(b"789abc"), 3);
        assert_eq!(r.free(), 0);
        assert_eq!(r.enqueue(b"x"), 0);
        assert_eq!(contents(&r), b"0123456789");
        assert_eq!(r.write_at(0, b"x"), 0);
        // The limit cannot drop below what is committed.
        r.set_limit(4);
        assert_eq!(r.limit(), 10);
        assert_eq!(r.consume(6), 6);
        r.set_limit(5);
        assert_eq!(r.limit(), 5);
        assert_eq!(r.free(), 1);
        assert_eq!(r.enqueue(b"yz"), 1);
        assert_eq!(contents(&r), b"6789y");
    }

    #[test]
    fn wraparound_at_storage_edge() {
        let mut r = RingBuffer::new(8);
        assert_eq!(r.enqueue(b"abcdef"), 6);
        let mut out = [0; 4];
        assert_eq!(r.dequeue(&mut out), 4);
        assert_eq!(&out, b"abcd");
        // "ef" sits at 4..6; "ghijkl" wraps: "gh" at 6..8, "ijkl" at 0..4.
        assert_eq!(r.enqueue(b"ghijkl"), 6);
        assert_eq!(r.allocated(), 8);
        let (a, b) = r.slices(0, 8);
        assert_eq!(a, b"efgh");
        assert_eq!(b, b"ijkl");
        // Slices across the wrap, partial on either side.
        let (a, b) = r.slices(3, 3);
        assert_eq!((a, b), (&b"h"[..], &b"ij"[..]));
        let (a, b) = r.slices(4, 100);
        assert_eq!((a, b), (&b"ijkl"[..], &b""[..]));
        assert_eq!(r.slices(8, 1), (&[][..], &[][..]));
        let mut out = [0; 5];
        assert_eq!(r.peek(2, &mut out), 5);
        assert_eq!(&out, b"ghijk");
        let mut out = [0; 8];
        assert_eq!(r.dequeue(&mut out), 8);
        assert_eq!(&out, b"efghijkl");
        assert!(r.is_empty());
    }

    #[test]
    fn growth_while_wrapped_preserves_order() {
        let mut r = RingBuffer::new(1 << 20);
        assert_eq!(r.enqueue(&bytes(0..4096)), 4096);
        assert_eq!(r.consume(3000), 3000);
        // Wraps inside the 4 KiB storage.
        assert_eq!(r.enqueue(&bytes(4096..6096)), 2000);
        assert_eq!(r.allocated(), 4096);
        assert_ne!(r.slices(0, r.len()).1.len(), 0, "contents should wrap");
        // Out-of-order bytes past the end, also wrapped, must survive the growth too.
        assert_eq!(r.write_at(500, &bytes(6596..6996)), 400);
        assert_eq!(r.allocated(), 4096);
        // Growing: 3096 + 5000 bytes need 8 KiB.
        assert_eq!(r.enqueue(&bytes(6096..6596)), 500);
        assert_eq!(r.commit(400), 400);
        assert_eq!(r.enqueue(&bytes(6996..11996)), 5000);
        assert_eq!(r.allocated(), 16384);
        assert_eq!(contents(&r), bytes(3000..11996));
    }

    #[test]
    fn write_at_then_commit() {
        let mut r = RingBuffer::new(32);
        assert_eq!(r.enqueue(b"ab"), 2);
        // A segment two bytes after the committed end, then the one filling the hole.
        assert_eq!(r.write_at(2, b"ef"), 2);
        assert_eq!(r.uncommitted(), 4);
        assert_eq!(r.len(), 2);
        assert_eq!(r.free(), 30);
        assert_eq!(r.write_at(0, b"cd"), 2);
        assert_eq!(r.commit(100), 4);
        assert_eq!(r.uncommitted(), 0);
        assert_eq!(contents(&r), b"abcdef");
        // Writes are cut at the limit.
        assert_eq!(r.write_at(20, &[7; 10]), 6);
        assert_eq!(r.write_at(26, b"x"), 0);
        assert_eq!(r.write_at(usize::MAX, b"x"), 0);
        // Shrinking is refused while uncommitted data is held.
        let mut out = [0; 6];
        assert_eq!(r.dequeue(&mut out), 6);
        assert!(!r.shrink_if_empty());
        r.discard_uncommitted();
        assert!(r.shrink_if_empty());
    }

    #[test]
    fn out_of_order_data_across_the_wrap() {
        let mut r = RingBuffer::new(8);
        assert_eq!(r.enqueue(b"abcdef"), 6);
        assert_eq!(r.consume(5), 5);
        // Committed "f" at physical 5; out-of-order "ijk" lands at 0..3 after a 2-byte hole.
        assert_eq!(r.write_at(2, b"ijkl"), 4);
        assert_eq!(r.write_at(0, b"gh"), 2);
        assert_eq!(r.commit(6), 6);
        assert_eq!(contents(&r), b"fghijkl");
        let (a, b) = r.slices(1, 6);
        assert_eq!((a, b), (&b"gh"[..], &b"ijkl"[..]));
    }

    #[test]
    fn set_limit_forgets_uncommitted_past_it() {
        let mut r = RingBuffer::new(16);
        assert_eq!(r.write_at(4, b"abcd"), 4);
        r.set_limit(6);
        assert_eq!(r.uncommitted(), 6);
        assert_eq!(r.commit(10), 6);
        let mut out = [0; 6];
        assert_eq!(r.peek(0, &mut out), 6);
        assert_eq!(&out[4..], b"ab");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Enqueue(Vec<u8>),
        Dequeue(usize),
        Consume(usize),
        Peek(usize, usize),
        Slices(usize, usize),
        WriteAt(usize, Vec<u8>),
        Commit(usize),
        SetLimit(usize),
        Shrink,
        Discard,
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        let data = || proptest::collection::vec(any::<u8>(), 0..3000);
        prop_oneof![
            4 => data().prop_map(Op::Enqueue),
            3 => (0usize..3000).prop_map(Op::Dequeue),
            2 => (0usize..3000).prop_map(Op::Consume),
            2 => (0usize..9000, 0usize..3000).prop_map(|(o, n)| Op::Peek(o, n)),
            2 => (0usize..9000, 0usize..9000).prop_map(|(o, n)| Op::Slices(o, n)),
            3 => (0usize..5000, data()).prop_map(|(o, d)| Op::WriteAt(o, d)),
            2 => (0usize..5000).prop_map(Op::Commit),
            1 => (0usize..12000).prop_map(Op::SetLimit),
            1 => Just(Op::Shrink),
            1 => Just(Op::Discard),
            1 => Just(Op::Clear),
        ]
    }

    /// The reference: committed bytes in a deque, uncommitted ones in a sparse vector. A byte
    /// committed over a hole has no defined value (`None`).
    #[derive(Default)]
    struct Model {
        limit: usize,
        committed: VecDeque<Option<u8>>,
        pending: Vec<Option<u8>>,
    }

    fn check_bytes(
        got: &[u8],
        want: impl Iterator<Item = Option<u8>>,
    ) -> Result<(), TestCaseError> {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            if let Some(w) = w {
                prop_assert_eq!(*g, w, "byte {}", i);
            }
        }
        Ok(())
    }

    /// Applies `op` to `r`, whatever it returns.
    fn apply(r: &mut RingBuffer, op: &Op) {
        match op {
            Op::Enqueue(data) => drop(r.enqueue(data)),
            Op::Dequeue(k) => drop(r.dequeue(&mut vec![0; *k])),
            Op::Consume(k) => drop(r.consume(*k)),
            Op::Peek(..) | Op::Slices(..) => {}
            Op::WriteAt(o, data) => drop(r.write_at(*o, data)),
            Op::Commit(k) => drop(r.commit(*k)),
            Op::SetLimit(l) => r.set_limit(*l),
            Op::Shrink => drop(r.shrink_if_empty()),
            Op::Discard => r.discard_uncommitted(),
            Op::Clear => r.clear(),
        }
    }

    proptest! {
        /// `enqueue` is `write_at(0, ..)` then `commit` of all it wrote, whatever the ring
        /// holds (uncommitted bytes past the end included): the receiver's in-order path
        /// (`queue_text`) relies on it.
        #[test]
        fn enqueue_is_write_at_then_commit(
            limit in 0usize..10000,
            ops in proptest::collection::vec(op(), 0..40),
            data in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            let mut r = RingBuffer::new(limit);
            for op in &ops {
                apply(&mut r, op);
            }
            let mut s = r.clone();
            let n = r.enqueue(&data);
            let written = s.write_at(0, &data);
            prop_assert_eq!(s.commit(written), written);
            prop_assert_eq!(n, written);
            prop_assert_eq!(
                (r.len(), r.uncommitted(), r.free()),
                (s.len(), s.uncommitted(), s.free())
            );
            let (a, b) = r.slices(0, usize::MAX);
            let (c, d) = s.slices(0, usize::MAX);
            prop_assert_eq!([a, b].concat(), [c, d].concat());
        }

        #[test]
        fn behaves_like_a_deque(limit in 0usize..10000, ops in proptest::collection::vec(op(), 1..60)) {
            let mut r = RingBuffer::new(limit);
            let mut m = Model { limit, ..Model::default() };
            for op in ops {
                let allocated_before = r.allocated();
                match op {
                    Op::Enqueue(data) => {
                        let n = data.len().min(m.limit - m.committed.len());
                        prop_assert_eq!(r.enqueue(&data), n);
                        m.committed.extend(data[..n].iter().map(|&b| Some(b)));
                        m.pending.drain(..n.min(m.pending.len()));
                    }
                    Op::Dequeue(k) => {
                        let mut out = vec![0; k];
                        let n = k.min(m.committed.len());
                        prop_assert_eq!(r.dequeue(&mut out), n);
                        check_bytes(&out[..n], m.committed.drain(..n))?;
                    }
                    Op::Consume(k) => {
                        let n = k.min(m.committed.len());
                        prop_assert_eq!(r.consume(k), n);
                        m.committed.drain(..n);
                    }
                    Op::Peek(o, k) => {
                        let mut out = vec![0; k];
                        let n = k.min(m.committed.len().saturating_sub(o));
                        prop_assert_eq!(r.peek(o, &mut out), n);
                        check_bytes(&out[..n], m.committed.iter().skip(o).copied())?;
                    }
                    Op::Slices(o, k) => {
                        let (a, b) = r.slices(o, k);
                        let n = k.min(m.committed.len().saturating_sub(o));
                        prop_assert_eq!(a.len() + b.len(), n);
                        prop_assert!(b.is_empty() || !a.is_empty());
                        let joined = [a, b].concat();
                        check_bytes(&joined, m.committed.iter().skip(o).copied())?;
                    }
                    Op::WriteAt(o, data) => {
                        let start = m.committed.len() + o;
                        let n = if start >= m.limit { 0 } else { data.len().min(m.limit - start) };
                        prop_assert_eq!(r.write_at(o, &data), n);
                        if n > 0 {
                            if m.pending.len() < o + n {
                                m.pending.resize(o + n, None);
                            }
                            for (slot, &b) in m.pending[o..o + n].iter_mut().zip(&data) {
                                *slot = Some(b);
                            }
                        }
                    }
                    Op::Commit(k) => {
                        let n = k.min(m.pending.len());
                        prop_assert_eq!(r.commit(k), n);
                        m.committed.extend(m.pending.drain(..n));
                    }
                    Op::SetLimit(l) => {
                        r.set_limit(l);
                        m.limit = l.max(m.committed.len());
                        m.pending.truncate(m.limit - m.committed.len());
                    }
                    Op::Shrink => {
                        let freed = r.shrink_if_empty();
                        let expect = m.committed.is_empty() && m.pending.is_empty() && allocated_before > 0;
                        prop_assert_eq!(freed, expect);
                        if freed {
                            prop_assert_eq!(r.allocated(), 0);
                        }
                    }
                    Op::Discard => {
                        r.discard_uncommitted();
                        m.pending.clear();
                    }
                    Op::Clear => {
                        r.clear();
                        m.committed.clear();
                        m.pending.clear();
                    }
                }
                prop_assert_eq!(r.len(), m.committed.len());
                prop_assert_eq!(r.is_empty(), m.committed.is_empty());
                prop_assert_eq!(r.limit(), m.limit);
                prop_assert_eq!(r.free(), m.limit - m.committed.len());
                prop_assert_eq!(r.uncommitted(), m.pending.len());
                if r.allocated() > allocated_before {
                    prop_assert!(r.allocated() <= m.limit, "grew past the limit");
                }
                prop_assert!(r.allocated() >= r.len() + r.uncommitted());
                let (a, b) = r.slices(0, usize::MAX);
                let joined = [a, b].concat();
                check_bytes(&joined, m.committed.iter().copied())?;
            }
        }
    }
}
