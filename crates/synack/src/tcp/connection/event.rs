//! Trace events: what happened inside a connection, queued (bounded) for the owner to drain.

use std::collections::VecDeque;

use super::{Connection, State};
use crate::tcp::seq::SeqNum;
use crate::time::Duration;

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

/// Events kept when nobody drains them.
const MAX_EVENTS: usize = 256;

/// The queue of events not yet drained: allocated by the first event and freed once drained,
/// so a connection between events holds a null pointer, not a 32-byte deque and its buffer.
#[allow(clippy::box_collection)]
pub(super) type Events = Option<Box<VecDeque<Event>>>;

impl Connection {
    /// Next trace event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        let queue = self.events.as_mut()?;
        let e = queue.pop_front();
        if queue.is_empty() {
            self.events = None;
        }
        e
    }

    /// Whether trace events are queued (on by default). Turning it off drops those queued;
    /// the stack turns it off unless it traces, so that a state change allocates nothing.
    pub fn record_events(&mut self, on: bool) {
        self.record_events = on;
        if !on {
            self.events = None;
        }
    }

    pub(super) fn push_event(&mut self, e: Event) {
        if !self.record_events {
            return;
        }
        let queue = self.events.get_or_insert_with(Box::default);
        if queue.len() >= MAX_EVENTS {
            queue.pop_front();
        }
        queue.push_back(e);
    }
}
