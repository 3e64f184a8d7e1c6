//! `synack forward` against the Linux kernel, as a tun2socks user runs it, in three network
//! namespaces the test creates (and always deletes): the client's, whose routes to
//! 198.19.0.0/24 and fd00:5ac:1::/64 go through synack's TUN device; synack's own, where it
//! opens the upstream sockets; and the server's, reached from synack's over a veth pair,
//! running an HTTP server, a UDP echo and a small SOCKS5 proxy (Python, below). The client
//! uses the kernel's curl, socat and Python's sockets.
//!
//! Needs root, `/dev/net/tun`, `ip`, `curl`, `socat`, `ping` and `python3` (and `iperf3` for
//! the throughput test). Without them the test
//! prints why and passes; with `CI=true` it fails instead. Nothing leaves the namespaces.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::*;

const TOOLS: &[&str] = &["ip", "curl", "socat", "python3", "ping"];

/// A SOCKS5 proxy (RFC 1928: CONNECT to an IPv4/IPv6 address, UDP ASSOCIATE) on port 1080
/// of both families. Given a username and a password as arguments it requires them (RFC
/// 1929 username/password, logging `LOGIN USER ok` or `LOGIN USER rejected`); without, no
/// authentication. It logs `CONNECT HOST PORT reply REP` for every
/// CONNECT and `UDP HOST PORT` for every datagram it relays out. CONNECT's failure replies
/// follow the errno of its own connect: refused 5, network unreachable 3, host unreachable 4,
/// anything else 1.
const SOCKS5_PROXY: &str = r#"
import socket, struct, sys, threading
login = sys.argv[1:3]
def log(*a): print(*a, flush=True)
def recvn(c, n):
    b = b''
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: raise EOFError('short request')
        b += d
    return b
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
        b.shutdown(socket.SHUT_WR)
    except OSError: pass
def udp_relay(u):
    client = None
    try:
        while True:
            d, src = u.recvfrom(65536)
            if client is None or src == client:
                client = src
                if d[:3] != b'\0\0\0' or d[3] not in (1, 4): continue
                n = 4 if d[3] == 1 else 16
                host = socket.inet_ntop(socket.AF_INET if n == 4 else socket.AF_INET6, d[4:4 + n])
                port = struct.unpack('!H', d[4 + n:6 + n])[0]
                log('UDP', host, port)
                u.sendto(d[6 + n:], ('::ffff:' + host if n == 4 else host, port))
            else:
                h = src[0]
                a = b'\x01' + socket.inet_aton(h[7:]) if h.startswith('::ffff:') \
                    else b'\x04' + socket.inet_pton(socket.AF_INET6, h)
                u.sendto(b'\0\0\0' + a + struct.pack('!H', src[1]) + d, client)
    except OSError: pass
def associate(c):
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(('::', 0))
    me = c.getsockname()[0]
    bnd = b'\x01' + socket.inet_aton(me[7:]) if me.startswith('::ffff:') \
        else b'\x04' + socket.inet_pton(socket.AF_INET6, me)
    c.sendall(b'\x05\x00\x00' + bnd + struct.pack('!H', u.getsockname()[1]))
    threading.Thread(target=udp_relay, args=(u,), daemon=True).start()
    c.recv(1)
def handle(c):
    try:
        _, n = recvn(c, 2)
        method = 2 if login else 0
        if method not in recvn(c, n):
            c.sendall(b'\x05\xff'); return
        c.sendall(bytes([5, method]))
        if login:
            _, n = recvn(c, 2); user = recvn(c, n).decode()
            n = recvn(c, 1)[0]; password = recvn(c, n).decode()
            ok = [user, password] == login
            log('LOGIN', user, 'ok' if ok else 'rejected')
            c.sendall(b'\x01' + (b'\x00' if ok else b'\x01'))
            if not ok: return
        _, cmd, _, atyp = recvn(c, 4)
        fam = {1: socket.AF_INET, 4: socket.AF_INET6}.get(atyp)
        if cmd not in (1, 3) or fam is None:
            c.sendall(bytes([5, 7 if cmd not in (1, 3) else 8, 0, 1]) + bytes(6)); return
        host = socket.inet_ntop(fam, recvn(c, 4 if atyp == 1 else 16))
        port = struct.unpack('!H', recvn(c, 2))[0]
        if cmd == 3: return associate(c)
        u = socket.socket(fam); u.settimeout(10)
        try: u.connect((host, port)); rep = 0
        except ConnectionRefusedError: rep = 5
        except OSError as e: rep = {101: 3, 113: 4}.get(e.errno, 1)
        log('CONNECT', host, port, 'reply', rep)
        c.sendall(bytes([5, rep, 0, 1]) + bytes(6))
        if rep: return
        u.settimeout(None)
        t = threading.Thread(target=pipe, args=(u, c), daemon=True); t.start()
        pipe(c, u); t.join(); u.close()
    except Exception as e: log('error', e)
    finally: c.close()
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', 1080)); s.listen(64); log('listening')
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

/// Python's `connect()` to `addr` (a Python tuple's inside) from `ns`: `connected`, or the
/// error's name, errno and the seconds it took.
fn connect_from(ns: &Netns, addr: &str) -> String {
    let code = format!(
        "import socket,time\nt=time.time()\na=({addr})\ns=socket.socket(socket.AF_INET6 if ':' in a[0] else socket.AF_INET)\n\
         s.settimeout(20)\ntry:\n  s.connect(a)\n  print('connected')\n\
         except OSError as e:\n  print(type(e).__name__, e.errno, round(time.time()-t))"
    );
    let out = ns.cmd("python3").args(["-c", &code]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// curl's download of `url` from `ns` into `got`, checked against `file` by SHA-256.
fn curl_checked(ns: &Netns, url: &str, got: &Path, file: &Path) {
    let _ = std::fs::remove_file(got);
    let out = ns
        .cmd("curl")
        .args(["-sS", "-m", "60", "-o"])
        .arg(got)
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {url}: {out:?}");
    assert_eq!(sha256_file(got), sha256_file(file), "{url}");
}

/// One datagram `TAG-TARGET` to socat's `target` (an echo) from `ns`; the same comes back.
fn udp_echo(ns: &Netns, target: &str, tag: &str) {
    let mut c = ns.cmd("sh");
    c.args([
        "-c",
        &format!("echo {tag}-{target} | timeout 5 socat -t 2 - {target}"),
    ]);
    let out = c.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{tag}-{target}"),
        "{out:?}"
    );
}

/// `ip ARGS` in `ns`.
fn ip(ns: &Netns, args: &[&str]) {
    run(Command::new("ip").arg("-n").arg(&ns.name).args(args));
}

/// The test's three namespaces, `TAG` + `c` (client), `m` (synack's) and `s` (server):
/// synack's and the server's joined by a veth pair, 198.19.0.1 and fd00:5ac:1::1 on synack's
/// side, 198.19.0.77 and fd00:5ac:1::77 on the server's.
fn three_namespaces(tag: &str) -> (Netns, Netns, Netns) {
    let (client, mid, server) = (
        Netns::new(&format!("{tag}c")),
        Netns::new(&format!("{tag}m")),
        Netns::new(&format!("{tag}s")),
    );
    ip(
        &mid,
        &[
            "link",
            "add",
            "skf-a",
            "type",
            "veth",
            "peer",
            "name",
            "skf-b",
            "netns",
            &server.name,
        ],
    );
    ip(&mid, &["addr", "add", "198.19.0.1/24", "dev", "skf-a"]);
    ip(
        &mid,
        &["addr", "add", "fd00:5ac:1::1/64", "dev", "skf-a", "nodad"],
    );
    ip(&mid, &["link", "set", "skf-a", "up"]);
    ip(&server, &["addr", "add", "198.19.0.77/24", "dev", "skf-b"]);
    ip(
        &server,
        &["addr", "add", "fd00:5ac:1::77/64", "dev", "skf-b", "nodad"],
    );
    ip(&server, &["link", "set", "skf-b", "up"]);

    (client, mid, server)
}

/// Python's HTTP server on port 80 of `server`, both families, serving `dir`.
fn http_server(server: &Netns, dir: &Path) -> Proc {
    let mut http = server.cmd("python3");
    http.args(["-m", "http.server", "80", "--bind", "::", "--directory"])
        .arg(dir);
    let proc = Proc::spawn(http, "python http.server");
    // It says nothing we can wait for (its banner is block-buffered into a pipe): wait until
    // port 80 listens, or a client started at once is refused on a loaded machine.
    wait_listening(server, 80, "python http.server");
    proc
}

/// Waits (up to 20 s) until a TCP socket listens on `port` in `ns`.
fn wait_listening(ns: &Netns, port: u16, what: &str) {
    let start = Instant::now();
    loop {
        let out = ns
            .cmd("ss")
            .args(["-Hltn", &format!("sport = :{port}")])
            .output()
            .unwrap();
        if !out.stdout.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not listen on port {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The tests of this file one at a time: each measures or loads the machine.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn curl_socat_and_refusals_through_synack_forward_in_both_families() {
    if !may_run(
        "curl_socat_and_refusals_through_synack_forward_in_both_families",
        TOOLS,
    ) {
        return;
    }
    let _serial = serial();
    let (client, mid, server) = three_namespaces("fw");

    let scratch = Scratch::new("forward");
    let file = scratch.random_file("f.bin", 8 << 20, 18);
    let _http = http_server(&server, scratch.root());
    let mut echo = server.cmd("socat");
    echo.args(["UDP6-RECVFROM:7,fork,ipv6only=0", "EXEC:cat"]);
    let _echo = Proc::spawn(echo, "socat UDP echo");
    // Counts what it reads until the client's FIN, then answers: a half-close both ways.
    let mut count = server.cmd("socat");
    count.args(["TCP6-LISTEN:9,fork,ipv6only=0,reuseaddr", "SYSTEM:wc -c"]);
    let _count = Proc::spawn(count, "socat TCP counter");

    let fwd = forwarder(&client, &mid, "skfw", &["--connect-timeout", "5s"]);
    // Let the servers bind.
    let ready = Instant::now() + Duration::from_secs(10);
    while Instant::now() < ready {
        let probe = mid
            .cmd("curl")
            .args(["-s", "-o", "/dev/null", "http://198.19.0.77/"])
            .status();
        if probe.is_ok_and(|s| s.success()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // 8 MiB over each family, checked by SHA-256.
    for url in ["http://198.19.0.77/f.bin", "http://[fd00:5ac:1::77]/f.bin"] {
        curl_checked(&client, url, &scratch.path("got.bin"), &file);
    }

    // A closed port upstream: the client's connect() is refused at once (a RST), not after
    // a handshake; a host that does not answer upstream (no ARP reply on the veth): the
    // client hears ICMP host unreachable (EHOSTUNREACH) when synack's own connect gives up.
    let connect = |addr: &str| connect_from(&client, addr);
    assert_eq!(connect("'198.19.0.77', 81"), "ConnectionRefusedError 111 0");
    let unreachable = connect("'198.19.0.99', 80");
    assert!(
        unreachable.starts_with("OSError 113 "),
        "EHOSTUNREACH expected: {unreachable}"
    );

    // Half-closes are carried: the client's FIN reaches the server, whose answer after it
    // reaches the client.
    let mut c = client.cmd("sh");
    c.args([
        "-c",
        "head -c 100000 /dev/zero | timeout 10 socat -t 5 - TCP:198.19.0.77:9",
    ]);
    let out = c.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "100000",
        "{out:?}"
    );

    // A client's reset reaches the server as a reset, not as a FIN that would say the
    // abandoned request ended normally: the server reads the client's bytes, then ECONNRESET.
    let code = "import socket\ns=socket.socket(socket.AF_INET6)\n\
         s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)\n\
         s.bind(('::',10)); s.listen(1); s.settimeout(20)\nc,_=s.accept(); c.settimeout(20)\nn=0\n\
         try:\n  while True:\n    b=c.recv(65536)\n    if not b: print('FIN', n); break\n    n+=len(b)\n\
         except OSError as e: print(type(e).__name__, n)";
    let mut reader = server.cmd("python3");
    reader.args(["-c", code]);
    let reader = reader.stdout(std::process::Stdio::piped()).spawn().unwrap();
    wait_listening(&server, 10, "the reset reader");
    let out = client
        .cmd("python3")
        .args([
            "-c",
            "import socket,struct,time\ns=socket.create_connection(('198.19.0.77',10),20)\n\
             s.sendall(bytes(1000)); time.sleep(1)\n\
             s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0)); s.close()",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let got = reader.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "ConnectionResetError 1000",
        "{got:?}"
    );

    // UDP both families: the echo comes back from the address the client sent to.
    for target in ["UDP4:198.19.0.77:7", "UDP6:[fd00:5ac:1::77]:7"] {
        udp_echo(&client, target, "forwarded");
    }

    // Pings are sent on and answered only when the destination answers: both families, one
    // of 3,000 bytes (fragments both ways); the host that is not there is reported host
    // unreachable, as a Linux router does when neighbour discovery gives up (about 3 s).
    let ping = |args: &[&str]| {
        let out = client
            .cmd("ping")
            .args(["-n", "-W", "8"])
            .args(args)
            .output();
        String::from_utf8_lossy(&out.unwrap().stdout).into_owned()
    };
    for (args, n) in [
        (&["-c", "2", "-i", "0.2", "198.19.0.77"][..], 2),
        (&["-6", "-c", "2", "-i", "0.2", "fd00:5ac:1::77"], 2),
        (&["-c", "1", "-s", "3000", "198.19.0.77"], 1),
    ] {
        let out = ping(args);
        let want = format!("{n} packets transmitted, {n} received, 0% packet loss");
        assert!(out.contains(&want), "ping {args:?}: {out}");
    }
    for absent in [&["198.19.0.99"][..], &["-6", "fd00:5ac:1::99"]] {
        let start = Instant::now();
        let out = ping(&[&["-c", "1"][..], absent].concat());
        let took = start.elapsed();
        assert!(
            out.contains("Destination Host Unreachable")
                || out.contains("Destination unreachable: Address unreachable"),
            "ping {absent:?}: {out}"
        );
        assert!(out.contains(" 0 received, +1 errors"), "{out}");
        // ~3 s of neighbour discovery; not ping's own 8 s wait.
        assert!(
            took < Duration::from_secs(6),
            "ping {absent:?} took {took:?}"
        );
    }

    fwd.signal("INT");
    let (ok, out, err) = fwd.finish(Duration::from_secs(10));
    assert!(ok, "{out}{err}");
    assert!(out.contains("synack forward: stopped"), "{out}");
    for counter in [
        "IcmpOutEchoReps",
        "Icmp6OutEchoReplies",
        "FwdTcpPending",
        "FwdRefused",
        "UdpInDatagrams",
        "Udp6InDatagrams",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(counter)),
            "{counter} in {out}"
        );
    }

    // The same through a SOCKS5 proxy in the server's namespace that wants a login (RFC
    // 1929, the password from the environment): every TCP flow is the proxy's CONNECT (its
    // log says so), its failure replies reach the client as a RST (refused) and ICMP host
    // unreachable; UDP goes through its UDP ASSOCIATE relay.
    let mut socks = server.cmd("python3");
    socks.args(["-c", SOCKS5_PROXY, "alice", "s3cret"]);
    let socks = Proc::spawn(socks, "SOCKS5 proxy");
    socks.wait_line(false, "listening", Duration::from_secs(10));
    let mut fwd = mid.cmd(synack_bin());
    fwd.args(["forward", "--tun", "sksx", "--netns", &client.name])
        .args(["--kernel-addr", "198.18.0.1/24,fd00:5ac::1/64"])
        .args(["--addr", "198.18.0.2/24,fd00:5ac::2/64"])
        .args(["--route", "198.19.0.0/24", "--route", "fd00:5ac:1::/64"])
        .args([
            "--socks5",
            "198.19.0.77:1080",
            "--socks5-user",
            "alice",
            "--connect-timeout",
            "5s",
            "--stats",
        ]);
    fwd.env("SYNACK_SOCKS5_PASSWORD", "s3cret");
    let fwd = Proc::spawn(fwd, "synack forward --socks5");
    fwd.wait_line(
        false,
        "through SOCKS5 proxy 198.19.0.77:1080 as alice",
        Duration::from_secs(10),
    );
    let log = |line: &str| socks.wait_line(false, line, Duration::from_secs(10));
    curl_checked(
        &client,
        "http://198.19.0.77/f.bin",
        &scratch.path("got.bin"),
        &file,
    );
    log("LOGIN alice ok");
    log("CONNECT 198.19.0.77 80 reply 0");
    curl_checked(
        &client,
        "http://[fd00:5ac:1::77]/f.bin",
        &scratch.path("got.bin"),
        &file,
    );
    log("CONNECT fd00:5ac:1::77 80 reply 0");
    assert_eq!(connect("'198.19.0.77', 81"), "ConnectionRefusedError 111 0");
    log("CONNECT 198.19.0.77 81 reply 5");
    assert_eq!(
        connect("'fd00:5ac:1::77', 81"),
        "ConnectionRefusedError 111 0"
    );
    log("CONNECT fd00:5ac:1::77 81 reply 5");
    let unreachable = connect("'198.19.0.99', 80");
    assert!(
        unreachable.starts_with("OSError 113 "),
        "EHOSTUNREACH expected: {unreachable}"
    );
    log("CONNECT 198.19.0.99 80 reply 4");
    for (target, host) in [
        ("UDP4:198.19.0.77:7", "198.19.0.77"),
        ("UDP6:[fd00:5ac:1::77]:7", "fd00:5ac:1::77"),
    ] {
        udp_echo(&client, target, "via-socks");
        log(&format!("UDP {host} 7"));
    }
    fwd.signal("INT");
    let (ok, out, err) = fwd.finish(Duration::from_secs(10));
    assert!(ok, "{out}{err}");
    for line in [
        "-> 198.19.0.77:81 failed upstream: SOCKS5 proxy 198.19.0.77:1080 answered connection refused (reply 0x05); the client gets a RST",
        "-> 198.19.0.99:80 failed upstream: SOCKS5 proxy 198.19.0.77:1080 answered host unreachable (reply 0x04); the client gets ICMP host unreachable",
    ] {
        assert!(err.lines().any(|l| l.ends_with(line)), "{line} in {err}");
    }
}

/// A TCP server on port 5000 for many concurrent flows (Python asyncio). Each flow starts
/// with a mode byte and a 4-byte length. `c`: the client half-closes first; the server reads
/// to the client's FIN, echoes everything, then sends its own FIN. `s`: the server
/// half-closes first; it reads the announced bytes, echoes them and sends its FIN, then
/// waits for the client's. `h`: hold the flow open until the client's FIN. Prints `error
/// ...` for a flow that breaks the protocol.
const FLOWS_SERVER: &str = r#"
import asyncio, resource
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
async def handle(r, w):
    try:
        hdr = await r.readexactly(5)
        mode, n = hdr[:1], int.from_bytes(hdr[1:], 'big')
        if mode == b'c':
            data = await r.read(-1)
            w.write(data); await w.drain(); w.write_eof()
        elif mode == b's':
            data = await r.readexactly(n)
            w.write(data); await w.drain(); w.write_eof()
            if await r.read(-1): print('error: bytes after the server FIN', flush=True)
        else:
            await r.read(-1)
    except Exception as e: print('error', repr(e), flush=True)
    finally: w.close()
async def main():
    s = await asyncio.start_server(handle, None, 5000, backlog=4096)
    print('listening', flush=True)
    await s.serve_forever()
asyncio.run(main())
"#;

/// The client side (`python3 -c FLOWS_CLIENT N HOST SEED MODE`): opens N flows to HOST:5000,
/// all at once (in waves of 500 connects), and when every one is connected runs them
/// concurrently. MODE `echo`: each flow sends 1 to 65,536 random bytes, in a random order of
/// half-closes (`c` or `s` above), and checks the echo byte for byte; prints `ok K of N`.
/// MODE `hold`: prints `held N`, then waits for a line on standard input and closes them all.
const FLOWS_CLIENT: &str = r#"
import asyncio, random, resource, sys
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
n, host, seed, mode = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
async def main():
    conns = []
    for i in range(0, n, 500):
        conns += await asyncio.gather(*[asyncio.open_connection(host, 5000) for _ in range(i, min(n, i + 500))])
    if mode == 'hold':
        for r, w in conns: w.write(b'h\0\0\0\0')
        await asyncio.gather(*[w.drain() for r, w in conns])
        print('held', len(conns), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for r, w in conns: w.write_eof()
        await asyncio.gather(*[r.read(-1) for r, w in conns])
        print('closed', flush=True)
        return
    async def flow(r, w, order, payload):
        w.write(order + len(payload).to_bytes(4, 'big') + payload)
        await w.drain()
        if order == b'c':
            w.write_eof(); got = await r.read(-1)
        else:
            got = await r.read(-1); w.write_eof()
        w.close()
        return got == payload
    jobs = [flow(r, w, rng.choice([b'c', b's']), rng.randbytes(rng.randint(1, 65536))) for r, w in conns]
    ok = await asyncio.gather(*jobs)
    print('ok', sum(ok), 'of', n, flush=True)
asyncio.run(asyncio.wait_for(main(), 120))
"#;

/// A forwarder for these tests: synack's namespace `mid`, the TUN device `tun`
/// in `client`'s, both families routed, `extra` flags after.
fn forwarder(client: &Netns, mid: &Netns, tun: &str, extra: &[&str]) -> Proc {
    let mut fwd = mid.cmd(synack_bin());
    fwd.args(["forward", "--tun", tun, "--netns", &client.name])
        .args(["--kernel-addr", "198.18.0.1/24,fd00:5ac::1/64"])
        .args(["--addr", "198.18.0.2/24,fd00:5ac::2/64"])
        .args(["--route", "198.19.0.0/24", "--route", "fd00:5ac:1::/64"])
        .args(["--stats"])
        .args(extra);
    let fwd = Proc::spawn(fwd, "synack forward");
    fwd.wait_line(
        false,
        &format!("routed through {tun}"),
        Duration::from_secs(10),
    );
    fwd
}

/// An iperf3 run from `ns` to the server (`args` after `-c 198.19.0.77 -f m`): the
/// receiver's figure in Mbit/s and, for UDP, (lost, total) datagrams.
fn iperf3(ns: &Netns, args: &[&str]) -> (f64, Option<(u64, u64)>) {
    let line = iperf3_receiver(ns, args);
    let words: Vec<&str> = line.split_whitespace().collect();
    let udp = words
        .iter()
        .find(|w| w.contains('/') && !w.contains("bits"))
        .map(|w| {
            let (lost, total) = w.split_once('/').unwrap();
            (lost.parse().unwrap(), total.parse().unwrap())
        });
    (figure_before(&line, "Mbits/sec"), udp)
}

/// The receiver's summary line of an iperf3 run from `ns` to the server (`args` after
/// `-c 198.19.0.77 -f m`): the total, `[SUM]` with `-P`.
fn iperf3_receiver(ns: &Netns, args: &[&str]) -> String {
    let run = || {
        ns.cmd("timeout")
            .args(["60", "iperf3", "-c", "198.19.0.77", "-f", "m"])
            .args(args)
            .output()
            .unwrap()
    };
    let mut out = run();
    // The server may still be closing the previous test for a moment.
    for _ in 0..50 {
        if !String::from_utf8_lossy(&out.stderr).contains("server is busy") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = run();
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "iperf3 {args:?}: {out:?}");
    text.lines()
        .rev()
        .find(|l| l.trim_end().ends_with("receiver"))
        .unwrap_or_else(|| panic!("no receiver line in {text}"))
        .to_string()
}

/// The number just before `unit` in iperf3's `line` (`Mbits/sec`).
fn figure_before(line: &str, unit: &str) -> f64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == unit)
        .unwrap_or_else(|| panic!("no {unit} in {line}"));
    words[at - 1]
        .parse()
        .unwrap_or_else(|_| panic!("no figure before {unit} in {line}"))
}

/// The bytes carried in iperf3's `line` (its transfer column, in whichever unit iperf3 chose
/// for it: `-f` sets only the rate's).
fn bytes_in(line: &str) -> f64 {
    [
        ("KBytes", 1u64 << 10),
        ("MBytes", 1 << 20),
        ("GBytes", 1 << 30),
    ]
    .into_iter()
    .find(|(unit, _)| line.split_whitespace().any(|w| w == *unit))
    .map(|(unit, scale)| figure_before(line, unit) * scale as f64)
    .unwrap_or_else(|| panic!("no transfer in {line}"))
}

/// synack forward's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `N` flows of FLOWS_CLIENT in `mode` from `ns`.
fn flows_client(ns: &Netns, n: usize, host: &str, mode: &str) -> Command {
    let mut c = ns.cmd("python3");
    c.args(["-c", FLOWS_CLIENT, &n.to_string(), host, "7", mode]);
    c
}

/// `n` concurrent echo flows of FLOWS_CLIENT from `ns` to the server; every one must echo
/// every byte.
fn echo_flows(ns: &Netns, n: usize) {
    let out = flows_client(ns, n, "198.19.0.77", "echo").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ok {n} of {n}"),
        "{out:?}"
    );
}

/// The servers of the throughput tests in `server`: iperf3 and FLOWS_SERVER.
fn throughput_servers(server: &Netns) -> (Proc, Proc) {
    let mut iperf = server.cmd("iperf3");
    iperf.args(["-s", "-p", "5201", "--forceflush"]);
    let iperf = Proc::spawn(iperf, "iperf3 -s");
    iperf.wait_line(false, "Server listening", Duration::from_secs(10));
    let mut flows = server.cmd("python3");
    flows.args(["-c", FLOWS_SERVER]);
    let flows = Proc::spawn(flows, "flows server");
    flows.wait_line(false, "listening", Duration::from_secs(10));
    (iperf, flows)
}

/// The middle one of `v`'s figures.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Lost datagrams in `udp` as a percentage.
fn loss(udp: Option<(u64, u64)>) -> f64 {
    let (lost, total) = udp.expect("UDP figures");
    assert!(total > 0, "no datagrams");
    lost as f64 * 100.0 / total as f64
}

#[test]
fn curl_100mib_iperf3_and_1000_flows_through_synack_forward() {
    const TEST: &str = "curl_100mib_iperf3_and_1000_flows_through_synack_forward";
    if !may_run(TEST, &["ip", "curl", "python3", "iperf3"]) {
        return;
    }
    let _serial = serial();
    let (client, mid, server) = three_namespaces("fu");
    let scratch = Scratch::new("forward-users");
    let file = scratch.random_file("big.bin", 100 << 20, 100);
    let _http = http_server(&server, scratch.root());
    let (_iperf, flows) = throughput_servers(&server);
    let fwd = forwarder(&client, &mid, "skfu", &[]);

    // 100 MiB by curl, SHA-256 checked.
    let start = Instant::now();
    curl_checked(
        &client,
        "http://198.19.0.77/big.bin",
        &scratch.path("got.bin"),
        &file,
    );
    eprintln!("{TEST}: curl 100 MiB in {:?}", start.elapsed());
    std::fs::remove_file(scratch.path("got.bin")).unwrap();

    // iperf3 as users run it: single stream, 8 streams, reverse; the direct kernel path over
    // the same veth (from synack's namespace) alongside for the record.
    for args in [
        &["-t", "2"][..],
        &["-t", "2", "-P", "8"],
        &["-t", "2", "-R"],
    ] {
        let (through, _) = iperf3(&client, args);
        let (direct, _) = iperf3(&mid, args);
        eprintln!(
            "{TEST}: iperf3 {args:?}: {through:.0} Mbit/s through synack forward, {direct:.0} direct"
        );
        assert!(through > 50.0, "iperf3 {args:?}: {through} Mbit/s");
    }
    // UDP at two offered rates, with 4 MiB socket buffers (`-w`: without, the receiving
    // iperf3's own socket overflows on a busy machine, UdpRcvbufErrors in the server's
    // namespace, on the direct path too). The bound is on the loss beyond the direct path's
    // in the same run; measured on this test's build (opt-level 1) on a 2-core machine
    // loaded by other builds: 0 % at 100 Mbit/s; at 500 Mbit/s from 0.02 % to 13 % with the
    // load (datagrams synack did not read in time overflow the TUN queue), hence 200.
    for rate in ["100M", "200M"] {
        let args = ["-u", "-b", rate, "-w", "4M", "-t", "2"];
        let through = loss(iperf3(&client, &args).1);
        let direct = loss(iperf3(&mid, &args).1);
        eprintln!(
            "{TEST}: iperf3 -u -b {rate}: {through:.3}% lost through synack forward, {direct:.3}% direct"
        );
        assert!(
            through < direct + 2.0,
            "UDP at {rate}: {through}% lost ({direct}% direct)"
        );
    }

    // 1,000 concurrent flows, each closed in a random order of half-closes, every byte
    // checked; afterwards none is left in the forwarder.
    echo_flows(&client, 1000);
    // Let the last FINs and ACKs cross synack.
    std::thread::sleep(Duration::from_millis(500));
    fwd.signal("INT");
    let (ok, out, err) = fwd.finish(Duration::from_secs(10));
    assert!(ok, "{out}{err}");
    let summary = out
        .lines()
        .find(|l| l.starts_with("synack forward: stopped"))
        .unwrap_or_else(|| panic!("{out}"));
    // "stopped; T TCP and U UDP flows carried, 0 TCP and U' UDP still open": the TCP flows
    // are all gone; the two iperf3 UDP flows wait for their idle timeout (conntrack's 120 s).
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [tcp, udp, tcp_open, udp_open] = numbers[..] else {
        panic!("{summary}")
    };
    assert!(tcp > 1000, "{summary}");
    assert_eq!((udp, tcp_open, udp_open), (2, 0, 2), "{summary}");
    drop(flows);
}

/// The README's figures for `synack forward`, side by side with the kernel's own path over
/// the same veth in the same run: TCP throughput (one stream, eight; the median of three
/// runs each), UDP loss per offered rate, and memory per flow at 10,000 concurrent flows
/// (synack's RSS growth divided by the flows, in a forwarder started for them and warmed up
/// by 100 flows). Prints a Markdown table. Run it (as root, in release, alone on the machine) with
///
/// ```sh
/// cargo test --release -p synack-cli --test interop_forward -- --ignored --nocapture --exact figures
/// ```
#[test]
#[ignore = "a measurement: run it by hand, see the doc comment"]
fn figures() {
    if !may_run("figures", &["ip", "python3", "iperf3"]) {
        return;
    }
    let _serial = serial();
    let (client, mid, server) = three_namespaces("fg");
    let (_iperf, _flows) = throughput_servers(&server);
    let fwd = forwarder(&client, &mid, "skfg", &[]);
    let mut rows = Vec::new();
    for (what, args) in [
        ("TCP, 1 stream (Mbit/s)", &["-t", "5"][..]),
        ("TCP, 1 stream, reverse (Mbit/s)", &["-t", "5", "-R"]),
        ("TCP, 8 streams (Mbit/s)", &["-t", "5", "-P", "8"]),
    ] {
        // The median of three runs each, the two paths taking turns: on a shared machine a
        // single run moves by a factor of two with the load.
        let (mut through, mut direct) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            through.push(iperf3(&client, args).0);
            direct.push(iperf3(&mid, args).0);
        }
        // As it goes: a run that fails later still tells what it measured.
        eprintln!("figures: {what}: {through:?} through synack, {direct:?} direct");
        rows.push((what.to_string(), median(through), median(direct)));
    }
    for rate in ["100M", "500M", "1000M", "2000M"] {
        let args = ["-u", "-b", rate, "-w", "4M", "-t", "5"];
        let through = loss(iperf3(&client, &args).1);
        let direct = loss(iperf3(&mid, &args).1);
        eprintln!("figures: UDP at {rate}: {through:.2}% lost through synack, {direct:.2}% direct");
        rows.push((
            format!("UDP at {rate}bit/s offered: loss (%)"),
            through,
            direct,
        ));
    }
    fwd.signal("INT");
    let (ok, out, err) = fwd.finish(Duration::from_secs(30));
    assert!(ok, "{out}{err}");
    // Memory per flow: 10,000 flows held open at once, in a forwarder of their own (in the
    // one that carried iperf3, the megabytes its buffers freed take in part of the flows,
    // and the figure moves by a hundred bytes from run to run), after 100 flows of up to
    // 64 KiB each have warmed it up (the TUN device's packet queues, the buffers busy flows
    // share: allocated once, not per flow).
    let fwd = forwarder(&client, &mid, "skfg", &[]);
    echo_flows(&client, 100);
    let before = rss_kib(fwd.pid());
    let (hold, mut stdin) = Proc::spawn_with_stdin(
        flows_client(&client, 10_000, "198.19.0.77", "hold"),
        "10,000 flows",
    );
    hold.wait_line(false, "held 10000", Duration::from_secs(120));
    let after = rss_kib(fwd.pid());
    use std::io::Write;
    stdin.write_all(b"\n").unwrap();
    hold.wait_line(false, "closed", Duration::from_secs(120));
    let per_flow = (after.saturating_sub(before)) as f64 * 1024.0 / 10_000.0;
    // The machine's state, for reading the figures: both paths share its cores.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("{cpus} CPUs, load average {}", load.trim());
    println!("| | synack forward | kernel, direct |");
    println!("|---|---:|---:|");
    for (what, through, direct) in &rows {
        let ratio = if what.starts_with("TCP") {
            format!(" ({:.2}×)", through / direct)
        } else {
            String::new()
        };
        println!("| {what} | {through:.2}{ratio} | {direct:.2} |");
    }
    println!(
        "| memory per flow at 10,000 flows (bytes, RSS {before} → {after} KiB) | {per_flow:.0} | |"
    );
    fwd.signal("INT");
    let (ok, out, err) = fwd.finish(Duration::from_secs(30));
    assert!(ok, "{out}{err}");
}

/// Dante's SOCKS5 server (`danted`, Debian's dante-server) for `figures_against_peers`: on
/// 127.0.0.1:1080 of synack's namespace, no authentication, out through the veth pair.
const DANTED_CONF: &str = "logoutput: stderr
internal: 127.0.0.1 port = 1080
external: skf-a
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 198.19.0.0/24 command: connect }
";

/// hev-socks5-tunnel's configuration for `figures_against_peers`: TUN device `NAME` at MTU
/// `MTU`, TCP through danted (127.0.0.1:1080); everything else as its defaults (task stack
/// 86,016 bytes, TCP buffer 65,536, no multi-queue).
const HEV_CONF: &str = "tunnel:
  name: NAME
  mtu: MTU
socks5:
  address: 127.0.0.1
  port: 1080
  udp: 'udp'
misc:
  log-file: stderr
  log-level: warn
";

/// CPU time (user + system, in clock ticks) of process `pid` (all its threads), plus that of
/// its children it has waited for when `children`, from `/proc/PID/stat`.
fn cpu_ticks(pid: &str, children: bool) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0; // gone: nothing more to count
    };
    // After the command name in parentheses: state is field 3, utime 14, stime 15,
    // cutime 16, cstime 17.
    let fields: Vec<u64> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let own = fields[10] + fields[11];
    if children {
        own + fields[12] + fields[13]
    } else {
        own
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux's usual builds).
fn clock_ticks_per_second() -> f64 {
    run(Command::new("getconf").arg("CLK_TCK"))
        .trim()
        .parse()
        .expect("CLK_TCK")
}

/// The processes in `ns` whose command is `comm`.
fn pids_named(ns: &Netns, comm: &str) -> Vec<String> {
    run(Command::new("ip").args(["netns", "pids", &ns.name]))
        .split_whitespace()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .map(str::to_string)
        .collect()
}

/// A peer's TUN device `dev`, created in `mid` (where the peer opens it by name and opens its
/// upstream sockets), moved into `client` once the peer holds it open, and given the client's
/// address and the route to the server there, as `synack forward --netns` does for its own.
fn peer_tun_into(mid: &Netns, client: &Netns, dev: &str, what: &str, peer: &Proc) {
    // Moved only once the peer has it open (the kernel gives an up TUN device its carrier
    // when a file attaches): moved before, the peer would make a new one of that name here.
    let start = Instant::now();
    while run(mid.cmd("ip").args(["link", "show", dev])).contains("NO-CARRIER") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} did not open its TUN device within 10 s (pid {})",
            peer.pid()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The open descriptor goes on working in the device's new namespace (its MTU moves
    // with it; its addresses do not).
    ip(mid, &["link", "set", dev, "netns", &client.name]);
    ip(client, &["addr", "add", "198.18.0.1/24", "dev", dev]);
    ip(client, &["link", "set", dev, "up"]);
    ip(client, &["route", "add", "198.19.0.0/24", "dev", dev]);
}

/// One way from a client to the server in `figures_against_peers`: its name, the namespace
/// iperf3 runs in, and the forwarder's pid (none for the kernel's direct path).
struct PeerPath<'a> {
    name: String,
    ns: &'a Netns,
    forwarder: Option<String>,
}

/// What `figures_against_peers` measured of one path in one row: each run's Mbit/s, and, over
/// the runs, the bytes carried, the seconds the runs took and the CPU ticks of the
/// forwarder, of both iperf3 ends and of the SOCKS5 proxy.
#[derive(Default)]
struct PeerFigures {
    mbit: Vec<f64>,
    bytes: f64,
    seconds: f64,
    forwarder: u64,
    ends: u64,
    proxy: u64,
}

/// `synack forward` against peer engines in one run: hev-socks5-tunnel (a tun2socks on lwIP,
/// in C; its binary from `SYNACK_HEV`, or `hev-socks5-tunnel` on PATH), and tun2proxy (on the
/// ipstack crate; `SYNACK_TUN2PROXY`, or `tun2proxy-bin` on PATH; left out with a note when
/// missing), all carrying the client's TCP flows through the same SOCKS5 proxy (`danted`, in
/// synack's namespace), beside the kernel's direct path over the veth pair. Each forwarder
/// has a client namespace of its own; the paths take turns, three rounds, the median printed
/// as a Markdown table, then each forwarder's CPU seconds per GB carried (user + system, from
/// `/proc/PID/stat`, over the three runs), both iperf3 ends' and danted's. Each engine as a
/// user runs it by default, with a 4,096-packet TUN queue: synack at MTU 1500 with its TUN
/// offloads (64 KiB super-segments; neither peer has them); hev-socks5-tunnel at its default
/// MTU 8500 (its lwIP's MSS is 8191: its best single-stream configuration) and again at MTU
/// 1500, the others'; tun2proxy at MTU 1500 with the MSS of its MTU (`--tcp-mss 1460`:
/// without it, it sends no MSS option and the kernel client falls back to 536). Run it (as
/// root, in release, alone on the machine) with
///
/// ```sh
/// SYNACK_HEV=/path/to/hev-socks5-tunnel SYNACK_TUN2PROXY=/path/to/tun2proxy-bin \
///   flock /tmp/synack-realtime.lock cargo test --release -p synack-cli --test interop_forward -- --ignored --nocapture --exact figures_against_peers
/// ```
#[test]
#[ignore = "a measurement against peers: run it by hand, see the doc comment"]
fn figures_against_peers() {
    const TEST: &str = "figures_against_peers";
    let hev_bin = std::env::var("SYNACK_HEV").unwrap_or_else(|_| "hev-socks5-tunnel".into());
    if !may_run(TEST, &["ip", "iperf3", "danted", "getconf", &hev_bin]) {
        return;
    }
    let tun2proxy_bin =
        std::env::var("SYNACK_TUN2PROXY").unwrap_or_else(|_| "tun2proxy-bin".into());
    let tun2proxy = have_tool(&tun2proxy_bin);
    if !tun2proxy {
        eprintln!("{TEST}: {tun2proxy_bin} is not installed: tun2proxy left out");
    }
    let _serial = serial();
    let (client, mid, server) = three_namespaces("pe");
    let (iperf, _flows) = throughput_servers(&server);
    let scratch = Scratch::new("forward-peers");
    std::fs::write(scratch.path("danted.conf"), DANTED_CONF).unwrap();
    let mut socks = mid.cmd("danted");
    socks.arg("-f").arg(scratch.path("danted.conf"));
    let _socks = Proc::spawn(socks, "danted");
    wait_listening(&mid, 1080, "danted");
    let fwd = forwarder(&client, &mid, "skpe", &["--socks5", "127.0.0.1:1080"]);

    let mut paths = vec![PeerPath {
        name: "synack forward".into(),
        ns: &client,
        forwarder: Some(fwd.pid().to_string()),
    }];
    // Each peer's client namespace, TUN device and process, kept until the end.
    let mut peers: Vec<(Netns, Proc)> = Vec::new();
    for mtu in ["8500", "1500"] {
        let dev = format!("skph{}", &mtu[..2]);
        ip(&mid, &["tuntap", "add", "mode", "tun", "name", &dev]);
        ip(&mid, &["link", "set", &dev, "txqueuelen", "4096"]);
        let conf = scratch.path(&format!("hev-{mtu}.yml"));
        std::fs::write(&conf, HEV_CONF.replace("NAME", &dev).replace("MTU", mtu)).unwrap();
        let mut hev = mid.cmd(&hev_bin);
        hev.arg(&conf);
        let hev = Proc::spawn(hev, "hev-socks5-tunnel");
        let ns = Netns::new(&format!("ph{}", &mtu[..2]));
        peer_tun_into(&mid, &ns, &dev, "hev-socks5-tunnel", &hev);
        peers.push((ns, hev));
    }
    if tun2proxy {
        ip(&mid, &["tuntap", "add", "mode", "tun", "name", "skpt"]);
        ip(&mid, &["link", "set", "skpt", "up", "txqueuelen", "4096"]);
        let mut peer = mid.cmd(&tun2proxy_bin);
        peer.args(["--tun", "skpt", "--proxy", "socks5://127.0.0.1:1080"])
            .args(["--tcp-mss", "1460", "--max-sessions", "1000"]);
        let peer = Proc::spawn(peer, "tun2proxy");
        let ns = Netns::new("pt");
        peer_tun_into(&mid, &ns, "skpt", "tun2proxy", &peer);
        peers.push((ns, peer));
    }
    let names = [
        "hev-socks5-tunnel, MTU 8500",
        "hev-socks5-tunnel, MTU 1500",
        "tun2proxy",
    ];
    for ((ns, peer), name) in peers.iter().zip(names) {
        paths.push(PeerPath {
            name: name.into(),
            ns,
            forwarder: Some(peer.pid().to_string()),
        });
    }
    paths.push(PeerPath {
        name: "kernel, direct".into(),
        ns: &mid,
        forwarder: None,
    });

    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let server_pid = iperf.pid().to_string();
    // danted forks a child per client and reaps it when done (its time then moves into the
    // parent's children's time): all of them, each time.
    let proxy_ticks = || -> u64 {
        pids_named(&mid, "danted")
            .iter()
            .map(|p| cpu_ticks(p, true))
            .sum()
    };
    let mut rows = Vec::new();
    for (what, args) in [
        ("TCP, 1 stream", &["-t", "5"][..]),
        ("TCP, 1 stream, reverse", &["-t", "5", "-R"]),
        ("TCP, 8 streams", &["-t", "5", "-P", "8"]),
    ] {
        let mut figures: Vec<PeerFigures> = paths.iter().map(|_| PeerFigures::default()).collect();
        for _ in 0..3 {
            for (path, fig) in paths.iter().zip(&mut figures) {
                let fwd_ticks = || path.forwarder.as_deref().map_or(0, |p| cpu_ticks(p, false));
                // Both iperf3 ends: the server's own ticks, the client's once it has been
                // waited for (this process's children).
                let ends_ticks = || cpu_ticks(&server_pid, false) + cpu_ticks("self", true);
                let before = (fwd_ticks(), ends_ticks(), proxy_ticks());
                let start = Instant::now();
                let line = iperf3_receiver(path.ns, args);
                fig.seconds += start.elapsed().as_secs_f64();
                // Saturating: a danted child that exited but is not reaped yet is counted
                // nowhere for a moment.
                fig.forwarder += fwd_ticks().saturating_sub(before.0);
                fig.ends += ends_ticks().saturating_sub(before.1);
                fig.proxy += proxy_ticks().saturating_sub(before.2);
                fig.mbit.push(figure_before(&line, "Mbits/sec"));
                fig.bytes += bytes_in(&line);
            }
        }
        // As it goes: a run that fails later still tells what it measured.
        for (path, fig) in paths.iter().zip(&figures) {
            eprintln!("{TEST}: {what}: {}: {:?} Mbit/s", path.name, fig.mbit);
        }
        rows.push((what, figures));
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let tck = clock_ticks_per_second();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{cpus} CPUs, load average {} at the start, {} at the end",
        load_before.trim(),
        load_after.trim()
    );
    let header: Vec<&str> = paths.iter().map(|p| p.name.as_str()).collect();
    println!("| Mbit/s (× kernel, direct) | {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(paths.len()));
    for (what, figures) in &rows {
        let direct = median(figures.last().unwrap().mbit.clone());
        let cells: Vec<String> = figures
            .iter()
            .map(|f| {
                let m = median(f.mbit.clone());
                format!("{m:.0} ({:.2}×)", m / direct)
            })
            .collect();
        println!("| {what} | {} |", cells.join(" | "));
    }
    println!();
    println!(
        "| CPU s per GB: forwarder + both iperf3 ends + danted (forwarder's share of a core) | {} |",
        header.join(" | ")
    );
    println!("|---|{}", "---:|".repeat(paths.len()));
    for (what, figures) in &rows {
        let cells: Vec<String> = figures
            .iter()
            .map(|f| {
                let per_gb = |ticks: u64| ticks as f64 / tck / (f.bytes / 1e9);
                // How busy the forwarder was: a share of one core over the runs.
                let busy = f.forwarder as f64 / tck / f.seconds * 100.0;
                format!(
                    "{:.2} + {:.2} + {:.2} ({busy:.0} %)",
                    per_gb(f.forwarder),
                    per_gb(f.ends),
                    per_gb(f.proxy)
                )
            })
            .collect();
        println!("| {what} | {} |", cells.join(" | "));
    }
    // Every forwarder still running: none fell over during the runs.
    let mut fwd = fwd;
    assert!(fwd.running(), "synack forward exited");
    for (_, peer) in &mut peers {
        assert!(peer.running(), "a peer exited");
    }
}
