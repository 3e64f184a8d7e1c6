//! Per-socket readiness: what the driver publishes after each turn, and what a socket call
//! waits on when the stack has nothing for it yet.
//!
//! Every socket has one [`SocketIo`]: its readiness bits, one waker per direction for async
//! tasks (a reader and a writer, as tokio's own sockets have) and one condition variable per
//! direction for blocked threads. The driver learns which sockets something happened to from
//! [`Stack::poll_changed`] and sets their bits; a task or thread is woken only when a bit it
//! waits for turns on, and only for its own socket and direction. A socket call that finds
//! nothing to do clears its bit under the lock the driver publishes under (the socket's own,
//! or, for a call the driver ran, by the driver itself), so no later change is missed.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::pipe::{self, Pipe, Step};
use crate::stack::hash::KeyedHasher;
use crate::stack::{SocketHandle, Stack, UdpHandle};
use crate::tcp::State;
use crate::time::Instant;

/// A read (or an accept) would not block.
pub(crate) const READABLE: u8 = 1;
/// A write would not block.
pub(crate) const WRITABLE: u8 = 2;
/// The connection is closed or failed: every call returns at once.
pub(crate) const CLOSED: u8 = 4;
/// The runtime stopped: every call fails.
pub(crate) const STOPPED: u8 = 8;

std::thread_local! {
    /// This thread is running the reader of a `write_from`, under that socket's lock.
    static IN_WRITE_FROM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `read`, a `write_from`'s reader, marked as such: a call on any socket of a runtime
/// from inside it fails (see [`reentered`]) instead of taking a socket lock, which could
/// deadlock (the same socket's lock is held; two opposite copies, each reading the other's
/// socket, would each hold one and wait for the other, and the driver behind them).
pub(crate) fn inside_write_from<T>(read: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_WRITE_FROM.with(|f| f.set(self.0));
        }
    }
    let _reset = Reset(IN_WRITE_FROM.with(|f| f.replace(true)));
    read()
}

/// Why a socket call cannot run here: it is inside a `write_from`'s reader.
fn reentered() -> Option<io::Error> {
    IN_WRITE_FROM.with(|f| f.get()).then(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a runtime socket cannot be used from inside a write_from's reader",
        )
    })
}

#[derive(Default)]
pub(crate) struct IoState {
    ready: u8,
    /// A stream's bytes between its handle and the driver.
    pub(crate) pipe: Pipe,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// Threads blocked in [`SocketIo::wait`] for reading (or accepting) and for writing.
    sleepers: [u32; 2],
}

/// One socket's readiness, waiters and (a stream's) pipe.
pub(crate) struct SocketIo {
    state: Mutex<IoState>,
    /// Blocked readers' and writers' condition variables (this socket's alone).
    cond: [Condvar; 2],
    /// The socket's host (its index in the runtime) and handle.
    pub(crate) host: usize,
    pub(crate) id: Id,
    pub(crate) kind: Kind,
}

impl SocketIo {
    pub(crate) fn new(host: usize, id: Id, kind: Kind) -> SocketIo {
        SocketIo {
            state: Mutex::default(),
            cond: [Condvar::new(), Condvar::new()],
            host,
            id,
            kind,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, IoState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `ready` and wakes the waiters of the bits that turned on. Returns how many
    /// wake-ups that was (a task, or this socket's blocked threads).
    pub(crate) fn set(&self, ready: u8) -> u64 {
        self.publish(self.lock(), ready)
    }

    /// [`set`](Self::set) with the socket's lock held (it is released).
    pub(crate) fn publish(&self, mut s: MutexGuard<'_, IoState>, ready: u8) -> u64 {
        let gained = ready & !s.ready;
        s.ready = ready | (s.ready & STOPPED);
        if gained == 0 {
            return 0;
        }
        let all = CLOSED | STOPPED;
        let reader = (gained & (READABLE | all) != 0)
            .then(|| s.reader.take())
            .flatten();
        let writer = (gained & (WRITABLE | all) != 0)
            .then(|| s.writer.take())
            .flatten();
        let sleepers = [
            gained & (READABLE | all) != 0 && s.sleepers[0] > 0,
            gained & (WRITABLE | all) != 0 && s.sleepers[1] > 0,
        ];
        drop(s);
        let mut n = 0;
        for w in [reader, writer].into_iter().flatten() {
            w.wake();
            n += 1;
        }
        for (cond, woken) in self.cond.iter().zip(sleepers) {
            if woken {
                // The threads blocked on this socket in this direction (clones of one
                // socket may wait together, as on a kernel socket).
                cond.notify_all();
                n += 1;
            }
        }
        n
    }

    /// Turns `bits` off: a call the driver ran found nothing to do (the driver calls it, so
    /// no publication of its own comes between).
    pub(crate) fn clear(&self, bits: u8) {
        self.lock().ready &= !bits;
    }

    fn ready_for(s: &IoState, interest: u8) -> bool {
        s.ready & (interest | CLOSED | STOPPED) != 0
    }

    /// Ready for `interest` (or closed), or registers the task's waker for it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, interest: u8) -> Poll<()> {
        let mut s = self.lock();
        if Self::ready_for(&s, interest) {
            return Poll::Ready(());
        }
        Self::register(&mut s, cx, interest);
        Poll::Pending
    }

    /// Keeps the task's waker for `interest` unless the socket is closed (or the runtime
    /// stopped) already: true then. A task waiting on something else (a reader) sees this
    /// socket's failure this way, the closing bits being published under this same lock.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn watch_close(&self, cx: &mut Context<'_>, interest: u8) -> bool {
        let mut s = self.lock();
        if s.ready & (CLOSED | STOPPED) != 0 {
            return true;
        }
        Self::register(&mut s, cx, interest);
        false
    }

    /// A stream's: ready once its connection failed (a reset, a timeout) or the runtime
    /// stopped, else registers the task's waker as a reader's (a failure publishes CLOSED,
    /// which wakes it). A connection that ended with both FINs never gets ready here.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_failed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if s.pipe.failed || s.ready & STOPPED != 0 {
            return Poll::Ready(());
        }
        Self::register(&mut s, cx, READABLE);
        Poll::Pending
    }

    /// A stream's: ready once a read would not wait (bytes in the pipe, its end, the socket
    /// closed, the runtime stopped), else registers the task's waker as a read that has to
    /// wait does (READABLE cleared under the lock the driver publishes under, so no later
    /// delivery is missed). Reads nothing and leaves no call with the driver.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = reentered() {
            return Poll::Ready(Err(e));
        }
        let mut s = self.lock();
        if s.ready & STOPPED != 0 {
            return Poll::Ready(Err(super::runtime::stopped_error()));
        }
        if !s.pipe.rx.is_empty() || s.pipe.rx_end || s.ready & CLOSED != 0 {
            return Poll::Ready(Ok(()));
        }
        s.ready &= !READABLE;
        Self::register(&mut s, cx, READABLE);
        Poll::Pending
    }

    /// Keeps the task's waker for `interest` (one reader, one writer).
    fn register(s: &mut IoState, cx: &mut Context<'_>, interest: u8) {
        let slot = if interest & READABLE != 0 {
            &mut s.reader
        } else {
            &mut s.writer
        };
        match slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
    }

    /// Blocks the thread until ready for `interest` (or closed); `WouldBlock` at `deadline`.
    pub(crate) fn wait(
        &self,
        interest: u8,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<()> {
        self.wait_locked(self.lock(), interest, deadline).1
    }

    fn wait_locked<'a>(
        &'a self,
        mut s: MutexGuard<'a, IoState>,
        interest: u8,
        deadline: Option<std::time::Instant>,
    ) -> (MutexGuard<'a, IoState>, io::Result<()>) {
        let dir = Self::direction(interest);
        let cond = &self.cond[dir];
        s.sleepers[dir] += 1;
        let r = loop {
            if Self::ready_for(&s, interest) {
                break Ok(());
            }
            s = match deadline {
                None => cond.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break Err(io::Error::new(
                            io::ErrorKind::WouldBlock,
                            "timed out waiting on the socket",
                        ));
                    }
                    cond.wait_timeout(s, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        };
        s.sleepers[dir] -= 1;
        (s, r)
    }

    /// 0 for reading (and accepting), 1 for writing (and connecting).
    fn direction(interest: u8) -> usize {
        usize::from(interest & READABLE == 0)
    }

    /// One call on a stream's pipe (`step`, under this socket's lock only), blocking the
    /// thread on the socket's readiness while it says `Wait`: `WouldBlock` at once when
    /// `nonblocking`, or at `deadline`. Never returns `Wait`. The flag: the step marked the
    /// pipe for the driver (the caller queues it, see [`Pipe::mark`]).
    pub(crate) fn blocking_step<T>(
        &self,
        interest: u8,
        deadline: Option<std::time::Instant>,
        nonblocking: bool,
        mut step: impl FnMut(&mut Pipe, &mut bool) -> Step<T>,
    ) -> (Step<T>, bool) {
        if let Some(e) = reentered() {
            return (Step::Done(Err(e)), false);
        }
        let mut mark = false;
        let mut s = self.lock();
        loop {
            if let Some(done) = Self::first_step(&mut s, interest, &mut step, &mut mark) {
                return (done, mark);
            }
            if nonblocking {
                return (Step::Done(Err(would_block())), mark);
            }
            let (g, r) = self.wait_locked(s, interest, deadline);
            s = g;
            if let Err(e) = r {
                return (Step::Done(Err(e)), mark);
            }
        }
    }

    /// [`blocking_step`](Self::blocking_step) for a task: `Pending` with its waker
    /// registered while the step says `Wait`.
    pub(crate) fn poll_step<T>(
        &self,
        cx: &mut Context<'_>,
        interest: u8,
        mut step: impl FnMut(&mut Pipe, &mut bool) -> Step<T>,
    ) -> (Poll<Step<T>>, bool) {
        if let Some(e) = reentered() {
            return (Poll::Ready(Step::Done(Err(e))), false);
        }
        let mut mark = false;
        let mut s = self.lock();
        if let Some(done) = Self::first_step(&mut s, interest, &mut step, &mut mark) {
            return (Poll::Ready(done), mark);
        }
        Self::register(&mut s, cx, interest);
        (Poll::Pending, mark)
    }

    /// Runs `step` once: its outcome, or `None` (the `interest` bit cleared, under the lock
    /// the driver publishes under, so no later change is missed) when it has to wait.
    fn first_step<T>(
        s: &mut IoState,
        interest: u8,
        step: &mut impl FnMut(&mut Pipe, &mut bool) -> Step<T>,
        mark: &mut bool,
    ) -> Option<Step<T>> {
        if s.ready & STOPPED != 0 {
            return Some(Step::Done(Err(super::runtime::stopped_error())));
        }
        match step(&mut s.pipe, mark) {
            Step::Wait => {}
            other => return Some(other),
        }
        // Closed and still nothing: the stack knows why.
        if s.ready & CLOSED != 0 {
            return Some(Step::Slow);
        }
        s.ready &= !interest;
        None
    }
}

fn would_block() -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        "the socket is non-blocking and not ready",
    )
}

/// What a registered socket is, which says how its readiness is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Listener,
    Stream,
    Datagram,
}

/// A registered socket's handle in the stack: a TCP one, or a UDP one (`Kind::Datagram`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Id {
    Tcp(SocketHandle),
    Udp(UdpHandle),
}

/// The sockets of one host that an application holds, by handle (hashed with the stack's
/// word hash: handles are the stack's own, nobody else picks them).
pub(crate) struct Registry {
    sockets: HashMap<Id, (Kind, Arc<SocketIo>), KeyedHasher>,
    /// Datagram sockets that found the output queue full: writable again once the driver's
    /// next turn has drained it (the stack reports no change for that).
    send_blocked: Vec<UdpHandle>,
    /// The host's forward listener, if one is open: the forwarder's pending TCP flows go
    /// into its pipe (without one, they wait undecided until they expire).
    pub(crate) forward: Option<Arc<SocketIo>>,
    /// What each stream's pipe holds at most.
    pub(crate) caps: pipe::Caps,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            sockets: HashMap::with_hasher(KeyedHasher(0x5157_4e41_434b, 0x736f_636b)),
            send_blocked: Vec::new(),
            forward: None,
            caps: pipe::Caps::default(),
        }
    }
}

impl Registry {
    /// An empty registry whose streams' pipes hold at most `caps`.
    pub(crate) fn with_caps(caps: pipe::Caps) -> Registry {
        Registry {
            caps,
            ..Registry::default()
        }
    }

    /// Registers socket `h` of host `host` and publishes its readiness as of now (a
    /// stream's pipe takes what the connection received already).
    pub(crate) fn register(
        &mut self,
        stack: &mut Stack,
        now: Instant,
        host: usize,
        h: Id,
        kind: Kind,
    ) -> Arc<SocketIo> {
        let io = Arc::new(SocketIo::new(host, h, kind));
        match (kind, h) {
            (Kind::Stream, Id::Tcp(t)) => {
                let mut s = io.lock();
                s.pipe.cap = self.caps;
                s.pipe.ctl.register(stack, t);
                let r = pipe::sync(stack, now, t, &mut s.pipe);
                io.publish(s, r.ready);
            }
            (_, Id::Udp(u)) => {
                let mut s = io.lock();
                s.pipe.cap = self.caps;
                s.pipe.ctl.local = stack.udp_local_addr(u).ok().flatten();
                let r = pipe::sync_datagrams(stack, u, &mut s.pipe);
                io.publish(s, r);
            }
            (_, Id::Tcp(t)) => {
                io.set(readiness(stack, t, kind));
            }
        }
        self.sockets.insert(h, (kind, io.clone()));
        io
    }

    pub(crate) fn deregister(&mut self, h: Id) {
        self.sockets.remove(&h);
    }

    /// A send on datagram socket `h` found the output queue full (see `send_blocked`).
    pub(crate) fn send_blocked(&mut self, h: UdpHandle) {
        if !self.send_blocked.contains(&h) {
            self.send_blocked.push(h);
        }
    }

    /// Moves the bytes of every stream the stack reports changed and publishes the readiness
    /// of every socket it reports changed; counts wake-ups.
    /// Returns whether it handed the connections anything to send.
    pub(crate) fn publish(&mut self, stack: &mut Stack, now: Instant, wakeups: &AtomicU64) -> bool {
        let mut n = 0;
        let mut sent = false;
        while let Some(h) = stack.poll_changed() {
            let id = Id::Tcp(h);
            let Some((kind, io)) = self.sockets.get(&id) else {
                continue;
            };
            match kind {
                // The common case, without a reference count taken per event.
                Kind::Stream => {
                    let (w, s, closed) = sync_stream(stack, now, h, io);
                    n += w;
                    sent |= s;
                    if closed {
                        self.sockets.remove(&id);
                    }
                }
                Kind::Listener => {
                    let io = io.clone();
                    let (w, s) = self.sync(stack, now, &io);
                    n += w;
                    sent |= s;
                }
                Kind::Datagram => n += io.set(readiness(stack, h, *kind)),
            }
        }
        let set = |stack: &mut Stack, u: UdpHandle| match self.sockets.get(&Id::Udp(u)) {
            Some((_, io)) => sync_datagrams(stack, u, io),
            None => 0,
        };
        while let Some(h) = stack.poll_udp_changed() {
            n += set(stack, h);
        }
        while let Some(h) = self.send_blocked.pop() {
            n += set(stack, h);
        }
        n += self.publish_forward(stack, now);
        if n > 0 {
            wakeups.fetch_add(n, Ordering::Relaxed);
        }
        sent
    }

    /// One stream's [`pipe::sync`] and publication; forgets the socket once its pipe closed
    /// the handle. (Wake-ups, handed the connection something.)
    pub(crate) fn sync(&mut self, stack: &mut Stack, now: Instant, io: &SocketIo) -> (u64, bool) {
        let h = match io.id {
            Id::Tcp(h) => h,
            // A receive made room in its pipe for what the stack still holds.
            Id::Udp(u) => return (sync_datagrams(stack, u, io), false),
        };
        if io.kind == Kind::Listener {
            return self.sync_listener(stack, now, h, io);
        }
        let (n, sent, closed) = sync_stream(stack, now, h, io);
        if closed {
            self.sockets.remove(&io.id);
        }
        (n, sent)
    }

    /// Takes what listener `l`'s accept queue holds (as far as its pipe has room) into the
    /// pipe, registered; publishes its readiness. Returns the wake-ups, and whether it took
    /// any (their pipes may owe window updates).
    fn sync_listener(
        &mut self,
        stack: &mut Stack,
        now: Instant,
        l: SocketHandle,
        io: &SocketIo,
    ) -> (u64, bool) {
        let room = pipe::ACCEPT_CAP.saturating_sub(io.lock().pipe.q().accepted.len());
        let mut fresh = Vec::new();
        let mut closed = false;
        while fresh.len() < room {
            let c = match stack.accept(l) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                // Shut down or gone: accept asks the stack why.
                Err(_) => {
                    closed = true;
                    break;
                }
            };
            let peer = stack.connection(c).map(|c| c.remote());
            let cio = self.register(stack, now, io.host, Id::Tcp(c), Kind::Stream);
            // A connection is there right after accept: the fallback is never used.
            fresh.push((
                cio,
                peer.unwrap_or(core::net::SocketAddr::from(([0, 0, 0, 0], 0))),
            ));
        }
        let took = !fresh.is_empty();
        let mut s = io.lock();
        s.pipe.queued = false;
        s.pipe.q().accepted.extend(fresh);
        s.pipe.q().accept_blocked = stack.accept_queue_len(l) > 0;
        let mut ready = if s.pipe.q().accepted.is_empty() && !s.pipe.q().accept_blocked {
            0
        } else {
            READABLE
        };
        if closed {
            ready |= READABLE | CLOSED;
        }
        (io.publish(s, ready), took)
    }

    /// Resets the connections listener `io`'s pipe still holds (it is closing, as Linux
    /// resets the connections a closed listener never handed out).
    pub(crate) fn abort_unclaimed(&mut self, stack: &mut Stack, now: Instant, io: &SocketIo) {
        let unclaimed = io
            .lock()
            .pipe
            .queues
            .as_mut()
            .map(|q| std::mem::take(&mut q.accepted))
            .unwrap_or_default();
        for (c, _) in unclaimed {
            self.abort_registered(stack, now, &c);
        }
    }

    /// Resets registered connection `c`, which no handle holds, and forgets it.
    pub(crate) fn abort_registered(&mut self, stack: &mut Stack, now: Instant, c: &SocketIo) {
        if let Id::Tcp(h) = c.id {
            let mut s = c.lock();
            s.pipe.done = true;
            s.pipe.rx.clear();
            drop(s);
            stack.abort(now, h);
            self.sockets.remove(&c.id);
        }
    }

    /// Moves what the forwarder tells the application (pending TCP flows, echo requests, UDP
    /// flows that ended) and the connections SYN cookies completed on its accept queue
    /// (registered) into the forward listener's pipe, and publishes its readiness. Without
    /// a forward listener the events go; cookie connections wait on the stack's accept queue
    /// (bounded by its backlog). Returns the wake-ups.
    fn publish_forward(&mut self, stack: &mut Stack, now: Instant) -> u64 {
        use super::forward::{FWD_OTHER_CAP, Forwarded, TcpItem};
        let Some(io) = self.forward.clone() else {
            while stack.poll_forward().is_some() {}
            return 0;
        };
        let mut fresh = Vec::new();
        if let Some(f) = stack.forwarding()
            && stack.accept_queue_len(f.tcp) > 0
        {
            let held = io
                .lock()
                .pipe
                .q()
                .fwd
                .iter()
                .filter(|i| matches!(i, Forwarded::Flow(TcpItem::Established { .. })))
                .count();
            let room = pipe::ACCEPT_CAP.saturating_sub(held);
            while fresh.len() < room {
                let Ok(Some(c)) = stack.accept(f.tcp) else {
                    break;
                };
                let Some((src, dst)) = stack.connection(c).map(|c| (c.remote(), c.local())) else {
                    continue;
                };
                let cio = self.register(stack, now, io.host, Id::Tcp(c), Kind::Stream);
                fresh.push(Forwarded::Flow(TcpItem::Established { io: cio, src, dst }));
            }
        }
        let mut s = io.lock();
        let before = s.pipe.q().fwd.len();
        s.pipe.q().fwd.extend(fresh);
        while let Some(e) = stack.poll_forward() {
            let item = match e {
                crate::stack::ForwardEvent::Tcp(p) => Forwarded::Flow(TcpItem::Pending(p)),
                crate::stack::ForwardEvent::Echo(e) => Forwarded::Echo(e),
                crate::stack::ForwardEvent::UdpClosed {
                    client,
                    dst,
                    reason,
                } => Forwarded::UdpClosed {
                    client,
                    dst,
                    reason,
                },
            };
            // Only echo requests are capped: a UDP flow's end is never dropped (the
            // application frees what carries the flow upstream on it; there are at most as
            // many as the stack's flow table holds flows at once).
            if item.is_echo() {
                if s.pipe.q().fwd_other >= FWD_OTHER_CAP
                    && let Some(i) = s.pipe.q().fwd.iter().position(Forwarded::is_echo)
                {
                    // Nobody takes them (a listener only accepting): the oldest goes, counted.
                    s.pipe.q().fwd.remove(i);
                    s.pipe.q().fwd_other -= 1;
                    s.pipe.q().echoes_dropped += 1;
                }
                s.pipe.q().fwd_other += 1;
            }
            s.pipe.q().fwd.push_back(item);
        }
        if s.pipe.q().fwd.len() == before {
            return 0;
        }
        io.publish(s, READABLE)
    }

    /// Wakes everything: the runtime stopped.
    pub(crate) fn stop_all(&self) {
        for (_, io) in self.sockets.values() {
            io.set(STOPPED | CLOSED);
        }
        if let Some(io) = &self.forward {
            io.set(STOPPED | CLOSED);
        }
    }

    /// A socket `h` is registered.
    pub(crate) fn contains(&self, h: Id) -> bool {
        self.sockets.contains_key(&h)
    }

    pub(crate) fn len(&self) -> usize {
        self.sockets.len()
    }
}

/// Stream `h`'s [`pipe::sync`] and publication: (wake-ups, handed the connection
/// something, the pipe closed the handle).
fn sync_stream(
    stack: &mut Stack,
    now: Instant,
    h: SocketHandle,
    io: &SocketIo,
) -> (u64, bool, bool) {
    let mut s = io.lock();
    if s.pipe.done {
        s.pipe.queued = false;
        return (0, false, false);
    }
    let r = pipe::sync(stack, now, h, &mut s.pipe);
    // What its own calls on the connection changed is published already.
    stack.settled(h);
    (io.publish(s, r.ready), r.sent, r.closed)
}

/// Datagram socket `u`'s [`pipe::sync_datagrams`] and publication: the wake-ups.
fn sync_datagrams(stack: &mut Stack, u: UdpHandle, io: &SocketIo) -> u64 {
    let mut s = io.lock();
    let r = pipe::sync_datagrams(stack, u, &mut s.pipe);
    io.publish(s, r)
}

/// A socket's readiness, from the stack.
/// (A datagram socket's comes from its pipe: [`pipe::sync_datagrams`].)
fn readiness(stack: &mut Stack, h: SocketHandle, kind: Kind) -> u8 {
    match kind {
        // A datagram socket has a UDP handle (`sync_datagrams`), never a TCP one.
        Kind::Datagram => READABLE | WRITABLE | CLOSED,
        Kind::Listener => {
            if stack.accept_queue_len(h) > 0 {
                READABLE
            } else {
                0
            }
        }
        Kind::Stream => match stack.connection(h) {
            None => READABLE | WRITABLE | CLOSED,
            Some(c) => {
                let state = c.state();
                let closed = state == State::Closed || c.error().is_some();
                let mut r = 0;
                if c.is_readable() || closed {
                    r |= READABLE;
                }
                // A connection still in its handshake is not writable yet (connect waits on
                // this bit), as a kernel socket is not.
                let handshake = matches!(state, State::SynSent | State::SynReceived);
                if closed || (!handshake && (c.send_capacity() > 0 || !state.can_send())) {
                    r |= WRITABLE;
                }
                if closed {
                    r |= CLOSED;
                }
                r
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::SocketIo;

    /// A stream's state, one per connection (10,000 of them in a forwarder holding as many
    /// flows), carries the queues that only listeners, forward listeners and datagram
    /// sockets use as one pointer: 312 bytes with the tests' counters, where those queues
    /// inline made it 424.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_streams_state_carries_no_queues_of_other_sockets() {
        assert!(
            size_of::<SocketIo>() <= 320,
            "{} bytes",
            size_of::<SocketIo>()
        );
    }
}
