//! The SVG drawing of a [`Ladder`]: rows placed in time order, folds, and the markup.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{Arrow, Item, Ladder, NOTABLE, Note, Side, StateChange, escape, fmt_duration};
use crate::tcp::State;
use crate::time::{Duration, Instant};

impl Ladder {
    /// Draws the diagram. See the [module documentation](crate::trace::ladder) for what is on
    /// it.
    pub fn to_svg(&self) -> String {
        Layout::new(self).draw()
    }
}

// Geometry, in SVG user units (pixels at 100 %).
const FONT_PX: f64 = 11.0;
/// Advance of one character of the monospace font at FONT_PX (0.6 em, as DejaVu Sans Mono,
/// Menlo and Consolas).
const CHAR_W: f64 = FONT_PX * 0.6;
const LINE_H: f64 = 13.0;
const WRAP: usize = 34;
const PAD: f64 = 16.0;
const TIME_W: f64 = 62.0;
const MID: f64 = 290.0;
/// Height given to the median one-way delay.
pub(super) const DELAY_PX: f64 = 64.0;
const GAP_MAX: f64 = 120.0;
const FOLD_H: f64 = 46.0;
const BADGE_H: f64 = 18.0;
const HEADER_H: f64 = 64.0;

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

struct Layout<'l> {
    l: &'l Ladder,
    /// Items in time order (stable).
    items: Vec<&'l Item>,
    kept: Vec<bool>,
    /// The block each item is drawn in.
    block_of: Vec<usize>,
    blocks: Vec<Block>,
    folds: Vec<Fold>,
    /// Lines of each arrow's label.
    labels: Vec<Vec<String>>,
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

impl<'l> Layout<'l> {
    fn new(l: &'l Ladder) -> Layout<'l> {
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
                    kept[i] = a.notable() && notable < NOTABLE;
                    notable += usize::from(kept[i]);
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
        // States and notes go in the block of their time; inside a fold, a state change is
        // drawn just before the band and a note is counted in it.
        for (i, item) in items.iter().enumerate() {
            if matches!(item, Item::Arrow(_)) {
                continue;
            }
            let b = block_at(&blocks, item.time());
            block_of[i] = b;
            if let Some(f) = blocks[b].fold {
                let (t, fold) = (item.time(), &folds[f]);
                match item {
                    Item::Note(_) => {
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
        let labels: Vec<Vec<String>> = items
            .iter()
            .map(|i| match i {
                Item::Arrow(a) => {
                    let mut v = label_lines(&a.label);
                    if a.retransmission {
                        v.push("retransmission".into());
                    }
                    v
                }
                _ => Vec::new(),
            })
            .collect();
        let widest = labels
            .iter()
            .zip(&kept)
            .filter(|(_, k)| **k)
            .flat_map(|(v, _)| v.iter().map(|s| s.chars().count()))
            .chain(items.iter().zip(&kept).filter_map(|(i, k)| match i {
                Item::Note(n) if *k => Some(n.text.chars().count()),
                _ => None,
            }))
            .max()
            .unwrap_or(20)
            .clamp(20, 60);
        let margin = widest as f64 * CHAR_W + 18.0;
        let origin = items.first().map_or(Instant::ZERO, |i| i.time());
        let mut lay = Layout {
            l,
            items,
            kept,
            block_of,
            blocks,
            folds,
            labels,
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

    fn width(&self) -> f64 {
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
                    label_free[s] = y + 6.0;
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

    fn draw(&self) -> String {
        let w = self.width();
        let legend_y = self.bottom + 8.0;
        let foot_y = legend_y + 30.0;
        let h = foot_y + if self.l.footnote.is_some() { 22.0 } else { 4.0 };
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace" font-size="{FONT_PX}">"#
        );
        s.push_str(STYLE);
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
            let bw = (lane.detail.chars().count().max(lane.name.chars().count()) as f64 * CHAR_W
                + 24.0)
                .max(110.0);
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
        self.draw_timelines(&mut s, self.line_top());
        for (y, dt) in &self.breaks {
            let _ = write!(
                s,
                r#"<text class="gap" x="{:.1}" y="{:.1}" text-anchor="middle">… {} later …</text>"#,
                (self.x_of(Side::Left) + self.x_of(Side::Right)) / 2.0,
                y + 4.0,
                fmt_duration(*dt)
            );
        }
        for (f, fold) in self.folds.iter().enumerate() {
            self.draw_fold(&mut s, f, fold);
        }
        for (i, item) in self.items.iter().enumerate() {
            if !self.kept[i] {
                continue;
            }
            match item {
                Item::Arrow(a) => self.draw_arrow(&mut s, i, a),
                Item::State(st) => self.draw_state(&mut s, i, st),
                Item::Note(n) => self.draw_note(&mut s, i, n),
            }
        }
        self.draw_legend(&mut s, legend_y);
        if let Some(f) = &self.l.footnote {
            let _ = write!(
                s,
                r#"<text class="foot" x="{PAD}" y="{:.1}">{}</text>"#,
                foot_y + 8.0,
                escape(f)
            );
        }
        s.push_str("</svg>\n");
        s
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
        let bw = name.len() as f64 * CHAR_W * 0.95 + 16.0;
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
        self.badge(s, self.x_of(st.side), y, st.to, "");
    }

    fn draw_note(&self, s: &mut String, i: usize, n: &Note) {
        let y = self.y[&(4, i)];
        let x = self.x_of(n.side);
        let (tx, anchor) = match n.side {
            Side::Left => (x - 10.0, "end"),
            Side::Right => (x + 10.0, "start"),
        };
        let _ = write!(
            s,
            r#"<g class="note"><circle cx="{x:.1}" cy="{y:.1}" r="3"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text></g>"#,
            y + 3.8,
            escape(&n.text)
        );
    }

    fn draw_arrow(&self, s: &mut String, i: usize, a: &Arrow) {
        let y1 = self.y[&(0, i)];
        let x1 = self.x_of(a.from);
        let x2full = self.x_of(a.from.other());
        let kind = arrow_class(a);
        let mut classes = format!("seg {kind}");
        if a.retransmission {
            classes.push_str(" rtx");
        }
        if a.arrived.is_none() {
            classes.push_str(" lost");
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
                let _ = write!(
                    s,
                    r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{xm:.1}" y2="{ym:.1}"/><path class="cross" d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}"/><text class="lost-label" x="{:.1}" y="{:.1}">lost</text>"#,
                    xm - 6.0,
                    ym - 6.0,
                    xm + 6.0,
                    ym + 6.0,
                    xm - 6.0,
                    ym + 6.0,
                    xm + 6.0,
                    ym - 6.0,
                    xm + 11.0,
                    ym + 4.0
                );
            }
        }
        let _ = write!(s, r#"<circle cx="{x1:.1}" cy="{y1:.1}" r="2.5"/>"#);
        // The label beside the sender's end, the first line level with the arrow's start.
        let (tx, anchor, timex, tanchor) = match a.from {
            Side::Left => (x1 - 10.0, "end", PAD, "start"),
            Side::Right => (x1 + 10.0, "start", self.width() - PAD, "end"),
        };
        let _ = write!(s, r#"<text class="label" text-anchor="{anchor}">"#);
        for (k, line) in self.labels[i].iter().enumerate() {
            let cls = if k == 0 {
                "l1"
            } else if a.retransmission && k + 1 == self.labels[i].len() {
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
    }

    fn draw_fold(&self, s: &mut String, f: usize, fold: &Fold) {
        let y = self.y[&(5, f)];
        let w = self.width();
        let dir = |k: usize, what: &str, n: usize| -> Option<String> {
            (n > 0).then(|| {
                let arrow = if k == 0 { "\u{2192}" } else { "\u{2190}" };
                let plural = if n == 1 { "" } else { "s" };
                format!("{n} {what}{plural} {arrow}")
            })
        };
        let parts: Vec<String> = [
            dir(0, "data segment", fold.data[0]),
            dir(0, "ACK", fold.other[0]),
            dir(1, "data segment", fold.data[1]),
            dir(1, "ACK", fold.other[1]),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut second = format!(
            "{} over {}",
            human_bytes(fold.bytes),
            fmt_duration(fold.end.saturating_duration_since(fold.start))
        );
        if fold.retransmissions > 0 {
            let _ = write!(second, ", {} retransmitted", fold.retransmissions);
        }
        if fold.notes > 0 {
            let plural = if fold.notes == 1 { "" } else { "s" };
            let _ = write!(second, ", {} note{plural}", fold.notes);
        }
        if fold.lost > 0 {
            let _ = write!(second, ", {} lost", fold.lost);
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
        let entries = [
            ("syn", "SYN"),
            ("data", "data"),
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
            x += 40.0 + name.len() as f64 * CHAR_W;
        }
        let _ = write!(
            s,
            r#"<g class="seg data rtx"><line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/></g><text x="{:.1}" y="{:.1}">retransmission</text>"#,
            x + 26.0,
            x + 32.0,
            y + 3.8
        );
        x += 40.0 + 14.0 * CHAR_W;
        let _ = write!(
            s,
            r#"<path class="cross" d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}"/><text x="{:.1}" y="{:.1}">lost</text><text x="{:.1}" y="{:.1}" text-anchor="end">time runs down · slant = one-way delay</text></g>"#,
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
            self.width() - PAD,
            y + 3.8
        );
    }
}

/// The last block that starts at or before `t` (the first if none does).
fn block_at(blocks: &[Block], t: Instant) -> usize {
    blocks.partition_point(|b| b.start <= t).saturating_sub(1)
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} bytes")
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

/// Colours and shapes, in one place; arrowheads as markers per kind.
const STYLE: &str = r##"<style>
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
