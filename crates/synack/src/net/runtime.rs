//! The runtime: one thread that owns the stacks, the device and the clock.

use core::net::IpAddr;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use crate::device::sim::{HostId, LinkConfig, SimNet};
use crate::stack::{Ipv4Cidr, Stack, StackConfig};
use crate::tcp::{Config, Counters, State};
use crate::time::Instant;
use crate::trace::TraceSink;

/// One host inside the runtime.
pub(crate) struct HostState {
    pub(crate) name: String,
    pub(crate) stack: Stack,
    sim_id: HostId,
}

/// Everything the runtime thread and the sockets share, behind one lock.
pub(crate) struct Inner {
    pub(crate) hosts: Vec<HostState>,
    sim: SimNet,
    start: std::time::Instant,
    /// A socket call queued work for the runtime thread.
    kicked: bool,
    stopped: bool,
    sink: Option<Box<dyn TraceSink + Send>>,
}

impl Inner {
    fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the runtime thread (a socket call queued something).
    driver: Condvar,
    /// Wakes sockets (something changed: data, space, state).
    sockets: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough state for reads; carry on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` under the lock with the current time.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Inner, Instant) -> T) -> T {
        let mut g = self.lock();
        let now = g.now();
        f(&mut g, now)
    }

    pub(crate) fn now(&self) -> Instant {
        self.lock().now()
    }

    /// Tells the runtime thread that a socket call queued work.
    pub(crate) fn kick(&self) {
        let mut g = self.lock();
        g.kicked = true;
        drop(g);
        self.driver.notify_one();
    }

    /// Calls `f` until it returns `Some`, sleeping between tries until the runtime reports a
    /// change. With a timeout, gives up with `WouldBlock` (what std's sockets return when a
    /// read or write timeout expires).
    pub(crate) fn wait_for<T>(
        &self,
        timeout: Option<StdDuration>,
        mut f: impl FnMut(&mut Inner, Instant) -> Option<T>,
    ) -> io::Result<T> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut g = self.lock();
        loop {
            let now = g.now();
            if let Some(v) = f(&mut g, now) {
                return Ok(v);
            }
            if g.stopped {
                return Err(io::Error::other("the synack runtime has stopped"));
            }
            // What f did may need the runtime thread (e.g. a window update after a read).
            g.kicked = true;
            self.driver.notify_one();
            g = match deadline {
                None => self.sockets.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(
                            io::ErrorKind::WouldBlock,
                            "timed out waiting on the socket",
                        ));
                    }
                    self.sockets
                        .wait_timeout(g, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

/// A handle to one host of a runtime, used to open sockets on it.
#[derive(Clone)]
pub struct Host {
    pub(crate) shared: Arc<Shared>,
    pub(crate) index: usize,
}

/// Every live runtime, so `TcpListener::bind(addr)` can find the host that owns `addr`.
static RUNTIMES: Mutex<Vec<std::sync::Weak<Shared>>> = Mutex::new(Vec::new());
/// The host `TcpStream::connect(addr)` connects from.
static DEFAULT_HOST: Mutex<Option<Host>> = Mutex::new(None);

impl Host {
    /// Makes this host the one that [`TcpStream::connect`](super::TcpStream::connect) (without
    /// a host) connects from, so code written for `std::net` ports by changing the import.
    pub fn make_default(&self) {
        *DEFAULT_HOST.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.clone());
    }

    /// The default host, if one was set and its runtime still runs.
    pub fn default_host() -> Option<Host> {
        let h = DEFAULT_HOST
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let stopped = h.shared.lock().stopped;
        (!stopped).then_some(h)
    }

    /// The host of any live runtime that owns `addr`.
    pub fn owning(addr: IpAddr) -> Option<Host> {
        let list = RUNTIMES.lock().unwrap_or_else(|p| p.into_inner());
        for weak in list.iter() {
            let Some(shared) = weak.upgrade() else {
                continue;
            };
            let index = shared.with(|i, _| {
                i.hosts.iter().position(|h| {
                    h.stack
                        .addresses()
                        .iter()
                        .any(|c| IpAddr::V4(c.addr) == addr)
                })
            });
            if let Some(index) = index {
                return Some(Host { shared, index });
            }
        }
        None
    }

    /// The host's name.
    pub fn name(&self) -> String {
        self.shared.with(|i, _| i.hosts[self.index].name.clone())
    }

    /// The host's (first) address.
    pub fn addr(&self) -> Option<IpAddr> {
        self.shared.with(|i, _| {
            i.hosts[self.index]
                .stack
                .addresses()
                .first()
                .map(|c| IpAddr::V4(c.addr))
        })
    }

    /// A copy of the host's counters (nstat names).
    pub fn counters(&self) -> Counters {
        self.shared
            .with(|i, _| i.hosts[self.index].stack.counters().clone())
    }
}

/// Builds a [`Runtime`]: hosts, the link between them, TCP settings, tracing.
pub struct Builder {
    hosts: Vec<(String, String)>,
    link: LinkConfig,
    seed: Option<u64>,
    tcp: Config,
    mtu: u16,
    sink: Option<Box<dyn TraceSink + Send>>,
}

impl Builder {
    /// Adds a host with an address like `198.18.0.1/24`.
    pub fn host(mut self, name: &str, cidr: &str) -> Builder {
        self.hosts.push((name.to_string(), cidr.to_string()));
        self
    }

    /// One-way delay of every link (half the round-trip time).
    pub fn delay(mut self, d: StdDuration) -> Builder {
        self.link.delay = d;
        self
    }

    /// The full link configuration (delay, loss, bandwidth, ...), for every link.
    pub fn link(mut self, cfg: LinkConfig) -> Builder {
        self.link = cfg;
        self
    }

    /// Seeds the link impairments and the stacks' secrets (for repeatable runs). Without a
    /// seed, secrets come from the operating system's randomness.
    pub fn seed(mut self, seed: u64) -> Builder {
        self.seed = Some(seed);
        self
    }

    pub fn tcp(mut self, cfg: Config) -> Builder {
        self.tcp = cfg;
        self
    }

    pub fn mtu(mut self, mtu: u16) -> Builder {
        self.mtu = mtu;
        self
    }

    /// Sends every trace event of every host to `sink` (on the runtime thread).
    pub fn trace(mut self, sink: impl TraceSink + Send + 'static) -> Builder {
        self.sink = Some(Box::new(sink));
        self
    }

    pub fn build(self) -> io::Result<Runtime> {
        if self.hosts.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a runtime needs at least one host",
            ));
        }
        let seed = self.seed.unwrap_or_else(os_random);
        let mut sim = SimNet::new(seed);
        let tcp = Arc::new(self.tcp);
        let trace = self.sink.is_some();
        let mut hosts = Vec::new();
        for (i, (name, cidr)) in self.hosts.iter().enumerate() {
            let cidr: Ipv4Cidr = cidr.parse()?;
            let id = sim.add_host(name);
            sim.set_addr(id, cidr.addr).map_err(io::Error::other)?;
            let cfg = StackConfig {
                tcp: tcp.clone(),
                mtu: self.mtu,
                trace,
                name: name.clone().into(),
                ..StackConfig::default()
            };
            let mut secret = [0u8; 32];
            let mut r = crate::device::SimRng::new(
                seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            r.fill_bytes(&mut secret);
            let mut stack = Stack::new(cfg, secret);
            stack.add_address(cidr);
            hosts.push(HostState {
                name: name.clone(),
                stack,
                sim_id: id,
            });
        }
        // Two hosts share one link; more hang off a switch (added after the hosts, so a
        // host's SimNet node index is its index in `hosts`).
        let switch = (hosts.len() > 2).then(|| sim.add_switch("switch"));
        match switch {
            Some(sw) => {
                for h in &hosts {
                    sim.connect(h.sim_id, sw, self.link)
                        .map_err(io::Error::other)?;
                }
            }
            None if hosts.len() == 2 => {
                sim.connect(hosts[0].sim_id, hosts[1].sim_id, self.link)
                    .map_err(io::Error::other)?;
            }
            None => {}
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                hosts,
                sim,
                start: std::time::Instant::now(),
                kicked: false,
                stopped: false,
                sink: self.sink,
            }),
            driver: Condvar::new(),
            sockets: Condvar::new(),
        });
        {
            let mut list = RUNTIMES.lock().unwrap_or_else(|p| p.into_inner());
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&shared));
        }
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("synack-runtime".into())
            .spawn(move || drive(&s2))?;
        Ok(Runtime {
            shared,
            thread: Some(thread),
        })
    }
}

/// Owns the runtime thread; dropping it stops the thread (sockets then fail).
pub struct Runtime {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Runtime {
    pub fn builder() -> Builder {
        Builder {
            hosts: Vec::new(),
            link: LinkConfig::default(),
            seed: None,
            tcp: Config::default(),
            mtu: 1500,
            sink: None,
        }
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<Host> {
        let index = self
            .shared
            .with(|i, _| i.hosts.iter().position(|h| h.name == name))?;
        Some(Host {
            shared: self.shared.clone(),
            index,
        })
    }

    /// Waits until no connection of any host is still exchanging segments (all CLOSED, or in
    /// TIME-WAIT, or none), up to `max`. Returns whether that happened.
    pub fn settle(&self, max: StdDuration) -> bool {
        self.shared
            .wait_for(Some(max), |inner, _| {
                let busy = inner.hosts.iter().any(|h| {
                    h.stack
                        .connections()
                        .any(|c| !matches!(c.state(), State::Closed | State::TimeWait))
                });
                (!busy).then_some(())
            })
            .is_ok()
    }

    /// Packet statistics of the simulated network.
    pub fn link_stats(&self) -> crate::device::sim::LinkStats {
        self.shared.with(|i, _| i.sim.total_stats())
    }

    /// Stops the runtime thread and returns the trace sink (to flush or inspect it).
    pub fn shutdown(mut self) -> Option<Box<dyn TraceSink + Send>> {
        self.stop();
        self.shared.with(|i, _| i.sink.take())
    }

    fn stop(&mut self) {
        {
            let mut g = self.shared.lock();
            g.stopped = true;
        }
        self.shared.driver.notify_all();
        self.shared.sockets.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

fn os_random() -> u64 {
    // std's RandomState is seeded from the operating system's randomness.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5157_4e41_434b);
    h.finish()
}

/// The runtime thread.
fn drive(shared: &Shared) {
    let mut buf = vec![0u8; 65536];
    let mut g = shared.lock();
    loop {
        if g.stopped {
            break;
        }
        g.kicked = false;
        let now = g.now();
        if pump(&mut g, now, &mut buf) {
            shared.sockets.notify_all();
        }
        if g.kicked {
            continue;
        }
        let next = g
            .hosts
            .iter()
            .filter_map(|h| h.stack.poll_timeout())
            .chain(g.sim.next_delivery())
            .min();
        let wait = match next {
            Some(t) => (t - g.now()).min(StdDuration::from_secs(1)),
            None => StdDuration::from_secs(1),
        };
        if wait.is_zero() {
            continue;
        }
        g = shared
            .driver
            .wait_timeout(g, wait)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// Runs timers and moves packets until nothing is due at `now`. Returns whether anything
/// happened.
fn pump(g: &mut Inner, now: Instant, buf: &mut [u8]) -> bool {
    let mut activity = false;
    for _ in 0..10_000 {
        let mut progress = false;
        let Inner {
            hosts, sim, sink, ..
        } = g;
        for h in hosts.iter_mut() {
            h.stack.handle_timeout(now);
            // Bounded so one busy connection cannot starve the loop.
            for _ in 0..256 {
                let Some(n) = h.stack.poll_transmit(now, buf) else {
                    break;
                };
                progress = true;
                // A packet with no route is dropped (and counted by SimNet), as on a real link.
                let _ = sim.send(now, h.sim_id, &buf[..n]);
            }
        }
        while let Some(d) = sim.poll_deliver(now) {
            progress = true;
            // Hosts are added to SimNet first and in order, so the node index is the host index.
            if let Some(h) = hosts.get_mut(d.to.index()).filter(|h| h.sim_id == d.to) {
                h.stack.handle_packet(now, &d.packet);
            }
            sim.recycle(d.packet);
        }
        if let Some(sink) = sink.as_mut() {
            for h in hosts.iter_mut() {
                while let Some(e) = h.stack.poll_trace() {
                    sink.event(&e);
                }
            }
        }
        if !progress {
            break;
        }
        activity = true;
    }
    activity
}
