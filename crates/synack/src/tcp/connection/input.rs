//! SEGMENT ARRIVES: RFC 9293 §3.10.7, in the RFC's order, with RFC 5961 (blind attacks),
//! RFC 7323 (PAWS, timestamps), RFC 5681/6582 (duplicate ACKs, NewReno) folded in where they
//! apply.

use crate::tcp::congestion::CongestionControl;
use core::net::SocketAddr;

use super::options::Timestamps;
use super::receiver::OutOfOrder;
use super::recovery::AckSummary;
use super::time_wait::{self, PAWS_IDLE, PAWS_WINDOW, Verdict};
use super::timers::{Timer, Timers};
use super::{Connection, Error, PendingRst, State};
use crate::tcp::counters::Counters;
use crate::tcp::ecn::{self, Codepoint};
use crate::tcp::handshake::Offer;
use crate::tcp::rate::RateSample;
use crate::tcp::rwnd::RecvWindow;
use crate::tcp::sack::SACK_BLOCKS_EXPECTED;
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant, MaybeInstant};
use crate::wire::tcp::Repr;

impl Connection {
    /// [`handle_segment`](Self::handle_segment) for a segment whose IP header carried the ECN
    /// codepoint `cp` (RFC 3168 §5). Once ECN is negotiated, a segment with CWR ends our echo
    /// (Linux: a pure ACK too) and data marked CE starts it (§6.1.3); data of either kind is
    /// acknowledged at once, as Linux's `tcp_ecn_accept_cwr` and `__tcp_ecn_check_ce` do, in
    /// that order. Inlined into the demultiplexer, its one caller.
    #[inline(always)]
    pub fn handle_segment_ecn(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        cp: Codepoint,
        ctr: &mut Counters,
    ) {
        self.handle_segment(now, seg, ctr);
        if !self.ecn.ok() || !self.state.is_synchronized() {
            return;
        }
        let data = !seg.payload.is_empty();
        if seg.flags.contains(crate::wire::tcp::Flags::CWR) && self.ecn.on_cwr() && data {
            self.rcv.ack_now = true;
        }
        if data && self.ecn.on_data(cp) {
            self.rcv.ack_now = true;
        }
    }

    /// Processes one incoming segment that the stack has matched to this connection. For a
    /// connection in LISTEN, use [`accept_syn`](Self::accept_syn) for SYNs.
    pub fn handle_segment(&mut self, now: Instant, seg: &Repr<'_>, ctr: &mut Counters) {
        ctr.in_segs += 1;
        // TCP_INFO's counts of what arrived, whatever becomes of it (Linux `tcp_segs_in`).
        self.rcv.segs_in = self.rcv.segs_in.wrapping_add(1);
        if !seg.payload.is_empty() && !matches!(self.state, State::Closed | State::Listen) {
            let d = self.rcv.reception(self.cfg.delayed_ack);
            d.data_segs_in = d.data_segs_in.wrapping_add(1);
        }
        if self.predicted(seg) {
            self.established_fast(now, seg, ctr);
            return;
        }
        match self.state {
            // §3.10.7.1: a segment for a CLOSED connection gets a RST (unless it is one).
            State::Closed => {
                if let Some((seq, ack)) = super::reset_for_closed(seg) {
                    self.pending_rst = Some(PendingRst {
                        seq,
                        ack,
                        active: false,
                    });
                }
            }
            State::Listen => self.listen_non_syn(seg),
            State::SynSent => self.syn_sent(now, seg, ctr),
            State::TimeWait => self.time_wait(now, seg, ctr),
            _ => self.synchronized(now, seg, ctr),
        }
    }

    /// §3.10.7.2 for everything but a SYN: "any RST should be ignored"; "any acknowledgment is
    /// bad ... form a reset: <SEQ=SEG.ACK><CTL=RST>"; anything else is dropped.
    fn listen_non_syn(&mut self, seg: &Repr<'_>) {
        if seg.flags.rst() {
            return;
        }
        if seg.flags.ack() {
            self.pending_rst = Some(PendingRst {
                seq: seg.ack,
                ack: None,
                active: false,
            });
            self.push_event(super::Event::ResetSent {
                reason: "ACK in LISTEN",
            });
        } else {
            self.push_event(super::Event::Dropped {
                reason: "LISTEN expects a SYN",
            });
        }
    }

    /// §3.10.7.2, a SYN arriving in LISTEN: record the peer, select `iss`, and enter
    /// SYN-RECEIVED; the SYN-ACK `<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>` goes out on the next
    /// poll_transmit. Returns `false` (and changes nothing) if `seg` is not a plain SYN.
    pub fn accept_syn(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        seg: &Repr<'_>,
        iss: SeqNum,
        ctr: &mut Counters,
    ) -> bool {
        if !self.take_syn(now, remote, seg, iss) {
            return false;
        }
        ctr.in_segs += 1;
        ctr.passive_opens += 1;
        true
    }

    /// [`accept_syn`](Self::accept_syn) without counting the SYN: for a handshake the stack
    /// already counted (the tests' `replay_handshake`), with no throwaway set of counters to zero.
    pub(super) fn take_syn(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        seg: &Repr<'_>,
        iss: SeqNum,
    ) -> bool {
        if self.state != State::Listen || !seg.flags.syn() || seg.flags.ack() || seg.flags.rst() {
            return false;
        }
        self.rcv.segs_in = 1;
        self.set_remote(remote);
        self.init_send(iss);
        self.rcv.irs = seg.seq;
        self.rcv.nxt = seg.seq + 1u32;
        self.rcv.last_ack_sent = self.rcv.nxt;
        self.rcv.last_recv = now;
        self.opts.peer_syn = Some(syn_offer(seg));
        self.negotiate(now, seg);
        // RFC 3168 §6.1.1: an ECN-setup SYN, and ECN enabled here.
        self.ecn
            .set_ok(ecn::syn_asks(seg.flags) && self.cfg.ecn.accepts());
        // The SYN's window is never scaled (RFC 7323 §2.2).
        self.snd.wnd = seg.window as u32;
        self.snd.max_wnd = self.snd.wnd;
        self.sync_mss();
        self.snd.wl1 = seg.seq;
        self.snd.wl2 = iss;
        self.set_state(State::SynReceived, "SYN received");
        true
    }

    /// Applies the options of the peer's SYN or SYN-ACK (RFC 7323 §1.3, §2.2, §3.2; RFC 2018
    /// §2; RFC 9293 §3.7.1 for the MSS: when absent, 536 over IPv4 and 1220 over IPv6).
    fn negotiate(&mut self, now: Instant, seg: &Repr<'_>) {
        let o = &seg.options;
        self.negotiate_offer(
            now,
            o.mss,
            o.window_scale,
            o.sack_permitted,
            o.timestamps.map(|t| t.tsval),
        );
    }

    /// [`negotiate`](Self::negotiate) from the offer's values: the peer's MSS option, window
    /// shift, SACK-permitted and TSval (a passive open builds from a SYN-queue entry's copy
    /// of them, `Handshake`, without a segment).
    #[inline(always)]
    pub(super) fn negotiate_offer(
        &mut self,
        now: Instant,
        mss: Option<u16>,
        window_scale: Option<u8>,
        sack_permitted: bool,
        tsval: Option<u32>,
    ) {
        let ours_offered_ws = self.cfg.window_scaling;
        match window_scale {
            // RFC 7323 §2.3: a shift above 14 is used as 14.
            Some(ws) if ours_offered_ws => self.snd.shift = ws.min(14),
            _ => {
                self.snd.shift = 0;
                self.rcv.shift = 0;
            }
        }
        self.opts.set_ts(match tsval {
            Some(recent) if self.cfg.timestamps => Some(Timestamps {
                recent,
                recent_at: now,
            }),
            _ => None,
        });
        self.opts.sack = self.cfg.sack && sack_permitted;
        // The send MSS follows from this and the SYN's window: the caller records the window,
        // then calls `sync_mss`.
        self.opts.peer_mss = mss.unwrap_or(self.cfg.default_mss_for(self.remote_ip));
    }

    /// §3.10.7.3: SYN-SENT.
    fn syn_sent(&mut self, now: Instant, seg: &Repr<'_>, ctr: &mut Counters) {
        let f = seg.flags;
        // First: check the ACK bit.
        if f.ack() && (seg.ack <= self.snd.iss || seg.ack > self.snd.max) {
            // "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST bit is
            // set, if so drop the segment and return) <SEQ=SEG.ACK><CTL=RST>".
            // This is Figure 8's case: a SYN-ACK answering an old duplicate SYN.
            if !f.rst() {
                self.pending_rst = Some(PendingRst {
                    seq: seg.ack,
                    ack: None,
                    active: false,
                });
                self.push_event(super::Event::ResetSent {
                    reason: "the ACK acknowledges a SYN we did not send",
                });
            }
            // Linux (`tcp_rcv_synsent_state_process`, "Previous FIN/ACK or RST/ACK might be
            // ignored"): the first time, before any SYN retransmission, the SYN goes again
            // after the shortest timer, TCP_TIMEOUT_MIN (two ticks), in case the peer's
            // answer to our SYN was lost behind this one.
            if self.snd.retries == 0 {
                self.timers.arm(Timer::Retransmit, now + self.cfg.tick * 2);
            }
            return;
        }
        // A SYN-ACK whose timestamp echo is no value we sent (before the first SYN or in the
        // future) answers some other SYN: reset, as Linux's tcp_rcv_synsent_state_process
        // does (PAWSActiveRejected; RFC 7323 §5.2 leaves SYN-SENT out of PAWS).
        if f.ack()
            && !f.rst()
            && self.cfg.timestamps
            && let Some(ts) = seg.options.timestamps
            && ts.tsecr != 0
        {
            let since = self.snd.rtx_since.get().unwrap_or(now);
            let lo = self.ts_now(since);
            if ts.tsecr.wrapping_sub(lo) > self.ts_now(now).wrapping_sub(lo) {
                ctr.paws_active_rejected += 1;
                self.pending_rst = Some(PendingRst {
                    seq: seg.ack,
                    ack: None,
                    active: false,
                });
                self.push_event(super::Event::ResetSent {
                    reason: "the SYN-ACK echoes a timestamp we did not send",
                });
                return;
            }
        }
        // Second: check the RST bit. Acceptable only with an acceptable ACK.
        if f.rst() {
            if f.ack() {
                ctr.attempt_fails += 1;
                self.reset_by_peer(Error::Refused, "RST, refused");
            } else {
                self.push_event(super::Event::Dropped {
                    reason: "RST without ACK in SYN-SENT",
                });
            }
            return;
        }
        // Fourth: check the SYN bit.
        if !f.syn() {
            self.push_event(super::Event::Dropped {
                reason: "neither SYN nor RST in SYN-SENT",
            });
            return;
        }
        let offered = self.rcv.offered();
        self.rcv.irs = seg.seq;
        self.rcv.nxt = seg.seq + 1u32;
        self.rcv.last_ack_sent = self.rcv.nxt;
        self.rcv.last_recv = now;
        self.negotiate(now, seg);
        // Our SYN advertised its window before RCV.NXT was known: anchor the right edge now,
        // where the initial window ends (see `open_receive_window` for the bound).
        self.rcv.adv = self.rcv.nxt + offered.min((u16::MAX as u32) << self.rcv.shift);
        self.snd.wnd = seg.window as u32; // unscaled on a SYN (RFC 7323 §2.2)
        self.snd.max_wnd = self.snd.wnd;
        self.sync_mss();
        self.snd.wl1 = seg.seq;
        self.snd.wl2 = seg.ack;
        if f.ack() {
            // "If SND.UNA > ISS (our SYN has been ACKed), change the connection state to
            // ESTABLISHED, form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it."
            // The SYN was timed unless it was sent again (Karn); with timestamps the TSecr
            // names the SYN that got through (RFC 7323 §4.1).
            self.take_rtt_sample(now, seg);
            // RFC 3168 §6.1.1: we asked, and the SYN-ACK says yes (ECE without CWR).
            self.ecn
                .set_ok(self.cfg.ecn.asks() && ecn::synack_accepts(f));
            self.snd.una = seg.ack;
            self.snd.syn_acked = true;
            let fast_open = self.fast_open_active.is_some();
            let writer = self.fast_open_synack(now, seg, ctr);
            self.snd.retries = 0;
            self.timers.stop(Timer::Retransmit);
            // Linux saves the ACK when the application waits to write: the data carries it.
            self.rcv.ack_now = !writer;
            // The acknowledged SYN counts as delivered, as Linux's does (it sits in the
            // retransmission queue, `tcp_clean_rtx_queue`): `tcpi_delivered` is 1 now.
            self.snd.delivered = self.snd.delivered.wrapping_add(1);
            self.set_state(State::Established, "SYN-ACK received");
            self.on_handshake_done();
            self.start_congestion_control(now);
            self.arm_keepalive(now);
            if fast_open && (!seg.payload.is_empty() || f.fin()) {
                self.fast_open_synack_text(now, seg, writer, ctr);
            }
        } else {
            // Simultaneous open (Figure 7): "enter SYN-RECEIVED, form a SYN,ACK segment
            // <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it."
            self.opts.peer_syn = Some(syn_offer(seg));
            // Both SYNs asked for ECN (Linux `tcp_ecn_rcv_syn`).
            self.ecn.set_ok(self.cfg.ecn.asks() && ecn::syn_asks(f));
            self.snd.nxt = self.snd.iss;
            self.snd.simopen_synack = true;
            self.timers.stop(Timer::Retransmit);
            self.set_state(State::SynReceived, "simultaneous open");
        }
    }

    /// An acceptable RST (§3.10.7.4 second step) in SYN-RECEIVED or a synchronized state
    /// other than TIME-WAIT.
    fn reset_received(&mut self, ctr: &mut Counters) {
        match self.state {
            State::SynReceived if self.passive && !self.fast_open_pending() => {
                // "return this connection to LISTEN state"; the stack drops the child.
                ctr.attempt_fails += 1;
                self.snd.buf.clear();
                self.clear_timers();
                self.set_state(State::Listen, "RST in SYN-RECEIVED");
            }
            State::SynReceived => {
                // A Fast Open child is the application's already (RFC 7413 §4.2.2): reset,
                // as Linux's tcp_reset() does to it.
                // RFC 9293 says "connection refused" for an active open; Linux's
                // tcp_reset() reports that only in SYN-SENT: ECONNRESET here.
                ctr.attempt_fails += 1;
                self.reset_by_peer(Error::Reset, "RST in SYN-RECEIVED");
            }
            State::Established => {
                ctr.estab_resets += 1;
                self.reset_by_peer(Error::Reset, "RST, reset by peer");
            }
            State::CloseWait => {
                // The peer had closed its side already: Linux's tcp_reset() reports EPIPE.
                ctr.estab_resets += 1;
                self.reset_by_peer(Error::BrokenPipe, "RST in CLOSE-WAIT");
            }
            State::FinWait1 | State::FinWait2 => {
                self.reset_by_peer(Error::Reset, "RST, reset by peer")
            }
            _ => {
                // CLOSING, LAST-ACK: "enter the CLOSED state, delete the TCB".
                self.set_state(State::Closed, "RST");
                self.clear_timers();
            }
        }
    }

    /// The right edge of the highest out-of-order block we hold (and report with SACK).
    fn highest_sack_end(&self) -> Option<SeqNum> {
        let ooo = self.rcv.ooo.as_ref().filter(|_| self.opts.sack)?;
        let end = ooo.assembler.iter().map(|(_, e)| e).max()?;
        Some(self.rcv.nxt + end)
    }

    /// §3.10.7.4 for TIME-WAIT, as Linux's `tcp_timewait_state_process` does it: a segment
    /// at RCV.NXT without text is the only one taken; a pure ACK (or window update) restarts
    /// the 2 MSL timer silently, a RST ends TIME-WAIT (RFC 1337's hazard, unless
    /// `Config::rfc1337`). Every other segment — a retransmitted FIN, data, an old SYN — is
    /// acknowledged (rate-limited like every answer to an invalid segment), restarting the
    /// timer if it carries an ACK or failed PAWS; any other RST is dropped. (A SYN for a new
    /// incarnation never gets here: `time_wait_accepts_syn`.)
    fn time_wait(&mut self, now: Instant, seg: &Repr<'_>, ctr: &mut Counters) {
        let (verdict, paws_reject) = time_wait::verdict(self.rcv.nxt, self.opts.ts(), seg, now);
        match verdict {
            Verdict::Reset => {
                if !self.cfg.rfc1337 {
                    self.set_state(State::Closed, "RST in TIME-WAIT");
                    self.clear_timers();
                }
                return;
            }
            Verdict::Restart => {
                self.timers.arm(Timer::Close, now + self.cfg.time_wait);
                if let Some(seg_ts) = seg.options.timestamps.filter(|_| self.opts.ts().is_some()) {
                    self.opts.set_ts(Some(Timestamps {
                        recent: seg_ts.tsval,
                        recent_at: now,
                    }));
                }
                return;
            }
            Verdict::DropRst | Verdict::Ack { .. } => {}
        }
        if paws_reject {
            ctr.paws_timewait += 1;
        }
        let Verdict::Ack { restart, limited } = verdict else {
            self.push_event(super::Event::Dropped {
                reason: "RST not at RCV.NXT in TIME-WAIT",
            });
            return;
        };
        if restart {
            self.timers.arm(Timer::Close, now + self.cfg.time_wait);
        }
        ctr.out_of_window += 1;
        if !limited || !self.oow_rate_limited(now) {
            self.rcv.ack_now = true;
        } else {
            ctr.ack_skipped_time_wait += 1;
        }
        self.push_event(super::Event::Dropped {
            reason: "TIME-WAIT: segment acknowledged",
        });
    }

    /// §3.10.7.4: SYN-RECEIVED and every synchronized state.
    #[inline(never)]
    fn synchronized(&mut self, now: Instant, seg: &Repr<'_>, ctr: &mut Counters) {
        let f = seg.flags;

        // A retransmitted SYN in SYN-RECEIVED (same ISN): our SYN-ACK was lost; send it again
        // rather than treating the SYN as an attack.
        if self.state == State::SynReceived
            && f.syn()
            && !f.ack()
            && !f.rst()
            && seg.seq == self.rcv.irs
        {
            self.snd.nxt = self.snd.iss;
            self.push_event(super::Event::Dropped {
                reason: "duplicate SYN, SYN-ACK sent again",
            });
            return;
        }

        // Simultaneous open (Figure 7): the peer's SYN-ACK reaches us in SYN-RECEIVED. Its SYN
        // lies just left of RCV.NXT, so the plain window test would refuse it; like Linux, accept
        // it when it acknowledges our SYN exactly, and process it as the ACK it also is.
        if self.state == State::SynReceived
            && f.syn()
            && f.ack()
            && !f.rst()
            && seg.seq + 1u32 == self.rcv.nxt
            && seg.ack == self.snd.max
        {
            let mut rest = *seg;
            rest.flags = f & !crate::wire::tcp::Flags::SYN;
            rest.seq = self.rcv.nxt;
            self.synchronized(now, &rest, ctr);
            // Its SYN is one we already have: reported as a duplicate (RFC 2883), with an
            // ACK at once, as Linux's tcp_data_queue does for a segment that ends at RCV.NXT.
            if self.state.is_synchronized() {
                self.note_duplicate(seg.seq, seg.seq + 1u32);
                self.rcv.ack_now = true;
            }
            return;
        }

        // RFC 7323 §5.3 R1: PAWS, with Linux's two allowances (`tcp_paws_discard`): a
        // timestamp one tick older than TS.Recent still passes (a segment reordered by less
        // than a millisecond), and so does a reordered duplicate ACK that changes nothing.
        if let (Some(ts), Some(seg_ts)) = (self.opts.ts(), seg.options.timestamps) {
            let behind = ts.recent.wrapping_sub(seg_ts.tsval) as i32;
            if behind > PAWS_WINDOW
                && !f.rst()
                && now - ts.recent_at < PAWS_IDLE
                && !self.disordered_ack(seg, behind)
            {
                ctr.paws_estab += 1;
                self.push_event(super::Event::Dropped {
                    reason: "PAWS: old timestamp",
                });
                // Data we already have is a duplicate however old its timestamp: report it
                // with a D-SACK (RFC 2883 §4; Linux `tcp_send_dupack`), so that the sender
                // can tell a spurious retransmission from a loss.
                if !seg.payload.is_empty() && seg.seq < self.rcv.nxt {
                    let end = (seg.seq + seg.payload.len()).min(self.rcv.nxt);
                    self.note_duplicate(seg.seq, end);
                }
                self.rcv.ack_now = true;
                return;
            }
        }

        // First: sequence number acceptability (the four cases of §3.10.7.4).
        let seg_len = seg.segment_len() as u32;
        let rcv_wnd = self.rcv.window();
        let wnd_end = self.rcv.nxt + rcv_wnd;
        let acceptable = match (seg_len, rcv_wnd) {
            (0, 0) => seg.seq == self.rcv.nxt,
            (0, _) => seg.seq.in_range(self.rcv.nxt, wnd_end),
            (_, 0) => false,
            (_, _) => {
                seg.seq.in_range(self.rcv.nxt, wnd_end)
                    || (seg.seq + (seg_len - 1)).in_range(self.rcv.nxt, wnd_end)
            }
        };
        // "If the RCV.WND is zero, no segments will be acceptable, but special allowance should
        // be made to accept valid ACKs, URGs, and RSTs."
        let zero_window_ack = !acceptable && rcv_wnd == 0 && seg.seq == self.rcv.nxt;
        if !acceptable && !zero_window_ack {
            if f.rst() {
                // Linux `tcp_reset_check`: once the peer's FIN is in (CLOSE-WAIT, CLOSING,
                // LAST-ACK), a RST at RCV.NXT - 1 (the FIN's own number, what a peer that
                // never saw our ACK of it would use) is taken as exact.
                let after_fin = matches!(
                    self.state,
                    State::CloseWait | State::Closing | State::LastAck
                );
                if after_fin && seg.seq + 1u32 == self.rcv.nxt {
                    self.reset_received(ctr);
                    return;
                }
                // RFC 5961 §3.2: a RST outside the window is dropped silently.
                self.push_event(super::Event::Dropped {
                    reason: "RST out of window",
                });
            } else if f.syn() {
                // RFC 5961 §4.2: "irrespective of the sequence number".
                ctr.syn_challenges += 1;
                self.challenge_ack(now, ctr, true);
            } else {
                ctr.out_of_window += 1;
                let old = !seg.payload.is_empty() && seg.seq + seg_len <= self.rcv.nxt;
                self.push_event(super::Event::Dropped {
                    // Data wholly below RCV.NXT is a retransmission of what arrived already
                    // (a spurious one, or its ACK was lost): say so rather than "out of window".
                    reason: if old {
                        "duplicate data (received already), ACK sent"
                    } else {
                        "out of window, ACK sent"
                    },
                });
                if seg_len > 0 && seg.seq < self.rcv.nxt {
                    // Data or a FIN we already had (RFC 2883 §4; Linux `tcp_send_dupack`
                    // reports a retransmitted FIN too).
                    let end = (seg.seq + seg_len).min(self.rcv.nxt);
                    self.note_duplicate(seg.seq, end);
                }
                // Segments without data may be an ACK loop with a confused peer: throttled.
                if seg_len > 0 || !self.oow_rate_limited(now) {
                    self.rcv.ack_now = true;
                }
                // §3.10.7.4 TIME-WAIT: a retransmitted FIN is acknowledged and restarts 2 MSL.
                if self.state == State::TimeWait && f.fin() {
                    self.timers.arm(Timer::Close, now + self.cfg.time_wait);
                }
            }
            return;
        }

        // Second: the RST bit (RFC 5961 §3.2 on top of §3.10.7.4). Linux also takes a RST at
        // the right edge of the highest SACK block we reported (`tcp_validate_incoming`):
        // a peer that missed the hole may reset from there.
        if f.rst() {
            if seg.seq != self.rcv.nxt && Some(seg.seq) != self.highest_sack_end() {
                self.challenge_ack(now, ctr, false);
                return;
            }
            self.reset_received(ctr);
            return;
        }

        // Fourth: check the SYN bit. "SYN-RECEIVED STATE: If the connection was initiated
        // with a passive OPEN, then return this connection to the LISTEN state and return."
        // (Linux drops the half-open request too, and also answers with a RST.)
        if f.syn() && self.state == State::SynReceived && self.passive {
            ctr.attempt_fails += 1;
            self.snd.buf.clear();
            self.clear_timers();
            self.set_state(State::Listen, "SYN in SYN-RECEIVED");
            return;
        }
        // In the synchronized states a SYN gets a challenge ACK (RFC 5961 §4.2).
        if f.syn() {
            ctr.syn_challenges += 1;
            self.challenge_ack(now, ctr, true);
            return;
        }

        // Fifth: the ACK field. Without ACK the segment is dropped.
        if !f.ack() {
            ctr.dropped += 1;
            self.push_event(super::Event::Dropped {
                reason: "no ACK bit",
            });
            return;
        }

        self.note_acceptable(now, seg);

        let handshake = self.state == State::SynReceived;
        if handshake {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state and continue
            // processing ... If the segment acknowledgment is not acceptable, form a reset
            // segment <SEQ=SEG.ACK><CTL=RST> and send it."
            if !seg.ack.in_range_right_closed(self.snd.una, self.snd.max) {
                self.pending_rst = Some(PendingRst {
                    seq: seg.ack,
                    ack: None,
                    active: false,
                });
                self.push_event(super::Event::ResetSent {
                    reason: "unacceptable ACK in SYN-RECEIVED",
                });
                return;
            }
            self.snd.wnd = (seg.window as u32) << self.snd.shift;
            self.raise_max_window(self.snd.wnd);
            self.snd.wl1 = seg.seq;
            self.snd.wl2 = seg.ack;
            let to = if self.snd.fin_queued {
                State::FinWait1
            } else {
                State::Established
            };
            // Linux `tcp_rcv_state_process`, TCP_SYN_RECV: "SYN-ACK delivery isn't tracked
            // in tcp_ack", so it is counted here: `tcpi_delivered` is 1 after the handshake.
            self.snd.delivered = self.snd.delivered.wrapping_add(1);
            self.set_state(to, "ACK of SYN-ACK");
            self.arm_keepalive(now);
        }
        let go_on = if handshake && self.acks_just_the_syn(seg) {
            self.ack_of_syn(now, seg);
            true
        } else {
            self.process_ack(now, seg, ctr)
        };
        if handshake && self.state.is_synchronized() {
            self.on_handshake_done();
        }
        if !go_on {
            return;
        }
        if self.state == State::Closed {
            return; // LAST-ACK completed
        }

        // Sixth: the URG bit (RFC 9293 §3.8.5, RFC 6093 §2: the pointer is one past the last
        // urgent byte).
        if f.urg()
            && matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
        {
            let up = seg.seq + seg.urgent as u32;
            if self.rcv.up.is_none_or(|cur| up > cur) {
                self.rcv.up = Some(up);
            }
        }

        // Seventh: the segment text; eighth: the FIN bit.
        if zero_window_ack {
            if !seg.payload.is_empty() || f.fin() {
                self.push_event(super::Event::Dropped {
                    reason: "zero window: data dropped, ACK processed",
                });
                self.rcv.ack_now = true;
            }
            return;
        }
        self.process_text_and_fin(now, seg, ctr);
    }

    /// Header prediction (Linux `tcp_rcv_established`'s fast path; RFC 7323 §5 with
    /// timestamps): the segment the next step of an ESTABLISHED connection expects. Flags ACK
    /// or ACK|PSH only, SEG.SEQ = RCV.NXT, a timestamp (when they are on) no older than
    /// TS.Recent, text (if any) inside the receive window, no FIN of the peer's held, and an
    /// ACK in (SND.UNA, SND.MAX], or = SND.UNA with text. For such a segment every test of
    /// the general path up to step five passes, the ACK is neither a duplicate (it advances
    /// SND.UNA or carries text) nor one that changes state, and the text goes in order
    /// without trimming: [`established_fast`](Self::established_fast) does only what is left.
    /// Unlike Linux's, the send window may have changed: an ACK of new data without loss or
    /// SACK goes through `ack_in_order` (window update included), as `acknowledge` would
    /// take it, and any other through the general path's `acknowledge`.
    #[inline]
    fn predicted(&self, seg: &Repr<'_>) -> bool {
        use crate::wire::tcp::Flags;
        let len = seg.payload.len() as u32;
        self.state == State::Established
            && seg.flags.0 & !Flags::PSH.0 == Flags::ACK.0
            && seg.seq == self.rcv.nxt
            && (seg.ack > self.snd.una || (seg.ack == self.snd.una && len > 0))
            && seg.ack <= self.snd.max
            && len <= self.rcv.window()
            && self.rcv.fin.is_none()
            && match (self.opts.ts(), seg.options.timestamps) {
                (Some(ts), Some(t)) => (t.tsval.wrapping_sub(ts.recent) as i32) >= 0,
                (Some(_), None) => false,
                (None, _) => true,
            }
            && header_prediction_on()
    }

    /// What a [`predicted`](Self::predicted) segment needs: the general path's steps that
    /// find something to do for it, in the same order.
    fn established_fast(&mut self, now: Instant, seg: &Repr<'_>, ctr: &mut Counters) {
        #[cfg(test)]
        PREDICTED.with(|c| {
            let [p, a, beyond] = c.get();
            c.set([p + 1, a, beyond])
        });
        self.note_acceptable(now, seg);
        if self.snd.more
            && (seg.ack > self.snd.una
                || (u32::from(seg.window) << self.snd.shift) != self.snd.wnd
                || self.rcv.has_holes())
        {
            // Linux pushes pending data (`tcp_data_snd_check`, with the socket's own Nagle
            // setting: MSG_MORE held the data for its send only, see `Sender::more`) after
            // an ACK that moved SND.UNA, and after any segment its fast path leaves to the
            // slow path: a window that changed, or data held out of order (`pred_flags`
            // cleared). Its fast path takes a data segment that acknowledges nothing new
            // without that push.
            self.snd.more = false;
        }
        if seg.ack > self.snd.una && self.acks_in_order(seg) {
            self.ack_in_order(now, seg);
        } else {
            let window = (seg.window as u32) << self.snd.shift;
            self.acknowledge(now, seg, window, false, ctr);
        }
        if !seg.payload.is_empty() {
            self.queue_text(now, seg.seq, seg.payload, seg.flags.fin(), ctr);
        }
    }

    /// Whether an ACK of new data (SEG.ACK > SND.UNA, checked by the caller) can matter to
    /// the sender only through its cumulative ACK, so that [`ack_in_order`](Self::ack_in_order)
    /// does all of steps 1 to 4 for it: no recovery state (nothing was SACKed, marked lost or
    /// sent again), no SACK blocks, no ECN echo, the SYN acknowledged, a window-based
    /// controller. Whatever the segment's state and other flags (a FIN, a segment header
    /// prediction did not take): the steps after the ACK's own read none of what it skips.
    #[inline]
    fn acks_in_order(&self, seg: &Repr<'_>) -> bool {
        self.recovery.is_none()
            && seg.options.sack.is_empty()
            && self.snd.syn_acked
            && !self.ecn.is_echo(seg.flags)
            && !self.cc.is_model_based()
            && header_prediction_on()
    }

    /// Step five for an ACK of new data that [`acks_in_order`](Self::acks_in_order) admits,
    /// up to the state changes it causes. What `scoreboard_on_ack`, `rtt_sample`,
    /// `on_new_ack` and `recovery_after_ack` do for it, without the summary of everything an
    /// ACK can tell (Linux `tcp_ack` without `tcp_fastretrans_alert`); then the window update,
    /// which an ACK advancing SND.UNA always makes (RFC 9293 §3.10.7.4), and the persist
    /// timer, as `acknowledge` does. Inlined into both callers (`established_fast` and
    /// `acknowledge`): out of line, its call and frame cost a segment of a ping-pong about 13
    /// instructions more.
    #[inline(always)]
    fn ack_in_order(&mut self, now: Instant, seg: &Repr<'_>) {
        #[cfg(test)]
        PREDICTED.with(|c| {
            let [p, a, beyond] = c.get();
            // An ACK header prediction cannot take (another state, or a FIN).
            let beyond = beyond + u64::from(self.state != State::Established || seg.flags.fin());
            c.set([p, a + 1, beyond])
        });
        let prior = self.snd.sb.pipe();
        let mut rs = RateSample {
            prior_in_flight: prior.segs,
            ..RateSample::default()
        };
        let empty = self.snd.sb.first().is_none();
        let (mut first, mut last, mut retrans_acked) = (None, None, false);
        let mut rate = self.snd.tx.as_deref_mut().map(|t| &mut t.rate);
        let d = self.snd.sb.on_cum_ack(seg.ack, |s| {
            let retrans = s.has(crate::tcp::scoreboard::EVER_RETRANS);
            if let Some(rate) = rate.as_deref_mut() {
                rate.on_delivered(s.xmit, s.end, &s.tx, retrans, &mut rs);
            }
            if retrans {
                retrans_acked = true;
            } else {
                first.get_or_insert(s.xmit);
                last = Some(s.xmit);
            }
        });
        self.snd.delivered = self.snd.delivered.wrapping_add(d.segs);
        let whole = empty || d.whole;
        // The samples in the clock's microseconds (see `rtt_sample_micros`).
        let since = |t: Instant| now.micros_since(t);
        let samples = match retrans_acked {
            false => (first.map(since), last.map(since)),
            true => (None, None),
        };
        let sample = self.rtt_sample_micros(now, seg, samples, whole);
        self.on_new_ack(now, seg, whole);
        let (delivered, min_rtt) = (self.snd.delivered, self.rtt.min_rtt_nanos());
        if let Some(tx) = self.snd.tx.as_deref_mut() {
            tx.rate
                .generate(now, delivered, d.segs, 0, min_rtt, &mut rs);
        }
        if d.segs > 0 {
            self.grow_cwnd(now, d, prior.bytes, sample);
        }
        let window = (seg.window as u32) << self.snd.shift;
        self.snd.wnd = window;
        self.raise_max_window(window);
        self.snd.wl1 = seg.seq;
        self.snd.wl2 = seg.ack;
        self.update_persist(now);
    }

    /// Whether the ACK completing a handshake in SYN-RECEIVED (a passive open's, or a
    /// simultaneous open's; SND.UNA < SEG.ACK =< SND.MAX, checked by the caller)
    /// acknowledges our SYN and nothing else there is, and brings the sender nothing else
    /// either, so that [`ack_of_syn`](Self::ack_of_syn) does all `process_ack` would:
    /// SEG.ACK = SND.MAX = ISS + 1, no transmit state (no data sent: a Fast Open child may
    /// have sent some with its SYN-ACK; nor data or a FIN queued, which would leave
    /// `update_persist` something to do), no SACK blocks, no ECN echo, no recovery state (a
    /// SYN-ACK sent again leaves some) and a window-based controller. Nothing on the
    /// scoreboard and no FIN sent follow from SND.MAX = ISS + 1 (nothing but the SYN was
    /// sent); they are checked all the same, as the general steps' premises.
    #[inline]
    fn acks_just_the_syn(&self, seg: &Repr<'_>) -> bool {
        !self.snd.syn_acked
            && seg.ack == self.snd.max
            && self.snd.max == self.snd.iss + 1u32
            && self.snd.tx.is_none()
            && self.snd.sb.first().is_none()
            && self.snd.fin_seq.is_none()
            && self.recovery.is_none()
            && seg.options.sack.is_empty()
            && !self.ecn.is_echo(seg.flags)
            && !self.cc.is_model_based()
            && header_prediction_on()
    }

    /// `process_ack` for an ACK that [`acks_just_the_syn`](Self::acks_just_the_syn) admits
    /// (RFC 9293 §3.10.7.4, SYN-RECEIVED; Linux `tcp_rcv_state_process` for TCP_SYN_RECV):
    /// what its general steps find to do for it, in their order. The scoreboard is empty, so
    /// `scoreboard_on_ack` delivers nothing and the acknowledgment is whole; the RTT sample is
    /// the SYN-ACK's own (`rtt_sample` itself: the timed SYN-ACK, else the timestamp
    /// echo); `on_new_ack` counts the SYN; `recovery_after_ack`
    /// has no episode, no rate sample (no transmit state) and nothing delivered to grow the
    /// window with; the window update, which an ACK advancing SND.UNA always makes, is the
    /// caller's already; then the persist timer. Nothing of FIN-WAIT's or LAST-ACK's (no FIN
    /// sent).
    /// `tests/passive_open.rs` compares it with the general steps (header prediction off)
    /// over every entry and final ACK.
    fn ack_of_syn(&mut self, now: Instant, seg: &Repr<'_>) {
        #[cfg(test)]
        SYN_ACKS_SHORT.with(|c| c.set(c.get() + 1));
        // No segment delivered (the scoreboard is empty): the SYN-ACK's own sample.
        self.rtt_sample(now, seg, (None, None), true);
        self.on_new_ack(now, seg, true);
        // The window update (SND.WND, the largest window, SND.WL1/WL2) is the one the caller
        // made on entering ESTABLISHED, from the same segment.
        self.update_persist(now);
    }

    /// An acceptable segment with ACK (the fifth step reached): the peer is alive (keepalive,
    /// RFC 1122 §4.2.3.6), and its timestamp may become TS.Recent (RFC 7323 §4.3).
    fn note_acceptable(&mut self, now: Instant, seg: &Repr<'_>) {
        self.rcv.last_recv = now;
        if let Some(liveness) = &mut self.opts.liveness {
            liveness.probes_sent = 0;
        }
        self.arm_keepalive(now);
        if let (Some(ts), Some(seg_ts)) = (self.opts.ts(), seg.options.timestamps) {
            if (seg_ts.tsval.wrapping_sub(ts.recent) as i32) >= 0
                && seg.seq <= self.rcv.last_ack_sent
            {
                self.opts.set_ts(Some(Timestamps {
                    recent: seg_ts.tsval,
                    recent_at: now,
                }));
            }
        }
    }

    /// Step five for the synchronized states. Returns false if processing stops here.
    fn process_ack(&mut self, now: Instant, seg: &Repr<'_>, ctr: &mut Counters) -> bool {
        let ack = seg.ack;
        // RFC 5961 §5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT].
        if ack > self.snd.max {
            // "If the ACK acks something not yet sent (SEG.ACK > SND.NXT), then send an ACK,
            // drop the segment, and return."
            ctr.ack_too_new += 1;
            self.push_event(super::Event::Dropped {
                reason: "ACK for data not yet sent",
            });
            self.challenge_ack(now, ctr, false);
            return false;
        }
        if ack < self.snd.una - self.snd.max_wnd.max(1) {
            ctr.dropped += 1;
            self.push_event(super::Event::Dropped {
                reason: "ACK too old (RFC 5961 §5.2)",
            });
            self.challenge_ack(now, ctr, false);
            return false;
        }

        // Linux's slow path pushes pending data after every acceptable ACK
        // (`tcp_data_snd_check`), with the socket's own Nagle setting: MSG_MORE held the data
        // for its send only (see `Sender::more`).
        self.snd.more = false;
        let window = (seg.window as u32) << self.snd.shift;
        // RFC 5681 §2's duplicate ACK.
        let dup = ack == self.snd.una
            && seg.payload.is_empty()
            && !seg.flags.fin()
            && window == self.snd.wnd
            && self.snd.una != self.snd.max;
        self.acknowledge(now, seg, window, dup, ctr);

        let fin_acked = self.snd.fin_seq.is_some_and(|f| self.snd.una == f + 1u32);
        match self.state {
            State::FinWait1 if fin_acked => {
                self.set_state(State::FinWait2, "our FIN acknowledged");
                if self.orphaned {
                    self.timers
                        .arm(Timer::Close, now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing if fin_acked => self.enter_time_wait(now, "our FIN acknowledged"),
            State::LastAck if fin_acked => {
                self.set_state(State::Closed, "our FIN acknowledged");
                self.clear_timers();
                return false;
            }
            _ => {}
        }
        true
    }

    /// Step five for an acceptable ACK (SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.MAX) up to
    /// the state changes it causes: the sender's steps (scoreboard, RTT, SND.UNA, recovery
    /// and congestion control), the send window, the persist timer. `window` is the
    /// segment's window scaled, `dup` whether it is a duplicate ACK (RFC 5681 §2).
    fn acknowledge(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        window: u32,
        dup: bool,
        ctr: &mut Counters,
    ) {
        let ack = seg.ack;
        let prior_una = self.snd.una;
        if ack == self.snd.una && self.snd.una == self.snd.max && self.ack_quietly(seg) {
            // Every data segment of a one-way transfer at its receiver (see `ack_quietly`).
        } else if ack > self.snd.una && self.acks_in_order(seg) {
            // An ACK of new data without loss, SACK or ECN echo that header prediction did
            // not take: the ACK of a FIN, or of data with one, or in another state than
            // ESTABLISHED (see `acks_in_order`). The window update is its own.
            self.ack_in_order(now, seg);
            return;
        } else if ack >= self.snd.una {
            let mut summary = AckSummary::default();
            self.scoreboard_on_ack(now, seg, dup, &mut summary, ctr);
            let sample = self.rtt_sample(now, seg, summary.rtt_samples(now), summary.acked_whole);
            if ack > self.snd.una {
                self.on_new_ack(now, seg, summary.acked_whole);
            }
            self.recovery_after_ack(now, seg, &mut summary, sample, ctr);
        }

        // RFC 9293 §3.10.7.4: "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be
        // updated. If (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK))". As
        // Linux (`tcp_may_update_window`), a segment that neither advances SND.UNA nor
        // comes after SND.WL1 may only open the window or close it to zero: with the same
        // SEG.SEQ and SEG.ACK as the last update, a smaller non-zero window (a peer
        // shrinking it, or a reordered older segment) leaves the window as it was.
        let may_update = ack > prior_una
            || seg.seq > self.snd.wl1
            || (seg.seq == self.snd.wl1 && (window > self.snd.wnd || window == 0));
        if ack >= prior_una && may_update {
            self.snd.wnd = window;
            self.raise_max_window(window);
            self.snd.wl1 = seg.seq;
            self.snd.wl2 = ack;
        }
        self.update_persist(now);
    }

    /// Steps 1 to 4 for an ACK that acknowledges nothing while nothing is outstanding
    /// (SEG.ACK = SND.UNA = SND.MAX, checked by the caller), if it has nothing else for the
    /// sender either: an empty scoreboard, no SACK blocks, no ECN echo, no loss episode (no
    /// recovery state) and no model-based controller, which looks at every ACK. Then the
    /// scoreboard, RTT sampling and `recovery_after_ack` would change nothing but the rate
    /// estimator's application-limited mark, which is all this does (Linux's
    /// tcp_rcv_established fast path likewise skips tcp_ack's work for such segments).
    /// Returns false, having done nothing, for any other ACK.
    #[inline(never)]
    fn ack_quietly(&mut self, seg: &Repr<'_>) -> bool {
        let quiet = seg.options.sack.is_empty()
            && self.recovery.is_none()
            && self.snd.sb.is_empty()
            && !self.ecn.is_echo(seg.flags)
            && !self.cc.is_model_based();
        if !quiet {
            return false;
        }
        // `generate` for an ACK that delivered nothing: only the application-limited mark
        // may end (no sample: nothing delivered, so no delivered segment to time).
        let delivered = self.snd.delivered;
        if let Some(tx) = self.snd.tx.as_deref_mut() {
            tx.rate.on_delivered_count(delivered);
        }
        true
    }

    /// The RTT sample of an acceptable ACK, fed to the estimator (RFC 6298 §2, Linux
    /// `tcp_ack_update_rtt`). As Linux, the send times of the segments it delivered come
    /// first, in microseconds: the earliest never-retransmitted segment it acknowledged
    /// cumulatively (none if it acknowledged a retransmitted one: Karn), else the earliest it
    /// SACKed. Only without those, and only when SND.UNA advances, the timestamp echo gives
    /// one (RFC 7323 §4, in our clock's milliseconds, at least one). The handshake's SYN or
    /// SYN-ACK is timed on its own. Returns the sample for congestion control: the latest
    /// segment's RTT (Linux `ca_rtt_us`), which also feeds the minimum RTT.
    fn rtt_sample(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        samples: (Option<Duration>, Option<Duration>),
        acked_whole: bool,
    ) -> Option<Duration> {
        let advanced = seg.ack > self.snd.una;
        let (mut seq, mut ca) = samples;
        if advanced && !self.snd.syn_acked {
            seq = seq.or_else(|| self.snd.sampler.on_ack(seg.ack, now));
        }
        if seq.is_none()
            && advanced
            && acked_whole
            && let Some(ms) = self.ts_rtt_ms(now, seg)
        {
            seq = Some(Duration::from_millis(u64::from(ms)));
            ca = seq;
        }
        let rtt = seq?;
        self.rtt.on_sample(rtt, self.rto_bounds());
        if let Some(ca) = ca {
            self.rtt.note_min_rtt(ca);
        }
        ca.or(Some(rtt))
    }

    /// The RTT in milliseconds (at least one) that the segment's timestamp echo gives, if
    /// timestamps are on, it echoes one of ours and the answer is under a minute (RFC 7323
    /// §4).
    #[inline]
    fn ts_rtt_ms(&self, now: Instant, seg: &Repr<'_>) -> Option<u32> {
        let (Some(_), Some(t)) = (self.opts.ts(), seg.options.timestamps) else {
            return None;
        };
        let ms = self.ts_now(now).wrapping_sub(t.tsecr);
        (t.tsecr != 0 && ms < 60_000).then(|| ms.max(1))
    }

    /// [`rtt_sample`](Self::rtt_sample) for an ACK advancing SND.UNA once the SYN is
    /// acknowledged (what [`ack_in_order`](Self::ack_in_order) sees), with the segments'
    /// samples in microseconds: the estimator takes them as they are, where `rtt_sample`
    /// makes a `Duration` of each for the estimator to turn into nanoseconds again. The same
    /// samples, the same estimator state, the same result, in microseconds for the
    /// controller. Inlined into `ack_in_order`, as it was when that had one caller.
    #[inline(always)]
    fn rtt_sample_micros(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        samples: (Option<u64>, Option<u64>),
        acked_whole: bool,
    ) -> Option<u64> {
        debug_assert!(self.snd.syn_acked && seg.ack > self.snd.una);
        let (mut seq, mut ca) = samples;
        if seq.is_none()
            && acked_whole
            && let Some(ms) = self.ts_rtt_ms(now, seg)
        {
            seq = Some(u64::from(ms) * 1000);
            ca = seq;
        }
        let rtt = seq?;
        self.rtt.on_sample_micros(rtt, self.rto_bounds());
        if let Some(ca) = ca {
            self.rtt.note_min_rtt_micros(ca);
        }
        Some(ca.unwrap_or(rtt))
    }

    /// New data acknowledged: free it, manage the retransmission timer (RFC 6298 §5.2-5.3).
    /// `whole`: a whole segment was acknowledged (see [`AckSummary::acked_whole`]). Inlined
    /// into `ack_in_order`'s two copies and the general path: once per ACK of new data.
    #[inline(always)]
    fn on_new_ack(&mut self, now: Instant, seg: &Repr<'_>, whole: bool) {
        let ack = seg.ack;
        let mut acked = ack - self.snd.una;
        // The SYN occupies a sequence number but no buffer byte.
        if !self.snd.syn_acked {
            self.snd.syn_acked = true;
            acked -= 1;
        }
        // So does our FIN.
        if self.snd.fin_seq.is_some_and(|f| ack == f + 1u32) {
            acked = acked.saturating_sub(1);
        }
        self.snd.buf.consume(acked as usize);
        if acked > 0 {
            // Data was queued, so the transmit state exists.
            self.snd.transmit().bytes_acked += acked as u64;
        }

        self.snd.retries = 0;
        // Linux `tcp_retrans_stamp_cleanup`: once nothing retransmitted is outstanding, the
        // next loss episode's time limits count from its own first retransmission.
        // Asked only while there is a stamp to clear (not on an exchange that never lost).
        if self.snd.rtx_since != MaybeInstant::NONE && !self.snd.sb.any_retrans_done() {
            self.snd.rtx_since = MaybeInstant::NONE;
        }

        self.snd.una = ack;
        if let Some(tx) = &mut self.snd.tx
            && tx.tlp_high.is_some_and(|h| ack >= h)
        {
            tx.tlp_high = None; // the probe's episode is over
        }
        if self.snd.up.is_some_and(|up| ack >= up) {
            self.snd.up = None; // urgent data acknowledged: leave urgent mode
        }
        if self.snd.nxt < self.snd.una {
            self.snd.nxt = self.snd.una;
        }
        // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it. As
        // Linux (`FLAG_SET_XMIT_TIMER` only with `FLAG_ACKED`), an ACK inside the first
        // segment leaves it running from that segment's transmission.
        if whole {
            self.timers.stop(Timer::Retransmit);
        }
        self.arm_retransmit(now);
    }

    /// The RTT sample an ACK that advances SND.UNA gives, fed to the estimator: timestamps
    /// give one on every ACK that echoes one of ours (RFC 7323 §4); otherwise one timed
    /// segment at a time, never a retransmitted one (Karn, RFC 6298 §3). Only a valid sample
    /// collapses a backed-off RTO (the note after RFC 6298 §5.7; Linux resets `icsk_backoff`
    /// only in `tcp_ack_update_rtt`): the ACK of a retransmission alone keeps it.
    fn take_rtt_sample(&mut self, now: Instant, seg: &Repr<'_>) -> Option<Duration> {
        let ts_sample = match (self.opts.ts(), seg.options.timestamps) {
            (Some(_), Some(t)) if t.tsecr != 0 => {
                let ms = self.ts_now(now).wrapping_sub(t.tsecr);
                (ms < 60_000).then(|| Duration::from_millis(ms as u64))
            }
            _ => None,
        };
        let sample = ts_sample.or_else(|| self.snd.sampler.on_ack(seg.ack, now));
        if let Some(rtt) = sample {
            self.rtt.on_sample(rtt, self.rto_bounds());
        }
        sample
    }

    /// The handshake completed (ESTABLISHED, or FIN-WAIT-1 after an early close), its ACK
    /// processed. Linux `tcp_init_transfer`: without an RTT sample from the handshake (the
    /// SYN or SYN-ACK was retransmitted) the RTO becomes 3 s (RFC 6298 §5.7,
    /// `tcp_init_metrics`); after more than one handshake retransmission the congestion
    /// window starts at one segment (RFC 5681 §3.1 asks for that after any lost SYN; Linux
    /// waits for a second loss, the 1 s initial RTO of RFC 6298 making one spurious loss
    /// likely).
    pub(super) fn on_handshake_done(&mut self) {
        self.snd.rtx_since = None.into();
        if self.rtt.srtt().is_none() {
            self.rtt
                .fall_back(crate::tcp::rtt::FALLBACK_RTO, self.rto_bounds());
        }
        if self.reordering_dsacks_retransmits().2 > 1 {
            self.cc.set_cwnd(self.snd.mss);
        }
    }

    /// Steps seven and eight: queue the text, reassemble, handle the FIN.
    pub(super) fn process_text_and_fin(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        ctr: &mut Counters,
    ) {
        // Trim what we already have off the front (the segment is acceptable, so some of it
        // is new or it is a zero-length segment at RCV.NXT).
        let mut seq = seg.seq;
        let mut payload = seg.payload;
        if seq < self.rcv.nxt {
            let skip = (self.rcv.nxt - seq) as usize;
            if !payload.is_empty() {
                let end = (seq + payload.len()).min(self.rcv.nxt);
                self.note_duplicate(seq, end);
            }
            payload = payload.get(skip..).unwrap_or(&[]);
            seq = self.rcv.nxt;
        }
        // Trim what lies beyond the window off the back; a FIN beyond it is dropped too.
        let room = self.rcv.window().max(self.rcv.buf.free() as u32) as usize;
        let offset = (seq - self.rcv.nxt) as usize;
        let mut fin = seg.flags.fin();
        if offset + payload.len() > room {
            payload = &payload[..room.saturating_sub(offset).min(payload.len())];
            fin = false;
        }

        if fin
            && offset == 0
            && !self.rcv.has_holes()
            && matches!(self.state, State::Established | State::SynReceived)
            && self.rcv.fin.is_none()
            && !self.rcv.fin_done
        {
            // Data and the FIN in order in one segment: Linux's tcp_fin() enters ping-pong
            // mode before it decides how to acknowledge the segment, so even data that quick-
            // ACK mode would acknowledge at once waits for the ACK timeout (in case the
            // application's answer to the close can carry it).
            self.rcv
                .reception(self.cfg.delayed_ack)
                .delack
                .enter_pingpong();
        }
        if !payload.is_empty() {
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    if self.rcv.shut && self.state != State::Established {
                        // RFC 1122 §4.2.2.13 / RFC 2525: new data for a socket closed (or shut
                        // down for reading) after our FIN -> RST, as Linux's
                        // tcp_rcv_state_process does in FIN-WAIT-1/2. The reset answers this
                        // segment (§3.10.7.1's form), as Linux's does.
                        ctr.abort_on_data += 1;
                        self.pending_rst = Some(if seg.flags.ack() {
                            PendingRst {
                                seq: seg.ack,
                                ack: None,
                                active: false,
                            }
                        } else {
                            PendingRst {
                                seq: SeqNum(0),
                                ack: Some(seg.seq + seg.segment_len()),
                                active: false,
                            }
                        });
                        self.push_event(super::Event::ResetSent {
                            reason: "data after close",
                        });
                        self.set_state(State::Closed, "data after close");
                        self.clear_timers();
                        return;
                    }
                    self.queue_text(now, seq, payload, fin, ctr);
                }
                _ => {
                    // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: "This should not occur since a
                    // FIN has been received from the remote side. Ignore the segment text."
                    self.push_event(super::Event::Dropped {
                        reason: "data after the peer's FIN",
                    });
                }
            }
        }

        if fin && (self.state.is_synchronized() || self.state == State::SynReceived) {
            let fin_at = seq + payload.len();
            if self.rcv.fin.is_none() && !self.rcv.fin_done {
                self.rcv.fin = Some(fin_at);
            } else if self.state == State::TimeWait {
                // A retransmitted FIN in TIME-WAIT: acknowledge and restart 2 MSL.
                self.rcv.ack_now = true;
                self.timers.arm(Timer::Close, now + self.cfg.time_wait);
            }
            if fin_at != self.rcv.nxt {
                // Held until the gap before it fills (RFC 9293 §3.10.7.4 eighth, "FIN ... is
                // only processed when all text before it has been received"). On its own, it
                // is a SACK block of its own in the recorder's order (`sack_now`).
                if payload.is_empty() && self.opts.sack {
                    OutOfOrder::get(&mut self.rcv.ooo)
                        .sack
                        .on_out_of_order(fin_at, fin_at + 1u32);
                }
                self.rcv.ack_now = true;
            }
        }
        self.consume_fin_if_due(now);
    }

    /// Linux `tcp_disordered_ack`: a pure duplicate ACK at RCV.NXT that would not change the
    /// send window, with a timestamp at most one RTO old, is only late (reordered), not from
    /// an old incarnation; PAWS lets it through so its SACK blocks count.
    fn disordered_ack(&self, seg: &Repr<'_>, behind: i32) -> bool {
        let f = seg.flags;
        if !f.ack() || f.syn() || f.fin() || !seg.payload.is_empty() {
            return false;
        }
        let window = (seg.window as u32) << self.snd.shift;
        let may_update_window = seg.ack > self.snd.una
            || seg.seq > self.snd.wl1
            || (seg.seq == self.snd.wl1 && (window > self.snd.wnd || window == 0));
        seg.seq == self.rcv.nxt
            && seg.ack == self.snd.una
            && !may_update_window
            && (behind as i64) <= self.rto().as_millis() as i64
    }

    /// Data arrived that we already had: report it with a D-SACK block and ACK at once.
    fn note_duplicate(&mut self, start: SeqNum, end: SeqNum) {
        if self.opts.sack && self.cfg.dsack {
            // A D-SACK block not yet sent that this one would not extend: the ACK carrying it
            // goes first (see tcp::sack).
            let owed = self
                .rcv
                .ooo
                .as_ref()
                .is_some_and(|o| o.sack.dsack_apart(start, end))
                .then(|| self.sack_now());
            let sack = &mut OutOfOrder::get(&mut self.rcv.ooo).sack;
            if let Some(blocks) = owed {
                sack.owe(blocks, true);
            }
            sack.on_duplicate(start, end);
            self.rcv.ack_now = true;
        }
    }

    /// Opens the window after `len` bytes of data were queued (Linux `tcp_grow_window`).
    fn grow_receive_window(&mut self, len: u32) {
        let mut w = self.rwnd();
        self.grow_per_segment(&mut w, len, 0);
        self.rcv.store_rwnd(&w);
    }

    /// Linux `tcp_grow_window` for `len` bytes just queued, once per wire segment they came
    /// in: a segment longer than the peer may send (`advmss`) is a receive offload's
    /// super-segment (a TUN read, as GRO hands Linux one skb), and counts as the segments of
    /// `advmss` bytes it stands for, so that the window opens as if they had come one by one
    /// (Linux measures a GRO skb by its `gso_size` likewise, `tcp_measure_rcv_mss`). A
    /// segment shorter than `min_len` opens nothing.
    fn grow_per_segment(&self, w: &mut RecvWindow, len: u32, min_len: u32) {
        let advmss = self.advmss().max(1);
        let max = self.cfg.recv_buffer_max.min(u32::MAX as usize) as u32;
        // What the buffer held as each segment arrived: before the first, all but `len`.
        let mut held = self.rcv.held().saturating_sub(len);
        let mut left = len;
        while left > 0 {
            let seg = left.min(advmss);
            held += seg;
            left -= seg;
            if seg >= min_len {
                w.grow(seg, held, advmss, self.rcv.seg_est, max);
            }
        }
    }

    /// Places `payload` (starting at `seq >= RCV.NXT`) into the receive buffer. `fin`: the
    /// segment carries the FIN after it (not trimmed off), which a SACK block counts.
    fn queue_text(
        &mut self,
        now: Instant,
        seq: SeqNum,
        payload: &[u8],
        fin: bool,
        ctr: &mut Counters,
    ) {
        let offset = (seq - self.rcv.nxt) as usize;
        let had_holes = self.rcv.has_holes();
        // Parts we already hold out of order are duplicates (RFC 2883): the first one found.
        if let Some(ooo) = self.rcv.ooo.as_ref().filter(|_| had_holes) {
            let (lo, hi) = (offset as u32, (offset + payload.len()) as u32);
            let dup = ooo.assembler.iter().find(|&(s, e)| s < hi && lo < e);
            if let Some((s, e)) = dup {
                let (s, e) = (s.max(lo), e.min(hi));
                self.note_duplicate(self.rcv.nxt + s, self.rcv.nxt + e);
            }
        }
        // In order with nothing held beyond it: all of it is ready at once, appended and
        // committed in one step (`enqueue` is `write_at(0, ..)` then `commit` of all of it).
        let in_order = offset == 0 && !had_holes;
        let written = match in_order {
            true => self.rcv.buf.enqueue(payload),
            false => self.rcv.buf.write_at(offset, payload),
        };
        if written == 0 {
            self.rcv.ack_now = true;
            return;
        }
        let advance = if in_order {
            written as u32
        } else {
            // The ACK owed so far, should this segment open a new SACK block (see tcp::sack).
            let owed = (offset > 0
                && self.rcv.ack_now
                && self.opts.sack
                && self
                    .rcv
                    .ooo
                    .as_ref()
                    .is_some_and(|o| o.sack.len_above(self.rcv.nxt) >= SACK_BLOCKS_EXPECTED))
            .then(|| self.sack_option_owed());
            // The block this segment records ends at its `end_seq` as Linux's
            // `tcp_data_queue_ofo` passes it to `tcp_sack_new_ofo_skb`: with the FIN's byte
            // when it carries the FIN (all of its data written, and the FIN the one held).
            let fin_at = seq + payload.len();
            let with_fin = fin
                && written == payload.len()
                && self.rcv.fin.map_or(!self.rcv.fin_done, |f| f == fin_at);
            let block_end = seq + written + u32::from(with_fin);
            let ooo = OutOfOrder::get(&mut self.rcv.ooo);
            let ranges = if owed.is_some() {
                ooo.assembler.iter().count()
            } else {
                0
            };
            if ooo.assembler.add(offset as u32, written as u32).is_err() {
                ctr.ofo_drop += 1;
                self.push_event(super::Event::Dropped {
                    reason: "reassembly full",
                });
                self.rcv.ack_now = true;
                return;
            }
            if offset > 0 {
                // Out of order: an immediate duplicate ACK with SACK (RFC 5681 §4.2, RFC 2018
                // §4).
                ctr.ofo_queue += 1;
                if let Some(blocks) = owed
                    && ooo.assembler.iter().count() > ranges
                {
                    ooo.sack.owe(blocks, false);
                }
                ooo.sack.on_out_of_order(seq, block_end);
                self.rcv.ack_now = true;
                // Linux `tcp_data_queue_ofo` opens the window for what it queues too, with
                // SACK only: without it the window stays, so that the duplicate ACKs are
                // exact duplicates and trigger the sender's fast retransmit.
                if self.opts.sack {
                    self.grow_receive_window(written as u32);
                }
                return;
            }
            let advance = ooo.assembler.take_front();
            self.rcv.buf.commit(advance as usize);
            advance
        };
        self.rcv.nxt += advance;
        if let Some(ooo) = &mut self.rcv.ooo {
            // Blocks RCV.NXT has passed are forgotten as soon as it moves (Linux
            // `tcp_data_queue` calls `tcp_sack_remove` after `tcp_ofo_queue`), not when the
            // next ACK goes out: in a batch answered by one ACK they would keep slots that
            // newer blocks need, and push a block still held out of the four.
            ooo.sack.on_rcv_nxt(self.rcv.nxt);
        }
        self.rcv.reception(self.cfg.delayed_ack).bytes_received += u64::from(advance);
        // In-order data, a hole's filling included (Linux's tcp_event_data_recv runs for
        // both): it feeds the ACK policy's clock (quick-ACK credit, the adaptive timeout,
        // when data last arrived, which decides ping-pong mode when we answer).
        // A super-segment is measured as one of the wire segments it stands for (see
        // `grow_per_segment`).
        let seg = (written as u32).min(self.advmss());
        // A segment under 128 bytes and no longer than the estimate neither measures
        // (`RecvWindow::measure`) nor opens (below) the window, nor moves the estimate: once
        // data has set the window's state (`Receiver::window_settled`), there is nothing to do.
        if written >= 128 || seg > self.rcv.seg_est || !self.rcv.window_settled() {
            let mut w = self.rwnd();
            w.measure(seg, self.rcv.seg_est);
            if seg >= self.rcv.seg_est {
                self.rcv.seg_est = seg.min(self.rcv.mss);
            }
            // Linux `tcp_event_data_recv`: segments of 128 bytes or more open the window.
            self.grow_per_segment(&mut w, written as u32, 128);
            self.rcv.store_rwnd(&w);
        }
        let window_segs = self.rcv.buf.free() as u32 / self.rcv.seg_est.max(1);
        // The RTO, asked only when the gap since the last data needs it.
        let (rtt, cfg) = (&self.rtt, &self.cfg);
        let rto = || rtt.current_rto(super::rto_bounds(cfg));
        let delack = &mut self.rcv.reception(cfg.delayed_ack).delack;
        delack.on_data(now, window_segs, rto);
        let quick = delack.quick();
        if had_holes {
            // Filling a hole: ACK at once (RFC 5681 §4.2).
            self.rcv.ack_now = true;
        } else {
            // RFC 1122 §4.2.3.2: delay, but ACK at least every second full-sized segment;
            // and at once in Linux's quick-ACK mode (see tcp::delack).
            let unacked = self.rcv.nxt - self.rcv.last_ack_sent;
            let immediate = unacked > self.rcv.seg_est || quick;
            self.schedule_ack(now, immediate);
        }
    }

    /// The eighth step once RCV.NXT reaches the FIN.
    fn consume_fin_if_due(&mut self, now: Instant) {
        let Some(fin_at) = self.rcv.fin else { return };
        if fin_at != self.rcv.nxt || self.rcv.fin_done {
            return;
        }
        self.rcv.nxt += 1u32;
        // Linux's byte count follows RCV.NXT: the FIN counts as one.
        self.rcv.reception(self.cfg.delayed_ack).bytes_received += 1;
        self.rcv.fin_done = true;
        self.rcv.fin = None;
        if let Some(ooo) = &mut self.rcv.ooo {
            // Anything held out of order lies beyond the peer's FIN and can never be
            // delivered: drop it and stop reporting it, as Linux's tcp_fin() purges its
            // out-of-order queue and resets its SACK blocks. (Linux's own ACK of a FIN in
            // FIN-WAIT-1 goes out before that purge and still reports the blocks; ours does
            // not.)
            ooo.assembler.clear();
            ooo.sack.clear();
        }
        match self.state {
            State::SynReceived | State::Established => {
                // Like Linux: the application will likely answer the close, so the ACK
                // waits the ACK timeout to ride on it (at once if no data came before).
                self.rcv
                    .reception(self.cfg.delayed_ack)
                    .delack
                    .enter_pingpong();
                self.schedule_ack(now, false);
                self.set_state(State::CloseWait, "FIN received")
            }
            _ => self.rcv.ack_now = true,
        }
        match self.state {
            State::FinWait1 => {
                if self.snd.fin_seq.is_some_and(|f| self.snd.una == f + 1u32) {
                    self.enter_time_wait(now, "FIN received");
                } else {
                    self.set_state(State::Closing, "FIN received (simultaneous close)");
                }
            }
            State::FinWait2 => self.enter_time_wait(now, "FIN received"),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: Instant, reason: &'static str) {
        self.set_state(State::TimeWait, reason);
        self.timers = Timers::default();
        self.timers.arm(Timer::Close, now + self.cfg.time_wait);
        // Everything we sent is acknowledged and nothing more will be: the send ring, the
        // scoreboard and a drained receive ring can go now, not when the 60 s end (Linux
        // swaps the socket for a small inet_timewait_sock). The owner takes them with
        // `give_parts` (the stack does on the refresh after this segment, for its next
        // connections).
    }

    /// May we answer another invalid segment now? (`Config::invalid_ratelimit`)
    fn oow_rate_limited(&mut self, now: Instant) -> bool {
        let limit = self.cfg.invalid_ratelimit;
        if limit.is_zero() {
            return false;
        }
        let limits = self.rcv.limits.get_or_insert_with(Box::default);
        if limits.last_oow_ack.get().is_some_and(|t| now - t < limit) {
            return true;
        }
        limits.last_oow_ack = Some(now).into();
        false
    }

    /// RFC 5961 §7: an ACK that tells a blind attacker nothing, at most
    /// `challenge_ack_limit` per second.
    fn challenge_ack(&mut self, now: Instant, ctr: &mut Counters, syn: bool) {
        if self.oow_rate_limited(now) {
            ctr.challenge_ack_limited += 1;
            return;
        }
        let limits = self.rcv.limits.get_or_insert_with(Box::default);
        if now - limits.challenge_window >= Duration::from_secs(1) {
            limits.challenge_window = now;
            limits.challenge_count = 0;
        }
        if limits.challenge_count >= self.cfg.challenge_ack_limit {
            ctr.challenge_ack_limited += 1;
            return;
        }
        limits.challenge_count += 1;
        ctr.challenge_acks += 1;
        self.rcv.ack_now = true;
        self.push_event(super::Event::Dropped {
            reason: if syn {
                "SYN in synchronized state: challenge ACK"
            } else {
                "challenge ACK"
            },
        });
    }

    /// In TIME-WAIT, may a new SYN from the same peer reuse the 4-tuple? Linux allows it when
    /// the SYN is beyond this incarnation: a sequence number above RCV.NXT, or a TSval newer
    /// than TS.Recent (RFC 9293 §3.6.1's "larger sequence number", RFC 6191), and PAWS does
    /// not reject it (`tcp_timewait_state_process`). If so, returns the ISN the new
    /// incarnation's SYN-ACK uses: past everything this one sent, SND.NXT + 65537, as Linux
    /// picks it (`tw_snd_nxt + 65535 + 2`, never 0). The stack then drops this connection
    /// and hands the SYN, with that ISN, to the listener.
    pub fn time_wait_accepts_syn(&self, seg: &Repr<'_>) -> Option<SeqNum> {
        if self.state != State::TimeWait {
            return None;
        }
        time_wait::accepts_syn(self.snd.nxt, self.rcv.nxt, self.opts.ts(), seg)
    }

    /// A SYN [`time_wait_accepts_syn`](Self::time_wait_accepts_syn) took that nothing can
    /// reopen (no listener): acknowledged as this connection, not rate-limited, TIME-WAIT
    /// goes on (Linux `tcp_v4_rcv`, TCP_TW_SYN falling through to TCP_TW_ACK).
    pub(crate) fn ack_reopening_syn(&mut self, ctr: &mut Counters) {
        ctr.in_segs += 1;
        self.rcv.ack_now = true;
    }
}

#[cfg(test)]
std::thread_local! {
    static HEADER_PREDICTION: core::cell::Cell<bool> = const { core::cell::Cell::new(true) };
    static PREDICTED: core::cell::Cell<[u64; 3]> = const { core::cell::Cell::new([0; 3]) };
    static SYN_ACKS_SHORT: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// Tests only: how many ACKs completing a handshake in SYN-RECEIVED (a passive open's or a
/// simultaneous open's) this thread's connections took
/// through [`Connection::ack_of_syn`] so far (header prediction's switch turns it off too).
#[cfg(test)]
pub(crate) fn syn_acks_short() -> u64 {
    SYN_ACKS_SHORT.with(|c| c.get())
}

/// Tests only: turns header prediction ([`Connection::predicted`]) on or off for the
/// connections this thread drives, so that a test can run the same exchange through the
/// general path and compare (with it off, no ACK takes [`Connection::ack_in_order`]
/// either); returns the segments predicted on this thread so far, the ACKs of new data
/// taken by `ack_in_order` and how many of those were ACKs prediction cannot take (in a
/// state other than ESTABLISHED, or with a FIN).
#[cfg(test)]
pub(crate) fn set_header_prediction(on: bool) -> [u64; 3] {
    HEADER_PREDICTION.with(|c| c.set(on));
    PREDICTED.with(|c| c.get())
}

/// Tests only: what [`set_header_prediction`] returns, the switch left as it is.
#[cfg(test)]
pub(crate) fn header_predictions() -> [u64; 3] {
    PREDICTED.with(|c| c.get())
}

/// Header prediction is on (always, outside tests).
#[inline(always)]
fn header_prediction_on() -> bool {
    #[cfg(test)]
    return HEADER_PREDICTION.with(|c| c.get());
    #[cfg(not(test))]
    true
}

/// Which options a SYN offered.
fn syn_offer(seg: &Repr<'_>) -> Offer {
    Offer {
        window_scale: seg.options.window_scale.is_some(),
        sack_permitted: seg.options.sack_permitted,
        timestamps: seg.options.timestamps.is_some(),
        ecn: crate::tcp::ecn::syn_asks(seg.flags),
    }
}
