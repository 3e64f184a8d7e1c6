//! `synack fuzz`: differential fuzzing against the live Linux kernel. Random but valid
//! scenarios (a passive or an active open, then the peer's segments and the application's calls at random
//! times) are run on synack and written down as packetdrill scripts of what synack did; each is
//! replayed on Linux. Where Linux fails one, the two stacks differ: the case is shrunk to the
//! fewest steps that still show the same difference and saved as a script.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use synack_packetdrill::fuzz::{self, Case};
use synack_packetdrill::linux::{Kernel, KernelOptions, KernelOutcome};
use synack_packetdrill::run::{self, RunOptions};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each case is a script of what synack did (its segments as outbound lines without the window,
its call results as the expected ones), replayed on the live kernel by upstream packetdrill in a
network namespace of its own; see `synack oracle --help` for what the kernel side needs (root,
a packetdrill binary). A case Linux fails is a difference between the two stacks: it is shrunk
(each step dropped in turn, kept out while Linux still fails the same way) and written to
--out as fuzz-SEED.pkt, which passes on synack and fails on Linux. Make each one a script in
tests/packetdrill of what Linux does, or a listed deliberate difference.

Output: a line per case, then each difference with its shrunk script's path and Linux's first
error, on standard output, as is why the kernel side cannot run; errors in the arguments on
standard error. Exit status 0 when every case agrees, 1 when a difference was found, 2 when
the cases could not be run.

Example: sudo target/release/synack fuzz --cases 40 --seed 1 --out /tmp/fuzz")]
pub struct Args {
    /// How many cases to run.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    cases: u64,
    /// The first case's seed (case i uses seed + i); the same seed gives the same case.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How each case opens: `passive` (the peer connects to a listener), `active` (a
    /// non-blocking connect), or `mixed` (each case at random from its seed). A passive case
    /// of a seed is the same under `passive` and `mixed`.
    #[arg(long, value_enum, default_value_t = OpeningArg::Mixed)]
    opening: OpeningArg,
    /// Random steps per case (after the handshake).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=200))]
    steps: u64,
    /// Where to write the shrunk scripts.
    #[arg(long, value_name = "DIR", default_value = "fuzz-out")]
    out: PathBuf,
    /// Kernel runs at once (they mostly sleep).
    #[arg(short = 'j', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Most kernel runs spent shrinking each difference.
    #[arg(long, default_value_t = 40)]
    shrink_runs: u32,
    /// Differences (by Linux's first error, numbers aside) shrunk; the rest are listed.
    #[arg(long, default_value_t = 4)]
    shrink: usize,
    /// The packetdrill binary for the kernel side.
    #[arg(long, value_name = "PATH")]
    packetdrill: Option<PathBuf>,
    /// Only generate the cases and check that synack replays each one (no kernel).
    #[arg(long)]
    synack_only: bool,
    /// Print each case's script.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OpeningArg {
    Passive,
    Active,
    Mixed,
}

impl From<OpeningArg> for fuzz::Opening {
    fn from(o: OpeningArg) -> fuzz::Opening {
        match o {
            OpeningArg::Passive => fuzz::Opening::Passive,
            OpeningArg::Active => fuzz::Opening::Active,
            OpeningArg::Mixed => fuzz::Opening::Mixed,
        }
    }
}

/// A case and its script on disk.
struct Written {
    case: Case,
    path: PathBuf,
}

/// Records `case` on synack, writes its script to `dir`, and checks that synack passes it as
/// written (the recorder's fidelity).
fn write_case(case: &Case, dir: &Path, name: &str, opts: &RunOptions) -> Result<Written, String> {
    let rec = fuzz::record(case, opts)?;
    let text = case.script(Some(&rec));
    let path = dir.join(name);
    std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    let r = run::run_file(&path, opts);
    if !r.passed() {
        return Err(format!(
            "synack does not replay its own recording ({}): {:?}",
            path.display(),
            r.outcome
        ));
    }
    Ok(Written {
        case: case.clone(),
        path,
    })
}

/// Linux's first error with its numbers taken out: two failures with the same signature are
/// taken to be the same difference.
fn signature(outcome: &KernelOutcome) -> Option<String> {
    match outcome {
        KernelOutcome::Pass => None,
        KernelOutcome::Fail { message, .. } => Some(
            message
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect::<String>()
                .split('#')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("#"),
        ),
        KernelOutcome::TimedOut => Some("timed out".into()),
        KernelOutcome::Error(e) => Some(format!("error: {e}")),
    }
}

fn kernel_text(outcome: &KernelOutcome) -> String {
    // Cases are killed after a minute (`KernelOptions::timeout` below).
    outcome.summary(Duration::from_secs(60))
}

pub fn run(args: Args) -> ExitCode {
    let opts = RunOptions::upstream_ipv4();
    let work = std::env::temp_dir().join(format!("synack-fuzz-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("{}: {e}", work.display());
        return ExitCode::from(2);
    }
    let code = run_in(&args, &opts, &work);
    let _ = std::fs::remove_dir_all(&work);
    code
}

fn run_in(args: &Args, opts: &RunOptions, work: &Path) -> ExitCode {
    // The synack side: generate, record, and check each case replays.
    let mut cases = Vec::new();
    for i in 0..args.cases {
        let seed = args.seed.wrapping_add(i);
        let case = Case::generate(seed, args.steps as usize, args.opening.into(), opts);
        match write_case(&case, work, &format!("case-{seed}.pkt"), opts) {
            Ok(w) => {
                if args.verbose {
                    outln!("{}", std::fs::read_to_string(&w.path).unwrap_or_default());
                }
                cases.push(w);
            }
            Err(e) => {
                outln!("seed {seed}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if args.synack_only {
        outln!(
            "{} cases generated; synack replays every one as recorded",
            cases.len()
        );
        return ExitCode::SUCCESS;
    }

    let (stop, kernel) =
        crate::oracle::start_kernel(args.packetdrill.as_deref(), |packetdrill| KernelOptions {
            packetdrill,
            tolerance_usecs: None,
            timeout: Duration::from_secs(60),
            defines: Vec::new(),
            verbose: false,
            strict_segments: true,
        });
    let kernel = match kernel {
        Ok(k) => k,
        Err(why) => {
            outln!("linux side unavailable: {why}");
            return ExitCode::from(2);
        }
    };

    // The kernel side, several cases at once.
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<KernelOutcome>>> =
        cases.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(cases.len() as u16).max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= cases.len() || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let k = kernel.run(&cases[i].path);
                    *results[i].lock().unwrap() = Some(k.outcome);
                }
            });
        }
    });
    if stop.load(Ordering::Relaxed) {
        outln!("interrupted");
        return ExitCode::from(2);
    }

    // Group the differences by Linux's first error.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut agree = 0;
    for (i, w) in cases.iter().enumerate() {
        let outcome = results[i]
            .lock()
            .unwrap()
            .take()
            .unwrap_or(KernelOutcome::TimedOut);
        match signature(&outcome) {
            None => {
                agree += 1;
                outln!("seed {}: same on Linux", w.case.seed);
            }
            Some(sig) => {
                outln!("seed {}: differs: {}", w.case.seed, kernel_text(&outcome));
                match groups.iter_mut().find(|g| g.0 == sig) {
                    Some(g) => g.1.push(i),
                    None => groups.push((sig, vec![i])),
                }
            }
        }
    }
    outln!(
        "\n{} cases: {agree} the same on Linux, {} differ ({} distinct differences)",
        cases.len(),
        cases.len() - agree,
        groups.len()
    );
    if groups.is_empty() {
        return ExitCode::SUCCESS;
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        outln!("{}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    for (n, (sig, members)) in groups.iter().enumerate() {
        let first = &cases[members[0]];
        let seeds: Vec<String> = members
            .iter()
            .map(|&i| cases[i].case.seed.to_string())
            .collect();
        outln!(
            "\ndifference {}: {sig}\n  seeds: {}",
            n + 1,
            seeds.join(" ")
        );
        if n >= args.shrink {
            continue;
        }
        match shrink(first, sig, &kernel, opts, work, args.shrink_runs, &stop) {
            Ok((case, outcome, runs)) => {
                let name = format!("fuzz-{}.pkt", case.seed);
                match write_case(&case, &args.out, &name, opts) {
                    Ok(w) => outln!(
                        "  shrunk to {} steps in {runs} kernel runs: {}\n  linux: {}",
                        case.optional_steps(),
                        w.path.display(),
                        kernel_text(&outcome)
                    ),
                    Err(e) => outln!("  {e}"),
                }
            }
            Err(e) => outln!("  not shrunk: {e}"),
        }
    }
    ExitCode::from(1)
}

/// Drops steps one at a time (last first), keeping a step out while Linux still fails the
/// shrunk case with the same signature. Returns the smallest case, Linux's outcome on it and
/// the kernel runs spent.
fn shrink(
    start: &Written,
    sig: &str,
    kernel: &Kernel,
    opts: &RunOptions,
    work: &Path,
    budget: u32,
    stop: &AtomicBool,
) -> Result<(Case, KernelOutcome, u32), String> {
    let mut runs = 0;
    // Confirm first: a difference that does not come back is timing noise.
    let again = kernel.run(&start.path);
    runs += 1;
    if signature(&again.outcome).as_deref() != Some(sig) {
        return Err(format!(
            "the second kernel run ended otherwise ({}): timing noise, not shrunk",
            kernel_text(&again.outcome)
        ));
    }
    let mut best = start.case.clone();
    let mut best_outcome = again.outcome;
    let mut i = best.steps.len();
    while i > 0 && runs < budget && !stop.load(Ordering::Relaxed) {
        i -= 1;
        if best.steps[i].fixed {
            continue;
        }
        let candidate = best.without(i);
        let Ok(w) = write_case(&candidate, work, &format!("shrink-{}.pkt", best.seed), opts) else {
            continue;
        };
        let k = kernel.run(&w.path);
        runs += 1;
        if signature(&k.outcome).as_deref() == Some(sig) {
            best = candidate;
            best_outcome = k.outcome;
        }
    }
    Ok((best, best_outcome, runs))
}
