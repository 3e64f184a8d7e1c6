//! `Config::pacing` alone: a CUBIC connection paced at its pacing rate, as Linux paces every
//! flow under the `fq` qdisc (`tcp_update_pacing_rate`: mss × cwnd / SRTT × 200 % in slow
//! start; departure times as `tcp_update_skb_after_send`), against the same connection
//! unpaced, which sends what the window allows at the instant the ACK opens it.

use std::sync::Arc;

use super::harness::*;
use crate::tcp::{Config, Counters, SeqNum, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

const ISS: u32 = 100;
const SEG: u32 = 1000;

/// A CUBIC client (MSS 1000, no SACK or timestamps, SRTT 10 ms) sends a 20-segment write: the
/// first ten at 10 ms (the initial window), the ACK of all ten comes at 20 ms (cwnd 20), and
/// the other ten go as paced (or not). Returns each data segment's send time in µs after
/// 20 ms, by segment index 10 to 19.
fn second_window_times(pacing: bool) -> Vec<u64> {
    let cfg = Arc::new(Config {
        pacing,
        timestamps: false,
        sack: false,
        window_scaling: false,
        ..config()
    });
    let mut c = client(&cfg);
    let mut ctr = Counters::default();
    c.connect(Instant::ZERO, SERVER, SeqNum(ISS), &mut ctr)
        .unwrap();
    drain(&mut c, Instant::ZERO, &mut ctr);
    let t = Instant::from_millis(10);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, 299, ISS + 1).mss(SEG as u16);
    deliver(&mut c, t, &synack.seg(), &mut ctr);
    assert_eq!(c.state(), State::Established);
    drain(&mut c, t, &mut ctr);
    c.set_nodelay(true);
    assert_eq!(
        c.send(&[1u8; 20 * SEG as usize]).unwrap(),
        20 * SEG as usize
    );
    // The first ten segments are never paced (Linux paces from the tenth on).
    assert_eq!(drain(&mut c, t, &mut ctr).len(), 10);

    let t = Instant::from_millis(20);
    let ack = Inject::to_client(Flags::ACK, 300, ISS + 1 + 10 * SEG).seg();
    deliver(&mut c, t, &ack, &mut ctr);
    assert_eq!(c.info().cwnd, 20 * SEG, "slow start");
    let mut times = Vec::new();
    let mut now = t;
    for _ in 0..100 {
        for s in drain(&mut c, now, &mut ctr) {
            assert_eq!(s.seq(), SeqNum(ISS + 1 + (10 + times.len() as u32) * SEG));
            times.push((now - t).as_micros() as u64);
        }
        if times.len() == 10 {
            return times;
        }
        now = c
            .poll_timeout()
            .expect("a paced segment waits for its departure time");
        assert!(now < t + Duration::from_millis(10), "{now:?}");
        c.handle_timeout(now, &mut ctr);
    }
    panic!("the second window never left: {times:?}");
}

/// Paced: 4 MB/s (1000 B × cwnd 20 / 10 ms × 200 %), 250 µs a segment, in bursts of three
/// (about a millisecond at that rate, `tcp_tso_autosize`). The first burst leaves at once
/// and is charged half its time, the idle time since the last departure being credit; the
/// next ones leave at full spacing.
#[test]
fn config_pacing_spaces_a_cubic_window_at_its_pacing_rate() {
    assert_eq!(
        second_window_times(true),
        [0, 0, 0, 375, 375, 375, 1125, 1125, 1125, 1875]
    );
}

/// Unpaced (Linux's default qdiscs): the whole window at the ACK's instant.
#[test]
fn cubic_without_pacing_sends_the_window_at_once() {
    assert_eq!(second_window_times(false), [0; 10]);
}
