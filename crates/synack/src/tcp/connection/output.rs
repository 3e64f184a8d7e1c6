//! Building segments: what to send next (RFC 9293 §3.8.6 sender rules, Nagle, SWS avoidance,
//! congestion window, persist and keepalive probes) and writing it into the caller's buffer.

use super::timers::Timer;
use super::{Connection, Event, RetransmitCause, State};
use crate::tcp::congestion::{CongestionControl, Pacing};
use crate::tcp::counters::Counters;
use crate::tcp::handshake::{SynFields, syn_options, write_plain_syn};
use crate::tcp::rate::TxState;
use crate::tcp::scoreboard::{self, Sent};
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::checksum::Checksum;
use crate::wire::tcp::{
    Flags, HEADER_LEN, Options, Packet, PlainHeader, Repr, SackBlocks, Timestamps,
};

/// Room the caller's buffer needs beyond the payload: the largest TCP header.
pub const MAX_HEADER: usize = crate::wire::tcp::MAX_HEADER_LEN;

/// What one segment carries from the send buffer.
///
/// Invariant: a plan without `retransmit` (new data or a first FIN, including a loss
/// probe's and a window probe's new segment) starts at SND.NXT = SND.MAX. Everything that
/// rewinds SND.NXT (an RTO's walk, a PMTU drop, F-RTO, a fast resend beyond SND.NXT) plans
/// resends until SND.NXT is back at SND.MAX; a window probe that resends is a `Timeout`
/// resend; a Fast Open SYN's data is not a `Plan` for `send_plan`. `record_new_send`
/// asserts it (debug builds) and sets SND.MAX to the new end.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seq: SeqNum,
    flags: Flags,
    /// Offset into the send buffer and length of the payload.
    data_off: usize,
    len: usize,
    /// A resend and why; `None`: new data at SND.NXT = SND.MAX (see above).
    retransmit: Option<RetransmitCause>,
    /// The segment ends a buffer the application's writes marked for PSH (tcp::push); the
    /// scoreboard keeps this, not the PSH a burst forces, for a resend.
    psh_mark: bool,
    /// New data, or a resend after a timeout: segments of the current burst (one TSO packet)
    /// left including this one, and its size.
    burst: (u16, u16),
}

impl Connection {
    /// Writes the next segment this connection wants to send into `buf` (TCP header and
    /// payload, checksum filled in for the connection's addresses) and returns its length.
    /// A buffer of the segment's header and one MSS carries a full segment ([`MAX_HEADER`]
    /// plus one MSS always does); a smaller buffer gets smaller segments.
    /// Call repeatedly until it returns `None`.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        ctr: &mut Counters,
    ) -> Option<usize> {
        // A listener's SYN-ACK is the request's, not the child's (Linux sends it from the
        // request socket): it is not among the connection's segments out.
        let listener_synack = self.passive
            && self.state == State::SynReceived
            && self.snd.nxt == self.snd.iss
            && self.pending_rst.is_none();
        let n = self.poll_segment(now, buf, ctr);
        if n.is_some() && !listener_synack {
            self.snd.segs_out = self.snd.segs_out.wrapping_add(1);
        }
        n
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) may have a segment to send, or
    /// something to settle when it finds none (the persist timer, a one-time push): false
    /// only when polling would return `None` and change nothing that matters, so a stack
    /// skips the poll of a queued connection when this says no (after its last segment
    /// went, after a segment or a read that owes nothing). Cheap and conservative: a state
    /// outside the synchronized ones, a RST, an ACK owed, a probe or keepalive due, data, a
    /// FIN or a resend waiting, pacing, the persist timer or its backoff all say true.
    pub(crate) fn wants_poll(&self) -> bool {
        // What `plan_data`'s first test answers without the windows. Asked early, after the
        // owed ACK and the handshake: these are the usual reasons to poll (a segment arrived
        // that wants an ACK, a write queued data), so most polls that go ahead stop there.
        let data = |tx: &super::sender::Transmit| {
            self.snd.unsent_len() != 0
                || self.snd.nxt != self.snd.max
                || tx.pacing_wait
                || (self.snd.fin_queued && self.snd.fin_seq.is_none())
                || self.snd.sb.next_retransmit(self.snd.una).is_some()
        };
        self.rcv.ack_now
            || !self.state.is_synchronized()
            || self.snd.tx.as_deref().is_some_and(data)
            || self.pending_rst.is_some()
            || self.keepalive_due
            || self.snd.probe_now
            || self.snd.probe_due
            || self.snd.push_once
            || self.snd.persist_backoff != 0
            || self.snd.probes_since.get().is_some()
            || self.timers.is_armed(Timer::Persist)
    }

    /// One segment for [`poll_transmit`](Self::poll_transmit).
    fn poll_segment(&mut self, now: Instant, buf: &mut [u8], ctr: &mut Counters) -> Option<usize> {
        if let Some(rst) = self.pending_rst.take() {
            ctr.out_rsts += 1;
            ctr.out_segs += 1;
            let flags = if rst.ack.is_some() {
                Flags::RST | Flags::ACK
            } else {
                Flags::RST
            };
            let ack = rst.ack.unwrap_or(SeqNum(0));
            return self.write_control(now, buf, rst.seq, ack, flags, rst.active);
        }
        match self.state {
            State::Closed | State::Listen => None,
            // RFC 7413 §4.2.2: a Fast Open child sends data once its SYN-ACK is out.
            State::SynReceived if self.fast_open_pending() && self.snd.nxt != self.snd.iss => {
                self.poll_synchronized(now, buf, ctr)
            }
            State::SynSent | State::SynReceived => self.poll_handshake(now, buf, ctr),
            _ => self.poll_synchronized(now, buf, ctr),
        }
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), sent when SND.NXT is back at ISS: first
    /// transmission or retransmission after a timeout.
    fn poll_handshake(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        ctr: &mut Counters,
    ) -> Option<usize> {
        if self.snd.nxt != self.snd.iss {
            return self.poll_ack_only(now, buf, ctr);
        }
        let synack = self.state == State::SynReceived;
        let flags = if synack {
            Flags::SYN | Flags::ACK
        } else {
            Flags::SYN
        };
        let retransmit = self.snd.max != self.snd.iss && !self.snd.simopen_synack;
        self.snd.simopen_synack = false;
        if retransmit {
            ctr.retrans_segs += 1;
            // Karn (RFC 6298 §3): the ACK of a SYN sent twice gives no sample.
            self.snd.sampler.invalidate();
            self.on_handshake_retransmitted();
            self.push_event(Event::Retransmit {
                seq: self.snd.iss,
                len: 1,
                cause: RetransmitCause::Timeout,
            });
        } else {
            ctr.out_segs += 1;
            self.snd.sampler.start(self.snd.iss + 1u32, now);
        }
        // RFC 7413 §4.2.1: a Fast Open client's first SYN carries its option and data.
        let fast_open = if synack {
            None
        } else {
            self.fast_open_first_syn()
        };
        let syn_data = fast_open.map_or(0, |(_, n)| n);
        let plan = Plan {
            seq: self.snd.iss,
            flags,
            data_off: 0,
            len: syn_data as usize,
            retransmit: None,
            psh_mark: flags.contains(Flags::PSH),
            burst: (0, 0),
        };
        let n = self.write_segment(now, buf, plan);
        self.fast_open_syn_written();
        let n = n?;
        self.snd.nxt = self.snd.iss + 1u32 + syn_data;
        self.snd.max = self.snd.max.max(self.snd.nxt);
        self.arm_retransmit(now);
        Some(n)
    }

    fn poll_synchronized(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        ctr: &mut Counters,
    ) -> Option<usize> {
        let room = buf.len().saturating_sub(self.data_header_len());
        if room == 0 {
            return None;
        }
        if self.state != State::TimeWait {
            if self.output_predicted() {
                let sent = if self.snd.fin_queued {
                    self.send_predicted::<true>(now, buf, room, ctr)
                } else {
                    self.send_predicted::<false>(now, buf, room, ctr)
                };
                if let Some(n) = sent {
                    return n;
                }
            } else {
                if let Some(tx) = self.snd.tx.as_deref_mut() {
                    tx.pacing_wait = false;
                }
                let mut plan = self.plan_data(now, room);
                if plan.is_none() && self.frto_new_data_stuck() {
                    plan = self.plan_data(now, room);
                }
                if let Some(plan) = plan {
                    if !self.paced_later(now, &plan) {
                        return self.send_plan(now, buf, plan, ctr);
                    }
                    // Its departure time has not come: `poll_timeout` says when it has.
                    self.snd.transmit().pacing_wait = true;
                }
            }
            if self.snd.probe_now {
                self.snd.probe_now = false;
                if let Some(n) = self.send_window_probe(now, buf, ctr) {
                    return Some(n);
                }
            }
            if self.keepalive_due {
                self.keepalive_due = false;
                // RFC 1122 §4.2.3.6: a probe with SEG.SEQ = SND.NXT-1 and no data elicits an ACK.
                let seq = self.snd.una - 1u32;
                ctr.out_segs += 1;
                return self.write_control(now, buf, seq, self.rcv.nxt, Flags::ACK, true);
            }
            self.update_persist(now);
        }
        self.poll_ack_only(now, buf, ctr)
    }

    /// Output prediction, the sender's counterpart of header prediction: the next segment
    /// of a synchronized connection that may still send (ESTABLISHED, CLOSE-WAIT, or
    /// FIN-WAIT-1 and LAST-ACK before their FIN went) can only be new data, its FIN, or
    /// nothing, and is written with the plain header. No recovery state (no episode, F-RTO
    /// or PRR), nothing held out of order (no SACK blocks, the data MSS is the send MSS), no
    /// urgent pointer, no loss probe due or out, nothing to resend (SND.NXT = SND.MAX and no
    /// segment marked lost), no pacing, and data or a first FIN waiting. Then `plan_data`
    /// would pass all its tests before the new-data rules, and `send_plan`/`write_segment`
    /// all their resend, probe, pacing, SYN and option branches:
    /// [`send_predicted`](Self::send_predicted) makes the same decisions and records the
    /// same state without them.
    #[inline]
    fn output_predicted(&self) -> bool {
        matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait1 | State::LastAck
        ) && self.snd.nxt == self.snd.max
            && (if self.snd.fin_queued {
                self.snd.fin_seq.is_none()
            } else {
                self.snd.unsent_len() != 0
            })
            && !self.snd.probe_due
            && !self.snd.probe_out
            && self.snd.up.is_none()
            && self.rcv.ooo.is_none()
            && self.recovery.is_none()
            && self.snd.tx.is_some()
            && !self.cfg.pacing
            && self.snd.sb.next_retransmit(self.snd.una).is_none()
            && !self.cc.wants_pacing()
            && plain_header_on()
            && fast_output_on()
    }

    /// Data waits with nothing in flight: sending resumes after the idle time since
    /// `last_send`. RFC 5681 §4.1: restart the window after an idle period of one RTO (Linux
    /// `tcp_slow_start_after_idle_check`), and tell the controller (CA_EVENT_TX_START); one
    /// that reads only the time (CUBIC, NewReno) gets no `Flight` built. The idle clock
    /// restarts here, so a plan that sends nothing does not restart the window twice. Both
    /// `plan_data` and `send_predicted` start a send this way.
    #[inline(always)]
    fn tx_start(&mut self, now: Instant, last_send: Instant) {
        let idle = now - last_send;
        let rto = self.rto();
        if self.cfg.slow_start_after_idle && idle > rto {
            self.cc.on_idle_restart(now, idle, rto);
        }
        if !self.cc.on_tx_start_at(now, idle) {
            let flight = self.flight(now);
            self.cc.on_tx_start(&flight, idle);
        }
        self.snd.transmit().last_send = now;
    }

    /// New data under [`output_predicted`](Self::output_predicted): the rules both paths
    /// share ([`plan_new_data`](Self::plan_new_data), [`write_plain`](Self::write_plain),
    /// [`record_new_send`](Self::record_new_send)) without the general path's resend, probe,
    /// pacing, SYN and option branches around them. `None`: no segment of data now (the same
    /// state changes as `plan_data`'s `None`), the caller goes on to the probes, the persist
    /// timer and the pure ACK; `Some(n)`: `send_plan`'s answer. `FIN`: the FIN is queued (and
    /// not sent yet); an instance of its own, so that the data-only one carries none of the
    /// FIN's tests.
    #[inline(never)]
    fn send_predicted<const FIN: bool>(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        room: usize,
        ctr: &mut Counters,
    ) -> Option<Option<usize>> {
        let mss_now = self.snd.mss as usize;
        // What `output_predicted` leaves out of the general path's tests: no F-RTO new data
        // (no recovery state), no pacing, no SACK blocks taken from the MSS.
        debug_assert!(!self.frto_sending_new(), "predicted under F-RTO");
        debug_assert!(!self.pacing(), "predicted while pacing");
        debug_assert_eq!(
            self.data_mss(),
            mss_now.max(1),
            "data MSS is not the send MSS"
        );
        // `output_predicted`: a FIN queued is one not yet sent.
        let (plan, cwnd_segs) = self.plan_new_data::<true>(now, mss_now.max(1).min(room), FIN)?;

        // `write_segment`, plain header: timestamps or nothing, no SACK blocks, no urgent
        // pointer; ECE/CWR as new data takes them (RFC 3168 §6.1.2, §6.1.5).
        let timestamps = self.opts.ts().map(|ts| Timestamps {
            tsval: self.ts_now(now),
            tsecr: ts.recent,
        });
        let window = self.window_to_advertise(false);
        let (ecn_flags, _) = self.ecn.on_send(plan.len > 0);
        let h = PlainHeader {
            src_port: self.local_port,
            dst_port: self.remote_port,
            seq: plan.seq,
            ack: self.rcv.nxt,
            flags: plan.flags | ecn_flags,
            window,
            timestamps,
        };
        debug_assert_eq!(
            h.header_len(),
            self.data_header_len(),
            "plain header is not the data header"
        );
        debug_assert!(
            h.header_len() + plan.len <= buf.len(),
            "sized against data_header_len"
        );
        let Some(hl) = self.write_plain(buf, &h, plan.data_off, plan.len) else {
            return Some(None);
        };
        count_fast_output(plan.flags.fin(), plan.len == 0);
        self.note_ack_sent();

        // `send_plan` for new data and a first FIN.
        self.record_new_send(now, &plan, mss_now.max(1), ctr);
        self.validate_cwnd(self.pipe_segs() >= cwnd_segs);
        self.arm_after_predicted_send(now);
        Some(Some(hl + plan.len))
    }

    /// The sequence number of a segment that carries no data (a pure ACK, an active RST): the
    /// highest we sent, though a timeout has moved SND.NXT back to resend from SND.UNA (Linux
    /// keeps snd_nxt there and resends from its queue), unless that lies beyond the peer's
    /// window by a scaling unit or more; then the window's right edge (Linux's
    /// tcp_acceptable_seq).
    pub(super) fn acceptable_seq(&self) -> SeqNum {
        let wnd_end = self.snd.una + self.snd.wnd;
        if self.snd.max <= wnd_end
            || (self.snd.shift > 0 && self.snd.max - wnd_end < (1u32 << self.rcv.shift))
        {
            self.snd.max
        } else {
            wnd_end
        }
    }

    fn poll_ack_only(&mut self, now: Instant, buf: &mut [u8], ctr: &mut Counters) -> Option<usize> {
        if !self.rcv.ack_now {
            return None;
        }
        ctr.out_segs += 1;
        let seq = self.acceptable_seq();
        let plan = Plan {
            seq,
            flags: Flags::ACK,
            data_off: 0,
            len: 0,
            retransmit: None,
            psh_mark: false,
            burst: (0, 0),
        };
        self.write_segment(now, buf, plan)
    }

    /// Decides whether a data (or FIN) segment goes out now, and which.
    fn plan_data(&mut self, now: Instant, room: usize) -> Option<Plan> {
        if self.snd.tx.is_none() {
            // Nothing was ever queued, not even the FIN: nothing to send or resend.
            self.snd.push_once = false;
            return None;
        }
        // Everything queued is out, no FIN is owed, nothing waits for a resend or a probe:
        // the poll after the last segment of a burst, answered without the windows (what
        // the full rules below decide in this case too).
        if self.snd.nxt == self.snd.max
            && self.snd.unsent_len() == 0
            && !self.snd.probe_due
            && !(self.snd.fin_queued && self.snd.fin_seq.is_none())
            && self.snd.sb.next_retransmit(self.snd.una).is_none()
        {
            let max = self.snd.max;
            self.snd.transmit().push_marks.on_sent(max);
            self.snd.push_once = false;
            return None;
        }
        let mss = self.data_mss().min(room);
        let base = self.snd.buf_seq();
        let fin_pos = base + self.snd.buf.len();

        // RFC 6675 §4 NextSeg rule 1 / RFC 8985: lost segments go first, as the congestion
        // window (PRR in recovery) allows. Those above SND.NXT wait for the resend after a
        // timeout, which walks forward from SND.UNA; F-RTO's new data (RFC 5682 §3.1 step
        // 2b) goes before them.
        // (The scoreboard's test comes first: it is one comparison when nothing waits.)
        if let Some((_, lost)) = self.snd.sb.next_retransmit(self.snd.una)
            && lost.start < self.snd.nxt
            && self.pipe_segs() < self.cwnd_segs()
            && !self.frto_sending_new()
        {
            if let Some(mut plan) =
                self.plan_resend(lost, mss, base, fin_pos, RetransmitCause::Fast)
            {
                if plan.len > 0 {
                    plan.burst = self.fast_resend_burst(now, plan.seq);
                }
                return Some(plan);
            }
        }

        if self.snd.probe_due {
            self.snd.probe_due = false;
            if let Some(plan) = self.plan_probe(now, mss, base, fin_pos) {
                self.snd.probe_out = true;
                return Some(plan);
            }
        }

        // After a timeout the resend walks forward from SND.UNA (SND.NXT went back there),
        // one scoreboard entry at a time, skipping what the peer SACKed.
        while self.snd.nxt < self.snd.max
            && self
                .snd
                .sb
                .containing(self.snd.nxt)
                .is_some_and(|s| s.has(scoreboard::SACKED))
        {
            self.snd.nxt = self
                .snd
                .sb
                .containing(self.snd.nxt)
                .map_or(self.snd.max, |s| s.end);
        }
        if self.snd.nxt < self.snd.max {
            if self.pipe_segs() >= self.cwnd_segs() {
                // New data waits behind the resend, held back by the window: Linux's
                // `tcp_write_xmit` (a write's push, an ACK's `tcp_data_snd_check`) finds no
                // cwnd quota and records the window as used (`tcp_cwnd_validate`).
                if fin_pos > self.snd.max {
                    self.validate_cwnd(true);
                }
                self.snd.push_once = false;
                return None;
            }
            let entry = self.snd.sb.containing(self.snd.nxt).copied().map(|s| Sent {
                start: self.snd.nxt,
                ..s
            });
            let entry = entry.unwrap_or(Sent {
                start: self.snd.nxt,
                end: self.snd.max,
                xmit: now,
                marks: 0,
                tx: TxState::NONE,
            });
            let mut plan = self.plan_resend(entry, mss, base, fin_pos, RetransmitCause::Timeout);
            match &mut plan {
                None => self.snd.push_once = false,
                Some(p) if p.len > 0 => {
                    // Linux resends a packet as first sent in TSO packets of as many segments
                    // as the congestion window and the TSO size allow (`tcp_retransmit_skb`
                    // with `segs`), and a packet of several segments carries PSH.
                    p.burst = self.resend_burst(now, p.seq);
                    if p.burst.0 == 1 && p.burst.1 >= 2 {
                        p.flags |= Flags::PSH;
                    }
                }
                Some(_) => {}
            }
            return plan;
        }

        // Everything sent is acknowledged or out (SND.NXT = SND.MAX): new data, or the FIN.
        let fin_pending = self.snd.fin_queued && self.snd.fin_seq.is_none();
        self.plan_new_data::<false>(now, mss, fin_pending)
            .map(|(plan, _)| plan)
    }

    /// New data (or the first FIN) at SND.NXT = SND.MAX, the rules both send paths share
    /// (`plan_data` after its resends and probes, `send_predicted` under output prediction):
    /// the idle restart (RFC 5681 §4.1), the two windows, a MSG_EOR record's end, SWS
    /// avoidance (RFC 9293 §3.8.6.2.1), Nagle (RFC 1122 §4.2.3.4) and cork, then the burst
    /// (one TSO packet) and PSH where Linux puts it (tcp::push). `mss`: the most data a
    /// segment carries (the caller's room included); `fin_pending`: a FIN is queued and not
    /// sent. `PREDICTED`: under output prediction, which rules out F-RTO's new data (Nagle
    /// and cork off). Answers the plan and the congestion window in segments (asked once;
    /// nothing here changes it). `None` without the transmit state (`snd.tx`): nothing was
    /// queued.
    #[inline(always)]
    fn plan_new_data<const PREDICTED: bool>(
        &mut self,
        now: Instant,
        mss: usize,
        fin_pending: bool,
    ) -> Option<(Plan, u32)> {
        let nxt = self.snd.nxt;
        let base = self.snd.buf_seq();
        let queued = self.snd.buf.len();
        let fin_pos = base + queued;
        let off = (nxt - base) as usize;
        let tx = self.snd.tx.as_deref_mut()?;
        if PREDICTED {
            // `poll_synchronized` clears it before the general path.
            tx.pacing_wait = false;
        }
        // SND.NXT = SND.MAX: every mark the data sent so far ended is done with.
        tx.push_marks.on_sent(nxt);
        // A segment stops at the end of a MSG_EOR record.
        let record_end = tx
            .push_marks
            .record_end_after(nxt)
            .map(|e| (e - nxt) as usize);
        let (sml, last_send, bytes_acked) = (tx.sml, tx.last_send, tx.bytes_acked);
        // Zero only with the FIN owed. The general path comes here after a FIN was sent too
        // (a loss probe due that sent nothing); the predicted one only before it.
        let avail = if PREDICTED {
            queued - off
        } else {
            queued.saturating_sub(off)
        };
        if self.snd.una == nxt && avail > 0 && bytes_acked > 0 {
            self.tx_start(now, last_send);
        }
        let wnd_end = self.snd.una + self.snd.wnd;
        let wnd_avail = if wnd_end > nxt {
            (wnd_end - nxt) as usize
        } else {
            0
        };
        // Linux `tcp_cwnd_test`: the window counts segments, whatever their size.
        let cwnd_segs = self.cwnd_segs();
        let cwnd_free = cwnd_segs.saturating_sub(self.pipe_segs()) as usize;
        let cwnd_avail = cwnd_free * self.snd.mss as usize;
        let len = avail
            .min(mss)
            .min(wnd_avail)
            .min(cwnd_avail)
            .min(record_end.unwrap_or(usize::MAX));
        let fin = fin_pending && len == avail && (len > 0 || wnd_avail > 0);
        if len == 0 && !fin {
            if avail > 0 && cwnd_avail == 0 {
                self.validate_cwnd(true);
            }
            self.snd.push_once = false;
            return None;
        }
        let push = self.snd.push_once;
        let corked = (self.opts.cork || self.snd.more) && !push;
        let at_record_end = record_end == Some(len);
        // The tail of the queue may go out short: not corked, and Nagle allows it.
        // F-RTO's new data (step 2b) goes with Nagle and cork off (Linux `tcp_xmit_recovery`
        // pushes it with TCP_NAGLE_OFF).
        let tail_may_go = (!corked && (self.opts.nodelay || push || sml <= self.snd.una))
            || (!PREDICTED && self.frto_sending_new());
        // Sender-side rules (RFC 9293 §3.8.6.2.1 SWS avoidance, RFC 1122 §4.2.3.4 Nagle):
        // send a full segment; or everything queued when nothing is unacknowledged (or Nagle
        // is off) and we are not corked; or at least half the largest window the peer
        // offered; the FIN goes without waiting.
        // A record that ends before the queued data does can never grow: it goes now (Linux
        // applies Nagle and cork only to the tail of the queue).
        let send = fin
            || len == mss
            || (at_record_end && len < avail)
            || (len == avail && tail_may_go)
            || (!corked && self.snd.max_wnd > 0 && len >= (self.snd.max_wnd as usize) / 2);
        if !send {
            self.snd.push_once = false;
            return None;
        }
        // PSH where Linux puts it (tcp::push): where a buffer marked with it ends, and on the
        // last segment of each burst of more than one.
        let tx = self.snd.tx.as_deref_mut()?;
        let burst = if len == 0 {
            (0, 0)
        } else if tx.burst_left > 0 && tx.burst_at == now {
            (tx.burst_left, tx.burst_size)
        } else {
            let limit = avail.min(wnd_avail).min(record_end.unwrap_or(usize::MAX));
            // A short last segment belongs to the burst if the rules above would send it.
            let partial = limit % mss != 0
                && ((limit == avail && tail_may_go)
                    || (record_end == Some(limit) && limit < avail));
            let segs = (limit / mss + partial as usize) as u32;
            // A new packet: the buffer it starts grows first (tcp::push, `tcp_grow_skb`).
            // The quota (from the windows and the pacing rate) is worked out only when it
            // matters: a burst of one segment whose buffer cannot grow (each write of a
            // request/response exchange) is one segment whatever the quota.
            let grows = tx.push_marks.may_grow(nxt, fin_pos);
            let quota = if segs > 1 || grows {
                self.burst_quota()
            } else {
                1
            };
            let snd_mss = self.snd.mss;
            let tx = self.snd.tx.as_deref_mut()?;
            if grows {
                tx.push_marks
                    .grow(nxt, quota.saturating_mul(snd_mss), fin_pos);
            }
            let n = quota.min(segs).clamp(1, u16::MAX as u32) as u16;
            (n, n)
        };
        let tx = self.snd.tx.as_deref_mut()?;
        let psh_mark = len > 0 && tx.push_marks.psh_within(nxt, nxt + len as u32);
        let mut flags = Flags::ACK;
        if psh_mark || (burst.0 == 1 && burst.1 >= 2) {
            flags |= Flags::PSH;
        }
        if fin {
            flags |= Flags::FIN;
        }
        let plan = Plan {
            seq: nxt,
            flags,
            data_off: off,
            len,
            retransmit: None,
            psh_mark,
            burst,
        };
        Some((plan, cwnd_segs))
    }

    /// The most data a segment carries now: the send MSS less the SACK blocks it would
    /// carry (Linux `tcp_current_mss` takes options beyond the usual ones off the MSS, RFC
    /// 6691): two NOPs and the option's 2 bytes, then 8 a block.
    /// The TCP header a segment other than a SYN takes now: the fixed header, timestamps if
    /// negotiated, and the SACK blocks owed ([`write_segment`](Self::write_segment)'s
    /// options). A payload is sized against it, as Linux sizes one by `tcp_current_mss`, so
    /// that a caller's buffer of one header and one MSS carries a full segment.
    #[inline]
    fn data_header_len(&self) -> usize {
        let timestamps = self.opts.ts().map(|_| Timestamps { tsval: 0, tsecr: 0 });
        if self.rcv.ooo.is_none() {
            // No SACK blocks: NOP, NOP, timestamps, or nothing.
            return HEADER_LEN + if timestamps.is_some() { 12 } else { 0 };
        }
        let options = Options {
            timestamps,
            sack: self.sack_blocks(),
            ..Options::default()
        };
        HEADER_LEN + options.wire_len()
    }

    fn data_mss(&self) -> usize {
        let blocks = self.sack_option().len();
        let sack_len = if blocks > 0 { 4 + 8 * blocks } else { 0 };
        (self.snd.mss as usize).saturating_sub(sack_len).max(1)
    }

    /// How many segments the next burst of new data may hold, as Linux sizes a TSO packet:
    /// at most half the congestion window, so that two are in flight (`tcp_cwnd_test`), no
    /// more than the window has room for, and no more than [`tso_segs`](Self::tso_segs).
    fn burst_quota(&self) -> u32 {
        let cwnd = self.cwnd_segs();
        let free = cwnd.saturating_sub(self.pipe_segs()).max(1);
        let half = (cwnd / 2).max(1);
        half.min(free).min(self.tso_segs())
    }

    /// The resend burst segment `seq` belongs to after a timeout or a path MTU drop:
    /// segments left in it including this one, and its size. A new one holds what is left of
    /// the packet `seq` was first sent in, at most the free congestion window and
    /// [`tso_segs`](Self::tso_segs) (Linux `tcp_xmit_retransmit_queue`).
    fn resend_burst(&self, now: Instant, seq: SeqNum) -> (u16, u16) {
        if let Some(tx) = self.snd.tx.as_deref()
            && tx.burst_left > 0
            && tx.burst_at == now
        {
            return (tx.burst_left, tx.burst_size);
        }
        self.new_resend_burst(self.snd.sb.packet_from(seq).map_or(1, |(_, n)| n))
    }

    /// A new resend burst of at most `segs` segments: no more than the free congestion
    /// window and [`tso_segs`](Self::tso_segs) allow (Linux `tcp_xmit_retransmit_queue`).
    fn new_resend_burst(&self, segs: u32) -> (u16, u16) {
        let free = self.cwnd_segs().saturating_sub(self.pipe_segs()).max(1);
        let n = free
            .min(self.tso_segs())
            .min(segs)
            .clamp(1, u16::MAX as u32) as u16;
        (n, n)
    }

    /// The burst a fast retransmission of `seq` belongs to: segments left in it including
    /// this one, and its size. Linux resends what SACK or RACK marked lost skb by skb
    /// (`tcp_xmit_retransmit_queue`), each as one TSO packet of up to the free congestion
    /// window and [`tso_segs`](Self::tso_segs) segments (`tcp_retransmit_skb` with `segs`),
    /// paced as one; an skb is the lost run of a packet as first sent up to a SACKed part
    /// (`Scoreboard::lost_run_from`). A burst goes on while its next segment follows the one
    /// just resent at this instant. Unlike a resend after a timeout, the burst adds no PSH
    /// (a segment keeps the one it first carried): the lost head of a packet whose tail was
    /// SACKed lost its PSH when SACK split the skb (`tcp_fragment`); Linux-verified by
    /// `rtx-size-recovery-two-segments-together.pkt`.
    fn fast_resend_burst(&self, now: Instant, seq: SeqNum) -> (u16, u16) {
        if let Some(tx) = self.snd.tx.as_deref()
            && tx.burst_left > 0
            && tx.burst_at == now
            && self.snd.sb.containing(seq - 1u32).is_some_and(|p| {
                p.end == seq
                    && p.has(scoreboard::RETRANS)
                    && !p.has(scoreboard::SKB_END)
                    && p.xmit == now
            })
        {
            return (tx.burst_left, tx.burst_size);
        }
        self.new_resend_burst(self.snd.sb.lost_run_from(seq))
    }

    /// Whether this connection paces its transmissions: the controller asks for it (BBR), or
    /// [`Config::pacing`](crate::tcp::Config::pacing) paces every flow, as Linux's `fq`.
    fn pacing(&self) -> bool {
        self.cc.wants_pacing() || self.cfg.pacing
    }

    /// The pacing rate now, bytes per second (Linux `sk_pacing_rate`).
    fn pacing_rate(&self) -> Option<u64> {
        self.cc.pacing_rate(Pacing {
            srtt: self.rtt.srtt().filter(|d| !d.is_zero()),
            packets_out: self.snd.sb.len() as u32,
            ss_ratio: self.cfg.pacing_ss_ratio,
            ca_ratio: self.cfg.pacing_ca_ratio,
        })
    }

    /// Whether `plan` must wait for its departure time (Linux `tcp_pacing_check`): a paced
    /// connection sends a burst (one TSO packet's worth of segments, sent at one instant) no
    /// earlier than the departure time the previous one set. Tail loss probes and the first
    /// resend after a timeout go at once (Linux sends those outside the paced path).
    fn paced_later(&self, now: Instant, plan: &Plan) -> bool {
        if !self.pacing() {
            return false;
        }
        let Some(tx) = self.snd.tx.as_deref() else {
            return false;
        };
        let continues_burst = plan.burst.0 < plan.burst.1;
        let exempt = match plan.retransmit {
            Some(RetransmitCause::Probe) => true,
            Some(RetransmitCause::Timeout) => {
                (self.snd.retries > 0 && plan.seq == self.snd.una) || continues_burst
            }
            _ => continues_burst,
        } || self.snd.probe_out;
        !exempt && tx.next_departure > now
    }

    /// After a data segment of `len` bytes went out at `now` (Linux
    /// `tcp_update_skb_after_send`): the next departure is its length at the pacing rate
    /// later. A burst that left late is forgiven up to half its time, so that scheduling jitter
    /// does not cost throughput; the first ten segments are not paced.
    fn pace_sent(&mut self, now: Instant, len: usize, first_of_burst: bool) {
        if !self.pacing() || len == 0 {
            return;
        }
        let rate = self.pacing_rate().filter(|&r| r > 0 && r != u64::MAX);
        let tx = self.snd.transmit();
        if first_of_burst {
            let start = tx.next_departure.max(now);
            tx.pacing_credit = start - tx.next_departure;
            tx.next_departure = start;
        }
        let Some(rate) = rate.filter(|_| tx.data_segs_out >= 10) else {
            return;
        };
        let ns = (len as u128 * 1_000_000_000 / u128::from(rate)).min(u64::MAX as u128) as u64;
        let len_time = Duration::from_nanos(ns);
        let forgiven = (len_time / 2).min(tx.pacing_credit);
        tx.pacing_credit -= forgiven;
        tx.next_departure += len_time - forgiven;
    }

    /// About a millisecond at the pacing rate, in segments, at least `min_tso_segs`
    /// (Linux `tcp_tso_autosize`, with the controller's `tcp_update_pacing_rate`); a path
    /// under 512 µs of minimum RTT gets the 64 KiB GSO maximum on top. Linux also cuts what a
    /// write queues into buffers of this size, which decides where a long write is pushed
    /// (tcp::push).
    pub(super) fn tso_segs(&self) -> u32 {
        const GSO_MAX: u64 = crate::tcp::push::GSO_MAX_SIZE as u64;
        let rate = self.pacing_rate();
        let mut bytes = rate.map_or(GSO_MAX, |r| r >> 10);
        let r = self
            .rtt
            .min_rtt()
            .map_or(u64::MAX, |d| d.as_micros() as u64 >> 9);
        if r < 32 {
            bytes += GSO_MAX >> r;
        }
        let mss = self.snd.mss.max(1) as u64;
        ((bytes.min(GSO_MAX) / mss) as u32).max(self.min_tso_segs())
    }

    /// The fewest segments [`tso_segs`](Self::tso_segs) gives (Linux `tcp_min_tso_segs`, or
    /// the congestion controller's own).
    pub(super) fn min_tso_segs(&self) -> u32 {
        // At least one, as Linux's sysctl (its minimum is 1): a burst is a segment or more.
        self.cc
            .min_tso_segs()
            .unwrap_or(self.cfg.min_tso_segs)
            .max(1)
    }

    /// A resend of (the start of) scoreboard entry `s`: up to one MSS, with the FIN if it
    /// reaches ours and PSH if it reaches the end of a segment first sent with PSH. A fast
    /// retransmission ignores the peer's window (the data was inside it when first sent);
    /// the resend after a timeout stays within it, and waits for the persist timer when it
    /// is closed — except a lone FIN.
    fn plan_resend(
        &mut self,
        s: Sent,
        mss: usize,
        base: SeqNum,
        fin_pos: SeqNum,
        cause: RetransmitCause,
    ) -> Option<Plan> {
        // Small packets after this one join it up to one MSS (Linux
        // `tcp_retrans_try_collapse`), PSH included.
        let wnd_end = self.snd.una + self.snd.wnd;
        let s = if (s.len() as usize) < mss && wnd_end > s.start {
            let space = (mss as u32).min(wnd_end - s.start);
            match self.snd.sb.collapse(s.start, space, wnd_end) {
                Some(c) if c.start == s.start => c,
                _ => s,
            }
        } else {
            s
        };
        let fin_sent = self.snd.fin_seq.is_some() && self.snd.max == fin_pos + 1u32;
        let data_end = if fin_sent { s.end.min(fin_pos) } else { s.end };
        let mut len = ((data_end - s.start) as usize).min(mss);
        if cause == RetransmitCause::Timeout {
            let wnd_avail = if wnd_end > s.start {
                (wnd_end - s.start) as usize
            } else {
                0
            };
            // A closed window does not hold back the head segment: it goes in full and acts
            // as the zero-window probe (Linux `__tcp_retransmit_skb` takes one MSS at
            // SND.UNA when no window is left; RFC 9293 §3.8.6.1).
            if wnd_avail > 0 || s.start != self.snd.una {
                len = len.min(wnd_avail);
            }
        }
        let reaches_end = s.start + len == data_end;
        let fin = fin_sent && reaches_end && s.end == fin_pos + 1u32;
        if len == 0 && !fin {
            return None;
        }
        let flags = resend_flags(fin, len > 0 && reaches_end && s.has(scoreboard::PSH));
        Some(Plan {
            seq: s.start,
            flags,
            data_off: (s.start - base) as usize,
            len,
            retransmit: Some(cause),
            psh_mark: flags.contains(Flags::PSH),
            burst: (0, 0),
        })
    }

    /// RFC 8985 §7.3: the probe is one new segment if the window allows, else the last
    /// segment sent (with the FIN if it carried one), regardless of the congestion window.
    fn plan_probe(
        &mut self,
        now: Instant,
        mss: usize,
        base: SeqNum,
        fin_pos: SeqNum,
    ) -> Option<Plan> {
        let off = (self.snd.nxt - base) as usize;
        let unsent = self.snd.buf.len().saturating_sub(off);
        let wnd_end = self.snd.una + self.snd.wnd;
        let wnd_avail = if wnd_end > self.snd.nxt {
            (wnd_end - self.snd.nxt) as usize
        } else {
            0
        };
        let (nxt, max) = (self.snd.nxt, self.snd.max);
        let tx = self.snd.transmit();
        tx.tlp_high = Some(max);
        if unsent > 0 && wnd_avail > 0 && nxt == max {
            let record_end = tx
                .push_marks
                .record_end_after(nxt)
                .map(|e| (e - nxt) as usize);
            let len = unsent
                .min(mss)
                .min(wnd_avail)
                .min(record_end.unwrap_or(usize::MAX));
            let mut flags = Flags::ACK;
            if tx.push_marks.psh_within(nxt, nxt + len as u32) {
                flags |= Flags::PSH;
            }
            // The episode lasts until an ACK covers SND.NXT after the probe (Linux
            // `tlp_high_seq`), the new data included.
            tx.tlp_high = Some(nxt + len as u32);
            return Some(Plan {
                seq: self.snd.nxt,
                flags,
                data_off: off,
                len,
                retransmit: None,
                psh_mark: flags.contains(Flags::PSH),
                burst: (0, 0),
            });
        }
        // The last segment as it was sent, plus the FIN if it was sent (SND.MAX then counts
        // it). Linux `tcp_send_loss_probe` splits the last packet (skb) of `pcount` segments
        // at `(pcount - 1) * mss` when it is longer than that (with the MSS of now, which
        // SACK blocks in our ACKs may have cut since), and `__tcp_retransmit_skb` resends at
        // most one MSS from the piece's start: the last segment as sent while the MSS is
        // unchanged (a short one resent short, not topped up with the data before it); the
        // head of a longer piece, without PSH or FIN, when the MSS shrank.
        let fin = self.snd.fin_queued && self.snd.max == fin_pos + 1u32;
        let data_end = self.snd.max.min(fin_pos);
        let from = if data_end > self.snd.una {
            self.snd
                .sb
                .packet_of(data_end - 1u32)
                .map_or(self.snd.una, |(start, pcount)| {
                    let start = start.max(self.snd.una);
                    let cut = (pcount - 1).saturating_mul(mss as u32);
                    if pcount > 1 && data_end - start > cut {
                        start + cut
                    } else {
                        start
                    }
                })
        } else {
            self.snd.una
        };
        let mut len = ((data_end - from) as usize).min(mss);
        if fin && self.snd.fin_alone {
            len = 0;
        }
        let seq = if len == 0 { data_end } else { from };
        // Linux `__tcp_retransmit_skb`: nothing that starts beyond the peer's window goes
        // out, a zero window included (only SND.UNA does: then it is a window probe), and
        // what does is cut to the window. A refused probe leaves the retransmission timer at
        // the deadline of the oldest segment (`tcp_rearm_rto` while the probe is pending), as
        // if no probe had been scheduled.
        if len > 0 {
            if seq >= wnd_end && seq != self.snd.una {
                let at = self.head_rto_deadline().map_or(now, |at| at.max(now));
                self.timers.arm(Timer::Retransmit, at);
                return None;
            }
            if wnd_end > seq {
                len = len.min((wnd_end - seq) as usize);
            }
        }
        // A probe the window cut short of the data's end goes without the FIN (Linux's
        // `tcp_fragment` leaves FIN, like PSH, on the tail piece, which stays unsent): a FIN
        // before the end would end the peer's stream early.
        let reaches_end = seq + len as u32 == data_end;
        // PSH as the data's own mark, like `plan_resend`: Linux's probe splits the last MSS
        // unit off the skb (`tcp_fragment`, which leaves PSH on the tail piece) and resends it
        // with the flags the skb has, so it carries PSH when it reaches the end of a segment
        // first sent marked, whatever the last send call asked (MSG_MORE) since. A probe the
        // window cuts short of that end goes without (the head piece of a `tcp_fragment`).
        let flags = resend_flags(
            fin && reaches_end,
            len > 0
                && reaches_end
                && self
                    .snd
                    .sb
                    .containing(data_end - 1u32)
                    .is_some_and(|s| s.has(scoreboard::PSH)),
        );
        (len > 0 || fin).then_some(Plan {
            seq,
            flags,
            data_off: (seq - base) as usize,
            len,
            retransmit: Some(RetransmitCause::Probe),
            psh_mark: flags.contains(Flags::PSH),
            burst: (0, 0),
        })
    }

    fn send_plan(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        plan: Plan,
        ctr: &mut Counters,
    ) -> Option<usize> {
        let n = self.write_segment(now, buf, plan)?;
        if std::mem::take(&mut self.snd.probe_out) {
            // The probe went out: the retransmission timer restarts from it (RFC 8985 §7.3).
            ctr.loss_probes += 1;
            self.timers.stop(Timer::Retransmit);
        }
        match plan.retransmit {
            None => {
                let data_mss = self.data_mss();
                self.record_new_send(now, &plan, data_mss, ctr);
            }
            Some(cause) => self.record_resend(now, &plan, cause, ctr),
        }
        self.pace_sent(now, plan.len, plan.burst.0 == plan.burst.1);
        self.prr_on_sent();
        // Linux calls `tcp_cwnd_validate` from `tcp_write_xmit` only, after new data (a
        // loss probe's new segment included); a retransmission (`tcp_retransmit_skb`, the
        // timeout's, a fast one, a probe's) leaves the record of the window's use alone.
        if plan.retransmit.is_none() {
            self.validate_cwnd(self.pipe_segs() >= self.cwnd_segs());
        }
        self.arm_retransmit(now);
        self.cap_loss_probe_at_head_rto(now);
        Some(n)
    }

    /// What sending new data or a first FIN (`plan` written, not a resend) records: the FIN's
    /// place, the delivery state the data leaves with (Linux `tcp_rate_skb_sent`), the burst,
    /// the scoreboard entry and its packet boundary, the delayed-ACK clock (Linux
    /// `tcp_event_data_sent`), Minshall's last small segment against `data_mss` (Linux
    /// `tcp_minshall_update`), SND.NXT and SND.MAX, and TCP_INFO's counters. Both send paths
    /// record a new segment here.
    #[inline(always)]
    fn record_new_send(&mut self, now: Instant, plan: &Plan, data_mss: usize, ctr: &mut Counters) {
        let seg_len = plan.len as u32 + plan.flags.fin() as u32;
        let end = plan.seq + seg_len;
        if plan.flags.fin() {
            self.snd.fin_seq = Some(plan.seq + plan.len);
            self.snd.fin_alone = plan.len == 0;
        }
        // Every new segment starts at SND.NXT = SND.MAX: new data, a loss probe's, a window
        // probe's (each plans one only there).
        debug_assert!(
            plan.seq == self.snd.nxt && plan.seq == self.snd.max,
            "new data planned at {:?}, SND.NXT {:?}, SND.MAX {:?}",
            plan.seq,
            self.snd.nxt,
            self.snd.max
        );
        ctr.out_segs += 1;
        // Counted before it joins what is outstanding.
        let (out, delivered) = (self.snd.sb.outstanding().segs, self.snd.delivered);
        // Cannot fail: every plan of new data comes with the transmit state there.
        // `plan_new_data` answers `None` without it; the loss probe's new segment
        // (`plan_probe`) allocates it; a window probe's data (`send_window_probe`)
        // was queued by `write`, which allocates it, and it is given back only when the
        // connection goes (`give_transmit`) or a first write queued nothing.
        let tx = self.snd.tx.as_deref_mut().expect("no transmit state");
        if seg_len > 0 {
            let rate = tx.rate.on_send(now, out, delivered);
            self.snd.sb.on_send(plan.seq, end, now, plan.psh_mark, rate);
            if plan.burst.0 <= 1 {
                self.snd.sb.end_packet();
            }
        }
        if plan.burst.0 > 0 {
            tx.burst_left = plan.burst.0 - 1;
            tx.burst_size = plan.burst.1;
            tx.burst_at = now;
        }
        tx.last_send = now;
        if plan.len > 0 {
            if plan.len < data_mss {
                tx.sml = end;
            }
            tx.data_segs_out = tx.data_segs_out.wrapping_add(1);
            tx.bytes_out += plan.len as u64;
            if let Some(d) = &mut self.rcv.data {
                d.delack.on_data_sent(now);
            }
        }
        self.snd.nxt = end;
        self.snd.max = end;
    }

    /// What a resend (`plan` written, with its `cause`) records: the FIN's place, the
    /// scoreboard's resend with the delivery state it leaves with, the counters, the burst of
    /// a timeout's resend, SND.NXT (a fast resend beyond it and a timeout's walk move it, a
    /// probe does not) and TCP_INFO's counters.
    fn record_resend(
        &mut self,
        now: Instant,
        plan: &Plan,
        cause: RetransmitCause,
        ctr: &mut Counters,
    ) {
        let seg_len = plan.len as u32 + plan.flags.fin() as u32;
        let end = plan.seq + seg_len;
        if plan.flags.fin() {
            self.snd.fin_seq = Some(plan.seq + plan.len);
        }
        ctr.retrans_segs += 1;
        self.snd.sampler.invalidate();
        if seg_len > 0 {
            let (out, delivered) = (self.snd.sb.outstanding().segs, self.snd.delivered);
            let tx = self.snd.transmit().rate.on_send(now, out, delivered);
            self.snd.sb.on_retransmit(plan.seq, end, now, tx);
        }
        self.on_retransmitted(now, plan.len);
        if cause == RetransmitCause::Fast {
            ctr.fast_retrans += 1;
        }
        if plan.burst.0 > 0 {
            let tx = self.snd.transmit();
            tx.burst_left = plan.burst.0 - 1;
            tx.burst_size = plan.burst.1;
            tx.burst_at = now;
        }
        self.push_event(Event::Retransmit {
            seq: plan.seq,
            len: seg_len,
            cause,
        });
        let advance = match cause {
            RetransmitCause::Probe => false,
            RetransmitCause::Fast => end > self.snd.nxt,
            _ => true,
        };
        if advance {
            self.snd.nxt = self.snd.nxt.max(end);
        }
        self.snd.max = self.snd.max.max(end);
        let tx = self.snd.transmit();
        tx.last_send = now;
        if plan.len > 0 {
            tx.data_segs_out = tx.data_segs_out.wrapping_add(1);
            tx.bytes_out += plan.len as u64;
        }
    }

    /// Persist timer fired (see `update_persist`). A zero window gets a probe with no data
    /// (RFC 9293 §3.8.6.1 asks for a probe; Linux's form, which the peer answers with its
    /// window). A small non-zero window gets what fits, sent for real (the SWS override
    /// timeout).
    fn send_window_probe(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        ctr: &mut Counters,
    ) -> Option<usize> {
        if self.snd.nxt != self.snd.una {
            return None;
        }
        let base = self.snd.buf_seq();
        let off = (self.snd.nxt - base) as usize;
        let avail = self.snd.buf.len().saturating_sub(off);
        let fin_waits = self.snd.fin_queued && self.snd.fin_seq.is_none();
        if self.snd.wnd == 0 && (avail > 0 || fin_waits) {
            // A zero window: probe with SEG.SEQ = SND.UNA-1 and no data, as Linux does
            // (tcp_xmit_probe_skb). The old sequence number is acceptable to the peer, which
            // must answer with an ACK carrying its current window (§3.8.6.1, §3.10.7.4).
            ctr.window_probes += 1;
            ctr.out_segs += 1;
            let (seq, ack) = (self.snd.una - 1u32, self.rcv.nxt);
            let n = self.write_control(now, buf, seq, ack, Flags::ACK, true)?;
            self.update_persist(now);
            return Some(n);
        }
        if avail == 0 {
            return None;
        }
        let room = buf
            .len()
            .saturating_sub(self.data_header_len())
            .min(self.snd.mss as usize);
        let retransmit = (self.snd.nxt < self.snd.max).then_some(RetransmitCause::Timeout);
        if self.snd.wnd > 0 {
            let len = avail.min(room).min(self.snd.wnd as usize);
            let mut flags = Flags::ACK;
            if len == avail {
                flags |= Flags::PSH;
            }
            let plan = Plan {
                seq: self.snd.nxt,
                flags,
                data_off: off,
                len,
                retransmit,
                psh_mark: flags.contains(Flags::PSH),
                burst: (0, 0),
            };
            return self.send_plan(now, buf, plan, ctr);
        }
        None
    }

    /// A segment without payload and without our options but timestamps (RST, keepalive,
    /// window probe); `ts`: with timestamps, if negotiated.
    fn write_control(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        seq: SeqNum,
        ack: SeqNum,
        flags: Flags,
        ts: bool,
    ) -> Option<usize> {
        let mut options = Options::default();
        if ts {
            if let Some(ts) = self.opts.ts() {
                options.timestamps = Some(Timestamps {
                    tsval: self.ts_now(now),
                    tsecr: ts.recent,
                });
            }
            // A reset we decide on (an abort, a close with unread data) carries the options
            // of the connection's other segments, SACK blocks for what is held out of order
            // included, as Linux's tcp_send_active_reset writes it (tcp_established_options).
            options.sack = self.sack_option();
        }
        // ECE rides every segment but a RST while we echo a CE mark (RFC 3168 §6.1.3).
        let (ecn_flags, _) = self.ecn.on_send(false);
        let flags = if flags.rst() {
            flags
        } else {
            flags | ecn_flags
        };
        let window = if flags.rst() && !flags.ack() {
            0
        } else {
            self.window_to_advertise(false)
        };
        let repr = Repr {
            src_port: self.local_port,
            dst_port: self.remote_port,
            seq,
            ack,
            flags,
            window,
            urgent: 0,
            options,
            payload: &[],
        };
        let len = repr.header_len();
        let out = buf.get_mut(..len)?;
        let mut packet = Packet::new_unchecked(out);
        repr.emit_header(&mut packet).ok()?;
        packet.fill_checksum(self.local_ip, self.remote_ip);
        if flags.ack() {
            self.note_ack_sent();
        }
        Some(len)
    }

    /// The SACK blocks (RFC 2018 §4, D-SACK first per RFC 2883) a segment other than a SYN
    /// carries now: an owed ACK's (see tcp::sack), else those of the present state.
    ///
    /// Inlined: the common case (nothing held out of order, the reordering state not even
    /// allocated) is one test, asked for each segment.
    #[inline]
    fn sack_option(&self) -> SackBlocks {
        if self.rcv.ooo.is_none() {
            return SackBlocks::default();
        }
        self.sack_blocks()
    }

    /// [`sack_option`](Self::sack_option) once something was out of order.
    fn sack_blocks(&self) -> SackBlocks {
        self.rcv
            .ooo
            .as_ref()
            .and_then(|o| o.sack.owed(self.rcv.nxt))
            .unwrap_or_else(|| self.sack_now())
    }

    /// The SACK blocks of the present state: none without SACK or with nothing out of order
    /// or duplicated to report.
    pub(super) fn sack_now(&self) -> SackBlocks {
        let fin_ooo = self.rcv.fin.filter(|&f| f != self.rcv.nxt);
        let Some(ooo) = self.rcv.ooo.as_ref().filter(|o| {
            self.opts.sack && (!o.assembler.is_empty() || o.sack.has_dsack() || fin_ooo.is_some())
        }) else {
            return SackBlocks::default();
        };
        let max = if self.opts.ts().is_some() { 3 } else { 4 };
        // A FIN queued out of order is a block like data (Linux `tcp_data_queue_ofo` records
        // `end_seq`, which counts it): the recorder keeps it in its recency order, and once
        // newer blocks push it out of the four nothing brings it back.
        ooo.sack.blocks(&ooo.assembler, self.rcv.nxt, max, fin_ooo)
    }

    /// The SACK blocks of the ACK owed now, to be sent before the next arrival changes them
    /// (see tcp::sack): those of [`sack_now`](Self::sack_now) without a D-SACK block,
    /// which stays for the ACK after it.
    pub(super) fn sack_option_owed(&self) -> SackBlocks {
        let sack = self.sack_now();
        let dsack = self.rcv.ooo.as_ref().is_some_and(|o| o.sack.has_dsack());
        let skip = usize::from(dsack).min(sack.len());
        SackBlocks::from_slice(&sack.as_slice()[skip..])
    }

    /// Writes one segment per `plan` with the options this connection uses.
    fn write_segment(&mut self, now: Instant, buf: &mut [u8], plan: Plan) -> Option<usize> {
        let syn = plan.flags.syn();
        let mut options = Options::default();
        if syn {
            // Our SYN offers what Config enables; our SYN-ACK answers only what the peer offered.
            // One builder decides both, and the stack's SYN-ACKs (SYN queue, cookies) too.
            let offer = self.opts.peer_syn;
            let tsecr = if plan.flags.ack() {
                self.opts.ts().map_or(0, |t| t.recent)
            } else {
                0
            };
            let tsval = self.ts_now(now);
            options = syn_options(&self.cfg, self.rcv.mss, self.rcv.shift, offer, tsval, tsecr);
            options.fast_open = self.fast_open_syn_option();
        } else {
            if let Some(ts) = self.opts.ts() {
                options.timestamps = Some(Timestamps {
                    tsval: self.ts_now(now),
                    tsecr: ts.recent,
                });
            }
            options.sack = self.sack_option();
        }
        let window = self.window_to_advertise(syn);
        // Urgent mode: every segment before the urgent pointer says where it is (§3.8.5).
        let (mut flags, mut urgent) = (plan.flags, 0u16);
        // RFC 3168 §6.1: ECN-setup SYN (ECE, CWR; not when sent again, as Linux's
        // `tcp_ecn_clear_syn`) and SYN-ACK (ECE); afterwards ECE while echoing a CE mark, CWR
        // and ECT(0) on new data only (§6.1.2, §6.1.5).
        let new_data =
            !syn && plan.len > 0 && plan.retransmit.is_none() && plan.seq >= self.snd.max;
        let (ecn_flags, _) = self.ecn.on_send(new_data);
        if !syn {
            flags |= ecn_flags;
        } else if plan.flags.ack() {
            if self.ecn.ok() {
                flags |= Flags::ECE;
            }
        } else if self.cfg.ecn.asks() && self.snd.max == self.snd.iss {
            flags |= Flags::ECE | Flags::CWR;
        }
        if let Some(up) = self.snd.up.filter(|&up| !syn && up > plan.seq) {
            flags |= Flags::URG;
            urgent = (up - plan.seq).min(u16::MAX as u32) as u16;
        }
        let ack = if plan.flags.ack() {
            self.rcv.nxt
        } else {
            SeqNum(0)
        };
        let plain_syn = options.mss.filter(|_| {
            syn && plan.len == 0
                && urgent == 0
                && options.sack.is_empty()
                && options.fast_open.is_none()
                && plain_header_on()
        });
        let (hl, len) = if let Some(mss) = plain_syn {
            // A SYN or SYN-ACK without data or cookie: the handshake's own writer, the one
            // the stack's SYN-ACKs use (its bytes are the general branch's).
            let f = SynFields {
                src_port: self.local_port,
                dst_port: self.remote_port,
                seq: plan.seq,
                ack,
                flags,
                window,
            };
            let hl = write_plain_syn(buf, self.local_ip, self.remote_ip, &f, mss, &options)?;
            count_plain_syn();
            (hl, 0)
        } else if !syn && urgent == 0 && options.sack.is_empty() && plain_header_on() {
            // Nearly every segment: no option but timestamps, no urgent pointer
            // (`write_plain`). The length, FIN strip and slice lines repeat the general
            // branch's on purpose: folded into one (the header length chosen first), they
            // cost 24 to 44 more instructions per cg-rtt round trip (measured in round E8).
            let mut h = PlainHeader {
                src_port: self.local_port,
                dst_port: self.remote_port,
                seq: plan.seq,
                ack,
                flags,
                window,
                timestamps: options.timestamps,
            };
            let hl = h.header_len();
            let len = plan.len.min(buf.len().saturating_sub(hl));
            if len < plan.len {
                h.flags = h.flags & !Flags::FIN;
            }
            (self.write_plain(buf, &h, plan.data_off, len)?, len)
        } else {
            let mut repr = Repr {
                src_port: self.local_port,
                dst_port: self.remote_port,
                seq: plan.seq,
                ack,
                flags,
                window,
                urgent,
                options,
                payload: &[],
            };
            let hl = repr.header_len();
            let len = plan.len.min(buf.len().saturating_sub(hl));
            if len < plan.len {
                repr.flags = repr.flags & !Flags::FIN;
            }
            let out = buf.get_mut(..hl + len)?;
            let mut packet = Packet::new_unchecked(out);
            repr.emit_header(&mut packet).ok()?;
            let sum = self.copy_payload(packet.payload_mut(), plan.data_off);
            packet.fill_checksum_with(self.local_ip, self.remote_ip, sum);
            (hl, len)
        };
        // The payload was sized against `data_header_len`, so it fits whole (the sequence
        // bookkeeping after this counts the planned length).
        debug_assert!(
            syn || len == plan.len,
            "payload cut from {} to {len}",
            plan.len
        );
        debug_assert!(hl >= HEADER_LEN);
        if plan.flags.ack() {
            self.note_ack_sent();
        }
        Some(hl + len)
    }

    /// Writes a segment with the plain header `h` (no option but timestamps, no urgent
    /// pointer) and `len` bytes of the send buffer from `data_off` after it, and returns the
    /// header's length; `None` if `buf` cannot hold them. The header is written at fixed
    /// offsets after the payload is copied in and summed. Both send paths write their plain
    /// segments here.
    #[inline(always)]
    fn write_plain(
        &self,
        buf: &mut [u8],
        h: &PlainHeader,
        data_off: usize,
        len: usize,
    ) -> Option<usize> {
        let hl = h.header_len();
        let out = buf.get_mut(..hl + len)?;
        let sum = self.copy_payload(&mut out[hl..], data_off);
        h.emit_with_checksum(out, self.local_ip, self.remote_ip, sum)
            .ok()?;
        count_plain_header();
        Some(hl)
    }

    /// Copies the payload that starts `data_off` bytes into the send buffer into `payload`
    /// (as long as the payload) and returns its sum: one pass over it, the buffer's two
    /// halves joined at any offset.
    fn copy_payload(&self, payload: &mut [u8], data_off: usize) -> Checksum {
        let len = payload.len();
        if len == 0 {
            // A pure ACK, a SYN or a FIN without data (most segments of a short
            // connection): no slices to look up, no copy to set up.
            return Checksum::new();
        }
        let (a, b) = self.snd.buf.slices(data_off, len);
        debug_assert_eq!(
            a.len() + b.len(),
            len,
            "the send buffer holds the planned bytes"
        );
        let (pa, pb) = payload.split_at_mut(a.len().min(len));
        let mut sum = Checksum::new();
        sum.add_copy(pa, a);
        if !b.is_empty() {
            let mut second = Checksum::new();
            second.add_copy(pb, b);
            sum.add_sum_at(second, a.len());
        }
        sum
    }

    fn note_ack_sent(&mut self) {
        if self.rcv.ack_now
            || self.timers.is_armed(Timer::DelayedAck)
            || self.rcv.nxt != self.rcv.last_ack_sent
        {
            if let Some(d) = &mut self.rcv.data {
                d.delack.on_ack_sent();
            }
        }
        self.rcv.ack_now = false;
        self.timers.stop(Timer::DelayedAck);
        self.rcv.last_ack_sent = self.rcv.nxt;
        if let Some(ooo) = &mut self.rcv.ooo {
            ooo.sack.on_rcv_nxt(self.rcv.nxt);
            if ooo.sack.owed_sent(self.rcv.nxt) {
                // That was an owed ACK: the present state's (with any D-SACK) follows.
                self.rcv.ack_now = true;
            } else {
                ooo.sack.dsack_sent();
            }
            if ooo.assembler.is_empty() && ooo.sack.is_idle() {
                // The holes are filled and every block reported: the record goes back, so
                // that the segments after it are written without SACK blocks to look for
                // and output prediction (`output_predicted`) takes them again. The next
                // segment out of order allocates a new one. A FIN held out of order whose
                // block the recorder still keeps keeps it (the recorder is not idle); one
                // whose block newer ones pushed out is reported no more, as on Linux.
                self.rcv.ooo = None;
            }
        }
    }

    /// The window field to send (Linux `tcp_select_window`, see `tcp::rwnd`): what the
    /// buffer offers in steps of at least an MSS (receiver SWS avoidance, RFC 9293
    /// §3.8.6.2.2) and never less than what remains of the window already offered (§3.8.6:
    /// "the window ... should not be shrunk"), scaled by our shift (RFC 7323 §2.3).
    pub(super) fn window_to_advertise(&mut self, syn: bool) -> u16 {
        if syn {
            // RFC 7323 §2.2: the window in a SYN is never scaled; the right edge is anchored
            // once RCV.NXT is known.
            return self.open_receive_window().min(u16::MAX as u32) as u16;
        }
        let current = self.rcv.window();
        let held = self.rcv.held();
        let shift = self.rcv.shift;
        let mut w = self.rwnd();
        let wnd = w.offer(held, self.rcv.seg_est, shift, current);
        self.rcv.store_rwnd(&w);
        self.rcv.adv = self.rcv.nxt + wnd;
        (wnd.min((u16::MAX as u32) << shift) >> shift) as u16
    }

    /// Sizes the window of our SYN or SYN-ACK (Linux `tcp_select_initial_window`), counted
    /// from RCV.NXT: whole segments of our MSS, less the timestamp option on a passive open
    /// that negotiated it. The right edge is where that window ends, but no further than a
    /// window field at our scale can say: Linux, without window scaling, accepts data up to
    /// its whole initial window (say 130 KB) though it can advertise only 65535 bytes; synack
    /// keeps RCV.WND to what it advertised (RFC 9293 §3.3.1, and less room for blind
    /// injection, RFC 5961).
    pub(super) fn open_receive_window(&mut self) -> u32 {
        // `rwnd().initial_window(..)`, which reads only the buffer's size.
        let rcvbuf = self.rcv.buf.limit().min(u32::MAX as usize) as u32;
        let w = crate::tcp::rwnd::initial_window_of(rcvbuf, self.initial_window_mss());
        self.rcv.adv = self.rcv.nxt + w.min((u16::MAX as u32) << self.rcv.shift);
        w
    }
}

#[cfg(test)]
std::thread_local! {
    static PLAIN_HEADER: core::cell::Cell<bool> = const { core::cell::Cell::new(true) };
    static PLAIN_HEADERS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
    static PLAIN_SYNS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// Tests only: how many SYNs and SYN-ACKs this thread's connections wrote with the
/// handshake's writer (`write_plain_syn`) so far; the plain header switches it too.
#[cfg(test)]
pub(crate) fn plain_syns() -> u64 {
    PLAIN_SYNS.with(|c| c.get())
}

/// Tests only: turns the plain header of `write_segment` (see `PlainHeader`) on or off for the
/// connections this thread drives, so that a test can run the same exchange through the
/// general path and compare; returns how many segments this thread wrote with the plain
/// header so far.
#[cfg(test)]
pub(crate) fn set_plain_header(on: bool) -> u64 {
    PLAIN_HEADER.with(|c| c.set(on));
    PLAIN_HEADERS.with(|c| c.get())
}

/// Tests only: turns output prediction (`send_predicted`) on or off for the connections this
/// thread drives, so that a test can run the same exchange through the general planner and
/// compare; returns how many segments this thread sent the predicted way so far.
#[cfg(test)]
pub(crate) fn set_fast_output(on: bool) -> u64 {
    FAST_OUTPUT.with(|c| c.set(on));
    FAST_OUTPUTS.with(|c| c.get())
}

#[cfg(test)]
std::thread_local! {
    static FAST_OUTPUT: core::cell::Cell<bool> = const { core::cell::Cell::new(true) };
    static FAST_OUTPUTS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
    static FAST_FINS: core::cell::Cell<[u64; 2]> = const { core::cell::Cell::new([0; 2]) };
}

/// Tests only: whether output prediction is on in this thread, and how many segments it
/// sent so far.
#[cfg(test)]
pub(crate) fn fast_output_count() -> (bool, u64) {
    (fast_output_on(), FAST_OUTPUTS.with(|c| c.get()))
}

/// Tests only: how many FINs this thread sent the predicted way so far, alone and with data.
#[cfg(test)]
pub(crate) fn fast_fins() -> [u64; 2] {
    FAST_FINS.with(|c| c.get())
}

/// Output prediction is on (always, outside tests).
#[inline(always)]
fn fast_output_on() -> bool {
    #[cfg(test)]
    return FAST_OUTPUT.with(|c| c.get());
    #[cfg(not(test))]
    true
}

/// Tests only: counts a segment sent the predicted way, and a FIN apart (alone or not).
#[inline(always)]
fn count_fast_output(fin: bool, alone: bool) {
    #[cfg(test)]
    {
        FAST_OUTPUTS.with(|c| c.set(c.get() + 1));
        if fin {
            FAST_FINS.with(|c| {
                let mut n = c.get();
                n[usize::from(!alone)] += 1;
                c.set(n);
            });
        }
    }
    #[cfg(not(test))]
    let _ = (fin, alone);
}

/// The plain header is on (always, outside tests).
#[inline(always)]
fn plain_header_on() -> bool {
    #[cfg(test)]
    return PLAIN_HEADER.with(|c| c.get());
    #[cfg(not(test))]
    true
}

/// Tests only: counts a segment written with the plain header.
#[inline(always)]
fn count_plain_header() {
    #[cfg(test)]
    PLAIN_HEADERS.with(|c| c.set(c.get() + 1));
}

/// Tests only: counts a SYN or SYN-ACK written by `write_plain_syn`.
#[inline(always)]
fn count_plain_syn() {
    #[cfg(test)]
    PLAIN_SYNS.with(|c| c.set(c.get() + 1));
}

/// The flags of a resend (a retransmission or a loss probe): FIN only when it reaches the
/// FIN's place, PSH only when it reaches the end of data first sent marked with it. A piece
/// cut short (by the window, or a probe of part of a segment) is the head of Linux's
/// `tcp_fragment`, which leaves both flags on the tail.
fn resend_flags(fin_reached: bool, psh_reached: bool) -> Flags {
    let mut flags = Flags::ACK;
    if fin_reached {
        flags |= Flags::FIN;
    }
    if psh_reached {
        flags |= Flags::PSH;
    }
    flags
}
