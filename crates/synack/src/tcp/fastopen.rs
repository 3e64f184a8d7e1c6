//! TCP Fast Open (RFC 7413) as Linux implements it: the `net.ipv4.tcp_fastopen` mode bits,
//! the server's key and the cookies it makes from it.
//!
//! RFC 7413 §4.1.2: the server makes the cookie from the client's IP address with a secret
//! only it knows; §4.1.3 leaves the algorithm to the server. Linux (and so synack) uses
//! SipHash-2-4 keyed with `net.ipv4.tcp_fastopen_key` over the source and destination
//! addresses of the SYN (`__tcp_fastopen_cookie_gen_cipher`): the cookie is the 64-bit
//! result, little-endian, 8 bytes. The same key and addresses give Linux's cookie exactly,
//! so a packetdrill script's cookie checks hold on both.

use core::fmt;
use core::net::IpAddr;

use crate::tcp::siphash::sip24;

/// The bits of Linux's `net.ipv4.tcp_fastopen` (Documentation/networking/ip-sysctl.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FastOpenMode(pub u32);

impl FastOpenMode {
    /// 0x1: send data in the opening SYN (client side), with sendto(MSG_FASTOPEN) or
    /// TCP_FASTOPEN_CONNECT.
    pub const CLIENT: u32 = 0x1;
    /// 0x2: accept data in a SYN (server side) on listeners that set TCP_FASTOPEN.
    pub const SERVER: u32 = 0x2;
    /// 0x4: the client sends data in its SYN even without a cookie.
    pub const CLIENT_NO_COOKIE: u32 = 0x4;
    /// 0x200: the server accepts data in a SYN without checking any cookie.
    pub const SERVER_COOKIE_NOT_REQD: u32 = 0x200;
    /// 0x400: every listener does Fast Open, its queue as long as its backlog, without
    /// TCP_FASTOPEN.
    pub const SERVER_WO_SOCKOPT: u32 = 0x400;

    /// Linux's default: the client side only.
    pub const LINUX: FastOpenMode = FastOpenMode(FastOpenMode::CLIENT);

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

/// The server's secret (`net.ipv4.tcp_fastopen_key`): a primary key that makes cookies and
/// an optional backup key that is still accepted (Linux's key rotation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FastOpenKey {
    pub primary: [u8; 16],
    pub backup: Option<[u8; 16]>,
}

/// Which key validated a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    Primary,
    /// The backup key: the connection is accepted and the SYN-ACK brings a fresh cookie.
    Backup,
}

/// The length of the cookies a server makes.
pub const COOKIE_LEN: usize = 8;

impl FastOpenKey {
    /// A key from 16 bytes (the TCP_FASTOPEN_KEY socket option's form).
    pub fn new(primary: [u8; 16]) -> FastOpenKey {
        FastOpenKey {
            primary,
            backup: None,
        }
    }

    /// Parses the sysctl's text: four 32-bit hex words joined by `-`
    /// (`a0bf63f7-ed803d81-cd641d30-cebc4a90`), optionally a comma and the backup key. Each
    /// word is stored little-endian, as Linux's `proc_tcp_fastopen_key` does.
    pub fn parse(text: &str) -> Result<FastOpenKey, String> {
        let one = |s: &str| -> Result<[u8; 16], String> {
            let words: Vec<&str> = s.trim().split('-').collect();
            if words.len() != 4 {
                return Err(format!("expected four hex words joined by '-', got {s:?}"));
            }
            let mut key = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                let v = u32::from_str_radix(w, 16)
                    .map_err(|_| format!("{w:?} is not a 32-bit hex word"))?;
                key[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
            }
            Ok(key)
        };
        let mut parts = text.split(',');
        let primary = one(parts.next().unwrap_or(""))?;
        let backup = parts.next().map(one).transpose()?;
        if parts.next().is_some() {
            return Err("at most two keys (primary,backup)".into());
        }
        Ok(FastOpenKey { primary, backup })
    }

    /// The cookie for a SYN from `src` to `dst` (RFC 7413 §4.1.2), made with the primary key.
    pub fn cookie(&self, src: IpAddr, dst: IpAddr) -> [u8; COOKIE_LEN] {
        cookie_with(&self.primary, src, dst)
    }

    /// Checks `cookie` on a SYN from `src` to `dst` against both keys (RFC 7413 §4.1.2:
    /// "the server ... validates the cookie").
    pub fn check(&self, src: IpAddr, dst: IpAddr, cookie: &[u8]) -> Option<KeyUsed> {
        if cookie == self.cookie(src, dst) {
            return Some(KeyUsed::Primary);
        }
        let backup = self.backup?;
        (cookie == cookie_with(&backup, src, dst)).then_some(KeyUsed::Backup)
    }
}

fn cookie_with(key: &[u8; 16], src: IpAddr, dst: IpAddr) -> [u8; COOKIE_LEN] {
    let k0 = u64::from_le_bytes(key[..8].try_into().unwrap_or_default());
    let k1 = u64::from_le_bytes(key[8..].try_into().unwrap_or_default());
    // The source and destination addresses as one string of bytes (both IPv4, or both as
    // IPv6).
    let mut b = [0u8; 32];
    let n = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            b[..4].copy_from_slice(&s.octets());
            b[4..8].copy_from_slice(&d.octets());
            8
        }
        (s, d) => {
            b[..16].copy_from_slice(&v6(s));
            b[16..].copy_from_slice(&v6(d));
            32
        }
    };
    sip24(k0, k1, &b[..n]).to_le_bytes()
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

impl fmt::Debug for FastOpenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FastOpenKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The cookies Linux 6.18 sends for these keys and addresses (seen on the wire in the
    /// SYN-ACK of a cookie request; the IPv4 and IPv6 ones are the upstream runners'
    /// TFO_COOKIE values for the key that packetdrill's defaults.sh sets).
    #[test]
    fn cookies_are_linux_cookies() {
        let k = FastOpenKey::parse("a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4").unwrap();
        assert_eq!(
            k.cookie(ip("192.0.2.1"), ip("192.168.0.1")),
            [0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb]
        );
        assert_eq!(
            k.cookie(ip("fd3d:fa7b:d17d::1"), ip("fd3d:a0b:17d6::1")),
            [0xc1, 0xd1, 0xe9, 0x74, 0x2a, 0x47, 0xa9, 0xbc]
        );
        let k = FastOpenKey::parse("a0bf63f7-ed803d81-cd641d30-cebc4a90").unwrap();
        let c = k.cookie(ip("10.248.0.2"), ip("192.168.0.2"));
        assert_eq!(c, [0x00, 0xab, 0xaa, 0xab, 0xe8, 0xe9, 0x54, 0xc2]);
        // The direction matters: it is the client's address first.
        assert_ne!(k.cookie(ip("192.168.0.2"), ip("10.248.0.2")), c);
    }

    #[test]
    fn check_takes_primary_then_backup() {
        let old = FastOpenKey::parse("01010101-02020202-03030303-04040404").unwrap();
        let (s, d) = (ip("198.18.0.1"), ip("198.18.0.2"));
        let from_old = old.cookie(s, d);
        let k = FastOpenKey::parse(
            "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4,01010101-02020202-03030303-04040404",
        )
        .unwrap();
        assert_eq!(k.check(s, d, &k.cookie(s, d)), Some(KeyUsed::Primary));
        assert_eq!(k.check(s, d, &from_old), Some(KeyUsed::Backup));
        assert_eq!(k.check(d, s, &from_old), None);
        assert_eq!(k.check(s, d, &[0; 8]), None);
        assert_eq!(k.check(s, d, &k.cookie(s, d)[..4]), None);
    }

    #[test]
    fn key_text_errors() {
        assert!(FastOpenKey::parse("a1a1a1a1-b2b2b2b2-c3c3c3c3").is_err());
        assert!(FastOpenKey::parse("a1a1a1a1-b2b2b2b2-c3c3c3c3-zz").is_err());
        assert!(FastOpenKey::parse("1-2-3-4,5-6-7-8,9-a-b-c").is_err());
        let k = FastOpenKey::parse("1-2-3-4").unwrap();
        assert_eq!(k.primary[..8], [1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(format!("{k:?}"), "FastOpenKey(..)");
    }
}
