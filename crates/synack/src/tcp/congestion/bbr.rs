//! BBR (Bottleneck Bandwidth and Round-trip propagation time), version 1, as Linux's
//! `tcp_bbr.c` (Cardwell et al., "BBR: Congestion-Based Congestion Control", ACM Queue 2016).
//!
//! BBR does not treat loss as the signal to slow down. On every ACK it updates a model of
//! the path from the ACK's delivery-rate sample (`tcp::rate`):
//!
//! * **bottleneck bandwidth** `BtlBw`: the largest delivery rate of the last 10 round trips
//!   (a windowed max filter, [`WindowedMax`]);
//! * **round-trip propagation time** `RTprop`: the smallest RTT of the last 10 seconds;
//!
//! and sends at `pacing_gain × BtlBw`, with at most `cwnd_gain × BtlBw × RTprop` (plus a
//! little for bursts and ACK aggregation) in flight. The gains follow a state machine:
//!
//! * **STARTUP**: gain 2/ln 2 ≈ 2.89, doubling the rate each round trip, until the bandwidth
//!   estimate has not grown by 25 % for 3 rounds (the pipe is full);
//! * **DRAIN**: pacing gain 1/2.89, to drain the queue STARTUP built, until what is in flight
//!   is down to one BDP;
//! * **PROBE_BW**: the steady state, cycling the pacing gain over 8 phases of one RTprop each
//!   — 5/4 (probe for more), 3/4 (drain what probing queued), then 1 six times — starting at a
//!   random phase other than 3/4; cwnd gain 2;
//! * **PROBE_RTT**: when RTprop has not been refreshed for 10 s, cwnd drops to 4 segments for
//!   at least 200 ms and one round trip, so the queue drains and the true RTprop shows; then
//!   back to PROBE_BW (or STARTUP if the pipe was never full).
//!
//! Loss is not ignored entirely: in the first round of a recovery BBR sends no more than what
//! is delivered (packet conservation), then at most twice that, and restores its window when
//! recovery ends; and a **long-term** estimator detects token-bucket policers — two intervals
//! of 4 to 16 round trips with a loss rate above 20 % and the same delivery rate within 1/8
//! (or 4 kbit/s) — and then paces at that rate for 48 round trips.
//!
//! Units and arithmetic are Linux's, so the numbers match to the rounding: bandwidth in
//! segments per microsecond scaled by 2^24, gains scaled by 256, cwnd in segments, RTprop in
//! microseconds, the PROBE_RTT and RTprop clocks in milliseconds (jiffies at HZ=1000). Pacing
//! runs 1 % below the computed rate.
//!
//! # Where the IETF draft differs
//!
//! draft-ietf-ccwg-bbr (BBRv3) keeps this model and state machine but adds: a loss- and
//! ECN-aware upper bound on inflight (`inflight_hi`/`inflight_lo`) with STARTUP ending on
//! excessive loss (> 2 % in a round) as well as on a bandwidth plateau; PROBE_BW split into
//! DOWN/CRUISE/REFILL/UP sub-states with time-based probing (every 2–3 s, Reno-coexistence
//! aware) instead of the fixed 8-phase cycle; a STARTUP pacing gain of 2.77 and cwnd gain 2;
//! PROBE_RTT every 5 s at half the BDP rather than 4 packets; and no long-term policer
//! model. This module is BBRv1, which is what `net.ipv4.tcp_congestion_control=bbr` runs in
//! Linux 6.18, and what the kernel interop matrix compares against.

use super::minmax::WindowedMax;
use super::{
    AckSample, Algorithm, CaState, CongestionControl, Flight, Pacing, RateSample,
    initial_window_segments,
};
use crate::time::{Duration, Instant};

/// Bandwidth unit: segments per µs, scaled by 2^24.
const BW_SCALE: u32 = 24;
const BW_UNIT: u64 = 1 << BW_SCALE;
/// Gains are scaled by 2^8.
const BBR_SCALE: u32 = 8;
const BBR_UNIT: u32 = 1 << BBR_SCALE;

/// Phases of the PROBE_BW gain cycle.
const CYCLE_LEN: u32 = 8;
/// The bandwidth filter's window, in round trips.
const BW_RTTS: u32 = CYCLE_LEN + 2;
/// The RTprop filter's window, in seconds.
const MIN_RTT_WIN_SEC: u32 = 10;
/// The least time in PROBE_RTT, in ms.
const PROBE_RTT_MODE_MS: u32 = 200;
/// Below this pacing rate (bits per second) bursts are single segments.
const MIN_TSO_RATE: u64 = 1_200_000;
/// Pacing runs this many percent below the computed rate.
const PACING_MARGIN_PERCENT: u64 = 1;
/// 2/ln 2: the smallest gain that doubles the sending rate every round trip.
const HIGH_GAIN: u32 = BBR_UNIT * 2885 / 1000 + 1;
/// 1/HIGH_GAIN: drains STARTUP's queue in about one round.
const DRAIN_GAIN: u32 = BBR_UNIT * 1000 / 2885;
/// cwnd gain in PROBE_BW (tolerates delayed and stretched ACKs).
const CWND_GAIN: u32 = BBR_UNIT * 2;
/// The PROBE_BW pacing gains.
const PACING_GAIN: [u32; CYCLE_LEN as usize] = [
    BBR_UNIT * 5 / 4,
    BBR_UNIT * 3 / 4,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
    BBR_UNIT,
];
/// The first phase is drawn among this many (all but the 3/4 drain phase).
const CYCLE_RAND: u32 = 7;
/// The least cwnd BBR aims for: two two-segment ACK-every-other-packet sequences.
const CWND_MIN_TARGET: u32 = 4;
/// STARTUP's bandwidth must grow by this factor...
const FULL_BW_THRESH: u32 = BBR_UNIT * 5 / 4;
/// ...within this many rounds, or the pipe is full.
const FULL_BW_CNT: u32 = 3;
/// Long-term sampling: rounds per interval at least...
const LT_INTVL_MIN_RTTS: u32 = 4;
/// ...a loss rate above 50/256 (about 20 %)...
const LT_LOSS_THRESH: u32 = 50;
/// ...two intervals' rates within 1/8...
const LT_BW_RATIO: u32 = BBR_UNIT / 8;
/// ...or within 4 kbit/s (in bytes per second)...
const LT_BW_DIFF: u64 = 4000 / 8;
/// ...then the long-term rate is used for this many rounds.
const LT_BW_MAX_RTTS: u32 = 48;
/// ACK aggregation: gain on the extra-acked estimate, its window in rounds, the epoch
/// reset threshold, and the cap in time at the bandwidth estimate.
const EXTRA_ACKED_GAIN: u32 = BBR_UNIT;
const EXTRA_ACKED_WIN_RTTS: u32 = 5;
const ACK_EPOCH_ACKED_RESET_THRESH: u32 = 1 << 20;
const EXTRA_ACKED_MAX_US: u64 = 100 * 1000;
/// Linux's TCP_INIT_CWND.
const INIT_CWND: u32 = 10;
/// The largest burst BBR sizes for (Linux GSO_LEGACY_MAX_SIZE − 1 − MAX_TCP_HEADER).
const TSO_MAX_BYTES: u64 = 65536 - 1 - 320;
/// ssthresh "infinite".
const INFINITE: u32 = u32::MAX;

/// BBR's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Startup,
    Drain,
    ProbeBw,
    ProbeRtt,
}

/// BBR for one connection. Counts in segments of the sender MSS.
#[derive(Debug, Clone)]
pub struct Bbr {
    mss: u32,
    iw: u32,
    cwnd: u32,
    ssthresh: u32,
    /// `init` ran (the connection is established).
    started: bool,
    /// The pacing rate in bytes per second.
    pacing_rate: u64,
    /// RTprop in µs (u32::MAX: none) and when it was last refreshed (ms).
    min_rtt_us: u32,
    min_rtt_stamp: u32,
    /// When PROBE_RTT may end (ms), 0 until its cwnd is down to the target.
    probe_rtt_done_stamp: u32,
    bw: WindowedMax,
    /// Packet-timed rounds so far, and the delivered count that ends the current one.
    rtt_cnt: u32,
    next_rtt_delivered: u32,
    /// Start of the current gain-cycle phase.
    cycle_mstamp: Instant,
    mode: Mode,
    prev_ca_state: CaState,
    packet_conservation: bool,
    round_start: bool,
    idle_restart: bool,
    probe_rtt_round_done: bool,
    lt_is_sampling: bool,
    lt_rtt_cnt: u32,
    lt_use_bw: bool,
    lt_bw: u64,
    lt_last_delivered: u32,
    lt_last_stamp: u32,
    lt_last_lost: u32,
    pacing_gain: u32,
    cwnd_gain: u32,
    full_bw_reached: bool,
    full_bw_cnt: u32,
    cycle_idx: u32,
    has_seen_rtt: bool,
    /// The last known good cwnd, restored after recovery and PROBE_RTT.
    prior_cwnd: u32,
    /// The bandwidth to beat by 25 % in STARTUP.
    full_bw: u64,
    ack_epoch_mstamp: Instant,
    extra_acked: [u32; 2],
    ack_epoch_acked: u32,
    extra_acked_win_rtts: u32,
    extra_acked_win_idx: usize,
    /// xorshift state for the first gain-cycle phase.
    rng: u64,
}

impl Bbr {
    /// BBR for a sender MSS of `mss` and an initial window of `iw` segments (0: RFC 5681's).
    pub fn new(mss: u32, iw: u32) -> Bbr {
        let mss = mss.max(1);
        Bbr {
            mss,
            iw,
            cwnd: initial_window_segments(mss, iw),
            ssthresh: INFINITE,
            started: false,
            pacing_rate: 0,
            min_rtt_us: u32::MAX,
            min_rtt_stamp: 0,
            probe_rtt_done_stamp: 0,
            bw: WindowedMax::default(),
            rtt_cnt: 0,
            next_rtt_delivered: 0,
            cycle_mstamp: Instant::ZERO,
            mode: Mode::Startup,
            prev_ca_state: CaState::Open,
            packet_conservation: false,
            round_start: false,
            idle_restart: false,
            probe_rtt_round_done: false,
            lt_is_sampling: false,
            lt_rtt_cnt: 0,
            lt_use_bw: false,
            lt_bw: 0,
            lt_last_delivered: 0,
            lt_last_stamp: 0,
            lt_last_lost: 0,
            pacing_gain: HIGH_GAIN,
            cwnd_gain: HIGH_GAIN,
            full_bw_reached: false,
            full_bw_cnt: 0,
            cycle_idx: 0,
            has_seen_rtt: false,
            prior_cwnd: 0,
            full_bw: 0,
            ack_epoch_mstamp: Instant::ZERO,
            extra_acked: [0; 2],
            ack_epoch_acked: 0,
            extra_acked_win_rtts: 0,
            extra_acked_win_idx: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The state machine's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The bottleneck bandwidth estimate in bytes per second (the long-term rate while a
    /// policer is assumed).
    pub fn bw_bytes_per_sec(&self) -> u64 {
        ((u128::from(self.bw()) * u128::from(self.mss) * 1_000_000) >> BW_SCALE) as u64
    }

    /// RTprop, once measured.
    pub fn min_rtt(&self) -> Option<Duration> {
        (self.min_rtt_us != u32::MAX).then(|| Duration::from_micros(u64::from(self.min_rtt_us)))
    }

    /// The current pacing and cwnd gains, scaled by 256.
    pub fn gains(&self) -> (u32, u32) {
        (self.pacing_gain, self.cwnd_gain)
    }

    /// The current gain-cycle phase (PROBE_BW).
    pub fn cycle_index(&self) -> u32 {
        self.cycle_idx
    }

    /// STARTUP found the pipe full.
    pub fn full_bw_reached(&self) -> bool {
        self.full_bw_reached
    }

    /// A policer is assumed and its long-term rate used.
    pub fn uses_long_term_bw(&self) -> bool {
        self.lt_use_bw
    }

    fn max_bw(&self) -> u64 {
        self.bw.get()
    }

    /// The bandwidth the model runs on.
    fn bw(&self) -> u64 {
        if self.lt_use_bw {
            self.lt_bw
        } else {
            self.max_bw()
        }
    }

    fn extra_acked_max(&self) -> u32 {
        self.extra_acked[0].max(self.extra_acked[1])
    }

    /// `rate` (BW units) × `gain` in bytes per second, 1 % below.
    fn rate_bytes_per_sec(&self, rate: u64, gain: u32) -> u64 {
        let mut r = u128::from(rate) * u128::from(self.mss);
        r = (r * u128::from(gain)) >> BBR_SCALE;
        r *= u128::from(1_000_000 / 100 * (100 - PACING_MARGIN_PERCENT));
        u64::try_from(r >> BW_SCALE).unwrap_or(u64::MAX)
    }

    /// The pacing rate at the start: high gain × cwnd / SRTT (1 ms without an RTT).
    fn init_pacing_rate_from_rtt(&mut self, srtt: Option<Duration>) {
        let rtt_us = match srtt {
            Some(s) => {
                self.has_seen_rtt = true;
                (s.as_micros() as u64).max(1)
            }
            None => 1000,
        };
        let bw = u64::from(self.cwnd) * BW_UNIT / rtt_us;
        self.pacing_rate = self.rate_bytes_per_sec(bw, HIGH_GAIN);
    }

    fn set_pacing_rate(&mut self, bw: u64, gain: u32, srtt: Option<Duration>) {
        let rate = self.rate_bytes_per_sec(bw, gain);
        if !self.has_seen_rtt && srtt.is_some() {
            self.init_pacing_rate_from_rtt(srtt);
        }
        if self.full_bw_reached || rate > self.pacing_rate {
            self.pacing_rate = rate;
        }
    }

    /// Linux `bbr_min_tso_segs`.
    fn min_tso(&self) -> u32 {
        if self.pacing_rate < MIN_TSO_RATE >> 3 {
            1
        } else {
            2
        }
    }

    /// Segments per burst (Linux `bbr_tso_segs_goal`): about a millisecond at the pacing
    /// rate, at most 127 and 64 KiB.
    fn tso_segs_goal(&self) -> u32 {
        let bytes = (self.pacing_rate >> 10).min(TSO_MAX_BYTES);
        let segs = ((bytes / u64::from(self.mss)) as u32).max(self.min_tso());
        segs.min(0x7F)
    }

    fn save_cwnd(&mut self) {
        if !matches!(self.prev_ca_state, CaState::Recovery | CaState::Loss)
            && self.mode != Mode::ProbeRtt
        {
            self.prior_cwnd = self.cwnd;
        } else {
            self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
        }
    }

    /// ceil(bw × RTprop × gain), in segments.
    fn bdp(&self, bw: u64, gain: u32) -> u32 {
        if self.min_rtt_us == u32::MAX {
            return INIT_CWND;
        }
        let w = u128::from(bw) * u128::from(self.min_rtt_us);
        let bdp = ((w * u128::from(gain)) >> BBR_SCALE).div_ceil(u128::from(BW_UNIT));
        u32::try_from(bdp).unwrap_or(u32::MAX)
    }

    /// Room for full bursts at both ends, an even count, and a little more when probing.
    fn quantization_budget(&self, cwnd: u32) -> u32 {
        let mut cwnd = cwnd.saturating_add(3 * self.tso_segs_goal());
        cwnd = cwnd.saturating_add(1) & !1;
        if self.mode == Mode::ProbeBw && self.cycle_idx == 0 {
            cwnd = cwnd.saturating_add(2);
        }
        cwnd
    }

    fn inflight(&self, bw: u64, gain: u32) -> u32 {
        self.quantization_budget(self.bdp(bw, gain))
    }

    /// What will still be in the network when the next paced segment leaves.
    fn packets_in_net_at_edt(&self, f: &Flight, inflight_now: u32) -> u32 {
        let interval_us = f
            .next_departure
            .saturating_duration_since(f.now)
            .as_micros() as u64;
        let delivered = ((u128::from(self.bw()) * u128::from(interval_us)) >> BW_SCALE) as u64;
        let mut at_edt = u64::from(inflight_now);
        if self.pacing_gain > BBR_UNIT {
            at_edt += u64::from(self.tso_segs_goal());
        }
        at_edt.saturating_sub(delivered) as u32
    }

    fn ack_aggregation_cwnd(&self) -> u32 {
        if EXTRA_ACKED_GAIN == 0 || !self.full_bw_reached {
            return 0;
        }
        let max_aggr =
            (u128::from(self.bw()) * u128::from(EXTRA_ACKED_MAX_US) / u128::from(BW_UNIT)) as u32;
        let aggr = (EXTRA_ACKED_GAIN * self.extra_acked_max()) >> BBR_SCALE;
        aggr.min(max_aggr)
    }

    /// Packet conservation in recovery's first round, restoring cwnd when recovery ends.
    /// Returns the cwnd to use and whether conservation holds it.
    fn cwnd_to_recover_or_restore(
        &mut self,
        rs: &RateSample,
        f: &Flight,
        acked: u32,
    ) -> (u32, bool) {
        let (prev, state) = (self.prev_ca_state, f.ca_state);
        let mut cwnd = self.cwnd;
        if rs.losses > 0 {
            cwnd = cwnd.saturating_sub(rs.losses).max(1);
        }
        let in_recovery = |s: CaState| matches!(s, CaState::Recovery | CaState::Loss);
        if state == CaState::Recovery && prev != CaState::Recovery {
            self.packet_conservation = true;
            self.next_rtt_delivered = f.delivered;
            cwnd = f.in_flight + acked;
        } else if in_recovery(prev) && !in_recovery(state) {
            cwnd = cwnd.max(self.prior_cwnd);
            self.packet_conservation = false;
        }
        self.prev_ca_state = state;
        if self.packet_conservation {
            return (cwnd.max(f.in_flight + acked), true);
        }
        (cwnd, false)
    }

    fn set_cwnd(&mut self, rs: &RateSample, f: &Flight, acked: u32, bw: u64, gain: u32) {
        let mut cwnd = self.cwnd;
        if acked > 0 {
            let (c, conserving) = self.cwnd_to_recover_or_restore(rs, f, acked);
            cwnd = c;
            if !conserving {
                let mut target = self.bdp(bw, gain);
                target = target.saturating_add(self.ack_aggregation_cwnd());
                target = self.quantization_budget(target);
                if self.full_bw_reached {
                    cwnd = cwnd.saturating_add(acked).min(target);
                } else if cwnd < target || f.delivered < INIT_CWND {
                    cwnd = cwnd.saturating_add(acked);
                }
                cwnd = cwnd.max(CWND_MIN_TARGET);
            }
        }
        self.cwnd = cwnd.max(1);
        if self.mode == Mode::ProbeRtt {
            self.cwnd = self.cwnd.min(CWND_MIN_TARGET);
        }
    }

    fn is_next_cycle_phase(&self, rs: &RateSample, f: &Flight) -> bool {
        let is_full_length = f.delivered_at.saturating_duration_since(self.cycle_mstamp)
            > Duration::from_micros(u64::from(self.min_rtt_us));
        if self.pacing_gain == BBR_UNIT {
            return is_full_length;
        }
        let inflight = self.packets_in_net_at_edt(f, rs.prior_in_flight);
        let bw = self.max_bw();
        if self.pacing_gain > BBR_UNIT {
            return is_full_length
                && (rs.losses > 0 || inflight >= self.inflight(bw, self.pacing_gain));
        }
        is_full_length || inflight <= self.inflight(bw, BBR_UNIT)
    }

    fn advance_cycle_phase(&mut self, f: &Flight) {
        self.cycle_idx = (self.cycle_idx + 1) & (CYCLE_LEN - 1);
        self.cycle_mstamp = f.delivered_at;
    }

    fn update_cycle_phase(&mut self, rs: &RateSample, f: &Flight) {
        if self.mode == Mode::ProbeBw && self.is_next_cycle_phase(rs, f) {
            self.advance_cycle_phase(f);
        }
    }

    fn random_below(&mut self, n: u32) -> u32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ((self.rng >> 32) % u64::from(n)) as u32
    }

    fn reset_probe_bw_mode(&mut self, f: &Flight) {
        self.mode = Mode::ProbeBw;
        self.cycle_idx = CYCLE_LEN - 1 - self.random_below(CYCLE_RAND);
        self.advance_cycle_phase(f);
    }

    fn reset_mode(&mut self, f: &Flight) {
        if self.full_bw_reached {
            self.reset_probe_bw_mode(f);
        } else {
            self.mode = Mode::Startup;
        }
    }

    fn reset_lt_bw_sampling_interval(&mut self, f: &Flight) {
        self.lt_last_stamp = jiffies(f.delivered_at);
        self.lt_last_delivered = f.delivered;
        self.lt_last_lost = f.lost;
        self.lt_rtt_cnt = 0;
    }

    fn reset_lt_bw_sampling(&mut self, f: &Flight) {
        self.lt_bw = 0;
        self.lt_use_bw = false;
        self.lt_is_sampling = false;
        self.reset_lt_bw_sampling_interval(f);
    }

    fn lt_bw_interval_done(&mut self, bw: u64, f: &Flight) {
        if self.lt_bw != 0 {
            let diff = bw.abs_diff(self.lt_bw);
            if diff * u64::from(BBR_UNIT) <= u64::from(LT_BW_RATIO) * self.lt_bw
                || self.rate_bytes_per_sec(diff, BBR_UNIT) <= LT_BW_DIFF
            {
                // Two consistent, lossy intervals: a policer.
                self.lt_bw = (bw + self.lt_bw) >> 1;
                self.lt_use_bw = true;
                self.pacing_gain = BBR_UNIT;
                self.lt_rtt_cnt = 0;
                return;
            }
        }
        self.lt_bw = bw;
        self.reset_lt_bw_sampling_interval(f);
    }

    /// The long-term (policer) estimator (Linux `bbr_lt_bw_sampling`).
    fn lt_bw_sampling(&mut self, rs: &RateSample, f: &Flight) {
        if self.lt_use_bw {
            if self.mode == Mode::ProbeBw && self.round_start {
                self.lt_rtt_cnt += 1;
                if self.lt_rtt_cnt >= LT_BW_MAX_RTTS {
                    self.reset_lt_bw_sampling(f);
                    self.reset_probe_bw_mode(f);
                }
            }
            return;
        }
        // Wait for the first loss: the policer's tokens are spent by then.
        if !self.lt_is_sampling {
            if rs.losses == 0 {
                return;
            }
            self.reset_lt_bw_sampling_interval(f);
            self.lt_is_sampling = true;
        }
        if rs.is_app_limited {
            self.reset_lt_bw_sampling(f);
            return;
        }
        if self.round_start {
            self.lt_rtt_cnt += 1;
        }
        if self.lt_rtt_cnt < LT_INTVL_MIN_RTTS {
            return;
        }
        if self.lt_rtt_cnt > 4 * LT_INTVL_MIN_RTTS {
            self.reset_lt_bw_sampling(f);
            return;
        }
        if rs.losses == 0 {
            return;
        }
        let lost = f.lost.wrapping_sub(self.lt_last_lost);
        let delivered = f.delivered.wrapping_sub(self.lt_last_delivered);
        if delivered == 0
            || u64::from(lost) << BBR_SCALE < u64::from(LT_LOSS_THRESH) * u64::from(delivered)
        {
            return;
        }
        let t = jiffies(f.delivered_at).wrapping_sub(self.lt_last_stamp) as i32;
        if t < 1 {
            return;
        }
        let t = t as u32;
        if t >= u32::MAX / 1000 {
            self.reset_lt_bw_sampling(f);
            return;
        }
        let bw = u64::from(delivered) * BW_UNIT / (u64::from(t) * 1000);
        self.lt_bw_interval_done(bw, f);
    }

    fn update_bw(&mut self, rs: &RateSample, f: &Flight) {
        self.round_start = false;
        let (Some(delivered), Some(interval)) = (rs.delivered, rs.interval) else {
            return;
        };
        if interval == 0 {
            return;
        }
        if let Some(prior) = rs.prior_delivered
            && !seq_before(prior, self.next_rtt_delivered)
        {
            self.next_rtt_delivered = f.delivered;
            self.rtt_cnt = self.rtt_cnt.wrapping_add(1);
            self.round_start = true;
            self.packet_conservation = false;
        }
        self.lt_bw_sampling(rs, f);
        let bw = u64::from(delivered) * BW_UNIT / interval.max(1);
        if !rs.is_app_limited || bw >= self.max_bw() {
            self.bw.update(BW_RTTS, self.rtt_cnt, bw);
        }
    }

    fn update_ack_aggregation(&mut self, rs: &RateSample, f: &Flight) {
        if EXTRA_ACKED_GAIN == 0 || rs.acked_sacked == 0 || rs.delivered.is_none() {
            return;
        }
        if rs.interval.is_none_or(|i| i == 0) {
            return;
        }
        if self.round_start {
            self.extra_acked_win_rtts = (self.extra_acked_win_rtts + 1).min(0x1F);
            if self.extra_acked_win_rtts >= EXTRA_ACKED_WIN_RTTS {
                self.extra_acked_win_rtts = 0;
                self.extra_acked_win_idx ^= 1;
                self.extra_acked[self.extra_acked_win_idx] = 0;
            }
        }
        let epoch_us = f
            .delivered_at
            .saturating_duration_since(self.ack_epoch_mstamp)
            .as_micros();
        let mut expected = (u128::from(self.bw()) * epoch_us / u128::from(BW_UNIT)) as u64;
        if u64::from(self.ack_epoch_acked) <= expected
            || self.ack_epoch_acked.saturating_add(rs.acked_sacked) >= ACK_EPOCH_ACKED_RESET_THRESH
        {
            self.ack_epoch_acked = 0;
            self.ack_epoch_mstamp = f.delivered_at;
            expected = 0;
        }
        self.ack_epoch_acked = self
            .ack_epoch_acked
            .saturating_add(rs.acked_sacked)
            .min(0xFFFFF);
        let extra = (u64::from(self.ack_epoch_acked)
            - expected.min(u64::from(self.ack_epoch_acked))) as u32;
        let extra = extra.min(self.cwnd);
        let i = self.extra_acked_win_idx;
        if extra > self.extra_acked[i] {
            self.extra_acked[i] = extra;
        }
    }

    fn check_full_bw_reached(&mut self, rs: &RateSample) {
        if self.full_bw_reached || !self.round_start || rs.is_app_limited {
            return;
        }
        let thresh = (self.full_bw * u64::from(FULL_BW_THRESH)) >> BBR_SCALE;
        if self.max_bw() >= thresh {
            self.full_bw = self.max_bw();
            self.full_bw_cnt = 0;
            return;
        }
        self.full_bw_cnt += 1;
        self.full_bw_reached = self.full_bw_cnt >= FULL_BW_CNT;
    }

    fn check_drain(&mut self, f: &Flight) {
        if self.mode == Mode::Startup && self.full_bw_reached {
            self.mode = Mode::Drain;
            self.ssthresh = self.inflight(self.max_bw(), BBR_UNIT);
        }
        if self.mode == Mode::Drain
            && self.packets_in_net_at_edt(f, f.in_flight) <= self.inflight(self.max_bw(), BBR_UNIT)
        {
            self.reset_probe_bw_mode(f);
        }
    }

    fn check_probe_rtt_done(&mut self, f: &Flight) {
        let now = jiffies(f.now);
        if !(self.probe_rtt_done_stamp != 0 && seq_after(now, self.probe_rtt_done_stamp)) {
            return;
        }
        self.min_rtt_stamp = now;
        self.cwnd = self.cwnd.max(self.prior_cwnd);
        self.reset_mode(f);
    }

    /// RTprop and PROBE_RTT. Returns whether the connection should mark itself
    /// application-limited.
    fn update_min_rtt(&mut self, rs: &RateSample, f: &Flight) -> bool {
        let now = jiffies(f.now);
        let filter_expired =
            seq_after(now, self.min_rtt_stamp.wrapping_add(MIN_RTT_WIN_SEC * 1000));
        if let Some(rtt) = rs.rtt {
            let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX - 1);
            // Only a lower sample refreshes the filter (Linux `bbr_update_min_rtt`, `<` since
            // 2020: equal samples would postpone PROBE_RTT indefinitely on an unqueued path).
            if us < self.min_rtt_us || (filter_expired && !rs.is_ack_delayed) {
                self.min_rtt_us = us;
                self.min_rtt_stamp = now;
            }
        }
        if PROBE_RTT_MODE_MS > 0
            && filter_expired
            && !self.idle_restart
            && self.mode != Mode::ProbeRtt
        {
            self.mode = Mode::ProbeRtt;
            self.save_cwnd();
            self.probe_rtt_done_stamp = 0;
        }
        let mut mark_app_limited = false;
        if self.mode == Mode::ProbeRtt {
            // Its low-rate samples must not pull the bandwidth estimate down.
            mark_app_limited = true;
            if self.probe_rtt_done_stamp == 0 && f.in_flight <= CWND_MIN_TARGET {
                self.probe_rtt_done_stamp = now.wrapping_add(PROBE_RTT_MODE_MS).max(1);
                self.probe_rtt_round_done = false;
                self.next_rtt_delivered = f.delivered;
            } else if self.probe_rtt_done_stamp != 0 {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done {
                    self.check_probe_rtt_done(f);
                }
            }
        }
        if rs.delivered.is_some_and(|d| d > 0) {
            self.idle_restart = false;
        }
        mark_app_limited
    }

    fn update_gains(&mut self) {
        match self.mode {
            Mode::Startup => {
                self.pacing_gain = HIGH_GAIN;
                self.cwnd_gain = HIGH_GAIN;
            }
            Mode::Drain => {
                self.pacing_gain = DRAIN_GAIN;
                self.cwnd_gain = HIGH_GAIN;
            }
            Mode::ProbeBw => {
                self.pacing_gain = if self.lt_use_bw {
                    BBR_UNIT
                } else {
                    PACING_GAIN[self.cycle_idx as usize]
                };
                self.cwnd_gain = CWND_GAIN;
            }
            Mode::ProbeRtt => {
                self.pacing_gain = BBR_UNIT;
                self.cwnd_gain = BBR_UNIT;
            }
        }
    }

    /// Linux `bbr_init`, on the established connection.
    fn start(&mut self, f: &Flight, seed: u64) {
        self.started = true;
        self.prior_cwnd = 0;
        self.ssthresh = INFINITE;
        self.rtt_cnt = 0;
        self.next_rtt_delivered = f.delivered;
        self.prev_ca_state = CaState::Open;
        self.packet_conservation = false;
        self.probe_rtt_done_stamp = 0;
        self.probe_rtt_round_done = false;
        self.min_rtt_us = f.min_rtt.map_or(u32::MAX, |d| {
            u32::try_from(d.as_micros()).unwrap_or(u32::MAX - 1)
        });
        self.min_rtt_stamp = jiffies(f.now);
        self.bw.reset(self.rtt_cnt, 0);
        self.has_seen_rtt = false;
        self.init_pacing_rate_from_rtt(f.srtt);
        self.round_start = false;
        self.idle_restart = false;
        self.full_bw_reached = false;
        self.full_bw = 0;
        self.full_bw_cnt = 0;
        self.cycle_mstamp = Instant::ZERO;
        self.cycle_idx = 0;
        self.reset_lt_bw_sampling(f);
        self.mode = Mode::Startup;
        self.pacing_gain = HIGH_GAIN;
        self.cwnd_gain = HIGH_GAIN;
        self.ack_epoch_mstamp = f.now;
        self.ack_epoch_acked = 0;
        self.extra_acked_win_rtts = 0;
        self.extra_acked_win_idx = 0;
        self.extra_acked = [0; 2];
        // Any non-zero xorshift state will do; the connection's randomness decides it.
        self.rng = seed | 1;
    }
}

/// Milliseconds, as Linux's jiffies at HZ = 1000 (32 bits, wrapping).
fn jiffies(t: Instant) -> u32 {
    t.total_millis() as u32
}

/// `a` after `b` in 32-bit wrapping order (Linux `after()`).
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// `a` before `b` in 32-bit wrapping order (Linux `before()`).
fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl CongestionControl for Bbr {
    fn name(&self) -> &'static str {
        Algorithm::Bbr.name()
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::Bbr
    }

    fn start_over(&mut self, mss: u32, initial_window_segments: u32) {
        *self = Bbr::new(mss, initial_window_segments);
    }

    fn cwnd(&self) -> u32 {
        self.cwnd.saturating_mul(self.mss)
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh.saturating_mul(self.mss)
    }

    fn set_mss(&mut self, mss: u32) {
        if mss == 0 {
            return;
        }
        if !self.started {
            self.cwnd = initial_window_segments(mss, self.iw);
        }
        self.mss = mss;
    }

    /// BBR grows its window in `cong_control`; the window-based path is not used.
    fn on_ack(&mut self, _ack: &AckSample) {}

    /// Entering recovery: remember the window to restore (Linux `bbr_ssthresh`); ssthresh
    /// itself is left as it is.
    fn on_congestion_event(&mut self, _now: Instant, _in_flight: u32) {
        self.save_cwnd();
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd.div_ceil(self.mss).max(1);
    }

    fn set_ssthresh(&mut self, ssthresh: u32) {
        self.ssthresh = if ssthresh == u32::MAX {
            INFINITE
        } else {
            (ssthresh / self.mss).max(2)
        };
    }

    /// A timeout: the window to restore is saved, and cwnd collapses to one segment (Linux
    /// `tcp_enter_loss` sets it to what is in flight plus one, nothing once all is marked
    /// lost).
    fn on_rto(&mut self, _now: Instant, _in_flight: u32) {
        self.save_cwnd();
        self.cwnd = 1;
    }

    /// Linux `bbr_undo_cwnd`: the slowdown was spurious, so the full-pipe detection and the
    /// long-term sampling start over; cwnd stays.
    fn undo(&mut self) {
        self.full_bw = 0;
        self.full_bw_cnt = 0;
        self.lt_bw = 0;
        self.lt_use_bw = false;
        self.lt_is_sampling = false;
        self.lt_rtt_cnt = 0;
    }

    /// Linux `bbr_cwnd_event(CA_EVENT_TX_START)`: restarting from idle while
    /// application-limited, pace at the estimate (no need for more) and note the restart.
    fn on_tx_start(&mut self, f: &Flight, _idle: Duration) {
        if !self.started || !f.app_limited {
            return;
        }
        self.idle_restart = true;
        self.ack_epoch_mstamp = f.now;
        self.ack_epoch_acked = 0;
        match self.mode {
            Mode::ProbeBw => self.set_pacing_rate(self.bw(), BBR_UNIT, f.srtt),
            Mode::ProbeRtt => self.check_probe_rtt_done(f),
            _ => {}
        }
    }

    /// Linux skips the restart after idle for controllers with their own control.
    fn on_idle_restart(&mut self, _now: Instant, _idle: Duration, _rto: Duration) {}

    fn pacing_rate(&self, p: Pacing) -> Option<u64> {
        if self.started {
            return Some(self.pacing_rate);
        }
        // Not started yet: what `init` would set.
        let rtt_us = p.srtt.map_or(1000, |s| (s.as_micros() as u64).max(1));
        let bw = u64::from(self.cwnd) * BW_UNIT / rtt_us;
        Some(self.rate_bytes_per_sec(bw, HIGH_GAIN))
    }

    fn init(&mut self, f: &Flight, seed: u64) {
        self.start(f, seed);
    }

    fn is_model_based(&self) -> bool {
        true
    }

    /// Linux `bbr_main`: update the model, then the pacing rate and cwnd.
    fn cong_control(&mut self, rs: &RateSample, f: &Flight) -> bool {
        if !self.started {
            self.start(f, 0);
        }
        self.update_bw(rs, f);
        self.update_ack_aggregation(rs, f);
        self.update_cycle_phase(rs, f);
        self.check_full_bw_reached(rs);
        self.check_drain(f);
        let app_limited = self.update_min_rtt(rs, f);
        self.update_gains();
        let bw = self.bw();
        self.set_pacing_rate(bw, self.pacing_gain, f.srtt);
        self.set_cwnd(rs, f, rs.acked_sacked, bw, self.cwnd_gain);
        app_limited
    }

    /// Linux `bbr_set_state(TCP_CA_Loss)`: a timeout ends the round, and counts as a loss
    /// for the long-term estimator.
    fn on_loss_state(&mut self, f: &Flight) {
        self.prev_ca_state = CaState::Loss;
        self.full_bw = 0;
        self.round_start = true;
        let rs = RateSample {
            losses: 1,
            ..RateSample::default()
        };
        self.lt_bw_sampling(&rs, f);
    }

    fn min_tso_segs(&self) -> Option<u32> {
        Some(self.min_tso())
    }

    fn wants_pacing(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
