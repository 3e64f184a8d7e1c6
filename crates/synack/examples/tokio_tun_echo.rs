//! synack on a Linux TUN device under tokio: an echo server in synack at 198.18.99.2, and
//! clients in the kernel (`tokio::net::TcpStream`) connecting to it through the TUN. Every
//! byte is checked; exits 0 on success.
//!
//! Needs root (or CAP_NET_ADMIN) and `/dev/net/tun`. It creates the interface `synack-echo`
//! in the current network namespace; to keep its traffic out of the machine's own network,
//! run it in a namespace of its own:
//!
//! ```sh
//! cargo build --release -p synack --example tokio_tun_echo
//! sudo ip netns add synack-echo
//! sudo ip netns exec synack-echo target/release/examples/tokio_tun_echo [CLIENTS] [BYTES]
//! sudo ip netns del synack-echo
//! ```
//!
//! The driver is a task on the tokio runtime that reads the TUN through `AsyncFd`: no thread
//! of synack's own.

#[path = "common/echo.rs"]
mod echo;

use std::io;
use std::process::ExitCode;
use std::time::Instant;

use synack::device::tun::Tun;
use synack::net::Runtime;

#[tokio::main]
async fn main() -> ExitCode {
    let (clients, bytes) = echo::args(50, 256 * 1024);
    match run(clients, bytes).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_tun_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(clients: u32, bytes: usize) -> io::Result<()> {
    let kernel: synack::stack::Ipv4Cidr = "198.18.99.1/24".parse()?;
    let tun = Tun::builder("synack-echo")
        .kernel_addr(kernel)
        .open()
        .map_err(|e| io::Error::other(format!("{e} (this example needs root and /dev/net/tun)")))?;
    let rt = Runtime::builder()
        .host("synack", "198.18.99.2/24")
        .device(tun)
        .build_tokio()?;
    let host = rt.host("synack").expect("the host");
    let listener = synack::tokio::TcpListener::bind_on(&host, "198.18.99.2:7")?;
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(echo::echo(s));
        }
    });
    let start = Instant::now();
    // The kernel's TCP, through the TUN.
    echo::clients(clients, bytes, || {
        tokio::net::TcpStream::connect("198.18.99.2:7")
    })
    .await?;
    let s = rt.device_stats();
    println!(
        "{clients} kernel clients echoed {} bytes each way through synack on a TUN in {:.0?}: \
         every byte checked ✓ ({} packets in, {} out)",
        clients as u64 * bytes as u64,
        start.elapsed(),
        s.rx_packets,
        s.tx_packets
    );
    Ok(())
}
