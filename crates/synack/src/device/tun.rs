//! A Linux TUN device: IP packets between synack and the kernel's own network stack.
//!
//! [`Tun::builder`] creates (or attaches to) a TUN interface with `IFF_TUN | IFF_NO_PI`, so every
//! read and write is one bare IP packet; sets its MTU; optionally gives the kernel's side of
//! the interface an address ([`TunBuilder::kernel_addr`]), which also adds the on-link route; and
//! brings it up. The file descriptor is non-blocking: [`Device::recv`] returns `None` when the
//! kernel has nothing queued, and the runtime sleeps in `poll(2)` on
//! [`Device::readable_fd`] until it has.
//!
//! [`TunBuilder::netns`] creates the interface inside a network namespace (such as one made
//! with `ip netns add`): a short-lived helper thread enters the namespace with `setns(2)`,
//! creates and configures the interface there and exits, so the rest of the process stays
//! where it was. The descriptor keeps working from any thread and any namespace.
//!
//! The `ioctl`s are done by the [`tun-rs`](https://crates.io/crates/tun-rs) crate. Reads and
//! writes are one packet per system call: tun-rs batches only with the `vnet_hdr` offloads
//! (TSO/GSO/GRO), which are the next step.
//!
//! Creating a TUN interface needs `CAP_NET_ADMIN` (root, usually) and `/dev/net/tun`;
//! without them [`TunBuilder::open`] fails with a [`TunError`] that says so.

use core::fmt;
use core::net::Ipv4Addr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use super::Device;
use crate::stack::Ipv4Cidr;
use crate::time::Instant;

/// Where Linux keeps the TUN/TAP clone device.
pub const TUN_PATH: &str = "/dev/net/tun";
/// Where `ip netns add NAME` puts a namespace's handle.
pub const NETNS_DIR: &str = "/run/netns";

/// Why a TUN device could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum TunError {
    /// `/dev/net/tun` does not exist (no TUN driver, or a container without the device).
    NoTunDevice,
    /// The caller lacks `CAP_NET_ADMIN` (or cannot open `/dev/net/tun`).
    PermissionDenied(io::Error),
    /// The interface name is empty, too long (15 bytes at most) or contains `/`, NUL or
    /// whitespace.
    BadName(String),
    /// The network namespace could not be entered.
    Namespace {
        /// The namespace's path.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// Anything else, with what was being done.
    Io {
        /// The step that failed.
        context: &'static str,
        /// The error.
        source: io::Error,
    },
}

const DEMO_HINT: &str =
    "(`synack demo` and `synack sim` show the stack on a simulated network without privileges)";

impl fmt::Display for TunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunError::NoTunDevice => write!(
                f,
                "{TUN_PATH} does not exist: a TUN device needs the Linux tun driver (`modprobe tun`) \
                 or, in a container, the device passed in (`--device /dev/net/tun`) {DEMO_HINT}"
            ),
            TunError::PermissionDenied(e) => write!(
                f,
                "creating a TUN interface needs CAP_NET_ADMIN: run as root (e.g. with sudo) or \
                 grant the capability (`setcap cap_net_admin+ep` on the binary) ({e}) {DEMO_HINT}"
            ),
            TunError::BadName(n) => write!(
                f,
                "bad interface name {n:?}: 1 to 15 bytes, no '/', NUL or whitespace"
            ),
            TunError::Namespace { path, source } => write!(
                f,
                "cannot enter network namespace {} ({source}); create it first with \
                 `ip netns add NAME` (needs root)",
                path.display()
            ),
            TunError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for TunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TunError::PermissionDenied(e)
            | TunError::Namespace { source: e, .. }
            | TunError::Io { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

impl From<TunError> for io::Error {
    fn from(e: TunError) -> io::Error {
        let kind = match &e {
            TunError::NoTunDevice => io::ErrorKind::NotFound,
            TunError::PermissionDenied(_) => io::ErrorKind::PermissionDenied,
            TunError::BadName(_) => io::ErrorKind::InvalidInput,
            TunError::Namespace { source, .. } | TunError::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, e)
    }
}

/// Settings for a [`Tun`]; see [`Tun::builder`].
#[derive(Debug, Clone)]
pub struct TunBuilder {
    name: String,
    mtu: u16,
    kernel_addr: Option<Ipv4Cidr>,
    netns: Option<PathBuf>,
}

impl TunBuilder {
    /// The interface MTU (default 1500). The stack on top should use the same.
    pub fn mtu(mut self, mtu: u16) -> TunBuilder {
        self.mtu = mtu;
        self
    }

    /// Gives the kernel's side of the interface this address and prefix (which also routes the
    /// prefix through the interface). Without it, configure the interface yourself
    /// (`ip addr add ... dev NAME`).
    pub fn kernel_addr(mut self, cidr: Ipv4Cidr) -> TunBuilder {
        self.kernel_addr = Some(cidr);
        self
    }

    /// Creates the interface inside this network namespace: a name as `ip netns` knows it
    /// (looked up in `/run/netns`) or a path such as `/proc/PID/ns/net`.
    pub fn netns(mut self, ns: impl AsRef<Path>) -> TunBuilder {
        let ns = ns.as_ref();
        self.netns = Some(if ns.components().count() == 1 && !ns.is_absolute() {
            Path::new(NETNS_DIR).join(ns)
        } else {
            ns.to_path_buf()
        });
        self
    }

    /// Creates the interface (or attaches to an existing persistent one of that name),
    /// configures it, brings it up, and returns the non-blocking device.
    pub fn open(self) -> Result<Tun, TunError> {
        let bad_name = self.name.is_empty()
            || self.name.len() > 15
            || self
                .name
                .chars()
                .any(|c| c == '/' || c == '\0' || c.is_whitespace());
        if bad_name {
            return Err(TunError::BadName(self.name));
        }
        if !Path::new(TUN_PATH).exists() {
            return Err(TunError::NoTunDevice);
        }
        match self.netns.clone() {
            None => self.create(),
            Some(path) => {
                let ns = std::fs::File::open(&path).map_err(|source| TunError::Namespace {
                    path: path.clone(),
                    source,
                })?;
                // Only this helper thread enters the namespace; it exits when done.
                std::thread::scope(|s| {
                    s.spawn(move || {
                        rustix::thread::move_into_link_name_space(
                            ns.as_fd(),
                            Some(rustix::thread::LinkNameSpaceType::Network),
                        )
                        .map_err(|e| TunError::Namespace {
                            path,
                            source: e.into(),
                        })?;
                        self.create()
                    })
                    .join()
                    .unwrap_or_else(|_| {
                        Err(TunError::Io {
                            context: "the thread creating the TUN device panicked",
                            source: io::Error::other("panic"),
                        })
                    })
                })
            }
        }
    }

    /// Creates and configures the interface in the calling thread's network namespace.
    fn create(self) -> Result<Tun, TunError> {
        let mut b = tun_rs::DeviceBuilder::new()
            .name(self.name.clone())
            .mtu(self.mtu)
            .enable(true);
        if let Some(c) = self.kernel_addr {
            b = b.ipv4(c.addr, c.prefix, None::<Ipv4Addr>);
        }
        let dev = b.build_sync().map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => TunError::PermissionDenied(e),
            _ => TunError::Io {
                context: "creating the TUN interface",
                source: e,
            },
        })?;
        dev.set_nonblocking(true).map_err(|source| TunError::Io {
            context: "making the TUN descriptor non-blocking",
            source,
        })?;
        let name = dev.name().unwrap_or(self.name);
        Ok(Tun {
            dev,
            name,
            mtu: self.mtu,
            kernel_addr: self.kernel_addr,
        })
    }
}

/// A TUN interface carrying IPv4/IPv6 packets without a packet-information header.
pub struct Tun {
    dev: tun_rs::SyncDevice,
    name: String,
    mtu: u16,
    kernel_addr: Option<Ipv4Cidr>,
}

impl fmt::Debug for Tun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("kernel_addr", &self.kernel_addr)
            .finish_non_exhaustive()
    }
}

impl Tun {
    /// Settings for a TUN interface called `name` (at most 15 bytes): MTU 1500, no address on
    /// the kernel's side, in this process's network namespace.
    pub fn builder(name: &str) -> TunBuilder {
        TunBuilder {
            name: name.to_string(),
            mtu: 1500,
            kernel_addr: None,
            netns: None,
        }
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel side's address, if the builder set one.
    pub fn kernel_addr(&self) -> Option<Ipv4Cidr> {
        self.kernel_addr
    }
}

impl Device for Tun {
    fn mtu(&self) -> u16 {
        self.mtu
    }

    fn send(&mut self, _now: Instant, packet: &[u8]) -> io::Result<()> {
        loop {
            return match self.dev.send(packet) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            return match self.dev.recv(buf) {
                Ok(n) => Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    fn readable_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.dev.as_fd())
    }
}
