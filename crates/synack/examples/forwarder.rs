//! synack as a forwarder (the engine of a tun2socks proxy or a userspace VPN), on SimNet in
//! virtual time: a client host routes everything through the forwarder, which terminates
//! every flow to *any* address in 198.18.0.0/15 and decides on each before answering.
//!
//! The "policy" here: TCP to 198.19.0.80:80 is accepted (and answered in upper case, where a
//! real forwarder would copy bytes to a socket it opened to the original destination), TCP
//! anywhere else is refused with a RST, UDP to port 53 gets an answer from the address it
//! was sent to, and pings are answered for 198.19.0.80 only (refused as host unreachable
//! elsewhere).
//!
//! Run it with `cargo run -p synack --example forwarder`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use synack::device::SimNet;
use synack::device::impair::LinkConfig;
use synack::stack::{
    ForwardConfig, ForwardEvent, Ipv4Cidr, Refusal, SocketHandle, Stack, StackConfig, Unreachable,
};
use synack::time::{Duration, Instant};

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const FORWARDER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const WEB: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 80)), 80);
const CLOSED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 81)), 443);
const DNS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 53)), 53);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut net = SimNet::new(1);
    let (c, f) = (net.add_host("client"), net.add_host("forwarder"));
    net.connect(c, f, LinkConfig::delay_ms(10))?;

    let mut client = Stack::new(StackConfig::default(), [1; 32]);
    client.add_address(Ipv4Cidr::new(CLIENT_IP, 24));
    client.set_gateway(Some(FORWARDER_IP));

    let mut fwd = Stack::new(StackConfig::default(), [2; 32]);
    fwd.add_address(Ipv4Cidr::new(FORWARDER_IP, 24));
    let handles = fwd.enable_forwarding(ForwardConfig {
        prefixes: vec![Ipv4Cidr::new(Ipv4Addr::new(198, 18, 0, 0), 15).into()],
        ..ForwardConfig::default()
    });

    // The client: two connections, a DNS query.
    let mut now = Instant::ZERO;
    let web = client.connect(now, WEB, None)?;
    let closed = client.connect(now, CLOSED, None)?;
    let dns = client.udp_bind(SocketAddr::new(IpAddr::V4(CLIENT_IP), 0))?;
    client.send_to(now, dns, b"A? example.test", DNS)?;
    client.send(now, web, b"hello through the forwarder")?;

    let mut accepted: Vec<SocketHandle> = Vec::new();
    let (mut reply, mut answer, mut refused) = (Vec::new(), None, None);
    let mut buf = vec![0u8; 65536];
    for _ in 0..100_000 {
        // The forwarder's application: decide on every new flow.
        while let Some(event) = fwd.poll_forward() {
            match event {
                ForwardEvent::Tcp(p) if p.dst == WEB => {
                    println!("{:>8?}  TCP {} -> {}: accept", now, p.src, p.dst);
                    accepted.push(fwd.forward_accept(now, p.id)?);
                }
                ForwardEvent::Tcp(p) => {
                    println!("{:>8?}  TCP {} -> {}: refuse (RST)", now, p.src, p.dst);
                    fwd.forward_refuse(now, p.id, Refusal::Reset)?;
                }
                ForwardEvent::Echo(e) if e.dst == WEB.ip() => fwd.forward_echo_reply(e.id)?,
                ForwardEvent::Echo(e) => fwd.forward_echo_refuse(e.id, Unreachable::Host)?,
                ForwardEvent::UdpClosed {
                    client,
                    dst,
                    reason,
                } => {
                    println!("{:>8?}  UDP {client} -> {dst} ended: {reason:?}", now);
                }
                _ => {}
            }
        }
        while let Ok(m) = fwd.recv_from(handles.udp, &mut buf) {
            println!(
                "{:>8?}  UDP {} -> {}: {:?}",
                now,
                m.src,
                m.dst,
                String::from_utf8_lossy(&buf[..m.len])
            );
            // Answer from the address the client sent to.
            fwd.send_from(now, handles.udp, b"198.19.0.99", m.dst, m.src)?;
        }
        for &h in &accepted {
            while let Ok(n) = fwd.recv(now, h, &mut buf) {
                if n == 0 {
                    break;
                }
                let upper = buf[..n].to_ascii_uppercase();
                fwd.send(now, h, &upper)?;
            }
        }
        // The client reads what came back.
        if let Ok(n) = client.recv(now, web, &mut buf) {
            reply.extend_from_slice(&buf[..n]);
        }
        if let Ok(m) = client.recv_from(dns, &mut buf) {
            answer = Some((m.src, String::from_utf8_lossy(&buf[..m.len]).into_owned()));
        }
        if refused.is_none() {
            if let Err(e) = client.recv(now, closed, &mut buf) {
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::NotConnected
                {
                    refused = Some(e);
                }
            }
        }
        if reply.len() == 27 && answer.is_some() && refused.is_some() {
            break;
        }

        // The medium: packets out of both stacks, deliveries in, timers, the next instant.
        for (host, stack) in [(c, &mut client), (f, &mut fwd)] {
            while let Some(n) = stack.poll_transmit(now, &mut buf) {
                net.send(now, host, &buf[..n])?;
            }
        }
        let mut delivered = false;
        while let Some(d) = net.poll_deliver(now) {
            delivered = true;
            let stack = if d.to == c { &mut client } else { &mut fwd };
            stack.handle_packet(d.at, &d.packet);
            net.recycle(d.packet);
        }
        client.handle_timeout(now);
        fwd.handle_timeout(now);
        let busy = [client.poll_timeout(), fwd.poll_timeout()]
            .into_iter()
            .flatten()
            .any(|t| t <= now);
        let next = [
            net.next_delivery(),
            client.poll_timeout(),
            fwd.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .filter(|&t| t > now)
        .min();
        // Time moves on once everything due now is done (deliveries may have brought the
        // application something to decide).
        if !busy && !delivered {
            now = next.unwrap_or(now + Duration::from_millis(1));
        }
    }
    println!("client read: {:?}", String::from_utf8_lossy(&reply));
    if reply != b"HELLO THROUGH THE FORWARDER" {
        return Err("the accepted connection did not carry the bytes both ways".into());
    }
    println!("client's DNS answer: {:?}", answer.ok_or("no DNS answer")?);
    println!(
        "client's connection to {CLOSED}: {}",
        refused.ok_or("not refused")?
    );
    let c = fwd.counters();
    println!(
        "forwarder: {} pending decisions made, {} refused, {} UDP flow(s)",
        c.fwd_tcp_pending, c.fwd_refused, c.fwd_udp_flows
    );
    Ok(())
}
