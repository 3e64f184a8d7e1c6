//! `synack demo`: two hosts in one process, a client and a server written against
//! `synack::net` exactly as an application would be, over an in-memory link. Shows the
//! handshake and the close segment by segment, summarises the bulk transfer, verifies it by
//! SHA-256, and writes a pcap.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use sha2::{Digest, Sha256};
use synack::device::sim::{LinkConfig, Loss};
use synack::net::{Host, Runtime, Shutdown, TcpListener, TcpStream};
use synack::tcp::{Config, Counters, SynCookies};
use synack::trace::pcap::PcapSink;
use synack::trace::render::Renderer;
use synack::trace::{Direction, TraceEvent, TraceLevel, TraceSink};

use crate::units;

/// How much of the conversation to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceChoice {
    /// Every segment and state change.
    All,
    /// SYN, FIN and RST segments, state changes, drops and notes such as retransmissions.
    Handshake,
    /// Only the summary.
    None,
}

/// Run a client and a server over an in-memory link and watch TCP work.
#[derive(Debug, Parser)]
#[command(
    after_long_help = "Example: synack demo --bytes 4MiB --rtt 50ms --loss 1% --trace handshake"
)]
pub struct Args {
    /// How much the client sends (e.g. 1MiB, 64KiB, 100000).
    #[arg(long, default_value = "1MiB", value_parser = units::size)]
    pub bytes: u64,
    /// Round-trip time of the link (each direction gets half).
    #[arg(long, default_value = "20ms", value_parser = units::duration)]
    pub rtt: Duration,
    /// Random packet loss on the link, each direction (e.g. 1% or 0.01).
    #[arg(long, default_value = "0", value_parser = units::fraction)]
    pub loss: f64,
    /// Seed for the link's randomness and the stacks' secrets: same seed, same ports and ISNs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the capture (the client's interface; every packet once).
    #[arg(long, default_value = "demo.pcap")]
    pub pcap: String,
    /// Do not write a capture.
    #[arg(long)]
    pub no_pcap: bool,
    /// What to print of the conversation.
    #[arg(long, value_enum, default_value = "handshake")]
    pub trace: TraceChoice,
    /// Print both hosts' counters (nstat names) at the end.
    #[arg(long)]
    pub stats: bool,
    /// SYN cookies on the server, as Linux's tcp_syncookies: 0 never, 1 when the SYN queue is
    /// full, 2 always (the trace then notes the cookie sent and the cookie accepted).
    #[arg(long, default_value = "1", value_parser = syncookies)]
    pub syncookies: SynCookies,
    /// Talk IPv6: client fd00:5ac::1, server fd00:5ac::2 (/64), MSS 1440 on the 1500-byte link.
    #[arg(long)]
    pub ipv6: bool,
}

fn syncookies(s: &str) -> Result<SynCookies, String> {
    match s {
        "0" => Ok(SynCookies::Never),
        "1" => Ok(SynCookies::OnOverflow),
        "2" => Ok(SynCookies::Always),
        _ => Err(format!("expected 0, 1 or 2 (as tcp_syncookies), got {s:?}")),
    }
}

const CLIENT_ADDR: &str = "198.18.0.1";
const SERVER_ADDR: &str = "198.18.0.2";
const CLIENT_ADDR_V6: &str = "fd00:5ac::1";
const SERVER_ADDR_V6: &str = "fd00:5ac::2";
const PORT: u16 = 80;

/// The trace sink: renders lines to stdout and writes the capture.
struct Sink {
    renderer: Renderer,
    pcap: Option<PcapSink<BufWriter<File>>>,
}

impl Sink {
    fn event(&mut self, e: &TraceEvent) {
        if let Some(p) = self.pcap.as_mut() {
            p.event(e);
        }
        for line in self.renderer.push(e) {
            println!("{line}");
        }
    }
}

/// Shares the sink between the runtime thread (which feeds it) and main (which finishes it).
struct SharedSink(Arc<Mutex<Sink>>);

impl TraceSink for SharedSink {
    fn event(&mut self, e: &TraceEvent) {
        if let Ok(mut s) = self.0.lock() {
            s.event(e);
        }
    }
}

/// The server application: accept one connection, read to the end, reply with the byte count
/// and SHA-256 of what it read, close.
fn server_app(listener: TcpListener) -> io::Result<(u64, String)> {
    let (mut stream, _peer) = listener.accept()?;
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    let digest = hex(&hasher.finalize());
    writeln!(stream, "{total} {digest}")?;
    Ok((total, digest))
}

/// What the client application saw.
struct ClientReport {
    sent: u64,
    digest: String,
    reply: String,
    elapsed: Duration,
    info: synack::tcp::connection::Info,
}

/// The client application: connect, send `bytes` of a seeded pattern, shut down writing, read
/// the server's reply.
fn client_app(
    host: &Host,
    addr: SocketAddr,
    bytes: u64,
    seed: u64,
    progress: bool,
) -> io::Result<ClientReport> {
    let mut stream = TcpStream::connect_on(host, addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    stream.set_write_timeout(Some(Duration::from_secs(600)))?;
    let start = Instant::now();
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    let mut rng = synack::device::SimRng::new(seed);
    let mut shown = false;
    while sent < bytes {
        let n = ((bytes - sent) as usize).min(chunk.len());
        rng.fill_bytes(&mut chunk[..n]);
        stream.write_all(&chunk[..n])?;
        hasher.update(&chunk[..n]);
        sent += n as u64;
        if progress && start.elapsed() > Duration::from_secs(1) {
            show_progress(sent, bytes, start.elapsed());
            shown = true;
        }
    }
    stream.shutdown(Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    if shown {
        eprint!("\r\x1b[K");
    }
    let info = stream.info()?;
    Ok(ClientReport {
        sent,
        digest: hex(&hasher.finalize()),
        reply,
        elapsed: start.elapsed(),
        info,
    })
}

fn show_progress(done: u64, total: u64, elapsed: Duration) {
    let width = 30;
    let filled = (done as f64 / total.max(1) as f64 * width as f64) as usize;
    let rate = done as f64 * 8.0 / elapsed.as_secs_f64().max(1e-9);
    eprint!(
        "\r  [{}{}] {:>3}% {} of {}  {}",
        "=".repeat(filled),
        " ".repeat(width - filled),
        done * 100 / total.max(1),
        units::human_bytes(done),
        units::human_bytes(total),
        units::human_rate(rate)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn run(args: Args) -> ExitCode {
    match demo(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn demo(args: &Args) -> io::Result<bool> {
    let level = match args.trace {
        TraceChoice::All => TraceLevel::All,
        TraceChoice::Handshake => TraceLevel::Handshake,
        TraceChoice::None => TraceLevel::None,
    };
    let (client_ip, server_ip, prefix) = if args.ipv6 {
        (CLIENT_ADDR_V6, SERVER_ADDR_V6, 64)
    } else {
        (CLIENT_ADDR, SERVER_ADDR, 24)
    };
    let client_ip: IpAddr = client_ip.parse().map_err(io::Error::other)?;
    let server = SocketAddr::new(server_ip.parse().map_err(io::Error::other)?, PORT);
    let mut renderer = Renderer::new(level);
    renderer
        .name(client_ip, "client")
        .name(server.ip(), "server")
        .only(Direction::Out);
    let pcap = if args.no_pcap {
        None
    } else {
        let f = File::create(&args.pcap)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", args.pcap)))?;
        Some(PcapSink::new(BufWriter::new(f))?.only_node("client"))
    };
    let sink = Arc::new(Mutex::new(Sink { renderer, pcap }));

    let mut link = LinkConfig::default().with_delay(args.rtt / 2);
    if args.loss > 0.0 {
        link = link.with_loss(Loss::Bernoulli(args.loss));
    }
    let rt = Runtime::builder()
        .host("client", &format!("{client_ip}/{prefix}"))
        .host("server", &format!("{}/{prefix}", server.ip()))
        .link(link)
        .seed(args.seed)
        .tcp(Config {
            syncookies: args.syncookies,
            ..Config::default()
        })
        .trace(SharedSink(sink.clone()))
        .build()?;
    let (client, server_host) = (
        rt.host("client")
            .ok_or_else(|| io::Error::other("no client host"))?,
        rt.host("server")
            .ok_or_else(|| io::Error::other("no server host"))?,
    );

    println!(
        "synack demo: client {client_ip} \u{21c4} server {server}, RTT {:?}, loss {}%, {} ({} bytes), seed {}",
        args.rtt,
        args.loss * 100.0,
        units::human_bytes(args.bytes),
        args.bytes,
        args.seed
    );
    let listener = TcpListener::bind_on(&server_host, server)?;
    let server_thread = std::thread::spawn(move || server_app(listener));
    let report = client_app(&client, server, args.bytes, args.seed, true);
    let server_result = server_thread
        .join()
        .map_err(|_| io::Error::other("server thread panicked"))?;
    // Let the close finish (FIN, ACK) so the trace shows it; bounded.
    rt.settle(args.rtt * 10 + Duration::from_secs(2));
    let (cc, sc): (Counters, Counters) = (client.counters(), server_host.counters());
    let link_stats = rt.link_stats();
    drop(rt);
    {
        let mut s = sink
            .lock()
            .map_err(|_| io::Error::other("trace sink poisoned"))?;
        for line in s.renderer.finish() {
            println!("{line}");
        }
        if let Some(p) = s.pcap.take() {
            let packets = p.packets();
            p.finish()?;
            println!(
                "wrote {} ({packets} packets; open it with wireshark or tshark -r)",
                args.pcap
            );
        }
    }

    let report = report?;
    let (server_total, server_digest) = server_result?;
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "transfer: {} in {:.3} s, goodput {}, {} retransmissions (client {} / server {}), {} packets lost on the link",
        units::human_bytes(report.sent),
        secs,
        units::human_rate(report.sent as f64 * 8.0 / secs),
        cc.retrans_segs + sc.retrans_segs,
        cc.retrans_segs,
        sc.retrans_segs,
        link_stats.dropped_loss
    );
    if let Some(srtt) = report.info.srtt {
        println!(
            "client: srtt {:.1} ms, rto {} ms, cwnd {} bytes, mss {}",
            srtt.as_secs_f64() * 1e3,
            report.info.rto.as_millis(),
            report.info.cwnd,
            report.info.snd_mss
        );
    }
    let ok = server_total == report.sent
        && server_digest == report.digest
        && report.reply.trim() == format!("{server_total} {server_digest}");
    println!("sha256 sent     {}", report.digest);
    println!(
        "sha256 received {server_digest}  {}",
        if ok {
            "\u{2713} match"
        } else {
            "\u{2717} MISMATCH"
        }
    );
    if args.stats {
        println!("\nclient counters:\n{cc}");
        println!("server counters:\n{sc}");
    }
    Ok(ok)
}
