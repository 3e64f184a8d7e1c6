//! The ladder diagram of a TCP connection, as SVG: the picture every textbook draws.
//!
//! Two vertical timelines, the client on the left and the server on the right, time flowing
//! down. Each segment is an arrow from the sender's timeline at its send time to the receiver's
//! at its arrival time, so the one-way delay shows as the arrow's slant. The segment's flags,
//! relative `Seq=`/`Ack=`, `Win=`, `Len=` and options are written beside the sender's end, in
//! the text trace's notation. Each state change is a badge on its side's timeline, and the
//! timeline takes the colour of the state it is in. Retransmissions are dashed and tagged; a
//! segment lost on the way stops midway at a red ×. Long silences (an RTO, say) are cut short
//! and labelled with the time that passed; long transfers fold their middle into one band
//! ("… 740 data segments → · 371 ACKs ← …") so that the handshake and the close stay legible.
//!
//! # API
//!
//! A [`Ladder`] is plain data: two [`Lane`]s and a list of [`Item`]s ([`Arrow`],
//! [`StateChange`], [`Note`]) with their times. Build one by hand, or with
//! [`Ladder::from_trace`] (the events of a run) or [`Ladder::from_flow`] (a conversation read
//! from a capture by [`flow`](super::flow)); then [`Ladder::to_svg`] draws it. Rendering is a
//! pure function of the `Ladder`: same input, same bytes.
//!
//! ```
//! use synack::tcp::State;
//! use synack::time::Instant;
//! use synack::trace::ladder::{Arrow, Item, Ladder, Lane, Side, StateChange};
//! use synack::wire::tcp::Flags;
//!
//! let mut l = Ladder::new(Lane::new("client", "198.18.0.1:49152"), Lane::new("server", "198.18.0.2:80"));
//! l.items.push(Item::State(StateChange::new(Side::Left, Instant::ZERO, State::Closed, State::SynSent)));
//! l.items.push(Item::Arrow(Arrow::new(
//!     Side::Left,
//!     Instant::ZERO,
//!     Some(Instant::from_millis(10)),
//!     "[SYN] Seq=0 Win=65535 Len=0 MSS=1460",
//!     Flags::SYN,
//!     0,
//! )));
//! let svg = l.to_svg();
//! assert!(svg.starts_with("<svg") && svg.contains("[SYN] Seq=0") && svg.contains("SYN-SENT"));
//! ```
//!
//! # Where the times come from
//!
//! With both hosts traced (`synack demo`, `synack sim`), every arrow has its true send and
//! arrival time, and a packet sent but never received is drawn lost. With one vantage point (a
//! capture, or synack on a TUN device where the other side is the kernel), each packet has one
//! time; [`Ladder::from_flow`] then estimates the one-way delays on each side of the vantage
//! point from the handshake (SYN → SYN-ACK is twice the server's side, SYN-ACK → ACK twice the
//! client's) and says so in a footnote. Loss cannot be seen from one point; retransmissions
//! still can.

mod build;
mod figure;
mod svg;
#[cfg(test)]
mod tests;

use crate::tcp::State;
use crate::time::{Duration, Instant};
use crate::trace::lang::Lang;
use crate::wire::tcp::Flags;

pub use figure::{Figure, Panel};

use super::flow::Segment;
#[cfg(test)]
use super::{Direction, TraceEvent};
#[cfg(test)]
use svg::{DELAY_PX, label_lines};

/// One of the two timelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client's, by convention.
    Left,
    Right,
}

impl Side {
    /// The other timeline.
    pub fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Left => 0,
            Side::Right => 1,
        }
    }
}

/// The heading of a timeline: a name in bold and a detail line (usually the address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub name: String,
    pub detail: String,
}

impl Lane {
    pub fn new(name: impl Into<String>, detail: impl Into<String>) -> Lane {
        Lane {
            name: name.into(),
            detail: detail.into(),
        }
    }
}

/// One segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    /// The sender's timeline.
    pub from: Side,
    pub sent: Instant,
    /// When it reached the other side; `None` if it was lost on the way.
    pub arrived: Option<Instant>,
    /// The segment in the text trace's notation, without ports:
    /// `[SYN, ACK] Seq=0 Ack=1 Win=65535 Len=0 MSS=1460 SACK_PERM WS=128`. The first line drawn
    /// is everything before `Win=` (flags, Seq, Ack); the rest wraps below it.
    pub label: String,
    /// Picks the colour: SYN amber, FIN violet, RST red, data blue, pure ACK grey.
    pub flags: Flags,
    /// Payload bytes (data segments are counted apart from ACKs in a fold).
    pub len: u32,
    /// Drawn dashed and tagged "retransmission".
    pub retransmission: bool,
    /// Not sent by the `from` host at this time, but put on the wire by someone else (an old
    /// duplicate, a forged packet): drawn dotted, starting in the middle of the network rather
    /// than on the sender's timeline.
    pub from_network: bool,
    /// A last line under the label, in the tag colour, saying what is special about the
    /// segment ("held up in the network", "from 198.19.7.1: spoofed"); wrapped if long.
    pub tag: Option<String>,
    /// A numbered marker beside the label, keyed to a text elsewhere (a [`Figure`]'s
    /// captions). A marked arrow is never folded away.
    pub mark: Option<u32>,
}

impl Arrow {
    pub fn new(
        from: Side,
        sent: Instant,
        arrived: Option<Instant>,
        label: impl Into<String>,
        flags: Flags,
        len: u32,
    ) -> Arrow {
        Arrow {
            from,
            sent,
            arrived,
            label: label.into(),
            flags,
            len,
            retransmission: false,
            from_network: false,
            tag: None,
            mark: None,
        }
    }

    /// The arrow of a segment read by [`flow`](super::flow), sent from `from`.
    pub fn of_segment(s: &Segment, from: Side, sent: Instant, arrived: Option<Instant>) -> Arrow {
        Arrow {
            retransmission: s.retransmission,
            ..Arrow::new(from, sent, arrived, s.label.clone(), s.flags, s.len)
        }
    }

    /// Worth keeping out of a fold: lost, retransmitted or a reset.
    fn notable(&self) -> bool {
        self.arrived.is_none() || self.retransmission || self.flags.rst()
    }
}

/// A connection changed state on one side (drawn as a badge on that side's timeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub side: Side,
    pub time: Instant,
    pub from: State,
    pub to: State,
    /// A numbered marker beside the badge, as [`Arrow::mark`].
    pub mark: Option<u32>,
}

impl StateChange {
    pub fn new(side: Side, time: Instant, from: State, to: State) -> StateChange {
        StateChange {
            side,
            time,
            from,
            to,
            mark: None,
        }
    }
}

/// A remark written beside one side's timeline: "RTO fired", "dropped: bad checksum".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub side: Side,
    pub time: Instant,
    pub text: String,
    /// How it is drawn.
    pub kind: NoteKind,
    /// A numbered marker before the text, as [`Arrow::mark`]. A marked note is never folded
    /// away.
    pub mark: Option<u32>,
}

impl Note {
    /// A [`NoteKind::Remark`].
    pub fn new(side: Side, time: Instant, text: impl Into<String>) -> Note {
        Note {
            side,
            time,
            text: text.into(),
            kind: NoteKind::Remark,
            mark: None,
        }
    }
}

/// What a [`Note`] says, which picks its look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoteKind {
    /// Something the stack did or suffered: a drop, a timer, a reset (red, italic, a dot on
    /// the timeline).
    #[default]
    Remark,
    /// A quiet fact: the congestion window changed (grey, italic).
    Info,
    /// An application call and its result: `connect(198.18.0.2:80) = 0` (dark, upright).
    Call,
    /// Something that happened to the host itself: it restarted, it went down (bold, a bar
    /// across the timeline).
    Event,
}

/// Something on the diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Arrow(Arrow),
    State(StateChange),
    Note(Note),
}

impl Item {
    fn time(&self) -> Instant {
        match self {
            Item::Arrow(a) => a.sent,
            Item::State(s) => s.time,
            Item::Note(n) => n.time,
        }
    }
}

/// A ladder diagram: what [`to_svg`](Self::to_svg) draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// A heading above the lanes.
    pub title: Option<String>,
    pub left: Lane,
    pub right: Lane,
    /// In any order; drawn by time (items with equal times keep their order).
    pub items: Vec<Item>,
    /// A line of small print under the diagram (e.g. how times were estimated).
    pub footnote: Option<String>,
    /// The language of the words the diagram writes itself (the legend, folds, cuts, tags);
    /// labels and notes are written as given. English by default.
    pub lang: Lang,
    /// With more than `head + tail + 2` arrows, only the first `head` and the last `tail`
    /// arrows are drawn (plus up to [`NOTABLE`] lost, retransmitted or RST arrows between
    /// them); each run of arrows left out becomes one fold band. Defaults: 7 and 6.
    pub head: usize,
    pub tail: usize,
}

/// The most lost, retransmitted or RST arrows kept out of a fold.
pub const NOTABLE: usize = 6;

/// Why a ladder could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LadderError {
    /// The trace has no TCP conversation with that index (`found` is how many it has).
    NoSuchFlow { asked: usize, found: usize },
}

impl std::fmt::Display for LadderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LadderError::NoSuchFlow { found: 0, .. } => {
                f.write_str("the trace has no TCP conversation to draw")
            }
            LadderError::NoSuchFlow { asked, found } => write!(
                f,
                "no TCP conversation {asked}: the trace has {found} (numbered from 0)"
            ),
        }
    }
}

impl std::error::Error for LadderError {}

impl Ladder {
    /// An empty ladder between two lanes, with the default fold.
    pub fn new(left: Lane, right: Lane) -> Ladder {
        Ladder {
            title: None,
            left,
            right,
            items: Vec::new(),
            footnote: None,
            lang: Lang::En,
            head: 7,
            tail: 6,
        }
    }
}

/// `0.25 ms`, `12.3 ms`, `1.234 s`.
fn fmt_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000_000 {
        let ms = us as f64 / 1000.0;
        if ms < 10.0 {
            format!("{ms:.2} ms")
        } else {
            format!("{ms:.1} ms")
        }
    } else {
        format!("{:.3} s", us as f64 / 1e6)
    }
}

/// Text made safe inside XML or HTML: `&`, `<`, `>` and quotes as entities.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}
