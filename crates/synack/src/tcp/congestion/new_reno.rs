//! Reno (RFC 5681) with the arithmetic of Linux's `reno` (`tcp_cong.c`), counted in segments.
//!
//! * **Slow start**: cwnd grows by every ACKed segment, up to ssthresh; what is left of the
//!   ACK counts in congestion avoidance (RFC 5681 §3.1 eq. 2 with byte counting, RFC 3465,
//!   without its per-ACK limit L — a receiver or a GRO that coalesces ACKs sends stretch
//!   ACKs, and Linux counts all their segments too).
//! * **Congestion avoidance**: one segment per cwnd segments ACKed (RFC 5681 §3.1 eq. 3 by
//!   counting, Linux `tcp_cong_avoid_ai(cwnd, acked)`); a stretch ACK can add several.
//! * Growth only while the sender is cwnd-limited ([`AckSample::cwnd_limited`]).
//! * **Congestion event and timeout**: ssthresh = max(cwnd / 2, 2) segments (Linux
//!   `tcp_reno_ssthresh`; RFC 5681 eq. 4 uses FlightSize, which equals cwnd for a
//!   cwnd-limited sender). Recovery itself (NewReno's partial ACKs, RFC 6582, or PRR) is the
//!   connection's.
//! * **Undo**: cwnd = max(cwnd, prior cwnd), ssthresh = max(ssthresh, prior ssthresh).

use super::window::Window;
use super::{AckSample, Algorithm, CongestionControl};
use crate::time::{Duration, Instant};

/// Reno / NewReno congestion control for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReno {
    w: Window,
}

impl NewReno {
    /// Reno for a sender MSS of `mss` (0 is treated as 1) with an initial window of
    /// `initial_window_segments` segments, or RFC 5681's IW when that is 0 (see
    /// [`initial_window`](super::initial_window)). ssthresh starts "arbitrarily high".
    pub fn new(mss: u32, initial_window_segments: u32) -> NewReno {
        NewReno {
            w: Window::new(mss, initial_window_segments),
        }
    }

    /// The sender MSS (SMSS) the window arithmetic uses.
    pub fn mss(&self) -> u32 {
        self.w.mss()
    }

    /// cwnd in segments.
    pub fn cwnd_segments(&self) -> u32 {
        self.w.cwnd()
    }

    /// True while cwnd < ssthresh.
    pub fn in_slow_start(&self) -> bool {
        self.w.in_slow_start()
    }

    /// Linux `tcp_reno_ssthresh`: half of cwnd, at least 2 segments.
    fn reduced_ssthresh(&self) -> u32 {
        (self.w.cwnd() >> 1).max(2)
    }
}

impl CongestionControl for NewReno {
    fn name(&self) -> &'static str {
        Algorithm::NewReno.name()
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::NewReno
    }

    fn start_over(&mut self, mss: u32, initial_window_segments: u32) {
        *self = NewReno::new(mss, initial_window_segments);
    }

    fn cwnd(&self) -> u32 {
        self.w.cwnd_bytes()
    }

    fn ssthresh(&self) -> u32 {
        self.w.ssthresh_bytes()
    }

    fn set_mss(&mut self, mss: u32) {
        self.w.set_mss(mss);
    }

    fn on_ack(&mut self, ack: &AckSample) {
        self.w.note_delivery(ack.segments);
        if !ack.cwnd_limited || ack.segments == 0 {
            return;
        }
        let mut acked = ack.segments;
        if self.w.in_slow_start() {
            acked = self.w.slow_start(acked);
            if acked == 0 {
                return;
            }
        }
        let cwnd = self.w.cwnd();
        self.w.additive_increase(cwnd, acked);
    }

    fn on_congestion_event(&mut self, _now: Instant, _in_flight: u32) {
        let ssthresh = self.reduced_ssthresh();
        self.w.begin_reduction(ssthresh);
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.w.set_cwnd_bytes(cwnd);
    }

    fn set_ssthresh(&mut self, ssthresh: u32) {
        self.w.set_ssthresh_bytes(ssthresh);
    }

    fn on_rto(&mut self, _now: Instant, _in_flight: u32) {
        let ssthresh = self.w.rto_sets_ssthresh().then(|| self.reduced_ssthresh());
        self.w.enter_loss(ssthresh);
    }

    fn undo(&mut self) {
        self.w.undo();
    }

    fn on_tx_start(&mut self, _flight: &super::Flight, _idle: Duration) {}

    fn on_tx_start_at(&mut self, _now: Instant, _idle: Duration) -> bool {
        true
    }

    fn on_idle_restart(&mut self, _now: Instant, idle: Duration, rto: Duration) {
        self.w.idle_restart(idle, rto);
    }

    fn pacing_rate(&self, p: super::Pacing) -> Option<u64> {
        self.w.pacing_rate(p)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util;
    use super::*;

    const MSS: u32 = 1000;
    const RTO: Duration = Duration::from_millis(300);

    fn ack(cc: &mut NewReno, segments: u32) {
        cc.on_ack(&test_util::ack(0, segments, MSS, 0));
    }

    #[test]
    fn starts_at_initial_window() {
        let cc = NewReno::new(1460, 10);
        assert_eq!(cc.cwnd(), 14_600);
        assert_eq!(cc.ssthresh(), u32::MAX);
        assert_eq!(cc.mss(), 1460);
        assert!(cc.in_slow_start());
        assert_eq!(NewReno::new(1460, 0).cwnd(), 4_380);
        // MSS 0 is treated as 1.
        assert_eq!(NewReno::new(0, 10).cwnd(), 10);
    }

    #[test]
    fn slow_start_counts_segments() {
        let mut cc = NewReno::new(MSS, 10);
        ack(&mut cc, 1);
        assert_eq!(cc.cwnd_segments(), 11);
        ack(&mut cc, 2); // delayed ACK of two segments
        assert_eq!(cc.cwnd_segments(), 13);
        ack(&mut cc, 5); // stretch ACK: every segment counts (as Linux)
        assert_eq!(cc.cwnd_segments(), 18);
        ack(&mut cc, 0); // nothing delivered: nothing
        assert_eq!(cc.cwnd_segments(), 18);
        assert_eq!(cc.cwnd(), 18_000);
        assert_eq!(cc.ssthresh(), u32::MAX);
    }

    /// The slow_start/slow-start-ack-per-{2,4}pkt packetdrill scripts: IW 10, ACKs of 2 or 4
    /// segments while cwnd-limited, cwnd 20 once the first window is acknowledged.
    #[test]
    fn slow_start_packetdrill_scripts() {
        for per_ack in [2, 4] {
            let mut cc = NewReno::new(MSS, 10);
            let mut acked = 0;
            while acked < 10 {
                ack(&mut cc, per_ack.min(10 - acked));
                acked += per_ack.min(10 - acked);
            }
            assert_eq!(cc.cwnd_segments(), 20, "{per_ack} per ACK");
        }
    }

    #[test]
    fn not_cwnd_limited_does_not_grow() {
        let mut cc = NewReno::new(MSS, 10);
        let mut a = test_util::ack(0, 4, MSS, 0);
        a.cwnd_limited = false;
        for _ in 0..100 {
            cc.on_ack(&a);
        }
        assert_eq!(cc.cwnd_segments(), 10);
        // The same in congestion avoidance.
        cc.on_congestion_event(Instant::ZERO, 10 * MSS);
        cc.set_cwnd(cc.ssthresh());
        for _ in 0..100 {
            cc.on_ack(&a);
        }
        assert_eq!(cc.cwnd_segments(), 5);
    }

    #[test]
    fn congestion_avoidance_one_segment_per_window() {
        let mut cc = NewReno::new(MSS, 10);
        ack(&mut cc, 2); // cwnd 12
        cc.on_congestion_event(Instant::ZERO, 12 * MSS);
        assert_eq!(cc.ssthresh(), 6_000); // max(12/2, 2)
        assert_eq!(cc.cwnd_segments(), 12, "cwnd is the connection's to reduce");
        cc.set_cwnd(4 * MSS); // e.g. PRR left it at 4
        // Slow start 4 -> 6, the leftover of the ACK goes to congestion avoidance.
        ack(&mut cc, 3);
        assert_eq!(cc.cwnd_segments(), 6);
        assert!(!cc.in_slow_start());
        // Counter holds 1; 5 more segments make 6 = cwnd: +1.
        for _ in 0..4 {
            ack(&mut cc, 1);
        }
        assert_eq!(cc.cwnd_segments(), 6);
        ack(&mut cc, 1);
        assert_eq!(cc.cwnd_segments(), 7);
        // Next increase needs 7.
        for _ in 0..6 {
            ack(&mut cc, 1);
        }
        assert_eq!(cc.cwnd_segments(), 7);
        ack(&mut cc, 1);
        assert_eq!(cc.cwnd_segments(), 8);
        // A stretch ACK of 20 with cwnd 8: +2, 4 left in the counter.
        ack(&mut cc, 20);
        assert_eq!(cc.cwnd_segments(), 10);
        // The 4 left over count towards the next increase: 6 more needed.
        for _ in 0..5 {
            ack(&mut cc, 1);
        }
        assert_eq!(cc.cwnd_segments(), 10);
        ack(&mut cc, 1);
        assert_eq!(cc.cwnd_segments(), 11);
    }

    #[test]
    fn small_window_uses_two_segment_floor() {
        let mut cc = NewReno::new(MSS, 3);
        cc.on_congestion_event(Instant::ZERO, 3 * MSS);
        assert_eq!(cc.ssthresh(), 2_000); // max(3/2, 2)
        cc.set_cwnd(0);
        assert_eq!(cc.cwnd(), MSS, "never below one segment");
    }

    #[test]
    fn rto_collapse_and_held_ssthresh() {
        let mut cc = NewReno::new(MSS, 10);
        ack(&mut cc, 2);
        cc.on_rto(Instant::ZERO, 12 * MSS);
        assert_eq!(cc.ssthresh(), 6_000);
        assert_eq!(cc.cwnd(), 1_000);
        // The same data times out again: ssthresh is kept (RFC 5681 §3.1, Linux).
        cc.on_rto(Instant::ZERO, 12 * MSS);
        assert_eq!(cc.ssthresh(), 6_000);
        assert_eq!(cc.cwnd(), 1_000);
        // Slow start after the timeout, one ACK per segment: 1, 2, ..., 6, then CA.
        for expected in 2..=6 {
            ack(&mut cc, 1);
            assert_eq!(cc.cwnd_segments(), expected);
        }
        assert!(!cc.in_slow_start());
        // New data was acknowledged, so a later timeout is a new loss: half of cwnd 6.
        cc.on_rto(Instant::ZERO, 6 * MSS);
        assert_eq!(cc.ssthresh(), 3_000);
        assert_eq!(cc.cwnd(), 1_000);
    }

    #[test]
    fn rto_during_recovery_keeps_its_ssthresh() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_congestion_event(Instant::ZERO, 10 * MSS);
        cc.set_cwnd(8 * MSS);
        cc.on_rto(Instant::ZERO, 8 * MSS);
        assert_eq!(cc.ssthresh(), 5_000, "not max(8/2, 2)");
        assert_eq!(cc.cwnd(), 1_000);
        // Undo restores what was before the recovery episode.
        cc.undo();
        assert_eq!(cc.cwnd(), 10_000);
        assert_eq!(cc.ssthresh(), u32::MAX);
    }

    #[test]
    fn undo_restores_prior_window_once() {
        let mut cc = NewReno::new(MSS, 10);
        for _ in 0..10 {
            ack(&mut cc, 2); // cwnd 30
        }
        cc.on_congestion_event(Instant::ZERO, 30 * MSS);
        cc.set_cwnd(15 * MSS);
        // First recovery: prior ssthresh was infinite.
        cc.undo();
        assert_eq!(cc.cwnd_segments(), 30);
        assert_eq!(cc.ssthresh(), u32::MAX);
        // Second episode from a finite ssthresh: prior ssthresh = max(ssthresh, ¾ cwnd).
        cc.on_congestion_event(Instant::ZERO, 30 * MSS);
        assert_eq!(cc.ssthresh(), 15_000);
        cc.set_cwnd(24 * MSS); // say the window grew back past ssthresh
        ack(&mut cc, 1); // recovery over, congestion avoidance
        assert_eq!(cc.cwnd_segments(), 24);
        cc.on_congestion_event(Instant::ZERO, 24 * MSS);
        assert_eq!(cc.ssthresh(), 12_000);
        cc.set_cwnd(12 * MSS);
        cc.undo();
        assert_eq!(cc.cwnd_segments(), 24);
        assert_eq!(cc.ssthresh(), 18_000, "max(15, ¾ × 24 = 18)");
        // Nothing left to undo.
        cc.set_cwnd(9 * MSS);
        cc.undo();
        assert_eq!(cc.cwnd_segments(), 9);
        assert_eq!(cc.ssthresh(), 18_000);
        // An undo without any episode does nothing.
        let mut fresh = NewReno::new(MSS, 10);
        fresh.undo();
        assert_eq!(fresh.cwnd(), 10_000);
    }

    #[test]
    fn undo_after_rto() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_rto(Instant::ZERO, 10 * MSS);
        ack(&mut cc, 1);
        assert_eq!(cc.cwnd_segments(), 2);
        cc.undo(); // e.g. F-RTO or timestamps showed the timeout was spurious
        assert_eq!(cc.cwnd_segments(), 10);
        assert_eq!(cc.ssthresh(), u32::MAX);
    }

    #[test]
    fn idle_restart_and_tx_start() {
        let mut cc = NewReno::new(MSS, 10);
        for _ in 0..5 {
            ack(&mut cc, 2);
        }
        assert_eq!(cc.cwnd_segments(), 20);
        cc.on_tx_start(
            &super::super::Flight::idle(Instant::ZERO),
            Duration::from_secs(5),
        );
        assert_eq!(cc.cwnd_segments(), 20, "Reno ignores TX_START");
        // 1 s idle with RTO 300 ms: 20 -> 10, the restart window.
        cc.on_idle_restart(Instant::ZERO, Duration::from_secs(1), RTO);
        assert_eq!(cc.cwnd_segments(), 10);
        // With RFC 5681's IW (4 segments for SMSS 1000).
        let mut cc = NewReno::new(MSS, 0);
        for _ in 0..3 {
            ack(&mut cc, 2);
        }
        assert_eq!(cc.cwnd_segments(), 10);
        cc.on_idle_restart(Instant::ZERO, Duration::from_secs(10), RTO);
        assert_eq!(cc.cwnd_segments(), 4);
    }

    #[test]
    fn set_mss_before_any_ack_recomputes_iw() {
        let mut cc = NewReno::new(536, 10);
        assert_eq!(cc.cwnd(), 5_360);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14_600);
        assert_eq!(cc.mss(), 1460);
        let mut cc = NewReno::new(536, 0);
        assert_eq!(cc.cwnd(), 2_144); // 4 segments
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 4_380); // 3 segments
        // 0 is ignored.
        cc.set_mss(0);
        assert_eq!(cc.mss(), 1460);
        assert_eq!(cc.cwnd(), 4_380);
    }

    #[test]
    fn set_mss_later_keeps_segments() {
        let mut cc = NewReno::new(MSS, 10);
        ack(&mut cc, 2);
        assert_eq!(cc.cwnd(), 12_000);
        // PMTU shrinks the MSS to 500: cwnd keeps 12 segments, ssthresh stays "infinite".
        cc.set_mss(500);
        assert_eq!(cc.cwnd(), 6_000);
        assert_eq!(cc.ssthresh(), u32::MAX);
        cc.on_congestion_event(Instant::ZERO, 6_000);
        assert_eq!(cc.ssthresh(), 3_000);
        cc.set_mss(1000);
        assert_eq!(cc.ssthresh(), 6_000);
        assert_eq!(cc.cwnd(), 12_000);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let mut cc = NewReno::new(u32::MAX / 2, 10);
        assert_eq!(cc.cwnd(), u32::MAX);
        cc.on_ack(&test_util::ack(0, u32::MAX / 4, 1, 0));
        assert_eq!(cc.cwnd(), u32::MAX);
        cc.on_congestion_event(Instant::ZERO, u32::MAX);
        cc.set_cwnd(u32::MAX);
        cc.on_idle_restart(Instant::ZERO, Duration::MAX, RTO);
        cc.on_rto(Instant::ZERO, u32::MAX);
        assert_eq!(cc.cwnd(), u32::MAX / 2);
        let mut cc = NewReno::new(1, 10);
        for _ in 0..3 {
            cc.on_ack(&test_util::ack(0, u32::MAX, 1, 0));
        }
        assert_eq!(cc.cwnd(), u32::MAX);
    }
}
