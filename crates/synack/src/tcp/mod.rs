//! TCP: the connection (one TCB) and the pieces it is built from.
//!
//! What an application or a driver needs is re-exported here: [`Connection`] and its
//! [`State`], [`Event`]s, [`Error`]s and [`Info`] (TCP_INFO); the settings ([`Config`],
//! [`Keepalive`], [`SynCookies`]); the [`Counters`]; [`SeqNum`]; and the congestion-control
//! algorithms in [`congestion`]. The pieces a connection is built from (buffers, RTT and
//! RACK, SACK scoreboard, PRR, delayed ACK, ISNs, SYN cookies...) are internal.

pub(crate) mod buffer;
pub(crate) mod config;
pub mod congestion;
pub mod connection;
pub(crate) mod counters;
pub(crate) mod delack;
pub mod ecn;
pub mod fastopen;
pub(crate) mod handshake;
pub(crate) mod isn;
pub(crate) mod prr;
pub(crate) mod push;
pub(crate) mod rack;
pub(crate) mod rate;
pub(crate) mod reassembly;
pub(crate) mod rtt;
pub(crate) mod rwnd;
pub(crate) mod sack;
pub(crate) mod scoreboard;
pub(crate) mod siphash;
pub(crate) mod syncookie;

/// Sequence numbers live with the wire format that carries them ([`crate::wire::seq`]).
pub use crate::wire::seq::{self, SeqNum};
pub use config::{Config, Keepalive, SynCookies};
pub use connection::{
    CaState, Connection, Error, Event, Info, PollEvents, RetransmitCause, Shutdown, State, tcpi_opt,
};
pub use counters::Counters;
pub use ecn::EcnMode;
pub use fastopen::{FastOpenKey, FastOpenMode};
