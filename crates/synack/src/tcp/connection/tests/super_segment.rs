//! A receive offload's super-segment (a TUN read with offloads, as GRO hands Linux's TCP one
//! large skb) opens the receive window as the wire segments it stands for would have.

use std::sync::Arc;

use super::harness::*;
use crate::tcp::{Counters, SeqNum, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

const ISS: u32 = 1000;
/// The peer's first data byte.
const PEER: u32 = 300;
/// A full segment with timestamps on (MSS 1,460 less the 12-byte option).
const SEG: u32 = 1448;

/// A client with timestamps that got `segments` full segments in bursts of `per_read` a
/// second apart (one super-segment per burst when `per_read` > 1), without the application
/// reading: the window and acknowledgment number of its last ACK, and its estimate of the
/// peer's segment size.
fn after(segments: u32, per_read: u32) -> (u16, u32, u32) {
    let cfg = Arc::new(config());
    let mut ctr = Counters::default();
    let mut c = client(&cfg);
    c.connect(Instant::ZERO, SERVER, SeqNum(ISS), &mut ctr)
        .unwrap();
    let syn = drain(&mut c, Instant::ZERO, &mut ctr);
    let echo = syn[0]
        .repr()
        .options
        .timestamps
        .expect("SYN with timestamps")
        .tsval;
    let t0 = Instant::from_millis(10);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, PEER - 1, ISS + 1)
        .mss(MSS)
        .sack_permitted()
        .ts(1, echo);
    deliver(&mut c, t0, &synack.seg(), &mut ctr);
    assert_eq!(c.state(), State::Established);
    drain(&mut c, t0, &mut ctr);
    let mut last = None;
    let mut sent = 0;
    while sent < segments {
        let n = per_read.min(segments - sent);
        let burst = 1 + sent / per_read;
        let now = t0 + Duration::from_secs(u64::from(burst));
        let seg = Inject::to_client(Flags::ACK, PEER + sent * SEG, ISS + 1)
            .ts(1 + burst, echo)
            .data(&pattern((n * SEG) as usize, u64::from(sent)))
            .seg();
        deliver(&mut c, now, &seg, &mut ctr);
        // The ACKs that go now, and a delayed one if it is owed.
        let mut acks = drain(&mut c, now, &mut ctr);
        acks.extend(drain(&mut c, now + Duration::from_millis(500), &mut ctr));
        if let Some(a) = acks.last() {
            last = Some((a.window(), a.ack().0));
        }
        sent += n;
    }
    let (window, ack) = last.expect("the data was acknowledged");
    (window, ack, c.info().rcv_mss_estimate)
}

#[test]
fn a_super_segment_opens_the_window_as_its_segments_would() {
    // Linux-sized: 45 segments of 1,448 bytes in one read (65,160 bytes).
    let split = after(45, 1);
    assert_eq!(split.1, PEER + 45 * SEG, "all acknowledged");
    assert_eq!(split.2, SEG);
    assert_eq!(after(45, 45), split);
    // Three super-segments, the buffer filling (within the window it offers): still the
    // same window.
    let split = after(60, 1);
    assert!(split.0 > 0, "{split:?}");
    assert_eq!(after(60, 20), split);
}
