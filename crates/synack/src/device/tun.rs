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
//! The `ioctl`s are done by the [`tun-rs`](https://crates.io/crates/tun-rs) crate.
//!
//! # Offloads: many packets per system call
//!
//! A TUN descriptor carries one packet per `read(2)` or `write(2)`; the only way to move more
//! per call is to make the packets bigger. With [`TunBuilder::offload`] (on by default) the
//! interface is created with `IFF_VNET_HDR` and TCP segmentation offload (`TUN_F_CSUM`,
//! `TUN_F_TSO4`, `TUN_F_TSO6`), and every packet carries a `virtio_net_hdr` in front:
//!
//! * Reading: the kernel hands over a TCP super-segment of up to 64 KiB (GSO) with a partial
//!   checksum in one read; tun-rs splits it into the MTU-sized segments it stands for, each
//!   with its IP and TCP checksums computed, and [`Device::recv`] returns them one by one. The
//!   stack above sees exactly the packets the kernel would have put on a wire, so it checks
//!   checksums and sequence numbers as always.
//! * Writing: [`Device::send`] queues the packet; [`Device::flush`] (the runtime calls it
//!   after each round of sends, and a full queue of 128 flushes itself) writes the queue.
//!   Consecutive segments of one TCP connection are queued as one super-segment as they
//!   come (the `tso` module: same addresses, ports, ACK number, window, options and IP
//!   fields, adjacent sequence numbers, flags ACK or ACK+PSH-last): each segment is built
//!   (by [`Tun::send_with`]) or copied (by [`Device::send`]) with its payload right after
//!   the one before it in the same buffer, so its bytes are neither copied again nor summed
//!   again, and the super-segment is written as one packet with a partial checksum, which
//!   the kernel's TCP takes like a GRO packet from a NIC (one the kernel refuses, `EINVAL`,
//!   is written again as its segments, and no more are built: [`Tun::tso_refusals`]). The
//!   packets between super-segments go through tun-rs, which coalesces what it can of them
//!   (GRO, each segment's checksum verified first; UDP too where the kernel takes UDP
//!   super-segments) and writes the rest as it is.
//!
//! [`Tun::recv_with`] and [`Tun::send_with`] do the same without copying each packet between
//! the device's buffers and the caller's, and say which received packets had their checksum
//! computed here or left to the device by the kernel (for
//! [`Stack::handle_packet_checksummed`](crate::stack::Stack::handle_packet_checksummed)).
//! [`Tun::recv_with`] goes further: it lends a TCP super-segment straight from the read
//! buffer, not split, as one large segment (what a NIC's receive offload, GRO or LRO, hands
//! Linux's TCP), and a packet that is not a super-segment without copying it. The stack
//! takes a segment larger than its MSS like any other; the connection's estimate of the
//! peer's segment size stays capped at the MSS it announced. One read of 64 KiB is then one
//! pass through the stack and one copy into the receive buffer, instead of some forty
//! segments' worth of splitting, checksumming and processing.
//!
//! Without offload ([`TunBuilder::offload`]`(false)`) every packet is one system call, as a
//! plain TUN device works. Packet captures on an offloading interface show the super-segments
//! and their partial checksums (which tshark reports as bad), not the wire packets.
//!
//! # Several queues: one per core
//!
//! [`TunBuilder::open_queues`] creates the interface with `IFF_MULTI_QUEUE` and opens one
//! descriptor per queue (the kernel allows 256). The kernel puts each packet it sends into the
//! interface on one queue by a hash of its flow (the symmetric hash of addresses and ports,
//! remembered per flow from the queue synack last wrote that flow's packets to, for 3 s), so
//! every packet of a connection the kernel opened arrives on the queue its SYN did: one stack
//! per queue, each on its own thread, serves its share of the connections without sharing any
//! state. A connection synack opens itself is kept on the queue it was opened from only while
//! it sends at least every 3 s; after a longer silence the kernel's answers go by the hash,
//! possibly to another queue (whose stack answers with a reset). So shards suit servers.
//!
//! Creating a TUN interface needs `CAP_NET_ADMIN` (root, usually) and `/dev/net/tun`;
//! without them [`TunBuilder::open`] fails with a [`TunError`] that says so.

use core::fmt;
use core::net::Ipv4Addr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use tun_rs::{
    GROTable, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_UDP_L4,
    VIRTIO_NET_HDR_LEN, VirtioNetHdr,
};

use super::Device;
use crate::time::Instant;
use crate::wire::cidr::IpCidr;

mod tso;
use tso::Run;

/// Where Linux keeps the TUN/TAP clone device.
pub const TUN_PATH: &str = "/dev/net/tun";
/// The most queues a multi-queue TUN interface has (`MAX_TAP_QUEUES` in the kernel's tun
/// driver).
pub const MAX_QUEUES: usize = 256;
/// Where `ip netns add NAME` puts a namespace's handle.
pub const NETNS_DIR: &str = "/run/netns";

/// Why a TUN device could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum TunError {
    /// `/dev/net/tun` does not exist (no TUN driver, or a container without the device).
    NoTunDevice,
    /// A number of queues outside 1 to [`MAX_QUEUES`].
    Queues(usize),
    /// The caller lacks `CAP_NET_ADMIN` (or cannot open `/dev/net/tun`).
    PermissionDenied(io::Error),
    /// The interface name is empty, too long (15 bytes at most) or contains `/`, NUL or
    /// whitespace.
    BadName(String),
    /// The MTU is below 68, the least an IPv4 link may have (RFC 791); the kernel refuses it.
    Mtu(u16),
    /// An interface of this name exists and is not a TUN interface that can be attached to
    /// (a loopback, Ethernet or TAP interface, say): the kernel answered `EINVAL`.
    NotTun(String),
    /// The TUN interface exists and another process has it open (`EBUSY`): a TUN interface
    /// without multi-queue has one owner at a time.
    Busy(String),
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
            TunError::Queues(n) => write!(
                f,
                "{n} queues: a multi-queue TUN interface has 1 to {MAX_QUEUES} (one per core is \
                 the useful most)"
            ),
            TunError::BadName(n) => write!(
                f,
                "bad interface name {n:?}: 1 to 15 bytes, no '/', NUL or whitespace"
            ),
            TunError::Mtu(mtu) => write!(
                f,
                "MTU {mtu} is too small: an IPv4 link needs at least 68 (RFC 791), synack at \
                 least {}",
                crate::wire::MIN_MTU
            ),
            TunError::NotTun(n) => write!(
                f,
                "{n} exists and is not a TUN interface (the kernel refused to attach: EINVAL); \
                 choose another name, or see `ip -d link show {n}`"
            ),
            TunError::Busy(n) => write!(
                f,
                "the TUN interface {n} is in use: another process has it open (EBUSY); stop \
                 that process or choose another name"
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
            TunError::BadName(_) | TunError::Mtu(_) | TunError::NotTun(_) | TunError::Queues(_) => {
                io::ErrorKind::InvalidInput
            }
            TunError::Busy(_) => io::ErrorKind::ResourceBusy,
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
    kernel_addrs: Vec<IpCidr>,
    netns: Option<PathBuf>,
    offload: bool,
    txqueuelen: Option<u32>,
    write_thread: bool,
}

impl TunBuilder {
    /// The interface MTU (default 1500). The stack on top should use the same.
    pub fn mtu(mut self, mtu: u16) -> TunBuilder {
        self.mtu = mtu;
        self
    }

    /// Gives the kernel's side of the interface this address and prefix, IPv4 or IPv6 (which
    /// also routes the prefix through the interface); call it once per address, e.g. once per
    /// family for a dual-stack link. Without it, configure the interface yourself
    /// (`ip addr add ... dev NAME`). A TUN link has no link-layer addresses, so the kernel
    /// runs no neighbour discovery (and no duplicate address detection) on it.
    pub fn kernel_addr(mut self, cidr: impl Into<IpCidr>) -> TunBuilder {
        let cidr = cidr.into();
        if !self.kernel_addrs.contains(&cidr) {
            self.kernel_addrs.push(cidr);
        }
        self
    }

    /// Whether to use the `vnet_hdr` offloads: TCP super-segments of up to 64 KiB in each
    /// read and write (see the [module documentation](self)). Default: on. Attaching to an
    /// existing interface changes its offload settings for every user of it.
    pub fn offload(mut self, on: bool) -> TunBuilder {
        self.offload = on;
        self
    }

    /// The interface's transmit queue length in packets (`ip link set NAME txqueuelen N`):
    /// how many packets the kernel holds for the reader before it drops (counted as the
    /// interface's TX drops). Default: the kernel's, 500 for a TUN interface, which a reader
    /// that is scheduled out for 10 ms at 40,000 packets/s (500 Mbit/s of 1,500-byte UDP)
    /// overflows.
    pub fn txqueuelen(mut self, packets: u32) -> TunBuilder {
        self.txqueuelen = Some(packets);
        self
    }

    /// Whether an offloading interface writes on a thread of its own (default: off). Each
    /// [`Device::flush`] then hands its queue of packets to that thread and goes on with an
    /// empty one: the coalescing into super-segments, the write, and the kernel's receive
    /// work that runs inside a TUN write (the whole receiving TCP, for a local peer) leave the
    /// caller's thread. Packets keep their order; a write error counts as dropped packets
    /// (TCP retransmits) instead of being returned. No effect without offloads.
    pub fn write_thread(mut self, on: bool) -> TunBuilder {
        self.write_thread = on;
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
        let mut queues = self.open_n(1, false)?;
        queues.pop().ok_or_else(|| TunError::Io {
            context: "opening the TUN device",
            source: io::Error::other("no descriptor"),
        })
    }

    /// Like [`open`](Self::open), with `IFF_MULTI_QUEUE` and `queues` descriptors, one per
    /// queue, each a [`Tun`] with buffers (and write thread) of its own, for one thread each
    /// (see the [module documentation](self#several-queues-one-per-core)). `queues` is 1 to
    /// [`MAX_QUEUES`]. An existing interface must have been created multi-queue too.
    ///
    /// ```no_run
    /// # use synack::device::tun::Tun;
    /// let queues = Tun::builder("tun0").kernel_addr("198.18.0.1/24".parse::<synack::stack::IpCidr>()?)
    ///     .open_queues(2)?;
    /// assert_eq!(queues.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_queues(self, queues: usize) -> Result<Vec<Tun>, TunError> {
        if !(1..=MAX_QUEUES).contains(&queues) {
            return Err(TunError::Queues(queues));
        }
        self.open_n(queues, true)
    }

    fn open_n(self, queues: usize, multi: bool) -> Result<Vec<Tun>, TunError> {
        let bad_name = self.name.is_empty()
            || self.name.len() > 15
            || self
                .name
                .chars()
                .any(|c| c == '/' || c == '\0' || c.is_whitespace());
        if bad_name {
            return Err(TunError::BadName(self.name));
        }
        // RFC 791: every IPv4 module must handle 68-byte datagrams without fragmenting them.
        if self.mtu < 68 {
            return Err(TunError::Mtu(self.mtu));
        }
        if !Path::new(TUN_PATH).exists() {
            return Err(TunError::NoTunDevice);
        }
        match self.netns.clone() {
            None => self.create(queues, multi),
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
                        // The queues are attached here too: TUNSETIFF finds the interface
                        // in the namespace the descriptor was opened in.
                        self.create(queues, multi)
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

    /// Creates and configures the interface in the calling thread's network namespace, and
    /// opens `queues` descriptors on it (`multi`: with `IFF_MULTI_QUEUE`).
    fn create(self, queues: usize, multi: bool) -> Result<Vec<Tun>, TunError> {
        let mut b = tun_rs::DeviceBuilder::new()
            .name(self.name.clone())
            .mtu(self.mtu)
            .offload(self.offload)
            .multi_queue(multi)
            .enable(true);
        if let Some(n) = self.txqueuelen {
            b = b.tx_queue_len(n);
        }
        for c in &self.kernel_addrs {
            b = match *c {
                IpCidr::V4(c) => b.ipv4(c.addr, c.prefix, None::<Ipv4Addr>),
                IpCidr::V6(c) => b.ipv6(c.addr, c.prefix),
            };
        }
        let dev = b
            .build_sync()
            .map_err(|e| match (e.kind(), e.raw_os_error()) {
                (io::ErrorKind::PermissionDenied, _) => TunError::PermissionDenied(e),
                (_, Some(EBUSY)) => TunError::Busy(self.name.clone()),
                // With the name and MTU checked above, EINVAL from an interface that exists means
                // the kernel would not attach a TUN descriptor to it.
                (_, Some(EINVAL)) if interface_exists(&self.name) => {
                    TunError::NotTun(self.name.clone())
                }
                _ => TunError::Io {
                    context: "creating the TUN interface",
                    source: e,
                },
            })?;
        let name = dev.name().unwrap_or(self.name);
        let mut devs = Vec::with_capacity(queues);
        for _ in 1..queues {
            // tun-rs attaches one more descriptor to the interface (TUNSETIFF with its name and
            // flags), with the same offloads.
            devs.push(dev.try_clone().map_err(|source| TunError::Io {
                context: "opening another queue of the TUN interface",
                source,
            })?);
        }
        devs.insert(0, dev);
        devs.into_iter()
            .map(|dev| {
                dev.set_nonblocking(true).map_err(|source| TunError::Io {
                    context: "making the TUN descriptor non-blocking",
                    source,
                })?;
                let offload = dev.tcp_gso().then(|| Box::new(Offload::new(self.mtu)));
                let dev = Arc::new(dev);
                let writer = match (&offload, self.write_thread) {
                    (Some(o), true) => {
                        Some(Writer::start(dev.clone(), o.tso_refused.clone()).map_err(
                            |source| TunError::Io {
                                context: "starting the TUN device's write thread",
                                source,
                            },
                        )?)
                    }
                    _ => None,
                };
                Ok(Tun {
                    dev,
                    name: name.clone(),
                    mtu: self.mtu,
                    kernel_addrs: self.kernel_addrs.clone(),
                    offload,
                    writer,
                })
            })
            .collect()
    }
}

/// `errno` values the kernel answers TUNSETIFF with (asm-generic/errno-base.h).
const EBUSY: i32 = 16;
const EINVAL: i32 = 22;

/// Whether the calling thread's network namespace has an interface called `name`
/// (`/proc/thread-self/net/dev` lists the thread's namespace, which [`TunBuilder::netns`]
/// switches).
fn interface_exists(name: &str) -> bool {
    std::fs::read_to_string("/proc/thread-self/net/dev").is_ok_and(|list| {
        list.lines()
            .filter_map(|l| l.split_once(':'))
            .any(|(n, _)| n.trim() == name)
    })
}

/// virtio 1.2 §5.1.6: the header's `flags` bit for "checksum left to the device" and the
/// `gso_type` of a packet that is not a super-segment.
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
/// virtio 1.2 §5.1.6: the `gso_type` bit for a super-segment whose first segment has CWR.
const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

/// Packets queued for [`Tun::flush`] at most (tun-rs's `IDEAL_BATCH_SIZE`).
const TX_QUEUE: usize = tun_rs::IDEAL_BATCH_SIZE;
/// Segments one read can split into at most: a 64 KiB super-segment of 536-byte segments.
const RX_SEGMENTS: usize = tun_rs::IDEAL_BATCH_SIZE;
/// The largest IP packet, so the largest super-segment a write carries.
const MAX_IP_PACKET: usize = u16::MAX as usize;

/// The buffers of an offloading [`Tun`].
struct Offload {
    /// One read: the virtio-net header and a (super-)packet.
    raw: Vec<u8>,
    /// The segments of the last read, their lengths, how many, and the next to hand out.
    rx: Vec<Vec<u8>>,
    rx_len: Vec<usize>,
    rx_count: usize,
    rx_next: usize,
    /// The last read is handed over whole from `raw` (its length there, header included;
    /// 0 when its segments are in `rx`): [`Tun::recv_with`] passes a TCP super-segment to
    /// the stack as the one large segment it is, as a NIC's receive offload (GRO/LRO) does.
    rx_whole: usize,
    /// The last read's virtio-net header said the kernel left the checksum to us
    /// (`VIRTIO_NET_HDR_F_NEEDS_CSUM`) or that it is a super-segment: either way tun-rs
    /// computed the segments' checksums.
    rx_checksummed: bool,
    /// Packets waiting for [`Tun::flush`], each behind `VIRTIO_NET_HDR_LEN` bytes of room for
    /// its header. Each buffer has room for a whole super-segment: tun-rs coalesces into the
    /// first buffer of a run only as far as its capacity allows, without reallocating.
    /// A queued buffer keeps the longest length it had (what lies past its packet's end,
    /// `tx_end`, is left over): the room a packet is built in is zero-filled only where the
    /// buffer never reached, not again for each segment. [`Offload::take_queued`] cuts each
    /// back to its packet for writing.
    tx: Vec<Vec<u8>>,
    /// Where each queued packet ends in its buffer (virtio-net header included).
    tx_end: Vec<usize>,
    tx_count: usize,
    /// The TCP super-segment being built in the last queued buffer (`tx[tx_count - 1]`),
    /// finished when a packet that does not join it is queued or at [`Tun::flush`].
    run: Option<Run>,
    gro: GROTable,
    /// Super-segments the kernel refused with `EINVAL` ([`write_batch`]), shared with the
    /// write thread: after the first, no more are built here (each segment goes on its own,
    /// through tun-rs), so a header this kernel does not take cannot stall a connection.
    tso_refused: Arc<AtomicU64>,
}

impl Offload {
    fn new(mtu: u16) -> Offload {
        let seg = usize::from(mtu).max(1280);
        let mut rx = vec![vec![0u8; seg]; RX_SEGMENTS];
        // A packet that is not a super-segment lands whole in the first buffer.
        rx[0].resize(MAX_IP_PACKET, 0);
        Offload {
            raw: vec![0u8; VIRTIO_NET_HDR_LEN + MAX_IP_PACKET],
            rx,
            rx_len: vec![0; RX_SEGMENTS],
            rx_count: 0,
            rx_next: 0,
            rx_whole: 0,
            rx_checksummed: false,
            tx: tx_batch(),
            tx_end: vec![0; TX_QUEUE],
            tx_count: 0,
            run: None,
            gro: GROTable::new(),
            tso_refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues the packet `fill` writes into `room` bytes (returning its length, or `None`
    /// for no packet); true if there was one. A TCP segment that continues the super-segment
    /// being built in the last buffer is written in place there, its payload right after
    /// the one before it ([`tso`]); any other packet gets a buffer of its own and may begin
    /// a super-segment. The queue must have a free buffer.
    fn put(&mut self, room: usize, fill: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        if let Some(mut run) = self.run.take() {
            let (queued, free) = self.tx.split_at_mut(self.tx_count);
            let (Some(b), Some(end)) = (queued.last_mut(), self.tx_end[..self.tx_count].last_mut())
            else {
                return false;
            };
            let Some(spare) = free.first_mut() else {
                // A full queue (the callers flush before): the run ends here.
                run.finish(&mut b[..*end]);
                return false;
            };
            let h = run.headers;
            if run.open(*end - VIRTIO_NET_HDR_LEN, room) && *end - h + room <= b.capacity() {
                // The segment's headers go over the last `h` bytes of payload, kept here.
                let at = *end - h;
                let mut saved = [0u8; tso::MAX_HEADERS];
                saved[..h].copy_from_slice(&b[at..*end]);
                grow(b, at + room);
                let Some(n) = fill(&mut b[at..at + room]).map(|n| n.min(room)) else {
                    b[at..*end].copy_from_slice(&saved[..h]);
                    self.run = Some(run);
                    return false;
                };
                let (head, seg) = b.split_at(at);
                let first = &head[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + h];
                if run.join(first, &seg[..n]) {
                    b[at..*end].copy_from_slice(&saved[..h]);
                    *end = at + n;
                    self.run = Some(run);
                    return true;
                }
                // Not the run's: the packet moves to a buffer of its own.
                grow(spare, VIRTIO_NET_HDR_LEN + n);
                spare[..VIRTIO_NET_HDR_LEN].fill(0);
                spare[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + n].copy_from_slice(&b[at..at + n]);
                b[at..*end].copy_from_slice(&saved[..h]);
                run.finish(&mut b[..*end]);
                self.tx_end[self.tx_count] = VIRTIO_NET_HDR_LEN + n;
                self.tx_count += 1;
                self.run = Run::start(&spare[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + n])
                    .filter(|_| self.tso_refused.load(Ordering::Relaxed) == 0);
                return true;
            }
            run.finish(&mut b[..*end]);
        }
        let b = &mut self.tx[self.tx_count];
        grow(b, VIRTIO_NET_HDR_LEN + room);
        b[..VIRTIO_NET_HDR_LEN].fill(0);
        match fill(&mut b[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + room]) {
            Some(n) => {
                let end = VIRTIO_NET_HDR_LEN + n.min(room);
                self.tx_end[self.tx_count] = end;
                self.tx_count += 1;
                self.run = Run::start(&b[VIRTIO_NET_HDR_LEN..end])
                    .filter(|_| self.tso_refused.load(Ordering::Relaxed) == 0);
                true
            }
            None => false,
        }
    }

    /// The queued packets, the super-segment being built finished: the queue is empty
    /// afterwards (the buffers stay, to be written).
    fn take_queued(&mut self) -> usize {
        let n = std::mem::take(&mut self.tx_count);
        for (b, &end) in self.tx[..n].iter_mut().zip(&self.tx_end) {
            b.truncate(end);
        }
        if let Some(run) = self.run.take() {
            if let Some(b) = self.tx[..n].last_mut() {
                run.finish(b);
            }
        }
        n
    }
}

/// Makes `b` at least `len` long: zero-fills only the part it never had (its capacity stays).
fn grow(b: &mut Vec<u8>, len: usize) {
    if b.len() < len {
        b.resize(len, 0);
    }
}

/// Where [`write_batch`] writes: the TUN device (a test's fake in the tests).
trait TxSink {
    /// Writes `bufs` (each behind `VIRTIO_NET_HDR_LEN` bytes of room for its virtio-net
    /// header) through tun-rs, which coalesces what it can.
    fn send_coalesced(&self, gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> io::Result<()>;
    /// Writes one packet behind its virtio-net header as it is.
    fn write_packet(&self, b: &[u8]) -> io::Result<()>;
}

impl TxSink for tun_rs::SyncDevice {
    fn send_coalesced(&self, gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> io::Result<()> {
        self.send_multiple(gro, bufs, VIRTIO_NET_HDR_LEN)
            .map(|_| ())
    }

    fn write_packet(&self, b: &[u8]) -> io::Result<()> {
        retry(|| rustix::io::write(self, b).map_err(io::Error::from)).map(|_| ())
    }
}

/// Writes `bufs` (each a virtio-net header and a packet) in order: a super-segment built
/// here ([`tso`]) as it is, the packets between them through tun-rs, which coalesces
/// consecutive segments of a flow (verifying each one's checksum first). On an error the
/// rest is still written, and the first error is returned.
///
/// A super-segment the kernel does not take is written again as the segments it stands
/// for, one write each: dropped, it would come back the same from the retransmission and
/// be refused again. `EINVAL` (Linux `tun_get_user` when `virtio_net_hdr_to_skb` rejects
/// the header) counts in `refused`, which stops [`Offload`] building more.
fn write_batch(
    dev: &impl TxSink,
    gro: &mut GROTable,
    bufs: &mut [Vec<u8>],
    refused: &AtomicU64,
) -> io::Result<()> {
    let mut result = Ok(());
    let mut from = 0;
    for i in 0..bufs.len() {
        // virtio 1.2 §5.1.6: gso_type, the header's second byte.
        if bufs[i][1] == VIRTIO_NET_HDR_GSO_NONE {
            continue;
        }
        if from < i {
            result = result.and(dev.send_coalesced(gro, &mut bufs[from..i]));
        }
        if let Err(e) = dev.write_packet(&bufs[i]) {
            if e.raw_os_error() == Some(EINVAL) {
                refused.fetch_add(1, Ordering::Relaxed);
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    target: "synack",
                    "the TUN device refused a TCP super-segment ({e}): its segments go singly"
                );
            }
            result = result.and(write_split(dev, &mut bufs[i]));
        }
        from = i + 1;
    }
    if from < bufs.len() {
        result = result.and(dev.send_coalesced(gro, &mut bufs[from..]));
    }
    result
}

/// Writes the super-segment `b` (a virtio-net header and the packet) as the segments it
/// stands for, each with its checksums computed, one write each; the first error is
/// returned, the rest still written.
fn write_split(dev: &impl TxSink, b: &mut [u8]) -> io::Result<()> {
    let hdr = VirtioNetHdr::decode(&b[..VIRTIO_NET_HDR_LEN])?;
    let (hdr_len, size) = (usize::from(hdr.hdr_len), usize::from(hdr.gso_size).max(1));
    let count = b
        .len()
        .saturating_sub(VIRTIO_NET_HDR_LEN + hdr_len)
        .div_ceil(size);
    // Rare (the first refusal turns the super-segments off): buffers of its own. Their
    // first bytes, zero, are each segment's virtio-net header (no offload).
    let mut segs = vec![vec![0u8; VIRTIO_NET_HDR_LEN + hdr_len + size]; count];
    let mut lens = vec![0; count];
    let v6 = b.get(VIRTIO_NET_HDR_LEN).is_some_and(|v| v >> 4 == 6);
    let p = &mut b[VIRTIO_NET_HDR_LEN..];
    let k = tun_rs::gso_split(p, hdr, &mut segs, &mut lens, VIRTIO_NET_HDR_LEN, v6)?;
    let mut result = Ok(());
    for (s, n) in segs.iter().zip(lens).take(k) {
        result = result.and(dev.write_packet(&s[..VIRTIO_NET_HDR_LEN + n]));
    }
    result
}

/// A queue of [`TX_QUEUE`] packet buffers, each with room for a whole super-segment.
fn tx_batch() -> Vec<Vec<u8>> {
    (0..TX_QUEUE)
        .map(|_| Vec::with_capacity(2 * VIRTIO_NET_HDR_LEN + MAX_IP_PACKET))
        .collect()
}

/// A batch of packets for the write thread: the buffers and how many hold a packet.
type Batch = (Vec<Vec<u8>>, usize);

/// The write thread of a [`Tun`] ([`TunBuilder::write_thread`]).
struct Writer {
    /// Batches to write (two at most wait: a flush past that waits for the thread).
    batches: Option<mpsc::SyncSender<Batch>>,
    /// Written batches, back for reuse.
    free: mpsc::Receiver<Vec<Vec<u8>>>,
    /// Packets in batches the kernel refused.
    errors: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(dev: Arc<tun_rs::SyncDevice>, refused: Arc<AtomicU64>) -> io::Result<Writer> {
        let (batches, rx) = mpsc::sync_channel::<Batch>(2);
        let (back, free) = mpsc::channel();
        let errors = Arc::new(AtomicU64::new(0));
        let errs = errors.clone();
        let thread = std::thread::Builder::new()
            .name("synack-tun-tx".into())
            .spawn(move || {
                let mut gro = GROTable::new();
                for (mut bufs, n) in rx {
                    if write_batch(&*dev, &mut gro, &mut bufs[..n], &refused).is_err() {
                        errs.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    if back.send(bufs).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Writer {
            batches: Some(batches),
            free,
            errors,
            thread: Some(thread),
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The thread writes what is queued, then ends.
        self.batches = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TUN interface carrying IPv4/IPv6 packets without a packet-information header.
pub struct Tun {
    dev: Arc<tun_rs::SyncDevice>,
    name: String,
    mtu: u16,
    kernel_addrs: Vec<IpCidr>,
    offload: Option<Box<Offload>>,
    writer: Option<Writer>,
}

impl fmt::Debug for Tun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("kernel_addrs", &self.kernel_addrs)
            .field("offload", &self.offload.is_some())
            .field("write_thread", &self.writer.is_some())
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
            kernel_addrs: Vec::new(),
            netns: None,
            offload: true,
            txqueuelen: None,
            write_thread: false,
        }
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel side's addresses the builder set.
    pub fn kernel_addrs(&self) -> &[IpCidr] {
        &self.kernel_addrs
    }

    /// Packets the write thread ([`TunBuilder::write_thread`]) could not write (in batches
    /// the kernel refused); 0 without one.
    pub fn write_errors(&self) -> u64 {
        self.writer
            .as_ref()
            .map_or(0, |w| w.errors.load(Ordering::Relaxed))
    }

    /// TCP super-segments built here that the kernel refused (`EINVAL`), each then written
    /// as its segments; after the first, no more are built (the segments go singly, through
    /// tun-rs's coalescing). 0 without offloads.
    pub fn tso_refusals(&self) -> u64 {
        self.offload
            .as_ref()
            .map_or(0, |o| o.tso_refused.load(Ordering::Relaxed))
    }

    /// Whether the interface uses the `vnet_hdr` offloads ([`TunBuilder::offload`]).
    pub fn offload(&self) -> bool {
        self.offload.is_some()
    }

    /// [`Device::recv`] without its copy: the next packet is lent to `f`, straight from the
    /// device's own buffers when it offloads (`buf` is where a packet is read otherwise).
    /// `Ok(None)` when nothing is waiting.
    ///
    /// `f`'s second argument is true when the packet's TCP or UDP checksum was computed
    /// here, from the kernel's own packet (it handed over a super-segment, or a packet with
    /// the checksum left to the device, `VIRTIO_NET_HDR_F_NEEDS_CSUM`), so verifying it again
    /// is wasted work: give such packets to
    /// [`Stack::handle_packet_checksummed`](crate::stack::Stack::handle_packet_checksummed).
    pub fn recv_with<R>(
        &mut self,
        buf: &mut [u8],
        f: impl FnOnce(&[u8], bool) -> R,
    ) -> io::Result<Option<R>> {
        if self.offload.is_none() {
            return Ok(self.recv(Instant::ZERO, buf)?.map(|n| f(&buf[..n], false)));
        }
        Ok(self
            .next_segment(true)?
            .map(|(p, checksummed)| f(p, checksummed)))
    }

    /// The next segment of the last read (reading the device when none waits), and whether
    /// its checksum was computed here (or left to us by the kernel); offloading devices only.
    /// With `whole`, a TCP super-segment or a single packet read now comes straight from the
    /// read buffer, not split or copied.
    fn next_segment(&mut self, whole: bool) -> io::Result<Option<(&[u8], bool)>> {
        if !self.refill(whole)? {
            return Ok(None);
        }
        let Some(o) = self.offload.as_mut() else {
            return Ok(None);
        };
        let i = o.rx_next;
        o.rx_next += 1;
        if o.rx_whole > 0 {
            return Ok(Some((
                &o.raw[VIRTIO_NET_HDR_LEN..o.rx_whole],
                o.rx_checksummed,
            )));
        }
        Ok(Some((&o.rx[i][..o.rx_len[i]], o.rx_checksummed)))
    }

    /// [`Device::send`] without its copy: `fill` writes a packet of at most `buf.len()` bytes
    /// (65,535 at most with offloads, the largest IP packet, as [`Device::send`] takes)
    /// straight into the device's queue (or into `buf`, sent at once, when it does not
    /// offload) and returns its length, or `None` for no packet. True if there was one. The
    /// caller sizes `buf` to the largest packet it builds (the runtime: its hosts' MTU, which
    /// may exceed the device's): the room is zero-filled where the queue's buffer never
    /// reached, so a larger `buf` than needed costs a memset. A packet the kernel refuses is
    /// dropped, as with [`Device::send`]'s errors.
    pub fn send_with(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> io::Result<bool> {
        let room = buf.len().min(MAX_IP_PACKET);
        let Some(o) = self.offload.as_mut() else {
            let Some(n) = fill(buf) else {
                return Ok(false);
            };
            return retry(|| self.dev.send(&buf[..n])).map(|_| true);
        };
        if o.tx_count == TX_QUEUE {
            self.flush(now)?;
        }
        let Some(o) = self.offload.as_mut() else {
            return Ok(false);
        };
        Ok(o.put(room, fill))
    }

    /// Makes sure a segment of the last read waits (reading the device when none does);
    /// false when the device has nothing. With `whole`, what the read gives is kept whole
    /// in the read buffer unless it is a UDP super-segment.
    fn refill(&mut self, whole: bool) -> io::Result<bool> {
        let Some(o) = self.offload.as_mut() else {
            return Ok(false);
        };
        if o.rx_next == o.rx_count {
            o.rx_next = 0;
            o.rx_count = 0;
            o.rx_whole = 0;
            let Offload {
                raw, rx, rx_len, ..
            } = &mut **o;
            if whole {
                let (n, checksummed) = match retry(|| read_whole(&self.dev, raw, rx, rx_len)) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e),
                };
                match n {
                    Read::Whole(len) => {
                        o.rx_whole = len;
                        o.rx_count = 1;
                    }
                    Read::Split(count) => o.rx_count = count.min(RX_SEGMENTS),
                }
                o.rx_checksummed = checksummed;
                return Ok(o.rx_next < o.rx_count);
            }
            match retry(|| self.dev.recv_multiple(raw, rx, rx_len, 0)) {
                Ok(n) => {
                    // virtio 1.2 §5.1.6: flags, then gso_type.
                    let checksummed = kernel_checksummed(raw[0], raw[1]);
                    o.rx_count = n.min(RX_SEGMENTS);
                    o.rx_checksummed = checksummed;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(o.rx_next < o.rx_count)
    }
}

/// Whether a read packet's checksum is the kernel's business (left to the device, or the
/// partial one of a super-segment), from its virtio-net header's flags and gso_type: either
/// way the packet is the kernel's own and needs no verifying.
fn kernel_checksummed(flags: u8, gso_type: u8) -> bool {
    flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 || gso_type != VIRTIO_NET_HDR_GSO_NONE
}

/// What [`read_whole`] made of a read.
enum Read {
    /// One packet, kept in the read buffer: its length there, header included.
    Whole(usize),
    /// A UDP super-segment, split into this many segments.
    Split(usize),
}

/// Reads one packet with its virtio-net header into `raw`. A TCP super-segment or a packet
/// that is not a super-segment stays there whole; a UDP super-segment is split into `rx`
/// (the stack takes one datagram per packet). Also says whether the checksum is the
/// kernel's business (left to the device, or the partial one of a super-segment): either
/// way the packet is the kernel's own and needs no verifying.
fn read_whole(
    dev: &tun_rs::SyncDevice,
    raw: &mut [u8],
    rx: &mut [Vec<u8>],
    rx_len: &mut [usize],
) -> io::Result<(Read, bool)> {
    let n = dev.recv(raw)?;
    if n <= VIRTIO_NET_HDR_LEN {
        return Err(io::Error::other(format!(
            "a TUN read of {n} bytes, no longer than its virtio-net header"
        )));
    }
    let mut hdr = VirtioNetHdr::decode(&raw[..VIRTIO_NET_HDR_LEN])?;
    let gso = hdr.gso_type & !VIRTIO_NET_HDR_GSO_ECN;
    let checksummed = kernel_checksummed(hdr.flags, hdr.gso_type);
    if matches!(
        gso,
        VIRTIO_NET_HDR_GSO_NONE | VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_TCPV6
    ) {
        return Ok((Read::Whole(n), checksummed));
    }
    if gso != VIRTIO_NET_HDR_GSO_UDP_L4 {
        return Err(io::Error::other(format!(
            "a TUN read of an unknown super-segment type {}",
            hdr.gso_type
        )));
    }
    // The UDP header follows the IP header, which ends where the checksum starts.
    hdr.hdr_len = hdr.csum_start.saturating_add(8);
    let is_v6 = raw[VIRTIO_NET_HDR_LEN] >> 4 == 6;
    let count = tun_rs::gso_split(&mut raw[VIRTIO_NET_HDR_LEN..n], hdr, rx, rx_len, 0, is_v6)?;
    Ok((Read::Split(count), checksummed))
}

/// Retries a system call interrupted by a signal.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

impl Device for Tun {
    fn mtu(&self) -> u16 {
        self.mtu
    }

    fn send(&mut self, now: Instant, packet: &[u8]) -> io::Result<()> {
        let Some(o) = self.offload.as_mut() else {
            return retry(|| self.dev.send(packet)).map(|_| ());
        };
        if packet.len() > MAX_IP_PACKET {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "packet longer than an IP packet can be",
            ));
        }
        if o.tx_count == TX_QUEUE {
            self.flush(now)?;
        }
        let Some(o) = self.offload.as_mut() else {
            return Ok(());
        };
        o.put(packet.len(), |b| {
            b.copy_from_slice(packet);
            Some(packet.len())
        });
        Ok(())
    }

    fn flush(&mut self, _now: Instant) -> io::Result<()> {
        let Some(o) = self.offload.as_mut() else {
            return Ok(());
        };
        if o.tx_count == 0 {
            return Ok(());
        }
        let n = o.take_queued();
        if let Some(w) = &self.writer {
            let next = w.free.try_recv().unwrap_or_else(|_| tx_batch());
            let batch = std::mem::replace(&mut o.tx, next);
            return match &w.batches {
                Some(b) => b
                    .send((batch, n))
                    .map_err(|_| io::Error::other("the TUN device's write thread ended")),
                None => Ok(()),
            };
        }
        // Coalesces and writes; on an error the rest of the batch is still tried, and the
        // batch is gone either way (TCP retransmits what the kernel did not take). Not
        // retried: the buffers are coalesced in place.
        write_batch(&*self.dev, &mut o.gro, &mut o.tx[..n], &o.tso_refused)
    }

    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.offload.is_none() {
            return match retry(|| self.dev.recv(buf)) {
                Ok(n) => Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            };
        }
        Ok(self.next_segment(false)?.map(|(p, _)| {
            let n = p.len().min(buf.len());
            buf[..n].copy_from_slice(&p[..n]);
            n
        }))
    }

    /// [`Tun::send_with`]: with offloads, the packet is built in the transmit queue (a
    /// segment that joins a super-segment right after the one before it), not copied there.
    fn send_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        fill: &mut dyn FnMut(&mut [u8]) -> Option<usize>,
    ) -> io::Result<Option<usize>> {
        let mut len = None;
        self.send_with(now, buf, |b| {
            len = fill(b);
            len
        })?;
        Ok(len)
    }

    /// [`Tun::recv_with`]: a TCP super-segment is lent whole.
    fn recv_in_place(
        &mut self,
        _now: Instant,
        buf: &mut [u8],
        f: &mut dyn FnMut(&[u8], bool),
    ) -> io::Result<bool> {
        Ok(Tun::recv_with(self, buf, f)?.is_some())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        // Segments of the last read still waiting: at once (the descriptor may not be
        // readable again until the kernel queues more).
        self.offload
            .as_ref()
            .filter(|o| o.rx_next < o.rx_count)
            .map(|_| Instant::ZERO)
    }

    fn readable_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.dev.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{Checksum, checksum, pseudo_header_v4, pseudo_header_v6};

    const ACK: u8 = 0x10;
    const PSH: u8 = 0x08;

    /// An IPv4 TCP segment from 198.18.0.2:80 to 198.18.0.1:`dport` with a timestamp
    /// option, `len` bytes of payload, IP identification `id`, and its checksums.
    fn segment(dport: u16, seq: u32, flags: u8, id: u16, len: usize) -> Vec<u8> {
        let total = 20 + 32 + len;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[4..6].copy_from_slice(&id.to_be_bytes());
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[198, 18, 0, 2]);
        p[16..20].copy_from_slice(&[198, 18, 0, 1]);
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let t = &mut p[20..];
        t[0..2].copy_from_slice(&80u16.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&7777u32.to_be_bytes());
        t[12] = 8 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&512u16.to_be_bytes());
        t[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 3]);
        for (i, b) in t[32..].iter_mut().enumerate() {
            *b = (seq as usize + i) as u8;
        }
        let src = Ipv4Addr::new(198, 18, 0, 2);
        let dst = Ipv4Addr::new(198, 18, 0, 1);
        let mut c: Checksum =
            pseudo_header_v4(src, dst, crate::wire::IpProtocol::Tcp, (total - 20) as u32);
        c.add_bytes(t);
        let sum = c.finish();
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        p
    }

    /// The same segment over IPv6, from fd00:5ac::2 to fd00:5ac::1.
    fn segment6(dport: u16, seq: u32, flags: u8, len: usize) -> Vec<u8> {
        let v4 = segment(dport, seq, flags, 0, len);
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((v4.len() - 20) as u16).to_be_bytes());
        p[6] = 6;
        p[7] = 64;
        let src: core::net::Ipv6Addr = "fd00:5ac::2".parse().unwrap();
        let dst: core::net::Ipv6Addr = "fd00:5ac::1".parse().unwrap();
        p[8..24].copy_from_slice(&src.octets());
        p[24..40].copy_from_slice(&dst.octets());
        p.extend_from_slice(&v4[20..]);
        let t = &mut p[40..];
        t[16..18].fill(0);
        let tcp_len = t.len() as u32;
        let mut c = pseudo_header_v6(src, dst, crate::wire::IpProtocol::Tcp, tcp_len);
        c.add_bytes(t);
        let sum = c.finish();
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        p
    }

    /// Asserts that `b` (a virtio-net header and a super-segment, as [`Run::finish`]
    /// leaves it) is what Linux takes: the header as `virtio_net_hdr_to_skb` wants it for a
    /// TCP GSO packet with a partial checksum (csum_start at the TCP header, csum_offset the
    /// checksum field's, hdr_len the headers', gso_size less than the payload), the IP
    /// header's lengths (and IPv4 checksum) for the whole packet, and a TCP checksum field
    /// that, completed as the device does (the sum from csum_start to the end, complemented,
    /// into the field), makes a checksum that verifies.
    fn check_super_segment(b: &[u8]) {
        let hdr = VirtioNetHdr::decode(&b[..VIRTIO_NET_HDR_LEN]).unwrap();
        let p = &b[VIRTIO_NET_HDR_LEN..];
        let v6 = p[0] >> 4 == 6;
        let ip = if v6 { 40 } else { 20 };
        let headers = ip + usize::from(p[ip + 12] >> 4) * 4;
        let gso = if v6 {
            VIRTIO_NET_HDR_GSO_TCPV6
        } else {
            VIRTIO_NET_HDR_GSO_TCPV4
        };
        assert_eq!(hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
        assert_eq!(
            (hdr.gso_type, hdr.csum_start, hdr.csum_offset, hdr.hdr_len),
            (gso, ip as u16, 16, headers as u16)
        );
        assert!(hdr.gso_size > 0 && usize::from(hdr.gso_size) < p.len() - headers);
        let tcp_len = (p.len() - ip) as u32;
        let mut pseudo = if v6 {
            assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len() - 40);
            let src: [u8; 16] = p[8..24].try_into().unwrap();
            let dst: [u8; 16] = p[24..40].try_into().unwrap();
            pseudo_header_v6(
                src.into(),
                dst.into(),
                crate::wire::IpProtocol::Tcp,
                tcp_len,
            )
        } else {
            assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
            assert_eq!(checksum(&p[..20]), 0, "IPv4 header checksum");
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            pseudo_header_v4(src, dst, crate::wire::IpProtocol::Tcp, tcp_len)
        };
        let mut done = p.to_vec();
        let (start, field) = (usize::from(hdr.csum_start), usize::from(hdr.csum_offset));
        let mut c = Checksum::new();
        c.add_bytes(&done[start..]);
        let at = start + field;
        done[at..at + 2].copy_from_slice(&c.finish().to_be_bytes());
        pseudo.add_bytes(&done[ip..]);
        assert!(
            pseudo.verifies(),
            "the completed TCP checksum does not verify"
        );
    }

    /// The packets queued in `o`, each cut back into the segments it stands for (by
    /// tun-rs's split, as the kernel's GSO cuts a super-segment) after
    /// [`check_super_segment`].
    fn written(o: &mut Offload) -> Vec<Vec<u8>> {
        let n = o.take_queued();
        let mut out = Vec::new();
        for b in &mut o.tx[..n] {
            let hdr = VirtioNetHdr::decode(&b[..VIRTIO_NET_HDR_LEN]).unwrap();
            if hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE {
                out.push(b[VIRTIO_NET_HDR_LEN..].to_vec());
                continue;
            }
            check_super_segment(b);
            let mut segs = vec![vec![0u8; 9100]; 64];
            let mut lens = vec![0; 64];
            let v6 = b[VIRTIO_NET_HDR_LEN] >> 4 == 6;
            let k = tun_rs::gso_split(
                &mut b[VIRTIO_NET_HDR_LEN..],
                hdr,
                &mut segs,
                &mut lens,
                0,
                v6,
            )
            .unwrap();
            out.extend((0..k).map(|i| segs[i][..lens[i]].to_vec()));
        }
        out
    }

    #[test]
    fn consecutive_segments_are_written_as_one_super_segment_that_cuts_back_into_them() {
        let mut o = Offload::new(1500);
        let mss = 1448;
        // Eight full segments, the last with PSH, then one of another flow, then a short one
        // and a full one of the first flow (the short one closes its run).
        let mut sent = Vec::new();
        for i in 0..8u32 {
            let psh = if i == 7 { PSH } else { 0 };
            sent.push(segment(
                5000,
                1000 + i * mss as u32,
                ACK | psh,
                10 + i as u16,
                mss,
            ));
        }
        sent.push(segment(6000, 1, ACK, 50, 100));
        sent.push(segment(5000, 1000 + 8 * mss as u32, ACK, 18, 300));
        sent.push(segment(5000, 1000 + 8 * mss as u32 + 300, ACK, 19, mss));
        for p in &sent {
            assert!(o.put(1500, |b| {
                b[..p.len()].copy_from_slice(p);
                Some(p.len())
            }));
        }
        // One super-segment of eight, the other flow's, and two single ones (a short run
        // of one segment stays the packet it is).
        assert_eq!(o.tx_count, 4);
        assert_eq!(o.tx_end[0], VIRTIO_NET_HDR_LEN + 52 + 8 * mss);
        assert_eq!(written(&mut o), sent);
        assert_eq!(o.tx_count, 0);
        assert!(o.run.is_none());
    }

    #[test]
    fn ipv6_segments_make_a_tcpv6_super_segment_closed_by_a_short_one() {
        let mut o = Offload::new(1500);
        let mss = 1428;
        let mut sent: Vec<Vec<u8>> = (0..5u32)
            .map(|i| segment6(5000, 7 + i * mss as u32, ACK, mss))
            .collect();
        sent.push(segment6(5000, 7 + 5 * mss as u32, ACK | PSH, 99));
        // After the short one with PSH, a full one starts anew.
        sent.push(segment6(5000, 7 + 5 * mss as u32 + 99, ACK, mss));
        for p in &sent {
            assert!(o.put(1500, |b| {
                b[..p.len()].copy_from_slice(p);
                Some(p.len())
            }));
        }
        assert_eq!(o.tx_count, 2);
        o.run.take().unwrap().finish(&mut o.tx[1][..o.tx_end[1]]);
        let hdr = VirtioNetHdr::decode(&o.tx[0][..VIRTIO_NET_HDR_LEN]).unwrap();
        assert_eq!(
            (hdr.gso_type, hdr.gso_size, hdr.hdr_len, hdr.csum_start),
            (VIRTIO_NET_HDR_GSO_TCPV6, mss as u16, 72, 40)
        );
        assert_eq!(written(&mut o), sent);
    }

    #[test]
    fn a_segment_that_does_not_continue_the_run_keeps_its_bytes_and_the_runs() {
        let mut o = Offload::new(1500);
        let a = segment(5000, 1000, ACK, 1, 1448);
        let b = segment(5000, 1000 + 1448, ACK, 2, 1448);
        // A gap in sequence numbers, a different ACK number, other flags: each its own.
        let gap = segment(5000, 9000, ACK, 3, 1448);
        let mut ack = segment(5000, 9000 + 1448, ACK, 4, 1448);
        ack[20 + 11] ^= 1;
        let fin = segment(5000, 9000 + 2 * 1448, ACK | 0x01, 5, 10);
        let mut sent = vec![a, b, gap, ack, fin];
        // A packet that is not TCP (ICMP) passes as it is.
        let mut icmp = sent[0][..40].to_vec();
        icmp[2..4].copy_from_slice(&40u16.to_be_bytes());
        icmp[9] = 1;
        sent.push(icmp);
        for p in &sent {
            o.put(1500, |b| {
                b[..p.len()].copy_from_slice(p);
                Some(p.len())
            });
        }
        // No packet from `fill`: nothing queued, nothing disturbed.
        assert!(!o.put(1500, |_| None));
        assert_eq!(o.tx_count, 5);
        assert_eq!(written(&mut o), sent);
    }

    #[test]
    fn no_packet_from_fill_while_a_run_is_open_leaves_the_run_as_it_was() {
        let mut o = Offload::new(1500);
        let mss = 1448;
        let sent: Vec<Vec<u8>> = (0..4u32)
            .map(|i| segment(5000, 1000 + i * mss as u32, ACK, 10 + i as u16, mss))
            .collect();
        let put = |o: &mut Offload, p: &[u8]| {
            assert!(o.put(1500, |b| {
                b[..p.len()].copy_from_slice(p);
                Some(p.len())
            }));
        };
        put(&mut o, &sent[0]);
        put(&mut o, &sent[1]);
        assert!(o.run.is_some());
        // The runtime's last build of a turn: `fill` scribbles over the room it is given
        // (over the run's last payload bytes, where a joining segment's headers would go),
        // then has no packet. Each time, the run must stay whole and open.
        for _ in 0..3 {
            assert!(!o.put(1500, |b| {
                b.fill(0xAA);
                None
            }));
            assert_eq!(o.tx_count, 1);
            assert!(o.run.is_some());
        }
        // Segments that join it afterwards, then a turn's end again.
        put(&mut o, &sent[2]);
        assert!(!o.put(1500, |b| {
            b.fill(0xAA);
            None
        }));
        put(&mut o, &sent[3]);
        assert_eq!(o.tx_count, 1);
        assert_eq!(written(&mut o), sent);
    }

    /// A buffer keeps its longest length between batches (no zero-fill of the room again),
    /// and what lies past a packet's end there never reaches the device.
    #[test]
    fn left_over_bytes_past_a_packets_end_are_not_written() {
        let mut o = Offload::new(1500);
        let mss = 1448;
        let long: Vec<Vec<u8>> = (0..6u32)
            .map(|i| segment(5000, 1000 + i * mss as u32, ACK, 10 + i as u16, mss))
            .collect();
        for p in &long {
            o.put(1500, |b| {
                b[..p.len()].copy_from_slice(p);
                Some(p.len())
            });
        }
        assert_eq!(written(&mut o), long);
        // The same buffer now holds a one-segment run that a packet of another flow ends
        // (built in the run's buffer, then moved to the next one), each built in room
        // `fill` scribbled over first.
        let short = vec![
            segment(6000, 1, ACK, 50, 100),
            segment(7000, 1, ACK, 51, 10),
        ];
        for p in &short {
            o.put(1500, |b| {
                b.fill(0x55);
                b[..p.len()].copy_from_slice(p);
                Some(p.len())
            });
        }
        assert!(o.tx[0].len() > VIRTIO_NET_HDR_LEN + 1500);
        assert_eq!(written(&mut o), short);
        assert_eq!(o.tx[0].len(), VIRTIO_NET_HDR_LEN + 152);
        assert_eq!(o.tx[1].len(), VIRTIO_NET_HDR_LEN + 62);
    }

    /// The room is the caller's (the runtime's MTU, which may exceed the device's), not the
    /// device's MTU: packets larger than that are queued whole, runs of them too, as
    /// [`Device::send`] took packets of up to 65,535 bytes.
    #[test]
    fn packets_larger_than_the_devices_mtu_are_queued_whole() {
        let mut o = Offload::new(1500);
        let mss = 8948;
        let mut sent: Vec<Vec<u8>> = (0..3u32)
            .map(|i| segment(5000, 1000 + i * mss as u32, ACK, 10 + i as u16, mss))
            .collect();
        // Not TCP (UDP): a packet of its own.
        let mut udp = segment(6000, 1, ACK, 50, 8000);
        udp[9] = 17;
        sent.push(udp);
        for p in &sent {
            assert!(o.put(9000, |b| {
                assert_eq!(b.len(), 9000);
                b[..p.len()].copy_from_slice(p);
                Some(p.len())
            }));
        }
        assert_eq!(o.tx_count, 2);
        assert_eq!(written(&mut o), sent);
    }

    /// A TUN device that records each write (a virtio-net header and a packet) and, if
    /// `refuse`, fails every super-segment with `EINVAL`, as a kernel whose
    /// `virtio_net_hdr_to_skb` rejects its header does.
    struct FakeTun {
        refuse: bool,
        written: std::cell::RefCell<Vec<Vec<u8>>>,
    }

    impl TxSink for FakeTun {
        fn send_coalesced(&self, _gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> io::Result<()> {
            self.written.borrow_mut().extend(bufs.iter().cloned());
            Ok(())
        }

        fn write_packet(&self, b: &[u8]) -> io::Result<()> {
            if self.refuse && b[1] != VIRTIO_NET_HDR_GSO_NONE {
                return Err(io::Error::from_raw_os_error(EINVAL));
            }
            self.written.borrow_mut().push(b.to_vec());
            Ok(())
        }
    }

    #[test]
    fn a_refused_super_segment_goes_as_its_segments_and_no_more_are_built() {
        let mss = 1448;
        let sent: Vec<Vec<u8>> = (0..6u32)
            .map(|i| segment(5000, 1000 + i * mss as u32, ACK, 10 + i as u16, mss))
            .collect();
        for refuse in [false, true] {
            let mut o = Offload::new(1500);
            let dev = FakeTun {
                refuse,
                written: Default::default(),
            };
            // The same segments twice: the second time as the retransmission of the first.
            for round in 0..2 {
                for p in &sent {
                    assert!(o.put(1500, |b| {
                        b[..p.len()].copy_from_slice(p);
                        Some(p.len())
                    }));
                }
                let n = o.take_queued();
                // A super-segment unless one was refused before.
                assert_eq!(n, if refuse && round == 1 { 6 } else { 1 }, "{refuse}");
                write_batch(&dev, &mut o.gro, &mut o.tx[..n], &o.tso_refused).unwrap();
                let w = dev.written.take();
                if refuse {
                    // Every segment reached the device, alone, as it was sent.
                    assert_eq!(w.len(), sent.len());
                    for (w, p) in w.iter().zip(&sent) {
                        assert_eq!(w[..VIRTIO_NET_HDR_LEN], [0; VIRTIO_NET_HDR_LEN]);
                        assert_eq!(&w[VIRTIO_NET_HDR_LEN..], &p[..]);
                    }
                } else {
                    assert_eq!(w.len(), 1);
                    check_super_segment(&w[0]);
                }
                assert_eq!(o.tso_refused.load(Ordering::Relaxed), u64::from(refuse));
            }
        }
    }

    #[test]
    fn a_queue_count_outside_the_kernels_range_is_refused_before_anything_is_opened() {
        for n in [0, MAX_QUEUES + 1] {
            let e = Tun::builder("sk-q").open_queues(n).unwrap_err();
            assert!(matches!(e, TunError::Queues(m) if m == n), "{e:?}");
            assert_eq!(
                e.to_string(),
                format!(
                    "{n} queues: a multi-queue TUN interface has 1 to 256 (one per core is the \
                     useful most)"
                )
            );
            assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidInput);
        }
    }
}
