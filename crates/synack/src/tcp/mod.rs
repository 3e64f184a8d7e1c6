//! TCP: the connection (one TCB) and the pieces it is built from.

pub mod buffer;
pub mod config;
pub mod congestion;
pub mod connection;
pub mod counters;
pub mod delack;
pub mod handshake;
pub mod isn;
pub mod prr;
pub mod push;
pub mod rack;
pub mod rate;
pub mod reassembly;
pub mod rtt;
pub mod sack;
pub mod scoreboard;
pub mod syncookie;

/// Sequence numbers live with the wire format that carries them ([`crate::wire::seq`]).
pub use crate::wire::seq::{self, SeqNum};
pub use config::{Config, Keepalive, SynCookies};
pub use connection::{Connection, Error, Event, Shutdown, State};
pub use counters::Counters;
