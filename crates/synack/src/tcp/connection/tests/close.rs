//! Closing: RFC 9293 §3.6 (Figures 12, 13), §3.10.4 CLOSE, §3.10.7.4 (eighth, the FIN bit),
//! §3.10.8 (TIME-WAIT), half-close, and Linux's orphan rules (FIN-WAIT-2 timeout, RST on
//! close with unread data, RFC 2525 §2.17).

use std::sync::Arc;

use super::harness::*;
use crate::tcp::{Config, Connection, Counters, Error, Event, SeqNum, Shutdown, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

const T0: Instant = Instant::ZERO;

/// The client's first data byte (ISS + 1) and the server's.
const C1: u32 = CLIENT_ISS.0 + 1;
const S1: u32 = SERVER_ISS.0 + 1;

/// A client driven by injected segments, established with a server whose ISS is
/// `SERVER_ISS`; no timestamps, SACK or window scaling, so the numbers are easy to read.
fn injected_client() -> (Connection, Counters) {
    let cfg = Arc::new(Config {
        timestamps: false,
        sack: false,
        window_scaling: false,
        ..config()
    });
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    drain(&mut c, T0, &mut cc);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, SERVER_ISS.0, C1).seg();
    deliver(&mut c, T0, &synack, &mut cc);
    assert_eq!(c.state(), State::Established);
    drain(&mut c, T0, &mut cc); // the third segment of the handshake
    (c, cc)
}

/// Delivers `inj` to `c` at `now` and returns everything `c` sends right after.
fn feed(c: &mut Connection, now: Instant, inj: Inject, cc: &mut Counters) -> Vec<Seg> {
    deliver(c, now, &inj.seg(), cc);
    drain(c, now, cc)
}

/// Reads everything readable now (stops at the first `Ok(0)`).
fn read_all(c: &mut Connection) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = c.recv(&mut buf).unwrap();
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// Takes the client from ESTABLISHED through FIN-WAIT-1 and FIN-WAIT-2 into TIME-WAIT with
/// injected segments, the peer's FIN carrying `data`. Returns the instant TIME-WAIT began.
fn client_into_time_wait(c: &mut Connection, cc: &mut Counters, data: &[u8]) -> Instant {
    c.shutdown(Shutdown::Write).unwrap();
    let fin = drain(c, T0, cc);
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0].flags(), Flags::FIN | Flags::ACK);
    assert_eq!(fin[0].seq(), SeqNum(C1));
    let t = Instant::from_millis(10);
    assert!(feed(c, t, Inject::to_client(Flags::ACK, S1, C1 + 1), cc).is_empty());
    assert_eq!(c.state(), State::FinWait2);
    let t = Instant::from_millis(20);
    let out = feed(
        c,
        t,
        Inject::to_client(Flags::FIN | Flags::ACK, S1, C1 + 1).data(data),
        cc,
    );
    assert_eq!(c.state(), State::TimeWait);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags(), Flags::ACK);
    assert_eq!(out[0].seq(), SeqNum(C1 + 1));
    assert_eq!(out[0].ack(), SeqNum(S1) + data.len() + 1u32);
    t
}

/// Figure 12, the normal close sequence, over a pipe: the client (a) closes first and goes
/// FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT → (2·MSL later) CLOSED; the server (b) goes
/// CLOSE-WAIT → LAST-ACK → CLOSED. Each FIN occupies one sequence number, so its ACK is
/// the FIN's sequence number plus one.
#[test]
fn active_close_full_sequence_rfc9293_figure12() {
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    p.log.clear();

    // 1. The client closes: FIN-WAIT-1 at once, <SEQ=100><ACK=300><CTL=FIN,ACK> on the wire.
    p.a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(p.a.state(), State::FinWait1);
    p.run_until(|p| p.b.state() == State::CloseWait, Duration::from_secs(1));
    // 2. The server ACKs the FIN (CLOSE-WAIT), and the client moves to FIN-WAIT-2.
    p.run_until(|p| p.a.state() == State::FinWait2, Duration::from_secs(1));
    assert_eq!(p.b.state(), State::CloseWait);
    let a_segs = p.sent_by(true);
    let b_segs = p.sent_by(false);
    assert_eq!(a_segs.len(), 1, "{a_segs:?}");
    assert_eq!(a_segs[0].flags(), Flags::FIN | Flags::ACK);
    assert_eq!(a_segs[0].seq(), SeqNum(C1));
    assert_eq!(a_segs[0].ack(), SeqNum(S1));
    assert_eq!(a_segs[0].len(), 0);
    assert_eq!(b_segs.len(), 1, "{b_segs:?}");
    assert_eq!(b_segs[0].flags(), Flags::ACK);
    assert_eq!(b_segs[0].seq(), SeqNum(S1));
    assert_eq!(
        b_segs[0].ack(),
        SeqNum(C1 + 1),
        "FIN consumes one sequence number"
    );
    // The server's application sees end of stream; it may still send.
    let mut buf = [0u8; 16];
    assert_eq!(p.b.recv(&mut buf), Ok(0));
    assert!(p.b.peer_closed());

    // 3. The server closes: LAST-ACK, its FIN <SEQ=300><ACK=101>.
    p.log.clear();
    p.b.close(p.now, &mut p.ctr_b);
    assert_eq!(p.b.state(), State::LastAck);
    p.run_until(|p| p.a.state() == State::TimeWait, Duration::from_secs(1));
    // 4. The client ACKs it from TIME-WAIT; the server is CLOSED once that ACK arrives.
    p.run_until(|p| p.b.state() == State::Closed, Duration::from_secs(1));
    let a_segs = p.sent_by(true);
    let b_segs = p.sent_by(false);
    assert_eq!(b_segs.len(), 1, "{b_segs:?}");
    assert_eq!(b_segs[0].flags(), Flags::FIN | Flags::ACK);
    assert_eq!(b_segs[0].seq(), SeqNum(S1));
    assert_eq!(b_segs[0].ack(), SeqNum(C1 + 1));
    assert_eq!(a_segs.len(), 1, "{a_segs:?}");
    assert_eq!(a_segs[0].flags(), Flags::ACK);
    assert_eq!(a_segs[0].seq(), SeqNum(C1 + 1));
    assert_eq!(
        a_segs[0].ack(),
        SeqNum(S1 + 1),
        "FIN consumes one sequence number"
    );
    assert_eq!(p.b.error(), None);
    // Closed, and shut down for writing: a write is still EPIPE, as on Linux, not ENOTCONN.
    assert_eq!(p.b.send(b"late"), Err(Error::BrokenPipe));
    // The client entered TIME-WAIT when the server's FIN arrived, the instant it sent that ACK.
    let entered_time_wait = p
        .log
        .iter()
        .find(|(_, from_a, _)| *from_a)
        .map(|(t, _, _)| *t)
        .unwrap();

    // 5. TIME-WAIT lasts 2·MSL (60 s), then the TCB is deleted (§3.10.8).
    assert_eq!(p.a.state(), State::TimeWait);
    let expiry = entered_time_wait + Duration::from_secs(60);
    assert_eq!(p.a.poll_timeout(), Some(expiry));
    p.a.handle_timeout(expiry - Duration::from_millis(1), &mut p.ctr_a);
    assert_eq!(p.a.state(), State::TimeWait);
    p.run_until(|p| p.a.state() == State::Closed, Duration::from_secs(120));
    assert_eq!(p.now, expiry);
    assert_eq!(p.a.error(), None);
    assert_eq!(p.a.recv(&mut buf), Ok(0));
    assert!(p.a.is_finished() && p.b.is_finished());
}

/// Figure 13: both FINs cross. Each side receives a FIN that does not acknowledge its own
/// (CLOSING), then the ACK of its FIN (TIME-WAIT). Both sides wait 2·MSL.
#[test]
fn simultaneous_close_rfc9293_figure13() {
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    p.log.clear();
    p.a.shutdown(Shutdown::Write).unwrap();
    p.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(p.a.state(), State::FinWait1);
    assert_eq!(p.b.state(), State::FinWait1);
    p.run_until(
        |p| p.a.state() != State::FinWait1 && p.b.state() != State::FinWait1,
        Duration::from_secs(1),
    );
    assert_eq!(p.a.state(), State::Closing);
    assert_eq!(p.b.state(), State::Closing);
    p.run_until(
        |p| p.a.state() == State::TimeWait && p.b.state() == State::TimeWait,
        Duration::from_secs(1),
    );

    // On the wire: each side's FIN <SEQ=x><ACK=y> and then <SEQ=x+1><ACK=y+1>.
    for (from_a, seq, ack) in [(true, C1, S1), (false, S1, C1)] {
        let segs = p.sent_by(from_a);
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert_eq!(segs[0].flags(), Flags::FIN | Flags::ACK);
        assert_eq!(segs[0].seq(), SeqNum(seq));
        assert_eq!(segs[0].ack(), SeqNum(ack));
        assert_eq!(segs[1].flags(), Flags::ACK);
        assert_eq!(segs[1].seq(), SeqNum(seq + 1));
        assert_eq!(segs[1].ack(), SeqNum(ack + 1));
    }
    // Both then expire from TIME-WAIT.
    p.run_until(
        |p| p.a.state() == State::Closed && p.b.state() == State::Closed,
        Duration::from_secs(61),
    );
    assert_eq!(p.a.error(), None);
    assert_eq!(p.b.error(), None);
}

/// §3.10.7.4 eighth step, FIN-WAIT-1: "If our FIN has been ACKed (perhaps in this segment),
/// then enter TIME-WAIT". One segment carrying the peer's FIN and the ACK of ours goes
/// straight to TIME-WAIT, never through CLOSING.
#[test]
fn fin_wait1_fin_with_ack_of_our_fin_enters_time_wait() {
    let (mut c, mut cc) = injected_client();
    c.shutdown(Shutdown::Write).unwrap();
    let fin = drain(&mut c, T0, &mut cc);
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0].seq(), SeqNum(C1));
    assert!(fin[0].flags().fin());
    while c.poll_event().is_some() {}

    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::FIN | Flags::ACK, S1, C1 + 1),
        &mut cc,
    );
    assert_eq!(c.state(), State::TimeWait);
    let mut states = vec![];
    while let Some(e) = c.poll_event() {
        if let Event::StateChanged { to, .. } = e {
            states.push(to);
        }
    }
    assert!(!states.contains(&State::Closing), "{states:?}");
    assert_eq!(states.last(), Some(&State::TimeWait));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags(), Flags::ACK);
    assert_eq!(out[0].seq(), SeqNum(C1 + 1));
    assert_eq!(out[0].ack(), SeqNum(S1 + 1));
    assert_eq!(c.poll_timeout(), Some(T0 + Duration::from_secs(60)));
}

/// Half-close (§3.6: "CLOSE ... the user who closes may continue to RECEIVE until told that
/// the other side has CLOSED also"): the client shuts down writing, then reads several KB
/// the server still sends, byte-exact, and sees end of stream only after the server closes.
#[test]
fn half_close_client_keeps_receiving_until_server_closes() {
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    p.a.shutdown(Shutdown::Write).unwrap();
    p.run_until(
        |p| p.a.state() == State::FinWait2 && p.b.state() == State::CloseWait,
        Duration::from_secs(1),
    );
    assert_eq!(p.a.send(b"more"), Err(Error::BrokenPipe));

    let data = pattern(20_000, 42);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..100_000 {
        if sent < data.len() {
            sent += p.b.send(&data[sent..]).unwrap();
        }
        let n = p.a.recv(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        if got.len() >= data.len() {
            break;
        }
        assert!(!p.a.peer_closed(), "EOF before the server closed");
        assert!(
            p.step(),
            "pipe stalled with {} of {} bytes",
            got.len(),
            data.len()
        );
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "half-closed client received different bytes");
    assert_eq!(p.a.state(), State::FinWait2);
    assert_eq!(p.a.recv(&mut buf), Ok(0));
    assert!(!p.a.peer_closed());

    p.b.close(p.now, &mut p.ctr_b);
    p.run_until(
        |p| p.a.state() == State::TimeWait && p.b.state() == State::Closed,
        Duration::from_secs(5),
    );
    assert!(p.a.peer_closed());
    assert_eq!(p.a.recv(&mut buf), Ok(0));
    assert_eq!(p.a.error(), None);
    assert_eq!(p.b.error(), None);
}

/// §3.10.7.4 eighth: a FIN is processed only once all text before it has arrived. A FIN
/// after a gap leaves the state alone and draws an ACK for RCV.NXT; when the gap fills,
/// the connection enters CLOSE-WAIT and the reader gets all data, then end of stream.
#[test]
fn fin_after_gap_is_held_until_gap_fills() {
    let (mut c, mut cc) = injected_client();
    let first = pattern(100, 1);
    let second = pattern(100, 2);

    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::FIN | Flags::ACK, S1 + 100, C1).data(&second),
        &mut cc,
    );
    assert_eq!(c.state(), State::Established);
    assert!(!c.peer_closed());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags(), Flags::ACK);
    assert_eq!(out[0].seq(), SeqNum(C1));
    assert_eq!(
        out[0].ack(),
        SeqNum(S1),
        "ACK for RCV.NXT, not past the gap"
    );
    let mut buf = [0u8; 512];
    assert_eq!(c.recv(&mut buf), Ok(0), "nothing readable yet, not EOF");
    assert!(!c.is_readable());

    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK, S1, C1).data(&first),
        &mut cc,
    );
    assert_eq!(c.state(), State::CloseWait);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags(), Flags::ACK);
    assert_eq!(out[0].ack(), SeqNum(S1 + 201), "200 bytes and the FIN");

    let got = read_all(&mut c);
    assert_eq!(got, [first, second].concat());
    assert_eq!(c.recv(&mut buf), Ok(0));
    assert!(c.peer_closed());
}

/// Data that arrived before TIME-WAIT stays readable after TIME-WAIT expires and the
/// connection is CLOSED; then the reader sees end of stream, not an error.
#[test]
fn time_wait_expiry_keeps_unread_data_readable() {
    let (mut c, mut cc) = injected_client();
    let data = pattern(300, 9);
    let t = client_into_time_wait(&mut c, &mut cc, &data);
    let expiry = t + Duration::from_secs(60);
    assert_eq!(c.poll_timeout(), Some(expiry));
    c.handle_timeout(expiry, &mut cc);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), None);
    assert!(!c.is_finished(), "unread data keeps the connection around");
    assert!(drain(&mut c, expiry, &mut cc).is_empty());

    assert_eq!(read_all(&mut c), data);
    let mut buf = [0u8; 16];
    assert_eq!(c.recv(&mut buf), Ok(0));
    assert!(c.is_finished());
}

/// §3.10.7.4 TIME-WAIT: "The only thing that can arrive in this state is a retransmission of
/// the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
#[test]
fn retransmitted_fin_in_time_wait_is_acked_and_restarts_timer() {
    let (mut c, mut cc) = injected_client();
    let t = client_into_time_wait(&mut c, &mut cc, b"");
    assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(60)));

    let t2 = t + Duration::from_secs(25);
    c.handle_timeout(t2, &mut cc);
    let out = feed(
        &mut c,
        t2,
        Inject::to_client(Flags::FIN | Flags::ACK, S1, C1 + 1),
        &mut cc,
    );
    assert_eq!(c.state(), State::TimeWait);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags(), Flags::ACK);
    assert_eq!(out[0].seq(), SeqNum(C1 + 1));
    assert_eq!(out[0].ack(), SeqNum(S1 + 1));
    let restarted = t2 + Duration::from_secs(60);
    assert_eq!(c.poll_timeout(), Some(restarted));

    // The original expiry passes without effect; the restarted one closes.
    c.handle_timeout(t + Duration::from_secs(60), &mut cc);
    assert_eq!(c.state(), State::TimeWait);
    c.handle_timeout(restarted, &mut cc);
    assert_eq!(c.state(), State::Closed);
}

/// A new SYN for the same 4-tuple in TIME-WAIT may start a new incarnation when it is
/// beyond the old one: a higher sequence number than RCV.NXT (RFC 9293 §3.6.1, Linux), or,
/// with timestamps, a TSval newer than TS.Recent (RFC 6191 §2). An old one may not.
#[test]
fn time_wait_accepts_syn_only_from_a_newer_incarnation() {
    // Without timestamps: the sequence number decides.
    let (mut c, mut cc) = injected_client();
    client_into_time_wait(&mut c, &mut cc, b"");
    let rcv_nxt = S1 + 1;
    let syn = |seq: u32| Inject::to_client(Flags::SYN, seq, 0).seg();
    assert_eq!(
        c.time_wait_accepts_syn(&syn(rcv_nxt + 100_000).repr()),
        Some(SeqNum(C1 + 1) + 65537u32),
        "the new ISN is past the old SND.NXT"
    );
    assert!(c.time_wait_accepts_syn(&syn(rcv_nxt - 10).repr()).is_none());
    assert!(c.time_wait_accepts_syn(&syn(SERVER_ISS.0).repr()).is_none());
    // Not a plain SYN: never.
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, rcv_nxt + 100_000, C1 + 1).seg();
    assert!(c.time_wait_accepts_syn(&synack.repr()).is_none());

    // With timestamps negotiated: the timestamp decides (RFC 6191).
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    assert!(p.a.info().timestamps);
    p.a.shutdown(Shutdown::Write).unwrap();
    p.run_until(|p| p.b.state() == State::CloseWait, Duration::from_secs(1));
    p.b.close(p.now, &mut p.ctr_b);
    p.run_until(
        |p| p.a.state() == State::TimeWait && p.b.state() == State::Closed,
        Duration::from_secs(1),
    );
    let ts_recent = p
        .sent_by(false)
        .last()
        .and_then(|s| s.repr().options.timestamps)
        .expect("server segments carry timestamps")
        .tsval;
    assert!(ts_recent > 0);
    let b_rcv_nxt = p.a.irs() + 2u32; // SYN and FIN
    let ts_syn = |seq: SeqNum, tsval: u32| {
        Inject::to_client(Flags::SYN, seq.0, 0)
            .ts(tsval, 0)
            .mss(1460)
            .seg()
    };
    assert!(
        p.a.time_wait_accepts_syn(&ts_syn(b_rcv_nxt + 1000u32, ts_recent + 1).repr())
            .is_some(),
        "newer timestamp"
    );
    assert!(
        p.a.time_wait_accepts_syn(&ts_syn(b_rcv_nxt + 1000u32, ts_recent - 2).repr())
            .is_none(),
        "an older timestamp (PAWS), even with a higher sequence number"
    );
}

/// Linux's tcp_fin_timeout: a connection the application has closed (orphaned) does not wait
/// forever in FIN-WAIT-2 for a peer that never sends its FIN; it is deleted after
/// `fin_wait2_timeout`. A connection that only shut down writing may still receive, so it
/// stays in FIN-WAIT-2.
#[test]
fn fin_wait2_times_out_only_when_orphaned() {
    let (mut c, mut cc) = injected_client();
    c.close(T0, &mut cc);
    assert_eq!(c.state(), State::FinWait1);
    let fin = drain(&mut c, T0, &mut cc);
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0].flags(), Flags::FIN | Flags::ACK);
    let t1 = Instant::from_secs(1);
    feed(
        &mut c,
        t1,
        Inject::to_client(Flags::ACK, S1, C1 + 1),
        &mut cc,
    );
    assert_eq!(c.state(), State::FinWait2);
    let limit = t1 + Duration::from_secs(60);
    assert_eq!(c.poll_timeout(), Some(limit));
    c.handle_timeout(limit - Duration::from_millis(1), &mut cc);
    assert_eq!(c.state(), State::FinWait2);
    c.handle_timeout(limit, &mut cc);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.poll_timeout(), None);
    assert!(c.is_finished());

    // Only shutdown(Write): no timeout; FIN-WAIT-2 lasts as long as the peer keeps it open.
    let (mut c, mut cc) = injected_client();
    c.shutdown(Shutdown::Write).unwrap();
    drain(&mut c, T0, &mut cc);
    feed(
        &mut c,
        t1,
        Inject::to_client(Flags::ACK, S1, C1 + 1),
        &mut cc,
    );
    assert_eq!(c.state(), State::FinWait2);
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(Instant::from_secs(3600), &mut cc);
    assert_eq!(c.state(), State::FinWait2);
    // ... and still receives.
    feed(
        &mut c,
        Instant::from_secs(3600),
        Inject::to_client(Flags::ACK, S1, C1 + 1).data(b"late"),
        &mut cc,
    );
    assert_eq!(read_all(&mut c), b"late");
    // Closing it now (already in FIN-WAIT-2) orphans it: the timeout starts at close().
    let t2 = Instant::from_secs(3601);
    c.close(t2, &mut cc);
    assert_eq!(c.state(), State::FinWait2);
    let out = drain(&mut c, t2, &mut cc);
    assert!(
        out.iter().all(|s| !s.flags().fin() && !s.flags().rst()),
        "the FIN was already sent: {out:?}"
    );
    // Run the timers (the delayed ACK for "late" fires first) until the connection closes:
    // that happens exactly 60 s after close().
    let mut closed_at = None;
    for _ in 0..10 {
        let Some(t) = c.poll_timeout() else { break };
        c.handle_timeout(t, &mut cc);
        drain(&mut c, t, &mut cc);
        if c.state() == State::Closed {
            closed_at = Some(t);
            break;
        }
    }
    assert_eq!(closed_at, Some(t2 + Duration::from_secs(60)));
}

/// §3.10.7.4 seventh, CLOSE-WAIT: "This should not occur since a FIN has been received from
/// the remote side. Ignore the segment text." Data after the FIN never reaches the reader.
#[test]
fn data_after_peer_fin_is_not_delivered() {
    let (mut c, mut cc) = injected_client();
    feed(
        &mut c,
        T0,
        Inject::to_client(Flags::FIN | Flags::ACK, S1, C1).data(b"hello"),
        &mut cc,
    );
    assert_eq!(c.state(), State::CloseWait);
    feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, S1 + 6, C1).data(b"bogus data"),
        &mut cc,
    );
    assert_eq!(c.state(), State::CloseWait);
    assert_eq!(c.recv_queue_len(), 5);
    assert_eq!(read_all(&mut c), b"hello");
    let mut buf = [0u8; 64];
    assert_eq!(c.recv(&mut buf), Ok(0));
    assert_eq!(c.recv(&mut buf), Ok(0));
}

/// Writing after shutdown(Write) is EPIPE; calls on a connection that never connected are
/// ENOTCONN.
#[test]
fn write_after_shutdown_is_broken_pipe_and_unconnected_is_not_connected() {
    let (mut c, _cc) = injected_client();
    assert_eq!(c.send(b"ok"), Ok(2));
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.send(b"late"), Err(Error::BrokenPipe));
    assert_eq!(c.send_capacity(), 0);
    assert_eq!(Error::BrokenPipe.kind(), std::io::ErrorKind::BrokenPipe);
    let io: std::io::Error = Error::BrokenPipe.into();
    assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);

    let cfg = Arc::new(config());
    let mut fresh = client(&cfg);
    let mut buf = [0u8; 16];
    assert_eq!(fresh.recv(&mut buf), Err(Error::NotConnected));
    assert_eq!(fresh.send(b"x"), Err(Error::NotConnected));
    assert_eq!(Error::NotConnected.kind(), std::io::ErrorKind::NotConnected);
}

/// Linux (RFC 2525 §2.17): close() with received data the application never read aborts the
/// connection: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK> instead of a FIN, counted as
/// TCPAbortOnData.
#[test]
fn close_with_unread_data_sends_rst() {
    let (mut c, mut cc) = injected_client();
    c.set_nodelay(true);
    assert_eq!(c.send(&[1u8; 50]), Ok(50));
    let out = drain(&mut c, T0, &mut cc);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), 50); // SND.NXT is now C1 + 50, SND.UNA still C1
    feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, C1).data(&[2u8; 100]),
        &mut cc,
    );
    assert_eq!(c.recv_queue_len(), 100);

    c.close(T0, &mut cc);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(cc.abort_on_data, 1);
    let out = drain(&mut c, T0, &mut cc);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags(), Flags::RST | Flags::ACK);
    assert_eq!(out[0].seq(), SeqNum(C1 + 50), "RST at SND.NXT");
    assert_eq!(out[0].ack(), SeqNum(S1 + 100));
    assert_eq!(out[0].len(), 0);
    assert!(!out[0].flags().fin());
    assert_eq!(c.poll_timeout(), None);
    assert!(c.is_finished());
}

/// §3.10.4 CLOSE in SYN-SENT: "Delete the TCB and return 'error: closing' responses to any
/// queued SENDs, or RECEIVEs." Nothing goes on the wire, no timer stays armed.
#[test]
fn close_in_syn_sent_goes_closed_silently() {
    let cfg = Arc::new(config());
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    assert_eq!(drain(&mut c, T0, &mut cc).len(), 1); // the SYN
    c.close(Instant::from_millis(100), &mut cc);
    assert_eq!(c.state(), State::Closed);
    assert!(drain(&mut c, Instant::from_millis(100), &mut cc).is_empty());
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(cc.out_rsts, 0);
    assert!(c.is_finished());
}

/// Found against the Linux kernel: data and FIN sent, one segment lost, the retransmission
/// timer goes back to SND.UNA, and the peer (which queued the rest out of order) acknowledges
/// everything, FIN included, after the first retransmitted segment. The FIN keeps its
/// sequence number: the ACK completes the close, and no second FIN is made up one sequence
/// number further on (which the kernel answered with a RST).
#[test]
fn an_ack_past_the_retransmission_point_covers_the_fin() {
    let (mut c, mut cc) = injected_client();
    c.send(&[7u8; 3000]).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let out = drain(&mut c, T0, &mut cc);
    let fin = out.iter().find(|s| s.flags().fin()).expect("a FIN");
    let fin_seq = fin.seq().0.wrapping_add(fin.len() as u32);
    assert_eq!(fin_seq, C1 + 3000);
    assert_eq!(c.state(), State::FinWait1);
    // Nothing is acknowledged: the retransmission timer fires and resends from SND.UNA.
    let t = c.poll_timeout().expect("retransmission timer");
    c.handle_timeout(t, &mut cc);
    let again = drain(&mut c, t, &mut cc);
    assert_eq!(again.first().map(|s| s.seq().0), Some(C1));
    // The peer had the rest: it acknowledges data and FIN at once.
    let after = feed(
        &mut c,
        t,
        Inject::to_client(Flags::ACK, S1, fin_seq + 1),
        &mut cc,
    );
    assert_eq!(c.state(), State::FinWait2);
    assert!(
        after.iter().all(|s| !s.flags().fin()),
        "a second FIN: {:?}",
        after
            .iter()
            .map(|s| (s.seq().0, s.flags()))
            .collect::<Vec<_>>()
    );
    // Nothing more to send, ever: no timer that would resend a FIN.
    let later = t + Duration::from_secs(5);
    c.handle_timeout(later, &mut cc);
    assert!(
        drain(&mut c, later, &mut cc)
            .iter()
            .all(|s| !s.flags().fin())
    );
}

/// TIME-WAIT as Linux's `tcp_timewait_state_process` runs it: a RST at RCV.NXT ends it
/// (RFC 1337's "assassination", Linux `tcp_rfc1337` = 0), unless `Config::rfc1337` asks to
/// ignore it; a RST elsewhere is dropped without an answer either way.
#[test]
fn time_wait_rst_ends_it_unless_rfc1337() {
    for rfc1337 in [false, true] {
        let cfg = Arc::new(Config {
            timestamps: false,
            sack: false,
            window_scaling: false,
            rfc1337,
            ..config()
        });
        let mut c = client(&cfg);
        let mut cc = Counters::default();
        c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
        drain(&mut c, T0, &mut cc);
        let synack = Inject::to_client(Flags::SYN | Flags::ACK, SERVER_ISS.0, C1).seg();
        deliver(&mut c, T0, &synack, &mut cc);
        drain(&mut c, T0, &mut cc);
        let t = client_into_time_wait(&mut c, &mut cc, b"");
        let rcv_nxt = S1 + 1;
        let elsewhere = Inject::to_client(Flags::RST, rcv_nxt + 100, 0);
        assert!(feed(&mut c, t, elsewhere, &mut cc).is_empty());
        assert_eq!(c.state(), State::TimeWait);
        let exact = Inject::to_client(Flags::RST, rcv_nxt, 0);
        assert!(feed(&mut c, t, exact, &mut cc).is_empty());
        let want = if rfc1337 {
            State::TimeWait
        } else {
            State::Closed
        };
        assert_eq!(c.state(), want, "rfc1337 = {rfc1337}");
    }
}
