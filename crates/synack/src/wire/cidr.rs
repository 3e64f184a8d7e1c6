//! Addresses with their on-link prefix (CIDR notation, RFC 4632 §3.1): what a host is
//! configured with, and what routing and the TUN device need to know about a link.

use core::net::Ipv4Addr;
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
