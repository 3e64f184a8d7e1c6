//! HyStart++ (RFC 9406): leave slow start when the RTT starts to grow, before the queue
//! overflows, through a phase of slower growth (Conservative Slow Start, CSS) that can still
//! undo a spurious exit.
//!
//! Linux's CUBIC uses the older HyStart, with two tests (`tcp_cubic.c` `hystart_update`,
//! `hystart_detect` = both): a delay test, which synack replaces by RFC 9406's, and the
//! ACK-train test, which synack runs as Linux does alongside it (see [ACK trains](#ack-trains)).
//! Choices where the RFC leaves room:
//!
//! * Only the initial slow start (ssthresh still infinite) uses it (RFC 9406 §4.2 "SHOULD");
//!   the controller [`disable`](HyStart::disable)s it at the first congestion event.
//! * Rounds: a round ends when SND.UNA passes `windowEnd`, the SND.NXT recorded when it began
//!   (§4.2).
//! * L, the per-ACK growth limit of §4.2, is infinite (the RFC's value for paced senders):
//!   slow start counts every ACKed segment as Linux's does; CSS counts a quarter of them.
//! * Like Linux's HyStart, the exit test runs only from a window of 16 segments on
//!   (`hystart_low_window`): smaller windows give too few samples per round to judge, and
//!   the packetdrill scripts' small-window slow starts stay untouched.
//!
//! # ACK trains
//!
//! On a path with a bottleneck, the ACKs of one round come back spaced by the bottleneck's
//! serialisation time: a train of ACKs each close to the previous one, as long as the window
//! takes to drain through the bottleneck. Once that train lasts longer than about half the
//! minimum RTT, the window in flight is about one BDP and slow start should end, before the
//! doubling overflows the queue (the delay test reacts only once the queue has grown by a
//! few ms). Linux's test, whose facts synack follows:
//!
//! * Each round starts the train at its first ACK (`round_start`, and `last_ack` with it).
//! * An ACK with an RTT sample that arrives at most [`ACK_DELTA`] (2 ms,
//!   `hystart_ack_delta_us`) after the previous train ACK extends the train; a larger gap ends
//!   it for the rest of the round (the later ACKs are compared with the last one in the train).
//! * The train ends slow start (ssthresh = cwnd, at once: no CSS) when it is longer than
//!   `(delay_min + ack_delay) / 2`: `delay_min` is CUBIC's minimum RTT, `ack_delay` the
//!   time to send four GSO-sized packets at the pacing rate, at most 1 ms
//!   (`hystart_ack_delay`). Linux halves the sum only when the socket is not paced (no `fq`):
//!   synack paces CUBIC only on request, and halves it always.
//! * The pacing rate Linux divides by is `2 × cwnd × MSS / SRTT` in slow start; here the RTT
//!   in it is `delay_min` (SRTT is not in an ACK sample), which differs only while a queue
//!   builds, when the 1 ms cap applies anyway except on sub-millisecond paths.
//! * Like the delay test, only from a window of [`LOW_WINDOW`] segments on.

use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant, nanos_of};

/// RFC 9406 §4.3: lower bound of the RTT increase that ends slow start.
pub const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// RFC 9406 §4.3: upper bound of the RTT increase that ends slow start.
pub const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// RFC 9406 §4.3: the threshold is the last round's minimum RTT divided by this.
pub const MIN_RTT_DIVISOR: u32 = 8;
/// RFC 9406 §4.3: RTT samples a round needs before its minimum is compared.
pub const N_RTT_SAMPLE: u32 = 8;
/// RFC 9406 §4.3: CSS grows cwnd this many times slower than slow start.
pub const CSS_GROWTH_DIVISOR: u32 = 4;
/// RFC 9406 §4.3: rounds of CSS before congestion avoidance.
pub const CSS_ROUNDS: u32 = 5;
/// Linux's `hystart_low_window`: the exit test needs a window of at least this many segments.
pub const LOW_WINDOW: u32 = 16;
/// Linux's `hystart_ack_delta_us`: ACKs at most this far apart form a train.
pub const ACK_DELTA: Duration = Duration::from_millis(2);
/// The cap of the ACK-train threshold's allowance for ACK compression (Linux
/// `hystart_ack_delay`: at most one millisecond).
pub const ACK_DELAY_MAX: Duration = Duration::from_millis(1);
/// The largest GSO packet Linux's allowance is computed from (`sk_gso_max_size`, 64 KiB).
pub const GSO_MAX_SIZE: u64 = 65_536;

/// Where HyStart++ stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Standard slow start, watching the RTT.
    SlowStart,
    /// Conservative Slow Start since an RTT increase to `baseline` (the round's minimum RTT
    /// that triggered it, in microseconds); `rounds` counts the rounds begun in CSS, the
    /// partial first one included (§4.2).
    Css { baseline: u64, rounds: u32 },
    /// Finished (slow start left, or disabled after a congestion event).
    Done,
}

/// What the controller should do after an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep going (in slow start or CSS).
    Continue,
    /// CSS ran its rounds (§4.2), or an ACK train as long as half the minimum RTT showed
    /// the window fills the path: set ssthresh = cwnd and enter congestion avoidance.
    EnterCongestionAvoidance,
}

/// One ACK as HyStart sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HyStartAck {
    /// When the ACK arrived.
    pub now: Instant,
    /// SND.UNA after the ACK.
    pub snd_una: SeqNum,
    /// SND.NXT (the highest sent) after the ACK.
    pub snd_nxt: SeqNum,
    /// The ACK's RTT sample in microseconds, if any. (RTTs here are in the clock's
    /// microseconds, as the connection measures them: no `Duration` per ACK.)
    pub rtt: Option<u64>,
    /// The controller's minimum RTT in microseconds, this sample included.
    pub delay_min: Option<u64>,
    /// cwnd in segments.
    pub cwnd: u32,
    /// The sender MSS in bytes.
    pub mss: u32,
}

/// HyStart++ state for one connection (RFC 9406 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyStart {
    phase: Phase,
    /// SND.NXT when the current round began; `None` before the first ACK.
    window_end: Option<SeqNum>,
    /// In microseconds, as the samples.
    last_round_min_rtt: Option<u64>,
    current_round_min_rtt: Option<u64>,
    rtt_sample_count: u32,
    /// Segments ACKed in CSS not yet turned into growth (CSS grows by a quarter of them).
    css_credit: u32,
    /// When the current round's first ACK arrived (Linux `round_start`).
    round_start: Instant,
    /// The last ACK of the current round's ACK train (Linux `last_ack`).
    last_ack: Instant,
}

impl Default for HyStart {
    fn default() -> Self {
        HyStart::new()
    }
}

impl HyStart {
    /// Slow start, no round begun yet.
    pub fn new() -> HyStart {
        HyStart {
            phase: Phase::SlowStart,
            window_end: None,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            rtt_sample_count: 0,
            css_credit: 0,
            round_start: Instant::ZERO,
            last_ack: Instant::ZERO,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True in slow start or CSS.
    pub fn is_active(&self) -> bool {
        self.phase != Phase::Done
    }

    /// True in Conservative Slow Start.
    pub fn in_css(&self) -> bool {
        matches!(self.phase, Phase::Css { .. })
    }

    /// Stop for good: a congestion event or timeout ended the initial slow start (§4.2: loss
    /// during slow start or CSS leads to the normal loss response and congestion avoidance).
    pub fn disable(&mut self) {
        self.phase = Phase::Done;
        self.css_credit = 0;
    }

    /// One ACK during slow start: track rounds and RTT minima, and decide on slow-start exit
    /// (§4.2, and the ACK train). Inlined into CUBIC's `on_ack`, on every ACK of the initial
    /// slow start: the `HyStartAck` is then never built in memory.
    #[inline]
    pub fn on_ack(&mut self, ack: &HyStartAck) -> Verdict {
        if self.phase == Phase::Done {
            return Verdict::Continue;
        }
        // A round ends when its windowEnd is acknowledged; the next begins at SND.NXT.
        if self.window_end.is_none_or(|end| ack.snd_una > end) {
            self.window_end = Some(ack.snd_nxt);
            self.round_start = ack.now;
            self.last_ack = ack.now;
            self.last_round_min_rtt = self.current_round_min_rtt;
            self.current_round_min_rtt = None;
            self.rtt_sample_count = 0;
            if let Phase::Css { baseline, rounds } = self.phase {
                if rounds >= CSS_ROUNDS {
                    self.disable();
                    return Verdict::EnterCongestionAvoidance;
                }
                self.phase = Phase::Css {
                    baseline,
                    rounds: rounds + 1,
                };
            }
        }
        let Some(rtt) = ack.rtt else {
            return Verdict::Continue;
        };
        if ack.cwnd >= LOW_WINDOW && self.ack_train_exit(ack, ack.delay_min.unwrap_or(rtt)) {
            self.disable();
            return Verdict::EnterCongestionAvoidance;
        }
        let current = self.current_round_min_rtt.map_or(rtt, |m| m.min(rtt));
        self.current_round_min_rtt = Some(current);
        self.rtt_sample_count = self.rtt_sample_count.saturating_add(1);
        if self.rtt_sample_count < N_RTT_SAMPLE || ack.cwnd < LOW_WINDOW {
            return Verdict::Continue;
        }
        match self.phase {
            Phase::SlowStart => {
                let Some(last) = self.last_round_min_rtt else {
                    return Verdict::Continue;
                };
                // RttThresh = max(MIN_RTT_THRESH, min(lastRoundMinRTT / MIN_RTT_DIVISOR,
                // MAX_RTT_THRESH)), in nanoseconds: an eighth of whole microseconds is
                // whole nanoseconds, so the comparison is exact.
                let thresh = (last.saturating_mul(1000) / u64::from(MIN_RTT_DIVISOR))
                    .clamp(nanos_of(MIN_RTT_THRESH), nanos_of(MAX_RTT_THRESH));
                if current.saturating_mul(1000) >= last.saturating_mul(1000).saturating_add(thresh)
                {
                    self.phase = Phase::Css {
                        baseline: current,
                        rounds: 1,
                    };
                    self.css_credit = 0;
                }
            }
            Phase::Css { baseline, .. } => {
                // The RTT fell below the baseline again: the exit was spurious.
                if current < baseline {
                    self.phase = Phase::SlowStart;
                    self.css_credit = 0;
                }
            }
            Phase::Done => {}
        }
        Verdict::Continue
    }

    /// The ACK-train test (see [ACK trains](self#ack-trains)): true when the train of ACKs
    /// at most 2 ms apart that began with this round has lasted longer than the threshold.
    fn ack_train_exit(&mut self, ack: &HyStartAck, delay_min: u64) -> bool {
        let since = |t: Instant| ack.now.micros_since(t);
        if u128::from(since(self.last_ack)) > ACK_DELTA.as_micros() {
            return false;
        }
        self.last_ack = ack.now;
        // The train lasted longer than half of `delay_min` plus the allowance: compared
        // doubled, so that the half microsecond counts as it would.
        let threshold = u128::from(delay_min) + u128::from(ack_delay(delay_min, ack.cwnd, ack.mss));
        2 * u128::from(since(self.round_start)) > threshold
    }

    /// The slow-start increase, in segments, for `acked` segments: all of them in slow start,
    /// a quarter in CSS (`cwnd += acked / CSS_GROWTH_DIVISOR`, remainders carried over).
    pub fn growth(&mut self, acked: u32) -> u32 {
        if !self.in_css() {
            return acked;
        }
        let credit = self.css_credit.saturating_add(acked);
        self.css_credit = credit % CSS_GROWTH_DIVISOR;
        credit / CSS_GROWTH_DIVISOR
    }
}

/// Linux's `hystart_ack_delay`: the time four GSO-sized packets take at the slow-start pacing
/// rate `2 × cwnd × mss / rtt`, at most [`ACK_DELAY_MAX`].
fn ack_delay(rtt_us: u64, cwnd: u32, mss: u32) -> u64 {
    let rate_den = 2 * u128::from(cwnd.max(1)) * u128::from(mss.max(1));
    let us = 4 * u128::from(GSO_MAX_SIZE) * u128::from(rtt_us) / rate_den;
    u64::try_from(us)
        .unwrap_or(u64::MAX)
        .min(ACK_DELAY_MAX.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender whose rounds are driven by hand: SND.UNA and SND.NXT in bytes.
    struct Flow {
        hs: HyStart,
        una: u32,
        nxt: u32,
        /// The clock; ACKs of [`round`](Flow::round) all arrive at this instant.
        now: Instant,
    }

    impl Flow {
        fn new() -> Flow {
            Flow {
                hs: HyStart::new(),
                una: 0,
                nxt: 0,
                now: Instant::ZERO,
            }
        }

        /// One round: `n` segments of 1000 bytes were in flight when it began, each ACKed
        /// separately with the RTTs of `rtts` (cycled), at window `cwnd`; the verdicts.
        fn round(&mut self, n: u32, rtts: &[u64], cwnd: u32) -> Vec<Verdict> {
            self.nxt = self.una + n * 1000;
            (0..n)
                .map(|i| {
                    self.una += 1000;
                    let rtt = 1000 * rtts[i as usize % rtts.len()];
                    self.hs.on_ack(&HyStartAck {
                        now: self.now,
                        snd_una: SeqNum(self.una),
                        snd_nxt: SeqNum(self.nxt),
                        rtt: Some(rtt),
                        delay_min: None,
                        cwnd,
                        mss: 1000,
                    })
                })
                .collect()
        }

        /// One round of `n` ACKs at the times `gaps_us` apart (cycled; the first ACK comes
        /// `gaps_us[0]` after the clock), RTT samples of `rtt_us`, CUBIC's minimum delay
        /// `min_us`, window `cwnd` of 1448-byte segments; the verdicts.
        fn train(
            &mut self,
            n: u32,
            gaps_us: &[u64],
            rtt_us: u64,
            min_us: u64,
            cwnd: u32,
        ) -> Vec<Verdict> {
            self.nxt = self.una + n * 1000;
            (0..n)
                .map(|i| {
                    self.una += 1000;
                    self.now += Duration::from_micros(gaps_us[i as usize % gaps_us.len()]);
                    self.hs.on_ack(&HyStartAck {
                        now: self.now,
                        snd_una: SeqNum(self.una),
                        snd_nxt: SeqNum(self.nxt),
                        rtt: Some(rtt_us),
                        delay_min: Some(min_us),
                        cwnd,
                        mss: 1448,
                    })
                })
                .collect()
        }
    }

    /// A 10 ms path through a 100 Mbit/s bottleneck: the ACKs of a round come back 116 µs
    /// apart (one 1448-byte segment's serialisation). The threshold is (10 ms + 1 ms) / 2 =
    /// 5.5 ms (the allowance 4 × 64 KiB / (2 × 40 × 1448 B / 10 ms) = 22.6 ms, capped at 1 ms):
    /// the 49th ACK of a round (48 × 116 µs = 5.568 ms after its first) ends slow start, at
    /// once (no CSS), with the RTT still at its minimum.
    #[test]
    fn ack_train_of_half_the_min_rtt_ends_slow_start() {
        let mut f = Flow::new();
        // A first round of 30 ACKs: 29 × 116 µs = 3.4 ms, shorter than the threshold.
        let v = f.train(30, &[116], 10_000, 10_000, 40);
        assert!(v.iter().all(|&v| v == Verdict::Continue));
        assert_eq!(f.hs.phase(), Phase::SlowStart);
        // The next round is twice as long.
        f.now += Duration::from_millis(7);
        let v = f.train(60, &[116], 10_000, 10_000, 60);
        assert_eq!(
            v.iter()
                .position(|&v| v == Verdict::EnterCongestionAvoidance),
            Some(48)
        );
        assert!(v[..48].iter().all(|&v| v == Verdict::Continue));
        assert_eq!(f.hs.phase(), Phase::Done);
        assert_eq!(f.hs.growth(4), 4);
        // Exactly at the threshold is not beyond it: 11 ACKs 550 µs apart span 5.5 ms.
        let mut f = Flow::new();
        let v = f.train(11, &[550], 10_000, 10_000, 40);
        assert!(v.iter().all(|&v| v == Verdict::Continue));
        let v = f.train(12, &[550], 10_000, 10_000, 40);
        assert_eq!(
            v[11],
            Verdict::EnterCongestionAvoidance,
            "5.5 ms, then 6.05 ms"
        );
    }

    /// A gap of more than 2 ms ends the train for the rest of the round; the next round
    /// starts a new one. Below a window of 16 segments the test is not made.
    #[test]
    fn ack_train_broken_by_a_gap_or_small_window() {
        let mut f = Flow::new();
        // 20 ACKs 200 µs apart (3.8 ms), a gap of 2.001 ms, 20 more (ending 9.8 ms after the
        // round's first ACK): the train stopped at 3.8 ms.
        let mut gaps = vec![200; 20];
        gaps.push(2_001);
        gaps.extend([200; 19]);
        let v = f.train(40, &gaps, 10_000, 10_000, 40);
        assert!(v.iter().all(|&v| v == Verdict::Continue));
        assert_eq!(f.hs.phase(), Phase::SlowStart);
        // A gap of exactly 2 ms keeps it going.
        let mut gaps = vec![200; 20];
        gaps.push(2_000);
        gaps.extend([200; 19]);
        let v = f.train(40, &gaps, 10_000, 10_000, 40);
        // 19 × 200 + 2000 = 5.8 ms at the 21st ACK of the round.
        assert_eq!(
            v.iter()
                .position(|&v| v == Verdict::EnterCongestionAvoidance),
            Some(20)
        );
        // Window 15: no test, however long the train.
        let mut f = Flow::new();
        let v = f.train(100, &[200], 10_000, 10_000, 15);
        assert!(v.iter().all(|&v| v == Verdict::Continue));
        assert_eq!(f.hs.phase(), Phase::SlowStart);
    }

    /// On a sub-millisecond path the allowance is below its cap: RTT 100 µs, window 16 of
    /// 1448 bytes paced at 2 × 16 × 1448 B / 100 µs: 4 × 64 KiB take 565 µs; the threshold is
    /// (100 + 565) / 2 = 332.5 µs.
    #[test]
    fn ack_train_threshold_on_a_short_path() {
        assert_eq!(ack_delay(100, 16, 1448), 565);
        assert_eq!(
            ack_delay(10_000, 16, 1448),
            ACK_DELAY_MAX.as_micros() as u64
        );
        let mut f = Flow::new();
        let v = f.train(34, &[10], 100, 100, 16);
        assert!(v.iter().all(|&v| v == Verdict::Continue), "330 µs");
        let v = f.train(35, &[10], 100, 100, 16);
        assert_eq!(v[34], Verdict::EnterCongestionAvoidance, "340 µs");
    }

    #[test]
    fn exits_on_rtt_increase() {
        let mut f = Flow::new();
        // Base RTT 40 ms: threshold max(4, min(40/8 = 5, 16)) = 5 ms.
        f.round(20, &[40, 41, 42], 20);
        f.round(20, &[40, 43, 41], 20);
        assert_eq!(f.hs.phase(), Phase::SlowStart);
        // The queue builds: every sample of the next round is at least 45 ms.
        let v = f.round(20, &[45, 47, 50], 20);
        assert!(v.iter().all(|&v| v == Verdict::Continue));
        assert_eq!(
            f.hs.phase(),
            Phase::Css {
                baseline: 45_000,
                rounds: 1
            }
        );
        // CSS grows by a quarter, remainders carried.
        assert_eq!(f.hs.growth(3), 0);
        assert_eq!(f.hs.growth(3), 1);
        assert_eq!(f.hs.growth(10), 3);
    }

    /// The threshold keeps the eighth of a microsecond: last round's minimum 40.001 ms gives
    /// RttThresh = 5.000125 ms, so CSS begins at a round minimum of 45.001125 ms or more
    /// (§4.2: `currentRoundMinRTT >= lastRoundMinRTT + RttThresh`). 45.001 ms stays in slow
    /// start (a whole-µs `last / 8` = 5.000 ms would exit here), 45.002 ms exits.
    #[test]
    fn rtt_threshold_keeps_fractions_of_a_microsecond() {
        let setup = || {
            let mut f = Flow::new();
            // All ACKs of a round at one instant: no ACK train.
            f.train(20, &[0], 40_001, 40_001, 20);
            f.train(20, &[0], 40_001, 40_001, 20);
            assert_eq!(f.hs.phase(), Phase::SlowStart);
            f
        };
        let mut f = setup();
        let v = f.train(20, &[0], 45_001, 40_001, 20);
        assert!(v.iter().all(|&v| v == Verdict::Continue));
        assert_eq!(f.hs.phase(), Phase::SlowStart, "45.001 ms < 45.001125 ms");
        let mut f = setup();
        let v = f.train(20, &[0], 45_002, 40_001, 20);
        assert!(v.iter().all(|&v| v == Verdict::Continue));
        assert_eq!(
            f.hs.phase(),
            Phase::Css {
                baseline: 45_002,
                rounds: 1
            },
            "45.002 ms >= 45.001125 ms"
        );
    }

    #[test]
    fn exit_needs_eight_samples_and_window_of_sixteen() {
        // Only 7 samples in the slow round: no decision.
        let mut f = Flow::new();
        f.round(20, &[40], 20);
        f.round(7, &[60], 20);
        assert_eq!(f.hs.phase(), Phase::SlowStart);
        // The 8th sample of a round decides.
        let mut f = Flow::new();
        f.round(20, &[40], 20);
        let v = f.round(8, &[60], 20);
        assert_eq!(v.len(), 8);
        assert!(f.hs.in_css());
        // Below 16 segments the test is not made (Linux hystart_low_window).
        let mut f = Flow::new();
        f.round(20, &[40], 15);
        f.round(20, &[60], 15);
        assert_eq!(f.hs.phase(), Phase::SlowStart);
        // Without a previous round there is nothing to compare with.
        let mut f = Flow::new();
        f.round(30, &[40, 40, 40, 40, 40, 40, 40, 40, 90], 30);
        assert_eq!(f.hs.phase(), Phase::SlowStart);
    }

    #[test]
    fn noise_does_not_exit() {
        let mut f = Flow::new();
        // Jitter of up to 4 ms on a 40 ms path stays under the 5 ms threshold: the minimum
        // of each round is what counts, and single large samples do not move it.
        for _ in 0..20 {
            f.round(32, &[40, 44, 41, 80, 43, 42, 40, 44], 32);
            assert_eq!(f.hs.phase(), Phase::SlowStart);
        }
        // A round whose minimum is 4 ms up (< 5 ms threshold) does not exit either.
        f.round(32, &[44, 46, 60], 32);
        assert_eq!(f.hs.phase(), Phase::SlowStart);
        // Thresholds are clamped: a 200 ms path needs 16 ms (not 25), a 10 ms one 4 ms (not
        // 1.25).
        for (base, below, at) in [(200, 215, 216), (10, 13, 14)] {
            let mut f = Flow::new();
            f.round(20, &[base], 20);
            f.round(20, &[below], 20);
            assert_eq!(f.hs.phase(), Phase::SlowStart, "{base} ms then {below} ms");
            let mut f = Flow::new();
            f.round(20, &[base], 20);
            f.round(20, &[at], 20);
            assert!(f.hs.in_css(), "{base} ms then {at} ms");
        }
    }

    #[test]
    fn css_spurious_exit_resumes_slow_start() {
        let mut f = Flow::new();
        f.round(20, &[40], 20);
        f.round(20, &[50], 20);
        assert!(f.hs.in_css());
        // The next round's minimum falls below the 50 ms baseline: back to slow start.
        f.round(20, &[49], 20);
        assert_eq!(f.hs.phase(), Phase::SlowStart);
        assert_eq!(f.hs.growth(4), 4);
    }

    #[test]
    fn css_ends_after_five_rounds() {
        let mut f = Flow::new();
        f.round(20, &[40], 20);
        // The increase is seen on the 8th ACK: the rest of this round is CSS round 1.
        f.round(20, &[50], 20);
        assert!(f.hs.in_css());
        for r in 2..=5 {
            let v = f.round(20, &[50], 20);
            assert!(v.iter().all(|&v| v == Verdict::Continue));
            assert_eq!(
                f.hs.phase(),
                Phase::Css {
                    baseline: 50_000,
                    rounds: r
                }
            );
        }
        // The first ACK of the sixth round ends CSS.
        let v = f.round(20, &[50], 20);
        assert_eq!(v[0], Verdict::EnterCongestionAvoidance);
        assert!(v[1..].iter().all(|&v| v == Verdict::Continue));
        assert_eq!(f.hs.phase(), Phase::Done);
        assert_eq!(f.hs.growth(8), 8, "growth is no longer divided");
    }

    /// An ACK at time zero with window 20 and an RTT sample of `rtt_ms`.
    fn at_zero(una: u32, nxt: u32, rtt_ms: u32) -> HyStartAck {
        HyStartAck {
            now: Instant::ZERO,
            snd_una: SeqNum(una),
            snd_nxt: SeqNum(nxt),
            rtt: Some(1000 * u64::from(rtt_ms)),
            delay_min: None,
            cwnd: 20,
            mss: 1000,
        }
    }

    #[test]
    fn rounds_follow_sequence_numbers_across_the_wrap() {
        let mut hs = HyStart::new();
        let base = u32::MAX - 5000;
        // Round 1 from SND.NXT = base + 20000 (wrapped).
        for i in 1..=20u32 {
            hs.on_ack(&at_zero(
                base.wrapping_add(i * 1000),
                base.wrapping_add(20_000),
                40,
            ));
        }
        // Round 2 with 8 samples of 50 ms: exit, so round 1 was recognised as a round.
        for i in 21..=28u32 {
            hs.on_ack(&at_zero(
                base.wrapping_add(i * 1000),
                base.wrapping_add(40_000),
                50,
            ));
        }
        assert!(hs.in_css());
    }

    #[test]
    fn disabled_does_nothing() {
        let mut f = Flow::new();
        f.hs.disable();
        f.round(20, &[40], 20);
        f.round(20, &[90], 20);
        assert_eq!(f.hs.phase(), Phase::Done);
        assert!(!f.hs.is_active());
        assert_eq!(f.hs.growth(5), 5);
        // ACKs without an RTT sample count nothing.
        let mut hs = HyStart::new();
        for i in 1..40 {
            let mut a = at_zero(i * 1000, 40_000, 0);
            a.rtt = None;
            a.cwnd = 40;
            hs.on_ack(&a);
        }
        assert_eq!(hs.phase(), Phase::SlowStart);
    }
}
