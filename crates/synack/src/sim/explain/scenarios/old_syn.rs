//! `old-duplicate-syn` (`why-third-ack`): RFC 9293 Figure 8 run, then the same exchange as it
//! would go if a connection opened after two steps, narrated.

use crate::sim::explain::lab::{Fate, PORT, Transit, craft_syn};
use crate::sim::explain::steps::{Match, rule};
use crate::sim::explain::{Ctx, Scenario};
use crate::tcp::{Config, State};
use crate::time::Duration;
use crate::wire::tcp::Flags;

pub(in crate::sim::explain) const SCENARIO: Scenario = Scenario {
    name: "old-duplicate-syn",
    aliases: &["why-third-ack"],
    summary: [
        "why a third step: an old duplicate SYN is refused (RFC 9293 Figure 8)",
        "为什么要第三步：旧的重复 SYN 被拒绝（RFC 9293 图 8）",
    ],
    run,
};

/// The port the client connects from, now and in the earlier connection the old SYN is from.
const CLIENT_PORT: u16 = 40000;
/// How far below the client's ISN the old SYN's sequence number is (the RFC's 90 and 100).
const OLD_BELOW: u32 = 10;
/// How long the client's SYN is held up in the network: longer than the scenario runs, so
/// the copy the client sends after the unacceptable ACK is the one that gets through.
const HELD: Duration = Duration::from_secs(1);

fn run(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "why the handshake needs a third step (RFC 9293 Figure 8)",
        "为什么握手需要第三步（RFC 9293 图 8）",
    );
    ctx.text(
        "A SYN from an earlier connection between the same two ports has been wandering in the network, and it reaches the server before the client's new SYN, which is held up. The server cannot tell old from new. The third step of the handshake is what lets the client say \"that is not mine\". Sequence numbers are shown as they are on the wire here, as in the RFC's figure, because two SYNs with different ISNs meet.",
        "同一对端口之间一条早先连接的 SYN 一直在网络中游荡，它比客户端新发的 SYN（被网络耽搁了）先到达服务器。服务器无法区分新旧。握手的第三步正是让客户端能够说“这不是我的”。由于两个 ISN 不同的 SYN 在这里相遇，序列号按线路上的原值显示，与 RFC 的图一致。",
    );
    let (mut lab, c, s, listener) =
        super::client_server(ctx.seed, Config::default(), Config::default())?;
    // Line 2: the client's SYN is held up in the network ("...").
    lab.set_fate(|p| {
        if p.node == "client" && p.nth == 1 {
            Fate::Delay(HELD)
        } else {
            Fate::Deliver
        }
    });
    let (from, to) = (lab.sock(c, CLIENT_PORT), lab.sock(s, PORT));
    let now = lab.now;
    let h = lab
        .stack(c)
        .connect(now, to, Some(from))
        .map_err(|e| e.to_string())?;
    let iss = lab
        .stack(c)
        .connection(h)
        .map(|x| x.iss())
        .ok_or("the client has no connection")?;
    lab.run_for(Duration::from_millis(1));
    // Line 3: the old duplicate arrives first.
    let old = craft_syn(from, to, iss.0.wrapping_sub(OLD_BELOW), 0x0bad_cafe);
    lab.inject(c, &old, ["old duplicate SYN", "旧的重复 SYN"]);
    super::finish_connect(&mut lab, c, s, h, listener)?;
    lab.run_for(Duration::from_millis(50));

    let rules = [
        rule(
            "syn",
            Match::seg("client")
                .flags(Flags::SYN)
                .transit(Transit::Delayed(HELD)),
            "RFC 9293 §3.5",
            "Line 2 of Figure 8: the client sends its SYN with its new ISN, Seq={seq}, and the network holds it up for a while (the figure's \"...\").",
            "图 8 第 2 行：客户端以新的 ISN 发送 SYN，Seq={seq}，但网络把它耽搁了一段时间（图中的“...”）。",
        ),
        rule(
            "old-syn",
            Match::seg("network").transit(Transit::Injected),
            "RFC 9293 §3.5",
            "Line 3: an old duplicate SYN from an earlier connection between the same ports, Seq={seq}, arrives at the server first.",
            "第 3 行：同一对端口之间早先连接遗留的旧重复 SYN，Seq={seq}，先到达了服务器。",
        ),
        rule(
            "synack-to-old",
            Match::seg("server").flags(Flags::SYN | Flags::ACK),
            "RFC 9293 §3.10.7.2",
            "Line 4: the server cannot know the SYN is old, so it answers as it answers every SYN: its own SYN and Ack={ack}, the old SYN's number plus one. It goes to SYN-RECEIVED and waits for the third step.",
            "第 4 行：服务器无法知道这个 SYN 是旧的，于是像回应任何 SYN 一样回应它：发送自己的 SYN，并确认 Ack={ack}，即旧 SYN 的序列号加一。服务器进入 SYN-RECEIVED，等待第三步。",
        ),
        rule(
            "rst",
            Match::seg("client").flags(Flags::RST),
            "RFC 9293 §3.10.7.3",
            "Line 5: the client, in SYN-SENT, expects Ack to be its ISN plus one. This SYN-ACK acknowledges a SYN it never sent, so it answers with a reset whose Seq={seq} is that segment's Ack, so that the server will accept it.",
            "第 5 行：处于 SYN-SENT 的客户端期待的确认号是自己的 ISN 加一，而这个 SYN-ACK 确认的是一个它从未发送过的 SYN，于是它回复 RST，其 Seq={seq} 取自该报文段的确认号，这样服务器才会接受这个 RST。",
        ),
        rule(
            "syn-again",
            Match::seg("client").flags(Flags::SYN),
            "Linux tcp_rcv_synsent_state_process",
            "The client also sends its SYN again, two timer ticks (8 ms) later instead of at its 1 s retransmission timeout, as Linux does after the first unacceptable ACK in SYN-SENT: the peer may have answered the first SYN and that answer may be lost (\"Previous FIN/ACK or RST/ACK might be ignored\"). The original is still held up.",
            "客户端还会再次发送它的 SYN：不等 1 秒的重传超时，而是两个定时器节拍（8 毫秒）之后，这是 Linux 在 SYN-SENT 中第一次收到不可接受的 ACK 时的做法：对方可能回应过第一个 SYN，而那个回应可能丢了（“Previous FIN/ACK or RST/ACK might be ignored”）。原来那个 SYN 仍被耽搁在网络中。",
        ),
        rule(
            "listen",
            Match::state("server", State::SynReceived, State::Listen),
            "RFC 9293 §3.10.7.4",
            "The RST's sequence number is exactly the one the server expects next, so the half-open connection is dropped and the server is back in LISTEN. Nothing reached accept(), no data was delivered, no buffers were kept.",
            "RST 的序列号正好是服务器期待的下一个序列号，于是这个半连接被丢弃，服务器回到 LISTEN。没有任何连接交给 accept()，没有交付任何数据，也没有保留任何缓冲区。",
        ),
        rule(
            "synack",
            Match::seg("server").flags(Flags::SYN | Flags::ACK),
            "RFC 9293 §3.5",
            "Lines 6 and 7: the client's real SYN (its copy) arrives and the handshake goes as usual: a new SYN-ACK with Ack={ack}, the client's ISN plus one.",
            "第 6、7 行：客户端真正的 SYN（它的副本）到达，握手照常进行：新的 SYN-ACK，Ack={ack}，即客户端 ISN 加一。",
        ),
        rule(
            "ack",
            Match::state("client", State::SynSent, State::Established),
            "RFC 9293 §3.5",
            "Line 8: the client acknowledges the server's ISN (Ack={ack}). Only a peer that received this SYN-ACK can know that number; an old duplicate cannot, and that is the point of the third step.",
            "第 8 行：客户端确认服务器的 ISN（Ack={ack}）。只有真正收到这个 SYN-ACK 的一方才会知道这个数，旧的重复报文不可能知道，这正是第三步的意义。",
        ),
        rule(
            "established",
            Match::state("server", State::SynReceived, State::Established),
            "RFC 9293 §3.10.7.4",
            "Now, and only now, the server has a connection to hand to accept(), and it is the client's new one.",
            "直到现在，服务器才有一个连接可以交给 accept()，而且是客户端新建的那一个。",
        ),
    ];
    ctx.absolute_conversation(lab, &rules);

    ctx.heading(
        "if a connection opened after two steps (narrated, not run)",
        "假如两步就建立连接（叙述，未运行）",
    );
    ctx.text(
        "Suppose the server treated the connection as open as soon as it had answered a SYN. With the RFC's numbers (the client's new ISN 100, the old SYN's 90, the server's ISN 300):",
        "假设服务器一回应 SYN 就认为连接已经建立。用 RFC 里的数字（客户端新的 ISN 为 100，旧 SYN 为 90，服务器的 ISN 为 300）：",
    );
    ctx.figure(
        &[
            "    client                                               server",
            "1.  SYN-SENT     --> <SEQ=100><CTL=SYN>               ...",
            "2.  (old SYN)    ... <SEQ=90><CTL=SYN>                --> ESTABLISHED (accept() returns)",
            "3.  SYN-SENT     <-- <SEQ=300><ACK=91><CTL=SYN,ACK>   <-- ESTABLISHED",
            "4.               <-- <SEQ=301><ACK=91><DATA>          <-- (the server already answers)",
            "5.  SYN-SENT     --> <SEQ=91><CTL=RST>                --> (too late)",
        ],
        &[
            "    client                                               server",
            "1.  SYN-SENT     --> <SEQ=100><CTL=SYN>               ...",
            "2.  （旧 SYN）   ... <SEQ=90><CTL=SYN>                --> ESTABLISHED（accept() 返回）",
            "3.  SYN-SENT     <-- <SEQ=300><ACK=91><CTL=SYN,ACK>   <-- ESTABLISHED",
            "4.               <-- <SEQ=301><ACK=91><DATA>          <-- （服务器已经在回应了）",
            "5.  SYN-SENT     --> <SEQ=91><CTL=RST>                --> （为时已晚）",
        ],
    );
    ctx.text(
        "The server's application would have accepted a connection nobody asked for, and acted on whatever the old SYN carried (data may ride on a SYN) before the client could object; if the client were gone, nobody would object at all. The third step makes the server wait until the other side proves it received the server's SYN by acknowledging its ISN, which an old duplicate cannot do. The same exchange protects the client: the server's SYN is confirmed too, so both sides know both ISNs. That is why it takes three segments, not two or four (the second one carries the server's SYN and its ACK together).",
        "服务器应用会接受一个没人请求的连接，并在客户端来得及反对之前就处理旧 SYN 携带的内容（SYN 上可以携带数据）；如果客户端早已不在，就根本没人反对。第三步让服务器一直等到对方通过确认服务器的 ISN 来证明自己收到了服务器的 SYN，而旧的重复报文做不到这一点。同样的交换也保护了客户端：服务器的 SYN 也得到了确认，双方都知道了彼此的 ISN。所以需要三个报文段，而不是两个或四个（第二个报文段同时携带服务器的 SYN 和对客户端 SYN 的 ACK）。",
    );
    Ok(())
}
