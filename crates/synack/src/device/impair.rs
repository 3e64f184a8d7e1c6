//! Impairment models: what one direction of a link does to the packets offered to it (queue
//! and serialisation, loss, duplication, corruption, delay and jitter, reordering), and
//! [`Impaired`], which puts those models in front of any [`Device`].
//!
//! A [`Channel`] is one direction's model: a [`LinkConfig`], its own [`SimRng`] stream, the
//! transmitter and loss state, and [`LinkStats`]. [`Channel::offer`] decides a packet's fate
//! at an instant: dropped, or arriving at a computed time (with perhaps a duplicate). It keeps
//! no packets itself, so SimNet (one channel per link direction, one shared arrival queue) and
//! [`Impaired`] (one channel per direction of a real device, and a queue each) share the very
//! same model, step for step: the same seed and offers give the same fates.
//!
//! The model, step by step, is described in the [SimNet documentation](super::sim).
//!
//! # Example: a lossy, slow path in front of a device
//!
//! ```
//! use synack::device::impair::{Impaired, LinkConfig, Loss};
//! use synack::device::{Device, Loopback};
//! use synack::time::{Duration, Instant};
//!
//! let mut dev = Impaired::new(Loopback::new(1500), 7)
//!     .outgoing(LinkConfig::delay_ms(20).with_loss(Loss::Bernoulli(0.01)));
//! dev.send(Instant::ZERO, b"an IP packet").unwrap();
//! // Held for 20 ms, then handed to the loopback device, which gives it straight back.
//! assert_eq!(dev.poll_timeout(), Some(Instant::from_millis(20)));
//! dev.handle_timeout(Instant::from_millis(20)).unwrap();
//! let mut buf = [0u8; 64];
//! let n = dev.recv(Instant::from_millis(20), &mut buf).unwrap().unwrap();
//! assert_eq!(&buf[..n], b"an IP packet");
//! ```

use core::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::io;

use super::{Device, SimRng};
use crate::time::{Duration, Instant, nanos_of as nanos};

/// How a link direction loses packets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Loss {
    /// Never.
    #[default]
    None,
    /// Each packet independently, with this probability.
    Bernoulli(f64),
    /// Bursty loss from a two-state Markov chain, stepped once per packet: first the state may
    /// change (good → bad with `p_good_to_bad`, bad → good with `p_bad_to_good`), then the
    /// packet is lost with the current state's probability. With `loss_good = 0` and
    /// `loss_bad = 1`, bursts average `1 / p_bad_to_good` packets and the long-run loss rate is
    /// `p_good_to_bad / (p_good_to_bad + p_bad_to_good)`. Each direction starts in the good
    /// state.
    GilbertElliott {
        /// Per-packet probability of moving from the good to the bad state.
        p_good_to_bad: f64,
        /// Per-packet probability of moving from the bad to the good state.
        p_bad_to_good: f64,
        /// Loss probability while in the good state.
        loss_good: f64,
        /// Loss probability while in the bad state.
        loss_bad: f64,
    },
}

/// The behaviour of one link direction. [`Default`] is a perfect link: no delay, infinite
/// bandwidth, no loss. Probabilities outside `[0, 1]` are clamped; NaN counts as 0.
///
/// ```
/// use synack::device::sim::{LinkConfig, Loss};
/// use synack::time::Duration;
///
/// let wan = LinkConfig::delay_ms(40)
///     .with_jitter(Duration::from_millis(5))
///     .with_bandwidth(10_000_000)
///     .with_queue_limit(64 * 1024)
///     .with_loss(Loss::Bernoulli(0.01));
/// assert_eq!(wan.delay, Duration::from_millis(40));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way propagation delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per packet (FIFO order is kept).
    pub jitter: Duration,
    /// Transmit rate in bits per second; `None` is infinitely fast. `Some(0)` carries nothing:
    /// every packet is dropped as a queue drop.
    pub bandwidth_bps: Option<u64>,
    /// Drop-tail limit on the bytes waiting for (or in) serialisation; only meaningful with a
    /// bandwidth. `None` is unlimited.
    pub queue_limit_bytes: Option<usize>,
    /// How packets are lost.
    pub loss: Loss,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that a packet is held back by `reorder_delay` so later packets overtake it.
    pub reorder: f64,
    /// How long a reordered packet is held back beyond its normal arrival time (default 10 ms).
    pub reorder_delay: Duration,
    /// Probability that one bit of a packet is flipped.
    pub corrupt: f64,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth_bps: None,
            queue_limit_bytes: None,
            loss: Loss::None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            corrupt: 0.0,
        }
    }
}

impl LinkConfig {
    /// Whether the link changes nothing: no delay, jitter, bandwidth limit, loss,
    /// duplication, reordering or corruption (a probability of 0 draws no random number, so
    /// it counts as none).
    pub fn is_perfect(&self) -> bool {
        let never = |p: f64| p.is_nan() || p <= 0.0;
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.bandwidth_bps.is_none()
            && match self.loss {
                Loss::None => true,
                Loss::Bernoulli(p) => never(p),
                Loss::GilbertElliott { .. } => false,
            }
            && never(self.duplicate)
            && never(self.reorder)
            && never(self.corrupt)
    }

    /// A perfect link with a fixed one-way delay of `ms` milliseconds.
    pub fn delay_ms(ms: u64) -> LinkConfig {
        LinkConfig::default().with_delay(Duration::from_millis(ms))
    }

    /// Sets [`delay`](Self::delay).
    pub fn with_delay(mut self, delay: Duration) -> LinkConfig {
        self.delay = delay;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn with_jitter(mut self, jitter: Duration) -> LinkConfig {
        self.jitter = jitter;
        self
    }

    /// Sets [`bandwidth_bps`](Self::bandwidth_bps).
    pub fn with_bandwidth(mut self, bits_per_second: u64) -> LinkConfig {
        self.bandwidth_bps = Some(bits_per_second);
        self
    }

    /// Sets [`queue_limit_bytes`](Self::queue_limit_bytes).
    pub fn with_queue_limit(mut self, bytes: usize) -> LinkConfig {
        self.queue_limit_bytes = Some(bytes);
        self
    }

    /// Sets [`loss`](Self::loss).
    pub fn with_loss(mut self, loss: Loss) -> LinkConfig {
        self.loss = loss;
        self
    }

    /// Sets [`duplicate`](Self::duplicate).
    pub fn with_duplicate(mut self, p: f64) -> LinkConfig {
        self.duplicate = p;
        self
    }

    /// Sets [`reorder`](Self::reorder).
    pub fn with_reorder(mut self, p: f64) -> LinkConfig {
        self.reorder = p;
        self
    }

    /// Sets [`reorder_delay`](Self::reorder_delay).
    pub fn with_reorder_delay(mut self, extra: Duration) -> LinkConfig {
        self.reorder_delay = extra;
        self
    }

    /// Sets [`corrupt`](Self::corrupt).
    pub fn with_corrupt(mut self, p: f64) -> LinkConfig {
        self.corrupt = p;
        self
    }
}

/// Counters for one link direction (or a sum of them).
///
/// Once nothing is in flight, `sent + duplicated == delivered + dropped_loss + dropped_queue`.
/// `delivered` counts arrivals at the far node, switches included, so a packet crossing a switch
/// is counted on both links and one the switch cannot route is both `delivered` (to the switch)
/// and `dropped_no_route`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets offered to the direction.
    pub sent: u64,
    /// Packets (copies included) that arrived at the far end.
    pub delivered: u64,
    /// Packets lost on the wire.
    pub dropped_loss: u64,
    /// Packets refused by a full queue (or a zero bandwidth).
    pub dropped_queue: u64,
    /// Packets that arrived at a switch (or, in [`SimNet::total_stats`](crate::device::SimNet::total_stats), were sent by a host)
    /// with no route to their destination (SimNet only).
    pub dropped_no_route: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Packets held back so that later ones overtake them.
    pub reordered: u64,
    /// Copies with a flipped bit.
    pub corrupted: u64,
    /// Bytes offered to the direction.
    pub bytes_sent: u64,
    /// Bytes (copies included) that arrived at the far end.
    pub bytes_delivered: u64,
}

impl LinkStats {
    pub(crate) fn accumulate(&mut self, o: &LinkStats) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.dropped_loss += o.dropped_loss;
        self.dropped_queue += o.dropped_queue;
        self.dropped_no_route += o.dropped_no_route;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.corrupted += o.corrupted;
        self.bytes_sent += o.bytes_sent;
        self.bytes_delivered += o.bytes_delivered;
    }
}

/// Flips one uniformly chosen bit; an empty packet has none to flip.
fn flip_random_bit(packet: &mut [u8], rng: &mut SimRng) -> bool {
    let bits = (packet.len() as u64).saturating_mul(8);
    if bits == 0 {
        return false;
    }
    let bit = rng.below(bits);
    match packet.get_mut((bit / 8) as usize) {
        Some(byte) => {
            *byte ^= 1 << (bit % 8);
            true
        }
        None => false,
    }
}

/// What [`Channel::offer`] decided for a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost, or refused by a full queue: here is the buffer back.
    Dropped(Vec<u8>),
    /// Arrives at the far end at `at_us` (microseconds on the caller's clock), possibly
    /// corrupted in place; `copy` is a duplicate arriving at the same instant, right after it.
    Arrives {
        /// The (perhaps corrupted) packet.
        packet: Vec<u8>,
        /// A duplicate, corrupted independently.
        copy: Option<Vec<u8>>,
        /// Arrival time in microseconds.
        at_us: u64,
    },
}

/// One direction of a link: its [`LinkConfig`], random stream, transmitter and loss state, and
/// counters. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Channel {
    cfg: LinkConfig,
    rng: SimRng,
    /// When the transmitter finishes its last accepted packet: `busy_until_ns` nanoseconds plus
    /// `busy_until_rem / bandwidth_bps` of one.
    busy_until_ns: u64,
    busy_until_rem: u64,
    /// (end of serialisation in ns, length) of accepted packets, oldest first; kept only when
    /// there is a queue limit to enforce.
    backlog: VecDeque<(u64, usize)>,
    backlog_bytes: usize,
    /// Latest in-order arrival, in microseconds: the FIFO floor for the next packet.
    last_arrival_us: u64,
    /// Gilbert–Elliott state.
    bad: bool,
    stats: LinkStats,
}

impl Channel {
    /// A channel shaped by `cfg`, drawing its random choices from `rng`.
    pub fn new(cfg: LinkConfig, rng: SimRng) -> Channel {
        Channel {
            cfg,
            rng,
            busy_until_ns: 0,
            busy_until_rem: 0,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            last_arrival_us: 0,
            bad: false,
            stats: LinkStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Counts a packet that reached the far end (the caller delivers; the channel only decides).
    pub fn delivered(&mut self, len: usize) {
        self.stats.delivered += 1;
        self.stats.bytes_delivered += len as u64;
    }

    /// Counts a packet that arrived somewhere it could not be routed (SimNet's switches).
    pub(crate) fn no_route(&mut self) {
        self.stats.dropped_no_route += 1;
    }

    /// Offers `buf` to the channel at `now_us` (microseconds) and returns its fate, applying
    /// the steps of the model in order. `spare` supplies an empty buffer when a duplicate is
    /// made (from a free list, say).
    pub fn offer(
        &mut self,
        now_us: u64,
        mut buf: Vec<u8>,
        spare: impl FnOnce() -> Vec<u8>,
    ) -> Fate {
        let len = buf.len();
        self.stats.sent += 1;
        self.stats.bytes_sent += len as u64;
        let now_ns = now_us.saturating_mul(1000);

        // 1. Queue and serialisation.
        let tx_end_ns = match self.cfg.bandwidth_bps {
            None => now_ns,
            Some(0) => {
                self.stats.dropped_queue += 1;
                return Fate::Dropped(buf);
            }
            Some(bps) => {
                if let Some(limit) = self.cfg.queue_limit_bytes {
                    while let Some(&(end, n)) = self.backlog.front() {
                        if end > now_ns {
                            break;
                        }
                        self.backlog.pop_front();
                        self.backlog_bytes -= n;
                    }
                    if self.backlog_bytes.saturating_add(len) > limit {
                        self.stats.dropped_queue += 1;
                        return Fate::Dropped(buf);
                    }
                }
                // Serialisation time is `whole` ns plus `frac / bps` ns; carrying the fraction
                // keeps back-to-back packets exact however the rate divides.
                let scaled = len as u128 * 8 * 1_000_000_000;
                let whole = u64::try_from(scaled / u128::from(bps)).unwrap_or(u64::MAX);
                let frac = (scaled % u128::from(bps)) as u64;
                let (mut end, mut rem) = if (now_ns, 0) >= (self.busy_until_ns, self.busy_until_rem)
                {
                    (now_ns, 0)
                } else {
                    (self.busy_until_ns, self.busy_until_rem)
                };
                end = end.saturating_add(whole);
                // rem, frac < bps, so the sum cannot overflow u128 and wraps at most once.
                let sum = u128::from(rem) + u128::from(frac);
                if sum >= u128::from(bps) {
                    end = end.saturating_add(1);
                    rem = (sum - u128::from(bps)) as u64;
                } else {
                    rem = sum as u64;
                }
                self.busy_until_ns = end;
                self.busy_until_rem = rem;
                // The last bit is out at the next whole nanosecond.
                let end = if rem > 0 { end.saturating_add(1) } else { end };
                if self.cfg.queue_limit_bytes.is_some() {
                    self.backlog.push_back((end, len));
                    self.backlog_bytes += len;
                }
                end
            }
        };

        // 2. Loss.
        let lost = match self.cfg.loss {
            Loss::None => false,
            Loss::Bernoulli(p) => self.rng.chance(p),
            Loss::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                if self.bad {
                    self.bad = !self.rng.chance(p_bad_to_good);
                } else {
                    self.bad = self.rng.chance(p_good_to_bad);
                }
                self.rng.chance(if self.bad { loss_bad } else { loss_good })
            }
        };
        if lost {
            self.stats.dropped_loss += 1;
            return Fate::Dropped(buf);
        }

        // 3. Duplication (copied before corruption: each copy is corrupted independently).
        let mut copy = None;
        if self.rng.chance(self.cfg.duplicate) {
            self.stats.duplicated += 1;
            let mut c = spare();
            c.clear();
            c.extend_from_slice(&buf);
            copy = Some(c);
        }

        // 4. Corruption.
        if self.rng.chance(self.cfg.corrupt) && flip_random_bit(&mut buf, &mut self.rng) {
            self.stats.corrupted += 1;
        }
        if let Some(c) = copy.as_mut() {
            if self.rng.chance(self.cfg.corrupt) && flip_random_bit(c, &mut self.rng) {
                self.stats.corrupted += 1;
            }
        }

        // 5. Propagation, FIFO per direction.
        let jitter_ns = match nanos(self.cfg.jitter) {
            0 => 0,
            j => self.rng.below(j.saturating_add(1)),
        };
        let arrival_ns = tx_end_ns
            .saturating_add(nanos(self.cfg.delay))
            .saturating_add(jitter_ns);
        let mut at_us = arrival_ns.div_ceil(1000).max(self.last_arrival_us);

        // 6. Reordering.
        if self.rng.chance(self.cfg.reorder) {
            self.stats.reordered += 1;
            at_us = at_us.saturating_add(nanos(self.cfg.reorder_delay).div_ceil(1000));
        } else {
            self.last_arrival_us = at_us;
        }

        Fate::Arrives {
            packet: buf,
            copy,
            at_us,
        }
    }
}

/// Something due at `at_us`, ordered so that `BinaryHeap` (a max-heap) pops the earliest
/// first, ties in the order they were scheduled (`seq`). SimNet's links and [`Impaired`]
/// both hold packets in flight this way.
pub(crate) struct Timed<T> {
    pub(crate) at_us: u64,
    pub(crate) seq: u64,
    pub(crate) item: T,
}

impl<T> Ord for Timed<T> {
    fn cmp(&self, other: &Timed<T>) -> Ordering {
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

impl<T> PartialOrd for Timed<T> {
    fn partial_cmp(&self, other: &Timed<T>) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Timed<T> {
    fn eq(&self, other: &Timed<T>) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}

impl<T> Eq for Timed<T> {}

/// [`Timed`] items, taken earliest first (ties in `seq` order), as one `BinaryHeap` would give
/// them, but without its O(log n) per item in the usual case: an item due no earlier than the
/// last one queued in order (every packet of a link without jitter or reordering) joins a
/// FIFO, and only the others go through the heap. Each take compares the two fronts.
pub(crate) struct Timeline<T> {
    fifo: VecDeque<Timed<T>>,
    heap: BinaryHeap<Timed<T>>,
}

impl<T> Default for Timeline<T> {
    fn default() -> Timeline<T> {
        Timeline {
            fifo: VecDeque::new(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<T> Timeline<T> {
    pub(crate) fn push(&mut self, t: Timed<T>) {
        match self.fifo.back() {
            Some(last) if (t.at_us, t.seq) < (last.at_us, last.seq) => self.heap.push(t),
            _ => self.fifo.push_back(t),
        }
    }

    /// Whether the earliest item is the heap's (ties go to the FIFO, which holds the earlier
    /// sequence number for equal times).
    fn heap_first(&self) -> bool {
        match (self.fifo.front(), self.heap.peek()) {
            (Some(f), Some(h)) => (h.at_us, h.seq) < (f.at_us, f.seq),
            (f, _) => f.is_none(),
        }
    }

    /// The earliest item.
    pub(crate) fn peek(&self) -> Option<&Timed<T>> {
        if self.heap_first() {
            self.heap.peek()
        } else {
            self.fifo.front()
        }
    }

    /// Takes the earliest item.
    pub(crate) fn pop(&mut self) -> Option<Timed<T>> {
        if self.heap_first() {
            self.heap.pop()
        } else {
            self.fifo.pop_front()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.fifo.len() + self.heap.len()
    }
}

/// One direction of [`Impaired`]: the model and the packets it holds back.
struct Path {
    channel: Channel,
    held: BinaryHeap<Timed<Vec<u8>>>,
}

impl Path {
    fn new(cfg: LinkConfig, rng: SimRng) -> Path {
        Path {
            channel: Channel::new(cfg, rng),
            held: BinaryHeap::new(),
        }
    }

    /// Offers a packet; what survives waits in `held` for its arrival time.
    fn offer(&mut self, now: Instant, packet: Vec<u8>, free: &mut Vec<Vec<u8>>, seq: &mut u64) {
        match self.channel.offer(now.total_micros(), packet, || {
            free.pop().unwrap_or_default()
        }) {
            Fate::Dropped(buf) => recycle(free, buf),
            Fate::Arrives {
                packet,
                copy,
                at_us,
            } => {
                for packet in core::iter::once(packet).chain(copy) {
                    self.held.push(Timed {
                        at_us,
                        seq: *seq,
                        item: packet,
                    });
                    *seq += 1;
                }
            }
        }
    }

    /// The next packet due at `now`, if any.
    fn due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.held.peek()?.at_us > now.total_micros() {
            return None;
        }
        let h = self.held.pop()?;
        self.channel.delivered(h.item.len());
        Some(h.item)
    }

    fn next(&self) -> Option<Instant> {
        self.held.peek().map(|h| Instant::from_micros(h.at_us))
    }

    /// Whether a packet offered now would come out at once and unchanged, with no random
    /// draw: a perfect model ([`LinkConfig::is_perfect`]) and nothing held back to overtake.
    fn transparent(&self) -> bool {
        self.held.is_empty() && self.channel.cfg.is_perfect()
    }
}

/// Packets a wrapper keeps for reuse, at most.
const FREE_LIMIT: usize = 256;
/// Packets [`Impaired::recv`] moves from the inner device into the model per call, at most.
const RECV_BATCH: usize = 64;

fn recycle(free: &mut Vec<Vec<u8>>, buf: Vec<u8>) {
    if free.len() < FREE_LIMIT {
        free.push(buf);
    }
}

/// Any [`Device`] behind the impairment models: packets we send go through the `outgoing`
/// [`Channel`] before the inner device sees them, packets the inner device receives go through
/// the `incoming` one before we see them. Both start perfect (no delay, no loss); each direction
/// has its own random stream forked from the seed, so a run is repeatable as far as the inner
/// device is.
///
/// Delayed packets wait inside the wrapper: [`Device::poll_timeout`] says when the next is due
/// and [`Device::handle_timeout`] hands the outgoing ones to the inner device, which writes
/// them at the latest on [`Device::flush`] (the runtime does all three).
pub struct Impaired<D> {
    inner: D,
    out: Path,
    inc: Path,
    seq: u64,
    free: Vec<Vec<u8>>,
}

impl<D: Device> Impaired<D> {
    /// Wraps `inner`, perfect in both directions until configured; `seed` seeds both
    /// directions' random streams.
    pub fn new(inner: D, seed: u64) -> Impaired<D> {
        let mut rng = SimRng::new(seed);
        Impaired {
            inner,
            out: Path::new(LinkConfig::default(), rng.fork()),
            inc: Path::new(LinkConfig::default(), rng.fork()),
            seq: 0,
            free: Vec::new(),
        }
    }

    /// Hands packets straight through the `out` or `inc` direction: one that changes nothing
    /// (perfect, nothing held) need not copy each packet into a buffer of its own, nor split
    /// the inner device's super-segments, and its counters count each one as sent and
    /// delivered at once, as [`Channel::offer`] would.
    fn pass(path: &mut Path, len: usize) {
        let s = &mut path.channel.stats;
        s.sent += 1;
        s.delivered += 1;
        s.bytes_sent += len as u64;
        s.bytes_delivered += len as u64;
    }

    /// Shapes the packets we send (towards the inner device's far side).
    pub fn outgoing(mut self, cfg: LinkConfig) -> Impaired<D> {
        let rng = self.out.channel.rng.clone();
        self.out.channel = Channel::new(cfg, rng);
        self
    }

    /// Shapes the packets we receive from the inner device.
    pub fn incoming(mut self, cfg: LinkConfig) -> Impaired<D> {
        let rng = self.inc.channel.rng.clone();
        self.inc.channel = Channel::new(cfg, rng);
        self
    }

    /// The same wrapper with its two directions' random streams exchanged: the packets we
    /// receive draw from the stream [`outgoing`](Self::outgoing) would have used. A relay
    /// shapes what its side A sends as *incoming*; exchanged, that direction makes the very
    /// draws (loss, reordering, jitter) that a sender's own `Impaired::new(dev, seed)
    /// .outgoing(..)` makes for the same seed, so both see one realization of the model.
    pub(crate) fn swap_streams(mut self) -> Impaired<D> {
        core::mem::swap(&mut self.out.channel.rng, &mut self.inc.channel.rng);
        self
    }

    /// Counters of the outgoing direction.
    pub fn outgoing_stats(&self) -> LinkStats {
        self.out.channel.stats
    }

    /// Counters of the incoming direction.
    pub fn incoming_stats(&self) -> LinkStats {
        self.inc.channel.stats
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped device, to change. Packets it hands over bypass nothing: the wrapper
    /// still applies the models to everything that goes through it.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Hands every outgoing packet due at `now` to the inner device. Errors are per packet;
    /// the first is returned after trying the rest.
    fn release(&mut self, now: Instant) -> io::Result<()> {
        let mut first_err = None;
        while let Some(p) = self.out.due(now) {
            if let Err(e) = self.inner.send(now, &p) {
                first_err.get_or_insert(e);
            }
            recycle(&mut self.free, p);
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl<D: Device> Device for Impaired<D> {
    fn mtu(&self) -> u16 {
        self.inner.mtu()
    }

    fn send(&mut self, now: Instant, packet: &[u8]) -> io::Result<()> {
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.out.offer(now, buf, &mut self.free, &mut self.seq);
        self.release(now)
    }

    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // Move what the inner device has into the incoming model first (bounded per call).
        for _ in 0..RECV_BATCH {
            let mut p = self.free.pop().unwrap_or_default();
            p.resize(usize::from(self.inner.mtu()).max(buf.len()), 0);
            match self.inner.recv(now, &mut p) {
                Ok(Some(n)) => {
                    p.truncate(n);
                    self.inc.offer(now, p, &mut self.free, &mut self.seq);
                }
                Ok(None) => {
                    recycle(&mut self.free, p);
                    break;
                }
                Err(e) => {
                    recycle(&mut self.free, p);
                    return Err(e);
                }
            }
        }
        match self.inc.due(now) {
            Some(p) => {
                let n = p.len().min(buf.len());
                buf[..n].copy_from_slice(&p[..n]);
                recycle(&mut self.free, p);
                Ok(Some(n))
            }
            None => Ok(None),
        }
    }

    /// Through a perfect incoming direction that holds nothing, the inner device's packet is
    /// lent as it is (a super-segment whole, as the inner device lends it); otherwise as
    /// [`recv`](Device::recv).
    fn recv_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        f: &mut dyn FnMut(&[u8], bool),
    ) -> io::Result<bool> {
        if self.inc.transparent() {
            let inc = &mut self.inc;
            return self.inner.recv_in_place(now, buf, &mut |p, checksummed| {
                Self::pass(inc, p.len());
                f(p, checksummed);
            });
        }
        // Held packets may have been changed: verified.
        super::lend(self.recv(now, buf)?, buf, false, f)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [self.out.next(), self.inc.next(), self.inner.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) -> io::Result<()> {
        self.inner.handle_timeout(now)?;
        self.release(now)
    }

    fn flush(&mut self, now: Instant) -> io::Result<()> {
        self.inner.flush(now)
    }

    #[cfg(unix)]
    fn readable_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.inner.readable_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Loopback;
    use crate::device::sim::SimNet;

    fn numbered(n: u32) -> Vec<u8> {
        let mut p = vec![0u8; 100];
        p[..4].copy_from_slice(&n.to_be_bytes());
        p
    }

    #[test]
    fn a_timeline_takes_items_in_the_order_one_heap_would() {
        // Mostly in order (the FIFO), some earlier than the last (the heap), interleaved
        // with takes, as a link with occasional reordering produces them.
        let mut rng = SimRng::new(7);
        let mut t = Timeline::default();
        let mut heap = BinaryHeap::new();
        let mut now = 0u64;
        for seq in 0..5_000u64 {
            now += rng.below(3);
            let at_us = if rng.chance(0.2) {
                now + rng.below(50)
            } else {
                now
            };
            t.push(Timed {
                at_us,
                seq,
                item: (),
            });
            heap.push(Timed {
                at_us,
                seq,
                item: (),
            });
            if rng.chance(0.4) {
                let (a, b) = (t.pop().unwrap(), heap.pop().unwrap());
                assert_eq!((a.at_us, a.seq), (b.at_us, b.seq));
            }
            assert_eq!(t.len(), heap.len());
            assert_eq!(
                t.peek().map(|x| (x.at_us, x.seq)),
                heap.peek().map(|x| (x.at_us, x.seq))
            );
        }
        while let Some(b) = heap.pop() {
            let a = t.pop().unwrap();
            assert_eq!((a.at_us, a.seq), (b.at_us, b.seq));
        }
        assert!(t.pop().is_none() && t.peek().is_none());
    }

    fn lossy() -> LinkConfig {
        LinkConfig::delay_ms(5)
            .with_jitter(Duration::from_millis(1))
            .with_loss(Loss::Bernoulli(0.1))
            .with_duplicate(0.05)
            .with_reorder(0.1)
            .with_corrupt(0.02)
    }

    /// Runs `Impaired<Loopback>` in virtual time; returns (arrival µs, packet) in order.
    fn through_impaired(seed: u64, n: u32) -> (Vec<(u64, Vec<u8>)>, LinkStats) {
        let mut dev = Impaired::new(Loopback::new(1500), seed).outgoing(lossy());
        let mut got = Vec::new();
        let mut buf = [0u8; 1500];
        for i in 0..=n {
            let now = Instant::from_micros(u64::from(i) * 100);
            // Everything due before this send, at the instant it is due.
            while let Some(t) = dev.poll_timeout().filter(|&t| t <= now || i == n) {
                dev.handle_timeout(t).unwrap();
                while let Some(len) = dev.recv(t, &mut buf).unwrap() {
                    got.push((t.total_micros(), buf[..len].to_vec()));
                }
            }
            if i < n {
                dev.send(now, &numbered(i)).unwrap();
            }
        }
        (got, dev.outgoing_stats())
    }

    #[test]
    fn impaired_device_makes_the_same_choices_as_simnet() {
        let (got, stats) = through_impaired(5, 3000);
        // The same seed's first link direction in SimNet draws from the same stream.
        let mut net = SimNet::new(5);
        let a = net.add_host("a");
        let b = net.add_host("b");
        let l = net.connect(a, b, lossy()).unwrap();
        for i in 0..3000u32 {
            net.send(Instant::from_micros(u64::from(i) * 100), a, &numbered(i))
                .unwrap();
        }
        let mut want = Vec::new();
        while let Some(t) = net.next_delivery() {
            while let Some(d) = net.poll_deliver(t) {
                want.push((d.at.total_micros(), d.packet));
            }
        }
        assert_eq!(got.len(), want.len());
        let first_diff = got.iter().zip(&want).position(|(g, w)| g != w);
        assert_eq!(
            first_diff.map(|i| (got[i].0, &got[i].1[..4], want[i].0, &want[i].1[..4])),
            None
        );
        assert_eq!(stats, net.stats(l).a_to_b);
        assert!(stats.dropped_loss > 200 && stats.duplicated > 100 && stats.reordered > 200);
    }

    #[test]
    fn a_perfect_wrapper_is_transparent_and_total_loss_silences() {
        let mut dev = Impaired::new(Loopback::new(1500), 1);
        let mut buf = [0u8; 1500];
        dev.send(Instant::ZERO, b"ping").unwrap();
        assert_eq!(dev.recv(Instant::ZERO, &mut buf).unwrap(), Some(4));
        assert_eq!(dev.poll_timeout(), None);

        let mut dev = Impaired::new(Loopback::new(1500), 1)
            .incoming(LinkConfig::default().with_loss(Loss::Bernoulli(1.0)));
        for _ in 0..10 {
            dev.send(Instant::ZERO, b"ping").unwrap();
        }
        assert_eq!(dev.recv(Instant::ZERO, &mut buf).unwrap(), None);
        assert_eq!(dev.incoming_stats().dropped_loss, 10);
        assert_eq!(dev.outgoing_stats().delivered, 10);
        // Errors of the inner device come back per packet.
        assert!(dev.send(Instant::ZERO, &[0u8; 2000]).is_err());
    }

    /// A [`Loopback`] that lends what it receives as checksummed, as a TUN device with
    /// offloads does.
    struct Lender {
        inner: Loopback,
    }

    impl Device for Lender {
        fn mtu(&self) -> u16 {
            self.inner.mtu()
        }
        fn send(&mut self, now: Instant, packet: &[u8]) -> io::Result<()> {
            self.inner.send(now, packet)
        }
        fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
            self.inner.recv(now, buf)
        }
        fn recv_in_place(
            &mut self,
            now: Instant,
            buf: &mut [u8],
            f: &mut dyn FnMut(&[u8], bool),
        ) -> io::Result<bool> {
            crate::device::lend(self.inner.recv(now, buf)?, buf, true, f)
        }
    }

    fn lender() -> Lender {
        Lender {
            inner: Loopback::new(1500),
        }
    }

    /// What `recv_in_place` lends at `now`.
    fn in_place(dev: &mut Impaired<Lender>, now: Instant) -> Option<(Vec<u8>, bool)> {
        let mut buf = [0u8; 1500];
        let mut got = None;
        dev.recv_in_place(now, &mut buf, &mut |p, c| got = Some((p.to_vec(), c)))
            .unwrap();
        got
    }

    #[test]
    fn a_perfect_direction_hands_packets_through_in_place_and_counts_them() {
        let mut dev = Impaired::new(lender(), 1);
        dev.send(Instant::ZERO, b"ping").unwrap();
        // Lent as the inner device lends it, its checksum flag kept.
        assert_eq!(
            in_place(&mut dev, Instant::ZERO),
            Some((b"ping".to_vec(), true))
        );
        assert_eq!(in_place(&mut dev, Instant::ZERO), None);
        let s = dev.incoming_stats();
        assert_eq!(
            (s.sent, s.delivered, s.bytes_sent, s.bytes_delivered),
            (1, 1, 4, 4)
        );

        // A delaying direction holds the packet back and copies it; nothing is lent early,
        // and what it held comes out unverified (it may have been changed).
        let delay = LinkConfig::default().with_delay(Duration::from_millis(1));
        let mut dev = Impaired::new(lender(), 1).outgoing(delay).incoming(delay);
        dev.send(Instant::ZERO, b"ping").unwrap();
        assert_eq!(dev.poll_timeout(), Some(Instant::from_millis(1)));
        dev.handle_timeout(Instant::from_millis(1)).unwrap();
        assert_eq!(in_place(&mut dev, Instant::from_millis(1)), None);
        assert_eq!(dev.poll_timeout(), Some(Instant::from_millis(2)));
        assert_eq!(
            in_place(&mut dev, Instant::from_millis(2)),
            Some((b"ping".to_vec(), false))
        );
    }

    #[test]
    fn only_a_link_that_changes_nothing_is_perfect() {
        assert!(LinkConfig::default().is_perfect());
        assert!(
            LinkConfig::default()
                .with_loss(Loss::Bernoulli(0.0))
                .is_perfect()
        );
        for changes in [
            LinkConfig::delay_ms(1),
            LinkConfig::default().with_jitter(Duration::from_micros(1)),
            LinkConfig::default().with_bandwidth(1_000_000),
            LinkConfig::default().with_loss(Loss::Bernoulli(0.01)),
            LinkConfig::default().with_duplicate(0.01),
            LinkConfig::default().with_reorder(0.01),
            LinkConfig::default().with_corrupt(0.01),
            LinkConfig::default().with_loss(Loss::GilbertElliott {
                p_good_to_bad: 0.0,
                p_bad_to_good: 1.0,
                loss_good: 0.0,
                loss_bad: 0.0,
            }),
        ] {
            assert!(!changes.is_perfect(), "{changes:?}");
        }
    }
}
