//! The forwarder socket's relay loop, datagram by datagram against in batches: a client
//! sends bursts of datagrams to forwarded destinations, a relay thread echoes each back from
//! its original destination, the client waits for the burst's echoes before the next one.
//! With `single` the relay uses `recv_from_meta` / `send_from` (a trip through the
//! runtime's driver per datagram sent; each receive takes a datagram the driver moved into
//! the socket's own queue), with `batch` it uses `recv_many` / `send_many` (a trip per
//! batch sent); the client side is the same in both. Prints the time per datagram; under
//! `valgrind --tool=callgrind` the instruction counts compare the two.
//!
//! `cargo run --release -p synack --example fwd_udp_batch -- single|batch|both [BURSTS]`

use std::time::Instant;

use synack::net::{Datagram, Runtime, UdpSocket};
use synack::stack::ForwardConfig;

const BURST: usize = 64;
const LEN: usize = 1000;

fn run(batch: bool, bursts: usize) -> std::time::Duration {
    let rt = Runtime::builder()
        .host("client", "198.18.0.1/24")
        .host("gateway", "198.18.0.2/24")
        .build()
        .expect("a runtime");
    let (client, gw) = (rt.host("client").unwrap(), rt.host("gateway").unwrap());
    let cfg = ForwardConfig {
        prefixes: vec!["198.18.0.0/24".parse().unwrap()],
        ..ForwardConfig::default()
    };
    let relay = UdpSocket::forwarder_on(&gw, cfg).expect("the forwarder socket");
    let total = bursts * BURST;
    let relayed = std::thread::spawn(move || {
        let mut n = 0;
        let mut buf = vec![0u8; 2048];
        while n < total {
            if batch {
                let got = relay.recv_many(BURST).expect("recv_many");
                let back: Vec<Datagram> = got
                    .into_iter()
                    .map(|d| Datagram {
                        data: d.data,
                        src: d.dst,
                        dst: d.src,
                    })
                    .collect();
                let mut sent = 0;
                while sent < back.len() {
                    sent += relay.send_many(&back[sent..]).expect("send_many");
                }
                n += back.len();
            } else {
                let m = relay.recv_from_meta(&mut buf).expect("recv_from_meta");
                relay
                    .send_from(&buf[..m.len], m.dst, m.src)
                    .expect("send_from");
                n += 1;
            }
        }
    });
    let c = UdpSocket::bind_on(&client, "198.18.0.1:5000").expect("the client");
    let me = c.local_addr().unwrap();
    let t = Instant::now();
    for b in 0..bursts {
        let out: Vec<Datagram> = (0..BURST)
            .map(|i| Datagram {
                data: vec![(b + i) as u8; LEN],
                src: me,
                dst: format!("198.18.0.{}:{}", 10 + i % 8, 1000 + i)
                    .parse()
                    .unwrap(),
            })
            .collect();
        let mut sent = 0;
        while sent < out.len() {
            sent += c.send_many(&out[sent..]).expect("client send_many");
        }
        let mut got = 0;
        while got < BURST {
            got += c.recv_many(BURST).expect("client recv_many").len();
        }
    }
    let took = t.elapsed();
    relayed.join().expect("the relay");
    took
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("both", String::as_str);
    let bursts = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let modes: &[bool] = match mode {
        "single" => &[false],
        "batch" => &[true],
        _ => &[false, true, false, true],
    };
    for &batch in modes {
        let took = run(batch, bursts);
        let per = took.as_nanos() as f64 / (bursts * BURST) as f64;
        println!(
            "{}: {} datagrams of {LEN} bytes relayed in {:.1} ms, {per:.0} ns each",
            if batch { "batch " } else { "single" },
            bursts * BURST,
            took.as_secs_f64() * 1e3,
        );
    }
}
