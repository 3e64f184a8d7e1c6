//! Blocking sockets shaped like `std::net`, over a runtime thread that owns the stacks, the
//! network device and the real clock.
//!
//! ```
//! use std::io::{Read, Write};
//! use synack::net::{Runtime, TcpListener, TcpStream};
//!
//! // Two hosts joined by an in-memory link with 10 ms one-way delay.
//! let rt = Runtime::builder()
//!     .host("client", "198.18.0.1/24")
//!     .host("server", "198.18.0.2/24")
//!     .delay(std::time::Duration::from_millis(10))
//!     .build()
//!     .unwrap();
//! let (client, server) = (rt.host("client").unwrap(), rt.host("server").unwrap());
//! let listener = TcpListener::bind_on(&server, "198.18.0.2:7").unwrap();
//! let t = std::thread::spawn(move || {
//!     let (mut s, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 5];
//!     s.read_exact(&mut buf).unwrap();
//!     s.write_all(&buf).unwrap();
//! });
//! let mut c = TcpStream::connect_on(&client, "198.18.0.2:7").unwrap();
//! c.write_all(b"hello").unwrap();
//! let mut back = [0u8; 5];
//! c.read_exact(&mut back).unwrap();
//! assert_eq!(&back, b"hello");
//! t.join().unwrap();
//! ```
//!
//! The runtime's driver (a thread here; a task for [`synack::tokio`](crate::tokio)) owns the
//! stacks, the device and the clock, and runs one loop: run due timers, move packets between
//! the stacks and the medium, publish per-socket readiness, then sleep until the next timer,
//! the next packet, or a socket call that queued something. No socket call touches the stacks:
//! reads and writes move bytes through the socket's own pipe, options and addresses are the
//! socket's own state, and what only the stack can answer (opening a socket, a datagram) is a
//! command the driver runs at its next turn, whose answer wakes that call alone. A call with
//! nothing to do sleeps on its own socket's readiness (readable, writable, closed), which only
//! an event on that socket wakes. Nothing busy-waits, and no event wakes the waiters of other
//! sockets.
//!
//! Like `std::net`: [`TcpStream::set_nonblocking`] (calls then fail with `WouldBlock`
//! instead of waiting), [`TcpStream::try_clone`] (one socket, two handles: say a reader
//! thread and a writer thread), [`TcpStream::peek`], read and write timeouts.
//!
//! [`UdpSocket`] is `std::net::UdpSocket` (bind, `send_to`, `recv_from`, timeouts,
//! `try_clone`, `take_error`); [`UdpSocket::forwarder_on`] makes a host a forwarder and
//! returns the socket of every forwarded UDP flow, whose datagrams carry their original
//! destination ([`UdpSocket::recv_from_meta`], answered with [`UdpSocket::send_from`]).

mod forward;
mod pipe;
mod readiness;
pub(crate) mod runtime;
mod socket;
mod udp;

use core::net::SocketAddr;
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

#[cfg_attr(not(feature = "tokio"), allow(unused_imports))]
pub(crate) use crate::net::forward::{Echo, Flow, Fwd};
pub use crate::net::forward::{EchoRequest, ForwardListener, Forwarded, PendingFlow};
pub use crate::net::runtime::{Builder, DeviceStats, Host, Runtime};
#[cfg_attr(not(feature = "tokio"), allow(unused_imports))]
pub(crate) use crate::net::socket::{Dgram, Sock};
pub use crate::net::udp::{Datagram, UdpSocket};
pub use crate::stack::SocketOption;
use crate::tcp::{Keepalive, Shutdown as TcpShutdown};

pub use std::net::Shutdown;

pub(crate) fn one_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address given"))
}

/// std's `Shutdown` as the stack's.
pub(crate) fn tcp_shutdown(how: Shutdown) -> TcpShutdown {
    match how {
        Shutdown::Read => TcpShutdown::Read,
        Shutdown::Write => TcpShutdown::Write,
        Shutdown::Both => TcpShutdown::Both,
    }
}

/// The host that owns `local` (the default host for an unspecified address), for `bind`.
pub(crate) fn host_for_bind(local: SocketAddr) -> io::Result<Host> {
    if local.ip().is_unspecified() {
        return Host::default_host().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!(
                    "{} means the default host, and there is none: call \
                     Host::make_default first (or use bind_on)",
                    local.ip()
                ),
            )
        });
    }
    Host::owning(local.ip()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!(
                "no running synack runtime has a host with the address {}: build a Runtime \
                 with it (or use bind_on)",
                local.ip()
            ),
        )
    })
}

/// The default host, for `connect`.
pub(crate) fn host_for_connect() -> io::Result<Host> {
    Host::default_host().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotConnected,
            "no default synack host: call Host::make_default (or use connect_on)",
        )
    })
}

/// A listening socket.
pub struct TcpListener {
    sock: Arc<Sock>,
    local: SocketAddr,
    nonblocking: Arc<AtomicBool>,
}

impl TcpListener {
    /// Listens on `addr` on the host (of any running [`Runtime`]) that owns that address; an
    /// unspecified address (`0.0.0.0` or `[::]`) means the default host (see
    /// [`Host::make_default`]). This is `std::net::TcpListener::bind` with synack underneath:
    /// a listener on `[::]` takes IPv4 connections too (their peers show as
    /// `[::ffff:a.b.c.d]:port`), as Linux's IPv6 sockets do unless IPV6_V6ONLY; see
    /// [`bind_v6only_on`](Self::bind_v6only_on).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let local = one_addr(addr)?;
        TcpListener::bind_on(&host_for_bind(local)?, local)
    }

    /// Listens on `addr` on `host` (backlog 128, like Linux's default somaxconn).
    pub fn bind_on(host: &Host, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::listen_on(host, one_addr(addr)?, false)
    }

    /// Listens on `addr` (an IPv6 address, usually `[::]`) for IPv6 connections only: the
    /// IPV6_V6ONLY socket option. An IPv4 listener on the same port can then coexist.
    pub fn bind_v6only_on(host: &Host, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::listen_on(host, one_addr(addr)?, true)
    }

    fn listen_on(host: &Host, local: SocketAddr, v6only: bool) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: Arc::new(Sock::listen(host, local, v6only).wait()?),
            local,
            nonblocking: Arc::default(),
        })
    }

    /// Waits for a connection (or fails with `WouldBlock` when non-blocking and none is
    /// queued).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let nonblocking = self.nonblocking.load(Ordering::Relaxed);
        let (s, peer) = self.sock.accept(nonblocking)?;
        Ok((TcpStream::from_sock(s), peer))
    }

    /// Endless iterator over accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(move || Some(self.accept().map(|(s, _)| s)))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// `accept` fails with `WouldBlock` instead of waiting (shared with clones, as
    /// O_NONBLOCK is shared by dup'ed descriptors).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// A second handle on the same listener; it stops listening when the last one drops.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: self.sock.clone(),
            local: self.local,
            nonblocking: self.nonblocking.clone(),
        })
    }
}

/// A stream's settings, shared by its clones (as a dup'ed descriptor shares the socket's).
#[derive(Default)]
struct StreamOpts {
    read_timeout: Mutex<Option<StdDuration>>,
    write_timeout: Mutex<Option<StdDuration>>,
    nonblocking: AtomicBool,
}

impl StreamOpts {
    /// Sets a read or write timeout (a zero one is InvalidInput, as in std).
    fn set_timeout(slot: &Mutex<Option<StdDuration>>, t: Option<StdDuration>) -> io::Result<()> {
        check_timeout(t)?;
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = t;
        Ok(())
    }

    fn timeout(slot: &Mutex<Option<StdDuration>>) -> Option<StdDuration> {
        *slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }
}

/// A TCP connection, with `Read` and `Write`.
pub struct TcpStream {
    sock: Arc<Sock>,
    opts: Arc<StreamOpts>,
}

fn check_timeout(t: Option<StdDuration>) -> io::Result<()> {
    if t == Some(StdDuration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a zero timeout is not allowed (as in std)",
        ));
    }
    Ok(())
}

impl TcpStream {
    fn from_sock(sock: Sock) -> TcpStream {
        TcpStream {
            sock: Arc::new(sock),
            opts: Arc::default(),
        }
    }

    /// Connects from the default host (see [`Host::make_default`]) to `addr`: this is
    /// `std::net::TcpStream::connect` with synack underneath.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_inner(&host_for_connect()?, one_addr(addr)?, None)
    }

    /// Like [`connect`](Self::connect), giving up with TimedOut after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: StdDuration) -> io::Result<TcpStream> {
        Self::connect_inner(&host_for_connect()?, *addr, Some(timeout))
    }

    /// Connects from `host` to `addr` and waits for the handshake (or its failure:
    /// ConnectionRefused, TimedOut after the SYN retries).
    pub fn connect_on(host: &Host, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_inner(host, one_addr(addr)?, None)
    }

    /// Like [`connect_on`](Self::connect_on), giving up with TimedOut after `timeout`.
    pub fn connect_timeout_on(
        host: &Host,
        addr: &SocketAddr,
        timeout: StdDuration,
    ) -> io::Result<TcpStream> {
        Self::connect_inner(host, *addr, Some(timeout))
    }

    fn connect_inner(
        host: &Host,
        addr: SocketAddr,
        timeout: Option<StdDuration>,
    ) -> io::Result<TcpStream> {
        let sock = Sock::connect(host, addr).wait()?;
        match sock.connected(timeout) {
            Ok(()) => Ok(TcpStream::from_sock(sock)),
            // Our own timeout (dropping the socket abandons the attempt).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            }
            Err(e) => Err(e),
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Shuts down reading, writing or both (`Write` sends a FIN after the queued data).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(tcp_shutdown(how))
    }

    /// Resets the connection: sends a RST and discards queued data, as closing a socket with
    /// `SO_LINGER` set to zero does. The peer's next call fails with ConnectionReset. Clones
    /// of this stream see the connection reset too.
    pub fn abort(self) {
        self.sock.abort();
        // Dropping then closes a handle that is already released: a no-op.
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sock.set_option(SocketOption::NoDelay(on))
    }

    /// TCP_NODELAY as set (options are applied by the runtime's driver at its next turn,
    /// before anything written after the call is sent).
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.nodelay()
    }

    /// SO_KEEPALIVE with idle/interval/count; `None` turns it off.
    pub fn set_keepalive(&self, ka: Option<Keepalive>) -> io::Result<()> {
        self.sock.set_option(SocketOption::Keepalive(ka))
    }

    /// TCP_USER_TIMEOUT.
    pub fn set_user_timeout(&self, t: Option<StdDuration>) -> io::Result<()> {
        self.sock.set_option(SocketOption::UserTimeout(t))
    }

    /// IP_TTL: the TTL of this connection's packets (1 to 255; on an IPv6 connection, the hop
    /// limit), like std's.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// Per-connection statistics (like TCP_INFO), built by the driver when asked: the call
    /// waits for the driver's next turn, as Linux's getsockopt waits for the socket's lock.
    pub fn info(&self) -> io::Result<crate::tcp::connection::Info> {
        self.sock.info()
    }

    pub fn set_read_timeout(&self, t: Option<StdDuration>) -> io::Result<()> {
        StreamOpts::set_timeout(&self.opts.read_timeout, t)
    }

    pub fn set_write_timeout(&self, t: Option<StdDuration>) -> io::Result<()> {
        StreamOpts::set_timeout(&self.opts.write_timeout, t)
    }

    pub fn read_timeout(&self) -> io::Result<Option<StdDuration>> {
        Ok(StreamOpts::timeout(&self.opts.read_timeout))
    }

    pub fn write_timeout(&self) -> io::Result<Option<StdDuration>> {
        Ok(StreamOpts::timeout(&self.opts.write_timeout))
    }

    /// Reads and writes fail with `WouldBlock` instead of waiting (O_NONBLOCK; shared with
    /// clones).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.opts.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// A second handle on the same connection (say, one thread reads while another writes).
    /// The connection closes when the last handle drops; options are shared.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: self.sock.clone(),
            opts: self.opts.clone(),
        })
    }

    /// Reads without consuming (MSG_PEEK): the next read returns the same bytes. Waits for
    /// data like `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf, true)
    }

    fn read_inner(&self, buf: &mut [u8], peek: bool) -> io::Result<usize> {
        let timeout = self.read_timeout()?;
        let nonblocking = self.opts.nonblocking();
        self.sock.read(buf, peek, timeout, nonblocking)
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        let timeout = self.write_timeout()?;
        let nonblocking = self.opts.nonblocking();
        self.sock.write(buf, timeout, nonblocking)
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf, false)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf, false)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
