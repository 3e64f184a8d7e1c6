//! Addresses with their on-link prefix (CIDR notation, RFC 4632 §3.1): what a host is
//! configured with, and what routing and the TUN device need to know about a link.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::io;

/// An IPv4 address with its on-link prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Ipv4Cidr {
        Ipv4Cidr {
            addr,
            prefix: prefix.min(32),
        }
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// True if `a` is on this prefix's link.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr) & self.mask()
    }

    /// The directed broadcast address of the prefix.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
}

impl core::str::FromStr for Ipv4Cidr {
    type Err = io::Error;
    /// `198.18.0.1/24`
    fn from_str(s: &str) -> io::Result<Ipv4Cidr> {
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("expected ADDR/PREFIX like 198.18.0.1/24, got {s:?}"),
            )
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Ipv4Cidr::new(addr, prefix))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv6 address with its on-link prefix (RFC 4291 §2.3; RFC 4861 §2.1 "on-link").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Cidr {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Ipv6Cidr {
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Ipv6Cidr {
        Ipv6Cidr {
            addr,
            prefix: prefix.min(128),
        }
    }

    fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        }
    }

    /// True if `a` is on this prefix's link.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & self.mask() == u128::from(self.addr) & self.mask()
    }
}

impl core::str::FromStr for Ipv6Cidr {
    type Err = io::Error;
    /// `fd00::2/64`
    fn from_str(s: &str) -> io::Result<Ipv6Cidr> {
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("expected ADDR/PREFIX like fd00::2/64, got {s:?}"),
            )
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 128 {
            return Err(bad());
        }
        Ok(Ipv6Cidr::new(addr, prefix))
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An address of either family with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpCidr {
    V4(Ipv4Cidr),
    V6(Ipv6Cidr),
}

impl IpCidr {
    /// `addr/prefix`; the prefix is clamped to the family's address length.
    pub fn new(addr: IpAddr, prefix: u8) -> IpCidr {
        match addr {
            IpAddr::V4(a) => IpCidr::V4(Ipv4Cidr::new(a, prefix)),
            IpAddr::V6(a) => IpCidr::V6(Ipv6Cidr::new(a, prefix)),
        }
    }

    pub fn addr(&self) -> IpAddr {
        match self {
            IpCidr::V4(c) => IpAddr::V4(c.addr),
            IpCidr::V6(c) => IpAddr::V6(c.addr),
        }
    }

    pub fn prefix(&self) -> u8 {
        match self {
            IpCidr::V4(c) => c.prefix,
            IpCidr::V6(c) => c.prefix,
        }
    }

    /// True if `a` (of the same family) is on this prefix's link.
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self, a) {
            (IpCidr::V4(c), IpAddr::V4(a)) => c.contains(a),
            (IpCidr::V6(c), IpAddr::V6(a)) => c.contains(a),
            _ => false,
        }
    }

    pub fn is_ipv6(&self) -> bool {
        matches!(self, IpCidr::V6(_))
    }
}

impl From<Ipv4Cidr> for IpCidr {
    fn from(c: Ipv4Cidr) -> IpCidr {
        IpCidr::V4(c)
    }
}

impl From<Ipv6Cidr> for IpCidr {
    fn from(c: Ipv6Cidr) -> IpCidr {
        IpCidr::V6(c)
    }
}

impl core::str::FromStr for IpCidr {
    type Err = io::Error;
    /// `198.18.0.1/24` or `fd00::2/64`
    fn from_str(s: &str) -> io::Result<IpCidr> {
        if s.contains(':') {
            s.parse().map(IpCidr::V6)
        } else {
            s.parse().map(IpCidr::V4)
        }
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpCidr::V4(c) => c.fmt(f),
            IpCidr::V6(c) => c.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_contain_their_link_only() {
        let c: IpCidr = "fd00:5ac::2/64".parse().unwrap();
        assert!(c.contains("fd00:5ac::1".parse().unwrap()));
        assert!(c.contains("fd00:5ac::ffff:1".parse().unwrap()));
        assert!(!c.contains("fd00:5ac:0:1::1".parse().unwrap()));
        assert!(!c.contains("198.18.0.1".parse().unwrap()), "other family");
        let v4: IpCidr = "198.18.0.2/24".parse().unwrap();
        assert!(v4.contains("198.18.0.77".parse().unwrap()));
        assert!(!v4.contains("198.18.1.1".parse().unwrap()));
        let all: Ipv6Cidr = "::/0".parse().unwrap();
        assert!(all.contains(Ipv6Addr::LOCALHOST));
        let host: Ipv6Cidr = "fd00::1/128".parse().unwrap();
        assert!(host.contains("fd00::1".parse().unwrap()));
        assert!(!host.contains("fd00::2".parse().unwrap()));
    }

    #[test]
    fn parse_and_display_round_trip_and_bad_input_is_an_error() {
        for s in ["fd00::2/64", "198.18.0.2/24", "::/0", "10.0.0.1/32"] {
            assert_eq!(s.parse::<IpCidr>().unwrap().to_string(), s);
        }
        for s in [
            "fd00::2/129",
            "fd00::2",
            "198.18.0.2/33",
            "fd00::zz/64",
            "1.2.3.4/x",
        ] {
            let e = s.parse::<IpCidr>().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{s}");
            assert!(e.to_string().contains("ADDR/PREFIX"), "{e}");
        }
    }
}
