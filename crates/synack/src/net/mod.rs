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
//! The runtime thread runs one loop: run due timers, move packets between the stacks and the
//! device, publish readiness, then sleep until the next timer, the next packet, or a socket
//! call that queued something. Socket calls lock the shared state, call the [`Stack`], and
//! sleep on a condition variable until data, space, a state change or their timeout; nothing
//! busy-waits.

mod runtime;

use core::net::SocketAddr;
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use crate::net::runtime::Shared;
pub use crate::net::runtime::{Builder, DeviceStats, Host, Runtime};
use crate::stack::SocketHandle;
use crate::tcp::{Keepalive, Shutdown as TcpShutdown, State};

pub use std::net::Shutdown;

fn one_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address given"))
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

/// A listening socket.
pub struct TcpListener {
    shared: Arc<Shared>,
    host: usize,
    handle: SocketHandle,
    local: SocketAddr,
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
        if local.ip().is_unspecified() {
            let host = Host::default_host().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!(
                        "{} means the default host, and there is none: call \
                         Host::make_default first (or use bind_on)",
                        local.ip()
                    ),
                )
            })?;
            return TcpListener::bind_on(&host, local);
        }
        let host = Host::owning(local.ip()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!(
                    "no running synack runtime has a host with the address {}: build a Runtime \
                     with it (or use bind_on)",
                    local.ip()
                ),
            )
        })?;
        TcpListener::bind_on(&host, local)
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
        let shared = host.shared.clone();
        let handle = shared.with(|inner, _| {
            let stack = &mut inner.hosts[host.index].stack;
            let tcp = stack.config().tcp.clone();
            stack.listen_opts(local, 128, tcp, v6only)
        })?;
        Ok(TcpListener {
            shared,
            host: host.index,
            handle,
            local,
        })
    }

    /// Waits for a connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let h = self.shared.wait_for(None, |inner, _| {
            let stack = &mut inner.hosts[self.host].stack;
            match stack.accept(self.handle) {
                Ok(Some(h)) => Some(Ok(h)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })??;
        let mut stream = TcpStream::from_handle(self.shared.clone(), self.host, h);
        stream.v6_socket = self.local.is_ipv6();
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// Endless iterator over accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(move || Some(self.accept().map(|(s, _)| s)))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let (host, h) = (self.host, self.handle);
        self.shared
            .with(|inner, now| inner.hosts[host].stack.close(now, h));
        self.shared.kick();
    }
}

/// A TCP connection, with `Read` and `Write`.
pub struct TcpStream {
    shared: Arc<Shared>,
    host: usize,
    handle: SocketHandle,
    read_timeout: Option<StdDuration>,
    write_timeout: Option<StdDuration>,
    /// An IPv6 socket: IPv4 addresses show IPv4-mapped.
    v6_socket: bool,
}

impl TcpStream {
    fn from_handle(shared: Arc<Shared>, host: usize, handle: SocketHandle) -> TcpStream {
        TcpStream {
            shared,
            host,
            handle,
            read_timeout: None,
            write_timeout: None,
            v6_socket: false,
        }
    }

    /// Connects from the default host (see [`Host::make_default`]) to `addr`: this is
    /// `std::net::TcpStream::connect` with synack underneath.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let host = Host::default_host().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "no default synack host: call Host::make_default (or use connect_on)",
            )
        })?;
        Self::connect_inner(&host, one_addr(addr)?, None)
    }

    /// Like [`connect`](Self::connect), giving up with TimedOut after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: StdDuration) -> io::Result<TcpStream> {
        let host = Host::default_host().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "no default synack host: call Host::make_default (or use connect_on)",
            )
        })?;
        Self::connect_inner(&host, *addr, Some(timeout))
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
        let shared = host.shared.clone();
        let idx = host.index;
        let handle = shared.with(|inner, now| inner.hosts[idx].stack.connect(now, addr, None))?;
        shared.kick();
        let mut stream = TcpStream::from_handle(shared.clone(), idx, handle);
        // Connecting to `[::ffff:a.b.c.d]:p` is an IPv6 socket talking IPv4.
        stream.v6_socket = addr.is_ipv6();
        let outcome = shared.wait_for(timeout, |inner, _| {
            let c = inner.hosts[idx].stack.connection(handle)?;
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
        });
        match outcome {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(e)) => Err(e),
            // Our own timeout (dropping the stream abandons the attempt).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            }
            Err(e) => Err(e),
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let v6 = self.v6_socket;
        self.conn_info(|c| as_seen(v6, c.remote()))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let v6 = self.v6_socket;
        self.conn_info(|c| as_seen(v6, c.local()))
    }

    fn conn_info<T>(&self, f: impl FnOnce(&crate::tcp::Connection) -> T) -> io::Result<T> {
        self.shared.with(|inner, _| {
            inner.hosts[self.host]
                .stack
                .connection(self.handle)
                .map(f)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "connection is gone"))
        })
    }

    fn conn_mut<T>(&self, f: impl FnOnce(&mut crate::tcp::Connection) -> T) -> io::Result<T> {
        let r = self.shared.with(|inner, _| {
            inner.hosts[self.host]
                .stack
                .connection_mut(self.handle)
                .map(f)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "connection is gone"))
        });
        self.shared.kick();
        r
    }

    /// Shuts down reading, writing or both (`Write` sends a FIN after the queued data).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => TcpShutdown::Read,
            Shutdown::Write => TcpShutdown::Write,
            Shutdown::Both => TcpShutdown::Both,
        };
        let (host, h) = (self.host, self.handle);
        self.shared
            .with(|inner, now| inner.hosts[host].stack.shutdown(now, h, how))?;
        self.shared.kick();
        Ok(())
    }

    /// Resets the connection: sends a RST and discards queued data, as closing a socket with
    /// `SO_LINGER` set to zero does. The peer's next call fails with ConnectionReset.
    pub fn abort(self) {
        let (host, h) = (self.host, self.handle);
        self.shared
            .with(|inner, now| inner.hosts[host].stack.abort(now, h));
        self.shared.kick();
        // Drop then closes a handle that is already released: a no-op.
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.conn_mut(|c| c.set_nodelay(on))
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        self.conn_info(|c| c.nodelay())
    }

    /// SO_KEEPALIVE with idle/interval/count; `None` turns it off.
    pub fn set_keepalive(&self, ka: Option<Keepalive>) -> io::Result<()> {
        let now = self.shared.now();
        self.conn_mut(|c| c.set_keepalive(now, ka))
    }

    /// TCP_USER_TIMEOUT.
    pub fn set_user_timeout(&self, t: Option<StdDuration>) -> io::Result<()> {
        self.conn_mut(|c| c.set_user_timeout(t))
    }

    /// Per-connection statistics (like TCP_INFO).
    pub fn info(&self) -> io::Result<crate::tcp::connection::Info> {
        self.conn_info(|c| c.info())
    }

    pub fn set_read_timeout(&mut self, t: Option<StdDuration>) -> io::Result<()> {
        if t == Some(StdDuration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a zero timeout is not allowed (as in std)",
            ));
        }
        self.read_timeout = t;
        Ok(())
    }

    pub fn set_write_timeout(&mut self, t: Option<StdDuration>) -> io::Result<()> {
        if t == Some(StdDuration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a zero timeout is not allowed (as in std)",
            ));
        }
        self.write_timeout = t;
        Ok(())
    }

    pub fn read_timeout(&self) -> io::Result<Option<StdDuration>> {
        Ok(self.read_timeout)
    }

    pub fn write_timeout(&self) -> io::Result<Option<StdDuration>> {
        Ok(self.write_timeout)
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (host, h) = (self.host, self.handle);
        let r = self.shared.wait_for(self.read_timeout, |inner, now| {
            let stack = &mut inner.hosts[host].stack;
            match stack.recv(now, h, buf) {
                Ok(0) => {
                    let c = stack.connection(h)?;
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
        });
        self.shared.kick();
        r.and_then(|x| x)
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (host, h) = (self.host, self.handle);
        let r = self.shared.wait_for(self.write_timeout, |inner, now| {
            match inner.hosts[host].stack.send(now, h, buf) {
                Ok(0) => None,
                other => Some(other),
            }
        });
        self.shared.kick();
        r.and_then(|x| x)
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
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

impl Drop for TcpStream {
    fn drop(&mut self) {
        let (host, h) = (self.host, self.handle);
        self.shared
            .with(|inner, now| inner.hosts[host].stack.close(now, h));
        self.shared.kick();
    }
}

#[cfg(test)]
mod tests;
