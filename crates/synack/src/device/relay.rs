//! A userspace `netem`: two devices joined back to back, with the impairment models of
//! [`Impaired`] on the way in each direction.
//!
//! Where the kernel has no `sch_netem`, two kernels (each in its own network namespace, each
//! with a TUN interface whose other end is the relay) can still talk across a lossy, slow,
//! delayed path: [`Relay`] reads the IP packets one side sends and writes them to the other
//! side, through one [`Channel`](super::impair::Channel) per direction. It is [`Impaired`]
//! itself in front of side A (its *incoming* direction is A → B, its *outgoing* one B → A), so
//! a kernel-to-kernel transfer through the relay and a synack-to-kernel transfer through
//! `Impaired<Tun>` see the very same model with the same parameters: loss, delay, jitter,
//! reordering, duplication, corruption, and a rate with a drop-tail queue.
//!
//! [`Relay::forward`] is the whole job at one instant (no I/O of its own beyond the devices');
//! [`Relay::run`] (Linux) loops it, sleeping in `poll(2)` on both devices until one has a
//! packet or a held packet falls due.
//!
//! ```
//! use synack::device::impair::{LinkConfig, Loss};
//! use synack::device::relay::Relay;
//! use synack::device::{Device, Loopback};
//! use synack::time::{Duration, Instant};
//!
//! // A loopback device hands back what is sent to it: "the far side of A" sends a packet
//! // by sending it into A.
//! let mut a = Loopback::new(1500);
//! a.send(Instant::ZERO, b"hello from A").unwrap();
//! let mut relay = Relay::new(a, Loopback::new(1500), 1)
//!     .a_to_b(LinkConfig::delay_ms(50).with_loss(Loss::Bernoulli(0.0)));
//! relay.forward(Instant::ZERO).unwrap();
//! // Held for 50 ms, then written to B.
//! assert_eq!(relay.poll_timeout(), Some(Instant::from_millis(50)));
//! relay.forward(Instant::from_millis(50)).unwrap();
//! assert_eq!(relay.stats().a_to_b.delivered, 1);
//! ```

use std::io;

use super::Device;
use super::impair::{Impaired, LinkConfig, LinkStats};
use crate::time::Instant;

/// Packets moved per direction per [`Relay::forward`] call at most, so that neither side
/// starves the other.
const BATCH: usize = 256;

/// What a [`Relay`] did, per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// The A → B direction's model: offered, lost, queue drops, delivered (written to B)...
    pub a_to_b: LinkStats,
    /// The B → A direction's model.
    pub b_to_a: LinkStats,
    /// Reads that failed (a malformed super-segment, say); the packet is gone.
    pub rx_errors: u64,
    /// Writes that failed; the packets are gone (TCP retransmits).
    pub tx_errors: u64,
}

/// Two devices joined through the impairment models; see the [module documentation](self).
pub struct Relay<A, B> {
    a: Impaired<A>,
    b: B,
    buf: Vec<u8>,
    rx_errors: u64,
    tx_errors: u64,
}

impl<A: Device, B: Device> Relay<A, B> {
    /// Joins `a` and `b`, perfect both ways until configured; `seed` seeds both directions'
    /// random streams (as [`Impaired::new`] does). A → B draws from the stream an
    /// `Impaired` device's *outgoing* direction uses (its streams swapped): a sender
    /// behind the relay and a sender on `Impaired::new(dev, seed).outgoing(..)` meet the same
    /// losses at the same packet numbers, as the sender matrix of issue 21 assumes.
    pub fn new(a: A, b: B, seed: u64) -> Relay<A, B> {
        let mtu = usize::from(a.mtu().max(b.mtu()));
        Relay {
            a: Impaired::new(a, seed).swap_streams(),
            b,
            buf: vec![0u8; mtu.max(1500)],
            rx_errors: 0,
            tx_errors: 0,
        }
    }

    /// Shapes the packets side A sends towards side B.
    pub fn a_to_b(mut self, cfg: LinkConfig) -> Relay<A, B> {
        self.a = self.a.incoming(cfg);
        self
    }

    /// Shapes the packets side B sends towards side A.
    pub fn b_to_a(mut self, cfg: LinkConfig) -> Relay<A, B> {
        self.a = self.a.outgoing(cfg);
        self
    }

    /// The counters.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            a_to_b: self.a.incoming_stats(),
            b_to_a: self.a.outgoing_stats(),
            rx_errors: self.rx_errors,
            tx_errors: self.tx_errors,
        }
    }

    /// Side A's device.
    pub fn a(&self) -> &A {
        self.a.inner()
    }

    /// Side B's device.
    pub fn b(&self) -> &B {
        &self.b
    }

    /// Moves what is ready at `now`: packets side A sent, once their model lets them arrive,
    /// to B; packets side B sent into the B → A model (and those of them due, to A). Returns
    /// whether more may be ready at once (a batch limit was reached). Device errors are
    /// counted in [`stats`](Self::stats), not returned: a relay keeps relaying.
    pub fn forward(&mut self, now: Instant) -> io::Result<bool> {
        let mut more = false;
        let mut moved = 0;
        loop {
            match self.a.recv(now, &mut self.buf) {
                Ok(Some(n)) => {
                    if self.b.send(now, &self.buf[..n]).is_err() {
                        self.tx_errors += 1;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    self.rx_errors += 1;
                    break;
                }
            }
            moved += 1;
            if moved == BATCH {
                more = true;
                break;
            }
        }
        moved = 0;
        loop {
            match self.b.recv(now, &mut self.buf) {
                Ok(Some(n)) => {
                    if self.a.send(now, &self.buf[..n]).is_err() {
                        self.tx_errors += 1;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    self.rx_errors += 1;
                    break;
                }
            }
            moved += 1;
            if moved == BATCH {
                more = true;
                break;
            }
        }
        if self.a.handle_timeout(now).is_err() {
            self.tx_errors += 1;
        }
        if self.b.handle_timeout(now).is_err() {
            self.tx_errors += 1;
        }
        if self.a.flush(now).is_err() {
            self.tx_errors += 1;
        }
        if self.b.flush(now).is_err() {
            self.tx_errors += 1;
        }
        Ok(more)
    }

    /// When [`forward`](Self::forward) next has work that needs no input: a held packet
    /// falling due (or segments a device holds already).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(target_os = "linux")]
impl<A: Device, B: Device> Relay<A, B> {
    /// Relays until `stop` is set (checked at least every 100 ms) or `limit` has passed,
    /// sleeping in `poll(2)` on both devices' descriptors between packets. The relay's clock
    /// starts at zero when this is called.
    pub fn run(
        &mut self,
        stop: &std::sync::atomic::AtomicBool,
        limit: Option<std::time::Duration>,
    ) -> io::Result<()> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        use std::sync::atomic::Ordering;
        use std::time::Duration as StdDuration;

        let start = std::time::Instant::now();
        let clock = || Instant::from_micros(start.elapsed().as_micros() as u64);
        while !stop.load(Ordering::Relaxed) {
            if limit.is_some_and(|l| start.elapsed() >= l) {
                break;
            }
            let now = clock();
            if self.forward(now)? {
                continue;
            }
            let mut wait = StdDuration::from_millis(100);
            if let Some(t) = self.poll_timeout() {
                wait = wait.min(t - clock());
            }
            if wait.is_zero() {
                continue;
            }
            let ts = Timespec {
                tv_sec: wait.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: wait.subsec_nanos().into(),
            };
            let mut fds: Vec<PollFd<'_>> = [self.a.readable_fd(), self.b.readable_fd()]
                .into_iter()
                .flatten()
                .map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::IN))
                .collect();
            match poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::impair::Loss;
    use crate::time::Duration;
    use std::collections::VecDeque;

    /// One side of the relay: what its far end (a kernel, say) sends, and what it got.
    #[derive(Default)]
    struct Side {
        sends: VecDeque<Vec<u8>>,
        got: Vec<(Instant, Vec<u8>)>,
        queued: Vec<Vec<u8>>,
        flushes: u32,
    }

    impl Device for Side {
        fn mtu(&self) -> u16 {
            1500
        }
        fn send(&mut self, _now: Instant, packet: &[u8]) -> io::Result<()> {
            self.queued.push(packet.to_vec());
            Ok(())
        }
        fn flush(&mut self, now: Instant) -> io::Result<()> {
            self.flushes += 1;
            for p in self.queued.drain(..) {
                self.got.push((now, p));
            }
            Ok(())
        }
        fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
            Ok(self.sends.pop_front().map(|p| {
                buf[..p.len()].copy_from_slice(&p);
                p.len()
            }))
        }
    }

    fn packet(i: u32) -> Vec<u8> {
        let mut p = vec![0u8; 1000];
        p[..4].copy_from_slice(&i.to_be_bytes());
        p
    }

    /// Runs the relay in virtual time: every 100 µs each side sends one packet, for `n`
    /// rounds; then until nothing is held.
    fn run(relay: &mut Relay<Side, Side>, n: u32, sends: impl Fn(u32) -> (bool, bool)) {
        let mut now = Instant::ZERO;
        for i in 0..n {
            let (a, b) = sends(i);
            if a {
                relay.a.inner_mut().sends.push_back(packet(i));
            }
            if b {
                relay.b.sends.push_back(packet(i));
            }
            relay.forward(now).unwrap();
            now += Duration::from_micros(100);
            while let Some(t) = relay.poll_timeout().filter(|&t| t <= now) {
                relay.forward(t).unwrap();
            }
        }
        while let Some(t) = relay.poll_timeout() {
            relay.forward(t).unwrap();
        }
    }

    #[test]
    fn each_direction_gets_its_own_model_and_packets_arrive_on_the_far_side() {
        let mut relay = Relay::new(Side::default(), Side::default(), 3)
            .a_to_b(LinkConfig::delay_ms(50).with_loss(Loss::Bernoulli(0.1)))
            .b_to_a(LinkConfig::delay_ms(5));
        run(&mut relay, 2000, |_| (true, true));
        let s = relay.stats();
        // A -> B: 10 % lost, the rest 50 ms late, in order.
        assert_eq!(s.a_to_b.sent, 2000);
        assert!((150..250).contains(&s.a_to_b.dropped_loss), "{s:?}");
        assert_eq!(s.a_to_b.delivered + s.a_to_b.dropped_loss, 2000);
        let got_b = &relay.b.got;
        assert_eq!(got_b.len() as u64, s.a_to_b.delivered);
        let ids: Vec<u32> = got_b
            .iter()
            .map(|(_, p)| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "A -> B out of order");
        for ((at, _), id) in got_b.iter().zip(&ids) {
            // Sent at id * 100 µs, arriving 50 ms later (written at the first forward then).
            let sent = Instant::from_micros(u64::from(*id) * 100);
            assert_eq!(*at - sent, Duration::from_millis(50), "packet {id}");
        }
        // B -> A: nothing lost, 5 ms late.
        assert_eq!((s.b_to_a.sent, s.b_to_a.delivered), (2000, 2000));
        let got_a = &relay.a.inner().got;
        assert_eq!(got_a.len(), 2000);
        assert_eq!(got_a[0].0, Instant::from_millis(5));
        assert_eq!((s.rx_errors, s.tx_errors), (0, 0));
        // Every write reached the devices through flush.
        assert!(relay.b.flushes > 0 && relay.a.inner().flushes > 0);
    }

    #[test]
    fn a_rate_limit_paces_and_its_queue_drops_the_excess() {
        // 8 Mbit/s: a 1000-byte packet every 1 ms. A bursts 60 packets at once into a
        // queue of 20 packets' worth of bytes.
        let mut relay = Relay::new(Side::default(), Side::default(), 1).a_to_b(
            LinkConfig::default()
                .with_bandwidth(8_000_000)
                .with_queue_limit(20 * 1000),
        );
        for i in 0..60 {
            relay.a.inner_mut().sends.push_back(packet(i));
        }
        run(&mut relay, 1, |_| (false, false));
        let s = relay.stats().a_to_b;
        assert_eq!(s.delivered, 20, "{s:?}");
        assert_eq!(s.dropped_queue, 40);
        let got = &relay.b.got;
        let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(
            gaps.iter().all(|&g| g == Duration::from_millis(1)),
            "{gaps:?}"
        );
    }

    /// The relay's A → B direction and an `Impaired` device's outgoing direction with the
    /// same seed and model lose the same packets.
    #[test]
    fn a_to_b_draws_what_an_impaired_senders_outgoing_direction_draws() {
        let cfg = LinkConfig::default().with_loss(Loss::Bernoulli(0.1));
        let mut relay = Relay::new(Side::default(), Side::default(), 21).a_to_b(cfg);
        run(&mut relay, 500, |_| (true, false));
        let mut dev = Impaired::new(Side::default(), 21).outgoing(cfg);
        for i in 0..500 {
            dev.send(Instant::ZERO, &packet(i)).unwrap();
        }
        dev.flush(Instant::ZERO).unwrap();
        let ids = |got: &[(Instant, Vec<u8>)]| -> Vec<u32> {
            got.iter()
                .map(|(_, p)| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
                .collect()
        };
        let relayed = ids(&relay.b.got);
        assert!((400..480).contains(&relayed.len()), "{}", relayed.len());
        assert_eq!(relayed, ids(&dev.inner().got));
    }

    #[test]
    fn forward_bounds_its_work_per_call() {
        let mut relay = Relay::new(Side::default(), Side::default(), 1);
        for i in 0..(BATCH as u32 + 10) {
            relay.a.inner_mut().sends.push_back(packet(i));
        }
        assert!(relay.forward(Instant::ZERO).unwrap());
        assert_eq!(relay.b.got.len(), BATCH);
        assert!(!relay.forward(Instant::ZERO).unwrap());
        assert_eq!(relay.b.got.len(), BATCH + 10);
    }
}
