//! The back-quoted shell commands of a script. No shell runs: the handful of command forms the
//! scripts use (SUBSET.md §7) are recognised and turned into sysctl settings for the run;
//! anything else is an error, so a new dependency is noticed.

use std::path::Path;

/// What a command asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Commands {
    /// `(name, value)` with the name relative to `net.ipv4.` (`tcp_rmem`), in order.
    pub sysctls: Vec<(String, String)>,
    /// Commands recognised and deliberately not acted on, with the reason.
    pub ignored: Vec<String>,
    /// `nstat` calls, in order: `None` for `nstat > /dev/null` (reset the counters' baseline);
    /// `Some(name)` for `nstat | grep NAME`, which succeeds only if counter NAME (nstat's
    /// name, e.g. `TcpExtOutOfWindowIcmps`) grew since the baseline (nstat omits zeros).
    pub nstat: Vec<Option<String>>,
}

/// Interprets the text of a back-quoted block. `dir` is the script's directory (scripts call
/// `./defaults.sh` or `../common/defaults.sh` relative to it).
pub fn interpret(text: &str, dir: &Path, out: &mut Commands) -> Result<(), String> {
    interpret_depth(text, dir, out, 0)
}

fn interpret_depth(text: &str, dir: &Path, out: &mut Commands, depth: u32) -> Result<(), String> {
    if depth > 4 {
        return Err("shell scripts nest too deeply".into());
    }
    // A backslash at the end of a line continues the command.
    let joined = text.replace("\\\n", " ");
    for raw in joined.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = split_words(line)?;
        // Output redirections do not matter here.
        let words: Vec<&str> = words
            .iter()
            .map(String::as_str)
            .take_while(|w| !w.starts_with('>') && !w.starts_with("2>"))
            .collect();
        let Some(&cmd) = words.first() else { continue };
        if cmd == "nstat" {
            let grep = words.iter().position(|w| *w == "grep");
            match (words.get(1), grep.and_then(|i| words.get(i + 1))) {
                (None, None) => out.nstat.push(None),
                (Some(&"|"), Some(name)) => out.nstat.push(Some(name.to_string())),
                _ => return Err(format!("unsupported nstat command: {line}")),
            }
            continue;
        }
        match cmd {
            c if c.ends_with("defaults.sh") => {
                let path = dir.join(c);
                let body = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let sub = path.parent().unwrap_or(dir).to_path_buf();
                interpret_depth(&body, &sub, out, depth + 1)?;
            }
            "sysctl" => {
                for w in words[1..].iter().filter(|w| !w.starts_with('-')) {
                    let (name, value) = w
                        .split_once('=')
                        .ok_or_else(|| format!("sysctl without a value: {w}"))?;
                    out.sysctls.push((strip_ipv4(name)?, value.to_string()));
                }
            }
            c if c.ends_with("set_sysctls.py") => {
                for w in &words[1..] {
                    let (path, value) = w
                        .split_once('=')
                        .ok_or_else(|| format!("set_sysctls.py without a value: {w}"))?;
                    let name = path
                        .strip_prefix("/proc/sys/")
                        .ok_or_else(|| format!("not a /proc/sys path: {path}"))?
                        .replace('/', ".");
                    out.sysctls.push((strip_ipv4(&name)?, value.to_string()));
                }
            }
            c if c.starts_with("/tmp/sysctl_restore_") => {
                // Restores what set_sysctls.py changed; every run starts from a fresh stack.
            }
            "ip" if words.get(1) == Some(&"tcp_metrics") => out
                .ignored
                .push("ip tcp_metrics: synack keeps no per-destination metrics".into()),
            "tc" => out
                .ignored
                .push(format!("{line}: segments leave as soon as TCP sends them")),
            "ethtool" => out.ignored.push(format!(
                "{line}: synack sends MSS-sized segments; the runner aggregates them"
            )),
            _ => return Err(format!("unsupported shell command: {line}")),
        }
    }
    Ok(())
}

fn strip_ipv4(name: &str) -> Result<String, String> {
    name.strip_prefix("net.ipv4.")
        .map(str::to_string)
        .ok_or_else(|| format!("unsupported sysctl {name} (only net.ipv4.*)"))
}

/// Splits a command line into words: double quotes group, `$((a*b))` is evaluated.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '$' if chars.peek() == Some(&'(') => {
                let mut expr = String::new();
                let mut depth = 0;
                for c in chars.by_ref() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ if depth == 2 => expr.push(c),
                        _ => return Err(format!("unsupported $(...) in: {line}")),
                    }
                }
                cur.push_str(&arith(&expr)?.to_string());
                in_word = true;
            }
            // A `#` that begins a word begins a comment to the end of the line (sh).
            '#' if !quoted && !in_word => break,
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err(format!("unterminated quote in: {line}"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `15*1024*1024`: products of integers, the only arithmetic the scripts use.
fn arith(expr: &str) -> Result<u64, String> {
    expr.split('*').try_fold(1u64, |acc, f| {
        let v: u64 = f
            .trim()
            .parse()
            .map_err(|_| format!("unsupported arithmetic: {expr}"))?;
        acc.checked_mul(v)
            .ok_or_else(|| format!("overflow in: {expr}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_lines_with_quotes_arithmetic_and_redirections() {
        let mut c = Commands::default();
        let text = "sysctl -q net.ipv4.tcp_rmem=\"4096 540000 $((15*1024*1024))\"\n\
                    sysctl -q net.ipv4.tcp_early_retrans=4 net.ipv4.tcp_recovery=1\n\
                    sysctl -q net.ipv4.tcp_notsent_lowat=4294967295 > /dev/null 2>&1\n\
                    sysctl -q net.ipv4.tcp_ecn=1  # fully enabled\n\
                    sysctl -q net.ipv4.tcp_dsack=\"1#2\"\n";
        interpret(text, Path::new("."), &mut c).unwrap();
        assert_eq!(
            c.sysctls,
            vec![
                ("tcp_rmem".to_string(), "4096 540000 15728640".to_string()),
                ("tcp_early_retrans".to_string(), "4".to_string()),
                ("tcp_recovery".to_string(), "1".to_string()),
                ("tcp_notsent_lowat".to_string(), "4294967295".to_string()),
                ("tcp_ecn".to_string(), "1".to_string()),
                ("tcp_dsack".to_string(), "1#2".to_string()),
            ]
        );
    }

    #[test]
    fn set_sysctls_py_and_restore_line() {
        let mut c = Commands::default();
        let text = "../common/set_sysctls.py /proc/sys/net/ipv4/tcp_timestamps=0\n\
                    /tmp/sysctl_restore_${PPID}.sh";
        interpret(text, Path::new("."), &mut c).unwrap();
        assert_eq!(c.sysctls, vec![("tcp_timestamps".into(), "0".into())]);
    }

    #[test]
    fn unknown_commands_are_errors() {
        let mut c = Commands::default();
        let e = interpret("rm -rf /tmp/x", Path::new("."), &mut c).unwrap_err();
        assert!(e.contains("unsupported shell command"), "{e}");
        let e = interpret("sysctl -q net.core.rmem_max=1", Path::new("."), &mut c).unwrap_err();
        assert!(e.contains("only net.ipv4"), "{e}");
    }
}
