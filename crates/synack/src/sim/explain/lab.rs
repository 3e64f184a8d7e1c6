//! The bench the scenarios run on: hosts with real [`Stack`]s around one switch of a
//! [`SimNet`], driven in virtual time. The scenario decides the fate of every packet a stack
//! sends (delivered, lost, held back in the network), puts crafted packets on the wire (an old
//! duplicate SYN, spoofed SYNs), and acts as the applications. Everything that happens is kept
//! as [`Record`]s, in order: the stacks' own trace events, the application calls and their
//! results, congestion-window changes, and the lab's own doings (a host restarts, goes down).

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::collections::HashMap;
use std::sync::Arc;

use crate::device::SimRng;
use crate::device::sim::{HostId, LinkConfig, SimNet};
use crate::stack::{Ipv4Cidr, SocketHandle, Stack, StackConfig};
use crate::tcp::{Config, SeqNum};
use crate::time::{Duration, Instant};
use crate::trace::{Direction, TraceEvent};
use crate::wire::tcp::{Flags, Options, Repr as TcpRepr, Timestamps};
use crate::wire::{IpProtocol, ipv4, tcp as wtcp};

/// One-way delay of each host's link to the switch: host to host is twice this, 10 ms, so the
/// round trip is 20 ms (as `synack demo`).
pub(crate) const HOP: Duration = Duration::from_millis(5);

/// What the network does with a packet a stack sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Deliver,
    /// Lost on the way.
    Lose,
    /// Held in the network this much longer than the link's delay (RFC 9293's "...").
    Delay(Duration),
}

/// What became of a packet, as the explanation shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transit {
    /// Arrived (or is on its way) as the link delivers.
    Delivered,
    /// Lost on the link.
    Lost,
    /// Held in the network this much longer than usual.
    Delayed(Duration),
    /// Addressed to a host that is down: nobody receives it.
    HostDown,
    /// Addressed to an address no host owns (a spoofed source): nobody receives it.
    NoSuchHost,
    /// Not sent by any stack: the scenario put it on the wire (an old duplicate, a spoofed
    /// SYN).
    Injected,
}

/// A packet a stack is about to put on the wire, for the scenario's fate function.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outgoing<'a> {
    pub node: &'a str,
    /// 1 for the first packet this node sends, 2 for the second…
    pub nth: usize,
    pub flags: Flags,
    /// Absolute sequence number.
    pub seq: SeqNum,
    pub len: usize,
    /// How many times this node sent a segment with this sequence number and payload length
    /// before (0 for a first transmission), counting only segments with data, SYN or FIN.
    pub resent: u32,
}

/// Everything that happened, in order.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    /// A stack's trace event. `transit` is set for packets the stack sent (and for injected
    /// packets); `cause` is the index of the `In` packet record the stack was handling when it
    /// produced the event; `injected` says what an injected packet stands for (English,
    /// Chinese).
    Trace {
        ev: TraceEvent,
        transit: Option<Transit>,
        cause: Option<usize>,
        injected: Option<[&'static str; 2]>,
    },
    /// An application call and what it returned, in strace's notation:
    /// `connect(198.18.0.2:80) = -1 ECONNREFUSED (Connection refused)`.
    Call {
        time: Instant,
        node: &'static str,
        text: String,
    },
    /// The watched connection's congestion window (and slow-start threshold) changed; in
    /// segments.
    Cwnd {
        time: Instant,
        node: &'static str,
        from: (u32, u32),
        to: (u32, u32),
    },
    /// Something the lab did to a host.
    Happening {
        time: Instant,
        node: &'static str,
        what: Happening,
    },
}

/// What the lab can do to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    /// The host restarted: its stack is new and remembers no connection.
    Restart,
    /// The host is gone (powered off, cable cut): it sends and receives nothing.
    Down,
}

struct Host {
    name: &'static str,
    addr: Ipv4Addr,
    id: HostId,
    stack: Stack,
    tcp: Config,
    up: bool,
    secret_seed: u64,
    sent: usize,
    /// Times each (seq, len) with data, SYN or FIN was sent.
    sent_segs: HashMap<(SeqNum, usize), u32>,
}

type FateFn = Box<dyn FnMut(&Outgoing<'_>) -> Fate>;

/// The bench.
pub(crate) struct Lab {
    pub now: Instant,
    seed: u64,
    net: SimNet,
    switch: HostId,
    hosts: Vec<Host>,
    buf: Vec<u8>,
    records: Vec<Record>,
    fate: FateFn,
    /// Packets held back in the network: (release time, sent from, bytes).
    held: Vec<(Instant, HostId, Vec<u8>)>,
    /// The connection whose congestion window is recorded, and its last value.
    watch: Option<(usize, SocketHandle, (u32, u32))>,
    /// Each new host's link to the switch.
    link: LinkConfig,
}

/// The server's (and every listener's) usual port.
pub(crate) const PORT: u16 = 80;

/// Bound on the work at one instant (packets and timers); a scenario never comes near it.
const MAX_ROUNDS: usize = 10_000;

impl Lab {
    pub fn new(seed: u64) -> Lab {
        let mut net = SimNet::new(seed);
        let switch = net.add_switch("switch");
        Lab {
            now: Instant::ZERO,
            seed,
            net,
            switch,
            hosts: Vec::new(),
            buf: vec![0u8; 65536],
            records: Vec::new(),
            fate: Box::new(|_| Fate::Deliver),
            held: Vec::new(),
            watch: None,
            link: LinkConfig::default().with_delay(HOP),
        }
    }

    /// Hosts added from now on get this link to the switch (each direction).
    pub fn set_link(&mut self, link: LinkConfig) {
        self.link = link;
    }

    /// Adds a host with a stack running `tcp`; returns its index.
    pub fn host(&mut self, name: &'static str, addr: Ipv4Addr, tcp: Config) -> usize {
        let id = self.net.add_host(name);
        // A fresh host and the switch are valid nodes of this net.
        let _ = self.net.connect(id, self.switch, self.link);
        let _ = self.net.set_addr(id, addr);
        let i = self.hosts.len();
        let secret_seed = self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64 + 1);
        let stack = new_stack(name, addr, &tcp, secret_seed);
        self.hosts.push(Host {
            name,
            addr,
            id,
            stack,
            tcp,
            up: true,
            secret_seed,
            sent: 0,
            sent_segs: HashMap::new(),
        });
        i
    }

    pub fn stack(&mut self, h: usize) -> &mut Stack {
        &mut self.hosts[h].stack
    }

    /// `(address, name)` of every host, for the renderer.
    pub fn names(&self) -> Vec<(IpAddr, &'static str)> {
        self.hosts
            .iter()
            .map(|h| (IpAddr::V4(h.addr), h.name))
            .collect()
    }

    /// Host `h`'s address with `port`.
    pub fn sock(&self, h: usize, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.hosts[h].addr), port)
    }

    /// From now on, `f` decides what happens to each packet a stack sends.
    pub fn set_fate(&mut self, f: impl FnMut(&Outgoing<'_>) -> Fate + 'static) {
        self.fate = Box::new(f);
    }

    /// Records the congestion window of connection `c` of host `h` whenever it changes.
    pub fn watch_cwnd(&mut self, h: usize, c: SocketHandle) {
        let now = self.cwnd_of(h, c).unwrap_or((0, 0));
        self.watch = Some((h, c, now));
    }

    fn cwnd_of(&self, h: usize, c: SocketHandle) -> Option<(u32, u32)> {
        let info = self.hosts[h].stack.connection(c)?.info();
        Some((info.cwnd_segments(), info.ssthresh_segments()))
    }

    fn sample_cwnd(&mut self) {
        let Some((h, c, last)) = self.watch else {
            return;
        };
        let Some(now) = self.cwnd_of(h, c) else {
            return;
        };
        if now != last {
            self.watch = Some((h, c, now));
            self.records.push(Record::Cwnd {
                time: self.now,
                node: self.hosts[h].name,
                from: last,
                to: now,
            });
        }
    }

    /// Records an application call of host `h` and its result.
    pub fn call(&mut self, h: usize, text: impl Into<String>) {
        self.records.push(Record::Call {
            time: self.now,
            node: self.hosts[h].name,
            text: text.into(),
        });
    }

    /// Host `h` restarts: a new stack (new secrets too), no connections, same address.
    pub fn restart(&mut self, h: usize) {
        self.drain(h, None);
        let host = &mut self.hosts[h];
        host.secret_seed = host.secret_seed.wrapping_add(0x5eed);
        host.stack = new_stack(host.name, host.addr, &host.tcp, host.secret_seed);
        self.records.push(Record::Happening {
            time: self.now,
            node: host.name,
            what: Happening::Restart,
        });
    }

    /// Host `h` goes down: from now on it neither sends nor receives.
    pub fn down(&mut self, h: usize) {
        self.hosts[h].up = false;
        self.records.push(Record::Happening {
            time: self.now,
            node: self.hosts[h].name,
            what: Happening::Down,
        });
    }

    /// Puts a crafted IP packet on the wire as if host `via` had sent it; it is shown as
    /// [`Transit::Injected`] and delivered like any other. `what` names it, in English and
    /// Chinese ("an old duplicate SYN"), for the pictures.
    pub fn inject(&mut self, via: usize, packet: &[u8], what: [&'static str; 2]) {
        self.records.push(Record::Trace {
            ev: TraceEvent::Packet {
                time: self.now,
                dir: Direction::Out,
                node: "network".into(),
                bytes: packet.to_vec(),
            },
            transit: Some(Transit::Injected),
            cause: None,
            injected: Some(what),
        });
        let _ = self.net.send(self.now, self.hosts[via].id, packet);
    }

    /// Runs until `done` holds (checked at every instant something happens) or `limit` of
    /// virtual time has passed; returns whether `done` held. `now` is then the instant it held,
    /// or `now + limit`.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Lab) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.settle();
            let held = done(self);
            // What `done` did as the application (a read, a close) happens at this instant.
            self.settle();
            if held {
                return true;
            }
            match self.next_event() {
                Some(t) if t <= end => self.now = t,
                _ => {
                    self.now = end;
                    self.settle();
                    let held = done(self);
                    self.settle();
                    return held;
                }
            }
        }
    }

    /// Runs for `d` of virtual time: everything due until `now + d` happens.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// The next instant after `now` at which something is due.
    fn next_event(&self) -> Option<Instant> {
        let now = self.now;
        self.hosts
            .iter()
            .filter(|h| h.up)
            .filter_map(|h| h.stack.poll_timeout())
            .chain(self.net.next_delivery())
            .chain(self.held.iter().map(|(t, _, _)| *t))
            .filter(|&t| t > now)
            .min()
    }

    /// Does everything due at `now`: held packets released, timers, transmissions, deliveries.
    fn settle(&mut self) {
        let now = self.now;
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            let mut i = 0;
            while i < self.held.len() {
                if self.held[i].0 <= now {
                    let (_, from, bytes) = self.held.swap_remove(i);
                    let _ = self.net.send(now, from, &bytes);
                    progress = true;
                } else {
                    i += 1;
                }
            }
            for h in 0..self.hosts.len() {
                if !self.hosts[h].up {
                    continue;
                }
                self.hosts[h].stack.handle_timeout(now);
                self.drain(h, None);
                self.sample_cwnd();
                while let Some(n) = self.hosts[h].stack.poll_transmit(now, &mut self.buf) {
                    progress = true;
                    let transit = self.send(h, n);
                    self.drain_sent(h, transit);
                    self.sample_cwnd();
                }
                self.drain(h, None);
            }
            while let Some(d) = self.net.poll_deliver(now) {
                progress = true;
                let target = self.hosts.iter().position(|h| h.id == d.to);
                if let Some(h) = target.filter(|&h| self.hosts[h].up) {
                    let cause = self.records.len();
                    self.hosts[h].stack.handle_packet(now, &d.packet);
                    self.drain(h, Some(cause));
                    self.sample_cwnd();
                }
                self.net.recycle(d.packet);
            }
            if !progress {
                break;
            }
        }
    }

    /// Decides the fate of the packet host `h` just wrote into `buf[..n]` and acts on it.
    fn send(&mut self, h: usize, n: usize) -> Transit {
        let packet = &self.buf[..n];
        let host = &mut self.hosts[h];
        host.sent += 1;
        let view = ipv4::Packet::new_checked(packet).ok();
        let dst = view
            .as_ref()
            .map_or(Ipv4Addr::UNSPECIFIED, |p| p.dst_addr());
        let seg = view
            .as_ref()
            .filter(|p| p.protocol() == IpProtocol::Tcp)
            .and_then(|p| wtcp::Packet::new_checked(p.payload()).ok())
            .map(|t| {
                let len = t.payload().len();
                (t.flags(), t.seq_number(), len)
            });
        let (flags, seq, len) = seg.unwrap_or((Flags::NONE, SeqNum(0), 0));
        let mut resent = 0;
        if len > 0 || flags.intersects(Flags::SYN | Flags::FIN) {
            let times = host.sent_segs.entry((seq, len)).or_insert(0);
            resent = *times;
            *times += 1;
        }
        let out = Outgoing {
            node: host.name,
            nth: host.sent,
            flags,
            seq,
            len,
            resent,
        };
        let fate = (self.fate)(&out);
        let target = self.hosts.iter().find(|x| x.addr == dst);
        let transit = match (fate, target) {
            (Fate::Lose, _) => Transit::Lost,
            (_, None) => Transit::NoSuchHost,
            (_, Some(t)) if !t.up => Transit::HostDown,
            (Fate::Deliver, _) => Transit::Delivered,
            (Fate::Delay(d), _) => Transit::Delayed(d),
        };
        let id = self.hosts[h].id;
        match transit {
            Transit::Delivered | Transit::NoSuchHost => {
                let _ = self.net.send(self.now, id, &self.buf[..n]);
            }
            Transit::Delayed(d) => self.held.push((self.now + d, id, self.buf[..n].to_vec())),
            Transit::Lost | Transit::HostDown | Transit::Injected => {}
        }
        transit
    }

    /// Moves host `h`'s trace events into the records.
    fn drain(&mut self, h: usize, cause: Option<usize>) {
        while let Some(ev) = self.hosts[h].stack.poll_trace() {
            self.records.push(Record::Trace {
                ev,
                transit: None,
                cause,
                injected: None,
            });
        }
    }

    /// [`drain`](Self::drain) after a transmission: the last event is the packet sent.
    fn drain_sent(&mut self, h: usize, transit: Transit) {
        let start = self.records.len();
        self.drain(h, None);
        let last = self.records[start..].iter_mut().rev().find(|r| {
            matches!(
                r,
                Record::Trace {
                    ev: TraceEvent::Packet {
                        dir: Direction::Out,
                        ..
                    },
                    ..
                }
            )
        });
        if let Some(Record::Trace { transit: t, .. }) = last {
            *t = Some(transit);
        }
    }

    /// Everything recorded so far.
    pub fn into_records(self) -> Vec<Record> {
        self.records
    }
}

fn new_stack(name: &'static str, addr: Ipv4Addr, tcp: &Config, secret_seed: u64) -> Stack {
    let mut secret = [0u8; 32];
    SimRng::new(secret_seed).fill_bytes(&mut secret);
    let mut stack = Stack::new(
        StackConfig {
            tcp: Arc::new(tcp.clone()),
            trace: true,
            name: name.into(),
            ..StackConfig::default()
        },
        secret,
    );
    stack.add_address(Ipv4Cidr::new(addr, 24));
    stack
}

/// A SYN as Linux sends one (MSS 1460, SACK, timestamps, window scale 7), from `src` to `dst`,
/// as a whole IPv4 packet: an old duplicate, or a flood's spoofed SYN.
pub(crate) fn craft_syn(src: SocketAddr, dst: SocketAddr, seq: u32, tsval: u32) -> Vec<u8> {
    let seg = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        seq: SeqNum(seq),
        ack: SeqNum(0),
        flags: Flags::SYN,
        window: 64240,
        urgent: 0,
        options: Options {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval, tsecr: 0 }),
            ..Options::default()
        },
        payload: &[],
    };
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        return Vec::new();
    };
    let len = seg.buffer_len();
    let mut buf = vec![0u8; ipv4::HEADER_LEN + len];
    let mut ip = ipv4::Packet::new_unchecked(&mut buf[..]);
    let ok = ipv4::Repr::new(s, d, IpProtocol::Tcp, len)
        .emit(&mut ip, true)
        .is_ok()
        && seg
            .emit(
                &mut wtcp::Packet::new_unchecked(ip.payload_mut()),
                src.ip(),
                dst.ip(),
            )
            .is_ok();
    if ok { buf } else { Vec::new() }
}

/// The errno name and strerror text of an error a socket call returned, as strace shows them.
pub(crate) fn errno(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "ECONNREFUSED (Connection refused)",
        K::ConnectionReset => "ECONNRESET (Connection reset by peer)",
        K::BrokenPipe => "EPIPE (Broken pipe)",
        K::TimedOut => "ETIMEDOUT (Connection timed out)",
        K::NotConnected => "ENOTCONN (Transport endpoint is not connected)",
        K::HostUnreachable => "EHOSTUNREACH (No route to host)",
        _ => "EIO (Input/output error)",
    }
}
