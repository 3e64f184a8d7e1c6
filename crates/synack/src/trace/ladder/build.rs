//! Ladders built from what was recorded: the trace events of a run ([`Ladder::from_trace`])
//! and a conversation read from a capture ([`Ladder::from_flow`]).

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;

use super::super::flow::{Flow, Tracker};
use super::super::{Direction, TraceEvent};
use super::{Arrow, Item, Ladder, LadderError, Lane, Note, Side, StateChange, fmt_duration};
use crate::time::{Duration, Instant};

impl Ladder {
    /// The ladder of TCP conversation number `flow` (0 = the first to appear) in a run's trace
    /// events.
    ///
    /// When two or more hosts report the packets they send (`Out`), each arrow goes from a
    /// packet's `Out` event to the matching `In` event (same bytes) at another host, and a
    /// packet no host received is drawn lost. Otherwise the packets of the one reporting host
    /// (`In` and `Out`) are a single vantage point, drawn as [`from_flow`](Self::from_flow)
    /// does. State changes of the conversation go on their side; notes and drops of the hosts
    /// involved, within the conversation's time span, go on their host's side (retransmission
    /// notes are left out: the arrows show them). Lanes are named after the hosts that reported
    /// (`client`, `server`) or, for the side nobody reported from, `peer`.
    pub fn from_trace(events: &[TraceEvent], flow: usize) -> Result<Ladder, LadderError> {
        let out_nodes: Vec<&str> = {
            let mut v: Vec<&str> = Vec::new();
            for e in events {
                if let TraceEvent::Packet {
                    dir: Direction::Out,
                    node,
                    ..
                } = e
                {
                    if !v.contains(&node.as_ref()) {
                        v.push(node);
                    }
                }
            }
            v
        };
        let two_taps = out_nodes.len() >= 2;
        // The packets that make the conversation: each once (its Out with two taps).
        let mut tracker = Tracker::new();
        let mut picked: Vec<usize> = Vec::new(); // event index of each packet fed
        for (i, e) in events.iter().enumerate() {
            if let TraceEvent::Packet {
                time, dir, bytes, ..
            } = e
            {
                if two_taps && *dir != Direction::Out {
                    continue;
                }
                tracker.push(*time, bytes);
                picked.push(i);
            }
        }
        let flows = tracker.finish();
        let found = flows.len();
        let f = flows
            .into_iter()
            .nth(flow)
            .ok_or(LadderError::NoSuchFlow { asked: flow, found })?;
        // Which host is on which side: the sender of a segment from that side.
        let node_of = |client: bool| -> Option<String> {
            let s = f.segments.iter().find(|s| s.from_client == client)?;
            match &events[picked[s.index]] {
                TraceEvent::Packet {
                    dir: Direction::Out,
                    node,
                    ..
                } => Some(node.to_string()),
                _ => None,
            }
        };
        let mut nodes = [node_of(true), node_of(false)];
        if !two_taps {
            // One host: it is on the side whose packets it sent, or else the other one.
            let only = events.iter().find_map(|e| match e {
                TraceEvent::Packet { node, .. } => Some(node.to_string()),
                _ => None,
            });
            if nodes[0].is_none() && nodes[1].is_none() {
                nodes[1] = only;
            }
        }
        let mut ladder = if two_taps {
            let mut l = Ladder::new(
                lane(nodes[0].as_deref(), f.client),
                lane(nodes[1].as_deref(), f.server),
            );
            // Arrivals: each In event matched to the earliest unmatched Out of the same bytes
            // sent by another host.
            let mut unmatched: HashMap<u64, Vec<(usize, usize)>> = HashMap::new(); // hash -> (event, seg)
            let mut arrived: Vec<Option<Instant>> = vec![None; f.segments.len()];
            let seg_of_event: HashMap<usize, usize> = f
                .segments
                .iter()
                .enumerate()
                .map(|(k, s)| (picked[s.index], k))
                .collect();
            for (i, e) in events.iter().enumerate() {
                let TraceEvent::Packet {
                    time,
                    dir,
                    node,
                    bytes,
                } = e
                else {
                    continue;
                };
                let h = hash_bytes(bytes);
                match dir {
                    Direction::Out => {
                        if let Some(&k) = seg_of_event.get(&i) {
                            unmatched.entry(h).or_default().push((i, k));
                        }
                    }
                    Direction::In => {
                        let Some(queue) = unmatched.get_mut(&h) else {
                            continue;
                        };
                        let hit = queue.iter().position(|&(j, _)| {
                            matches!(&events[j], TraceEvent::Packet { node: n, bytes: b, .. }
                                if n != node && b == bytes)
                        });
                        if let Some(pos) = hit {
                            let (_, k) = queue.remove(pos);
                            arrived[k] = Some(*time);
                        }
                    }
                }
            }
            for (k, s) in f.segments.iter().enumerate() {
                let from = if s.from_client {
                    Side::Left
                } else {
                    Side::Right
                };
                l.items
                    .push(Item::Arrow(Arrow::of_segment(s, from, s.time, arrived[k])));
            }
            l
        } else {
            let mut l = Ladder::from_flow(&f);
            for (k, node) in nodes.iter().enumerate() {
                let addr = if k == 0 { f.client } else { f.server };
                let lane = if node.is_some() {
                    lane(node.as_deref(), addr)
                } else {
                    Lane::new("peer", addr.to_string())
                };
                if k == 0 {
                    l.left = lane;
                } else {
                    l.right = lane;
                }
            }
            l
        };
        let (start, end) = match (f.segments.first(), f.segments.last()) {
            (Some(a), Some(b)) => (a.time, b.time),
            _ => (Instant::ZERO, Instant::ZERO),
        };
        let side_of_node = |node: &str| -> Option<Side> {
            if nodes[0].as_deref() == Some(node) {
                Some(Side::Left)
            } else if nodes[1].as_deref() == Some(node) {
                Some(Side::Right)
            } else {
                None
            }
        };
        let in_span = |t: Instant| t >= start && t <= end + Duration::from_millis(1);
        // Each item's event, to keep the trace's order among items of equal time (a state
        // change made on connect comes before the SYN it causes).
        let mut order: Vec<usize> = f.segments.iter().map(|s| picked[s.index]).collect();
        for (i, e) in events.iter().enumerate() {
            let before = ladder.items.len();
            match e {
                TraceEvent::State {
                    time,
                    local,
                    remote,
                    from,
                    to,
                    ..
                } => {
                    let side = if (*local, *remote) == (f.client, f.server) {
                        Side::Left
                    } else if (*local, *remote) == (f.server, f.client) {
                        Side::Right
                    } else {
                        continue;
                    };
                    ladder
                        .items
                        .push(Item::State(StateChange::new(side, *time, *from, *to)));
                }
                TraceEvent::Note { time, node, text } if in_span(*time) => {
                    if text.starts_with("retransmit") {
                        continue;
                    }
                    if let Some(side) = side_of_node(node) {
                        ladder
                            .items
                            .push(Item::Note(Note::new(side, *time, text.clone())));
                    }
                }
                TraceEvent::Drop {
                    time, node, reason, ..
                } if in_span(*time) => {
                    if let Some(side) = side_of_node(node) {
                        ladder.items.push(Item::Note(Note::new(
                            side,
                            *time,
                            format!("dropped: {reason}"),
                        )));
                    }
                }
                _ => {}
            }
            if ladder.items.len() > before {
                order.push(i);
            }
        }
        let mut items: Vec<(usize, Item)> = order.into_iter().zip(ladder.items).collect();
        items.sort_by_key(|(o, item)| (item.time(), *o));
        ladder.items = items.into_iter().map(|(_, item)| item).collect();
        Ok(ladder)
    }

    /// The ladder of a conversation seen from one vantage point (a capture): each segment was
    /// seen once, at `Segment::time`. The one-way delays on each side of the vantage point
    /// are estimated from the handshake and every arrow is drawn with them (a footnote says
    /// so); without a handshake the arrows are level. Nothing is drawn lost. Lanes are named
    /// `client` and `server`, with their addresses.
    pub fn from_flow(f: &Flow) -> Ladder {
        let mut l = Ladder::new(
            Lane::new("client", f.client.to_string()),
            Lane::new("server", f.server.to_string()),
        );
        let (client_side, server_side) = one_way_delays(f).unwrap_or_default();
        // Per side: (end, arrival) of the segments it received so far. A segment cannot be
        // sent before the newest segment it acknowledges arrived (the estimate may say so
        // when delays vary).
        let mut received: [VecDeque<(u64, Instant)>; 2] = [VecDeque::new(), VecDeque::new()];
        let mut latest: [Option<Instant>; 2] = [None, None];
        for s in &f.segments {
            let (from, before, after) = if s.from_client {
                (Side::Left, client_side, server_side)
            } else {
                (Side::Right, server_side, client_side)
            };
            let mut sent = s.time - before;
            if let Some(ack) = s.ack {
                let k = from.index();
                while let Some(&(end, at)) = received[k].front() {
                    if end > ack {
                        break;
                    }
                    latest[k] = latest[k].max(Some(at));
                    received[k].pop_front();
                }
                sent = sent.max(latest[k].unwrap_or(sent));
            }
            let arrived = (s.time + after).max(sent);
            if s.seq_len() > 0 {
                received[from.other().index()].push_back((s.end(), arrived));
            }
            l.items
                .push(Item::Arrow(Arrow::of_segment(s, from, sent, Some(arrived))));
        }
        l.footnote = Some(match one_way_delays(f) {
            Some((c, s)) => format!(
                "Seen from one point: each segment has one time. One-way delays estimated from \
                 the handshake: {} on the client's side, {} on the server's.",
                fmt_duration(c),
                fmt_duration(s)
            ),
            None => {
                "Seen from one point, without the handshake: arrows are drawn level.".to_string()
            }
        });
        l
    }
}

fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

fn lane(node: Option<&str>, addr: SocketAddr) -> Lane {
    Lane::new(node.unwrap_or("peer"), addr.to_string())
}

/// One-way delays (client side, server side) of the vantage point, from the handshake:
/// SYN → SYN-ACK crosses the server's side twice, SYN-ACK → third ACK the client's.
fn one_way_delays(f: &Flow) -> Option<(Duration, Duration)> {
    let syn = f
        .segments
        .iter()
        .position(|s| s.from_client && s.flags.syn() && !s.flags.ack())?;
    let synack = f.segments[syn..]
        .iter()
        .position(|s| !s.from_client && s.flags.syn() && s.flags.ack())?
        + syn;
    let third = f.segments[synack..]
        .iter()
        .find(|s| s.from_client && !s.flags.syn() && s.flags.ack())?;
    let server_rtt = f.segments[synack].time - f.segments[syn].time;
    let client_rtt = third.time - f.segments[synack].time;
    Some((client_rtt / 2, server_rtt / 2))
}
