//! TCP: the connection (one TCB) and the pieces it is built from.

pub mod seq;

pub use seq::SeqNum;
