//! `synack packetdrill`: run packetdrill scripts against synack in virtual time.

use std::path::PathBuf;
use std::process::ExitCode;

use synack_packetdrill::run::{self, IpVersion, Outcome, RunOptions};

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Output: one PASS/FAIL/SKIP block per script and the `N passed, M failed` \
    line on standard output; errors (an unreadable path, a bad -D) on standard error.\n\n\
    Exit status: 0 when no script failed, 1 when one did, 2 on a usage error."
)]
pub struct Args {
    /// Scripts (.pkt) or directories to search for them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print the whole trace of every script, and notes on what the run did not act on.
    #[arg(long, short)]
    verbose: bool,
    /// Define a symbol for the scripts (`-D TFO_COOKIE=3021b9d889017eeb`).
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    define: Vec<String>,
    /// Address family of the runs: ipv4, ipv6 (local fd3d:a0b:17d6::1, peer
    /// fd3d:fa7b:d17d::1, MTU 1520), ipv4-mapped-ipv6 (IPv6 sockets, IPv4 packets), or all
    /// three. A script that pins `--ip_version` runs in that family only.
    #[arg(long = "ip_version", alias = "ip-version", value_name = "FAMILY", default_value = "ipv4",
          value_parser = ["ipv4", "ipv6", "ipv4-mapped-ipv6", "all"])]
    ip_version: String,
}

/// The `-D NAME=VALUE` symbols added to `opts`, and the scripts under `paths`; a usage error
/// is said on stderr and becomes exit status 2.
pub fn prepare(
    paths: &[PathBuf],
    define: &[String],
    mut opts: RunOptions,
) -> Result<(RunOptions, Vec<PathBuf>), ExitCode> {
    for d in define {
        let Some((k, v)) = d.split_once('=') else {
            eprintln!("error: -D expects NAME=VALUE, got {d:?}");
            return Err(ExitCode::from(2));
        };
        opts.defines.insert(k.to_string(), v.to_string());
    }
    let mut scripts = Vec::new();
    for p in paths {
        match run::collect_scripts(p) {
            Ok(mut v) => scripts.append(&mut v),
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok((opts, scripts))
}

pub fn run(args: Args) -> ExitCode {
    let versions: Vec<IpVersion> = match IpVersion::parse(&args.ip_version) {
        Some(v) => vec![v],
        None => IpVersion::ALL.to_vec(),
    };
    let (opts, scripts) = match prepare(&args.paths, &args.define, RunOptions::default()) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for s in &scripts {
        for &v in &versions {
            let opts = RunOptions {
                ip_version: v,
                ..opts.clone()
            };
            let r = run::run_file(s, &opts);
            if versions.len() > 1 && r.ip_version != v {
                // Pinned to another family: it runs (once) in that one.
                continue;
            }
            match r.outcome {
                Outcome::Pass => passed += 1,
                Outcome::Fail(_) => failed += 1,
                Outcome::Skip(_) => skipped += 1,
            }
            if versions.len() > 1 {
                print!("[{}] ", v.name());
            }
            print!("{}", r.render(if args.verbose { None } else { Some(12) }));
        }
    }
    let skip = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    println!("{passed} passed, {failed} failed{skip}");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
