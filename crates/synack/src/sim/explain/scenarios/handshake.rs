//! `handshake`: SYN, SYN-ACK, ACK; 100 bytes; the close. ISNs, options, and the sequence and
//! acknowledgement arithmetic.

use crate::sim::explain::steps::{Match, rule};
use crate::sim::explain::{Ctx, Scenario};
use crate::tcp::{Config, State};
use crate::time::Duration;
use crate::wire::tcp::Flags;

pub(in crate::sim::explain) const SCENARIO: Scenario = Scenario {
    name: "handshake",
    aliases: &[],
    summary: [
        "SYN, SYN-ACK, ACK: ISNs, options, and the seq/ack arithmetic of data and FIN",
        "SYN、SYN-ACK、ACK：初始序列号、选项，以及数据和 FIN 的序列号算术",
    ],
    run,
};

fn run(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "the three-way handshake, 100 bytes, and the close",
        "三次握手、100 字节数据和关闭连接",
    );
    ctx.text(
        "A client connects to a server 10 ms away (20 ms round trip), sends 100 bytes and closes; the server reads them and closes too. Sequence numbers are shown relative to each side's initial sequence number (ISN), as Wireshark shows them; a state change is printed beside the segment that caused it.",
        "客户端连接 10 毫秒之外（往返 20 毫秒）的服务器，发送 100 字节后关闭连接；服务器读完数据后也关闭。序列号按 Wireshark 的习惯显示为相对于各自初始序列号（ISN）的值；状态变化写在引起它的报文段旁边。",
    );
    let (mut lab, c, s, listener) =
        super::client_server(ctx.seed, Config::default(), Config::default())?;
    let (client, server) = super::connect(&mut lab, c, s, listener)?;
    let now = lab.now;
    let n = lab
        .stack(c)
        .send(now, client, &[b'x'; 100])
        .map_err(|e| e.to_string())?;
    lab.call(c, format!("send(100 bytes) = {n}"));
    let mut buf = [0u8; 1000];
    let mut got = 0;
    lab.run_until(Duration::from_secs(5), |lab| {
        let now = lab.now;
        got = lab.stack(s).recv(now, server, &mut buf).unwrap_or(0);
        got > 0
    });
    lab.call(s, format!("recv() = {got}"));
    lab.run_for(Duration::from_millis(100));
    let now = lab.now;
    lab.stack(c).close(now, client);
    lab.call(c, "close() = 0");
    super::read_eof(&mut lab, s, server, Duration::from_millis(50), true)?;
    lab.run_until(Duration::from_secs(5), |lab| {
        lab.stack(s).connection(server).is_none()
    });

    let rules = [
        rule(
            "syn",
            Match::seg("client").flags(Flags::SYN),
            "RFC 9293 §3.4.1",
            "The client opens with a SYN. Its initial sequence number is {isn} (shown as Seq=0): a clock plus a keyed hash of the addresses and ports, so that segments of an earlier connection between the same ports do not fall into the new sequence space.",
            "客户端用 SYN 发起连接。它的初始序列号是 {isn}（显示为 Seq=0）：由时钟加上对地址和端口的带密钥哈希得出，这样同一对端口上旧连接的报文段不会落入新连接的序列号空间。",
        ),
        rule(
            "synack",
            Match::seg("server").flags(Flags::SYN | Flags::ACK),
            "RFC 9293 §3.5",
            "The server answers with its own SYN (its own ISN) and acknowledges the client's: Ack={ack}, because a SYN occupies one sequence number. Both SYNs carry options (MSS, SACK_PERM, timestamps, window scale); each is used only if both sides offer it.",
            "服务器回复自己的 SYN（带上它自己的 ISN），同时确认客户端的 SYN：Ack={ack}，因为 SYN 本身占用一个序列号。双方的 SYN 都携带选项（MSS、SACK_PERM、时间戳、窗口缩放），只有双方都提供的选项才会启用。",
        ),
        rule(
            "ack",
            Match::seg("client").flags(Flags::ACK).data(false),
            "RFC 9293 §3.5",
            "The third segment acknowledges the server's SYN (Ack={ack}). The client is ESTABLISHED now; an ACK takes no sequence number, so its data will start at Seq={seq} too.",
            "第三个报文段确认服务器的 SYN（Ack={ack}）。客户端此时进入 ESTABLISHED；ACK 不占序列号，所以随后的数据也从 Seq={seq} 开始。",
        ),
        rule(
            "server-established",
            Match::state("server", State::SynReceived, State::Established),
            "RFC 9293 §3.10.7.4",
            "Only this ACK proves to the server that the client got its SYN-ACK: each side is synchronized once its own SYN has been acknowledged.",
            "只有收到这个 ACK，服务器才能确定客户端收到了它的 SYN-ACK：每一方都要等自己的 SYN 被确认后才算同步。",
        ),
        rule(
            "data",
            Match::seg("client").data(true),
            "RFC 9293 §3.4",
            "100 bytes: Seq={seq} numbers the first byte and Len={len}, so they are bytes {seq} to {last}, and the next byte will be {next}.",
            "100 字节数据：Seq={seq} 是第一个字节的序列号，Len={len}，所以这些字节的序列号是 {seq} 到 {last}，下一个字节将是 {next}。",
        ),
        rule(
            "data-ack",
            Match::seg("server").flags(Flags::ACK).data(false),
            "RFC 9293 §3.4",
            "The server acknowledges with Ack={ack}: the number of the next byte it expects, which covers every byte before it (acknowledgements are cumulative).",
            "服务器以 Ack={ack} 确认：这是它期待的下一个字节的序列号，表示之前的所有字节都已收到（确认是累积的）。",
        ),
        rule(
            "fin",
            Match::seg("client").flags(Flags::FIN | Flags::ACK),
            "RFC 9293 §3.6",
            "close(): the client sends FIN. Like a SYN, a FIN occupies one sequence number (Seq={seq}), so it can be acknowledged and retransmitted like data.",
            "close()：客户端发送 FIN。和 SYN 一样，FIN 也占用一个序列号（Seq={seq}），因此它能像数据一样被确认和重传。",
        ),
        rule(
            "close-wait",
            Match::state("server", State::Established, State::CloseWait),
            "RFC 9293 §3.6",
            "The FIN arrives and the server enters CLOSE-WAIT: the client will send nothing more, but the server may still send until its own application closes.",
            "FIN 到达，服务器进入 CLOSE-WAIT：客户端不会再发送数据，但在服务器自己的应用关闭之前，服务器仍可以发送。",
        ),
        rule(
            "fin-ack",
            Match::seg("server").flags(Flags::ACK).data(false),
            "RFC 9293 §3.8.6.3",
            "The ACK of the FIN: Ack={ack}, because the FIN took one sequence number. The delayed-ACK timer held it back 40 ms in case a reply could carry it.",
            "对 FIN 的确认：Ack={ack}，因为 FIN 占用了一个序列号。延迟确认定时器把它推迟了 40 毫秒，以便有回复时可以顺带捎上。",
        ),
        rule(
            "eof",
            Match::call("server", "recv() = 0"),
            "RFC 9293 §3.10.7.4",
            "The FIN reaches the server's application as end of file: recv() returns 0.",
            "FIN 对服务器应用来说就是文件结束：recv() 返回 0。",
        ),
        rule(
            "server-fin",
            Match::seg("server").flags(Flags::FIN | Flags::ACK),
            "RFC 9293 §3.6",
            "The server closes its half: its FIN, and the server waits in LAST-ACK for the acknowledgement.",
            "服务器关闭自己这一半：发送 FIN，并在 LAST-ACK 状态等待对方确认。",
        ),
        rule(
            "last-ack",
            Match::state("client", State::FinWait2, State::TimeWait),
            "RFC 9293 §3.6",
            "The client acknowledges the server's FIN and stays in TIME-WAIT for 2·MSL (60 s on Linux), in case this ACK is lost and the FIN comes again (see the time-wait scenario).",
            "客户端确认服务器的 FIN，并在 TIME-WAIT 状态停留 2·MSL（Linux 上为 60 秒），以防这个 ACK 丢失而 FIN 被重传（见 time-wait 场景）。",
        ),
        rule(
            "closed",
            Match::state("server", State::LastAck, State::Closed),
            "RFC 9293 §3.10.7.4",
            "The ACK of its FIN ends the connection for the server: CLOSED, nothing left to remember.",
            "收到对自己 FIN 的确认后，服务器这一端的连接结束：进入 CLOSED，不再保留任何状态。",
        ),
    ];
    ctx.conversation(lab, &rules);
    Ok(())
}
