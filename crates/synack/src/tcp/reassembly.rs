//! Out-of-order reassembly bookkeeping: which bytes beyond `RCV.NXT` have arrived.
//!
//! RFC 9293 §3.10.7.4 ("Segment text", seventh step) lets a receiver hold segments that arrive
//! ahead of `RCV.NXT` "for later processing", and RFC 1122 §4.2.2.20 (g) says a TCP "SHOULD
//! queue out-of-order segments" because dropping them wastes the sender's bandwidth. The bytes
//! themselves live in the receive [`RingBuffer`](super::buffer::RingBuffer) (written past the
//! committed end); the [`Assembler`] only records *which* byte ranges are present, as offsets
//! relative to `RCV.NXT`.
//!
//! Memory is bounded and inline: at most [`MAX_RANGES`] disjoint ranges. A segment that would
//! need one more range is refused ([`TooManyRanges`]); the caller drops it and the sender will
//! retransmit it, which is always allowed (the receiver may discard any out-of-order segment).
//!
//! How a receiver uses it, for a segment at `SEG.SEQ` with `n` bytes inside the window:
//!
//! ```text
//! offset = SEG.SEQ - RCV.NXT
//! assembler.add(offset, n)?            // refused: drop the segment
//! rx_buffer.write_at(offset, payload)
//! let advance = assembler.take_front(); // > 0 when the hole at RCV.NXT is filled
//! rx_buffer.commit(advance); RCV.NXT += advance
//! ```

use core::fmt;

/// The most disjoint out-of-order ranges an [`Assembler`] tracks.
///
/// The ranges live in a vector allocated only when out-of-order data arrives (an idle or
/// in-order connection holds none: ARCHITECTURE.md rule 6), so the bound is about the worst case,
/// not the common one. It must be large: after a slow-start overshoot at a drop-tail queue
/// every other segment of a window can be missing, and a receiver that forgets what it
/// SACKed (RFC 2018 §8 reneging) leaves the sender blind — it then falls back to its
/// retransmission timer. 4096 ranges (32 KiB at most) cover a window of 8192 segments with
/// alternate holes, about 12 MB at a 1460-byte MSS; Linux bounds its out-of-order queue by
/// the receive buffer instead.
pub const MAX_RANGES: usize = 4096;

/// A segment would have needed a new range beyond [`MAX_RANGES`]; nothing was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TooManyRanges;

impl fmt::Display for TooManyRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "out-of-order segment refused: already tracking {MAX_RANGES} separate ranges"
        )
    }
}

impl std::error::Error for TooManyRanges {}

/// The set of byte ranges received beyond `RCV.NXT`, as offsets from `RCV.NXT`.
///
/// Ranges are half-open `(start, end)` pairs kept sorted, non-overlapping and non-adjacent
/// (touching ranges are merged), so the set has one canonical form.
#[derive(Clone, Default)]
pub struct Assembler {
    /// The live ranges, sorted by start; no allocation until the first one.
    ranges: Vec<(u32, u32)>,
}

impl Assembler {
    /// An empty assembler: nothing beyond `RCV.NXT` has arrived.
    #[cfg(test)]
    pub const fn new() -> Assembler {
        Assembler { ranges: Vec::new() }
    }

    #[inline]
    fn live(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// True if no out-of-order byte is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many disjoint ranges are held (at most [`MAX_RANGES`]).
    #[inline]
    #[cfg(test)]
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Records that bytes `offset .. offset + len` (relative to `RCV.NXT`) are present.
    /// Overlaps with and duplicates of bytes already present are fine, and touching ranges are
    /// merged. If the bytes touch no existing range and [`MAX_RANGES`] ranges are already held,
    /// the farthest range is forgotten to make room when the new bytes lie before it (like
    /// Linux pruning its out-of-order queue from the far end; RFC 2018 §8 lets a receiver
    /// renege): data nearest `RCV.NXT` is what lets the stream advance, and the segment that
    /// fills the hole at offset 0 must never be refused. New bytes beyond every range when
    /// full get [`TooManyRanges`] and change nothing. A range running past `u32::MAX` is cut
    /// there; an empty one is a no-op.
    pub fn add(&mut self, offset: u32, len: u32) -> Result<(), TooManyRanges> {
        let start = offset;
        let end = offset.saturating_add(len);
        if start == end {
            return Ok(());
        }
        let n = self.ranges.len();
        // The first range that ends at or after `start` is the first that can touch us ...
        let first = self.ranges.partition_point(|r| r.1 < start);
        // ... and every following range that starts at or before `end` touches us too.
        let last = first + self.ranges[first..].partition_point(|r| r.0 <= end);
        if first == last {
            // Disjoint from everything: insert a new range at `first`.
            if n >= MAX_RANGES {
                if first >= n {
                    return Err(TooManyRanges);
                }
                // Forget the farthest range to keep the nearer bytes.
                self.ranges.pop();
            }
            self.ranges.insert(first, (start, end));
        } else {
            // Merge ranges `first .. last` and the new bytes into one at `first`.
            let merged = (
                start.min(self.ranges[first].0),
                end.max(self.ranges[last - 1].1),
            );
            self.ranges[first] = merged;
            self.ranges.drain(first + 1..last);
        }
        Ok(())
    }

    /// If a range starts at offset 0 (the bytes at `RCV.NXT` are present), removes it, shifts
    /// every other range down by its length (so offsets stay relative to the new `RCV.NXT`)
    /// and returns that length: how far `RCV.NXT` advances. Otherwise returns 0.
    pub fn take_front(&mut self) -> u32 {
        if self.ranges.first().is_none_or(|r| r.0 != 0) {
            return 0;
        }
        let advance = self.ranges.remove(0).1;
        for r in &mut self.ranges {
            // Ranges are non-adjacent, so every later start is beyond `advance`.
            r.0 = r.0.saturating_sub(advance);
            r.1 = r.1.saturating_sub(advance);
        }
        if self.ranges.is_empty() {
            // Give the memory back once the holes are filled.
            self.ranges = Vec::new();
        }
        advance
    }

    /// The ranges held, as half-open `(start, end)` offsets from `RCV.NXT`, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.live().iter().copied()
    }

    /// True if the byte at `offset` is present.
    #[cfg(test)]
    pub fn contains(&self, offset: u32) -> bool {
        self.range_containing(offset).is_some()
    }

    /// The whole contiguous range `(start, end)` that holds the byte at `offset`, if present.
    /// The SACK generator uses it to report complete blocks (RFC 2018 §4).
    pub fn range_containing(&self, offset: u32) -> Option<(u32, u32)> {
        let i = self.ranges.partition_point(|r| r.1 <= offset);
        self.ranges
            .get(i)
            .copied()
            .filter(|&(s, e)| s <= offset && offset < e)
    }

    /// Forgets everything (the data it describes was dropped).
    pub fn clear(&mut self) {
        self.ranges = Vec::new();
    }
}

/// Equal when the same ranges are held (unused slots do not count).
impl PartialEq for Assembler {
    fn eq(&self, other: &Assembler) -> bool {
        self.live() == other.live()
    }
}

impl Eq for Assembler {}

impl fmt::Debug for Assembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(s, e)| s..e))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges(a: &Assembler) -> Vec<(u32, u32)> {
        a.iter().collect()
    }

    #[test]
    fn in_order() {
        let mut a = Assembler::new();
        assert_eq!(a.take_front(), 0);
        a.add(0, 100).unwrap();
        assert_eq!(a.take_front(), 100);
        assert!(a.is_empty());
        a.add(0, 50).unwrap();
        assert_eq!(a.take_front(), 50);
        assert_eq!(a.take_front(), 0);
    }

    #[test]
    fn hole_fill_merges_following_ranges() {
        let mut a = Assembler::new();
        a.add(10, 10).unwrap();
        a.add(30, 10).unwrap();
        assert_eq!(ranges(&a), [(10, 20), (30, 40)]);
        assert_eq!(a.take_front(), 0);
        a.add(0, 10).unwrap();
        assert_eq!(a.take_front(), 20);
        // The remaining range is now relative to the advanced RCV.NXT.
        assert_eq!(ranges(&a), [(10, 20)]);
        assert!(a.contains(10) && a.contains(19) && !a.contains(20) && !a.contains(9));
        assert_eq!(a.range_containing(15), Some((10, 20)));
        assert_eq!(a.range_containing(5), None);
    }

    #[test]
    fn overlap_and_duplicate_cases() {
        let mut a = Assembler::new();
        a.add(10, 10).unwrap(); // [10,20)
        a.add(10, 10).unwrap(); // exact duplicate
        assert_eq!(ranges(&a), [(10, 20)]);
        a.add(12, 3).unwrap(); // inside
        assert_eq!(ranges(&a), [(10, 20)]);
        a.add(5, 7).unwrap(); // overlaps the left edge
        assert_eq!(ranges(&a), [(5, 20)]);
        a.add(18, 7).unwrap(); // overlaps the right edge
        assert_eq!(ranges(&a), [(5, 25)]);
        a.add(25, 5).unwrap(); // adjacent on the right
        assert_eq!(ranges(&a), [(5, 30)]);
        a.add(2, 3).unwrap(); // adjacent on the left
        assert_eq!(ranges(&a), [(2, 30)]);
        a.add(40, 5).unwrap();
        a.add(50, 5).unwrap();
        a.add(60, 5).unwrap();
        assert_eq!(ranges(&a), [(2, 30), (40, 45), (50, 55), (60, 65)]);
        a.add(1, 100).unwrap(); // covers everything
        assert_eq!(ranges(&a), [(1, 101)]);
        a.add(200, 5).unwrap();
        a.add(150, 60).unwrap(); // covers a later range entirely
        assert_eq!(ranges(&a), [(1, 101), (150, 210)]);
        a.add(101, 49).unwrap(); // exactly fills the gap
        assert_eq!(ranges(&a), [(1, 210)]);
        a.add(7, 0).unwrap(); // empty: no-op
        a.add(500, 0).unwrap();
        assert_eq!(ranges(&a), [(1, 210)]);
        a.add(0, 1).unwrap();
        assert_eq!(a.take_front(), 210);
        assert!(a.is_empty());
    }

    #[test]
    fn saturates_at_the_top_of_the_offset_space() {
        let mut a = Assembler::new();
        a.add(u32::MAX - 5, 100).unwrap();
        assert_eq!(ranges(&a), [(u32::MAX - 5, u32::MAX)]);
        a.add(u32::MAX, 1).unwrap();
        assert_eq!(ranges(&a), [(u32::MAX - 5, u32::MAX)]);
    }

    #[test]
    fn when_full_nearer_bytes_evict_the_farthest_range() {
        let mut a = Assembler::new();
        for i in 0..MAX_RANGES as u32 {
            a.add(10 + 20 * i, 10).unwrap();
        }
        assert_eq!(a.range_count(), MAX_RANGES);
        let before = a.clone();
        let farthest = (
            10 + 20 * (MAX_RANGES as u32 - 1),
            20 + 20 * (MAX_RANGES as u32 - 1),
        );
        // Beyond every range: refused, nothing changes.
        assert_eq!(a.add(20 * MAX_RANGES as u32 + 1000, 3), Err(TooManyRanges));
        assert_eq!(a, before);
        assert!(!TooManyRanges.to_string().is_empty());
        // The bytes at RCV.NXT (offset 0) are never refused: the farthest range goes.
        a.add(0, 5).unwrap();
        assert_eq!(a.range_count(), MAX_RANGES);
        assert!(!a.contains(farthest.0));
        assert_eq!(ranges(&a)[0], (0, 5));
        // Touching an existing range still works when full, and bridging frees a slot.
        a.add(5, 5).unwrap();
        a.add(20, 10).unwrap();
        assert_eq!(a.range_count(), MAX_RANGES - 2);
        assert_eq!(a.take_front(), 40);
    }

    /// Every arrival order of the segments delivers the whole stream exactly once.
    fn all_orders(segments: &[(u32, u32)]) {
        let total_end = segments.iter().map(|&(s, l)| s + l).max().unwrap_or(0);
        let mut order: Vec<usize> = (0..segments.len()).collect();
        let mut count = 0;
        permutations(&mut order, 0, &mut |order| {
            count += 1;
            let mut a = Assembler::new();
            let mut rcv_nxt = 0u32; // absolute offset of RCV.NXT
            for &i in order {
                let (seq, len) = segments[i];
                let end = seq + len;
                if end <= rcv_nxt {
                    continue; // wholly old: a duplicate
                }
                // Trim what is already acknowledged (RFC 9293 §3.10.7.4 trims to the window).
                let start = seq.max(rcv_nxt);
                a.add(start - rcv_nxt, end - start).unwrap();
                rcv_nxt += a.take_front();
            }
            assert_eq!(rcv_nxt, total_end, "order {order:?}");
            assert!(a.is_empty(), "order {order:?}");
        });
        assert_eq!(count, (1..=segments.len()).product::<usize>());
    }

    fn permutations(v: &mut [usize], k: usize, f: &mut dyn FnMut(&[usize])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permutations(v, k + 1, f);
            v.swap(k, i);
        }
    }

    #[test]
    fn every_order_of_four_and_five_segments() {
        all_orders(&[(0, 100), (100, 100), (200, 100), (300, 100)]);
        all_orders(&[(0, 10), (10, 1), (11, 500), (511, 7), (518, 1000)]);
        // Overlapping retransmissions with different boundaries.
        all_orders(&[(0, 150), (100, 100), (150, 150), (280, 20), (250, 100)]);
    }

    /// The model: a bitmap of present bytes, shifted when the front is taken.
    const SPACE: usize = 256;

    fn runs(bits: &[bool]) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < bits.len() {
            if bits[i] {
                let s = i;
                while i < bits.len() && bits[i] {
                    i += 1;
                }
                out.push((s as u32, i as u32));
            } else {
                i += 1;
            }
        }
        out
    }

    proptest! {
        #[test]
        fn matches_a_bitmap(ops in proptest::collection::vec(
            prop_oneof![
                2 => (0u32..200, 0u32..40).prop_map(Some),
                2 => (0u32..200, 0u32..4).prop_map(Some),
                1 => Just(None),
            ],
            1..80,
        )) {
            let mut a = Assembler::new();
            let mut bits = vec![false; SPACE];
            for op in ops {
                match op {
                    Some((off, len)) => {
                        let mut next = bits.clone();
                        for b in &mut next[off as usize..(off + len) as usize] {
                            *b = true;
                        }
                        let result = a.add(off, len);
                        let new_runs = runs(&next);
                        if new_runs.len() > MAX_RANGES {
                            let beyond_all = runs(&bits).last().is_none_or(|&(_, end)| off > end);
                            if beyond_all {
                                prop_assert_eq!(result, Err(TooManyRanges));
                            } else {
                                // The farthest range is forgotten to make room.
                                prop_assert_eq!(result, Ok(()));
                                let (s, e) = new_runs[new_runs.len() - 1];
                                for b in &mut next[s as usize..e as usize] {
                                    *b = false;
                                }
                                bits = next;
                            }
                        } else {
                            prop_assert_eq!(result, Ok(()));
                            bits = next;
                        }
                    }
                    None => {
                        let k = bits.iter().take_while(|&&b| b).count();
                        prop_assert_eq!(a.take_front() as usize, k);
                        bits.drain(..k);
                        bits.resize(SPACE, false);
                    }
                }
                prop_assert_eq!(ranges(&a), runs(&bits));
                prop_assert_eq!(a.is_empty(), !bits.contains(&true));
                for (i, &b) in bits.iter().enumerate().step_by(7) {
                    prop_assert_eq!(a.contains(i as u32), b);
                }
            }
        }
    }
}
