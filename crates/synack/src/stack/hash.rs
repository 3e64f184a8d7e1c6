//! The keyed hash of the stack's tables (connections by 4-tuple, listeners, SYN-queue
//! entries, path MTUs): a folded multiply over whole words with a secret key, as Linux keys
//! `jhash` of the 4-tuple with a boot-time secret (`inet_ehashfn`). Without the key nobody can
//! pick 4-tuples that collide, and a lookup hashes a 4-tuple in a few multiplications instead
//! of SipHash's rounds over its bytes. What must be unpredictable for security's sake (ISNs,
//! SYN cookies, ephemeral ports, timestamp offsets) keeps SipHash.

use core::hash::{BuildHasher, Hasher};

/// SipHash-1-3 of `bytes` under the key `(k0, k1)`, for what must be unpredictable (ephemeral
/// port offsets, timestamp offsets): one copy of it, out of line, that every caller shares.
pub(super) use crate::tcp::siphash::sip13;

/// 128-bit product of `a` and `b`, its halves XORed: every output bit depends on every input
/// bit of both.
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Odd constants (from the digits of π) that keep a zero word from zeroing the state.
const PI: [u64; 2] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344];

/// Builds a [`FlowHasher`] per lookup from the stack's 128-bit secret.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyedHasher(pub(crate) u64, pub(crate) u64);

impl BuildHasher for KeyedHasher {
    type Hasher = FlowHasher;
    #[inline]
    fn build_hasher(&self) -> FlowHasher {
        FlowHasher {
            acc: self.0,
            key: self.1,
            small: 0,
            pending: 0,
        }
    }
}

/// The hasher: each address-sized field (32 bits and up) is mixed into the state with one
/// folded multiply; the small fields before it (ports, an address's family tag) go into that
/// multiply's other factor instead of a multiply each. An IPv4 4-tuple (two family tags, two
/// addresses, two ports) takes four multiplies, where a multiply per field took seven.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlowHasher {
    acc: u64,
    key: u64,
    /// The small fields written since the last multiply, 16 bits each (shifted in: four
    /// fit, more than a 4-tuple writes between its addresses).
    small: u64,
    /// How many small fields `small` holds (0 to 4).
    pending: u32,
}

impl FlowHasher {
    /// Appends a field of at most 16 bits to the pending small fields. When four are pending
    /// they are multiplied in first: a fifth shifted into 64 bits would land on the first, and
    /// `(f1..f5)` and `(f1^d,..,f5^d)` would collide under every key. (No key of the stack
    /// writes more than two in a row, so the count is a constant where the writes inline.)
    #[inline]
    fn push_small(&mut self, x: u16) {
        if self.pending == 4 {
            self.flush_small();
        }
        self.small = (self.small << 16) | u64::from(x);
        self.pending += 1;
    }

    /// Mixes four pending small fields into the state with a multiply of their own (the
    /// constants swapped, so it differs from a written zero word).
    #[cold]
    #[inline(never)]
    fn flush_small(&mut self) {
        self.acc = folded_multiply(self.acc ^ PI[1], self.key ^ self.small ^ PI[0]);
        self.small = 0;
        self.pending = 0;
    }
}

impl Hasher for FlowHasher {
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.acc = folded_multiply(self.acc ^ x ^ PI[0], self.key ^ self.small ^ PI[1]);
        self.small = 0;
        self.pending = 0;
    }

    #[inline]
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }

    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.push_small(u16::from(x));
    }

    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.push_small(x);
    }

    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    /// An enum's discriminant (`IpAddr`'s V4 or V6, which the derived `Hash` writes as an
    /// `isize`) is a small field when it fits in 16 bits.
    #[inline]
    fn write_isize(&mut self, x: isize) {
        match u16::try_from(x) {
            Ok(x) => self.push_small(x),
            Err(_) => self.write_u64(x as u64),
        }
    }

    /// Bytes in little-endian words, the last one zero-padded, then the length (so that
    /// "ab" and "ab\0" differ).
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w));
        }
        self.write_usize(bytes.len());
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The small fields written last (a 4-tuple's remote port) get a multiply of their
        // own, then one more multiply so the last word reaches the top bits hashbrown's
        // control bytes use as well as the low bits that pick the bucket.
        let acc = folded_multiply(self.acc ^ self.small ^ PI[0], self.key ^ PI[1]);
        folded_multiply(acc, self.key.rotate_left(29) | 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::collections::HashSet;

    type Tuple = (IpAddr, u16, IpAddr, u16);

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    #[test]
    fn equal_tuples_hash_equal_and_the_key_changes_the_hash() {
        let t: Tuple = (v4([198, 18, 0, 2]), 80, v4([198, 18, 0, 1]), 40000);
        let k = KeyedHasher(1, 2);
        assert_eq!(k.hash_one(t), k.hash_one(t));
        assert_ne!(k.hash_one(t), KeyedHasher(1, 3).hash_one(t));
        assert_ne!(k.hash_one(t), KeyedHasher(5, 2).hash_one(t));
        // Local and remote swapped is another connection.
        let swapped: Tuple = (t.2, t.3, t.0, t.1);
        assert_ne!(k.hash_one(t), k.hash_one(swapped));
        // The same address bytes as IPv4 and as IPv4-mapped IPv6 are different keys.
        let mapped = (
            IpAddr::V6(Ipv4Addr::new(198, 18, 0, 2).to_ipv6_mapped()),
            80,
            IpAddr::V6(Ipv4Addr::new(198, 18, 0, 1).to_ipv6_mapped()),
            40000,
        );
        assert_ne!(k.hash_one(t), k.hash_one(mapped));
    }

    /// The hashes of 64 Ki tuples that differ only in one port, `tuple(port)`: the low 12 bits
    /// (a 4096-bucket table) and the top 7 bits (hashbrown's control bytes) both take every
    /// value, each about evenly (16 per bucket on average, 512 per control value).
    fn assert_a_port_sweep_spreads(tuple: impl Fn(u16) -> Tuple) {
        let k = KeyedHasher(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        let mut low = vec![0u32; 4096];
        let mut top = vec![0u32; 128];
        for port in 0..=u16::MAX {
            let h = k.hash_one(tuple(port));
            low[(h & 0xfff) as usize] += 1;
            top[(h >> 57) as usize] += 1;
        }
        assert!(low.iter().all(|&n| (1..=48).contains(&n)), "{low:?}");
        assert!(top.iter().all(|&n| (384..=640).contains(&n)), "{top:?}");
    }

    #[test]
    fn a_port_sweep_spreads_over_buckets() {
        // The remote port (a scan, or many clients behind one address).
        assert_a_port_sweep_spreads(|port| (v4([10, 0, 0, 1]), 443, v4([10, 0, 0, 2]), port));
    }

    #[test]
    fn a_local_port_sweep_spreads_over_buckets() {
        // The local port goes into the multiplier with the remote address's family tag; it is
        // the one that varies for a client's ephemeral ports and for forwarded flows.
        assert_a_port_sweep_spreads(|port| (v4([10, 0, 0, 1]), port, v4([10, 0, 0, 2]), 443));
    }

    #[test]
    fn more_than_four_small_fields_in_a_row_do_not_cancel() {
        // Five 16-bit fields with no word between them: rotated in 16 bits at a time, the
        // fifth landed on the first, so `(f1, f2, f3, f4, f5)` and `(f1^d, f2, f3, f4, f5^d)`
        // hashed alike under every key.
        let f = [0x1234u16, 0x5678, 0x9abc, 0xdef0, 0x0f1e];
        for (k0, k1) in [
            (1, 2),
            (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            (7, 11),
        ] {
            let k = KeyedHasher(k0, k1);
            let h = k.hash_one((f[0], f[1], f[2], f[3], f[4]));
            for d in [1u16, 0x8000, 0xffff, 0x0101] {
                let g = (f[0] ^ d, f[1], f[2], f[3], f[4] ^ d);
                assert_ne!(h, k.hash_one(g), "d {d:#x}");
            }
            // Nine in a row (two multiplies on the way), the first and the last changed alike.
            let nine = |d: u16| {
                let mut h = k.build_hasher();
                for (i, x) in [1u16, 2, 3, 4, 5, 6, 7, 8, 9].into_iter().enumerate() {
                    h.write_u16(if i == 0 || i == 8 { x ^ d } else { x });
                }
                h.finish()
            };
            assert_ne!(nine(0), nine(0x40));
        }
    }

    #[test]
    fn distinct_ipv6_tuples_rarely_collide() {
        let k = KeyedHasher(7, 11);
        let mut seen = HashSet::new();
        for i in 0..50_000u32 {
            let mut a = [0u16; 8];
            a[0] = 0xfd00;
            a[7] = i as u16;
            a[6] = (i >> 16) as u16;
            let ip = IpAddr::V6(Ipv6Addr::from(a));
            seen.insert(k.hash_one((ip, 80u16, ip, 1234u16)));
        }
        assert_eq!(seen.len(), 50_000);
    }
}
