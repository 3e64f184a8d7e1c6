//! HyStart++ (RFC 9406): leave slow start when the RTT starts to grow, before the queue
//! overflows, through a phase of slower growth (Conservative Slow Start, CSS) that can still
//! undo a spurious exit.
//!
//! Linux's CUBIC uses the older HyStart (ACK trains and delay); synack implements RFC 9406's
//! delay-based algorithm instead. Choices where the RFC leaves room:
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

use crate::tcp::seq::SeqNum;
use crate::time::Duration;

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

/// Where HyStart++ stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Standard slow start, watching the RTT.
    SlowStart,
    /// Conservative Slow Start since an RTT increase to `baseline`; `rounds` counts the rounds
    /// begun in CSS, the partial first one included (§4.2).
    Css { baseline: Duration, rounds: u32 },
    /// Finished (slow start left, or disabled after a congestion event).
    Done,
}

/// What the controller should do after an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep going (in slow start or CSS).
    Continue,
    /// CSS ran its rounds: set ssthresh = cwnd and enter congestion avoidance (§4.2).
    EnterCongestionAvoidance,
}

/// HyStart++ state for one connection (RFC 9406 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyStart {
    phase: Phase,
    /// SND.NXT when the current round began; `None` before the first ACK.
    window_end: Option<SeqNum>,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_sample_count: u32,
    /// Segments ACKed in CSS not yet turned into growth (CSS grows by a quarter of them).
    css_credit: u32,
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
    /// (§4.2). `cwnd` is in segments; `snd_una` and `snd_nxt` are after the ACK.
    pub fn on_ack(
        &mut self,
        snd_una: SeqNum,
        snd_nxt: SeqNum,
        rtt: Option<Duration>,
        cwnd: u32,
    ) -> Verdict {
        if self.phase == Phase::Done {
            return Verdict::Continue;
        }
        // A round ends when its windowEnd is acknowledged; the next begins at SND.NXT.
        if self.window_end.is_none_or(|end| snd_una > end) {
            self.window_end = Some(snd_nxt);
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
        let Some(rtt) = rtt else {
            return Verdict::Continue;
        };
        let current = self.current_round_min_rtt.map_or(rtt, |m| m.min(rtt));
        self.current_round_min_rtt = Some(current);
        self.rtt_sample_count = self.rtt_sample_count.saturating_add(1);
        if self.rtt_sample_count < N_RTT_SAMPLE || cwnd < LOW_WINDOW {
            return Verdict::Continue;
        }
        match self.phase {
            Phase::SlowStart => {
                let Some(last) = self.last_round_min_rtt else {
                    return Verdict::Continue;
                };
                // RttThresh = max(MIN_RTT_THRESH, min(lastRoundMinRTT / MIN_RTT_DIVISOR,
                // MAX_RTT_THRESH))
                let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                if current >= last.saturating_add(thresh) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A sender whose rounds are driven by hand: SND.UNA and SND.NXT in bytes.
    struct Flow {
        hs: HyStart,
        una: u32,
        nxt: u32,
    }

    impl Flow {
        fn new() -> Flow {
            Flow {
                hs: HyStart::new(),
                una: 0,
                nxt: 0,
            }
        }

        /// One round: `n` segments of 1000 bytes were in flight when it began, each ACKed
        /// separately with the RTTs of `rtts` (cycled), at window `cwnd`; the verdicts.
        fn round(&mut self, n: u32, rtts: &[u64], cwnd: u32) -> Vec<Verdict> {
            self.nxt = self.una + n * 1000;
            (0..n)
                .map(|i| {
                    self.una += 1000;
                    let rtt = MS * rtts[i as usize % rtts.len()] as u32;
                    self.hs
                        .on_ack(SeqNum(self.una), SeqNum(self.nxt), Some(rtt), cwnd)
                })
                .collect()
        }
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
                baseline: Duration::from_millis(45),
                rounds: 1
            }
        );
        // CSS grows by a quarter, remainders carried.
        assert_eq!(f.hs.growth(3), 0);
        assert_eq!(f.hs.growth(3), 1);
        assert_eq!(f.hs.growth(10), 3);
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
                    baseline: Duration::from_millis(50),
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

    #[test]
    fn rounds_follow_sequence_numbers_across_the_wrap() {
        let mut hs = HyStart::new();
        let base = u32::MAX - 5000;
        // Round 1 from SND.NXT = base + 20000 (wrapped).
        for i in 1..=20u32 {
            hs.on_ack(
                SeqNum(base.wrapping_add(i * 1000)),
                SeqNum(base.wrapping_add(20_000)),
                Some(40 * MS),
                20,
            );
        }
        // Round 2 with 8 samples of 50 ms: exit, so round 1 was recognised as a round.
        for i in 21..=28u32 {
            hs.on_ack(
                SeqNum(base.wrapping_add(i * 1000)),
                SeqNum(base.wrapping_add(40_000)),
                Some(50 * MS),
                20,
            );
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
            hs.on_ack(SeqNum(i * 1000), SeqNum(40_000), None, 40);
        }
        assert_eq!(hs.phase(), Phase::SlowStart);
    }
}
