//! `--trace LEVEL`: how much of the conversation a command prints, with the same values in every
//! command (`demo`, `sim`, `serve`, `connect`, `lab`, and any command that shows a trace). Each
//! command picks its default, which `--help` shows.
//!
//! ```text
//! #[arg(long, value_enum, value_name = "LEVEL", default_value_t = TraceArg::Handshake)]
//! pub trace: TraceArg,
//! ```

use clap::ValueEnum;
use synack::trace::TraceLevel;

/// A `--trace` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceArg {
    /// No trace lines (the capture, if any, still gets every packet).
    None,
    /// SYN, FIN and RST segments, the ACKs that finish the handshake and the close, state
    /// changes, drops and notes such as retransmissions.
    Handshake,
    /// Every segment, state change, drop and note.
    All,
}

impl TraceArg {
    /// Whether anything is printed at all.
    pub fn is_on(self) -> bool {
        self != TraceArg::None
    }
}

impl From<TraceArg> for TraceLevel {
    fn from(t: TraceArg) -> TraceLevel {
        match t {
            TraceArg::None => TraceLevel::None,
            TraceArg::Handshake => TraceLevel::Handshake,
            TraceArg::All => TraceLevel::All,
        }
    }
}
