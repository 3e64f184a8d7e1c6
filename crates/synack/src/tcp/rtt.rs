//! Round-trip time estimation and the retransmission timeout (RFC 6298).
//!
//! [`RttEstimator`] keeps the smoothed RTT (SRTT), the RTT variation (RTTVAR), the minimum RTT
//! seen, and the retransmission timeout (RTO) derived from them, plus the exponential backoff
//! applied while the retransmission timer keeps expiring. It is pure arithmetic on the samples
//! it is given: which segments may be measured (Karn's algorithm, RFC 6298 §3) is the caller's
//! decision.
//!
//! [`RttSampler`] is the classic way to obtain samples on a connection without the timestamp
//! option (RFC 7323): time one segment per round trip, and forget it if it is retransmitted.

use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant, nanos_of as ns};

/// Clock granularity G in RFC 6298 §2: our clock ticks in microseconds, but RTO arithmetic uses
/// a 1 ms floor for the variance term, as a millisecond-tick stack would.
pub const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

/// Linux's initial RTO, before any RTT sample (RFC 6298 §2.1 also says 1 s).
pub const DEFAULT_INITIAL_RTO: Duration = Duration::from_secs(1);
/// Linux's lower bound on the RTO (`TCP_RTO_MIN`, 200 ms). RFC 6298 §2.4 suggests 1 s; Linux,
/// and therefore we by default, use the smaller value.
pub const DEFAULT_MIN_RTO: Duration = Duration::from_millis(200);
/// The RTO once a connection is established without an RTT sample from its handshake (the
/// SYN or SYN-ACK was retransmitted): RFC 6298 §5.7's 3 s, Linux `TCP_TIMEOUT_FALLBACK`.
pub const FALLBACK_RTO: Duration = Duration::from_secs(3);
/// Linux's upper bound on the RTO (`TCP_RTO_MAX`, 120 s); RFC 6298 §2.5 requires at least 60 s.
pub const DEFAULT_MAX_RTO: Duration = Duration::from_secs(120);

/// A duration as whole nanoseconds, widened so that the estimator's sums cannot overflow.
fn nanos(d: Duration) -> u128 {
    d.as_nanos()
}

/// Nanoseconds as stored, saturating at the largest value a `u64` of nanoseconds holds (about
/// 584 years; far beyond any RTO bound).
fn ns_sat(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The range the RTO is kept in (RFC 6298 §2.4, §2.5). It is configuration, not measurement:
/// the caller passes it in (a connection takes it from its `Config`) rather than every
/// estimator keeping a copy. If `min > max`, `max` wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtoBounds {
    pub min: Duration,
    pub max: Duration,
}

impl RtoBounds {
    /// Linux's bounds: 200 ms to 120 s.
    pub const LINUX: RtoBounds = RtoBounds {
        min: DEFAULT_MIN_RTO,
        max: DEFAULT_MAX_RTO,
    };

    /// Clamp to `[min, max]` without ever panicking (unlike `Ord::clamp`).
    fn clamp(self, rto: u64) -> u64 {
        rto.max(ns(self.min)).min(ns(self.max))
    }
}

impl Default for RtoBounds {
    fn default() -> RtoBounds {
        RtoBounds::LINUX
    }
}

/// The RFC 6298 retransmission-timeout estimator for one connection.
///
/// Lifecycle: create it with [`RttEstimator::new`] (or [`Default`], Linux's initial RTO and
/// bounds), feed it [`on_sample`](RttEstimator::on_sample) for every valid RTT measurement,
/// arm the retransmission timer with [`current_rto`](RttEstimator::current_rto), and call
/// [`backoff`](RttEstimator::backoff) each time that timer expires (RFC 6298 §5.5). The
/// calls that clamp take the [`RtoBounds`].
///
/// Not handled here, because they need connection state: Karn's algorithm (RFC 6298 §3), the
/// 3 s re-initialisation after a SYN timeout (RFC 6298 §5.7), and the timer management rules
/// 5.1–5.3 themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RttEstimator {
    // Durations as whole nanoseconds (8 bytes each where a `Duration` takes 16; every value
    // here is far below the 584 years a `u64` of nanoseconds holds).
    /// SRTT, once `sampled` (RFC 6298 §2.1: none before the first sample).
    srtt: u64,
    /// RTTVAR; zero until the first sample.
    rttvar: u64,
    /// The smallest sample seen so far, once `sampled`.
    min_rtt: u64,
    /// The base RTO, already clamped to the bounds, without backoff.
    rto: u64,
    /// How many times the timer has been backed off since the last reset.
    backoff: u32,
    /// A sample has been taken.
    sampled: bool,
}

impl Default for RttEstimator {
    /// An estimator as Linux starts one: initial RTO 1 s (within [`RtoBounds::LINUX`]).
    fn default() -> Self {
        RttEstimator::new(DEFAULT_INITIAL_RTO, RtoBounds::LINUX)
    }
}

impl RttEstimator {
    /// A new estimator with no samples. The RTO starts at `initial_rto` (RFC 6298 §2.1),
    /// clamped to `bounds`, within which it is always kept (RFC 6298 §2.4, §2.5) as long as
    /// the same bounds are passed to the later calls.
    pub fn new(initial_rto: Duration, bounds: RtoBounds) -> RttEstimator {
        RttEstimator {
            srtt: 0,
            rttvar: 0,
            min_rtt: 0,
            rto: bounds.clamp(ns(initial_rto)),
            backoff: 0,
            sampled: false,
        }
    }

    /// Feed one round-trip time measurement and recompute the RTO.
    ///
    /// The first sample R sets SRTT = R and RTTVAR = R/2 (RFC 6298 §2.2); each later sample R'
    /// sets RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R'| and then SRTT = 7/8·SRTT + 1/8·R' (RFC 6298
    /// §2.3, alpha = 1/8, beta = 1/4, RTTVAR updated with the old SRTT). Then
    /// RTO = SRTT + max(G, 4·RTTVAR, min), clamped to `bounds`.
    ///
    /// A new measurement also clears the backoff, "collapsing" the RTO back down (the note
    /// after RFC 6298 §5.7); Linux does the same on every valid RTT sample.
    ///
    /// **Karn's algorithm is the caller's job** (RFC 6298 §3): do not pass samples taken from
    /// segments that were retransmitted, because the ACK is ambiguous — unless the sample comes
    /// from the timestamp option (RFC 7323 §4), which tells the transmissions apart.
    /// [`RttSampler::invalidate`] implements this for timestamp-less connections.
    #[inline]
    pub fn on_sample(&mut self, rtt: Duration, bounds: RtoBounds) {
        self.sample_ns(ns(rtt), || rtt, bounds);
    }

    /// [`on_sample`](Self::on_sample) for a sample of `us` microseconds (the clock's unit):
    /// the same result as `on_sample(Duration::from_micros(us), bounds)`, without making the
    /// `Duration` and taking it apart again on every ACK.
    #[inline]
    pub fn on_sample_micros(&mut self, us: u64, bounds: RtoBounds) {
        self.sample_ns(
            us.saturating_mul(1000),
            || Duration::from_micros(us),
            bounds,
        );
    }

    /// [`on_sample`](Self::on_sample) of a sample `r` in nanoseconds (saturated at
    /// `u64::MAX`); `rtt` gives it as a `Duration` for the rare sample beyond 2^60 ns.
    #[inline(always)]
    fn sample_ns(&mut self, r: u64, rtt: impl FnOnce() -> Duration, bounds: RtoBounds) {
        // Every value below 2^60 ns (36 years), as always in practice: the sums in 64 bits,
        // where none of them can overflow (the largest, 7 SRTT + R, stays below 2^63).
        const SMALL: u64 = 1 << 60;
        let (srtt, rttvar, rto) = if r < SMALL && self.srtt < SMALL && self.rttvar < SMALL {
            let (srtt, rttvar) = if self.sampled {
                // RFC 6298 §2.3
                let old = self.srtt;
                ((7 * old + r) / 8, (3 * self.rttvar + old.abs_diff(r)) / 4)
            } else {
                // RFC 6298 §2.2
                (r, r / 2)
            };
            // RFC 6298 §2.2/§2.3: RTO <- SRTT + max(G, K*RTTVAR), K = 4; §2.4/§2.5: bounds.
            // Like Linux (tcp_set_rto), the lower bound is applied to the variance term, as
            // if it were G: with a steady 100 ms RTT the RTO is 300 ms, not 200 ms, so a
            // delayed ACK or a little jitter never fires a spurious timeout.
            let var_term = (4 * rttvar).max(ns(CLOCK_GRANULARITY)).max(ns(bounds.min));
            (srtt, rttvar, srtt.saturating_add(var_term))
        } else {
            self.large_sample(rtt(), bounds)
        };
        self.srtt = srtt;
        self.rttvar = rttvar;
        self.min_rtt = if self.sampled { self.min_rtt.min(r) } else { r };
        self.sampled = true;
        self.rto = bounds.clamp(rto);
        // Note after RFC 6298 §5.7: a new measurement collapses the backed-off RTO.
        self.backoff = 0;
    }

    /// SRTT, RTTVAR and the unclamped RTO of [`on_sample`](Self::on_sample), in 128 bits for
    /// values that might overflow 64 (each saturated to 64 bits).
    #[cold]
    fn large_sample(&self, rtt: Duration, bounds: RtoBounds) -> (u64, u64, u64) {
        let r = nanos(rtt);
        let (srtt, rttvar) = if self.sampled {
            let old = self.srtt as u128;
            let diff = old.abs_diff(r);
            ((7 * old + r) / 8, (3 * self.rttvar as u128 + diff) / 4)
        } else {
            (r, r / 2)
        };
        let var_term = (4 * rttvar)
            .max(nanos(CLOCK_GRANULARITY))
            .max(nanos(bounds.min));
        (ns_sat(srtt), ns_sat(rttvar), ns_sat(srtt + var_term))
    }

    /// RFC 6298 §5.7: the handshake gave no RTT sample (its SYN or SYN-ACK was
    /// retransmitted), so the RTO is re-initialised to `rto` (3 s, [`FALLBACK_RTO`]) "once
    /// data transmission begins", without backoff. Like Linux (`tcp_init_metrics`), RTTVAR is
    /// set to it too; the first sample then starts the estimate afresh (§2.2).
    pub fn fall_back(&mut self, rto: Duration, bounds: RtoBounds) {
        self.rto = bounds.clamp(ns(rto));
        self.rttvar = ns(rto);
        self.backoff = 0;
    }

    /// A sample that only bounds the minimum RTT (Linux feeds its minimum with the RTT of the
    /// latest segment an ACK delivered, and its SRTT with the earliest's).
    pub fn note_min_rtt(&mut self, rtt: Duration) {
        if self.sampled {
            self.min_rtt = self.min_rtt.min(ns(rtt));
        }
    }

    /// [`note_min_rtt`](Self::note_min_rtt) of a sample of `us` microseconds.
    #[inline]
    pub fn note_min_rtt_micros(&mut self, us: u64) {
        if self.sampled {
            self.min_rtt = self.min_rtt.min(us.saturating_mul(1000));
        }
    }

    /// The base RTO computed from the samples (or the initial RTO), without backoff.
    #[cfg(test)]
    pub fn rto(&self) -> Duration {
        Duration::from_nanos(self.rto)
    }

    /// The RTO to arm the retransmission timer with: the base RTO doubled once per
    /// [`backoff`](RttEstimator::backoff), capped at `bounds.max` (RFC 6298 §5.5, §2.5).
    pub fn current_rto(&self, bounds: RtoBounds) -> Duration {
        Duration::from_nanos(self.current_rto_nanos(bounds))
    }

    /// [`current_rto`](Self::current_rto) in nanoseconds.
    pub fn current_rto_nanos(&self, bounds: RtoBounds) -> u64 {
        let base = self.rto;
        // Doubled `backoff` times, saturating: a shift that would push out a set bit is
        // beyond what a u64 of nanoseconds holds.
        let backed_off = if base == 0 {
            0
        } else if self.backoff <= base.leading_zeros() {
            base << self.backoff
        } else {
            u64::MAX
        };
        backed_off.min(ns(bounds.max))
    }

    /// The retransmission timer expired: double the RTO (RFC 6298 §5.5). The doubling stops at
    /// the maximum, but the count keeps going so that the caller can give up after N retries.
    pub fn backoff(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// Undo one [`backoff`](RttEstimator::backoff) (RFC 6069 §4: an ICMP unreachable showed
    /// that the path, not congestion, lost the segment).
    pub fn undo_backoff(&mut self) {
        self.backoff = self.backoff.saturating_sub(1);
    }

    /// How many times the RTO has been backed off since the last reset (the number of
    /// consecutive timer expirations).
    pub fn backoff_count(&self) -> u32 {
        self.backoff
    }

    /// Forget the backoff, so that [`current_rto`](RttEstimator::current_rto) is the base RTO
    /// again. [`on_sample`](RttEstimator::on_sample) does this itself (note after RFC 6298
    /// §5.7); call it directly when the caller's policy resets the timer without a sample.
    #[cfg(test)]
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// The smoothed round-trip time (SRTT), or `None` before the first sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.sampled.then(|| Duration::from_nanos(self.srtt))
    }

    /// [`srtt`](Self::srtt) in nanoseconds.
    pub fn srtt_nanos(&self) -> Option<u64> {
        self.sampled.then_some(self.srtt)
    }

    /// The round-trip time variation (RTTVAR); zero before the first sample.
    pub fn rttvar(&self) -> Duration {
        Duration::from_nanos(self.rttvar)
    }

    /// The smallest RTT sample seen, or `None` before the first sample.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.sampled.then(|| Duration::from_nanos(self.min_rtt))
    }

    /// [`min_rtt`](Self::min_rtt) in nanoseconds.
    #[inline]
    pub fn min_rtt_nanos(&self) -> Option<u64> {
        self.sampled.then_some(self.min_rtt)
    }
}

/// Times one segment per round trip for connections without the timestamp option.
///
/// Call [`start`](RttSampler::start) when sending new data; it is ignored while a segment is
/// already being timed. [`on_ack`](RttSampler::on_ack) yields the sample once a cumulative ACK
/// covers the timed segment. Call [`invalidate`](RttSampler::invalidate) whenever anything is
/// retransmitted: the ACK would then be ambiguous (Karn's algorithm, RFC 6298 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttSampler {
    /// The end (sequence number after the last byte) of the timed segment...
    end: SeqNum,
    /// ...and its send time in microseconds while one is timed (`u64::MAX` when none), as
    /// two 32-bit halves, high first: the sampler is then 12 bytes aligned to 4 and packs
    /// with the sender's 32-bit fields instead of padding a 16-byte slot.
    sent: [u32; 2],
}

impl Default for RttSampler {
    fn default() -> RttSampler {
        RttSampler::new()
    }
}

impl RttSampler {
    /// A sampler timing nothing.
    pub fn new() -> RttSampler {
        RttSampler {
            end: SeqNum(0),
            sent: [u32::MAX; 2],
        }
    }

    /// When the timed segment was sent, while one is timed.
    fn sent(&self) -> Option<Instant> {
        let micros = (u64::from(self.sent[0]) << 32) | u64::from(self.sent[1]);
        (micros != u64::MAX).then(|| Instant::from_micros(micros))
    }

    /// Start timing the segment whose last byte is just before `seq_end` (its `SEG.SEQ +
    /// SEG.LEN`), sent at `now`. Does nothing if a segment is already being timed.
    pub fn start(&mut self, seq_end: SeqNum, now: Instant) {
        if !self.is_timing() {
            self.end = seq_end;
            // Instants a clock reaches stay below u64::MAX microseconds, which stands for none.
            let micros = now.total_micros().min(u64::MAX - 1);
            self.sent = [(micros >> 32) as u32, micros as u32];
        }
    }

    /// True while a segment is being timed.
    pub fn is_timing(&self) -> bool {
        self.sent != [u32::MAX; 2]
    }

    /// A cumulative acknowledgment `ack` arrived at `now`. If it covers the timed segment
    /// (`ack >= seq_end`), returns the elapsed time and stops timing; otherwise `None`.
    pub fn on_ack(&mut self, ack: SeqNum, now: Instant) -> Option<Duration> {
        let sent = self.sent()?;
        if ack >= self.end {
            self.invalidate();
            Some(now.saturating_duration_since(sent))
        } else {
            None
        }
    }

    /// Stop timing without a sample: call on every retransmission (RFC 6298 §3, Karn), so that
    /// an ACK that may belong to the retransmission is never measured.
    pub fn invalidate(&mut self) {
        *self = RttSampler::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Bounds loose enough that the RFC arithmetic shows through unclamped.
    const UNCLAMPED: RtoBounds = RtoBounds {
        min: Duration::from_millis(1),
        max: Duration::from_millis(60_000),
    };
    const LINUX: RtoBounds = RtoBounds::LINUX;

    fn unclamped() -> RttEstimator {
        RttEstimator::new(ms(1000), UNCLAMPED)
    }

    /// The 64-bit sums of `on_sample` give what RFC 6298's formulas give in 128 bits, for
    /// samples on both sides of the 2^60 ns where it switches to the 128-bit ones.
    #[test]
    fn samples_update_as_rfc_6298_in_128_bits_on_both_paths() {
        let huge = RtoBounds {
            min: ms(200),
            max: Duration::MAX,
        };
        let edge = 1u64 << 60;
        let samples = [
            Duration::from_nanos(1),
            us(250),
            ms(40),
            ms(1),
            Duration::from_nanos(edge - 1),
            Duration::from_nanos(edge),
            Duration::from_nanos(u64::MAX),
            Duration::MAX,
            ms(3),
        ];
        for bounds in [UNCLAMPED, LINUX, huge] {
            let mut e = RttEstimator::new(ms(1000), bounds);
            let (mut srtt, mut rttvar) = (None::<u128>, 0u128);
            for &d in &samples {
                e.on_sample(d, bounds);
                let r = d.as_nanos();
                (srtt, rttvar) = match srtt {
                    // Stored as 64 bits, saturated: the next update starts from those.
                    Some(old) => (
                        Some(((7 * old + r) / 8).min(u64::MAX as u128)),
                        ((3 * rttvar + old.abs_diff(r)) / 4).min(u64::MAX as u128),
                    ),
                    None => (Some(r.min(u64::MAX as u128)), (r / 2).min(u64::MAX as u128)),
                };
                let s = srtt.unwrap();
                let var_term = (4 * rttvar)
                    .max(CLOCK_GRANULARITY.as_nanos())
                    .max(bounds.min.as_nanos());
                let rto = (s + var_term)
                    .min(u64::MAX as u128)
                    .max(bounds.min.as_nanos())
                    .min(bounds.max.as_nanos().min(u64::MAX as u128));
                assert_eq!(e.srtt().map(|d| d.as_nanos()), Some(s), "{d:?}");
                assert_eq!(e.rttvar().as_nanos(), rttvar, "{d:?}");
                assert_eq!(e.rto().as_nanos(), rto, "{d:?} {bounds:?}");
            }
        }
    }

    #[test]
    fn nanoseconds_and_backoff_saturate_as_in_128_bits() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(200),
            Duration::from_nanos(u64::MAX),
            Duration::from_nanos(u64::MAX) + Duration::from_nanos(1),
            Duration::new(u64::MAX / 1_000_000_000, 999_999_999),
            Duration::MAX,
        ] {
            assert_eq!(ns(d), ns_sat(d.as_nanos()), "{d:?}");
        }
        let bounds = RtoBounds {
            min: Duration::ZERO,
            max: Duration::MAX,
        };
        for base in [0u64, 1, 3, 200_000_000, 1 << 62, u64::MAX] {
            for backoff in [0u32, 1, 2, 30, 61, 62, 63, 64, 65, u32::MAX] {
                let e = RttEstimator {
                    rto: base,
                    backoff,
                    ..RttEstimator::default()
                };
                let wide = if backoff >= 64 {
                    if base == 0 { 0 } else { u128::MAX }
                } else {
                    u128::from(base) << backoff
                };
                assert_eq!(
                    e.current_rto(bounds),
                    Duration::from_nanos(ns_sat(wide)),
                    "base {base} backoff {backoff}"
                );
            }
        }
    }

    /// A sample in microseconds (`on_sample_micros`, `note_min_rtt_micros`) leaves the
    /// estimator exactly as the same sample as a `Duration` does, small and beyond 2^60 ns
    /// and up to where the nanoseconds saturate.
    #[test]
    fn samples_in_micros_as_durations() {
        let seqs: [&[u64]; 5] = [
            &[0, 1, 999, 250, 100_000, 3],
            &[1_000, 200_000, 1, 60_000_000],
            &[(1 << 60) / 1000, (1 << 60) / 1000 + 1, 5],
            &[u64::MAX / 1000, u64::MAX / 1000 + 1, 7, u64::MAX],
            &[u64::MAX, 1, 1],
        ];
        for bounds in [UNCLAMPED, LINUX] {
            for seq in seqs {
                let (mut a, mut b) = (unclamped(), unclamped());
                for &x in seq {
                    a.on_sample(us(x), bounds);
                    b.on_sample_micros(x, bounds);
                    a.note_min_rtt(us(x / 2));
                    b.note_min_rtt_micros(x / 2);
                    assert_eq!(a, b, "{seq:?} at {x}");
                }
            }
        }
    }

    #[test]
    fn initial_state() {
        let est = RttEstimator::default();
        assert_eq!(est.srtt(), None);
        assert_eq!(est.rttvar(), Duration::ZERO);
        assert_eq!(est.min_rtt(), None);
        assert_eq!(est.rto(), ms(1000));
        assert_eq!(est.current_rto(LINUX), ms(1000));
        assert_eq!(est.backoff_count(), 0);
    }

    #[test]
    fn rfc6298_formulas_exact() {
        let mut est = unclamped();
        // RFC 6298 §2.2: SRTT = 100, RTTVAR = 50, RTO = 100 + 4*50 = 300.
        est.on_sample(ms(100), UNCLAMPED);
        assert_eq!(est.srtt(), Some(ms(100)));
        assert_eq!(est.rttvar(), ms(50));
        assert_eq!(est.rto(), ms(300));
        // RFC 6298 §2.3: RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5;
        // SRTT = 7/8*100 + 1/8*200 = 112.5; RTO = 112.5 + 4*62.5 = 362.5.
        est.on_sample(ms(200), UNCLAMPED);
        assert_eq!(est.rttvar(), us(62_500));
        assert_eq!(est.srtt(), Some(us(112_500)));
        assert_eq!(est.rto(), us(362_500));
        // A third, smaller sample: RTTVAR = 3/4*62.5 + 1/4*|112.5-50| = 62.5;
        // SRTT = 7/8*112.5 + 1/8*50 = 104.6875; RTO = 104.6875 + 250 = 354.6875.
        est.on_sample(ms(50), UNCLAMPED);
        assert_eq!(est.rttvar(), us(62_500));
        assert_eq!(est.srtt(), Some(Duration::from_nanos(104_687_500)));
        assert_eq!(est.rto(), Duration::from_nanos(354_687_500));
        assert_eq!(est.min_rtt(), Some(ms(50)));
    }

    #[test]
    fn steady_samples_converge() {
        let mut est = unclamped();
        for _ in 0..200 {
            est.on_sample(ms(80), UNCLAMPED);
        }
        assert_eq!(est.srtt(), Some(ms(80)));
        // RTTVAR decays geometrically towards zero; G then bounds the variance term.
        assert!(est.rttvar() < us(1));
        assert_eq!(est.rto(), ms(81));
    }

    #[test]
    fn clock_granularity_floors_the_variance_term() {
        const ZERO_MIN: RtoBounds = RtoBounds {
            min: Duration::ZERO,
            max: Duration::from_millis(60_000),
        };
        let mut est = RttEstimator::new(ms(1000), ZERO_MIN);
        // R = 100 us: RTTVAR = 50 us, 4*RTTVAR = 200 us < G = 1 ms.
        est.on_sample(us(100), ZERO_MIN);
        assert_eq!(est.rto(), us(1_100));
        // A zero sample is legal: RTO = 0 + G.
        let mut est = RttEstimator::new(ms(1000), ZERO_MIN);
        est.on_sample(Duration::ZERO, ZERO_MIN);
        assert_eq!(est.rto(), CLOCK_GRANULARITY);
        assert_eq!(est.min_rtt(), Some(Duration::ZERO));
    }

    #[test]
    fn min_and_max_clamping() {
        // Linux bounds: a 10 ms path gets RTO 10 + max(20, 200) = 210 ms, the minimum
        // bounding the variance term as Linux's tcp_set_rto does.
        let mut est = RttEstimator::default();
        est.on_sample(ms(10), LINUX);
        assert_eq!(est.srtt(), Some(ms(10)));
        assert_eq!(est.rto(), ms(210));
        // 100 ms: 100 + max(4 * 50, 200) = 300 ms (user_timeout.pkt's "+.3").
        let mut est = RttEstimator::default();
        est.on_sample(ms(100), LINUX);
        assert_eq!(est.rto(), ms(300));
        // A 50 s sample: 50 + 100 = 150 s -> clamped down to 120 s.
        let mut est = RttEstimator::default();
        est.on_sample(Duration::from_secs(50), LINUX);
        assert_eq!(est.rto(), Duration::from_secs(120));
        // The initial RTO is clamped too, and min > max resolves to max without panicking.
        let narrow = RtoBounds {
            min: ms(200),
            max: ms(500),
        };
        assert_eq!(RttEstimator::new(ms(10), narrow).rto(), ms(200));
        assert_eq!(RttEstimator::new(ms(900), narrow).rto(), ms(500));
        let inverted = RtoBounds {
            min: ms(700),
            max: ms(500),
        };
        let mut odd = RttEstimator::new(ms(300), inverted);
        assert_eq!(odd.rto(), ms(500));
        odd.on_sample(ms(1), inverted);
        assert_eq!(odd.rto(), ms(500));
        // Absurd samples saturate instead of overflowing.
        let mut est = RttEstimator::default();
        est.on_sample(Duration::MAX, LINUX);
        est.on_sample(Duration::MAX, LINUX);
        assert_eq!(est.rto(), Duration::from_secs(120));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut est = RttEstimator::default();
        est.on_sample(ms(300), LINUX); // RTO = 300 + 600 = 900 ms
        assert_eq!(est.rto(), ms(900));
        let expected = [
            1_800, 3_600, 7_200, 14_400, 28_800, 57_600, 115_200, 120_000, 120_000,
        ];
        for (i, want) in expected.iter().enumerate() {
            est.backoff();
            assert_eq!(est.backoff_count(), i as u32 + 1);
            assert_eq!(
                est.current_rto(LINUX),
                ms(*want),
                "after {} backoffs",
                i + 1
            );
            // The base RTO is untouched.
            assert_eq!(est.rto(), ms(900));
        }
        // Far past any sensible count, still capped, never overflowing.
        for _ in 0..100 {
            est.backoff();
        }
        assert_eq!(est.backoff_count(), 109);
        assert_eq!(est.current_rto(LINUX), Duration::from_secs(120));
    }

    #[test]
    fn reset_and_new_sample_collapse_the_backoff() {
        let mut est = RttEstimator::default();
        est.backoff();
        est.backoff();
        assert_eq!(est.current_rto(LINUX), ms(4000));
        est.reset_backoff();
        assert_eq!(est.backoff_count(), 0);
        assert_eq!(est.current_rto(LINUX), ms(1000));

        est.backoff();
        est.backoff();
        est.backoff();
        assert_eq!(est.current_rto(LINUX), ms(8000));
        // Note after RFC 6298 §5.7: a fresh measurement recomputes RTO and drops the backoff.
        est.on_sample(ms(100), LINUX);
        assert_eq!(est.backoff_count(), 0);
        assert_eq!(est.current_rto(LINUX), ms(300));
    }

    #[test]
    fn zero_rto_does_not_loop_or_panic() {
        const ZEROS: RtoBounds = RtoBounds {
            min: Duration::ZERO,
            max: Duration::ZERO,
        };
        let mut est = RttEstimator::new(Duration::ZERO, ZEROS);
        for _ in 0..70 {
            est.backoff();
        }
        assert_eq!(est.current_rto(ZEROS), Duration::ZERO);
    }

    #[test]
    fn sampler_times_one_segment() {
        let mut s = RttSampler::new();
        let t0 = Instant::from_millis(1000);
        s.start(SeqNum(1001), t0);
        assert!(s.is_timing());
        // A second start while timing is ignored.
        s.start(SeqNum(2001), t0 + ms(5));
        // An ACK short of the timed segment gives nothing.
        assert_eq!(s.on_ack(SeqNum(1000), t0 + ms(30)), None);
        assert!(s.is_timing());
        // The covering ACK gives the sample, measured from the first start.
        assert_eq!(s.on_ack(SeqNum(1001), t0 + ms(42)), Some(ms(42)));
        assert!(!s.is_timing());
        // Nothing more until the next start.
        assert_eq!(s.on_ack(SeqNum(3001), t0 + ms(50)), None);
        // An ACK beyond the segment also covers it.
        s.start(SeqNum(3001), t0 + ms(60));
        assert_eq!(s.on_ack(SeqNum(4001), t0 + ms(100)), Some(ms(40)));
    }

    #[test]
    fn sampler_across_the_wrap() {
        let mut s = RttSampler::new();
        let t0 = Instant::from_secs(5);
        s.start(SeqNum(10), t0);
        assert_eq!(s.on_ack(SeqNum(u32::MAX - 5), t0 + ms(1)), None);
        assert_eq!(s.on_ack(SeqNum(20), t0 + ms(7)), Some(ms(7)));
    }

    #[test]
    fn sampler_keeps_send_times_past_32_bits_of_microseconds() {
        // 2^32 µs is 71.6 minutes: the send time's high half matters from there on.
        for secs in [4_295, 86_400 * 365 * 100] {
            let mut s = RttSampler::new();
            let t0 = Instant::from_secs(secs) + us(7);
            s.start(SeqNum(100), t0);
            assert!(s.is_timing());
            assert_eq!(s.on_ack(SeqNum(100), t0 + us(1_234)), Some(us(1_234)));
            assert!(!s.is_timing());
        }
    }

    #[test]
    fn sampler_karn_invalidation() {
        let mut s = RttSampler::new();
        let t0 = Instant::from_secs(1);
        s.start(SeqNum(500), t0);
        // The segment is retransmitted: its ACK is ambiguous, so no sample (RFC 6298 §3).
        s.invalidate();
        assert!(!s.is_timing());
        assert_eq!(s.on_ack(SeqNum(500), t0 + ms(900)), None);
        // Timing resumes with the next new segment.
        s.start(SeqNum(1500), t0 + ms(1000));
        assert_eq!(s.on_ack(SeqNum(1500), t0 + ms(1100)), Some(ms(100)));
    }

    #[test]
    fn sampler_feeds_estimator() {
        let mut s = RttSampler::default();
        let mut est = unclamped();
        let t0 = Instant::ZERO;
        s.start(SeqNum(100), t0);
        if let Some(rtt) = s.on_ack(SeqNum(100), t0 + ms(100)) {
            est.on_sample(rtt, UNCLAMPED);
        }
        assert_eq!(est.srtt(), Some(ms(100)));
        assert_eq!(est.rto(), ms(300));
    }
}
