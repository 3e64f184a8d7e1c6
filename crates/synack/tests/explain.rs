//! `synack explain`: every scenario, in both languages, compared with its snapshot under
//! `tests/snapshots/explain/`, and the key facts of each asserted on the steps themselves
//! (what the stacks did, not what the text says), for several seeds.
//!
//! After an intended change of behaviour or wording, rewrite the snapshots and commit them with
//! the change:
//!
//! ```sh
//! SYNACK_UPDATE_SNAPSHOTS=1 cargo test -p synack --test explain
//! ```

mod common;

use synack::sim::explain::{self, Explanation, Lang, Part, Step, Transit, What};
use synack::tcp::State;
use synack::time::{Duration, Instant};
use synack::wire::tcp::{Flags, Repr};

/// Seeds the facts are checked with: they must not depend on the ports and ISNs drawn.
const SEEDS: [u64; 3] = [1, 2, 3];

fn run(name: &str, seed: u64) -> Explanation {
    let e = explain::run(name, seed, Lang::En).unwrap_or_else(|err| panic!("{name}: {err}"));
    assert!(
        e.missing.is_empty(),
        "{name} (seed {seed}): expected events did not happen: {:?}\n{}",
        e.missing,
        e.render()
    );
    e
}

/// The conversations of an explanation, in order.
fn conversations(e: &Explanation) -> Vec<&[Step]> {
    e.parts
        .iter()
        .filter_map(|p| match p {
            Part::Steps { steps, .. } => Some(steps.as_slice()),
            _ => None,
        })
        .collect()
}

/// State changes of `node`, in order.
fn states(steps: &[Step], node: &str) -> Vec<(State, State)> {
    steps
        .iter()
        .flat_map(|s| s.states.iter())
        .filter(|c| c.node == node)
        .map(|c| (c.from, c.to))
        .collect()
}

/// Segments sent by `node`, with their steps.
fn segments<'a>(steps: &'a [Step], node: &str) -> Vec<(&'a Step, Repr<'a>)> {
    steps
        .iter()
        .filter(|s| s.node == node && matches!(s.what, What::Segment { .. }))
        .filter_map(|s| s.segment().map(|r| (s, r)))
        .collect()
}

/// Application calls of `node`, as printed.
fn calls<'a>(steps: &'a [Step], node: &str) -> Vec<&'a str> {
    steps
        .iter()
        .filter(|s| s.node == node)
        .filter_map(|s| match &s.what {
            What::Call { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn transit(s: &Step) -> Option<Transit> {
    match s.what {
        What::Segment { transit, .. } => Some(transit),
        _ => None,
    }
}

fn control(r: &Repr<'_>) -> Flags {
    r.flags & (Flags::SYN | Flags::FIN | Flags::RST | Flags::ACK)
}

#[test]
fn every_scenario_matches_its_snapshots_in_both_languages() {
    let mut failures = Vec::new();
    for s in explain::scenarios() {
        for lang in Lang::ALL {
            let e = explain::run(s.name, 1, lang).unwrap_or_else(|err| panic!("{err}"));
            assert!(e.missing.is_empty(), "{} {lang}: {:?}", s.name, e.missing);
            for step in e.steps() {
                if let Some(w) = &step.why {
                    assert!(
                        !w.text.contains('{') && !w.text.contains('}'),
                        "{} {lang}: unfilled placeholder in {:?}",
                        s.name,
                        w.text
                    );
                    assert!(
                        w.cite.starts_with("RFC ") || w.cite.starts_with("Linux "),
                        "{}: cite {:?}",
                        s.name,
                        w.cite
                    );
                }
            }
            let path = common::snapshot_path(&format!("explain/{}.{lang}.txt", s.name));
            if let Err(err) =
                common::check_snapshot(&path, &e.render(), "cargo test -p synack --test explain")
            {
                failures.push(err);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The README shows `synack explain old-duplicate-syn` as it is (rewritten with the snapshots).
#[test]
fn readme_shows_the_real_output() {
    let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&readme).expect("README.md");
    let marker = "`synack explain old-duplicate-syn` (RFC 9293 Figure 8";
    let at = text.find(marker).expect("the README's explain example");
    let open = at + text[at..].find("```text\n").expect("its code block") + "```text\n".len();
    let close = open + text[open..].find("```").expect("the end of the block");
    let now = explain::run("old-duplicate-syn", 1, Lang::En)
        .unwrap()
        .render();
    if std::env::var_os("SYNACK_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        let updated = format!("{}{now}{}", &text[..open], &text[close..]);
        std::fs::write(&readme, updated).expect("write README.md");
        return;
    }
    assert_eq!(
        &text[open..close],
        now,
        "README.md's example is stale; SYNACK_UPDATE_SNAPSHOTS=1 cargo test -p synack --test explain"
    );
}

/// The README's picture is `synack explain old-duplicate-syn --svg
/// docs/explain-old-duplicate-syn.svg` as it is now (rewritten with the snapshots).
#[test]
fn readme_picture_is_the_real_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/explain-old-duplicate-syn.svg");
    let now = explain::run("old-duplicate-syn", 1, Lang::En)
        .unwrap()
        .to_svg();
    if std::env::var_os("SYNACK_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &now).expect("write the picture");
        return;
    }
    let committed = std::fs::read_to_string(&path).expect("docs/explain-old-duplicate-syn.svg");
    assert!(
        committed == now,
        "docs/explain-old-duplicate-syn.svg is stale; SYNACK_UPDATE_SNAPSHOTS=1 cargo test -p synack --test explain"
    );
}

#[test]
fn at_least_the_ten_scenarios_of_the_issue_each_with_both_languages() {
    for name in [
        "handshake",
        "why-third-ack",
        "old-duplicate-syn",
        "half-open",
        "simultaneous-open",
        "simultaneous-close",
        "syn-flood",
        "keepalive",
        "loss",
        "zero-window",
        "time-wait",
        "reset",
    ] {
        let s = explain::find(name).unwrap_or_else(|| panic!("no scenario {name}"));
        assert_ne!(s.summary(Lang::En), s.summary(Lang::Zh), "{name}");
        assert!(explain::list(Lang::En).contains(s.summary(Lang::En)));
        assert!(explain::list(Lang::Zh).contains(s.summary(Lang::Zh)));
    }
    let err = explain::run("nope", 1, Lang::En).unwrap_err();
    assert!(err.to_string().contains("handshake"), "{err}");
}

#[test]
fn same_seed_same_output_other_seed_other_numbers() {
    for s in explain::scenarios() {
        let a = explain::run(s.name, 5, Lang::En).unwrap().render();
        let b = explain::run(s.name, 5, Lang::En).unwrap().render();
        assert_eq!(a, b, "{}", s.name);
        let c = explain::run(s.name, 6, Lang::En).unwrap().render();
        assert_ne!(a, c, "{}: the seed changes ISNs and timestamps", s.name);
    }
}

#[test]
fn chinese_explains_the_same_steps() {
    for s in explain::scenarios() {
        let en = explain::run(s.name, 1, Lang::En).unwrap();
        let zh = explain::run(s.name, 1, Lang::Zh).unwrap();
        let lines = |e: &Explanation| e.steps().map(|s| s.line.clone()).collect::<Vec<_>>();
        let explained = |e: &Explanation| e.steps().map(|s| s.why.is_some()).collect::<Vec<_>>();
        // The notation is the same, annotations aside.
        let en_lines = lines(&en);
        let zh_lines = lines(&zh);
        assert_eq!(en_lines.len(), zh_lines.len(), "{}", s.name);
        for (a, b) in en_lines.iter().zip(&zh_lines) {
            let cut = |l: &str| l.split("   [").next().unwrap_or("").to_string();
            if !a.contains("  [") {
                assert_eq!(cut(a), cut(b), "{}", s.name);
            }
        }
        assert_eq!(explained(&en), explained(&zh), "{}", s.name);
        assert!(
            zh.steps().filter_map(|s| s.why.as_ref()).all(|w| w
                .text
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))),
            "{}: every Chinese sentence is Chinese",
            s.name
        );
    }
}

#[test]
fn handshake_numbers_add_up() {
    for seed in SEEDS {
        let e = run("handshake", seed);
        let steps = conversations(&e)[0];
        use State::*;
        assert_eq!(
            states(steps, "client"),
            [
                (Closed, SynSent),
                (SynSent, Established),
                (Established, FinWait1),
                (FinWait1, FinWait2),
                (FinWait2, TimeWait)
            ]
        );
        assert_eq!(
            states(steps, "server"),
            [
                (Listen, SynReceived),
                (SynReceived, Established),
                (Established, CloseWait),
                (CloseWait, LastAck),
                (LastAck, Closed)
            ]
        );
        let c = segments(steps, "client");
        let s = segments(steps, "server");
        let (syn, synack) = (&c[0].1, &s[0].1);
        assert_eq!(control(syn), Flags::SYN);
        assert_eq!(control(synack), Flags::SYN | Flags::ACK);
        assert_eq!(synack.ack, syn.seq + 1u32, "the SYN takes one number");
        let data = c.iter().find(|(_, r)| !r.payload.is_empty()).unwrap();
        assert_eq!(data.1.payload.len(), 100);
        assert_eq!(data.1.seq, syn.seq + 1u32);
        assert!(data.0.line.contains(" Seq=1 ") && data.0.line.contains(" Len=100 "));
        let ack = s
            .iter()
            .find(|(_, r)| r.ack == data.1.seq + 100u32)
            .unwrap();
        assert!(ack.0.line.contains(" Ack=101 "), "{}", ack.0.line);
        let fin = c.iter().find(|(_, r)| r.flags.fin()).unwrap();
        assert_eq!(fin.1.seq, data.1.seq + 100u32);
        let server_fin = s.iter().find(|(_, r)| r.flags.fin()).unwrap();
        assert_eq!(
            server_fin.1.ack,
            fin.1.seq + 1u32,
            "the FIN takes one number"
        );
        // Options negotiated on both SYNs.
        for r in [syn, synack] {
            assert_eq!(r.options.mss, Some(1460));
            assert!(r.options.sack_permitted && r.options.timestamps.is_some());
            assert_eq!(r.options.window_scale, Some(7));
        }
        assert_eq!(
            calls(steps, "server"),
            [
                "accept() = 198.18.0.1:".to_string() + &syn.src_port.to_string(),
                "recv() = 100".into(),
                "recv() = 0".into(),
                "close() = 0".into()
            ]
        );
    }
}

#[test]
fn old_duplicate_syn_opens_no_connection() {
    for seed in SEEDS {
        let e = run("why-third-ack", seed);
        assert_eq!(e.name, "old-duplicate-syn");
        let steps = conversations(&e)[0];
        let client = segments(steps, "client");
        let real_syn = &client[0];
        assert_eq!(
            transit(real_syn.0),
            Some(Transit::Delayed(Duration::from_secs(1)))
        );
        let old = segments(steps, "network");
        assert_eq!(old.len(), 1);
        let old = &old[0].1;
        assert_eq!(old.src_port, real_syn.1.src_port, "the same 4-tuple");
        assert_eq!(old.seq + 10u32, real_syn.1.seq);
        let server = segments(steps, "server");
        // The server answers the old SYN…
        assert_eq!(server[0].1.ack, old.seq + 1u32);
        // …the client resets it with <SEQ=SEG.ACK><CTL=RST>…
        let rst = client.iter().find(|(_, r)| r.flags.rst()).unwrap();
        assert_eq!(control(&rst.1), Flags::RST);
        assert_eq!(rst.1.seq, server[0].1.ack);
        // …and the server goes back to LISTEN: no connection, nothing accepted.
        let back = steps
            .iter()
            .position(|s| {
                s.transitions()
                    .any(|t| t == (State::SynReceived, State::Listen))
            })
            .expect("SYN-RECEIVED -> LISTEN");
        let before = &steps[..back];
        assert!(!states(before, "server").contains(&(State::SynReceived, State::Established)));
        assert!(calls(before, "server").is_empty());
        // The only connection ever opened is the client's real one.
        assert_eq!(server.len(), 2);
        assert_eq!(server[1].1.ack, real_syn.1.seq + 1u32);
        assert_eq!(
            states(steps, "server"),
            [
                (State::Listen, State::SynReceived),
                (State::SynReceived, State::Listen),
                (State::Listen, State::SynReceived),
                (State::SynReceived, State::Established)
            ]
        );
        assert_eq!(calls(steps, "server").len(), 1, "one accept()");
        // The two-step variant is narrated, not run.
        assert!(e.parts.iter().any(|p| matches!(p, Part::Figure(_))));
        assert_eq!(conversations(&e).len(), 1);
    }
}

#[test]
fn half_open_connections_are_reset_whoever_speaks_first() {
    for seed in SEEDS {
        let e = run("half-open", seed);
        let convs = conversations(&e);
        assert_eq!(convs.len(), 2);
        // Figure 9: the restarted client's SYN gets a challenge ACK, which it resets.
        let f9 = convs[0];
        let syns: Vec<_> = segments(f9, "client")
            .into_iter()
            .filter(|(_, r)| control(r) == Flags::SYN)
            .collect();
        assert!(
            syns.len() >= 3,
            "first SYN, the SYN after the restart, its retransmission"
        );
        let challenge = segments(f9, "server")
            .into_iter()
            .find(|(s, r)| control(r) == Flags::ACK && s.time > syns[1].0.time)
            .unwrap();
        let rst = segments(f9, "client")
            .into_iter()
            .find(|(_, r)| r.flags.rst())
            .unwrap();
        assert_eq!(rst.1.seq, challenge.1.ack);
        let s = states(f9, "server");
        assert!(s.contains(&(State::Established, State::Closed)));
        assert_eq!(s.last(), Some(&(State::SynReceived, State::Established)));
        assert!(calls(f9, "server").iter().any(|c| c.contains("ECONNRESET")));
        assert!(calls(f9, "client").last().unwrap().ends_with("= 0"));
        // Figure 10: data to the forgotten connection gets a RST.
        let f10 = convs[1];
        let data = segments(f10, "server")
            .into_iter()
            .find(|(_, r)| !r.payload.is_empty())
            .unwrap();
        let rst = segments(f10, "client")
            .into_iter()
            .find(|(_, r)| r.flags.rst())
            .unwrap();
        assert_eq!(rst.1.seq, data.1.ack, "<SEQ=SEG.ACK><CTL=RST>");
        assert!(states(f10, "server").contains(&(State::Established, State::Closed)));
        assert!(calls(f10, "server").last().unwrap().contains("ECONNRESET"));
    }
}

#[test]
fn simultaneous_open_and_close_take_the_figure_paths() {
    use State::*;
    for seed in SEEDS {
        let e = run("simultaneous-open", seed);
        let steps = conversations(&e)[0];
        for node in ["A", "B"] {
            assert_eq!(
                states(steps, node),
                [
                    (Closed, SynSent),
                    (SynSent, SynReceived),
                    (SynReceived, Established)
                ],
                "{node}"
            );
            let segs: Vec<Flags> = segments(steps, node)
                .iter()
                .map(|(_, r)| control(r))
                .collect();
            // The SYN-ACK, a SYN already received: answered with a duplicate ACK (Linux).
            assert_eq!(
                segs,
                [Flags::SYN, Flags::SYN | Flags::ACK, Flags::ACK],
                "{node}"
            );
        }
        let e = run("simultaneous-close", seed);
        let steps = conversations(&e)[0];
        for node in ["A", "B"] {
            let s = states(steps, node);
            assert!(
                s.ends_with(&[
                    (Established, FinWait1),
                    (FinWait1, Closing),
                    (Closing, TimeWait),
                    (TimeWait, Closed)
                ]),
                "{node}: {s:?}"
            );
        }
    }
}

#[test]
fn syn_flood_keeps_the_client_out_unless_cookies_are_on() {
    for seed in SEEDS {
        let e = run("syn-flood", seed);
        let convs = conversations(&e);
        assert_eq!(convs.len(), 2);
        let (off, on) = (convs[0], convs[1]);
        // Cookies off: every SYN of the client is dropped and connect() times out.
        let client_syns = segments(off, "client").len();
        assert_eq!(
            client_syns, 11,
            "the SYN and its 6 + 4 retransmissions (tcp_syn_retries, tcp_syn_linear_timeouts)"
        );
        let dropped = off
            .iter()
            .filter(|s| {
                matches!(s.what, What::Drop { .. }) && s.line.contains("client \u{2192} server")
            })
            .count();
        assert_eq!(dropped, 11);
        assert!(calls(off, "client").last().unwrap().contains("ETIMEDOUT"));
        assert!(calls(off, "server").is_empty(), "nothing accepted");
        assert!(!off.iter().any(|s| s.line.contains("SYN cookie")));
        // The flood is there but not printed.
        let hidden = off.iter().filter(|s| !s.shown).count();
        assert!(hidden > 1000, "{hidden} flood lines");
        // Cookies on: the client's SYN gets a cookie and the client is in.
        assert!(
            on.iter()
                .any(|s| s.line.contains("SYN cookie accepted from 198.18.0.1:"))
        );
        assert!(calls(on, "client").last().unwrap().ends_with("= 0"));
        assert!(calls(on, "server")[0].starts_with("accept() = 198.18.0.1:"));
        // The counters side by side.
        let table = e
            .parts
            .iter()
            .find_map(|p| match p {
                Part::Table(rows) => Some(rows),
                _ => None,
            })
            .unwrap();
        let row = |name: &str| {
            table
                .iter()
                .find(|r| r[0].starts_with(name))
                .unwrap_or_else(|| panic!("no row {name}"))
                .clone()
        };
        assert_eq!(row("SyncookiesSent")[1], "0");
        assert!(row("SyncookiesSent")[2].parse::<u64>().unwrap() > 1000);
        assert_eq!(row("SyncookiesRecv")[1..], ["0", "1"]);
        assert_eq!(row("PassiveOpens")[1..], ["0", "1"]);
        assert!(row("TCPReqQFullDrop")[1].parse::<u64>().unwrap() > 1000);
        assert_eq!(row("TCPReqQFullDrop")[2], "0");
        assert_eq!(row("SynQueuePeak")[1..], ["4", "4"]);
    }
}

#[test]
fn keepalive_probes_then_gives_up_after_nine() {
    for seed in SEEDS {
        let e = run("keepalive", seed);
        let steps = conversations(&e)[0];
        let probes: Vec<_> = segments(steps, "client")
            .into_iter()
            .filter(|(s, r)| {
                control(r) == Flags::ACK && r.payload.is_empty() && s.time > Instant::from_secs(1)
            })
            .collect();
        assert_eq!(probes.len(), 10, "one answered, nine not");
        let last_data = steps
            .iter()
            .find(|s| s.line.contains("accept()"))
            .unwrap()
            .time;
        assert!(probes[0].0.time - last_data >= Duration::from_secs(7200));
        assert_eq!(transit(probes[0].0), Some(Transit::Delivered));
        let answer = segments(steps, "server").into_iter().last().unwrap();
        assert_eq!(
            answer.1.ack,
            probes[0].1.seq + 1u32,
            "the answer says what it expects"
        );
        assert_eq!(
            probes[1].0.time - answer.0.time,
            Duration::from_secs(7200) + Duration::from_millis(10)
        );
        for w in probes[1..].windows(2) {
            assert_eq!(w[1].0.time - w[0].0.time, Duration::from_secs(75));
            assert_eq!(transit(w[1].0), Some(Transit::HostDown));
        }
        let dead = steps
            .iter()
            .find(|s| {
                s.transitions()
                    .any(|t| t == (State::Established, State::Closed))
            })
            .unwrap();
        assert_eq!(dead.time - probes[9].0.time, Duration::from_secs(75));
        assert!(calls(steps, "client").last().unwrap().contains("ETIMEDOUT"));
    }
}

#[test]
fn loss_is_recovered_without_a_timeout() {
    for seed in SEEDS {
        let e = run("loss", seed);
        let steps = conversations(&e)[0];
        let client = segments(steps, "client");
        let lost: Vec<_> = client
            .iter()
            .filter(|(s, _)| transit(s) == Some(Transit::Lost))
            .collect();
        assert_eq!(lost.len(), 2, "the segment and its first retransmission");
        assert_eq!(lost[0].1.seq, lost[1].1.seq);
        let sends = client
            .iter()
            .filter(|(_, r)| r.seq == lost[0].1.seq && !r.payload.is_empty())
            .count();
        assert_eq!(sends, 3, "sent, fast retransmit, RACK retransmit");
        // Duplicate ACKs with SACK blocks, at least three before the fast retransmit.
        let dupacks = segments(steps, "server")
            .into_iter()
            .filter(|(_, r)| r.ack == lost[0].1.seq && !r.options.sack.is_empty())
            .count();
        assert!(dupacks >= 3, "{dupacks}");
        let notes: Vec<&str> = steps
            .iter()
            .filter_map(|s| match &s.what {
                What::Note { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(notes.iter().filter(|n| n.contains("(Fast)")).count(), 2);
        assert!(
            !notes.iter().any(|n| n.contains("RTO")),
            "no timeout: {notes:?}"
        );
        // Everything delivered, and cwnd ends at the reduced ssthresh.
        let last_ack = segments(steps, "server").into_iter().last().unwrap();
        assert_eq!(last_ack.1.ack, client[0].1.seq + (1 + 20 * 1448u32));
        let cwnd: Vec<_> = steps
            .iter()
            .filter_map(|s| match &s.what {
                What::Cwnd(c) => Some(*c),
                What::Segment { cwnd, .. } => *cwnd,
                _ => None,
            })
            .collect();
        let first = cwnd.first().unwrap();
        assert_eq!(first.from.0, 10, "initial window");
        let last = cwnd.last().unwrap();
        assert_eq!(last.to.0, last.to.1, "cwnd = ssthresh after recovery");
        assert!(last.to.0 < cwnd.iter().map(|c| c.to.0).max().unwrap());
    }
}

#[test]
fn zero_window_is_probed_with_backoff_and_reopened() {
    for seed in SEEDS {
        let e = run("zero-window", seed);
        let steps = conversations(&e)[0];
        let server = segments(steps, "server");
        let zero = server
            .iter()
            .position(|(_, r)| r.window == 0 && control(r) == Flags::ACK)
            .unwrap();
        let probes: Vec<_> = segments(steps, "client")
            .into_iter()
            .filter(|(s, r)| {
                s.time > server[zero].0.time
                    && r.payload.is_empty()
                    && r.seq + 1u32 == server[zero].1.ack
            })
            .collect();
        assert!(probes.len() >= 2, "{}", probes.len());
        let gaps: Vec<Duration> = probes
            .windows(2)
            .map(|w| w[1].0.time - w[0].0.time)
            .collect();
        let first_gap = probes[0].0.time - server[zero].0.time;
        assert!(gaps[0] > first_gap, "backoff: {first_gap:?} then {gaps:?}");
        // Each probe is answered with window 0 until the application reads.
        let read = steps
            .iter()
            .find(|s| s.line.contains("recv() = 10136"))
            .unwrap()
            .time;
        assert!(
            server
                .iter()
                .filter(|(s, _)| s.time > server[zero].0.time && s.time < read)
                .all(|(_, r)| r.window == 0)
        );
        let update = server.iter().find(|(s, _)| s.time >= read).unwrap();
        assert_eq!(update.0.time, read, "the window update goes out at once");
        assert!(update.1.window > 0);
        assert_eq!(
            server.last().unwrap().1.ack,
            segments(steps, "client")[0].1.seq + 20_001u32
        );
    }
}

#[test]
fn time_wait_answers_the_retransmitted_fin() {
    for seed in SEEDS {
        let e = run("time-wait", seed);
        let steps = conversations(&e)[0];
        let fins: Vec<_> = segments(steps, "server")
            .into_iter()
            .filter(|(_, r)| r.flags.fin())
            .collect();
        assert_eq!(fins.len(), 2, "the FIN and its retransmission");
        assert_eq!(fins[0].1.seq, fins[1].1.seq);
        let client = segments(steps, "client");
        let lost = client
            .iter()
            .find(|(s, _)| transit(s) == Some(Transit::Lost))
            .unwrap();
        assert_eq!(lost.1.ack, fins[0].1.seq + 1u32);
        assert!(
            lost.0
                .transitions()
                .any(|t| t == (State::FinWait2, State::TimeWait))
        );
        let again = client
            .iter()
            .find(|(s, _)| s.time > fins[1].0.time)
            .unwrap();
        assert_eq!(again.1.ack, fins[0].1.seq + 1u32);
        let expired = steps
            .iter()
            .find(|s| {
                s.transitions()
                    .any(|t| t == (State::TimeWait, State::Closed))
            })
            .unwrap();
        assert_eq!(
            expired.time - again.0.time,
            Duration::from_secs(60),
            "2 MSL from the last FIN"
        );
        assert!(states(steps, "server").contains(&(State::LastAck, State::Closed)));
    }
}

#[test]
fn reset_errors_are_refused_reset_and_broken_pipe() {
    for seed in SEEDS {
        let e = run("reset", seed);
        let convs = conversations(&e);
        assert_eq!(convs.len(), 3);
        let last_call = |steps: &[Step]| {
            calls(steps, "client")
                .last()
                .map(|c| c.to_string())
                .unwrap()
        };
        // 1: RST,ACK for a SYN to a closed port.
        let syn = &segments(convs[0], "client")[0].1;
        let rst = &segments(convs[0], "server")[0].1;
        assert_eq!(control(rst), Flags::RST | Flags::ACK);
        assert_eq!((rst.seq.0, rst.ack), (0, syn.seq + 1u32));
        assert!(last_call(convs[0]).contains("ECONNREFUSED"));
        // 2: close with unread data resets.
        let rst = segments(convs[1], "server")
            .into_iter()
            .find(|(_, r)| r.flags.rst())
            .unwrap();
        assert!(
            rst.0
                .transitions()
                .any(|t| t == (State::Established, State::Closed))
        );
        assert!(last_call(convs[1]).contains("ECONNRESET"));
        // 3: data after the peer closed: a broken pipe at once, as Linux's tcp_reset() has it
        // for a RST in CLOSE-WAIT.
        let c = calls(convs[2], "client");
        let n = c.len();
        assert!(
            c[n - 2].contains("EPIPE") && c[n - 1].contains("EPIPE"),
            "{c:?}"
        );
        assert!(states(convs[2], "client").contains(&(State::CloseWait, State::Closed)));
    }
}

/// The text of every `<text>` element of an SVG (its tspans joined by newlines).
fn svg_texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            let spans: Vec<&str> = n
                .descendants()
                .filter(|c| c.is_text())
                .filter_map(|c| c.text())
                .collect();
            spans.join("\n")
        })
        .collect()
}

/// Elements whose class list contains `class`.
fn with_class<'a>(
    doc: &'a roxmltree::Document<'a>,
    class: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> + 'a {
    doc.descendants().filter(move |n| {
        n.attribute("class")
            .is_some_and(|c| c.split(' ').any(|x| x == class))
    })
}

#[test]
fn every_scenario_draws_a_ladder_with_its_sentences_numbered() {
    // What each picture must show (in either language: the notation is the same).
    let wanted: &[(&str, &[&str])] = &[
        (
            "handshake",
            &[
                "[SYN] Seq=0",
                "[SYN, ACK] Seq=0 Ack=1",
                "[PSH, ACK] Seq=1 Ack=1",
                "[FIN, ACK] Seq=101 Ack=1",
                "CLOSE-WAIT",
                "LAST-ACK",
                "TIME-WAIT",
                "accept() = 198.18.0.1:",
            ],
        ),
        (
            "old-duplicate-syn",
            &["[RST] Seq=", "SYN-RECEIVED", "LISTEN", "ESTABLISHED"],
        ),
        (
            "simultaneous-open",
            &[
                "[SYN] Seq=0",
                "[SYN, ACK] Seq=0 Ack=1",
                "SYN-RECEIVED",
                "A",
                "B",
            ],
        ),
        (
            "simultaneous-close",
            &["[FIN, ACK] Seq=1", "CLOSING", "TIME-WAIT"],
        ),
        ("half-open", &["[RST] Seq=", "ECONNRESET", "SYN-SENT"]),
        (
            "syn-flood",
            &["ETIMEDOUT", "[SYN, ACK] Seq=0 Ack=1", "198.19."],
        ),
        (
            "keepalive",
            &["[RST, ACK] Seq=1 Ack=1", "ETIMEDOUT", "SO_KEEPALIVE"],
        ),
        (
            "loss",
            &["Seq=4345", "SLE=5793", "cwnd 13 \u{2192} 12, ssthresh 9"],
        ),
        (
            "time-wait",
            &["[FIN, ACK] Seq=1 Ack=2", "TIME-WAIT", "LAST-ACK"],
        ),
        (
            "zero-window",
            &["Ack=10137\nWin=8688", "Win=0 Len=0", "recv() = 10136"],
        ),
        (
            "reset",
            &[
                "ECONNREFUSED",
                "ECONNRESET",
                "EPIPE",
                "[RST, ACK] Seq=0 Ack=1",
            ],
        ),
    ];
    assert_eq!(wanted.len(), explain::scenarios().len());
    for &(name, labels) in wanted {
        for lang in Lang::ALL {
            let e = explain::run(name, 1, lang).unwrap();
            let svg = e.to_svg();
            assert_eq!(svg, e.to_svg(), "{name} {lang}: deterministic");
            let doc = roxmltree::Document::parse(&svg)
                .unwrap_or_else(|err| panic!("{name} {lang}: not XML: {err}"));
            assert_eq!(doc.root_element().tag_name().name(), "svg");
            let texts = svg_texts(&doc);
            for want in labels {
                assert!(
                    texts.iter().any(|t| t.contains(want)),
                    "{name} {lang}: no {want:?} in the picture"
                );
            }
            // One ladder per conversation, with the lanes of its two hosts.
            let convs = conversations(&e).len();
            assert_eq!(with_class(&doc, "lane").count(), 2 * convs, "{name} {lang}");
            // Every sentence is a numbered caption, and its number is on the diagram too.
            let whys: Vec<_> = e.steps().filter_map(|s| s.why.as_ref()).collect();
            let marks: Vec<String> = with_class(&doc, "mark").map(|g| svg_texts_of(g)).collect();
            assert_eq!(marks.len(), 2 * whys.len(), "{name} {lang}: {marks:?}");
            for (k, w) in whys.iter().enumerate() {
                let n = (k + 1).to_string();
                assert_eq!(
                    marks.iter().filter(|m| **m == n).count(),
                    2,
                    "{name}: mark {n}"
                );
                let caption = format!("[{}]", w.cite);
                let first_words: String = w.text.chars().take(12).collect();
                assert!(
                    texts.iter().any(|t| t.starts_with(&first_words)),
                    "{name} {lang}: no caption {first_words:?}"
                );
                assert!(
                    texts.iter().any(|t| t.replace('\n', " ").contains(&caption)
                        || t.replace('\n', "").contains(&caption.replace(' ', ""))),
                    "{name} {lang}: no {caption}"
                );
            }
            // Chinese pictures say so in Chinese, and ask for fonts that have it.
            if lang == Lang::Zh {
                assert!(svg.contains("'Noto Sans CJK SC'"), "{name}");
                assert!(
                    texts.iter().any(|t| t.contains("时间向下流逝")),
                    "{name}: the legend in Chinese"
                );
            }
        }
    }
}

/// The text inside one element.
fn svg_texts_of(n: roxmltree::Node<'_, '_>) -> String {
    n.descendants()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

#[test]
fn the_old_duplicate_syn_is_drawn_from_the_network_and_refused() {
    let e = run("old-duplicate-syn", 1);
    let svg = e.to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    // Two SYNs from the client's side: its own (held up) and the old one, which starts in the
    // network (dotted) and says what it is.
    let old: Vec<_> = with_class(&doc, "net").collect();
    assert_eq!(old.len(), 1, "one packet put on the wire by the scenario");
    assert!(old[0].attribute("class").unwrap().starts_with("seg syn"));
    let old_text = svg_texts(&doc)
        .into_iter()
        .find(|t| t.contains("old duplicate SYN"))
        .expect("the old SYN is tagged");
    let old_seq = segments(conversations(&e)[0], "network")[0].1.seq.0;
    assert!(
        old_text.contains(&format!("[SYN] Seq={old_seq}")),
        "{old_text}"
    );
    // The client's own SYN is held up past the end of the run; the old one and the RST
    // arrive, and so does the copy of its SYN the client sends after the unacceptable ACK.
    let steps = conversations(&e)[0];
    let arrived = |s: &Step| match &s.what {
        What::Segment { arrived, .. } => *arrived,
        _ => None,
    };
    let (own, _) = segments(steps, "client")[0];
    let (inj, _) = segments(steps, "network")[0];
    let (rst, _) = segments(steps, "client")[1];
    let (copy, copy_seg) = segments(steps, "client")[2];
    assert_eq!(arrived(own), None);
    assert!(arrived(inj).unwrap() < arrived(rst).unwrap());
    assert!(copy_seg.flags.syn() && arrived(copy).unwrap() > arrived(rst).unwrap());
    assert!(svg.contains("held up in the network"));
    // The server's states, in order, as badges: LISTEN (initial), SYN-RECEIVED, LISTEN,
    // SYN-RECEIVED, ESTABLISHED.
    let badges: Vec<String> = with_class(&doc, "state").map(svg_texts_of).collect();
    let server: Vec<&str> = badges
        .iter()
        .map(String::as_str)
        .filter(|b| ["LISTEN", "SYN-RECEIVED"].contains(b))
        .collect();
    assert_eq!(
        server,
        ["LISTEN", "SYN-RECEIVED", "LISTEN", "SYN-RECEIVED"],
        "{badges:?}"
    );
}

#[test]
fn segments_arrive_one_way_delay_later_unless_lost() {
    for s in explain::scenarios() {
        let e = run(s.name, 1);
        let end = e.steps().map(|s| s.time).max().unwrap();
        for step in e.steps() {
            let What::Segment {
                transit, arrived, ..
            } = &step.what
            else {
                continue;
            };
            let held = match transit {
                Transit::Delayed(d) => *d,
                _ => Duration::ZERO,
            };
            if arrived.is_none() && step.time + held + Duration::from_millis(10) > end {
                // The run ended before it could arrive.
                continue;
            }
            match transit {
                Transit::Lost | Transit::HostDown | Transit::NoSuchHost => {
                    assert_eq!(*arrived, None, "{}: {}", s.name, step.line)
                }
                Transit::Delayed(d) => assert!(
                    arrived.is_some_and(|t| t >= step.time + *d),
                    "{}: {}",
                    s.name,
                    step.line
                ),
                Transit::Delivered | Transit::Injected if s.name != "loss" => assert_eq!(
                    *arrived,
                    Some(step.time + Duration::from_millis(10)),
                    "{}: {}",
                    s.name,
                    step.line
                ),
                // 10 Mbit/s links: 10 ms plus the time on the wire, behind a queue.
                Transit::Delivered | Transit::Injected => assert!(
                    arrived.is_some_and(|t| t > step.time + Duration::from_millis(10)),
                    "{}: {}",
                    s.name,
                    step.line
                ),
            }
        }
    }
}

#[test]
fn the_flood_is_folded_into_a_note() {
    let e = run("syn-flood", 1);
    let svg = e.to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts = svg_texts(&doc);
    // Thousands of spoofed SYNs ran; two per run are drawn, tagged with their forged source,
    // and the rest counted in a note.
    let spoofed = texts
        .iter()
        .filter(|t| t.contains("spoofed SYN (from 198.19."))
        .count();
    assert_eq!(spoofed, 4, "two in each run");
    let notes: Vec<&String> = texts.iter().filter(|t| t.contains("not drawn")).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    let n: usize = notes[0]
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap();
    assert!(n > 3000, "{}", notes[0]);
    let arrows = with_class(&doc, "seg")
        .filter(|g| {
            g.ancestors()
                .all(|a| a.attribute("class") != Some("legend"))
        })
        .count();
    assert!(arrows < 30, "{arrows} arrows: the flood is not folded");
}
