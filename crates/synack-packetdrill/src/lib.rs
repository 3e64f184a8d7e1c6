//! packetdrill scripts as a conformance suite, run against a synack [`Stack`](synack::stack::Stack)
//! in virtual time.
//!
//! - [`ast`] and [`parser`]: the script language subset described in
//!   `shared/packetdrill/SUBSET.md`, with `file:line:col` errors.
//! - [`code`]: `%{ }%` code blocks (Python asserts over TCP_INFO).
//! - [`run`]: the runner (virtual clock, packet injection and matching, syscalls).
//! - [`linux`]: the same scripts against the live Linux kernel with upstream packetdrill, the
//!   oracle `synack oracle` compares synack with.

pub mod ast;
pub mod code;
pub mod lexer;
pub mod parser;

pub use parser::{ParseError, parse};
pub mod divergences;
pub mod errno;
pub mod fuzz;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod packet;
pub mod profile;
pub mod run;
pub mod shell;

pub use run::{Outcome, Report, RunOptions, run_file};
