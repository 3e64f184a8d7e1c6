//! TIME-WAIT (RFC 9293 §3.6.1, §3.10.7.4): the rules a connection in TIME-WAIT follows, and
//! the compact entry that takes a finished connection's place for the 2 MSL, as Linux swaps
//! the socket for an `inet_timewait_sock` (`tcp_time_wait`) and answers segments from it
//! (`tcp_timewait_state_process`).
//!
//! A [`TimeWait`] keeps only what those rules read: the endpoints, SND.NXT (the next
//! incarnation's ISN is above it), the sequence number and window of our ACKs, RCV.NXT,
//! TS.Recent for PAWS, the timestamp clock's offset, when we last answered an invalid
//! segment, and the deadline (the owner keeps it). [`Connection::time_wait_entry`] makes one
//! when the connection's ACKs would look the same from the entry, byte for byte; otherwise
//! the connection stays whole until its TIME-WAIT ends.

use core::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::options::Timestamps;
use super::{Connection, State};
use crate::tcp::config::Config;
use crate::tcp::counters::Counters;
use crate::tcp::handshake::ts_clock;
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, Options, Repr, Timestamps as TsOption};

/// Ticks (our timestamp clock counts milliseconds) by which a timestamp may trail TS.Recent
/// and still pass PAWS (Linux `TCP_PAWS_WINDOW`).
pub(super) const PAWS_WINDOW: i32 = 1;
/// After this long without an update, TS.Recent no longer rejects anything (RFC 7323 §5.5:
/// the peer's clock may have wrapped; Linux `TCP_PAWS_24DAYS`).
pub(super) const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// How long TS.Recent keeps rejecting an older RST in TIME-WAIT (Linux `TCP_PAWS_MSL`): a RST
/// is spared PAWS only once TS.Recent is this old (`tcp_paws_reject`), since a peer that
/// rebooted may have lost its clock.
pub(super) const PAWS_MSL: Duration = Duration::from_secs(60);

/// What TIME-WAIT does with a segment (§3.10.7.4 as `tcp_timewait_state_process` does it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A RST at RCV.NXT: TIME-WAIT ends (RFC 1337's hazard), unless `Config::rfc1337`.
    Reset,
    /// A segment at RCV.NXT without text, SYN or FIN: the 2 MSL timer restarts silently and
    /// its timestamp becomes TS.Recent.
    Restart,
    /// Any other RST, or one that failed PAWS: dropped.
    DropRst,
    /// Anything else (a retransmitted FIN, data, an old SYN): acknowledged; the timer
    /// restarts if `restart` (the segment carries an ACK or failed PAWS). The answer is
    /// rate-limited like every answer to an invalid segment if `limited`: not for a segment
    /// with text or a FIN and no SYN, which cannot be half of an ACK loop (Linux
    /// `tcp_oow_rate_limited`), so every retransmitted FIN is acknowledged.
    Ack { restart: bool, limited: bool },
}

/// Does PAWS reject a segment with `tsval` in TIME-WAIT? Linux's `tcp_paws_reject` asks
/// `tcp_paws_check` with no window (an established connection allows `PAWS_WINDOW`): any
/// TSval older than TS.Recent, unless TS.Recent is 0 (some stacks send 0 on their SYN) or
/// older than `idle`.
fn paws_rejects(ts: Timestamps, tsval: u32, age: Duration, idle: Duration) -> bool {
    let behind = ts.recent.wrapping_sub(tsval) as i32;
    behind > 0 && ts.recent != 0 && age < idle
}

/// The verdict on `seg` in TIME-WAIT, and whether PAWS rejected it (counted as
/// `paws_timewait`). A SYN for a new incarnation is decided before: [`accepts_syn`].
pub(super) fn verdict(
    rcv_nxt: SeqNum,
    ts: Option<Timestamps>,
    seg: &Repr<'_>,
    now: Instant,
) -> (Verdict, bool) {
    let f = seg.flags;
    let paws_reject = match (ts, seg.options.timestamps) {
        (Some(ts), Some(seg_ts)) => {
            let idle = if f.rst() { PAWS_MSL } else { PAWS_IDLE };
            paws_rejects(ts, seg_ts.tsval, now - ts.recent_at, idle)
        }
        _ => false,
    };
    let bare = seg.payload.is_empty() && !f.syn() && !f.fin();
    let verdict = if !paws_reject && seg.seq == rcv_nxt && (bare || f.rst()) {
        if f.rst() {
            Verdict::Reset
        } else {
            Verdict::Restart
        }
    } else if f.rst() {
        Verdict::DropRst
    } else {
        Verdict::Ack {
            restart: paws_reject || f.ack(),
            limited: f.syn() || (seg.payload.is_empty() && !f.fin()),
        }
    };
    (verdict, paws_reject)
}

/// May a new SYN from the same peer reuse the 4-tuple? Linux allows it when the SYN is
/// beyond this incarnation: a sequence number above RCV.NXT, or a TSval newer than TS.Recent
/// (RFC 9293 §3.6.1's "larger sequence number", RFC 6191), and PAWS does not reject it
/// (`tcp_timewait_state_process`). If so, the ISN the new incarnation's SYN-ACK uses: past
/// everything this one sent, SND.NXT + 65537, as Linux picks it (`tw_snd_nxt + 65535 + 2`,
/// never 0).
pub(super) fn accepts_syn(
    snd_nxt: SeqNum,
    rcv_nxt: SeqNum,
    ts: Option<Timestamps>,
    seg: &Repr<'_>,
) -> Option<SeqNum> {
    if !seg.flags.syn() || seg.flags.ack() || seg.flags.rst() {
        return None;
    }
    let (newer_ts, paws_reject) = match (ts, seg.options.timestamps) {
        (Some(ts), Some(seg_ts)) => {
            let behind = ts.recent.wrapping_sub(seg_ts.tsval) as i32;
            (
                behind < 0,
                paws_rejects(ts, seg_ts.tsval, Duration::ZERO, PAWS_IDLE),
            )
        }
        _ => (false, false),
    };
    if paws_reject || !(seg.seq > rcv_nxt || newer_ts) {
        return None;
    }
    let isn = snd_nxt + 65537u32;
    Some(if isn == SeqNum(0) { SeqNum(1) } else { isn })
}

/// What became of a segment given to a [`TimeWait`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing to do but, if `restart`, move the deadline to `now + time_wait`.
    Keep { restart: bool },
    /// Owes an ACK ([`TimeWait::ack`]); the deadline moves as for `Keep`.
    Ack { restart: bool },
    /// TIME-WAIT ended (a RST): drop the entry.
    Closed,
}

/// A connection in TIME-WAIT, compact: about a tenth of a [`Connection`], and nothing on
/// the heap of its own (the settings are shared).
#[derive(Debug, Clone)]
pub(crate) struct TimeWait {
    /// The settings, shared with the listener or the stack (read live, as Linux reads
    /// `tcp_rfc1337` and `tcp_invalid_ratelimit` when a segment comes).
    cfg: Arc<Config>,
    local_ip: IpAddr,
    remote_ip: IpAddr,
    local_port: u16,
    remote_port: u16,
    /// SND.NXT: the next incarnation starts above it.
    snd_nxt: SeqNum,
    /// SEG.SEQ of our ACKs (the connection's `acceptable_seq`).
    ack_seq: SeqNum,
    rcv_nxt: SeqNum,
    /// The window field of our ACKs (nothing arrives any more: it stays what it was).
    window: u16,
    /// TS.Recent, if timestamps were negotiated.
    ts: Option<Timestamps>,
    ts_offset: u32,
    /// When we last answered an invalid segment (`Config::invalid_ratelimit`).
    last_oow_ack: Option<Instant>,
}

impl TimeWait {
    pub(crate) fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local_ip, self.local_port)
    }

    pub(crate) fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.remote_ip, self.remote_port)
    }

    /// The settings, to change (a live sysctl, see [`Connection::config_mut`]).
    pub(crate) fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.cfg)
    }

    /// How long TIME-WAIT lasts from a (re)start.
    pub(crate) fn duration(&self) -> Duration {
        self.cfg.time_wait
    }

    /// See [`accepts_syn`].
    pub(crate) fn accepts_syn(&self, seg: &Repr<'_>) -> Option<SeqNum> {
        accepts_syn(self.snd_nxt, self.rcv_nxt, self.ts, seg)
    }

    /// A segment for this entry (not a SYN it [accepts](Self::accepts_syn)), as
    /// [`Connection::handle_segment`] takes it in TIME-WAIT, counted the same way.
    pub(crate) fn handle_segment(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        ctr: &mut Counters,
    ) -> Outcome {
        ctr.in_segs += 1;
        let (v, paws_reject) = verdict(self.rcv_nxt, self.ts, seg, now);
        match v {
            Verdict::Reset if self.cfg.rfc1337 => Outcome::Keep { restart: false },
            Verdict::Reset => Outcome::Closed,
            Verdict::Restart => {
                if let Some(seg_ts) = seg.options.timestamps.filter(|_| self.ts.is_some()) {
                    self.ts = Some(Timestamps {
                        recent: seg_ts.tsval,
                        recent_at: now,
                    });
                }
                Outcome::Keep { restart: true }
            }
            Verdict::DropRst => {
                if paws_reject {
                    ctr.paws_timewait += 1;
                }
                Outcome::Keep { restart: false }
            }
            Verdict::Ack { restart, limited } => {
                if paws_reject {
                    ctr.paws_timewait += 1;
                }
                ctr.out_of_window += 1;
                let limit = self.cfg.invalid_ratelimit;
                if limited && !limit.is_zero() {
                    if self.last_oow_ack.is_some_and(|t| now - t < limit) {
                        ctr.ack_skipped_time_wait += 1;
                        return Outcome::Keep { restart };
                    }
                    self.last_oow_ack = Some(now);
                }
                Outcome::Ack { restart }
            }
        }
    }

    /// The ACK `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` the connection would send at `now`
    /// (with its window and timestamps). The caller counts it (`out_segs`).
    pub(crate) fn ack(&self, now: Instant) -> Repr<'static> {
        let mut options = Options::default();
        if let Some(ts) = self.ts {
            options.timestamps = Some(TsOption {
                tsval: ts_clock(now, self.ts_offset),
                tsecr: ts.recent,
            });
        }
        Repr {
            src_port: self.local_port,
            dst_port: self.remote_port,
            seq: self.ack_seq,
            ack: self.rcv_nxt,
            flags: Flags::ACK,
            window: self.window,
            urgent: 0,
            options,
            payload: &[],
        }
    }
}

impl Connection {
    /// This connection in TIME-WAIT as a compact entry, with its deadline, when nothing is
    /// owed and every ACK it could still send is one [`TimeWait::ack`] writes the same:
    /// no ECN (whose echo a segment could still change), no urgent pointer, no out-of-order
    /// record (SACK blocks), no trace events. `None` otherwise (the connection stays whole).
    pub(crate) fn time_wait_entry(&mut self) -> Option<(TimeWait, Instant)> {
        if self.state != State::TimeWait
            || self.ecn.ok()
            || self.record_events
            || self.rcv.ooo.is_some()
            || self.snd.up.is_some()
            || self.rcv.ack_now
            || self.pending_rst.is_some()
        {
            return None;
        }
        // The 2 MSL deadline itself: `poll_timeout` may also hold a paced segment's departure.
        let deadline = self.timers.get(super::timers::Timer::Close)?;
        let window = self.window_to_advertise(false);
        let last_oow_ack = self.rcv.limits.as_ref().and_then(|l| l.last_oow_ack.get());
        Some((
            TimeWait {
                cfg: self.cfg.clone(),
                local_ip: self.local_ip,
                remote_ip: self.remote_ip,
                local_port: self.local_port,
                remote_port: self.remote_port,
                snd_nxt: self.snd.nxt,
                ack_seq: self.acceptable_seq(),
                rcv_nxt: self.rcv.nxt,
                window,
                ts: self.opts.ts(),
                ts_offset: self.opts.ts_offset,
                last_oow_ack,
            },
            deadline,
        ))
    }
}
