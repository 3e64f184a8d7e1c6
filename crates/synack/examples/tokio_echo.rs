//! An echo server and many clients on SimNet, all async on one tokio runtime, every byte
//! checked. Exits 0 when every client got its own bytes back.
//!
//! ```sh
//! cargo run --release -p synack --example tokio_echo [CLIENTS] [BYTES_PER_CLIENT]
//! ```

use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use synack::net::Runtime;
use synack::tokio::{TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Client `id`'s bytes: a pattern of its own, so a byte crossing to another client shows.
fn pattern(id: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13 ^ id) as u8)
        .collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let clients: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let bytes: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(64 * 1024);
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
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                // Echo until the client's FIN, then FIN back.
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
            let s = TcpStream::connect("198.18.0.2:7").await?;
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
                let at = back.iter().zip(&data).position(|(a, b)| a != b);
                return Err(io::Error::other(format!(
                    "client {id}: {} bytes back of {bytes}, first difference at {at:?}",
                    back.len()
                )));
            }
            io::Result::Ok(())
        }));
    }
    for t in tasks {
        t.await.map_err(io::Error::other)??;
    }
    let took = start.elapsed();
    let total = clients as u64 * bytes as u64;
    println!(
        "{clients} clients echoed {total} bytes each way through synack on SimNet in {:.0?}: \
         every byte checked ✓ ({} task and thread wake-ups)",
        took,
        rt.wakeups()
    );
    Ok(())
}
