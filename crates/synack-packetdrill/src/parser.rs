//! Parser for packetdrill scripts (the subset in `shared/packetdrill/SUBSET.md`) into [`ast`]
//! types.
//!
//! [`parse`] is the entry point. Every malformed input gives a [`ParseError`] that names the
//! file, line and column and says what was expected and what was found.
//!
//! [`ast`]: crate::ast

use std::collections::HashMap;
use std::fmt;

use crate::ast::{
    Action, Command, Direction, Ecn, Event, Expr, Field, Flags, IcmpPacket, IpInfo, OptionLine,
    Packet, PacketBody, Pos, Script, SeqRange, Syscall, TcpOption, TcpOptions, TcpPacket, Time,
    TimeSpec,
};
use crate::lexer::{LexError, Lexer, Token, TokenKind, parse_int};

/// A syntax error: `file:line:col: expected X, found Y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file name given to [`parse`].
    pub file: String,
    /// Where the problem is.
    pub pos: Pos,
    /// What the parser expected there.
    pub expected: String,
    /// What it found instead.
    pub found: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: expected {}, found {}",
            self.file, self.pos, self.expected, self.found
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses one script.
///
/// `file` is only used in error messages. `defines` are the `-D NAME=VALUE` substitutions: every
/// word token equal to a `NAME` is replaced by its `VALUE` (an integer if the value parses as one,
/// otherwise a word).
pub fn parse(
    file: &str,
    text: &str,
    defines: &HashMap<String, String>,
) -> Result<Script, ParseError> {
    let mut p = Parser {
        file,
        lex: Lexer::new(text),
        peeked: None,
        defines,
    };
    p.script()
}

type PResult<T> = Result<T, ParseError>;

struct Parser<'a> {
    file: &'a str,
    lex: Lexer<'a>,
    peeked: Option<Token>,
    defines: &'a HashMap<String, String>,
}

const TCP_OPTION_NAMES: &str =
    "a TCP option (nop, eol, mss, wscale, sackOK, sack, TS, FO, FOEXP, md5)";

impl<'a> Parser<'a> {
    // ----- token plumbing -----

    fn lex_err(&self, e: LexError) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            pos: e.pos,
            expected: e.expected,
            found: e.found,
        }
    }

    fn err_at(
        &self,
        pos: Pos,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            pos,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// An error at `tok` describing it as what was found.
    fn unexpected(&self, tok: &Token, expected: impl Into<String>) -> ParseError {
        self.err_at(tok.pos, expected, tok.describe())
    }

    fn substitute(&self, mut tok: Token) -> Token {
        if let TokenKind::Word(w) = &tok.kind {
            if let Some(value) = self.defines.get(w) {
                tok.kind = match parse_int(value) {
                    Some(v) => TokenKind::Int(v),
                    None => TokenKind::Word(value.clone()),
                };
                tok.text = value.clone();
            }
        }
        tok
    }

    fn peek(&mut self) -> PResult<&Token> {
        let tok = match self.peeked.take() {
            Some(tok) => tok,
            None => {
                let tok = self.lex.next_token().map_err(|e| self.lex_err(e))?;
                self.substitute(tok)
            }
        };
        Ok(self.peeked.insert(tok))
    }

    fn next(&mut self) -> PResult<Token> {
        match self.peeked.take() {
            Some(tok) => Ok(tok),
            None => {
                let tok = self.lex.next_token().map_err(|e| self.lex_err(e))?;
                Ok(self.substitute(tok))
            }
        }
    }

    /// Puts a peeked token back into the source so raw reads see it.
    fn unpeek(&mut self) {
        if let Some(tok) = self.peeked.take() {
            self.lex.rewind(&tok);
        }
    }

    fn peek_is_punct(&mut self, c: char) -> PResult<bool> {
        Ok(self.peek()?.kind == TokenKind::Punct(c))
    }

    fn peek_is_word(&mut self, w: &str) -> PResult<bool> {
        Ok(matches!(&self.peek()?.kind, TokenKind::Word(x) if x == w))
    }

    fn expect_punct(&mut self, c: char, context: &str) -> PResult<Token> {
        let tok = self.next()?;
        if tok.kind == TokenKind::Punct(c) {
            Ok(tok)
        } else {
            Err(self.unexpected(&tok, format!("'{c}' {context}")))
        }
    }

    fn expect_word(&mut self, what: &str) -> PResult<(String, Token)> {
        let tok = self.next()?;
        match &tok.kind {
            TokenKind::Word(w) => Ok((w.clone(), tok)),
            _ => Err(self.unexpected(&tok, what)),
        }
    }

    fn expect_keyword(&mut self, kw: &str, context: &str) -> PResult<Token> {
        let tok = self.next()?;
        match &tok.kind {
            TokenKind::Word(w) if w == kw => Ok(tok),
            _ => Err(self.unexpected(&tok, format!("'{kw}' {context}"))),
        }
    }

    /// An integer token converted to `T`, with `what` naming it in errors.
    fn int<T: TryFrom<i64>>(&mut self, what: &str) -> PResult<(T, Token)> {
        let tok = self.next()?;
        match tok.kind {
            TokenKind::Int(v) => match T::try_from(v) {
                Ok(x) => Ok((x, tok)),
                Err(_) => Err(self.unexpected(&tok, format!("{what} in range"))),
            },
            _ => Err(self.unexpected(&tok, what)),
        }
    }

    // ----- script structure -----

    fn script(&mut self) -> PResult<Script> {
        let mut options = Vec::new();
        while let TokenKind::OptionLine { .. } = self.peek()?.kind {
            let tok = self.next()?;
            if let TokenKind::OptionLine { name, value } = tok.kind {
                options.push(OptionLine {
                    pos: tok.pos,
                    name,
                    value,
                });
            }
        }
        let mut init = None;
        if let TokenKind::Backquote(_) = self.peek()?.kind {
            init = Some(self.command()?);
        }
        let mut events = Vec::new();
        let mut cleanup = None;
        loop {
            let tok = self.peek()?.clone();
            match &tok.kind {
                TokenKind::Eof => break,
                TokenKind::Backquote(_) => {
                    cleanup = Some(self.command()?);
                    let end = self.next()?;
                    if end.kind != TokenKind::Eof {
                        return Err(self.unexpected(
                            &end,
                            "end of file after the final (cleanup) command without a time stamp",
                        ));
                    }
                    break;
                }
                TokenKind::OptionLine { .. } => {
                    return Err(self.unexpected(
                        &tok,
                        "an event (option lines are only allowed at the top of the script)",
                    ));
                }
                _ => events.push(self.event()?),
            }
        }
        Ok(Script {
            options,
            init,
            events,
            cleanup,
        })
    }

    fn command(&mut self) -> PResult<Command> {
        let tok = self.next()?;
        match tok.kind {
            TokenKind::Backquote(text) => Ok(Command { pos: tok.pos, text }),
            _ => Err(self.unexpected(&tok, "a back-quoted command")),
        }
    }

    fn event(&mut self) -> PResult<Event> {
        let pos = self.peek()?.pos;
        let time = self.time_spec()?;
        let tok = self.peek()?.clone();
        let action = match &tok.kind {
            TokenKind::Punct('<') | TokenKind::Punct('>') => Action::Packet(self.packet()?),
            TokenKind::Word(_) => Action::Syscall(self.syscall()?),
            TokenKind::Backquote(_) => Action::Command(self.command()?),
            TokenKind::Code(text) => {
                let text = text.clone();
                self.next()?;
                Action::Code(text)
            }
            _ => {
                return Err(self.unexpected(
                    &tok,
                    "a packet ('<' or '>'), a syscall, a back-quoted command or a %{ }% block after the time",
                ));
            }
        };
        if matches!(time, TimeSpec::Blocking { .. }) && !matches!(action, Action::Syscall(_)) {
            return Err(self.unexpected(&tok, "a syscall after a blocking time spec 'T...E'"));
        }
        Ok(Event { pos, time, action })
    }

    // ----- times -----

    fn time_spec(&mut self) -> PResult<TimeSpec> {
        if self.peek_is_punct('*')? {
            self.next()?;
            return Ok(TimeSpec::Any);
        }
        let start = self.time()?;
        if self.peek_is_punct('~')? {
            self.next()?;
            let end = self.time()?;
            return Ok(TimeSpec::Window(start, end));
        }
        if self.peek()?.kind == TokenKind::Ellipsis {
            self.next()?;
            let end = self.time()?;
            return Ok(TimeSpec::Blocking { start, end });
        }
        Ok(TimeSpec::At(start))
    }

    fn time(&mut self) -> PResult<Time> {
        const WHAT: &str = "a time (such as 0, 0.100, +.1, +1 or *)";
        let mut relative = false;
        if self.peek_is_punct('+')? {
            self.next()?;
            relative = true;
        }
        let tok = self.next()?;
        let micros = match &tok.kind {
            TokenKind::Int(v) if *v >= 0 => v.checked_mul(1_000_000),
            TokenKind::Float => float_micros(&tok.text),
            _ => return Err(self.unexpected(&tok, WHAT)),
        };
        let Some(micros) = micros else {
            return Err(self.unexpected(&tok, "a time that fits in 64-bit microseconds"));
        };
        Ok(if relative {
            Time::Relative(micros)
        } else {
            Time::Absolute(micros)
        })
    }

    // ----- packets -----

    fn packet(&mut self) -> PResult<Packet> {
        let dir_tok = self.next()?;
        let direction = match dir_tok.kind {
            TokenKind::Punct('<') => Direction::Inbound,
            TokenKind::Punct('>') => Direction::Outbound,
            _ => return Err(self.unexpected(&dir_tok, "'<' or '>'")),
        };
        let ip = self.ip_info()?;
        let body = if self.peek_is_word("icmp")? {
            PacketBody::Icmp(self.icmp()?)
        } else {
            PacketBody::Tcp(self.tcp()?)
        };
        Ok(Packet {
            direction,
            ip,
            body,
        })
    }

    /// `[ect0]`, `[noecn]`, `(tos 0x10)`, `[ttl 64]`, ... (any number, items comma separated).
    fn ip_info(&mut self) -> PResult<IpInfo> {
        let mut ip = IpInfo::default();
        loop {
            let close = if self.peek_is_punct('[')? {
                ']'
            } else if self.peek_is_punct('(')? {
                ')'
            } else {
                return Ok(ip);
            };
            self.next()?;
            loop {
                let (word, tok) =
                    self.expect_word("an IP field (noecn, ect0, ect1, ect01, ce, tos N, ttl N)")?;
                match word.as_str() {
                    "noecn" => ip.ecn = Some(Ecn::NoEcn),
                    "ect0" => ip.ecn = Some(Ecn::Ect0),
                    "ect1" => ip.ecn = Some(Ecn::Ect1),
                    "ect01" => ip.ecn = Some(Ecn::Ect01),
                    "ce" => ip.ecn = Some(Ecn::Ce),
                    "tos" => ip.tos = Some(self.int::<u8>("a TOS value (0-255)")?.0),
                    "ttl" => ip.ttl = Some(self.int::<u8>("a TTL value (0-255)")?.0),
                    _ => {
                        return Err(self.unexpected(
                            &tok,
                            "an IP field (noecn, ect0, ect1, ect01, ce, tos N, ttl N)",
                        ));
                    }
                }
                let sep = self.next()?;
                match sep.kind {
                    TokenKind::Punct(',') => continue,
                    TokenKind::Punct(c) if c == close => break,
                    _ => return Err(self.unexpected(&sep, format!("',' or '{close}'"))),
                }
            }
        }
    }

    fn tcp(&mut self) -> PResult<TcpPacket> {
        self.unpeek();
        let Some((fpos, text)) = self.lex.read_flags().map_err(|e| self.lex_err(e))? else {
            let tok = self.peek()?.clone();
            return Err(
                self.unexpected(&tok, "TCP flags (such as S, S., P., F., R, ., -) or 'icmp'")
            );
        };
        let flags = self.flags(fpos, &text)?;
        let seq = self.seq_range()?;
        let mut pkt = TcpPacket {
            flags,
            seq,
            ack: None,
            win: None,
            urg: None,
            options: None,
        };
        loop {
            let tok = self.peek()?.clone();
            let slot = match &tok.kind {
                TokenKind::Word(w) if w == "ack" => pkt.ack,
                TokenKind::Word(w) if w == "win" => pkt.win,
                TokenKind::Word(w) if w == "urg" => pkt.urg,
                _ => break,
            };
            if slot.is_some() {
                return Err(self.unexpected(&tok, "each of ack, win, urg at most once"));
            }
            self.next()?;
            let what = format!("a 32-bit unsigned value after '{}'", tok.text);
            let (v, _) = self.int::<u32>(&what)?;
            match tok.text.as_str() {
                "ack" => pkt.ack = Some(v),
                "win" => pkt.win = Some(v),
                _ => pkt.urg = Some(v),
            }
        }
        if self.peek_is_punct('<')? {
            pkt.options = Some(self.tcp_options()?);
        }
        Ok(pkt)
    }

    fn flags(&self, pos: Pos, text: &str) -> PResult<Flags> {
        let mut f = Flags::default();
        if text == "-" {
            return Ok(f);
        }
        for (i, c) in text.chars().enumerate() {
            let at = Pos {
                line: pos.line,
                col: pos.col + i as u32,
            };
            match c {
                'S' => f.syn = true,
                'F' => f.fin = true,
                'R' => f.rst = true,
                'P' => f.psh = true,
                '.' => f.ack = true,
                'U' => f.urg = true,
                'E' => f.ece = true,
                'W' => f.cwr = true,
                'A' => f.ae = true,
                '0'..='7' => {
                    // AccECN ACE counter: the three bits AE, CWR, ECE.
                    let v = c as u8 - b'0';
                    f.ae |= v & 4 != 0;
                    f.cwr |= v & 2 != 0;
                    f.ece |= v & 1 != 0;
                }
                _ => {
                    return Err(self.err_at(
                        at,
                        "a TCP flag letter (S F R P . U E W A, 0-7) or '-' alone",
                        format!("'{c}' in '{text}'"),
                    ));
                }
            }
        }
        Ok(f)
    }

    /// `start:end(len)`, with end == start + len (mod 2^32).
    fn seq_range(&mut self) -> PResult<SeqRange> {
        let (start, _) = self.int::<u32>("a sequence range 'start:end(len)'")?;
        self.expect_punct(':', "in a sequence range 'start:end(len)'")?;
        let (end, end_tok) = self.int::<u32>("the end of a sequence range 'start:end(len)'")?;
        self.expect_punct('(', "in a sequence range 'start:end(len)'")?;
        let (len, _) = self.int::<u32>("the length of a sequence range 'start:end(len)'")?;
        self.expect_punct(')', "closing a sequence range 'start:end(len)'")?;
        let want = start.wrapping_add(len);
        if end != want {
            return Err(self.err_at(
                end_tok.pos,
                format!("sequence range end {want} (= start {start} + len {len})"),
                end.to_string(),
            ));
        }
        Ok(SeqRange { start, end, len })
    }

    fn tcp_options(&mut self) -> PResult<TcpOptions> {
        self.expect_punct('<', "opening the TCP options")?;
        if self.peek()?.kind == TokenKind::Ellipsis {
            self.next()?;
            self.expect_punct('>', "closing '<...>'")?;
            return Ok(TcpOptions::Any);
        }
        let mut list = Vec::new();
        if self.peek_is_punct('>')? {
            self.next()?;
            return Ok(TcpOptions::List(list));
        }
        loop {
            list.push(self.tcp_option()?);
            let sep = self.next()?;
            match sep.kind {
                TokenKind::Punct(',') => {}
                TokenKind::Punct('>') => return Ok(TcpOptions::List(list)),
                _ => return Err(self.unexpected(&sep, "',' or '>' in the TCP options")),
            }
        }
    }

    fn tcp_option(&mut self) -> PResult<TcpOption> {
        let tok = self.next()?;
        let TokenKind::Word(name) = &tok.kind else {
            return Err(self.unexpected(&tok, TCP_OPTION_NAMES));
        };
        Ok(match name.as_str() {
            "nop" => TcpOption::Nop,
            "eol" => TcpOption::Eol,
            "sackOK" => TcpOption::SackPermitted,
            "mss" => TcpOption::Mss(self.int::<u16>("an MSS value (0-65535)")?.0),
            "wscale" => TcpOption::WindowScale(self.int::<u8>("a window scale shift (0-255)")?.0),
            "sack" => {
                let mut blocks = Vec::new();
                loop {
                    let (a, _) = self.int::<u32>("a SACK block 'start:end'")?;
                    self.expect_punct(':', "in a SACK block 'start:end'")?;
                    let (b, _) = self.int::<u32>("the end of a SACK block 'start:end'")?;
                    blocks.push((a, b));
                    if !matches!(self.peek()?.kind, TokenKind::Int(_)) {
                        break;
                    }
                }
                TcpOption::Sack(blocks)
            }
            "TS" => {
                self.expect_keyword("val", "after 'TS'")?;
                let (val, _) = self.int::<u32>("a 32-bit TS val")?;
                self.expect_keyword("ecr", "after 'TS val N'")?;
                let (ecr, _) = self.int::<u32>("a 32-bit TS ecr")?;
                TcpOption::Timestamp { val, ecr }
            }
            "FO" => TcpOption::FastOpen(self.opt_cookie()?),
            "FOEXP" => TcpOption::FastOpenExp(self.opt_cookie()?),
            "md5" => TcpOption::Md5(self.opt_cookie()?.unwrap_or_default()),
            _ => return Err(self.unexpected(&tok, TCP_OPTION_NAMES)),
        })
    }

    /// An optional hex byte string after `FO` / `FOEXP` / `md5`.
    fn opt_cookie(&mut self) -> PResult<Option<Vec<u8>>> {
        if !matches!(self.peek()?.kind, TokenKind::Word(_) | TokenKind::Int(_)) {
            return Ok(None);
        }
        let tok = self.next()?;
        let text = tok.text.as_str();
        let hex = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        match decode_hex(hex) {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(self.unexpected(&tok, "a hex byte string (an even number of hex digits)")),
        }
    }

    fn icmp(&mut self) -> PResult<IcmpPacket> {
        self.expect_keyword("icmp", "")?;
        let (kind, _) =
            self.expect_word("an ICMP type (such as unreachable, packet_too_big, time_exceeded)")?;
        let mut code = None;
        match &self.peek()?.kind {
            TokenKind::Word(w) if w != "mtu" => code = Some(self.next()?.text),
            TokenKind::Int(_) => code = Some(self.next()?.text),
            _ => {}
        }
        let mut mtu = None;
        if self.peek_is_word("mtu")? {
            self.next()?;
            mtu = Some(self.int::<u32>("an MTU value")?.0);
        }
        let mut quoted = None;
        if self.peek_is_punct('[')? {
            self.next()?;
            if self.peek_is_word("tcp")? {
                self.next()?;
            }
            quoted = Some(self.seq_range()?);
            self.expect_punct(']', "closing the quoted segment '[start:end(len)]'")?;
        }
        Ok(IcmpPacket {
            kind,
            code,
            mtu,
            quoted,
        })
    }

    // ----- syscalls -----

    fn syscall(&mut self) -> PResult<Syscall> {
        let (name, _) = self.expect_word("a syscall name")?;
        self.expect_punct('(', &format!("after syscall name '{name}'"))?;
        let mut args = Vec::new();
        if self.peek_is_punct(')')? {
            self.next()?;
        } else {
            loop {
                args.push(self.expr()?);
                let sep = self.next()?;
                match sep.kind {
                    TokenKind::Punct(',') => {}
                    TokenKind::Punct(')') => break,
                    _ => {
                        return Err(
                            self.unexpected(&sep, format!("',' or ')' in the arguments of {name}"))
                        );
                    }
                }
            }
        }
        let eq = self.next()?;
        if eq.kind != TokenKind::Punct('=') {
            return Err(self.unexpected(
                &eq,
                format!("'=' and the expected result after {name}(...)"),
            ));
        }
        let result = self.expr()?;
        let mut errno = None;
        if let TokenKind::Word(w) = &self.peek()?.kind {
            errno = Some(w.clone());
            self.next()?;
        }
        let mut note = None;
        if self.peek_is_punct('(')? {
            let open = self.next()?;
            note = Some(self.lex.read_note(open.pos).map_err(|e| self.lex_err(e))?);
        }
        Ok(Syscall {
            name,
            args,
            result,
            errno,
            note,
        })
    }

    fn expr(&mut self) -> PResult<Expr> {
        let first = self.primary()?;
        self.expr_rest(first)
    }

    /// Continues an expression whose first operand is already parsed: `A | B | C`.
    fn expr_rest(&mut self, first: Expr) -> PResult<Expr> {
        if !self.peek_is_punct('|')? {
            return Ok(first);
        }
        let mut parts = vec![first];
        while self.peek_is_punct('|')? {
            self.next()?;
            parts.push(self.primary()?);
        }
        Ok(Expr::BitOr(parts))
    }

    fn primary(&mut self) -> PResult<Expr> {
        let tok = self.next()?;
        Ok(match tok.kind {
            TokenKind::Int(v) => Expr::Int(v),
            TokenKind::Word(w) => Expr::Word(w),
            TokenKind::Ellipsis => Expr::Ellipsis,
            TokenKind::Str(s) => Expr::Str(s),
            TokenKind::Punct('[') => {
                let mut items = Vec::new();
                if self.peek_is_punct(']')? {
                    self.next()?;
                } else {
                    loop {
                        items.push(self.expr()?);
                        let sep = self.next()?;
                        match sep.kind {
                            TokenKind::Punct(',') => {}
                            TokenKind::Punct(']') => break,
                            _ => return Err(self.unexpected(&sep, "',' or ']' in an array")),
                        }
                    }
                }
                Expr::Array(items)
            }
            TokenKind::Punct('{') => {
                let mut fields = Vec::new();
                if self.peek_is_punct('}')? {
                    self.next()?;
                } else {
                    loop {
                        fields.push(self.field()?);
                        let sep = self.next()?;
                        match sep.kind {
                            TokenKind::Punct(',') => {}
                            TokenKind::Punct('}') => break,
                            _ => return Err(self.unexpected(&sep, "',' or '}' in a struct")),
                        }
                    }
                }
                Expr::Struct(fields)
            }
            _ => {
                return Err(self.unexpected(
                    &tok,
                    "an expression (integer, name, '...', string, [array] or {struct})",
                ));
            }
        })
    }

    /// `name=value`, `name(index)=value`, or a bare value.
    fn field(&mut self) -> PResult<Field> {
        if let TokenKind::Word(name) = &self.peek()?.kind {
            let name = name.clone();
            self.next()?;
            if self.peek_is_punct('(')? {
                self.next()?;
                let index = self.expr()?;
                self.expect_punct(')', &format!("closing the index of field '{name}'"))?;
                self.expect_punct('=', &format!("after field '{name}(...)'"))?;
                let value = self.expr()?;
                return Ok(Field {
                    name: Some(name),
                    index: Some(index),
                    value,
                });
            }
            if self.peek_is_punct('=')? {
                self.next()?;
                let value = self.expr()?;
                return Ok(Field {
                    name: Some(name),
                    index: None,
                    value,
                });
            }
            let value = self.expr_rest(Expr::Word(name))?;
            return Ok(Field {
                name: None,
                index: None,
                value,
            });
        }
        Ok(Field {
            name: None,
            index: None,
            value: self.expr()?,
        })
    }
}

/// `0.100` / `.1` / `1.5` seconds to microseconds (digits past the sixth decimal are dropped).
fn float_micros(text: &str) -> Option<i64> {
    let (int_part, frac) = text.split_once('.')?;
    let secs: i64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().ok()?
    };
    let mut frac_us: i64 = 0;
    for i in 0..6 {
        let d = frac
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b.saturating_sub(b'0')));
        frac_us = frac_us * 10 + d;
    }
    secs.checked_mul(1_000_000)?.checked_add(frac_us)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_times() {
        assert_eq!(float_micros("0.100"), Some(100_000));
        assert_eq!(float_micros(".1"), Some(100_000));
        assert_eq!(float_micros("1.5"), Some(1_500_000));
        assert_eq!(float_micros(".002"), Some(2_000));
        assert_eq!(float_micros("0.0000015"), Some(1));
    }

    #[test]
    fn hex() {
        assert_eq!(decode_hex("abcd1234"), Some(vec![0xab, 0xcd, 0x12, 0x34]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
