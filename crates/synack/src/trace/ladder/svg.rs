//! The SVG drawing of a [`Ladder`]: rows placed in time order, folds, and the markup.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{
    Arrow, Item, Ladder, NOTABLE, Note, NoteKind, Side, StateChange, escape, fmt_duration,
};
use crate::tcp::State;
use crate::time::{Duration, Instant};
use crate::trace::columns;
use crate::trace::lang::Lang;

impl Ladder {
    /// Draws the diagram. See the [module documentation](crate::trace::ladder) for what is on
    /// it.
    pub fn to_svg(&self) -> String {
        Layout::new(self).draw()
    }
}

// Geometry, in SVG user units (pixels at 100 %).
pub(super) const FONT_PX: f64 = 11.0;
/// Advance of one character of the monospace font at FONT_PX (0.6 em, as DejaVu Sans Mono,
/// Menlo and Consolas).
const CHAR_W: f64 = FONT_PX * 0.6;
/// The notes' font size.
const NOTE_PX: f64 = 10.0;
const LINE_H: f64 = 13.0;
const WRAP: usize = 34;
pub(super) const PAD: f64 = 16.0;
const TIME_W: f64 = 62.0;
const MID: f64 = 290.0;
/// Height given to the median one-way delay.
pub(super) const DELAY_PX: f64 = 64.0;
const GAP_MAX: f64 = 120.0;
const FOLD_H: f64 = 46.0;
const BADGE_H: f64 = 18.0;
const HEADER_H: f64 = 64.0;
/// Notes wider than this many columns are wrapped.
const NOTE_WRAP: usize = 60;
/// Radius of a numbered marker, and the room it takes beside a label.
pub(super) const MARK_R: f64 = 8.0;
const MARK_W: f64 = 2.0 * MARK_R + 6.0;
/// How far into the network an arrow [from the network](Arrow::from_network) starts.
const NETWORK_START: f64 = 0.3;

/// What occupies a row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Point {
    Start(usize),
    End(usize),
    State(usize),
    Note(usize),
    Fold(usize),
}

/// A run of arrows left out, drawn as one band.
struct Fold {
    start: Instant,
    end: Instant,
    /// Data segments and other segments, per sending side.
    data: [usize; 2],
    other: [usize; 2],
    retransmissions: usize,
    lost: usize,
    notes: usize,
    bytes: u64,
}

/// The diagram from top to bottom is a sequence of blocks: runs of drawn items and folds.
#[derive(Debug, Clone, Copy)]
struct Block {
    start: Instant,
    fold: Option<usize>,
}

pub(super) struct Layout<'l> {
    l: &'l Ladder,
    /// Items in time order (stable).
    items: Vec<&'l Item>,
    kept: Vec<bool>,
    /// The block each item is drawn in.
    block_of: Vec<usize>,
    blocks: Vec<Block>,
    folds: Vec<Fold>,
    /// Lines of each arrow's label and of each note.
    labels: Vec<Vec<String>>,
    /// The first of an arrow's label lines drawn as a tag ("retransmission", [`Arrow::tag`]).
    tag_from: Vec<usize>,
    /// Something on it needs [`EXTRA_STYLE`] (marks, note kinds, segments from the network).
    extended: bool,
    margin: f64,
    y: HashMap<(u8, usize), f64>,
    breaks: Vec<(f64, Duration)>,
    bottom: f64,
    origin: Instant,
    px_per_us: f64,
    /// Arrows whose arrival falls inside or past a later fold: item index -> fold.
    into_fold: HashMap<usize, usize>,
}

fn point_key(p: Point) -> (u8, usize) {
    match p {
        Point::Start(i) => (0, i),
        Point::End(i) => (1, i),
        Point::State(i) => (3, i),
        Point::Note(i) => (4, i),
        Point::Fold(i) => (5, i),
    }
}

/// The label in lines: flags, Seq and Ack first; then the rest, wrapped at [`WRAP`].
pub(super) fn label_lines(label: &str) -> Vec<String> {
    let (head, rest) = match label.find(" Win=") {
        Some(at) => (&label[..at], &label[at + 1..]),
        None => (label, ""),
    };
    let mut lines = vec![head.to_string()];
    let mut cur = String::new();
    for word in rest.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > WRAP {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// A note in lines: its own lines, each wrapped at [`NOTE_WRAP`] columns if wider.
fn note_lines(text: &str) -> Vec<String> {
    text.split('\n')
        .flat_map(|line| {
            if columns::width(line) <= NOTE_WRAP {
                vec![line.to_string()]
            } else {
                columns::wrap(line, NOTE_WRAP, "")
            }
        })
        .collect()
}

fn mark_of(item: &Item) -> Option<u32> {
    match item {
        Item::Arrow(a) => a.mark,
        Item::State(st) => st.mark,
        Item::Note(n) => n.mark,
    }
}

impl<'l> Layout<'l> {
    pub(super) fn new(l: &'l Ladder) -> Layout<'l> {
        let mut items: Vec<&Item> = l.items.iter().collect();
        items.sort_by_key(|i| i.time());
        let arrows: Vec<usize> = (0..items.len())
            .filter(|&i| matches!(items[i], Item::Arrow(_)))
            .collect();
        let mut kept = vec![true; items.len()];
        let n = arrows.len();
        if n > l.head + l.tail + 2 {
            let mut notable = 0;
            for (k, &i) in arrows.iter().enumerate() {
                let Item::Arrow(a) = items[i] else { continue };
                if k >= l.head && k < n - l.tail {
                    let marked = a.mark.is_some();
                    kept[i] = marked || (a.notable() && notable < NOTABLE);
                    notable += usize::from(kept[i] && !marked);
                }
            }
            // A run of one is not worth a fold.
            for k in 0..n {
                let prev = k == 0 || kept[arrows[k - 1]];
                let next = k + 1 == n || kept[arrows[k + 1]];
                if prev && next {
                    kept[arrows[k]] = true;
                }
            }
        }
        // Blocks, in the order of the arrows: a new one wherever kept and left out alternate.
        let mut blocks: Vec<Block> = Vec::new();
        let mut folds: Vec<Fold> = Vec::new();
        let mut block_of = vec![0usize; items.len()];
        for &i in &arrows {
            let Item::Arrow(a) = items[i] else { continue };
            let folded = !kept[i];
            let same = blocks.last().is_some_and(|b| b.fold.is_some() == folded);
            if !same {
                let fold = folded.then(|| {
                    folds.push(Fold {
                        start: a.sent,
                        end: a.sent,
                        data: [0; 2],
                        other: [0; 2],
                        retransmissions: 0,
                        lost: 0,
                        notes: 0,
                        bytes: 0,
                    });
                    folds.len() - 1
                });
                blocks.push(Block {
                    start: a.sent,
                    fold,
                });
            }
            block_of[i] = blocks.len() - 1;
            if let Some(f) = blocks.last().and_then(|b| b.fold) {
                let f = &mut folds[f];
                f.end = f.end.max(a.arrived.unwrap_or(a.sent));
                let s = a.from.index();
                if a.len > 0 {
                    f.data[s] += 1;
                    if !a.retransmission {
                        f.bytes += u64::from(a.len);
                    }
                } else {
                    f.other[s] += 1;
                }
                f.retransmissions += usize::from(a.retransmission);
                f.lost += usize::from(a.arrived.is_none());
            }
        }
        if blocks.is_empty() {
            blocks.push(Block {
                start: Instant::ZERO,
                fold: None,
            });
        }
        // A fold lasts until the next block starts.
        for w in 1..blocks.len() {
            if let Some(f) = blocks[w - 1].fold {
                folds[f].end = blocks[w].start.max(folds[f].start);
            }
        }
        // States and notes go in the block of their time; inside a fold, a state change or a
        // marked note is drawn just before the band and another note is counted in it.
        for (i, item) in items.iter().enumerate() {
            if matches!(item, Item::Arrow(_)) {
                continue;
            }
            let b = block_at(&blocks, item.time());
            block_of[i] = b;
            if let Some(f) = blocks[b].fold {
                let (t, fold) = (item.time(), &folds[f]);
                match item {
                    Item::Note(n) if n.mark.is_none() => {
                        kept[i] = false;
                        folds[f].notes += 1;
                    }
                    // A state change is drawn beside the nearer end of the band.
                    _ if t - fold.start > fold.end - t && b + 1 < blocks.len() => {
                        block_of[i] = b + 1
                    }
                    _ => block_of[i] = b.saturating_sub(1),
                }
            }
        }
        let mut tag_from = vec![0; items.len()];
        let labels: Vec<Vec<String>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Item::Arrow(a) => {
                    let mut v = label_lines(&a.label);
                    tag_from[i] = v.len();
                    if a.retransmission {
                        v.push(l.lang.pick("retransmission", "重传").into());
                    }
                    if let Some(t) = &a.tag {
                        v.extend(columns::wrap(t, WRAP, ""));
                    }
                    v
                }
                Item::Note(n) => note_lines(&n.text),
                Item::State(_) => Vec::new(),
            })
            .collect();
        let widest = labels
            .iter()
            .zip(&kept)
            .filter(|(_, k)| **k)
            .flat_map(|(v, _)| v.iter().map(|s| columns::width(s)))
            .max()
            .unwrap_or(20)
            .clamp(20, NOTE_WRAP);
        // Room for a marker beside the first line of a label or a note.
        let marked = labels
            .iter()
            .zip(&items)
            .zip(&kept)
            .filter(|((_, item), k)| **k && mark_of(item).is_some())
            .map(|((v, _), _)| v.first().map_or(0, |l| columns::width(l)))
            .max();
        let mut margin = widest as f64 * CHAR_W + 18.0;
        if let Some(w) = marked {
            margin = margin.max(w as f64 * CHAR_W + MARK_W + 18.0);
        }
        let extended = items.iter().any(|i| match i {
            Item::Arrow(a) => a.from_network || a.tag.is_some() || a.mark.is_some(),
            Item::State(st) => st.mark.is_some(),
            Item::Note(n) => {
                n.kind != NoteKind::Remark || n.mark.is_some() || n.text.contains('\n')
            }
        });
        let origin = items.first().map_or(Instant::ZERO, |i| i.time());
        let mut lay = Layout {
            l,
            items,
            kept,
            block_of,
            blocks,
            folds,
            labels,
            tag_from,
            extended,
            margin,
            y: HashMap::new(),
            breaks: Vec::new(),
            bottom: 0.0,
            origin,
            px_per_us: 0.0,
            into_fold: HashMap::new(),
        };
        lay.place();
        lay
    }

    /// Where the timelines start, under the headings.
    fn line_top(&self) -> f64 {
        PAD + HEADER_H + if self.l.title.is_some() { 26.0 } else { 0.0 }
    }

    fn x_of(&self, side: Side) -> f64 {
        let left = PAD + TIME_W + self.margin;
        match side {
            Side::Left => left,
            Side::Right => left + MID,
        }
    }

    pub(super) fn width(&self) -> f64 {
        self.x_of(Side::Right) + self.margin + TIME_W + PAD
    }

    /// Gives every point a y: block by block, in time order within a block, a height per
    /// unit of time (the median one-way delay gets [`DELAY_PX`]), long gaps cut at
    /// [`GAP_MAX`], and room for labels and badges.
    fn place(&mut self) {
        let mut delays: Vec<u64> = self
            .items
            .iter()
            .zip(&self.kept)
            .filter_map(|(i, k)| match i {
                Item::Arrow(a) if *k => a.arrived.map(|t| (t - a.sent).as_micros() as u64),
                _ => None,
            })
            .filter(|&d| d > 0)
            .collect();
        delays.sort_unstable();
        let typical = delays.get(delays.len() / 2).copied().unwrap_or(1000).max(1);
        self.px_per_us = DELAY_PX / typical as f64;
        // (block, time, tie-break, point)
        let mut pts: Vec<(usize, Instant, usize, Point)> = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            if !self.kept[i] {
                continue;
            }
            let b = self.block_of[i];
            match item {
                Item::Arrow(a) => {
                    pts.push((b, a.sent, i, Point::Start(i)));
                    if let Some(t) = a.arrived {
                        let at = block_at(&self.blocks, t).max(b);
                        let fold_between = (b + 1..=at).find(|&k| self.blocks[k].fold.is_some());
                        match fold_between {
                            Some(k) => {
                                self.into_fold.insert(i, self.blocks[k].fold.unwrap_or(0));
                            }
                            None => pts.push((at, t, i, Point::End(i))),
                        }
                    }
                }
                Item::State(s) => pts.push((b, s.time, i, Point::State(i))),
                Item::Note(n) => pts.push((b, n.time, i, Point::Note(i))),
            }
        }
        for (b, block) in self.blocks.iter().enumerate() {
            if let Some(f) = block.fold {
                pts.push((b, block.start, 0, Point::Fold(f)));
            }
        }
        pts.sort_by_key(|p| (p.0, p.1, p.2));

        let top = self.line_top() + 44.0;
        let mut cursor = top;
        let mut t_prev = pts.first().map_or(Instant::ZERO, |p| p.1);
        // Per side: where the margin and the timeline are free again.
        let mut label_free = [top - 10.0; 2];
        let mut line_free = [top; 2];
        for &(_, t, _, p) in &pts {
            let dt = t.saturating_duration_since(t_prev);
            let mut gap = dt.as_micros() as f64 * self.px_per_us;
            if matches!(p, Point::Fold(_)) {
                gap = gap.min(14.0);
            } else if gap > GAP_MAX {
                self.breaks.push((cursor + GAP_MAX / 2.0, dt));
                gap = GAP_MAX;
            }
            let mut y = cursor + gap;
            match p {
                Point::Start(i) => {
                    let Item::Arrow(a) = self.items[i] else {
                        continue;
                    };
                    let s = a.from.index();
                    y = y.max(label_free[s] + 10.0).max(line_free[s]);
                    label_free[s] = y - 10.0 + self.labels[i].len() as f64 * LINE_H + 4.0;
                    line_free[s] = y + 6.0;
                }
                Point::End(i) => {
                    let Item::Arrow(a) = self.items[i] else {
                        continue;
                    };
                    let s = a.from.other().index();
                    y = y.max(line_free[s]);
                    line_free[s] = y + 6.0;
                }
                Point::State(i) => {
                    let Item::State(st) = self.items[i] else {
                        continue;
                    };
                    let s = st.side.index();
                    y = y
                        .max(line_free[s] + BADGE_H / 2.0)
                        .max(label_free[s] + BADGE_H / 2.0);
                    line_free[s] = y + BADGE_H / 2.0 + 10.0;
                    label_free[s] = label_free[s].max(y + BADGE_H / 2.0);
                }
                Point::Note(i) => {
                    let Item::Note(n) = self.items[i] else {
                        continue;
                    };
                    let s = n.side.index();
                    y = y.max(label_free[s] + 10.0);
                    let extra = self.labels[i].len().saturating_sub(1) as f64 * LINE_H;
                    label_free[s] = y + 6.0 + extra;
                }
                Point::Fold(f) => {
                    y = y
                        .max(label_free[0] + 6.0)
                        .max(label_free[1] + 6.0)
                        .max(line_free[0])
                        .max(line_free[1]);
                    let after = y + FOLD_H + 10.0;
                    label_free = [after - 10.0; 2];
                    line_free = [after; 2];
                    t_prev = self.folds[f].end;
                    self.y.insert(point_key(p), y);
                    cursor = after;
                    continue;
                }
            }
            self.y.insert(point_key(p), y);
            cursor = y;
            t_prev = t_prev.max(t);
        }
        self.bottom = cursor
            .max(label_free[0])
            .max(label_free[1])
            .max(line_free[0])
            .max(line_free[1])
            + 20.0;
    }

    fn time_text(&self, t: Instant) -> String {
        let d = t.saturating_duration_since(self.origin);
        let us = d.as_micros();
        if us < 1_000_000 {
            format!("{:.1} ms", us as f64 / 1000.0)
        } else {
            format!("{:.3} s", us as f64 / 1e6)
        }
    }

    /// Where the legend goes (if drawn), and where the footnote goes.
    fn legend_and_foot(&self, legend: bool) -> (f64, f64) {
        let legend_y = self.bottom + 8.0;
        let foot_y = if legend { legend_y + 30.0 } else { legend_y };
        (legend_y, foot_y)
    }

    /// Height of the drawing, with or without the legend.
    pub(super) fn height(&self, legend: bool) -> f64 {
        let (_, foot_y) = self.legend_and_foot(legend);
        foot_y + if self.l.footnote.is_some() { 22.0 } else { 4.0 }
    }

    /// Any text on it that needs a CJK font.
    fn wide_text(&self) -> bool {
        let wide = |t: &str| columns::width(t) != t.chars().count();
        let l = self.l;
        [&l.left.name, &l.left.detail, &l.right.name, &l.right.detail]
            .into_iter()
            .chain(&l.title)
            .chain(&l.footnote)
            .chain(self.labels.iter().flatten())
            .any(|t| wide(t))
    }

    fn draw(&self) -> String {
        let w = self.width();
        let h = self.height(true);
        let font = if self.wide_text() { FONTS_CJK } else { FONTS };
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="{font}" font-size="{FONT_PX}">"#
        );
        s.push_str(STYLE);
        if self.extended {
            s.push_str(EXTRA_STYLE);
        }
        self.body(&mut s, true);
        s.push_str("</svg>\n");
        s
    }

    /// Everything inside the `<svg>` element but the style: the background, the lanes, the
    /// items, the legend (if `legend`) and the footnote.
    pub(super) fn body(&self, s: &mut String, legend: bool) {
        let w = self.width();
        let (legend_y, foot_y) = self.legend_and_foot(legend);
        s.push_str(r##"<rect class="bg" x="0" y="0" width="100%" height="100%"/>"##);
        let mut y0 = PAD;
        if let Some(t) = &self.l.title {
            let _ = write!(
                s,
                r#"<text class="title" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                w / 2.0,
                y0 + 14.0,
                escape(t)
            );
            y0 += 26.0;
        }
        for side in [Side::Left, Side::Right] {
            let lane = if side == Side::Left {
                &self.l.left
            } else {
                &self.l.right
            };
            let x = self.x_of(side);
            let cols = columns::width(&lane.detail).max(columns::width(&lane.name));
            let bw = (cols as f64 * CHAR_W + 24.0).max(110.0);
            let _ = write!(
                s,
                r#"<g class="lane"><rect x="{:.1}" y="{y0:.1}" width="{bw:.1}" height="{HEADER_H:.0}" rx="8"/><text class="lane-name" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="lane-detail" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
                x - bw / 2.0,
                y0 + 27.0,
                escape(&lane.name),
                y0 + 46.0,
                escape(&lane.detail)
            );
        }
        self.draw_timelines(s, self.line_top());
        for (y, dt) in &self.breaks {
            let _ = write!(
                s,
                r#"<text class="gap" x="{:.1}" y="{:.1}" text-anchor="middle">… {} {} …</text>"#,
                (self.x_of(Side::Left) + self.x_of(Side::Right)) / 2.0,
                y + 4.0,
                fmt_duration(*dt),
                self.l.lang.pick("later", "之后")
            );
        }
        for (f, fold) in self.folds.iter().enumerate() {
            self.draw_fold(s, f, fold);
        }
        for (i, item) in self.items.iter().enumerate() {
            if !self.kept[i] {
                continue;
            }
            match item {
                Item::Arrow(a) => self.draw_arrow(s, i, a),
                Item::State(st) => self.draw_state(s, i, st),
                Item::Note(n) => self.draw_note(s, i, n),
            }
        }
        if legend {
            self.draw_legend(s, legend_y);
        }
        if let Some(f) = &self.l.footnote {
            let _ = write!(
                s,
                r#"<text class="foot" x="{PAD}" y="{:.1}">{}</text>"#,
                foot_y + 8.0,
                escape(f)
            );
        }
    }

    /// Each side's timeline, coloured by the state it is in.
    fn draw_timelines(&self, s: &mut String, top: f64) {
        for side in [Side::Left, Side::Right] {
            let x = self.x_of(side);
            let mut changes: Vec<(f64, State, State)> = self
                .items
                .iter()
                .enumerate()
                .filter_map(|(i, it)| match it {
                    Item::State(st) if st.side == side && self.kept[i] => {
                        Some((self.y[&(3, i)], st.from, st.to))
                    }
                    _ => None,
                })
                .collect();
            changes.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut y = top;
            let mut state = changes.first().map(|c| c.1);
            for &(cy, _, to) in &changes {
                let _ = write!(
                    s,
                    r#"<line class="tl {}" x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{cy:.1}"/>"#,
                    state.map_or("st-none", state_class)
                );
                y = cy;
                state = Some(to);
            }
            let _ = write!(
                s,
                r#"<line class="tl {}" x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}"/>"#,
                state.map_or("st-none", state_class),
                self.bottom
            );
            // The state before the first change, under the heading.
            if let Some(&(_, from, _)) = changes.first() {
                self.badge(s, x, top + 18.0, from, "initial");
            }
        }
    }

    fn badge(&self, s: &mut String, x: f64, y: f64, st: State, extra: &str) {
        let name = st.name();
        let bw = badge_width(st);
        let _ = write!(
            s,
            r#"<g class="state {} {extra}"><rect x="{:.1}" y="{:.1}" width="{bw:.1}" height="{BADGE_H}" rx="9"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{name}</text></g>"#,
            state_class(st),
            x - bw / 2.0,
            y - BADGE_H / 2.0,
            y + 3.8
        );
    }

    fn draw_state(&self, s: &mut String, i: usize, st: &StateChange) {
        let y = self.y[&(3, i)];
        let x = self.x_of(st.side);
        self.badge(s, x, y, st.to, "");
        if let Some(m) = st.mark {
            let half = badge_width(st.to) / 2.0 + MARK_R + 4.0;
            let cx = match st.side {
                Side::Left => x - half,
                Side::Right => x + half,
            };
            draw_mark(s, cx, y, m);
        }
    }

    fn draw_note(&self, s: &mut String, i: usize, n: &Note) {
        let y = self.y[&(4, i)];
        let x = self.x_of(n.side);
        // Clear of the bar across the timeline of an event.
        let off = if n.kind == NoteKind::Event {
            20.0
        } else {
            10.0
        };
        let (tx, anchor) = match n.side {
            Side::Left => (x - off, "end"),
            Side::Right => (x + off, "start"),
        };
        let (class, dot) = match n.kind {
            NoteKind::Remark => (
                "note",
                format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="3"/>"#),
            ),
            NoteKind::Info => (
                "note info",
                format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5"/>"#),
            ),
            NoteKind::Call => (
                "note call",
                format!(
                    r#"<rect x="{:.1}" y="{:.1}" width="6" height="6"/>"#,
                    x - 3.0,
                    y - 3.0
                ),
            ),
            NoteKind::Event => (
                "note event",
                format!(
                    r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
                    x - 14.0,
                    x + 14.0
                ),
            ),
        };
        let _ = write!(s, r#"<g class="{class}">{dot}"#);
        match self.labels[i].as_slice() {
            [line] => {
                let _ = write!(
                    s,
                    r#"<text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                    y + 3.8,
                    escape(line)
                );
            }
            lines => {
                let _ = write!(s, r#"<text text-anchor="{anchor}">"#);
                for (k, line) in lines.iter().enumerate() {
                    let _ = write!(
                        s,
                        r#"<tspan x="{tx:.1}" y="{:.1}">{}</tspan>"#,
                        y + 3.8 + k as f64 * LINE_H,
                        escape(line)
                    );
                }
                s.push_str("</text>");
            }
        }
        s.push_str("</g>");
        if let Some(m) = n.mark {
            self.mark_beside(s, i, n.side, tx, y, m, NOTE_PX);
        }
    }

    /// Marker `m` beside the first line of item `i`'s text, which starts at `tx` (left side:
    /// ends there) and whose font is `font_px` high.
    #[allow(clippy::too_many_arguments)]
    fn mark_beside(
        &self,
        s: &mut String,
        i: usize,
        side: Side,
        tx: f64,
        y: f64,
        m: u32,
        font_px: f64,
    ) {
        // Monospace: 0.6 em a character; a CJK character is drawn by a fallback font, 1 em.
        let w = self.labels[i].first().map_or(0.0, |l| {
            l.chars()
                .map(|c| {
                    if columns::char_width(c) == 2 {
                        1.0
                    } else {
                        0.6
                    }
                })
                .sum::<f64>()
                * font_px
        });
        let cx = match side {
            Side::Left => tx - w - MARK_R - 4.0,
            Side::Right => tx + w + MARK_R + 4.0,
        };
        draw_mark(s, cx, y, m);
    }

    fn draw_arrow(&self, s: &mut String, i: usize, a: &Arrow) {
        let y1 = self.y[&(0, i)];
        // The sender's timeline; the arrow starts there, or in the network.
        let x0 = self.x_of(a.from);
        let x2full = self.x_of(a.from.other());
        let x1 = if a.from_network {
            x0 + (x2full - x0) * NETWORK_START
        } else {
            x0
        };
        let kind = arrow_class(a);
        let mut classes = format!("seg {kind}");
        if a.retransmission {
            classes.push_str(" rtx");
        }
        if a.arrived.is_none() {
            classes.push_str(" lost");
        }
        if a.from_network {
            classes.push_str(" net");
        }
        let _ = write!(s, r#"<g class="{classes}">"#);
        match a.arrived {
            Some(t) if self.into_fold.contains_key(&i) => {
                // Its arrival falls inside a fold: drawn along its true slope, and cut at the
                // band's top if it would reach the other side only below it.
                let band = self.y[&(5, self.into_fold[&i])] - 2.0;
                let ideal =
                    y1 + t.saturating_duration_since(a.sent).as_micros() as f64 * self.px_per_us;
                if ideal <= band {
                    let _ = write!(
                        s,
                        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2full:.1}" y2="{ideal:.1}" marker-end="url(#head-{kind})"/>"#
                    );
                } else {
                    let frac = (band - y1) / (ideal - y1);
                    let (x2, y2) = (x1 + (x2full - x1) * frac, band);
                    let _ = write!(
                        s,
                        r#"<line class="infold" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}"/>"#
                    );
                }
            }
            Some(_) => {
                let y2 = self.y[&(1, i)];
                // Stop short of the timeline so the arrowhead touches it.
                let _ = write!(
                    s,
                    r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2full:.1}" y2="{y2:.1}" marker-end="url(#head-{kind})"/>"#
                );
            }
            None => {
                // Lost: half way along the typical delay's slant.
                let xm = x1 + (x2full - x1) * 0.55;
                let ym = y1 + DELAY_PX * 0.3;
                // "lost" past the cross, away from the line.
                let lost = self.l.lang.pick("lost", "丢失");
                let at = if x2full < x1 {
                    format!(
                        r#"x="{:.1}" y="{:.1}" text-anchor="end""#,
                        xm - 11.0,
                        ym + 4.0
                    )
                } else {
                    format!(r#"x="{:.1}" y="{:.1}""#, xm + 11.0, ym + 4.0)
                };
                let _ = write!(
                    s,
                    r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{xm:.1}" y2="{ym:.1}"/><path class="cross" d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}"/><text class="lost-label" {at}>{lost}</text>"#,
                    xm - 6.0,
                    ym - 6.0,
                    xm + 6.0,
                    ym + 6.0,
                    xm - 6.0,
                    ym + 6.0,
                    xm + 6.0,
                    ym - 6.0,
                );
            }
        }
        if a.from_network {
            let _ = write!(
                s,
                r#"<circle class="origin" cx="{x1:.1}" cy="{y1:.1}" r="3.5"/>"#
            );
        } else {
            let _ = write!(s, r#"<circle cx="{x1:.1}" cy="{y1:.1}" r="2.5"/>"#);
        }
        // The label beside the sender's timeline, the first line level with the arrow's start.
        let (tx, anchor, timex, tanchor) = match a.from {
            Side::Left => (x0 - 10.0, "end", PAD, "start"),
            Side::Right => (x0 + 10.0, "start", self.width() - PAD, "end"),
        };
        let _ = write!(s, r#"<text class="label" text-anchor="{anchor}">"#);
        for (k, line) in self.labels[i].iter().enumerate() {
            let cls = if k == 0 {
                "l1"
            } else if k >= self.tag_from[i] {
                "tag"
            } else {
                "l2"
            };
            let _ = write!(
                s,
                r#"<tspan class="{cls}" x="{tx:.1}" y="{:.1}">{}</tspan>"#,
                y1 + 3.8 + k as f64 * LINE_H,
                escape(line)
            );
        }
        s.push_str("</text>");
        let _ = write!(
            s,
            r#"<text class="time" x="{timex:.1}" y="{:.1}" text-anchor="{tanchor}">{}</text></g>"#,
            y1 + 3.8,
            self.time_text(a.sent)
        );
        if let Some(m) = a.mark {
            self.mark_beside(s, i, a.from, tx, y1, m, FONT_PX);
        }
    }

    fn draw_fold(&self, s: &mut String, f: usize, fold: &Fold) {
        let y = self.y[&(5, f)];
        let w = self.width();
        let zh = self.l.lang == Lang::Zh;
        let dir = |k: usize, what: &str, n: usize| -> Option<String> {
            (n > 0).then(|| {
                let arrow = if k == 0 { "\u{2192}" } else { "\u{2190}" };
                if zh {
                    return format!("{n} 个{what} {arrow}");
                }
                let plural = if n == 1 { "" } else { "s" };
                format!("{n} {what}{plural} {arrow}")
            })
        };
        let (data, ack) = if zh {
            ("数据段", " ACK")
        } else {
            ("data segment", "ACK")
        };
        let parts: Vec<String> = [
            dir(0, data, fold.data[0]),
            dir(0, ack, fold.other[0]),
            dir(1, data, fold.data[1]),
            dir(1, ack, fold.other[1]),
        ]
        .into_iter()
        .flatten()
        .collect();
        let bytes = human_bytes(fold.bytes, self.l.lang);
        let over = fmt_duration(fold.end.saturating_duration_since(fold.start));
        let mut second = if zh {
            format!("{over} 内 {bytes}")
        } else {
            format!("{bytes} over {over}")
        };
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        if fold.retransmissions > 0 {
            let n = fold.retransmissions;
            let _ = match zh {
                true => write!(second, "，{n} 个重传"),
                false => write!(second, ", {n} retransmitted"),
            };
        }
        if fold.notes > 0 {
            let n = fold.notes;
            let _ = match zh {
                true => write!(second, "，{n} 条注记"),
                false => write!(second, ", {n} note{}", plural(n)),
            };
        }
        if fold.lost > 0 {
            let n = fold.lost;
            let _ = match zh {
                true => write!(second, "，{n} 个丢失"),
                false => write!(second, ", {n} lost"),
            };
        }
        let _ = write!(
            s,
            r#"<g class="fold"><rect x="{PAD}" y="{y:.1}" width="{:.1}" height="{FOLD_H}" rx="6"/><text class="fold1" x="{:.1}" y="{:.1}" text-anchor="middle">… {} …</text><text class="fold2" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
            w - 2.0 * PAD,
            w / 2.0,
            y + 19.0,
            escape(&parts.join(" \u{00b7} ")),
            w / 2.0,
            y + 35.0,
            escape(&second)
        );
    }

    fn draw_legend(&self, s: &mut String, y: f64) {
        let lang = self.l.lang;
        let entries = [
            ("syn", "SYN"),
            ("data", lang.pick("data", "数据")),
            ("ack", "ACK"),
            ("fin", "FIN"),
            ("rst", "RST"),
        ];
        let mut x = PAD;
        s.push_str(r#"<g class="legend">"#);
        for (kind, name) in entries {
            let _ = write!(
                s,
                r#"<g class="seg {kind}"><line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" marker-end="url(#head-{kind})"/></g><text x="{:.1}" y="{:.1}">{name}</text>"#,
                x + 26.0,
                x + 32.0,
                y + 3.8
            );
            x += 40.0 + columns::width(name) as f64 * CHAR_W;
        }
        let rtx = lang.pick("retransmission", "重传");
        let _ = write!(
            s,
            r#"<g class="seg data rtx"><line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/></g><text x="{:.1}" y="{:.1}">{rtx}</text>"#,
            x + 26.0,
            x + 32.0,
            y + 3.8
        );
        x += 40.0 + columns::width(rtx) as f64 * CHAR_W;
        let _ = write!(
            s,
            r#"<path class="cross" d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}"/><text x="{:.1}" y="{:.1}">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text></g>"#,
            x + 6.0,
            y - 5.0,
            x + 16.0,
            y + 5.0,
            x + 6.0,
            y + 5.0,
            x + 16.0,
            y - 5.0,
            x + 24.0,
            y + 3.8,
            lang.pick("lost", "丢失"),
            self.width() - PAD,
            y + 3.8,
            lang.pick(
                "time runs down · slant = one-way delay",
                "时间向下流逝 · 斜度 = 单向时延"
            )
        );
    }
}

/// The last block that starts at or before `t` (the first if none does).
fn block_at(blocks: &[Block], t: Instant) -> usize {
    blocks.partition_point(|b| b.start <= t).saturating_sub(1)
}

fn human_bytes(b: u64, lang: Lang) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} {}", lang.pick("bytes", "字节"))
    }
}

fn arrow_class(a: &Arrow) -> &'static str {
    if a.flags.rst() {
        "rst"
    } else if a.flags.syn() {
        "syn"
    } else if a.flags.fin() {
        "fin"
    } else if a.len > 0 {
        "data"
    } else {
        "ack"
    }
}

fn state_class(s: State) -> &'static str {
    match s {
        State::Closed | State::Listen => "st-closed",
        State::SynSent | State::SynReceived => "st-open",
        State::Established => "st-est",
        State::FinWait1
        | State::FinWait2
        | State::Closing
        | State::TimeWait
        | State::CloseWait
        | State::LastAck => "st-close",
    }
}

fn badge_width(st: State) -> f64 {
    st.name().len() as f64 * CHAR_W * 0.95 + 16.0
}

/// A numbered marker: a dark disc with the number in white.
pub(super) fn draw_mark(s: &mut String, cx: f64, cy: f64, m: u32) {
    let _ = write!(
        s,
        r#"<g class="mark"><circle cx="{cx:.1}" cy="{cy:.1}" r="{MARK_R}"/><text x="{cx:.1}" y="{:.1}" text-anchor="middle">{m}</text></g>"#,
        cy + 3.5
    );
}

/// The font of the labels: a monospace one (the notation lines up as in a terminal).
const FONTS: &str = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace";
/// The same with fonts that have CJK characters, for pictures with Chinese text.
pub(super) const FONTS_CJK: &str = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', 'Noto Sans Mono CJK SC', 'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei', 'WenQuanYi Micro Hei', monospace";

/// What marks, note kinds and segments from the network add to [`STYLE`].
pub(super) const EXTRA_STYLE: &str = r##"<style>
.mark circle{fill:#1e293b}
.mark text{fill:#ffffff;font-size:10px;font-weight:700;font-style:normal}
.net line{stroke-dasharray:1.5 3.5;stroke-width:2}
.net circle.origin{fill:#ffffff;stroke:#475569;stroke-width:1.5}
.note.info circle{fill:#94a3b8}.note.info text{fill:#475569}
.note.call rect{fill:#334155}.note.call text{fill:#0f172a;font-style:normal;font-weight:600}
.note.event line{stroke:#b91c1c;stroke-width:3}.note.event text{fill:#7f1d1d;font-style:normal;font-weight:700}
</style>
"##;

/// Colours and shapes, in one place; arrowheads as markers per kind.
pub(super) const STYLE: &str = r##"<style>
.bg{fill:#ffffff}
.title{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;font-weight:600;fill:#111827}
.lane rect{fill:#f8fafc;stroke:#cbd5e1}
.lane-name{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;font-weight:700;fill:#0f172a}
.lane-detail{fill:#475569}
.tl{stroke-width:4;stroke-linecap:round}
.tl.st-none{stroke:#cbd5e1}
.tl.st-closed{stroke:#cbd5e1}
.tl.st-open{stroke:#f59e0b}
.tl.st-est{stroke:#10b981}
.tl.st-close{stroke:#8b5cf6}
.seg line.infold{stroke-dasharray:2 3}
.state rect{stroke-width:1.2}
.state text{font-size:10px;font-weight:700}
.state.st-closed rect{fill:#f1f5f9;stroke:#94a3b8}.state.st-closed text{fill:#334155}
.state.st-open rect{fill:#fef3c7;stroke:#d97706}.state.st-open text{fill:#92400e}
.state.st-est rect{fill:#d1fae5;stroke:#059669}.state.st-est text{fill:#065f46}
.state.st-close rect{fill:#ede9fe;stroke:#7c3aed}.state.st-close text{fill:#5b21b6}
.seg line{stroke-width:1.6}
.seg circle{stroke:none}
.syn line{stroke:#d97706}.syn circle,.syn .l1{fill:#b45309}
.data line{stroke:#2563eb}.data circle,.data .l1{fill:#1d4ed8}
.ack line{stroke:#64748b}.ack circle,.ack .l1{fill:#475569}
.fin line{stroke:#7c3aed}.fin circle,.fin .l1{fill:#6d28d9}
.rst line{stroke:#dc2626}.rst circle,.rst .l1{fill:#b91c1c}
.rtx line{stroke-dasharray:7 4}
.lost line{stroke:#dc2626;stroke-dasharray:3 3}
.l1{font-weight:700}
.l2{fill:#64748b;font-size:10px}
.tag{fill:#dc2626;font-size:10px;font-weight:700}
.time{fill:#94a3b8;font-size:10px}
.cross{stroke:#dc2626;stroke-width:2.6;fill:none}
.lost-label{fill:#dc2626;font-size:10px;font-weight:700}
.note circle{fill:#dc2626}.note text{fill:#b91c1c;font-style:italic;font-size:10px}
.gap{fill:#64748b;font-style:italic;font-size:10px}
.fold rect{fill:#f1f5f9;stroke:#94a3b8;stroke-dasharray:4 3}
.fold1{fill:#334155;font-weight:700}
.fold2{fill:#64748b;font-size:10px}
.legend text{fill:#475569;font-size:10px}
.foot{fill:#64748b;font-size:10px;font-style:italic}
</style>
<defs>
<marker id="head-syn" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#d97706"/></marker>
<marker id="head-data" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#2563eb"/></marker>
<marker id="head-ack" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#64748b"/></marker>
<marker id="head-fin" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#7c3aed"/></marker>
<marker id="head-rst" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#dc2626"/></marker>
</defs>
"##;
