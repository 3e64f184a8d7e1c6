//! Data transfer: sequence arithmetic, retransmission, flow control, Nagle, delayed ACK,
//! urgent data, and byte-exact delivery through an impaired pipe.

use std::sync::Arc;

use super::harness::*;
use crate::tcp::congestion::Algorithm;
use crate::tcp::{Config, Connection, Counters, SeqNum, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

const T0: Instant = Instant::ZERO;

/// A client driven by injected segments: connected to a server that has ISS 299, window
/// `win`, MSS 1000 and no timestamps/SACK/scaling (so numbers are easy to read).
fn injected_client(iss: u32, win: u16) -> (Connection, Counters) {
    let cfg = Arc::new(Config {
        timestamps: false,
        sack: false,
        window_scaling: false,
        ..config()
    });
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, SeqNum(iss), &mut cc).unwrap();
    drain(&mut c, T0, &mut cc);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, 299, iss.wrapping_add(1))
        .mss(1000)
        .window(win)
        .seg();
    deliver(&mut c, T0, &synack, &mut cc);
    assert_eq!(c.state(), State::Established);
    drain(&mut c, T0, &mut cc); // the third segment
    (c, cc)
}

/// The brief's example: seq 107 carrying 100 bytes, next seq 207; the receiver's ACK is
/// seq + len (RFC 9293 §3.4).
#[test]
fn sequence_and_ack_arithmetic() {
    let (mut c, mut cc) = injected_client(106, 65535);
    c.set_nodelay(true);
    assert_eq!(c.send(&[7u8; 100]).unwrap(), 100);
    let out = drain(&mut c, T0, &mut cc);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].seq(), SeqNum(107));
    assert_eq!(out[0].len(), 100);
    assert_eq!(out[0].ack(), SeqNum(300));
    assert!(out[0].flags().psh(), "PSH on the last segment of a write");
    assert_eq!(c.send(&[8u8; 50]).unwrap(), 50);
    let out = drain(&mut c, T0, &mut cc);
    assert_eq!(out[0].seq(), SeqNum(207));

    // Receiving: 100 bytes at 300 are acknowledged with 400 once the ACK goes out.
    let data = Inject::to_client(Flags::ACK | Flags::PSH, 300, 257)
        .data(&[1u8; 100])
        .seg();
    deliver(&mut c, T0, &data, &mut cc);
    let later = Instant::from_millis(40);
    c.handle_timeout(later, &mut cc);
    let ack = drain(&mut c, later, &mut cc);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].ack(), SeqNum(400));
    let mut buf = [0u8; 200];
    assert_eq!(c.recv(&mut buf).unwrap(), 100);
}

/// Sequence numbers wrap past 2^32 in the middle of a transfer (both directions).
#[test]
fn sequence_numbers_wrap_mid_transfer() {
    let cfg = Arc::new(config());
    let mut a = Connection::new(cfg.clone(), CLIENT, MSS, 0);
    let mut b = server(&cfg);
    let mut ctr = Counters::default();
    a.connect(T0, SERVER, SeqNum(u32::MAX - 50_000), &mut ctr)
        .unwrap();
    let mut p = Pipe::new(a, b_with_iss(&mut b), Duration::from_millis(5));
    p.a.poll_timeout();
    p.run_until(
        |p| p.a.state() == State::Established && p.b.state() == State::Established,
        Duration::from_secs(5),
    );
    let data = pattern(300_000, 3);
    let got = p.transfer_a_to_b(&data, Duration::from_secs(60));
    assert!(got == data, "payload differs after the wrap");
    assert!(p.a.info().retransmits == 0);
    // SND.UNA really went past zero.
    let last = p.sent_by(true).last().unwrap().seq();
    assert!(last > SeqNum(u32::MAX - 50_000), "later in modular order");
    assert!(last.0 < 300_000, "and numerically past the wrap");
}

fn b_with_iss(b: &mut Connection) -> Connection {
    core::mem::replace(b, Connection::new(Arc::new(config()), SERVER, MSS, 0))
}

/// Loss of any single segment of a 10-segment transfer is recovered without a timeout: by
/// fast retransmit at once when three or more segments follow it (RACK's reordering window
/// is zero once DupThresh segments are SACKed, RFC 8985 §6.2), after RACK's reordering
/// window (a quarter of the minimum RTT) when one or two follow, and by the tail loss probe
/// (RFC 8985 §7), which resends the last segment, when it is the last one.
#[test]
fn any_single_lost_segment_of_ten_is_recovered() {
    for lost in 0..10 {
        let mut p = Pipe::connected(config(), Duration::from_millis(10));
        let mss = p.a.info().snd_mss as usize;
        let data = pattern(10 * mss, lost as u64);
        // Segments from a so far: SYN (0), ACK (1); data starts at index 2.
        p.drop_a_to_b.push(2 + lost);
        let start = p.now;
        let got = p.transfer_a_to_b(&data, Duration::from_secs(30));
        assert!(got == data, "lost segment {lost}: payload differs");
        let took = p.now - start;
        assert_eq!(p.ctr_a.timeouts, 0, "lost {lost}");
        assert_eq!(
            p.ctr_a.retrans_segs, 1,
            "lost {lost}: exactly one retransmission"
        );
        if lost <= 8 {
            assert_eq!(
                p.ctr_a.fast_retrans, 1,
                "lost {lost}: fast retransmit expected"
            );
            assert_eq!(p.ctr_a.loss_probes, 0, "lost {lost}");
            assert!(
                took < Duration::from_millis(100),
                "lost {lost}: took {took:?}"
            );
        } else {
            assert_eq!(p.ctr_a.loss_probes, 1, "lost {lost}: one tail loss probe");
        }
    }
}

/// The receiver's window closes when the application stops reading; the sender probes
/// (persist timer, RFC 9293 §3.8.6.1) and resumes when reading reopens it.
#[test]
fn zero_window_then_reopen() {
    // An 8 KiB buffer at most, so no window scaling: the window closes byte-exactly.
    let cfg = Config {
        recv_buffer: 8192,
        recv_buffer_max: 8192,
        ..config()
    };
    let mut p = Pipe::connected(cfg, Duration::from_millis(10));
    let data = pattern(50_000, 9);
    let mut sent = 0;
    // Fill without reading at b.
    for _ in 0..2000 {
        if sent < data.len() {
            sent += p.a.send(&data[sent..]).unwrap();
        }
        if !p.step() || p.now > Instant::from_secs(20) {
            break;
        }
    }
    // Linux's share of the buffer (tcp::rwnd): 1448-byte segments cost 2304 bytes each, so
    // 8192 bytes offer 5120 of window, and after three segments less than one more is free.
    assert_eq!(p.b.recv_queue_len(), 3 * 1448, "receiver window closed");
    assert_eq!(p.a.info().snd_wnd, 0, "sender saw the window close");
    assert!(
        p.ctr_a.window_probes >= 2,
        "persist timer probes: {}",
        p.ctr_a.window_probes
    );
    assert_eq!(
        p.a.state(),
        State::Established,
        "zero window never times out"
    );
    // Read everything; the window update lets the rest flow.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    let end = p.now + Duration::from_secs(60);
    while got.len() < data.len() && p.now < end {
        if sent < data.len() {
            sent += p.a.send(&data[sent..]).unwrap();
        }
        loop {
            let n = p.b.recv(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if !p.step() {
            break;
        }
    }
    assert!(got == data);
}

/// The peer shrinks its window to zero while data is in flight (RFC 9293 §3.8.6 discourages
/// it, but it happens): no stall, the data goes out once the window reopens.
#[test]
fn peer_shrinks_window_to_zero_then_reopens() {
    let (mut c, mut cc) = injected_client(0, 8000);
    c.send(&pattern(6000, 1)).unwrap();
    let first = drain(&mut c, T0, &mut cc);
    assert_eq!(first.iter().map(|s| s.len()).sum::<usize>(), 6000);
    // ACK of the first 1000 bytes, window now zero.
    deliver(
        &mut c,
        Instant::from_millis(10),
        &Inject::to_client(Flags::ACK, 300, 1001).window(0).seg(),
        &mut cc,
    );
    // Time passes: at each RTO the head segment goes again, whole, as the probe (Linux
    // `tcp_retransmit_timer`); nothing past it goes while the window is closed.
    let mut now = Instant::from_millis(10);
    let mut heads = 0;
    for _ in 0..20 {
        let Some(t) = c.poll_timeout() else { break };
        now = t;
        c.handle_timeout(now, &mut cc);
        for s in drain(&mut c, now, &mut cc) {
            if s.len() > 0 {
                assert_eq!(
                    s.seq(),
                    SeqNum(1001),
                    "only the head while the window is zero"
                );
                assert_eq!(s.len(), 1000, "the head segment in full");
                heads += 1;
            }
        }
        if now > Instant::from_secs(10) {
            break;
        }
    }
    assert!(heads >= 4, "the head went {heads} times in 10 s");
    assert_eq!(c.state(), State::Established);
    // The window opens again; everything after the resent head (1001:2001) goes out, paced
    // by the (collapsed) congestion window as we acknowledge it.
    let mut next = SeqNum(2001);
    let mut ack_with = Inject::to_client(Flags::ACK, 300, 1001).window(65535).seg();
    for _ in 0..50 {
        deliver(&mut c, now, &ack_with, &mut cc);
        let out = drain(&mut c, now, &mut cc);
        for s in &out {
            if s.len() > 0 {
                assert_eq!(s.seq(), next, "in order, no gap, no stall");
                next = s.seq() + s.len();
            }
        }
        if next == SeqNum(6001) {
            break;
        }
        now += Duration::from_millis(10);
        ack_with = Inject::to_client(Flags::ACK, 300, next.0)
            .window(65535)
            .seg();
    }
    assert_eq!(next, SeqNum(6001));
}

/// Under a window the peer shrank to zero, the resent head segment is the probe: the
/// connection lives as long as the peer answers, past the `max_retries` that would end a
/// silent one, and ends once the peer has been silent for twice the maximum RTO (Linux
/// `tcp_rtx_probe0_timed_out`).
#[test]
fn zero_window_with_data_in_flight_lives_while_the_peer_answers() {
    let (mut c, mut cc) = injected_client(0, 8000);
    c.send(&pattern(3000, 2)).unwrap();
    drain(&mut c, T0, &mut cc);
    let closed = Inject::to_client(Flags::ACK, 300, 1001).window(0).seg();
    deliver(&mut c, Instant::from_millis(10), &closed, &mut cc);
    // The peer answers every probe with the same zero window for an hour.
    let mut now = Instant::from_millis(10);
    let mut probes = 0;
    while now < Instant::from_secs(3600) {
        let Some(t) = c.poll_timeout() else { break };
        now = t;
        c.handle_timeout(now, &mut cc);
        if drain(&mut c, now, &mut cc).iter().any(|s| s.len() > 0) {
            probes += 1;
            deliver(&mut c, now, &closed, &mut cc);
        }
    }
    assert!(probes > 15, "more probes than max_retries: {probes}");
    assert_eq!(c.state(), State::Established, "an answering peer keeps it");
    // Now the peer goes silent: the connection ends after 2 x rto_max of silence.
    let silent_from = now;
    for _ in 0..100 {
        let Some(t) = c.poll_timeout() else { break };
        now = t;
        c.handle_timeout(now, &mut cc);
        drain(&mut c, now, &mut cc);
        if c.state() == State::Closed {
            break;
        }
    }
    assert_eq!(c.state(), State::Closed);
    let silent_for = now - silent_from;
    let limit = config().rto_max * 2;
    assert!(
        silent_for > limit && silent_for <= limit + config().rto_max,
        "ended after {silent_for:?} of silence"
    );
}

/// Linux's quick-ACK mode, then delayed ACK (RFC 1122 §4.2.3.2): the first data of a
/// connection is acknowledged at once (half the receive window in segments, at most 16), so
/// slow start is not held back; after that one segment is acknowledged after the 40 ms timer
/// and a second full-sized segment at once.
#[test]
fn quick_acks_first_then_delayed_ack_timer_and_every_second_segment() {
    let (mut c, mut cc) = injected_client(0, 65535);
    let d = vec![5u8; 1000];
    let mut buf = vec![0u8; 4096];
    let mut seq = 300u32;
    let mut quick = 0;
    let mut now = T0;
    loop {
        deliver(
            &mut c,
            now,
            &Inject::to_client(Flags::ACK, seq, 1).data(&d).seg(),
            &mut cc,
        );
        seq += 1000;
        c.recv(&mut buf).unwrap();
        let acks = drain(&mut c, now, &mut cc);
        if acks.is_empty() {
            break;
        }
        assert_eq!(acks[0].ack(), SeqNum(seq));
        quick += 1;
        now += Duration::from_millis(1);
        assert!(quick <= 16, "quick-ACK mode must end");
    }
    assert_eq!(quick, 16, "a 256 KiB window: the full 16 quick ACKs");
    // That last segment waits for the delayed-ACK timer.
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_millis(40)));
    now += Duration::from_millis(1);
    deliver(
        &mut c,
        now,
        &Inject::to_client(Flags::ACK, seq, 1).data(&d).seg(),
        &mut cc,
    );
    seq += 1000;
    let acks = drain(&mut c, now, &mut cc);
    assert_eq!(acks.len(), 1, "second full segment: ACK now");
    assert_eq!(acks[0].ack(), SeqNum(seq));
    // A lone segment: ACK when the timer fires.
    now += Duration::from_millis(1);
    deliver(
        &mut c,
        now,
        &Inject::to_client(Flags::ACK, seq, 1).data(&d).seg(),
        &mut cc,
    );
    seq += 1000;
    assert!(drain(&mut c, now, &mut cc).is_empty());
    let t = c.poll_timeout().unwrap();
    assert_eq!(t, now + Duration::from_millis(40));
    c.handle_timeout(t, &mut cc);
    let acks = drain(&mut c, t, &mut cc);
    assert_eq!(acks[0].ack(), SeqNum(seq));
    assert_eq!(cc.delayed_acks, 1);
}

/// Out-of-order data is acknowledged at once with a duplicate ACK (RFC 5681 §4.2) carrying
/// SACK (RFC 2018), and filling the hole is acknowledged at once too.
#[test]
fn out_of_order_gets_immediate_dup_ack_with_sack() {
    let cfg = Arc::new(Config {
        timestamps: false,
        ..config()
    });
    let mut cc = Counters::default();
    let mut c = sack_client_established(&cfg, 0, 1000, T0, &mut cc);
    let d = vec![1u8; 1000];
    deliver(
        &mut c,
        T0,
        &Inject::to_client(Flags::ACK, 1300, 1).data(&d).seg(),
        &mut cc,
    );
    let dup = drain(&mut c, T0, &mut cc);
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].ack(), SeqNum(300));
    assert_eq!(
        dup[0].repr().options.sack.as_slice(),
        &[(SeqNum(1300), SeqNum(2300))]
    );
    deliver(
        &mut c,
        T0,
        &Inject::to_client(Flags::ACK, 300, 1).data(&d).seg(),
        &mut cc,
    );
    let ack = drain(&mut c, T0, &mut cc);
    assert_eq!(ack.len(), 1, "hole filled: immediate ACK");
    assert_eq!(ack[0].ack(), SeqNum(2300));
    assert!(ack[0].repr().options.sack.is_empty());
    assert_eq!(c.recv_queue_len(), 2000);
}

/// Nagle (RFC 1122 §4.2.3.4): a second small write waits while the first is unacknowledged;
/// with TCP_NODELAY it goes at once. TCP_CORK holds even the first.
#[test]
fn nagle_nodelay_and_cork() {
    let (mut c, mut cc) = injected_client(0, 65535);
    c.send(b"first").unwrap();
    assert_eq!(drain(&mut c, T0, &mut cc).len(), 1);
    c.send(b"second").unwrap();
    assert!(
        drain(&mut c, T0, &mut cc).is_empty(),
        "Nagle holds the small segment"
    );
    deliver(
        &mut c,
        T0,
        &Inject::to_client(Flags::ACK, 300, 6).seg(),
        &mut cc,
    );
    let out = drain(&mut c, T0, &mut cc);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].repr().payload, b"second");

    c.set_nodelay(true);
    c.send(b"x").unwrap();
    c.send(b"y").unwrap();
    assert_eq!(
        drain(&mut c, T0, &mut cc).len(),
        1,
        "x and y coalesced in one segment"
    );
    c.send(b"z").unwrap();
    assert_eq!(
        drain(&mut c, T0, &mut cc).len(),
        1,
        "nodelay: sent while x,y unacknowledged"
    );

    deliver(
        &mut c,
        T0,
        &Inject::to_client(Flags::ACK, 300, 15).seg(),
        &mut cc,
    );
    c.set_cork(true);
    c.send(b"corked").unwrap();
    assert!(
        drain(&mut c, T0, &mut cc).is_empty(),
        "cork holds a partial segment"
    );
    c.send(&vec![0u8; 2000]).unwrap();
    let out = drain(&mut c, T0, &mut cc);
    assert_eq!(out.len(), 2, "full segments go even when corked");
    assert!(out.iter().all(|s| s.len() == 1000));
    c.set_cork(false);
    let rest = drain(&mut c, T0, &mut cc);
    assert_eq!(rest.len(), 1, "uncorked: the rest goes");
    assert_eq!(rest[0].len(), 6);
}

/// A small write that appends to data still unsent (held by Nagle) takes away the PSH the
/// held write put at its end (Linux `tcp_sendmsg_locked` clears PSH on the skb it appends
/// to): the full segment cut from the two carries none, the rest after it does (the
/// packetdrill script `push/push-nagle-joined-writes-psh-at-last-end.pkt`, validated on
/// Linux). A small write into an empty queue works out no size goal (`Connection::write`):
/// this fails when that shortcut is taken with data unsent before the write.
#[test]
fn a_small_write_appending_to_unsent_data_takes_its_psh_away() {
    let (mut c, mut cc) = injected_client(0, 65535);
    c.send(&[1u8; 700]).unwrap();
    let out = drain(&mut c, T0, &mut cc);
    assert!(out.len() == 1 && out[0].flags().psh());
    c.send(&[2u8; 700]).unwrap();
    assert!(drain(&mut c, T0, &mut cc).is_empty(), "Nagle holds it");
    c.send(&[3u8; 700]).unwrap();
    let out = drain(&mut c, T0, &mut cc);
    assert_eq!(out.len(), 1, "a full segment goes");
    assert_eq!((out[0].seq(), out[0].len()), (SeqNum(701), 1000));
    assert!(
        !out[0].flags().psh(),
        "the appended write took the PSH away"
    );
    deliver(
        &mut c,
        T0,
        &Inject::to_client(Flags::ACK, 300, 701).seg(),
        &mut cc,
    );
    let out = drain(&mut c, T0, &mut cc);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].seq(), out[0].len()), (SeqNum(1701), 400));
    assert!(out[0].flags().psh(), "PSH at the end of the last write");
}

/// `min_tso_segs` of 0 counts as 1, Linux's least: a burst (and so a write's buffer goal) is
/// at least one segment, so that a write is cut into segments, never into one-byte buffers,
/// whichever way `Connection::write` takes it.
#[test]
fn a_min_tso_segs_of_zero_counts_as_one() {
    let cfg = Arc::new(Config {
        timestamps: false,
        sack: false,
        window_scaling: false,
        min_tso_segs: 0,
        ..config()
    });
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, SeqNum(0), &mut cc).unwrap();
    drain(&mut c, T0, &mut cc);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, 299, 1)
        .mss(1000)
        .window(65535)
        .seg();
    deliver(&mut c, T0, &synack, &mut cc);
    drain(&mut c, T0, &mut cc);
    assert_eq!(c.min_tso_segs(), 1);
    c.send(&[1u8; 2300]).unwrap();
    let out = drain(&mut c, T0, &mut cc);
    let sizes: Vec<_> = out.iter().map(|s| (s.len(), s.flags().psh())).collect();
    assert_eq!(sizes, [(1000, false), (1000, false), (300, true)]);
}

/// Urgent data (RFC 9293 §3.8.5, RFC 6093): delivered inline, the mark readable.
#[test]
fn urgent_pointer_is_honoured_inline() {
    let (mut c, mut cc) = injected_client(0, 65535);
    deliver(
        &mut c,
        T0,
        &Inject::to_client(Flags::ACK, 300, 1)
            .data(b"abcdef")
            .urgent(4)
            .seg(),
        &mut cc,
    );
    assert_eq!(c.urgent_offset(), Some(4));
    let mut b = [0u8; 2];
    c.recv(&mut b).unwrap();
    assert_eq!(c.urgent_offset(), Some(2));
    let mut rest = [0u8; 10];
    assert_eq!(c.recv(&mut rest).unwrap(), 4);
    assert_eq!(&rest[..4], b"cdef");
    assert_eq!(c.urgent_offset(), None);
}

/// Bulk over a clean 10 ms pipe: byte exact, no retransmission, and window scaling lets
/// more than 64 KiB be in flight.
#[test]
fn bulk_transfer_clean_pipe() {
    let cfg = Config {
        recv_buffer: 1 << 20,
        send_buffer: 1 << 20,
        ..config()
    };
    let mut p = Pipe::connected(cfg, Duration::from_millis(10));
    p.keep_log = false;
    let data = pattern(4 << 20, 5);
    let got = p.transfer_a_to_b(&data, Duration::from_secs(60));
    assert!(got == data);
    assert_eq!(p.ctr_a.retrans_segs, 0);
    assert!(p.a.info().snd_wnd > 65535, "window scaling in effect");
    // 4 MiB over 20 ms RTT with slow start from IW10: well under 2 s of virtual time.
    assert!(p.now < Instant::from_secs(2), "took {:?}", p.now);
}

/// Two connections back to back through a pipe that loses, reorders and duplicates deliver
/// every byte exactly once, in order, for many seeds.
#[test]
fn impaired_pipe_delivers_byte_exact_for_many_seeds() {
    let seeds: u64 = std::env::var("SYNACK_SOAK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    for seed in 0..seeds {
        let mut p = Pipe::connected(config(), Duration::from_millis(5));
        p.keep_log = false;
        p.rng = SimRng::new(seed + 100);
        p.impair = Impair {
            loss: 0.02 + (seed % 4) as f64 * 0.02,
            duplicate: 0.01,
            reorder: 0.05,
            ..Impair::default()
        };
        let size = if seed < 2 { 10 << 20 } else { 1 << 20 };
        let data = pattern(size, seed);
        let got = p.transfer_a_to_b(&data, Duration::from_secs(3600));
        assert_eq!(
            got.len(),
            data.len(),
            "seed {seed}: short by {}",
            data.len() - got.len()
        );
        assert!(got == data, "seed {seed}: payload differs");
        assert!(
            p.ctr_a.retrans_segs > 0,
            "seed {seed}: loss must have caused retransmissions"
        );
        eprintln!(
            "seed {seed}: {} bytes, {:?} virtual, {} retrans, {} fast, {} rto",
            got.len(),
            p.now,
            p.ctr_a.retrans_segs,
            p.ctr_a.fast_retrans,
            p.ctr_a.timeouts
        );
    }
}

/// Urgent data on send (RFC 9293 §3.8.5): segments carry URG and a pointer one past the last
/// urgent byte, the data stays inline, and the peer sees the mark; urgent mode ends once the
/// urgent byte is acknowledged.
#[test]
fn urgent_data_is_marked_on_send_and_seen_by_the_peer() {
    let mut p = Pipe::connected(config(), Duration::from_millis(5));
    p.a.set_nodelay(true);
    p.a.send(b"hello").unwrap();
    p.a.send_urgent(b"!").unwrap();
    p.run_until(|p| p.b.recv_queue_len() == 6, Duration::from_secs(1));
    let urg: Vec<_> = p
        .sent_by(true)
        .into_iter()
        .filter(|s| s.flags().urg())
        .collect();
    assert!(!urg.is_empty(), "some segment carries URG");
    let mark = urg[0].seq() + urg[0].repr().urgent as u32;
    for s in &urg {
        let r = s.repr();
        assert_eq!(r.seq + r.urgent as u32, mark, "one urgent mark");
    }
    // The reader sees the mark 6 bytes ahead: "hello!" with "!" the last urgent byte.
    assert_eq!(p.b.urgent_offset(), Some(6));
    let mut buf = [0u8; 16];
    assert_eq!(p.b.recv(&mut buf).unwrap(), 6);
    assert_eq!(&buf[..6], b"hello!");
    // Once acknowledged, later segments are plain again.
    p.run_for(Duration::from_millis(100));
    let before = p.log.len();
    p.a.send(b"later").unwrap();
    p.run_until(|p| p.b.recv_queue_len() == 5, Duration::from_secs(1));
    assert!(p.log[before..].iter().all(|(_, _, s)| !s.flags().urg()));
}

/// CUBIC by default; TCP_CONGESTION-style switching per connection.
#[test]
fn congestion_control_is_selectable() {
    let (mut c, _) = injected_client(1000, 65535);
    assert_eq!(c.congestion(), Algorithm::Cubic);
    c.set_congestion(Algorithm::NewReno);
    assert_eq!(c.congestion(), Algorithm::NewReno);
    assert_eq!(c.info().cwnd, 10 * 1000, "IW: nothing was sent yet");
}

/// Switching algorithms mid-connection keeps cwnd and ssthresh (Linux
/// `tcp_reinit_congestion_control` leaves snd_cwnd and snd_ssthresh alone).
#[test]
fn switching_congestion_control_keeps_the_window() {
    let (mut c, mut cc) = injected_client(1000, 65535);
    c.set_nodelay(true);
    let mut now = T0;
    // Slow start for a few rounds: every segment acknowledged.
    for _ in 0..3 {
        c.send(&[1u8; 40_000]).unwrap();
        let out = drain(&mut c, now, &mut cc);
        let end = out.last().map(|s| s.seq() + s.len() as u32).unwrap();
        now += Duration::from_millis(10);
        deliver(
            &mut c,
            now,
            &Inject::to_client(Flags::ACK, 300, end.0).seg(),
            &mut cc,
        );
    }
    let grown = c.info().cwnd;
    assert!(grown > 10 * 1000, "cwnd grew in slow start: {grown}");
    c.set_congestion(Algorithm::NewReno);
    assert_eq!(c.congestion(), Algorithm::NewReno);
    assert_eq!(c.info().cwnd, grown);
    assert_eq!(c.info().ssthresh, u32::MAX);
    c.set_congestion(Algorithm::Cubic);
    assert_eq!(c.info().cwnd, grown);
}

/// A sender held back by the receive window does not grow cwnd (Linux
/// tcp_is_cwnd_limited): a window it never filled is not validated by the ACKs. With a
/// 4-segment receive window and IW 10, cwnd stays at 10 segments however long it runs.
#[test]
fn cwnd_does_not_grow_when_receive_window_limited() {
    for alg in [Algorithm::Cubic, Algorithm::NewReno] {
        let (mut c, mut cc) = injected_client(1000, 4000);
        c.set_congestion(alg);
        c.set_nodelay(true);
        let mut now = T0;
        let mut sent = 0usize;
        for _ in 0..100 {
            let queued = c.send(&[5u8; 8000]).unwrap_or(0);
            assert!(queued > 0 || sent > 0);
            let out = drain(&mut c, now, &mut cc);
            let Some(last) = out.last() else { break };
            let end = last.seq() + last.len() as u32;
            let burst: usize = out.iter().map(Seg::len).sum();
            assert!(
                burst <= 4000,
                "{alg}: {burst} bytes beyond the receive window"
            );
            sent += burst;
            now += Duration::from_millis(10);
            let ack = Inject::to_client(Flags::ACK, 300, end.0).window(4000).seg();
            deliver(&mut c, now, &ack, &mut cc);
        }
        assert!(sent >= 100 * 4000 - 4000, "{alg}: only {sent} bytes sent");
        assert_eq!(c.info().cwnd, 10 * 1000, "{alg}");
    }
}

/// The idle restart (RFC 5681 §4.1; Linux `tcp_cwnd_restart`, on CA_EVENT_TX_START): a sender
/// idle for longer than the RTO halves its congestion window once per RTO idle, down to the
/// restart window (the initial window), before its first new segment after the idle period,
/// so that the first burst is at most the restart window (both send paths share this rule in
/// `plan_new_data`; without it the whole grown window goes at once).
#[test]
fn a_sender_idle_for_longer_than_the_rto_restarts_from_the_initial_window() {
    use crate::tcp::congestion::CongestionControl;
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    let mss = p.a.info().snd_mss;
    let data = pattern(400_000, 1);
    assert!(p.transfer_a_to_b(&data, Duration::from_secs(20)) == data);
    p.run_until(|p| p.a.snd.una == p.a.snd.max, Duration::from_secs(5));
    let grown = p.a.cc.cwnd();
    assert!(grown >= 30 * mss, "cwnd only {grown}");
    // Idle for ten seconds: far more than the RTO, enough halvings to reach the restart window.
    p.now += Duration::from_secs(10);
    assert_eq!(p.a.send(&pattern(200_000, 2)).unwrap(), 200_000);
    let first = drain(&mut p.a, p.now, &mut p.ctr_a);
    let data_segs = first.iter().filter(|s| s.len() > 0).count();
    assert_eq!(p.a.cc.cwnd(), 10 * mss, "restart window");
    assert_eq!(data_segs, 10, "first burst after the idle period");
}
