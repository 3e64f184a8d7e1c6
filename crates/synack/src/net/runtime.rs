//! The runtime: one thread that owns the stacks, the medium and the clock.
//!
//! The medium is either SimNet (any number of hosts on in-memory links; the thread sleeps on a
//! condition variable until the next timer, packet arrival or socket call) or one [`Device`]
//! under one host (a TUN interface, say; the thread sleeps in `poll(2)` on the device's file
//! descriptor and an eventfd that socket calls write to, until the next timer). Neither spins.

use core::net::IpAddr;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use crate::device::Device;
use crate::device::sim::{HostId, LinkConfig, SimNet};
use crate::stack::{
    IPV6_MIN_MTU, IpCidr, MIN_MTU, Stack, StackConfig, mtu_too_small, mtu_too_small_for_ipv6,
};
use crate::tcp::{Config, Counters, State};
use crate::time::Instant;
use crate::trace::TraceSink;

/// One host inside the runtime.
pub(crate) struct HostState {
    pub(crate) name: String,
    pub(crate) stack: Stack,
    /// The host's node on SimNet (None on a device).
    sim_id: Option<HostId>,
}

/// What carries the hosts' packets.
enum Medium {
    /// In-memory links between the hosts.
    Sim(Box<SimNet>),
    /// One real device under the only host (the device itself belongs to the runtime thread).
    Device(DeviceStats),
}

/// Packet counters of a runtime's device (see [`Runtime::device_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Packets read from the device.
    pub rx_packets: u64,
    /// Bytes read from the device.
    pub rx_bytes: u64,
    /// Packets written to the device.
    pub tx_packets: u64,
    /// Bytes written to the device.
    pub tx_bytes: u64,
    /// Reads that failed.
    pub rx_errors: u64,
    /// Packets the device refused, or batches of them it could not write (dropped; TCP
    /// retransmits).
    pub tx_errors: u64,
    /// Times the runtime thread slept waiting for the device, a timer or a socket call.
    pub sleeps: u64,
}

/// Everything the runtime thread and the sockets share, behind one lock.
pub(crate) struct Inner {
    pub(crate) hosts: Vec<HostState>,
    medium: Medium,
    start: std::time::Instant,
    /// A socket call queued work for the runtime thread.
    kicked: bool,
    /// The runtime thread sleeps in poll(2) and must be woken through the eventfd.
    polling: bool,
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
    /// Wakes the runtime thread out of poll(2) (device medium only).
    #[cfg(target_os = "linux")]
    waker: Option<wait::Waker>,
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
        self.kick_locked(&mut g);
    }

    /// [`kick`](Self::kick) with the lock already held.
    fn kick_locked(&self, g: &mut Inner) {
        g.kicked = true;
        #[cfg(target_os = "linux")]
        if g.polling {
            g.polling = false;
            if let Some(w) = &self.waker {
                w.wake();
            }
        }
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
            self.kick_locked(&mut g);
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

    /// The host of any running runtime that owns `addr`.
    pub fn owning(addr: IpAddr) -> Option<Host> {
        let list = RUNTIMES.lock().unwrap_or_else(|p| p.into_inner());
        running_owner(&list, addr)
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
                .map(|c| c.addr())
        })
    }

    /// A copy of the host's counters (nstat names).
    pub fn counters(&self) -> Counters {
        self.shared
            .with(|i, _| i.hosts[self.index].stack.counters().clone())
    }
}

/// The host that owns `addr` among the runtimes in `list` that still run.
fn running_owner(list: &[std::sync::Weak<Shared>], addr: IpAddr) -> Option<Host> {
    list.iter()
        .filter_map(std::sync::Weak::upgrade)
        .find_map(|shared| {
            let index = shared.with(|i, _| {
                if i.stopped {
                    return None;
                }
                i.hosts.iter().position(|h| {
                    h.stack
                        .addresses()
                        .iter()
                        .any(|c| c.addr() == addr.to_canonical())
                })
            })?;
            Some(Host { shared, index })
        })
}

/// Builds a [`Runtime`]: hosts, the link between them, TCP settings, tracing.
pub struct Builder {
    hosts: Vec<(String, String)>,
    link: LinkConfig,
    seed: Option<u64>,
    tcp: Config,
    mtu: Option<u16>,
    sink: Option<Box<dyn TraceSink + Send>>,
    device: Option<Box<dyn Device>>,
}

impl Builder {
    /// Adds a host with an address like `198.18.0.1/24` or `fd00:5ac::1/64`, or several,
    /// comma-separated (`198.18.0.1/24,fd00:5ac::1/64`: a dual-stack host). Names and
    /// addresses must be unique (see [`build`](Self::build)).
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

    /// TCP settings of every connection.
    pub fn tcp(mut self, cfg: Config) -> Builder {
        self.tcp = cfg;
        self
    }

    /// The hosts' MTU (default: the device's, or 1500 on SimNet).
    pub fn mtu(mut self, mtu: u16) -> Builder {
        self.mtu = Some(mtu);
        self
    }

    /// Puts the (single) host on a real device instead of SimNet: a
    /// [`Tun`](crate::device::tun::Tun), perhaps wrapped in
    /// [`Impaired`](crate::device::impair::Impaired). The link settings are then unused.
    /// Linux only (the runtime thread waits in `poll(2)`).
    pub fn device(mut self, dev: impl Device + 'static) -> Builder {
        self.device = Some(Box::new(dev));
        self
    }

    /// Sends every trace event of every host to `sink` (on the runtime thread).
    pub fn trace(mut self, sink: impl TraceSink + Send + 'static) -> Builder {
        self.sink = Some(Box::new(sink));
        self
    }

    /// Starts the runtime thread. Refuses, with `InvalidInput`: no host, a host address that
    /// does not parse, two hosts with one name or one address, an MTU below
    /// [`MIN_MTU`](crate::stack::MIN_MTU) (or [`IPV6_MIN_MTU`](crate::stack::IPV6_MIN_MTU)
    /// for a host with an IPv6 address), a device with more than one host; with `AddrInUse`:
    /// an address that a host of another running runtime has (an address has one owner, so
    /// that [`TcpListener::bind`](crate::net::TcpListener::bind) means one host).
    pub fn build(self) -> io::Result<Runtime> {
        if self.hosts.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a runtime needs at least one host",
            ));
        }
        if self.device.is_some() && self.hosts.len() != 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a runtime on a device has exactly one host",
            ));
        }
        #[cfg(not(target_os = "linux"))]
        if self.device.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "runtimes on devices need Linux (poll and eventfd)",
            ));
        }
        let mtu = self
            .mtu
            .or(self.device.as_ref().map(|d| d.mtu()))
            .unwrap_or(1500);
        if mtu < MIN_MTU {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                mtu_too_small(mtu),
            ));
        }
        // Every host needs a name and an address of its own: sockets find hosts by them.
        let mut cidrs: Vec<Vec<IpCidr>> = Vec::with_capacity(self.hosts.len());
        for (i, (name, list)) in self.hosts.iter().enumerate() {
            let mine: Vec<IpCidr> = list
                .split(',')
                .map(|c| c.trim().parse())
                .collect::<io::Result<_>>()?;
            for (j, (other, _)) in self.hosts[..i].iter().enumerate() {
                let shared = mine
                    .iter()
                    .find(|c| cidrs[j].iter().any(|o| o.addr() == c.addr()));
                let clash = if other == name {
                    format!("two hosts are called {name:?}")
                } else if let Some(c) = shared {
                    format!(
                        "hosts {other:?} and {name:?} both have the address {}",
                        c.addr()
                    )
                } else {
                    continue;
                };
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{clash}: every host of a runtime needs its own name and address"),
                ));
            }
            if mtu < IPV6_MIN_MTU && mine.iter().any(IpCidr::is_ipv6) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    mtu_too_small_for_ipv6(mtu),
                ));
            }
            cidrs.push(mine);
        }
        let seed = self.seed.unwrap_or_else(os_random);
        let mut sim = SimNet::new(seed);
        let tcp = Arc::new(self.tcp);
        let trace = self.sink.is_some();
        let mut hosts = Vec::new();
        for (i, ((name, _), host_cidrs)) in self.hosts.iter().zip(&cidrs).enumerate() {
            let id = if self.device.is_none() {
                let id = sim.add_host(name);
                for c in host_cidrs {
                    sim.set_addr(id, c.addr()).map_err(io::Error::other)?;
                }
                Some(id)
            } else {
                None
            };
            let cfg = StackConfig {
                tcp: tcp.clone(),
                mtu,
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
            for &c in host_cidrs {
                stack.add_address(c);
            }
            hosts.push(HostState {
                name: name.clone(),
                stack,
                sim_id: id,
            });
        }
        // Two hosts share one link; more hang off a switch (added after the hosts, so a
        // host's SimNet node index is its index in `hosts`).
        let ids: Vec<HostId> = hosts.iter().filter_map(|h| h.sim_id).collect();
        let switch = (ids.len() > 2).then(|| sim.add_switch("switch"));
        match switch {
            Some(sw) => {
                for &id in &ids {
                    sim.connect(id, sw, self.link).map_err(io::Error::other)?;
                }
            }
            None if ids.len() == 2 => {
                sim.connect(ids[0], ids[1], self.link)
                    .map_err(io::Error::other)?;
            }
            None => {}
        }
        let medium = match self.device {
            Some(_) => Medium::Device(DeviceStats::default()),
            None => Medium::Sim(Box::new(sim)),
        };
        #[cfg(target_os = "linux")]
        let waker = match self.device {
            Some(_) => Some(wait::Waker::new()?),
            None => None,
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                hosts,
                medium,
                start: std::time::Instant::now(),
                kicked: false,
                polling: false,
                stopped: false,
                sink: self.sink,
            }),
            driver: Condvar::new(),
            sockets: Condvar::new(),
            #[cfg(target_os = "linux")]
            waker,
        });
        {
            // An address has one owner among the running runtimes, so that
            // `TcpListener::bind(addr)` means one host. Checked and registered under one lock.
            let mut list = RUNTIMES.lock().unwrap_or_else(|p| p.into_inner());
            list.retain(|w| w.strong_count() > 0);
            for mine in cidrs.iter().flatten() {
                if let Some(owner) = running_owner(&list, mine.addr()) {
                    let (addr, owner) = (mine.addr(), owner.name());
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!(
                            "{addr} already belongs to host {owner:?} of another running synack \
                             runtime: an address has one owner (TcpListener::bind finds the host \
                             by it); drop that runtime first or pick another address"
                        ),
                    ));
                }
            }
            list.push(Arc::downgrade(&shared));
        }
        let s2 = shared.clone();
        let device = self.device;
        let thread = std::thread::Builder::new()
            .name("synack-runtime".into())
            .spawn(move || match device {
                #[cfg(target_os = "linux")]
                Some(dev) => drive_device(&s2, dev),
                _ => drive(&s2),
            })?;
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
            mtu: None,
            sink: None,
            device: None,
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

    /// Packet statistics of the simulated network (all zero on a device).
    pub fn link_stats(&self) -> crate::device::sim::LinkStats {
        self.shared.with(|i, _| match &i.medium {
            Medium::Sim(sim) => sim.total_stats(),
            Medium::Device(_) => Default::default(),
        })
    }

    /// Packet counters of the device (all zero on SimNet).
    pub fn device_stats(&self) -> DeviceStats {
        self.shared.with(|i, _| match &i.medium {
            Medium::Device(s) => *s,
            Medium::Sim(_) => DeviceStats::default(),
        })
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
        self.shared.kick();
        self.shared.driver.notify_all();
        self.shared.sockets.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // What happened since the thread's last turn (a socket closed just before the stop,
        // say) still reaches the sink.
        let mut g = self.shared.lock();
        let Inner { hosts, sink, .. } = &mut *g;
        if let Some(sink) = sink.as_mut() {
            drain_traces(hosts, sink.as_mut());
        }
    }
}

/// Hands every host's queued trace events to `sink`, oldest first across the hosts (socket
/// calls on different threads queue events on different hosts between two turns), so the
/// sink sees time move forward only.
fn drain_traces(hosts: &mut [HostState], sink: &mut dyn TraceSink) {
    loop {
        let next = hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.stack.next_trace_time().map(|t| (t, i)))
            .min();
        let Some((_, i)) = next else {
            return;
        };
        if let Some(e) = hosts[i].stack.poll_trace() {
            sink.event(&e);
        }
    }
}

/// Hands one host's queued trace events to `sink`, if there is one.
fn drain_host_trace(h: &mut HostState, sink: &mut Option<Box<dyn TraceSink + Send>>) {
    if let Some(sink) = sink.as_mut() {
        while let Some(e) = h.stack.poll_trace() {
            sink.event(&e);
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
        let next_delivery = match &g.medium {
            Medium::Sim(sim) => sim.next_delivery(),
            Medium::Device(_) => None,
        };
        let next = g
            .hosts
            .iter()
            .filter_map(|h| h.stack.poll_timeout())
            .chain(next_delivery)
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
            hosts,
            medium: Medium::Sim(sim),
            sink,
            ..
        } = g
        else {
            return activity;
        };
        // First what socket calls queued since the last turn, merged by time; then each host's
        // events right after the step that made them, so the sink sees cause before effect.
        if let Some(sink) = sink.as_mut() {
            drain_traces(hosts, sink.as_mut());
        }
        for h in hosts.iter_mut() {
            h.stack.handle_timeout(now);
            // Bounded so one busy connection cannot starve the loop.
            for _ in 0..256 {
                let Some(n) = h.stack.poll_transmit(now, buf) else {
                    break;
                };
                progress = true;
                // A packet with no route is dropped (and counted by SimNet), as on a real link.
                if let Some(id) = h.sim_id {
                    let _ = sim.send(now, id, &buf[..n]);
                }
            }
            drain_host_trace(h, sink);
        }
        while let Some(d) = sim.poll_deliver(now) {
            progress = true;
            // Hosts are added to SimNet first and in order, so the node index is the host index.
            if let Some(h) = hosts
                .get_mut(d.to.index())
                .filter(|h| h.sim_id == Some(d.to))
            {
                h.stack.handle_packet(now, &d.packet);
                drain_host_trace(h, sink);
            }
            sim.recycle(d.packet);
        }
        if !progress {
            break;
        }
        activity = true;
    }
    activity
}

/// Packets read from the device per turn of the runtime loop, at most (then sockets get the lock).
#[cfg(target_os = "linux")]
const RX_BATCH: usize = 64;
/// Packets written to the device per turn, at most.
#[cfg(target_os = "linux")]
const TX_BATCH: usize = 128;

/// The runtime thread on a device: read what the device has, run timers, write what the stack
/// has, publish, and when there is nothing left sleep in poll(2) on the device and the waker
/// until the next deadline.
#[cfg(target_os = "linux")]
fn drive_device(shared: &Shared, mut dev: Box<dyn Device>) {
    let mut buf = vec![0u8; 65536];
    let Some(waker) = shared.waker.as_ref() else {
        return;
    };
    loop {
        let mut g = shared.lock();
        if g.stopped {
            break;
        }
        g.kicked = false;
        let now = g.now();
        let (activity, more) = pump_device(&mut g, dev.as_mut(), now, &mut buf);
        if activity {
            shared.sockets.notify_all();
        }
        if more || g.kicked {
            // Let the sockets have the lock between turns.
            drop(g);
            std::thread::yield_now();
            continue;
        }
        let next = g
            .hosts
            .iter()
            .filter_map(|h| h.stack.poll_timeout())
            .chain(dev.poll_timeout())
            .min();
        let wait = match next {
            Some(t) => (t - g.now()).min(StdDuration::from_secs(1)),
            None => StdDuration::from_secs(1),
        };
        if wait.is_zero() {
            continue;
        }
        g.polling = true;
        if let Medium::Device(s) = &mut g.medium {
            s.sleeps += 1;
        }
        drop(g);
        waker.wait(dev.readable_fd(), wait);
        shared.lock().polling = false;
    }
}

/// One turn on a device. Returns (anything happened, more may be ready right away).
#[cfg(target_os = "linux")]
fn pump_device(g: &mut Inner, dev: &mut dyn Device, now: Instant, buf: &mut [u8]) -> (bool, bool) {
    let Inner {
        hosts,
        medium: Medium::Device(stats),
        sink,
        ..
    } = g
    else {
        return (false, false);
    };
    let Some(h) = hosts.first_mut() else {
        return (false, false);
    };
    let mut activity = false;
    let mut more = false;
    let mut read = 0;
    while read < RX_BATCH {
        match dev.recv(now, buf) {
            Ok(Some(n)) => {
                read += 1;
                stats.rx_packets += 1;
                stats.rx_bytes += n as u64;
                h.stack.handle_packet(now, &buf[..n]);
            }
            Ok(None) => break,
            Err(_) => {
                stats.rx_errors += 1;
                break;
            }
        }
    }
    if read > 0 {
        activity = true;
        more |= read == RX_BATCH;
    }
    if dev.handle_timeout(now).is_err() {
        stats.tx_errors += 1;
    }
    h.stack.handle_timeout(now);
    let mut written = 0;
    while written < TX_BATCH {
        let Some(n) = h.stack.poll_transmit(now, buf) else {
            break;
        };
        written += 1;
        match dev.send(now, &buf[..n]) {
            Ok(()) => {
                stats.tx_packets += 1;
                stats.tx_bytes += n as u64;
            }
            // Dropped, as a full NIC queue would; TCP recovers.
            Err(_) => stats.tx_errors += 1,
        }
    }
    // Write what the device queued (delayed packets that fell due included) in one go.
    if dev.flush(now).is_err() {
        stats.tx_errors += 1;
    }
    if written > 0 {
        activity = true;
        more |= written == TX_BATCH;
    }
    if let Some(sink) = sink.as_mut() {
        while let Some(e) = h.stack.poll_trace() {
            sink.event(&e);
        }
    }
    (activity, more)
}

/// Sleeping in poll(2) on a device and an eventfd, and waking from another thread.
#[cfg(target_os = "linux")]
mod wait {
    use std::io;
    use std::os::fd::{BorrowedFd, OwnedFd};
    use std::time::Duration;

    use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec, eventfd, poll};

    /// An eventfd: `wake` makes it readable, `wait` returns when it (or the device) is.
    pub(super) struct Waker {
        fd: OwnedFd,
    }

    impl Waker {
        pub(super) fn new() -> io::Result<Waker> {
            let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            Ok(Waker { fd })
        }

        /// Makes the next (or current) `wait` return.
        pub(super) fn wake(&self) {
            // Only fails if the counter would overflow, which means it is readable already.
            let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
        }

        /// Sleeps until `device` is readable, `wake` is called, or `timeout` passes.
        pub(super) fn wait(&self, device: Option<BorrowedFd<'_>>, timeout: Duration) {
            let ts = Timespec {
                tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: timeout.subsec_nanos().into(),
            };
            let mut fds = [
                PollFd::new(&self.fd, PollFlags::IN),
                match device {
                    Some(d) => PollFd::from_borrowed_fd(d, PollFlags::IN),
                    None => PollFd::new(&self.fd, PollFlags::empty()),
                },
            ];
            // EINTR just means look again; the caller loops.
            let _ = poll(&mut fds, Some(&ts));
            if fds[0].revents().contains(PollFlags::IN) {
                let mut b = [0u8; 8];
                let _ = rustix::io::read(&self.fd, &mut b);
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::net::{TcpListener, TcpStream};
    use std::collections::VecDeque;
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

    use rustix::event::{EventfdFlags, eventfd};

    /// One end of an in-memory wire that, like an offloading TUN device, writes nothing until
    /// flushed: `send` queues, `flush` hands the queue to the other end and makes its
    /// descriptor readable.
    struct WireEnd {
        queued: Vec<Vec<u8>>,
        inbox: Arc<Mutex<VecDeque<Vec<u8>>>>,
        peer_inbox: Arc<Mutex<VecDeque<Vec<u8>>>>,
        ready: Arc<OwnedFd>,
        peer_ready: Arc<OwnedFd>,
        flushed: Arc<Mutex<(u64, u64)>>,
    }

    fn wire() -> (WireEnd, WireEnd, Arc<Mutex<(u64, u64)>>) {
        let fd = || Arc::new(eventfd(0, EventfdFlags::NONBLOCK).expect("eventfd"));
        let (ia, ib) = (Arc::default(), Arc::default());
        let (ra, rb) = (fd(), fd());
        let flushed = Arc::new(Mutex::new((0, 0)));
        let end = |inbox: &Arc<_>, peer: &Arc<_>, r: &Arc<OwnedFd>, pr: &Arc<OwnedFd>| WireEnd {
            queued: Vec::new(),
            inbox: Arc::clone(inbox),
            peer_inbox: Arc::clone(peer),
            ready: r.clone(),
            peer_ready: pr.clone(),
            flushed: flushed.clone(),
        };
        (end(&ia, &ib, &ra, &rb), end(&ib, &ia, &rb, &ra), flushed)
    }

    impl Device for WireEnd {
        fn mtu(&self) -> u16 {
            1500
        }
        fn send(&mut self, _now: Instant, packet: &[u8]) -> io::Result<()> {
            self.queued.push(packet.to_vec());
            Ok(())
        }
        fn flush(&mut self, _now: Instant) -> io::Result<()> {
            if self.queued.is_empty() {
                return Ok(());
            }
            let n = self.queued.len() as u64;
            self.peer_inbox
                .lock()
                .unwrap()
                .extend(self.queued.drain(..));
            let _ = rustix::io::write(&*self.peer_ready, &1u64.to_ne_bytes());
            let mut f = self.flushed.lock().unwrap();
            f.0 += 1;
            f.1 += n;
            Ok(())
        }
        fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
            let take = |buf: &mut [u8], inbox: &Mutex<VecDeque<Vec<u8>>>| {
                inbox.lock().unwrap().pop_front().map(|p| {
                    buf[..p.len()].copy_from_slice(&p);
                    p.len()
                })
            };
            if let Some(n) = take(buf, &self.inbox) {
                return Ok(Some(n));
            }
            // Empty: clear the signal, then look again (a packet may have come in between).
            let _ = rustix::io::read(&*self.ready, &mut [0u8; 8]);
            Ok(take(buf, &self.inbox))
        }
        fn readable_fd(&self) -> Option<BorrowedFd<'_>> {
            Some(self.ready.as_fd())
        }
    }

    #[test]
    fn a_device_that_writes_on_flush_carries_a_transfer() {
        let (a, b, flushed) = wire();
        let ra = Runtime::builder()
            .host("a", "198.18.0.1/24")
            .device(a)
            .seed(1)
            .build()
            .unwrap();
        let rb = Runtime::builder()
            .host("b", "198.18.0.2/24")
            .device(b)
            .seed(2)
            .build()
            .unwrap();
        let listener = TcpListener::bind_on(&rb.host("b").unwrap(), "198.18.0.2:80").unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(StdDuration::from_secs(10)))
                .unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all
        });
        let mut c = TcpStream::connect_timeout_on(
            &ra.host("a").unwrap(),
            &"198.18.0.2:80".parse().unwrap(),
            StdDuration::from_secs(5),
        )
        .expect("the SYN and SYN-ACK crossed only through flush");
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        c.write_all(&data).unwrap();
        c.shutdown(crate::net::Shutdown::Write).unwrap();
        let got = server.join().unwrap();
        assert!(
            got == data,
            "{} bytes arrived, {} sent",
            got.len(),
            data.len()
        );
        let (flushes, packets) = *flushed.lock().unwrap();
        // Every packet crossed in a flush, most several to a flush.
        let stats = ra.device_stats();
        assert!(
            packets >= stats.tx_packets && flushes < packets,
            "{flushes} {packets}"
        );
        assert_eq!(stats.tx_errors, 0);
    }
}
