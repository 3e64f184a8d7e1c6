//! An echo server and many clients on SimNet, all async on one tokio runtime, every byte
//! checked. Exits 0 when every client got its own bytes back.
//!
//! ```sh
//! cargo run --release -p synack --example tokio_echo [CLIENTS] [BYTES_PER_CLIENT]
//! ```

#[path = "common/echo.rs"]
mod echo;

use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use synack::net::Runtime;
use synack::tokio::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> ExitCode {
    let (clients, bytes) = echo::args(500, 64 * 1024);
    match run(clients, bytes).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(clients: u32, bytes: usize) -> io::Result<()> {
    // Two hosts on an in-memory link with 1 ms one-way delay; the driver is a task here.
    let rt = Runtime::builder()
        .host("client", "198.18.0.1/24")
        .host("server", "198.18.0.2/24")
        .delay(Duration::from_millis(1))
        .build_tokio()?;
    rt.host("client").expect("the client host").make_default();

    // The server: code written for tokio::net, with the import changed.
    let listener = TcpListener::bind("198.18.0.2:7").await?;
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(echo::echo(s));
        }
    });

    let start = Instant::now();
    echo::clients(clients, bytes, || TcpStream::connect("198.18.0.2:7")).await?;
    println!(
        "{clients} clients echoed {} bytes each way through synack on SimNet in {:.0?}: \
         every byte checked ✓ ({} task and thread wake-ups)",
        clients as u64 * bytes as u64,
        start.elapsed(),
        rt.wakeups()
    );
    Ok(())
}
