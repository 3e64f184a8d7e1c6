//! Loss recovery on the sending side: what each ACK tells the scoreboard, when a segment
//! counts as lost, the recovery states, the congestion window during recovery, and undoing a
//! reduction that turns out to be spurious.
//!
//! The pieces live in their own modules — [`Scoreboard`](crate::tcp::scoreboard) (RFC 6675
//! marks and pipe), [`Rack`](crate::tcp::rack) (RFC 8985 time-based loss detection),
//! [`Prr`](crate::tcp::prr) (RFC 6937) and the congestion controller — and this file wires
//! them together the way Linux's `tcp_ack` / `tcp_fastretrans_alert` do:
//!
//! 1. SACK blocks are validated and marked; a D-SACK (RFC 2883) is recognised and counted
//!    against the retransmissions of the current episode. The cumulative ACK removes what it
//!    covers. Together they give DeliveredData.
//! 2. Loss detection: RACK when SACK is on; without SACK each duplicate ACK counts as one
//!    SACKed segment (Linux's "reno" emulation), the third marks the first segment lost
//!    (RFC 5681 §3.2), and in recovery each partial ACK marks the next (RFC 6582).
//! 3. The state (Linux's `tcp_ca_state`): Open; Disorder (SACKs or duplicate ACKs seen,
//!    nothing lost); Recovery (fast recovery after a loss, until SND.UNA passes the highest
//!    sequence sent when it began); Loss (after a retransmission timeout, same end rule).
//! 4. The congestion window: PRR in Recovery, the controller's growth otherwise.
//!
//! Limited Transmit (RFC 3042) needs no code of its own: SACKed (or duplicate-ACKed) segments
//! leave the pipe, so each of the first duplicate ACKs lets one new segment out.
//!
//! The state of this file is the connection's [`Recovery`], boxed and allocated the first
//! time it has something to keep: the first SACK block, the first duplicate ACK counted
//! without SACK, the first retransmission or loss. An idle connection, and one whose data
//! always arrived in order, carries none of it. Until then every segment was delivered in
//! order and none was sent again (a tail loss probe allocates it), so RACK's reference
//! segment is older than anything still in flight and its loss test would find nothing: what
//! RACK learns from those deliveries is never needed.

use super::sender::{Sender, Transmit};
use super::timers::Timer;
use super::{CaState, Connection};
use crate::tcp::congestion::{AckSample, CongestionControl, Flight};
use crate::tcp::counters::Counters;
use crate::tcp::prr::Prr;
use crate::tcp::rack::{DUP_THRESH, Rack};
use crate::tcp::rate::RateSample;
use crate::tcp::scoreboard::{Delivered, EVER_RETRANS, SACKED};
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::tcp::Repr;

/// Linux's tcp_max_reordering: the reordering degree is capped here (segments).
const MAX_REORDERING: u32 = 300;
/// Linux's TCP_TIMEOUT_MIN: the reordering timer fires this much after the deadline.
const REO_TIMER_SLACK: Duration = Duration::from_millis(2);

/// The sender's loss-recovery state beyond the scoreboard: RACK, PRR, Linux's
/// congestion-avoidance state and the current (or last) episode with what undoing it needs.
#[derive(Debug)]
pub(super) struct Recovery {
    /// What outlives the state when it is given back (see [`Carried`]): RACK, the
    /// reordering degree, the undo bookkeeping and the lifetime counters.
    kept: Carried,
    prr: Prr,
    ca_state: CaState,
    /// SND.MAX when the current recovery or loss episode began: it ends when SND.UNA passes.
    high_seq: SeqNum,
    /// TSval of the episode's first retransmission (Eifel detection, RFC 3522).
    retrans_stamp: Option<u32>,
    /// F-RTO (RFC 5682: §3.1's SACK-enhanced variant with SACK, §2's basic one without, as
    /// Linux's `tp->frto`) watches this timeout.
    frto: bool,
    /// F-RTO step 2b: the ACK of the timeout's retransmission came; new data goes before
    /// any more retransmission, until the next ACK.
    frto_new: bool,
    /// Without SACK: duplicate ACKs, each standing for one segment that arrived.
    reno_sacked: u32,
}

/// What a [`Recovery`] given back leaves behind, in the transmit state, for the next one:
/// the counters TCP_INFO reports over the connection's life, the reordering degree (Linux
/// `tp->reordering`), RACK's reordering memory (whether reordering was seen, the window's
/// multiplier and how long it persists, the D-SACK round) and the last episode's undo
/// bookkeeping, which a late D-SACK may still use (Linux `tcp_try_undo_dsack` in Open).
/// Everything else of a recovery state given back is at a value the next episode resets
/// before reading it (`give_back_recovery` says why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Carried {
    rack: Rack,
    /// SND.UNA when the episode began, while its window reduction may still be undone.
    undo_marker: Option<SeqNum>,
    /// Retransmissions of the episode that no D-SACK has yet shown unnecessary.
    undo_retrans: u32,
    /// Retransmissions of the episode.
    episode_retrans: u32,
    /// Duplicate segments D-SACKs reported (Linux `tp->dsack_dups`).
    dsack_dups: u32,
    /// The largest reordering seen, in segments (Linux's tp->reordering; starts at 3).
    reordering: u32,
    /// Segments sent again over the connection's life (SYN and SYN-ACK included).
    retransmits: u64,
    /// Payload bytes sent again over the connection's life (Linux `tp->bytes_retrans`).
    bytes_retrans: u64,
    /// Retransmission timeouts over the connection's life (Linux `tp->total_rto`, 16 bits)...
    total_rto: u16,
    /// ...and the episodes they form: timeouts that followed no other (Linux
    /// `tp->total_rto_recoveries`).
    rto_recoveries: u16,
}

impl Carried {
    /// What a connection that never needed recovery state has.
    const INITIAL: Carried = Carried {
        rack: Rack::new(),
        undo_marker: None,
        undo_retrans: 0,
        episode_retrans: 0,
        dsack_dups: 0,
        reordering: DUP_THRESH,
        retransmits: 0,
        bytes_retrans: 0,
        total_rto: 0,
        rto_recoveries: 0,
    };
}

impl Recovery {
    /// The recovery state in `slot`, allocated now if this is the first time it is needed.
    /// What was carried over when an earlier one was given back comes back into it (copied
    /// from the transmit state `tx`).
    pub(super) fn get<'a>(
        slot: &'a mut Option<Box<Recovery>>,
        tx: &Option<Box<Transmit>>,
    ) -> &'a mut Recovery {
        if slot.is_none() {
            // Copied, not taken: the transmit state keeps its box for the next give-back
            // (no allocation per episode); nothing reads it while the state exists.
            let carried = tx.as_deref().and_then(|t| t.carried.as_deref()).copied();
            *slot = Some(Recovery::new(carried.as_ref()));
        }
        slot.as_deref_mut().expect("allocated above")
    }

    /// A new recovery state, with what `carried` kept of an earlier one.
    #[inline(never)]
    fn new(carried: Option<&Carried>) -> Box<Recovery> {
        Box::new(Recovery {
            kept: carried.copied().unwrap_or(Carried::INITIAL),
            prr: Prr::default(),
            ca_state: CaState::Open,
            high_seq: SeqNum(0),
            retrans_stamp: None,
            frto: false,
            frto_new: false,
            reno_sacked: 0,
        })
    }

    /// Forgets what an undo of the episode would need.
    fn forget_undo(&mut self) {
        self.kept.undo_marker = None;
        self.kept.undo_retrans = 0;
        self.kept.episode_retrans = 0;
    }

    /// What outlives this state when it is given back (see [`Carried`]).
    fn carried(&self) -> Carried {
        Carried {
            rack: self.kept.rack.without_deliveries(),
            ..self.kept
        }
    }

    /// Linux `tcp_packet_delayed` (RFC 3522, Eifel): the ACK echoes a timestamp older than
    /// the episode's first retransmission, so what it acknowledges came from an original.
    fn echo_predates_retransmission(&self, seg: &Repr<'_>) -> bool {
        self.retrans_stamp
            .is_some_and(|stamp| echo_predates(seg, stamp))
    }

    /// Linux `tcp_check_sack_reordering`: data from `low` on arrived (or was found to have
    /// arrived) below the highest SACKed sequence `fack`: reordering by that distance.
    fn note_reordering(&mut self, low: SeqNum, fack: Option<SeqNum>, mss: u32) {
        let Some(fack) = fack.filter(|&f| low < f) else {
            return;
        };
        let degree = (fack - low).div_ceil(mss.max(1));
        self.kept.reordering = self.kept.reordering.max(degree.min(MAX_REORDERING));
        self.kept.rack.note_reordering();
    }

    /// A D-SACK for `[start, end)`: the peer received that range twice (Linux
    /// `tcp_check_dsack` / `tcp_dsack_seen`). Returns how many duplicate segments it reports
    /// (one per MSS, at least one), or 0 for a dubious one: wider than the largest window the
    /// peer offered, or more duplicates reported over the connection than segments were ever
    /// sent again. A duplicate that counts reached the peer: it is a delivered segment (Linux
    /// `sack_delivered`), and if it was a retransmission of the current episode, that
    /// retransmission was unnecessary (RFC 3708's detection).
    fn on_dsack(&mut self, snd: &Sender, start: SeqNum, end: SeqNum, ctr: &mut Counters) -> u32 {
        ctr.dsack_recv += 1;
        let (len, mss) = (end - start, snd.mss.max(1));
        if len > snd.max_wnd {
            return 0;
        }
        let segs = len.div_ceil(mss).max(1);
        self.kept.dsack_dups = self.kept.dsack_dups.saturating_add(segs);
        if u64::from(self.kept.dsack_dups) > self.kept.retransmits {
            return 0;
        }
        ctr.dsack_recv_segs += u64::from(segs);
        self.kept.rack.on_dsack(snd.una, snd.max);
        if let Some(marker) = self.kept.undo_marker
            && end > marker
            && self.kept.undo_retrans > 0
            // Below SND.UNA the scoreboard has forgotten the segments: count MSS-sized
            // pieces. Above it, only ranges that were retransmitted count.
            && (end <= snd.una || snd.sb.any_marked(start, end, EVER_RETRANS))
        {
            self.kept.undo_retrans = self.kept.undo_retrans.saturating_sub(segs);
        }
        segs
    }
}

/// What the scoreboard learned from one ACK, for the steps after SND.UNA has moved.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct AckSummary {
    delivered: Delivered,
    prior_pipe_bytes: u32,
    /// SND.UNA before this ACK (Linux `prior_snd_una`).
    prior_una: SeqNum,
    una_advanced: bool,
    /// The cumulative ACK took a whole segment (or the SYN) off the board (Linux
    /// `FLAG_ACKED`): only then does it give an RTT sample by timestamp and restart the
    /// retransmission timer. One that falls inside the first segment does neither.
    pub(super) acked_whole: bool,
    /// A duplicate ACK in RFC 5681 §2's sense.
    dup: bool,
    dsack: bool,
    /// Start of the lowest segment newly SACKed that had not been retransmitted.
    lowest_new: Option<SeqNum>,
    /// Start of the lowest never-retransmitted segment delivered, cumulatively or by SACK
    /// (with Linux's `high_seq`, its `FLAG_ORIG_SACK_ACKED`).
    lowest_orig: Option<SeqNum>,
    /// Something was newly SACKed (Linux `FLAG_DATA_SACKED`).
    data_sacked: bool,
    /// The ACK's delivery-rate sample, filled in as segments are delivered and finished in
    /// `recovery_after_ack`.
    pub(super) rate: RateSample,
    /// Send times of the earliest and the latest never-retransmitted segments this ACK
    /// acknowledged cumulatively, and whether it acknowledged a retransmitted one (Linux
    /// `first_ackt`, `last_ackt`, `FLAG_RETRANS_DATA_ACKED`)...
    pub(super) first_acked: Option<Instant>,
    pub(super) last_acked: Option<Instant>,
    pub(super) retrans_acked: bool,
    /// ...and of those it SACKed (`first_sackt`, `last_sackt`).
    pub(super) first_sacked: Option<Instant>,
    pub(super) last_sacked: Option<Instant>,
}

impl AckSummary {
    /// The RTT samples this ACK gives from the send times of what it delivered, as Linux's
    /// `tcp_clean_rtx_queue` takes them: (for the RTO: the earliest never-retransmitted
    /// segment acknowledged cumulatively — none if any retransmitted one was (Karn) — else
    /// the earliest SACKed; for congestion control and the minimum RTT: the latest).
    pub(super) fn rtt_samples(&self, now: Instant) -> (Option<Duration>, Option<Duration>) {
        let since = |t: Instant| now.saturating_duration_since(t);
        let (mut seq, mut ca) = (None, None);
        if !self.retrans_acked {
            seq = self.first_acked.map(since);
            ca = self.last_acked.map(since);
        }
        if let Some(first) = self.first_sacked {
            seq = seq.or(Some(since(first)));
            ca = self.last_sacked.map(since);
        }
        (seq, ca)
    }
}

impl Connection {
    /// Everything in flight is gone without congestion being the cause (a path MTU drop, SYN
    /// data the server did not take): mark it all lost and send it again from SND.UNA
    /// (Linux's tcp_simple_retransmit / tcp_non_congestion_loss_retransmit).
    pub(super) fn resend_all_lost(&mut self) {
        self.snd.sb.mark_all_lost();
        // Losses: the recovery state exists from here on.
        Recovery::get(&mut self.recovery, &self.snd.tx);
        self.snd.nxt = self.snd.una;
        self.snd.sampler.invalidate();
    }

    /// Linux's congestion-avoidance state (Open until recovery state exists).
    pub(super) fn ca_state(&self) -> CaState {
        self.recovery.as_ref().map_or(CaState::Open, |r| r.ca_state)
    }

    /// Duplicate ACKs counted as arrived segments (without SACK).
    pub(super) fn reno_sacked(&self) -> u32 {
        self.recovery.as_ref().map_or(0, |r| r.reno_sacked)
    }

    /// Linux `tcp_limit_reno_sacked` and `tcp_check_reno_reordering`: without SACK the
    /// duplicate ACKs counted never exceed what is outstanding less its holes (those marked
    /// lost, at least one). When they would, the excess is taken for reordering: the degree
    /// becomes what is outstanding plus the `acked` segments this ACK acknowledged (capped
    /// at `MAX_REORDERING`). Returns whether the count was cut.
    fn limit_reno_sacked(&mut self, acked: u32, ctr: &mut Counters) -> bool {
        let (out, lost) = (self.snd.sb.outstanding().segs, self.snd.sb.lost().segs);
        let Some(rec) = self.recovery.as_deref_mut() else {
            return false;
        };
        let holes = lost.max(1).min(out);
        if rec.reno_sacked + holes <= out {
            return false;
        }
        rec.reno_sacked = out - holes;
        rec.kept.reordering = (out + acked).min(MAX_REORDERING);
        ctr.reno_reorder += 1;
        true
    }

    /// Whether a duplicate ACK without SACK counts as a segment that arrived (Linux
    /// `tcp_fastretrans_alert`): not while an episode acknowledged up to its high_seq holds
    /// its state (Linux returns before counting it, so it delivers nothing to PRR either),
    /// and in Loss only once something above the timeout's high_seq was sent (F-RTO's new
    /// data or later; `tcp_process_loss`): until then the duplicates are the retransmissions'.
    fn dup_counts_as_reno_sack(&self) -> bool {
        let Some(rec) = self.recovery.as_deref() else {
            return true;
        };
        match rec.ca_state {
            CaState::Recovery => self.snd.una < rec.high_seq,
            CaState::Loss => self.snd.una < rec.high_seq && self.snd.max > rec.high_seq,
            _ => true,
        }
    }

    /// Whether SND.UNA has reached the high_seq of the recovery state's last episode.
    fn episode_acked(&self) -> bool {
        self.recovery
            .as_ref()
            .is_some_and(|r| self.snd.una >= r.high_seq)
    }

    /// The reordering degree in segments, the D-SACK blocks received and the segments sent
    /// again (TCP_INFO).
    pub(super) fn reordering_dsacks_retransmits(&self) -> (u32, u32, u64) {
        if let Some(r) = self.recovery.as_deref() {
            return (r.kept.reordering, r.kept.dsack_dups, r.kept.retransmits);
        }
        let c = self.carried();
        (c.reordering, c.dsack_dups, c.retransmits)
    }

    /// What an earlier recovery state given back left (the initial values if none was).
    fn carried(&self) -> Carried {
        self.snd
            .tx
            .as_deref()
            .and_then(|t| t.carried.as_deref())
            .copied()
            .unwrap_or(Carried::INITIAL)
    }

    /// Step 1 for an acceptable ACK (SND.UNA =< SEG.ACK =< SND.MAX), before SND.UNA moves:
    /// fills in `sum` (default before the call; written in place, not returned, so that the
    /// summary is not copied on every ACK). `dup` says whether it is a duplicate ACK in RFC
    /// 5681 §2's sense.
    pub(super) fn scoreboard_on_ack(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        dup: bool,
        sum: &mut AckSummary,
        ctr: &mut Counters,
    ) {
        let ack = seg.ack;
        sum.prior_pipe_bytes = self.snd.sb.pipe().bytes;
        sum.prior_una = self.snd.una;
        sum.una_advanced = ack > self.snd.una;
        sum.dup = dup;
        sum.rate.prior_in_flight = self.pipe_segs();
        let min_rtt = self.rtt.min_rtt();
        let prior_high_sacked = self.snd.sb.high_sacked();
        if self.opts.sack && !seg.options.sack.is_empty() {
            let rec = Recovery::get(&mut self.recovery, &self.snd.tx);
            let blocks = seg.options.sack.as_slice();
            for (i, &(start, end)) in blocks.iter().enumerate() {
                // RFC 2883 §4: a first block below the cumulative ACK, or inside the second
                // block, reports a duplicate.
                if i == 0
                    && (end <= ack
                        || blocks
                            .get(1)
                            .is_some_and(|&(s2, e2)| start >= s2 && end <= e2))
                {
                    if start < end {
                        let dup = rec.on_dsack(&self.snd, start, end, ctr);
                        sum.dsack = dup > 0;
                        sum.delivered.segs += dup;
                    }
                    continue;
                }
                // RFC 2018 / Linux `tcp_is_sackblock_valid`: a block must lie within what we
                // sent and above what is acknowledged.
                if end <= start || end > self.snd.max || end - start > self.snd.max - self.snd.una {
                    ctr.sack_discard += 1;
                    continue;
                }
                if end <= ack {
                    continue; // acknowledged by this very ACK: nothing to learn
                }
                let start = start.max(ack);
                let rack = &mut rec.kept.rack;
                let mut rate = self.snd.tx.as_deref_mut().map(|t| &mut t.rate);
                let mut lowest = sum.lowest_new;
                let lowest_orig = &mut sum.lowest_orig;
                let rs = &mut sum.rate;
                let (first, last) = (&mut sum.first_sacked, &mut sum.last_sacked);
                let d = self.snd.sb.on_sack(start, end, |s| {
                    rack.on_delivered(s, now, min_rtt);
                    let retrans = s.has(EVER_RETRANS);
                    if let Some(rate) = rate.as_deref_mut() {
                        rate.on_delivered(s.xmit, s.end, &s.tx, retrans, rs);
                    }
                    if !retrans {
                        first.get_or_insert(s.xmit);
                        *last = Some(s.xmit);
                        if lowest.is_none_or(|l| s.start < l) {
                            lowest = Some(s.start);
                        }
                        if lowest_orig.is_none_or(|l| s.start < l) {
                            *lowest_orig = Some(s.start);
                        }
                    }
                });
                sum.lowest_new = lowest;
                sum.data_sacked |= d.segs > 0;
                sum.delivered.bytes += d.bytes;
                sum.delivered.segs += d.segs;
            }
            // Linux `tcp_check_sack_reordering`: a segment SACKed (or acknowledged) below the
            // highest SACKed one arrived out of order by that distance; remember the largest.
            if let Some(low) = sum.lowest_new {
                rec.note_reordering(low, prior_high_sacked, self.snd.mss);
            }
        }
        if sum.una_advanced {
            // Without recovery state nothing was ever SACKed or sent again: RACK needs none of
            // these deliveries (see the module documentation).
            let mut rack = self.recovery.as_deref_mut().map(|r| &mut r.kept.rack);
            let mut rate = self.snd.tx.as_deref_mut().map(|t| &mut t.rate);
            let rs = &mut sum.rate;
            let (first, last) = (&mut sum.first_acked, &mut sum.last_acked);
            let retrans_acked = &mut sum.retrans_acked;
            let lowest_orig = &mut sum.lowest_orig;
            // Nothing on the board (the SYN): what was acknowledged is whole.
            let empty = self.snd.sb.first().is_none();
            // The timestamp a segment sent at `t` carried, if this ACK's echo is meaningful.
            let ts_offset = self.opts.ts().map(|_| self.opts.ts_offset);
            let d = self.snd.sb.on_cum_ack(ack, |s| {
                let retrans = s.has(EVER_RETRANS);
                // RFC 8985 §6.2 step 2 (Linux `tcp_skb_spurious_retrans` in
                // `tcp_clean_rtx_queue`): an ACK echoing a timestamp older than the resend
                // acknowledges an earlier transmission; its send time says nothing. (Only
                // here: Linux's SACK path has just the minimum-RTT test of `on_delivered`.)
                let echo_older = retrans
                    && ts_offset
                        .is_some_and(|off| echo_predates(seg, super::ts_clock(s.xmit, off)));
                if let Some(rack) = rack.as_deref_mut()
                    && !echo_older
                {
                    rack.on_delivered(s, now, min_rtt);
                }
                if let Some(rate) = rate.as_deref_mut() {
                    rate.on_delivered(s.xmit, s.end, &s.tx, retrans, rs);
                }
                if retrans {
                    *retrans_acked = true;
                } else {
                    first.get_or_insert(s.xmit);
                    *last = Some(s.xmit);
                    if lowest_orig.is_none_or(|l| s.start < l) {
                        *lowest_orig = Some(s.start);
                    }
                }
            });
            let mut segs = d.segs;
            if !self.opts.sack
                && let Some(rec) = self.recovery.as_deref_mut()
                && rec.reno_sacked > 0
            {
                // Linux `tcp_remove_reno_sacks`: segments already counted by duplicate ACKs
                // are not delivered again, but every advancing ACK delivers at least one; it
                // filled one hole, the rest of what it acknowledged were those counted.
                let prior = rec.reno_sacked;
                rec.reno_sacked -= prior.min(segs.saturating_sub(1));
                segs = segs.saturating_sub(prior).max(1);
                self.limit_reno_sacked(d.segs, ctr);
            }
            sum.delivered.bytes += d.bytes;
            sum.delivered.segs += segs;
            sum.acked_whole = empty || d.whole;
        } else if dup && !self.opts.sack && self.dup_counts_as_reno_sack() {
            // Linux `tcp_add_reno_sack`: a duplicate ACK stands for one segment that arrived,
            // but never more than what is outstanding and not marked lost (`limit_reno_sacked`).
            Recovery::get(&mut self.recovery, &self.snd.tx).reno_sacked += 1;
            if !self.limit_reno_sacked(0, ctr) {
                sum.delivered.segs += 1;
                sum.delivered.bytes += self.snd.mss;
            }
        }
        self.snd.delivered = self.snd.delivered.wrapping_add(sum.delivered.segs);
    }

    /// Steps 2 to 4, after SND.UNA has moved (and its timers and RTT were handled).
    pub(super) fn recovery_after_ack(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        sum: &mut AckSummary,
        rtt_sample: Option<Duration>,
        ctr: &mut Counters,
    ) {
        // Steps 2 and 3. Without recovery state nothing on the scoreboard was ever SACKed,
        // marked lost or sent again (see the module documentation), so they find nothing to
        // mark, undo or end, and the state stays Open; only an ECN echo would start something
        // (a CWR reduction). Such an ACK (every ACK of a transfer without loss, reordering or
        // ECN marks) goes straight to step 4, as Linux's `tcp_ack` calls
        // `tcp_fastretrans_alert` only for an ACK that is dubious or comes in a state other
        // than Open.
        let (marked, newly_lost) = if self.recovery.is_none() && !self.ecn.is_echo(seg.flags) {
            debug_assert!(
                self.snd.sb.sacked().segs == 0
                    && self.snd.sb.lost().segs == 0
                    && self.snd.sb.retrans().segs == 0,
                "marks on the scoreboard without recovery state"
            );
            (0, false)
        } else {
            self.detect_and_recover(now, seg, sum, ctr)
        };

        // The ACK's delivery-rate sample (Linux `tcp_rate_gen`).
        let rs = &mut sum.rate;
        let delivered = self.snd.delivered;
        let min_rtt = self.rtt.min_rtt_nanos();
        if let Some(tx) = self.snd.tx.as_deref_mut() {
            tx.rate
                .generate(now, delivered, sum.delivered.segs, marked, min_rtt, rs);
        }
        rs.rtt = rtt_sample;

        // Step 4: the congestion window. A model-based controller sets it from the rate
        // sample itself (Linux `cong_control`), in every state.
        if self.cc.is_model_based() {
            let flight = self.flight(now);
            if self.cc.cong_control(&sum.rate, &flight) {
                let (delivered, in_flight) = (self.snd.delivered, self.pipe_segs());
                if let Some(tx) = self.snd.tx.as_deref_mut() {
                    tx.rate.mark_app_limited(delivered, in_flight);
                }
            }
        } else if matches!(self.ca_state(), CaState::Recovery | CaState::Cwr) {
            let mss = self.snd.mss.max(1);
            let ssthresh = (self.cc.ssthresh() / mss).max(1);
            let pipe = self.pipe_segs();
            if let Some(cwnd) = Recovery::get(&mut self.recovery, &self.snd.tx).prr.on_ack(
                sum.delivered.segs,
                pipe,
                ssthresh,
                sum.una_advanced,
                newly_lost,
            ) {
                self.cc.set_cwnd(cwnd.max(1) * mss);
            }
        } else if self.may_raise_cwnd(sum) && sum.delivered.segs > 0 {
            // The controller takes the sample in microseconds (whole ones: measured so).
            let rtt = rtt_sample.map(crate::time::micros_of);
            self.grow_cwnd(now, sum.delivered, sum.prior_pipe_bytes, rtt);
        }
        if self.recovery.is_some() {
            self.give_back_recovery();
        }
    }

    /// Frees the recovery state once it holds nothing an ACK without SACK blocks or ECN echo
    /// would read, so that the connection's later in-order ACKs take `ack_in_order` again
    /// (issue 20: an idle connection carries no recovery state). What must outlive it goes
    /// to the transmit state ([`Carried`]) and comes back with the next one.
    ///
    /// Given back only when:
    /// * the state is Open (no episode, no CWR reduction, not Disorder), no duplicate ACK is
    ///   counted without SACK (`reno_sacked`) and F-RTO holds nothing back (`frto_new`);
    /// * nothing on the scoreboard is SACKed, lost or sent again, now or ever
    ///   (`EVER_RETRANS`), so every segment in flight is an original, and
    /// * none was sent before RACK's most recently sent delivered segment, and the reordering
    ///   timer is not armed. Then RACK's loss test finds nothing now, and as the first
    ///   delivery after this one (cumulative or SACKed) is of a segment sent after that one,
    ///   it replaces the forgotten segment, its RTT and the highest delivered end as it would
    ///   have replaced them had they been kept.
    ///
    /// What is not carried is reset by whatever reads it next: PRR, `high_seq`,
    /// `retrans_stamp` and `frto` by the start of the next episode (`enter_recovery`,
    /// `enter_loss`, `enter_cwr`; Open reads none of them).
    #[inline(never)]
    fn give_back_recovery(&mut self) {
        if !give_back_on() || self.snd.tx.is_none() {
            return;
        }
        let Some(rec) = self.recovery.as_deref() else {
            return;
        };
        let sb = &self.snd.sb;
        let clean = rec.ca_state == CaState::Open
            && rec.reno_sacked == 0
            && !rec.frto_new
            && sb.sacked().segs == 0
            && sb.lost().segs == 0
            && sb.retrans().segs == 0
            && !self.timers.is_armed(Timer::Reorder)
            && sb.first().is_none_or(|s| !rec.kept.rack.sent_before(s))
            && !sb.any_marked(self.snd.una, self.snd.max, EVER_RETRANS);
        if !clean {
            return;
        }
        let carried = rec.carried();
        let tx = self.snd.tx.as_deref_mut().expect("checked above");
        match tx.carried.as_deref_mut() {
            Some(c) => *c = carried,
            None => tx.carried = Some(Box::new(carried)),
        }
        self.recovery = None;
        #[cfg(test)]
        GIVEN_BACK.with(|c| c.set(c.get() + 1));
    }

    /// Step 4 for a window-based controller outside a window reduction, on an ACK that may
    /// raise the window and delivered something: `delivered` with `in_flight` bytes in flight
    /// before the ACK, and the ACK's RTT sample in microseconds.
    #[inline(always)]
    pub(super) fn grow_cwnd(
        &mut self,
        now: Instant,
        delivered: Delivered,
        in_flight: u32,
        rtt: Option<u64>,
    ) {
        let sample = AckSample {
            now,
            bytes: delivered.bytes,
            segments: delivered.segs,
            in_flight,
            rtt,
            cwnd_limited: self.is_cwnd_limited(),
            snd_una: self.snd.una,
            snd_nxt: self.snd.max,
        };
        self.cc.on_ack(&sample);
    }

    /// Steps 2 and 3 of [`recovery_after_ack`](Self::recovery_after_ack): SACK reneging,
    /// the Loss state's undo and F-RTO, loss detection, undoing a spurious episode, and the
    /// recovery state's transitions. Returns the segments newly marked lost (lost
    /// retransmissions included) and whether the lost count grew.
    #[inline(never)]
    fn detect_and_recover(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        sum: &AckSummary,
        ctr: &mut Counters,
    ) -> (u32, bool) {
        // RFC 2018 §8: a receiver may discard data it SACKed. The cumulative ACK stopping at
        // a SACKed segment suggests it did; give it a moment to go on (Linux
        // `tcp_check_sack_reneging`: half an RTT, at least 10 ms), then time out, which
        // forgets the SACK information.
        if sum.una_advanced && self.snd.sb.first().is_some_and(|s| s.has(SACKED)) {
            let delay = self
                .rtt
                .srtt()
                .map_or(Duration::ZERO, |s| s / 2)
                .max(Duration::from_millis(10));
            let at = now + delay;
            if self.timers.get(Timer::Retransmit).is_none_or(|t| t > at) {
                self.timers.arm(Timer::Retransmit, at);
            }
        }

        // An undo in the Loss state settles the state for this ACK (Linux
        // `tcp_process_loss` returns once `tcp_try_undo_loss` has acted).
        let loss_settled = self.ca_state() == CaState::Loss && self.process_loss(seg, sum, ctr);

        let marked = if self.try_undo_partial(seg, sum, ctr) {
            0
        } else {
            self.detect_losses(now, sum.una_advanced)
        };
        // PRR's "new loss" (Linux `rs->losses`, counted by `tcp_sum_lost`): lost
        // retransmissions count too, though they were marked lost already.
        let newly_lost = marked > 0;

        // Spurious episode? All its retransmissions D-SACKed (RFC 3708), or the timestamps
        // say the original arrived (RFC 3522, Linux `tcp_packet_delayed`). The D-SACKs may
        // come after the episode is over, when the originals were delayed by more than the
        // retransmissions took (reordering by more than an RTT): the undo information is
        // kept until the next episode, as Linux's `tcp_try_undo_dsack` does.
        if let Some(rec) = self.recovery.as_deref()
            && rec.kept.undo_marker.is_some()
        {
            let in_episode = matches!(rec.ca_state, CaState::Recovery | CaState::Loss);
            let all_dsacked =
                sum.dsack && rec.kept.undo_retrans == 0 && rec.kept.episode_retrans > 0;
            let ts_says_delayed =
                in_episode && self.snd.una >= rec.high_seq && rec.echo_predates_retransmission(seg);
            if all_dsacked || ts_says_delayed {
                if in_episode {
                    ctr.full_undo += 1;
                } else {
                    ctr.dsack_undo += 1;
                }
                if all_dsacked && let Some(rec) = self.recovery.as_deref_mut() {
                    // Linux `tcp_try_undo_dsack`: the reordering window persists longer.
                    rec.kept.rack.on_dsack_undo();
                }
                if in_episode && self.non_sack_holds_episode() {
                    // Linux `tcp_try_undo_recovery`: the window comes back, the state stays.
                    self.cc.undo();
                    self.forget_undo();
                } else {
                    self.undo();
                }
            }
        }

        let ca_state = self.ca_state();
        match ca_state {
            CaState::Loss if loss_settled => {}
            CaState::Recovery | CaState::Loss
                if self
                    .recovery
                    .as_ref()
                    .is_some_and(|r| self.snd.una >= r.high_seq) =>
            {
                if ca_state == CaState::Recovery
                    && !self.opts.sack
                    && let Some(rec) = self.recovery.as_deref_mut()
                {
                    // Linux `tcp_reset_reno_sack` as fast recovery ends (or holds).
                    rec.reno_sacked = 0;
                }
                if self.non_sack_holds_episode() {
                    return (marked, newly_lost);
                }
                // RFC 6582 §3.2 step 3 / RFC 6937: the episode is over; the window is what
                // the reduction aimed for, unless an undo restored it (Linux
                // `tcp_end_cwnd_reduction`, which asks `undo_marker`, and leaves a
                // model-based controller's window alone).
                let ssthresh = self.cc.ssthresh();
                let undone = self
                    .recovery
                    .as_ref()
                    .is_some_and(|r| r.kept.undo_marker.is_none());
                if ca_state == CaState::Recovery
                    && !undone
                    && ssthresh != u32::MAX
                    && !self.cc.is_model_based()
                {
                    self.cc.set_cwnd(ssthresh);
                }
                if let Some(rec) = self.recovery.as_deref_mut() {
                    rec.kept.rack.on_recovery_end();
                }
                self.end_episode(true);
                // Loss already evident beyond the old episode (marked by this very ACK or
                // before) starts the next one on this ACK (Linux `tcp_fastretrans_alert`:
                // the state-exit step falls through to `tcp_time_to_recover`), so the
                // controller sees one continuous recovery: BBR keeps growing its window
                // instead of restoring it on this ACK and cutting it to what is in flight
                // on the next. Only with SACK: without it the marks left at this point are
                // the old episode's, and starting over on them cost the goodput table's
                // no-SACK rows up to 3× (Linux marks lost without SACK only on entry).
                if self.opts.sack && self.snd.sb.lost().segs > 0 {
                    self.enter_recovery(now, ctr);
                }
            }
            // RFC 3168 §6.1.2: the reduction for an ECN echo holds until an ACK covers more
            // than what was outstanding when it began (Linux: "something *above* high_seq",
            // so that the CWR reached the receiver), then cwnd = ssthresh.
            CaState::Cwr
                if self
                    .recovery
                    .as_ref()
                    .is_some_and(|r| self.snd.una > r.high_seq) =>
            {
                let ssthresh = self.cc.ssthresh();
                if ssthresh != u32::MAX && !self.cc.is_model_based() {
                    self.cc.set_cwnd(ssthresh);
                }
                self.end_episode(false);
            }
            CaState::Cwr if self.snd.sb.lost().segs > 0 => self.enter_recovery(now, ctr),
            CaState::Open | CaState::Disorder => {
                if self.snd.sb.lost().segs > 0 {
                    self.enter_recovery(now, ctr);
                } else if self.ecn.is_echo(seg.flags) {
                    self.enter_cwr(now);
                } else if let Some(rec) = self.recovery.as_deref_mut() {
                    rec.ca_state = if self.snd.sb.sacked().segs > 0 || rec.reno_sacked > 0 {
                        CaState::Disorder
                    } else {
                        CaState::Open
                    };
                }
            }
            _ => {}
        }
        (marked, newly_lost)
    }

    /// Linux `tcp_may_raise_cwnd`: the window grows on an ACK that advances SND.UNA (RFC
    /// 5681), and once the reordering degree is above the duplicate threshold on one that
    /// only SACKs new data too (Linux `FLAG_FORWARD_PROGRESS`): with a hole open most of the
    /// time, deliveries by SACK alone would otherwise not count towards growth.
    fn may_raise_cwnd(&self, sum: &AckSummary) -> bool {
        sum.una_advanced
            || (sum.data_sacked
                && self
                    .recovery
                    .as_ref()
                    .is_some_and(|r| r.kept.reordering > DUP_THRESH))
    }

    /// Linux `tcp_try_undo_partial`: in fast recovery, an ACK that advances SND.UNA short of
    /// the episode's end and echoes a timestamp older than its first retransmission (RFC
    /// 3522): the hole was filled by a delayed original, not by our resend. That is
    /// reordering (RACK's window opens, Linux `tcp_check_sack_reordering`), and once no
    /// retransmission is out the window reduction is undone and the episode ends. While some
    /// are out, this ACK marks nothing more lost (it returns true), as in Linux.
    ///
    /// Only with SACK: Linux runs it without SACK too, but there duplicate ACKs of earlier
    /// resends start needless recoveries that this then undoes to the window before them; on
    /// the goodput table that cost NewReno without SACK at 50 ms / no loss 74 % (9.8 → 2.5
    /// Mbit/s), not yet traced further.
    fn try_undo_partial(&mut self, seg: &Repr<'_>, sum: &AckSummary, ctr: &mut Counters) -> bool {
        let (una, mss, fack) = (self.snd.una, self.snd.mss, self.snd.sb.high_sacked());
        let Some(rec) = self.recovery.as_deref_mut() else {
            return false;
        };
        if !self.opts.sack
            || rec.ca_state != CaState::Recovery
            || !sum.una_advanced
            || una >= rec.high_seq
            || rec.kept.undo_marker.is_none()
            || !rec.echo_predates_retransmission(seg)
        {
            return false;
        }
        rec.note_reordering(sum.prior_una, fack, mss);
        if self.snd.sb.retrans().segs > 0 {
            return true;
        }
        ctr.partial_undo += 1;
        self.undo();
        false
    }

    /// An ACK in the Loss state, before loss detection (Linux `tcp_process_loss`): undo a
    /// timeout shown spurious, and F-RTO (RFC 5682 §3.1, the SACK-enhanced variant, or §2's
    /// basic one without SACK, as
    /// Linux runs it).
    ///
    /// * An ACK that advances SND.UNA undoes the timeout when the timestamps say the
    ///   original transmissions arrived (RFC 3522, `tcp_try_undo_loss`) or D-SACKs reported
    ///   every retransmission of the episode.
    /// * Step 3b: an ACK (or SACK) for data sent before the timeout and never sent again
    ///   shows the timeout was spurious: the window is restored and nothing more is resent.
    /// * Step 2b: the first ACK that advances SND.UNA without completing the episode lets new
    ///   data go before further retransmissions (if the windows allow any), so that the next
    ///   ACK can tell a spurious timeout from a real loss.
    /// * Step 3a: a SACK or duplicate ACK after that new data went out: the loss was real,
    ///   and recovery goes on as after any timeout (retransmitting what is lost).
    ///
    /// Returns true when it undid the timeout: the state is then settled for this ACK.
    fn process_loss(&mut self, seg: &Repr<'_>, sum: &AckSummary, ctr: &mut Counters) -> bool {
        let (una, max) = (self.snd.una, self.snd.max);
        let window_open = self.snd.una + self.snd.wnd > self.snd.max;
        let new_data = !self.snd.fin_queued && self.snd.buf_seq() + self.snd.buf.len() > max;
        let Some(rec) = self.recovery.as_deref_mut() else {
            return false;
        };
        rec.frto_new = false;
        let recovered = una >= rec.high_seq;
        if sum.una_advanced && rec.kept.undo_marker.is_some() && rec.kept.episode_retrans > 0 {
            let all_dsacked = rec.kept.undo_retrans == 0;
            if all_dsacked || rec.echo_predates_retransmission(seg) {
                ctr.loss_undo += 1;
                self.undo_loss(false);
                return true;
            }
        }
        if rec.frto {
            // Without SACK a cumulative ACK that also covers a retransmission cannot show that
            // the originals it covers arrived before the timeout's resend did (Linux clears
            // `FLAG_ORIG_SACK_ACKED` for it in `tcp_clean_rtx_queue`).
            let orig_shown = self.opts.sack || !sum.retrans_acked;
            if orig_shown && sum.lowest_orig.is_some_and(|l| l < rec.high_seq) {
                ctr.spurious_rtos += 1;
                self.undo_loss(true);
                return true;
            }
            if max > rec.high_seq {
                if sum.data_sacked || sum.dup {
                    rec.frto = false;
                }
            } else if sum.una_advanced && !recovered {
                rec.high_seq = max;
                if new_data && window_open {
                    rec.frto_new = true;
                    // Whatever the timeout left unsent stays marked lost; new data goes first.
                    self.snd.nxt = max;
                    return false;
                }
                rec.frto = false;
            }
        }
        // Without SACK, an ACK that advances SND.UNA inside the episode forgets the duplicate
        // ACKs counted (Linux `tcp_process_loss`, `tcp_reset_reno_sack`).
        if !self.opts.sack && sum.una_advanced && !recovered {
            rec.reno_sacked = 0;
        }
        false
    }

    /// The timeout was spurious (Linux `tcp_try_undo_loss`): the window comes back, nothing
    /// counts as lost any more, and what was not yet sent again is not sent again. The state
    /// returns to Open only with SACK or when F-RTO (`frto`) showed it, and not while the
    /// non-SACK hold applies: otherwise it stays Loss until an ACK ends the episode above
    /// its high_seq (Linux leaves it to `tcp_try_undo_recovery` on a later ACK).
    fn undo_loss(&mut self, frto: bool) {
        self.snd.sb.clear_lost();
        self.snd.nxt = self.snd.max;
        self.snd.retries = 0;
        self.cc.undo();
        self.forget_undo();
        if !self.non_sack_holds_episode() && (frto || self.opts.sack) {
            self.end_episode(false);
        }
    }

    /// Linux `tcp_is_non_sack_preventing_reopen` (the rule of RFC 6582 §3.2 step 3 against
    /// false fast retransmits, RFC 2582 before it): without SACK, an ACK that reaches exactly
    /// an episode's high_seq leaves the state as it is until something above it is
    /// acknowledged, so that duplicate ACKs drawn by the episode's own retransmissions do not
    /// look like a new loss. True when the state holds; then, once nothing retransmitted is
    /// outstanding, the episode's retransmission stamp is forgotten (Linux `retrans_stamp`).
    fn non_sack_holds_episode(&mut self) -> bool {
        if self.opts.sack {
            return false;
        }
        let (una, retrans_done) = (self.snd.una, self.snd.sb.any_retrans_done());
        let Some(rec) = self.recovery.as_deref_mut() else {
            return false;
        };
        if una != rec.high_seq {
            return false;
        }
        if !retrans_done {
            rec.retrans_stamp = None;
        }
        true
    }

    /// F-RTO step 2b holds retransmissions back until the next ACK.
    pub(super) fn frto_sending_new(&self) -> bool {
        self.recovery.as_ref().is_some_and(|r| r.frto_new)
    }

    /// F-RTO step 2b could send no new data at once (the peer's window or the congestion
    /// window leaves no room for a segment): F-RTO ends and the resends go now, as Linux's
    /// `tcp_xmit_recovery` does when its push left SND.NXT at high_seq. True when it ended.
    pub(super) fn frto_new_data_stuck(&mut self) -> bool {
        let max = self.snd.max;
        match self.recovery.as_deref_mut() {
            Some(r) if r.frto_new && max <= r.high_seq => {
                r.frto_new = false;
                r.frto = false;
                true
            }
            _ => false,
        }
    }

    /// Step 2: mark what is now known lost. Returns how many segments were marked (lost
    /// retransmissions included).
    fn detect_losses(&mut self, now: Instant, una_advanced: bool) -> u32 {
        if self.snd.sb.is_empty() {
            return 0;
        }
        if self.opts.sack {
            return self.rack_detect(now);
        }
        // Without SACK (Linux `tcp_newreno_mark_lost`): the duplicate-ACK threshold outside
        // recovery, each partial ACK inside it. An ACK at or past the episode's high_seq is
        // not partial: Linux leaves (or holds) the state before it looks for losses.
        let mark = match self.ca_state() {
            CaState::Recovery => una_advanced && !self.episode_acked(),
            CaState::Open | CaState::Disorder => self
                .recovery
                .as_deref()
                .is_some_and(|r| r.reno_sacked >= r.kept.reordering),
            _ => false,
        };
        let n = u32::from(mark && self.snd.sb.mark_head_lost());
        self.count_lost(n);
        n
    }

    /// RFC 8985 §6.2 step 5 and §6.3: mark segments RACK deems lost, and arm the reordering
    /// timer for those that may still arrive. Returns how many were marked.
    fn rack_detect(&mut self, now: Instant) -> u32 {
        let Some(rec) = self.recovery.as_deref() else {
            return 0;
        };
        if rec.kept.rack.end_seq().is_none() {
            return 0;
        }
        // An ACK that ends the episode (SND.UNA at or past its high_seq) is looked at as out
        // of recovery: Linux leaves the state before it runs RACK on that ACK
        // (`tcp_fastretrans_alert`), so a reordering window applies to what it finds, and
        // one or two reordered segments do not start the next episode at once.
        let in_recovery = matches!(rec.ca_state, CaState::Recovery | CaState::Loss)
            && self.snd.una < rec.high_seq;
        let reo_wnd = rec.kept.rack.reo_wnd(
            in_recovery,
            self.snd.sb.sacked().segs,
            self.rtt.min_rtt(),
            self.rtt.srtt(),
        );
        let rack = rec.kept.rack;
        let (marked, next) =
            self.snd
                .sb
                .detect_lost(now, |s| rack.sent_before(s), |s| rack.deadline(s, reo_wnd));
        // Like Linux, the timer runs a little late (TCP_TIMEOUT_MIN, 2 ms) rather than early.
        self.timers
            .set(Timer::Reorder, next.map(|t| t + REO_TIMER_SLACK));
        self.count_lost(marked);
        marked
    }

    /// `n` segments were marked lost (Linux `tp->lost`).
    fn count_lost(&mut self, n: u32) {
        if let Some(tx) = self.snd.tx.as_deref_mut() {
            tx.lost = tx.lost.wrapping_add(n);
        }
    }

    /// The reordering timer fired (RFC 8985 §6.3): look again, and start recovery if that
    /// found a loss.
    pub(super) fn on_reorder_timeout(&mut self, now: Instant, ctr: &mut Counters) {
        if !self.state.is_synchronized() || self.snd.sb.is_empty() {
            return;
        }
        let lost_before = self.snd.sb.lost().segs;
        self.rack_detect(now);
        if self.snd.sb.lost().segs > lost_before
            && matches!(self.ca_state(), CaState::Open | CaState::Disorder)
        {
            self.enter_recovery(now, ctr);
            // Linux `tcp_rack_reo_timeout`: PRR as if one segment had been delivered, so
            // recovery starts with one retransmission, not a burst of them; not for a
            // controller that sets the window itself (BBR: `cong_control`).
            if self.cc.is_model_based() {
                return;
            }
            let mss = self.snd.mss.max(1);
            let ssthresh = (self.cc.ssthresh() / mss).max(1);
            let pipe = self.pipe_segs();
            if let Some(cwnd) = Recovery::get(&mut self.recovery, &self.snd.tx)
                .prr
                .on_ack(1, pipe, ssthresh, false, true)
            {
                self.cc.set_cwnd(cwnd.max(1) * mss);
            }
        }
    }

    /// An ECN echo (RFC 3168 §6.1.2): reduce the window as for a loss, once, by PRR, without
    /// retransmitting (Linux `tcp_enter_cwr`: CWR state, no undo), and say so with CWR.
    fn enter_cwr(&mut self, now: Instant) {
        let mss = self.snd.mss.max(1);
        let rec = Recovery::get(&mut self.recovery, &self.snd.tx);
        rec.high_seq = self.snd.max;
        rec.kept.undo_marker = None;
        rec.prr = Prr::start((self.cc.cwnd() / mss).max(1));
        self.cc.on_congestion_event(now, self.snd.sb.pipe().bytes);
        rec.ca_state = CaState::Cwr;
        self.ecn.queue_cwr();
    }

    /// Loss found: RFC 5681 §3.2 / RFC 6937 §3 "on entering recovery".
    fn enter_recovery(&mut self, now: Instant, ctr: &mut Counters) {
        let mss = self.snd.mss.max(1);
        let rec = Recovery::get(&mut self.recovery, &self.snd.tx);
        // A reduction for an ECN echo under way goes on (Linux `tcp_enter_recovery` only
        // starts one when not in CWR).
        let reducing = rec.ca_state == CaState::Cwr;
        rec.high_seq = self.snd.max;
        rec.kept.undo_marker = Some(self.snd.una);
        rec.kept.undo_retrans = 0;
        rec.kept.episode_retrans = 0;
        rec.retrans_stamp = None;
        if !reducing {
            rec.prr = Prr::start((self.cc.cwnd() / mss).max(1));
            self.cc.on_congestion_event(now, self.snd.sb.pipe().bytes);
        }
        rec.ca_state = CaState::Recovery;
        self.ecn.queue_cwr();
        // No more tail loss probes for this episode (RFC 8985 §7.2: "not in recovery").
        self.timers.stop(Timer::LossProbe);
        if self.opts.sack {
            ctr.sack_recovery += 1;
        } else {
            ctr.reno_recovery += 1;
        }
    }

    /// The retransmission timeout (RFC 6298 §5.4-5.6, RFC 5681 §3.1; Linux
    /// `tcp_enter_loss`): everything not SACKed is lost, the window collapses, and sending
    /// resumes from SND.UNA.
    pub(super) fn enter_loss(&mut self, now: Instant, ctr: &mut Counters) {
        let rec = Recovery::get(&mut self.recovery, &self.snd.tx);
        // RFC 5682 §3.1 step 1 / §3.2, Linux `tcp_enter_loss`: F-RTO watches a timeout
        // unless it interrupts a fast recovery; a repeated timeout is watched again. With
        // SACK or without (RFC 5682 §2, the basic algorithm: duplicate ACKs are step 3a's
        // evidence), as Linux (`frto/frto-without-sack-new-data-first.pkt`).
        let new_recovery = !matches!(rec.ca_state, CaState::Recovery | CaState::Loss);
        rec.frto = new_recovery || self.snd.retries > 1;
        rec.frto_new = false;
        // Linux `tcp_enter_loss` (`tcp_init_undo`): a timeout that starts an episode, or
        // comes after the last one was acknowledged (an episode still holding its state
        // without SACK), can be undone by itself.
        let episode_over = self.snd.una >= rec.high_seq;
        if new_recovery || episode_over || rec.kept.undo_marker.is_none() {
            rec.kept.undo_marker = Some(self.snd.una);
            rec.kept.undo_retrans = 0;
            rec.kept.episode_retrans = 0;
            rec.retrans_stamp = None;
        }
        // Linux `tcp_enter_loss`: ssthresh is recomputed only when no episode is under way
        // (or the last one is over); a timeout during recovery, or a repeated one, keeps the
        // ssthresh that episode set, and only the window collapses.
        if matches!(rec.ca_state, CaState::Open | CaState::Disorder) || episode_over {
            let in_flight = self.snd.max - self.snd.una;
            self.cc.on_rto(now, in_flight);
        } else {
            self.cc.set_cwnd(self.snd.mss.max(1));
        }
        if self.snd.sb.first().is_some_and(|s| s.has(SACKED)) {
            // The peer discarded what it SACKed (RFC 2018 §8): forget every SACK, as Linux's
            // `tcp_timeout_mark_lost` does for a SACKed head.
            self.snd.sb.clear_sacks();
            ctr.sack_reneging += 1;
        }
        // Linux `tcp_enter_loss`: a timeout outside recovery with as many segments SACKed as
        // the duplicate threshold says the reordering degree was overestimated: back to the
        // default at most. (Without SACK the duplicate ACKs counted are forgotten first, in
        // `tcp_timeout_mark_lost`, so they never count here.)
        if matches!(rec.ca_state, CaState::Open | CaState::Disorder)
            && self.snd.sb.sacked().segs >= DUP_THRESH
        {
            rec.kept.reordering = rec.kept.reordering.min(DUP_THRESH);
        }
        let marked = self.snd.sb.mark_all_lost();
        rec.reno_sacked = 0;
        rec.high_seq = self.snd.max;
        rec.ca_state = CaState::Loss;
        self.ecn.queue_cwr();
        self.timers.stop(Timer::Reorder);
        self.count_lost(marked);
        let flight = self.flight(now);
        self.cc.on_loss_state(&flight);
    }

    /// What a model-based controller reads of the connection now.
    pub(super) fn flight(&self, now: Instant) -> Flight {
        let tx = self.snd.tx.as_deref();
        Flight {
            now,
            delivered: self.snd.delivered,
            delivered_at: tx.and_then(|t| t.rate.delivered_at()).unwrap_or(now),
            lost: tx.map_or(0, |t| t.lost),
            in_flight: self.pipe_segs(),
            ca_state: self.ca_state(),
            srtt: self.rtt.srtt(),
            min_rtt: self.rtt.min_rtt(),
            next_departure: tx.map_or(now, |t| t.next_departure.max(now)),
            app_limited: tx.is_some_and(|t| t.rate.is_app_limited()),
        }
    }

    /// The controller starts on an established connection (Linux `tcp_init_congestion_control`
    /// at `tcp_init_transfer`, or on TCP_CONGESTION), with the connection's own randomness.
    pub(super) fn start_congestion_control(&mut self, now: Instant) {
        let flight = self.flight(now);
        let seed = (u64::from(self.snd.iss.0) << 32) | u64::from(self.opts.ts_offset);
        self.cc.init(&flight, seed);
    }

    /// The retransmission timer fired: one more timeout, the first of an episode if none
    /// came since the last ACK of new data (Linux `tcp_update_rto_stats`).
    pub(super) fn count_rto(&mut self) {
        let first = self.snd.retries == 0;
        let rec = Recovery::get(&mut self.recovery, &self.snd.tx);
        rec.kept.total_rto = rec.kept.total_rto.wrapping_add(1);
        if first {
            rec.kept.rto_recoveries = rec.kept.rto_recoveries.wrapping_add(1);
        }
    }

    /// TCP_INFO's counters of retransmissions: bytes sent again, timeouts, and the timeout
    /// episodes (`tcpi_bytes_retrans`, `tcpi_total_rto`, `tcpi_total_rto_recoveries`).
    pub(super) fn retransmission_totals(&self) -> (u64, u16, u16) {
        if let Some(r) = self.recovery.as_deref() {
            return (
                r.kept.bytes_retrans,
                r.kept.total_rto,
                r.kept.rto_recoveries,
            );
        }
        let c = self.carried();
        (c.bytes_retrans, c.total_rto, c.rto_recoveries)
    }

    /// A SYN or SYN-ACK was sent again.
    pub(super) fn on_handshake_retransmitted(&mut self) {
        Recovery::get(&mut self.recovery, &self.snd.tx)
            .kept
            .retransmits += 1;
    }

    /// A segment with `len` payload bytes was sent again (of this episode, if one is under
    /// way).
    pub(super) fn on_retransmitted(&mut self, now: Instant, len: usize) {
        let stamp = self.ts_now(now);
        let rec = Recovery::get(&mut self.recovery, &self.snd.tx);
        rec.kept.retransmits += 1;
        rec.kept.bytes_retrans += len as u64;
        if rec.kept.undo_marker.is_some() {
            rec.kept.undo_retrans += 1;
            rec.kept.episode_retrans += 1;
        }
        if rec.retrans_stamp.is_none() {
            rec.retrans_stamp = Some(stamp);
        }
    }

    /// The episode was spurious: restore the window (Linux `tcp_undo_cwnd_reduction`). RACK's
    /// reordering window does not decay for it (Linux `tcp_try_undo_recovery`).
    fn undo(&mut self) {
        self.cc.undo();
        self.end_episode(false);
    }

    /// An undo done: the episode cannot be undone again (Linux clears `undo_marker`).
    fn forget_undo(&mut self) {
        if let Some(rec) = self.recovery.as_deref_mut() {
            rec.forget_undo();
        }
    }

    /// Back to Open (or Disorder). `keep_undo`: the episode ended normally, and late D-SACKs
    /// may still show it was spurious.
    fn end_episode(&mut self, keep_undo: bool) {
        let sacked = self.snd.sb.sacked().segs;
        let Some(rec) = self.recovery.as_deref_mut() else {
            return;
        };
        if !keep_undo {
            rec.forget_undo();
        }
        rec.retrans_stamp = None;
        rec.ca_state = if sacked > 0 || rec.reno_sacked > 0 {
            CaState::Disorder
        } else {
            CaState::Open
        };
    }

    /// PRR counts what is sent during fast recovery (RFC 6937 §3).
    pub(super) fn prr_on_sent(&mut self) {
        if let Some(rec) = self.recovery.as_deref_mut()
            && matches!(rec.ca_state, CaState::Recovery | CaState::Cwr)
        {
            rec.prr.on_sent(1);
        }
    }

    /// The congestion window in segments (at least one).
    pub(super) fn cwnd_segs(&self) -> u32 {
        (self.cc.cwnd() / self.snd.mss.max(1)).max(1)
    }

    /// Segments in flight (RFC 6675 pipe; duplicate ACKs count as SACKs without SACK).
    pub(super) fn pipe_segs(&self) -> u32 {
        self.snd.sb.pipe().segs.saturating_sub(self.reno_sacked())
    }

    /// Linux `tcp_is_cwnd_limited` (include/net/tcp.h, as Linux's 2022 "tcp: fix
    /// tcp_cwnd_validate() to not forget is_cwnd_limited" left it): sending was held back by
    /// the window in the last round; or, in slow start, the window is below twice what was
    /// in flight at most in that round.
    pub(super) fn is_cwnd_limited(&self) -> bool {
        let (max_packets_out, cwnd_limited) = self
            .snd
            .tx
            .as_ref()
            .map_or((0, false), |t| (t.max_packets_out, t.cwnd_limited));
        if cwnd_limited {
            return true;
        }
        // One read of the window for both tests, the cheaper test first (false on every ACK
        // of an exchange that keeps a segment or two in flight).
        let cwnd = self.cc.cwnd();
        (cwnd / self.snd.mss.max(1)).max(1) < 2 * max_packets_out && cwnd < self.cc.ssthresh()
    }

    /// Linux `tcp_cwnd_validate`, after a round of sending: remember the most segments in
    /// flight this round trip and whether the congestion window was the limit.
    pub(super) fn validate_cwnd(&mut self, limited: bool) {
        let out = self.snd.sb.outstanding().segs;
        let (una, max) = (self.snd.una, self.snd.max);
        let tx = self.snd.transmit();
        if una >= tx.cwnd_usage_seq || limited || (!tx.cwnd_limited && out > tx.max_packets_out) {
            tx.max_packets_out = out;
            tx.cwnd_usage_seq = max;
            tx.cwnd_limited = limited;
        }
    }
}

/// The ACK `seg` echoes a timestamp (RFC 7323) older than `stamp` (Linux
/// `tcp_tsopt_ecr_before`): what it acknowledges was sent before `stamp`.
fn echo_predates(seg: &Repr<'_>, stamp: u32) -> bool {
    seg.options
        .timestamps
        .is_some_and(|t| t.tsecr != 0 && (t.tsecr.wrapping_sub(stamp) as i32) < 0)
}

#[cfg(test)]
std::thread_local! {
    static GIVE_BACK: core::cell::Cell<bool> = const { core::cell::Cell::new(true) };
    static GIVEN_BACK: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// Tests only: turns giving the recovery state back on or off for the connections this
/// thread drives, so that a test can compare; returns how many were given back on this
/// thread so far.
#[cfg(test)]
pub(crate) fn set_give_back(on: bool) -> u64 {
    GIVE_BACK.with(|c| c.set(on));
    GIVEN_BACK.with(|c| c.get())
}

/// Giving the recovery state back is on (always, outside tests).
#[inline(always)]
fn give_back_on() -> bool {
    #[cfg(test)]
    return GIVE_BACK.with(|c| c.get());
    #[cfg(not(test))]
    true
}
