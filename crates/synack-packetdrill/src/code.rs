//! `%{ ... }%` code blocks (SUBSET.md §8): the small part of Python that packetdrill scripts
//! write there, evaluated against a TCP_INFO snapshot of the socket under test.
//!
//! Upstream packetdrill snapshots `getsockopt(TCP_INFO)` when the block's time comes, and after
//! the script has run it hands every block, preceded by `tcpi_* = value` assignments, to
//! python3. The scripts use one statement, `assert <test>, <message>`, with integer
//! arithmetic, comparisons and `and`/`or`/`not` over `tcpi_*` fields and a few symbolic
//! constants (`TCP_CA_Recovery`, `TCPI_OPT_SYN_DATA`, `TCP_ESTABLISHED`, ...). This module
//! is that subset, exactly:
//!
//! * statements separated by newlines or `;`, `#` comments, `pass`, and
//!   `assert test[, message]`; parentheses continue a statement over lines;
//! * integers (decimal, `0x`, `0o`, `0b`, `_` separators), `True`/`False`, names;
//! * Python's operators and precedence: `or`, `and`, `not`, chained comparisons
//!   (`== != < <= > >=`), `| ^ &`, `<< >>`, `+ -`, `* // %`, unary `- + ~`, `**`.
//!
//! Anything else — strings, calls, `/` (true division gives a float), `is`, `in`, other
//! statements — is [`CodeError::Unsupported`]: the block cannot be evaluated here, and the
//! runner reports that rather than passing it silently. Arithmetic is exact over `i128` (the
//! values are at most 64-bit); an overflow is reported, not wrapped.

use core::fmt;

use synack::tcp::State;
use synack::tcp::connection::{CaState, Info, tcpi_opt};
use synack::time::Duration;

/// Why a block could not be run, or what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeError {
    /// Syntax or a construct outside the subset above; `line` is 1-based within the block.
    Unsupported { line: u32, what: String },
    /// A name the snapshot does not provide because synack does not model it (e.g.
    /// `tcpi_pacing_rate`): the assertion cannot be checked.
    NotModelled {
        line: u32,
        name: String,
        why: String,
    },
    /// A name that is not defined at all (Python's NameError): the script is wrong.
    UnknownName { line: u32, name: String },
    /// Division by zero, a negative shift count, or an overflow (Python's ZeroDivisionError,
    /// ValueError, or a result too large for synack to represent).
    Runtime { line: u32, what: String },
    /// An assertion was false.
    Assert(AssertFailure),
}

/// A false `assert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertFailure {
    /// 1-based line within the block.
    pub line: u32,
    /// The test, as written.
    pub test: String,
    /// The message expression's value (the scripts pass the field under test).
    pub message: Option<i128>,
    /// Every name the test reads, with its value, in order of first use.
    pub values: Vec<(String, i128)>,
}

impl fmt::Display for AssertFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "assertion failed: {}", self.test)?;
        if !self.values.is_empty() {
            let vals: Vec<String> = self
                .values
                .iter()
                .map(|(n, v)| format!("{n} = {v}"))
                .collect();
            write!(f, " (actual: {})", vals.join(", "))?;
        }
        if let Some(m) = self.message {
            write!(f, "; AssertionError: {m}")?;
        }
        Ok(())
    }
}

impl CodeError {
    /// The 1-based line within the block the error belongs to.
    pub fn line(&self) -> u32 {
        match self {
            CodeError::Unsupported { line, .. }
            | CodeError::NotModelled { line, .. }
            | CodeError::UnknownName { line, .. }
            | CodeError::Runtime { line, .. } => *line,
            CodeError::Assert(a) => a.line,
        }
    }

    /// True when the block could not be checked (as opposed to: it was checked and failed).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            CodeError::Unsupported { .. } | CodeError::NotModelled { .. }
        )
    }
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeError::Unsupported { what, .. } => {
                write!(f, "code block not evaluated: {what} is not supported")
            }
            CodeError::NotModelled { name, why, .. } => {
                write!(f, "code block not evaluated: {name}: {why}")
            }
            CodeError::UnknownName { name, .. } => {
                write!(
                    f,
                    "error in code block: NameError: name '{name}' is not defined"
                )
            }
            CodeError::Runtime { what, .. } => write!(f, "error in code block: {what}"),
            CodeError::Assert(a) => a.fmt(f),
        }
    }
}

/// What a name means in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Value(i128),
    /// Known to Linux's TCP_INFO, not available here; the string says why.
    NotModelled(String),
    Unknown,
}

/// A parsed block: its statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    stmts: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stmt {
    line: u32,
    test: Expr,
    /// The test as written (for messages).
    text: String,
    message: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Int(i128),
    Name(String),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a op1 b op2 c ...`: Python's chained comparison.
    Compare(Box<Expr>, Vec<(CmpOp, Expr)>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnOp {
    Neg,
    Pos,
    Invert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    BitOr,
    BitXor,
    BitAnd,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
    FloorDiv,
    Mod,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Int(i128),
    Name(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    /// End of a statement (newline or `;` outside parentheses).
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: u32,
    /// Byte offset in the block text.
    start: usize,
    end: usize,
}

fn unsupported(line: u32, what: impl Into<String>) -> CodeError {
    CodeError::Unsupported {
        line,
        what: what.into(),
    }
}

/// Longest operators first so `<=` is not read as `<`.
const OPERATORS: [&str; 20] = [
    "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "+", "-", "*", "%", "&", "|", "^", "~", "<",
    ">", "/", "=",
];

fn lex(text: &str) -> Result<Vec<Token>, CodeError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line, mut depth) = (0usize, 1u32, 0u32);
    let end_stmt = |out: &mut Vec<Token>, line: u32, at: usize| {
        if !matches!(out.last(), None | Some(Token { tok: Tok::End, .. })) {
            out.push(Token {
                tok: Tok::End,
                line,
                start: at,
                end: at,
            });
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                if depth == 0 {
                    end_stmt(&mut out, line, i);
                }
                line += 1;
                i += 1;
            }
            b';' if depth == 0 => {
                end_stmt(&mut out, line, i);
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'\\' if b.get(i + 1) == Some(&b'\n') => {
                line += 1;
                i += 2;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b')' | b',' => {
                let tok = match c {
                    b'(' => {
                        depth += 1;
                        Tok::LParen
                    }
                    b')' => {
                        if depth == 0 {
                            return Err(unsupported(line, "an unmatched ')'"));
                        }
                        depth -= 1;
                        Tok::RParen
                    }
                    _ => Tok::Comma,
                };
                out.push(Token {
                    tok,
                    line,
                    start: i,
                    end: i + 1,
                });
                i += 1;
            }
            b'0'..=b'9' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if i < b.len() && (b[i] == b'.') {
                    return Err(unsupported(line, "a floating-point number"));
                }
                let word = text[start..i].replace('_', "");
                let (digits, radix) = match word.get(..2) {
                    Some("0x") | Some("0X") => (&word[2..], 16),
                    Some("0o") | Some("0O") => (&word[2..], 8),
                    Some("0b") | Some("0B") => (&word[2..], 2),
                    _ => (word.as_str(), 10),
                };
                // Python 3 rejects decimal literals with leading zeros ("010").
                let bad_decimal = radix == 10 && digits.len() > 1 && digits.starts_with('0');
                let v = i128::from_str_radix(digits, radix)
                    .ok()
                    .filter(|_| !bad_decimal && !digits.is_empty())
                    .ok_or_else(|| {
                        unsupported(line, format!("the number literal '{}'", &text[start..i]))
                    })?;
                out.push(Token {
                    tok: Tok::Int(v),
                    line,
                    start,
                    end: i,
                });
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Name(text[start..i].to_string()),
                    line,
                    start,
                    end: i,
                });
            }
            _ => {
                let rest = &text[i..];
                let Some(op) = OPERATORS.iter().find(|o| rest.starts_with(**o)) else {
                    let ch = rest.chars().next().unwrap_or('?');
                    let what = match ch {
                        '\'' | '"' => "a string".to_string(),
                        _ => format!("the character '{ch}'"),
                    };
                    return Err(unsupported(line, what));
                };
                out.push(Token {
                    tok: Tok::Op(op),
                    line,
                    start: i,
                    end: i + op.len(),
                });
                i += op.len();
            }
        }
    }
    if depth > 0 {
        return Err(unsupported(line, "an unclosed '('"));
    }
    end_stmt(&mut out, line, b.len());
    Ok(out)
}

/// Keywords Python reserves: as a name they are outside the subset (or a syntax error).
const KEYWORDS: [&str; 33] = [
    "None", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "nonlocal", "raise", "return", "try", "while", "with", "yield", "and", "or", "not", "pass",
];

struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn line(&self) -> u32 {
        self.peek()
            .or_else(|| self.toks.last())
            .map_or(1, |t| t.line)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Token { tok: Tok::Op(o), .. }) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Token { tok: Tok::Name(n), .. }) if n == w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn describe(t: Option<&Token>) -> String {
        match t.map(|t| &t.tok) {
            None | Some(Tok::End) => "the end of the statement".into(),
            Some(Tok::Int(v)) => format!("'{v}'"),
            Some(Tok::Name(n)) => format!("'{n}'"),
            Some(Tok::Op(o)) => format!("'{o}'"),
            Some(Tok::LParen) => "'('".into(),
            Some(Tok::RParen) => "')'".into(),
            Some(Tok::Comma) => "','".into(),
        }
    }

    fn block(&mut self) -> Result<Block, CodeError> {
        let mut stmts = Vec::new();
        while let Some(t) = self.peek().cloned() {
            match &t.tok {
                Tok::End => {
                    self.pos += 1;
                }
                Tok::Name(n) if n == "pass" => {
                    self.pos += 1;
                    self.end_of_statement()?;
                }
                Tok::Name(n) if n == "assert" => {
                    self.pos += 1;
                    let first = self.peek().map_or(self.text.len(), |t| t.start);
                    let test = self.expr()?;
                    let last = self.toks[self.pos - 1].end;
                    let message = if matches!(
                        self.peek(),
                        Some(Token {
                            tok: Tok::Comma,
                            ..
                        })
                    ) {
                        self.pos += 1;
                        Some(self.expr()?)
                    } else {
                        None
                    };
                    self.end_of_statement()?;
                    stmts.push(Stmt {
                        line: t.line,
                        test,
                        text: self.text[first..last]
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" "),
                        message,
                    });
                }
                _ => {
                    return Err(unsupported(
                        t.line,
                        format!(
                            "a statement starting with {} (only 'assert' and 'pass' are)",
                            Self::describe(Some(&t))
                        ),
                    ));
                }
            }
        }
        Ok(Block { stmts })
    }

    fn end_of_statement(&mut self) -> Result<(), CodeError> {
        match self.next() {
            None | Some(Token { tok: Tok::End, .. }) => Ok(()),
            t => Err(unsupported(
                t.as_ref().map_or(1, |t| t.line),
                format!("{} after the statement", Self::describe(t.as_ref())),
            )),
        }
    }

    fn expr(&mut self) -> Result<Expr, CodeError> {
        let mut e = self.and_expr()?;
        while self.eat_word("or") {
            e = Expr::Or(Box::new(e), Box::new(self.and_expr()?));
        }
        Ok(e)
    }

    fn and_expr(&mut self) -> Result<Expr, CodeError> {
        let mut e = self.not_expr()?;
        while self.eat_word("and") {
            e = Expr::And(Box::new(e), Box::new(self.not_expr()?));
        }
        Ok(e)
    }

    fn not_expr(&mut self) -> Result<Expr, CodeError> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, CodeError> {
        let first = self.bit_or()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek().map(|t| &t.tok) {
                Some(Tok::Op("==")) => CmpOp::Eq,
                Some(Tok::Op("!=")) => CmpOp::Ne,
                Some(Tok::Op("<")) => CmpOp::Lt,
                Some(Tok::Op("<=")) => CmpOp::Le,
                Some(Tok::Op(">")) => CmpOp::Gt,
                Some(Tok::Op(">=")) => CmpOp::Ge,
                Some(Tok::Name(n)) if n == "is" || n == "in" => {
                    return Err(unsupported(self.line(), format!("the operator '{n}'")));
                }
                _ => break,
            };
            self.pos += 1;
            rest.push((op, self.bit_or()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Expr::Compare(Box::new(first), rest)
        })
    }

    fn binary_level(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<Expr, CodeError>,
    ) -> Result<Expr, CodeError> {
        let mut e = next(self)?;
        'outer: loop {
            for &(s, op) in ops {
                if self.eat_op(s) {
                    e = Expr::Binary(op, Box::new(e), Box::new(next(self)?));
                    continue 'outer;
                }
            }
            return Ok(e);
        }
    }

    fn bit_or(&mut self) -> Result<Expr, CodeError> {
        self.binary_level(&[("|", BinOp::BitOr)], Self::bit_xor)
    }

    fn bit_xor(&mut self) -> Result<Expr, CodeError> {
        self.binary_level(&[("^", BinOp::BitXor)], Self::bit_and)
    }

    fn bit_and(&mut self) -> Result<Expr, CodeError> {
        self.binary_level(&[("&", BinOp::BitAnd)], Self::shift)
    }

    fn shift(&mut self) -> Result<Expr, CodeError> {
        self.binary_level(&[("<<", BinOp::Shl), (">>", BinOp::Shr)], Self::sum)
    }

    fn sum(&mut self) -> Result<Expr, CodeError> {
        self.binary_level(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::term)
    }

    fn term(&mut self) -> Result<Expr, CodeError> {
        let mut e = self.unary()?;
        loop {
            let op = match self.peek().map(|t| &t.tok) {
                Some(Tok::Op("*")) => BinOp::Mul,
                Some(Tok::Op("//")) => BinOp::FloorDiv,
                Some(Tok::Op("%")) => BinOp::Mod,
                Some(Tok::Op("/")) => {
                    return Err(unsupported(
                        self.line(),
                        "'/' (true division gives a float; use '//')",
                    ));
                }
                _ => return Ok(e),
            };
            self.pos += 1;
            e = Expr::Binary(op, Box::new(e), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, CodeError> {
        let op = match self.peek().map(|t| &t.tok) {
            Some(Tok::Op("-")) => UnOp::Neg,
            Some(Tok::Op("+")) => UnOp::Pos,
            Some(Tok::Op("~")) => UnOp::Invert,
            _ => return self.power(),
        };
        self.pos += 1;
        Ok(Expr::Unary(op, Box::new(self.unary()?)))
    }

    /// `**` binds tighter than a unary operator on its left and is right-associative, and its
    /// right operand may itself be unary (`2 ** -1` is a float: caught when evaluated).
    fn power(&mut self) -> Result<Expr, CodeError> {
        let base = self.atom()?;
        if self.eat_op("**") {
            return Ok(Expr::Binary(
                BinOp::Pow,
                Box::new(base),
                Box::new(self.unary()?),
            ));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, CodeError> {
        let line = self.line();
        let t = self.next();
        let e = match t.as_ref().map(|t| &t.tok) {
            Some(Tok::Int(v)) => Expr::Int(*v),
            Some(Tok::Name(n)) if n == "True" => Expr::Int(1),
            Some(Tok::Name(n)) if n == "False" => Expr::Int(0),
            Some(Tok::Name(n)) if KEYWORDS.contains(&n.as_str()) => {
                return Err(unsupported(line, format!("'{n}' here")));
            }
            Some(Tok::Name(n)) => Expr::Name(n.clone()),
            Some(Tok::LParen) => {
                let e = self.expr()?;
                match self.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => e,
                    t => {
                        return Err(unsupported(
                            line,
                            format!("{} where ')' belongs (tuples)", Self::describe(t.as_ref())),
                        ));
                    }
                }
            }
            _ => {
                return Err(unsupported(
                    line,
                    format!("{} where a value belongs", Self::describe(t.as_ref())),
                ));
            }
        };
        if matches!(self.peek().map(|t| &t.tok), Some(Tok::LParen)) {
            return Err(unsupported(line, "a function call"));
        }
        Ok(e)
    }
}

/// Parses a block's text (what is between `%{` and `}%`).
pub fn parse(text: &str) -> Result<Block, CodeError> {
    let toks = lex(text)?;
    Parser { text, toks, pos: 0 }.block()
}

impl Block {
    /// Runs every statement in order against `env`; the first failure ends the run, as in
    /// Python.
    pub fn run(&self, env: &dyn Fn(&str) -> Binding) -> Result<(), CodeError> {
        for s in &self.stmts {
            let mut ev = Eval {
                env,
                line: s.line,
                seen: Vec::new(),
            };
            let ok = ev.eval(&s.test)? != 0;
            if !ok {
                let values = std::mem::take(&mut ev.seen);
                let message = match &s.message {
                    Some(m) => Some(ev.eval(m)?),
                    None => None,
                };
                return Err(CodeError::Assert(AssertFailure {
                    line: s.line,
                    test: s.text.clone(),
                    message,
                    values,
                }));
            }
        }
        Ok(())
    }

    /// Number of statements (`pass` not counted).
    pub fn len(&self) -> usize {
        self.stmts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }
}

struct Eval<'a> {
    env: &'a dyn Fn(&str) -> Binding,
    line: u32,
    /// Names read, with values, in order of first use.
    seen: Vec<(String, i128)>,
}

impl Eval<'_> {
    fn runtime(&self, what: impl Into<String>) -> CodeError {
        CodeError::Runtime {
            line: self.line,
            what: what.into(),
        }
    }

    fn overflow(&self) -> CodeError {
        self.runtime("integer overflow (beyond 128 bits)")
    }

    fn eval(&mut self, e: &Expr) -> Result<i128, CodeError> {
        Ok(match e {
            Expr::Int(v) => *v,
            Expr::Name(n) => match (self.env)(n) {
                Binding::Value(v) => {
                    if !self.seen.iter().any(|(s, _)| s == n) {
                        self.seen.push((n.clone(), v));
                    }
                    v
                }
                Binding::NotModelled(why) => {
                    return Err(CodeError::NotModelled {
                        line: self.line,
                        name: n.clone(),
                        why,
                    });
                }
                Binding::Unknown => {
                    return Err(CodeError::UnknownName {
                        line: self.line,
                        name: n.clone(),
                    });
                }
            },
            Expr::Unary(op, a) => {
                let a = self.eval(a)?;
                match op {
                    UnOp::Neg => a.checked_neg().ok_or_else(|| self.overflow())?,
                    UnOp::Pos => a,
                    UnOp::Invert => !a,
                }
            }
            Expr::Not(a) => (self.eval(a)? == 0) as i128,
            // Python's `and`/`or` give one of their operands and skip the right one when the
            // left decides.
            Expr::And(a, b) => {
                let a = self.eval(a)?;
                if a == 0 { a } else { self.eval(b)? }
            }
            Expr::Or(a, b) => {
                let a = self.eval(a)?;
                if a != 0 { a } else { self.eval(b)? }
            }
            Expr::Compare(first, rest) => {
                let mut left = self.eval(first)?;
                for (op, e) in rest {
                    let right = self.eval(e)?;
                    let holds = match op {
                        CmpOp::Eq => left == right,
                        CmpOp::Ne => left != right,
                        CmpOp::Lt => left < right,
                        CmpOp::Le => left <= right,
                        CmpOp::Gt => left > right,
                        CmpOp::Ge => left >= right,
                    };
                    if !holds {
                        return Ok(0);
                    }
                    left = right;
                }
                1
            }
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                self.binary(*op, a, b)?
            }
        })
    }

    fn binary(&self, op: BinOp, a: i128, b: i128) -> Result<i128, CodeError> {
        let ovf = || self.overflow();
        Ok(match op {
            BinOp::BitOr => a | b,
            BinOp::BitXor => a ^ b,
            BinOp::BitAnd => a & b,
            BinOp::Add => a.checked_add(b).ok_or_else(ovf)?,
            BinOp::Sub => a.checked_sub(b).ok_or_else(ovf)?,
            BinOp::Mul => a.checked_mul(b).ok_or_else(ovf)?,
            BinOp::Shl | BinOp::Shr if b < 0 => {
                return Err(self.runtime("ValueError: negative shift count"));
            }
            BinOp::Shl => {
                if a == 0 {
                    0
                } else {
                    u32::try_from(b)
                        .ok()
                        .filter(|&s| s < 127)
                        .and_then(|s| a.checked_mul(1i128 << s))
                        .ok_or_else(ovf)?
                }
            }
            BinOp::Shr => a >> b.min(127),
            BinOp::FloorDiv | BinOp::Mod => {
                if b == 0 {
                    return Err(
                        self.runtime("ZeroDivisionError: integer division or modulo by zero")
                    );
                }
                // Python floors the quotient; the remainder takes the divisor's sign.
                let mut q = a.checked_div(b).ok_or_else(ovf)?;
                if a % b != 0 && ((a < 0) != (b < 0)) {
                    q -= 1;
                }
                if op == BinOp::FloorDiv { q } else { a - q * b }
            }
            BinOp::Pow => {
                if b < 0 {
                    return Err(unsupported(
                        self.line,
                        "a negative power (the result is a float)",
                    ));
                }
                let e = u32::try_from(b).map_err(|_| ovf())?;
                a.checked_pow(e).ok_or_else(ovf)?
            }
        })
    }
}

/// What a code block reads: a TCP_INFO snapshot of the socket under test, with the names
/// upstream packetdrill defines before each block (Linux's `tcpi_*` fields and the constants
/// `TCP_ESTABLISHED`…, `TCP_CA_Open`…, `TCPI_OPT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The socket's state; a socket without a connection is CLOSED or LISTEN.
    pub state: State,
    /// The connection's statistics, or `None` when synack no longer has the connection (it
    /// was reset or closed and deleted): then only `tcpi_state` is known.
    pub info: Option<Info>,
}

/// Linux's `tcpi_state` numbers (include/net/tcp_states.h).
pub fn linux_state(s: State) -> u8 {
    match s {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Listen => 10,
        State::Closing => 11,
    }
}

/// Linux TCP_INFO fields (and the other data upstream defines) that synack does not report: every
/// Linux field upstream packetdrill's code.c emits (FreeBSD's are not listed: a script naming
/// them fails on Linux with a NameError too) minus the ones [`Snapshot::binding`] computes.
const NOT_MODELLED: &[&str] = &[
    "tcpi_delivery_rate_app_limited",
    "tcpi_ato",
    "tcpi_fackets",
    "tcpi_last_data_sent",
    "tcpi_last_ack_sent",
    "tcpi_last_data_recv",
    "tcpi_last_ack_recv",
    "tcpi_rcv_ssthresh",
    "tcpi_pacing_rate",
    "tcpi_max_pacing_rate",
    "tcpi_rcv_rtt",
    "tcpi_rcv_space",
    "tcpi_delivery_rate",
    "tcpi_busy_time",
    "tcpi_rwnd_limited",
    "tcpi_sndbuf_limited",
    "tcpi_delivered_ce",
    "tcpi_reord_seen",
    "tcpi_received_ce",
    "tcpi_delivered_e1_bytes",
    "tcpi_delivered_e0_bytes",
    "tcpi_delivered_ce_bytes",
    "tcpi_received_e1_bytes",
    "tcpi_received_e0_bytes",
    "tcpi_received_ce_bytes",
    "tcpi_accecn_fail_mode",
    "tcpi_accecn_opt_seen",
    "tcpi_ecn_mode",
    "tcpi_options2",
    "tcpi_rcv_ooopack",
    "tcpi_rehash",
    "tcpi_total_rto_time",
];

fn micros(d: Duration) -> i128 {
    d.as_micros() as i128
}

impl Snapshot {
    /// The value of `name` in this snapshot.
    pub fn binding(&self, name: &str) -> Binding {
        let constant = match name {
            "TCP_ESTABLISHED" => Some(linux_state(State::Established)),
            "TCP_SYN_SENT" => Some(linux_state(State::SynSent)),
            "TCP_SYN_RECV" => Some(linux_state(State::SynReceived)),
            "TCP_FIN_WAIT1" => Some(linux_state(State::FinWait1)),
            "TCP_FIN_WAIT2" => Some(linux_state(State::FinWait2)),
            "TCP_TIME_WAIT" => Some(linux_state(State::TimeWait)),
            "TCP_CLOSE" => Some(linux_state(State::Closed)),
            "TCP_CLOSE_WAIT" => Some(linux_state(State::CloseWait)),
            "TCP_LAST_ACK" => Some(linux_state(State::LastAck)),
            "TCP_LISTEN" => Some(linux_state(State::Listen)),
            "TCP_CLOSING" => Some(linux_state(State::Closing)),
            "TCP_CA_Open" => Some(CaState::Open.linux_value()),
            "TCP_CA_Disorder" => Some(CaState::Disorder.linux_value()),
            "TCP_CA_CWR" => Some(CaState::Cwr.linux_value()),
            "TCP_CA_Recovery" => Some(CaState::Recovery.linux_value()),
            "TCP_CA_Loss" => Some(CaState::Loss.linux_value()),
            "TCPI_OPT_TIMESTAMPS" => Some(tcpi_opt::TIMESTAMPS),
            "TCPI_OPT_SACK" => Some(tcpi_opt::SACK),
            "TCPI_OPT_WSCALE" => Some(tcpi_opt::WSCALE),
            "TCPI_OPT_ECN" => Some(tcpi_opt::ECN),
            "TCPI_OPT_ECN_SEEN" => Some(tcpi_opt::ECN_SEEN),
            "TCPI_OPT_SYN_DATA" => Some(tcpi_opt::SYN_DATA),
            // A socket whose connection entered TIME-WAIT reports CLOSE: Linux hands the
            // connection to a TIME-WAIT mini-socket (tcp_time_wait, then tcp_done) and the
            // socket the application holds is closed. synack keeps one connection and
            // reports TIME-WAIT through its own API.
            "tcpi_state" => Some(match self.state {
                State::TimeWait => linux_state(State::Closed),
                s => linux_state(s),
            }),
            _ => None,
        };
        if let Some(v) = constant {
            return Binding::Value(v.into());
        }
        let Some(i) = &self.info else {
            if name.starts_with("tcpi_") {
                return Binding::NotModelled(
                    "the connection is gone (reset or closed) and synack keeps no statistics \
                     for it; only tcpi_state is known"
                        .into(),
                );
            }
            return Binding::Unknown;
        };
        let v: i128 = match name {
            "tcpi_ca_state" => i.ca_state.linux_value().into(),
            "tcpi_options" => i.options().into(),
            "tcpi_snd_wscale" => i.snd_wscale.into(),
            "tcpi_rcv_wscale" => i.rcv_wscale.into(),
            "tcpi_rto" => micros(i.rto),
            "tcpi_rtt" => i.srtt.map_or(0, micros),
            "tcpi_rttvar" => micros(i.rttvar),
            "tcpi_snd_mss" => i.snd_mss.into(),
            "tcpi_advmss" => i.advmss.into(),
            "tcpi_snd_cwnd" => i.cwnd_segments().into(),
            "tcpi_snd_ssthresh" => i.ssthresh_segments().into(),
            "tcpi_unacked" => i.unacked.into(),
            "tcpi_sacked" => i.sacked.into(),
            "tcpi_lost" => i.lost.into(),
            "tcpi_retrans" => i.retrans.into(),
            "tcpi_reordering" => i.reordering.into(),
            "tcpi_delivered" => i.delivered.into(),
            "tcpi_dsack_dups" => i.dsack_dups.into(),
            "tcpi_total_retrans" => i.retransmits.into(),
            "tcpi_bytes_acked" => i.bytes_sent.into(),
            "tcpi_bytes_received" => i.bytes_received.into(),
            "tcpi_bytes_sent" => i.bytes_out.into(),
            "tcpi_bytes_retrans" => i.bytes_retrans.into(),
            "tcpi_segs_out" => i.segs_out.into(),
            "tcpi_segs_in" => i.segs_in.into(),
            "tcpi_data_segs_out" => i.data_segs_out.into(),
            "tcpi_data_segs_in" => i.data_segs_in.into(),
            "tcpi_retransmits" => i.timeouts.into(),
            "tcpi_backoff" => i.backoff.into(),
            "tcpi_probes" => i.probes.into(),
            "tcpi_total_rto" => i.total_rto.into(),
            "tcpi_total_rto_recoveries" => i.total_rto_recoveries.into(),
            "tcpi_notsent_bytes" => i.notsent_bytes.into(),
            "tcpi_rcv_mss" => i.rcv_mss_estimate.into(),
            "tcpi_snd_wnd" => i.snd_wnd.into(),
            "tcpi_rcv_wnd" => i.rcv_wnd.into(),
            "tcpi_pmtu" => i.pmtu.into(),
            // Linux's minimum filter starts at ~0U (`tcp_min_rtt`).
            "tcpi_min_rtt" => i.min_rtt.map_or(u32::MAX.into(), micros),
            n if NOT_MODELLED.contains(&n)
                || n.starts_with("bbr_")
                || n.starts_with("dctcp_")
                || n.starts_with("tcpv_")
                || n.starts_with("SK_MEMINFO_") =>
            {
                return Binding::NotModelled("synack does not report this TCP_INFO field".into());
            }
            _ => return Binding::Unknown,
        };
        Binding::Value(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Binding {
        match name {
            "tcpi_snd_cwnd" => Binding::Value(10),
            "tcpi_options" => Binding::Value(7),
            "TCPI_OPT_SYN_DATA" => Binding::Value(32),
            "TCPI_OPT_SACK" => Binding::Value(2),
            "tcpi_ca_state" => Binding::Value(3),
            "TCP_CA_Recovery" => Binding::Value(3),
            "tcpi_pacing_rate" => Binding::NotModelled("no pacing".into()),
            _ => Binding::Unknown,
        }
    }

    fn run(text: &str) -> Result<(), CodeError> {
        parse(text)?.run(&env)
    }

    fn value(expr: &str) -> i128 {
        // `assert (expr) == v` is true only for the right v: find it by evaluating directly.
        let b = parse(&format!("assert {expr}")).unwrap();
        let Stmt { test, .. } = &b.stmts[0];
        Eval {
            env: &env,
            line: 1,
            seen: Vec::new(),
        }
        .eval(test)
        .unwrap()
    }

    #[test]
    fn upstream_forms_pass() {
        run(" assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd ").unwrap();
        run(" assert tcpi_snd_cwnd == 10,tcpi_snd_cwnd ").unwrap();
        run("\nassert tcpi_ca_state == TCP_CA_Recovery, tcpi_ca_state\nassert tcpi_snd_cwnd == 10, tcpi_snd_cwnd  # a comment\n")
            .unwrap();
        run(" assert (tcpi_options & TCPI_OPT_SYN_DATA) == 0, tcpi_options ").unwrap();
        run(" assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd; assert tcpi_options != 0, tcpi_options ")
            .unwrap();
        run("pass").unwrap();
        run("").unwrap();
    }

    #[test]
    fn failed_assert_names_values_and_message() {
        let e = run("\nassert tcpi_snd_cwnd == 10, 1\nassert tcpi_snd_cwnd == 7 and tcpi_options > 0, tcpi_snd_cwnd\n")
            .unwrap_err();
        let CodeError::Assert(a) = e else {
            panic!("{e:?}")
        };
        assert_eq!(a.line, 3);
        assert_eq!(a.test, "tcpi_snd_cwnd == 7 and tcpi_options > 0");
        assert_eq!(a.message, Some(10));
        // `and` stopped at the false left side: tcpi_options was never read.
        assert_eq!(a.values, vec![("tcpi_snd_cwnd".to_string(), 10)]);
        assert_eq!(
            a.to_string(),
            "assertion failed: tcpi_snd_cwnd == 7 and tcpi_options > 0 (actual: tcpi_snd_cwnd = 10); AssertionError: 10"
        );
    }

    #[test]
    fn python_precedence_and_semantics() {
        assert_eq!(value("1 + 2 * 3"), 7);
        assert_eq!(value("(1 + 2) * 3"), 9);
        assert_eq!(value("-7 // 2"), -4);
        assert_eq!(value("-7 % 2"), 1);
        assert_eq!(value("7 % -2"), -1);
        assert_eq!(value("7 // -2"), -4);
        assert_eq!(value("-2 ** 2"), -4);
        assert_eq!(value("2 ** 3 ** 2"), 512);
        assert_eq!(value("1 | 2 ^ 3 & 6"), 1); // left to right would give 0
        assert_eq!(value("12 ^ 5 & 3"), 13); // left to right would give 1
        assert_eq!(value("1 | 6 ^ 3"), 5); // left to right would give 4
        assert_eq!(value("1 << 4 >> 2"), 4);
        assert_eq!(value("1 < 2 < 3"), 1);
        assert_eq!(value("3 > 2 > 2"), 0);
        assert_eq!(value("1 == 1 != 2"), 1);
        assert_eq!(value("not 0 and 5"), 5);
        assert_eq!(value("0 or 0"), 0);
        assert_eq!(value("0 or 9"), 9);
        assert_eq!(value("not 1 == 2"), 1);
        assert_eq!(value("~5"), -6);
        assert_eq!(value("0x1F + 0b11 + 0o7 + 1_000"), 31 + 3 + 7 + 1000);
        assert_eq!(value("True + True"), 2);
        assert_eq!(value("(tcpi_options &\n TCPI_OPT_SACK)"), 2);
    }

    #[test]
    fn unsupported_constructs_are_reported_not_passed() {
        for (text, what) in [
            ("assert tcpi_snd_cwnd / 2 == 5", "'/'"),
            ("assert tcpi_snd_cwnd == 1.5", "floating-point"),
            ("assert 'a' == 'a'", "a string"),
            ("print(tcpi_snd_cwnd)", "statement starting with 'print'"),
            ("assert len(x) == 1", "a function call"),
            ("x = 1", "statement starting with 'x'"),
            ("assert tcpi_snd_cwnd in 5", "'in'"),
            ("assert tcpi_snd_cwnd is 5", "'is'"),
            ("assert (1, 2)", "tuples"),
            ("assert 1 == 1 2", "'2' after the statement"),
            ("assert 010 == 8", "number literal"),
            ("assert (1 == 1", "unclosed"),
        ] {
            let e = run(text).unwrap_err();
            assert!(e.is_unsupported(), "{text}: {e:?}");
            assert!(e.to_string().contains(what), "{text}: {e}");
        }
        let e = run("assert tcpi_pacing_rate > 0").unwrap_err();
        assert!(e.is_unsupported());
        assert!(e.to_string().contains("tcpi_pacing_rate: no pacing"), "{e}");
    }

    #[test]
    fn snapshot_uses_linux_encodings() {
        let info = Info {
            state: Some(State::Established),
            snd_mss: 1000,
            advmss: 1460,
            cwnd: 7_500,
            ssthresh: 7_000,
            srtt: Some(Duration::from_micros(12_345)),
            rto: Duration::from_millis(212),
            ca_state: CaState::Recovery,
            sack: true,
            timestamps: true,
            rcv_wnd: 267_776,
            ..Info::default()
        };
        let snap = Snapshot {
            state: State::Established,
            info: Some(info),
        };
        let v = |n: &str| snap.binding(n);
        assert_eq!(v("tcpi_snd_cwnd"), Binding::Value(7)); // 7.5 segments: rounded down
        assert_eq!(v("tcpi_snd_ssthresh"), Binding::Value(7));
        assert_eq!(v("tcpi_ca_state"), v("TCP_CA_Recovery"));
        assert_eq!(v("tcpi_options"), Binding::Value(1 | 2));
        assert_eq!(v("tcpi_rtt"), Binding::Value(12_345));
        assert_eq!(v("tcpi_rto"), Binding::Value(212_000));
        assert_eq!(v("tcpi_state"), Binding::Value(1));
        assert_eq!(v("TCP_CLOSE_WAIT"), Binding::Value(8));
        assert!(matches!(v("tcpi_rcv_space"), Binding::NotModelled(_)));
        // Linux fields newer than the first list (6.x): some modelled, some not.
        assert_eq!(v("tcpi_snd_wnd"), Binding::Value(0));
        assert!(matches!(v("tcpi_total_rto_time"), Binding::NotModelled(_)));
        assert_eq!(v("tcpi_rcv_wnd"), Binding::Value(267_776));
        // Linux's minimum-RTT filter reads ~0U before the first sample; microseconds after.
        assert_eq!(v("tcpi_min_rtt"), Binding::Value(u32::MAX.into()));
        let sampled = Snapshot {
            info: Some(Info {
                min_rtt: Some(Duration::from_micros(9_876)),
                rcv_mss_estimate: 536,
                timeouts: 2,
                ..info
            }),
            ..snap
        };
        assert_eq!(sampled.binding("tcpi_min_rtt"), Binding::Value(9_876));
        assert_eq!(sampled.binding("tcpi_rcv_mss"), Binding::Value(536));
        assert_eq!(sampled.binding("tcpi_retransmits"), Binding::Value(2));
        // FreeBSD's tcp_info fields are not Linux's: a NameError on Linux too.
        assert_eq!(v("tcpi_snd_nxt"), Binding::Unknown);
        assert_eq!(v("tcpi_cwnd"), Binding::Unknown);
        let inf = Snapshot {
            info: Some(Info {
                ssthresh: u32::MAX,
                ..info
            }),
            ..snap
        };
        assert_eq!(
            inf.binding("tcpi_snd_ssthresh"),
            Binding::Value(0x7fff_ffff)
        );
        let gone = Snapshot {
            state: State::Closed,
            info: None,
        };
        assert_eq!(gone.binding("tcpi_state"), Binding::Value(7));
        assert!(matches!(
            gone.binding("tcpi_snd_cwnd"),
            Binding::NotModelled(_)
        ));
    }

    #[test]
    fn runtime_errors_fail() {
        let e = run("assert 1\nassert tcpi_snd_cwnd // 0").unwrap_err();
        assert!(matches!(e, CodeError::Runtime { line: 2, .. }), "{e:?}");
        let e = run("assert tcpi_nonsense == 1").unwrap_err();
        assert_eq!(
            e,
            CodeError::UnknownName {
                line: 1,
                name: "tcpi_nonsense".into()
            }
        );
        assert!(!e.is_unsupported());
        assert!(matches!(
            run("assert 1 << -1").unwrap_err(),
            CodeError::Runtime { .. }
        ));
        assert!(matches!(
            run("assert 2 ** 200").unwrap_err(),
            CodeError::Runtime { .. }
        ));
    }
}
