//! TCP Fast Open on the server side (RFC 7413 §4.2.2), as Linux's `tcp_try_fastopen` decides
//! it: which SYNs get a child connection at once (with their data), which get a cookie in the
//! SYN-ACK, and the per-listener Fast Open queue (TCP_FASTOPEN).

use core::net::SocketAddr;
use std::io;
use std::sync::Arc;

use super::route::ip_header_len;
use super::{SocketHandle, Stack, err};
use crate::tcp::fastopen::{FastOpenKey, FastOpenMode, KeyUsed};
use crate::tcp::{Config, Connection, SeqNum, State};
use crate::time::Instant;
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
        let mut conn = Connection::new(cfg.clone(), local, mss, self.ts_offset(local, remote));
        conn.record_events(self.cfg.trace);
        if let Some(mtu) = self.path_mtu(remote.ip()) {
            conn.on_path_mtu(mtu, ip_header_len(remote.ip()) as u16);
        }
        let _ = conn.listen();
        let mut ctr = crate::tcp::Counters::default();
        if !conn.accept_fast_open_syn(now, remote, seg, iss, &mut ctr) {
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
