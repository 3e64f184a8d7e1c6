//! Recovery started by RACK's reordering timer (RFC 8985 §6.3), segment by segment: Linux's
//! `tcp_rack_reo_timeout` runs PRR as if one segment had been delivered (one resend first),
//! but only for a controller without `cong_control`; BBR keeps the window it set.

use std::sync::Arc;

use super::harness::*;
use crate::tcp::congestion::Algorithm;
use crate::tcp::{CaState, Config, Counters, SeqNum};
use crate::time::{Duration, Instant};
use crate::wire::tcp::{Flags, Options};

const ISS: u32 = 100;
const SEG: u32 = 1000;

fn seq(k: u32) -> u32 {
    ISS + 1 + k * SEG
}

/// A client with `congestion` (MSS 1000, SACK, no timestamps, RTT 10 ms) sends ten segments;
/// the SACK of the last alone arrives 10 ms later, so RACK waits out its reordering window
/// before calling the nine below it lost. Returns what the client resends when that timer
/// fires, and its congestion window then, in segments.
fn resends_at_reorder_timeout(congestion: Algorithm) -> (Vec<u32>, u32) {
    let cfg = Arc::new(Config {
        congestion,
        timestamps: false,
        window_scaling: false,
        ..config()
    });
    let mut ctr = Counters::default();
    let t = Instant::from_millis(10);
    let mut c = sack_client_established(&cfg, ISS, SEG as u16, t, &mut ctr);
    c.set_nodelay(true);
    assert_eq!(
        c.send(&[3u8; 10 * SEG as usize]).unwrap(),
        10 * SEG as usize
    );
    assert_eq!(drain(&mut c, t, &mut ctr).len(), 10);

    let t = t + Duration::from_millis(10);
    let mut i = Inject::to_client(Flags::ACK, 300, seq(0));
    let mut o = Options::default();
    o.sack.push((SeqNum(seq(9)), SeqNum(seq(10))));
    i.options = o;
    deliver(&mut c, t, &i.seg(), &mut ctr);
    assert!(drain(&mut c, t, &mut ctr).is_empty(), "nothing lost yet");
    assert_ne!(c.info().ca_state, CaState::Recovery);
    let at = c.poll_timeout().expect("the reordering timer");
    assert!(at < t + Duration::from_millis(10), "{at:?}");
    c.handle_timeout(at, &mut ctr);
    let info = c.info();
    assert_eq!(info.ca_state, CaState::Recovery);
    assert_eq!(info.lost, 9);
    let out = drain(&mut c, at, &mut ctr);
    let cwnd = c.info().cwnd / SEG;
    (
        (out.iter().map(|s| (s.seq().0 - seq(0)) / SEG).collect()),
        cwnd,
    )
}

/// CUBIC: PRR as if one segment had been delivered lets one resend out.
#[test]
fn reorder_timeout_starts_cubic_recovery_with_one_resend() {
    let (sent, _) = resends_at_reorder_timeout(Algorithm::Cubic);
    assert_eq!(sent, [0]);
}

/// BBR sets its window itself: the timer does not cut it, and the lost segments go as far
/// as it allows.
#[test]
fn reorder_timeout_leaves_bbrs_window_alone() {
    let (sent, cwnd) = resends_at_reorder_timeout(Algorithm::Bbr);
    assert!(cwnd >= 10, "cwnd {cwnd}");
    assert!(sent.len() > 1 && sent[0] == 0, "{sent:?}");
}
