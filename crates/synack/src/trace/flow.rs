//! TCP conversations in a packet trace, segment by segment, in the numbers a reader wants:
//! sequence and acknowledgement numbers relative to each side's ISN (and carried past the 2^32
//! wrap), the window scaled as the sides agreed, SACK blocks, retransmissions and D-SACKs marked,
//! and each segment's label in the text trace's notation. The pictures
//! ([`ladder`](super::ladder), the time–sequence and RTT charts) and `synack report` are drawn
//! from these.
//!
//! Input is IP packets with their times, from one vantage point: a capture
//! ([`read_capture`](super::read_capture)), or the packets a host reports in a trace.
//! Conversations are told apart as the text renderer does (the unordered 4-tuple; a SYN with a
//! new ISN on the same 4-tuple starts a new one). Checksums are not verified: captures taken on
//! a host with checksum offload carry unfinished checksums (Wireshark does not verify them
//! either). Packets that are not TCP, or do not parse, are skipped.
//!
//! ```
//! use synack::trace::flow::flows;
//! # use synack::time::Instant;
//! let packets: Vec<(Instant, Vec<u8>)> = Vec::new(); // e.g. from read_capture
//! let flows = flows(packets.iter().map(|(t, p)| (*t, p.as_slice())));
//! assert!(flows.is_empty());
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;

use super::render::{ConvKey, Conversation, parse_ip};
use crate::tcp::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::IpProtocol;
use crate::wire::tcp::{self, Flags};

/// One TCP segment as seen at the vantage point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Position of the packet in the input (all packets counted, TCP or not).
    pub index: usize,
    /// When it was seen.
    pub time: Instant,
    /// Sent by the client (the side that sent the first SYN) rather than the server.
    pub from_client: bool,
    pub flags: Flags,
    /// Sequence number relative to the sender's ISN (0 is the SYN), extended past the wrap.
    /// Without the SYN in the trace, relative to the first sequence number seen instead.
    pub seq: u64,
    /// Acknowledgement number relative to the receiver's ISN, when ACK is set.
    pub ack: Option<u64>,
    /// The receive window in bytes (scaled once both SYNs agreed on scaling).
    pub window: u64,
    /// Payload bytes.
    pub len: u32,
    /// SACK blocks, relative like `ack`: `(left edge, right edge)`.
    pub sack: Vec<(u64, u64)>,
    /// TSval and TSecr, when the timestamps option is present.
    pub timestamps: Option<(u32, u32)>,
    /// It carries sequence space (data, SYN or FIN) its sender had already sent.
    pub retransmission: bool,
    /// Its first SACK block reports a duplicate (RFC 2883 §4: below the cumulative ACK, or
    /// inside the second block).
    pub dsack: bool,
    /// The segment in the text trace's notation, without the ports:
    /// `[SYN] Seq=0 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=1 TSecr=0 WS=128`.
    pub label: String,
}

impl Segment {
    /// Sequence space it occupies: payload, plus one for SYN and for FIN.
    pub fn seq_len(&self) -> u64 {
        u64::from(self.len) + u64::from(self.flags.syn()) + u64::from(self.flags.fin())
    }

    /// The relative sequence number just past it.
    pub fn end(&self) -> u64 {
        self.seq + self.seq_len()
    }

    /// True for a segment with no payload and no SYN, FIN or RST: a pure ACK.
    pub fn is_pure_ack(&self) -> bool {
        self.len == 0 && !self.flags.intersects(Flags::SYN | Flags::FIN | Flags::RST)
    }
}

/// One TCP conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The side that sent the first SYN (without a SYN in the trace: the first packet's
    /// sender).
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// In the order seen.
    pub segments: Vec<Segment>,
}

/// What [`Flow::summary`] says about a conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// From the SYN to the ACK of the SYN-ACK, as seen at the vantage point.
    pub handshake: Option<Duration>,
    /// From the first to the last segment.
    pub duration: Duration,
    /// Segments sent by the client and by the server.
    pub segments: [usize; 2],
    /// Payload bytes acknowledged in each direction (client → server, server → client).
    pub bytes: [u64; 2],
    /// Retransmitted segments in each direction.
    pub retransmissions: [usize; 2],
    /// Client → server payload bytes over the time from their first data segment to the ACK of
    /// their last byte, in bits per second (`None` without data).
    pub goodput_bps: Option<f64>,
    /// The smallest, median and largest RTT sample of client data (see [`Flow::rtt_samples`]).
    pub rtt: Option<(Duration, Duration, Duration)>,
    /// The segment that ended the conversation, if any: "FIN" (both ways), "RST".
    pub ended_by: Option<&'static str>,
}

impl Flow {
    /// The segments sent by one side.
    pub fn from_side(&self, client: bool) -> impl Iterator<Item = &Segment> {
        self.segments
            .iter()
            .filter(move |s| s.from_client == client)
    }

    /// Round-trip times seen at the vantage point for data sent by the client (`client`
    /// true) or the server: from a data segment to the first ACK from the other side that
    /// covers its end. Retransmitted data and data sent again later give no sample (Karn's
    /// rule), so every sample is unambiguous. Returns `(time of the ACK, RTT)` pairs.
    pub fn rtt_samples(&self, client: bool) -> Vec<(Instant, Duration)> {
        // Pending data segments: (end, sent at), ascending end, each sent exactly once so far.
        let mut pending: Vec<(u64, Instant)> = Vec::new();
        let mut samples = Vec::new();
        for s in &self.segments {
            if s.from_client == client {
                if s.retransmission {
                    // Karn: anything this overlaps is now ambiguous.
                    pending.retain(|&(end, _)| end <= s.seq);
                } else if s.seq_len() > 0 && !s.flags.syn() {
                    pending.push((s.end(), s.time));
                }
            } else if let Some(ack) = s.ack {
                let done = pending.partition_point(|&(end, _)| end <= ack);
                if done > 0 {
                    // The newest segment the ACK covers gives the sample (its ACK was not
                    // delayed by the earlier ones).
                    let (_, sent) = pending[done - 1];
                    samples.push((s.time, s.time - sent));
                    pending.drain(..done);
                }
            }
        }
        samples
    }

    /// Handshake time, bytes, retransmissions, goodput and RTT in one place.
    pub fn summary(&self) -> Summary {
        let mut sum = Summary::default();
        let (Some(first), Some(last)) = (self.segments.first(), self.segments.last()) else {
            return sum;
        };
        sum.duration = last.time - first.time;
        let syn = self
            .segments
            .iter()
            .find(|s| s.from_client && s.flags.syn() && !s.flags.ack());
        if let Some(syn) = syn {
            let third = self.segments.iter().find(|s| {
                s.from_client
                    && !s.flags.syn()
                    && s.ack.is_some_and(|a| a >= 1)
                    && s.time >= syn.time
            });
            let synack_seen = self
                .segments
                .iter()
                .any(|s| !s.from_client && s.flags.syn() && s.flags.ack());
            if let (Some(third), true) = (third, synack_seen) {
                sum.handshake = Some(third.time - syn.time);
            }
        }
        for (i, client) in [(0, true), (1, false)] {
            let sent: Vec<&Segment> = self.from_side(client).collect();
            sum.segments[i] = sent.len();
            sum.retransmissions[i] = sent.iter().filter(|s| s.retransmission).count();
            // Bytes: the highest ACK from the other side, less the SYN (and a FIN if acked).
            let acked = self
                .from_side(!client)
                .filter_map(|s| s.ack)
                .max()
                .unwrap_or(0);
            let fin_end = sent.iter().filter(|s| s.flags.fin()).map(|s| s.end()).max();
            let data_end = match fin_end {
                Some(f) if acked >= f => f - 1,
                _ => acked,
            };
            sum.bytes[i] = data_end.saturating_sub(1);
        }
        let first_data = self.from_side(true).find(|s| s.len > 0);
        if let Some(fd) = first_data {
            let last_byte = self
                .from_side(true)
                .filter(|s| s.len > 0)
                .map(|s| s.seq + u64::from(s.len))
                .max()
                .unwrap_or(0);
            let acked_at = self
                .from_side(false)
                .find(|s| s.ack.is_some_and(|a| a >= last_byte))
                .map(|s| s.time);
            if let Some(t) = acked_at {
                let secs = (t - fd.time).as_secs_f64();
                if secs > 0.0 {
                    sum.goodput_bps = Some(sum.bytes[0] as f64 * 8.0 / secs);
                }
            }
        }
        let mut rtts: Vec<Duration> = self.rtt_samples(true).into_iter().map(|(_, d)| d).collect();
        rtts.sort();
        if let (Some(&lo), Some(&hi)) = (rtts.first(), rtts.last()) {
            sum.rtt = Some((lo, rtts[rtts.len() / 2], hi));
        }
        sum.ended_by = if self.segments.iter().any(|s| s.flags.rst()) {
            Some("RST")
        } else if self.from_side(true).any(|s| s.flags.fin())
            && self.from_side(false).any(|s| s.flags.fin())
        {
            Some("FIN")
        } else {
            None
        };
        sum
    }
}

/// Per side: the 64-bit relative numbering and what it has sent.
#[derive(Debug, Clone, Copy, Default)]
struct SideState {
    /// The 32-bit number that is relative 0, and the last extended value seen (for unwrapping).
    base: Option<SeqNum>,
    last: u64,
    /// Just past the highest sequence space sent.
    high: Option<u64>,
}

impl SideState {
    /// `n` relative to this side's base, extended to 64 bits near the last value seen.
    fn extend(&mut self, n: SeqNum) -> u64 {
        let base = *self.base.get_or_insert(n);
        let rel = n - base;
        let last32 = self.last as u32;
        let delta = rel.wrapping_sub(last32) as i32;
        let v = (self.last as i64 + i64::from(delta)).max(0) as u64;
        self.last = self.last.max(v);
        v
    }

    /// Without extending `last` (for numbers that may run behind, like old ACKs).
    fn relative(&self, n: SeqNum) -> u64 {
        match self.base {
            Some(base) => {
                let rel = n - base;
                let delta = rel.wrapping_sub(self.last as u32) as i32;
                (self.last as i64 + i64::from(delta)).max(0) as u64
            }
            None => 0,
        }
    }
}

/// One conversation being read.
struct Reading {
    flow: Flow,
    conv: Conversation,
    /// Index 0 is the client.
    sides: [SideState; 2],
    /// ConvKey side index (0 = lower endpoint) of the client.
    client_index: usize,
}

/// Reads packets one at a time into [`Flow`]s. [`flows`] does it for a whole trace.
#[derive(Default)]
pub struct Tracker {
    open: HashMap<ConvKey, usize>,
    reading: Vec<Reading>,
    seen: usize,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Takes the next packet (a whole IPv4 or IPv6 packet). Returns the index of its flow and
    /// of the segment in it, or `None` if it is not a TCP segment that parses.
    pub fn push(&mut self, time: Instant, packet: &[u8]) -> Option<(usize, usize)> {
        let index = self.seen;
        self.seen += 1;
        let ip = parse_ip(packet).ok()?;
        if ip.proto != IpProtocol::Tcp || ip.fragment.is_some() {
            return None;
        }
        let p = tcp::Packet::new_checked(ip.payload).ok()?;
        let r = tcp::Repr::parse(&p, ip.src, ip.dst, false).ok()?;
        let src = SocketAddr::new(ip.src, r.src_port);
        let dst = SocketAddr::new(ip.dst, r.dst_port);
        let (key, i) = ConvKey::new((ip.src, r.src_port), (ip.dst, r.dst_port));
        let fresh_syn = r.flags.syn() && !r.flags.ack();
        let existing = self.open.get(&key).copied().filter(|&f| {
            // A SYN with a new ISN on the same 4-tuple is a new connection.
            let rd = &self.reading[f];
            let side = usize::from(rd.client_index != i);
            !(fresh_syn && rd.sides[side].base.is_some_and(|b| b != r.seq))
        });
        let f = match existing {
            Some(f) => f,
            None => {
                self.reading.push(Reading {
                    flow: Flow {
                        client: src,
                        server: dst,
                        segments: Vec::new(),
                    },
                    conv: Conversation::default(),
                    sides: [SideState::default(); 2],
                    client_index: if r.flags.syn() && r.flags.ack() {
                        1 - i
                    } else {
                        i
                    },
                });
                let f = self.reading.len() - 1;
                if r.flags.syn() && r.flags.ack() {
                    // First seen a SYN-ACK: its receiver is the client.
                    let rd = &mut self.reading[f];
                    rd.flow.client = dst;
                    rd.flow.server = src;
                }
                self.open.insert(key, f);
                f
            }
        };
        let rd = &mut self.reading[f];
        let from_client = rd.client_index == i;
        let (me, peer) = if from_client { (0, 1) } else { (1, 0) };
        rd.conv.learn(i, &r);
        if r.flags.syn() {
            rd.sides[me].base = Some(r.seq);
            rd.sides[me].last = 0;
            if r.flags.ack() && rd.sides[peer].base.is_none() {
                rd.sides[peer].base = Some(r.ack - 1u32);
            }
        }
        let seq = rd.sides[me].extend(r.seq);
        if r.flags.ack() && rd.sides[peer].base.is_none() {
            // The peer has not been seen yet: its numbers start at what this side acknowledges.
            rd.sides[peer].base = Some(r.ack);
        }
        let ack = r.flags.ack().then(|| rd.sides[peer].relative(r.ack));
        let ctx = rd.conv.context(i);
        let window = match ctx.window_shift {
            Some(s) if !r.flags.syn() => u64::from(r.window) << s.min(14),
            _ => u64::from(r.window),
        };
        let sack: Vec<(u64, u64)> = r
            .options
            .sack
            .as_slice()
            .iter()
            .map(|&(l, e)| (rd.sides[peer].relative(l), rd.sides[peer].relative(e)))
            .collect();
        let dsack = match (sack.first(), ack) {
            (Some(&(_, right)), Some(a)) if right <= a => true,
            (Some(&(l0, r0)), _) => sack.get(1).is_some_and(|&(l1, r1)| l1 <= l0 && r0 <= r1),
            _ => false,
        };
        let len = r.payload.len() as u32;
        let seq_len = u64::from(len) + u64::from(r.flags.syn()) + u64::from(r.flags.fin());
        let high = &mut rd.sides[me].high;
        let retransmission = seq_len > 0 && high.is_some_and(|h| seq < h);
        if seq_len > 0 {
            *high = Some(high.map_or(seq + seq_len, |h| h.max(seq + seq_len)));
        }
        let text = r.display(ctx).to_string();
        let label = match text.find('[') {
            Some(at) => text[at..].to_string(),
            None => text,
        };
        rd.flow.segments.push(Segment {
            index,
            time,
            from_client,
            flags: r.flags,
            seq,
            ack,
            window,
            len,
            sack,
            timestamps: r.options.timestamps.map(|t| (t.tsval, t.tsecr)),
            retransmission,
            dsack,
            label,
        });
        Some((f, rd.flow.segments.len() - 1))
    }

    /// The flows read so far, in the order of their first packet.
    pub fn flows(&self) -> impl Iterator<Item = &Flow> {
        self.reading.iter().map(|r| &r.flow)
    }

    /// The flows, in the order of their first packet.
    pub fn finish(self) -> Vec<Flow> {
        self.reading.into_iter().map(|r| r.flow).collect()
    }
}

/// The source and destination of a TCP segment in an IPv4 or IPv6 packet, or `None` for
/// anything else (cheap: no checksum, no options parsed).
pub fn endpoints(packet: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let ip = parse_ip(packet).ok()?;
    if ip.proto != IpProtocol::Tcp || ip.fragment.is_some() {
        return None;
    }
    let p = tcp::Packet::new_checked(ip.payload).ok()?;
    Some((
        SocketAddr::new(ip.src, p.src_port()),
        SocketAddr::new(ip.dst, p.dst_port()),
    ))
}

/// Every TCP conversation in a sequence of `(time, IP packet)`, in the order of their first
/// packet.
pub fn flows<'p>(packets: impl IntoIterator<Item = (Instant, &'p [u8])>) -> Vec<Flow> {
    let mut t = Tracker::new();
    for (time, p) in packets {
        t.push(time, p);
    }
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::super::script::*;
    use super::*;

    fn script_flow() -> Flow {
        let pkts = connection_packets();
        let mut all = flows(
            pkts.iter()
                .map(|(ms, p)| (Instant::from_millis(*ms), p.as_slice())),
        );
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn relative_numbers_labels_and_sides() {
        let f = script_flow();
        assert_eq!((f.client, f.server), (CLIENT, SERVER));
        let s = &f.segments;
        assert_eq!(s.len(), 8);
        assert_eq!(
            s[0].label,
            "[SYN] Seq=0 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=0 TSecr=0 WS=128"
        );
        assert_eq!(
            s[1].label,
            "[SYN, ACK] Seq=0 Ack=1 Win=65535 Len=0 MSS=1460 SACK_PERM TSval=10 TSecr=0 WS=128"
        );
        // The server's ISN wraps past 2^32 during the connection: relative numbers do not care.
        assert_eq!(
            (s[3].seq, s[3].ack, s[3].len, s[3].window),
            (1, Some(1), 100, 65536)
        );
        assert_eq!((s[4].from_client, s[4].ack), (false, Some(101)));
        assert_eq!((s[6].seq, s[6].end()), (1, 2));
        assert_eq!(s[7].ack, Some(2));
        assert!(s.iter().all(|x| !x.retransmission && !x.dsack));
        assert!(s[2].is_pure_ack() && !s[3].is_pure_ack());
    }

    #[test]
    fn summary_of_a_whole_connection() {
        let f = script_flow();
        let sum = f.summary();
        assert_eq!(sum.handshake, Some(Duration::from_millis(20)));
        assert_eq!(sum.duration, Duration::from_millis(60));
        assert_eq!(sum.bytes, [100, 0]);
        assert_eq!(sum.segments, [5, 3]);
        assert_eq!(sum.retransmissions, [0, 0]);
        // 100 bytes from 20 ms to the ACK at 30 ms.
        assert_eq!(sum.goodput_bps, Some(800.0 / 0.010));
        // Data at 20 ms, acknowledged at 30; the FIN at 40, acknowledged at 50.
        assert_eq!(
            f.rtt_samples(true),
            [
                (Instant::from_millis(30), Duration::from_millis(10)),
                (Instant::from_millis(50), Duration::from_millis(10))
            ]
        );
        assert_eq!(sum.ended_by, Some("FIN"));
    }

    #[test]
    fn retransmissions_dsack_and_karn() {
        let pkts = connection_packets();
        let data = pkts[3].1.clone();
        // The data segment again, then the server's ACK carrying a D-SACK for it.
        let dup_ack = {
            let mut o = tcp::Options::default();
            o.sack.push((
                SeqNum(CLIENT_ISN.wrapping_add(1)),
                SeqNum(CLIENT_ISN.wrapping_add(101)),
            ));
            packet(Seg {
                from_client: false,
                seq: SERVER_ISN.wrapping_add(1),
                ack: CLIENT_ISN.wrapping_add(101),
                flags: Flags::ACK,
                window: 511,
                options: o,
                payload: &[],
            })
        };
        let mut seq: Vec<(u64, Vec<u8>)> = pkts[..4].to_vec();
        seq.push((25, data));
        seq.push((35, dup_ack));
        let f = flows(
            seq.iter()
                .map(|(ms, p)| (Instant::from_millis(*ms), p.as_slice())),
        )
        .remove(0);
        assert!(!f.segments[3].retransmission);
        assert!(f.segments[4].retransmission);
        assert!(f.segments[5].dsack);
        assert_eq!(f.segments[5].sack, [(1, 101)]);
        assert!(
            f.segments[5].label.ends_with("SLE=1 SRE=101"),
            "{}",
            f.segments[5].label
        );
        // The only data segment was sent twice: no RTT sample.
        assert!(f.rtt_samples(true).is_empty());
        assert_eq!(f.summary().retransmissions, [1, 0]);
    }

    #[test]
    fn without_the_syn_numbers_start_at_the_first_seen() {
        let pkts = connection_packets();
        let f = flows(
            pkts[3..5]
                .iter()
                .map(|(ms, p)| (Instant::from_millis(*ms), p.as_slice())),
        )
        .remove(0);
        assert_eq!((f.client, f.server), (CLIENT, SERVER));
        assert_eq!((f.segments[0].seq, f.segments[0].ack), (0, Some(0)));
        assert_eq!(f.segments[1].ack, Some(100));
        assert_eq!(f.summary().handshake, None);
    }

    #[test]
    fn junk_is_skipped_and_a_new_syn_starts_a_new_flow() {
        let pkts = connection_packets();
        let mut t = Tracker::new();
        assert_eq!(t.push(Instant::ZERO, &[]), None);
        assert_eq!(t.push(Instant::ZERO, &[0x45; 20]), None);
        for (ms, p) in &pkts {
            t.push(Instant::from_millis(*ms), p);
        }
        let again = packet(Seg {
            from_client: true,
            seq: 7,
            ack: 0,
            flags: Flags::SYN,
            window: 1000,
            options: Default::default(),
            payload: &[],
        });
        assert_eq!(t.push(Instant::from_millis(100), &again), Some((1, 0)));
        let all = t.finish();
        assert_eq!(endpoints(&again), Some((CLIENT, SERVER)));
        assert_eq!(endpoints(&[0x45; 20]), None);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].segments[0].index, 10);
        assert_eq!(all[1].segments[0].label, "[SYN] Seq=0 Win=1000 Len=0");
    }
}
