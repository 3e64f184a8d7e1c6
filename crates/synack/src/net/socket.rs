//! One open socket of a runtime, as both façades see it: its host, its handle in the stack,
//! its readiness; and the calls on it, each a non-blocking step that says `None` when it has
//! to wait (for [`Shared::blocking`] or [`Shared::poll_io`]). Dropping it closes the socket.

use core::net::SocketAddr;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::pipe::{self, Step};
use super::readiness::{Id, Kind, READABLE, SocketIo, WRITABLE};
use super::runtime::{Core, Host, Shared};
use crate::stack::{ForwardConfig, RecvMeta, SocketHandle, SocketOption, Stack, UdpHandle};
use crate::tcp::{Connection, Shutdown, State};
use crate::time::Instant;

pub(crate) struct Sock {
    pub(crate) shared: Arc<Shared>,
    host: usize,
    handle: SocketHandle,
    kind: Kind,
    pub(crate) io: Arc<SocketIo>,
    /// An IPv6 socket: IPv4 addresses show IPv4-mapped.
    v6_socket: bool,
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

impl Sock {
    fn stack<'a>(&self, core: &'a mut Core) -> &'a mut Stack {
        &mut core.hosts[self.host].stack
    }

    /// Opens a socket on `host` with `open` (under the stack lock, then a kick for the
    /// driver) and registers it as `kind`.
    fn open(
        host: &Host,
        kind: Kind,
        v6_socket: bool,
        open: impl FnOnce(&mut Stack, Instant) -> io::Result<SocketHandle>,
    ) -> io::Result<Sock> {
        let shared = host.shared.clone();
        let (handle, io) = shared.call(|core, now| {
            if core.stopped {
                return Err(io::Error::other("the synack runtime has stopped"));
            }
            let h = &mut core.hosts[host.index];
            let handle = open(&mut h.stack, now)?;
            let io = h
                .sockets
                .register(&mut h.stack, now, host.index, Id::Tcp(handle), kind);
            Ok((handle, io))
        })?;
        Ok(Sock {
            shared,
            host: host.index,
            handle,
            kind,
            io,
            v6_socket,
        })
    }

    /// Listens on `local` on `host` (backlog 128, like Linux's default somaxconn).
    pub(crate) fn listen(host: &Host, local: SocketAddr, v6only: bool) -> io::Result<Sock> {
        Self::open(host, Kind::Listener, local.is_ipv6(), |stack, _| {
            let tcp = stack.config().tcp.clone();
            stack.listen_opts(local, 128, tcp, v6only)
        })
    }

    /// Sends the SYN; [`try_connected`](Self::try_connected) then says how it went.
    /// Connecting to `[::ffff:a.b.c.d]:p` is an IPv6 socket talking IPv4.
    pub(crate) fn connect(host: &Host, addr: SocketAddr) -> io::Result<Sock> {
        Self::open(host, Kind::Stream, addr.is_ipv6(), |stack, now| {
            stack.connect(now, addr, None)
        })
    }

    /// The handshake's outcome once there is one (ConnectionRefused, TimedOut after the SYN
    /// retries, ...). Waits on WRITABLE.
    pub(crate) fn try_connected(&self, core: &mut Core) -> Option<io::Result<()>> {
        let Some(c) = self.stack(core).connection(self.handle) else {
            return Some(Err(gone()));
        };
        match c.state() {
            State::SynSent | State::SynReceived => None,
            State::Closed => Some(Err(c.error().map(io::Error::from).unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "connection closed during the handshake",
                )
            }))),
            _ => Some(Ok(())),
        }
    }

    /// Waits for a connection (`WouldBlock` at once when `nonblocking`): one the driver has
    /// put in the listener's pipe, else (under the stack lock) one off the accept queue.
    pub(crate) fn accept(&self, nonblocking: bool) -> io::Result<(Sock, SocketAddr)> {
        let (step, mark) = self
            .io
            .blocking_step(READABLE, None, nonblocking, pipe::accept);
        self.marked(mark);
        match step {
            Step::Done(r) => r.map(|(io, peer)| self.accepted(io, peer)),
            _ => self.blocking(READ, None, nonblocking, |l, core, now| {
                l.try_accept(core, now)
            }),
        }
    }

    /// The task's [`accept`](Self::accept).
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Sock, SocketAddr)>> {
        let (step, mark) = self.io.poll_step(cx, READABLE, pipe::accept);
        self.marked(mark);
        match step {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Step::Done(r)) => Poll::Ready(r.map(|(io, peer)| self.accepted(io, peer))),
            Poll::Ready(_) => self.poll(cx, READ, |l, core, now| l.try_accept(core, now)),
        }
    }

    /// The socket of a connection the driver accepted, and its peer as this listener shows
    /// it.
    fn accepted(&self, io: Arc<SocketIo>, peer: SocketAddr) -> (Sock, SocketAddr) {
        let Id::Tcp(handle) = io.id else {
            unreachable!("a listener's pipe holds TCP connections only")
        };
        let sock = Sock {
            shared: self.shared.clone(),
            host: self.host,
            handle,
            kind: Kind::Stream,
            io,
            v6_socket: self.v6_socket,
        };
        (sock, as_seen(self.v6_socket, peer))
    }

    /// Takes a connection off the listener's pipe, else off the stack's accept queue, under
    /// the stack lock. Waits on READABLE.
    fn try_accept(&self, core: &mut Core, now: Instant) -> Option<io::Result<(Sock, SocketAddr)>> {
        // What the driver moved into the pipe while this call waited comes first.
        let mut mark = false;
        let queued = match pipe::accept(&mut self.io.lock().pipe, &mut mark) {
            Step::Done(r) => r.ok(),
            _ => None,
        };
        self.marked(mark);
        if let Some((io, peer)) = queued {
            return Some(Ok(self.accepted(io, peer)));
        }
        let h = &mut core.hosts[self.host];
        match h.stack.accept(self.handle) {
            Ok(Some(handle)) => {
                let peer = h.stack.connection(handle).map(|c| c.remote());
                let io =
                    h.sockets
                        .register(&mut h.stack, now, self.host, Id::Tcp(handle), Kind::Stream);
                let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
                let accepted = self.accepted(io, peer.unwrap_or(unspecified));
                // A connection already gone: dropping its socket closes the handle.
                Some(peer.map(|_| accepted).ok_or_else(gone))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Reads into `buf` (or peeks) from the pipe, blocking the thread until there is
    /// something; at the end of the stream the stack says what (see `try_recv`).
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
            _ => self.blocking(READ, left(deadline), nonblocking, |s, core, now| {
                s.try_recv(core, now, buf, peek)
            }),
        }
    }

    /// The task's [`read`](Self::read).
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
            Poll::Ready(_) => self.poll(cx, READ, |s, core, now| s.try_recv(core, now, buf, peek)),
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
        let (step, mark) = self
            .io
            .blocking_step(WRITABLE, deadline, nonblocking, |p, m| {
                pipe::write(p, buf, m)
            });
        self.marked(mark);
        match step {
            Step::Done(r) => r,
            _ => self.blocking(WRITE, left(deadline), nonblocking, |s, core, now| {
                s.try_send(core, now, buf)
            }),
        }
    }

    /// The task's [`write`](Self::write).
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let (step, mark) = self
            .io
            .poll_step(cx, WRITABLE, |p, m| pipe::write(p, buf, m));
        self.marked(mark);
        match step {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Step::Done(r)) => Poll::Ready(r),
            Poll::Ready(_) => self.poll(cx, WRITE, |s, core, now| s.try_send(core, now, buf)),
        }
    }

    /// Queues the pipe for the driver when a step marked it.
    fn marked(&self, mark: bool) {
        if mark {
            self.shared.mark(&self.io);
        }
    }

    /// A read the pipe cannot answer, under the stack lock: what the pipe still holds, else
    /// what the connection says (its bytes, the end of the stream, an error once).
    fn try_recv(
        &self,
        core: &mut Core,
        now: Instant,
        buf: &mut [u8],
        peek: bool,
    ) -> Option<io::Result<usize>> {
        if buf.is_empty() {
            return Some(Ok(0));
        }
        {
            let mut s = self.io.lock();
            if !s.pipe.rx.is_empty() {
                let mut mark = false;
                if let Step::Done(r) = pipe::read(&mut s.pipe, buf, peek, &mut mark) {
                    return Some(r);
                }
            }
        }
        let stack = self.stack(core);
        let r = if peek {
            stack.peek(self.handle, buf)
        } else {
            stack.recv(now, self.handle, buf)
        };
        match r {
            Ok(0) => {
                let Some(c) = stack.connection(self.handle) else {
                    return Some(Ok(0));
                };
                if c.is_readable() {
                    // End of stream, or an error to report.
                    Some(match c.error() {
                        Some(e) if !c.peer_closed() => Err(io::Error::from(e)),
                        _ => Ok(0),
                    })
                } else if c.state() == State::Closed {
                    Some(Ok(0))
                } else {
                    None
                }
            }
            other => Some(other),
        }
    }

    /// A write the pipe cannot take, under the stack lock: the pipe's bytes go first, then
    /// the connection takes `buf` or says why not.
    fn try_send(&self, core: &mut Core, now: Instant, buf: &[u8]) -> Option<io::Result<usize>> {
        if buf.is_empty() {
            return Some(Ok(0));
        }
        let stack = &mut core.hosts[self.host].stack;
        {
            let mut s = self.io.lock();
            if let Some(e) = s.pipe.tx_err.take() {
                return Some(Err(e));
            }
            if pipe::flush(stack, now, self.handle, &mut s.pipe) {
                // The connection is full behind the pipe's bytes.
                return None;
            }
        }
        match stack.send(now, self.handle, buf) {
            Ok(0) => None,
            other => Some(other),
        }
    }

    /// Shuts the connection down; a FIN follows what the pipe still holds (once the
    /// connection took it, by the driver).
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.shared.call(|core, now| {
            let hs = &mut core.hosts[self.host];
            if self.kind != Kind::Stream {
                if how != Shutdown::Write {
                    hs.sockets.abort_unclaimed(&mut hs.stack, now, &self.io);
                }
                return hs.stack.shutdown(now, self.handle, how);
            }
            let stack = &mut hs.stack;
            let mut s = self.io.lock();
            let p = &mut s.pipe;
            if how != Shutdown::Write {
                // Received bytes not yet read go, as the connection's own do.
                p.rx.clear();
            }
            let held = pipe::flush(stack, now, self.handle, p);
            match how {
                Shutdown::Write | Shutdown::Both if held => {
                    p.fin_pending = true;
                    drop(s);
                    self.shared.mark(&self.io);
                    if how == Shutdown::Both {
                        return stack.shutdown(now, self.handle, Shutdown::Read);
                    }
                    Ok(())
                }
                // Already shut down for writing, the FIN waiting behind the pipe's bytes.
                Shutdown::Write | Shutdown::Both if p.fin_pending => Ok(()),
                _ => stack.shutdown(now, self.handle, how),
            }
        })
    }

    /// Resets the connection (SO_LINGER 0 then close): what the pipe holds goes too.
    pub(crate) fn abort(&self) {
        self.shared.call(|core, now| {
            {
                let mut s = self.io.lock();
                s.pipe.tx.clear();
                s.pipe.rx.clear();
                s.pipe.fin_pending = false;
            }
            self.stack(core).abort(now, self.handle)
        });
    }

    pub(crate) fn set_option(&self, opt: SocketOption) -> io::Result<()> {
        self.shared
            .call(|core, now| self.stack(core).set_option(now, self.handle, opt))
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

    pub(crate) fn ttl(&self) -> io::Result<u32> {
        self.shared
            .with(|core, _| self.stack(core).ttl(self.handle).map(u32::from))
    }

    /// Reads something of the connection.
    pub(crate) fn conn<T>(&self, f: impl FnOnce(&Connection) -> T) -> io::Result<T> {
        self.shared.with(|core, _| {
            self.stack(core)
                .connection(self.handle)
                .map(f)
                .ok_or_else(gone)
        })
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        let v6 = self.v6_socket;
        self.conn(|c| as_seen(v6, c.remote()))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        let v6 = self.v6_socket;
        self.conn(|c| as_seen(v6, c.local()))
    }
}

/// What a socket call does between its non-blocking steps: wait on the socket's readiness.
pub(crate) trait Waits: Sized {
    fn parts(&self) -> (&Shared, &SocketIo);

    /// Blocks the thread until `step` does something (see [`Shared::blocking`]).
    fn blocking<T>(
        &self,
        interest: u8,
        timeout: Option<std::time::Duration>,
        nonblocking: bool,
        mut step: impl FnMut(&Self, &mut Core, Instant) -> Option<io::Result<T>>,
    ) -> io::Result<T> {
        let (shared, io) = self.parts();
        shared.blocking(io, interest, timeout, nonblocking, |core, now| {
            step(self, core, now)
        })
    }

    /// The task's side of [`blocking`](Self::blocking) (see [`Shared::poll_io`]).
    fn poll<T>(
        &self,
        cx: &mut std::task::Context<'_>,
        interest: u8,
        mut step: impl FnMut(&Self, &mut Core, Instant) -> Option<io::Result<T>>,
    ) -> std::task::Poll<io::Result<T>> {
        let (shared, io) = self.parts();
        shared.poll_io(cx, io, interest, |core, now| step(self, core, now))
    }
}

impl Waits for Sock {
    fn parts(&self) -> (&Shared, &SocketIo) {
        (&self.shared, &self.io)
    }
}

impl Waits for Dgram {
    fn parts(&self) -> (&Shared, &SocketIo) {
        (&self.shared, &self.io)
    }
}

pub(crate) const READ: u8 = READABLE;
pub(crate) const WRITE: u8 = WRITABLE;

impl Drop for Sock {
    fn drop(&mut self) {
        if self.kind == Kind::Stream {
            // Closes the connection now when the pipe's bytes all fit into it; else the
            // driver closes it once they are in (no data is lost on close).
            self.shared.call(|core, now| {
                let hs = &mut core.hosts[self.host];
                self.io.lock().pipe.dropped = true;
                hs.sockets.sync(&mut hs.stack, now, &self.io);
            });
            return;
        }
        let (host, h) = (self.host, self.handle);
        self.shared.call(|core, now| {
            let hs = &mut core.hosts[host];
            hs.sockets.abort_unclaimed(&mut hs.stack, now, &self.io);
            hs.sockets.deregister(Id::Tcp(h));
            hs.stack.close(now, h);
        });
    }
}

/// One open UDP socket (`Kind::Datagram`): a bound one, or a host's forwarder socket. Its
/// steps, like [`Sock`]'s, say `None` when they have to wait. Dropping it closes the socket.
pub(crate) struct Dgram {
    pub(crate) shared: Arc<Shared>,
    host: usize,
    handle: UdpHandle,
    pub(crate) io: Arc<SocketIo>,
}

impl Dgram {
    fn open(
        host: &Host,
        open: impl FnOnce(&mut Stack) -> io::Result<UdpHandle>,
    ) -> io::Result<Dgram> {
        let shared = host.shared.clone();
        let (handle, io) = shared.call(|core, now| {
            if core.stopped {
                return Err(io::Error::other("the synack runtime has stopped"));
            }
            let h = &mut core.hosts[host.index];
            let handle = open(&mut h.stack)?;
            let io = h.sockets.register(
                &mut h.stack,
                now,
                host.index,
                Id::Udp(handle),
                Kind::Datagram,
            );
            Ok((handle, io))
        })?;
        Ok(Dgram {
            shared,
            host: host.index,
            handle,
            io,
        })
    }

    /// Binds `local` on `host` (port 0: an ephemeral port).
    pub(crate) fn bind(host: &Host, local: SocketAddr) -> io::Result<Dgram> {
        Self::open(host, |stack| stack.udp_bind(local))
    }

    /// Turns forwarding on for `host` with `cfg` and opens its datagram socket, which takes
    /// the datagrams of every forwarded UDP flow. AddrInUse when forwarding is on already.
    pub(crate) fn forwarder(host: &Host, cfg: ForwardConfig) -> io::Result<Dgram> {
        Self::open(host, |stack| {
            if stack.forwarding().is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "forwarding is on already on this host (one forwarder socket per host)",
                ));
            }
            Ok(stack.enable_forwarding(cfg).udp)
        })
    }

    fn stack<'a>(&self, core: &'a mut Core) -> &'a mut Stack {
        &mut core.hosts[self.host].stack
    }

    /// The next datagram. An ICMP error about one the socket sent does not fail it: Linux
    /// reports those to an unconnected socket only with IP_RECVERR, so a server is not
    /// broken by a client that went away; it waits for `take_error`. Waits on READABLE.
    pub(crate) fn try_recv_from(
        &self,
        core: &mut Core,
        buf: &mut [u8],
    ) -> Option<io::Result<RecvMeta>> {
        match self.stack(core).recv_from(self.handle, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            r => Some(r),
        }
    }

    /// Sends one datagram to `to`, from `from` (`None`: the socket's address; see
    /// [`Stack::send_from`]). A full output queue waits for the driver's next turn. Waits on
    /// WRITABLE.
    pub(crate) fn try_send(
        &self,
        core: &mut Core,
        now: Instant,
        buf: &[u8],
        from: Option<SocketAddr>,
        to: SocketAddr,
    ) -> Option<io::Result<usize>> {
        let h = &mut core.hosts[self.host];
        let r = match from {
            None => h.stack.send_to(now, self.handle, buf, to),
            Some(from) => h.stack.send_from(now, self.handle, buf, from, to),
        };
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                h.sockets.send_blocked(self.handle);
                None
            }
            r => Some(r),
        }
    }

    pub(crate) fn take_error(&self) -> Option<io::Error> {
        self.shared
            .with(|core, _| self.stack(core).udp_take_error(self.handle))
    }

    /// The bound address; the forwarder's socket has none of its own.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared
            .with(|core, _| self.stack(core).udp_local_addr(self.handle))?
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    "the forwarder's socket has no address of its own: it takes every \
                     forwarded destination (see recv_from_meta)",
                )
            })
    }
}

impl Drop for Dgram {
    fn drop(&mut self) {
        let (host, h) = (self.host, self.handle);
        self.shared.call(|core, _| {
            let hs = &mut core.hosts[host];
            hs.sockets.deregister(Id::Udp(h));
            hs.stack.udp_close(h);
        });
    }
}
