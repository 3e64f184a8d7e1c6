//! Socket calls that act on a connection under way: poll readiness, disconnect
//! (connect with AF_UNSPEC) and TCP_SYNCNT.

use super::*;
use crate::tcp::PollEvents;

#[test]
fn poll_events_of_a_listener_and_its_connections() {
    let mut net = Net::new();
    let l = net.b.listen(server_addr(80), 8).unwrap();
    assert_eq!(net.b.poll_events(l), PollEvents::NONE);
    let c = net.a.connect(net.now, server_addr(80), None).unwrap();
    // SYN-SENT: nothing to report yet.
    assert_eq!(net.a.poll_events(c), PollEvents::NONE);
    net.run_until(|n| n.b.accept_queue_len(l) == 1, Duration::from_secs(1));
    assert_eq!(net.b.poll_events(l), PollEvents::IN);
    assert_eq!(net.a.poll_events(c), PollEvents::OUT);
    let s = net.b.accept(l).unwrap().unwrap();
    assert_eq!(net.b.poll_events(l), PollEvents::NONE);
    net.b.send(net.now, s, b"hello").unwrap();
    net.b.shutdown(net.now, s, Shutdown::Write).unwrap();
    net.run_until(
        |n| n.a.connection(c).is_some_and(|x| x.peer_closed()),
        Duration::from_secs(1),
    );
    assert_eq!(
        net.a.poll_events(c),
        PollEvents::IN | PollEvents::OUT | PollEvents::RDHUP
    );
    net.b.abort(net.now, s);
    net.run_until(
        |n| n.a.connection(c).unwrap().state() == State::Closed,
        Duration::from_secs(1),
    );
    let closed = PollEvents::IN | PollEvents::OUT | PollEvents::RDHUP | PollEvents::HUP;
    assert_eq!(net.a.poll_events(c), closed | PollEvents::ERR);
    // A RST after the peer's FIN: Linux reports EPIPE.
    assert_eq!(
        net.a.take_error(c).unwrap().unwrap().kind(),
        ErrorKind::BrokenPipe
    );
    // The error was reported: POLLERR goes.
    assert_eq!(net.a.poll_events(c), closed);
}

#[test]
fn disconnect_resets_the_peer_and_the_socket_connects_again() {
    let mut net = Net::new();
    let (l, c, s) = connected(&mut net, 80);
    net.a.disconnect(net.now, c);
    net.run_until(
        |n| n.b.connection(s).unwrap().state() == State::Closed,
        Duration::from_secs(1),
    );
    assert_eq!(
        net.b.recv(net.now, s, &mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    assert_eq!(net.a.counters().abort_on_close, 0);
    let again = net.a.connect(net.now, server_addr(80), None).unwrap();
    net.run_until(|n| n.b.accept_queue_len(l) == 1, Duration::from_secs(1));
    assert_eq!(net.a.connection(again).unwrap().state(), State::Established);
}

#[test]
fn syn_count_bounds_an_attempt_already_under_way() {
    let mut net = Net::new();
    net.blackhole_b = true;
    let c = net.a.connect(net.now, server_addr(80), None).unwrap();
    for bad in [0, 128] {
        let e = net
            .a
            .set_option(net.now, c, SocketOption::SynCount(bad))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
    let later = net.now + Duration::from_millis(100);
    net.run_until(|n| n.now >= later, Duration::from_secs(1));
    net.a
        .set_option(net.now, c, SocketOption::SynCount(1))
        .unwrap();
    net.run_until(
        |n| {
            n.a.connection(c)
                .is_some_and(|x| x.state() == State::Closed)
        },
        Duration::from_secs(200),
    );
    // SYNs at 0, 1 and 2 s (linear timeouts keep the RTO at 1 s, and the count allows
    // syn_retries + syn_linear_timeouts); the time one retry stands for, (2^2 - 1) x 1 s,
    // has passed when the timer fires at 3 s: Linux's tcp_write_timeout gives up there.
    let syns: Vec<_> = net
        .log
        .iter()
        .filter(|(_, from_a, _)| *from_a)
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(syns, [0, 1, 2].map(Instant::from_secs));
    assert_eq!(net.now, Instant::from_secs(3));
    let e = net.a.recv(net.now, c, &mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
}
