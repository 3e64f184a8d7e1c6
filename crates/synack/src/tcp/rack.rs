//! RACK: time-based loss detection (RFC 8985 §6).
//!
//! Instead of counting duplicate ACKs, RACK remembers the most recently *sent* segment that
//! has been delivered (acknowledged cumulatively or by SACK). A segment sent before it that is
//! still missing is lost once it has been out longer than the RTT of that delivered segment
//! plus a reordering window. The window adapts: zero until reordering has been seen (so
//! recovery starts as fast as the duplicate-ACK threshold would), then a quarter of the
//! minimum RTT, grown step by step while D-SACKs show retransmissions were spurious.
//!
//! This module holds RACK's state and arithmetic; the scoreboard
//! ([`super::scoreboard::Scoreboard::detect_lost`]) walks the segments.

use super::scoreboard::Sent;
use super::seq::SeqNum;
use crate::time::{Duration, Instant};

/// RFC 8985 §6.2 step 4: the window multiplier stays raised for this many recoveries after
/// the last D-SACK (`RACK.reo_wnd_persist`).
const REO_WND_PERSIST: u32 = 16;
/// Upper bound of the multiplier (Linux caps `reo_wnd_steps` at 0xFF; the window is capped at
/// SRTT anyway).
const MAX_REO_WND_MULT: u32 = 255;
/// The duplicate-ACK threshold (RFC 5681 §3.2, Linux `tcp_reordering`).
pub const DUP_THRESH: u32 = 3;

/// RACK's per-connection state (RFC 8985 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rack {
    /// Transmission time of the most recently sent segment delivered so far (RACK.xmit_ts).
    xmit: Option<Instant>,
    /// Its end (RACK.end_seq).
    end_seq: SeqNum,
    /// RTT of that delivery (RACK.rtt).
    rtt: Duration,
    /// Highest end of any delivered segment (RACK.fack).
    fack: Option<SeqNum>,
    /// A segment was delivered below `fack` without having been retransmitted.
    reordering_seen: bool,
    reo_wnd_mult: u32,
    reo_wnd_persist: u32,
    /// D-SACKs raise the multiplier at most once per round trip: until SND.UNA passes this.
    dsack_round: Option<SeqNum>,
}

impl Default for Rack {
    fn default() -> Rack {
        Rack::new()
    }
}

impl Rack {
    pub const fn new() -> Rack {
        Rack {
            xmit: None,
            end_seq: SeqNum(0),
            rtt: Duration::ZERO,
            fack: None,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
        }
    }

    /// This state without what the deliveries so far taught (the most recently sent
    /// delivered segment, its RTT, the highest delivered end): what RACK keeps of the
    /// connection's past once nothing in flight was sent before that segment, and the next
    /// delivery would replace them anyway. Reordering seen, the window's multiplier, its
    /// persistence and the D-SACK round stay.
    pub fn without_deliveries(&self) -> Rack {
        Rack {
            xmit: None,
            end_seq: SeqNum(0),
            rtt: Duration::ZERO,
            fack: None,
            ..*self
        }
    }

    /// Whether reordering has been observed on this connection.
    #[cfg(test)]
    pub fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    /// The RTT RACK currently uses (zero before the first delivery).
    #[cfg(test)]
    pub fn rtt(&self) -> Duration {
        self.rtt
    }

    /// RFC 8985 §6.2 steps 2 and 3 for one newly delivered segment `s` (delivered at `now`).
    /// A retransmitted segment whose apparent RTT is below the minimum RTT was most likely
    /// delivered by its original transmission: it tells nothing about time and is skipped.
    pub fn on_delivered(&mut self, s: &Sent, now: Instant, min_rtt: Option<Duration>) {
        let retransmitted = s.has(super::scoreboard::EVER_RETRANS);
        // Step 3: reordering.
        match self.fack {
            Some(f) if s.end <= f => {
                if s.end < f && !retransmitted {
                    self.reordering_seen = true;
                }
            }
            _ => self.fack = Some(s.end),
        }
        // Step 2: the most recently sent delivered segment.
        let rtt = now.saturating_duration_since(s.xmit);
        if retransmitted && min_rtt.is_some_and(|m| rtt < m) {
            return;
        }
        self.rtt = rtt;
        if self
            .xmit
            .is_none_or(|x| sent_after(s.xmit, s.end, x, self.end_seq))
        {
            self.xmit = Some(s.xmit);
            self.end_seq = s.end;
        }
    }

    /// Reordering was found some other way than a delivery below the highest (Linux
    /// `tcp_check_sack_reordering` from an undo: `reord_seen`).
    pub fn note_reordering(&mut self) {
        self.reordering_seen = true;
    }

    /// RFC 8985 §6.2 step 4, first half: a D-SACK arrived (at SND.NXT = `snd_nxt`). Once per
    /// round trip the reordering window grows by one step and stays grown for 16 recoveries.
    pub fn on_dsack(&mut self, snd_una: SeqNum, snd_nxt: SeqNum) {
        if self.dsack_round.is_some_and(|r| snd_una >= r) {
            self.dsack_round = None;
        }
        if self.dsack_round.is_none() {
            self.dsack_round = Some(snd_nxt);
            self.reo_wnd_mult = (self.reo_wnd_mult + 1).min(MAX_REO_WND_MULT);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    /// D-SACKs showed every retransmission of an episode unnecessary (Linux
    /// `tcp_try_undo_dsack`): the grown window persists one recovery longer, up to 16.
    pub fn on_dsack_undo(&mut self) {
        self.reo_wnd_persist = (self.reo_wnd_persist + 1).min(REO_WND_PERSIST);
    }

    /// A recovery (fast or after a timeout) ended without being undone (Linux
    /// `tcp_try_undo_recovery`): the grown window decays. An undone one leaves it alone.
    pub fn on_recovery_end(&mut self) {
        if self.reo_wnd_persist > 0 {
            self.reo_wnd_persist -= 1;
            if self.reo_wnd_persist == 0 {
                self.reo_wnd_mult = 1;
            }
        }
    }

    /// RFC 8985 §6.2 step 4: the reordering window. Without reordering seen it is zero in
    /// recovery or once `sacked_segs` reach the duplicate-ACK threshold; otherwise
    /// `min_rtt / 4 × multiplier`, at most SRTT.
    pub fn reo_wnd(
        &self,
        in_recovery: bool,
        sacked_segs: u32,
        min_rtt: Option<Duration>,
        srtt: Option<Duration>,
    ) -> Duration {
        if !self.reordering_seen && (in_recovery || sacked_segs >= DUP_THRESH) {
            return Duration::ZERO;
        }
        let w = min_rtt.unwrap_or_default() / 4 * self.reo_wnd_mult;
        match srtt {
            Some(s) => w.min(s),
            None => w,
        }
    }

    /// Whether `s` was sent before the most recently delivered segment (so that its absence
    /// is meaningful).
    pub fn sent_before(&self, s: &Sent) -> bool {
        self.xmit
            .is_some_and(|x| sent_after(x, self.end_seq, s.xmit, s.end))
    }

    /// When `s` counts as lost: its transmission time + RACK.rtt + the reordering window.
    pub fn deadline(&self, s: &Sent, reo_wnd: Duration) -> Instant {
        s.xmit + self.rtt + reo_wnd
    }

    /// The end of the most recently sent delivered segment (detection looks no further).
    pub fn end_seq(&self) -> Option<SeqNum> {
        self.xmit.map(|_| self.end_seq)
    }
}

/// RFC 8985 §6.2 `RACK_sent_after`: t1/seq1 was sent after t2/seq2 (sequence breaks ties
/// between segments sent in the same instant).
fn sent_after(t1: Instant, seq1: SeqNum, t2: Instant, seq2: SeqNum) -> bool {
    t1 > t2 || (t1 == t2 && seq1 > seq2)
}

#[cfg(test)]
mod tests {
    use super::super::scoreboard::EVER_RETRANS;
    use super::*;

    fn seg(start: u32, end: u32, ms: u64, marks: u8) -> Sent {
        Sent {
            start: SeqNum(start),
            end: SeqNum(end),
            xmit: Instant::from_millis(ms),
            marks,
            tx: crate::tcp::rate::TxState::NONE,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn most_recently_sent_delivery_wins() {
        let mut r = Rack::new();
        r.on_delivered(&seg(300, 400, 3, 0), Instant::from_millis(100), None);
        assert_eq!(r.rtt(), ms(97));
        // An older segment delivered later does not move the reference back.
        r.on_delivered(&seg(100, 200, 1, 0), Instant::from_millis(120), None);
        assert!(r.sent_before(&seg(200, 300, 2, 0)));
        assert!(!r.sent_before(&seg(400, 500, 4, 0)));
        assert!(r.reordering_seen(), "delivered below the highest delivery");
        assert_eq!(r.end_seq(), Some(SeqNum(400)));
    }

    #[test]
    fn ambiguous_retransmission_is_not_an_rtt_sample() {
        let mut r = Rack::new();
        r.on_delivered(&seg(0, 100, 0, 0), Instant::from_millis(50), Some(ms(50)));
        // Retransmitted at 60, acknowledged at 70: 10 ms < min RTT, the original arrived.
        r.on_delivered(
            &seg(100, 200, 60, EVER_RETRANS),
            Instant::from_millis(70),
            Some(ms(50)),
        );
        assert_eq!(r.rtt(), ms(50));
        assert!(!r.reordering_seen());
    }

    #[test]
    fn reordering_window() {
        let mut r = Rack::new();
        let (min, srtt) = (Some(ms(40)), Some(ms(60)));
        assert_eq!(r.reo_wnd(false, 0, min, srtt), ms(10));
        assert_eq!(r.reo_wnd(true, 0, min, srtt), Duration::ZERO);
        assert_eq!(r.reo_wnd(false, DUP_THRESH, min, srtt), Duration::ZERO);
        r.reordering_seen = true;
        assert_eq!(r.reo_wnd(true, 5, min, srtt), ms(10));
        // D-SACK: one step per round.
        r.on_dsack(SeqNum(0), SeqNum(1000));
        r.on_dsack(SeqNum(500), SeqNum(2000));
        assert_eq!(r.reo_wnd(false, 0, min, srtt), ms(20));
        r.on_dsack(SeqNum(1000), SeqNum(3000));
        assert_eq!(r.reo_wnd(false, 0, min, srtt), ms(30));
        r.on_dsack(SeqNum(3000), SeqNum(4000));
        assert_eq!(r.reo_wnd(false, 0, min, srtt), ms(40));
        r.on_dsack(SeqNum(4000), SeqNum(5000));
        assert_eq!(r.reo_wnd(false, 0, min, srtt), ms(50));
        r.on_dsack(SeqNum(5000), SeqNum(6000));
        assert_eq!(r.reo_wnd(false, 0, min, srtt), ms(60), "capped at SRTT");
        for _ in 0..REO_WND_PERSIST {
            r.on_recovery_end();
        }
        assert_eq!(
            r.reo_wnd(false, 0, min, srtt),
            ms(10),
            "decayed after 16 recoveries"
        );
    }

    /// Linux: an episode the D-SACKs undo adds one recovery to the persistence (at most 16);
    /// only episodes that end as real losses count it down.
    #[test]
    fn dsack_undo_keeps_the_grown_window_longer() {
        let mut r = Rack::new();
        r.reordering_seen = true;
        let (min, srtt) = (Some(ms(40)), Some(ms(60)));
        r.on_dsack(SeqNum(0), SeqNum(1000));
        assert_eq!(r.reo_wnd(false, 0, min, srtt), ms(20));
        r.on_dsack_undo();
        assert_eq!(r.reo_wnd_persist, REO_WND_PERSIST, "capped at 16");
        for _ in 0..REO_WND_PERSIST - 1 {
            r.on_recovery_end();
        }
        r.on_dsack_undo();
        r.on_recovery_end();
        assert_eq!(r.reo_wnd(false, 0, min, srtt), ms(20), "one recovery more");
        r.on_recovery_end();
        assert_eq!(r.reo_wnd(false, 0, min, srtt), ms(10));
    }

    #[test]
    fn deadline_is_rtt_plus_window() {
        let mut r = Rack::new();
        r.on_delivered(&seg(0, 100, 10, 0), Instant::from_millis(110), None);
        assert_eq!(
            r.deadline(&seg(100, 200, 10, 0), ms(25)),
            Instant::from_millis(135)
        );
    }
}
