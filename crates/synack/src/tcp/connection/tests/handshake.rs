//! Opening: RFC 9293 §3.5 (Figures 6, 7, 8), §3.10.7.2-3, SYN retransmission, options.

use std::sync::Arc;

use super::harness::*;
use crate::tcp::{Config, Counters, Error, Event, SeqNum, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

const T0: Instant = Instant::ZERO;

/// Figure 6: the basic three-way handshake, segment by segment.
#[test]
fn three_way_handshake_rfc9293_figure6() {
    let cfg = Arc::new(config());
    let (mut c, mut s) = (client(&cfg), server(&cfg));
    let (mut cc, mut sc) = (Counters::default(), Counters::default());
    assert_eq!(s.state(), State::Listen);
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    assert_eq!(c.state(), State::SynSent);

    let syn = drain(&mut c, T0, &mut cc);
    assert_eq!(syn.len(), 1);
    let r = syn[0].repr();
    assert_eq!(r.flags, Flags::SYN);
    assert_eq!(r.seq, CLIENT_ISS);
    assert_eq!(r.options.mss, Some(MSS));
    assert!(r.options.sack_permitted);
    assert!(r.options.timestamps.is_some());
    assert!(r.options.window_scale.is_some());

    deliver(&mut s, T0, &syn[0], &mut sc);
    assert_eq!(s.state(), State::SynReceived);
    let synack = drain(&mut s, T0, &mut sc);
    assert_eq!(synack.len(), 1);
    assert_eq!(synack[0].flags(), Flags::SYN | Flags::ACK);
    assert_eq!(synack[0].seq(), SERVER_ISS);
    assert_eq!(synack[0].ack(), CLIENT_ISS + 1u32);

    deliver(&mut c, T0, &synack[0], &mut cc);
    assert_eq!(c.state(), State::Established);
    let ack = drain(&mut c, T0, &mut cc);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].flags(), Flags::ACK);
    assert_eq!(ack[0].seq(), CLIENT_ISS + 1u32);
    assert_eq!(ack[0].ack(), SERVER_ISS + 1u32);
    assert_eq!(ack[0].len(), 0);

    deliver(&mut s, T0, &ack[0], &mut sc);
    assert_eq!(s.state(), State::Established);
    assert!(drain(&mut s, T0, &mut sc).is_empty());
    assert_eq!(cc.active_opens, 1);
    assert_eq!(sc.passive_opens, 1);
    // Both sides agreed on every option.
    let (ci, si) = (c.info(), s.info());
    assert!(ci.timestamps && si.timestamps && ci.sack && si.sack);
    assert_eq!(ci.snd_mss, (MSS - 12) as u32);
    // tcpi_advmss as Linux keeps it: the announced MSS less the timestamp option.
    assert_eq!((ci.rcv_mss, ci.advmss), (MSS as u32, (MSS - 12) as u32));
}

/// Figure 7: simultaneous open. Both sides send SYN, both go through SYN-RECEIVED.
#[test]
fn simultaneous_open_rfc9293_figure7() {
    let cfg = Arc::new(config());
    let mut a = client(&cfg);
    let mut b = crate::tcp::Connection::new(cfg.clone(), SERVER, MSS, 0);
    let (mut ac, mut bc) = (Counters::default(), Counters::default());
    a.connect(T0, SERVER, CLIENT_ISS, &mut ac).unwrap();
    b.connect(T0, CLIENT, SERVER_ISS, &mut bc).unwrap();
    let syn_a = drain(&mut a, T0, &mut ac);
    let syn_b = drain(&mut b, T0, &mut bc);
    deliver(&mut a, T0, &syn_b[0], &mut ac);
    deliver(&mut b, T0, &syn_a[0], &mut bc);
    assert_eq!(a.state(), State::SynReceived);
    assert_eq!(b.state(), State::SynReceived);
    let sa = drain(&mut a, T0, &mut ac);
    let sb = drain(&mut b, T0, &mut bc);
    assert_eq!(sa[0].flags(), Flags::SYN | Flags::ACK);
    assert_eq!(sa[0].seq(), CLIENT_ISS);
    assert_eq!(sa[0].ack(), SERVER_ISS + 1u32);
    // The SYN-ACK is the SYN's queued segment sent anew, not a retransmission (Linux's
    // tcp_send_synack()): no retransmission counted or reported.
    assert_eq!((ac.retrans_segs, bc.retrans_segs), (0, 0));
    let retransmits = |c: &mut crate::tcp::Connection| {
        std::iter::from_fn(|| c.poll_event())
            .filter(|e| matches!(e, Event::Retransmit { .. }))
            .count()
    };
    assert_eq!((retransmits(&mut a), retransmits(&mut b)), (0, 0));
    // When it is lost, the timeout resends it, and that is a retransmission.
    let rto = a
        .poll_timeout()
        .expect("the SYN-ACK's retransmission timer");
    a.handle_timeout(rto, &mut ac);
    let again = drain(&mut a, rto, &mut ac);
    assert_eq!(again[0].flags(), Flags::SYN | Flags::ACK);
    assert_eq!(again[0].seq(), CLIENT_ISS);
    assert_eq!(ac.retrans_segs, 1);
    assert_eq!(retransmits(&mut a), 1);
    deliver(&mut a, T0, &sb[0], &mut ac);
    deliver(&mut b, T0, &sa[0], &mut bc);
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
}

/// Figure 8: an old duplicate SYN reaches the server first. The server's SYN-ACK acknowledges
/// a SYN the client never sent; the client answers with a RST (<SEQ=SEG.ACK>), the server
/// returns to LISTEN, and the client's real SYN then opens the connection. This is why the
/// third segment exists: the server commits to nothing until the client confirms.
#[test]
fn old_duplicate_syn_rfc9293_figure8() {
    let cfg = Arc::new(config());
    let (mut c, mut s) = (client(&cfg), server(&cfg));
    let (mut cc, mut sc) = (Counters::default(), Counters::default());
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    let real_syn = drain(&mut c, T0, &mut cc);

    // (2) the old duplicate SYN, seq 90, arrives at the server.
    let old = Inject::to_server(Flags::SYN, 90, 0).mss(1460).seg();
    deliver(&mut s, T0, &old, &mut sc);
    assert_eq!(s.state(), State::SynReceived);
    // (3) the server answers it: SYN-ACK with ACK 91.
    let bad_synack = drain(&mut s, T0, &mut sc);
    assert_eq!(bad_synack[0].ack(), SeqNum(91));
    // (4) the client, in SYN-SENT, sees an ACK that does not acknowledge its SYN: RST with
    // SEQ = SEG.ACK = 91.
    deliver(&mut c, T0, &bad_synack[0], &mut cc);
    assert_eq!(c.state(), State::SynSent);
    let rst = drain(&mut c, T0, &mut cc);
    assert_eq!(rst.len(), 1);
    assert_eq!(rst[0].flags(), Flags::RST);
    assert_eq!(rst[0].seq(), SeqNum(91));
    // (5) the server, in SYN-RECEIVED, accepts the RST (seq 91 = RCV.NXT) and returns to LISTEN.
    deliver(&mut s, T0, &rst[0], &mut sc);
    assert_eq!(s.state(), State::Listen);
    assert_eq!(sc.attempt_fails, 1);
    // (6)-(8): the real SYN goes through as usual.
    deliver(&mut s, T0, &real_syn[0], &mut sc);
    let synack = drain(&mut s, T0, &mut sc);
    assert_eq!(synack[0].ack(), CLIENT_ISS + 1u32);
    deliver(&mut c, T0, &synack[0], &mut cc);
    assert_eq!(c.state(), State::Established);
    let ack = drain(&mut c, T0, &mut cc);
    deliver(&mut s, T0, &ack[0], &mut sc);
    assert_eq!(s.state(), State::Established);
}

/// §3.10.7.3: RST with an acceptable ACK in SYN-SENT means nobody listens: ConnectionRefused.
#[test]
fn rst_in_syn_sent_is_connection_refused() {
    let cfg = Arc::new(config());
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    drain(&mut c, T0, &mut cc);
    // A RST without ACK is not acceptable in SYN-SENT.
    c.handle_segment(
        T0,
        &Inject::to_client(Flags::RST, 0, 0).seg().repr(),
        &mut cc,
    );
    assert_eq!(c.state(), State::SynSent);
    // A RST whose ACK does not cover our SYN is dropped too.
    c.handle_segment(
        T0,
        &Inject::to_client(Flags::RST | Flags::ACK, 0, 1000)
            .seg()
            .repr(),
        &mut cc,
    );
    assert_eq!(c.state(), State::SynSent);
    c.handle_segment(
        T0,
        &Inject::to_client(Flags::RST | Flags::ACK, 0, 1001)
            .seg()
            .repr(),
        &mut cc,
    );
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(Error::Refused));
    assert_eq!(c.send(b"x"), Err(Error::Refused));
    assert_eq!(Error::Refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(drain(&mut c, T0, &mut cc).is_empty(), "never RST a RST");
}

/// The times (whole seconds) at which a connection configured with `cfg` sends its SYN when
/// nothing answers, and when it gives up.
fn syn_schedule(cfg: Config) -> (Vec<u64>, Instant, Counters) {
    let cfg = Arc::new(cfg);
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    let mut sends = vec![];
    let mut now = T0;
    for _ in 0..100 {
        for s in drain(&mut c, now, &mut cc) {
            assert_eq!(s.flags(), Flags::SYN);
            assert_eq!(s.seq(), CLIENT_ISS);
            sends.push(now);
        }
        match c.poll_timeout() {
            Some(t) => {
                now = t;
                c.handle_timeout(now, &mut cc);
            }
            None => break,
        }
    }
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(Error::TimedOut));
    let secs = sends.iter().map(|t| t.total_millis() / 1000).collect();
    (secs, now, cc)
}

/// SYN retransmission as Linux 6.18 does it: the first `syn_linear_timeouts` (4) timeouts keep
/// the 1 s initial RTO, then RFC 6298 §5.5's doubling; connect() gives up after
/// `syn_retries` + 4 retransmissions (Linux: 6 + 4, the last at 67 s, TimedOut at 131 s).
#[test]
fn syn_retransmission_linear_then_backs_off_then_times_out() {
    let (secs, end, cc) = syn_schedule(config());
    assert_eq!(secs, vec![0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67]);
    assert_eq!(end, Instant::from_secs(131));
    assert_eq!(cc.retrans_segs, 10);
}

/// The other bound on SYN-SENT (Linux `tcp_write_timeout`): the time `syn_retries`
/// exponential backoffs from 1 s take, (2^(n+1) − 1) s from the first SYN, counts too and
/// here comes first. With 2 retries that is 7 s: SYNs at 0 ... 5 s, and the timer at 7 s ends
/// the attempt instead of sending a seventh. Without the linear timeouts the count rules:
/// 0, 1, 3 s, and the timer at 7 s.
#[test]
fn syn_retries_bound_time_as_well_as_count() {
    let (secs, end, _) = syn_schedule(Config {
        syn_retries: 2,
        ..config()
    });
    assert_eq!(secs, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(end, Instant::from_secs(7));
    let (secs, end, _) = syn_schedule(Config {
        syn_retries: 2,
        syn_linear_timeouts: 0,
        ..config()
    });
    assert_eq!(secs, vec![0, 1, 3]);
    assert_eq!(end, Instant::from_secs(7));
}

/// A lost SYN-ACK: the server retransmits it; a retransmitted SYN from the client makes the
/// server send the SYN-ACK again instead of treating it as an attack. After
/// `synack_retries`, the half-open connection dies.
#[test]
fn synack_retransmission_and_duplicate_syn() {
    let cfg = Arc::new(config());
    let mut s = server(&cfg);
    let mut sc = Counters::default();
    let syn = Inject::to_server(Flags::SYN, 700, 0).mss(1400).seg();
    deliver(&mut s, T0, &syn, &mut sc);
    assert_eq!(drain(&mut s, T0, &mut sc).len(), 1);
    deliver(&mut s, Instant::from_millis(500), &syn, &mut sc);
    let again = drain(&mut s, Instant::from_millis(500), &mut sc);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].flags(), Flags::SYN | Flags::ACK);
    assert_eq!(again[0].seq(), SERVER_ISS);
    let mut count = 0;
    for _ in 0..100 {
        let Some(now) = s.poll_timeout() else { break };
        s.handle_timeout(now, &mut sc);
        count += drain(&mut s, now, &mut sc).len();
    }
    assert_eq!(count, cfg.synack_retries as usize);
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(Error::TimedOut));
}

/// In SYN-RECEIVED, an ACK that does not acknowledge our SYN-ACK gets <SEQ=SEG.ACK><CTL=RST>.
#[test]
fn unacceptable_ack_in_syn_received_gets_rst() {
    let cfg = Arc::new(config());
    let mut s = server(&cfg);
    let mut sc = Counters::default();
    deliver(
        &mut s,
        T0,
        &Inject::to_server(Flags::SYN, 700, 0).seg(),
        &mut sc,
    );
    drain(&mut s, T0, &mut sc);
    deliver(
        &mut s,
        T0,
        &Inject::to_server(Flags::ACK, 701, 4242).seg(),
        &mut sc,
    );
    let out = drain(&mut s, T0, &mut sc);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags(), Flags::RST);
    assert_eq!(out[0].seq(), SeqNum(4242));
    assert_eq!(s.state(), State::SynReceived);
}

/// §3.10.7.2: in LISTEN, an ACK gets a RST and a RST is ignored.
#[test]
fn listen_answers_ack_with_rst_and_ignores_rst() {
    let cfg = Arc::new(config());
    let mut s = server(&cfg);
    let mut sc = Counters::default();
    deliver(
        &mut s,
        T0,
        &Inject::to_server(Flags::RST, 1, 0).seg(),
        &mut sc,
    );
    assert!(drain(&mut s, T0, &mut sc).is_empty());
    deliver(
        &mut s,
        T0,
        &Inject::to_server(Flags::ACK, 1, 777).seg(),
        &mut sc,
    );
    let out = drain(&mut s, T0, &mut sc);
    assert_eq!(out[0].flags(), Flags::RST);
    assert_eq!(out[0].seq(), SeqNum(777));
    assert_eq!(s.state(), State::Listen);
}

/// The send MSS is at most half the largest window the peer offered once that exceeds 536
/// bytes, and the whole window below (Linux `tcp_bound_to_half_wnd`); it grows back with the
/// window.
#[test]
fn send_mss_bounded_by_half_the_largest_peer_window() {
    let mut c = client(&Arc::new(config()));
    let mut cc = Counters::default();
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    drain(&mut c, T0, &mut cc);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, 9000, 1001)
        .mss(1000)
        .window(1500)
        .seg();
    deliver(&mut c, T0, &synack, &mut cc);
    assert_eq!(c.info().snd_mss, 750);
    drain(&mut c, T0, &mut cc);
    // A window of 5000 lifts the bound: the peer's MSS applies again.
    let wider = Inject::to_client(Flags::ACK, 9001, 1001).window(5000).seg();
    deliver(&mut c, T0, &wider, &mut cc);
    assert_eq!(c.info().snd_mss, 1000);
}

/// Options: without the peer's MSS the default 536 applies (RFC 9293 §3.7.1); a window scale
/// above 14 is used as 14 (RFC 7323 §2.3); no timestamps from the peer, none from us.
#[test]
fn option_negotiation_defaults_and_clamps() {
    let cfg = Arc::new(Config {
        timestamps: true,
        ..config()
    });
    let mut c = client(&cfg);
    let mut cc = Counters::default();
    c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
    drain(&mut c, T0, &mut cc);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, 9000, 1001)
        .wscale(20)
        .window(2000)
        .seg();
    deliver(&mut c, T0, &synack, &mut cc);
    let i = c.info();
    assert_eq!(i.snd_mss, 536);
    assert_eq!(i.snd_wscale, 14);
    assert!(!i.timestamps);
    // The window in a SYN-ACK is not scaled (RFC 7323 §2.2).
    assert_eq!(i.snd_wnd, 2000);
    let ack = drain(&mut c, T0, &mut cc);
    assert!(ack[0].repr().options.timestamps.is_none());
}

/// Time through a full open over a 10 ms pipe.
#[test]
fn handshake_over_pipe_takes_one_rtt() {
    let p = Pipe::connected(config(), Duration::from_millis(10));
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.b.state(), State::Established);
    assert_eq!(p.now, Instant::from_millis(30));
    // Client's RTT estimate comes from the SYN/SYN-ACK exchange.
    assert_eq!(p.a.info().srtt, Some(Duration::from_millis(20)));
}
