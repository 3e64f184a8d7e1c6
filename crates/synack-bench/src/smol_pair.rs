//! smoltcp's side of the userspace comparison: two `Interface`s (medium ip) over the same
//! [`Link`] as synack, through a `Device` whose tokens are the link's own buffers.
//!
//! Settings: the same MTU and send/receive buffer sizes as synack; checksums computed on send
//! and verified on receive for IPv4 and TCP (`ChecksumCapabilities` all `Both`, set explicitly);
//! everything else smoltcp's defaults (Nagle on, 10 ms delayed ACK with an immediate ACK after a
//! full segment, no congestion control, window scaling from the buffer size).
//!
//! TCP timestamps stay off on smoltcp: with its timestamp generator set, smoltcp 0.12 sizes a
//! full segment as MTU - 40 without room for the 12 option bytes, the packet exceeds the MTU and
//! nothing is sent. synack keeps its default (timestamps on), so its full segments carry 12
//! payload bytes fewer than smoltcp's (1448 vs 1460 at MTU 1500): a small handicap for synack.

use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::{Checksum, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use crate::link::Link;
use crate::pair::{CLIENT, Pair, SERVER, dir_from};

pub const CLIENT_IP: IpAddress = IpAddress::v4(198, 18, 0, 1);
pub const SERVER_IP: IpAddress = IpAddress::v4(198, 18, 0, 2);
pub const PORT: u16 = 80;

/// One end of the link as a smoltcp device: it receives from one queue and sends into the
/// other.
pub struct End<'l> {
    pub link: &'l Link,
    /// The direction this end transmits in.
    pub tx: usize,
}

pub struct Rx<'l> {
    link: &'l Link,
    buf: Vec<u8>,
    len: usize,
}

pub struct Tx<'l> {
    link: &'l Link,
    dir: usize,
}

impl smoltcp::phy::RxToken for Rx<'_> {
    #[inline]
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.buf[..self.len]);
        self.link.recycle(self.buf);
        r
    }
}

impl smoltcp::phy::TxToken for Tx<'_> {
    #[inline]
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.link.take();
        let r = f(&mut buf[..len]);
        self.link.push(self.dir, buf, len);
        r
    }
}

impl Device for End<'_> {
    type RxToken<'a>
        = Rx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    #[inline]
    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let (buf, len) = self.link.pop(1 - self.tx)?;
        Some((
            Rx {
                link: self.link,
                buf,
                len,
            },
            Tx {
                link: self.link,
                dir: self.tx,
            },
        ))
    }

    #[inline]
    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx {
            link: self.link,
            dir: self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        capabilities(self.link.mtu())
    }
}

/// Medium ip, the link's MTU, every checksum computed and verified.
pub fn capabilities(mtu: usize) -> DeviceCapabilities {
    let mut c = DeviceCapabilities::default();
    c.medium = Medium::Ip;
    c.max_transmission_unit = mtu;
    let mut sum = ChecksumCapabilities::default();
    sum.ipv4 = Checksum::Both;
    sum.tcp = Checksum::Both;
    sum.icmpv4 = Checksum::Both;
    sum.udp = Checksum::Both;
    c.checksum = sum;
    c
}

pub fn interface(link: &Link, side: usize, addr: IpAddress, seed: u64) -> Interface {
    let mut cfg = Config::new(HardwareAddress::Ip);
    cfg.random_seed = seed;
    let mut dev = End {
        link,
        tx: dir_from(side),
    };
    let mut iface = Interface::new(cfg, &mut dev, now());
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(addr, 24)).expect("one address");
    });
    iface
}

pub fn socket(buffer: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; buffer]),
        tcp::SocketBuffer::new(vec![0u8; buffer]),
    )
}

pub fn now() -> Instant {
    Instant::from_micros(crate::link::now_micros() as i64)
}

/// `iface`'s transmissions (and timers, which smoltcp runs while dispatching) into the link.
#[inline]
pub fn egress(
    iface: &mut Interface,
    sockets: &mut SocketSet<'_>,
    link: &Link,
    side: usize,
    now_us: u64,
) {
    let now = Instant::from_micros(now_us as i64);
    let mut dev = End {
        link,
        tx: dir_from(side),
    };
    while iface.poll_egress(now, &mut dev, sockets) == PollResult::SocketStateChanged {}
}

/// Every packet queued towards `side` into `iface`.
#[inline]
pub fn ingress(
    iface: &mut Interface,
    sockets: &mut SocketSet<'_>,
    link: &Link,
    side: usize,
    now_us: u64,
) {
    let now = Instant::from_micros(now_us as i64);
    let mut dev = End {
        link,
        tx: dir_from(side),
    };
    while iface.poll_ingress_single(now, &mut dev, sockets) != PollIngressSingleResult::None {}
}

pub struct SmolPair {
    pub ifaces: [Interface; 2],
    pub sockets: [SocketSet<'static>; 2],
    pub handles: [SocketHandle; 2],
    link: Link,
}

impl Pair for SmolPair {
    fn name(&self) -> String {
        "smoltcp".into()
    }

    fn connected(mtu: usize, buffer: usize) -> SmolPair {
        let link = Link::new(mtu);
        let mut ci = interface(&link, CLIENT, CLIENT_IP, 1);
        let si = interface(&link, SERVER, SERVER_IP, 2);
        let mut cs = SocketSet::new(Vec::new());
        let mut ss = SocketSet::new(Vec::new());
        let mut client = socket(buffer);
        client
            .connect(ci.context(), (SERVER_IP, PORT), 49152)
            .expect("connect");
        let mut server = socket(buffer);
        server.listen(PORT).expect("listen");
        let c = cs.add(client);
        let s = ss.add(server);
        let mut p = SmolPair {
            ifaces: [ci, si],
            sockets: [cs, ss],
            handles: [c, s],
            link,
        };
        for _ in 0..100 {
            let now = crate::link::now_micros();
            p.carry(CLIENT, now);
            p.carry(SERVER, now);
            let up = |p: &SmolPair, side: usize| {
                p.sockets[side].get::<tcp::Socket>(p.handles[side]).state()
                    == tcp::State::Established
            };
            if up(&p, CLIENT) && up(&p, SERVER) {
                return p;
            }
        }
        panic!("smoltcp: handshake did not complete");
    }

    fn link(&self) -> &Link {
        &self.link
    }

    #[inline]
    fn send(&mut self, side: usize, _now_us: u64, data: &[u8]) -> usize {
        let s = self.sockets[side].get_mut::<tcp::Socket>(self.handles[side]);
        s.send_slice(data).expect("smoltcp send")
    }

    #[inline]
    fn recv(&mut self, side: usize, _now_us: u64, out: &mut [u8]) -> usize {
        let s = self.sockets[side].get_mut::<tcp::Socket>(self.handles[side]);
        if !s.can_recv() {
            return 0;
        }
        s.recv_slice(out).expect("smoltcp recv")
    }

    #[inline]
    fn egress(&mut self, side: usize, now_us: u64) {
        egress(
            &mut self.ifaces[side],
            &mut self.sockets[side],
            &self.link,
            side,
            now_us,
        );
    }

    #[inline]
    fn ingress(&mut self, side: usize, now_us: u64) {
        ingress(
            &mut self.ifaces[side],
            &mut self.sockets[side],
            &self.link,
            side,
            now_us,
        );
    }
}
