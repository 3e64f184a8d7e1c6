//! Linux errno names, numbers and messages, as scripts write them and as packetdrill reports
//! them ("got -1 with errno 93 (Protocol not supported)").

use std::io::ErrorKind;

use synack::tcp::Error as TcpError;

/// (name, Linux number, strerror text) for every errno a script or the runner uses.
const TABLE: &[(&str, i32, &str)] = &[
    ("EPERM", 1, "Operation not permitted"),
    ("ENOENT", 2, "No such file or directory"),
    ("EINTR", 4, "Interrupted system call"),
    ("EBADF", 9, "Bad file descriptor"),
    ("EAGAIN", 11, "Resource temporarily unavailable"),
    ("ENOMEM", 12, "Cannot allocate memory"),
    ("EACCES", 13, "Permission denied"),
    ("EFAULT", 14, "Bad address"),
    ("EINVAL", 22, "Invalid argument"),
    ("EPIPE", 32, "Broken pipe"),
    ("ENONET", 64, "Machine is not on the network"),
    ("EPROTO", 71, "Protocol error"),
    ("ENOTSOCK", 88, "Socket operation on non-socket"),
    ("EDESTADDRREQ", 89, "Destination address required"),
    ("EMSGSIZE", 90, "Message too long"),
    ("EPROTOTYPE", 91, "Protocol wrong type for socket"),
    ("ENOPROTOOPT", 92, "Protocol not available"),
    ("EPROTONOSUPPORT", 93, "Protocol not supported"),
    ("EOPNOTSUPP", 95, "Operation not supported"),
    (
        "EAFNOSUPPORT",
        97,
        "Address family not supported by protocol",
    ),
    ("EADDRINUSE", 98, "Address already in use"),
    ("EADDRNOTAVAIL", 99, "Cannot assign requested address"),
    ("ENETUNREACH", 101, "Network is unreachable"),
    ("ECONNABORTED", 103, "Software caused connection abort"),
    ("ECONNRESET", 104, "Connection reset by peer"),
    ("ENOBUFS", 105, "No buffer space available"),
    ("EISCONN", 106, "Transport endpoint is already connected"),
    ("ENOTCONN", 107, "Transport endpoint is not connected"),
    ("ETIMEDOUT", 110, "Connection timed out"),
    ("ECONNREFUSED", 111, "Connection refused"),
    ("EHOSTDOWN", 112, "Host is down"),
    ("EHOSTUNREACH", 113, "No route to host"),
    ("EALREADY", 114, "Operation already in progress"),
    ("EINPROGRESS", 115, "Operation now in progress"),
];

/// An errno value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const EAGAIN: Errno = Errno(11);
    pub const EBADF: Errno = Errno(9);
    pub const EINVAL: Errno = Errno(22);
    pub const EPIPE: Errno = Errno(32);
    pub const ENOPROTOOPT: Errno = Errno(92);
    pub const EPROTONOSUPPORT: Errno = Errno(93);
    pub const EOPNOTSUPP: Errno = Errno(95);
    pub const EAFNOSUPPORT: Errno = Errno(97);
    pub const EISCONN: Errno = Errno(106);
    pub const ENOTCONN: Errno = Errno(107);
    pub const EALREADY: Errno = Errno(114);
    pub const EINPROGRESS: Errno = Errno(115);

    /// The errno a script names (`EPIPE`), if known.
    pub fn from_name(name: &str) -> Option<Errno> {
        TABLE.iter().find(|e| e.0 == name).map(|e| Errno(e.1))
    }

    pub fn name(self) -> &'static str {
        TABLE.iter().find(|e| e.1 == self.0).map_or("E?", |e| e.0)
    }

    pub fn message(self) -> &'static str {
        TABLE
            .iter()
            .find(|e| e.1 == self.0)
            .map_or("Unknown error", |e| e.2)
    }

    /// The errno Linux returns where synack reports `e`: by synack's connection error when
    /// `e` carries one (it tells the ICMP errors apart), else by its kind.
    pub fn from_io(e: &std::io::Error) -> Errno {
        let tcp = e.get_ref().and_then(|i| i.downcast_ref::<TcpError>());
        let name = match tcp {
            Some(TcpError::ProtocolUnreachable) => "ENOPROTOOPT",
            Some(TcpError::HostDown) => "EHOSTDOWN",
            Some(TcpError::HostIsolated) => "ENONET",
            Some(TcpError::ProtocolError) => "EPROTO",
            Some(TcpError::Prohibited) => "EACCES",
            _ => Errno::name_of_kind(e.kind()),
        };
        Errno::from_name(name).unwrap_or(Errno::EINVAL)
    }

    fn name_of_kind(kind: ErrorKind) -> &'static str {
        match kind {
            ErrorKind::WouldBlock => "EAGAIN",
            ErrorKind::BrokenPipe => "EPIPE",
            ErrorKind::ConnectionReset => "ECONNRESET",
            ErrorKind::ConnectionRefused => "ECONNREFUSED",
            ErrorKind::ConnectionAborted => "ECONNABORTED",
            ErrorKind::TimedOut => "ETIMEDOUT",
            ErrorKind::NotConnected => "ENOTCONN",
            ErrorKind::AddrInUse => "EADDRINUSE",
            ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
            ErrorKind::HostUnreachable => "EHOSTUNREACH",
            ErrorKind::NetworkUnreachable => "ENETUNREACH",
            ErrorKind::Unsupported => "EOPNOTSUPP",
            ErrorKind::OutOfMemory => "ENOBUFS",
            _ => "EINVAL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_messages_agree_with_linux() {
        assert_eq!(Errno::from_name("EPROTONOSUPPORT"), Some(Errno(93)));
        assert_eq!(Errno(93).message(), "Protocol not supported");
        assert_eq!(Errno::from_name("EPIPE"), Some(Errno::EPIPE));
        assert_eq!(Errno::EINPROGRESS.name(), "EINPROGRESS");
        assert_eq!(Errno::from_name("ENOSUCH"), None);
        // The errors an ICMP message turns into (Linux icmp_err_convert).
        assert_eq!(Errno::from_name("EHOSTDOWN"), Some(Errno(112)));
        assert_eq!(Errno::from_name("ENONET"), Some(Errno(64)));
        assert_eq!(Errno(71).message(), "Protocol error");
        let e = std::io::Error::from(ErrorKind::ConnectionReset);
        assert_eq!(Errno::from_io(&e).name(), "ECONNRESET");
        // synack's errors, ICMP's included, as Linux reports them.
        for (err, name) in [
            (TcpError::Refused, "ECONNREFUSED"),
            (TcpError::Unreachable, "EHOSTUNREACH"),
            (TcpError::NetUnreachable, "ENETUNREACH"),
            (TcpError::ProtocolUnreachable, "ENOPROTOOPT"),
            (TcpError::HostDown, "EHOSTDOWN"),
            (TcpError::HostIsolated, "ENONET"),
            (TcpError::SourceRouteFailed, "EOPNOTSUPP"),
            (TcpError::ProtocolError, "EPROTO"),
            (TcpError::Prohibited, "EACCES"),
        ] {
            assert_eq!(Errno::from_io(&err.into()).name(), name, "{err:?}");
        }
    }
}
