//! `synack sim`: one bulk transfer on SimNet in virtual time, every impairment a flag. The
//! same flags and seed give the same run, segment for segment. `--goodput-table` runs the
//! loss-recovery / congestion-control table of [`synack::sim::goodput`] instead.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use synack::device::sim::{LinkConfig, Loss};
use synack::sim::goodput::{self, TableSpec};
use synack::sim::{TransferConfig, transfer};
use synack::stack::MIN_MTU;
use synack::tcp::Config;
use synack::tcp::congestion::Algorithm;
use synack::tcp::connection::Info;
use synack::trace::render::Renderer;
use synack::trace::{Direction, PcapSink, TraceEvent, TraceSink};

use crate::trace_arg::TraceArg;
use crate::{plot, units};
use synack::trace::samples::{self, Sample};

/// Run one transfer on the simulated network, in virtual time, and report what TCP did.
#[derive(Debug, Parser)]
#[command(
    after_long_help = "Examples:\n  synack sim --bytes 10MiB --rtt 50ms --loss 1% --rate 100mbit --queue 64KiB\n  \
                       synack sim --bytes 4MiB --loss 1% --samples 50ms\n  \
                       synack sim --goodput-table --quick\n\n\
                       Output: the trace, the report and the table on standard output; errors, \
                       and the wall time of --goodput-table, on standard error."
)]
pub struct Args {
    /// How much the client sends.
    #[arg(long, default_value = "10MiB", value_parser = units::size, allow_hyphen_values = true)]
    pub bytes: u64,
    /// Round-trip time (each direction gets half).
    #[arg(long, default_value = "20ms", value_parser = units::duration, allow_hyphen_values = true)]
    pub rtt: Duration,
    /// Random jitter added to each packet's delay, up to this much (never reorders by itself).
    #[arg(long, default_value = "0", value_parser = units::duration, allow_hyphen_values = true)]
    pub jitter: Duration,
    /// Random loss (Bernoulli), e.g. 1%.
    #[arg(long, default_value = "0", value_parser = units::fraction, allow_hyphen_values = true)]
    pub loss: f64,
    /// Burst loss (Gilbert-Elliott): probability of entering a loss burst per packet.
    #[arg(long, value_parser = units::fraction, allow_hyphen_values = true)]
    pub burst: Option<f64>,
    /// Mean length of a loss burst in packets (with --burst), at least 1.
    #[arg(long, default_value_t = 4.0, allow_hyphen_values = true, value_parser = burst_len)]
    pub burst_len: f64,
    /// Probability that a packet is held back so later ones overtake it.
    #[arg(long, default_value = "0", value_parser = units::fraction, allow_hyphen_values = true)]
    pub reorder: f64,
    /// Probability that a packet arrives twice.
    #[arg(long, default_value = "0", value_parser = units::fraction, allow_hyphen_values = true)]
    pub duplicate: f64,
    /// Probability that one bit of a packet flips (checksums must catch it).
    #[arg(long, default_value = "0", value_parser = units::fraction, allow_hyphen_values = true)]
    pub corrupt: f64,
    /// Bottleneck bandwidth, e.g. 100mbit (default: unlimited).
    #[arg(long, value_parser = units::rate, allow_hyphen_values = true)]
    pub rate: Option<u64>,
    /// Drop-tail queue limit at the bottleneck, e.g. 64KiB.
    #[arg(long, value_parser = units::size, allow_hyphen_values = true)]
    pub queue: Option<u64>,
    /// Link MTU: the largest IP packet, 128 to 65535 bytes, at least 1280 with --ipv6 (RFC 8200
    /// §5); synack announces MSS = MTU - 40, or MTU - 60 with --ipv6.
    #[arg(long, default_value_t = 1500, allow_hyphen_values = true,
          value_parser = clap::value_parser!(u16).range(i64::from(MIN_MTU)..))]
    pub mtu: u16,
    /// Impair only the data's direction (client to server), as `tc netem` on the sender's
    /// egress (and `synack relay --a-to-b`, `--impair-out`) does: the ACKs get the delay only.
    #[arg(long)]
    pub one_way: bool,
    /// Congestion control of both sides: cubic (Linux's default), reno or bbr.
    #[arg(long, value_name = "ALG", default_value = "cubic")]
    pub cc: Algorithm,
    /// Send and receive buffer of each side.
    #[arg(long, default_value = "1MiB", value_parser = units::size, allow_hyphen_values = true)]
    pub buffer: u64,
    /// Seed of the link's randomness and the stacks' secrets: the same seed and flags give the
    /// same run, segment for segment.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How much of the conversation to print before the report, in Wireshark notation.
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = TraceArg::None)]
    pub trace: TraceArg,
    /// Write the capture (the client's interface: every packet once, virtual timestamps) to
    /// this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// Transfer over IPv6 (fd00:5ac::1 to fd00:5ac::2): MSS = MTU - 60.
    #[arg(long)]
    pub ipv6: bool,
    /// Print the sender's cwnd, ssthresh, RTT estimates, pipe and loss counts this often
    /// (virtual time), e.g. 100ms.
    #[arg(long, value_parser = units::duration, allow_hyphen_values = true)]
    pub samples: Option<Duration>,
    /// With --samples: also write them to this CSV file, for `synack plot --kind cwnd|rtt`
    /// (columns: time_s,cwnd,ssthresh,srtt_ms,rttvar_ms,rto_ms,pipe,in_flight,lost,
    /// retransmits,ca_state,mss).
    #[arg(long, value_name = "FILE", requires = "samples")]
    pub samples_out: Option<String>,
    /// Draw the ladder diagram of the transfer to this SVG file (the middle folded).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<String>,
    /// Draw the transfer's time–sequence graph (as tcptrace does: data segments,
    /// retransmissions, ACK and window lines, SACK blocks) as the sender sees it, to this SVG.
    #[arg(long, value_name = "FILE")]
    pub time_seq: Option<String>,
    /// Instead of one transfer: the goodput table (100 Mbit/s bottleneck, 1-BDP queue, RTT
    /// 10/50/200 ms × loss 0/0.1/1/3 % × reordering 0/5 % × congestion control × SACK on/off,
    /// 20 s virtual each), as Markdown; `cargo test` compares it with
    /// crates/synack/tests/snapshots/goodput-table.md. Ignores the other flags.
    #[arg(long)]
    pub goodput_table: bool,
    /// With --goodput-table: a scale model of the grid at 10 Mbit/s (a tenth of the packets).
    #[arg(long, requires = "goodput_table")]
    pub quick: bool,
}

/// `--burst-len`: a mean of at least one packet.
fn burst_len(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v >= 1.0 && v.is_finite() => Ok(v),
        _ => Err(format!(
            "expected a mean burst length of at least 1 packet, got {s:?}"
        )),
    }
}

/// `--goodput-table`: every run, then the Markdown table on stdout.
fn goodput_table(quick: bool) -> ExitCode {
    let spec = if quick {
        TableSpec::quick()
    } else {
        TableSpec::full()
    };
    let wall = std::time::Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows = goodput::goodput_table(&spec, threads);
    out!("{}", goodput::render_markdown(&spec, &rows));
    eprintln!(
        "{} runs in {:.1} s wall",
        rows.len(),
        wall.elapsed().as_secs_f64()
    );
    if rows.iter().any(|r| r.result.is_err()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--pcap`: the client's packets, as the demo writes them. Returns how many were written.
fn write_pcap(path: &str, events: &[TraceEvent]) -> std::io::Result<u64> {
    let file = std::fs::File::create(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot create {path}: {e}")))?;
    let mut sink = PcapSink::new(std::io::BufWriter::new(file))?.only_node("client");
    for e in events {
        sink.event(e);
    }
    let n = sink.packets();
    sink.finish()?;
    Ok(n)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn segments(bytes: u32, mss: u32) -> String {
    format!("{}", bytes / mss.max(1))
}

/// One connection's TCP_INFO-like statistics on one line.
fn info_line(i: &Info) -> String {
    let ssthresh = if i.ssthresh == u32::MAX {
        "inf".to_string()
    } else {
        format!("{} seg", i.ssthresh_segments())
    };
    format!(
        "{} cwnd {} seg ({} B), ssthresh {ssthresh}, srtt {}, rttvar {}, rto {}, pipe {} B, \
         unacked {}, sacked {}, lost {}, retrans {} in flight / {} total, ca {}, mss {}",
        i.state.map_or("-", |s| s.name()),
        i.cwnd_segments(),
        i.cwnd,
        i.srtt.map_or("-".to_string(), ms),
        ms(i.rttvar),
        ms(i.rto),
        i.pipe,
        i.unacked,
        i.sacked,
        i.lost,
        i.retrans,
        i.retransmits,
        i.ca_state.name(),
        i.snd_mss
    )
}

/// `--samples`: one row per sample.
fn print_samples(samples: &[(Duration, Info)]) {
    outln!(
        "{:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6} {:>5} {:>7} {:>8}",
        "time",
        "cwnd",
        "ssthresh",
        "srtt",
        "rttvar",
        "rto",
        "pipe B",
        "unacked",
        "sacked",
        "lost",
        "rtx tot",
        "ca"
    );
    for (t, i) in samples {
        let ssthresh = if i.ssthresh == u32::MAX {
            "inf".to_string()
        } else {
            segments(i.ssthresh, i.snd_mss)
        };
        outln!(
            "{:>8.3}s {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6} {:>5} {:>7} {:>8}",
            t.as_secs_f64(),
            i.cwnd_segments(),
            ssthresh,
            i.srtt.map_or("-".to_string(), ms),
            ms(i.rttvar),
            ms(i.rto),
            i.pipe,
            i.unacked,
            i.sacked,
            i.lost,
            i.retransmits,
            i.ca_state.name()
        );
    }
}

/// `--svg` and `--samples-out`.
fn write_pictures(args: &Args, r: &synack::sim::TransferReport) -> std::io::Result<()> {
    if let Some(path) = &args.svg {
        let title = plot::run_title("sim", args.bytes, args.rtt, args.loss);
        plot::write_ladder(&r.trace, path, &title, |_| {}, false)?;
    }
    if let Some(path) = &args.time_seq {
        let flows = plot::flows_seen_by(&r.trace, "client");
        let f = flows
            .first()
            .ok_or_else(|| std::io::Error::other("--time-seq: the trace has no TCP segments"))?;
        let title = format!(
            "{}: time\u{2013}sequence at the sender",
            plot::run_title("sim", args.bytes, args.rtt, args.loss)
        );
        let svg = synack::trace::plot::time_sequence(f, &title)
            .map_err(|e| std::io::Error::other(format!("--time-seq: {e}")))?;
        std::fs::write(path, svg)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {path}: {e}")))?;
        outln!("wrote {path} (time\u{2013}sequence graph)");
    }
    if let Some(path) = &args.samples_out {
        let rows: Vec<Sample> = r
            .samples
            .iter()
            .map(|(t, i)| Sample::from_info(*t, i))
            .collect();
        std::fs::write(path, samples::to_csv(&rows))
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {path}: {e}")))?;
        outln!(
            "wrote {path} ({} samples; synack plot --kind cwnd {path})",
            rows.len()
        );
    }
    Ok(())
}

pub fn run(args: Args) -> ExitCode {
    if args.goodput_table {
        return goodput_table(args.quick);
    }
    let mut link = LinkConfig::default()
        .with_delay(args.rtt / 2)
        .with_jitter(args.jitter)
        .with_reorder(args.reorder)
        .with_duplicate(args.duplicate)
        .with_corrupt(args.corrupt);
    if let Some(p) = args.burst {
        let p_bad_to_good = 1.0 / args.burst_len;
        link = link.with_loss(Loss::GilbertElliott {
            p_good_to_bad: p,
            p_bad_to_good,
            loss_good: args.loss,
            loss_bad: 1.0,
        });
    } else if args.loss > 0.0 {
        link = link.with_loss(Loss::Bernoulli(args.loss));
    }
    if let Some(r) = args.rate {
        link = link.with_bandwidth(r);
    }
    if let Some(q) = args.queue {
        link = link.with_queue_limit(q as usize);
    }
    let buffer = args.buffer.clamp(4096, 1 << 30) as usize;
    let ack_link = args
        .one_way
        .then(|| LinkConfig::default().with_delay(args.rtt / 2));
    let cfg = TransferConfig {
        bytes: args.bytes,
        link,
        ack_link,
        seed: args.seed,
        tcp: Config {
            send_buffer: buffer,
            recv_buffer: buffer,
            congestion: args.cc,
            ..Config::default()
        },
        mtu: args.mtu,
        trace: args.trace.is_on()
            || args.pcap.is_some()
            || args.svg.is_some()
            || args.time_seq.is_some(),
        sample_every: args.samples,
        ipv6: args.ipv6,
        ..TransferConfig::default()
    };
    let wall = std::time::Instant::now();
    let r = match transfer(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = write_pictures(&args, &r) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if args.trace.is_on() {
        let mut renderer = Renderer::new(args.trace.into());
        renderer
            .name("198.18.0.1".parse().expect("literal address"), "client")
            .name("198.18.0.2".parse().expect("literal address"), "server")
            .name(synack::sim::CLIENT_V6.into(), "client")
            .name(synack::sim::SERVER_V6.into(), "server")
            .only(Direction::Out);
        for line in renderer.render(&r.trace) {
            outln!("{line}");
        }
    }
    if let Some(path) = &args.pcap {
        match write_pcap(path, &r.trace) {
            Ok(n) => outln!("wrote {path} ({n} packets; open it with wireshark or tshark -r)"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let c = &r.client;
    outln!(
        "sim: {} in {:.3} s virtual ({:.3} s wall), goodput {}",
        units::human_bytes(r.bytes),
        r.elapsed.as_secs_f64(),
        wall.elapsed().as_secs_f64(),
        units::human_rate(r.goodput_bps)
    );
    outln!(
        "sender: {} segments, {} retransmitted ({} fast, {} timeouts), srtt {}, rto {} ms, cwnd {} B, ssthresh {}",
        c.out_segs,
        c.retrans_segs,
        c.fast_retrans,
        c.timeouts,
        r.info.srtt.map_or("-".to_string(), |d| format!(
            "{:.1} ms",
            d.as_secs_f64() * 1e3
        )),
        r.info.rto.as_millis(),
        r.info.cwnd,
        if r.info.ssthresh == u32::MAX {
            "inf".to_string()
        } else {
            format!("{} B", r.info.ssthresh)
        }
    );
    let l = &r.link;
    outln!(
        "link: {} sent, {} delivered, {} lost, {} queue drops, {} duplicated, {} reordered, {} corrupted",
        l.sent,
        l.delivered,
        l.dropped_loss,
        l.dropped_queue,
        l.duplicated,
        l.reordered,
        l.corrupted
    );
    outln!("verified: every byte arrived once, in order");
    if !r.samples.is_empty() {
        outln!(
            "\nclient (sender) every {}:",
            ms(args.samples.unwrap_or_default())
        );
        print_samples(&r.samples);
    }
    outln!("\nper connection (cwnd and ssthresh in segments of mss; counts in segments):");
    outln!("client (sender, at the end):       {}", info_line(&r.info));
    outln!(
        "server (receiver, last byte read): {}",
        info_line(&r.server_info)
    );
    outln!("\nclient counters:\n{}", r.client);
    outln!("server counters:\n{}", r.server);
    ExitCode::SUCCESS
}
