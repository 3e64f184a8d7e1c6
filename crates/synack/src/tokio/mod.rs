//! Async sockets for tokio: `tokio::net`'s `TcpListener` and `TcpStream` with synack
//! underneath (feature `tokio`, on by default).
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use synack::net::Runtime;
//! use synack::tokio::{TcpListener, TcpStream};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // Two hosts on an in-memory link; the driver is a task on this tokio runtime.
//! let rt = Runtime::builder()
//!     .host("client", "198.18.0.1/24")
//!     .host("server", "198.18.0.2/24")
//!     .build_tokio()?;
//! rt.host("client").unwrap().make_default(); // TcpStream::connect connects from it
//! let listener = TcpListener::bind("198.18.0.2:7").await?;
//! tokio::spawn(async move {
//!     let (mut s, _) = listener.accept().await?;
//!     let (mut r, mut w) = s.split();
//!     tokio::io::copy(&mut r, &mut w).await?; // echo until the client's FIN
//!     s.shutdown().await
//! });
//! let mut c = TcpStream::connect("198.18.0.2:7").await?;
//! c.write_all(b"hello").await?;
//! c.shutdown().await?; // FIN after the data
//! let mut back = Vec::new();
//! c.read_to_end(&mut back).await?;
//! assert_eq!(back, b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! Build the runtime with [`Builder::build_tokio`](crate::net::Builder::build_tokio) from
//! inside a tokio runtime: the driver (timers, packets, readiness) is then a task on it, and a
//! device is read through `AsyncFd`, so synack adds no thread. Each socket has its own
//! readiness and wakers (one reader, one writer), so an event on one connection wakes only
//! the tasks waiting on it.
//!
//! Code written for `tokio::net` ports by changing the import: `bind`, `accept`, `connect`,
//! `AsyncRead`/`AsyncWrite`, `split`/`into_split`, `peek`, `set_nodelay`, `peer_addr`,
//! `local_addr`; [`TcpStream::info`] is TCP_INFO. `poll_shutdown` (`shutdown().await`)
//! queues a FIN behind the data not yet sent, which goes once that data has gone; it works
//! with `tokio::io::copy_bidirectional`.
//!
//! [`UdpSocket`] is `tokio::net::UdpSocket`'s unconnected half (`bind`, `send_to`,
//! `recv_from`, `poll_send_to`, `poll_recv_from`); [`UdpSocket::forwarder_on`] gives a
//! forwarder host's datagrams with their original destinations, for relaying.
//! [`ForwardListener`] gives the same host's pending TCP flows, each accepted, refused or
//! ignored before the client hears anything.

use core::net::{IpAddr, SocketAddr};
use std::future::poll_fn;
use std::io;
use std::net::ToSocketAddrs;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::device::Device;
use crate::net::runtime::Shared;
use crate::net::{
    Datagram, Dgram, Echo, Flow, Fwd, Host, Sock, SocketOption, host_for_bind, host_for_connect,
    one_addr,
};
use crate::stack::{ForwardConfig, RecvMeta, Refusal, Unreachable};
use crate::tcp::Shutdown;

/// A listening socket.
pub struct TcpListener {
    sock: Sock,
    local: SocketAddr,
}

impl TcpListener {
    /// Listens on `addr` on the host of a running runtime that owns it (an unspecified
    /// address: the default host), as [`net::TcpListener::bind`](crate::net::TcpListener::bind)
    /// does.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let local = one_addr(addr)?;
        Ok(TcpListener {
            sock: Sock::listen(&host_for_bind(local)?, local, false)
                .done()
                .await?,
            local,
        })
    }

    /// Listens on `addr` on `host` (backlog 128). Synchronous: it waits for the driver to
    /// open the listener (see [`bind`](Self::bind) for the async form).
    pub fn bind_on(host: &Host, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let local = one_addr(addr)?;
        Ok(TcpListener {
            sock: Sock::listen(host, local, false).wait()?,
            local,
        })
    }

    /// Waits for a connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection; registers the task to be woken when one is queued.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.sock
            .poll_accept(cx)
            .map_ok(|(s, peer)| (TcpStream::from_sock(s), peer))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// A stream's half shared by its owned halves.
struct Stream {
    sock: Sock,
    /// The FIN is queued (by `poll_shutdown` or dropping an owned write half).
    shut_wr: AtomicBool,
}

impl Stream {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = match self.sock.poll_read(cx, buf.initialize_unfilled(), false) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.sock.poll_read(cx, buf, true)
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.sock.poll_write(cx, buf)
    }

    fn poll_write_from<R: AsyncRead + Unpin + ?Sized>(
        &self,
        cx: &mut Context<'_>,
        r: &mut R,
    ) -> Poll<io::Result<usize>> {
        self.sock.poll_write_from(cx, |cx, b| {
            let mut rb = ReadBuf::new(b);
            match Pin::new(r).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    }

    /// Queues the FIN after the data not yet sent (once; later calls succeed too).
    fn shutdown_write(&self) -> io::Result<()> {
        if self.shut_wr.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.sock.shutdown(Shutdown::Write)
    }
}

/// A TCP connection: `AsyncRead` + `AsyncWrite`.
pub struct TcpStream {
    inner: Arc<Stream>,
}

impl TcpStream {
    fn from_sock(sock: Sock) -> TcpStream {
        TcpStream {
            inner: Arc::new(Stream {
                sock,
                shut_wr: AtomicBool::new(false),
            }),
        }
    }

    /// Connects from the default host (see [`Host::make_default`]) to `addr` and waits for
    /// the handshake (ConnectionRefused, TimedOut after the SYN retries, ...).
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        TcpStream::connect_on(&host_for_connect()?, addr).await
    }

    /// Connects from `host` to `addr`.
    pub async fn connect_on(host: &Host, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let sock = Sock::connect(host, one_addr(addr)?).done().await?;
        poll_fn(|cx| sock.poll_connected(cx)).await?;
        Ok(TcpStream::from_sock(sock))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.local_addr()
    }

    /// TCP_NODELAY. Synchronous and waits for nothing: the option is recorded on the socket
    /// and applied by the driver at its next turn, before anything written after this call
    /// is sent.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.sock.set_option(SocketOption::NoDelay(on))
    }

    /// TCP_NODELAY as set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.sock.nodelay()
    }

    /// IP_TTL: the TTL of this connection's packets (1 to 255; on an IPv6 connection, the hop
    /// limit), like std's.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.sock.set_ttl(ttl)
    }

    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.sock.ttl()
    }

    /// Per-connection statistics (TCP_INFO), built by the driver when asked (not at every
    /// change of every connection): resolves at the driver's next turn, as Linux's
    /// getsockopt waits for the socket's lock.
    pub async fn info(&self) -> io::Result<crate::tcp::connection::Info> {
        self.inner.sock.info_async().await
    }

    /// Reads without consuming (MSG_PEEK): the next read returns the same bytes.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.inner.poll_peek(cx, buf)).await
    }

    /// Waits until a read would not wait: bytes have arrived, or the stream ended or failed
    /// (the read then returns 0 or the error), as tokio's `TcpStream::readable`. Reads
    /// nothing: a copy can wait for its reader before it takes a buffer, and dropping this
    /// wait (in a `select!`, say) leaves nothing behind, where a dropped read at the end of
    /// the stream leaves its question with the runtime's driver for the next call. Fails
    /// only once the runtime has stopped. Unlike tokio's, one task waits at a time: the
    /// stream keeps one reader's waker, which `read`, `peek` and this share, so the last
    /// task to wait is the one woken (as with two tasks reading one stream).
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// [`readable`](Self::readable) for a hand-written future: `Pending` with the task's
    /// waker kept (the last task's, as tokio's `poll_read_ready`).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.sock.io.poll_read_ready(cx)
    }

    /// Writes what `reader` has into the stream's send queue, read straight into that
    /// queue's free room: no buffer of the caller's in between, so a relay copying from an
    /// upstream socket into synack moves each byte once where `read` then `write` move it
    /// twice. Waits for room (up to [`Builder::stream_buffers`](crate::net::Builder::stream_buffers)'
    /// `send` bytes queued ahead of the connection), then for `reader` to have bytes; returns
    /// how many it read, or 0 once `reader` is at its end (the stream is not shut down: call
    /// `shutdown` to pass the end on). `reader`'s error is returned as is.
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use synack::net::Runtime;
    /// use synack::tokio::{TcpListener, TcpStream};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let rt = Runtime::builder()
    ///     .host("client", "198.18.0.1/24")
    ///     .host("server", "198.18.0.2/24")
    ///     .build_tokio()?;
    /// let listener = TcpListener::bind("198.18.0.2:80").await?;
    /// rt.host("client").unwrap().make_default();
    /// let mut c = TcpStream::connect("198.18.0.2:80").await?;
    /// let (mut s, _) = listener.accept().await?;
    /// // Any AsyncRead: here a slice; in a relay, the upstream socket's read half.
    /// let mut upstream: &[u8] = b"hello from upstream";
    /// let mut sent = 0;
    /// loop {
    ///     match c.write_from(&mut upstream).await? {
    ///         0 => break, // upstream ended
    ///         n => sent += n,
    ///     }
    /// }
    /// c.shutdown().await?;
    /// let mut got = Vec::new();
    /// s.read_to_end(&mut got).await?;
    /// assert_eq!((sent, &got[..]), (19, &b"hello from upstream"[..]));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// `reader` is read under the stream's own lock (the runtime's driver waits for it to
    /// look at this stream), so it must be quick and never block: a kernel socket's read
    /// half is; another synack stream is not allowed (its read takes its own lock inside
    /// this one's, and two such copies in opposite directions would wait on each other):
    /// copy between two synack streams with `tokio::io::copy`.
    pub async fn write_from<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        reader: &mut R,
    ) -> io::Result<usize> {
        poll_fn(|cx| self.inner.poll_write_from(cx, reader)).await
    }

    /// [`write_from`](Self::write_from) for a hand-written future: `Pending` while the send
    /// queue is full (the task's waker kept for room) or while `reader` has nothing (its
    /// waker kept by `reader`).
    pub fn poll_write_from<R: AsyncRead + Unpin + ?Sized>(
        &self,
        cx: &mut Context<'_>,
        reader: &mut R,
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write_from(cx, reader)
    }

    /// Resets the connection (RST; queued data is discarded), as closing with SO_LINGER 0.
    pub fn abort(self) {
        self.inner.sock.abort();
    }

    /// Borrowed read and write halves, usable at once (say, in `tokio::io::copy`).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(&self.inner), WriteHalf(&self.inner))
    }

    /// Owned halves, for two tasks. Dropping the write half shuts writing down (FIN), as
    /// tokio's does; the connection closes when both are gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf(self.inner.clone()),
            OwnedWriteHalf(self.inner),
        )
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown_write())
    }
}

/// The read half of [`TcpStream::split`].
pub struct ReadHalf<'a>(&'a Stream);
/// The write half of [`TcpStream::split`].
pub struct WriteHalf<'a>(&'a Stream);
/// The read half of [`TcpStream::into_split`].
pub struct OwnedReadHalf(Arc<Stream>);
/// The write half of [`TcpStream::into_split`]; dropping it queues the FIN.
pub struct OwnedWriteHalf(Arc<Stream>);

impl ReadHalf<'_> {
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.0.poll_peek(cx, buf)).await
    }

    /// [`TcpStream::readable`].
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// [`TcpStream::poll_read_ready`].
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.sock.io.poll_read_ready(cx)
    }

    /// Ready once the connection failed (reset by the peer, timed out) or the runtime
    /// stopped; else `Pending` with the task's waker kept as the reader's. A connection
    /// that ended with both FINs never gets ready here. For a task busy elsewhere (writing
    /// what it read to a peer that stopped reading) that must notice the connection's death.
    pub fn poll_failed(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.sock.io.poll_failed(cx)
    }
}

impl OwnedReadHalf {
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.0.poll_peek(cx, buf)).await
    }

    /// [`TcpStream::readable`].
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// [`TcpStream::poll_read_ready`].
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.sock.io.poll_read_ready(cx)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.sock.peer_addr()
    }
}

impl OwnedWriteHalf {
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.sock.peer_addr()
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        let _ = self.0.shutdown_write();
    }
}

macro_rules! read_half {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.0.poll_read(cx, buf)
            }
        }
    };
}

macro_rules! write_half {
    ($t:ty) => {
        impl $t {
            /// [`TcpStream::write_from`].
            pub async fn write_from<R: AsyncRead + Unpin + ?Sized>(
                &mut self,
                reader: &mut R,
            ) -> io::Result<usize> {
                poll_fn(|cx| self.0.poll_write_from(cx, reader)).await
            }

            /// [`TcpStream::poll_write_from`].
            pub fn poll_write_from<R: AsyncRead + Unpin + ?Sized>(
                &self,
                cx: &mut Context<'_>,
                reader: &mut R,
            ) -> Poll<io::Result<usize>> {
                self.0.poll_write_from(cx, reader)
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.0.poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.0.shutdown_write())
            }
        }
    };
}

read_half!(ReadHalf<'_>);
read_half!(OwnedReadHalf);
write_half!(WriteHalf<'_>);
write_half!(OwnedWriteHalf);

/// A UDP socket, like `tokio::net::UdpSocket` (unconnected).
///
/// ```
/// use synack::net::Runtime;
/// use synack::tokio::UdpSocket;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let rt = Runtime::builder()
///     .host("a", "198.18.0.1/24")
///     .host("b", "198.18.0.2/24")
///     .build_tokio()?;
/// let server = UdpSocket::bind("198.18.0.2:53").await?;
/// let client = UdpSocket::bind("198.18.0.1:0").await?;
/// client.send_to(b"query", "198.18.0.2:53").await?;
/// let mut buf = [0u8; 512];
/// let (n, from) = server.recv_from(&mut buf).await?;
/// server.send_to(&buf[..n], from).await?;
/// let (n, _) = client.recv_from(&mut buf).await?;
/// assert_eq!(&buf[..n], b"query");
/// # Ok(())
/// # }
/// ```
///
/// Errors are those of [`net::UdpSocket`](crate::net::UdpSocket): an ICMP port unreachable
/// about a datagram it sent is [`take_error`](Self::take_error)'s ConnectionRefused and does
/// not fail `recv_from`, as on an unconnected Linux socket.
pub struct UdpSocket {
    sock: Dgram,
}

impl UdpSocket {
    /// Binds `addr` on the host of a running runtime that owns it (an unspecified address:
    /// the default host); port 0 picks an ephemeral port.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let local = one_addr(addr)?;
        Ok(UdpSocket {
            sock: Dgram::bind(&host_for_bind(local)?, local).done().await?,
        })
    }

    /// Binds `addr` on `host` (synchronous: it waits for the driver to open the socket).
    pub fn bind_on(host: &Host, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: Dgram::bind(host, one_addr(addr)?).wait()?,
        })
    }

    /// Turns forwarder mode on for `host` and returns the socket of every forwarded UDP
    /// flow, as [`net::UdpSocket::forwarder_on`](crate::net::UdpSocket::forwarder_on) does:
    /// [`recv_from_meta`](Self::recv_from_meta) gives each datagram's client and original
    /// destination, [`send_from`](Self::send_from) answers from that destination;
    /// [`recv_many`](Self::recv_many) and [`send_many`](Self::send_many) do the same for a
    /// batch in one trip through the driver (what a busy relay wants).
    ///
    /// A pitfall when relaying upstream through a `tokio::net::UdpSocket` opened for each
    /// flow: its `try_send` / `try_send_to` fail with `WouldBlock` until tokio's reactor has
    /// seen the socket writable, which a freshly created socket has not — a relay that sends
    /// a flow's first datagram with `try_send` right after creating the socket loses it.
    /// Send with `send(..).await` (or `writable().await` first) on a fresh socket.
    pub fn forwarder_on(host: &Host, cfg: ForwardConfig) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: Dgram::forwarder(host, cfg).wait()?,
        })
    }

    /// Sends `buf` as one datagram to `addr`.
    pub async fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = one_addr(addr)?;
        poll_fn(|cx| self.poll_send_to(cx, buf, to)).await
    }

    /// Polls to send `buf` to `to`; Pending only while the output queue is full.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        to: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.sock.poll_send(cx, buf, None, to)
    }

    /// Sends `buf` as one datagram from `from` to `to` (on the forwarder socket, `from` is a
    /// flow's original destination; NotConnected without such a flow).
    pub async fn send_from(
        &self,
        buf: &[u8],
        from: SocketAddr,
        to: SocketAddr,
    ) -> io::Result<usize> {
        poll_fn(|cx| self.sock.poll_send(cx, buf, Some(from), to)).await
    }

    /// Waits for a datagram; its length (at most `buf`'s, the rest lost) and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let m = self.recv_from_meta(buf).await?;
        Ok((m.len, m.src))
    }

    /// Waits for a datagram; its sender, its destination (on the forwarder socket, the
    /// original destination) and lengths.
    pub async fn recv_from_meta(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        poll_fn(|cx| self.poll_recv_meta(cx, buf)).await
    }

    fn poll_recv_meta(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<RecvMeta>> {
        self.sock.poll_recv(cx, buf)
    }

    /// Polls for a datagram into `buf`'s unfilled part; registers the task to be woken when
    /// one arrives.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let m = match self.poll_recv_meta(cx, buf.initialize_unfilled()) {
            Poll::Ready(Ok(m)) => m,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(m.len);
        Poll::Ready(Ok(m.src))
    }

    /// Waits for a datagram, then takes up to `max` (at least one) from the socket's own
    /// queue, into which the driver moves each datagram as it arrives: no trip through the
    /// driver (see [`net::UdpSocket::recv_many`](crate::net::UdpSocket::recv_many)).
    ///
    /// Each kind of call (single receive, batch receive, single send, batch send) has one
    /// call in flight per socket: an unfinished call is taken over by the next call of its
    /// kind, which gets its result. So two tasks making the same kind of call at once may
    /// see each other's results (and a send of the second task's data may be dropped while
    /// the first's goes out twice): make each kind of call from one task.
    pub async fn recv_many(&self, max: usize) -> io::Result<Vec<Datagram>> {
        poll_fn(|cx| self.sock.poll_recv_many(cx, max)).await
    }

    /// Sends `batch`, each from its `src` to its `dst`, in one trip through the driver: as
    /// many as the output queue takes, at least one (see
    /// [`net::UdpSocket::send_many`](crate::net::UdpSocket::send_many)). How many went.
    pub async fn send_many(&self, batch: &[Datagram]) -> io::Result<usize> {
        poll_fn(|cx| self.sock.poll_send_many(cx, batch)).await
    }

    /// On the forwarder socket: refuses the UDP flow from `client` to `dst` with an ICMP
    /// destination unreachable (`code`) from `dst`, and ends it (see
    /// [`net::UdpSocket::refuse_flow`](crate::net::UdpSocket::refuse_flow)).
    pub async fn refuse_flow(
        &self,
        client: SocketAddr,
        dst: SocketAddr,
        code: Unreachable,
    ) -> io::Result<()> {
        let c = self.sock.refuse_flow(client, dst, code);
        poll_fn(|cx| c.poll(cx)).await
    }

    /// The bound address (AddrNotAvailable on the forwarder socket).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The pending ICMP error, taken (SO_ERROR).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.sock.take_error())
    }
}

/// The TCP side of a forwarder host: every connection a client opens to a forwarded
/// destination waits here, before any answer, for the application to accept, refuse or
/// ignore it (see [`net::ForwardListener`](crate::net::ForwardListener), its blocking twin).
/// [`UdpSocket::forwarder_on`] on the same host gives the UDP side.
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use synack::net::Runtime;
/// use synack::stack::{ForwardConfig, Refusal, Unreachable};
/// use synack::tokio::{ForwardListener, TcpStream};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let rt = Runtime::builder()
///     .host("client", "198.18.0.1/24")
///     .host("gateway", "198.18.0.2/24")
///     .build_tokio()?;
/// let (client, gw) = (rt.host("client").unwrap(), rt.host("gateway").unwrap());
/// let cfg = ForwardConfig {
///     prefixes: vec!["198.18.0.0/24".parse().unwrap()],
///     ..ForwardConfig::default()
/// };
/// let flows = ForwardListener::bind_on(&gw, cfg).await?;
/// tokio::spawn(async move {
///     while let Ok(flow) = flows.accept().await {
///         // A proxy would connect upstream to flow.destination() first.
///         if flow.destination().port() == 80 {
///             let mut s = flow.accept().await?; // the SYN-ACK, from the destination
///             s.write_all(b"hi").await?;
///         } else {
///             flow.refuse(Refusal::Unreachable(Unreachable::Host)).await?;
///         }
///     }
///     std::io::Result::Ok(())
/// });
/// let mut c = TcpStream::connect_on(&client, "198.18.0.80:80").await?;
/// let mut got = [0u8; 2];
/// c.read_exact(&mut got).await?;
/// assert_eq!(&got, b"hi");
/// let e = TcpStream::connect_on(&client, "198.18.0.81:22").await.map(|_| ()).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::HostUnreachable);
/// # Ok(())
/// # }
/// ```
pub struct ForwardListener {
    fwd: Fwd,
}

impl ForwardListener {
    /// Turns forwarder mode on for `host` with `cfg` and takes its pending TCP flows.
    /// AddrInUse when the host has a forward listener already. Dropping it leaves forwarding
    /// on: flows then wait undecided until `cfg.pending_timeout`.
    pub async fn bind_on(host: &Host, cfg: ForwardConfig) -> io::Result<ForwardListener> {
        Ok(ForwardListener {
            fwd: Fwd::open(host, cfg).done().await?,
        })
    }

    /// Waits for the next TCP flow a client opened (its SYN is held until the decision, or
    /// a SYN cookie completed it: see [`PendingFlow::is_established`]). Echo requests and UDP
    /// flow ends stay for [`next_event`](Self::next_event).
    pub async fn accept(&self) -> io::Result<PendingFlow> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next TCP flow; registers the task to be woken when one comes.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<PendingFlow>> {
        loop {
            match self.fwd.poll_next(cx, false) {
                Poll::Ready(Ok(crate::net::Forwarded::Flow(f))) => {
                    return Poll::Ready(Ok(PendingFlow(f)));
                }
                // Never: only flows are taken.
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Waits for the next thing the forwarder asks of the application, in arrival order
    /// (see [`net::ForwardListener::next_event`](crate::net::ForwardListener::next_event)):
    /// a TCP flow, an echo request, or the end of a UDP flow.
    ///
    /// This and [`accept`](Self::accept) wait with one waker per listener: call one of the
    /// two, from one task (a task waiting in `accept` while another waits here may not be
    /// woken, as `next_event` also takes the TCP flows).
    ///
    /// ```
    /// use synack::net::Runtime;
    /// use synack::stack::{ForwardConfig, UdpCloseReason, Unreachable};
    /// use synack::tokio::{ForwardListener, Forwarded, UdpSocket};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let rt = Runtime::builder()
    ///     .host("client", "198.18.0.1/24")
    ///     .host("gateway", "198.18.0.2/24")
    ///     .build_tokio()?;
    /// let (client, gw) = (rt.host("client").unwrap(), rt.host("gateway").unwrap());
    /// let cfg = ForwardConfig {
    ///     prefixes: vec!["198.18.0.0/24".parse().unwrap()],
    ///     ..ForwardConfig::default()
    /// };
    /// let events = ForwardListener::bind_on(&gw, cfg.clone()).await?;
    /// let relay = UdpSocket::forwarder_on(&gw, cfg)?;
    /// let c = UdpSocket::bind_on(&client, "198.18.0.1:5000")?;
    /// c.send_to(b"query", "198.18.0.53:53").await?;
    /// let m = relay.recv_from_meta(&mut [0u8; 64]).await?;
    /// relay.refuse_flow(m.src, m.dst, Unreachable::Port).await?;
    /// match events.next_event().await? {
    ///     Forwarded::UdpClosed { reason, .. } => assert_eq!(reason, UdpCloseReason::Refused),
    ///     _ => unreachable!("nothing else happened"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next_event(&self) -> io::Result<Forwarded> {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Polls for the next event; registers the task to be woken when one comes.
    pub fn poll_next_event(&self, cx: &mut Context<'_>) -> Poll<io::Result<Forwarded>> {
        self.fwd
            .poll_next(cx, true)
            .map_ok(|i| i.map(PendingFlow, EchoRequest))
    }

    /// See [`net::ForwardListener::echoes_dropped`](crate::net::ForwardListener::echoes_dropped).
    pub fn echoes_dropped(&self) -> u64 {
        self.fwd.echoes_dropped()
    }
}

/// What [`ForwardListener::next_event`] hands out: [`net::Forwarded`](crate::net::Forwarded)
/// with this façade's flow and echo request.
pub type Forwarded = crate::net::Forwarded<PendingFlow, EchoRequest>;

/// A TCP flow waiting for the application's decision: its client and the destination the
/// client wanted. Dropped undecided, it waits until the forwarder's pending timeout. Past
/// the cap on pending decisions, flows completed by SYN cookies come
/// [established](Self::is_established) (see [`net::PendingFlow`](crate::net::PendingFlow)).
pub struct PendingFlow(Flow);

impl PendingFlow {
    /// The client.
    pub fn source(&self) -> SocketAddr {
        self.0.source()
    }

    /// Where the client wanted to go (the address our SYN-ACK, RST or ICMP error comes from).
    pub fn destination(&self) -> SocketAddr {
        self.0.destination()
    }

    /// A SYN cookie completed the handshake already: `accept` hands the connection out at
    /// once, a refusal resets it.
    pub fn is_established(&self) -> bool {
        self.0.is_established()
    }

    /// Accepts it: the SYN-ACK goes out from the original destination; resolves once the
    /// client's ACK came. NotFound when the decision expired meanwhile.
    pub async fn accept(mut self) -> io::Result<TcpStream> {
        if let Some(sock) = self.0.take_established() {
            return Ok(TcpStream::from_sock(sock));
        }
        let sock = self.0.accept().done().await?;
        poll_fn(|cx| sock.poll_connected(cx)).await?;
        Ok(TcpStream::from_sock(sock))
    }

    /// Refuses it with a RST or an ICMP destination unreachable from the original
    /// destination. NotFound when it expired.
    pub async fn refuse(mut self, how: Refusal) -> io::Result<()> {
        let c = self.0.refuse(Some(how));
        poll_fn(|cx| c.poll(cx)).await
    }

    /// Drops it without a word (the client's SYN retransmissions come back as a new flow).
    pub async fn ignore(mut self) -> io::Result<()> {
        let c = self.0.refuse(None);
        poll_fn(|cx| c.poll(cx)).await
    }
}

/// An echo request to a forwarded destination (the tokio twin of
/// [`net::EchoRequest`](crate::net::EchoRequest)).
pub struct EchoRequest(Echo);

impl EchoRequest {
    /// Who asked.
    pub fn source(&self) -> IpAddr {
        self.0.e.src
    }

    /// The address pinged (our reply or error comes from it).
    pub fn destination(&self) -> IpAddr {
        self.0.e.dst
    }

    /// The request's identifier and sequence number.
    pub fn ident_seq(&self) -> (u16, u16) {
        (self.0.e.ident, self.0.e.seq_no)
    }

    /// The request's data (the reply echoes it).
    pub fn data(&self) -> &[u8] {
        &self.0.e.data
    }

    /// Answers it with an echo reply from its destination.
    pub async fn reply(self) -> io::Result<()> {
        let c = self.0.decide(Ok(None));
        poll_fn(|cx| c.poll(cx)).await
    }

    /// Answers it with a destination unreachable from its destination.
    pub async fn refuse(self, code: Unreachable) -> io::Result<()> {
        let c = self.0.decide(Ok(Some(code)));
        poll_fn(|cx| c.poll(cx)).await
    }

    /// Drops it without a word.
    pub async fn ignore(self) -> io::Result<()> {
        let c = self.0.decide(Err(()));
        poll_fn(|cx| c.poll(cx)).await
    }
}

/// The driver as a task: a turn (timers, packets, readiness), then sleep until a socket call
/// kicks it, the next deadline, or the device is readable (through `AsyncFd`).
pub(crate) async fn drive(shared: Arc<Shared>) {
    // Tells `Runtime`'s drop that the task is over, however it ends, once the task's
    // reference to the runtime is gone too.
    let over = Over(Some(shared));
    let Some(shared) = over.0.as_deref() else {
        return;
    };
    let mut buf = vec![0u8; 65536];
    let Some(notify) = shared.notify.as_ref() else {
        return;
    };
    loop {
        let wait = {
            #[cfg(test)]
            let _driver = crate::net::runtime::audit::AsDriver::new();
            let mut g = shared.lock();
            if shared.stopped.load(Ordering::SeqCst) {
                g.stop();
                break;
            }
            let mut dev = shared.task_device.device();
            let d: Option<&mut dyn Device> = match dev.as_mut() {
                Some(d) => Some(d.as_mut()),
                None => None,
            };
            let again = g.turn(d, &mut buf, shared);
            if again {
                None
            } else {
                Some(g.next_wait(dev.as_ref().and_then(|d| d.poll_timeout())))
            }
        };
        match wait {
            Some(w) if !w.is_zero() => {
                ::tokio::select! {
                    _ = notify.notified() => {}
                    _ = ::tokio::time::sleep(w) => {}
                    _ = poll_fn(|cx| shared.task_device.poll_readable(cx)) => {}
                }
            }
            // More to do at once: let the sockets' tasks run first.
            _ => ::tokio::task::yield_now().await,
        }
    }
}

/// Marks the driver task over when dropped (it returned, or was cancelled), after dropping
/// the task's reference to the runtime.
struct Over(Option<Arc<Shared>>);

impl Drop for Over {
    fn drop(&mut self) {
        let Some(shared) = self.0.take() else {
            return;
        };
        let over = shared.task_device.over.clone();
        drop(shared);
        *lock(&over.0) = true;
        // One waiter at most: the runtime's stop.
        over.1.notify_one();
    }
}

/// The driver task's device, its descriptor registered with tokio's reactor, and whether
/// the task is over.
#[derive(Default)]
pub(crate) struct TaskDevice {
    device: Mutex<Option<Box<dyn Device>>>,
    fd: Mutex<Option<DeviceFd>>,
    /// The device wakes the task itself ([`Device::wakes_tasks`]), noted at install so a poll
    /// with a descriptor does not lock the device to ask.
    wakes: std::sync::atomic::AtomicBool,
    over: Arc<(Mutex<bool>, Condvar)>,
}

impl TaskDevice {
    pub(crate) fn install(&self, dev: Option<Box<dyn Device>>) {
        // A device that wakes the task itself needs no descriptor in the reactor.
        let wakes = dev.as_ref().is_some_and(|d| d.wakes_tasks());
        self.wakes
            .store(wakes, std::sync::atomic::Ordering::Relaxed);
        *lock(&self.fd) = dev
            .as_ref()
            .filter(|d| !d.wakes_tasks())
            .and_then(|d| device_fd(d.as_ref()));
        *lock(&self.device) = dev;
    }

    fn device(&self) -> MutexGuard<'_, Option<Box<dyn Device>>> {
        lock(&self.device)
    }

    /// Closes the device and the descriptor (after a turn in progress).
    pub(crate) fn release(&self) {
        drop(lock(&self.fd).take());
        drop(lock(&self.device).take());
    }

    /// Waits (at most 5 s) for the driver task to end, where waiting cannot deadlock: on a
    /// multi-threaded runtime (inside it, through `block_in_place`). On a current-thread
    /// runtime the task ends when the runtime next polls it (it has been woken); returns
    /// whether it is over.
    pub(crate) fn join(&self, multi_thread: bool) -> bool {
        let wait = || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let mut over = lock(&self.over.0);
            while !*over {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                over = self
                    .over
                    .1
                    .wait_timeout(over, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            *over
        };
        if !multi_thread {
            return *lock(&self.over.0);
        }
        // Inside a multi-threaded runtime's worker, hand the worker's other tasks (the
        // driver's among them) to another thread while this one waits.
        match ::tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(::tokio::runtime::RuntimeFlavor::MultiThread) => ::tokio::task::block_in_place(wait),
            _ => wait(),
        }
    }

    /// Ready when the device is readable (its readiness cleared first: the next turn reads
    /// until the device is empty, so nothing that arrives after this is missed), or, for a
    /// device that wakes tasks itself, when it says it has input; never without a device.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.wakes.load(std::sync::atomic::Ordering::Relaxed)
            && let Some(d) = self.device().as_mut()
        {
            return d.poll_recv_ready(cx);
        }
        #[cfg(target_os = "linux")]
        if let Some(a) = lock(&self.fd).as_ref() {
            return match a.poll_read_ready(cx) {
                Poll::Ready(Ok(mut g)) => {
                    g.clear_ready();
                    Poll::Ready(())
                }
                Poll::Ready(Err(_)) => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            };
        }
        let _ = cx;
        Poll::Pending
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(target_os = "linux")]
type DeviceFd = ::tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>;
#[cfg(not(target_os = "linux"))]
type DeviceFd = ();

/// The device's descriptor, registered with tokio's reactor (a duplicate: the device keeps
/// its own).
#[cfg(target_os = "linux")]
// tokio deprecates the safe constructor because an arbitrary `AsRawFd` may close or change its
// descriptor while registered; an `OwnedFd` we own cannot, which is what the unsafe
// replacement asks the caller to promise (and this crate forbids unsafe code).
#[allow(deprecated)]
fn device_fd(d: &dyn Device) -> Option<DeviceFd> {
    let fd = rustix::io::dup(d.readable_fd()?).ok()?;
    DeviceFd::with_interest(fd, ::tokio::io::Interest::READABLE).ok()
}

#[cfg(not(target_os = "linux"))]
fn device_fd(_: &dyn Device) -> Option<DeviceFd> {
    None
}

#[cfg(test)]
mod tests;
