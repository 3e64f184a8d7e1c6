//! A forwarded TCP flow's bytes, copied both ways between the client's connection (synack's)
//! and the upstream socket (the kernel's), with each side's FIN passed on as a half-close.
//!
//! A direction holds a buffer only while it has bytes to move: it waits for its reader to be
//! readable without one, then takes a buffer from a pool shared by all flows, reads and
//! writes until the reader has nothing more at once, and gives the buffer back. So an idle
//! flow (10,000 held open) costs no buffer, and a busy one gets a large buffer (few reads
//! and writes per byte) without allocating and zeroing it again.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::sync::Mutex;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most a direction reads at once.
pub const BUFFER: usize = 256 << 10;

/// Buffers the pool keeps, at most (16 MiB: the busy directions of a few dozen flows at once;
/// more are allocated and freed as needed).
const POOL_MAX: usize = 64;

static POOL: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

fn take() -> Box<[u8]> {
    let pooled = POOL.lock().map(|mut p| p.pop()).unwrap_or(None);
    pooled.unwrap_or_else(|| vec![0; BUFFER].into_boxed_slice())
}

fn give(b: Box<[u8]>) {
    if let Ok(mut p) = POOL.lock()
        && p.len() < POOL_MAX
    {
        p.push(b);
    }
}

/// A reader that can wait for bytes (or its end) without a buffer.
pub trait Readable: AsyncRead + Unpin {
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

impl Readable for synack::tokio::ReadHalf<'_> {
    async fn readable(&mut self) -> io::Result<()> {
        // A byte peeked, or the end (0): either way a read will not wait.
        self.peek(&mut [0u8; 1]).await.map(|_| ())
    }
}

impl Readable for tokio::net::tcp::ReadHalf<'_> {
    async fn readable(&mut self) -> io::Result<()> {
        self.as_ref().readable().await
    }
}

/// Copies `r` to `w` until `r` ends, then shuts `w` down for writing (the FIN passed on).
pub async fn one_way(mut r: impl Readable, mut w: impl AsyncWrite + Unpin) -> io::Result<()> {
    loop {
        r.readable().await?;
        let mut buf = take();
        let moved = drain(&mut r, &mut w, &mut buf).await;
        give(buf);
        if !moved? {
            return w.shutdown().await;
        }
    }
}

/// Reads and writes while `r` has bytes at once; false at its end. The first read, just
/// after `r` said it was readable, is waited for: at the end of synack's stream the answer
/// takes a trip through the runtime's driver, and a read dropped meanwhile would leave that
/// answer to the next call (the peek of [`Readable::readable`]), round after round.
async fn drain(
    r: &mut impl Readable,
    w: &mut (impl AsyncWrite + Unpin),
    buf: &mut [u8],
) -> io::Result<bool> {
    let mut first = true;
    loop {
        let got = if std::mem::take(&mut first) {
            Poll::Ready(r.read(buf).await)
        } else {
            let mut read = pin!(r.read(buf));
            poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await
        };
        match got {
            Poll::Pending => return Ok(true),
            Poll::Ready(Ok(0)) => return Ok(false),
            Poll::Ready(Ok(n)) => w.write_all(&buf[..n]).await?,
            Poll::Ready(Err(e)) => return Err(e),
        }
    }
}
