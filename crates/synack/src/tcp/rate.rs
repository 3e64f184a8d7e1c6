//! Delivery rate estimation (draft-cheng-iccrg-delivery-rate-estimation, as Linux's
//! `tcp_rate.c` implements it): one rate sample per ACK, the rate at which the network
//! delivered this flow's data over the time between the transmission of a segment and its
//! acknowledgement.
//!
//! Every transmission (first or not) takes a [`TxState`] snapshot of the connection's
//! delivery counters, kept with the segment in the scoreboard. When an ACK delivers segments
//! (cumulatively or by SACK), the most recently *sent* of them gives the sample: how many
//! segments were delivered since it left, over the longer of the send phase (between the
//! first and the last transmission of that window) and the ACK phase (between the deliveries
//! that bracket it). Taking the longer of the two keeps ACK compression and stretch ACKs from
//! inflating the rate.
//!
//! A sample is *application-limited* when, at some point while its window was in flight, the
//! sender had nothing to send (the application did not keep up): such a sample says more
//! about the application than about the path, and BBR's bandwidth filter only takes it when
//! it is above the current estimate.
//!
//! All counts are in segments (Linux's `tp->delivered`), as the congestion controllers count.

use super::seq::SeqNum;
use crate::time::{Duration, Instant, MaybeInstant};

/// What a segment remembers of the connection's delivery state when it was (re)sent (Linux
/// `TCP_SKB_CB(skb)->tx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxState {
    /// The send time of the first segment of the window this one belongs to (the most
    /// recently delivered segment's send time, or this segment's when nothing was in flight).
    pub first_tx: Instant,
    /// When the connection last recorded a delivery; none once the segment was SACKed, so
    /// that its later cumulative ACK gives no second sample. (In 8 bytes, not an
    /// `Option<Instant>`'s 16: every scoreboard entry carries one, and is copied as it comes
    /// and goes.)
    pub delivered_at: MaybeInstant,
    /// Segments delivered so far.
    pub delivered: u32,
    /// The connection was application-limited.
    pub app_limited: bool,
}

impl TxState {
    /// A snapshot for a segment that gives no sample.
    pub const NONE: TxState = TxState {
        first_tx: Instant::ZERO,
        delivered_at: MaybeInstant::NONE,
        delivered: 0,
        app_limited: false,
    };
}

/// One ACK's rate sample (Linux `struct rate_sample`), plus what the congestion controller
/// reads with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateSample {
    /// `delivered` when the sample's segment was sent; `None` until a delivered segment with
    /// timing information was seen.
    pub prior_delivered: Option<u32>,
    /// When the connection last recorded a delivery before that segment was sent.
    pub prior_at: Option<Instant>,
    /// Segments delivered over the interval; `None` for an invalid sample.
    pub delivered: Option<u32>,
    /// The sample's interval in microseconds (the longer of the send and the ACK phase);
    /// `None` when invalid (no timing, SACK reneging, or shorter than the minimum RTT).
    /// Intervals are kept in the clock's microseconds (Linux's `interval_us`): a `Duration`
    /// made and compared on every ACK cost a division by a million for each.
    pub interval: Option<u64>,
    /// The send phase and the ACK phase, in microseconds.
    pub snd_interval: u64,
    pub rcv_interval: u64,
    /// Segments this ACK newly acknowledged or SACKed.
    pub acked_sacked: u32,
    /// Segments newly marked lost while processing this ACK.
    pub losses: u32,
    /// RTT of the most recently sent segment this ACK delivered that was never retransmitted
    /// (Linux `ca_rtt_us`), or from the timestamps.
    pub rtt: Option<Duration>,
    /// Segments in flight before this ACK (RFC 6675 pipe).
    pub prior_in_flight: u32,
    /// The sample's segment was sent while application-limited.
    pub is_app_limited: bool,
    /// The sample's segment had been retransmitted.
    pub is_retrans: bool,
    /// The ACK looks delayed (one small segment acknowledged alone).
    pub is_ack_delayed: bool,
    /// The end of the sample's segment (ties between segments sent in the same instant).
    pub last_end_seq: SeqNum,
}

impl RateSample {
    /// The delivery rate of a valid sample, in segments per second scaled by 2^24 (BBR's
    /// unit: delivered × 2^24 / interval in µs).
    pub fn bw_scaled(&self) -> Option<u64> {
        let (d, us) = (self.delivered?, self.interval?);
        Some((u64::from(d) << 24) / us.max(1))
    }
}

/// The connection's delivery-rate state (Linux `tp->delivered_mstamp`, `first_tx_mstamp`,
/// `app_limited`, `rate_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateEstimator {
    /// When the last delivery was recorded.
    delivered_at: Option<Instant>,
    /// The send time of the most recently delivered segment.
    first_tx: Instant,
    /// Non-zero: the delivered count at which the current application-limited period ends
    /// (the data sent while limited has then been delivered).
    app_limited: u32,
    /// The last non-app-limited sample, or a larger app-limited one (TCP_INFO's
    /// delivery_rate): segments and interval.
    rate_delivered: u32,
    /// In microseconds.
    rate_interval: u64,
    rate_app_limited: bool,
}

impl RateEstimator {
    pub const fn new() -> RateEstimator {
        RateEstimator {
            delivered_at: None,
            first_tx: Instant::ZERO,
            app_limited: 0,
            rate_delivered: 0,
            rate_interval: 0,
            rate_app_limited: false,
        }
    }

    /// A segment is (re)sent at `now` with `packets_out` segments outstanding before it and
    /// `delivered` segments delivered so far: its snapshot (Linux `tcp_rate_skb_sent`). With
    /// nothing in flight, the ACK phase starts now: any ACK from here on shows what the
    /// network delivered in that time.
    pub fn on_send(&mut self, now: Instant, packets_out: u32, delivered: u32) -> TxState {
        if packets_out == 0 {
            self.first_tx = now;
            self.delivered_at = Some(now);
        }
        TxState {
            first_tx: self.first_tx,
            delivered_at: self.delivered_at.into(),
            delivered,
            app_limited: self.app_limited != 0,
        }
    }

    /// A segment sent at `xmit` with snapshot `tx`, ending at `end`, was delivered by the
    /// ACK being processed (Linux `tcp_rate_skb_delivered`): the most recently sent such
    /// segment gives the sample. `retrans`: it had been retransmitted.
    pub fn on_delivered(
        &mut self,
        xmit: Instant,
        end: SeqNum,
        tx: &TxState,
        retrans: bool,
        rs: &mut RateSample,
    ) {
        let Some(delivered_at) = tx.delivered_at.get() else {
            return;
        };
        let later = xmit > self.first_tx || (xmit == self.first_tx && end > rs.last_end_seq);
        if rs.prior_delivered.is_none() || later {
            rs.prior_delivered = Some(tx.delivered);
            rs.prior_at = Some(delivered_at);
            rs.is_app_limited = tx.app_limited;
            rs.is_retrans = retrans;
            rs.last_end_seq = end;
            self.first_tx = xmit;
            rs.snd_interval = xmit.micros_since(tx.first_tx);
        }
    }

    /// Finishes the ACK's sample (Linux `tcp_rate_gen`): `delivered` is the connection's
    /// count after the ACK, `newly` what this ACK delivered, `lost` what it newly marked lost,
    /// `min_rtt_ns` the smallest RTT seen in **nanoseconds**, as the RTT estimator keeps it,
    /// while the sample's intervals are in microseconds (a sample shorter than it is refused).
    /// (A receiver reneging on SACKs ends in a timeout, which marks everything lost; Linux's
    /// `is_sack_reneg` case needs no sample of its own here.) Inlined: once per ACK of new
    /// data, into its two callers (`ack_in_order`, `recovery_after_ack`).
    #[inline]
    pub fn generate(
        &mut self,
        now: Instant,
        delivered: u32,
        newly: u32,
        lost: u32,
        min_rtt_ns: Option<u64>,
        rs: &mut RateSample,
    ) {
        self.on_delivered_count(delivered);
        if newly > 0 {
            self.delivered_at = Some(now);
        }
        rs.acked_sacked = newly;
        rs.losses = lost;
        let (Some(prior_delivered), Some(prior_at)) = (rs.prior_delivered, rs.prior_at) else {
            rs.delivered = None;
            rs.interval = None;
            return;
        };
        rs.delivered = Some(delivered.wrapping_sub(prior_delivered));
        rs.rcv_interval = now.micros_since(prior_at);
        let interval = rs.snd_interval.max(rs.rcv_interval);
        // An interval below the minimum RTT cannot be right (a spuriously retransmitted
        // segment whose original was delivered first, say): no sample. (Compared in
        // nanoseconds: whole microseconds against the estimator's nanoseconds, exactly.)
        if min_rtt_ns.is_some_and(|m| interval.saturating_mul(1000) < m) {
            rs.interval = None;
            return;
        }
        rs.interval = Some(interval);
        let d = rs.delivered.unwrap_or(0);
        if !rs.is_app_limited
            || u128::from(d) * u128::from(self.rate_interval)
                >= u128::from(self.rate_delivered) * u128::from(interval)
        {
            self.rate_delivered = d;
            self.rate_interval = interval;
            self.rate_app_limited = rs.is_app_limited;
        }
    }

    /// The connection's delivered count is `delivered` after an ACK: the
    /// application-limited period ends once what was sent in it is delivered. This is all
    /// [`generate`](Self::generate) changes for an ACK that delivered nothing and found no
    /// delivered segment to sample.
    #[inline]
    pub fn on_delivered_count(&mut self, delivered: u32) {
        if self.app_limited != 0 && seq_after(delivered, self.app_limited) {
            self.app_limited = 0;
        }
    }

    /// The application gave data to send (Linux `tcp_rate_check_app_limited`): if there is
    /// less than a segment left to send, the window is not full and every lost segment was
    /// resent, the sender is application-limited until what is in flight now is delivered.
    pub fn check_app_limited(
        &mut self,
        unsent_below_mss: bool,
        in_flight: u32,
        cwnd: u32,
        lost_unresent: bool,
        delivered: u32,
    ) {
        if unsent_below_mss && in_flight < cwnd && !lost_unresent {
            self.mark_app_limited(delivered, in_flight);
        }
    }

    /// The sender is application-limited from now until `delivered + in_flight` segments are
    /// delivered (BBR's PROBE_RTT marks itself so, to ignore its low-rate samples).
    pub fn mark_app_limited(&mut self, delivered: u32, in_flight: u32) {
        self.app_limited = delivered.wrapping_add(in_flight).max(1);
    }

    /// When the last delivery was recorded, if any.
    pub fn delivered_at(&self) -> Option<Instant> {
        self.delivered_at
    }

    /// Whether the sender is in an application-limited period.
    pub fn is_app_limited(&self) -> bool {
        self.app_limited != 0
    }

    /// TCP_INFO's delivery rate in bytes per second for `mss`-sized segments, and whether it
    /// was application-limited.
    #[cfg(test)]
    pub fn delivery_rate(&self, mss: u32) -> (u64, bool) {
        let us = self.rate_interval;
        if us == 0 {
            return (0, false);
        }
        let rate = u64::from(self.rate_delivered) * u64::from(mss) * 1_000_000 / us;
        (rate, self.rate_app_limited)
    }
}

/// `a` after `b` in 32-bit wrapping order (Linux `after()` on delivered counts).
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Instant {
        Instant::from_micros(n)
    }

    /// Ten segments sent back to back at t = 0 (nothing in flight before), all acknowledged
    /// at 10 ms: ten segments over the 10 ms ACK phase, 1000 segments per second.
    #[test]
    fn one_window_acked_at_once() {
        let mut r = RateEstimator::new();
        let txs: Vec<TxState> = (0..10).map(|k| r.on_send(us(0), k, 0)).collect();
        assert!(txs.iter().all(|t| t.delivered_at.get() == Some(us(0))));
        let mut rs = RateSample::default();
        for (k, tx) in txs.iter().enumerate() {
            r.on_delivered(us(0), SeqNum(100 * (k as u32 + 1)), tx, false, &mut rs);
        }
        r.generate(us(10_000), 10, 10, 0, None, &mut rs);
        assert_eq!(rs.delivered, Some(10));
        assert_eq!(rs.interval, Some(10_000));
        assert_eq!(rs.acked_sacked, 10);
        assert_eq!(rs.bw_scaled(), Some((10 << 24) / 10_000));
        assert_eq!(r.delivery_rate(1000), (1_000_000, false));
    }

    /// ACK compression: A goes out at 0, B–I at 1–8 ms, A's ACK comes at 9.5 ms, J leaves at
    /// 9.6 ms, and one stretch ACK at 10 ms delivers B–J. The ACK phase of J's window (since
    /// A's delivery) is 0.5 ms and would claim 9 segments in it; the send phase (from A's
    /// send time to J's) is 9.6 ms, and bounds the sample.
    #[test]
    fn the_send_phase_bounds_compressed_acks() {
        let mut r = RateEstimator::new();
        let a = r.on_send(us(0), 0, 0);
        let mut txs: Vec<(Instant, TxState)> = (1..=8u64)
            .map(|k| (us(k * 1_000), r.on_send(us(k * 1_000), k as u32, 0)))
            .collect();
        let mut rs = RateSample::default();
        r.on_delivered(us(0), SeqNum(100), &a, false, &mut rs);
        r.generate(us(9_500), 1, 1, 0, None, &mut rs);
        txs.push((us(9_600), r.on_send(us(9_600), 8, 1)));
        let mut rs = RateSample::default();
        for (k, (at, tx)) in txs.iter().enumerate() {
            r.on_delivered(*at, SeqNum(200 + 100 * k as u32), tx, false, &mut rs);
        }
        r.generate(us(10_000), 10, 9, 0, None, &mut rs);
        assert_eq!(rs.snd_interval, 9_600);
        assert_eq!(rs.rcv_interval, 500);
        assert_eq!(rs.interval, Some(9_600));
        assert_eq!(rs.delivered, Some(9));
    }

    #[test]
    fn intervals_below_the_minimum_rtt_are_no_sample() {
        let mut r = RateEstimator::new();
        let tx = r.on_send(us(0), 0, 0);
        let mut rs = RateSample::default();
        r.on_delivered(us(0), SeqNum(100), &tx, true, &mut rs);
        r.generate(us(1_000), 1, 1, 0, Some(10_000_000), &mut rs);
        assert_eq!(rs.delivered, Some(1));
        assert_eq!(rs.interval, None, "1 ms < the 10 ms minimum RTT");
        assert!(rs.is_retrans);
        // Nothing delivered with timing: invalid.
        let mut rs = RateSample::default();
        r.generate(us(2_000), 1, 0, 0, None, &mut rs);
        assert_eq!((rs.delivered, rs.interval), (None, None));
    }

    /// The sample comes from the most recently sent delivered segment, even when an ACK
    /// delivers an older one after it (a retransmission filling a hole).
    #[test]
    fn the_most_recently_sent_segment_gives_the_sample() {
        let mut r = RateEstimator::new();
        let a = r.on_send(us(0), 0, 0);
        let b = r.on_send(us(1_000), 1, 0);
        let mut rs = RateSample::default();
        r.on_delivered(us(1_000), SeqNum(200), &b, false, &mut rs);
        r.on_delivered(us(0), SeqNum(100), &a, false, &mut rs);
        assert_eq!(rs.last_end_seq, SeqNum(200));
        assert_eq!(rs.snd_interval, 1_000);
    }

    #[test]
    fn application_limited_periods() {
        let mut r = RateEstimator::new();
        // 3 in flight, window 10, nothing left to send: limited until 5 + 3 are delivered.
        r.check_app_limited(true, 3, 10, false, 5);
        assert!(r.is_app_limited());
        let tx = r.on_send(us(0), 0, 5);
        assert!(tx.app_limited);
        let mut rs = RateSample::default();
        r.on_delivered(us(0), SeqNum(100), &tx, false, &mut rs);
        r.generate(us(10_000), 8, 1, 0, None, &mut rs);
        assert!(rs.is_app_limited);
        assert!(r.is_app_limited(), "8 delivered: not yet after 8");
        let mut rs = RateSample::default();
        r.generate(us(11_000), 9, 1, 0, None, &mut rs);
        assert!(!r.is_app_limited(), "the bubble is delivered");
        // cwnd-limited or with losses to resend: not application-limited.
        r.check_app_limited(true, 10, 10, false, 9);
        r.check_app_limited(true, 3, 10, true, 9);
        r.check_app_limited(false, 3, 10, false, 9);
        assert!(!r.is_app_limited());
        // Nothing delivered nor in flight: marked all the same (Linux's `?: 1`).
        let mut r = RateEstimator::new();
        r.mark_app_limited(0, 0);
        assert!(r.is_app_limited());
    }
}
