//! The window both algorithms share, counted in segments as Linux counts it: cwnd and its
//! fractional counter, ssthresh, what undo needs, and the generic steps of `tcp_cong.c`
//! (slow start with its leftover, additive increase, restart after idle, pacing rate).
//!
//! Algorithms supply only what differs: the ssthresh after a congestion event and the number
//! of ACKed segments per one-segment increase in congestion avoidance.

use super::initial_window_segments;
use crate::time::{Duration, Instant};

/// ssthresh before the first congestion event: "arbitrarily high" (RFC 5681 §3.1).
pub(crate) const INFINITE: u32 = u32::MAX;

/// What [`Window::undo`] restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Undo {
    /// cwnd when the episode began (Linux `prior_cwnd`).
    cwnd: u32,
    /// ssthresh as it effectively stood then (Linux `prior_ssthresh`, from
    /// `tcp_current_ssthresh`).
    ssthresh: u32,
}

/// Segment-counted congestion window (Linux `snd_cwnd`, `snd_cwnd_cnt`, `snd_ssthresh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    /// SMSS in bytes, never zero.
    mss: u32,
    /// Configured initial window in segments (0: RFC 5681's formula).
    iw_config: u32,
    /// cwnd in segments, at least 1.
    cwnd: u32,
    /// ACKed segments counted towards the next additive increase (Linux `snd_cwnd_cnt`).
    cwnd_cnt: u32,
    /// ssthresh in segments, or [`INFINITE`].
    ssthresh: u32,
    undo: Option<Undo>,
    /// A congestion event reduced ssthresh and no ACK outside recovery has arrived since: an
    /// RTO now interrupts that recovery episode.
    in_reduction: bool,
    /// A timeout set ssthresh and nothing was acknowledged since: a further timeout is the
    /// same data timing out again.
    rto_pending: bool,
    /// Nothing delivered and no congestion yet: cwnd is still the initial window and follows
    /// RFC 5681's formula when the MSS changes.
    pristine: bool,
}

impl Window {
    /// The initial window for `mss` (0 is treated as 1) and `iw` segments (0: RFC 5681).
    pub(crate) fn new(mss: u32, iw: u32) -> Window {
        let mss = mss.max(1);
        Window {
            mss,
            iw_config: iw,
            cwnd: initial_window_segments(mss, iw),
            cwnd_cnt: 0,
            ssthresh: INFINITE,
            undo: None,
            in_reduction: false,
            rto_pending: false,
            pristine: true,
        }
    }

    pub(crate) fn mss(&self) -> u32 {
        self.mss
    }

    /// cwnd in segments.
    pub(crate) fn cwnd(&self) -> u32 {
        self.cwnd
    }

    pub(crate) fn cwnd_bytes(&self) -> u32 {
        self.cwnd.saturating_mul(self.mss)
    }

    pub(crate) fn ssthresh_bytes(&self) -> u32 {
        self.ssthresh.saturating_mul(self.mss)
    }

    /// Linux `tcp_in_slow_start`: cwnd < ssthresh.
    pub(crate) fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// True until the first congestion event or timeout (ssthresh still infinite).
    pub(crate) fn initial_slow_start(&self) -> bool {
        self.ssthresh == INFINITE
    }

    /// The MSS changed: the window keeps its size in segments; a window still at the initial
    /// value follows RFC 5681's formula for the new MSS. 0 is ignored.
    pub(crate) fn set_mss(&mut self, mss: u32) {
        if mss == 0 {
            return;
        }
        self.mss = mss;
        if self.pristine {
            self.cwnd = initial_window_segments(mss, self.iw_config);
        }
    }

    /// Bookkeeping for every ACK outside recovery that delivered data: the recovery episode
    /// (if any) is over, and a later timeout is a new loss.
    pub(crate) fn note_delivery(&mut self, segments: u32) {
        if segments > 0 {
            self.pristine = false;
            self.in_reduction = false;
            self.rto_pending = false;
        }
    }

    /// Slow start (RFC 5681 §3.1 by counting segments, as Linux's `tcp_slow_start`): cwnd
    /// grows by `acked` segments but not beyond ssthresh; returns the segments left over for
    /// congestion avoidance.
    pub(crate) fn slow_start(&mut self, acked: u32) -> u32 {
        let grown = self.cwnd.saturating_add(acked).min(self.ssthresh);
        let used = grown.saturating_sub(self.cwnd);
        self.cwnd = grown.max(self.cwnd);
        acked - used
    }

    /// Additive increase (Linux `tcp_cong_avoid_ai`): one segment for every `w` segments
    /// ACKed; credit earned at a larger `w` is applied as one segment first.
    pub(crate) fn additive_increase(&mut self, w: u32, acked: u32) {
        let w = w.max(1);
        if self.cwnd_cnt >= w {
            self.cwnd_cnt = 0;
            self.cwnd = self.cwnd.saturating_add(1);
        }
        self.cwnd_cnt = self.cwnd_cnt.saturating_add(acked);
        if self.cwnd_cnt >= w {
            let delta = self.cwnd_cnt / w;
            self.cwnd_cnt -= delta * w;
            self.cwnd = self.cwnd.saturating_add(delta);
        }
    }

    /// Linux `tcp_current_ssthresh`: inside a reduction ssthresh; otherwise the larger of
    /// ssthresh and ¾ cwnd (where the connection was heading).
    fn current_ssthresh(&self) -> u32 {
        if self.in_reduction {
            self.ssthresh
        } else {
            self.ssthresh
                .max((self.cwnd >> 1).saturating_add(self.cwnd >> 2))
        }
    }

    /// A congestion event (Linux `tcp_init_cwnd_reduction`): remember cwnd and the current
    /// ssthresh for undo, set the new ssthresh (at least 2 segments), and restart the
    /// additive-increase counter. cwnd itself is the connection's to reduce.
    pub(crate) fn begin_reduction(&mut self, ssthresh: u32) {
        self.save_undo();
        self.ssthresh = ssthresh.max(2);
        self.cwnd_cnt = 0;
        self.in_reduction = true;
        self.pristine = false;
    }

    fn save_undo(&mut self) {
        self.undo = Some(Undo {
            cwnd: self.cwnd,
            ssthresh: self.current_ssthresh(),
        });
    }

    /// Slow start ends here without a congestion event (HyStart++): ssthresh = cwnd.
    pub(crate) fn end_slow_start(&mut self) {
        self.ssthresh = self.cwnd.max(2);
    }

    /// Whether a timeout now computes a new ssthresh (Linux `tcp_enter_loss`): not when it
    /// repeats before anything new was acknowledged, and not when it interrupts a recovery
    /// episode, which already reduced ssthresh.
    pub(crate) fn rto_sets_ssthresh(&self) -> bool {
        !self.rto_pending && !self.in_reduction
    }

    /// A retransmission timeout. With `ssthresh` (from [`rto_sets_ssthresh`] being true) undo
    /// state is saved and ssthresh set; cwnd becomes the loss window, one segment
    /// (RFC 5681 §3.1).
    ///
    /// [`rto_sets_ssthresh`]: Window::rto_sets_ssthresh
    pub(crate) fn enter_loss(&mut self, ssthresh: Option<u32>) {
        if let Some(ssthresh) = ssthresh {
            self.save_undo();
            self.ssthresh = ssthresh.max(2);
        }
        self.cwnd = 1;
        self.cwnd_cnt = 0;
        self.rto_pending = true;
        self.in_reduction = false;
        self.pristine = false;
    }

    /// cwnd set by the connection in bytes: whole segments, rounded up, at least one.
    pub(crate) fn set_cwnd_bytes(&mut self, bytes: u32) {
        self.cwnd = bytes.div_ceil(self.mss).max(1);
        self.pristine = false;
    }

    /// ssthresh set from outside in bytes (another controller's, on a switch of algorithm):
    /// whole segments, at least two; `u32::MAX` is infinite.
    pub(crate) fn set_ssthresh_bytes(&mut self, bytes: u32) {
        self.ssthresh = if bytes == u32::MAX {
            INFINITE
        } else {
            (bytes / self.mss).max(2)
        };
    }

    /// Linux `tcp_undo_cwnd_reduction` with `tcp_reno_undo_cwnd`: cwnd = max(cwnd, prior
    /// cwnd), ssthresh = max(ssthresh, prior ssthresh). Once per episode. Returns whether
    /// there was anything to undo.
    pub(crate) fn undo(&mut self) -> bool {
        let Some(u) = self.undo.take() else {
            return false;
        };
        self.cwnd = self.cwnd.max(u.cwnd);
        self.ssthresh = self.ssthresh.max(u.ssthresh);
        self.in_reduction = false;
        self.rto_pending = false;
        true
    }

    /// Restart after idle (RFC 5681 §4.1 as Linux's `tcp_cwnd_restart`): ssthresh becomes the
    /// current ssthresh (at least ¾ cwnd), cwnd is halved for every full RTO of `idle` beyond
    /// the first while above the restart window `min(IW, cwnd)`, and never goes below it.
    pub(crate) fn idle_restart(&mut self, idle: Duration, rto: Duration) {
        let restart = initial_window_segments(self.mss, self.iw_config).min(self.cwnd);
        self.ssthresh = self.current_ssthresh();
        let rto = rto.max(Duration::from_micros(1));
        let mut left = idle;
        let mut cwnd = self.cwnd;
        // Each loop takes one RTO off the idle time; at most 32 halvings empty a u32.
        for _ in 0..32 {
            left = left.saturating_sub(rto);
            if left.is_zero() || cwnd <= restart {
                break;
            }
            cwnd >>= 1;
        }
        self.cwnd = cwnd.max(restart).max(1);
    }

    /// Linux `tcp_update_pacing_rate`: mss × max(cwnd, packets out) / srtt, times the
    /// slow-start ratio while cwnd < ssthresh/2 and the other one otherwise, in bytes per
    /// second. A zero srtt counts as 1 µs.
    pub(crate) fn pacing_rate(&self, p: super::Pacing) -> Option<u64> {
        let srtt = p.srtt?.as_micros().max(1);
        let percent = u128::from(if self.cwnd < self.ssthresh / 2 {
            p.ss_ratio
        } else {
            p.ca_ratio
        });
        let segs = u128::from(self.cwnd.max(p.packets_out));
        let rate = u128::from(self.mss) * segs * percent * 1_000_000 / 100 / srtt;
        Some(u64::try_from(rate).unwrap_or(u64::MAX))
    }
}

/// Linux's jiffies at HZ = 1000: whole milliseconds of `now`.
pub(crate) fn jiffies(now: Instant) -> u64 {
    now.total_millis()
}

#[cfg(test)]
mod tests {
    use super::super::Pacing;
    use super::*;

    #[test]
    fn slow_start_stops_at_ssthresh_and_returns_leftover() {
        let mut w = Window::new(1000, 10);
        assert_eq!(w.slow_start(3), 0);
        assert_eq!(w.cwnd(), 13);
        w.begin_reduction(15);
        assert_eq!(w.ssthresh, 15);
        assert_eq!(w.slow_start(5), 3);
        assert_eq!(w.cwnd(), 15);
        assert!(!w.in_slow_start());
        // Above ssthresh (after a set_cwnd) slow start adds nothing and returns everything.
        w.set_cwnd_bytes(20_000);
        assert_eq!(w.slow_start(4), 4);
        assert_eq!(w.cwnd(), 20);
    }

    #[test]
    fn additive_increase_like_tcp_cong_avoid_ai() {
        let mut w = Window::new(1000, 10);
        // w = 10: one segment per 10 ACKed.
        for _ in 0..9 {
            w.additive_increase(10, 1);
        }
        assert_eq!(w.cwnd(), 10);
        w.additive_increase(10, 1);
        assert_eq!(w.cwnd(), 11);
        // A stretch ACK of 25 with w = 11: +2, 3 left over.
        w.additive_increase(11, 25);
        assert_eq!(w.cwnd(), 13);
        // Credit earned at a larger w: with w = 2 and 3 counted, one segment first, then +0
        // for this ACK (counter 1 < 2).
        w.additive_increase(2, 1);
        assert_eq!(w.cwnd(), 14);
        w.additive_increase(2, 1);
        assert_eq!(w.cwnd(), 15);
    }

    #[test]
    fn set_cwnd_rounds_up_and_floors_at_one() {
        let mut w = Window::new(1000, 10);
        w.set_cwnd_bytes(7_000);
        assert_eq!(w.cwnd_bytes(), 7_000);
        w.set_cwnd_bytes(7_001);
        assert_eq!(w.cwnd_bytes(), 8_000);
        w.set_cwnd_bytes(0);
        assert_eq!(w.cwnd_bytes(), 1_000);
    }

    #[test]
    fn idle_restart_halves_per_rto() {
        let rto = Duration::from_millis(300);
        // The slow-start-after-idle packetdrill script: cwnd 36, 2 s idle, RTO 300 ms:
        // 36 -> 18 -> 9, floored at the restart window 10.
        let mut w = Window::new(1000, 10);
        w.slow_start(26);
        assert_eq!(w.cwnd(), 36);
        w.idle_restart(Duration::from_secs(2), rto);
        assert_eq!(w.cwnd(), 10);
        assert_eq!(w.ssthresh, INFINITE);
        // Idle of 2.5 RTOs: two halvings (80 -> 40 -> 20), ssthresh becomes ¾ cwnd = 60 where
        // that is more than it was.
        let mut w = Window::new(1000, 10);
        w.begin_reduction(50);
        w.set_cwnd_bytes(80_000);
        w.note_delivery(1);
        w.idle_restart(Duration::from_millis(750), rto);
        assert_eq!(w.cwnd(), 20);
        assert_eq!(w.ssthresh, 60);
        // Exactly one RTO idle: no halving; exactly two: one (Linux halves while
        // idle - k*rto > 0).
        let mut w = Window::new(1000, 10);
        w.set_cwnd_bytes(40_000);
        w.idle_restart(Duration::from_millis(300), rto);
        assert_eq!(w.cwnd(), 40);
        w.idle_restart(Duration::from_millis(600), rto);
        assert_eq!(w.cwnd(), 20);
        // A window below IW stays.
        w.set_cwnd_bytes(4_000);
        w.idle_restart(Duration::from_secs(100), rto);
        assert_eq!(w.cwnd(), 4);
        // A zero RTO does not loop forever.
        w.set_cwnd_bytes(u32::MAX);
        w.idle_restart(Duration::from_secs(1), Duration::ZERO);
        assert_eq!(w.cwnd(), 10);
    }

    #[test]
    fn pacing_rate_linux_ratios() {
        let mut w = Window::new(1000, 10);
        // Slow start: 10 segments per 100 ms, doubled: 200 kB/s.
        assert_eq!(
            w.pacing_rate(Pacing::linux(Some(Duration::from_millis(100)))),
            Some(200_000)
        );
        assert_eq!(w.pacing_rate(Pacing::linux(None)), None);
        // cwnd >= ssthresh/2: 1.2x.
        w.begin_reduction(20);
        assert_eq!(
            w.pacing_rate(Pacing::linux(Some(Duration::from_millis(100)))),
            Some(120_000)
        );
        // Zero srtt is 1 µs; no overflow.
        w.set_cwnd_bytes(u32::MAX);
        assert!(w.pacing_rate(Pacing::linux(Some(Duration::ZERO))).unwrap() > 0);
    }
}
