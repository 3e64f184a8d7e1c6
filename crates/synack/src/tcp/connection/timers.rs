//! The connection's timers (RFC 9293 §3.10.8, RFC 6298, RFC 8985 §7, RFC 1122 §4.2.2.17 and
//! §4.2.3.6): the closed set of deadlines, arming them, and what happens when each expires.

use super::{CaState, Connection, Error, Event, PendingRst, State};
use crate::tcp::counters::Counters;
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant, nanos_of};

/// The closed set of timers (DESIGN.md rule 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Retransmission of SYN, SYN-ACK, data or FIN.
    Retransmit,
    /// Tail loss probe (RFC 8985 §7.2), due before the retransmission timer.
    LossProbe,
    /// RACK's reordering timer (RFC 8985 §6.3): a segment may be declared lost then.
    Reorder,
    /// Zero-window probe.
    Persist,
    /// Delayed ACK.
    DelayedAck,
    /// Keepalive probe or give-up.
    Keepalive,
    /// TIME-WAIT expiry or the orphaned FIN-WAIT-2 timeout.
    Close,
}

/// `u64::MAX` µs stands for "not armed": an instant no clock reaches (585,000 years), and the
/// one `Instant + Duration` saturates at, which never fires either.
const NOT_ARMED: u64 = u64::MAX;

/// The deadline of each [`Timer`], in microseconds, 8 bytes each (an `Option<Instant>` takes
/// 16). Microseconds like every `Instant`: a deadline fires exactly when it was set to, however
/// far ahead (a keepalive is hours away, more than 32 bits of microseconds hold).
#[derive(Debug, Clone, Copy)]
pub(super) struct Timers([u64; 7]);

impl Default for Timers {
    fn default() -> Timers {
        Timers([NOT_ARMED; 7])
    }
}

impl Timers {
    /// When `t` fires, if it is armed.
    pub(super) fn get(&self, t: Timer) -> Option<Instant> {
        let at = self.0[t as usize];
        (at != NOT_ARMED).then(|| Instant::from_micros(at))
    }

    /// Arms `t` to fire at `at`.
    pub(super) fn arm(&mut self, t: Timer, at: Instant) {
        self.0[t as usize] = at.total_micros();
    }

    /// Arms `t` at `at`, or stops it for `None`.
    pub(super) fn set(&mut self, t: Timer, at: Option<Instant>) {
        self.0[t as usize] = at.map_or(NOT_ARMED, Instant::total_micros);
    }

    pub(super) fn stop(&mut self, t: Timer) {
        self.0[t as usize] = NOT_ARMED;
    }

    pub(super) fn is_armed(&self, t: Timer) -> bool {
        self.0[t as usize] != NOT_ARMED
    }

    /// If `t` is due at `now`, stops it and returns true.
    pub(super) fn expire(&mut self, t: Timer, now: Instant) -> bool {
        let at = self.0[t as usize];
        let due = at != NOT_ARMED && at <= now.total_micros();
        if due {
            self.0[t as usize] = NOT_ARMED;
        }
        due
    }

    /// The earliest deadline of all.
    pub(super) fn earliest(&self) -> Option<Instant> {
        let at = self.0.iter().fold(NOT_ARMED, |a, &b| a.min(b));
        (at != NOT_ARMED).then(|| Instant::from_micros(at))
    }
}

impl Connection {
    // ----- Timeouts (§3.10.8) -----

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work, or a
    /// paced segment may leave (then [`poll_transmit`](Self::poll_transmit) sends it).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let paced = self
            .snd
            .tx
            .as_deref()
            .filter(|t| t.pacing_wait)
            .map(|t| t.next_departure);
        match (self.timers.earliest(), paced) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, ctr: &mut Counters) {
        // A paced segment's departure time has come: no deadline of its own any more; the
        // next `poll_transmit` sends it (or waits again for the next one).
        if let Some(tx) = self.snd.tx.as_deref_mut()
            && tx.pacing_wait
            && tx.next_departure <= now
        {
            tx.pacing_wait = false;
        }
        if self.timers.expire(Timer::Close, now) {
            match self.state {
                // §3.10.8: "If the time-wait timeout expires on a connection, delete the TCB".
                State::TimeWait => self.set_state(State::Closed, "TIME-WAIT expired"),
                State::FinWait2 => {
                    self.set_state(State::Closed, "FIN-WAIT-2 timeout");
                    self.clear_timers();
                }
                _ => {}
            }
        }
        if self.timers.expire(Timer::DelayedAck, now)
            && (self.state.is_synchronized() || self.state == State::SynReceived)
        {
            let rto = self.rto();
            if let Some(d) = &mut self.rcv.data {
                d.delack.on_timer(rto);
            }
            self.rcv.ack_now = true;
            ctr.delayed_acks += 1;
        }
        if self.timers.expire(Timer::LossProbe, now) {
            // The probe comes first even when it was capped at the RTO deadline (as in
            // Linux); sending it restarts the retransmission timer.
            if self.snd.una != self.snd.max {
                self.snd.probe_due = true;
                self.timers.arm(Timer::Retransmit, now + self.rto());
            }
        }
        if self.timers.expire(Timer::Reorder, now) {
            self.on_reorder_timeout(now, ctr);
        }
        if self.timers.expire(Timer::Retransmit, now) {
            self.timers.stop(Timer::LossProbe);
            self.on_retransmit_timeout(now, ctr);
        }
        if self.timers.expire(Timer::Persist, now) {
            // Linux `tcp_probe_timer`: the user timeout counts from the first probe.
            if self.snd.probes_since.get().is_none() {
                self.snd.probes_since = Some(now).into();
            }
            if self.user_timeout_expired(now) {
                self.time_out(ctr, "user timeout during zero-window probing", false);
            } else {
                self.snd.probe_now = true;
                self.snd.persist_backoff = (self.snd.persist_backoff + 1).min(16);
            }
        }
        if self.timers.expire(Timer::Keepalive, now) {
            self.on_keepalive_timeout(now, ctr);
        }
    }

    /// RFC 6069 §4 (Linux `tcp_ld_RTO_revert`): an ICMP net or host unreachable quoting
    /// SND.UNA while the retransmission timer is backed off says that the path, not
    /// congestion, lost the segment. One backoff step is undone and the timer re-armed from
    /// the head segment's last transmission with the shorter RTO; if that moment has passed,
    /// the timeout runs now. Returns whether anything changed.
    pub fn revert_rto_backoff(&mut self, seq: SeqNum, now: Instant, ctr: &mut Counters) -> bool {
        if seq != self.snd.una || self.snd.retries == 0 || self.rtt.backoff_count() == 0 {
            return false;
        }
        let Some(sent) = self.snd.sb.first().map(|s| s.xmit) else {
            return false;
        };
        self.rtt.undo_backoff();
        let due = sent + self.rto();
        self.timers.stop(Timer::LossProbe);
        if due > now {
            self.timers.arm(Timer::Retransmit, due);
        } else {
            self.timers.stop(Timer::Retransmit);
            self.on_retransmit_timeout(now, ctr);
        }
        true
    }

    fn on_retransmit_timeout(&mut self, now: Instant, ctr: &mut Counters) {
        if self.snd.una == self.snd.max {
            return; // nothing outstanding (timer raced an ACK)
        }
        let shrunk = self.snd.wnd == 0 && self.state.is_synchronized() && !self.orphaned;
        if shrunk && self.zero_window_rtx_timed_out(now) {
            self.time_out(ctr, "zero-window peer silent", false);
            return;
        }
        if !shrunk && self.write_timed_out(now) {
            // Linux `tcp_write_err`: the connection ends without a word to the peer.
            self.time_out(ctr, "retransmissions exhausted", false);
            return;
        }
        self.count_rto();
        self.snd.retries += 1;
        ctr.timeouts += 1;
        // RFC 6298 §5.5: back the timer off, except for the first `syn_linear_timeouts`
        // timeouts of a SYN, which Linux resends at the initial RTO (`tcp_retransmit_timer`).
        if self.state != State::SynSent || self.snd.retries > self.cfg.syn_linear_timeouts {
            self.rtt.backoff();
        }
        if self.snd.rtx_since.get().is_none() {
            // The first retransmission: the time limits count from here (Linux
            // `retrans_stamp`; a SYN's counts from the first SYN, set by connect()).
            self.snd.rtx_since = Some(now).into();
        }
        self.push_event(Event::RtoFired {
            rto: self.rto(),
            backoff: self.rtt.backoff_count(),
        });
        // RFC 6298 §5.4: retransmit the earliest unacknowledged segment; RFC 5681 §3.1 eq. 4.
        if self.state.is_synchronized() {
            self.enter_loss(now, ctr);
        }
        if let Some(tx) = &mut self.snd.tx {
            tx.tlp_high = None;
        }
        self.snd.probe_due = false;
        // Go back: everything after SND.UNA is sent again as the window allows (Karn: no samples).
        self.snd.nxt = self.snd.una;
        self.snd.sampler.invalidate();
        // The FIN, if it was sent, keeps its sequence number: it goes again when the resend
        // reaches the end of the data, and an ACK past SND.NXT (the peer queued the rest out
        // of order) may acknowledge it before then.
        // RFC 6298 §5.5: the timer restarts now, so it runs even if the resend cannot go at
        // once. Under a window the peer shrank to zero the head segment still goes (see
        // `plan_resend`) and this timer, backing off, paces it: Linux's
        // `tcp_retransmit_timer` ("receiver dastardly shrinks window").
        if self.state.is_synchronized() {
            self.arm_retransmit(now);
        }
    }

    /// Has the retransmission timer that just fired gone on too long (RFC 9293 §3.8.3's R2,
    /// RFC 1122 §4.2.3.5)? As Linux's `tcp_write_timeout`: a SYN gives up after
    /// `syn_retries` + `syn_linear_timeouts` retransmissions, a simultaneous open's
    /// SYN-ACK after `syn_retries`, a listener's SYN-ACK after `synack_retries`; and every
    /// state once the time since the first retransmission (the first SYN) reaches the user
    /// timeout, or else the time [`model_timeout`] gives for that many retries (`max_retries`
    /// in the synchronized states, with `rto_min` as the base; `syn_retries` with
    /// `rto_initial` in the handshake).
    fn write_timed_out(&self, now: Instant) -> bool {
        let cfg = &self.cfg;
        let (count_limit, boundary, base) = match self.state {
            State::SynSent => (
                Some(cfg.syn_retries.saturating_add(cfg.syn_linear_timeouts)),
                cfg.syn_retries,
                cfg.rto_initial,
            ),
            State::SynReceived if self.passive => (
                Some(cfg.synack_retries),
                cfg.synack_retries,
                cfg.rto_initial,
            ),
            State::SynReceived => (Some(cfg.syn_retries), cfg.syn_retries, cfg.rto_initial),
            _ => (None, cfg.max_retries, cfg.rto_min),
        };
        if count_limit.is_some_and(|n| self.snd.retries >= n) {
            return true;
        }
        // Linux `retransmits_timed_out`: only once something was retransmitted.
        let Some(since) = self.snd.rtx_since.get().filter(|_| self.snd.retries > 0) else {
            return false;
        };
        let limit = self
            .opts
            .user_timeout()
            .unwrap_or_else(|| model_timeout(boundary, base, cfg.rto_max));
        now - since >= limit
    }

    /// The retransmission timer fired while the peer's window is zero with data in flight:
    /// the resent head segment is a window probe, so the connection lives as long as the peer
    /// answers (Linux `tcp_rtx_probe0_timed_out`): it ends once the peer has been silent
    /// for twice the maximum RTO (or the user timeout, if shorter) and retransmissions have
    /// gone on that long too; a user timeout also ends it once retransmissions have gone on
    /// longer than it, answers or not.
    fn zero_window_rtx_timed_out(&self, now: Instant) -> bool {
        let Some(since) = self.snd.rtx_since.get() else {
            return false;
        };
        let rtx_for = now - since;
        let mut limit = self.cfg.rto_max * 2;
        if let Some(user) = self.opts.user_timeout() {
            if rtx_for > user {
                return true;
            }
            limit = limit.min(user);
        }
        now - self.rcv.last_recv > limit && rtx_for > limit
    }

    fn user_timeout_expired(&self, now: Instant) -> bool {
        match (self.opts.user_timeout(), self.snd.probes_since.get()) {
            (Some(limit), Some(since)) => now - since >= limit,
            _ => false,
        }
    }

    fn on_keepalive_timeout(&mut self, now: Instant, ctr: &mut Counters) {
        let Some(ka) = self.opts.keepalive() else {
            return;
        };
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait2
        ) {
            return;
        }
        // RFC 1122 §4.2.3.6: probe only an idle connection; data in flight has its own timer.
        if self.snd.una != self.snd.max || !self.snd.buf.is_empty() {
            self.timers.arm(Timer::Keepalive, now + ka.idle);
            return;
        }
        // Linux `tcp_keepalive_timer`: with a user timeout, give up once it has passed since
        // the last segment received and a probe went unanswered (RFC 5482 §4.2 leaves the
        // interplay to the implementation); otherwise after `count` unanswered probes.
        let idle_for = now - self.rcv.last_recv;
        let user_timeout = self.opts.user_timeout();
        let liveness = self.opts.liveness();
        let dead = match user_timeout {
            Some(limit) => idle_for >= limit && liveness.probes_sent > 0,
            None => liveness.probes_sent >= ka.count,
        };
        if dead {
            self.time_out(ctr, "keepalive: peer stopped answering", true);
            return;
        }
        liveness.probes_sent += 1;
        self.keepalive_due = true;
        ctr.keepalive_probes += 1;
        self.timers.arm(Timer::Keepalive, now + ka.interval);
    }

    /// Gives up on the connection with TimedOut (or the soft error an ICMP message left).
    /// `rst`: tell the peer with `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>`, as Linux does when
    /// keep-alive gives up (`tcp_keepalive_timer`); retransmission and zero-window-probe
    /// timeouts end silently (`tcp_write_err`).
    pub(super) fn time_out(&mut self, ctr: &mut Counters, reason: &'static str, rst: bool) {
        ctr.abort_on_timeout += 1;
        if matches!(self.state, State::SynSent | State::SynReceived) {
            ctr.attempt_fails += 1;
        }
        self.error = Some(self.soft_error.unwrap_or(Error::TimedOut));
        if rst && self.state.is_synchronized() && self.state != State::TimeWait {
            self.pending_rst = Some(PendingRst {
                seq: self.acceptable_seq(),
                ack: Some(self.rcv.nxt),
                active: true,
            });
        }
        self.set_state(State::Closed, reason);
        self.clear_timers();
    }

    pub(super) fn clear_timers(&mut self) {
        self.timers = Timers::default();
    }

    /// Arrange an ACK: now, or after the delayed-ACK timeout.
    pub(super) fn schedule_ack(&mut self, now: Instant, immediate: bool) {
        if immediate || self.cfg.delayed_ack.is_zero() {
            self.rcv.ack_now = true;
            return;
        }
        // The timeout is worked out only for an ACK that may wait.
        let delay = self
            .rcv
            .delack()
            .map_or(0, |d| d.timeout_nanos(self.rtt.srtt_nanos()));
        if delay == 0 {
            self.rcv.ack_now = true;
        } else if !self.timers.is_armed(Timer::DelayedAck) {
            self.timers.arm(Timer::DelayedAck, now.add_nanos(delay));
        }
    }

    /// RFC 8985 §7.2: after sending (or an ACK), schedule a tail loss probe two SRTTs out, so
    /// a lost tail is repaired by fast recovery instead of a timeout. Like Linux it needs
    /// SACK (the probe's ACK must show what arrived), runs only outside recovery and
    /// backoff, adds the minimum RTO when a single segment is out (the peer may delay its
    /// ACK) and never fires after the retransmission timer would.
    pub(super) fn arm_loss_probe(&mut self, now: Instant) {
        self.timers.stop(Timer::LossProbe);
        let open = matches!(self.ca_state(), CaState::Open | CaState::Disorder)
            && self.snd.retries == 0
            && self.snd.tlp_high().is_none()
            && self.snd.nxt == self.snd.max;
        if !self.opts.sack || !open || !self.state.is_synchronized() {
            return;
        }
        let Some(rto_at) = self.timers.get(Timer::Retransmit) else {
            return;
        };
        self.timers.arm(
            Timer::LossProbe,
            now.add_nanos(self.pto_nanos()).min(rto_at),
        );
    }

    /// The probe timeout (RFC 8985 §7.2, as Linux `tcp_schedule_loss_probe`): two smoothed
    /// RTTs, plus the minimum RTO with one segment out (for the peer's delayed ACK) or 2 ms
    /// with more; the initial RTO before any RTT sample. In nanoseconds, as the estimator
    /// keeps them (no `Duration` arithmetic per send).
    #[inline(always)]
    fn pto_nanos(&self) -> u64 {
        match self.rtt.srtt_nanos() {
            Some(srtt) => {
                // Linux `packets_out == 1`: one segment out, counted as segments (a FIN
                // after a data segment makes two), not bytes.
                let one_segment = self.snd.sb.outstanding().segs <= 1;
                let extra = if one_segment {
                    nanos_of(self.cfg.rto_min)
                } else {
                    2_000_000
                };
                srtt.saturating_mul(2).saturating_add(extra)
            }
            None => nanos_of(self.cfg.rto_initial),
        }
    }

    /// One RTO after the oldest outstanding segment's last transmission (Linux
    /// `tcp_rto_delta_us` counts to it), if anything is outstanding.
    pub(super) fn head_rto_deadline(&self) -> Option<Instant> {
        self.snd.sb.first().map(|s| self.rto_after(s.xmit))
    }

    /// One RTO (backed off as it stands) after `from`: `from + self.rto()`, in 64-bit
    /// arithmetic on the estimator's nanoseconds.
    fn rto_after(&self, from: Instant) -> Instant {
        from.add_nanos(self.rtt.current_rto_nanos(self.rto_bounds()))
    }

    /// After sending (not on an ACK), the loss probe comes no later than the retransmission
    /// timeout counted from the oldest outstanding segment's last transmission, when that
    /// is still ahead (Linux `tcp_schedule_loss_probe` with `tcp_rto_delta_us`; on an ACK
    /// it counts the RTO from now, as the timer restarted there does).
    pub(super) fn cap_loss_probe_at_head_rto(&mut self, now: Instant) {
        let (Some(at), Some(cap)) = (self.timers.get(Timer::LossProbe), self.head_rto_deadline())
        else {
            return;
        };
        if cap > now && cap < at {
            self.timers.arm(Timer::LossProbe, cap);
        }
    }

    /// Arm the retransmission timer if something is outstanding and it is not running. With
    /// a user timeout, it fires no later than the moment that timeout expires (as Linux
    /// clamps the RTO), so the abort is on time.
    pub(super) fn arm_retransmit(&mut self, now: Instant) {
        if self.snd.una != self.snd.max {
            if !self.timers.is_armed(Timer::Retransmit) {
                let at = self.clamp_to_user_timeout(self.rto_after(now), now);
                self.timers.arm(Timer::Retransmit, at);
            }
            self.arm_loss_probe(now);
        } else {
            self.timers.stop(Timer::Retransmit);
            self.timers.stop(Timer::LossProbe);
        }
    }

    /// [`arm_retransmit`](Self::arm_retransmit) for the first segment outstanding of a
    /// connection that has armed no timer and retried nothing (a passive open's SYN-ACK,
    /// before SYN-RECEIVED has any loss probe): the RTO from `now`, nothing else.
    #[inline]
    pub(super) fn arm_first_retransmit(&mut self, now: Instant) {
        debug_assert!(self.snd.una != self.snd.max && self.snd.retries == 0);
        debug_assert!(!self.timers.is_armed(Timer::Retransmit));
        debug_assert!(!self.timers.is_armed(Timer::LossProbe) && !self.state.is_synchronized());
        let at = self.rto_after(now);
        self.timers.arm(Timer::Retransmit, at);
    }

    /// A retransmission deadline `at`, no later than the moment the user timeout expires once
    /// retransmitting (Linux `tcp_clamp_rto_to_user_timeout`), so that the abort is on time.
    #[inline(always)]
    fn clamp_to_user_timeout(&self, at: Instant, now: Instant) -> Instant {
        match (
            self.opts.user_timeout(),
            self.snd.rtx_since.get(),
            self.snd.retries > 0,
        ) {
            (Some(limit), Some(since), true) => at.min((since + limit).max(now)),
            _ => at,
        }
    }

    /// After the predicted path sent new data (SND.NXT = SND.MAX past SND.UNA, a synchronized
    /// state): [`arm_retransmit`](Self::arm_retransmit) then
    /// [`cap_loss_probe_at_head_rto`](Self::cap_loss_probe_at_head_rto), to the same
    /// deadlines, with the RTO worked out once for both and the probe timer written once
    /// (not stopped, armed, then capped). Linux arms the RTO
    /// only when nothing was out (`tcp_event_new_data_sent`) and schedules the probe in
    /// `tcp_schedule_loss_probe` with `tcp_rto_delta_us`.
    #[inline]
    pub(super) fn arm_after_predicted_send(&mut self, now: Instant) {
        debug_assert!(self.snd.una != self.snd.max && self.snd.nxt == self.snd.max);
        debug_assert!(self.state.is_synchronized());
        let rto = self.rtt.current_rto_nanos(self.rto_bounds());
        let rto_at = match self.timers.get(Timer::Retransmit) {
            Some(at) => at,
            None => {
                let at = self.clamp_to_user_timeout(now.add_nanos(rto), now);
                self.timers.arm(Timer::Retransmit, at);
                at
            }
        };
        // `arm_loss_probe`, SND.NXT = SND.MAX and a synchronized state given.
        let open = self.opts.sack
            && self.snd.retries == 0
            && matches!(self.ca_state(), CaState::Open | CaState::Disorder)
            && self.snd.tlp_high().is_none();
        if !open {
            self.timers.stop(Timer::LossProbe);
            return;
        }
        let mut probe_at = now.add_nanos(self.pto_nanos()).min(rto_at);
        // `cap_loss_probe_at_head_rto`: the head's last transmission plus the same RTO.
        if let Some(head) = self.snd.sb.first() {
            let cap = head.xmit.add_nanos(rto);
            if cap > now && cap < probe_at {
                probe_at = cap;
            }
        }
        self.timers.arm(Timer::LossProbe, probe_at);
    }

    /// Arm (or stop) the persist timer (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17): data waits,
    /// nothing is in flight, and the peer's window is too small to send what waits (zero, or
    /// below one segment, where sender SWS avoidance holds back). When it fires, the sender
    /// probes a zero window with one byte or sends what fits ("override timeout", RFC 9293
    /// §3.8.6.2.1). "Nothing in flight" is SND.NXT = SND.UNA, which also covers a window the
    /// peer shrank to zero under outstanding data once the retransmission timer went back.
    #[inline(always)]
    pub(super) fn update_persist(&mut self, now: Instant) {
        // Nothing waits to go out (every ACK of a connection that sent all it had), and
        // nothing of the persist timer is left to clear: what the rules below decide too,
        // answered without them.
        if self.snd.unsent_len() == 0
            && !(self.snd.fin_queued && self.snd.fin_seq.is_none())
            && self.snd.persist_backoff == 0
            && self.snd.probes_since.get().is_none()
            && !self.timers.is_armed(Timer::Persist)
        {
            return;
        }
        self.update_persist_now(now);
    }

    /// [`update_persist`](Self::update_persist) when something may change.
    #[inline(never)]
    fn update_persist_now(&mut self, now: Instant) {
        let unsent = self.snd.unsent_len();
        let fin_waits = self.snd.fin_queued && self.snd.fin_seq.is_none();
        let wnd_blocked = (unsent > 0
            && (self.snd.wnd as usize) < unsent.min(self.snd.mss as usize))
            || (unsent == 0 && fin_waits && self.snd.wnd == 0);
        // Data held back with nothing in flight for another reason (TCP_CORK, MSG_MORE) is
        // not held forever either: Linux arms the same timer whenever a push sends nothing
        // while nothing is outstanding (tcp_check_probe_timer), and when it fires sends what
        // waits, up to a segment, with PSH (tcp_write_wakeup).
        let held = unsent > 0;
        if self.state.is_synchronized() && (wnd_blocked || held) && self.snd.nxt == self.snd.una {
            if !self.timers.is_armed(Timer::Persist) {
                let base = self.rto().max(self.cfg.rto_min);
                let mut t = base
                    .saturating_mul(1 << self.snd.persist_backoff.min(10))
                    .min(self.cfg.rto_max);
                // Linux `tcp_clamp_probe0_to_user_timeout`: no later than the user timeout
                // allows (at least TCP_TIMEOUT_MIN, two ticks).
                if let (Some(limit), Some(since)) =
                    (self.opts.user_timeout(), self.snd.probes_since.get())
                {
                    let left = limit.saturating_sub(now - since).max(self.cfg.tick * 2);
                    t = t.min(left);
                }
                self.timers.arm(Timer::Persist, now + t);
            }
        } else {
            self.timers.stop(Timer::Persist);
            if !wnd_blocked {
                self.snd.persist_backoff = 0;
                self.snd.probes_since = None.into();
            }
        }
    }

    pub(super) fn arm_keepalive(&mut self, now: Instant) {
        if let Some(ka) = self.opts.keepalive() {
            self.timers.arm(Timer::Keepalive, now + ka.idle);
        }
    }
}

/// How long `boundary` retransmissions take when the first waits `base` and each later one
/// twice as long, capped at `max` (Linux `tcp_model_timeout`): the time limit on
/// retransmitting that `tcp_retries2` and `tcp_syn_retries` stand for.
pub(super) fn model_timeout(boundary: u32, base: Duration, max: Duration) -> Duration {
    let base_us = base.as_micros().max(1);
    // The doublings that stay below `max` (ilog2(max / base)).
    let thresh = (max.as_micros() / base_us).max(1).ilog2();
    let micros = if boundary <= thresh {
        ((2u128 << boundary) - 1) * base_us
    } else {
        ((2u128 << thresh) - 1) * base_us + u128::from(boundary - thresh) * max.as_micros()
    };
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux `tcp_model_timeout`: (2^(n+1) − 1) × base while the doubling stays below the
    /// maximum, then the maximum per retry.
    #[test]
    fn model_timeout_as_linux() {
        let ms = Duration::from_millis;
        let max = Duration::from_secs(120);
        // tcp_retries2 = 15 with TCP_RTO_MIN: 1023 × 0.2 s + 6 × 120 s.
        assert_eq!(model_timeout(15, ms(200), max), ms(924_600));
        assert_eq!(model_timeout(2, ms(200), max), ms(1_400));
        // tcp_syn_retries = 6 with the 1 s initial RTO: 127 s; 1 retry: 3 s.
        assert_eq!(model_timeout(6, ms(1000), max), ms(127_000));
        assert_eq!(model_timeout(1, ms(1000), max), ms(3_000));
        assert_eq!(model_timeout(0, ms(1000), max), ms(1_000));
    }
}
