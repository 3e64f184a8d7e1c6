//! The Internet checksum (RFC 1071), its pseudo-headers and incremental update (RFC 1624).
//!
//! The one's-complement sum is independent of byte order (RFC 1071 §2(B)), so [`Checksum`] adds
//! the data as native-endian 64-bit words with end-around carry (an add and an add-with-carry per
//! 8 bytes) and swaps once at the end.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::IpProtocol;

/// A running one's-complement sum.
///
/// Feed it with [`add_bytes`](Self::add_bytes) (only the last piece may have an odd length) and
/// the `add_u16`/`add_u32` helpers for header fields, then call [`finish`](Self::finish) for the
/// value to store in a checksum field, or [`verifies`](Self::verifies) on received data that
/// includes its checksum field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Sum of native-endian 16-bit words, not yet folded.
    acc: u64,
}

impl Checksum {
    pub const fn new() -> Self {
        Checksum { acc: 0 }
    }

    /// Adds `data` as a sequence of 16-bit big-endian words. If `data` has an odd length, it is
    /// padded with a zero byte (RFC 9293 §3.1), so only the final piece of a message may be odd.
    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) {
        let mut acc = self.acc;
        // 64-byte blocks as native-endian 64-bit words, each added with its carry wrapped
        // around: a one's-complement sum in 64 bits, congruent to the sum of the 16-bit words
        // modulo 0xffff (2^16 and 2^64 are both 1 there). One add and one add-with-carry per
        // 8 bytes, in four independent chains.
        let mut blocks = data.chunks_exact(64);
        let mut s = 0;
        if data.len() >= 64 {
            let mut a = [0u64; 4];
            for b in &mut blocks {
                for (j, w) in b.chunks_exact(8).enumerate() {
                    a[j % 4] = add_wrapping_carry(a[j % 4], word64(w));
                }
            }
            s = add_wrapping_carry(
                add_wrapping_carry(a[0], a[1]),
                add_wrapping_carry(a[2], a[3]),
            );
        }
        let mut longs = blocks.remainder().chunks_exact(8);
        for w in &mut longs {
            s = add_wrapping_carry(s, word64(w));
        }
        acc += fold64(s);
        let mut words = longs.remainder().chunks_exact(4);
        for w in &mut words {
            acc += u32::from_ne_bytes([w[0], w[1], w[2], w[3]]) as u64;
        }
        let tail = words.remainder();
        let mut pairs = tail.chunks_exact(2);
        for p in &mut pairs {
            acc += u16::from_ne_bytes([p[0], p[1]]) as u64;
        }
        if let [last] = pairs.remainder() {
            acc += u16::from_ne_bytes([*last, 0]) as u64;
        }
        self.acc = fold64(acc);
    }

    /// Copies `src` into `dst` (of the same length; a shorter one takes a prefix of `src`) and
    /// adds the bytes copied, in one pass over them: the same sum as `dst.copy_from_slice(src)`
    /// then [`add_bytes`](Self::add_bytes), with the same rule (only the last piece may be odd).
    ///
    /// Each 64-byte block is loaded once, stored, and its sixteen 32-bit words added as two
    /// 16-bit halves into sixteen 32-bit lanes, a loop LLVM vectorises with SSE2 (x86_64's
    /// baseline); the lanes are added up every `LANE_BLOCKS` blocks, before they can
    /// overflow. On the bulk path's 1,448-byte payloads it is faster than libc's memcpy followed
    /// by the 64-bit sum, which reads the data a second time (the TCP payload into the packet on
    /// send; Linux folds the checksum into the copy likewise, `csum_and_copy_from_user`).
    #[inline]
    pub fn add_copy(&mut self, dst: &mut [u8], src: &[u8]) {
        let n = dst.len().min(src.len());
        let whole = n - n % 64;
        let (dst, dtail) = dst[..n].split_at_mut(whole);
        let (src, stail) = src[..n].split_at(whole);
        let mut acc = self.acc;
        for (dgroup, sgroup) in dst
            .chunks_mut(LANE_BLOCKS * 64)
            .zip(src.chunks(LANE_BLOCKS * 64))
        {
            let mut lanes = [0u32; 16];
            for (d, s) in dgroup.chunks_exact_mut(64).zip(sgroup.chunks_exact(64)) {
                // Exactly 64 bytes each: as arrays, the copy is four 16-byte moves.
                let (Ok(d), Ok(s)) = (<&mut [u8; 64]>::try_from(d), <&[u8; 64]>::try_from(s))
                else {
                    continue;
                };
                *d = *s;
                for (lane, w) in lanes.iter_mut().zip(s.chunks_exact(4)) {
                    let w = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
                    *lane += (w & 0xffff) + (w >> 16);
                }
            }
            acc += lanes.iter().map(|&l| l as u64).sum::<u64>();
            acc = fold64(acc);
        }
        dtail.copy_from_slice(stail);
        self.acc = acc;
        self.add_bytes(dtail);
    }

    /// Adds `piece`, the sum of data that starts `at` bytes into the data summed here: a piece
    /// at an odd offset pairs its bytes the other way, which swaps the bytes of its sum (RFC
    /// 1071 §2(B)). This joins the sums of the two halves of a wrapped ring buffer.
    #[inline]
    pub fn add_sum_at(&mut self, piece: Checksum, at: usize) {
        let mut s = fold64(piece.acc);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        let s = s as u16;
        self.acc = fold64(self.acc + if at % 2 == 1 { s.swap_bytes() } else { s } as u64);
    }

    /// [`add_bytes`](Self::add_bytes) of exactly 32 bytes (a TCP header with the timestamps
    /// option, or one without options and zeros after it): eight words, no loop.
    #[inline]
    pub(crate) fn add_32(&mut self, h: &[u8; 32]) {
        let w = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
        let (a, b) = (w(0) + w(4) + w(8) + w(12), w(16) + w(20) + w(24) + w(28));
        self.acc = fold64(self.acc + a + b);
    }

    /// Adds one 16-bit header field given as a host-order value.
    /// [`add_bytes`](Self::add_bytes) of exactly 20 bytes (an IPv4 header without options):
    /// five words, no loop.
    #[inline]
    pub fn add_20(&mut self, h: &[u8; 20]) {
        let w = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
        self.acc = fold64(self.acc + w(0) + w(4) + w(8) + w(12) + w(16));
    }

    #[inline]
    pub fn add_u16(&mut self, v: u16) {
        self.acc += u16::from_ne_bytes(v.to_be_bytes()) as u64;
    }

    /// Adds one 32-bit header field given as a host-order value (two 16-bit words).
    #[inline]
    pub fn add_u32(&mut self, v: u32) {
        self.add_u16((v >> 16) as u16);
        self.add_u16(v as u16);
    }

    /// The folded one's-complement sum, host order, not complemented.
    #[inline]
    pub fn sum(self) -> u16 {
        let mut s = fold64(self.acc);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        u16::from_be_bytes((s as u16).to_ne_bytes())
    }

    /// The value to put into a checksum field (host order; write it big-endian).
    #[inline]
    pub fn finish(self) -> u16 {
        !self.sum()
    }

    /// True when the data summed so far includes a correct checksum field (the sum is all ones).
    #[inline]
    pub fn verifies(self) -> bool {
        self.sum() == 0xffff
    }
}

/// Blocks of 64 bytes whose 16-bit halves [`Checksum::add_copy`] adds into its 32-bit lanes
/// before it adds the lanes up: each block adds at most 2 x 0xffff to a lane, so 32,768
/// blocks fit; 1,024 (64 KiB, the largest TCP segment) keeps a margin.
const LANE_BLOCKS: usize = 1024;

/// `a + b` with the carry out of bit 63 added back in (end-around carry): `add` and `adc`.
#[inline]
fn add_wrapping_carry(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + carry as u64
}

/// Eight bytes as a native-endian word (`w` is exactly 8 bytes long).
#[inline]
fn word64(w: &[u8]) -> u64 {
    u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]])
}

/// Folds a 64-bit accumulator to at most 33 bits without losing carries.
#[inline]
fn fold64(v: u64) -> u64 {
    (v & 0xffff_ffff) + (v >> 32)
}

/// The checksum field value for `data` alone (e.g. an IPv4 header with its checksum zeroed).
pub fn checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(data);
    c.finish()
}

/// The IPv4 pseudo-header (RFC 9293 §3.1): source, destination, zero, protocol, TCP/UDP length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, len: u32) -> Checksum {
    // The two addresses as native-endian words: what `add_bytes` of their octets adds.
    let (s, d) = (
        u32::from_ne_bytes(src.octets()) as u64,
        u32::from_ne_bytes(dst.octets()) as u64,
    );
    let mut c = Checksum { acc: fold64(s + d) };
    c.add_u16(u8::from(protocol) as u16);
    // The IPv4 pseudo-header carries a 16-bit length; larger values cannot occur in IPv4.
    c.add_u16(len as u16);
    c
}

/// The IPv6 pseudo-header (RFC 8200 §8.1): source, destination, 32-bit upper-layer length,
/// three zero bytes, next header.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, protocol: IpProtocol, len: u32) -> Checksum {
    let mut c = Checksum::new();
    c.add_bytes(&src.octets());
    c.add_bytes(&dst.octets());
    c.add_u32(len);
    c.add_u16(u8::from(protocol) as u16);
    c
}

/// The pseudo-header for either IP version. Mixed families (a caller bug) are summed as
/// IPv4-mapped IPv6 addresses so the result is at least deterministic. Inlined: every
/// segment in and out has one, and the IPv4 one is a few additions.
#[inline]
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: IpProtocol, len: u32) -> Checksum {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header_v4(s, d, protocol, len),
        (s, d) => pseudo_header_v6(to_v6(s), to_v6(d), protocol, len),
    }
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// RFC 1624 eqn. 3: the new checksum field after one 16-bit word of the covered data changes
/// from `old` to `new`, given the old checksum field `hc`: `HC' = ~(~HC + ~m + m')`.
pub fn update(hc: u16, old: u16, new: u16) -> u16 {
    let mut s = (!hc) as u32 + (!old) as u32 + new as u32;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// RFC 1624 applied to a 32-bit field (an address or a sequence number): two word updates.
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let hc = update(hc, (old >> 16) as u16, (new >> 16) as u16);
    update(hc, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plainest possible RFC 1071 sum, to check the fast one against.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let w = if pair.len() == 2 {
                u16::from_be_bytes([pair[0], pair[1]])
            } else {
                u16::from_be_bytes([pair[0], 0])
            };
            sum += w as u32;
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_worked_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2 (before complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut c = Checksum::new();
        c.add_bytes(&data);
        assert_eq!(c.sum(), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A real IPv4 header (Wikipedia's example), checksum 0xb861.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0xb861);
        hdr[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        let mut c = Checksum::new();
        c.add_bytes(&hdr);
        assert!(c.verifies());
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0xab]), !0xab00);
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            reference(&[0x12, 0x34, 0x56])
        );
    }

    #[test]
    fn all_ones_data_does_not_overflow() {
        let data = vec![0xffu8; 65536 * 4];
        assert_eq!(checksum(&data), reference(&data));
    }

    #[test]
    fn copy_lanes_do_not_overflow_on_all_ones() {
        // Several groups of LANE_BLOCKS blocks of the largest words, and a ragged tail.
        let data = vec![0xffu8; 3 * LANE_BLOCKS * 64 + 100 * 64 + 7];
        let mut dst = vec![0u8; data.len()];
        let mut c = Checksum::new();
        c.add_copy(&mut dst, &data);
        assert_eq!(c.finish(), reference(&data));
        assert_eq!(dst, data);
    }

    proptest! {
        #[test]
        fn matches_reference(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            prop_assert_eq!(checksum(&data), reference(&data));
        }

        #[test]
        fn twenty_bytes_sum_as_add_bytes(data in proptest::array::uniform20(any::<u8>()), head in any::<u64>()) {
            let mut a = Checksum { acc: head >> 31 };
            let mut b = a;
            a.add_20(&data);
            b.add_bytes(&data);
            prop_assert_eq!(a.finish(), b.finish());
            let mut c = Checksum::new();
            c.add_20(&data);
            prop_assert_eq!(c.finish(), reference(&data));
        }

        #[test]
        fn thirty_two_bytes_sum_as_add_bytes(data in proptest::collection::vec(any::<u8>(), 32), head in any::<u64>()) {
            let data: [u8; 32] = data.try_into().unwrap();
            let mut a = Checksum { acc: head >> 31 };
            let mut b = a;
            a.add_32(&data);
            b.add_bytes(&data);
            prop_assert_eq!(a.finish(), b.finish());
        }

        #[test]
        fn v4_pseudo_header_sums_its_bytes(src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), len in any::<u16>()) {
            let c = pseudo_header_v4(src.into(), dst.into(), IpProtocol::Tcp, len.into());
            let mut bytes = [0u8; 12];
            bytes[..4].copy_from_slice(&src);
            bytes[4..8].copy_from_slice(&dst);
            bytes[9] = u8::from(IpProtocol::Tcp);
            bytes[10..].copy_from_slice(&len.to_be_bytes());
            prop_assert_eq!(c.finish(), reference(&bytes));
        }

        #[test]
        fn split_at_even_offset_is_the_same(data in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..300) {
            let cut = (cut * 2).min(data.len() & !1);
            let mut c = Checksum::new();
            c.add_bytes(&data[..cut]);
            c.add_bytes(&data[cut..]);
            prop_assert_eq!(c.finish(), checksum(&data));
        }

        #[test]
        fn copy_sums_what_it_copies(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            head in any::<u64>(),
        ) {
            let mut dst = vec![0u8; data.len()];
            let mut a = Checksum { acc: head >> 31 };
            let mut b = a;
            a.add_copy(&mut dst, &data);
            prop_assert_eq!(&dst, &data);
            b.add_bytes(&data);
            prop_assert_eq!(a.finish(), b.finish());
            let mut c = Checksum::new();
            c.add_copy(&mut dst, &data);
            prop_assert_eq!(c.finish(), reference(&data));
        }

        #[test]
        fn pieces_join_at_any_offset(data in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
            // A wrapped ring's two halves, the first of any length (odd too).
            let cut = cut.min(data.len());
            let mut first = Checksum::new();
            first.add_bytes(&data[..cut]);
            let mut second = Checksum::new();
            second.add_bytes(&data[cut..]);
            first.add_sum_at(second, cut);
            prop_assert_eq!(first.finish(), checksum(&data));
        }

        #[test]
        fn incremental_update_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            at in 0usize..100,
            new in any::<u16>(),
        ) {
            let at = (at * 2) % (data.len() & !1);
            let hc = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let recomputed = checksum(&data);
            let updated = update(hc, old, new);
            // RFC 1624 §3: the incremental form may yield 0xffff where a full recompute gives
            // 0x0000 only if the sum is zero, which needs all-zero data; both verify alike.
            prop_assert!(updated == recomputed || (updated ^ recomputed) == 0xffff && data.iter().all(|&b| b == 0));
        }

        #[test]
        fn u32_helpers_match_bytes(v in any::<u32>(), w in any::<u16>()) {
            let mut a = Checksum::new();
            a.add_u32(v);
            a.add_u16(w);
            let mut b = Checksum::new();
            b.add_bytes(&v.to_be_bytes());
            b.add_bytes(&w.to_be_bytes());
            prop_assert_eq!(a.sum(), b.sum());
        }
    }
}
