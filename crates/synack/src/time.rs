//! Time as the sans-IO core sees it: an [`Instant`] that the caller passes in.
//!
//! Nothing below the runtime reads a clock. Tests and the simulator drive virtual time; the
//! runtime converts the real monotonic clock into this type. Resolution is one microsecond.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
pub use core::time::Duration;

/// A point in time, in microseconds since an epoch chosen by the caller (often "start of run").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    pub const ZERO: Instant = Instant { micros: 0 };

    pub const fn from_micros(micros: u64) -> Instant {
        Instant { micros }
    }

    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            micros: millis * 1000,
        }
    }

    pub const fn from_secs(secs: u64) -> Instant {
        Instant {
            micros: secs * 1_000_000,
        }
    }

    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    pub const fn total_millis(self) -> u64 {
        self.micros / 1000
    }

    /// `self + Duration::from_nanos(nanos)` (saturating), without the `Duration`: for
    /// deadlines kept in nanoseconds (the RTO, the loss probe's timeout).
    pub(crate) const fn add_nanos(self, nanos: u64) -> Instant {
        Instant {
            micros: self.micros.saturating_add(nanos / 1000),
        }
    }

    /// Microseconds from `earlier` to `self`, or zero if `earlier` is later: `self - earlier`
    /// without the `Duration`, for RTT samples and intervals kept in microseconds.
    #[inline]
    pub const fn micros_since(self, earlier: Instant) -> u64 {
        self.micros.saturating_sub(earlier.micros)
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

/// An `Option<Instant>` in 8 bytes (an `Option<Instant>` takes 16): `u64::MAX` microseconds
/// stands for none, an instant no clock reaches (585,000 years from the epoch) and the one
/// `Instant + Duration` saturates at, which never comes either.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaybeInstant(u64);

impl MaybeInstant {
    pub const NONE: MaybeInstant = MaybeInstant(u64::MAX);

    pub const fn get(self) -> Option<Instant> {
        if self.0 == u64::MAX {
            None
        } else {
            Some(Instant { micros: self.0 })
        }
    }
}

impl Default for MaybeInstant {
    fn default() -> MaybeInstant {
        MaybeInstant::NONE
    }
}

impl From<Option<Instant>> for MaybeInstant {
    fn from(t: Option<Instant>) -> MaybeInstant {
        MaybeInstant(t.map_or(u64::MAX, |t| t.micros))
    }
}

impl fmt::Debug for MaybeInstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// `d` in whole microseconds, saturating at `u64::MAX`: what `d.as_micros().min(u64::MAX)`
/// gives, in 64-bit arithmetic (no 128-bit multiply and compare on every deadline).
#[inline]
pub(crate) fn micros_of(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
}

/// `d` in whole nanoseconds, saturating at `u64::MAX` (584 years): what
/// `u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)` gives, in 64-bit arithmetic.
#[inline]
pub(crate) fn nanos_of(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(micros_of(d)),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_sub(micros_of(d)),
        }
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an earlier minus a later instant is zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.micros / 1_000_000,
            self.micros % 1_000_000
        )
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_nanos_is_adding_the_duration_truncated_to_microseconds_and_saturates() {
        let t = Instant::from_micros(1_000);
        for n in [0, 999, 1_000, 1_999, 123_456_789, 120_000_000_000] {
            assert_eq!(t.add_nanos(n), t + Duration::from_nanos(n), "{n} ns");
        }
        assert_eq!(t.add_nanos(1_999), Instant::from_micros(1_001));
        let end = Instant::from_micros(u64::MAX - 1);
        assert_eq!(end.add_nanos(u64::MAX), Instant::from_micros(u64::MAX));
    }

    #[test]
    fn micros_since_is_the_difference_and_saturates_at_zero() {
        let t = Instant::from_micros(1_500);
        assert_eq!(t.micros_since(Instant::from_micros(400)), 1_100);
        assert_eq!(t.micros_since(t), 0);
        assert_eq!(t.micros_since(Instant::from_micros(1_501)), 0);
        let end = Instant::from_micros(u64::MAX);
        assert_eq!(end.micros_since(Instant::ZERO), u64::MAX);
        assert_eq!(Instant::ZERO.micros_since(end), 0);
        assert_eq!(
            Duration::from_micros(t.micros_since(Instant::from_micros(7))),
            t.saturating_duration_since(Instant::from_micros(7))
        );
    }

    #[test]
    fn arithmetic_saturates_and_formats() {
        let t = Instant::from_millis(1500);
        assert_eq!(t + Duration::from_millis(500), Instant::from_secs(2));
        assert_eq!(t - Instant::from_secs(2), Duration::ZERO);
        assert_eq!(Instant::from_secs(2) - t, Duration::from_millis(500));
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(format!("{t}"), "1.500000s");
    }

    #[test]
    fn duration_to_micros_truncates_and_saturates() {
        // Sub-microsecond parts are dropped, as `as_micros` drops them.
        let t = Instant::from_micros(10);
        assert_eq!(t + Duration::from_nanos(1_999), Instant::from_micros(11));
        assert_eq!(t - Duration::from_nanos(9_999), Instant::from_micros(1));
        // Durations beyond u64 microseconds saturate, in both directions.
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!((t + huge).total_micros(), u64::MAX);
        assert_eq!(t - huge, Instant::ZERO);
        let edge = Duration::from_micros(u64::MAX);
        assert_eq!((Instant::ZERO + edge).total_micros(), u64::MAX);
        assert_eq!((t + edge).total_micros(), u64::MAX);
        assert_eq!(Instant::from_micros(u64::MAX) - edge, Instant::ZERO);
    }
}
