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

use std::io;
use std::process::ExitCode;
use std::time::Instant;

use synack::device::tun::Tun;
use synack::net::Runtime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pattern(id: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13 ^ id) as u8)
        .collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let clients: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let bytes: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(256 * 1024);
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
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    let start = Instant::now();
    let mut tasks = Vec::new();
    for id in 0..clients {
        tasks.push(tokio::spawn(async move {
            // The kernel's TCP, through the TUN.
            let s = tokio::net::TcpStream::connect("198.18.99.2:7").await?;
            let (mut r, mut w) = s.into_split();
            let data = pattern(id, bytes);
            let sent = data.clone();
            let writer = tokio::spawn(async move {
                w.write_all(&sent).await?;
                w.shutdown().await
            });
            let mut back = Vec::with_capacity(bytes);
            r.read_to_end(&mut back).await?;
            writer.await.map_err(io::Error::other)??;
            if back != data {
                return Err(io::Error::other(format!(
                    "client {id}: {} bytes back of {bytes}, not the bytes sent",
                    back.len()
                )));
            }
            io::Result::Ok(())
        }));
    }
    for t in tasks {
        t.await.map_err(io::Error::other)??;
    }
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
