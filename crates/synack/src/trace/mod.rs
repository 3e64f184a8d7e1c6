//! Tracing: every packet, state change, drop and notable decision as a [`TraceEvent`], and the
//! consumers that turn events into something a person (or Wireshark) can read.
//!
//! The stack does not format anything on its own: it builds owned events, only when a sink is
//! installed, and hands them to a [`TraceSink`]. Consumers live here:
//!
//! * [`render::Renderer`]: one line per event in a Wireshark-like notation, with relative
//!   sequence numbers per conversation and state changes written next to the packet that
//!   caused them;
//! * [`pcap::PcapWriter`] / [`pcap::PcapSink`]: a classic libpcap file (raw IP link type) that
//!   Wireshark, tshark and tcpdump open directly, plus [`pcap::read_pcap`] to read one back;
//! * [`flow`]: the TCP conversations of a trace or capture, segment by segment, in relative
//!   numbers, with retransmissions, D-SACKs, RTT samples and a summary;
//! * [`ladder::Ladder`]: the ladder diagram of a connection as SVG (two timelines, one arrow
//!   per segment, the states beside them).
//!
//! [`TraceLevel`] says how much to keep: nothing, the handshake and close (segments with SYN,
//! FIN or RST, state changes and drops), or everything.
//!
//! # Example
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr, SocketAddr};
//! use synack::tcp::State;
//! use synack::time::Instant;
//! use synack::trace::{Renderer, TraceEvent, TraceLevel, TraceSink};
//!
//! // Any `FnMut(&TraceEvent)` or a `Vec<TraceEvent>` is a sink.
//! let mut events: Vec<TraceEvent> = Vec::new();
//! let client = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), 49152);
//! let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), 80);
//! events.event(&TraceEvent::State {
//!     time: Instant::from_millis(40),
//!     node: "client".into(),
//!     local: client,
//!     remote: server,
//!     from: State::Established,
//!     to: State::FinWait1,
//!     reason: "close",
//! });
//!
//! let mut renderer = Renderer::new(TraceLevel::All);
//! renderer.name(client.ip(), "client").name(server.ip(), "server");
//! let mut lines = Vec::new();
//! for e in &events {
//!     lines.extend(renderer.push(e));
//! }
//! lines.extend(renderer.finish());
//! assert_eq!(lines, ["0.040000 client  ESTABLISHED \u{2192} FIN-WAIT-1 (close)"]);
//! ```

pub(crate) mod columns;
pub mod flow;
pub mod ladder;
pub mod lang;
#[cfg(feature = "tracing")]
pub mod log;
pub mod pcap;
pub mod pcapng;
#[cfg(feature = "plot")]
pub mod plot;
pub mod render;
pub mod samples;

#[cfg(feature = "tracing")]
pub use log::TracingSink;

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::tcp::State;
use crate::time::Instant;
use crate::wire::{self, IpProtocol, tcp::Flags};

pub use pcap::{PcapError, PcapSink, PcapWriter, read_pcap};
pub use pcapng::read_capture;
pub use render::{RenderSink, Renderer, summarize};

/// Which way a packet crossed the traced host's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received by the host.
    In,
    /// Sent by the host.
    Out,
}

impl Direction {
    /// `"in"` or `"out"`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// The name of a traced host, e.g. `"client"`: usually a literal, sometimes built at run time.
pub type NodeName = Cow<'static, str>;

/// One thing worth seeing. Owned, so a sink may keep it; the stack builds events only while a
/// sink is installed, so tracing costs nothing when it is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// A whole IP packet (IPv4 or IPv6 header included) crossing `node`'s interface.
    Packet {
        time: Instant,
        dir: Direction,
        node: NodeName,
        bytes: Vec<u8>,
    },
    /// A connection of `node` (`local` ↔ `remote`) changed state (RFC 9293 §3.3.2 names).
    State {
        time: Instant,
        node: NodeName,
        local: SocketAddr,
        remote: SocketAddr,
        from: State,
        to: State,
        /// What caused it, in words: "connect", "SYN-ACK", "close", "RST"…
        reason: &'static str,
    },
    /// `node` discarded a packet or segment, e.g. "bad checksum", "no listener".
    Drop {
        time: Instant,
        node: NodeName,
        reason: &'static str,
        /// The whole IP packet, when the dropper still had it.
        bytes: Option<Vec<u8>>,
    },
    /// Anything else worth a line: "SYN cookie sent", "retransmit seq=1449 len=1448 (Fast)",
    /// "RTO fired"… Sequence numbers in notes are relative to the sender's initial sequence
    /// number, as the renderer shows `Seq=` on segment lines.
    Note {
        time: Instant,
        node: NodeName,
        text: String,
    },
}

impl TraceEvent {
    /// When it happened.
    pub fn time(&self) -> Instant {
        match self {
            TraceEvent::Packet { time, .. }
            | TraceEvent::State { time, .. }
            | TraceEvent::Drop { time, .. }
            | TraceEvent::Note { time, .. } => *time,
        }
    }

    /// The host it happened on.
    pub fn node(&self) -> &str {
        match self {
            TraceEvent::Packet { node, .. }
            | TraceEvent::State { node, .. }
            | TraceEvent::Drop { node, .. }
            | TraceEvent::Note { node, .. } => node,
        }
    }
}

/// Where events go. Implemented for `Vec<TraceEvent>` (keeps a copy of each) and for every
/// closure `FnMut(&TraceEvent)`.
pub trait TraceSink {
    /// Takes one event. Sinks cannot fail the stack: a sink that does I/O keeps its first error
    /// for the caller to collect (see [`PcapSink::finish`]).
    fn event(&mut self, e: &TraceEvent);
}

impl TraceSink for Vec<TraceEvent> {
    fn event(&mut self, e: &TraceEvent) {
        self.push(e.clone());
    }
}

impl<F: FnMut(&TraceEvent)> TraceSink for F {
    fn event(&mut self, e: &TraceEvent) {
        self(e)
    }
}

/// How much of a run to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TraceLevel {
    /// Nothing.
    None,
    /// Connection setup and teardown: TCP segments with SYN, FIN or RST set, every state change,
    /// every drop and every note (retransmissions, RTO, RST reasons, PMTU, SYN cookies: the
    /// exceptional events a reader wants to see). Data segments, pure ACKs and non-TCP packets
    /// are left out.
    Handshake,
    /// Every event.
    #[default]
    All,
}

impl TraceLevel {
    /// True if an event of this kind is kept at this level. Parses at most the IP and TCP
    /// headers of a packet; never panics on any bytes.
    pub fn admits(self, e: &TraceEvent) -> bool {
        match self {
            TraceLevel::None => false,
            TraceLevel::All => true,
            TraceLevel::Handshake => match e {
                TraceEvent::State { .. } | TraceEvent::Drop { .. } | TraceEvent::Note { .. } => {
                    true
                }
                TraceEvent::Packet { bytes, .. } => is_handshake_segment(bytes),
            },
        }
    }
}

/// A sink that passes on only the events `level` admits.
#[derive(Debug, Clone)]
pub struct Filtered<S> {
    /// What to pass on.
    pub level: TraceLevel,
    /// Where admitted events go.
    pub inner: S,
}

impl<S: TraceSink> TraceSink for Filtered<S> {
    fn event(&mut self, e: &TraceEvent) {
        if self.level.admits(e) {
            self.inner.event(e);
        }
    }
}

/// True if `packet` is an IPv4 or IPv6 packet carrying an unfragmented TCP segment with SYN,
/// FIN or RST set.
fn is_handshake_segment(packet: &[u8]) -> bool {
    tcp_flags(packet).is_some_and(|f| f.intersects(Flags::SYN | Flags::FIN | Flags::RST))
}

/// The TCP control bits of an IP packet that carries a (first-fragment) TCP header.
fn tcp_flags(packet: &[u8]) -> Option<Flags> {
    let segment = ip_payload(packet, IpProtocol::Tcp)?;
    let tcp = wire::tcp::Packet::new_checked(segment).ok()?;
    Some(tcp.flags())
}

/// The payload of an IPv4 or IPv6 packet whose protocol is `proto` (IPv4 fragments other than
/// the first are refused; IPv6 extension headers are not walked).
fn ip_payload(packet: &[u8], proto: IpProtocol) -> Option<&[u8]> {
    match packet.first()? >> 4 {
        4 => {
            let ip = wire::ipv4::Packet::new_checked(packet).ok()?;
            if ip.protocol() != proto || ip.frag_offset() != 0 || ip.more_frags() {
                return None;
            }
            let range = ip.header_len()..ip.header_len() + ip.payload().len();
            packet.get(range)
        }
        6 => {
            let ip = wire::ipv6::Packet::new_checked(packet).ok()?;
            if ip.next_header() != proto {
                return None;
            }
            let len = ip.payload().len();
            packet.get(wire::ipv6::HEADER_LEN..wire::ipv6::HEADER_LEN + len)
        }
        _ => None,
    }
}

/// Packets and scripts shared by the tests of the trace modules.
#[cfg(test)]
pub(crate) mod script {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::{Direction, TraceEvent};
    use crate::tcp::{SeqNum, State};
    use crate::time::Instant;
    use crate::wire::tcp::{Flags, Options, Timestamps};
    use crate::wire::{IpProtocol, ipv4, tcp};

    pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    pub const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(CLIENT_IP), 49152);
    pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(SERVER_IP), 80);
    pub const CLIENT_ISN: u32 = 0x1a2b_3c4d;
    pub const SERVER_ISN: u32 = 0xfff0_0000; // wraps during the test: relative numbers must not care

    /// One segment to build: who sends it and the fields that matter.
    #[derive(Clone, Copy)]
    pub struct Seg<'a> {
        pub from_client: bool,
        pub seq: u32,
        pub ack: u32,
        pub flags: Flags,
        pub window: u16,
        pub options: Options,
        pub payload: &'a [u8],
    }

    /// A whole IPv4 packet with valid IP and TCP checksums.
    pub fn packet(s: Seg<'_>) -> Vec<u8> {
        let (src, dst) = if s.from_client {
            (CLIENT, SERVER)
        } else {
            (SERVER, CLIENT)
        };
        let t = tcp::Repr {
            src_port: src.port(),
            dst_port: dst.port(),
            seq: SeqNum(s.seq),
            ack: SeqNum(s.ack),
            flags: s.flags,
            window: s.window,
            urgent: 0,
            options: s.options,
            payload: s.payload,
        };
        let (IpAddr::V4(src_ip), IpAddr::V4(dst_ip)) = (src.ip(), dst.ip()) else {
            unreachable!("the script is IPv4")
        };
        let ip = ipv4::Repr::new(src_ip, dst_ip, IpProtocol::Tcp, t.buffer_len());
        let mut buf = vec![0u8; ip.buffer_len()];
        let mut p = ipv4::Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p, true).unwrap();
        t.emit(
            &mut tcp::Packet::new_unchecked(p.payload_mut()),
            src.ip(),
            dst.ip(),
        )
        .unwrap();
        buf
    }

    fn ts(tsval: u32, tsecr: u32) -> Options {
        Options {
            timestamps: Some(Timestamps { tsval, tsecr }),
            ..Default::default()
        }
    }

    /// The packets of a whole connection: handshake (both sides offer MSS 1460, SACK,
    /// timestamps and window scale 7), 100 bytes client → server, the server's ACK, then an
    /// active close by the client. Times in milliseconds; the link delay is 10 ms.
    pub fn connection_packets() -> Vec<(u64, Vec<u8>)> {
        let (c, s) = (CLIENT_ISN, SERVER_ISN);
        let syn_opts = |tsval, tsecr| Options {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval, tsecr }),
            ..Default::default()
        };
        let data = [b'x'; 100];
        let ack = Flags::ACK;
        let seg = |from_client, seq, ack_no, flags, window, options, payload| Seg {
            from_client,
            seq,
            ack: ack_no,
            flags,
            window,
            options,
            payload,
        };
        vec![
            (
                0,
                packet(seg(true, c, 0, Flags::SYN, 65535, syn_opts(0, 0), &[])),
            ),
            (
                10,
                packet(seg(
                    false,
                    s,
                    c.wrapping_add(1),
                    Flags::SYN | ack,
                    65535,
                    syn_opts(10, 0),
                    &[],
                )),
            ),
            (
                20,
                packet(seg(
                    true,
                    c.wrapping_add(1),
                    s.wrapping_add(1),
                    ack,
                    512,
                    ts(20, 10),
                    &[],
                )),
            ),
            (
                20,
                packet(seg(
                    true,
                    c.wrapping_add(1),
                    s.wrapping_add(1),
                    Flags::PSH | ack,
                    512,
                    ts(20, 10),
                    &data,
                )),
            ),
            (
                30,
                packet(seg(
                    false,
                    s.wrapping_add(1),
                    c.wrapping_add(101),
                    ack,
                    511,
                    ts(30, 20),
                    &[],
                )),
            ),
            (
                40,
                packet(seg(
                    true,
                    c.wrapping_add(101),
                    s.wrapping_add(1),
                    Flags::FIN | ack,
                    512,
                    ts(40, 30),
                    &[],
                )),
            ),
            (
                50,
                packet(seg(
                    false,
                    s.wrapping_add(1),
                    c.wrapping_add(102),
                    Flags::FIN | ack,
                    511,
                    ts(50, 40),
                    &[],
                )),
            ),
            (
                60,
                packet(seg(
                    true,
                    c.wrapping_add(102),
                    s.wrapping_add(2),
                    ack,
                    512,
                    ts(60, 50),
                    &[],
                )),
            ),
        ]
    }

    fn state(ms: u64, client: bool, from: State, to: State, reason: &'static str) -> TraceEvent {
        let (node, local, remote) = if client {
            ("client", CLIENT, SERVER)
        } else {
            ("server", SERVER, CLIENT)
        };
        TraceEvent::State {
            time: Instant::from_millis(ms),
            node: node.into(),
            local,
            remote,
            from,
            to,
            reason,
        }
    }

    /// What a sender-side tap of both hosts reports for [`connection_packets`]: each packet once,
    /// as an `Out` event of its sender, with the state changes where the hosts make them. The
    /// client's state changes come before the packet they cause (connect, close) or right after
    /// the packet that caused them (the server's changes on receipt).
    pub fn connection_events() -> Vec<TraceEvent> {
        let mut pkts = connection_packets().into_iter();
        let mut out = |client: bool| {
            let (ms, bytes) = pkts.next().unwrap();
            TraceEvent::Packet {
                time: Instant::from_millis(ms),
                dir: Direction::Out,
                node: if client { "client" } else { "server" }.into(),
                bytes,
            }
        };
        use State::*;
        vec![
            state(0, true, Closed, SynSent, "connect"),
            out(true),
            state(10, false, Listen, SynReceived, "SYN"),
            out(false),
            state(20, true, SynSent, Established, "SYN-ACK"),
            out(true),
            out(true),
            state(30, false, SynReceived, Established, "ACK"),
            out(false),
            state(40, true, Established, FinWait1, "close"),
            out(true),
            state(50, false, Established, CloseWait, "FIN"),
            state(50, false, CloseWait, LastAck, "close"),
            out(false),
            state(60, true, FinWait1, FinWait2, "ACK of FIN"),
            state(60, true, FinWait2, TimeWait, "FIN"),
            out(true),
            state(70, false, LastAck, Closed, "ACK of FIN"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::script::*;
    use super::*;

    #[test]
    fn sinks_collect_events() {
        let e = TraceEvent::Note {
            time: Instant::from_millis(5),
            node: "client".into(),
            text: "RTO fired".to_string(),
        };
        let mut v: Vec<TraceEvent> = Vec::new();
        v.event(&e);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0], e);
        let mut n = 0;
        let mut count = |_: &TraceEvent| n += 1;
        count.event(&e);
        count.event(&e);
        assert_eq!(n, 2);
        assert_eq!(e.time(), Instant::from_millis(5));
        assert_eq!(e.node(), "client");
    }

    #[test]
    fn levels_admit_what_they_promise() {
        let events = connection_events();
        let kept = |level: TraceLevel| events.iter().filter(|e| level.admits(e)).count();
        let states = events
            .iter()
            .filter(|e| matches!(e, TraceEvent::State { .. }))
            .count();
        assert_eq!(kept(TraceLevel::All), events.len());
        assert_eq!(kept(TraceLevel::None), 0);
        // SYN, SYN-ACK, FIN, FIN: the ACKs and the data segment are left out.
        assert_eq!(kept(TraceLevel::Handshake), states + 4);
        let note = TraceEvent::Note {
            time: Instant::ZERO,
            node: "x".into(),
            text: String::new(),
        };
        assert!(TraceLevel::Handshake.admits(&note));
        let drop = TraceEvent::Drop {
            time: Instant::ZERO,
            node: "x".into(),
            reason: "bad checksum",
            bytes: None,
        };
        assert!(TraceLevel::Handshake.admits(&drop));
        for junk in [&[][..], &[0x45], &[0x60; 40], &[0xff; 60]] {
            let p = TraceEvent::Packet {
                time: Instant::ZERO,
                dir: Direction::In,
                node: "x".into(),
                bytes: junk.to_vec(),
            };
            assert!(!TraceLevel::Handshake.admits(&p));
        }
    }

    #[test]
    fn filtered_sink_passes_admitted_events_only() {
        let mut f = Filtered {
            level: TraceLevel::Handshake,
            inner: Vec::new(),
        };
        for e in connection_events() {
            f.event(&e);
        }
        assert!(f.inner.iter().all(|e| TraceLevel::Handshake.admits(e)));
        assert_eq!(f.inner.len(), 18 - 4);
    }
}
