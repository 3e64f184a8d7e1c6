//! The async sockets on a driver task, on SimNet.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ::tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::net::Runtime;
use crate::stack::ForwardConfig;
use crate::tcp::Config;

/// Hosts 198.18.`net`.1, .2, ... (each test its own subnet: an address has one owner among
/// the runtimes running at once).
fn hosts(net: u8, n: u8, tcp: Config) -> (Runtime, Vec<Host>) {
    let mut b = Runtime::builder().seed(3).tcp(tcp);
    for i in 1..=n {
        b = b.host(&format!("h{i}"), &format!("198.18.{net}.{i}/24"));
    }
    let rt = b.build_tokio().unwrap();
    let hs = (1..=n)
        .map(|i| rt.host(&format!("h{i}")).unwrap())
        .collect();
    (rt, hs)
}

/// Session `id`'s bytes from one side: a pattern that differs per session and per side.
fn pattern(id: u32, side: u8, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(31) ^ id.wrapping_mul(7) ^ side as u32) as u8)
        .collect()
}

#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_with_split_peek_and_options() {
    let (rt, h) = hosts(50, 2, Config::default());
    let listener = TcpListener::bind_on(&h[1], "198.18.50.2:7").unwrap();
    assert_eq!(listener.local_addr().unwrap().to_string(), "198.18.50.2:7");
    let server = ::tokio::spawn(async move {
        let (mut s, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip().to_string(), "198.18.50.1");
        let mut first = [0u8; 5];
        let mut n = 0;
        while n < 5 {
            n = s.peek(&mut first).await.unwrap();
        }
        assert_eq!(&first, b"hello", "peek sees the first bytes");
        let (mut r, mut w) = s.split();
        let copied = ::tokio::io::copy(&mut r, &mut w).await.unwrap();
        w.shutdown().await.unwrap();
        copied
    });
    let c = TcpStream::connect_on(&h[0], "198.18.50.2:7").await.unwrap();
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    assert_eq!(c.peer_addr().unwrap().to_string(), "198.18.50.2:7");
    assert_eq!(c.local_addr().unwrap().ip().to_string(), "198.18.50.1");
    let mut data = b"hello".to_vec();
    data.extend(pattern(1, 0, 200_000));
    let (mut r, mut w) = c.into_split();
    let sent = data.clone();
    let writer = ::tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
        w
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    let _w = writer.await.unwrap();
    assert_eq!(server.await.unwrap(), data.len() as u64);
    assert!(
        back == data,
        "{} bytes echoed of {}",
        back.len(),
        data.len()
    );
    drop(rt);
}

#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refused_and_info() {
    let (_rt, h) = hosts(51, 2, Config::default());
    let e = TcpStream::connect_on(&h[0], "198.18.51.2:9")
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    let listener = TcpListener::bind_on(&h[1], "198.18.51.2:9").unwrap();
    let c = TcpStream::connect_on(&h[0], "198.18.51.2:9").await.unwrap();
    let (_s, _) = listener.accept().await.unwrap();
    let info = c.info().await.unwrap();
    assert_eq!(info.state, Some(crate::tcp::State::Established));
}

/// The proxy teardown test: sessions client -> proxy -> server, the proxy copying both ways
/// with `copy_bidirectional`; each end writes its bytes and half-closes at a random moment
/// with data still in flight. Every byte arrives, every session ends, no connection is left.
async fn proxied_sessions(net: u8, sessions: u32) {
    let tcp = Config {
        time_wait: Duration::from_millis(500),
        ..Config::default()
    };
    let (rt, h) = hosts(net, 3, tcp);
    let (client, proxy, server) = (h[0].clone(), h[1].clone(), h[2].clone());
    let front = format!("198.18.{net}.2:80");
    let back: SocketAddr = format!("198.18.{net}.3:80").parse().unwrap();
    let plistener = TcpListener::bind_on(&proxy, &*front).unwrap();
    let slistener = TcpListener::bind_on(&server, back).unwrap();
    let proxy_host = proxy.clone();
    let proxy_task = ::tokio::spawn(async move {
        let mut sessions_done = Vec::new();
        for _ in 0..sessions {
            let (mut inbound, _) = plistener.accept().await.unwrap();
            let host = proxy_host.clone();
            sessions_done.push(::tokio::spawn(async move {
                let mut outbound = TcpStream::connect_on(&host, back).await.unwrap();
                ::tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                    .await
                    .unwrap()
            }));
        }
        let mut total = (0, 0);
        for s in sessions_done {
            let (a, b) = s.await.unwrap();
            total = (total.0 + a, total.1 + b);
        }
        total
    });
    // The server: the first 4 bytes are the session id; it reads everything, checks it, and
    // sends its own bytes, half-closing after a random pause.
    let server_task = ::tokio::spawn(async move {
        let mut done = Vec::new();
        for _ in 0..sessions {
            let (s, _) = slistener.accept().await.unwrap();
            done.push(::tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let mut id = [0u8; 4];
                r.read_exact(&mut id).await.unwrap();
                let id = u32::from_be_bytes(id);
                let (up, down, pause) = plan(id);
                let writer = ::tokio::spawn(async move {
                    ::tokio::time::sleep(Duration::from_micros(pause)).await;
                    w.write_all(&pattern(id, 1, down)).await.unwrap();
                    w.shutdown().await.unwrap();
                });
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                assert!(
                    got == pattern(id, 0, up),
                    "session {id}: server got wrong bytes"
                );
                writer.await.unwrap();
            }));
        }
        for d in done {
            d.await.unwrap();
        }
    });
    let mut clients = Vec::new();
    for id in 0..sessions {
        let (host, front) = (client.clone(), front.clone());
        clients.push(::tokio::spawn(async move {
            let s = TcpStream::connect_on(&host, &*front).await.unwrap();
            let (mut r, mut w) = s.into_split();
            let (up, down, pause) = plan(id);
            let writer = ::tokio::spawn(async move {
                w.write_all(&id.to_be_bytes()).await.unwrap();
                ::tokio::time::sleep(Duration::from_micros(pause / 2)).await;
                w.write_all(&pattern(id, 0, up)).await.unwrap();
                // Half-close with the data just queued still in flight.
                w.shutdown().await.unwrap();
            });
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            assert!(
                got == pattern(id, 1, down),
                "session {id}: client got wrong bytes"
            );
            writer.await.unwrap();
        }));
    }
    let all = async {
        for c in clients {
            c.await.unwrap();
        }
        server_task.await.unwrap();
        proxy_task.await.unwrap()
    };
    let (to_server, to_client) = ::tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("every session ends");
    let (up, down): (u64, u64) = (0..sessions).fold((0, 0), |(u, d), id| {
        let (a, b, _) = plan(id);
        (u + 4 + a as u64, d + b as u64)
    });
    assert_eq!((to_server, to_client), (up, down));
    // Every connection of the three hosts finishes (TIME-WAIT is 500 ms here).
    let mut live = usize::MAX;
    for _ in 0..200 {
        live = rt.live_connections();
        if live == 0 {
            break;
        }
        ::tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(live, 0, "connections left after every session ended");
    assert_eq!(rt.open_sockets(), 0, "sockets left open");
}

/// Session `id`'s sizes (client to server, server to client) and pause in µs, varied.
fn plan(id: u32) -> (usize, usize, u64) {
    let mut r = crate::device::SimRng::new(u64::from(id) + 1);
    let up = (r.next_u64() % 40_000) as usize;
    let down = (r.next_u64() % 40_000) as usize;
    (up, down, r.next_u64() % 20_000)
}

#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_proxied_sessions_end_cleanly() {
    proxied_sessions(52, 1000).await;
}

/// Request/response on many connections at once: each request wakes at most the server's
/// reader and then the client's reader, never another connection's task.
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_wakes_at_most_its_two_readers() {
    let (rt, h) = hosts(53, 2, Config::default());
    let listener = TcpListener::bind_on(&h[1], "198.18.53.2:80").unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = accepted.clone();
    ::tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ::tokio::spawn(async move {
                let mut b = [0u8; 1024];
                while s.read_exact(&mut b).await.is_ok() {
                    if s.write_all(&b).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let (conns, rounds) = (200u32, 10u32);
    let mut streams = Vec::new();
    for _ in 0..conns {
        let s = TcpStream::connect_on(&h[0], "198.18.53.2:80")
            .await
            .unwrap();
        s.set_nodelay(true).unwrap();
        streams.push(s);
    }
    // The server's last accepts may still be under way: their wake-ups are not the
    // requests'.
    for _ in 0..1000 {
        if accepted.load(std::sync::atomic::Ordering::SeqCst) == conns {
            break;
        }
        ::tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), conns);
    let before = rt.wakeups();
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            ::tokio::spawn(async move {
                let mut b = [0u8; 1024];
                for r in 0..rounds {
                    let req = [(i as u8) ^ (r as u8); 1024];
                    s.write_all(&req).await.unwrap();
                    s.read_exact(&mut b).await.unwrap();
                    assert_eq!(b, req);
                }
                s
            })
        })
        .collect();
    let mut open = Vec::new();
    for t in tasks {
        open.push(t.await.unwrap());
    }
    let (wakeups, requests) = (rt.wakeups() - before, u64::from(conns * rounds));
    assert!(
        wakeups <= 2 * requests,
        "{wakeups} wake-ups for {requests} requests"
    );
    assert!(
        wakeups >= requests / 2,
        "{wakeups} wake-ups: readers did wait"
    );
}

/// Datagrams both ways between two hosts (every byte checked, some larger than the MTU),
/// the poll_ API, and a port unreachable reported to the sender.
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_both_ways_and_port_unreachable() {
    let (_rt, h) = hosts(54, 2, Config::default());
    let server = UdpSocket::bind_on(&h[1], "198.18.54.2:53").unwrap();
    assert_eq!(server.local_addr().unwrap().to_string(), "198.18.54.2:53");
    let n = 30u32;
    let echo = ::tokio::spawn(async move {
        let mut buf = vec![0u8; 4000];
        for _ in 0..n {
            let (len, from) = server.recv_from(&mut buf).await.unwrap();
            // Reversed, so the answer is not the question.
            let back: Vec<u8> = buf[..len].iter().rev().copied().collect();
            server.send_to(&back, from).await.unwrap();
        }
    });
    let client = UdpSocket::bind_on(&h[0], "198.18.54.1:0").unwrap();
    let mut buf = vec![0u8; 4000];
    for i in 0..n {
        let d = pattern(i, 1, 1 + (i as usize * 131) % 3500);
        let to: SocketAddr = "198.18.54.2:53".parse().unwrap();
        let sent = poll_fn(|cx| client.poll_send_to(cx, &d, to)).await.unwrap();
        assert_eq!(sent, d.len());
        let mut rb = ReadBuf::new(&mut buf);
        let from = poll_fn(|cx| client.poll_recv_from(cx, &mut rb))
            .await
            .unwrap();
        assert_eq!(from, to);
        let want: Vec<u8> = d.iter().rev().copied().collect();
        assert_eq!(rb.filled(), &want[..], "datagram {i}");
    }
    echo.await.unwrap();
    // The server socket is gone: ICMP port unreachable, which take_error reports.
    client
        .send_to(b"still there?", "198.18.54.2:53")
        .await
        .unwrap();
    let e = ::tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(e) = client.take_error().unwrap() {
                return e;
            }
            ::tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("no ICMP error within 5 s");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    assert!(
        ::tokio::time::timeout(Duration::from_millis(100), client.recv_from(&mut buf))
            .await
            .is_err(),
        "the error does not fail (or wake) recv_from"
    );
    assert!(client.take_error().unwrap().is_none(), "taken once");
}

/// A tun2socks-style relay on a forwarder host: datagrams to any destination arrive with
/// their original destination and are answered from it.
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_forwarder_relays_with_original_destinations() {
    let (_rt, h) = hosts(55, 2, Config::default());
    let cfg = ForwardConfig {
        prefixes: vec!["198.18.55.0/24".parse().unwrap()],
        ..ForwardConfig::default()
    };
    let relay = UdpSocket::forwarder_on(&h[1], cfg).unwrap();
    let relay_task = ::tokio::spawn(async move {
        let mut buf = vec![0u8; 2000];
        let mut seen = Vec::new();
        for _ in 0..6 {
            let m = relay.recv_from_meta(&mut buf).await.unwrap();
            assert_eq!(m.len, m.datagram_len);
            // Tag the answer with where it was going.
            let mut back = m.dst.to_string().into_bytes();
            back.extend_from_slice(&buf[..m.len]);
            relay.send_from(&back, m.dst, m.src).await.unwrap();
            seen.push((m.src, m.dst));
        }
        seen
    });
    let client = UdpSocket::bind_on(&h[0], "198.18.55.1:6000").unwrap();
    let dsts = ["198.18.55.70:53", "198.18.55.71:123", "198.18.55.72:443"];
    let mut buf = vec![0u8; 2000];
    for round in 0..2u32 {
        for (i, dst) in dsts.iter().enumerate() {
            let d = pattern(round * 3 + i as u32, 2, 700 + i * 100);
            client.send_to(&d, *dst).await.unwrap();
            let (n, from) = client.recv_from(&mut buf).await.unwrap();
            assert_eq!(from.to_string(), *dst);
            let mut want = dst.as_bytes().to_vec();
            want.extend_from_slice(&d);
            assert_eq!(&buf[..n], &want[..]);
        }
    }
    let seen = relay_task.await.unwrap();
    let want: Vec<String> = (0..6).map(|i| dsts[i % 3].to_string()).collect();
    let got: Vec<String> = seen.iter().map(|(_, d)| d.to_string()).collect();
    assert_eq!(got, want);
    assert!(
        seen.iter()
            .all(|(s, _)| s.to_string() == "198.18.55.1:6000")
    );
}

/// A device that carries nothing and says when it is dropped.
#[cfg(target_os = "linux")]
struct Quiet {
    fd: std::os::fd::OwnedFd,
    dropped: Arc<AtomicBool>,
}

#[cfg(target_os = "linux")]
impl Device for Quiet {
    fn mtu(&self) -> u16 {
        1500
    }
    fn send(&mut self, _: crate::time::Instant, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn recv(&mut self, _: crate::time::Instant, _: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
    fn readable_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        Some(self.fd.as_fd())
    }
}

#[cfg(target_os = "linux")]
impl Drop for Quiet {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Builds a runtime on a [`Quiet`] device, opens and closes a listener on it, drops the
/// runtime and checks that the device went with it. Returns a host handle kept past the drop.
#[cfg(target_os = "linux")]
fn drop_on_device(net: u8) -> Host {
    let dropped = Arc::new(AtomicBool::new(false));
    let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::NONBLOCK).unwrap();
    let rt = Runtime::builder()
        .host("a", &format!("198.18.{net}.1/24"))
        .device(Quiet {
            fd,
            dropped: dropped.clone(),
        })
        .build_tokio()
        .unwrap();
    let host = rt.host("a").unwrap();
    drop(TcpListener::bind_on(&host, format!("198.18.{net}.1:80")).unwrap());
    assert!(!dropped.load(Ordering::SeqCst));
    drop(rt);
    assert!(
        dropped.load(Ordering::SeqCst),
        "dropping the runtime releases the device at once"
    );
    let e = TcpListener::bind_on(&host, format!("198.18.{net}.1:81"))
        .err()
        .expect("a stopped runtime opens no socket");
    assert_eq!(e.to_string(), "the synack runtime has stopped");
    host
}

#[cfg(target_os = "linux")]
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_runtime_joins_the_driver_task_and_releases_the_device() {
    let host = drop_on_device(60);
    // The driver task held the other reference: it is over by the time drop returned.
    assert_eq!(Arc::strong_count(&host.shared), 1);
}

#[cfg(target_os = "linux")]
#[::tokio::test(flavor = "current_thread")]
async fn on_a_current_thread_runtime_the_driver_task_ends_at_its_next_poll() {
    let host = drop_on_device(61);
    // The task cannot be joined from the thread that runs it: it was woken, and ends the
    // next time the runtime polls it.
    for _ in 0..10 {
        if Arc::strong_count(&host.shared) == 1 {
            return;
        }
        ::tokio::task::yield_now().await;
    }
    panic!(
        "the driver task still holds the runtime: {} references",
        Arc::strong_count(&host.shared)
    );
}

/// Every call of the tokio sockets and not one takes the stack lock outside the driver task
/// (the runtime counts who takes it). The synchronous calls (`set_nodelay`, `info`, ...)
/// answer from the socket's own state; `bind_on` waits for the driver through
/// `block_in_place`.
async fn every_call(net: u8) -> (Runtime, Vec<Host>) {
    let (rt, h) = hosts(net, 2, Config::default());
    let addr = format!("198.18.{net}.2:80");
    let listener = TcpListener::bind(&addr).await.unwrap();
    let server = ::tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.split();
        ::tokio::io::copy(&mut r, &mut w).await.unwrap();
        s.shutdown().await.unwrap();
    });
    let mut c = TcpStream::connect_on(&h[0], &addr).await.unwrap();
    c.set_nodelay(true).unwrap();
    c.set_ttl(12).unwrap();
    assert!(c.nodelay().unwrap());
    assert_eq!(c.ttl().unwrap(), 12);
    assert_eq!(c.peer_addr().unwrap().to_string(), addr);
    c.write_all(&[5u8; 50_000]).await.unwrap();
    c.shutdown().await.unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, vec![5u8; 50_000]);
    assert!(c.info().await.unwrap().bytes_received >= 50_000);
    server.await.unwrap();
    let refused = TcpStream::connect_on(&h[0], format!("198.18.{net}.2:81")).await;
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    let us = UdpSocket::bind(format!("198.18.{net}.2:53")).await.unwrap();
    let uc = UdpSocket::bind(format!("198.18.{net}.1:0")).await.unwrap();
    uc.send_to(b"q", us.local_addr().unwrap()).await.unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = us.recv_from(&mut buf).await.unwrap();
    us.send_to(&buf[..n], from).await.unwrap();
    assert_eq!(uc.recv_from(&mut buf).await.unwrap().0, 1);
    assert!(uc.take_error().unwrap().is_none());
    let a = TcpStream::connect_on(&h[0], &addr).await;
    assert!(a.is_err(), "the listener is gone");
    drop(c);
    (rt, h)
}

#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_calls_never_take_the_stack_lock() {
    let (rt, h) = every_call(56).await;
    // The synchronous opens wait for the driver without the lock too.
    let l = TcpListener::bind_on(&h[1], "198.18.56.2:90").unwrap();
    let u = UdpSocket::bind_on(&h[1], "198.18.56.2:90").unwrap();
    drop((l, u));
    assert!(h[0].counters().active_opens >= 2);
    assert_eq!(
        rt.outside_locks(),
        0,
        "a call outside the driver took the stack lock"
    );
}

#[::tokio::test(flavor = "current_thread")]
async fn socket_calls_never_take_the_stack_lock_on_one_thread() {
    let (rt, _h) = every_call(57).await;
    assert_eq!(
        rt.outside_locks(),
        0,
        "a call outside the driver took the stack lock"
    );
}

/// The forwarder's pending flows through the tokio API: each comes with its client and
/// original destination; accepting answers with a SYN-ACK from that destination and carries
/// bytes both ways, refusing gives the client's connect the error the refusal means,
/// ignoring sends nothing (the client's next SYN comes back as a new flow). The forwarder's
/// UDP socket works beside it on the same host.
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_listener_decides_pending_flows() {
    use crate::stack::Unreachable;
    let (_rt, h) = hosts(58, 2, Config::default());
    let cfg = ForwardConfig {
        prefixes: vec!["198.18.58.0/24".parse().unwrap()],
        ..ForwardConfig::default()
    };
    let flows = ForwardListener::bind_on(&h[1], cfg.clone()).await.unwrap();
    let again = ForwardListener::bind_on(&h[1], cfg.clone()).await;
    assert_eq!(again.err().unwrap().kind(), io::ErrorKind::AddrInUse);
    let relay = UdpSocket::forwarder_on(&h[1], cfg).unwrap();
    let decided = ::tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..5 {
            let flow = flows.accept().await.unwrap();
            let (src, dst) = (flow.source(), flow.destination());
            assert_eq!(src.ip().to_string(), "198.18.58.1");
            seen.push(dst.to_string());
            match dst.port() {
                80 => {
                    let mut s = flow.accept().await.unwrap();
                    assert_eq!(s.local_addr().unwrap(), dst);
                    assert_eq!(s.peer_addr().unwrap(), src);
                    let mut b = [0u8; 5];
                    s.read_exact(&mut b).await.unwrap();
                    s.write_all(&b.to_ascii_uppercase()).await.unwrap();
                    s.shutdown().await.unwrap();
                }
                443 => flow.refuse(Refusal::Reset).await.unwrap(),
                22 => flow
                    .refuse(Refusal::Unreachable(Unreachable::Host))
                    .await
                    .unwrap(),
                // The first time, nothing; its retransmitted SYN is refused.
                25 if !seen[..seen.len() - 1].contains(&dst.to_string()) => {
                    flow.ignore().await.unwrap()
                }
                _ => flow.refuse(Refusal::Reset).await.unwrap(),
            }
        }
        seen
    });
    let mut c = TcpStream::connect_on(&h[0], "198.18.58.80:80")
        .await
        .unwrap();
    assert_eq!(c.peer_addr().unwrap().to_string(), "198.18.58.80:80");
    c.write_all(b"hello").await.unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"HELLO");
    let refused = TcpStream::connect_on(&h[0], "198.18.58.81:443").await;
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    let unreachable = TcpStream::connect_on(&h[0], "198.18.58.82:22").await;
    assert_eq!(
        unreachable.map(|_| ()).unwrap_err().kind(),
        io::ErrorKind::HostUnreachable
    );
    // Ignored, then its SYN retransmission (after the initial RTO, 1 s) is refused.
    let t = std::time::Instant::now();
    let ignored = TcpStream::connect_on(&h[0], "198.18.58.83:25").await;
    assert_eq!(
        ignored.map(|_| ()).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        decided.await.unwrap(),
        [
            "198.18.58.80:80",
            "198.18.58.81:443",
            "198.18.58.82:22",
            "198.18.58.83:25",
            "198.18.58.83:25"
        ]
    );
    // UDP beside it.
    let u = UdpSocket::bind_on(&h[0], "198.18.58.1:5000").unwrap();
    u.send_to(b"q", "198.18.58.53:53").await.unwrap();
    let mut buf = [0u8; 4];
    let m = relay.recv_from_meta(&mut buf).await.unwrap();
    assert_eq!(m.dst.to_string(), "198.18.58.53:53");
}

/// The forwarder's other news through the tokio API: a UDP flow refused from the forwarder
/// socket ends and `next_event` says so; a batch of datagrams comes in and goes back in one
/// call each; past the cap on pending decisions a SYN cookie completes a connection that
/// `accept` hands out established.
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_events_batches_and_cookie_connections() {
    use crate::net::Datagram;
    use crate::stack::{UdpCloseReason, Unreachable};
    let (_rt, h) = hosts(59, 2, Config::default());
    let cfg = ForwardConfig {
        prefixes: vec!["198.18.59.0/24".parse().unwrap()],
        max_pending: 1,
        ..ForwardConfig::default()
    };
    let events = ForwardListener::bind_on(&h[1], cfg.clone()).await.unwrap();
    let relay = UdpSocket::forwarder_on(&h[1], cfg).unwrap();
    let u = UdpSocket::bind_on(&h[0], "198.18.59.1:5000").unwrap();
    for i in 0..8u8 {
        u.send_to(&[i; 3], ("198.18.59.53", 53 + u16::from(i % 2)))
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 8 {
        got.extend(relay.recv_many(64).await.unwrap());
    }
    assert_eq!(got.len(), 8);
    // Each of the batch reads counted once (`UdpInDatagrams` counts the forwarder
    // socket's reads, as Linux `udp_recvmsg`).
    assert_eq!(h[1].counters().udp_in_datagrams, 8);
    for (i, d) in got.iter().enumerate() {
        assert_eq!(d.data, [i as u8; 3]);
        assert_eq!(d.dst.port(), 53 + (i as u16 % 2));
    }
    let replies: Vec<Datagram> = got
        .iter()
        .map(|d| Datagram {
            data: vec![d.data[0] + 100],
            src: d.dst,
            dst: d.src,
        })
        .collect();
    assert_eq!(relay.send_many(&replies).await.unwrap(), 8);
    let mut buf = [0u8; 8];
    for i in 0..8u8 {
        let (n, from) = u.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            (&buf[..n], from.port()),
            (&[i + 100][..], 53 + u16::from(i % 2))
        );
    }
    relay
        .refuse_flow(got[1].src, got[1].dst, Unreachable::Port)
        .await
        .unwrap();
    match events.next_event().await.unwrap() {
        Forwarded::UdpClosed {
            client,
            dst,
            reason,
        } => {
            assert_eq!((client, dst), (got[1].src, got[1].dst));
            assert_eq!(reason, UdpCloseReason::Refused);
        }
        _ => panic!("expected the flow's end"),
    }
    // One pending decision fills the cap; the next SYN gets a cookie.
    let c0 = h[0].clone();
    let first = ::tokio::spawn(async move { TcpStream::connect_on(&c0, "198.18.59.80:80").await });
    let held = events.accept().await.unwrap();
    assert!(!held.is_established());
    let mut second = TcpStream::connect_on(&h[0], "198.18.59.81:81")
        .await
        .unwrap();
    second.write_all(b"ping").await.unwrap();
    let flow = events.accept().await.unwrap();
    assert!(flow.is_established());
    assert_eq!(flow.destination().to_string(), "198.18.59.81:81");
    let mut s = flow.accept().await.unwrap();
    let mut b4 = [0u8; 4];
    s.read_exact(&mut b4).await.unwrap();
    assert_eq!(&b4, b"ping");
    held.refuse(Refusal::Reset).await.unwrap();
    assert_eq!(
        first.await.unwrap().map(|_| ()).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
}

/// An echo request to a forwarded destination through the tokio API: `next_event` hands it
/// out and `reply` answers it from the pinged address (raw packets on a `device::pair`).
#[cfg(target_os = "linux")]
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_request_comes_out_of_next_event_and_is_answered() {
    use crate::device::Device;
    use crate::time::Instant as T;
    use crate::wire::{IpProtocol, icmpv4, ipv4};
    use core::net::Ipv4Addr;
    let (a, mut b) = crate::device::pair::pair(1500).unwrap();
    let rt = Runtime::builder()
        .host("gateway", "198.18.60.2/24")
        .device(a)
        .build_tokio()
        .unwrap();
    let cfg = ForwardConfig {
        prefixes: vec!["198.18.60.0/24".parse().unwrap()],
        ..ForwardConfig::default()
    };
    let events = ForwardListener::bind_on(&rt.host("gateway").unwrap(), cfg)
        .await
        .unwrap();
    let (me, far) = (Ipv4Addr::new(198, 18, 60, 1), Ipv4Addr::new(198, 18, 60, 9));
    let req = icmpv4::Repr::EchoRequest {
        ident: 3,
        seq_no: 4,
        data: b"hi",
    };
    let mut pkt = vec![0u8; 20 + req.buffer_len()];
    let mut ip = ipv4::Packet::new_unchecked(&mut pkt[..]);
    ipv4::Repr::new(me, far, IpProtocol::Icmp, req.buffer_len())
        .emit(&mut ip, true)
        .unwrap();
    req.emit(&mut icmpv4::Packet::new_unchecked(ip.payload_mut()), true)
        .unwrap();
    b.send(T::ZERO, &pkt).unwrap();
    b.flush(T::ZERO).unwrap();
    let e = match ::tokio::time::timeout(Duration::from_secs(5), events.next_event()).await {
        Ok(Ok(Forwarded::Echo(e))) => e,
        _ => panic!("no echo request came out"),
    };
    assert_eq!(
        (e.destination(), e.ident_seq(), e.data()),
        (core::net::IpAddr::V4(far), (3, 4), &b"hi"[..])
    );
    e.reply().await.unwrap();
    let mut buf = vec![0u8; 2000];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let n = loop {
        if let Some(n) = b.recv(T::ZERO, &mut buf).unwrap() {
            break n;
        }
        assert!(std::time::Instant::now() < deadline, "no reply");
        ::tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let ip = ipv4::Packet::new_checked(&buf[..n]).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (far, me));
    let m = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        icmpv4::Repr::parse(&m, true).unwrap(),
        icmpv4::Repr::EchoReply {
            ident: 3,
            seq_no: 4,
            data: b"hi"
        }
    );
}

#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readable_waits_for_bytes_or_the_end_and_reads_nothing() {
    let (_rt, h) = hosts(63, 2, Config::default());
    let listener = TcpListener::bind_on(&h[1], "198.18.63.2:7").unwrap();
    let mut c = TcpStream::connect_on(&h[0], "198.18.63.2:7").await.unwrap();
    let (mut s, _) = listener.accept().await.unwrap();
    // Nothing sent yet: not readable (a wait given up leaves nothing behind).
    let waited = ::tokio::time::timeout(Duration::from_millis(50), s.readable()).await;
    assert!(waited.is_err(), "readable with nothing to read");
    c.write_all(b"abc").await.unwrap();
    ::tokio::time::timeout(Duration::from_secs(5), s.readable())
        .await
        .expect("readable once bytes arrived")
        .unwrap();
    // Still readable (by the poll form too), and the bytes are all there: it read nothing.
    s.readable().await.unwrap();
    std::future::poll_fn(|cx| s.poll_read_ready(cx))
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).await.unwrap(), 3);
    assert_eq!(&buf[..3], b"abc");
    // The halves wait the same way; the end of the stream is readable too (a read says 0).
    let (r, _w) = s.split();
    let waited = ::tokio::time::timeout(Duration::from_millis(50), r.readable()).await;
    assert!(waited.is_err(), "readable after the bytes were read");
    c.shutdown().await.unwrap();
    ::tokio::time::timeout(Duration::from_secs(5), r.readable())
        .await
        .expect("readable at the end of the stream")
        .unwrap();
    assert_eq!(s.read(&mut buf).await.unwrap(), 0);
    let (r, _w) = s.into_split();
    r.readable().await.unwrap();
}

/// A reader that hands out `data` in pieces of at most `piece`, with a `Pending` (its waker
/// woken at once) before each, and records the largest room it was offered.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    piece: usize,
    ready: bool,
    most_offered: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.most_offered = self.most_offered.max(buf.remaining());
        if !std::mem::replace(&mut self.ready, false) {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = (self.data.len() - self.at)
            .min(self.piece)
            .min(buf.remaining());
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// A reader that never has anything (an upstream that stays quiet).
struct Silent;

impl AsyncRead for Silent {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

/// A `write_from` waiting on a quiet reader ends with the connection's error when the peer
/// resets it: after the peer's half-close (nothing more to read from it) and then its RST,
/// the waiting call fails instead of waiting for the reader for ever (a forwarded flow
/// whose client died while the upstream stayed quiet would leak its task and sockets).
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_from_on_a_quiet_reader_fails_when_the_peer_resets() {
    let (_rt, h) = hosts(66, 2, Config::default());
    let listener = TcpListener::bind_on(&h[1], "198.18.66.2:7").unwrap();
    let mut c = TcpStream::connect_on(&h[0], "198.18.66.2:7").await.unwrap();
    let (mut s, _) = listener.accept().await.unwrap();
    c.write_all(b"request").await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"request");
    let waiting = ::tokio::spawn(async move {
        let (_, mut w) = s.split();
        w.write_from(&mut Silent).await
    });
    // The call is waiting on the reader before the reset comes.
    ::tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "write_from ended with a quiet reader"
    );
    c.abort();
    let r = ::tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("write_from noticed the reset")
        .unwrap();
    let e = r.expect_err("a reset connection takes no more");
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "{e}"
    );
}

/// A runtime stream as `write_from`'s reader is refused with `InvalidInput` instead of
/// deadlocking: the reader runs under the writing socket's lock, so the same stream's read
/// half (whose lock that is), or another stream (two opposite copies would each hold one
/// lock and wait for the other), must not take a socket lock there.
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_from_refuses_a_runtime_stream_as_its_reader() {
    let (_rt, h) = hosts(67, 2, Config::default());
    let listener = TcpListener::bind_on(&h[1], "198.18.67.2:7").unwrap();
    let mut c = TcpStream::connect_on(&h[0], "198.18.67.2:7").await.unwrap();
    let (mut s, _) = listener.accept().await.unwrap();
    c.write_all(b"ping").await.unwrap();
    s.readable().await.unwrap();
    let copies = ::tokio::spawn(async move {
        let same = {
            let (mut r, mut w) = s.split();
            w.write_from(&mut r).await
        };
        let other = {
            let (mut r, _) = c.split();
            s.write_from(&mut r).await
        };
        // Outside a write_from the stream reads as usual.
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        (same, other, got)
    });
    let (same, other, got) = ::tokio::time::timeout(Duration::from_secs(10), copies)
        .await
        .expect("write_from with a runtime stream as its reader deadlocked")
        .unwrap();
    assert_eq!(same.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(other.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert_eq!(&got, b"ping");
}

/// `write_from` reads straight into the send queue's free room: every byte arrives in
/// order, a reader with nothing yet makes it wait (and it resumes when woken), a full queue
/// makes it wait for room, the offered room grows with what the reads fill (never past the
/// queue's size), and 0 says the reader ended. A shut-down stream fails it.
#[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_from_fills_the_send_queue_from_a_reader() {
    let (_rt, h) = hosts(64, 2, Config::default());
    let listener = TcpListener::bind_on(&h[1], "198.18.64.2:7").unwrap();
    let mut c = TcpStream::connect_on(&h[0], "198.18.64.2:7").await.unwrap();
    let (mut s, _) = listener.accept().await.unwrap();
    let data = pattern(9, 1, 3 << 20);
    let reader = ::tokio::spawn(async move {
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut r = Trickle {
        data: data.clone(),
        at: 0,
        piece: 100_000,
        ready: false,
        most_offered: 0,
    };
    let (mut sent, mut calls) = (0, 0);
    {
        let (_, mut w) = c.split();
        loop {
            let n = w.write_from(&mut r).await.unwrap();
            calls += 1;
            if n == 0 {
                break;
            }
            sent += n;
        }
    }
    c.shutdown().await.unwrap();
    let got = ::tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the server read everything")
        .unwrap();
    assert_eq!(sent, data.len());
    assert!(got == data, "the bytes arrived changed or out of order");
    // The room offered grew past the first 4 KiB, but never past the 64 KiB queue.
    assert!(
        r.most_offered > 4096 && r.most_offered <= 64 << 10,
        "offered {}",
        r.most_offered
    );
    assert!(calls > data.len() / (64 << 10), "{calls} calls");
    // Shut down for writing: no more.
    let mut more: &[u8] = b"late";
    let e = c.write_from(&mut more).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
}
