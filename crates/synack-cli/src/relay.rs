//! `synack relay`: a userspace `netem` between two kernels. Two TUN interfaces, each created in
//! its own network namespace (or one in this one), joined through the impairment models that
//! `--impair-out`/`--impair-in` put on synack's own device.

use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use synack::device::impair::{LinkConfig, LinkStats};
use synack::device::relay::Relay;
use synack::device::tun::Tun;
use synack::stack::IpCidr;

use crate::tunnet;

/// Join two TUN interfaces through the impairment models: a userspace netem between two
/// kernels.
#[derive(Debug, Parser)]
#[command(
    after_long_help = "Side A and side B are TUN interfaces, each usually inside its own network \
    namespace, whose kernel sides have addresses in one subnet. Every IP packet one kernel sends \
    through its interface comes out of the other's, after the direction's model: the same code, \
    seeds and SPEC syntax as `synack serve/connect --impair-out`, so a kernel-to-kernel \
    transfer through the relay and a synack-to-kernel one through --impair-out cross the same \
    path. TCP super-segments (TSO) are split into MTU-sized packets before the model sees them, \
    as on a wire; each direction's model applies, in order: rate (serialisation, behind a \
    drop-tail queue of `queue` bytes), loss, duplication, corruption, delay + jitter, \
    reordering.\n\n\
    Example (as root): two kernels 50 ms apart on a lossy 100 Mbit/s path\n  \
    ip netns add left; ip netns add right\n  \
    synack relay --a-netns left --a-tun ra --a-addr 198.18.2.1/24 \\\n      \
    --b-netns right --b-tun rb --b-addr 198.18.2.2/24 \\\n      \
    --a-to-b delay=50ms,loss=1%,rate=100mbit,queue=1500KB &\n  \
    ip netns exec right iperf3 -s -1 &\n  \
    ip netns exec left iperf3 -c 198.18.2.2 -t 20\n\n\
    What `tc qdisc add dev ra root netem delay 50ms loss 1% rate 100mbit limit 1000` would do \
    on side A's egress, on a kernel that has sch_netem (1000 packets of 1500 bytes is \
    queue=1500KB). Stops on Ctrl-C or SIGTERM, or after --duration, and prints what each \
    direction did.\n\n\
    Output: the `relaying` line (both interfaces are up from then on) on standard output; what \
    each direction did, and errors, on standard error."
)]
pub struct Args {
    /// Side A's TUN interface (created, or attached to if it exists and is persistent).
    #[arg(long, value_name = "NAME")]
    pub a_tun: String,
    /// Create side A's interface inside this network namespace (a name from `ip netns`, or a
    /// path). Default: this process's namespace.
    #[arg(long, value_name = "NS")]
    pub a_netns: Option<String>,
    /// Give the kernel's side of interface A this address (and the on-link route).
    #[arg(long, value_name = "CIDR")]
    pub a_addr: Option<String>,
    /// Side B's TUN interface.
    #[arg(long, value_name = "NAME")]
    pub b_tun: String,
    /// Create side B's interface inside this network namespace.
    #[arg(long, value_name = "NS")]
    pub b_netns: Option<String>,
    /// Give the kernel's side of interface B this address.
    #[arg(long, value_name = "CIDR")]
    pub b_addr: Option<String>,
    /// Impair the packets going from A to B: comma-separated KEY=VALUE from loss (1%), delay
    /// (50ms), jitter (5ms), reorder (10%, held back 10 ms), duplicate (1%), corrupt (0.1%),
    /// rate (100mbit), queue (drop-tail limit with a rate, e.g. 1500KB). Default: perfect.
    #[arg(long, value_name = "SPEC", value_parser = tunnet::impairment)]
    pub a_to_b: Option<LinkConfig>,
    /// Impair the packets going from B to A (same SPEC).
    #[arg(long, value_name = "SPEC", value_parser = tunnet::impairment)]
    pub b_to_a: Option<LinkConfig>,
    /// MTU of both interfaces, 68 (IPv4's least, RFC 791) to 65535 bytes.
    #[arg(long, default_value_t = 1500, allow_hyphen_values = true,
          value_parser = clap::value_parser!(u16).range(68..))]
    pub mtu: u16,
    /// One packet per read and write instead of TCP super-segments (the vnet_hdr offloads).
    #[arg(long)]
    pub no_offload: bool,
    /// Seed of the impairments' randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this long (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = crate::units::duration, allow_hyphen_values = true)]
    pub duration: Option<Duration>,
}

pub fn run(args: Args) -> ExitCode {
    match relay(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn open(
    name: &str,
    netns: Option<&str>,
    addr: Option<&str>,
    mtu: u16,
    offload: bool,
) -> io::Result<Tun> {
    let mut b = Tun::builder(name).mtu(mtu).offload(offload);
    if let Some(a) = addr {
        for a in a.split(',') {
            let cidr: IpCidr = a.trim().parse()?;
            b = b.kernel_addr(cidr);
        }
    }
    if let Some(ns) = netns {
        b = b.netns(ns);
    }
    Ok(b.open()?)
}

fn describe(tun: &Tun, netns: Option<&str>) -> String {
    let mut s = tun.name().to_string();
    if let Some(ns) = netns {
        s.push_str(&format!(" in {ns}"));
    }
    for k in tun.kernel_addrs() {
        s.push_str(&format!(" ({k})"));
    }
    s
}

fn report(dir: &str, s: &LinkStats) {
    eprintln!(
        "  {dir}: {} packets in, {} out; lost {}, queue drops {}, duplicated {}, reordered {}, \
         corrupted {}",
        s.sent,
        s.delivered,
        s.dropped_loss,
        s.dropped_queue,
        s.duplicated,
        s.reordered,
        s.corrupted
    );
}

fn relay(args: Args) -> io::Result<()> {
    let offload = !args.no_offload;
    let a = open(
        &args.a_tun,
        args.a_netns.as_deref(),
        args.a_addr.as_deref(),
        args.mtu,
        offload,
    )?;
    let b = open(
        &args.b_tun,
        args.b_netns.as_deref(),
        args.b_addr.as_deref(),
        args.mtu,
        offload,
    )?;
    let (da, db) = (
        describe(&a, args.a_netns.as_deref()),
        describe(&b, args.b_netns.as_deref()),
    );
    let mut relay = Relay::new(a, b, args.seed)
        .a_to_b(args.a_to_b.unwrap_or_default())
        .b_to_a(args.b_to_a.unwrap_or_default());
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .map_err(io::Error::other)?;
    }
    // Tests and scripts wait for this line: both interfaces are up from here on.
    println!("synack relay: relaying {da} <-> {db}");
    let result = relay.run(&stop, args.duration);
    let s = relay.stats();
    eprintln!("synack relay: stopped");
    report("A -> B", &s.a_to_b);
    report("B -> A", &s.b_to_a);
    if s.rx_errors + s.tx_errors > 0 {
        eprintln!(
            "  device errors: {} reads, {} writes",
            s.rx_errors, s.tx_errors
        );
    }
    result
}
