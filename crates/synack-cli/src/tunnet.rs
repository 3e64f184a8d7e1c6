//! What `synack serve`, `synack connect` and `synack lab` share: the TUN flags, building a
//! runtime with one host on a TUN device (optionally behind the impairment models), and the
//! trace sink that prints lines and writes a capture.

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use clap::Args;
use synack::device::impair::{Impaired, LinkConfig, Loss};
use synack::device::tun::Tun;
use synack::net::{Host, Runtime};
use synack::stack::{IPV6_MIN_MTU, IpCidr, MIN_MTU, mtu_too_small_for_ipv6};
use synack::tcp::Config;
use synack::tcp::congestion::Algorithm;
use synack::trace::pcap::PcapSink;
use synack::trace::render::Renderer;
use synack::trace::{TraceEvent, TraceSink};

use crate::plot::{self, Recorder};
use crate::trace_arg::TraceArg;
use crate::units;

/// The side synack does not trace is the kernel's (the other end of a TUN device).
fn name_kernel_lane(l: &mut synack::trace::ladder::Ladder) {
    for lane in [&mut l.left, &mut l.right] {
        if lane.name == "peer" {
            lane.name = "kernel".into();
        }
    }
}

/// What each stream holds between the application and its connection, each way (see
/// [`Builder::stream_buffers`](synack::net::Builder::stream_buffers)): 256 KiB, as large as
/// the reads and writes of `serve` (and most bulk copies), so one turn of the driver moves
/// a whole read or write, with fewer hand-offs between the two threads per megabyte. The
/// cost: a stream that once carried bulk keeps up to twice each (1 MiB per connection,
/// idle or not) until it closes, on top of the connection's own buffers.
const STREAM_BUFFER: usize = 256 * 1024;

/// The flags of every command that puts synack on a TUN device.
#[derive(Debug, Clone, Args)]
pub struct TunArgs {
    /// The TUN interface to create (or attach to, if it exists and is persistent).
    #[arg(long, value_name = "NAME")]
    pub tun: String,
    /// synack's own address and prefix on the TUN link, IPv4 or IPv6 (`fd00::2/64`); a
    /// comma-separated pair (or the flag twice) makes a dual-stack host.
    #[arg(
        long,
        value_name = "CIDR",
        default_value = "198.18.0.2/24",
        value_delimiter = ','
    )]
    pub addr: Vec<String>,
    /// Also give the kernel's side of the interface this address (and the on-link route),
    /// IPv4 or IPv6, one per family. Without it, configure the interface yourself:
    /// `ip addr add 198.18.0.1/24 dev NAME`.
    #[arg(long, value_name = "CIDR", value_delimiter = ',')]
    pub kernel_addr: Vec<String>,
    /// Create the interface inside this network namespace (a name from `ip netns`, or a path).
    #[arg(long, value_name = "NS")]
    pub netns: Option<String>,
    /// Interface MTU, 128 to 65535 bytes, at least 1280 when either side has an IPv6 address
    /// (RFC 8200 §5); synack announces MSS = MTU - 40 over IPv4, MTU - 60 over IPv6.
    #[arg(long, default_value_t = 1500, allow_hyphen_values = true,
          value_parser = clap::value_parser!(u16).range(i64::from(MIN_MTU)..))]
    pub mtu: u16,
    /// Move one packet per read and write instead of TCP super-segments of up to 64 KiB
    /// (the interface's vnet_hdr offloads: TSO from the kernel, coalescing towards it).
    /// Captures then show wire-sized packets with full checksums.
    #[arg(long)]
    pub no_offload: bool,
    /// Send and receive buffer of each connection.
    #[arg(long, default_value = "4MiB", value_parser = units::size, allow_hyphen_values = true)]
    pub buffer: u64,
    /// Congestion control of the connections: cubic (Linux's default), reno or bbr (what
    /// `sysctl net.ipv4.tcp_congestion_control` chooses for the kernel).
    #[arg(long, value_name = "ALG", default_value = "cubic")]
    pub cc: Algorithm,
    /// Write every packet synack sends and receives to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// How much of the conversation to print, in Wireshark notation.
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = TraceArg::None)]
    pub trace: TraceArg,
    /// Impair the packets synack sends, with SimNet's models: comma-separated KEY=VALUE from
    /// loss (e.g. 1%), delay (20ms), jitter (5ms), reorder (10%, held back 10 ms), duplicate
    /// (1%), corrupt (0.1%), rate (100mbit), queue (the drop-tail limit behind the rate, e.g.
    /// 1500KB). Example: --impair-out loss=1%,delay=10ms
    #[arg(long, value_name = "SPEC", value_parser = impairment)]
    pub impair_out: Option<LinkConfig>,
    /// Impair the packets the kernel sends before synack sees them (same SPEC as
    /// --impair-out); `tc qdisc add dev NAME root netem ...` does the same inside the kernel.
    #[arg(long, value_name = "SPEC", value_parser = impairment)]
    pub impair_in: Option<LinkConfig>,
    /// Seed of the impairments' randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Draw the ladder diagram of the first connection to this SVG file when it is over (or
    /// on exit). The other timeline is the kernel's: synack sees each packet once, so the
    /// kernel's send and receive times are estimated from the handshake (the footnote says by
    /// how much).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<String>,
}

/// Parses `loss=1%,delay=20ms,...` (see [`TunArgs::impair_out`]).
pub fn impairment(spec: &str) -> Result<LinkConfig, String> {
    let mut cfg = LinkConfig::default();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, got {item:?} (e.g. loss=1%)"))?;
        match key.trim() {
            "loss" => {
                let p = units::fraction(value)?;
                cfg = cfg.with_loss(if p > 0.0 {
                    Loss::Bernoulli(p)
                } else {
                    Loss::None
                });
            }
            "delay" => cfg = cfg.with_delay(units::duration(value)?),
            "jitter" => cfg = cfg.with_jitter(units::duration(value)?),
            "reorder" => cfg = cfg.with_reorder(units::fraction(value)?),
            "duplicate" => cfg = cfg.with_duplicate(units::fraction(value)?),
            "corrupt" => cfg = cfg.with_corrupt(units::fraction(value)?),
            "rate" => cfg = cfg.with_bandwidth(units::rate(value)?),
            "queue" => {
                let bytes = units::size(value)?;
                cfg = cfg.with_queue_limit(usize::try_from(bytes).unwrap_or(usize::MAX));
            }
            other => {
                return Err(format!(
                    "unknown impairment {other:?} (use loss, delay, jitter, reorder, duplicate, \
                     corrupt, rate, queue)"
                ));
            }
        }
    }
    Ok(cfg)
}

impl TunArgs {
    /// synack's addresses (`--addr`), at least one.
    pub fn cidrs(&self) -> io::Result<Vec<IpCidr>> {
        let v: Vec<IpCidr> = self
            .addr
            .iter()
            .map(|a| a.trim().parse())
            .collect::<io::Result<_>>()?;
        if v.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--addr needs an address, like 198.18.0.2/24 or fd00::2/64",
            ));
        }
        Ok(v)
    }

    /// The kernel side's addresses (`--kernel-addr`).
    pub fn kernel_cidrs(&self) -> io::Result<Vec<IpCidr>> {
        self.kernel_addr.iter().map(|a| a.trim().parse()).collect()
    }

    /// Where a server on these addresses listens: `[::]` (both families, IPv4 peers shown
    /// IPv4-mapped) when synack has an IPv6 address, else its IPv4 address.
    pub fn listen_ip(&self) -> io::Result<IpAddr> {
        let cidrs = self.cidrs()?;
        Ok(if cidrs.iter().any(IpCidr::is_ipv6) {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            cidrs[0].addr()
        })
    }
}

/// Which standard stream the trace lines go to: standard error when standard output carries
/// data (`synack connect`), standard output otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinesTo {
    Stdout,
    Stderr,
}

impl LinesTo {
    fn print(self, line: &str) {
        match self {
            LinesTo::Stdout => outln!("{line}"),
            LinesTo::Stderr => eprintln!("{line}"),
        }
    }
}

/// Prints lines and writes the capture; shared between the runtime thread and the command.
pub struct Sink {
    renderer: Option<Renderer>,
    lines_to: LinesTo,
    pcap: Option<(String, PcapSink<BufWriter<File>>)>,
    ladder: Option<(String, Recorder)>,
}

impl Sink {
    fn event(&mut self, e: &TraceEvent) {
        if let Some((_, p)) = self.pcap.as_mut() {
            p.event(e);
        }
        if let Some((_, rec)) = self.ladder.as_mut() {
            rec.event(e);
        }
        if let Some(r) = self.renderer.as_mut() {
            for line in r.push(e) {
                self.lines_to.print(&line);
            }
        }
    }

    /// Flushes the rendered lines and the capture; says where the capture went.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(r) = self.renderer.as_mut() {
            for line in r.finish() {
                self.lines_to.print(&line);
            }
        }
        if let Some((path, p)) = self.pcap.take() {
            let n = p.packets();
            p.finish()?;
            eprintln!("wrote {path} ({n} packets; open it with wireshark or tshark -r)");
        }
        if let Some((path, rec)) = self.ladder.take() {
            let title = "synack on a TUN device and the Linux kernel";
            plot::write_ladder(&rec.events, &path, title, name_kernel_lane, true)?;
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

/// A runtime with one host (`synack`) on a TUN device; with several queues, one such runtime
/// per queue (a shard: same addresses, the connections the kernel puts on its queue).
pub struct Started {
    pub rt: Runtime,
    pub host: Host,
    pub sink: Option<Arc<Mutex<Sink>>>,
    pub tun_name: String,
    /// The runtimes and hosts of queues 1, 2, ... (queue 0's are `rt` and `host`).
    pub shards: Vec<(Runtime, Host)>,
}

impl Started {
    /// Every queue's host, queue 0 first.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        std::iter::once(&self.host).chain(self.shards.iter().map(|(_, h)| h))
    }

    /// Stops the runtimes and flushes the trace and capture.
    pub fn finish(self) -> io::Result<()> {
        drop(self.shards);
        drop(self.rt);
        if let Some(s) = self.sink {
            s.lock()
                .map_err(|_| io::Error::other("trace sink poisoned"))?
                .finish()?;
        }
        Ok(())
    }
}

/// `--addr` and `--kernel-addr` must be two hosts on one link: different addresses, and the
/// kernel's inside the prefix of one of synack's addresses of its family, which is inside the
/// kernel's prefix too (else neither side routes to the other through the interface).
pub fn check_one_link(synack: &[IpCidr], kernel: IpCidr) -> io::Result<()> {
    if synack.iter().any(|c| c.addr() == kernel.addr()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--kernel-addr must differ from --addr (the kernel and synack are two hosts)",
        ));
    }
    let family: Vec<&IpCidr> = synack
        .iter()
        .filter(|c| c.is_ipv6() == kernel.is_ipv6())
        .collect();
    if family.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--kernel-addr {kernel} is IPv{} but --addr has no address of that family (give \
                 synack one too, e.g. --addr 198.18.0.2/24,fd00:5ac::2/64)",
                if kernel.is_ipv6() { 6 } else { 4 }
            ),
        ));
    }
    if !family
        .iter()
        .any(|c| c.contains(kernel.addr()) && kernel.contains(c.addr()))
    {
        let shown: Vec<String> = family.iter().map(|c| c.to_string()).collect();
        let example = if kernel.is_ipv6() {
            "--addr fd00:5ac::2/64 --kernel-addr fd00:5ac::1/64"
        } else {
            "--addr 198.18.0.2/24 --kernel-addr 198.18.0.1/24"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--addr {} and --kernel-addr {kernel} are not in one subnet: each side must reach \
                 the other on the link (e.g. {example})",
                shown.join(",")
            ),
        ));
    }
    Ok(())
}

/// Opens the TUN device and starts a runtime on it; trace lines go to `lines_to`.
pub fn start(args: &TunArgs, tcp: Config, lines_to: LinesTo) -> io::Result<Started> {
    start_queues(args, tcp, lines_to, 1)
}

/// [`start`] with `queues` queues (more than 1: a multi-queue interface and one runtime,
/// on its own thread, per queue; see `Started::shards`).
pub fn start_queues(
    args: &TunArgs,
    tcp: Config,
    lines_to: LinesTo,
    queues: usize,
) -> io::Result<Started> {
    let cidrs = args.cidrs()?;
    let kernel = args.kernel_cidrs()?;
    if args.mtu < IPV6_MIN_MTU && cidrs.iter().chain(&kernel).any(IpCidr::is_ipv6) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            mtu_too_small_for_ipv6(args.mtu),
        ));
    }
    let mut b = Tun::builder(&args.tun)
        .mtu(args.mtu)
        .offload(!args.no_offload);
    for &k in &kernel {
        check_one_link(&cidrs, k)?;
        b = b.kernel_addr(k);
    }
    if let Some(ns) = &args.netns {
        b = b.netns(ns);
    }
    let tuns = if queues == 1 {
        vec![b.open()?]
    } else {
        b.open_queues(queues)?
    };
    let tun_name = tuns
        .first()
        .map_or_else(|| args.tun.clone(), |t| t.name().to_string());

    let sink = if args.pcap.is_some() || args.trace.is_on() || args.svg.is_some() {
        let renderer = args.trace.is_on().then(|| {
            let mut r = Renderer::new(args.trace.into());
            for c in &cidrs {
                r.name(c.addr(), "synack");
            }
            for k in &kernel {
                r.name(k.addr(), "kernel");
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
        let ladder = args.svg.clone().map(|p| (p, Recorder::default()));
        Some(Arc::new(Mutex::new(Sink {
            renderer,
            lines_to,
            pcap,
            ladder,
        })))
    } else {
        None
    };

    let buffer = args.buffer.clamp(4096, 1 << 30) as usize;
    let tcp = Config {
        send_buffer: buffer,
        recv_buffer: buffer,
        congestion: args.cc,
        ..tcp
    };
    let sharded = tuns.len() > 1;
    let mut shards = Vec::with_capacity(tuns.len());
    for (k, tun) in tuns.into_iter().enumerate() {
        let mut rb = Runtime::builder()
            .host("synack", &args.addr.join(","))
            .tcp(tcp.clone())
            .mtu(args.mtu)
            .stream_buffers(STREAM_BUFFER, STREAM_BUFFER);
        if sharded {
            rb = rb.shard();
        }
        if let Some(s) = &sink {
            rb = rb.trace(SharedSink(s.clone()));
        }
        rb = match (args.impair_out, args.impair_in) {
            (None, None) => rb.device(tun),
            (out, inc) => rb.device(
                Impaired::new(tun, args.seed.wrapping_add(k as u64))
                    .outgoing(out.unwrap_or_default())
                    .incoming(inc.unwrap_or_default()),
            ),
        };
        let rt = rb.build()?;
        let host = rt
            .host("synack")
            .ok_or_else(|| io::Error::other("the runtime lost its host"))?;
        shards.push((rt, host));
    }
    let mut shards = shards.into_iter();
    let (rt, host) = shards
        .next()
        .ok_or_else(|| io::Error::other("no TUN queue opened"))?;
    Ok(Started {
        rt,
        host,
        sink,
        tun_name,
        shards: shards.collect(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use synack::time::Duration;

    #[test]
    fn impairment_specs_parse_into_the_link_model() {
        let c = impairment("delay=50ms, loss=1%,rate=100mbit,queue=1500KB").unwrap();
        assert_eq!(c.delay, Duration::from_millis(50));
        assert_eq!(c.loss, Loss::Bernoulli(0.01));
        assert_eq!(c.bandwidth_bps, Some(100_000_000));
        assert_eq!(c.queue_limit_bytes, Some(1_500_000));
        let c = impairment("jitter=5ms,reorder=10%,duplicate=1%,corrupt=0.1%,loss=0%").unwrap();
        assert_eq!(c.jitter, Duration::from_millis(5));
        assert_eq!((c.reorder, c.duplicate, c.corrupt), (0.1, 0.01, 0.001));
        assert_eq!(c.loss, Loss::None);
        assert_eq!(impairment("").unwrap(), LinkConfig::default());
        for bad in ["loss", "speed=1", "queue=lots", "delay=-1ms"] {
            assert!(impairment(bad).is_err(), "{bad}");
        }
    }
}
