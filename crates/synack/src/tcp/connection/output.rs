//! Building segments: what to send next (RFC 9293 §3.8.6 sender rules, Nagle, SWS avoidance,
//! congestion window, persist and keepalive probes) and writing it into the caller's buffer.

use super::{Connection, Event, RetransmitCause, State};
use crate::tcp::counters::Counters;
use crate::tcp::handshake::{Offer, syn_options};
use crate::tcp::seq::SeqNum;
use crate::time::Instant;
use crate::wire::tcp::{Flags, HEADER_LEN, Options, Packet, Repr, Timestamps};

/// Room the caller's buffer needs beyond the payload: the largest TCP header.
pub const MAX_HEADER: usize = crate::wire::tcp::MAX_HEADER_LEN;

/// What one segment carries from the send buffer.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seq: SeqNum,
    flags: Flags,
    /// Offset into the send buffer and length of the payload.
    data_off: usize,
    len: usize,
    retransmit: Option<RetransmitCause>,
}

impl Connection {
    /// Writes the next segment this connection wants to send into `buf` (TCP header and
    /// payload, checksum filled in for the connection's addresses) and returns its length.
    /// `buf` should hold [`MAX_HEADER`] plus one MSS; a smaller buffer gets smaller segments.
    /// Call repeatedly until it returns `None`.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        ctr: &mut Counters,
    ) -> Option<usize> {
        if let Some(rst) = self.pending_rst.take() {
            ctr.out_rsts += 1;
            ctr.out_segs += 1;
            let flags = if rst.ack.is_some() {
                Flags::RST | Flags::ACK
            } else {
                Flags::RST
            };
            return self.write_control(now, buf, rst.seq, rst.ack.unwrap_or(SeqNum(0)), flags);
        }
        match self.state {
            State::Closed | State::Listen => None,
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
        if self.snd_nxt != self.iss {
            return self.poll_ack_only(now, buf, ctr);
        }
        let synack = self.state == State::SynReceived;
        let flags = if synack {
            Flags::SYN | Flags::ACK
        } else {
            Flags::SYN
        };
        let retransmit = self.snd_max != self.iss;
        if retransmit {
            ctr.retrans_segs += 1;
            self.info.retransmits += 1;
            self.push_event(Event::Retransmit {
                seq: self.iss,
                len: 1,
                cause: RetransmitCause::Timeout,
            });
        } else {
            ctr.out_segs += 1;
            self.sampler.start(self.iss + 1u32, now);
        }
        let plan = Plan {
            seq: self.iss,
            flags,
            data_off: 0,
            len: 0,
            retransmit: None,
        };
        let n = self.write_segment(now, buf, plan)?;
        self.snd_nxt = self.iss + 1u32;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        self.arm_retransmit(now);
        Some(n)
    }

    fn poll_synchronized(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        ctr: &mut Counters,
    ) -> Option<usize> {
        let room = buf.len().saturating_sub(MAX_HEADER);
        if room == 0 {
            return None;
        }
        if self.state != State::TimeWait {
            if let Some(plan) = self.plan_data(now, room) {
                return self.send_plan(now, buf, plan, ctr);
            }
            if self.probe_now {
                self.probe_now = false;
                if let Some(n) = self.send_window_probe(now, buf, ctr) {
                    return Some(n);
                }
            }
            if self.keepalive_due {
                self.keepalive_due = false;
                // RFC 1122 §4.2.3.6: a probe with SEG.SEQ = SND.NXT-1 and no data elicits an ACK.
                let seq = self.snd_una - 1u32;
                ctr.out_segs += 1;
                return self.write_control(now, buf, seq, self.rcv_nxt, Flags::ACK);
            }
            self.update_persist(now);
        }
        self.poll_ack_only(now, buf, ctr)
    }

    fn poll_ack_only(&mut self, now: Instant, buf: &mut [u8], ctr: &mut Counters) -> Option<usize> {
        if !self.ack_now {
            return None;
        }
        ctr.out_segs += 1;
        let plan = Plan {
            seq: self.snd_nxt,
            flags: Flags::ACK,
            data_off: 0,
            len: 0,
            retransmit: None,
        };
        self.write_segment(now, buf, plan)
    }

    /// Decides whether a data (or FIN) segment goes out now, and which.
    fn plan_data(&mut self, now: Instant, room: usize) -> Option<Plan> {
        let mss = (self.snd_mss as usize).min(room);
        let base = self.send_buf_seq();
        let fin_pos = base + self.send_buf.len();

        if self.fast_rtx {
            self.fast_rtx = false;
            // One segment from SND.UNA (RFC 5681 §3.2 step 2, RFC 6582 §3.2 step 3).
            let off = (self.snd_una - base) as usize;
            let outstanding = ((self.snd_max - self.snd_una) as usize)
                .min(self.send_buf.len().saturating_sub(off));
            let len = outstanding.min(mss);
            let fin = self.fin_seq.is_some()
                && self.snd_una + len == fin_pos
                && self.snd_max == fin_pos + 1u32;
            if len > 0 || fin {
                let mut flags = Flags::ACK;
                if fin {
                    flags |= Flags::FIN;
                }
                return Some(Plan {
                    seq: self.snd_una,
                    flags,
                    data_off: off,
                    len,
                    retransmit: Some(RetransmitCause::Fast),
                });
            }
        }

        // RFC 5681 §4.1: restart from the initial window after an idle period of one RTO.
        if self.snd_una == self.snd_max
            && now - self.last_send > self.rtt.current_rto()
            && self.info.bytes_sent > 0
        {
            self.cc.on_idle_restart();
        }

        let off = (self.snd_nxt - base) as usize;
        let avail = self.send_buf.len().saturating_sub(off);
        let wnd_end = self.snd_una + self.snd_wnd;
        let wnd_avail = if wnd_end > self.snd_nxt {
            (wnd_end - self.snd_nxt) as usize
        } else {
            0
        };
        let in_flight = (self.snd_nxt - self.snd_una) as usize;
        let cwnd_avail = (self.cc.cwnd() as usize).saturating_sub(in_flight);
        let len = avail.min(mss).min(wnd_avail).min(cwnd_avail);
        let retransmit = self.snd_nxt < self.snd_max;
        let fin_pending = self.fin_queued && (self.fin_seq.is_none() || retransmit);
        let fin = fin_pending && len == avail && (len > 0 || wnd_avail > 0 || retransmit);

        if len == 0 && !fin {
            return None;
        }
        // Sender-side rules (RFC 9293 §3.8.6.2.1 SWS avoidance, RFC 1122 §4.2.3.4 Nagle):
        // send a full segment; or everything queued when nothing is unacknowledged (or Nagle
        // is off) and we are not corked; or at least half the largest window the peer
        // offered; retransmissions and FIN go without waiting.
        let send = retransmit
            || fin
            || len == mss
            || (len == avail && !self.cork && (self.nodelay || self.snd_una == self.snd_max))
            || (!self.cork && self.max_snd_wnd > 0 && len >= (self.max_snd_wnd as usize) / 2);
        if !send {
            return None;
        }
        let mut flags = Flags::ACK;
        if len > 0 && len == avail {
            flags |= Flags::PSH; // last segment of what the application wrote
        }
        if fin {
            flags |= Flags::FIN;
        }
        Some(Plan {
            seq: self.snd_nxt,
            flags,
            data_off: off,
            len,
            retransmit: retransmit.then_some(RetransmitCause::Timeout),
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
        let seg_len = plan.len as u32 + plan.flags.fin() as u32;
        let end = plan.seq + seg_len;
        if plan.flags.fin() {
            self.fin_seq = Some(plan.seq + plan.len);
        }
        match plan.retransmit {
            Some(cause) => {
                ctr.retrans_segs += 1;
                self.info.retransmits += 1;
                self.sampler.invalidate();
                self.push_event(Event::Retransmit {
                    seq: plan.seq,
                    len: seg_len,
                    cause,
                });
            }
            None => {
                ctr.out_segs += 1;
                if !self.sampler.is_timing() {
                    self.sampler.start(end, now);
                }
            }
        }
        if plan.retransmit != Some(RetransmitCause::Fast) || end > self.snd_nxt {
            self.snd_nxt = self.snd_nxt.max(end);
        }
        self.snd_max = self.snd_max.max(end);
        self.last_send = now;
        self.arm_retransmit(now);
        Some(n)
    }

    /// Persist timer fired (see `update_persist`). A zero window gets a one-byte probe beyond
    /// it (RFC 9293 §3.8.6.1): the byte is not counted as sent (SND.NXT stays) unless the
    /// peer accepts it, which its ACK shows; SND.MAX covers it so that ACK is acceptable. A
    /// small non-zero window gets what fits, sent for real (the SWS override timeout).
    fn send_window_probe(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        ctr: &mut Counters,
    ) -> Option<usize> {
        if self.snd_nxt != self.snd_una {
            return None;
        }
        let base = self.send_buf_seq();
        let off = (self.snd_nxt - base) as usize;
        let avail = self.send_buf.len().saturating_sub(off);
        if avail == 0 {
            return None;
        }
        let room = buf
            .len()
            .saturating_sub(MAX_HEADER)
            .min(self.snd_mss as usize);
        let retransmit = (self.snd_nxt < self.snd_max).then_some(RetransmitCause::Timeout);
        if self.snd_wnd > 0 {
            let len = avail.min(room).min(self.snd_wnd as usize);
            let mut flags = Flags::ACK;
            if len == avail {
                flags |= Flags::PSH;
            }
            let plan = Plan {
                seq: self.snd_nxt,
                flags,
                data_off: off,
                len,
                retransmit,
            };
            return self.send_plan(now, buf, plan, ctr);
        }
        ctr.window_probes += 1;
        ctr.out_segs += 1;
        let plan = Plan {
            seq: self.snd_nxt,
            flags: Flags::ACK,
            data_off: off,
            len: 1,
            retransmit: None,
        };
        let n = self.write_segment(now, buf, plan)?;
        self.snd_max = self.snd_max.max(self.snd_nxt + 1u32);
        self.update_persist(now);
        Some(n)
    }

    /// A segment without payload and without our options but timestamps (RST, keepalive).
    fn write_control(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        seq: SeqNum,
        ack: SeqNum,
        flags: Flags,
    ) -> Option<usize> {
        let mut options = Options::default();
        if !flags.rst() {
            if let Some(ts) = self.ts {
                options.timestamps = Some(Timestamps {
                    tsval: self.ts_now(now),
                    tsecr: ts.recent,
                });
            }
        }
        let window = if flags.rst() && !flags.ack() {
            0
        } else {
            self.window_to_advertise(false)
        };
        let repr = Repr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
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
        packet.fill_checksum(self.local.ip(), self.remote.ip());
        if flags.ack() {
            self.note_ack_sent();
        }
        Some(len)
    }

    /// Writes one segment per `plan` with the options this connection uses.
    fn write_segment(&mut self, now: Instant, buf: &mut [u8], plan: Plan) -> Option<usize> {
        let syn = plan.flags.syn();
        let mut options = Options::default();
        if syn {
            // Our SYN offers what Config enables; our SYN-ACK answers only what the peer offered.
            // One builder decides both, and the stack's SYN-ACKs (SYN queue, cookies) too.
            let offer = self.peer_syn_opts.map(|p| Offer {
                window_scale: p.wscale.is_some(),
                sack_permitted: p.sack_permitted,
                timestamps: p.tsval.is_some(),
            });
            let tsecr = if plan.flags.ack() {
                self.ts.map_or(0, |t| t.recent)
            } else {
                0
            };
            let tsval = self.ts_now(now);
            options = syn_options(&self.cfg, self.rcv_mss, self.rcv_shift, offer, tsval, tsecr);
        } else {
            if let Some(ts) = self.ts {
                options.timestamps = Some(Timestamps {
                    tsval: self.ts_now(now),
                    tsecr: ts.recent,
                });
            }
            if self.sack_ok && !self.assembler.is_empty() {
                let max = if self.ts.is_some() { 3 } else { 4 };
                options.sack = self.sack_rec.blocks(&self.assembler, self.rcv_nxt, max);
            }
        }
        let window = self.window_to_advertise(syn);
        // Urgent mode: every segment before the urgent pointer says where it is (§3.8.5).
        let (mut flags, mut urgent) = (plan.flags, 0u16);
        if let Some(up) = self.snd_up.filter(|&up| !syn && up > plan.seq) {
            flags |= Flags::URG;
            urgent = (up - plan.seq).min(u16::MAX as u32) as u16;
        }
        let mut repr = Repr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: plan.seq,
            ack: if plan.flags.ack() {
                self.rcv_nxt
            } else {
                SeqNum(0)
            },
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
        let (a, b) = self.send_buf.slices(plan.data_off, len);
        let payload = packet.payload_mut();
        payload[..a.len()].copy_from_slice(a);
        payload[a.len()..a.len() + b.len()].copy_from_slice(b);
        packet.fill_checksum(self.local.ip(), self.remote.ip());
        debug_assert!(hl >= HEADER_LEN);
        if plan.flags.ack() {
            self.note_ack_sent();
        }
        Some(hl + len)
    }

    fn note_ack_sent(&mut self) {
        self.ack_now = false;
        self.unacked_segs = 0;
        self.timers.delayed_ack = None;
        self.last_ack_sent = self.rcv_nxt;
        self.sack_rec.on_rcv_nxt(self.rcv_nxt);
    }

    /// The window field to send, with receiver SWS avoidance (RFC 9293 §3.8.6.2.2) and without
    /// ever moving the right edge left (§3.8.6: "the window ... should not be shrunk").
    fn window_to_advertise(&mut self, syn: bool) -> u16 {
        let free = self.recv_buf.free() as u32;
        if syn {
            // RFC 7323 §2.2: the window in a SYN is never scaled.
            let w = free.min(u16::MAX as u32);
            self.rcv_adv = self.rcv_nxt + w;
            return w as u16;
        }
        let current = if self.rcv_adv > self.rcv_nxt {
            self.rcv_adv - self.rcv_nxt
        } else {
            0
        };
        let mut wnd = free;
        let threshold = self.rcv_mss.min(self.cfg.recv_buffer as u32 / 2).max(1);
        if wnd > current && wnd - current < threshold {
            wnd = current;
        }
        wnd = wnd.max(current);
        let scaled = (wnd >> self.rcv_shift).min(u16::MAX as u32);
        let edge = self.rcv_nxt + (scaled << self.rcv_shift);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        scaled as u16
    }
}
