//! `reset`: RST in three situations and what the application sees: ECONNREFUSED (nobody
//! listens), ECONNRESET (the peer closed with unread data), EPIPE (writing to a peer that is
//! gone).

use crate::sim::explain::lab::PORT;
use crate::sim::explain::steps::{Match, rule};
use crate::sim::explain::{Ctx, Scenario};
use crate::tcp::{Config, State};
use crate::time::Duration;
use crate::wire::tcp::Flags;

pub(in crate::sim::explain) const SCENARIO: Scenario = Scenario {
    name: "reset",
    aliases: &[],
    summary: [
        "RST and what the application sees: ECONNREFUSED, ECONNRESET, EPIPE",
        "RST 以及应用看到的错误：ECONNREFUSED、ECONNRESET、EPIPE",
    ],
    run,
};

/// A port nobody listens on.
const CLOSED_PORT: u16 = 81;

fn run(ctx: &mut Ctx) -> Result<(), String> {
    ctx.title(
        "resets, and what the application sees",
        "复位（RST），以及应用看到的错误",
    );
    ctx.text(
        "A RST says \"this connection does not exist (any more)\". It is never acknowledged and never answered with another RST; the receiver checks that its sequence number is believable and then drops the connection on the spot, discarding anything still queued. The application learns it from the error of its next socket call.",
        "RST 的意思是“这个连接不存在（或不再存在）”。RST 从不被确认，也不会引来另一个 RST；接收方只检查它的序列号是否可信，然后立即删除连接，丢弃所有仍在排队的数据。应用则在下一次调用套接字时从返回的错误中得知。",
    );

    ctx.heading(
        "1. connect() to a port where nobody listens: ECONNREFUSED",
        "1. connect() 连接一个没有监听的端口：ECONNREFUSED",
    );
    let (mut lab, c, s, _listener) =
        super::client_server(ctx.seed, Config::default(), Config::default())?;
    let to = lab.sock(s, CLOSED_PORT);
    let now = lab.now;
    let h = lab
        .stack(c)
        .connect(now, to, None)
        .map_err(|e| e.to_string())?;
    let mut refused = None;
    lab.run_until(Duration::from_secs(5), |lab| {
        refused = lab.stack(c).connection(h).and_then(|x| x.error());
        refused.is_some()
    });
    let e = std::io::Error::from(refused.ok_or("the connection was not refused")?);
    lab.call(c, format!("connect({to}) = -1 {}", super::errno(&e)));
    let rules = [
        rule(
            "syn",
            Match::seg("client").flags(Flags::SYN),
            "RFC 9293 §3.5",
            "The client opens a connection to port 81, where the server has no listener.",
            "客户端向端口 81 发起连接，而服务器在这个端口上没有监听。",
        ),
        rule(
            "rst-ack",
            Match::seg("server").flags(Flags::RST | Flags::ACK),
            "RFC 9293 §3.10.7.1",
            "No connection and no listener: the state is CLOSED, and a segment for a CLOSED connection gets a reset. The SYN has no ACK, so the reset is <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>: Ack={ack} acknowledges the SYN, which is what makes the client believe it.",
            "既没有连接也没有监听：状态为 CLOSED，发往 CLOSED 连接的报文段会得到 RST。这个 SYN 不带 ACK，所以 RST 的形式是 <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>：Ack={ack} 确认了这个 SYN，客户端正是据此相信它。",
        ),
        rule(
            "refused",
            Match::state("client", State::SynSent, State::Closed),
            "RFC 9293 §3.10.7.3",
            "In SYN-SENT a RST is accepted when its ACK acknowledges the SYN: the client deletes the connection and tells the application, which the sockets API calls \"connection refused\".",
            "在 SYN-SENT 状态，只有当 RST 的 ACK 确认了 SYN 时才会被接受：客户端删除这个连接并通知应用，套接字 API 把这称为“连接被拒绝”。",
        ),
        rule(
            "econnrefused",
            Match::call("client", "ECONNREFUSED"),
            "RFC 9293 §3.10.7.3",
            "connect() fails with ECONNREFUSED, \"connection refused\", one round trip after it started; without the RST it would have retried for two minutes.",
            "connect() 以 ECONNREFUSED（“连接被拒绝”）失败，距开始只过了一个往返时间；如果没有这个 RST，它会重试两分钟。",
        ),
    ];
    ctx.conversation(lab, &rules);

    ctx.heading(
        "2. the peer closes with data it has not read: ECONNRESET",
        "2. 对端在还有未读数据时关闭：ECONNRESET",
    );
    let (mut lab, c, s, listener) =
        super::client_server(ctx.seed, Config::default(), Config::default())?;
    let (client, server) = super::connect(&mut lab, c, s, listener)?;
    let now = lab.now;
    let request = b"GET / HTTP/1.0\r\n\r\n";
    let n = lab
        .stack(c)
        .send(now, client, request)
        .map_err(|e| e.to_string())?;
    lab.call(c, format!("send({n} bytes) = {n}"));
    lab.run_until(Duration::from_secs(5), |lab| {
        lab.stack(s)
            .connection(server)
            .is_some_and(|x| x.recv_queue_len() > 0)
    });
    lab.run_for(Duration::from_millis(100));
    let now = lab.now;
    lab.stack(s).close(now, server);
    lab.call(s, "close() = 0");
    let mut error = None;
    lab.run_until(Duration::from_secs(5), |lab| {
        let now = lab.now;
        let mut buf = [0u8; 64];
        if let Err(e) = lab.stack(c).recv(now, client, &mut buf) {
            error = Some(e);
        }
        error.is_some()
    });
    let e = error.ok_or("the client was never reset")?;
    lab.call(c, format!("recv() = -1 {}", super::errno(&e)));
    let rules = [
        rule(
            "request",
            Match::seg("client").data(true),
            "RFC 9293 §3.4",
            "The client sends a request.",
            "客户端发送一个请求。",
        ),
        rule(
            "unread",
            Match::seg("server").flags(Flags::RST | Flags::ACK),
            "RFC 9293 §3.6.1",
            "The server's application closes without reading the request. Data would be lost silently, so instead of a FIN the server sends a RST (SHLD-3; Linux does so, see also RFC 2525 §2.17): Seq={seq} is its SND.NXT.",
            "服务器应用没有读取请求就关闭了连接。数据会被悄无声息地丢掉，所以服务器发送的不是 FIN 而是 RST（SHLD-3；Linux 就是这样做的，另见 RFC 2525 §2.17）：Seq={seq} 是它的 SND.NXT。",
        ),
        rule(
            "reset",
            Match::state("client", State::Established, State::Closed),
            "RFC 9293 §3.10.7.4",
            "The RST is exactly in sequence, so the client deletes the connection at once.",
            "这个 RST 的序列号完全吻合，所以客户端立即删除连接。",
        ),
        rule(
            "econnreset",
            Match::call("client", "ECONNRESET"),
            "RFC 9293 §3.10.7.4",
            "The client's read fails with ECONNRESET, \"connection reset by peer\": outstanding RECEIVEs get a \"reset\" response.",
            "客户端的读操作以 ECONNRESET（“连接被对端重置”）失败：尚未完成的 RECEIVE 调用都会收到“重置”响应。",
        ),
    ];
    ctx.conversation(lab, &rules);

    ctx.heading(
        "3. writing to a peer that has gone: EPIPE",
        "3. 向已经离开的对端写数据：EPIPE",
    );
    let (mut lab, c, s, listener) =
        super::client_server(ctx.seed, Config::default(), Config::default())?;
    let (client, server) = super::connect(&mut lab, c, s, listener)?;
    lab.run_for(Duration::from_millis(100));
    let now = lab.now;
    lab.stack(s).close(now, server);
    lab.call(s, "close() = 0");
    super::read_eof(&mut lab, c, client, Duration::from_millis(50), false)?;
    let now = lab.now;
    let n = lab
        .stack(c)
        .send(now, client, b"hello")
        .map_err(|e| e.to_string())?;
    lab.call(c, format!("send(5 bytes) = {n}"));
    lab.run_until(Duration::from_secs(5), |lab| {
        lab.stack(c)
            .connection(client)
            .is_some_and(|x| x.state() == State::Closed)
    });
    lab.run_for(Duration::from_millis(10));
    for _ in 0..2 {
        let now = lab.now;
        let r = lab.stack(c).send(now, client, b"again");
        let text = match r {
            Ok(n) => format!("send(5 bytes) = {n}"),
            Err(e) => format!("send(5 bytes) = -1 {}", super::errno(&e)),
        };
        lab.call(c, text);
    }
    let rules = [
        rule(
            "server-closes",
            Match::seg("server").flags(Flags::FIN | Flags::ACK),
            "RFC 9293 §3.6",
            "The server's application closes its socket: FIN.",
            "服务器应用关闭套接字：发送 FIN。",
        ),
        rule(
            "eof",
            Match::call("client", "recv() = 0"),
            "RFC 9293 §3.6",
            "The client reads end of file. The connection is half-closed: CLOSE-WAIT allows the client to keep sending.",
            "客户端读到文件结束。连接处于半关闭状态：CLOSE-WAIT 状态下客户端仍可继续发送。",
        ),
        rule(
            "write",
            Match::seg("client").data(true),
            "RFC 9293 §3.6.1",
            "So it writes. send() succeeds: it only queues the bytes; nobody knows yet that no one will read them.",
            "于是它写数据。send() 成功了：它只是把字节放进队列；此时还没有人知道这些数据不会有人读。",
        ),
        rule(
            "data-after-close",
            Match::seg("server").flags(Flags::RST),
            "RFC 9293 §3.6.1",
            "But the server's application closed the socket, so nobody can read this data: new data for a closed socket is answered with a RST (SHLD-3), whose Seq={seq} is the segment's Ack.",
            "但服务器应用已经关闭了套接字，没有人能读这些数据：发往已关闭套接字的新数据会得到 RST（SHLD-3），其 Seq={seq} 取自该报文段的确认号。",
        ),
        rule(
            "reset",
            Match::state("client", State::CloseWait, State::Closed),
            "RFC 9293 §3.10.7.4",
            "The client accepts the RST in CLOSE-WAIT and deletes the connection.",
            "客户端在 CLOSE-WAIT 状态接受这个 RST，并删除连接。",
        ),
        rule(
            "epipe",
            Match::call("client", "EPIPE"),
            "RFC 9293 §3.10.2",
            "The next send() fails with EPIPE, \"broken pipe\", and so does every later one: the connection no longer exists, and a RST in CLOSE-WAIT, after the peer's own FIN, is reported as a broken pipe, as Linux's tcp_reset() does (RFC 9293 would give outstanding SENDs \"reset\"). On Linux the process also gets SIGPIPE unless it asked not to.",
            "下一次 send() 以 EPIPE（“管道破裂”）失败，之后的每次也一样：连接已经不存在了，而在 CLOSE-WAIT 状态（对端已经发过 FIN）收到的 RST 被报告为管道破裂，和 Linux 的 tcp_reset() 一样（按 RFC 9293，尚未完成的 SEND 会收到“重置”）。在 Linux 上，除非进程另有设置，还会收到 SIGPIPE 信号。",
        ),
    ];
    ctx.conversation(lab, &rules);
    let _ = PORT;
    Ok(())
}
