//! `loss`: a lost segment comes back. Duplicate ACKs with SACK, fast retransmit, and a lost
//! retransmission recovered; the congestion window as it changes.

use crate::device::sim::LinkConfig;
use crate::sim::explain::lab::{Fate, HOP, Lab, Transit};
use crate::sim::explain::steps::{Match, rule};
use crate::sim::explain::{Ctx, Scenario};
use crate::tcp::Config;
use crate::time::Duration;
use crate::wire::tcp::Flags;

pub(in crate::sim::explain) const SCENARIO: Scenario = Scenario {
    name: "loss",
    aliases: &[],
    summary: [
        "duplicate ACKs with SACK, fast retransmit, a lost retransmission, cwnd",
        "带 SACK 的重复 ACK、快速重传、重传再次丢失、拥塞窗口",
    ],
    run,
};

/// What the client sends: 20 full segments.
const BYTES: usize = 20 * 1448;
/// Each link's rate: a full segment takes 1.2 ms, so segments arrive one by one.
const RATE: u64 = 10_000_000;
/// The data segment the network loses (1 = the first).
const LOST: usize = 4;

fn run(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "loss recovery: a lost segment, and a lost retransmission",
        "丢包恢复：一个报文段丢失，它的重传也丢失",
    );
    ctx.text(
        "The client sends 20 full segments. The links run at 10 Mbit/s, so a segment takes 1.2 ms on the wire and segments and ACKs arrive one by one, 10 ms after they are sent. The network loses the fourth segment, and later the first retransmission of it too. Lines are in the order packets are sent; [cwnd A → B] shows the client's congestion window in segments when it changes.",
        "客户端发送 20 个满长度报文段。链路速率为 10 Mbit/s，一个报文段在线路上要 1.2 毫秒，所以报文段和 ACK 是逐个到达的，发送后 10 毫秒到达。网络丢掉了第四个报文段，后来又丢掉了它的第一次重传。各行按报文发送的先后排列；[cwnd A → B] 表示客户端的拥塞窗口（以报文段为单位）发生了变化。",
    );
    let mut lab = Lab::new(ctx.seed);
    lab.set_link(LinkConfig::default().with_delay(HOP).with_bandwidth(RATE));
    let (mut lab, c, s, listener) =
        super::client_server_on(lab, Config::default(), Config::default())?;
    let (client, server) = super::connect(&mut lab, c, s, listener)?;
    lab.watch_cwnd(c, client);
    let mut data_seen = 0;
    let mut lost_seq = None;
    lab.set_fate(move |p| {
        if p.node != "client" || p.len == 0 {
            return Fate::Deliver;
        }
        if p.resent == 0 {
            data_seen += 1;
            if data_seen == LOST {
                lost_seq = Some(p.seq);
                return Fate::Lose;
            }
        } else if Some(p.seq) == lost_seq && p.resent == 1 {
            return Fate::Lose;
        }
        Fate::Deliver
    });
    let now = lab.now;
    let data = vec![b'L'; BYTES];
    let n = lab
        .stack(c)
        .send(now, client, &data)
        .map_err(|e| e.to_string())?;
    lab.call(c, format!("send({BYTES} bytes) = {n}"));
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    lab.run_until(Duration::from_secs(10), |lab| {
        let now = lab.now;
        let k = lab.stack(s).recv(now, server, &mut buf).unwrap_or(0);
        if k > 0 {
            got += k;
            lab.call(s, format!("recv() = {k}"));
        }
        got >= BYTES
    });
    lab.run_for(Duration::from_millis(300));
    let rules = [
        rule(
            "lost",
            Match::seg("client").transit(Transit::Lost),
            "RFC 5681 §3.1",
            "The client starts with a congestion window of 10 segments (Linux's initial window), so it sends ten at once. The network loses the fourth, Seq={seq}.",
            "客户端的初始拥塞窗口为 10 个报文段（Linux 的初始窗口），所以它一次发出十个。网络丢掉了第四个，Seq={seq}。",
        ),
        rule(
            "head-of-line",
            Match::call("server", "recv()"),
            "RFC 9293 §3.10.7.4",
            "The server's application reads what has arrived in order: the three segments before the hole, one by one. Everything after the hole will wait in the server's buffer until the hole is filled, because TCP delivers bytes only in order.",
            "服务器应用读取按顺序到达的数据：空洞之前的三个报文段，一个接一个。空洞之后的所有数据都要留在服务器的缓冲区里，等空洞填上才能交付，因为 TCP 只按顺序交付字节。",
        ),
        rule(
            "dupack",
            Match::seg("server").contains(" SLE="),
            "RFC 5681 §4.2",
            "The fifth segment arrives while the fourth is missing. The server cannot acknowledge past the hole, so it at once repeats Ack={ack} (a duplicate ACK) and reports in a SACK block the data it holds beyond the hole: SLE={sle} SRE={sre}.",
            "第五个报文段到达时第四个还没到。服务器不能越过空洞进行确认，于是立即重复 Ack={ack}（重复 ACK），并在 SACK 块中报告它在空洞之后已经收到的数据：SLE={sle} SRE={sre}。",
        ),
        rule(
            "more-dupacks",
            Match::seg("server").contains(" SLE="),
            "RFC 2018 §4",
            "Every further segment beyond the hole brings another duplicate ACK, and the SACK block grows (SRE={sre}).",
            "空洞之后每到达一个报文段，就再产生一个重复 ACK，SACK 块也随之增长（SRE={sre}）。",
        ),
        rule(
            "slow-start",
            Match::cwnd("client"),
            "RFC 5681 §3.1",
            "The ACKs for the three segments before the hole reach the client; in slow start each acknowledged segment adds one to cwnd, and new segments go out.",
            "空洞之前那三个报文段的 ACK 到达客户端；在慢启动阶段，每确认一个报文段，cwnd 就增加一个，新的报文段随之发出。",
        ),
        rule(
            "fast-retransmit",
            Match::note("client", "retransmit"),
            "RFC 5681 §3.2",
            "The third duplicate ACK arrives. The client concludes that the segment they keep asking for is lost and sends it again at once, without waiting for the retransmission timer: fast retransmit. (The note gives the absolute sequence number.)",
            "第三个重复 ACK 到达。客户端断定它们一再请求的那个报文段已经丢失，于是立即重发，而不等待重传定时器：这就是快速重传。（这条记录中给出的是绝对序列号。）",
        ),
        rule(
            "cut",
            Match::seg("client").transit(Transit::Lost),
            "RFC 9438 §4.6",
            "A loss is taken as a sign of congestion: CUBIC sets ssthresh to 0.7 times cwnd, {ssthresh} segments. And the network loses this retransmission too.",
            "丢包被视为拥塞的信号：CUBIC 把 ssthresh 设为 cwnd 的 0.7 倍，即 {ssthresh} 个报文段。而网络把这次重传也丢掉了。",
        ),
        rule(
            "prr",
            Match::seg("client").data(true),
            "RFC 6937 §3",
            "During recovery the client keeps sending new data, but Proportional Rate Reduction paces it by what the ACKs report delivered, so cwnd comes down to ssthresh gradually over one round trip instead of all at once.",
            "在恢复期间客户端仍继续发送新数据，但按比例降速（PRR）根据 ACK 报告的已交付数据来控制发送量，使 cwnd 在一个往返时间内逐步降到 ssthresh，而不是一下子降下去。",
        ),
        rule(
            "rack",
            Match::note("client", "retransmit"),
            "RFC 8985 §3.1",
            "The retransmission was lost as well, and duplicate ACKs cannot show that: they all still ask for the same byte. RACK compares send times instead: segments sent after the retransmission have been SACKed, so the retransmission is deemed lost on that ACK (in recovery, with no reordering seen, the reordering window is zero: RFC 8985 §6.2) and sent again, long before the retransmission timer (at least 200 ms, and a cwnd of 1 after it) would fire.",
            "这次重传也丢了，而重复 ACK 无法反映这一点：它们请求的始终是同一个字节。RACK 则比较发送时间：在这次重传之后发出的报文段已经被 SACK 确认，所以这次重传在这个 ACK 到达时就被判定为丢失并再次发送（处于恢复阶段且未见过乱序时，乱序窗口为零：RFC 8985 §6.2），远早于重传定时器到期（至少 200 毫秒，而且超时之后 cwnd 会降到 1）。",
        ),
        rule(
            "filled",
            Match::seg("server").flags(Flags::ACK).lacks(" SLE="),
            "RFC 5681 §4.2",
            "The hole is filled and the server acknowledges at once: the cumulative ACK jumps to Ack={ack}, everything the client sent.",
            "空洞被填上，服务器立即确认：累积确认号一下子跳到 Ack={ack}，即客户端发送的全部数据。",
        ),
        rule(
            "delivered",
            Match::call("server", "recv()"),
            "RFC 9293 §3.10.7.4",
            "Now the application gets the rest in one read, in order.",
            "现在应用一次就读到了其余的全部数据，而且按顺序。",
        ),
    ];
    ctx.conversation(lab, &rules);
    Ok(())
}
