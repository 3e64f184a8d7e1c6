//! A figure of several ladders: each under its heading and above its captions, the numbered
//! sentences that the marks on it refer to. What `synack explain --svg` draws.

use std::fmt::Write as _;

use super::Ladder;
use super::svg::{EXTRA_STYLE, FONT_PX, FONTS_CJK, Layout, MARK_R, PAD, STYLE, draw_mark};
use crate::trace::columns;
use crate::trace::ladder::escape;

/// Several ladders one under another.
///
/// ```
/// use synack::tcp::State;
/// use synack::time::Instant;
/// use synack::trace::ladder::{Figure, Ladder, Lane, Panel, Side, StateChange};
///
/// let mut l = Ladder::new(Lane::new("client", "198.18.0.1"), Lane::new("server", "198.18.0.2"));
/// let mut st = StateChange::new(Side::Left, Instant::ZERO, State::Closed, State::SynSent);
/// st.mark = Some(1);
/// l.items.push(synack::trace::ladder::Item::State(st));
/// let fig = Figure {
///     title: Some("connect()".into()),
///     panels: vec![Panel {
///         heading: None,
///         ladder: l,
///         captions: vec![(1, "connect() sends a SYN: SYN-SENT.".into())],
///     }],
/// };
/// let svg = fig.to_svg();
/// assert!(svg.contains("SYN-SENT") && svg.contains("connect() sends a SYN"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Figure {
    /// A heading above everything.
    pub title: Option<String>,
    pub panels: Vec<Panel>,
}

/// One ladder of a [`Figure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panel {
    /// A heading above the ladder.
    pub heading: Option<String>,
    pub ladder: Ladder,
    /// Sentences under the ladder, each with the number of the mark it belongs to (see
    /// [`Arrow::mark`](super::Arrow::mark)); wrapped to the figure's width.
    pub captions: Vec<(u32, String)>,
}

/// Narrowest figure, so that captions have room.
const MIN_W: f64 = 760.0;
const TITLE_H: f64 = 34.0;
const HEADING_H: f64 = 28.0;
const CAPTION_PX: f64 = 12.0;
/// Advance of one character of the captions' monospace font (0.6 em).
const CAPTION_W: f64 = CAPTION_PX * 0.6;
const CAPTION_LINE: f64 = 16.0;
/// From the left edge of a caption's mark to its text.
const CAPTION_INDENT: f64 = 2.0 * MARK_R + 10.0;
const PANEL_GAP: f64 = 18.0;

const FIGURE_STYLE: &str = r##"<style>
.fig-title{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei','WenQuanYi Micro Hei',sans-serif;font-size:16px;font-weight:700;fill:#0f172a}
.fig-heading{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei','WenQuanYi Micro Hei',sans-serif;font-size:14px;font-weight:700;fill:#1e293b}
.fig-rule{stroke:#e2e8f0;stroke-width:1}
.caption{fill:#1f2937;font-size:12px}
</style>
"##;

impl Figure {
    /// Draws the figure: the title, then each panel's heading, ladder and captions; the legend
    /// of arrow kinds once, under the last ladder. Pure: same figure, same bytes.
    pub fn to_svg(&self) -> String {
        let layouts: Vec<Layout<'_>> = self.panels.iter().map(|p| Layout::new(&p.ladder)).collect();
        let w = layouts
            .iter()
            .map(|l| l.width())
            .fold(MIN_W, f64::max)
            .ceil();
        let cols = ((w - 2.0 * PAD - CAPTION_INDENT) / CAPTION_W).floor() as usize;
        let captions: Vec<Vec<(u32, Vec<String>)>> = self
            .panels
            .iter()
            .map(|p| {
                p.captions
                    .iter()
                    .map(|(m, t)| (*m, columns::wrap(t, cols, "")))
                    .collect()
            })
            .collect();
        let mut body = String::new();
        let mut y = PAD;
        if let Some(t) = &self.title {
            let _ = write!(
                body,
                r#"<text class="fig-title" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                w / 2.0,
                y + 16.0,
                escape(t)
            );
            y += TITLE_H;
        }
        let last = layouts.len().saturating_sub(1);
        for (k, (p, lay)) in self.panels.iter().zip(&layouts).enumerate() {
            if k > 0 {
                let _ = write!(
                    body,
                    r#"<line class="fig-rule" x1="{PAD}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
                    y - PANEL_GAP / 2.0,
                    w - PAD,
                    y - PANEL_GAP / 2.0
                );
            }
            if let Some(h) = &p.heading {
                let _ = write!(
                    body,
                    r#"<text class="fig-heading" x="{PAD}" y="{:.1}">{}</text>"#,
                    y + 16.0,
                    escape(h)
                );
                y += HEADING_H;
            }
            let legend = k == last;
            let (lw, lh) = (lay.width(), lay.height(legend));
            let _ = write!(
                body,
                r#"<svg x="{:.1}" y="{y:.1}" width="{lw:.0}" height="{lh:.0}" viewBox="0 0 {lw:.0} {lh:.0}">"#,
                ((w - lw) / 2.0).floor()
            );
            lay.body(&mut body, legend);
            body.push_str("</svg>");
            y += lh.round() + 6.0;
            for (m, lines) in &captions[k] {
                draw_mark(&mut body, PAD + MARK_R, y + 8.0, *m);
                let _ = write!(body, r#"<text class="caption">"#);
                for (i, line) in lines.iter().enumerate() {
                    let _ = write!(
                        body,
                        r#"<tspan x="{:.1}" y="{:.1}">{}</tspan>"#,
                        PAD + CAPTION_INDENT,
                        y + 12.0 + i as f64 * CAPTION_LINE,
                        escape(line)
                    );
                }
                body.push_str("</text>");
                y += lines.len().max(1) as f64 * CAPTION_LINE + 6.0;
            }
            y += PANEL_GAP;
        }
        let h = (y - PANEL_GAP + PAD).ceil();
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="{FONTS_CJK}" font-size="{FONT_PX}">"#
        );
        s.push_str(STYLE);
        s.push_str(EXTRA_STYLE);
        s.push_str(FIGURE_STYLE);
        s.push_str(r##"<rect class="bg" x="0" y="0" width="100%" height="100%"/>"##);
        s.push_str(&body);
        s.push_str("</svg>\n");
        s
    }
}
