//! The forwarder's TCP decisions through the runtime: a host in forwarder mode holds every
//! SYN to a forwarded destination until the application decides (accept → SYN-ACK, refuse →
//! RST or ICMP unreachable, ignore → nothing; see [`Stack::forward_accept`](
//! crate::stack::Stack::forward_accept)). The driver moves those pending flows into the
//! host's forward listener's pipe, and each decision is a command it runs at its next turn.
//! This module holds what both façades share and the blocking [`ForwardListener`].

use core::net::SocketAddr;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::TcpStream;
use super::pipe::{Pipe, Step};
use super::readiness::{Id, Kind, READABLE, SocketIo};
use super::runtime::{Completion, Host, stopped_error};
use super::socket::{Opening, Sock};
use crate::stack::{ForwardConfig, PendingTcp, Refusal};

/// A host's forward listener, as both façades see it.
pub(crate) struct Fwd {
    host: Host,
    io: Arc<SocketIo>,
}

impl Fwd {
    /// Turns forwarding on for `host` with `cfg` (or reconfigures it, if a forwarder UDP
    /// socket turned it on) and attaches the listener. AddrInUse when the host has one.
    pub(crate) fn open(host: &Host, cfg: ForwardConfig) -> Opening<Fwd> {
        let index = host.index;
        Opening::new(host, move |core, _, shared| {
            let h = &mut core.hosts[index];
            if h.sockets.forward.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "this host has a forward listener already (one per host)",
                ));
            }
            let f = h.stack.enable_forwarding(cfg);
            let io = Arc::new(SocketIo::new(index, Id::Tcp(f.tcp), Kind::Listener));
            h.sockets.forward = Some(io.clone());
            Ok(Fwd {
                host: Host { shared, index },
                io,
            })
        })
    }

    fn take(p: &mut Pipe, _: &mut bool) -> Step<PendingTcp> {
        match p.pending.pop_front() {
            Some(f) => Step::Done(Ok(f)),
            None => Step::Wait,
        }
    }

    fn done(step: Step<PendingTcp>) -> io::Result<PendingTcp> {
        match step {
            Step::Done(r) => r,
            // Closed: only a stopping runtime closes it.
            _ => Err(stopped_error()),
        }
    }

    /// The next pending flow, blocking the thread until there is one.
    pub(crate) fn next(&self, nonblocking: bool) -> io::Result<PendingTcp> {
        let (step, _) = self
            .io
            .blocking_step(READABLE, None, nonblocking, Self::take);
        Self::done(step)
    }

    /// The task's [`next`](Self::next).
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<io::Result<PendingTcp>> {
        let (step, _) = self.io.poll_step(cx, READABLE, Self::take);
        step.map(Self::done)
    }

    /// Flow `flow` of this listener's host.
    pub(crate) fn flow(&self, flow: PendingTcp) -> Flow {
        Flow {
            host: self.host.clone(),
            flow,
        }
    }
}

impl Drop for Fwd {
    fn drop(&mut self) {
        let (index, io) = (self.host.index, self.io.clone());
        // Forwarding stays on; flows pending then wait undecided until they expire.
        self.host.shared.post(move |core, _| {
            let f = &mut core.hosts[index].sockets.forward;
            if f.as_ref().is_some_and(|mine| Arc::ptr_eq(mine, &io)) {
                *f = None;
            }
        });
    }
}

/// A pending flow as both façades hold it: the host that decides and the flow.
pub(crate) struct Flow {
    pub(crate) host: Host,
    pub(crate) flow: PendingTcp,
}

impl Flow {
    pub(crate) fn source(&self) -> SocketAddr {
        self.flow.src
    }

    pub(crate) fn destination(&self) -> SocketAddr {
        self.flow.dst
    }

    /// Accepts the flow (the SYN-ACK goes out from its original destination): the socket of
    /// its connection, in SYN-RECEIVED until the client's ACK comes.
    pub(crate) fn accept(&self) -> Opening<Sock> {
        let p = self.flow;
        Sock::open(
            &self.host,
            Kind::Stream,
            p.dst.is_ipv6(),
            move |stack, now| stack.forward_accept(now, p.id),
        )
    }

    /// Refuses the flow (`how`: a RST or an ICMP unreachable), or with `None` drops it
    /// without a word. NotFound once the decision was made or expired.
    pub(crate) fn refuse(&self, how: Option<Refusal>) -> Arc<Completion<()>> {
        let (index, p) = (self.host.index, self.flow);
        self.host.shared.call(move |core, now| {
            let stack = &mut core.hosts[index].stack;
            match how {
                Some(how) => stack.forward_refuse(now, p.id, how),
                None => stack.forward_drop(p.id),
            }
        })
    }
}

/// The TCP side of a forwarder host, for blocking code: every connection a client opens to
/// a forwarded destination (any address in [`ForwardConfig::prefixes`] that is not the
/// host's) waits here, before any answer, for the application to [`accept`](
/// PendingFlow::accept), [`refuse`](PendingFlow::refuse) or [`ignore`](PendingFlow::ignore)
/// it — what a tun2socks-style proxy decides after trying the original destination
/// upstream. [`UdpSocket::forwarder_on`](super::UdpSocket::forwarder_on) on the same host
/// gives the UDP side.
///
/// ```
/// use std::io::{Read, Write};
/// use synack::net::{ForwardListener, Runtime, TcpStream};
/// use synack::stack::{ForwardConfig, Refusal};
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
/// let flows = ForwardListener::bind_on(&gw, cfg).unwrap();
/// let t = std::thread::spawn(move || {
///     // 198.18.0.80 is no host's: the gateway holds the SYN until it decides.
///     let flow = flows.accept().unwrap();
///     assert_eq!(flow.destination().to_string(), "198.18.0.80:80");
///     let mut s = flow.accept().unwrap(); // the SYN-ACK, as if from 198.18.0.80:80
///     s.write_all(b"hello from 198.18.0.80").unwrap();
///     let refused = flows.accept().unwrap();
///     assert_eq!(refused.destination().port(), 443);
///     refused.refuse(Refusal::Reset).unwrap();
/// });
/// let mut c = TcpStream::connect_on(&client, "198.18.0.80:80").unwrap();
/// let mut got = [0u8; 22];
/// c.read_exact(&mut got).unwrap();
/// assert_eq!(&got, b"hello from 198.18.0.80");
/// let e = TcpStream::connect_on(&client, "198.18.0.80:443").map(|_| ()).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
/// t.join().unwrap();
/// ```
pub struct ForwardListener {
    fwd: Fwd,
}

impl ForwardListener {
    /// Turns forwarder mode on for `host` with `cfg` (see
    /// [`Stack::enable_forwarding`](crate::stack::Stack::enable_forwarding)) and takes its
    /// pending TCP flows. AddrInUse when the host has a forward listener already. Dropping it
    /// leaves forwarding on: flows then wait undecided until `cfg.pending_timeout`.
    pub fn bind_on(host: &Host, cfg: ForwardConfig) -> io::Result<ForwardListener> {
        Ok(ForwardListener {
            fwd: Fwd::open(host, cfg).wait()?,
        })
    }

    /// Waits for the next flow a client opened (its SYN is held until the decision).
    pub fn accept(&self) -> io::Result<PendingFlow> {
        let flow = self.fwd.next(false)?;
        Ok(PendingFlow(self.fwd.flow(flow)))
    }
}

/// A TCP flow waiting for the application's decision: its client and the destination the
/// client wanted. Dropped undecided, it waits until the forwarder's pending timeout.
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

    /// Accepts it: the SYN-ACK goes out from the original destination and this waits for
    /// the client's ACK. NotFound when the decision expired meanwhile.
    pub fn accept(self) -> io::Result<TcpStream> {
        let sock = self.0.accept().wait()?;
        sock.connected(None)?;
        Ok(TcpStream::from_sock(sock))
    }

    /// Refuses it with a RST or an ICMP destination unreachable from the original
    /// destination (the client's connect fails at once). NotFound when it expired.
    pub fn refuse(self, how: Refusal) -> io::Result<()> {
        self.0.host.shared.wait(&self.0.refuse(Some(how)))
    }

    /// Drops it without a word (the client's SYN retransmissions come back as a new flow).
    pub fn ignore(self) -> io::Result<()> {
        self.0.host.shared.wait(&self.0.refuse(None))
    }
}
