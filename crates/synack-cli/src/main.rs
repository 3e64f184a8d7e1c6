//! `synack`: the command-line face of the synack TCP/IP stack.
//!
//! One module per subcommand; each exposes an `Args` struct (its flags, declared with clap's
//! derive) and a `run(Args) -> ExitCode`. Adding a command is a new module, a new variant of
//! [`Command`] and a new arm in `main`.

#![forbid(unsafe_code)]

#[cfg(target_os = "linux")]
mod connect;
mod decode;
mod demo;
mod hex;
#[cfg(target_os = "linux")]
mod http;
#[cfg(target_os = "linux")]
mod lab;
#[cfg(target_os = "linux")]
mod oracle;
mod packetdrill;
#[cfg(target_os = "linux")]
mod relay;
#[cfg(target_os = "linux")]
mod serve;
mod sim;
#[cfg(target_os = "linux")]
mod tunnet;
mod units;

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
    /// Two hosts in one process: handshake, transfer, close, all shown (start here).
    Demo(demo::Args),
    /// A transfer on the simulated network in virtual time, with every impairment as a flag.
    Sim(sim::Args),
    /// Decode a packet given as hex, layer by layer.
    Decode(decode::Args),
    /// Run packetdrill scripts against synack in virtual time (PASS/FAIL per script).
    Packetdrill(packetdrill::Args),
    /// Run packetdrill scripts on synack and on the live Linux kernel, side by side (needs root).
    #[cfg(target_os = "linux")]
    Oracle(oracle::Args),
    /// Serve TCP (echo, discard, chargen, HTTP files) on a TUN device, for the kernel to use.
    #[cfg(target_os = "linux")]
    Serve(serve::Args),
    /// Connect to a server through a TUN device, like netcat.
    #[cfg(target_os = "linux")]
    Connect(connect::Args),
    /// Watch the Linux kernel's TCP talk to synack: namespace, TUN, curl, trace (needs root).
    #[cfg(target_os = "linux")]
    Lab(lab::Args),
    /// Join two TUN interfaces (two kernels) through the impairment models: netem in userspace.
    #[cfg(target_os = "linux")]
    Relay(relay::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Packetdrill(args) => packetdrill::run(args),
        #[cfg(target_os = "linux")]
        Command::Oracle(args) => oracle::run(args),
        #[cfg(target_os = "linux")]
        Command::Serve(args) => serve::run(args),
        #[cfg(target_os = "linux")]
        Command::Connect(args) => connect::run(args),
        #[cfg(target_os = "linux")]
        Command::Lab(args) => lab::run(args),
        #[cfg(target_os = "linux")]
        Command::Relay(args) => relay::run(args),
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
