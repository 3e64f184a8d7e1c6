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

mod calls;
mod error;
mod event;
mod info;
mod input;
mod output;
mod passive;
mod recovery;
mod state;
mod timers;

pub use output::MAX_HEADER;

use crate::tcp::delack::DelayedAck;
use core::fmt;
use core::net::SocketAddr;
use std::collections::VecDeque;
use std::sync::Arc;

use super::buffer::RingBuffer;
use super::config::{Config, Keepalive};
use super::congestion::{self, CongestionControl};
use super::prr::Prr;
use super::push::PushMarks;
use super::rack::Rack;
use super::reassembly::Assembler;
use super::rtt::{RttEstimator, RttSampler};
use super::sack::SackRecorder;
use super::scoreboard::Scoreboard;
use super::seq::SeqNum;
use crate::time::{Duration, Instant};

pub use calls::Shutdown;
pub use error::Error;
pub use event::{Event, RetransmitCause};
pub use info::{CaState, Info, TCP_INFINITE_SSTHRESH, tcpi_opt};
pub use state::State;
use timers::Timers;

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

    // ----- Helpers shared by input and output -----

    fn set_state(&mut self, to: State, reason: &'static str) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.push_event(Event::StateChanged { from, to, reason });
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
