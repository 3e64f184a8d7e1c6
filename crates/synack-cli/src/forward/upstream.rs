//! The upstream side of the forwarded TCP flows, on a thread of its own.
//!
//! The forwarding loop owns the stack and the TUN device; this thread owns every flow's
//! upstream [`TcpStream`] and does all its reads and writes. Writing to a kernel socket does
//! much of the receiver's work in the writer's context (over a veth pair, the peer's whole
//! receive path), so with the upstream I/O on its own thread two cores carry a stream
//! instead of one.
//!
//! The two threads meet in each flow's [`Shared`] state: one byte queue each way under a
//! small lock, with the half-closes and resets as flags. A queue's bytes are handed over by
//! swapping buffers, never copied: the loop reads the stack's bytes straight into the queue
//! toward upstream, and this thread swaps that buffer for its empty one before writing it;
//! upstream's bytes are read into a buffer without the lock, which then joins the queue
//! toward the client as it is ([`ChunkQueue`], a queue of buffers: a small read's bytes are
//! copied onto the last one instead). Each queue holds at most [`QUEUE_CAP`] bytes; past it
//! the side that fills it stops (the stack's receive window then closes toward the client, or upstream's
//! socket buffer fills) until the other side drains it and wakes it. Each side wakes the other through an eventfd ([`Waker`]), and
//! only for a flow that has something new ([`Shared::for_stack`], [`Upstream::mark`]).
//!
//! The thread sleeps in epoll(7), each upstream socket registered once, edge-triggered, for
//! reading and writing: a wake costs the sockets that are ready, not one entry per flow as
//! poll(2) would (10,000 idle flows are 10,000 entries a wake). Edge-triggered is enough
//! because a flow's pump reads and writes until the socket would block, or stops on a full
//! queue and is marked again by the loop once there is room.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use synack::stack::SocketHandle;

use rustix::buffer::spare_capacity;
use rustix::event::{EventfdFlags, Timespec, epoll, eventfd};

/// Bytes a flow's queue holds one way, at most, on top of the stack's and the kernel
/// socket's buffers.
pub(super) const QUEUE_CAP: usize = 256 << 10;

/// The most read at once, from the stack or from an upstream socket.
pub(super) const CHUNK: usize = 64 << 10;

/// Reads up to this size get a buffer of their own size; larger ones a [`Pool`] buffer.
const SMALL: usize = 4 << 10;

/// Buffers a [`Pool`] keeps, at most (4 MiB of [`CHUNK`]s, whatever the number of flows:
/// the queues toward the clients of a dozen busy flows).
const POOL_MAX: usize = 64;

/// Buffers a [`ChunkQueue`] holds at most (past it the upstream thread stops reading, as
/// past [`QUEUE_CAP`] bytes): many small reads do not hold a buffer each.
const QUEUE_CHUNKS: usize = 2 * QUEUE_CAP / CHUNK;

/// Buffers of [`CHUNK`] bytes (initialized) that the queues of the busy flows pass around:
/// a queue found empty gives its buffer back, so that an idle flow holds none, and a busy one
/// takes one without allocating and zeroing it again.
#[derive(Default)]
pub(super) struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn take(&self) -> Vec<u8> {
        let b = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        b.unwrap_or_else(|| vec![0; CHUNK])
    }

    fn give(&self, b: Vec<u8>) {
        if b.len() >= CHUNK {
            let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOL_MAX {
                pool.push(b);
            }
        }
    }
}

/// Wakes a thread sleeping in poll(2): an eventfd.
#[derive(Clone)]
pub(super) struct Waker(pub(super) Arc<OwnedFd>);

impl Waker {
    pub(super) fn new() -> io::Result<Waker> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Waker(Arc::new(fd)))
    }

    pub(super) fn wake(&self) {
        // Fails only when the counter is full, which means it is readable already.
        let _ = rustix::io::write(&*self.0, &1u64.to_ne_bytes());
    }

    /// Clears a wake-up that poll(2) reported.
    pub(super) fn clear(&self) {
        let mut b = [0u8; 8];
        let _ = rustix::io::read(&*self.0, &mut b);
    }
}

/// A byte queue: `buf[start..end]` are the bytes; `buf` stays initialized up to its length,
/// so that reading into it needs no zeroing after its first growth.
#[derive(Default)]
pub(super) struct Chunk {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Chunk {
    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops the first `n` bytes.
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// `n` bytes of room after the data, to be [`commit`](Chunk::commit)ted.
    pub(super) fn room(&mut self, n: usize) -> &mut [u8] {
        if self.start > 0 && self.buf.len() - self.end < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < n {
            self.buf.resize(self.end + n, 0);
        }
        &mut self.buf[self.end..self.end + n]
    }

    /// [`room`](Chunk::room), with a buffer from `pool` for a large read into an empty
    /// queue.
    pub(super) fn room_in(&mut self, pool: &Pool, n: usize) -> &mut [u8] {
        if self.buf.is_empty() && n > SMALL {
            self.buf = pool.take();
        }
        self.room(n)
    }

    /// An empty queue's buffer goes back to `pool` (or is freed).
    pub(super) fn release(&mut self, pool: &Pool) {
        if self.is_empty() && !self.buf.is_empty() {
            pool.give(std::mem::take(&mut self.buf));
        }
    }

    /// The first `n` bytes of the last [`room`](Chunk::room) hold data now.
    pub(super) fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }
}

/// A byte queue made of whole buffers: one joins it without a copy, and the bytes are taken
/// from the front one.
#[derive(Default)]
pub(super) struct ChunkQueue {
    chunks: std::collections::VecDeque<Chunk>,
    len: usize,
}

impl ChunkQueue {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first buffer's bytes that holds any (the queue's first bytes; empty when the
    /// queue is).
    pub(super) fn data(&self) -> &[u8] {
        self.chunks
            .iter()
            .find(|c| !c.is_empty())
            .map_or(&[], Chunk::data)
    }

    /// Drops the first `n` bytes; emptied buffers wait for [`release`](Self::release).
    pub(super) fn consume(&mut self, mut n: usize) {
        for c in self.chunks.iter_mut() {
            if n == 0 {
                break;
            }
            let k = n.min(c.len());
            c.consume(k);
            self.len -= k;
            n -= k;
        }
    }

    /// Gives the emptied front buffers back to `pool`.
    pub(super) fn release(&mut self, pool: &Pool) {
        while self.chunks.front().is_some_and(Chunk::is_empty) {
            if let Some(mut c) = self.chunks.pop_front() {
                c.release(pool);
            }
        }
    }

    /// Takes `c`'s bytes: its buffer joins the queue, or, for a few bytes that fit in the
    /// last buffer's room, they are copied there. `c` is empty afterwards.
    fn push(&mut self, c: &mut Chunk) {
        let n = c.len();
        if n == 0 {
            return;
        }
        self.len += n;
        if n <= SMALL {
            if let Some(last) = self.chunks.back_mut() {
                if last.buf.len() - last.end >= n {
                    last.room(n).copy_from_slice(c.data());
                    last.commit(n);
                    c.consume(n);
                    return;
                }
            }
        }
        self.chunks.push_back(std::mem::take(c));
    }

    /// Whether it is at most half full (bytes and buffers): the upstream thread, stopped
    /// on a full queue, is woken then.
    pub(super) fn half_empty(&self) -> bool {
        self.len < QUEUE_CAP / 2 && self.chunks.len() < QUEUE_CHUNKS / 2
    }

    /// Whether it holds all it may (bytes or buffers).
    fn full(&self) -> bool {
        self.len >= QUEUE_CAP || self.chunks.len() >= QUEUE_CHUNKS
    }
}

/// What the two threads share of one flow, under [`Shared::lock`].
#[derive(Default)]
pub(super) struct State {
    /// The client's bytes, read from the stack, not yet taken by the upstream thread.
    pub(super) to_up: Chunk,
    /// Upstream's bytes, not yet taken by the stack.
    pub(super) to_client: ChunkQueue,
    /// The client's FIN was read: upstream gets a shutdown once `to_up` is written.
    pub(super) client_fin: bool,
    /// Upstream's end of stream was read: the client gets our FIN once `to_client` is taken.
    pub(super) up_eof: bool,
    /// The client takes nothing more: upstream is not read any further.
    pub(super) stop_reading: bool,
    /// A reset on either side: the other side is torn down too, nothing more is copied.
    pub(super) reset: bool,
    /// The loop stopped reading the stack with `to_up` full: wake it once there is room.
    pub(super) stack_blocked: bool,
    /// The upstream thread stopped reading with `to_client` full: wake it once there is room.
    pub(super) up_blocked: bool,
}

/// One flow's state shared by the forwarding loop and the upstream thread.
pub(super) struct Shared {
    id: u64,
    /// The flow's connection in the stack, by which the loop knows it.
    handle: SocketHandle,
    state: Mutex<State>,
    /// The upstream thread changed something the loop must look at (and put the flow in
    /// [`Upstream::take_news`]'s list).
    pub(super) for_stack: AtomicBool,
    /// In the upstream thread's list of flows to look at.
    marked: AtomicBool,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The forwarding loop's handle on the upstream thread.
pub(super) struct Upstream {
    new: mpsc::Sender<(Arc<Shared>, TcpStream)>,
    /// The flows the loop has news from this thread for.
    news: Arc<Mutex<Vec<SocketHandle>>>,
    marked: Arc<Mutex<Vec<Arc<Shared>>>>,
    waker: Waker,
    stop: Arc<AtomicBool>,
    pool: Arc<Pool>,
    next_id: AtomicU64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    /// Starts the thread; `stack` wakes the forwarding loop.
    pub(super) fn start(stack: Waker) -> io::Result<Upstream> {
        let (new, rx) = mpsc::channel();
        let marked = Arc::new(Mutex::new(Vec::new()));
        let news = Arc::new(Mutex::new(Vec::new()));
        let waker = Waker::new()?;
        let stop = Arc::new(AtomicBool::new(false));
        let pool = Arc::new(Pool::default());
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(
            &ep,
            &*waker.0,
            epoll::EventData::new_u64(WAKER),
            epoll::EventFlags::IN,
        )?;
        let mut io = IoThread {
            epoll: ep,
            pool: pool.clone(),
            new: rx,
            news: news.clone(),
            marked: marked.clone(),
            waker: waker.clone(),
            stack,
            stop: stop.clone(),
            flows: HashMap::new(),
            inb: Chunk::default(),
        };
        let thread = std::thread::Builder::new()
            .name("synack-upstream".into())
            .spawn(move || io.run())?;
        Ok(Upstream {
            new,
            news,
            marked,
            waker,
            stop,
            pool,
            next_id: AtomicU64::new(0),
            thread: Some(thread),
        })
    }

    /// Hands `up`, the upstream connection of the flow whose connection in the stack is
    /// `handle`, to the thread; the loop keeps the state.
    pub(super) fn add(&self, up: TcpStream, handle: SocketHandle) -> Arc<Shared> {
        let shared = Arc::new(Shared {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            handle,
            state: Mutex::new(State::default()),
            for_stack: AtomicBool::new(false),
            marked: AtomicBool::new(false),
        });
        let _ = self.new.send((shared.clone(), up));
        self.waker.wake();
        shared
    }

    /// Adds the flows the thread has news for (since the last call) to `out`.
    pub(super) fn take_news(&self, out: &mut Vec<SocketHandle>) {
        out.append(&mut self.news.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The buffers the queues share.
    pub(super) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Asks the thread to look at `flow` (bytes queued, a half-close, a reset, room made).
    pub(super) fn mark(&self, flow: &Arc<Shared>) {
        if !flow.marked.swap(true, Ordering::AcqRel) {
            self.marked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(flow.clone());
            self.waker.wake();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One flow as the upstream thread holds it.
struct IoFlow {
    shared: Arc<Shared>,
    sock: TcpStream,
    /// The client's bytes being written (swapped out of `to_up`).
    out: Chunk,
    /// The client's FIN went upstream as a shutdown.
    fin_sent: bool,
    /// Upstream's end of stream was read (or the client takes nothing more).
    eof: bool,
}

struct IoThread {
    /// [`Upstream::news`].
    news: Arc<Mutex<Vec<SocketHandle>>>,
    /// Every flow's socket (edge-triggered, the flow's id as data) and the waker.
    epoll: std::os::fd::OwnedFd,
    new: mpsc::Receiver<(Arc<Shared>, TcpStream)>,
    marked: Arc<Mutex<Vec<Arc<Shared>>>>,
    waker: Waker,
    stack: Waker,
    stop: Arc<AtomicBool>,
    flows: HashMap<u64, IoFlow>,
    pool: Arc<Pool>,
    /// Where upstream's bytes are read (without the lock) before they join a flow's queue.
    inb: Chunk,
}

/// The longest the thread sleeps (a bound, not a poll interval: every event wakes it).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Events taken from epoll per wake, at most (more wait for the next).
const EVENTS: usize = 256;

/// The epoll data of the waker (flow ids count up from 0).
const WAKER: u64 = u64::MAX;

impl IoThread {
    fn run(&mut self) {
        let mut ready: Vec<u64> = Vec::new();
        // Here, not in the struct: an event's data may be a pointer, which is not Send.
        let mut events: Vec<epoll::Event> = Vec::with_capacity(EVENTS);
        while !self.stop.load(Ordering::Relaxed) {
            while let Ok((shared, sock)) = self.new.try_recv() {
                let id = shared.id;
                let mut f = IoFlow {
                    shared,
                    sock,
                    out: Chunk::default(),
                    fin_sent: false,
                    eof: false,
                };
                let watch = epoll::EventFlags::IN
                    | epoll::EventFlags::OUT
                    | epoll::EventFlags::RDHUP
                    | epoll::EventFlags::ET;
                if epoll::add(&self.epoll, &f.sock, epoll::EventData::new_u64(id), watch).is_err() {
                    // Never to be woken: the client gets a RST rather than a flow that hangs.
                    reset(&mut f);
                    tell(&self.news, &f.shared);
                    self.stack.wake();
                    continue;
                }
                ready.push(id);
                self.flows.insert(id, f);
            }
            let marked =
                std::mem::take(&mut *self.marked.lock().unwrap_or_else(|p| p.into_inner()));
            for s in marked {
                s.marked.store(false, Ordering::Release);
                ready.push(s.id);
            }
            let mut wake_stack = false;
            for id in ready.drain(..) {
                let Some(f) = self.flows.get_mut(&id) else {
                    continue;
                };
                let (done, woke) = pump(f, &self.pool, &mut self.inb);
                if woke {
                    tell(&self.news, &f.shared);
                }
                wake_stack |= woke;
                if done {
                    self.flows.remove(&id);
                }
            }
            if wake_stack {
                self.stack.wake();
            }
            self.wait(&mut events, &mut ready);
        }
    }

    /// Sleeps until a socket is ready (its id in `ready`) or the thread is woken.
    fn wait(&mut self, events: &mut Vec<epoll::Event>, ready: &mut Vec<u64>) {
        let ts = Timespec {
            tv_sec: MAX_WAIT.as_secs() as i64,
            tv_nsec: 0,
        };
        events.clear();
        if epoll::wait(&self.epoll, spare_capacity(events), Some(&ts)).is_err() {
            // EINTR (a signal): just look again.
            return;
        }
        for e in events.iter() {
            match e.data.u64() {
                WAKER => self.waker.clear(),
                id => ready.push(id),
            }
        }
    }
}

/// Tells the loop that `flow` has news (once until it looks).
fn tell(news: &Mutex<Vec<SocketHandle>>, flow: &Shared) {
    if !flow.for_stack.swap(true, Ordering::AcqRel) {
        news.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(flow.handle);
    }
}

/// Moves what can move between `f`'s socket and its queues: whether the flow is over here,
/// and whether the forwarding loop has news.
///
/// `inb` is where upstream's bytes are read before they join the queue, shared by every
/// flow: it is empty between calls (what is read joins the queue, or is dropped, before
/// this returns).
fn pump(f: &mut IoFlow, pool: &Pool, inb: &mut Chunk) -> (bool, bool) {
    debug_assert!(inb.is_empty());
    let mut news = false;
    // A reset from the forwarding loop ends the flow whatever is pending either way.
    if f.shared.lock().reset {
        return close(f, news);
    }
    // The client's bytes upstream.
    loop {
        if f.out.is_empty() {
            let mut st = f.shared.lock();
            if st.reset {
                drop(st);
                return close(f, news);
            }
            if !st.to_up.is_empty() {
                std::mem::swap(&mut f.out, &mut st.to_up);
                if st.stack_blocked {
                    st.stack_blocked = false;
                    news = true;
                }
            } else {
                // Idle this way: neither queue keeps a buffer.
                f.out.release(pool);
                st.to_up.release(pool);
                if st.client_fin && !f.fin_sent {
                    f.fin_sent = true;
                    let _ = f.sock.shutdown(std::net::Shutdown::Write);
                }
                break;
            }
        }
        match f.sock.write(f.out.data()) {
            Ok(n) => f.out.consume(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return reset(f),
        }
    }
    // Upstream's bytes toward the client: read into `inb` without the lock, then queued
    // (each round looks at what the last read did).
    let mut would_block = false;
    loop {
        let mut st = f.shared.lock();
        if st.reset {
            drop(st);
            // What was read for a flow that is gone goes nowhere.
            inb.consume(inb.len());
            return close(f, news);
        }
        if st.stop_reading {
            // The client side can take no more: what was read is dropped with the flow.
            inb.consume(inb.len());
            f.eof = true;
            break;
        }
        if !inb.is_empty() {
            news |= st.to_client.is_empty();
            st.to_client.push(inb);
        }
        if f.eof && !st.up_eof {
            st.up_eof = true;
            news = true;
        }
        if f.eof || would_block || st.to_client.full() {
            st.up_blocked = !f.eof && !would_block;
            // `inb` is the thread's own buffer: it stays (empty) for the next flow.
            break;
        }
        drop(st);
        match f.sock.read(inb.room_in(pool, CHUNK)) {
            Ok(0) => f.eof = true,
            Ok(n) => inb.commit(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => would_block = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return reset(f),
        }
    }
    let done = f.fin_sent && f.out.is_empty() && f.eof;
    (done, news)
}

/// The upstream socket failed: the client gets a RST.
fn reset(f: &mut IoFlow) -> (bool, bool) {
    f.shared.lock().reset = true;
    let _ = f.sock.shutdown(std::net::Shutdown::Both);
    (true, true)
}

/// The client reset (or its connection is gone): upstream is shut down (std has no SO_LINGER
/// 0 for a RST).
fn close(f: &mut IoFlow, news: bool) -> (bool, bool) {
    let _ = f.sock.shutdown(std::net::Shutdown::Both);
    (true, news)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_queues_bytes_in_order() {
        let pool = Pool::default();
        let mut q = Chunk::default();
        q.room_in(&pool, 5).copy_from_slice(b"hello");
        q.commit(5);
        // A small read gets a buffer of its own size, not a pool buffer.
        assert_eq!(q.buf.len(), 5);
        q.room(6)[..6].copy_from_slice(b" world");
        q.commit(6);
        q.consume(6);
        assert_eq!(q.data(), b"world");
        // Room after a consumed head moves the bytes to the front instead of growing.
        q.room(4).copy_from_slice(b"!!!!");
        q.commit(2);
        assert_eq!(q.data(), b"world!!");
    }

    #[test]
    fn a_chunk_queue_takes_buffers_whole_and_small_reads_onto_the_last() {
        let pool = Pool::default();
        let mut q = ChunkQueue::default();
        let mut c = Chunk::default();
        c.room_in(&pool, CHUNK)[..3].copy_from_slice(b"abc");
        c.commit(3);
        q.push(&mut c);
        assert!(
            c.is_empty() && c.buf.is_empty(),
            "the buffer joined the queue"
        );
        // A small read fits in the last buffer's room: copied there, no second buffer.
        c.room(2).copy_from_slice(b"de");
        c.commit(2);
        q.push(&mut c);
        assert_eq!((q.len(), q.chunks.len(), q.data()), (5, 1, &b"abcde"[..]));
        // A large one joins as a buffer of its own.
        let big = vec![7u8; SMALL + 1];
        c.room_in(&pool, CHUNK)[..big.len()].copy_from_slice(&big);
        c.commit(big.len());
        q.push(&mut c);
        assert_eq!((q.len(), q.chunks.len()), (5 + SMALL + 1, 2));
        // Consuming across buffers; emptied ones go back to the pool.
        q.consume(6);
        assert_eq!(q.data().len(), SMALL);
        q.release(&pool);
        assert_eq!((q.chunks.len(), pool.0.lock().unwrap().len()), (1, 1));
        q.consume(q.len());
        q.release(&pool);
        assert!(q.is_empty() && q.chunks.is_empty());
        assert_eq!(pool.0.lock().unwrap().len(), 2);
        // Full by buffers as well as by bytes.
        for _ in 0..QUEUE_CHUNKS {
            c.room_in(&pool, CHUNK);
            c.commit(SMALL + 1);
            q.push(&mut c);
        }
        assert!(q.len() < QUEUE_CAP && q.full());
    }

    #[test]
    fn an_empty_queue_gives_a_large_buffer_back_to_the_pool_and_keeps_none() {
        let pool = Pool::default();
        let mut q = Chunk::default();
        let n = q.room_in(&pool, CHUNK).len();
        assert_eq!(n, CHUNK);
        q.commit(100);
        // Not empty: kept.
        q.release(&pool);
        assert_eq!(q.len(), 100);
        q.consume(100);
        q.release(&pool);
        assert_eq!(q.buf.len(), 0, "an idle queue holds no buffer");
        assert_eq!(pool.0.lock().unwrap().len(), 1);
        // The next large read takes it back from the pool.
        q.room_in(&pool, CHUNK);
        assert_eq!(pool.0.lock().unwrap().len(), 0);
        // A pool keeps POOL_MAX buffers at most; small buffers are freed, not pooled.
        for _ in 0..POOL_MAX + 3 {
            pool.give(vec![0; CHUNK]);
        }
        pool.give(vec![0; 10]);
        assert_eq!(pool.0.lock().unwrap().len(), POOL_MAX);
    }
}
