//! Ephemeral port selection, RFC 6056 §3.3.3 ("Algorithm 3: Simple Hash-Based Port
//! Selection"): each (local address, remote address, remote port) starts its search at its
//! own keyed-hash offset, so ports are hard to guess from outside, yet consecutive
//! connections to the same peer step through the range instead of colliding.

use core::net::{IpAddr, SocketAddr};

/// Picks ephemeral ports from an inclusive range.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    min: u16,
    max: u16,
    key: (u64, u64),
    /// RFC 6056's `next_ephemeral`.
    next: u32,
}

impl PortAllocator {
    /// A range `(min, max)` inclusive (Linux default 32768–60999) and a secret hash key.
    pub fn new(range: (u16, u16), key: (u64, u64)) -> PortAllocator {
        let (a, b) = range;
        let (min, max) = (a.min(b).max(1), a.max(b).max(1));
        PortAllocator {
            min,
            max,
            key,
            next: 0,
        }
    }

    /// Number of ports in the range.
    pub fn len(&self) -> u32 {
        (self.max - self.min) as u32 + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// A free port for a connection from `local` to `remote`; `in_use(port)` says whether
    /// that 4-tuple is taken. `None` when every port of the range is (AddrNotAvailable).
    // Inlined into its one caller per connect, the table lookup of `in_use` with it.
    #[inline(always)]
    pub fn pick(
        &mut self,
        local: IpAddr,
        remote: SocketAddr,
        mut in_use: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let offset = self.offset(local, remote);
        let n = self.len();
        for count in 0..n {
            let port = self.min as u32 + (self.next.wrapping_add(offset).wrapping_add(count)) % n;
            let port = port as u16;
            if !in_use(port) {
                self.next = self.next.wrapping_add(count + 1);
                return Some(port);
            }
        }
        None
    }

    /// The destination's offset into the range: SipHash-1-3 of the local address, the
    /// remote address and the remote port as one stream of bytes (RFC 6056 §3.3.3's F).
    fn offset(&self, local: IpAddr, remote: SocketAddr) -> u32 {
        if let (IpAddr::V4(l), IpAddr::V4(r)) = (local, remote.ip()) {
            // The common case in 10 bytes of fixed layout (no slice of unknown length).
            let (l, r, p) = (l.octets(), r.octets(), remote.port().to_be_bytes());
            let b = [l[0], l[1], l[2], l[3], r[0], r[1], r[2], r[3], p[0], p[1]];
            return crate::tcp::siphash::sip13_array(self.key.0, self.key.1, &b) as u32;
        }
        self.offset_v6(local, remote)
    }

    /// [`offset`](Self::offset) of an IPv6 destination, out of line so that the IPv4 one
    /// stays small enough to inline into `pick`.
    #[inline(never)]
    fn offset_v6(&self, local: IpAddr, remote: SocketAddr) -> u32 {
        // IPv6 (or, never in practice, mixed families: an IPv4 address as IPv4-mapped).
        let v6 = |ip: IpAddr| match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        let mut b = [0u8; 34];
        b[..16].copy_from_slice(&v6(local));
        b[16..32].copy_from_slice(&v6(remote.ip()));
        b[32..].copy_from_slice(&remote.port().to_be_bytes());
        super::hash::sip13(self.key.0, self.key.1, &b) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::new("198.18.0.2".parse().unwrap(), port)
    }

    /// The offset is SipHash-1-3 of local address, remote address and remote port as one
    /// stream: the first port picked is the one the three separate writes gave.
    #[test]
    fn offset_hashes_the_addresses_and_remote_port_as_one_stream() {
        use core::hash::Hasher;
        for (local, remote) in [
            ("198.18.0.1".parse::<IpAddr>().unwrap(), peer(80)),
            (
                "fd00:5ac::1".parse().unwrap(),
                "[fd00:5ac::2]:443".parse().unwrap(),
            ),
        ] {
            let mut p = PortAllocator::new((32768, 60999), (11, 22));
            let mut h = siphasher::sip::SipHasher13::new_with_keys(11, 22);
            for ip in [local, remote.ip()] {
                match ip {
                    IpAddr::V4(a) => h.write(&a.octets()),
                    IpAddr::V6(a) => h.write(&a.octets()),
                }
            }
            h.write(&remote.port().to_be_bytes());
            let want = 32768 + (h.finish() as u32 % (60999 - 32768 + 1));
            assert_eq!(p.pick(local, remote, |_| false), Some(want as u16));
        }
    }

    #[test]
    fn ports_stay_in_range_and_do_not_repeat_until_exhausted() {
        let mut p = PortAllocator::new((40000, 40099), (1, 2));
        let local: IpAddr = "198.18.0.1".parse().unwrap();
        let mut used = HashSet::new();
        for _ in 0..100 {
            let port = p.pick(local, peer(80), |x| used.contains(&x)).unwrap();
            assert!((40000..=40099).contains(&port));
            assert!(used.insert(port));
        }
        assert_eq!(
            p.pick(local, peer(80), |x| used.contains(&x)),
            None,
            "exhausted"
        );
        // Another peer is a different 4-tuple: the same ports are free again.
        assert!(p.pick(local, peer(443), |_| false).is_some());
    }

    #[test]
    fn different_keys_and_peers_start_elsewhere() {
        let local: IpAddr = "198.18.0.1".parse().unwrap();
        let a = PortAllocator::new((32768, 60999), (1, 2)).pick(local, peer(80), |_| false);
        let b = PortAllocator::new((32768, 60999), (3, 4)).pick(local, peer(80), |_| false);
        let c = PortAllocator::new((32768, 60999), (1, 2)).pick(local, peer(81), |_| false);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
