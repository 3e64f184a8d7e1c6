//! Sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4).
//!
//! "It is essential to remember that the actual sequence number space is finite, though large
//! ... all arithmetic dealing with sequence numbers must be performed modulo 2**32."
//! [`SeqNum`] is the only type in synack that holds a sequence or acknowledgement number; its
//! ordering is the RFC's: `a < b` iff `b - a`, taken as a signed 32-bit distance, is positive.
//! That ordering is not transitive across more than half the space, which is why windows are
//! checked with [`SeqNum::in_range`] rather than two comparisons when they can be large.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A TCP sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    pub const ZERO: SeqNum = SeqNum(0);

    /// The signed distance from `other` to `self` (`self - other`), in -2^31 .. 2^31.
    #[inline]
    pub fn distance(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// True if `lo <= self < hi` in modular order, with the window `hi - lo` measured forwards
    /// from `lo` (so a window of any size below 2^32 works). An empty window contains nothing.
    /// This is RFC 9293 §3.4's `RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND`.
    #[inline]
    pub fn in_range(self, lo: SeqNum, hi: SeqNum) -> bool {
        self.0.wrapping_sub(lo.0) < hi.0.wrapping_sub(lo.0)
    }

    /// True if `lo < self <= hi` (the RFC's acceptable-ACK test `SND.UNA < SEG.ACK =< SND.NXT`).
    #[inline]
    pub fn in_range_right_closed(self, lo: SeqNum, hi: SeqNum) -> bool {
        self != lo && self.0.wrapping_sub(lo.0) <= hi.0.wrapping_sub(lo.0)
    }

    /// The later of two sequence numbers.
    #[inline]
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self >= other { self } else { other }
    }

    /// The earlier of two sequence numbers.
    #[inline]
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self <= other { self } else { other }
    }
}

impl PartialOrd for SeqNum {
    #[inline]
    fn partial_cmp(&self, other: &SeqNum) -> Option<Ordering> {
        Some(self.distance(*other).cmp(&0))
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl Add<usize> for SeqNum {
    type Output = SeqNum;
    /// Adds a byte count; counts are taken modulo 2^32 like everything else here.
    #[inline]
    fn add(self, rhs: usize) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<u32> for SeqNum {
    #[inline]
    fn add_assign(&mut self, rhs: u32) {
        *self = *self + rhs;
    }
}

impl AddAssign<usize> for SeqNum {
    #[inline]
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

impl SubAssign<u32> for SeqNum {
    #[inline]
    fn sub_assign(&mut self, rhs: u32) {
        *self = *self - rhs;
    }
}

impl Sub<SeqNum> for SeqNum {
    type Output = u32;
    /// The forward distance from `rhs` to `self` modulo 2^32. Use it when `rhs <= self` is
    /// known (e.g. `SND.NXT - SND.UNA` bytes in flight); otherwise use [`SeqNum::distance`].
    #[inline]
    fn sub(self, rhs: SeqNum) -> u32 {
        self.0.wrapping_sub(rhs.0)
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordering_across_the_wrap() {
        let before = SeqNum(0xFFFF_FF00);
        let after = SeqNum(0x0000_0100);
        assert!(before < after);
        assert!(after > before);
        assert_eq!(after - before, 0x200);
        assert_eq!(after.distance(before), 0x200);
        assert_eq!(before.distance(after), -0x200);
        assert_eq!(before + 0x200u32, after);
        assert_eq!(after - 0x200u32, before);
        assert_eq!(before.max(after), after);
        assert_eq!(before.min(after), before);
    }

    #[test]
    fn rfc9293_example_arithmetic() {
        // The brief's example: seq 107 carrying 100 bytes -> next seq 207.
        assert_eq!(SeqNum(107) + 100usize, SeqNum(207));
        // And across the wrap.
        assert_eq!(SeqNum(u32::MAX - 49) + 100u32, SeqNum(50));
    }

    #[test]
    fn windows_across_the_wrap() {
        let lo = SeqNum(u32::MAX - 10);
        let hi = lo + 20u32;
        assert!(lo.in_range(lo, hi));
        assert!(SeqNum(5).in_range(lo, hi));
        assert!(!hi.in_range(lo, hi));
        assert!(!SeqNum(u32::MAX - 11).in_range(lo, hi));
        // An empty window contains nothing, not even its left edge.
        assert!(!lo.in_range(lo, lo));
        // The acceptable-ACK test excludes the left edge and includes the right.
        assert!(!lo.in_range_right_closed(lo, hi));
        assert!(hi.in_range_right_closed(lo, hi));
        assert!(SeqNum(0).in_range_right_closed(lo, hi));
    }

    #[test]
    fn half_space_boundary() {
        // Exactly 2^31 apart: the distance is i32::MIN, so `a < b` is false and `b < a` is true.
        // RFC 1982 calls this undefined; we pin down what we do.
        let a = SeqNum(0);
        let b = SeqNum(0x8000_0000);
        assert_eq!(b.distance(a), i32::MIN);
        assert!(b < a);
    }

    proptest! {
        #[test]
        fn addition_then_comparison(a in any::<u32>(), n in 1u32..0x7fff_ffff) {
            let a = SeqNum(a);
            let b = a + n;
            prop_assert!(a < b);
            prop_assert!(b > a);
            prop_assert_eq!(b - a, n);
            prop_assert!(a.in_range(a, b));
            prop_assert!(!b.in_range(a, b));
            prop_assert!(b.in_range_right_closed(a, b));
        }

        #[test]
        fn in_range_agrees_with_offsets(lo in any::<u32>(), len in 0u32..u32::MAX, off in any::<u32>()) {
            let lo = SeqNum(lo);
            prop_assert_eq!((lo + off).in_range(lo, lo + len), off < len);
        }
    }
}
