//! The connections' deadlines in a hierarchical timing wheel (Varghese & Lauck; the layout of
//! Linux's `timer_list` wheel and tokio's): arming a timer is O(1), an entry is found again
//! by the slot of its deadline, not by sifting a heap of every connection.
//!
//! Six levels of 64 slots; a slot of level `L` spans `64^L` ticks of 1,024 µs, so level 0
//! holds the next 64 ticks one tick per slot (about 65 ms), level 1 the next 4.2 s, level 2
//! 4.5 min, level 3 4.8 h, level 4 12.7 days, level 5 2.2 years (anything later waits in level
//! 5 and is placed again when its slot comes). An entry keeps its exact deadline in
//! microseconds: the wheel fires it exactly then, never a tick late or early. An entry sits in
//! the level of the highest 6-bit group in which its tick differs from the wheel's current
//! tick, so every entry of a lower level is due before any entry of a higher one; when the
//! wheel reaches a slot of a higher level, its entries move down (a cascade).
//!
//! Each connection (slot index) has at most one entry, and the wheel knows where it is:
//! arming again moves it, and a connection that goes away takes its entry out, both in O(1)
//! (swap-remove from its slot; Linux's `timer_list` is unlinked from its bucket the same way
//! by `del_timer`). So no entry of a finished connection, and no superseded one, is left to
//! come out and be skipped. A deadline moved later stays lazy (the owner keeps the earlier
//! entry, and when it comes out finds nothing due and arms the real one: cheaper than moving
//! the entry on every ACK), so the owner still checks that an entry is the one it holds
//! (`ConnSlot::timer`).

use crate::time::Instant;

const LEVELS: usize = 6;
const SLOTS: usize = 64;
/// log2 of the tick in microseconds (1,024 µs).
const TICK_SHIFT: u32 = 10;
/// The latest tick the wheel can place relative to its current tick.
const MAX_AHEAD: u64 = (1 << (6 * LEVELS as u32)) - 1;
/// `Place::slot` of an index without an entry.
const NOWHERE: u32 = u32::MAX;

/// Where an index's entry is: its slot (`level * SLOTS + slot`) and position in it.
#[derive(Debug, Clone, Copy)]
struct Place {
    slot: u32,
    pos: u32,
}

/// One armed deadline: when, and the slot index and generation of its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub at: Instant,
    pub index: u32,
    pub generation: u32,
}

pub(super) struct Wheel {
    /// Every slot before this tick has been emptied.
    elapsed: u64,
    /// Bit `s` of `occupied[l]`: slot `s` of level `l` holds entries.
    occupied: [u64; LEVELS],
    /// Bit `s`: slot `s` of level 0 is sorted latest first, so its entries come out in
    /// (deadline, index, generation) order, the order of a heap.
    sorted: u64,
    slots: Vec<Vec<Entry>>,
    /// The earliest deadline in each slot of levels 1 and up (µs): exact, or the slot's start
    /// after its earliest entry was cancelled (a lower bound until the slot moves down).
    earliest: Vec<u64>,
    len: usize,
    /// No entry is due before this microsecond (a lower bound; exact after a `pop_expired`
    /// found nothing due in the current tick's slot): a call before it returns at once,
    /// without looking at the levels, also within a tick whose slot holds a later deadline.
    due_at: u64,
    /// Reused for cascades, so that moving entries down allocates nothing.
    scratch: Vec<Entry>,
    /// Where the entry of each index is (`NOWHERE`: it has none); grows to the highest index
    /// armed.
    places: Vec<Place>,
}

fn tick_of(at: Instant) -> u64 {
    at.total_micros() >> TICK_SHIFT
}

/// The level an entry due at tick `when` belongs to while the wheel is at tick `elapsed`.
fn level_for(elapsed: u64, when: u64) -> usize {
    let differing = (elapsed ^ when) | (SLOTS as u64 - 1);
    let significant = 63 - differing.leading_zeros() as usize;
    (significant / 6).min(LEVELS - 1)
}

fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (6 * level)) as usize) & (SLOTS - 1)
}

impl Default for Wheel {
    fn default() -> Wheel {
        Wheel {
            elapsed: 0,
            occupied: [0; LEVELS],
            sorted: 0,
            slots: (0..LEVELS * SLOTS).map(|_| Vec::new()).collect(),
            earliest: vec![u64::MAX; LEVELS * SLOTS],
            len: 0,
            due_at: u64::MAX,
            scratch: Vec::new(),
            places: Vec::new(),
        }
    }
}

impl Wheel {
    /// Entries in the wheel (at most one per index).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held: the slots and the index of places at their capacity.
    pub(super) fn memory_bytes(&self) -> usize {
        use core::mem::size_of;
        let entries: usize =
            self.slots.iter().map(Vec::capacity).sum::<usize>() + self.scratch.capacity();
        self.slots.capacity() * size_of::<Vec<Entry>>()
            + entries * size_of::<Entry>()
            + self.earliest.capacity() * size_of::<u64>()
            + self.places.capacity() * size_of::<Place>()
    }

    /// [`push`](Self::push) for an index that has no entry queued (a slab index just handed
    /// out, or a connection's slot whose entry came out or was cancelled: `queue_deadline`
    /// tells by the slot's `timer`): no [`cancel`](Self::cancel) first. Checked in debug
    /// builds only; an index queued twice would leave a stale entry that a later cancel could
    /// mistake for another's.
    #[inline]
    pub(super) fn push_new(&mut self, e: Entry) {
        debug_assert!(
            self.places
                .get(e.index as usize)
                .is_none_or(|p| p.slot == NOWHERE),
            "index {} already queued",
            e.index
        );
        self.insert(e);
    }

    /// Arms a deadline for `e.index`, replacing the entry that index had (O(1)). One in the
    /// past fires at the next [`pop_expired`](Self::pop_expired).
    #[inline]
    pub(super) fn push(&mut self, e: Entry) {
        self.cancel(e.index);
        self.insert(e);
    }

    /// Takes the entry of `index` out, if it has one (O(1)): its slot's last entry takes its
    /// place.
    #[inline]
    pub(super) fn cancel(&mut self, index: u32) {
        let Some(place) = self.places.get_mut(index as usize) else {
            return;
        };
        if place.slot == NOWHERE {
            return;
        }
        let (i, pos) = (place.slot as usize, place.pos as usize);
        place.slot = NOWHERE;
        let v = &mut self.slots[i];
        let gone = v.swap_remove(pos);
        let (level, slot) = (i / SLOTS, i % SLOTS);
        if let Some(moved) = v.get(pos) {
            self.places[moved.index as usize].pos = pos as u32;
            if level == 0 {
                self.sorted &= !(1 << slot);
            }
        }
        if v.is_empty() {
            self.occupied[level] &= !(1 << slot);
            if level > 0 {
                self.earliest[i] = u64::MAX;
            }
        } else if level > 0 && self.earliest[i] == gone.at.total_micros() {
            // The slot's earliest may have left: its start is a lower bound that stays true
            // (finding the new earliest would take a pass over the slot), and at that time the
            // wheel moves the slot's entries down, where their exact deadlines count again.
            self.earliest[i] = self.slot_start(level, slot) << TICK_SHIFT;
            // `next_deadline` now reports that start: a `pop_expired` then must move the
            // slot down, not return at the `due_at` comparison (which would leave the same
            // deadline reported, and a driver waking for it again and again).
            self.due_at = self.due_at.min(self.earliest[i]);
        }
        self.len -= 1;
    }

    /// Records that `e` is at position `pos` of slot `i`.
    fn place(&mut self, e: &Entry, i: usize, pos: usize) {
        let index = e.index as usize;
        if self.places.len() <= index {
            let nowhere = Place {
                slot: NOWHERE,
                pos: 0,
            };
            self.places.resize(index + 1, nowhere);
        }
        self.places[index] = Place {
            slot: i as u32,
            pos: pos as u32,
        };
    }

    /// Puts `e` in the slot of its deadline (its index has no entry).
    #[inline]
    fn insert(&mut self, e: Entry) {
        let when = tick_of(e.at)
            .max(self.elapsed)
            .min(self.elapsed + MAX_AHEAD);
        let level = level_for(self.elapsed, when);
        let slot = slot_for(when, level);
        let i = level * SLOTS + slot;
        self.place(&e, i, self.slots[i].len());
        self.slots[i].push(e);
        self.due_at = self.due_at.min(e.at.total_micros());
        self.occupied[level] |= 1 << slot;
        if level > 0 {
            self.earliest[i] = self.earliest[i].min(e.at.total_micros());
        } else {
            self.sorted &= !(1 << slot);
        }
        self.len += 1;
    }

    /// The lowest level's next occupied slot at or after the wheel's position: (level, slot,
    /// the tick it starts at).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let bits = self.occupied[level];
            if bits == 0 {
                continue;
            }
            let shift = 6 * level as u32;
            let pos = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            let slot = (pos + bits.rotate_right(pos as u32).trailing_zeros() as usize) % SLOTS;
            return Some((level, slot, self.slot_start(level, slot)));
        }
        None
    }

    /// The tick at which the wheel reaches `slot` of `level` (the wheel's tick if it is
    /// there already).
    fn slot_start(&self, level: usize, slot: usize) -> u64 {
        let shift = 6 * level as u32;
        let pos = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
        // Entries of this level lie in the wheel's current span of the level above, at or
        // after its position; only the top level, which holds what lies beyond the wheel,
        // wraps into the next span.
        let span = shift + 6;
        let mut base = (self.elapsed >> span) << span;
        if slot < pos {
            base += 1 << span;
        }
        (base + ((slot as u64) << shift)).max(self.elapsed)
    }

    /// The earliest deadline in the wheel: exact, or, after the earliest entry of a slot above
    /// level 0 was cancelled, that slot's start (when the wheel moves its entries down).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let (level, slot, _) = self.next_slot()?;
        let i = level * SLOTS + slot;
        let at = if level == 0 {
            self.slots[i].iter().map(|e| e.at.total_micros()).min()?
        } else {
            self.earliest[i]
        };
        Some(Instant::from_micros(at))
    }

    /// Takes the earliest entry due at `now` (ties by index and generation), moving entries
    /// of higher levels down as the wheel reaches them.
    #[inline]
    pub(super) fn pop_expired(&mut self, now: Instant) -> Option<Entry> {
        // The common answer (nothing due yet) without a call.
        if now.total_micros() < self.due_at {
            return None;
        }
        self.pop_due(now)
    }

    /// [`pop_expired`](Self::pop_expired) once something may be due.
    fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        let now_tick = tick_of(now);
        loop {
            let Some((level, slot, start)) = self.next_slot() else {
                self.due_at = u64::MAX;
                return None;
            };
            if start > now_tick {
                self.due_at = start << TICK_SHIFT;
                return None;
            }
            self.elapsed = start;
            let i = level * SLOTS + slot;
            if level == 0 {
                let v = &mut self.slots[i];
                if self.sorted & (1 << slot) == 0 {
                    if v.len() > 1 {
                        v.sort_unstable_by_key(|e| {
                            core::cmp::Reverse((e.at, e.index, e.generation))
                        });
                        for (pos, e) in v.iter().enumerate() {
                            self.places[e.index as usize].pos = pos as u32;
                        }
                    }
                    self.sorted |= 1 << slot;
                }
                // Every entry of a slot before `now`'s tick is due; in `now`'s own tick, those
                // at or before `now`.
                let first = v.last()?.at;
                if first > now {
                    // The earliest entry of all: lower slots are empty, later ones later.
                    self.due_at = first.total_micros();
                    return None;
                }
                let e = v.pop()?;
                if v.is_empty() {
                    self.occupied[0] &= !(1 << slot);
                }
                self.places[e.index as usize].slot = NOWHERE;
                self.len -= 1;
                return Some(e);
            }
            // The wheel reached a slot of a higher level: its entries move down.
            std::mem::swap(&mut self.scratch, &mut self.slots[i]);
            self.occupied[level] &= !(1 << slot);
            self.earliest[i] = u64::MAX;
            self.len -= self.scratch.len();
            let mut moving = std::mem::take(&mut self.scratch);
            for e in moving.drain(..) {
                self.insert(e);
            }
            self.scratch = moving;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(at_us: u64, index: u32) -> Entry {
        Entry {
            at: Instant::from_micros(at_us),
            index,
            generation: 0,
        }
    }

    /// Arms `(deadline µs, index)` pairs in order.
    fn push_all(w: &mut Wheel, entries: &[(u64, u32)]) {
        for &(at, i) in entries {
            w.push(e(at, i));
        }
    }

    /// Pops everything due at `now`, in the order the wheel gives it.
    fn due(w: &mut Wheel, now_us: u64) -> Vec<(u64, u32)> {
        std::iter::from_fn(|| w.pop_expired(Instant::from_micros(now_us)))
            .map(|e| (e.at.total_micros(), e.index))
            .collect()
    }

    #[test]
    fn a_later_deadline_in_the_current_tick_is_remembered_exactly() {
        let mut w = Wheel::default();
        w.push(e(900, 1));
        w.push(e(100, 0));
        assert_eq!(w.due_at, 100);
        assert_eq!(due(&mut w, 50), []);
        assert_eq!(due(&mut w, 100), [(100, 0)]);
        // Nothing more is due before 900 µs, in the same 1,024 µs tick: calls before then
        // return at the first comparison.
        assert_eq!(due(&mut w, 500), []);
        assert_eq!(w.due_at, 900);
        assert_eq!(due(&mut w, 899), []);
        assert_eq!(due(&mut w, 900), [(900, 1)]);
        assert_eq!(due(&mut w, u64::MAX - 1), []);
        assert_eq!(w.due_at, u64::MAX);
        // A push lowers the bound to its own deadline.
        w.push(e(5_000, 2));
        assert_eq!(w.due_at, 5_000);
        assert_eq!(due(&mut w, 4_999), []);
        assert_eq!(due(&mut w, 5_000), [(5_000, 2)]);
    }

    #[test]
    fn deadlines_fire_exactly_when_due_and_not_before() {
        let mut w = Wheel::default();
        for (i, at) in [1_500u64, 1_000, 200_000, 60_000_000, 1_024, 1_023]
            .into_iter()
            .enumerate()
        {
            w.push(e(at, i as u32));
        }
        assert_eq!(w.next_deadline(), Some(Instant::from_micros(1_000)));
        assert_eq!(due(&mut w, 999), []);
        assert_eq!(due(&mut w, 1_023), [(1_000, 1), (1_023, 5)]);
        assert_eq!(w.next_deadline(), Some(Instant::from_micros(1_024)));
        assert_eq!(due(&mut w, 1_499), [(1_024, 4)]);
        assert_eq!(due(&mut w, 1_500), [(1_500, 0)]);
        // Levels above 0 report their exact earliest deadline, not their slot's start.
        assert_eq!(w.next_deadline(), Some(Instant::from_micros(200_000)));
        assert_eq!(due(&mut w, 199_999), []);
        assert_eq!(due(&mut w, 200_000), [(200_000, 2)]);
        assert_eq!(w.next_deadline(), Some(Instant::from_micros(60_000_000)));
        assert_eq!(due(&mut w, 59_999_999), []);
        assert_eq!(w.len(), 1);
        assert_eq!(due(&mut w, 60_000_000), [(60_000_000, 3)]);
        assert_eq!(w.next_deadline(), None);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn a_late_tick_fires_everything_overdue_and_a_past_deadline_fires_at_once() {
        let mut w = Wheel::default();
        let ats = [5_000u64, 70_000, 4_300_000, 300_000_000, 17_000_000_000];
        for (i, &at) in ats.iter().enumerate() {
            w.push(e(at, i as u32));
        }
        // One call far past all of them: everything, across every level.
        let all: Vec<(u64, u32)> = ats
            .iter()
            .enumerate()
            .map(|(i, &a)| (a, i as u32))
            .collect();
        assert_eq!(due(&mut w, 20_000_000_000), all);
        // The wheel is now at 20,000 s: a deadline in the past is due right away.
        w.push(e(1_000, 9));
        assert_eq!(w.next_deadline(), Some(Instant::from_micros(1_000)));
        assert_eq!(due(&mut w, 20_000_000_000), [(1_000, 9)]);
    }

    #[test]
    fn positions_wrap_around_every_level() {
        // Deadlines every 37 ms for about 10 minutes, pushed while the wheel advances: each
        // level's position wraps past slot 63 many times, and each deadline fires in the call
        // at the first step at or after it, never before.
        let mut w = Wheel::default();
        let step = 10_000u64; // the caller's clock advances 10 ms per call
        let mut next_push = 0u64;
        let mut pushed = 0u32;
        let mut fired = Vec::new();
        let mut now = 0u64;
        while now < 600_000_000 {
            while next_push <= now + 5_000_000 {
                w.push(e(next_push, pushed));
                pushed += 1;
                next_push += 37_000;
            }
            for (at, i) in due(&mut w, now) {
                assert!(at <= now && now - at < step, "{at} fired at {now}");
                fired.push(i);
            }
            now += step;
        }
        let expected: Vec<u32> = (0..fired.len() as u32).collect();
        assert_eq!(fired, expected);
        assert!(fired.len() > 16_000, "{}", fired.len());
    }

    #[test]
    fn due_entries_come_out_in_deadline_then_index_order_as_from_a_heap() {
        let mut w = Wheel::default();
        // Same tick, same deadline, pushed out of index order; and a later deadline in the
        // same tick pushed first.
        push_all(
            &mut w,
            &[(2_047, 3), (2_048, 9), (2_048, 4), (2_050, 1), (2_048, 7)],
        );
        assert_eq!(
            due(&mut w, 3_000),
            [(2_047, 3), (2_048, 4), (2_048, 7), (2_048, 9), (2_050, 1)]
        );
        // Pushed while a slot drains, an entry of that slot still comes out in order.
        w.push(e(5_000, 2));
        w.push(e(5_001, 1));
        assert_eq!(
            w.pop_expired(Instant::from_micros(5_100)).map(|e| e.index),
            Some(2)
        );
        w.push(e(5_000, 8));
        assert_eq!(due(&mut w, 5_100), [(5_000, 8), (5_001, 1)]);
    }

    #[test]
    fn arming_again_replaces_the_entry_and_cancel_takes_it_out() {
        let mut w = Wheel::default();
        w.push(e(300_000, 1)); // RTO
        w.push(e(40_000, 1)); // then a delayed ACK, earlier: the RTO's entry goes
        w.push(e(50_000, 2));
        w.push(e(45_000, 3));
        assert_eq!(w.len(), 3);
        w.cancel(3); // its connection went away
        w.cancel(3); // twice is harmless, as is an index that never had an entry
        w.cancel(77);
        assert_eq!(w.len(), 2);
        assert_eq!(due(&mut w, 1_000_000), [(40_000, 1), (50_000, 2)]);
        assert_eq!(w.next_deadline(), None);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn cancelling_inside_a_slot_keeps_the_others_in_order_and_findable() {
        let mut w = Wheel::default();
        // One level-0 slot (ticks of 1,024 µs) with five entries, sorted by a first pop.
        push_all(
            &mut w,
            &[(3_000, 5), (2_100, 1), (2_500, 2), (2_900, 4), (2_700, 3)],
        );
        w.push(e(2_050, 0));
        assert_eq!(due(&mut w, 2_060), [(2_050, 0)]);
        w.cancel(2); // from the middle: the last entry takes its place
        w.push(e(2_600, 4)); // moved within the slot
        w.cancel(1);
        assert_eq!(due(&mut w, 4_000), [(2_600, 4), (2_700, 3), (3_000, 5)]);
        // A level-1 slot whose earliest entry is cancelled reports a deadline no later
        // than its others and no earlier than the slot's start, and they fire on time.
        w.push(e(200_000, 6));
        w.push(e(210_000, 7));
        w.push(e(230_000, 8));
        w.cancel(6);
        let next = w.next_deadline().unwrap().total_micros();
        assert!((196_608..=210_000).contains(&next), "{next}");
        assert_eq!(due(&mut w, next), []);
        // Woken at that deadline, the wheel moved the slot down: the next one is exact.
        assert_eq!(w.next_deadline(), Some(Instant::from_micros(210_000)));
        assert_eq!(due(&mut w, 230_000), [(210_000, 7), (230_000, 8)]);
        assert_eq!(w.len(), 0);
    }

    proptest::proptest! {
        /// Against a model (a map of each index's deadline): random arms, re-arms and cancels
        /// while a driver sleeps until `next_deadline` (or a random time before it) and pops
        /// what is due. What comes out is exactly what the model says is due, in (deadline,
        /// index) order; `next_deadline` is never after the earliest armed deadline, and once
        /// a `pop_expired` found nothing due it is after the time asked about (a driver woken
        /// for it makes progress: it never reports the same passed deadline again).
        #[test]
        fn matches_a_model_and_a_woken_driver_always_makes_progress(
            ops in proptest::collection::vec((0u8..4, 0u32..12, 0u64..400_000), 1..400)
        ) {
            let mut w = Wheel::default();
            let mut model = std::collections::BTreeMap::<u32, u64>::new();
            let mut now = 0u64;
            for (op, index, delta) in ops {
                match op {
                    0 | 1 => {
                        w.push(e(now + delta, index));
                        model.insert(index, now + delta);
                    }
                    2 => {
                        w.cancel(index);
                        model.remove(&index);
                    }
                    _ => {
                        // The driver wakes at the reported deadline, or earlier (another
                        // event), and takes everything due.
                        let Some(next) = w.next_deadline() else {
                            proptest::prop_assert!(model.is_empty());
                            continue;
                        };
                        let next = next.total_micros();
                        if let Some(&first) = model.values().min() {
                            proptest::prop_assert!(next <= first, "{next} after {first}");
                        }
                        now = now.max(next.min(now + delta));
                        let mut want: Vec<(u64, u32)> = model
                            .iter()
                            .filter(|&(_, &at)| at <= now)
                            .map(|(&i, &at)| (at, i))
                            .collect();
                        want.sort();
                        for &(_, i) in &want {
                            model.remove(&i);
                        }
                        proptest::prop_assert_eq!(due(&mut w, now), want);
                        if let Some(after) = w.next_deadline() {
                            proptest::prop_assert!(after.total_micros() > now);
                        }
                        proptest::prop_assert_eq!(w.len(), model.len());
                    }
                }
            }
        }
    }

    #[test]
    fn a_deadline_beyond_the_top_level_waits_there_and_fires_on_time() {
        let mut w = Wheel::default();
        let far = (MAX_AHEAD + 1000) << TICK_SHIFT; // about 2.2 years
        w.push(e(far, 1));
        w.push(e(2_000, 2));
        assert_eq!(due(&mut w, 2_000), [(2_000, 2)]);
        assert_eq!(w.next_deadline(), Some(Instant::from_micros(far)));
        assert_eq!(due(&mut w, far - 1), []);
        assert_eq!(due(&mut w, far), [(far, 1)]);
    }
}
