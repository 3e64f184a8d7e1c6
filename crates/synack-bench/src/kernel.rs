//! The Linux kernel's TCP through `std::net` on 127.0.0.1: the reference every userspace figure
//! is compared with. Unlike the two userspace stacks in one loop, this crosses system calls (and,
//! for bulk and rtt, two threads woken by the kernel), and the loopback device offloads
//! segmentation (GSO/GRO), so a "segment" on lo can be a 64 KiB super-packet whatever the MSS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

/// A socket with SO_SNDBUF/SO_RCVBUF of `buffer` bytes (the kernel doubles the value for its
/// bookkeeping, see socket(7)) and TCP_MAXSEG of `mtu - 40`, set before listen/connect so the
/// window scale and the MSS follow them. The loopback MTU itself stays 65536.
fn socket(buffer: Option<usize>, mtu: Option<usize>) -> Socket {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    if let Some(b) = buffer {
        s.set_send_buffer_size(b).expect("SO_SNDBUF");
        s.set_recv_buffer_size(b).expect("SO_RCVBUF");
    }
    if let Some(m) = mtu {
        // Best effort: the kernel clamps it to what the route allows.
        let _ = s.set_tcp_mss((m - 40) as u32);
    }
    s
}

fn listener(buffer: Option<usize>, mtu: Option<usize>) -> TcpListener {
    let s = socket(buffer, mtu);
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    s.bind(&addr.into()).expect("bind 127.0.0.1");
    s.listen(1024).expect("listen");
    s.into()
}

fn connect(to: SocketAddr, buffer: Option<usize>, mtu: Option<usize>) -> TcpStream {
    let s = socket(buffer, mtu);
    s.connect(&to.into()).expect("connect 127.0.0.1");
    s.into()
}

/// Seconds to move `total` bytes from one thread to another over loopback TCP.
pub fn bulk(mtu: usize, buffer: usize, total: u64) -> f64 {
    let l = listener(Some(buffer), Some(mtu));
    let addr = l.local_addr().expect("local addr");
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        while got < total {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "kernel bulk: early EOF");
            got += n as u64;
        }
        got
    });
    let mut c = connect(addr, Some(buffer), Some(mtu));
    let data = vec![0x5au8; 64 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(data.len() as u64) as usize;
        c.write_all(&data[..n]).expect("write");
        sent += n as u64;
    }
    let got = reader.join().expect("reader thread");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(got, total);
    secs
}

/// Round trips of a 1-byte ping-pong between two threads (TCP_NODELAY on both sides), in
/// nanoseconds each, after `warmup` unmeasured ones.
pub fn rtt(n: usize, warmup: usize) -> Vec<f64> {
    let l = listener(None, None);
    let addr = l.local_addr().expect("local addr");
    let total = n + warmup;
    let echo = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        for _ in 0..total {
            s.read_exact(&mut b).expect("read");
            s.write_all(&b).expect("write");
        }
    });
    let mut c = connect(addr, None, None);
    c.set_nodelay(true).expect("nodelay");
    let mut out = Vec::with_capacity(n);
    let mut b = [7u8; 1];
    for i in 0..total {
        let t = Instant::now();
        c.write_all(&b).expect("write");
        c.read_exact(&mut b).expect("read");
        if i >= warmup {
            out.push(t.elapsed().as_nanos() as f64);
        }
    }
    echo.join().expect("echo thread");
    out
}

/// Connect + accept + 1-byte exchange each way + close (the server closes first), one at a time
/// in one thread: a blocking connect() on loopback completes the handshake inside the kernel, so
/// accept() in the same thread finds it. Returns (cycles, cycles per second).
pub fn cps(budget: Duration, max: u64) -> (u64, f64) {
    let l = listener(None, None);
    let addr = l.local_addr().expect("local addr");
    let start = Instant::now();
    let mut n = 0u64;
    let mut b = [0u8; 1];
    while n < max && start.elapsed() < budget {
        let mut c = TcpStream::connect(addr).expect("connect");
        let (mut s, _) = l.accept().expect("accept");
        c.write_all(b"x").expect("write");
        s.read_exact(&mut b).expect("read");
        s.write_all(b"y").expect("write");
        drop(s);
        c.read_exact(&mut b).expect("read");
        assert_eq!(c.read(&mut b).expect("read EOF"), 0);
        drop(c);
        n += 1;
    }
    (n, n as f64 / start.elapsed().as_secs_f64())
}
