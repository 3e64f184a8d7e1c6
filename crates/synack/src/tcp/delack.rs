//! When to acknowledge received data: Linux's receiver ACK policy, which packetdrill scripts
//! (and so users comparing captures) see on the wire.
//!
//! RFC 1122 §4.2.3.2 and RFC 9293 §3.8.6.3 allow delaying an ACK (less than 0.5 s, and at
//! least every second full-sized segment). Linux adds three things this module models:
//! - **quick-ACK mode**: the first data of a connection, or data after a long silence, is
//!   acknowledged at once for a number of segments (half the receive window in segments, at
//!   most 16), so the sender's slow start is not held back by delayed ACKs;
//! - **ping-pong (interactive) mode**: when we answer received data with data of our own
//!   within the ACK timeout, or the peer closes, ACKs are delayed so they can ride on replies;
//! - an **adaptive ACK timeout** (ATO) that starts at the minimum (40 ms) and follows the gap
//!   between received segments.

use crate::time::{Duration, Instant, nanos_of as ns};

/// Linux's TCP_MAX_QUICKACKS.
const MAX_QUICKACKS: u32 = 16;
/// Linux's TCP_DELACK_MAX: the longest delay in ping-pong mode.
const DELACK_MAX: Duration = Duration::from_millis(200);
/// The longest delay otherwise (HZ/2).
const ATO_CAP: Duration = Duration::from_millis(500);

/// Per-connection state of the ACK policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayedAck {
    /// Immediate ACKs left in quick-ACK mode (at most [`MAX_QUICKACKS`]).
    quick: u8,
    pingpong: bool,
    /// The current ACK timeout in nanoseconds (8 bytes where a `Duration` takes 16); zero until
    /// the first data arrives (so an ACK owed before any data, e.g. for a bare FIN, goes out
    /// at once).
    ato: u64,
    /// When data last arrived.
    last_rcv: Instant,
    /// The minimum ATO in nanoseconds (Config::delayed_ack, Linux TCP_ATO_MIN 40 ms).
    ato_min: u64,
}

impl DelayedAck {
    fn ato(&self) -> Duration {
        Duration::from_nanos(self.ato)
    }

    fn set_ato(&mut self, ato: Duration) {
        self.ato = ns(ato);
    }

    fn ato_min(&self) -> Duration {
        Duration::from_nanos(self.ato_min)
    }

    pub fn new(ato_min: Duration) -> DelayedAck {
        DelayedAck {
            quick: 0,
            pingpong: false,
            ato: 0,
            last_rcv: Instant::ZERO,
            ato_min: ns(ato_min),
        }
    }

    /// In-order data arrived. `window_segs` is the receive window in segments of the peer's
    /// size; `rto` gives the retransmission timeout, which bounds the timeout (asked only when
    /// the gap since the last data is above half the minimum).
    pub fn on_data(&mut self, now: Instant, window_segs: u32, rto: impl FnOnce() -> Duration) {
        // In nanoseconds as kept, without `Duration` arithmetic on every data segment (a
        // `Duration` halved is its nanoseconds halved, rounded down, so the values are the same).
        if self.ato == 0 {
            // The first data: start the delayed-ACK engine in quick-ACK mode.
            self.incr_quick(window_segs);
            self.ato = self.ato_min;
        } else {
            let m = self.since_last_rcv(now);
            if m <= self.ato_min / 2 {
                self.ato = self.ato / 2 + self.ato_min / 2;
            } else if m < self.ato {
                self.ato = (self.ato / 2).saturating_add(m).min(ns(rto()));
            } else if m > ns(rto()) {
                // A long gap: the sender apparently restarted; ACK quickly again.
                self.incr_quick(window_segs);
            }
        }
        self.last_rcv = now;
    }

    /// Nanoseconds since data last arrived.
    fn since_last_rcv(&self, now: Instant) -> u64 {
        now.micros_since(self.last_rcv).saturating_mul(1000)
    }

    fn incr_quick(&mut self, window_segs: u32) {
        let n = (window_segs / 2).clamp(2, MAX_QUICKACKS);
        self.quick = self.quick.max(n as u8);
    }

    /// Should in-order data be acknowledged at once?
    pub fn quick(&self) -> bool {
        self.quick > 0 && !self.pingpong
    }

    /// An ACK went out while one was owed.
    pub fn on_ack_sent(&mut self) {
        if self.quick > 0 {
            self.quick -= 1;
            if self.quick == 0 {
                self.set_ato(self.ato_min());
            }
        }
    }

    /// We sent new data. A reply within the ACK timeout of the last received data means an
    /// interactive exchange: delay ACKs so they ride on the replies.
    pub fn on_data_sent(&mut self, now: Instant) {
        if self.ato != 0 && self.since_last_rcv(now) < self.ato {
            self.pingpong = true;
        }
    }

    /// The handshake of an active open completed while the application waits to write
    /// more (Linux `tcp_rcv_synsent_state_process` with `sk_write_pending`: quick-ACK mode,
    /// the ACK timeout at its minimum, the SYN-ACK as the last data received), so a reply
    /// sent at once makes the exchange interactive.
    pub fn connected_with_writer(&mut self, now: Instant) {
        self.quick = self.quick.max(MAX_QUICKACKS as u8);
        self.set_ato(self.ato_min());
        self.last_rcv = now;
    }

    /// The peer closed its side (Linux enters ping-pong mode on a FIN in ESTABLISHED).
    pub fn enter_pingpong(&mut self) {
        self.pingpong = true;
    }

    /// The delayed-ACK timer fired with an ACK owed.
    pub fn on_timer(&mut self, rto: Duration) {
        if self.pingpong {
            // A delayed ACK missed its ride: leave ping-pong mode.
            self.pingpong = false;
            self.set_ato(self.ato_min());
        } else {
            self.set_ato((self.ato() * 2).min(rto));
        }
    }

    /// How long to delay an ACK now.
    #[cfg(test)]
    pub fn timeout(&self, srtt: Option<Duration>) -> Duration {
        Duration::from_nanos(self.timeout_nanos(srtt.map(ns)))
    }

    /// [`timeout`](Self::timeout) in nanoseconds, with SRTT in nanoseconds as the RTT
    /// estimator keeps it: worked out for every ACK that may wait (every data segment of a
    /// ping-pong exchange), where `Duration`s cost a division each way.
    #[inline]
    pub fn timeout_nanos(&self, srtt_ns: Option<u64>) -> u64 {
        let mut ato = self.ato;
        if ato > self.ato_min {
            let mut max = ns(if self.pingpong { DELACK_MAX } else { ATO_CAP });
            if let Some(rtt) = srtt_ns {
                max = max.min(rtt.max(self.ato_min));
            }
            ato = ato.min(max);
        }
        ato
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATO: Duration = Duration::from_millis(40);
    const RTO: Duration = Duration::from_millis(300);

    #[test]
    fn first_data_starts_quick_ack_mode_for_half_the_window() {
        let mut d = DelayedAck::new(ATO);
        assert!(!d.quick());
        assert_eq!(
            d.timeout(None),
            Duration::ZERO,
            "nothing received yet: ACK at once"
        );
        d.on_data(Instant::from_millis(100), 10, || RTO);
        assert!(d.quick());
        for _ in 0..5 {
            assert!(d.quick());
            d.on_ack_sent();
        }
        assert!(!d.quick(), "10 segments of window: 5 quick ACKs");
        assert_eq!(d.timeout(None), ATO);
        // Capped at 16, at least 2.
        let mut d = DelayedAck::new(ATO);
        d.on_data(Instant::ZERO, 1000, || RTO);
        assert_eq!(d.quick, 16);
        let mut d = DelayedAck::new(ATO);
        d.on_data(Instant::ZERO, 1, || RTO);
        assert_eq!(d.quick, 2);
    }

    #[test]
    fn replies_and_fin_enter_pingpong_and_a_missed_timer_leaves_it() {
        let mut d = DelayedAck::new(ATO);
        d.on_data(Instant::from_millis(0), 32, || RTO);
        d.on_data_sent(Instant::from_millis(10));
        assert!(!d.quick(), "interactive: ACKs wait for replies");
        d.on_timer(RTO);
        assert!(d.quick(), "timer fired in ping-pong: back to quick ACKs");
        d.enter_pingpong();
        assert!(!d.quick());
        assert_eq!(d.timeout(None), ATO);
    }

    #[test]
    fn timeout_adapts_and_is_bounded() {
        let mut d = DelayedAck::new(ATO);
        d.on_data(Instant::ZERO, 2, || RTO);
        d.on_ack_sent();
        d.on_ack_sent();
        d.on_timer(RTO); // not ping-pong: inflate to 80 ms
        assert_eq!(d.timeout(None), Duration::from_millis(80));
        assert_eq!(
            d.timeout(Some(Duration::from_millis(50))),
            Duration::from_millis(50),
            "never longer than the RTT"
        );
        // A long silence re-enters quick-ACK mode.
        d.on_data(Instant::from_secs(5), 8, || RTO);
        assert!(d.quick());
    }
}
