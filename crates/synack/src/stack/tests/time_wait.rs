//! Compact TIME-WAIT entries (`time_wait.rs`) answer every segment as the whole connection
//! does: the same server, traced (its connection stays whole) and not traced (it becomes an
//! entry), gets the same segments and must send the same bytes and count the same.

use super::*;

/// An IPv4 packet from a to b carrying `seg`, checksums filled in.
fn from_a(seg: &wtcp::Repr<'_>) -> Vec<u8> {
    let len = seg.buffer_len();
    let mut pkt = vec![0u8; 20 + len];
    let mut ip = ipv4::Packet::new_unchecked(&mut pkt[..]);
    ipv4::Repr::new(A_IP, B_IP, IpProtocol::Tcp, len)
        .emit(&mut ip, true)
        .unwrap();
    let (src, dst) = (IpAddr::V4(A_IP), IpAddr::V4(B_IP));
    seg.emit(&mut wtcp::Packet::new_unchecked(ip.payload_mut()), src, dst)
        .unwrap();
    pkt
}

/// A connection from a to b:80 after some data both ways, closed by b first, so b holds
/// TIME-WAIT and a's end is gone. `trace` is b's setting. Returns the net and a's FIN (IP
/// packet).
fn server_in_time_wait(trace: bool) -> (Net, Vec<u8>) {
    server_closed_first(trace, StackConfig::default().max_time_wait)
}

/// [`server_in_time_wait`] with b's `StackConfig::max_time_wait` set.
fn server_closed_first(trace: bool, max_time_wait: usize) -> (Net, Vec<u8>) {
    let mut net = Net::new();
    net.b.cfg.trace = trace;
    net.b.cfg.max_time_wait = max_time_wait;
    let (_, c, s) = connected(&mut net, 80);
    assert_eq!(
        net.transfer(c, s, &[7; 300], Duration::from_secs(5)),
        [7; 300]
    );
    assert_eq!(net.b.send(net.now, s, &[9; 20]).unwrap(), 20);
    net.b.close(net.now, s);
    net.run_until(
        |n| {
            let _ = n.a.recv(n.now, c, &mut [0u8; 64]);
            n.a.connection(c).unwrap().peer_closed()
        },
        Duration::from_secs(5),
    );
    net.a.close(net.now, c);
    net.run_until(|n| n.a.connection_count() == 0, Duration::from_secs(5));
    // `run_until` stopped with the clock moved on to the next deadline (the end of
    // TIME-WAIT) that neither stack has seen yet: back to the last packet.
    net.now = net.log.last().unwrap().0;
    let fin = net
        .log
        .iter()
        .rev()
        .find(|(_, from_a, p)| {
            let ip = ipv4::Packet::new_checked(&p[..]).unwrap();
            *from_a
                && wtcp::Packet::new_checked(ip.payload())
                    .unwrap()
                    .flags()
                    .fin()
        })
        .unwrap()
        .2
        .clone();
    (net, fin)
}

/// b's answer to `packet` at `now` (every packet it sends then).
fn answer(net: &mut Net, now: Instant, packet: &[u8]) -> Vec<Vec<u8>> {
    net.now = now;
    net.b.handle_packet(now, packet);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(n) = net.b.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// a's FIN changed by `f` (sequence number, flags, timestamps), as a packet.
fn variant(fin: &[u8], f: impl FnOnce(&mut wtcp::Repr<'_>)) -> Vec<u8> {
    let ip = ipv4::Packet::new_checked(fin).unwrap();
    let t = wtcp::Packet::new_checked(ip.payload()).unwrap();
    let mut seg = wtcp::Repr::parse(&t, IpAddr::V4(A_IP), IpAddr::V4(B_IP), true).unwrap();
    f(&mut seg);
    from_a(&seg)
}

/// A RST from a at b's RCV.NXT (just past a's FIN), without timestamps.
fn rst_at_rcv_nxt(fin: &[u8]) -> Vec<u8> {
    let ip = ipv4::Packet::new_checked(fin).unwrap();
    let seq = wtcp::Packet::new_checked(ip.payload())
        .unwrap()
        .seq_number()
        + 1u32;
    variant(fin, |s| {
        s.flags = Flags::RST;
        s.seq = seq;
        s.options.timestamps = None;
    })
}

fn counts(s: &Stack) -> [u64; 7] {
    let c = s.counters();
    [
        c.in_segs,
        c.out_segs,
        c.paws_timewait,
        c.ack_skipped_time_wait,
        c.paws_estab,
        c.out_of_window,
        c.passive_opens,
    ]
}

#[test]
fn a_compact_time_wait_entry_answers_as_the_connection_did() {
    let mut runs = Vec::new();
    for trace in [true, false] {
        let (mut net, fin) = server_in_time_wait(trace);
        assert_eq!(net.b.connection_count(), 1, "in TIME-WAIT");
        // Untraced, the connection gave its slot back for an entry.
        let compact = usize::from(!trace);
        assert_eq!(net.b.time_wait_count(), compact);
        assert_eq!(net.b.connections().count(), 1 - compact);
        let t0 = net.now;
        let fin_seq = variant(&fin, |_| {});
        let ip = ipv4::Packet::new_checked(&fin[..]).unwrap();
        let t = wtcp::Packet::new_checked(ip.payload()).unwrap();
        let seg = wtcp::Repr::parse(&t, IpAddr::V4(A_IP), IpAddr::V4(B_IP), true).unwrap();
        let (seq, tsval) = (seg.seq, seg.options.timestamps.unwrap().tsval);
        let mut out = Vec::new();
        // The FIN again, twice in 100 ms: both acknowledged (a FIN is never rate-limited,
        // Linux tcp_oow_rate_limited).
        out.push(answer(&mut net, t0 + Duration::from_secs(1), &fin_seq));
        out.push(answer(&mut net, t0 + Duration::from_millis(1100), &fin_seq));
        // An old bare ACK: acknowledged; again 100 ms later: rate-limited (invalid_ratelimit).
        let old_ack = variant(&fin, |s| s.flags = Flags::ACK);
        out.push(answer(&mut net, t0 + Duration::from_millis(1200), &old_ack));
        out.push(answer(&mut net, t0 + Duration::from_millis(1300), &old_ack));
        // A bare ACK at RCV.NXT with a newer timestamp: the timer restarts, no answer.
        let bare = variant(&fin, |s| {
            s.flags = Flags::ACK;
            s.seq = seq + 1u32;
            if let Some(ts) = &mut s.options.timestamps {
                ts.tsval = tsval.wrapping_add(2000);
            }
        });
        out.push(answer(&mut net, t0 + Duration::from_secs(2), &bare));
        // The old FIN now fails PAWS: counted and acknowledged.
        out.push(answer(&mut net, t0 + Duration::from_secs(3), &fin_seq));
        // Data: acknowledged.
        let data = variant(&fin, |s| {
            s.flags = Flags::ACK | Flags::PSH;
            s.seq = seq + 1u32;
            s.payload = b"late";
            if let Some(ts) = &mut s.options.timestamps {
                ts.tsval = tsval.wrapping_add(3000);
            }
        });
        out.push(answer(&mut net, t0 + Duration::from_secs(4), &data));
        // A RST beside RCV.NXT: dropped.
        let rst_beside = variant(&fin, |s| {
            s.flags = Flags::RST;
            s.seq = seq + 100u32;
            s.options.timestamps = None;
        });
        out.push(answer(&mut net, t0 + Duration::from_secs(5), &rst_beside));
        assert_eq!(net.b.connection_count(), 1, "still in TIME-WAIT");
        // A SYN above RCV.NXT with a newer timestamp from the same port: a new incarnation,
        // its ISN above the old one's SND.NXT (the SYN-ACK is the same either way).
        let syn = variant(&fin, |s| {
            s.flags = Flags::SYN;
            s.seq = seq + 1_000_000u32;
            s.ack = crate::tcp::SeqNum(0);
            s.options.mss = Some(1460);
            if let Some(ts) = &mut s.options.timestamps {
                ts.tsval = tsval.wrapping_add(6000);
                ts.tsecr = 0;
            }
        });
        let synack = answer(&mut net, t0 + Duration::from_secs(6), &syn);
        assert_eq!(synack.len(), 1);
        assert_eq!(net.b.time_wait_count(), 0);
        out.push(synack);
        runs.push((out, counts(&net.b)));
    }
    let [whole, compact] = [&runs[0], &runs[1]];
    let sent: Vec<usize> = whole.0.iter().map(Vec::len).collect();
    assert_eq!(
        sent,
        [1, 1, 1, 0, 0, 1, 1, 0, 1],
        "what the whole connection sent"
    );
    // PAWS failed once (the old FIN), one answer was rate-limited (the second old ACK).
    assert_eq!(whole.1[2..4], [1, 1], "PAWSTimewait, TCPACKSkippedTimeWait");
    assert_eq!(whole, compact);
}

#[test]
fn a_compact_time_wait_entry_ends_on_a_rst_or_after_time_wait() {
    for (trace, rst) in [(true, true), (false, true), (true, false), (false, false)] {
        let (mut net, fin) = server_in_time_wait(trace);
        let t0 = net.now;
        if rst {
            let rst = rst_at_rcv_nxt(&fin);
            assert!(answer(&mut net, t0 + Duration::from_secs(1), &rst).is_empty());
            assert_eq!(net.b.connection_count(), 0, "a RST ends TIME-WAIT");
        } else {
            net.now = t0 + Duration::from_secs(59);
            net.b.handle_timeout(net.now);
            assert_eq!(net.b.connection_count(), 1);
            let end = net.b.poll_timeout().unwrap();
            assert!(end <= t0 + Duration::from_secs(60), "{end:?}");
            net.b.handle_timeout(end);
            assert_eq!(net.b.connection_count(), 0, "TIME-WAIT over");
        }
        assert_eq!(net.b.time_wait_count(), 0);
        while net.b.poll_transmit(net.now, &mut [0u8; 2048]).is_some() {}
        assert_eq!(net.b.poll_timeout(), None, "nothing left to time");
    }
}

#[test]
fn rfc1337_keeps_a_compact_entry_through_a_rst() {
    let (mut net, fin) = server_in_time_wait(false);
    for cfg in net.b.time_wait_configs_mut() {
        cfg.rfc1337 = true;
    }
    let rst = rst_at_rcv_nxt(&fin);
    let now = net.now + Duration::from_secs(1);
    assert!(answer(&mut net, now, &rst).is_empty());
    assert_eq!(
        net.b.time_wait_count(),
        1,
        "RFC 1337: a RST does not end TIME-WAIT"
    );
}

#[test]
fn with_no_time_wait_entry_left_the_connection_goes_at_once() {
    // One entry allowed: the first server connection closed first keeps TIME-WAIT as an entry.
    let (mut net, fin) = server_closed_first(false, 1);
    assert_eq!(net.b.time_wait_count(), 1);
    assert_eq!(net.b.counters().tw_overflow, 0);
    let now = net.now;
    assert_eq!(answer(&mut net, now, &fin).len(), 1, "the FIN again: ACKed");
    // None allowed: the connection is gone on reaching TIME-WAIT (Linux's bucket overflow),
    // counted, and a's FIN again finds nothing (a RST, RFC 9293 §3.10.7.1).
    let (mut net, fin) = server_closed_first(false, 0);
    assert_eq!(net.b.time_wait_count(), 0);
    assert_eq!(net.b.connection_count(), 0);
    assert_eq!(net.b.counters().tw_overflow, 1);
    let now = net.now;
    let out = answer(&mut net, now, &fin);
    assert_eq!(out.len(), 1);
    let ip = ipv4::Packet::new_checked(&out[0][..]).unwrap();
    assert!(
        wtcp::Packet::new_checked(ip.payload())
            .unwrap()
            .flags()
            .rst()
    );
}

/// b's connection in TIME-WAIT, if it holds one whole.
fn whole_in_time_wait(s: &Stack) -> Option<&super::slots::ConnSlot> {
    s.slots.iter().find_map(|x| match &x.kind {
        super::slots::SlotKind::Conn(c) if c.conn.state() == State::TimeWait => Some(c),
        _ => None,
    })
}

/// What `time_wait_stays` leaves b's connection when it stays whole in TIME-WAIT, released
/// and out of the transmit queue: its wheel entry at the end of TIME-WAIT (the stack wakes
/// no earlier), its rings and scoreboard given to the spares; then it goes at that end.
/// Without that call its entry stays at the earlier deadline it held (about 1.2 s here,
/// against 61 s): the stack wakes then for nothing, and only then gives the parts.
fn stays_whole_until_the_end_of_time_wait(s: &mut Stack) {
    assert_eq!(s.time_wait_count(), 0, "kept whole");
    let slot = whole_in_time_wait(s).expect("b in TIME-WAIT");
    assert!(!slot.dirty && slot.released);
    let end = slot.conn.poll_timeout().unwrap();
    assert_eq!(slot.timer, Some(end), "the final deadline");
    assert!(slot.parts_given, "its rings and scoreboard given back");
    assert_eq!(s.poll_timeout(), Some(end), "no wake-up before it");
    s.handle_timeout(end);
    assert_eq!(s.connection_count(), 0, "TIME-WAIT over");
}

/// A released connection reaching TIME-WAIT while queued for transmission leaves its final
/// deadline and its parts to `compact_time_wait` (which usually frees the slot). One whose
/// events are recorded (without the stack's trace) cannot become an entry
/// (`time_wait_entry`) and stays whole: when it leaves the queue its wheel entry must be at
/// the end of TIME-WAIT and its rings given to the spares, as when the refresh did both.
#[test]
fn a_time_wait_connection_that_stays_whole_gets_its_deadline_and_gives_its_parts() {
    let mut net = Net::new();
    // Untraced (the test stacks trace): a traced stack refreshes every connection that
    // leaves its transmit queue (the idle path, which skips the refresh, is for untraced
    // stacks only), and that refresh would settle it before `compact_time_wait`.
    net.b.cfg.trace = false;
    let (_, c, s) = connected(&mut net, 80);
    assert_eq!(
        net.transfer(c, s, &[7; 30], Duration::from_secs(5)),
        [7; 30]
    );
    net.b.connections_mut().for_each(|c| c.record_events(true));
    net.b.close(net.now, s);
    net.run_until(
        |n| n.a.connection(c).unwrap().peer_closed(),
        Duration::from_secs(5),
    );
    // Half a second later, so that b's FIN-WAIT-2 deadline is before the end of TIME-WAIT.
    net.now += Duration::from_millis(500);
    net.a.close(net.now, c);
    // a's FIN straight to b, and b's queue drained (its ACK), with no timer run in between.
    let mut buf = vec![0u8; 2048];
    let n = net.a.poll_transmit(net.now, &mut buf).expect("a's FIN");
    let now = net.now;
    assert_eq!(answer(&mut net, now, &buf[..n]).len(), 1, "b's ACK");
    stays_whole_until_the_end_of_time_wait(&mut net.b);
}

/// The cps cycle's close (the server's data and FIN in one segment, then the client's FIN
/// and ACK of both) on an ECN connection, b untraced: b goes from FIN-WAIT-1 straight to
/// TIME-WAIT, sends its last ACK, and leaves the transmit queue with nothing to poll (the
/// idle path, no refresh), released by its application. ECN keeps it from becoming a
/// compact entry (`time_wait_entry`), so `compact_time_wait` hands it to `time_wait_stays`.
#[test]
fn an_ecn_connection_closed_as_in_cps_stays_whole_with_its_final_deadline() {
    let mut net = Net::new();
    // Untraced, as above; a asks for ECN on its SYN, b accepts (its default, Passive).
    net.b.cfg.trace = false;
    net.a.cfg.tcp = Arc::new(Config {
        ecn: crate::tcp::EcnMode::On,
        ..(*net.a.cfg.tcp).clone()
    });
    let (_, c, s) = connected(&mut net, 80);
    assert_eq!(net.transfer(c, s, &[7], Duration::from_secs(5)), [7]);
    // The server answers and closes at once: one segment with its byte and its FIN.
    let mut buf = vec![0u8; 2048];
    assert_eq!(net.b.send(net.now, s, &[9]).unwrap(), 1);
    net.b.close(net.now, s);
    let n = net
        .b
        .poll_transmit(net.now, &mut buf)
        .expect("b's data and FIN");
    assert!(net.b.poll_transmit(net.now, &mut [0u8; 2048]).is_none());
    // ECN negotiated: the segment goes out ECT(0) (the IPv4 TOS byte's two low bits, RFC 3168).
    assert_eq!(buf[1] & 3, 0b10, "ECT(0)");
    net.now += Duration::from_millis(5);
    net.a.handle_packet(net.now, &buf[..n]);
    assert_eq!(net.a.recv(net.now, c, &mut [0u8; 8]).unwrap(), 1);
    // The client reads and closes before its ACK goes: one FIN+ACK for both.
    net.a.close(net.now, c);
    let n = net.a.poll_transmit(net.now, &mut buf).expect("a's FIN+ACK");
    assert!(net.a.poll_transmit(net.now, &mut [0u8; 2048]).is_none());
    let now = net.now + Duration::from_millis(5);
    assert_eq!(answer(&mut net, now, &buf[..n]).len(), 1, "b's last ACK");
    stays_whole_until_the_end_of_time_wait(&mut net.b);
}
