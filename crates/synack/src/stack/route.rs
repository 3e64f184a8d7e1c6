//! Addresses and routing: the host's addresses with their on-link prefixes, a default gateway
//! per family, the source address towards a destination, the MSS a link allows, and the path
//! MTUs learned from ICMP (RFC 1191, RFC 8201).
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) is the IPv4 address it
//! maps: the stack speaks IPv4 to it, as Linux does for a dual-stack socket.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{IPV6_MIN_MTU, IpCidr, Stack};

/// Destinations whose path MTU the stack remembers.
const MAX_PMTU_ENTRIES: usize = 4096;

impl Stack {
    /// Adds an address with its on-link prefix (`Ipv4Cidr`, `Ipv6Cidr` or `IpCidr`).
    pub fn add_address(&mut self, cidr: impl Into<IpCidr>) {
        let cidr = cidr.into();
        if !self.addrs.contains(&cidr) {
            self.addrs.push(cidr);
        }
    }

    /// Routes every IPv4 destination off-link through `gw` (which must be on a link of ours).
    pub fn set_gateway(&mut self, gw: Option<Ipv4Addr>) {
        self.gateway = gw;
    }

    /// Routes every IPv6 destination off-link through `gw` (which must be on a link of ours).
    pub fn set_gateway_v6(&mut self, gw: Option<Ipv6Addr>) {
        self.gateway6 = gw;
    }

    pub fn addresses(&self) -> &[IpCidr] {
        &self.addrs
    }

    /// The MSS we announce over IPv4: the MTU minus IPv4 and TCP headers.
    pub fn mss(&self) -> u16 {
        self.cfg.mtu.saturating_sub(40).max(88)
    }

    /// The MSS we announce towards `peer`'s family: the MTU minus 40 (IPv4) or 60 (IPv6:
    /// RFC 8200's 40-byte header and TCP's 20).
    pub fn mss_for(&self, peer: IpAddr) -> u16 {
        match peer {
            IpAddr::V4(_) => self.mss(),
            IpAddr::V6(_) => self.cfg.mtu.saturating_sub(60).max(IPV6_MIN_MTU - 60),
        }
    }

    /// True if `a` is one of our addresses.
    pub(super) fn is_local(&self, a: IpAddr) -> bool {
        self.addrs.iter().any(|c| c.addr() == a)
    }

    /// The source address to use towards `dst`, if it is routable: the address of the link
    /// `dst` is on, else of the link the family's gateway is on.
    pub(super) fn route(&self, dst: IpAddr) -> Option<IpAddr> {
        if let Some(c) = self.addrs.iter().find(|c| c.contains(dst)) {
            return Some(c.addr());
        }
        let gw = match dst {
            IpAddr::V4(_) => IpAddr::V4(self.gateway?),
            IpAddr::V6(_) => IpAddr::V6(self.gateway6?),
        };
        self.addrs.iter().find(|c| c.contains(gw)).map(|c| c.addr())
    }

    /// True if `a` is the directed broadcast address of one of our IPv4 prefixes.
    pub(super) fn is_broadcast(&self, a: Ipv4Addr) -> bool {
        a.is_broadcast()
            || self.addrs.iter().any(|c| match c {
                IpCidr::V4(c) => c.prefix < 31 && c.broadcast() == a,
                IpCidr::V6(_) => false,
            })
    }

    /// The path MTU learned for `dst`, if any (RFC 1191 §5: new connections to the same host
    /// start with it, as Linux's route cache does).
    pub(super) fn path_mtu(&self, dst: IpAddr) -> Option<u16> {
        self.pmtu.get(&dst).copied()
    }

    /// The MTU to use towards `dst`: the link's, or the path's if that is lower.
    pub(super) fn mtu_to(&self, dst: IpAddr) -> u16 {
        let link = self.cfg.mtu;
        self.path_mtu(dst).map_or(link, |p| p.min(link))
    }

    /// Remembers a path MTU for `dst`; only ever lowers a known one.
    pub(super) fn learn_path_mtu(&mut self, dst: IpAddr, mtu: u16) {
        if self.pmtu.len() >= MAX_PMTU_ENTRIES {
            self.pmtu.clear();
        }
        let known = self.pmtu.entry(dst).or_insert(mtu);
        *known = (*known).min(mtu);
    }
}

/// `a` with an IPv4-mapped IPv6 address replaced by its IPv4 address.
pub(super) fn canonical(a: IpAddr) -> IpAddr {
    a.to_canonical()
}
