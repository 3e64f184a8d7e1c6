//! `conc`: many concurrent connections doing 1 KiB request/response through tokio — synack's
//! async sockets on an in-process link against the kernel's `tokio::net` over loopback — and
//! synack's blocking sockets with one thread per connection.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use synack::net::Runtime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const MSG: usize = 1024;

/// What one run measured.
pub struct Conc {
    pub requests: u64,
    pub secs: f64,
    /// Per-request latency, µs.
    pub latencies: Vec<f64>,
    /// Task and thread wake-ups by synack's driver (None for the kernel).
    pub wakeups: Option<u64>,
    /// Packets between the two hosts (synack's async runs only).
    pub packets: Option<u64>,
    /// Packets the device pair dropped on a full queue (the pair run only).
    pub drops: Option<u64>,
}

impl Conc {
    /// A synack async run: its time, latencies, driver wake-ups and packets, and drops.
    fn synack(secs: f64, lat: Vec<f64>, counts: [u64; 2], drops: Option<u64>) -> Conc {
        Conc {
            requests: lat.len() as u64,
            secs,
            latencies: lat,
            wakeups: Some(counts[0]),
            packets: Some(counts[1]),
            drops,
        }
    }

    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The server side of one connection: answer every 1 KiB request with 1 KiB until EOF.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = [0u8; MSG];
    while s.read_exact(&mut buf).await.is_ok() {
        buf[0] ^= 0xff;
        if s.write_all(&buf).await.is_err() {
            return;
        }
    }
}

/// `rounds` requests on one connection; their latencies in µs. Checks every answer.
async fn client<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, id: u32, rounds: u32) -> Vec<f64> {
    let mut out = Vec::with_capacity(rounds as usize);
    let mut req = [0u8; MSG];
    let mut resp = [0u8; MSG];
    for r in 0..rounds {
        req[..4].copy_from_slice(&id.to_be_bytes());
        req[4..8].copy_from_slice(&r.to_be_bytes());
        let t = Instant::now();
        s.write_all(&req).await.expect("request written");
        s.read_exact(&mut resp).await.expect("response read");
        out.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(
            resp[0] == req[0] ^ 0xff && resp[1..] == req[1..],
            "a wrong response"
        );
    }
    let _ = s.shutdown().await;
    out
}

/// Opens `n` connections with `open`, then runs `rounds` requests on each, all at once.
/// Returns the time, the latencies, and what `count` counted during the requests.
async fn drive<S, F, Fut>(
    n: u32,
    rounds: u32,
    open: F,
    count: impl Fn() -> [u64; 2],
) -> (f64, Vec<f64>, [u64; 2])
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let mut conns = Vec::with_capacity(n as usize);
    for _ in 0..n {
        conns.push(open().await);
    }
    let start = Instant::now();
    let before = count();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, s)| tokio::spawn(client(s, i as u32, rounds)))
        .collect();
    let mut lat = Vec::with_capacity((n * rounds) as usize);
    for t in tasks {
        lat.extend(t.await.expect("a client task"));
    }
    let (secs, after) = (start.elapsed().as_secs_f64(), count());
    (secs, lat, [after[0] - before[0], after[1] - before[1]])
}

/// Serves on `server`'s `addr` and runs `drive` from `client` towards it: the time, the
/// latencies, and what `count` counted during the requests.
async fn drive_synack(
    client: synack::net::Host,
    server: &synack::net::Host,
    addr: &'static str,
    n: u32,
    rounds: u32,
    count: impl Fn() -> [u64; 2],
) -> (f64, Vec<f64>, [u64; 2]) {
    let l = synack::tokio::TcpListener::bind_on(server, addr).unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s));
        }
    });
    let open = || {
        let client = client.clone();
        async move {
            let s = synack::tokio::TcpStream::connect_on(&client, addr)
                .await
                .expect("connect");
            s.set_nodelay(true).unwrap();
            s
        }
    };
    drive(n, rounds, open, count).await
}

/// synack: two hosts on an in-memory link without delay, the driver a task on the same
/// tokio runtime as the clients and the server.
pub fn synack_async(n: u32, rounds: u32) -> Conc {
    tokio_rt().block_on(async {
        let rt = Runtime::builder()
            .host("client", "198.18.0.1/24")
            .host("server", "198.18.0.2/24")
            .build_tokio()
            .expect("a synack runtime");
        let (ch, sh) = (rt.host("client").unwrap(), rt.host("server").unwrap());
        let count = || [rt.wakeups(), rt.link_stats().sent];
        let (secs, lat, counts) = drive_synack(ch, &sh, "198.18.0.2:80", n, rounds, count).await;
        Conc::synack(secs, lat, counts, None)
    })
}

/// synack, one runtime per host: the client's and the server's runtimes each with its own
/// driver task (on the same tokio runtime as the clients and the server), joined by an
/// in-memory device pair (`synack::device::pair`), so the two hosts' TCP work runs on two
/// tokio workers at once.
pub fn synack_async_pair(n: u32, rounds: u32) -> Conc {
    tokio_rt().block_on(async {
        let (a, b) = synack::device::pair::pair_with_queue(1500, PAIR_QUEUE).expect("a pair");
        let build = |name: &str, cidr: &str, end| {
            Runtime::builder()
                .host(name, cidr)
                .device(end)
                .build_tokio()
                .expect("a synack runtime on a pair end")
        };
        let crt = build("client", "198.18.2.1/24", a);
        let srt = build("server", "198.18.2.2/24", b);
        let (ch, sh) = (crt.host("client").unwrap(), srt.host("server").unwrap());
        let drops = || crt.device_stats().tx_errors + srt.device_stats().tx_errors;
        let count = || {
            let (c, s) = (crt.device_stats(), srt.device_stats());
            [crt.wakeups() + srt.wakeups(), c.tx_packets + s.tx_packets]
        };
        let before = drops();
        let (secs, lat, counts) = drive_synack(ch, &sh, "198.18.2.2:80", n, rounds, count).await;
        Conc::synack(secs, lat, counts, Some(drops() - before))
    })
}

/// Packets each end of the pair queues at most in `synack_async_pair`: more than 10,000
/// connections can have in flight at once (a request or an answer each, and their ACKs), so
/// the figure measures the drivers and not retransmission timeouts. With the default
/// (`device::pair::PAIR_QUEUE`, 1,024) a driver that falls behind the other drops thousands.
pub const PAIR_QUEUE: usize = 32_768;

/// The kernel: `tokio::net` over 127.0.0.1, the server in a child process (`conc-server`):
/// 10,000 connections are 20,000 descriptors, more than one process may hold here.
pub fn kernel_async(n: u32, rounds: u32) -> Option<Conc> {
    let exe = std::env::current_exe().ok()?;
    let mut child = std::process::Command::new(exe)
        .arg("conc-server")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    {
        use std::io::BufRead;
        let out = child.stdout.take()?;
        std::io::BufReader::new(out).read_line(&mut line).ok()?;
    }
    let addr: std::net::SocketAddr = line.trim().parse().ok()?;
    let r = tokio_rt().block_on(async {
        let (secs, lat, _) = drive(
            n,
            rounds,
            || async move {
                let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                s.set_nodelay(true).unwrap();
                s
            },
            || [0, 0],
        )
        .await;
        Conc {
            requests: lat.len() as u64,
            secs,
            latencies: lat,
            wakeups: None,
            packets: None,
            drops: None,
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    Some(r)
}

/// `synack-bench conc-server`: the kernel-side echo of `kernel_async`; prints its address.
pub fn server_child() {
    tokio_rt().block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", l.local_addr().unwrap());
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let _ = s.set_nodelay(true);
            tokio::spawn(serve(s));
        }
    })
}

/// synack's blocking sockets: `threads` client threads, one connection each, and a server
/// thread per connection.
pub fn synack_blocking(threads: u32, rounds: u32) -> Conc {
    let rt = Runtime::builder()
        .host("client", "198.18.1.1/24")
        .host("server", "198.18.1.2/24")
        .build()
        .expect("a synack runtime");
    let (ch, sh) = (rt.host("client").unwrap(), rt.host("server").unwrap());
    let l = synack::net::TcpListener::bind_on(&sh, "198.18.1.2:80").unwrap();
    let server = std::thread::spawn(move || {
        let mut hs = Vec::new();
        for _ in 0..threads {
            let (mut s, _) = l.accept().unwrap();
            s.set_nodelay(true).unwrap();
            hs.push(std::thread::spawn(move || {
                let mut buf = [0u8; MSG];
                while s.read_exact(&mut buf).is_ok() {
                    buf[0] ^= 0xff;
                    if s.write_all(&buf).is_err() {
                        return;
                    }
                }
            }));
        }
        for h in hs {
            let _ = h.join();
        }
    });
    let conns: Vec<_> = (0..threads)
        .map(|_| {
            let s = synack::net::TcpStream::connect_on(&ch, "198.18.1.2:80").unwrap();
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    let go = Arc::new(std::sync::Barrier::new(threads as usize + 1));
    let before = rt.wakeups();
    let clients: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let go = go.clone();
            std::thread::spawn(move || {
                go.wait();
                let mut out = Vec::with_capacity(rounds as usize);
                let (mut req, mut resp) = ([0u8; MSG], [0u8; MSG]);
                for r in 0..rounds {
                    req[..4].copy_from_slice(&(i as u32).to_be_bytes());
                    req[4..8].copy_from_slice(&r.to_be_bytes());
                    let t = Instant::now();
                    s.write_all(&req).unwrap();
                    s.read_exact(&mut resp).unwrap();
                    out.push(t.elapsed().as_secs_f64() * 1e6);
                    assert!(resp[0] == req[0] ^ 0xff && resp[1..] == req[1..]);
                }
                out
            })
        })
        .collect();
    go.wait();
    let start = Instant::now();
    let mut lat = Vec::new();
    for c in clients {
        lat.extend(c.join().unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    let wakeups = rt.wakeups() - before;
    drop(rt);
    let _ = server.join();
    Conc {
        requests: lat.len() as u64,
        secs,
        latencies: lat,
        wakeups: Some(wakeups),
        packets: None,
        drops: None,
    }
}

/// `cg-conc N ROUNDS [pair]`: synack's async side alone, `N` connections of `ROUNDS` requests
/// each, for profiling; both hosts in one runtime, or with `pair` one runtime per host joined by
/// a device pair. Prints the requests made, their rate, and packets and wake-ups per request.
/// Run it under callgrind twice, once with `ROUNDS` 0 (setting up and tearing down only): the
/// difference of the totals divided by `N * ROUNDS` is synack's instructions per request, both
/// hosts, the driver(s), tokio and the clients' and servers' tasks included.
pub fn cg_child(args: &[String]) {
    let arg = |i: usize, default: u32| {
        args.get(i)
            .map(|a| a.parse().expect("cg-conc N ROUNDS [pair]: counts"))
            .unwrap_or(default)
    };
    let (n, rounds) = (arg(0, 1_000), arg(1, 10));
    let c = match args.get(2).map(String::as_str) {
        Some("pair") => synack_async_pair(n, rounds),
        None => synack_async(n, rounds),
        Some(other) => panic!("cg-conc N ROUNDS [pair]: unknown variant {other:?}"),
    };
    let wakeups = c.wakeups.unwrap_or(0) as f64 / c.requests.max(1) as f64;
    let packets = c.packets.unwrap_or(0) as f64 / c.requests.max(1) as f64;
    println!(
        "{} requests, {:.0} req/s, {packets:.2} packets and {wakeups:.2} wake-ups per request{}",
        c.requests,
        c.per_sec(),
        c.drops
            .map_or(String::new(), |d| format!(", {d} packets dropped"))
    );
}

/// (connections, requests on each) for the async runs, (threads, requests on each) for the
/// blocking one.
pub fn sizes(quick: bool) -> (u32, u32, u32, u32) {
    if quick {
        (1_000, 5, 20, 50)
    } else {
        (10_000, 20, 100, 500)
    }
}
