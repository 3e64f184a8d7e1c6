//! `simultaneous-open` (RFC 9293 Figure 7) and `simultaneous-close` (Figure 13): two peers
//! that do the same thing at the same instant.

use core::net::Ipv4Addr;

use crate::sim::explain::lab::Lab;
use crate::sim::explain::steps::{Match, rule};
use crate::sim::explain::{Ctx, Scenario};
use crate::stack::SocketHandle;
use crate::tcp::{Config, State};
use crate::time::Duration;
use crate::wire::tcp::Flags;

pub(in crate::sim::explain) const OPEN: Scenario = Scenario {
    name: "simultaneous-open",
    aliases: &[],
    summary: [
        "both sides connect at once: the SYNs cross (RFC 9293 Figure 7)",
        "双方同时发起连接：两个 SYN 交叉而过（RFC 9293 图 7）",
    ],
    run: open,
};

pub(in crate::sim::explain) const CLOSE: Scenario = Scenario {
    name: "simultaneous-close",
    aliases: &[],
    summary: [
        "both sides close at once: the FINs cross, CLOSING (RFC 9293 Figure 13)",
        "双方同时关闭：两个 FIN 交叉而过，进入 CLOSING（RFC 9293 图 13）",
    ],
    run: close,
};

const PORT_A: u16 = 4000;
const PORT_B: u16 = 5000;

/// Peers A (198.18.0.1) and B (198.18.0.2).
fn peers(seed: u64) -> (Lab, usize, usize) {
    let mut lab = Lab::new(seed);
    let a = lab.host("A", Ipv4Addr::new(198, 18, 0, 1), Config::default());
    let b = lab.host("B", Ipv4Addr::new(198, 18, 0, 2), Config::default());
    (lab, a, b)
}

/// A and B connect to each other at the same instant and run until both are established.
fn open_both(lab: &mut Lab, a: usize, b: usize) -> Result<(SocketHandle, SocketHandle), String> {
    let (sa, sb) = (lab.sock(a, PORT_A), lab.sock(b, PORT_B));
    let now = lab.now;
    let ha = lab
        .stack(a)
        .connect(now, sb, Some(sa))
        .map_err(|e| e.to_string())?;
    let hb = lab
        .stack(b)
        .connect(now, sa, Some(sb))
        .map_err(|e| e.to_string())?;
    let mut done = [false; 2];
    lab.run_until(Duration::from_secs(10), |lab| {
        for (i, (host, h, to)) in [(a, ha, sb), (b, hb, sa)].into_iter().enumerate() {
            let up = lab
                .stack(host)
                .connection(h)
                .is_some_and(|x| x.state() == State::Established);
            if up && !done[i] {
                done[i] = true;
                lab.call(host, format!("connect({to}) = 0"));
            }
        }
        done == [true; 2]
    });
    if done != [true; 2] {
        return Err("the simultaneous open did not complete".into());
    }
    Ok((ha, hb))
}

fn open(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "simultaneous open: two SYNs cross (RFC 9293 Figure 7)",
        "同时打开：两个 SYN 交叉而过（RFC 9293 图 7）",
    );
    ctx.text(
        "Two peers, A on port 4000 and B on port 5000, each call connect() to the other at the same instant; neither listens. Each SYN is in flight when the other side's SYN arrives, so each side sees a SYN while it is in SYN-SENT. RFC 9293 requires TCP to handle this case (MUST-10) and to make a single connection out of it.",
        "两个对等端，A 在端口 4000，B 在端口 5000，在同一时刻互相调用 connect()，谁都没有监听。每个 SYN 都还在路上时，对方的 SYN 就到了，所以双方都在 SYN-SENT 状态下收到一个 SYN。RFC 9293 要求 TCP 必须处理这种情况（MUST-10），并且只建立一条连接。",
    );
    let (mut lab, a, b) = peers(ctx.seed);
    open_both(&mut lab, a, b)?;
    lab.run_for(Duration::from_millis(50));
    let rules = [
        rule(
            "syn-a",
            Match::seg("A").flags(Flags::SYN),
            "RFC 9293 §3.5",
            "A calls connect() and sends its SYN (Figure 7, line 2).",
            "A 调用 connect() 并发出 SYN（图 7 第 2 行）。",
        ),
        rule(
            "syn-b",
            Match::seg("B").flags(Flags::SYN),
            "RFC 9293 §3.5",
            "At the same instant B does the same towards A (line 3): two SYNs are now crossing in the network.",
            "同一时刻 B 也向 A 发出 SYN（第 3 行）：现在有两个 SYN 在网络中交叉而过。",
        ),
        rule(
            "synack-a",
            Match::seg("A").flags(Flags::SYN | Flags::ACK),
            "RFC 9293 §3.10.7.3",
            "A is in SYN-SENT and receives a SYN without an ACK: it enters SYN-RECEIVED and sends a SYN-ACK, its own SYN again (same ISN, Seq={seq}) with Ack={ack} for B's SYN. It is not counted as a retransmission: the SYN turns into a SYN-ACK and is sent anew, as Linux does.",
            "A 在 SYN-SENT 状态收到一个不带 ACK 的 SYN：进入 SYN-RECEIVED，并发送 SYN-ACK，即再次发送自己的 SYN（同一个 ISN，Seq={seq}），同时以 Ack={ack} 确认 B 的 SYN。它不算作一次重传：这个 SYN 变成 SYN-ACK 重新发出，Linux 也是这样做的。",
        ),
        rule(
            "synack-b",
            Match::seg("B").flags(Flags::SYN | Flags::ACK),
            "RFC 9293 §3.10.7.3",
            "B does exactly the same: SYN-SENT to SYN-RECEIVED, and a SYN-ACK of its own.",
            "B 做了完全相同的事：从 SYN-SENT 进入 SYN-RECEIVED，并发送自己的 SYN-ACK。",
        ),
        rule(
            "established",
            Match::transition(State::SynReceived, State::Established),
            "RFC 9293 §3.10.7.4",
            "Each SYN-ACK acknowledges the other side's SYN, so both sides become ESTABLISHED at the same instant. Each went CLOSED, SYN-SENT, SYN-RECEIVED, ESTABLISHED, as the figure says. The SYN in that SYN-ACK is one the side already has, so, as Linux does, it answers with a duplicate ACK that reports it in a D-SACK block (SLE=0 SRE=1, RFC 2883) where Figure 7 shows none.",
            "每个 SYN-ACK 都确认了对方的 SYN，所以双方在同一时刻进入 ESTABLISHED。双方的状态都依次经过 CLOSED、SYN-SENT、SYN-RECEIVED、ESTABLISHED，与图中一致。SYN-ACK 中的 SYN 是这一方已经收到过的，所以它和 Linux 一样回复一个重复 ACK，用 D-SACK 块（SLE=0 SRE=1，RFC 2883）报告这个重复的 SYN；图 7 中没有这个 ACK。",
        ),
        rule(
            "one-connection",
            Match::transition(State::SynReceived, State::Established),
            "RFC 9293 §3.5",
            "Six segments instead of three, and one connection, not two: the same pair of sockets, with each side's ISN acknowledged by the other.",
            "用了六个报文段而不是三个，建立的是一条连接而不是两条：同一对套接字，双方的 ISN 都由对方确认。",
        ),
    ];
    ctx.conversation(lab, &rules);
    Ok(())
}

fn close(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "simultaneous close: two FINs cross (RFC 9293 Figure 13)",
        "同时关闭：两个 FIN 交叉而过（RFC 9293 图 13）",
    );
    ctx.text(
        "A connects to B, then both applications call close() at the same instant. Each FIN is in flight when the other arrives, so each side receives a FIN while its own is not yet acknowledged: the state CLOSING, which an ordinary close never visits. Both sides end in TIME-WAIT.",
        "A 连接到 B，随后双方的应用在同一时刻调用 close()。每个 FIN 都还在路上时对方的 FIN 就到了，所以双方都在自己的 FIN 尚未被确认时收到对方的 FIN：进入 CLOSING 状态，这是普通关闭不会经过的状态。最后双方都进入 TIME-WAIT。",
    );
    let (mut lab, a, b) = peers(ctx.seed);
    let addr = lab.sock(b, PORT_B);
    let listener = lab.stack(b).listen(addr, 4).map_err(|e| e.to_string())?;
    let (ha, hb) = super::connect_to(&mut lab, a, b, PORT_B, listener)?;
    lab.run_for(Duration::from_millis(100));
    let now = lab.now;
    lab.stack(a).close(now, ha);
    lab.stack(b).close(now, hb);
    lab.call(a, "close() = 0");
    lab.call(b, "close() = 0");
    // Both wait out TIME-WAIT.
    lab.run_until(Duration::from_secs(70), |lab| {
        lab.stack(a).connection_count() == 0 && lab.stack(b).connection_count() == 0
    });
    let rules = [
        rule(
            "fin-a",
            Match::seg("A").flags(Flags::FIN | Flags::ACK),
            "RFC 9293 §3.6",
            "A closes: FIN-WAIT-1, and its FIN goes out (Figure 13, line 2).",
            "A 关闭：进入 FIN-WAIT-1，发出 FIN（图 13 第 2 行）。",
        ),
        rule(
            "fin-b",
            Match::seg("B").flags(Flags::FIN | Flags::ACK),
            "RFC 9293 §3.6",
            "B closes at the same instant: its FIN crosses A's in the network.",
            "B 在同一时刻关闭：它的 FIN 与 A 的 FIN 在网络中交叉而过。",
        ),
        rule(
            "closing",
            Match::transition(State::FinWait1, State::Closing),
            "RFC 9293 §3.10.7.4",
            "In FIN-WAIT-1, before any ACK of its own FIN, a side receives the other's FIN: it acknowledges it (Ack={ack}) and enters CLOSING, waiting for the ACK of its own FIN.",
            "处于 FIN-WAIT-1 的一方在自己的 FIN 被确认之前收到了对方的 FIN：它确认这个 FIN（Ack={ack}），进入 CLOSING，等待对方确认自己的 FIN。",
        ),
        rule(
            "closing-other",
            Match::transition(State::FinWait1, State::Closing),
            "RFC 9293 §3.10.7.4",
            "The other side does the same at the same instant: both are CLOSING, and each ACK crosses the other in the network.",
            "另一方在同一时刻做了同样的事：双方都处于 CLOSING，两个 ACK 在网络中交叉而过。",
        ),
        rule(
            "time-wait",
            Match::transition(State::Closing, State::TimeWait),
            "RFC 9293 §3.10.7.4",
            "The ACK of its FIN arrives: CLOSING to TIME-WAIT.",
            "对自己 FIN 的确认到达：从 CLOSING 进入 TIME-WAIT。",
        ),
        rule(
            "time-wait-other",
            Match::transition(State::Closing, State::TimeWait),
            "RFC 9293 §3.6",
            "Both sides closed actively, so both wait 2·MSL in TIME-WAIT (60 s on Linux), not just one.",
            "双方都是主动关闭，所以双方都要在 TIME-WAIT 等待 2·MSL（Linux 上为 60 秒），而不只是一方。",
        ),
        rule(
            "closed",
            Match::transition(State::TimeWait, State::Closed),
            "RFC 9293 §3.10.8",
            "2·MSL later the TIME-WAIT timer expires and the connection is gone (Figure 13, line 4).",
            "2·MSL 之后 TIME-WAIT 定时器到期，连接被删除（图 13 第 4 行）。",
        ),
    ];
    ctx.conversation(lab, &rules);
    Ok(())
}
