//! The blocking API over a real runtime thread, real clock, in-memory link.

use std::io::{ErrorKind, Read, Write};
use std::thread;
use std::time::Duration;

use super::*;

/// A client 198.18.`net`.1 and a server 198.18.`net`.2: each test its own subnet, because an
/// address has one owner among the runtimes running at once (and tests run in parallel).
fn pair(delay_ms: u64, net: u8) -> (Runtime, Host, Host) {
    let rt = Runtime::builder()
        .host("client", &format!("198.18.{net}.1/24"))
        .host("server", &format!("198.18.{net}.2/24"))
        .delay(Duration::from_millis(delay_ms))
        .seed(7)
        .build()
        .unwrap();
    let (c, s) = (rt.host("client").unwrap(), rt.host("server").unwrap());
    (rt, c, s)
}

#[test]
fn echo_round_trip_and_half_close() {
    let (_rt, client, server) = pair(1, 10);
    let listener = TcpListener::bind_on(&server, "198.18.10.2:7").unwrap();
    let t = thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip().to_string(), "198.18.10.1");
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap(); // until the client's FIN
        s.write_all(&all).unwrap();
        all.len()
    });
    let mut c = TcpStream::connect_on(&client, "198.18.10.2:7").unwrap();
    assert_eq!(c.peer_addr().unwrap().to_string(), "198.18.10.2:7");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    c.write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(t.join().unwrap(), data.len());
    assert!(back == data, "echoed bytes differ");
    assert_eq!(c.write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
}

#[test]
fn connect_to_closed_port_is_refused() {
    let (_rt, client, _server) = pair(1, 11);
    let e = TcpStream::connect_on(&client, "198.18.11.2:9")
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn read_timeout_is_would_block_and_reset_is_reported() {
    let (_rt, client, server) = pair(1, 12);
    let listener = TcpListener::bind_on(&server, "198.18.12.2:80").unwrap();
    let mut c = TcpStream::connect_on(&client, "198.18.12.2:80").unwrap();
    let (s, _) = listener.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let started = std::time::Instant::now();
    let e = c.read(&mut [0u8; 10]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(started.elapsed() >= Duration::from_millis(50));
    // The server closes with unread data in its buffer: that is an abort (RST), which the
    // client sees as ConnectionReset.
    c.write_all(b"unread").unwrap();
    thread::sleep(Duration::from_millis(20));
    drop(s);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let e = c.read(&mut [0u8; 10]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
}

#[test]
fn many_clients_one_listener_threads() {
    let (_rt, client, server) = pair(2, 19);
    let listener = TcpListener::bind_on(&server, "198.18.19.2:5000").unwrap();
    let n = 20;
    let srv = thread::spawn(move || {
        let mut handles = Vec::new();
        for s in listener.incoming().take(n) {
            let mut s = s.unwrap();
            handles.push(thread::spawn(move || {
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).unwrap();
                let sum: u64 = buf.iter().map(|&b| b as u64).sum();
                s.write_all(&sum.to_be_bytes()).unwrap();
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
    });
    let clients: Vec<_> = (0..n)
        .map(|i| {
            let host = client.clone();
            thread::spawn(move || {
                let mut c = TcpStream::connect_on(&host, "198.18.19.2:5000").unwrap();
                let msg: Vec<u8> = (0..10_000).map(|j| ((i * 13 + j) % 256) as u8).collect();
                c.write_all(&msg).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                let mut sum = [0u8; 8];
                c.read_exact(&mut sum).unwrap();
                assert_eq!(
                    u64::from_be_bytes(sum),
                    msg.iter().map(|&b| b as u64).sum::<u64>()
                );
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    srv.join().unwrap();
}

/// Code written against std::net ports by changing the import: bind/connect without a host.
#[test]
fn std_shaped_bind_and_connect() {
    let rt = Runtime::builder()
        .host("alpha", "198.18.5.1/24")
        .host("beta", "198.18.5.2/24")
        .delay(Duration::from_millis(1))
        .build()
        .unwrap();
    // 0.0.0.0 means the default host; before there is one, binding it says so.
    let e = TcpListener::bind("0.0.0.0:8").err().unwrap();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    assert_eq!(
        e.to_string(),
        "0.0.0.0 means the default host, and there is none: call Host::make_default first \
         (or use bind_on)"
    );
    rt.host("alpha").unwrap().make_default();
    // Now it listens on alpha, on every address alpha has.
    let any = TcpListener::bind("0.0.0.0:8").unwrap();
    let t = thread::spawn(move || any.accept().map(|(_, peer)| peer).unwrap());
    let c = TcpStream::connect_on(&rt.host("beta").unwrap(), "198.18.5.1:8").unwrap();
    assert_eq!(t.join().unwrap(), c.local_addr().unwrap());
    drop(c);
    // The same code would compile against std::net.
    let listener = TcpListener::bind("198.18.5.2:9000").unwrap();
    let t = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"hi").unwrap();
    });
    let mut c = TcpStream::connect("198.18.5.2:9000").unwrap();
    let mut buf = [0u8; 2];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    t.join().unwrap();
    let e = TcpListener::bind("203.0.113.9:1").err().unwrap();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    let e = TcpStream::connect_timeout(
        &"198.18.5.77:1".parse().unwrap(),
        Duration::from_millis(100),
    )
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
}

/// Three hosts hang off a switch; packets reach the right host by address.
#[test]
fn three_hosts_through_a_switch() {
    let rt = Runtime::builder()
        .host("a", "198.18.6.1/24")
        .host("b", "198.18.6.2/24")
        .host("c", "198.18.6.3/24")
        .delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let (a, c) = (rt.host("a").unwrap(), rt.host("c").unwrap());
    let listener = TcpListener::bind_on(&c, "198.18.6.3:7").unwrap();
    let t = thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        s.write_all(peer.ip().to_string().as_bytes()).unwrap();
    });
    let mut s = TcpStream::connect_on(&a, "198.18.6.3:7").unwrap();
    let mut who = String::new();
    s.read_to_string(&mut who).unwrap();
    assert_eq!(who, "198.18.6.1");
    t.join().unwrap();
    assert_eq!(
        rt.host("b").unwrap().counters().ip_in_receives,
        0,
        "b saw nothing"
    );
}

/// A runtime's hosts each need a name and an address of their own, and an address belongs to
/// one running runtime at a time: anything else is refused with one clear line.
#[test]
fn hosts_and_addresses_are_unique() {
    let err = |b: Builder| b.build().err().expect("must be refused");
    let e = err(Runtime::builder()
        .host("a", "198.18.20.1/24")
        .host("a", "198.18.20.2/24"));
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "two hosts are called \"a\": every host of a runtime needs its own name and address"
    );
    let e = err(Runtime::builder()
        .host("a", "198.18.20.1/24")
        .host("b", "198.18.20.1/24"));
    assert_eq!(
        e.to_string(),
        "hosts \"a\" and \"b\" both have the address 198.18.20.1: every host of a runtime needs \
         its own name and address"
    );
    let e = err(Runtime::builder()
        .host("a", "198.18.20.1/24,fd00:5ac:20::1/64")
        .mtu(1000));
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "MTU 1000 is too small for IPv6: every IPv6 link carries packets of 1280 bytes (RFC \
         8200 §5)"
    );
    let e = err(Runtime::builder().host("a", "198.18.20.1/24").mtu(100));
    assert_eq!(
        e.to_string(),
        "MTU 100 is too small: synack needs at least 128 (IPv4 and TCP headers and TCP's smallest \
         MSS, 88 bytes)"
    );

    let first = Runtime::builder()
        .host("one", "198.18.21.1/24")
        .build()
        .unwrap();
    let e = err(Runtime::builder()
        .host("x", "198.18.21.9/24")
        .host("two", "198.18.21.1/24"));
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    assert_eq!(
        e.to_string(),
        "198.18.21.1 already belongs to host \"one\" of another running synack runtime: an \
         address has one owner (TcpListener::bind finds the host by it); drop that runtime first \
         or pick another address"
    );
    // Once the first runtime is gone (even with a handle to its host still around), the
    // address is free.
    let kept = first.host("one").unwrap();
    drop(first);
    let second = Runtime::builder()
        .host("two", "198.18.21.1/24")
        .build()
        .unwrap();
    assert_eq!(second.host("two").unwrap().name(), "two");
    assert_eq!(kept.name(), "one");
    // bind() finds the running owner.
    let l = TcpListener::bind("198.18.21.1:80").unwrap();
    assert_eq!(l.local_addr().unwrap().to_string(), "198.18.21.1:80");
}

/// With no link delay, both hosts' socket calls (on two threads) and the runtime's own steps
/// happen in the same instants: the sink still sees time move forward only, across hosts.
#[test]
fn trace_time_never_goes_backwards() {
    use crate::trace::TraceEvent;
    use std::sync::{Arc, Mutex};
    for round in 0..4u8 {
        let events = Arc::new(Mutex::new(Vec::<TraceEvent>::new()));
        let sink = {
            let events = events.clone();
            move |e: &TraceEvent| events.lock().unwrap().push(e.clone())
        };
        let rt = Runtime::builder()
            .host("client", &format!("198.18.{}.1/24", 30 + round))
            .host("server", &format!("198.18.{}.2/24", 30 + round))
            .delay(Duration::ZERO)
            .seed(u64::from(round))
            .trace(sink)
            .build()
            .unwrap();
        let (client, server) = (rt.host("client").unwrap(), rt.host("server").unwrap());
        let addr = format!("198.18.{}.2:80", 30 + round);
        let listener = TcpListener::bind_on(&server, addr.as_str()).unwrap();
        let t = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            s.write_all(&all[..100]).unwrap();
            all.len()
        });
        let mut c = TcpStream::connect_on(&client, addr.as_str()).unwrap();
        c.write_all(&[7u8; 100_000]).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!((t.join().unwrap(), back.len()), (100_000, 100));
        drop(c);
        rt.settle(Duration::from_secs(2));
        drop(rt);
        let events = events.lock().unwrap();
        assert!(events.len() > 50, "{}", events.len());
        for w in events.windows(2) {
            assert!(
                w[0].time() <= w[1].time(),
                "round {round}: time went back from {:?} ({}) to {:?} ({})",
                w[0].time(),
                w[0].node(),
                w[1].time(),
                w[1].node()
            );
        }
    }
}

/// Dual-stack hosts on SimNet: a listener on `[::]` takes IPv6 and IPv4 connections, the
/// IPv4 peer shown IPv4-mapped as Linux shows it; with IPV6_V6ONLY IPv4 is refused.
#[test]
fn a_dual_stack_listener_takes_both_families() {
    let rt = Runtime::builder()
        .host("client", "198.18.40.1/24,fd00:5ac:40::1/64")
        .host("server", "198.18.40.2/24, fd00:5ac:40::2/64")
        .delay(Duration::from_millis(1))
        .seed(9)
        .build()
        .unwrap();
    let (client, server) = (rt.host("client").unwrap(), rt.host("server").unwrap());
    let listener = TcpListener::bind_on(&server, "[::]:7").unwrap();
    let t = thread::spawn(move || {
        let mut peers = Vec::new();
        for _ in 0..2 {
            let (mut s, peer) = listener.accept().unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
            peers.push((peer, s.local_addr().unwrap()));
        }
        peers
    });
    let mut c6 = TcpStream::connect_on(&client, "[fd00:5ac:40::2]:7").unwrap();
    assert_eq!(c6.peer_addr().unwrap().to_string(), "[fd00:5ac:40::2]:7");
    assert_eq!(c6.local_addr().unwrap().ip().to_string(), "fd00:5ac:40::1");
    c6.write_all(b"six!").unwrap();
    let mut back = [0u8; 4];
    c6.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"six!");
    // An IPv4 client, and an IPv6 socket connecting to an IPv4-mapped address.
    let mut c4 = TcpStream::connect_on(&client, "[::ffff:198.18.40.2]:7").unwrap();
    assert_eq!(
        c4.peer_addr().unwrap().to_string(),
        "[::ffff:198.18.40.2]:7"
    );
    c4.write_all(b"four").unwrap();
    c4.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"four");
    let peers = t.join().unwrap();
    assert_eq!(peers[0].0.ip().to_string(), "fd00:5ac:40::1");
    assert_eq!(peers[1].0.ip().to_string(), "::ffff:198.18.40.1");
    assert_eq!(peers[1].1.to_string(), "[::ffff:198.18.40.2]:7");

    let _v6 = TcpListener::bind_v6only_on(&server, "[::]:8").unwrap();
    let e = TcpStream::connect_on(&client, "198.18.40.2:8")
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    let _v4 = TcpListener::bind_on(&server, "0.0.0.0:8").unwrap();
    // A dual-stack [::] and a 0.0.0.0 listener cannot share a port, as in Linux.
    let _any4 = TcpListener::bind_on(&server, "0.0.0.0:9").unwrap();
    assert_eq!(
        TcpListener::bind_on(&server, "[::]:9")
            .err()
            .unwrap()
            .kind(),
        ErrorKind::AddrInUse
    );
    assert!(server.counters().ip6_in_receives > 0);
}

#[test]
fn nonblocking_peek_and_clones_like_std() {
    let (_rt, client, server) = pair(1, 13);
    let listener = TcpListener::bind_on(&server, "198.18.13.2:80").unwrap();
    listener.set_nonblocking(true).unwrap();
    assert_eq!(
        listener.accept().err().unwrap().kind(),
        ErrorKind::WouldBlock
    );
    let c = TcpStream::connect_on(&client, "198.18.13.2:80").unwrap();
    listener.set_nonblocking(false).unwrap();
    let (s, _) = listener.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        (&s).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(s.peek(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    // A clone writes from another thread while this handle reads.
    let writer = c.try_clone().unwrap();
    let t = thread::spawn(move || (&writer).write_all(b"peekaboo").unwrap());
    t.join().unwrap();
    let mut got = [0u8; 8];
    let mut n = 0;
    while n < 4 {
        n = s.peek(&mut got).unwrap();
    }
    assert_eq!(&got[..4], b"peek");
    let mut all = [0u8; 8];
    (&s).read_exact(&mut all).unwrap();
    assert_eq!(&all, b"peekaboo", "peek consumed nothing");
    // Dropping one clone keeps the connection; dropping the last closes it (FIN).
    drop(c);
    assert_eq!((&s).read(&mut buf).unwrap(), 0);
}

#[test]
fn an_event_wakes_only_its_own_socket() {
    let (rt, client, server) = pair(0, 14);
    let listener = TcpListener::bind_on(&server, "198.18.14.2:80").unwrap();
    let n = 20;
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..n {
        clients.push(TcpStream::connect_on(&client, "198.18.14.2:80").unwrap());
        servers.push(listener.accept().unwrap().0);
    }
    // Every client blocks in read on its own thread.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|c| {
            thread::spawn(move || {
                let mut b = [0u8; 4];
                (&c).read_exact(&mut b).map(|_| b)
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(100));
    let before = rt.wakeups();
    servers[3].write_all(b"ping").unwrap();
    let mut readers: Vec<_> = readers.into_iter().map(Some).collect();
    let got = readers[3].take().unwrap().join().unwrap().unwrap();
    assert_eq!(&got, b"ping");
    let woken = rt.wakeups() - before;
    // A condition variable shared by all would have woken all 20 (notify_all).
    assert!(woken <= 1, "one write woke {woken} waiters");
    assert!(
        readers.iter().flatten().all(|r| !r.is_finished()),
        "another reader returned"
    );
    for (i, s) in servers.iter().enumerate().filter(|&(i, _)| i != 3) {
        (&*s).write_all(b"ping").unwrap();
        let got = readers[i].take().unwrap().join().unwrap().unwrap();
        assert_eq!(&got, b"ping", "client {i}");
    }
}

/// The TTLs of the data-carrying packets the client host sends, as a trace sink sees them.
struct Ttls(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl crate::trace::TraceSink for Ttls {
    fn event(&mut self, e: &crate::trace::TraceEvent) {
        if let crate::trace::TraceEvent::Packet {
            dir: crate::trace::Direction::Out,
            node,
            bytes,
            ..
        } = e
        {
            // IPv4 without options: total length at 2, TTL at 8; the TCP header's length
            // in the top nibble of its 13th byte.
            let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
            let tcp_header = (bytes[20 + 12] >> 4) as usize * 4;
            if *node == "client" && len > 20 + tcp_header {
                self.0.lock().unwrap().push(bytes[8]);
            }
        }
    }
}

#[test]
fn set_ttl_is_the_ttl_of_the_connections_packets() {
    let ttls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rt = Runtime::builder()
        .host("client", "198.18.15.1/24")
        .host("server", "198.18.15.2/24")
        .seed(7)
        .trace(Ttls(ttls.clone()))
        .build()
        .unwrap();
    let (client, server) = (rt.host("client").unwrap(), rt.host("server").unwrap());
    let listener = TcpListener::bind_on(&server, "198.18.15.2:80").unwrap();
    let c = TcpStream::connect_on(&client, "198.18.15.2:80").unwrap();
    let (s, _) = listener.accept().unwrap();
    assert_eq!(c.ttl().unwrap(), 64, "the stack's default, as Linux's");
    (&c).write_all(b"before").unwrap();
    let mut b = [0u8; 6];
    (&s).read_exact(&mut b).unwrap();
    assert_eq!(c.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(c.set_ttl(256).unwrap_err().kind(), ErrorKind::InvalidInput);
    c.set_ttl(7).unwrap();
    assert_eq!(c.ttl().unwrap(), 7);
    (&c).write_all(b"after!").unwrap();
    (&s).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"after!");
    drop(rt.shutdown());
    assert_eq!(
        *ttls.lock().unwrap(),
        vec![64, 7],
        "TTLs of the two data segments"
    );
}

/// Datagram `i` of a test: a length and bytes of its own.
fn datagram(i: u32) -> Vec<u8> {
    let len = 1 + (i as usize * 97) % 3000; // some larger than the MTU: fragments
    (0..len as u32)
        .map(|j| (j.wrapping_mul(13) ^ i.wrapping_mul(101)) as u8)
        .collect()
}

#[test]
fn udp_both_ways_timeouts_clone_and_port_unreachable() {
    let (_rt, client, server) = pair(1, 16);
    let s = UdpSocket::bind_on(&server, "198.18.16.2:53").unwrap();
    let c = UdpSocket::bind_on(&client, "198.18.16.1:0").unwrap();
    let c_addr = c.local_addr().unwrap();
    assert_eq!(c_addr.ip().to_string(), "198.18.16.1");
    assert_ne!(c_addr.port(), 0, "port 0 picks an ephemeral port");
    assert_eq!(
        UdpSocket::bind_on(&server, "198.18.16.2:53")
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::AddrInUse)
    );
    let echo = s.try_clone().unwrap();
    let t = thread::spawn(move || {
        let mut buf = vec![0u8; 4000];
        for _ in 0..20 {
            let (n, from) = echo.recv_from(&mut buf).unwrap();
            echo.send_to(&buf[..n], from).unwrap();
        }
    });
    let mut buf = vec![0u8; 4000];
    for i in 0..20 {
        let d = datagram(i);
        assert_eq!(c.send_to(&d, "198.18.16.2:53").unwrap(), d.len());
        let (n, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!(from.to_string(), "198.18.16.2:53");
        assert_eq!(&buf[..n], &d[..], "datagram {i}");
    }
    t.join().unwrap();
    // A read timeout, then non-blocking: WouldBlock without a datagram.
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(
        c.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    c.set_read_timeout(None).unwrap();
    c.set_nonblocking(true).unwrap();
    assert_eq!(
        c.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    c.set_nonblocking(false).unwrap();
    // Nobody on port 9: the ICMP port unreachable is take_error's, and does not fail
    // recv_from (an unconnected Linux socket without IP_RECVERR sees none).
    c.send_to(b"anyone?", "198.18.16.2:9").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(
        c.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    c.set_read_timeout(None).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let e = loop {
        if let Some(e) = c.take_error().unwrap() {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no ICMP error");
        thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(c.take_error().unwrap().is_none(), "taken once");
    // Too long for UDP over IPv4.
    assert_eq!(
        c.send_to(&vec![0; 65508], "198.18.16.2:53")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    // A datagram longer than the buffer: truncated, its length told by recv_from_meta.
    c.send_to(&datagram(7), s.local_addr().unwrap()).unwrap();
    let mut small = [0u8; 10];
    let m = s.recv_from_meta(&mut small).unwrap();
    assert_eq!((m.len, m.datagram_len), (10, datagram(7).len()));
    assert_eq!(&small[..], &datagram(7)[..10]);
    assert_eq!(m.dst.to_string(), "198.18.16.2:53");
}

#[test]
fn a_datagram_wakes_only_its_own_socket() {
    let (rt, client, server) = pair(0, 17);
    let n = 20;
    let socks: Vec<_> = (0..n)
        .map(|i| UdpSocket::bind_on(&server, ("198.18.17.2", 1000 + i)).unwrap())
        .collect();
    let readers: Vec<_> = socks
        .into_iter()
        .map(|s| {
            thread::spawn(move || {
                let mut b = [0u8; 8];
                s.recv_from(&mut b).map(|(n, _)| b[..n].to_vec())
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(100));
    let c = UdpSocket::bind_on(&client, "198.18.17.1:0").unwrap();
    let before = rt.wakeups();
    c.send_to(b"ping", "198.18.17.2:1003").unwrap();
    let mut readers: Vec<_> = readers.into_iter().map(Some).collect();
    let got = readers[3].take().unwrap().join().unwrap().unwrap();
    assert_eq!(got, b"ping");
    let woken = rt.wakeups() - before;
    assert!(woken <= 1, "one datagram woke {woken} waiters");
    assert!(
        readers.iter().flatten().all(|r| !r.is_finished()),
        "another reader returned"
    );
    for i in (0..n).filter(|&i| i != 3) {
        c.send_to(b"pong", ("198.18.17.2", 1000 + i)).unwrap();
        let got = readers[i as usize].take().unwrap().join().unwrap().unwrap();
        assert_eq!(got, b"pong", "socket {i}");
    }
}

#[test]
fn forwarder_socket_relays_with_the_original_destination() {
    let (_rt, client, gateway) = pair(1, 18);
    let cfg = crate::stack::ForwardConfig {
        prefixes: vec!["198.18.18.0/24".parse().unwrap()],
        ..Default::default()
    };
    let relay = UdpSocket::forwarder_on(&gateway, cfg.clone()).unwrap();
    assert_eq!(
        UdpSocket::forwarder_on(&gateway, cfg)
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::AddrInUse)
    );
    assert_eq!(
        relay.local_addr().unwrap_err().kind(),
        ErrorKind::AddrNotAvailable
    );
    let c = UdpSocket::bind_on(&client, "198.18.18.1:5000").unwrap();
    // Two destinations nobody has: both land on the gateway's forwarder socket.
    let dsts = ["198.18.18.77:53", "198.18.18.78:4433"];
    let mut buf = vec![0u8; 4000];
    for (i, dst) in dsts.iter().enumerate() {
        let d = datagram(i as u32 + 3);
        c.send_to(&d, *dst).unwrap();
        let m = relay.recv_from_meta(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], &d[..]);
        assert_eq!(m.src.to_string(), "198.18.18.1:5000");
        assert_eq!(m.dst.to_string(), *dst, "the original destination");
        // The answer leaves from the original destination.
        let reply: Vec<u8> = d.iter().rev().copied().collect();
        relay.send_from(&reply, m.dst, m.src).unwrap();
        let (n, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!(from.to_string(), *dst);
        assert_eq!(&buf[..n], &reply[..]);
    }
    // No flow from that destination to that client: NotConnected.
    let e = relay
        .send_from(
            b"x",
            "198.18.18.79:1".parse().unwrap(),
            "198.18.18.1:5000".parse().unwrap(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected);
}

/// A blocking send that finds the output queue full waits for the driver to drain it
/// instead of failing: a burst larger than the queue (1 MiB) all goes out.
#[test]
fn a_udp_burst_larger_than_the_output_queue_blocks_instead_of_failing() {
    let (_rt, client, server) = pair(0, 22);
    let s = UdpSocket::bind_on(&server, "198.18.22.2:9000").unwrap();
    let c = UdpSocket::bind_on(&client, "198.18.22.1:9000").unwrap();
    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = 3000u32;
    for i in 0..n {
        let mut d = [i as u8; 1400];
        d[..4].copy_from_slice(&i.to_be_bytes());
        assert_eq!(c.send_to(&d, "198.18.22.2:9000").unwrap(), 1400, "send {i}");
    }
    // Whatever the receive buffer kept arrived intact, in order.
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 2000];
    let mut last = None;
    let mut got = 0;
    while let Ok((len, _)) = s.recv_from(&mut buf) {
        assert_eq!(len, 1400);
        let i = u32::from_be_bytes(buf[..4].try_into().unwrap());
        assert!(buf[4..len].iter().all(|&b| b == i as u8), "datagram {i}");
        assert!(last < Some(i), "datagram {i} after {last:?}");
        last = Some(i);
        got += 1;
    }
    assert!(got > 0);
    eprintln!(
        "output queue full {} times; {got} of {n} datagrams received",
        client.counters().udp_sndbuf_errors
    );
}

/// Reads and writes touch only their own socket's pipe: with the stack lock held (the
/// driver and every control call stopped), a write still queues and a read still returns
/// what the driver delivered before; once the lock is free, the queued bytes arrive.
#[test]
fn reads_and_writes_do_not_take_the_stack_lock() {
    let (_rt, client, server) = pair(0, 41);
    let listener = TcpListener::bind_on(&server, "198.18.41.2:80").unwrap();
    let mut c = TcpStream::connect_on(&client, "198.18.41.2:80").unwrap();
    let (mut s, _) = listener.accept().unwrap();
    c.write_all(b"first").unwrap();
    let mut buf = [0u8; 16];
    // Peeking waits until the driver has moved the bytes into the server's pipe.
    assert_eq!(s.peek(&mut buf).unwrap(), 5);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let guard = client.shared.lock();
    let t = thread::spawn(move || {
        let wrote = c.write(b"second").unwrap();
        let mut got = [0u8; 16];
        let n = s.read(&mut got).unwrap();
        done_tx.send((wrote, got[..n].to_vec())).unwrap();
        (c, s)
    });
    let (wrote, got) = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a read or a write waited for the stack lock");
    assert_eq!((wrote, &got[..]), (6, &b"first"[..]));
    drop(guard);
    let (_c, mut s) = t.join().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = [0u8; 6];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"second");
}

/// Received datagrams wait in the socket's own pipe, moved there by the driver: with the
/// stack lock held (the driver stopped), `recv_from` and `recv_many` still take the
/// datagrams that arrived before, and a pipe holding more than its share leaves the rest in
/// the stack's queue, which a receive that makes room sends the driver for.
#[test]
fn datagrams_are_received_without_the_driver() {
    let rt = Runtime::builder()
        .host("client", "198.18.45.1/24,fd00:5ac:45::1/64")
        .host("server", "198.18.45.2/24,fd00:5ac:45::2/64")
        .seed(7)
        // A pipe of 4 KiB: about three 1,000-byte datagrams (each charged 256 bytes more).
        .stream_buffers(4096, 4096)
        .build()
        .unwrap();
    let (client, server) = (rt.host("client").unwrap(), rt.host("server").unwrap());
    let us = UdpSocket::bind_on(&server, "198.18.45.2:53").unwrap();
    let uc = UdpSocket::bind_on(&client, "198.18.45.1:5353").unwrap();
    // One IPv6 datagram on a socket of its own: counted in `Udp6InDatagrams` when read.
    let us6 = UdpSocket::bind_on(&server, "[fd00:5ac:45::2]:53").unwrap();
    let uc6 = UdpSocket::bind_on(&client, "[fd00:5ac:45::1]:5353").unwrap();
    uc6.send_to(&[9; 500], "[fd00:5ac:45::2]:53").unwrap();
    for i in 0..8u8 {
        uc.send_to(&[i; 1000], "198.18.45.2:53").unwrap();
    }
    assert!(rt.settle(Duration::from_secs(10)));
    // Until the server's stack has taken them all in (its IP input counts each as it
    // arrives; `UdpInDatagrams` counts only what the application reads, as Linux's): the
    // driver has moved what fits by then.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.counters().ip_in_receives < 8 || server.counters().ip6_in_receives < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the datagrams never arrived"
        );
        thread::sleep(Duration::from_millis(5));
    }
    thread::sleep(Duration::from_millis(50));
    // Arrived, some moved into the socket's pipe, none read: `UdpInDatagrams` counts reads
    // (Linux `udp_recvmsg`), not arrivals.
    let c = server.counters();
    assert_eq!((c.udp_in_datagrams, c.udp6_in_datagrams), (0, 0));
    let guard = server.shared.lock();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let t = thread::spawn(move || {
        let mut buf = [0u8; 2000];
        let first = us.recv_from(&mut buf).unwrap();
        let rest = us.recv_many(64).unwrap();
        // A truncated read from the IPv6 socket's pipe (the driver is stopped).
        let mut short = [0u8; 10];
        let v6 = us6.recv_from(&mut short).unwrap();
        done_tx
            .send((
                first.0,
                buf[0],
                rest.iter().map(|d| d.data[0]).collect::<Vec<u8>>(),
                (v6.0, short[0]),
            ))
            .unwrap();
        us
    });
    let (n, first, rest, v6) = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a receive waited for the stack lock");
    assert_eq!((n, first), (1000, 0));
    assert_eq!(v6, (10, 9));
    // The pipe held three; the others stayed in the stack's queue.
    assert_eq!(rest, vec![1, 2]);
    drop(guard);
    let us = t.join().unwrap();
    us.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    while got.len() < 5 {
        got.extend(us.recv_many(64).unwrap().iter().map(|d| d.data[0]));
    }
    assert_eq!(got, vec![3, 4, 5, 6, 7]);
    // Each read counted once, from the pipe or from the stack's queue, by its family (the
    // truncated IPv6 read too).
    let c = server.counters();
    assert_eq!((c.udp_in_datagrams, c.udp6_in_datagrams), (8, 1));
}

/// A listener dropped with connections it never handed out resets them, as Linux's does,
/// whether the driver had moved them into the listener's pipe or not.
#[test]
fn a_dropped_listener_resets_the_connections_it_never_handed_out() {
    let (_rt, client, server) = pair(0, 42);
    let listener = TcpListener::bind_on(&server, "198.18.42.2:80").unwrap();
    let mut c = TcpStream::connect_on(&client, "198.18.42.2:80").unwrap();
    // Time for the driver to take it off the accept queue.
    thread::sleep(Duration::from_millis(100));
    drop(listener);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let e = c.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    assert_eq!(server.counters().abort_on_close, 1);
}

/// The calls that are not reads or writes do not take the stack lock either: with it held
/// (the driver stopped), the ones the socket's own state answers return at once (options,
/// addresses, SO_ERROR, shutdown); the ones only the stack can answer (opening a
/// connection, a datagram in or out, TCP_INFO) are queued for the driver and complete once
/// it runs.
#[test]
fn control_calls_do_not_take_the_stack_lock() {
    let (_rt, client, server) = pair(0, 43);
    let listener = TcpListener::bind_on(&server, "198.18.43.2:80").unwrap();
    let c = TcpStream::connect_on(&client, "198.18.43.2:80").unwrap();
    let (mut s, _) = listener.accept().unwrap();
    let us = UdpSocket::bind_on(&server, "198.18.43.2:53").unwrap();
    let uc = UdpSocket::bind_on(&client, "198.18.43.1:5353").unwrap();
    let (quick_tx, quick_rx) = std::sync::mpsc::channel();
    let (queued_tx, queued_rx) = std::sync::mpsc::channel();
    let guard = client.shared.lock();
    let host = client.clone();
    let t = thread::spawn(move || {
        c.set_nodelay(true).unwrap();
        c.set_ttl(9).unwrap();
        let quick = (
            c.nodelay().unwrap(),
            c.ttl().unwrap(),
            c.local_addr().unwrap().ip().to_string(),
            c.peer_addr().unwrap().to_string(),
            c.shutdown(Shutdown::Write).is_ok(),
            uc.local_addr().unwrap().to_string(),
            uc.take_error().unwrap().is_none(),
            c.set_ttl(0).unwrap_err().kind(),
        );
        quick_tx.send(quick).unwrap();
        // Only the driver can answer these.
        let c2 = TcpStream::connect_on(&host, "198.18.43.2:80").unwrap();
        uc.send_to(b"queued", "198.18.43.2:53").unwrap();
        // TCP_INFO is built by the driver when asked: our FIN is queued or sent.
        let state = c.info().unwrap().state;
        queued_tx.send(state).unwrap();
        (c, c2)
    });
    let quick = quick_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a control call waited for the stack lock");
    assert_eq!(
        quick,
        (
            true,
            9,
            "198.18.43.1".to_string(),
            "198.18.43.2:80".to_string(),
            true,
            "198.18.43.1:5353".to_string(),
            true,
            ErrorKind::InvalidInput,
        )
    );
    // The connect waits for the driver, and so for the lock.
    assert!(
        queued_rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "a connect went through with the driver stopped"
    );
    drop(guard);
    let state = queued_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the queued calls completed once the driver ran");
    assert!(
        matches!(
            state,
            Some(crate::tcp::State::FinWait1 | crate::tcp::State::FinWait2)
        ),
        "{state:?}"
    );
    let (_c, _c2) = t.join().unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = us.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from.to_string()),
        (&b"queued"[..], "198.18.43.1:5353".into())
    );
    // The FIN queued while the driver was stopped went out.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    let _ = listener.accept().unwrap();
}

/// Every call of the blocking sockets, the host and the runtime, and not one takes the stack
/// lock outside the driver's thread (the runtime counts who takes it).
#[test]
fn socket_calls_never_take_the_stack_lock() {
    let (rt, client, server) = pair(0, 44);
    let listener = TcpListener::bind_on(&server, "198.18.44.2:80").unwrap();
    let t = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        s.write_all(&all).unwrap();
        s.shutdown(Shutdown::Both).unwrap();
        drop(listener);
    });
    let mut c = TcpStream::connect_on(&client, "198.18.44.2:80").unwrap();
    c.set_nodelay(true).unwrap();
    c.set_ttl(33).unwrap();
    c.set_keepalive(None).unwrap();
    assert!(c.nodelay().unwrap());
    assert_eq!(c.ttl().unwrap(), 33);
    assert_eq!(c.peer_addr().unwrap().to_string(), "198.18.44.2:80");
    c.write_all(&[7u8; 100_000]).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, vec![7u8; 100_000]);
    assert!(c.info().unwrap().bytes_received >= 100_000);
    t.join().unwrap();
    let refused = TcpStream::connect_on(&client, "198.18.44.2:81").map(|_| ());
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    let us = UdpSocket::bind_on(&server, "198.18.44.2:53").unwrap();
    let uc = UdpSocket::bind_on(&client, "198.18.44.1:0").unwrap();
    uc.send_to(b"q", us.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = us.recv_from(&mut buf).unwrap();
    us.send_to(&buf[..n], from).unwrap();
    assert_eq!(uc.recv_from(&mut buf).unwrap().0, 1);
    assert!(uc.take_error().unwrap().is_none());
    let other = TcpListener::bind_on(&server, "198.18.44.2:82").unwrap();
    let a = TcpStream::connect_on(&client, "198.18.44.2:82").unwrap();
    a.abort();
    drop(other);
    drop(c);
    assert!(rt.settle(Duration::from_secs(10)));
    assert!(client.counters().active_opens >= 3);
    assert_eq!(rt.open_sockets(), 2);
    let _ = (rt.live_connections(), rt.link_stats());
    assert_eq!(
        rt.outside_locks(),
        0,
        "a call outside the driver took the stack lock"
    );
}

/// Threads waiting for their handshakes are woken by their own connection's outcome only:
/// one connection completing wakes its connect, and none of the nineteen still trying (their
/// SYNs go to an address nobody has). (Datagram receives: `a_datagram_wakes_only_its_own_socket`.)
#[test]
fn a_handshake_wakes_only_its_own_connect() {
    let (rt, client, server) = pair(0, 45);
    let listener = TcpListener::bind_on(&server, "198.18.45.2:80").unwrap();
    let waiting: Vec<_> = (0..19)
        .map(|_| {
            let host = client.clone();
            thread::spawn(move || TcpStream::connect_on(&host, "198.18.45.9:80").map(|_| ()))
        })
        .collect();
    thread::sleep(Duration::from_millis(100));
    let before = rt.wakeups();
    let c = TcpStream::connect_on(&client, "198.18.45.2:80").unwrap();
    let woken = rt.wakeups() - before;
    assert!(woken <= 1, "one handshake woke {woken} waiters");
    assert!(
        waiting.iter().all(|t| !t.is_finished()),
        "a connect to nobody returned"
    );
    assert_eq!(c.peer_addr().unwrap().to_string(), "198.18.45.2:80");
    drop(listener);
    // Stopping the runtime fails them all.
    drop(rt);
    for t in waiting {
        assert!(t.join().unwrap().is_err());
    }
}

/// A forwarder host on SimNet with a forward listener and the forwarder socket.
fn forwarder(
    net: u8,
    cfg: crate::stack::ForwardConfig,
) -> (Runtime, Host, ForwardListener, UdpSocket) {
    let (rt, client, gateway) = pair(0, net);
    let cfg = crate::stack::ForwardConfig {
        prefixes: vec![format!("198.18.{net}.0/24").parse().unwrap()],
        ..cfg
    };
    let events = ForwardListener::bind_on(&gateway, cfg.clone()).unwrap();
    let relay = UdpSocket::forwarder_on(&gateway, cfg).unwrap();
    (rt, client, events, relay)
}

/// Refusing a UDP flow from the forwarder socket: the client hears port unreachable from
/// the original destination, the flow ends, and the forward listener is told why; only the
/// forwarder socket refuses, and only flows that exist.
#[test]
fn the_forwarder_socket_refuses_a_udp_flow_and_the_listener_hears_it_ended() {
    let (_rt, client, events, relay) = forwarder(40, Default::default());
    let c = UdpSocket::bind_on(&client, "198.18.40.1:5000").unwrap();
    c.send_to(b"query", "198.18.40.53:53").unwrap();
    let m = relay.recv_from_meta(&mut [0u8; 64]).unwrap();
    assert_eq!(m.dst.to_string(), "198.18.40.53:53");
    let other = UdpSocket::bind_on(&client, "198.18.40.1:5001").unwrap();
    assert_eq!(
        other
            .refuse_flow(m.src, m.dst, crate::stack::Unreachable::Port)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    relay
        .refuse_flow(m.src, m.dst, crate::stack::Unreachable::Port)
        .unwrap();
    match events.next_event().unwrap() {
        Forwarded::UdpClosed {
            client,
            dst,
            reason,
        } => {
            assert_eq!((client, dst), (m.src, m.dst));
            assert_eq!(reason, crate::stack::UdpCloseReason::Refused);
        }
        _ => panic!("expected the flow's end"),
    }
    // The client's socket holds the port unreachable (as an unconnected Linux socket's
    // SO_ERROR does).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let e = loop {
        if let Some(e) = c.take_error().unwrap() {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no ICMP error came");
        thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(
        relay
            .refuse_flow(m.src, m.dst, crate::stack::Unreachable::Port)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound,
        "the flow is gone"
    );
}

/// A UDP flow that stays idle past its timeout ends, and the forward listener says so
/// (with TCP flows waiting before it left for `accept`).
#[test]
fn an_idle_udp_flow_ends_and_the_listener_hears_it() {
    let cfg = crate::stack::ForwardConfig {
        udp_timeout: crate::time::Duration::from_millis(200),
        ..Default::default()
    };
    let (_rt, client, events, relay) = forwarder(41, cfg);
    let c = UdpSocket::bind_on(&client, "198.18.41.1:5000").unwrap();
    c.send_to(b"x", "198.18.41.9:123").unwrap();
    let m = relay.recv_from_meta(&mut [0u8; 8]).unwrap();
    let t = std::time::Instant::now();
    match events.next_event().unwrap() {
        Forwarded::UdpClosed {
            client,
            dst,
            reason,
        } => {
            assert_eq!((client, dst), (m.src, m.dst));
            assert_eq!(reason, crate::stack::UdpCloseReason::Idle);
        }
        _ => panic!("expected the flow's end"),
    }
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    // The flow is gone: a reply finds none.
    assert_eq!(
        relay.send_from(b"late", m.dst, m.src).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
}

/// More UDP flow ends than the forward listener's cap on waiting echo requests (4096), all
/// unread until every flow ended: none is dropped (the application frees each flow's
/// upstream socket on its end), and no echo request was dropped either.
#[test]
fn thousands_of_udp_flow_ends_wait_unread_and_none_is_lost() {
    const FLOWS: u16 = 5000;
    let cfg = crate::stack::ForwardConfig {
        udp_timeout: crate::time::Duration::from_millis(200),
        ..Default::default()
    };
    let (_rt, client, events, _relay) = forwarder(46, cfg);
    let c = UdpSocket::bind_on(&client, "198.18.46.1:5000").unwrap();
    for port in 0..FLOWS {
        c.send_to(b"x", ("198.18.46.9", 1000 + port)).unwrap();
    }
    // Every flow idles out before the first event is read.
    thread::sleep(Duration::from_millis(600));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        for _ in 0..FLOWS {
            match events.next_event() {
                Ok(Forwarded::UdpClosed { dst, .. }) => {
                    if tx.send(dst.port()).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
        events
    });
    let mut ports = std::collections::HashSet::new();
    while ports.len() < usize::from(FLOWS) {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(p) => assert!(ports.insert(p), "flow {p} ended twice"),
            Err(_) => panic!("{} flow ends of {FLOWS} heard", ports.len()),
        }
    }
    let events = reader.join().unwrap();
    assert_eq!(events.echoes_dropped(), 0);
}

/// Past the cap on pending decisions, a SYN cookie completes the handshake and the
/// forward listener hands the connection out established (carrying bytes both ways); the
/// pending flow before it is still decided as usual.
#[test]
fn connections_completed_by_syn_cookies_come_out_of_the_forward_listener() {
    let cfg = crate::stack::ForwardConfig {
        max_pending: 1,
        ..Default::default()
    };
    let (_rt, client, events, _relay) = forwarder(42, cfg);
    let c1 = client.clone();
    let first = thread::spawn(move || TcpStream::connect_on(&c1, "198.18.42.80:80"));
    let held = events.accept().unwrap();
    assert!(!held.is_established());
    assert_eq!(held.destination().to_string(), "198.18.42.80:80");
    // The cap is full: this one gets a cookie, and connects without any decision.
    let mut second = TcpStream::connect_on(&client, "198.18.42.81:81").unwrap();
    second.write_all(b"ping").unwrap();
    let flow = match events.next_event().unwrap() {
        Forwarded::Flow(f) => f,
        _ => panic!("expected a flow"),
    };
    assert!(flow.is_established());
    assert_eq!(flow.destination().to_string(), "198.18.42.81:81");
    assert_eq!(flow.source(), second.local_addr().unwrap());
    let mut s = flow.accept().unwrap();
    assert_eq!(s.local_addr().unwrap().to_string(), "198.18.42.81:81");
    let mut got = [0u8; 4];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    s.write_all(b"pong").unwrap();
    second.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"pong");
    held.refuse(crate::stack::Refusal::Reset).unwrap();
    assert_eq!(
        first.join().unwrap().map(|_| ()).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    // A cookie connection nobody took is reset when the forward listener goes, as a closing
    // listener resets the connections it never handed out.
    let c1 = client.clone();
    let first = thread::spawn(move || TcpStream::connect_on(&c1, "198.18.42.80:82"));
    let held = events.accept().unwrap();
    let mut third = TcpStream::connect_on(&client, "198.18.42.81:83").unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    drop(held);
    drop(events);
    let mut b = [0u8; 1];
    assert_eq!(
        third.read(&mut b).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    drop(first);
}

/// `recv_many` takes the queued datagrams (up to its `max`, as many as the socket's pipe holds) in one call, each whole with
/// its client and original destination; `send_many` answers a batch in one call.
#[test]
fn the_forwarder_socket_receives_and_sends_datagrams_in_batches() {
    let (_rt, client, _events, relay) = forwarder(43, Default::default());
    let c = UdpSocket::bind_on(&client, "198.18.43.1:5000").unwrap();
    let n = 50u32;
    for i in 0..n {
        let dst = format!("198.18.43.{}:{}", 10 + i % 5, 1000 + i % 3);
        c.send_to(&datagram(i + 1), dst.as_str()).unwrap();
    }
    // All of them queued on the forwarder socket (one driver turn or a few after the sends),
    // counted as whole datagrams by the forwarder's IPv4 input (`UdpInDatagrams` counts reads
    // only): IpInReceives counts each fragment of those above the MTU, IpReasmReqds each
    // fragment again and IpReasmOKs each datagram they make.
    let whole = |c: &crate::tcp::Counters| c.ip_in_receives - c.ip_reasm_reqds + c.ip_reasm_oks;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while whole(&_rt.host("server").unwrap().counters()) < u64::from(n) {
        assert!(std::time::Instant::now() < deadline, "datagrams not in");
        thread::sleep(Duration::from_millis(5));
    }
    let before = _rt.host("server").unwrap().counters();
    assert!(before.ip_reasm_oks > 0, "some came in fragments");
    // Queued, none read yet: nothing counted.
    assert_eq!(before.udp_in_datagrams, 0);
    let first = relay.recv_many(10).unwrap();
    assert_eq!(first.len(), 10, "up to max");
    // One call takes what the socket's pipe holds (64 KiB's worth of these 75 KB), the next
    // the rest, which the room the first call made let the driver move in.
    let mut rest = relay.recv_many(1000).unwrap();
    assert!(
        rest.len() > 20,
        "a pipe's worth in one call: {}",
        rest.len()
    );
    let mut calls = 1;
    while rest.len() < n as usize - 10 {
        rest.extend(relay.recv_many(1000).unwrap());
        calls += 1;
    }
    assert!(calls <= 3, "{calls} calls");
    assert_eq!(rest.len(), n as usize - 10);
    let got: Vec<_> = first.into_iter().chain(rest).collect();
    for (i, d) in got.iter().enumerate() {
        let i = i as u32;
        assert_eq!(d.data, datagram(i + 1), "datagram {i}");
        assert_eq!(d.src.to_string(), "198.18.43.1:5000");
        assert_eq!(
            d.dst.to_string(),
            format!("198.18.43.{}:{}", 10 + i % 5, 1000 + i % 3)
        );
    }
    // Read: each counted once (`UdpInDatagrams` counts the forwarder socket's reads).
    assert_eq!(
        _rt.host("server").unwrap().counters().udp_in_datagrams,
        u64::from(n)
    );
    let replies: Vec<Datagram> = got
        .iter()
        .map(|d| Datagram {
            data: d.data.iter().rev().copied().collect(),
            src: d.dst,
            dst: d.src,
        })
        .collect();
    assert_eq!(relay.send_many(&replies).unwrap(), replies.len());
    let mut buf = vec![0u8; 4000];
    for r in &replies {
        let (len, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..len], from), (&r.data[..], r.src));
    }
    // A batch whose first datagram has no flow fails; a later one ends it there.
    let stray = Datagram {
        data: b"x".to_vec(),
        src: "198.18.43.99:1".parse().unwrap(),
        dst: "198.18.43.1:5000".parse().unwrap(),
    };
    assert_eq!(
        relay
            .send_many(std::slice::from_ref(&stray))
            .unwrap_err()
            .kind(),
        ErrorKind::NotConnected
    );
    assert_eq!(relay.send_many(&[replies[0].clone(), stray]).unwrap(), 1);
    assert_eq!(relay.send_many(&[]).unwrap(), 0);
}

/// An echo request to a forwarded destination comes out of the forward listener (with its
/// identifier, sequence number and data) instead of being dropped; replying answers it
/// from the pinged address, refusing sends a destination unreachable from it. The pinging
/// side is raw packets on the other end of a `device::pair`.
#[cfg(target_os = "linux")]
#[test]
fn echo_requests_to_forwarded_destinations_come_out_of_the_forward_listener() {
    use crate::device::Device;
    use crate::time::Instant as T;
    use crate::wire::{IpProtocol, icmpv4, ipv4};
    use core::net::Ipv4Addr;
    let (a, mut b) = crate::device::pair::pair(1500).unwrap();
    let rt = Runtime::builder()
        .host("gateway", "198.18.44.2/24")
        .device(a)
        .build()
        .unwrap();
    let cfg = crate::stack::ForwardConfig {
        prefixes: vec!["198.18.44.0/24".parse().unwrap()],
        ..Default::default()
    };
    let events = ForwardListener::bind_on(&rt.host("gateway").unwrap(), cfg).unwrap();
    let (me, far) = (
        Ipv4Addr::new(198, 18, 44, 1),
        Ipv4Addr::new(198, 18, 44, 77),
    );
    let ping = |b: &mut crate::device::pair::PairEnd, seq_no: u16| {
        let req = icmpv4::Repr::EchoRequest {
            ident: 7,
            seq_no,
            data: b"are you there",
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
    };
    // The next packet the gateway sends: its source and ICMP message, parsed.
    let answer = |b: &mut crate::device::pair::PairEnd| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 2000];
        loop {
            if let Some(n) = b.recv(T::ZERO, &mut buf).unwrap() {
                let ip = ipv4::Packet::new_checked(&buf[..n]).unwrap();
                assert_eq!(ip.dst_addr(), me);
                let m = icmpv4::Packet::new_checked(ip.payload()).unwrap();
                let owned = format!("{:?}", icmpv4::Repr::parse(&m, true).unwrap());
                return (ip.src_addr(), owned);
            }
            assert!(std::time::Instant::now() < deadline, "no answer");
            thread::sleep(Duration::from_millis(2));
        }
    };
    ping(&mut b, 1);
    let Forwarded::Echo(e) = events.next_event().unwrap() else {
        panic!("expected the echo request");
    };
    assert_eq!(e.source(), core::net::IpAddr::V4(me));
    assert_eq!(e.destination(), core::net::IpAddr::V4(far));
    assert_eq!((e.ident_seq(), e.data()), ((7, 1), &b"are you there"[..]));
    e.reply().unwrap();
    let (from, msg) = answer(&mut b);
    assert_eq!(from, far, "the reply comes from the pinged address");
    assert!(msg.starts_with("EchoReply"), "{msg}");
    assert!(msg.contains("seq_no: 1"), "{msg}");
    ping(&mut b, 2);
    let Forwarded::Echo(e) = events.next_event().unwrap() else {
        panic!("expected the echo request");
    };
    e.refuse(crate::stack::Unreachable::Host).unwrap();
    let (from, msg) = answer(&mut b);
    assert_eq!(from, far);
    assert!(msg.contains("HostUnreachable"), "{msg}");
    // Ignored: nothing goes out.
    ping(&mut b, 3);
    let Forwarded::Echo(e) = events.next_event().unwrap() else {
        panic!("expected the echo request");
    };
    e.ignore().unwrap();
    thread::sleep(Duration::from_millis(50));
    assert_eq!(b.recv(T::ZERO, &mut [0u8; 2000]).unwrap(), None);
}

#[test]
fn stream_buffers_set_how_much_a_write_queues_and_a_read_takes_at_once() {
    // What a stream holds between the application and its connection each way: 64 KiB by
    // default, as the builder says otherwise.
    for (net, bufs, cap) in [(61u8, None, 64 << 10), (62, Some(256 << 10), 256 << 10)] {
        let mut b = Runtime::builder()
            .host("client", &format!("198.18.{net}.1/24"))
            .host("server", &format!("198.18.{net}.2/24"))
            .delay(Duration::from_millis(1))
            .seed(7);
        if let Some(n) = bufs {
            b = b.stream_buffers(n, n);
        }
        let rt = b.build().unwrap();
        let (client, server) = (rt.host("client").unwrap(), rt.host("server").unwrap());
        let listener = TcpListener::bind_on(&server, format!("198.18.{net}.2:80")).unwrap();
        let c = TcpStream::connect_on(&client, format!("198.18.{net}.2:80")).unwrap();
        let (s, _) = listener.accept().unwrap();
        c.set_nonblocking(true).unwrap();
        // One write queues as much as the pipe holds, whatever the connection took yet.
        let data: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        let first = (&c).write(&data).unwrap();
        assert_eq!(first, cap, "one write, stream buffers {bufs:?}");
        c.set_nonblocking(false).unwrap();
        (&c).write_all(&data[first..]).unwrap();
        // The server reads with a large buffer: no read takes more than its pipe holds, and
        // with the larger pipe some take more than the default's 64 KiB.
        let mut got = vec![0u8; 512 << 10];
        let (mut all, mut largest) = (Vec::new(), 0);
        while all.len() < data.len() {
            let n = (&s).read(&mut got).unwrap();
            assert!(n > 0 && n <= cap, "read {n} with stream buffers {bufs:?}");
            largest = largest.max(n);
            all.extend_from_slice(&got[..n]);
            // Time for the connection to receive more than one pipe's worth.
            thread::sleep(Duration::from_millis(5));
        }
        assert!(all == data, "bytes differ");
        if bufs.is_some() {
            assert!(largest > 64 << 10, "largest read {largest}");
        }
    }
}
