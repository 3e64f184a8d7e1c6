//! cps: connect + accept + 1-byte exchange each way + close, as cycles per second, one
//! connection at a time, in one process.
//!
//! Each cycle: the client connects; SYN →, ← SYN-ACK; the client writes 1 byte (it rides on the
//! handshake's final ACK); the server accepts, reads it, writes 1 byte and closes (← data+FIN);
//! the client reads the byte and the end of stream and closes (FIN →, ← ACK). Six packets. The
//! server closes first, so TIME-WAIT is the server's, as with an HTTP/1.0 server.

use std::time::{Duration, Instant as WallClock};

use smoltcp::socket::tcp;
use synack::stack::Stack;
use synack::time::Instant;

use crate::link::{Link, now_micros};
use crate::pair::{CLIENT, SERVER, dir_from};
use crate::synack_pair::Variant;
use crate::{smol_pair, synack_pair};

/// Buffer size for the cps stacks (synack allocates buffers on first use, smoltcp up front).
const BUFFER: usize = 64 * 1024;
/// Rounds of packet exchange a stage may take before the cycle is declared stuck.
const STAGE_LIMIT: usize = 10_000;

pub struct CpsResult {
    pub cycles: u64,
    pub per_sec: f64,
    pub note: String,
}

struct Duo {
    stacks: [Stack; 2],
    link: Link,
}

impl Duo {
    fn carry(&mut self, from: usize, now: u64) {
        synack_pair::egress(&mut self.stacks[from], &self.link, dir_from(from), now);
        synack_pair::ingress(&mut self.stacks[1 - from], &self.link, dir_from(from), now);
    }

    /// Exchanges packets both ways until `done` (normally true after the first round); a round
    /// after the first reads the clock again.
    fn until(
        &mut self,
        now: &mut u64,
        clock: &mut impl FnMut() -> u64,
        mut done: impl FnMut(&mut Duo, u64) -> bool,
    ) {
        for round in 0..STAGE_LIMIT {
            if done(self, *now) {
                return;
            }
            if round > 0 {
                *now = clock();
            }
            self.carry(CLIENT, *now);
            self.carry(SERVER, *now);
        }
        panic!("synack cps: a cycle got stuck");
    }
}

/// The cps loop with synack's stacks running `variant`'s features.
pub fn synack(variant: Variant, budget: Duration, max: u64) -> CpsResult {
    synack_with(variant, budget, max, now_micros)
}

/// [`synack`] on the clock `clock` (microseconds): the wall clock for the figure, a virtual one
/// for `cg-cps`, whose count then does not depend on how fast the run goes.
pub fn synack_with(
    variant: Variant,
    budget: Duration,
    max: u64,
    mut clock: impl FnMut() -> u64,
) -> CpsResult {
    let mut duo = Duo {
        stacks: [
            synack_pair::stack(variant, synack_pair::CLIENT_IP, 1, 1500, BUFFER),
            synack_pair::stack(variant, synack_pair::SERVER_IP, 2, 1500, BUFFER),
        ],
        link: Link::new(1500),
    };
    let listener = duo.stacks[SERVER]
        .listen(synack_pair::server_addr(), 1024)
        .expect("listen");
    let mut b = [0u8; 1];
    let start = WallClock::now();
    let mut n = 0u64;
    while n < max && (n % 256 != 0 || start.elapsed() < budget) {
        let mut now = clock();
        let t = Instant::from_micros(now);
        let c = duo.stacks[CLIENT]
            .connect(t, synack_pair::server_addr(), None)
            .expect("connect");
        duo.carry(CLIENT, now); // SYN
        duo.carry(SERVER, now); // SYN-ACK
        duo.until(&mut now, &mut clock, |d, _| {
            d.stacks[CLIENT]
                .connection(c)
                .is_some_and(|c| c.state().is_synchronized())
        });
        let t = Instant::from_micros(now);
        assert_eq!(duo.stacks[CLIENT].send(t, c, b"x").expect("send"), 1);
        duo.carry(CLIENT, now); // ACK + 1 byte
        let mut s = None;
        duo.until(&mut now, &mut clock, |d, _| {
            s = d.stacks[SERVER].accept(listener).expect("accept");
            s.is_some()
        });
        let s = s.expect("accepted");
        duo.until(&mut now, &mut clock, |d, now| {
            d.stacks[SERVER]
                .recv(Instant::from_micros(now), s, &mut b)
                .expect("recv")
                == 1
        });
        let t = Instant::from_micros(now);
        assert_eq!(duo.stacks[SERVER].send(t, s, b"y").expect("send"), 1);
        duo.stacks[SERVER].close(t, s);
        duo.carry(SERVER, now); // 1 byte + FIN
        duo.until(&mut now, &mut clock, |d, now| {
            d.stacks[CLIENT]
                .recv(Instant::from_micros(now), c, &mut b)
                .expect("recv")
                == 1
        });
        duo.until(&mut now, &mut clock, |d, _| {
            d.stacks[CLIENT]
                .connection(c)
                .is_some_and(|c| c.peer_closed())
        });
        duo.stacks[CLIENT].close(Instant::from_micros(now), c);
        duo.carry(CLIENT, now); // FIN
        duo.carry(SERVER, now); // ACK
        duo.until(&mut now, &mut clock, |d, _| {
            d.stacks[CLIENT].connection(c).is_none()
        });
        n += 1;
    }
    let per_sec = n as f64 / start.elapsed().as_secs_f64();
    let note = format!(
        "{n} cycles, 6 packets each, two Stacks in one loop; afterwards the client holds {} connections, the server {} (TIME-WAIT, kept 60 s; a new SYN on the same 4-tuple reuses one)",
        duo.stacks[CLIENT].connection_count(),
        duo.stacks[SERVER].connection_count()
    );
    CpsResult {
        cycles: n,
        per_sec,
        note,
    }
}

pub fn smoltcp(budget: Duration, max: u64) -> CpsResult {
    smoltcp_with(budget, max, now_micros)
}

/// [`smoltcp`] on the clock `clock`, as [`synack_with`].
pub fn smoltcp_with(budget: Duration, max: u64, mut clock: impl FnMut() -> u64) -> CpsResult {
    use smoltcp::iface::SocketSet;
    let link = Link::new(1500);
    let mut ifaces = [
        smol_pair::interface(&link, CLIENT, smol_pair::CLIENT_IP, 1),
        smol_pair::interface(&link, SERVER, smol_pair::SERVER_IP, 2),
    ];
    let mut sets = [SocketSet::new(Vec::new()), SocketSet::new(Vec::new())];
    let ch = sets[CLIENT].add(smol_pair::socket(BUFFER));
    let mut server = smol_pair::socket(BUFFER);
    server.listen(smol_pair::PORT).expect("listen");
    let sh = sets[SERVER].add(server);
    let carry = |ifaces: &mut [smoltcp::iface::Interface; 2],
                 sets: &mut [SocketSet<'static>; 2],
                 from: usize,
                 now: u64| {
        smol_pair::egress(&mut ifaces[from], &mut sets[from], &link, from, now);
        smol_pair::ingress(
            &mut ifaces[1 - from],
            &mut sets[1 - from],
            &link,
            1 - from,
            now,
        );
    };
    let mut b = [0u8; 1];
    let mut port: u16 = 1024;
    let start = WallClock::now();
    let mut n = 0u64;
    // Runs packet exchanges until `done` holds.
    macro_rules! until {
        ($now:ident, $done:expr) => {{
            let mut ok = false;
            for round in 0..STAGE_LIMIT {
                if $done(&mut sets) {
                    ok = true;
                    break;
                }
                if round > 0 {
                    $now = clock();
                }
                carry(&mut ifaces, &mut sets, CLIENT, $now);
                carry(&mut ifaces, &mut sets, SERVER, $now);
            }
            assert!(ok, "smoltcp cps: a cycle got stuck");
        }};
    }
    while n < max && (n % 256 != 0 || start.elapsed() < budget) {
        let mut now = clock();
        port = if port == u16::MAX { 1024 } else { port + 1 };
        {
            let cx = ifaces[CLIENT].context();
            let c = sets[CLIENT].get_mut::<tcp::Socket>(ch);
            c.connect(cx, (smol_pair::SERVER_IP, smol_pair::PORT), port)
                .expect("connect");
        }
        carry(&mut ifaces, &mut sets, CLIENT, now); // SYN
        carry(&mut ifaces, &mut sets, SERVER, now); // SYN-ACK
        until!(now, |s: &mut [SocketSet<'static>; 2]| s[CLIENT]
            .get::<tcp::Socket>(ch)
            .may_send());
        assert_eq!(
            sets[CLIENT]
                .get_mut::<tcp::Socket>(ch)
                .send_slice(b"x")
                .expect("send"),
            1
        );
        carry(&mut ifaces, &mut sets, CLIENT, now); // ACK + 1 byte
        until!(now, |s: &mut [SocketSet<'static>; 2]| {
            let srv = s[SERVER].get_mut::<tcp::Socket>(sh);
            srv.can_recv() && srv.recv_slice(&mut b).expect("recv") == 1
        });
        {
            let srv = sets[SERVER].get_mut::<tcp::Socket>(sh);
            assert_eq!(srv.send_slice(b"y").expect("send"), 1);
            srv.close();
        }
        carry(&mut ifaces, &mut sets, SERVER, now); // 1 byte + FIN
        until!(now, |s: &mut [SocketSet<'static>; 2]| {
            let c = s[CLIENT].get_mut::<tcp::Socket>(ch);
            c.can_recv() && c.recv_slice(&mut b).expect("recv") == 1
        });
        until!(now, |s: &mut [SocketSet<'static>; 2]| !s[CLIENT]
            .get::<tcp::Socket>(ch)
            .may_recv());
        sets[CLIENT].get_mut::<tcp::Socket>(ch).close();
        carry(&mut ifaces, &mut sets, CLIENT, now); // FIN
        carry(&mut ifaces, &mut sets, SERVER, now); // ACK
        until!(now, |s: &mut [SocketSet<'static>; 2]| s[CLIENT]
            .get::<tcp::Socket>(ch)
            .state()
            == tcp::State::Closed
            && s[SERVER].get::<tcp::Socket>(sh).state()
                == tcp::State::TimeWait);
        // smoltcp has no accept queue: a listening socket becomes the connection. To accept
        // again the server socket leaves TIME-WAIT at once (abort: state forgotten; the RST
        // abort would send is dropped by listen()) and listens again.
        let srv = sets[SERVER].get_mut::<tcp::Socket>(sh);
        srv.abort();
        srv.listen(smol_pair::PORT).expect("listen again");
        n += 1;
    }
    let per_sec = n as f64 / start.elapsed().as_secs_f64();
    CpsResult {
        cycles: n,
        per_sec,
        note: format!(
            "{n} cycles; smoltcp has no accept queue, so one socket listens, becomes the connection, leaves TIME-WAIT by abort() and listens again; the client socket is reused with the next local port"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synack_cycles_complete() {
        for v in [Variant::Default, Variant::Lite] {
            let r = synack(v, Duration::from_secs(30), 300);
            assert_eq!(r.cycles, 300);
            assert!(r.per_sec > 0.0);
        }
    }

    #[test]
    fn smoltcp_cycles_complete() {
        let r = smoltcp(Duration::from_secs(30), 300);
        assert_eq!(r.cycles, 300);
    }

    #[test]
    fn kernel_cycles_complete() {
        let (n, rate) = crate::kernel::cps(Duration::from_secs(30), 50);
        assert_eq!(n, 50);
        assert!(rate > 0.0);
    }
}
