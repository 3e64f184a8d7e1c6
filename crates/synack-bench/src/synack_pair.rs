//! synack's side of the userspace comparison: two `Stack`s driven sans-IO over the [`Link`].

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use synack::stack::{Ipv4Cidr, SocketHandle, Stack, StackConfig};
use synack::tcp::{Config, State};
use synack::time::Instant;

use crate::link::Link;
use crate::pair::{CLIENT, Pair, SERVER, dir_from};

pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const PORT: u16 = 80;

/// A stack with synack's defaults (Linux-like: timestamps, SACK, window scaling, delayed ACK,
/// NewReno) except the MTU and fixed send/receive buffers of `buffer` bytes.
pub fn stack(addr: Ipv4Addr, secret: u8, mtu: usize, buffer: usize) -> Stack {
    let cfg = StackConfig {
        tcp: Arc::new(Config {
            send_buffer: buffer,
            recv_buffer: buffer,
            recv_buffer_max: buffer,
            ..Config::default()
        }),
        mtu: mtu.min(65535) as u16,
        ..StackConfig::default()
    };
    let mut s = Stack::new(cfg, [secret; 32]);
    s.add_address(Ipv4Cidr::new(addr, 24));
    s
}

pub fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(SERVER_IP), PORT)
}

/// `side`'s timers and transmissions into the link, towards `dir`.
#[inline]
pub fn egress(s: &mut Stack, link: &Link, dir: usize, now_us: u64) {
    let now = Instant::from_micros(now_us);
    if s.poll_timeout().is_some_and(|t| t <= now) {
        s.handle_timeout(now);
    }
    loop {
        let mut buf = link.take();
        match s.poll_transmit(now, &mut buf) {
            Some(n) => link.push(dir, buf, n),
            None => {
                link.recycle(buf);
                break;
            }
        }
    }
}

/// Every packet queued in direction `dir` into `s`.
#[inline]
pub fn ingress(s: &mut Stack, link: &Link, dir: usize, now_us: u64) {
    let now = Instant::from_micros(now_us);
    while let Some((buf, n)) = link.pop(dir) {
        s.handle_packet(now, &buf[..n]);
        link.recycle(buf);
    }
}

pub struct SynackPair {
    pub stacks: [Stack; 2],
    pub handles: [SocketHandle; 2],
    link: Link,
}

impl Pair for SynackPair {
    const NAME: &'static str = "synack";

    fn connected(mtu: usize, buffer: usize) -> SynackPair {
        let link = Link::new(mtu);
        let mut client = stack(CLIENT_IP, 1, mtu, buffer);
        let mut server = stack(SERVER_IP, 2, mtu, buffer);
        let now = crate::link::now_micros();
        let listener = server.listen(server_addr(), 16).expect("listen");
        let c = client
            .connect(Instant::from_micros(now), server_addr(), None)
            .expect("connect");
        let mut stacks = [client, server];
        for _ in 0..100 {
            let now = crate::link::now_micros();
            for from in [CLIENT, SERVER] {
                egress(&mut stacks[from], &link, dir_from(from), now);
                ingress(&mut stacks[1 - from], &link, dir_from(from), now);
            }
            if let Some(s) = stacks[SERVER].accept(listener).expect("accept") {
                let up =
                    |st: &Stack, h| st.connection(h).map(|c| c.state()) == Some(State::Established);
                assert!(up(&stacks[CLIENT], c) && up(&stacks[SERVER], s));
                stacks[SERVER].close(Instant::from_micros(now), listener);
                return SynackPair {
                    stacks,
                    handles: [c, s],
                    link,
                };
            }
        }
        panic!("synack: handshake did not complete");
    }

    fn link(&self) -> &Link {
        &self.link
    }

    #[inline]
    fn send(&mut self, side: usize, now_us: u64, data: &[u8]) -> usize {
        let now = Instant::from_micros(now_us);
        self.stacks[side]
            .send(now, self.handles[side], data)
            .expect("send")
    }

    #[inline]
    fn recv(&mut self, side: usize, now_us: u64, out: &mut [u8]) -> usize {
        let now = Instant::from_micros(now_us);
        match self.stacks[side].recv(now, self.handles[side], out) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("synack recv: {e}"),
        }
    }

    #[inline]
    fn egress(&mut self, side: usize, now_us: u64) {
        egress(&mut self.stacks[side], &self.link, dir_from(side), now_us);
    }

    #[inline]
    fn ingress(&mut self, side: usize, now_us: u64) {
        ingress(
            &mut self.stacks[side],
            &self.link,
            dir_from(1 - side),
            now_us,
        );
    }
}
