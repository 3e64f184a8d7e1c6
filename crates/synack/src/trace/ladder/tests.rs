use super::super::script::*;
use super::*;

fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"))
}

/// The text of every `<text>` (tspans joined by newlines).
fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
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

/// Both hosts' taps: Out at the sender, In at the receiver 10 ms later; packet `lose` (if
/// any) never arrives.
fn two_taps(lose: Option<usize>) -> Vec<TraceEvent> {
    let mut v = connection_events();
    let pkts = connection_packets();
    let client_sends = [true, false, true, true, false, true, false, true];
    for (k, ((ms, bytes), from_client)) in pkts.into_iter().zip(client_sends).enumerate() {
        if Some(k) == lose {
            continue;
        }
        v.push(TraceEvent::Packet {
            time: Instant::from_millis(ms + 10),
            dir: Direction::In,
            node: if from_client { "server" } else { "client" }.into(),
            bytes,
        });
    }
    // At equal times a host receives before it answers.
    v.sort_by_key(|e| {
        let answer = !matches!(
            e,
            TraceEvent::Packet {
                dir: Direction::In,
                ..
            }
        );
        (e.time(), answer)
    });
    v
}

#[test]
fn handshake_and_close_with_states_from_both_taps() {
    let l = Ladder::from_trace(&two_taps(None), 0).unwrap();
    assert_eq!(l.left, Lane::new("client", "198.18.0.1:49152"));
    assert_eq!(l.right, Lane::new("server", "198.18.0.2:80"));
    let arrows: Vec<&Arrow> = l
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Arrow(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(arrows.len(), 8);
    // The arrival is the In event: 10 ms after the send.
    assert_eq!(arrows[1].from, Side::Right);
    assert_eq!(
        (arrows[1].sent, arrows[1].arrived),
        (Instant::from_millis(10), Some(Instant::from_millis(20)))
    );
    let states = l
        .items
        .iter()
        .filter(|i| matches!(i, Item::State(_)))
        .count();
    assert_eq!(states, 10);

    let svg = l.to_svg();
    let doc = parse(&svg);
    let t = texts(&doc);
    let has = |want: &str| t.iter().any(|x| x.contains(want));
    for want in [
        "[SYN] Seq=0",
        "[SYN, ACK] Seq=0 Ack=1",
        "[PSH, ACK] Seq=1 Ack=1",
        "Win=65536 Len=100 TSval=20",
        "[FIN, ACK] Seq=101 Ack=1",
        "SYN-SENT",
        "SYN-RECEIVED",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "TIME-WAIT",
        "LAST-ACK",
        "CLOSED",
        "LISTEN",
        "client",
        "198.18.0.2:80",
        "10.0 ms",
    ] {
        assert!(has(want), "no {want:?} in {t:#?}");
    }
    // One line per arrow, each with an arrowhead; nothing lost, nothing folded.
    let segs = doc
        .descendants()
        .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("seg ")))
        .filter(|n| {
            n.ancestors()
                .all(|a| a.attribute("class") != Some("legend"))
        })
        .count();
    assert_eq!(segs, 8);
    assert!(!svg.contains("class=\"seg ack lost\""));
    assert!(!svg.contains("class=\"fold\""));
    // Slant: the SYN-ACK's end is lower than its start by the 10 ms of delay.
    let line = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("seg syn"))
        .nth(1)
        .unwrap()
        .children()
        .find(|c| c.has_tag_name("line"))
        .unwrap();
    let y = |a: &str| line.attribute(a).unwrap().parse::<f64>().unwrap();
    assert!(
        y("y2") - y("y1") >= DELAY_PX - 1.0,
        "{} {}",
        y("y1"),
        y("y2")
    );
    // Deterministic.
    assert_eq!(svg, l.to_svg());
}

#[test]
fn a_packet_nobody_received_is_drawn_lost() {
    let l = Ladder::from_trace(&two_taps(Some(3)), 0).unwrap();
    let lost: Vec<&Arrow> = l
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Arrow(a) if a.arrived.is_none() => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(lost.len(), 1);
    assert!(lost[0].label.starts_with("[PSH, ACK] Seq=1 Ack=1"));
    let svg = l.to_svg();
    let doc = parse(&svg);
    assert!(svg.contains("class=\"seg data lost\""));
    assert!(texts(&doc).iter().any(|t| t == "lost"));
}

#[test]
fn one_vantage_point_estimates_delays_from_the_handshake() {
    // The client's tap alone: Out of its packets, In of the server's 10 ms after sending.
    let v: Vec<TraceEvent> = two_taps(None)
        .into_iter()
        .filter(|e| e.node() == "client")
        .collect();
    let l = Ladder::from_trace(&v, 0).unwrap();
    assert_eq!(l.left.name, "client");
    assert_eq!(l.right, Lane::new("peer", "198.18.0.2:80"));
    let Some(Item::Arrow(syn)) = l.items.iter().find(|i| matches!(i, Item::Arrow(_))) else {
        panic!("no arrow")
    };
    // SYN out at 0, SYN-ACK in at 20, ACK out at 20: the server is 10 ms away, the client 0.
    assert_eq!(syn.sent, Instant::ZERO);
    assert_eq!(syn.arrived, Some(Instant::from_millis(10)));
    let foot = l.footnote.as_deref().unwrap();
    assert!(
        foot.contains("0.00 ms on the client's side, 10.0 ms on the server's"),
        "{foot}"
    );
    // The client's states only.
    assert!(
        l.items
            .iter()
            .all(|i| !matches!(i, Item::State(s) if s.side == Side::Right))
    );
    parse(&l.to_svg());
}

#[test]
fn long_transfers_fold_the_middle_and_keep_the_notable() {
    let mut l = Ladder::new(Lane::new("a", "1"), Lane::new("b", "2"));
    for k in 0..200u64 {
        let t = Instant::from_micros(k * 100);
        let lost = k == 100;
        let mut a = Arrow::new(
            Side::Left,
            t,
            (!lost).then(|| t + Duration::from_millis(10)),
            format!("[ACK] Seq={} Ack=1 Win=1000 Len=1000", 1 + k * 1000),
            Flags::ACK,
            1000,
        );
        a.retransmission = k == 150;
        l.items.push(Item::Arrow(a));
    }
    let svg = l.to_svg();
    let doc = parse(&svg);
    let t = texts(&doc);
    // 7 head, 6 tail, the lost and the retransmitted one: three folds between them.
    let folds: Vec<&String> = t.iter().filter(|x| x.contains("data segment")).collect();
    assert_eq!(folds.len(), 3, "{folds:#?}");
    assert_eq!(folds[0], "… 93 data segments \u{2192} …");
    assert!(
        t.iter().any(|x| x.contains("Seq=100001 Ack=1")),
        "the lost one is kept"
    );
    assert!(
        t.iter()
            .any(|x| x.contains("Seq=150001") && x.ends_with("retransmission"))
    );
    assert!(
        !t.iter().any(|x| x.contains("Seq=50001 ")),
        "the middle is folded"
    );
    assert!(
        t.iter().any(|x| x.contains("Seq=199001")),
        "the tail is kept"
    );
}

#[test]
fn long_silences_are_cut_and_labelled() {
    let mut l = Ladder::new(Lane::new("a", "1"), Lane::new("b", "2"));
    for (k, ms) in [0u64, 1000].into_iter().enumerate() {
        l.items.push(Item::Arrow(Arrow::new(
            Side::Left,
            Instant::from_millis(ms),
            Some(Instant::from_millis(ms + 10)),
            format!("[SYN] Seq=0 Win=1 Len=0 #{k}"),
            Flags::SYN,
            0,
        )));
    }
    let svg = l.to_svg();
    assert!(svg.contains("… 990.0 ms later …"), "{svg}");
    let h: f64 = parse(&svg)
        .root_element()
        .attribute("height")
        .unwrap()
        .parse()
        .unwrap();
    assert!(h < 600.0, "{h}");
}

#[test]
fn hand_built_labels_are_escaped_and_errors_say_what() {
    let mut l = Ladder::new(Lane::new("<a&b>", "\"x\""), Lane::new("b", "2"));
    l.title = Some("t<'>".into());
    l.items.push(Item::Note(Note::new(
        Side::Right,
        Instant::ZERO,
        "a < b & c",
    )));
    let doc_text = l.to_svg();
    let doc = parse(&doc_text);
    assert!(texts(&doc).iter().any(|t| t == "<a&b>"));
    assert!(texts(&doc).iter().any(|t| t == "a < b & c"));
    assert_eq!(
        Ladder::from_trace(&[], 0).unwrap_err().to_string(),
        "the trace has no TCP conversation to draw"
    );
    assert_eq!(
        Ladder::from_trace(&two_taps(None), 1).unwrap_err(),
        LadderError::NoSuchFlow { asked: 1, found: 1 }
    );
    assert_eq!(
        label_lines("[SYN] Seq=0 Win=1 Len=0 MSS=1460 SACK_PERM TSval=3540193769 TSecr=0 WS=128"),
        [
            "[SYN] Seq=0",
            "Win=1 Len=0 MSS=1460 SACK_PERM",
            "TSval=3540193769 TSecr=0 WS=128"
        ]
    );
}

#[test]
fn marks_tags_note_kinds_packets_from_the_network_and_chinese_words() {
    use crate::trace::lang::Lang;
    let ms = Instant::from_millis;
    let mut l = Ladder::new(Lane::new("client", "1"), Lane::new("server", "2"));
    let mut old = Arrow::new(
        Side::Left,
        ms(1),
        Some(ms(11)),
        "[SYN] Seq=90 Win=1 Len=0",
        Flags::SYN,
        0,
    );
    old.from_network = true;
    old.tag = Some("旧的重复 SYN".into());
    old.mark = Some(1);
    l.items.push(Item::Arrow(old));
    let mut st = StateChange::new(Side::Right, ms(11), State::Listen, State::SynReceived);
    st.mark = Some(2);
    l.items.push(Item::State(st));
    let mut call = Note::new(Side::Left, ms(12), "connect(2) = 0");
    call.kind = NoteKind::Call;
    call.mark = Some(3);
    l.items.push(Item::Note(call));
    let mut gone = Note::new(Side::Right, ms(13), "崩溃后重启\n不再记得任何连接");
    gone.kind = NoteKind::Event;
    l.items.push(Item::Note(gone));
    // A long transfer whose marked middle arrow survives the fold; a silence cut.
    for k in 0..40u64 {
        let t = ms(2000 + k);
        let mut a = Arrow::new(
            Side::Left,
            t,
            Some(t + Duration::from_millis(10)),
            format!("[ACK] Seq={} Ack=1 Win=9 Len=100", 1 + k * 100),
            Flags::ACK,
            100,
        );
        if k == 20 {
            a.mark = Some(4);
            a.tag = Some("cwnd 10 → 11".into());
        }
        l.items.push(Item::Arrow(a));
    }
    l.lang = Lang::Zh;
    let svg = l.to_svg();
    let doc = parse(&svg);
    let t = texts(&doc);
    let class_of = |c: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(c))
            .count()
    };
    // Each mark once, a white number on a disc.
    let marks: Vec<String> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("mark"))
        .map(|g| {
            g.descendants()
                .filter(|c| c.is_text())
                .filter_map(|c| c.text())
                .collect()
        })
        .collect();
    assert_eq!(marks, ["1", "2", "3", "4"]);
    // The old SYN starts in the network, 30 % of the way, and is tagged.
    let net = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("seg syn net"))
        .expect("the packet from the network");
    let line = net.children().find(|c| c.has_tag_name("line")).unwrap();
    let x = |a: &str| line.attribute(a).unwrap().parse::<f64>().unwrap();
    assert!(
        (x("x2") - x("x1") - 0.7 * 290.0).abs() < 0.5,
        "0.7 of the way left"
    );
    assert!(
        t.iter()
            .any(|s| s.starts_with("[SYN] Seq=90") && s.ends_with("旧的重复 SYN"))
    );
    assert!(
        t.iter()
            .any(|s| s.contains("Seq=2001 ") && s.ends_with("cwnd 10 → 11"))
    );
    // Note kinds, multi-line notes, Chinese words of the diagram itself.
    assert_eq!(class_of("note call"), 1);
    assert_eq!(class_of("note event"), 1);
    assert!(
        t.iter().any(|s| s == "崩溃后重启\n不再记得任何连接"),
        "{t:#?}"
    );
    assert!(
        t.iter().any(|s| s.ends_with("之后 …")),
        "the cut in Chinese"
    );
    assert!(
        t.iter().any(|s| s.contains("个数据段 \u{2192}")),
        "the fold in Chinese"
    );
    assert!(t.iter().any(|s| s == "时间向下流逝 · 斜度 = 单向时延"));
    assert!(svg.contains("'Noto Sans CJK SC'") && svg.contains(".mark circle"));
    // A ladder without any of it draws as before: no extra style, no CJK fonts.
    let plain = Ladder::from_trace(&two_taps(None), 0).unwrap().to_svg();
    assert!(!plain.contains(".mark circle") && !plain.contains("CJK"));
}

#[test]
fn a_figure_stacks_panels_with_their_captions() {
    let mut a = Ladder::new(Lane::new("client", "1"), Lane::new("server", "2"));
    let mut st = StateChange::new(Side::Left, Instant::ZERO, State::Closed, State::SynSent);
    st.mark = Some(1);
    a.items.push(Item::State(st));
    let b = Ladder::from_trace(&two_taps(None), 0).unwrap();
    let long = "word ".repeat(200);
    let fig = Figure {
        title: Some("two <runs>".into()),
        panels: vec![
            Panel {
                heading: Some("first".into()),
                ladder: a,
                captions: vec![(1, long.trim().to_string())],
            },
            Panel {
                heading: None,
                ladder: b.clone(),
                captions: vec![],
            },
        ],
    };
    let svg = fig.to_svg();
    let doc = parse(&svg);
    let t = texts(&doc);
    assert!(t.iter().any(|s| s == "two <runs>"));
    assert!(t.iter().any(|s| s == "first"));
    // The caption is wrapped to the figure's width: many lines, none too long.
    let caption = t.iter().find(|s| s.starts_with("word word")).unwrap();
    let width: f64 = doc
        .root_element()
        .attribute("width")
        .unwrap()
        .parse()
        .unwrap();
    assert!(caption.lines().count() > 5);
    assert!(caption.lines().all(|l| l.len() as f64 * 7.2 < width - 40.0));
    // Each ladder is nested whole, and the legend is drawn once, under the last.
    let nested = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("svg"))
        .count();
    assert_eq!(nested, 2);
    let legends = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("legend"))
        .count();
    assert_eq!(legends, 1);
    assert!(t.iter().any(|s| s.starts_with("[SYN, ACK] Seq=0 Ack=1\n")));
    assert_eq!(svg, fig.to_svg());
}
