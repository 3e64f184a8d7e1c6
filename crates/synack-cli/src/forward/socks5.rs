//! A SOCKS5 client (RFC 1928) for `synack forward`: the no-authentication method, or
//! username/password (RFC 1929) when given one, CONNECT for TCP flows and UDP ASSOCIATE for
//! UDP ones, the original destination sent as an IPv4 or IPv6 address (never a name: the
//! client already resolved it).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use synack::stack::{Refusal, Unreachable};

/// RFC 1928 §3: the protocol version.
const VERSION: u8 = 5;
/// RFC 1928 §3: "X'00' NO AUTHENTICATION REQUIRED".
const NO_AUTH: u8 = 0;
/// RFC 1928 §3: "X'02' USERNAME/PASSWORD" (RFC 1929).
const USER_PASS: u8 = 2;
/// RFC 1929 §2: "The VER field contains the current version of the subnegotiation, which is
/// X'01'".
const USER_PASS_VERSION: u8 = 1;
/// RFC 1928 §3: "X'FF' NO ACCEPTABLE METHODS".
const NO_ACCEPTABLE: u8 = 0xff;
/// RFC 1928 §4: CMD "CONNECT X'01'".
const CMD_CONNECT: u8 = 1;
/// RFC 1928 §4: CMD "UDP ASSOCIATE X'03'".
const CMD_UDP_ASSOCIATE: u8 = 3;
/// RFC 1928 §5: ATYP values.
const ATYP_V4: u8 = 1;
const ATYP_NAME: u8 = 3;
const ATYP_V6: u8 = 4;

/// The proxy, and the username and password synack logs in with (RFC 1929), if any.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub addr: SocketAddr,
    login: Option<(String, String)>,
}

impl Proxy {
    /// The proxy at `addr`, with `login` (username, password) when it asks for one: each
    /// 1 to 255 bytes (RFC 1929 §2's one-byte lengths), or an error that says which.
    pub fn new(addr: SocketAddr, login: Option<(String, String)>) -> Result<Proxy, String> {
        if let Some((user, pass)) = &login {
            for (what, v) in [("username", user), ("password", pass)] {
                if v.is_empty() || v.len() > 255 {
                    return Err(format!(
                        "a SOCKS5 {what} is 1 to 255 bytes (RFC 1929), not {}",
                        v.len()
                    ));
                }
            }
        }
        Ok(Proxy { addr, login })
    }

    /// The username it logs in with.
    pub fn user(&self) -> Option<&str> {
        self.login.as_ref().map(|(u, _)| u.as_str())
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)
    }
}

/// Why an upstream connection failed, and what the client is told about it.
#[derive(Debug)]
pub struct Failure {
    /// A RST or an ICMP unreachable for the client's SYN.
    pub how: Refusal,
    /// One line for the operator.
    pub why: String,
}

/// RFC 1928 §6: the REP field's meaning, in words.
fn reply_text(rep: u8) -> &'static str {
    match rep {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// What the client hears for a failure reply: connection refused is a RST, as the
/// destination's own would be; network and host unreachable are the ICMP unreachables a
/// router would send; anything else (the proxy's own trouble, its policy) is a RST.
pub fn refusal_for(rep: u8) -> Refusal {
    match rep {
        3 => Refusal::Unreachable(Unreachable::Network),
        4 => Refusal::Unreachable(Unreachable::Host),
        _ => Refusal::Reset,
    }
}

/// RFC 1928 §4/§5: ATYP, DST.ADDR and DST.PORT of `a`, appended to `out`.
pub fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v4) => {
            out.push(ATYP_V4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(ATYP_V6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

/// Reads ATYP, BND.ADDR and BND.PORT (RFC 1928 §6); a name is read and answered as
/// unspecified (nothing here uses it).
fn read_addr(s: &mut impl Read) -> io::Result<SocketAddr> {
    let mut atyp = [0u8; 1];
    s.read_exact(&mut atyp)?;
    let ip = match atyp[0] {
        ATYP_V4 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a)?;
            IpAddr::V4(Ipv4Addr::from(a))
        }
        ATYP_V6 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a)?;
            IpAddr::V6(Ipv6Addr::from(a))
        }
        ATYP_NAME => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            s.read_exact(&mut name)?;
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
        t => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("address type {t} in the proxy's reply"),
            ));
        }
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port)?;
    Ok(SocketAddr::new(ip, u16::from_be_bytes(port)))
}

/// RFC 1929 §2: the username/password subnegotiation, after the proxy chose it.
fn log_in(s: &mut TcpStream, user: &str, pass: &str) -> io::Result<()> {
    let mut req = Vec::with_capacity(3 + user.len() + pass.len());
    req.extend_from_slice(&[USER_PASS_VERSION, user.len() as u8]);
    req.extend_from_slice(user.as_bytes());
    req.push(pass.len() as u8);
    req.extend_from_slice(pass.as_bytes());
    s.write_all(&req)?;
    let mut answer = [0u8; 2];
    s.read_exact(&mut answer)?;
    // "A STATUS field of X'00' indicates success. If the server returns a `failure' (STATUS
    // value other than X'00') status, it MUST close the connection."
    if answer[1] != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "it rejected username {user:?} and its password (RFC 1929 status {:#04x})",
                answer[1]
            ),
        ));
    }
    Ok(())
}

/// The method negotiation (RFC 1928 §3), the login when the proxy asks for it (RFC 1929),
/// and one request (§4), up to the reply's REP; on success the rest of the reply (BND.ADDR,
/// BND.PORT) is read and returned.
fn request(
    s: &mut TcpStream,
    proxy: &Proxy,
    cmd: u8,
    dst: SocketAddr,
) -> io::Result<Result<SocketAddr, u8>> {
    match proxy.login {
        None => s.write_all(&[VERSION, 1, NO_AUTH])?,
        Some(_) => s.write_all(&[VERSION, 2, NO_AUTH, USER_PASS])?,
    }
    let mut chosen = [0u8; 2];
    s.read_exact(&mut chosen)?;
    if chosen[0] != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a SOCKS5 proxy (version {} in its answer)", chosen[0]),
        ));
    }
    match (chosen[1], &proxy.login) {
        (NO_AUTH, _) => {}
        (USER_PASS, Some((user, pass))) => log_in(s, user, pass)?,
        (m, login) => {
            let offered = match login {
                None => "no authentication; give --socks5-user for username/password",
                Some(_) => "no authentication, username/password",
            };
            let what = if m == NO_ACCEPTABLE {
                format!("it accepts no method synack offers ({offered})")
            } else {
                format!("it chose method {m} that synack did not offer ({offered})")
            };
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, what));
        }
    }
    let mut req = Vec::with_capacity(22);
    req.extend_from_slice(&[VERSION, cmd, 0]);
    put_addr(&mut req, dst);
    s.write_all(&req)?;
    let mut head = [0u8; 3];
    s.read_exact(&mut head)?;
    if head[0] != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("version {} in the proxy's reply", head[0]),
        ));
    }
    if head[1] != 0 {
        return Ok(Err(head[1]));
    }
    read_addr(s).map(Ok)
}

/// Connects to `dst` through the proxy at `proxy` (RFC 1928 CONNECT), all within `limit`.
pub fn connect(proxy: &Proxy, dst: SocketAddr, limit: Duration) -> Result<TcpStream, Failure> {
    let trouble = |e: io::Error| Failure {
        how: Refusal::Reset,
        why: format!("SOCKS5 proxy {proxy}: {e}"),
    };
    let mut s = TcpStream::connect_timeout(&proxy.addr, limit).map_err(trouble)?;
    s.set_read_timeout(Some(limit)).map_err(trouble)?;
    s.set_write_timeout(Some(limit)).map_err(trouble)?;
    match request(&mut s, proxy, CMD_CONNECT, dst).map_err(trouble)? {
        Ok(_bound) => {
            s.set_read_timeout(None).map_err(trouble)?;
            s.set_write_timeout(None).map_err(trouble)?;
            Ok(s)
        }
        Err(rep) => Err(Failure {
            how: refusal_for(rep),
            why: format!(
                "SOCKS5 proxy {proxy} answered {} (reply {rep:#04x})",
                reply_text(rep)
            ),
        }),
    }
}

/// A UDP association (RFC 1928 §7): the control connection, which keeps it alive, and a UDP
/// socket connected to the proxy's relay.
pub struct Association {
    pub control: TcpStream,
    pub relay: UdpSocket,
}

/// Asks the proxy at `proxy` for a UDP association (RFC 1928 §4 UDP ASSOCIATE, DST.ADDR all
/// zeros: the sending address is not known before the relay is), within `limit`; both
/// sockets come back non-blocking.
pub fn associate(proxy: &Proxy, limit: Duration) -> Result<Association, String> {
    let trouble = |e: io::Error| format!("SOCKS5 proxy {proxy}: {e}");
    let mut control = TcpStream::connect_timeout(&proxy.addr, limit).map_err(trouble)?;
    control.set_read_timeout(Some(limit)).map_err(trouble)?;
    control.set_write_timeout(Some(limit)).map_err(trouble)?;
    let any = match proxy.addr {
        SocketAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        SocketAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    };
    let mut relay = match request(&mut control, proxy, CMD_UDP_ASSOCIATE, any).map_err(trouble)? {
        Ok(bound) => bound,
        Err(rep) => {
            return Err(format!(
                "SOCKS5 proxy {proxy} answered {} (reply {rep:#04x}) to UDP ASSOCIATE",
                reply_text(rep)
            ));
        }
    };
    // A relay announced as unspecified is on the proxy's own address (common practice).
    if relay.ip().is_unspecified() {
        relay.set_ip(proxy.addr.ip());
    }
    let udp = UdpSocket::bind(any)
        .and_then(|u| u.connect(relay).map(|()| u))
        .and_then(|u| u.set_nonblocking(true).map(|()| u))
        .map_err(|e| format!("SOCKS5 relay {relay}: {e}"))?;
    control.set_nonblocking(true).map_err(trouble)?;
    Ok(Association {
        control,
        relay: udp,
    })
}

/// RFC 1928 §7: RSV (2 bytes), FRAG 0 and the destination, before `data`, into `out`: a
/// 10-byte header for IPv4, 22 bytes for IPv6.
pub fn udp_wrap(out: &mut Vec<u8>, dst: SocketAddr, data: &[u8]) {
    out.clear();
    out.extend_from_slice(&[0, 0, 0]);
    put_addr(out, dst);
    out.extend_from_slice(data);
}

/// The payload's offset in a datagram from the relay (RFC 1928 §7) and the address it came
/// from; `None` for a short or fragmented one ("an implementation that does not support
/// fragmentation MUST drop any datagram whose FRAG field is other than X'00'").
pub fn udp_unwrap(d: &[u8]) -> Option<(SocketAddr, usize)> {
    if d.len() < 4 || d[0] != 0 || d[1] != 0 || d[2] != 0 {
        return None;
    }
    let mut r = &d[3..];
    let from = read_addr(&mut r).ok()?;
    Some((from, d.len() - r.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn addresses_are_encoded_as_rfc_1928_section_5_says() {
        let mut v = Vec::new();
        put_addr(&mut v, "198.19.0.77:80".parse().unwrap());
        assert_eq!(v, [1, 198, 19, 0, 77, 0, 80]);
        v.clear();
        put_addr(&mut v, "[fd00:5ac:1::77]:443".parse().unwrap());
        let mut want = vec![4, 0xfd, 0, 5, 0xac, 0, 1];
        want.extend_from_slice(&[0; 9]);
        want.extend_from_slice(&[0x77, 1, 0xbb]);
        assert_eq!(v, want);
    }

    /// A one-shot proxy on loopback that checks the exact request bytes and answers `rep`.
    fn proxy(rep: u8) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut greeting = [0u8; 3];
            s.read_exact(&mut greeting).unwrap();
            s.write_all(&[5, 0]).unwrap();
            let mut req = [0u8; 10];
            s.read_exact(&mut req).unwrap();
            s.write_all(&[5, rep, 0, 1, 127, 0, 0, 1, 0x12, 0x34])
                .unwrap();
            let mut all = greeting.to_vec();
            all.extend_from_slice(&req);
            all
        });
        (addr, t)
    }

    #[test]
    fn connect_sends_the_original_destination_and_maps_failure_replies() {
        let dst: SocketAddr = "198.19.0.77:81".parse().unwrap();
        let (p, t) = proxy(0);
        let p = &Proxy::new(p, None).unwrap();
        assert!(connect(p, dst, Duration::from_secs(5)).is_ok());
        assert_eq!(
            t.join().unwrap(),
            [5, 1, 0, 5, 1, 0, 1, 198, 19, 0, 77, 0, 81]
        );
        for (rep, how, text) in [
            (5, Refusal::Reset, "connection refused (reply 0x05)"),
            (
                3,
                Refusal::Unreachable(Unreachable::Network),
                "network unreachable (reply 0x03)",
            ),
            (
                4,
                Refusal::Unreachable(Unreachable::Host),
                "host unreachable (reply 0x04)",
            ),
            (2, Refusal::Reset, "not allowed by ruleset (reply 0x02)"),
        ] {
            let (p, t) = proxy(rep);
            let f =
                connect(&Proxy::new(p, None).unwrap(), dst, Duration::from_secs(5)).unwrap_err();
            t.join().unwrap();
            assert_eq!(f.how, how);
            assert!(f.why.ends_with(text), "{}", f.why);
        }
    }

    #[test]
    fn udp_headers_are_10_and_22_bytes_and_fragments_are_dropped() {
        let mut v = Vec::new();
        let d4: SocketAddr = "198.19.0.77:53".parse().unwrap();
        udp_wrap(&mut v, d4, b"q");
        assert_eq!(v, [0, 0, 0, 1, 198, 19, 0, 77, 0, 53, b'q']);
        assert_eq!(udp_unwrap(&v), Some((d4, 10)));
        let d6: SocketAddr = "[fd00:5ac:1::77]:53".parse().unwrap();
        udp_wrap(&mut v, d6, b"q");
        assert_eq!(v.len(), 23);
        assert_eq!(udp_unwrap(&v), Some((d6, 22)));
        v[2] = 1;
        assert_eq!(udp_unwrap(&v), None);
        assert_eq!(udp_unwrap(&[0, 0, 0, 1, 198]), None);
    }

    /// A CONNECT to 198.19.0.77:80 through the proxy at `p` without a login, which fails.
    fn connect_without_login(p: SocketAddr) -> Failure {
        let proxy = Proxy::new(p, None).unwrap();
        let dst = "198.19.0.77:80".parse().unwrap();
        connect(&proxy, dst, Duration::from_secs(5)).unwrap_err()
    }

    #[test]
    fn a_proxy_that_is_not_there_is_a_reset_with_its_address() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap();
        drop(l);
        let f = connect_without_login(p);
        assert_eq!(f.how, Refusal::Reset);
        assert!(
            f.why.starts_with(&format!("SOCKS5 proxy {p}: ")),
            "{}",
            f.why
        );
    }

    /// A one-shot proxy that wants a username and password (RFC 1929): it answers `status`
    /// to the login and, when that is success, a CONNECT with success; returns every byte
    /// it read.
    fn login_proxy(status: u8) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut all = vec![0u8; 4];
            s.read_exact(&mut all).unwrap();
            s.write_all(&[5, USER_PASS]).unwrap();
            let take = |s: &mut TcpStream, n: usize, all: &mut Vec<u8>| {
                let at = all.len();
                all.resize(at + n, 0);
                s.read_exact(&mut all[at..]).unwrap();
                all[all.len() - 1]
            };
            let ulen = take(&mut s, 2, &mut all);
            let plen = take(&mut s, usize::from(ulen) + 1, &mut all);
            take(&mut s, usize::from(plen), &mut all);
            s.write_all(&[1, status]).unwrap();
            if status == 0 {
                take(&mut s, 10, &mut all);
                s.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34])
                    .unwrap();
            }
            all
        });
        (addr, t)
    }

    #[test]
    fn a_login_is_rfc_1929s_subnegotiation_and_a_rejected_one_is_a_reset() {
        let dst: SocketAddr = "198.19.0.77:80".parse().unwrap();
        let login = Some(("alice".to_string(), "s3cret".to_string()));
        let (p, t) = login_proxy(0);
        let proxy = Proxy::new(p, login.clone()).unwrap();
        assert!(connect(&proxy, dst, Duration::from_secs(5)).is_ok());
        let mut want = vec![5, 2, NO_AUTH, USER_PASS, 1, 5];
        want.extend_from_slice(b"alice");
        want.push(6);
        want.extend_from_slice(b"s3cret");
        want.extend_from_slice(&[5, 1, 0, 1, 198, 19, 0, 77, 0, 80]);
        assert_eq!(t.join().unwrap(), want);

        let (p, t) = login_proxy(1);
        let proxy = Proxy::new(p, login).unwrap();
        let f = connect(&proxy, dst, Duration::from_secs(5)).unwrap_err();
        t.join().unwrap();
        assert_eq!(f.how, Refusal::Reset);
        assert_eq!(
            f.why,
            format!(
                "SOCKS5 proxy {p}: it rejected username \"alice\" and its password (RFC 1929 status 0x01)"
            )
        );
    }

    #[test]
    fn a_proxy_that_wants_a_login_says_so_without_one_and_lengths_are_checked() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut greeting = [0u8; 3];
            s.read_exact(&mut greeting).unwrap();
            s.write_all(&[5, NO_ACCEPTABLE]).unwrap();
        });
        let f = connect_without_login(p);
        t.join().unwrap();
        assert_eq!(
            f.why,
            format!(
                "SOCKS5 proxy {p}: it accepts no method synack offers (no authentication; give --socks5-user for username/password)"
            )
        );
        let long = "x".repeat(256);
        for (user, pass, what) in [
            ("", "pw", "username is 1 to 255 bytes (RFC 1929), not 0"),
            (
                "u",
                long.as_str(),
                "password is 1 to 255 bytes (RFC 1929), not 256",
            ),
        ] {
            let e = Proxy::new(p, Some((user.into(), pass.into()))).unwrap_err();
            assert_eq!(e, format!("a SOCKS5 {what}"));
        }
    }
}
