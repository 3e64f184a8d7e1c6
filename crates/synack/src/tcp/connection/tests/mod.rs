//! Connection tests in virtual time. `harness` has the pieces: captured segments, a builder
//! for injected segments, and a two-connection pipe with seeded loss/reorder/duplication.
//! Test files are named after what they prove.

mod harness;

mod close;
mod diagram;
mod fast_output;
mod frto;
mod handshake;
mod header_prediction;
mod matrix;
mod memory;
mod owed_acks;
mod pacing;
mod passive_open;
mod plain_header;
mod rack_echo;
mod recovery_chain;
mod reo_timeout;
mod resets;
mod rtx_burst;
mod super_segment;
mod transfer;
