//! Congestion control: the interface a connection drives, and the algorithms behind it.
//!
//! A connection owns one controller (a `Controller`: the algorithm's state in a box, one
//! allocation per connection and none per packet, chosen by a `match` rather than a virtual
//! call) and tells it what happened: data delivered, a congestion event found by loss
//! detection, a retransmission timeout, an undo, idle periods. The controller answers with
//! `cwnd`, `ssthresh` and a pacing-rate hint.
//!
//! # Split of work
//!
//! * **The connection** detects loss (duplicate ACKs, SACK, RACK), decides when a recovery
//!   episode starts and ends, runs the window reduction inside recovery (PRR, RFC 6937) and
//!   sets cwnd through [`CongestionControl::set_cwnd`] while it lasts, and `cwnd = ssthresh`
//!   when it ends (Linux `tcp_end_cwnd_reduction`). It decides whether the sender was
//!   cwnd-limited ([`AckSample::cwnd_limited`]) and whether an episode was spurious.
//! * **The controller** owns the window arithmetic outside recovery: slow start, congestion
//!   avoidance, the new ssthresh on a congestion event or timeout, undo, and restart after
//!   idle.
//!
//! # Units
//!
//! Like Linux (`snd_cwnd`, `snd_cwnd_cnt`, `snd_ssthresh` count packets), controllers keep
//! cwnd and ssthresh in whole segments of the sender MSS and expose bytes = segments × MSS
//! (saturating at `u32::MAX`). That makes their arithmetic the same as Linux's, down to the
//! rounding, which the packetdrill scripts check (`tcpi_snd_cwnd`). An MSS change keeps the
//! window's size in segments, so its size in bytes scales with the MSS (RFC 5681 §3.1 asks
//! for that ratio when the PMTU shrinks). cwnd is never below one segment.
//!
//! # Differences from the interface first sketched for this module
//!
//! * [`CongestionControl::set_cwnd`] takes bytes and rounds up to whole segments: a byte
//!   budget that allows part of a segment allows the segment (Linux counts packets).
//! * [`CongestionControl::undo`] follows today's Linux for both algorithms:
//!   `cwnd = max(cwnd, prior_cwnd)` (`tcp_reno_undo_cwnd`, which CUBIC also uses since Linux
//!   4.13), not CUBIC's older `max(cwnd, last_max_cwnd)`.
//!
//! # Model-based control
//!
//! A controller may instead take the whole window in hand, as Linux's `cong_control` hook
//! lets BBR: [`CongestionControl::is_model_based`] says so, and then the connection calls
//! [`CongestionControl::cong_control`] with every ACK's delivery-rate sample
//! ([`RateSample`], `tcp::rate`) and runs neither PRR nor [`CongestionControl::on_ack`], nor
//! sets cwnd to ssthresh when recovery ends. Loss detection and the recovery states stay the
//! connection's. Such a controller also asks for pacing ([`CongestionControl::wants_pacing`]).
//!
//! Algorithms: [`Cubic`] (RFC 9438 with HyStart++, RFC 9406; the default, as in Linux),
//! [`NewReno`] (RFC 5681 with Linux's `tcp_cong.c` arithmetic; the NewReno part of RFC 6582 is
//! recovery, which the connection runs) and [`Bbr`] (BBR v1 as Linux's `tcp_bbr.c`).

pub mod bbr;
pub mod cubic;
pub mod hystart;
pub mod minmax;
pub mod new_reno;
mod window;

pub use bbr::Bbr;
pub use cubic::Cubic;
pub use hystart::HyStart;
pub use new_reno::NewReno;

use core::fmt;
use core::str::FromStr;

pub use crate::tcp::connection::CaState;
pub use crate::tcp::rate::RateSample;
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};

/// Linux's initial congestion window, in segments (`TCP_INIT_CWND`, RFC 6928).
pub const DEFAULT_INITIAL_WINDOW_SEGMENTS: u32 = 10;

/// What one ACK delivered, as the controller sees it.
///
/// The connection passes one per ACK that delivered data, only outside fast recovery: in the
/// Open and Disorder states, and in Loss after a retransmission timeout — where Linux calls
/// `tcp_cong_avoid` (under `tcp_may_raise_cwnd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckSample {
    /// When the ACK arrived.
    pub now: Instant,
    /// Bytes newly delivered: cumulatively acknowledged plus newly SACKed.
    pub bytes: u32,
    /// Segments newly delivered (Linux's `acked` packet count). Slow start and congestion
    /// avoidance count these, as Linux does.
    pub segments: u32,
    /// Bytes in flight (the pipe) before this ACK (Linux `prior_in_flight`). Informational for
    /// the algorithms here; delay- and rate-based ones want it.
    pub in_flight: u32,
    /// The RTT sample this ACK gave in microseconds, if any (Karn's rule applied by the
    /// connection). In the clock's unit, as measured: no `Duration` per ACK.
    pub rtt: Option<u64>,
    /// The sender was limited by cwnd, not by the application or the receive window (Linux
    /// `tcp_is_cwnd_limited`). The window grows only then (RFC 7661's concern: a window that
    /// was not used is not validated by the ACKs).
    pub cwnd_limited: bool,
    /// SND.UNA after this ACK.
    pub snd_una: SeqNum,
    /// The highest sequence number sent so far (SND.NXT before any go-back), after this ACK;
    /// rounds of HyStart++ end when SND.UNA passes the value it had when they began.
    pub snd_nxt: SeqNum,
}

/// The connection's state a model-based controller reads besides the rate sample (the
/// `tcp_sock` fields Linux's BBR reads), at its start, on each ACK and when sending resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flight {
    pub now: Instant,
    /// Segments delivered over the connection's life (Linux `tp->delivered`).
    pub delivered: u32,
    /// When the last delivery was recorded (Linux `tp->delivered_mstamp`).
    pub delivered_at: Instant,
    /// Segments marked lost over the connection's life (Linux `tp->lost`).
    pub lost: u32,
    /// Segments in flight now (RFC 6675 pipe, Linux `tcp_packets_in_flight`).
    pub in_flight: u32,
    /// The loss-recovery state now.
    pub ca_state: CaState,
    pub srtt: Option<Duration>,
    /// The smallest RTT the connection has seen.
    pub min_rtt: Option<Duration>,
    /// The earliest departure time of the next paced segment (Linux `tp->tcp_wstamp_ns`);
    /// at or before `now` when none waits.
    pub next_departure: Instant,
    /// The sender is in an application-limited period (`tcp::rate`).
    pub app_limited: bool,
}

impl Flight {
    /// A connection at `now` that has not sent anything.
    pub fn idle(now: Instant) -> Flight {
        Flight {
            now,
            delivered: 0,
            delivered_at: now,
            lost: 0,
            in_flight: 0,
            ca_state: CaState::Open,
            srtt: None,
            min_rtt: None,
            next_departure: now,
            app_limited: false,
        }
    }
}

/// A congestion control algorithm for one connection, driven by the connection's ACK
/// processing, loss detection and timers. See the [module documentation](self) for who does
/// what.
pub trait CongestionControl: fmt::Debug + Send {
    /// The algorithm's name as Linux spells it for `TCP_CONGESTION`: `"cubic"` or `"reno"`.
    fn name(&self) -> &'static str;

    /// Which algorithm this is.
    fn algorithm(&self) -> Algorithm;

    /// Starts over as the controller [`new_controller`] makes for `mss` and
    /// `initial_window_segments`, so that a finished connection's box serves the next one (the
    /// stack's spare parts) instead of going back to the allocator.
    fn start_over(&mut self, mss: u32, initial_window_segments: u32);

    /// Congestion window in bytes (segments × MSS, saturating), at least one MSS.
    fn cwnd(&self) -> u32;

    /// Slow-start threshold in bytes; `u32::MAX` until the first congestion event ("arbitrarily
    /// high", RFC 5681 §3.1).
    fn ssthresh(&self) -> u32;

    /// The sender MSS changed (after the handshake, or PMTU). cwnd and ssthresh keep their
    /// size in segments. An MSS of 0 is ignored.
    fn set_mss(&mut self, mss: u32);

    /// Data was delivered outside fast recovery: grow the window if the sender was
    /// cwnd-limited (slow start, then congestion avoidance).
    fn on_ack(&mut self, ack: &AckSample);

    /// Loss detected (fast retransmit, SACK or RACK), once per recovery episode: remember what
    /// undo needs and set ssthresh (Reno: `max(cwnd/2, 2)` segments; CUBIC: `cwnd × 0.7` with
    /// fast convergence, RFC 9438 §4.6-4.7). cwnd is not changed here: the connection runs
    /// the reduction (PRR) and calls [`set_cwnd`](Self::set_cwnd). `in_flight` is the pipe in
    /// bytes; the algorithms here size the reduction by cwnd, as Linux does.
    fn on_congestion_event(&mut self, now: Instant, in_flight: u32);

    /// The connection sets cwnd (bytes, rounded up to whole segments, at least one): during
    /// recovery (PRR), and to ssthresh when recovery ends.
    fn set_cwnd(&mut self, cwnd: u32);

    /// The connection switched to this controller mid-connection and carries the previous
    /// one's ssthresh over (bytes; `u32::MAX` is infinite), as Linux keeps `snd_ssthresh`
    /// across TCP_CONGESTION.
    fn set_ssthresh(&mut self, ssthresh: u32);

    /// Retransmission timeout: remember what undo needs, set ssthresh as for a congestion
    /// event, and cwnd = one segment (RFC 5681 §3.1, loss window). Like Linux's
    /// `tcp_enter_loss`, ssthresh is kept when the timeout repeats before anything new was
    /// acknowledged, and when it interrupts a recovery episode (that episode already reduced
    /// it). `in_flight` is the pipe in bytes when the timer fired.
    fn on_rto(&mut self, now: Instant, in_flight: u32);

    /// The last congestion event or timeout was spurious (DSACK or timestamps showed nothing
    /// was lost): `cwnd = max(cwnd, prior cwnd)` and `ssthresh = max(ssthresh, prior
    /// ssthresh)`, as Linux's `tcp_undo_cwnd_reduction`. A second undo of the same episode does
    /// nothing.
    fn undo(&mut self);

    /// The connection starts sending again after `idle` with nothing in flight (Linux
    /// `CA_EVENT_TX_START`): CUBIC moves its epoch by the idle time so the cubic curve does
    /// not count it; BBR, restarting application-limited, paces at its estimate.
    fn on_tx_start(&mut self, flight: &Flight, idle: Duration);

    /// [`on_tx_start`](Self::on_tx_start) for a controller that reads nothing of the flight
    /// but its time: does what `on_tx_start` would with a flight at `now` and returns true,
    /// so that the sender need not build the [`Flight`]; false (the default) when the
    /// controller reads more, and the sender calls `on_tx_start`.
    fn on_tx_start_at(&mut self, now: Instant, idle: Duration) -> bool {
        let _ = (now, idle);
        false
    }

    /// Restart after idle longer than the RTO with slow_start_after_idle on (RFC 5681 §4.1;
    /// Linux `tcp_cwnd_restart`): ssthresh = max(ssthresh, ¾ cwnd), then cwnd is halved once
    /// per RTO of idle time, but not below `min(IW, cwnd)`.
    fn on_idle_restart(&mut self, now: Instant, idle: Duration, rto: Duration);

    /// Pacing rate in bytes per second, as Linux's `tcp_update_pacing_rate`:
    /// max(cwnd, packets out) × MSS / SRTT, times the slow-start ratio while cwnd <
    /// ssthresh/2 and the congestion-avoidance ratio otherwise. `None` without an RTT. A
    /// model-based controller returns the rate it set.
    fn pacing_rate(&self, p: Pacing) -> Option<u64>;

    /// The connection is established (or switched to this controller): a model-based
    /// controller takes its starting point (Linux's `init`). `seed` is the connection's own
    /// randomness (BBR draws its first gain-cycle phase from it).
    fn init(&mut self, _flight: &Flight, _seed: u64) {}

    /// Whether this controller sets cwnd itself from rate samples (Linux's `cong_control`;
    /// see the module documentation).
    fn is_model_based(&self) -> bool {
        false
    }

    /// A model-based controller's per-ACK step with the ACK's rate sample. Returns whether
    /// the connection should count itself application-limited from now on (BBR does in
    /// PROBE_RTT, so that its low-rate samples do not pull the estimate down).
    fn cong_control(&mut self, _rs: &RateSample, _flight: &Flight) -> bool {
        false
    }

    /// The connection entered the Loss state (a retransmission timeout; Linux's
    /// `set_state(TCP_CA_Loss)`), after [`on_rto`](Self::on_rto) or the window collapse.
    fn on_loss_state(&mut self, _flight: &Flight) {}

    /// The smallest burst the sender should build (Linux's `min_tso_segs`), if the
    /// controller has a say.
    fn min_tso_segs(&self) -> Option<u32> {
        None
    }

    /// Whether the connection must pace its transmissions at [`pacing_rate`](Self::pacing_rate)
    /// (Linux's `SK_PACING_NEEDED`, which BBR requests).
    fn wants_pacing(&self) -> bool {
        false
    }
}

/// What the pacing rate depends on besides the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub srtt: Option<Duration>,
    /// Segments sent and not yet acknowledged (Linux `packets_out`).
    pub packets_out: u32,
    /// Percent of the rate in slow start (tcp_pacing_ss_ratio, 200).
    pub ss_ratio: u32,
    /// Percent of the rate in congestion avoidance (tcp_pacing_ca_ratio, 120).
    pub ca_ratio: u32,
}

impl Pacing {
    /// Linux's default ratios, nothing in flight.
    pub fn linux(srtt: Option<Duration>) -> Pacing {
        Pacing {
            srtt,
            packets_out: 0,
            ss_ratio: 200,
            ca_ratio: 120,
        }
    }
}

/// The congestion control algorithms synack implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// CUBIC (RFC 9438) with HyStart++ (RFC 9406): Linux's default.
    #[default]
    Cubic,
    /// Reno with NewReno's recovery (RFC 5681, RFC 6582): Linux's `reno`.
    NewReno,
    /// BBR v1 as Linux's `tcp_bbr.c`: Linux's `bbr`.
    Bbr,
}

impl Algorithm {
    /// The name Linux uses for `TCP_CONGESTION` and `tcp_congestion_control`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Cubic => "cubic",
            Algorithm::NewReno => "reno",
            Algorithm::Bbr => "bbr",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An algorithm name that synack does not implement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub String);

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown congestion control {:?} (have: cubic, reno, bbr)",
            self.0
        )
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// `"cubic"`, `"reno"`, `"newreno"` or `"bbr"`, ignoring ASCII case and surrounding
    /// whitespace.
    fn from_str(s: &str) -> Result<Algorithm, UnknownAlgorithm> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("cubic") {
            Ok(Algorithm::Cubic)
        } else if t.eq_ignore_ascii_case("reno") || t.eq_ignore_ascii_case("newreno") {
            Ok(Algorithm::NewReno)
        } else if t.eq_ignore_ascii_case("bbr") {
            Ok(Algorithm::Bbr)
        } else {
            Err(UnknownAlgorithm(t.to_string()))
        }
    }
}

/// The initial window in segments: `initial_window_segments`, or with 0 the RFC 5681 §3.1
/// upper bound (from RFC 3390): 2 segments if SMSS > 2190, 3 if SMSS > 1095, otherwise 4.
pub fn initial_window_segments(mss: u32, initial_window_segments: u32) -> u32 {
    match initial_window_segments {
        // RFC 5681 §3.1
        0 if mss > 2190 => 2,
        0 if mss > 1095 => 3,
        0 => 4,
        n => n,
    }
}

/// The initial congestion window in bytes for a sender MSS of `mss`.
///
/// With `initial_window_segments > 0` it is `initial_window_segments * mss` (Linux uses 10
/// segments, RFC 6928). With `initial_window_segments == 0` it falls back to the RFC 5681 §3.1
/// upper bound (see [`initial_window_segments`]). Saturates at `u32::MAX`.
pub fn initial_window(mss: u32, initial_window_segments: u32) -> u32 {
    self::initial_window_segments(mss, initial_window_segments).saturating_mul(mss)
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
        Algorithm::Cubic => Box::new(Cubic::new(mss, initial_window_segments)),
        Algorithm::NewReno => Box::new(NewReno::new(mss, initial_window_segments)),
        Algorithm::Bbr => Box::new(Bbr::new(mss, initial_window_segments)),
    }
}

/// The controller a connection holds: one of the algorithms here, each boxed (CUBIC's state is
/// 200 bytes; a connection pays one pointer and a tag, as much as a `Box<dyn
/// CongestionControl>`), dispatched by a `match` on the tag instead of a virtual call, so
/// that the reads an ACK makes of it (`cwnd`, `ssthresh`, `is_model_based`) compile to loads
/// and the algorithm's own `on_ack` to a direct call (issue 20: about five virtual calls per
/// ACK before).
#[derive(Debug)]
pub(crate) enum Controller {
    Cubic(Box<Cubic>),
    NewReno(Box<NewReno>),
    Bbr(Box<Bbr>),
    /// What a connection holds once its controller went to the stack's spares, until it is
    /// dropped right after: no state and no allocation. Nothing drives it; if anything did,
    /// it would be a controller whose window never moves (one byte).
    Given,
}

impl Controller {
    /// The controller [`new_controller`] would box for the same arguments.
    pub(crate) fn new(alg: Algorithm, mss: u32, initial_window_segments: u32) -> Controller {
        match alg {
            Algorithm::Cubic => {
                Controller::Cubic(Box::new(Cubic::new(mss, initial_window_segments)))
            }
            Algorithm::NewReno => {
                Controller::NewReno(Box::new(NewReno::new(mss, initial_window_segments)))
            }
            Algorithm::Bbr => Controller::Bbr(Box::new(Bbr::new(mss, initial_window_segments))),
        }
    }
}

/// Evaluates `$call` with `$cc` bound to the algorithm behind a [`Controller`], or `$given`
/// for [`Controller::Given`].
macro_rules! dispatch {
    ($self:ident, $cc:ident => $call:expr, $given:expr) => {
        // CUBIC, the default, tested first: a compare and a branch, not a jump table.
        if let Controller::Cubic($cc) = $self {
            $call
        } else if let Controller::NewReno($cc) = $self {
            $call
        } else if let Controller::Bbr($cc) = $self {
            $call
        } else {
            match $self {
                Controller::Given => $given,
                // Taken above. Listed so that a new variant stops this from compiling until
                // it has its own branch (it would otherwise answer as `Given` does).
                Controller::Cubic(_) | Controller::NewReno(_) | Controller::Bbr(_) => {
                    unreachable!()
                }
            }
        }
    };
}

/// A state change reached [`Controller::Given`]: nothing may drive a controller that went to
/// the spares (a connection left with it would keep a one-byte window). Debug builds stop
/// here.
#[cold]
#[track_caller]
fn given_driven() {
    if cfg!(debug_assertions) {
        panic!("a congestion controller driven after it went to the spares");
    }
}

impl CongestionControl for Controller {
    #[inline]
    fn name(&self) -> &'static str {
        dispatch!(self, cc => cc.name(), "given")
    }
    #[inline]
    fn algorithm(&self) -> Algorithm {
        dispatch!(self, cc => cc.algorithm(), Algorithm::NewReno)
    }
    #[inline]
    fn start_over(&mut self, mss: u32, initial_window_segments: u32) {
        dispatch!(self, cc => cc.start_over(mss, initial_window_segments), given_driven())
    }
    #[inline]
    fn cwnd(&self) -> u32 {
        dispatch!(self, cc => cc.cwnd(), 1)
    }
    #[inline]
    fn ssthresh(&self) -> u32 {
        dispatch!(self, cc => cc.ssthresh(), u32::MAX)
    }
    #[inline]
    fn set_mss(&mut self, mss: u32) {
        dispatch!(self, cc => cc.set_mss(mss), given_driven())
    }
    #[inline]
    fn on_ack(&mut self, ack: &AckSample) {
        dispatch!(self, cc => cc.on_ack(ack), given_driven())
    }
    #[inline]
    fn on_congestion_event(&mut self, now: Instant, in_flight: u32) {
        dispatch!(self, cc => cc.on_congestion_event(now, in_flight), given_driven())
    }
    #[inline]
    fn set_cwnd(&mut self, cwnd: u32) {
        dispatch!(self, cc => cc.set_cwnd(cwnd), given_driven())
    }
    #[inline]
    fn set_ssthresh(&mut self, ssthresh: u32) {
        dispatch!(self, cc => cc.set_ssthresh(ssthresh), given_driven())
    }
    #[inline]
    fn on_rto(&mut self, now: Instant, in_flight: u32) {
        dispatch!(self, cc => cc.on_rto(now, in_flight), given_driven())
    }
    #[inline]
    fn undo(&mut self) {
        dispatch!(self, cc => cc.undo(), given_driven())
    }
    #[inline]
    fn on_tx_start(&mut self, flight: &Flight, idle: Duration) {
        dispatch!(self, cc => cc.on_tx_start(flight, idle), given_driven())
    }
    #[inline]
    fn on_tx_start_at(&mut self, now: Instant, idle: Duration) -> bool {
        dispatch!(self, cc => cc.on_tx_start_at(now, idle), { given_driven(); false })
    }
    #[inline]
    fn on_idle_restart(&mut self, now: Instant, idle: Duration, rto: Duration) {
        dispatch!(self, cc => cc.on_idle_restart(now, idle, rto), given_driven())
    }
    #[inline]
    fn pacing_rate(&self, p: Pacing) -> Option<u64> {
        dispatch!(self, cc => cc.pacing_rate(p), None)
    }
    #[inline]
    fn init(&mut self, flight: &Flight, seed: u64) {
        dispatch!(self, cc => cc.init(flight, seed), given_driven())
    }
    #[inline]
    fn is_model_based(&self) -> bool {
        dispatch!(self, cc => cc.is_model_based(), false)
    }
    #[inline]
    fn cong_control(&mut self, rs: &RateSample, flight: &Flight) -> bool {
        dispatch!(self, cc => cc.cong_control(rs, flight), { given_driven(); false })
    }
    #[inline]
    fn on_loss_state(&mut self, flight: &Flight) {
        dispatch!(self, cc => cc.on_loss_state(flight), given_driven())
    }
    #[inline]
    fn min_tso_segs(&self) -> Option<u32> {
        dispatch!(self, cc => cc.min_tso_segs(), None)
    }
    #[inline]
    fn wants_pacing(&self) -> bool {
        dispatch!(self, cc => cc.wants_pacing(), false)
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// An ACK of `segments` full segments of `mss` at `now_ms`, cwnd-limited, with an RTT
    /// sample of `rtt_ms` (0: none); sequence numbers are not used.
    pub fn ack(now_ms: u64, segments: u32, mss: u32, rtt_ms: u64) -> AckSample {
        AckSample {
            now: Instant::from_millis(now_ms),
            bytes: segments * mss,
            segments,
            in_flight: 0,
            rtt: (rtt_ms > 0).then_some(rtt_ms * 1000),
            cwnd_limited: true,
            snd_una: SeqNum(0),
            snd_nxt: SeqNum(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    fn factory_builds_both() {
        let cc = new_controller(Algorithm::default(), 1460, 10);
        assert_eq!(cc.name(), "cubic");
        assert_eq!(cc.algorithm(), Algorithm::Cubic);
        assert_eq!(cc.cwnd(), 14_600);
        assert_eq!(cc.ssthresh(), u32::MAX);
        assert!(format!("{cc:?}").contains("Cubic"));
        let cc = new_controller(Algorithm::NewReno, 1460, 0);
        assert_eq!(cc.name(), "reno");
        assert_eq!(cc.algorithm(), Algorithm::NewReno);
        assert_eq!(cc.cwnd(), 4_380);
        assert!(format!("{cc:?}").contains("NewReno"));
    }

    #[test]
    fn a_controller_started_over_is_a_new_one() {
        for alg in [Algorithm::Cubic, Algorithm::NewReno, Algorithm::Bbr] {
            let mut cc = new_controller(alg, 1460, 10);
            cc.on_ack(&test_util::ack(10, 4, 1460, 5));
            cc.on_rto(Instant::from_millis(20), cc.cwnd());
            let fresh = new_controller(alg, 536, 4);
            assert_ne!(format!("{cc:?}"), format!("{fresh:?}"), "{alg}");
            cc.start_over(536, 4);
            assert_eq!(format!("{cc:?}"), format!("{fresh:?}"), "{alg}");
        }
    }

    /// The connection's `Controller` reaches each algorithm: driven through the same events as
    /// the boxed controller `new_controller` makes, every answer agrees after every step (a
    /// dispatch arm that called nothing, or the wrong method, would show in the windows, the
    /// rate or the model-based answers).
    #[test]
    fn the_controller_enum_reaches_every_algorithm() {
        for alg in [Algorithm::Cubic, Algorithm::NewReno, Algorithm::Bbr] {
            let mut boxed = new_controller(alg, 1460, 10);
            let mut cc = Controller::new(alg, 1460, 10);
            assert_eq!(cc.algorithm(), alg);
            assert_eq!(cc.name(), alg.name());
            let f = Flight::idle(Instant::from_millis(1));
            boxed.init(&f, 7);
            cc.init(&f, 7);
            let same = |cc: &Controller, boxed: &dyn CongestionControl, step: &str| {
                let p = Pacing::linux(Some(Duration::from_millis(5)));
                assert_eq!(cc.cwnd(), boxed.cwnd(), "{alg} {step}");
                assert_eq!(cc.ssthresh(), boxed.ssthresh(), "{alg} {step}");
                assert_eq!(cc.pacing_rate(p), boxed.pacing_rate(p), "{alg} {step}");
                assert_eq!(cc.is_model_based(), boxed.is_model_based(), "{alg} {step}");
                assert_eq!(cc.wants_pacing(), boxed.wants_pacing(), "{alg} {step}");
                assert_eq!(cc.min_tso_segs(), boxed.min_tso_segs(), "{alg} {step}");
                assert_eq!(
                    format!("{cc:?}"),
                    format!("{alg:?}({boxed:?})"),
                    "{alg} {step}"
                );
            };
            same(&cc, &*boxed, "new");
            let mut rs = RateSample::default();
            for i in 0..40u64 {
                let a = test_util::ack(10 + i * 5, 2, 1460, 5);
                boxed.on_ack(&a);
                cc.on_ack(&a);
                rs.delivered = Some(2);
                rs.acked_sacked = 2;
                rs.interval = Some(5_000);
                rs.rtt = Some(Duration::from_millis(5));
                let f = Flight {
                    delivered: 2 * i as u32,
                    in_flight: 4,
                    ..Flight::idle(a.now)
                };
                assert_eq!(cc.cong_control(&rs, &f), boxed.cong_control(&rs, &f));
                same(&cc, &*boxed, "ack");
            }
            let now = Instant::from_millis(300);
            boxed.on_congestion_event(now, 20_000);
            cc.on_congestion_event(now, 20_000);
            same(&cc, &*boxed, "congestion");
            boxed.set_cwnd(7_000);
            cc.set_cwnd(7_000);
            same(&cc, &*boxed, "set_cwnd");
            boxed.undo();
            cc.undo();
            same(&cc, &*boxed, "undo");
            boxed.on_rto(now, 9_000);
            cc.on_rto(now, 9_000);
            boxed.on_loss_state(&f);
            cc.on_loss_state(&f);
            same(&cc, &*boxed, "rto");
            boxed.set_ssthresh(30_000);
            cc.set_ssthresh(30_000);
            boxed.set_mss(1000);
            cc.set_mss(1000);
            same(&cc, &*boxed, "mss");
            let idle = Duration::from_secs(2);
            let later = Instant::from_millis(2_500);
            assert_eq!(
                cc.on_tx_start_at(later, idle),
                boxed.on_tx_start_at(later, idle)
            );
            boxed.on_tx_start(&Flight::idle(later), idle);
            cc.on_tx_start(&Flight::idle(later), idle);
            boxed.on_idle_restart(later, idle, Duration::from_millis(200));
            cc.on_idle_restart(later, idle, Duration::from_millis(200));
            same(&cc, &*boxed, "idle");
            boxed.start_over(536, 4);
            cc.start_over(536, 4);
            same(&cc, &*boxed, "start_over");
        }
    }

    #[test]
    fn algorithm_names_round_trip() {
        assert_eq!(Algorithm::default(), Algorithm::Cubic);
        for alg in [Algorithm::Cubic, Algorithm::NewReno, Algorithm::Bbr] {
            assert_eq!(alg.to_string().parse::<Algorithm>(), Ok(alg));
            assert_eq!(new_controller(alg, 1000, 10).name(), alg.name());
        }
        assert_eq!("reno".parse(), Ok(Algorithm::NewReno));
        assert_eq!(" NewReno\n".parse(), Ok(Algorithm::NewReno));
        assert_eq!("CUBIC".parse(), Ok(Algorithm::Cubic));
        assert_eq!("BBR".parse(), Ok(Algorithm::Bbr));
        let err = "vegas".parse::<Algorithm>().unwrap_err();
        assert_eq!(err, UnknownAlgorithm("vegas".into()));
        assert!(err.to_string().contains("vegas"));
    }

    #[test]
    fn trait_object_is_send() {
        fn assert_send<T: Send + ?Sized>() {}
        assert_send::<dyn CongestionControl>();
    }

    /// One step of an arbitrary event sequence for the property test.
    #[derive(Debug, Clone)]
    enum Step {
        Ack {
            dt_ms: u16,
            segments: u32,
            rtt_ms: u16,
            limited: bool,
        },
        Congestion,
        SetCwnd(u32),
        Rto,
        Undo,
        TxStart(u16),
        Idle(u32, u16),
        Mss(u32),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u16..2000, 0u32..100_000, 0u16..500, any::<bool>()).prop_map(
                |(dt_ms, segments, rtt_ms, limited)| Step::Ack { dt_ms, segments, rtt_ms, limited }
            ),
            1 => Just(Step::Congestion),
            1 => any::<u32>().prop_map(Step::SetCwnd),
            1 => Just(Step::Rto),
            1 => Just(Step::Undo),
            1 => any::<u16>().prop_map(Step::TxStart),
            1 => (any::<u32>(), any::<u16>()).prop_map(|(i, r)| Step::Idle(i, r)),
            1 => (0u32..70_000).prop_map(Step::Mss),
        ]
    }

    proptest! {
        /// Whatever happens, cwnd stays at least one MSS, nothing panics or overflows, and the
        /// window is a whole number of segments (or saturated).
        #[test]
        fn cwnd_never_below_one_segment(
            cubic in any::<bool>(),
            mss in 1u32..70_000,
            iw in 0u32..100,
            steps in proptest::collection::vec(step(), 0..200),
        ) {
            let alg = if cubic { Algorithm::Cubic } else { Algorithm::NewReno };
            let mut cc = new_controller(alg, mss, iw);
            let mut mss = mss;
            let mut now = 0u64;
            let mut seq = 0u32;
            for s in steps {
                match s {
                    Step::Ack { dt_ms, segments, rtt_ms, limited } => {
                        now += u64::from(dt_ms);
                        seq = seq.wrapping_add(segments.wrapping_mul(mss));
                        cc.on_ack(&AckSample {
                            now: Instant::from_millis(now),
                            bytes: segments.saturating_mul(mss),
                            segments,
                            in_flight: cc.cwnd(),
                            rtt: (rtt_ms > 0).then_some(u64::from(rtt_ms) * 1000),
                            cwnd_limited: limited,
                            snd_una: SeqNum(seq),
                            snd_nxt: SeqNum(seq.wrapping_add(cc.cwnd())),
                        });
                    }
                    Step::Congestion => cc.on_congestion_event(Instant::from_millis(now), cc.cwnd()),
                    Step::SetCwnd(c) => cc.set_cwnd(c),
                    Step::Rto => cc.on_rto(Instant::from_millis(now), cc.cwnd()),
                    Step::Undo => cc.undo(),
                    Step::TxStart(ms) => {
                        now += u64::from(ms);
                        cc.on_tx_start(&Flight::idle(Instant::from_millis(now)), Duration::from_millis(ms.into()));
                    }
                    Step::Idle(ms, rto) => {
                        now += u64::from(ms);
                        cc.on_idle_restart(
                            Instant::from_millis(now),
                            Duration::from_millis(ms.into()),
                            Duration::from_millis(rto.into()),
                        );
                    }
                    Step::Mss(m) => {
                        cc.set_mss(m);
                        if m > 0 {
                            mss = m;
                        }
                    }
                }
                let cwnd = cc.cwnd();
                prop_assert!(cwnd >= mss, "cwnd {cwnd} < mss {mss}");
                prop_assert!(cwnd == u32::MAX || cwnd % mss == 0, "cwnd {cwnd} mss {mss}");
                let ss = cc.ssthresh();
                prop_assert!(ss == u32::MAX || (ss % mss == 0 && ss / mss >= 2), "ssthresh {ss}");
                let _ = cc.pacing_rate(Pacing::linux(Some(Duration::from_micros(1))));
                let _ = cc.pacing_rate(Pacing::linux(Some(Duration::ZERO)));
            }
        }
    }
}
