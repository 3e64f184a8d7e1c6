//! Forwarder mode at the stack's edge: SYNs to any destination held until the application
//! decides (SYN-ACK, RST, ICMP unreachable or nothing), the cap on pending decisions with SYN
//! cookies past it, UDP flows with their idle timeouts, and echo requests put before the
//! application; raw packets in, exact packets out, and whole flows between two stacks.

use super::handshake::{drain, ip_tcp, seg, syn_to, tcp_of};
use super::v6::{icmp6_msg, icmp6_of, ip6};
use super::*;
use crate::tcp::SeqNum;
use crate::tcp::SynCookies;
use crate::wire::icmp::Quote;
use crate::wire::{icmpv6, ipv6 as wipv6, udp as wudp};

/// The forwarder's own address is B_IP; destinations elsewhere in 198.18.0.0/15 (and in the
/// ULA prefix) are "the Internet" behind it.
const FAR: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 77);
const FAR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x5ac, 0xffff, 0, 0, 0, 0, 0x77);
const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(A_IP), 40000);

fn far(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(FAR), port)
}

fn forward_cfg() -> ForwardConfig {
    ForwardConfig {
        prefixes: vec![
            Ipv4Cidr::new(Ipv4Addr::new(198, 18, 0, 0), 15).into(),
            Ipv6Cidr::new(Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 0), 32).into(),
        ],
        ..ForwardConfig::default()
    }
}

/// A forwarder (B) with `tcp` settings.
fn forwarder(tcp: Config, cfg: ForwardConfig) -> (Stack, Forwarding) {
    let mut s = Stack::new(
        StackConfig {
            name: "forwarder".into(),
            trace: true,
            tcp: Arc::new(tcp),
            ..StackConfig::default()
        },
        [2; 32],
    );
    s.add_address(Ipv4Cidr::new(B_IP, 24));
    s.add_address(Ipv6Cidr::new(B_IP6, 64));
    let f = s.enable_forwarding(cfg);
    (s, f)
}

/// The forwarder's events that `pick` takes (the others are dropped).
fn events<T>(s: &mut Stack, pick: impl Fn(ForwardEvent) -> Option<T>) -> Vec<T> {
    std::iter::from_fn(|| s.poll_forward())
        .filter_map(pick)
        .collect()
}

fn pending(s: &mut Stack) -> Vec<PendingTcp> {
    events(s, |e| match e {
        ForwardEvent::Tcp(p) => Some(p),
        _ => None,
    })
}

#[test]
fn a_syn_to_any_destination_waits_for_the_decision_then_accept_sends_the_synack() {
    let (mut s, _) = forwarder(Config::default(), forward_cfg());
    s.handle_packet(Instant::ZERO, &syn_to(CLIENT, far(443), 1000, Some(77)));
    assert!(
        drain(&mut s, Instant::ZERO).is_empty(),
        "nothing before the decision"
    );
    let p = pending(&mut s);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].src, p[0].dst), (CLIENT, far(443)));
    assert_eq!(s.forward_pending_len(), 1);
    assert_eq!(s.counters().fwd_tcp_pending, 1);
    // The client's SYN again: still one decision.
    let t1 = Instant::ZERO + Duration::from_secs(1);
    s.handle_packet(t1, &syn_to(CLIENT, far(443), 1000, Some(1077)));
    assert!(pending(&mut s).is_empty() && drain(&mut s, t1).is_empty());

    let h = s.forward_accept(t1, p[0].id).unwrap();
    let out = drain(&mut s, t1);
    assert_eq!(out.len(), 1);
    let ip = ipv4::Packet::new_checked(&out[0][..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (FAR, A_IP));
    let sa = tcp_of(&out[0]);
    assert_eq!((sa.src_port, sa.dst_port), (443, 40000));
    assert_eq!(sa.flags, Flags::SYN | Flags::ACK);
    assert_eq!(sa.ack, SeqNum(1001));
    assert_eq!(sa.options.mss, Some(1460));
    assert!(sa.options.sack_permitted);
    assert_eq!(sa.options.window_scale, Some(7));
    assert_eq!(sa.options.timestamps.map(|t| t.tsecr), Some(77));
    assert_eq!(s.connection(h).unwrap().state(), State::SynReceived);
    // A second decision on the same SYN is refused.
    let again = s.forward_accept(t1, p[0].id).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::NotFound);

    // The client's ACK with data: ESTABLISHED, the data readable, the reply from FAR.
    let mut a = seg(
        CLIENT,
        far(443),
        1001,
        (sa.seq + 1u32).0,
        Flags::ACK | Flags::PSH,
    );
    a.payload = b"GET /";
    a.options.timestamps = Some(wtcp::Timestamps {
        tsval: 1100,
        tsecr: sa.options.timestamps.unwrap().tsval,
    });
    s.handle_packet(t1, &ip_tcp(CLIENT, far(443), &a));
    assert_eq!(s.connection(h).unwrap().state(), State::Established);
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(t1, h, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"GET /");
    s.send(t1, h, b"200").unwrap();
    let out = drain(&mut s, t1);
    let data = out
        .iter()
        .map(|p| tcp_of(p))
        .find(|t| !t.payload.is_empty());
    assert_eq!(
        data.map(|t| (t.src_port, t.payload)),
        Some((443, &b"200"[..]))
    );
    assert_eq!(s.counters().passive_opens, 1);
    assert_eq!(s.forward_pending_len(), 0);
}

#[test]
fn refuse_answers_with_a_rst_or_an_icmp_unreachable_quoting_the_syn() {
    let (mut s, _) = forwarder(Config::default(), forward_cfg());
    s.handle_packet(Instant::ZERO, &syn_to(CLIENT, far(443), 1000, None));
    let p = pending(&mut s).remove(0);
    s.forward_refuse(Instant::ZERO, p.id, Refusal::Reset)
        .unwrap();
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let rst = tcp_of(&out[0]);
    assert_eq!(
        (rst.src_port, rst.dst_port, rst.seq, rst.ack, rst.flags),
        (443, 40000, SeqNum(0), SeqNum(1001), Flags::RST | Flags::ACK)
    );
    assert_eq!(
        ipv4::Packet::new_checked(&out[0][..]).unwrap().src_addr(),
        FAR
    );

    let syn = syn_to(CLIENT, far(8443), 5000, None);
    s.handle_packet(Instant::ZERO, &syn);
    let p = pending(&mut s).remove(0);
    s.forward_refuse(Instant::ZERO, p.id, Refusal::Unreachable(Unreachable::Host))
        .unwrap();
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let ip = ipv4::Packet::new_checked(&out[0][..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (FAR, A_IP));
    let m = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    let icmpv4::Repr::DstUnreachable {
        reason, invoking, ..
    } = icmpv4::Repr::parse(&m, true).unwrap()
    else {
        panic!("not an unreachable")
    };
    assert_eq!(reason, icmpv4::DstUnreachable::HostUnreachable);
    // The quote is the SYN's IP header and its first 8 TCP bytes (ports, sequence number).
    assert_eq!(invoking, &syn[..28]);
    let q = Quote::parse(invoking).unwrap();
    assert_eq!((q.src_port(), q.dst_port()), (40000, 8443));
    let c = s.counters();
    assert_eq!(
        (c.fwd_refused, c.icmp_out_dest_unreachs, c.out_rsts),
        (2, 1, 1)
    );
}

#[test]
fn refusal_over_ipv6_is_an_icmpv6_unreachable_from_the_original_destination() {
    let (mut s, _) = forwarder(Config::default(), forward_cfg());
    let mut t = seg(
        SocketAddr::new(IpAddr::V6(A_IP6), 40000),
        SocketAddr::new(IpAddr::V6(FAR6), 443),
        1000,
        0,
        Flags::SYN,
    );
    t.options.mss = Some(1440);
    let mut tb = vec![0u8; t.buffer_len()];
    t.emit(
        &mut wtcp::Packet::new_unchecked(&mut tb[..]),
        IpAddr::V6(A_IP6),
        IpAddr::V6(FAR6),
    )
    .unwrap();
    let syn = ip6(A_IP6, FAR6, 6, &tb);
    s.handle_packet(Instant::ZERO, &syn);
    let p = pending(&mut s).remove(0);
    assert_eq!(p.dst, SocketAddr::new(IpAddr::V6(FAR6), 443));
    s.forward_refuse(Instant::ZERO, p.id, Refusal::Unreachable(Unreachable::Port))
        .unwrap();
    let out = drain(&mut s, Instant::ZERO);
    let ip = wipv6::Packet::new_checked(&out[0][..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (FAR6, A_IP6));
    assert_eq!(
        icmp6_of(&out[0]),
        icmpv6::Repr::DstUnreachable {
            reason: icmpv6::DstUnreachable::PortUnreachable,
            invoking: &syn[..48],
        }
    );
    assert_eq!(s.counters().icmp6_out_dest_unreachs, 1);
}

#[test]
fn drop_answers_nothing_and_the_next_syn_asks_again() {
    let (mut s, _) = forwarder(Config::default(), forward_cfg());
    s.handle_packet(Instant::ZERO, &syn_to(CLIENT, far(443), 1000, None));
    let p = pending(&mut s).remove(0);
    s.forward_drop(p.id).unwrap();
    assert!(drain(&mut s, Instant::ZERO).is_empty());
    assert_eq!(
        s.forward_refuse(Instant::ZERO, p.id, Refusal::Reset)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let t1 = Instant::ZERO + Duration::from_secs(1);
    s.handle_packet(t1, &syn_to(CLIENT, far(443), 1000, None));
    let again = pending(&mut s);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].id, p.id, "a new decision, a new id");
}

#[test]
fn a_pending_decision_ends_after_its_timeout_or_the_clients_rst() {
    let (mut s, _) = forwarder(Config::default(), forward_cfg());
    s.handle_packet(Instant::ZERO, &syn_to(CLIENT, far(443), 1000, None));
    let p = pending(&mut s).remove(0);
    assert_eq!(
        s.poll_timeout(),
        Some(Instant::ZERO + Duration::from_secs(130))
    );
    s.handle_timeout(Instant::ZERO + Duration::from_secs(129));
    assert!(s.forward_is_pending(CLIENT, far(443)));
    s.handle_timeout(Instant::ZERO + Duration::from_secs(130));
    assert!(!s.forward_is_pending(CLIENT, far(443)));
    assert_eq!(s.counters().fwd_tcp_pending_expired, 1);
    let late = s.forward_accept(Instant::ZERO + Duration::from_secs(131), p.id);
    assert_eq!(late.unwrap_err().kind(), ErrorKind::NotFound);

    // The client's RST (it gave up) forgets the pending decision.
    s.handle_packet(Instant::ZERO, &syn_to(CLIENT, far(80), 2000, None));
    let p = pending(&mut s).remove(0);
    let rst = seg(CLIENT, far(80), 2001, 0, Flags::RST);
    s.handle_packet(Instant::ZERO, &ip_tcp(CLIENT, far(80), &rst));
    assert_eq!(s.forward_pending_len(), 0);
    assert!(s.forward_accept(Instant::ZERO, p.id).is_err());
}

#[test]
fn past_the_cap_syns_get_cookies_and_complete_on_the_accept_queue() {
    let cfg = ForwardConfig {
        max_pending: 2,
        ..forward_cfg()
    };
    let (mut s, fwd) = forwarder(Config::default(), cfg);
    for port in [1, 2, 3] {
        let client = SocketAddr::new(IpAddr::V4(A_IP), 40000 + port);
        s.handle_packet(Instant::ZERO, &syn_to(client, far(443), 1000, Some(5)));
    }
    assert_eq!(pending(&mut s).len(), 2);
    let c = s.counters();
    assert_eq!((c.fwd_tcp_pending_full, c.syncookies_sent), (1, 1));
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(out.len(), 1, "the cookie SYN-ACK, nothing else");
    let sa = tcp_of(&out[0]);
    assert_eq!((sa.src_port, sa.dst_port), (443, 40003));
    // The client's ACK proves its address: an established connection, no decision asked.
    let client = SocketAddr::new(IpAddr::V4(A_IP), 40003);
    let mut a = seg(client, far(443), 1001, (sa.seq + 1u32).0, Flags::ACK);
    a.options.timestamps = Some(wtcp::Timestamps {
        tsval: 6,
        tsecr: sa.options.timestamps.unwrap().tsval,
    });
    s.handle_packet(Instant::ZERO, &ip_tcp(client, far(443), &a));
    assert_eq!(s.counters().syncookies_recv, 1);
    let h = s.accept(fwd.tcp).unwrap().expect("on the accept queue");
    let c = s.connection(h).unwrap();
    assert_eq!((c.local(), c.remote()), (far(443), client));
    assert_eq!(c.state(), State::Established);
}

#[test]
fn past_the_cap_without_cookies_syns_are_dropped_and_counted() {
    let cfg = ForwardConfig {
        max_pending: 1,
        ..forward_cfg()
    };
    let tcp = Config {
        syncookies: SynCookies::Never,
        ..Config::default()
    };
    let (mut s, _) = forwarder(tcp, cfg);
    for port in [1, 2] {
        let client = SocketAddr::new(IpAddr::V4(A_IP), 40000 + port);
        s.handle_packet(Instant::ZERO, &syn_to(client, far(443), 1000, None));
    }
    assert_eq!(pending(&mut s).len(), 1);
    assert!(drain(&mut s, Instant::ZERO).is_empty());
    let c = s.counters();
    assert_eq!(
        (c.fwd_tcp_pending_full, c.listen_drops, c.syncookies_sent),
        (1, 1, 0)
    );
}

#[test]
fn the_forwarders_own_address_keeps_its_listeners_and_rsts() {
    let (mut s, _) = forwarder(Config::default(), forward_cfg());
    let mine = SocketAddr::new(IpAddr::V4(B_IP), 80);
    s.handle_packet(Instant::ZERO, &syn_to(CLIENT, mine, 1000, None));
    assert!(pending(&mut s).is_empty());
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(tcp_of(&out[0]).flags, Flags::RST | Flags::ACK);
    // Outside the prefixes, or multicast: not ours, not forwarded.
    let outside = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80);
    s.handle_packet(Instant::ZERO, &syn_to(CLIENT, outside, 1000, None));
    assert!(pending(&mut s).is_empty() && drain(&mut s, Instant::ZERO).is_empty());
    assert_eq!(s.counters().ip_in_addr_errors, 1);
}

/// A client stack (A) routed through the forwarder (B).
fn forwarded_net() -> (Net, Forwarding) {
    let mut net = Net::new();
    let (b, f) = forwarder(Config::default(), forward_cfg());
    net.b = b;
    net.a.set_gateway(Some(B_IP));
    net.a.set_gateway_v6(Some(B_IP6));
    (net, f)
}

/// Accepts every pending TCP flow on B.
fn accept_all(net: &mut Net, accepted: &mut Vec<SocketHandle>) {
    for p in pending(&mut net.b) {
        accepted.push(net.b.forward_accept(net.now, p.id).unwrap());
    }
}

#[test]
fn a_whole_connection_through_the_forwarder_in_both_families() {
    for dst in [far(443), SocketAddr::new(IpAddr::V6(FAR6), 443)] {
        let (mut net, _) = forwarded_net();
        let c = net.a.connect(net.now, dst, None).unwrap();
        let mut acc = Vec::new();
        net.run_until(
            |n| {
                accept_all(n, &mut acc);
                n.a.connection(c).unwrap().state() == State::Established
            },
            Duration::from_secs(5),
        );
        let h = acc[0];
        assert_eq!(net.b.connection(h).unwrap().local(), dst);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let got = net.transfer(c, h, &data, Duration::from_secs(10));
        assert_eq!(got, data);
    }
}

#[test]
fn connect_through_a_refusing_forwarder_fails_at_once() {
    let (mut net, _) = forwarded_net();
    let c = net.a.connect(net.now, far(443), None).unwrap();
    let mut refused_at = None;
    net.run_until(
        |n| {
            for p in pending(&mut n.b) {
                n.b.forward_refuse(n.now, p.id, Refusal::Reset).unwrap();
                refused_at = Some(n.now);
            }
            n.a.connection(c).unwrap().state() == State::Closed
        },
        Duration::from_secs(3),
    );
    let mut buf = [0u8; 1];
    let e = net.a.recv(net.now, c, &mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    // One link delay (5 ms) after the refusal, not a handshake and a timeout later.
    assert!(net.now - refused_at.unwrap() <= Duration::from_millis(5));
}

/// A UDP datagram from `from` to `to`, checksummed.
fn udp_packet(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let r = wudp::Repr {
        src_port: from.port(),
        dst_port: to.port(),
        payload,
    };
    let mut d = vec![0u8; r.buffer_len()];
    r.emit(&mut d, from.ip(), to.ip()).unwrap();
    match (from.ip(), to.ip()) {
        (IpAddr::V4(s), IpAddr::V4(t)) => {
            let mut pkt = vec![0u8; 20 + d.len()];
            let mut ip = ipv4::Packet::new_unchecked(&mut pkt[..]);
            ipv4::Repr::new(s, t, IpProtocol::Udp, d.len())
                .emit(&mut ip, true)
                .unwrap();
            ip.payload_mut().copy_from_slice(&d);
            pkt
        }
        (IpAddr::V6(s), IpAddr::V6(t)) => ip6(s, t, 17, &d),
        _ => unreachable!(),
    }
}

/// The UDP datagram of an IPv4 or IPv6 packet (no extension headers): (src, dst, payload).
fn udp_of(pkt: &[u8]) -> (SocketAddr, SocketAddr, Vec<u8>) {
    let (src, dst, body) = if pkt[0] >> 4 == 4 {
        let p = ipv4::Packet::new_checked(pkt).unwrap();
        assert_eq!(p.protocol(), IpProtocol::Udp);
        (
            IpAddr::V4(p.src_addr()),
            IpAddr::V4(p.dst_addr()),
            p.payload().to_vec(),
        )
    } else {
        let p = wipv6::Packet::new_checked(pkt).unwrap();
        assert_eq!(p.next_header(), IpProtocol::Udp);
        (
            IpAddr::V6(p.src_addr()),
            IpAddr::V6(p.dst_addr()),
            p.payload().to_vec(),
        )
    };
    let u = wudp::Packet::new_checked(&body[..]).unwrap();
    let r = wudp::Repr::parse(&u, src, dst, true).expect("checksum verifies");
    (
        SocketAddr::new(src, r.src_port),
        SocketAddr::new(dst, r.dst_port),
        r.payload.to_vec(),
    )
}

#[test]
fn udp_to_any_destination_arrives_with_its_original_destination_and_replies_go_back_from_it() {
    for (client, dst) in [
        (CLIENT, far(53)),
        (
            SocketAddr::new(IpAddr::V6(A_IP6), 40000),
            SocketAddr::new(IpAddr::V6(FAR6), 53),
        ),
    ] {
        let (mut s, f) = forwarder(Config::default(), forward_cfg());
        s.handle_packet(Instant::ZERO, &udp_packet(client, dst, b"query"));
        let mut buf = [0u8; 64];
        let m = s.recv_from(f.udp, &mut buf).unwrap();
        assert_eq!((m.src, m.dst, &buf[..m.len]), (client, dst, &b"query"[..]));
        assert_eq!(
            s.recv_from(f.udp, &mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert_eq!(s.forward_udp_flows(), 1);
        s.send_from(Instant::ZERO, f.udp, b"answer", dst, client)
            .unwrap();
        let out = drain(&mut s, Instant::ZERO);
        assert_eq!(out.len(), 1);
        assert_eq!(udp_of(&out[0]), (dst, client, b"answer".to_vec()));
        // Only flows the client opened are answered.
        let other = SocketAddr::new(dst.ip(), 54);
        let e = s
            .send_from(Instant::ZERO, f.udp, b"x", other, client)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConnected);
        let c = s.counters();
        let (inp, out) = if client.is_ipv4() {
            (c.udp_in_datagrams, c.udp_out_datagrams)
        } else {
            (c.udp6_in_datagrams, c.udp6_out_datagrams)
        };
        assert_eq!((inp, out, c.fwd_udp_flows), (1, 1, 1));
    }
}

fn closed_events(s: &mut Stack) -> Vec<(SocketAddr, SocketAddr, UdpCloseReason)> {
    events(s, |e| match e {
        ForwardEvent::UdpClosed {
            client,
            dst,
            reason,
        } => Some((client, dst, reason)),
        _ => None,
    })
}

#[test]
fn udp_flows_end_after_30_s_unreplied_and_120_s_once_replied_as_conntrack() {
    let (mut s, f) = forwarder(Config::default(), forward_cfg());
    let t = |secs: u64| Instant::ZERO + Duration::from_secs(secs);
    let (c1, c2) = (CLIENT, SocketAddr::new(IpAddr::V4(A_IP), 40001));
    s.handle_packet(t(0), &udp_packet(c1, far(53), b"a"));
    s.handle_packet(t(0), &udp_packet(c2, far(53), b"b"));
    s.send_from(t(1), f.udp, b"reply", far(53), c2).unwrap();
    // Traffic refreshes: c1 sends again at 20 s, so its flow lives until 50 s.
    s.handle_packet(t(20), &udp_packet(c1, far(53), b"a"));
    let mut now = t(0);
    let mut ended = Vec::new();
    while let Some(next) = s.poll_timeout() {
        if next > t(200) {
            break;
        }
        now = next.max(now);
        s.handle_timeout(now);
        drain(&mut s, now);
        for e in closed_events(&mut s) {
            ended.push((e, now));
        }
    }
    assert_eq!(
        ended,
        [
            ((c1, far(53), UdpCloseReason::Idle), t(50)),
            ((c2, far(53), UdpCloseReason::Idle), t(121)),
        ]
    );
    assert_eq!(s.counters().fwd_udp_flows_closed, 2);
    assert_eq!(s.forward_udp_flows(), 0);
}

#[test]
fn udp_refusal_and_the_clients_port_unreachable_end_the_flow() {
    let (mut s, f) = forwarder(Config::default(), forward_cfg());
    let q = udp_packet(CLIENT, far(53), b"query");
    s.handle_packet(Instant::ZERO, &q);
    s.forward_udp_refuse(CLIENT, far(53), Unreachable::Port)
        .unwrap();
    let out = drain(&mut s, Instant::ZERO);
    let ip = ipv4::Packet::new_checked(&out[0][..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (FAR, A_IP));
    let m = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        icmpv4::Repr::parse(&m, true).unwrap(),
        icmpv4::Repr::DstUnreachable {
            reason: icmpv4::DstUnreachable::PortUnreachable,
            next_hop_mtu: None,
            invoking: &q[..28],
        }
    );
    assert_eq!(
        closed_events(&mut s),
        [(CLIENT, far(53), UdpCloseReason::Refused)]
    );

    // The other way: our reply reaches a closed port on the client, which says so.
    s.handle_packet(Instant::ZERO, &udp_packet(CLIENT, far(53), b"query"));
    s.send_from(Instant::ZERO, f.udp, b"late answer", far(53), CLIENT)
        .unwrap();
    let reply = drain(&mut s, Instant::ZERO).remove(0);
    let unreach = icmpv4::Repr::DstUnreachable {
        reason: icmpv4::DstUnreachable::PortUnreachable,
        next_hop_mtu: None,
        invoking: &reply[..28],
    };
    s.handle_packet(Instant::ZERO, &ip_icmp(A_IP, FAR, &unreach));
    assert_eq!(
        closed_events(&mut s),
        [(CLIENT, far(53), UdpCloseReason::Unreachable)]
    );
    assert_eq!(s.forward_udp_flows(), 0);
}

#[test]
fn udp_sockets_between_two_stacks_in_both_families_with_fragments() {
    for (a_ip, b_ip) in [
        (IpAddr::V4(A_IP), IpAddr::V4(B_IP)),
        (IpAddr::V6(A_IP6), IpAddr::V6(B_IP6)),
    ] {
        let mut net = Net::new();
        let server = net.b.udp_bind(SocketAddr::new(b_ip, 5000)).unwrap();
        let client = net.a.udp_bind(SocketAddr::new(a_ip, 0)).unwrap();
        let cport = net.a.udp_local_addr(client).unwrap().unwrap().port();
        assert!((32768..=60999).contains(&cport));
        let big: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
        net.a
            .send_to(net.now, client, &big, SocketAddr::new(b_ip, 5000))
            .unwrap();
        let mut buf = vec![0u8; 4000];
        let mut got = None;
        net.run_until(
            |n| {
                if let Ok(m) = n.b.recv_from(server, &mut buf) {
                    got = Some(m);
                }
                got.is_some()
            },
            Duration::from_secs(1),
        );
        let m = got.unwrap();
        assert_eq!(
            (m.len, m.src, m.dst),
            (
                3000,
                SocketAddr::new(a_ip, cport),
                SocketAddr::new(b_ip, 5000)
            )
        );
        assert_eq!(&buf[..3000], &big[..]);
        let (frags, reasm) = if a_ip.is_ipv4() {
            (
                net.a.counters().ip_frag_creates,
                net.b.counters().ip_reasm_oks,
            )
        } else {
            (
                net.a.counters().ip6_frag_creates,
                net.b.counters().ip6_reasm_oks,
            )
        };
        assert_eq!(
            (frags, reasm),
            (3, 1),
            "3000 bytes in three fragments, reassembled"
        );
        // A datagram too small a buffer takes is truncated, and says so.
        net.b
            .send_to(net.now, server, b"0123456789", m.src)
            .unwrap();
        let mut small = [0u8; 4];
        let mut got = None;
        net.run_until(
            |n| {
                if let Ok(m) = n.a.recv_from(client, &mut small) {
                    got = Some(m);
                }
                got.is_some()
            },
            Duration::from_secs(1),
        );
        let m = got.unwrap();
        assert_eq!((m.len, m.datagram_len, &small[..]), (4, 10, &b"0123"[..]));
    }
}

#[test]
fn udp_to_a_closed_port_is_port_unreachable_and_the_sender_hears_connection_refused() {
    let mut net = Net::new();
    let client = net
        .a
        .udp_bind(SocketAddr::new(IpAddr::V4(A_IP), 4000))
        .unwrap();
    net.a
        .send_to(net.now, client, b"anyone?", server_addr(9))
        .unwrap();
    net.run_until(|n| n.b.counters().udp_no_ports == 1, Duration::from_secs(1));
    net.run_until(
        |n| n.a.counters().icmp_in_dest_unreachs == 1,
        Duration::from_secs(1),
    );
    assert_eq!(net.b.counters().icmp_out_dest_unreachs, 1);
    let e = net.a.udp_take_error(client).expect("an error recorded");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(net.a.udp_take_error(client).is_none(), "taken once");
    // The quote in B's message was A's datagram: check it in the capture.
    let (_, _, msg) = net
        .log
        .iter()
        .find(|(_, from_a, p)| !from_a && p[9] == 1)
        .unwrap();
    let ip = ipv4::Packet::new_checked(&msg[..]).unwrap();
    let m = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    let icmpv4::Repr::DstUnreachable {
        reason, invoking, ..
    } = icmpv4::Repr::parse(&m, true).unwrap()
    else {
        panic!()
    };
    assert_eq!(reason, icmpv4::DstUnreachable::PortUnreachable);
    assert_eq!(&invoking[28..], b"anyone?");
}

#[test]
fn bad_udp_is_counted_by_family_and_never_delivered() {
    let (mut s, f) = forwarder(Config::default(), forward_cfg());
    let mut bad = udp_packet(CLIENT, far(53), b"query");
    bad[30] ^= 1;
    s.handle_packet(Instant::ZERO, &bad);
    let v6c = SocketAddr::new(IpAddr::V6(A_IP6), 40000);
    let v6d = SocketAddr::new(IpAddr::V6(FAR6), 53);
    let mut zero = udp_packet(v6c, v6d, b"query");
    zero[46] = 0;
    zero[47] = 0;
    s.handle_packet(Instant::ZERO, &zero);
    let mut short = udp_packet(CLIENT, far(53), b"query");
    short[25] = 7; // Length 7: less than the header
    s.handle_packet(Instant::ZERO, &short);
    let c = s.counters();
    assert_eq!(
        (
            c.udp_in_csum_errors,
            c.udp_in_errors,
            c.udp6_in_csum_errors,
            c.udp6_in_errors
        ),
        (1, 2, 1, 1)
    );
    // None was queued; a read finds nothing and counts nothing (`UdpInDatagrams` counts
    // reads, so only a read could make it move).
    assert_eq!(s.udp_queued(f.udp), 0);
    let mut buf = [0u8; 64];
    assert_eq!(
        s.recv_from(f.udp, &mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    let c = s.counters();
    assert_eq!(c.udp_in_datagrams + c.udp6_in_datagrams, 0);
}

#[test]
fn a_full_receive_queue_drops_and_counts_rcvbuf_errors() {
    let mut s = stack(B_IP, "server", 2);
    let h = s.udp_bind(server_addr(5000)).unwrap();
    let big = vec![7u8; 60_000];
    for _ in 0..4 {
        s.handle_packet(Instant::ZERO, &udp_packet(CLIENT, server_addr(5000), &big));
    }
    // 212992 bytes of buffer: three 60,000-byte datagrams fit, the fourth does not. The drop
    // counts when it arrives; `UdpInDatagrams` only as the application reads (Linux
    // `udp_recvmsg`), so nothing yet.
    let c = s.counters();
    assert_eq!(
        (c.udp_in_datagrams, c.udp_rcvbuf_errors, c.udp_in_errors),
        (0, 1, 1)
    );
    assert_eq!(s.udp_queued(h), 3);
    let mut buf = vec![0u8; 65536];
    assert_eq!(s.recv_from(h, &mut buf).unwrap().len, 60_000);
    // A truncated read counts as well, as Linux's does.
    assert_eq!(s.recv_from(h, &mut buf[..10]).unwrap().len, 10);
    assert_eq!(s.counters().udp_in_datagrams, 2);
    s.handle_packet(Instant::ZERO, &udp_packet(CLIENT, server_addr(5000), &big));
    s.handle_packet(Instant::ZERO, &udp_packet(CLIENT, server_addr(5000), &big));
    assert_eq!(s.udp_queued(h), 3, "room again once two are read");
}

#[test]
fn udp_socket_errors_are_typed() {
    let mut s = stack(B_IP, "server", 2);
    let h = s.udp_bind(server_addr(5000)).unwrap();
    let kind = |r: std::io::Result<UdpHandle>| r.unwrap_err().kind();
    assert_eq!(kind(s.udp_bind(server_addr(5000))), ErrorKind::AddrInUse);
    let not_ours = SocketAddr::new(IpAddr::V4(FAR), 1);
    assert_eq!(kind(s.udp_bind(not_ours)), ErrorKind::AddrNotAvailable);
    let too_big = vec![0u8; 65508];
    let e = s.send_to(
        Instant::ZERO,
        h,
        &too_big,
        SocketAddr::new(IpAddr::V4(A_IP), 1),
    );
    assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidInput);
    let v6 = SocketAddr::new(IpAddr::V6(A_IP6), 1);
    assert_eq!(
        s.send_from(Instant::ZERO, h, b"x", server_addr(5000), v6)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    s.udp_close(h);
    assert_eq!(
        s.recv_from(h, &mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert!(
        s.udp_bind(server_addr(5000)).is_ok(),
        "the port is free again"
    );
}

fn echoes(s: &mut Stack) -> Vec<PendingEcho> {
    events(s, |e| match e {
        ForwardEvent::Echo(p) => Some(p),
        _ => None,
    })
}

#[test]
fn echo_to_a_forwarded_destination_is_never_answered_blindly() {
    let (mut s, _) = forwarder(Config::default(), forward_cfg());
    let req = icmpv4::Repr::EchoRequest {
        ident: 9,
        seq_no: 1,
        data: b"hello",
    };
    s.handle_packet(Instant::ZERO, &ip_icmp(A_IP, FAR, &req));
    assert!(
        drain(&mut s, Instant::ZERO).is_empty(),
        "not answered blindly"
    );
    let e = echoes(&mut s).remove(0);
    assert_eq!(
        (e.src, e.dst, e.ident, e.seq_no, &e.data[..]),
        (IpAddr::V4(A_IP), IpAddr::V4(FAR), 9, 1, &b"hello"[..])
    );
    s.forward_echo_reply(e.id).unwrap();
    let out = drain(&mut s, Instant::ZERO);
    let ip = ipv4::Packet::new_checked(&out[0][..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (FAR, A_IP));
    let m = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        icmpv4::Repr::parse(&m, true).unwrap(),
        icmpv4::Repr::EchoReply {
            ident: 9,
            seq_no: 1,
            data: b"hello"
        }
    );
    assert!(s.forward_echo_reply(e.id).is_err(), "answered once");

    // Refused: host unreachable quoting the request's header.
    s.handle_packet(Instant::ZERO, &ip_icmp(A_IP, FAR, &req));
    let e = echoes(&mut s).remove(0);
    s.forward_echo_refuse(e.id, Unreachable::Host).unwrap();
    let out = drain(&mut s, Instant::ZERO);
    let ip = ipv4::Packet::new_checked(&out[0][..]).unwrap();
    let m = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    let icmpv4::Repr::DstUnreachable {
        reason, invoking, ..
    } = icmpv4::Repr::parse(&m, true).unwrap()
    else {
        panic!()
    };
    assert_eq!(reason, icmpv4::DstUnreachable::HostUnreachable);
    let q = Quote::parse(invoking).unwrap();
    assert_eq!(
        (q.src_addr(), q.dst_addr(), q.protocol()),
        (IpAddr::V4(A_IP), IpAddr::V4(FAR), IpProtocol::Icmp)
    );
    // Our own address is still answered by the stack itself.
    s.handle_packet(Instant::ZERO, &ip_icmp(A_IP, B_IP, &req));
    assert!(echoes(&mut s).is_empty());
    assert_eq!(drain(&mut s, Instant::ZERO).len(), 1);
}

#[test]
fn a_3000_byte_ping_to_a_forwarded_ipv6_destination_is_answered_in_fragments() {
    let (mut s, _) = forwarder(Config::default(), forward_cfg());
    let data: Vec<u8> = (0..3000).map(|i| (i % 251) as u8).collect();
    let req = icmpv6::Repr::EchoRequest {
        ident: 3,
        seq_no: 4,
        data: &data,
    };
    let whole = ip6(A_IP6, FAR6, 58, &icmp6_msg(A_IP6, FAR6, &req));
    // Delivered whole (a TUN with a large MTU); the reply must fit 1500 on the way back.
    s.handle_packet(Instant::ZERO, &whole);
    let e = echoes(&mut s).remove(0);
    assert_eq!(e.data, data);
    s.forward_echo_reply(e.id).unwrap();
    let out = drain(&mut s, Instant::ZERO);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|p| p.len() <= 1500));
    let mut client = stack(A_IP, "client", 1);
    for p in &out {
        client.handle_packet(Instant::ZERO, p);
    }
    assert_eq!(client.counters().ip6_reasm_oks, 1);
    assert_eq!(s.counters().icmp6_out_echo_replies, 1);
}

#[test]
fn pending_echoes_are_capped_oldest_first() {
    let cfg = ForwardConfig {
        max_pending_echoes: 2,
        ..forward_cfg()
    };
    let (mut s, _) = forwarder(Config::default(), cfg);
    for seq_no in 0..3 {
        let req = icmpv4::Repr::EchoRequest {
            ident: 1,
            seq_no,
            data: b"",
        };
        s.handle_packet(Instant::ZERO, &ip_icmp(A_IP, FAR, &req));
    }
    let e = echoes(&mut s);
    assert_eq!(s.counters().fwd_echo_full, 1);
    assert!(s.forward_echo_reply(e[0].id).is_err(), "the oldest went");
    assert!(s.forward_echo_reply(e[2].id).is_ok());
    assert!(s.forward_echo_drop(e[1].id).is_ok());
}

#[test]
fn an_application_that_never_polls_holds_a_bounded_event_queue() {
    let cfg = ForwardConfig {
        max_pending: 1,
        max_pending_echoes: 1,
        max_udp_flows: 1,
        ..forward_cfg()
    };
    let (mut s, _) = forwarder(Config::default(), cfg);
    for seq_no in 0..10 {
        let req = icmpv4::Repr::EchoRequest {
            ident: 1,
            seq_no,
            data: b"",
        };
        s.handle_packet(Instant::ZERO, &ip_icmp(A_IP, FAR, &req));
    }
    // Room for what can be outstanding at once (1 + 1 + 1): the newest three.
    let seqs: Vec<u16> = echoes(&mut s).iter().map(|e| e.seq_no).collect();
    assert_eq!(seqs, [7, 8, 9]);
}

#[test]
fn a_checksum_the_device_computed_is_not_verified_again_and_only_for_that_packet() {
    let (mut s, f) = forwarder(Config::default(), forward_cfg());
    // What a TUN device with offloads hands over: the checksum left to the device
    // (here: wrong), which the device completed, so the stack takes its word.
    let mut partial = udp_packet(CLIENT, far(53), b"query");
    partial[26] ^= 0x55;
    s.handle_packet_checksummed(Instant::ZERO, &partial);
    let mut buf = [0u8; 64];
    let m = s.recv_from(f.udp, &mut buf).unwrap();
    assert_eq!(
        (&buf[..m.len], m.src, m.dst),
        (&b"query"[..], CLIENT, far(53))
    );
    // The next packet from anywhere else is verified as always.
    s.handle_packet(Instant::ZERO, &partial);
    assert_eq!(s.counters().udp_in_csum_errors, 1);
    assert_eq!(s.udp_queued(f.udp), 0);
}
