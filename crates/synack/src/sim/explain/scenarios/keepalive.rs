//! `keepalive`: an idle connection probed, answered; then the peer vanishes and the probes
//! time the connection out (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6; Linux's 7200/75/9).

use crate::sim::explain::lab::Transit;
use crate::sim::explain::steps::{Match, rule};
use crate::sim::explain::{Ctx, Scenario};
use crate::tcp::{Config, Keepalive, State};
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

pub(in crate::sim::explain) const SCENARIO: Scenario = Scenario {
    name: "keepalive",
    aliases: &[],
    summary: [
        "an idle connection is probed; the peer vanishes and the probes go unanswered",
        "空闲连接的保活探测；对端消失后探测无人应答",
    ],
    run,
};

fn run(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "keepalive: is anybody there?",
        "保活（keepalive）：对方还在吗？",
    );
    ctx.text(
        "An idle TCP connection sends nothing at all, so if the peer disappears without a word (power cut, cable pulled, a NAT that forgot the mapping) the other side could wait forever. Keepalive probes an idle connection. It is off unless the application turns it on, and then Linux waits 7200 s of silence (tcp_keepalive_time), probes every 75 s (tcp_keepalive_intvl) and gives up after 9 unanswered probes (tcp_keepalive_probes); those are the values here. Two hours of virtual time take no time at all.",
        "空闲的 TCP 连接根本不发送任何东西，所以如果对端悄无声息地消失了（断电、拔掉网线、NAT 忘掉了映射），另一端可能永远等下去。保活机制会探测空闲的连接。它默认关闭，除非应用打开它；打开后，Linux 在静默 7200 秒后开始探测（tcp_keepalive_time），每 75 秒探测一次（tcp_keepalive_intvl），连续 9 次无应答后放弃（tcp_keepalive_probes）；这里用的就是这些值。两个小时的虚拟时间转瞬即过。",
    );
    let (mut lab, c, s, listener) =
        super::client_server(ctx.seed, Config::default(), Config::default())?;
    let (client, _server) = super::connect(&mut lab, c, s, listener)?;
    let now = lab.now;
    lab.stack(c)
        .set_option(
            now,
            client,
            crate::stack::SocketOption::Keepalive(Some(Keepalive::default())),
        )
        .map_err(|_| "the client's connection is gone")?;
    lab.call(c, "setsockopt(SO_KEEPALIVE, 1) = 0");
    // The first probe, answered.
    lab.run_for(Duration::from_secs(7300));
    lab.down(s);
    let mut error = None;
    lab.run_until(Duration::from_secs(4 * 3600), |lab| {
        let now = lab.now;
        let mut buf = [0u8; 16];
        if let Err(e) = lab.stack(c).recv(now, client, &mut buf) {
            error = Some(e);
        }
        error.is_some()
    });
    let e = error.ok_or("the client never gave up")?;
    lab.call(c, format!("recv() = -1 {}", super::errno(&e)));
    let idle = Instant::from_secs(7200);
    let rules = [
        rule(
            "on",
            Match::call("client", "SO_KEEPALIVE"),
            "RFC 9293 §3.8.4",
            "The application turns keepalive on for this connection; it must be off by default (MUST-25), and the idle time must default to no less than two hours (MUST-28).",
            "应用为这个连接打开保活；保活默认必须关闭（MUST-25），空闲时间默认不得少于两小时（MUST-28）。",
        ),
        rule(
            "probe",
            Match::seg("client").flags(Flags::ACK).after(idle),
            "RFC 9293 §3.8.4",
            "Two hours without receiving anything: the first probe. It carries no data and Seq={seq}, one less than the next byte the client would send (SND.NXT − 1), a number the server has already acknowledged, so the server must answer it.",
            "两小时内没有收到任何东西：发出第一个探测。它不带数据，Seq={seq}，比客户端将要发送的下一个字节小一（SND.NXT − 1），这是服务器已经确认过的序列号，所以服务器必须回应。",
        ),
        rule(
            "old-segment",
            Match::drop("server", "out of window"),
            "RFC 9293 §3.10.7.4",
            "For the server the probe is an old, unacceptable segment, and an unacceptable segment is answered with an ACK saying what it expects next.",
            "对服务器来说，这个探测是一个旧的、不可接受的报文段，而对不可接受的报文段要回复一个 ACK，说明自己期待的下一个序列号。",
        ),
        rule(
            "answer",
            Match::seg("server").flags(Flags::ACK),
            "RFC 1122 §4.2.3.6",
            "The answer proves the server is alive; the client's idle timer starts again from zero.",
            "这个回应证明服务器还活着；客户端的空闲计时重新从零开始。",
        ),
        rule(
            "down",
            Match::happening("server"),
            "RFC 9293 §3.8.4",
            "The server vanishes without sending anything: no FIN, no RST. The client cannot notice; nothing is being sent.",
            "服务器消失了，没有发出任何报文：没有 FIN，也没有 RST。客户端无法察觉，因为双方都没有在发送。",
        ),
        rule(
            "unanswered",
            Match::seg("client")
                .flags(Flags::ACK)
                .transit(Transit::HostDown),
            "RFC 9293 §3.8.4",
            "Two hours after the last answer the next probe goes out, and nobody answers it.",
            "距上一次回应两小时后，下一个探测发出，但没有人回应。",
        ),
        rule(
            "repeat",
            Match::seg("client")
                .flags(Flags::ACK)
                .transit(Transit::HostDown),
            "RFC 9293 §3.8.4",
            "Unanswered probes are repeated every 75 s: an ACK without data is not delivered reliably, so one missing answer must not be taken for a dead peer (MUST-29).",
            "无应答的探测每 75 秒重复一次：不带数据的 ACK 并不可靠传输，所以不能因为一次没有回应就认定对端已死（MUST-29）。",
        ),
        rule(
            "dead",
            Match::state("client", State::Established, State::Closed),
            "RFC 9293 §3.8.4",
            "75 s after the ninth unanswered probe Linux declares the connection dead: 7200 + 9 × 75 = 7875 s after the last sign of life. It sends a RST as it gives up (here nobody receives it).",
            "第九次探测无应答之后再过 75 秒，Linux 判定连接已死：距最后一次有生命迹象已过 7200 + 9 × 75 = 7875 秒。放弃时它会发送 RST（这里没有人能收到）。",
        ),
        rule(
            "etimedout",
            Match::call("client", "ETIMEDOUT"),
            "RFC 9293 §3.8.3",
            "The application learns it from its next call on the socket: ETIMEDOUT.",
            "应用在下一次操作这个套接字时得知：ETIMEDOUT。",
        ),
    ];
    ctx.conversation(lab, &rules);
    Ok(())
}
