//! IPv6 and fragments against the Linux kernel: synack on a dual-stack TUN link inside a
//! network namespace each test creates (and always deletes), the kernel's `ping` (3000 bytes,
//! so both ways in fragments), `curl -6` and `socat` over IPv6, and a fragmented TCP segment
//! (DF clear) written into the link by a small Python client, every capture checked by
//! tshark.
//!
//! Needs root, `/dev/net/tun`, `ip`, `ping`, `curl`, `socat`, `python3` and `tshark`. Without
//! them each test prints why and passes; with `CI=true` it fails instead.
//!
//! Addresses: 198.18.0.1 and fd00:5ac::1 (kernel), 198.18.0.2 and fd00:5ac::2 (synack) on the
//! TUN link; the Python client speaks as 198.18.0.7 / fd00:5ac::7, addresses the kernel does
//! not own (so its TCP stays out of the conversation). Nothing leaves the namespace.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

mod common;
use common::*;

/// The tests take turns (they share the TUN name and two cores).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const TUN: &str = "sk6";
const SYNACK: &str = "198.18.0.2/24,fd00:5ac::2/64";
const KERNEL: &str = "198.18.0.1/24,fd00:5ac::1/64";
const TOOLS: &[&str] = &["ip", "ping", "curl", "socat", "python3", "tshark"];

fn turn(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    may_run(test, TOOLS).then(|| ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner()))
}

/// `synack serve` on the dual-stack link in `ns`, ready to accept.
fn serve(ns: &Netns, extra: &[&str]) -> Proc {
    let mut cmd = ns.cmd(synack_bin());
    cmd.args([
        "serve",
        "--tun",
        TUN,
        "--addr",
        SYNACK,
        "--kernel-addr",
        KERNEL,
    ])
    .args(["--port", "80"])
    .args(extra);
    let p = Proc::spawn(cmd, "synack serve");
    p.wait_line(false, "listening on", Duration::from_secs(10));
    p
}

/// tshark capturing every packet on the TUN device into `file`, once it has started.
fn capture(ns: &Netns, file: &Path) -> Proc {
    let mut cmd = ns.cmd("tshark");
    cmd.args(["-i", TUN, "-B", "64", "-q", "-w"]).arg(file);
    let p = Proc::spawn(cmd, "tshark capture");
    p.wait_line(true, "Capture started", Duration::from_secs(20));
    p
}

/// The packets of the capture that match `filter`, one summary line each (tshark
/// reassembles fragments, so a reassembled datagram is checked whole).
fn matching(file: &Path, filter: &str) -> Vec<String> {
    let out = run(Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args(["-o", "ip.check_checksum:TRUE"])
        .args(["-d", "tcp.port==80,data", "-d", "tcp.port==9000,data"])
        .args(["-Y", filter]));
    out.lines().map(str::to_string).collect()
}

/// Stops the capture, then fails on a malformed packet or a bad IPv4 header checksum.
fn stop_and_check(mut cap: Proc, file: &Path, what: &str) {
    std::thread::sleep(Duration::from_millis(300));
    cap.terminate();
    drop(cap);
    let bad = matching(
        file,
        "_ws.malformed or ip.checksum.status == \"Bad\" or _ws.expert.severity >= \"Error\" \
         and !(tcp.checksum.status == \"Bad\")",
    );
    assert!(
        bad.is_empty(),
        "{what}: tshark objects:\n{}",
        bad.join("\n")
    );
}

/// The done-when of issue 19: `ping -s 3000` and `ping -6 -s 3000` from the kernel get their
/// answers. The kernel sends each request in three fragments, synack reassembles them and
/// answers in three fragments of its own (IPv4: DF clear; IPv6: Fragment headers), which the
/// kernel reassembles in turn.
#[test]
fn large_pings_of_both_families_are_answered_in_fragments() {
    let Some(_turn) = turn("large_pings_of_both_families_are_answered_in_fragments") else {
        return;
    };
    let ns = Netns::new("ping6");
    let dir = Scratch::new("ping6");
    let server = serve(&ns, &["--echo", "--stats"]);
    let file = dir.path("ping.pcap");
    let cap = capture(&ns, &file);
    for (flag, dst) in [("-4", "198.18.0.2"), ("-6", "fd00:5ac::2")] {
        let out = run(ns
            .cmd("ping")
            .args([flag, "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000", dst]));
        assert!(
            out.contains("3 packets transmitted, 3 received"),
            "ping {flag} -s 3000 {dst}:\n{out}"
        );
    }
    stop_and_check(cap, &file, "large pings");
    // On the wire: synack's replies in fragments, reassembled by tshark into whole replies.
    let v4_frags = matching(&file, "ip.src == 198.18.0.2 and ip.flags.mf == 1");
    let v4_replies = matching(&file, "icmp.type == 0 and ip.src == 198.18.0.2");
    let v6_frags = matching(&file, "ipv6.src == fd00:5ac::2 and ipv6.fraghdr.more == 1");
    let v6_replies = matching(&file, "icmpv6.type == 129 and ipv6.src == fd00:5ac::2");
    assert_eq!(v4_frags.len(), 6, "two leading fragments per IPv4 reply");
    assert_eq!(v6_frags.len(), 6, "two leading fragments per IPv6 reply");
    assert_eq!((v4_replies.len(), v6_replies.len()), (3, 3));
    let df = matching(&file, "ip.src == 198.18.0.2 and ip.flags.df == 1");
    assert!(df.is_empty(), "ICMP replies leave with DF clear: {df:?}");
    // synack's counters (nstat names), printed on SIGINT with --stats.
    server.signal("INT");
    let (_, out, _) = server.finish(Duration::from_secs(10));
    for (name, want) in [
        ("IpReasmOKs", "3"),
        ("Ip6ReasmOKs", "3"),
        ("IcmpOutEchoReps", "3"),
        ("Icmp6OutEchoReplies", "3"),
        ("IpFragCreates", "9"),
        ("Ip6FragCreates", "9"),
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in the counters:\n{out}"));
        assert_eq!(line.split_whitespace().nth(1), Some(want), "{line}");
    }
}

/// `curl -6` fetches a file from `synack serve --http` over IPv6, and `synack connect` sends
/// one to the kernel's `socat` listening on IPv6: every byte, checked by SHA-256, and no RST.
#[test]
fn curl_and_socat_over_ipv6() {
    let Some(_turn) = turn("curl_and_socat_over_ipv6") else {
        return;
    };
    let ns = Netns::new("curl6");
    let dir = Scratch::new("curl6");
    let www = Scratch::new("curl6-www");
    let file = www.random_file("file.bin", 8 << 20, 6);
    let cap_file = dir.path("curl6.pcap");
    {
        let root = www.root().to_str().expect("a UTF-8 temporary path");
        let _server = serve(&ns, &["--http", root]);
        let cap = capture(&ns, &cap_file);
        let got = dir.path("got.bin");
        let out = run(ns
            .cmd("curl")
            .args(["-6", "-g", "-sS", "--max-time", "60", "-o"])
            .arg(&got)
            .args(["-w", "%{http_code} %{remote_ip}"])
            .arg("http://[fd00:5ac::2]/file.bin"));
        assert_eq!(out, "200 fd00:5ac::2", "curl -6");
        assert_eq!(
            sha256_file(&got),
            sha256_file(&file),
            "curl -6 got different bytes"
        );
        stop_and_check(cap, &cap_file, "curl -6");
        let v6 = matching(&cap_file, "ipv6 and tcp");
        let v4 = matching(&cap_file, "ip and tcp");
        assert!(
            v6.len() > 100 && v4.is_empty(),
            "{} IPv6 segments",
            v6.len()
        );
        assert!(
            matching(&cap_file, "tcp.flags.reset == 1").is_empty(),
            "a RST"
        );
    }
    // synack connect -> socat listening on the kernel's IPv6 addresses (all of them: the TUN
    // link and its address appear when synack connect creates them).
    let received = dir.path("socat.bin");
    let mut listener = ns.cmd("socat");
    listener
        .args(["-u", "TCP6-LISTEN:9000,reuseaddr,ipv6only=1"])
        .arg(format!("CREATE:{}", received.display()));
    let listener = Proc::spawn(listener, "socat TCP6-LISTEN");
    std::thread::sleep(Duration::from_millis(300));
    let sent = dir.random_file("up.bin", 4 << 20, 7);
    let cap_file = dir.path("socat6.pcap");
    let mut client = ns.cmd(synack_bin());
    client
        .args([
            "connect",
            "--tun",
            TUN,
            "--addr",
            SYNACK,
            "--kernel-addr",
            KERNEL,
        ])
        .arg("[fd00:5ac::1]:9000")
        .arg("--send")
        .arg(&sent)
        .arg("--pcap")
        .arg(&cap_file);
    let (ok, out, err) = Proc::spawn(client, "synack connect").finish(Duration::from_secs(60));
    assert!(ok, "synack connect over IPv6 failed:\n{out}{err}");
    let (socat_ok, _, socat_err) = listener.finish(Duration::from_secs(20));
    assert!(socat_ok, "socat: {socat_err}");
    assert_eq!(
        sha256_file(&received),
        sha256_file(&sent),
        "socat got different bytes"
    );
    // synack's own capture (LINKTYPE_RAW): IPv6 TCP both ways, read by tshark.
    let v6 = matching(&cap_file, "ipv6.src == fd00:5ac::2 and tcp.dstport == 9000");
    assert!(
        v6.len() > 100,
        "{} IPv6 segments in synack's capture",
        v6.len()
    );
    assert!(matching(&cap_file, "_ws.malformed").is_empty());
}

/// The Python client of the fragment test: a TCP handshake and one 3000-byte data segment in
/// three IP fragments (IPv4 with DF clear, or IPv6 with a Fragment header), written straight
/// into the TUN link through a packet socket, from an address the kernel does not own; then it
/// collects what synack's echo server sends back. Prints `echoed N` when all came back.
const FRAGMENT_CLIENT: &str = r#"
import socket, struct, sys, time
dev, family = sys.argv[1], sys.argv[2]
v6 = family == "6"
ETH_P = 0x86DD if v6 else 0x0800
src = "fd00:5ac::7" if v6 else "198.18.0.7"
dst = "fd00:5ac::2" if v6 else "198.18.0.2"
af = socket.AF_INET6 if v6 else socket.AF_INET
s_b, d_b = socket.inet_pton(af, src), socket.inet_pton(af, dst)
sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P))
sock.bind((dev, ETH_P))
sock.settimeout(0.2)

def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF

def tcp(seq, ack, flags, payload=b"", opts=b""):
    hl = 20 + len(opts)
    h = struct.pack("!HHIIBBHHH", 40007, 80, seq, ack, (hl // 4) << 4, flags, 65535, 0, 0)
    seg = h + opts + payload
    if v6:
        ph = s_b + d_b + struct.pack("!I3xB", len(seg), 6)
    else:
        ph = s_b + d_b + struct.pack("!xBH", 6, len(seg))
    c = csum(ph + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]

def send_ip(payload, frags=1):
    """The datagram whole, or in `frags` fragments of a multiple of 8 bytes."""
    if frags == 1:
        chunks = [(0, payload, False)]
    else:
        size = (len(payload) // frags + 7) & ~7
        chunks = [(o, payload[o:o + size], o + size < len(payload)) for o in range(0, len(payload), size)]
    for off, data, more in chunks:
        if v6:
            if frags == 1:
                nh, body = 6, data
            else:
                nh = 44
                body = struct.pack("!BBHI", 6, 0, off | int(more), 0x5ac0007) + data
            pkt = struct.pack("!IHBB", 6 << 28, len(body), nh, 64) + s_b + d_b + body
        else:
            flags_off = (off // 8) | (0x2000 if more else 0)  # DF clear
            h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), 0x4242, flags_off, 64, 6, 0, s_b, d_b)
            h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
            pkt = h + data
        sock.sendto(pkt, (dev, ETH_P))

def recv_tcp(deadline):
    """The next TCP segment from synack to us: (seq, ack, flags, payload)."""
    while time.time() < deadline:
        try:
            p = sock.recv(70000)
        except socket.timeout:
            continue
        if v6:
            if len(p) < 60 or p[6] != 6 or p[8:24] != d_b or p[24:40] != s_b:
                continue
            seg = p[40:40 + struct.unpack("!H", p[4:6])[0]]
        else:
            if len(p) < 40 or p[9] != 6 or p[12:16] != d_b or p[16:20] != s_b:
                continue
            hl = (p[0] & 15) * 4
            seg = p[hl:struct.unpack("!H", p[2:4])[0]]
        sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", seg[:14])
        if dport == 40007:
            return seq, ack, flags, seg[(off >> 4) * 4:]
    sys.exit("timed out waiting for synack")

deadline = time.time() + 20
iss = 1000
send_ip(tcp(iss, 0, 0x02, opts=struct.pack("!BBH", 2, 4, 1200)))
while True:
    seq, ack, flags, _ = recv_tcp(deadline)
    if flags & 0x12 == 0x12:
        break
rcv = seq + 1
send_ip(tcp(iss + 1, rcv, 0x10))
data = bytes((i * 7) % 251 for i in range(3000))
send_ip(tcp(iss + 1, rcv, 0x18, data), frags=3)
got = {}
while sum(len(v) for v in got.values()) < len(data):
    seq, ack, flags, payload = recv_tcp(deadline)
    if payload:
        got[seq] = payload
        end = max(k + len(v) for k, v in got.items())
        send_ip(tcp(iss + 1 + len(data), end, 0x10))
echo = b"".join(got[k] for k in sorted(got))
assert echo == data, "echoed bytes differ"
send_ip(tcp(iss + 1 + len(data), rcv + len(data), 0x14))  # RST, ACK: done
print("echoed", len(echo), flush=True)
"#;

/// The done-when of issue 19: a TCP segment sent in fragments, DF clear, is reassembled and
/// delivered, in both families: the echo server sends every byte back.
#[test]
fn a_fragmented_tcp_segment_is_reassembled_and_delivered() {
    let Some(_turn) = turn("a_fragmented_tcp_segment_is_reassembled_and_delivered") else {
        return;
    };
    let ns = Netns::new("frag6");
    let dir = Scratch::new("frag6");
    // One packet per read and write: the client reads wire-sized segments.
    let server = serve(&ns, &["--echo", "--no-offload", "--stats"]);
    let file = dir.path("frag.pcap");
    let cap = capture(&ns, &file);
    for family in ["4", "6"] {
        let mut cmd = ns.cmd("python3");
        cmd.args(["-c", FRAGMENT_CLIENT, TUN, family]);
        let (ok, out, err) =
            Proc::spawn(cmd, "python fragment client").finish(Duration::from_secs(40));
        assert!(ok && out.contains("echoed 3000"), "IPv{family}: {out}{err}");
    }
    stop_and_check(cap, &file, "fragmented segments");
    // tshark saw the fragments and reassembled them into the 3000-byte segments.
    let v4 = matching(&file, "ip.src == 198.18.0.7 and ip.flags.mf == 1");
    let v6 = matching(&file, "ipv6.src == fd00:5ac::7 and ipv6.fraghdr.more == 1");
    assert_eq!((v4.len(), v6.len()), (2, 2), "two leading fragments each");
    let whole = matching(&file, "tcp.len == 3000 and tcp.srcport == 40007");
    assert_eq!(whole.len(), 2, "both segments reassembled: {whole:?}");
    server.signal("INT");
    let (_, out, _) = server.finish(Duration::from_secs(10));
    for (name, want) in [("IpReasmOKs", "1"), ("Ip6ReasmOKs", "1")] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| {
                panic!(
                    "no {name} in the counters:
{out}"
                )
            });
        assert_eq!(line.split_whitespace().nth(1), Some(want), "{line}");
    }
}

/// `synack lab --addr fd00:5ac::2/64`: the kernel's curl fetches over IPv6 (the kernel takes
/// fd00:5ac::1), the trace shows MSS 1440 both ways, and the namespace is gone afterwards.
#[test]
fn lab_over_ipv6() {
    let Some(_turn) = turn("lab_over_ipv6") else {
        return;
    };
    let mut cmd = Command::new(synack_bin());
    cmd.args(["lab", "--addr", "fd00:5ac::2/64", "--bytes", "300KiB"]);
    let (ok, out, err) = Proc::spawn(cmd, "synack lab").finish(Duration::from_secs(60));
    assert!(ok, "synack lab failed:\n{out}{err}");
    assert!(
        out.contains("the kernel is fd00:5ac::1/64, synack is fd00:5ac::2"),
        "{out}"
    );
    assert!(out.contains("curl: HTTP 200, 300.0 KiB"), "{out}");
    let syn = out
        .lines()
        .find(|l| l.contains("kernel \u{2192} synack") && l.contains("[SYN]"))
        .unwrap_or_else(|| panic!("no SYN in the trace:\n{out}"));
    assert!(syn.contains("MSS=1440"), "{syn}");
    let ns = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("1. ip netns add "))
        .expect("namespace name")
        .to_string();
    let list = run(Command::new("ip").args(["netns", "list"]));
    assert!(!list.contains(&ns), "{ns} left behind");
}
