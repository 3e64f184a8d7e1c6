//! Devices: the things that move IP packets in and out of the stack.
//!
//! A device carries whole IP packets (IPv4 or IPv6, no link-layer header). It is the only layer
//! of synack that touches the outside world; everything above it is sans-IO.
//!
//! * [`sim::SimNet`]: an in-memory network of hosts, switches and point-to-point links with
//!   delay, jitter, bandwidth, drop-tail queues, loss (independent or bursty), duplication,
//!   reordering and corruption. It runs in virtual time and is a deterministic function of its
//!   seed and of the calls made on it: it reads no clock and draws no OS randomness.
//! * [`Device`]: what a runtime needs of a real (or any) network device: send a packet, receive
//!   the packets that are ready, say when it holds work for later, and expose a file descriptor
//!   to wait on. Implemented by [`tun::Tun`] (Linux), [`Loopback`], and [`impair::Impaired`],
//!   which puts SimNet's impairment models in front of any other device.
//! * [`pair::pair`] (Linux): two [`Device`]s joined back to back in memory, like a veth pair,
//!   each with an eventfd to wait on: two runtimes (one driver each) on one in-process link.
//! * [`relay::Relay`]: two devices joined back to back through the impairment models, a
//!   userspace `netem` between two kernels (`synack relay`).
//! * [`tun::Tun`] (Linux): a TUN interface (`IFF_TUN | IFF_NO_PI`) through the `tun-rs` crate,
//!   non-blocking, optionally created inside a network namespace. synack itself has no
//!   `unsafe` code: the `ioctl`s live in `tun-rs`, `setns`/`poll`/`eventfd` in `rustix`.
//!
//! [`SimRng`] is the small seedable generator behind every random choice SimNet makes; the
//! stack's own tests use it too, so a failing seed replays exactly.
//!
//! # Example
//!
//! Two hosts joined by a 10 ms link, driven in virtual time:
//!
//! ```
//! use synack::device::sim::{LinkConfig, SimNet};
//! use synack::time::{Duration, Instant};
//!
//! let mut net = SimNet::new(42);
//! let a = net.add_host("a");
//! let b = net.add_host("b");
//! net.connect(a, b, LinkConfig::delay_ms(10)).unwrap();
//!
//! net.send(Instant::ZERO, a, b"an IP packet").unwrap();
//! let due = net.next_delivery().unwrap();
//! assert_eq!(due, Instant::from_millis(10));
//! assert!(net.poll_deliver(due - Duration::from_micros(1)).is_none()); // not yet
//! let d = net.poll_deliver(due).unwrap();
//! assert_eq!((d.to, d.at, &d.packet[..]), (b, due, &b"an IP packet"[..]));
//! net.recycle(d.packet); // hand the buffer back for reuse
//! ```

pub mod impair;
#[cfg(target_os = "linux")]
pub mod pair;
pub mod relay;
pub mod sim;
#[cfg(target_os = "linux")]
pub mod tun;

pub use sim::SimNet;

use std::collections::VecDeque;
use std::io;

use crate::time::Instant;

/// A network device that carries whole IP packets (no link-layer header), as a runtime drives
/// it: one thread calls every method, with the runtime's clock as `now`.
///
/// The contract is that of a NIC: [`send`](Device::send) hands over one packet or fails for
/// that packet alone (the caller counts it as dropped; TCP retransmits);
/// [`recv`](Device::recv) returns a packet that is ready or `None` without blocking. A device
/// with an operating-system handle exposes it in [`readable_fd`](Device::readable_fd) so the
/// runtime can sleep in `poll(2)` until it has input; a device that holds packets for later
/// (such as [`impair::Impaired`]) reports when in [`poll_timeout`](Device::poll_timeout).
pub trait Device: Send {
    /// The largest IP packet the device carries, in bytes.
    fn mtu(&self) -> u16;

    /// Sends one IP packet at `now`.
    fn send(&mut self, now: Instant, packet: &[u8]) -> io::Result<()>;

    /// Copies the next received IP packet into `buf` and returns its length, or `None` if no
    /// packet is ready at `now`. Never blocks.
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// [`recv`](Device::recv) without the copy into `buf` where the device can avoid it: the
    /// next received packet is lent to `f` (from the device's own buffers, or read into `buf`)
    /// with whether its checksums need no verifying (as
    /// [`rx_checksummed`](Device::rx_checksummed), but per packet). A device may lend a TCP
    /// super-segment whole, as a NIC's receive offload (GRO) hands Linux's TCP one large
    /// segment: the stack takes a segment larger than its MSS like any other. False if no
    /// packet is ready at `now`. Never blocks.
    fn recv_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        f: &mut dyn FnMut(&[u8], bool),
    ) -> io::Result<bool> {
        let checksummed = self.rx_checksummed();
        lend(self.recv(now, buf)?, buf, checksummed, f)
    }

    /// [`send`](Device::send) without the copy from `buf` where the device can avoid it:
    /// `fill` writes the next packet (at most `buf.len()` bytes: the caller sizes `buf` to
    /// the largest packet it builds) straight into the device's own transmit queue, or into
    /// `buf`, to be sent from there, and returns its length, or
    /// `None` when there is no packet. Returns that length, or `None`. An error is for the
    /// packet (dropped, as with [`send`](Device::send)), or, on a device that had to write
    /// its queue first to make room, for that batch (then `fill` was not called).
    fn send_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        fill: &mut dyn FnMut(&mut [u8]) -> Option<usize>,
    ) -> io::Result<Option<usize>> {
        let Some(n) = fill(buf) else {
            return Ok(None);
        };
        self.send(now, &buf[..n]).map(|()| Some(n))
    }

    /// When the device next has work that needs no input (a delayed packet falling due, or
    /// received packets it holds already; a time not after now means at once): call
    /// [`handle_timeout`](Device::handle_timeout) then, and [`recv`](Device::recv).
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Does the work due at `now` (sends delayed outgoing packets).
    fn handle_timeout(&mut self, _now: Instant) -> io::Result<()> {
        Ok(())
    }

    /// Hands the packets that [`send`](Device::send) queued to the medium. A device may hold
    /// sent packets back to write them together (a TUN device with offloads coalesces them
    /// into one write); the runtime calls this after each round of sends, so a packet waits
    /// at most until then. An error is for the batch: its packets are dropped, and TCP
    /// retransmits.
    fn flush(&mut self, _now: Instant) -> io::Result<()> {
        Ok(())
    }

    /// A file descriptor that becomes readable when [`recv`](Device::recv) may return a
    /// packet; `None` if input only ever becomes ready through
    /// [`poll_timeout`](Device::poll_timeout) or a [`send`](Device::send).
    #[cfg(unix)]
    fn readable_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }

    /// Whether the TCP and UDP checksums of what [`recv`](Device::recv) returns need no
    /// verifying: the packets come over a medium that cannot corrupt them, from a sender whose
    /// checksums are right (as Linux's loopback and veth devices mark local packets
    /// `CHECKSUM_UNNECESSARY`). The runtime then hands them to
    /// [`Stack::handle_packet_checksummed`](crate::stack::Stack::handle_packet_checksummed).
    fn rx_checksummed(&self) -> bool {
        false
    }

    /// Whether the device wakes a task itself when input arrives
    /// ([`poll_recv_ready`](Device::poll_recv_ready)), so that a driver task need not wait on
    /// [`readable_fd`](Device::readable_fd) through the reactor (an in-memory device, whose
    /// sender can wake the receiving task directly, with no system call).
    fn wakes_tasks(&self) -> bool {
        false
    }

    /// For a device that [`wakes_tasks`](Device::wakes_tasks): ready when
    /// [`recv`](Device::recv) may return a packet; otherwise the device keeps `cx`'s waker
    /// and wakes it when one arrives. Once called, the device may stop signalling
    /// `readable_fd`. Never ready for other devices.
    fn poll_recv_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn mtu(&self) -> u16 {
        (**self).mtu()
    }
    fn send(&mut self, now: Instant, packet: &[u8]) -> io::Result<()> {
        (**self).send(now, packet)
    }
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        (**self).recv(now, buf)
    }
    fn recv_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        f: &mut dyn FnMut(&[u8], bool),
    ) -> io::Result<bool> {
        (**self).recv_in_place(now, buf, f)
    }
    fn send_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        fill: &mut dyn FnMut(&mut [u8]) -> Option<usize>,
    ) -> io::Result<Option<usize>> {
        (**self).send_in_place(now, buf, fill)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) -> io::Result<()> {
        (**self).handle_timeout(now)
    }
    fn flush(&mut self, now: Instant) -> io::Result<()> {
        (**self).flush(now)
    }
    #[cfg(unix)]
    fn readable_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        (**self).readable_fd()
    }
    fn rx_checksummed(&self) -> bool {
        (**self).rx_checksummed()
    }
    fn wakes_tasks(&self) -> bool {
        (**self).wakes_tasks()
    }
    fn poll_recv_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        (**self).poll_recv_ready(cx)
    }
}

/// Lends the packet of `n` bytes a [`Device::recv`] put in `buf`, if any, to `f`, with
/// `checksummed`: [`Device::recv_in_place`] for a device that copies.
fn lend(
    n: Option<usize>,
    buf: &[u8],
    checksummed: bool,
    f: &mut dyn FnMut(&[u8], bool),
) -> io::Result<bool> {
    Ok(n.map(|n| f(&buf[..n], checksummed)).is_some())
}

/// `InvalidInput` for a packet longer than `mtu`, as a device refuses it.
fn fits_mtu(packet: &[u8], mtu: u16) -> io::Result<()> {
    if packet.len() > usize::from(mtu) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("packet of {} bytes exceeds the MTU of {mtu}", packet.len()),
        ));
    }
    Ok(())
}

/// A device that receives what it sends, for tests and examples.
#[derive(Debug, Default)]
pub struct Loopback {
    mtu: u16,
    queue: VecDeque<Vec<u8>>,
}

/// Packets a [`Loopback`] holds at most; further sends fail with `WouldBlock`.
pub const LOOPBACK_QUEUE: usize = 1024;

impl Loopback {
    /// A loopback device with this MTU.
    pub fn new(mtu: u16) -> Loopback {
        Loopback {
            mtu,
            queue: VecDeque::new(),
        }
    }
}

impl Device for Loopback {
    fn mtu(&self) -> u16 {
        self.mtu
    }

    fn send(&mut self, _now: Instant, packet: &[u8]) -> io::Result<()> {
        fits_mtu(packet, self.mtu)?;
        if self.queue.len() >= LOOPBACK_QUEUE {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "loopback queue full",
            ));
        }
        self.queue.push_back(packet.to_vec());
        Ok(())
    }

    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.queue.pop_front().map(|p| {
            let n = p.len().min(buf.len());
            buf[..n].copy_from_slice(&p[..n]);
            n
        }))
    }
}

/// A small, fast, seedable pseudo-random generator (xoshiro256**, seeded through splitmix64).
///
/// Not cryptographic: it exists so that simulations and tests are reproducible from one `u64`.
/// The same seed always yields the same sequence, on every platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRng {
    s: [u64; 4],
}

/// One step of splitmix64: advances `state` and returns a well-mixed output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SimRng {
    /// A generator whose whole future is determined by `seed`. Every seed, including 0, is fine.
    pub fn new(seed: u64) -> SimRng {
        let mut sm = seed;
        let mut s = [0u64; 4];
        for word in &mut s {
            *word = splitmix64(&mut sm);
        }
        if s == [0; 4] {
            // The one state xoshiro cannot leave; splitmix64 practically never produces it.
            s[0] = 1;
        }
        SimRng { s }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniformly distributed `f64` in `[0, 1)`, with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }

    /// A uniformly distributed integer in `[0, n)`, without modulo bias. Returns 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-and-take-the-high-word, rejecting the few low words that would bias it.
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// `true` with probability `p`. Values at or below 0 (and NaN) are never true, values at or
    /// above 1 always are; neither extreme draws from the generator, so enabling an impairment
    /// elsewhere does not shift the random stream of one that is off.
    pub fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.next_f64() < p
        }
    }

    /// Fills `buf` with random bytes.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// A new generator seeded from this one: independent streams (per host, per link) that all
    /// follow from a single top-level seed.
    pub fn fork(&mut self) -> SimRng {
        SimRng::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let mut a = SimRng::new(7);
        let mut b = SimRng::new(7);
        let mut c = SimRng::new(8);
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..100).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        // Seed 0 is usable, not stuck.
        let mut z = SimRng::new(0);
        assert_ne!(z.next_u64(), z.next_u64());
    }

    #[test]
    fn next_f64_is_in_unit_interval_with_mean_one_half() {
        let mut r = SimRng::new(1);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        let mean = sum / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn below_stays_in_range_and_is_roughly_uniform() {
        let mut r = SimRng::new(2);
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            let x = r.below(6);
            assert!(x < 6);
            counts[x as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        for _ in 0..1000 {
            let _ = r.below(u64::MAX); // the rejection loop terminates for huge bounds too
        }
    }

    #[test]
    fn chance_extremes_do_not_draw() {
        let mut r = SimRng::new(3);
        let before = r.clone();
        assert!(!r.chance(0.0));
        assert!(!r.chance(-1.0));
        assert!(!r.chance(f64::NAN));
        assert!(r.chance(1.0));
        assert!(r.chance(2.0));
        assert_eq!(r, before);
        let hits = (0..10_000).filter(|_| r.chance(0.25)).count();
        assert!((2_300..2_700).contains(&hits), "{hits}");
    }

    #[test]
    fn fill_bytes_and_fork_are_deterministic() {
        let mut a = SimRng::new(9);
        let mut b = SimRng::new(9);
        let mut x = [0u8; 13];
        let mut y = [0u8; 13];
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        assert_eq!(x, y);
        assert_ne!(x, [0u8; 13]);
        assert_eq!(a.fork().next_u64(), b.fork().next_u64());
    }
}
