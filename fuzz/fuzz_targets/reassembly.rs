//! Fragment reassembly, two ways chosen by the first byte:
//!
//! - even: a sequence of fragments straight into a `Reassembler` with a small memory bound.
//!   Every fragment's bytes are a function of (ident, position), so a datagram that completes
//!   must hold exactly those bytes at every position, whatever order, duplicates, overlaps
//!   and lies about lengths the input makes up; memory never passes the bound by more than
//!   one fragment, and is zero again once everything timed out.
//! - odd: the rest as a run of IP packets (2-byte length, then bytes) into a dual-stack
//!   `Stack` at increasing times, so fragments, IPv6 extension headers and whatever they
//!   reassemble into go through the whole receive path; the stack's reassembly memory stays
//!   within its bound and nothing panics.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use synack::stack::fragments::{Fragment, Key, Limits, Outcome, Reassembler};
use synack::stack::{Ipv4Cidr, Ipv6Cidr, Stack, StackConfig};
use synack::time::{Duration, Instant};

const BOUND: usize = 64 * 1024;

fn byte_at(ident: u32, pos: usize) -> u8 {
    (pos as u32).wrapping_mul(31).wrapping_add(ident.wrapping_mul(7)) as u8
}

fn reassembler(data: &[u8]) {
    let limits = Limits {
        high_thresh: BOUND,
        timeout: Duration::from_secs(30),
    };
    let mut r = Reassembler::new(limits);
    let header = [0x45u8, 0, 0, 0];
    let mut now = Instant::ZERO;
    let mut buf = vec![0u8; 70_000];
    // Each fragment: ident (1 byte: 4 datagrams), offset (2 bytes, 8-byte units), length
    // (2 bytes), flags (1 byte: more, time step).
    for op in data.chunks_exact(6) {
        let ident = u32::from(op[0] & 3);
        let offset = usize::from(u16::from_le_bytes([op[1], op[2]]) & 0x1fff) * 8;
        let len = usize::from(u16::from_le_bytes([op[3], op[4]])) % 3000;
        let more = op[5] & 1 == 1;
        now = now + Duration::from_millis(u64::from(op[5] >> 1) * 250);
        while r.poll_expired(now).is_some() {}
        for (i, b) in buf[..len].iter_mut().enumerate() {
            *b = byte_at(ident, offset + i);
        }
        let f = Fragment {
            key: Key {
                src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
                dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
                ident,
                protocol: 1,
            },
            offset,
            more,
            payload: &buf[..len],
            header: &header,
        };
        if let Outcome::Complete(d) = r.insert(now, &f) {
            assert_eq!(&d.bytes[..d.header_len], &header);
            for (i, &b) in d.bytes[d.header_len..].iter().enumerate() {
                assert_eq!(b, byte_at(ident, i), "byte {i} of datagram {ident}");
            }
        }
        assert!(r.memory() <= BOUND + 3000 + 1024, "memory {}", r.memory());
    }
    while r.poll_expired(now + Duration::from_secs(31)).is_some() {}
    assert_eq!((r.memory(), r.len()), (0, 0));
}

fn stack(data: &[u8]) {
    let cfg = StackConfig {
        fragments: Limits {
            high_thresh: BOUND,
            timeout: Duration::from_secs(30),
        },
        ..StackConfig::default()
    };
    let mut s = Stack::new(cfg, [3; 32]);
    s.add_address(Ipv4Cidr::new(Ipv4Addr::new(198, 18, 0, 2), 24));
    s.add_address(Ipv6Cidr::new("fd00:5ac::2".parse().unwrap(), 64));
    let _ = s.listen("[::]:80".parse().unwrap(), 16);
    let mut now = Instant::ZERO;
    let mut out = vec![0u8; 2048];
    let mut rest = data;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])) % 4096;
        rest = &rest[2..];
        let pkt = &rest[..n.min(rest.len())];
        rest = &rest[pkt.len()..];
        s.handle_packet(now, pkt);
        for _ in 0..64 {
            if s.poll_transmit(now, &mut out).is_none() {
                break;
            }
        }
        now = now + Duration::from_secs(1);
        s.handle_timeout(now);
        // Each family's queues stay within the bound (plus one fragment).
        assert!(s.reassembly_memory() <= 2 * (BOUND + 4096 + 1024));
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => reassembler(rest),
        Some((_, rest)) => stack(rest),
        None => {}
    }
});
