//! CUBIC (RFC 9438) with the arithmetic of Linux's `tcp_cubic.c`, counted in segments, and
//! HyStart++ (RFC 9406) with Linux's ACK-train test (see [`hystart`](super::hystart)) for leaving
//! the initial slow start.
//!
//! The window follows the cubic function of the time since the last reduction (RFC 9438
//! §4.2):
//!
//! `W_cubic(t) = C × (t − K)³ + W_max`, with `K = ∛(W_max × (1 − β) / C)` (§4.2 eq. 2, where
//! the window is β × W_max when the epoch starts) or, as Linux, `K = ∛((W_max − cwnd) / C)`
//! for the cwnd the epoch actually starts from.
//!
//! As in Linux, and as the packetdrill scripts check:
//!
//! * Constants: β = 717/1024 (RFC 9438 §4.6: 0.7); C = 410/1024 per 2^10 s units
//!   (0.4, §5); time in units of 1/1024 s; the clock is milliseconds ("jiffies" at HZ 1000).
//! * Each ACK in congestion avoidance computes the target `W_cubic(t + RTT_min)` (§4.4 uses
//!   the target one RTT ahead) and from it `cnt`, the ACKed segments per one-segment increase:
//!   `cwnd / (target − cwnd)`, or `100 × cwnd` when the target is not above cwnd (§4.4 "MUST
//!   NOT increase" becomes a negligible increase). The target is recomputed at most every
//!   31 ms while cwnd is unchanged (Linux's HZ/32) — or every minimum RTT if that is
//!   shorter, where Linux would freeze `cnt` for hundreds of round trips (see
//!   `Cubic::update`; the one deliberate difference from Linux here).
//! * Without a W_max (no loss yet, or after a timeout, which forgets it) `cnt` is at most 20:
//!   at least 5 % growth per RTT.
//! * Reno-friendly region (§4.3): `W_est` starts at cwnd and grows one segment per
//!   `cwnd × 15/8` ACKed segments (α_cubic = 3(1−β)/(1+β) ≈ 0.53 segments per RTT); when it is
//!   ahead of cwnd, `cnt` is at most `cwnd / (W_est − cwnd)`. Unlike §4.3, α is not raised
//!   to 1 above W_max (Linux does not).
//! * `cnt` is at least 2: cwnd grows at most 1.5× per RTT (§4.5's bound on the target).
//! * Congestion event (§4.6-4.7): ssthresh = max(cwnd × β, 2); with fast convergence
//!   `W_max = cwnd × (1 + β) / 2` when cwnd is below the previous W_max, else `W_max = cwnd`;
//!   the epoch restarts at the next ACK in congestion avoidance.
//! * Timeout (§4.8): ssthresh as above, cwnd one segment, and all CUBIC state (W_max, the
//!   minimum delay, the epoch) forgotten, as Linux's `CA_Loss` does.
//! * Minimum delay: the smallest RTT sample, except samples within one second of an epoch
//!   start (Linux discards those as disturbed by the reduction).
//! * After idle (Linux `CA_EVENT_TX_START`) the epoch moves forward by the idle time, so the
//!   cubic function does not jump ahead for time the sender did not use.
//!
//! K is an exact integer cube root (Linux uses a table and one Newton step, off by up to
//! 0.2 %).

use super::hystart::{HyStart, HyStartAck, Verdict};
use super::window::{Window, jiffies};
use super::{AckSample, Algorithm, CongestionControl};
use crate::time::{Duration, Instant};

/// β_cubic = 0.7, scaled by 1024 (RFC 9438 §4.6; Linux `beta`).
pub const BETA: u32 = 717;
/// The scale of [`BETA`].
pub const BETA_SCALE: u32 = 1024;
/// log2 of the time unit: time is counted in 1/1024 s.
const TIME_SHIFT: u32 = 10;
/// C = 0.4 (RFC 9438 §5) as Linux scales it: `C × 1024` with 1/1024-s time units,
/// `delta = C_SCALED × offs³ >> 40` segments.
const C_SCALED: u128 = 410;
/// `2^40 / C_SCALED`: K = ∛(CUBE_FACTOR × (W_max − cwnd)) in 1/1024 s.
const CUBE_FACTOR: u128 = (1 << (10 + 3 * TIME_SHIFT)) / C_SCALED;
/// W_est grows one segment per `cwnd × RENO_FRIENDLY / 8` ACKed segments: 8 / α_cubic
/// = 8 (1 + β) / (3 (1 − β)), 15 in Linux's integer arithmetic.
const RENO_FRIENDLY: u64 = (8 * (BETA_SCALE + BETA) as u64 / 3) / (BETA_SCALE - BETA) as u64;
/// The target is recomputed at most this often while cwnd is unchanged (Linux HZ/32).
const UPDATE_INTERVAL_MS: u64 = 1000 / 32;
/// The same bound as a duration (see [`Cubic::update`] for when it is shorter).
const REFRESH_MAX: Duration = Duration::from_millis(UPDATE_INTERVAL_MS);
/// Without W_max, at least one segment per this many ACKed (5 % per RTT).
const CNT_NO_WMAX: u32 = 20;
/// RTT samples within this time of an epoch start do not update the minimum delay.
const DELAY_HOLDOFF_MS: u64 = 1000;

/// CUBIC congestion control for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cubic {
    w: Window,
    hystart: HyStart,
    /// ACKed segments per one-segment increase (Linux `cnt`).
    cnt: u32,
    /// W_max in segments; 0 when unknown (Linux `last_max_cwnd`).
    w_max: u32,
    /// cwnd and time of the last target computation (ms, and the exact instant).
    last_cwnd: u32,
    last_time: u64,
    last_instant: Instant,
    /// The window the cubic function is centred on (W_max, or cwnd if already above it).
    origin: u32,
    /// K in 1/1024 s.
    k: u64,
    /// Minimum RTT (Linux `delay_min`), forgotten at a timeout.
    /// In microseconds, as the samples.
    delay_min: Option<u64>,
    /// When the current epoch began (ms); `None` until the first ACK in congestion avoidance
    /// after a reduction.
    epoch_start: Option<u64>,
    /// Segments ACKed towards the next W_est increase.
    ack_cnt: u32,
    /// W_est, the Reno-friendly window estimate in segments (RFC 9438 §4.3).
    w_est: u32,
    /// Fast convergence (RFC 9438 §4.7), on as in Linux.
    fast_convergence: bool,
}

impl Cubic {
    /// CUBIC for a sender MSS of `mss` (0 is treated as 1) with an initial window of
    /// `initial_window_segments` segments, or RFC 5681's IW when that is 0. ssthresh starts
    /// "arbitrarily high"; HyStart++ watches the initial slow start.
    pub fn new(mss: u32, initial_window_segments: u32) -> Cubic {
        Cubic {
            w: Window::new(mss, initial_window_segments),
            hystart: HyStart::new(),
            cnt: 0,
            w_max: 0,
            last_cwnd: 0,
            last_time: 0,
            last_instant: Instant::ZERO,
            origin: 0,
            k: 0,
            delay_min: None,
            epoch_start: None,
            ack_cnt: 0,
            w_est: 0,
            fast_convergence: true,
        }
    }

    /// Turns fast convergence (RFC 9438 §4.7) on or off.
    pub fn set_fast_convergence(&mut self, on: bool) {
        self.fast_convergence = on;
    }

    /// cwnd in segments.
    pub fn cwnd_segments(&self) -> u32 {
        self.w.cwnd()
    }

    /// W_max in segments (0: none).
    pub fn w_max(&self) -> u32 {
        self.w_max
    }

    /// K of the current epoch, in 1/1024 s.
    pub fn k(&self) -> u64 {
        self.k
    }

    /// W_est of the current epoch, in segments.
    pub fn w_est(&self) -> u32 {
        self.w_est
    }

    /// ACKed segments per one-segment increase, as last computed.
    pub fn cnt(&self) -> u32 {
        self.cnt
    }

    /// The minimum delay CUBIC uses.
    pub fn delay_min(&self) -> Option<Duration> {
        self.delay_min.map(Duration::from_micros)
    }

    /// The HyStart++ state.
    pub fn hystart(&self) -> &HyStart {
        &self.hystart
    }

    /// True while cwnd < ssthresh.
    pub fn in_slow_start(&self) -> bool {
        self.w.in_slow_start()
    }

    /// The congestion response (RFC 9438 §4.6-4.7, Linux `bictcp_recalc_ssthresh`): ends the
    /// epoch, sets W_max with fast convergence, returns the new ssthresh in segments.
    fn reduced_ssthresh(&mut self) -> u32 {
        let cwnd = self.w.cwnd();
        self.epoch_start = None;
        self.w_max = if self.fast_convergence && cwnd < self.w_max {
            mul_div(cwnd, BETA_SCALE + BETA, 2 * BETA_SCALE)
        } else {
            cwnd
        };
        mul_div(cwnd, BETA, BETA_SCALE).max(2)
    }

    /// Forgets W_max, the epoch and the minimum delay (Linux on entering `CA_Loss`).
    fn reset(&mut self) {
        self.cnt = 0;
        self.w_max = 0;
        self.last_cwnd = 0;
        self.last_time = 0;
        self.last_instant = Instant::ZERO;
        self.origin = 0;
        self.k = 0;
        self.delay_min = None;
        self.epoch_start = None;
        self.ack_cnt = 0;
        self.w_est = 0;
    }

    /// An RTT sample (Linux `cubictcp_acked`): the minimum delay, unless the epoch began less
    /// than a second ago.
    fn on_rtt(&mut self, now: u64, rtt: u64) {
        if self
            .epoch_start
            .is_some_and(|e| now.saturating_sub(e) < DELAY_HOLDOFF_MS)
        {
            return;
        }
        let rtt = rtt.max(1);
        self.delay_min = Some(self.delay_min.map_or(rtt, |d| d.min(rtt)));
    }

    /// Computes `cnt` for `acked` segments at `at` in congestion avoidance (RFC 9438
    /// §4.2-4.5 as Linux's `bictcp_update`).
    ///
    /// While cwnd is unchanged, Linux recomputes at most every 31 ms (HZ/32). On a path whose
    /// round trip is shorter than that, this freezes a `cnt` computed when the target was
    /// reached (100 × cwnd) for hundreds of round trips: after each loss cwnd comes back to
    /// the same value, the freeze goes on, and the Reno-friendly estimate never catches up.
    /// At a 0.1 ms RTT and 5 % loss that pins cwnd at 2 segments for seconds, until a
    /// retransmission timeout resets CUBIC. Here, as in the fix proposed upstream for this
    /// (netdev, "tcp_cubic: fix to run bictcp_update() at least once per RTT", 2024), the
    /// interval is the smaller of 31 ms and the minimum RTT; paths with an RTT of 31 ms or
    /// more behave exactly as Linux's.
    fn update(&mut self, at: Instant, acked: u32) {
        let now = jiffies(at);
        let cwnd = self.w.cwnd();
        self.ack_cnt = self.ack_cnt.saturating_add(acked);
        let frozen = self.last_cwnd == cwnd
            && match self
                .delay_min
                .filter(|&d| u128::from(d) < REFRESH_MAX.as_micros())
            {
                Some(rtt) => at.micros_since(self.last_instant) <= rtt,
                None => now.saturating_sub(self.last_time) <= UPDATE_INTERVAL_MS,
            };
        if frozen {
            return;
        }
        // Within the same millisecond only the Reno-friendly bound is refreshed.
        if !(self.epoch_start.is_some() && now == self.last_time) {
            self.last_cwnd = cwnd;
            self.last_time = now;
            self.last_instant = at;
            self.compute_target_cnt(now, cwnd, acked);
        }
        self.reno_friendly(cwnd);
        // At most 1.5x per RTT (one segment per two ACKed).
        self.cnt = self.cnt.max(2);
    }

    /// The cubic part of `update`: start the epoch if needed, then `cnt` from the target
    /// `W_cubic(t + RTT_min)`.
    fn compute_target_cnt(&mut self, now: u64, cwnd: u32, acked: u32) {
        let epoch = match self.epoch_start {
            Some(e) => e,
            None => {
                self.epoch_start = Some(now);
                self.ack_cnt = acked;
                self.w_est = cwnd;
                if self.w_max <= cwnd {
                    self.k = 0;
                    self.origin = cwnd;
                } else {
                    // RFC 9438 §4.2 eq. 2 for the window the epoch starts from.
                    self.k = cbrt(CUBE_FACTOR * u128::from(self.w_max - cwnd));
                    self.origin = self.w_max;
                }
                now
            }
        };
        // t + RTT_min in 1/1024 s (RFC 9438 §4.4: the target one RTT ahead).
        let delay_us = self.delay_min.map_or(0, u128::from);
        let t_us = u128::from(now.saturating_sub(epoch)) * 1000 + delay_us;
        let t = u64::try_from((t_us << TIME_SHIFT) / 1_000_000).unwrap_or(u64::MAX);
        let offs = u128::from(t.abs_diff(self.k));
        let delta = (C_SCALED * offs * offs * offs) >> (10 + 3 * TIME_SHIFT);
        let delta = u32::try_from(delta).unwrap_or(u32::MAX);
        let target = if t < self.k {
            self.origin.saturating_sub(delta)
        } else {
            self.origin.saturating_add(delta)
        };
        self.cnt = if target > cwnd {
            cwnd / (target - cwnd)
        } else {
            cwnd.saturating_mul(100)
        };
        if self.w_max == 0 {
            self.cnt = self.cnt.min(CNT_NO_WMAX);
        }
    }

    /// RFC 9438 §4.3: grow W_est like Reno would and bound `cnt` so cwnd keeps up with it.
    fn reno_friendly(&mut self, cwnd: u32) {
        let per = u32::try_from((u64::from(cwnd) * RENO_FRIENDLY) >> 3)
            .unwrap_or(u32::MAX)
            .max(1);
        if self.ack_cnt > per {
            let n = (self.ack_cnt - 1) / per;
            self.ack_cnt -= n * per;
            self.w_est = self.w_est.saturating_add(n);
        }
        if self.w_est > cwnd {
            let max_cnt = cwnd / (self.w_est - cwnd);
            self.cnt = self.cnt.min(max_cnt);
        }
    }
}

/// `value × num / den` in 64 bits, saturating at `u32::MAX`.
fn mul_div(value: u32, num: u32, den: u32) -> u32 {
    u32::try_from(u64::from(value) * u64::from(num) / u64::from(den.max(1))).unwrap_or(u32::MAX)
}

/// The integer cube root, rounded down.
fn cbrt(a: u128) -> u64 {
    // Binary search over [0, 2^43): (2^43)^3 = 2^129 exceeds every u128.
    let (mut lo, mut hi) = (0u128, 1u128 << 43);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        match mid.checked_mul(mid).and_then(|m| m.checked_mul(mid)) {
            Some(cube) if cube <= a => lo = mid,
            _ => hi = mid,
        }
    }
    lo as u64
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        Algorithm::Cubic.name()
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::Cubic
    }

    fn start_over(&mut self, mss: u32, initial_window_segments: u32) {
        *self = Cubic::new(mss, initial_window_segments);
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
        if ack.segments == 0 {
            return;
        }
        let now = jiffies(ack.now);
        // As Linux's pkts_acked: delay and HyStart samples come first, whether or not the
        // window may grow.
        if let Some(rtt) = ack.rtt {
            self.on_rtt(now, rtt);
        }
        // HyStart++ runs in the initial slow start only (RFC 9406 §4.2): skipped, not
        // disabled, while ssthresh is set, so that an undone spurious recovery, which
        // restores the infinite ssthresh, resumes it (Linux clears HyStart's state only on
        // a timeout, `bictcp_state` in TCP_CA_Loss).
        if self.hystart.is_active()
            && self.w.in_slow_start()
            && self.w.initial_slow_start()
            && self.hystart.on_ack(&HyStartAck {
                now: ack.now,
                snd_una: ack.snd_una,
                snd_nxt: ack.snd_nxt,
                rtt: ack.rtt,
                delay_min: self.delay_min,
                cwnd: self.w.cwnd(),
                mss: self.w.mss(),
            }) == Verdict::EnterCongestionAvoidance
        {
            // RFC 9406 §4.2: CSS is over (or the ACK train says the window fills the path),
            // ssthresh = cwnd.
            self.w.end_slow_start();
        }
        if !ack.cwnd_limited {
            return;
        }
        let mut acked = ack.segments;
        if self.w.in_slow_start() {
            if self.hystart.in_css() && self.w.initial_slow_start() {
                // RFC 9406 §4.2: Conservative Slow Start grows a quarter as fast.
                let grow = self.hystart.growth(acked);
                self.w.slow_start(grow);
                return;
            }
            acked = self.w.slow_start(acked);
            if acked == 0 {
                return;
            }
        }
        self.update(ack.now, acked);
        self.w.additive_increase(self.cnt, acked);
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
        self.hystart.disable();
        let ssthresh = if self.w.rto_sets_ssthresh() {
            Some(self.reduced_ssthresh())
        } else {
            None
        };
        self.w.enter_loss(ssthresh);
        self.reset();
    }

    fn undo(&mut self) {
        self.w.undo();
    }

    fn on_tx_start(&mut self, flight: &super::Flight, idle: Duration) {
        self.on_tx_start_at(flight.now, idle);
    }

    fn on_tx_start_at(&mut self, now: Instant, idle: Duration) -> bool {
        let Some(epoch) = self.epoch_start else {
            return true;
        };
        // The idle time in whole milliseconds as the clock ticked them.
        let now_ms = jiffies(now);
        let idle_ms = now_ms - jiffies(now - idle);
        if idle_ms > 0 {
            self.epoch_start = Some(epoch.saturating_add(idle_ms).min(now_ms));
        }
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
    use super::super::hystart::Phase;
    use super::super::test_util;
    use super::*;
    use crate::tcp::seq::SeqNum;

    const MSS: u32 = 1000;

    fn ack(now_ms: u64, segments: u32, rtt_ms: u64) -> AckSample {
        test_util::ack(now_ms, segments, MSS, rtt_ms)
    }

    #[test]
    fn constants_match_rfc_9438_and_linux() {
        assert_eq!(RENO_FRIENDLY, 15);
        assert_eq!(CUBE_FACTOR, 2_681_735_677);
        // β = 0.7, C = 0.4 within Linux's scaling.
        assert!((f64::from(BETA) / f64::from(BETA_SCALE) - 0.7).abs() < 0.001);
        assert!((C_SCALED as f64 / 1024.0 - 0.4).abs() < 0.001);
        assert_eq!(UPDATE_INTERVAL_MS, 31);
    }

    #[test]
    fn integer_cube_root() {
        assert_eq!(cbrt(0), 0);
        assert_eq!(cbrt(1), 1);
        assert_eq!(cbrt(7), 1);
        assert_eq!(cbrt(8), 2);
        assert_eq!(cbrt(26), 2);
        assert_eq!(cbrt(27), 3);
        assert_eq!(cbrt(999_999), 99);
        assert_eq!(cbrt(1_000_000), 100);
        let big = 1u128 << 90;
        assert_eq!(cbrt(big), 1 << 30);
        assert_eq!(cbrt(big - 1), (1 << 30) - 1);
        assert_eq!(cbrt(u128::MAX), 6_981_463_658_331);
    }

    /// The packetdrill script cubic/cubic-rto-ss-ca-cwnd-bump.pkt, driven directly: an RTO with
    /// cwnd 10 (ssthresh 7, W_max forgotten), slow start from 2 to 7 with one ACK per
    /// segment, then congestion avoidance where cwnd grows by one after 16 ACKs: W_max is
    /// unknown, so cnt is capped at 20, and the Reno-friendly estimate W_est (one segment per
    /// 7 × 15/8 = 13 ACKed) overtakes cwnd on the 14th ACK — but the target is recomputed
    /// only every 31 ms, on the 16th (the ACKs come in bursts 2 ms apart every 100 ms).
    #[test]
    fn packetdrill_cubic_rto_ss_ca_cwnd_bump() {
        let mut cc = Cubic::new(MSS, 10);
        // The ACK of the first data segment: RTT 100 ms, 1 of 10 segments in flight.
        let mut a = ack(300, 1, 100);
        a.cwnd_limited = false;
        cc.on_ack(&a);
        assert_eq!(cc.cwnd_segments(), 10, "not cwnd-limited");
        // TLP, then the RTO of the second segment.
        cc.on_rto(Instant::from_millis(900), MSS);
        assert_eq!(cc.cwnd_segments(), 1);
        assert_eq!(cc.ssthresh(), 7 * MSS, "10 × 717/1024");
        assert_eq!(cc.w_max(), 0, "a timeout forgets W_max");
        assert_eq!(cc.delay_min(), None);
        // The ACK of the retransmission (no RTT sample: Karn).
        cc.on_ack(&ack(1000, 1, 0));
        assert_eq!(cc.cwnd_segments(), 2);
        assert_eq!(cc.ssthresh(), 7 * MSS);
        // Slow start, one ACK per segment.
        let t = 1100;
        for (dt, cwnd) in [(0, 3), (2, 4), (100, 5), (102, 6), (104, 7)] {
            cc.on_ack(&ack(t + dt, 1, 100));
            assert_eq!(cc.cwnd_segments(), cwnd, "slow start at +{dt} ms");
        }
        assert!(!cc.in_slow_start());
        // Congestion avoidance: the first 15 ACKs leave cwnd at 7.
        for dt in [106, 204, 206, 208, 210, 212, 214, 216, 314] {
            cc.on_ack(&ack(t + dt, 1, 100));
            assert_eq!(cc.cwnd_segments(), 7, "CA at +{dt} ms");
            assert_eq!(cc.cnt(), 20, "capped without W_max");
        }
        assert_eq!(cc.k(), 0);
        for dt in [316, 318, 320, 322, 324, 326] {
            cc.on_ack(&ack(t + dt, 1, 100));
            assert_eq!(cc.cwnd_segments(), 7, "CA at +{dt} ms");
        }
        assert_eq!(cc.w_est(), 7, "recomputed only every 31 ms");
        // The 16th ACK, 98 ms later: W_est = 8 > 7 bounds cnt to 7 / (8 − 7) = 7, and the 15
        // segments counted already pay for the bump.
        cc.on_ack(&ack(t + 424, 1, 100));
        assert_eq!(cc.w_est(), 8);
        assert_eq!(cc.cnt(), 7);
        assert_eq!(cc.cwnd_segments(), 8);
        assert_eq!(cc.ssthresh(), 7 * MSS);
    }

    /// The stall `update` avoids: at a 0.1 ms RTT, with cwnd at 2 segments after a loss and
    /// the target at cwnd (`cnt` = 200), Linux's 31-ms refresh would leave `cnt` as it is
    /// for 310 round trips. With the refresh bounded by the minimum RTT, the Reno-friendly
    /// estimate gets a say on the next round trip and cwnd grows within a millisecond; at a
    /// 100 ms RTT the 31 ms rule is unchanged (`packetdrill_cubic_rto_ss_ca_cwnd_bump`).
    #[test]
    fn short_rtt_refreshes_the_target_every_round_trip() {
        let us = Instant::from_micros;
        for (rtt_us, grows) in [(100, true), (100_000, false)] {
            let mut cc = Cubic::new(MSS, 10);
            // An RTT sample before any epoch sets the minimum delay.
            let mut first = ack(0, 1, 0);
            first.rtt = Some(rtt_us);
            first.cwnd_limited = false;
            cc.on_ack(&first);
            // A loss at cwnd 2: ssthresh 2, W_max 2, and the recovery leaves cwnd at 2. The
            // first ACK in CA starts the epoch with the target at cwnd: cnt = 100 × 2.
            cc.set_cwnd(2 * MSS);
            cc.on_congestion_event(us(1_000), 2 * MSS);
            cc.set_cwnd(2 * MSS);
            cc.on_ack(&AckSample {
                now: us(3_000),
                ..ack(0, 2, 0)
            });
            assert_eq!((cc.cwnd_segments(), cc.cnt()), (2, 200), "rtt {rtt_us} µs");
            // Then one ACK of two segments per 100 µs for 5 ms (50 round trips at 0.1 ms).
            for k in 1..=50u64 {
                cc.on_ack(&AckSample {
                    now: us(3_000 + k * 100),
                    ..ack(0, 2, 0)
                });
            }
            if grows {
                assert!(cc.cwnd_segments() >= 10, "cwnd {}", cc.cwnd_segments());
            } else {
                assert_eq!(cc.cwnd_segments(), 2, "frozen for 31 ms at a 100 ms RTT");
            }
        }
    }

    /// RFC 9438 §4.2: K = ∛(W_max (1 − β) / C) = ∛(100 × 0.3 / 0.4) ≈ 4.217 s for a loss at
    /// 100 segments, and the target W_cubic(t + RTT) along the curve: concave up to W_max,
    /// a plateau around K, convex beyond.
    #[test]
    fn k_and_the_cubic_target() {
        let mut cc = Cubic::new(MSS, 10);
        cc.set_cwnd(100 * MSS);
        cc.on_congestion_event(Instant::ZERO, 100 * MSS);
        assert_eq!(cc.w_max(), 100);
        assert_eq!(cc.ssthresh(), 70 * MSS, "100 × 717/1024 = 70.02");
        cc.set_cwnd(70 * MSS); // what the recovery left
        // First ACK in CA with an RTT of 100 ms: the epoch starts, cwnd 70 < W_max.
        cc.on_ack(&ack(10_000, 1, 100));
        // K = ∛(2^40/410 × 30) = 4316 in 1/1024 s = 4.215 s (C = 410/1024, not exactly 0.4).
        assert_eq!(cc.k(), 4316);
        let rfc_k = (100.0f64 * 0.3 / 0.4).cbrt();
        assert!((cc.k() as f64 / 1024.0 - rfc_k).abs() < 0.005);
        // t + RTT = 102/1024 s: offs = 4214, 410 × 4214³ >> 40 = 27, target 73:
        // cnt = 70 / (73 − 70) = 23.
        assert_eq!(cc.cnt(), 23);
        // One second later: t = 1126, offs 3190, delta 12, target 88: cnt = 70 / 18 = 3.
        cc.on_ack(&ack(11_000, 1, 100));
        assert_eq!(cc.cwnd_segments(), 70);
        assert_eq!(cc.cnt(), 3);
        // Two seconds: target 97, cnt 70 / 27 = 2 (and never below 2).
        cc.on_ack(&ack(12_000, 1, 100));
        assert_eq!(cc.cnt(), 2);
        // Near K the target is W_max: with cwnd at W_max the increase is negligible.
        cc.set_cwnd(100 * MSS);
        cc.on_ack(&ack(14_216, 1, 100));
        assert_eq!(cc.cnt(), 10_000, "100 × cwnd");
        // Six seconds: t = 6246, offs 1930, delta 2, target 102: cnt = 100 / 2 = 50.
        cc.on_ack(&ack(16_000, 1, 100));
        assert_eq!(cc.cnt(), 50);
    }

    /// RFC 9438 §4.7: a loss below the previous W_max sets W_max = cwnd (1 + β) / 2.
    #[test]
    fn fast_convergence() {
        let mut cc = Cubic::new(MSS, 10);
        cc.set_cwnd(100 * MSS);
        cc.on_congestion_event(Instant::ZERO, 100 * MSS);
        assert_eq!(cc.w_max(), 100);
        cc.set_cwnd(80 * MSS);
        cc.on_ack(&ack(1000, 1, 50)); // recovery over
        cc.on_congestion_event(Instant::from_millis(2000), 80 * MSS);
        assert_eq!(cc.w_max(), 68, "80 × 1741/2048 = 68.01");
        assert_eq!(cc.ssthresh(), 56 * MSS, "80 × 717/1024 = 56.02");
        // A loss above W_max: W_max = cwnd.
        cc.set_cwnd(90 * MSS);
        cc.on_ack(&ack(3000, 1, 50));
        cc.on_congestion_event(Instant::from_millis(4000), 90 * MSS);
        assert_eq!(cc.w_max(), 90);
        // Without fast convergence W_max is always cwnd.
        let mut cc = Cubic::new(MSS, 10);
        cc.set_fast_convergence(false);
        cc.set_cwnd(100 * MSS);
        cc.on_congestion_event(Instant::ZERO, 100 * MSS);
        cc.set_cwnd(80 * MSS);
        cc.on_ack(&ack(1000, 1, 50));
        cc.on_congestion_event(Instant::from_millis(2000), 80 * MSS);
        assert_eq!(cc.w_max(), 80);
        // The ssthresh floor is two segments.
        let mut cc = Cubic::new(MSS, 2);
        cc.on_congestion_event(Instant::ZERO, 2 * MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
    }

    /// RFC 9438 §4.3: when cwnd starts at W_max (K = 0) the cubic term stays below one
    /// segment for the first second, so the Reno-friendly estimate drives growth: W_est
    /// gains one segment per 16 × 15/8 = 30 ACKed, and cnt becomes cwnd / (W_est − cwnd).
    #[test]
    fn reno_friendly_region() {
        let mut cc = Cubic::new(MSS, 16);
        cc.on_congestion_event(Instant::ZERO, 16 * MSS);
        assert_eq!(cc.w_max(), 16);
        assert_eq!(cc.ssthresh(), 11 * MSS);
        cc.set_cwnd(16 * MSS);
        // One ACK every 32 ms (each recomputes), no RTT samples: 30 ACKs, 0.93 s.
        for i in 0..30 {
            cc.on_ack(&ack(1000 + 32 * i, 1, 0));
            assert_eq!(cc.cwnd_segments(), 16);
            assert_eq!(cc.cnt(), 1600, "the target is not above cwnd");
        }
        assert_eq!(cc.w_est(), 16);
        // The 31st: W_est 17, cnt = 16 / 1, and the 30 counted segments pay for it.
        cc.on_ack(&ack(1000 + 32 * 30, 1, 0));
        assert_eq!(cc.w_est(), 17);
        assert_eq!(cc.cnt(), 16);
        assert_eq!(cc.cwnd_segments(), 17);
    }

    #[test]
    fn growth_is_at_most_one_segment_per_two_acked() {
        let mut cc = Cubic::new(MSS, 10);
        cc.set_cwnd(100 * MSS);
        cc.on_congestion_event(Instant::ZERO, 100 * MSS);
        cc.set_cwnd(70 * MSS);
        // Far beyond K the target is huge; cnt is held at 2.
        cc.on_ack(&ack(1000, 1, 100));
        cc.on_ack(&ack(100_000, 1, 100));
        assert_eq!(cc.cnt(), 2);
        let before = cc.cwnd_segments();
        for i in 0..20 {
            cc.on_ack(&ack(100_000 + 40 * i, 1, 100));
        }
        assert_eq!(cc.cwnd_segments(), before + 10);
    }

    #[test]
    fn undo_restores_window() {
        let mut cc = Cubic::new(MSS, 10);
        cc.set_cwnd(20 * MSS);
        cc.on_congestion_event(Instant::ZERO, 20 * MSS);
        assert_eq!(cc.ssthresh(), 14 * MSS);
        cc.set_cwnd(14 * MSS);
        cc.undo();
        assert_eq!(cc.cwnd_segments(), 20);
        assert_eq!(cc.ssthresh(), u32::MAX);
        assert_eq!(cc.w_max(), 20, "undo leaves CUBIC's own state, as Linux");
        // After a timeout (which forgets W_max) undo still restores cwnd and ssthresh.
        cc.on_rto(Instant::from_millis(500), 20 * MSS);
        assert_eq!(cc.cwnd_segments(), 1);
        assert_eq!(cc.ssthresh(), 14 * MSS);
        cc.undo();
        assert_eq!(cc.cwnd_segments(), 20);
        assert_eq!(cc.ssthresh(), u32::MAX);
    }

    #[test]
    fn repeated_rto_keeps_ssthresh() {
        let mut cc = Cubic::new(MSS, 10);
        cc.on_rto(Instant::from_millis(1000), 10 * MSS);
        assert_eq!(cc.ssthresh(), 7 * MSS);
        cc.on_rto(Instant::from_millis(3000), 10 * MSS);
        assert_eq!(cc.ssthresh(), 7 * MSS, "the same data timed out again");
        assert_eq!(cc.cwnd_segments(), 1);
        cc.on_ack(&ack(3100, 1, 0));
        // Progress: the next timeout is a new loss, from cwnd 2: max(2 × 0.7, 2) = 2.
        cc.on_rto(Instant::from_millis(5000), 2 * MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        // A timeout during recovery keeps the recovery's ssthresh.
        let mut cc = Cubic::new(MSS, 10);
        cc.set_cwnd(40 * MSS);
        cc.on_congestion_event(Instant::ZERO, 40 * MSS);
        assert_eq!(cc.ssthresh(), 28 * MSS);
        cc.set_cwnd(30 * MSS);
        cc.on_rto(Instant::from_millis(1000), 30 * MSS);
        assert_eq!(cc.ssthresh(), 28 * MSS);
    }

    #[test]
    fn app_limited_does_not_grow() {
        let mut cc = Cubic::new(MSS, 10);
        for i in 0..50 {
            let mut a = ack(100 * i, 2, 50);
            a.cwnd_limited = false;
            cc.on_ack(&a);
        }
        assert_eq!(cc.cwnd_segments(), 10);
        cc.on_congestion_event(Instant::from_millis(6000), 10 * MSS);
        cc.set_cwnd(cc.ssthresh());
        for i in 0..200 {
            let mut a = ack(7000 + 100 * i, 2, 50);
            a.cwnd_limited = false;
            cc.on_ack(&a);
        }
        assert_eq!(cc.cwnd_segments(), 7);
    }

    #[test]
    fn tx_start_shifts_the_epoch() {
        let mut cc = Cubic::new(MSS, 10);
        cc.set_cwnd(100 * MSS);
        cc.on_congestion_event(Instant::ZERO, 100 * MSS);
        cc.set_cwnd(70 * MSS);
        // Without an epoch there is nothing to shift.
        cc.on_tx_start(
            &super::super::Flight::idle(Instant::from_millis(500)),
            Duration::from_millis(400),
        );
        assert_eq!(cc.epoch_start, None);
        cc.on_ack(&ack(1000, 1, 100));
        assert_eq!(cc.epoch_start, Some(1000));
        // 1.5 s idle, sending resumes at 3 s: the epoch moves to 2.5 s.
        cc.on_tx_start(
            &super::super::Flight::idle(Instant::from_millis(3000)),
            Duration::from_millis(1500),
        );
        assert_eq!(cc.epoch_start, Some(2500));
        // So one second of sending later the target is where it was one second in: cnt 3
        // (see k_and_the_cubic_target).
        cc.on_ack(&ack(3500, 1, 100));
        assert_eq!(cc.cnt(), 3);
        // Never beyond now.
        cc.on_tx_start(
            &super::super::Flight::idle(Instant::from_millis(4000)),
            Duration::from_secs(60),
        );
        assert_eq!(cc.epoch_start, Some(4000));
    }

    #[test]
    fn delay_min_skips_samples_after_epoch_start() {
        let mut cc = Cubic::new(MSS, 10);
        cc.on_ack(&ack(100, 1, 80));
        assert_eq!(cc.delay_min(), Some(Duration::from_millis(80)));
        cc.set_cwnd(20 * MSS);
        cc.on_congestion_event(Instant::from_millis(200), 20 * MSS);
        cc.set_cwnd(14 * MSS);
        cc.on_ack(&ack(300, 1, 60)); // taken: the epoch starts with this ACK
        assert_eq!(cc.delay_min(), Some(Duration::from_millis(60)));
        cc.on_ack(&ack(900, 1, 30)); // within a second of the epoch start: ignored
        assert_eq!(cc.delay_min(), Some(Duration::from_millis(60)));
        cc.on_ack(&ack(1300, 1, 30));
        assert_eq!(cc.delay_min(), Some(Duration::from_millis(30)));
    }

    #[test]
    fn mss_change_keeps_segments() {
        let mut cc = Cubic::new(536, 10);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14_600, "IW recomputed before any ACK");
        cc.on_ack(&test_util::ack(100, 2, 1460, 50));
        assert_eq!(cc.cwnd(), 12 * 1460);
        cc.set_mss(1400);
        assert_eq!(cc.cwnd(), 12 * 1400);
        cc.on_congestion_event(Instant::from_millis(200), 12 * 1400);
        assert_eq!(cc.ssthresh(), 8 * 1400);
        cc.set_mss(1000);
        assert_eq!(cc.ssthresh(), 8 * 1000);
    }

    /// One round of slow start: `n` segments in flight at its start, each ACKed alone with an
    /// RTT of `rtt_ms`; SND.NXT as it stood when the round began.
    fn round(cc: &mut Cubic, una: &mut u32, now_ms: u64, rtt_ms: u64) -> Vec<(u32, u32)> {
        let n = cc.cwnd_segments();
        let end = *una + n * MSS;
        (0..n)
            .map(|_| {
                *una += MSS;
                let mut a = ack(now_ms, 1, rtt_ms);
                a.snd_una = SeqNum(*una);
                a.snd_nxt = SeqNum(end);
                cc.on_ack(&a);
                (cc.cwnd_segments(), cc.ssthresh())
            })
            .collect()
    }

    /// RFC 9406 inside CUBIC: an RTT rise from 40 to 50 ms in the third round (≥ 40 + 5)
    /// moves to CSS after its 8th sample, where cwnd grows a quarter as fast; after five CSS
    /// rounds ssthresh = cwnd and congestion avoidance begins.
    #[test]
    fn hystart_exits_slow_start_on_rtt_increase() {
        let mut cc = Cubic::new(MSS, 10);
        let mut una = 0;
        round(&mut cc, &mut una, 100, 40);
        assert_eq!(cc.cwnd_segments(), 20);
        round(&mut cc, &mut una, 200, 40);
        assert_eq!(cc.cwnd_segments(), 40);
        let r = round(&mut cc, &mut una, 300, 50);
        // 7 ACKs of slow start (47), then 33 in CSS: 8 more, one ACK of credit left.
        assert_eq!(r[6].0, 47);
        assert_eq!(r[7].0, 47);
        assert!(cc.hystart().in_css());
        assert_eq!(cc.cwnd_segments(), 55);
        for expected in [69, 86, 107, 134] {
            round(&mut cc, &mut una, 400, 50);
            assert_eq!(cc.cwnd_segments(), expected);
            assert_eq!(cc.ssthresh(), u32::MAX);
        }
        // The first ACK of the next round ends CSS: ssthresh = cwnd.
        let r = round(&mut cc, &mut una, 500, 50);
        assert_eq!(r[0], (134, 134 * MSS));
        assert_eq!(cc.hystart().phase(), Phase::Done);
        assert!(!cc.in_slow_start());
        assert_eq!(cc.w_max(), 0);
    }

    #[test]
    fn hystart_ignores_noise_and_small_windows() {
        // Jitter of a few ms on 40 ms: slow start doubles every round.
        let mut cc = Cubic::new(MSS, 10);
        let mut una = 0;
        for (i, expected) in [20, 40, 80, 160, 320, 640].into_iter().enumerate() {
            let n = cc.cwnd_segments();
            let end = una + n * MSS;
            for j in 0..n {
                una += MSS;
                let mut a = ack(100 * i as u64, 1, [40, 44, 41, 43, 42][j as usize % 5]);
                a.snd_una = SeqNum(una);
                a.snd_nxt = SeqNum(end);
                cc.on_ack(&a);
            }
            assert_eq!(cc.cwnd_segments(), expected);
        }
        assert_eq!(cc.ssthresh(), u32::MAX);
        assert_eq!(cc.hystart().phase(), Phase::SlowStart);
        // Windows below 16 segments never leave slow start through HyStart++, whatever the
        // RTT does (the packetdrill scripts' slow starts).
        let mut cc = Cubic::new(MSS, 4);
        let mut una = 0;
        round(&mut cc, &mut una, 100, 10);
        round(&mut cc, &mut una, 200, 100);
        assert_eq!(cc.cwnd_segments(), 16);
        assert_eq!(cc.hystart().phase(), Phase::SlowStart);
    }

    #[test]
    fn hystart_only_in_initial_slow_start() {
        // A timeout ends it for good (Linux resets it in TCP_CA_Loss).
        let mut cc = Cubic::new(MSS, 10);
        cc.on_rto(Instant::from_millis(1000), 10 * MSS);
        assert_eq!(cc.hystart().phase(), Phase::Done);
        // A fast recovery sets ssthresh: HyStart is skipped, not ended, and an undo (the
        // recovery was spurious) restores the infinite ssthresh and with it HyStart.
        let mut cc = Cubic::new(MSS, 10);
        cc.on_congestion_event(Instant::from_millis(1000), 10 * MSS);
        assert!(!cc.w.initial_slow_start());
        assert_eq!(cc.hystart().phase(), Phase::SlowStart);
        cc.undo();
        assert!(cc.w.initial_slow_start() && cc.w.in_slow_start());
        assert_eq!(cc.hystart().phase(), Phase::SlowStart);
    }
}
