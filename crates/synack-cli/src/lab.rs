//! `synack lab`: the kernel talks to synack, for a newcomer. Creates a network namespace with
//! a TUN device, runs a synack HTTP server on it (in this process), fetches a file with the
//! kernel's curl from inside the namespace, prints synack's view of the handshake, transfer
//! and close, and removes everything it created.

use std::io;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;
use std::net::IpAddr;
use synack::net::TcpListener;
use synack::stack::IpCidr;
use synack::tcp::Config;

use crate::http;
use crate::trace_arg::TraceArg;
use crate::tunnet::{self, LinesTo, TunArgs};
use crate::units;

/// Watch the Linux kernel's TCP (curl) talk to synack over a TUN device. Needs root.
#[derive(Debug, Parser)]
#[command(
    after_long_help = "What it does, step by step (all undone at the end):\n  \
    ip netns add synack-lab-PID                      # an empty network of its own\n  \
    (TUN synack0 inside it: kernel 198.18.0.1/24, synack 198.18.0.2)\n  \
    synack serves HTTP on 198.18.0.2:80 from a temporary directory\n  \
    ip netns exec synack-lab-PID curl http://198.18.0.2/file.bin\n  \
    ip netns del synack-lab-PID\n\n\
    With --addr fd00:5ac::2/64 the same over IPv6 (kernel fd00:5ac::1, curl -6).\n\n\
    No root? `synack demo` shows the same conversation between two synack hosts.\n\n\
    Output: the steps, the trace and curl's result on standard output; errors and \
    `wrote FILE` on standard error."
)]
pub struct Args {
    /// synack's address on the lab's link, IPv4 or IPv6 (`fd00:5ac::2/64`: curl then
    /// fetches over IPv6). The kernel takes the first other address of the prefix.
    #[arg(long, value_name = "CIDR", default_value = "198.18.0.2/24")]
    pub addr: String,
    /// Size of the file curl fetches.
    #[arg(long, default_value = "1MiB", value_parser = units::size, allow_hyphen_values = true)]
    pub bytes: u64,
    /// How much of the conversation to print (`all`: every segment, not just the handshake,
    /// the close and the notable events).
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = TraceArg::Handshake)]
    pub trace: TraceArg,
    /// Also write synack's capture here.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// Draw the ladder diagram of curl's connection to this SVG file (the kernel's times are
    /// estimated from the handshake: synack sees each packet once).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<String>,
}

const NS_DIR: &str = "/run/netns";

/// The namespace and scratch directory; removed on drop, errors and panics included.
struct Lab {
    ns: String,
    dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn sh(cmd: &mut Command) -> io::Result<String> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn run(args: Args) -> ExitCode {
    match lab(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn lab(args: &Args) -> io::Result<()> {
    if !is_root() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "synack lab needs root: it creates a network namespace and a TUN device \
             (try: sudo synack lab). Without root, `synack demo` shows the same conversation \
             between two synack hosts in one process",
        ));
    }
    for tool in ["ip", "curl"] {
        if !have(tool) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("synack lab needs `{tool}` (apt-get install iproute2 curl)"),
            ));
        }
    }
    let synack: IpCidr = args.addr.parse()?;
    let kernel = kernel_side(synack)?;
    // URLs and `ip`/`curl` want IPv6 literals in brackets.
    let host = match synack.addr() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let url = format!("http://{host}/file.bin");
    let pid = std::process::id();
    let lab = Lab {
        ns: format!("synack-lab-{pid}"),
        dir: std::env::temp_dir().join(format!("synack-lab-{pid}")),
    };
    std::fs::create_dir_all(&lab.dir)?;
    let mut data = vec![0u8; args.bytes as usize];
    synack::device::SimRng::new(1).fill_bytes(&mut data);
    std::fs::write(lab.dir.join("file.bin"), &data)?;

    outln!("synack lab: the Linux kernel's TCP (curl) fetches a file from synack's HTTP server");
    outln!("  1. ip netns add {}", lab.ns);
    sh(Command::new("ip").args(["netns", "add", &lab.ns]))?;
    // Quieter trace: no IPv6 router solicitations on the new link (and no IPv6 at all when
    // the lab is IPv4).
    let quiet = if synack.is_ipv6() {
        "net.ipv6.conf.default.router_solicitations=0"
    } else {
        "net.ipv6.conf.default.disable_ipv6=1"
    };
    let _ = Command::new("ip")
        .args(["netns", "exec", &lab.ns, "sysctl", "-qw", quiet])
        .output();
    outln!(
        "  2. TUN synack0 inside it: the kernel is {kernel}, synack is {} \
         (the device's other end is this process)",
        synack.addr()
    );
    let net = TunArgs {
        tun: "synack0".into(),
        addr: vec![synack.to_string()],
        kernel_addr: vec![kernel.to_string()],
        netns: Some(format!("{NS_DIR}/{}", lab.ns)),
        mtu: 1500,
        no_offload: false,
        buffer: 4 * 1024 * 1024,
        cc: Default::default(),
        pcap: args.pcap.clone(),
        trace: args.trace,
        impair_out: None,
        impair_in: None,
        seed: 1,
        svg: args.svg.clone(),
    };
    let started = tunnet::start(&net, Config::default(), LinesTo::Stdout)?;
    let listener = TcpListener::bind_on(&started.host, (synack.addr(), 80))?;
    let root = lab.dir.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        for mut s in listener.incoming().flatten() {
            let _ = http::serve_connection(&mut s, &root, &mut buf);
        }
    });
    outln!("  3. synack serves HTTP on {host}:80");
    outln!(
        "  4. ip netns exec {} curl {url}   ({})",
        lab.ns,
        units::human_bytes(args.bytes)
    );
    outln!("\nsynack's side of the conversation (Wireshark notation, relative sequence numbers):");
    let start = Instant::now();
    let out = sh(Command::new("ip")
        .args(["netns", "exec", &lab.ns, "curl", "-sS", "--max-time", "60"])
        .args(["-o", "/dev/null", "-w"])
        .arg("%{http_code} %{size_download} %{time_total}")
        .arg(&url))?;
    let wall = start.elapsed();
    // Let the close finish so the trace shows it.
    started.rt.settle(Duration::from_secs(3));
    let stats = started.rt.device_stats();
    started.finish()?;
    let f: Vec<&str> = out.split_whitespace().collect();
    let (code, size, secs) = match f[..] {
        [c, s, t] => (
            c,
            s.parse::<u64>().unwrap_or(0),
            t.parse::<f64>().unwrap_or(0.0),
        ),
        _ => ("?", 0, wall.as_secs_f64()),
    };
    outln!(
        "\ncurl: HTTP {code}, {} in {secs:.3} s ({}); synack's TUN: {} packets in, {} out",
        units::human_bytes(size),
        units::human_rate(size as f64 * 8.0 / secs.max(1e-9)),
        stats.rx_packets,
        stats.tx_packets
    );
    outln!("  5. ip netns del {} (and the TUN device with it)", lab.ns);
    drop(lab);
    if code != "200" || size != args.bytes {
        return Err(io::Error::other("the transfer did not complete"));
    }
    Ok(())
}

/// The kernel's address in the lab: the first address of `synack`'s prefix that is not
/// synack's (198.18.0.1 for 198.18.0.2/24, fd00:5ac::1 for fd00:5ac::2/64).
fn kernel_side(synack: IpCidr) -> io::Result<IpCidr> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--addr {synack}: the prefix leaves no address for the kernel (use /30 or wider, /126 for IPv6)"
            ),
        )
    };
    let host_bits = match synack {
        IpCidr::V4(c) => 32 - u32::from(c.prefix),
        IpCidr::V6(c) => 128 - u32::from(c.prefix),
    };
    if host_bits < 2 {
        return Err(bad());
    }
    let (net, me) = match synack.addr() {
        IpAddr::V4(a) => {
            let a = u128::from(u32::from(a));
            (a >> host_bits << host_bits, a)
        }
        IpAddr::V6(a) => {
            let a = u128::from(a);
            (a >> host_bits << host_bits, a)
        }
    };
    let k = if net + 1 == me { net + 2 } else { net + 1 };
    let ip = match synack {
        IpCidr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(k as u32)),
        IpCidr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(k)),
    };
    Ok(IpCidr::new(ip, synack.prefix()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_takes_the_first_other_address_of_the_prefix() {
        let k = |s: &str| kernel_side(s.parse().unwrap()).map(|c| c.to_string());
        assert_eq!(k("198.18.0.2/24").unwrap(), "198.18.0.1/24");
        assert_eq!(k("198.18.0.1/24").unwrap(), "198.18.0.2/24");
        assert_eq!(k("fd00:5ac::2/64").unwrap(), "fd00:5ac::1/64");
        assert_eq!(k("fd00:5ac::1/64").unwrap(), "fd00:5ac::2/64");
        assert!(k("198.18.0.2/32").is_err() && k("fd00::1/128").is_err());
    }
}
