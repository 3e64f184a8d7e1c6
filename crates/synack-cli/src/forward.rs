//! `synack forward`: synack as a tun2socks-style forwarder. A TUN device (inside a network
//! namespace when asked) carries the kernel's traffic for the routed prefixes to synack, which
//! terminates every TCP and UDP flow ([`synack::stack`]'s forwarder mode) and carries it on
//! as a kernel socket opened in the namespace synack itself runs in, straight to the original
//! destination or, with `--socks5`, through a SOCKS5 proxy (RFC 1928 CONNECT for TCP, one
//! UDP ASSOCIATE per UDP flow).
//!
//! A TCP flow is accepted only once the upstream connection is made, so a refused or
//! unreachable upstream reaches the client as a RST or an ICMP unreachable, not as a
//! connection that dies after its handshake. Bytes are copied both ways with half-closes
//! preserved. Echo requests are sent on from synack's namespace on a raw ICMP socket, and
//! answered for the client only when the destination answers; an absent host (no answer to
//! ARP or neighbour solicitation) is reported to the client as ICMP host unreachable after
//! about 3 s, as a Linux router does (dropped with `--socks5`, which carries no ICMP).
//!
//! It runs a loop of its own around the sans-IO stack: one thread moves packets, the stack
//! and the UDP flows' sockets (non-blocking), and sleeps in poll(2) until the TUN device or a
//! UDP socket is ready, a timer of the stack falls due, or an eventfd is written. The TCP
//! flows' upstream sockets belong to a second thread ([`upstream`]), which meets the loop
//! in each flow's pair of byte queues, so that the kernel's work for those sockets (over a
//! veth pair, the receiver's too) runs beside the stack instead of on its thread. A
//! short-lived thread per TCP flow makes its upstream connection (and its SOCKS5 handshake,
//! with an RFC 1929 login when configured), as does each UDP flow's association, and wakes
//! the loop through that eventfd when done. The TUN device uses its offloads (TCP
//! super-segments) unless `--no-offload`, and then writes on a thread of its own
//! ([`TunBuilder::write_thread`](synack::device::tun::TunBuilder::write_thread)): a TUN
//! write runs the client's whole receive path in the writer's context.
//!
//! UDP in bulk: each wake reads the TUN device until it is empty, and the client's datagrams
//! of one flow go upstream in batches of up to 64 per sendmmsg(2). The TUN interface's
//! transmit queue is 4,096 packets (`--txqueuelen`; the kernel's default is 500), so that the
//! kernel holds the datagrams that arrive while synack is scheduled out, and each direct UDP
//! flow's upstream socket has 2 MiB send and receive buffers (forced past
//! `net.core.{r,w}mem_max`). `--stats` counts the datagrams an upstream socket could not take.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use synack::device::Device;
use synack::device::tun::Tun;
use synack::stack::{
    ForwardConfig, ForwardEvent, IpCidr, PendingId, Refusal, SocketHandle, Stack, StackConfig,
    Unreachable,
};
use synack::tcp::Shutdown;
use synack::time::Instant;
use synack::units;

mod ping;
mod socks5;
mod upstream;
use socks5::Failure;
use upstream::{CHUNK, QUEUE_CAP, Shared, State, Upstream, Waker};

/// Run synack as a forwarder: every TCP and UDP flow to a routed prefix is carried on as a
/// kernel socket.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "Example (as root):\n  \
        ip netns add client\n  \
        synack forward --tun fw0 --netns client --kernel-addr 198.18.0.1/24 --addr 198.18.0.2/24 --route 198.19.0.0/16 &\n  \
        ip netns exec client curl http://198.19.0.77/   # carried on from synack's namespace\n\n\
        Through a SOCKS5 proxy (CONNECT for TCP, UDP ASSOCIATE for UDP):\n  \
        synack forward --tun fw0 --netns client --kernel-addr 198.18.0.1/24 --route default --socks5 127.0.0.1:1080\n\n\
        With a login (RFC 1929), the password in the environment:\n  \
        SYNACK_SOCKS5_PASSWORD=s3cret synack forward ... --socks5 127.0.0.1:1080 --socks5-user alice\n\n\
        Stops on Ctrl-C or SIGTERM.\n\n\
        Output: standard output carries the start line, the closing summary and the --stats \
        counters; standard error the error that stopped it, if one did, and with --stats a line \
        for every flow whose upstream connection or association failed.")]
pub struct Args {
    /// The TUN interface to create.
    #[arg(long, value_name = "NAME")]
    tun: String,
    /// Create the interface inside this network namespace (the clients' side).
    #[arg(long, value_name = "NS")]
    netns: Option<String>,
    /// The kernel side's address on the TUN link (one per family).
    #[arg(long, value_name = "CIDR", value_delimiter = ',')]
    kernel_addr: Vec<String>,
    /// synack's own address on the TUN link (one per family).
    #[arg(
        long,
        value_name = "CIDR",
        default_value = "198.18.0.2/24",
        value_delimiter = ','
    )]
    addr: Vec<String>,
    /// A prefix routed through the TUN device and forwarded (`default` for all of IPv4,
    /// `default6` for all of IPv6); repeat the flag for more.
    #[arg(long = "route", value_name = "PREFIX", required = true)]
    routes: Vec<String>,
    /// Interface MTU.
    #[arg(long, default_value_t = 1500)]
    mtu: u16,
    /// One packet per read and write instead of TCP super-segments of up to 64 KiB (the TUN
    /// device's vnet_hdr offloads, on by default).
    #[arg(long)]
    no_offload: bool,
    /// The TUN interface's transmit queue, in packets: what the kernel holds for synack
    /// before it drops (the kernel's default for a TUN interface is 500, about 12 ms of
    /// 500 Mbit/s UDP; synack scheduled out for longer would lose datagrams).
    #[arg(long, default_value_t = 4096, value_name = "PACKETS")]
    txqueuelen: u32,
    /// How long an upstream TCP connection may take before the client is refused.
    #[arg(long, default_value = "10s", value_parser = units::duration)]
    connect_timeout: Duration,
    /// Carry every TCP flow through this SOCKS5 proxy (RFC 1928 CONNECT, no authentication
    /// unless --socks5-user, the original destination sent as an address); a flow is accepted only once the proxy
    /// reports success, and a failure reply reaches the client as a RST (connection refused
    /// and the rest) or ICMP network/host unreachable. Each UDP flow gets a UDP ASSOCIATE of
    /// its own (a failed one is ICMP port unreachable).
    #[arg(long, value_name = "HOST:PORT")]
    socks5: Option<String>,
    /// Log in to the --socks5 proxy with this username and the password in the environment
    /// variable SYNACK_SOCKS5_PASSWORD (RFC 1929 username/password; each 1 to 255 bytes). The
    /// password is not a flag so that it does not show in the process list.
    #[arg(long, value_name = "USER", requires = "socks5")]
    socks5_user: Option<String>,
    /// Print the counters when stopping, and a line on standard error for every flow whose
    /// upstream connection fails.
    #[arg(long)]
    stats: bool,
}

pub fn run(args: Args) -> ExitCode {
    match forward(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// `default`, `default6` or a prefix.
fn prefix(s: &str) -> io::Result<IpCidr> {
    match s.trim() {
        "default" => "0.0.0.0/0".parse(),
        "default6" => "::/0".parse(),
        p => p.parse(),
    }
}

/// Adds `ip route add PREFIX dev TUN` in the clients' namespace.
fn add_route(netns: Option<&str>, tun: &str, p: &IpCidr) -> io::Result<()> {
    let mut c = Command::new("ip");
    if let Some(ns) = netns {
        c.args(["-n", ns]);
    }
    if p.is_ipv6() {
        c.arg("-6");
    }
    let spec = if p.prefix() == 0 {
        "default".to_string()
    } else {
        p.to_string()
    };
    let out = c.args(["route", "add", &spec, "dev", tun]).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip route add {spec} dev {tun}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// One forwarded TCP flow as the forwarding loop holds it: the stack's connection and the
/// state it shares with the upstream thread, which owns the upstream socket.
struct TcpFlow {
    h: SocketHandle,
    shared: Arc<Shared>,
    /// The client finished sending (its FIN was read from the stack).
    client_done: bool,
    /// Upstream finished sending and its end reached the client as our FIN (or the client
    /// takes nothing more).
    up_done: bool,
    /// Upstream's bytes wait in the queue for room in the connection's send buffer.
    backlog: bool,
    /// Reset on one side: the other is torn down too.
    dead: bool,
}

impl TcpFlow {
    /// Ends the flow both ways at once (a reset on either side): the client's connection is
    /// aborted (RST), upstream is shut down, nothing more is copied.
    fn kill(&mut self, stack: &mut Stack, now: Instant, st: &mut State, io: &Upstream) {
        stack.abort(now, self.h);
        st.reset = true;
        io.mark(&self.shared);
        self.dead = true;
    }
}

/// A TCP flow waiting for its upstream connection: a decision the stack holds (the SYN not
/// answered yet), or a connection already made by a SYN cookie (past the cap on pending
/// decisions), which is aborted if upstream cannot be reached.
#[derive(Debug, Clone, Copy)]
enum Waiting {
    Pending(PendingId),
    Cookie(SocketHandle),
}

/// What a thread making an upstream connection reports: the flow, its client and original
/// destination, and the connection or why there is none.
type Connected = (Waiting, SocketAddr, SocketAddr, Result<TcpStream, Failure>);

/// Makes the upstream connection to `dst` (through the SOCKS5 proxy when there is one) on a
/// thread of its own; the answer comes on `tx`.
fn connect_upstream(
    tx: &mpsc::Sender<Connected>,
    waker: &Waker,
    w: Waiting,
    (src, dst): (SocketAddr, SocketAddr),
    proxy: Option<&Arc<socks5::Proxy>>,
    limit: Duration,
) {
    let (tx, waker, proxy) = (tx.clone(), waker.clone(), proxy.cloned());
    std::thread::spawn(move || {
        let up = match proxy {
            Some(p) => socks5::connect(&p, dst, limit),
            None => TcpStream::connect_timeout(&dst, limit).map_err(|e| {
                let how = match e.kind() {
                    io::ErrorKind::ConnectionRefused => Refusal::Reset,
                    io::ErrorKind::NetworkUnreachable => Refusal::Unreachable(Unreachable::Network),
                    _ => Refusal::Unreachable(Unreachable::Host),
                };
                Failure {
                    how,
                    why: e.to_string(),
                }
            }),
        };
        let _ = tx.send((w, src, dst, up));
        waker.wake();
    });
}

/// A forwarded UDP flow's upstream: a socket of its own, or a SOCKS5 association.
enum UdpUp {
    Direct(UdpSocket),
    /// The association is being made; the client's datagrams wait.
    Associating(Vec<Vec<u8>>),
    Socks(socks5::Association),
}

/// How long a ping sent on waits for its reply or an error: past the 3 s in which the
/// kernel gives up on a neighbour that does not answer (and reports host unreachable, which
/// the client then gets, as from a Linux router).
const ECHO_WAIT: Duration = Duration::from_secs(5);

/// Pings sent on and not yet answered at most (each waits on a thread of its own); past it
/// echo requests are dropped, as a router rate-limits.
const MAX_PINGS: usize = 64;

/// How many datagrams a flow keeps while its association is made.
const ASSOCIATING_QUEUE: usize = 16;

/// What a thread making a UDP association reports: the flow (client, original destination)
/// and the association or why there is none.
type Associated = (
    (SocketAddr, SocketAddr),
    Result<socks5::Association, String>,
);

/// The `--socks5` proxy, with the login of `--socks5-user` and `SYNACK_SOCKS5_PASSWORD`.
fn proxy(s: &str, user: Option<&str>) -> io::Result<socks5::Proxy> {
    use std::net::ToSocketAddrs;
    let addr = s
        .to_socket_addrs()
        .map_err(|e| bad(format!("--socks5 {s}: {e} (HOST:PORT expected)")))?
        .next()
        .ok_or_else(|| bad(format!("--socks5 {s}: no address")))?;
    let login = match user {
        None => None,
        Some(u) => match std::env::var(PASSWORD_VAR) {
            Ok(pass) => Some((u.to_string(), pass)),
            Err(_) => {
                return Err(bad(format!(
                    "--socks5-user {u}: the password goes in the environment variable \
                     {PASSWORD_VAR}, which is not set (or not UTF-8)"
                )));
            }
        },
    };
    socks5::Proxy::new(addr, login).map_err(bad)
}

/// Where `--socks5-user`'s password is read from.
const PASSWORD_VAR: &str = "SYNACK_SOCKS5_PASSWORD";

fn forward(args: Args) -> io::Result<()> {
    let cidrs: Vec<IpCidr> = args
        .addr
        .iter()
        .map(|a| a.trim().parse())
        .collect::<io::Result<_>>()?;
    let kernel: Vec<IpCidr> = args
        .kernel_addr
        .iter()
        .map(|a| a.trim().parse())
        .collect::<io::Result<_>>()?;
    let prefixes: Vec<IpCidr> = args
        .routes
        .iter()
        .map(|r| prefix(r))
        .collect::<io::Result<_>>()?;
    if cidrs.is_empty() {
        return Err(bad("--addr needs an address, like 198.18.0.2/24".into()));
    }
    let proxy = args
        .socks5
        .as_deref()
        .map(|s| proxy(s, args.socks5_user.as_deref()).map(Arc::new))
        .transpose()?;
    let mut b = Tun::builder(&args.tun)
        .mtu(args.mtu)
        .offload(!args.no_offload)
        .write_thread(true)
        .txqueuelen(args.txqueuelen);
    for &k in &kernel {
        b = b.kernel_addr(k);
    }
    if let Some(ns) = &args.netns {
        b = b.netns(ns);
    }
    let mut tun = b.open()?;
    for p in &prefixes {
        add_route(args.netns.as_deref(), &args.tun, p)?;
    }

    let mut secret = [0u8; 32];
    // A run's secret: the clock and the process id are enough here (ISNs, ports, cookies).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos()) as u64
        ^ u64::from(std::process::id()).rotate_left(32);
    let mut rng = synack::device::SimRng::new(seed);
    rng.fill_bytes(&mut secret);
    let mut stack = Stack::new(
        StackConfig {
            mtu: args.mtu,
            name: "synack".into(),
            ..StackConfig::default()
        },
        secret,
    );
    for &c in &cidrs {
        stack.add_address(c);
    }
    let fwd = stack.enable_forwarding(ForwardConfig {
        prefixes: prefixes.clone(),
        ..ForwardConfig::default()
    });

    let stop = Arc::new(AtomicBool::new(false));
    let waker = Waker::new()?;
    let io = Upstream::start(waker.clone())?;
    let (s, w) = (stop.clone(), waker.clone());
    ctrlc::set_handler(move || {
        s.store(true, Ordering::Relaxed);
        w.wake();
    })
    .map_err(io::Error::other)?;
    outln!(
        "synack forward: {} routed through {} (synack {}{}), upstream from this namespace{}",
        args.routes.join(", "),
        tun.name(),
        args.addr.join(", "),
        if kernel.is_empty() {
            String::new()
        } else {
            format!(", kernel side {}", args.kernel_addr.join(", "))
        },
        match &proxy {
            Some(p) => match p.user() {
                Some(u) => format!(" through SOCKS5 proxy {p} as {u}"),
                None => format!(" through SOCKS5 proxy {p}"),
            },
            None => String::new(),
        }
    );
    let _ = io::stdout().flush();

    let start = std::time::Instant::now();
    let clock = || Instant::ZERO + start.elapsed();
    let (tx, rx) = mpsc::channel::<Connected>();
    let mut tcp: HashMap<SocketHandle, TcpFlow> = HashMap::new();
    // The flows to look at this round: those the stack reports a change on (a segment, a
    // timer, a call) and those the upstream thread has news for; each round costs the
    // flows with something to do, not every flow.
    stack.report_changes(true);
    let mut work: Vec<SocketHandle> = Vec::new();
    let mut swept = clock();
    let mut udp: HashMap<(SocketAddr, SocketAddr), UdpUp> = HashMap::new();
    let (utx, urx) = mpsc::channel::<Associated>();
    let (etx, erx) = mpsc::channel::<(PendingId, IpAddr, io::Result<ping::Outcome>)>();
    let mut ping_trouble_told = false;
    let mut pings = 0usize;
    let mut wrapped = Vec::with_capacity(65536);
    let mut batch = UdpBatch::new();
    let mut udp_dropped = 0u64;
    let mut buf = vec![0u8; 65536];
    let (mut tcp_total, mut udp_total) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let now = clock();
        let mut busy = false;
        // Each packet straight from the device's buffers to the stack; a checksum the
        // device computed is not verified again.
        while tun
            .recv_with(&mut buf, |p, checksummed| {
                if checksummed {
                    stack.handle_packet_checksummed(now, p)
                } else {
                    stack.handle_packet(now, p)
                }
            })?
            .is_some()
        {
            busy = true;
        }
        stack.handle_timeout(now);

        while let Some(event) = stack.poll_forward() {
            busy = true;
            match event {
                ForwardEvent::Tcp(p) => {
                    let w = Waiting::Pending(p.id);
                    connect_upstream(
                        &tx,
                        &waker,
                        w,
                        (p.src, p.dst),
                        proxy.as_ref(),
                        args.connect_timeout,
                    );
                }
                // SOCKS5 carries no ICMP: nothing upstream would answer. Past MAX_PINGS
                // waiting, further pings are dropped.
                ForwardEvent::Echo(e) if proxy.is_some() || pings >= MAX_PINGS => {
                    let _ = stack.forward_echo_drop(e.id);
                }
                ForwardEvent::Echo(e) => {
                    pings += 1;
                    let (etx, waker) = (etx.clone(), waker.clone());
                    std::thread::spawn(move || {
                        let got = ping::ping(e.dst, e.ident, e.seq_no, &e.data, ECHO_WAIT);
                        let _ = etx.send((e.id, e.dst, got));
                        waker.wake();
                    });
                }
                ForwardEvent::UdpClosed { client, dst, .. } => {
                    udp.remove(&(client, dst));
                }
                _ => {}
            }
        }
        // Handshakes completed by SYN cookies (a flood filled the pending decisions).
        while let Ok(Some(h)) = stack.accept(fwd.tcp) {
            busy = true;
            if let Some(ends) = stack.connection(h).map(|c| (c.remote(), c.local())) {
                let w = Waiting::Cookie(h);
                connect_upstream(&tx, &waker, w, ends, proxy.as_ref(), args.connect_timeout);
            }
        }
        while let Ok((waiting, src, dst, up)) = rx.try_recv() {
            busy = true;
            let up = up.and_then(|s| match s.set_nonblocking(true) {
                Ok(()) => Ok(s),
                Err(e) => Err(Failure {
                    how: Refusal::Reset,
                    why: e.to_string(),
                }),
            });
            match up {
                Ok(up) => {
                    let h = match waiting {
                        Waiting::Pending(id) => stack.forward_accept(now, id),
                        Waiting::Cookie(h) => Ok(h),
                    };
                    if let Ok(h) = h {
                        let _ = up.set_nodelay(true);
                        tcp.insert(
                            h,
                            TcpFlow {
                                h,
                                shared: io.add(up, h),
                                client_done: false,
                                up_done: false,
                                backlog: false,
                                dead: false,
                            },
                        );
                        // What a cookie's connection received meanwhile.
                        work.push(h);
                        tcp_total += 1;
                    }
                }
                Err(f) => {
                    let told = match waiting {
                        // Established already by a cookie: all that is left to say is a RST.
                        Waiting::Cookie(h) => {
                            stack.abort(now, h);
                            Refusal::Reset
                        }
                        Waiting::Pending(id) => {
                            let _ = stack.forward_refuse(now, id, f.how);
                            f.how
                        }
                    };
                    if args.stats {
                        let told = match told {
                            Refusal::Reset => "a RST",
                            Refusal::Unreachable(Unreachable::Network) => {
                                "ICMP network unreachable"
                            }
                            Refusal::Unreachable(Unreachable::Host) => "ICMP host unreachable",
                            Refusal::Unreachable(Unreachable::Port) => "ICMP port unreachable",
                            Refusal::Unreachable(Unreachable::Prohibited) => "ICMP prohibited",
                        };
                        eprintln!(
                            "synack forward: {src} -> {dst} failed upstream: {}; the client gets {told}",
                            f.why
                        );
                    }
                }
            }
        }
        while let Some(h) = stack.poll_changed() {
            work.push(h);
        }
        io.take_news(&mut work);
        // Every flow once a second besides, whatever was reported: a safety net, cheap.
        if now.saturating_duration_since(swept) >= MAX_WAIT {
            swept = now;
            work.extend(tcp.keys());
        }
        work.sort_unstable();
        work.dedup();
        for h in work.drain(..) {
            let Some(f) = tcp.get_mut(&h) else {
                continue;
            };
            busy |= pump_tcp(&mut stack, now, f, &io);
            // Its changes were looked at (our own calls on it count as changes too).
            stack.settled(h);
            let done = f.client_done && f.up_done && !f.backlog;
            let gone = stack.connection(h).is_none();
            if gone && !done && !f.dead {
                // The connection ended without both FINs (timed out, say): so does upstream.
                f.shared.lock().reset = true;
                io.mark(&f.shared);
            }
            if done || gone || f.dead {
                stack.close(now, h);
                tcp.remove(&h);
            }
        }
        while stack.poll_udp_changed().is_some() {}

        while let Ok((id, dst, got)) = erx.try_recv() {
            busy = true;
            pings -= 1;
            let _ = match got {
                Ok(ping::Outcome::Reply) => stack.forward_echo_reply(id),
                Ok(ping::Outcome::Unreachable(u)) => stack.forward_echo_refuse(id, u),
                Ok(ping::Outcome::Silent) => stack.forward_echo_drop(id),
                Err(e) => {
                    // Once: the reason is the same for every ping (no CAP_NET_RAW, say).
                    if !ping_trouble_told {
                        ping_trouble_told = true;
                        eprintln!(
                            "synack forward: pings cannot be sent on ({dst}: {e}); they are dropped"
                        );
                    }
                    stack.forward_echo_drop(id)
                }
            };
        }
        while let Ok((key, made)) = urx.try_recv() {
            busy = true;
            let (client, dst) = key;
            let Some(UdpUp::Associating(queued)) = udp.remove(&key) else {
                continue; // the flow ended meanwhile
            };
            match made {
                Ok(a) => {
                    for d in &queued {
                        socks5::udp_wrap(&mut wrapped, dst, d);
                        let _ = a.relay.send(&wrapped);
                    }
                    udp.insert(key, UdpUp::Socks(a));
                }
                Err(why) => {
                    // The UDP analogue of the RST a failed CONNECT gives.
                    let _ = stack.forward_udp_refuse(client, dst, Unreachable::Port);
                    if args.stats {
                        eprintln!(
                            "synack forward: UDP {client} -> {dst} failed upstream: {why}; the client gets ICMP port unreachable"
                        );
                    }
                }
            }
        }
        // The client's datagrams, a batch at a time; each flow's run of them goes upstream
        // in one sendmmsg(2).
        while batch.fill(&mut stack, fwd.udp) {
            busy = true;
            let mut i = 0;
            while i < batch.items.len() {
                let key = batch.items[i].0;
                let run = batch.items[i..]
                    .iter()
                    .take_while(|item| item.0 == key)
                    .count();
                let datagrams = batch.items[i..i + run]
                    .iter()
                    .map(|&(_, at, len)| &batch.arena[at..at + len]);
                i += run;
                let (client, dst) = key;
                let up = match udp.entry(key) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        udp_total += 1;
                        if let Some(p) = &proxy {
                            // One association per client flow (RFC 1928 §7), made on a thread.
                            let (utx, limit, p) = (utx.clone(), args.connect_timeout, p.clone());
                            let waker = waker.clone();
                            std::thread::spawn(move || {
                                let _ = utx.send((key, socks5::associate(&p, limit)));
                                waker.wake();
                            });
                            v.insert(UdpUp::Associating(Vec::new()))
                        } else {
                            match udp_upstream(dst) {
                                Ok(s) => v.insert(UdpUp::Direct(s)),
                                Err(_) => {
                                    let _ =
                                        stack.forward_udp_refuse(client, dst, Unreachable::Network);
                                    continue;
                                }
                            }
                        }
                    }
                };
                match up {
                    UdpUp::Direct(sock) => match send_datagrams(sock, datagrams) {
                        Ok(dropped) => udp_dropped += dropped,
                        Err(_) => {
                            let _ = stack.forward_udp_refuse(client, dst, Unreachable::Port);
                            udp.remove(&key);
                        }
                    },
                    // A few datagrams wait for the association; past that they are dropped.
                    UdpUp::Associating(q) => {
                        for d in datagrams {
                            if q.len() < ASSOCIATING_QUEUE {
                                q.push(d.to_vec());
                            }
                        }
                    }
                    UdpUp::Socks(a) => {
                        for d in datagrams {
                            socks5::udp_wrap(&mut wrapped, dst, d);
                            let _ = a.relay.send(&wrapped);
                        }
                    }
                }
            }
        }
        let (mut refused, mut ended) = (Vec::new(), Vec::new());
        for (&(client, dst), up) in &mut udp {
            match up {
                UdpUp::Direct(s) => {
                    for _ in 0..64 {
                        match s.recv(&mut buf) {
                            Ok(n) => {
                                busy = true;
                                let _ = stack.send_from(now, fwd.udp, &buf[..n], dst, client);
                            }
                            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                                refused.push((client, dst));
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
                UdpUp::Associating(_) => {}
                UdpUp::Socks(a) => {
                    while let Ok(n) = a.relay.recv(&mut buf) {
                        busy = true;
                        // Only what comes from the flow's destination is the flow's.
                        match socks5::udp_unwrap(&buf[..n]) {
                            Some((from, at))
                                if from.port() == dst.port()
                                    && from.ip().to_canonical() == dst.ip() =>
                            {
                                let _ = stack.send_from(now, fwd.udp, &buf[at..n], dst, client);
                            }
                            _ => {}
                        }
                    }
                    // The association lasts as long as its control connection (RFC 1928 §7).
                    match a.control.read(&mut buf[..1]) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        _ => ended.push((client, dst)),
                    }
                }
            }
        }
        for (client, dst) in refused {
            let _ = stack.forward_udp_refuse(client, dst, Unreachable::Port);
            udp.remove(&(client, dst));
        }
        for key in ended {
            udp.remove(&key);
        }

        // Each packet built straight into the device's queue; one the device refuses is
        // dropped, as on a NIC (TCP retransmits).
        while tun
            .send_with(now, &mut buf, |b| stack.poll_transmit(now, b))
            .unwrap_or(true)
        {
            busy = true;
        }
        tun.flush(now)?;
        // Changes made since the flows were looked at: another round, not a sleep.
        while let Some(h) = stack.poll_changed() {
            work.push(h);
            busy = true;
        }
        if !busy {
            let deadline = [stack.poll_timeout(), tun.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let timeout = deadline.map(|d| d.saturating_duration_since(clock()));
            wait(&waker, &tun, &udp, timeout)?;
        }
    }
    outln!(
        "synack forward: stopped; {tcp_total} TCP and {udp_total} UDP flows carried, {} TCP and {} UDP still open",
        tcp.len(),
        udp.len()
    );
    if args.stats {
        outln!(
            "synack forward: {udp_dropped} UDP datagrams dropped upstream (socket send buffer full), {} packets the TUN device refused",
            tun.write_errors()
        );
        out!("synack forward: counters\n{}", stack.counters());
        outln!("synack forward: end of counters");
    }
    Ok(())
}

/// Datagrams taken from the stack's forwarder socket in one round, at most.
const UDP_BATCH: usize = 64;
/// Room for them: the largest datagram (65,535 bytes) always fits in what is left of it.
const UDP_BATCH_BYTES: usize = 512 << 10;
const MAX_DATAGRAM: usize = 1 << 16;

/// The socket buffers of each direct UDP flow's upstream socket (Linux's default is
/// 208 KiB, `net.core.rmem_default`): 2 MiB, forced past `net.core.rmem_max` (synack
/// forward runs with CAP_NET_ADMIN), so that a burst of replies waits for the forwarding loop
/// instead of being dropped. The kernel charges only what is queued.
const UDP_SOCKET_BUFFER: usize = 2 << 20;

/// The client's datagrams of one round: their flows and where each lies in `arena`.
struct UdpBatch {
    arena: Vec<u8>,
    items: Vec<((SocketAddr, SocketAddr), usize, usize)>,
}

impl UdpBatch {
    fn new() -> UdpBatch {
        UdpBatch {
            arena: vec![0; UDP_BATCH_BYTES],
            items: Vec::with_capacity(UDP_BATCH),
        }
    }

    /// Takes the datagrams waiting on the stack's socket `h`, up to a batch; false if none.
    fn fill(&mut self, stack: &mut Stack, h: synack::stack::UdpHandle) -> bool {
        self.items.clear();
        let mut used = 0;
        while self.items.len() < UDP_BATCH && used + MAX_DATAGRAM <= self.arena.len() {
            let Ok(m) = stack.recv_from(h, &mut self.arena[used..used + MAX_DATAGRAM]) else {
                break;
            };
            self.items.push(((m.src, m.dst), used, m.len));
            used += m.len;
        }
        !self.items.is_empty()
    }
}

/// A direct UDP flow's upstream socket: bound to any address of `dst`'s family, connected
/// to it, non-blocking, with [`UDP_SOCKET_BUFFER`]s.
fn udp_upstream(dst: SocketAddr) -> io::Result<UdpSocket> {
    use rustix::net::sockopt;
    let any = match dst.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let s = UdpSocket::bind((any, 0))?;
    // Without CAP_NET_ADMIN, as large as net.core.{r,w}mem_max allow.
    if sockopt::set_socket_recv_buffer_size_force(&s, UDP_SOCKET_BUFFER).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(&s, UDP_SOCKET_BUFFER);
    }
    if sockopt::set_socket_send_buffer_size_force(&s, UDP_SOCKET_BUFFER).is_err() {
        let _ = sockopt::set_socket_send_buffer_size(&s, UDP_SOCKET_BUFFER);
    }
    s.connect(dst)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Sends `datagrams` on the connected `sock`, as many per sendmmsg(2) as it takes. What the socket does not take now (its send buffer full) or refuses
/// one by one (too long) is dropped, as a full queue drops: the count of those is returned.
/// An error only for ICMP port unreachable from upstream (`ECONNREFUSED`).
fn send_datagrams<'a>(
    sock: &UdpSocket,
    datagrams: impl Iterator<Item = &'a [u8]>,
) -> io::Result<u64> {
    use rustix::io::Errno;
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, sendmmsg};
    let iovs: Vec<[io::IoSlice<'a>; 1]> = datagrams.map(|d| [io::IoSlice::new(d)]).collect();
    let n = iovs.len();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
        (0..n).map(|_| SendAncillaryBuffer::default()).collect();
    let mut msgs: Vec<MMsgHdr<'_>> = iovs
        .iter()
        .zip(controls.iter_mut())
        .map(|(iov, c)| MMsgHdr::new(iov, c))
        .collect();
    let (mut sent, mut dropped) = (0, 0u64);
    while sent < n {
        match sendmmsg(sock, &mut msgs[sent..], SendFlags::empty()) {
            Ok(0) | Err(Errno::AGAIN) => {
                dropped += (n - sent) as u64;
                break;
            }
            Ok(k) => sent += k,
            Err(Errno::INTR) => {}
            Err(Errno::CONNREFUSED) => return Err(Errno::CONNREFUSED.into()),
            Err(_) => {
                sent += 1;
                dropped += 1;
            }
        }
    }
    Ok(dropped)
}

/// The longest the loop sleeps with nothing due (a bound, not a poll interval: every event
/// it waits for wakes it).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Sleeps in poll(2) until there is work: the TUN device readable, a UDP flow's upstream
/// socket readable, the waker (the upstream thread, a finished upstream connection or
/// association, Ctrl-C), or `timeout` (the stack's next timer).
fn wait(
    waker: &Waker,
    tun: &Tun,
    udp: &HashMap<(SocketAddr, SocketAddr), UdpUp>,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let mut fds = Vec::with_capacity(2 + 2 * udp.len());
    fds.push(PollFd::new(&*waker.0, PollFlags::IN));
    if let Some(fd) = tun.readable_fd() {
        fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
    }
    for up in udp.values() {
        match up {
            UdpUp::Direct(s) => fds.push(PollFd::new(s, PollFlags::IN)),
            UdpUp::Associating(_) => {}
            UdpUp::Socks(a) => {
                fds.push(PollFd::new(&a.relay, PollFlags::IN));
                fds.push(PollFd::new(&a.control, PollFlags::IN));
            }
        }
    }
    let t = timeout.unwrap_or(MAX_WAIT).min(MAX_WAIT);
    let ts = Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: t.subsec_nanos().into(),
    };
    match poll(&mut fds, Some(&ts)) {
        // A signal (Ctrl-C) just means look again.
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    if fds[0].revents().contains(PollFlags::IN) {
        waker.clear();
    }
    Ok(())
}

/// Moves what can move between the stack's connection and the flow's queues (the upstream
/// thread does the upstream socket's side); true if anything did.
fn pump_tcp(stack: &mut Stack, now: Instant, f: &mut TcpFlow, io: &Upstream) -> bool {
    let news = f.shared.for_stack.swap(false, Ordering::Acquire);
    let readable = !f.client_done && stack.connection(f.h).is_some_and(|c| c.is_readable());
    if !news && !readable && !f.backlog {
        return false;
    }
    let shared = f.shared.clone();
    let mut st = shared.lock();
    if st.reset {
        stack.abort(now, f.h);
        f.dead = true;
        return true;
    }
    let mut moved = false;
    let mut wake = false;
    // Client to upstream, straight into the queue.
    while !f.client_done && st.to_up.len() < QUEUE_CAP {
        let Some(queued) = stack
            .connection(f.h)
            .filter(|c| c.is_readable())
            .map(|c| c.recv_queue_len())
        else {
            break;
        };
        let was_empty = st.to_up.is_empty();
        // Room for what is there (at least a byte, for the FIN): an idle flow's few bytes
        // take a few bytes of memory.
        let room = st.to_up.room_in(io.pool(), queued.clamp(1, CHUNK));
        match stack.recv(now, f.h, room) {
            Ok(0) => {
                // The client's FIN: a half-close upstream once the queue is written.
                f.client_done = true;
                st.client_fin = true;
                wake = true;
            }
            Ok(n) => {
                st.to_up.commit(n);
                wake |= was_empty;
            }
            Err(_) => {
                // Reset by the client.
                f.kill(stack, now, &mut st, io);
                return true;
            }
        }
        moved = true;
    }
    st.stack_blocked = !f.client_done && st.to_up.len() >= QUEUE_CAP;
    // Upstream to client, once the connection is synchronized.
    let established = stack
        .connection(f.h)
        .is_some_and(|c| c.state().is_synchronized());
    if established && !f.up_done {
        while !st.to_client.is_empty() {
            match stack.send(now, f.h, st.to_client.data()) {
                Ok(0) => break,
                Ok(n) => {
                    st.to_client.consume(n);
                    st.to_client.release(io.pool());
                    moved = true;
                }
                Err(_) => {
                    // The client takes nothing more: upstream is not read further.
                    f.up_done = true;
                    let all = st.to_client.len();
                    st.to_client.consume(all);
                    st.to_client.release(io.pool());
                    st.stop_reading = true;
                    wake = true;
                    break;
                }
            }
        }
        if st.up_blocked && st.to_client.half_empty() {
            st.up_blocked = false;
            wake = true;
        }
        if !f.up_done && st.up_eof && st.to_client.is_empty() {
            f.up_done = true;
            let _ = stack.shutdown(now, f.h, Shutdown::Write);
            moved = true;
        }
    }
    f.backlog = !st.to_client.is_empty() || (st.up_eof && !f.up_done);
    drop(st);
    if wake {
        io.mark(&f.shared);
    }
    moved
}
