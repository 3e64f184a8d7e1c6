//! A windowed maximum over a stream of samples, in constant space: Kathleen Nichols'
//! algorithm as Linux's `lib/win_minmax.c` runs it, which BBR uses for its bottleneck
//! bandwidth (the largest delivery rate of the last ten round trips).
//!
//! It keeps the best, second-best and third-best samples of the window, each from a later
//! part of the window than the one before, so that when the best ages out the next best of
//! the rest is at hand. The estimate may be briefly stale by up to a quarter window, never
//! wrong by more.

/// One sample: a time (in whatever unit the caller counts the window in, e.g. round trips)
/// and a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Sample {
    t: u32,
    v: u64,
}

/// The running maximum of the samples of the last `win` time units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowedMax {
    s: [Sample; 3],
}

impl WindowedMax {
    /// The current maximum (0 before any sample).
    pub fn get(&self) -> u64 {
        self.s[0].v
    }

    /// Forget everything but `v` at `t`.
    pub fn reset(&mut self, t: u32, v: u64) -> u64 {
        self.s = [Sample { t, v }; 3];
        v
    }

    /// Take `v` measured at `t` into a window of `win` units; returns the maximum.
    pub fn update(&mut self, win: u32, t: u32, v: u64) -> u64 {
        let val = Sample { t, v };
        if v >= self.s[0].v || t.wrapping_sub(self.s[2].t) > win {
            // A new maximum, or nothing left in the window: start over.
            return self.reset(t, v);
        }
        if v >= self.s[1].v {
            self.s[1] = val;
            self.s[2] = val;
        } else if v >= self.s[2].v {
            self.s[2] = val;
        }
        self.subwin_update(win, val)
    }

    /// Age the choices as the window slides (Linux `minmax_subwin_update`).
    fn subwin_update(&mut self, win: u32, val: Sample) -> u64 {
        let dt = val.t.wrapping_sub(self.s[0].t);
        if dt > win {
            // The best left the window: the second becomes the best, the third the second,
            // and the new sample the third — twice if the second had left it too.
            self.s[0] = self.s[1];
            self.s[1] = self.s[2];
            self.s[2] = val;
            if val.t.wrapping_sub(self.s[0].t) > win {
                self.s[0] = self.s[1];
                self.s[1] = self.s[2];
                self.s[2] = val;
            }
        } else if self.s[1].t == self.s[0].t && dt > win / 4 {
            // A quarter of the window without a second choice: take one from now on.
            self.s[1] = val;
            self.s[2] = val;
        } else if self.s[2].t == self.s[1].t && dt > win / 2 {
            // Half the window without a third choice: likewise.
            self.s[2] = val;
        }
        self.s[0].v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_maximum_wins_at_once() {
        let mut m = WindowedMax::default();
        assert_eq!(m.update(10, 0, 5), 5);
        assert_eq!(m.update(10, 1, 3), 5);
        assert_eq!(m.update(10, 2, 9), 9);
        assert_eq!(m.get(), 9);
    }

    /// A peak ages out after the window; the best of what came after it takes over.
    #[test]
    fn the_maximum_expires_after_the_window() {
        let mut m = WindowedMax::default();
        m.update(10, 0, 100);
        for t in 1..=10 {
            assert_eq!(m.update(10, t, 50 - t as u64), 100, "t = {t}");
        }
        // At t = 11 the peak of t = 0 is out; the best of the rest was 47 (t = 3, taken as
        // the second choice once a quarter of the window had passed).
        let v = m.update(10, 11, 10);
        assert!((39..100).contains(&v), "{v}");
        // Far later, only the latest sample is left.
        assert_eq!(m.update(10, 40, 7), 7);
    }

    #[test]
    fn brute_force_agrees_within_the_algorithms_staleness() {
        // The estimate is never above the true maximum of the last `win` + win/4 samples and
        // never below the true maximum of the last win/4 (Nichols' guarantee, loosely).
        let mut m = WindowedMax::default();
        let mut x: u64 = 12345;
        let mut hist: Vec<u64> = Vec::new();
        let win = 16u32;
        for t in 0..2000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (x >> 33) % 1000;
            hist.push(v);
            let got = m.update(win, t, v);
            let lo = t.saturating_sub(win + win / 4) as usize;
            let upper = hist[lo..].iter().copied().max().unwrap();
            let recent = t.saturating_sub(win / 4) as usize;
            let lower = hist[recent..].iter().copied().max().unwrap();
            assert!(
                got <= upper && got >= lower,
                "t {t}: {got} not in [{lower}, {upper}]"
            );
        }
    }
}
