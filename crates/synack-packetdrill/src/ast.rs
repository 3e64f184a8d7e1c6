//! The parsed form of a packetdrill script (the subset in `shared/packetdrill/SUBSET.md`).
//!
//! Numbers are kept as written: sequence numbers are in the script's spaces (SUBSET.md §4.3) and
//! times are microseconds, not yet resolved against a base; the runner does both.

use std::fmt;

/// Where something is in the script, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A whole script.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// `--name=value` / `--name` lines at the top, in order.
    pub options: Vec<OptionLine>,
    /// The back-quoted block before the first event, if any.
    pub init: Option<Command>,
    pub events: Vec<Event>,
    /// The back-quoted block after the last event, if any.
    pub cleanup: Option<Command>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OptionLine {
    pub pos: Pos,
    /// Without the leading `--`.
    pub name: String,
    pub value: Option<String>,
}

/// A back-quoted shell block: the text between the backquotes, verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub pos: Pos,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position of the event's first token (its time spec).
    pub pos: Pos,
    pub time: TimeSpec,
    pub action: Action,
}

/// One time value as written, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// `0.100`: from the start of the script.
    Absolute(i64),
    /// `+.1`: from the previous event's base time (SUBSET.md §2).
    Relative(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// `0.1` or `+0.1`.
    At(Time),
    /// `+a~+b` (or `a~b`): the event must happen inside the window.
    Window(Time, Time),
    /// `*`: any time.
    Any,
    /// `T...E`: a blocking syscall that starts at `start` and returns at `end`. `end` is kept as
    /// written; SUBSET.md §6.3 says it is measured from the same base as `start`.
    Blocking { start: Time, end: Time },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Packet(Packet),
    Syscall(Syscall),
    /// A back-quoted shell command with a time stamp.
    Command(Command),
    /// A `%{ ... }%` block: the Python text inside, verbatim.
    Code(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `<`: peer to stack, injected.
    Inbound,
    /// `>`: stack to peer, checked.
    Outbound,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub direction: Direction,
    pub ip: IpInfo,
    pub body: PacketBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PacketBody {
    Tcp(TcpPacket),
    Icmp(IcmpPacket),
}

/// `[ect0]`, `(tos 0x..)`, `[ttl N]` and friends before the flags. Empty in nearly every script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpInfo {
    pub ecn: Option<Ecn>,
    pub tos: Option<u8>,
    pub ttl: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecn {
    NoEcn,
    Ect0,
    Ect1,
    Ce,
    /// `[ect01]`: either ECT(0) or ECT(1) accepted.
    Ect01,
}

/// TCP flag bits as written (`S.`, `P.`, `F.`, `R`, `.`, `-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub ack: bool,
    pub urg: bool,
    pub ece: bool,
    pub cwr: bool,
    pub ae: bool,
}

/// `start:end(len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub start: u32,
    pub end: u32,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpPacket {
    pub flags: Flags,
    pub seq: SeqRange,
    pub ack: Option<u32>,
    pub win: Option<u32>,
    pub urg: Option<u32>,
    /// `None`: no list written (outbound: the segment must carry no options).
    pub options: Option<TcpOptions>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TcpOptions {
    /// `<...>`: options not checked.
    Any,
    List(Vec<TcpOption>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOption {
    Nop,
    Eol,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    /// `sack a:b c:d`: edges as written.
    Sack(Vec<(u32, u32)>),
    Timestamp {
        val: u32,
        ecr: u32,
    },
    /// `FO` / `FO <hex>` (kind 34).
    FastOpen(Option<Vec<u8>>),
    /// `FOEXP` / `FOEXP <hex>` (kind 254, magic 0xF989).
    FastOpenExp(Option<Vec<u8>>),
    Md5(Vec<u8>),
}

/// `icmp unreachable frag_needed mtu 1200 [1:1461(1460)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpPacket {
    /// `unreachable`, `packet_too_big`, ...
    pub kind: String,
    /// `frag_needed`, `host_unreachable`, ... or none.
    pub code: Option<String>,
    pub mtu: Option<u32>,
    /// The TCP segment quoted in the error, in the stack's relative space.
    pub quoted: Option<SeqRange>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Syscall {
    pub name: String,
    pub args: Vec<Expr>,
    /// The expected return value (`= 0`, `= -1`, `= 0x2`, `= 3`).
    pub result: Expr,
    /// `ENAME` after the result, if any.
    pub errno: Option<String>,
    /// The free text in parentheses after the errno (`(Broken pipe)`), if any.
    pub note: Option<String>,
}

/// A syscall argument or result.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Int(i64),
    /// A symbolic constant (`SOL_SOCKET`, `MSG_EOR`, `AF_UNSPEC`) or other bare word; `-D`
    /// substitutions are already applied.
    Word(String),
    /// `...`: "supply the default".
    Ellipsis,
    /// `"text"`.
    Str(String),
    /// `A|B|C`.
    BitOr(Vec<Expr>),
    /// `[a, b]`.
    Array(Vec<Expr>),
    /// `{a=1, b(2)=3, ...}`.
    Struct(Vec<Field>),
}

/// One field in a `{...}` struct: `name=value`, `name(index)=value`, or a bare value.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: Option<String>,
    /// The parenthesised part of `msg_iov(1)=...` / `msg_name(...)=...`.
    pub index: Option<Expr>,
    pub value: Expr,
}
