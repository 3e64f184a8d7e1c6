//! Addresses and routing: the host's addresses with their on-link prefixes, the default
//! gateway, the source address towards a destination, the MSS a link allows, and the path
//! MTUs learned from ICMP (RFC 1191).

use core::net::{IpAddr, Ipv4Addr};

use super::{Ipv4Cidr, Stack};

/// Destinations whose path MTU the stack remembers.
const MAX_PMTU_ENTRIES: usize = 4096;

impl Stack {
    /// Adds an address with its on-link prefix.
    pub fn add_address(&mut self, cidr: Ipv4Cidr) {
        if !self.addrs.contains(&cidr) {
            self.addrs.push(cidr);
        }
    }

    /// Routes everything off-link through `gw` (which must be on a link of ours).
    pub fn set_gateway(&mut self, gw: Option<Ipv4Addr>) {
        self.gateway = gw;
    }

    pub fn addresses(&self) -> &[Ipv4Cidr] {
        &self.addrs
    }

    /// The MSS we announce: the MTU minus IPv4 and TCP headers.
    pub fn mss(&self) -> u16 {
        self.cfg.mtu.saturating_sub(40).max(88)
    }

    pub(super) fn is_local(&self, a: Ipv4Addr) -> bool {
        self.addrs.iter().any(|c| c.addr == a)
    }

    /// The source address to use towards `dst`, if it is routable.
    pub(super) fn route(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if let Some(c) = self.addrs.iter().find(|c| c.contains(dst)) {
            return Some(c.addr);
        }
        let gw = self.gateway?;
        self.addrs.iter().find(|c| c.contains(gw)).map(|c| c.addr)
    }

    /// The path MTU learned for `dst`, if any (RFC 1191 §5: new connections to the same host
    /// start with it, as Linux's route cache does).
    pub(super) fn path_mtu(&self, dst: IpAddr) -> Option<u16> {
        self.pmtu.get(&dst).copied()
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
