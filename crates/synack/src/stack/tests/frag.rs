//! Fragments at the stack's edge, both families: large pings reassembled and answered in
//! fragments, fragmented TCP segments delivered, timeouts with ICMP time exceeded, overlaps
//! and bad fragments dropped, and memory bounded under a flood.

use super::v6::{drain, icmp6_msg, icmp6_of, ip6, tcp6, v6};
use super::*;
use crate::wire::icmpv6;
use crate::wire::ipv6 as wipv6;
use crate::wire::ipv6ext::{FragmentHeader, FragmentRepr};

/// Splits an IPv4 packet into fragments of at most `mtu` bytes (RFC 791 §3.2), DF clear.
fn fragment_v4(pkt: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let p = ipv4::Packet::new_checked(pkt).unwrap();
    let hl = p.header_len();
    let data = p.payload();
    let room = (mtu - hl) & !7;
    let mut out = Vec::new();
    for (i, chunk) in data.chunks(room).enumerate() {
        let mut f = pkt[..hl].to_vec();
        f.extend_from_slice(chunk);
        let mut q = ipv4::Packet::new_unchecked(&mut f[..]);
        q.set_total_len((hl + chunk.len()) as u16);
        q.set_dont_frag(false);
        q.set_frag_offset((i * room) as u16);
        q.set_more_frags((i + 1) * room < data.len());
        q.fill_checksum();
        out.push(f);
    }
    out
}

/// Splits an IPv6 packet without extension headers into fragments of at most `mtu` bytes
/// (RFC 8200 §4.5).
fn fragment_v6(pkt: &[u8], mtu: usize, ident: u32) -> Vec<Vec<u8>> {
    let p = wipv6::Packet::new_checked(pkt).unwrap();
    let data = p.payload();
    let room = (mtu - 48) & !7;
    let mut out = Vec::new();
    for (i, chunk) in data.chunks(room).enumerate() {
        let mut payload = vec![0u8; 8];
        FragmentRepr {
            next_header: p.next_header(),
            frag_offset: (i * room) as u16,
            more_frags: (i + 1) * room < data.len(),
            ident,
        }
        .emit(&mut payload)
        .unwrap();
        payload.extend_from_slice(chunk);
        out.push(ip6(p.src_addr(), p.dst_addr(), 44, &payload));
    }
    out
}

/// An ICMP echo request from a to b with `n` bytes of data.
fn ping_v4(n: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..n).map(|i| (i % 256) as u8).collect();
    let req = icmpv4::Repr::EchoRequest {
        ident: 0x77,
        seq_no: 1,
        data: &data,
    };
    let mut pkt = ip_icmp(A_IP, B_IP, &req);
    let mut p = ipv4::Packet::new_unchecked(&mut pkt[..]);
    p.set_ident(0x4242);
    p.fill_checksum();
    pkt
}

fn ping_v6(n: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..n).map(|i| (i % 256) as u8).collect();
    let req = icmpv6::Repr::EchoRequest {
        ident: 0x77,
        seq_no: 1,
        data: &data,
    };
    ip6(A_IP6, B_IP6, 58, &icmp6_msg(A_IP6, B_IP6, &req))
}

#[test]
fn a_3000_byte_ping_is_reassembled_and_answered_in_fragments() {
    let mut b = stack(B_IP, "server", 2);
    let frags = fragment_v4(&ping_v4(3000), 1500);
    assert_eq!(frags.len(), 3);
    for f in frags.iter().rev() {
        b.handle_packet(Instant::ZERO, f);
    }
    let c = b.counters();
    assert_eq!(
        (c.ip_reasm_reqds, c.ip_reasm_oks, c.icmp_in_echos),
        (3, 1, 1)
    );
    let out = drain(&mut b, Instant::ZERO);
    // The 3008-byte reply leaves in three fragments: 1480 + 1480 + 48 bytes, one ident, MF
    // on all but the last, DF clear (Linux's ICMP socket does not set it).
    let shape: Vec<(usize, u16, bool, bool)> = out
        .iter()
        .map(|f| {
            let p = ipv4::Packet::new_checked(&f[..]).unwrap();
            assert!(p.verify_checksum());
            (f.len(), p.frag_offset(), p.more_frags(), p.dont_frag())
        })
        .collect();
    assert_eq!(
        shape,
        [
            (1500, 0, true, false),
            (1500, 1480, true, false),
            (68, 2960, false, false)
        ]
    );
    let idents: Vec<u16> = out
        .iter()
        .map(|f| ipv4::Packet::new_checked(&f[..]).unwrap().ident())
        .collect();
    assert!(idents.iter().all(|&i| i == idents[0]));
    assert_eq!(
        (b.counters().ip_frag_oks, b.counters().ip_frag_creates),
        (1, 3)
    );
    // The pinger reassembles it into the echo reply with every byte.
    let mut a = stack(A_IP, "client", 1);
    for f in &out {
        a.handle_packet(Instant::ZERO, f);
    }
    assert_eq!(a.counters().ip_reasm_oks, 1);
    let mut whole = out[0][..20].to_vec();
    for f in &out {
        whole.extend_from_slice(ipv4::Packet::new_checked(&f[..]).unwrap().payload());
    }
    let m = icmpv4::Packet::new_checked(&whole[20..]).unwrap();
    let want: Vec<u8> = (0..3000).map(|i| (i % 256) as u8).collect();
    assert_eq!(
        icmpv4::Repr::parse(&m, true).unwrap(),
        icmpv4::Repr::EchoReply {
            ident: 0x77,
            seq_no: 1,
            data: &want
        }
    );
    assert_eq!(b.reassembly_memory(), 0);
}

#[test]
fn a_3000_byte_ipv6_ping_is_reassembled_and_answered_in_fragments() {
    let mut b = stack(B_IP, "server", 2);
    let frags = fragment_v6(&ping_v6(3000), 1500, 0xabcdef);
    assert_eq!(frags.len(), 3);
    for f in [&frags[1], &frags[0], &frags[2]] {
        b.handle_packet(Instant::ZERO, f);
    }
    let c = b.counters();
    assert_eq!(
        (c.ip6_reasm_reqds, c.ip6_reasm_oks, c.icmp6_in_echos),
        (3, 1, 1)
    );
    let out = drain(&mut b, Instant::ZERO);
    // 3008 bytes of ICMPv6 in 1448-byte pieces behind a Fragment header each.
    let shape: Vec<(usize, u16, bool, IpProtocol)> = out
        .iter()
        .map(|f| {
            let p = wipv6::Packet::new_checked(&f[..]).unwrap();
            assert_eq!(p.next_header(), IpProtocol::Fragment);
            let h = FragmentHeader::new_checked(p.payload()).unwrap();
            (f.len(), h.frag_offset(), h.more_frags(), h.next_header())
        })
        .collect();
    assert_eq!(
        shape,
        [
            (1496, 0, true, IpProtocol::Icmpv6),
            (1496, 1448, true, IpProtocol::Icmpv6),
            (40 + 8 + 112, 2896, false, IpProtocol::Icmpv6)
        ]
    );
    assert_eq!(
        (b.counters().ip6_frag_oks, b.counters().ip6_frag_creates),
        (1, 3)
    );
    // Reassembled by the pinger, and by hand: the echo reply.
    let mut a = stack(A_IP, "client", 1);
    for f in &out {
        a.handle_packet(Instant::ZERO, f);
    }
    assert_eq!(a.counters().ip6_reasm_oks, 1);
    let mut msg = Vec::new();
    for f in &out {
        msg.extend_from_slice(&wipv6::Packet::new_checked(&f[..]).unwrap().payload()[8..]);
    }
    let whole = ip6(B_IP6, A_IP6, 58, &msg);
    let want: Vec<u8> = (0..3000).map(|i| (i % 256) as u8).collect();
    assert_eq!(
        icmp6_of(&whole),
        icmpv6::Repr::EchoReply {
            ident: 0x77,
            seq_no: 1,
            data: &want
        }
    );
}

/// Two connected stacks (a → b in `family_v6`), a's next data segment of 1,000 bytes 0x5a
/// (damaged by `damage` after its checksum was computed) cut into two 600-byte fragments
/// (DF clear): the stacks, b's socket and the fragments.
fn fragmented_segment(
    family_v6: bool,
    damage: impl FnOnce(&mut Vec<u8>),
) -> (Net, SocketHandle, Vec<Vec<u8>>) {
    let mut net = Net::new();
    let server = if family_v6 {
        v6(B_IP6, 80)
    } else {
        server_addr(80)
    };
    let (_l, c, s) = connected_to(&mut net, server);
    net.a.send(net.now, c, &[0x5a; 1000]).unwrap();
    let mut seg = drain(&mut net.a, net.now).pop().unwrap();
    damage(&mut seg);
    let frags = if family_v6 {
        fragment_v6(&seg, 600, 99)
    } else {
        fragment_v4(&seg, 600)
    };
    assert_eq!(frags.len(), 2);
    (net, s, frags)
}

#[test]
fn fragmented_tcp_segments_are_reassembled_and_delivered() {
    for family_v6 in [false, true] {
        let (mut net, s, frags) = fragmented_segment(family_v6, |_| {});
        for f in frags.iter().rev() {
            net.b.handle_packet(net.now, f);
        }
        let mut got = [0u8; 2000];
        assert_eq!(
            net.b.recv(net.now, s, &mut got).unwrap(),
            1000,
            "v6: {family_v6}"
        );
        assert!(got[..1000].iter().all(|&x| x == 0x5a));
        let c = net.b.counters();
        let oks = if family_v6 {
            c.ip6_reasm_oks
        } else {
            c.ip_reasm_oks
        };
        assert_eq!(oks, 1);
    }
}

#[test]
fn a_reassembled_segment_is_verified_whatever_the_device_said_of_its_last_fragment() {
    for family_v6 in [false, true] {
        // A payload byte damaged after the checksum was computed.
        let (mut net, s, frags) = fragmented_segment(family_v6, |seg| {
            let last = seg.len() - 1;
            seg[last] ^= 0xff;
        });
        // The first fragment through the verifying path, the one completing the datagram
        // from a device that says it checked its checksum (which says nothing of the other).
        net.b.handle_packet(net.now, &frags[0]);
        net.b.handle_packet_checksummed(net.now, &frags[1]);
        let mut got = [0u8; 2000];
        let r = net.b.recv(net.now, s, &mut got);
        assert!(!matches!(r, Ok(n) if n > 0), "v6: {family_v6}: {r:?}");
        assert_eq!(net.b.counters().tcp_in_csum_errors, 1, "v6: {family_v6}");
    }
}

#[test]
fn reassembly_times_out_with_time_exceeded_only_when_fragment_zero_came() {
    let mut b = stack(B_IP, "server", 2);
    let frags = fragment_v4(&ping_v4(3000), 1500);
    b.handle_packet(Instant::ZERO, &frags[0]);
    // Another datagram, without its fragment 0.
    let other = fragment_v4(&ping_v4(2000), 1500);
    let mut late = other[1].clone();
    let mut p = ipv4::Packet::new_unchecked(&mut late[..]);
    p.set_ident(0x99);
    p.fill_checksum();
    b.handle_packet(Instant::from_secs(1), &late);
    assert_eq!(b.poll_timeout(), Some(Instant::from_secs(30)));
    b.handle_timeout(Instant::from_secs(30));
    let out = drain(&mut b, Instant::from_secs(30));
    assert_eq!(out.len(), 1);
    let ip = ipv4::Packet::new_checked(&out[0][..]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (B_IP, A_IP));
    let m = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    match icmpv4::Repr::parse(&m, true).unwrap() {
        icmpv4::Repr::TimeExceeded { reason, invoking } => {
            assert_eq!(reason, icmpv4::TimeExceeded::FragReassemblyExceeded);
            // Fragment 0 as it came, cut to keep the error within 576 bytes.
            assert_eq!(invoking, &frags[0][..548]);
        }
        other => panic!("{other}"),
    }
    assert_eq!(b.poll_timeout(), Some(Instant::from_secs(31)));
    b.handle_timeout(Instant::from_secs(31));
    assert!(
        drain(&mut b, Instant::from_secs(31)).is_empty(),
        "no fragment 0: no message"
    );
    let c = b.counters();
    assert_eq!(
        (c.ip_reasm_timeout, c.ip_reasm_fails, c.icmp_out_time_excds),
        (2, 2, 1)
    );
    assert_eq!((b.reassembly_memory(), b.poll_timeout()), (0, None));

    // IPv6: the same, with ICMPv6 time exceeded code 1.
    let frags = fragment_v6(&ping_v6(3000), 1500, 5);
    b.handle_packet(Instant::from_secs(40), &frags[0]);
    b.handle_timeout(Instant::from_secs(70));
    let out = drain(&mut b, Instant::from_secs(70));
    match icmp6_of(&out[0]) {
        icmpv6::Repr::TimeExceeded { reason, invoking } => {
            assert_eq!(reason, icmpv6::TimeExceeded::FragReassemblyExceeded);
            assert_eq!(invoking, &frags[0][..1232]);
        }
        other => panic!("{other}"),
    }
    let c = b.counters();
    assert_eq!(
        (
            c.ip6_reasm_timeout,
            c.ip6_reasm_fails,
            c.icmp6_out_time_excds
        ),
        (1, 1, 1)
    );
}

#[test]
fn overlapping_fragments_drop_the_whole_datagram() {
    let mut b = stack(B_IP, "server", 2);
    // IPv6 (RFC 5722): the second fragment starts 8 bytes inside the first.
    let frags = fragment_v6(&ping_v6(3000), 1500, 7);
    b.handle_packet(Instant::ZERO, &frags[0]);
    let mut overlap = frags[1].clone();
    let offset = 1448 - 8;
    overlap[40 + 2..40 + 4].copy_from_slice(&(offset as u16 | 1).to_be_bytes());
    b.handle_packet(Instant::ZERO, &overlap);
    // What is left cannot make a datagram any more: the queue is gone.
    b.handle_packet(Instant::ZERO, &frags[2]);
    b.handle_packet(Instant::ZERO, &frags[1]);
    assert!(drain(&mut b, Instant::ZERO).is_empty());
    let c = b.counters();
    assert_eq!(
        (c.ip6_reasm_overlaps, c.ip6_reasm_oks, c.icmp6_in_echos),
        (1, 0, 0)
    );
    // IPv4 (as Linux since 4.19): the same.
    let frags = fragment_v4(&ping_v4(3000), 1500);
    b.handle_packet(Instant::ZERO, &frags[0]);
    let mut overlap = frags[1].clone();
    let mut p = ipv4::Packet::new_unchecked(&mut overlap[..]);
    p.set_frag_offset(1480 - 8);
    p.fill_checksum();
    b.handle_packet(Instant::ZERO, &overlap);
    for f in &frags[1..] {
        b.handle_packet(Instant::ZERO, f);
    }
    assert!(drain(&mut b, Instant::ZERO).is_empty());
    assert_eq!(b.counters().ip_reasm_overlaps, 1);
    // An exact duplicate is no overlap: dropped, the datagram completes.
    let mut ping = ping_v4(3000);
    let mut p = ipv4::Packet::new_unchecked(&mut ping[..]);
    p.set_ident(0x4343);
    p.fill_checksum();
    let frags = fragment_v4(&ping, 1500);
    for f in [&frags[0], &frags[0], &frags[1], &frags[2]] {
        b.handle_packet(Instant::ZERO, f);
    }
    assert_eq!(drain(&mut b, Instant::ZERO).len(), 3, "the reply");
}

#[test]
fn bad_ipv6_fragments_get_the_parameter_problems_of_rfc_8200() {
    let mut b = stack(B_IP, "server", 2);
    b.listen(v6(B_IP6, 80), 4).unwrap();
    let pp = |out: &[Vec<u8>]| match icmp6_of(&out[0]) {
        icmpv6::Repr::ParamProblem {
            reason, pointer, ..
        } => (reason, pointer),
        other => panic!("{other}"),
    };
    let frag = |offset: u16, more: bool, next: u8, data: &[u8]| {
        let mut payload = vec![0u8; 8];
        FragmentRepr {
            next_header: IpProtocol::from(next),
            frag_offset: offset,
            more_frags: more,
            ident: 3,
        }
        .emit(&mut payload)
        .unwrap();
        payload.extend_from_slice(data);
        ip6(A_IP6, B_IP6, 44, &payload)
    };
    // Not a multiple of 8 with more to come: at the Payload Length. (The data starts like an
    // echo request: no error is ever sent about an ICMPv6 error.)
    let mut echo = [0u8; 13];
    echo[0] = 128;
    b.handle_packet(Instant::ZERO, &frag(0, true, 58, &echo));
    let out = drain(&mut b, Instant::ZERO);
    assert_eq!(pp(&out), (icmpv6::ParamProblem::ErroneousHeaderField, 4));
    // Ending past 65535: at the Fragment Offset.
    b.handle_packet(Instant::ZERO, &frag(65528, false, 58, &[0u8; 16]));
    let out = drain(&mut b, Instant::ZERO);
    assert_eq!(pp(&out), (icmpv6::ParamProblem::ErroneousHeaderField, 42));
    // A first fragment without the whole TCP header (RFC 7112): code 3, pointer 0.
    b.handle_packet(Instant::ZERO, &frag(0, true, 6, &[0u8; 16]));
    let out = drain(&mut b, Instant::ZERO);
    assert_eq!(pp(&out), (icmpv6::ParamProblem::IncompleteHeaderChain, 0));
    // An atomic fragment (offset 0, M clear) is the whole packet: the SYN gets its SYN-ACK.
    b.handle_packet(
        Instant::ZERO,
        &frag(0, false, 6, &tcp6(80, Flags::SYN, &[])),
    );
    let out = drain(&mut b, Instant::ZERO);
    assert_eq!(out.len(), 1);
    assert_eq!(b.syn_queue_len(), 1);
    let c = b.counters();
    assert_eq!(
        (
            c.ip6_reasm_oks,
            c.icmp6_out_parm_problems,
            c.ip6_in_hdr_errors
        ),
        (1, 3, 3)
    );
    assert_eq!(b.reassembly_memory(), 0);
}

/// The done-when of issue 19: a flood of incomplete datagrams keeps reassembly memory within
/// its bound (4 MiB per family, Linux's ipfrag_high_thresh), the fragments beyond it are
/// counted and dropped, and once the flood's datagrams time out a real one gets through.
#[test]
fn a_reassembly_flood_stays_within_the_memory_bound() {
    let mut b = stack(B_IP, "server", 2);
    let bound = StackConfig::default().fragments.high_thresh;
    let first = fragment_v4(&ping_v4(3000), 1500);
    let mut peak = 0;
    for ident in 0..20_000u16 {
        let mut f = first[1].clone();
        let mut p = ipv4::Packet::new_unchecked(&mut f[..]);
        p.set_ident(ident);
        p.fill_checksum();
        b.handle_packet(Instant::from_millis(u64::from(ident)), &f);
        peak = peak.max(b.reassembly_memory());
        // Fragments are refused once the bound is passed: it is passed by one at most.
        assert!(
            b.reassembly_memory() <= bound + 4096,
            "{}",
            b.reassembly_memory()
        );
    }
    let c = b.counters().clone();
    assert!(peak > bound - 4096, "the bound was reached: {peak}");
    assert_eq!(c.ip_reasm_reqds, 20_000);
    assert!(c.ip_reasm_fails > 15_000, "{}", c.ip_reasm_fails);
    // While full, even a whole ping is refused.
    let t = Instant::from_secs(21);
    for f in &first {
        b.handle_packet(t, f);
    }
    assert!(drain(&mut b, t).is_empty());
    // The flood's datagrams time out within 30 s of their first fragment; then it is free.
    b.handle_timeout(Instant::from_secs(60));
    drain(&mut b, Instant::from_secs(60));
    assert_eq!(b.reassembly_memory(), 0);
    for f in &first {
        b.handle_packet(Instant::from_secs(61), f);
    }
    assert_eq!(
        drain(&mut b, Instant::from_secs(61)).len(),
        3,
        "the reply, in fragments"
    );
}
