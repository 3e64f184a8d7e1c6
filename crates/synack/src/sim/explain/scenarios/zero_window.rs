//! `zero-window`: a reader that stops reading. The window closes, the sender probes it with
//! backoff, and a window update reopens it (RFC 9293 §3.8.6).

use crate::sim::explain::steps::{Match, rule};
use crate::sim::explain::{Ctx, Scenario};
use crate::tcp::Config;
use crate::time::{Duration, Instant};
use crate::wire::tcp::Flags;

pub(in crate::sim::explain) const SCENARIO: Scenario = Scenario {
    name: "zero-window",
    aliases: &[],
    summary: [
        "a reader that stops reading: window 0, persist probes, window update",
        "停止读取的接收方：零窗口、持续探测、窗口更新",
    ],
    run,
};

/// The server's receive buffer (bytes of memory; about half is offered as window): small, so
/// that a few segments fill it.
const RCV_BUF: usize = 16 * 1024;
/// What the client sends.
const BYTES: usize = 20_000;
/// When the server's application finally reads.
const READ_AT: Instant = Instant::from_secs(3);

fn run(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "zero window: a receiver that stops reading",
        "零窗口：停止读取的接收方",
    );
    ctx.text(
        "Flow control: each ACK carries a window, the room left in the receiver's buffer, and the sender may not send beyond it. Here the server's receive buffer is 16 KiB of memory, of which it offers about half as window, as Linux does (the rest pays for what each packet costs to hold), and its application does not read until 3 s; the client wants to send 20,000 bytes.",
        "流量控制：每个 ACK 都携带一个窗口值，即接收方缓冲区的剩余空间，发送方发送的数据不得超出这个窗口。这里服务器的接收缓冲区是 16 KiB 内存，它像 Linux 一样只把其中大约一半作为窗口通告（其余用于支付保存每个数据包的开销），而它的应用直到第 3 秒才读取；客户端要发送 20,000 字节。",
    );
    let server_cfg = Config {
        recv_buffer: RCV_BUF,
        recv_buffer_max: RCV_BUF,
        ..Config::default()
    };
    let (mut lab, c, s, listener) = super::client_server(ctx.seed, Config::default(), server_cfg)?;
    let (client, server) = super::connect(&mut lab, c, s, listener)?;
    let now = lab.now;
    let data = vec![b'z'; BYTES];
    let n = lab
        .stack(c)
        .send(now, client, &data)
        .map_err(|e| e.to_string())?;
    lab.call(c, format!("send({BYTES} bytes) = {n}"));
    lab.run_until(READ_AT - lab.now, |_| false);
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let mut reads = 0;
    lab.run_until(Duration::from_secs(10), |lab| {
        let now = lab.now;
        let k = lab.stack(s).recv(now, server, &mut buf).unwrap_or(0);
        if k > 0 {
            got += k;
            reads += 1;
            lab.call(s, format!("recv() = {k}"));
        }
        got >= BYTES || reads > 20
    });
    let rules = [
        rule(
            "five-segments",
            Match::seg("client").data(true),
            "RFC 9293 §3.8.6",
            "The server's SYN-ACK offered Win=7240: half its buffer, in whole segments. The client may have no more than that unacknowledged, so it sends five full segments (7240 bytes) and stops: a sixth would not fit.",
            "服务器的 SYN-ACK 通告了 Win=7240：它缓冲区的一半，按整报文段计。客户端未被确认的数据不能超过这个值，所以它发送五个满长度的报文段（7240 字节）后停下：第六个放不下了。",
        ),
        rule(
            "shrinking",
            Match::seg("server").flags(Flags::ACK).data(false),
            "RFC 9293 §3.8.6",
            "The server has all of it, but its application has read nothing, so its buffer has room for only {win} more bytes: Win={win}.",
            "服务器收到了全部数据，但它的应用一个字节也没读，所以缓冲区只能再容纳 {win} 字节：Win={win}。",
        ),
        rule(
            "fill",
            Match::seg("client").data(true),
            "RFC 9293 §3.8.6",
            "The client sends what the new window allows: two more full segments.",
            "客户端发送新窗口允许的数据：再发两个满长度报文段。",
        ),
        rule(
            "zero",
            Match::seg("server").contains(" Win=0 "),
            "RFC 9293 §3.8.6",
            "Now the buffer is full and the server advertises a zero window: the client must stop sending.",
            "现在缓冲区满了，服务器通告零窗口：客户端必须停止发送。",
        ),
        rule(
            "probe",
            Match::seg("client").flags(Flags::ACK).data(false),
            "RFC 9293 §3.8.6.1",
            "The window will reopen with an ACK, and ACKs can be lost, so the client probes. After a retransmission timeout it sends a segment with Seq={seq} (SND.UNA − 1, already acknowledged) and no data, which the server must answer with its current window. This is how Linux probes; the RFC describes sending one octet of new data.",
            "窗口会通过一个 ACK 重新打开，而 ACK 可能丢失，所以客户端要探测窗口。一个重传超时之后，它发送一个 Seq={seq}（SND.UNA − 1，已被确认过）且不带数据的报文段，服务器必须用当前窗口回应它。Linux 就是这样探测的；RFC 中描述的是发送一个字节的新数据。",
        ),
        rule(
            "still-zero",
            Match::seg("server").contains(" Win=0 "),
            "RFC 9293 §3.8.6.1",
            "Still full. A receiver with a zero window must still acknowledge, showing its next expected sequence number and its window, 0.",
            "仍然是满的。处于零窗口的接收方也必须回复确认，给出期待的下一个序列号和当前窗口，即 0。",
        ),
        rule(
            "backoff",
            Match::seg("client").flags(Flags::ACK).data(false),
            "RFC 9293 §3.8.6.1",
            "The interval between probes doubles each time (exponential backoff); as long as the server answers, the client keeps the connection open however long the window stays closed (MUST-37).",
            "探测间隔每次加倍（指数退避）；只要服务器还在回应，无论窗口关闭多久，客户端都要保持连接（MUST-37）。",
        ),
        rule(
            "read",
            Match::call("server", "recv()"),
            "RFC 9293 §3.8.6.2.2",
            "At last the application reads the 10136 bytes, which empties the buffer.",
            "应用终于读走了这 10136 字节，缓冲区清空了。",
        ),
        rule(
            "update",
            Match::seg("server").flags(Flags::ACK).after(READ_AT),
            "RFC 9293 §3.8.6.2.2",
            "The window can move by much more than a segment, so the server sends a window update at once: an ACK with Win={win}. It does not wait for the next probe.",
            "窗口可以移动的幅度远大于一个报文段，所以服务器立即发送窗口更新：一个 Win={win} 的 ACK，而不必等待下一次探测。",
        ),
        rule(
            "resume",
            Match::seg("client").data(true).after(READ_AT),
            "RFC 9293 §3.8.6",
            "The client resumes, six segments into the reopened 8688-byte window.",
            "客户端恢复发送，六个报文段，填入重新打开的 8688 字节窗口。",
        ),
    ];
    ctx.conversation(lab, &rules);
    Ok(())
}
