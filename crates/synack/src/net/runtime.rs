//! The runtime: one thread that owns the stacks, the medium and the clock.
//!
//! The medium is either SimNet (any number of hosts on in-memory links; the thread sleeps on a
//! condition variable until the next timer, packet arrival or socket call) or one [`Device`]
//! under one host (a TUN interface, say; the thread sleeps in `poll(2)` on the device's file
//! descriptor and an eventfd that socket calls write to, until the next timer). Neither spins.
//!
//! Only the driver touches the stacks. A socket call works on its own socket's state (its
//! [`pipe`](super::pipe) and readiness); what only the stack can answer (opening a socket,
//! the end of a stream, a datagram) goes to the driver as a [`Command`] over one MPSC
//! channel, and the caller waits on that call's own [`Completion`] (a thread on its
//! condition variable, a task with its waker), never on a lock the driver holds.

use core::net::{IpAddr, SocketAddr};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use super::readiness::{Registry, SocketIo};
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
    /// The sockets the application holds, and their readiness.
    pub(crate) sockets: Registry,
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

/// The stacks, the medium and the clock: what the driver owns. Only the driver locks it (and
/// the owner of the [`Runtime`] when stopping it, once the driver is over); socket calls
/// reach it through [`Command`]s.
pub(crate) struct Core {
    pub(crate) hosts: Vec<HostState>,
    medium: Medium,
    start: std::time::Instant,
    /// The marked pipes the driver is working through (swapped with `Shared::marked`).
    marked: Vec<Arc<SocketIo>>,
    /// Calls for the driver; dropped when the runtime stops, which answers every call still
    /// queued (and every later one) with the runtime's end.
    commands: Option<Receiver<Command>>,
    /// [`Runtime::settle`]'s waiters: answered after the first turn that leaves no connection
    /// exchanging segments.
    settlers: Vec<Reply<()>>,
    sink: Option<Box<dyn TraceSink + Send>>,
    /// SimNet's links cannot corrupt a packet (`LinkConfig::corrupt` is 0): what a host
    /// receives is what its peer's stack wrote, checksums included, so the receiver need not
    /// verify them again, as Linux's loopback device does not (receive checksum offload,
    /// `CHECKSUM_UNNECESSARY`). Debug builds verify anyway, so that tests check every
    /// checksum a stack writes.
    sim_intact: bool,
    /// The hosts' MTU: the largest packet a stack builds, so the room a device is given to
    /// build each in ([`Device::send_in_place`]; the device's own MTU may be smaller, and
    /// the packet still goes, as [`Device::send`] took it).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    mtu: u16,
}

/// A call for the driver: runs with the stacks at the start of its next turn (before the
/// packets, so what it queued goes out in the same turn).
pub(crate) type Command = Box<dyn FnOnce(&mut Core, Instant) + Send>;

/// The answer to one call the driver runs (see [`Shared::request`]). Its caller waits on it
/// alone, a thread on its condition variable or a task with its waker: the driver's answer
/// wakes that caller and no one else.
pub(crate) struct Completion<T> {
    slot: Mutex<(Option<io::Result<T>>, Option<Waker>)>,
    cond: Condvar,
}

impl<T> Completion<T> {
    fn new() -> Completion<T> {
        Completion {
            slot: Mutex::new((None, None)),
            cond: Condvar::new(),
        }
    }

    fn slot(&self) -> MutexGuard<'_, (Option<io::Result<T>>, Option<Waker>)> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers the call (the first answer counts) and wakes its caller.
    fn complete(&self, v: io::Result<T>) {
        let mut s = self.slot();
        if s.0.is_some() {
            return;
        }
        s.0 = Some(v);
        let waker = s.1.take();
        drop(s);
        self.cond.notify_one();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Blocks the thread until the answer is there (or `deadline` passes: `None`).
    pub(crate) fn wait_until(&self, deadline: Option<std::time::Instant>) -> Option<io::Result<T>> {
        let mut s = self.slot();
        loop {
            if let Some(v) = s.0.take() {
                return Some(v);
            }
            s = match deadline {
                None => self.cond.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.cond
                        .wait_timeout(s, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// The answer, or `Pending` with the task's waker kept for it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let mut s = self.slot();
        if let Some(v) = s.0.take() {
            return Poll::Ready(v);
        }
        match &s.1 {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.1 = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes an answer that is there.
    pub(crate) fn take(&self) -> Option<io::Result<T>> {
        self.slot().0.take()
    }
}

/// The driver's end of a [`Completion`]: dropped unanswered (the runtime stopped before
/// running the call), it answers with the runtime's end.
pub(crate) struct Reply<T>(Arc<Completion<T>>);

impl<T> Reply<T> {
    pub(crate) fn send(&self, v: io::Result<T>) {
        self.0.complete(v);
    }

    /// Nobody waits for the answer any more (the caller gave up).
    pub(crate) fn abandoned(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        self.0.complete(Err(stopped_error()));
    }
}

impl Core {
    pub(crate) fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    /// How long the driver may sleep: until the next timer of a host, of SimNet or of the
    /// device (`device`), at most a second.
    pub(crate) fn next_wait(&self, device: Option<Instant>) -> StdDuration {
        let next_delivery = match &self.medium {
            Medium::Sim(sim) => sim.next_delivery(),
            Medium::Device(_) => None,
        };
        let next = self
            .hosts
            .iter()
            .filter_map(|h| h.stack.poll_timeout())
            .chain(next_delivery)
            .chain(device)
            .min();
        match next {
            Some(t) => (t - self.now()).min(StdDuration::from_secs(1)),
            None => StdDuration::from_secs(1),
        }
    }

    /// One turn of the driver: timers, packets both ways, readiness. With a device, returns
    /// whether more may be ready right away (a full batch).
    pub(crate) fn turn(
        &mut self,
        dev: Option<&mut dyn Device>,
        buf: &mut [u8],
        shared: &Shared,
    ) -> bool {
        // Before taking the marked pipes: a call that marks one after this wakes the driver
        // again.
        shared.kicked.store(false, Ordering::SeqCst);
        let now = self.now();
        // What calls queued (bytes to send, room to receive into), then the packets, then
        // what they changed.
        let mut sent = self.publish(now, shared);
        let more = match dev {
            #[cfg(target_os = "linux")]
            Some(d) => pump_device(self, d, now, buf).1,
            #[cfg(not(target_os = "linux"))]
            Some(_) => false,
            None => {
                pump(self, now, buf);
                false
            }
        };
        sent |= self.publish(now, shared);
        self.answer_settlers();
        more || sent || shared.kicked.load(Ordering::SeqCst)
    }

    /// Moves the bytes of the marked pipes and of every socket something happened to, on
    /// every host, and publishes their readiness. Returns whether segments may be due.
    fn publish(&mut self, now: Instant, shared: &Shared) -> bool {
        let mut sent = self.run_commands(now);
        std::mem::swap(
            &mut *shared.marked.lock().unwrap_or_else(|p| p.into_inner()),
            &mut self.marked,
        );
        let mut woken = 0;
        for io in self.marked.drain(..) {
            if let Some(h) = self.hosts.get_mut(io.host) {
                let (w, s) = h.sockets.sync(&mut h.stack, now, &io);
                woken += w;
                sent |= s;
            }
        }
        shared.wakeups.fetch_add(woken, Ordering::Relaxed);
        for h in &mut self.hosts {
            sent |= h.sockets.publish(&mut h.stack, now, &shared.wakeups);
        }
        sent
    }

    /// Runs the calls queued for the driver. Returns whether there were any (segments may
    /// be due).
    fn run_commands(&mut self, now: Instant) -> bool {
        let mut ran = false;
        // Bounded, so that calls queued without end cannot starve the packets.
        for _ in 0..4096 {
            let Some(cmd) = self.commands.as_ref().and_then(|r| r.try_recv().ok()) else {
                break;
            };
            cmd(self, now);
            ran = true;
        }
        ran
    }

    /// After a turn: answers the settle calls once no connection is exchanging segments.
    fn answer_settlers(&mut self) {
        // A settle call that timed out has gone: it needs no answer, nor a scan per turn.
        self.settlers.retain(|r| !r.abandoned());
        if self.settlers.is_empty() {
            return;
        }
        let busy = self.hosts.iter().any(|h| {
            h.stack
                .connections()
                .any(|c| !matches!(c.state(), State::Closed | State::TimeWait))
        });
        if !busy {
            for r in self.settlers.drain(..) {
                r.send(Ok(()));
            }
        }
    }

    /// The runtime stopped: every socket's waiters fail, and the calls still queued (and
    /// any later ones) are answered with the runtime's end.
    pub(crate) fn stop(&mut self) {
        for h in &self.hosts {
            h.sockets.stop_all();
        }
        self.commands = None;
        self.settlers.clear();
    }
}

pub(crate) fn stopped_error() -> io::Error {
    io::Error::other("the synack runtime has stopped")
}

/// An [`attempt`](Shared::attempt) in flight: the driver's answer, and the call back.
pub(crate) type Attempt<T, F> = Arc<Completion<(Option<io::Result<T>>, F)>>;

pub(crate) struct Shared {
    core: Mutex<Core>,
    /// Calls for the driver (see [`Command`]).
    commands: Sender<Command>,
    /// The runtime stopped (or is stopping).
    pub(crate) stopped: AtomicBool,
    /// The hosts' names and addresses (fixed once the runtime is built).
    hosts: Vec<(String, Vec<IpAddr>)>,
    /// Stream pipes that calls marked for the driver (see [`Pipe::mark`](super::pipe::Pipe)).
    marked: Mutex<Vec<Arc<SocketIo>>>,
    /// A call queued work since the driver's turn began: later calls need not wake it.
    kicked: AtomicBool,
    /// The SimNet driver thread sleeps on `driver` until this is set.
    park: Mutex<bool>,
    driver: Condvar,
    /// Wakes the driver thread out of poll(2) (device medium only).
    #[cfg(target_os = "linux")]
    waker: Option<wait::Waker>,
    /// Wakes the driver task (tokio runtimes).
    #[cfg(feature = "tokio")]
    pub(crate) notify: Option<tokio::sync::Notify>,
    /// The driver task's device and its descriptor registered with tokio: here, not in the
    /// task, so that stopping the runtime releases them at once whatever the task is doing.
    #[cfg(feature = "tokio")]
    pub(crate) task_device: crate::tokio::TaskDevice,
    /// Wake-ups of tasks and blocked threads so far (see [`Runtime::wakeups`]).
    pub(crate) wakeups: AtomicU64,
    /// Per host, the datagrams (IPv4, IPv6) socket calls took from their pipes: the reads
    /// `UdpInDatagrams` counts (Linux `udp_recvmsg`), which happen without the driver;
    /// [`Host::counters`] adds them to the stack's.
    pub(crate) udp_reads: Vec<[AtomicU64; 2]>,
    /// Times a thread other than the driver's took (or tried) the stack lock.
    #[cfg(test)]
    pub(crate) outside_locks: AtomicU64,
}

/// Which threads take the stack lock (tests prove socket calls never do).
#[cfg(test)]
pub(crate) mod audit {
    use std::cell::Cell;
    use std::sync::atomic::Ordering;

    thread_local! {
        static DRIVER: Cell<bool> = const { Cell::new(false) };
    }

    /// Marks the current thread as the driver's while the guard lives.
    pub(crate) struct AsDriver(bool);

    impl AsDriver {
        pub(crate) fn new() -> AsDriver {
            AsDriver(DRIVER.replace(true))
        }
    }

    impl Drop for AsDriver {
        fn drop(&mut self) {
            DRIVER.set(self.0);
        }
    }

    pub(crate) fn count(shared: &super::Shared) {
        if !DRIVER.get() {
            shared.outside_locks.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Shared {
    /// Host `host`'s socket calls took datagrams to `dsts` from a pipe: reads
    /// `UdpInDatagrams` counts.
    pub(crate) fn count_udp_reads(&self, host: usize, dsts: impl Iterator<Item = SocketAddr>) {
        let Some(c) = self.udp_reads.get(host) else {
            return;
        };
        for d in dsts {
            c[usize::from(d.is_ipv6())].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The driver's lock on the stacks (the owner's too, stopping the runtime). Socket calls
    /// never take it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        #[cfg(test)]
        audit::count(self);
        // A panic while holding the lock leaves consistent-enough state for reads; carry on.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `f` for the driver's next turn and wakes it; its answer comes through the
    /// returned completion (the runtime's end if it stopped first).
    pub(crate) fn request<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, Instant, Reply<T>) + Send + 'static,
    ) -> Arc<Completion<T>> {
        let c = Arc::new(Completion::new());
        let reply = Reply(c.clone());
        let cmd: Command = Box::new(move |core, now| f(core, now, reply));
        // Refused once the driver dropped its end (stopped): the dropped reply says so.
        if self.commands.send(cmd).is_ok() {
            self.kick();
        }
        c
    }

    /// [`request`](Self::request) for `f`'s return value.
    pub(crate) fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, Instant) -> io::Result<T> + Send + 'static,
    ) -> Arc<Completion<T>> {
        self.request(move |core, now, reply| reply.send(f(core, now)))
    }

    /// Queues `f` for the driver, answer unneeded.
    pub(crate) fn post(&self, f: impl FnOnce(&mut Core, Instant) + Send + 'static) {
        drop(self.request::<()>(move |core, now, _| f(core, now)));
    }

    /// Something the driver reads off the stacks (counters, statistics), waited for (see
    /// [`wait`](Self::wait)); after the runtime stopped, read by the caller, the driver
    /// being over.
    pub(crate) fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core) -> T + Send + Clone + 'static,
    ) -> T {
        let g = f.clone();
        match self.wait(&self.call(move |core, _| Ok(g(core)))) {
            Ok(v) => v,
            Err(_) => f(&mut self.lock()),
        }
    }

    /// Waits for a call's answer from a synchronous function. A thread blocks on the
    /// completion; inside a multi-threaded tokio runtime through `block_in_place`; inside a
    /// current-thread tokio runtime, whose driver task cannot run while this function does,
    /// the calling thread runs the driver's queued calls itself if the driver is between
    /// turns (it never waits for the stack lock), else waits for it.
    pub(crate) fn wait<T>(&self, c: &Completion<T>) -> io::Result<T> {
        let wait = || c.wait_until(None).unwrap_or_else(|| Err(stopped_error()));
        #[cfg(feature = "tokio")]
        if self.notify.is_some() {
            use ::tokio::runtime::{Handle, RuntimeFlavor};
            match Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(RuntimeFlavor::MultiThread) => return ::tokio::task::block_in_place(wait),
                Ok(_) => {
                    #[cfg(test)]
                    audit::count(self);
                    if let Ok(mut g) = self.core.try_lock() {
                        let now = g.now();
                        g.run_commands(now);
                        drop(g);
                        self.kicked.store(false, Ordering::SeqCst);
                        self.kick();
                    }
                }
                Err(_) => {}
            }
        }
        wait()
    }

    /// One call the socket's own state could not answer, run by the driver: `f` says `None`
    /// when it has to wait, and then the socket's `interest` bits are cleared by the driver,
    /// so its next publication of them wakes the caller. `f` comes back for the next try.
    pub(crate) fn attempt<T, F>(&self, io: &Arc<SocketIo>, interest: u8, mut f: F) -> Attempt<T, F>
    where
        T: Send + 'static,
        F: FnMut(&mut Core, Instant) -> Option<io::Result<T>> + Send + 'static,
    {
        let io = io.clone();
        self.call(move |core, now| {
            let r = f(core, now);
            if r.is_none() {
                io.clear(interest);
            }
            Ok((r, f))
        })
    }

    /// [`attempt`](Self::attempt) until `f` does something, blocking the thread on the
    /// socket's readiness in between; `WouldBlock` right away when `nonblocking`, or after
    /// `timeout` (what std's sockets return when a read or write timeout expires).
    pub(crate) fn blocking<T, F>(
        &self,
        io: &Arc<SocketIo>,
        interest: u8,
        timeout: Option<StdDuration>,
        nonblocking: bool,
        mut f: F,
    ) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Core, Instant) -> Option<io::Result<T>> + Send + 'static,
    {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let (r, back) = self.wait(&self.attempt(io, interest, f))?;
            if let Some(r) = r {
                return r;
            }
            f = back;
            if nonblocking {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the socket is non-blocking and not ready",
                ));
            }
            io.wait(interest, deadline)?;
        }
    }

    /// [`blocking`](Self::blocking) for a task: `Pending` with the task's waker on the
    /// call's completion, then on the socket's readiness. The attempt in flight is kept in
    /// `slot` between polls (`make` makes the first one).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_io<T, F>(
        &self,
        cx: &mut Context<'_>,
        io: &Arc<SocketIo>,
        interest: u8,
        slot: &Mutex<Option<Box<dyn std::any::Any + Send>>>,
        make: impl FnOnce() -> F,
    ) -> Poll<io::Result<T>>
    where
        T: Send + 'static,
        F: FnMut(&mut Core, Instant) -> Option<io::Result<T>> + Send + 'static,
    {
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        // An attempt in flight is waited for (it may have taken bytes); a new one is made
        // from this poll's arguments.
        let in_flight = slot
            .take()
            .and_then(|b| b.downcast::<Attempt<T, F>>().ok())
            .map(|b| *b);
        let mut c = match in_flight {
            Some(c) => c,
            None => self.attempt(io, interest, make()),
        };
        loop {
            match c.poll(cx) {
                Poll::Pending => {
                    *slot = Some(Box::new(c));
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok((Some(r), _))) => return Poll::Ready(r),
                Poll::Ready(Ok((None, f))) => {
                    if io.poll_ready(cx, interest).is_pending() {
                        return Poll::Pending;
                    }
                    c = self.attempt(io, interest, f);
                }
            }
        }
    }

    /// Queues a pipe a call marked for the driver's next turn, and wakes it.
    pub(crate) fn mark(&self, io: &Arc<SocketIo>) {
        self.marked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(io.clone());
        self.kick();
    }

    /// Tells the driver that a socket call queued work: wakes it once per turn. Needs no
    /// lock but the driver's wake-up's own.
    pub(crate) fn kick(&self) {
        if self.kicked.swap(true, Ordering::SeqCst) {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(w) = &self.waker {
            w.wake();
        }
        #[cfg(feature = "tokio")]
        if let Some(n) = &self.notify {
            n.notify_one();
        }
        *self.park.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.driver.notify_one();
    }

    /// The SimNet driver thread's sleep: until a call kicks it or `wait` passes.
    fn park(&self, wait: StdDuration) {
        let deadline = std::time::Instant::now() + wait;
        let mut p = self.park.lock().unwrap_or_else(|p| p.into_inner());
        while !*p {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            p = self
                .driver
                .wait_timeout(p, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *p = false;
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
        let stopped = h.shared.stopped.load(Ordering::SeqCst);
        (!stopped).then_some(h)
    }

    /// The host of any running runtime that owns `addr`.
    pub fn owning(addr: IpAddr) -> Option<Host> {
        let list = RUNTIMES.lock().unwrap_or_else(|p| p.into_inner());
        running_owner(&list, addr)
    }

    /// The host's name.
    pub fn name(&self) -> String {
        self.shared.hosts[self.index].0.clone()
    }

    /// The host's (first) address.
    pub fn addr(&self) -> Option<IpAddr> {
        self.shared.hosts[self.index].1.first().copied()
    }

    /// A copy of the host's counters (nstat names), as of the driver's answer (a runtime
    /// that stopped: as it stopped). `UdpInDatagrams`/`Udp6InDatagrams` add the socket
    /// calls' reads from their pipes after the driver's answer, so the snapshot is not
    /// atomic across the two.
    pub fn counters(&self) -> Counters {
        let index = self.index;
        let mut c = self
            .shared
            .ask(move |core| core.hosts[index].stack.counters().clone());
        // Datagrams the socket calls took from their pipes (the driver moved them there
        // uncounted), added after the driver's answer: the sum is not one atomic snapshot
        // (a read between the two shows in the one, or in neither, never twice: a
        // datagram is counted by the stack or by the pipe read, not both).
        if let Some([v4, v6]) = self.shared.udp_reads.get(index) {
            c.udp_in_datagrams += v4.load(Ordering::Relaxed);
            c.udp6_in_datagrams += v6.load(Ordering::Relaxed);
        }
        c
    }
}

/// The host that owns `addr` among the runtimes in `list` that still run.
fn running_owner(list: &[std::sync::Weak<Shared>], addr: IpAddr) -> Option<Host> {
    list.iter()
        .filter_map(std::sync::Weak::upgrade)
        .find_map(|shared| {
            if shared.stopped.load(Ordering::SeqCst) {
                return None;
            }
            let index = shared
                .hosts
                .iter()
                .position(|(_, addrs)| addrs.contains(&addr.to_canonical()))?;
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
    shard: bool,
    stream_buffers: super::pipe::Caps,
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

    /// Marks this runtime as one shard of several that share their host's addresses: one
    /// runtime per queue of a multi-queue TUN interface
    /// ([`TunBuilder::open_queues`](crate::device::tun::TunBuilder::open_queues)), each
    /// serving the connections the kernel puts on its queue. A shard skips the one-owner
    /// rule for addresses and is not found by them: listen and connect through its
    /// [`Host`] ([`TcpListener::bind_on`](crate::net::TcpListener::bind_on)), once per shard.
    pub fn shard(mut self) -> Builder {
        self.shard = true;
        self
    }

    /// How many bytes each stream socket holds between the application and its connection,
    /// on top of the connection's own buffers: `recv` received bytes not yet read, `send`
    /// bytes written that the connection has not taken yet (64 KiB each by default; at least
    /// 1 KiB, at most 16 MiB). The runtime's driver moves bytes between these and the
    /// connections once per turn, so a stream that carries gigabits (a forwarder copying
    /// between synack and a kernel socket with 256 KiB reads, say) needs fewer turns and
    /// fewer wake-ups per byte with larger ones. They are allocated only as far as the
    /// traffic needs, so a stream that never carried much costs nothing more; one that did
    /// keeps what it grew to, up to twice each size, until it is closed, idle or not: with
    /// 256 KiB each way, up to 1 MiB per stream (2 × 256 KiB each way), on top of the
    /// connection's own buffers; 10,000 such streams can hold about 10 GiB. `recv` adds to the
    /// connection's receive buffer: an application that does not read holds both. A UDP
    /// socket's received datagrams wait in a queue of `recv` bytes too (each datagram
    /// charged 256 bytes more), on top of the stack's.
    pub fn stream_buffers(mut self, recv: usize, send: usize) -> Builder {
        let clamp = |n: usize| n.clamp(1 << 10, 16 << 20) as u32;
        self.stream_buffers = super::pipe::Caps {
            rx: clamp(recv),
            tx: clamp(send),
        };
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
        let (shared, device) = self.prepare(false)?;
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("synack-runtime".into())
            .spawn(move || match device {
                #[cfg(target_os = "linux")]
                Some(dev) => drive_device(&s2, dev),
                _ => drive(&s2),
            })?;
        Ok(Runtime {
            shared,
            driver: Driver::Thread(Some(thread)),
        })
    }

    /// Starts the driver as a task on the current tokio runtime instead of a thread of its
    /// own; a device is then read through tokio's `AsyncFd` (so it needs a
    /// [`readable_fd`](crate::device::Device::readable_fd)). Refuses what
    /// [`build`](Self::build) refuses, and outside a tokio runtime with `Other`. Use the
    /// sockets of [`synack::tokio`](crate::tokio) on it (the blocking ones work too, from
    /// threads of their own).
    #[cfg(feature = "tokio")]
    pub fn build_tokio(self) -> io::Result<Runtime> {
        let handle = ::tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("build_tokio must be called from inside a tokio runtime")
        })?;
        if self
            .device
            .as_ref()
            .is_some_and(|d| d.readable_fd().is_none())
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a device under a tokio runtime needs a descriptor to wait on (readable_fd)",
            ));
        }
        let (shared, device) = self.prepare(true)?;
        shared.task_device.install(device);
        let task = handle.spawn(crate::tokio::drive(shared.clone()));
        Ok(Runtime {
            shared,
            driver: Driver::Task(
                task,
                handle.runtime_flavor() == ::tokio::runtime::RuntimeFlavor::MultiThread,
            ),
        })
    }

    /// Checks the settings and makes the hosts; the driver is not running yet.
    fn prepare(self, task: bool) -> io::Result<(Arc<Shared>, Option<BoxedDevice>)> {
        let _ = task;
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
        if self.device.is_some() && !task {
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
            stack.report_changes(true);
            hosts.push(HostState {
                name: name.clone(),
                stack,
                sim_id: id,
                sockets: Registry::with_caps(self.stream_buffers),
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
            Some(_) if !task => Some(wait::Waker::new()?),
            _ => None,
        };
        let host_count = hosts.len();
        let names = hosts
            .iter()
            .map(|h| {
                let addrs = h.stack.addresses().iter().map(|c| c.addr()).collect();
                (h.name.clone(), addrs)
            })
            .collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                hosts,
                medium,
                start: std::time::Instant::now(),
                marked: Vec::new(),
                commands: Some(rx),
                settlers: Vec::new(),
                sink: self.sink,
                sim_intact: self.link.corrupt <= 0.0 && !cfg!(debug_assertions),
                mtu,
            }),
            commands: tx,
            stopped: AtomicBool::new(false),
            hosts: names,
            marked: Mutex::default(),
            kicked: AtomicBool::new(false),
            park: Mutex::new(false),
            driver: Condvar::new(),
            #[cfg(target_os = "linux")]
            waker,
            #[cfg(feature = "tokio")]
            notify: task.then(::tokio::sync::Notify::new),
            #[cfg(feature = "tokio")]
            task_device: Default::default(),
            wakeups: AtomicU64::new(0),
            udp_reads: (0..host_count)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            #[cfg(test)]
            outside_locks: AtomicU64::new(0),
        });
        // A shard shares its addresses with its siblings: reached through its Host only, and
        // not registered.
        if !self.shard {
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
        Ok((shared, self.device))
    }
}

type BoxedDevice = Box<dyn Device>;

/// What runs the driver loop.
enum Driver {
    Thread(Option<JoinHandle<()>>),
    #[cfg(feature = "tokio")]
    /// The task, and whether its runtime is multi-threaded.
    Task(::tokio::task::JoinHandle<()>, bool),
}

/// Owns the driver (a thread, or a tokio task); dropping it stops the driver (sockets then
/// fail).
pub struct Runtime {
    shared: Arc<Shared>,
    driver: Driver,
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
            shard: false,
            stream_buffers: Default::default(),
        }
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<Host> {
        let index = self.shared.hosts.iter().position(|(n, _)| n == name)?;
        Some(Host {
            shared: self.shared.clone(),
            index,
        })
    }

    /// Waits until no connection of any host is still exchanging segments (all CLOSED, or in
    /// TIME-WAIT, or none), up to `max`. Returns whether that happened.
    pub fn settle(&self, max: StdDuration) -> bool {
        let deadline = std::time::Instant::now() + max;
        let c = self
            .shared
            .request(|core, _, reply| core.settlers.push(reply));
        // The driver answers after its next turn that finds nothing busy.
        matches!(c.wait_until(Some(deadline)), Some(Ok(())))
    }

    /// Wake-ups of tasks and blocked threads by the driver so far: one per readiness change
    /// a waiter waited for (see the `conc` benchmark).
    pub fn wakeups(&self) -> u64 {
        self.shared.wakeups.load(Ordering::Relaxed)
    }

    /// Times a thread other than the driver's took the stack lock (tests).
    #[cfg(test)]
    pub(crate) fn outside_locks(&self) -> u64 {
        self.shared.outside_locks.load(Ordering::SeqCst)
    }

    /// Sockets the application holds, over all hosts (listeners and connections).
    pub fn open_sockets(&self) -> usize {
        self.shared
            .ask(|c| c.hosts.iter().map(|h| h.sockets.len()).sum())
    }

    /// Connections the stacks still hold, over all hosts (including ones the application
    /// closed that are still finishing, and TIME-WAIT).
    pub fn live_connections(&self) -> usize {
        self.shared
            .ask(|c| c.hosts.iter().map(|h| h.stack.connection_count()).sum())
    }

    /// Packet statistics of the simulated network (all zero on a device).
    pub fn link_stats(&self) -> crate::device::sim::LinkStats {
        self.shared.ask(|i| match &i.medium {
            Medium::Sim(sim) => sim.total_stats(),
            Medium::Device(_) => Default::default(),
        })
    }

    /// Packet counters of the device (all zero on SimNet).
    pub fn device_stats(&self) -> DeviceStats {
        self.shared.ask(|i| match &i.medium {
            Medium::Device(s) => *s,
            Medium::Sim(_) => DeviceStats::default(),
        })
    }

    /// Stops the runtime thread and returns the trace sink (to flush or inspect it).
    pub fn shutdown(mut self) -> Option<Box<dyn TraceSink + Send>> {
        self.stop();
        self.shared.lock().sink.take()
    }

    fn stop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // A fresh kick, whatever the last turn saw.
        self.shared.kicked.store(false, Ordering::SeqCst);
        self.shared.kick();
        match &mut self.driver {
            Driver::Thread(t) => {
                if let Some(t) = t.take() {
                    let _ = t.join();
                }
            }
            // The device goes now; the task, woken, ends at its next poll (a turn in progress
            // completes first), and is joined where that cannot deadlock.
            #[cfg(feature = "tokio")]
            Driver::Task(t, multi_thread) => {
                self.shared.task_device.release();
                if !self.shared.task_device.join(*multi_thread) {
                    t.abort();
                }
            }
        }
        // The driver is over (or, a task not yet polled again, between turns): its sockets'
        // waiters fail, and what happened since its last turn (a socket closed just before
        // the stop, say) still reaches the sink.
        let mut g = self.shared.lock();
        // What the application did before the stop still takes effect (a stream dropped or
        // closed, a queued call): one last pass over the queued calls and the marked sockets,
        // so their state changes reach the trace. Nothing is sent any more.
        let now = g.now();
        g.publish(now, &self.shared);
        g.stop();
        let Core { hosts, sink, .. } = &mut *g;
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
    #[cfg(test)]
    let _driver = audit::AsDriver::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let wait = {
            let mut g = shared.lock();
            if shared.stopped.load(Ordering::SeqCst) {
                g.stop();
                break;
            }
            let again = g.turn(None, &mut buf, shared);
            if again {
                continue;
            }
            g.next_wait(None)
        };
        if !wait.is_zero() {
            shared.park(wait);
        }
    }
}

/// Runs timers and moves packets until nothing is due at `now`. Returns whether anything
/// happened.
fn pump(g: &mut Core, now: Instant, buf: &mut [u8]) -> bool {
    let mut activity = false;
    for _ in 0..10_000 {
        let mut progress = false;
        let Core {
            hosts,
            medium: Medium::Sim(sim),
            sink,
            sim_intact,
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
                if *sim_intact {
                    h.stack.handle_packet_checksummed(now, &d.packet);
                } else {
                    h.stack.handle_packet(now, &d.packet);
                }
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

/// Packets read from the device per turn of the runtime loop, at most (then queued calls and
/// the transmit side get their turn).
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
    #[cfg(test)]
    let _driver = audit::AsDriver::new();
    let mut buf = vec![0u8; 65536];
    let Some(waker) = shared.waker.as_ref() else {
        return;
    };
    loop {
        let mut g = shared.lock();
        if shared.stopped.load(Ordering::SeqCst) {
            g.stop();
            break;
        }
        // Another turn at once while there is more to do: no other thread takes this lock
        // while the driver runs (socket calls are queued for it), so giving up the CPU here
        // (sched_yield) would only hand it to whatever else is runnable, for a time slice,
        // while the device's queue fills.
        if g.turn(Some(dev.as_mut()), &mut buf, shared) {
            continue;
        }
        let wait = g.next_wait(dev.poll_timeout());
        if wait.is_zero() {
            continue;
        }
        if let Medium::Device(s) = &mut g.medium {
            s.sleeps += 1;
        }
        drop(g);
        waker.wait(dev.readable_fd(), wait);
    }
}

/// One turn on a device. Returns (anything happened, more may be ready right away).
#[cfg(target_os = "linux")]
fn pump_device(g: &mut Core, dev: &mut dyn Device, now: Instant, buf: &mut [u8]) -> (bool, bool) {
    let Core {
        hosts,
        medium: Medium::Device(stats),
        sink,
        mtu,
        ..
    } = g
    else {
        return (false, false);
    };
    let Some(h) = hosts.first_mut() else {
        return (false, false);
    };
    let room = usize::from(*mtu).min(buf.len());
    let mut activity = false;
    let mut more = false;
    let mut read = 0;
    // Each packet lent by the device where it lies (a TCP super-segment whole, as GRO hands
    // Linux's TCP one segment of up to 64 KiB: one pass through the stack and one ACK). A
    // traced runtime takes them as the wire carried them instead (super-segments split), so
    // traces and captures show the packets the kernel would have put on a wire.
    let traced = sink.is_some();
    let checksummed = dev.rx_checksummed();
    while read < RX_BATCH {
        let mut take = |p: &[u8], checksummed: bool| {
            stats.rx_packets += 1;
            stats.rx_bytes += p.len() as u64;
            if checksummed {
                h.stack.handle_packet_checksummed(now, p);
            } else {
                h.stack.handle_packet(now, p);
            }
        };
        let got = if traced {
            dev.recv(now, buf)
                .map(|r| r.map(|n| take(&buf[..n], checksummed)).is_some())
        } else {
            dev.recv_in_place(now, buf, &mut take)
        };
        match got {
            Ok(true) => read += 1,
            Ok(false) => break,
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
        // Each packet built where the device sends it from (an offloading TUN device's
        // transmit queue), not built here and copied there.
        match dev.send_in_place(now, &mut buf[..room], &mut |b| {
            h.stack.poll_transmit(now, b)
        }) {
            Ok(Some(n)) => {
                stats.tx_packets += 1;
                stats.tx_bytes += n as u64;
            }
            Ok(None) => break,
            // Dropped, as a full NIC queue would; TCP recovers.
            Err(_) => stats.tx_errors += 1,
        }
        written += 1;
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
        // Every packet crossed in a flush, most several to a flush. The statistics first: a
        // driver turn sends and flushes under the runtime's lock, which `device_stats` takes,
        // so every packet they count was flushed by then; the counter, read the other way
        // round, could miss a turn that ran between the two reads.
        let stats = ra.device_stats();
        let (flushes, packets) = *flushed.lock().unwrap();
        assert!(
            packets >= stats.tx_packets && flushes < packets,
            "{flushes} {packets}"
        );
        assert_eq!(stats.tx_errors, 0);
    }
}
