//! One TCP connection: the transmission control block of RFC 9293 §3.3.1 and the event
//! processing of §3.10, as a deterministic function of (segments in, user calls, `now`).
//!
//! The connection does no I/O. The owner feeds it:
//! * segments, with [`Connection::handle_segment`] (the stack has parsed and demultiplexed them);
//! * user calls: [`connect`](Connection::connect), [`listen`](Connection::listen),
//!   [`send`](Connection::send), [`recv`](Connection::recv), [`shutdown`](Connection::shutdown),
//!   [`close`](Connection::close), [`abort`](Connection::abort);
//! * time, with [`handle_timeout`](Connection::handle_timeout) at or after
//!   [`poll_timeout`](Connection::poll_timeout);
//!
//! and drains its outputs: segments with [`poll_transmit`](Connection::poll_transmit) (written
//! straight into the caller's buffer, checksum filled in) and trace events with
//! [`poll_event`](Connection::poll_event).
//!
//! The code is split by the RFC's own division: this file holds the TCB, the user calls and the
//! timeouts (§3.10.1–§3.10.6, §3.10.8); `input.rs` is SEGMENT ARRIVES (§3.10.7); `output.rs`
//! builds segments (§3.8).

mod input;
mod output;
mod passive;
mod recovery;

pub use output::MAX_HEADER;

use crate::tcp::delack::DelayedAck;
use core::fmt;
use core::net::SocketAddr;
use std::collections::VecDeque;
use std::sync::Arc;

use super::buffer::RingBuffer;
use super::config::{Config, Keepalive};
use super::congestion::{self, CongestionControl};
use super::counters::Counters;
use super::prr::Prr;
use super::push::{self, PushMarks};
use super::rack::Rack;
use super::reassembly::Assembler;
use super::rtt::{RttEstimator, RttSampler};
use super::sack::SackRecorder;
use super::scoreboard::Scoreboard;
use super::seq::SeqNum;
use crate::time::{Duration, Instant};

/// The connection states of RFC 9293 §3.3.2, by their RFC names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// The RFC's spelling, e.g. `SYN-SENT`.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }

    /// States after the handshake completed (RFC 9293 §3.3.2's "synchronized" states).
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// States in which the peer may still send us data.
    pub fn can_receive(self) -> bool {
        matches!(
            self,
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2
        )
    }

    /// States in which the application may still queue data.
    pub fn can_send(self) -> bool {
        matches!(
            self,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors reported to the application. Each maps onto one `std::io::ErrorKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// RST in reply to our SYN (RFC 9293 §3.10.7.3): nobody listens there.
    Refused,
    /// The peer reset the connection.
    Reset,
    /// Retransmissions, SYN retries, keepalive probes or the user timeout ran out.
    TimedOut,
    /// Write after shutdown(Write) or close.
    BrokenPipe,
    /// The call needs a connection that is not (yet, or any more) there.
    NotConnected,
    /// The call does not make sense in this state (e.g. connect on a connected socket).
    InvalidInput,
    /// The connection timed out after ICMP said the peer is unreachable (a soft error that
    /// became the reason, RFC 1122 §4.2.3.9; Linux reports EHOSTUNREACH then).
    Unreachable,
}

impl Error {
    pub fn kind(self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            Error::Refused => K::ConnectionRefused,
            Error::Reset => K::ConnectionReset,
            Error::TimedOut => K::TimedOut,
            Error::BrokenPipe => K::BrokenPipe,
            Error::NotConnected => K::NotConnected,
            Error::InvalidInput => K::InvalidInput,
            Error::Unreachable => K::HostUnreachable,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Refused => "connection refused: the peer answered the SYN with a RST (no listener on that port?)",
            Error::Reset => "connection reset by peer",
            Error::TimedOut => "connection timed out: the peer stopped answering",
            Error::BrokenPipe => "broken pipe: this side already shut down writing",
            Error::NotConnected => "not connected",
            Error::InvalidInput => "invalid operation for the connection's state",
            Error::Unreachable => "no route to host: ICMP destination unreachable, then the connection timed out",
        })
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        std::io::Error::new(e.kind(), e)
    }
}

/// Why a segment was sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetransmitCause {
    /// The retransmission timer fired (RFC 6298 §5.4).
    Timeout,
    /// Three duplicate ACKs (RFC 5681 §3.2) or a partial ACK in recovery (RFC 6582).
    Fast,
    /// The tail loss probe (RFC 8985 §7.3) resent the last segment.
    Probe,
}

/// What happened inside the connection, for traces. Bounded: if nobody drains them, the oldest
/// are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A state transition, with the reason in words (e.g. "RST, refused").
    StateChanged {
        from: State,
        to: State,
        reason: &'static str,
    },
    /// Data from `seq` (`len` bytes, SYN/FIN counted) is being sent again.
    Retransmit {
        seq: SeqNum,
        len: u32,
        cause: RetransmitCause,
    },
    /// The retransmission timer fired; `rto` is the value after backoff.
    RtoFired { rto: Duration, backoff: u32 },
    /// An incoming segment was dropped (or only acknowledged), and why.
    Dropped { reason: &'static str },
    /// A RST is being sent, and why.
    ResetSent { reason: &'static str },
}

/// Shutdown directions (like `std::net::Shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Read,
    Write,
    Both,
}

/// Timestamp option state once negotiated (RFC 7323 §3, §4.3).
#[derive(Debug, Clone, Copy)]
struct Timestamps {
    /// TS.Recent: the peer's TSval to echo.
    recent: u32,
    /// When TS.Recent was last updated (for the 24-day PAWS validity rule, §5.5).
    recent_at: Instant,
}

/// A RST we owe the peer (RFC 9293 §3.10.7: "<SEQ=SEG.ACK><CTL=RST>" and friends).
#[derive(Debug, Clone, Copy)]
struct PendingRst {
    seq: SeqNum,
    ack: Option<SeqNum>,
}

/// The closed set of timers (DESIGN.md rule 5).
#[derive(Debug, Clone, Copy, Default)]
struct Timers {
    /// Retransmission of SYN, SYN-ACK, data or FIN.
    retransmit: Option<Instant>,
    /// Tail loss probe (RFC 8985 §7.2), due before the retransmission timer.
    loss_probe: Option<Instant>,
    /// RACK's reordering timer (RFC 8985 §6.3): a segment may be declared lost then.
    reorder: Option<Instant>,
    /// Zero-window probe.
    persist: Option<Instant>,
    /// Delayed ACK.
    delayed_ack: Option<Instant>,
    /// Keepalive probe or give-up.
    keepalive: Option<Instant>,
    /// TIME-WAIT expiry or the orphaned FIN-WAIT-2 timeout.
    close: Option<Instant>,
}

impl Timers {
    /// Pairwise in registers: an iterator over an array of the six options made the compiler
    /// store them and load them back wider, a store-forwarding stall per timer on every call.
    fn earliest(&self) -> Option<Instant> {
        fn min(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
            match (a, b) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, None) => x,
                (None, y) => y,
            }
        }
        let a = min(self.retransmit, self.loss_probe);
        let b = min(self.persist, self.delayed_ack);
        let c = min(self.keepalive, self.close);
        min(min(a, b), min(c, self.reorder))
    }
}

/// Per-connection statistics, like Linux's `struct tcp_info` (TCP_INFO).
///
/// Windows and sizes are in bytes, as synack keeps them; the `*_segments` methods and
/// [`options`](Info::options) give Linux's encodings (what packetdrill scripts assert on as
/// `tcpi_*`). The loss-recovery fields come from the sender's scoreboard
/// (`tcp::scoreboard`, `connection/recovery.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Info {
    /// The RFC 9293 state (Linux `tcpi_state`, numbered differently).
    pub state: Option<State>,
    /// Effective send MSS: payload bytes per segment after options (`tcpi_snd_mss`).
    pub snd_mss: u32,
    /// The MSS we announce (from the MTU, clamped by TCP_MAXSEG).
    pub rcv_mss: u32,
    /// The MSS we announced in our SYN or SYN-ACK (`tcpi_advmss`; the same as `rcv_mss`).
    pub advmss: u32,
    /// Congestion window in bytes (`tcpi_snd_cwnd` is this in segments, see
    /// [`cwnd_segments`](Info::cwnd_segments)).
    pub cwnd: u32,
    /// Slow-start threshold in bytes; `u32::MAX` until the first congestion event.
    pub ssthresh: u32,
    /// Smoothed RTT (RFC 6298 SRTT; `tcpi_rtt` in µs); `None` before the first sample.
    pub srtt: Option<Duration>,
    /// RTT variation (RFC 6298 RTTVAR; `tcpi_rttvar`).
    pub rttvar: Duration,
    /// Current retransmission timeout, with backoff (`tcpi_rto`).
    pub rto: Duration,
    /// FlightSize (RFC 5681 §2): SND.NXT − SND.UNA in bytes.
    pub bytes_in_flight: u32,
    /// RFC 6675 §4 "pipe", in bytes: the sender's estimate of the bytes in the network
    /// (outstanding − SACKed − lost + retransmitted, as Linux's `tcp_packets_in_flight`).
    pub pipe: u32,
    /// Segments sent and not yet cumulatively acknowledged (`tcpi_unacked`, Linux
    /// `packets_out`): the unacknowledged sequence space (SYN and FIN included) in whole
    /// segments of `snd_mss`, rounded up.
    pub unacked: u32,
    /// Segments the peer has SACKed above SND.UNA (`tcpi_sacked`); without SACK, duplicate
    /// ACKs counted as segments that arrived (Linux's emulation).
    pub sacked: u32,
    /// Segments marked lost and not yet acknowledged (`tcpi_lost`).
    pub lost: u32,
    /// Retransmitted segments still in flight (`tcpi_retrans`).
    pub retrans: u32,
    /// The sender's reordering degree estimate in segments (`tcpi_reordering`; Linux starts
    /// at 3, the RFC 5681 duplicate-ACK threshold, and raises it when a SACK shows a segment
    /// overtaken by later ones).
    pub reordering: u32,
    /// Segments delivered to the peer, retransmissions included (`tcpi_delivered`).
    pub delivered: u32,
    /// D-SACK blocks received (RFC 2883; `tcpi_dsack_dups`): each one reports a segment that
    /// arrived twice, usually a spurious retransmission.
    pub dsack_dups: u32,
    /// Congestion-avoidance state (`tcpi_ca_state`).
    pub ca_state: CaState,
    /// Segments retransmitted over the connection's life (`tcpi_total_retrans`).
    pub retransmits: u64,
    /// Application bytes the peer acknowledged.
    pub bytes_sent: u64,
    /// Bytes handed to the application.
    pub bytes_received: u64,
    /// Send window in bytes (scaled).
    pub snd_wnd: u32,
    /// Receive window we last advertised, in bytes.
    pub rcv_wnd: u32,
    /// The peer's window scale shift (`tcpi_snd_wscale`).
    pub snd_wscale: u8,
    /// Our window scale shift (`tcpi_rcv_wscale`).
    pub rcv_wscale: u8,
    /// Timestamps negotiated (RFC 7323 §3).
    pub timestamps: bool,
    /// SACK negotiated (RFC 2018).
    pub sack: bool,
    /// Window scaling negotiated (RFC 7323 §2). Inferred from the shifts: a connection where
    /// both sides offered shift 0 reports `false`.
    pub window_scaling: bool,
}

/// Linux's `TCP_INFINITE_SSTHRESH`: `tcpi_snd_ssthresh` before the first congestion event.
pub const TCP_INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// Bits of Linux's `tcpi_options` (include/uapi/linux/tcp.h), as [`Info::options`] sets them.
pub mod tcpi_opt {
    /// Timestamps negotiated.
    pub const TIMESTAMPS: u8 = 1;
    /// SACK negotiated.
    pub const SACK: u8 = 2;
    /// Window scaling negotiated.
    pub const WSCALE: u8 = 4;
    /// ECN negotiated (synack has no ECN: never set).
    pub const ECN: u8 = 8;
    /// An ECN CE mark was seen (never set).
    pub const ECN_SEEN: u8 = 16;
    /// Data in the SYN was acknowledged (TCP Fast Open; never set).
    pub const SYN_DATA: u8 = 32;
}

impl Info {
    /// `tcpi_snd_cwnd`: the congestion window in whole segments of `snd_mss` (rounded down).
    pub fn cwnd_segments(&self) -> u32 {
        self.cwnd / self.snd_mss.max(1)
    }

    /// `tcpi_snd_ssthresh`: ssthresh in whole segments, or [`TCP_INFINITE_SSTHRESH`] while it
    /// is still "arbitrarily high" (RFC 5681 §3.1).
    pub fn ssthresh_segments(&self) -> u32 {
        if self.ssthresh == u32::MAX {
            TCP_INFINITE_SSTHRESH
        } else {
            (self.ssthresh / self.snd_mss.max(1)).min(TCP_INFINITE_SSTHRESH)
        }
    }

    /// `tcpi_options`: the negotiated options as Linux's [`tcpi_opt`] bits.
    pub fn options(&self) -> u8 {
        let mut o = 0;
        if self.timestamps {
            o |= tcpi_opt::TIMESTAMPS;
        }
        if self.sack {
            o |= tcpi_opt::SACK;
        }
        if self.window_scaling {
            o |= tcpi_opt::WSCALE;
        }
        o
    }
}

/// Linux's congestion-avoidance states (`tcpi_ca_state`, `enum tcp_ca_state`), by their
/// Linux names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CaState {
    /// Nothing suspicious (`TCP_CA_Open`, 0).
    #[default]
    Open,
    /// Duplicate ACKs or SACKs seen, no loss decided yet (`TCP_CA_Disorder`, 1).
    Disorder,
    /// cwnd reduced for a non-loss signal such as ECN (`TCP_CA_CWR`, 2).
    Cwr,
    /// Fast recovery (`TCP_CA_Recovery`, 3).
    Recovery,
    /// Recovery after a retransmission timeout (`TCP_CA_Loss`, 4).
    Loss,
}

impl CaState {
    /// The number Linux reports in `tcpi_ca_state`.
    pub fn linux_value(self) -> u8 {
        match self {
            CaState::Open => 0,
            CaState::Disorder => 1,
            CaState::Cwr => 2,
            CaState::Recovery => 3,
            CaState::Loss => 4,
        }
    }

    /// Linux's name, e.g. `Recovery`.
    pub fn name(self) -> &'static str {
        match self {
            CaState::Open => "Open",
            CaState::Disorder => "Disorder",
            CaState::Cwr => "CWR",
            CaState::Recovery => "Recovery",
            CaState::Loss => "Loss",
        }
    }
}

/// One TCP connection.
pub struct Connection {
    cfg: Arc<Config>,
    state: State,
    local: SocketAddr,
    remote: SocketAddr,
    /// Opened by a passive OPEN (LISTEN → SYN-RECEIVED): a RST sends it back to LISTEN.
    passive: bool,

    // Send sequence variables (RFC 9293 §3.3.1).
    iss: SeqNum,
    snd_una: SeqNum,
    snd_nxt: SeqNum,
    /// Highest sequence number sent so far, plus one (snd_nxt goes back on retransmission).
    snd_max: SeqNum,
    /// Send window in bytes, already scaled.
    snd_wnd: u32,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    /// Largest window the peer has offered (RFC 9293 §3.8.6.2.1 sender SWS; RFC 5961 §5.2).
    max_snd_wnd: u32,
    /// The peer's window scale shift (applied to windows it sends).
    snd_shift: u8,
    /// Effective send MSS (payload bytes per segment).
    snd_mss: u32,
    /// Our SYN has been acknowledged (from then on SND.UNA is the first buffered byte).
    syn_acked: bool,
    /// Bytes queued by the application, starting at SND.UNA (after the SYN).
    send_buf: RingBuffer,
    /// The application has no more data to send (shutdown write / close): FIN after the data.
    fin_queued: bool,
    /// Sequence number of our FIN once it has been sent.
    fin_seq: Option<SeqNum>,
    /// Send urgent pointer (RFC 9293 §3.8.5): one past the last urgent byte (RFC 6093 §2),
    /// until SND.UNA passes it.
    snd_up: Option<SeqNum>,

    // Receive sequence variables.
    irs: SeqNum,
    rcv_nxt: SeqNum,
    /// Right edge of the window we last advertised (never moved left, RFC 9293 §3.8.6).
    rcv_adv: SeqNum,
    /// Our window scale shift (applied to windows we send).
    rcv_shift: u8,
    /// MSS we announce (from the MTU).
    rcv_mss: u32,
    /// Ready bytes for the application, followed by out-of-order bytes.
    recv_buf: RingBuffer,
    assembler: Assembler,
    sack_rec: SackRecorder,
    /// Sequence number of the peer's FIN if it arrived ahead of a gap.
    peer_fin: Option<SeqNum>,
    /// The peer's FIN has been consumed (rcv_nxt is past it).
    peer_fin_done: bool,
    /// Urgent pointer (RFC 9293 §3.8.5 / RFC 6093: one past the last urgent byte).
    rcv_up: Option<SeqNum>,
    /// The application shut down reading: incoming data is acknowledged and discarded.
    read_shut: bool,

    // Options.
    ts: Option<Timestamps>,
    /// Offset added to our millisecond clock for TSval (per connection, from the caller).
    ts_offset: u32,
    sack_ok: bool,
    /// Options the peer put on its SYN (for the passive side's SYN-ACK).
    peer_syn_opts: Option<SynOptions>,
    /// The largest segment (without options) the path carries, from ICMP fragmentation-needed
    /// (RFC 1191) or the stack's cache of them.
    path_mss: Option<u32>,

    // ACK generation.
    ack_now: bool,
    /// Linux's receiver ACK policy (quick-ACK and ping-pong modes, adaptive timeout).
    delack: DelayedAck,
    /// The peer's segment size as seen in what it sends (Linux's icsk_ack.rcv_mss): more than
    /// this much unacknowledged means "two full segments", ACK at once.
    rcv_seg_est: u32,
    /// RCV.NXT when we last sent an ACK (Last.ACK.sent of RFC 7323 §4.3).
    last_ack_sent: SeqNum,
    pending_rst: Option<PendingRst>,
    /// Challenge ACK rate limit window (RFC 5961 §7).
    challenge_window: Instant,
    challenge_count: u32,

    // Timers and retries.
    timers: Timers,
    retries: u32,
    /// Since when outstanding data has waited without progress (first transmission, or the
    /// last ACK that advanced SND.UNA): the user timeout (RFC 5482) counts from here.
    rtx_since: Option<Instant>,
    /// Zero-window probe is due.
    probe_now: bool,
    persist_backoff: u32,
    keepalive_sent: u32,
    keepalive_due: bool,
    last_recv: Instant,

    // Congestion and RTT.
    rtt: RttEstimator,
    sampler: RttSampler,
    cc: Box<dyn CongestionControl>,

    // Loss recovery (connection/recovery.rs).
    /// What is in flight, and what the peer's ACKs and SACKs said of it.
    sb: Scoreboard,
    rack: Rack,
    prr: Prr,
    ca_state: CaState,
    /// SND.MAX when the current recovery or loss episode began: it ends when SND.UNA passes.
    high_seq: SeqNum,
    /// SND.UNA when the episode began, while its window reduction may still be undone.
    undo_marker: Option<SeqNum>,
    /// Retransmissions of the episode that no D-SACK has yet shown unnecessary.
    undo_retrans: u32,
    /// Retransmissions of the episode.
    episode_retrans: u32,
    /// TSval of the episode's first retransmission (Eifel detection, RFC 3522).
    retrans_stamp: Option<u32>,
    /// Without SACK: duplicate ACKs, each standing for one segment that arrived.
    reno_sacked: u32,
    /// Linux's congestion-window validation: the most segments in flight in the last round,
    /// the round's end, and whether the window held sending back.
    max_packets_out: u32,
    cwnd_usage_seq: SeqNum,
    cwnd_limited: bool,
    /// Segments delivered to the peer (TCP_INFO's tcpi_delivered).
    delivered: u64,
    /// D-SACK blocks received.
    dsack_dups: u32,
    /// The largest reordering seen, in segments (Linux's tp->reordering; starts at 3).
    reordering: u32,
    /// New data goes out in bursts sized as Linux sizes its TSO packets (`burst_quota`):
    /// segments left in the current one, its size, and when it started.
    burst_left: u16,
    burst_size: u16,
    burst_at: Instant,
    /// Last time data was sent (for restart after idle, RFC 5681 §4.1).
    last_send: Instant,

    // Per-connection socket options.
    nodelay: bool,
    cork: bool,
    /// The last send() said MSG_MORE: hold a partial segment and set no PSH at its end.
    more: bool,
    /// TCP_NODELAY was just set or the cork removed: push what is queued once, whatever
    /// Nagle, cork or MSG_MORE would say (Linux's TCP_NAGLE_PUSH).
    push_once: bool,
    /// The end of the last segment we sent that was smaller than the MSS (Minshall's
    /// variant of Nagle, as Linux implements it: a partial segment waits only while an
    /// earlier partial one is unacknowledged).
    snd_sml: SeqNum,
    /// A tail loss probe is due: send one segment, new data if any, else the last one.
    probe_due: bool,
    /// The segment being planned is that probe.
    probe_out: bool,
    /// The FIN went out in a segment of its own: the probe resends just the FIN (the last
    /// segment sent).
    fin_alone: bool,
    /// SND.NXT when the last probe went out, until an ACK covers it (RFC 8985 §7: one
    /// probe per tail).
    tlp_high: Option<SeqNum>,
    /// PSH and MSG_EOR boundaries of the unsent data, drawn as Linux draws them.
    push_marks: PushMarks,
    keepalive: Option<Keepalive>,
    user_timeout: Option<Duration>,
    /// close() was called: no more reads, FIN-WAIT-2 times out.
    orphaned: bool,

    error: Option<Error>,
    /// An ICMP destination-unreachable seen for this connection (RFC 1122 §4.2.3.9: a soft
    /// error); it becomes the error if the connection then times out.
    soft_error: bool,
    /// `error` was returned to the application once (by recv or send).
    error_reported: bool,
    /// When we last answered an invalid segment (see `Config::invalid_ratelimit`).
    last_oow_ack: Option<Instant>,
    events: VecDeque<Event>,
    info: Info,
}

/// Options seen on a SYN or SYN-ACK.
#[derive(Debug, Clone, Copy, Default)]
struct SynOptions {
    wscale: Option<u8>,
    sack_permitted: bool,
    tsval: Option<u32>,
}

/// Events kept when nobody drains them.
const MAX_EVENTS: usize = 256;

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("state", &self.state)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("snd_una", &self.snd_una)
            .field("snd_nxt", &self.snd_nxt)
            .field("rcv_nxt", &self.rcv_nxt)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection in CLOSED, bound to `local`. `mss` is what the path's MTU allows us to
    /// receive (MTU minus IP and TCP headers); `ts_offset` randomises our timestamp clock.
    pub fn new(cfg: Arc<Config>, local: SocketAddr, mss: u16, ts_offset: u32) -> Connection {
        let unspecified = SocketAddr::new(local.ip(), 0);
        let cc =
            congestion::new_controller(cfg.congestion, cfg.default_mss as u32, cfg.initial_window);
        Connection {
            state: State::Closed,
            local,
            remote: unspecified,
            passive: false,
            iss: SeqNum(0),
            snd_una: SeqNum(0),
            snd_nxt: SeqNum(0),
            snd_max: SeqNum(0),
            snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: SeqNum(0),
            max_snd_wnd: 0,
            snd_shift: 0,
            snd_mss: cfg.default_mss as u32,
            syn_acked: false,
            send_buf: RingBuffer::new(cfg.send_buffer),
            fin_queued: false,
            fin_seq: None,
            snd_up: None,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            rcv_shift: 0,
            rcv_mss: cfg.mss_clamp.map_or(mss, |c| c.min(mss)).max(88) as u32,
            recv_buf: RingBuffer::new(cfg.recv_buffer),
            assembler: Assembler::new(),
            sack_rec: SackRecorder::new(),
            peer_fin: None,
            peer_fin_done: false,
            rcv_up: None,
            read_shut: false,
            ts: None,
            ts_offset,
            sack_ok: false,
            peer_syn_opts: None,
            path_mss: None,
            ack_now: false,
            delack: DelayedAck::new(cfg.delayed_ack),
            rcv_seg_est: 536.min(mss as u32),
            last_ack_sent: SeqNum(0),
            pending_rst: None,
            challenge_window: Instant::ZERO,
            challenge_count: 0,
            timers: Timers::default(),
            retries: 0,
            rtx_since: None,
            probe_now: false,
            persist_backoff: 0,
            keepalive_sent: 0,
            keepalive_due: false,
            last_recv: Instant::ZERO,
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            sampler: RttSampler::new(),
            cc,
            sb: Scoreboard::new(),
            rack: Rack::new(),
            prr: Prr::default(),
            ca_state: CaState::Open,
            high_seq: SeqNum(0),
            undo_marker: None,
            undo_retrans: 0,
            episode_retrans: 0,
            retrans_stamp: None,
            reno_sacked: 0,
            max_packets_out: 0,
            cwnd_usage_seq: SeqNum(0),
            cwnd_limited: false,
            delivered: 0,
            dsack_dups: 0,
            reordering: crate::tcp::rack::DUP_THRESH,
            burst_left: 0,
            burst_size: 0,
            burst_at: Instant::ZERO,
            last_send: Instant::ZERO,
            nodelay: cfg.nodelay,
            cork: false,
            more: false,
            probe_due: false,
            probe_out: false,
            fin_alone: false,
            tlp_high: None,
            snd_sml: SeqNum(0),
            push_once: false,
            push_marks: PushMarks::new(SeqNum(0)),
            keepalive: None,
            user_timeout: None,
            orphaned: false,
            error: None,
            soft_error: false,
            error_reported: false,
            last_oow_ack: None,
            events: VecDeque::new(),
            info: Info::default(),
            cfg,
        }
    }

    // ----- OPEN (RFC 9293 §3.10.1) -----

    /// Active OPEN: send a SYN with initial sequence number `iss` (from
    /// [`IsnGenerator`](super::isn::IsnGenerator)) and enter SYN-SENT.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        iss: SeqNum,
        ctr: &mut Counters,
    ) -> Result<(), Error> {
        if self.state != State::Closed {
            return Err(Error::InvalidInput);
        }
        self.remote = remote;
        self.init_send(iss);
        self.last_recv = now;
        ctr.active_opens += 1;
        // RFC 9293 §3.10.1: "A SYN segment of the form <SEQ=ISS><CTL=SYN> is sent. Set SND.UNA
        // to ISS, SND.NXT to ISS+1, enter SYN-SENT state". The SYN goes out on poll_transmit.
        self.set_state(State::SynSent, "connect");
        Ok(())
    }

    /// Passive OPEN: wait for a SYN on the local address.
    pub fn listen(&mut self) -> Result<(), Error> {
        if self.state != State::Closed {
            return Err(Error::InvalidInput);
        }
        self.passive = true;
        self.set_state(State::Listen, "listen");
        Ok(())
    }

    fn init_send(&mut self, iss: SeqNum) {
        self.iss = iss;
        self.snd_una = iss;
        self.snd_nxt = iss;
        self.snd_max = iss;
        self.snd_sml = iss;
        self.push_marks = PushMarks::new(iss + 1u32);
        self.rcv_shift = if self.cfg.window_scaling {
            self.cfg.our_window_shift()
        } else {
            0
        };
    }

    // ----- SEND (§3.10.2) -----

    /// Queues data; returns how much fit (0 when the send buffer is full: try again when
    /// [`send_capacity`](Self::send_capacity) grows). Data queued in SYN-SENT or
    /// SYN-RECEIVED goes out once the connection is established (§3.10.2).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.send_with(data, false, false)
    }

    fn enqueue(&mut self, data: &[u8]) -> Result<usize, Error> {
        if let Some(e) = self.error {
            // The error is reported once, as Linux's sock_error() does; then the socket is
            // simply closed for writing.
            return Err(if std::mem::replace(&mut self.error_reported, true) {
                Error::BrokenPipe
            } else {
                e
            });
        }
        match self.state {
            State::Closed | State::Listen => Err(Error::NotConnected),
            _ if self.fin_queued => Err(Error::BrokenPipe),
            s if s.can_send() => Ok(self.send_buf.enqueue(data)),
            _ => Err(Error::BrokenPipe),
        }
    }

    /// [`send`](Self::send) with send() flags: `more` (MSG_MORE) holds a partial segment
    /// back for data to come and sets no PSH; `eor` (MSG_EOR) ends a record, so no segment
    /// carries data from both sides of its end.
    ///
    /// PSH goes where Linux puts it (see [`push`](crate::tcp::push)): at the end of each
    /// write unless `more`, and every half window of a long write. A send that stops short
    /// because the buffer is full pushes what it queued; the next send continues that write.
    pub fn send_with(&mut self, data: &[u8], more: bool, eor: bool) -> Result<usize, Error> {
        self.write(data, more, eor, false)
    }

    fn write(&mut self, data: &[u8], more: bool, eor: bool, oob: bool) -> Result<usize, Error> {
        let seq = self.send_buf_seq() + self.send_buf.len();
        let n = self.enqueue(data)?;
        self.more = more;
        let mss = self.snd_mss;
        let header_len = 20 + if self.ts.is_some() { 12 } else { 0 };
        self.push_marks.on_write(push::Write {
            seq,
            copied: n as u32,
            requested: data.len().min(u32::MAX as usize) as u32,
            sent_end: self.snd_max,
            // MSG_OOB data goes in buffers of one segment (Linux `tcp_send_mss`).
            size_goal: if oob {
                mss
            } else {
                push::size_goal(mss, self.max_snd_wnd, header_len)
                    .min(self.tso_segs().saturating_mul(mss))
            },
            max_window: self.max_snd_wnd,
            more,
            eor,
        });
        Ok(n)
    }

    /// Queues data as urgent (MSG_OOB): segments sent while SND.UNA is before the end of it
    /// carry URG and the urgent pointer (RFC 9293 §3.8.5), which points one past the last
    /// urgent byte as every implementation does (RFC 6093 §2). The data itself travels inline.
    pub fn send_urgent(&mut self, data: &[u8]) -> Result<usize, Error> {
        let n = self.write(data, false, false, true)?;
        if n > 0 {
            self.snd_up = Some(self.send_buf_seq() + self.send_buf.len());
        }
        Ok(n)
    }

    /// Free space in the send buffer.
    pub fn send_capacity(&self) -> usize {
        if self.state.can_send() && !self.fin_queued {
            self.send_buf.free()
        } else {
            0
        }
    }

    /// Bytes queued and not yet acknowledged.
    pub fn send_queue_len(&self) -> usize {
        self.send_buf.len()
    }

    // ----- RECEIVE (§3.10.3) -----

    /// Reads received data. `Ok(0)` means end of stream (the peer sent FIN and everything
    /// before it has been read), or an empty `out`. Data received before a reset or before
    /// TIME-WAIT expired stays readable until drained.
    pub fn recv(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let n = self.recv_buf.dequeue(out);
        if n > 0 {
            self.info.bytes_received += n as u64;
            // A window update once reading opened a window that had fallen to half the
            // buffer or less, and now at least doubles it (Linux's tcp_cleanup_rbuf). This
            // is within RFC 9293 §3.8.6.2.2 (the edge moves by at least min(RCV.BUFF/2,
            // MSS)) and spares an ACK per read while the window is wide open.
            let current = self.advertised_window() as u64;
            let grown = self.recv_window_right_edge_gain() as u64;
            if self.state.can_receive()
                && 2 * current <= self.cfg.recv_buffer as u64
                && grown >= current.max(self.rcv_mss.min(self.cfg.recv_buffer as u32 / 2) as u64)
            {
                self.ack_now = true;
            }
            return Ok(n);
        }
        if out.is_empty() || self.peer_fin_done || self.read_shut {
            return Ok(0);
        }
        if let Some(e) = self.error {
            // Reported once (as Linux's sock_error()); then reads see the end of the stream.
            if std::mem::replace(&mut self.error_reported, true) {
                return Ok(0);
            }
            return Err(e);
        }
        match self.state {
            State::Closed | State::Listen => Err(Error::NotConnected),
            // Nothing yet: the caller waits for readability.
            _ => Ok(0),
        }
    }

    /// Bytes ready for [`recv`](Self::recv).
    pub fn recv_queue_len(&self) -> usize {
        self.recv_buf.len()
    }

    /// True when a read would not block: data is queued, the stream ended, or an error is set.
    pub fn is_readable(&self) -> bool {
        !self.recv_buf.is_empty() || self.peer_fin_done || self.read_shut || self.error.is_some()
    }

    /// True once the peer's FIN has been received in order (after the data before it).
    pub fn peer_closed(&self) -> bool {
        self.peer_fin_done
    }

    /// The urgent pointer, if the peer sent urgent data not yet passed by the reader: the
    /// sequence number one past the last urgent byte (RFC 6093 §2), as an offset from the
    /// next byte [`recv`](Self::recv) returns.
    pub fn urgent_offset(&self) -> Option<usize> {
        let up = self.rcv_up?;
        let read_seq = self.rcv_nxt - self.recv_buf.len() as u32;
        (up > read_seq).then(|| (up - read_seq) as usize)
    }

    // ----- CLOSE, SHUTDOWN, ABORT (§3.10.4, §3.10.5) -----

    /// Half or full shutdown. `Write` queues a FIN after the data (§3.10.4 CLOSE semantics);
    /// `Read` discards further incoming data.
    pub fn shutdown(&mut self, how: Shutdown) -> Result<(), Error> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read_shut = true;
            let n = self.recv_buf.len();
            self.recv_buf.consume(n);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.close_send()?;
        }
        Ok(())
    }

    fn close_send(&mut self) -> Result<(), Error> {
        match self.state {
            State::Closed => return Err(Error::NotConnected),
            State::Listen | State::SynSent => {
                // §3.10.4: "Delete the TCB, enter CLOSED state, and return."
                self.set_state(State::Closed, "close before established");
                self.clear_timers();
                return Ok(());
            }
            _ => {}
        }
        if self.fin_queued {
            return Ok(());
        }
        self.fin_queued = true;
        // Linux moves to FIN-WAIT-1 / LAST-ACK at the call; the FIN itself goes out after the
        // queued data (§3.10.4: "queue this until all preceding SENDs have been segmentized").
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::FinWait1, "close"),
            State::CloseWait => self.set_state(State::LastAck, "close"),
            _ => {}
        }
        Ok(())
    }

    /// The application closes its socket. Like Linux (RFC 2525 §2.17), unread received data
    /// makes this an abort: a RST goes out and nothing more is delivered. Otherwise the
    /// connection closes gracefully in the background and FIN-WAIT-2 is bounded by
    /// `fin_wait2_timeout`.
    pub fn close(&mut self, now: Instant, ctr: &mut Counters) {
        self.orphaned = true;
        if !self.recv_buf.is_empty()
            && self.state.is_synchronized()
            && !matches!(self.state, State::TimeWait)
        {
            ctr.abort_on_data += 1;
            self.reset_and_close(now, "close with unread data", ctr);
            return;
        }
        self.read_shut = true;
        let _ = self.close_send();
        if self.state == State::FinWait2 {
            self.timers.close = Some(now + self.cfg.fin_wait2_timeout);
        }
    }

    /// ABORT (§3.10.5): send a RST in the synchronized states (and SYN-RECEIVED) and drop
    /// everything.
    pub fn abort(&mut self, now: Instant, ctr: &mut Counters) {
        ctr.abort_on_close += 1;
        self.reset_and_close(now, "abort", ctr);
    }

    fn reset_and_close(&mut self, _now: Instant, reason: &'static str, ctr: &mut Counters) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            // §3.10.5: "<SEQ=SND.NXT><CTL=RST>".
            self.pending_rst = Some(PendingRst {
                seq: self.snd_nxt,
                ack: Some(self.rcv_nxt),
            });
            self.push_event(Event::ResetSent { reason });
            if matches!(self.state, State::Established | State::CloseWait) {
                ctr.estab_resets += 1;
            }
        }
        let n = self.send_buf.len();
        self.send_buf.consume(n);
        self.sb.clear();
        let n = self.recv_buf.len();
        self.recv_buf.consume(n);
        self.orphaned = true;
        self.set_state(State::Closed, reason);
        self.clear_timers();
    }

    // ----- Socket options -----

    /// TCP_NODELAY: send small segments at once instead of waiting for outstanding data to be
    /// acknowledged (Nagle, RFC 896 / RFC 1122 §4.2.3.4).
    pub fn set_nodelay(&mut self, on: bool) {
        self.nodelay = on;
        // Setting it pushes what is queued, even past a cork (as Linux does).
        self.push_once |= on;
    }

    pub fn nodelay(&self) -> bool {
        self.nodelay
    }

    /// TCP_CORK: hold partial segments until uncorked (or the data fills a segment).
    pub fn set_cork(&mut self, on: bool) {
        self.push_once |= self.cork && !on;
        self.cork = on;
    }

    /// SO_KEEPALIVE with TCP_KEEPIDLE/KEEPINTVL/KEEPCNT; `None` turns keepalive off.
    pub fn set_keepalive(&mut self, now: Instant, ka: Option<Keepalive>) {
        self.keepalive = ka;
        self.keepalive_sent = 0;
        self.timers.keepalive = ka.map(|k| self.last_recv.max(now) + k.idle);
    }

    pub fn keepalive(&self) -> Option<Keepalive> {
        self.keepalive
    }

    /// TCP_USER_TIMEOUT (RFC 5482): abort when transmitted data stays unacknowledged this long
    /// (measured from its transmission, or from the last ACK that made progress).
    pub fn set_user_timeout(&mut self, t: Option<Duration>) {
        self.user_timeout = t;
    }

    /// Path MTU discovery (RFC 1191 §6.3): an ICMP "fragmentation needed" for this
    /// connection lowers the MSS to fit `mtu` (IP and TCP headers and our options taken off),
    /// never below 536 + options (RFC 9293 §3.7.1's floor). Returns the new MSS if it changed.
    pub fn on_path_mtu(&mut self, mtu: u16, ip_header: u16) -> Option<u32> {
        let path = (mtu as u32).saturating_sub(ip_header as u32 + 20).max(536);
        self.path_mss = Some(self.path_mss.map_or(path, |p| p.min(path)));
        if matches!(self.state, State::Closed | State::Listen | State::SynSent) {
            // Applied when the handshake settles the MSS.
            return None;
        }
        let opts = if self.ts.is_some() { 12 } else { 0 };
        let mss = path - opts;
        if mss >= self.snd_mss {
            return None;
        }
        self.snd_mss = mss;
        self.cc.set_mss(mss);
        if self.snd_una < self.snd_nxt {
            // What is in flight was too big for the path and is gone: send it again now in
            // segments that fit (Linux's tcp_simple_retransmit), without treating it as
            // congestion.
            self.sb.resegment(mss);
            self.sb.mark_all_lost();
            self.snd_nxt = self.snd_una;
            self.sampler.invalidate();
        }
        Some(mss)
    }

    /// An ICMP destination-unreachable (other than fragmentation-needed) quoted this
    /// connection. RFC 1122 §4.2.3.9: a soft error; the connection carries on, and the error
    /// is what the application sees if it then times out.
    pub fn on_icmp_unreachable(&mut self) {
        self.soft_error = true;
    }

    /// Replaces the congestion controller (like TCP_CONGESTION). On a connection that is
    /// under way the new controller starts from the old one's cwnd and ssthresh, as Linux's
    /// `tcp_reinit_congestion_control` keeps them; only the algorithm's own state starts
    /// afresh. Choosing the algorithm in use changes nothing.
    pub fn set_congestion(&mut self, alg: congestion::Algorithm) {
        if alg == self.cc.algorithm() {
            return;
        }
        let (cwnd, ssthresh) = (self.cc.cwnd(), self.cc.ssthresh());
        self.cc = congestion::new_controller(alg, self.snd_mss, self.cfg.initial_window);
        if self.state.is_synchronized() {
            self.cc.set_cwnd(cwnd);
            self.cc.set_ssthresh(ssthresh);
        }
    }

    /// The congestion control algorithm in use (like getsockopt TCP_CONGESTION).
    pub fn congestion(&self) -> congestion::Algorithm {
        self.cc.algorithm()
    }

    // ----- Accessors -----

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Our initial sequence number.
    pub fn iss(&self) -> SeqNum {
        self.iss
    }

    /// The peer's initial sequence number (valid once a SYN was received).
    pub fn irs(&self) -> SeqNum {
        self.irs
    }

    /// The error that ended the connection, if any.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// The peer's window scale shift and ours, once negotiated (for traces).
    pub fn window_shifts(&self) -> (u8, u8) {
        (self.snd_shift, self.rcv_shift)
    }

    /// True when the connection is gone for good: CLOSED and nothing left for the reader.
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed && (self.orphaned || self.recv_buf.is_empty())
    }

    /// Statistics in the manner of TCP_INFO.
    pub fn info(&self) -> Info {
        let flight = self.snd_nxt - self.snd_una;
        let mss = self.snd_mss.max(1);
        let negotiated = !matches!(self.state, State::Closed | State::Listen | State::SynSent);
        Info {
            state: Some(self.state),
            snd_mss: self.snd_mss,
            rcv_mss: self.rcv_mss,
            advmss: self.rcv_mss,
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            rto: self.rtt.current_rto(),
            bytes_in_flight: flight,
            pipe: self.sb.pipe().bytes,
            // SND.MAX, not SND.NXT: a timeout rewinds SND.NXT but the segments stay out.
            unacked: (self.snd_max - self.snd_una).div_ceil(mss),
            sacked: self.sb.sacked().segs + self.reno_sacked,
            lost: self.sb.lost().segs,
            retrans: self.sb.retrans().segs,
            reordering: self.reordering,
            delivered: self.delivered as u32,
            dsack_dups: self.dsack_dups,
            ca_state: self.ca_state,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_adv - self.rcv_nxt,
            snd_wscale: self.snd_shift,
            rcv_wscale: self.rcv_shift,
            timestamps: self.ts.is_some(),
            sack: self.sack_ok,
            window_scaling: negotiated
                && self.cfg.window_scaling
                && (self.snd_shift != 0 || self.rcv_shift != 0),
            ..self.info
        }
    }

    /// Next trace event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- Timeouts (§3.10.8) -----

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, ctr: &mut Counters) {
        if self.timers.close.is_some_and(|t| t <= now) {
            self.timers.close = None;
            match self.state {
                // §3.10.8: "If the time-wait timeout expires on a connection, delete the TCB".
                State::TimeWait => self.set_state(State::Closed, "TIME-WAIT expired"),
                State::FinWait2 => {
                    self.set_state(State::Closed, "FIN-WAIT-2 timeout");
                    self.clear_timers();
                }
                _ => {}
            }
        }
        if self.timers.delayed_ack.is_some_and(|t| t <= now) {
            self.timers.delayed_ack = None;
            if self.state.is_synchronized() || self.state == State::SynReceived {
                self.delack.on_timer(self.rtt.current_rto());
                self.ack_now = true;
                ctr.delayed_acks += 1;
            }
        }
        if self.timers.loss_probe.is_some_and(|t| t <= now) {
            // The probe comes first even when it was capped at the RTO deadline (as in
            // Linux); sending it restarts the retransmission timer.
            self.timers.loss_probe = None;
            if self.snd_una != self.snd_max {
                self.probe_due = true;
                self.timers.retransmit = Some(now + self.rtt.current_rto());
            }
        }
        if self.timers.reorder.is_some_and(|t| t <= now) {
            self.timers.reorder = None;
            self.on_reorder_timeout(now, ctr);
        }
        if self.timers.retransmit.is_some_and(|t| t <= now) {
            self.timers.retransmit = None;
            self.timers.loss_probe = None;
            self.on_retransmit_timeout(now, ctr);
        }
        if self.timers.persist.is_some_and(|t| t <= now) {
            self.timers.persist = None;
            if self.user_timeout_expired(now) {
                self.time_out(ctr, "user timeout during zero-window probing");
            } else {
                self.probe_now = true;
                self.persist_backoff = (self.persist_backoff + 1).min(16);
            }
        }
        if self.timers.keepalive.is_some_and(|t| t <= now) {
            self.timers.keepalive = None;
            self.on_keepalive_timeout(now, ctr);
        }
    }

    fn on_retransmit_timeout(&mut self, now: Instant, ctr: &mut Counters) {
        let limit = match self.state {
            State::SynSent => self.cfg.syn_retries,
            State::SynReceived => self.cfg.synack_retries,
            _ => self.cfg.max_retries,
        };
        if self.snd_una == self.snd_max {
            return; // nothing outstanding (timer raced an ACK)
        }
        if self.retries >= limit || self.user_timeout_expired(now) {
            self.time_out(ctr, "retransmissions exhausted");
            return;
        }
        self.retries += 1;
        ctr.timeouts += 1;
        self.rtt.backoff();
        self.push_event(Event::RtoFired {
            rto: self.rtt.current_rto(),
            backoff: self.rtt.backoff_count(),
        });
        // RFC 6298 §5.4: retransmit the earliest unacknowledged segment; RFC 5681 §3.1 eq. 4.
        if self.state.is_synchronized() {
            self.enter_loss(now, ctr);
        }
        self.tlp_high = None;
        self.probe_due = false;
        // Go back: everything after SND.UNA is sent again as the window allows (Karn: no samples).
        self.snd_nxt = self.snd_una;
        self.sampler.invalidate();
        // The FIN, if it was sent, keeps its sequence number: it goes again when the resend
        // reaches the end of the data, and an ACK past SND.NXT (the peer queued the rest out
        // of order) may acknowledge it before then.
        // RFC 6298 §5.5: the timer restarts now, so it runs even if the resend cannot go at
        // once (under a closed window the persist timer takes over instead).
        if self.snd_wnd > 0 && self.state.is_synchronized() {
            self.arm_retransmit(now);
        }
    }

    fn user_timeout_expired(&self, now: Instant) -> bool {
        match (self.user_timeout, self.rtx_since) {
            (Some(limit), Some(since)) => now - since >= limit,
            _ => false,
        }
    }

    fn on_keepalive_timeout(&mut self, now: Instant, ctr: &mut Counters) {
        let Some(ka) = self.keepalive else { return };
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait2
        ) {
            return;
        }
        // RFC 1122 §4.2.3.6: probe only an idle connection; data in flight has its own timer.
        if self.snd_una != self.snd_max || !self.send_buf.is_empty() {
            self.timers.keepalive = Some(now + ka.idle);
            return;
        }
        if self.keepalive_sent >= ka.count {
            self.time_out(ctr, "keepalive: peer stopped answering");
            return;
        }
        self.keepalive_sent += 1;
        self.keepalive_due = true;
        ctr.keepalive_probes += 1;
        self.timers.keepalive = Some(now + ka.interval);
    }

    fn time_out(&mut self, ctr: &mut Counters, reason: &'static str) {
        ctr.abort_on_timeout += 1;
        if matches!(self.state, State::SynSent | State::SynReceived) {
            ctr.attempt_fails += 1;
        }
        self.error = Some(if self.soft_error {
            Error::Unreachable
        } else {
            Error::TimedOut
        });
        // Linux sends a RST when it gives up on an established connection.
        if self.state.is_synchronized() && self.state != State::TimeWait {
            self.pending_rst = Some(PendingRst {
                seq: self.snd_nxt,
                ack: Some(self.rcv_nxt),
            });
        }
        self.set_state(State::Closed, reason);
        self.clear_timers();
    }

    fn clear_timers(&mut self) {
        self.timers = Timers::default();
    }

    // ----- Helpers shared by input and output -----

    fn set_state(&mut self, to: State, reason: &'static str) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.push_event(Event::StateChanged { from, to, reason });
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Our timestamp clock: milliseconds plus the per-connection offset (RFC 7323 §5.4).
    fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// The window we would advertise now, in bytes (before scaling).
    fn advertised_window(&self) -> u32 {
        self.rcv_adv - self.rcv_nxt
    }

    /// How far the right edge could move now beyond what we advertised (within what the
    /// window field can express).
    fn recv_window_right_edge_gain(&self) -> u32 {
        let max_wnd = (u16::MAX as u32) << self.rcv_shift;
        let free = (self.recv_buf.free() as u32).min(max_wnd);
        let edge = self.rcv_nxt + free;
        if edge > self.rcv_adv {
            edge - self.rcv_adv
        } else {
            0
        }
    }

    /// Sequence number of the first byte of `send_buf`.
    fn send_buf_seq(&self) -> SeqNum {
        // Before the SYN is acknowledged, SND.UNA points at the SYN itself.
        if self.syn_acked {
            self.snd_una
        } else {
            self.iss + 1u32
        }
    }

    /// Enter an error state from a RST.
    fn reset_by_peer(&mut self, error: Error, reason: &'static str) {
        self.error = Some(error);
        let n = self.send_buf.len();
        self.send_buf.consume(n);
        self.sb.clear();
        self.set_state(State::Closed, reason);
        self.clear_timers();
    }

    /// Arrange an ACK: now, or after the delayed-ACK timeout.
    fn schedule_ack(&mut self, now: Instant, immediate: bool) {
        let delay = self.delack.timeout(self.rtt.srtt());
        if immediate || delay.is_zero() || self.cfg.delayed_ack.is_zero() {
            self.ack_now = true;
        } else if self.timers.delayed_ack.is_none() {
            self.timers.delayed_ack = Some(now + delay);
        }
    }

    /// RFC 8985 §7.2: after sending (or an ACK), schedule a tail loss probe two SRTTs out, so
    /// a lost tail is repaired by fast recovery instead of a timeout. Like Linux it needs
    /// SACK (the probe's ACK must show what arrived), runs only outside recovery and
    /// backoff, adds the minimum RTO when a single segment is out (the peer may delay its
    /// ACK) and never fires after the retransmission timer would.
    fn arm_loss_probe(&mut self, now: Instant) {
        self.timers.loss_probe = None;
        let open = matches!(self.ca_state, CaState::Open | CaState::Disorder)
            && self.retries == 0
            && self.tlp_high.is_none()
            && self.snd_nxt == self.snd_max;
        if !self.sack_ok || !open || !self.state.is_synchronized() {
            return;
        }
        let Some(rto_at) = self.timers.retransmit else {
            return;
        };
        let pto = match self.rtt.srtt() {
            Some(srtt) => {
                let one_segment = self.snd_max - self.snd_una <= self.snd_mss + 1;
                let extra = if one_segment {
                    self.cfg.rto_min
                } else {
                    Duration::from_millis(2)
                };
                srtt * 2 + extra
            }
            None => self.cfg.rto_initial,
        };
        self.timers.loss_probe = Some((now + pto).min(rto_at));
    }

    /// Arm the retransmission timer if something is outstanding and it is not running. With
    /// a user timeout, it fires no later than the moment that timeout expires (as Linux
    /// clamps the RTO), so the abort is on time.
    fn arm_retransmit(&mut self, now: Instant) {
        if self.snd_una != self.snd_max {
            if self.rtx_since.is_none() {
                self.rtx_since = Some(now);
            }
            if self.timers.retransmit.is_none() {
                let mut at = now + self.rtt.current_rto();
                if let (Some(limit), Some(since)) = (self.user_timeout, self.rtx_since) {
                    at = at.min((since + limit).max(now));
                }
                self.timers.retransmit = Some(at);
            }
            self.arm_loss_probe(now);
        } else {
            self.timers.retransmit = None;
            self.timers.loss_probe = None;
        }
    }

    /// Arm (or stop) the persist timer (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17): data waits,
    /// nothing is in flight, and the peer's window is too small to send what waits (zero, or
    /// below one segment, where sender SWS avoidance holds back). When it fires, the sender
    /// probes a zero window with one byte or sends what fits ("override timeout", RFC 9293
    /// §3.8.6.2.1). "Nothing in flight" is SND.NXT = SND.UNA, which also covers a window the
    /// peer shrank to zero under outstanding data once the retransmission timer went back.
    fn update_persist(&mut self, now: Instant) {
        let unsent = self.unsent_len();
        let fin_waits = self.fin_queued && self.fin_seq.is_none();
        let wnd_blocked = (unsent > 0
            && (self.snd_wnd as usize) < unsent.min(self.snd_mss as usize))
            || (unsent == 0 && fin_waits && self.snd_wnd == 0);
        if self.state.is_synchronized() && wnd_blocked && self.snd_nxt == self.snd_una {
            if self.timers.persist.is_none() {
                let base = self.rtt.current_rto().max(self.cfg.rto_min);
                let t = base
                    .saturating_mul(1 << self.persist_backoff.min(10))
                    .min(self.cfg.rto_max);
                self.timers.persist = Some(now + t);
            }
        } else {
            self.timers.persist = None;
            if !wnd_blocked {
                self.persist_backoff = 0;
            }
        }
    }

    /// Bytes queued but not yet sent.
    fn unsent_len(&self) -> usize {
        let sent = self.snd_nxt - self.send_buf_seq();
        self.send_buf.len().saturating_sub(sent as usize)
    }
}

/// The reply RFC 9293 §3.10.7.1 prescribes for a segment that finds no connection (CLOSED):
/// nothing for a RST; `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` if the ACK bit is off;
/// `<SEQ=SEG.ACK><CTL=RST>` otherwise. Returns (seq, ack if the ACK bit is to be set).
pub fn reset_for_closed(seg: &crate::wire::tcp::Repr<'_>) -> Option<(SeqNum, Option<SeqNum>)> {
    if seg.flags.rst() {
        return None;
    }
    if seg.flags.ack() {
        Some((seg.ack, None))
    } else {
        Some((SeqNum(0), Some(seg.seq + seg.segment_len())))
    }
}

#[cfg(test)]
mod tests;
