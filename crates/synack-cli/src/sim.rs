//! `synack sim`: one bulk transfer on SimNet in virtual time, every impairment a flag. The
//! same flags and seed give the same run, segment for segment. `--goodput-table` runs the
//! loss-recovery / congestion-control table of [`synack::sim::goodput`] instead.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use synack::device::sim::{LinkConfig, Loss};
use synack::sim::goodput::{self, TableSpec};
use synack::sim::{TransferConfig, transfer};
use synack::tcp::Config;
use synack::tcp::connection::Info;
use synack::trace::render::Renderer;
use synack::trace::{Direction, TraceLevel};

use crate::units;

/// Run one transfer on the simulated network, in virtual time, and report what TCP did.
#[derive(Debug, Parser)]
#[command(
    after_long_help = "Examples:\n  synack sim --bytes 10MiB --rtt 50ms --loss 1% --rate 100mbit --queue 64KiB\n  \
                       synack sim --bytes 4MiB --loss 1% --samples 50ms\n  \
                       synack sim --goodput-table --quick"
)]
pub struct Args {
    /// How much the client sends.
    #[arg(long, default_value = "10MiB", value_parser = units::size)]
    pub bytes: u64,
    /// Round-trip time (each direction gets half).
    #[arg(long, default_value = "20ms", value_parser = units::duration)]
    pub rtt: Duration,
    /// Random jitter added to each packet's delay, up to this much (never reorders by itself).
    #[arg(long, default_value = "0", value_parser = units::duration)]
    pub jitter: Duration,
    /// Random loss (Bernoulli), e.g. 1%.
    #[arg(long, default_value = "0", value_parser = units::fraction)]
    pub loss: f64,
    /// Burst loss (Gilbert-Elliott): probability of entering a loss burst per packet.
    #[arg(long, value_parser = units::fraction)]
    pub burst: Option<f64>,
    /// Mean length of a loss burst in packets (with --burst).
    #[arg(long, default_value_t = 4.0)]
    pub burst_len: f64,
    /// Probability that a packet is held back so later ones overtake it.
    #[arg(long, default_value = "0", value_parser = units::fraction)]
    pub reorder: f64,
    /// Probability that a packet arrives twice.
    #[arg(long, default_value = "0", value_parser = units::fraction)]
    pub duplicate: f64,
    /// Probability that one bit of a packet flips (checksums must catch it).
    #[arg(long, default_value = "0", value_parser = units::fraction)]
    pub corrupt: f64,
    /// Bottleneck bandwidth, e.g. 100mbit (default: unlimited).
    #[arg(long, value_parser = units::rate)]
    pub rate: Option<u64>,
    /// Drop-tail queue limit at the bottleneck, e.g. 64KiB.
    #[arg(long, value_parser = units::size)]
    pub queue: Option<u64>,
    /// Link MTU.
    #[arg(long, default_value_t = 1500)]
    pub mtu: u16,
    /// Send and receive buffer of each side.
    #[arg(long, default_value = "1MiB", value_parser = units::size)]
    pub buffer: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print every segment (Wireshark notation) as well.
    #[arg(long)]
    pub trace: bool,
    /// Transfer over IPv6 (fd00:5ac::1 to fd00:5ac::2): MSS = MTU - 60.
    #[arg(long)]
    pub ipv6: bool,
    /// Print the sender's cwnd, ssthresh, RTT estimates, pipe and loss counts this often
    /// (virtual time), e.g. 100ms.
    #[arg(long, value_parser = units::duration)]
    pub samples: Option<Duration>,
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
    print!("{}", goodput::render_markdown(&spec, &rows));
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
    println!(
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
        println!(
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
        let p_bad_to_good = 1.0 / args.burst_len.max(1.0);
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
    let cfg = TransferConfig {
        bytes: args.bytes,
        link,
        seed: args.seed,
        tcp: Config {
            send_buffer: buffer,
            recv_buffer: buffer,
            ..Config::default()
        },
        mtu: args.mtu,
        trace: args.trace,
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
    if args.trace {
        let mut renderer = Renderer::new(TraceLevel::All);
        renderer
            .name("198.18.0.1".parse().expect("literal address"), "client")
            .name("198.18.0.2".parse().expect("literal address"), "server")
            .name(synack::sim::CLIENT_V6.into(), "client")
            .name(synack::sim::SERVER_V6.into(), "server")
            .only(Direction::Out);
        for line in renderer.render(&r.trace) {
            println!("{line}");
        }
    }
    let c = &r.client;
    println!(
        "sim: {} in {:.3} s virtual ({:.3} s wall), goodput {}",
        units::human_bytes(r.bytes),
        r.elapsed.as_secs_f64(),
        wall.elapsed().as_secs_f64(),
        units::human_rate(r.goodput_bps)
    );
    println!(
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
    println!(
        "link: {} sent, {} delivered, {} lost, {} queue drops, {} duplicated, {} reordered, {} corrupted",
        l.sent,
        l.delivered,
        l.dropped_loss,
        l.dropped_queue,
        l.duplicated,
        l.reordered,
        l.corrupted
    );
    println!("verified: every byte arrived once, in order");
    if !r.samples.is_empty() {
        println!(
            "\nclient (sender) every {}:",
            ms(args.samples.unwrap_or_default())
        );
        print_samples(&r.samples);
    }
    println!("\nper connection (cwnd and ssthresh in segments of mss; counts in segments):");
    println!("client (sender, at the end):       {}", info_line(&r.info));
    println!(
        "server (receiver, last byte read): {}",
        info_line(&r.server_info)
    );
    println!("\nclient counters:\n{}", r.client);
    println!("server counters:\n{}", r.server);
    ExitCode::SUCCESS
}
