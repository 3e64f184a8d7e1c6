//! `syn-flood`: spoofed SYNs fill a listener's SYN queue (RFC 4987). Without SYN cookies a
//! real client cannot get in; with them it can. The counters of both runs side by side.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::device::SimRng;
use crate::sim::explain::View;
use crate::sim::explain::lab::{Lab, PORT, craft_syn};
use crate::sim::explain::steps::{Match, Rule, Step, What, rule};
use crate::sim::explain::{Ctx, Lang, Scenario};
use crate::tcp::{Config, Counters, State, SynCookies};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

use super::{CLIENT_ADDR, SERVER_ADDR};

pub(in crate::sim::explain) const SCENARIO: Scenario = Scenario {
    name: "syn-flood",
    aliases: &["syn-cookies"],
    summary: [
        "spoofed SYNs fill the SYN queue; SYN cookies let real clients in (RFC 4987)",
        "伪造的 SYN 占满 SYN 队列；SYN Cookie 让真实客户端得以连接（RFC 4987）",
    ],
    run,
};

/// The listener's SYN queue: tiny, so that a few SYNs fill it (Linux's is thousands).
const BACKLOG: usize = 4;
/// The flood: this many spoofed SYNs…
const BURST: usize = 6;
/// …every this long, for the whole run.
const EVERY: Duration = Duration::from_millis(250);
/// When the real client calls connect().
const CLIENT_START: Duration = Duration::from_millis(50);
/// Flood lines before this are shown (the first burst), later ones only counted.
const SHOW_FLOOD_UNTIL: Instant = Instant::from_millis(30);

/// What one run did.
struct Outcome {
    lab: Lab,
    server: Counters,
    spoofed: u64,
    /// The client's connect(): when it finished, and its error if it failed.
    connect: Option<(Instant, Option<std::io::Error>)>,
}

fn flood(seed: u64, cookies: SynCookies, end: Option<Instant>) -> Result<Outcome, String> {
    let server_cfg = Config {
        max_syn_backlog: BACKLOG,
        syncookies: cookies,
        ..Config::default()
    };
    let mut lab = Lab::new(seed);
    let c = lab.host("client", CLIENT_ADDR, Config::default());
    let s = lab.host("server", SERVER_ADDR, server_cfg);
    let attacker = lab.host("attacker", Ipv4Addr::new(198, 18, 0, 66), Config::default());
    let to = lab.sock(s, PORT);
    let listener = lab.stack(s).listen(to, 16).map_err(|e| e.to_string())?;
    let mut rng = SimRng::new(seed ^ 0xf100d);
    let mut spoofed = 0u64;
    let mut client = None;
    let mut connect = None;
    let mut next_burst = Instant::ZERO;
    // Bounded: the client gives up after its SYN retries (127 s with Linux's 6).
    let limit = end.unwrap_or(Instant::from_secs(200));
    while lab.now < limit {
        if lab.now >= next_burst {
            for _ in 0..BURST {
                let r = rng.next_u64();
                let src = SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(198, 19, (r >> 8) as u8, r as u8)),
                    (r >> 16) as u16 | 1024,
                );
                let syn = craft_syn(src, to, (r >> 32) as u32, (r >> 24) as u32);
                lab.inject(attacker, &syn, ["spoofed SYN", "伪造的 SYN"]);
                spoofed += 1;
            }
            next_burst += EVERY;
        }
        if client.is_none() && lab.now >= Instant::ZERO + CLIENT_START {
            let now = lab.now;
            client = Some(
                lab.stack(c)
                    .connect(now, to, None)
                    .map_err(|e| e.to_string())?,
            );
        }
        let wake = if client.is_none() {
            next_burst.min(Instant::ZERO + CLIENT_START)
        } else {
            next_burst
        };
        let step = wake.max(lab.now) - lab.now;
        let mut finished: Option<Option<std::io::Error>> = None;
        lab.run_until(step, |lab| {
            let Some(h) = client.filter(|_| connect.is_none()) else {
                return false;
            };
            match lab.stack(c).connection(h).map(|x| (x.state(), x.error())) {
                Some((st, _)) if st.is_synchronized() => finished = Some(None),
                Some((State::Closed, Some(e))) => finished = Some(Some(e.into())),
                _ => {}
            }
            finished.is_some()
        });
        let Some(err) = finished else { continue };
        let text = match &err {
            None => format!("connect({to}) = 0"),
            Some(e) => format!("connect({to}) = -1 {}", super::errno(e)),
        };
        lab.call(c, text);
        let ok = err.is_none();
        connect = Some((lab.now, err));
        if ok {
            let mut accepted = None;
            lab.run_until(Duration::from_secs(1), |lab| {
                accepted = lab.stack(s).accept(listener).ok().flatten();
                accepted.is_some()
            });
            if let Some(a) = accepted {
                if let Some(peer) = lab.stack(s).connection(a).map(|x| x.remote()) {
                    lab.call(s, format!("accept() = {peer}"));
                }
            }
        }
        if end.is_none() {
            break;
        }
    }
    let server = lab.stack(s).counters().clone();
    Ok(Outcome {
        lab,
        server,
        spoofed,
        connect,
    })
}

/// The lines about the real client (and the first burst of the flood) are printed.
fn about_client(s: &Step) -> bool {
    if s.time < SHOW_FLOOD_UNTIL || s.node == "client" {
        return true;
    }
    let client = IpAddr::V4(CLIENT_ADDR);
    if s.states.iter().any(|c| c.remote.ip() == client) || s.line.contains("198.18.0.1:") {
        return true;
    }
    match &s.what {
        What::Call { .. } => true,
        What::Segment { to, from, .. } => to == "client" || from == "client",
        What::Drop { .. } => s.line.contains("client \u{2192}"),
        _ => false,
    }
}

fn run(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "a SYN flood, with and without SYN cookies (RFC 4987)",
        "SYN 洪泛攻击：开启与不开启 SYN Cookie（RFC 4987）",
    );
    ctx.text(
        "An attacker sends SYNs from forged source addresses (198.19.x.y, where no host lives), six every 250 ms. The server answers each with a SYN-ACK that goes nowhere and keeps each as a half-open connection in its SYN queue, waiting for a third segment that never comes. Its SYN queue holds 4 here so that a few SYNs fill it (Linux's default tcp_max_syn_backlog is in the thousands; a real flood sends millions). At 0.05 s a real client tries to connect. The flood goes on all the time; only its first burst is printed.",
        "攻击者从伪造的源地址（198.19.x.y，那里没有任何主机）发送 SYN，每 250 毫秒 6 个。服务器对每个 SYN 都回复一个无处可去的 SYN-ACK，并把它作为半连接保存在 SYN 队列（即半连接队列）中，等待永远不会到来的第三个报文段。这里 SYN 队列只有 4 个位置，几个 SYN 就能把它占满（Linux 默认的 tcp_max_syn_backlog 有几千，真实的洪泛攻击会发送数百万个 SYN）。在 0.05 秒时，一个真实的客户端尝试连接。洪泛一直持续，这里只打印第一波。",
    );

    ctx.heading(
        "SYN cookies off (tcp_syncookies = 0)",
        "关闭 SYN Cookie（tcp_syncookies = 0）",
    );
    let off = flood(ctx.seed, SynCookies::Never, None)?;
    let end = off.lab.now;
    let off_rules: [Rule; 6] = [
        rule(
            "first-spoofed",
            Match::seg("network"),
            "RFC 4987 §2.2",
            "A spoofed SYN: the source address is forged, so the SYN-ACK will go to a host that does not exist and no third segment will ever come.",
            "一个伪造的 SYN：源地址是假的，所以 SYN-ACK 会发往一个不存在的主机，第三个报文段永远不会到来。",
        ),
        rule(
            "half-open",
            Match::seg("server").flags(Flags::SYN | Flags::ACK),
            "RFC 9293 §3.10.7.2",
            "The server answers as for any SYN and keeps the half-open connection (SYN-RECEIVED) in its SYN queue; it will send this SYN-ACK again and again for about a minute before giving up.",
            "服务器像对待任何 SYN 一样回应，并把这个半连接（SYN-RECEIVED）保存在 SYN 队列中；在放弃之前，它会在大约一分钟内反复重发这个 SYN-ACK。",
        ),
        rule(
            "queue-full",
            Match::drop("server", "SYN queue full"),
            "RFC 4987 §2.2",
            "After four half-open connections the SYN queue is full, and with cookies off a SYN that finds it full is simply dropped.",
            "四个半连接之后 SYN 队列就满了；在不开 SYN Cookie 时，遇到队列已满的 SYN 会被直接丢弃。",
        ),
        rule(
            "client-dropped",
            Match::drop("server", "client \u{2192} server"),
            "RFC 4987 §2.2",
            "The real client's SYN finds the queue full too and is dropped like the attacker's: the server cannot tell them apart.",
            "真实客户端的 SYN 同样遇到队列已满而被丢弃，和攻击者的 SYN 一样：服务器无法区分它们。",
        ),
        rule(
            "client-retries",
            Match::seg("client")
                .flags(Flags::SYN)
                .after(Instant::from_secs(1)),
            "RFC 6298 §5 (5.5)",
            "The client hears nothing and sends its SYN again: every second for the first five tries (Linux's tcp_syn_linear_timeouts), then doubling the wait each time (2, 4, 8… seconds); the flood keeps the queue full, so every retransmission is dropped too.",
            "客户端什么也没收到，于是重发 SYN：前五次每秒一次（Linux 的 tcp_syn_linear_timeouts），之后每次等待时间加倍（2、4、8……秒）；洪泛让队列一直是满的，所以每次重传也都被丢弃。",
        ),
        rule(
            "timeout",
            Match::call("client", "ETIMEDOUT"),
            "RFC 9293 §3.8.3",
            "After its last retry the client gives up: connect() fails with ETIMEDOUT. Linux's 6 SYN retries (plus the 4 linear ones) take a little over two minutes (RFC 9293 asks for at least three). The attack needed two dozen SYNs a second.",
            "最后一次重试之后客户端放弃：connect() 以 ETIMEDOUT 失败。Linux 的 6 次 SYN 重试（外加 4 次线性重试）持续两分钟多一点（RFC 9293 要求至少三分钟）。攻击者每秒只需要二十几个 SYN。",
        ),
    ];
    let off_counters = off.server.clone();
    let (off_spoofed, off_connect) = (off.spoofed, off.connect);
    ctx.conversation_with(
        off.lab,
        &off_rules,
        View {
            show: Some(&about_client),
            elided: Some((
                "lines of the flood not shown (spoofed SYNs, SYN-ACKs to nowhere and their retransmissions, drops)",
                "行洪泛相关内容未显示（伪造的 SYN、发往不存在主机的 SYN-ACK 及其重传、丢弃）",
            )),
            ..View::default()
        },
    );

    ctx.heading(
        "SYN cookies on (tcp_syncookies = 1, Linux's default)",
        "开启 SYN Cookie（tcp_syncookies = 1，Linux 默认值）",
    );
    let on = flood(ctx.seed, SynCookies::OnOverflow, Some(end))?;
    let on_rules: [Rule; 4] = [
        rule(
            "cookie-sent",
            Match::note("server", "SYN cookie sent"),
            "RFC 4987 §3.6",
            "The queue is full, so instead of dropping the SYN the server answers with a SYN cookie: the SYN-ACK's sequence number encodes the connection (a keyed hash of addresses, ports and time, plus the MSS), and the server keeps nothing at all.",
            "队列已满，服务器不再丢弃 SYN，而是用 SYN Cookie 回应：SYN-ACK 的序列号本身编码了这个连接（对地址、端口和时间的带密钥哈希，再加上 MSS），服务器自己什么都不保存。",
        ),
        rule(
            "client-cookie",
            Match::seg("server")
                .to("client")
                .flags(Flags::SYN | Flags::ACK),
            "RFC 4987 §3.6",
            "The real client's SYN gets a cookie too. Its SYN-ACK reaches a host that exists, so this one will be answered.",
            "真实客户端的 SYN 同样得到一个 Cookie。它的 SYN-ACK 到达的是一个真实存在的主机，所以会得到回应。",
        ),
        rule(
            "cookie-ack",
            Match::note("server", "SYN cookie accepted"),
            "RFC 4987 §3.6",
            "The client's ACK echoes the cookie (Ack = cookie + 1). The server checks it against its secret, rebuilds the connection from it (MSS, window scale, SACK, timestamps from the TSval bits) and only now allocates anything.",
            "客户端的 ACK 回显了这个 Cookie（Ack = Cookie + 1）。服务器用自己的密钥校验它，从中重建连接（MSS、窗口缩放、SACK，以及从 TSval 位恢复的时间戳选项），直到这时才分配资源。",
        ),
        rule(
            "accepted",
            Match::call("server", "accept()"),
            "RFC 4987 §3.6",
            "The client is in, one round trip after it asked, while the flood goes on: each spoofed SYN costs the server one SYN-ACK and no memory.",
            "客户端在发起请求一个往返时间之后就连上了，而洪泛仍在继续：每个伪造的 SYN 只让服务器付出一个 SYN-ACK，不占用任何内存。",
        ),
    ];
    let on_counters = on.server.clone();
    let (on_spoofed, on_connect) = (on.spoofed, on.connect);
    ctx.conversation_with(
        on.lab,
        &on_rules,
        View {
            show: Some(&about_client),
            elided: Some((
                "lines of the flood not shown (spoofed SYNs, SYN-ACKs to nowhere, cookies)",
                "行洪泛相关内容未显示（伪造的 SYN、发往不存在主机的 SYN-ACK、Cookie）",
            )),
            ..View::default()
        },
    );

    ctx.heading("the two runs side by side", "两次运行对比");
    let lang = ctx.lang;
    let secs = |t: Instant| {
        let s = t.total_micros() as f64 / 1e6;
        match lang {
            Lang::En => format!("{s:.3} s"),
            Lang::Zh => format!("{s:.3} 秒"),
        }
    };
    let result = |c: &Option<(Instant, Option<std::io::Error>)>| {
        let (t, what) = match c {
            Some((t, None)) => (*t, "= 0".to_string()),
            Some((t, Some(e))) => (
                *t,
                format!("= -1 {}", super::errno(e).split(' ').next().unwrap_or("")),
            ),
            None => return lang.pick("still waiting", "仍在等待").to_string(),
        };
        match lang {
            Lang::En => format!("{what} at {}", secs(t)),
            Lang::Zh => format!("{what}（{}时）", secs(t)),
        }
    };
    let row = |label: &str, a: String, b: String| vec![label.to_string(), a, b];
    let n = |v: u64| v.to_string();
    let rows = vec![
        row(
            "",
            ctx.t("cookies off", "关闭 Cookie").to_string(),
            ctx.t("cookies on", "开启 Cookie").to_string(),
        ),
        row(
            ctx.t("spoofed SYNs sent", "发送的伪造 SYN"),
            n(off_spoofed),
            n(on_spoofed),
        ),
        row(
            ctx.t(
                "SynQueuePeak (most half-open held)",
                "SynQueuePeak（同时存在的半连接最多时）",
            ),
            n(off_counters.syn_queue_peak),
            n(on_counters.syn_queue_peak),
        ),
        row(
            ctx.t(
                "TCPReqQFullDrop (SYNs dropped, queue full)",
                "TCPReqQFullDrop（队列满而丢弃的 SYN）",
            ),
            n(off_counters.req_q_full_drop),
            n(on_counters.req_q_full_drop),
        ),
        row(
            ctx.t(
                "TCPReqQFullDoCookies (cookies instead)",
                "TCPReqQFullDoCookies（改用 Cookie）",
            ),
            n(off_counters.req_q_full_do_cookies),
            n(on_counters.req_q_full_do_cookies),
        ),
        row(
            ctx.t(
                "SyncookiesSent (SYN-ACKs with a cookie)",
                "SyncookiesSent（带 Cookie 的 SYN-ACK）",
            ),
            n(off_counters.syncookies_sent),
            n(on_counters.syncookies_sent),
        ),
        row(
            ctx.t(
                "SyncookiesRecv (valid cookies back)",
                "SyncookiesRecv（收回的有效 Cookie）",
            ),
            n(off_counters.syncookies_recv),
            n(on_counters.syncookies_recv),
        ),
        row(
            ctx.t(
                "PassiveOpens (connections accepted)",
                "PassiveOpens（建立的连接）",
            ),
            n(off_counters.passive_opens),
            n(on_counters.passive_opens),
        ),
        row(
            ctx.t("the real client's connect()", "真实客户端的 connect()"),
            result(&off_connect),
            result(&on_connect),
        ),
    ];
    ctx.table(rows);
    ctx.text(
        "Both runs last until the client without cookies gives up. The defence costs nothing until the queue overflows: with tcp_syncookies = 1 cookies are used only then, because a cookie can carry only a few option bits (here they ride in the timestamp).",
        "两次运行的时长相同，都持续到不开 Cookie 的那个客户端放弃为止。这种防御在队列溢出之前没有任何代价：tcp_syncookies = 1 时只在溢出时才使用 Cookie，因为 Cookie 只能携带很少的选项信息（这里借用了时间戳选项的位）。",
    );
    Ok(())
}
