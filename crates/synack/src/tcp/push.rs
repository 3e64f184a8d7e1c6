//! Where PSH goes: the boundaries a sender draws in its unsent data as the application writes.
//!
//! RFC 9293 §3.9.1 leaves PSH to the implementation ("the data … should be transmitted
//! promptly"); RFC 1122 §4.2.2.2 lets a sender set it at the end of each write. Linux, the
//! reference for what goes on the wire, decides it while it copies a write into its socket
//! buffers (`tcp_sendmsg`), not when it sends, and this module reproduces that bookkeeping
//! so that our segments carry PSH exactly where Linux's do:
//!
//! * Unsent data is cut into buffers of at most `size_goal` bytes: the MSS times as many
//!   segments as fit in half the largest window the peer offered, at most 64 KiB less
//!   headers (`tcp_xmit_size_goal`, `tcp_bound_to_half_wnd`). A write appends to the
//!   newest buffer while that one is unsent, not full and not the end of a MSG_EOR record.
//! * A write that starts by appending to a buffer takes away that buffer's PSH: the data no
//!   longer ends there.
//! * When a write fills a buffer and more than half the peer's largest window has been
//!   written since the last PSH, that buffer gets PSH (`forced_push`).
//! * At the end of a write, the last buffer gets PSH unless the write said MSG_MORE (and no
//!   push is forced). A write that stops because the send buffer is full pushes what it
//!   copied the same way, and its continuation keeps appending (the flag moves to the end
//!   of the buffer as it grows).
//! * A segment carries PSH when a buffer marked with it ends inside it or at its end, and
//!   never extends past the end of a MSG_EOR record. Sending part of a buffer leaves the
//!   flag on the rest, as Linux's `tso_fragment` does.
//! * Besides, Linux puts PSH on every packet of more than one segment it hands to the
//!   device; the connection models those bursts (`burst_quota`).
//!
//! * Linux 6.10+ grows the buffer at the head of the queue, before it sends it, with data
//!   from the buffer after it (`tcp_grow_skb`): the PSH of the grown buffer moves to its new
//!   end, so a PSH that a long write put where the peer's window then stopped the data does
//!   not survive (`PushMarks::grow`). Buffers sent as the write filled them never grow.
//!
//! The ends of full buffers are stored (a buffer grows only from the next one), and those of
//! buffers with PSH or a record end, plus the start of the newest buffer. A write that stays
//! within one buffer, as request/response traffic does, stores one.

use std::collections::VecDeque;

use super::seq::SeqNum;

/// Linux's `sk_gso_max_size` for a device with the default 64 KiB GSO limit:
/// `GSO_LEGACY_MAX_SIZE` less `MAX_TCP_HEADER + 1` (320 + 1 on x86-64).
pub(crate) const GSO_MAX_SIZE: u32 = 65_536 - 321;
/// RFC 9293 §3.7.1 default MSS, below which Linux bounds a buffer by the whole window.
const MSS_DEFAULT: u32 = 536;

/// The end of a buffer that matters to segmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Sequence number just past the buffer's last byte.
    pub end: SeqNum,
    /// The segment that ends here carries PSH.
    pub psh: bool,
    /// A MSG_EOR record ends here: nothing is appended to this buffer.
    pub eor: bool,
}

/// One write, as [`PushMarks::on_write`] needs to see it.
#[derive(Debug, Clone, Copy)]
pub struct Write {
    /// Sequence number where the write's data begins (the end of what was queued before).
    pub seq: SeqNum,
    /// Bytes copied into the send buffer.
    pub copied: u32,
    /// Bytes the application asked to write; more than `copied` when the buffer filled.
    pub requested: u32,
    /// End of the data sent so far (SND.MAX): buffers below it are gone from the queue.
    pub sent_end: SeqNum,
    /// How far the windows (the peer's and the congestion window) let data go out now:
    /// buffers that end there or before leave as the write fills them.
    pub sendable_end: SeqNum,
    /// Buffer size limit from [`size_goal`]. For a write `PushMarks::on_new_buffer_write`
    /// takes (one new buffer, at most one MSS), any goal of at least `copied` does.
    pub size_goal: u32,
    /// Largest window the peer has offered (Linux `max_window`).
    pub max_window: u32,
    /// MSG_MORE: more data follows soon, so no PSH at the end unless one is forced.
    pub more: bool,
    /// MSG_EOR: the write ends a record.
    pub eor: bool,
}

/// The PSH and record boundaries of the unsent data, in sequence order.
#[derive(Debug, Clone)]
pub struct PushMarks {
    /// The boundaries (they live in the sender's `Transmit`, allocated with the first write).
    marks: Marks,
    /// Where the newest buffer starts (it may have been partly sent since).
    tail_start: SeqNum,
    /// The write sequence number at the last PSH (Linux `pushed_seq`).
    pushed_seq: SeqNum,
    /// The last write stopped at a full send buffer: the next one continues it.
    continuing: bool,
    /// The end of the buffers that went out (or would have) as writes filled them: they
    /// never grow (`grow`).
    frozen: SeqNum,
    /// How many of the marks end a MSG_EOR record: with none (every writer that does not
    /// use MSG_EOR), `record_end_after` answers without walking the marks, which a sender
    /// with many small writes queued would otherwise do for every segment.
    records: u32,
}

/// The buffer a write at `seq` would append to: its length so far (0 when the write starts a
/// new buffer: the data before it went out, or ended a record, or there is none) and its mark,
/// if it has one ending at `seq`.
fn open_tail(
    marks: &Marks,
    tail_start: SeqNum,
    seq: SeqNum,
    sent_end: SeqNum,
) -> (u32, Option<Mark>) {
    let start = tail_start.max(sent_end);
    let last = marks.back().copied().filter(|m| m.end == seq);
    let open = seq > sent_end && !last.is_some_and(|m| m.eor);
    (if open { seq - start } else { 0 }, last)
}

/// The marks in sequence order: the oldest inline, the others in a queue allocated only when
/// more than one is outstanding (a request/response connection has one at a time, so its
/// writes allocate nothing here).
#[derive(Debug, Clone, Default)]
struct Marks {
    first: Option<Mark>,
    /// Empty while `first` is `None`.
    rest: VecDeque<Mark>,
}

impl Marks {
    fn back(&self) -> Option<&Mark> {
        self.rest.back().or(self.first.as_ref())
    }

    fn pop_back(&mut self) -> Option<Mark> {
        self.rest.pop_back().or_else(|| self.first.take())
    }

    fn push_back(&mut self, m: Mark) {
        if self.first.is_none() {
            self.first = Some(m);
        } else {
            self.rest.push_back(m);
        }
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Mark> {
        match i {
            0 => self.first.as_mut(),
            _ => self.rest.get_mut(i - 1),
        }
    }

    fn remove(&mut self, i: usize) -> Option<Mark> {
        match i {
            0 => self.pop_front(),
            _ => self.rest.remove(i - 1),
        }
    }

    fn pop_front(&mut self) -> Option<Mark> {
        let f = self.first.take();
        self.first = self.rest.pop_front();
        f
    }
}

#[cfg(test)]
std::thread_local! {
    static PUSH_SHORTCUT: core::cell::Cell<bool> = const { core::cell::Cell::new(true) };
}

/// Whether [`PushMarks::on_write`] and `Connection::write` take the one-buffer shortcut
/// ([`PushMarks::on_new_buffer_write`]; always, outside tests).
#[inline(always)]
pub(crate) fn push_shortcut_on() -> bool {
    #[cfg(test)]
    return PUSH_SHORTCUT.with(|c| c.get());
    #[cfg(not(test))]
    true
}

/// Largest buffer a write builds: whole segments up to half the peer's largest window and
/// the GSO limit, at least one segment (Linux `tcp_xmit_size_goal`). `header_len` is the
/// TCP header with the options every segment carries.
pub fn size_goal(mss: u32, max_window: u32, header_len: u32) -> u32 {
    let mss = mss.max(1);
    let cutoff = if max_window > MSS_DEFAULT {
        max_window / 2
    } else {
        max_window
    };
    let goal = if cutoff > 0 && GSO_MAX_SIZE > cutoff {
        cutoff.max(68u32.saturating_sub(header_len))
    } else {
        GSO_MAX_SIZE
    };
    (goal / mss * mss).max(mss)
}

impl PushMarks {
    /// No data yet; the first byte will have sequence number `seq` (ISS + 1).
    pub fn new(seq: SeqNum) -> Self {
        PushMarks {
            marks: Marks::default(),
            tail_start: seq,
            pushed_seq: seq,
            continuing: false,
            frozen: seq,
            records: 0,
        }
    }

    /// Room of the queue of marks beyond the first (its heap allocation), in marks.
    #[cfg(test)]
    pub(crate) fn heap_room(&self) -> usize {
        self.marks.rest.capacity()
    }

    /// Whether [`on_write`](Self::on_write) of `copied` bytes at `seq` (with SND.MAX
    /// `sent_end`) depends on its size goal beyond `floor`, a lower bound of the goal: only
    /// when the write appends to a buffer still open, or copies more than `floor`. Otherwise
    /// the write is one new buffer, the same with any goal of at least `floor`, and the caller
    /// can spare computing the goal.
    pub fn goal_matters(&self, seq: SeqNum, sent_end: SeqNum, copied: u32, floor: u32) -> bool {
        copied > floor || open_tail(&self.marks, self.tail_start, seq, sent_end).0 > 0
    }

    /// Records a write of `w.copied` bytes starting at `w.seq`.
    pub fn on_write(&mut self, w: Write) {
        if w.copied == 0 {
            return;
        }
        let goal = w.size_goal.max(1);
        if w.seq <= w.sent_end && w.copied <= goal && push_shortcut_on() {
            // Nothing unsent and a write that fits one buffer (every request/response
            // write): the loop's one turn, a new buffer that the write fills to its end.
            return self.on_new_buffer_write(w);
        }
        let marks = &mut self.marks;
        let half = w.max_window / 2;
        let mut seq = w.seq;
        let mut copied = 0u32;
        // The PSH flag of the buffer being filled, carried to its end as it grows.
        let mut carry = false;
        while copied < w.copied {
            let (tail_len, last) = open_tail(marks, self.tail_start, seq, w.sent_end);
            let mut room = if tail_len > 0 && tail_len < goal {
                goal - tail_len
            } else {
                0
            };
            if room == 0 {
                // A new buffer.
                self.tail_start = seq;
                room = goal;
                carry = false;
            } else if let Some(m) = last {
                // Appending to the newest buffer: its end moves, and so does its PSH.
                marks.pop_back();
                self.records -= u32::from(m.eor);
                carry = m.psh && (copied > 0 || self.continuing);
            }
            let n = room.min(w.copied - copied);
            seq += n;
            copied += n;
            if copied == w.copied {
                break;
            }
            // The buffer is full and the write goes on. Its end is kept, PSH or not: a
            // buffer grows only from the one after it (`grow`).
            let forced = seq > self.pushed_seq + half;
            marks.push_back(Mark {
                end: seq,
                psh: carry || forced,
                eor: false,
            });
            if forced {
                self.pushed_seq = seq;
            }
            carry = false;
        }
        let partial = w.copied < w.requested;
        let forced = seq > self.pushed_seq + half;
        let psh = carry || !w.more || forced || partial;
        if psh {
            self.pushed_seq = seq;
        }
        let eor = w.eor && !partial;
        if psh || eor {
            marks.push_back(Mark { end: seq, psh, eor });
            self.records += u32::from(eor);
        }
        self.continuing = partial;
        self.freeze_sent_as_filled(w.sendable_end);
    }

    /// [`on_write`](Self::on_write) of a write that starts a new buffer and fills it to its
    /// end: nothing unsent before it (`w.seq` at or before `w.sent_end`) and at most
    /// `w.size_goal` bytes, whose value it does not read (the caller may pass any goal of at
    /// least `w.copied`). The end of the loop of `on_write` after its one turn.
    #[inline]
    pub fn on_new_buffer_write(&mut self, w: Write) {
        debug_assert!(w.copied > 0 && w.seq <= w.sent_end && w.copied <= w.size_goal.max(1));
        self.tail_start = w.seq;
        let seq = w.seq + w.copied;
        let partial = w.copied < w.requested;
        let forced = seq > self.pushed_seq + w.max_window / 2;
        let psh = !w.more || forced || partial;
        if psh {
            self.pushed_seq = seq;
        }
        let eor = w.eor && !partial;
        self.continuing = partial;
        if psh || eor {
            self.marks.push_back(Mark { end: seq, psh, eor });
            self.records += u32::from(eor);
            // The newest mark is the one to freeze when the windows let it out at once.
            if seq <= w.sendable_end {
                self.frozen = self.frozen.max(seq);
                return;
            }
        }
        self.freeze_sent_as_filled(w.sendable_end);
    }

    /// Linux sends each buffer as it fills (`tcp_push_one`, or all on a forced push) while
    /// the windows allow (up to `sendable_end`), before the write's next buffer exists:
    /// those never grow.
    fn freeze_sent_as_filled(&mut self, sendable_end: SeqNum) {
        // The marks are in sequence order: the newest is the answer when it qualifies (a
        // write the windows let out at once, as every request/response write), with no walk.
        let sent_as_filled = match self.marks.back() {
            Some(m) if m.end <= sendable_end => Some(m.end),
            _ => self
                .marks()
                .rev()
                .find(|m| m.end <= sendable_end)
                .map(|m| m.end),
        };
        if let Some(end) = sent_as_filled {
            self.frozen = self.frozen.max(end);
        }
    }

    /// Before a packet of new data goes out from `nxt`, the buffer it starts takes up to
    /// `amount` bytes more (what the packet may hold beyond the buffer) from the one after
    /// it, as Linux 6.10+ grows the head of its write queue (`tcp_grow_skb` in
    /// `tcp_write_xmit`): a buffer eaten whole gives its PSH and record end to the grown one,
    /// a buffer eaten in part keeps its own, and the grown one's PSH moves to its new end.
    /// So a PSH that a write put mid-queue ends up where the packets cut the data, not where
    /// the write did. `queued_end` is the end of the queued data (the newest buffer's end).
    /// Buffers that went out as the write filled them (see `on_write`) and a buffer that
    /// ends a record do not grow.
    pub fn grow(&mut self, nxt: SeqNum, amount: u32, queued_end: SeqNum) {
        let Some((i, head)) = self.growable(nxt, queued_end) else {
            return;
        };
        let missing = amount.saturating_sub(head.end - nxt);
        if missing == 0 {
            return;
        }
        let next = self.marks().nth(i + 1).copied();
        let next_end = next.map_or(queued_end, |m| m.end);
        if missing >= next_end - head.end {
            // The next buffer is eaten whole.
            debug_assert!(!head.eor, "a record's end does not grow");
            self.marks.remove(i);
            match next {
                Some(_) => self.marks.get_mut(i).expect("next mark").psh |= head.psh,
                None => {
                    self.tail_start = nxt;
                    if head.psh {
                        self.marks.push_back(Mark {
                            end: queued_end,
                            psh: true,
                            eor: false,
                        });
                    }
                }
            }
        } else {
            let end = head.end + missing;
            self.marks.get_mut(i).expect("head mark").end = end;
            if next.is_none() {
                self.tail_start = end;
            }
        }
    }

    /// Whether [`grow`](Self::grow) may grow the buffer that starts at `nxt` (given a
    /// non-zero `amount`): one that reaches `queued_end`, ends a record or went out as the
    /// write filled it does not. A caller skips working out the amount when it may not.
    pub fn may_grow(&self, nxt: SeqNum, queued_end: SeqNum) -> bool {
        self.growable(nxt, queued_end).is_some()
    }

    /// The buffer `grow` would grow, with its index: the first ending after `nxt`.
    fn growable(&self, nxt: SeqNum, queued_end: SeqNum) -> Option<(usize, Mark)> {
        // The oldest mark first, without the chained walk: it is the answer on every
        // request/response segment (one mark outstanding). No `first`, no marks (`Marks`
        // keeps `rest` empty then).
        debug_assert!(self.marks.first.is_some() || self.marks.rest.is_empty());
        let (i, head) = match self.marks.first {
            Some(m) if m.end > nxt => (0, m),
            Some(_) => {
                let (i, &m) = self
                    .marks
                    .rest
                    .iter()
                    .enumerate()
                    .find(|(_, m)| m.end > nxt)?;
                (i + 1, m)
            }
            None => return None,
        };
        (head.end > self.frozen && !head.eor && head.end < queued_end).then_some((i, head))
    }

    /// Forgets the boundaries at or before `sent` (SND.MAX): that data has been sent.
    pub fn on_sent(&mut self, sent: SeqNum) {
        while let Some(m) = self.marks.first.filter(|m| m.end <= sent) {
            self.marks.pop_front();
            self.records -= u32::from(m.eor);
        }
    }

    /// The boundaries, in sequence order.
    fn marks(&self) -> impl DoubleEndedIterator<Item = &Mark> {
        self.marks.first.iter().chain(self.marks.rest.iter())
    }

    /// The end of the first MSG_EOR record after `from`: no segment extends past it.
    pub fn record_end_after(&self, from: SeqNum) -> Option<SeqNum> {
        debug_assert_eq!(
            self.records as usize,
            self.marks().filter(|m| m.eor).count()
        );
        if self.records == 0 {
            return None;
        }
        self.marks().find(|m| m.end > from && m.eor).map(|m| m.end)
    }

    /// Whether a segment covering `(start, end]` carries PSH: some buffer marked with it
    /// ends inside it. (Linux 6.10+ grows a short buffer with the next one's data before
    /// sending, `tcp_grow_skb`, so a segment is not cut short at a PSH; the flag stays with
    /// the grown buffer.)
    pub fn psh_within(&self, start: SeqNum, end: SeqNum) -> bool {
        let within = |m: &Mark| m.psh && m.end > start;
        // The oldest mark first, as in `growable`; the others only when it ends before `end`
        // without answering.
        debug_assert!(self.marks.first.is_some() || self.marks.rest.is_empty());
        match self.marks.first {
            Some(m) if m.end <= end => {
                within(&m)
                    || self
                        .marks
                        .rest
                        .iter()
                        .take_while(|m| m.end <= end)
                        .any(within)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `on_write`'s one-buffer shortcut (nothing unsent, a write that fits one buffer:
        /// `on_new_buffer_write`, which `Connection::write` also calls directly) leaves the
        /// marks as the general loop does: two copies driven by the same writes
        /// and sends, one with the shortcut and one without, stay alike after every step.
        /// The first write of each case is one the shortcut takes.
        #[test]
        fn the_one_buffer_shortcut_is_the_loop(
            ops in proptest::collection::vec(
                (0u8..3, 1u32..200_000, 0u32..3_000, any::<(bool, bool, bool)>(), 0usize..4),
                1..40,
            ),
        ) {
            let goals = [1448u32, 2896, 20_000, 64_000];
            let start = 1_000u32;
            let (mut fast, mut general) = (PushMarks::new(s(start)), PushMarks::new(s(start)));
            let (mut end, mut sent) = (s(start), s(start));
            for (i, (op, a, b, (more, eor, short), g)) in ops.into_iter().enumerate() {
                let goal = goals[g];
                if op == 0 || i == 0 {
                    let copied = if i == 0 { 1 + a % goal } else { 1 + a % (3 * goal) };
                    let w = Write {
                        seq: end,
                        copied,
                        requested: copied + if short { b } else { 0 },
                        sent_end: sent,
                        sendable_end: sent + b * 20,
                        size_goal: goal,
                        max_window: 2 * goal,
                        more,
                        eor,
                    };
                    if i == 0 {
                        prop_assert!(w.seq <= w.sent_end && w.copied <= goal);
                    }
                    PUSH_SHORTCUT.with(|c| c.set(true));
                    fast.on_write(w);
                    PUSH_SHORTCUT.with(|c| c.set(false));
                    general.on_write(w);
                    PUSH_SHORTCUT.with(|c| c.set(true));
                    end += copied;
                } else {
                    // Some of what is unsent goes (all of it, one time in two).
                    let unsent = end - sent;
                    sent += if op == 1 { unsent } else { a % (unsent + 1) };
                    fast.on_sent(sent);
                    general.on_sent(sent);
                }
                prop_assert_eq!(format!("{fast:?}"), format!("{general:?}"));
            }
        }
    }

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    fn write(seq: u32, copied: u32, sent_end: u32, goal: u32, max_window: u32) -> Write {
        Write {
            seq: s(seq),
            copied,
            requested: copied,
            sent_end: s(sent_end),
            sendable_end: s(sent_end),
            size_goal: goal,
            max_window,
            more: false,
            eor: false,
        }
    }

    impl PushMarks {
        fn next_after(&self, from: SeqNum) -> Option<Mark> {
            self.marks().find(|m| m.end > from).copied()
        }

        fn is_empty(&self) -> bool {
            self.marks().next().is_none()
        }
    }

    fn psh_ends(p: &PushMarks) -> Vec<u32> {
        p.marks().filter(|m| m.psh).map(|m| m.end.0).collect()
    }

    #[test]
    fn size_goal_is_half_the_window_in_whole_segments() {
        // prr-ss-30pkt-lost1_4: window 320 << 7 = 40,960, MSS 1,000 → 20 segments.
        assert_eq!(size_goal(1000, 40_960, 20), 20_000);
        // A large window is capped by GSO: 65,215 bytes → 45 segments of 1,448.
        assert_eq!(size_goal(1448, 1 << 20, 32), 45 * 1448);
        // A window below one segment still allows one segment.
        assert_eq!(size_goal(1000, 1000, 20), 1000);
        // Before the peer's window is known: the GSO limit.
        assert_eq!(size_goal(1000, 0, 20), 65_000);
    }

    /// A write its size goal does not matter to (into an empty queue, no more than the floor)
    /// leaves the same state with the floor as goal as with a larger one; appending to a
    /// buffer still open, or writing more than the floor, depends on the goal.
    #[test]
    fn the_goal_matters_only_to_an_open_buffer_or_past_the_floor() {
        let p = PushMarks::new(s(1));
        assert!(!p.goal_matters(s(1), s(1), 1000, 1000));
        assert!(p.goal_matters(s(1), s(1), 1001, 1000));
        let (mut a, mut b) = (p.clone(), p);
        a.on_write(write(1, 1000, 1, 1000, 40_960));
        b.on_write(write(1, 1000, 1, 20_000, 40_960));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        // Unsent, the buffer takes the next write as far as the goal allows: a full one
        // (goal 1,000) does not, a larger goal does.
        assert!(a.goal_matters(s(1001), s(1), 1, 1000));
        let (mut full, mut larger) = (a.clone(), b);
        full.on_write(write(1001, 1, 1, 1000, 40_960));
        larger.on_write(write(1001, 1, 1, 20_000, 40_960));
        assert_ne!(format!("{full:?}"), format!("{larger:?}"));
        // Once it went out, the next write starts a buffer of its own.
        assert!(!a.goal_matters(s(1001), s(1001), 1, 1000));
    }

    #[test]
    fn a_write_ends_with_psh() {
        let mut p = PushMarks::new(s(1));
        p.on_write(write(1, 10_000, 1, 20_000, 40_960));
        assert_eq!(psh_ends(&p), vec![10_001]);
    }

    #[test]
    fn msg_more_sets_no_psh_until_forced() {
        let mut p = PushMarks::new(s(1));
        let mut w = write(1, 1000, 1, 20_000, 40_960);
        w.more = true;
        p.on_write(w);
        assert!(p.is_empty());
        // More than half the window written since the last push forces one.
        let mut w = write(1001, 20_000, 1, 20_000, 40_960);
        w.more = true;
        p.on_write(w);
        assert_eq!(psh_ends(&p), vec![21_001]);
    }

    #[test]
    fn appending_to_an_unsent_buffer_moves_its_psh() {
        let mut p = PushMarks::new(s(1));
        p.on_write(write(1, 500, 1, 20_000, 40_960));
        p.on_write(write(501, 500, 1, 20_000, 40_960));
        assert_eq!(psh_ends(&p), vec![1001]);
    }

    #[test]
    fn a_sent_buffer_keeps_its_psh_and_a_new_one_starts() {
        let mut p = PushMarks::new(s(1));
        p.on_write(write(1, 500, 1, 20_000, 40_960));
        assert_eq!(p.next_after(s(1)).map(|m| m.end), Some(s(501)));
        // All 500 bytes went out; the next write starts a new buffer.
        p.on_sent(s(501));
        p.on_write(write(501, 500, 501, 20_000, 40_960));
        assert_eq!(
            p.next_after(s(501)).map(|m| (m.end, m.psh)),
            Some((s(1001), true))
        );
        assert!(p.psh_within(s(1), s(1001)));
    }

    #[test]
    fn partly_sent_buffer_keeps_psh_on_the_rest_until_appended_to() {
        let mut p = PushMarks::new(s(10_001));
        // prr-ss-30pkt-lost1_4: a 10,000-byte write, 7,000 sent (cwnd 7).
        p.on_write(write(10_001, 10_000, 10_001, 20_000, 40_960));
        let m = p.next_after(s(17_001)).unwrap();
        assert_eq!((m.end, m.psh), (s(20_001), true));
        // The segments up to 17001 end before it: no PSH; the one ending at 20001 has it.
        assert!(!p.psh_within(s(16_001), s(17_001)));
        assert!(p.psh_within(s(19_001), s(20_001)));
        p.on_sent(s(17_001));
        // Another write appends to the remaining 3,000 bytes: the PSH moves to its end.
        p.on_write(write(20_001, 1000, 17_001, 20_000, 40_960));
        assert_eq!(psh_ends(&p), vec![21_001]);
    }

    #[test]
    fn a_long_write_is_pushed_every_half_window() {
        let mut p = PushMarks::new(s(1));
        // Window 20,000: buffers of 10,000, forced push once 10,000 bytes are unpushed.
        p.on_write(write(1, 50_000, 1, 10_000, 20_000));
        // The first buffer ends at 10,001: exactly half a window, not more — no push.
        // The second at 20,001 is more than half past 1: pushed. And so on.
        assert_eq!(psh_ends(&p), vec![20_001, 40_001, 50_001]);
    }

    #[test]
    fn a_buffer_held_back_by_the_window_grows_and_its_psh_moves() {
        // rwnd-tiny-peer-window-caps-mss: window 500 = MSS = buffer size; 2,000 bytes.
        let mut p = PushMarks::new(s(1));
        let mut w = write(1, 2000, 1, 500, 500);
        w.sendable_end = s(501);
        p.on_write(w);
        // Forced pushes every buffer (more than 250 bytes each); the first left at once.
        assert_eq!(psh_ends(&p), vec![501, 1001, 1501, 2001]);
        assert!(p.psh_within(s(1), s(501)));
        p.on_sent(s(501));
        // The next packet may hold 2 segments: 501..1001 eats 1001..1501 whole, and
        // the 500 bytes the window lets out end short of the PSH.
        p.grow(s(501), 1000, s(2001));
        assert_eq!(psh_ends(&p), vec![1501, 1501 + 500]);
        assert!(!p.psh_within(s(501), s(1001)));
        p.on_sent(s(1001));
        // Eaten in part: the grown buffer's PSH moves to its new end, the rest keeps its own.
        p.grow(s(1001), 700, s(2001));
        assert_eq!(psh_ends(&p), vec![1701, 2001]);
    }

    #[test]
    fn buffers_sent_as_the_write_fills_them_do_not_grow() {
        let mut p = PushMarks::new(s(1));
        let mut w = write(1, 4000, 1, 1000, 3000);
        w.sendable_end = s(3001);
        p.on_write(w);
        assert_eq!(psh_ends(&p), vec![2001, 4001]);
        p.grow(s(1001), 2000, s(4001));
        assert!(p.psh_within(s(1001), s(2001)));
        // The buffer the window held back grows into the last one, which ends the queue.
        p.on_sent(s(3001));
        p.grow(s(3001), 2000, s(4001));
        assert_eq!(psh_ends(&p), vec![4001]);
    }

    #[test]
    fn a_full_buffer_is_not_appended_to() {
        let mut p = PushMarks::new(s(1));
        p.on_write(write(1, 2000, 1, 2000, 40_960));
        p.on_write(write(2001, 1000, 1, 2000, 40_960));
        assert_eq!(psh_ends(&p), vec![2001, 3001]);
    }

    #[test]
    fn a_record_end_is_kept_and_not_appended_to() {
        let mut p = PushMarks::new(s(1));
        let mut w = write(1, 100, 1, 20_000, 40_960);
        w.eor = true;
        w.more = true;
        p.on_write(w);
        p.on_write(write(101, 100, 1, 20_000, 40_960));
        let m = p.next_after(s(1)).unwrap();
        assert_eq!((m.end, m.psh, m.eor), (s(101), false, true));
        assert_eq!(p.record_end_after(s(1)), Some(s(101)));
        assert_eq!(p.record_end_after(s(101)), None);
        assert_eq!(psh_ends(&p), vec![201]);
    }

    #[test]
    fn a_write_cut_short_by_a_full_buffer_pushes_and_its_continuation_appends() {
        let mut p = PushMarks::new(s(1));
        let mut w = write(1, 3000, 1, 20_000, 40_960);
        w.requested = 8000;
        p.on_write(w);
        assert_eq!(psh_ends(&p), vec![3001]);
        // The rest of the same write: the flag moves to the new end.
        let mut w = write(3001, 5000, 1, 20_000, 40_960);
        w.more = true;
        p.on_write(w);
        assert_eq!(psh_ends(&p), vec![8001]);
    }
}
