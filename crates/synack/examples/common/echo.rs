//! What the echo examples share: the echo of one connection, and clients that each send their
//! own bytes, half-close, and check that exactly those bytes come back.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// (clients, bytes per client) from the command line, or the defaults.
pub fn args(clients: u32, bytes: usize) -> (u32, usize) {
    let mut args = std::env::args().skip(1);
    let c = args.next().and_then(|a| a.parse().ok()).unwrap_or(clients);
    let b = args.next().and_then(|a| a.parse().ok()).unwrap_or(bytes);
    (c, b)
}

/// Client `id`'s bytes: a pattern of its own, so a byte crossing to another client shows.
fn pattern(id: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13 ^ id) as u8)
        .collect()
}

/// Echoes until the peer's FIN, then sends FIN back.
pub async fn echo<S: AsyncRead + AsyncWrite>(s: S) {
    let (mut r, mut w) = tokio::io::split(s);
    if tokio::io::copy(&mut r, &mut w).await.is_ok() {
        let _ = w.shutdown().await;
    }
}

/// Runs `clients` clients at once, each on a connection from `connect`.
pub async fn clients<S, F, Fut>(clients: u32, bytes: usize, connect: F) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = io::Result<S>> + Send + 'static,
{
    let mut tasks = Vec::new();
    for id in 0..clients {
        let conn = connect();
        tasks.push(tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(conn.await?);
            let data = pattern(id, bytes);
            let sent = data.clone();
            let writer = tokio::spawn(async move {
                w.write_all(&sent).await?;
                w.shutdown().await // FIN after the data
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
    Ok(())
}
