//! Tokenizer for packetdrill scripts.
//!
//! The lexer is pulled one token at a time by the parser, because a few parts of the language are
//! not made of ordinary tokens and are read raw instead: the TCP flags word (`S.`, `FP.`, `-`; see
//! [`Lexer::read_flags`]) and the free-text note after a syscall's errno (`EPIPE (Broken pipe)`;
//! see [`Lexer::read_note`]). [`tokenize`] lexes a whole text in ordinary mode.
//!
//! Comments (`// ...` to end of line and `/* ... */`) and whitespace are skipped. Back-quoted shell
//! blocks and `%{ ... }%` code blocks are single tokens carrying their inner text verbatim. An
//! option line (`--name=value`, only recognised when `--` is the first thing on its line) is a
//! single token too.

use std::fmt;

use crate::ast::Pos;

/// What kind of token, with its value where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A decimal (`1460`, `-1`) or hexadecimal (`0x2`) integer.
    Int(i64),
    /// A number with a fractional part: `.1`, `0.100`, `1.5`. The digits are in [`Token::text`].
    Float,
    /// A name: `socket`, `SOL_SOCKET`, `sackOK`, `ect0`, `abcd1234`, and also digit-first
    /// alphanumeric runs that are not numbers (`1234abcd`, as in a Fast Open cookie).
    Word(String),
    /// `...`.
    Ellipsis,
    /// `"text"`, with escapes resolved.
    Str(String),
    /// `` `text` ``: the text between the backquotes, verbatim (may span lines).
    Backquote(String),
    /// `%{ text }%`: the text between `%{` and `}%`, verbatim (may span lines).
    Code(String),
    /// `--name=value` or `--name` at the start of a line.
    OptionLine {
        /// Without the leading `--`.
        name: String,
        /// The text after the first `=`, if any.
        value: Option<String>,
    },
    /// One of `[ ] { } ( ) < > : , | = ~ * + . -`.
    Punct(char),
    /// The end of the text.
    Eof,
}

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token's kind and value.
    pub kind: TokenKind,
    /// Line and column of the token's first character.
    pub pos: Pos,
    /// Byte offset of the token's first character in the source.
    pub offset: usize,
    /// The token's source text (for a `-D` substitution: the substituted value).
    pub text: String,
}

impl Token {
    /// A short description for error messages: `'foo'`, `end of file`, `a back-quoted command`.
    pub fn describe(&self) -> String {
        match &self.kind {
            TokenKind::Eof => "end of file".to_string(),
            TokenKind::Backquote(_) => "a back-quoted command".to_string(),
            TokenKind::Code(_) => "a %{ }% code block".to_string(),
            TokenKind::OptionLine { name, .. } => format!("option line '--{name}'"),
            _ => format!("'{}'", self.text),
        }
    }
}

/// A malformed token: `expected X, found Y` at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Where the problem is (for unterminated blocks: where the block starts).
    pub pos: Pos,
    /// What was expected.
    pub expected: String,
    /// What was there instead.
    pub found: String,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.pos, self.expected, self.found
        )
    }
}

impl std::error::Error for LexError {}

/// Characters allowed in a TCP flags word.
fn is_flag_char(c: char) -> bool {
    matches!(
        c,
        'S' | 'F' | 'R' | 'P' | '.' | 'U' | 'E' | 'W' | 'A' | '-' | '0'..='7'
    )
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn describe_char(c: Option<char>) -> String {
    match c {
        None => "end of file".to_string(),
        Some('\n') => "end of line".to_string(),
        Some(c) if c.is_control() => format!("character {:?}", c),
        Some(c) => format!("'{c}'"),
    }
}

/// Parses an integer the way the script language writes them: decimal or `0x` hex, optionally
/// negative. Used for `-D` values too.
pub fn parse_int(text: &str) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        i64::from_str_radix(hex, 16).ok()?
    } else {
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i64>().ok()?
    };
    if neg {
        value.checked_neg()
    } else {
        Some(value)
    }
}

/// A pull tokenizer over one script text.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    offset: usize,
    line: u32,
    col: u32,
}

impl<'a> Lexer<'a> {
    /// A lexer positioned at the start of `src`.
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            offset: 0,
            line: 1,
            col: 1,
        }
    }

    /// The position of the next unread character.
    pub fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    /// Moves back to the start of `tok` (a token this lexer returned), so it is read again.
    pub fn rewind(&mut self, tok: &Token) {
        self.offset = tok.offset;
        self.line = tok.pos.line;
        self.col = tok.pos.col;
    }

    fn rest(&self) -> &'a str {
        &self.src[self.offset..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, pos: Pos, expected: impl Into<String>, found: impl Into<String>) -> LexError {
        LexError {
            pos,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Skips whitespace and comments.
    pub fn skip_trivia(&mut self) -> Result<(), LexError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('/') if self.peek_at(1) == Some('/') => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some('/') if self.peek_at(1) == Some('*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        if self.rest().starts_with("*/") {
                            self.bump();
                            self.bump();
                            break;
                        }
                        if self.bump().is_none() {
                            return Err(self.err(start, "'*/' closing the comment", "end of file"));
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// True if everything on the current line before the next character is whitespace.
    fn at_line_start(&self) -> bool {
        let before = &self.src[..self.offset];
        let line = match before.rfind('\n') {
            Some(i) => &before[i + 1..],
            None => before,
        };
        line.chars().all(char::is_whitespace)
    }

    /// Reads the next ordinary token. Returns a [`TokenKind::Eof`] token at the end, repeatedly.
    pub fn next_token(&mut self) -> Result<Token, LexError> {
        self.skip_trivia()?;
        let pos = self.pos();
        let start = self.offset;
        let Some(c) = self.peek() else {
            return Ok(Token {
                kind: TokenKind::Eof,
                pos,
                offset: start,
                text: String::new(),
            });
        };
        let kind = match c {
            '`' => {
                self.bump();
                let body_start = self.offset;
                loop {
                    match self.bump() {
                        Some('`') => break,
                        Some(_) => {}
                        None => {
                            return Err(self.err(pos, "'`' closing the command", "end of file"));
                        }
                    }
                }
                TokenKind::Backquote(self.src[body_start..self.offset - 1].to_string())
            }
            '%' => {
                if self.peek_at(1) != Some('{') {
                    self.bump();
                    return Err(self.err(pos, "'%{' opening a code block", "'%'"));
                }
                self.bump();
                self.bump();
                let body_start = self.offset;
                loop {
                    if self.rest().starts_with("}%") {
                        let body = self.src[body_start..self.offset].to_string();
                        self.bump();
                        self.bump();
                        break TokenKind::Code(body);
                    }
                    if self.bump().is_none() {
                        return Err(self.err(pos, "'}%' closing the code block", "end of file"));
                    }
                }
            }
            '"' => {
                self.bump();
                let mut s = String::new();
                loop {
                    let here = self.pos();
                    match self.bump() {
                        Some('"') => break,
                        Some('\\') => {
                            let e = self.bump();
                            s.push(match e {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some('0') => '\0',
                                Some('\\') => '\\',
                                Some('"') => '"',
                                Some('\'') => '\'',
                                other => {
                                    return Err(self.err(
                                        here,
                                        "an escape (\\n, \\t, \\r, \\0, \\\\, \\\", \\')",
                                        format!("'\\' followed by {}", describe_char(other)),
                                    ));
                                }
                            });
                        }
                        end @ (Some('\n') | None) => {
                            return Err(self.err(
                                pos,
                                "'\"' closing the string",
                                describe_char(end),
                            ));
                        }
                        Some(ch) => s.push(ch),
                    }
                }
                TokenKind::Str(s)
            }
            '-' if self.peek_at(1) == Some('-') && self.at_line_start() => {
                self.bump();
                self.bump();
                let body_start = self.offset;
                while let Some(ch) = self.peek() {
                    if ch == '\n' {
                        break;
                    }
                    self.bump();
                }
                let mut body = &self.src[body_start..self.offset];
                if let Some(i) = body.find("//") {
                    if i == 0 || body[..i].ends_with(char::is_whitespace) {
                        body = &body[..i];
                    }
                }
                let body = body.trim_end();
                let (name, value) = match body.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (body, None),
                };
                if name.is_empty() || !name.chars().all(|ch| is_word_char(ch) || ch == '-') {
                    return Err(self.err(pos, "an option name after '--'", format!("'--{body}'")));
                }
                TokenKind::OptionLine {
                    name: name.to_string(),
                    value,
                }
            }
            '-' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                self.bump();
                return self.number(pos, start, true);
            }
            '.' if self.rest().starts_with("...") => {
                self.bump();
                self.bump();
                self.bump();
                TokenKind::Ellipsis
            }
            '.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                return self.number(pos, start, false);
            }
            c if c.is_ascii_digit() => return self.number(pos, start, false),
            c if c.is_ascii_alphabetic() || c == '_' => {
                while self.peek().is_some_and(is_word_char) {
                    self.bump();
                }
                TokenKind::Word(self.src[start..self.offset].to_string())
            }
            '[' | ']' | '{' | '}' | '(' | ')' | '<' | '>' | ':' | ',' | '|' | '=' | '~' | '*'
            | '+' | '.' | '-' => {
                self.bump();
                TokenKind::Punct(c)
            }
            other => {
                return Err(self.err(pos, "a token", describe_char(Some(other))));
            }
        };
        Ok(Token {
            kind,
            pos,
            offset: start,
            text: self.src[start..self.offset].to_string(),
        })
    }

    /// Lexes a number starting at the next character (after the `-` of a negative one).
    fn number(&mut self, pos: Pos, start: usize, negative: bool) -> Result<Token, LexError> {
        let digits_start = self.offset;
        while self.peek().is_some_and(is_word_char) {
            self.bump();
        }
        let mut is_float = false;
        if self.peek() == Some('.')
            && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())
            && self.src[digits_start..self.offset]
                .chars()
                .all(|c| c.is_ascii_digit())
        {
            is_float = true;
            self.bump();
            while self.peek().is_some_and(|d| d.is_ascii_digit()) {
                self.bump();
            }
        }
        let text = &self.src[start..self.offset];
        let kind = if is_float {
            if negative {
                return Err(self.err(pos, "an integer after '-'", format!("'{text}'")));
            }
            TokenKind::Float
        } else if let Some(v) = parse_int(text) {
            TokenKind::Int(v)
        } else if negative {
            return Err(self.err(pos, "an integer after '-'", format!("'{text}'")));
        } else if text.chars().all(|c| c.is_ascii_digit()) {
            return Err(self.err(pos, "an integer that fits in 64 bits", format!("'{text}'")));
        } else {
            TokenKind::Word(text.to_string())
        };
        Ok(Token {
            kind,
            pos,
            offset: start,
            text: text.to_string(),
        })
    }

    /// Reads a TCP flags word raw (`S`, `S.`, `.`, `FP.`, `SEW`, `-`, AccECN digits 0–7), skipping
    /// whitespace and comments before it. Returns `None`, consuming nothing but trivia, if the
    /// next characters are not a flags word followed by whitespace or the end.
    pub fn read_flags(&mut self) -> Result<Option<(Pos, String)>, LexError> {
        self.skip_trivia()?;
        let run: String = self
            .rest()
            .chars()
            .take_while(|&c| is_flag_char(c))
            .collect();
        let after = self.rest()[run.len()..].chars().next();
        let ends_ok = after.is_none_or(|c| c.is_whitespace() || c == '/' || c == '<');
        let valid = !run.is_empty()
            && ends_ok
            && !run.contains("..")
            && !run.chars().all(|c| c.is_ascii_digit());
        if !valid {
            return Ok(None);
        }
        let pos = self.pos();
        for _ in 0..run.chars().count() {
            self.bump();
        }
        Ok(Some((pos, run)))
    }

    /// Reads the free text of a note after its opening `(` has been consumed, up to the matching
    /// `)` (nested parentheses allowed), and returns the text between them, trimmed.
    pub fn read_note(&mut self, open: Pos) -> Result<String, LexError> {
        let start = self.offset;
        let mut depth = 0u32;
        loop {
            match self.bump() {
                Some('(') => depth += 1,
                Some(')') if depth == 0 => {
                    return Ok(self.src[start..self.offset - 1].trim().to_string());
                }
                Some(')') => depth -= 1,
                Some(_) => {}
                None => return Err(self.err(open, "')' closing the note", "end of file")),
            }
        }
    }
}

/// Lexes all of `src` in ordinary mode (no raw flags or notes), ending with one
/// [`TokenKind::Eof`] token.
pub fn tokenize(src: &str) -> Result<Vec<Token>, LexError> {
    let mut lexer = Lexer::new(src);
    let mut out = Vec::new();
    loop {
        let tok = lexer.next_token()?;
        let done = tok.kind == TokenKind::Eof;
        out.push(tok);
        if done {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        tokenize(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn w(s: &str) -> TokenKind {
        TokenKind::Word(s.to_string())
    }

    #[test]
    fn numbers_and_ellipsis() {
        use TokenKind::*;
        assert_eq!(
            kinds("+0...0.200 +.1...0.2 +0 ... .02 -1 0x2 1234abcd"),
            vec![
                Punct('+'),
                Int(0),
                Ellipsis,
                Float,
                Punct('+'),
                Float,
                Ellipsis,
                Float,
                Punct('+'),
                Int(0),
                Ellipsis,
                Float,
                Int(-1),
                Int(2),
                w("1234abcd"),
                Eof
            ]
        );
        let toks = tokenize("1:1461(1460)").unwrap();
        assert_eq!(toks[2].kind, Int(1461));
        assert_eq!(toks[2].pos, Pos { line: 1, col: 3 });
    }

    #[test]
    fn comments_blocks_and_positions() {
        let toks = tokenize("// c\n /* a\nb */ `x\ny` %{ a }%\n--tol=5 // c\n\"s\\n\"").unwrap();
        assert_eq!(toks[0].kind, TokenKind::Backquote("x\ny".into()));
        assert_eq!(toks[0].pos, Pos { line: 3, col: 6 });
        assert_eq!(toks[1].kind, TokenKind::Code(" a ".into()));
        assert_eq!(
            toks[2].kind,
            TokenKind::OptionLine {
                name: "tol".into(),
                value: Some("5".into())
            }
        );
        assert_eq!(toks[3].kind, TokenKind::Str("s\n".into()));
    }

    #[test]
    fn errors() {
        let e = tokenize("\n  `abc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "2:3: expected '`' closing the command, found end of file"
        );
        let e = tokenize("a $").unwrap_err();
        assert_eq!(e.to_string(), "1:3: expected a token, found '$'");
        let e = tokenize("/* x").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, col: 1 });
    }

    #[test]
    fn flags_raw() {
        let mut l = Lexer::new("  S. 0:0(0)");
        assert_eq!(
            l.read_flags().unwrap(),
            Some((Pos { line: 1, col: 3 }, "S.".to_string()))
        );
        let mut l = Lexer::new(" icmp");
        assert_eq!(l.read_flags().unwrap(), None);
        let mut l = Lexer::new(" 1:1(0)");
        assert_eq!(l.read_flags().unwrap(), None);
    }
}
