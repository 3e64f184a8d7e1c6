//! `synack demo`: two hosts in one process, a client and a server written against
//! `synack::net` exactly as an application would be, over an in-memory link. Shows the
//! handshake and the close segment by segment, summarises the bulk transfer, verifies it by
//! SHA-256, and writes a pcap.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use clap::Parser;
use sha2::{Digest, Sha256};
use synack::device::sim::{LinkConfig, LinkStats, Loss};
use synack::net::{Host, Runtime, Shutdown, TcpListener, TcpStream};
use synack::tcp::{Config, Counters, SynCookies};
use synack::trace::pcap::PcapSink;
use synack::trace::render::Renderer;
use synack::trace::{Direction, TraceEvent, TraceSink};

use crate::trace_arg::TraceArg;
use crate::{plot, report, units};

/// Run a client and a server over an in-memory link and watch TCP work.
#[derive(Debug, Parser)]
#[command(
    after_long_help = "Example: synack demo --bytes 4MiB --rtt 50ms --loss 1% --trace handshake\n\n\
    Output: the trace, the summary and the SHA-256 check on standard output; errors on \
    standard error. A transfer that lasts more than a second draws a progress bar on standard \
    error, only when standard error is a terminal (a redirected log gets no bar).\n\n\
    Exit status: 0 when the bytes arrived intact, 1 on a SHA-256 mismatch, 2 on an error (a \
    connect that timed out, say)."
)]
pub struct Args {
    /// How much the client sends (e.g. 1MiB, 64KiB, 100000).
    #[arg(long, default_value = "1MiB", value_parser = units::size, allow_hyphen_values = true)]
    pub bytes: u64,
    /// Round-trip time of the link (each direction gets half).
    #[arg(long, default_value = "20ms", value_parser = units::duration, allow_hyphen_values = true)]
    pub rtt: Duration,
    /// Random packet loss on the link, each direction (e.g. 1% or 0.01).
    #[arg(long, default_value = "0", value_parser = units::fraction, allow_hyphen_values = true)]
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
    /// How much of the conversation to print (the summary always follows).
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = TraceArg::Handshake)]
    pub trace: TraceArg,
    /// Print both hosts' counters (nstat names) at the end.
    #[arg(long)]
    pub stats: bool,
    /// SYN cookies on the server, as Linux's tcp_syncookies: 0 never, 1 when the SYN queue is
    /// full, 2 always (the trace then notes the cookie sent and the cookie accepted).
    #[arg(long, default_value = "1", value_parser = syncookies)]
    pub syncookies: SynCookies,
    /// Draw the ladder diagram of the connection (two timelines, one arrow per segment, the
    /// states beside them; the middle of a long transfer folded) to this SVG file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<String>,
    /// Write a self-contained HTML report (summary, ladder, time–sequence and RTT charts,
    /// both hosts' counters, the trace as a filterable table) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<String>,
    /// Give up on the handshake after this long (real time; Linux's own SYN retries would
    /// last about 2 minutes). The demo then prints the error and exits with status 2.
    #[arg(long, default_value = "10s", value_parser = units::duration, allow_hyphen_values = true)]
    pub connect_timeout: Duration,
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

const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const CLIENT_ADDR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 1);
const SERVER_ADDR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 2);
const PORT: u16 = 80;

/// The client's address, the server's socket address and the link's prefix length.
fn endpoints(ipv6: bool) -> (IpAddr, SocketAddr, u8) {
    if ipv6 {
        (
            CLIENT_ADDR_V6.into(),
            SocketAddr::new(SERVER_ADDR_V6.into(), PORT),
            64,
        )
    } else {
        (
            CLIENT_ADDR.into(),
            SocketAddr::new(SERVER_ADDR.into(), PORT),
            24,
        )
    }
}

/// The trace sink: renders lines to stdout, writes the capture and keeps the events for the
/// pictures.
struct Sink {
    renderer: Renderer,
    pcap: Option<PcapSink<BufWriter<File>>>,
    recorder: Option<plot::Recorder>,
}

impl Sink {
    fn event(&mut self, e: &TraceEvent) {
        if let Some(p) = self.pcap.as_mut() {
            p.event(e);
        }
        if let Some(r) = self.recorder.as_mut() {
            r.event(e);
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
    connect_timeout: Duration,
    progress: bool,
) -> Result<ClientReport, ClientError> {
    let mut stream = TcpStream::connect_timeout_on(host, &addr, connect_timeout)
        .map_err(ClientError::Connect)?;
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

/// How the client application failed: while connecting, or after.
enum ClientError {
    Connect(io::Error),
    Transfer(io::Error),
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> ClientError {
        ClientError::Transfer(e)
    }
}

impl ClientError {
    /// The error as the demo reports it, with what it knows about the cause.
    fn explain(self, args: &Args) -> io::Error {
        let (_, addr, _) = endpoints(args.ipv6);
        let (kind, text) = match self {
            ClientError::Connect(e) if e.kind() == io::ErrorKind::TimedOut => (
                e.kind(),
                format!(
                    "the client's connect to {addr} timed out after {:?}: no SYN-ACK came back{}; \
                     --connect-timeout sets the limit (Linux would retry for about 2 minutes)",
                    args.connect_timeout,
                    if args.loss >= 1.0 {
                        " (the link loses every packet: --loss 100%)"
                    } else {
                        ""
                    }
                ),
            ),
            ClientError::Connect(e) => (
                e.kind(),
                format!("the client's connect to {addr} failed: {e}"),
            ),
            ClientError::Transfer(e) => (e.kind(), format!("the client's transfer failed: {e}")),
        };
        io::Error::new(kind, text)
    }
}

/// What [`run_both`] hands back.
struct Ended<C, S> {
    client: C,
    server: S,
    /// The server failed, and before the client did.
    server_failed_first: bool,
    /// The runtime, still running, when neither side failed.
    rt: Option<Runtime>,
}

/// Runs the client and the server application on threads of their own until both have ended.
/// The first failure stops the runtime, which fails every blocked socket call of the other side
/// (connect, accept, read, write): a failure on either side ends the demo instead of leaving
/// the other side waiting forever.
fn run_both<C, CE, S, SE>(
    rt: Runtime,
    client: impl FnOnce() -> Result<C, CE> + Send + 'static,
    server: impl FnOnce() -> Result<S, SE> + Send + 'static,
) -> io::Result<Ended<Result<C, CE>, Result<S, SE>>>
where
    C: Send + 'static,
    CE: Send + 'static,
    S: Send + 'static,
    SE: Send + 'static,
{
    #[derive(PartialEq)]
    enum Side {
        Client,
        Server,
    }
    let (done_tx, done_rx) = mpsc::channel::<(Side, bool)>();
    let server_thread = {
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let r = server();
            let _ = done.send((Side::Server, r.is_err()));
            r
        })
    };
    let client_thread = std::thread::spawn(move || {
        let r = client();
        let _ = done_tx.send((Side::Client, r.is_err()));
        r
    });
    // Both report exactly once (a panicking thread drops its sender instead).
    let first_failure = done_rx
        .iter()
        .take(2)
        .find_map(|(side, failed)| failed.then_some(side));
    let rt = match first_failure {
        Some(_) => {
            drop(rt);
            None
        }
        None => Some(rt),
    };
    let panicked = |side: &str| io::Error::other(format!("the {side} thread panicked"));
    Ok(Ended {
        client: client_thread.join().map_err(|_| panicked("client"))?,
        server: server_thread.join().map_err(|_| panicked("server"))?,
        server_failed_first: first_failure == Some(Side::Server),
        rt,
    })
}

fn demo(args: &Args) -> io::Result<bool> {
    let (client_ip, server_addr, prefix) = endpoints(args.ipv6);
    let mut renderer = Renderer::new(args.trace.into());
    renderer
        .name(client_ip, "client")
        .name(server_addr.ip(), "server")
        .only(Direction::Out);
    let pcap = if args.no_pcap {
        None
    } else {
        let f = File::create(&args.pcap)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", args.pcap)))?;
        Some(PcapSink::new(BufWriter::new(f))?.only_node("client"))
    };
    let keep_events = args.svg.is_some() || args.report.is_some();
    let sink = Arc::new(Mutex::new(Sink {
        renderer,
        pcap,
        recorder: keep_events.then(plot::Recorder::default),
    }));

    let mut link = LinkConfig::default().with_delay(args.rtt / 2);
    if args.loss > 0.0 {
        link = link.with_loss(Loss::Bernoulli(args.loss));
    }
    let rt = Runtime::builder()
        .host("client", &format!("{client_ip}/{prefix}"))
        .host("server", &format!("{}/{prefix}", server_addr.ip()))
        .link(link)
        .seed(args.seed)
        .tcp(Config {
            syncookies: args.syncookies,
            ..Config::default()
        })
        .trace(SharedSink(sink.clone()))
        .build()?;
    let (client, server) = (
        rt.host("client")
            .ok_or_else(|| io::Error::other("no client host"))?,
        rt.host("server")
            .ok_or_else(|| io::Error::other("no server host"))?,
    );

    println!(
        "synack demo: client {client_ip} \u{21c4} server {server_addr}, RTT {:?}, loss {}%, {} ({} bytes), seed {}",
        args.rtt,
        args.loss * 100.0,
        units::human_bytes(args.bytes),
        args.bytes,
        args.seed
    );
    let listener = TcpListener::bind_on(&server, server_addr)?;
    let (bytes, seed, timeout) = (args.bytes, args.seed, args.connect_timeout);
    // The bar redraws its line with a carriage return: only for a person at a terminal.
    let progress = io::stderr().is_terminal();
    let ended = {
        let client = client.clone();
        run_both(
            rt,
            move || client_app(&client, server_addr, bytes, seed, timeout, progress),
            move || server_app(listener),
        )?
    };
    let link_stats: LinkStats = match &ended.rt {
        Some(rt) => {
            // Let the close finish (FIN, ACK) so the trace shows it; bounded.
            rt.settle(args.rtt * 10 + Duration::from_secs(2));
            rt.link_stats()
        }
        None => LinkStats::default(),
    };
    let (cc, sc): (Counters, Counters) = (client.counters(), server.counters());
    drop(ended.rt);
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
        if let (Some(path), Some(rec)) = (&args.svg, s.recorder.as_ref()) {
            let title = plot::run_title("demo", args.bytes, args.rtt, args.loss);
            plot::write_ladder(&rec.events, path, &title, |_| {}, false)?;
        }
    }

    let (report, (server_total, server_digest)) = match (ended.client, ended.server) {
        (Ok(r), Ok(s)) => (r, s),
        // The side that failed first is the one to report: the other side's error is only the
        // consequence (the runtime stopped under it).
        (Err(e), _) if !ended.server_failed_first => return Err(e.explain(args)),
        (_, Err(e)) => {
            return Err(io::Error::new(e.kind(), format!("the server failed: {e}")));
        }
        (Err(e), Ok(_)) => return Err(e.explain(args)),
    };
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
    if let Some(path) = &args.report {
        let events = sink
            .lock()
            .map_err(|_| io::Error::other("trace sink poisoned"))?
            .recorder
            .take()
            .map(|r| r.events)
            .unwrap_or_default();
        let mut ladder = synack::trace::ladder::Ladder::from_trace(&events, 0)
            .map_err(|e| io::Error::other(format!("--report {path}: {e}")))?;
        ladder.title = Some("synack demo".into());
        let r = report::Report {
            title: "synack demo".into(),
            source: format!(
                "client {client_ip} \u{21c4} server {server_addr}, RTT {:?}, loss {}%, {} sent, seed {}; charts as seen on the client's interface",
                args.rtt,
                args.loss * 100.0,
                units::human_bytes(args.bytes),
                args.seed
            ),
            flows: plot::flows_seen_by(&events, "client"),
            flow: 0,
            ladder: Some(ladder),
            samples: None,
            counters: vec![
                ("client".into(), cc.to_string()),
                ("server".into(), sc.to_string()),
            ],
        };
        report::write(&r, path)?;
    }
    if args.stats {
        println!("\nclient counters:\n{cc}");
        println!("server counters:\n{sc}");
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One side fails while the other is blocked in accept(): the blocked call fails too, at
    /// once, and the side that failed first is known.
    #[test]
    fn a_failure_on_either_side_unblocks_the_other() {
        let blocked_in_accept = |addr: &str| {
            let rt = Runtime::builder()
                .host("only", &format!("{addr}/24"))
                .build()
                .unwrap();
            let listener = TcpListener::bind_on(&rt.host("only").unwrap(), (addr, 7)).unwrap();
            (rt, move || listener.accept().map(|_| ()))
        };
        let stopped = "the synack runtime has stopped";

        let (rt, accept) = blocked_in_accept("198.18.77.1");
        let start = Instant::now();
        let ended = run_both(rt, accept, || Err::<(), _>("server gave up")).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(ended.server_failed_first);
        assert_eq!(ended.server, Err("server gave up"));
        assert_eq!(ended.client.unwrap_err().to_string(), stopped);
        assert!(ended.rt.is_none());

        let (rt, accept) = blocked_in_accept("198.18.77.2");
        let start = Instant::now();
        let ended = run_both(rt, || Err::<(), _>("client gave up"), accept).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!ended.server_failed_first);
        assert_eq!(ended.client, Err("client gave up"));
        assert_eq!(ended.server.unwrap_err().to_string(), stopped);
        assert!(ended.rt.is_none());

        // Neither fails: both results, and the runtime still running.
        let (rt, _) = blocked_in_accept("198.18.77.3");
        let ended = run_both(rt, || Ok::<_, ()>(1), || Ok::<_, ()>(2)).unwrap();
        assert_eq!((ended.client, ended.server), (Ok(1), Ok(2)));
        assert!(!ended.server_failed_first);
        assert!(ended.rt.is_some());
    }
}
