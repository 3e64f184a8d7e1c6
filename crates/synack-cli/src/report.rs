//! `synack report FILE -o FILE.html` and `synack demo --report FILE.html`: one self-contained
//! HTML page (inline SVG, CSS and a few lines of script; nothing fetched) with a summary of
//! each TCP conversation, the ladder, the time–sequence graph, RTT and cwnd (or bytes in
//! flight) charts of the first, the hosts' counters when known, and the trace as a table that
//! can be filtered by flag and direction.
//!
//! The filter also reads the page's fragment, so a link can open it filtered:
//! `report.html#flags=SYN,FIN&dir=c2s` (flags: SYN, FIN, RST, data, ACK; dir: c2s or s2c).

use std::fmt::Write as _;
use std::io;
use std::process::ExitCode;

use synack::trace::flow::Flow;
use synack::trace::ladder::{Ladder, escape as esc};
use synack::trace::plot as charts;
use synack::trace::samples::Sample;

use crate::plot::{self, Input};

/// Write a self-contained HTML report of a capture.
#[derive(Debug, clap::Parser)]
#[command(after_long_help = "Example:\n  \
    synack demo --loss 1% --pcap demo.pcap && synack report demo.pcap -o demo.html\n\n\
    Open the file in any browser; it fetches nothing. The trace table's filter can be set\n\
    from the address: demo.html#flags=SYN,FIN,RST&dir=c2s\n\n\
    Output: the HTML goes to the -o file; standard output carries one line naming it; errors\n\
    go to standard error.")]
pub struct Args {
    /// The capture (pcap or pcapng).
    pub input: String,
    /// Where to write the HTML.
    #[arg(short, long, value_name = "FILE.html")]
    pub output: String,
    /// Which conversation gets the pictures (0 = the first to appear); all are summarised.
    #[arg(long, default_value_t = 0)]
    pub flow: usize,
    /// A samples file (`synack sim --samples-out`) for the cwnd and RTT estimate charts.
    #[arg(long, value_name = "FILE.csv")]
    pub samples: Option<String>,
}

/// What a report shows.
pub struct Report {
    pub title: String,
    /// Where it came from, one line.
    pub source: String,
    pub flows: Vec<Flow>,
    /// The conversation that gets the pictures.
    pub flow: usize,
    /// Its ladder, when better known than a capture tells (both hosts traced).
    pub ladder: Option<Ladder>,
    pub samples: Option<Vec<Sample>>,
    /// (host, counters as `Name value` lines).
    pub counters: Vec<(String, String)>,
}

/// Most rows the trace table holds (the rest are counted, not shown).
const MAX_ROWS: usize = 20_000;

fn ms(d: std::time::Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// An SVG ready to inline: without an XML declaration.
fn inline(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(at) => &svg[at..],
        None => svg,
    }
}

impl Report {
    /// The whole page.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{}</title><style>{CSS}</style></head><body>\n<header><h1>{}</h1><p class=\"source\">{}</p></header>\n",
            esc(&self.title),
            esc(&self.title),
            esc(&self.source)
        );
        self.summary(&mut h);
        if let Some(f) = self.flows.get(self.flow) {
            self.pictures(&mut h, f);
        }
        if !self.counters.is_empty() {
            h.push_str("<section id=\"counters\"><h2>Counters</h2><div class=\"counters\">");
            for (host, text) in &self.counters {
                let _ = write!(
                    h,
                    "<table class=\"counter-table\"><caption>{}</caption>",
                    esc(host)
                );
                for line in text.lines() {
                    let mut it = line.split_whitespace();
                    if let (Some(name), Some(v)) = (it.next(), it.next()) {
                        let _ = write!(
                            h,
                            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
                            esc(name),
                            esc(v)
                        );
                    }
                }
                h.push_str("</table>");
            }
            h.push_str("</div></section>\n");
        }
        if let Some(f) = self.flows.get(self.flow) {
            self.trace_table(&mut h, f);
        }
        let _ = write!(h, "<script>{SCRIPT}</script>\n</body></html>\n");
        h
    }

    fn summary(&self, h: &mut String) {
        h.push_str(
            "<section id=\"summary\"><h2>Conversations</h2><table class=\"summary\"><thead><tr>\
             <th>#</th><th>client \u{2192} server</th><th>segments</th><th>handshake</th>\
             <th>duration</th><th>bytes \u{2192}</th><th>bytes \u{2190}</th><th>goodput \u{2192}</th>\
             <th>retransmissions \u{2192} / \u{2190}</th><th>RTT min / median / max</th><th>ended by</th>\
             </tr></thead><tbody>",
        );
        for (i, f) in self.flows.iter().enumerate() {
            let s = f.summary();
            let _ = write!(
                h,
                "<tr class=\"flow-row\"><td>{i}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&plot::flow_name(f)),
                f.segments.len(),
                s.handshake.map_or("\u{2013}".into(), ms),
                ms(s.duration),
                s.bytes[0],
                s.bytes[1],
                s.goodput_bps
                    .map_or("\u{2013}".into(), crate::units::human_rate),
                s.retransmissions[0],
                s.retransmissions[1],
                s.rtt.map_or("\u{2013}".into(), |(lo, mid, hi)| format!(
                    "{} / {} / {}",
                    ms(lo),
                    ms(mid),
                    ms(hi)
                )),
                s.ended_by.unwrap_or("still open")
            );
        }
        h.push_str("</tbody></table></section>\n");
    }

    fn pictures(&self, h: &mut String, f: &Flow) {
        let _ = write!(
            h,
            "<section id=\"pictures\"><h2>Conversation {}: {}</h2>",
            self.flow,
            esc(&plot::flow_name(f))
        );
        let ladder = self.ladder.clone().unwrap_or_else(|| Ladder::from_flow(f));
        let _ = write!(
            h,
            "<figure id=\"ladder\"><figcaption>Ladder diagram</figcaption>{}</figure>",
            ladder.to_svg()
        );
        let mut figure = |id: &str, caption: &str, svg: Result<String, charts::PlotError>| match svg
        {
            Ok(svg) => {
                let _ = write!(
                    h,
                    "<figure id=\"{id}\"><figcaption>{}</figcaption>{}</figure>",
                    esc(caption),
                    inline(&svg)
                );
            }
            Err(e) => {
                let _ = write!(
                    h,
                    "<figure id=\"{id}\" class=\"empty\"><figcaption>{}</figcaption><p>{}</p></figure>",
                    esc(caption),
                    esc(&e.to_string())
                );
            }
        };
        figure(
            "time-seq",
            "Time\u{2013}sequence graph (tcptrace style)",
            charts::time_sequence(f, "time\u{2013}sequence"),
        );
        figure(
            "rtt",
            "RTT samples at the capture point",
            charts::rtt(f, "RTT samples"),
        );
        match &self.samples {
            Some(rows) => {
                figure(
                    "cwnd",
                    "The sender's cwnd, ssthresh and pipe",
                    charts::cwnd(rows, "cwnd"),
                );
                figure(
                    "rtt-estimates",
                    "The sender's SRTT, RTTVAR and RTO",
                    charts::rtt_estimates(rows, "RTT estimates"),
                );
            }
            None => figure(
                "cwnd",
                "Bytes in flight at the capture point (cwnd itself is not on the wire)",
                charts::in_flight(f, "bytes in flight"),
            ),
        }
        h.push_str("</section>\n");
    }

    fn trace_table(&self, h: &mut String, f: &Flow) {
        let t0 = f.segments.first().map(|s| s.time);
        h.push_str(
            "<section id=\"trace\"><h2>Trace</h2><form id=\"filter\" onsubmit=\"return false\">\
             <span>show</span>",
        );
        for (k, name) in [
            ("SYN", "SYN"),
            ("FIN", "FIN"),
            ("RST", "RST"),
            ("data", "data"),
            ("ACK", "pure ACK"),
        ] {
            let _ = write!(
                h,
                "<label><input type=\"checkbox\" name=\"flag\" value=\"{k}\" checked> {name}</label>"
            );
        }
        h.push_str(
            "<select id=\"dir\"><option value=\"\">both directions</option>\
             <option value=\"c2s\">client \u{2192} server</option>\
             <option value=\"s2c\">server \u{2192} client</option></select>\
             <span id=\"shown\"></span></form>\
             <table id=\"trace-table\"><thead><tr><th>#</th><th>time</th><th>direction</th><th>segment</th></tr></thead><tbody>",
        );
        for (i, s) in f.segments.iter().take(MAX_ROWS).enumerate() {
            let mut kinds = Vec::new();
            if s.flags.syn() {
                kinds.push("SYN");
            }
            if s.flags.fin() {
                kinds.push("FIN");
            }
            if s.flags.rst() {
                kinds.push("RST");
            }
            if s.len > 0 {
                kinds.push("data");
            }
            if kinds.is_empty() {
                kinds.push("ACK");
            }
            let (dir, arrow) = if s.from_client {
                ("c2s", "client \u{2192} server")
            } else {
                ("s2c", "server \u{2192} client")
            };
            let time = t0.map_or(0.0, |t0| s.time.saturating_duration_since(t0).as_secs_f64());
            let class = if s.retransmission {
                " class=\"rtx\""
            } else {
                ""
            };
            let _ = write!(
                h,
                "<tr data-flags=\"{}\" data-dir=\"{dir}\"{class}><td class=\"num\">{i}</td><td class=\"num\">{time:.6}</td><td>{arrow}</td><td>{}{}</td></tr>",
                kinds.join(" "),
                esc(&s.label),
                if s.retransmission {
                    " <b>retransmission</b>"
                } else {
                    ""
                }
            );
        }
        h.push_str("</tbody></table>");
        if f.segments.len() > MAX_ROWS {
            let _ = write!(
                h,
                "<p class=\"more\">{} more segments not listed.</p>",
                f.segments.len() - MAX_ROWS
            );
        }
        h.push_str("</section>\n");
    }
}

const CSS: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;color:#0f172a;background:#f8fafc}\
header{background:#0f172a;color:#f8fafc;padding:18px 28px}header h1{margin:0;font-size:22px}\
.source{margin:6px 0 0;color:#cbd5e1;font-size:13px}\
section{background:#fff;margin:18px 24px;padding:14px 20px;border:1px solid #e2e8f0;border-radius:10px}\
h2{font-size:17px;margin:4px 0 12px}\
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #e2e8f0;text-align:left}\
th{background:#f1f5f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:12px 0;overflow-x:auto}figcaption{font-weight:600;font-size:14px;margin-bottom:6px;color:#334155}\
figure svg{max-width:100%;height:auto;border:1px solid #e2e8f0;border-radius:6px;background:#fff}\
figure.empty p{color:#64748b;font-style:italic}\
.counters{display:flex;gap:24px;flex-wrap:wrap}caption{font-weight:600;text-align:left;padding:4px 0}\
#filter{display:flex;gap:14px;align-items:center;flex-wrap:wrap;margin-bottom:10px;font-size:13px}\
#shown{color:#64748b}\
#trace-table td:nth-child(4){font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}\
#trace-table tr.rtx td{background:#fef2f2}#trace-table tr[hidden]{display:none}\
";

/// The filter: checkboxes by flag, a select by direction, both also from `#flags=..&dir=..`.
const SCRIPT: &str = r#"
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll('#trace-table tbody tr'));
  var boxes = Array.prototype.slice.call(document.querySelectorAll('#filter input[name=flag]'));
  var dir = document.getElementById('dir');
  var shown = document.getElementById('shown');
  function apply() {
    var on = {};
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    var n = 0;
    rows.forEach(function (r) {
      var kinds = r.getAttribute('data-flags').split(' ');
      var ok = kinds.some(function (k) { return on[k]; }) &&
        (!dir.value || r.getAttribute('data-dir') === dir.value);
      if (ok) { r.removeAttribute('hidden'); n++; } else { r.setAttribute('hidden', ''); }
    });
    shown.textContent = n + ' of ' + rows.length + ' segments shown';
  }
  var params = {};
  location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
    var p = kv.split('='); if (p[0]) { params[p[0]] = decodeURIComponent(p[1] || ''); }
  });
  if (params.flags) {
    var want = params.flags.split(',');
    boxes.forEach(function (b) { b.checked = want.indexOf(b.value) >= 0; });
  }
  if (params.dir) { dir.value = params.dir; }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  dir.addEventListener('change', apply);
  apply();
  document.body.setAttribute('data-ready', 'yes');
})();
"#;

/// Writes `report` to `path`; says so on stdout.
pub fn write(report: &Report, path: &str) -> io::Result<()> {
    std::fs::write(path, report.html())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {path}: {e}")))?;
    outln!("wrote {path} (HTML report; open it in a browser)");
    Ok(())
}

pub fn run(args: Args) -> ExitCode {
    let go = || -> io::Result<()> {
        let Input::Capture(flows) = plot::read_input(&args.input)? else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} holds samples, not packets: pass a capture, and the samples with --samples",
                    args.input
                ),
            ));
        };
        let flow = plot::pick(&flows, args.flow, &args.input)?;
        let samples = match &args.samples {
            Some(p) => match plot::read_input(p)? {
                Input::Samples(rows) => Some(rows),
                Input::Capture(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("--samples {p}: not a samples file (synack sim --samples-out)"),
                    ));
                }
            },
            None => None,
        };
        let report = Report {
            title: format!("synack report: {}", args.input),
            source: format!("{} TCP conversation(s) in {}", flows.len(), args.input),
            flows,
            flow,
            ladder: None,
            samples,
            counters: Vec::new(),
        };
        write(&report, &args.output)
    };
    match go() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
