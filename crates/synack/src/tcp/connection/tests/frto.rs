//! Spurious retransmission timeouts, segment by segment: F-RTO (RFC 5682 §3.1, the
//! SACK-enhanced variant as Linux runs it, and §2's basic one without SACK) and the timestamp undo of a timeout (RFC 3522,
//! Linux `tcp_try_undo_loss`); and the timestamp undo of a fast recovery that reordering
//! started, on a partial ACK (Linux `tcp_try_undo_partial`).
//!
//! Each test opens a client against injected segments (MSS 1000, SACK on, IW 10), lets it
//! send ten segments, lets the retransmission timer fire (nothing was acknowledged) and then
//! answers as the receiver would in each case.

use std::sync::Arc;

use super::harness::*;
use crate::tcp::{CaState, Config, Connection, Counters, SeqNum, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, Options};

const T0: Instant = Instant::ZERO;
/// Client ISS: data starts at 101, segment k (0-based) covers [101 + 1000k, 1101 + 1000k).
const ISS: u32 = 100;
const SEG: u32 = 1000;

fn seq(k: u32) -> u32 {
    ISS + 1 + k * SEG
}

/// An established client (SRTT 10 ms, so the RTO is at its 200 ms floor) that has sent ten
/// segments of a 30-segment write (the initial window) at 10 ms. Segment 10 onwards is new
/// data. Returns the client, its
/// counters, the send time and the TSval of the first segment (0 without timestamps).
fn sending_client(timestamps: bool, sack: bool) -> (Connection, Counters, Instant, u32) {
    let cfg = Arc::new(Config {
        timestamps,
        sack,
        window_scaling: false,
        ..config()
    });
    let mut c = client(&cfg);
    let mut ctr = Counters::default();
    c.connect(T0, SERVER, SeqNum(ISS), &mut ctr).unwrap();
    drain(&mut c, T0, &mut ctr);
    // With timestamps the option takes 12 bytes of each segment: data stays 1000 a segment.
    let mss = SEG as u16 + if timestamps { 12 } else { 0 };
    let mut synack = Inject::to_client(Flags::SYN | Flags::ACK, 299, ISS + 1)
        .mss(mss)
        .sack_permitted();
    if timestamps {
        synack = synack.ts(7, 1);
    }
    let t = Instant::from_millis(10);
    deliver(&mut c, t, &synack.seg(), &mut ctr);
    assert_eq!(c.state(), State::Established);
    drain(&mut c, t, &mut ctr);
    c.send(&vec![5u8; 30 * SEG as usize]).unwrap();
    let out = drain(&mut c, t, &mut ctr);
    assert_eq!(
        seqs(&out),
        (0..10).map(seq).collect::<Vec<_>>(),
        "the initial window"
    );
    let tsval = out[0].repr().options.timestamps.map_or(0, |t| t.tsval);
    (c, ctr, t, tsval)
}

/// [`sending_client`] whose first retransmission timeout has just fired and resent segment
/// 0, after the tail loss probe (RFC 8985 §7) sent segment 10. Returns the client, its
/// counters, the moment of the timeout and the first TSval.
fn timed_out_client(timestamps: bool) -> (Connection, Counters, Instant, u32) {
    let (mut c, mut ctr, t, tsval) = sending_client(timestamps, true);
    let pto = c.poll_timeout().unwrap();
    assert!(
        pto < t + Duration::from_millis(50),
        "the probe timer first: {pto:?}"
    );
    c.handle_timeout(pto, &mut ctr);
    let out = drain(&mut c, pto, &mut ctr);
    assert_eq!(seqs(&out), vec![seq(10)], "the probe is new data");
    assert_eq!(ctr.loss_probes, 1);
    let rto = c.poll_timeout().unwrap();
    let after = rto - pto;
    assert!(
        after >= Duration::from_millis(209) && after <= Duration::from_millis(210),
        "SRTT 10 ms + the 200 ms floor: {after:?}"
    );
    c.handle_timeout(rto, &mut ctr);
    let out = drain(&mut c, rto, &mut ctr);
    assert_eq!(seqs(&out), vec![seq(0)], "one segment resent, the head");
    assert_eq!(ctr.timeouts, 1);
    assert_eq!(c.info().ca_state, CaState::Loss);
    assert_eq!(c.info().cwnd, SEG);
    (c, ctr, rto, tsval)
}

/// An ACK from the receiver, with SACK blocks (and an echoed timestamp).
fn ack(ack: u32, sack: &[(u32, u32)], tsecr: Option<u32>) -> Seg {
    let mut i = Inject::to_client(Flags::ACK, 300, ack);
    let mut o = Options::default();
    for &(s, e) in sack {
        o.sack.push((SeqNum(s), SeqNum(e)));
    }
    o.timestamps = tsecr.map(|e| crate::wire::tcp::Timestamps { tsval: 9, tsecr: e });
    i.options = o;
    i.seg()
}

fn seqs(out: &[Seg]) -> Vec<u32> {
    out.iter().map(|s| s.seq().0).collect()
}

/// Step 3b: the timeout was spurious (the ACKs were only late). The first ACK after it
/// covers segment 1, never sent again: the window comes back, nothing counts as lost, and
/// what follows is new data (segment 10 on), not a resend of segments 2 to 9.
#[test]
fn frto_undoes_a_spurious_timeout() {
    let (mut c, mut ctr, rto, _) = timed_out_client(false);
    let t = rto + Duration::from_millis(1);
    deliver(&mut c, t, &ack(seq(2), &[], None), &mut ctr);
    assert_eq!(ctr.spurious_rtos, 1);
    let info = c.info();
    assert_eq!(info.ca_state, CaState::Open);
    assert_eq!(info.lost, 0);
    let out = drain(&mut c, t, &mut ctr);
    // cwnd 10 restored, + 2 for the two segments this ACK delivered (slow start); nine in
    // flight (segments 2 to 10).
    assert_eq!(info.cwnd, 12 * SEG);
    assert_eq!(seqs(&out), vec![seq(11), seq(12), seq(13)], "new data only");
    assert_eq!(ctr.retrans_segs, 1, "only the timeout's own resend");
}

/// Steps 2b and 3a: the loss was real. The first ACK covers only the resent head: new
/// data goes (two segments, cwnd 2) instead of segment 1. The next ACK SACKs that new data
/// and leaves segment 1 missing: recovery goes on, segment 1 is resent and nothing undone.
#[test]
fn frto_sends_new_data_then_finds_the_loss_real() {
    let (mut c, mut ctr, rto, _) = timed_out_client(false);
    let t = rto + Duration::from_millis(10);
    deliver(&mut c, t, &ack(seq(1), &[], None), &mut ctr);
    assert_eq!(c.info().ca_state, CaState::Loss);
    let out = drain(&mut c, t, &mut ctr);
    assert_eq!(
        seqs(&out),
        vec![seq(11), seq(12)],
        "step 2b: new data first"
    );
    assert_eq!(ctr.retrans_segs, 1);

    let t = t + Duration::from_millis(10);
    deliver(
        &mut c,
        t,
        &ack(seq(1), &[(seq(11), seq(12))], None),
        &mut ctr,
    );
    assert_eq!(ctr.spurious_rtos, 0);
    assert_eq!(c.info().ca_state, CaState::Loss);
    let out = drain(&mut c, t, &mut ctr);
    assert_eq!(
        seqs(&out),
        vec![seq(1)],
        "step 3a: the lost segments go again"
    );
    assert_eq!(ctr.retrans_segs, 2);
    assert_eq!(c.info().cwnd, 2 * SEG, "nothing undone");
}

/// A repeated timeout (no ACK between them) is watched again (RFC 5682 §3.2): the ACK of
/// segment 1, never resent, after the second timeout's resend of the head shows it spurious.
#[test]
fn frto_watches_a_repeated_timeout() {
    let (mut c, mut ctr, _, _) = timed_out_client(false);
    let rto2 = c.poll_timeout().unwrap();
    c.handle_timeout(rto2, &mut ctr);
    assert_eq!(ctr.timeouts, 2);
    let out = drain(&mut c, rto2, &mut ctr);
    assert_eq!(seqs(&out), vec![seq(0)]);
    let t = rto2 + Duration::from_millis(1);
    deliver(&mut c, t, &ack(seq(2), &[], None), &mut ctr);
    assert_eq!(ctr.spurious_rtos, 1);
    assert_eq!(c.info().ca_state, CaState::Open);
}

/// A timeout that interrupts fast recovery is not watched by F-RTO (RFC 5682 §3.1 step 1,
/// Linux `tcp_enter_loss`): an ACK of never-resent data after it undoes nothing, and the
/// resend walks on from SND.UNA.
#[test]
fn frto_does_not_watch_a_timeout_in_fast_recovery() {
    let (mut c, mut ctr, t, _) = sending_client(false, true);
    // Segments 1 to 4 SACKed: segment 0 is lost (three segments above it), fast recovery.
    let t = t + Duration::from_millis(10);
    deliver(&mut c, t, &ack(seq(0), &[(seq(1), seq(5))], None), &mut ctr);
    assert_eq!(c.info().ca_state, CaState::Recovery);
    let out = drain(&mut c, t, &mut ctr);
    assert_eq!(seqs(&out)[0], seq(0), "fast retransmit");
    let rto = c.poll_timeout().unwrap();
    c.handle_timeout(rto, &mut ctr);
    assert_eq!(ctr.timeouts, 1);
    let out = drain(&mut c, rto, &mut ctr);
    assert_eq!(seqs(&out), vec![seq(0)]);
    // Segments 0 to 5 acknowledged: 5 was never resent, but F-RTO is off.
    let t = rto + Duration::from_millis(1);
    deliver(&mut c, t, &ack(seq(6), &[], None), &mut ctr);
    assert_eq!(ctr.spurious_rtos, 0);
    assert_eq!(c.info().ca_state, CaState::Loss);
    let out = drain(&mut c, t, &mut ctr);
    let resent = seqs(&out);
    assert_eq!(
        resent[..2],
        [seq(6), seq(7)],
        "the resend goes on: {resent:?}"
    );
    assert!(
        resent.iter().all(|&s| s < seq(10)),
        "all resends: {resent:?}"
    );
}

/// RFC 3522 / Linux `tcp_try_undo_loss`: the first ACK after the timeout echoes the
/// timestamp of the original transmission, older than the resend's: the original arrived,
/// and the timeout is undone at once.
#[test]
fn timestamps_undo_a_timeout_on_its_first_ack() {
    let (mut c, mut ctr, rto, orig_ts) = timed_out_client(true);
    let t = rto + Duration::from_millis(1);
    deliver(&mut c, t, &ack(seq(1), &[], Some(orig_ts)), &mut ctr);
    assert_eq!(ctr.loss_undo, 1);
    assert_eq!(ctr.spurious_rtos, 0);
    let info = c.info();
    assert_eq!(info.ca_state, CaState::Open);
    assert_eq!(info.lost, 0);
    assert_eq!(info.cwnd, 11 * SEG, "window restored (10), + 1 delivered");
    let out = drain(&mut c, t, &mut ctr);
    assert_eq!(
        seqs(&out),
        vec![seq(11)],
        "new data: ten in flight (segments 1 to 9 and the probe, segment 10)"
    );
}

/// Without SACK F-RTO runs too (RFC 5682 §2, as Linux). Segments 1 and 2 were queued out of
/// order, 3 was lost: the ACK of 3 after the resend of 0 also covers 1 and 2, sent once only,
/// but without SACK an ACK that covers a retransmission cannot show the originals arrived
/// first (Linux clears `FLAG_ORIG_SACK_ACKED` then): not spurious. It advances SND.UNA
/// short of the timeout's SND.NXT, so new data goes first (step 2b).
#[test]
fn frto_without_sack_sends_new_data_after_an_ack_covering_the_resend() {
    let (mut c, mut ctr, t, _) = sending_client(false, false);
    let rto = c.poll_timeout().unwrap();
    assert_eq!(
        rto,
        t + Duration::from_millis(210),
        "no loss probe without SACK"
    );
    c.handle_timeout(rto, &mut ctr);
    assert_eq!(seqs(&drain(&mut c, rto, &mut ctr)), vec![seq(0)]);
    let t = rto + Duration::from_millis(10);
    deliver(&mut c, t, &ack(seq(3), &[], None), &mut ctr);
    assert_eq!(ctr.spurious_rtos, 0);
    assert_eq!(c.info().ca_state, CaState::Loss);
    let out = seqs(&drain(&mut c, t, &mut ctr));
    assert!(
        !out.is_empty() && out.iter().all(|&s| s >= seq(10)),
        "new data first, {out:?}"
    );
}

/// [`sending_client`] with timestamps whose segments 0 and 1 (`lost` of them) are missing
/// behind three SACKed ones at 20 ms: RACK (no reordering seen yet, so no reordering window)
/// marks them lost and fast recovery resends them. Returns the client, its counters, the
/// moment and the TSvals of the originals and of the resends.
fn reordered_client(lost: u32) -> (Connection, Counters, Instant, u32, u32) {
    let (mut c, mut ctr, _, orig_ts) = sending_client(true, true);
    let t = Instant::from_millis(20);
    let sack = (seq(lost), seq(lost + 3));
    deliver(&mut c, t, &ack(seq(0), &[sack], Some(orig_ts)), &mut ctr);
    let info = c.info();
    assert_eq!(info.ca_state, CaState::Recovery);
    assert_eq!(info.lost, lost);
    assert_eq!(info.reordering, 3);
    let out = drain(&mut c, t, &mut ctr);
    let sent = seqs(&out);
    assert_eq!(
        sent[..lost as usize],
        (0..lost).map(seq).collect::<Vec<_>>(),
        "the resends first (PRR adds new data): {sent:?}"
    );
    assert!(
        c.info().cwnd < 10 * SEG,
        "the window was cut: {}",
        c.info().cwnd
    );
    let resend_ts = out[0].repr().options.timestamps.map_or(0, |t| t.tsval);
    assert!(resend_ts > orig_ts, "{resend_ts} after {orig_ts}");
    (c, ctr, t, orig_ts, resend_ts)
}

/// Linux `tcp_try_undo_partial`: the original of the resent segment 0 was only delayed. The
/// ACK that it fills the hole with echoes its TSval, older than the resend's, and stops short
/// of the episode's end (segment 10): reordering by four segments, not loss. With no resend
/// left in flight the window reduction is undone at once and the episode ends.
#[test]
fn timestamps_undo_a_fast_recovery_on_a_partial_ack() {
    let (mut c, mut ctr, t, orig_ts, _) = reordered_client(1);
    let t = t + Duration::from_millis(3);
    deliver(&mut c, t, &ack(seq(4), &[], Some(orig_ts)), &mut ctr);
    assert_eq!(ctr.partial_undo, 1);
    let info = c.info();
    assert_eq!(info.ca_state, CaState::Open);
    assert_eq!(info.lost, 0);
    assert_eq!(
        info.reordering, 4,
        "SACKed up to segment 4, the hole was at 0"
    );
    assert!(info.cwnd >= 10 * SEG, "window restored: {}", info.cwnd);
    assert_eq!(info.ssthresh, u32::MAX, "still in slow start");
}

/// Linux `tcp_may_raise_cwnd`: once the reordering degree (4 after the undo above) is above
/// the duplicate threshold, an ACK that only SACKs new data grows the window too; before, only
/// an ACK that advanced SND.UNA did, and with a hole open most of the time slow start crawled.
#[test]
fn sacked_data_grows_the_window_once_reordering_was_seen() {
    let (mut c, mut ctr, t, orig_ts, _) = reordered_client(1);
    let t = t + Duration::from_millis(3);
    deliver(&mut c, t, &ack(seq(4), &[], Some(orig_ts)), &mut ctr);
    assert_eq!(c.info().reordering, 4);
    // The restored window filled with new data.
    let sent = seqs(&drain(&mut c, t, &mut ctr));
    assert!(!sent.is_empty());
    let before = c.info().cwnd;
    // Segment 4 is held up; 5 and 6 arrive.
    let t = t + Duration::from_millis(1);
    deliver(
        &mut c,
        t,
        &ack(seq(4), &[(seq(5), seq(7))], Some(orig_ts)),
        &mut ctr,
    );
    let info = c.info();
    assert_eq!(info.ca_state, CaState::Disorder);
    assert_eq!(
        info.cwnd,
        before + 2 * SEG,
        "slow start: one segment per segment SACKed"
    );
}

/// While another resend is in flight the partial ACK only notes the reordering and marks
/// nothing more lost; the undo comes with the ACK that leaves no resend outstanding.
#[test]
fn partial_undo_waits_for_the_resends_in_flight() {
    let (mut c, mut ctr, t, orig_ts, _) = reordered_client(2);
    let t = t + Duration::from_millis(3);
    deliver(
        &mut c,
        t,
        &ack(seq(1), &[(seq(2), seq(5))], Some(orig_ts)),
        &mut ctr,
    );
    assert_eq!(ctr.partial_undo, 0);
    let info = c.info();
    assert_eq!(info.ca_state, CaState::Recovery);
    assert_eq!(
        info.reordering, 5,
        "SACKed up to segment 5, the hole was at 0"
    );
    let t = t + Duration::from_millis(1);
    deliver(&mut c, t, &ack(seq(5), &[], Some(orig_ts)), &mut ctr);
    assert_eq!(ctr.partial_undo, 1);
    assert_eq!(c.info().ca_state, CaState::Open);
    assert!(
        c.info().cwnd >= 10 * SEG,
        "window restored: {}",
        c.info().cwnd
    );
}

/// An ACK that echoes the resend's own timestamp shows the resend filled the hole: a real
/// loss, nothing is undone and the recovery goes on.
#[test]
fn a_partial_ack_of_the_resend_undoes_nothing() {
    let (mut c, mut ctr, t, _, resend_ts) = reordered_client(1);
    let t = t + Duration::from_millis(3);
    deliver(&mut c, t, &ack(seq(4), &[], Some(resend_ts)), &mut ctr);
    assert_eq!(ctr.partial_undo, 0);
    assert_eq!(c.info().ca_state, CaState::Recovery);
    assert_eq!(c.info().reordering, 3);
    assert!(c.info().cwnd < 10 * SEG, "still cut: {}", c.info().cwnd);
}

/// Linux `tcp_dsack_seen`: a D-SACK for a resend reports a segment that reached the peer
/// twice. It counts as delivered (`sack_delivered`: the delivery rate BBR samples and the
/// `acked_sacked` every controller grows by include it), as one duplicate segment in
/// `tcpi_dsack_dups` and TCPDSACKRecvSegs.
#[test]
fn a_dsack_for_a_resend_counts_as_delivered() {
    let (mut c, mut ctr, t, _, resend_ts) = reordered_client(1);
    let t = t + Duration::from_millis(3);
    // The resend filled the hole.
    deliver(&mut c, t, &ack(seq(4), &[], Some(resend_ts)), &mut ctr);
    let before = c.info().delivered;
    assert_eq!(c.info().dsack_dups, 0);
    // Then the delayed original arrives: the same ACK with a D-SACK for segment 0.
    let t = t + Duration::from_millis(1);
    deliver(
        &mut c,
        t,
        &ack(seq(4), &[(seq(0), seq(1))], Some(resend_ts)),
        &mut ctr,
    );
    let info = c.info();
    assert_eq!(info.delivered, before + 1, "the duplicate was delivered");
    assert_eq!(info.dsack_dups, 1);
    assert_eq!((ctr.dsack_recv, ctr.dsack_recv_segs), (1, 1));
}

/// A D-SACK wider than one MSS reports one duplicate per MSS; one reporting more duplicates
/// than were ever resent is dubious (the network duplicated a packet, or the peer lies) and
/// Linux ignores it: nothing delivered, nothing counted but the block itself.
#[test]
fn dsacks_count_per_segment_and_only_up_to_the_resends() {
    let (mut c, mut ctr, t, tsval) = sending_client(true, true);
    let t = t + Duration::from_millis(10);
    deliver(&mut c, t, &ack(seq(2), &[], Some(tsval)), &mut ctr);
    let before = c.info().delivered;
    let t = t + Duration::from_millis(1);
    deliver(
        &mut c,
        t,
        &ack(seq(2), &[(seq(0), seq(2))], Some(tsval)),
        &mut ctr,
    );
    let info = c.info();
    assert_eq!(
        info.delivered, before,
        "no resend, so no duplicate delivered"
    );
    assert_eq!(info.dsack_dups, 2, "two segments' worth reported");
    assert_eq!((ctr.dsack_recv, ctr.dsack_recv_segs), (1, 0));
}
