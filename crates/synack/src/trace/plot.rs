//! Charts as SVG (feature `plot`): the time–sequence graph of a conversation as tcptrace
//! draws it, bytes in flight and RTT seen at the capture point, and a sender's cwnd, ssthresh,
//! pipe and RTT estimates over time from its [`samples`](super::samples). Axes, ticks and
//! legends are [plotters](https://docs.rs/plotters)' (SVG backend only).
//!
//! The time–sequence graph (one direction of a [`Flow`], the one that carried more data):
//!
//! * each data segment is a vertical bar from its first to its last byte at the time it was
//!   seen: blue when new, red when it carries bytes sent before (a retransmission);
//! * the green step line is the cumulative ACK coming back, the orange one the ACK plus the
//!   advertised window (how far the sender may send);
//! * purple bars are SACK blocks reported by those ACKs; a D-SACK block (RFC 2883: data that
//!   arrived twice) is magenta.
//!
//! ```
//! # #[cfg(feature = "plot")] {
//! use synack::trace::plot;
//! use synack::trace::samples::Sample;
//! let s = |t: f64, cwnd: u32| Sample { time_s: t, cwnd, ssthresh: None, srtt_ms: Some(20.0),
//!     rttvar_ms: 5.0, rto_ms: 220.0, pipe: cwnd, in_flight: cwnd, lost: 0, retransmits: 0,
//!     ca_state: "Open".into(), mss: 1448 };
//! let svg = plot::cwnd(&[s(0.0, 14480), s(0.1, 28960)], "cwnd").unwrap();
//! assert!(svg.contains("cwnd"));
//! # }
//! ```

use core::fmt;

use plotters::prelude::*;

use super::flow::Flow;
use super::samples::Sample;

/// Width and height of every chart, in pixels.
pub const SIZE: (u32, u32) = (900, 520);

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlotError {
    /// Nothing to draw, and why ("no data segments in this conversation").
    NoData(&'static str),
    /// The drawing library failed (not expected when drawing into a string).
    Draw(String),
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::NoData(why) => f.write_str(why),
            PlotError::Draw(e) => write!(f, "drawing failed: {e}"),
        }
    }
}

impl std::error::Error for PlotError {}

fn draw_err<E: fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

const BLUE_: RGBColor = RGBColor(37, 99, 235);
const RED_: RGBColor = RGBColor(220, 38, 38);
const GREEN_: RGBColor = RGBColor(5, 150, 105);
const ORANGE_: RGBColor = RGBColor(217, 119, 6);
const PURPLE_: RGBColor = RGBColor(124, 58, 237);
const MAGENTA_: RGBColor = RGBColor(219, 39, 119);
const GREY_: RGBColor = RGBColor(100, 116, 139);

/// `12 kB`, `1.5 MB`: a byte axis's labels, decimal like the ticks plotters chooses.
fn bytes_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1} MB", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.0} kB", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn upper(max: f64) -> f64 {
    if max > 0.0 { max * 1.05 } else { 1.0 }
}

/// One chart: `series` are drawn in order over shared axes.
struct Chart<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    x_max: f64,
    y_max: f64,
    y_bytes: bool,
}

impl Chart<'_> {
    fn draw(
        &self,
        series: impl FnOnce(
            &mut ChartContext<
                '_,
                SVGBackend<'_>,
                Cartesian2d<
                    plotters::coord::types::RangedCoordf64,
                    plotters::coord::types::RangedCoordf64,
                >,
            >,
        ) -> Result<(), PlotError>,
    ) -> Result<String, PlotError> {
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 18))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(84)
                .build_cartesian_2d(0f64..upper(self.x_max), 0f64..upper(self.y_max))
                .map_err(draw_err)?;
            let y_bytes = self.y_bytes;
            let fmt_y = move |v: &f64| {
                if y_bytes {
                    bytes_label(*v)
                } else {
                    format!("{v:.0}")
                }
            };
            chart
                .configure_mesh()
                .x_desc(self.x_desc)
                .y_desc(self.y_desc)
                .y_label_formatter(&fmt_y)
                .x_label_formatter(&|v| format!("{v:.2}"))
                .light_line_style(RGBColor(241, 245, 249))
                .bold_line_style(RGBColor(226, 232, 240))
                .axis_desc_style(("sans-serif", 14))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(draw_err)?;
            series(&mut chart)?;
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(203, 213, 225))
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(draw_err)?;
            root.present().map_err(draw_err)?;
        }
        Ok(buf)
    }
}

fn legend_line(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
}

/// Which way the data mostly went: true if the client sent more payload.
fn client_sends_more(f: &Flow) -> bool {
    let sent = |c: bool| f.from_side(c).map(|s| u64::from(s.len)).sum::<u64>();
    sent(true) >= sent(false)
}

/// The time–sequence graph of the direction that carried more data (see the module docs).
pub fn time_sequence(f: &Flow, title: &str) -> Result<String, PlotError> {
    let client = client_sends_more(f);
    let t0 = f
        .segments
        .first()
        .map(|s| s.time)
        .ok_or(PlotError::NoData("no TCP segments in this conversation"))?;
    let secs = |t| crate::time::Instant::saturating_duration_since(t, t0).as_secs_f64();
    let data: Vec<_> = f.from_side(client).filter(|s| s.len > 0).collect();
    if data.is_empty() {
        return Err(PlotError::NoData("no data segments in this conversation"));
    }
    let acks: Vec<_> = f.from_side(!client).filter(|s| s.ack.is_some()).collect();
    let mut ack_line: Vec<(f64, f64)> = Vec::new();
    let mut win_line: Vec<(f64, f64)> = Vec::new();
    for a in &acks {
        let (t, ack) = (secs(a.time), a.ack.unwrap_or(0) as f64);
        let win = ack + a.window as f64;
        if let (Some(&(_, pa)), Some(&(_, pw))) = (ack_line.last(), win_line.last()) {
            ack_line.push((t, pa));
            win_line.push((t, pw));
        }
        ack_line.push((t, ack));
        win_line.push((t, win));
    }
    let x_max = f.segments.iter().map(|s| secs(s.time)).fold(0.0, f64::max);
    // Zoomed on the data: the window line is cut at the top (a large receive window would
    // otherwise squash everything else).
    let y_max = data
        .iter()
        .map(|s| s.end() as f64)
        .chain(ack_line.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        * 1.15;
    for p in &mut win_line {
        p.1 = p.1.min(y_max);
    }
    let dir = if client {
        "client \u{2192} server"
    } else {
        "server \u{2192} client"
    };
    let y_desc = format!("sequence number, {dir} (relative)");
    Chart {
        title,
        x_desc: "time (s)",
        y_desc: &y_desc,
        x_max,
        y_max,
        y_bytes: true,
    }
    .draw(|chart| {
        let bar = |s: &&super::flow::Segment| {
            let t = secs(s.time);
            let (color, width) = if s.retransmission {
                (RED_, 4)
            } else {
                (BLUE_, 2)
            };
            PathElement::new(
                vec![(t, s.seq as f64), (t, (s.seq + u64::from(s.len)) as f64)],
                color.stroke_width(width),
            )
        };
        let window = (!win_line.is_empty())
            .then(|| PathElement::new(win_line.clone(), ORANGE_.stroke_width(1)));
        chart
            .draw_series(window)
            .map_err(draw_err)?
            .label("ACK + receive window")
            .legend(legend_line(ORANGE_));
        chart
            .draw_series(std::iter::once(PathElement::new(
                ack_line.clone(),
                GREEN_.stroke_width(2),
            )))
            .map_err(draw_err)?
            .label("cumulative ACK")
            .legend(legend_line(GREEN_));
        chart
            .draw_series(data.iter().filter(|s| !s.retransmission).map(bar))
            .map_err(draw_err)?
            .label("data segment")
            .legend(legend_line(BLUE_));

        let sack_bar = |dsack: bool| {
            let acks = &acks;
            move |_: ()| {
                acks.iter()
                    .filter(move |a| !a.sack.is_empty())
                    .flat_map(move |a| {
                        let t = secs(a.time);
                        a.sack
                            .iter()
                            .enumerate()
                            .filter(move |(k, _)| (*k == 0 && a.dsack) == dsack)
                            .map(move |(_, &(l, r))| {
                                let c = if dsack { MAGENTA_ } else { PURPLE_ };
                                PathElement::new(
                                    vec![(t, l as f64), (t, r as f64)],
                                    c.stroke_width(2),
                                )
                            })
                    })
                    .collect::<Vec<_>>()
            }
        };
        chart
            .draw_series(sack_bar(false)(()))
            .map_err(draw_err)?
            .label("SACK block")
            .legend(legend_line(PURPLE_));
        chart
            .draw_series(sack_bar(true)(()))
            .map_err(draw_err)?
            .label("D-SACK (arrived twice)")
            .legend(legend_line(MAGENTA_));
        chart
            .draw_series(data.iter().filter(|s| s.retransmission).map(bar))
            .map_err(draw_err)?
            .label("retransmission")
            .legend(legend_line(RED_));

        Ok(())
    })
}

/// Bytes in flight as the capture point sees them (highest byte sent minus highest byte
/// acknowledged), for the direction that carried more data. The sender's cwnd is not on the
/// wire; this is its visible effect.
pub fn in_flight(f: &Flow, title: &str) -> Result<String, PlotError> {
    let client = client_sends_more(f);
    let t0 = f
        .segments
        .first()
        .map(|s| s.time)
        .ok_or(PlotError::NoData("no TCP segments in this conversation"))?;
    let (mut high, mut acked) = (0u64, 0u64);
    let mut pts = Vec::new();
    for s in &f.segments {
        if s.from_client == client {
            high = high.max(s.end());
        } else if let Some(a) = s.ack {
            acked = acked.max(a);
        }
        pts.push((
            s.time.saturating_duration_since(t0).as_secs_f64(),
            high.saturating_sub(acked) as f64,
        ));
    }
    let x_max = pts.last().map_or(0.0, |p| p.0);
    let y_max = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    Chart {
        title,
        x_desc: "time (s)",
        y_desc: "bytes in flight at the capture point",
        x_max,
        y_max,
        y_bytes: true,
    }
    .draw(|chart| {
        chart
            .draw_series(LineSeries::new(pts, BLUE_.stroke_width(2)))
            .map_err(draw_err)?
            .label("sent and not yet acknowledged")
            .legend(legend_line(BLUE_));
        Ok(())
    })
}

/// RTT samples seen at the capture point (data → the ACK that covers it, Karn's rule), for
/// the direction that carried more data, in milliseconds.
pub fn rtt(f: &Flow, title: &str) -> Result<String, PlotError> {
    let client = client_sends_more(f);
    let t0 = f
        .segments
        .first()
        .map(|s| s.time)
        .ok_or(PlotError::NoData("no TCP segments in this conversation"))?;
    let pts: Vec<(f64, f64)> = f
        .rtt_samples(client)
        .into_iter()
        .map(|(t, d)| {
            (
                t.saturating_duration_since(t0).as_secs_f64(),
                d.as_secs_f64() * 1e3,
            )
        })
        .collect();
    if pts.is_empty() {
        return Err(PlotError::NoData(
            "no RTT samples: no data segment was acknowledged exactly once",
        ));
    }
    let x_max = pts.iter().map(|p| p.0).fold(0.0, f64::max);
    let y_max = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    Chart {
        title,
        x_desc: "time (s)",
        y_desc: "RTT at the capture point (ms)",
        x_max,
        y_max,
        y_bytes: false,
    }
    .draw(|chart| {
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 2, BLUE_.filled())))
            .map_err(draw_err)?
            .label("RTT sample (data \u{2192} its ACK)")
            .legend(|(x, y)| Circle::new((x + 9, y), 3, BLUE_.filled()));
        Ok(())
    })
}

/// A sender's cwnd, ssthresh, pipe and bytes in flight over time.
pub fn cwnd(samples: &[Sample], title: &str) -> Result<String, PlotError> {
    if samples.is_empty() {
        return Err(PlotError::NoData("no samples"));
    }
    let x_max = samples.iter().map(|s| s.time_s).fold(0.0, f64::max);
    let y_max = samples
        .iter()
        .map(|s| f64::from(s.cwnd.max(s.pipe).max(s.in_flight)))
        .fold(0.0, f64::max);
    let line = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter_map(|s| f(s).map(|v| (s.time_s, v)))
            .collect()
    };
    let cw = line(&|s| Some(f64::from(s.cwnd)));
    // ssthresh: clipped to the chart (it starts "infinite" and may exceed cwnd by far).
    let ss = line(&|s| s.ssthresh.map(|v| f64::from(v).min(upper(y_max))));
    let pipe = line(&|s| Some(f64::from(s.pipe)));
    let fl = line(&|s| Some(f64::from(s.in_flight)));
    Chart {
        title,
        x_desc: "time (s)",
        y_desc: "bytes",
        x_max,
        y_max,
        y_bytes: true,
    }
    .draw(|chart| {
        for (pts, color, name) in [
            (fl, GREY_, "in flight (SND.NXT \u{2212} SND.UNA)"),
            (pipe, PURPLE_, "pipe (RFC 6675)"),
            (ss, ORANGE_, "ssthresh"),
            (cw, BLUE_, "cwnd"),
        ] {
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(draw_err)?
                .label(name)
                .legend(legend_line(color));
        }
        Ok(())
    })
}

/// A sender's smoothed RTT, RTT variation and retransmission timeout over time.
pub fn rtt_estimates(samples: &[Sample], title: &str) -> Result<String, PlotError> {
    let srtt: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| s.srtt_ms.map(|v| (s.time_s, v)))
        .collect();
    if srtt.is_empty() {
        return Err(PlotError::NoData("no RTT measured in these samples"));
    }
    let first = srtt[0].0;
    let after = |f: fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter(|s| s.time_s >= first)
            .map(|s| (s.time_s, f(s)))
            .collect()
    };
    let rttvar = after(|s| s.rttvar_ms);
    let rto = after(|s| s.rto_ms);
    let x_max = samples.iter().map(|s| s.time_s).fold(0.0, f64::max);
    let y_max = rto.iter().chain(&srtt).map(|p| p.1).fold(0.0, f64::max);
    Chart {
        title,
        x_desc: "time (s)",
        y_desc: "milliseconds",
        x_max,
        y_max,
        y_bytes: false,
    }
    .draw(|chart| {
        for (pts, color, name) in [
            (rto, RED_, "RTO"),
            (rttvar, ORANGE_, "RTTVAR"),
            (srtt, BLUE_, "SRTT"),
        ] {
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(draw_err)?
                .label(name)
                .legend(legend_line(color));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::flow::flows;
    use super::super::script::*;
    use super::*;
    use crate::time::Instant;

    fn texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}"));
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(|t| t.trim().to_string()))
            .collect()
    }

    #[test]
    fn time_sequence_of_the_script() {
        let pkts = connection_packets();
        let f = flows(
            pkts.iter()
                .map(|(ms, p)| (Instant::from_millis(*ms), p.as_slice())),
        )
        .remove(0);
        let svg = time_sequence(&f, "script").unwrap();
        let t = texts(&svg);
        for want in [
            "script",
            "time (s)",
            "data segment",
            "cumulative ACK",
            "ACK + receive window",
            "retransmission",
            "SACK block",
            "sequence number, client \u{2192} server (relative)",
        ] {
            assert!(t.iter().any(|x| x == want), "no {want:?} in {t:?}");
        }
        assert!(rtt(&f, "rtt").is_ok());
        assert!(in_flight(&f, "flight").is_ok());
        let empty = Flow {
            client: CLIENT,
            server: SERVER,
            segments: f.segments[..3].to_vec(),
        };
        assert_eq!(
            time_sequence(&empty, "x"),
            Err(PlotError::NoData("no data segments in this conversation"))
        );
    }

    #[test]
    fn samples_charts() {
        let s = |t: f64, cwnd: u32, ss: Option<u32>| Sample {
            time_s: t,
            cwnd,
            ssthresh: ss,
            srtt_ms: (t > 0.0).then_some(20.0),
            rttvar_ms: 5.0,
            rto_ms: 220.0,
            pipe: cwnd,
            in_flight: cwnd,
            lost: 0,
            retransmits: 0,
            ca_state: "Open".into(),
            mss: 1448,
        };
        let v = [
            s(0.0, 14480, None),
            s(0.1, 28960, None),
            s(0.2, 14480, Some(14480)),
        ];
        let t = texts(&cwnd(&v, "c").unwrap());
        for want in ["cwnd", "ssthresh", "pipe (RFC 6675)", "bytes"] {
            assert!(t.iter().any(|x| x == want), "no {want:?} in {t:?}");
        }
        let t = texts(&rtt_estimates(&v, "r").unwrap());
        for want in ["SRTT", "RTTVAR", "RTO", "milliseconds"] {
            assert!(t.iter().any(|x| x == want), "no {want:?} in {t:?}");
        }
        assert_eq!(cwnd(&[], "c"), Err(PlotError::NoData("no samples")));
        assert!(rtt_estimates(&v[..1], "r").is_err());
    }
}
