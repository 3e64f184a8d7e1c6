//! `time-wait`: why the side that closes first waits 2·MSL. The last ACK is lost, the peer
//! sends its FIN again, and TIME-WAIT answers it (RFC 9293 §3.6, §3.10.7.4).

use crate::sim::explain::lab::{Fate, Transit};
use crate::sim::explain::steps::{Match, rule};
use crate::sim::explain::{Ctx, Scenario};
use crate::tcp::{Config, State};
use crate::time::Duration;
use crate::wire::tcp::Flags;

pub(in crate::sim::explain) const SCENARIO: Scenario = Scenario {
    name: "time-wait",
    aliases: &[],
    summary: [
        "why TIME-WAIT lasts 2·MSL: the last ACK is lost and the FIN comes again",
        "为什么 TIME-WAIT 要 2·MSL：最后的 ACK 丢失，FIN 再次到来",
    ],
    run,
};

fn run(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title("TIME-WAIT and 2·MSL", "TIME-WAIT 与 2·MSL");
    ctx.text(
        "The side that closes first ends in TIME-WAIT and keeps the connection's memory for 2·MSL after everything is done (MSL, the maximum segment lifetime, is 2 minutes in the RFC; Linux waits 60 s in all). Here the client closes first, and the network loses its very last ACK.",
        "先关闭的一方最后进入 TIME-WAIT，在一切结束之后仍把连接的信息保留 2·MSL（MSL 即报文段最大生存时间，RFC 中为 2 分钟；Linux 总共等待 60 秒）。这里客户端先关闭，而网络丢掉了它发出的最后一个 ACK。",
    );
    let (mut lab, c, s, listener) =
        super::client_server(ctx.seed, Config::default(), Config::default())?;
    let (client, server) = super::connect(&mut lab, c, s, listener)?;
    // The client's first pure ACK after its FIN is the last ACK of the close: lost.
    let mut fin_sent = false;
    let mut lost = false;
    lab.set_fate(move |p| {
        if p.node != "client" {
            return Fate::Deliver;
        }
        if p.flags.fin() {
            fin_sent = true;
        } else if fin_sent && !lost && p.flags == Flags::ACK && p.len == 0 {
            lost = true;
            return Fate::Lose;
        }
        Fate::Deliver
    });
    lab.run_for(Duration::from_millis(100));
    let now = lab.now;
    lab.stack(c).close(now, client);
    lab.call(c, "close() = 0");
    super::read_eof(&mut lab, s, server, Duration::from_millis(50), true)?;
    lab.run_until(Duration::from_secs(120), |lab| {
        lab.stack(c).connection_count() == 0
    });
    let rules = [
        rule(
            "fin",
            Match::seg("client").flags(Flags::FIN | Flags::ACK),
            "RFC 9293 §3.6",
            "The client closes first: FIN-WAIT-1.",
            "客户端先关闭：进入 FIN-WAIT-1。",
        ),
        rule(
            "fin-acked",
            Match::state("client", State::FinWait1, State::FinWait2),
            "RFC 9293 §3.10.7.4",
            "The server acknowledged the FIN: FIN-WAIT-2, waiting for the server to close its half.",
            "服务器确认了这个 FIN：进入 FIN-WAIT-2，等待服务器关闭它那一半。",
        ),
        rule(
            "server-fin",
            Match::seg("server").flags(Flags::FIN | Flags::ACK),
            "RFC 9293 §3.6",
            "The server's application read end of file and closed: its FIN, LAST-ACK.",
            "服务器应用读到文件结束并关闭：发出 FIN，进入 LAST-ACK。",
        ),
        rule(
            "last-ack-lost",
            Match::seg("client").transit(Transit::Lost),
            "RFC 9293 §3.10.7.4",
            "The client acknowledges the FIN and enters TIME-WAIT. This ACK is lost, and the client cannot know: nobody acknowledges an ACK.",
            "客户端确认这个 FIN 并进入 TIME-WAIT。这个 ACK 丢失了，而客户端无从得知：没有人会确认一个 ACK。",
        ),
        rule(
            "fin-again",
            Match::seg("server").flags(Flags::FIN | Flags::ACK),
            "RFC 8985 §7.2",
            "The server hears nothing, so it sends the FIN again (a FIN takes a sequence number and is retransmitted like data). Here the tail loss probe does it, two round trips plus an allowance for a delayed ACK after the FIN, before the retransmission timer would.",
            "服务器什么也没收到，于是再次发送 FIN（FIN 占用一个序列号，会像数据一样被重传）。这里是尾部丢失探测（TLP）完成的：在 FIN 发出两个往返时间再加上延迟确认的余量之后，早于重传定时器。",
        ),
        rule(
            "ack-again",
            Match::seg("client").flags(Flags::ACK),
            "RFC 9293 §3.10.7.4",
            "This is why TIME-WAIT exists: the client still remembers the connection, so it acknowledges the retransmitted FIN and restarts its 2·MSL timer. Had it gone straight to CLOSED, this FIN would have been answered with a RST, and the server's application would see an error on a connection that closed properly.",
            "这正是 TIME-WAIT 存在的原因：客户端仍然记得这个连接，所以它确认重传的 FIN，并重新开始 2·MSL 计时。如果它直接进入 CLOSED，这个 FIN 会得到一个 RST，服务器应用就会在一个正常关闭的连接上看到错误。",
        ),
        rule(
            "server-closed",
            Match::state("server", State::LastAck, State::Closed),
            "RFC 9293 §3.10.7.4",
            "The server's FIN is acknowledged at last; the server forgets the connection.",
            "服务器的 FIN 终于得到确认；服务器删除这个连接。",
        ),
        rule(
            "expired",
            Match::state("client", State::TimeWait, State::Closed),
            "RFC 9293 §3.6",
            "60 s after the last FIN the client forgets the connection too. The wait also lets every old duplicate segment of this connection die out in the network (each lives at most an MSL), so a new connection between the same ports cannot mistake them for its own.",
            "最后一个 FIN 之后 60 秒，客户端也删除了这个连接。这段等待还让这个连接所有旧的重复报文段在网络中消亡（每个最多存活一个 MSL），这样同一对端口上的新连接就不会把它们误认为自己的报文段。",
        ),
    ];
    ctx.conversation(lab, &rules);
    Ok(())
}
