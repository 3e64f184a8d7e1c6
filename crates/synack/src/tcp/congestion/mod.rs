//! Congestion control: the interface a connection drives, and the algorithms behind it.
//!
//! A connection owns one `Box<dyn CongestionControl>` (one allocation per connection, none per
//! packet) and tells it what happened: new data acknowledged, loss detected by duplicate ACKs,
//! partial and full ACKs during recovery, retransmission timeouts, idle restarts. The
//! controller answers with `cwnd` and `ssthresh`; the connection sends while
//! `FlightSize < cwnd` (plus the RFC 3042 allowance below).
//!
//! The split of work follows RFC 5681 §3.2 and RFC 6582 §3.2:
//!
//! * **The connection** counts duplicate ACKs, keeps NewReno's `recover` variable (RFC 6582
//!   §3.2 steps 1, 2 and 4: enter recovery only when the ACK covers more than `recover`),
//!   retransmits, classifies ACKs in recovery as partial or full, and applies Limited Transmit
//!   (RFC 3042 §2): on the first and second duplicate ACK it may send one new segment each as
//!   long as FlightSize stays within `cwnd + 2*SMSS`; cwnd itself is not changed.
//! * **The controller** does the window arithmetic.
//!
//! `in_flight` is always FlightSize (RFC 5681 §2), `SND.NXT − SND.UNA` in bytes, as it stands
//! when the method is called — for the ACK-driven methods, after SND.UNA has been advanced by
//! that ACK.
//!
//! All quantities are bytes. Algorithms: [`NewReno`] (RFC 5681 + RFC 6582). A later change
//! adds CUBIC (RFC 9438); [`Algorithm`] and [`new_controller`] are where it plugs in.

pub mod new_reno;

pub use new_reno::NewReno;

use crate::time::{Duration, Instant};

/// Linux's initial congestion window, in segments (`TCP_INIT_CWND`, RFC 6928).
pub const DEFAULT_INITIAL_WINDOW_SEGMENTS: u32 = 10;

/// A congestion control algorithm for one connection, driven by the connection's ACK
/// processing and timers.
pub trait CongestionControl: core::fmt::Debug + Send {
    /// A short lower-case name, e.g. `"newreno"` (for traces and statistics).
    fn name(&self) -> &'static str;

    /// Congestion window in bytes.
    fn cwnd(&self) -> u32;

    /// Slow-start threshold in bytes; `u32::MAX` until the first congestion event ("arbitrarily
    /// high", RFC 5681 §3.1).
    fn ssthresh(&self) -> u32;

    /// The sender MSS changed (after the handshake, or PMTU).
    fn set_mss(&mut self, mss: u32);

    /// New data was cumulatively acknowledged while NOT in recovery.
    ///
    /// `bytes_acked` is the number of previously unacknowledged bytes this ACK covers (N in
    /// RFC 5681 eq. 2); `in_flight` is FlightSize after the ACK; `rtt` is the RTT sample taken
    /// from this ACK, if any (unused by NewReno; delay-aware algorithms want it).
    fn on_ack(&mut self, now: Instant, bytes_acked: u32, in_flight: u32, rtt: Option<Duration>);

    /// Loss detected by duplicate ACKs (fast retransmit): enter recovery. RFC 5681 §3.2 steps
    /// 2-3. `in_flight` is FlightSize when the third duplicate ACK arrived.
    fn on_enter_recovery(&mut self, now: Instant, in_flight: u32);

    /// An additional duplicate ACK while in recovery (RFC 5681 §3.2 step 4: inflate).
    fn on_dup_ack_in_recovery(&mut self);

    /// Partial ACK in recovery (RFC 6582 §3.2 step 3, "Partial acknowledgments": deflate by the
    /// bytes acked, add back SMSS if they are >= SMSS).
    fn on_partial_ack(&mut self, bytes_acked: u32);

    /// Full ACK: leave recovery (RFC 6582 §3.2 step 3, "Full acknowledgments", option (1):
    /// cwnd = min(ssthresh, max(in_flight, SMSS) + SMSS)). `in_flight` is FlightSize after the
    /// full ACK.
    fn on_exit_recovery(&mut self, in_flight: u32);

    /// Retransmission timeout (RFC 5681 §3.1 eq. 4 and cwnd = LW = 1 SMSS). `in_flight` is
    /// FlightSize when the timer fired. Also ends any recovery (RFC 6582 §3.2 step 4).
    fn on_rto(&mut self, in_flight: u32);

    /// Restart after an idle period longer than one RTO (RFC 5681 §4.1: cwnd = min(RW, cwnd)
    /// with RW = min(IW, cwnd)).
    fn on_idle_restart(&mut self);
}

/// The congestion control algorithms synack implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// Reno with NewReno's recovery: RFC 5681 with RFC 6582.
    #[default]
    NewReno,
}

/// The initial congestion window in bytes for a sender MSS of `mss`.
///
/// With `initial_window_segments > 0` it is `initial_window_segments * mss` (Linux uses 10
/// segments, RFC 6928). With `initial_window_segments == 0` it falls back to the RFC 5681 §3.1
/// upper bound (from RFC 3390): 2 segments if SMSS > 2190, 3 if SMSS > 1095, otherwise 4.
/// Saturates at `u32::MAX`.
pub fn initial_window(mss: u32, initial_window_segments: u32) -> u32 {
    let segments = match initial_window_segments {
        // RFC 5681 §3.1
        0 if mss > 2190 => 2,
        0 if mss > 1095 => 3,
        0 => 4,
        n => n,
    };
    segments.saturating_mul(mss)
}

/// A boxed controller running `alg` for a sender MSS of `mss`, starting from an initial window
/// of `initial_window_segments` segments (see [`initial_window`]; 0 selects RFC 5681's
/// formula). An MSS of 0 is treated as 1.
pub fn new_controller(
    alg: Algorithm,
    mss: u32,
    initial_window_segments: u32,
) -> Box<dyn CongestionControl> {
    match alg {
        Algorithm::NewReno => Box::new(NewReno::new(mss, initial_window_segments)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_linux_and_rfc5681() {
        assert_eq!(
            initial_window(1460, DEFAULT_INITIAL_WINDOW_SEGMENTS),
            14_600
        );
        assert_eq!(initial_window(536, 10), 5_360);
        assert_eq!(initial_window(1460, 1), 1_460);
        // RFC 5681 §3.1 boundaries.
        assert_eq!(initial_window(536, 0), 4 * 536);
        assert_eq!(initial_window(1095, 0), 4 * 1095);
        assert_eq!(initial_window(1096, 0), 3 * 1096);
        assert_eq!(initial_window(1460, 0), 3 * 1460);
        assert_eq!(initial_window(2190, 0), 3 * 2190);
        assert_eq!(initial_window(2191, 0), 2 * 2191);
        assert_eq!(initial_window(8960, 0), 2 * 8960);
        // No overflow.
        assert_eq!(initial_window(u32::MAX, 10), u32::MAX);
    }

    #[test]
    fn factory_builds_newreno() {
        let cc = new_controller(Algorithm::default(), 1460, 10);
        assert_eq!(cc.name(), "newreno");
        assert_eq!(cc.cwnd(), 14_600);
        assert_eq!(cc.ssthresh(), u32::MAX);
        let cc = new_controller(Algorithm::NewReno, 1460, 0);
        assert_eq!(cc.cwnd(), 4_380);
        // Debug works through the trait object.
        assert!(format!("{cc:?}").contains("NewReno"));
    }

    #[test]
    fn trait_object_is_send() {
        fn assert_send<T: Send + ?Sized>() {}
        assert_send::<dyn CongestionControl>();
    }
}
