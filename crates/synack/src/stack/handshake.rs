//! How a listener answers SYNs and completes handshakes without a TCB until the peer's ACK
//! (RFC 4987 §3: commit no resources until the third segment proves the peer receives at its
//! address): the SYN queue of compact entries, SYN cookies (§3.6) when it is full or always,
//! SYN-ACK retransmission with backoff, and the accept-queue bound.
//!
//! A SYN for a listener goes, in Linux's order:
//! 1. accept queue full: dropped (ListenOverflows, ListenDrops); with cookies too, since the
//!    connection could not be handed over anyway;
//! 2. `syncookies` Always, or SYN queue full and `syncookies` OnOverflow: a cookie SYN-ACK
//!    (SyncookiesSent), no state;
//! 3. SYN queue full and cookies off: dropped (TCPReqQFullDrop, ListenDrops);
//! 4. cookies off and less than a quarter of the SYN queue free: dropped (ListenDrops), see
//!    [`NO_COOKIE_RESERVE_DIVISOR`];
//! 5. otherwise an [`Entry`] and a SYN-ACK, sent again with exponential backoff up to
//!    `synack_retries` times.
//!
//! The ACK that completes a handshake (an entry's, or a valid cookie) becomes a
//! [`Connection`] built by [`Connection::from_handshake`] and goes through the same code as
//! every other segment, so data on it is taken, and the connection joins the accept queue.

use crate::tcp::ecn::Codepoint;
use core::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::egress::IpHeader;
use super::syn_queue::{Entry, SQ_BIT};
use super::{SocketHandle, Stack, Tuple};
use crate::tcp::handshake::{Handshake, SynAck, passive_window, ts_clock};
use crate::tcp::syncookie::{self, CookieOptions};
use crate::tcp::{Config, Connection, State, SynCookies};
use crate::time::Instant;
use crate::wire::IpProtocol;
use crate::wire::ip_header_len;
use crate::wire::tcp::{Flags, Options, Repr, Timestamps};

/// How long after a listener last sent a cookie it still checks ACKs as cookies (Linux
/// checks cookies only after a recent SYN-queue overflow, for the cookies' lifetime).
const COOKIE_WINDOW: crate::time::Duration =
    crate::time::Duration::from_secs(syncookie::PERIOD.as_secs() * syncookie::MAX_AGE as u64);

/// With cookies off, a SYN is dropped once fewer than `max_syn_backlog / 4` places are left
/// in its listener's SYN queue, so the queue never fills entirely (Linux `tcp_conn_request`:
/// `!syncookies && max_syn_backlog - inet_csk_reqsk_queue_len(sk) < (max_syn_backlog >> 2)`).
///
/// Linux keeps that last quarter for peers "proven to be alive" (`tcp_peer_is_proven`: the
/// tcp_metrics cache holds an RTT from an earlier connection with that address), so hosts it
/// already talked to still get in during a flood. This stack keeps no per-destination RTT
/// cache, so no peer is proven and the last quarter stays empty: without cookies a listener
/// holds at most `max_syn_backlog - max_syn_backlog / 4 + 1` half-open connections. What
/// the rule buys here is the same headroom Linux gets for its unproven peers; the proven
/// peers' exemption would need a metrics cache first.
pub(super) const NO_COOKIE_RESERVE_DIVISOR: usize = 4;

impl Stack {
    /// RFC 9293 §3.10.7.2: a SYN (no ACK, no RST) for listener `lh`; `hash`: the demux
    /// table's hash of its 4-tuple, as the demux computed it. `isn`: the ISN to answer
    /// with instead of a fresh one (a SYN that ended a TIME-WAIT incarnation, see
    /// `Connection::time_wait_accepts_syn`); a SYN cookie still takes the cookie's.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn syn_to_listener(
        &mut self,
        now: Instant,
        lh: SocketHandle,
        hash: u64,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Repr<'_>,
        isn: Option<crate::tcp::SeqNum>,
    ) {
        self.counters.in_segs += 1;
        let cfg = self.listener_tcp(lh);
        let Some(l) = self.listener_slot(lh) else {
            return;
        };
        if l.accept_queue.len() >= l.backlog {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            return self.trace_drop_note(now, "accept queue full: SYN dropped");
        }
        let queue_full = l.syn_queue_len >= cfg.max_syn_backlog;
        let cookie = match cfg.syncookies {
            SynCookies::Never => false,
            SynCookies::OnOverflow => queue_full,
            SynCookies::Always => true,
        };
        if cookie {
            l.last_cookie = Some(now);
            if queue_full {
                self.counters.req_q_full_do_cookies += 1;
            }
            return self.send_cookie(now, &cfg, local, remote, seg, queue_full);
        }
        if queue_full {
            self.counters.req_q_full_drop += 1;
            self.counters.listen_drops += 1;
            return self.trace_drop_note(now, "SYN queue full, cookies off: SYN dropped");
        }
        if cfg.syncookies == SynCookies::Never
            && cfg.max_syn_backlog.saturating_sub(l.syn_queue_len)
                < cfg.max_syn_backlog / NO_COOKIE_RESERVE_DIVISOR
        {
            self.counters.listen_drops += 1;
            return self.trace_drop_note(
                now,
                "SYN queue 3/4 full, cookies off, peer not proven: SYN dropped",
            );
        }
        let iss = isn.unwrap_or_else(|| self.isn.isn(now, local, remote));
        // RFC 7413 §4.2.2: a valid Fast Open cookie makes the connection now.
        let fast_open = match self.fast_open_syn(now, lh, &cfg, local, remote, seg, iss) {
            super::fastopen::SynFastOpen::Child => return,
            super::fastopen::SynFastOpen::Ordinary(option) => option,
        };
        if let Some(l) = self.listener_slot(lh) {
            l.syn_queue_len += 1;
        }
        let hs = Handshake::from_syn(seg, iss);
        let tuple = (local.ip(), local.port(), remote.ip(), remote.port());
        let ts_offset = self.ts_offset(local, remote);
        let i = self
            .syn_queue
            .insert(tuple, Entry::new(lh, &hs, ts_offset, now + cfg.rto_initial));
        // The demux finds it by its 4-tuple (nothing else had it: the demux looked first).
        self.conns.insert(hash, tuple, entry_handle(i));
        self.counters.syn_queue_len = self.syn_queue.len() as u64;
        self.counters.syn_queue_peak = self.syn_queue.peak() as u64;
        self.trace_state(
            now,
            local,
            remote,
            State::Listen,
            State::SynReceived,
            "SYN received",
        );
        self.queue_synack(now, &cfg, local, remote, &hs, ts_offset, None, fast_open);
    }

    /// RFC 4987 §3.6: answer with a cookie and keep nothing.
    pub(super) fn send_cookie(
        &mut self,
        now: Instant,
        cfg: &Config,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Repr<'_>,
        overflow: bool,
    ) {
        let o = &seg.options;
        let offer = CookieOptions {
            mss: o.mss.unwrap_or(cfg.default_mss_for(remote.ip())),
            window_scale: o.window_scale.filter(|_| cfg.window_scaling),
            sack_permitted: o.sack_permitted && cfg.sack,
            timestamps: o.timestamps.is_some() && cfg.timestamps,
            // RFC 3168 §6.1.1: granted when asked and enabled (kept in the cookie only with
            // timestamps, as Linux's cookie_ecn_ok).
            ecn: crate::tcp::ecn::syn_asks(seg.flags) && cfg.ecn.accepts(),
        };
        let c = self.cookies.encode(now, local, remote, seg.seq, offer);
        self.counters.syncookies_sent += 1;
        let hs = Handshake {
            iss: c.isn,
            irs: seg.seq,
            mss: Some(c.options.mss),
            window_scale: c.options.window_scale,
            sack_permitted: c.options.sack_permitted,
            ts_recent: o
                .timestamps
                .filter(|_| c.options.timestamps)
                .map(|t| t.tsval),
            synack_sent: None,
            retransmits: 0,
            ecn: crate::tcp::ecn::syn_asks(seg.flags),
        };
        if self.trace_on() {
            let why = if overflow {
                "SYN queue full"
            } else {
                "syncookies always"
            };
            self.trace_note(now, format!("SYN cookie sent ({why}) to {remote}"));
        }
        let ts_offset = self.ts_offset(local, remote);
        self.queue_synack(now, cfg, local, remote, &hs, ts_offset, c.ts_bits, None);
    }

    /// Queues the SYN-ACK for `hs` (built by the same option builder as a connection's), with
    /// cookie option bits in the TSval when `ts_bits` is given and a Fast Open option when
    /// `fast_open` is (only the first SYN-ACK carries one, as Linux's).
    #[allow(clippy::too_many_arguments)]
    fn queue_synack(
        &mut self,
        now: Instant,
        cfg: &Config,
        local: SocketAddr,
        remote: SocketAddr,
        hs: &Handshake,
        ts_offset: u32,
        ts_bits: Option<u8>,
        fast_open: Option<crate::wire::tcp::FastOpen>,
    ) {
        let clock = ts_clock(now, ts_offset);
        let tsval = ts_bits.map_or(clock, |b| syncookie::tsval(clock, b));
        let mss = self.announced_mss(cfg, remote.ip());
        let mut sa = SynAck::new(cfg, local, remote, hs, mss, tsval);
        sa.options.fast_open = fast_open;
        if self.synacks.len() < super::egress::MAX_CONTROL {
            self.synacks.push_back(sa);
        }
    }

    /// Writes the next queued SYN-ACK as an IP packet into `buf`.
    pub(super) fn transmit_synack(&mut self, buf: &mut [u8]) -> Option<usize> {
        while let Some(sa) = self.synacks.pop_front() {
            let (src, dst) = (sa.local.ip(), sa.remote.ip());
            let hlen = ip_header_len(dst);
            let Some(n) = buf.get_mut(hlen..).and_then(|b| sa.write(b)) else {
                if buf.len() < hlen + sa.len() {
                    // It does not fit the caller's buffer: it stays first in the queue for a
                    // call that brings room (as a connection's segment does), not dropped.
                    // (Its length is worked out only here, not for every SYN-ACK sent.)
                    self.synacks.push_front(sa);
                    return None;
                }
                continue;
            };
            let ip = IpHeader {
                src,
                dst,
                protocol: IpProtocol::Tcp,
                dont_frag: true,
                flow_label: self.flow_label(src, sa.local.port(), dst, sa.remote.port(), 0),
                ttl: None,
                ecn: Codepoint::NotEct,
            };
            let Some(total) = self.emit_ip(buf, &ip, n, None) else {
                continue;
            };
            self.counters.out_segs += 1;
            return Some(total);
        }
        None
    }

    /// A segment for a half-open connection in the SYN queue (`h`, the demux handle of
    /// `tuple`, whose hash is `hash`): RFC 9293 §3.10.7.4 for SYN-RECEIVED, on the compact
    /// entry.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn segment_to_entry(
        &mut self,
        now: Instant,
        h: SocketHandle,
        hash: u64,
        tuple: &Tuple,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Repr<'_>,
    ) {
        let i = h.index & !SQ_BIT;
        let Some(&e) = self.syn_queue.get_for(i, tuple) else {
            return;
        };
        self.counters.in_segs += 1;
        let f = seg.flags;
        let rcv_nxt = e.irs + 1u32;
        let cfg = self.listener_tcp(e.listener);
        let mss = self.announced_mss(&cfg, remote.ip());
        let hs = e.handshake(cfg.rto_initial);
        let wnd = passive_window(&cfg, mss as u32, &hs);
        if f.rst() {
            // Second step, as RFC 5961 §3.2 has it for every state but SYN-SENT: a RST exactly
            // at RCV.NXT ends the half-open connection ("return this connection to LISTEN
            // state" is dropping the entry); one elsewhere in the window gets a challenge ACK
            // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and is dropped; one outside the window is
            // dropped silently. (Linux's request sockets take any in-window RST, tcp_check_req;
            // the RFC 5961 rule keeps a blind attacker who guesses the window from killing
            // handshakes, and a genuine peer answers the challenge ACK with an exact RST.)
            if seg.seq == rcv_nxt {
                self.counters.attempt_fails += 1;
                self.drop_entry(now, i, local, remote, State::Listen, "RST in SYN-RECEIVED");
            } else if seg.seq.in_range(rcv_nxt, rcv_nxt + wnd) {
                if self.syn_queue.acks.take(now, cfg.challenge_ack_limit) {
                    self.counters.challenge_acks += 1;
                    self.trace_drop_note(now, "RST not at RCV.NXT in SYN-RECEIVED: challenge ACK");
                    self.entry_ack(now, &cfg, local, remote, &e, &hs, wnd);
                } else {
                    self.counters.challenge_ack_limited += 1;
                    self.trace_drop_note(now, "RST not at RCV.NXT in SYN-RECEIVED");
                }
            } else {
                self.trace_drop_note(now, "RST out of window in SYN-RECEIVED");
            }
            return;
        }
        if f.syn() {
            if !f.ack() && seg.seq == e.irs {
                // The same SYN again: our SYN-ACK was lost. Send it again, as a TCB would.
                self.counters.retrans_segs += 1;
                if let Some(e) = self.syn_queue.get_mut(i) {
                    e.mark_resent();
                }
                self.trace_drop_note(now, "duplicate SYN, SYN-ACK sent again");
                return self.queue_synack(now, &cfg, local, remote, &hs, e.ts_offset, None, None);
            }
            if seg.seq.in_range(rcv_nxt, rcv_nxt + wnd) {
                // Fourth step: "If the connection was initiated with a passive OPEN, then
                // return this connection to the LISTEN state".
                self.counters.attempt_fails += 1;
                self.drop_entry(now, i, local, remote, State::Listen, "SYN in SYN-RECEIVED");
            } else {
                // First step: not acceptable, so "an acknowledgment should be sent in reply"
                // (Linux `tcp_check_req`: out of window, send an ACK and drop; rate-limited).
                self.counters.out_of_window += 1;
                self.trace_drop_note(now, "SYN out of window in SYN-RECEIVED");
                if self.syn_queue.acks.take(now, cfg.challenge_ack_limit) {
                    self.entry_ack(now, &cfg, local, remote, &e, &hs, wnd);
                }
            }
            return;
        }
        if !f.ack() {
            self.counters.dropped += 1;
            return self.trace_drop_note(now, "no ACK bit");
        }
        // First step: sequence number acceptability (the four cases of §3.10.7.4; our window
        // is what the SYN-ACK advertised).
        let len = seg.segment_len() as u32;
        let end = rcv_nxt + wnd;
        let acceptable = seg.seq.in_range(rcv_nxt, end)
            || (len > 0 && (seg.seq + (len - 1)).in_range(rcv_nxt, end));
        if !acceptable {
            // "If an incoming segment is not acceptable, an acknowledgment should be sent in
            // reply" (throttled with the challenge ACKs, as Linux rate-limits it per request).
            self.counters.out_of_window += 1;
            self.trace_drop_note(now, "out of window in SYN-RECEIVED");
            if self.syn_queue.acks.take(now, cfg.challenge_ack_limit) {
                self.entry_ack(now, &cfg, local, remote, &e, &hs, wnd);
            }
            return;
        }
        // Fifth step: "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED ... If the
        // segment acknowledgment is not acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST>".
        if seg.ack != e.iss + 1u32 {
            self.trace_drop_note(now, "unacceptable ACK in SYN-RECEIVED: RST");
            return self.reply_rst(local, remote, seg.ack, None);
        }
        if self.accept_queue_full(e.listener) {
            // Linux: drop the final ACK, keep the entry; the SYN-ACK retransmission or the
            // client's data completes the handshake once accept() makes room.
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            return self.trace_drop_note(now, "accept queue full: final ACK dropped");
        }
        // Its demux entry stays: the connection takes it over under the same 4-tuple and
        // hash (`establish` replaces the handle), one table update, not two.
        self.take_entry(i);
        self.establish(now, e.listener, hash, local, remote, &hs, e.ts_offset, seg);
    }

    /// The ACK `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` of half-open connection `e` (SND.NXT is
    /// ISS + 1: the SYN-ACK is all we sent), with the window of its SYN-ACK, scaled once both
    /// sides offered scaling (RFC 7323 §2.2), and timestamps if they were negotiated (§3.2).
    /// `hs` is `e`'s handshake and `wnd` the window its SYN-ACK offered, as the caller has
    /// them.
    #[allow(clippy::too_many_arguments)]
    fn entry_ack(
        &mut self,
        now: Instant,
        cfg: &Config,
        local: SocketAddr,
        remote: SocketAddr,
        e: &Entry,
        hs: &Handshake,
        wnd: u32,
    ) {
        let shift = match hs.window_scale {
            Some(_) if cfg.window_scaling => cfg.our_window_shift(),
            _ => 0,
        };
        let mut options = Options::default();
        if cfg.timestamps {
            options.timestamps = hs.ts_recent.map(|tsecr| Timestamps {
                tsval: ts_clock(now, e.ts_offset),
                tsecr,
            });
        }
        let seg = Repr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: e.iss + 1u32,
            ack: e.irs + 1u32,
            flags: Flags::ACK,
            window: (wnd >> shift).min(u32::from(u16::MAX)) as u16,
            urgent: 0,
            options,
            payload: &[],
        };
        if self.queue_tcp(local, remote, &seg) {
            self.counters.out_segs += 1;
        }
    }

    /// An ACK for listener `lh` that matches no connection and no entry: when the listener
    /// sent cookies lately (or always does), check it as a cookie. Returns true if it was
    /// handled (a connection made, or the ACK dropped); false if the caller should answer it
    /// as §3.10.7.2 says (a RST).
    pub(super) fn cookie_ack(
        &mut self,
        now: Instant,
        lh: SocketHandle,
        hash: u64,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &Repr<'_>,
    ) -> bool {
        let mode = self.listener_tcp(lh).syncookies;
        let Some(l) = self.listener_slot(lh) else {
            return false;
        };
        let recent = l.last_cookie.is_some_and(|t| now - t < COOKIE_WINDOW);
        let check = match mode {
            SynCookies::Never => false,
            SynCookies::OnOverflow => recent,
            SynCookies::Always => true,
        };
        if !check || seg.flags.syn() || seg.flags.rst() || !seg.flags.ack() {
            return false;
        }
        self.counters.in_segs += 1;
        let ts = seg.options.timestamps;
        let decoded =
            self.cookies
                .decode(now, local, remote, seg.seq, seg.ack, ts.map(|t| t.tsecr));
        let o = match decoded {
            Ok(o) => o,
            Err(e) => {
                self.counters.syncookies_failed += 1;
                if self.trace_on() {
                    self.trace_note(now, format!("{e} (ACK from {remote}): RST"));
                }
                return false;
            }
        };
        if self.accept_queue_full(lh) {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            self.trace_drop_note(now, "accept queue full: cookie ACK dropped");
            return true;
        }
        self.counters.syncookies_recv += 1;
        if self.trace_on() {
            // Options in the trace's (Wireshark's) notation: WS= is the multiplier.
            let mut text = format!("SYN cookie accepted from {remote}: MSS={}", o.mss);
            if let Some(ws) = o.window_scale {
                text.push_str(&format!(" WS={}", 1u32 << ws));
            }
            if o.sack_permitted {
                text.push_str(" SACK_PERM");
            }
            if o.timestamps {
                text.push_str(" TS");
            }
            self.trace_note(now, text);
        }
        let hs = Handshake {
            iss: seg.ack - 1u32,
            irs: seg.seq - 1u32,
            mss: Some(o.mss),
            window_scale: o.window_scale,
            sack_permitted: o.sack_permitted,
            ts_recent: ts.filter(|_| o.timestamps).map(|t| t.tsval),
            synack_sent: None,
            retransmits: 0,
            ecn: o.ecn,
        };
        self.trace_state(
            now,
            local,
            remote,
            State::Listen,
            State::SynReceived,
            "SYN cookie",
        );
        let ts_offset = self.ts_offset(local, remote);
        self.establish(now, lh, hash, local, remote, &hs, ts_offset, seg);
        true
    }

    /// The ACK of a handshake arrived: build the connection and hand it the ACK (and any data
    /// on it); `refresh` moves it to the accept queue once ESTABLISHED. `ts_offset`: its
    /// timestamp offset, as its SYN-ACK had it; `hash`: the demux table's hash of its 4-tuple.
    #[allow(clippy::too_many_arguments)]
    fn establish(
        &mut self,
        now: Instant,
        lh: SocketHandle,
        hash: u64,
        local: SocketAddr,
        remote: SocketAddr,
        hs: &Handshake,
        ts_offset: u32,
        seg: &Repr<'_>,
    ) {
        let cfg = self.listener_tcp(lh);
        let mss = self.announced_mss(&cfg, remote.ip());
        let (trace, mtu) = (self.cfg.trace, self.path_mtu(remote.ip()));
        self.counters.passive_opens += 1;
        // Built by `new_in`, moved into its slot (the one copy of the TCB left), then set up
        // there as `Connection::from_handshake` sets it up.
        let h = self.place_conn(
            Some(lh),
            false,
            |spares| Connection::new_in(cfg, local, mss, ts_offset, spares),
            |c| c.syn_received_from(now, remote, hs),
        );
        let tuple = (local.ip(), local.port(), remote.ip(), remote.port());
        let entered = self.enter_demux(h, tuple, hash, true);
        // One slot lookup for the demux entry's bucket, the final ACK and the refresh.
        self.touch_with(h, now, |c, ctr| {
            entered.write(c);
            c.conn.record_events(trace);
            if let Some(mtu) = mtu {
                c.conn.on_path_mtu(mtu, ip_header_len(remote.ip()) as u16);
            }
            // The ACK was counted in InSegs when it arrived; the connection counts it again.
            ctr.in_segs = ctr.in_segs.saturating_sub(1);
            c.conn.handle_segment(now, seg, ctr);
        });
    }

    /// SYN-ACK retransmissions and expiries due at `now` (RFC 6298 §5.5 backoff; Linux
    /// tcp_synack_retries).
    pub(super) fn syn_queue_timeouts(&mut self, now: Instant) {
        while let Some((i, tuple, e)) = self.syn_queue.pop_due(now) {
            let cfg = self.listener_tcp(e.listener);
            let local = SocketAddr::new(tuple.0, tuple.1);
            let remote = SocketAddr::new(tuple.2, tuple.3);
            if e.retries as u32 >= cfg.synack_retries.min(u8::MAX as u32) {
                self.counters.attempt_fails += 1;
                self.drop_entry(
                    now,
                    i,
                    local,
                    remote,
                    State::Closed,
                    "retransmissions exhausted",
                );
                continue;
            }
            let retries = e.retries + 1;
            let rto = cfg
                .rto_initial
                .saturating_mul(1 << retries.min(20))
                .min(cfg.rto_max);
            if let Some(entry) = self.syn_queue.get_mut(i) {
                entry.retries = retries;
            }
            self.syn_queue.set_deadline(i, now + rto);
            self.counters.timeouts += 1;
            self.counters.retrans_segs += 1;
            if self.trace_on() {
                // The SYN-ACK again: relative sequence number 0, as its segment line shows.
                self.trace_note(now, "retransmit seq=0 len=1 (Timeout)".into());
            }
            let hs = e.handshake(cfg.rto_initial);
            self.queue_synack(now, &cfg, local, remote, &hs, e.ts_offset, None, None);
        }
    }

    /// Closing listener `lh` drops its half-open connections.
    pub(super) fn drop_entries_of(&mut self, lh: SocketHandle) {
        for (i, tuple) in self.syn_queue.remove_listener(lh) {
            self.unhash(tuple, entry_handle(i));
        }
        self.counters.syn_queue_len = self.syn_queue.len() as u64;
    }

    /// An ICMP error quoting a segment of the half-open connection `h` (a demux handle with
    /// [`SQ_BIT`]; Linux `tcp_req_err`): the quoted sequence number must be our ISN, else the error is
    /// counted and ignored (RFC 5927 §4.1); `drops`: it is one that removes the entry
    /// silently (counted as a listen drop), so a later ACK finds only the listener. POSIX
    /// has no way to report it from accept().
    pub(super) fn icmp_error_to_request(
        &mut self,
        now: Instant,
        h: SocketHandle,
        seq: crate::tcp::SeqNum,
        drops: bool,
    ) {
        let i = h.index & !SQ_BIT;
        let Some(e) = self.syn_queue.get(i) else {
            return;
        };
        if e.iss != seq {
            self.counters.out_of_window_icmps += 1;
            return;
        }
        if drops && self.remove_entry(i).is_some() {
            self.counters.listen_drops += 1;
            if self.trace_on() {
                self.trace_note(now, "ICMP error for a half-open connection: dropped".into());
            }
        }
    }

    /// Takes entry `i` out of the SYN queue and the demux table.
    fn remove_entry(&mut self, i: u32) -> Option<Entry> {
        let (tuple, e) = self.take_entry(i)?;
        self.unhash(tuple, entry_handle(i));
        Some(e)
    }

    /// Takes entry `i` out of the SYN queue, leaving its demux entry to the caller.
    fn take_entry(&mut self, i: u32) -> Option<(Tuple, Entry)> {
        let (tuple, e) = self.syn_queue.remove(i)?;
        if let Some(l) = self.listener_slot(e.listener) {
            l.syn_queue_len = l.syn_queue_len.saturating_sub(1);
        }
        self.counters.syn_queue_len = self.syn_queue.len() as u64;
        Some((tuple, e))
    }

    fn drop_entry(
        &mut self,
        now: Instant,
        i: u32,
        local: SocketAddr,
        remote: SocketAddr,
        to: State,
        reason: &'static str,
    ) {
        if self.remove_entry(i).is_some() {
            self.trace_state(now, local, remote, State::SynReceived, to, reason);
        }
    }

    /// The TCP settings of a listener's connections (its socket options), or the stack's.
    fn listener_tcp(&mut self, lh: SocketHandle) -> Arc<Config> {
        let default = self.cfg.tcp.clone();
        self.listener_slot(lh).map_or(default, |l| l.tcp.clone())
    }

    /// The MSS our SYN-ACK announces to `peer`: the link's for its family, lowered by
    /// TCP_MAXSEG.
    pub(super) fn announced_mss(&self, cfg: &Config, peer: IpAddr) -> u16 {
        let mss = self.mss_for(peer);
        cfg.mss_clamp.map_or(mss, |c| c.min(mss))
    }

    fn accept_queue_full(&mut self, lh: SocketHandle) -> bool {
        self.listener_slot(lh)
            .is_none_or(|l| l.accept_queue.len() >= l.backlog)
    }

    /// Half-open connections in the SYN queues of every listener now.
    pub fn syn_queue_len(&self) -> usize {
        self.syn_queue.len()
    }

    /// The most half-open connections held at once since the stack started.
    pub fn syn_queue_peak(&self) -> usize {
        self.syn_queue.peak()
    }

    /// Bytes the SYN queue holds now (its slab and timing wheel at their capacity; the
    /// entries' 4-tuples in the demux table count with the connections').
    pub fn syn_queue_memory(&self) -> usize {
        self.syn_queue.memory_bytes()
    }
}

/// The demux handle of SYN-queue entry `i`.
fn entry_handle(i: u32) -> SocketHandle {
    SocketHandle {
        index: i | SQ_BIT,
        generation: 0,
    }
}

/// Size of one SYN-queue entry (the record, without the table's key and slack).
pub const SYN_QUEUE_ENTRY_SIZE: usize = core::mem::size_of::<Entry>();
