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
mod options;
mod output;
mod passive;
mod receiver;
mod recovery;
mod sender;
mod state;
mod timers;

pub use output::MAX_HEADER;

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::config::Config;
use super::congestion::{self, CongestionControl};
use super::rtt::{RtoBounds, RttEstimator};
use super::seq::SeqNum;
use crate::time::{Duration, Instant};

pub use calls::Shutdown;
pub use error::Error;
use event::Events;
pub use event::{Event, RetransmitCause};
pub use info::{CaState, Info, TCP_INFINITE_SSTHRESH, tcpi_opt};
use options::Options;
use receiver::Receiver;
use recovery::Recovery;
use sender::Sender;
pub use state::State;
use timers::Timers;

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
    // The endpoints as the stack's demux key holds them: addresses and ports (no IPv6 flow
    // label or scope), 38 bytes instead of two 32-byte `SocketAddr`s.
    local_ip: IpAddr,
    remote_ip: IpAddr,
    local_port: u16,
    remote_port: u16,
    /// Opened by a passive OPEN (LISTEN → SYN-RECEIVED): a RST sends it back to LISTEN.
    passive: bool,
    /// close() was called: no more reads, FIN-WAIT-2 times out.
    orphaned: bool,
    snd: Sender,
    rcv: Receiver,
    /// Loss-recovery state, allocated on the first SACK, loss or retransmission
    /// (`recovery.rs`): an idle connection has none.
    recovery: Option<Box<Recovery>>,
    opts: Options,
    timers: Timers,
    keepalive_due: bool,
    rtt: RttEstimator,
    cc: Box<dyn CongestionControl>,
    pending_rst: Option<PendingRst>,
    error: Option<Error>,
    /// An ICMP destination-unreachable seen for this connection (RFC 1122 §4.2.3.9: a soft
    /// error); it becomes the error if the connection then times out.
    soft_error: bool,
    /// `error` was returned to the application once (by recv or send).
    error_reported: bool,
    events: Events,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("state", &self.state)
            .field("local", &self.local())
            .field("remote", &self.remote())
            .field("snd_una", &self.snd.una)
            .field("snd_nxt", &self.snd.nxt)
            .field("rcv_nxt", &self.rcv.nxt)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection in CLOSED, bound to `local`. `mss` is what the path's MTU allows us to
    /// receive (MTU minus IP and TCP headers); `ts_offset` randomises our timestamp clock.
    pub fn new(cfg: Arc<Config>, local: SocketAddr, mss: u16, ts_offset: u32) -> Connection {
        let cc =
            congestion::new_controller(cfg.congestion, cfg.default_mss as u32, cfg.initial_window);
        Connection {
            state: State::Closed,
            local_ip: local.ip(),
            remote_ip: local.ip(),
            local_port: local.port(),
            remote_port: 0,
            passive: false,
            orphaned: false,
            snd: Sender::new(&cfg),
            rcv: Receiver::new(&cfg, mss),
            recovery: None,
            opts: Options::new(&cfg, ts_offset),
            timers: Timers::default(),
            keepalive_due: false,
            rtt: RttEstimator::new(cfg.rto_initial, rto_bounds(&cfg)),
            cc,
            pending_rst: None,
            error: None,
            soft_error: false,
            error_reported: false,
            events: None,
            cfg,
        }
    }

    // ----- Accessors -----

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local_ip, self.local_port)
    }

    pub fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.remote_ip, self.remote_port)
    }

    /// Our initial sequence number.
    pub fn iss(&self) -> SeqNum {
        self.snd.iss
    }

    /// The peer's initial sequence number (valid once a SYN was received).
    pub fn irs(&self) -> SeqNum {
        self.rcv.irs
    }

    /// The error that ended the connection, if any.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// The peer's window scale shift and ours, once negotiated (for traces).
    pub fn window_shifts(&self) -> (u8, u8) {
        (self.snd.shift, self.rcv.shift)
    }

    /// True when the connection is gone for good: CLOSED and nothing left for the reader.
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed && (self.orphaned || self.rcv.buf.is_empty())
    }

    // ----- Helpers shared by input and output -----

    /// The retransmission timeout now, backoff included.
    fn rto(&self) -> Duration {
        self.rtt.current_rto(rto_bounds(&self.cfg))
    }

    fn rto_bounds(&self) -> RtoBounds {
        rto_bounds(&self.cfg)
    }

    fn set_remote(&mut self, remote: SocketAddr) {
        self.remote_ip = remote.ip();
        self.remote_port = remote.port();
    }

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
        (now.total_millis() as u32).wrapping_add(self.opts.ts_offset)
    }

    /// Enter an error state from a RST.
    fn reset_by_peer(&mut self, error: Error, reason: &'static str) {
        self.error = Some(error);
        let n = self.snd.buf.len();
        self.snd.buf.consume(n);
        self.snd.sb.clear();
        self.set_state(State::Closed, reason);
        self.clear_timers();
    }
}

/// The RTO's bounds (RFC 6298 §2.4, §2.5) from the configuration.
fn rto_bounds(cfg: &Config) -> RtoBounds {
    RtoBounds {
        min: cfg.rto_min,
        max: cfg.rto_max,
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
