//! Proportional Rate Reduction (RFC 6937): how much may be sent on each ACK during recovery.
//!
//! When loss starts a recovery the congestion window must come down from its old value
//! (`RecoverFS`) to ssthresh. Halving it at once would stall the sender for half a round trip
//! and then let it burst; PRR instead spreads the reduction over the round trip, sending
//! `ssthresh / RecoverFS` of what the peer reports delivered while the pipe is above
//! ssthresh, and slow-starting back up to ssthresh (Slow Start Reduction Bound) when losses
//! have drained the pipe below it.
//!
//! Everything is counted in segments, as Linux does (`tcp_cwnd_reduction`), which the
//! packetdrill scripts check.

/// PRR state for one recovery episode (RFC 6937 §3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prr {
    /// RecoverFS: the congestion window when recovery started, in segments.
    recover_fs: u32,
    /// prr_delivered: segments delivered to the peer since recovery started.
    delivered: u32,
    /// prr_out: segments sent since recovery started.
    out: u32,
}

impl Prr {
    /// Recovery starts with a congestion window of `cwnd_segs` (RFC 6937 §3: "On entering
    /// recovery").
    pub fn start(cwnd_segs: u32) -> Prr {
        Prr {
            recover_fs: cwnd_segs.max(1),
            delivered: 0,
            out: 0,
        }
    }

    /// A segment went out during recovery.
    pub fn on_sent(&mut self, segs: u32) {
        self.out += segs;
    }

    /// RFC 6937 §3 "On every ACK ... during recovery": `delivered` segments newly delivered,
    /// `pipe` segments in flight after the ACK, `ssthresh` in segments. `una_advanced`: the ACK
    /// moved SND.UNA; `newly_lost`: it revealed new losses. Returns the new congestion window
    /// in segments (pipe + sndcnt), or `None` when the ACK delivered nothing (the window stays).
    pub fn on_ack(
        &mut self,
        delivered: u32,
        pipe: u32,
        ssthresh: u32,
        una_advanced: bool,
        newly_lost: bool,
    ) -> Option<u32> {
        if delivered == 0 {
            return None;
        }
        self.delivered += delivered;
        let sndcnt = if pipe > ssthresh {
            // Proportional part: sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            let due = (self.delivered as u64 * ssthresh as u64).div_ceil(self.recover_fs as u64);
            (due as i64 - self.out as i64).max(0) as u32
        } else {
            // Slow Start Reduction Bound: limit = MAX(prr_delivered - prr_out, DeliveredData),
            // plus one on an ACK that advanced SND.UNA without revealing new loss (so a
            // partial ACK lets the next two lost segments go together), and always capped at
            // ssthresh - pipe, as Linux's `tcp_cwnd_reduction` (capped in every version since
            // 3.x; the +1 form is 5.19's): a duplicate ACK without
            // SACK with the pipe at ssthresh lets nothing go, one below it lets one go.
            let limit = (self.delivered.saturating_sub(self.out)).max(delivered);
            let limit = if una_advanced && !newly_lost {
                limit + 1
            } else {
                limit
            };
            limit.min(ssthresh - pipe)
        };
        // A fast retransmit goes out on entering recovery whatever the arithmetic says.
        let sndcnt = if self.out == 0 { sndcnt.max(1) } else { sndcnt };
        Some(pipe + sndcnt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6937 Appendix-like case: 20 segments in flight, one lost, ssthresh 10. Each ACK
    /// delivers one segment; PRR sends one segment for every two delivered.
    #[test]
    fn proportional_half_rate() {
        let mut p = Prr::start(20);
        let ssthresh = 10;
        let mut pipe = 19; // one lost
        let mut sent = 0;
        for _ in 0..19 {
            pipe -= 1;
            let cwnd = p.on_ack(1, pipe, ssthresh, true, false).unwrap();
            let n = cwnd.saturating_sub(pipe);
            p.on_sent(n);
            pipe += n;
            sent += n;
        }
        // Over the recovery PRR sends about ssthresh segments in total.
        assert!((9..=11).contains(&sent), "sent {sent}");
        assert!(pipe <= ssthresh + 1, "pipe {pipe}");
    }

    #[test]
    fn first_ack_always_allows_the_fast_retransmit() {
        let mut p = Prr::start(10);
        // pipe 9 > ssthresh 5 and 1 delivered: 1*5/10 rounds up to 1.
        assert_eq!(p.on_ack(1, 9, 5, false, false), Some(10));
        let mut p = Prr::start(100);
        assert_eq!(p.on_ack(1, 99, 2, false, false), Some(100));
        assert_eq!(p.on_ack(0, 99, 2, false, false), None);
    }

    /// prr-ss-10pkt-lost-1.pkt: 10 out, 1 lost, 3 SACKed; ssthresh 7 (CUBIC), pipe 6 after
    /// marking the loss: slow-start reduction bound, one segment per segment delivered.
    #[test]
    fn slow_start_reduction_bound() {
        let mut p = Prr::start(10);
        // The third SACK starts recovery and delivers one segment; pipe = 10 - 3 - 1 = 6 < 7.
        assert_eq!(p.on_ack(1, 6, 7, false, true), Some(7));
        p.on_sent(1); // the retransmission
        // Next SACK: one more delivered, pipe 6 again (5 + the retransmission).
        let cwnd = p.on_ack(1, 6, 7, false, false).unwrap();
        assert_eq!(cwnd, 7, "one for one while pipe < ssthresh");
    }

    /// cwnd-prr-reno-dupack-one-segment-each.pkt: 10 out without SACK, ssthresh 5 (Reno);
    /// each duplicate ACK delivers one segment and moves nothing: with the pipe at ssthresh
    /// nothing may go (prr_delivered - prr_out is 2, but ssthresh - pipe is 0), one below it
    /// exactly one.
    #[test]
    fn duplicate_ack_bounded_by_ssthresh_minus_pipe() {
        let mut p = Prr::start(10);
        // Third duplicate ACK: pipe 10 - 3 SACKed - 1 lost = 6, the fast retransmit.
        assert_eq!(p.on_ack(1, 6, 5, false, true), Some(7));
        p.on_sent(1);
        // Fourth: pipe 6 > 5, ceil(2 * 5 / 10) - 1 = 0.
        assert_eq!(p.on_ack(1, 6, 5, false, false), Some(6));
        // Fifth: pipe 5 = ssthresh, nothing.
        assert_eq!(p.on_ack(1, 5, 5, false, false), Some(5));
        // Sixth: pipe 4, one.
        assert_eq!(p.on_ack(1, 4, 5, false, false), Some(5));
        p.on_sent(1);
        // Seventh: pipe 4 again (the new segment is in flight), one.
        assert_eq!(p.on_ack(1, 4, 5, false, false), Some(5));
    }

    /// rtx-size-recovery-two-segments-together.pkt: 10 out, the first 3 lost, 3 SACKed;
    /// ssthresh 7, pipe 4. The third SACK lets the fast retransmit go (one segment); the
    /// partial ACK that follows delivers one and lets two go (Linux: one more than
    /// delivered on a clean cumulative ACK), capped at ssthresh - pipe.
    #[test]
    fn partial_ack_sends_one_more_than_delivered() {
        let mut p = Prr::start(10);
        assert_eq!(p.on_ack(1, 4, 7, false, true), Some(5));
        p.on_sent(1);
        // The partial ACK: 1 delivered (prr_delivered 2, prr_out 1), pipe 4.
        assert_eq!(p.on_ack(1, 4, 7, true, false), Some(6));
        p.on_sent(2);
        // Capped: pipe 6 leaves room for one below ssthresh 7.
        assert_eq!(p.on_ack(3, 6, 7, true, false), Some(7));
        // An ACK that reveals a loss gets no extra segment.
        let mut p = Prr::start(10);
        p.on_sent(1);
        assert_eq!(p.on_ack(1, 4, 7, true, true), Some(5));
    }
}
