//! Instructions per segment under callgrind: the stable figure on a noisy machine.
//!
//! `cg-bulk STACK MIB MTU BUFFER` sets up a connected pair, then moves MIB MiB client → server
//! inside one function per stack (`measured_bulk_synack` / `measured_bulk_smoltcp`) on a virtual
//! clock (1 µs per loop round), and prints the packets it took. Run under
//! `valgrind --tool=callgrind --toggle-collect='*measured_bulk_*'`, only that function's
//! instructions (both stacks' sides, the link and the application copies) are counted; the
//! `insns` figure does exactly that and divides by the data segments.

use std::path::Path;
use std::process::Command;

use crate::bulk::{Transfer, source, transfer_with};
use crate::pair::Pair;
use crate::report::Row;
use crate::smol_pair::SmolPair;
use crate::synack_pair::{SynackPair, Variant};

fn virtual_clock() -> impl FnMut() -> u64 {
    let mut t = crate::link::now_micros();
    move || {
        t += 1;
        t
    }
}

/// The clock of `cg-cps` and `cg-rtt`: starts at 10 s, later than any wall-clock reading of a
/// run's set-up (so it never goes back), and advances 1 ms per reading (the loops read it once
/// per cycle or round trip). Each run then reads the same times and takes the same steps: the
/// count is exact. A millisecond per cycle lets time pass as in the `cps` figure's run of a
/// second (the timer wheel turns and cascades, timeouts armed during a cycle come due), which
/// 1 µs per reading would hide.
fn fixed_clock() -> impl FnMut() -> u64 {
    let mut t = 10_000_000;
    move || {
        t += 1_000;
        t
    }
}

#[inline(never)]
pub fn measured_bulk_synack(p: &mut SynackPair, total: u64, src: &[u8]) -> Transfer {
    transfer_with(p, total, src, false, virtual_clock())
}

#[inline(never)]
pub fn measured_bulk_smoltcp(p: &mut SmolPair, total: u64, src: &[u8]) -> Transfer {
    transfer_with(p, total, src, false, virtual_clock())
}

/// A `cg-*` command's STACK: smoltcp, or a synack [`Variant`] by name (`synack`,
/// `synack-lite`, `synack-no-ts`, ...).
enum Stack {
    Smoltcp,
    Synack(Variant),
}

fn stack_arg(cmd: &str, args: &[String]) -> Stack {
    match args.first().map_or("synack", String::as_str) {
        "smoltcp" => Stack::Smoltcp,
        name => Variant::parse(name).map(Stack::Synack).unwrap_or_else(|| {
            eprintln!(
                "{cmd}: unknown stack {name:?} (smoltcp, synack, synack-lite, synack-no-{{ts,sack,cubic,ssai,tfo,autotune}})"
            );
            std::process::exit(2);
        }),
    }
}

/// The child's side: `cg-bulk STACK MIB MTU BUFFER`; prints "data_packets ack_packets".
pub fn child(args: &[String]) {
    let arg = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (mib, mtu, buffer) = (arg(1, 64), arg(2, 1500), arg(3, 1024 * 1024));
    let total = (mib as u64) << 20;
    let src = source();
    let t = match stack_arg("cg-bulk", args) {
        Stack::Synack(v) => {
            measured_bulk_synack(&mut SynackPair::connected_as(v, mtu, buffer), total, &src)
        }
        Stack::Smoltcp => measured_bulk_smoltcp(&mut SmolPair::connected(mtu, buffer), total, &src),
    };
    println!("{} {}", t.data_packets, t.ack_packets);
}

/// N cycles of the `cps` figure's loop (connect, 1 byte each way, close) with synack, for
/// `--toggle-collect='*measured_cps_*'`; returns the cycles run.
#[inline(never)]
pub fn measured_cps_synack(v: Variant, n: u64) -> u64 {
    crate::cps::synack_with(v, std::time::Duration::from_secs(3600), n, fixed_clock()).cycles
}

/// The same with smoltcp.
#[inline(never)]
pub fn measured_cps_smoltcp(n: u64) -> u64 {
    crate::cps::smoltcp_with(std::time::Duration::from_secs(3600), n, fixed_clock()).cycles
}

/// `cg-cps STACK N`: N connect/exchange/close cycles (the `cps` figure's loop) for profiling;
/// prints the cycles run.
pub fn cps_child(args: &[String]) {
    loop_child("cg-cps", args, measured_cps_synack, measured_cps_smoltcp);
}

/// `STACK N` for a loop child: runs one stack's `n` repetitions and prints how many it made.
fn loop_child(
    cmd: &str,
    args: &[String],
    synack: fn(Variant, u64) -> u64,
    smoltcp: fn(u64) -> u64,
) {
    let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let made = match stack_arg(cmd, args) {
        Stack::Smoltcp => smoltcp(n),
        Stack::Synack(v) => synack(v, n),
    };
    println!("{made}");
}

/// N 1-byte round trips of the `rtt` figure's ping-pong with synack (after connecting), for
/// `--toggle-collect='*measured_rtt_*'`; returns the round trips made.
#[inline(never)]
pub fn measured_rtt_synack(v: Variant, n: u64) -> u64 {
    let mut p = SynackPair::connected_as(v, 1500, 64 * 1024);
    crate::rtt::pingpong_with(&mut p, n as usize, 0, fixed_clock()).len() as u64
}

/// The same with smoltcp.
#[inline(never)]
pub fn measured_rtt_smoltcp(n: u64) -> u64 {
    let mut p = SmolPair::connected(1500, 64 * 1024);
    crate::rtt::pingpong_with(&mut p, n as usize, 0, fixed_clock()).len() as u64
}

/// `cg-rtt STACK N`: N ping-pong round trips for profiling; prints the round trips made.
pub fn rtt_child(args: &[String]) {
    loop_child("cg-rtt", args, measured_rtt_synack, measured_rtt_smoltcp);
}

/// Runs this binary with `args` under callgrind, counting only inside functions matching
/// `*measured_{what}_*`, into `out`: what it printed, and the instructions counted.
fn callgrind(what: &str, args: &[&str], out: &Path) -> Option<(String, u64)> {
    let exe = std::env::current_exe().ok()?;
    let run = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--toggle-collect=*measured_{what}_*"))
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .args(args)
        .output()
        .ok()?;
    if !run.status.success() {
        eprintln!(
            "insns: valgrind failed for {args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        return None;
    }
    let ir = parse_total(&std::fs::read_to_string(out).ok()?)?;
    Some((String::from_utf8_lossy(&run.stdout).into_owned(), ir))
}

/// Instructions and repetitions of `n` repetitions of one stack's loop (`cg-cps` or
/// `cg-rtt`, counted inside `*measured_{what}_*`) under callgrind.
fn count_loop(what: &str, stack: &str, n: u64, out_dir: &Path) -> Option<(u64, u64)> {
    let out = out_dir.join(format!("callgrind.{stack}.{what}.out"));
    let cmd = format!("cg-{what}");
    let (printed, ir) = callgrind(what, &[&cmd, stack, &n.to_string()], &out)?;
    Some((ir, printed.trim().parse().ok()?))
}

/// Total instructions (`Ir`) in a callgrind output file: its `summary:` or `totals:` line.
pub fn parse_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Instructions, data segments and ACKs of one stack's fixed workload under callgrind.
fn count(stack: &str, mib: usize, mtu: usize, buffer: usize, out_dir: &Path) -> Option<Counts> {
    let out = out_dir.join(format!("callgrind.{stack}.{mtu}.out"));
    let (mib, mtu_s, buffer) = (mib.to_string(), mtu.to_string(), buffer.to_string());
    let (printed, ir) = callgrind("bulk", &["cg-bulk", stack, &mib, &mtu_s, &buffer], &out)?;
    let mut it = printed.split_whitespace();
    let data: u64 = it.next()?.parse().ok()?;
    let acks: u64 = it.next()?.parse().ok()?;
    let copies = Command::new("callgrind_annotate")
        .arg("--inclusive=no")
        .arg(&out)
        .output()
        .ok()
        .map_or(0, |o| {
            libc_copy_instructions(&String::from_utf8_lossy(&o.stdout))
        });
    Some(Counts {
        ir,
        copies,
        data,
        acks,
    })
}

/// Instructions spent in libc's memcpy/memmove/memset, from `callgrind_annotate
/// --inclusive=no` output. Valgrind counts every iteration of a `rep movsb` as an instruction,
/// so large copies (the application's 64 KiB writes and reads) weigh about one instruction per
/// byte, far more than their cost in time; the figure without them compares the stacks' logic.
pub fn libc_copy_instructions(annotate: &str) -> u64 {
    annotate
        .lines()
        .filter(|l| {
            let f = l.rsplit(':').next().unwrap_or("");
            l.contains("libc.so") && (f.starts_with("__mem") || f.starts_with("mem"))
        })
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|n| n.replace(',', "").parse::<u64>().ok())
        .sum()
}

#[derive(Debug, Clone, Copy)]
struct Counts {
    ir: u64,
    copies: u64,
    data: u64,
    acks: u64,
}

pub fn valgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn run(out_dir: &Path) -> Vec<Row> {
    let (mib, buffer) = (64usize, 1024 * 1024usize);
    let mut rows = Vec::new();
    for mtu in [1500usize, 65535] {
        let s = count("synack", mib, mtu, buffer, out_dir);
        let m = count("smoltcp", mib, mtu, buffer, out_dir);
        let per_seg = |r: Option<Counts>| r.map(|c| c.ir as f64 / c.data as f64);
        let logic = |r: Option<Counts>| r.map(|c| (c.ir - c.copies) as f64 / c.data as f64);
        let desc = |r: Option<Counts>| {
            r.map_or("n/a".to_string(), |c| {
                format!(
                    "{} Ir ({} in libc memcpy/memset), {} data segments, {} ACKs",
                    c.ir, c.copies, c.data, c.acks
                )
            })
        };
        let note = format!(
            "{mib} MiB, buffers {} KiB, virtual clock; both sides + link + app copies; synack: {}; smoltcp: {}",
            buffer / 1024,
            desc(s),
            desc(m)
        );
        rows.push(
            Row::lower(
                &format!("insns per data segment, MTU {mtu}"),
                "instructions",
                per_seg(s),
                per_seg(m),
                None,
            )
            .note(note),
        );
        rows.push(Row::lower(
            &format!("insns per data segment without libc memcpy/memset, MTU {mtu}"),
            "instructions",
            logic(s),
            logic(m),
            None,
        ));
    }
    // The handshake path: a whole short connection, six packets.
    let n = 10_000;
    let s = count_loop("cps", "synack", n, out_dir);
    let m = count_loop("cps", "smoltcp", n, out_dir);
    let per_cycle = |r: Option<(u64, u64)>| r.map(|(ir, c)| ir as f64 / c.max(1) as f64);
    let desc = |r: Option<(u64, u64)>| {
        r.map_or("n/a".to_string(), |(ir, c)| format!("{ir} Ir / {c} cycles"))
    };
    rows.push(
        Row::lower(
            "insns per cps cycle (connect, 1 B each way, close)",
            "instructions",
            per_cycle(s),
            per_cycle(m),
            None,
        )
        .note(format!(
            "{n} cycles of the cps loop, both ends, the link, and setting up and dropping the stacks (synack's hold the TIME-WAIT connections); synack: {}; smoltcp: {}",
            desc(s),
            desc(m)
        )),
    );
    // A round trip of one byte each way: two data segments carrying the ACKs.
    let n = 20_000;
    let s = count_loop("rtt", "synack", n, out_dir);
    let m = count_loop("rtt", "smoltcp", n, out_dir);
    rows.push(
        Row::lower(
            "insns per 1-byte round trip (rtt)",
            "instructions",
            per_cycle(s),
            per_cycle(m),
            None,
        )
        .note(format!(
            "{n} ping-pong round trips after connecting, both ends and the link; synack: {}; smoltcp: {}",
            desc(s).replace("cycles", "round trips"),
            desc(m).replace("cycles", "round trips")
        )),
    );
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_libc_copies_from_annotate_output() {
        let text = "38,234,587 (40.60%)  ./string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [/usr/lib/x86_64-linux-gnu/libc.so.6]\n\
             6,830,006 ( 7.25%)  crates/synack/src/wire/checksum.rs:synack::wire::tcp::Packet<T>::verify_checksum\n\
             2,225,564 ( 2.36%)  ./string/../sysdeps/x86_64/multiarch/memset-vec-unaligned-erms.S:__memset_avx2_unaligned_erms [/usr/lib/x86_64-linux-gnu/libc.so.6]\n\
             22,009,684 ( 1.97%)  ./malloc/./malloc/malloc.c:_int_malloc [/usr/lib/x86_64-linux-gnu/libc.so.6]\n";
        assert_eq!(libc_copy_instructions(text), 38_234_587 + 2_225_564);
    }

    #[test]
    fn reads_callgrind_totals() {
        let text = "events: Ir\nfn=foo\n1 5\nsummary: 123456789\n";
        assert_eq!(parse_total(text), Some(123456789));
        assert_eq!(parse_total("totals: 42 7\n"), Some(42));
        assert_eq!(parse_total("events: Ir\n"), None);
    }

    #[test]
    fn measured_workload_is_deterministic() {
        let src = source();
        let a = measured_bulk_synack(&mut SynackPair::connected(1500, 64 * 1024), 4 << 20, &src);
        let b = measured_bulk_synack(&mut SynackPair::connected(1500, 64 * 1024), 4 << 20, &src);
        assert_eq!(
            (a.data_packets, a.ack_packets),
            (b.data_packets, b.ack_packets)
        );
        let c = measured_bulk_smoltcp(&mut SmolPair::connected(1500, 64 * 1024), 4 << 20, &src);
        assert!(c.data_packets >= (4 << 20) / 1460);
    }
}
