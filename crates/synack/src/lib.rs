//! synack — a userspace TCP/IP stack.
//!
//! Layers, bottom up (see `ARCHITECTURE.md` at the repository root):
//!
//! * [`wire`]: views over packet bytes and their parsed representations (IPv4, IPv6, TCP,
//!   ICMPv4, ICMPv6), Internet checksums. Pure functions, no allocation.
//! * [`tcp`]: the TCP control block and what it is built from (sequence arithmetic, ...).
//! * [`trace`]: packets, state changes and drops as events; Wireshark-style lines and pcap files.
//! * [`device`]: what moves IP packets: SimNet, a deterministic in-memory network in virtual time;
//!   a Linux TUN device; the impairment models, also as a wrapper around any device.
//! * [`net`]: the runtime's driver (on SimNet or on a device; a thread, or a tokio task) with
//!   per-socket readiness, and `std::net`-shaped blocking sockets.
//! * [`tokio`](mod@crate::tokio) (feature `tokio`): `tokio::net`-shaped async sockets on it.
//! * [`units`]: sizes, durations, fractions and rates as people write them (`1MiB`, `20ms`).
//!
//! Everything in this crate below the runtime is sans-IO: time, packets and secrets come in as
//! arguments, so every run is a deterministic function of its inputs.
#![forbid(unsafe_code)]

pub mod device;
pub mod net;
pub mod sim;
pub mod stack;
pub mod tcp;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod trace;
pub mod units;
pub mod wire;
