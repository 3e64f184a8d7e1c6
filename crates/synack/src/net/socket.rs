//! One open socket of a runtime, as both façades see it: its host, its handle in the stack,
//! its readiness and state; and the calls on it. A call works on the socket's own state (its
//! [`Pipe`](super::pipe::Pipe)) under that socket's small lock; what only the stack can say
//! (opening the socket, the end of a stream, an error, a datagram) goes to the driver as a
//! command and the caller waits on that call's own completion (see
//! [`Shared::attempt`]). No call takes the stack lock. Dropping a socket closes it.

use core::net::SocketAddr;
use std::any::Any;
use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::pipe::{self, Pipe, Step};
use super::readiness::{Id, Kind, READABLE, SocketIo, WRITABLE};
use super::runtime::{Completion, Core, Host, HostState, Shared};
use super::udp::Datagram;
use crate::stack::{ForwardConfig, RecvMeta, SocketHandle, SocketOption, Stack, UdpHandle};
use crate::tcp::connection::Info;
use crate::tcp::{Shutdown, State};
use crate::time::Instant;

/// A task's call in flight with the driver, kept between polls (one per direction).
type Slot = Mutex<Option<Box<dyn Any + Send>>>;

pub(crate) struct Sock {
    pub(crate) shared: Arc<Shared>,
    host: usize,
    handle: SocketHandle,
    kind: Kind,
    pub(crate) io: Arc<SocketIo>,
    /// An IPv6 socket: IPv4 addresses show IPv4-mapped.
    v6_socket: bool,
    /// The reader's (or acceptor's) and the writer's call in flight with the driver.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    slots: [Slot; 2],
}

/// How an IPv6 socket (one bound or connected with an IPv6 address) sees an IPv4 peer of a
/// dual-stack listener, or a connection to an IPv4-mapped address: as `::ffff:a.b.c.d`
/// (RFC 4291 §2.5.5.2, RFC 3493 §3.7), as Linux shows it.
fn as_seen(v6_socket: bool, a: SocketAddr) -> SocketAddr {
    match (v6_socket, a.ip()) {
        (true, core::net::IpAddr::V4(ip)) => SocketAddr::new(ip.to_ipv6_mapped().into(), a.port()),
        _ => a,
    }
}

/// What is left of a wait until `deadline`.
fn left(deadline: Option<std::time::Instant>) -> Option<std::time::Duration> {
    // At least a microsecond: a zero timeout means none to the waits below.
    deadline.map(|d| {
        d.saturating_duration_since(std::time::Instant::now())
            .max(std::time::Duration::from_micros(1))
    })
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection is gone")
}

/// A call on a socket's pipe from a thread: `step` under the socket's own lock, the thread
/// blocked on the socket's `interest` while it says `Wait` (`WouldBlock` at the deadline,
/// or at once when non-blocking); when it says only the stack can answer, the driver's call
/// that `slow` makes.
fn blocking_pipe<T, F>(
    shared: &Shared,
    io: &Arc<SocketIo>,
    interest: u8,
    (deadline, nonblocking): (Option<std::time::Instant>, bool),
    step: impl FnMut(&mut Pipe, &mut bool) -> Step<T>,
    slow: impl FnOnce() -> F,
) -> io::Result<T>
where
    T: Send + 'static,
    F: FnMut(&mut Core, Instant) -> Option<io::Result<T>> + Send + 'static,
{
    let (step, mark) = io.blocking_step(interest, deadline, nonblocking, step);
    if mark {
        shared.mark(io);
    }
    match step {
        Step::Done(r) => r,
        _ => shared.blocking(io, interest, left(deadline), nonblocking, slow()),
    }
}

/// [`blocking_pipe`] for a task: `Pending` with its waker kept while `step` says `Wait`;
/// the driver's call in flight kept in `slot` between polls.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
fn poll_pipe<T, F>(
    shared: &Shared,
    io: &Arc<SocketIo>,
    cx: &mut Context<'_>,
    (interest, slot): (u8, &Slot),
    step: impl FnMut(&mut Pipe, &mut bool) -> Step<T>,
    slow: impl FnOnce() -> F,
) -> Poll<io::Result<T>>
where
    T: Send + 'static,
    F: FnMut(&mut Core, Instant) -> Option<io::Result<T>> + Send + 'static,
{
    let (step, mark) = io.poll_step(cx, interest, step);
    if mark {
        shared.mark(io);
    }
    match step {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Step::Done(r)) => Poll::Ready(r),
        Poll::Ready(_) => shared.poll_io(cx, io, interest, slot, slow),
    }
}

/// A socket the driver is opening: [`wait`](Self::wait) for it from a synchronous call,
/// [`done`](Self::done) from a task. Dropped before it was taken, the socket closes.
pub(crate) struct Opening<S: Send + 'static> {
    shared: Arc<Shared>,
    c: Arc<Completion<S>>,
}

impl<S: Send + 'static> Opening<S> {
    /// Asks the driver to run `open` on host `host` (skipped if the caller gave up first).
    pub(crate) fn new(
        host: &Host,
        open: impl FnOnce(&mut Core, Instant, Arc<Shared>) -> io::Result<S> + Send + 'static,
    ) -> Opening<S> {
        let shared = host.shared.clone();
        let s2 = shared.clone();
        let c = shared.request(move |core, now, reply| {
            if !reply.abandoned() {
                reply.send(open(core, now, s2));
            }
        });
        Opening { shared, c }
    }

    pub(crate) fn wait(self) -> io::Result<S> {
        self.shared.wait(&self.c)
    }

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) async fn done(self) -> io::Result<S> {
        poll_fn(|cx| self.c.poll(cx)).await
    }
}

impl<S: Send + 'static> Drop for Opening<S> {
    fn drop(&mut self) {
        // Opened after its caller went: closed by dropping it.
        drop(self.c.take());
    }
}

impl Sock {
    fn stack(host: usize, core: &mut Core) -> &mut Stack {
        &mut core.hosts[host].stack
    }

    /// A socket for handle `handle` registered as `io`.
    pub(crate) fn new(
        shared: Arc<Shared>,
        host: usize,
        handle: SocketHandle,
        kind: Kind,
        io: Arc<SocketIo>,
        v6_socket: bool,
    ) -> Sock {
        Sock {
            shared,
            host,
            handle,
            kind,
            io,
            v6_socket,
            slots: Default::default(),
        }
    }

    /// Opens a socket on `host` with `open` (by the driver) and registers it as `kind`.
    pub(crate) fn open(
        host: &Host,
        kind: Kind,
        v6_socket: bool,
        open: impl FnOnce(&mut Stack, Instant) -> io::Result<SocketHandle> + Send + 'static,
    ) -> Opening<Sock> {
        let index = host.index;
        Opening::new(host, move |core, now, shared| {
            let h = &mut core.hosts[index];
            let handle = open(&mut h.stack, now)?;
            let io = h
                .sockets
                .register(&mut h.stack, now, index, Id::Tcp(handle), kind);
            Ok(Sock::new(shared, index, handle, kind, io, v6_socket))
        })
    }

    /// Listens on `local` on `host` (backlog 128, like Linux's default somaxconn).
    pub(crate) fn listen(host: &Host, local: SocketAddr, v6only: bool) -> Opening<Sock> {
        Self::open(host, Kind::Listener, local.is_ipv6(), move |stack, _| {
            let tcp = stack.config().tcp.clone();
            stack.listen_opts(local, 128, tcp, v6only)
        })
    }

    /// Sends the SYN; [`connected`](Self::connected) then says how it went.
    /// Connecting to `[::ffff:a.b.c.d]:p` is an IPv6 socket talking IPv4.
    pub(crate) fn connect(host: &Host, addr: SocketAddr) -> Opening<Sock> {
        Self::open(host, Kind::Stream, addr.is_ipv6(), move |stack, now| {
            stack.connect(now, addr, None)
        })
    }

    /// Waits for the handshake's outcome (ConnectionRefused, TimedOut after the SYN
    /// retries, ...; `WouldBlock` after `timeout`).
    pub(crate) fn connected(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let (step, _) = self
            .io
            .blocking_step(WRITABLE, deadline, false, take_connected);
        finish_connected(step)
    }

    /// The task's [`connected`](Self::connected).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (step, _) = self.io.poll_step(cx, WRITABLE, take_connected);
        step.map(finish_connected)
    }

    /// Waits for a connection (`WouldBlock` at once when `nonblocking`): one the driver has
    /// put in the listener's pipe; a listener that can take none asks the stack why.
    pub(crate) fn accept(&self, nonblocking: bool) -> io::Result<(Sock, SocketAddr)> {
        let (step, mark) = self
            .io
            .blocking_step(READABLE, None, nonblocking, pipe::accept);
        self.marked(mark);
        match step {
            Step::Done(r) => r.map(|(io, peer)| self.accepted(io, peer)),
            _ => self
                .shared
                .blocking(&self.io, READABLE, None, nonblocking, self.slow_accept())
                .map(|(io, peer)| self.accepted(io, peer)),
        }
    }

    /// The task's [`accept`](Self::accept).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Sock, SocketAddr)>> {
        let (step, mark) = self.io.poll_step(cx, READABLE, pipe::accept);
        self.marked(mark);
        let r = match step {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Step::Done(r)) => r,
            Poll::Ready(_) => {
                match self
                    .shared
                    .poll_io(cx, &self.io, READABLE, &self.slots[0], || {
                        self.slow_accept()
                    }) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r,
                }
            }
        };
        Poll::Ready(r.map(|(io, peer)| self.accepted(io, peer)))
    }

    /// The socket of a connection the driver accepted, and its peer as this listener shows
    /// it.
    fn accepted(&self, io: Arc<SocketIo>, peer: SocketAddr) -> (Sock, SocketAddr) {
        let Id::Tcp(handle) = io.id else {
            unreachable!("a listener's pipe holds TCP connections only")
        };
        let sock = Sock::new(
            self.shared.clone(),
            self.host,
            handle,
            Kind::Stream,
            io,
            self.v6_socket,
        );
        (sock, as_seen(self.v6_socket, peer))
    }

    /// The driver's accept for a listener whose pipe is empty and CLOSED: a connection it
    /// queued meanwhile, else the stack's answer (why it cannot accept).
    fn slow_accept(
        &self,
    ) -> impl FnMut(&mut Core, Instant) -> Option<io::Result<(Arc<SocketIo>, SocketAddr)>> + Send + 'static
    {
        let (host, l, io) = (self.host, self.handle, self.io.clone());
        move |core, now| {
            let mut mark = false;
            if let Step::Done(r) = pipe::accept(&mut io.lock().pipe, &mut mark) {
                return Some(r);
            }
            let h = &mut core.hosts[host];
            match h.stack.accept(l) {
                Ok(Some(c)) => {
                    let peer = h.stack.connection(c).map(|c| c.remote());
                    let cio = h
                        .sockets
                        .register(&mut h.stack, now, host, Id::Tcp(c), Kind::Stream);
                    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
                    Some(Ok((cio, peer.unwrap_or(unspecified))))
                }
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        }
    }

    /// Reads into `buf` (or peeks) from the pipe, blocking the thread until there is
    /// something; at the end of the stream the stack says what (see `slow_read`).
    /// `WouldBlock` when `nonblocking` or after `timeout`.
    pub(crate) fn read(
        &self,
        buf: &mut [u8],
        peek: bool,
        timeout: Option<std::time::Duration>,
        nonblocking: bool,
    ) -> io::Result<usize> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let (step, mark) = self
            .io
            .blocking_step(READABLE, deadline, nonblocking, |p, m| {
                pipe::read(p, buf, peek, m)
            });
        self.marked(mark);
        match step {
            Step::Done(r) => r,
            _ => {
                let f = self.slow_read(buf.len(), peek);
                let got =
                    self.shared
                        .blocking(&self.io, READABLE, left(deadline), nonblocking, f)?;
                Ok(copy_out(&got, buf))
            }
        }
    }

    /// The task's [`read`](Self::read).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        peek: bool,
    ) -> Poll<io::Result<usize>> {
        let (step, mark) = self
            .io
            .poll_step(cx, READABLE, |p, m| pipe::read(p, buf, peek, m));
        self.marked(mark);
        match step {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Step::Done(r)) => Poll::Ready(r),
            Poll::Ready(_) => {
                let len = buf.len();
                self.shared
                    .poll_io(cx, &self.io, READABLE, &self.slots[0], || {
                        self.slow_read(len, peek)
                    })
                    .map_ok(|got| copy_out(&got, buf))
            }
        }
    }

    /// Queues `buf` for sending, blocking the thread while the pipe is full; how much fit.
    pub(crate) fn write(
        &self,
        buf: &[u8],
        timeout: Option<std::time::Duration>,
        nonblocking: bool,
    ) -> io::Result<usize> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        blocking_pipe(
            &self.shared,
            &self.io,
            WRITABLE,
            (deadline, nonblocking),
            |p, m| pipe::write(p, buf, m),
            || self.slow_write(buf),
        )
    }

    /// The task's [`write`](Self::write).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        poll_pipe(
            &self.shared,
            &self.io,
            cx,
            (WRITABLE, &self.slots[1]),
            |p, m| pipe::write(p, buf, m),
            || self.slow_write(buf),
        )
    }

    /// A task's write that fills the pipe's free room straight from a reader (see
    /// [`pipe::write_from`]): `Pending` while the pipe is full (the task's waker kept for
    /// room) or while `read` has nothing (its waker kept by the reader, and by the socket
    /// for the connection's failure); how much `read`
    /// read (0: the reader is at its end); `read`'s error; or why the connection takes no
    /// more. `read` runs under the socket's own lock: a runtime socket's call inside it
    /// fails with `InvalidInput` rather than take a lock (a synack stream as the reader
    /// could deadlock).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_write_from(
        &self,
        cx: &mut Context<'_>,
        read: impl FnOnce(&mut Context<'_>, &mut [u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let waker = cx.waker().clone();
        let mut rcx = Context::from_waker(&waker);
        let mut read = Some(read);
        let (step, mark) = self.io.poll_step(cx, WRITABLE, |p, m| match read.take() {
            Some(f) => pipe::write_from(p, m, |b| {
                super::readiness::inside_write_from(|| f(&mut rcx, b))
            }),
            None => Step::Wait,
        });
        self.marked(mark);
        match step {
            Poll::Pending => Poll::Pending,
            // The reader has nothing: the task also waits on this socket, so a connection
            // that fails meanwhile (a reset, a timeout) wakes it and the next call fails,
            // rather than the task waiting for a reader that may stay silent for ever.
            Poll::Ready(Step::Done(Ok(Poll::Pending))) if !self.io.watch_close(cx, WRITABLE) => {
                Poll::Pending
            }
            Poll::Ready(Step::Done(Ok(Poll::Ready(n)))) => Poll::Ready(Ok(n)),
            Poll::Ready(Step::Done(Err(e))) => Poll::Ready(Err(e)),
            Poll::Ready(_) => self
                .shared
                .poll_io(cx, &self.io, WRITABLE, &self.slots[1], || {
                    self.why_no_write()
                }),
        }
    }

    /// The driver's answer for a pipe that takes no more (the connection failed or is shut
    /// down) when a write has no bytes of its own to offer: the pipe's bytes go first (a
    /// wait while the connection is full behind them), then the connection's error.
    fn why_no_write(
        &self,
    ) -> impl FnMut(&mut Core, Instant) -> Option<io::Result<usize>> + Send + 'static {
        let (host, h, io) = (self.host, self.handle, self.io.clone());
        move |core, now| {
            let stack = Self::stack(host, core);
            {
                let mut s = io.lock();
                if let Some(e) = s.pipe.tx_err.take() {
                    return Some(Err(e));
                }
                if pipe::flush(stack, now, h, &mut s.pipe) {
                    return None;
                }
            }
            // An empty send asks the connection's state: its error, or why it cannot send.
            Some(match stack.send(now, h, &[]) {
                Err(e) => Err(e),
                Ok(_) => Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the connection takes no more data",
                )),
            })
        }
    }

    /// Queues the pipe for the driver when a step marked it.
    fn marked(&self, mark: bool) {
        if mark {
            self.shared.mark(&self.io);
        }
    }

    /// The driver's read for a pipe at the end of its stream: what the pipe still holds, else
    /// what the connection says (its bytes, the end of the stream, an error once).
    fn slow_read(
        &self,
        len: usize,
        peek: bool,
    ) -> impl FnMut(&mut Core, Instant) -> Option<io::Result<Vec<u8>>> + Send + 'static {
        let (host, h, io) = (self.host, self.handle, self.io.clone());
        move |core, now| {
            if len == 0 {
                return Some(Ok(Vec::new()));
            }
            let mut buf = vec![0u8; len.min(pipe::RX_CAP)];
            {
                let mut s = io.lock();
                if !s.pipe.rx.is_empty() {
                    let mut mark = false;
                    if let Step::Done(r) = pipe::read(&mut s.pipe, &mut buf, peek, &mut mark) {
                        return Some(r.map(|n| {
                            buf.truncate(n);
                            buf
                        }));
                    }
                }
            }
            let stack = Self::stack(host, core);
            let r = if peek {
                stack.peek(h, &mut buf)
            } else {
                stack.recv(now, h, &mut buf)
            };
            match r {
                Ok(0) => {
                    let Some(c) = stack.connection(h) else {
                        return Some(Ok(Vec::new()));
                    };
                    if c.is_readable() {
                        // End of stream, or an error to report.
                        Some(match c.error() {
                            Some(e) if !c.peer_closed() => Err(io::Error::from(e)),
                            _ => Ok(Vec::new()),
                        })
                    } else if c.state() == State::Closed {
                        Some(Ok(Vec::new()))
                    } else {
                        None
                    }
                }
                Ok(n) => {
                    buf.truncate(n);
                    Some(Ok(buf))
                }
                Err(e) => Some(Err(e)),
            }
        }
    }

    /// The driver's write for a pipe that takes no more (the connection failed or is shut
    /// down): the pipe's bytes go first, then the connection takes `buf` or says why not.
    fn slow_write(
        &self,
        buf: &[u8],
    ) -> impl FnMut(&mut Core, Instant) -> Option<io::Result<usize>> + Send + 'static {
        let (host, h, io) = (self.host, self.handle, self.io.clone());
        let data = buf.to_vec();
        move |core, now| {
            if data.is_empty() {
                return Some(Ok(0));
            }
            let stack = Self::stack(host, core);
            {
                let mut s = io.lock();
                if let Some(e) = s.pipe.tx_err.take() {
                    return Some(Err(e));
                }
                if pipe::flush(stack, now, h, &mut s.pipe) {
                    // The connection is full behind the pipe's bytes.
                    return None;
                }
            }
            match stack.send(now, h, &data) {
                Ok(0) => None,
                other => Some(other),
            }
        }
    }

    /// Shuts the connection down: a FIN follows what the pipe still holds (the driver sends
    /// it once the connection took those bytes); shutting reading down drops what was
    /// received and not read. NotConnected once the stack dropped the connection.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let (host, h, io) = (self.host, self.handle, self.io.clone());
        if self.kind != Kind::Stream {
            self.shared.post(move |core, now| {
                let hs = &mut core.hosts[host];
                if how != Shutdown::Write {
                    hs.sockets.abort_unclaimed(&mut hs.stack, now, &io);
                }
                let _ = hs.stack.shutdown(now, h, how);
                // Publishes that it accepts no more (accept then says why).
                hs.sockets.sync(&mut hs.stack, now, &io);
            });
            return Ok(());
        }
        let mut s = self.io.lock();
        let p = &mut s.pipe;
        if p.ctl.gone || p.done {
            return Err(gone());
        }
        if how != Shutdown::Write {
            // Received bytes not yet read go, as the connection's own do.
            p.rx.clear();
        }
        if how != Shutdown::Read {
            p.fin_pending = true;
        }
        let mark = p.mark();
        drop(s);
        if how != Shutdown::Write {
            self.shared.post(move |core, now| {
                let _ = Self::stack(host, core).shutdown(now, h, Shutdown::Read);
            });
        }
        self.marked(mark);
        Ok(())
    }

    /// Resets the connection (SO_LINGER 0 then close): what the pipe holds goes too.
    pub(crate) fn abort(&self) {
        {
            let mut s = self.io.lock();
            s.pipe.tx.clear();
            s.pipe.rx.clear();
            s.pipe.fin_pending = false;
        }
        let (host, h, io) = (self.host, self.handle, self.io.clone());
        self.shared.post(move |core, now| {
            let hs = &mut core.hosts[host];
            hs.stack.abort(now, h);
            // Its other handles see the reset at once.
            hs.sockets.sync(&mut hs.stack, now, &io);
        });
    }

    /// Sets an option: checked and recorded here (the getters return it), applied by the
    /// driver at its next turn, before anything written after this call is sent.
    pub(crate) fn set_option(&self, opt: SocketOption) -> io::Result<()> {
        {
            let mut s = self.io.lock();
            let ctl = &mut s.pipe.ctl;
            if ctl.gone {
                return Err(gone());
            }
            match opt {
                SocketOption::NoDelay(on) => ctl.nodelay = on,
                SocketOption::Ttl(Some(0)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a TTL of 0 is not allowed",
                    ));
                }
                SocketOption::Ttl(t) => ctl.ttl = t.unwrap_or(ctl.default_ttl),
                _ => {}
            }
        }
        let (host, h) = (self.host, self.handle);
        // The connection may have gone meanwhile: nothing left to set then.
        self.shared.post(move |core, now| {
            let _ = Self::stack(host, core).set_option(now, h, opt);
        });
        Ok(())
    }

    /// IP_TTL, as std's `set_ttl` takes it: 1 to 255 (InvalidInput otherwise). On an IPv6
    /// connection, its hop limit.
    pub(crate) fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let t = u8::try_from(ttl).ok().filter(|&t| t > 0).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a TTL is 1 to 255, not {ttl}"),
            )
        })?;
        self.set_option(SocketOption::Ttl(Some(t)))
    }

    /// Reads the socket's published state; NotConnected once the connection is gone.
    fn ctl<T>(&self, f: impl FnOnce(&pipe::Ctl) -> Option<T>) -> io::Result<T> {
        let s = self.io.lock();
        if s.pipe.ctl.gone {
            return Err(gone());
        }
        f(&s.pipe.ctl).ok_or_else(gone)
    }

    pub(crate) fn ttl(&self) -> io::Result<u32> {
        self.ctl(|c| Some(u32::from(c.ttl)))
    }

    pub(crate) fn nodelay(&self) -> io::Result<bool> {
        self.ctl(|c| Some(c.nodelay))
    }

    /// TCP_INFO, built by the driver when asked (as Linux's getsockopt builds it under the
    /// socket's lock): the driver's turns do not build it for every change of every
    /// connection. Waits for the driver's next turn (after the runtime stopped: as it
    /// stopped).
    pub(crate) fn info(&self) -> io::Result<Info> {
        self.ctl(|_| Some(()))?;
        let (host, h) = (self.host, self.handle);
        self.shared
            .ask(move |core| Self::info_of(host, h, core))
            .ok_or_else(gone)
    }

    /// [`info`](Self::info) for a task: the driver answers at its next turn.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) async fn info_async(&self) -> io::Result<Info> {
        self.ctl(|_| Some(()))?;
        let (host, h) = (self.host, self.handle);
        let c = self
            .shared
            .call(move |core, _| Self::info_of(host, h, core).ok_or_else(gone));
        poll_fn(|cx| c.poll(cx)).await
    }

    fn info_of(host: usize, h: SocketHandle, core: &mut Core) -> Option<Info> {
        Self::stack(host, core).connection(h).map(|c| c.info())
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        let v6 = self.v6_socket;
        self.ctl(|c| c.peer.map(|a| as_seen(v6, a)))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        let v6 = self.v6_socket;
        self.ctl(|c| c.local.map(|a| as_seen(v6, a)))
    }
}

/// `connect`'s step: the handshake's outcome, once the driver published it.
fn take_connected(p: &mut Pipe, _: &mut bool) -> Step<()> {
    match p.ctl.connected.take() {
        Some(r) => {
            p.ctl.handshake_taken = true;
            Step::Done(r)
        }
        None => Step::Wait,
    }
}

fn finish_connected(step: Step<()>) -> io::Result<()> {
    match step {
        Step::Done(r) => r,
        // Closed with no outcome published: the handle was released under it.
        _ => Err(gone()),
    }
}

/// Copies what the driver read into the caller's buffer.
fn copy_out(got: &[u8], buf: &mut [u8]) -> usize {
    let n = got.len().min(buf.len());
    buf[..n].copy_from_slice(&got[..n]);
    n
}

impl Drop for Sock {
    fn drop(&mut self) {
        if self.kind == Kind::Stream {
            // The driver closes the connection once the pipe's bytes are all in it (no data
            // is lost on close).
            let mark = {
                let mut s = self.io.lock();
                s.pipe.dropped = true;
                s.pipe.mark()
            };
            self.marked(mark);
            return;
        }
        let (host, h, io) = (self.host, self.handle, self.io.clone());
        self.shared.post(move |core, now| {
            let hs = &mut core.hosts[host];
            hs.sockets.abort_unclaimed(&mut hs.stack, now, &io);
            hs.sockets.deregister(Id::Tcp(h));
            hs.stack.close(now, h);
        });
    }
}

/// One open UDP socket (`Kind::Datagram`): a bound one, or a host's forwarder socket.
/// Sending and receiving go through the driver (each call waits on its own completion);
/// the address and the pending ICMP error are the socket's own state. Dropping it closes
/// the socket.
pub(crate) struct Dgram {
    pub(crate) shared: Arc<Shared>,
    host: usize,
    handle: UdpHandle,
    pub(crate) io: Arc<SocketIo>,
    /// The calls in flight with the driver, one per kind, so that no call displaces one of
    /// another kind (whose attempt may have taken datagrams, or sent them): a single
    /// receive, a single send, a batch receive, a batch send.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    slots: [Slot; 4],
}

impl Dgram {
    /// Opens a datagram socket on `host` with `open` (by the driver, which gives it the
    /// host's stack and sockets) and registers it.
    fn open(
        host: &Host,
        open: impl FnOnce(&mut HostState) -> io::Result<UdpHandle> + Send + 'static,
    ) -> Opening<Dgram> {
        let index = host.index;
        Opening::new(host, move |core, now, shared| {
            let h = &mut core.hosts[index];
            let handle = open(h)?;
            let io = h
                .sockets
                .register(&mut h.stack, now, index, Id::Udp(handle), Kind::Datagram);
            Ok(Dgram {
                shared,
                host: index,
                handle,
                io,
                slots: Default::default(),
            })
        })
    }

    /// Binds `local` on `host` (port 0: an ephemeral port).
    pub(crate) fn bind(host: &Host, local: SocketAddr) -> Opening<Dgram> {
        Self::open(host, move |h| h.stack.udp_bind(local))
    }

    /// Turns forwarding on for `host` with `cfg` and opens its datagram socket, which takes
    /// the datagrams of every forwarded UDP flow. AddrInUse when the host has one already.
    /// (A [`ForwardListener`](super::ForwardListener) may be open on it: the socket then
    /// takes the UDP side of the same forwarder, reconfigured with `cfg`.)
    pub(crate) fn forwarder(host: &Host, cfg: ForwardConfig) -> Opening<Dgram> {
        Self::open(host, move |h| {
            if let Some(f) = h.stack.forwarding()
                && h.sockets.contains(Id::Udp(f.udp))
            {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "this host has a forwarder socket already (one per host)",
                ));
            }
            Ok(h.stack.enable_forwarding(cfg).udp)
        })
    }

    /// The driver's receive: the next datagram (up to `len` bytes of it) and what it says
    /// of it. An ICMP error about one the socket sent does not fail it: Linux reports those
    /// to an unconnected socket only with IP_RECVERR, so a server is not broken by a client
    /// that went away; it waits for `take_error`. Waits on READABLE.
    fn recv_op(
        &self,
        len: usize,
    ) -> impl FnMut(&mut Core, Instant) -> Option<io::Result<(Vec<u8>, RecvMeta)>> + Send + 'static
    {
        let (host, u) = (self.host, self.handle);
        move |core, _| {
            // Sized to the datagram: no buffer at all while none waits (the op runs again on
            // every readiness change), and no 64 KiB for a small one.
            let stack = &mut core.hosts[host].stack;
            let next = match stack.udp_next_len(u) {
                Ok(Some(n)) => n,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            let mut buf = vec![0u8; len.min(next)];
            match stack.recv_from(u, &mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Ok(m) => {
                    buf.truncate(m.len);
                    Some(Ok((buf, m)))
                }
                Err(e) => Some(Err(e)),
            }
        }
    }

    /// The driver's send of one datagram to `to`, from `from` (`None`: the socket's
    /// address; see [`Stack::send_from`]). A full output queue waits for the driver's next
    /// turn. Waits on WRITABLE.
    fn send_op(
        &self,
        buf: &[u8],
        from: Option<SocketAddr>,
        to: SocketAddr,
    ) -> impl FnMut(&mut Core, Instant) -> Option<io::Result<usize>> + Send + 'static {
        let (host, u) = (self.host, self.handle);
        let data = buf.to_vec();
        move |core, now| {
            let h = &mut core.hosts[host];
            let r = match from {
                None => h.stack.send_to(now, u, &data, to),
                Some(from) => h.stack.send_from(now, u, &data, from, to),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    h.sockets.send_blocked(u);
                    None
                }
                r => Some(r),
            }
        }
    }

    /// Sends one datagram, blocking the thread while the output queue is full.
    pub(crate) fn send(
        &self,
        buf: &[u8],
        from: Option<SocketAddr>,
        to: SocketAddr,
        timeout: Option<std::time::Duration>,
        nonblocking: bool,
    ) -> io::Result<usize> {
        let f = self.send_op(buf, from, to);
        self.shared
            .blocking(&self.io, WRITABLE, timeout, nonblocking, f)
    }

    /// The task's [`send`](Self::send).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        from: Option<SocketAddr>,
        to: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.shared
            .poll_io(cx, &self.io, WRITABLE, &self.slots[1], || {
                self.send_op(buf, from, to)
            })
    }

    /// Waits for a datagram into `buf`: one the driver moved into the socket's pipe (no
    /// trip through the driver); with the socket gone, the stack says why.
    pub(crate) fn recv(
        &self,
        buf: &mut [u8],
        timeout: Option<std::time::Duration>,
        nonblocking: bool,
    ) -> io::Result<RecvMeta> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let (step, mark) = self
            .io
            .blocking_step(READABLE, deadline, nonblocking, |p, m| {
                self.take_datagram(p, buf, m)
            });
        self.marked(mark);
        if let Step::Done(r) = step {
            return r;
        }
        let f = self.recv_op(buf.len());
        let (got, m) = self
            .shared
            .blocking(&self.io, READABLE, left(deadline), nonblocking, f)?;
        Ok(fill(got, m, buf))
    }

    /// The task's [`recv`](Self::recv).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<RecvMeta>> {
        let (step, mark) = self
            .io
            .poll_step(cx, READABLE, |p, m| self.take_datagram(p, buf, m));
        self.marked(mark);
        match step {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Step::Done(r)) => Poll::Ready(r),
            Poll::Ready(_) => {
                let len = buf.len();
                self.shared
                    .poll_io(cx, &self.io, READABLE, &self.slots[0], || self.recv_op(len))
                    .map_ok(|(got, m)| fill(got, m, buf))
            }
        }
    }

    /// Queues the pipe for the driver when a step marked it.
    fn marked(&self, mark: bool) {
        if mark {
            self.shared.mark(&self.io);
        }
    }

    /// The driver's receive of up to `max` datagrams in one call (each whole, sized to
    /// it). Waits on READABLE while none is queued.
    fn recv_many_op(
        &self,
        max: usize,
    ) -> impl FnMut(&mut Core, Instant) -> Option<io::Result<Vec<Datagram>>> + Send + 'static {
        let (host, u) = (self.host, self.handle);
        move |core, _| {
            let stack = &mut core.hosts[host].stack;
            let mut got = Vec::new();
            while got.len() < max.max(1) {
                let next = match stack.udp_next_len(u) {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(e) if got.is_empty() => return Some(Err(e)),
                    Err(_) => break,
                };
                let mut data = vec![0u8; next];
                match stack.recv_from(u, &mut data) {
                    Ok(m) => {
                        data.truncate(m.len);
                        got.push(Datagram {
                            data,
                            src: m.src,
                            dst: m.dst,
                        });
                    }
                    Err(e) if got.is_empty() && e.kind() != io::ErrorKind::WouldBlock => {
                        return Some(Err(e));
                    }
                    Err(_) => break,
                }
            }
            (!got.is_empty()).then_some(Ok(got))
        }
    }

    /// The driver's send of `batch` (each from its `src` to its `dst`) in one call: as many
    /// as the output queue takes, at least one (waits on WRITABLE while it takes none).
    /// An error on the first fails the call; on a later one, the count sent before it.
    fn send_many_op(
        &self,
        batch: Vec<Datagram>,
    ) -> impl FnMut(&mut Core, Instant) -> Option<io::Result<usize>> + Send + 'static {
        let (host, u) = (self.host, self.handle);
        move |core, now| {
            let h = &mut core.hosts[host];
            for (i, d) in batch.iter().enumerate() {
                match h.stack.send_from(now, u, &d.data, d.src, d.dst) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && i == 0 => {
                        h.sockets.send_blocked(u);
                        return None;
                    }
                    Err(e) if i == 0 => return Some(Err(e)),
                    Err(_) => return Some(Ok(i)),
                }
            }
            Some(Ok(batch.len()))
        }
    }

    /// [`pipe::recv_datagram`], counting what it took as read (`UdpInDatagrams`) under the
    /// pipe's lock, as [`take_datagrams`](Self::take_datagrams) does: no datagram is out of
    /// the pipe and uncounted.
    fn take_datagram(&self, p: &mut pipe::Pipe, buf: &mut [u8], mark: &mut bool) -> Step<RecvMeta> {
        let r = pipe::recv_datagram(p, buf, mark);
        if let Step::Done(Ok(m)) = &r {
            self.shared
                .count_udp_reads(self.io.host, core::iter::once(m.dst));
        }
        r
    }

    /// [`pipe::recv_datagrams`], counting what it took as read (`UdpInDatagrams`).
    fn take_datagrams(
        &self,
        p: &mut pipe::Pipe,
        max: usize,
        mark: &mut bool,
    ) -> Step<Vec<Datagram>> {
        let r = pipe::recv_datagrams(p, max, mark);
        if let Step::Done(Ok(got)) = &r {
            self.shared
                .count_udp_reads(self.io.host, got.iter().map(|d| d.dst));
        }
        r
    }

    /// Receives up to `max` datagrams, waiting while none is queued: what the driver moved
    /// into the socket's pipe, taken under the socket's own lock (no trip through the
    /// driver); with the socket gone, the stack says why.
    pub(crate) fn recv_many(
        &self,
        max: usize,
        timeout: Option<std::time::Duration>,
        nonblocking: bool,
    ) -> io::Result<Vec<Datagram>> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        blocking_pipe(
            &self.shared,
            &self.io,
            READABLE,
            (deadline, nonblocking),
            |p, m| self.take_datagrams(p, max, m),
            || self.recv_many_op(max),
        )
    }

    /// The task's [`recv_many`](Self::recv_many).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_recv_many(
        &self,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<io::Result<Vec<Datagram>>> {
        poll_pipe(
            &self.shared,
            &self.io,
            cx,
            (READABLE, &self.slots[2]),
            |p, m| self.take_datagrams(p, max, m),
            || self.recv_many_op(max),
        )
    }

    /// Sends `batch` in one trip through the driver (see `send_many_op`).
    pub(crate) fn send_many(
        &self,
        batch: &[Datagram],
        timeout: Option<std::time::Duration>,
        nonblocking: bool,
    ) -> io::Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        let f = self.send_many_op(batch.to_vec());
        self.shared
            .blocking(&self.io, WRITABLE, timeout, nonblocking, f)
    }

    /// The task's [`send_many`](Self::send_many).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_send_many(
        &self,
        cx: &mut Context<'_>,
        batch: &[Datagram],
    ) -> Poll<io::Result<usize>> {
        if batch.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.shared
            .poll_io(cx, &self.io, WRITABLE, &self.slots[3], || {
                self.send_many_op(batch.to_vec())
            })
    }

    /// Refuses forwarded UDP flow `client` → `dst` (see [`Stack::forward_udp_refuse`]);
    /// InvalidInput on a socket that is not its host's forwarder socket.
    pub(crate) fn refuse_flow(
        &self,
        client: SocketAddr,
        dst: SocketAddr,
        code: crate::stack::Unreachable,
    ) -> Arc<super::runtime::Completion<()>> {
        let (host, u) = (self.host, self.handle);
        self.shared.call(move |core, _| {
            let stack = &mut core.hosts[host].stack;
            if stack.forwarding().map(|f| f.udp) != Some(u) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not the forwarder's socket: only it has flows to refuse",
                ));
            }
            stack.forward_udp_refuse(client, dst, code)
        })
    }

    /// The pending ICMP error, taken (SO_ERROR).
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        self.io.lock().pipe.ctl.udp_error.take()
    }

    /// The bound address; the forwarder's socket has none of its own.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.lock().pipe.ctl.local.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "the forwarder's socket has no address of its own: it takes every \
                 forwarded destination (see recv_from_meta)",
            )
        })
    }
}

/// A datagram the driver received, into the caller's buffer (a buffer that shrank since
/// the call began truncates it, as a short buffer does).
fn fill(got: Vec<u8>, mut m: RecvMeta, buf: &mut [u8]) -> RecvMeta {
    m.len = copy_out(&got, buf);
    m
}

impl Drop for Dgram {
    fn drop(&mut self) {
        let (host, h) = (self.host, self.handle);
        self.shared.post(move |core, _| {
            let hs = &mut core.hosts[host];
            hs.sockets.deregister(Id::Udp(h));
            hs.stack.udp_close(h);
        });
    }
}
