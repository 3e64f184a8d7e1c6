//! Resets and robustness: RFC 9293 §3.5.2-§3.5.3 and §3.10.7 (RST processing, CLOSED),
//! §3.10.5 ABORT, RFC 5961 (blind RST, SYN and data injection; challenge ACK limit),
//! RFC 7323 §5 (PAWS), RFC 1122 §4.2.3.6 (keepalive) and RFC 5482 (user timeout).

use std::sync::Arc;

use super::harness::*;
use crate::tcp::connection::reset_for_closed;
use crate::tcp::{Config, Connection, Counters, Error, Keepalive, SeqNum, Shutdown, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

const T0: Instant = Instant::ZERO;

/// The client's first data byte (ISS + 1) and the server's.
const C1: u32 = CLIENT_ISS.0 + 1;
const S1: u32 = SERVER_ISS.0 + 1;

/// A client with ISS `iss`, driven by injected segments and established with a server of ISS
/// `SERVER_ISS` that offered `window`; no timestamps, SACK or window scaling unless `cfg`
/// says otherwise.
fn established_with(cfg: Config, iss: u32, window: u16) -> (Connection, Counters) {
    let cfg = Arc::new(cfg);
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, SeqNum(iss), &mut cc).unwrap();
    drain(&mut c, T0, &mut cc);
    let mut synack =
        Inject::to_client(Flags::SYN | Flags::ACK, SERVER_ISS.0, iss + 1).window(window);
    if cfg.timestamps {
        synack = synack.ts(1000, 0);
    }
    deliver(&mut c, T0, &synack.seg(), &mut cc);
    assert_eq!(c.state(), State::Established);
    drain(&mut c, T0, &mut cc); // the third segment of the handshake
    (c, cc)
}

/// No options, and no per-connection throttle on answers to invalid segments (as the RFC
/// 5961 packetdrill scripts set tcp_invalid_ratelimit=0), so each test sees every answer.
fn plain_config() -> Config {
    Config {
        timestamps: false,
        sack: false,
        window_scaling: false,
        invalid_ratelimit: Duration::ZERO,
        ..config()
    }
}

fn established() -> (Connection, Counters) {
    established_with(plain_config(), CLIENT_ISS.0, 65535)
}

/// Delivers `inj` to `c` at `now` and returns everything `c` sends right after.
fn feed(c: &mut Connection, now: Instant, inj: Inject, cc: &mut Counters) -> Vec<Seg> {
    deliver(c, now, &inj.seg(), cc);
    drain(c, now, cc)
}

/// Asserts `out` is exactly one bare ACK <SEQ=seq><ACK=ack><CTL=ACK>.
#[track_caller]
fn assert_one_ack(out: &[Seg], seq: u32, ack: u32) {
    assert_eq!(out.len(), 1, "expected one ACK, got {out:?}");
    assert_eq!(out[0].flags(), Flags::ACK);
    assert_eq!(out[0].seq(), SeqNum(seq));
    assert_eq!(out[0].ack(), SeqNum(ack));
    assert_eq!(out[0].len(), 0);
}

// ----- RFC 5961 §3: blind RST -----

/// RFC 5961 §3.2: "If the RST bit is set and the sequence number exactly matches the next
/// expected sequence number (RCV.NXT), then TCP MUST reset the connection." Data received
/// before stays readable; then the reader gets the reset.
#[test]
fn rst_at_exactly_rcv_nxt_resets_rfc5961_3_2() {
    let (mut c, mut cc) = established();
    feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, C1).data(&[7u8; 100]),
        &mut cc,
    );
    let out = feed(
        &mut c,
        Instant::from_millis(1),
        Inject::to_client(Flags::RST, S1 + 100, 0),
        &mut cc,
    );
    assert!(out.is_empty(), "never answer a RST: {out:?}");
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(Error::Reset));
    assert_eq!(cc.estab_resets, 1);
    assert_eq!(cc.challenge_acks, 0);
    assert_eq!(c.poll_timeout(), None);

    let mut buf = [0u8; 256];
    assert_eq!(c.recv(&mut buf), Ok(100));
    assert_eq!(&buf[..100], &[7u8; 100][..]);
    assert_eq!(c.recv(&mut buf), Err(Error::Reset));
    // Reported once, as Linux's sock_error(): then the stream has ended and writing is
    // refused.
    assert_eq!(c.recv(&mut buf), Ok(0));
    assert_eq!(c.send(b"x"), Err(Error::BrokenPipe));
    assert_eq!(Error::Reset.kind(), std::io::ErrorKind::ConnectionReset);
}

/// RFC 5961 §3.2: "If the RST bit is set and the sequence number does not exactly match the
/// next expected sequence value, yet is within the current receive window, TCP MUST send an
/// acknowledgment (challenge ACK): <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>". The connection
/// survives and keeps working.
#[test]
fn rst_in_window_but_not_exact_gets_challenge_ack_rfc5961_3_2() {
    let (mut c, mut cc) = established();
    for off in [1u32, 10, 30_000, 65_534] {
        let out = feed(
            &mut c,
            T0,
            Inject::to_client(Flags::RST, S1 + off, 0),
            &mut cc,
        );
        assert_one_ack(&out, C1, S1);
        assert_eq!(c.state(), State::Established, "RST at RCV.NXT+{off}");
    }
    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::RST | Flags::ACK, S1 + 1, C1),
        &mut cc,
    );
    assert_one_ack(&out, C1, S1);
    assert_eq!(cc.challenge_acks, 5);
    assert_eq!(cc.estab_resets, 0);
    assert_eq!(c.error(), None);

    // Still a working connection.
    feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, C1).data(b"alive"),
        &mut cc,
    );
    let mut buf = [0u8; 16];
    assert_eq!(c.recv(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"alive");
}

/// RFC 5961 §3.2: "If the RST bit is set and the sequence number is outside the current
/// receive window, silently drop the segment."
#[test]
fn rst_out_of_window_is_dropped_silently_rfc5961_3_2() {
    let (mut c, mut cc) = established();
    for seq in [
        S1 - 1,
        S1.wrapping_sub(100_000),
        S1 + 65_535,
        S1 + 1_000_000,
    ] {
        let out = feed(&mut c, T0, Inject::to_client(Flags::RST, seq, 0), &mut cc);
        assert!(out.is_empty(), "RST at {seq}: {out:?}");
        let out = feed(
            &mut c,
            T0,
            Inject::to_client(Flags::RST | Flags::ACK, seq, C1),
            &mut cc,
        );
        assert!(out.is_empty(), "RST|ACK at {seq}: {out:?}");
        assert_eq!(c.state(), State::Established);
    }
    assert_eq!(cc.challenge_acks, 0);
    assert_eq!(c.error(), None);
}

// ----- RFC 5961 §4: blind SYN -----

/// RFC 5961 §4.2: "If the SYN bit is set, irrespective of the sequence number, TCP MUST send
/// an ACK (also referred to as challenge ACK) to the remote peer". The state is unchanged
/// and each one is counted (TCPSYNChallenge).
#[test]
fn syn_in_established_gets_challenge_ack_rfc5961_4() {
    let (mut c, mut cc) = established();
    // In the window: exactly at RCV.NXT, and inside.
    for seq in [S1, S1 + 5] {
        let out = feed(&mut c, T0, Inject::to_client(Flags::SYN, seq, 0), &mut cc);
        assert_one_ack(&out, C1, S1);
        assert_eq!(c.state(), State::Established);
    }
    assert_eq!(cc.syn_challenges, 2);
    // Outside the window, and a SYN-ACK: the same.
    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::SYN, S1 + 1_000_000, 0),
        &mut cc,
    );
    assert_one_ack(&out, C1, S1);
    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::SYN | Flags::ACK, S1 + 3, C1),
        &mut cc,
    );
    assert_one_ack(&out, C1, S1);
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.error(), None);
    assert_eq!(cc.challenge_acks, 4);
    assert_eq!(
        cc.syn_challenges, 4,
        "every SYN answered with a challenge ACK is counted, in the window or not"
    );
}

// ----- RFC 5961 §5: blind data injection -----

/// RFC 5961 §5.2 (and RFC 9293 §3.10.7.4 fifth): "If the ACK acknowledges something not yet
/// sent (SEG.ACK > SND.NXT) then send an ACK, drop the segment, and return." Its data is not
/// delivered.
#[test]
fn ack_for_unsent_data_is_dropped_with_ack_rfc5961_5() {
    let (mut c, mut cc) = established();
    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK, S1, C1 + 1),
        &mut cc,
    );
    assert_one_ack(&out, C1, S1);
    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, C1 + 500).data(b"injected"),
        &mut cc,
    );
    assert_one_ack(&out, C1, S1);
    assert_eq!(cc.ack_too_new, 2);
    assert_eq!(c.recv_queue_len(), 0);
    let mut buf = [0u8; 16];
    assert_eq!(c.recv(&mut buf), Ok(0));
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.info().bytes_in_flight, 0);
}

/// RFC 5961 §5.2: the ACK value is acceptable only if
/// "(SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT"; an older one is dropped and answered
/// with an ACK. One exactly at the boundary is still acceptable (its data is delivered).
#[test]
fn ack_older_than_max_snd_wnd_is_dropped_with_ack_rfc5961_5() {
    let iss = 100_000;
    let (mut c, mut cc) = established_with(plain_config(), iss, 1000);
    let una = iss + 1;
    // SND.UNA - MAX.SND.WND = una - 1000.
    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, una - 1001)
            .window(1000)
            .data(b"injected"),
        &mut cc,
    );
    assert_one_ack(&out, una, S1);
    assert_eq!(c.recv_queue_len(), 0);
    assert_eq!(c.state(), State::Established);

    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, una - 1000)
            .window(1000)
            .data(b"fine"),
        &mut cc,
    );
    // The old but acceptable ACK changes nothing; its data is acknowledged as any first
    // data is (quick-ACK mode), with no challenge.
    assert_one_ack(&out, una, S1 + 4);
    let mut buf = [0u8; 16];
    assert_eq!(c.recv(&mut buf), Ok(4));
    assert_eq!(&buf[..4], b"fine");
}

/// RFC 5961 §7: challenge ACKs are rate-limited. With a limit of 3 per second, 10 in-window
/// RSTs within one second draw exactly 3 ACKs; the other 7 are counted as skipped. After a
/// second, challenge ACKs are allowed again.
#[test]
fn challenge_acks_are_throttled_per_connection_like_linux() {
    // Linux's tcp_invalid_ratelimit: one answer to an invalid segment per 500 ms.
    let (mut c, mut cc) = established_with(config_with_throttle(), CLIENT_ISS.0, 65535);
    let start = Instant::from_secs(2);
    let mut answered = Vec::new();
    for i in 0..8u32 {
        let now = start + Duration::from_millis(100 * i as u64);
        let out = feed(
            &mut c,
            now,
            Inject::to_client(Flags::RST, S1 + 1 + i, 0),
            &mut cc,
        );
        if !out.is_empty() {
            assert_one_ack(&out, C1, S1);
            answered.push(i);
        }
    }
    assert_eq!(answered, [0, 5], "at 0 ms and 500 ms only");
    assert_eq!(cc.challenge_ack_limited, 6);
    // Out-of-window segments without data are throttled by the same clock; with data they
    // are always answered (they cannot be part of an ACK loop).
    let now = start + Duration::from_millis(1000);
    let old = Inject::to_client(Flags::ACK, S1 - 5000, C1).window(65535);
    assert_eq!(feed(&mut c, now, old, &mut cc).len(), 1);
    let old = Inject::to_client(Flags::ACK, S1 - 5000, C1).window(65535);
    assert!(feed(&mut c, now, old, &mut cc).is_empty());
    let old_data = Inject::to_client(Flags::ACK, S1 - 5000, C1)
        .window(65535)
        .data(b"x");
    assert_eq!(feed(&mut c, now, old_data, &mut cc).len(), 1);
}

fn config_with_throttle() -> Config {
    Config {
        invalid_ratelimit: Duration::from_millis(500),
        ..plain_config()
    }
}

#[test]
fn challenge_acks_are_rate_limited_rfc5961_7() {
    let cfg = Config {
        challenge_ack_limit: 3,
        ..plain_config()
    };
    let (mut c, mut cc) = established_with(cfg, CLIENT_ISS.0, 65535);
    let start = Instant::from_secs(2);
    let mut acks = 0;
    for i in 0..10u32 {
        let now = start + Duration::from_millis(10 * i as u64);
        let out = feed(
            &mut c,
            now,
            Inject::to_client(Flags::RST, S1 + 1 + i, 0),
            &mut cc,
        );
        if !out.is_empty() {
            assert_one_ack(&out, C1, S1);
            acks += 1;
        }
    }
    assert_eq!(acks, 3);
    assert_eq!(cc.challenge_acks, 3);
    assert_eq!(cc.challenge_ack_limited, 7);
    assert_eq!(c.state(), State::Established);

    // Still inside the same second: nothing.
    let almost = start + Duration::from_millis(999);
    let out = feed(
        &mut c,
        almost,
        Inject::to_client(Flags::RST, S1 + 50, 0),
        &mut cc,
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(cc.challenge_ack_limited, 8);

    // A second later: allowed again, up to the limit.
    let later = start + Duration::from_secs(1);
    let mut acks = 0;
    for i in 0..5u32 {
        let out = feed(
            &mut c,
            later,
            Inject::to_client(Flags::RST, S1 + 1 + i, 0),
            &mut cc,
        );
        acks += out.len();
    }
    assert_eq!(acks, 3);
    assert_eq!(cc.challenge_acks, 6);
    assert_eq!(cc.challenge_ack_limited, 10);
    assert_eq!(c.state(), State::Established);
}

/// §3.10.7.4 first: "If an incoming segment is not acceptable, an acknowledgment should be
/// sent in reply (unless the RST bit is set, if so drop the segment and return)".
/// Blindly injected data with a sequence number outside the window is never delivered.
#[test]
fn out_of_window_data_is_not_delivered_and_gets_ack() {
    let (mut c, mut cc) = established();
    for seq in [S1 + 70_000, S1 - 5_000, S1 + 2_000_000_000] {
        let out = feed(
            &mut c,
            T0,
            Inject::to_client(Flags::ACK | Flags::PSH, seq, C1).data(b"injected"),
            &mut cc,
        );
        assert_one_ack(&out, C1, S1);
    }
    assert_eq!(cc.out_of_window, 3);
    assert_eq!(c.recv_queue_len(), 0);
    let mut buf = [0u8; 16];
    assert_eq!(c.recv(&mut buf), Ok(0));
    // The real stream is unaffected.
    feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, C1).data(b"real"),
        &mut cc,
    );
    assert_eq!(c.recv(&mut buf), Ok(4));
    assert_eq!(&buf[..4], b"real");
}

/// The same with a peer whose ISN lies in the upper half of the sequence space (as half of
/// all random ISNs do): the receive window is what the client advertised (65535 here, RFC
/// 9293 §3.3.1 RCV.WND), so data 70 000 bytes ahead is outside it and must be dropped, not
/// queued out of order where it would later be delivered as if the peer had sent it; a RST a
/// million bytes ahead is outside it too and is dropped silently (RFC 5961 §3.2).
#[test]
fn out_of_window_data_is_not_delivered_whatever_the_peer_isn() {
    let cfg = Arc::new(plain_config());
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    drain(&mut c, T0, &mut cc);
    let irs: u32 = 3_000_000_000;
    let r1 = irs + 1;
    deliver(
        &mut c,
        T0,
        &Inject::to_client(Flags::SYN | Flags::ACK, irs, C1).seg(),
        &mut cc,
    );
    let ack = drain(&mut c, T0, &mut cc);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].ack(), SeqNum(r1));
    assert_eq!(ack[0].window(), 65535);

    let injected = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, r1 + 70_000, C1).data(b"injected"),
        &mut cc,
    );
    let (oow, ofo) = (cc.out_of_window, cc.ofo_queue);
    let rst_answer = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::RST, r1 + 1_000_000, 0),
        &mut cc,
    );
    assert_eq!(c.state(), State::Established);

    // The real stream up to the injected offset: the reader gets exactly the peer's bytes.
    let real = pattern(70_000, 5);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    for (i, chunk) in real.chunks(1000).enumerate() {
        let seq = r1 + (i as u32) * 1000;
        feed(
            &mut c,
            T0,
            Inject::to_client(Flags::ACK, seq, C1).data(chunk),
            &mut cc,
        );
        loop {
            let n = c.recv(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got.len(), real.len(), "injected bytes reached the reader");
    assert!(got == real);
    assert!(
        rst_answer.is_empty(),
        "RST far outside the window: {rst_answer:?}"
    );
    assert_one_ack(&injected, C1, r1);
    assert_eq!(oow, 1, "dropped as out of window");
    assert_eq!(ofo, 0, "not queued out of order");
}

// ----- ABORT and RST in every synchronized state -----

/// §3.10.5 ABORT in ESTABLISHED: "Send a reset segment: <SEQ=SND.NXT><CTL=RST>". The peer,
/// fed that RST, reports ConnectionReset to both reads and writes.
#[test]
fn abort_sends_rst_and_peer_reports_reset() {
    let mut p = Pipe::connected(config(), Duration::from_millis(10));
    let data = pattern(1000, 3);
    let got = p.transfer_a_to_b(&data, Duration::from_secs(5));
    assert_eq!(got, data);
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.a.info().bytes_in_flight, 0);
    p.log.clear();

    let now = p.now;
    p.a.abort(now, &mut p.ctr_a);
    assert_eq!(p.a.state(), State::Closed);
    assert_eq!(p.ctr_a.abort_on_close, 1);
    p.run_until(|p| p.b.state() == State::Closed, Duration::from_secs(1));

    let a_segs = p.sent_by(true);
    assert_eq!(a_segs.len(), 1, "{a_segs:?}");
    assert!(a_segs[0].flags().rst());
    assert!(!a_segs[0].flags().syn() && !a_segs[0].flags().fin());
    assert_eq!(a_segs[0].seq(), SeqNum(C1 + 1000), "RST at SND.NXT");
    assert_eq!(a_segs[0].len(), 0);
    assert!(p.sent_by(false).is_empty(), "a RST is never answered");

    assert_eq!(p.b.error(), Some(Error::Reset));
    assert_eq!(p.ctr_b.estab_resets, 1);
    let mut buf = [0u8; 16];
    assert_eq!(
        p.b.send(b"x"),
        Err(Error::Reset),
        "the first call reports the reset"
    );
    assert_eq!(p.b.recv(&mut buf), Ok(0), "then the stream has ended");
}

/// Brings an injected client into `state` (one of the closing states) and returns it with
/// RCV.NXT.
fn client_in(state: State) -> (Connection, Counters, u32) {
    let (mut c, mut cc) = established();
    let fin_ack_ours = Inject::to_client(Flags::FIN | Flags::ACK, S1, C1 + 1);
    let fin_only = Inject::to_client(Flags::FIN | Flags::ACK, S1, C1);
    let rcv_nxt = match state {
        State::FinWait1 => {
            c.shutdown(Shutdown::Write).unwrap();
            drain(&mut c, T0, &mut cc);
            S1
        }
        State::FinWait2 => {
            c.shutdown(Shutdown::Write).unwrap();
            drain(&mut c, T0, &mut cc);
            feed(
                &mut c,
                T0,
                Inject::to_client(Flags::ACK, S1, C1 + 1),
                &mut cc,
            );
            S1
        }
        State::CloseWait => {
            feed(&mut c, T0, fin_only, &mut cc);
            S1 + 1
        }
        State::Closing => {
            c.shutdown(Shutdown::Write).unwrap();
            drain(&mut c, T0, &mut cc);
            feed(&mut c, T0, fin_only, &mut cc);
            S1 + 1
        }
        State::LastAck => {
            feed(&mut c, T0, fin_only, &mut cc);
            c.shutdown(Shutdown::Write).unwrap();
            drain(&mut c, T0, &mut cc);
            S1 + 1
        }
        State::TimeWait => {
            c.shutdown(Shutdown::Write).unwrap();
            drain(&mut c, T0, &mut cc);
            feed(&mut c, T0, fin_ack_ours, &mut cc);
            S1 + 1
        }
        _ => unreachable!(),
    };
    assert_eq!(c.state(), state);
    (c, cc, rcv_nxt)
}

/// §3.10.7.4 second, for each state that can meet a RST after the handshake.
#[track_caller]
fn rst_closes(state: State, error: Option<Error>) {
    let (mut c, mut cc, rcv_nxt) = client_in(state);
    let now = Instant::from_secs(1);
    let out = feed(
        &mut c,
        now,
        Inject::to_client(Flags::RST, rcv_nxt, 0),
        &mut cc,
    );
    assert!(out.is_empty(), "{state}: {out:?}");
    assert_eq!(c.state(), State::Closed, "RST in {state}");
    assert_eq!(c.error(), error, "RST in {state}");
    assert_eq!(c.poll_timeout(), None, "RST in {state}: timers left");
    let expect_estab_resets = u64::from(state == State::CloseWait);
    assert_eq!(cc.estab_resets, expect_estab_resets, "RST in {state}");
}

/// "ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT: If the RST bit is set, then any
/// outstanding RECEIVEs and SEND should receive 'reset' responses ... Enter the CLOSED state".
#[test]
fn rst_in_fin_wait1_closes_with_reset() {
    rst_closes(State::FinWait1, Some(Error::Reset));
}

#[test]
fn rst_in_fin_wait2_closes_with_reset() {
    rst_closes(State::FinWait2, Some(Error::Reset));
}

/// In CLOSE-WAIT the peer had already closed its side: Linux reports EPIPE, not ECONNRESET
/// (tests/packetdrill/rst-close-wait.pkt).
#[test]
fn rst_in_close_wait_closes_with_broken_pipe() {
    rst_closes(State::CloseWait, Some(Error::BrokenPipe));
}

/// "CLOSING, LAST-ACK, TIME-WAIT: If the RST bit is set, then enter the CLOSED state, delete
/// the TCB, and return." Nobody is waiting for data, so no error.
#[test]
fn rst_in_closing_closes_without_error() {
    rst_closes(State::Closing, None);
}

#[test]
fn rst_in_last_ack_closes_without_error() {
    rst_closes(State::LastAck, None);
}

#[test]
fn rst_in_time_wait_closes_without_error() {
    rst_closes(State::TimeWait, None);
}

// ----- CLOSED -----

/// §3.10.7.1: "If the ACK bit is off, sequence number zero is used,
/// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>";
/// "An incoming segment containing a RST is discarded." SYN and FIN count in SEG.LEN.
#[test]
fn closed_state_reset_rfc9293_3_10_7_1() {
    let r = |inj: Inject| reset_for_closed(&inj.seg().repr());
    assert_eq!(
        r(Inject::to_server(Flags::SYN, 100, 0)),
        Some((SeqNum(0), Some(SeqNum(101))))
    );
    assert_eq!(
        r(Inject::to_server(Flags::SYN | Flags::FIN, 100, 0).data(&[0; 10])),
        Some((SeqNum(0), Some(SeqNum(112))))
    );
    assert_eq!(
        r(Inject::to_server(Flags::FIN | Flags::PSH, 100, 0).data(&[0; 5])),
        Some((SeqNum(0), Some(SeqNum(106))))
    );
    assert_eq!(
        r(Inject::to_server(Flags::NONE, 100, 0)),
        Some((SeqNum(0), Some(SeqNum(100))))
    );
    assert_eq!(
        r(Inject::to_server(Flags::ACK, 100, 777)),
        Some((SeqNum(777), None))
    );
    assert_eq!(
        r(Inject::to_server(Flags::ACK | Flags::PSH, 100, 777).data(b"abc")),
        Some((SeqNum(777), None))
    );
    assert_eq!(r(Inject::to_server(Flags::RST, 100, 0)), None);
    assert_eq!(
        r(Inject::to_server(Flags::RST | Flags::ACK, 100, 777)),
        None
    );

    // A connection in CLOSED answers the same way.
    let cfg = Arc::new(config());
    let mut c = Connection::new(cfg, SERVER, MSS, 0);
    let mut cc = Counters::default();
    let out = feed(&mut c, T0, Inject::to_server(Flags::SYN, 100, 0), &mut cc);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags(), Flags::RST | Flags::ACK);
    assert_eq!(out[0].seq(), SeqNum(0));
    assert_eq!(out[0].ack(), SeqNum(101));
    let out = feed(
        &mut c,
        T0,
        Inject::to_server(Flags::ACK | Flags::PSH, 100, 777).data(b"abc"),
        &mut cc,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags(), Flags::RST);
    assert_eq!(out[0].seq(), SeqNum(777));
    assert!(feed(&mut c, T0, Inject::to_server(Flags::RST, 100, 0), &mut cc).is_empty());
    assert_eq!(c.state(), State::Closed);

    // So does one that was connected and then aborted: segments still in flight from the
    // peer draw <SEQ=SEG.ACK><CTL=RST>.
    let (mut c, mut cc) = established();
    c.abort(T0, &mut cc);
    drain(&mut c, T0, &mut cc);
    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, C1).data(b"late"),
        &mut cc,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags(), Flags::RST);
    assert_eq!(out[0].seq(), SeqNum(C1));
    assert_eq!(out[0].repr().dst_port, SERVER.port());
    let out = feed(
        &mut c,
        T0,
        Inject::to_client(Flags::FIN, S1, 0).data(b"x"),
        &mut cc,
    );
    assert_eq!(out[0].flags(), Flags::RST | Flags::ACK);
    assert_eq!(out[0].seq(), SeqNum(0));
    assert_eq!(out[0].ack(), SeqNum(S1 + 2));
}

// ----- PAWS -----

/// RFC 7323 §5.3 R1: "If there is a Timestamps option in the arriving segment, SEG.TSval <
/// TS.Recent, TS.Recent is valid ..., and if the RST bit is not set, then treat the arriving
/// segment as not acceptable: Send an acknowledgment in reply as specified in RFC 793 page 69
/// and drop the segment." A RST is exempt (§5.3 R1, "if the RST bit is not set").
#[test]
fn paws_drops_old_timestamp_but_not_rst_rfc7323_5() {
    let (mut c, mut cc) = established_with(config(), CLIENT_ISS.0, 65535);
    assert!(c.info().timestamps);
    let t1 = Instant::from_millis(10);
    // TS.Recent becomes 2000.
    feed(
        &mut c,
        t1,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, C1)
            .ts(2000, 0)
            .data(&[1u8; 100]),
        &mut cc,
    );
    assert_eq!(c.recv_queue_len(), 100);

    // Next in sequence, but TSval 1500 < TS.Recent: dropped, ACK sent, counted.
    let t2 = Instant::from_millis(20);
    let out = feed(
        &mut c,
        t2,
        Inject::to_client(Flags::ACK | Flags::PSH, S1 + 100, C1)
            .ts(1500, 0)
            .data(&[2u8; 100]),
        &mut cc,
    );
    assert_one_ack(&out, C1, S1 + 100);
    let ts = out[0].repr().options.timestamps.expect("timestamps in use");
    assert_eq!(ts.tsecr, 2000, "echoes TS.Recent, not the old TSval");
    assert_eq!(cc.paws_estab, 1);
    assert_eq!(
        c.recv_queue_len(),
        100,
        "the old-timestamp data is not delivered"
    );

    // A RST at RCV.NXT with an old TSval still resets the connection.
    let out = feed(
        &mut c,
        Instant::from_millis(30),
        Inject::to_client(Flags::RST, S1 + 100, 0).ts(1, 0),
        &mut cc,
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(cc.paws_estab, 1);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(Error::Reset));
    let mut buf = [0u8; 256];
    assert_eq!(c.recv(&mut buf), Ok(100));
    assert_eq!(&buf[..100], &[1u8; 100][..]);
    assert_eq!(c.recv(&mut buf), Err(Error::Reset));
}

/// Linux's allowances around RFC 7323 §5.3 R1 (`tcp_paws_discard`, `tcp_send_dupack`,
/// `tcp_disordered_ack`): a timestamp one tick behind TS.Recent passes (the segment was only
/// reordered by under a millisecond); a duplicate that PAWS rejects is still reported with a
/// D-SACK block (RFC 2883), so the sender can tell its retransmission was spurious; and a
/// late pure duplicate ACK that changes nothing passes, so its SACK information counts.
#[test]
fn paws_allows_one_tick_dsacks_rejected_duplicates_and_passes_disordered_acks() {
    let cfg = Arc::new(config());
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    drain(&mut c, T0, &mut cc);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, SERVER_ISS.0, C1)
        .ts(1000, 0)
        .sack_permitted();
    deliver(&mut c, T0, &synack.seg(), &mut cc);
    drain(&mut c, T0, &mut cc);
    assert!(c.info().sack && c.info().timestamps);

    // TS.Recent becomes 2000.
    let data = |seq: u32, tsval: u32, byte: u8| {
        Inject::to_client(Flags::ACK | Flags::PSH, seq, C1)
            .ts(tsval, 0)
            .data(&[byte; 100])
    };
    feed(&mut c, Instant::from_millis(10), data(S1, 2000, 1), &mut cc);
    // One tick older, next in sequence: accepted.
    feed(
        &mut c,
        Instant::from_millis(11),
        data(S1 + 100, 1999, 2),
        &mut cc,
    );
    assert_eq!(c.recv_queue_len(), 200);
    assert_eq!(cc.paws_estab, 0);

    // The first segment again, with a timestamp far behind: PAWS drops it, and the ACK
    // reports it as a duplicate in a D-SACK block.
    let out = feed(&mut c, Instant::from_millis(12), data(S1, 1500, 1), &mut cc);
    assert_eq!(cc.paws_estab, 1);
    assert_one_ack(&out, C1, S1 + 200);
    let sack = out[0].repr().options.sack;
    assert_eq!(
        sack.as_slice().first(),
        Some(&(SeqNum(S1), SeqNum(S1 + 100))),
        "D-SACK block for the duplicate: {out:?}"
    );
    assert_eq!(c.recv_queue_len(), 200);

    // A pure ACK (TS.Recent 2005), then a duplicate of an earlier one that was delayed
    // (TSval 1990): same sequence number, ACK and window, so it changes nothing; not a PAWS
    // drop, and not answered.
    let ack = |tsval: u32| Inject::to_client(Flags::ACK, S1 + 200, C1).ts(tsval, 0);
    feed(&mut c, Instant::from_millis(13), ack(2005), &mut cc);
    let dup_ack = ack(1990);
    let out = feed(&mut c, Instant::from_millis(14), dup_ack.clone(), &mut cc);
    assert_eq!(cc.paws_estab, 1, "{out:?}");
    assert!(out.is_empty(), "{out:?}");
    // The same ACK closing the window is no mere duplicate: PAWS drops it.
    let out = feed(&mut c, Instant::from_millis(15), dup_ack.window(0), &mut cc);
    assert_eq!(cc.paws_estab, 2, "{out:?}");
}

// ----- Keepalive and user timeout -----

fn keepalive() -> Keepalive {
    Keepalive {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(1),
        count: 3,
    }
}

/// Runs `c`'s timers until it closes or `until`, answering nothing; returns the instants at
/// which keepalive probes (<SEQ=SND.NXT-1><ACK=RCV.NXT><CTL=ACK>, no data) went out.
fn run_keepalive(
    c: &mut Connection,
    cc: &mut Counters,
    until: Instant,
    rcv_nxt: u32,
) -> Vec<Instant> {
    let mut probes = vec![];
    for _ in 0..1000 {
        let Some(t) = c.poll_timeout() else { break };
        if t > until {
            break;
        }
        c.handle_timeout(t, cc);
        for s in drain(c, t, cc) {
            if s.flags() == Flags::ACK && s.seq() == SeqNum(C1 - 1) {
                assert_eq!(s.len(), 0, "keepalive probe carries no data");
                assert_eq!(s.ack(), SeqNum(rcv_nxt));
                probes.push(t);
            }
        }
        if c.state() == State::Closed {
            break;
        }
    }
    probes
}

/// RFC 1122 §4.2.3.6: after `idle` without a segment from the peer, send probes every
/// `interval`; after `count` unanswered probes the connection is dead: TimedOut at exactly
/// idle + count·interval after the last segment received.
#[test]
fn keepalive_probes_then_times_out_rfc1122_4_2_3_6() {
    let (mut c, mut cc) = established();
    c.set_keepalive(T0, Some(keepalive()));
    // The last segment from the peer arrives at 2 s.
    let last = Instant::from_secs(2);
    feed(
        &mut c,
        last,
        Inject::to_client(Flags::ACK | Flags::PSH, S1, C1).data(b"hi"),
        &mut cc,
    );
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf), Ok(2));

    let probes = run_keepalive(&mut c, &mut cc, Instant::from_secs(100), S1 + 2);
    let secs = |s: u64| last + Duration::from_secs(s);
    assert_eq!(probes, vec![secs(10), secs(11), secs(12)]);
    assert_eq!(cc.keepalive_probes, 3);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(Error::TimedOut));
    assert_eq!(cc.abort_on_timeout, 1);
    // Exactly idle + count·interval after the last received segment, not before.
    let (mut c2, mut cc2) = established();
    c2.set_keepalive(T0, Some(keepalive()));
    feed(
        &mut c2,
        last,
        Inject::to_client(Flags::ACK, S1, C1),
        &mut cc2,
    );
    run_keepalive(&mut c2, &mut cc2, secs(13) - Duration::from_micros(1), S1);
    assert_eq!(c2.state(), State::Established, "alive just before 13 s");
    c2.handle_timeout(secs(13), &mut cc2);
    assert_eq!(c2.state(), State::Closed);
    assert_eq!(c2.error(), Some(Error::TimedOut));
    assert_eq!(c2.send(b"x"), Err(Error::TimedOut));
    let mut buf = [0u8; 8];
    assert_eq!(
        c2.recv(&mut buf),
        Ok(0),
        "reported once, then end of stream"
    );
}

/// A probe the peer answers proves it alive: the probe count starts over, and the next probe
/// comes a full `idle` after the answer.
#[test]
fn answered_keepalive_probe_keeps_connection_alive() {
    let (mut c, mut cc) = established();
    c.set_keepalive(T0, Some(keepalive()));
    let probes = run_keepalive(&mut c, &mut cc, Instant::from_millis(10_500), S1);
    assert_eq!(probes, vec![Instant::from_secs(10)]);

    // The peer answers the probe with an ACK at 10.5 s.
    let answer_at = Instant::from_millis(10_500);
    let out = feed(
        &mut c,
        answer_at,
        Inject::to_client(Flags::ACK, S1, C1),
        &mut cc,
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(c.poll_timeout(), Some(answer_at + Duration::from_secs(10)));

    // Then it goes silent: three new probes, TimedOut 13 s after the answer.
    let probes = run_keepalive(&mut c, &mut cc, Instant::from_secs(100), S1);
    let at = |s: u64| answer_at + Duration::from_secs(s);
    assert_eq!(probes, vec![at(10), at(11), at(12)]);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(Error::TimedOut));
    assert_eq!(cc.keepalive_probes, 4);
}

/// TCP_USER_TIMEOUT (RFC 5482): with data unacknowledged and the peer silent, the connection
/// gives up with TimedOut exactly when 5 s have passed since the data was sent (Linux clamps
/// the RTO so the timer fires then), long before `max_retries` (15) retransmissions would.
#[test]
fn user_timeout_aborts_long_before_max_retries() {
    let (mut c, mut cc) = established();
    c.set_user_timeout(Some(Duration::from_secs(5)));
    c.set_nodelay(true);
    assert_eq!(c.send(&[9u8; 100]), Ok(100));
    let out = drain(&mut c, T0, &mut cc);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), 100);

    let mut rtx = vec![];
    let mut died = None;
    for _ in 0..1000 {
        let Some(t) = c.poll_timeout() else { break };
        c.handle_timeout(t, &mut cc);
        for s in drain(&mut c, t, &mut cc) {
            if s.len() == 100 {
                assert_eq!(s.seq(), SeqNum(C1));
                rtx.push(t);
            }
        }
        if c.state() == State::Closed {
            died = Some(t);
            break;
        }
    }
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(Error::TimedOut));
    let limit = T0 + Duration::from_secs(5);
    assert_eq!(died, Some(limit), "gives up exactly at the user timeout");
    assert!(
        !rtx.is_empty() && rtx.iter().all(|&t| t < limit),
        "retransmissions before the limit: {rtx:?}"
    );
    assert!(
        rtx.len() < Config::default().max_retries as usize,
        "far fewer than max_retries"
    );
}
