//! The blocking UDP socket, shaped like `std::net::UdpSocket`, and a host's forwarder socket
//! (the datagrams of every forwarded flow, with their original destinations).

use core::net::SocketAddr;
use std::io;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use super::socket::Dgram;
use super::{Host, StreamOpts, host_for_bind, one_addr};
use crate::stack::{ForwardConfig, RecvMeta, Unreachable};

/// One datagram of a batch ([`UdpSocket::recv_many`], [`UdpSocket::send_many`]): received,
/// its sender and where it was sent (on the forwarder socket, the original destination);
/// to send, where it goes from (on the forwarder socket, a flow's original destination; on
/// a bound socket, its address) and to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub data: Vec<u8>,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// A UDP socket, like `std::net::UdpSocket`.
///
/// ```
/// use synack::net::{Runtime, UdpSocket};
///
/// let rt = Runtime::builder()
///     .host("a", "198.18.0.1/24")
///     .host("b", "198.18.0.2/24")
///     .build()
///     .unwrap();
/// let (a, b) = (rt.host("a").unwrap(), rt.host("b").unwrap());
/// let server = UdpSocket::bind_on(&b, "198.18.0.2:53").unwrap();
/// let client = UdpSocket::bind_on(&a, "198.18.0.1:0").unwrap(); // an ephemeral port
/// client.send_to(b"query", "198.18.0.2:53").unwrap();
/// let mut buf = [0u8; 512];
/// let (n, from) = server.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"query"[..], client.local_addr().unwrap()));
/// server.send_to(b"answer", from).unwrap();
/// let (n, _) = client.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"answer");
///
/// ```
///
/// An ICMP error about a datagram the socket sent (port, host or network unreachable) is
/// kept until [`take_error`](Self::take_error) takes it (ConnectionRefused for port
/// unreachable); it does not fail `recv_from`, as Linux reports none to an unconnected socket
/// without IP_RECVERR (a server is not broken by a client that went away). A datagram longer
/// than the buffer is truncated, the rest lost (see [`recv_from_meta`](Self::recv_from_meta)
/// for its length).
pub struct UdpSocket {
    sock: Arc<Dgram>,
    opts: Arc<StreamOpts>,
}

impl UdpSocket {
    fn from_dgram(d: Dgram) -> UdpSocket {
        UdpSocket {
            sock: Arc::new(d),
            opts: Arc::default(),
        }
    }

    /// Binds `addr` on the host (of any running [`Runtime`](super::Runtime)) that owns that
    /// address; an unspecified address means the default host (see [`Host::make_default`]).
    /// Port 0 picks an ephemeral port. AddrInUse for a taken port.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let local = one_addr(addr)?;
        UdpSocket::bind_on(&host_for_bind(local)?, local)
    }

    /// Binds `addr` on `host`.
    pub fn bind_on(host: &Host, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        Ok(UdpSocket::from_dgram(
            Dgram::bind(host, one_addr(addr)?).wait()?,
        ))
    }

    /// Turns forwarder mode on for `host` (see [`Stack::enable_forwarding`](
    /// crate::stack::Stack::enable_forwarding)) and returns the socket that takes every
    /// datagram sent to a destination in `cfg.prefixes`: what a tun2socks-style application
    /// relays. [`recv_from_meta`](Self::recv_from_meta) gives each datagram's client and
    /// original destination; [`send_from`](Self::send_from) answers from that destination.
    /// AddrInUse when forwarding is on already. TCP SYNs to those destinations wait for a
    /// decision this socket does not make, and are dropped after `cfg.pending_timeout`.
    ///
    /// ```
    /// use synack::net::{Runtime, UdpSocket};
    /// use synack::stack::ForwardConfig;
    ///
    /// let rt = Runtime::builder()
    ///     .host("client", "198.18.0.1/24")
    ///     .host("gateway", "198.18.0.2/24")
    ///     .build()
    ///     .unwrap();
    /// let (client, gw) = (rt.host("client").unwrap(), rt.host("gateway").unwrap());
    /// let cfg = ForwardConfig {
    ///     prefixes: vec!["198.18.0.0/24".parse().unwrap()],
    ///     ..ForwardConfig::default()
    /// };
    /// let relay = UdpSocket::forwarder_on(&gw, cfg).unwrap();
    /// let c = UdpSocket::bind_on(&client, "198.18.0.1:5000").unwrap();
    /// // 198.18.0.77 is no host's: the gateway's forwarder takes it.
    /// c.send_to(b"ping", "198.18.0.77:53").unwrap();
    /// let mut buf = [0u8; 64];
    /// let m = relay.recv_from_meta(&mut buf).unwrap();
    /// assert_eq!(&buf[..m.len], b"ping");
    /// assert_eq!((m.src.to_string(), m.dst.to_string()), ("198.18.0.1:5000".into(), "198.18.0.77:53".into()));
    /// relay.send_from(b"pong", m.dst, m.src).unwrap(); // as if from 198.18.0.77:53
    /// let (n, from) = c.recv_from(&mut buf).unwrap();
    /// assert_eq!((&buf[..n], from), (&b"pong"[..], m.dst));
    /// ```
    pub fn forwarder_on(host: &Host, cfg: ForwardConfig) -> io::Result<UdpSocket> {
        Ok(UdpSocket::from_dgram(Dgram::forwarder(host, cfg).wait()?))
    }

    /// Sends `buf` as one datagram to `addr`; the bytes sent. InvalidInput for a datagram
    /// too long for UDP or another address family; NetworkUnreachable without a route.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = one_addr(addr)?;
        self.send(buf, None, to)
    }

    /// Sends `buf` as one datagram from `from` to `to`. On the forwarder socket `from` is the
    /// original destination of a flow a client opened (NotConnected without such a flow);
    /// on a bound socket it must be the socket's address.
    pub fn send_from(&self, buf: &[u8], from: SocketAddr, to: SocketAddr) -> io::Result<usize> {
        self.send(buf, Some(from), to)
    }

    fn send(&self, buf: &[u8], from: Option<SocketAddr>, to: SocketAddr) -> io::Result<usize> {
        let timeout = StreamOpts::timeout(&self.opts.write_timeout);
        let nonblocking = self.opts.nonblocking();
        self.sock.send(buf, from, to, timeout, nonblocking)
    }

    /// Waits for a datagram; its length (at most `buf`'s) and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from_meta(buf).map(|m| (m.len, m.src))
    }

    /// Waits for a datagram; what [`recv_from`](Self::recv_from) says and its destination
    /// (on the forwarder socket, the original destination) and whole length.
    pub fn recv_from_meta(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        let timeout = StreamOpts::timeout(&self.opts.read_timeout);
        let nonblocking = self.opts.nonblocking();
        self.sock.recv(buf, timeout, nonblocking)
    }

    /// The bound address (with the port picked for port 0). AddrNotAvailable on the
    /// forwarder socket, which has none of its own.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The last ICMP error about a datagram the socket sent, taken (SO_ERROR):
    /// ConnectionRefused for port unreachable, HostUnreachable, NetworkUnreachable.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.sock.take_error())
    }

    /// Waits for a datagram, then takes up to `max` (at least one) at once: what a relay
    /// carrying many flows wants (like `recvmmsg(2)`). Each comes whole, in its own buffer.
    /// The runtime's driver moves every datagram into the socket's own queue as it arrives
    /// (up to [`Builder::stream_buffers`](super::Builder::stream_buffers)' `recv` bytes'
    /// worth, each charged 256 bytes more; the rest waits in the stack's queue of 208 KiB),
    /// so this call, like [`recv_from_meta`](Self::recv_from_meta), takes them under the
    /// socket's own lock, without a trip through the driver: a relay's receives never wait
    /// for the driver's turn, nor its packets for them.
    ///
    /// ```
    /// use synack::net::{Datagram, Runtime, UdpSocket};
    /// use synack::stack::ForwardConfig;
    ///
    /// let rt = Runtime::builder()
    ///     .host("client", "198.18.0.1/24")
    ///     .host("gateway", "198.18.0.2/24")
    ///     .build()
    ///     .unwrap();
    /// let (client, gw) = (rt.host("client").unwrap(), rt.host("gateway").unwrap());
    /// let cfg = ForwardConfig {
    ///     prefixes: vec!["198.18.0.0/24".parse().unwrap()],
    ///     ..ForwardConfig::default()
    /// };
    /// let relay = UdpSocket::forwarder_on(&gw, cfg).unwrap();
    /// let c = UdpSocket::bind_on(&client, "198.18.0.1:5000").unwrap();
    /// for i in 0..3u8 {
    ///     c.send_to(&[i], "198.18.0.77:53").unwrap();
    /// }
    /// let mut got = Vec::new();
    /// while got.len() < 3 {
    ///     got.extend(relay.recv_many(64).unwrap());
    /// }
    /// // Answer them all in one trip: each from its original destination to its client.
    /// let replies: Vec<Datagram> = got
    ///     .iter()
    ///     .map(|d| Datagram { data: vec![d.data[0] + 10], src: d.dst, dst: d.src })
    ///     .collect();
    /// assert_eq!(relay.send_many(&replies).unwrap(), 3);
    /// let mut buf = [0u8; 4];
    /// for i in 0..3u8 {
    ///     assert_eq!(c.recv_from(&mut buf).unwrap().0, 1);
    ///     assert_eq!(buf[0], i + 10);
    /// }
    /// ```
    pub fn recv_many(&self, max: usize) -> io::Result<Vec<Datagram>> {
        let timeout = StreamOpts::timeout(&self.opts.read_timeout);
        self.sock.recv_many(max, timeout, self.opts.nonblocking())
    }

    /// Sends `batch`, each from its `src` to its `dst` (as [`send_from`](Self::send_from)),
    /// in one trip through the runtime's driver (like `sendmmsg(2)`): as many as the output
    /// queue takes, waiting while it takes none. Returns how many went; an error on the
    /// first datagram fails the call, an error on a later one ends the batch there.
    pub fn send_many(&self, batch: &[Datagram]) -> io::Result<usize> {
        let timeout = StreamOpts::timeout(&self.opts.write_timeout);
        self.sock.send_many(batch, timeout, self.opts.nonblocking())
    }

    /// On the forwarder socket: refuses the UDP flow from `client` to `dst` (its upstream
    /// cannot be reached): the client gets an ICMP destination unreachable (`code`) from
    /// `dst`, quoting the flow's first datagram, and the flow ends (a [`ForwardListener`](
    /// super::ForwardListener) hears it as [`Forwarded::UdpClosed`](super::Forwarded)).
    /// NotFound without such a flow; InvalidInput on any other socket.
    pub fn refuse_flow(
        &self,
        client: SocketAddr,
        dst: SocketAddr,
        code: Unreachable,
    ) -> io::Result<()> {
        let c = self.sock.refuse_flow(client, dst, code);
        self.sock.shared.wait(&c)
    }

    /// Calls fail with `WouldBlock` instead of waiting (shared with clones).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.opts.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// `recv_from` fails with `WouldBlock` after `t` without a datagram (a zero timeout is
    /// InvalidInput, as in std).
    pub fn set_read_timeout(&self, t: Option<StdDuration>) -> io::Result<()> {
        StreamOpts::set_timeout(&self.opts.read_timeout, t)
    }

    /// `send_to` fails with `WouldBlock` after `t` with the output queue full.
    pub fn set_write_timeout(&self, t: Option<StdDuration>) -> io::Result<()> {
        StreamOpts::set_timeout(&self.opts.write_timeout, t)
    }

    pub fn read_timeout(&self) -> io::Result<Option<StdDuration>> {
        Ok(StreamOpts::timeout(&self.opts.read_timeout))
    }

    pub fn write_timeout(&self) -> io::Result<Option<StdDuration>> {
        Ok(StreamOpts::timeout(&self.opts.write_timeout))
    }

    /// A second handle on the same socket (one thread receives while another sends); the
    /// socket closes when the last handle drops. Options are shared.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: self.sock.clone(),
            opts: self.opts.clone(),
        })
    }
}
