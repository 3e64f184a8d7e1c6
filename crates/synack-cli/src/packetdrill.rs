//! `synack packetdrill`: run packetdrill scripts against synack in virtual time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use synack_packetdrill::run::{self, IpVersion, Outcome, RunOptions};

#[derive(Debug, clap::Args)]
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

pub fn run(args: Args) -> ExitCode {
    let mut defines = HashMap::new();
    for d in &args.define {
        let Some((k, v)) = d.split_once('=') else {
            eprintln!("error: -D expects NAME=VALUE, got {d:?}");
            return ExitCode::from(2);
        };
        defines.insert(k.to_string(), v.to_string());
    }
    let versions: Vec<IpVersion> = match IpVersion::parse(&args.ip_version) {
        Some(v) => vec![v],
        None => IpVersion::ALL.to_vec(),
    };
    let mut scripts = Vec::new();
    for p in &args.paths {
        match run::collect_scripts(p) {
            Ok(mut v) => scripts.append(&mut v),
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        }
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for s in &scripts {
        for &v in &versions {
            let opts = RunOptions {
                defines: defines.clone(),
                ip_version: v,
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
