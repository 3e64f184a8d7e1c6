//! `synack oracle`: every script on synack (virtual time, in process) and on the live Linux
//! kernel (upstream packetdrill, each script in a network namespace of its own, several at
//! once), side by side: both pass / only Linux / only synack / neither, with each side's first
//! failing line, then the counts. Linux is the reference.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use synack_packetdrill::divergences::Divergences;
use synack_packetdrill::linux::{self, Kernel, KernelOptions, KernelOutcome, KernelReport};
use synack_packetdrill::run::{self, Outcome, Report, RunOptions};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Needs root for the kernel side (network namespaces, a TUN device) and a packetdrill binary:
--packetdrill PATH, $SYNACK_LINUX_PACKETDRILL, `packetdrill` on PATH, or a build from the
sources $SYNACK_PACKETDRILL_SRC names (gtests/net/packetdrill of github.com/google/packetdrill
at commit 2c4001c4d6fc04a3bbd01d4b92be62717a37648a). Without them it says why and runs the
synack side only. The kernel side runs in real time: keep the machine otherwise idle.

Output: a line per script (with each failing side's first failing line), the counts and what
was not as expected on standard output, as is why the kernel side cannot run; errors in the
arguments or the list on standard error.

Exit status 0 when every script passes on both sides, or differs exactly as expected: a script
listed in --known-divergences passes on Linux only, a script under a --deliberate directory on
synack only.

Example: sudo target/release/synack oracle -j 4 tests/packetdrill")]
pub struct Args {
    /// Scripts (.pkt) or directories to search for them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Kernel-side scripts run at once (they mostly sleep).
    #[arg(short = 'j', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// The packetdrill binary for the kernel side.
    #[arg(long, value_name = "PATH")]
    packetdrill: Option<PathBuf>,
    /// Kernel-side timing tolerance for every script (a script can ask for up to 14000 itself
    /// with a `// linux-tolerance-usecs: N` line). synack runs in exact virtual time.
    #[arg(long, value_name = "USECS", value_parser = clap::value_parser!(u64).range(1..=linux::MAX_TOLERANCE_USECS))]
    tolerance_usecs: Option<u64>,
    /// A kernel-side script still running after this many seconds is killed and fails.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    timeout: u64,
    /// The list of scripts expected to pass on Linux only (`script.pkt: what differs`).
    #[arg(long, value_name = "FILE")]
    known_divergences: Option<PathBuf>,
    /// A directory of scripts expected to pass on synack only (deliberate differences).
    #[arg(long, value_name = "DIR")]
    deliberate: Vec<PathBuf>,
    /// Kernel side: one packet per outbound line (packetdrill's --strict_segments), so a pure
    /// ACK just before the data a line expects is not merged into it. Our suite uses it.
    #[arg(long)]
    strict_segments: bool,
    /// Fail instead of running the synack side alone when the kernel side cannot run.
    #[arg(long)]
    require_linux: bool,
    /// Define a symbol for both sides (`-D NAME=VALUE`).
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    define: Vec<String>,
    /// Print synack's whole trace and packetdrill's whole output for every script.
    #[arg(long, short)]
    verbose: bool,
}

/// Where a script stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Both,
    OnlyLinux,
    OnlySynack,
    Neither,
}

impl Verdict {
    fn of(synack: bool, linux: bool) -> Verdict {
        match (synack, linux) {
            (true, true) => Verdict::Both,
            (false, true) => Verdict::OnlyLinux,
            (true, false) => Verdict::OnlySynack,
            (false, false) => Verdict::Neither,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Both => "both pass",
            Verdict::OnlyLinux => "only Linux",
            Verdict::OnlySynack => "only synack",
            Verdict::Neither => "neither",
        }
    }
}

pub fn run(args: Args) -> ExitCode {
    let started = Instant::now();
    let (opts, scripts) =
        match crate::packetdrill::prepare(&args.paths, &args.define, RunOptions::upstream_ipv4()) {
            Ok(x) => x,
            Err(code) => return code,
        };
    let known = match &args.known_divergences {
        Some(f) => match Divergences::load(f) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Divergences::default(),
    };
    let deliberate: Vec<PathBuf> = args
        .deliberate
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    let is_deliberate = |s: &Path| {
        std::fs::canonicalize(s).is_ok_and(|c| deliberate.iter().any(|d| c.starts_with(d)))
    };

    // The synack side: milliseconds per script, in process.
    let synack: Vec<Report> = scripts.iter().map(|s| run::run_file(s, &opts)).collect();

    let (stop, kernel) = start_kernel(args.packetdrill.as_deref(), |packetdrill| KernelOptions {
        packetdrill,
        tolerance_usecs: args.tolerance_usecs,
        timeout: Duration::from_secs(args.timeout),
        defines: args.define.clone(),
        verbose: args.verbose,
        strict_segments: args.strict_segments,
    });
    let kernel = match kernel {
        Ok(k) => Some(k),
        Err(why) => {
            outln!("linux side unavailable: {why}");
            if args.require_linux {
                return ExitCode::from(2);
            }
            outln!("running the synack side only");
            None
        }
    };

    let mut problems = Vec::new();
    let mut counts = [0usize; 4];
    // `first`: the kernel's failure on its first run, when the script was rerun alone.
    let mut show = |i: usize, k: Option<&KernelReport>, first: Option<&str>| {
        let s = &scripts[i];
        let r = &synack[i];
        let listed = known.reason(s);
        let deliberate = is_deliberate(s);
        let Some(k) = k else {
            // Synack only: listed divergences must fail, everything else pass.
            let ok = r.passed() != listed.is_some();
            outln!(
                "{:<12} {}{}",
                if r.passed() {
                    "synack PASS"
                } else {
                    "synack FAIL"
                },
                s.display(),
                listed
                    .map(|w| format!("  (known divergence: {w})"))
                    .unwrap_or_default()
            );
            if !r.passed() {
                outln!("{:13}synack: {}", "", synack_line(r));
            }
            if !ok {
                problems.push(s.display().to_string());
            }
            return;
        };
        let v = Verdict::of(r.passed(), k.outcome == KernelOutcome::Pass);
        counts[v as usize] += 1;
        let expected = if listed.is_some() {
            Verdict::OnlyLinux
        } else if deliberate {
            Verdict::OnlySynack
        } else {
            Verdict::Both
        };
        let note = match (listed, deliberate) {
            (Some(w), _) => format!("  (known divergence: {w})"),
            (None, true) => "  (deliberate difference)".to_string(),
            _ => String::new(),
        };
        outln!("{:<12} {}{note}", v.label(), s.display());
        if !r.passed() {
            outln!("{:13}synack: {}", "", synack_line(r));
        }
        if k.outcome != KernelOutcome::Pass {
            outln!("{:13}linux:  {}", "", kernel_line(k));
        }
        if let Some(first) = first {
            outln!(
                "{:13}linux rerun alone; its first run, among others: {first}",
                ""
            );
        }
        if args.verbose {
            out!("{}", indent(&r.render(None)));
            out!("{}", indent(&k.output));
        }
        if v != expected {
            problems.push(format!(
                "{}: {} (expected {})",
                s.display(),
                v.label(),
                expected.label()
            ));
        }
    };

    match &kernel {
        None => {
            for i in 0..scripts.len() {
                show(i, None, None);
            }
        }
        Some(kernel) => {
            let next = AtomicUsize::new(0);
            let (tx, rx) = mpsc::channel::<(usize, KernelReport)>();
            let mut done: Vec<Option<KernelReport>> = vec![None; scripts.len()];
            let mut printed = 0;
            let mut retry = Vec::new();
            let mut first: Vec<Option<String>> = vec![None; scripts.len()];
            std::thread::scope(|sc| {
                for _ in 0..args.jobs.min(scripts.len().max(1) as u16) {
                    let tx = tx.clone();
                    let (next, scripts, stop) = (&next, &scripts, &stop);
                    sc.spawn(move || {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= scripts.len() || stop.load(Ordering::Relaxed) {
                                break;
                            }
                            if tx.send((i, kernel.run(&scripts[i]))).is_err() {
                                break;
                            }
                        }
                    });
                }
                drop(tx);
                // Print in script order as results come in. A kernel failure may be the
                // machine's fault (real time, several scripts at once on two cores: a late
                // injected packet changes what the kernel's delayed-ACK logic does, not only
                // the timing), so any failure of a script Linux is expected to pass is rerun
                // alone at the end before it is believed, and printing waits for it. The
                // first run's error is printed with the result.
                for (i, k) in rx {
                    if k.outcome != KernelOutcome::Pass && !is_deliberate(&scripts[i]) {
                        first[i] = Some(kernel_line(&k));
                        retry.push(i);
                        continue;
                    }
                    done[i] = Some(k);
                    while let Some(Some(k)) = done.get(printed) {
                        show(printed, Some(k), first[printed].as_deref());
                        printed += 1;
                    }
                }
            });
            retry.sort_unstable();
            for i in retry {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let mut k = kernel.run(&scripts[i]);
                // A timing error even when alone is still more often the machine's (another
                // job on the two cores delays packetdrill by tens of ms) than the kernel's:
                // up to two more tries alone before it is believed.
                for _ in 0..2 {
                    if k.outcome == KernelOutcome::Pass
                        || !kernel_line(&k).contains("timing error")
                        || stop.load(Ordering::Relaxed)
                    {
                        break;
                    }
                    k = kernel.run(&scripts[i]);
                }
                done[i] = Some(k);
                while let Some(Some(k)) = done.get(printed) {
                    show(printed, Some(k), first[printed].as_deref());
                    printed += 1;
                }
            }
        }
    }

    let wall = started.elapsed().as_secs_f64();
    if kernel.is_some() {
        let total: usize = counts.iter().sum();
        outln!(
            "{total} scripts: {} both pass, {} only Linux, {} only synack, {} neither \
             (wall time {wall:.1} s, -j {})",
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            args.jobs
        );
    } else {
        let passed = synack.iter().filter(|r| r.passed()).count();
        outln!(
            "{} scripts on synack: {passed} passed, {} failed (linux side not run)",
            synack.len(),
            synack.len() - passed
        );
    }
    if stop.load(Ordering::Relaxed) {
        outln!("interrupted");
        return ExitCode::from(130);
    }
    if problems.is_empty() {
        return ExitCode::SUCCESS;
    }
    outln!("not as expected:");
    for p in &problems {
        outln!("  {p}");
    }
    ExitCode::FAILURE
}

/// A kernel-side failure that only says something happened at the wrong time.
/// The synack side's first failing line, in one line.
fn synack_line(r: &Report) -> String {
    match &r.outcome {
        Outcome::Pass => "pass".into(),
        Outcome::Skip(why) => format!("SKIP: {why}"),
        Outcome::Fail(f) => format!("line {}: {}", f.line, f.message),
    }
}

/// The kernel side, with Ctrl-C setting the returned flag (which stops its runs early):
/// packetdrill found at `packetdrill` (or the usual places), run with `opts`.
pub(crate) fn start_kernel(
    packetdrill: Option<&Path>,
    opts: impl FnOnce(PathBuf) -> KernelOptions,
) -> (Arc<AtomicBool>, Result<Kernel, String>) {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let kernel =
        linux::find_packetdrill(packetdrill).and_then(|pd| Kernel::new(opts(pd), stop.clone()));
    (stop, kernel)
}

/// The kernel side's first error, in one line.
fn kernel_line(k: &KernelReport) -> String {
    k.outcome.summary(k.elapsed)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("{:13}{l}\n", "")).collect()
}
