//! NewReno: RFC 5681 slow start, congestion avoidance and fast recovery, with RFC 6582's
//! partial-ACK handling.
//!
//! Choices where the RFCs leave room (all in bytes):
//!
//! * **Slow start** grows cwnd by every newly acknowledged byte, as Linux does
//!   (`tcp_slow_start` adds every acknowledged segment): RFC 5681 §3.1 eq. 2 generalised by
//!   Appropriate Byte Counting (RFC 3465) without its per-ACK limit L. The limit matters: a
//!   receiver that processes a burst before answering (GRO, a batched device read, our own
//!   stacks on SimNet) sends one stretch ACK for many segments, and with L = 2·SMSS slow start
//!   would crawl instead of doubling each round trip. In slow start following a retransmission
//!   timeout L is 1·SMSS, as RFC 3465 asks, because ACKs then can cover data that had already
//!   arrived.
//!   Slow start stops at ssthresh; the part of the increment beyond it counts towards
//!   congestion avoidance.
//! * **Congestion avoidance** (cwnd >= ssthresh) uses byte counting, RFC 5681 §3.1's
//!   recommended method (described in RFC 3465): acknowledged bytes accumulate, and each time
//!   they reach cwnd the counter drops by cwnd and cwnd grows by one SMSS — at most one SMSS per
//!   ACK, about one per round trip.
//! * **Recovery**: ssthresh = max(FlightSize/2, 2·SMSS) (eq. 4), cwnd = ssthresh + 3·SMSS,
//!   plus one SMSS per further duplicate ACK (RFC 5681 §3.2 steps 2-4); partial ACKs deflate
//!   by the bytes acked and add back one SMSS if at least one SMSS was acked (RFC 6582 §3.2
//!   step 3), never below one SMSS; the full ACK sets
//!   cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS) (RFC 6582 option (1)).
//! * **RTO**: ssthresh per eq. 4, cwnd = LW = 1·SMSS (RFC 5681 §3.1). If the timer fires again
//!   before any new data is acknowledged, it is the same segment timing out again, and
//!   ssthresh is held constant (RFC 5681 §3.1) instead of collapsing to 2·SMSS.

use crate::tcp::congestion::{CongestionControl, initial_window};
use crate::time::{Duration, Instant};

/// NewReno congestion control state for one connection (RFC 5681, RFC 6582).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReno {
    /// SMSS, never zero.
    mss: u32,
    /// Configured initial window in segments (0: RFC 5681's formula).
    iw_segments: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance towards the next one-SMSS increase.
    ca_acked: u32,
    /// Between `on_enter_recovery` and `on_exit_recovery` / `on_rto`.
    in_recovery: bool,
    /// ssthresh was set by an RTO and no new data has been acknowledged since: a further RTO
    /// is the same segment timing out again (RFC 5681 §3.1: ssthresh held constant).
    rto_pending: bool,
    /// In slow start following an RTO: L = 1·SMSS (RFC 3465).
    after_rto: bool,
    /// Nothing acknowledged and no congestion yet: cwnd is still the initial window, and is
    /// recomputed (not scaled) when the MSS changes.
    pristine: bool,
}

impl NewReno {
    /// NewReno for a sender MSS of `mss` (0 is treated as 1) with an initial window of
    /// `initial_window_segments` segments, or RFC 5681's IW when that is 0 (see
    /// [`initial_window`]). ssthresh starts "arbitrarily high" (u32::MAX, RFC 5681 §3.1).
    pub fn new(mss: u32, initial_window_segments: u32) -> NewReno {
        let mss = mss.max(1);
        NewReno {
            mss,
            iw_segments: initial_window_segments,
            cwnd: initial_window(mss, initial_window_segments),
            ssthresh: u32::MAX,
            ca_acked: 0,
            in_recovery: false,
            rto_pending: false,
            after_rto: false,
            pristine: true,
        }
    }

    /// The sender MSS (SMSS) the window arithmetic uses.
    pub fn mss(&self) -> u32 {
        self.mss
    }

    /// True between entering fast recovery and the full ACK (or an RTO).
    pub fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// True while cwnd is below ssthresh (RFC 5681 §3.1: slow start; at equality we use
    /// congestion avoidance).
    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// RFC 5681 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS).
    fn loss_ssthresh(&self, in_flight: u32) -> u32 {
        (in_flight / 2).max(self.mss.saturating_mul(2))
    }

    /// Congestion avoidance by byte counting (RFC 5681 §3.1, RFC 3465).
    fn congestion_avoidance(&mut self, bytes_acked: u32) {
        self.ca_acked = self.ca_acked.saturating_add(bytes_acked);
        if self.ca_acked >= self.cwnd {
            self.ca_acked -= self.cwnd;
            // MUST NOT increment by more than SMSS per ACK (RFC 5681 §3.1).
            self.cwnd = self.cwnd.saturating_add(self.mss);
        }
    }
}

/// `value * new / old`, saturating; `old` is never zero here.
fn scale(value: u32, new: u32, old: u32) -> u32 {
    let scaled = u64::from(value) * u64::from(new) / u64::from(old.max(1));
    u32::try_from(scaled).unwrap_or(u32::MAX)
}

impl CongestionControl for NewReno {
    fn name(&self) -> &'static str {
        "newreno"
    }

    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    /// Before anything was acknowledged, cwnd becomes the initial window for the new MSS.
    /// Afterwards cwnd, ssthresh and the byte counter keep their size in segments: they are
    /// scaled by new/old (RFC 5681 §3.1: on a smaller PMTU-derived MSS "cwnd SHOULD be reduced
    /// by the ratio of the old segment size to the new segment size"), with cwnd at least one
    /// SMSS. An MSS of 0 is ignored.
    fn set_mss(&mut self, mss: u32) {
        if mss == 0 || mss == self.mss {
            return;
        }
        let old = self.mss;
        self.mss = mss;
        if self.pristine {
            self.cwnd = initial_window(mss, self.iw_segments);
            return;
        }
        self.cwnd = scale(self.cwnd, mss, old).max(mss);
        if self.ssthresh != u32::MAX {
            self.ssthresh = scale(self.ssthresh, mss, old);
        }
        self.ca_acked = scale(self.ca_acked, mss, old);
    }

    fn on_ack(&mut self, _now: Instant, bytes_acked: u32, _in_flight: u32, _rtt: Option<Duration>) {
        if bytes_acked == 0 {
            return;
        }
        self.pristine = false;
        self.rto_pending = false;
        let mut for_ca = bytes_acked;
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 eq. 2 by byte counting; RFC 3465's limit L only after an RTO.
            let limit = if self.after_rto { self.mss } else { u32::MAX };
            let increase = bytes_acked.min(limit);
            let room = self.ssthresh - self.cwnd;
            if increase < room {
                self.cwnd += increase;
                return;
            }
            // Slow start ends at ssthresh; the rest of this ACK's increase is counted in
            // congestion avoidance.
            self.cwnd = self.ssthresh;
            self.after_rto = false;
            for_ca = increase - room;
            if for_ca == 0 {
                return;
            }
        }
        self.congestion_avoidance(for_ca);
    }

    fn on_enter_recovery(&mut self, _now: Instant, in_flight: u32) {
        // RFC 5681 §3.2 step 2 (RFC 6582 §3.2 step 2 has already checked `recover`).
        self.ssthresh = self.loss_ssthresh(in_flight);
        // RFC 5681 §3.2 step 3: account for the three segments that left the network.
        self.cwnd = self.ssthresh.saturating_add(self.mss.saturating_mul(3));
        self.ca_acked = 0;
        self.in_recovery = true;
        self.after_rto = false;
        self.pristine = false;
    }

    /// Ignored outside recovery.
    fn on_dup_ack_in_recovery(&mut self) {
        if self.in_recovery {
            // RFC 5681 §3.2 step 4
            self.cwnd = self.cwnd.saturating_add(self.mss);
        }
    }

    /// Ignored outside recovery. cwnd never drops below one SMSS.
    fn on_partial_ack(&mut self, bytes_acked: u32) {
        if !self.in_recovery {
            return;
        }
        self.rto_pending = false;
        // RFC 6582 §3.2 step 3, partial acknowledgments: deflate by the new data acked ...
        let mut cwnd = self.cwnd.saturating_sub(bytes_acked);
        // ... and add back SMSS if at least one SMSS was acked.
        if bytes_acked >= self.mss {
            cwnd = cwnd.saturating_add(self.mss);
        }
        self.cwnd = cwnd.max(self.mss);
    }

    /// Ignored outside recovery.
    fn on_exit_recovery(&mut self, in_flight: u32) {
        if !self.in_recovery {
            return;
        }
        // RFC 6582 §3.2 step 3, full acknowledgments, option (1).
        let deflated = in_flight.max(self.mss).saturating_add(self.mss);
        self.cwnd = self.ssthresh.min(deflated);
        self.ca_acked = 0;
        self.in_recovery = false;
        self.rto_pending = false;
    }

    fn on_rto(&mut self, in_flight: u32) {
        // RFC 5681 §3.1: eq. 4 on the first timeout of a segment, held constant on repeats.
        if !self.rto_pending {
            self.ssthresh = self.loss_ssthresh(in_flight);
            self.rto_pending = true;
        }
        // RFC 5681 §3.1: the loss window LW is one full-sized segment.
        self.cwnd = self.mss;
        self.ca_acked = 0;
        // RFC 6582 §3.2 step 4: exit fast recovery.
        self.in_recovery = false;
        self.after_rto = true;
        self.pristine = false;
    }

    fn on_idle_restart(&mut self) {
        // RFC 5681 §4.1: cwnd = min(RW, cwnd), RW = min(IW, cwnd).
        self.cwnd = self.cwnd.min(initial_window(self.mss, self.iw_segments));
        self.ca_acked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn ack(cc: &mut NewReno, bytes: u32) {
        cc.on_ack(Instant::ZERO, bytes, 0, None);
    }

    #[test]
    fn starts_at_initial_window() {
        let cc = NewReno::new(1460, 10);
        assert_eq!(cc.cwnd(), 14_600);
        assert_eq!(cc.ssthresh(), u32::MAX);
        assert_eq!(cc.mss(), 1460);
        assert!(cc.in_slow_start());
        assert!(!cc.in_recovery());
        assert_eq!(NewReno::new(1460, 0).cwnd(), 4_380);
        // MSS 0 is treated as 1.
        assert_eq!(NewReno::new(0, 10).cwnd(), 10);
    }

    #[test]
    fn slow_start_growth_exact() {
        let mut cc = NewReno::new(MSS, 10);
        assert_eq!(cc.cwnd(), 10_000);
        ack(&mut cc, 1000); // one segment: +1000
        assert_eq!(cc.cwnd(), 11_000);
        ack(&mut cc, 2000); // delayed ACK of two segments: +2000
        assert_eq!(cc.cwnd(), 13_000);
        ack(&mut cc, 500); // ACK division: +N only
        assert_eq!(cc.cwnd(), 13_500);
        ack(&mut cc, 5000); // stretch ACK: every acknowledged byte counts (as Linux)
        assert_eq!(cc.cwnd(), 18_500);
        ack(&mut cc, 0); // no new data: nothing
        assert_eq!(cc.cwnd(), 18_500);
        assert_eq!(cc.ssthresh(), u32::MAX);
    }

    #[test]
    fn slow_start_to_congestion_avoidance() {
        let mut cc = NewReno::new(MSS, 10);
        // One recovery episode leaves ssthresh = 5000 and cwnd = 3500.
        cc.on_enter_recovery(Instant::ZERO, 10_000);
        cc.on_exit_recovery(2_500);
        assert_eq!(cc.ssthresh(), 5_000);
        assert_eq!(cc.cwnd(), 3_500);
        assert!(cc.in_slow_start());
        // +2000 would reach 5500: slow start stops at 5000, 500 bytes go to the CA counter.
        ack(&mut cc, 2000);
        assert_eq!(cc.cwnd(), 5_000);
        assert!(!cc.in_slow_start());
        // Byte counting: 500 + 4*1000 = 4500 < 5000, no growth yet ...
        for _ in 0..4 {
            ack(&mut cc, 1000);
            assert_eq!(cc.cwnd(), 5_000);
        }
        // ... 5500 >= 5000: cwnd += SMSS, counter keeps 500.
        ack(&mut cc, 1000);
        assert_eq!(cc.cwnd(), 6_000);
        // The next increase needs cwnd = 6000 bytes: 500 + 5*1000 = 5500, then 6500.
        for _ in 0..5 {
            ack(&mut cc, 1000);
        }
        assert_eq!(cc.cwnd(), 6_000);
        ack(&mut cc, 1000);
        assert_eq!(cc.cwnd(), 7_000);
        // At most one SMSS per ACK, even for a huge cumulative ACK.
        ack(&mut cc, 100_000);
        assert_eq!(cc.cwnd(), 8_000);
    }

    #[test]
    fn full_recovery_episode() {
        let mut cc = NewReno::new(MSS, 10);
        // Third duplicate ACK with 10 segments in flight.
        cc.on_enter_recovery(Instant::ZERO, 10 * MSS);
        assert!(cc.in_recovery());
        assert_eq!(cc.ssthresh(), 5_000); // max(10000/2, 2000)
        assert_eq!(cc.cwnd(), 8_000); // ssthresh + 3*SMSS
        // Three more duplicate ACKs inflate by one SMSS each.
        for _ in 0..3 {
            cc.on_dup_ack_in_recovery();
        }
        assert_eq!(cc.cwnd(), 11_000);
        // Partial ACK of 3 segments: 11000 - 3000 + 1000.
        cc.on_partial_ack(3_000);
        assert_eq!(cc.cwnd(), 9_000);
        assert!(cc.in_recovery());
        // Partial ACK of less than one SMSS: deflate only.
        cc.on_partial_ack(500);
        assert_eq!(cc.cwnd(), 8_500);
        cc.on_dup_ack_in_recovery();
        assert_eq!(cc.cwnd(), 9_500);
        // Full ACK with 4000 bytes still outstanding: min(5000, 4000 + 1000).
        cc.on_exit_recovery(4_000);
        assert!(!cc.in_recovery());
        assert_eq!(cc.cwnd(), 5_000);
        assert_eq!(cc.ssthresh(), 5_000);
        // Back in congestion avoidance: 5 segments acked for one more SMSS.
        for _ in 0..5 {
            ack(&mut cc, 1000);
        }
        assert_eq!(cc.cwnd(), 6_000);
    }

    #[test]
    fn exit_recovery_with_little_in_flight() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_enter_recovery(Instant::ZERO, 20_000);
        assert_eq!(cc.ssthresh(), 10_000);
        assert_eq!(cc.cwnd(), 13_000);
        // Nothing outstanding: min(10000, max(0, 1000) + 1000) = 2000, then slow start.
        cc.on_exit_recovery(0);
        assert_eq!(cc.cwnd(), 2_000);
        assert!(cc.in_slow_start());
        ack(&mut cc, 2000);
        assert_eq!(cc.cwnd(), 4_000);
    }

    #[test]
    fn small_flight_uses_two_segment_floor() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_enter_recovery(Instant::ZERO, 3_000);
        assert_eq!(cc.ssthresh(), 2_000); // max(1500, 2*SMSS)
        assert_eq!(cc.cwnd(), 5_000);
        // Deflation never goes below one SMSS.
        cc.on_partial_ack(4_900);
        assert_eq!(cc.cwnd(), 1_100);
        cc.on_partial_ack(999);
        assert_eq!(cc.cwnd(), 1_000);
    }

    #[test]
    fn recovery_events_outside_recovery_are_ignored() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_dup_ack_in_recovery();
        cc.on_partial_ack(3_000);
        cc.on_exit_recovery(1_000);
        assert_eq!(cc.cwnd(), 10_000);
        assert_eq!(cc.ssthresh(), u32::MAX);
    }

    #[test]
    fn rto_collapse_and_held_ssthresh() {
        let mut cc = NewReno::new(MSS, 10);
        ack(&mut cc, 2000);
        assert_eq!(cc.cwnd(), 12_000);
        cc.on_rto(12_000);
        assert_eq!(cc.ssthresh(), 6_000);
        assert_eq!(cc.cwnd(), 1_000);
        // The same segment times out again: ssthresh is held (RFC 5681 §3.1).
        cc.on_rto(12_000);
        assert_eq!(cc.ssthresh(), 6_000);
        assert_eq!(cc.cwnd(), 1_000);
        // Slow start after an RTO grows by at most one SMSS per ACK (RFC 3465).
        ack(&mut cc, 2000);
        assert_eq!(cc.cwnd(), 2_000);
        ack(&mut cc, 1000);
        ack(&mut cc, 1000);
        ack(&mut cc, 1000);
        ack(&mut cc, 1000);
        assert_eq!(cc.cwnd(), 6_000);
        assert!(!cc.in_slow_start());
        // New data was acknowledged, so a later timeout is a new loss: eq. 4 again.
        cc.on_rto(3_000);
        assert_eq!(cc.ssthresh(), 2_000);
        assert_eq!(cc.cwnd(), 1_000);
    }

    #[test]
    fn slow_start_limit_after_rto_is_one_smss_until_next_episode() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_rto(10_000); // ssthresh 5000
        ack(&mut cc, 2000); // L = 1*SMSS after an RTO
        assert_eq!(cc.cwnd(), 2_000);
        // A fast-recovery episode ends that slow start; the next one uses L = 2*SMSS again.
        cc.on_enter_recovery(Instant::ZERO, 20_000);
        assert_eq!(cc.ssthresh(), 10_000);
        cc.on_exit_recovery(0);
        assert_eq!(cc.cwnd(), 2_000);
        ack(&mut cc, 2000);
        assert_eq!(cc.cwnd(), 4_000);
    }

    #[test]
    fn rto_during_recovery_ends_it() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_enter_recovery(Instant::ZERO, 10_000);
        cc.on_dup_ack_in_recovery();
        assert_eq!(cc.cwnd(), 9_000);
        cc.on_rto(9_000);
        assert!(!cc.in_recovery());
        assert_eq!(cc.ssthresh(), 4_500);
        assert_eq!(cc.cwnd(), 1_000);
        cc.on_dup_ack_in_recovery();
        assert_eq!(cc.cwnd(), 1_000);
    }

    #[test]
    fn idle_restart() {
        let mut cc = NewReno::new(MSS, 10);
        for _ in 0..5 {
            ack(&mut cc, 2000);
        }
        assert_eq!(cc.cwnd(), 20_000);
        cc.on_idle_restart();
        assert_eq!(cc.cwnd(), 10_000); // RW = IW
        // A window already below IW is kept.
        cc.on_rto(10_000);
        ack(&mut cc, 1000);
        assert_eq!(cc.cwnd(), 2_000);
        cc.on_idle_restart();
        assert_eq!(cc.cwnd(), 2_000);
        assert_eq!(cc.ssthresh(), 5_000);
        // With RFC 5681's IW (4 segments for SMSS 1000).
        let mut cc = NewReno::new(MSS, 0);
        for _ in 0..3 {
            ack(&mut cc, 2000);
        }
        assert_eq!(cc.cwnd(), 10_000);
        cc.on_idle_restart();
        assert_eq!(cc.cwnd(), 4_000);
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
    fn set_mss_later_scales_by_segments() {
        let mut cc = NewReno::new(MSS, 10);
        ack(&mut cc, 2000);
        assert_eq!(cc.cwnd(), 12_000);
        // PMTU shrinks the MSS to 500: cwnd keeps 12 segments, ssthresh stays "infinite".
        cc.set_mss(500);
        assert_eq!(cc.cwnd(), 6_000);
        assert_eq!(cc.ssthresh(), u32::MAX);
        ack(&mut cc, 2000); // every acknowledged byte counts in slow start
        assert_eq!(cc.cwnd(), 8_000);
        cc.on_enter_recovery(Instant::ZERO, 7_000);
        assert_eq!(cc.ssthresh(), 3_500);
        assert_eq!(cc.cwnd(), 5_000);
        cc.on_exit_recovery(3_000);
        assert_eq!(cc.cwnd(), 3_500);
        cc.set_mss(1000);
        assert_eq!(cc.cwnd(), 7_000);
        assert_eq!(cc.ssthresh(), 7_000);
        // One segment stays one segment.
        cc.on_rto(0);
        cc.set_mss(100);
        assert_eq!(cc.cwnd(), 100);
        cc.set_mss(1000);
        assert_eq!(cc.cwnd(), 1000);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let mut cc = NewReno::new(u32::MAX / 2, 10);
        assert_eq!(cc.cwnd(), u32::MAX);
        ack(&mut cc, u32::MAX);
        assert_eq!(cc.cwnd(), u32::MAX);
        cc.on_enter_recovery(Instant::ZERO, u32::MAX);
        cc.on_dup_ack_in_recovery();
        assert_eq!(cc.cwnd(), u32::MAX);
        cc.on_exit_recovery(u32::MAX);
        cc.on_idle_restart();
        cc.on_rto(u32::MAX);
        assert_eq!(cc.cwnd(), u32::MAX / 2);
    }
}
