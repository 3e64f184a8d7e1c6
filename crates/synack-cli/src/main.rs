//! `synack`: the command-line face of the synack TCP/IP stack.
//!
//! One module per subcommand; each exposes an `Args` struct (its flags, declared with clap's
//! derive) and a `run(Args) -> ExitCode`. Adding a command is a new module, a new variant of
//! [`Command`] and a new arm in `main`.

#![forbid(unsafe_code)]

#[macro_use]
mod out;
#[cfg(target_os = "linux")]
mod connect;
mod decode;
mod demo;
mod explain;
#[cfg(target_os = "linux")]
mod forward;
#[cfg(target_os = "linux")]
mod fuzz;
mod hex;
#[cfg(target_os = "linux")]
mod http;
#[cfg(target_os = "linux")]
mod lab;
#[cfg(target_os = "linux")]
mod oracle;
mod packetdrill;
mod plot;
#[cfg(target_os = "linux")]
mod relay;
mod report;
#[cfg(target_os = "linux")]
mod serve;
mod sim;
mod trace_arg;
#[cfg(target_os = "linux")]
mod tunnet;

/// The value parsers of sizes, durations, fractions and rates, shared with synack-bench.
use synack::units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "synack",
    version,
    about = "A userspace TCP/IP stack, and tools to watch it work",
    propagate_version = true,
    after_help = "Results go to standard output and errors to standard error; `synack connect` \
    keeps standard output for the bytes it receives. `synack <COMMAND> --help` says which \
    stream carries what."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Two hosts in one process: handshake, transfer, close, all shown (start here).
    Demo(demo::Args),
    /// TCP's classic questions (why three steps? SYN floods? TIME-WAIT?) answered by running them.
    Explain(explain::Args),
    /// A transfer on the simulated network in virtual time, with every impairment as a flag.
    Sim(sim::Args),
    /// Decode a packet given as hex, layer by layer.
    Decode(decode::Args),
    /// Run packetdrill scripts against synack in virtual time (PASS/FAIL per script).
    Packetdrill(packetdrill::Args),
    /// Draw a capture or samples file as SVG: time-sequence graph, ladder, cwnd or RTT.
    Plot(plot::Args),
    /// Write a self-contained HTML report of a capture: summary, pictures, filterable trace.
    Report(report::Args),
    /// Run packetdrill scripts on synack and on the live Linux kernel, side by side (needs root).
    #[cfg(target_os = "linux")]
    Oracle(oracle::Args),
    /// Random scenarios run on synack, replayed on the live Linux kernel: differences, shrunk.
    #[cfg(target_os = "linux")]
    Fuzz(fuzz::Args),
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
    /// Forward every TCP and UDP flow routed through a TUN device as a kernel socket (tun2socks).
    #[cfg(target_os = "linux")]
    Forward(forward::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Packetdrill(args) => packetdrill::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Report(args) => report::run(args),
        #[cfg(target_os = "linux")]
        Command::Oracle(args) => oracle::run(args),
        #[cfg(target_os = "linux")]
        Command::Fuzz(args) => fuzz::run(args),
        #[cfg(target_os = "linux")]
        Command::Serve(args) => serve::run(args),
        #[cfg(target_os = "linux")]
        Command::Connect(args) => connect::run(args),
        #[cfg(target_os = "linux")]
        Command::Lab(args) => lab::run(args),
        #[cfg(target_os = "linux")]
        Command::Relay(args) => relay::run(args),
        #[cfg(target_os = "linux")]
        Command::Forward(args) => forward::run(args),
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

    /// Every flag and argument of every command has a help line.
    #[test]
    fn every_flag_has_help() {
        let mut cli = Cli::command();
        cli.build();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "synack {} --{id} has no help text",
                    sub.get_name()
                );
            }
        }
    }

    /// `--trace` is one flag with one set of values wherever a command prints a conversation,
    /// and always takes its value.
    #[test]
    fn trace_is_one_flag_everywhere() {
        let mut cli = Cli::command();
        cli.build();
        let mut with_trace = Vec::new();
        for sub in cli.get_subcommands() {
            assert!(
                !sub.get_arguments().any(|a| a.get_id() == "all"),
                "synack {} has --all: use --trace all",
                sub.get_name()
            );
            let Some(arg) = sub.get_arguments().find(|a| a.get_long() == Some("trace")) else {
                continue;
            };
            with_trace.push(sub.get_name().to_string());
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect();
            assert_eq!(values, ["none", "handshake", "all"], "{}", sub.get_name());
            assert_eq!(arg.get_num_args(), Some(1.into()), "{}", sub.get_name());
            assert_eq!(arg.get_default_values().len(), 1, "{}", sub.get_name());
        }
        with_trace.sort();
        assert_eq!(with_trace, ["connect", "demo", "lab", "serve", "sim"]);
    }

    /// Every command's `--help` says what goes to standard output and what to standard error.
    #[test]
    fn every_command_documents_its_output_streams() {
        let mut cli = Cli::command();
        cli.build();
        for sub in cli.get_subcommands_mut() {
            let name = sub.get_name().to_string();
            if name == "help" {
                continue;
            }
            let help = sub.render_long_help().to_string();
            assert!(
                help.contains("Output: ")
                    && help.contains("standard output")
                    && help.contains("standard error"),
                "synack {name} --help does not say which stream carries what:\n{help}"
            );
        }
    }
}
