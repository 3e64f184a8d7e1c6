//! `synack forward` against the Linux kernel, as a tun2socks user runs it, in three network
//! namespaces the test creates (and always deletes): the client's, whose routes to
//! 198.19.0.0/24 and fd00:5ac:1::/64 go through synack's TUN device; synack's own, where it
//! opens the upstream sockets; and the server's, reached from synack's over a veth pair,
//! running an HTTP server and a UDP echo. The client uses the kernel's curl and socat.
//!
//! Needs root, `/dev/net/tun`, `ip`, `curl`, `socat` and `python3`. Without them the test
//! prints why and passes; with `CI=true` it fails instead. Nothing leaves the namespaces.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

mod common;
use common::*;

const TOOLS: &[&str] = &["ip", "curl", "socat", "python3"];

fn sha256(p: &Path) -> String {
    let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
        let got = scratch.path("got.bin");
        let _ = std::fs::remove_file(&got);
        let out = client
            .cmd("curl")
            .args(["-sS", "-m", "60", "-o"])
            .arg(&got)
            .arg(url)
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {url}: {out:?}");
        assert_eq!(sha256(&got), sha256(&file), "{url}");
    }

    // A closed port upstream: the client's connect() is refused at once (a RST), not after
    // a handshake; a host that does not answer upstream (no ARP reply on the veth): the
    // client hears ICMP host unreachable (EHOSTUNREACH) when synack's own connect gives up.
    let connect = |addr: &str| {
        let code = format!(
            "import socket,time\nt=time.time()\ns=socket.socket()\ns.settimeout(20)\n\
             try:\n  s.connect(({addr}))\n  print('connected')\n\
             except OSError as e:\n  print(type(e).__name__, e.errno, round(time.time()-t))"
        );
        let out = client.cmd("python3").args(["-c", &code]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
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
        let mut c = client.cmd("sh");
        c.args([
            "-c",
            &format!("echo forwarded-{target} | timeout 5 socat -t 2 - {target}"),
        ]);
        let out = c.output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("forwarded-{target}"),
            "{out:?}"
        );
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
}
