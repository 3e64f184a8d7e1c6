//! From the lab's records to the lines of an explanation: grouping (a state change joins the
//! line of the packet that caused it, or that it causes, as in `synack demo`), the text of each
//! line from the trace [`Renderer`], and the "why" sentences attached by matching what the
//! stacks actually did.

use core::net::{IpAddr, SocketAddr};
use std::collections::{HashMap, VecDeque};

use super::lab::{Happening, Record, Transit};
use super::text::{self, Lang};
use crate::tcp::State;
use crate::time::Instant;
use crate::trace::{Direction, Renderer, TraceEvent, TraceLevel};
use crate::wire::{IpProtocol, ipv4, tcp as wtcp};

/// A state change shown on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub node: String,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub from: State,
    pub to: State,
    /// What caused it, in the stack's words.
    pub reason: &'static str,
}

/// A change of the watched sender's congestion window, in segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CwndChange {
    /// `(cwnd, ssthresh)` before.
    pub from: (u32, u32),
    /// `(cwnd, ssthresh)` after.
    pub to: (u32, u32),
}

/// What a line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A packet on the wire, shown once, at its send time.
    Segment {
        /// Names (or addresses) of its source and destination.
        from: String,
        to: String,
        /// The whole IP packet.
        packet: Vec<u8>,
        transit: Transit,
        /// When it reached its destination: `None` if nobody received it (lost, or no host
        /// there) or the run ended first.
        arrived: Option<Instant>,
        /// For a packet the scenario put on the wire, what it stands for ("old duplicate
        /// SYN"), in the explanation's language.
        injected: Option<&'static str>,
        /// The sender's congestion window changed just before it was sent.
        cwnd: Option<CwndChange>,
    },
    /// A state change with no packet of its own on this line.
    State,
    /// A host discarded a packet; `packet` is the one it was handling, when known.
    Drop {
        reason: &'static str,
        packet: Option<Vec<u8>>,
    },
    /// Something else a stack noted: a retransmission, a timer, a SYN cookie.
    Note { text: String },
    /// An application call and its result.
    Call { text: String },
    /// The watched sender's congestion window changed, with no packet to show it on.
    Cwnd(CwndChange),
    /// Something the lab did to a host.
    Happening(Happening),
}

/// Why a line happened: one sentence and the section of the RFC that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    pub text: String,
    pub cite: &'static str,
}

/// One line of a conversation: when, where, what, and (for key events) why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub time: Instant,
    /// The host it happened on; a packet's sender ("network" for a packet the scenario put on
    /// the wire).
    pub node: String,
    pub what: What,
    /// State changes on this line (of `node`, caused by this packet or causing it).
    pub states: Vec<StateChange>,
    /// The line as printed: the trace renderer's notation, plus the annotations.
    pub line: String,
    pub why: Option<Why>,
    /// False for lines left out of the printed conversation (a flood's thousandth SYN); they
    /// are still here for pictures and tests.
    pub shown: bool,
}

impl Step {
    /// The TCP segment of this line's packet (a sent segment, or the one a drop was about).
    pub fn segment(&self) -> Option<wtcp::Repr<'_>> {
        let bytes = match &self.what {
            What::Segment { packet, .. } => packet,
            What::Drop {
                packet: Some(p), ..
            } => p,
            _ => return None,
        };
        let ip = ipv4::Packet::new_checked(&bytes[..]).ok()?;
        if ip.protocol() != IpProtocol::Tcp {
            return None;
        }
        let start = ip.header_len();
        let payload = bytes.get(start..start + ip.payload().len())?;
        let tcp = wtcp::Packet::new_checked(payload).ok()?;
        let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
        wtcp::Repr::parse(&tcp, src, dst, false).ok()
    }

    /// The state changes of this line as `(from, to)`.
    pub fn transitions(&self) -> impl Iterator<Item = (State, State)> + '_ {
        self.states.iter().map(|s| (s.from, s.to))
    }
}

/// `secs.micros`, as the renderer prints times.
pub(crate) fn fmt_time(t: Instant) -> String {
    let us = t.total_micros();
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// The unordered pair of sockets a packet or state change belongs to.
type Conv = (SocketAddr, SocketAddr);

fn conv(a: SocketAddr, b: SocketAddr) -> Conv {
    if a <= b { (a, b) } else { (b, a) }
}

fn packet_conv(bytes: &[u8]) -> Option<Conv> {
    packet_addrs(bytes).map(|(a, b)| conv(a, b))
}

/// The source and destination sockets of a TCP packet.
pub(super) fn packet_addrs(bytes: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let ip = ipv4::Packet::new_checked(bytes).ok()?;
    if ip.protocol() != IpProtocol::Tcp {
        return None;
    }
    let tcp = wtcp::Packet::new_checked(ip.payload()).ok()?;
    Some((
        SocketAddr::new(IpAddr::V4(ip.src_addr()), tcp.src_port()),
        SocketAddr::new(IpAddr::V4(ip.dst_addr()), tcp.dst_port()),
    ))
}

/// A packet line being assembled: the packet, and the state changes that join it.
struct Group {
    time: Instant,
    node: String,
    conv: Option<Conv>,
    packet: TraceEvent,
    transit: Transit,
    injected: Option<&'static str>,
    cwnd: Option<CwndChange>,
    states: Vec<TraceEvent>,
}

/// A state change waiting for the packet it causes (CLOSED → SYN-SENT before the SYN).
struct Pending {
    time: Instant,
    node: String,
    conv: Option<Conv>,
    ev: TraceEvent,
}

/// Turns records into steps.
///
/// A state change joins the line of a packet of the same host, instant and connection: the
/// packet that caused it (sent just before) or the one it causes (sent just after), even when
/// other hosts' events come in between; state changes that find no packet get lines of their
/// own, once their instant is over or before an application call. A congestion-window change
/// joins the next packet its host sends at that instant likewise.
pub(crate) struct Builder {
    lang: Lang,
    renderer: Renderer,
    names: Vec<(IpAddr, String)>,
    steps: Vec<Step>,
    group: Option<Group>,
    pending: Vec<Pending>,
    cwnd: Option<(Instant, String, CwndChange)>,
}

impl Builder {
    /// `absolute`: sequence numbers as on the wire, not relative to the ISNs.
    pub fn new(lang: Lang, names: &[(IpAddr, &'static str)], absolute: bool) -> Builder {
        let mut renderer = Renderer::new(TraceLevel::All);
        renderer.only(Direction::Out);
        if absolute {
            renderer.absolute();
        }
        for &(addr, name) in names {
            renderer.name(addr, name);
        }
        Builder {
            lang,
            renderer,
            names: names.iter().map(|&(a, n)| (a, n.to_string())).collect(),
            steps: Vec::new(),
            group: None,
            pending: Vec::new(),
            cwnd: None,
        }
    }

    /// Every record, in order; returns the steps.
    pub fn build(mut self, records: &[Record]) -> Vec<Step> {
        for r in records {
            self.record(r, records);
        }
        self.flush_all();
        arrivals(&mut self.steps, records);
        self.steps
    }

    fn name_of(&self, addr: IpAddr) -> String {
        self.names
            .iter()
            .find(|(a, _)| *a == addr)
            .map_or_else(|| addr.to_string(), |(_, n)| n.clone())
    }

    /// Everything held from instants before `time` goes out.
    fn advance(&mut self, time: Instant) {
        let stale = self.group.as_ref().is_some_and(|g| g.time < time)
            || self.pending.iter().any(|p| p.time < time)
            || self.cwnd.as_ref().is_some_and(|c| c.0 < time);
        if stale {
            self.flush_all();
        }
    }

    fn flush_all(&mut self) {
        self.flush_group();
        self.flush_pending();
        self.flush_cwnd();
    }

    fn record(&mut self, r: &Record, all: &[Record]) {
        match r {
            Record::Trace {
                ev,
                transit,
                cause,
                injected,
            } => {
                self.advance(ev.time());
                match ev {
                    TraceEvent::Packet { dir, .. } if *dir == Direction::In => {}
                    TraceEvent::Packet {
                        time, node, bytes, ..
                    } => {
                        self.flush_group();
                        let c = packet_conv(bytes);
                        let (joining, waiting): (Vec<Pending>, Vec<Pending>) =
                            core::mem::take(&mut self.pending)
                                .into_iter()
                                .partition(|p| {
                                    p.time == *time
                                        && p.node == **node
                                        && c.is_some()
                                        && p.conv == c
                                });
                        self.pending = waiting;
                        let cwnd = match self.cwnd.take() {
                            Some((t, n, change)) if t == *time && n == **node => Some(change),
                            other => {
                                self.cwnd = other;
                                None
                            }
                        };
                        self.group = Some(Group {
                            time: *time,
                            node: node.to_string(),
                            conv: c,
                            packet: ev.clone(),
                            transit: transit.unwrap_or(Transit::Delivered),
                            injected: injected.map(|[en, zh]| self.lang.pick(en, zh)),
                            cwnd,
                            states: joining.into_iter().map(|p| p.ev).collect(),
                        });
                    }
                    TraceEvent::State {
                        time,
                        node,
                        local,
                        remote,
                        ..
                    } => {
                        let c = Some(conv(*local, *remote));
                        if let Some(g) = &mut self.group {
                            if g.time == *time && g.node == **node && g.conv == c {
                                g.states.push(ev.clone());
                                return;
                            }
                        }
                        self.pending.push(Pending {
                            time: *time,
                            node: node.to_string(),
                            conv: c,
                            ev: ev.clone(),
                        });
                    }
                    TraceEvent::Drop {
                        time,
                        node,
                        reason,
                        bytes,
                    } => {
                        self.flush_group();
                        // A drop the stack reported without the packet is about the packet it
                        // was handling: show that one.
                        let packet = bytes.clone().or_else(|| {
                            cause.and_then(|i| match all.get(i) {
                                Some(Record::Trace {
                                    ev: TraceEvent::Packet { bytes, .. },
                                    ..
                                }) => Some(bytes.clone()),
                                _ => None,
                            })
                        });
                        let shown = TraceEvent::Drop {
                            time: *time,
                            node: node.clone(),
                            reason,
                            bytes: packet.clone(),
                        };
                        let line = self.render(&[shown]);
                        self.push(*time, node, What::Drop { reason, packet }, line);
                    }
                    TraceEvent::Note { time, node, text } => {
                        self.flush_group();
                        let line = self.render(core::slice::from_ref(ev));
                        self.push(*time, node, What::Note { text: text.clone() }, line);
                    }
                }
            }
            Record::Call { time, node, text } => {
                self.advance(*time);
                self.flush_all();
                let line = format!("{} {node}  {text}", fmt_time(*time));
                self.push(*time, node, What::Call { text: text.clone() }, line);
            }
            Record::Cwnd {
                time,
                node,
                from,
                to,
            } => {
                self.advance(*time);
                self.flush_group();
                let change = match self.cwnd.take() {
                    // Two changes at one instant show as one.
                    Some((t, n, c)) if t == *time && n == *node => CwndChange {
                        from: c.from,
                        to: *to,
                    },
                    other => {
                        self.cwnd = other;
                        self.flush_cwnd();
                        CwndChange {
                            from: *from,
                            to: *to,
                        }
                    }
                };
                self.cwnd = Some((*time, node.to_string(), change));
            }
            Record::Happening { time, node, what } => {
                self.advance(*time);
                self.flush_all();
                let text = match what {
                    Happening::Restart => self.lang.pick(
                        "[restart: the host crashed and came back; it remembers no connection]",
                        "[重启：主机崩溃后重新启动，不再记得任何连接]",
                    ),
                    Happening::Down => self.lang.pick(
                        "[down: the host is gone; it sends and receives nothing from now on]",
                        "[宕机：主机消失了，从此不再收发任何报文]",
                    ),
                };
                let line = format!("{} {node}  {text}", fmt_time(*time));
                self.push(*time, node, What::Happening(*what), line);
            }
        }
    }

    fn flush_cwnd(&mut self) {
        if let Some((time, node, change)) = self.cwnd.take() {
            let line = format!("{} {node}  {}", fmt_time(time), cwnd_text(&change));
            self.push(time, &node, What::Cwnd(change), line);
        }
    }

    fn flush_group(&mut self) {
        let Some(g) = self.group.take() else {
            return;
        };
        let mut events = vec![g.packet.clone()];
        events.extend(g.states.iter().cloned());
        let mut line = self.render(&events);
        if let Some(c) = &g.cwnd {
            line.push_str(&format!("   [{}]", cwnd_text(c)));
        }
        if let Some(note) = transit_text(self.lang, g.transit) {
            line.push_str("   ");
            line.push_str(note);
        }
        let TraceEvent::Packet { bytes, .. } = g.packet else {
            return;
        };
        let (from, to) = match ipv4::Packet::new_checked(&bytes[..]) {
            Ok(ip) => (
                self.name_of(IpAddr::V4(ip.src_addr())),
                self.name_of(IpAddr::V4(ip.dst_addr())),
            ),
            Err(_) => (String::new(), String::new()),
        };
        let what = What::Segment {
            from,
            to,
            packet: bytes,
            transit: g.transit,
            arrived: None,
            injected: g.injected,
            cwnd: g.cwnd,
        };
        self.push(g.time, &g.node, what, line);
        if let Some(last) = self.steps.last_mut() {
            last.states = g.states.iter().filter_map(state_change).collect();
        }
    }

    /// State changes that found no packet, each on its own line.
    fn flush_pending(&mut self) {
        for p in core::mem::take(&mut self.pending) {
            let line = self.render(core::slice::from_ref(&p.ev));
            self.push(p.time, &p.node, What::State, line);
            if let Some(last) = self.steps.last_mut() {
                last.states = state_change(&p.ev).into_iter().collect();
            }
        }
    }

    fn push(&mut self, time: Instant, node: &str, what: What, line: String) {
        self.steps.push(Step {
            time,
            node: node.to_string(),
            what,
            states: Vec::new(),
            line,
            why: None,
            shown: true,
        });
    }

    /// The renderer's line(s) for events that make one line.
    fn render(&mut self, events: &[TraceEvent]) -> String {
        let mut lines = Vec::new();
        for e in events {
            lines.extend(self.renderer.push(e));
        }
        lines.extend(self.renderer.finish());
        lines.join("\n")
    }
}

/// Sets each segment's arrival: the first time its destination host took in the same bytes,
/// at or after it was sent (each reception matched to one segment, oldest first).
fn arrivals(steps: &mut [Step], records: &[Record]) {
    let mut waiting: HashMap<&[u8], VecDeque<usize>> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        if let What::Segment { packet, .. } = &s.what {
            waiting.entry(packet.as_slice()).or_default().push_back(i);
        }
    }
    let mut found: Vec<(usize, Instant)> = Vec::new();
    for r in records {
        let Record::Trace {
            ev:
                TraceEvent::Packet {
                    time,
                    dir: Direction::In,
                    node,
                    bytes,
                },
            ..
        } = r
        else {
            continue;
        };
        let Some(queue) = waiting.get_mut(bytes.as_slice()) else {
            continue;
        };
        let hit = queue.iter().position(|&i| {
            steps[i].time <= *time
                && matches!(&steps[i].what, What::Segment { to, .. } if to == &**node)
        });
        if let Some(k) = hit.and_then(|k| queue.remove(k)) {
            found.push((k, *time));
        }
    }
    for (i, t) in found {
        if let What::Segment { arrived, .. } = &mut steps[i].what {
            *arrived = Some(t);
        }
    }
}

fn state_change(e: &TraceEvent) -> Option<StateChange> {
    match e {
        TraceEvent::State {
            node,
            local,
            remote,
            from,
            to,
            reason,
            ..
        } => Some(StateChange {
            node: node.to_string(),
            local: *local,
            remote: *remote,
            from: *from,
            to: *to,
            reason,
        }),
        _ => None,
    }
}

pub(super) fn cwnd_text(c: &CwndChange) -> String {
    let mut s = format!("cwnd {} \u{2192} {}", c.from.0, c.to.0);
    if c.from.1 != c.to.1 {
        s.push_str(&format!(", ssthresh {}", c.to.1));
    }
    s
}

pub(super) fn transit_text(lang: Lang, t: Transit) -> Option<&'static str> {
    Some(match t {
        Transit::Delivered => return None,
        Transit::Lost => lang.pick("[lost]", "[丢失]"),
        Transit::Delayed(_) => lang.pick("[held up in the network]", "[在网络中滞留]"),
        Transit::HostDown => lang.pick("[nobody receives it: host down]", "[无人接收：主机已宕机]"),
        Transit::NoSuchHost => lang.pick(
            "[nobody receives it: no such host]",
            "[无人接收：该地址没有主机]",
        ),
        Transit::Injected => lang.pick(
            "[put on the wire by the scenario]",
            "[由场景直接放到线路上]",
        ),
    })
}

/// Which lines a [`Rule`] explains.
#[derive(Debug, Clone, Default)]
pub(crate) struct Match {
    node: Option<&'static str>,
    kind: Option<Kind>,
    flags: Option<wtcp::Flags>,
    data: Option<bool>,
    to: Option<&'static str>,
    state: Option<(State, State)>,
    contains: Option<&'static str>,
    lacks: Option<&'static str>,
    transit: Option<Transit>,
    after: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Segment,
    Drop,
    Note,
    Call,
    Cwnd,
    Happening,
}

/// The control bits a rule compares (PSH, URG, ECE, CWR are left out).
const CONTROL: wtcp::Flags =
    wtcp::Flags(wtcp::Flags::SYN.0 | wtcp::Flags::FIN.0 | wtcp::Flags::RST.0 | wtcp::Flags::ACK.0);

impl Match {
    /// A segment sent by `node` (or "network").
    pub fn seg(node: &'static str) -> Match {
        Match {
            node: Some(node),
            kind: Some(Kind::Segment),
            ..Match::default()
        }
    }
    /// Any line of `node` that shows the state change `from → to`.
    pub fn state(node: &'static str, from: State, to: State) -> Match {
        Match {
            node: Some(node),
            state: Some((from, to)),
            ..Match::default()
        }
    }
    /// Any line of any host that shows the state change `from → to` (for changes two hosts
    /// make at the same instant, in either order).
    pub fn transition(from: State, to: State) -> Match {
        Match {
            state: Some((from, to)),
            ..Match::default()
        }
    }
    /// A drop by `node` whose line contains `text`.
    pub fn drop(node: &'static str, text: &'static str) -> Match {
        Match {
            node: Some(node),
            kind: Some(Kind::Drop),
            contains: Some(text),
            ..Match::default()
        }
    }
    /// A note of `node` containing `text`.
    pub fn note(node: &'static str, text: &'static str) -> Match {
        Match {
            node: Some(node),
            kind: Some(Kind::Note),
            contains: Some(text),
            ..Match::default()
        }
    }
    /// An application call of `node` whose line contains `text`.
    pub fn call(node: &'static str, text: &'static str) -> Match {
        Match {
            node: Some(node),
            kind: Some(Kind::Call),
            contains: Some(text),
            ..Match::default()
        }
    }
    /// A line of `node` showing a congestion-window change (alone or on a packet).
    pub fn cwnd(node: &'static str) -> Match {
        Match {
            node: Some(node),
            kind: Some(Kind::Cwnd),
            ..Match::default()
        }
    }
    /// What the lab did to `node`.
    pub fn happening(node: &'static str) -> Match {
        Match {
            node: Some(node),
            kind: Some(Kind::Happening),
            ..Match::default()
        }
    }
    /// Exactly these control bits (of SYN, FIN, RST, ACK).
    pub fn flags(mut self, f: wtcp::Flags) -> Match {
        self.flags = Some(f & CONTROL);
        self
    }
    /// With (or without) payload.
    pub fn data(mut self, yes: bool) -> Match {
        self.data = Some(yes);
        self
    }
    /// Addressed to `name`.
    pub fn to(mut self, name: &'static str) -> Match {
        self.to = Some(name);
        self
    }
    /// Whose line contains `text`.
    pub fn contains(mut self, text: &'static str) -> Match {
        self.contains = Some(text);
        self
    }
    /// Whose line does not contain `text`.
    pub fn lacks(mut self, text: &'static str) -> Match {
        self.lacks = Some(text);
        self
    }
    /// With this transit.
    pub fn transit(mut self, t: Transit) -> Match {
        self.transit = Some(t);
        self
    }
    /// At or after `t`.
    pub fn after(mut self, t: Instant) -> Match {
        self.after = Some(t);
        self
    }

    fn matches(&self, s: &Step) -> bool {
        if self.node.is_some_and(|n| n != s.node) || self.after.is_some_and(|t| s.time < t) {
            return false;
        }
        if self.contains.is_some_and(|t| !s.line.contains(t))
            || self.lacks.is_some_and(|t| s.line.contains(t))
        {
            return false;
        }
        if let Some(st) = self.state {
            if !s.transitions().any(|x| x == st) {
                return false;
            }
        }
        let kind_ok = match (self.kind, &s.what) {
            (None, _) => true,
            (Some(Kind::Segment), What::Segment { .. })
            | (Some(Kind::Drop), What::Drop { .. })
            | (Some(Kind::Note), What::Note { .. })
            | (Some(Kind::Call), What::Call { .. })
            | (Some(Kind::Cwnd), What::Cwnd(_))
            | (Some(Kind::Happening), What::Happening(_)) => true,
            (Some(Kind::Cwnd), What::Segment { cwnd, .. }) => cwnd.is_some(),
            _ => false,
        };
        if !kind_ok {
            return false;
        }
        if let What::Segment { to, transit, .. } = &s.what {
            if self.to.is_some_and(|n| n != to) || self.transit.is_some_and(|t| t != *transit) {
                return false;
            }
        } else if self.to.is_some() || self.transit.is_some() {
            return false;
        }
        if self.flags.is_some() || self.data.is_some() {
            let Some(seg) = s.segment() else {
                return false;
            };
            if self.flags.is_some_and(|f| seg.flags & CONTROL != f) {
                return false;
            }
            if self.data.is_some_and(|d| d == seg.payload.is_empty()) {
                return false;
            }
        }
        true
    }
}

/// A sentence for the first line, after the previous rule's, that `when` matches.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// Names the expected event (reported when it does not happen).
    pub id: &'static str,
    pub when: Match,
    pub cite: &'static str,
    pub en: &'static str,
    pub zh: &'static str,
}

/// A rule: `id`, the line it explains, the RFC section, and the sentence in both languages.
/// Sentences may use `{seq}`, `{ack}`, `{len}`, `{win}`, `{mss}`, `{ws}`, `{tsval}`,
/// `{sle}` and `{sre}` (the first SACK block),
/// `{next}` (Seq plus the sequence space the segment takes), `{last}` (one less), `{isn}` (the absolute sequence
/// number), `{time}`, `{cwnd}`, `{ssthresh}` and `{cwnd_from}`.
pub(crate) fn rule(
    id: &'static str,
    when: Match,
    cite: &'static str,
    en: &'static str,
    zh: &'static str,
) -> Rule {
    Rule {
        id,
        when,
        cite,
        en,
        zh,
    }
}

/// Attaches the rules' sentences; returns the ids of rules that matched no line.
pub(crate) fn explain(steps: &mut [Step], rules: &[Rule], lang: Lang) -> Vec<&'static str> {
    let mut missing = Vec::new();
    // Rules are written in the order things happen; lines of one instant may come in any
    // order, so each rule looks from the first line of the previous match's instant on.
    let mut from = 0;
    for r in rules {
        let hit =
            (from..steps.len()).find(|&i| steps[i].why.is_none() && r.when.matches(&steps[i]));
        match hit {
            Some(i) => {
                let template = lang.pick(r.en, r.zh);
                let text = text::fill(template, |name| value(&steps[i], name));
                steps[i].why = Some(Why { text, cite: r.cite });
                from = i;
                while from > 0 && steps[from - 1].time == steps[i].time {
                    from -= 1;
                }
            }
            None => missing.push(r.id),
        }
    }
    missing
}

/// The value of placeholder `name` on step `s`.
fn value(s: &Step, name: &str) -> Option<String> {
    let cwnd = match &s.what {
        What::Cwnd(c) => Some(*c),
        What::Segment { cwnd, .. } => *cwnd,
        _ => None,
    };
    let key = |k: &str| text::field(&s.line, k).map(|v| v.to_string());
    match name {
        "seq" => key(" Seq="),
        "ack" => key(" Ack="),
        "len" => key(" Len="),
        "win" => key(" Win="),
        "mss" => key(" MSS="),
        "ws" => key(" WS="),
        "tsval" => key(" TSval="),
        "sle" => key(" SLE="),
        "sre" => key(" SRE="),
        "time" => Some(fmt_time(s.time)),
        "isn" => s.segment().map(|seg| seg.seq.0.to_string()),
        "next" | "last" => {
            let seg = s.segment()?;
            let seq = text::field(&s.line, " Seq=")?;
            let next = seq + seg.segment_len() as u64;
            Some(if name == "next" { next } else { next - 1 }.to_string())
        }
        "cwnd" => cwnd.map(|c| c.to.0.to_string()),
        "ssthresh" => cwnd.map(|c| c.to.1.to_string()),
        "cwnd_from" => cwnd.map(|c| c.from.0.to_string()),
        _ => None,
    }
}
