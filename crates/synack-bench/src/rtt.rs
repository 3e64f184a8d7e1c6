//! rtt: a 1-byte ping-pong, round trip by round trip, in one process; the kernel between two
//! threads over loopback (TCP_NODELAY).

use std::time::Instant;

use crate::link::now_micros;
use crate::pair::{CLIENT, Pair, SERVER};

/// Waits (exchanging packets both ways) until `side` has read one byte into `b`.
fn read_one<P: Pair>(
    p: &mut P,
    side: usize,
    now: u64,
    b: &mut [u8; 1],
    clock: &mut impl FnMut() -> u64,
) {
    let mut now = now;
    for round in 0..100_000 {
        if p.recv(side, now, b) == 1 {
            return;
        }
        if round > 0 {
            now = clock();
        }
        p.carry(CLIENT, now);
        p.carry(SERVER, now);
    }
    panic!("{}: ping-pong byte never arrived", p.name());
}

/// `n` measured round trips (after `warmup`), nanoseconds each: the client writes a byte, it
/// travels to the server, which reads it and writes it back; the client reads it.
pub fn pingpong<P: Pair>(p: &mut P, n: usize, warmup: usize) -> Vec<f64> {
    pingpong_with(p, n, warmup, now_micros)
}

/// [`pingpong`] on the clock `clock` (microseconds): the wall clock for the figure, a virtual
/// one for `cg-rtt`. The times returned are wall-clock times either way.
pub fn pingpong_with<P: Pair>(
    p: &mut P,
    n: usize,
    warmup: usize,
    mut clock: impl FnMut() -> u64,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    let mut b = [0u8; 1];
    for i in 0..n + warmup {
        let t = Instant::now();
        let now = clock();
        assert_eq!(p.send(CLIENT, now, &[i as u8]), 1);
        p.carry(CLIENT, now);
        read_one(p, SERVER, now, &mut b, &mut clock);
        assert_eq!(b[0], i as u8);
        assert_eq!(p.send(SERVER, now, &b), 1);
        p.carry(SERVER, now);
        read_one(p, CLIENT, now, &mut b, &mut clock);
        assert_eq!(b[0], i as u8);
        if i >= warmup {
            out.push(t.elapsed().as_nanos() as f64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smol_pair::SmolPair;
    use crate::synack_pair::SynackPair;

    #[test]
    fn both_stacks_ping_pong() {
        let mut s = SynackPair::connected(1500, 64 * 1024);
        assert_eq!(pingpong(&mut s, 500, 10).len(), 500);
        let mut m = SmolPair::connected(1500, 64 * 1024);
        assert_eq!(pingpong(&mut m, 500, 10).len(), 500);
        // One round trip is two packets (the ACKs ride on the replies) plus at most a few
        // delayed ACKs.
        let packets = s.link().packets(0) + s.link().packets(1);
        assert!(packets < 2 * 510 + 50, "synack sent {packets} packets");
        assert_eq!(crate::kernel::rtt(100, 10).len(), 100);
    }
}
