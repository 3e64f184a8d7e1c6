//! The receiving half of the TCB: the receive sequence variables of RFC 9293 §3.3.1, the
//! receive buffer, the peer's FIN and urgent pointer, and three parts boxed on first use: the
//! [`Reception`] state once data or the FIN arrives (Linux's delayed-ACK policy), the
//! [`OutOfOrder`] record while segments arrive out of order or twice (reassembly ranges, SACK
//! and D-SACK blocks; given back once the holes are filled and reported and no FIN is held
//! out of order), and the [`AnswerLimits`] once an invalid segment is answered.

use crate::tcp::buffer::RingBuffer;
use crate::tcp::config::Config;
use crate::tcp::delack::DelayedAck;
use crate::tcp::reassembly::Assembler;
use crate::tcp::rwnd::{DEFAULT_SCALING_RATIO, RecvWindow};
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
    /// What arrived out of order or twice, from the first such segment until the holes are
    /// filled and reported (`note_ack_sent` gives it back).
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
/// the buffer holds, and what the SACK option reports. Allocated when a segment arrives out
/// of order or as a duplicate; given back (`note_ack_sent`) once the assembler is empty, the
/// SACK recorder has nothing to report or owe and no FIN is held out of order, so that
/// output prediction resumes; in-order data never needs it.
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
    /// The receive-window model's part that data changes (`tcp::rwnd`): bytes of window per
    /// 256 of buffer (Linux `scaling_ratio`), the window clamp (`window_clamp`) and how far
    /// the window has opened (`rcv_ssthresh`); 0 until set, when they follow from the buffer.
    pub(super) ratio: u8,
    pub(super) clamp: u32,
    pub(super) ssthresh: u32,
    /// Dynamic right sizing (Linux `rcvq_space`): the most read in one round trip so far,
    /// and where and when the current round trip's count started (`space`, `seq`, `time`).
    pub(super) drs_space: u32,
    pub(super) drs_seq: SeqNum,
    pub(super) drs_time: Instant,
}

impl Receiver {
    /// The reception state, allocated now if nothing has arrived before; `ato_min` is
    /// `Config::delayed_ack`.
    pub(super) fn reception(&mut self, ato_min: Duration) -> &mut Reception {
        // Dynamic right sizing starts from what the window first let in (Linux
        // `tcp_init_buffer_space`: the least of rcv_ssthresh, the window and ten segments),
        // counting from what had been read when data first arrived.
        if self.data.is_none() {
            let drs_space = self.offered().min(10 * self.mss);
            let drs_seq = self.nxt - self.buf.len() as u32;
            let drs_time = self.last_recv;
            self.data = Some(Box::new(Reception {
                delack: DelayedAck::new(ato_min),
                bytes_received: 0,
                data_segs_in: 0,
                ratio: DEFAULT_SCALING_RATIO as u8,
                clamp: 0,
                ssthresh: 0,
                drs_space,
                drs_seq,
                drs_time,
            }));
        }
        self.data.as_deref_mut().expect("allocated above")
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

    /// The window we would advertise now, in bytes (before scaling): what is left of the
    /// right edge last offered. Zero once RCV.NXT has passed that edge (text beyond the
    /// window kept because the buffer had room, until the next ACK moves the edge), not
    /// the distance wrapped around.
    pub(super) fn window(&self) -> u32 {
        if self.adv > self.nxt {
            self.adv - self.nxt
        } else {
            0
        }
    }

    /// Bytes the buffer holds: ready for the application and out of order (what Linux charges
    /// to `sk_rmem_alloc`).
    pub(super) fn held(&self) -> u32 {
        let ooo = self
            .ooo
            .as_ref()
            .map_or(0, |o| o.assembler.iter().map(|(s, e)| e - s).sum::<u32>());
        (self.buf.len() as u32).saturating_add(ooo)
    }

    /// The window last offered, counted from the RCV.NXT it was sent with (Linux `rcv_wnd`:
    /// the right edge less `rcv_wup`, which is Last.ACK.sent).
    pub(super) fn offered(&self) -> u32 {
        self.adv - self.last_ack_sent
    }

    /// The receive-window state (`tcp::rwnd`) as it stands: `locked` is SO_RCVBUF's lock,
    /// `advmss` the payload we announced room for, `initial_mss` what the initial window was
    /// rounded to (both asked only before data set the clamp and `rcv_ssthresh`: the window
    /// is worked out for every segment sent). The buffer's size is the ring's limit. Until
    /// data changes them, the clamp and `rcv_ssthresh` are what the handshake set (Linux
    /// `tcp_init_buffer_space`).
    pub(super) fn rwnd(
        &self,
        locked: bool,
        advmss: impl FnOnce() -> u32,
        initial_mss: impl FnOnce() -> u32,
    ) -> RecvWindow {
        let (ratio, clamp, ssthresh) = self
            .data
            .as_ref()
            .map_or((DEFAULT_SCALING_RATIO as u8, 0, 0), |d| {
                (d.ratio, d.clamp, d.ssthresh)
            });
        let mut w = RecvWindow {
            rcvbuf: self.buf.limit().min(u32::MAX as usize) as u32,
            clamp,
            ssthresh,
            wnd: self.offered(),
            ratio,
            locked,
        };
        if clamp == 0 {
            w.clamp = w.unmeasured_clamp(advmss(), self.shift);
        }
        if ssthresh == 0 {
            w.ssthresh = w.initial_window(initial_mss()).min(w.clamp);
        }
        w
    }

    /// Whether data has set the receive window's state (its clamp and `rcv_ssthresh`), so
    /// that [`rwnd`](Self::rwnd) builds it from stored values and storing it back unchanged
    /// would change nothing.
    pub(super) fn window_settled(&self) -> bool {
        self.data
            .as_ref()
            .is_some_and(|d| d.clamp != 0 && d.ssthresh != 0)
    }

    /// Keeps what [`rwnd`](Self::rwnd)'s state became (the ratio and clamp once data has
    /// arrived; the buffer grows, never shrinks here).
    pub(super) fn store_rwnd(&mut self, w: &RecvWindow) {
        if let Some(d) = &mut self.data {
            d.ratio = w.ratio;
            d.clamp = w.clamp;
            d.ssthresh = w.ssthresh;
        }
        if self.buf.limit() < w.rcvbuf as usize {
            self.buf.set_limit(w.rcvbuf as usize);
        }
    }
}

impl super::Connection {
    /// The payload we announced room for per segment (Linux `advmss`): our MSS less the
    /// timestamp option when timestamps are on.
    pub(super) fn advmss(&self) -> u32 {
        self.rcv.mss - if self.opts.ts().is_some() { 12 } else { 0 }
    }

    /// The receive-window state (`tcp::rwnd`) as it stands.
    pub(super) fn rwnd(&self) -> RecvWindow {
        self.rcv.rwnd(
            self.cfg.recv_buffer_locked,
            || self.advmss(),
            || self.initial_window_mss(),
        )
    }

    /// [`rwnd`](Self::rwnd)'s clamp: the stored one once data has set it, without building
    /// the rest of the window's state (a read asks for it every time).
    #[inline]
    pub(super) fn rwnd_clamp(&self) -> u32 {
        match self.rcv.data.as_deref() {
            Some(d) if d.clamp != 0 => d.clamp,
            _ => self.rwnd().clamp,
        }
    }

    /// The segment size our initial window is rounded to (Linux `tcp_select_initial_window`'s
    /// `mss`): our MSS, less the timestamp option on a passive open that negotiated it.
    pub(super) fn initial_window_mss(&self) -> u32 {
        if self.opts.peer_syn.is_some() {
            crate::tcp::handshake::passive_rounding_mss(
                &self.cfg,
                self.rcv.mss,
                self.opts.ts().is_some(),
            )
        } else {
            self.rcv.mss
        }
    }

    /// The window the buffer would offer now, counted from RCV.NXT, before the rule that
    /// the right edge does not move left (Linux `__tcp_select_window`).
    pub(super) fn window_now(&self) -> u32 {
        self.rwnd()
            .select(self.rcv.held(), self.rcv.seg_est, self.rcv.shift)
    }
}
