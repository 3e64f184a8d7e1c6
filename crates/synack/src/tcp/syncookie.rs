//! SYN cookies (RFC 4987 §3.6): a listener answers a SYN with a SYN-ACK whose initial
//! sequence number encodes everything it needs to rebuild the connection, and keeps no state.
//! Only a peer that receives at its address learns the cookie, and its ACK (SEG.ACK = cookie
//! + 1) brings it back.
//!
//! # The cookie
//!
//! ```text
//!  ISN = H1(4-tuple) + (count << 24) + (H2(4-tuple, peer ISN, count, option bits, m) mod 2^24 with
//!        its low 2 bits replaced by m, the MSS index)
//! ```
//!
//! * `count` is a coarse clock: seconds / 60 ([`PERIOD`], Linux's `tcp_cookie_time`). Its low 8
//!   bits ride in the top byte (after H1 is taken off), so the receiver knows which period the
//!   cookie is from; a cookie is accepted while the clock is at most one period later
//!   ([`MAX_AGE`] periods in all, so at most two minutes, like Linux's `MAX_SYNCOOKIE_AGE`).
//! * H1 and H2 are SipHash-2-4 (RFC 4987 §3.6 asks for a keyed hash of the 4-tuple and a
//!   secret). H1 is keyed with a secret derived from the caller's; H2 with a key derived
//!   anew for every period from another (the secret rotates with the counter), and covers the
//!   peer's ISN too, so a cookie is good for one SYN only, not for every SYN on that 4-tuple.
//! * The MSS is an index into [`MSS_TABLE`] (536, 1300, 1440, 1460, as Linux): the largest
//!   entry not above what the peer announced. It is in the clear in the low 2 bits (once H1 is taken off) and an input
//!   of H2, whose other 22 bits check it: a forged or altered ACK passes with probability
//!   2^-22 per guess.
//!
//! # Options in the timestamp
//!
//! A SYN-ACK ISN has no room for window scaling, SACK-permitted or ECN. When the peer's SYN
//! carried timestamps, they go into the low 6 bits of our TSval ([`tsval`]), which the peer
//! echoes in the TSecr of its ACK, as Linux lays them out:
//!
//! ```text
//!  | 31 ... 6  |  5  |  4   | 3 2 1 0 |
//!  | our clock | ECN | SACK | WScale  |     WScale 0xf: the SYN had no window scale option
//! ```
//!
//! Unlike Linux, the 6 bits (or "no timestamps") are also an input of H2, so a peer cannot
//! change them in its ACK. Without timestamps there is nowhere to keep them: the SYN-ACK then
//! answers no window scaling and no SACK, and the connection has neither (Linux does the same).

use core::fmt;
use core::net::{IpAddr, SocketAddr};

use crate::tcp::siphash::{sip24, sip24_128};

use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};

/// The MSS values a cookie can carry (Linux's IPv4 table): the most common path MTUs' MSS
/// and the RFC 9293 §3.7.1 default.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// Length of one step of the cookie clock (Linux `TCP_SYNCOOKIE_PERIOD`, 60 s).
pub const PERIOD: Duration = Duration::from_secs(60);

/// Clock values a cookie is accepted at: the one it was made at and the next. A cookie is
/// therefore valid for at least one period and at most two (Linux `MAX_SYNCOOKIE_AGE`).
pub const MAX_AGE: u32 = 2;

/// Bits of the ISN below the clock byte.
const DATA_BITS: u32 = 24;
const DATA_MASK: u32 = (1 << DATA_BITS) - 1;
/// Low bits of the data that hold the MSS index (in the clear; H2 covers them).
const MSS_MASK: u32 = 0b11;

/// Low bits of TSval that carry options.
pub const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const TS_WSCALE_NONE: u8 = 0x0f;
const TS_SACK: u8 = 0x10;
const TS_ECN: u8 = 0x20;
/// Hashed in place of the TSval bits when the connection has no timestamps (outside 6 bits).
const NO_TIMESTAMPS: u8 = 0x40;

/// The options of a SYN that a cookie keeps. As [`CookieKeys::encode`]'s input: what the peer
/// offered (its MSS option, or 536 without one). As its output and [`CookieKeys::decode`]'s:
/// what the connection uses (MSS rounded down to the table; window scale, SACK and ECN only
/// with timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CookieOptions {
    pub mss: u16,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
    pub ecn: bool,
}

/// A SYN cookie for one SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    /// Our ISN for the SYN-ACK.
    pub isn: SeqNum,
    /// The option bits for the low bits of our TSval ([`tsval`]), when timestamps are on.
    pub ts_bits: Option<u8>,
    /// What the connection will use once the cookie comes back.
    pub options: CookieOptions,
}

/// Why an ACK's cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// The clock byte is not that of a period still accepted (or the cookie is forged).
    Expired,
    /// The hash does not match: forged, for another 4-tuple or another SYN, or altered.
    Invalid,
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CookieError::Expired => "SYN cookie expired",
            CookieError::Invalid => "SYN cookie invalid",
        })
    }
}

impl std::error::Error for CookieError {}

/// Makes and checks SYN cookies with secrets derived from the caller's.
#[derive(Clone)]
pub struct CookieKeys {
    /// Key of H1.
    h1: (u64, u64),
    /// Root of the per-period keys of H2.
    root: (u64, u64),
}

impl fmt::Debug for CookieKeys {
    /// Never prints the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieKeys").finish_non_exhaustive()
    }
}

/// The cookie clock at `now`.
fn count_at(now: Instant) -> u32 {
    (now.total_micros() / PERIOD.as_micros() as u64) as u32
}

/// The 4-tuple as hash input: per address, a family tag, the octets, the port (big-endian).
fn tuple_bytes(local: SocketAddr, remote: SocketAddr, out: &mut [u8]) -> usize {
    let mut n = 0;
    for a in [local, remote] {
        match a.ip() {
            IpAddr::V4(ip) => {
                out[n] = 4;
                out[n + 1..n + 5].copy_from_slice(&ip.octets());
                n += 5;
            }
            IpAddr::V6(ip) => {
                out[n] = 6;
                out[n + 1..n + 17].copy_from_slice(&ip.octets());
                n += 17;
            }
        }
        out[n..n + 2].copy_from_slice(&a.port().to_be_bytes());
        n += 2;
    }
    n
}

impl CookieKeys {
    /// Keys derived from `secret` (give each stack its own random secret).
    pub fn new(secret: [u8; 16]) -> CookieKeys {
        let k0 = u64::from_le_bytes(secret[..8].try_into().unwrap_or_default());
        let k1 = u64::from_le_bytes(secret[8..].try_into().unwrap_or_default());
        let derive = |label: &[u8]| sip24_128(k0, k1, label);
        CookieKeys {
            h1: derive(b"synack syncookie h1"),
            root: derive(b"synack syncookie h2 root"),
        }
    }

    fn h1(&self, local: SocketAddr, remote: SocketAddr) -> u32 {
        let mut buf = [0u8; 38];
        let n = tuple_bytes(local, remote, &mut buf);
        sip24(self.h1.0, self.h1.1, &buf[..n]) as u32
    }

    /// H2, keyed with the key of period `count`.
    fn h2(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        peer_isn: SeqNum,
        count: u32,
        bits: u8,
        mss_index: u32,
    ) -> u32 {
        let key = sip24_128(self.root.0, self.root.1, &count.to_be_bytes());
        // The 4-tuple, the peer's ISN, the count, the option bits and the MSS index, as one
        // string of bytes.
        let mut buf = [0u8; 48];
        let mut n = tuple_bytes(local, remote, &mut buf);
        buf[n..n + 4].copy_from_slice(&peer_isn.0.to_be_bytes());
        buf[n + 4..n + 8].copy_from_slice(&count.to_be_bytes());
        buf[n + 8] = bits;
        buf[n + 9] = mss_index as u8;
        n += 10;
        sip24(key.0, key.1, &buf[..n]) as u32
    }

    /// The cookie answering a SYN with sequence number `syn_seq` from `remote` to `local` that
    /// offered `offer`, at `now`.
    pub fn encode(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        syn_seq: SeqNum,
        offer: CookieOptions,
    ) -> Cookie {
        let index = MSS_TABLE.iter().rposition(|&m| m <= offer.mss).unwrap_or(0);
        let options = if offer.timestamps {
            CookieOptions {
                mss: MSS_TABLE[index],
                // RFC 7323 §2.3: a shift above 14 is used as 14.
                window_scale: offer.window_scale.map(|s| s.min(14)),
                ..offer
            }
        } else {
            CookieOptions {
                mss: MSS_TABLE[index],
                ..CookieOptions::default()
            }
        };
        let ts_bits = options.timestamps.then(|| {
            options.window_scale.unwrap_or(TS_WSCALE_NONE)
                | if options.sack_permitted { TS_SACK } else { 0 }
                | if options.ecn { TS_ECN } else { 0 }
        });
        let count = count_at(now);
        let index = index as u32 & MSS_MASK;
        let bits = ts_bits.unwrap_or(NO_TIMESTAMPS);
        let hash = self.h2(local, remote, syn_seq, count, bits, index);
        let data = (hash & DATA_MASK & !MSS_MASK) | index;
        let isn = self
            .h1(local, remote)
            .wrapping_add(count << DATA_BITS)
            .wrapping_add(data);
        Cookie {
            isn: SeqNum(isn),
            ts_bits,
            options,
        }
    }

    /// Checks the cookie an ACK from `remote` to `local` brings back at `now`: `seg_seq` and
    /// `seg_ack` are its sequence and acknowledgement numbers (the peer's ISN + 1 and the
    /// cookie + 1), `tsecr` its TSecr if it carried timestamps. Returns the options the
    /// connection uses.
    pub fn decode(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg_seq: SeqNum,
        seg_ack: SeqNum,
        tsecr: Option<u32>,
    ) -> Result<CookieOptions, CookieError> {
        let cookie = (seg_ack - 1u32).0;
        let peer_isn = seg_seq - 1u32;
        let x = cookie.wrapping_sub(self.h1(local, remote));
        let byte = x >> DATA_BITS;
        let now_count = count_at(now);
        let count = (0..MAX_AGE)
            .map(|age| now_count.wrapping_sub(age))
            .find(|c| c & 0xff == byte)
            .ok_or(CookieError::Expired)?;
        let bits = tsecr.map_or(NO_TIMESTAMPS, |t| (t & TS_MASK) as u8);
        let data = x & DATA_MASK;
        let index = data & MSS_MASK;
        let hash = self.h2(local, remote, peer_isn, count, bits, index);
        if data & !MSS_MASK != hash & DATA_MASK & !MSS_MASK {
            return Err(CookieError::Invalid);
        }
        let mss = *MSS_TABLE.get(index as usize).ok_or(CookieError::Invalid)?;
        if tsecr.is_none() {
            return Ok(CookieOptions {
                mss,
                ..CookieOptions::default()
            });
        }
        let ws = bits & TS_WSCALE_NONE;
        Ok(CookieOptions {
            mss,
            window_scale: (ws != TS_WSCALE_NONE).then_some(ws),
            sack_permitted: bits & TS_SACK != 0,
            timestamps: true,
            ecn: bits & TS_ECN != 0,
        })
    }
}

/// Our TSval for a cookie SYN-ACK: the connection's clock `ts_now` with its low [`TS_BITS`]
/// replaced by `bits`, and never ahead of the clock (one step of 64 back if it would be), so
/// that the connection's later TSvals are never older than this one (RFC 7323 §5.4).
pub fn tsval(ts_now: u32, bits: u8) -> u32 {
    let v = (ts_now & !TS_MASK) | (bits as u32 & TS_MASK);
    if (v.wrapping_sub(ts_now) as i32) > 0 {
        v.wrapping_sub(1 << TS_BITS)
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const SECRET: [u8; 16] = *b"synack-cookies!!";

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, last)), port)
    }

    const LOCAL_PORT: u16 = 80;

    fn pair() -> (SocketAddr, SocketAddr) {
        (v4(2, LOCAL_PORT), v4(1, 40000))
    }

    /// What the peer's ACK carries back for `c`: SEG.SEQ, SEG.ACK and TSecr.
    fn ack_for(c: &Cookie, syn_seq: SeqNum, ts_now: u32) -> (SeqNum, SeqNum, Option<u32>) {
        (
            syn_seq + 1u32,
            c.isn + 1u32,
            c.ts_bits.map(|b| tsval(ts_now, b)),
        )
    }

    /// H1, H2 and the derived keys are the values the streaming hashers gave when fed the
    /// same fields write by write (the code before `tcp::siphash`), IPv4 and IPv6.
    #[test]
    fn hashes_equal_the_streaming_form() {
        use core::hash::Hasher;
        use siphasher::sip::SipHasher24;
        use siphasher::sip128::{Hasher128, SipHasher24 as SipHasher128};
        let k0 = u64::from_le_bytes(SECRET[..8].try_into().unwrap());
        let k1 = u64::from_le_bytes(SECRET[8..].try_into().unwrap());
        let derive = |k0, k1, label: &[u8]| {
            let mut h = SipHasher128::new_with_keys(k0, k1);
            h.write(label);
            let v = h.finish128();
            (v.h1, v.h2)
        };
        let keys = CookieKeys::new(SECRET);
        assert_eq!(keys.h1, derive(k0, k1, b"synack syncookie h1"));
        assert_eq!(keys.root, derive(k0, k1, b"synack syncookie h2 root"));
        let v6 = |last: u16, port| {
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last)),
                port,
            )
        };
        for (l, r) in [pair(), (v6(2, 443), v6(1, 51000))] {
            let mut buf = [0u8; 38];
            let n = tuple_bytes(l, r, &mut buf);
            let mut h = SipHasher24::new_with_keys(keys.h1.0, keys.h1.1);
            h.write(&buf[..n]);
            assert_eq!(keys.h1(l, r), h.finish() as u32);
            for (count, bits, mss) in [(0u32, 0u8, 0u32), (7, 0x2f, 3), (u32::MAX, 0x40, 1)] {
                let isn = SeqNum(0x1234_5678 ^ count);
                let key = derive(keys.root.0, keys.root.1, &count.to_be_bytes());
                let mut h = SipHasher24::new_with_keys(key.0, key.1);
                h.write(&buf[..n]);
                h.write(&isn.0.to_be_bytes());
                h.write(&count.to_be_bytes());
                h.write(&[bits, mss as u8]);
                assert_eq!(keys.h2(l, r, isn, count, bits, mss), h.finish() as u32);
            }
        }
    }

    /// Every MSS table entry (and the values around them) and every option combination
    /// comes back as encoded, at the start and the end of the validity window.
    #[test]
    fn round_trip_every_mss_and_option_combination() {
        let keys = CookieKeys::new(SECRET);
        let (l, r) = pair();
        let mut checked = 0;
        let mut mss_values: Vec<u16> = vec![0, 1, 535, 1500, 9000, u16::MAX];
        for m in MSS_TABLE {
            mss_values.extend([m - 1, m, m + 1]);
        }
        let scales = [
            None,
            Some(0),
            Some(1),
            Some(7),
            Some(14),
            Some(15),
            Some(255),
        ];
        for &mss in &mss_values {
            for ws in scales {
                for bits in 0..8u8 {
                    let (sack, ts, ecn) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
                    let offer = CookieOptions {
                        mss,
                        window_scale: ws,
                        sack_permitted: sack,
                        timestamps: ts,
                        ecn,
                    };
                    let syn_seq = SeqNum(0x9000_0000u32.wrapping_add(checked * 7919));
                    let sent_at = Instant::from_millis(60_000 * 5 + 123);
                    let c = keys.encode(sent_at, l, r, syn_seq, offer);
                    // What the connection gets: the table entry at or below the offer, and the
                    // other options only with timestamps.
                    let want_mss = MSS_TABLE
                        .iter()
                        .copied()
                        .filter(|&m| m <= mss)
                        .max()
                        .unwrap_or(536);
                    assert_eq!(c.options.mss, want_mss, "mss {mss}");
                    assert_eq!(c.options.timestamps, ts);
                    assert_eq!(c.options.window_scale, ws.filter(|_| ts).map(|s| s.min(14)));
                    assert_eq!(c.options.sack_permitted, sack && ts);
                    assert_eq!(c.options.ecn, ecn && ts);
                    assert_eq!(c.ts_bits.is_some(), ts);
                    let (seq, ack, tsecr) = ack_for(&c, syn_seq, 0xdead_beef);
                    // Same period, the very next microsecond, and the last microsecond of the
                    // next period.
                    for at in [
                        sent_at,
                        sent_at + Duration::from_micros(1),
                        Instant::from_secs(60 * 7) - Duration::from_micros(1),
                    ] {
                        assert_eq!(keys.decode(at, l, r, seq, ack, tsecr), Ok(c.options));
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked as usize, mss_values.len() * scales.len() * 8);
    }

    #[test]
    fn mss_is_rounded_down_to_the_table() {
        let keys = CookieKeys::new(SECRET);
        let (l, r) = pair();
        for (offered, used) in [
            (1460, 1460),
            (1459, 1440),
            (1440, 1440),
            (1400, 1300),
            (1299, 536),
            (536, 536),
            // Below the table: 536, the IPv4 default every host must accept (RFC 9293 §3.7.1).
            (100, 536),
            (65535, 1460),
        ] {
            let o = CookieOptions {
                mss: offered,
                ..CookieOptions::default()
            };
            assert_eq!(
                keys.encode(Instant::ZERO, l, r, SeqNum(1), o).options.mss,
                used
            );
        }
    }

    fn sample() -> (CookieKeys, Cookie, SeqNum, SocketAddr, SocketAddr) {
        let keys = CookieKeys::new(SECRET);
        let (l, r) = pair();
        let offer = CookieOptions {
            mss: 1460,
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: true,
            ecn: false,
        };
        let syn_seq = SeqNum(123_456_789);
        let c = keys.encode(Instant::from_secs(1000), l, r, syn_seq, offer);
        (keys, c, syn_seq, l, r)
    }

    #[test]
    fn every_single_bit_flip_of_the_cookie_is_rejected() {
        let (keys, c, syn_seq, l, r) = sample();
        let (seq, ack, tsecr) = ack_for(&c, syn_seq, 5000);
        let now = Instant::from_secs(1001);
        assert!(keys.decode(now, l, r, seq, ack, tsecr).is_ok());
        for bit in 0..32 {
            let bad = SeqNum(ack.0 ^ (1 << bit));
            assert!(
                keys.decode(now, l, r, seq, bad, tsecr).is_err(),
                "bit {bit} of the cookie"
            );
        }
        // The option bits in TSecr are covered by the hash too.
        for bit in 0..TS_BITS {
            let t = tsecr.map(|t| t ^ (1 << bit));
            assert_eq!(
                keys.decode(now, l, r, seq, ack, t),
                Err(CookieError::Invalid),
                "TSecr bit {bit}"
            );
        }
        // Dropping the timestamps from the ACK changes what the hash covered.
        assert_eq!(
            keys.decode(now, l, r, seq, ack, None),
            Err(CookieError::Invalid)
        );
        // The clock bits above the option bits are not part of the cookie.
        let t = tsecr.map(|t| t ^ (1 << 20));
        assert!(keys.decode(now, l, r, seq, ack, t).is_ok());
    }

    #[test]
    fn another_four_tuple_or_another_syn_is_rejected() {
        let (keys, c, syn_seq, l, r) = sample();
        let (seq, ack, tsecr) = ack_for(&c, syn_seq, 5000);
        let now = Instant::from_secs(1001);
        let others = [
            (v4(3, LOCAL_PORT), r),
            (v4(2, LOCAL_PORT + 1), r),
            (l, v4(4, 40000)),
            (l, v4(1, 40001)),
            (r, l),
            (
                SocketAddr::new(
                    IpAddr::V6(Ipv4Addr::new(198, 18, 0, 2).to_ipv6_mapped()),
                    80,
                ),
                r,
            ),
            (
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 80),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 40000),
            ),
        ];
        for (ol, or) in others {
            assert!(
                keys.decode(now, ol, or, seq, ack, tsecr).is_err(),
                "{ol} {or}"
            );
        }
        // An ACK of another SYN on the same 4-tuple (another peer ISN).
        assert!(
            keys.decode(now, l, r, seq + 1u32, ack, tsecr).is_err(),
            "peer ISN is covered"
        );
        // Another stack's secret.
        let mut other = SECRET;
        other[0] ^= 1;
        assert!(
            CookieKeys::new(other)
                .decode(now, l, r, seq, ack, tsecr)
                .is_err()
        );
    }

    /// Valid for the period it was made in and the next one: at most two minutes, at least
    /// one. Before it was made (a clock that went back) it is refused too.
    #[test]
    fn expired_counter_is_rejected() {
        let keys = CookieKeys::new(SECRET);
        let (l, r) = pair();
        let offer = CookieOptions {
            mss: 1460,
            ..CookieOptions::default()
        };
        let syn_seq = SeqNum(42);
        // Made in the last microsecond of period 10.
        let made = Instant::from_secs(660) - Duration::from_micros(1);
        let c = keys.encode(made, l, r, syn_seq, offer);
        let (seq, ack, tsecr) = ack_for(&c, syn_seq, 0);
        let at = |s: u64| Instant::from_secs(s);
        assert!(keys.decode(at(660), l, r, seq, ack, tsecr).is_ok());
        assert!(
            keys.decode(at(720) - Duration::from_micros(1), l, r, seq, ack, tsecr)
                .is_ok()
        );
        assert_eq!(
            keys.decode(at(720), l, r, seq, ack, tsecr),
            Err(CookieError::Expired)
        );
        assert_eq!(
            keys.decode(at(3600), l, r, seq, ack, tsecr),
            Err(CookieError::Expired)
        );
        assert_eq!(
            keys.decode(at(599), l, r, seq, ack, tsecr),
            Err(CookieError::Expired)
        );
        // 256 periods later the clock byte matches again; the per-period key does not.
        let wrapped = made + PERIOD * 256;
        assert_eq!(
            keys.decode(wrapped, l, r, seq, ack, tsecr),
            Err(CookieError::Invalid)
        );
        // Made at time zero (period 0), checked in period 1: the clock wraps below zero fine.
        let c0 = keys.encode(Instant::ZERO, l, r, syn_seq, offer);
        let (s0, a0, t0) = ack_for(&c0, syn_seq, 0);
        assert!(keys.decode(at(61), l, r, s0, a0, t0).is_ok());
    }

    /// A stale duplicate: the ACK of an earlier handshake on the same 4-tuple (another peer
    /// ISN, an older cookie) opens nothing, however it is replayed.
    #[test]
    fn stale_duplicate_ack_is_rejected() {
        let keys = CookieKeys::new(SECRET);
        let (l, r) = pair();
        let offer = CookieOptions {
            mss: 1460,
            timestamps: true,
            ..CookieOptions::default()
        };
        let old = keys.encode(Instant::from_secs(10), l, r, SeqNum(1000), offer);
        let (seq, ack, tsecr) = ack_for(&old, SeqNum(1000), 77);
        // Three minutes later it is stale.
        assert!(
            keys.decode(Instant::from_secs(190), l, r, seq, ack, tsecr)
                .is_err()
        );
        // A new handshake from the same port with a new ISN: the old ACK does not match it
        // (nor would anything the stack kept: it keeps nothing).
        let new = keys.encode(Instant::from_secs(20), l, r, SeqNum(5_000_000), offer);
        assert_ne!(new.isn, old.isn);
        let (seq2, _, _) = ack_for(&new, SeqNum(5_000_000), 77);
        assert!(
            keys.decode(Instant::from_secs(21), l, r, seq2, ack, tsecr)
                .is_err()
        );
    }

    #[test]
    fn tsval_keeps_the_clock_and_never_runs_ahead() {
        for ts_now in [0u32, 63, 64, 1000, 0xffff_ffc0, u32::MAX, 0x8000_0000] {
            for bits in 0..64u8 {
                let v = tsval(ts_now, bits);
                assert_eq!(v & TS_MASK, bits as u32);
                let behind = ts_now.wrapping_sub(v);
                assert!(behind < 64, "ts_now {ts_now} bits {bits}: {v}");
            }
        }
    }

    #[test]
    fn debug_hides_the_keys() {
        assert_eq!(
            format!("{:?}", CookieKeys::new(SECRET)),
            "CookieKeys { .. }"
        );
    }

    #[test]
    fn encoding_is_pinned() {
        // A fixed secret and input give a fixed cookie on every platform.
        let (_, c, _, _, _) = sample();
        assert_eq!(c.ts_bits, Some(7 | TS_SACK));
        assert_eq!(c.isn, SeqNum(0xa37a_1a5c));
        let again = sample().1;
        assert_eq!(c, again);
    }
}
