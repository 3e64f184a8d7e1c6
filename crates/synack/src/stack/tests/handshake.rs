//! The SYN queue, SYN-ACK retransmission and SYN cookies, at the stack's edge: raw segments
//! in, the server's replies out, and whole connections between two stacks.

use super::*;
use crate::tcp::SeqNum;
use crate::tcp::SynCookies as Mode;
use crate::trace::TraceEvent;
use crate::wire::tcp::{Options, Timestamps};

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(A_IP), 40000);

fn server_with(tcp: Config) -> Stack {
    let cfg = StackConfig {
        name: "server".into(),
        trace: true,
        tcp: Arc::new(tcp),
        ..StackConfig::default()
    };
    let mut s = Stack::new(cfg, [2; 32]);
    s.add_address(Ipv4Cidr::new(B_IP, 24));
    s
}

fn net_with(tcp: Config) -> Net {
    let mut net = Net::new();
    net.b = server_with(tcp);
    net
}

fn mode(syncookies: Mode, max_syn_backlog: usize) -> Config {
    Config {
        syncookies,
        max_syn_backlog,
        ..Config::default()
    }
}

/// An IPv4 packet with `seg` from `src` to `dst`, checksums filled in.
pub(super) fn ip_tcp(src: SocketAddr, dst: SocketAddr, seg: &wtcp::Repr<'_>) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        unreachable!("IPv4 only")
    };
    let mut pkt = vec![0u8; 20 + seg.buffer_len()];
    let mut ip = ipv4::Packet::new_unchecked(&mut pkt[..]);
    ipv4::Repr::new(s, d, IpProtocol::Tcp, seg.buffer_len())
        .emit(&mut ip, true)
        .unwrap();
    seg.emit(
        &mut wtcp::Packet::new_unchecked(ip.payload_mut()),
        src.ip(),
        dst.ip(),
    )
    .unwrap();
    pkt
}

pub(super) fn seg(
    from: SocketAddr,
    to: SocketAddr,
    seq: u32,
    ack: u32,
    flags: Flags,
) -> wtcp::Repr<'static> {
    wtcp::Repr {
        src_port: from.port(),
        dst_port: to.port(),
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags,
        window: 65535,
        urgent: 0,
        options: Options::default(),
        payload: &[],
    }
}

/// A SYN like Linux's: MSS 1460, SACK-permitted, TSval `ts` (if any), window scale 7.
fn syn(from: SocketAddr, isn: u32, ts: Option<u32>) -> Vec<u8> {
    syn_to(from, server_addr(80), isn, ts)
}

/// [`syn`] to `to`.
pub(super) fn syn_to(from: SocketAddr, to: SocketAddr, isn: u32, ts: Option<u32>) -> Vec<u8> {
    let mut s = seg(from, to, isn, 0, Flags::SYN);
    s.options = Options {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: ts.map(|tsval| Timestamps { tsval, tsecr: 0 }),
        ..Options::default()
    };
    ip_tcp(from, to, &s)
}

/// Everything `s` sends at `now`.
pub(super) fn drain(s: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(n) = s.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// The TCP segment of an IPv4 packet.
pub(super) fn tcp_of(p: &[u8]) -> wtcp::Repr<'_> {
    let ip = ipv4::Packet::new_checked(p).unwrap();
    let r = ipv4::Repr::parse(&ip, true).unwrap();
    let payload = &p[20..];
    wtcp::Repr::parse(
        &wtcp::Packet::new_checked(payload).unwrap(),
        IpAddr::V4(r.src_addr),
        IpAddr::V4(r.dst_addr),
        true,
    )
    .unwrap()
}

/// Sends a SYN from CLIENT to a fresh server and returns the server and its SYN-ACK.
fn syn_acked(tcp: Config, ts: Option<u32>) -> (Stack, SocketHandle, Vec<u8>) {
    let mut s = server_with(tcp);
    let l = s.listen(server_addr(80), 16).unwrap();
    s.handle_packet(Instant::ZERO, &syn(CLIENT, 1000, ts));
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(out.len(), 1, "one SYN-ACK");
    (s, l, out[0].clone())
}

/// The ACK of `synack` from CLIENT, with `data`, echoing its TSval if it had one.
fn ack_of(synack: &[u8], data: &'static [u8], tsval: u32) -> Vec<u8> {
    let sa = tcp_of(synack);
    let mut a = seg(
        CLIENT,
        server_addr(80),
        sa.ack.0,
        (sa.seq + 1u32).0,
        if data.is_empty() {
            Flags::ACK
        } else {
            Flags::ACK | Flags::PSH
        },
    );
    a.window = 1000;
    a.options.timestamps = sa.options.timestamps.map(|t| Timestamps {
        tsval,
        tsecr: t.tsval,
    });
    a.payload = data;
    ip_tcp(CLIENT, server_addr(80), &a)
}

fn notes(s: &mut Stack) -> Vec<String> {
    let mut v = Vec::new();
    while let Some(e) = s.poll_trace() {
        match e {
            TraceEvent::Note { text, .. } => v.push(text),
            TraceEvent::State {
                from, to, reason, ..
            } => v.push(format!("{from} -> {to} ({reason})")),
            TraceEvent::Drop { reason, .. } => v.push(format!("drop: {reason}")),
            TraceEvent::Packet { .. } => {}
        }
    }
    v
}

#[test]
fn half_open_is_a_compact_entry_until_the_ack() {
    assert_eq!(SYN_QUEUE_ENTRY_SIZE, 40, "bytes per half-open connection");
    let mut net = Net::new();
    let l = net.b.listen(server_addr(80), 16).unwrap();
    let c = net.a.connect(net.now, server_addr(80), None).unwrap();
    net.run_until(|n| n.b.syn_queue_len() == 1, Duration::from_secs(1));
    assert_eq!(
        net.b.connection_count(),
        0,
        "no TCB for a half-open connection"
    );
    assert_eq!(net.b.counters().syn_queue_len, 1);
    assert!(net.b.syn_queue_memory() > 0);
    net.run_until(|n| n.b.accept_queue_len(l) == 1, Duration::from_secs(1));
    assert_eq!(net.b.syn_queue_len(), 0);
    assert_eq!(net.b.counters().syn_queue_len, 0);
    let s = net.b.accept(l).unwrap().unwrap();
    let sc = net.b.connection(s).unwrap();
    assert_eq!(sc.state(), State::Established);
    // Negotiated like any passive open: our SYN-ACK answered the client's options.
    let (ci, si) = (net.a.connection(c).unwrap().info(), sc.info());
    assert!(si.timestamps && si.sack);
    assert_eq!(
        (si.snd_wscale, si.rcv_wscale),
        (ci.rcv_wscale, ci.snd_wscale)
    );
    assert_eq!(si.snd_mss, 1448);
    assert!(si.srtt.is_some(), "RTT sampled from the handshake");
    assert_eq!(net.b.counters().passive_opens, 1);
    assert_eq!(net.b.counters().syncookies_sent, 0);
}

/// Linux tcp_synack_retries: SYN-ACKs at 0, 1, 3, 7, 15 and 31 s (backoff from the 1 s
/// initial RTO), then the entry is dropped at 63 s.
#[test]
fn synack_retransmitted_with_backoff_then_dropped() {
    let (mut s, _l, _) = syn_acked(Config::default(), Some(1));
    let mut sent = vec![0u64];
    let mut now = Instant::ZERO;
    while let Some(t) = s.poll_timeout() {
        now = t;
        s.handle_timeout(now);
        for p in drain(&mut s, now) {
            let r = tcp_of(&p);
            assert_eq!(r.flags, Flags::SYN | Flags::ACK);
            assert_eq!(r.ack, SeqNum(1001));
            sent.push(now.total_millis() / 1000);
        }
    }
    assert_eq!(sent, [0, 1, 3, 7, 15, 31]);
    assert_eq!(now, Instant::from_secs(63));
    assert_eq!(s.syn_queue_len(), 0);
    let c = s.counters();
    assert_eq!((c.retrans_segs, c.timeouts, c.attempt_fails), (5, 5, 1));
    assert_eq!(c.syn_queue_len, 0);
    let trace = notes(&mut s);
    assert_eq!(
        trace.last().unwrap(),
        "SYN-RECEIVED -> CLOSED (retransmissions exhausted)"
    );
    // Each resent SYN-ACK is noted with its relative sequence number, as its line shows it.
    let resent: Vec<&String> = trace
        .iter()
        .filter(|t| t.starts_with("retransmit"))
        .collect();
    assert_eq!(resent, ["retransmit seq=0 len=1 (Timeout)"; 5]);
}

#[test]
fn duplicate_syn_resends_synack_and_rst_drops_the_entry() {
    let (mut s, _l, first) = syn_acked(Config::default(), None);
    let t = Instant::from_millis(10);
    s.handle_packet(t, &syn(CLIENT, 1000, None));
    let again = drain(&mut s, t);
    assert_eq!(again.len(), 1);
    assert_eq!(tcp_of(&again[0]).seq, tcp_of(&first).seq, "same ISS");
    assert_eq!(s.counters().retrans_segs, 1);
    // A RST exactly at RCV.NXT drops it (RFC 5961 §3.2).
    let rst = |seq| {
        ip_tcp(
            CLIENT,
            server_addr(80),
            &seg(CLIENT, server_addr(80), seq, 0, Flags::RST),
        )
    };
    s.handle_packet(t, &rst(1001));
    assert_eq!(s.syn_queue_len(), 0);
    assert!(drain(&mut s, t).is_empty(), "never a RST for a RST");
    assert_eq!(s.counters().attempt_fails, 1);
    assert!(notes(&mut s).contains(&"SYN-RECEIVED -> LISTEN (RST in SYN-RECEIVED)".to_string()));
}

fn rst_from_client(seq: u32) -> Vec<u8> {
    ip_tcp(
        CLIENT,
        server_addr(80),
        &seg(CLIENT, server_addr(80), seq, 0, Flags::RST),
    )
}

/// RFC 5961 §3.2 in SYN-RECEIVED: a RST in the window but not at RCV.NXT gets a challenge ACK
/// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and leaves the entry; one outside the window is
/// dropped silently; only the exact one ends the half-open connection.
#[test]
fn inexact_rst_gets_a_challenge_ack_and_only_an_exact_rst_drops_the_entry() {
    let (mut s, l, synack) = syn_acked(Config::default(), Some(77));
    let sa = tcp_of(&synack);
    // The window is the whole initial window (Linux `rsk_rcv_wnd`), more than the SYN-ACK's
    // 65535 could say: half the 256 KiB buffer in whole 1448-byte segments.
    assert_eq!(sa.window, 65535);
    let wnd = 130320;
    let t = Instant::from_millis(10);
    for seq in [1002, 1001 + wnd - 1] {
        s.handle_packet(t, &rst_from_client(seq));
        let out = drain(&mut s, t);
        assert_eq!(out.len(), 1, "RST at {seq}: one challenge ACK");
        let a = tcp_of(&out[0]);
        assert_eq!(a.flags, Flags::ACK);
        assert_eq!((a.seq, a.ack), (sa.seq + 1u32, SeqNum(1001)));
        // Timestamps were negotiated: the ACK carries them, echoing the SYN's TSval.
        assert_eq!(a.options.timestamps.map(|t| t.tsecr), Some(77));
        // Both sides offered window scaling: the window is the whole initial window, scaled
        // (Linux `rsk_rcv_wnd >> rcv_wscale`): half the 256 KiB buffer in whole 1448-byte
        // segments, 130320 >> 7, more than the SYN-ACK's 65535 could say.
        let shift = sa.options.window_scale.unwrap();
        assert_eq!((shift, u32::from(a.window)), (7, 130320 >> 7));
        assert_eq!(s.syn_queue_len(), 1, "the entry stays");
    }
    assert_eq!(s.counters().challenge_acks, 2);
    // Outside the window (below RCV.NXT, at RCV.NXT + RCV.WND): dropped, no answer.
    for seq in [1000, 1001 + wnd, 5_000_000] {
        s.handle_packet(t, &rst_from_client(seq));
        assert!(drain(&mut s, t).is_empty(), "RST at {seq}: silence");
        assert_eq!(s.syn_queue_len(), 1);
    }
    assert_eq!(s.counters().challenge_acks, 2);
    assert_eq!(s.counters().attempt_fails, 0);
    let trace = notes(&mut s);
    assert!(trace.contains(&"drop: RST not at RCV.NXT in SYN-RECEIVED: challenge ACK".to_string()));
    assert!(trace.contains(&"drop: RST out of window in SYN-RECEIVED".to_string()));
    // The exact RST (what a real peer answers the challenge ACK with) ends it, silently.
    s.handle_packet(t, &rst_from_client(1001));
    assert!(drain(&mut s, t).is_empty());
    assert_eq!(s.syn_queue_len(), 0);
    assert_eq!(s.counters().attempt_fails, 1);
    // And the ACK of the old SYN-ACK now finds nothing: RST, no connection.
    s.handle_packet(t, &ack_of(&synack, b"", 0));
    assert_eq!(s.accept_queue_len(l), 0);
}

/// Without timestamps or window scaling the challenge ACK carries no options and an unscaled
/// window; an out-of-window ACK is answered with the same ACK (RFC 9293 §3.10.7.4).
#[test]
fn challenge_ack_without_options_and_ack_for_out_of_window_segments() {
    let mut s = server_with(Config::default());
    let _l = s.listen(server_addr(80), 16).unwrap();
    let mut bare = seg(CLIENT, server_addr(80), 1000, 0, Flags::SYN);
    bare.options.mss = Some(1460);
    s.handle_packet(Instant::ZERO, &ip_tcp(CLIENT, server_addr(80), &bare));
    let out = drain(&mut s, Instant::ZERO);
    let sa = tcp_of(&out[0]);
    let t = Instant::from_millis(5);
    s.handle_packet(t, &rst_from_client(1100));
    let out = drain(&mut s, t);
    assert_eq!(out.len(), 1);
    let a = tcp_of(&out[0]);
    assert_eq!(
        (a.flags, a.seq, a.ack),
        (Flags::ACK, sa.seq + 1u32, SeqNum(1001))
    );
    assert_eq!((a.window, a.options), (sa.window, Options::default()));
    // An ACK far outside the window: dropped, answered with the ACK; the entry stays.
    let far = seg(
        CLIENT,
        server_addr(80),
        900_000,
        (sa.seq + 1u32).0,
        Flags::ACK,
    );
    s.handle_packet(t, &ip_tcp(CLIENT, server_addr(80), &far));
    let out = drain(&mut s, t);
    assert_eq!(out.len(), 1);
    assert_eq!(tcp_of(&out[0]).ack, SeqNum(1001));
    assert_eq!(s.syn_queue_len(), 1);
    assert_eq!(s.counters().out_of_window, 1);
}

/// RFC 5961 §7: the ACKs entries send to invalid segments are throttled, all entries
/// together, `challenge_ack_limit` per second.
#[test]
fn challenge_acks_from_entries_are_throttled() {
    let cfg = Config {
        challenge_ack_limit: 2,
        ..Config::default()
    };
    let (mut s, _l, _) = syn_acked(cfg, None);
    let t = Instant::from_millis(10);
    let mut sent = 0;
    for i in 0..5 {
        s.handle_packet(t, &rst_from_client(1002 + i));
        sent += drain(&mut s, t).len();
    }
    assert_eq!(sent, 2);
    assert_eq!(s.counters().challenge_acks, 2);
    assert_eq!(s.counters().challenge_ack_limited, 3);
    assert_eq!(s.syn_queue_len(), 1);
    // A second later the budget is back.
    let later = t + Duration::from_secs(1);
    s.handle_packet(later, &rst_from_client(1002));
    assert_eq!(drain(&mut s, later).len(), 1);
}

/// Linux tcp_conn_request with tcp_syncookies=0: once fewer than max_syn_backlog / 4 places
/// are left, a new SYN is dropped (ListenDrops; no proven peers here, see
/// NO_COOKIE_RESERVE_DIVISOR). With cookies on the same listener fills its queue.
#[test]
fn cookies_off_keep_the_last_quarter_of_the_syn_queue_free() {
    let from = |i: u16| SocketAddr::new(IpAddr::V4(A_IP), 20000 + i);
    let mut s = server_with(mode(Mode::Never, 8));
    let _l = s.listen(server_addr(80), 16).unwrap();
    let mut answered = 0;
    for i in 0..10 {
        s.handle_packet(Instant::ZERO, &syn(from(i), 1, None));
        answered += drain(&mut s, Instant::ZERO).len();
    }
    // 8 - len < 8 / 4 from len 7 on: seven entries, then drops.
    assert_eq!((s.syn_queue_len(), answered), (7, 7));
    let c = s.counters();
    assert_eq!(
        (c.listen_drops, c.req_q_full_drop, c.syncookies_sent),
        (3, 0, 0)
    );
    assert_eq!(c.syn_queue_peak, 7);
    assert!(notes(&mut s).contains(
        &"drop: SYN queue 3/4 full, cookies off, peer not proven: SYN dropped".to_string()
    ));
    // An entry leaves (its peer resets it): the next SYN gets in again.
    let rst = seg(from(0), server_addr(80), 2, 0, Flags::RST);
    s.handle_packet(Instant::ZERO, &ip_tcp(from(0), server_addr(80), &rst));
    s.handle_packet(Instant::ZERO, &syn(from(20), 1, None));
    assert_eq!(drain(&mut s, Instant::ZERO).len(), 1);
    assert_eq!(s.syn_queue_len(), 7);

    // syncookies=1: the rule does not apply; the queue fills, then cookies.
    let mut s = server_with(mode(Mode::OnOverflow, 8));
    let _l = s.listen(server_addr(80), 16).unwrap();
    for i in 0..10 {
        s.handle_packet(Instant::ZERO, &syn(from(i), 1, None));
        assert_eq!(drain(&mut s, Instant::ZERO).len(), 1);
    }
    let c = s.counters();
    assert_eq!(
        (s.syn_queue_len(), c.syncookies_sent, c.listen_drops),
        (8, 2, 0)
    );
}

/// The SYN-queue bound is per listener: one listener's full queue does not stop another's.
#[test]
fn the_syn_queue_bound_is_per_listener() {
    for m in [Mode::Never, Mode::OnOverflow] {
        let mut s = server_with(mode(m, 2));
        let _a = s.listen(server_addr(80), 16).unwrap();
        let _b = s.listen(server_addr(81), 16).unwrap();
        for i in 0..3u16 {
            let from = SocketAddr::new(IpAddr::V4(A_IP), 30000 + i);
            s.handle_packet(Instant::ZERO, &syn_to(from, server_addr(80), 1, None));
        }
        let _ = drain(&mut s, Instant::ZERO);
        assert_eq!(s.syn_queue_len(), 2, "{m:?}");
        let from = SocketAddr::new(IpAddr::V4(A_IP), 31000);
        s.handle_packet(Instant::ZERO, &syn_to(from, server_addr(81), 1, None));
        assert_eq!(drain(&mut s, Instant::ZERO).len(), 1, "{m:?}");
        assert_eq!(s.syn_queue_len(), 3, "{m:?}: port 81 took an entry");
        let c = s.counters();
        match m {
            Mode::Never => assert_eq!((c.req_q_full_drop, c.syncookies_sent), (1, 0)),
            _ => assert_eq!((c.req_q_full_drop, c.syncookies_sent), (0, 1)),
        }
    }
}

/// RFC 9293 §3.10.7.4, SYN-RECEIVED: an ACK of something we did not send gets
/// <SEQ=SEG.ACK><CTL=RST> and the half-open connection stays; the right ACK then completes it.
#[test]
fn unacceptable_ack_gets_rst_and_keeps_the_entry() {
    let (mut s, l, synack) = syn_acked(Config::default(), None);
    let iss = tcp_of(&synack).seq;
    let t = Instant::from_millis(10);
    let bad = seg(CLIENT, server_addr(80), 1001, (iss + 5u32).0, Flags::ACK);
    s.handle_packet(t, &ip_tcp(CLIENT, server_addr(80), &bad));
    let out = drain(&mut s, t);
    assert_eq!(out.len(), 1);
    let r = tcp_of(&out[0]);
    assert_eq!((r.flags, r.seq), (Flags::RST, iss + 5u32));
    assert_eq!(s.syn_queue_len(), 1);
    s.handle_packet(t, &ack_of(&synack, b"", 0));
    assert_eq!(s.syn_queue_len(), 0);
    assert_eq!(s.accept_queue_len(l), 1);
}

/// The third segment may carry data (the pure ACK was lost): it completes the handshake and
/// the data is delivered, for a SYN-queue entry and for a cookie alike.
#[test]
fn data_on_the_third_segment_is_accepted() {
    for (m, ts) in [
        (Mode::OnOverflow, None),
        (Mode::Always, Some(55)),
        (Mode::Always, None),
    ] {
        let (mut s, l, synack) = syn_acked(mode(m, 16), ts);
        let t = Instant::from_millis(20);
        s.handle_packet(t, &ack_of(&synack, b"hello", 60));
        let h = s.accept(l).unwrap().expect("established");
        let mut buf = [0u8; 16];
        assert_eq!(s.recv(t, h, &mut buf).unwrap(), 5, "{m:?}");
        assert_eq!(&buf[..5], b"hello");
        let c = s.connection(h).unwrap();
        assert_eq!(c.state(), State::Established);
        assert_eq!(c.info().timestamps, ts.is_some());
        // The data is acknowledged (delayed ACK, then the timer).
        s.handle_timeout(t + Duration::from_millis(200));
        let out = drain(&mut s, t + Duration::from_millis(200));
        assert!(out.iter().any(|p| tcp_of(p).ack == SeqNum(1006)), "{m:?}");
    }
}

/// syncookies=1: once the SYN queue is full, SYNs get cookies; the cookie's ACK re-creates a
/// connection with the options the SYN offered, and it carries data both ways.
#[test]
fn full_syn_queue_answers_with_cookies_and_the_connection_works() {
    let mut net = net_with(mode(Mode::OnOverflow, 2));
    let l = net.b.listen(server_addr(80), 16).unwrap();
    // Two spoofed SYNs fill the queue (their SYN-ACKs go nowhere).
    for i in 0..2 {
        let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 50 + i)), 1234);
        net.b.handle_packet(net.now, &syn(src, 7, Some(1)));
    }
    let _ = drain(&mut net.b, net.now);
    assert_eq!(net.b.syn_queue_len(), 2);
    let c = net.a.connect(net.now, server_addr(80), None).unwrap();
    net.run_until(|n| n.b.accept_queue_len(l) == 1, Duration::from_secs(1));
    let s = net.b.accept(l).unwrap().unwrap();
    let ctr = net.b.counters();
    assert_eq!(
        (
            ctr.syncookies_sent,
            ctr.syncookies_recv,
            ctr.syncookies_failed,
            ctr.req_q_full_do_cookies
        ),
        (1, 1, 0, 1)
    );
    assert_eq!(net.b.syn_queue_len(), 2, "the cookie took no entry");
    let (ci, si) = (
        net.a.connection(c).unwrap().info(),
        net.b.connection(s).unwrap().info(),
    );
    assert!(si.timestamps && si.sack && ci.timestamps && ci.sack);
    assert_eq!(
        (si.snd_wscale, si.rcv_wscale),
        (ci.rcv_wscale, ci.snd_wscale)
    );
    assert_eq!((si.snd_mss, ci.snd_mss), (1448, 1448));
    // 200 kB each way, checked.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (mut sent_c, mut sent_s) = (0, 0);
    let (mut got_c, mut got_s) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 65536];
    net.run_until(
        |n| {
            let now = n.now;
            sent_c += n.a.send(now, c, &data[sent_c..]).unwrap();
            sent_s += n.b.send(now, s, &data[sent_s..]).unwrap();
            loop {
                let k = n.b.recv(now, s, &mut buf).unwrap();
                got_s.extend_from_slice(&buf[..k]);
                if k == 0 {
                    break;
                }
            }
            loop {
                let k = n.a.recv(now, c, &mut buf).unwrap();
                got_c.extend_from_slice(&buf[..k]);
                if k == 0 {
                    break;
                }
            }
            got_c.len() == data.len() && got_s.len() == data.len()
        },
        Duration::from_secs(10),
    );
    assert!(got_c == data && got_s == data);
    let trace = notes(&mut net.b);
    let port = net.a.connection(c).unwrap().local().port();
    assert!(
        trace.contains(&format!(
            "SYN cookie sent (SYN queue full) to 198.18.0.1:{port}"
        )),
        "{trace:#?}"
    );
    assert!(trace.contains(&format!(
        "SYN cookie accepted from 198.18.0.1:{port}: MSS=1460 WS=128 SACK_PERM TS"
    )));
    assert!(trace.contains(&"LISTEN -> SYN-RECEIVED (SYN cookie)".to_string()));
    assert!(trace.contains(&"SYN-RECEIVED -> ESTABLISHED (ACK of SYN-ACK)".to_string()));
}

/// syncookies=2 keeps no state at all; a client without timestamps gets no window scaling
/// and no SACK (the cookie has nowhere to keep them), and still works.
#[test]
fn cookies_always_keep_no_state_and_without_timestamps_drop_wscale_and_sack() {
    let mut net = net_with(mode(Mode::Always, 4096));
    let client_cfg = StackConfig {
        name: "client".into(),
        tcp: Arc::new(Config {
            timestamps: false,
            ..Config::default()
        }),
        ..StackConfig::default()
    };
    net.a = Stack::new(client_cfg, [1; 32]);
    net.a.add_address(Ipv4Cidr::new(A_IP, 24));
    let l = net.b.listen(server_addr(80), 16).unwrap();
    let c = net.a.connect(net.now, server_addr(80), None).unwrap();
    net.run_until(|n| n.b.accept_queue_len(l) == 1, Duration::from_secs(1));
    assert_eq!(net.b.syn_queue_peak(), 0);
    let synack = net
        .log
        .iter()
        .find(|(_, from_a, p)| !from_a && tcp_of(p).flags.syn())
        .map(|(_, _, p)| tcp_of(p))
        .unwrap();
    assert_eq!(synack.options.window_scale, None);
    assert!(!synack.options.sack_permitted);
    assert_eq!(synack.options.timestamps, None);
    assert_eq!(synack.options.mss, Some(1460));
    let s = net.b.accept(l).unwrap().unwrap();
    let si = net.b.connection(s).unwrap().info();
    assert!(!si.sack && !si.timestamps);
    assert_eq!((si.snd_wscale, si.rcv_wscale), (0, 0));
    assert_eq!(si.snd_mss, 1460);
    net.a.send(net.now, c, b"ping").unwrap();
    net.run_until(
        |n| n.b.connection(s).unwrap().recv_queue_len() == 4,
        Duration::from_secs(1),
    );
    assert_eq!(net.b.counters().syncookies_recv, 1);
}

/// syncookies=0: a full SYN queue drops SYNs (the flood wins) until entries expire.
#[test]
fn cookies_off_full_queue_drops_syns_until_entries_expire() {
    let mut net = net_with(mode(Mode::Never, 1));
    let l = net.b.listen(server_addr(80), 16).unwrap();
    let spoofed = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 77)), 9);
    net.b.handle_packet(net.now, &syn(spoofed, 7, None));
    let _ = drain(&mut net.b, net.now);
    let c = net.a.connect(net.now, server_addr(80), None).unwrap();
    net.run_until(|n| n.now >= Instant::from_secs(40), Duration::from_secs(41));
    assert_eq!(net.b.accept_queue_len(l), 0);
    let ctr = net.b.counters();
    assert_eq!(
        ctr.req_q_full_drop, 10,
        "SYN at 0 and retries at 1, 2, 3, 4, 5, 7, 11, 19, 35 s"
    );
    assert_eq!(ctr.listen_drops, 10);
    assert_eq!(ctr.syncookies_sent, 0);
    // The spoofed entry gives up at 63 s; the client's SYN at 67 s then gets in.
    net.run_until(|n| n.b.accept_queue_len(l) == 1, Duration::from_secs(30));
    assert_eq!(net.a.connection(c).unwrap().state(), State::Established);
}

/// A cookie ACK that does not check out (forged, another SYN, too old) gets the RST of
/// §3.10.7.2 and counts SyncookiesFailed; nothing is created. A valid one, replayed after
/// the connection exists, goes to that connection.
#[test]
fn forged_or_stale_cookie_acks_open_nothing() {
    let (mut s, l, synack) = syn_acked(mode(Mode::Always, 16), Some(500));
    let sa = tcp_of(&synack);
    let good = ack_of(&synack, b"", 501);
    let t = Instant::from_millis(20);
    let cases: [(&str, Vec<u8>, Instant); 3] = [
        (
            "tampered",
            {
                let mut a = tcp_of(&good);
                a.ack += 1u32 << 10;
                ip_tcp(CLIENT, server_addr(80), &a)
            },
            t,
        ),
        (
            "another SYN's ACK (stale duplicate)",
            {
                let mut a = tcp_of(&good);
                a.seq += 100_000u32;
                ip_tcp(CLIENT, server_addr(80), &a)
            },
            t,
        ),
        ("expired", good.clone(), Instant::from_secs(121)),
    ];
    for (i, (what, pkt, at)) in cases.iter().enumerate() {
        s.handle_packet(*at, pkt);
        let out = drain(&mut s, *at);
        assert_eq!(out.len(), 1, "{what}");
        let r = tcp_of(&out[0]);
        assert_eq!(r.flags, Flags::RST, "{what}");
        assert_eq!(r.seq, tcp_of(pkt).ack, "{what}: <SEQ=SEG.ACK><CTL=RST>");
        assert_eq!(s.counters().syncookies_failed, i as u64 + 1, "{what}");
        assert_eq!(s.connection_count(), 0, "{what}");
    }
    // Within its lifetime the real one works, once.
    s.handle_packet(t, &good);
    assert_eq!(s.accept_queue_len(l), 1);
    s.handle_packet(t, &good);
    assert_eq!(s.accept_queue_len(l), 1);
    assert_eq!(s.connection_count(), 1);
    assert_eq!(s.counters().syncookies_recv, 1);
    assert_eq!(sa.ack, SeqNum(1001));
}

/// With syncookies=1 and no recent overflow, a stray ACK is not checked as a cookie: plain
/// §3.10.7.2 RST, no SyncookiesFailed.
#[test]
fn acks_are_checked_as_cookies_only_after_an_overflow() {
    let mut s = server_with(Config::default());
    let _l = s.listen(server_addr(80), 16).unwrap();
    let stray = seg(CLIENT, server_addr(80), 5, 6, Flags::ACK);
    s.handle_packet(Instant::ZERO, &ip_tcp(CLIENT, server_addr(80), &stray));
    assert_eq!(drain(&mut s, Instant::ZERO).len(), 1);
    assert_eq!(s.counters().syncookies_failed, 0);
}

/// Linux: with the accept queue full, a SYN is dropped even when cookies are on, and a
/// valid cookie ACK is dropped (no RST) so the client's retransmission can complete later.
#[test]
fn full_accept_queue_drops_syns_and_cookie_acks() {
    let (mut s, l, synack) = syn_acked(mode(Mode::Always, 16), None);
    let other = SocketAddr::new(IpAddr::V4(A_IP), 40001);
    // Fill the accept queue (backlog 16) with cookie connections from other ports.
    for port in 0..16u16 {
        let from = SocketAddr::new(IpAddr::V4(A_IP), 50000 + port);
        s.handle_packet(Instant::ZERO, &syn(from, 1, None));
        let sa = drain(&mut s, Instant::ZERO).pop().unwrap();
        let sa = tcp_of(&sa);
        let ack = seg(from, server_addr(80), 2, (sa.seq + 1u32).0, Flags::ACK);
        s.handle_packet(Instant::ZERO, &ip_tcp(from, server_addr(80), &ack));
    }
    assert_eq!(s.accept_queue_len(l), 16);
    s.handle_packet(Instant::ZERO, &syn(other, 1, None));
    assert!(drain(&mut s, Instant::ZERO).is_empty(), "SYN dropped");
    assert_eq!(s.counters().listen_overflows, 1);
    s.handle_packet(Instant::ZERO, &ack_of(&synack, b"", 0));
    assert!(
        drain(&mut s, Instant::ZERO).is_empty(),
        "cookie ACK dropped, no RST"
    );
    assert_eq!(s.counters().listen_overflows, 2);
    assert_eq!(s.counters().listen_drops, 2);
    // accept() makes room; the client's next segment (its ACK again) completes it.
    let _ = s.accept(l).unwrap();
    s.handle_packet(Instant::ZERO, &ack_of(&synack, b"", 0));
    assert_eq!(s.accept_queue_len(l), 16);
}

#[test]
fn closing_a_listener_drops_its_half_open_connections() {
    let (mut s, l, _) = syn_acked(Config::default(), None);
    assert_eq!(s.syn_queue_len(), 1);
    s.close(Instant::ZERO, l);
    assert_eq!(s.syn_queue_len(), 0);
    assert_eq!(s.counters().syn_queue_len, 0);
    assert_eq!(s.poll_timeout(), None, "no SYN-ACK timer left");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any mix of segments from a few peers, in any mode, at any pace: no panic, the SYN
    /// queue within its bound, the gauge equal to it, every connection made from a cookie or
    /// an entry established.
    #[test]
    fn arbitrary_segments_at_a_listener_keep_the_invariants(
        m in 0..3u8,
        segs in proptest::collection::vec(
            (0..4u8, 0..8u8, proptest::prelude::any::<u32>(), proptest::prelude::any::<u32>(),
             proptest::prelude::any::<bool>(), 0..3_000_000u64),
            1..200,
        ),
    ) {
        let m = [Mode::Never, Mode::OnOverflow, Mode::Always][m as usize];
        let mut s = server_with(mode(m, 3));
        let l = s.listen(server_addr(80), 4).unwrap();
        let mut now = Instant::ZERO;
        let mut last_synack: Option<Vec<u8>> = None;
        for (peer, kind, seq, ack, ts, dt) in segs {
            now += Duration::from_micros(dt);
            s.handle_timeout(now);
            let from = SocketAddr::new(IpAddr::V4(A_IP), 40000 + peer as u16);
            let pkt = match kind {
                0 | 1 => syn(from, seq, ts.then_some(ack)),
                2 if last_synack.is_some() => {
                    // A real ACK of the last SYN-ACK (maybe from the wrong peer).
                    let sa = tcp_of(last_synack.as_ref().unwrap());
                    let mut a = seg(from, server_addr(80), sa.ack.0, (sa.seq + 1u32).0, Flags::ACK);
                    a.options.timestamps = sa.options.timestamps.map(|t| Timestamps { tsval: 1, tsecr: t.tsval });
                    ip_tcp(from, server_addr(80), &a)
                }
                _ => {
                    let flags = [Flags::ACK, Flags::RST, Flags::RST | Flags::ACK, Flags::SYN | Flags::ACK, Flags::FIN | Flags::ACK]
                        [(seq % 5) as usize];
                    ip_tcp(from, server_addr(80), &seg(from, server_addr(80), seq, ack, flags))
                }
            };
            s.handle_packet(now, &pkt);
            for p in drain(&mut s, now) {
                if tcp_of(&p).flags == Flags::SYN | Flags::ACK {
                    last_synack = Some(p);
                }
            }
            proptest::prop_assert!(s.syn_queue_len() <= 3);
            proptest::prop_assert_eq!(s.counters().syn_queue_len, s.syn_queue_len() as u64);
            while let Some(h) = s.accept(l).unwrap() {
                let st = s.connection(h).unwrap().state();
                proptest::prop_assert!(st.is_synchronized(), "{:?}", st);
            }
        }
        if m == Mode::Always {
            proptest::prop_assert_eq!(s.syn_queue_peak(), 0);
        }
    }
}

/// Linux `tcp_req_err`: an ICMP error quoting a SYN-ACK of a half-open connection counts
/// only if it quotes our ISN (else OutOfWindowIcmps); net or host unreachable (and time
/// exceeded, parameter problem) then drop the entry silently, other codes leave it.
#[test]
fn icmp_errors_for_a_half_open_connection() {
    let (mut s, _l, synack) = syn_acked(Config::default(), None);
    let iss = tcp_of(&synack).seq.0;
    let router = Ipv4Addr::new(198, 18, 0, 254);
    let t = Instant::from_millis(50);
    let unreach = |s: &mut Stack, code, seq: u32| {
        let mut quoted = synack[..48].to_vec();
        quoted[24..28].copy_from_slice(&seq.to_be_bytes());
        let icmp = icmpv4::Repr::DstUnreachable {
            reason: code,
            next_hop_mtu: None,
            invoking: &quoted,
        };
        s.handle_packet(t, &ip_icmp(router, B_IP, &icmp));
    };
    use icmpv4::DstUnreachable as D;
    unreach(&mut s, D::HostUnreachable, iss + 1);
    assert_eq!(
        (s.syn_queue_len(), s.counters().out_of_window_icmps),
        (1, 1)
    );
    unreach(&mut s, D::PortUnreachable, iss);
    assert_eq!(
        s.syn_queue_len(),
        1,
        "port unreachable does not abort a request"
    );
    unreach(&mut s, D::HostUnreachable, iss);
    assert_eq!(s.syn_queue_len(), 0);
    assert_eq!(s.counters().listen_drops, 1);
    assert!(drain(&mut s, t).is_empty(), "dropped silently");
}

/// shutdown() on a listener, as Linux's `inet_shutdown`: SHUT_WR changes nothing, SHUT_RD
/// stops listening, so the next SYN is refused with a RST.
#[test]
fn shutdown_on_a_listener() {
    let mut s = server_with(Config::default());
    let l = s.listen(server_addr(80), 16).unwrap();
    s.shutdown(Instant::ZERO, l, Shutdown::Write).unwrap();
    s.handle_packet(Instant::ZERO, &syn(CLIENT, 1000, None));
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(
        tcp_of(&out[0]).flags,
        Flags::SYN | Flags::ACK,
        "still listening"
    );
    s.shutdown(Instant::ZERO, l, Shutdown::Read).unwrap();
    s.handle_packet(Instant::ZERO, &syn(CLIENT, 5000, None));
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(
        tcp_of(&out[0]).flags,
        Flags::RST | Flags::ACK,
        "no longer listening"
    );
}

/// A SYN outside the window of a half-open connection is not acceptable (RFC 9293 §3.10.7.4
/// first step): answered with <SEQ=ISS+1><ACK=RCV.NXT><CTL=ACK>, as Linux's `tcp_check_req`
/// does; the entry stays.
#[test]
fn out_of_window_syn_in_syn_received_is_acknowledged() {
    let (mut s, _l, synack) = syn_acked(Config::default(), None);
    let iss = tcp_of(&synack).seq;
    let t = Instant::from_millis(10);
    s.handle_packet(t, &syn(CLIENT, 1000 + 10_000_000, None));
    let out = drain(&mut s, t);
    assert_eq!(out.len(), 1);
    let ack = tcp_of(&out[0]);
    assert_eq!(
        (ack.flags, ack.seq, ack.ack),
        (Flags::ACK, iss + 1u32, SeqNum(1001))
    );
    assert_eq!(s.syn_queue_len(), 1);
    assert_eq!(s.counters().out_of_window, 1);
}

#[test]
fn a_half_open_four_tuple_is_in_use_until_its_entry_goes() {
    // The entry's 4-tuple is in the demux table, as Linux's request socket is in the
    // established hash (`__inet_check_established` finds it): a connect on it is refused.
    let (mut s, l, _synack) = syn_acked(Config::default(), None);
    assert_eq!((s.syn_queue_len(), s.connection_count()), (1, 0));
    let t = Instant::from_millis(10);
    let err = s.connect(t, CLIENT, Some(server_addr(80))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // Closing the listener takes its entries out of the demux table too: a segment for the
    // 4-tuple then finds nothing (a RST answers the ACK), and the 4-tuple is free.
    s.close(t, l);
    assert_eq!(s.syn_queue_len(), 0);
    let ack = seg(CLIENT, server_addr(80), 1001, 1, Flags::ACK);
    s.handle_packet(t, &ip_tcp(CLIENT, server_addr(80), &ack));
    let out = drain(&mut s, t);
    assert_eq!(out.len(), 1);
    assert_eq!(tcp_of(&out[0]).flags, Flags::RST);
    let c = s.connect(t, CLIENT, Some(server_addr(80))).unwrap();
    assert_eq!(s.connection(c).map(|c| c.state()), Some(State::SynSent));
    assert_eq!(s.connection_count(), 1);
}
