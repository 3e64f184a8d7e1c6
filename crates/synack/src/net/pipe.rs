//! A stream's bytes between the application and the driver: what the driver has delivered
//! (`rx`) and what the application queued for sending (`tx`), with the flags that say when
//! a call must wait, fail, or ask the stack itself.
//!
//! Reads and writes touch only their own socket's [`Pipe`] (under that socket's small lock,
//! see [`readiness`](super::readiness)); the driver alone owns the stacks and, once per turn
//! for every socket that changed or that a call marked, moves bytes between the pipe and the
//! connection in bulk ([`sync`]). A pipe holds at most [`Caps`] received and queued bytes
//! on top of the connection's buffers ([`RX_CAP`] and [`TX_CAP`] unless the runtime's
//! builder says otherwise), and its buffers grow only as far as the traffic needs (a 1 KiB
//! request/response keeps them at 1 KiB).

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use super::readiness::{CLOSED, READABLE, SocketIo, WRITABLE};
use super::udp::Datagram;
use crate::stack::{RecvMeta, SocketHandle, Stack, UdpHandle, datagram_charge};
use crate::tcp::{Shutdown, State};
use crate::time::Instant;

/// Received bytes a pipe holds for the application, at most: the driver leaves the rest in
/// the connection (whose window then closes, as a full socket buffer's does).
pub(crate) const RX_CAP: usize = 64 * 1024;
/// Bytes a write may queue ahead of the connection's send buffer, at most.
pub(crate) const TX_CAP: usize = 64 * 1024;

/// How many bytes a stream's pipe holds each way, at most: set for every stream of a
/// runtime by [`Builder::stream_buffers`](super::runtime::Builder::stream_buffers).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    /// Received bytes ([`RX_CAP`] by default).
    pub(crate) rx: u32,
    /// Bytes queued for sending ([`TX_CAP`] by default).
    pub(crate) tx: u32,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            rx: RX_CAP as u32,
            tx: TX_CAP as u32,
        }
    }
}

/// Connections a listener's pipe holds for `accept`, at most (Linux's default somaxconn);
/// the rest wait in the stack's accept queue.
pub(crate) const ACCEPT_CAP: usize = 128;

/// A byte queue: a vector, the offset of its first unread byte and the end of its bytes.
/// The vector keeps the length it grew to (zeroed once), so that the driver's fill writes
/// into room already there instead of zeroing 1 KiB before each copy. The unread bytes move
/// to the front only once they are fewer than the bytes already read before them, so a
/// byte is moved at most once on average (moving them before every append, a queue kept
/// nearly full moved nearly all of it for every few bytes added); the vector then grows to
/// at most twice the most the queue holds.
#[derive(Default)]
pub(crate) struct Bytes {
    buf: Vec<u8>,
    head: usize,
    end: usize,
    /// Bytes moved to the front so far (for the tests).
    #[cfg(test)]
    moved: usize,
}

impl Bytes {
    pub(crate) fn len(&self) -> usize {
        self.end - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.head..self.end]
    }

    /// Drops the first `n` bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.head += n;
        if self.head >= self.end {
            self.clear();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.end = 0;
    }

    /// Before `n` bytes are appended: moves the unread bytes to the front when the vector has
    /// no room for them after its end and the unread bytes are no more than the bytes read
    /// before them (so that what is moved is paid for by what was read).
    fn compact(&mut self, n: usize) {
        if self.end + n > self.buf.len() && self.head > 0 && self.head >= self.len() {
            #[cfg(test)]
            {
                self.moved += self.len();
            }
            self.buf.copy_within(self.head..self.end, 0);
            self.end -= self.head;
            self.head = 0;
        }
    }

    /// Makes room for the vector to reach `end` bytes: doubling, as `Vec` grows, but never
    /// past twice `cap`, the most a queue holding at most `cap` bytes needs with `compact`'s
    /// rule (plain doubling could reserve up to four times `cap`, kept as long as the stream).
    fn reserve(&mut self, end: usize, cap: usize) {
        if self.buf.capacity() < end {
            let want = (self.buf.capacity() * 2).min(2 * cap).max(end);
            self.buf.reserve_exact(want - self.buf.len());
        }
    }

    /// Appends `data` to a queue that holds at most `cap` bytes.
    pub(crate) fn push(&mut self, data: &[u8], cap: usize) {
        self.compact(data.len());
        let end = self.end + data.len();
        if self.buf.len() < end {
            self.buf.truncate(self.end);
            self.reserve(end, cap);
            self.buf.extend_from_slice(data);
        } else {
            self.buf[self.end..end].copy_from_slice(data);
        }
        self.end = end;
    }

    /// Appends what `fill` writes into `n` bytes of room, to a queue that holds at most `cap`
    /// bytes; how much that was.
    fn fill(&mut self, n: usize, cap: usize, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        self.compact(n);
        let end = self.end + n;
        if self.buf.len() < end {
            self.reserve(end, cap);
            self.buf.resize(end, 0);
        }
        let k = fill(&mut self.buf[self.end..end]).min(n);
        self.end += k;
        k
    }
}

/// One stream's state shared by its handle and the driver.
#[derive(Default)]
pub(crate) struct Pipe {
    /// Received bytes the driver delivered, not yet read.
    pub(crate) rx: Bytes,
    /// The connection holds more than `rx` had room for: a read that makes room wakes the
    /// driver.
    pub(crate) rx_blocked: bool,
    /// The connection will deliver nothing more (end of stream, an error, closed): a read
    /// that finds `rx` empty asks the stack what to report.
    pub(crate) rx_end: bool,
    /// The connection failed (a reset, a timeout: it has an error), as opposed to one that
    /// ended with both FINs.
    pub(crate) failed: bool,
    /// Bytes written, not yet handed to the connection.
    pub(crate) tx: Bytes,
    /// The connection takes no more data (an error, or a state past our FIN): writes ask the
    /// stack, which reports why.
    pub(crate) tx_closed: bool,
    /// What handing `tx` to the connection failed with; the next write reports it.
    pub(crate) tx_err: Option<io::Error>,
    /// `shutdown(Write)` came while `tx` still held bytes: the FIN follows them.
    pub(crate) fin_pending: bool,
    /// The handle is gone: close once `tx` has drained.
    pub(crate) dropped: bool,
    /// The stack's handle is closed (or reset); nothing more to do.
    pub(crate) done: bool,
    /// In the driver's queue of pipes to look at.
    pub(crate) queued: bool,
    /// Bytes went from `tx` to the connection since the driver last looked (segments due).
    pub(crate) tx_moved: bool,
    /// What the socket's calls read without asking the stack: see [`Ctl`].
    pub(crate) ctl: Ctl,
    /// How much `rx` and `tx` hold at most.
    pub(crate) cap: Caps,
    /// A listener's, a forward listener's or a datagram socket's queues; none for a
    /// stream (so that a stream's state, one per connection, does not carry them).
    pub(crate) queues: Option<Box<Queues>>,
}

/// The queues of the sockets that are not streams (see [`Pipe::q`]).
#[derive(Default)]
pub(crate) struct Queues {
    /// A listener's: connections the driver took off the stack's accept queue (registered,
    /// with their peers), for `accept`.
    pub(crate) accepted: VecDeque<(Arc<SocketIo>, SocketAddr)>,
    /// The stack's accept queue holds more than `accepted` had room for.
    pub(crate) accept_blocked: bool,
    /// A forward listener's: what the driver took off the forwarder (pending TCP flows,
    /// connections completed by SYN cookies, echo requests, UDP flows that ended), in order.
    pub(crate) fwd: VecDeque<super::forward::FwdItem>,
    /// How many of `fwd` are echo requests: capped at
    /// [`FWD_OTHER_CAP`](super::forward::FWD_OTHER_CAP) for a listener only ever accepting
    /// (UDP flow ends are never dropped).
    pub(crate) fwd_other: usize,
    /// Echo requests dropped from `fwd` past that cap (the oldest first).
    pub(crate) echoes_dropped: u64,
    /// A datagram socket's: what the driver took off the stack's receive queue, for the
    /// socket's calls to take without the driver (see [`sync_datagrams`]).
    pub(crate) dgrams: VecDeque<Datagram>,
    /// What `dgrams` is charged, in bytes (see [`charge`]): at most `cap.rx`.
    pub(crate) dgram_bytes: usize,
}

/// What a socket's synchronous calls answer from its own state: published by the driver
/// (the addresses at registration, the handshake's outcome and whether the connection is
/// gone at every turn the connection changed), or recorded by the setters
/// (TCP_NODELAY and IP_TTL: applied by the driver at its next turn, before any byte written
/// after the call goes out; the getters return what was set).
#[derive(Default)]
pub(crate) struct Ctl {
    pub(crate) local: Option<SocketAddr>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) nodelay: bool,
    pub(crate) ttl: u8,
    /// The stack's TTL (or hop limit) for the connection's family: what `Ttl(None)` means.
    pub(crate) default_ttl: u8,
    /// The stack no longer has the connection.
    pub(crate) gone: bool,
    /// The handshake's outcome, once there is one, for `connect` to take.
    pub(crate) connected: Option<io::Result<()>>,
    /// `connect` took it.
    pub(crate) handshake_taken: bool,
    /// A datagram socket's pending ICMP error (SO_ERROR), moved off the stack by the driver.
    pub(crate) udp_error: Option<io::Error>,
}

impl Ctl {
    /// What the stack says of connection `h` when the socket is registered.
    pub(crate) fn register(&mut self, stack: &mut Stack, h: SocketHandle) {
        if let Some(c) = stack.connection(h) {
            self.local = Some(c.local());
            self.peer = Some(c.remote());
            self.nodelay = c.nodelay();
        }
        if let Ok(t) = stack.ttl(h) {
            self.ttl = t;
            self.default_ttl = t;
        }
    }
}

impl Pipe {
    /// Marks the pipe for the driver's next turn; true when the caller must queue it (it
    /// was not queued yet).
    pub(crate) fn mark(&mut self) -> bool {
        !std::mem::replace(&mut self.queued, true)
    }

    /// The queues of a socket that is not a stream (made on first use).
    pub(crate) fn q(&mut self) -> &mut Queues {
        self.queues.get_or_insert_with(Box::default)
    }
}

/// What one step of a call on a pipe came to.
pub(crate) enum Step<T> {
    Done(io::Result<T>),
    /// Nothing to do until the readiness changes.
    Wait,
    /// The answer is in the stack (an end of stream, an error): ask the driver.
    Slow,
}

/// A read (or a peek) from the pipe; `mark` says the driver must look at it afterwards.
pub(crate) fn read(p: &mut Pipe, buf: &mut [u8], peek: bool, mark: &mut bool) -> Step<usize> {
    if buf.is_empty() {
        return Step::Done(Ok(0));
    }
    if !p.rx.is_empty() {
        let n = p.rx.len().min(buf.len());
        buf[..n].copy_from_slice(&p.rx.data()[..n]);
        if !peek {
            p.rx.consume(n);
            // Room again for what the connection holds back (and a window update).
            if p.rx_blocked {
                *mark |= p.mark();
            }
        }
        return Step::Done(Ok(n));
    }
    if p.rx_end { Step::Slow } else { Step::Wait }
}

/// The driver's side for datagram socket `u`: moves the datagrams the stack queued into the
/// pipe, each in a buffer of its own sized to it (the pipe holds at most `cap.rx` bytes'
/// worth, and always at least one; the rest waits in the stack's queue, which drops what
/// overflows it, `UdpRcvbufErrors`), takes a pending ICMP error onto the socket's state,
/// and works out the socket's readiness: readable while the pipe holds a datagram, always
/// writable (a send that found the output queue full is `send_blocked` until the next
/// turn), and closed once the stack no longer has the socket.
pub(crate) fn sync_datagrams(stack: &mut Stack, u: UdpHandle, p: &mut Pipe) -> u8 {
    p.queued = false;
    if let Some(e) = stack.udp_take_error(u) {
        // The latest error wins, as SO_ERROR keeps one.
        p.ctl.udp_error = Some(e);
    }
    p.rx_blocked = false;
    let cap = p.cap.rx as usize;
    let mut blocked = false;
    let q = p.queues.get_or_insert_with(Box::default);
    loop {
        let next = match stack.udp_next_len(u) {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(_) => {
                // The socket is gone: a receive that finds the pipe empty asks the stack why.
                return READABLE | WRITABLE | CLOSED;
            }
        };
        if !q.dgrams.is_empty() && q.dgram_bytes + datagram_charge(next) > cap {
            // A receive that makes room marks the pipe for the driver.
            blocked = true;
            break;
        }
        let mut data = vec![0u8; next];
        // Counted in `UdpInDatagrams` when the socket's calls take it from the pipe.
        let Ok(m) = stack.recv_from_uncounted(u, &mut data) else {
            break;
        };
        data.truncate(m.len);
        q.dgram_bytes += datagram_charge(m.len);
        q.dgrams.push_back(Datagram {
            data,
            src: m.src,
            dst: m.dst,
        });
    }
    let empty = q.dgrams.is_empty();
    p.rx_blocked = blocked;
    if empty { WRITABLE } else { READABLE | WRITABLE }
}

/// Takes up to `max` (at least one) of the datagrams the driver moved into a datagram
/// socket's pipe; `Wait` when it holds none. `mark`: the stack holds more than the pipe had
/// room for, and the driver must look at the pipe again.
pub(crate) fn recv_datagrams(p: &mut Pipe, max: usize, mark: &mut bool) -> Step<Vec<Datagram>> {
    let Some(q) = p.queues.as_mut().filter(|q| !q.dgrams.is_empty()) else {
        return Step::Wait;
    };
    let k = max.max(1).min(q.dgrams.len());
    let got: Vec<Datagram> = q.dgrams.drain(..k).collect();
    q.dgram_bytes -= got
        .iter()
        .map(|d| datagram_charge(d.data.len()))
        .sum::<usize>();
    if p.rx_blocked {
        *mark |= p.mark();
    }
    Step::Done(Ok(got))
}

/// Takes the next datagram the driver moved into a datagram socket's pipe into `buf` (a
/// longer one is truncated, the rest lost, as `recvfrom(2)` without MSG_PEEK); `Wait` when
/// the pipe holds none.
pub(crate) fn recv_datagram(p: &mut Pipe, buf: &mut [u8], mark: &mut bool) -> Step<RecvMeta> {
    let Some(q) = p.queues.as_mut() else {
        return Step::Wait;
    };
    let Some(d) = q.dgrams.pop_front() else {
        return Step::Wait;
    };
    q.dgram_bytes -= datagram_charge(d.data.len());
    if p.rx_blocked {
        *mark |= p.mark();
    }
    let len = d.data.len().min(buf.len());
    buf[..len].copy_from_slice(&d.data[..len]);
    Step::Done(Ok(RecvMeta {
        len,
        datagram_len: d.data.len(),
        src: d.src,
        dst: d.dst,
    }))
}

/// An accept from a listener's pipe; `Wait` when it is empty.
pub(crate) fn accept(p: &mut Pipe, mark: &mut bool) -> Step<(Arc<SocketIo>, SocketAddr)> {
    let Some(q) = p.queues.as_mut() else {
        return Step::Wait;
    };
    match q.accepted.pop_front() {
        Some(a) => {
            if q.accept_blocked {
                *mark |= p.mark();
            }
            Step::Done(Ok(a))
        }
        // Empty: wait for the driver to queue one (a listener that cannot accept any more
        // is CLOSED, and the stack then says why).
        None => Step::Wait,
    }
}

/// Why a write cannot queue anything, if it cannot: the error handing bytes to the
/// connection failed with, the socket shut down for writing, or (`Slow`) a connection that
/// takes no more (the stack says why).
fn refused<T>(p: &mut Pipe) -> Option<Step<T>> {
    if let Some(e) = p.tx_err.take() {
        return Some(Step::Done(Err(e)));
    }
    if p.fin_pending {
        return Some(Step::Done(Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the socket is shut down for writing",
        ))));
    }
    p.tx_closed.then_some(Step::Slow)
}

/// A write into the pipe; `mark` says the driver must look at it afterwards.
pub(crate) fn write(p: &mut Pipe, buf: &[u8], mark: &mut bool) -> Step<usize> {
    if let Some(no) = refused(p) {
        return no;
    }
    if buf.is_empty() {
        return Step::Done(Ok(0));
    }
    let n = (p.cap.tx as usize)
        .saturating_sub(p.tx.len())
        .min(buf.len());
    if n == 0 {
        return Step::Wait;
    }
    p.tx.push(&buf[..n], p.cap.tx as usize);
    *mark |= p.mark();
    Step::Done(Ok(n))
}

/// A write that fills the pipe's free room straight from a reader: `read` reads into that
/// room (all of it, at most) and says how much it read, `Pending` when it has nothing now
/// (its waker registered by it), or its error. `Wait` while the pipe has no room; `Slow`
/// when the connection takes no more (the stack says why). `Done(Ok(Ready(0)))`: the
/// reader is at its end. `mark` says the driver must look at the pipe afterwards.
pub(crate) fn write_from(
    p: &mut Pipe,
    mark: &mut bool,
    read: impl FnOnce(&mut [u8]) -> core::task::Poll<io::Result<usize>>,
) -> Step<core::task::Poll<usize>> {
    use core::task::Poll;
    if let Some(no) = refused(p) {
        return no;
    }
    let cap = p.cap.tx as usize;
    let room = cap.saturating_sub(p.tx.len());
    if room == 0 {
        return Step::Wait;
    }
    // Offered: the room, but no more than the buffer already has (4 KiB to begin with), so
    // that the buffer grows only as far as the reads fill it (doubling), as a write's does:
    // a reply of a few bytes does not cost a stream the whole cap.
    let room = room.min(p.tx.buf.len().max(4096));
    let had = p.tx.buf.len();
    let mut outcome = Poll::Pending;
    let n = p.tx.fill(room, cap, |b| match read(b) {
        Poll::Ready(Ok(n)) => {
            let n = n.min(b.len());
            outcome = Poll::Ready(Ok(n));
            n
        }
        other => {
            outcome = other;
            0
        }
    });
    if p.tx.buf.len() > had && n < room / 2 {
        // Grown for a read that filled less than half of it (a reply of a few bytes): the
        // buffer keeps only what it holds, as a write's would (10,000 flows that each
        // carried a reply keep a few bytes each, not 4 KiB).
        p.tx.buf.truncate(p.tx.end.max(had));
        p.tx.buf.shrink_to_fit();
    }
    match outcome {
        Poll::Ready(Ok(n)) => {
            if n > 0 {
                *mark |= p.mark();
            }
            Step::Done(Ok(Poll::Ready(n)))
        }
        Poll::Ready(Err(e)) => Step::Done(Err(e)),
        Poll::Pending => Step::Done(Ok(Poll::Pending)),
    }
}

/// Hands what `tx` holds to connection `h`, as much as it takes (the pipe's `tx_moved`
/// says whether that was anything). Returns whether `tx` still holds bytes; a connection
/// that refuses them fails the next write with its error (the bytes are lost, as a
/// kernel's queued bytes are when the connection fails).
pub(crate) fn flush(stack: &mut Stack, now: Instant, h: SocketHandle, p: &mut Pipe) -> bool {
    while !p.tx.is_empty() {
        match stack.send(now, h, p.tx.data()) {
            Ok(0) => break,
            Ok(n) => {
                p.tx.consume(n);
                p.tx_moved = true;
            }
            Err(e) => {
                p.tx.clear();
                p.tx_err = Some(e);
                p.tx_closed = true;
            }
        }
    }
    !p.tx.is_empty()
}

/// The stack dropped the connection (the handshake, if still on, failed with it).
fn gone(ctl: &mut Ctl) {
    ctl.gone = true;
    if !ctl.handshake_done() {
        ctl.connected = Some(Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "connection is gone",
        )));
    }
}

impl Ctl {
    /// The handshake's outcome was published (and perhaps taken by `connect`).
    fn handshake_done(&self) -> bool {
        self.connected.is_some() || self.handshake_taken
    }
}

/// What [`sync`] did.
#[derive(Default)]
pub(crate) struct Synced {
    /// The readiness to publish.
    pub(crate) ready: u8,
    /// It handed data or a FIN to the connection (segments to send).
    pub(crate) sent: bool,
    /// It closed the handle: the pipe is done.
    pub(crate) closed: bool,
}

/// The driver's side: hands `tx` to connection
/// `h` (then a pending FIN, then a close when the handle was dropped), moves what the
/// connection received into `rx`, and works out the pipe's readiness.
pub(crate) fn sync(stack: &mut Stack, now: Instant, h: SocketHandle, p: &mut Pipe) -> Synced {
    p.queued = false;
    let mut out = Synced::default();
    if p.done {
        out.ready = READABLE | WRITABLE | CLOSED;
        return out;
    }
    flush(stack, now, h, p);
    out.sent = std::mem::take(&mut p.tx_moved);
    if p.tx.is_empty() && p.fin_pending {
        p.fin_pending = false;
        // The call already returned: a connection that failed meanwhile reports that on
        // the next read or write.
        let _ = stack.shutdown(now, h, Shutdown::Write);
        out.sent = true;
    }
    if p.dropped && p.tx.is_empty() {
        // Unread bytes in the pipe are unread bytes: close() resets, as Linux's does
        // (RFC 2525 §2.17), and the connection's own unread bytes do that in `close`.
        if p.rx.is_empty() {
            stack.close(now, h);
        } else {
            stack.abort(now, h);
        }
        p.rx.clear();
        p.done = true;
        out.sent = true;
        out.closed = true;
        out.ready = READABLE | WRITABLE | CLOSED;
        return out;
    }
    let Some(c) = stack.connection(h) else {
        p.rx_end = true;
        p.tx_closed = true;
        gone(&mut p.ctl);
        out.ready = READABLE | WRITABLE | CLOSED;
        return out;
    };
    let queued = c.recv_queue_len();
    let take = queued.min((p.cap.rx as usize).saturating_sub(p.rx.len()));
    if take > 0 {
        let cap = p.cap.rx as usize;
        p.rx.fill(take, cap, |b| stack.recv(now, h, b).unwrap_or(0));
        // Reading may owe the peer a window update.
        out.sent = true;
    }
    let Some(c) = stack.connection(h) else {
        gone(&mut p.ctl);
        out.ready = READABLE | WRITABLE | CLOSED;
        return out;
    };
    let state = c.state();
    let left = c.recv_queue_len();
    p.rx_blocked = left > 0;
    p.failed |= c.error().is_some();
    let closed = state == State::Closed || c.error().is_some();
    p.rx_end = left == 0 && (c.is_readable() || state == State::Closed);
    let handshake = matches!(state, State::SynSent | State::SynReceived);
    if !handshake && !p.ctl.handshake_done() {
        // RFC 9293 §3.10.7.3: a SYN-SENT connection ends ESTABLISHED, or CLOSED with why.
        p.ctl.connected = Some(match state {
            State::Closed => Err(c.error().map(io::Error::from).unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "connection closed during the handshake",
                )
            })),
            _ => Ok(()),
        });
    }
    // Terminal: an error, or our FIN queued or sent (no state goes back to sending).
    p.tx_closed |= closed || (!handshake && !state.can_send());
    let mut r = 0;
    if !p.rx.is_empty() || p.rx_end || closed {
        r |= READABLE;
    }
    // A connection still in its handshake is not writable yet (connect waits on this bit),
    // as a kernel socket is not.
    if closed || (!handshake && (p.tx.len() < p.cap.tx as usize || p.tx_closed)) {
        r |= WRITABLE;
    }
    if closed {
        r |= CLOSED;
    }
    out.ready = r;
    out
}

#[cfg(test)]
mod tests {
    use super::{Bytes, Caps, Pipe, Step, write_from};
    use core::task::Poll;

    /// A write from a reader is offered the queue's room only as far as the buffer has
    /// grown (4 KiB at first), and a buffer grown for a read that filled little of it keeps
    /// only what was read: a 10-byte reply costs a stream of 256 KiB queues a few bytes;
    /// reads that fill what they are offered double it, up to the queue's size.
    #[test]
    fn write_from_grows_the_queue_only_as_far_as_reads_fill_it() {
        let mut p = Pipe {
            cap: Caps {
                rx: 256 << 10,
                tx: 256 << 10,
            },
            ..Pipe::default()
        };
        let mut mark = false;
        let step = write_from(&mut p, &mut mark, |b| {
            assert_eq!(b.len(), 4096);
            b[..10].copy_from_slice(b"0123456789");
            Poll::Ready(Ok(10))
        });
        assert!(matches!(step, Step::Done(Ok(Poll::Ready(10)))) && mark);
        assert_eq!(p.tx.data(), b"0123456789");
        // And the buffer keeps only those 10 bytes, not the 4 KiB offered.
        assert!(p.tx.buf.capacity() <= 64, "{}", p.tx.buf.capacity());
        // A reader with nothing leaves nothing allocated either.
        let mut q = Pipe::default();
        let step = write_from(&mut q, &mut mark, |_| Poll::Pending);
        assert!(matches!(step, Step::Done(Ok(Poll::Pending))));
        assert_eq!(q.tx.buf.capacity(), 0);
        let mut offered = Vec::new();
        while p.tx.len() < 256 << 10 {
            let step = write_from(&mut p, &mut mark, |b| {
                offered.push(b.len());
                b.fill(7);
                Poll::Ready(Ok(b.len()))
            });
            assert!(matches!(step, Step::Done(Ok(Poll::Ready(_)))));
        }
        assert_eq!(p.tx.len(), 256 << 10);
        assert!(offered.len() < 12, "{offered:?}");
        assert!(offered.iter().all(|&n| n <= 256 << 10));
        // Full: a write waits for room, and the reader is not asked.
        let step = write_from(&mut p, &mut mark, |_| unreachable!("no room to offer"));
        assert!(matches!(step, Step::Wait));
        // A reader with nothing now, or at its end.
        p.tx.consume(1000);
        let step = write_from(&mut p, &mut mark, |_| Poll::Pending);
        assert!(matches!(step, Step::Done(Ok(Poll::Pending))));
        let step = write_from(&mut p, &mut mark, |_| Poll::Ready(Ok(0)));
        assert!(matches!(step, Step::Done(Ok(Poll::Ready(0)))));
        assert_eq!(p.tx.len(), (256 << 10) - 1000);
    }

    #[test]
    fn bytes_keep_their_order_through_fills_pushes_and_partial_reads() {
        let mut b = Bytes::default();
        assert_eq!(
            b.fill(4, 1 << 20, |r| {
                r.copy_from_slice(b"abcd");
                4
            }),
            4
        );
        // A fill that writes less than its room keeps only what it wrote.
        assert_eq!(
            b.fill(8, 1 << 20, |r| {
                r[..2].copy_from_slice(b"ef");
                2
            }),
            2
        );
        assert_eq!(b.data(), b"abcdef");
        b.consume(3);
        assert_eq!(b.data(), b"def");
        // The unread bytes move to the front; room left from earlier fills is reused.
        b.push(b"gh", 1 << 20);
        assert_eq!(b.data(), b"defgh");
        assert_eq!(
            b.fill(3, 1 << 20, |r| {
                r.copy_from_slice(b"ijk");
                3
            }),
            3
        );
        assert_eq!(b.data(), b"defghijk");
        b.consume(8);
        assert!(b.is_empty());
        b.push(b"xyz", 1 << 20);
        assert_eq!((b.data(), b.len()), (&b"xyz"[..], 3));
        b.clear();
        assert!(b.is_empty() && b.data().is_empty());
    }

    #[test]
    fn a_queue_kept_nearly_full_moves_its_bytes_only_as_often_as_they_are_read() {
        // A pipe's `tx` as a busy sender keeps it: 208 KiB held, the connection taking 16
        // KiB at a time and a write topping it up at once. Moving the unread bytes before
        // every append moved 192 KiB per 16 KiB added; now what moves is at most what was
        // read.
        // (A cap that is not a power of two: doubling would reserve 512 KiB for 208.)
        let (cap, step) = (208 << 10, 16 << 10);
        let chunk = vec![7u8; step];
        let mut b = Bytes::default();
        while b.len() < cap {
            b.push(&chunk, cap);
        }
        let mut read = 0;
        for _ in 0..1000 {
            b.consume(step);
            read += step;
            b.push(&chunk, cap);
            assert_eq!(b.len(), cap);
            // Room for the bytes read before the unread ones, at most, comes on top.
            assert!(b.buf.len() <= 2 * cap, "vector of {}", b.buf.len());
            // And no more is reserved than that (doubling could reserve twice as much).
            assert!(b.buf.capacity() <= 2 * cap, "capacity {}", b.buf.capacity());
        }
        assert!(b.moved <= read, "moved {} for {read} read", b.moved);
        assert_eq!(b.data(), &vec![7u8; cap][..]);
    }
}
