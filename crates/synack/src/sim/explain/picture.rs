//! An explanation as a picture (`synack explain NAME --svg FILE`): each conversation drawn as
//! a [ladder diagram](crate::trace::ladder), the two hosts of the scenario as its lanes, every
//! line that has a sentence marked with a number, and the sentences, numbered, under the
//! diagram.
//!
//! What is drawn:
//! - each segment between the two hosts, as an arrow from its send time to its arrival (taken
//!   from the receiving stack's trace), lost ones stopping at a ×; retransmissions dashed;
//!   a packet the scenario put on the wire (an old duplicate SYN) dotted, starting in the
//!   network, and tagged with what it is; a segment held up in the network, or sent to a host
//!   that is down, tagged so; congestion-window changes tagged on the segment they precede;
//! - the state changes of the connection between the two hosts, as badges;
//! - drops, the stacks' notes, application calls (`connect() = 0`), a host's crash or
//!   disappearance and congestion-window changes, as notes beside the host's timeline
//!   (retransmission notes are left out: the dashed arrows show them);
//! - packets to or from other addresses (a flood of spoofed SYNs and the answers to them): the
//!   first two, and any that has a sentence, are drawn; the others are counted in one note.
//!
//! Every line that has a sentence is drawn, whatever the folds of a long transfer leave out.

use core::net::IpAddr;
use std::collections::HashSet;

use super::lab::{HOP, Happening, Transit};
use super::steps::{cwnd_text, packet_addrs, transit_text};
use super::{Explanation, Lang, Part, Step, What};
use crate::tcp::State;
use crate::time::Instant;
use crate::trace::columns;
use crate::trace::ladder::{
    Arrow, Figure, Item, Ladder, Lane, Note, NoteKind, Panel, Side, StateChange,
};

/// Notes are wrapped to this many columns, so that the margins stay narrow.
const NOTE_COLUMNS: usize = 40;
/// Packets to or from other addresses drawn before the rest are only counted.
const STRAYS_DRAWN: usize = 2;

impl Explanation {
    /// The picture of this explanation: one panel per conversation (under its heading, if it
    /// has one), the two hosts as its lanes, and the sentences as numbered captions whose
    /// numbers mark the events they explain.
    ///
    /// Drawn: the segments between the two hosts (arrival times from the receiver's trace,
    /// lost ones stopped by a ×, retransmissions dashed, a packet the scenario put on the wire
    /// dotted from the network and tagged with what it is, congestion-window changes tagged);
    /// the state changes of their connection; drops, the stacks' notes, application calls,
    /// crashes and congestion-window changes as notes. Packets to or from other addresses (a
    /// flood) are drawn for the first two and any that is explained; a note counts the rest.
    /// Every explained event is drawn, whatever a long transfer's folds leave out.
    pub fn figure(&self) -> Figure {
        let mut panels = Vec::new();
        let mut heading = None;
        let mut marks = 0;
        for p in &self.parts {
            match p {
                Part::Heading(h) => heading = Some(h.clone()),
                Part::Steps { steps, .. } => {
                    let (ladder, captions) = draw(steps, self.lang, &mut marks);
                    panels.push(Panel {
                        heading: heading.take(),
                        ladder,
                        captions,
                    });
                }
                _ => {}
            }
        }
        let title = match self.lang {
            Lang::En => format!("synack explain {}: {}", self.name, self.title),
            Lang::Zh => format!("synack explain {}：{}", self.name, self.title),
        };
        Figure {
            title: Some(title),
            panels,
        }
    }

    /// [`figure`](Self::figure) as SVG.
    pub fn to_svg(&self) -> String {
        self.figure().to_svg()
    }
}

/// The two hosts of a conversation: the one that opens (sends a SYN without ACK) on the left,
/// the first other host that sends on the right.
fn lanes(steps: &[Step]) -> [Option<&str>; 2] {
    let senders = || {
        steps
            .iter()
            .filter(|s| s.node != "network" && matches!(s.what, What::Segment { .. }))
    };
    let opener = senders()
        .find(|s| {
            s.segment()
                .is_some_and(|seg| seg.flags.syn() && !seg.flags.ack())
        })
        .or_else(|| senders().next())
        .map(|s| s.node.as_str());
    let other = senders()
        .map(|s| s.node.as_str())
        .find(|n| Some(*n) != opener);
    [opener, other]
}

/// Draws one conversation; numbers its sentences from `marks + 1` on.
fn draw(steps: &[Step], lang: Lang, marks: &mut u32) -> (Ladder, Vec<(u32, String)>) {
    let names = lanes(steps);
    let side_of = |name: &str| -> Option<Side> {
        if names[0] == Some(name) {
            Some(Side::Left)
        } else if names[1] == Some(name) {
            Some(Side::Right)
        } else {
            None
        }
    };
    // The hosts' addresses, and each lane's socket (its first segment's source).
    let mut ips: [Option<IpAddr>; 2] = [None, None];
    let mut sockets = [None, None];
    for s in steps {
        if let What::Segment {
            from, to, packet, ..
        } = &s.what
        {
            let Some((src, dst)) = packet_addrs(packet) else {
                continue;
            };
            let (f, t) = (side_of(from), side_of(to));
            if let Some(side) = f {
                ips[side_index(side)] = Some(src.ip());
            }
            if let Some(side) = t {
                ips[side_index(side)] = Some(dst.ip());
            }
            if let (Some(f), Some(t)) = (f, t) {
                sockets[side_index(f)].get_or_insert(src);
                sockets[side_index(t)].get_or_insert(dst);
            }
        }
    }
    let lane = |k: usize| {
        let detail = match (sockets[k], ips[k]) {
            (Some(sock), _) => sock.to_string(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => String::new(),
        };
        Lane::new(names[k].unwrap_or("?"), detail)
    };
    let is_lane_ip = |ip: IpAddr| ips.contains(&Some(ip));
    let mut ladder = Ladder::new(lane(0), lane(1));
    ladder.lang = lang;
    let mut captions = Vec::new();
    // Each side's (seq, length) already sent: a segment sent again is a retransmission.
    let mut sent: HashSet<(Side, u32, usize)> = HashSet::new();
    // The state each lane is in, for a host that restarts.
    let mut state: [Option<State>; 2] = [None, None];
    let mut strays = Strays::default();

    for s in steps {
        let mark = s.why.as_ref().map(|w| {
            *marks += 1;
            let gap = if lang == Lang::Zh { "" } else { " " };
            captions.push((*marks, format!("{}{gap}[{}]", w.text, w.cite)));
            *marks
        });
        let node_side = side_of(&s.node);
        // The state changes of the connection between the two hosts.
        let mut changes: Vec<StateChange> = s
            .states
            .iter()
            .filter(|c| is_lane_ip(c.local.ip()) && is_lane_ip(c.remote.ip()))
            .filter_map(|c| {
                let side = side_of(&c.node)?;
                state[side_index(side)] = Some(c.to);
                Some(StateChange::new(side, s.time, c.from, c.to))
            })
            .collect();
        match &s.what {
            What::Segment {
                from,
                to,
                packet,
                transit,
                arrived,
                injected,
                cwnd,
            } => {
                let (lane_from, lane_to) = (side_of(from), side_of(to));
                let stray = lane_from.is_none() || lane_to.is_none();
                if stray && mark.is_none() && strays.drawn >= STRAYS_DRAWN {
                    strays.hide(s.time, lane_to.is_some(), lane_to.or(lane_from));
                    continue;
                }
                let Some(seg) = s.segment() else { continue };
                let from_network = s.node == "network";
                // A packet from elsewhere is drawn from the other side of its destination.
                let Some(side) = lane_from
                    .filter(|_| !stray || !from_network)
                    .or(lane_to.map(Side::other))
                else {
                    continue;
                };
                let mut tags: Vec<String> = Vec::new();
                if let Some(what) = injected {
                    tags.push(match (lane_from, packet_addrs(packet)) {
                        (None, Some((src, _))) => match lang {
                            Lang::En => format!("{what} (from {})", src.ip()),
                            Lang::Zh => format!("{what}（来自 {}）", src.ip()),
                        },
                        _ => what.to_string(),
                    });
                }
                let unreached = matches!(transit, Transit::HostDown | Transit::NoSuchHost);
                match (transit_text(lang, *transit), lane_to, packet_addrs(packet)) {
                    (Some(t), None, Some((_, dst))) if !matches!(transit, Transit::Injected) => {
                        let t = t.trim_matches(['[', ']']);
                        tags.push(match lang {
                            Lang::En => format!("to {}: {t}", dst.ip()),
                            Lang::Zh => format!("发往 {}：{t}", dst.ip()),
                        });
                    }
                    (Some(t), _, _) if !matches!(transit, Transit::Injected) => {
                        tags.push(t.trim_matches(['[', ']']).to_string());
                    }
                    _ => {}
                }
                if let Some(c) = cwnd {
                    tags.push(cwnd_text(c));
                }
                let arrived = match transit {
                    Transit::Lost => None,
                    _ if unreached => None,
                    // The run ended before it arrived: where it would have.
                    Transit::Delayed(d) => arrived.or(Some(s.time + HOP * 2 + *d)),
                    _ => arrived.or(Some(s.time + HOP * 2)),
                };
                let len = seg.payload.len() as u32;
                let mut a = Arrow::new(side, s.time, arrived, label(&s.line), seg.flags, len);
                a.from_network = from_network;
                let space = seg.segment_len();
                if !from_network && space > 0 {
                    a.retransmission = !sent.insert((side, seg.seq.0, space));
                }
                a.tag = (!tags.is_empty()).then(|| tags.join(" \u{b7} "));
                a.mark = mark;
                if stray {
                    strays.drawn += 1;
                }
                ladder.items.extend(changes.into_iter().map(Item::State));
                ladder.items.push(Item::Arrow(a));
                continue;
            }
            What::State => {
                if changes.is_empty() {
                    // A state change of another connection (a spoofed SYN's): not drawn,
                    // unless it is explained.
                    let (Some(side), Some(c)) = (node_side, s.states.first()) else {
                        continue;
                    };
                    if mark.is_none() {
                        strays.other += 1;
                        continue;
                    }
                    changes.push(StateChange::new(side, s.time, c.from, c.to));
                }
                if let Some(first) = changes.first_mut() {
                    first.mark = mark;
                }
                ladder.items.extend(changes.into_iter().map(Item::State));
                continue;
            }
            What::Drop { reason, packet } => {
                let elsewhere = packet
                    .as_deref()
                    .and_then(packet_addrs)
                    .is_some_and(|(a, b)| !is_lane_ip(a.ip()) || !is_lane_ip(b.ip()));
                if elsewhere && mark.is_none() {
                    strays.other += 1;
                    continue;
                }
                let text = match lang {
                    Lang::En => format!("dropped: {reason}"),
                    Lang::Zh => format!("丢弃：{reason}"),
                };
                note(
                    &mut ladder,
                    node_side,
                    s.time,
                    &text,
                    NoteKind::Remark,
                    mark,
                );
            }
            What::Note { text } => {
                if mark.is_none() && text.starts_with("retransmit") {
                    continue;
                }
                if mark.is_none() && mentions_other(text, &ips) {
                    strays.other += 1;
                    continue;
                }
                note(&mut ladder, node_side, s.time, text, NoteKind::Remark, mark);
            }
            What::Call { text } => {
                note(&mut ladder, node_side, s.time, text, NoteKind::Call, mark);
            }
            What::Cwnd(c) => {
                note(
                    &mut ladder,
                    node_side,
                    s.time,
                    &cwnd_text(c),
                    NoteKind::Info,
                    mark,
                );
            }
            What::Happening(h) => {
                let text = match h {
                    Happening::Restart => lang.pick(
                        "crashed and restarted: it remembers no connection",
                        "崩溃后重启：不再记得任何连接",
                    ),
                    Happening::Down => lang.pick(
                        "down: it sends and receives nothing from now on",
                        "宕机：从此不再收发任何报文",
                    ),
                };
                note(&mut ladder, node_side, s.time, text, NoteKind::Event, mark);
                // A restarted host has no connection: its timeline is CLOSED until it opens
                // again.
                if let (Happening::Restart, Some(side)) = (h, node_side) {
                    let k = side_index(side);
                    if let Some(st) = state[k].filter(|st| *st != State::Closed) {
                        ladder.items.push(Item::State(StateChange::new(
                            side,
                            s.time,
                            st,
                            State::Closed,
                        )));
                        state[k] = Some(State::Closed);
                    }
                }
            }
        }
        ladder.items.extend(changes.into_iter().map(Item::State));
    }
    if let Some((time, side)) = strays.first_hidden {
        let text = match lang {
            Lang::En => format!(
                "\u{2026} not drawn: {} more like these, {} packets sent back to their addresses, {} drops, notes and state changes about them",
                strays.hidden_in, strays.hidden_out, strays.other
            ),
            Lang::Zh => format!(
                "……未画出：另有 {} 个同类报文、{} 个发回其地址的报文，以及与之相关的 {} 个丢弃、注记和状态变化",
                strays.hidden_in, strays.hidden_out, strays.other
            ),
        };
        note(&mut ladder, Some(side), time, &text, NoteKind::Info, None);
    }
    (ladder, captions)
}

/// Packets to or from addresses other than the two hosts': how many were left out.
#[derive(Default)]
struct Strays {
    drawn: usize,
    hidden_in: usize,
    hidden_out: usize,
    /// Drops, notes and state changes about them.
    other: usize,
    /// When the first was left out, and beside which host's timeline to say so.
    first_hidden: Option<(Instant, Side)>,
}

impl Strays {
    fn hide(&mut self, time: Instant, inbound: bool, side: Option<Side>) {
        if inbound {
            self.hidden_in += 1;
        } else {
            self.hidden_out += 1;
        }
        if self.first_hidden.is_none() {
            self.first_hidden = side.map(|s| (time, s));
        }
    }
}

fn side_index(s: Side) -> usize {
    match s {
        Side::Left => 0,
        Side::Right => 1,
    }
}

/// A note beside `side`'s timeline (the left one if the host is neither), wrapped.
fn note(
    ladder: &mut Ladder,
    side: Option<Side>,
    time: Instant,
    text: &str,
    kind: NoteKind,
    mark: Option<u32>,
) {
    let mut n = Note::new(
        side.unwrap_or(Side::Left),
        time,
        columns::wrap(text, NOTE_COLUMNS, "").join("\n"),
    );
    n.kind = kind;
    n.mark = mark;
    ladder.items.push(Item::Note(n));
}

/// Whether a stack's note names an address that is not one of the two hosts' (a SYN cookie
/// sent to a spoofed source).
fn mentions_other(text: &str, ips: &[Option<IpAddr>; 2]) -> bool {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter_map(|w| {
            let w = w.trim_end_matches(':');
            w.parse::<core::net::SocketAddr>()
                .map(|a| a.ip())
                .or_else(|_| w.parse::<IpAddr>())
                .ok()
        })
        .any(|ip| !ips.contains(&Some(ip)))
}

/// The segment in the notation of the text, without time, hosts and ports: from the flags
/// (`[SYN, ACK] Seq=…`) to the end of the options.
fn label(line: &str) -> String {
    let first = line.lines().next().unwrap_or("");
    let Some(start) = first.find('[') else {
        return first.to_string();
    };
    let rest = &first[start..];
    let end = rest.find("   ").unwrap_or(rest.len());
    rest[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_segment_without_hosts_and_annotations() {
        let line = "0.011000 server \u{2192} client 80 \u{2192} 40000 [SYN, ACK] Seq=5 Ack=9 Win=65535 Len=0 MSS=1460   LISTEN \u{2192} SYN-RECEIVED   [lost]";
        assert_eq!(
            label(line),
            "[SYN, ACK] Seq=5 Ack=9 Win=65535 Len=0 MSS=1460"
        );
        assert_eq!(
            label("0.1 a \u{2192} b 1 \u{2192} 2 [RST] Seq=1 Win=0 Len=0"),
            "[RST] Seq=1 Win=0 Len=0"
        );
        let ips = [
            Some("198.18.0.1".parse().unwrap()),
            Some("198.18.0.2".parse().unwrap()),
        ];
        assert!(mentions_other(
            "SYN cookie sent (SYN queue full) to 198.19.185.23:20302",
            &ips
        ));
        assert!(!mentions_other(
            "SYN cookie accepted from 198.18.0.1:36851: MSS=1460",
            &ips
        ));
        assert!(!mentions_other("RTO fired, next 2s (backoff 1)", &ips));
    }
}
