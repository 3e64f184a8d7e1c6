//! The slot table: every socket (listener or connection) lives in a slot, addressed by a
//! [`SocketHandle`] whose generation makes a stale handle miss instead of hitting the slot's
//! next tenant. Here too: the bookkeeping after anything touched a connection (its timer in
//! the timing wheel, its events, a listener's child moving to the accept queue, freeing what is
//! finished).

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use super::demux::Bucket;
use super::shortcuts::{self, Shortcut};
use super::{SocketHandle, Stack, Tuple, err, wheel};
use crate::tcp::connection::Spares;
use crate::tcp::{Config, Connection, Counters, State};
use crate::time::Instant;

pub(super) struct Listener {
    pub(super) local: SocketAddr,
    pub(super) backlog: usize,
    /// Established children waiting for accept().
    pub(super) accept_queue: VecDeque<SocketHandle>,
    /// Half-open connections of this listener in the SYN queue.
    pub(super) syn_queue_len: usize,
    /// The TCP settings its connections get (socket options set before listen()).
    pub(super) tcp: Arc<Config>,
    /// When this listener last answered a SYN with a cookie: ACKs are checked as cookies
    /// for the cookies' lifetime after.
    pub(super) last_cookie: Option<Instant>,
    /// Takes connections of its own family only (always for IPv4 and specific addresses;
    /// IPV6_V6ONLY for `[::]`).
    pub(super) v6only: bool,
    /// TCP_FASTOPEN: the Fast Open queue length (0: no server Fast Open), RFC 7413 §5.1.
    pub(super) fastopen_qlen: usize,
}

pub(super) struct Slot {
    pub(super) generation: u32,
    pub(super) kind: SlotKind,
}

/// A connection lives in its slot, not in a box of its own: no allocation and free per
/// connection, no pointer and allocator header beside each TCB, one indirection less on every
/// segment. A free slot keeps that size for the next connection (as a slab cache does), so the
/// table holds at most the largest number of sockets the stack had at once.
#[allow(clippy::large_enum_variant)]
pub(super) enum SlotKind {
    Free,
    /// Boxed: a listener is rare and 104 bytes.
    Listener(Box<Listener>),
    Conn(ConnSlot),
}

pub(super) struct ConnSlot {
    pub(super) conn: Connection,
    /// The earliest wheel entry queued for this connection. A later deadline needs no entry of
    /// its own: when this one pops, the real deadline is queued again. So an ACK that restarts
    /// the retransmission timer (every ACK of a bulk transfer) costs no push.
    pub(super) timer: Option<Instant>,
    /// Queued for poll_transmit.
    pub(super) dirty: bool,
    /// The listener this connection came from, until accepted.
    pub(super) parent: Option<SocketHandle>,
    /// The application holds this handle (connect()ed, or accepted).
    pub(super) user: bool,
    /// The application closed the handle: free the slot once CLOSED.
    pub(super) released: bool,
    /// IPv6 flow label of its packets (RFC 6437); 0 for IPv4.
    pub(super) flow_label: u32,
    /// Retransmission timeouts that changed the flow label so far.
    pub(super) rehash: u32,
    /// In the queue [`Stack::poll_changed`] reads.
    pub(super) changed: bool,
    /// Gave its rings and scoreboard to the spares in TIME-WAIT (once: the later refreshes
    /// in TIME-WAIT skip it): on reaching it, or, for a released connection that is about
    /// to become a compact entry, when it leaves the transmit queue (`compact_time_wait`
    /// frees them with the slot, or `time_wait_stays` gives them).
    pub(super) parts_given: bool,
    /// The connection's own TTL / hop limit (IP_TTL); `None`: the stack's.
    pub(super) ttl: Option<u8>,
    /// Out of the demux table already ([`reap`](Stack::reap): closed but still held), so that
    /// freeing it later looks up its 4-tuple no more.
    pub(super) unhashed: bool,
    /// Where its entry went in the demux table (`enter_demux`, written by `Entered::write`,
    /// or `enter_conn`): leaving the table looks
    /// there first ([`Demux::remove_at`](super::demux::Demux::remove_at)). In the slot's
    /// padding: the slot keeps its size.
    pub(super) bucket: Bucket,
}

/// What a connection's slot keeps of its entry in the demux table
/// ([`Stack::enter_demux`]).
#[must_use]
pub(super) struct Entered {
    bucket: Bucket,
    flow_label: Option<u32>,
}

impl Entered {
    /// Writes it into the connection's slot.
    #[inline(always)]
    pub(super) fn write(self, c: &mut ConnSlot) {
        c.bucket = self.bucket;
        if let Some(f) = self.flow_label {
            c.flow_label = f;
        }
    }
}

/// The demux key of a connection: (local address, local port, remote address, remote port).
pub(super) fn tuple_of(c: &Connection) -> Tuple {
    let (l, r) = (c.local(), c.remote());
    (l.ip(), l.port(), r.ip(), r.port())
}

/// The connection's slot behind a handle, from the slot table alone (so that the stack's
/// other fields stay free to borrow beside it): the lookup of the reporting refresh.
#[inline(always)]
fn conn_in(slots: &mut [Slot], h: SocketHandle) -> Option<&mut ConnSlot> {
    match slots.get_mut(h.index as usize) {
        Some(Slot {
            generation,
            kind: SlotKind::Conn(c),
        }) if *generation == h.generation => Some(c),
        _ => None,
    }
}

/// Queues deadline `t` of connection `h` in the wheel when its entry must move: none queued,
/// or `t` earlier. A deadline moved later keeps its earlier entry (when it comes out, nothing
/// is due and the real one is armed: cheaper than moving it on every ACK), except when
/// `is_final` says it is TIME-WAIT's one deadline (asked only then): the entry moves there
/// now, instead of coming out once more for nothing (O(1), see `Wheel::push`).
#[inline(always)]
fn queue_deadline(
    timers: &mut wheel::Wheel,
    c: &mut ConnSlot,
    h: SocketHandle,
    t: Instant,
    is_final: impl FnOnce(&ConnSlot) -> bool,
) {
    if c.timer
        .is_none_or(|queued| t < queued || (t > queued && is_final(c)))
    {
        let e = wheel::Entry {
            at: t,
            index: h.index,
            generation: h.generation,
        };
        // Nothing queued for the slot (`c.timer` is the deadline of the wheel's entry for
        // its index whenever there is one: set here, cleared when the entry comes out, and
        // a freed slot's entry is cancelled): no cancel to look for one first.
        if c.timer.is_none() {
            timers.push_new(e);
        } else {
            timers.push(e);
        }
        c.timer = Some(t);
    }
}

/// Whether connection `c` in TIME-WAIT, queued for transmission, goes to
/// [`compact_time_wait`](Stack::compact_time_wait) when it leaves the queue (which the
/// transmit queue's loop does for a connection in TIME-WAIT): closed by its application (or
/// never held) and not a listener's child, as `compact_time_wait` asks.
#[inline(always)]
fn compacts_soon(c: &ConnSlot) -> bool {
    c.dirty && c.parent.is_none() && (c.released || !c.user)
}

/// What the refresh leaves, after [`settle`], to the parts of the stack beyond the slot
/// ([`Stack::refresh_rest_of`]).
#[derive(Clone, Copy)]
enum Rest {
    /// An open connection in TIME-WAIT that still holds its rings and scoreboard (and is
    /// not about to be compacted): they go to the spares.
    Parts,
    /// Trace events, a listener's child, a closed connection (`refresh_rest`).
    Whole {
        state: State,
        parent: Option<SocketHandle>,
        user: bool,
    },
}

/// The refresh of connection `h` on the slot its caller looked up: its deadline queued in
/// the wheel, and, for an open connection (no trace, no listener to report to, not closed:
/// every segment's case), it reported changed in `changed` (the queue of
/// [`Stack::poll_changed`]) if `report`, on that slot (not looked up again). What needs more
/// of the stack is returned, `None` in that common case.
///
/// TIME-WAIT's one deadline is final: its entry moves there now (see `queue_deadline`), and
/// its rings and scoreboard go to the spares, unless it is about to be compacted: then
/// `compact_time_wait` frees the slot (which gives the parts and cancels the entry) or, when
/// it stays whole, does both itself (`time_wait_stays`).
#[inline(always)]
fn settle(
    timers: &mut wheel::Wheel,
    changed: &mut Option<VecDeque<SocketHandle>>,
    trace: bool,
    c: &mut ConnSlot,
    h: SocketHandle,
    report: bool,
) -> Option<Rest> {
    let settles = |c: &ConnSlot| c.conn.state() == State::TimeWait && !compacts_soon(c);
    if let Some(t) = c.conn.poll_timeout() {
        queue_deadline(timers, c, h, t, settles);
    }
    let (state, parent, user) = (c.conn.state(), c.parent, c.user);
    if parent.is_none() && state != State::Closed && !trace {
        if user
            && report
            && let Some(q) = changed.as_mut()
        {
            queue_changed(q, c, h);
        }
        let give_parts = state == State::TimeWait && !c.parts_given && !compacts_soon(c);
        return give_parts.then_some(Rest::Parts);
    }
    Some(Rest::Whole {
        state,
        parent,
        user,
    })
}

/// Frees slot `s` of socket `h` (its generation checked by the caller): a connection's
/// parts go to the spares, its deadline out of the wheel, and the slot to the free list
/// with its generation moved on (so that `h` misses from now on).
#[inline(always)]
pub(super) fn free_slot(
    s: &mut Slot,
    h: SocketHandle,
    spares: &mut Spares,
    free: &mut Vec<u32>,
    timers: &mut wheel::Wheel,
) {
    if let SlotKind::Conn(c) = &mut s.kind {
        c.conn.give_parts(spares);
        c.conn.give_controller(spares);
        c.conn.give_transmit(spares);
    }
    // Dropped in place, not moved out.
    s.kind = SlotKind::Free;
    s.generation = s.generation.wrapping_add(1);
    free.push(h.index);
    // Its deadline goes with it, not left to come out and be skipped.
    timers.cancel(h.index);
}

/// Puts connection `h` (slot `c`) in `q`, the queue of [`Stack::poll_changed`], unless it
/// is there already.
#[inline(always)]
fn queue_changed(q: &mut VecDeque<SocketHandle>, c: &mut ConnSlot, h: SocketHandle) {
    if !std::mem::replace(&mut c.changed, true) {
        q.push_back(h);
    }
}

/// The error of a socket call on a handle that is no connection.
fn not_connected() -> io::Error {
    err(
        io::ErrorKind::NotConnected,
        "no such connection (closed handle?)",
    )
}

impl Stack {
    /// Puts a new connection in a slot and in the demux table.
    pub(super) fn insert_conn(
        &mut self,
        conn: Connection,
        parent: Option<SocketHandle>,
        user: bool,
    ) -> SocketHandle {
        let h = self.place_conn(parent, user, |_| conn, |_| {});
        self.hash_conn(h);
        h
    }

    /// Puts the connection `build` makes in a free slot (one copy of the TCB: `build`'s
    /// result moved into the slot, which safe Rust cannot build in place), set up there by
    /// `setup` (no further copy), then
    /// given its parts from the spares (`build` may take its congestion controller from
    /// them); not yet in the demux table ([`hash_conn`](Self::hash_conn)).
    #[inline(always)]
    pub(super) fn place_conn(
        &mut self,
        parent: Option<SocketHandle>,
        user: bool,
        build: impl FnOnce(&mut Spares) -> Connection,
        setup: impl FnOnce(&mut Connection),
    ) -> SocketHandle {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    kind: SlotKind::Free,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[index as usize];
        s.kind = SlotKind::Conn(ConnSlot {
            conn: build(&mut self.spares),
            timer: None,
            dirty: false,
            parent,
            user,
            released: false,
            flow_label: 0,
            rehash: 0,
            changed: false,
            parts_given: false,
            ttl: None,
            unhashed: false,
            bucket: Bucket(u32::MAX),
        });
        let generation = s.generation;
        if let SlotKind::Conn(c) = &mut s.kind {
            setup(&mut c.conn);
            // Its parts from the spares, once in its slot (not carried through the move).
            c.conn.take_parts(&mut self.spares);
        }
        SocketHandle { index, generation }
    }

    /// Enters placed connection `h` in the demux table, with its flow label.
    pub(super) fn hash_conn(&mut self, h: SocketHandle) {
        let Some(c) = self.conn_slot_ref(h) else {
            return;
        };
        let tuple = tuple_of(&c.conn);
        let hash = self.conns.hash(&tuple);
        self.enter_conn(h, tuple, hash);
    }

    /// [`hash_conn`](Self::hash_conn) for a caller that has the connection's 4-tuple and
    /// its demux hash at hand (the segment or the port check that led to it hashed it).
    pub(super) fn enter_conn(&mut self, h: SocketHandle, tuple: Tuple, hash: u64) {
        let entered = self.enter_demux(h, tuple, hash, false);
        if let Some(c) = conn_in(&mut self.slots, h) {
            entered.write(c);
        }
    }

    /// The demux half of [`enter_conn`](Self::enter_conn): connection `h` goes into the
    /// table; what its slot keeps of that (the bucket, the flow label) is returned, for the
    /// caller to [`write`](Entered::write) on the slot it looks up anyway.
    /// `replacing`: the 4-tuple most likely maps to a half-open entry already
    /// ([`Demux::replace`](super::demux::Demux::replace)).
    #[inline(always)]
    pub(super) fn enter_demux(
        &mut self,
        h: SocketHandle,
        tuple: Tuple,
        hash: u64,
        replacing: bool,
    ) -> Entered {
        // IPv4 has no flow label: the 0 `place_conn` wrote stands.
        let flow_label = tuple
            .0
            .is_ipv6()
            .then(|| self.flow_label(tuple.0, tuple.1, tuple.2, tuple.3, 0));
        let bucket = if replacing {
            self.conns.replace(hash, tuple, h)
        } else {
            self.conns.insert(hash, tuple, h)
        };
        Entered { bucket, flow_label }
    }

    /// What [`touched`](Self::touched) does, on the slot `f` was given (one lookup for the
    /// call and the refresh): `f` acts on connection `h` (with the stack's counters), then it
    /// is queued for transmission and refreshed. Nothing when `h` is no connection, as
    /// `touched`.
    #[inline(always)]
    pub(super) fn touch_with<R>(
        &mut self,
        h: SocketHandle,
        now: Instant,
        f: impl FnOnce(&mut ConnSlot, &mut Counters) -> R,
    ) -> Option<R> {
        self.try_touch_with(h, now, |c, ctr| {
            Ok::<R, core::convert::Infallible>(f(c, ctr))
        })
        .map(|r| match r {
            Ok(r) => r,
        })
    }

    /// [`touch_with`](Self::touch_with) for an `f` that may fail: on `Err` the connection
    /// is neither queued nor refreshed (its caller drops it).
    #[inline(always)]
    pub(super) fn try_touch_with<R, E>(
        &mut self,
        h: SocketHandle,
        now: Instant,
        f: impl FnOnce(&mut ConnSlot, &mut Counters) -> Result<R, E>,
    ) -> Option<Result<R, E>> {
        self.call_and_refresh(h, now, true, true, f)
    }

    /// The one slot lookup behind [`try_touch_with`](Self::try_touch_with) and
    /// [`refresh_queueing`](Self::refresh_queueing): `f` acts on connection `h`; unless it
    /// failed, the connection is queued for transmission if `queue` and refreshed (reported
    /// if `report`). `None` when `h` is no connection.
    #[inline(always)]
    fn call_and_refresh<R, E>(
        &mut self,
        h: SocketHandle,
        now: Instant,
        report: bool,
        queue: bool,
        f: impl FnOnce(&mut ConnSlot, &mut Counters) -> Result<R, E>,
    ) -> Option<Result<R, E>> {
        let c = conn_in(&mut self.slots, h)?;
        let r = f(c, &mut self.counters);
        if r.is_err() {
            return Some(r);
        }
        if queue && !c.dirty {
            c.dirty = true;
            self.dirty.push_back(h);
        }
        if let Some(rest) = settle(
            &mut self.timers,
            &mut self.changed,
            self.cfg.trace,
            c,
            h,
            report,
        ) {
            self.refresh_rest_of(h, now, rest);
        }
        Some(r)
    }

    // Inlined: a connection's slot (hundreds of bytes) is written in place, not copied in.
    #[inline(always)]
    pub(super) fn alloc(&mut self, kind: SlotKind) -> SocketHandle {
        if let Some(i) = self.free.pop() {
            let s = &mut self.slots[i as usize];
            s.kind = kind;
            SocketHandle {
                index: i,
                generation: s.generation,
            }
        } else {
            self.slots.push(Slot {
                generation: 0,
                kind,
            });
            SocketHandle {
                index: (self.slots.len() - 1) as u32,
                generation: 0,
            }
        }
    }

    pub(super) fn release(&mut self, h: SocketHandle) {
        if let Some(s) = self.slots.get_mut(h.index as usize)
            && s.generation == h.generation
        {
            free_slot(s, h, &mut self.spares, &mut self.free, &mut self.timers);
        }
    }

    pub(super) fn conn_slot(&mut self, h: SocketHandle) -> Option<&mut ConnSlot> {
        match self.slots.get_mut(h.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Conn(c),
            }) if *generation == h.generation => Some(c),
            _ => None,
        }
    }

    pub(super) fn listener_slot(&mut self, h: SocketHandle) -> Option<&mut Listener> {
        match self.slots.get_mut(h.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Listener(l),
            }) if *generation == h.generation => Some(l),
            _ => None,
        }
    }

    /// The connection's slot behind a handle, shared ([`conn_slot`](Self::conn_slot)'s
    /// lookup for readers).
    pub(super) fn conn_slot_ref(&self, h: SocketHandle) -> Option<&ConnSlot> {
        match self.slots.get(h.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Conn(c),
            }) if *generation == h.generation => Some(c),
            _ => None,
        }
    }

    /// The connection behind a handle.
    pub fn connection(&self, h: SocketHandle) -> Option<&Connection> {
        self.conn_slot_ref(h).map(|c| &c.conn)
    }

    /// A connection's slot and the stack's counters together (disjoint borrows), for calls
    /// into the connection that count things.
    pub(super) fn slot_and_counters(
        &mut self,
        h: SocketHandle,
    ) -> Option<(&mut ConnSlot, &mut Counters)> {
        match self.slots.get_mut(h.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Conn(c),
            }) if *generation == h.generation => Some((c, &mut self.counters)),
            _ => None,
        }
    }

    pub(super) fn conn_or_err(&mut self, h: SocketHandle) -> io::Result<&mut ConnSlot> {
        self.conn_slot(h).ok_or_else(not_connected)
    }

    /// After anything touched a connection: queue it for transmission, then [`refresh`].
    pub(super) fn touched(&mut self, h: SocketHandle, now: Instant) {
        self.refresh_queueing(h, now, true, true);
    }

    /// A socket call on connection `h` that moves data: `call` is a write that queues it
    /// (`Connection::send_spared`, given the stack's spares for a first write's transmit
    /// state; `which` is [`Shortcut::Write`]) or a read that takes some
    /// (`Connection::recv`, [`Shortcut::Read`]); then what [`touched`](Self::touched) does,
    /// when `call` moved a byte or `always`, on the slot the call was made on (one lookup
    /// for both).
    ///
    /// Neither call arms or moves a timer, changes the state or reports an event (a read may
    /// owe a window update or a delayed ACK: the transmit queue, where this puts the
    /// connection, sends it; a read of the FIN takes nothing and does not come here), so for
    /// an open connection (no listener to report to, not closed or in TIME-WAIT, whose parts
    /// a read may free, no trace) the refresh has nothing to do but report it changed: its
    /// deadline is the one already queued. No `poll_timeout` then.
    #[inline(always)]
    pub(super) fn data_call(
        &mut self,
        h: SocketHandle,
        now: Instant,
        which: Shortcut,
        always: bool,
        call: impl FnOnce(&mut Connection, &mut Spares) -> Result<usize, crate::tcp::Error>,
    ) -> io::Result<usize> {
        let name_trace = self.cfg.trace;
        let c = conn_in(&mut self.slots, h).ok_or_else(not_connected)?;
        let n = call(&mut c.conn, &mut self.spares).map_err(io::Error::from)?;
        if n == 0 && !always {
            return Ok(n);
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty.push_back(h);
        }
        let state = c.conn.state();
        if c.parent.is_none()
            && !name_trace
            && state.is_synchronized()
            && state != State::TimeWait
            && shortcuts::on()
        {
            if c.user
                && let Some(q) = self.changed.as_mut()
            {
                queue_changed(q, c, h);
            }
            debug_assert!(
                self.refreshed(h),
                "a {which:?} call changed the connection's deadline"
            );
            shortcuts::taken(which);
            return Ok(n);
        }
        self.refresh(h, now);
        Ok(n)
    }

    /// Turns on (or off) the queue of [`poll_changed`](Self::poll_changed). Off by default, so
    /// a stack nobody asks costs nothing and holds nothing.
    pub fn report_changes(&mut self, on: bool) {
        self.changed = on.then(VecDeque::new);
        self.udp.report_changes(on);
    }

    /// The next socket something happened to (a segment, a timer, a socket call; a listener
    /// whose accept queue grew), each once until read: what a driver needs to publish
    /// per-socket readiness without looking at every socket. See
    /// [`report_changes`](Self::report_changes). A handle may be stale (the socket is gone).
    pub fn poll_changed(&mut self) -> Option<SocketHandle> {
        loop {
            let h = self.changed.as_mut()?.pop_front()?;
            match self.conn_slot(h) {
                // Looked at since it was queued (see `settled`).
                Some(c) if !c.changed => continue,
                Some(c) => c.changed = false,
                None => {}
            }
            return Some(h);
        }
    }

    /// The driver has just looked at connection `h` (after its own calls on it, which
    /// count as changes too): [`poll_changed`](Self::poll_changed) skips it until something
    /// happens to it again.
    pub fn settled(&mut self, h: SocketHandle) {
        if let Some(c) = self.conn_slot(h) {
            c.changed = false;
        }
    }

    pub(super) fn mark_changed(&mut self, h: SocketHandle) {
        let Some(q) = self.changed.as_mut() else {
            return;
        };
        match conn_in(&mut self.slots, h) {
            Some(c) => queue_changed(q, c, h),
            // A listener: a few entries per accepted connection at most.
            None => q.push_back(h),
        }
    }

    /// Update a connection's timer, collect its events, move it between the listener queues,
    /// and free it when it is finished.
    pub(super) fn refresh(&mut self, h: SocketHandle, now: Instant) {
        self.refresh_reporting(h, now, true);
    }

    /// [`refresh`](Self::refresh), reporting the connection changed (see
    /// [`poll_changed`](Self::poll_changed)) only if `report`.
    pub(super) fn refresh_reporting(&mut self, h: SocketHandle, now: Instant, report: bool) {
        self.refresh_queueing(h, now, report, false);
    }

    /// [`refresh_reporting`](Self::refresh_reporting), queueing the connection for
    /// transmission first if `queue` (what [`touched`](Self::touched) does): one slot lookup
    /// for both.
    #[inline(always)]
    fn refresh_queueing(&mut self, h: SocketHandle, now: Instant, report: bool, queue: bool) {
        self.call_and_refresh(h, now, report, queue, |_, _| {
            Ok::<(), core::convert::Infallible>(())
        });
    }

    /// What [`settle`] left of the refresh of connection `h`.
    #[cold]
    fn refresh_rest_of(&mut self, h: SocketHandle, now: Instant, rest: Rest) {
        match rest {
            Rest::Parts => self.time_wait_parts(h),
            Rest::Whole {
                state,
                parent,
                user,
            } => self.refresh_rest(h, now, state, parent, user),
        }
    }

    /// What the refresh left to [`compact_time_wait`](Self::compact_time_wait) for connection
    /// `h` in TIME-WAIT (see `compacts_soon`) when it stays whole: its wheel entry moved to
    /// the final deadline, its parts given.
    #[cold]
    pub(super) fn time_wait_stays(&mut self, h: SocketHandle) {
        let Some(c) = conn_in(&mut self.slots, h) else {
            return;
        };
        if let Some(t) = c.conn.poll_timeout() {
            queue_deadline(&mut self.timers, c, h, t, |_| true);
        }
        if !c.parts_given {
            self.time_wait_parts(h);
        }
    }

    /// What a connection in TIME-WAIT no longer needs (its rings and scoreboard, empty),
    /// kept for the next connections. Out of line: it happens once per connection.
    #[cold]
    #[inline(never)]
    fn time_wait_parts(&mut self, h: SocketHandle) {
        if let Some(Slot {
            kind: SlotKind::Conn(c),
            ..
        }) = self.slots.get_mut(h.index as usize)
        {
            // Given for good only if nothing was kept back (unread received bytes keep the
            // receive ring until the application reads them; the next refresh gives it).
            c.parts_given = c.conn.give_parts(&mut self.spares);
        }
    }

    /// The rest of [`refresh`](Self::refresh): trace events, a listener's child, a closed
    /// connection.
    #[cold]
    fn refresh_rest(
        &mut self,
        h: SocketHandle,
        now: Instant,
        state: State,
        parent: Option<SocketHandle>,
        user: bool,
    ) {
        let name_trace = self.cfg.trace;
        if state == State::TimeWait {
            self.time_wait_parts(h);
        }
        let Some(c) = self.conn_slot(h) else { return };
        // Finished and nobody will read it any more.
        let finished =
            parent.is_none() && state == State::Closed && (c.released || !user) && !c.dirty;
        // A listener's child that the handshake made: it goes to the accept queue (below),
        // written so on this lookup; if the listener went away, set right there.
        let to_accept = parent.is_some()
            && !user
            && !matches!(state, State::SynReceived | State::Listen | State::Closed);
        if to_accept {
            c.parent = None;
            c.user = true;
        }
        if name_trace {
            let (local, remote, iss) = (c.conn.local(), c.conn.remote(), c.conn.iss());
            let mut events = Vec::new();
            while let Some(e) = c.conn.poll_event() {
                events.push(e);
            }
            for e in events {
                self.trace_event(now, local, remote, iss, e);
            }
        }
        if user {
            self.mark_changed(h);
        }
        // A child of a listener: move it to the accept queue once established, drop it when
        // the handshake failed.
        match parent {
            Some(p) if !user => {
                match state {
                    State::SynReceived => {}
                    State::Listen | State::Closed => self.remove_conn(h),
                    _ => {
                        if let Some(l) = self.listener_slot(p) {
                            l.accept_queue.push_back(h);
                            self.mark_changed(p);
                        } else if let Some(c) = self.conn_slot(h) {
                            // The listener went away: nobody will accept this one.
                            c.user = false;
                            c.released = true;
                        }
                    }
                }
                // No `reap`: it acts on a closed connection only, and a closed child went
                // above (this refresh changed no state).
            }
            _ if finished => self.remove_conn(h),
            // Closed but still held by its application: out of the demux (see `reap`).
            _ if state == State::Closed => self.reap(h),
            _ => {}
        }
    }

    /// Frees a connection that is finished and that nobody will read any more. One that is
    /// finished but still held by its application leaves the demux only (Linux unhashes a
    /// socket in tcp_done()): the slot keeps its error for the next call, while a new SYN for
    /// the same 4-tuple reaches the listener and the port can be connected from again.
    fn reap(&mut self, h: SocketHandle) {
        let Some(c) = conn_in(&mut self.slots, h) else {
            return;
        };
        if c.conn.state() != State::Closed {
            return;
        }
        let done = (c.released || !c.user) && c.parent.is_none();
        if done && !c.dirty {
            self.remove_conn(h);
        } else if c.user && c.parent.is_none() && !c.unhashed {
            c.unhashed = true;
            self.conns.remove_at(c.bucket, h, || tuple_of(&c.conn));
        }
    }

    /// Takes connection `h` out of the demux table (unless [`reap`](Self::reap) did) and
    /// frees its slot: one slot lookup for both.
    pub(super) fn remove_conn(&mut self, h: SocketHandle) {
        let Some(s) = self.slots.get_mut(h.index as usize) else {
            return;
        };
        let SlotKind::Conn(c) = &mut s.kind else {
            return;
        };
        if s.generation != h.generation {
            return;
        }
        if !c.unhashed {
            self.conns.remove_at(c.bucket, h, || tuple_of(&c.conn));
        }
        free_slot(s, h, &mut self.spares, &mut self.free, &mut self.timers);
    }

    /// Takes `tuple` out of the demux table if it maps to `h` (one lookup).
    pub(super) fn unhash(&mut self, tuple: Tuple, h: SocketHandle) {
        self.conns.remove(&tuple, h);
    }

    /// Every connection the stack holds as a whole TCB (including unaccepted ones and those in
    /// TIME-WAIT that stayed whole); the compact TIME-WAIT entries are not among them
    /// ([`time_wait_count`](Self::time_wait_count)).
    pub fn connections(&self) -> impl Iterator<Item = &Connection> + '_ {
        self.slots.iter().filter_map(|s| match &s.kind {
            SlotKind::Conn(c) => Some(&c.conn),
            _ => None,
        })
    }

    /// Every connection [`connections`](Self::connections) lists, to change (see
    /// [`Connection::config_mut`]); the compact TIME-WAIT entries' settings are
    /// [`time_wait_configs_mut`](Self::time_wait_configs_mut).
    pub fn connections_mut(&mut self) -> impl Iterator<Item = &mut Connection> + '_ {
        self.slots.iter_mut().filter_map(|s| match &mut s.kind {
            SlotKind::Conn(c) => Some(&mut c.conn),
            _ => None,
        })
    }

    /// Number of connections in the demux table: whole connections and compact TIME-WAIT
    /// entries (for tests and memory accounting), not the half-open entries it also holds
    /// ([`syn_queue_len`](Self::syn_queue_len)).
    pub fn connection_count(&self) -> usize {
        debug_assert!(self.conns.len() >= self.syn_queue.len());
        self.conns.len().saturating_sub(self.syn_queue.len())
    }
}
