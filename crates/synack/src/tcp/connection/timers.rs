//! The connection's timers (RFC 9293 §3.10.8, RFC 6298, RFC 8985 §7, RFC 1122 §4.2.2.17 and
//! §4.2.3.6): the closed set of deadlines, arming them, and what happens when each expires.

use super::{CaState, Connection, Error, Event, PendingRst, State};
use crate::tcp::counters::Counters;
use crate::time::{Duration, Instant};

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
            if self.user_timeout_expired(now) {
                self.time_out(ctr, "user timeout during zero-window probing");
            } else {
                self.snd.probe_now = true;
                self.snd.persist_backoff = (self.snd.persist_backoff + 1).min(16);
            }
        }
        if self.timers.expire(Timer::Keepalive, now) {
            self.on_keepalive_timeout(now, ctr);
        }
    }

    fn on_retransmit_timeout(&mut self, now: Instant, ctr: &mut Counters) {
        let limit = match self.state {
            State::SynSent => self.cfg.syn_retries,
            State::SynReceived => self.cfg.synack_retries,
            _ => self.cfg.max_retries,
        };
        if self.snd.una == self.snd.max {
            return; // nothing outstanding (timer raced an ACK)
        }
        if self.snd.retries >= limit || self.user_timeout_expired(now) {
            self.time_out(ctr, "retransmissions exhausted");
            return;
        }
        self.snd.retries += 1;
        ctr.timeouts += 1;
        self.rtt.backoff();
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
        // once (under a closed window the persist timer takes over instead).
        if self.snd.wnd > 0 && self.state.is_synchronized() {
            self.arm_retransmit(now);
        }
    }

    fn user_timeout_expired(&self, now: Instant) -> bool {
        match (self.opts.user_timeout(), self.snd.rtx_since.get()) {
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
        let liveness = self.opts.liveness();
        if liveness.probes_sent >= ka.count {
            self.time_out(ctr, "keepalive: peer stopped answering");
            return;
        }
        liveness.probes_sent += 1;
        self.keepalive_due = true;
        ctr.keepalive_probes += 1;
        self.timers.arm(Timer::Keepalive, now + ka.interval);
    }

    pub(super) fn time_out(&mut self, ctr: &mut Counters, reason: &'static str) {
        ctr.abort_on_timeout += 1;
        if matches!(self.state, State::SynSent | State::SynReceived) {
            ctr.attempt_fails += 1;
        }
        self.error = Some(if self.soft_error {
            Error::Unreachable
        } else {
            Error::TimedOut
        });
        // Linux sends a RST when it gives up on an established connection.
        if self.state.is_synchronized() && self.state != State::TimeWait {
            self.pending_rst = Some(PendingRst {
                seq: self.snd.nxt,
                ack: Some(self.rcv.nxt),
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
        let delay = self
            .rcv
            .delack()
            .map_or(Duration::ZERO, |d| d.timeout(self.rtt.srtt()));
        if immediate || delay.is_zero() || self.cfg.delayed_ack.is_zero() {
            self.rcv.ack_now = true;
        } else if !self.timers.is_armed(Timer::DelayedAck) {
            self.timers.arm(Timer::DelayedAck, now + delay);
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
        let pto = match self.rtt.srtt() {
            Some(srtt) => {
                let one_segment = self.snd.max - self.snd.una <= self.snd.mss + 1;
                let extra = if one_segment {
                    self.cfg.rto_min
                } else {
                    Duration::from_millis(2)
                };
                srtt * 2 + extra
            }
            None => self.cfg.rto_initial,
        };
        self.timers.arm(Timer::LossProbe, (now + pto).min(rto_at));
    }

    /// Arm the retransmission timer if something is outstanding and it is not running. With
    /// a user timeout, it fires no later than the moment that timeout expires (as Linux
    /// clamps the RTO), so the abort is on time.
    pub(super) fn arm_retransmit(&mut self, now: Instant) {
        if self.snd.una != self.snd.max {
            if self.snd.rtx_since.get().is_none() {
                self.snd.rtx_since = Some(now).into();
            }
            if !self.timers.is_armed(Timer::Retransmit) {
                let mut at = now + self.rto();
                if let (Some(limit), Some(since)) =
                    (self.opts.user_timeout(), self.snd.rtx_since.get())
                {
                    at = at.min((since + limit).max(now));
                }
                self.timers.arm(Timer::Retransmit, at);
            }
            self.arm_loss_probe(now);
        } else {
            self.timers.stop(Timer::Retransmit);
            self.timers.stop(Timer::LossProbe);
        }
    }

    /// Arm (or stop) the persist timer (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17): data waits,
    /// nothing is in flight, and the peer's window is too small to send what waits (zero, or
    /// below one segment, where sender SWS avoidance holds back). When it fires, the sender
    /// probes a zero window with one byte or sends what fits ("override timeout", RFC 9293
    /// §3.8.6.2.1). "Nothing in flight" is SND.NXT = SND.UNA, which also covers a window the
    /// peer shrank to zero under outstanding data once the retransmission timer went back.
    pub(super) fn update_persist(&mut self, now: Instant) {
        let unsent = self.snd.unsent_len();
        let fin_waits = self.snd.fin_queued && self.snd.fin_seq.is_none();
        let wnd_blocked = (unsent > 0
            && (self.snd.wnd as usize) < unsent.min(self.snd.mss as usize))
            || (unsent == 0 && fin_waits && self.snd.wnd == 0);
        if self.state.is_synchronized() && wnd_blocked && self.snd.nxt == self.snd.una {
            if !self.timers.is_armed(Timer::Persist) {
                let base = self.rto().max(self.cfg.rto_min);
                let t = base
                    .saturating_mul(1 << self.snd.persist_backoff.min(10))
                    .min(self.cfg.rto_max);
                self.timers.arm(Timer::Persist, now + t);
            }
        } else {
            self.timers.stop(Timer::Persist);
            if !wnd_blocked {
                self.snd.persist_backoff = 0;
            }
        }
    }

    pub(super) fn arm_keepalive(&mut self, now: Instant) {
        if let Some(ka) = self.opts.keepalive() {
            self.timers.arm(Timer::Keepalive, now + ka.idle);
        }
    }
}
