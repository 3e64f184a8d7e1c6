//! The socket calls: what an application asks of the stack (`listen`, `accept`, `connect`,
//! `send`, `recv`, `shutdown`, `close`, `abort`), each on a [`SocketHandle`].

use core::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use super::route::canonical;
use super::shortcuts::Shortcut;
use super::slots::{Listener, SlotKind};
use super::{SocketHandle, Stack, err};
use crate::tcp::{Config, Connection, Keepalive, PollEvents, Shutdown, congestion};
use crate::time::Instant;
use crate::wire::ip_header_len;

/// A socket option on a connection, set with [`Stack::set_option`] (setsockopt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketOption {
    /// TCP_NODELAY: no Nagle delay.
    NoDelay(bool),
    /// TCP_CORK: hold partial segments until uncorked.
    Cork(bool),
    /// SO_KEEPALIVE with its idle time, interval and count; `None` turns it off.
    Keepalive(Option<Keepalive>),
    /// TCP_USER_TIMEOUT; `None` means the retransmission limits alone.
    UserTimeout(Option<core::time::Duration>),
    /// TCP_CONGESTION.
    Congestion(congestion::Algorithm),
    /// IP_TTL (IPv4) or IPV6_UNICAST_HOPS (IPv6): the TTL or hop limit of the connection's
    /// packets, 1 to 255; `None`: the stack's ([`StackConfig::ttl`](super::StackConfig::ttl),
    /// [`hop_limit`](super::StackConfig::hop_limit)).
    Ttl(Option<u8>),
    /// TCP_SYNCNT: SYN retransmissions before connect fails with TimedOut, 1 to 127 (Linux's
    /// MAX_TCP_SYNCNT), in place of [`Config::syn_retries`]; it also applies to a connection
    /// whose SYN is already out.
    SynCount(u8),
    /// SO_RCVBUF: the receive buffer, given as to setsockopt; Linux doubles it for its
    /// bookkeeping (socket(7), at least 2304 bytes) and locks it (no autotuning). The window
    /// already offered stays; later windows are the new buffer's share.
    RecvBuffer(usize),
}

impl Stack {
    /// Starts listening on `local` (address 0.0.0.0 or `[::]` for every address of ours) with
    /// an accept queue of `backlog` completed connections. A listener on `[::]` also takes
    /// IPv4 connections unless [`StackConfig::bindv6only`](super::StackConfig::bindv6only)
    /// is set (Linux's default: it does).
    pub fn listen(&mut self, local: SocketAddr, backlog: usize) -> io::Result<SocketHandle> {
        self.listen_with(local, backlog, self.cfg.tcp.clone())
    }

    /// [`listen`](Self::listen) with TCP settings of its own for the connections it accepts
    /// (what socket options set on a listening socket do).
    pub fn listen_with(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        tcp: Arc<Config>,
    ) -> io::Result<SocketHandle> {
        self.listen_opts(local, backlog, tcp, self.cfg.bindv6only)
    }

    /// [`listen_with`](Self::listen_with), choosing for a listener on `[::]` whether it
    /// takes IPv6 connections only (`v6only`, the IPV6_V6ONLY socket option) or IPv4 ones too,
    /// whose addresses an application on an IPv6 socket sees IPv4-mapped (`::ffff:a.b.c.d`,
    /// RFC 4291 §2.5.5.2; RFC 3493 §3.7). An IPv4-mapped `local` listens on the IPv4 address.
    ///
    /// Errors: AddrNotAvailable for an address that is not ours; InvalidInput for port 0;
    /// AddrInUse when a listener on the port has an overlapping address: the same one, a
    /// wildcard (`0.0.0.0`, `[::]`) and an address it covers, a dual-stack `[::]` and any IPv4
    /// address (Linux refuses those binds too, without SO_REUSEPORT on both).
    pub fn listen_opts(
        &mut self,
        local: SocketAddr,
        backlog: usize,
        tcp: Arc<Config>,
        v6only: bool,
    ) -> io::Result<SocketHandle> {
        let local = SocketAddr::new(canonical(local.ip()), local.port());
        let a = local.ip();
        if !a.is_unspecified() && !self.is_local(a) {
            return Err(err(
                io::ErrorKind::AddrNotAvailable,
                format!("{a} is not an address of this stack"),
            ));
        }
        if local.port() == 0 {
            return Err(err(io::ErrorKind::InvalidInput, "listen needs a port"));
        }
        let key = (a, local.port());
        // Linux `inet_csk_bind_conflict`: a listener conflicts with every socket on its port
        // whose address overlaps its own (the same address, or a wildcard that covers the
        // other), SO_REUSEADDR notwithstanding (it never lets a socket share a port with a
        // listener); only SO_REUSEPORT on both, which synack does not offer, would.
        let existing_dual = self.dual_stack_listener(local.port()).is_some();
        let new_dual = a == IpAddr::V6(Ipv6Addr::UNSPECIFIED) && !v6only;
        if self.listeners.keys().any(|&(b, port)| {
            port == local.port() && addresses_overlap(a, new_dual, b, existing_dual)
        }) {
            return Err(err(
                io::ErrorKind::AddrInUse,
                format!("{local} overlaps a listener on port {}", local.port()),
            ));
        }
        // Linux `inet_listen`: with tcp_fastopen's "no socket option" bit, every listener
        // does Fast Open with a queue as long as its backlog.
        use crate::tcp::FastOpenMode as M;
        let fastopen_qlen = if tcp.fastopen.has(M::SERVER) && tcp.fastopen.has(M::SERVER_WO_SOCKOPT)
        {
            backlog
        } else {
            0
        };
        let h = self.alloc(SlotKind::Listener(Box::new(Listener {
            fastopen_qlen,
            local,
            backlog: backlog.max(1),
            accept_queue: VecDeque::new(),
            syn_queue_len: 0,
            tcp,
            last_cookie: None,
            v6only: v6only || a.is_ipv4(),
        })));
        self.listeners.insert(key, h);
        Ok(h)
    }

    /// The listener on `[::]:port` that also takes IPv4 connections, if there is one.
    pub(super) fn dual_stack_listener(&mut self, port: u16) -> Option<SocketHandle> {
        let h = *self
            .listeners
            .get(&(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))?;
        let v6only = self.listener_slot(h)?.v6only;
        (!v6only).then_some(h)
    }

    /// Takes a completed connection off a listener's accept queue.
    pub fn accept(&mut self, listener: SocketHandle) -> io::Result<Option<SocketHandle>> {
        let l = self
            .listener_slot(listener)
            .ok_or_else(|| err(io::ErrorKind::InvalidInput, "not a listener"))?;
        Ok(l.accept_queue.pop_front())
    }

    /// Completed connections waiting on a listener.
    pub fn accept_queue_len(&mut self, listener: SocketHandle) -> usize {
        self.listener_slot(listener)
            .map_or(0, |l| l.accept_queue.len())
    }

    /// Opens a connection to `remote` from `local` (or a source address picked by routing
    /// and an ephemeral port).
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) -> io::Result<SocketHandle> {
        self.connect_with(now, remote, local, self.cfg.tcp.clone())
    }

    /// [`connect`](Self::connect) with TCP settings of its own (socket options set before
    /// connect()).
    pub fn connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        tcp: Arc<Config>,
    ) -> io::Result<SocketHandle> {
        self.connect_then(now, remote, local, tcp, |conn, remote, iss, ctr| {
            conn.connect(now, remote, iss, ctr)
        })
    }

    /// [`connect_with`](Self::connect_with) with the connection's active OPEN done by `open`
    /// (given the connection, the remote address, the ISN and the counters).
    pub(super) fn connect_then(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        tcp: Arc<Config>,
        open: impl FnOnce(
            &mut Connection,
            SocketAddr,
            crate::tcp::SeqNum,
            &mut crate::tcp::Counters,
        ) -> Result<(), crate::tcp::Error>,
    ) -> io::Result<SocketHandle> {
        // An IPv4-mapped address is the IPv4 host it maps (RFC 4291 §2.5.5.2).
        let remote = SocketAddr::new(canonical(remote.ip()), remote.port());
        let local = local.map(|l| SocketAddr::new(canonical(l.ip()), l.port()));
        let rip = remote.ip();
        let unusable = match rip {
            IpAddr::V4(a) => a.is_unspecified() || a.is_broadcast() || a.is_multicast(),
            IpAddr::V6(a) => a.is_unspecified() || a.is_multicast(),
        };
        if unusable || remote.port() == 0 {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!("cannot connect to {remote}"),
            ));
        }
        let src = match local.map(|l| l.ip()) {
            Some(a) if !a.is_unspecified() => {
                if !self.is_local(a) {
                    return Err(err(
                        io::ErrorKind::AddrNotAvailable,
                        format!("{a} is not an address of this stack"),
                    ));
                }
                if a.is_ipv4() != rip.is_ipv4() {
                    return Err(err(
                        io::ErrorKind::InvalidInput,
                        format!("cannot connect from {a} to {rip}: different address families"),
                    ));
                }
                a
            }
            _ => self.route(rip).ok_or_else(|| {
                err(
                    io::ErrorKind::NetworkUnreachable,
                    format!("no route to {rip}: add an address on its link or a gateway"),
                )
            })?,
        };
        let port = match local.map(|l| l.port()).filter(|&p| p != 0) {
            Some(p) => {
                if self.conns.contains(&(src, p, remote.ip(), remote.port())) {
                    return Err(err(
                        io::ErrorKind::AddrInUse,
                        format!("{src}:{p} -> {remote} is in use"),
                    ));
                }
                p
            }
            None => {
                let conns = &self.conns;
                self.ports
                    .pick(src, remote, |p| {
                        conns.contains(&(src, p, remote.ip(), remote.port()))
                    })
                    .ok_or_else(|| {
                        err(
                            io::ErrorKind::AddrNotAvailable,
                            format!("no free ephemeral port from {src} to {remote}"),
                        )
                    })?
            }
        };
        let local = SocketAddr::new(src, port);
        let mss = self.mss_for(rip);
        let ts_offset = self.ts_offset(local, remote);
        let (trace, mtu) = (self.cfg.trace, self.path_mtu(rip));
        let iss = self.isn.isn(now, local, remote);
        // Built by `new_in` and moved into its slot (one copy of the TCB); entered in the
        // demux, then opened there (a failed open takes it out again).
        let h = self.place_conn(
            None,
            true,
            |spares| Connection::new_in(tcp, local, mss, ts_offset, spares),
            |_| {},
        );
        // Into the demux before the open (whose failure takes it out again): then one slot
        // lookup serves the bucket, the open and the refresh.
        let tuple = (src, port, rip, remote.port());
        let hash = self.conns.hash(&tuple);
        let entered = self.enter_demux(h, tuple, hash, false);
        let opened = self.try_touch_with(h, now, |c, ctr| {
            entered.write(c);
            c.conn.record_events(trace);
            if let Some(mtu) = mtu {
                c.conn.on_path_mtu(mtu, ip_header_len(rip) as u16);
            }
            open(&mut c.conn, remote, iss, ctr)
        });
        match opened {
            Some(Ok(())) => Ok(h),
            Some(Err(e)) => {
                self.remove_conn(h);
                Err(io::Error::from(e))
            }
            None => {
                // `place_conn` has just filled the slot, so this does not happen; if it did,
                // the demux entry must not outlive it.
                debug_assert!(false, "the slot place_conn filled is gone");
                self.unhash(tuple, h);
                Err(err(io::ErrorKind::Other, "no slot"))
            }
        }
    }

    pub(super) fn ts_offset(&self, local: SocketAddr, remote: SocketAddr) -> u32 {
        // Ports then addresses, in one write (SipHash is the same over the bytes however they
        // are split; one write is cheaper than four).
        let (lp, rp) = (local.port().to_be_bytes(), remote.port().to_be_bytes());
        if let (IpAddr::V4(a), IpAddr::V4(r)) = (local.ip(), remote.ip()) {
            // The common case in 12 bytes of fixed layout (no slice of unknown length).
            let (a, r) = (a.octets(), r.octets());
            let b = [
                lp[0], lp[1], rp[0], rp[1], a[0], a[1], a[2], a[3], r[0], r[1], r[2], r[3],
            ];
            return crate::tcp::siphash::sip13_array(self.ts_key, !self.ts_key, &b) as u32;
        }
        let mut b = [0u8; 36];
        b[..2].copy_from_slice(&local.port().to_be_bytes());
        b[2..4].copy_from_slice(&remote.port().to_be_bytes());
        // (Both IPv4 returned above; mixed families hash the ports alone.)
        let n = match (local.ip(), remote.ip()) {
            (IpAddr::V6(a), IpAddr::V6(r)) => {
                b[4..20].copy_from_slice(&a.octets());
                b[20..36].copy_from_slice(&r.octets());
                36
            }
            _ => 4,
        };
        super::hash::sip13(self.ts_key, !self.ts_key, &b[..n]) as u32
    }

    /// Queues data on a connection (see [`Connection::send`]).
    pub fn send(&mut self, now: Instant, h: SocketHandle, data: &[u8]) -> io::Result<usize> {
        self.data_call(h, now, Shortcut::Write, false, |c, spares| {
            c.send_spared(data, false, false, spares)
        })
    }

    /// Queues data with send() flags (see [`Connection::send_with`]: MSG_MORE, MSG_EOR).
    pub fn send_with(
        &mut self,
        now: Instant,
        h: SocketHandle,
        data: &[u8],
        more: bool,
        eor: bool,
    ) -> io::Result<usize> {
        // Touched even when nothing was queued: a write without MSG_MORE releases what an
        // earlier one held back (`Connection::send_with` clears the hold either way).
        self.data_call(h, now, Shortcut::Write, true, |c, spares| {
            c.send_spared(data, more, eor, spares)
        })
    }

    /// Sets a socket option on a connection (setsockopt); what it changes takes effect at
    /// once (TCP_NODELAY or an uncork sends what it held, keep-alive arms its timer).
    /// NotConnected for a handle that is not a connection.
    pub fn set_option(
        &mut self,
        now: Instant,
        h: SocketHandle,
        opt: SocketOption,
    ) -> io::Result<()> {
        let slot = self.conn_or_err(h)?;
        let c = &mut slot.conn;
        match opt {
            SocketOption::NoDelay(on) => c.set_nodelay(on),
            SocketOption::Cork(on) => c.set_cork(on),
            SocketOption::Keepalive(ka) => c.set_keepalive(now, ka),
            SocketOption::UserTimeout(t) => c.set_user_timeout(t),
            SocketOption::Congestion(alg) => c.set_congestion(alg),
            SocketOption::Ttl(Some(0)) => {
                return Err(err(
                    io::ErrorKind::InvalidInput,
                    "a TTL of 0 is not allowed",
                ));
            }
            SocketOption::Ttl(t) => slot.ttl = t,
            SocketOption::SynCount(n) if !(1..=127).contains(&n) => {
                return Err(err(
                    io::ErrorKind::InvalidInput,
                    "TCP_SYNCNT must be 1 to 127",
                ));
            }
            SocketOption::SynCount(n) => c.config_mut().syn_retries = u32::from(n),
            SocketOption::RecvBuffer(n) => c.set_recv_buffer(n.saturating_mul(2)),
        }
        self.touched(h, now);
        Ok(())
    }

    /// Reads data (see [`Connection::recv`]).
    pub fn recv(&mut self, now: Instant, h: SocketHandle, out: &mut [u8]) -> io::Result<usize> {
        self.data_call(h, now, Shortcut::Read, false, |c, _| c.recv(out))
    }

    /// The TTL (IPv4) or hop limit (IPv6) of a connection's packets.
    pub fn ttl(&mut self, h: SocketHandle) -> io::Result<u8> {
        let (v4, default) = (self.cfg.ttl, self.cfg.hop_limit);
        let c = self.conn_or_err(h)?;
        let stack = if c.conn.remote().is_ipv4() {
            v4
        } else {
            default
        };
        Ok(c.ttl.unwrap_or(stack))
    }

    /// The connection's pending error, taken (SO_ERROR, see [`Connection::take_error`]).
    pub fn take_error(&mut self, h: SocketHandle) -> io::Result<Option<io::Error>> {
        Ok(self.conn_or_err(h)?.conn.take_error().map(io::Error::from))
    }

    /// The poll(2) events of a handle: a connection's as [`Connection::poll_events`]
    /// computes them; a listener's `IN` while a connection waits on its accept queue (Linux's
    /// `inet_csk_listen_poll`). A handle that is gone reports `HUP`.
    pub fn poll_events(&mut self, h: SocketHandle) -> PollEvents {
        if let Some(l) = self.listener_slot(h) {
            return if l.accept_queue.is_empty() {
                PollEvents::NONE
            } else {
                PollEvents::IN
            };
        }
        self.connection(h)
            .map_or(PollEvents::HUP, Connection::poll_events)
    }

    /// Copies received data without consuming it (see [`Connection::peek`]).
    pub fn peek(&mut self, h: SocketHandle, out: &mut [u8]) -> io::Result<usize> {
        Ok(self.conn_or_err(h)?.conn.peek(out))
    }

    pub fn shutdown(&mut self, now: Instant, h: SocketHandle, how: Shutdown) -> io::Result<()> {
        // A listener, as Linux's `inet_shutdown` treats one: SHUT_WR changes nothing; SHUT_RD
        // (or both) disconnects it, so it stops listening as on close() (its unaccepted
        // connections are reset) and the handle is released.
        if self.listener_slot(h).is_some() {
            if how != Shutdown::Write {
                self.close(now, h);
            }
            return Ok(());
        }
        self.conn_or_err(h)?
            .conn
            .shutdown(how)
            .map_err(io::Error::from)?;
        self.touched(h, now);
        Ok(())
    }

    /// Closes a handle: a listener stops listening (its unaccepted connections are reset),
    /// a connection closes in the background (see [`Connection::close`]).
    pub fn close(&mut self, now: Instant, h: SocketHandle) {
        // A connection first (one slot lookup for the call and its refresh), then a listener.
        let closed = self.touch_with(h, now, |c, ctr| {
            c.conn.close(now, ctr);
            c.released = true;
        });
        if closed.is_none() {
            self.close_listener(now, h);
        }
    }

    /// [`close`](Self::close) of a listener: its accept queue's connections are reset, its
    /// SYN queue's entries dropped.
    #[cold]
    fn close_listener(&mut self, now: Instant, h: SocketHandle) {
        if let Some(l) = self.listener_slot(h) {
            let key = (l.local.ip(), l.local.port());
            let pending: Vec<_> = l.accept_queue.drain(..).collect();
            self.listeners.remove(&key);
            self.drop_entries_of(h);
            self.release(h);
            for c in pending {
                self.abort(now, c);
            }
        }
    }

    /// Disconnects a socket, as connect() with AF_UNSPEC does on Linux (`tcp_disconnect`):
    /// a listener stops listening (as on [`close`](Self::close)); a connection is reset (see
    /// [`Connection::disconnect`]). Either way the handle is released: the application
    /// reuses its socket by connecting (or listening) again, which gives a new handle.
    ///
    /// ```
    /// # use synack::stack::{Ipv4Cidr, Stack, StackConfig};
    /// # use synack::tcp::State;
    /// # use synack::time::Instant;
    /// # let mut stack = Stack::new(StackConfig::default(), [7; 32]);
    /// # stack.add_address(Ipv4Cidr::new("192.0.2.2".parse().unwrap(), 24));
    /// let now = Instant::ZERO;
    /// let h = stack.connect(now, "192.0.2.1:80".parse().unwrap(), None).unwrap();
    /// stack.disconnect(now, h);
    /// // The old connection is over (the stack frees it once nothing is left to send).
    /// assert!(stack.connection(h).is_none_or(|c| c.state() == State::Closed));
    /// let again = stack.connect(now, "192.0.2.1:80".parse().unwrap(), None).unwrap();
    /// assert!(stack.connection(again).is_some());
    /// ```
    pub fn disconnect(&mut self, now: Instant, h: SocketHandle) {
        if self.listener_slot(h).is_some() {
            return self.close_listener(now, h);
        }
        self.touch_with(h, now, |c, ctr| {
            c.conn.disconnect(now, ctr);
            c.released = true;
        });
    }

    /// Resets a connection (ABORT) and releases the handle.
    pub fn abort(&mut self, now: Instant, h: SocketHandle) {
        self.touch_with(h, now, |c, ctr| {
            c.conn.abort(now, ctr);
            c.released = true;
        });
    }
}

/// Whether listeners on `a` and `b` (canonical addresses, the same port) would take some of
/// the same connections: equal addresses, a family's wildcard and an address of that family,
/// or a dual-stack `[::]` (`a_dual`, `b_dual`: not IPV6_V6ONLY) and any IPv4 address (Linux
/// `inet_rcv_saddr_equal` with wildcards matching).
fn addresses_overlap(a: IpAddr, a_dual: bool, b: IpAddr, b_dual: bool) -> bool {
    match (a, b) {
        _ if a == b => true,
        (IpAddr::V4(x), IpAddr::V4(y)) => x.is_unspecified() || y.is_unspecified(),
        (IpAddr::V6(x), IpAddr::V6(y)) => x.is_unspecified() || y.is_unspecified(),
        (IpAddr::V6(x), IpAddr::V4(_)) => x.is_unspecified() && a_dual,
        (IpAddr::V4(_), IpAddr::V6(y)) => y.is_unspecified() && b_dual,
    }
}
