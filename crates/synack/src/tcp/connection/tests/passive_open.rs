//! A passive open built straight from its SYN-queue entry (`syn_received_from`, what the stack
//! runs) is the connection the replay of that entry's SYN through LISTEN and `take_syn`
//! (`replay_handshake`, the reference) built: the same fields, events, deadline, then the same
//! segments and the same fields after the final ACK (with or without data, a FIN, urgent data,
//! an ECN mark, ECE, a D-SACK or an invalid SACK block, a zero window, or an unacceptable ACK)
//! and a while after it. Across configurations (timestamps, SACK, window scaling, ECN, a
//! locked or small buffer, BBR, socket options, data or a FIN queued in SYN-RECEIVED) and
//! entries (MSS option or none, window shifts up to the 14 cap and beyond, TSval, a SYN-ACK
//! timed or sent again). What `ack_of_syn` must not take (ECE, SACK blocks, transmit state)
//! is checked to go the general way.
//!
//! A Fast Open child does not come this way: the stack builds it with `accept_syn` on the
//! SYN (`fast_open_syn`), not from a SYN-queue entry.

use core::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use super::super::input::{set_header_prediction, syn_acks_short};
use super::fast_output::state_dump;
use super::harness::*;
use crate::tcp::config::Keepalive;
use crate::tcp::congestion::Algorithm;
use crate::tcp::ecn::{Codepoint, EcnMode};
use crate::tcp::handshake::Handshake;
use crate::tcp::{Config, Connection, Counters, SeqNum, Shutdown};
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

/// A configuration the entries are built under: the stack's (listener's) `Config`, the MSS
/// the stack announces under it (lowered by a user MSS, `mss_clamp`, as `announced_mss`
/// lowers it), and what the application set on the connection once it exists (keepalive, a
/// user timeout), applied the same way to both builds.
struct Setup {
    name: &'static str,
    cfg: Arc<Config>,
    mss: u16,
    on_conn: fn(&mut Connection, Instant),
}

fn nothing(_: &mut Connection, _: Instant) {}

/// Keepalive with an idle time under the test's 1.5 s, and a user timeout.
fn keepalive_and_user_timeout(c: &mut Connection, now: Instant) {
    c.set_keepalive(
        now,
        Some(Keepalive {
            idle: Duration::from_millis(700),
            interval: Duration::from_millis(200),
            count: 2,
        }),
    );
    c.set_user_timeout(Some(Duration::from_millis(900)));
}

/// Data queued in SYN-RECEIVED (it goes out once the connection is established, RFC 9293
/// §3.10.2): the connection holds transmit state before the final ACK.
fn data_queued(c: &mut Connection, _: Instant) {
    assert_eq!(c.send(b"x"), Ok(1));
}

/// Shut down for writing in SYN-RECEIVED: the FIN waits for the final ACK (Linux
/// `tcp_shutdown` leaves SYN-RECV alone), with transmit state but no FIN sent.
fn write_shut(c: &mut Connection, _: Instant) {
    assert_eq!(c.shutdown(Shutdown::Write), Ok(()));
}

/// Setups whose connection holds transmit state at the final ACK, which `acks_just_the_syn`
/// excludes: their final ACKs go the general way.
const TRANSMIT_STATE: [&str; 2] = ["data queued", "shut for writing"];

/// The configurations the entries are built under.
fn configs() -> Vec<Setup> {
    let base = config();
    let plain = |name, cfg: Config| Setup {
        name,
        cfg: Arc::new(cfg),
        mss: MSS,
        on_conn: nothing,
    };
    vec![
        plain("default", base.clone()),
        plain(
            "no timestamps",
            Config {
                timestamps: false,
                ..base.clone()
            },
        ),
        plain(
            "no sack",
            Config {
                sack: false,
                ..base.clone()
            },
        ),
        plain(
            "no window scaling",
            Config {
                window_scaling: false,
                ..base.clone()
            },
        ),
        plain(
            "ecn off",
            Config {
                ecn: EcnMode::Off,
                ..base.clone()
            },
        ),
        plain(
            "ecn on",
            Config {
                ecn: EcnMode::On,
                ..base.clone()
            },
        ),
        plain(
            "small locked buffer",
            Config {
                recv_buffer: 4096,
                recv_buffer_locked: true,
                ..base.clone()
            },
        ),
        plain(
            "large buffer",
            Config {
                recv_buffer: 8 << 20,
                ..base.clone()
            },
        ),
        plain(
            "bbr",
            Config {
                congestion: Algorithm::Bbr,
                ..base.clone()
            },
        ),
        Setup {
            name: "user mss 1000, bbr",
            cfg: Arc::new(Config {
                mss_clamp: Some(1000),
                congestion: Algorithm::Bbr,
                ..base.clone()
            }),
            mss: 1000,
            on_conn: nothing,
        },
        Setup {
            name: "keepalive, user timeout",
            cfg: Arc::new(base.clone()),
            mss: MSS,
            on_conn: keepalive_and_user_timeout,
        },
        Setup {
            name: "user mss 536, keepalive, user timeout, no timestamps",
            cfg: Arc::new(Config {
                mss_clamp: Some(536),
                timestamps: false,
                ..base.clone()
            }),
            mss: 536,
            on_conn: keepalive_and_user_timeout,
        },
        Setup {
            name: TRANSMIT_STATE[0],
            cfg: Arc::new(base.clone()),
            mss: MSS,
            on_conn: data_queued,
        },
        Setup {
            name: TRANSMIT_STATE[1],
            cfg: Arc::new(base),
            mss: MSS,
            on_conn: write_shut,
        },
    ]
}

/// The listener's address and the peer's.
#[derive(Debug, Clone, Copy)]
struct Pair {
    local: SocketAddr,
    remote: SocketAddr,
}

const V4: Pair = Pair {
    local: SERVER,
    remote: CLIENT,
};

/// IPv6: without an MSS option the peer's MSS is IPv6's default (1220, RFC 9293 §3.7.1),
/// which the build takes only if it knows the peer's address before it negotiates.
const V6: Pair = Pair {
    local: SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        443,
    ),
    remote: SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        50000,
    ),
};

/// ISS and IRS: mid-space, and near `u32::MAX`, where SND.NXT wraps to 0 at the SYN-ACK and
/// the final ACK's data crosses it.
const MID: (SeqNum, SeqNum) = (SERVER_ISS, CLIENT_ISS);
const WRAP: (SeqNum, SeqNum) = (SeqNum(u32::MAX), SeqNum(u32::MAX - 8));

/// SYN-queue entries: every combination of the options a SYN can offer, timed or not
/// (`all`), or a smaller cross of them (no MSS or a common one, no scaling or a common
/// shift) for the address pairs and sequence numbers besides the first.
fn entries((iss, irs): (SeqNum, SeqNum), all: bool) -> Vec<Handshake> {
    let mut out = Vec::new();
    let msss: &[Option<u16>] = if all {
        &[Some(1460), Some(536), None, Some(64)]
    } else {
        &[Some(1460), None]
    };
    let shifts: &[Option<u8>] = if all {
        &[None, Some(0), Some(7), Some(14), Some(20)]
    } else {
        &[None, Some(7)]
    };
    for &mss in msss {
        for &window_scale in shifts {
            for sack_permitted in [false, true] {
                for ts_recent in [None, Some(0x1234_5678)] {
                    // Timed; untimed but not sent again (a SYN cookie's handshake); sent
                    // again once or three times.
                    for (synack_sent, retransmits) in
                        [(Some(Instant::ZERO), 0), (None, 0), (None, 1), (None, 3)]
                    {
                        for ecn in [false, true] {
                            out.push(Handshake {
                                iss,
                                irs,
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

/// Final ACKs that `acks_just_the_syn` excludes, on any connection (SACK blocks) or on one
/// that negotiated ECN (ECE): they go the general way.
const SACK_OR_ECE: [&str; 3] = ["ack+ece", "ack+dsack", "ack+sack (invalid block)"];

/// The final ACKs a client at `p.remote` may send for `hs`: plain, with data, with data and
/// FIN, with urgent data, with CE on its IP header, one whose ACK is not acceptable, one
/// closing the window, with a D-SACK block (the SYN-ACK received twice: below SEG.ACK,
/// RFC 2883), with a SACK block above SND.MAX, and for an entry that negotiated ECN one
/// with ECE.
fn final_acks(p: Pair, hs: &Handshake) -> Vec<(&'static str, Seg)> {
    let seq = hs.irs.0.wrapping_add(1);
    let ack = hs.iss.0.wrapping_add(1);
    let with_ts = |i: Inject| match hs.ts_recent {
        Some(t) => i.ts(t.wrapping_add(3), 0x40),
        None => i,
    };
    let to_server = |flags, seq, ack| Inject::new(p.remote, p.local, flags, seq, ack);
    let plain = with_ts(to_server(Flags::ACK, seq, ack).window(1000));
    let mut ce = with_ts(to_server(Flags::ACK | Flags::PSH, seq, ack))
        .data(b"hello")
        .seg();
    ce.ecn = Codepoint::Ce;
    let sack = |l: u32, r: u32| {
        let mut i = with_ts(to_server(Flags::ACK, seq, ack).window(1000));
        i.options.sack.push((SeqNum(l), SeqNum(r)));
        i.seg()
    };
    let mut out = vec![
        ("ack", plain.seg()),
        (
            "ack+data",
            with_ts(to_server(Flags::ACK | Flags::PSH, seq, ack))
                .data(b"GET / HTTP/1.0\r\n\r\n")
                .seg(),
        ),
        (
            "ack+data+fin",
            with_ts(to_server(Flags::ACK | Flags::FIN, seq, ack))
                .data(b"x")
                .seg(),
        ),
        (
            "ack+urgent",
            with_ts(to_server(Flags::ACK, seq, ack))
                .data(b"!!")
                .urgent(2)
                .seg(),
        ),
        ("ack+ce", ce),
        (
            "unacceptable ack",
            with_ts(to_server(Flags::ACK, seq, ack.wrapping_add(7))).seg(),
        ),
        (
            "ack window 0",
            with_ts(to_server(Flags::ACK, seq, ack).window(0)).seg(),
        ),
        (SACK_OR_ECE[1], sack(hs.iss.0, ack)),
        (
            SACK_OR_ECE[2],
            sack(ack.wrapping_add(100), ack.wrapping_add(200)),
        ),
    ];
    if hs.ecn {
        out.push((
            SACK_OR_ECE[0],
            with_ts(to_server(Flags::ACK | Flags::ECE, seq, ack).window(1000)).seg(),
        ));
    }
    out
}

/// Builds the connection for `hs` from `p.remote` under `s` at `now`, directly or by the
/// replay, then applies the setup's socket options.
fn build(s: &Setup, p: Pair, hs: &Handshake, now: Instant, direct: bool) -> Connection {
    let mut c = Connection::new(s.cfg.clone(), p.local, s.mss, 0x55);
    if direct {
        c.syn_received_from(now, p.remote, hs);
    } else {
        c.replay_handshake(now, p.remote, hs);
    }
    (s.on_conn)(&mut c, now);
    c
}

/// One entry under one configuration, one final ACK: the whole exchange's outcome.
fn outcome(s: &Setup, p: Pair, hs: &Handshake, ack: &Seg, direct: bool) -> String {
    let t0 = Instant::ZERO + Duration::from_millis(3);
    let mut ctr = Counters::default();
    let mut c = build(s, p, hs, t0, direct);
    let mut out = format!("built {}\n", seen(&mut c));
    for s in drain(&mut c, t0, &mut ctr) {
        writeln!(out, "sent {s:?}");
    }
    let t1 = t0 + Duration::from_millis(5);
    // The reference takes the final ACK through the general steps (`process_ack`), header
    // prediction and with it `ack_of_syn` off; the direct build takes it as the stack does.
    if !direct {
        set_header_prediction(false);
    }
    deliver_ecn(&mut c, t1, ack, &mut ctr);
    set_header_prediction(true);
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
    // Past the initial RTO (1 s): without an acceptable ACK the SYN-ACK goes again (and
    // with keepalive set, its first probe is due).
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

/// Every configuration, address pair and ISN pair; every entry for IPv4 in mid-space, the
/// smaller cross of entries for the others.
fn variants() -> Vec<(Pair, (SeqNum, SeqNum), bool)> {
    vec![
        (V4, MID, true),
        (V6, MID, false),
        (V4, WRAP, false),
        (V6, WRAP, false),
    ]
}

#[test]
fn a_passive_open_built_from_its_entry_is_the_replayed_one_field_for_field() {
    let mut cases = 0;
    let mut established = 0;
    let mut v6_default_mss = 0;
    let mut short_acks = 0;
    let mut excluded = 0;
    for s in configs() {
        for (p, isns, all) in variants() {
            for hs in entries(isns, all) {
                // Built: compared before any segment.
                let t0 = Instant::ZERO + Duration::from_millis(3);
                let replayed = seen(&mut build(&s, p, &hs, t0, false));
                let mut direct = build(&s, p, &hs, t0, true);
                if p.local.is_ipv6() && hs.mss.is_none() {
                    // No MSS option from an IPv6 peer: IPv6's default (RFC 9293 §3.7.1).
                    assert_eq!(direct.opts.peer_mss, 1220, "{}", s.name);
                    v6_default_mss += 1;
                }
                let ecn = direct.ecn.ok();
                let direct = seen(&mut direct);
                assert_eq!(direct, replayed, "{}: {p:?}: {hs:?}: built", s.name);
                for (what, ack) in final_acks(p, &hs) {
                    let general = outcome(&s, p, &hs, &ack, false);
                    let short_before = syn_acks_short();
                    let shortcut = outcome(&s, p, &hs, &ack, true);
                    let short = syn_acks_short() - short_before;
                    short_acks += short;
                    assert_eq!(shortcut, general, "{}: {p:?}: {hs:?}: {what}", s.name);
                    // What `acks_just_the_syn` excludes went the general way: SACK blocks,
                    // ECE on an ECN connection, transmit state (data or a FIN queued).
                    let general_way = TRANSMIT_STATE.contains(&s.name)
                        || (SACK_OR_ECE.contains(&what) && (what != SACK_OR_ECE[0] || ecn));
                    if general_way {
                        assert_eq!(short, 0, "{}: {p:?}: {hs:?}: {what}", s.name);
                        excluded += usize::from(general.contains("after the ACK Established"))
                            + usize::from(general.contains("after the ACK FinWait1"));
                    }
                    if what == "unacceptable ack" {
                        // The RTO ran: the SYN-ACK went again (the case reaches the timer).
                        assert!(general.contains("[SYN, ACK"), "{general}");
                    }
                    cases += 1;
                    established += usize::from(general.contains("after the ACK Established"));
                }
            }
        }
    }
    // The cases reached what they are for: most final ACKs complete the handshake, and
    // about a third of those through `ack_of_syn`: a SYN-ACK sent again leaves recovery
    // state (its retransmission count), and BBR, ECE on an ECN connection, SACK blocks and
    // data or a FIN queued go the general way too; and many of those the shortcut excludes
    // completed it (went the general way when they could have gone the short one).
    assert!(
        cases > 10_000
            && established > cases / 2
            && short_acks > established as u64 / 4
            && excluded > 5_000
            && v6_default_mss > 0,
        "{cases} {established} {short_acks} {excluded} {v6_default_mss}"
    );
}

/// `open_receive_window` reads the buffer's size alone where it built the whole window state
/// (`rwnd()`): the same initial window, for passive opens of every entry and configuration
/// and for an active open's SYN.
#[test]
fn the_initial_receive_window_is_the_window_states_initial_window() {
    for s in configs() {
        let (name, cfg) = (s.name, &s.cfg);
        for hs in entries(MID, true) {
            let c = build(&s, V4, &hs, Instant::ZERO, true);
            let w = c.rwnd().initial_window(c.initial_window_mss());
            let bound = (u16::MAX as u32) << c.rcv.shift;
            assert_eq!(c.rcv.adv - c.rcv.nxt, w.min(bound), "{name}: {hs:?}");
        }
        for recv_buffer in [0, 1, 2920, 65535, 1 << 20] {
            let mut c = client(cfg);
            c.set_recv_buffer(recv_buffer);
            let w = c.rwnd().initial_window(c.initial_window_mss());
            assert_eq!(c.open_receive_window(), w, "{name}: {recv_buffer}");
        }
    }
}
