//! RACK and an ACK for an original that was also resent, segment by segment (RFC 8985 §6.2
//! step 2): when the cumulative ACK echoes a timestamp older than the resend, the original
//! arrived, so the resend's send time says nothing about what the network delivered. Linux
//! skips such a segment in `tcp_clean_rtx_queue` (`tcp_skb_spurious_retrans` before
//! `tcp_rack_advance`); taking it would make RACK believe everything sent before the resend
//! and not yet acknowledged is overdue.

use std::sync::Arc;

use super::harness::*;
use crate::tcp::{Config, Connection, Counters, SeqNum};
use crate::time::Instant;
use crate::wire::tcp::{Flags, Options, Timestamps};

const ISS: u32 = 100;
const SEG: u32 = 1000;

/// Segment k (0-based) covers [101 + 1000k, 1101 + 1000k).
fn seq(k: u32) -> u32 {
    ISS + 1 + k * SEG
}

/// The client's timestamp on its segments.
fn tsval(s: &Seg) -> u32 {
    s.repr().options.timestamps.expect("timestamps").tsval
}

/// An ACK from the receiver echoing `tsecr`, with one SACK block (none if empty).
fn ack(ack: u32, sack: (u32, u32), tsecr: u32) -> Seg {
    let mut i = Inject::to_client(Flags::ACK, 300, ack);
    let mut o = Options::default();
    if sack.0 < sack.1 {
        o.sack.push((SeqNum(sack.0), SeqNum(sack.1)));
    }
    o.timestamps = Some(Timestamps { tsval: 7, tsecr });
    i.options = o;
    i.seg()
}

/// A client (MSS 1000, SACK and timestamps, RTT 10 ms, no pacing) sends ten segments at
/// 10 ms; 1–3 are SACKed at 20 ms, so 0 is lost and resent. At `late` the original of 0
/// arrives after all, and the receiver acknowledges 0–3, echoing the original's timestamp
/// (RFC 7323 §4.3: the segment that advanced the left edge). 4–9 have been out since 10 ms,
/// as long as 0–3 were, with nothing sent after them delivered. With `echo_resend` the ACK
/// echoes the resend's timestamp instead: the resend is what arrived. Returns the client
/// after that ACK and what it sent then (segment indexes).
fn late_ack(late: Instant, echo_resend: bool) -> (Connection, Vec<u32>) {
    let cfg = Arc::new(Config {
        pacing: false,
        window_scaling: false,
        ..config()
    });
    let mut ctr = Counters::default();
    let mut c = client(&cfg);
    c.connect(Instant::ZERO, SERVER, SeqNum(ISS), &mut ctr)
        .unwrap();
    let syn = drain(&mut c, Instant::ZERO, &mut ctr);
    let t = Instant::from_millis(10);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, 299, ISS + 1)
        .mss(SEG as u16 + 12) // the timestamp option takes 12 bytes of it
        .sack_permitted()
        .ts(5, tsval(&syn[0]));
    deliver(&mut c, t, &synack.seg(), &mut ctr);
    drain(&mut c, t, &mut ctr);
    assert!(c.info().timestamps);
    c.set_nodelay(true);
    let len = 10 * SEG as usize;
    assert_eq!(c.send(&vec![1u8; len]).unwrap(), len);
    let first = drain(&mut c, t, &mut ctr);
    assert_eq!(first.len(), 10);
    let ts_orig = tsval(&first[0]);

    let t = Instant::from_millis(20);
    deliver(&mut c, t, &ack(seq(0), (seq(1), seq(4)), ts_orig), &mut ctr);
    let resent = drain(&mut c, t, &mut ctr);
    let idx: Vec<u32> = resent.iter().map(|s| (s.seq().0 - seq(0)) / SEG).collect();
    assert_eq!(idx, [0], "segment 0 resent");
    assert_eq!(resent[0].seq(), SeqNum(seq(0)));
    assert!(tsval(&resent[0]) > ts_orig);

    let echo = if echo_resend {
        tsval(&resent[0])
    } else {
        ts_orig
    };
    deliver(&mut c, late, &ack(seq(4), (0, 0), echo), &mut ctr);
    let out = drain(&mut c, late, &mut ctr);
    (c, out.iter().map(|s| (s.seq().0 - seq(0)) / SEG).collect())
}

/// The original arrives 11 ms after the resend: more than the minimum RTT, so only the echo
/// tells that the resend was not what arrived. 4–9 stay outstanding, not lost.
#[test]
fn cumulative_ack_of_an_original_does_not_advance_rack() {
    let (c, sent) = late_ack(Instant::from_millis(31), false);
    let info = c.info();
    assert_eq!(info.unacked, 6);
    assert_eq!(info.lost, 0, "nothing sent after 4-9 was delivered");
    assert!(sent.is_empty(), "resent {sent:?}");
}

/// The same ACK echoing the resend's timestamp: the resend, sent after 4–9, was delivered
/// 11 ms later, and 4–9 (out for 21 ms) were not: RACK calls them lost.
#[test]
fn cumulative_ack_of_a_resend_advances_rack() {
    let (c, sent) = late_ack(Instant::from_millis(31), true);
    let info = c.info();
    assert_eq!(info.unacked, 6);
    assert_eq!(info.lost, 6);
    assert_eq!(sent.first(), Some(&4), "resent {sent:?}");
}
