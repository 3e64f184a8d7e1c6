//! synack's side of the userspace comparison: two `Stack`s driven sans-IO over the [`Link`].

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use synack::stack::{Ipv4Cidr, SocketHandle, Stack, StackConfig};
use synack::tcp::congestion::Algorithm;
use synack::tcp::{Config, FastOpenMode, State};
use synack::time::Instant;

use crate::link::Link;
use crate::pair::{CLIENT, Pair, SERVER, dir_from};

pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const PORT: u16 = 80;

/// Which of synack's optional features a benchmark stack runs with. The figures (and issue
/// 20's) are [`Variant::Default`]'s; the others exist to measure what the features cost
/// against smoltcp, which runs without them (see the crate README, "the gap to smoltcp").
/// Each switch is an existing `tcp::Config` field that has a Linux knob of the same meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// synack's defaults (Linux's: timestamps, SACK and D-SACK, CUBIC, window scaling,
    /// delayed ACK, Nagle, slow start after idle, Fast Open's client side, receive-buffer
    /// autotuning).
    Default,
    /// Not the default: as near smoltcp 0.12's feature set in these runs as the knobs go,
    /// every [`Feature`] off. What stays is not optional in synack (RTO and RTT estimation,
    /// delayed ACK, Nagle, window scaling — smoltcp has those too — and the recovery rules:
    /// NewReno's, since smoltcp runs no congestion control at all and synack has no "none").
    Lite,
    /// The defaults with one feature off.
    Without(Feature),
}

/// An optional feature smoltcp does not run here, and its Linux knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// RFC 7323 timestamps (`net.ipv4.tcp_timestamps=0`).
    Timestamps,
    /// SACK and D-SACK (`net.ipv4.tcp_sack=0`, `net.ipv4.tcp_dsack=0`): no scoreboard. smoltcp
    /// negotiates SACK but keeps no scoreboard and, without loss, sends no blocks.
    Sack,
    /// CUBIC with HyStart++, replaced by Reno/NewReno (`net.ipv4.tcp_congestion_control=reno`).
    Cubic,
    /// Restarting from the initial window after an idle RTO
    /// (`net.ipv4.tcp_slow_start_after_idle=0`).
    SlowStartAfterIdle,
    /// Fast Open's client side (`net.ipv4.tcp_fastopen=0`).
    FastOpen,
    /// Receive-buffer autotuning: the buffer locked at its size, as `SO_RCVBUF` does (the
    /// buffers here are already fixed at the figure's size, so only the per-round-trip
    /// measuring goes).
    RcvbufAutotuning,
}

impl Feature {
    pub const ALL: [Feature; 6] = [
        Feature::Timestamps,
        Feature::Sack,
        Feature::Cubic,
        Feature::SlowStartAfterIdle,
        Feature::FastOpen,
        Feature::RcvbufAutotuning,
    ];

    /// The variant name's suffix: `synack-no-<this>`.
    pub fn tag(self) -> &'static str {
        match self {
            Feature::Timestamps => "ts",
            Feature::Sack => "sack",
            Feature::Cubic => "cubic",
            Feature::SlowStartAfterIdle => "ssai",
            Feature::FastOpen => "tfo",
            Feature::RcvbufAutotuning => "autotune",
        }
    }

    fn turn_off(self, c: &mut Config) {
        match self {
            Feature::Timestamps => c.timestamps = false,
            Feature::Sack => {
                c.sack = false;
                c.dsack = false;
            }
            Feature::Cubic => c.congestion = Algorithm::NewReno,
            Feature::SlowStartAfterIdle => c.slow_start_after_idle = false,
            Feature::FastOpen => c.fastopen = FastOpenMode(0),
            Feature::RcvbufAutotuning => c.recv_buffer_locked = true,
        }
    }
}

impl Variant {
    /// The name in tables and on the `cg-*` command lines: `synack`, `synack-lite`,
    /// `synack-no-ts`, ...
    pub fn name(self) -> String {
        match self {
            Variant::Default => "synack".into(),
            Variant::Lite => "synack-lite".into(),
            Variant::Without(f) => format!("synack-no-{}", f.tag()),
        }
    }

    pub fn parse(name: &str) -> Option<Variant> {
        match name {
            "synack" => Some(Variant::Default),
            "synack-lite" => Some(Variant::Lite),
            _ => {
                let tag = name.strip_prefix("synack-no-")?;
                Feature::ALL
                    .into_iter()
                    .find(|f| f.tag() == tag)
                    .map(Variant::Without)
            }
        }
    }

    /// `base` with this variant's features turned off.
    pub fn apply(self, mut base: Config) -> Config {
        match self {
            Variant::Default => {}
            Variant::Lite => Feature::ALL.iter().for_each(|f| f.turn_off(&mut base)),
            Variant::Without(f) => f.turn_off(&mut base),
        }
        base
    }
}

/// The figure label of a wall-clock row measured with [`Variant::Lite`].
pub const LITE_ROW: &str = "synack-lite (NOT synack's defaults: smoltcp's feature set)";

/// What [`Variant::Lite`] turns off, for the tables' notes.
pub const LITE_NOTE: &str = "synack-lite = synack without timestamps, SACK/D-SACK, CUBIC (NewReno instead), slow start after idle, Fast Open and receive-buffer autotuning, as near smoltcp's feature set as synack's knobs go; for the split of the gap to smoltcp only, not a figure of synack";

/// A stack with `variant`'s features (synack's defaults for [`Variant::Default`]) except the
/// MTU and fixed send/receive buffers of `buffer` bytes.
pub fn stack(variant: Variant, addr: Ipv4Addr, secret: u8, mtu: usize, buffer: usize) -> Stack {
    let cfg = StackConfig {
        tcp: Arc::new(variant.apply(Config {
            send_buffer: buffer,
            recv_buffer: buffer,
            recv_buffer_max: buffer,
            ..Config::default()
        })),
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
    variant: Variant,
}

impl SynackPair {
    /// [`Pair::connected`] with `variant`'s features.
    pub fn connected_as(variant: Variant, mtu: usize, buffer: usize) -> SynackPair {
        let link = Link::new(mtu);
        let mut client = stack(variant, CLIENT_IP, 1, mtu, buffer);
        let mut server = stack(variant, SERVER_IP, 2, mtu, buffer);
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
                    variant,
                };
            }
        }
        panic!("{}: handshake did not complete", variant.name());
    }
}

impl Pair for SynackPair {
    fn name(&self) -> String {
        self.variant.name()
    }

    fn connected(mtu: usize, buffer: usize) -> SynackPair {
        SynackPair::connected_as(Variant::Default, mtu, buffer)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::TO_SERVER;

    /// What one end of a pair negotiated: TCP_INFO's timestamps, SACK and send MSS, and the
    /// congestion controller.
    #[derive(Debug, PartialEq, Eq)]
    struct End {
        timestamps: bool,
        sack: bool,
        snd_mss: u32,
        congestion: Algorithm,
    }

    /// Both ends of a connected pair of `v`, and the TCP header length of the first data
    /// segment on the wire: a variant whose config were lost on the way to the connections
    /// negotiates the defaults and fails the tests below.
    fn negotiated(v: Variant) -> ([End; 2], usize) {
        let mut p = SynackPair::connected_as(v, 1500, 64 * 1024);
        let ends = [CLIENT, SERVER].map(|side| {
            let c = p.stacks[side].connection(p.handles[side]).expect("open");
            let i = c.info();
            End {
                timestamps: i.timestamps,
                sack: i.sack,
                snd_mss: i.snd_mss,
                congestion: c.congestion(),
            }
        });
        let now = crate::link::now_micros();
        assert_eq!(p.send(CLIENT, now, &[7; 4000]), 4000);
        p.egress(CLIENT, now);
        let (ip, _) = p.link().pop(TO_SERVER).expect("a data segment");
        let tcp = &ip[usize::from(ip[0] & 0xf) * 4..];
        (ends, usize::from(tcp[12] >> 4) * 4)
    }

    fn end(timestamps: bool, sack: bool, congestion: Algorithm) -> End {
        End {
            timestamps,
            sack,
            // MSS 1460 at MTU 1500, less the timestamp option where it is on.
            snd_mss: if timestamps { 1448 } else { 1460 },
            congestion,
        }
    }

    #[test]
    fn lite_negotiates_no_timestamps_and_no_sack() {
        let (ends, header) = negotiated(Variant::Default);
        assert_eq!(ends, [(); 2].map(|_| end(true, true, Algorithm::Cubic)));
        // 20 bytes and the 12 of the timestamp option.
        assert_eq!(header, 32);
        let (ends, header) = negotiated(Variant::Lite);
        assert_eq!(ends, [(); 2].map(|_| end(false, false, Algorithm::NewReno)));
        // No option at all on a data segment, as smoltcp's here.
        assert_eq!(header, 20);
    }

    #[test]
    fn each_feature_variant_turns_off_its_feature_only() {
        let each = |f| negotiated(Variant::Without(f));
        let (ends, header) = each(Feature::Timestamps);
        assert_eq!(
            (&ends[SERVER], header),
            (&end(false, true, Algorithm::Cubic), 20)
        );
        let (ends, header) = each(Feature::Sack);
        assert_eq!(
            (&ends[SERVER], header),
            (&end(true, false, Algorithm::Cubic), 32)
        );
        let (ends, _) = each(Feature::Cubic);
        assert_eq!(ends[SERVER], end(true, true, Algorithm::NewReno));
        for f in Feature::ALL {
            let v = Variant::Without(f);
            assert_eq!(Variant::parse(&v.name()), Some(v));
        }
        assert_eq!(Variant::parse("synack-lite"), Some(Variant::Lite));
        assert_eq!(Variant::parse("synack"), Some(Variant::Default));
        assert_eq!(Variant::parse("synack-no-nagle"), None);
    }
}
