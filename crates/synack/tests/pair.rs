//! Two runtimes, one host each, joined by an in-memory device pair (`device::pair`): TCP
//! transfers both ways through the blocking and the tokio façades, and teardown.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use synack::device::pair::{pair, pair_with_queue};
use synack::net::{Runtime, Shutdown, TcpListener, TcpStream};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8).wrapping_add(seed))
        .collect()
}

/// Whether every packet each runtime's device took was read by the other's, once what is in
/// flight has landed (waits up to 2 s for the last ACKs).
fn all_sent_were_read(ra: &Runtime, rb: &Runtime) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (sa, sb) = (ra.device_stats(), rb.device_stats());
        if sa.tx_packets == sb.rx_packets && sb.tx_packets == sa.rx_packets {
            return true;
        }
        if Instant::now() > deadline {
            eprintln!("a: {sa:?}\nb: {sb:?}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A thread-driven runtime on `end` with one host.
fn runtime(name: &str, cidr: &str, end: synack::device::pair::PairEnd) -> Runtime {
    Runtime::builder()
        .host(name, cidr)
        .device(end)
        .build()
        .expect("a runtime on a pair end")
}

#[test]
fn blocking_runtimes_joined_by_a_pair_carry_a_transfer_both_ways() {
    let (a, b) = pair(1500).unwrap();
    let ra = runtime("a", "198.18.10.1/24", a);
    let rb = runtime("b", "198.18.10.2/24", b);
    const LEN: usize = 3_000_000;
    let listener = TcpListener::bind_on(&rb.host("b").unwrap(), "198.18.10.2:80").unwrap();
    // The server reads everything, then sends its own stream back.
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&pattern(LEN, 7)).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        got
    });
    let mut c = TcpStream::connect_on(&ra.host("a").unwrap(), "198.18.10.2:80").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(&pattern(LEN, 1)).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    let got = server.join().unwrap();
    assert!(
        got == pattern(LEN, 1),
        "a → b: {} of {LEN} bytes",
        got.len()
    );
    assert!(
        back == pattern(LEN, 7),
        "b → a: {} of {LEN} bytes",
        back.len()
    );
    let (sa, sb) = (ra.device_stats(), rb.device_stats());
    assert_eq!(
        (sa.tx_errors, sb.tx_errors, sa.rx_errors, sb.rx_errors),
        (0, 0, 0, 0)
    );
    assert!(all_sent_were_read(&ra, &rb));
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_runtimes_joined_by_a_pair_carry_a_transfer_both_ways() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, b) = pair(1500).unwrap();
        let build = |name: &str, cidr: &str, end| {
            Runtime::builder()
                .host(name, cidr)
                .device(end)
                .build_tokio()
                .expect("a driver task on a pair end")
        };
        let ra = build("a", "198.18.11.1/24", a);
        let rb = build("b", "198.18.11.2/24", b);
        const LEN: usize = 2_000_000;
        const CONNS: u8 = 8;
        let l =
            synack::tokio::TcpListener::bind_on(&rb.host("b").unwrap(), "198.18.11.2:80").unwrap();
        // Each connection: the client's stream up, then the server's own stream down.
        let server = tokio::spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..CONNS {
                let (mut s, _) = l.accept().await.unwrap();
                tasks.push(tokio::spawn(async move {
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).await.unwrap();
                    let seed = got[0];
                    assert!(got == pattern(LEN, seed), "a → b: {} bytes", got.len());
                    s.write_all(&pattern(LEN, seed.wrapping_add(100)))
                        .await
                        .unwrap();
                    s.shutdown().await.unwrap();
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let host = ra.host("a").unwrap();
        let clients: Vec<_> = (0..CONNS)
            .map(|i| {
                let host = host.clone();
                tokio::spawn(async move {
                    let mut s = synack::tokio::TcpStream::connect_on(&host, "198.18.11.2:80")
                        .await
                        .unwrap();
                    s.write_all(&pattern(LEN, i)).await.unwrap();
                    s.shutdown().await.unwrap();
                    let mut back = Vec::new();
                    s.read_to_end(&mut back).await.unwrap();
                    assert!(
                        back == pattern(LEN, i.wrapping_add(100)),
                        "b → a: {} bytes",
                        back.len()
                    );
                })
            })
            .collect();
        let all = async {
            for c in clients {
                c.await.unwrap();
            }
            server.await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("every transfer ends");
        // Every packet an end took was read by the other (a burst larger than the queue may
        // have been dropped at the send, counted in tx_errors, and retransmitted).
        assert!(all_sent_were_read(&ra, &rb));
        drop((ra, rb));
    });
}

#[test]
fn a_small_queue_drops_and_tcp_recovers() {
    // Eight packets a queue: a window's burst overflows it; the runtime counts the drops as
    // send errors and TCP retransmits until every byte is through.
    let (a, b) = pair_with_queue(1500, 8).unwrap();
    let ra = runtime("a", "198.18.12.1/24", a);
    let rb = runtime("b", "198.18.12.2/24", b);
    let listener = TcpListener::bind_on(&rb.host("b").unwrap(), "198.18.12.2:80").unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let mut c = TcpStream::connect_on(&ra.host("a").unwrap(), "198.18.12.2:80").unwrap();
    let data = pattern(300_000, 3);
    c.write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let got = server.join().unwrap();
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
    assert!(
        ra.device_stats().tx_errors > 0,
        "a burst larger than the queue is dropped and counted"
    );
}

#[test]
fn dropping_one_runtime_leaves_the_other_working_and_unhung() {
    let (a, b) = pair(1500).unwrap();
    let ra = runtime("a", "198.18.13.1/24", a);
    let rb = runtime("b", "198.18.13.2/24", b);
    let listener = TcpListener::bind_on(&rb.host("b").unwrap(), "198.18.13.2:80").unwrap();
    let mut c = TcpStream::connect_on(&ra.host("a").unwrap(), "198.18.13.2:80").unwrap();
    let (mut s, _) = listener.accept().unwrap();
    c.write_all(b"before").unwrap();
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"before");

    // b goes: its driver stops and its end of the pair is dropped.
    let t = Instant::now();
    drop(s);
    drop(listener);
    drop(rb);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "b's runtime stops at once"
    );
    // a's sends now fail (counted). The write only hands "after" to a's driver, which sends
    // it on its next turn; a call queued before that turn is answered first (a turn runs the
    // queued calls, then moves the pipes' bytes and sends), so on a loaded machine a stats
    // call right after the write can overtake the send: wait for the error (bounded: 10 s).
    c.write_all(b"after").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ra.device_stats().tx_errors == 0 {
        assert!(Instant::now() < deadline, "sends to a gone end are counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    // What b flushed before it went (its FIN, an ACK) was in a's inbox before b's end was
    // dropped, and the turn that failed to send read the inbox first (a turn takes the
    // packets, then sends), so a has taken all of it; nothing can join it now that b's end is
    // gone. The count standing still for a while says so too (bounded: 10 s).
    let mut rx_before = ra.device_stats().rx_packets;
    let (mut still_since, start) = (Instant::now(), Instant::now());
    while still_since.elapsed() < Duration::from_millis(300)
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
        let now = ra.device_stats().rx_packets;
        if now != rx_before {
            (rx_before, still_since) = (now, Instant::now());
        }
    }
    // Nothing arrives, and a read ends rather than hangs: it times out, or finds the end of
    // b's bytes when b's FIN got out before b went.
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    match c.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes from a gone end"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
    }
    assert_eq!(
        ra.device_stats().rx_packets,
        rx_before,
        "nothing arrives from a gone end"
    );
    let t = Instant::now();
    drop(c);
    drop(ra);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "a's runtime stops at once"
    );
}
