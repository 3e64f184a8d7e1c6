//! Parser tests: every shared script parses, facts about a few of them, and small inline snippets
//! for each construct and error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use synack_packetdrill::ast::*;
use synack_packetdrill::{ParseError, parse};

mod common;

fn no_defines() -> HashMap<String, String> {
    HashMap::new()
}

/// The `-D` symbols the upstream runners pass for IPv4 runs (README.md).
fn ipv4_defines() -> HashMap<String, String> {
    HashMap::from([
        ("TFO_COOKIE".to_string(), "3021b9d889017eeb".to_string()),
        ("CODE".to_string(), "host_unreachable".to_string()),
    ])
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|x| x == "pkt") {
            out.push(path);
        }
    }
}

fn parse_file(rel: &str, defines: &HashMap<String, String>) -> Option<Script> {
    let dir = common::suite_dir(&format!("the facts about {rel}"))?;
    let path = dir.join(rel);
    let text = std::fs::read_to_string(&path).expect("read script");
    Some(parse(rel, &text, defines).unwrap_or_else(|e| panic!("{e}")))
}

fn ok(src: &str) -> Script {
    parse("t.pkt", src, &no_defines()).unwrap_or_else(|e| panic!("{e}"))
}

fn err(src: &str) -> ParseError {
    match parse("t.pkt", src, &no_defines()) {
        Ok(s) => panic!("expected an error, parsed {s:?}"),
        Err(e) => e,
    }
}

fn only_event(src: &str) -> Event {
    let mut s = ok(src);
    assert_eq!(s.events.len(), 1, "{s:?}");
    s.events.remove(0)
}

fn tcp(ev: &Event) -> (&Packet, &TcpPacket) {
    match &ev.action {
        Action::Packet(p) => match &p.body {
            PacketBody::Tcp(t) => (p, t),
            other => panic!("not TCP: {other:?}"),
        },
        other => panic!("not a packet: {other:?}"),
    }
}

fn syscall(ev: &Event) -> &Syscall {
    match &ev.action {
        Action::Syscall(s) => s,
        other => panic!("not a syscall: {other:?}"),
    }
}

fn word(s: &str) -> Expr {
    Expr::Word(s.to_string())
}

// ---------------------------------------------------------------------------------------------
// The shared scripts

#[test]
fn every_shared_script_parses() {
    let Some(dir) = common::suite_dir("every_shared_script_parses") else {
        return;
    };
    let mut files = Vec::new();
    walk(&dir, &mut files);
    assert!(files.len() >= 39, "only {} scripts found", files.len());
    let ipv6 = HashMap::from([("TFO_COOKIE".to_string(), "c1d1e9742a47a9bc".to_string())]);
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read script");
        let name = path.display().to_string();
        for defines in [&ipv4_defines(), &ipv6] {
            match parse(&name, &text, defines) {
                Ok(script) => assert!(!script.events.is_empty(), "{name}: no events"),
                Err(e) => failures.push(e.to_string()),
            }
        }
        // Scripts outside later/ need no -D symbols at all.
        if !name.contains("/later/") {
            if let Err(e) = parse(&name, &text, &no_defines()) {
                failures.push(e.to_string());
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("parsed {} scripts", files.len());
}

#[test]
fn blocking_accept_facts() {
    let Some(s) = parse_file(
        "google/gtests/net/tcp/blocking/blocking-accept.pkt",
        &no_defines(),
    ) else {
        return;
    };
    assert!(s.options.is_empty());
    assert_eq!(s.init.as_ref().unwrap().text, "../common/defaults.sh");
    assert!(s.cleanup.is_none());
    assert_eq!(s.events.len(), 10);
    assert_eq!(s.events[0].time, TimeSpec::At(Time::Absolute(0)));
    assert_eq!(
        s.events[4].time,
        TimeSpec::Blocking {
            start: Time::Relative(0),
            end: Time::Absolute(200_000)
        }
    );
    assert_eq!(syscall(&s.events[4]).name, "accept");
    // `+.1 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>`
    let ev = &s.events[5];
    assert_eq!(ev.time, TimeSpec::At(Time::Relative(100_000)));
    let (p, t) = tcp(ev);
    assert_eq!(p.direction, Direction::Inbound);
    assert_eq!(p.ip, IpInfo::default());
    assert_eq!(
        t.flags,
        Flags {
            syn: true,
            ..Flags::default()
        }
    );
    assert_eq!(
        t.seq,
        SeqRange {
            start: 0,
            end: 0,
            len: 0
        }
    );
    assert_eq!((t.ack, t.win, t.urg), (None, Some(32792), None));
    assert_eq!(
        t.options,
        Some(TcpOptions::List(vec![
            TcpOption::Mss(1000),
            TcpOption::Nop,
            TcpOption::WindowScale(7)
        ]))
    );
    // `+0 > P. 1:2001(2000) ack 1`
    let (p, t) = tcp(&s.events[9]);
    assert_eq!(p.direction, Direction::Outbound);
    assert!(t.flags.psh && t.flags.ack && !t.flags.syn);
    assert_eq!(t.seq.len, 2000);
    assert_eq!(t.ack, Some(1));
    assert_eq!(t.options, None);
    let w = syscall(&s.events[8]);
    assert_eq!(w.args, vec![Expr::Int(4), Expr::Ellipsis, Expr::Int(2000)]);
    assert_eq!(w.result, Expr::Int(2000));
}

#[test]
fn option_lines_and_cleanup_facts() {
    let Some(s) = parse_file(
        "google/gtests/net/tcp/ts_recent/fin_tsval.pkt",
        &no_defines(),
    ) else {
        return;
    };
    let opts: Vec<_> = s
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.value.as_deref()))
        .collect();
    assert_eq!(
        opts,
        vec![
            ("tcp_ts_tick_usecs", Some("1000")),
            ("tolerance_usecs", Some("7000"))
        ]
    );
    let Some(s) = parse_file(
        "google/gtests/net/packetdrill/tests/packet-timeout.pkt",
        &no_defines(),
    ) else {
        return;
    };
    assert!(s.init.as_ref().unwrap().text.contains("tcp_syn_retries=1"));
    assert_eq!(
        s.cleanup.as_ref().unwrap().text,
        "/tmp/sysctl_restore_${PPID}.sh"
    );
    let c = syscall(&s.events[1]);
    assert_eq!(c.errno.as_deref(), Some("ETIMEDOUT"));
    assert_eq!(c.note.as_deref(), Some("Connection Timed Out"));
}

#[test]
fn later_define_facts() {
    let Some(s) = parse_file(
        "later/google/gtests/net/tcp/fastopen/server/icmp-before-accept.pkt",
        &ipv4_defines(),
    ) else {
        return;
    };
    let (_, syn) = tcp(&s.events[4]);
    assert_eq!(
        syn.options,
        Some(TcpOptions::List(vec![
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Nop,
            TcpOption::Nop,
            TcpOption::FastOpenExp(Some(vec![0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb])),
        ]))
    );
    let icmps: Vec<_> = s
        .events
        .iter()
        .filter_map(|e| match &e.action {
            Action::Packet(Packet {
                body: PacketBody::Icmp(i),
                ..
            }) => Some(i.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(icmps.len(), 2);
    assert_eq!(icmps[1].code.as_deref(), Some("host_unreachable"));
    assert!(
        s.events
            .iter()
            .any(|e| matches!(&e.action, Action::Command(c) if c.text.starts_with("nstat")))
    );
}

// ---------------------------------------------------------------------------------------------
// Inline snippets: constructs

#[test]
fn time_specs() {
    let s = ok("0 close(3) = 0\n\
                +.1 close(3) = 0\n\
                1.5 close(3) = 0\n\
                +0.600~+0.700 > . 5:5(0) ack 1\n\
                * > F. 1:1(0) ack 12\n\
                +.1...0.200 read(4, ..., 2000) = 2000\n\
                +.002 ... 0.004 connect(4, ..., ...) = 0\n\
                +0 ... .02 close(3) = 0\n\
                +0...30 connect(3, ..., ...) = -1 ETIMEDOUT (Connection Timed Out)\n");
    let times: Vec<_> = s.events.iter().map(|e| e.time).collect();
    use Time::*;
    assert_eq!(
        times,
        vec![
            TimeSpec::At(Absolute(0)),
            TimeSpec::At(Relative(100_000)),
            TimeSpec::At(Absolute(1_500_000)),
            TimeSpec::Window(Relative(600_000), Relative(700_000)),
            TimeSpec::Any,
            TimeSpec::Blocking {
                start: Relative(100_000),
                end: Absolute(200_000)
            },
            TimeSpec::Blocking {
                start: Relative(2_000),
                end: Absolute(4_000)
            },
            TimeSpec::Blocking {
                start: Relative(0),
                end: Absolute(20_000)
            },
            TimeSpec::Blocking {
                start: Relative(0),
                end: Absolute(30_000_000)
            },
        ]
    );
    assert_eq!(s.events[1].pos.line, 2);
}

#[test]
fn comments_options_init_cleanup() {
    let s = ok("// leading comment\n\
                --tolerance_usecs=10000\n\
                --strict_segments\n\
                /* block\n comment */\n\
                `./defaults.sh\nsysctl -q net.ipv4.tcp_invalid_ratelimit=0\n`\n\
                0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // trailing\n\
                +0 `sysctl -q net.ipv4.tcp_ecn=1`\n\
                +0 %{\nassert tcpi_snd_cwnd == 10, tcpi_snd_cwnd\n}%\n\
                `/tmp/sysctl_restore_${PPID}.sh`\n");
    assert_eq!(s.options.len(), 2);
    assert_eq!(s.options[0].pos, Pos { line: 2, col: 1 });
    assert_eq!(s.options[1].name, "strict_segments");
    assert_eq!(s.options[1].value, None);
    let init = s.init.unwrap();
    assert_eq!(
        init.text,
        "./defaults.sh\nsysctl -q net.ipv4.tcp_invalid_ratelimit=0\n"
    );
    assert_eq!(init.pos, Pos { line: 6, col: 1 });
    assert_eq!(s.events.len(), 3);
    assert!(
        matches!(&s.events[1].action, Action::Command(c) if c.text == "sysctl -q net.ipv4.tcp_ecn=1")
    );
    assert_eq!(
        s.events[2].action,
        Action::Code("\nassert tcpi_snd_cwnd == 10, tcpi_snd_cwnd\n".to_string())
    );
    assert_eq!(s.cleanup.unwrap().text, "/tmp/sysctl_restore_${PPID}.sh");
}

#[test]
fn packet_flags() {
    let cases = [
        (
            "S",
            Flags {
                syn: true,
                ..Default::default()
            },
        ),
        (
            "S.",
            Flags {
                syn: true,
                ack: true,
                ..Default::default()
            },
        ),
        (
            ".",
            Flags {
                ack: true,
                ..Default::default()
            },
        ),
        (
            "FP.",
            Flags {
                fin: true,
                psh: true,
                ack: true,
                ..Default::default()
            },
        ),
        (
            "R",
            Flags {
                rst: true,
                ..Default::default()
            },
        ),
        (
            "SEW",
            Flags {
                syn: true,
                ece: true,
                cwr: true,
                ..Default::default()
            },
        ),
        (
            "U.A",
            Flags {
                urg: true,
                ack: true,
                ae: true,
                ..Default::default()
            },
        ),
        (
            ".5",
            Flags {
                ack: true,
                ae: true,
                ece: true,
                ..Default::default()
            },
        ),
        ("-", Flags::default()),
    ];
    for (text, want) in cases {
        let ev = only_event(&format!("+0 < {text} 1:1(0) win 100"));
        assert_eq!(tcp(&ev).1.flags, want, "{text}");
    }
}

#[test]
fn packet_fields_and_options() {
    let ev = only_event(
        "+0 < P. 1001:2001(1000) ack 1 win 257 urg 3 <nop, nop,\n  sack 1:2 3:4\t5:6, TS val 1 ecr 0, mss 1460,sackOK,wscale 8,eol, FO abcd, FOEXP, FO, md5 00ff>",
    );
    let (p, t) = tcp(&ev);
    assert_eq!(p.direction, Direction::Inbound);
    assert_eq!(
        t.seq,
        SeqRange {
            start: 1001,
            end: 2001,
            len: 1000
        }
    );
    assert_eq!((t.ack, t.win, t.urg), (Some(1), Some(257), Some(3)));
    assert_eq!(
        t.options,
        Some(TcpOptions::List(vec![
            TcpOption::Nop,
            TcpOption::Nop,
            TcpOption::Sack(vec![(1, 2), (3, 4), (5, 6)]),
            TcpOption::Timestamp { val: 1, ecr: 0 },
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::WindowScale(8),
            TcpOption::Eol,
            TcpOption::FastOpen(Some(vec![0xab, 0xcd])),
            TcpOption::FastOpenExp(None),
            TcpOption::FastOpen(None),
            TcpOption::Md5(vec![0x00, 0xff]),
        ]))
    );
    let ev = only_event("+0 > S. 0:0(0) ack 1 <...>");
    assert_eq!(tcp(&ev).1.options, Some(TcpOptions::Any));
    // Cookies that start with a digit, and a wide seq near 2^32.
    let ev = only_event("+0 < S 4294967295:9(10) win 1 <FO 1234abcd5678dcba,nop,nop>");
    let t = tcp(&ev).1;
    assert_eq!(t.seq.end, 9);
    assert_eq!(
        t.options,
        Some(TcpOptions::List(vec![
            TcpOption::FastOpen(Some(vec![0x12, 0x34, 0xab, 0xcd, 0x56, 0x78, 0xdc, 0xba])),
            TcpOption::Nop,
            TcpOption::Nop,
        ]))
    );
}

#[test]
fn ip_info() {
    let ev = only_event("+0 > [ect0] P. 1:1001(1000) ack 1");
    let (p, t) = tcp(&ev);
    assert_eq!(p.ip.ecn, Some(Ecn::Ect0));
    assert!(t.flags.psh);
    let ev = only_event("+0 < [ce] (tos 0x10) [ttl 64] . 1:1(0) ack 1 win 10");
    let (p, _) = tcp(&ev);
    assert_eq!(
        p.ip,
        IpInfo {
            ecn: Some(Ecn::Ce),
            tos: Some(0x10),
            ttl: Some(64)
        }
    );
    let ev = only_event("+0 > [noecn, ttl 2] . 1:1(0)");
    assert_eq!(tcp(&ev).0.ip.ecn, Some(Ecn::NoEcn));
}

#[test]
fn icmp_lines() {
    let s = ok(
        "+0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]\n\
                +0 < icmp packet_too_big mtu 1280 [1:1461(1460)]\n\
                +0 < icmp unreachable [5000:6000(1000)]\n\
                +0 < icmp unreachable frag_needed mtu 800\n",
    );
    let icmp: Vec<_> = s
        .events
        .iter()
        .map(|e| match &e.action {
            Action::Packet(Packet {
                body: PacketBody::Icmp(i),
                ..
            }) => i.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        icmp[0],
        IcmpPacket {
            kind: "unreachable".into(),
            code: Some("frag_needed".into()),
            mtu: Some(1200),
            quoted: Some(SeqRange {
                start: 1,
                end: 1461,
                len: 1460
            })
        }
    );
    assert_eq!(icmp[1].kind, "packet_too_big");
    assert_eq!(icmp[1].code, None);
    assert_eq!(icmp[1].mtu, Some(1280));
    assert_eq!(icmp[2].code, None);
    assert_eq!(icmp[2].quoted.unwrap().start, 5000);
    assert_eq!(icmp[3].quoted, None);
}

#[test]
fn syscall_results_errnos_notes() {
    let s = ok("+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                +0 write(4, ..., 100) = -1 EPIPE(Broken Pipe)\n\
                +0 write(4, ..., 100) = -1 EPIPE (Broken pipe)\n\
                +0 socket(..., SOCK_STREAM, IPPROTO_UDP) = -1\n\
                +0 connect(4, ..., ...) = -1 (weird: note, it's (nested))\n\
                +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0x2\n\
                +0 getsockopt(3, SOL_TCP, TCP_MAXSEG, [1100], [4]) = 0\n\
                +0 foo() = 0\n");
    let calls: Vec<_> = s.events.iter().map(syscall).collect();
    assert_eq!(calls[0].result, Expr::Int(3));
    assert_eq!(calls[1].result, Expr::Int(-1));
    assert_eq!(calls[1].errno.as_deref(), Some("EPIPE"));
    assert_eq!(calls[1].note.as_deref(), Some("Broken Pipe"));
    assert_eq!(calls[2].note.as_deref(), Some("Broken pipe"));
    assert_eq!(
        (calls[3].errno.as_ref(), calls[3].note.as_ref()),
        (None, None)
    );
    assert_eq!(calls[4].errno, None);
    assert_eq!(calls[4].note.as_deref(), Some("weird: note, it's (nested)"));
    assert_eq!(
        calls[5].args[2],
        Expr::BitOr(vec![word("O_RDWR"), word("O_NONBLOCK")])
    );
    assert_eq!(calls[5].result, Expr::Int(2));
    assert_eq!(calls[6].args[3], Expr::Array(vec![Expr::Int(1100)]));
    assert!(calls[7].args.is_empty());
}

#[test]
fn sendmsg_struct_held_shape() {
    let ev = only_event(
        "+0 sendmsg(4, {msg_name(...)=...,\n\
         \x20              msg_iov(2)=[{..., 1000}, {..., 460}],\n\
         \x20              msg_flags=0}, MSG_MORE) = 1460",
    );
    let c = syscall(&ev);
    assert_eq!(c.name, "sendmsg");
    assert_eq!(c.args.len(), 3);
    let iov = |len| {
        Expr::Struct(vec![
            Field {
                name: None,
                index: None,
                value: Expr::Ellipsis,
            },
            Field {
                name: None,
                index: None,
                value: Expr::Int(len),
            },
        ])
    };
    assert_eq!(
        c.args[1],
        Expr::Struct(vec![
            Field {
                name: Some("msg_name".into()),
                index: Some(Expr::Ellipsis),
                value: Expr::Ellipsis
            },
            Field {
                name: Some("msg_iov".into()),
                index: Some(Expr::Int(2)),
                value: Expr::Array(vec![iov(1000), iov(460)])
            },
            Field {
                name: Some("msg_flags".into()),
                index: None,
                value: Expr::Int(0)
            },
        ])
    );
    assert_eq!(c.args[2], word("MSG_MORE"));
    assert_eq!(c.result, Expr::Int(1460));
}

#[test]
fn poll_struct_and_strings() {
    let ev = only_event(
        "+0...0.010 poll([{fd=3,\n events=POLLIN|POLLOUT|POLLERR,\n revents=POLLOUT}], 1, 100) = 1",
    );
    let c = syscall(&ev);
    assert_eq!(
        c.args[0],
        Expr::Array(vec![Expr::Struct(vec![
            Field {
                name: Some("fd".into()),
                index: None,
                value: Expr::Int(3)
            },
            Field {
                name: Some("events".into()),
                index: None,
                value: Expr::BitOr(vec![word("POLLIN"), word("POLLOUT"), word("POLLERR")])
            },
            Field {
                name: Some("revents".into()),
                index: None,
                value: word("POLLOUT")
            },
        ])])
    );
    let ev =
        only_event("+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN_KEY, \"0123456789abcdef\", 16) = 0");
    assert_eq!(
        syscall(&ev).args[3],
        Expr::Str("0123456789abcdef".to_string())
    );
    // A bare word in a struct may start an `A|B` value.
    let ev = only_event("+0 f({A|B, x=1}) = 0");
    let Expr::Struct(fields) = &syscall(&ev).args[0] else {
        panic!()
    };
    assert_eq!(fields[0].value, Expr::BitOr(vec![word("A"), word("B")]));
}

#[test]
fn defines_substitute_words() {
    let defines = HashMap::from([
        ("TFO_COOKIE".to_string(), "c1d1e9742a47a9bc".to_string()),
        ("FD".to_string(), "7".to_string()),
        ("CODE".to_string(), "host_unreachable".to_string()),
    ]);
    let s = parse(
        "d.pkt",
        "+0 < S 0:10(10) win 1 <FO TFO_COOKIE>\n+0 close(FD) = 0\n+0 < icmp unreachable CODE\n",
        &defines,
    )
    .unwrap();
    assert_eq!(
        tcp(&s.events[0]).1.options,
        Some(TcpOptions::List(vec![TcpOption::FastOpen(Some(vec![
            0xc1, 0xd1, 0xe9, 0x74, 0x2a, 0x47, 0xa9, 0xbc
        ]))]))
    );
    assert_eq!(syscall(&s.events[1]).args, vec![Expr::Int(7)]);
    assert!(matches!(
        &s.events[2].action,
        Action::Packet(Packet { body: PacketBody::Icmp(i), .. }) if i.code.as_deref() == Some("host_unreachable")
    ));
}

// ---------------------------------------------------------------------------------------------
// Inline snippets: errors

#[test]
fn error_bad_seq_range() {
    let e = err("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n  +0 < S 1:5(3) win 100\n");
    assert_eq!(e.pos, Pos { line: 2, col: 12 });
    assert_eq!(
        e.to_string(),
        "t.pkt:2:12: expected sequence range end 4 (= start 1 + len 3), found 5"
    );
}

#[test]
fn error_missing_equals() {
    let e = err("+0 write(4, ..., 10) 10\n");
    assert_eq!(
        e.to_string(),
        "t.pkt:1:22: expected '=' and the expected result after write(...), found '10'"
    );
}

#[test]
fn error_unknown_token() {
    let e = err("+0 close(3) = 0\n+0 close(3) $ 0\n");
    assert_eq!(e.to_string(), "t.pkt:2:13: expected a token, found '$'");
    let e = err("+0 close(3) = 0 # not a comment\n");
    assert_eq!(e.to_string(), "t.pkt:1:17: expected a token, found '#'");
}

#[test]
fn error_unterminated_backquote() {
    let e = err("0 close(3) = 0\n\n  `/tmp/restore.sh\n");
    assert_eq!(
        e.to_string(),
        "t.pkt:3:3: expected '`' closing the command, found end of file"
    );
}

#[test]
fn error_unknown_tcp_option() {
    let e = err("+0 < S 0:0(0) win 1 <mss 1460, bogus 3>\n");
    assert_eq!(
        e.to_string(),
        "t.pkt:1:32: expected a TCP option (nop, eol, mss, wscale, sackOK, sack, TS, FO, FOEXP, md5), found 'bogus'"
    );
}

#[test]
fn error_misc() {
    // Option line after an event.
    let e = err("0 close(3) = 0\n--mss=1000\n");
    assert_eq!(e.pos, Pos { line: 2, col: 1 });
    assert!(
        e.to_string()
            .contains("option lines are only allowed at the top")
    );
    // Missing time.
    let e = err("close(3) = 0\n");
    assert_eq!(
        e.to_string(),
        "t.pkt:1:1: expected a time (such as 0, 0.100, +.1, +1 or *), found 'close'"
    );
    // Blocking spec on a packet.
    let e = err("+0...1 > S 0:0(0)\n");
    assert_eq!(e.pos, Pos { line: 1, col: 8 });
    // Bad flags.
    let e = err("+0 > x 0:0(0)\n");
    assert_eq!(
        e.to_string(),
        "t.pkt:1:6: expected TCP flags (such as S, S., P., F., R, ., -) or 'icmp', found 'x'"
    );
    // Out-of-range values.
    let e = err("+0 < S 0:0(0) win 1 <mss 70000>\n");
    assert_eq!(
        e.to_string(),
        "t.pkt:1:26: expected an MSS value (0-65535) in range, found '70000'"
    );
    let e = err("+0 < . 1:1(0) ack -1 win 1\n");
    assert_eq!(e.pos, Pos { line: 1, col: 19 });
    // Odd-length cookie, duplicate field, cleanup not last, unterminated things.
    assert!(
        err("+0 < S 0:0(0) <FO abc>")
            .to_string()
            .contains("hex byte string")
    );
    assert!(
        err("+0 < . 1:1(0) win 1 win 2")
            .to_string()
            .contains("at most once")
    );
    assert!(
        err("0 close(3) = 0\n`x`\n+0 close(3) = 0\n")
            .to_string()
            .contains("end of file after the final")
    );
    assert_eq!(err("+0 %{ x\n").pos, Pos { line: 1, col: 4 });
    assert_eq!(err("/* x\n").pos, Pos { line: 1, col: 1 });
    assert_eq!(err("+0 write(4, \"x\n").pos, Pos { line: 1, col: 13 });
    assert_eq!(
        err("+0 close(3) = -1 EIO (note").pos,
        Pos { line: 1, col: 22 }
    );
    assert!(err("+0 f([1, 2) = 0").to_string().contains("',' or ']'"));
    assert!(err("+0 f({a=1 b}) = 0").to_string().contains("',' or '}'"));
    assert!(err("+0 < S 0:0 win 1").to_string().contains("'('"));
    assert!(err("+0 < S 0:0(0) <sack 1>").to_string().contains("':'"));
    assert!(
        err("+0 < S 0:0(0) <TS val 1>")
            .to_string()
            .contains("'ecr'")
    );
    assert!(err("+0 < icmp").to_string().contains("ICMP type"));
    assert!(
        err("99999999999999999999 close(3) = 0")
            .to_string()
            .contains("64 bits")
    );
    assert!(err("+0").to_string().contains("found end of file"));
}

#[test]
fn malformed_inputs_never_panic() {
    let base = "--tolerance_usecs=1\n`init`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                +.1...0.2 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 1000}], msg_flags=0}, 0) = 1000 EPIPE (x)\n\
                +0.6~+0.7 < [ect0] SEW 0:0(0) ack 1 win 257 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8,sack 1:2 3:4,FO abcd>\n\
                +0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]\n\
                * %{ assert x }%\n`cleanup`\n";
    ok(base);
    // Every prefix, and every single-character deletion, must give Ok or Err, never a panic.
    let chars: Vec<(usize, char)> = base.char_indices().collect();
    for &(i, c) in &chars {
        let _ = parse("p.pkt", &base[..i], &no_defines());
        let mut s = base.to_string();
        s.replace_range(i..i + c.len_utf8(), "");
        let _ = parse("p.pkt", &s, &no_defines());
        let mut s = base.to_string();
        s.insert(i, 'é');
        let _ = parse("p.pkt", &s, &no_defines());
    }
}
