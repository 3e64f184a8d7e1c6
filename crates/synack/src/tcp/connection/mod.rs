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
//! The TCB is split by type, as gVisor splits its sender and receiver: [`Connection`] (this
//! file) holds a `Sender` (`sender.rs`: the send variables, send buffer, scoreboard), a
//! `Receiver` (`receiver.rs`: the receive variables, receive buffer, ACK policy), `Options`
//! (`options.rs`: what the handshake negotiated and the socket options), the `Timers`
//! (`timers.rs`), the RTT estimator and the congestion controller. What only some
//! connections need is boxed and allocated on first use, so an idle connection holds none of
//! it: loss recovery (`recovery.rs`), the transmit state of queued data, the reception state
//! of received data, the out-of-order record, the answer limits for invalid segments, the
//! liveness options and the queue of trace events ([`layout`] lists them with their sizes).
//!
//! The code follows the RFC's own division: `calls.rs` holds the user calls (§3.10.1–§3.10.5),
//! `input.rs` SEGMENT ARRIVES (§3.10.7), `output.rs` builds segments (§3.8), `timers.rs` the
//! timeouts (§3.10.8), `recovery.rs` what ACKs tell the sender about losses, `passive.rs` the
//! connection built from a finished handshake; the vocabulary is in `state.rs`, `error.rs`,
//! `event.rs` and `info.rs` (TCP_INFO, computed on demand).

mod calls;
mod error;
mod event;
mod fastopen;
pub use fastopen::Learned as FastOpenLearned;
mod info;
mod input;
mod options;
mod output;
mod passive;
mod readiness;
pub use readiness::PollEvents;
mod receiver;
mod recovery;
mod sender;
mod spares;
pub(crate) use spares::Spares;
mod state;
mod time_wait;
pub(crate) use time_wait::{Outcome as TimeWaitOutcome, TimeWait};
mod timers;

pub use output::MAX_HEADER;

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::config::Config;
use super::congestion::Controller;
use super::ecn::{Codepoint, Ecn};
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
    /// We reset the connection on our own (abort, close with unread data, keep-alive giving
    /// up), not in answer to a segment: the RST carries our timestamps when they were
    /// negotiated, as Linux's `tcp_send_active_reset` does.
    active: bool,
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
    /// TCP Fast Open state (`fastopen::bits`).
    fast_open: u8,
    /// A client's Fast Open attempt until its SYN-ACK (RFC 7413 §4.2.1).
    fast_open_active: Option<Box<fastopen::Active>>,
    snd: Sender,
    rcv: Receiver,
    /// Loss-recovery state, allocated on the first SACK, loss or retransmission
    /// (`recovery.rs`): an idle connection has none.
    recovery: Option<Box<Recovery>>,
    opts: Options,
    /// ECN (RFC 3168) state: negotiated, echoing, CWR owed (`tcp/ecn.rs`).
    ecn: Ecn,
    timers: Timers,
    keepalive_due: bool,
    rtt: RttEstimator,
    cc: Controller,
    pending_rst: Option<PendingRst>,
    error: Option<Error>,
    /// An ICMP destination-unreachable seen for this connection (RFC 1122 §4.2.3.9: a soft
    /// error); it becomes the error if the connection then times out.
    soft_error: Option<Error>,
    /// `error` was returned to the application once (by recv or send).
    error_reported: bool,
    /// Trace events are queued for [`poll_event`](Connection::poll_event) (the default); a
    /// stack that does not trace turns this off, and a state change then allocates nothing.
    record_events: bool,
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
        Connection::new_in(cfg, local, mss, ts_offset, &mut Spares::new(0))
    }

    /// [`new`](Self::new), its congestion controller from `spares` when they hold one.
    pub(crate) fn new_in(
        cfg: Arc<Config>,
        local: SocketAddr,
        mss: u16,
        ts_offset: u32,
        spares: &mut Spares,
    ) -> Connection {
        let default_mss = cfg.default_mss_for(local.ip());
        let cc = spares.controller(cfg.congestion, u32::from(default_mss), cfg.initial_window);
        let mut opts = Options::new(&cfg, ts_offset);
        // `mss` is the link's MTU less the IP and TCP headers.
        opts.pmtu = mss.saturating_add(20 + crate::wire::ip_header_len(local.ip()) as u16);
        Connection {
            state: State::Closed,
            local_ip: local.ip(),
            remote_ip: local.ip(),
            local_port: local.port(),
            remote_port: 0,
            passive: false,
            orphaned: false,
            fast_open: 0,
            fast_open_active: None,
            snd: Sender::new(&cfg, default_mss),
            rcv: Receiver::new(&cfg, mss),
            recovery: None,
            opts,
            ecn: Ecn::default(),
            timers: Timers::default(),
            keepalive_due: false,
            rtt: RttEstimator::new(cfg.rto_initial, rto_bounds(&cfg)),
            cc,
            pending_rst: None,
            error: None,
            soft_error: None,
            error_reported: false,
            record_events: true,
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

    /// The settings this connection runs with, to change those Linux reads while a
    /// connection runs (sysctls such as `tcp_retries2` apply to existing connections). Copied
    /// on first write: the stack's other connections keep theirs.
    pub fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.cfg)
    }

    /// The IP ECN field for the segment [`poll_transmit`](Self::poll_transmit) wrote last:
    /// ECT(0) for new data once ECN is negotiated (RFC 3168 §6.1.2), else Not-ECT.
    pub fn ecn_codepoint(&self) -> Codepoint {
        self.ecn.last_codepoint()
    }

    /// The error that ended the connection, if any.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// The error, if it has not been reported yet, marked as reported (SO_ERROR, Linux's
    /// sock_error(), which clears the socket's error as it reads it): later calls see what a
    /// connection that simply ended gives (EPIPE for a write, end of file for a read).
    pub fn take_error(&mut self) -> Option<Error> {
        let e = self.error?;
        (!std::mem::replace(&mut self.error_reported, true)).then_some(e)
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

    /// Inlined (a compare and a store at each of its callers); the event, queued only when
    /// the connection records them, out of line (`#[cold]`: inside a stack, which records
    /// them only with its trace on; a standalone `Connection` records them by default and
    /// pays the call on each change).
    #[inline]
    fn set_state(&mut self, to: State, reason: &'static str) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        if self.record_events {
            self.state_changed(from, to, reason);
        }
    }

    #[cold]
    #[inline(never)]
    fn state_changed(&mut self, from: State, to: State, reason: &'static str) {
        self.push_event(Event::StateChanged { from, to, reason });
    }

    /// Our timestamp clock: milliseconds plus the per-connection offset (RFC 7323 §5.4).
    fn ts_now(&self, now: Instant) -> u32 {
        ts_clock(now, self.opts.ts_offset)
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

/// Where the bytes of a connection go, for `synack-bench sizes`: (part, bytes) for the TCB
/// (`size_of::<Connection>()`) and its inline parts, then the parts allocated on first use,
/// each with what allocates it. An idle established connection holds the first list only.
pub fn layout() -> Vec<(&'static str, usize)> {
    use crate::tcp::buffer::RingBuffer;
    use core::mem::size_of;
    let inline = [
        (
            "  snd: Sender (send variables, buffer, pointers)",
            size_of::<Sender>(),
        ),
        (
            "  rcv: Receiver (receive variables, buffer, pointers)",
            size_of::<Receiver>(),
        ),
        (
            "  opts: Options (negotiated and socket options)",
            size_of::<Options>(),
        ),
        (
            "  timers: Timers (7 deadlines of 8 bytes)",
            size_of::<Timers>(),
        ),
        ("  rtt: RttEstimator", size_of::<RttEstimator>()),
        (
            "  cc: Controller (a tag and a pointer)",
            size_of::<Controller>(),
        ),
        ("  cfg: Arc<Config> (shared)", size_of::<Arc<Config>>()),
    ];
    let listed: usize = inline.iter().map(|p| p.1).sum();
    let mut parts = vec![("tcp::Connection (whole TCB)", size_of::<Connection>())];
    parts.extend(inline);
    parts.extend([
        (
            "  the rest: endpoints, pointers to recovery and events, owed RST, state, flags",
            size_of::<Connection>() - listed,
        ),
        (
            "  (snd and rcv each hold a RingBuffer of)",
            size_of::<RingBuffer>(),
        ),
        ("heap on first use (boxes, without allocator overhead):", 0),
        (
            "  recovery: first SACK, loss or retransmission",
            size_of::<Recovery>(),
        ),
        (
            "  snd.tx: first data or FIN queued",
            size_of::<sender::Transmit>(),
        ),
        (
            "  snd.sb: first segment sent (+ its deque)",
            crate::tcp::scoreboard::BOARD_BYTES,
        ),
        (
            "  rcv.data: first data or FIN received",
            size_of::<receiver::Reception>(),
        ),
        (
            "  rcv.ooo: first out-of-order or duplicate segment",
            size_of::<receiver::OutOfOrder>(),
        ),
        (
            "  rcv.limits: first answer to an invalid segment",
            size_of::<receiver::AnswerLimits>(),
        ),
        (
            "  opts.liveness: keepalive or user timeout set",
            size_of::<options::Liveness>(),
        ),
        (
            "  events: first trace event, freed when drained",
            size_of::<std::collections::VecDeque<Event>>(),
        ),
    ]);
    parts
}

/// The timestamp clock of a connection whose offset is `offset`, at `t` (see `ts_now`).
fn ts_clock(t: Instant, offset: u32) -> u32 {
    (t.total_millis() as u32).wrapping_add(offset)
}

#[cfg(test)]
mod tests;
