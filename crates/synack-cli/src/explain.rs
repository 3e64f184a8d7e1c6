//! `synack explain`: the questions people ask about TCP, answered by running them. Each
//! scenario runs real stacks on the simulated network in virtual time and prints the
//! conversation in the demo's notation, with one sentence beside each key event saying why it
//! happens and which RFC section says so (`synack::sim::explain`).

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use synack::sim::explain::{self, Lang};

/// The questions people ask about TCP, answered by running them.
#[derive(Debug, Parser)]
#[command(after_long_help = "Examples:
  synack explain                          # the list of scenarios
  synack explain old-duplicate-syn        # why the handshake has a third step
  synack explain syn-flood --lang zh      # 中文解释
  synack explain loss --seed 7            # other ports, ISNs and timestamps; same story

Output: the list, or the scenario's conversation and its explanations, on standard output;
errors on standard error. Exit status: 1 when a scenario did not behave as it explains, 2 on
a bad name or flag.")]
pub struct Args {
    /// The scenario to run (see the list without a name).
    pub name: Option<String>,
    /// Language of the explanations: en or zh (the protocol notation is the same in both).
    #[arg(long, default_value = "en", value_parser = lang)]
    pub lang: Lang,
    /// Seed of the stacks' secrets (ports, ISNs, timestamps): the same seed prints the same
    /// conversation, line for line.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn lang(s: &str) -> Result<Lang, String> {
    s.parse()
}

pub fn run(args: Args) -> ExitCode {
    let text = match &args.name {
        None => explain::list(args.lang),
        Some(name) => match explain::run(name, args.seed, args.lang) {
            Ok(e) => {
                let text = e.render();
                let status = if e.missing.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    // The stack did something the explanation does not expect: say so.
                    ExitCode::from(1)
                };
                return print(&text, status);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    print(&text, ExitCode::SUCCESS)
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print(text: &str, status: ExitCode) -> ExitCode {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => status,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => status,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::from(2)
        }
    }
}
