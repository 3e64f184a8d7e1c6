//! Header prediction (`Connection::predicted`) is only a shortcut: the same exchanges, run
//! once with it and once through the general path alone, put the same segments on the wire
//! at the same instants and report the same events, counters and statistics. Each run also
//! checks that the shortcut was taken, so that a predicate that never holds cannot pass.

use std::cell::Cell;
use std::fmt::Write as _;

use proptest::prelude::*;

use super::super::input::{header_predictions, set_header_prediction};
use super::super::recovery::set_give_back;
use super::harness::*;
use crate::device::sim::{LinkConfig, Loss};
use crate::sim::{TransferConfig, transfer};
use crate::tcp::congestion::Algorithm;
use crate::tcp::ecn::EcnMode;
use crate::tcp::{Config, Shutdown};
use crate::time::Duration;
use crate::wire::tcp::Flags;

/// How the application at the receiving end reads.
#[derive(Clone, Copy, PartialEq)]
enum Reader {
    /// Drains the socket between every two steps of the pipe.
    Eager,
    /// Now and then stops reading for up to two seconds of virtual time: the window closes,
    /// the sender probes it (persist timer) and the window reopens when reading resumes.
    Pausing,
}

/// One exchange between two connections: `rounds` request/response pairs of random sizes
/// (some above the MSS, some filling the receiver), then a bulk transfer each way, then
/// both close. Everything observable is written into one string: every segment sent,
/// the events of both ends after every step of the pipe, and at the end their statistics
/// and counters.
fn exchange(cfg: &Config, impair: Impair, reader: Reader, seed: u64, rounds: usize) -> String {
    exchange_then_clean(cfg, impair, reader, seed, rounds, 0)
}

/// [`exchange`], then the impairments lifted and `clean_rounds` more request/response pairs
/// before both close: a clean tail after whatever loss or reordering there was.
fn exchange_then_clean(
    cfg: &Config,
    impair: Impair,
    reader: Reader,
    seed: u64,
    rounds: usize,
    clean_rounds: usize,
) -> String {
    let mut p = Pipe::connected(cfg.clone(), Duration::from_millis(5));
    p.impair = impair;
    p.rng = SimRng::new(seed);
    let mut sizes = SimRng::new(seed ^ 0x5eed);
    let mut r = Run {
        buf: vec![0u8; 1 << 16],
        out: String::new(),
        reader,
        pauses: SimRng::new(seed ^ 0x9a05e),
    };
    events(&mut p, &mut r.out);
    for round in 0..rounds {
        let (req, resp) = (
            1 + sizes.below(3000) as usize,
            1 + sizes.below(20_000) as usize,
        );
        move_bytes(&mut p, true, &pattern(req, round as u64), &mut r);
        move_bytes(&mut p, false, &pattern(resp, !(round as u64)), &mut r);
    }
    move_bytes(&mut p, true, &pattern(300_000, seed), &mut r);
    p.impair = Impair::default();
    for round in rounds..rounds + clean_rounds {
        let (req, resp) = (
            1 + sizes.below(3000) as usize,
            1 + sizes.below(20_000) as usize,
        );
        move_bytes(&mut p, true, &pattern(req, round as u64), &mut r);
        move_bytes(&mut p, false, &pattern(resp, !(round as u64)), &mut r);
    }
    p.a.shutdown(Shutdown::Write).unwrap();
    p.b.shutdown(Shutdown::Write).unwrap();
    run_out(&mut p, &mut r);
    report(&p, &r)
}

/// Steps the pipe until nothing more happens (at most 5 s of virtual time).
fn run_out(p: &mut Pipe, r: &mut Run) {
    let end = p.now + Duration::from_secs(5);
    for _ in 0..100_000 {
        let more = p.step();
        events(p, &mut r.out);
        if !more || p.now > end {
            break;
        }
    }
}

/// Everything observable of a run: every segment sent, the events, both ends' statistics,
/// states and counters.
fn report(p: &Pipe, r: &Run) -> String {
    let mut out = String::new();
    for (t, to_b, s) in &p.log {
        writeln!(out, "{t:?} {to_b} {:?} {:?} {:02x?}", s, s.ecn, s.bytes).unwrap();
    }
    out.push_str(&r.out);
    for (name, c) in [("a", &p.a), ("b", &p.b)] {
        writeln!(out, "{name} {:?}\n{:?}", c.info(), c.state()).unwrap();
    }
    writeln!(out, "{:?}\n{:?}", p.ctr_a, p.ctr_b).unwrap();
    out
}

/// The state of one exchange's application and its record of events.
struct Run {
    buf: Vec<u8>,
    out: String,
    reader: Reader,
    pauses: SimRng,
}

/// Writes the events both ends reported since the last call into `out`, with the time.
fn events(p: &mut Pipe, out: &mut String) {
    let now = p.now;
    for (name, c) in [("a", &mut p.a), ("b", &mut p.b)] {
        while let Some(e) = c.poll_event() {
            writeln!(out, "{now:?} {name} event {e:?}").unwrap();
        }
    }
}

/// Writes `data` from a (`from_a`) or b and reads it at the other end, the application
/// acting between every two steps of the pipe; checks what arrived.
fn move_bytes(p: &mut Pipe, from_a: bool, data: &[u8], r: &mut Run) {
    let (mut sent, mut got) = (0, Vec::with_capacity(data.len()));
    let end = p.now + Duration::from_secs(600);
    let mut idle = false;
    // Reading resumes at this instant (a pausing reader).
    let mut resume = p.now;
    for _ in 0..1_000_000 {
        if got.len() >= data.len() {
            assert!(got == data, "the bytes read differ from those written");
            return;
        }
        let (tx, rx) = if from_a {
            (&mut p.a, &mut p.b)
        } else {
            (&mut p.b, &mut p.a)
        };
        let wrote = tx.send(&data[sent..]).unwrap();
        sent += wrote;
        let mut read = 0;
        let paused = p.now < resume;
        while !paused && let Ok(k @ 1..) = rx.recv(&mut r.buf) {
            got.extend_from_slice(&r.buf[..k]);
            read += k;
        }
        if read > 0 && r.reader == Reader::Pausing && r.pauses.chance(0.05) {
            resume = p.now + Duration::from_millis(1 + r.pauses.below(2000));
        }
        let stepped = p.step();
        events(p, &mut r.out);
        if paused && !stepped {
            // Nothing left to happen while the reader waits: it reads now.
            resume = p.now;
            continue;
        }
        // The pipe going idle twice in a row with the application doing nothing in between
        // (the last step may have delivered the ACK that makes room) is a stall.
        let quiet = !stepped && wrote + read == 0;
        assert!(
            !(quiet && idle) && p.now <= end,
            "stalled: {} of {} bytes sent, {} read",
            sent,
            data.len(),
            got.len()
        );
        idle = quiet;
    }
    panic!(
        "{} of {} bytes read after a million steps",
        got.len(),
        data.len()
    );
}

/// Runs `f` with header prediction off and on; requires the same outcome, and that the
/// second run predicted at least `min` segments. Returns how many ACKs of new data
/// `ack_in_order` took in it (from predicted segments and, since K10, from `acknowledge`).
fn same_either_way(min: u64, f: impl Fn() -> String) -> u64 {
    set_header_prediction(false);
    let before = set_header_prediction(false);
    let general = f();
    assert_eq!(
        set_header_prediction(true),
        before,
        "predicted while switched off"
    );
    let fast = f();
    let after = set_header_prediction(true);
    let (predicted, acks) = (after[0] - before[0], after[1] - before[1]);
    assert!(predicted >= min, "only {predicted} segments predicted");
    assert_same_outcome("header prediction", &general, &fast);
    acks
}

/// [`same_either_way`]; returns how many ACKs took `ack_in_order` that header prediction
/// cannot take (in another state than ESTABLISHED, or with a FIN): those `acknowledge`
/// sends there from the general path.
fn same_either_way_beyond_prediction(min: u64, f: impl Fn() -> String) -> u64 {
    let before = header_predictions()[2];
    same_either_way(min, f);
    header_predictions()[2] - before
}

/// At least `min` ACKs of new data went through `ack_in_order` over a test's runs.
fn assert_acks_in_order(acks: u64, min: u64) {
    assert!(
        acks >= min,
        "only {acks} ACKs of new data taken by ack_in_order"
    );
}

fn configs() -> Vec<(&'static str, Config)> {
    let base = config();
    vec![
        ("default", base.clone()),
        (
            "no sack",
            Config {
                sack: false,
                ..base.clone()
            },
        ),
        (
            "no timestamps",
            Config {
                timestamps: false,
                ..base.clone()
            },
        ),
        (
            "no window scaling, small buffers",
            Config {
                window_scaling: false,
                recv_buffer: 8192,
                send_buffer: 16384,
                ..base.clone()
            },
        ),
        (
            // A receive buffer of fixed size keeps the window the same from ACK to ACK
            // once open, so most ACKs of new data are predicted (`ack_in_order`).
            "locked receive buffer",
            Config {
                recv_buffer_locked: true,
                ..base.clone()
            },
        ),
        (
            "ecn, newreno",
            Config {
                ecn: EcnMode::On,
                congestion: Algorithm::NewReno,
                ..base.clone()
            },
        ),
        (
            "bbr",
            Config {
                congestion: Algorithm::Bbr,
                ..base
            },
        ),
    ]
}

#[test]
fn clean_exchanges_are_the_same_with_and_without_prediction() {
    let mut acks = 0;
    for (name, cfg) in configs() {
        eprintln!("{name}");
        acks += same_either_way(100, || {
            exchange(&cfg, Impair::default(), Reader::Eager, 1, 20)
        });
    }
    assert_acks_in_order(acks, 500);
}

#[test]
fn lossy_reordered_exchanges_are_the_same_with_and_without_prediction() {
    let impair = Impair {
        loss: 0.03,
        duplicate: 0.01,
        reorder: 0.05,
        ..Impair::default()
    };
    let mut acks = 0;
    for (name, cfg) in configs() {
        for seed in [2, 3] {
            eprintln!("{name} seed {seed}");
            acks += same_either_way(50, || exchange(&cfg, impair, Reader::Eager, seed, 10));
        }
    }
    assert_acks_in_order(acks, 80);
}

/// Data marked CE on the way (RFC 3168): the receiver echoes ECE until the sender's CWR,
/// the sender reduces once per window, with and without loss.
#[test]
fn ce_marked_exchanges_are_the_same_with_and_without_prediction() {
    let ecn = |congestion| Config {
        ecn: EcnMode::On,
        congestion,
        ..config()
    };
    let cases = [
        ("cubic", ecn(Algorithm::Cubic), 0.0),
        ("newreno", ecn(Algorithm::NewReno), 0.0),
        ("cubic, lossy", ecn(Algorithm::Cubic), 0.02),
    ];
    for (name, cfg, loss) in cases {
        for (ce, seed) in [(0.02, 4), (0.2, 5)] {
            eprintln!("{name} ce {ce}");
            let impair = Impair {
                loss,
                ce,
                reorder: 0.02,
                ..Impair::default()
            };
            let run = || exchange(&cfg, impair, Reader::Eager, seed, 10);
            let out = run();
            for mark in ["ECE", "CWR"] {
                assert!(
                    out.lines().any(|l| l.contains(mark) && !l.contains("SYN")),
                    "{name}: no segment with {mark}"
                );
            }
            same_either_way(20, run);
        }
    }
}

/// A reader that stops now and then: the window closes, the persist timer probes it, and
/// it reopens (RFC 9293 §3.8.6.1).
#[test]
fn paused_reader_exchanges_are_the_same_with_and_without_prediction() {
    let mut acks = 0;
    for (name, cfg) in configs() {
        // A receive buffer small enough to fill while the reader pauses.
        let cfg = Config {
            recv_buffer: 16384,
            recv_buffer_locked: true,
            ..cfg
        };
        for (loss, seed) in [(0.0, 6), (0.02, 7)] {
            eprintln!("{name} loss {loss}");
            let impair = Impair {
                loss,
                ..Impair::default()
            };
            let run = || exchange(&cfg, impair, Reader::Pausing, seed, 10);
            let out = run();
            assert!(out.contains(" Win=0 "), "{name}: the window never closed");
            acks += same_either_way(20, run);
        }
    }
    assert_acks_in_order(acks, 500);
}

/// Whole stacks on the simulated network (`sim::transfer`), with the trace of every packet
/// and state change.
#[test]
fn sim_transfers_are_the_same_with_and_without_prediction() {
    let links = sim_links();
    // A receive buffer of fixed size keeps the window the same from ACK to ACK once open,
    // as header prediction wants it; an autotuned one grows it on most.
    let locked = Config {
        recv_buffer_locked: true,
        ..TransferConfig::default().tcp
    };
    let cases = links
        .into_iter()
        .flat_map(|l| [(l, TransferConfig::default().tcp), (l, locked.clone())]);
    for (i, (link, tcp)) in cases.enumerate() {
        same_either_way(20, || sim_transfer(link, &tcp, 7 + i as u64));
    }
}

/// The links of the sim tests: clean, lossy, reordering.
fn sim_links() -> [LinkConfig; 3] {
    [
        LinkConfig::delay_ms(10),
        LinkConfig::delay_ms(10).with_loss(Loss::Bernoulli(0.02)),
        LinkConfig::delay_ms(5)
            .with_reorder(0.05)
            .with_reorder_delay(Duration::from_millis(3)),
    ]
}

/// One traced 400,000-byte transfer on the simulated network, everything it reports.
fn sim_transfer(link: LinkConfig, tcp: &Config, seed: u64) -> String {
    let r = transfer(&TransferConfig {
        bytes: 400_000,
        link,
        seed,
        trace: true,
        tcp: tcp.clone(),
        ..TransferConfig::default()
    })
    .unwrap();
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        r.trace, r.info, r.server_info, r.client, r.server, r.elapsed
    )
}

/// As above with a send buffer smaller than the transfer. With the default one (1 MiB) the
/// client writes all 400,000 bytes at once and closes: it is in FIN-WAIT-1 for the whole
/// transfer, where header prediction (as Linux's, which `tcp_v4_do_rcv` runs in ESTABLISHED
/// only) takes none of its ACKs, so the runs above reach `ack_in_order` never. Here the
/// client (16 KiB of send buffer) stays ESTABLISHED until its last write, and the ACKs of
/// new data it receives go through `ack_in_order` with prediction on.
#[test]
fn sim_transfers_with_a_small_send_buffer_take_ack_in_order() {
    let tcp = Config {
        send_buffer: 16 * 1024,
        ..TransferConfig::default().tcp
    };
    let mut acks = 0;
    for (i, link) in sim_links().into_iter().enumerate() {
        acks += same_either_way(20, || sim_transfer(link, &tcp, 7 + i as u64));
    }
    // 70 over the three runs; after a loss or a reordering the recovery state, once
    // allocated, keeps the ACKs on the general path.
    assert_acks_in_order(acks, 40);
}

/// One short connection as `synack-bench cps` makes them: a 1-byte request, a 1-byte
/// answer, then the server (b) closes first and the client after it has seen the FIN, so
/// that the ACKs of the two FINs (at the server in FIN-WAIT-1, at the client in LAST-ACK)
/// are ACKs of new data in states header prediction leaves alone.
fn short_connection(cfg: &Config) -> String {
    let mut p = Pipe::connected(cfg.clone(), Duration::from_millis(5));
    let mut r = Run {
        buf: vec![0u8; 1 << 16],
        out: String::new(),
        reader: Reader::Eager,
        pauses: SimRng::new(1),
    };
    events(&mut p, &mut r.out);
    move_bytes(&mut p, true, b"?", &mut r);
    move_bytes(&mut p, false, b"!", &mut r);
    p.b.shutdown(Shutdown::Write).unwrap();
    run_out(&mut p, &mut r);
    p.a.shutdown(Shutdown::Write).unwrap();
    run_out(&mut p, &mut r);
    report(&p, &r)
}

/// `acknowledge` takes an ACK of new data without loss, SACK or ECN echo through
/// `ack_in_order` in any state and with any flags, not only the segments header prediction
/// takes: the same outcome with the switch off (every ACK through the general steps) and
/// on, in short connections, exchanges that close, and transfers whose sender is in
/// FIN-WAIT-1 throughout.
#[test]
fn acks_beyond_prediction_are_the_same_through_ack_in_order() {
    let mut beyond = 0;
    for (name, cfg) in configs() {
        eprintln!("{name}");
        let b = same_either_way_beyond_prediction(1, || short_connection(&cfg));
        if name != "bbr" {
            // The ACKs of the two FINs.
            assert!(
                b >= 2,
                "{name}: only {b} ACKs beyond prediction took ack_in_order"
            );
        }
        beyond += b;
        beyond += same_either_way_beyond_prediction(100, || {
            exchange(&cfg, Impair::default(), Reader::Eager, 1, 5)
        });
    }
    for (i, link) in sim_links().into_iter().enumerate() {
        // The default send buffer: the client closes once all is written, and the ACKs
        // after that reach it in FIN-WAIT-1.
        beyond += same_either_way_beyond_prediction(0, || {
            sim_transfer(link, &TransferConfig::default().tcp, 7 + i as u64)
        });
    }
    // 38 in all: 2 per short connection and 2 or 3 per exchange (BBR none: a model-based
    // controller reads every ACK), 11 in the three transfers.
    assert!(
        beyond >= 30,
        "only {beyond} ACKs beyond prediction took ack_in_order"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn random_exchanges_are_the_same_with_and_without_prediction(
        seed in 0u64..1_000_000,
        loss in 0.0f64..0.05,
        reorder in 0.0f64..0.1,
        duplicate in 0.0f64..0.02,
        ce in prop_oneof![Just(0.0), 0.0f64..0.1],
        pausing in any::<bool>(),
        which in 0usize..7,
    ) {
        let (_, cfg) = configs().swap_remove(which);
        let impair = Impair { loss, duplicate, reorder, ce };
        let reader = if pausing { Reader::Pausing } else { Reader::Eager };
        same_either_way(1, || exchange(&cfg, impair, reader, seed, 4));
    }
}

/// Where b stands when a crafted segment from a arrives.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    /// b has data in flight that a's segment acknowledges.
    Outstanding,
    /// As `Outstanding`, and b's receive buffer is full (b's window is zero).
    ZeroWindow,
}

/// Builds the segments a delivers to b from the one a would send next (`next`, data with
/// an ACK of b's data), knowing b.
type Craft = fn(&Pipe, Inject) -> Vec<Inject>;

/// One crafted exchange: two connections with a fixed 8 KiB receive buffer, some data each
/// way, then b sends 3000 bytes; once a has them, a writes 1000 bytes and its segment,
/// taken off the wire, is rewritten by `craft` and delivered to b alone, at once. Records
/// what b sends and reports, and how many of the crafted segments were predicted (`hits`).
fn crafted_setup(setup: Setup) -> (Pipe, Inject) {
    let cfg = Config {
        recv_buffer: 8192,
        recv_buffer_locked: true,
        ..config()
    };
    let mut p = Pipe::connected(cfg, Duration::from_millis(5));
    let mut r = Run {
        buf: vec![0u8; 1 << 16],
        out: String::new(),
        reader: Reader::Eager,
        pauses: SimRng::new(0),
    };
    move_bytes(&mut p, true, &pattern(5000, 1), &mut r);
    move_bytes(&mut p, false, &pattern(5000, 2), &mut r);
    if setup == Setup::ZeroWindow {
        let fill = pattern(8192, 3);
        let mut sent = 0;
        p.run_until(
            |p| {
                sent += p.a.send(&fill[sent..]).unwrap();
                p.b.rcv.window() == 0 && p.a.snd.una == p.a.snd.max
            },
            Duration::from_secs(10),
        );
    }
    assert_eq!(p.b.send(&pattern(3000, 4)).unwrap(), 3000);
    let want = p.b.snd.nxt + 3000u32;
    p.run_until(|p| p.a.rcv.nxt == want, Duration::from_secs(10));
    while let Ok(1..) = p.a.recv(&mut r.buf) {}
    assert_eq!(p.a.send(&pattern(1000, 5)).unwrap(), 1000);
    let next = drain(&mut p.a, p.now, &mut p.ctr_a)
        .into_iter()
        .find(|s| s.len() > 0 || setup == Setup::ZeroWindow)
        .expect("a sends");
    let r0 = next.repr();
    let template = Inject {
        seq: r0.seq,
        ack: r0.ack,
        flags: r0.flags,
        window: r0.window,
        urgent: r0.urgent,
        options: r0.options,
        payload: r0.payload.to_vec(),
        ..Inject::to_server(Flags::ACK, 0, 0)
    };
    (p, template)
}

/// [`crafted_setup`], then the segments `craft` makes delivered to b.
fn crafted(setup: Setup, craft: Craft, hits: &Cell<u64>) -> String {
    let (mut p, template) = crafted_setup(setup);
    let segs = craft(&p, template);
    while p.b.poll_event().is_some() {}
    let mut out = String::new();
    let before = header_predictions()[0];
    for s in segs {
        let s = s.seg();
        writeln!(out, "in {s:?}").unwrap();
        deliver(&mut p.b, p.now, &s, &mut p.ctr_b);
        for o in drain(&mut p.b, p.now, &mut p.ctr_b) {
            writeln!(out, "out {o:?}").unwrap();
        }
    }
    hits.set(header_predictions()[0] - before);
    while let Some(e) = p.b.poll_event() {
        writeln!(out, "event {e:?}").unwrap();
    }
    writeln!(out, "{:?}\n{:?}\n{:?}", p.b.info(), p.b.state(), p.ctr_b).unwrap();
    out
}

/// Segments at the edges of the predicate (`Connection::predicted`), each delivered to
/// identical connections with prediction off and on: the same outcome, and predicted only
/// when every condition holds.
#[test]
fn crafted_segments_at_the_predicates_edges_are_the_same_either_way() {
    let cases: [(&str, Setup, Craft, u64); 15] = [
        ("as sent", Setup::Outstanding, |_, i| vec![i], 1),
        (
            "tsval = TS.Recent - 1",
            Setup::Outstanding,
            |p, mut i| {
                let recent = p.b.opts.ts().unwrap().recent;
                i.options.timestamps.as_mut().unwrap().tsval = recent.wrapping_sub(1);
                vec![i]
            },
            0,
        ),
        (
            "tsval = TS.Recent",
            Setup::Outstanding,
            |p, mut i| {
                let recent = p.b.opts.ts().unwrap().recent;
                i.options.timestamps.as_mut().unwrap().tsval = recent;
                vec![i]
            },
            1,
        ),
        (
            "a changed window",
            Setup::Outstanding,
            |_, i| {
                let w = i.window - 1;
                vec![i.window(w)]
            },
            1,
        ),
        (
            "a smaller window, ACK = SND.UNA with text",
            Setup::Outstanding,
            |p, mut i| {
                i.ack = p.b.snd.una;
                let w = i.window - 1;
                vec![i.window(w)]
            },
            1,
        ),
        (
            "len = RCV.WND + 1",
            Setup::Outstanding,
            |p, i| {
                let n = p.b.rcv.window() as usize + 1;
                vec![i.data(&pattern(n, 6))]
            },
            0,
        ),
        (
            "len = RCV.WND",
            Setup::Outstanding,
            |p, i| {
                let n = p.b.rcv.window() as usize;
                vec![i.data(&pattern(n, 6))]
            },
            1,
        ),
        (
            "a FIN held beyond a hole, then text in order",
            Setup::Outstanding,
            |_, i| {
                let mut fin = i.clone();
                fin.seq = i.seq + i.payload.len();
                fin.flags |= Flags::FIN;
                vec![fin, i]
            },
            0,
        ),
        (
            "text that fills a hole",
            Setup::Outstanding,
            |_, i| {
                let mut later = i.clone();
                later.seq = i.seq + i.payload.len();
                vec![later, i]
            },
            1,
        ),
        (
            "a pure ACK at a zero window",
            Setup::ZeroWindow,
            |_, i| vec![i.data(&[])],
            1,
        ),
        (
            "text at a zero window",
            Setup::ZeroWindow,
            |_, i| vec![i.data(b"x")],
            0,
        ),
        (
            "ACK = SND.UNA with text",
            Setup::Outstanding,
            |p, mut i| {
                i.ack = p.b.snd.una;
                vec![i]
            },
            1,
        ),
        (
            "ACK = SND.MAX + 1",
            Setup::Outstanding,
            |p, mut i| {
                i.ack = p.b.snd.max + 1u32;
                vec![i]
            },
            0,
        ),
        (
            "ECE and CWR",
            Setup::Outstanding,
            |_, mut i| {
                i.flags |= Flags::ECE | Flags::CWR;
                vec![i]
            },
            0,
        ),
        ("URG", Setup::Outstanding, |_, i| vec![i.urgent(10)], 0),
    ];
    for (name, setup, craft, want) in cases {
        eprintln!("{name}");
        let hits = Cell::new(0);
        same_either_way(0, || crafted(setup, craft, &hits));
        assert_eq!(hits.get(), want, "{name}: predicted {} times", hits.get());
    }
}

/// A peer overrunning our window: text beyond the window offered is kept when the buffer has
/// room (RFC 9293 §3.10.7.4 allows it), which takes RCV.NXT past the right edge offered
/// until the next ACK moves it. Meanwhile the window is zero, not the distance to that edge
/// wrapped around: a segment far beyond is out of the window, dropped and answered with an
/// ACK (RFC 9293 §3.10.7.4 first), not held out of order.
#[test]
fn text_beyond_the_window_closes_it_until_the_next_ack() {
    for on in [false, true] {
        set_header_prediction(on);
        let (mut p, template) = crafted_setup(Setup::Outstanding);
        let (wnd, free) = (p.b.rcv.window(), p.b.rcv.buf.free() as u32);
        assert!(wnd < free, "the buffer has room beyond the window offered");
        let over = template.clone().data(&pattern((wnd + 1000) as usize, 7));
        let mut far = template.data(b"beyond");
        far.seq = over.seq + over.payload.len() + 100_000u32;
        deliver(&mut p.b, p.now, &over.seg(), &mut p.ctr_b);
        assert_eq!(
            p.b.rcv.nxt,
            over.seq + over.payload.len(),
            "the overrun is kept"
        );
        assert_eq!(p.b.rcv.window(), 0, "prediction {on}");
        while p.b.poll_event().is_some() {}
        deliver(&mut p.b, p.now, &far.seg(), &mut p.ctr_b);
        assert!(!p.b.rcv.has_holes(), "prediction {on}: held out of order");
        assert!(
            std::iter::from_fn(|| p.b.poll_event())
                .any(|e| format!("{e:?}").contains("out of window")),
            "prediction {on}: not dropped as out of window"
        );
    }
    set_header_prediction(true);
}

/// The recovery state given back once it holds nothing (`give_back_recovery`) is only a
/// shortcut too: exchanges with loss, duplicates and reordering, then a long clean tail, put
/// the same segments on the wire and report the same events, counters and TCP_INFO with the
/// give-back off and on. With it on, the state was given back at least `min_given` times and
/// at least `min_acks` more ACKs of new data took `ack_in_order` (after a give-back: with
/// it off, a connection's first loss or SACK keeps every later ACK on the general path).
fn same_with_and_without_give_back(min_given: u64, min_acks: u64, f: impl Fn() -> String) {
    let given0 = set_give_back(false);
    let acks0 = header_predictions()[1];
    let kept = run_with_recovery_kept(&f);
    let given1 = set_give_back(true);
    assert_eq!(given0, given1, "given back while switched off");
    let acks1 = header_predictions()[1];
    let freed = run_with_recovery_given_back(&f);
    let given2 = set_give_back(true);
    let acks2 = header_predictions()[1];
    let (given, acks_kept, acks_freed) = (given2 - given1, acks1 - acks0, acks2 - acks1);
    eprintln!("  given back {given}, ack_in_order {acks_kept} kept -> {acks_freed} given back");
    if kept != freed {
        let at = kept
            .lines()
            .zip(freed.lines())
            .position(|(k, f)| k != f)
            .unwrap_or(0);
        panic!(
            "giving the recovery state back changed the outcome at line {at}:\n kept:  {}\n freed: {}",
            kept.lines().nth(at).unwrap_or("(end)"),
            freed.lines().nth(at).unwrap_or("(end)")
        );
    }
    assert!(
        given >= min_given,
        "recovery state given back only {given} times"
    );
    assert!(
        acks_freed >= acks_kept + min_acks,
        "only {} more ACKs took ack_in_order ({acks_kept} -> {acks_freed})",
        acks_freed.saturating_sub(acks_kept)
    );
}

/// The two runs of [`same_with_and_without_give_back`] apart, for callgrind
/// (`--toggle-collect='*run_with_recovery_kept*'`, then `*run_with_recovery_given_back*`).
#[inline(never)]
fn run_with_recovery_kept(f: &impl Fn() -> String) -> String {
    f()
}

#[inline(never)]
fn run_with_recovery_given_back(f: &impl Fn() -> String) -> String {
    f()
}

#[test]
fn lossy_then_clean_exchanges_are_the_same_with_and_without_giving_recovery_back() {
    let impair = Impair {
        loss: 0.03,
        duplicate: 0.01,
        reorder: 0.05,
        ..Impair::default()
    };
    for (name, cfg) in configs() {
        if name == "bbr" {
            // A model-based controller reads every ACK: never ack_in_order, and its rate
            // samples come from the general path either way (covered by the sim runs).
            continue;
        }
        for seed in [2, 3] {
            eprintln!("{name} seed {seed}");
            same_with_and_without_give_back(5, 150, || {
                exchange_then_clean(&cfg, impair, Reader::Eager, seed, 10, 40)
            });
        }
    }
}

#[test]
fn lossy_sim_transfers_are_the_same_with_and_without_giving_recovery_back() {
    let tcp = Config {
        send_buffer: 16 * 1024,
        ..TransferConfig::default().tcp
    };
    let bbr = Config {
        congestion: Algorithm::Bbr,
        ..tcp.clone()
    };
    let [_, lossy, reordering] = sim_links();
    for (i, link) in [lossy, reordering].into_iter().enumerate() {
        same_with_and_without_give_back(3, 30, || sim_transfer(link, &tcp, 7 + i as u64));
        same_with_and_without_give_back(3, 0, || sim_transfer(link, &bbr, 7 + i as u64));
    }
}
