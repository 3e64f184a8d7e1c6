//! Stack tests: two stacks joined by a delay line in virtual time.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::Arc;

use super::*;
use crate::tcp::Config;
use crate::tcp::{Error, Shutdown, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;
use crate::wire::{IpProtocol, icmpv4, ipv4, tcp as wtcp};

const A_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The hosts' IPv6 addresses (a ULA prefix, RFC 4193): every test host is dual-stack.
const A_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 1);
const B_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 2);

fn stack(ip: Ipv4Addr, name: &'static str, secret: u8) -> Stack {
    let cfg = StackConfig {
        name: name.into(),
        trace: true,
        ..StackConfig::default()
    };
    let mut s = Stack::new(cfg, [secret; 32]);
    s.add_address(Ipv4Cidr::new(ip, 24));
    let ip6 = if ip == A_IP { A_IP6 } else { B_IP6 };
    s.add_address(Ipv6Cidr::new(ip6, 64));
    s
}

/// Two stacks and the packets between them.
struct Net {
    a: Stack,
    b: Stack,
    now: Instant,
    delay: Duration,
    wire: VecDeque<(Instant, bool, Vec<u8>)>,
    /// Drop every packet from a to b while set (an unreachable host).
    blackhole_b: bool,
    /// Captured packets (time, from a?, bytes).
    log: Vec<(Instant, bool, Vec<u8>)>,
}

impl Net {
    fn new() -> Net {
        Net {
            a: stack(A_IP, "client", 1),
            b: stack(B_IP, "server", 2),
            now: Instant::ZERO,
            delay: Duration::from_millis(5),
            wire: VecDeque::new(),
            blackhole_b: false,
            log: Vec::new(),
        }
    }

    fn flush(&mut self) {
        let mut buf = vec![0u8; 2048];
        for from_a in [true, false] {
            let s = if from_a { &mut self.a } else { &mut self.b };
            for _ in 0..100_000 {
                let Some(n) = s.poll_transmit(self.now, &mut buf) else {
                    break;
                };
                self.log.push((self.now, from_a, buf[..n].to_vec()));
                if from_a && self.blackhole_b {
                    continue;
                }
                self.wire
                    .push_back((self.now + self.delay, from_a, buf[..n].to_vec()));
            }
        }
    }

    /// One step of virtual time; false when nothing is left to do.
    fn step(&mut self) -> bool {
        self.flush();
        while self.wire.front().is_some_and(|(t, _, _)| *t <= self.now) {
            let (_, from_a, p) = self.wire.pop_front().unwrap();
            if from_a {
                self.b.handle_packet(self.now, &p);
            } else {
                self.a.handle_packet(self.now, &p);
            }
            self.flush();
        }
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.flush();
        let next = [
            self.wire.front().map(|w| w.0),
            self.a.poll_timeout(),
            self.b.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .filter(|&t| t > self.now)
        .min();
        match next {
            Some(t) => {
                self.now = t;
                true
            }
            None => false,
        }
    }

    /// Sends `data` from a's connection `c` to b's connection `s` and returns what b read,
    /// once it has as much as was sent (within `limit` of virtual time).
    fn transfer(
        &mut self,
        c: SocketHandle,
        s: SocketHandle,
        data: &[u8],
        limit: Duration,
    ) -> Vec<u8> {
        let (mut sent, mut got) = (0, Vec::new());
        let mut buf = vec![0u8; 65536];
        self.run_until(
            |n| {
                if sent < data.len() {
                    sent += n.a.send(n.now, c, &data[sent..]).unwrap();
                }
                loop {
                    let k = n.b.recv(n.now, s, &mut buf).unwrap();
                    if k == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..k]);
                }
                got.len() == data.len()
            },
            limit,
        );
        got
    }

    fn run_until(&mut self, mut done: impl FnMut(&mut Net) -> bool, limit: Duration) {
        let end = self.now + limit;
        for _ in 0..10_000_000 {
            if done(self) || self.now > end || !self.step() {
                break;
            }
        }
        assert!(done(self), "not reached by {:?}", self.now);
    }
}

/// An IPv4 packet carrying the ICMP message `repr`, checksums filled in.
pub(super) fn ip_icmp(src: Ipv4Addr, dst: Ipv4Addr, repr: &icmpv4::Repr<'_>) -> Vec<u8> {
    let mut pkt = vec![0u8; 20 + repr.buffer_len()];
    let mut ip = ipv4::Packet::new_unchecked(&mut pkt[..]);
    ipv4::Repr::new(src, dst, IpProtocol::Icmp, repr.buffer_len())
        .emit(&mut ip, true)
        .unwrap();
    repr.emit(&mut icmpv4::Packet::new_unchecked(ip.payload_mut()), true)
        .unwrap();
    pkt
}

fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(B_IP), port)
}

/// Connects a to b:port through a listener and returns (client handle, server handle).
fn connected(net: &mut Net, port: u16) -> (SocketHandle, SocketHandle, SocketHandle) {
    connected_to(net, server_addr(port))
}

/// Connects a to `server` (an address of b's) through a listener on it; returns (listener,
/// client handle, server handle).
fn connected_to(net: &mut Net, server: SocketAddr) -> (SocketHandle, SocketHandle, SocketHandle) {
    let l = net.b.listen(server, 16).unwrap();
    let c = net.a.connect(net.now, server, None).unwrap();
    let mut accepted = None;
    net.run_until(
        |n| {
            if accepted.is_none() {
                accepted = n.b.accept(l).unwrap();
            }
            accepted.is_some() && n.a.connection(c).unwrap().state() == State::Established
        },
        Duration::from_secs(5),
    );
    (l, c, accepted.unwrap())
}

#[test]
fn connect_accept_transfer_close() {
    let mut net = Net::new();
    let (_l, c, s) = connected(&mut net, 80);
    let local = net.a.connection(c).unwrap().local();
    assert!(
        (32768..=60999).contains(&local.port()),
        "ephemeral port {local}"
    );
    assert_eq!(net.b.connection(s).unwrap().remote(), local);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let got = net.transfer(c, s, &data, Duration::from_secs(10));
    assert!(got == data);
    net.a.close(net.now, c);
    net.run_until(
        |n| n.b.connection(s).unwrap().peer_closed(),
        Duration::from_secs(5),
    );
    assert_eq!(
        net.b.recv(net.now, s, &mut [0u8; 16]).unwrap(),
        0,
        "EOF after the FIN"
    );
    net.b.close(net.now, s);
    // The server's side goes LAST-ACK -> CLOSED and is freed; the client's sits in TIME-WAIT
    // for 60 s and is freed after.
    net.run_until(|n| n.b.connection_count() == 0, Duration::from_secs(5));
    assert_eq!(net.a.connection_count(), 1);
    net.run_until(|n| n.a.connection_count() == 0, Duration::from_secs(61));
    assert_eq!(net.a.counters().active_opens, 1);
    assert_eq!(net.b.counters().passive_opens, 1);
}

/// `connect_then` enters the connection in the demux table before its open, so that one
/// slot lookup serves the bucket, the open and the refresh: an open that fails takes it out
/// again (with its slot), leaving nothing behind: no demux entry, no slot, nothing to send, and
/// the 4-tuple free for the next connect.
#[test]
fn a_connect_whose_open_fails_leaves_no_demux_entry_slot_or_segment() {
    let mut s = stack(A_IP, "a", 1);
    let (now, remote) = (Instant::ZERO, server_addr(80));
    let local = SocketAddr::new(IpAddr::V4(A_IP), 40_000);
    let tuple = (local.ip(), local.port(), remote.ip(), remote.port());
    let mut buf = [0u8; 1500];
    // Two shapes of a failed open: one that fails before the connection is opened, and
    // Fast Open's, whose open succeeds (SYN-SENT, remote set, a deadline armed) before the
    // data it carries is refused.
    for connects_first in [false, true] {
        let tcp = s.cfg.tcp.clone();
        let e = s
            .connect_then(now, remote, Some(local), tcp, |c, r, iss, ctr| {
                if connects_first {
                    c.connect(now, r, iss, ctr)?;
                    assert_eq!(c.state(), State::SynSent);
                }
                Err(Error::InvalidInput)
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            !s.conns.contains(&tuple),
            "the failed open's demux entry stayed (connected first: {connects_first})"
        );
        assert_eq!(s.connection_count(), 0);
        assert!(
            s.slots
                .iter()
                .all(|slot| matches!(slot.kind, slots::SlotKind::Free)),
            "the failed open's slot stayed (connected first: {connects_first})"
        );
        assert_eq!(s.poll_timeout(), None, "a deadline stayed armed");
        assert_eq!(s.poll_transmit(now, &mut buf), None, "something was sent");
    }
    let h = s
        .connect(now, remote, Some(local))
        .expect("the 4-tuple is free");
    assert!(s.conns.contains(&tuple));
    assert!(s.poll_transmit(now, &mut buf).is_some(), "the SYN");
    assert_eq!(s.connection(h).map(|c| c.state()), Some(State::SynSent));
}

/// A connection keeps the demux bucket its entry went into, and leaves the table through it
/// (the client's end, freed) or has its entry replaced there by a compact TIME-WAIT entry
/// (the server's, which closed first); half the clients close while still held, and leave
/// the table then (`reap`), freed later. 40 connections grow both tables several times after
/// the first ones went in, which moves those entries: they are found by their 4-tuple
/// then. After each connection ends, every other one is still found by its 4-tuple: a
/// bucket that holds another connection's entry took nothing of it.
#[test]
fn connections_leave_the_demux_table_through_their_kept_bucket_or_their_4_tuple() {
    fn demuxed(s: &Stack, h: SocketHandle) -> bool {
        let c = s.conn_slot_ref(h).unwrap();
        let tuple = super::slots::tuple_of(&c.conn);
        s.conns.get(s.conns.hash(&tuple), &tuple) == Some(h)
    }
    fn kept(s: &Stack, h: SocketHandle) -> bool {
        s.conns.in_bucket(s.conn_slot_ref(h).unwrap().bucket) == Some(h)
    }
    let mut net = Net::new();
    net.b.cfg.trace = false;
    let l = net.b.listen(server_addr(80), 64).unwrap();
    let mut ends = Vec::new();
    for i in 0..40 {
        let c = net.a.connect(net.now, server_addr(80), None).unwrap();
        assert!(
            kept(&net.a, c),
            "client {i}: its bucket right after it went in"
        );
        let mut s = None;
        net.run_until(
            |n| {
                s = s.or_else(|| n.b.accept(l).unwrap());
                s.is_some() && n.a.connection(c).unwrap().state() == State::Established
            },
            Duration::from_secs(5),
        );
        let s = s.unwrap();
        assert!(
            kept(&net.b, s),
            "server {i}: its bucket right after it went in"
        );
        ends.push((c, s));
    }
    let moved =
        |s: &Stack, hs: &mut dyn Iterator<Item = SocketHandle>| hs.filter(|&h| !kept(s, h)).count();
    let moved_a = moved(&net.a, &mut ends.iter().map(|e| e.0));
    let moved_b = moved(&net.b, &mut ends.iter().map(|e| e.1));
    assert!(
        moved_a > 0 && moved_b > 0,
        "growth moved {moved_a} / {moved_b}"
    );
    let tuple_in =
        |s: &Stack, h: SocketHandle| super::slots::tuple_of(&s.conn_slot_ref(h).unwrap().conn);
    for (i, &(c, s)) in ends.iter().enumerate() {
        let (tc, ts) = (tuple_in(&net.a, c), tuple_in(&net.b, s));
        net.b.close(net.now, s);
        net.run_until(
            |n| n.a.connection(c).unwrap().peer_closed(),
            Duration::from_secs(5),
        );
        if i % 2 == 0 {
            net.a.close(net.now, c);
        } else {
            // Closed while still held: out of the table at once (`reap`), freed at `close`.
            net.a.shutdown(net.now, c, Shutdown::Write).unwrap();
            net.run_until(
                |n| n.a.connection(c).unwrap().state() == State::Closed,
                Duration::from_secs(5),
            );
            assert_eq!(net.a.connection(c).unwrap().state(), State::Closed);
            assert_eq!(
                net.a.conns.get(net.a.conns.hash(&tc), &tc),
                None,
                "client {i}, held"
            );
            net.a.close(net.now, c);
        }
        net.run_until(
            |n| n.a.connection(c).is_none() && n.b.connection(s).is_none(),
            Duration::from_secs(5),
        );
        // The client's entry is gone; the server's 4-tuple maps to its compact TIME-WAIT
        // entry (checked at once: the next waits may outlast its 60 s).
        assert_eq!(
            net.a.conns.get(net.a.conns.hash(&tc), &tc),
            None,
            "client {i}"
        );
        let tw = net.b.conns.get(net.b.conns.hash(&ts), &ts);
        assert!(
            tw.is_some_and(|h| h.index & super::time_wait::TW_BIT != 0),
            "server {i}: {tw:?}"
        );
        assert_eq!(net.a.connections().count(), 39 - i, "client {i}");
        assert_eq!(net.b.connections().count(), 39 - i, "server {i}");
        for &(c, s) in &ends[i + 1..] {
            assert!(demuxed(&net.a, c) && demuxed(&net.b, s), "after {i} ended");
        }
    }
    // Nothing left behind in the client's table.
    assert_eq!(net.a.conns.len(), 0);
}

#[test]
fn a_time_wait_connection_with_unread_bytes_gives_its_receive_ring_once_they_are_read() {
    let mut net = Net::new();
    // Untraced: a traced connection takes the slow refresh, which gives parts every time.
    net.b.cfg.trace = false;
    let (_, c, s) = connected(&mut net, 80);
    net.b.shutdown(net.now, s, Shutdown::Write).unwrap();
    net.run_until(
        |n| n.a.connection(c).unwrap().peer_closed(),
        Duration::from_secs(5),
    );
    assert_eq!(net.a.send(net.now, c, &[3; 10]).unwrap(), 10);
    net.a.close(net.now, c);
    net.run_until(
        |n| n.b.connection(s).unwrap().state() == State::TimeWait,
        Duration::from_secs(5),
    );
    // b shut down writing first, then took a's 10 bytes and FIN without reading them: in
    // TIME-WAIT, held by its application, the bytes in its receive ring, which stays.
    assert_eq!(net.b.connection(s).unwrap().recv_queue_len(), 10);
    let rings = net.b.spares.held().0;
    let mut buf = [0u8; 64];
    assert_eq!(net.b.recv(net.now, s, &mut buf).unwrap(), 10);
    // Read: the drained ring goes to the spares now, not when the slot is freed.
    assert_eq!(net.b.spares.held().0, rings + 1);
    assert_eq!(net.b.connection(s).unwrap().state(), State::TimeWait);
}

#[test]
fn finished_connections_leave_their_parts_to_the_next() {
    type Ends = (SocketHandle, SocketHandle, SocketHandle);
    let finish = |net: &mut Net, (l, c, s): Ends, byte: u8| {
        let got = net.transfer(c, s, &[byte; 100], Duration::from_secs(5));
        assert_eq!(got, [byte; 100]);
        assert_eq!(net.b.send(net.now, s, &[byte; 10]).unwrap(), 10);
        let mut got = Vec::new();
        net.run_until(
            |n| {
                let mut buf = [0u8; 64];
                let k = n.a.recv(n.now, c, &mut buf).unwrap();
                got.extend_from_slice(&buf[..k]);
                got.len() >= 10
            },
            Duration::from_secs(5),
        );
        assert_eq!(got, [byte; 10]);
        // The server closes first and holds TIME-WAIT, as in `synack-bench cps`.
        net.b.close(net.now, s);
        net.run_until(
            |n| n.a.connection(c).unwrap().peer_closed(),
            Duration::from_secs(5),
        );
        net.a.close(net.now, c);
        net.run_until(|n| n.a.connection_count() == 0, Duration::from_secs(5));
        net.b.close(net.now, l);
    };
    let mut net = Net::new();
    let ends = connected(&mut net, 80);
    assert_eq!(net.a.spares.held(), (0, 0, 0));
    finish(&mut net, ends, 0xAA);
    // The client's end was freed: both rings, its scoreboard and its congestion controller
    // kept; the server's end in TIME-WAIT gave its (drained) rings and scoreboard.
    assert_eq!(net.a.spares.held(), (2, 1, 1));
    assert_eq!(net.b.spares.held(), (2, 1, 0));
    assert_eq!(net.b.connection_count(), 1, "in TIME-WAIT");
    // The next connection on each side takes them, and its data is its own.
    let ends = connected(&mut net, 81);
    assert_eq!(net.a.spares.held(), (0, 0, 0));
    assert_eq!(net.b.spares.held(), (0, 0, 0));
    finish(&mut net, ends, 0x55);
    assert_eq!(net.a.spares.held(), (2, 1, 1));

    // A stack that keeps none frees every part.
    let mut net = Net::new();
    net.a.spares = crate::tcp::connection::Spares::new(0);
    let ends = connected(&mut net, 80);
    finish(&mut net, ends, 0xAA);
    assert_eq!(net.a.spares.held(), (0, 0, 0));
}

#[test]
fn a_first_write_takes_a_finished_connections_transmit_state_written_anew() {
    let mut net = Net::new();
    let (l, c, s) = connected(&mut net, 80);
    assert_eq!(net.a.spares.transmits_held(), 0);
    // A connection that sends 30,000 bytes (its transmit state counts them), then ends: the
    // client's end is freed, and its transmit state kept.
    let data = [0x5A; 30_000];
    assert_eq!(net.transfer(c, s, &data, Duration::from_secs(5)), data);
    assert!(net.a.connection(c).unwrap().info().data_segs_out > 10);
    net.b.close(net.now, s);
    net.run_until(
        |n| n.a.connection(c).unwrap().peer_closed(),
        Duration::from_secs(5),
    );
    net.a.close(net.now, c);
    net.run_until(|n| n.a.connection_count() == 0, Duration::from_secs(5));
    net.b.close(net.now, l);
    assert_eq!(net.a.spares.transmits_held(), 1);

    // The next connection: nothing queued, no transmit state (an empty write takes none
    // either); the first write takes the kept one, which counts from zero.
    let (_, c, s) = connected(&mut net, 81);
    assert_eq!(net.a.send(net.now, c, &[]).unwrap(), 0);
    assert_eq!(
        net.a.spares.transmits_held(),
        1,
        "an empty write takes nothing"
    );
    assert_eq!(net.a.connection(c).unwrap().info().data_segs_out, 0);
    assert_eq!(
        net.transfer(c, s, &[7; 100], Duration::from_secs(5)),
        [7; 100]
    );
    assert_eq!(net.a.spares.transmits_held(), 0, "taken by the first write");
    let info = net.a.connection(c).unwrap().info();
    assert_eq!(
        info.data_segs_out, 1,
        "counted anew, not from the last connection's"
    );
    assert_eq!(info.bytes_out, 100);
}

#[test]
fn a_kept_transmit_state_holds_no_memory_of_its_connection() {
    let mut net = Net::new();
    let (_, c, s) = connected(&mut net, 80);
    // Many records (MSG_EOR) written before anything goes out: each a mark, all but the
    // first in the push marks' queue, which grows with them.
    for _ in 0..2_000 {
        assert_eq!(net.a.send_with(net.now, c, b"x", false, true).unwrap(), 1);
    }
    net.a.abort(net.now, c);
    net.b.abort(net.now, s);
    // The aborted connection goes once its RST is out; its transmit state is kept.
    net.run_until(|n| n.a.spares.transmits_held() == 1, Duration::from_secs(5));
    assert_eq!(
        net.a.spares.transmit_heap(),
        0,
        "the marks' queue went back to the allocator with the connection"
    );
}

#[test]
fn a_write_that_fails_takes_no_transmit_state() {
    let mut net = Net::new();
    let (l, c, s) = connected(&mut net, 80);
    net.a.send(net.now, c, &[1; 100]).unwrap();
    net.a.abort(net.now, c);
    net.b.abort(net.now, s);
    net.b.close(net.now, l);
    net.run_until(|n| n.a.spares.transmits_held() == 1, Duration::from_secs(5));
    // A connection reset before it wrote anything: its write fails, and the kept transmit
    // state stays kept.
    let (_, c, s) = connected(&mut net, 81);
    net.b.abort(net.now, s);
    net.run_until(
        |n| {
            n.a.connection(c)
                .is_some_and(|x| x.state() == State::Closed)
        },
        Duration::from_secs(5),
    );
    assert!(net.a.send(net.now, c, &[2; 100]).is_err());
    assert_eq!(
        net.a.spares.transmits_held(),
        1,
        "a failed write takes nothing"
    );
}

#[test]
fn a_forwarded_connection_takes_its_congestion_controller_from_the_spares() {
    let mut net = Net::new();
    net.b.enable_forwarding(super::forward::ForwardConfig {
        prefixes: vec![IpCidr::V4(Ipv4Cidr::new(Ipv4Addr::new(203, 0, 113, 0), 24))],
        ..Default::default()
    });
    let cfg = net.b.cfg.tcp.clone();
    net.b
        .spares
        .keep_controller(crate::tcp::congestion::Controller::new(
            cfg.congestion,
            536,
            cfg.initial_window,
        ));
    assert_eq!(net.b.spares.held().2, 1);
    net.a.set_gateway(Some(B_IP));
    let dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 80);
    let c = net.a.connect(net.now, dst, None).unwrap();
    let mut pending = None;
    net.run_until(
        |n| {
            if let Some(super::forward::ForwardEvent::Tcp(p)) = n.b.poll_forward() {
                pending = Some(p);
            }
            pending.is_some()
        },
        Duration::from_secs(5),
    );
    let p = pending.expect("the SYN reached the forwarder");
    assert_eq!(p.dst, dst);
    let s = net.b.forward_accept(net.now, p.id).unwrap();
    assert_eq!(net.b.spares.held().2, 0, "the spare controller was taken");
    net.run_until(
        |n| n.a.connection(c).unwrap().state() == State::Established,
        Duration::from_secs(5),
    );
    let got = net.transfer(c, s, &[7; 100], Duration::from_secs(5));
    assert_eq!(got, [7; 100]);
}

#[test]
fn connect_to_closed_port_is_refused() {
    let mut net = Net::new();
    let c = net.a.connect(net.now, server_addr(9), None).unwrap();
    net.run_until(
        |n| {
            n.a.connection(c)
                .is_some_and(|x| x.state() == State::Closed)
        },
        Duration::from_secs(5),
    );
    let e = net.a.send(net.now, c, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(net.b.counters().no_port_rsts, 1);
    // The RST is <SEQ=0><ACK=ISS+1><CTL=RST,ACK> (§3.10.7.1, SYN without ACK).
    let rst = net.log.iter().find(|(_, from_a, _)| !from_a).unwrap();
    let ip = ipv4::Packet::new_checked(&rst.2[..]).unwrap();
    let t = wtcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(t.flags(), Flags::RST | Flags::ACK);
    assert_eq!(t.seq_number().0, 0);
    net.a.close(net.now, c);
    // Freed once the stack has had its transmit pass (a closing connection may owe a RST).
    net.flush();
    assert_eq!(net.a.connection_count(), 0);
}

#[test]
fn connect_to_unreachable_host_times_out_after_syn_retries() {
    let mut net = Net::new();
    net.blackhole_b = true;
    let c = net.a.connect(net.now, server_addr(80), None).unwrap();
    net.run_until(
        |n| {
            n.a.connection(c)
                .is_some_and(|x| x.state() == State::Closed)
        },
        Duration::from_secs(200),
    );
    // SYNs at 0, 1, 2, 3, 4, 5 s (linear), 7, 11, 19, 35, 67 s: 6 + 4 retransmissions, and
    // the timer 64 s after the last gives up (Linux 6.18 with tcp_syn_retries 6).
    assert_eq!(net.now, Instant::from_secs(131));
    let e = net.a.recv(net.now, c, &mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    let syns = net.log.iter().filter(|(_, from_a, _)| *from_a).count();
    assert_eq!(syns, 11);
}

#[test]
fn peer_abort_is_connection_reset_on_read() {
    let mut net = Net::new();
    let (_l, c, s) = connected(&mut net, 80);
    net.b.abort(net.now, s);
    net.run_until(
        |n| n.a.connection(c).unwrap().state() == State::Closed,
        Duration::from_secs(5),
    );
    assert_eq!(
        net.a.recv(net.now, c, &mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    assert_eq!(net.a.counters().estab_resets, 1);
}

#[test]
fn write_after_shutdown_is_broken_pipe() {
    let mut net = Net::new();
    let (_l, c, _s) = connected(&mut net, 80);
    net.a.shutdown(net.now, c, Shutdown::Write).unwrap();
    assert_eq!(
        net.a.send(net.now, c, b"late").unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
}

#[test]
fn ephemeral_port_exhaustion_is_addr_not_available() {
    let cfg = StackConfig {
        ephemeral_ports: (50000, 50003),
        ..StackConfig::default()
    };
    let mut a = Stack::new(cfg, [1; 32]);
    a.add_address(Ipv4Cidr::new(A_IP, 24));
    for _ in 0..4 {
        a.connect(Instant::ZERO, server_addr(80), None).unwrap();
    }
    let e = a.connect(Instant::ZERO, server_addr(80), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    // Another destination port is another 4-tuple.
    assert!(a.connect(Instant::ZERO, server_addr(81), None).is_ok());
}

#[test]
fn bind_errors() {
    let mut net = Net::new();
    net.b.listen(server_addr(80), 4).unwrap();
    assert_eq!(
        net.b.listen(server_addr(80), 4).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    let other = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 77)), 80);
    assert_eq!(
        net.b.listen(other, 4).unwrap_err().kind(),
        ErrorKind::AddrNotAvailable
    );
    let off_link = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 19, 9, 9)), 80);
    assert_eq!(
        net.a.connect(net.now, off_link, None).unwrap_err().kind(),
        ErrorKind::NetworkUnreachable
    );
}

#[test]
fn icmp_echo_is_answered() {
    let mut net = Net::new();
    let req = icmpv4::Repr::EchoRequest {
        ident: 7,
        seq_no: 3,
        data: b"ping",
    };
    let pkt = ip_icmp(A_IP, B_IP, &req);
    net.b.handle_packet(Instant::ZERO, &pkt);
    let mut out = vec![0u8; 1500];
    let n = net.b.poll_transmit(Instant::ZERO, &mut out).unwrap();
    let ip = ipv4::Packet::new_checked(&out[..n]).unwrap();
    assert_eq!(ipv4::Repr::parse(&ip, true).unwrap().dst_addr, A_IP);
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        icmpv4::Repr::parse(&icmp, true).unwrap(),
        icmpv4::Repr::EchoReply {
            ident: 7,
            seq_no: 3,
            data: b"ping"
        }
    );
    assert_eq!(net.b.counters().icmp_out_echo_reps, 1);
}

/// A net whose b listens on port 80, and the SYN a sends it (not delivered).
fn listener_and_syn() -> (Net, Vec<u8>) {
    let mut net = Net::new();
    let _l = net.b.listen(server_addr(80), 4).unwrap();
    let _c = net.a.connect(net.now, server_addr(80), None).unwrap();
    let mut buf = vec![0u8; 1500];
    let n = net.a.poll_transmit(net.now, &mut buf).unwrap();
    (net, buf[..n].to_vec())
}

/// Malformed IPv4 headers through the whole input path (`handle_packet`): each is counted as
/// a header error and dropped, none panics, and nothing answers them. The length checks run
/// once, inside `ipv4::Repr::parse`; this guards that they stay there.
#[test]
fn malformed_ipv4_headers_are_counted_and_dropped() {
    let (mut net, syn) = listener_and_syn();
    // Each edit keeps a valid header checksum, so that the length alone is wrong.
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = syn.clone();
        f(&mut p);
        let ihl = usize::from(p[0] & 0xf) * 4;
        if ihl <= p.len() {
            ipv4::Packet::new_unchecked(&mut p[..]).fill_checksum();
        }
        p
    };
    let total = |p: &mut Vec<u8>, len: u16| p[2..4].copy_from_slice(&len.to_be_bytes());
    let cases = [
        ("empty", Vec::new()),
        ("19 bytes", syn[..19].to_vec()),
        ("IHL 4", edit(&|p| p[0] = 0x44)),
        (
            "IHL past the buffer",
            edit(&|p| {
                p.truncate(40);
                p[0] = 0x4f;
            }),
        ),
        (
            "IHL past the total length",
            edit(&|p| {
                p[0] = 0x46;
                total(p, 20)
            }),
        ),
        ("total length below the header", edit(&|p| total(p, 19))),
        ("total length past the buffer", edit(&|p| total(p, 1500))),
    ];
    let before = net.b.counters().ip_in_hdr_errors;
    for (i, (what, p)) in cases.iter().enumerate() {
        net.b.handle_packet(net.now, p);
        assert_eq!(
            net.b.counters().ip_in_hdr_errors,
            before + i as u64 + 1,
            "{what}: not counted as a header error"
        );
    }
    assert_eq!(
        net.b.poll_transmit(net.now, &mut [0u8; 1500]),
        None,
        "an answer"
    );
    assert_eq!(net.b.counters().in_segs, 0);
}

#[test]
fn bad_packets_are_counted_and_dropped() {
    let (mut net, syn) = listener_and_syn();
    let mut buf = vec![0u8; 1500];

    let mut bad_ip = syn.clone();
    bad_ip[8] ^= 1; // TTL changes, header checksum now wrong
    net.b.handle_packet(net.now, &bad_ip);
    assert_eq!(net.b.counters().ip_in_hdr_errors, 1);

    let mut bad_tcp = syn.clone();
    let last = bad_tcp.len() - 1;
    bad_tcp[last] ^= 0x40; // inside TCP options: TCP checksum wrong
    net.b.handle_packet(net.now, &bad_tcp);
    assert_eq!(net.b.counters().tcp_in_csum_errors, 1);

    // Not for us.
    let mut other = syn.clone();
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut other[..]);
        ip.set_dst_addr(Ipv4Addr::new(198, 18, 0, 99));
        ip.fill_checksum();
    }
    net.b.handle_packet(net.now, &other);
    // From our own address (spoofed).
    let mut own = syn.clone();
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut own[..]);
        ip.set_src_addr(B_IP);
        ip.fill_checksum();
    }
    net.b.handle_packet(net.now, &own);
    assert_eq!(net.b.counters().ip_in_addr_errors, 2);

    // A first fragment waits in reassembly for the rest.
    let mut frag = syn.clone();
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut frag[..]);
        ip.set_more_frags(true);
        ip.fill_checksum();
    }
    net.b.handle_packet(net.now, &frag);
    assert_eq!(net.b.counters().ip_reasm_reqds, 1);
    assert_eq!(net.b.counters().ip_reasm_fails, 0);
    // One too short to hold the TCP header is a tiny-fragment attack (RFC 1858 §3.1).
    let mut tiny = frag[..ipv4::HEADER_LEN + 16].to_vec();
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut tiny[..]);
        ip.set_total_len((ipv4::HEADER_LEN + 16) as u16);
        ip.set_ident(77);
        ip.fill_checksum();
    }
    net.b.handle_packet(net.now, &tiny);
    assert_eq!(net.b.counters().ip_reasm_fails, 1);

    // Garbage of every length never panics.
    for len in 0..60 {
        net.b.handle_packet(net.now, &syn[..len.min(syn.len())]);
    }
    // None of it created a connection or a half-open one, or produced a reply.
    assert_eq!(net.b.connection_count(), 0);
    assert_eq!(net.b.syn_queue_len(), 0);
    assert!(net.b.poll_transmit(net.now, &mut buf).is_none());
    // The real SYN still works: a SYN-queue entry (no connection until the ACK) and a SYN-ACK.
    net.b.handle_packet(net.now, &syn);
    assert_eq!(net.b.syn_queue_len(), 1);
    assert_eq!(net.b.connection_count(), 0);
    assert!(net.b.poll_transmit(net.now, &mut buf).is_some());
}

#[test]
fn never_rst_a_rst() {
    let mut net = Net::new();
    let seg = wtcp::Repr {
        src_port: 5555,
        dst_port: 9,
        seq: crate::tcp::SeqNum(1),
        ack: crate::tcp::SeqNum(0),
        flags: Flags::RST,
        window: 0,
        urgent: 0,
        options: wtcp::Options::default(),
        payload: &[],
    };
    let mut pkt = vec![0u8; 20 + seg.buffer_len()];
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut pkt[..]);
        ipv4::Repr::new(A_IP, B_IP, IpProtocol::Tcp, seg.buffer_len())
            .emit(&mut ip, true)
            .unwrap();
        seg.emit(
            &mut wtcp::Packet::new_unchecked(ip.payload_mut()),
            IpAddr::V4(A_IP),
            IpAddr::V4(B_IP),
        )
        .unwrap();
    }
    net.b.handle_packet(Instant::ZERO, &pkt);
    assert!(
        net.b
            .poll_transmit(Instant::ZERO, &mut [0u8; 1500])
            .is_none()
    );
}

/// Linux: when the accept queue is full, the final ACK of a handshake is dropped
/// (ListenOverflows) and the connection completes once the application accepts.
#[test]
fn accept_queue_overflow_drops_final_ack_then_recovers() {
    let mut net = Net::new();
    let l = net.b.listen(server_addr(80), 1).unwrap();
    let c1 = net.a.connect(net.now, server_addr(80), None).unwrap();
    let c2 = net.a.connect(net.now, server_addr(80), None).unwrap();
    net.run_until(
        |n| n.b.accept_queue_len(l) == 1 && n.b.counters().listen_overflows >= 1,
        Duration::from_secs(5),
    );
    assert_eq!(net.a.connection(c1).unwrap().state(), State::Established);
    assert!(net.b.accept(l).unwrap().is_some());
    // The second completes once the queue has room (SYN-ACK retransmission or client data).
    net.a.send(net.now, c2, b"hello").unwrap();
    net.run_until(|n| n.b.accept_queue_len(l) == 1, Duration::from_secs(10));
    let s2 = net.b.accept(l).unwrap().unwrap();
    let mut buf = [0u8; 16];
    net.run_until(
        |n| n.b.connection(s2).unwrap().recv_queue_len() == 5,
        Duration::from_secs(5),
    );
    assert_eq!(net.b.recv(net.now, s2, &mut buf).unwrap(), 5);
}

/// ICMP fragmentation-needed for a connection lowers its MSS (RFC 1191).
#[test]
fn icmp_frag_needed_lowers_mss() {
    let mut net = Net::new();
    let (_l, c, _s) = connected(&mut net, 80);
    let before = net.a.connection(c).unwrap().info().snd_mss;
    // Quote a segment of this connection.
    net.a.send(net.now, c, &[1u8; 3000]).unwrap();
    let mut buf = vec![0u8; 2048];
    let n = net.a.poll_transmit(net.now, &mut buf).unwrap();
    let quoted = buf[..48].to_vec();
    let _ = n;
    let icmp = icmpv4::Repr::DstUnreachable {
        reason: icmpv4::DstUnreachable::FragNeeded,
        next_hop_mtu: Some(1280),
        invoking: &quoted,
    };
    let router = Ipv4Addr::new(198, 18, 0, 254);
    let pkt = ip_icmp(router, A_IP, &icmp);
    net.a.handle_packet(net.now, &pkt);
    let after = net.a.connection(c).unwrap().info().snd_mss;
    assert!(after < before);
    assert_eq!(after, 1280 - 40 - 12);
}

/// RFC 5927 §4.1, as Linux's `tcp_v4_err`: a frag-needed whose quoted sequence number is not
/// in SND.UNA..=SND.NXT is ignored and counted (OutOfWindowIcmps); nothing is learned, not
/// even for the next connection. Both ends of the range are accepted.
#[test]
fn icmp_frag_needed_outside_snd_una_snd_nxt_is_ignored() {
    let mut net = Net::new();
    let (_l, c, _s) = connected(&mut net, 80);
    let mss = |net: &Net| net.a.connection(c).unwrap().info().snd_mss;
    let before = mss(&net);
    net.a.send(net.now, c, &[1u8; 1000]).unwrap();
    let mut buf = vec![0u8; 2048];
    net.a.poll_transmit(net.now, &mut buf).unwrap();
    let seq_at = |quote: &[u8]| u32::from_be_bytes(quote[24..28].try_into().unwrap());
    let una = seq_at(&buf[..48]);
    let nxt = una + 1000;
    let router = Ipv4Addr::new(198, 18, 0, 254);
    let frag_needed = |net: &mut Net, seq: u32, mtu: u16| {
        let mut quoted = buf[..48].to_vec();
        quoted[24..28].copy_from_slice(&seq.to_be_bytes());
        let icmp = icmpv4::Repr::DstUnreachable {
            reason: icmpv4::DstUnreachable::FragNeeded,
            next_hop_mtu: Some(mtu),
            invoking: &quoted,
        };
        let pkt = ip_icmp(router, A_IP, &icmp);
        net.a.handle_packet(net.now, &pkt);
    };
    for (n, seq) in [una - 1, nxt + 1, una.wrapping_sub(1 << 30)]
        .into_iter()
        .enumerate()
    {
        frag_needed(&mut net, seq, 1280);
        assert_eq!(mss(&net), before, "seq {seq}");
        assert_eq!(net.a.counters().out_of_window_icmps, n as u64 + 1);
    }
    // Nothing was learned for the path either.
    let c2 = net.a.connect(net.now, server_addr(80), None).unwrap();
    net.run_until(
        |n| n.a.connection(c2).unwrap().state() == State::Established,
        Duration::from_secs(5),
    );
    assert_eq!(net.a.connection(c2).unwrap().info().snd_mss, before);
    // SND.NXT and SND.UNA themselves are in.
    frag_needed(&mut net, nxt, 1400);
    assert_eq!(mss(&net), 1400 - 40 - 12);
    frag_needed(&mut net, una, 1280);
    assert_eq!(mss(&net), 1280 - 40 - 12);
    assert_eq!(net.a.counters().out_of_window_icmps, 3);
}

/// The demux scales: many concurrent connections through one listener, each verified.
#[test]
fn many_concurrent_connections_through_one_listener() {
    let mut net = Net::new();
    net.delay = Duration::from_millis(1);
    let l = net.b.listen(server_addr(80), 2048).unwrap();
    let n_conns = 300;
    let clients: Vec<_> = (0..n_conns)
        .map(|_| net.a.connect(net.now, server_addr(80), None).unwrap())
        .collect();
    let mut servers = Vec::new();
    net.run_until(
        |n| {
            while let Some(s) = n.b.accept(l).unwrap() {
                servers.push(s);
            }
            servers.len() == n_conns
        },
        Duration::from_secs(10),
    );
    // Each client sends its own payload; the server echoes a checksum of what it got.
    for (i, &c) in clients.iter().enumerate() {
        let msg: Vec<u8> = (0..2000).map(|j| ((i * 7 + j) % 256) as u8).collect();
        assert_eq!(net.a.send(net.now, c, &msg).unwrap(), 2000);
    }
    let mut totals = vec![0usize; n_conns];
    let mut sums = vec![0u64; n_conns];
    let mut buf = vec![0u8; 4096];
    net.run_until(
        |n| {
            for (k, &s) in servers.iter().enumerate() {
                loop {
                    let got = n.b.recv(n.now, s, &mut buf).unwrap();
                    if got == 0 {
                        break;
                    }
                    totals[k] += got;
                    sums[k] += buf[..got].iter().map(|&b| b as u64).sum::<u64>();
                }
            }
            totals.iter().all(|&t| t == 2000)
        },
        Duration::from_secs(10),
    );
    // Match each server connection to its client by port and check the payload sum.
    for (k, &s) in servers.iter().enumerate() {
        let remote = net.b.connection(s).unwrap().remote();
        let i = clients
            .iter()
            .position(|&c| net.a.connection(c).unwrap().local() == remote)
            .unwrap();
        let expect: u64 = (0..2000).map(|j| ((i * 7 + j) % 256) as u64).sum();
        assert_eq!(sums[k], expect, "connection {i}");
    }
    let _ = Arc::new(Config::default());
}

/// An ICMP error quoting our SYN ends SYN-SENT at once with the error Linux maps its code to
/// (`tcp_v4_err`, `icmp_err_convert`): the attempt fails, no SYN is retransmitted.
#[test]
fn icmp_unreachable_in_syn_sent_fails_the_connect() {
    use icmpv4::DstUnreachable as D;
    for (code, want) in [
        (D::HostUnreachable, Error::Unreachable),
        (D::NetUnreachable, Error::NetUnreachable),
        (D::PortUnreachable, Error::Refused),
        (D::HostUnknown, Error::HostDown),
    ] {
        let mut net = Net::new();
        net.blackhole_b = true;
        let c = net.a.connect(net.now, server_addr(80), None).unwrap();
        let mut buf = vec![0u8; 2048];
        let n = net.a.poll_transmit(net.now, &mut buf).unwrap();
        let quoted = buf[..n.min(48)].to_vec();
        let icmp = icmpv4::Repr::DstUnreachable {
            reason: code,
            next_hop_mtu: None,
            invoking: &quoted,
        };
        let router = Ipv4Addr::new(198, 18, 0, 254);
        net.a.handle_packet(net.now, &ip_icmp(router, A_IP, &icmp));
        let conn = net.a.connection(c).unwrap();
        assert_eq!((conn.state(), conn.error()), (State::Closed, Some(want)));
        assert_eq!(net.a.counters().attempt_fails, 1);
        assert!(
            net.a.poll_transmit(net.now, &mut buf).is_none(),
            "no SYN again"
        );
    }
}

/// RFC 1122 §4.2.3.9: once established, an ICMP destination unreachable is a soft error. The
/// connection keeps trying; when it then times out, the application learns why: here a port
/// unreachable, ECONNREFUSED, as Linux reports it.
#[test]
fn icmp_unreachable_is_a_soft_error_reported_on_timeout() {
    let mut net = Net::new();
    let (_l, c, _s) = connected(&mut net, 80);
    net.blackhole_b = true;
    net.a.send(net.now, c, b"hello").unwrap();
    let mut buf = vec![0u8; 2048];
    let n = net.a.poll_transmit(net.now, &mut buf).unwrap();
    let quoted = buf[..n.min(48)].to_vec();
    let icmp = icmpv4::Repr::DstUnreachable {
        reason: icmpv4::DstUnreachable::PortUnreachable,
        next_hop_mtu: None,
        invoking: &quoted,
    };
    let router = Ipv4Addr::new(198, 18, 0, 254);
    let pkt = ip_icmp(router, A_IP, &icmp);
    net.a.handle_packet(net.now, &pkt);
    // Soft: still trying.
    assert_eq!(net.a.connection(c).unwrap().state(), State::Established);
    net.run_until(
        |n| {
            n.a.connection(c)
                .is_some_and(|x| x.state() == State::Closed)
        },
        Duration::from_secs(1000),
    );
    let e = net.a.recv(net.now, c, &mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(net.a.counters().icmp_in_dest_unreachs, 1);
}

/// Routes: on-link destinations go straight out; off-link ones need a default gateway on one
/// of our links (NetworkUnreachable without one).
#[test]
fn default_gateway_routes_off_link_destinations() {
    let mut a = stack(A_IP, "client", 1);
    let far = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 19, 7, 7)), 443);
    assert_eq!(
        a.connect(Instant::ZERO, far, None).unwrap_err().kind(),
        ErrorKind::NetworkUnreachable
    );
    // A gateway that is not on any of our links does not help.
    a.set_gateway(Some(Ipv4Addr::new(198, 19, 0, 1)));
    assert_eq!(
        a.connect(Instant::ZERO, far, None).unwrap_err().kind(),
        ErrorKind::NetworkUnreachable
    );
    a.set_gateway(Some(Ipv4Addr::new(198, 18, 0, 254)));
    let c = a.connect(Instant::ZERO, far, None).unwrap();
    assert_eq!(a.connection(c).unwrap().local().ip(), IpAddr::V4(A_IP));
    let mut buf = vec![0u8; 1500];
    let n = a.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    let ip = ipv4::Repr::parse(&ipv4::Packet::new_checked(&buf[..n]).unwrap(), true).unwrap();
    assert_eq!(
        (ip.src_addr, ip.dst_addr, ip.ttl),
        (A_IP, Ipv4Addr::new(198, 19, 7, 7), 64)
    );
    assert!(ipv4::Packet::new_checked(&buf[..n]).unwrap().dont_frag());
}

mod forward;
mod frag;
mod handshake;
mod shortcuts;
mod sockets;
mod time_wait;
mod v6;

/// A connection that reached CLOSED leaves the demux at once, though its application still
/// holds the socket (Linux unhashes it in tcp_done()): a new SYN for the same 4-tuple reaches the
/// listener instead of the dead connection's RST, and the client may connect from the port
/// again.
#[test]
fn a_closed_connection_still_held_by_its_application_frees_its_four_tuple() {
    let mut net = Net::new();
    let (l, c, s) = connected(&mut net, 80);
    let client = net.a.connection(c).unwrap().local();
    // Reconnects from the same port; returns (client handle, accepted handle).
    let again = |net: &mut Net| {
        let resets = net.b.counters().out_rsts;
        let c2 = net
            .a
            .connect(net.now, server_addr(80), Some(client))
            .unwrap();
        let mut s2 = None;
        net.run_until(
            |n| {
                if s2.is_none() {
                    s2 = n.b.accept(l).unwrap();
                }
                s2.is_some() && n.a.connection(c2).unwrap().state() == State::Established
            },
            Duration::from_secs(5),
        );
        assert_eq!(net.b.counters().out_rsts, resets, "the new SYN was reset");
        let s2 = s2.unwrap();
        assert_eq!(net.b.connection(s2).unwrap().remote(), client);
        (c2, s2)
    };

    // The server's application holds a connection the client reset.
    net.a.abort(net.now, c);
    net.run_until(
        |n| n.b.connection(s).unwrap().state() == State::Closed,
        Duration::from_secs(5),
    );
    assert_eq!(net.b.connection_count(), 0);
    let (c2, s2) = again(&mut net);
    assert_eq!(
        net.b.recv(net.now, s, &mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::ConnectionReset,
        "the old socket still reports what happened to it"
    );

    // The client's application holds a connection the server reset.
    net.b.abort(net.now, s2);
    net.run_until(
        |n| n.a.connection(c2).unwrap().state() == State::Closed,
        Duration::from_secs(5),
    );
    assert_eq!(net.a.connection_count(), 0);
    let (c3, s3) = again(&mut net);
    assert_eq!(
        net.a.recv(net.now, c2, &mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );

    // Closing the old sockets later leaves the new connection alone.
    net.b.close(net.now, s);
    net.a.close(net.now, c2);
    for _ in 0..1_000 {
        if !net.step() {
            break;
        }
    }
    assert!(net.a.connection(c2).is_none() && net.b.connection(s).is_none());
    assert_eq!(net.a.connection(c3).unwrap().state(), State::Established);
    assert_eq!(net.b.connection(s3).unwrap().state(), State::Established);
    assert_eq!((net.a.connection_count(), net.b.connection_count()), (1, 1));
}

/// The timestamp offset is SipHash-1-3 over the ports then the addresses as one stream of
/// bytes: computed in one write it is the value four writes give (offsets do not change).
#[test]
fn timestamp_offset_is_siphash_of_ports_then_addresses() {
    use core::hash::Hasher;
    let s = stack(A_IP, "a", 7);
    let four_writes = |l: SocketAddr, r: SocketAddr| {
        let mut h = siphasher::sip::SipHasher13::new_with_keys(s.ts_key, !s.ts_key);
        h.write(&l.port().to_be_bytes());
        h.write(&r.port().to_be_bytes());
        match (l.ip(), r.ip()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                h.write(&a.octets());
                h.write(&b.octets());
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                h.write(&a.octets());
                h.write(&b.octets());
            }
            _ => {}
        }
        h.finish() as u32
    };
    for (l, r) in [
        (
            SocketAddr::new(A_IP.into(), 40000),
            SocketAddr::new(B_IP.into(), 80),
        ),
        (
            SocketAddr::new(A_IP6.into(), 1),
            SocketAddr::new(B_IP6.into(), 65535),
        ),
    ] {
        assert_eq!(s.ts_offset(l, r), four_writes(l, r));
        assert_ne!(s.ts_offset(l, r), s.ts_offset(r, l));
    }
}

/// The IPv6 flow label is SipHash-1-3 of both addresses, both ports and the rehash count (the
/// integers little-endian) as one stream, cut to 20 bits and never 0: the value the
/// streaming hasher's five writes gave (labels do not change).
#[test]
fn flow_label_is_siphash_of_the_tuple_and_rehash_count() {
    use core::hash::Hasher;
    let s = stack(A_IP, "a", 7);
    for (sport, dport, rehash) in [(40000, 80, 0), (1, 65535, 3), (443, 443, u32::MAX)] {
        let mut h = siphasher::sip::SipHasher13::new_with_keys(s.flow_key.0, s.flow_key.1);
        h.write(&A_IP6.octets());
        h.write(&B_IP6.octets());
        h.write_u16(sport);
        h.write_u16(dport);
        h.write_u32(rehash);
        let want = ((h.finish() as u32) & 0xf_ffff).max(1);
        let got = s.flow_label(A_IP6.into(), sport, B_IP6.into(), dport, rehash);
        assert_eq!(got, want);
        assert_eq!(
            s.flow_label(A_IP.into(), sport, B_IP.into(), dport, rehash),
            0
        );
    }
}

/// A buffer of exactly one IP header, the TCP header a data segment carries (timestamps on)
/// and one MSS carries a full-MSS segment: the payload is sized against that header, not
/// against the largest TCP header (which cut it to 1420 bytes at MTU 1500).
#[test]
fn an_mtu_sized_buffer_carries_a_full_mss_segment() {
    let mut net = Net::new();
    let (_l, c, _s) = connected(&mut net, 80);
    let mss = net.a.connection(c).unwrap().info().snd_mss as usize;
    assert_eq!(mss, 1448, "MTU 1500 with timestamps");
    assert_eq!(net.a.send(net.now, c, &[7u8; 4000]).unwrap(), 4000);
    let mut buf = [0u8; 1500];
    let n = net.a.poll_transmit(net.now, &mut buf).unwrap();
    let ip = ipv4::Packet::new_checked(&buf[..n]).unwrap();
    let tcp = wtcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((tcp.header_len(), tcp.payload().len()), (32, mss));
    assert_eq!(n, 1500);
}

/// A buffer too small for any segment leaves the queue as it was: the data a write queued
/// goes out on the next call that brings room, not when something next touches the
/// connection.
#[test]
fn a_buffer_too_small_for_a_segment_leaves_the_connection_queued() {
    let mut net = Net::new();
    let (_l, c, _s) = connected(&mut net, 80);
    assert_eq!(net.a.send(net.now, c, b"hello").unwrap(), 5);
    let mut small = [0u8; 20 + crate::tcp::connection::MAX_HEADER];
    assert_eq!(net.a.poll_transmit(net.now, &mut small), None);
    let mut buf = [0u8; 1500];
    let n = net
        .a
        .poll_transmit(net.now, &mut buf)
        .expect("the write's segment, after the call that had no room");
    let ip = ipv4::Packet::new_checked(&buf[..n]).unwrap();
    let tcp = wtcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(tcp.payload(), b"hello");
}

#[test]
fn a_timer_entry_that_runs_nothing_reports_no_change() {
    // The server sends, the client's ACK stops the retransmission timer: the timer wheel
    // still holds the old deadline. When it comes, nothing runs, so nothing a socket sees
    // changed and `poll_changed` stays quiet (a driver would look at the socket for nothing).
    let mut net = Net::new();
    // Without tracing: a traced stack reports every connection it refreshes.
    net.b = Stack::new(
        StackConfig {
            name: "server".into(),
            ..StackConfig::default()
        },
        [2; 32],
    );
    net.b.add_address(Ipv4Cidr::new(B_IP, 24));
    let (_l, c, s) = connected(&mut net, 80);
    net.b.report_changes(true);
    assert_eq!(net.b.send(net.now, s, b"hello").unwrap(), 5);
    let mut buf = [0u8; 16];
    let mut got = 0;
    net.run_until(
        |n| {
            got += n.a.recv(n.now, c, &mut buf).unwrap();
            got == 5 && n.b.connection(s).unwrap().send_queue_len() == 0
        },
        Duration::from_secs(1),
    );
    while net.b.poll_changed().is_some() {}
    assert_eq!(net.b.connection(s).unwrap().poll_timeout(), None);
    let stale = net
        .b
        .poll_timeout()
        .expect("the wheel keeps the stopped timer's entry");
    net.now = stale + Duration::from_millis(1);
    net.b.handle_timeout(net.now);
    assert_eq!(net.b.poll_changed(), None);
    assert_eq!(net.b.poll_timeout(), None, "the entry is gone");
}

/// The IP identification counters start from a SipHash of the secret, never from raw key
/// bits that the first packet would show (they seeded the ISN generator and the demux hash).
#[test]
fn ip_identification_starts_from_a_hash_of_the_secret() {
    let mut secret = [0u8; 32];
    for (i, b) in secret.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    let s = Stack::new(StackConfig::default(), secret);
    let le16 = |i: usize| u16::from_le_bytes([secret[i], secret[i + 1]]);
    let le32 =
        |i: usize| u32::from_le_bytes([secret[i], secret[i + 1], secret[i + 2], secret[i + 3]]);
    for i in 0..31 {
        assert_ne!(
            s.ip_ident,
            le16(i),
            "IPv4 ID shows secret bytes {i}..{}",
            i + 2
        );
    }
    for i in 0..29 {
        assert_ne!(
            s.ip6_ident,
            le32(i),
            "IPv6 ID shows secret bytes {i}..{}",
            i + 4
        );
    }
    // And it depends on the secret.
    let other = Stack::new(StackConfig::default(), [secret[0] ^ 1; 32]);
    assert_ne!((s.ip_ident, s.ip6_ident), (other.ip_ident, other.ip6_ident));
}

/// A buffer too small for a SYN-ACK, or for a control packet (the RST answering a SYN to a
/// closed port), leaves it first in its queue for a call that brings room: neither is
/// dropped (as a connection's segment is not).
#[test]
fn a_buffer_too_small_leaves_syn_acks_and_control_packets_queued() {
    let flags_of = |p: &[u8]| {
        let ip = ipv4::Packet::new_checked(p).unwrap();
        wtcp::Packet::new_checked(ip.payload()).unwrap().flags()
    };
    let mut small = [0u8; 30];
    let mut buf = [0u8; 1500];

    let (mut net, syn) = listener_and_syn();
    net.b.handle_packet(net.now, &syn);
    assert_eq!(net.b.poll_transmit(net.now, &mut small), None);
    let n = net.b.poll_transmit(net.now, &mut buf).expect("the SYN-ACK");
    assert_eq!(flags_of(&buf[..n]), Flags::SYN | Flags::ACK);

    let mut net = Net::new();
    let _c = net.a.connect(net.now, server_addr(9), None).unwrap();
    let n = net.a.poll_transmit(net.now, &mut buf).unwrap();
    let syn = buf[..n].to_vec();
    net.b.handle_packet(net.now, &syn);
    assert_eq!(net.b.poll_transmit(net.now, &mut small), None);
    let n = net.b.poll_transmit(net.now, &mut buf).expect("the RST");
    assert_eq!(flags_of(&buf[..n]), Flags::RST | Flags::ACK);
    assert_eq!(net.b.counters().no_port_rsts, 1);
}
