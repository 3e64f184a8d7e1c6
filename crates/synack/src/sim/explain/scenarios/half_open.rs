//! `half-open`: one side crashed and restarted and the other still thinks the connection is
//! open (RFC 9293 §3.5.1): Figure 9 (the restarted side connects again) and Figure 10 (the
//! other side sends data).

use crate::sim::explain::lab::PORT;
use crate::sim::explain::steps::{Match, rule};
use crate::sim::explain::{Ctx, Scenario};
use crate::tcp::{Config, State};
use crate::time::Duration;
use crate::wire::tcp::Flags;

pub(in crate::sim::explain) const SCENARIO: Scenario = Scenario {
    name: "half-open",
    aliases: &[],
    summary: [
        "one side crashes and restarts, the other does not know (RFC 9293 Figures 9, 10)",
        "一方崩溃重启，另一方毫不知情（半开连接，RFC 9293 图 9、图 10）",
    ],
    run,
};

/// The port the client uses before and after its restart.
const CLIENT_PORT: u16 = 40000;

fn run(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "half-open connections: a crash on one side (RFC 9293 Figures 9 and 10)",
        "半开连接：一方崩溃（RFC 9293 图 9 和图 10）",
    );
    ctx.text(
        "A connection is half-open when one side has lost it (a crash and reboot wiped its memory) and the other side still has it open. Nothing is sent on an idle connection, so nobody notices until one side sends something. Then the reset rules sort it out, whichever side speaks first. In the first part sequence numbers are shown as they are on the wire, because the old connection and the new one meet on the same ports.",
        "如果一方丢失了连接（崩溃重启抹掉了它的记忆），而另一方仍然认为连接是打开的，这个连接就是半开连接。空闲的连接上不发送任何东西，所以在一方发送报文之前谁也不会察觉。之后，无论哪一方先开口，复位（RST）规则都会把问题理清。第一部分中新旧两个连接使用同一对端口，所以序列号按线路上的原值显示。",
    );

    // Figure 9: the client restarts and connects again from the same port.
    ctx.heading(
        "Figure 9: the restarted side opens again",
        "图 9：重启的一方再次发起连接",
    );
    let (mut lab, c, s, listener) =
        super::client_server(ctx.seed, Config::default(), Config::default())?;
    let to = lab.sock(s, PORT);
    let from = lab.sock(c, CLIENT_PORT);
    let now = lab.now;
    let h = lab
        .stack(c)
        .connect(now, to, Some(from))
        .map_err(|e| e.to_string())?;
    let old = super::finish_connect(&mut lab, c, s, h, listener)?;
    lab.run_for(Duration::from_secs(1));
    lab.restart(c);
    lab.run_for(Duration::from_secs(1));
    let now = lab.now;
    let h = lab
        .stack(c)
        .connect(now, to, Some(from))
        .map_err(|e| e.to_string())?;
    let mut reset_seen = false;
    let new = lab.run_until(Duration::from_secs(10), |lab| {
        let now = lab.now;
        if !reset_seen {
            let mut buf = [0u8; 16];
            if let Err(e) = lab.stack(s).recv(now, old, &mut buf) {
                reset_seen = true;
                lab.call(s, format!("recv() = -1 {}", super::errno(&e)));
                // What an application does with a reset connection: close the socket.
                lab.stack(s).close(now, old);
                lab.call(s, "close() = 0");
            }
        }
        lab.stack(c)
            .connection(h)
            .is_some_and(|x| x.state() == State::Established)
    });
    if !new {
        return Err("the restarted client did not connect again".into());
    }
    lab.call(c, format!("connect({to}) = 0"));
    let mut accepted = None;
    lab.run_until(Duration::from_secs(1), |lab| {
        accepted = lab.stack(s).accept(listener).ok().flatten();
        accepted.is_some()
    });
    if accepted.is_some() {
        lab.call(s, format!("accept() = {from}"));
    }
    let rules = [
        rule(
            "restart",
            Match::happening("client"),
            "RFC 9293 §3.5.1",
            "Figure 9, line 1: the client crashes and reboots. Its connection is gone; the server still has it ESTABLISHED and has no way to know.",
            "图 9 第 1 行：客户端崩溃并重启，它的连接没了；服务器仍然认为连接处于 ESTABLISHED，而且无从知晓。",
        ),
        rule(
            "syn",
            Match::seg("client")
                .flags(Flags::SYN)
                .after(crate::time::Instant::from_secs(1)),
            "RFC 9293 §3.5.1",
            "Line 3: the restarted client opens again from the same port, so its SYN belongs to the 4-tuple of the connection the server still holds.",
            "第 3 行：重启后的客户端从同一个端口再次发起连接，所以它的 SYN 属于服务器仍然保留的那个连接的四元组。",
        ),
        rule(
            "challenge-ack",
            Match::seg("server").flags(Flags::ACK),
            "RFC 9293 §3.10.7.4",
            "Line 4: a SYN on an ESTABLISHED connection is not a new connection to the server. It answers with an ACK saying what it expects next (Ack={ack}): a challenge ACK, which is also what RFC 5961 §4 asks for so that a blind attacker cannot reset connections with SYNs.",
            "第 4 行：对服务器来说，ESTABLISHED 连接上出现的 SYN 并不是新连接。它回复一个 ACK，说明自己期待的下一个序列号（Ack={ack}）：这就是挑战 ACK，RFC 5961 §4 也要求这样做，以防看不到连接流量的盲攻击者用 SYN 重置连接。",
        ),
        rule(
            "rst",
            Match::seg("client").flags(Flags::RST),
            "RFC 9293 §3.10.7.3",
            "Line 5: the client is in SYN-SENT and that ACK acknowledges nothing it sent, so it answers with a RST whose Seq={seq} is that ACK's number, exactly what the server expects next.",
            "第 5 行：客户端处于 SYN-SENT，而那个 ACK 并不确认它发送过的任何东西，所以客户端回复 RST，其 Seq={seq} 正是那个 ACK 的确认号，也正是服务器期待的下一个序列号。",
        ),
        rule(
            "syn-again",
            Match::seg("client").flags(Flags::SYN),
            "Linux tcp_rcv_synsent_state_process",
            "Line 7, sooner than the figure has it: after the first unacceptable ACK in SYN-SENT the client sends its SYN again two timer ticks (8 ms) later rather than at its 1 s retransmission timeout, as Linux does (an answer to the first SYN may have been lost). By the time it arrives the RST has done its work.",
            "第 7 行，比图中更早：在 SYN-SENT 中第一次收到不可接受的 ACK 后，客户端不等 1 秒的重传超时，而是两个定时器节拍（8 毫秒）之后就再次发送 SYN，这是 Linux 的做法（对第一个 SYN 的回应可能丢了）。等它到达时，RST 已经起了作用。",
        ),
        rule(
            "abort",
            Match::state("server", State::Established, State::Closed),
            "RFC 9293 §3.10.7.4",
            "The RST is exactly in sequence, so the server aborts the stale connection (line 5, \"Abort!!\"), and its application is told: the next recv() fails with ECONNRESET.",
            "这个 RST 的序列号完全吻合，于是服务器中止这个过时的连接（第 5 行的“Abort!!”），并通知它的应用：下一次 recv() 以 ECONNRESET 失败。",
        ),
        rule(
            "established",
            Match::state("server", State::SynReceived, State::Established),
            "RFC 9293 §3.5.1",
            "An ordinary three-way handshake follows (\"the problem is now reduced to the basic three-way handshake\"), and the server accepts a fresh connection.",
            "接下来是普通的三次握手（“问题就归结为基本的三次握手”），服务器接受了一个全新的连接。",
        ),
    ];
    ctx.absolute_conversation(lab, &rules);

    // Figure 10: the server sends on the connection the client forgot.
    ctx.heading(
        "Figure 10: the other side sends data",
        "图 10：另一方发送数据",
    );
    let (mut lab, c, s, listener) =
        super::client_server(ctx.seed, Config::default(), Config::default())?;
    let (_client, server) = super::connect(&mut lab, c, s, listener)?;
    lab.run_for(Duration::from_secs(1));
    lab.restart(c);
    lab.run_for(Duration::from_secs(1));
    let now = lab.now;
    let n = lab
        .stack(s)
        .send(now, server, b"hello, are you there?")
        .map_err(|e| e.to_string())?;
    lab.call(s, format!("send({n} bytes) = {n}"));
    let mut result = None;
    lab.run_until(Duration::from_secs(5), |lab| {
        let now = lab.now;
        let mut buf = [0u8; 16];
        if let Err(e) = lab.stack(s).recv(now, server, &mut buf) {
            result = Some(e);
        }
        result.is_some()
    });
    let e = result.ok_or("the server was never told")?;
    lab.call(s, format!("recv() = -1 {}", super::errno(&e)));
    let rules = [
        rule(
            "restart",
            Match::happening("client"),
            "RFC 9293 §3.5.1",
            "Figure 10, line 1: the client reboots; the server's connection to it is now half-open.",
            "图 10 第 1 行：客户端重启；服务器到它的连接现在成了半开连接。",
        ),
        rule(
            "data",
            Match::seg("server").data(true),
            "RFC 9293 §3.5.1",
            "Line 2: the server sends data on the connection it believes open.",
            "第 2 行：服务器在它认为仍然打开的连接上发送数据。",
        ),
        rule(
            "rst",
            Match::seg("client").flags(Flags::RST),
            "RFC 9293 §3.10.7.1",
            "Line 3: the client has no connection for this segment (CLOSED), so it answers with a reset. The segment carries an ACK, so the reset is <SEQ=SEG.ACK><CTL=RST>: Seq={seq}, the one number the server will accept.",
            "第 3 行：客户端没有与这个报文段对应的连接（CLOSED），于是回复 RST。该报文段带有 ACK，所以 RST 的形式是 <SEQ=SEG.ACK><CTL=RST>：Seq={seq}，正是服务器唯一会接受的那个序列号。",
        ),
        rule(
            "abort",
            Match::state("server", State::Established, State::Closed),
            "RFC 9293 §3.10.7.4",
            "The server accepts the RST and aborts the connection (\"ABORT!!\").",
            "服务器接受这个 RST 并中止连接（“ABORT!!”）。",
        ),
        rule(
            "econnreset",
            Match::call("server", "ECONNRESET"),
            "RFC 9293 §3.10.7.4",
            "Its application learns it from the next call on the socket: \"connection reset\".",
            "服务器应用在下一次操作这个套接字时得知：“连接被重置”。",
        ),
    ];
    ctx.conversation(lab, &rules);
    ctx.text(
        "Either way the half-open connection is found and cleared as soon as anyone sends. A connection on which nobody ever sends stays half-open forever; keepalive exists to find those (see the keepalive scenario).",
        "无论哪种情况，只要有一方发送报文，半开连接就会被发现并清除。如果双方都从不发送，连接会一直处于半开状态；保活（keepalive）机制正是为了发现这种连接（见 keepalive 场景）。",
    );
    Ok(())
}
