//! Trace plumbing: packets, state changes, drops and notes as [`TraceEvent`]s, kept (up to a
//! bound) until the runtime drains them with [`Stack::poll_trace`]. Nothing is built when
//! tracing is off.

use core::net::SocketAddr;

use super::Stack;
use crate::tcp::{Event, SeqNum, State};
use crate::time::Instant;
use crate::trace::{Direction, TraceEvent};

/// Trace events kept when nobody drains them.
const MAX_TRACE: usize = 1 << 16;

impl Stack {
    pub(super) fn trace_on(&self) -> bool {
        self.cfg.trace
    }

    pub(super) fn push_trace(&mut self, e: TraceEvent) {
        if self.trace.len() >= MAX_TRACE {
            self.trace.pop_front();
        }
        self.trace.push_back(e);
    }

    pub(super) fn trace_drop(&mut self, now: Instant, reason: &'static str, bytes: &[u8]) {
        if self.trace_on() {
            let e = TraceEvent::Drop {
                time: now,
                node: self.cfg.name.clone(),
                reason,
                bytes: Some(bytes.to_vec()),
            };
            self.push_trace(e);
        }
    }

    /// Next trace event (when `StackConfig::trace` is on).
    pub fn poll_trace(&mut self) -> Option<TraceEvent> {
        self.trace.pop_front()
    }

    /// The time of the next trace event, without taking it (to merge several hosts' events in
    /// time order).
    pub fn next_trace_time(&self) -> Option<Instant> {
        self.trace.front().map(TraceEvent::time)
    }

    /// Inlined: every packet in and out asks, and the answer is nearly always no.
    #[inline]
    pub(super) fn trace_packet(&mut self, now: Instant, dir: Direction, bytes: &[u8]) {
        if self.trace_on() {
            self.record_packet(now, dir, bytes);
        }
    }

    #[cold]
    #[inline(never)]
    fn record_packet(&mut self, now: Instant, dir: Direction, bytes: &[u8]) {
        let e = TraceEvent::Packet {
            time: now,
            dir,
            node: self.cfg.name.clone(),
            bytes: bytes.to_vec(),
        };
        self.push_trace(e);
    }

    pub(super) fn trace_state(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        from: State,
        to: State,
        reason: &'static str,
    ) {
        if self.trace_on() {
            let node = self.cfg.name.clone();
            self.push_trace(TraceEvent::State {
                time: now,
                node,
                local,
                remote,
                from,
                to,
                reason,
            });
        }
    }

    pub(super) fn trace_note(&mut self, now: Instant, text: String) {
        if !self.trace_on() {
            return;
        }
        let node = self.cfg.name.clone();
        self.push_trace(TraceEvent::Note {
            time: now,
            node,
            text,
        });
    }

    pub(super) fn trace_drop_note(&mut self, now: Instant, reason: &'static str) {
        if self.trace_on() {
            let node = self.cfg.name.clone();
            self.push_trace(TraceEvent::Drop {
                time: now,
                node,
                reason,
                bytes: None,
            });
        }
    }

    /// A connection's event as a trace event.
    pub(super) fn trace_event(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        e: Event,
    ) {
        match e {
            Event::StateChanged { from, to, reason } => {
                self.trace_state(now, local, remote, from, to, reason);
            }
            Event::Dropped { reason } => self.trace_drop_note(now, reason),
            Event::ResetSent { reason } => self.trace_note(now, format!("RST: {reason}")),
            // Relative to our ISN, as the segment lines show Seq= (the SYN is 0).
            Event::Retransmit { seq, len, cause } => {
                self.trace_note(
                    now,
                    format!("retransmit seq={} len={len} ({cause:?})", seq - iss),
                );
            }
            Event::RtoFired { rto, backoff } => {
                self.trace_note(now, format!("RTO fired, next {rto:?} (backoff {backoff})"));
            }
        }
    }
}
