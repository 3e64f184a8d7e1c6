//! The sender's record of what is in flight: one entry per transmitted segment, marked by what
//! the peer's ACKs and SACK blocks say about it (RFC 6675 §3's "scoreboard", RFC 2018).
//!
//! Entries are sequence ranges into the send buffer, never copies of data (DESIGN rule 6). They
//! are kept in sequence order and cover `[SND.UNA, SND.MAX)` without gaps: a segment is appended
//! when it is first sent, split where an ACK or SACK edge falls inside it, and dropped when the
//! cumulative ACK passes it. Each entry remembers when it was last sent, for RACK (RFC 8985).
//!
//! Three marks, as in Linux's `tcp_skb_cb.sacked`:
//! * **SACKED**: the peer holds it (RFC 2018); it is never sent again.
//! * **LOST**: a loss detector (RACK, the duplicate-ACK threshold, or the retransmission
//!   timeout) decided it did not arrive.
//! * **RETRANS**: it was sent again and that copy is still in flight. A retransmission
//!   judged lost in turn clears this mark again.
//!
//! From these follows the estimate of data in the network, RFC 6675's `pipe` in the form
//! Linux computes it (`tcp_packets_in_flight`): outstanding − sacked − lost + retransmitted.
//! Every count is kept both in segments (Linux's congestion window is in packets) and in
//! bytes, and updated as marks change, so reading `pipe` costs nothing.

use std::collections::VecDeque;

use super::rate::TxState;
use super::seq::SeqNum;
use crate::time::Instant;

/// The peer acknowledged this segment selectively.
pub const SACKED: u8 = 1;
/// A loss detector marked this segment lost.
pub const LOST: u8 = 2;
/// A retransmission of this segment is in flight.
pub const RETRANS: u8 = 4;
/// This segment was retransmitted at least once (its ACK is ambiguous, Karn's problem).
pub const EVER_RETRANS: u8 = 8;
/// The segment was sent with PSH (a resend of its end carries it again, as Linux's does).
pub const PSH: u8 = 16;
/// The segment ended a packet as first sent (a burst of new data: one Linux skb, one TSO
/// packet). A resend after a timeout or a path MTU drop forms its packets within these
/// boundaries, as Linux resends skbs (`tcp_retransmit_skb`).
pub const SKB_END: u8 = 32;

/// One transmitted segment: a sequence range, when it was last sent, its marks, and the
/// delivery state it left with (for rate samples, `tcp::rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub start: SeqNum,
    /// One past the last sequence number (a FIN counts as one).
    pub end: SeqNum,
    /// When this range was last (re)transmitted.
    pub xmit: Instant,
    pub marks: u8,
    /// The connection's delivery state at that (re)transmission.
    pub tx: TxState,
}

impl Sent {
    pub fn len(&self) -> u32 {
        self.end - self.start
    }

    pub fn has(&self, mark: u8) -> bool {
        self.marks & mark != 0
    }
}

/// A segment count and a byte count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub segs: u32,
    pub bytes: u32,
}

impl Tally {
    fn add(&mut self, s: &Sent) {
        self.segs += 1;
        self.bytes += s.len();
    }

    fn sub(&mut self, s: &Sent) {
        self.segs = self.segs.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(s.len());
    }
}

/// What one ACK newly delivered: bytes and segments acknowledged for the first time,
/// cumulatively or selectively (RFC 6937's DeliveredData).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub bytes: u32,
    pub segs: u32,
    /// A cumulative ACK took at least one whole segment off the board, SACKed ones included
    /// (Linux `FLAG_DATA_ACKED`). An ACK inside a segment trims it but delivers nothing.
    pub whole: bool,
}

/// The scoreboard. See the module documentation.
///
/// It takes no memory beyond a pointer until the first segment is recorded: an idle
/// connection, or one that has only received, holds no scoreboard.
#[derive(Debug, Clone, Default)]
pub struct Scoreboard(Option<Box<Board>>);

/// Bytes a scoreboard allocates with its first segment (besides its deque's buffer).
pub const BOARD_BYTES: usize = size_of::<Board>();

/// What the scoreboard holds once something has been sent.
#[derive(Debug, Clone, Default)]
struct Board {
    segs: VecDeque<Sent>,
    out: Tally,
    sacked: Tally,
    lost: Tally,
    retrans: Tally,
    /// One past the highest sequence number SACKed so far (Linux's FACK point); RACK's
    /// reordering test compares newly delivered segments with it.
    high_sacked: Option<SeqNum>,
    /// Entries both LOST and RETRANS: when it equals `lost.segs`, nothing waits to be resent.
    lost_retrans: u32,
}

impl Board {
    /// Forget everything (the connection was reset).
    pub fn clear(&mut self) {
        *self = Board {
            segs: std::mem::take(&mut self.segs),
            ..Board::default()
        };
        self.segs.clear();
    }

    /// RFC 6675's pipe, as Linux's `tcp_packets_in_flight`: outstanding − sacked − lost +
    /// retransmitted, in segments and in bytes.
    #[inline]
    pub fn pipe(&self) -> Tally {
        let segs =
            (self.out.segs + self.retrans.segs).saturating_sub(self.sacked.segs + self.lost.segs);
        let bytes = (self.out.bytes + self.retrans.bytes)
            .saturating_sub(self.sacked.bytes + self.lost.bytes);
        Tally { segs, bytes }
    }

    /// A new segment `[start, end)` went out at `now` for the first time, with delivery
    /// snapshot `tx`. It must start where the last entry ends (at SND.MAX); anything else is
    /// ignored.
    pub fn on_send(&mut self, start: SeqNum, end: SeqNum, now: Instant, psh: bool, tx: TxState) {
        if end <= start {
            return;
        }
        if let Some(last) = self.segs.back()
            && last.end != start
        {
            return;
        }
        let s = Sent {
            start,
            end,
            xmit: now,
            marks: if psh { PSH } else { 0 },
            tx,
        };
        self.out.add(&s);
        self.segs.push_back(s);
    }

    /// Index of the entry containing `seq`, if any (binary search: entries are contiguous).
    fn index_of(&self, seq: SeqNum) -> Option<usize> {
        let first = self.segs.front()?.start;
        if seq < first || seq >= self.segs.back()?.end {
            return None;
        }
        let off = seq - first;
        let i = self.segs.partition_point(|s| s.end - first <= off);
        (i < self.segs.len()).then_some(i)
    }

    /// Split the entry containing `seq` so that an entry starts exactly at `seq`. Returns the
    /// index of that entry, or `segs.len()` if `seq` is at or past the end.
    fn split_at(&mut self, seq: SeqNum) -> usize {
        let Some(i) = self.index_of(seq) else {
            return match self.segs.front() {
                Some(f) if seq <= f.start => 0,
                _ => self.segs.len(),
            };
        };
        let s = self.segs[i];
        if s.start == seq {
            return i;
        }
        // Counts: one entry becomes two with the same marks.
        let head = Sent {
            end: seq,
            marks: s.marks & !(PSH | SKB_END),
            ..s
        };
        let tail = Sent { start: seq, ..s };
        self.segs[i] = head;
        self.segs.insert(i + 1, tail);
        self.out.segs += 1;
        if s.has(SACKED) {
            self.sacked.segs += 1;
        }
        if s.has(LOST) {
            self.lost.segs += 1;
        }
        if s.has(RETRANS) {
            self.retrans.segs += 1;
        }
        if s.has(LOST) && s.has(RETRANS) {
            self.lost_retrans += 1;
        }
        i + 1
    }

    /// Change the marks of entry `i`, keeping every tally in step.
    fn remark(&mut self, i: usize, marks: u8) {
        let s = self.segs[i];
        let was = s.marks;
        for (mark, tally) in [
            (SACKED, &mut self.sacked),
            (LOST, &mut self.lost),
            (RETRANS, &mut self.retrans),
        ] {
            match (was & mark != 0, marks & mark != 0) {
                (false, true) => tally.add(&s),
                (true, false) => tally.sub(&s),
                _ => {}
            }
        }
        let both = LOST | RETRANS;
        match (was & both == both, marks & both == both) {
            (false, true) => self.lost_retrans += 1,
            (true, false) => self.lost_retrans -= 1,
            _ => {}
        }
        self.segs[i].marks = marks;
    }

    fn set(&mut self, i: usize, mark: u8) {
        let m = self.segs[i].marks | mark;
        self.remark(i, m);
    }

    fn unset(&mut self, i: usize, mark: u8) {
        let m = self.segs[i].marks & !mark;
        self.remark(i, m);
    }

    /// `[start, end)` was sent again at `now` (it should be one entry, as planned from
    /// [`Scoreboard::next_retransmit`]; a range across several is handled entry by entry).
    /// The entries get RETRANS and EVER_RETRANS and the new transmission time. Returns how
    /// many entries were marked.
    pub fn on_retransmit(&mut self, start: SeqNum, end: SeqNum, now: Instant, tx: TxState) -> u32 {
        if end <= start {
            return 0;
        }
        let i = self.split_at(start);
        let j = self.split_at(end);
        let mut n = 0;
        for k in i..j {
            if self.segs[k].has(SACKED) {
                continue;
            }
            self.set(k, RETRANS);
            self.segs[k].marks |= EVER_RETRANS;
            self.segs[k].xmit = now;
            self.segs[k].tx = tx;
            n += 1;
        }
        n
    }

    /// The cumulative ACK moved to `ack`: entries below it leave the scoreboard. `f` sees each
    /// entry (or the acknowledged part of one) as it leaves, for RTT and RACK bookkeeping.
    /// Returns what was delivered now (bytes not SACKed before).
    ///
    /// Inlined, with the unmarked case (every ACK of a connection that has seen no loss) and
    /// its caller's `f`; the marked case stays out of line.
    #[inline(always)]
    pub fn on_cum_ack(&mut self, ack: SeqNum, f: impl FnMut(&Sent)) -> Delivered {
        if self.segs.is_empty() {
            return Delivered::default();
        }
        if self.sacked.segs == 0 && self.lost.segs == 0 && self.retrans.segs == 0 {
            return self.on_cum_ack_unmarked(ack, f);
        }
        self.on_cum_ack_marked(ack, f)
    }

    /// [`on_cum_ack`](Self::on_cum_ack) with an entry SACKed, lost or sent again.
    #[inline(never)]
    fn on_cum_ack_marked(&mut self, ack: SeqNum, mut f: impl FnMut(&Sent)) -> Delivered {
        let mut d = Delivered::default();
        // A segment the ACK falls inside is acknowledged in part: as Linux, which acknowledges
        // whole segments only (`tcp_clean_rtx_queue`, `tcp_tso_acked`), its head is trimmed
        // off without counting as delivered (no RTT sample, no congestion window credit, no
        // restarted timer).
        // An ACK of everything outstanding (every ACK of a request/response exchange) falls
        // inside no entry.
        let inside = if self.segs.back().is_some_and(|b| ack >= b.end) {
            None
        } else {
            let n = self.segs.len();
            let i = self.split_at(ack);
            (self.segs.len() > n).then(|| self.segs[i - 1].start)
        };
        while let Some(s) = self.segs.front().copied() {
            if s.end > ack {
                break;
            }
            let partial = inside == Some(s.start);
            if !s.has(SACKED) && !partial {
                d.bytes += s.len();
                d.segs += 1;
                f(&s);
            }
            d.whole |= !partial;
            if s.has(SACKED | LOST | RETRANS) {
                self.remark(0, 0);
            }
            self.segs.pop_front();
            self.out.sub(&s);
        }
        if self.segs.is_empty() {
            self.high_sacked = None;
        }
        d
    }

    /// [`on_cum_ack`](Self::on_cum_ack) when no entry is SACKed, lost or sent again (every ACK
    /// of a connection that has seen no loss): each entry below `ack` is delivered whole and
    /// leaves, and an entry the ACK falls inside is trimmed to start at `ack` in place (the same
    /// outcome as splitting it and removing the undelivered head, without the split).
    #[inline(always)]
    fn on_cum_ack_unmarked(&mut self, ack: SeqNum, mut f: impl FnMut(&Sent)) -> Delivered {
        let mut d = Delivered::default();
        while let Some(s) = self.segs.front_mut() {
            if s.end > ack {
                if s.start < ack {
                    self.out.bytes = self.out.bytes.saturating_sub(ack - s.start);
                    s.start = ack;
                }
                break;
            }
            d.bytes += s.len();
            d.segs += 1;
            d.whole = true;
            f(s);
            self.out.sub(s);
            self.segs.pop_front();
        }
        if self.segs.is_empty() {
            self.high_sacked = None;
        }
        d
    }

    /// A SACK block `[start, end)` (already validated against SND.UNA and SND.MAX): mark what
    /// it covers. `f` sees each newly SACKed entry. Returns what was newly delivered.
    pub fn on_sack(&mut self, start: SeqNum, end: SeqNum, mut f: impl FnMut(&Sent)) -> Delivered {
        let mut d = Delivered::default();
        if end <= start {
            return d;
        }
        let i = self.split_at(start);
        let j = self.split_at(end);
        for k in i..j {
            let s = self.segs[k];
            if s.has(SACKED) {
                continue;
            }
            f(&s);
            self.set(k, SACKED);
            self.unset(k, LOST);
            self.unset(k, RETRANS);
            d.bytes += s.len();
            d.segs += 1;
        }
        if d.segs > 0 && self.high_sacked.is_none_or(|h| end > h) {
            self.high_sacked = Some(end);
        }
        d
    }

    /// Mark the entry at index `i` lost (and its retransmission, if any, no longer in flight).
    /// Returns whether it was newly marked.
    pub fn mark_lost_at(&mut self, i: usize) -> bool {
        let s = self.segs[i];
        if s.has(SACKED) || (s.has(LOST) && !s.has(RETRANS)) {
            return false;
        }
        self.unset(i, RETRANS);
        self.set(i, LOST);
        true
    }

    /// Mark the first entry lost (the duplicate-ACK threshold, or NewReno's partial ACK).
    /// Returns whether it was newly marked.
    pub fn mark_head_lost(&mut self) -> bool {
        !self.segs.is_empty() && self.mark_lost_at(0)
    }

    /// The retransmission timeout: every entry not SACKed is lost, and no retransmission is in
    /// flight any more (Linux `tcp_enter_loss`). Returns how many entries were newly marked.
    pub fn mark_all_lost(&mut self) -> u32 {
        let mut n = 0;
        for i in 0..self.segs.len() {
            let s = self.segs[i];
            if s.has(SACKED) {
                continue;
            }
            self.unset(i, RETRANS);
            if !s.has(LOST) {
                self.set(i, LOST);
                n += 1;
            }
        }
        n
    }

    /// Forget every LOST mark: the timeout that set them was spurious (Linux
    /// `tcp_undo_cwnd_reduction` with `unmark_loss`). Retransmissions in flight stay.
    pub fn clear_lost(&mut self) {
        for i in 0..self.segs.len() {
            self.unset(i, LOST);
        }
    }

    /// Forget every SACK mark: the receiver reneged (RFC 2018 §8).
    pub fn clear_sacks(&mut self) {
        for i in 0..self.segs.len() {
            self.unset(i, SACKED);
        }
        self.high_sacked = None;
    }

    /// The first entry that is lost and not yet sent again, starting no lower than `from`:
    /// what to retransmit next (RFC 6675 §4 NextSeg rule 1, holes first).
    #[inline]
    pub fn next_retransmit(&self, from: SeqNum) -> Option<(usize, Sent)> {
        if self.lost.segs <= self.lost_retrans {
            return None;
        }
        self.find_retransmit(from)
    }

    /// [`next_retransmit`](Self::next_retransmit) once something waits to be resent.
    fn find_retransmit(&self, from: SeqNum) -> Option<(usize, Sent)> {
        let start = match self.index_of(from) {
            Some(i) => i,
            None if self.segs.front().is_some_and(|f| from <= f.start) => 0,
            None => return None,
        };
        self.segs
            .iter()
            .enumerate()
            .skip(start)
            .find(|(_, s)| s.has(LOST) && !s.has(RETRANS) && !s.has(SACKED))
            .map(|(i, s)| (i, *s))
    }

    /// The entry starting at `seq`, if `seq` is an entry boundary.
    #[cfg(test)]
    pub fn get_at(&self, seq: SeqNum) -> Option<&Sent> {
        let i = self.index_of(seq)?;
        let s = &self.segs[i];
        (s.start == seq).then_some(s)
    }

    /// Whether any entry overlapping `[start, end)` carries `mark` (a lookup, then a walk over
    /// the overlapping entries only).
    pub fn any_marked(&self, start: SeqNum, end: SeqNum, mark: u8) -> bool {
        let Some(first) = self.segs.front().map(|f| f.start) else {
            return false;
        };
        let from = self.index_of(start.max(first)).unwrap_or(self.segs.len());
        self.segs
            .iter()
            .skip(from)
            .take_while(|s| s.start < end)
            .any(|s| s.has(mark))
    }

    /// The entry containing `seq`.
    pub fn containing(&self, seq: SeqNum) -> Option<&Sent> {
        self.index_of(seq).map(|i| &self.segs[i])
    }

    /// The packet holding the entry that contains `seq` (entries since the last
    /// [`SKB_END`] before it, up to it): where its first entry starts and how many entries
    /// it has, as Linux's skb and its `tcp_skb_pcount`.
    fn packet_of(&self, seq: SeqNum) -> Option<(SeqNum, u32)> {
        let last = self.index_of(seq)?;
        let first = self
            .segs
            .range(..last)
            .rposition(|s| s.has(SKB_END))
            .map_or(0, |i| i + 1);
        Some((self.segs[first].start, (last - first + 1) as u32))
    }

    /// The path MTU shrank to segments of `mss`: each packet as first sent (entries up to an
    /// [`SKB_END`], not SACKed, with the same marks) that holds an entry longer than `mss` is
    /// cut again into `mss` units from its start, as Linux resends an skb at the new MSS
    /// (`tcp_simple_retransmit`, then `tcp_fragment` to `mss_now`): 2,920 bytes sent as
    /// 1,460 + 1,460 become 1,060 + 1,060 + 800, not 1,060 + 400 twice. Marks are kept; PSH
    /// and the packet end stay with the last piece.
    pub fn resegment(&mut self, mss: u32) {
        if mss == 0 {
            return;
        }
        let same = |a: &Sent, b: &Sent| (a.marks ^ b.marks) & !(PSH | SKB_END) == 0;
        let mut i = 0;
        while i < self.segs.len() {
            let mut j = i;
            while !self.segs[j].has(SKB_END)
                && !self.segs[j].has(SACKED)
                && j + 1 < self.segs.len()
                && same(&self.segs[i], &self.segs[j + 1])
            {
                j += 1;
            }
            if (i..=j).any(|k| self.segs[k].len() > mss) {
                if j > i {
                    self.merge(i, j);
                }
                while self.segs[i].len() > mss {
                    self.split_at(self.segs[i].start + mss);
                    i += 1;
                }
            }
            i = i.max(j) + 1;
        }
    }

    /// Entries `i..=j` (same marks but PSH and SKB_END) become one, which keeps the marks,
    /// the PSH and packet end of the last, and its transmission time and delivery state.
    fn merge(&mut self, i: usize, j: usize) {
        let (first, last) = (self.segs[i], self.segs[j]);
        for k in i..=j {
            self.remark(k, 0);
            let s = self.segs[k];
            self.out.sub(&s);
        }
        let marks = (first.marks & !(PSH | SKB_END)) | (last.marks & (PSH | SKB_END));
        self.segs.drain(i + 1..=j);
        let merged = Sent {
            start: first.start,
            marks: 0,
            ..last
        };
        self.segs[i] = merged;
        self.out.add(&merged);
        self.remark(i, marks);
    }

    /// The packet (as first sent) that `seq` is in, from `seq` on: where it ends and how
    /// many entries it still holds, up to the first SACKed one.
    fn packet_from(&self, seq: SeqNum) -> Option<(SeqNum, u32)> {
        let i = self.index_of(seq)?;
        let mut n = 0;
        let mut end = seq;
        for s in self.segs.range(i..) {
            if s.has(SACKED) {
                break;
            }
            n += 1;
            end = s.end;
            if s.has(SKB_END) {
                break;
            }
        }
        Some((end, n))
    }

    /// The lost segments from `seq` that Linux would resend as one skb: entries LOST, not
    /// yet resent and not SACKed, up to the end of the packet `seq` was first sent in (a SACK
    /// inside a packet splits its skb there, `tcp_match_skb_to_sack`; RACK and the SACK
    /// scoreboard mark whole skbs lost). 0 if the entry at `seq` is not such a one.
    fn lost_run_from(&self, seq: SeqNum) -> u32 {
        let Some(i) = self.index_of(seq) else {
            return 0;
        };
        let mut n = 0;
        for s in self.segs.range(i..) {
            if !s.has(LOST) || s.has(RETRANS) || s.has(SACKED) {
                break;
            }
            n += 1;
            if s.has(SKB_END) {
                break;
            }
        }
        n
    }

    /// Linux's `tcp_retrans_try_collapse`, before entry `start` (a whole packet) is resent:
    /// the whole packets after it join it while together they fit in `space` bytes (one MSS
    /// or what is left of the peer's window) and end by `wnd_end`, have the same marks and
    /// are not SACKed; the last packet sent is never taken (Linux leaves the tail of its
    /// retransmission queue alone). Returns the entry to resend.
    fn collapse(&mut self, start: SeqNum, space: u32, wnd_end: SeqNum) -> Option<Sent> {
        let i = self.index_of(start)?;
        let to = self.segs[i];
        if to.start != start || !to.has(SKB_END) || to.has(SACKED) {
            return Some(to);
        }
        let same = |a: &Sent, b: &Sent| (a.marks ^ b.marks) & !(PSH | SKB_END) == 0;
        let mut room = space.saturating_sub(to.len());
        let mut j = i;
        while j + 2 < self.segs.len() {
            let n = self.segs[j + 1];
            if !n.has(SKB_END) || !same(&to, &n) || n.len() > room || n.end > wnd_end {
                break;
            }
            room -= n.len();
            j += 1;
        }
        if j > i {
            let psh = (i..=j).any(|k| self.segs[k].has(PSH));
            self.merge(i, j);
            if psh {
                self.segs[i].marks |= PSH;
            }
        }
        Some(self.segs[i])
    }

    /// The last entry ended a packet (see [`SKB_END`]).
    fn end_packet(&mut self) {
        if let Some(s) = self.segs.back_mut() {
            s.marks |= SKB_END;
        }
    }

    /// The RACK loss test (RFC 8985 §6.2 step 5): each entry not SACKed that `sent_before`
    /// says was sent before the most recently delivered segment is lost if `deadline(entry) <=
    /// now`; otherwise the earliest such deadline is returned so that a timer can recheck then.
    /// Returns (newly lost entries, earliest pending deadline).
    ///
    /// RACK orders by transmission time, not sequence (Linux walks `tsorted_sent_queue`): when
    /// the most recently sent delivered segment is a retransmission low in the window, every
    /// segment sent before it — new data above it, other retransmissions — is judged. Entries
    /// never retransmitted went out in sequence order, so the walk ends at the first of them
    /// sent after RACK's segment: nothing beyond it can have been sent earlier.
    pub fn detect_lost(
        &mut self,
        now: Instant,
        mut sent_before: impl FnMut(&Sent) -> bool,
        mut deadline: impl FnMut(&Sent) -> Instant,
    ) -> (u32, Option<Instant>) {
        let mut newly = 0;
        let mut next: Option<Instant> = None;
        for i in 0..self.segs.len() {
            let s = self.segs[i];
            let before = sent_before(&s);
            if !before && !s.has(EVER_RETRANS) {
                break;
            }
            if s.has(SACKED) || (s.has(LOST) && !s.has(RETRANS)) || !before {
                continue;
            }
            let at = deadline(&s);
            if at <= now {
                if self.mark_lost_at(i) {
                    newly += 1;
                }
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        (newly, next)
    }
}

/// The memory of a scoreboard that recorded nothing outstanding, with its deque's room, for
/// another connection (see [`Scoreboard::take_if_empty`]). What it held is cleared on adoption.
pub struct SpareBoard(Box<Board>);

impl SpareBoard {
    /// Entries its deque has room for.
    pub fn room(&self) -> usize {
        self.0.segs.capacity()
    }
}

impl Scoreboard {
    pub const fn new() -> Scoreboard {
        Scoreboard(None)
    }

    /// Takes the board out when no segment is outstanding (every one acknowledged), for a
    /// connection that sends nothing more (TIME-WAIT) or is dropped: what the board remembers
    /// beyond its segments (the highest SACKed sequence) goes with it. Another connection may
    /// [`adopt`](Self::adopt) it.
    /// Whether this scoreboard has its memory (allocated on first use).
    #[inline]
    pub fn has_board(&self) -> bool {
        self.0.is_some()
    }

    pub fn take_if_empty(&mut self) -> Option<SpareBoard> {
        if self.0.as_ref().is_some_and(|b| b.segs.is_empty()) {
            self.0.take().map(SpareBoard)
        } else {
            None
        }
    }

    /// Uses a spare board's memory, cleared, if this scoreboard has none yet (an empty board
    /// answers every question as no board does); otherwise hands it back.
    pub fn adopt(&mut self, spare: SpareBoard) -> Result<(), SpareBoard> {
        if self.0.is_some() {
            return Err(spare);
        }
        let mut board = spare.0;
        board.clear();
        self.0 = Some(board);
        Ok(())
    }

    /// Forget everything (the connection was reset).
    pub fn clear(&mut self) {
        if let Some(b) = &mut self.0 {
            b.clear();
        }
    }

    /// Outstanding segments and bytes (`SND.MAX − SND.UNA` as recorded).
    pub fn outstanding(&self) -> Tally {
        self.0.as_ref().map_or_else(Tally::default, |b| b.out)
    }

    pub fn sacked(&self) -> Tally {
        self.0.as_ref().map_or_else(Tally::default, |b| b.sacked)
    }

    pub fn lost(&self) -> Tally {
        self.0.as_ref().map_or_else(Tally::default, |b| b.lost)
    }

    pub fn retrans(&self) -> Tally {
        self.0.as_ref().map_or_else(Tally::default, |b| b.retrans)
    }

    /// RFC 6675's pipe, as Linux's `tcp_packets_in_flight`: outstanding − sacked − lost +
    /// retransmitted, in segments and in bytes. Inlined: every ACK reads it, twice (the
    /// flight before it, and whether the window limited sending).
    #[inline]
    pub fn pipe(&self) -> Tally {
        self.0.as_ref().map_or_else(Tally::default, |b| b.pipe())
    }

    pub fn high_sacked(&self) -> Option<SeqNum> {
        self.0.as_ref().and_then(|b| b.high_sacked)
    }

    /// Whether some segment marked lost has not been sent again (Linux `lost_out >
    /// retrans_out`).
    pub fn lost_unresent(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|b| b.lost.segs > b.lost_retrans)
    }

    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|b| b.segs.is_empty())
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.segs.len())
    }

    /// The entries, in sequence order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &Sent> {
        self.0.iter().flat_map(|b| b.segs.iter())
    }

    /// The first entry, if any.
    pub fn first(&self) -> Option<&Sent> {
        self.0.as_ref()?.segs.front()
    }

    /// Whether a retransmission is outstanding, or the oldest unacknowledged segment was ever
    /// sent again (Linux `tcp_any_retrans_done`).
    pub fn any_retrans_done(&self) -> bool {
        self.retrans().segs > 0 || self.first().is_some_and(|s| s.has(EVER_RETRANS))
    }

    /// A new segment `[start, end)` went out at `now` for the first time. It must start where
    /// the last entry ends (at SND.MAX); anything else is ignored.
    pub fn on_send(&mut self, start: SeqNum, end: SeqNum, now: Instant, psh: bool, tx: TxState) {
        if end > start {
            self.0
                .get_or_insert_with(Box::default)
                .on_send(start, end, now, psh, tx);
        }
    }

    /// `[start, end)` was sent again at `now` (it should be one entry, as planned from
    /// [`Scoreboard::next_retransmit`]; a range across several is handled entry by entry).
    /// The entries get RETRANS and EVER_RETRANS and the new transmission time. Returns how
    /// many entries were marked.
    pub fn on_retransmit(&mut self, start: SeqNum, end: SeqNum, now: Instant, tx: TxState) -> u32 {
        self.0
            .as_mut()
            .map_or(0, |b| b.on_retransmit(start, end, now, tx))
    }

    /// The cumulative ACK moved to `ack`: entries below it leave the scoreboard. `f` sees each
    /// entry (or the acknowledged part of one) as it leaves, for RTT and RACK bookkeeping.
    /// Returns what was delivered now (bytes not SACKed before).
    pub fn on_cum_ack(&mut self, ack: SeqNum, f: impl FnMut(&Sent)) -> Delivered {
        self.0
            .as_mut()
            .map_or_else(Delivered::default, |b| b.on_cum_ack(ack, f))
    }

    /// A SACK block `[start, end)` (already validated against SND.UNA and SND.MAX): mark what
    /// it covers. `f` sees each newly SACKed entry. Returns what was newly delivered.
    pub fn on_sack(&mut self, start: SeqNum, end: SeqNum, f: impl FnMut(&Sent)) -> Delivered {
        self.0
            .as_mut()
            .map_or_else(Delivered::default, |b| b.on_sack(start, end, f))
    }

    /// Mark the first entry lost (the duplicate-ACK threshold, or NewReno's partial ACK).
    /// Returns whether it was newly marked.
    pub fn mark_head_lost(&mut self) -> bool {
        self.0.as_mut().is_some_and(|b| b.mark_head_lost())
    }

    /// The retransmission timeout: every entry not SACKed is lost, and no retransmission is in
    /// flight any more (Linux `tcp_enter_loss`). Returns how many entries were newly marked.
    pub fn mark_all_lost(&mut self) -> u32 {
        self.0.as_mut().map_or(0, |b| b.mark_all_lost())
    }

    /// Forget every LOST mark: the timeout that set them was spurious.
    pub fn clear_lost(&mut self) {
        if let Some(b) = &mut self.0 {
            b.clear_lost();
        }
    }

    /// Forget every SACK mark: the receiver reneged (RFC 2018 §8).
    pub fn clear_sacks(&mut self) {
        if let Some(b) = &mut self.0 {
            b.clear_sacks();
        }
    }

    /// The first entry that is lost and not yet sent again, starting no lower than `from`:
    /// what to retransmit next (RFC 6675 §4 NextSeg rule 1, holes first).
    #[inline]
    pub fn next_retransmit(&self, from: SeqNum) -> Option<(usize, Sent)> {
        self.0.as_ref()?.next_retransmit(from)
    }

    /// The entry starting at `seq`, if `seq` is an entry boundary.
    #[cfg(test)]
    pub fn get_at(&self, seq: SeqNum) -> Option<&Sent> {
        self.0.as_ref()?.get_at(seq)
    }

    /// Whether any entry overlapping `[start, end)` carries `mark` (a lookup, then a walk over
    /// the overlapping entries only).
    pub fn any_marked(&self, start: SeqNum, end: SeqNum, mark: u8) -> bool {
        self.0
            .as_ref()
            .is_some_and(|b| b.any_marked(start, end, mark))
    }

    /// The entry containing `seq`.
    pub fn containing(&self, seq: SeqNum) -> Option<&Sent> {
        self.0.as_ref()?.containing(seq)
    }

    /// The path MTU shrank: packets holding entries longer than `mss` are cut again into
    /// `mss` units (see `Board::resegment`).
    pub fn resegment(&mut self, mss: u32) {
        if let Some(b) = &mut self.0 {
            b.resegment(mss);
        }
    }

    /// The packet (as first sent) that `seq` is in, from `seq` on: where it ends and how
    /// many entries it still holds, up to the first SACKed one.
    pub fn packet_from(&self, seq: SeqNum) -> Option<(SeqNum, u32)> {
        self.0.as_ref()?.packet_from(seq)
    }

    /// The lost, not yet resent segments from `seq` to the end of its packet, up to the
    /// first SACKed one (see `Board::lost_run_from`): one skb of Linux's.
    pub fn lost_run_from(&self, seq: SeqNum) -> u32 {
        self.0.as_ref().map_or(0, |b| b.lost_run_from(seq))
    }

    /// Before the packet at `start` is resent, the small packets after it join it up to
    /// `space` bytes (see `Board::collapse`). Returns the entry to resend.
    pub fn collapse(&mut self, start: SeqNum, space: u32, wnd_end: SeqNum) -> Option<Sent> {
        self.0.as_mut()?.collapse(start, space, wnd_end)
    }

    /// The packet holding the entry that contains `seq`: its first entry's start and its
    /// entry count (see `Board::packet_of`).
    pub fn packet_of(&self, seq: SeqNum) -> Option<(SeqNum, u32)> {
        self.0.as_ref()?.packet_of(seq)
    }

    /// The last entry ended a packet (see [`SKB_END`]).
    pub fn end_packet(&mut self) {
        if let Some(b) = &mut self.0 {
            b.end_packet();
        }
    }

    /// The RACK loss test (RFC 8985 §6.2 step 5): each entry not SACKed that `sent_before`
    /// says was sent before the most recently delivered segment is lost if `deadline(entry) <=
    /// now`; otherwise the earliest such deadline is returned so that a timer can recheck then.
    /// Returns (newly lost entries, earliest pending deadline).
    ///
    /// RACK orders by transmission time, not sequence (Linux walks `tsorted_sent_queue`): when
    /// the most recently sent delivered segment is a retransmission low in the window, every
    /// segment sent before it — new data above it, other retransmissions — is judged. Entries
    /// never retransmitted went out in sequence order, so the walk ends at the first of them
    /// sent after RACK's segment: nothing beyond it can have been sent earlier.
    pub fn detect_lost(
        &mut self,
        now: Instant,
        sent_before: impl FnMut(&Sent) -> bool,
        deadline: impl FnMut(&Sent) -> Instant,
    ) -> (u32, Option<Instant>) {
        self.0
            .as_mut()
            .map_or((0, None), |b| b.detect_lost(now, sent_before, deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn board(n: u32, mss: u32, base: u32) -> Scoreboard {
        let mut b = Scoreboard::new();
        for k in 0..n {
            let s = SeqNum(base.wrapping_add(k * mss));
            b.on_send(s, s + mss, t(k as u64), false, TxState::NONE);
        }
        b
    }

    fn check_invariants(b: &Scoreboard) {
        let mut sum = [Tally::default(); 4];
        let mut prev: Option<SeqNum> = None;
        for s in b.iter() {
            assert!(s.end > s.start);
            if let Some(p) = prev {
                assert_eq!(p, s.start, "contiguous");
            }
            prev = Some(s.end);
            sum[0].add(s);
            if s.has(SACKED) {
                sum[1].add(s);
                assert!(!s.has(LOST) && !s.has(RETRANS));
            }
            if s.has(LOST) {
                sum[2].add(s);
            }
            if s.has(RETRANS) {
                sum[3].add(s);
            }
        }
        assert_eq!(sum, [b.outstanding(), b.sacked(), b.lost(), b.retrans()]);
        let lr = b.iter().filter(|s| s.has(LOST) && s.has(RETRANS)).count() as u32;
        assert_eq!(lr, b.0.as_ref().map_or(0, |b| b.lost_retrans));
    }

    #[test]
    fn an_ack_inside_a_segment_trims_it_but_delivers_nothing() {
        for base in [0u32, u32::MAX - 1500] {
            let mut b = board(2, 1000, base);
            let s0 = SeqNum(base);
            let mut seen = 0;
            // Half of the first segment: trimmed, not delivered (Linux acknowledges whole
            // segments only).
            let d = b.on_cum_ack(s0 + 500u32, |_| seen += 1);
            assert_eq!((d.bytes, d.segs, d.whole, seen), (0, 0, false, 0));
            assert_eq!(
                b.first().map(|s| (s.start, s.end)),
                Some((s0 + 500u32, s0 + 1000u32))
            );
            assert_eq!(
                b.outstanding(),
                Tally {
                    segs: 2,
                    bytes: 1500
                }
            );
            check_invariants(&b);
            // Into the second: the rest of the first is delivered whole, the second trimmed.
            let d = b.on_cum_ack(s0 + 1200u32, |_| seen += 1);
            assert_eq!((d.bytes, d.segs, d.whole, seen), (500, 1, true, 1));
            assert_eq!(
                b.outstanding(),
                Tally {
                    segs: 1,
                    bytes: 800
                }
            );
            check_invariants(&b);
        }
    }

    #[test]
    fn pipe_counts_follow_marks() {
        for base in [0u32, u32::MAX - 2500] {
            let mut b = board(10, 1000, base);
            assert_eq!(
                b.pipe(),
                Tally {
                    segs: 10,
                    bytes: 10_000
                }
            );
            let s0 = SeqNum(base);
            // SACK segments 2..4 (RFC 6675 pipe drops by what the peer holds).
            let d = b.on_sack(s0 + 2000u32, s0 + 4000u32, |_| {});
            assert_eq!(
                d,
                Delivered {
                    bytes: 2000,
                    segs: 2,
                    whole: false
                }
            );
            assert_eq!(
                b.pipe(),
                Tally {
                    segs: 8,
                    bytes: 8000
                }
            );
            assert!(b.mark_head_lost());
            assert!(!b.mark_head_lost(), "marked once");
            assert_eq!(b.pipe().segs, 7);
            let (i, next) = b.next_retransmit(s0).unwrap();
            assert_eq!((i, next.start), (0, s0));
            assert_eq!(
                b.on_retransmit(next.start, next.end, t(50), TxState::NONE),
                1
            );
            assert_eq!(b.pipe().segs, 8, "the retransmission is in flight");
            assert_eq!(b.next_retransmit(s0), None);
            // Cumulative ACK of the first three: one new segment delivered (the SACKed one
            // had been counted already).
            let mut seen = vec![];
            let d = b.on_cum_ack(s0 + 3000u32, |s| seen.push(s.start - s0));
            assert_eq!(
                d,
                Delivered {
                    bytes: 2000,
                    segs: 2,
                    whole: true
                }
            );
            assert_eq!(seen, vec![0, 1000]);
            assert_eq!(
                b.outstanding(),
                Tally {
                    segs: 7,
                    bytes: 7000
                }
            );
            assert_eq!(
                b.sacked(),
                Tally {
                    segs: 1,
                    bytes: 1000
                }
            );
            assert_eq!(b.lost(), Tally::default());
            assert_eq!(b.retrans(), Tally::default());
            check_invariants(&b);
        }
    }

    #[test]
    fn edges_inside_entries_split_them() {
        let mut b = board(3, 1000, 100);
        let d = b.on_sack(SeqNum(600), SeqNum(1600), |_| {});
        assert_eq!(
            d,
            Delivered {
                bytes: 1000,
                segs: 2,
                whole: false
            }
        );
        assert_eq!(b.len(), 5);
        assert_eq!(b.get_at(SeqNum(600)).unwrap().end, SeqNum(1100));
        assert!(b.get_at(SeqNum(1100)).unwrap().has(SACKED));
        assert!(!b.get_at(SeqNum(1600)).unwrap().has(SACKED));
        assert_eq!(b.high_sacked(), Some(SeqNum(1600)));
        // A partial cumulative ACK trims the head.
        b.on_cum_ack(SeqNum(350), |_| {});
        assert_eq!(b.first().unwrap().start, SeqNum(350));
        check_invariants(&b);
    }

    #[test]
    fn timeout_marks_everything_not_sacked() {
        let mut b = board(5, 100, 0);
        b.on_sack(SeqNum(300), SeqNum(400), |_| {});
        b.mark_head_lost();
        b.on_retransmit(SeqNum(0), SeqNum(100), t(9), TxState::NONE);
        assert_eq!(b.mark_all_lost(), 3);
        assert_eq!(b.pipe(), Tally::default(), "nothing is believed in flight");
        let order: Vec<u32> = std::iter::from_fn({
            let mut b = b.clone();
            move || {
                let (_, s) = b.next_retransmit(SeqNum(0))?;
                b.on_retransmit(s.start, s.end, t(10), TxState::NONE);
                Some(s.start.0)
            }
        })
        .collect();
        assert_eq!(
            order,
            vec![0, 100, 200, 400],
            "holes in order, SACKed skipped"
        );
        check_invariants(&b);
        // The timeout was spurious: after the head went again, every unSACKed entry is
        // in flight, the head twice (original and retransmission), as Linux counts it.
        b.on_retransmit(SeqNum(0), SeqNum(100), t(10), TxState::NONE);
        b.clear_lost();
        assert_eq!(b.lost(), Tally::default());
        assert_eq!(b.pipe().segs, 5);
        assert_eq!(b.next_retransmit(SeqNum(0)), None);
        check_invariants(&b);
    }

    #[test]
    fn rack_detection_marks_only_expired_entries_sent_before() {
        let mut b = board(4, 100, 0);
        // Segment 3 (sent at t=3) is SACKed; RACK says entries sent before t=3 expire at
        // xmit + 10 ms.
        b.on_sack(SeqNum(300), SeqNum(400), |_| {});
        let (n, next) = b.detect_lost(
            t(11),
            |s| s.xmit < t(3),
            |s| s.xmit + core::time::Duration::from_millis(10),
        );
        assert_eq!(n, 2, "entries sent at 0 and 1 ms have expired");
        assert_eq!(next, Some(t(12)));
        assert_eq!(b.lost().segs, 2);
        check_invariants(&b);
    }

    /// The most recently sent delivered segment is a retransmission at the bottom of the
    /// window: the new data sent before it (above it in sequence) is judged too, as Linux's
    /// time-sorted walk does, and the walk stops at new data sent after it.
    #[test]
    fn rack_detection_follows_send_time_not_sequence() {
        let mut b = board(5, 100, 0);
        // Entry 0 is resent at t=10; entries 1..=3 (sent at 1..3 ms) are outstanding, entry 4
        // (sent at 4 ms) was SACKed. The resend is delivered: RACK's segment is [0, 100)
        // sent at 10 ms.
        b.mark_head_lost();
        b.on_retransmit(SeqNum(0), SeqNum(100), t(10), TxState::NONE);
        b.on_sack(SeqNum(400), SeqNum(500), |_| {});
        let (n, next) = b.detect_lost(
            t(12),
            |s| s.xmit < t(10),
            |s| s.xmit + core::time::Duration::from_millis(10),
        );
        assert_eq!(
            n, 2,
            "entries sent at 1 and 2 ms have expired though above RACK's end"
        );
        assert_eq!(next, Some(t(13)));
        check_invariants(&b);
        // New data sent after RACK's segment ends the walk.
        let mut b = board(3, 100, 0);
        let (n, next) = b.detect_lost(t(100), |s| s.xmit < t(1), |_| t(0));
        assert_eq!((n, next), (1, None), "only the entry sent at 0 ms");
    }

    #[test]
    fn any_marked_looks_only_at_overlapping_entries() {
        let mut b = board(4, 100, 0);
        b.on_retransmit(SeqNum(200), SeqNum(300), t(9), TxState::NONE);
        assert!(b.any_marked(SeqNum(250), SeqNum(260), EVER_RETRANS));
        assert!(b.any_marked(SeqNum(150), SeqNum(201), EVER_RETRANS));
        assert!(!b.any_marked(SeqNum(0), SeqNum(200), EVER_RETRANS));
        assert!(!b.any_marked(SeqNum(300), SeqNum(400), EVER_RETRANS));
        assert!(!Scoreboard::new().any_marked(SeqNum(0), SeqNum(9), EVER_RETRANS));
    }

    /// One skb of Linux's: lost entries of a packet as first sent, cut where a SACK or a
    /// resend or the packet's end is.
    #[test]
    fn lost_run_stops_at_sacks_resends_and_the_packet_end() {
        let mut b = Scoreboard::new();
        for k in 0..4u32 {
            b.on_send(
                SeqNum(k * 100),
                SeqNum(k * 100 + 100),
                t(0),
                false,
                TxState::NONE,
            );
        }
        b.end_packet();
        b.on_send(SeqNum(400), SeqNum(500), t(0), false, TxState::NONE);
        b.end_packet();
        assert_eq!(b.lost_run_from(SeqNum(0)), 0, "nothing is lost yet");
        b.mark_all_lost();
        assert_eq!(b.lost_run_from(SeqNum(0)), 4, "the whole first packet");
        b.on_sack(SeqNum(200), SeqNum(300), |_| {});
        assert_eq!(b.lost_run_from(SeqNum(0)), 2, "up to the SACKed entry");
        assert_eq!(b.lost_run_from(SeqNum(300)), 1, "not into the next packet");
        b.on_retransmit(SeqNum(0), SeqNum(100), t(1), TxState::NONE);
        assert_eq!(b.lost_run_from(SeqNum(0)), 0, "already resent");
        assert_eq!(b.lost_run_from(SeqNum(100)), 1);
        assert_eq!(b.lost_run_from(SeqNum(500)), 0, "beyond the board");
        check_invariants(&b);
    }

    #[test]
    fn resegment_recuts_a_packet_from_its_start() {
        // rtx-size-after-pmtu-drop: one packet of 1,460 + 1,460, then MSS 1,060.
        let mut b = Scoreboard::new();
        b.on_send(SeqNum(1), SeqNum(1461), t(0), false, TxState::NONE);
        b.on_send(SeqNum(1461), SeqNum(2921), t(0), true, TxState::NONE);
        b.end_packet();
        b.mark_all_lost();
        b.resegment(1060);
        let cut: Vec<_> = b.iter().map(|s| (s.start.0, s.end.0, s.marks)).collect();
        assert_eq!(
            cut,
            vec![
                (1, 1061, LOST),
                (1061, 2121, LOST),
                (2121, 2921, LOST | PSH | SKB_END)
            ]
        );
        assert_eq!((b.lost().segs, b.lost().bytes), (3, 2920));
        assert_eq!(b.packet_from(SeqNum(1061)), Some((SeqNum(2921), 2)));
        check_invariants(&b);
    }

    #[test]
    fn collapse_joins_small_packets_but_not_the_last() {
        let mut b = Scoreboard::new();
        for k in 0..4u32 {
            let s = SeqNum(1 + 200 * k);
            b.on_send(s, s + 200u32, t(k as u64), true, TxState::NONE);
            b.end_packet();
        }
        b.mark_all_lost();
        let e = b.collapse(SeqNum(1), 1000, SeqNum(100_000)).unwrap();
        assert_eq!(
            (e.start, e.end, e.marks),
            (SeqNum(1), SeqNum(601), LOST | PSH | SKB_END)
        );
        assert_eq!(b.len(), 2);
        assert_eq!((b.lost().segs, b.lost().bytes), (2, 800));
        check_invariants(&b);
        // The last packet is alone; a packet ending beyond the window does not join.
        let e = b.collapse(SeqNum(601), 1000, SeqNum(100_000)).unwrap();
        assert_eq!(e.end, SeqNum(801));
        let mut b = Scoreboard::new();
        for k in 0..3u32 {
            let s = SeqNum(1 + 200 * k);
            b.on_send(s, s + 200u32, t(k as u64), false, TxState::NONE);
            b.end_packet();
        }
        let e = b.collapse(SeqNum(1), 1000, SeqNum(300)).unwrap();
        assert_eq!(e.end, SeqNum(201));
    }

    #[test]
    fn resegment_after_mss_shrinks() {
        let mut b = board(2, 1000, 0);
        b.mark_head_lost();
        b.resegment(400);
        assert_eq!(b.len(), 6);
        assert_eq!(b.lost().segs, 3);
        assert_eq!(b.lost().bytes, 1000);
        check_invariants(&b);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Send(u16),
            Sack(u16, u16),
            Ack(u16),
            Lose,
            LoseAll,
            Rtx,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (1u16..2000).prop_map(Op::Send),
                (0u16..20_000, 1u16..5000).prop_map(|(a, l)| Op::Sack(a, l)),
                (0u16..20_000).prop_map(Op::Ack),
                Just(Op::Lose),
                Just(Op::LoseAll),
                Just(Op::Rtx),
            ]
        }

        proptest! {
            /// `on_cum_ack`'s two cases agree wherever the unmarked one is taken: on a board
            /// with nothing SACKed, lost or sent again (entries may carry EVER_RETRANS, PSH and
            /// SKB_END), each cumulative ACK, partial ones included, delivers the same, shows
            /// `f` the same entries and leaves the same board, marks included.
            #[test]
            fn unmarked_cum_ack_is_the_general_case(
                base in any::<u32>(),
                sends in proptest::collection::vec((1u16..3000, any::<bool>(), 0u8..4), 1..24),
                acks in proptest::collection::vec(0u16..6000, 1..12),
            ) {
                let mut b = Scoreboard::new();
                let mut max = SeqNum(base);
                for (k, (n, psh, m)) in sends.into_iter().enumerate() {
                    b.on_send(max, max + n as u32, t(k as u64), psh, TxState::NONE);
                    let board = b.0.as_mut().unwrap();
                    let last = board.segs.len() - 1;
                    // Some entries once sent again (their resend since acknowledged) or
                    // ending a packet.
                    let marks = [0, EVER_RETRANS, SKB_END, EVER_RETRANS | SKB_END];
                    board.segs[last].marks |= marks[m as usize];
                    max += n as u32;
                }
                let mut una = SeqNum(base);
                for a in acks {
                    let ack = (una + a as u32).min(max);
                    let Some(board) = b.0.as_mut() else { break };
                    let unmarked = board.sacked.segs == 0 && board.lost.segs == 0;
                    prop_assert!(unmarked && board.retrans.segs == 0);
                    let mut general = board.clone();
                    let (mut seen_fast, mut seen_general) = (Vec::new(), Vec::new());
                    let d_fast = board.on_cum_ack_unmarked(ack, |s| seen_fast.push(*s));
                    let d_general = general.on_cum_ack_marked(ack, |s| seen_general.push(*s));
                    prop_assert_eq!(d_fast, d_general);
                    prop_assert_eq!(seen_fast, seen_general);
                    prop_assert_eq!(format!("{board:?}"), format!("{general:?}"));
                    check_invariants(&b);
                    una = ack;
                }
            }

            #[test]
            fn counts_always_match_entries(base in any::<u32>(), ops in proptest::collection::vec(op(), 1..80)) {
                let mut b = Scoreboard::new();
                let mut una = SeqNum(base);
                let mut max = SeqNum(base);
                for (k, o) in ops.into_iter().enumerate() {
                    let now = t(k as u64);
                    match o {
                        Op::Send(n) => { b.on_send(max, max + n as u32, now, n % 2 == 0, TxState::NONE); max += n as u32; }
                        Op::Sack(a, l) => {
                            let s = (una + a as u32).min(max);
                            let e = (s + l as u32).min(max);
                            b.on_sack(s, e, |_| {});
                        }
                        Op::Ack(a) => {
                            let a = (una + a as u32).min(max);
                            b.on_cum_ack(a, |_| {});
                            una = a;
                        }
                        Op::Lose => { b.mark_head_lost(); }
                        Op::LoseAll => { b.mark_all_lost(); }
                        Op::Rtx => {
                            if let Some((_, s)) = b.next_retransmit(una) {
                                b.on_retransmit(s.start, s.end, now, TxState::NONE);
                            }
                        }
                    }
                    check_invariants(&b);
                    prop_assert_eq!(b.outstanding().bytes, max - una);
                    prop_assert!(b.pipe().bytes <= b.outstanding().bytes);
                }
            }
        }
    }
}
