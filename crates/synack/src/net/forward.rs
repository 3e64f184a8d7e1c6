//! The forwarder's TCP decisions through the runtime: a host in forwarder mode holds every
//! SYN to a forwarded destination until the application decides (accept → SYN-ACK, refuse →
//! RST or ICMP unreachable, ignore → nothing; see [`Stack::forward_accept`](
//! crate::stack::Stack::forward_accept)). The driver moves those pending flows into the
//! host's forward listener's pipe, and each decision is a command it runs at its next turn.
//! The same pipe carries the forwarder's other news: connections SYN cookies completed past
//! the cap on pending decisions, echo requests, and UDP flows that ended.
//! This module holds what both façades share and the blocking [`ForwardListener`].

use core::net::{IpAddr, SocketAddr};
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::TcpStream;
use super::pipe::{Pipe, Step};
use super::readiness::{Id, Kind, READABLE, SocketIo};
use super::runtime::{Completion, Host, stopped_error};
use super::socket::{Opening, Sock};
use crate::stack::{
    ForwardConfig, PendingEcho, PendingId, PendingTcp, Refusal, UdpCloseReason, Unreachable,
};

/// What the driver took off the forwarder for the forward listener: a TCP flow, an echo
/// request or a UDP flow's end.
pub(crate) type FwdItem = Forwarded<TcpItem, PendingEcho>;

/// A TCP flow as the driver hands it to the forward listener.
pub(crate) enum TcpItem {
    /// A SYN waiting for the decision.
    Pending(PendingTcp),
    /// A connection a SYN cookie completed (past the cap on pending decisions): registered,
    /// established.
    Established {
        io: Arc<SocketIo>,
        src: SocketAddr,
        dst: SocketAddr,
    },
}

/// Echo requests a forward listener's pipe holds at most (older ones go, counted): they pile
/// up only when the application accepts TCP flows and never asks for the rest. UDP flow
/// ends are never dropped.
pub(crate) const FWD_OTHER_CAP: usize = 4096;

/// A forward listener's item as both façades hand it out (each wraps the flow and the echo
/// request in its own type with [`Forwarded::map`]).
pub(crate) type Item = Forwarded<Flow, Echo>;

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

    /// The first TCP flow in the pipe (echo requests and UDP flow ends stay).
    fn take_tcp(p: &mut Pipe, _: &mut bool) -> Step<FwdItem> {
        let q = p.q();
        match q.fwd.iter().position(Forwarded::is_flow) {
            Some(i) => Step::Done(Ok(q.fwd.remove(i).expect("position found"))),
            None => Step::Wait,
        }
    }

    /// The first item in the pipe, whatever it is.
    fn take_any(p: &mut Pipe, _: &mut bool) -> Step<FwdItem> {
        let q = p.q();
        match q.fwd.pop_front() {
            Some(i) => {
                if i.is_echo() {
                    q.fwd_other -= 1;
                }
                Step::Done(Ok(i))
            }
            None => Step::Wait,
        }
    }

    fn done(step: Step<FwdItem>) -> io::Result<FwdItem> {
        match step {
            Step::Done(r) => r,
            // Closed: only a stopping runtime closes it.
            _ => Err(stopped_error()),
        }
    }

    /// The next item (a TCP flow only, unless `any`), blocking the thread until there is
    /// one.
    pub(crate) fn next(&self, any: bool) -> io::Result<Item> {
        let take = if any { Self::take_any } else { Self::take_tcp };
        let (step, _) = self.io.blocking_step(READABLE, None, false, take);
        Self::done(step).map(|i| self.item(i))
    }

    /// Echo requests dropped because the pipe held its cap of them, unread.
    pub(crate) fn echoes_dropped(&self) -> u64 {
        self.io
            .lock()
            .pipe
            .queues
            .as_ref()
            .map_or(0, |q| q.echoes_dropped)
    }

    /// The task's [`next`](Self::next).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>, any: bool) -> Poll<io::Result<Item>> {
        let take = if any { Self::take_any } else { Self::take_tcp };
        let (step, _) = self.io.poll_step(cx, READABLE, take);
        step.map(|s| Self::done(s).map(|i| self.item(i)))
    }

    fn item(&self, i: FwdItem) -> Item {
        let host = &self.host;
        i.map(
            |t| {
                let (src, dst, state) = match t {
                    TcpItem::Pending(p) => (p.src, p.dst, FlowState::Pending(p.id)),
                    TcpItem::Established { io, src, dst } => {
                        (src, dst, FlowState::Established(Some(io)))
                    }
                };
                Flow {
                    host: host.clone(),
                    src,
                    dst,
                    state,
                }
            },
            |e| Echo {
                host: host.clone(),
                e,
            },
        )
    }
}

impl Drop for Fwd {
    fn drop(&mut self) {
        let (index, io) = (self.host.index, self.io.clone());
        // Forwarding stays on; flows pending then wait undecided until they expire.
        // Connections cookies completed that nobody took are reset, as a closing listener
        // resets the ones it never handed out.
        self.host.shared.post(move |core, now| {
            let h = &mut core.hosts[index];
            let f = &mut h.sockets.forward;
            if f.as_ref().is_some_and(|mine| Arc::ptr_eq(mine, &io)) {
                *f = None;
            }
            let left = std::mem::take(&mut io.lock().pipe.q().fwd);
            for i in left {
                if let Forwarded::Flow(TcpItem::Established { io: c, .. }) = i {
                    h.sockets.abort_registered(&mut h.stack, now, &c);
                }
            }
            // And those still on the stack's accept queue.
            if let Some(f) = h.stack.forwarding() {
                while let Ok(Some(c)) = h.stack.accept(f.tcp) {
                    h.stack.abort(now, c);
                }
            }
        });
    }
}

/// Where a TCP flow a forward listener handed out stands.
enum FlowState {
    /// Its SYN waits for the decision.
    Pending(PendingId),
    /// A SYN cookie completed it (its socket, until taken).
    Established(Option<Arc<SocketIo>>),
}

/// A TCP flow as both façades hold it: the host that decides, its ends and its state.
pub(crate) struct Flow {
    pub(crate) host: Host,
    src: SocketAddr,
    dst: SocketAddr,
    state: FlowState,
}

impl Flow {
    pub(crate) fn source(&self) -> SocketAddr {
        self.src
    }

    pub(crate) fn destination(&self) -> SocketAddr {
        self.dst
    }

    pub(crate) fn is_established(&self) -> bool {
        matches!(self.state, FlowState::Established(_))
    }

    /// The socket of a flow a SYN cookie completed, taken (`None` for a pending one).
    pub(crate) fn take_established(&mut self) -> Option<Sock> {
        let FlowState::Established(io) = &mut self.state else {
            return None;
        };
        let io = io.take()?;
        let Id::Tcp(handle) = io.id else {
            return None;
        };
        Some(Sock::new(
            self.host.shared.clone(),
            self.host.index,
            handle,
            Kind::Stream,
            io,
            self.dst.is_ipv6(),
        ))
    }

    /// Accepts a pending flow (the SYN-ACK goes out from its original destination): the
    /// socket of its connection, in SYN-RECEIVED until the client's ACK comes. NotFound for
    /// an established one (see [`take_established`](Self::take_established)).
    pub(crate) fn accept(&self) -> Opening<Sock> {
        let (dst, state) = (self.dst, &self.state);
        let id = match state {
            FlowState::Pending(id) => Some(*id),
            FlowState::Established(_) => None,
        };
        Sock::open(
            &self.host,
            Kind::Stream,
            dst.is_ipv6(),
            move |stack, now| {
                let id = id.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "the flow is established already")
                })?;
                stack.forward_accept(now, id)
            },
        )
    }

    /// Refuses a pending flow (`how`: a RST or an ICMP unreachable), or with `None` drops it
    /// without a word. NotFound once the decision was made or expired. An established flow
    /// is reset either way (the client was answered already).
    pub(crate) fn refuse(&mut self, how: Option<Refusal>) -> Arc<Completion<()>> {
        if let Some(s) = self.take_established() {
            s.abort();
            // After the abort: the driver runs calls in order.
            return self.host.shared.call(|_, _| Ok(()));
        }
        let index = self.host.index;
        let id = match self.state {
            FlowState::Pending(id) => Some(id),
            FlowState::Established(_) => None,
        };
        self.host.shared.call(move |core, now| {
            let stack = &mut core.hosts[index].stack;
            let id = id.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "the flow was decided already")
            })?;
            match how {
                Some(how) => stack.forward_refuse(now, id, how),
                None => stack.forward_drop(id),
            }
        })
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        // An established flow nobody took: reset, as the pending ones it stands for expire.
        if let Some(s) = self.take_established() {
            s.abort();
        }
    }
}

/// An echo request as both façades hold it.
pub(crate) struct Echo {
    pub(crate) host: Host,
    pub(crate) e: PendingEcho,
}

impl Echo {
    /// Answers it (`Ok(None)`: an echo reply from its destination), refuses it
    /// (`Ok(Some(code))`) or drops it (`Err(())`).
    pub(crate) fn decide(&self, how: Result<Option<Unreachable>, ()>) -> Arc<Completion<()>> {
        let (index, id) = (self.host.index, self.e.id);
        self.host.shared.call(move |core, _| {
            let stack = &mut core.hosts[index].stack;
            match how {
                Ok(None) => stack.forward_echo_reply(id),
                Ok(Some(code)) => stack.forward_echo_refuse(id, code),
                Err(()) => stack.forward_echo_drop(id),
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

    /// Waits for the next TCP flow a client opened (its SYN is held until the decision, or
    /// a SYN cookie completed it: see [`PendingFlow::is_established`]). Echo requests and UDP
    /// flow ends stay for [`next_event`](Self::next_event) (the oldest echo requests go past
    /// 4096: see [`echoes_dropped`](Self::echoes_dropped); flow ends are kept).
    pub fn accept(&self) -> io::Result<PendingFlow> {
        loop {
            if let Forwarded::Flow(f) = self.fwd.next(false)? {
                return Ok(PendingFlow(f));
            }
        }
    }

    /// Waits for the next thing the forwarder asks of the application, in arrival order: a
    /// TCP flow, an echo request to a forwarded destination, or the end of a UDP flow of
    /// [`UdpSocket::forwarder_on`](super::UdpSocket::forwarder_on)'s (close what carries it
    /// upstream).
    ///
    /// ```
    /// use synack::net::{ForwardListener, Forwarded, Runtime, UdpSocket};
    /// use synack::stack::{ForwardConfig, UdpCloseReason, Unreachable};
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
    /// let events = ForwardListener::bind_on(&gw, cfg.clone()).unwrap();
    /// let relay = UdpSocket::forwarder_on(&gw, cfg).unwrap();
    /// let c = UdpSocket::bind_on(&client, "198.18.0.1:5000").unwrap();
    /// c.send_to(b"query", "198.18.0.53:53").unwrap();
    /// let m = relay.recv_from_meta(&mut [0u8; 64]).unwrap();
    /// // Its upstream cannot be reached: the client hears port unreachable, the flow ends.
    /// relay.refuse_flow(m.src, m.dst, Unreachable::Port).unwrap();
    /// match events.next_event().unwrap() {
    ///     Forwarded::UdpClosed { client, dst, reason } => {
    ///         assert_eq!((client, dst), (m.src, m.dst));
    ///         assert_eq!(reason, UdpCloseReason::Refused);
    ///     }
    ///     _ => unreachable!("nothing else happened"),
    /// }
    /// ```
    pub fn next_event(&self) -> io::Result<Forwarded> {
        Ok(self.fwd.next(true)?.map(PendingFlow, EchoRequest))
    }

    /// Echo requests dropped unread: past 4096 waiting, the oldest goes (an application
    /// that only accepts TCP flows never takes them). UDP flow ends are never dropped.
    pub fn echoes_dropped(&self) -> u64 {
        self.fwd.echoes_dropped()
    }
}

/// What [`ForwardListener::next_event`] hands out. The parameters are the flow's and the
/// echo request's types: the blocking ones by default, the tokio façade's in
/// [`tokio::Forwarded`](crate::tokio::Forwarded).
#[non_exhaustive]
pub enum Forwarded<F = PendingFlow, E = EchoRequest> {
    /// A TCP flow to decide on (or already completed by a SYN cookie).
    Flow(F),
    /// An echo request to a forwarded destination: answer, refuse or ignore it.
    Echo(E),
    /// A UDP flow of the forwarder socket ended: close what carries it upstream.
    UdpClosed {
        /// The client.
        client: SocketAddr,
        /// Its original destination.
        dst: SocketAddr,
        /// Idle past its timeout, refused by the client's ICMP, or by the application.
        reason: UdpCloseReason,
    },
}

impl<F, E> Forwarded<F, E> {
    /// A TCP flow (what `accept` takes).
    pub(crate) fn is_flow(&self) -> bool {
        matches!(self, Forwarded::Flow(_))
    }

    /// An echo request (what the pipe caps).
    pub(crate) fn is_echo(&self) -> bool {
        matches!(self, Forwarded::Echo(_))
    }

    /// The same event with its flow or echo request wrapped by `flow` or `echo` (how each
    /// façade turns the pipe's item into its own).
    pub(crate) fn map<G, H>(
        self,
        flow: impl FnOnce(F) -> G,
        echo: impl FnOnce(E) -> H,
    ) -> Forwarded<G, H> {
        match self {
            Forwarded::Flow(f) => Forwarded::Flow(flow(f)),
            Forwarded::Echo(e) => Forwarded::Echo(echo(e)),
            Forwarded::UdpClosed {
                client,
                dst,
                reason,
            } => Forwarded::UdpClosed {
                client,
                dst,
                reason,
            },
        }
    }
}

/// A TCP flow waiting for the application's decision: its client and the destination the
/// client wanted. Dropped undecided, it waits until the forwarder's pending timeout.
///
/// Past [`ForwardConfig::max_pending`] decisions at once, the forwarder answers SYNs with
/// SYN cookies (when the stack's `syncookies` allows) and the clients that complete the
/// handshake come here [established](Self::is_established) already: [`accept`](
/// Self::accept) hands out the connection at once, [`refuse`](Self::refuse) and
/// [`ignore`](Self::ignore) (and dropping it) reset it.
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

    /// A SYN cookie completed the handshake already (past the cap on pending decisions): the
    /// client believes it is connected, so a refusal can only be a reset.
    pub fn is_established(&self) -> bool {
        self.0.is_established()
    }

    /// Accepts it: the SYN-ACK goes out from the original destination and this waits for
    /// the client's ACK. NotFound when the decision expired meanwhile.
    pub fn accept(mut self) -> io::Result<TcpStream> {
        if let Some(sock) = self.0.take_established() {
            return Ok(TcpStream::from_sock(sock));
        }
        let sock = self.0.accept().wait()?;
        sock.connected(None)?;
        Ok(TcpStream::from_sock(sock))
    }

    /// Refuses it with a RST or an ICMP destination unreachable from the original
    /// destination (the client's connect fails at once). NotFound when it expired.
    pub fn refuse(mut self, how: Refusal) -> io::Result<()> {
        let c = self.0.refuse(Some(how));
        self.0.host.shared.wait(&c)
    }

    /// Drops it without a word (the client's SYN retransmissions come back as a new flow).
    pub fn ignore(mut self) -> io::Result<()> {
        let c = self.0.refuse(None);
        self.0.host.shared.wait(&c)
    }
}

/// An ICMP or ICMPv6 echo request to a forwarded destination (from
/// [`ForwardListener::next_event`]): never answered blindly, it waits for the application,
/// which may ping the destination upstream first. Dropped undecided, it is ignored (the
/// forwarder keeps [`ForwardConfig::max_pending_echoes`], dropping the oldest).
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

    /// Answers it with an echo reply from its destination. NotFound when it was dropped past
    /// the cap meanwhile.
    pub fn reply(self) -> io::Result<()> {
        self.0.host.shared.wait(&self.0.decide(Ok(None)))
    }

    /// Answers it with a destination unreachable from its destination.
    pub fn refuse(self, code: Unreachable) -> io::Result<()> {
        self.0.host.shared.wait(&self.0.decide(Ok(Some(code))))
    }

    /// Drops it without a word.
    pub fn ignore(self) -> io::Result<()> {
        self.0.host.shared.wait(&self.0.decide(Err(())))
    }
}
