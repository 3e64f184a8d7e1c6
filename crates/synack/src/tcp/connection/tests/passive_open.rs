//! A passive open built straight from its SYN-queue entry (`syn_received_from`, what the stack
//! runs) is the connection the replay of that entry's SYN through LISTEN and `take_syn`
//! (`replay_handshake`, the reference) built: the same fields, events, deadline, then the same
//! segments and the same fields after the final ACK (with or without data, a FIN, urgent data,
//! an ECN mark or an unacceptable ACK) and a while after it. Across configurations (timestamps,
//! SACK, window scaling, ECN, a locked or small buffer) and entries (MSS option or none, window
//! shifts up to the 14 cap and beyond, TSval, a SYN-ACK timed or sent again).
//!
//! A Fast Open child does not come this way: the stack builds it with `accept_syn` on the
//! SYN (`fast_open_syn`), not from a SYN-queue entry.

use std::sync::Arc;

use super::fast_output::state_dump;
use super::harness::*;
use crate::tcp::ecn::{Codepoint, EcnMode};
use crate::tcp::handshake::Handshake;
use crate::tcp::{Config, Connection, Counters, SeqNum, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

/// Everything a test can see of a connection: its fields, its events (drained) and deadline.
fn seen(c: &mut Connection) -> String {
    let mut events = Vec::new();
    while let Some(e) = c.poll_event() {
        events.push(format!("{e:?}"));
    }
    format!(
        "{} events={events:?} deadline={:?}",
        state_dump(c),
        c.poll_timeout()
    )
}

/// The configurations the entries are built under.
fn configs() -> Vec<(&'static str, Arc<Config>)> {
    let base = config();
    vec![
        ("default", base.clone()),
        (
            "no timestamps",
            Config {
                timestamps: false,
                ..base.clone()
            },
        ),
        (
            "no sack",
            Config {
                sack: false,
                ..base.clone()
            },
        ),
        (
            "no window scaling",
            Config {
                window_scaling: false,
                ..base.clone()
            },
        ),
        (
            "ecn off",
            Config {
                ecn: EcnMode::Off,
                ..base.clone()
            },
        ),
        (
            "ecn on",
            Config {
                ecn: EcnMode::On,
                ..base.clone()
            },
        ),
        (
            "small locked buffer",
            Config {
                recv_buffer: 4096,
                recv_buffer_locked: true,
                ..base.clone()
            },
        ),
        (
            "large buffer",
            Config {
                recv_buffer: 8 << 20,
                ..base
            },
        ),
    ]
    .into_iter()
    .map(|(n, c)| (n, Arc::new(c)))
    .collect()
}

/// SYN-queue entries: every combination of the options a SYN can offer, timed or not.
fn entries() -> Vec<Handshake> {
    let mut out = Vec::new();
    for mss in [Some(1460), Some(536), None, Some(64)] {
        for window_scale in [None, Some(0), Some(7), Some(14), Some(20)] {
            for sack_permitted in [false, true] {
                for ts_recent in [None, Some(0x1234_5678)] {
                    for (synack_sent, retransmits) in
                        [(Some(Instant::ZERO), 0), (None, 1), (None, 3)]
                    {
                        for ecn in [false, true] {
                            out.push(Handshake {
                                iss: SERVER_ISS,
                                irs: CLIENT_ISS,
                                mss,
                                window_scale,
                                sack_permitted,
                                ts_recent,
                                synack_sent,
                                retransmits,
                                ecn,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The final ACKs a client may send for `hs`: plain, with data, with data and FIN, with
/// urgent data, with CE on its IP header, and one whose ACK is not acceptable.
fn final_acks(hs: &Handshake) -> Vec<(&'static str, Seg)> {
    let seq = hs.irs.0.wrapping_add(1);
    let ack = hs.iss.0.wrapping_add(1);
    let with_ts = |i: Inject| match hs.ts_recent {
        Some(t) => i.ts(t.wrapping_add(3), 0x40),
        None => i,
    };
    let plain = with_ts(Inject::to_server(Flags::ACK, seq, ack).window(1000));
    let mut ce = with_ts(Inject::to_server(Flags::ACK | Flags::PSH, seq, ack))
        .data(b"hello")
        .seg();
    ce.ecn = Codepoint::Ce;
    vec![
        ("ack", plain.seg()),
        (
            "ack+data",
            with_ts(Inject::to_server(Flags::ACK | Flags::PSH, seq, ack))
                .data(b"GET / HTTP/1.0\r\n\r\n")
                .seg(),
        ),
        (
            "ack+data+fin",
            with_ts(Inject::to_server(Flags::ACK | Flags::FIN, seq, ack))
                .data(b"x")
                .seg(),
        ),
        (
            "ack+urgent",
            with_ts(Inject::to_server(Flags::ACK, seq, ack))
                .data(b"!!")
                .urgent(2)
                .seg(),
        ),
        ("ack+ce", ce),
        (
            "unacceptable ack",
            with_ts(Inject::to_server(Flags::ACK, seq, ack.wrapping_add(7))).seg(),
        ),
    ]
}

/// Builds the connection for `hs` under `cfg` at `now`, directly or by the replay.
fn build(cfg: &Arc<Config>, hs: &Handshake, now: Instant, direct: bool) -> Connection {
    let mut c = Connection::new(cfg.clone(), SERVER, MSS, 0x55);
    if direct {
        c.syn_received_from(now, CLIENT, hs);
    } else {
        c.replay_handshake(now, CLIENT, hs);
    }
    c
}

/// One entry under one configuration, one final ACK: the whole exchange's outcome.
fn outcome(cfg: &Arc<Config>, hs: &Handshake, ack: &Seg, direct: bool) -> String {
    let t0 = Instant::ZERO + Duration::from_millis(3);
    let mut ctr = Counters::default();
    let mut c = build(cfg, hs, t0, direct);
    let mut out = format!("built {}\n", seen(&mut c));
    for s in drain(&mut c, t0, &mut ctr) {
        writeln!(out, "sent {s:?}");
    }
    let t1 = t0 + Duration::from_millis(5);
    deliver_ecn(&mut c, t1, ack, &mut ctr);
    writeln!(out, "after the ACK {}", seen(&mut c));
    for s in drain(&mut c, t1, &mut ctr) {
        writeln!(out, "sent {s:?}");
    }
    // Some writing and time: the delayed ACK, the first data's timers.
    if c.state().is_synchronized() {
        let _ = c.send(b"reply");
        for s in drain(&mut c, t1, &mut ctr) {
            writeln!(out, "sent {s:?}");
        }
    }
    // Past the initial RTO (1 s): without an acceptable ACK the SYN-ACK goes again.
    let t2 = t1 + Duration::from_millis(1500);
    c.handle_timeout(t2, &mut ctr);
    for s in drain(&mut c, t2, &mut ctr) {
        writeln!(out, "sent {s:?}");
    }
    writeln!(out, "later {} {ctr:?}", seen(&mut c));
    out
}

use std::fmt::Write as _;

macro_rules! writeln {
    ($out:expr, $($arg:tt)*) => {
        std::writeln!($out, $($arg)*).unwrap()
    };
}
use writeln;

#[test]
fn a_passive_open_built_from_its_entry_is_the_replayed_one_field_for_field() {
    let mut cases = 0;
    let mut established = 0;
    for (name, cfg) in configs() {
        for hs in entries() {
            // Built: compared before any segment.
            let t0 = Instant::ZERO + Duration::from_millis(3);
            let replayed = seen(&mut build(&cfg, &hs, t0, false));
            let direct = seen(&mut build(&cfg, &hs, t0, true));
            assert_eq!(direct, replayed, "{name}: {hs:?}: built");
            for (what, ack) in final_acks(&hs) {
                let general = outcome(&cfg, &hs, &ack, false);
                let shortcut = outcome(&cfg, &hs, &ack, true);
                assert_eq!(shortcut, general, "{name}: {hs:?}: {what}");
                if what == "unacceptable ack" {
                    // The RTO ran: the SYN-ACK went again (the case reaches the timer).
                    assert!(general.contains("[SYN, ACK"), "{general}");
                }
                cases += 1;
                established += usize::from(general.contains("after the ACK Established"));
            }
        }
    }
    // The cases reached what they are for: most final ACKs complete the handshake.
    assert!(
        cases > 10_000 && established > cases / 2,
        "{cases} {established}"
    );
}

#[test]
fn a_passive_open_from_its_entry_is_in_syn_received_with_the_synack_outstanding() {
    let cfg = Arc::new(config());
    let hs = entries()[0];
    let c = build(&cfg, &hs, Instant::ZERO, true);
    assert_eq!(c.state(), State::SynReceived);
    assert_eq!(c.remote(), CLIENT);
    assert!(c.poll_timeout().is_some(), "the SYN-ACK's RTO is armed");
    let _ = SeqNum(0);
}

/// `open_receive_window` reads the buffer's size alone where it built the whole window state
/// (`rwnd()`): the same initial window, for passive opens of every entry and configuration
/// and for an active open's SYN.
#[test]
fn the_initial_receive_window_is_the_window_states_initial_window() {
    for (name, cfg) in configs() {
        for hs in entries() {
            let c = build(&cfg, &hs, Instant::ZERO, true);
            let w = c.rwnd().initial_window(c.initial_window_mss());
            let bound = (u16::MAX as u32) << c.rcv.shift;
            assert_eq!(c.rcv.adv - c.rcv.nxt, w.min(bound), "{name}: {hs:?}");
        }
        for recv_buffer in [0, 1, 2920, 65535, 1 << 20] {
            let mut c = client(&cfg);
            c.set_recv_buffer(recv_buffer);
            let w = c.rwnd().initial_window(c.initial_window_mss());
            assert_eq!(c.open_receive_window(), w, "{name}: {recv_buffer}");
        }
    }
}
