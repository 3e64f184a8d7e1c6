//! Receiver-side SACK block generation (RFC 2018 §4).
//!
//! When the receiver holds data beyond `RCV.NXT` it describes it to the sender in the SACK
//! option of every ACK (RFC 2018 §4: "SACK options SHOULD be included in all ACKs which do not
//! ACK the highest sequence number in the data receiver's queue"). The rules for filling the
//! option, all from RFC 2018 §4:
//!
//! 1. "The first SACK block ... MUST specify the contiguous block of data containing the
//!    segment which triggered this ACK, unless that segment advanced the Acknowledgment Number
//!    field in the header."
//! 2. "The data receiver SHOULD include as many distinct SACK blocks as possible."
//! 3. "The SACK option SHOULD be filled out by repeating the most recently reported SACK blocks
//!    (based on first SACK blocks in previous SACK options) that are not subsets of a SACK block
//!    already included in the SACK option being constructed."
//!
//! [`SackRecorder`] remembers the recency order (rules 1 and 3): the receiver calls
//! [`SackRecorder::on_out_of_order`] for each segment it queues beyond `RCV.NXT`, whose block
//! becomes the first one of the next ACK. [`SackRecorder::blocks`] builds the option from that
//! order as recorded (as Linux's `selective_acks`): blocks already acknowledged or no longer
//! held are dropped, and a block pushed out of the four is not rebuilt from the assembler
//! (Linux does not; RFC 2018 rule 2 is a SHOULD). How many blocks fit depends on the other
//! options: four without timestamps, three with them (RFC 2018 §3: 40 bytes of option space,
//! 8 bytes per block plus 2).
//!
//! Owed ACKs (Linux `tcp_sack_new_ofo_skb`): a receiver that handles a batch of arrivals
//! before it transmits (a burst read from the device in one go) would send one ACK for the
//! whole batch, and a block that three newer ones pushed out of its option would never be
//! reported: the sender then resends data that arrived. Linux sends the ACK it owes before a
//! segment opens a new block while two or more are held (`tcp_sack_compress_send_ack`,
//! `TCP_SACK_BLOCKS_EXPECTED`), and answers every duplicate at once (`tcp_send_dupack`),
//! where one option has room for one D-SACK block; here the receiver keeps that ACK's blocks
//! ([`SackRecorder::owe`]) and sends it first.
//!
//! Nothing here allocates; the output is a small inline [`SackBlocks`].
//!
//! D-SACK (RFC 2883): [`SackRecorder::on_duplicate`] records a duplicate range, reported once
//! as the *first* block of the next option and not remembered in the recency order; when it
//! lies beyond `RCV.NXT`, the duplicate segment's own block follows (RFC 2883 §4.1.3 asks for
//! the block containing it), even if the two are the same range. That block is the range the
//! segment covered, folded with the remembered blocks it touches, and may be narrower than
//! the range the assembler holds around it (as Linux's `tcp_data_queue_ofo`, which records
//! the arriving segment's `seq .. end_seq`).

use core::fmt;

use super::reassembly::Assembler;
use super::seq::SeqNum;
use crate::wire::tcp::SackBlocks;

/// The most SACK blocks one TCP option can carry (RFC 2018 §3: "the 40 bytes available for
/// TCP options can specify a maximum of 4 blocks").
pub const MAX_SACK_BLOCKS: usize = SackBlocks::MAX;

/// The most owed ACKs kept (see the module documentation); more are not remembered. Linux
/// sends each at once and needs no bound; here they wait for the end of the batch, and four
/// report every block of a batch that opens up to eight new blocks with timestamps (nine
/// without). Beyond that the middle blocks go unreported and the sender may resend them.
const MAX_OWED: usize = 4;

/// Linux `TCP_SACK_BLOCKS_EXPECTED`: how many blocks an ACK is counted on to carry ("the max
/// is 4, but this becomes 3 with timestamps; SACK packets might be lost, be conservative").
pub const SACK_BLOCKS_EXPECTED: usize = 2;

/// The recency order of out-of-order blocks, most recent first, for RFC 2018 §4's rules.
///
/// Remembers at most [`MAX_SACK_BLOCKS`] blocks as sequence ranges, so it stays correct across
/// the 2^32 wrap and whatever `RCV.NXT` does in between.
#[derive(Clone, Copy, Default)]
pub struct SackRecorder {
    /// `recent[..count]`, most recent first; pairwise neither overlapping nor adjacent.
    recent: [(SeqNum, SeqNum); MAX_SACK_BLOCKS],
    count: u8,
    /// A duplicate range to report first in the next SACK option (RFC 2883 D-SACK).
    dsack: Option<(SeqNum, SeqNum)>,
    /// ACKs owed from before the latest arrivals, oldest first: their SACK blocks, and
    /// whether the first is a D-SACK block.
    owed: [(SackBlocks, bool); MAX_OWED],
    owed_count: u8,
}

impl SackRecorder {
    /// No blocks remembered.
    #[cfg(test)]
    pub const fn new() -> SackRecorder {
        SackRecorder {
            recent: [(SeqNum(0), SeqNum(0)); MAX_SACK_BLOCKS],
            count: 0,
            dsack: None,
            owed: [(SackBlocks::new(), false); MAX_OWED],
            owed_count: 0,
        }
    }

    /// How many remembered blocks lie beyond `rcv_nxt` (Linux `num_sacks`, which
    /// `tcp_sack_remove` prunes as soon as RCV.NXT moves; so is this list, by
    /// [`on_rcv_nxt`](Self::on_rcv_nxt)).
    pub fn len_above(&self, rcv_nxt: SeqNum) -> usize {
        self.live().iter().filter(|&&(_, e)| e > rcv_nxt).count()
    }

    /// An ACK carrying `blocks` was owed before a segment that opens a new block (Linux
    /// `tcp_sack_compress_send_ack` in `tcp_sack_new_ofo_skb`), or before another duplicate
    /// (`dsack`: the first block is the pending D-SACK, which this ACK now carries; Linux
    /// answers each duplicate at once): it goes out before the next one. Ignored when
    /// [`MAX_OWED`] are owed already.
    pub fn owe(&mut self, blocks: SackBlocks, dsack: bool) {
        if blocks.is_empty() {
            return;
        }
        if let Some(slot) = self.owed.get_mut(usize::from(self.owed_count)) {
            *slot = (blocks, dsack);
            self.owed_count += 1;
            if dsack {
                self.dsack = None;
            }
        }
    }

    /// Whether a duplicate `start .. end` would not extend the pending D-SACK block (only one
    /// fits an option).
    pub fn dsack_apart(&self, start: SeqNum, end: SeqNum) -> bool {
        self.dsack.is_some_and(|(s, e)| start > e || end < s)
    }

    /// The blocks of the oldest owed ACK that still reports something, less what `rcv_nxt`
    /// has reached since (a D-SACK block stays as it is). An owed ACK whose blocks `rcv_nxt`
    /// has all passed would be a bare duplicate ACK: it is skipped.
    pub fn owed(&self, rcv_nxt: SeqNum) -> Option<SackBlocks> {
        (0..usize::from(self.owed_count))
            .map(|i| self.owed_cut(i, rcv_nxt))
            .find(|b| !b.is_empty())
    }

    /// Owed ACK `i`'s blocks less what `rcv_nxt` has reached.
    fn owed_cut(&self, i: usize, rcv_nxt: SeqNum) -> SackBlocks {
        let (blocks, dsack) = self.owed[i];
        let mut out = SackBlocks::new();
        for (i, &(s, e)) in blocks.as_slice().iter().enumerate() {
            if dsack && i == 0 {
                out.push((s, e));
            } else if e > rcv_nxt {
                out.push((s.max(rcv_nxt), e));
            }
        }
        out
    }

    /// An ACK went out at `rcv_nxt`: it was the owed one [`owed`](Self::owed) gave, if any
    /// (then returns true: the ACK for the present state is still to go); the owed ACKs
    /// before it, which reported nothing any more, are forgotten with it.
    pub fn owed_sent(&mut self, rcv_nxt: SeqNum) -> bool {
        let n = usize::from(self.owed_count);
        let Some(i) = (0..n).find(|&i| !self.owed_cut(i, rcv_nxt).is_empty()) else {
            self.owed_count = 0;
            return false;
        };
        self.owed.copy_within(i + 1..n, 0);
        self.owed_count = (n - i - 1) as u8;
        true
    }

    /// Records that `start .. end` arrived again (RFC 2883 §4): the next SACK option reports it
    /// as its first block. Within one ACK the first duplicate range wins; a later one that
    /// touches it extends it (as Linux's tcp_dsack_extend).
    pub fn on_duplicate(&mut self, start: SeqNum, end: SeqNum) {
        if end <= start {
            return;
        }
        self.dsack = Some(match self.dsack {
            None => (start, end),
            Some((s, e)) if start <= e && s <= end => (s.min(start), e.max(end)),
            Some(d) => d,
        });
    }

    /// A D-SACK block waits to be sent.
    pub fn has_dsack(&self) -> bool {
        self.dsack.is_some()
    }

    /// The ACK carrying the D-SACK block went out.
    pub fn dsack_sent(&mut self) {
        self.dsack = None;
    }

    #[inline]
    fn live(&self) -> &[(SeqNum, SeqNum)] {
        &self.recent[..usize::from(self.count)]
    }

    /// Records that a segment covering `start .. end` was queued beyond `RCV.NXT`: its block
    /// becomes the first block of the next SACK option (RFC 2018 §4). Remembered blocks that
    /// it overlaps or touches are folded into it, since the assembler now holds them as one
    /// range; the oldest block is forgotten if more than [`MAX_SACK_BLOCKS`] remain. An empty
    /// or inverted range is ignored.
    pub fn on_out_of_order(&mut self, start: SeqNum, end: SeqNum) {
        if end <= start {
            return;
        }
        let mut merged = (start, end);
        let mut kept = [(SeqNum(0), SeqNum(0)); MAX_SACK_BLOCKS];
        let mut n = 0;
        for &(s, e) in self.live() {
            if s <= merged.1 && merged.0 <= e {
                merged = (merged.0.min(s), merged.1.max(e));
            } else if let Some(slot) = kept.get_mut(n) {
                *slot = (s, e);
                n += 1;
            }
        }
        self.recent[0] = merged;
        let n = n.min(MAX_SACK_BLOCKS - 1);
        self.recent[1..=n].copy_from_slice(&kept[..n]);
        self.count = (n + 1) as u8;
    }

    /// Forgets blocks that `rcv_nxt` has reached: they are acknowledged by the ACK field now
    /// and must not be reported (RFC 2018 §4's first rule exempts a segment that "advanced the
    /// Acknowledgment Number"). Call it whenever `RCV.NXT` advances; [`blocks`](Self::blocks)
    /// skips such blocks anyway, but forgetting them frees their slots and keeps a block from
    /// reappearing after the sequence space wraps.
    pub fn on_rcv_nxt(&mut self, rcv_nxt: SeqNum) {
        let mut n = 0;
        for i in 0..usize::from(self.count) {
            let (s, e) = self.recent[i];
            if e > rcv_nxt {
                self.recent[n] = (s.max(rcv_nxt), e);
                n += 1;
            }
        }
        self.count = n as u8;
    }

    /// Nothing to report and nothing owed: no block remembered, no D-SACK pending, no owed
    /// ACK. Such a recorder acts as a new one.
    pub fn is_idle(&self) -> bool {
        self.count == 0 && self.dsack.is_none() && self.owed_count == 0
    }

    /// Forgets every block, any pending D-SACK and the owed ACKs (the out-of-order data was
    /// dropped).
    pub fn clear(&mut self) {
        self.count = 0;
        self.dsack = None;
        self.owed_count = 0;
    }

    /// Builds the blocks of the next SACK option: at most `max` (clamped to
    /// [`MAX_SACK_BLOCKS`]; 4 without timestamps, 3 with), the remembered blocks most recent
    /// first, as they were recorded (Linux `tcp_sack_new_ofo_skb` keeps `selective_acks` so and
    /// `tcp_options_write` sends them as they are): a block is neither widened to the range
    /// the assembler holds around it, nor is a free slot filled with a range the recorder
    /// forgot (Linux rebuilds nothing from its out-of-order queue, so a block pushed out of
    /// the four stays unreported). Blocks at or below `rcv_nxt` and blocks whose data is no
    /// longer held are left out. `fin` is the peer's FIN held out of order: a block recorded
    /// with it ends at `fin + 1` (the segment that carried it gave its `end_seq` to
    /// [`on_out_of_order`](Self::on_out_of_order), as Linux's does) and is held when its data
    /// before the FIN is, or when it is the FIN alone. A block that ends at the FIN without
    /// it is not widened to it: a segment that never joined the FIN does not report it (as
    /// Linux). `assembler` offsets are relative to `rcv_nxt`. An empty list means: send no
    /// SACK option.
    pub fn blocks(
        &self,
        assembler: &Assembler,
        rcv_nxt: SeqNum,
        max: usize,
        fin: Option<SeqNum>,
    ) -> SackBlocks {
        let max = max.min(MAX_SACK_BLOCKS);
        let mut out = SackBlocks::new();
        if let Some(d) = self.dsack.filter(|_| max > 0) {
            out.push(d);
        }
        for &(start, end) in self.live() {
            if out.len() >= max {
                break;
            }
            if end <= rcv_nxt {
                continue; // acknowledged
            }
            let start = start.max(rcv_nxt);
            // A block recorded with the FIN (Linux's `end_seq` counts it) ends one past the
            // FIN's sequence number, where no data is.
            let data_end = match fin {
                Some(f) if end == f + 1u32 => f,
                _ => end,
            };
            // The block's last byte of data is still held (or it is the FIN alone).
            let held = data_end <= start
                || assembler
                    .range_containing((data_end - 1u32) - rcv_nxt)
                    .is_some();
            if held {
                out.push((start, end));
            }
        }
        out
    }
}

/// Equal when the same blocks are remembered in the same order.
impl PartialEq for SackRecorder {
    fn eq(&self, other: &SackRecorder) -> bool {
        self.live() == other.live()
    }
}

impl Eq for SackRecorder {}

impl fmt::Debug for SackRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.live().iter().map(|&(l, r)| l..r))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A receiver's out-of-order path in miniature: RCV.NXT, the assembler and the SACK order.
    struct Receiver {
        rcv_nxt: SeqNum,
        assembler: Assembler,
        sack: SackRecorder,
    }

    impl Receiver {
        fn new(rcv_nxt: u32) -> Receiver {
            Receiver {
                rcv_nxt: SeqNum(rcv_nxt),
                assembler: Assembler::new(),
                sack: SackRecorder::new(),
            }
        }

        /// Receives `len` bytes at `seq` (which must not be below RCV.NXT); returns the ACK
        /// number and the SACK blocks of the ACK it triggers.
        fn segment(&mut self, seq: SeqNum, len: u32, max: usize) -> (SeqNum, SackBlocks) {
            let offset = seq - self.rcv_nxt;
            self.assembler.add(offset, len).unwrap();
            let advance = self.assembler.take_front();
            if advance > 0 {
                self.rcv_nxt += advance;
                self.sack.on_rcv_nxt(self.rcv_nxt);
            } else {
                self.sack.on_out_of_order(seq, seq + len);
            }
            (
                self.rcv_nxt,
                self.sack.blocks(&self.assembler, self.rcv_nxt, max, None),
            )
        }
    }

    /// Blocks as `(left - base, right - base)` so tests read like the RFC's tables.
    fn rel(list: &SackBlocks, base: u32) -> Vec<(u32, u32)> {
        list.as_slice()
            .iter()
            .copied()
            .map(|(l, r)| (l - SeqNum(base), r - SeqNum(base)))
            .collect()
    }

    /// RFC 2018 §7 with the left window edge at `base + 5000`, 500-byte segments.
    fn rfc2018_case_2(base: u32) {
        let mut r = Receiver::new(base.wrapping_add(5000));
        let seg = |i: u32| SeqNum(base) + (5000 + 500 * i);
        // The first segment (5000) is lost; each of the other seven extends one block.
        for i in 1..8 {
            let (ack, list) = r.segment(seg(i), 500, 4);
            assert_eq!(ack - SeqNum(base), 5000);
            assert_eq!(rel(&list, base), [(5500, 5500 + 500 * i)]);
        }
        // The retransmission of 5000 fills the hole: everything is acknowledged.
        let (ack, list) = r.segment(seg(0), 500, 4);
        assert_eq!(ack - SeqNum(base), 9000);
        assert!(list.is_empty());
    }

    fn rfc2018_case_3(base: u32) {
        let mut r = Receiver::new(base.wrapping_add(5000));
        let seg = |i: u32| SeqNum(base) + (5000 + 500 * i);
        let (ack, list) = r.segment(seg(0), 500, 3);
        assert_eq!((ack - SeqNum(base), list.len()), (5500, 0));
        // The 2nd, 4th, 6th and 8th segments are lost.
        let (ack, list) = r.segment(seg(2), 500, 3);
        assert_eq!(ack - SeqNum(base), 5500);
        assert_eq!(rel(&list, base), [(6000, 6500)]);
        let (_, list) = r.segment(seg(4), 500, 3);
        assert_eq!(rel(&list, base), [(7000, 7500), (6000, 6500)]);
        let (_, list) = r.segment(seg(6), 500, 3);
        assert_eq!(rel(&list, base), [(8000, 8500), (7000, 7500), (6000, 6500)]);
        // The 4th packet arrives: it joins two blocks, and its block comes first.
        let (ack, list) = r.segment(seg(3), 500, 3);
        assert_eq!(ack - SeqNum(base), 5500);
        assert_eq!(rel(&list, base), [(6000, 7500), (8000, 8500)]);
        // The 2nd arrives: the ACK jumps to 7500 and one block is left.
        let (ack, list) = r.segment(seg(1), 500, 3);
        assert_eq!(ack - SeqNum(base), 7500);
        assert_eq!(rel(&list, base), [(8000, 8500)]);
    }

    #[test]
    fn rfc2018_examples() {
        rfc2018_case_2(0);
        rfc2018_case_3(0);
    }

    #[test]
    fn rfc2018_examples_across_the_wrap() {
        // Put the 2^32 wrap in the middle of the window, at various points.
        for base in [u32::MAX - 5999, u32::MAX - 6999, u32::MAX - 7749, u32::MAX] {
            rfc2018_case_2(base);
            rfc2018_case_3(base);
        }
    }

    #[test]
    fn limited_to_max_and_most_recent_first() {
        let mut r = Receiver::new(1000);
        // Five separate blocks, arriving from the highest down.
        for i in (1..=5u32).rev() {
            r.segment(SeqNum(1000 + 200 * i), 100, 4);
        }
        let all = r.sack.blocks(&r.assembler, r.rcv_nxt, 4, None);
        assert_eq!(
            rel(&all, 0),
            [(1200, 1300), (1400, 1500), (1600, 1700), (1800, 1900)]
        );
        let three = r.sack.blocks(&r.assembler, r.rcv_nxt, 3, None);
        assert_eq!(rel(&three, 0), [(1200, 1300), (1400, 1500), (1600, 1700)]);
        assert!(r.sack.blocks(&r.assembler, r.rcv_nxt, 0, None).is_empty());
        assert_eq!(r.sack.blocks(&r.assembler, r.rcv_nxt, 99, None).len(), 4);
        // A segment inside a range whose block was pushed out is reported as it arrived, not
        // widened to the range held (Linux `tcp_sack_new_ofo_skb` records seq..end_seq).
        let (_, list) = r.segment(SeqNum(2050), 10, 4);
        assert_eq!(
            rel(&list, 0),
            [(2050, 2060), (1200, 1300), (1400, 1500), (1600, 1700)]
        );
    }

    #[test]
    fn free_slots_are_not_filled_from_the_assembler() {
        let mut r = Receiver::new(0);
        for i in 1..=6u32 {
            r.segment(SeqNum(100 * i), 50, 4);
        }
        // Remembered: 600, 500, 400, 300. Now join 400 and 500 and 600 into one range.
        r.segment(SeqNum(450), 50, 4);
        let (_, list) = r.segment(SeqNum(550), 50, 4);
        // 400..650 first, then 300 (remembered); 100 and 200, pushed out, are not brought
        // back from the assembler (Linux rebuilds no block from its out-of-order queue).
        assert_eq!(rel(&list, 0), [(400, 650), (300, 350)]);
    }

    /// RFC 2883 §4: the D-SACK block comes first, once; the SACK blocks follow; a second
    /// duplicate that does not touch the first is not reported in the same ACK.
    #[test]
    fn dsack_block_first_then_sack_blocks_and_only_once() {
        let mut sack = SackRecorder::new();
        let mut a = Assembler::new();
        let rcv_nxt = SeqNum(5001);
        a.add(2000, 1000).unwrap(); // 7001..8001
        sack.on_out_of_order(SeqNum(7001), SeqNum(8001));
        sack.on_duplicate(SeqNum(1001), SeqNum(3001));
        sack.on_duplicate(SeqNum(4001), SeqNum(5001)); // not adjacent: ignored
        sack.on_duplicate(SeqNum(3001), SeqNum(3501)); // adjacent: extends
        let list = sack.blocks(&a, rcv_nxt, 3, None);
        assert_eq!(
            list.as_slice(),
            [(SeqNum(1001), SeqNum(3501)), (SeqNum(7001), SeqNum(8001))]
        );
        assert!(sack.has_dsack());
        sack.dsack_sent();
        let list = sack.blocks(&a, rcv_nxt, 3, None);
        assert_eq!(list.as_slice(), [(SeqNum(7001), SeqNum(8001))]);
    }

    /// RFC 2883 §4.1.3: a duplicate of out-of-order data is reported as the D-SACK block and
    /// again as the SACK block that holds it, even when both are the same range.
    #[test]
    fn dsack_of_out_of_order_data_is_followed_by_its_block() {
        let mut sack = SackRecorder::new();
        let mut a = Assembler::new();
        let rcv_nxt = SeqNum(1001);
        a.add(1000, 1000).unwrap(); // 2001..3001
        sack.on_out_of_order(SeqNum(2001), SeqNum(3001));
        sack.on_duplicate(SeqNum(2001), SeqNum(3001));
        let block = (SeqNum(2001), SeqNum(3001));
        assert_eq!(sack.blocks(&a, rcv_nxt, 4, None).as_slice(), [block, block]);
    }

    #[test]
    fn blocks_are_not_widened_to_what_the_assembler_holds() {
        let mut sack = SackRecorder::new();
        let mut a = Assembler::new();
        let rcv_nxt = SeqNum(u32::MAX - 100);
        // Two blocks recorded; a segment bridging them reaches the assembler only (as if the
        // caller had not reported it): the blocks stay as recorded (Linux sends
        // `selective_acks` as they are).
        for (s, l) in [(50u32, 10u32), (80, 10)] {
            a.add(s, l).unwrap();
            sack.on_out_of_order(rcv_nxt + s, rcv_nxt + (s + l));
        }
        a.add(60, 20).unwrap();
        let list = sack.blocks(&a, rcv_nxt, 4, None);
        assert_eq!(
            list.as_slice(),
            [
                (rcv_nxt + 80u32, rcv_nxt + 90u32),
                (rcv_nxt + 50u32, rcv_nxt + 60u32)
            ]
        );
    }

    #[test]
    fn acknowledged_and_dropped_blocks_are_left_out() {
        let mut sack = SackRecorder::new();
        let mut a = Assembler::new();
        let rcv_nxt = SeqNum(10);
        a.add(10, 10).unwrap();
        sack.on_out_of_order(SeqNum(20), SeqNum(30));
        a.add(30, 10).unwrap();
        sack.on_out_of_order(SeqNum(40), SeqNum(50));
        // `blocks` alone skips a block at or below RCV.NXT without being told ...
        a.add(0, 10).unwrap();
        let advance = a.take_front();
        assert_eq!(advance, 20);
        let rcv_nxt = rcv_nxt + advance;
        let list = sack.blocks(&a, rcv_nxt, 4, None);
        assert_eq!(list.as_slice(), [(SeqNum(40), SeqNum(50))]);
        // ... and `on_rcv_nxt` forgets it.
        sack.on_rcv_nxt(rcv_nxt);
        assert_eq!(sack.live(), [(SeqNum(40), SeqNum(50))]);
        // Data the assembler no longer holds (reneged) is not reported.
        a.clear();
        assert!(sack.blocks(&a, rcv_nxt, 4, None).is_empty());
        sack.clear();
        assert_eq!(sack, SackRecorder::new());
    }

    #[test]
    fn empty_or_inverted_ranges_are_ignored() {
        let mut sack = SackRecorder::new();
        sack.on_out_of_order(SeqNum(5), SeqNum(5));
        sack.on_out_of_order(SeqNum(6), SeqNum(5));
        assert_eq!(sack, SackRecorder::new());
        // Across the wrap, a forward range is not inverted.
        sack.on_out_of_order(SeqNum(u32::MAX - 1), SeqNum(3));
        assert_eq!(sack.live(), [(SeqNum(u32::MAX - 1), SeqNum(3))]);
    }

    #[test]
    fn remembered_blocks_fold_together() {
        let mut sack = SackRecorder::new();
        for s in [100u32, 300, 500, 700, 900] {
            sack.on_out_of_order(SeqNum(s), SeqNum(s + 100));
        }
        // Only the four most recent are kept.
        assert_eq!(sack.live().len(), MAX_SACK_BLOCKS);
        assert_eq!(sack.live()[0], (SeqNum(900), SeqNum(1000)));
        assert!(!sack.live().contains(&(SeqNum(100), SeqNum(200))));
        // A segment touching 500 and 700 folds them into one, most recent.
        sack.on_out_of_order(SeqNum(600), SeqNum(700));
        assert_eq!(
            sack.live(),
            [
                (SeqNum(500), SeqNum(800)),
                (SeqNum(900), SeqNum(1000)),
                (SeqNum(300), SeqNum(400)),
            ]
        );
    }

    proptest! {
        /// Whatever the arrival order: the first block holds the segment that triggered the
        /// ACK (unless it advanced RCV.NXT), blocks are distinct parts of the assembler's ranges
        /// beyond RCV.NXT, and as many remembered blocks are reported as fit.
        #[test]
        fn rfc2018_rules_hold(
            isn in any::<u32>(),
            max in 0usize..=4,
            segments in proptest::collection::vec((0u32..3000, 1u32..300), 1..60),
        ) {
            let mut rcv_nxt = SeqNum(isn);
            let mut a = Assembler::new();
            let mut sack = SackRecorder::new();
            let origin = SeqNum(isn);
            for (off, len) in segments {
                let (seq, end) = (origin + off, origin + (off + len));
                if end <= rcv_nxt {
                    continue;
                }
                let start = seq.max(rcv_nxt);
                if a.add(start - rcv_nxt, end - start).is_err() {
                    continue;
                }
                let advance = a.take_front();
                rcv_nxt += advance;
                if advance > 0 {
                    sack.on_rcv_nxt(rcv_nxt);
                } else {
                    sack.on_out_of_order(start, end);
                }
                let list = sack.blocks(&a, rcv_nxt, max, None);
                prop_assert_eq!(list.len(), max.min(sack.len_above(rcv_nxt)));
                if advance == 0 && max > 0 {
                    let (l, r) = list.as_slice()[0];
                    prop_assert!(l <= start && end <= r, "first block {:?} misses {:?}", (l, r), (start, end));
                }
                for (i, &(l, r)) in list.as_slice().iter().enumerate() {
                    prop_assert!(rcv_nxt < l && l < r);
                    prop_assert!(a.iter().any(|(s, e)| rcv_nxt + s <= l && r <= rcv_nxt + e));
                    prop_assert!(!list.as_slice()[..i].contains(&(l, r)));
                }
            }
        }
    }
}
