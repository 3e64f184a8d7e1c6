//! What `synack serve`, `synack connect` and `synack lab` share: the TUN flags, building a
//! runtime with one host on a TUN device (optionally behind the impairment models), and the
//! trace sink that prints lines and writes a capture.

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use synack::device::impair::{Impaired, LinkConfig, Loss};
use synack::device::tun::Tun;
use synack::net::{Host, Runtime};
use synack::stack::Ipv4Cidr;
use synack::tcp::Config;
use synack::trace::pcap::PcapSink;
use synack::trace::render::Renderer;
use synack::trace::{TraceEvent, TraceLevel, TraceSink};

use crate::units;

/// How much of the conversation to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceChoice {
    /// Every segment and state change.
    All,
    /// SYN, FIN and RST segments, state changes, drops and notes such as retransmissions.
    Handshake,
}

/// The flags of every command that puts synack on a TUN device.
#[derive(Debug, Clone, Args)]
pub struct TunArgs {
    /// The TUN interface to create (or attach to, if it exists and is persistent).
    #[arg(long, value_name = "NAME")]
    pub tun: String,
    /// synack's own address and prefix on the TUN link.
    #[arg(long, value_name = "CIDR", default_value = "198.18.0.2/24")]
    pub addr: String,
    /// Also give the kernel's side of the interface this address (and the on-link route).
    /// Without it, configure the interface yourself: `ip addr add 198.18.0.1/24 dev NAME`.
    #[arg(long, value_name = "CIDR")]
    pub kernel_addr: Option<String>,
    /// Create the interface inside this network namespace (a name from `ip netns`, or a path).
    #[arg(long, value_name = "NS")]
    pub netns: Option<String>,
    /// Interface MTU (synack announces MSS = MTU - 40).
    #[arg(long, default_value_t = 1500)]
    pub mtu: u16,
    /// Send and receive buffer of each connection.
    #[arg(long, default_value = "4MiB", value_parser = units::size)]
    pub buffer: u64,
    /// Write every packet synack sends and receives to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// Print the conversation in Wireshark notation (default: handshake and close only).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "handshake", value_name = "LEVEL")]
    pub trace: Option<TraceChoice>,
    /// Impair packets synack sends (the kernel's direction is `tc qdisc ... netem`'s job):
    /// random loss, e.g. 1%.
    #[arg(long, default_value = "0", value_parser = units::fraction)]
    pub loss: f64,
    /// Impair packets synack sends: extra one-way delay, e.g. 10ms.
    #[arg(long, default_value = "0", value_parser = units::duration)]
    pub delay: Duration,
    /// Impair packets synack sends: random extra delay up to this much (FIFO kept).
    #[arg(long, default_value = "0", value_parser = units::duration)]
    pub jitter: Duration,
    /// Impair packets synack sends: probability a packet is held back 10 ms (reordered).
    #[arg(long, default_value = "0", value_parser = units::fraction)]
    pub reorder: f64,
    /// Impair packets synack sends: probability a packet is sent twice.
    #[arg(long, default_value = "0", value_parser = units::fraction)]
    pub duplicate: f64,
    /// Seed of the impairments' randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl TunArgs {
    /// The impairment of our outgoing packets, if any flag asks for one.
    fn outgoing(&self) -> Option<LinkConfig> {
        let cfg = LinkConfig::default()
            .with_delay(self.delay)
            .with_jitter(self.jitter)
            .with_reorder(self.reorder)
            .with_duplicate(self.duplicate)
            .with_loss(if self.loss > 0.0 {
                Loss::Bernoulli(self.loss)
            } else {
                Loss::None
            });
        (cfg != LinkConfig::default()).then_some(cfg)
    }

    pub fn cidr(&self) -> io::Result<Ipv4Cidr> {
        self.addr.parse()
    }

    pub fn kernel_cidr(&self) -> io::Result<Option<Ipv4Cidr>> {
        self.kernel_addr.as_deref().map(str::parse).transpose()
    }
}

/// Prints lines and writes the capture; shared between the runtime thread and the command.
pub struct Sink {
    renderer: Option<Renderer>,
    pcap: Option<(String, PcapSink<BufWriter<File>>)>,
}

impl Sink {
    fn event(&mut self, e: &TraceEvent) {
        if let Some((_, p)) = self.pcap.as_mut() {
            p.event(e);
        }
        if let Some(r) = self.renderer.as_mut() {
            for line in r.push(e) {
                println!("{line}");
            }
        }
    }

    /// Flushes the rendered lines and the capture; says where the capture went.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(r) = self.renderer.as_mut() {
            for line in r.finish() {
                println!("{line}");
            }
        }
        if let Some((path, p)) = self.pcap.take() {
            let n = p.packets();
            p.finish()?;
            eprintln!("wrote {path} ({n} packets; open it with wireshark or tshark -r)");
        }
        Ok(())
    }
}

struct SharedSink(Arc<Mutex<Sink>>);

impl TraceSink for SharedSink {
    fn event(&mut self, e: &TraceEvent) {
        if let Ok(mut s) = self.0.lock() {
            s.event(e);
        }
    }
}

/// A runtime with one host (`synack`) on a TUN device.
pub struct Started {
    pub rt: Runtime,
    pub host: Host,
    pub sink: Option<Arc<Mutex<Sink>>>,
    pub tun_name: String,
}

impl Started {
    /// Stops the runtime and flushes the trace and capture.
    pub fn finish(self) -> io::Result<()> {
        drop(self.rt);
        if let Some(s) = self.sink {
            s.lock()
                .map_err(|_| io::Error::other("trace sink poisoned"))?
                .finish()?;
        }
        Ok(())
    }
}

/// Opens the TUN device and starts a runtime on it.
pub fn start(args: &TunArgs, tcp: Config) -> io::Result<Started> {
    let cidr = args.cidr()?;
    let kernel = args.kernel_cidr()?;
    let mut b = Tun::builder(&args.tun).mtu(args.mtu);
    if let Some(k) = kernel {
        if k.addr == cidr.addr {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--kernel-addr must differ from --addr (the kernel and synack are two hosts)",
            ));
        }
        b = b.kernel_addr(k);
    }
    if let Some(ns) = &args.netns {
        b = b.netns(ns);
    }
    let tun = b.open()?;
    let tun_name = tun.name().to_string();

    let sink = if args.pcap.is_some() || args.trace.is_some() {
        let renderer = args.trace.map(|t| {
            let mut r = Renderer::new(match t {
                TraceChoice::All => TraceLevel::All,
                TraceChoice::Handshake => TraceLevel::Handshake,
            });
            r.name(IpAddr::V4(cidr.addr), "synack");
            if let Some(k) = kernel {
                r.name(IpAddr::V4(k.addr), "kernel");
            }
            r
        });
        let pcap = match &args.pcap {
            Some(path) => {
                let f = File::create(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot create {path}: {e}")))?;
                Some((path.clone(), PcapSink::new(BufWriter::new(f))?))
            }
            None => None,
        };
        Some(Arc::new(Mutex::new(Sink { renderer, pcap })))
    } else {
        None
    };

    let buffer = args.buffer.clamp(4096, 1 << 30) as usize;
    let tcp = Config {
        send_buffer: buffer,
        recv_buffer: buffer,
        ..tcp
    };
    let mut rb = Runtime::builder()
        .host("synack", &args.addr)
        .tcp(tcp)
        .mtu(args.mtu);
    if let Some(s) = &sink {
        rb = rb.trace(SharedSink(s.clone()));
    }
    rb = match args.outgoing() {
        Some(cfg) => rb.device(Impaired::new(tun, args.seed).outgoing(cfg)),
        None => rb.device(tun),
    };
    let rt = rb.build()?;
    let host = rt
        .host("synack")
        .ok_or_else(|| io::Error::other("the runtime lost its host"))?;
    Ok(Started {
        rt,
        host,
        sink,
        tun_name,
    })
}

/// `12.3 MiB in 0.456 s (215 Mbit/s)`.
pub fn summary(bytes: u64, secs: f64) -> String {
    let secs = secs.max(1e-9);
    format!(
        "{} in {:.3} s ({})",
        units::human_bytes(bytes),
        secs,
        units::human_rate(bytes as f64 * 8.0 / secs)
    )
}
