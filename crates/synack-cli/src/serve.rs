//! `synack serve`: a TCP server on synack, on a TUN device, for the kernel (curl, socat, nc,
//! a browser in the namespace) to talk to. One thread per connection.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{ArgGroup, Parser};
use synack::net::{Host, TcpListener, TcpStream};
use synack::tcp::{Config, Counters};

use crate::http;
use crate::tunnet::{self, LinesTo, TunArgs};

/// Serve TCP on synack, on a TUN device: echo, discard, chargen or HTTP files.
#[derive(Debug, Parser)]
#[command(
    group(ArgGroup::new("mode").required(true).args(["echo", "discard", "http", "chargen"])),
    after_long_help = "Example (as root):\n  \
        ip netns add demo\n  \
        synack serve --netns demo --tun tun0 --addr 198.18.0.2/24 --kernel-addr 198.18.0.1/24 --port 80 --http . &\n  \
        ip netns exec demo curl -v http://198.18.0.2/README.md\n\n\
        Stops on Ctrl-C or SIGTERM (flushing --pcap), or after --max-conns connections.\n\n\
        Memory: each connection's stream holds up to 256 KiB each way between the server and \
        synack's driver; one that carried bulk keeps up to twice that (up to 1 MiB per \
        connection, idle or not) until it closes, on top of the TCP buffers.\n\n\
        Output: standard output carries the `listening` line, the trace and the --stats \
        counters; standard error one line per finished connection, errors and `wrote FILE`."
)]
pub struct Args {
    #[command(flatten)]
    pub net: TunArgs,
    /// The port to listen on.
    #[arg(long)]
    pub port: u16,
    /// Send back whatever arrives (RFC 862).
    #[arg(long)]
    pub echo: bool,
    /// Read and drop whatever arrives (RFC 863).
    #[arg(long)]
    pub discard: bool,
    /// Serve the files under DIR over HTTP/1.1: GET and HEAD, keep-alive, index.html or a
    /// listing for a directory, Content-Type by extension, single byte ranges (206/416, so
    /// `curl -C -` resumes).
    #[arg(long, value_name = "DIR")]
    pub http: Option<PathBuf>,
    /// Send a character pattern until the peer closes (RFC 864).
    #[arg(long)]
    pub chargen: bool,
    /// Exit after this many connections have finished.
    #[arg(long, value_name = "N")]
    pub max_conns: Option<u64>,
    /// Serve on this many queues of a multi-queue TUN interface (`IFF_MULTI_QUEUE`), one
    /// stack on its own thread per queue, all on the same addresses: the kernel keeps each
    /// connection on one queue (by a hash of its addresses and ports), so the stacks share
    /// nothing. One per core is the useful most. Each queue's stack has its own SYN queue
    /// (so its own SYN cookie bound) and counters; --stats adds them up (gauges such as
    /// SynQueuePeak too: the sum of each queue's peak) and prints each queue's opens.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub queues: u16,
    /// On exit, print the stack's non-zero counters (nstat names: SyncookiesSent,
    /// ListenDrops, SynQueuePeak, ...) to stdout.
    #[arg(long)]
    pub stats: bool,
}

#[derive(Clone)]
enum Mode {
    Echo,
    Discard,
    Http(Arc<PathBuf>),
    Chargen,
}

pub fn run(args: Args) -> ExitCode {
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: Args) -> io::Result<()> {
    let mode = if args.echo {
        Mode::Echo
    } else if args.discard {
        Mode::Discard
    } else if let Some(dir) = &args.http {
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("--http {}: not a directory", dir.display()),
            ));
        }
        Mode::Http(Arc::new(dir.canonicalize()?))
    } else {
        Mode::Chargen
    };
    let queues = usize::from(args.queues);
    let started = tunnet::start_queues(&args.net, Config::default(), LinesTo::Stdout, queues)?;
    let ip = args.net.listen_ip()?;
    // One listener per queue's stack, on the same address, each accepting on its own thread.
    let (conns, accepted_rx) = std::sync::mpsc::channel::<io::Result<(TcpStream, _)>>();
    for host in started.hosts() {
        let listener = TcpListener::bind_on(host, (ip, args.port))?;
        let conns = conns.clone();
        std::thread::spawn(move || {
            loop {
                let r = listener.accept();
                let failed = r.is_err();
                // The receiver is gone (serve is ending) or the runtime stopped: done.
                if conns.send(r).is_err() || failed {
                    break;
                }
            }
        });
    }
    drop(conns);

    // Ctrl-C / SIGTERM: print the counters, flush the trace and capture, then exit.
    let stats = args
        .stats
        .then(|| started.hosts().cloned().collect::<Vec<Host>>());
    let sink = started.sink.clone();
    ctrlc::set_handler(move || {
        if let Some(h) = &stats {
            print_stats(h);
        }
        if let Some(Ok(mut s)) = sink.as_ref().map(|s| s.lock()) {
            let _ = s.finish();
        }
        std::process::exit(0);
    })
    .map_err(io::Error::other)?;

    outln!(
        "synack serve: listening on {} on {} (addresses {}; mtu {}{}{})",
        std::net::SocketAddr::new(ip, args.port),
        started.tun_name,
        args.net.addr.join(", "),
        args.net.mtu,
        if args.net.kernel_addr.is_empty() {
            String::new()
        } else {
            format!(", kernel side {}", args.net.kernel_addr.join(", "))
        },
        if queues > 1 {
            format!("; {queues} queues, one thread each")
        } else {
            String::new()
        }
    );
    io::stdout().flush()?;

    let done = Arc::new(AtomicU64::new(0));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut accepted = 0u64;
    loop {
        if args.max_conns.is_some_and(|m| accepted >= m) {
            break;
        }
        let (stream, peer) = accepted_rx
            .recv()
            .map_err(|_| io::Error::other("every listener stopped"))??;
        accepted += 1;
        let mode = mode.clone();
        let done = done.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let r = handle(stream, &mode);
            match r {
                Ok((rx_bytes, tx_bytes)) => eprintln!(
                    "{peer}: closed; received {}, sent {}",
                    tunnet::summary(rx_bytes, start.elapsed().as_secs_f64()),
                    tunnet::summary(tx_bytes, start.elapsed().as_secs_f64())
                ),
                Err(e) => eprintln!("{peer}: error: {e} ({:?})", e.kind()),
            }
            done.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(());
        });
    }
    // --max-conns: wait for the last handlers, let the closes finish, flush.
    drop(tx);
    while done.load(Ordering::Relaxed) < accepted {
        if rx.recv_timeout(Duration::from_secs(600)).is_err() {
            break;
        }
    }
    started.rt.settle(Duration::from_secs(2));
    for (rt, _) in &started.shards {
        rt.settle(Duration::from_secs(2));
    }
    if args.stats {
        print_stats(&started.hosts().cloned().collect::<Vec<Host>>());
    }
    started.finish()
}

/// `--stats`: with several queues, each queue's opens; then the counters (added up over the
/// queues), one `Name value` line each (zero ones left out, as `nstat`).
fn print_stats(hosts: &[Host]) {
    let mut out = io::stdout().lock();
    let mut sum = Counters::default();
    for (k, h) in hosts.iter().enumerate() {
        let c = h.counters();
        if hosts.len() > 1 {
            let _ = writeln!(
                out,
                "synack serve: queue {k}: {} passive opens, {} segments received",
                c.passive_opens, c.in_segs
            );
        }
        sum.add(&c);
    }
    let _ = write!(out, "synack serve: counters\n{sum}");
    let _ = writeln!(out, "synack serve: end of counters");
    let _ = out.flush();
}

/// Runs one connection; returns (bytes received, bytes sent).
fn handle(stream: TcpStream, mode: &Mode) -> io::Result<(u64, u64)> {
    let mut s = stream;
    let mut buf = vec![0u8; 256 * 1024];
    match mode {
        Mode::Echo => {
            let mut total = 0u64;
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n])?;
                total += n as u64;
            }
            s.shutdown(std::net::Shutdown::Write)?;
            Ok((total, total))
        }
        Mode::Discard => {
            let mut total = 0u64;
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            Ok((total, 0))
        }
        Mode::Chargen => {
            // RFC 864's rotating 72-character lines of printable ASCII.
            let mut line = 0usize;
            let mut pos = 0usize;
            while pos < buf.len() {
                for i in 0..72 {
                    if pos < buf.len() {
                        buf[pos] = b' ' + ((line + i) % 95) as u8;
                        pos += 1;
                    }
                }
                for &c in b"\r\n" {
                    if pos < buf.len() {
                        buf[pos] = c;
                        pos += 1;
                    }
                }
                line += 1;
            }
            let mut total = 0u64;
            loop {
                match s.write(&buf) {
                    Ok(n) => total += n as u64,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                        ) =>
                    {
                        return Ok((0, total));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Mode::Http(root) => http::serve_connection(&mut s, root, &mut buf),
    }
}
