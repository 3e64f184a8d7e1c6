//! Fast retransmissions in TSO-sized packets, segment by segment: Linux resends what SACK or
//! RACK marked lost skb by skb (`tcp_xmit_retransmit_queue`), each skb as one packet of up to
//! the free congestion window and the TSO size (`tcp_retransmit_skb` with `segs`), paced as
//! one. An skb is the lost run of a packet as first sent, up to where a SACK split it.
//!
//! The scenario follows `tests/packetdrill/rtx-size/rtx-size-recovery-two-segments-together.pkt`
//! (which passes on Linux 6.18: lost segments under three SACKed ones; the fast
//! retransmission sends the first, PRR (RFC 6937, Linux `tcp_cwnd_reduction`) releases two
//! more on the partial ACK, at once and without PSH), here with pacing on, where a packet
//! and a segment differ: the segments of one packet leave together, the next packet waits
//! for its departure time. The path's RTT is 100 µs, so the first window goes out in two
//! packets of five segments (half the window, `tcp_tso_autosize` allowing 64 KiB).

use std::sync::Arc;

use super::harness::*;
use crate::tcp::{CaState, Config, Connection, Counters, SeqNum};
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, Options};

/// Client ISS: data starts at 101, segment k (0-based) covers [101 + 1000k, 1101 + 1000k).
const ISS: u32 = 100;
const SEG: u32 = 1000;

fn seq(k: u32) -> u32 {
    ISS + 1 + k * SEG
}

/// An ACK from the receiver with SACK blocks.
fn ack(ack: u32, sack: &[(u32, u32)]) -> Seg {
    let mut i = Inject::to_client(Flags::ACK, 300, ack);
    let mut o = Options::default();
    for &(s, e) in sack {
        o.sack.push((SeqNum(s), SeqNum(e)));
    }
    i.options = o;
    i.seg()
}

/// A paced CUBIC client (MSS 1000, SACK, no timestamps, RTT 100 µs) that sent ten segments
/// as two packets (0 to 4, 5 to 9); then segments `lost` are missing: segments below the
/// first are acknowledged, the three after the last are SACKed one by one, and the fast
/// retransmission sends the first lost one (PRR releases one segment). Returns the client,
/// its counters and that moment.
fn in_recovery(lost: std::ops::Range<u32>) -> (Connection, Counters, Instant) {
    let cfg = Arc::new(Config {
        pacing: true,
        timestamps: false,
        window_scaling: false,
        ..config()
    });
    let mut ctr = Counters::default();
    let t = Instant::from_micros(100);
    let mut c = sack_client_established(&cfg, ISS, SEG as u16, t, &mut ctr);
    let len = (20 * SEG) as usize;
    assert_eq!(c.send(&vec![7u8; len]).unwrap(), len);
    let out = drain(&mut c, t, &mut ctr);
    assert_eq!(out.len(), 10, "the initial window");
    let psh: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].flags().contains(Flags::PSH))
        .collect();
    assert_eq!(psh, [4, 9], "two packets of five: PSH ends each burst");

    let t = t + Duration::from_micros(100);
    let above = lost.end;
    let mut out = Vec::new();
    for k in 1..=3 {
        let sack = [(seq(above), seq(above + k))];
        deliver(&mut c, t, &ack(seq(lost.start), &sack), &mut ctr);
        out.extend(drain(&mut c, t, &mut ctr));
    }
    // While nothing was marked lost the window let new data out; the resend then goes
    // when RACK's reordering window and the pacing allow.
    let mut now = t;
    while !out.iter().any(|s| s.seq() == SeqNum(seq(lost.start))) {
        now = c.poll_timeout().expect("a deadline");
        assert!(now < t + Duration::from_millis(1), "{out:?}");
        c.handle_timeout(now, &mut ctr);
        out.extend(drain(&mut c, now, &mut ctr));
    }
    let info = c.info();
    assert_eq!(info.ca_state, CaState::Recovery);
    assert_eq!((info.lost, info.sacked), (lost.len() as u32, 3));
    let resends: Vec<u32> = out
        .iter()
        .map(|s| s.seq().0)
        .filter(|&s| s < seq(10))
        .collect();
    assert_eq!(resends, [seq(lost.start)], "PRR releases one segment");
    (c, ctr, now)
}

/// What the client sends after the partial ACK of the first resend, 50 µs later (less than
/// the RTT, so RACK takes the ACK for the original and marks nothing more): each segment's
/// number and send time in µs after the ACK, the first `n`.
fn after_partial_ack(lost: std::ops::Range<u32>, n: usize) -> (Vec<(u32, u64)>, Counters) {
    let (mut c, mut ctr, t) = in_recovery(lost.clone());
    let t = t + Duration::from_micros(50);
    let sack = [(seq(lost.end), seq(lost.end + 3))];
    deliver(&mut c, t, &ack(seq(lost.start + 1), &sack), &mut ctr);
    let mut sent = Vec::new();
    let mut now = t;
    for _ in 0..20 {
        for s in drain(&mut c, now, &mut ctr) {
            assert_eq!(s.len(), SEG as usize, "{s:?}");
            assert!(!s.flags().contains(Flags::PSH), "{s:?}");
            sent.push(((s.seq().0 - seq(0)) / SEG, (now - t).as_micros() as u64));
        }
        if sent.len() >= n {
            return (sent, ctr);
        }
        match c.poll_timeout() {
            Some(at) if at < t + Duration::from_millis(1) => {
                now = at;
                c.handle_timeout(now, &mut ctr);
            }
            other => panic!("sending stopped at {sent:?}, next deadline {other:?}"),
        }
    }
    panic!("sending never ended: {sent:?}");
}

/// Segments 0 to 3 of the first packet are lost. PRR releases two segments on the partial
/// ACK: segments 1 and 2, the rest of that packet as far as the window allows, go as one
/// packet at once, though pacing holds a packet after a packet; segment 3 waits for the next
/// ACK.
#[test]
fn lost_segments_of_one_packet_are_resent_together_under_pacing() {
    let (sent, ctr) = after_partial_ack(0..4, 2);
    assert_eq!(sent, [(1, 0), (2, 0)]);
    assert_eq!(ctr.fast_retrans, 3);
}
