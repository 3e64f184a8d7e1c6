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
//! It is built on the library's forwarder API, as any tun2socks engine on synack would be:
//! the stack and the TUN device belong to a [`Runtime`]'s driver thread (the device's
//! offloads on, TCP super-segments taken whole, unless `--no-offload`; its writes on a thread
//! of their own, [`TunBuilder::write_thread`](synack::device::tun::TunBuilder::write_thread),
//! as a TUN write runs the client's whole receive path in the writer's context), and each
//! flow is a task on one tokio worker thread through [`synack::tokio`]: the
//! [`ForwardListener`]'s events (TCP flows, SYN-cookie connections, echo requests, UDP flow
//! ends) and the forwarder [`UdpSocket`](synack::tokio::UdpSocket)'s datagrams. A TCP flow's
//! task makes its upstream connection (its SOCKS5 handshake, with an RFC 1929 login when
//! configured, on a blocking thread), then accepts or refuses the flow, then copies bytes
//! both ways ([`copy`]).
//!
//! UDP in bulk: the client's datagrams come off the forwarder socket in batches
//! ([`recv_many`](synack::tokio::UdpSocket::recv_many)), each flow's run of them goes
//! upstream in one sendmmsg(2), and each flow's replies go back in batches
//! ([`send_many`](synack::tokio::UdpSocket::send_many)); an upstream that cannot be opened
//! or that answers ICMP port unreachable refuses the flow
//! ([`refuse_flow`](synack::tokio::UdpSocket::refuse_flow)). The TUN interface's transmit
//! queue is 4,096 packets (`--txqueuelen`; the kernel's default is 500), so that the kernel
//! holds the datagrams that arrive while synack is scheduled out, and each direct UDP flow's
//! upstream socket has 2 MiB send and receive buffers (forced past `net.core.{r,w}mem_max`).
//! `--stats` counts the datagrams an upstream socket could not take.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use synack::device::tun::Tun;
use synack::net::{Datagram, Runtime};
use synack::stack::{ForwardConfig, IpCidr, Refusal, Unreachable};
use synack::tokio::{ForwardListener, Forwarded, PendingFlow};
use synack::units;

mod copy;
mod ping;
mod socks5;
use socks5::Failure;

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

/// How long a ping sent on waits for its reply or an error: past the 3 s in which the
/// kernel gives up on a neighbour that does not answer (and reports host unreachable, which
/// the client then gets, as from a Linux router).
const ECHO_WAIT: Duration = Duration::from_secs(5);

/// Pings sent on and not yet answered at most (each waits on a thread of its own); past it
/// echo requests are dropped, as a router rate-limits.
const MAX_PINGS: usize = 64;

/// How many datagrams a flow keeps while its association is made.
const ASSOCIATING_QUEUE: usize = 16;

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
    let tun = b.open()?;
    for p in &prefixes {
        add_route(args.netns.as_deref(), &args.tun, p)?;
    }
    let tun_name = tun.name().to_string();

    // The flows' tasks (and their upstream sockets) on one tokio worker thread (SOCKS5
    // handshakes and pings on tokio's blocking threads); the stack on the runtime's own
    // thread, the TUN device's writes on a thread of their own.
    let tk = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let addrs: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
    let rt = Runtime::builder()
        .host("synack", &addrs.join(","))
        .mtu(args.mtu)
        .device(tun)
        // A flow's bytes cross between its tasks and the runtime's driver in these: as
        // large as a copy's reads (copy::BUFFER), one driver turn moves a whole read.
        .stream_buffers(copy::BUFFER, copy::BUFFER)
        .build()?;
    let host = rt.host("synack").expect("the runtime's only host");
    let cfg = ForwardConfig {
        prefixes: prefixes.clone(),
        ..ForwardConfig::default()
    };
    let _in_tokio = tk.enter();
    // The UDP socket first: the forward listener reconfigures what it turned on.
    let relay = Arc::new(synack::tokio::UdpSocket::forwarder_on(&host, cfg.clone())?);
    let events = tk.block_on(ForwardListener::bind_on(&host, cfg))?;

    let stop = Arc::new(tokio::sync::Notify::new());
    let s = stop.clone();
    ctrlc::set_handler(move || s.notify_one()).map_err(io::Error::other)?;
    outln!(
        "synack forward: {} routed through {} (synack {}{}), upstream from this namespace{}",
        args.routes.join(", "),
        tun_name,
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

    let fwd = Arc::new(Forwarder {
        proxy,
        limit: args.connect_timeout,
        stats: args.stats,
        relay,
        udp: Mutex::default(),
        tcp_total: AtomicU64::new(0),
        tcp_open: AtomicU64::new(0),
        udp_total: AtomicU64::new(0),
        udp_dropped: AtomicU64::new(0),
        pings: AtomicUsize::new(0),
        ping_trouble_told: AtomicBool::new(false),
    });
    tk.spawn(udp_to_upstream(fwd.clone()));
    let f = fwd.clone();
    tk.block_on(async move {
        loop {
            tokio::select! {
                () = stop.notified() => break,
                e = events.next_event() => match e {
                    Ok(e) => f.event(e),
                    Err(_) => break,
                },
            }
        }
    });
    let udp_open = fwd.udp.lock().expect("flows").len();
    outln!(
        "synack forward: stopped; {} TCP and {} UDP flows carried, {} TCP and {udp_open} UDP still open",
        fwd.tcp_total.load(Ordering::Relaxed),
        fwd.udp_total.load(Ordering::Relaxed),
        fwd.tcp_open.load(Ordering::Relaxed),
    );
    if args.stats {
        outln!(
            "synack forward: {} UDP datagrams dropped upstream (socket send buffer full), {} packets the TUN device refused",
            fwd.udp_dropped.load(Ordering::Relaxed),
            rt.device_stats().tx_errors
        );
        out!("synack forward: counters\n{}", host.counters());
        outln!("synack forward: end of counters");
    }
    // The flows' tasks go first (their upstream sockets close), then the stack and the TUN
    // device: the shutdown waits for the tasks to be dropped, for a second at most (a
    // blocking SOCKS5 handshake or ping may still hold its thread then).
    drop(_in_tokio);
    tk.shutdown_timeout(Duration::from_secs(1));
    fwd.udp.lock().expect("flows").clear();
    drop(rt);
    Ok(())
}

/// A UDP flow's key: the client and the original destination.
type UdpKey = (SocketAddr, SocketAddr);

/// What the flows' tasks share.
struct Forwarder {
    proxy: Option<Arc<socks5::Proxy>>,
    limit: Duration,
    stats: bool,
    /// The stack's forwarder socket: every UDP flow's datagrams.
    relay: Arc<synack::tokio::UdpSocket>,
    /// The UDP flows being carried, by client and original destination.
    udp: Mutex<HashMap<UdpKey, UdpFlow>>,
    tcp_total: AtomicU64,
    tcp_open: AtomicU64,
    udp_total: AtomicU64,
    udp_dropped: AtomicU64,
    /// Pings sent on and not answered yet.
    pings: AtomicUsize,
    ping_trouble_told: AtomicBool,
}

impl Forwarder {
    /// What the forward listener hands out: a TCP flow gets a task, which connects upstream
    /// and then copies; an echo request is sent on (on a thread: a blocking raw socket); a
    /// UDP flow the stack ended (idle, refused) closes its upstream.
    fn event(self: &Arc<Self>, e: Forwarded) {
        match e {
            Forwarded::Flow(flow) => {
                tokio::spawn(self.clone().tcp_flow(Box::new(flow)));
            }
            // SOCKS5 carries no ICMP: nothing upstream would answer. Past MAX_PINGS waiting,
            // further pings are dropped.
            Forwarded::Echo(e)
                if self.proxy.is_some() || self.pings.load(Ordering::Relaxed) >= MAX_PINGS =>
            {
                tokio::spawn(e.ignore());
            }
            Forwarded::Echo(e) => {
                self.pings.fetch_add(1, Ordering::Relaxed);
                let f = self.clone();
                tokio::spawn(async move {
                    let (dst, (ident, seq), data) =
                        (e.destination(), e.ident_seq(), e.data().to_vec());
                    let got = tokio::task::spawn_blocking(move || {
                        ping::ping(dst, ident, seq, &data, ECHO_WAIT)
                    })
                    .await
                    .unwrap_or_else(|j| Err(io::Error::other(j)));
                    f.pings.fetch_sub(1, Ordering::Relaxed);
                    let _ = match got {
                        Ok(ping::Outcome::Reply) => e.reply().await,
                        Ok(ping::Outcome::Unreachable(u)) => e.refuse(u).await,
                        Ok(ping::Outcome::Silent) => e.ignore().await,
                        Err(why) => {
                            // Once: the reason is the same for every ping (no CAP_NET_RAW, say).
                            if !f.ping_trouble_told.swap(true, Ordering::Relaxed) {
                                eprintln!(
                                    "synack forward: pings cannot be sent on ({dst}: {why}); they are dropped"
                                );
                            }
                            e.ignore().await
                        }
                    };
                });
            }
            Forwarded::UdpClosed { client, dst, .. } => {
                self.udp.lock().expect("flows").remove(&(client, dst));
            }
            _ => {}
        }
    }

    /// One TCP flow: its upstream connection (through the proxy when there is one), then,
    /// accepted, the bytes copied both ways with half-closes; refused as upstream refused
    /// it when it cannot be made. The flow comes boxed and its opening runs boxed: the task
    /// of a flow carried for hours keeps room only for the copy, not for the pending flow
    /// or the opening's state.
    async fn tcp_flow(self: Arc<Self>, flow: Box<PendingFlow>) {
        // The box moves into the opening (freed with it, not kept by this task).
        let Some((mut client, mut up)) = Box::pin(self.open(flow)).await else {
            return;
        };
        self.tcp_total.fetch_add(1, Ordering::Relaxed);
        self.tcp_open.fetch_add(1, Ordering::Relaxed);
        // Each side's FIN is passed on as a half-close once its bytes are; a reset or an
        // error on either side resets both: a FIN upstream would tell the server that a
        // request the client abandoned ended normally.
        let copied = {
            let (cr, cw) = client.split();
            let (ur, uw) = up.split();
            tokio::try_join!(copy::one_way(cr, uw), copy::into_synack(ur, cw))
        };
        if copied.is_err() {
            client.abort();
            // No linger: the drop below sends a RST, as the kernel does for a socket closed
            // with unread data or SO_LINGER 0 (RFC 9293 3.10.4, ABORT).
            let _ = up.set_zero_linger();
        }
        self.tcp_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A TCP flow's upstream connection, then the flow accepted; refused as upstream
    /// refused it when the connection cannot be made.
    async fn open(
        &self,
        flow: Box<PendingFlow>,
    ) -> Option<(synack::tokio::TcpStream, tokio::net::TcpStream)> {
        let flow = *flow;
        let (src, dst) = (flow.source(), flow.destination());
        let up = self.upstream(dst).await;
        let up = match up {
            Ok(up) => up,
            Err(f) => {
                // Established already by a SYN cookie: all that is left to say is a RST.
                let told = if flow.is_established() {
                    Refusal::Reset
                } else {
                    f.how
                };
                let _ = flow.refuse(told).await;
                if self.stats {
                    let told = match told {
                        Refusal::Reset => "a RST",
                        Refusal::Unreachable(Unreachable::Network) => "ICMP network unreachable",
                        Refusal::Unreachable(Unreachable::Host) => "ICMP host unreachable",
                        Refusal::Unreachable(Unreachable::Port) => "ICMP port unreachable",
                        Refusal::Unreachable(Unreachable::Prohibited) => "ICMP prohibited",
                    };
                    eprintln!(
                        "synack forward: {src} -> {dst} failed upstream: {}; the client gets {told}",
                        f.why
                    );
                }
                return None;
            }
        };
        let _ = up.set_nodelay(true);
        let client = flow.accept().await.ok()?;
        Some((client, up))
    }

    /// Connects upstream to `dst`: directly, or through the SOCKS5 proxy.
    async fn upstream(&self, dst: SocketAddr) -> Result<tokio::net::TcpStream, Failure> {
        match &self.proxy {
            None => tokio::time::timeout(self.limit, tokio::net::TcpStream::connect(dst))
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
                .map_err(|e| Failure {
                    how: match e.kind() {
                        io::ErrorKind::ConnectionRefused => Refusal::Reset,
                        io::ErrorKind::NetworkUnreachable => {
                            Refusal::Unreachable(Unreachable::Network)
                        }
                        _ => Refusal::Unreachable(Unreachable::Host),
                    },
                    why: e.to_string(),
                }),
            Some(p) => {
                let (p, limit) = (p.clone(), self.limit);
                tokio::task::spawn_blocking(move || socks5::connect(&p, dst, limit))
                    .await
                    .unwrap_or_else(|j| {
                        Err(Failure {
                            how: Refusal::Reset,
                            why: j.to_string(),
                        })
                    })
                    .and_then(|s| {
                        s.set_nonblocking(true)
                            .and_then(|()| tokio::net::TcpStream::from_std(s))
                            .map_err(|e| Failure {
                                how: Refusal::Reset,
                                why: e.to_string(),
                            })
                    })
            }
        }
    }
}

/// A forwarded UDP flow's upstream: a socket of its own, or a SOCKS5 association; the task
/// that carries its replies back to the client ends with it.
struct UdpFlow {
    up: UdpUp,
    back: Option<tokio::task::AbortHandle>,
}

impl Drop for UdpFlow {
    fn drop(&mut self) {
        if let Some(t) = &self.back {
            t.abort();
        }
    }
}

enum UdpUp {
    /// The sending side of its socket (the task that reads replies has the other).
    Direct(UdpSocket),
    /// The association is being made; the client's datagrams wait.
    Associating(Vec<Vec<u8>>),
    Socks(Arc<socks5::Association>),
}

/// The client's datagrams in batches off the forwarder socket; each flow's run of them goes
/// upstream in one sendmmsg(2) (or through its association). A flow's first datagram opens
/// its upstream; one that cannot be opened, or that upstream refuses (ICMP port
/// unreachable), is refused back to the client.
async fn udp_to_upstream(f: Arc<Forwarder>) {
    let mut wrapped = Vec::with_capacity(65536);
    let mut refuse: Vec<(UdpKey, Unreachable)> = Vec::new();
    loop {
        let Ok(batch) = f.relay.recv_many(UDP_BATCH).await else {
            return; // the runtime stopped
        };
        {
            let mut flows = f.udp.lock().expect("flows");
            let mut i = 0;
            while i < batch.len() {
                let key = (batch[i].src, batch[i].dst);
                let run = batch[i..]
                    .iter()
                    .take_while(|d| (d.src, d.dst) == key)
                    .count();
                let datagrams = batch[i..i + run].iter().map(|d| &d.data[..]);
                i += run;
                let dst = key.1;
                let flow = match flows.entry(key) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(v) => {
                        f.udp_total.fetch_add(1, Ordering::Relaxed);
                        if f.proxy.is_some() {
                            associate(&f, key);
                            v.insert(UdpFlow {
                                up: UdpUp::Associating(Vec::new()),
                                back: None,
                            })
                        } else {
                            match udp_upstream(dst).and_then(|s| {
                                let back = tokio::net::UdpSocket::from_std(s.try_clone()?)?;
                                Ok((s, back))
                            }) {
                                Ok((s, back)) => {
                                    let task = tokio::spawn(udp_direct_back(f.clone(), key, back));
                                    v.insert(UdpFlow {
                                        up: UdpUp::Direct(s),
                                        back: Some(task.abort_handle()),
                                    })
                                }
                                Err(_) => {
                                    refuse.push((key, Unreachable::Network));
                                    continue;
                                }
                            }
                        }
                    }
                };
                match &mut flow.up {
                    UdpUp::Direct(sock) => match send_datagrams(sock, datagrams) {
                        Ok(dropped) => {
                            f.udp_dropped.fetch_add(dropped, Ordering::Relaxed);
                        }
                        Err(_) => {
                            flows.remove(&key);
                            refuse.push((key, Unreachable::Port));
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
        for ((client, dst), code) in refuse.drain(..) {
            let _ = f.relay.refuse_flow(client, dst, code).await;
        }
    }
}

/// Datagrams taken from the forwarder socket, or sent back to it, in one trip at most.
const UDP_BATCH: usize = 64;
const MAX_DATAGRAM: usize = 1 << 16;

/// A direct UDP flow's replies, back to the client from its original destination, as many
/// as are waiting in one trip; ICMP port unreachable from upstream refuses the flow.
async fn udp_direct_back(f: Arc<Forwarder>, (client, dst): UdpKey, up: tokio::net::UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut batch: Vec<Datagram> = Vec::with_capacity(UDP_BATCH);
    loop {
        match up.recv(&mut buf).await {
            Ok(n) => batch.push(reply(&buf[..n], dst, client)),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                f.udp.lock().expect("flows").remove(&(client, dst));
                let _ = f.relay.refuse_flow(client, dst, Unreachable::Port).await;
                return;
            }
            Err(_) => {
                // The flow's entry goes with its task: a datagram of the same client to the
                // same destination then opens a flow again, with a task for its replies.
                f.udp.lock().expect("flows").remove(&(client, dst));
                return;
            }
        }
        while batch.len() < UDP_BATCH {
            match up.try_recv(&mut buf) {
                Ok(n) => batch.push(reply(&buf[..n], dst, client)),
                Err(_) => break,
            }
        }
        // A batch the forwarder socket refuses (the flow ended meanwhile: its end, coming,
        // removes the entry and this task) is dropped; the task goes on, so an entry is
        // never left without its task for replies.
        let _ = send_back(&f, &batch).await;
        batch.clear();
    }
}

/// A datagram for the client from the flow's original destination.
fn reply(data: &[u8], from: SocketAddr, to: SocketAddr) -> Datagram {
    Datagram {
        data: data.to_vec(),
        src: from,
        dst: to,
    }
}

/// Sends `batch` to the clients through the forwarder socket, waiting for room.
async fn send_back(f: &Forwarder, batch: &[Datagram]) -> io::Result<()> {
    let mut sent = 0;
    while sent < batch.len() {
        sent += f.relay.send_many(&batch[sent..]).await?;
    }
    Ok(())
}

/// Makes the SOCKS5 association of the flow `key` on a thread; once made, the datagrams
/// that waited go through it and a task carries its replies back.
fn associate(f: &Arc<Forwarder>, key: UdpKey) {
    let (f, p) = (f.clone(), f.proxy.clone().expect("a proxy"));
    tokio::spawn(async move {
        let limit = f.limit;
        let made = tokio::task::spawn_blocking(move || socks5::associate(&p, limit))
            .await
            .unwrap_or_else(|j| Err(j.to_string()));
        let (client, dst) = key;
        match made {
            Ok(a) => {
                let back = a
                    .relay
                    .try_clone()
                    .and_then(tokio::net::UdpSocket::from_std)
                    .and_then(|r| {
                        let c = a.control.try_clone()?;
                        Ok((r, tokio::net::TcpStream::from_std(c)?))
                    });
                let Ok((relay, control)) = back else {
                    f.udp.lock().expect("flows").remove(&key);
                    return;
                };
                let a = Arc::new(a);
                let mut flows = f.udp.lock().expect("flows");
                let Some(flow) = flows.get_mut(&key) else {
                    return; // the flow ended meanwhile
                };
                let UdpUp::Associating(queued) =
                    std::mem::replace(&mut flow.up, UdpUp::Socks(a.clone()))
                else {
                    return;
                };
                let mut wrapped = Vec::new();
                for d in &queued {
                    socks5::udp_wrap(&mut wrapped, dst, d);
                    let _ = a.relay.send(&wrapped);
                }
                let task = tokio::spawn(udp_socks_back(f.clone(), key, relay, control));
                flow.back = Some(task.abort_handle());
            }
            Err(why) => {
                f.udp.lock().expect("flows").remove(&key);
                // The UDP analogue of the RST a failed CONNECT gives.
                let _ = f.relay.refuse_flow(client, dst, Unreachable::Port).await;
                if f.stats {
                    eprintln!(
                        "synack forward: UDP {client} -> {dst} failed upstream: {why}; the client gets ICMP port unreachable"
                    );
                }
            }
        }
    });
}

/// A SOCKS5 association's replies back to the client (only what comes from the flow's
/// destination is the flow's); the association lasts as long as its control connection
/// (RFC 1928 §7).
async fn udp_socks_back(
    f: Arc<Forwarder>,
    (client, dst): UdpKey,
    relay: tokio::net::UdpSocket,
    mut control: tokio::net::TcpStream,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut one = [0u8; 1];
    loop {
        tokio::select! {
            got = relay.recv(&mut buf) => {
                let Ok(n) = got else { break };
                let Some((from, at)) = socks5::udp_unwrap(&buf[..n]) else {
                    continue;
                };
                let ours = from.port() == dst.port() && from.ip().to_canonical() == dst.ip();
                if ours && send_back(&f, &[reply(&buf[at..n], dst, client)]).await.is_err() {
                    break;
                }
            }
            _ = control.read(&mut one) => break,
        }
    }
    f.udp.lock().expect("flows").remove(&(client, dst));
}

/// The socket buffers of each direct UDP flow's upstream socket (Linux's default is
/// 208 KiB, `net.core.rmem_default`): 2 MiB, forced past `net.core.rmem_max` (synack
/// forward runs with CAP_NET_ADMIN), so that a burst of replies waits for the forwarding loop
/// instead of being dropped. The kernel charges only what is queued.
const UDP_SOCKET_BUFFER: usize = 2 << 20;

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
