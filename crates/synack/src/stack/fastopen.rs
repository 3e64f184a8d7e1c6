//! TCP Fast Open on the server side (RFC 7413 §4.2.2), as Linux's `tcp_try_fastopen` decides
//! it: which SYNs get a child connection at once (with their data), which get a cookie in the
//! SYN-ACK, and the per-listener Fast Open queue (TCP_FASTOPEN).

use core::net::SocketAddr;
use std::io;
use std::sync::Arc;

use super::{SocketHandle, Stack, err};
use crate::tcp::fastopen::{FastOpenKey, FastOpenMode, KeyUsed};
use crate::tcp::{Config, Connection, SeqNum, State};
use crate::time::Instant;
use crate::wire::ip_header_len;
use crate::wire::tcp::{FastOpen, Repr};

/// What a listener does with a SYN, Fast Open-wise.
pub(super) enum SynFastOpen {
    /// A child connection took the SYN (and its data) and is on the accept queue.
    Child,
    /// The ordinary handshake, with this Fast Open option on the SYN-ACK (a cookie for a
    /// request or for a cookie that did not check out).
    Ordinary(Option<FastOpen>),
}

impl Stack {
    /// TCP_FASTOPEN on a listener: the length of its Fast Open queue (children created by
    /// Fast Open whose handshake has not completed); 0 turns server Fast Open off for it.
    /// Linux's `net.ipv4.tcp_fastopen` must have the server bit too
    /// ([`FastOpenMode::SERVER`]). InvalidInput for a handle that is no listener.
    pub fn set_fastopen_queue(&mut self, listener: SocketHandle, qlen: usize) -> io::Result<()> {
        let l = self
            .listener_slot(listener)
            .ok_or_else(|| err(io::ErrorKind::InvalidInput, "not a listener"))?;
        l.fastopen_qlen = qlen;
        Ok(())
    }

    /// The key cookies are made with: the configured one, or the stack's own.
    fn fastopen_key(&self, cfg: &Config) -> FastOpenKey {
        cfg.fastopen_key.unwrap_or(self.fastopen_key)
    }

    /// RFC 7413 §4.2.2 for a SYN to listener `lh` that will be answered (the accept and SYN
    /// queues have room, no SYN cookie): Linux's `tcp_try_fastopen`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fast_open_syn(
        &mut self,
        now: Instant,
        lh: SocketHandle,
        cfg: &Arc<Config>,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Repr<'_>,
        iss: SeqNum,
    ) -> SynFastOpen {
        let fo = seg.options.fast_open;
        if fo.is_some_and(|f| f.is_request()) {
            self.counters.fast_open_cookie_reqd += 1;
        }
        // A cookie request or a cookie of a valid length (Linux `foc->len >= 0`).
        let usable = fo.filter(|f| f.is_request() || f.cookie().is_some());
        let mode = cfg.fastopen;
        if !mode.has(FastOpenMode::SERVER)
            || (seg.payload.is_empty() && usable.is_none())
            || !self.fast_open_queue_has_room(lh)
        {
            return SynFastOpen::Ordinary(None);
        }
        if mode.has(FastOpenMode::SERVER_COOKIE_NOT_REQD) {
            return self.fast_open_child(now, lh, cfg, local, remote, seg, iss);
        }
        let Some(fo) = usable else {
            return SynFastOpen::Ordinary(None);
        };
        let key = self.fastopen_key(cfg);
        let valid = key.cookie(remote.ip(), local.ip());
        let fresh = FastOpen::with_cookie(fo.experimental, &valid);
        match fo.cookie() {
            // §4.1.2: a request gets a cookie.
            None => SynFastOpen::Ordinary(fresh),
            Some(c) => match key.check(remote.ip(), local.ip(), c) {
                Some(KeyUsed::Primary | KeyUsed::Backup) => {
                    self.fast_open_child(now, lh, cfg, local, remote, seg, iss)
                }
                // §4.2.2: "If the cookie is not valid, the server ... acknowledges only the
                // ISN" and sends a valid cookie.
                None => {
                    self.counters.fast_open_passive_fail += 1;
                    SynFastOpen::Ordinary(fresh)
                }
            },
        }
    }

    /// Linux `tcp_fastopen_queue_check`: Fast Open is on for the listener and fewer of its
    /// Fast Open children than its queue length are still in SYN-RECEIVED.
    fn fast_open_queue_has_room(&mut self, lh: SocketHandle) -> bool {
        let Some(l) = self.listener_slot(lh) else {
            return false;
        };
        let max = l.fastopen_qlen;
        if max == 0 {
            return false;
        }
        let queued: Vec<SocketHandle> = l.accept_queue.iter().copied().collect();
        let pending = queued
            .into_iter()
            .filter(|&h| {
                self.conn_slot(h)
                    .is_some_and(|c| c.conn.fast_open_pending())
            })
            .count();
        if pending >= max {
            self.counters.fast_open_listen_overflow += 1;
            return false;
        }
        true
    }

    /// Linux `tcp_fastopen_create_child`: the connection in SYN-RECEIVED with the SYN's data,
    /// straight onto the accept queue; its own SYN-ACK (sent and retransmitted by it)
    /// acknowledges the data.
    #[allow(clippy::too_many_arguments)]
    fn fast_open_child(
        &mut self,
        now: Instant,
        lh: SocketHandle,
        cfg: &Arc<Config>,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Repr<'_>,
        iss: SeqNum,
    ) -> SynFastOpen {
        let mss = self.announced_mss(cfg, remote.ip());
        // Its congestion controller from the spares, as for any other connection.
        let ts_offset = self.ts_offset(local, remote);
        let mut conn = Connection::new_in(cfg.clone(), local, mss, ts_offset, &mut self.spares);
        conn.record_events(self.cfg.trace);
        if let Some(mtu) = self.path_mtu(remote.ip()) {
            conn.on_path_mtu(mtu, ip_header_len(remote.ip()) as u16);
        }
        let _ = conn.listen();
        let mut ctr = crate::tcp::Counters::default();
        if !conn.accept_fast_open_syn(now, remote, seg, iss, &mut ctr) {
            conn.give_controller(&mut self.spares);
            return SynFastOpen::Ordinary(None);
        }
        // The SYN was counted in InSegs when it reached the listener.
        ctr.in_segs = 0;
        self.counters.add(&ctr);
        self.counters.fast_open_passive += 1;
        self.trace_state(
            now,
            local,
            remote,
            State::Listen,
            State::SynReceived,
            "SYN with a Fast Open cookie",
        );
        let h = self.insert_conn(conn, None, true);
        if let Some(l) = self.listener_slot(lh) {
            l.accept_queue.push_back(h);
        }
        self.mark_changed(lh);
        self.touched(h, now);
        SynFastOpen::Child
    }
}

/// The stack's own Fast Open key, from its secret (Linux draws a random one).
pub(super) fn key_from_secret(secret: &[u8; 32]) -> FastOpenKey {
    let mut k = [0u8; 16];
    for (i, b) in k.iter_mut().enumerate() {
        *b = secret[i].rotate_left(3) ^ secret[31 - i];
    }
    FastOpenKey::new(k)
}

/// What a client remembers of a server for Fast Open (Linux keeps it in tcp_metrics): its
/// last valid cookie and its MSS (RFC 7413 §4.1.3: "the client caches the cookie ... and
/// the MSS").
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Cached {
    cookie: Option<FastOpen>,
    mss: Option<u16>,
}

/// Linux `MAX_TCP_OPTION_SPACE`: the SYN's data leaves room for 40 bytes of options.
const SYN_OPTION_SPACE: usize = 40;

/// What [`Stack::connect_fast_open`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastOpenConnect {
    pub handle: SocketHandle,
    /// Bytes that ride on the SYN (queued); 0 when the SYN asks for a cookie instead.
    pub syn_data: usize,
}

impl Stack {
    /// connect() with TCP Fast Open (sendto with MSG_FASTOPEN; RFC 7413 §4.2.1), as Linux's
    /// `tcp_sendmsg_fastopen`: with a cookie cached for `remote` (or `tcp_fastopen` bit 0x4,
    /// no cookie needed) the SYN carries up to one cached-MSS less 40 bytes of `data`;
    /// without one it asks for a cookie and carries none. Unsupported when the client bit of
    /// `tcp_fastopen` is off (EOPNOTSUPP).
    pub fn connect_fast_open(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        tcp: Arc<Config>,
        data: &[u8],
    ) -> io::Result<FastOpenConnect> {
        if !tcp.fastopen.has(FastOpenMode::CLIENT) {
            return Err(err(
                io::ErrorKind::Unsupported,
                "TCP Fast Open: the client bit of tcp_fastopen is off",
            ));
        }
        let rip = super::route::canonical(remote.ip());
        let cached = self.fastopen_cache.get(&rip).copied().unwrap_or_default();
        let no_cookie = tcp.fastopen.has(FastOpenMode::CLIENT_NO_COOKIE);
        // Linux `tcp_fastopen_cookie_check`: no-cookie mode sends no option, even with a
        // cookie cached.
        let (option, with_data) = match cached.cookie {
            _ if no_cookie => (None, true),
            Some(c) => (Some(c), true),
            None => (Some(FastOpen::request(false)), false),
        };
        // The SYN's data fits one segment of the smallest of the path's MSS, TCP_MAXSEG and
        // the server's MSS remembered from an earlier connection (Linux `tcp_send_syn_data`).
        let mss = usize::from(self.mss_for(rip));
        let mss = tcp.mss_clamp.map_or(mss, |c| mss.min(usize::from(c)));
        let mss = cached.mss.map_or(mss, |m| mss.min(usize::from(m)));
        let room = if with_data {
            mss.saturating_sub(SYN_OPTION_SPACE)
        } else {
            0
        };
        let mut queued = 0;
        let handle = self.connect_then(now, remote, local, tcp, |conn, remote, iss, ctr| {
            queued = conn.connect_fast_open(now, remote, iss, option, data, room, ctr)?;
            Ok(())
        })?;
        Ok(FastOpenConnect {
            handle,
            syn_data: queued,
        })
    }

    /// The SYN-ACK of a Fast Open attempt to `remote` taught a cookie or an MSS: cache them
    /// (a new cookie replaces the old only if valid, Linux `tcp_fastopen_cache_set`).
    pub(super) fn fast_open_learned(
        &mut self,
        remote: core::net::IpAddr,
        l: crate::tcp::connection::FastOpenLearned,
    ) {
        let e = self.fastopen_cache.entry(remote).or_default();
        if l.cookie.is_some() {
            e.cookie = l.cookie;
        }
        if l.mss.is_some() {
            e.mss = l.mss;
        }
    }
}

impl Stack {
    /// Whether a Fast Open connect() to `remote` would put data in its SYN now (a cookie is
    /// cached, or none is needed): Linux's TCP_FASTOPEN_CONNECT then defers the SYN to the
    /// first write (`tcp_fastopen_defer_connect`).
    pub fn fast_open_ready(&self, remote: core::net::IpAddr, tcp: &Config) -> bool {
        let rip = super::route::canonical(remote);
        tcp.fastopen.has(FastOpenMode::CLIENT)
            && (tcp.fastopen.has(FastOpenMode::CLIENT_NO_COOKIE)
                || self
                    .fastopen_cache
                    .get(&rip)
                    .is_some_and(|c| c.cookie.is_some()))
    }
}

impl Stack {
    /// The application blocks writing more than the SYN of Fast Open connection `h` carries
    /// (see [`Connection::fast_open_writer_waiting`]).
    pub fn fast_open_writer_waiting(&mut self, h: SocketHandle) {
        if let Some(c) = self.conn_slot(h) {
            c.conn.fast_open_writer_waiting();
        }
    }
}
