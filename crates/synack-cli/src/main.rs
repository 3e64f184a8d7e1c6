//! `synack`: the command-line face of the synack TCP/IP stack.
//!
//! One module per subcommand; each exposes an `Args` struct (its flags, declared with clap's
//! derive) and a `run(Args) -> ExitCode`. Adding a command is a new module, a new variant of
//! [`Command`] and a new arm in `main`.

mod decode;
mod hex;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "synack",
    version,
    about = "A userspace TCP/IP stack, and tools to watch it work",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Decode(decode::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        // clap's own checks: conflicting names, bad defaults, missing value names, ...
        Cli::command().debug_assert();
    }
}
