//! The receiving half of the TCB: the receive sequence variables of RFC 9293 §3.3.1, the
//! receive buffer, the peer's FIN and urgent pointer, and three parts boxed on first use: the
//! [`Reception`] state once data or the FIN arrives (Linux's delayed-ACK policy), the
//! [`OutOfOrder`] record once a segment arrives out of order or twice (reassembly ranges, SACK
//! and D-SACK blocks), and the [`AnswerLimits`] once an invalid segment is answered.

use crate::tcp::buffer::RingBuffer;
use crate::tcp::config::Config;
use crate::tcp::delack::DelayedAck;
use crate::tcp::reassembly::Assembler;
use crate::tcp::sack::SackRecorder;
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant, MaybeInstant};

/// The receiver. Fields are named as in RFC 9293 without the `RCV.` prefix (`nxt` is RCV.NXT).
#[derive(Debug)]
pub(super) struct Receiver {
    pub(super) irs: SeqNum,
    pub(super) nxt: SeqNum,
    /// Right edge of the window we last advertised (never moved left, RFC 9293 §3.8.6).
    pub(super) adv: SeqNum,
    /// Our window scale shift (applied to windows we send).
    pub(super) shift: u8,
    /// MSS we announce (from the MTU).
    pub(super) mss: u32,
    /// Ready bytes for the application, followed by out-of-order bytes.
    pub(super) buf: RingBuffer,
    /// What arrived out of order or twice, once anything has.
    pub(super) ooo: Option<Box<OutOfOrder>>,
    /// Sequence number of the peer's FIN if it arrived ahead of a gap.
    pub(super) fin: Option<SeqNum>,
    /// The peer's FIN has been consumed (RCV.NXT is past it).
    pub(super) fin_done: bool,
    /// Urgent pointer (RFC 9293 §3.8.5 / RFC 6093: one past the last urgent byte).
    pub(super) up: Option<SeqNum>,
    /// The application shut down reading: incoming data is acknowledged and discarded.
    pub(super) shut: bool,
    /// An ACK is owed now.
    pub(super) ack_now: bool,
    /// The peer's segment size as seen in what it sends (Linux's icsk_ack.rcv_mss): more than
    /// this much unacknowledged means "two full segments", ACK at once.
    pub(super) seg_est: u32,
    /// RCV.NXT when we last sent an ACK (Last.ACK.sent of RFC 7323 §4.3).
    pub(super) last_ack_sent: SeqNum,
    /// When the last acceptable segment arrived (keepalive counts idleness from here).
    pub(super) last_recv: Instant,
    /// How often invalid segments were answered lately, once one was.
    pub(super) limits: Option<Box<AnswerLimits>>,
    /// The ACK policy and the receive counters, once data or the FIN has arrived.
    pub(super) data: Option<Box<Reception>>,
    /// Segments this connection received, whatever became of them, its SYN included (Linux
    /// `tp->segs_in`, 32 bits; TCP_INFO's tcpi_segs_in).
    pub(super) segs_in: u32,
}

/// The receiver's record of data that arrived out of order or twice: which ranges past RCV.NXT
/// the buffer holds, and what the SACK option reports. Allocated the first time a segment
/// arrives out of order or as a duplicate; in-order data never needs it.
#[derive(Debug, Default)]
pub(super) struct OutOfOrder {
    /// Which out-of-order ranges past RCV.NXT the buffer holds.
    pub(super) assembler: Assembler,
    /// The SACK blocks to report (RFC 2018 §4) and a pending D-SACK (RFC 2883).
    pub(super) sack: SackRecorder,
}

impl OutOfOrder {
    /// The record in `slot`, allocated now if this is the first time it is needed.
    pub(super) fn get(slot: &mut Option<Box<OutOfOrder>>) -> &mut OutOfOrder {
        slot.get_or_insert_with(Box::default)
    }
}

/// How often we answered invalid segments lately: Linux's `invalid_ratelimit` on answers to
/// out-of-window segments, and RFC 5961 §7's budget of challenge ACKs per second. Allocated
/// with the first answer to an invalid segment.
#[derive(Debug, Default)]
pub(super) struct AnswerLimits {
    /// When we last answered an invalid segment (see `Config::invalid_ratelimit`).
    pub(super) last_oow_ack: MaybeInstant,
    /// The current one-second challenge-ACK window and the challenge ACKs sent in it.
    pub(super) challenge_window: Instant,
    pub(super) challenge_count: u32,
}

/// What the receiver keeps once data or the FIN has arrived: Linux's ACK policy for it and
/// TCP_INFO's receive counters. Until then the policy has nothing to decide (an ACK owed goes
/// out at once), so a connection that never received anything holds none of it.
#[derive(Debug)]
pub(super) struct Reception {
    /// Linux's receiver ACK policy (quick-ACK and ping-pong modes, adaptive timeout).
    pub(super) delack: DelayedAck,
    /// Sequence space received in order, data read or not and the FIN: RCV.NXT's advance
    /// since the SYN (Linux `tp->bytes_received`, tcpi_bytes_received).
    pub(super) bytes_received: u64,
    /// Segments received that carried data, whatever became of them (Linux
    /// `tp->data_segs_in`, 32 bits; tcpi_data_segs_in).
    pub(super) data_segs_in: u32,
}

impl Receiver {
    /// The reception state, allocated now if nothing has arrived before; `ato_min` is
    /// `Config::delayed_ack`.
    pub(super) fn reception(&mut self, ato_min: Duration) -> &mut Reception {
        self.data.get_or_insert_with(|| {
            Box::new(Reception {
                delack: DelayedAck::new(ato_min),
                bytes_received: 0,
                data_segs_in: 0,
            })
        })
    }

    /// The delayed-ACK policy, once anything arrived.
    pub(super) fn delack(&self) -> Option<&DelayedAck> {
        self.data.as_ref().map(|d| &d.delack)
    }

    /// `mss` is what the path's MTU allows us to receive.
    pub(super) fn new(cfg: &Config, mss: u16) -> Receiver {
        Receiver {
            irs: SeqNum(0),
            nxt: SeqNum(0),
            adv: SeqNum(0),
            shift: 0,
            mss: cfg.mss_clamp.map_or(mss, |c| c.min(mss)).max(88) as u32,
            buf: RingBuffer::new(cfg.recv_buffer),
            ooo: None,
            fin: None,
            fin_done: false,
            up: None,
            shut: false,
            ack_now: false,
            seg_est: 536.min(mss as u32),
            last_ack_sent: SeqNum(0),
            last_recv: Instant::ZERO,
            limits: None,
            data: None,
            segs_in: 0,
        }
    }

    /// Out-of-order data is held past RCV.NXT.
    pub(super) fn has_holes(&self) -> bool {
        self.ooo.as_ref().is_some_and(|o| !o.assembler.is_empty())
    }

    /// The window we would advertise now, in bytes (before scaling).
    pub(super) fn window(&self) -> u32 {
        self.adv - self.nxt
    }

    /// How far the right edge could move now beyond what we advertised (within what the
    /// window field can express).
    pub(super) fn right_edge_gain(&self) -> u32 {
        let max_wnd = (u16::MAX as u32) << self.shift;
        let free = (self.buf.free() as u32).min(max_wnd);
        let edge = self.nxt + free;
        if edge > self.adv { edge - self.adv } else { 0 }
    }
}
