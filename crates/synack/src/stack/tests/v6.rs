//! IPv6 at the stack's edge: TCP between two dual-stack hosts, flow labels, dual-stack
//! listeners, ICMPv6 echo and packet too big, and the extension-header walk with the
//! parameter problems RFC 8200 §4 asks for.

use super::*;
use crate::wire::icmpv6::{self, ParamProblem};
use crate::wire::ipv6 as wipv6;

pub(super) fn v6(ip: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(ip), port)
}

/// An IPv6 packet from `src` to `dst` whose payload (extension headers included) starts with
/// `next`.
pub(super) fn ip6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut pkt = vec![0u8; wipv6::HEADER_LEN + payload.len()];
    let mut p = wipv6::Packet::new_unchecked(&mut pkt[..]);
    wipv6::Repr::new(src, dst, IpProtocol::from(next), payload.len())
        .emit(&mut p)
        .unwrap();
    p.payload_mut().copy_from_slice(payload);
    pkt
}

/// A TCP segment from A_IP6:40000 to B_IP6:`port` (checksum over the IPv6 pseudo-header):
/// seq 1000, MSS 1440.
pub(super) fn tcp6(port: u16, flags: Flags, payload: &[u8]) -> Vec<u8> {
    let options = wtcp::Options {
        mss: Some(1440),
        ..wtcp::Options::default()
    };
    tcp6_seg(port, flags, (1000, 0), options, payload)
}

/// [`tcp6`] with its sequence and acknowledgment numbers and options given.
fn tcp6_seg(
    port: u16,
    flags: Flags,
    (seq, ack): (u32, u32),
    options: wtcp::Options,
    payload: &[u8],
) -> Vec<u8> {
    let seg = wtcp::Repr {
        src_port: 40000,
        dst_port: port,
        seq: crate::tcp::SeqNum(seq),
        ack: crate::tcp::SeqNum(ack),
        flags,
        window: 65535,
        urgent: 0,
        options,
        payload,
    };
    let mut b = vec![0u8; seg.buffer_len()];
    seg.emit(
        &mut wtcp::Packet::new_unchecked(&mut b[..]),
        IpAddr::V6(A_IP6),
        IpAddr::V6(B_IP6),
    )
    .unwrap();
    b
}

/// An ICMPv6 message from `src` to `dst`, checksum filled in.
pub(super) fn icmp6_msg(src: Ipv6Addr, dst: Ipv6Addr, repr: &icmpv6::Repr<'_>) -> Vec<u8> {
    let mut msg = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut icmpv6::Packet::new_unchecked(&mut msg[..]),
        src,
        dst,
        true,
    )
    .unwrap();
    msg
}

/// The packets `s` sends now.
pub(super) fn drain(s: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(n) = s.poll_transmit(now, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// The ICMPv6 message of an IPv6 packet with no extension headers.
pub(super) fn icmp6_of(pkt: &[u8]) -> icmpv6::Repr<'_> {
    let p = wipv6::Packet::new_checked(pkt).unwrap();
    assert_eq!(p.next_header(), IpProtocol::Icmpv6);
    let payload = &pkt[wipv6::HEADER_LEN..wipv6::HEADER_LEN + p.payload().len()];
    let m = icmpv6::Packet::new_checked(payload).unwrap();
    icmpv6::Repr::parse(&m, p.src_addr(), p.dst_addr(), true).unwrap()
}

fn tcp_of(pkt: &[u8]) -> wtcp::Repr<'_> {
    let p = wipv6::Packet::new_checked(pkt).unwrap();
    assert_eq!(p.next_header(), IpProtocol::Tcp);
    let src = IpAddr::V6(p.src_addr());
    let dst = IpAddr::V6(p.dst_addr());
    let payload = &pkt[wipv6::HEADER_LEN..wipv6::HEADER_LEN + p.payload().len()];
    let t = wtcp::Packet::new_checked(payload).unwrap();
    wtcp::Repr::parse(&t, src, dst, true).unwrap()
}

fn flow_label(pkt: &[u8]) -> u32 {
    wipv6::Packet::new_checked(pkt).unwrap().flow_label()
}

#[test]
fn tcp_over_ipv6_end_to_end() {
    let mut net = Net::new();
    let (_l, c, s) = connected_to(&mut net, v6(B_IP6, 80));
    assert_eq!(net.a.connection(c).unwrap().local().ip(), IpAddr::V6(A_IP6));
    assert_eq!(
        net.b.connection(s).unwrap().remote().ip(),
        IpAddr::V6(A_IP6)
    );
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let got = net.transfer(c, s, &data, Duration::from_secs(10));
    assert!(got == data);
    // The SYN: hop limit 64, MSS = MTU - 60 (RFC 8200's 40-byte header, TCP's 20).
    let from = |a: bool| -> Vec<&Vec<u8>> {
        net.log
            .iter()
            .filter(|(_, x, _)| *x == a)
            .map(|(_, _, p)| p)
            .collect()
    };
    let syn = from(true)[0];
    let p = wipv6::Packet::new_checked(&syn[..]).unwrap();
    assert_eq!((p.hop_limit(), p.traffic_class()), (64, 0));
    assert_eq!(tcp_of(syn).options.mss, Some(1440));
    assert_eq!(tcp_of(from(false)[0]).options.mss, Some(1440), "SYN-ACK");
    // RFC 6437: one label per direction of the connection, never 0; the SYN-ACK (sent
    // before the server's connection exists) has the connection's label.
    for a in [true, false] {
        let labels: Vec<u32> = from(a).iter().map(|p| flow_label(p)).collect();
        assert!(
            labels[0] != 0 && labels.iter().all(|&l| l == labels[0]),
            "{labels:?}"
        );
    }
    assert_ne!(flow_label(from(true)[0]), flow_label(from(false)[0]));
    // The data segments filled the MSS (1440 minus 12 bytes of timestamps).
    let largest = from(true).iter().map(|p| tcp_of(p).payload.len()).max();
    assert_eq!(largest, Some(1428));
    assert_eq!(net.a.counters().ip6_out_requests as usize, from(true).len());
    assert!(net.b.counters().ip6_in_receives > 70);
}

#[test]
fn the_flow_label_changes_after_a_retransmission_timeout() {
    let mut net = Net::new();
    net.blackhole_b = true;
    let _c = net.a.connect(net.now, v6(B_IP6, 80), None).unwrap();
    net.run_until(
        |n| n.log.iter().filter(|(_, a, _)| *a).count() == 3,
        Duration::from_secs(10),
    );
    let labels: Vec<u32> = net.log.iter().map(|(_, _, p)| flow_label(p)).collect();
    assert_eq!(labels.len(), 3);
    assert!(
        labels[0] != labels[1] && labels[1] != labels[2],
        "{labels:?}"
    );
    assert_eq!(net.a.counters().timeout_rehash, 2);
}

#[test]
fn a_dual_stack_listener_takes_ipv4_unless_v6only() {
    let mut net = Net::new();
    let any6 = |port| v6(Ipv6Addr::UNSPECIFIED, port);
    let l = net.b.listen(any6(80), 4).unwrap();
    let c = net.a.connect(net.now, server_addr(80), None).unwrap();
    let mut s = None;
    net.run_until(
        |n| {
            s = s.or_else(|| n.b.accept(l).unwrap());
            s.is_some()
        },
        Duration::from_secs(5),
    );
    // The connection itself is IPv4 (the façades show the peer as ::ffff:198.18.0.1).
    let local = net.a.connection(c).unwrap().local();
    assert_eq!(net.b.connection(s.unwrap()).unwrap().remote(), local);
    assert!(local.is_ipv4());

    // IPV6_V6ONLY: IPv4 finds no listener, and is refused.
    let tcp = net.b.config().tcp.clone();
    net.b.listen_opts(any6(81), 4, tcp.clone(), true).unwrap();
    let c = net.a.connect(net.now, server_addr(81), None).unwrap();
    net.run_until(
        |n| n.a.connection(c).unwrap().state() == State::Closed,
        Duration::from_secs(5),
    );
    assert_eq!(
        net.a.recv(net.now, c, &mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );

    // A dual-stack [::] and 0.0.0.0 cannot share a port (Linux: EADDRINUSE either way); a
    // v6-only one can.
    let any4 = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
    net.b.listen(any4(82), 4).unwrap();
    assert_eq!(
        net.b.listen(any6(82), 4).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert_eq!(
        net.b.listen(any4(80), 4).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    net.b.listen_opts(any6(82), 4, tcp, true).unwrap();
    net.b.listen(any4(81), 4).unwrap();
}

/// Linux `inet_csk_bind_conflict` (without SO_REUSEPORT; SO_REUSEADDR never lets a socket
/// share a port with a listener): listeners on one port may not have overlapping addresses,
/// a wildcard and an address it covers included, in either order.
#[test]
fn listeners_with_overlapping_addresses_are_addr_in_use() {
    let mut net = Net::new();
    let now = net.now;
    let tcp = net.b.config().tcp.clone();
    let in_use = |r: std::io::Result<SocketHandle>| r.unwrap_err().kind() == ErrorKind::AddrInUse;
    let any4 = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
    let any6 = |port| v6(Ipv6Addr::UNSPECIFIED, port);
    let b4 = |port| SocketAddr::new(IpAddr::V4(B_IP), port);
    let b6 = |port| v6(B_IP6, port);
    let b = &mut net.b;
    // 0.0.0.0 covers every IPv4 address, either order; not an IPv6 one.
    let l = b.listen(any4(90), 4).unwrap();
    assert!(in_use(b.listen(b4(90), 4)));
    assert!(in_use(b.listen(v6(B_IP.to_ipv6_mapped(), 90), 4)));
    b.listen(b6(90), 4).unwrap();
    b.listen(b4(91), 4).unwrap();
    assert!(in_use(b.listen(any4(91), 4)));
    // Closing the wildcard frees the port for the address.
    b.close(now, l);
    b.listen(b4(90), 4).unwrap();
    // A dual-stack [::] covers IPv4 and IPv6 addresses, either order.
    b.listen(any6(92), 4).unwrap();
    assert!(in_use(b.listen(b4(92), 4)));
    assert!(in_use(b.listen(b6(92), 4)));
    b.listen(b4(93), 4).unwrap();
    assert!(in_use(b.listen(any6(93), 4)));
    // A v6-only [::] covers IPv6 addresses only.
    b.listen_opts(any6(93), 4, tcp.clone(), true).unwrap();
    assert!(in_use(b.listen(b6(93), 4)));
    b.listen(b6(94), 4).unwrap();
    assert!(in_use(b.listen_opts(any6(94), 4, tcp, true)));
    b.listen(any4(94), 4).unwrap();
    // Two different addresses of one family share a port.
    b.listen(b4(95), 4).unwrap();
    b.listen(b6(95), 4).unwrap();
    assert!(in_use(b.listen(b6(95), 4)));
}

/// RFC 9293 §3.7.1 (MUST-15): a peer whose SYN carries no MSS option is sent segments of
/// 1220 bytes over IPv6 (the IPv6 minimum MTU, 1280, less 60; Linux's IPv6 mss_clamp), not
/// IPv4's 536.
#[test]
fn without_an_mss_option_the_send_mss_is_1220_over_ipv6() {
    let now = Instant::ZERO;
    let mut b = stack(B_IP, "server", 2);
    let l = b.listen(v6(B_IP6, 80), 4).unwrap();
    // No options at all.
    let seg = |flags, seq: u32, ack: u32| {
        let t = tcp6_seg(80, flags, (seq, ack), wtcp::Options::default(), &[]);
        ip6(A_IP6, B_IP6, 6, &t)
    };
    b.handle_packet(now, &seg(Flags::SYN, 1000, 0));
    let out = drain(&mut b, now);
    let synack = tcp_of(&out[0]);
    assert_eq!(synack.flags, Flags::SYN | Flags::ACK);
    assert_eq!(synack.options.mss, Some(1440), "ours: MTU 1500 - 60");
    b.handle_packet(now, &seg(Flags::ACK, 1001, synack.seq.0.wrapping_add(1)));
    let h = b.accept(l).unwrap().expect("the handshake completed");
    assert_eq!(b.connection(h).unwrap().info().snd_mss, 1220);
    let cfg = crate::tcp::Config::default();
    assert_eq!(cfg.default_mss_for(IpAddr::V4(A_IP)), 536);
    assert_eq!(cfg.default_mss_for(IpAddr::V6(A_IP.to_ipv6_mapped())), 536);
    assert_eq!(cfg.default_mss_for(IpAddr::V6(A_IP6)), 1220);
}

#[test]
fn ipv4_mapped_addresses_are_ipv4() {
    let mut net = Net::new();
    let mapped = v6(B_IP.to_ipv6_mapped(), 80);
    let _l = net.b.listen(mapped, 4).unwrap();
    let c = net.a.connect(net.now, mapped, None).unwrap();
    let conn = net.a.connection(c).unwrap();
    assert_eq!(conn.remote(), server_addr(80));
    assert_eq!(conn.local().ip(), IpAddr::V4(A_IP));
    net.flush();
    assert_eq!(net.log[0].2[0] >> 4, 4, "an IPv4 SYN");
    assert_eq!(
        net.a
            .connect(net.now, mapped, Some(v6(A_IP6, 0)))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput,
        "from an IPv6 address to an IPv4 one"
    );
}

#[test]
fn icmpv6_echo_is_answered() {
    let mut b = stack(B_IP, "server", 2);
    let req = icmpv6::Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 9,
        data: b"hello, v6",
    };
    let msg = icmp6_msg(A_IP6, B_IP6, &req);
    b.handle_packet(Instant::ZERO, &ip6(A_IP6, B_IP6, 58, &msg));
    let out = drain(&mut b, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let p = wipv6::Packet::new_checked(&out[0][..]).unwrap();
    assert_eq!(
        (p.src_addr(), p.dst_addr(), p.hop_limit()),
        (B_IP6, A_IP6, 64)
    );
    assert_ne!(p.flow_label(), 0);
    assert_eq!(
        icmp6_of(&out[0]),
        icmpv6::Repr::EchoReply {
            ident: 0x1234,
            seq_no: 9,
            data: b"hello, v6"
        }
    );
    let c = b.counters();
    assert_eq!(
        (c.icmp6_in_echos, c.icmp6_out_echo_replies, c.icmp6_out_msgs),
        (1, 1, 1)
    );
}

#[test]
fn packet_too_big_lowers_the_mss_but_never_below_1280() {
    let mut net = Net::new();
    let l = net.b.listen(v6(B_IP6, 80), 4).unwrap();
    let c = net.a.connect(net.now, v6(B_IP6, 80), None).unwrap();
    net.run_until(|n| n.b.accept_queue_len(l) == 1, Duration::from_secs(5));
    let mss = |net: &Net| net.a.connection(c).unwrap().info().snd_mss;
    assert_eq!(mss(&net), 1428);
    // A router on the way reports 1400: a packet of a's, quoted.
    net.a.send(net.now, c, &[7u8; 3000]).unwrap();
    net.flush();
    let quoted = net
        .log
        .iter()
        .rev()
        .find(|(_, from_a, p)| *from_a && p.len() == 1500)
        .unwrap()
        .2
        .clone();
    // Below 1280 the message is discarded (RFC 8201 §4, as Linux does).
    for (mtu, want) in [
        (1400u32, 1400 - 60 - 12),
        (600, 1328),
        (1280, 1280 - 60 - 12),
    ] {
        let ptb = icmpv6::Repr::PacketTooBig {
            mtu,
            invoking: &quoted[..1232],
        };
        let msg = icmp6_msg(B_IP6, A_IP6, &ptb);
        net.a.handle_packet(net.now, &ip6(B_IP6, A_IP6, 58, &msg));
        assert_eq!(mss(&net), want, "mtu {mtu}");
    }
    assert_eq!(net.a.counters().icmp6_in_pkt_too_bigs, 3);
    // A new connection to the same host starts with the path MTU learned.
    let c2 = net.a.connect(net.now, v6(B_IP6, 80), None).unwrap();
    net.run_until(|n| n.b.accept_queue_len(l) == 2, Duration::from_secs(5));
    assert_eq!(net.a.connection(c2).unwrap().info().snd_mss, 1208);
}

/// RFC 5927 §4.1 over IPv6, as Linux's `tcp_v6_err`: a packet too big or an unreachable
/// quoting a sequence number outside SND.UNA..=SND.NXT is ignored and counted.
#[test]
fn icmpv6_errors_outside_snd_una_snd_nxt_are_ignored() {
    let mut net = Net::new();
    let l = net.b.listen(v6(B_IP6, 80), 4).unwrap();
    let c = net.a.connect(net.now, v6(B_IP6, 80), None).unwrap();
    net.run_until(|n| n.b.accept_queue_len(l) == 1, Duration::from_secs(5));
    let mss = |net: &Net| net.a.connection(c).unwrap().info().snd_mss;
    net.a.send(net.now, c, &[7u8; 1000]).unwrap();
    net.flush();
    let sent = net
        .log
        .iter()
        .rev()
        .find(|(_, from_a, p)| *from_a && p.len() > 1000)
        .unwrap()
        .2
        .clone();
    // The data is in flight, not acknowledged yet: SND.UNA = seq0, SND.NXT = seq0 + 1000.
    let seq0 = u32::from_be_bytes(sent[44..48].try_into().unwrap());
    let end = seq0 + 1000;
    assert_eq!(net.a.connection(c).unwrap().send_queue_len(), 1000);
    let quote = |seq: u32| {
        let mut q = sent[..100].to_vec();
        q[44..48].copy_from_slice(&seq.to_be_bytes());
        q
    };
    let deliver = |net: &mut Net, repr: &icmpv6::Repr<'_>| {
        let msg = icmp6_msg(B_IP6, A_IP6, repr);
        net.a.handle_packet(net.now, &ip6(B_IP6, A_IP6, 58, &msg));
    };
    // Just below SND.UNA, just beyond SND.NXT.
    for (n, seq) in [seq0 - 1, end + 1].into_iter().enumerate() {
        let q = quote(seq);
        deliver(
            &mut net,
            &icmpv6::Repr::PacketTooBig {
                mtu: 1280,
                invoking: &q,
            },
        );
        assert_eq!(mss(&net), 1428, "seq {seq}");
        assert_eq!(net.a.counters().out_of_window_icmps, 2 * n as u64 + 1);
        let unreach = icmpv6::Repr::DstUnreachable {
            reason: icmpv6::DstUnreachable::AddrUnreachable,
            invoking: &q,
        };
        deliver(&mut net, &unreach);
        assert_eq!(net.a.counters().out_of_window_icmps, 2 * n as u64 + 2);
    }
    let q = quote(end);
    deliver(
        &mut net,
        &icmpv6::Repr::PacketTooBig {
            mtu: 1280,
            invoking: &q,
        },
    );
    assert_eq!(mss(&net), 1280 - 60 - 12, "SND.NXT is in");
    assert_eq!(net.a.counters().out_of_window_icmps, 4);
}

/// One SYN behind `ext` (extension headers, the first naming TCP... as built by the caller),
/// with the fixed header's Next Header `first`; returns what b sends back.
fn syn_behind(b: &mut Stack, first: u8, ext: &[u8]) -> Vec<Vec<u8>> {
    let mut payload = ext.to_vec();
    payload.extend_from_slice(&tcp6(80, Flags::SYN, &[]));
    let pkt = ip6(A_IP6, B_IP6, first, &payload);
    b.handle_packet(Instant::ZERO, &pkt);
    drain(b, Instant::ZERO)
}

fn param_problem(out: &[Vec<u8>]) -> (ParamProblem, u32, usize) {
    assert_eq!(out.len(), 1, "one reply");
    match icmp6_of(&out[0]) {
        icmpv6::Repr::ParamProblem {
            reason,
            pointer,
            invoking,
        } => (reason, pointer, invoking.len()),
        other => panic!("{other}"),
    }
}

#[test]
fn extension_headers_are_walked_as_rfc_8200_says() {
    let mut b = stack(B_IP, "server", 2);
    b.listen(v6(B_IP6, 80), 16).unwrap();
    let is_synack =
        |out: &[Vec<u8>]| out.len() == 1 && tcp_of(&out[0]).flags == Flags::SYN | Flags::ACK;
    // Destination Options with PadN, then TCP: passed over.
    let dst_opts = [6, 0, 1, 4, 0, 0, 0, 0];
    assert!(is_synack(&syn_behind(&mut b, 60, &dst_opts)));
    // Hop-by-Hop with an unknown option whose type starts 00: skipped.
    let skip = [6, 0, 0x3e, 4, 1, 2, 3, 4];
    assert!(is_synack(&syn_behind(&mut b, 0, &skip)));
    // 01: the packet is discarded, silently.
    let discard = [6, 0, 0x7e, 4, 1, 2, 3, 4];
    assert!(syn_behind(&mut b, 0, &discard).is_empty());
    assert_eq!(b.counters().ip6_in_discards, 1);
    // 10: discarded, with a parameter problem (code 2) pointing at the option's type.
    let report = [6, 0, 1, 0, 0xbe, 2, 0, 0];
    let out = syn_behind(&mut b, 0, &report);
    assert_eq!(
        param_problem(&out),
        (ParamProblem::UnrecognizedOption, 44, 40 + 8 + 24)
    );
    // Hop-by-Hop after another header: an unrecognized next header (code 1), pointing at the
    // field that named it.
    let late_hbh = [0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0];
    let out = syn_behind(&mut b, 60, &late_hbh);
    assert_eq!(
        param_problem(&out),
        (ParamProblem::UnrecognizedNextHeader, 40, 40 + 16 + 24)
    );
    // A Routing header with segments left: code 0 at the Routing Type; none left: ignored.
    let routing = [6, 0, 0, 1, 0, 0, 0, 0];
    let out = syn_behind(&mut b, 43, &routing);
    assert_eq!(
        param_problem(&out),
        (ParamProblem::ErroneousHeaderField, 42, 40 + 8 + 24)
    );
    let spent = [6, 0, 0, 0, 0, 0, 0, 0];
    assert!(is_synack(&syn_behind(&mut b, 43, &spent)));
    // An upper layer we do not know: code 1, pointing at the fixed header's Next Header.
    let out = syn_behind(&mut b, 253, &[]);
    assert_eq!(
        param_problem(&out),
        (ParamProblem::UnrecognizedNextHeader, 6, 40 + 24)
    );
    assert_eq!(b.counters().icmp6_out_parm_problems, 4);
    // No Next Header: the packet ends, silently.
    assert!(syn_behind(&mut b, 59, &[]).is_empty());
    // A header cut off by the end of the packet: a header error, no reply.
    assert!(syn_behind(&mut b, 0, &[6, 9, 0, 0]).is_empty());
    assert!(b.counters().ip6_in_hdr_errors >= 1);
}

#[test]
fn no_error_is_sent_about_an_icmpv6_error() {
    let mut b = stack(B_IP, "server", 2);
    // An ICMPv6 destination unreachable behind a Hop-by-Hop option that asks for a report.
    let err = icmpv6::Repr::DstUnreachable {
        reason: icmpv6::DstUnreachable::PortUnreachable,
        invoking: &[0x60; 48],
    };
    let msg = icmp6_msg(A_IP6, B_IP6, &err);
    let mut payload = vec![58, 0, 1, 0, 0xbe, 2, 0, 0];
    payload.extend_from_slice(&msg);
    b.handle_packet(Instant::ZERO, &ip6(A_IP6, B_IP6, 0, &payload));
    assert!(drain(&mut b, Instant::ZERO).is_empty());
    assert_eq!(b.counters().ip6_in_discards, 1);
    // The same option in front of an echo request is reported.
    let req = icmpv6::Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: &[],
    };
    let msg = icmp6_msg(A_IP6, B_IP6, &req);
    let mut payload = vec![58, 0, 1, 0, 0xbe, 2, 0, 0];
    payload.extend_from_slice(&msg);
    b.handle_packet(Instant::ZERO, &ip6(A_IP6, B_IP6, 0, &payload));
    assert_eq!(drain(&mut b, Instant::ZERO).len(), 1);
}

#[test]
fn packets_not_for_us_or_from_impossible_sources_are_dropped() {
    let mut b = stack(B_IP, "server", 2);
    b.listen(v6(B_IP6, 80), 4).unwrap();
    let syn = tcp6(80, Flags::SYN, &[]);
    let other = Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 9);
    let multicast = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    for (src, dst) in [
        (A_IP6, other),
        (multicast, B_IP6),
        (Ipv6Addr::UNSPECIFIED, B_IP6),
        (B_IP6, B_IP6),
        (A_IP6, multicast),
    ] {
        b.handle_packet(Instant::ZERO, &ip6(src, dst, 6, &syn));
    }
    assert!(drain(&mut b, Instant::ZERO).is_empty());
    assert_eq!(b.counters().ip6_in_addr_errors, 5);
    // Truncated and lying about its length.
    let mut short = ip6(A_IP6, B_IP6, 6, &syn);
    short[5] += 1;
    b.handle_packet(Instant::ZERO, &short);
    b.handle_packet(Instant::ZERO, &short[..39]);
    assert_eq!(b.counters().ip6_in_hdr_errors, 2);
    assert_eq!(b.syn_queue_len(), 0);
}
