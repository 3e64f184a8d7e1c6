//! What poll() reports for a connection, computed from its state as Linux's `tcp_poll` does.
//!
//! The socket façades (and the packetdrill runner's `poll()`) ask [`Connection::poll_events`]
//! instead of re-deriving readiness from the state machine each in its own way.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};

use super::{Connection, State};

/// A set of poll(2) events, with Linux's bit values (`POLLIN` 0x1, `POLLPRI` 0x2, `POLLOUT`
/// 0x4, `POLLERR` 0x8, `POLLHUP` 0x10, `POLLRDHUP` 0x2000), so a façade can hand them on as
/// they are.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PollEvents(pub u16);

impl PollEvents {
    pub const NONE: PollEvents = PollEvents(0);
    /// Data to read, or the end of the stream.
    pub const IN: PollEvents = PollEvents(0x1);
    /// Urgent data (RFC 9293 §3.8.5) not yet passed by the reader.
    pub const PRI: PollEvents = PollEvents(0x2);
    /// Room to write (or writing is over, so a write returns at once).
    pub const OUT: PollEvents = PollEvents(0x4);
    /// An error not yet reported (SO_ERROR clears it).
    pub const ERR: PollEvents = PollEvents(0x8);
    /// Both directions are shut, or the connection is closed.
    pub const HUP: PollEvents = PollEvents(0x10);
    /// The peer closed its side (its FIN arrived), or reading was shut down.
    pub const RDHUP: PollEvents = PollEvents(0x2000);

    /// Whether every event of `other` is in `self`.
    pub fn contains(self, other: PollEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// The events a poll() asking for `requested` returns: those asked for, and POLLERR and
    /// POLLHUP always (poll(2): "ignored in events").
    pub fn reported(self, requested: PollEvents) -> PollEvents {
        self & (requested | PollEvents::ERR | PollEvents::HUP)
    }
}

impl BitOr for PollEvents {
    type Output = PollEvents;
    fn bitor(self, o: PollEvents) -> PollEvents {
        PollEvents(self.0 | o.0)
    }
}

impl BitOrAssign for PollEvents {
    fn bitor_assign(&mut self, o: PollEvents) {
        self.0 |= o.0;
    }
}

impl BitAnd for PollEvents {
    type Output = PollEvents;
    fn bitand(self, o: PollEvents) -> PollEvents {
        PollEvents(self.0 & o.0)
    }
}

impl fmt::Debug for PollEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(PollEvents, &str); 6] = [
            (PollEvents::IN, "POLLIN"),
            (PollEvents::PRI, "POLLPRI"),
            (PollEvents::OUT, "POLLOUT"),
            (PollEvents::ERR, "POLLERR"),
            (PollEvents::HUP, "POLLHUP"),
            (PollEvents::RDHUP, "POLLRDHUP"),
        ];
        let mut first = true;
        for (e, name) in NAMES {
            if self.contains(e) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("0")?;
        }
        Ok(())
    }
}

impl Connection {
    /// The poll(2) events of this connection now, as Linux's `tcp_poll` computes them:
    ///
    /// * closed (reset, timed out, or handed to TIME-WAIT: Linux's `tcp_done` shuts both
    ///   directions) → `HUP | IN | RDHUP | OUT`; shut both ways by the application → `HUP`;
    /// * the peer's FIN received, or reading shut down → `IN | RDHUP`;
    /// * once synchronized (or a Fast Open child in SYN-RECEIVED): `IN` with data to read,
    ///   `OUT` while the free send buffer is at least half of what is queued (Linux's
    ///   `sk_stream_is_writeable`) or once writing was shut down, `PRI` with urgent data;
    ///   nothing of these in SYN-SENT or in SYN-RECEIVED after a simultaneous open;
    /// * `ERR` while an error waits to be reported ([`take_error`](Self::take_error)).
    ///
    /// A listener's readiness (its accept queue) is the stack's: `Stack::poll_events`.
    pub fn poll_events(&self) -> PollEvents {
        let done = matches!(self.state, State::Closed | State::TimeWait);
        let rcv_shut = done || self.rcv.shut || self.rcv.fin_done;
        let snd_shut = done || self.snd.fin_queued;
        let mut ev = PollEvents::NONE;
        if done || (rcv_shut && snd_shut) {
            ev |= PollEvents::HUP;
        }
        if rcv_shut {
            ev |= PollEvents::IN | PollEvents::RDHUP;
        }
        let opening = match self.state {
            State::SynSent | State::Listen => true,
            State::SynReceived => !self.fast_open_pending(),
            _ => false,
        };
        if !opening {
            if !self.rcv.buf.is_empty() {
                ev |= PollEvents::IN;
            }
            if snd_shut || self.snd.buf.free() >= self.snd.buf.len() / 2 {
                ev |= PollEvents::OUT;
            }
            if self.urgent_offset().is_some() {
                ev |= PollEvents::PRI;
            }
        }
        if self.error.is_some() && !self.error_reported {
            ev |= PollEvents::ERR;
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::PollEvents;

    #[test]
    fn reported_keeps_what_was_asked_and_always_err_and_hup() {
        let all = PollEvents::IN
            | PollEvents::OUT
            | PollEvents::ERR
            | PollEvents::HUP
            | PollEvents::RDHUP;
        assert_eq!(
            all.reported(PollEvents::IN),
            PollEvents::IN | PollEvents::ERR | PollEvents::HUP
        );
        assert_eq!(PollEvents::OUT.reported(PollEvents::IN), PollEvents::NONE);
        assert_eq!(all.0, 0x1 | 0x4 | 0x8 | 0x10 | 0x2000);
        assert_eq!(
            format!("{:?}", PollEvents::IN | PollEvents::RDHUP),
            "POLLIN|POLLRDHUP"
        );
        assert_eq!(format!("{:?}", PollEvents::NONE), "0");
    }
}
