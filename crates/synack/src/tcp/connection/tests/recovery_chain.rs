//! Back-to-back fast recoveries, segment by segment: the ACK that ends one episode may
//! already show a loss beyond it (a segment sent during the episode, with three SACKed
//! above it). Linux's `tcp_fastretrans_alert` then starts the next episode on that same
//! ACK (the state-exit step falls through to `tcp_time_to_recover`), so a model-based
//! controller sees one continuous recovery: BBR neither restores its window on this ACK
//! nor cuts it to what is in flight on the next (`bbr_set_cwnd_to_recover_or_restore`).

use std::sync::Arc;

use super::harness::*;
use crate::tcp::{CaState, Config, Connection, Counters, SeqNum};
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, Options};

const ISS: u32 = 100;
const SEG: u32 = 1000;

/// Segment k (0-based) covers [101 + 1000k, 1101 + 1000k).
fn seq(k: u32) -> u32 {
    ISS + 1 + k * SEG
}

fn index(s: &Seg) -> u32 {
    (s.seq().0 - seq(0)) / SEG
}

/// An ACK from the receiver with one SACK block (none if empty).
fn ack(ack: u32, sack: (u32, u32)) -> Seg {
    let mut i = Inject::to_client(Flags::ACK, 300, ack);
    let mut o = Options::default();
    if sack.0 < sack.1 {
        o.sack.push((SeqNum(sack.0), SeqNum(sack.1)));
    }
    i.options = o;
    i.seg()
}

/// Drains `c` at `now` into `sent` (segment indexes, in order).
fn send(c: &mut Connection, now: Instant, ctr: &mut Counters, sent: &mut Vec<u32>) {
    sent.extend(drain(c, now, ctr).iter().map(index));
}

/// A client of `cc` (MSS 1000, SACK, no timestamps, no pacing) whose segment 0 is lost:
/// the first episode. The segments after it are SACKed as they are sent, so that the
/// recovery releases new data beyond the episode's end, and the resend of 0 arrives. Then one ACK
/// covers everything up to the first segment sent after the episode began, `h`, and SACKs
/// everything after it (only `h + 1` when `one_above`): the episode is over, and `h` is
/// lost. Returns the client, its counters, `h`, and the time of that ACK.
fn chained(
    cc: crate::tcp::congestion::Algorithm,
    one_above: bool,
) -> (Connection, Counters, u32, Instant) {
    let cfg = Arc::new(Config {
        pacing: false,
        timestamps: false,
        window_scaling: false,
        congestion: cc,
        ..config()
    });
    let mut ctr = Counters::default();
    let mut now = Instant::from_micros(100);
    let mut c = sack_client_established(&cfg, ISS, SEG as u16, now, &mut ctr);
    let len = (60 * SEG) as usize;
    assert_eq!(c.send(&vec![7u8; len]).unwrap(), len);
    let mut sent = Vec::new();
    send(&mut c, now, &mut ctr, &mut sent);
    assert_eq!(sent, (0..10).collect::<Vec<_>>(), "the initial window");

    // SACKs for 1, 2, 3, ...: after three, segment 0 is lost and resent (RACK may wait
    // for its reordering window: let the timers run).
    let mut k = 1;
    let mut high = None;
    now += Duration::from_micros(200);
    while high.is_none() {
        assert!(k < 10, "no recovery: {sent:?}");
        let before = sent.len();
        deliver(&mut c, now, &ack(seq(0), (seq(1), seq(k + 1))), &mut ctr);
        send(&mut c, now, &mut ctr, &mut sent);
        for _ in 0..10 {
            if sent[before..].contains(&0) {
                break;
            }
            match c.poll_timeout() {
                Some(at) if at < now + Duration::from_millis(1) => {
                    now = at;
                    c.handle_timeout(now, &mut ctr);
                    send(&mut c, now, &mut ctr, &mut sent);
                }
                _ => break,
            }
        }
        if let Some(p) = sent[before..].iter().position(|&s| s == 0) {
            // The episode ends with everything sent before the resend.
            high = Some(sent[..before + p].iter().max().copied().unwrap_or(0) + 1);
        }
        k += 1;
    }
    let h = high.expect("in recovery");
    assert_eq!(c.info().ca_state, CaState::Recovery);
    assert_eq!(ctr.sack_recovery, 1);

    // More SACKs let the recovery send new data until four segments beyond `h` are out.
    while sent.iter().max().copied().unwrap_or(0) < h + 3 {
        assert!(k < 40, "no new data beyond the episode: {sent:?}");
        now += Duration::from_micros(100);
        // Everything sent below `h` is SACKed as it goes (a segment acknowledged later
        // without a SACK first would count as reordering and open RACK's window).
        let top = sent.iter().max().copied().unwrap_or(0).min(h - 1);
        deliver(&mut c, now, &ack(seq(0), (seq(1), seq(top + 1))), &mut ctr);
        send(&mut c, now, &mut ctr, &mut sent);
        k += 1;
    }
    assert_eq!(c.info().ca_state, CaState::Recovery, "{sent:?}");
    assert_eq!(ctr.sack_recovery, 1);

    // The resend of 0 arrived: all up to `h` is acknowledged, `h` is missing, and what
    // follows it is SACKed.
    now += Duration::from_millis(1);
    let top = if one_above {
        h + 1
    } else {
        sent.iter().max().copied().unwrap_or(0)
    };
    deliver(
        &mut c,
        now,
        &ack(seq(h), (seq(h + 1), seq(top + 1))),
        &mut ctr,
    );
    (c, ctr, h, now)
}

/// CUBIC, unpaced: the new data goes out at once, so RACK marks `h` lost on the final ACK.
/// (BBR paces; there the segments after `h` leave later than the resend of 0, and RACK's
/// RTT on that ACK comes out longer than the newest SACKed segment's, so `h` waits for the
/// reordering timer instead: not this test's subject.)
#[test]
fn a_loss_evident_when_recovery_ends_starts_the_next_episode_on_the_same_ack() {
    let (c, ctr, h, _) = chained(crate::tcp::congestion::Algorithm::Cubic, false);
    assert_eq!(c.info().ca_state, CaState::Recovery, "segment {h} is lost");
    assert_eq!(ctr.sack_recovery, 2, "a second episode");
}

/// With one segment SACKed beyond `h` (fewer than the three of the duplicate-ACK threshold,
/// and no reordering seen), the ACK that ends the episode is looked at as out of recovery,
/// as Linux leaves the state before RACK runs on it: RACK's reordering window applies, so
/// `h` is not lost on that ACK (where a window of zero, the one during recovery, would mark
/// it) but when the reordering timer fires, before any retransmission timeout.
#[test]
fn one_segment_sacked_beyond_the_end_waits_for_the_reordering_window() {
    let (mut c, mut ctr, h, now) = chained(crate::tcp::congestion::Algorithm::Cubic, true);
    assert_ne!(
        c.info().ca_state,
        CaState::Recovery,
        "segment {h} not yet lost"
    );
    assert_eq!(ctr.sack_recovery, 1);
    // Let the timers run (a loss probe may go first) until the reordering timer marks it.
    for _ in 0..10 {
        if ctr.sack_recovery == 2 {
            break;
        }
        let at = c.poll_timeout().expect("a timer");
        assert!(at > now && at < now + Duration::from_millis(100), "{at:?}");
        c.handle_timeout(at, &mut ctr);
        drain(&mut c, at, &mut ctr);
    }
    assert_eq!(ctr.sack_recovery, 2, "segment {h} lost on a timer");
    assert_eq!(ctr.timeouts, 0, "not by a retransmission timeout");
}
