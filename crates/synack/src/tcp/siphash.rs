//! SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) of one byte
//! string in one call: the keyed pseudorandom function behind ISNs (RFC 6528's F, SipHash-2-4
//! as Linux's `secure_tcp_seq`; SYN cookies and TCP Fast Open cookies, their keys derived with
//! its 128-bit form), ephemeral port offsets and timestamp offsets (SipHash-1-3).
//!
//! The same function as the `siphasher` crate's `SipHasher24` / `SipHasher13` (and
//! `sip128::SipHasher24`) fed the same
//! bytes with one `write` (the tests compare them), without a streaming hasher's buffer: the
//! inputs here are a 4-tuple's few bytes, read as little-endian words straight from the
//! slice, so a hash costs its rounds and little else.

/// SipHash-2-4 of `bytes` under the key `(k0, k1)`.
#[inline(never)]
pub(crate) fn sip24(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
    siphash::<2, 4>(k0, k1, bytes)
}

/// SipHash-1-3 of `bytes` under the key `(k0, k1)`.
#[inline(never)]
pub(crate) fn sip13(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
    siphash::<1, 3>(k0, k1, bytes)
}

/// [`sip24`] of an input whose length is known when compiling (an IPv4 4-tuple's encoding):
/// its words are read at fixed offsets, with no loop and no copy of a tail of unknown length.
#[inline(never)]
pub(crate) fn sip24_array<const N: usize>(k0: u64, k1: u64, bytes: &[u8; N]) -> u64 {
    siphash::<2, 4>(k0, k1, bytes)
}

/// [`sip13`] of an input whose length is known when compiling (see [`sip24_array`]).
#[inline(never)]
pub(crate) fn sip13_array<const N: usize>(k0: u64, k1: u64, bytes: &[u8; N]) -> u64 {
    siphash::<1, 3>(k0, k1, bytes)
}

/// SipHash-2-4 with its 128-bit output (the paper's §7 variant) of `bytes` under the key
/// `(k0, k1)`, as `(first word, second word)`: for deriving 128-bit keys (the SYN cookies').
pub(crate) fn sip24_128(k0: u64, k1: u64, bytes: &[u8]) -> (u64, u64) {
    let mut s = State::new(k0, k1);
    s.0[1] ^= 0xee;
    s.absorb::<2>(bytes);
    s.0[2] ^= 0xee;
    let first = s.finish::<4>();
    s.0[1] ^= 0xdd;
    (first, s.finish::<4>())
}

/// The four words of SipHash's state.
struct State([u64; 4]);

impl State {
    /// One SipRound (the paper's §2).
    #[inline(always)]
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.0;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    /// Compresses the message word `m` with `C` rounds.
    #[inline(always)]
    fn compress<const C: usize>(&mut self, m: u64) {
        self.0[3] ^= m;
        for _ in 0..C {
            self.round();
        }
        self.0[0] ^= m;
    }

    /// The key XORed into the four initialisation constants.
    #[inline(always)]
    fn new(k0: u64, k1: u64) -> State {
        State([
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ])
    }

    /// Every whole word of `bytes`, then the last one (the remaining bytes and the length).
    #[inline(always)]
    fn absorb<const C: usize>(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.compress::<C>(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        b[7] = bytes.len() as u8;
        self.compress::<C>(u64::from_le_bytes(b));
    }

    /// `D` finalisation rounds, then the four words XORed.
    #[inline(always)]
    fn finish<const D: usize>(&mut self) -> u64 {
        for _ in 0..D {
            self.round();
        }
        let [v0, v1, v2, v3] = self.0;
        v0 ^ v1 ^ v2 ^ v3
    }
}

/// SipHash-C-D: the key XORed into the four initialisation constants (the ASCII of
/// "somepseudorandomlygeneratedbytes"), every whole 8-byte word of the input compressed, then
/// the last word (the remaining bytes, the input's length modulo 256 in its top byte), then `D`
/// finalisation rounds.
#[inline(always)]
fn siphash<const C: usize, const D: usize>(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
    let mut s = State::new(k0, k1);
    s.absorb::<C>(bytes);
    s.0[2] ^= 0xff;
    s.finish::<D>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::Hasher;
    use siphasher::sip::{SipHasher13, SipHasher24};
    use siphasher::sip128::{Hasher128, SipHasher24 as SipHasher128};

    /// The paper's test vector (appendix A): key 00..0f, message 00..0e, SipHash-2-4.
    #[test]
    fn the_papers_vector() {
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let m: Vec<u8> = (0u8..15).collect();
        assert_eq!(sip24(k0, k1, &m), 0xa129_ca61_49be_45e5);
    }

    /// Every length from 0 to 48 bytes (the 4-tuple encodings are 4 to 38, a SYN cookie's H2
    /// input up to 48), under several
    /// keys: the same values as the `siphasher` crate's hashers fed one write.
    #[test]
    fn equals_the_streaming_hashers() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20 {
            let (k0, k1) = (next(), next());
            let bytes: Vec<u8> = (0..48).map(|_| next() as u8).collect();
            for n in 0..=bytes.len() {
                let m = &bytes[..n];
                let mut h = SipHasher24::new_with_keys(k0, k1);
                h.write(m);
                assert_eq!(sip24(k0, k1, m), h.finish(), "2-4, {n} bytes");
                let mut h = SipHasher13::new_with_keys(k0, k1);
                h.write(m);
                assert_eq!(sip13(k0, k1, m), h.finish(), "1-3, {n} bytes");
                let mut h = SipHasher128::new_with_keys(k0, k1);
                h.write(m);
                let want = h.finish128();
                assert_eq!(
                    sip24_128(k0, k1, m),
                    (want.h1, want.h2),
                    "2-4-128, {n} bytes"
                );
            }
            // The fixed-length forms, at the lengths the IPv4 callers use.
            let a10: [u8; 10] = bytes[..10].try_into().unwrap();
            let a12: [u8; 12] = bytes[..12].try_into().unwrap();
            let a14: [u8; 14] = bytes[..14].try_into().unwrap();
            assert_eq!(sip13_array(k0, k1, &a10), sip13(k0, k1, &a10));
            assert_eq!(sip13_array(k0, k1, &a12), sip13(k0, k1, &a12));
            assert_eq!(sip24_array(k0, k1, &a14), sip24(k0, k1, &a14));
        }
    }
}
