//! The errors a connection reports to the application, each with its `std::io::ErrorKind`.

use core::fmt;

/// Errors reported to the application. Each maps onto one `std::io::ErrorKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// RST in reply to our SYN (RFC 9293 §3.10.7.3): nobody listens there.
    Refused,
    /// The peer reset the connection.
    Reset,
    /// Retransmissions, SYN retries, keepalive probes or the user timeout ran out.
    TimedOut,
    /// Write after shutdown(Write) or close.
    BrokenPipe,
    /// The call needs a connection that is not (yet, or any more) there.
    NotConnected,
    /// The call does not make sense in this state (e.g. connect on a connected socket).
    InvalidInput,
    /// ICMP said the host is unreachable (Linux EHOSTUNREACH: host unreachable, prohibited,
    /// filtered, precedence, time exceeded; ICMPv6 address unreachable, beyond scope). Fatal
    /// before the connection is synchronized; afterwards a soft error, the reason given if the
    /// connection then times out (RFC 1122 §4.2.3.9).
    Unreachable,
    /// ICMP: the network is unreachable (Linux ENETUNREACH: net unreachable, unknown,
    /// prohibited, unreachable for TOS; ICMPv6 no route).
    NetUnreachable,
    /// ICMP: protocol unreachable (Linux ENOPROTOOPT).
    ProtocolUnreachable,
    /// ICMP: destination host unknown (Linux EHOSTDOWN).
    HostDown,
    /// ICMP: source host isolated (Linux ENONET).
    HostIsolated,
    /// ICMP: source route failed (Linux EOPNOTSUPP).
    SourceRouteFailed,
    /// ICMP parameter problem (Linux EPROTO).
    ProtocolError,
    /// ICMPv6: administratively prohibited, source address failed policy, reject route (Linux
    /// EACCES).
    Prohibited,
}

impl Error {
    pub fn kind(self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            Error::Refused => K::ConnectionRefused,
            Error::Reset => K::ConnectionReset,
            Error::TimedOut => K::TimedOut,
            Error::BrokenPipe => K::BrokenPipe,
            Error::NotConnected => K::NotConnected,
            Error::InvalidInput => K::InvalidInput,
            Error::Unreachable | Error::HostDown => K::HostUnreachable,
            Error::NetUnreachable => K::NetworkUnreachable,
            Error::HostIsolated => K::NetworkDown,
            Error::SourceRouteFailed => K::Unsupported,
            Error::ProtocolUnreachable | Error::ProtocolError => K::Other,
            Error::Prohibited => K::PermissionDenied,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Refused => "connection refused: the peer answered the SYN with a RST (no listener on that port?)",
            Error::Reset => "connection reset by peer",
            Error::TimedOut => "connection timed out: the peer stopped answering",
            Error::BrokenPipe => "broken pipe: this side already shut down writing",
            Error::NotConnected => "not connected",
            Error::InvalidInput => "invalid operation for the connection's state",
            Error::Unreachable => "no route to host (ICMP)",
            Error::NetUnreachable => "network is unreachable (ICMP)",
            Error::ProtocolUnreachable => "protocol not available: ICMP protocol unreachable",
            Error::HostDown => "host is down: ICMP destination host unknown",
            Error::HostIsolated => "machine is not on the network: ICMP source host isolated",
            Error::SourceRouteFailed => "operation not supported: ICMP source route failed",
            Error::ProtocolError => "protocol error: ICMP parameter problem",
            Error::Prohibited => "permission denied: ICMPv6 administratively prohibited",
        })
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        std::io::Error::new(e.kind(), e)
    }
}
