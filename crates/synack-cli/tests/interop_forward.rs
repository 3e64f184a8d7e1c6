//! `synack forward` against the Linux kernel, as a tun2socks user runs it, in three network
//! namespaces the test creates (and always deletes): the client's, whose routes to
//! 198.19.0.0/24 and fd00:5ac:1::/64 go through synack's TUN device; synack's own, where it
//! opens the upstream sockets; and the server's, reached from synack's over a veth pair,
//! running an HTTP server, a UDP echo and a small SOCKS5 proxy (Python, below). The client
//! uses the kernel's curl, socat and Python's sockets.
//!
//! Needs root, `/dev/net/tun`, `ip`, `curl`, `socat` and `python3`. Without them the test
//! prints why and passes; with `CI=true` it fails instead. Nothing leaves the namespaces.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::*;

const TOOLS: &[&str] = &["ip", "curl", "socat", "python3"];

/// A SOCKS5 proxy (RFC 1928: no authentication, CONNECT to an IPv4/IPv6 address, UDP
/// ASSOCIATE) on port 1080 of both families, logging `CONNECT HOST PORT reply REP` for every
/// CONNECT and `UDP HOST PORT` for every datagram it relays out. CONNECT's failure replies
/// follow the errno of its own connect: refused 5, network unreachable 3, host unreachable 4,
/// anything else 1.
const SOCKS5_PROXY: &str = r#"
import socket, struct, threading
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
        if 0 not in recvn(c, n):
            c.sendall(b'\x05\xff'); return
        c.sendall(b'\x05\x00')
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

#[test]
fn curl_socat_and_refusals_through_synack_forward_in_both_families() {
    if !may_run(
        "curl_socat_and_refusals_through_synack_forward_in_both_families",
        TOOLS,
    ) {
        return;
    }
    let (client, mid, server) = (Netns::new("fwc"), Netns::new("fwm"), Netns::new("fws"));
    // synack's namespace and the server's, joined by a veth pair.
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

    let scratch = Scratch::new("forward");
    let file = scratch.random_file("f.bin", 8 << 20, 18);
    let mut http = server.cmd("python3");
    http.args(["-m", "http.server", "80", "--bind", "::", "--directory"])
        .arg(scratch.root());
    let _http = Proc::spawn(http, "python http.server");
    let mut echo = server.cmd("socat");
    echo.args(["UDP6-RECVFROM:7,fork,ipv6only=0", "EXEC:cat"]);
    let _echo = Proc::spawn(echo, "socat UDP echo");
    // Counts what it reads until the client's FIN, then answers: a half-close both ways.
    let mut count = server.cmd("socat");
    count.args(["TCP6-LISTEN:9,fork,ipv6only=0,reuseaddr", "SYSTEM:wc -c"]);
    let _count = Proc::spawn(count, "socat TCP counter");

    let mut fwd = mid.cmd(synack_bin());
    fwd.args(["forward", "--tun", "skfw", "--netns", &client.name])
        .args(["--kernel-addr", "198.18.0.1/24,fd00:5ac::1/64"])
        .args(["--addr", "198.18.0.2/24,fd00:5ac::2/64"])
        .args(["--route", "198.19.0.0/24", "--route", "fd00:5ac:1::/64"])
        .args(["--connect-timeout", "5s", "--stats"]);
    let fwd = Proc::spawn(fwd, "synack forward");
    fwd.wait_line(false, "routed through skfw", Duration::from_secs(10));
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

    // UDP both families: the echo comes back from the address the client sent to.
    for target in ["UDP4:198.19.0.77:7", "UDP6:[fd00:5ac:1::77]:7"] {
        udp_echo(&client, target, "forwarded");
    }

    fwd.signal("INT");
    let (ok, out, err) = fwd.finish(Duration::from_secs(10));
    assert!(ok, "{out}{err}");
    assert!(out.contains("synack forward: stopped"), "{out}");
    for counter in [
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

    // The same through a SOCKS5 proxy in the server's namespace: every TCP flow is the
    // proxy's CONNECT (its log says so), its failure replies reach the client as a RST
    // (refused) and ICMP host unreachable; UDP goes through its UDP ASSOCIATE relay.
    let mut socks = server.cmd("python3");
    socks.args(["-c", SOCKS5_PROXY]);
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
            "--connect-timeout",
            "5s",
            "--stats",
        ]);
    let fwd = Proc::spawn(fwd, "synack forward --socks5");
    fwd.wait_line(
        false,
        "through SOCKS5 proxy 198.19.0.77:1080",
        Duration::from_secs(10),
    );
    let log = |line: &str| socks.wait_line(false, line, Duration::from_secs(10));
    curl_checked(
        &client,
        "http://198.19.0.77/f.bin",
        &scratch.path("got.bin"),
        &file,
    );
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
