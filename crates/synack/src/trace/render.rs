//! One line per event, in the notation of Wireshark's packet list:
//!
//! ```text
//! 0.000000 client → server 49152 → 80 [SYN] Seq=0 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=0 TSecr=0 WS=128   CLOSED → SYN-SENT
//! 0.010000 server → client 80 → 49152 [SYN, ACK] Seq=0 Ack=1 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=10 TSecr=0 WS=128   LISTEN → SYN-RECEIVED
//! 0.070000 server  LAST-ACK → CLOSED (ACK of FIN)
//! 0.500000 server DROP bad checksum: client → server 49152 → 80 [ACK] Seq=1 Ack=1 Win=65536 Len=0 [TCP CHECKSUM INCORRECT]
//! ```
//!
//! # Lines
//!
//! Every line starts with the event's time in seconds with six decimals (the [`Instant`] as
//! given, not relative to the first event).
//!
//! * **Packet**: `TIME SRC → DST INFO`. `SRC` and `DST` are the names registered with
//!   [`Renderer::name`] for the packet's addresses, or the addresses themselves. `INFO` is, for
//!   TCP, [`wire::tcp::Repr::display`] with the conversation's context (below); for ICMP and
//!   ICMPv6 the message's `Display`; for other protocols `PROTO len=N`; for a non-first IPv4
//!   fragment `PROTO fragment off=N len=N`, plus ` MF` when more follow. A TCP segment or ICMP
//!   message that does not parse is `PROTO [malformed: ERROR]`; checksums that do not verify
//!   add ` [TCP CHECKSUM INCORRECT]`, ` [ICMP CHECKSUM INCORRECT]` or
//!   ` [IP CHECKSUM INCORRECT]`. A packet whose IP header does not parse is
//!   `TIME NODE [malformed: ERROR]`.
//! * **State change**: appended to a packet line as `   FROM → TO` (see below), otherwise a
//!   line of its own: `TIME NODE  FROM → TO (REASON)`.
//! * **Drop**: `TIME NODE DROP REASON`, plus `: SRC → DST INFO` when the packet is given.
//! * **Note**: `TIME NODE NOTE TEXT`.
//!
//! # Conversations
//!
//! TCP segments are grouped, as Wireshark does, by their unordered 4-tuple. The renderer learns
//! each side's initial sequence number from its SYN (a SYN-ACK also gives the other side's, as
//! its acknowledgement number minus one) and shows `Seq=`, `Ack=` and SACK edges relative to
//! them; a number whose ISN was never seen stays absolute ([`Renderer::absolute`] shows every
//! number as it is on the wire). Window scale shifts are learned from
//! the SYNs too, and `Win=` is scaled (never on a SYN) once both SYNs have been seen and both
//! carried a window scale option, as RFC 7323 §2.2 makes scaling take effect. A SYN whose
//! sequence number differs from the ISN already known for that side starts the conversation
//! afresh (a new connection on the same 4-tuple). Only packets whose checksums verify teach
//! anything; dropped packets (the `bytes` of a Drop) are shown with what is known but teach
//! nothing. The table grows with the number of distinct 4-tuples seen and is never pruned.
//!
//! # Where state changes go
//!
//! A state change belongs on the line of the packet that caused it, or of the packet it
//! causes. The renderer therefore holds back the last line it produced:
//!
//! 1. A State event whose node and time equal those of the held packet line, and whose
//!    `local`/`remote` pair is that packet's 4-tuple (either way round), is appended to it.
//! 2. Otherwise the held line is released and the state change is held on its own. If the next
//!    event is a displayed packet with the same node, time and 4-tuple, the held state changes
//!    are appended to that packet's line (a change made just before sending, like
//!    CLOSED → SYN-SENT on connect); if not, each becomes a line of its own.
//! 3. Consecutive changes on one line are chained: `   FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT`
//!    when each starts where the last ended, `, FROM → TO` otherwise. The reason is shown only
//!    on lines of their own.
//! 4. Any other displayed packet, drop or note releases what is held first, so lines always
//!    come out in event order. A packet hidden by the level or direction filter releases a held
//!    packet line (a state change after it was more likely caused by the hidden packet) but
//!    leaves held state changes waiting for the packet they lead to.
//!
//! The appended text starts after three spaces; [`Renderer::state_column`] pads packet lines to
//! a column first so that the states line up. [`Renderer::finish`] releases the held line.
//!
//! # Taps
//!
//! A host reports the packets it sends (`Out`) and receives (`In`). When both ends of a link
//! feed one renderer, each packet arrives twice; [`Renderer::only`] keeps one direction (`Out`
//! shows each packet once, at its send time, including packets the network then loses).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use super::{Direction, NodeName, TraceEvent, TraceLevel};
use crate::tcp::{SeqNum, State};
use crate::time::Instant;
use crate::wire::{self, IpProtocol, icmpv4, icmpv6, ipv4, ipv6, ipv6ext, tcp};

/// Turns [`TraceEvent`]s into lines; see the [module documentation](self) for the exact format.
#[derive(Debug, Clone)]
pub struct Renderer {
    level: TraceLevel,
    only: Option<Direction>,
    state_column: usize,
    absolute: bool,
    names: HashMap<IpAddr, String>,
    conversations: HashMap<ConvKey, Conversation>,
    held: Option<Held>,
}

/// One end of a TCP conversation.
pub(crate) type Endpoint = (IpAddr, u16);

/// A conversation's unordered 4-tuple: the smaller endpoint first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConvKey {
    pub(crate) lo: Endpoint,
    pub(crate) hi: Endpoint,
}

impl ConvKey {
    /// The key of the conversation between `a` and `b`, and the index of `a`'s side in it.
    pub(crate) fn new(a: Endpoint, b: Endpoint) -> (ConvKey, usize) {
        if a <= b {
            (ConvKey { lo: a, hi: b }, 0)
        } else {
            (ConvKey { lo: b, hi: a }, 1)
        }
    }

    pub(crate) fn of_sockets(a: SocketAddr, b: SocketAddr) -> ConvKey {
        ConvKey::new((a.ip(), a.port()), (b.ip(), b.port())).0
    }
}

/// What is known of one side of a conversation.
#[derive(Debug, Clone, Copy, Default)]
struct Side {
    isn: Option<SeqNum>,
    /// `None` until this side's SYN is seen, then the window scale option it carried.
    window_scale: Option<Option<u8>>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Conversation {
    sides: [Side; 2],
    /// The third segment of the handshake (the ACK of the SYN-ACK) has been seen.
    handshake_acked: bool,
    /// Per side: the sequence number just past its FIN, until an ACK of it is seen.
    fin_end: [Option<SeqNum>; 2],
}

impl Conversation {
    /// How to show a segment sent by side `i`.
    pub(crate) fn context(&self, i: usize) -> tcp::DisplayContext {
        let (me, peer) = (&self.sides[i], &self.sides[1 - i]);
        let window_shift = match (me.window_scale, peer.window_scale) {
            (Some(Some(shift)), Some(Some(_))) => Some(shift),
            _ => None,
        };
        tcp::DisplayContext {
            isn_sender: me.isn,
            isn_receiver: peer.isn,
            window_shift,
        }
    }

    /// Watches a (checksum-valid) segment sent by side `i` and says whether it is a pure ACK
    /// that belongs to the opening or closing of the connection: the third segment of the
    /// handshake, or the ACK of a FIN. Those are shown at the handshake level.
    fn observe(&mut self, i: usize, seg: &tcp::Repr<'_>) -> bool {
        let f = seg.flags;
        if f.fin() {
            self.fin_end[i] = Some(seg.seq + seg.payload.len() + 1u32);
        }
        if f.syn() || f.fin() || f.rst() || !f.ack() || !seg.payload.is_empty() {
            return false;
        }
        let peer = &self.sides[1 - i];
        if !self.handshake_acked
            && self.sides[i].isn.is_some()
            && peer.isn.is_some_and(|isn| seg.ack == isn + 1u32)
        {
            self.handshake_acked = true;
            return true;
        }
        if self.fin_end[1 - i].is_some_and(|end| seg.ack == end) {
            self.fin_end[1 - i] = None;
            return true;
        }
        false
    }

    /// Learns from a segment sent by side `i`.
    pub(crate) fn learn(&mut self, i: usize, seg: &tcp::Repr<'_>) {
        if !seg.flags.syn() {
            return;
        }
        if !seg.flags.ack() && self.sides[i].isn.is_some_and(|isn| isn != seg.seq) {
            // A new connection on the same 4-tuple.
            *self = Conversation::default();
        }
        let me = &mut self.sides[i];
        me.isn = Some(seg.seq);
        me.window_scale = Some(seg.options.window_scale);
        if seg.flags.ack() {
            let peer = &mut self.sides[1 - i];
            if peer.isn.is_none() {
                peer.isn = Some(seg.ack - 1u32);
            }
        }
    }
}

/// A line held back so that state changes can join it.
#[derive(Debug, Clone)]
struct Held {
    time: Instant,
    node: NodeName,
    conv: Option<ConvKey>,
    /// The packet line; `None` while only state changes are held, waiting for their packet.
    line: Option<String>,
    states: Vec<(State, State, &'static str)>,
}

/// The parts of an IP packet the renderer looks at.
pub(crate) struct Ip<'a> {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) proto: IpProtocol,
    pub(crate) payload: &'a [u8],
    header_checksum_ok: bool,
    /// Offset in bytes and the MF bit, for fragments (IPv4, or an IPv6 Fragment header).
    pub(crate) fragment: Option<(u16, bool)>,
}

pub(crate) fn parse_ip(bytes: &[u8]) -> Result<Ip<'_>, wire::Error> {
    match bytes.first().map(|b| b >> 4) {
        None => Err(wire::Error::Truncated),
        Some(4) => {
            let p = ipv4::Packet::new_checked(bytes)?;
            let start = p.header_len();
            let payload = bytes
                .get(start..start + p.payload().len())
                .ok_or(wire::Error::BadLength)?;
            Ok(Ip {
                src: IpAddr::V4(p.src_addr()),
                dst: IpAddr::V4(p.dst_addr()),
                proto: p.protocol(),
                payload,
                header_checksum_ok: p.verify_checksum(),
                fragment: (p.frag_offset() != 0 || p.more_frags())
                    .then(|| (p.frag_offset(), p.more_frags())),
            })
        }
        Some(6) => {
            let p = ipv6::Packet::new_checked(bytes)?;
            let start = ipv6::HEADER_LEN;
            let all = bytes
                .get(start..start + p.payload().len())
                .ok_or(wire::Error::BadLength)?;
            // Past the extension headers to the upper layer (RFC 8200 §4), as IPv4's payload
            // starts past its options.
            let chain = ipv6ext::Chain::walk(u8::from(p.next_header()), all)?;
            let fragment = chain.fragment().map(|h| {
                let f = ipv6ext::FragmentHeader::new_unchecked(&all[h.offset..]);
                (f.frag_offset(), f.more_frags())
            });
            Ok(Ip {
                src: IpAddr::V6(p.src_addr()),
                dst: IpAddr::V6(p.dst_addr()),
                proto: IpProtocol::from(chain.upper),
                payload: &all[chain.upper_offset..],
                header_checksum_ok: true,
                // An atomic fragment (offset 0, no more) is a whole packet.
                fragment: fragment.filter(|&(off, more)| off != 0 || more),
            })
        }
        Some(_) => Err(wire::Error::BadVersion),
    }
}

/// The protocol's usual name.
fn proto_name(p: IpProtocol) -> String {
    match p {
        IpProtocol::Icmp => "ICMP".into(),
        IpProtocol::Tcp => "TCP".into(),
        IpProtocol::Udp => "UDP".into(),
        IpProtocol::Icmpv6 => "ICMPv6".into(),
        IpProtocol::HopByHop => "IPv6-HopByHop".into(),
        IpProtocol::Routing => "IPv6-Route".into(),
        IpProtocol::Fragment => "IPv6-Frag".into(),
        IpProtocol::NoNextHeader => "IPv6-NoNxt".into(),
        IpProtocol::DestOpts => "IPv6-Opts".into(),
        IpProtocol::Unknown(n) => format!("proto={n}"),
    }
}

/// `secs.micros`, six decimals.
fn fmt_time(t: Instant) -> String {
    let us = t.total_micros();
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Summarizes one IP packet without any conversation state or names: addresses as they are,
/// absolute sequence numbers. Never panics; a packet that does not parse is
/// `[malformed: ERROR]`.
///
/// ```
/// assert_eq!(
///     synack::trace::summarize(&[0x45, 0]),
///     "[malformed: packet shorter than its fixed header]"
/// );
/// ```
pub fn summarize(bytes: &[u8]) -> String {
    Renderer::new(TraceLevel::All).describe(bytes)
}

impl Renderer {
    /// A renderer that shows what `level` admits, from both directions, with no names.
    pub fn new(level: TraceLevel) -> Renderer {
        Renderer {
            level,
            only: None,
            state_column: 0,
            absolute: false,
            names: HashMap::new(),
            conversations: HashMap::new(),
            held: None,
        }
    }

    /// Shows `addr` as `name` in packet lines.
    pub fn name(&mut self, addr: IpAddr, name: impl Into<String>) -> &mut Renderer {
        self.names.insert(addr, name.into());
        self
    }

    /// Shows only packets that crossed their host's interface in direction `dir`; packets of the
    /// other direction are ignored (they teach the conversation table nothing either).
    pub fn only(&mut self, dir: Direction) -> &mut Renderer {
        self.only = Some(dir);
        self
    }

    /// Shows sequence and acknowledgement numbers as they are on the wire instead of relative
    /// to the ISNs (Wireshark's "Relative sequence numbers" turned off): for conversations
    /// where two SYNs with different ISNs meet, like RFC 9293's figures. `Win=` is still
    /// scaled once both SYNs agreed on it.
    pub fn absolute(&mut self) -> &mut Renderer {
        self.absolute = true;
        self
    }

    /// Pads packet lines with spaces to `column` characters before appending state changes.
    pub fn state_column(&mut self, column: usize) -> &mut Renderer {
        self.state_column = column;
        self
    }

    /// Summarizes one IP packet as a packet line does, without the time: with registered names
    /// and the conversation context learned so far, learning nothing from it.
    pub fn describe(&self, bytes: &[u8]) -> String {
        match parse_ip(bytes) {
            Ok(ip) => self.describe_ip(&ip),
            Err(e) => format!("[malformed: {e}]"),
        }
    }

    fn name_of(&self, addr: IpAddr) -> String {
        match self.names.get(&addr) {
            Some(n) => n.clone(),
            None => addr.to_string(),
        }
    }

    fn describe_ip(&self, ip: &Ip<'_>) -> String {
        let mut s = format!(
            "{} \u{2192} {} ",
            self.name_of(ip.src),
            self.name_of(ip.dst)
        );
        if let Some((off, more)) = ip.fragment {
            let _ = write!(
                s,
                "{} fragment off={off} len={}",
                proto_name(ip.proto),
                ip.payload.len()
            );
            if more {
                s.push_str(" MF");
            }
        } else {
            match ip.proto {
                IpProtocol::Tcp => self.describe_tcp(ip, &mut s),
                IpProtocol::Icmp => describe_icmpv4(ip, &mut s),
                IpProtocol::Icmpv6 => describe_icmpv6(ip, &mut s),
                other => {
                    let _ = write!(s, "{} len={}", proto_name(other), ip.payload.len());
                }
            }
        }
        if !ip.header_checksum_ok {
            s.push_str(" [IP CHECKSUM INCORRECT]");
        }
        s
    }

    fn describe_tcp(&self, ip: &Ip<'_>, s: &mut String) {
        let parsed = tcp::Packet::new_checked(ip.payload)
            .and_then(|p| tcp::Repr::parse(&p, ip.src, ip.dst, false).map(|r| (p, r)));
        match parsed {
            Ok((p, r)) => {
                let (key, i) = ConvKey::new((ip.src, r.src_port), (ip.dst, r.dst_port));
                let mut ctx = self
                    .conversations
                    .get(&key)
                    .map(|c| c.context(i))
                    .unwrap_or_default();
                if self.absolute {
                    ctx.isn_sender = None;
                    ctx.isn_receiver = None;
                }
                let _ = write!(s, "{}", r.display(ctx));
                if !p.verify_checksum(ip.src, ip.dst) {
                    s.push_str(" [TCP CHECKSUM INCORRECT]");
                }
            }
            Err(e) => {
                let _ = write!(s, "TCP [malformed: {e}]");
            }
        }
    }

    /// Learns ISNs and window scales from a packet on the tap. Returns the conversation and
    /// whether the packet is a pure ACK of the opening or closing (see `Conversation::observe`).
    fn learn(&mut self, ip: &Ip<'_>) -> Option<(ConvKey, bool)> {
        if ip.proto != IpProtocol::Tcp || ip.fragment.is_some() {
            return None;
        }
        let p = tcp::Packet::new_checked(ip.payload).ok()?;
        let r = tcp::Repr::parse(&p, ip.src, ip.dst, false).ok()?;
        let (key, i) = ConvKey::new((ip.src, r.src_port), (ip.dst, r.dst_port));
        // Only undamaged segments teach anything.
        let mut notable = false;
        if ip.header_checksum_ok && p.verify_checksum(ip.src, ip.dst) {
            let conv = self.conversations.entry(key).or_default();
            if r.flags.syn() {
                conv.learn(i, &r);
            }
            notable = conv.observe(i, &r);
        }
        Some((key, notable))
    }

    /// Takes one event; returns the lines it completes (possibly none: the last packet line is
    /// held back until it is clear that no state change joins it). Call [`finish`](Self::finish)
    /// after the last event.
    pub fn push(&mut self, e: &TraceEvent) -> Vec<String> {
        if self.level == TraceLevel::None {
            return Vec::new();
        }
        match e {
            TraceEvent::Packet {
                time,
                dir,
                node,
                bytes,
            } => {
                if self.only.is_some_and(|only| only != *dir) {
                    return self.release_packet_line();
                }
                let parsed = parse_ip(bytes);
                let (conv, notable) = match &parsed {
                    Ok(ip) => self.learn(ip).map_or((None, false), |(k, n)| (Some(k), n)),
                    Err(_) => (None, false),
                };
                let shown =
                    self.level.admits(e) || (notable && self.level == TraceLevel::Handshake);
                if !shown {
                    return self.release_packet_line();
                }
                let line = match &parsed {
                    Ok(ip) => format!("{} {}", fmt_time(*time), self.describe_ip(ip)),
                    Err(err) => format!("{} {node} [malformed: {err}]", fmt_time(*time)),
                };
                let mut out = Vec::new();
                let mut states = Vec::new();
                if let Some(h) = self.held.take() {
                    let joins = h.line.is_none()
                        && h.time == *time
                        && h.node == *node
                        && conv.is_some()
                        && h.conv == conv;
                    if joins {
                        states = h.states;
                    } else {
                        out.extend(self.release(h));
                    }
                }
                self.held = Some(Held {
                    time: *time,
                    node: node.clone(),
                    conv,
                    line: Some(line),
                    states,
                });
                out
            }
            TraceEvent::State {
                time,
                node,
                local,
                remote,
                from,
                to,
                reason,
            } => {
                let key = ConvKey::of_sockets(*local, *remote);
                if let Some(h) = &mut self.held {
                    if h.time == *time && h.node == *node && h.conv == Some(key) {
                        h.states.push((*from, *to, reason));
                        return Vec::new();
                    }
                }
                let out = self.finish();
                self.held = Some(Held {
                    time: *time,
                    node: node.clone(),
                    conv: Some(key),
                    line: None,
                    states: vec![(*from, *to, reason)],
                });
                out
            }
            TraceEvent::Drop {
                time,
                node,
                reason,
                bytes,
            } => {
                if !self.level.admits(e) {
                    return Vec::new();
                }
                let mut out = self.finish();
                let mut line = format!("{} {node} DROP {reason}", fmt_time(*time));
                if let Some(b) = bytes {
                    line.push_str(": ");
                    line.push_str(&self.describe(b));
                }
                out.push(line);
                out
            }
            TraceEvent::Note { time, node, text } => {
                if !self.level.admits(e) {
                    return Vec::new();
                }
                let mut out = self.finish();
                out.push(format!("{} {node} NOTE {text}", fmt_time(*time)));
                out
            }
        }
    }

    /// Releases the held line, if any. The renderer stays usable (and keeps its conversations).
    pub fn finish(&mut self) -> Vec<String> {
        match self.held.take() {
            Some(h) => self.release(h),
            None => Vec::new(),
        }
    }

    /// Releases the held line if it is a packet line; held state changes stay.
    fn release_packet_line(&mut self) -> Vec<String> {
        match self.held.take() {
            Some(h) if h.line.is_some() => self.release(h),
            other => {
                self.held = other;
                Vec::new()
            }
        }
    }

    /// Renders a whole sequence of events, [`finish`](Self::finish) included.
    pub fn render<'e>(&mut self, events: impl IntoIterator<Item = &'e TraceEvent>) -> Vec<String> {
        let mut lines = Vec::new();
        for e in events {
            lines.extend(self.push(e));
        }
        lines.extend(self.finish());
        lines
    }

    fn release(&self, h: Held) -> Vec<String> {
        match h.line {
            Some(mut line) => {
                if let Some((first, rest)) = h.states.split_first() {
                    let width = line.chars().count();
                    line.extend(std::iter::repeat_n(
                        ' ',
                        self.state_column.saturating_sub(width),
                    ));
                    let _ = write!(line, "   {} \u{2192} {}", first.0, first.1);
                    let mut last = first.1;
                    for &(from, to, _) in rest {
                        if from == last {
                            let _ = write!(line, " \u{2192} {to}");
                        } else {
                            let _ = write!(line, ", {from} \u{2192} {to}");
                        }
                        last = to;
                    }
                }
                vec![line]
            }
            None => h
                .states
                .iter()
                .map(|(from, to, reason)| {
                    format!(
                        "{} {}  {from} \u{2192} {to} ({reason})",
                        fmt_time(h.time),
                        h.node
                    )
                })
                .collect(),
        }
    }
}

fn describe_icmpv4(ip: &Ip<'_>, s: &mut String) {
    let parsed = icmpv4::Packet::new_checked(ip.payload).map(|p| {
        let ok = p.verify_checksum();
        (
            icmpv4::Repr::parse(&p, false),
            p.msg_type(),
            p.msg_code(),
            ok,
        )
    });
    write_icmp(s, "ICMP", parsed);
}

fn describe_icmpv6(ip: &Ip<'_>, s: &mut String) {
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (ip.src, ip.dst) else {
        s.push_str("ICMPv6 [malformed: not carried over IPv6]");
        return;
    };
    let parsed = icmpv6::Packet::new_checked(ip.payload).map(|p| {
        let ok = p.verify_checksum(src, dst);
        (
            icmpv6::Repr::parse(&p, src, dst, false),
            p.msg_type(),
            p.msg_code(),
            ok,
        )
    });
    write_icmp(s, "ICMPv6", parsed);
}

/// Writes a parsed ICMP or ICMPv6 message: its repr, or type and code when the type is not
/// modelled, or the parse error; then a note if the checksum does not verify.
fn write_icmp<R: std::fmt::Display, T: std::fmt::Display, C: std::fmt::Display>(
    s: &mut String,
    label: &str,
    parsed: Result<(Result<R, wire::Error>, T, C, bool), wire::Error>,
) {
    let checksum_ok = match parsed {
        Ok((repr, ty, code, ok)) => {
            let _ = match repr {
                Ok(r) => write!(s, "{r}"),
                Err(wire::Error::Unrecognized) => write!(s, "{label} {ty} code={code}"),
                Err(e) => write!(s, "{label} [malformed: {e}]"),
            };
            ok
        }
        Err(e) => {
            let _ = write!(s, "{label} [malformed: {e}]");
            true
        }
    };
    if !checksum_ok {
        s.push_str(" [ICMP CHECKSUM INCORRECT]");
    }
}

/// A [`TraceSink`](super::TraceSink) that renders events and writes each line, newline
/// terminated, as soon as it is complete.
#[derive(Debug)]
pub struct RenderSink<W: Write> {
    renderer: Renderer,
    out: W,
    error: Option<io::Error>,
}

impl<W: Write> RenderSink<W> {
    /// Writes `renderer`'s lines to `out`.
    pub fn new(renderer: Renderer, out: W) -> RenderSink<W> {
        RenderSink {
            renderer,
            out,
            error: None,
        }
    }

    /// The renderer, e.g. to register more names.
    pub fn renderer_mut(&mut self) -> &mut Renderer {
        &mut self.renderer
    }

    fn write_lines(&mut self, lines: Vec<String>) {
        for line in lines {
            if self.error.is_some() {
                return;
            }
            if let Err(e) = writeln!(self.out, "{line}") {
                self.error = Some(e);
            }
        }
    }

    /// Writes the held line, flushes, and gives the writer back; or the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        let lines = self.renderer.finish();
        self.write_lines(lines);
        if let Some(e) = self.error {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> super::TraceSink for RenderSink<W> {
    fn event(&mut self, e: &TraceEvent) {
        if self.error.is_none() {
            let lines = self.renderer.push(e);
            self.write_lines(lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::TraceSink;
    use super::super::script::*;
    use super::*;
    use crate::wire::tcp::Flags;
    use std::net::Ipv6Addr;

    fn named(level: TraceLevel) -> Renderer {
        let mut r = Renderer::new(level);
        r.name(CLIENT.ip(), "client").name(SERVER.ip(), "server");
        r
    }

    const FULL: [&str; 9] = [
        "0.000000 client \u{2192} server 49152 \u{2192} 80 [SYN] Seq=0 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=0 TSecr=0 WS=128   CLOSED \u{2192} SYN-SENT",
        "0.010000 server \u{2192} client 80 \u{2192} 49152 [SYN, ACK] Seq=0 Ack=1 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=10 TSecr=0 WS=128   LISTEN \u{2192} SYN-RECEIVED",
        "0.020000 client \u{2192} server 49152 \u{2192} 80 [ACK] Seq=1 Ack=1 Win=65536 Len=0 TSval=20 TSecr=10   SYN-SENT \u{2192} ESTABLISHED",
        "0.020000 client \u{2192} server 49152 \u{2192} 80 [PSH, ACK] Seq=1 Ack=1 Win=65536 Len=100 TSval=20 TSecr=10",
        "0.030000 server \u{2192} client 80 \u{2192} 49152 [ACK] Seq=1 Ack=101 Win=65408 Len=0 TSval=30 TSecr=20   SYN-RECEIVED \u{2192} ESTABLISHED",
        "0.040000 client \u{2192} server 49152 \u{2192} 80 [FIN, ACK] Seq=101 Ack=1 Win=65536 Len=0 TSval=40 TSecr=30   ESTABLISHED \u{2192} FIN-WAIT-1",
        "0.050000 server \u{2192} client 80 \u{2192} 49152 [FIN, ACK] Seq=1 Ack=102 Win=65408 Len=0 TSval=50 TSecr=40   ESTABLISHED \u{2192} CLOSE-WAIT \u{2192} LAST-ACK",
        "0.060000 client \u{2192} server 49152 \u{2192} 80 [ACK] Seq=102 Ack=2 Win=65536 Len=0 TSval=60 TSecr=50   FIN-WAIT-1 \u{2192} FIN-WAIT-2 \u{2192} TIME-WAIT",
        "0.070000 server  LAST-ACK \u{2192} CLOSED (ACK of FIN)",
    ];

    #[test]
    fn full_connection_with_state_changes() {
        let lines = named(TraceLevel::All).render(&connection_events());
        for l in &lines {
            println!("{l}");
        }
        assert_eq!(lines, FULL);
    }

    #[test]
    fn absolute_numbers_are_the_wire_numbers() {
        let mut r = named(TraceLevel::All);
        r.absolute();
        let lines = r.render(&connection_events());
        assert_eq!(lines.len(), FULL.len());
        let abs = |x: u32| x.to_string();
        assert!(lines[0].contains(&format!(" Seq={} ", abs(CLIENT_ISN))));
        assert!(lines[1].contains(&format!(
            " Seq={} Ack={} ",
            abs(SERVER_ISN),
            abs(CLIENT_ISN + 1)
        )));
        // The window is still scaled after the handshake (512 << 7).
        assert!(lines[2].contains(" Win=65536 "), "{}", lines[2]);
        assert!(lines[4].contains(&format!(" Ack={} ", abs(CLIENT_ISN + 101))));
    }

    #[test]
    fn lines_come_out_as_soon_as_they_are_complete() {
        let mut r = named(TraceLevel::All);
        let mut got = Vec::new();
        for e in connection_events() {
            let before = got.len();
            got.extend(r.push(&e));
            // Never more than one line behind.
            assert!(got.len() >= before);
        }
        assert_eq!(got.len(), FULL.len() - 1);
        got.extend(r.finish());
        assert_eq!(got, FULL);
        assert!(r.finish().is_empty());
    }

    #[test]
    fn handshake_level_keeps_syn_fin_and_states() {
        let lines = named(TraceLevel::Handshake).render(&connection_events());
        let expect = [
            FULL[0].to_string(),
            FULL[1].to_string(),
            // The third segment of the handshake is part of it: shown, with its state change.
            FULL[2].to_string(),
            // The data segment and its ACK are hidden, so the server's change stands alone.
            "0.030000 server  SYN-RECEIVED \u{2192} ESTABLISHED (ACK)".to_string(),
            FULL[5].to_string(),
            FULL[6].to_string(),
            // The ACK of the server's FIN belongs to the close: shown.
            FULL[7].to_string(),
            FULL[8].to_string(),
        ];
        assert_eq!(lines, expect);
        assert!(
            named(TraceLevel::None)
                .render(&connection_events())
                .is_empty()
        );
    }

    /// The same packets as both hosts see them (Out at the sender, In at the receiver 10 ms
    /// later), with each state change right after the packet that caused it.
    fn both_taps() -> Vec<TraceEvent> {
        let mut v = Vec::new();
        let pkts = connection_packets();
        let client_sends = [true, false, true, true, false, true, false, true];
        for ((ms, bytes), from_client) in pkts.into_iter().zip(client_sends) {
            let (tx, rx) = if from_client {
                ("client", "server")
            } else {
                ("server", "client")
            };
            v.push(TraceEvent::Packet {
                time: Instant::from_millis(ms),
                dir: Direction::Out,
                node: tx.into(),
                bytes: bytes.clone(),
            });
            v.push(TraceEvent::Packet {
                time: Instant::from_millis(ms + 10),
                dir: Direction::In,
                node: rx.into(),
                bytes,
            });
        }
        v.sort_by_key(|e| e.time());
        // The server's handshake completes on receipt of the client's ACK (In at 30 ms).
        let at = v
            .iter()
            .position(|e| {
                matches!(e, TraceEvent::Packet { time, dir: Direction::In, node, .. }
                    if *time == Instant::from_millis(30) && node == "server")
            })
            .unwrap();
        v.insert(
            at + 1,
            TraceEvent::State {
                time: Instant::from_millis(30),
                node: "server".into(),
                local: SERVER,
                remote: CLIENT,
                from: State::SynReceived,
                to: State::Established,
                reason: "ACK",
            },
        );
        v
    }

    #[test]
    fn in_and_out_taps_and_direction_filter() {
        let events = both_taps();
        let all = named(TraceLevel::All).render(&events);
        assert_eq!(all.len(), 16);
        // The server's In line of the ACK (its first packet at 30 ms) carries the state change;
        // the same packet's Out line (at 20 ms, the client's) does not.
        assert_eq!(all[4], FULL[2].split("   ").next().unwrap());
        assert_eq!(
            all[6],
            "0.030000 client \u{2192} server 49152 \u{2192} 80 [ACK] Seq=1 Ack=1 Win=65536 Len=0 TSval=20 TSecr=10   SYN-RECEIVED \u{2192} ESTABLISHED"
        );
        let mut r = named(TraceLevel::All);
        r.only(Direction::Out);
        let out_only = r.render(&events);
        // With only Out shown, the change made on receipt of the ACK waits (past the hidden
        // receipt of the data) for the next packet the server sends at that time and joins it.
        // (This script has no other state changes.)
        let bare: Vec<_> = FULL[..8]
            .iter()
            .enumerate()
            .map(|(i, l)| match i {
                4 => l.to_string(),
                _ => l.split("   ").next().unwrap().to_string(),
            })
            .collect();
        assert_eq!(out_only, bare);
        let mut r = named(TraceLevel::All);
        r.only(Direction::In);
        assert_eq!(r.render(&events).len(), 8);
    }

    #[test]
    fn absolute_numbers_without_the_syn() {
        let pkts = connection_packets();
        let mut r = named(TraceLevel::All);
        let lines = r.render(
            &pkts[3..5]
                .iter()
                .map(|(ms, b)| packet_event(*ms, b))
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            lines,
            [
                "0.020000 client \u{2192} server 49152 \u{2192} 80 [PSH, ACK] Seq=439041102 Ack=4293918721 Win=512 Len=100 TSval=20 TSecr=10",
                "0.030000 server \u{2192} client 80 \u{2192} 49152 [ACK] Seq=4293918721 Ack=439041202 Win=511 Len=0 TSval=30 TSecr=20",
            ]
        );
        // Unnamed addresses and no state: the free function.
        assert_eq!(
            summarize(&pkts[4].1),
            "198.18.0.2 \u{2192} 198.18.0.1 80 \u{2192} 49152 [ACK] Seq=4293918721 Ack=439041202 Win=511 Len=0 TSval=30 TSecr=20"
        );
    }

    fn packet_event(ms: u64, bytes: &[u8]) -> TraceEvent {
        TraceEvent::Packet {
            time: Instant::from_millis(ms),
            dir: Direction::Out,
            node: "client".into(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn syn_ack_alone_teaches_both_isns_but_no_scaling() {
        let pkts = connection_packets();
        let mut r = named(TraceLevel::All);
        let events: Vec<_> = pkts[1..3]
            .iter()
            .map(|(ms, b)| packet_event(*ms, b))
            .collect();
        let lines = r.render(&events);
        assert!(
            lines[0].contains("[SYN, ACK] Seq=0 Ack=1 Win=65535"),
            "{}",
            lines[0]
        );
        // The client's SYN (and so its window scale) was never seen: Win stays unscaled.
        assert!(
            lines[1].contains("[ACK] Seq=1 Ack=1 Win=512 "),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn new_syn_on_the_same_tuple_restarts_numbering() {
        let mut pkts = connection_packets();
        let again = packet(Seg {
            from_client: true,
            seq: 7,
            ack: 0,
            flags: Flags::SYN,
            window: 1000,
            options: Default::default(),
            payload: &[],
        });
        pkts.push((100, again));
        pkts.push(pkts[4].clone()); // an old ACK from the server: no longer relative to anything
        let events: Vec<_> = pkts.iter().map(|(ms, b)| packet_event(*ms, b)).collect();
        let lines = named(TraceLevel::All).render(&events);
        assert_eq!(
            lines[8],
            "0.100000 client \u{2192} server 49152 \u{2192} 80 [SYN] Seq=0 Win=1000 Len=0"
        );
        assert!(
            lines[9].contains("Seq=4293918721 Ack=439041195 Win=511"),
            "{}",
            lines[9]
        );
    }

    #[test]
    fn drops_notes_and_damaged_packets() {
        let pkts = connection_packets();
        let mut r = named(TraceLevel::All);
        r.render(&[packet_event(0, &pkts[0].1), packet_event(10, &pkts[1].1)]);
        let mut bad = pkts[2].1.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff; // inside the TCP options: TCP checksum wrong
        let mut ip_bad = pkts[2].1.clone();
        ip_bad[8] = 1; // TTL: IP header checksum wrong
        let events = [
            TraceEvent::Drop {
                time: Instant::from_millis(500),
                node: "server".into(),
                reason: "bad checksum",
                bytes: Some(bad),
            },
            TraceEvent::Drop {
                time: Instant::from_millis(500),
                node: "server".into(),
                reason: "no listener",
                bytes: None,
            },
            TraceEvent::Note {
                time: Instant::from_millis(1500),
                node: "client".into(),
                text: "RTO fired".into(),
            },
            packet_event(1600, &ip_bad),
        ];
        assert_eq!(
            r.render(&events),
            [
                "0.500000 server DROP bad checksum: client \u{2192} server 49152 \u{2192} 80 [ACK] Seq=1 Ack=1 Win=65536 Len=0 TSval=20 TSecr=245 [TCP CHECKSUM INCORRECT]",
                "0.500000 server DROP no listener",
                "1.500000 client NOTE RTO fired",
                "1.600000 client \u{2192} server 49152 \u{2192} 80 [ACK] Seq=1 Ack=1 Win=65536 Len=0 TSval=20 TSecr=10 [IP CHECKSUM INCORRECT]",
            ]
        );
        // Shown at the handshake level too: drops and notes (exceptional events).
        let mut h = named(TraceLevel::Handshake);
        assert_eq!(
            h.render(&events[1..3]),
            [
                "0.500000 server DROP no listener",
                "1.500000 client NOTE RTO fired"
            ]
        );
    }

    #[test]
    fn malformed_input_is_a_line_not_a_panic() {
        let pkts = connection_packets();
        let mut bad_opt = pkts[0].1.clone();
        bad_opt[20 + 21] = 0; // MSS option length 0
        let mut bad_off = pkts[0].1.clone();
        bad_off[20 + 12] = 0xf0; // data offset 60 > segment
        let mut short_tcp = pkts[0].1.clone();
        short_tcp.truncate(30);
        short_tcp[3] = 30; // total length
        let cases: [(&[u8], &str); 6] = [
            (&[], "[malformed: packet shorter than its fixed header]"),
            (&[0x70; 40], "[malformed: wrong IP version]"),
            (
                &pkts[0].1[..30],
                "[malformed: length field disagrees with the buffer]",
            ),
            (
                &bad_opt,
                "client \u{2192} server TCP [malformed: malformed TCP option]",
            ),
            (
                &bad_off,
                "client \u{2192} server TCP [malformed: header length field out of range]",
            ),
            (
                &short_tcp,
                "client \u{2192} server TCP [malformed: packet shorter than its fixed header] [IP CHECKSUM INCORRECT]",
            ),
        ];
        let mut r = named(TraceLevel::All);
        for (bytes, want) in cases {
            assert_eq!(r.describe(bytes), want);
            let lines = r.render(&[packet_event(1, bytes)]);
            assert_eq!(lines.len(), 1);
            if want.starts_with('[') {
                assert_eq!(lines[0], format!("0.001000 client {want}"));
            } else {
                assert_eq!(lines[0], format!("0.001000 {want}"));
            }
        }
    }

    #[test]
    fn never_panics_on_mutated_packets() {
        // Every single-byte corruption and every truncation of every packet of the script.
        let mut r = named(TraceLevel::All);
        for (_, p) in connection_packets() {
            for len in 0..=p.len() {
                let _ = r.push(&packet_event(0, &p[..len]));
            }
            for i in 0..p.len() {
                for v in [0x00, 0x01, 0x0f, 0x45, 0x60, 0x80, 0xff] {
                    let mut q = p.clone();
                    q[i] = v;
                    let _ = r.push(&packet_event(0, &q));
                    let _ = summarize(&q);
                }
            }
        }
        let _ = r.finish();
    }

    #[test]
    fn icmp_udp_and_fragments() {
        // ICMP echo request 198.18.0.1 → 198.18.0.2.
        let echo = icmpv4::Repr::EchoRequest {
            ident: 7,
            seq_no: 1,
            data: b"ping",
        };
        let ip = ipv4::Repr::new(CLIENT_IP, SERVER_IP, IpProtocol::Icmp, echo.buffer_len());
        let mut buf = vec![0u8; ip.buffer_len()];
        let mut p = ipv4::Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p, true).unwrap();
        echo.emit(&mut icmpv4::Packet::new_unchecked(p.payload_mut()), true)
            .unwrap();
        let r = named(TraceLevel::All);
        assert_eq!(r.describe(&buf), format!("client \u{2192} server {echo}"));
        // UDP.
        let ip = ipv4::Repr::new(CLIENT_IP, SERVER_IP, IpProtocol::Udp, 8);
        let mut udp = vec![0u8; ip.buffer_len()];
        ip.emit(&mut ipv4::Packet::new_unchecked(&mut udp[..]), true)
            .unwrap();
        assert_eq!(r.describe(&udp), "client \u{2192} server UDP len=8");
        // A non-first fragment of a TCP packet.
        let mut frag = connection_packets()[0].1.clone();
        {
            let mut p = ipv4::Packet::new_unchecked(&mut frag[..]);
            p.set_frag_offset(1480);
            p.set_more_frags(true);
            p.fill_checksum();
        }
        assert_eq!(
            r.describe(&frag),
            "client \u{2192} server TCP fragment off=1480 len=40 MF"
        );
        // ICMPv6 echo reply over IPv6, unnamed addresses.
        let (a, b) = (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        );
        let reply = icmpv6::Repr::EchoReply {
            ident: 1,
            seq_no: 2,
            data: &[],
        };
        let ip = ipv6::Repr::new(a, b, IpProtocol::Icmpv6, reply.buffer_len());
        let mut buf = vec![0u8; ip.buffer_len()];
        let mut p = ipv6::Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p).unwrap();
        reply
            .emit(
                &mut icmpv6::Packet::new_unchecked(p.payload_mut()),
                a,
                b,
                true,
            )
            .unwrap();
        assert_eq!(
            summarize(&buf),
            format!("2001:db8::1 \u{2192} 2001:db8::2 {reply}")
        );
        let last = buf.len() - 1;
        buf[last] ^= 1;
        assert!(summarize(&buf).ends_with(" [ICMP CHECKSUM INCORRECT]"));
        // IPv6 behind a Destination Options header, and IPv6 fragments: shown like IPv4's.
        let opts_then_reply = |next: u8, ext: &[u8]| {
            let mut msg = vec![0u8; reply.buffer_len()];
            reply
                .emit(&mut icmpv6::Packet::new_unchecked(&mut msg[..]), a, b, true)
                .unwrap();
            let mut payload = ext.to_vec();
            payload.extend_from_slice(&msg);
            let ip = ipv6::Repr::new(a, b, IpProtocol::from(next), payload.len());
            let mut buf = vec![0u8; ip.buffer_len()];
            let mut p = ipv6::Packet::new_unchecked(&mut buf[..]);
            ip.emit(&mut p).unwrap();
            p.payload_mut().copy_from_slice(&payload);
            buf
        };
        let dst_opts = opts_then_reply(60, &[58, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(
            summarize(&dst_opts),
            format!("2001:db8::1 \u{2192} 2001:db8::2 {reply}")
        );
        let first = opts_then_reply(44, &[58, 0, 0, 1, 0, 0, 0, 9]);
        assert_eq!(
            summarize(&first),
            "2001:db8::1 \u{2192} 2001:db8::2 ICMPv6 fragment off=0 len=8 MF"
        );
        let later = opts_then_reply(44, &[58, 0, 0x05, 0xa8, 0, 0, 0, 9]);
        assert_eq!(
            summarize(&later),
            "2001:db8::1 \u{2192} 2001:db8::2 ICMPv6 fragment off=1448 len=8"
        );
    }

    #[test]
    fn state_column_pads_and_sink_writes_lines() {
        let mut r = named(TraceLevel::Handshake);
        r.state_column(180);
        let mut sink = RenderSink::new(r, Vec::new());
        for e in connection_events() {
            sink.event(&e);
        }
        let text = String::from_utf8(sink.finish().unwrap()).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(
            first.chars().count(),
            180 + 3 + "CLOSED → SYN-SENT".chars().count()
        );
        assert!(first.contains("WS=128 "), "{first}");
        assert!(first.ends_with("    CLOSED \u{2192} SYN-SENT"), "{first}");
        assert_eq!(text.lines().count(), 8);
    }
}
