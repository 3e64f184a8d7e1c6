//! `synack connect`: netcat on synack, on a TUN device. Sends a file (or standard input),
//! shuts down its sending side, and keeps reading until the peer closes.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use synack::net::{Shutdown, TcpStream};
use synack::tcp::Config;

use crate::tunnet::{self, LinesTo, TunArgs};

/// Connect to HOST:PORT from synack on a TUN device, like netcat.
#[derive(Debug, Parser)]
#[command(
    after_long_help = "Example (as root, with a server on the kernel side):\n  \
    ip netns add demo\n  \
    ip netns exec demo socat -u TCP-LISTEN:9000,reuseaddr - > got.bin &\n  \
    synack connect --netns demo --tun tun0 --addr 198.18.0.2/24 --kernel-addr 198.18.0.1/24 \\\n      \
    198.18.0.1:9000 --send file.bin\n\n\
    Output: standard output carries only the bytes that arrive (unless --recv FILE takes them), \
    so `synack connect ... > got.bin` captures exactly the data; the trace, the connection \
    summary, errors and `wrote FILE` go to standard error.\n\n\
    Exit status: 0 when both directions ended cleanly, 1 on a connection error (printed with\n\
    its kind, e.g. ConnectionRefused or ConnectionReset), 2 on a usage or setup error."
)]
pub struct Args {
    #[command(flatten)]
    pub net: TunArgs,
    /// Where to connect: an address and a port, e.g. 198.18.0.1:9000 ([fd00::1]:9000 for IPv6).
    #[arg(value_name = "HOST:PORT", value_parser = host_port)]
    pub target: SocketAddr,
    /// Send this file, then shut down writing (default: standard input).
    #[arg(long, value_name = "FILE")]
    pub send: Option<PathBuf>,
    /// Write what arrives to this file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub recv: Option<PathBuf>,
    /// When done (or failed), print the stack's non-zero counters (nstat names: RetransSegs,
    /// TCPTimeouts, TCPLossProbes, TCPDSACKRecvSegs, ...) to standard error.
    #[arg(long)]
    pub stats: bool,
    /// Give up on the handshake after this long.
    #[arg(long, default_value = "10s", value_parser = crate::units::duration, allow_hyphen_values = true)]
    pub connect_timeout: Duration,
}

/// `HOST:PORT`: an address with a port, or a name with a port that resolves.
fn host_port(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        let example = SocketAddr::new(ip, 80);
        return Err(format!("{s} has no port: give HOST:PORT, e.g. {example}"));
    }
    if !s.contains(':') {
        return Err(format!("{s:?} has no port: give HOST:PORT, e.g. {s}:80"));
    }
    let mut addrs = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s:?}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// Failures split by who is to blame: the connection (exit 1) or the setup (exit 2).
enum Failure {
    Connection(io::Error),
    Setup(io::Error),
}

pub fn run(args: Args) -> ExitCode {
    match connect(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Connection(e)) => {
            eprintln!("error: {e} ({:?})", e.kind());
            ExitCode::from(1)
        }
        Err(Failure::Setup(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn connect(args: Args) -> Result<(), Failure> {
    let target = args.target;
    let mut input: Box<dyn Read + Send> = match &args.send {
        Some(p) => Box::new(File::open(p).map_err(|e| {
            Failure::Setup(io::Error::new(
                e.kind(),
                format!("--send {}: {e}", p.display()),
            ))
        })?),
        None => Box::new(io::stdin()),
    };
    let mut output: Box<dyn Write> = match &args.recv {
        Some(p) => Box::new(BufWriter::new(File::create(p).map_err(|e| {
            Failure::Setup(io::Error::new(
                e.kind(),
                format!("--recv {}: {e}", p.display()),
            ))
        })?)),
        None => Box::new(io::stdout()),
    };
    // Standard output carries the data: everything else goes to standard error.
    let started =
        tunnet::start(&args.net, Config::default(), LinesTo::Stderr).map_err(Failure::Setup)?;

    // (bytes sent, seconds until the peer acknowledged our FIN (None: not within the wait),
    // bytes received, seconds from the first received byte to the end of the stream).
    let outcome = (|| -> io::Result<(u64, Option<f64>, u64, f64)> {
        let stream = Arc::new(TcpStream::connect_timeout_on(
            &started.host,
            &target,
            args.connect_timeout,
        )?);
        eprintln!(
            "synack connect: {} -> {target} on {}",
            stream.local_addr()?,
            started.tun_name
        );
        let start = Instant::now();
        // When the read side ended (the peer's FIN, a reset, an error): the writer's wait for
        // the acknowledgement of our FIN then gets `SETTLE` more.
        let read_done: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
        let writer = {
            let stream = stream.clone();
            let read_done = read_done.clone();
            std::thread::spawn(move || -> io::Result<(u64, Option<f64>)> {
                let mut buf = vec![0u8; 256 * 1024];
                let mut sent = 0u64;
                loop {
                    let n = input.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    (&*stream).write_all(&buf[..n])?;
                    sent += n as u64;
                }
                // Half-close: the peer sees EOF; we keep reading what it still sends.
                stream.shutdown(Shutdown::Write)?;
                // The data has been handed over, not delivered: the send buffer may still
                // hold most of it. Time the sending side to the ACK of our FIN.
                let acked = fin_acked(&stream, &read_done);
                Ok((sent, acked.then(|| start.elapsed().as_secs_f64())))
            })
        };
        let mut buf = vec![0u8; 256 * 1024];
        let mut received = 0u64;
        let mut first: Option<Instant> = None;
        let read_result = loop {
            match (&*stream).read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    first.get_or_insert_with(Instant::now);
                    output.write_all(&buf[..n])?;
                    received += n as u64;
                }
                Err(e) => break Err(e),
            }
        };
        let _ = read_done.set(Instant::now());
        output.flush()?;
        let rx_secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
        // A reset or timeout also ends the writer (its next call fails).
        let sent = writer
            .join()
            .map_err(|_| io::Error::other("the sending thread panicked"));
        read_result?;
        let (sent, tx_secs) = sent??;
        Ok((sent, tx_secs, received, rx_secs))
    })();
    let (sent, tx_secs, received, rx_secs) = match outcome {
        Ok(v) => v,
        Err(e) => {
            if args.stats {
                print_counters(&started.host);
            }
            let _ = started.finish();
            return Err(Failure::Connection(e));
        }
    };
    let sent = match tx_secs {
        Some(secs) => format!(
            "{} (until our FIN was acknowledged)",
            tunnet::summary(sent, secs)
        ),
        None => format!(
            "{} (our FIN not acknowledged)",
            crate::units::human_bytes(sent)
        ),
    };
    eprintln!(
        "sent {sent}; received {} (first byte to EOF)",
        tunnet::summary(received, rx_secs)
    );
    // Let our FIN and the last ACK go out before the device disappears.
    started.rt.settle(SETTLE);
    if args.stats {
        print_counters(&started.host);
    }
    started.finish().map_err(Failure::Setup)
}

/// How long the last packets get to leave, and the ACK of our FIN to arrive once the read
/// side has ended.
const SETTLE: Duration = Duration::from_secs(2);

/// Waits until the peer has acknowledged our FIN (FIN-WAIT-2, TIME-WAIT or closed, RFC 9293
/// §3.3.2), polling the connection's state (every millisecond at first, backing off to every
/// 16: each poll waits for a turn of the driver); gives up `SETTLE` after the read side ended.
/// A connection that is gone (reset, timed out) counts as not acknowledged.
fn fin_acked(stream: &TcpStream, read_done: &OnceLock<Instant>) -> bool {
    use synack::tcp::connection::State;
    let mut pause = Duration::from_millis(1);
    loop {
        match stream.info() {
            Ok(info) => match info.state {
                Some(State::FinWait2 | State::TimeWait) => return true,
                // LAST-ACK ends in CLOSED only by the ACK of our FIN.
                Some(State::Closed) | None => return info.unacked == 0,
                Some(_) => {}
            },
            Err(_) => return false,
        }
        if read_done.get().is_some_and(|t| t.elapsed() >= SETTLE) {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(16));
    }
}

/// `--stats`: the counters on standard error, one `Name value` line each (as `nstat`).
fn print_counters(host: &synack::net::Host) {
    eprint!(
        "synack connect: counters\n{}synack connect: end of counters\n",
        host.counters()
    );
}
