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
  synack explain old-duplicate-syn --svg old-syn.svg   # …and its ladder diagram
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
    /// Also draw the scenario as a ladder diagram (SVG, open it in a browser): each
    /// conversation's segments and state changes, numbered marks on the explained events and
    /// the explanations under the diagram, in the language of --lang.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<String>,
}

fn lang(s: &str) -> Result<Lang, String> {
    s.parse()
}

pub fn run(args: Args) -> ExitCode {
    let text = match &args.name {
        None if args.svg.is_some() => {
            eprintln!("error: --svg draws a scenario: name one (synack explain NAME --svg FILE)");
            return ExitCode::from(2);
        }
        None => explain::list(args.lang),
        Some(name) => match explain::run(name, args.seed, args.lang) {
            Ok(e) => {
                if let Some(path) = &args.svg {
                    if let Err(err) = std::fs::write(path, e.to_svg()) {
                        eprintln!("error: cannot write {path}: {err}");
                        return ExitCode::from(2);
                    }
                    // On stderr: stdout is the explanation, exactly as without --svg.
                    eprintln!("wrote {path} (ladder diagram; open it in a browser)");
                }
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
