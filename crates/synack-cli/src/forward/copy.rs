//! A forwarded TCP flow's bytes, copied both ways between the client's connection (synack's)
//! and the upstream socket (the kernel's), with each side's FIN passed on as a half-close.
//!
//! Client to upstream ([`one_way`]), a direction holds a buffer only while it has bytes to
//! move: it waits for its reader to be readable without one, then takes a buffer from a
//! pool shared by all flows, reads and writes until the reader has nothing more at once,
//! and gives the buffer back. So an idle flow (10,000 held open) costs no buffer, and a
//! busy one gets a large buffer (few reads and writes per byte) without allocating and
//! zeroing it again. Upstream to client ([`into_synack`]) needs no buffer at all: the
//! upstream socket is read straight into the client connection's send pipe
//! ([`write_from`](synack::tokio::WriteHalf::write_from)). Each direction is a small
//! hand-written future: an idle flow's task keeps its two halves and a few words, not the
//! states of nested futures.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// A reader that can wait for bytes (or its end) without a buffer, and say when its
/// connection failed.
pub trait Readable: AsyncRead + Unpin {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Ready once the connection failed (reset, timed out); else the waker is kept for it.
    fn poll_failed(&self, cx: &mut Context<'_>) -> Poll<()>;
}

impl Readable for synack::tokio::ReadHalf<'_> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        synack::tokio::ReadHalf::poll_read_ready(self, cx)
    }

    fn poll_failed(&self, cx: &mut Context<'_>) -> Poll<()> {
        synack::tokio::ReadHalf::poll_failed(self, cx)
    }
}

/// Copies `r` to `w` until `r` ends, then shuts `w` down for writing (the FIN passed on).
pub fn one_way<R: Readable, W: AsyncWrite + Unpin>(r: R, w: W) -> OneWay<R, W> {
    OneWay {
        r,
        w,
        buf: None,
        at: 0,
        end: 0,
        ended: false,
    }
}

/// See [`one_way`].
pub struct OneWay<R, W> {
    r: R,
    w: W,
    /// Taken from the pool while the direction has bytes to move.
    buf: Option<Box<[u8]>>,
    /// `buf[at..end]` is read and not yet written.
    at: usize,
    end: usize,
    /// `r` ended: what is left is the shutdown of `w`.
    ended: bool,
}

impl<R, W> OneWay<R, W> {
    fn give_back(&mut self) {
        if let Some(b) = self.buf.take() {
            give(b);
        }
    }
}

impl<R, W> Drop for OneWay<R, W> {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl<R: Readable, W: AsyncWrite + Unpin> Future for OneWay<R, W> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.at < me.end {
                let Some(buf) = me.buf.as_deref() else {
                    unreachable!("bytes to write are in a buffer")
                };
                let n = match Pin::new(&mut me.w).poll_write(cx, &buf[me.at..me.end]) {
                    Poll::Ready(n) => n?,
                    // `w` takes nothing now (a peer that stopped reading): the client's
                    // death must still end the flow, or its task and sockets stay for ever.
                    Poll::Pending => {
                        ready!(me.r.poll_failed(cx));
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            "the reader's connection failed while its bytes waited",
                        )));
                    }
                };
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                me.at += n;
                continue;
            }
            if me.ended {
                return Pin::new(&mut me.w).poll_shutdown(cx);
            }
            let Some(buf) = me.buf.as_deref_mut() else {
                // Idle: wait without a buffer.
                ready!(me.r.poll_read_ready(cx))?;
                me.buf = Some(take());
                continue;
            };
            let mut rb = ReadBuf::new(buf);
            match Pin::new(&mut me.r).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    (me.at, me.end) = (0, n);
                    if n == 0 {
                        me.ended = true;
                        me.give_back();
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // Nothing more at once: the buffer goes back until the reader is readable
                // (the read's waker is registered: this future is polled again for it).
                Poll::Pending => {
                    me.give_back();
                    return Poll::Pending;
                }
            }
        }
    }
}

/// Copies `r` (the upstream socket) into the client connection `w` until `r` ends, each read
/// straight into `w`'s send pipe, then shuts `w` down for writing (the FIN passed on).
pub fn into_synack<R: AsyncRead + Unpin>(
    r: R,
    w: synack::tokio::WriteHalf<'_>,
) -> IntoSynack<'_, R> {
    IntoSynack { r, w, ended: false }
}

/// See [`into_synack`].
pub struct IntoSynack<'a, R> {
    r: R,
    w: synack::tokio::WriteHalf<'a>,
    /// `r` ended: what is left is the shutdown of `w`.
    ended: bool,
}

impl<R: AsyncRead + Unpin> Future for IntoSynack<'_, R> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.ended {
                return Pin::new(&mut me.w).poll_shutdown(cx);
            }
            if ready!(me.w.poll_write_from(cx, &mut me.r))? == 0 {
                me.ended = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use synack::net::Runtime;
    use synack::tokio::{TcpListener, TcpStream};
    use tokio::io::AsyncWriteExt;

    use super::one_way;

    /// A direction stuck writing to a peer that stopped reading ends when its reader's
    /// connection is reset: the client's death is noticed though nothing moves.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_write_ends_when_the_reader_is_reset() {
        let rt = Runtime::builder()
            .seed(5)
            .host("c", "198.18.78.1/24")
            .host("f", "198.18.78.2/24")
            .build_tokio()
            .unwrap();
        let (hc, hf) = (rt.host("c").unwrap(), rt.host("f").unwrap());
        let listener = TcpListener::bind_on(&hf, "198.18.78.2:7").unwrap();
        let mut c = TcpStream::connect_on(&hc, "198.18.78.2:7").await.unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        // The upstream: takes 16 bytes, then never reads (its other end kept, unread).
        let (up, _unread) = tokio::io::duplex(16);
        c.write_all(&[7; 1000]).await.unwrap();
        let copying = tokio::spawn(async move {
            let (r, _) = s.split();
            one_way(r, up).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!copying.is_finished(), "the copy ended with bytes left");
        c.abort();
        let r = tokio::time::timeout(Duration::from_secs(10), copying)
            .await
            .expect("the copy noticed the reset")
            .unwrap();
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    }
}
