//! Initial sequence numbers (RFC 9293 §3.4.1, RFC 6528).
//!
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`, where M is a clock that
//! ticks every 4 microseconds and F is a keyed pseudorandom function of the connection's 4-tuple.
//! The clock keeps successive incarnations of one 4-tuple moving forwards through the sequence
//! space (it wraps about every 4.77 hours, far longer than the MSL); the keyed hash gives each
//! 4-tuple its own unpredictable offset, so an off-path attacker who sees the ISN of one
//! connection learns nothing about another's (RFC 6528 §3).
//!
//! Sans-IO: the secret and the time both come from the caller. F is SipHash-2-4 keyed with the
//! 128-bit secret.

use core::fmt;
use core::net::{IpAddr, SocketAddr};

use crate::tcp::seq::SeqNum;
use crate::time::Instant;

/// Bytes in the longest hash input: two × (family tag, 16 address octets, 2 port octets).
const MAX_INPUT: usize = 2 * (1 + 16 + 2);

/// Generates RFC 6528 initial sequence numbers from a secret key and the caller's clock.
///
/// Choose the secret once (randomly, at stack start-up) and keep it for the life of the stack:
/// changing it breaks the monotonic progression that protects old duplicates of recent
/// incarnations (RFC 6528 §3).
#[derive(Clone)]
pub struct IsnGenerator {
    /// The SipHash key: the secret's first 8 bytes (little-endian) and its last 8.
    k0: u64,
    k1: u64,
}

impl fmt::Debug for IsnGenerator {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsnGenerator").finish_non_exhaustive()
    }
}

impl IsnGenerator {
    /// A generator keyed with `secret` (the RFC's `secretkey`).
    pub fn new(secret: [u8; 16]) -> IsnGenerator {
        let [
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            a6,
            a7,
            b0,
            b1,
            b2,
            b3,
            b4,
            b5,
            b6,
            b7,
        ] = secret;
        IsnGenerator {
            k0: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            k1: u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        }
    }

    /// The initial send sequence number for a connection from `local` to `remote`, at `now`:
    /// `M + F(...)` modulo 2^32 (RFC 9293 §3.4.1).
    ///
    /// M is `now` in microseconds divided by 4, truncated to 32 bits. F is the low 32 bits of
    /// SipHash-2-4 over, in this order: a family tag for the local address (4 or 6), its
    /// octets (4 or 16, network order), the local port (2 octets, big-endian), then the same
    /// three fields for the remote address. IPv6 flow labels and scope ids are not part of
    /// the 4-tuple and are not hashed. The encoding is fixed, so ISNs are identical on every
    /// platform for the same secret and inputs.
    pub fn isn(&self, now: Instant, local: SocketAddr, remote: SocketAddr) -> SeqNum {
        // RFC 9293 §3.4.1: M, "the 4 microsecond timer".
        let m = (now.total_micros() / 4) as u32;
        SeqNum(m.wrapping_add(self.f(local, remote)))
    }

    /// F(localip, localport, remoteip, remoteport, secretkey) (RFC 6528 §3).
    fn f(&self, local: SocketAddr, remote: SocketAddr) -> u32 {
        if let (IpAddr::V4(l), IpAddr::V4(r)) = (local.ip(), remote.ip()) {
            // The same 14 bytes `encode` writes for two IPv4 ends, in a fixed layout (no
            // buffer of unknown length to build and hash).
            let (l, lp) = (l.octets(), local.port().to_be_bytes());
            let (r, rp) = (r.octets(), remote.port().to_be_bytes());
            let b = [
                4, l[0], l[1], l[2], l[3], lp[0], lp[1], 4, r[0], r[1], r[2], r[3], rp[0], rp[1],
            ];
            return crate::tcp::siphash::sip24_array(self.k0, self.k1, &b) as u32;
        }
        let mut buf = [0u8; MAX_INPUT];
        let mut len = 0;
        for addr in [local, remote] {
            len = encode(&mut buf, len, addr);
        }
        crate::tcp::siphash::sip24(self.k0, self.k1, buf.get(..len).unwrap_or(&buf)) as u32
    }
}

/// Appends `addr` to `buf` at `at` as tag, address octets, big-endian port; returns the new
/// length. `buf` has room for two addresses of the longest kind.
fn encode(buf: &mut [u8; MAX_INPUT], at: usize, addr: SocketAddr) -> usize {
    let mut field = [0u8; 1 + 16 + 2];
    let used = match addr.ip() {
        IpAddr::V4(ip) => {
            field[0] = 4;
            field[1..5].copy_from_slice(&ip.octets());
            field[5..7].copy_from_slice(&addr.port().to_be_bytes());
            7
        }
        IpAddr::V6(ip) => {
            field[0] = 6;
            field[1..17].copy_from_slice(&ip.octets());
            field[17..19].copy_from_slice(&addr.port().to_be_bytes());
            19
        }
    };
    match buf.get_mut(at..at + used) {
        Some(dst) => {
            dst.copy_from_slice(&field[..used]);
            at + used
        }
        None => at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::Hasher;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use siphasher::sip::SipHasher24;

    const SECRET: [u8; 16] = *b"synack-isn-tests";

    fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
    }

    fn v6(last: u16, port: u16) -> SocketAddr {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)),
            port,
        )
    }

    #[test]
    fn deterministic() {
        let g = IsnGenerator::new(SECRET);
        let (l, r) = (v4(198, 18, 0, 1, 40000), v4(198, 18, 0, 2, 80));
        let t = Instant::from_millis(1234);
        assert_eq!(g.isn(t, l, r), g.isn(t, l, r));
        assert_eq!(
            g.isn(t, l, r),
            IsnGenerator::new(SECRET).clone().isn(t, l, r)
        );
        let (l6, r6) = (v6(1, 40000), v6(2, 443));
        assert_eq!(g.isn(t, l6, r6), g.isn(t, l6, r6));
    }

    #[test]
    fn hash_part_is_siphash_of_documented_encoding() {
        // Pin the encoding: at time zero the ISN is F alone.
        let g = IsnGenerator::new(SECRET);
        let (l, r) = (v4(10, 0, 0, 1, 0x1234), v4(10, 0, 0, 2, 0x0050));
        let input = [4, 10, 0, 0, 1, 0x12, 0x34, 4, 10, 0, 0, 2, 0x00, 0x50];
        let k0 = u64::from_le_bytes(*b"synack-i");
        let k1 = u64::from_le_bytes(*b"sn-tests");
        let mut h = SipHasher24::new_with_keys(k0, k1);
        h.write(&input);
        assert_eq!(g.isn(Instant::ZERO, l, r), SeqNum(h.finish() as u32));
    }

    #[test]
    fn different_tuples_differ() {
        let g = IsnGenerator::new(SECRET);
        let t = Instant::from_secs(7);
        let base = g.isn(t, v4(198, 18, 0, 1, 40000), v4(198, 18, 0, 2, 80));
        let others = [
            g.isn(t, v4(198, 18, 0, 1, 40001), v4(198, 18, 0, 2, 80)),
            g.isn(t, v4(198, 18, 0, 3, 40000), v4(198, 18, 0, 2, 80)),
            g.isn(t, v4(198, 18, 0, 1, 40000), v4(198, 18, 0, 4, 80)),
            g.isn(t, v4(198, 18, 0, 1, 40000), v4(198, 18, 0, 2, 81)),
            g.isn(t, v6(1, 40000), v6(2, 80)),
        ];
        for other in others {
            assert_ne!(base, other);
        }
        // An IPv4-mapped IPv6 address is a different address family, hence a different tuple.
        let mapped = |ip: Ipv4Addr, port| SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), port);
        assert_ne!(
            base,
            g.isn(
                t,
                mapped(Ipv4Addr::new(198, 18, 0, 1), 40000),
                mapped(Ipv4Addr::new(198, 18, 0, 2), 80)
            )
        );
    }

    #[test]
    fn advances_with_the_four_microsecond_clock() {
        let g = IsnGenerator::new(SECRET);
        let (l, r) = (v4(198, 18, 0, 1, 40000), v4(198, 18, 0, 2, 80));
        let t0 = Instant::from_micros(1_000_000);
        let i0 = g.isn(t0, l, r);
        // 1 ms later: 250 ticks.
        assert_eq!(g.isn(Instant::from_micros(1_001_000), l, r) - i0, 250);
        // Sub-tick time does not move it.
        assert_eq!(g.isn(Instant::from_micros(1_000_003), l, r), i0);
        assert_eq!(g.isn(Instant::from_micros(1_000_004), l, r) - i0, 1);
        // Across the 2^32-tick wrap of M (about 4.77 hours): still elapsed/4 modulo 2^32.
        let later = Instant::from_micros(1_000_000 + 4 * ((1u64 << 32) + 5));
        assert_eq!(g.isn(later, l, r) - i0, 5);
        // At time zero, M = 0: the ISN is the hash part alone, and it is the same offset.
        let z = g.isn(Instant::ZERO, l, r);
        assert_eq!(i0 - z, 250_000);
    }

    #[test]
    fn different_secrets_differ() {
        let mut other = SECRET;
        other[15] ^= 1;
        let (l, r) = (v4(198, 18, 0, 1, 40000), v4(198, 18, 0, 2, 80));
        let t = Instant::from_secs(3);
        assert_ne!(
            IsnGenerator::new(SECRET).isn(t, l, r),
            IsnGenerator::new(other).isn(t, l, r)
        );
    }

    #[test]
    fn direction_matters() {
        let g = IsnGenerator::new(SECRET);
        let t = Instant::from_secs(3);
        let (a, b) = (v4(198, 18, 0, 1, 40000), v4(198, 18, 0, 2, 80));
        assert_ne!(g.isn(t, a, b), g.isn(t, b, a));
        let (a6, b6) = (v6(1, 40000), v6(2, 80));
        assert_ne!(g.isn(t, a6, b6), g.isn(t, b6, a6));
    }

    #[test]
    fn debug_hides_the_key() {
        let s = format!("{:?}", IsnGenerator::new(SECRET));
        assert_eq!(s, "IsnGenerator { .. }");
    }
}
