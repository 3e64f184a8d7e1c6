//! Echo requests carried on for `synack forward`: each ping a client sends to a forwarded
//! destination is sent again from synack's namespace, on a raw ICMP (or ICMPv6) socket
//! connected to that destination, and the client hears the reply only if the destination
//! answered (RFC 792, RFC 4443 §4.1/§4.2). Raw sockets need `CAP_NET_RAW`, which
//! `synack forward` has as root; unprivileged ping sockets are not used because
//! `net.ipv4.ping_group_range` disables them by default.
//!
//! A destination on a link that does not answer neighbour discovery (an absent host in a
//! routed prefix) is reported as it is by a Linux router: the kernel gives up resolving it
//! after about 3 s (`mcast_solicit` 3 probes, `retrans_time` 1 s) and reports host
//! unreachable to the socket that sent the request (`IP_RECVERR` / `IPV6_RECVERR` make a
//! raw socket take that soft error, RFC 1122 §4.2.3.9's "should report" to the application),
//! and the client gets ICMP host unreachable.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rustix::net::sockopt::{Timeout, set_socket_timeout};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, connect, ipproto, recv, send};
use synack::stack::Unreachable;
use synack::wire::checksum::Checksum;

/// RFC 792: echo request and echo reply types; RFC 4443 §4.1/§4.2: ICMPv6's.
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// What became of one echo request sent on.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The destination answered.
    Reply,
    /// The kernel reported the destination unreachable (no route, no neighbour).
    Unreachable(Unreachable),
    /// Nothing came back in time.
    Silent,
}

/// The echo request: type, code, checksum, identifier, sequence number, data. ICMPv6's
/// checksum is the kernel's to fill (RFC 3542 §3.1); ICMP's is computed here.
fn request(v6: bool, ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let ty = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    let mut m = Vec::with_capacity(8 + data.len());
    m.extend_from_slice(&[ty, 0, 0, 0]);
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq_no.to_be_bytes());
    m.extend_from_slice(data);
    if !v6 {
        let mut c = Checksum::new();
        c.add_bytes(&m);
        m[2..4].copy_from_slice(&c.finish().to_be_bytes());
    }
    m
}

/// Whether `packet` (as a raw socket reads it: with the IPv4 header, without IPv6's) is the
/// echo reply to `ident` and `seq_no`.
fn is_reply(v6: bool, packet: &[u8], ident: u16, seq_no: u16) -> bool {
    let icmp = if v6 {
        packet
    } else {
        let ihl = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        packet.get(ihl..).unwrap_or_default()
    };
    let ty = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    icmp.len() >= 8
        && icmp[0] == ty
        && icmp[1] == 0
        && icmp[4..6] == ident.to_be_bytes()
        && icmp[6..8] == seq_no.to_be_bytes()
}

/// Sends an echo request with `ident`, `seq_no` and `data` to `dst` and waits up to `limit`
/// for its reply.
pub fn ping(
    dst: IpAddr,
    ident: u16,
    seq_no: u16,
    data: &[u8],
    limit: Duration,
) -> io::Result<Outcome> {
    let v6 = dst.is_ipv6();
    let (family, proto) = if v6 {
        (AddressFamily::INET6, ipproto::ICMPV6)
    } else {
        (AddressFamily::INET, ipproto::ICMP)
    };
    let fd = rustix::net::socket(family, SocketType::RAW, Some(proto))?;
    // Soft errors too (host unreachable, an unresolved neighbour): without it a raw socket
    // hears only hard ones (ip(7) IP_RECVERR).
    if v6 {
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv6RecvErr, &true)?;
    } else {
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv4RecvErr, &true)?;
    }
    connect(&fd, &SocketAddr::new(dst, 0))?;
    let unreachable = |e: rustix::io::Errno| match e {
        rustix::io::Errno::HOSTUNREACH => Ok(Outcome::Unreachable(Unreachable::Host)),
        rustix::io::Errno::NETUNREACH => Ok(Outcome::Unreachable(Unreachable::Network)),
        e => Err(io::Error::from(e)),
    };
    if let Err(e) = send(&fd, &request(v6, ident, seq_no, data), SendFlags::empty()) {
        return unreachable(e);
    }
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Outcome::Silent);
        }
        set_socket_timeout(&fd, Timeout::Recv, Some(left))?;
        match recv(&fd, &mut buf[..], RecvFlags::empty()) {
            Ok((n, _)) if is_reply(v6, &buf[..n], ident, seq_no) => return Ok(Outcome::Reply),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => return Ok(Outcome::Silent),
            // Another error about the request (a fragmentation needed, say): no reply.
            Err(e) => return unreachable(e).or(Ok(Outcome::Silent)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_rfc_792s_and_replies_are_matched_by_ident_and_sequence() {
        let r = request(false, 0x1234, 7, b"ab");
        assert_eq!(r[..2], [8, 0]);
        assert_eq!(r[4..], [0x12, 0x34, 0, 7, b'a', b'b']);
        let mut c = Checksum::new();
        c.add_bytes(&r);
        assert!(c.verifies());
        assert_eq!(request(true, 1, 2, b"")[..], [128, 0, 0, 0, 0, 1, 0, 2]);

        // IPv4 as a raw socket reads it: a 20-byte header, then the reply.
        let mut v4 = vec![0x45];
        v4.resize(20, 0);
        v4.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert!(is_reply(false, &v4, 0x1234, 7));
        assert!(!is_reply(false, &v4, 0x1234, 8));
        assert!(!is_reply(false, &v4[..24], 0x1234, 7));
        assert!(is_reply(true, &[129, 0, 0, 0, 0, 1, 0, 2], 1, 2));
        assert!(!is_reply(true, &[128, 0, 0, 0, 0, 1, 0, 2], 1, 2));
    }
}
