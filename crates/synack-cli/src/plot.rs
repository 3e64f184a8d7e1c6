//! Pictures: the ladder diagram that `--svg FILE` writes on `demo`, `sim`, `serve`, `connect`
//! and `lab`.

use std::io;
use std::net::SocketAddr;

use synack::trace::ladder::Ladder;
use synack::trace::{TraceEvent, TraceSink, flow};

/// Keeps the trace events of the first TCP conversation (its packets, both hosts' state
/// changes for it, and every note and drop while it lasts), so that a long-running `serve`
/// keeps one connection in memory, not all of them.
#[derive(Debug, Default)]
pub struct Recorder {
    first: Option<(SocketAddr, SocketAddr)>,
    over: bool,
    pub events: Vec<TraceEvent>,
}

impl Recorder {
    fn belongs(&self, a: SocketAddr, b: SocketAddr) -> bool {
        self.first
            .is_some_and(|(x, y)| (a, b) == (x, y) || (a, b) == (y, x))
    }
}

impl TraceSink for Recorder {
    fn event(&mut self, e: &TraceEvent) {
        if self.over {
            return;
        }
        let keep = match e {
            TraceEvent::Packet { bytes, .. } => match flow::endpoints(bytes) {
                Some((src, dst)) => {
                    if self.first.is_none() {
                        self.first = Some((src, dst));
                    }
                    self.belongs(src, dst)
                }
                None => false,
            },
            TraceEvent::State { local, remote, .. } => {
                let ours = self.belongs(*local, *remote) || self.first.is_none();
                if ours && self.first.is_none() {
                    self.first = Some((*local, *remote));
                }
                ours
            }
            TraceEvent::Drop { .. } | TraceEvent::Note { .. } => self.first.is_some(),
        };
        if keep {
            self.events.push(e.clone());
        }
        // Done once the conversation closes on the side that closes last.
        if let TraceEvent::State {
            to, local, remote, ..
        } = e
        {
            if *to == synack::tcp::State::Closed && self.belongs(*local, *remote) {
                self.over = true;
            }
        }
    }
}

/// `synack demo: 1.0 MiB over a 20ms round trip, 1% loss`: the heading of a run's pictures.
pub fn run_title(command: &str, bytes: u64, rtt: std::time::Duration, loss: f64) -> String {
    let loss = if loss > 0.0 {
        format!(", {}% loss", loss * 100.0)
    } else {
        String::new()
    };
    format!(
        "synack {command}: {} over a {rtt:?} round trip{loss}",
        crate::units::human_bytes(bytes)
    )
}

/// The conversations as `node` saw them (its `In` and `Out` packets): a capture on its
/// interface.
pub fn flows_seen_by(events: &[TraceEvent], node: &str) -> Vec<flow::Flow> {
    flow::flows(events.iter().filter_map(|e| match e {
        TraceEvent::Packet {
            time,
            node: n,
            bytes,
            ..
        } if n == node => Some((*time, bytes.as_slice())),
        _ => None,
    }))
}

/// Draws the ladder of the first TCP conversation in `events` to `path`, with `title` above
/// it; `rename` may adjust the lanes. Says where it went, on stderr when `stderr` (stdout
/// may carry data), else on stdout.
pub fn write_ladder(
    events: &[TraceEvent],
    path: &str,
    title: &str,
    rename: impl FnOnce(&mut Ladder),
    stderr: bool,
) -> io::Result<()> {
    let mut ladder = Ladder::from_trace(events, 0)
        .map_err(|e| io::Error::other(format!("--svg {path}: {e}")))?;
    ladder.title = Some(title.to_string());
    rename(&mut ladder);
    std::fs::write(path, ladder.to_svg())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {path}: {e}")))?;
    let msg = format!("wrote {path} (ladder diagram; open it in a browser)");
    if stderr {
        eprintln!("{msg}");
    } else {
        outln!("{msg}");
    }
    Ok(())
}

/// What `synack plot` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// tcptrace's time–sequence graph: data segments, ACK and window lines, SACK blocks,
    /// retransmissions and D-SACKs (from a capture).
    TimeSeq,
    /// The ladder diagram of one connection (from a capture: times on the far side estimated
    /// from the handshake).
    Ladder,
    /// cwnd, ssthresh, pipe and bytes in flight over time (from `sim --samples-out` CSV); from
    /// a capture, the bytes in flight the capture point sees.
    Cwnd,
    /// SRTT, RTTVAR and RTO over time (from samples CSV); from a capture, the RTT samples the
    /// capture point sees.
    Rtt,
}

/// Draw a capture (pcap or pcapng, any of synack's or tcpdump's) or a samples file as SVG.
#[derive(Debug, clap::Parser)]
#[command(after_long_help = "Examples:\n  \
    synack demo --pcap demo.pcap && synack plot demo.pcap -o timeseq.svg\n  \
    synack plot demo.pcap --kind ladder -o ladder.svg\n  \
    tcpdump -i any -w kernel.pcap port 80 ...; synack plot kernel.pcap --flow 1 -o flow1.svg\n  \
    synack sim --loss 1% --samples 10ms --samples-out s.csv && synack plot s.csv --kind cwnd -o cwnd.svg\n\n\
    Captures: classic pcap (either byte order, micro- or nanoseconds) or pcapng; link types raw\n\
    IP, Ethernet (VLAN too), Linux cooked (tcpdump -i any) and BSD loopback; IPv4 and IPv6.\n\
    Conversations are numbered from 0 in the order of their first packet; the time-sequence,\n\
    cwnd and rtt kinds show the direction that carried more data.\n\n\
    Output: the SVG goes to the -o file; standard output carries one line naming it; errors go\n\
    to standard error.")]
pub struct Args {
    /// The capture (.pcap, .pcapng) or samples file (.csv from `synack sim --samples-out`).
    pub input: String,
    /// Where to write the SVG.
    #[arg(short, long, value_name = "FILE.svg")]
    pub output: String,
    /// What to draw (default: time-seq for a capture, cwnd for samples).
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Which TCP conversation of the capture (0 = the first to appear).
    #[arg(long, default_value_t = 0)]
    pub flow: usize,
}

/// The input of `plot` and `report`: a capture's conversations or a sender's samples.
pub enum Input {
    Capture(Vec<flow::Flow>),
    Samples(Vec<synack::trace::samples::Sample>),
}

/// Reads a capture (pcap or pcapng) or a samples CSV, by content.
pub fn read_input(path: &str) -> io::Result<Input> {
    let bytes = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {path}: {e}")))?;
    if bytes.starts_with(synack::trace::samples::HEADER.as_bytes()) {
        let text = String::from_utf8_lossy(&bytes);
        let rows = synack::trace::samples::from_csv(&text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {e}")))?;
        return Ok(Input::Samples(rows));
    }
    let packets = synack::trace::read_capture(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {e}")))?;
    Ok(Input::Capture(flow::flows(
        packets.iter().map(|(t, p)| (*t, p.as_slice())),
    )))
}

/// `198.18.0.1:36851 → 198.18.0.2:80`.
pub fn flow_name(f: &flow::Flow) -> String {
    format!("{} \u{2192} {}", f.client, f.server)
}

/// The flow numbered `n`, or an error that lists the ones there are.
pub fn pick(flows: &[flow::Flow], n: usize, path: &str) -> io::Result<usize> {
    if n < flows.len() {
        return Ok(n);
    }
    let mut msg = if flows.is_empty() {
        format!("{path}: no TCP conversation in the capture")
    } else {
        format!("{path}: no conversation {n}; there are:")
    };
    for (i, f) in flows.iter().enumerate() {
        msg.push_str(&format!(
            "\n  --flow {i}: {} ({} segments)",
            flow_name(f),
            f.segments.len()
        ));
    }
    Err(io::Error::new(io::ErrorKind::NotFound, msg))
}

fn plot_err(e: synack::trace::plot::PlotError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Draws one chart of `input` (see [`Kind`]); returns the SVG and what it shows.
pub fn chart(input: &Input, kind: Kind, n: usize, path: &str) -> io::Result<(String, String)> {
    use synack::trace::plot;
    let file = std::path::Path::new(path)
        .file_name()
        .map_or(path.into(), |f| f.to_string_lossy().into_owned());
    match input {
        Input::Samples(rows) => match kind {
            Kind::Cwnd => Ok((
                plot::cwnd(rows, &format!("{file}: the sender's congestion window"))
                    .map_err(plot_err)?,
                "cwnd chart".into(),
            )),
            Kind::Rtt => Ok((
                plot::rtt_estimates(rows, &format!("{file}: the sender's RTT estimates"))
                    .map_err(plot_err)?,
                "RTT chart".into(),
            )),
            Kind::TimeSeq | Kind::Ladder => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{path} holds samples (cwnd, RTT), not packets: --kind cwnd or rtt; \
                     time-seq and ladder need a capture (e.g. synack demo --pcap FILE)"
                ),
            )),
        },
        Input::Capture(flows) => {
            let f = &flows[pick(flows, n, path)?];
            let what = flow_name(f);
            let title = |k: &str| format!("{file} #{n}: {k}, {what}");
            let (svg, name) = match kind {
                Kind::TimeSeq => (
                    plot::time_sequence(f, &title("time\u{2013}sequence")).map_err(plot_err)?,
                    "time\u{2013}sequence graph",
                ),
                Kind::Ladder => {
                    let mut l = Ladder::from_flow(f);
                    l.title = Some(format!("{file} #{n}"));
                    (l.to_svg(), "ladder diagram")
                }
                Kind::Cwnd => (
                    plot::in_flight(f, &title("bytes in flight")).map_err(plot_err)?,
                    "bytes-in-flight chart (cwnd itself is not on the wire)",
                ),
                Kind::Rtt => (
                    plot::rtt(f, &title("RTT samples")).map_err(plot_err)?,
                    "RTT chart",
                ),
            };
            Ok((svg, format!("{name} of conversation {n}: {what}")))
        }
    }
}

pub fn run(args: Args) -> std::process::ExitCode {
    let go = || -> io::Result<String> {
        let input = read_input(&args.input)?;
        let kind = args.kind.unwrap_or(match input {
            Input::Capture(_) => Kind::TimeSeq,
            Input::Samples(_) => Kind::Cwnd,
        });
        let (svg, what) = chart(&input, kind, args.flow, &args.input)?;
        std::fs::write(&args.output, svg)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", args.output)))?;
        Ok(what)
    };
    match go() {
        Ok(what) => {
            outln!("wrote {} ({what})", args.output);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
