//! Hex text to bytes, forgiving about the layout people paste: whitespace (including newlines),
//! `:` and `,` separate nothing and are skipped, and a `0x`/`0X` at the start of a group is
//! dropped, so `45 00 00 3c`, `45:00:00:3c`, `0x45, 0x00` and `4500003c` all read the same.

use std::fmt;

/// Why a text is not hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A character that is not a hex digit or a separator, and its byte offset in the text.
    BadChar { ch: char, offset: usize },
    /// An odd number of digits: the last byte is missing half.
    OddDigits(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadChar { ch, offset } => {
                write!(f, "{ch:?} at offset {offset} is not a hex digit")
            }
            Error::OddDigits(n) => write!(f, "odd number of hex digits ({n}): a byte needs two"),
        }
    }
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == ':' || c == ','
}

/// Parses `text` as a sequence of bytes written in hex.
pub fn parse(text: &str) -> Result<Vec<u8>, Error> {
    let mut nibbles = Vec::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    let mut group_start = true;
    while let Some((offset, ch)) = chars.next() {
        if is_separator(ch) {
            group_start = true;
            continue;
        }
        if group_start && ch == '0' && matches!(chars.peek(), Some((_, 'x' | 'X'))) {
            chars.next();
            group_start = false;
            continue;
        }
        group_start = false;
        let digit = ch.to_digit(16).ok_or(Error::BadChar { ch, offset })?;
        nibbles.push(digit as u8);
    }
    if nibbles.len() % 2 != 0 {
        return Err(Error::OddDigits(nibbles.len()));
    }
    Ok(nibbles
        .chunks_exact(2)
        .map(|p| (p[0] << 4) | p[1])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_layout_gives_the_same_bytes() {
        let want = vec![0x45, 0x00, 0x00, 0x3c, 0xab];
        for text in [
            "4500003cab",
            "45 00 00 3c ab",
            "45:00:00:3c:ab",
            "0x45, 0x00, 0x00, 0x3c, 0xAB",
            "0x4500003cab",
            "4500\n003c\tAB\n",
            "  45 00:00, 0X3c ab  ",
        ] {
            assert_eq!(parse(text), Ok(want.clone()), "{text:?}");
        }
    }

    #[test]
    fn empty_and_separator_only_text_is_no_bytes() {
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(parse(" :\n, "), Ok(vec![]));
    }

    #[test]
    fn bad_characters_are_named_with_their_offset() {
        assert_eq!(parse("45 0g"), Err(Error::BadChar { ch: 'g', offset: 4 }));
        // `0x` is a prefix only at the start of a group.
        assert_eq!(parse("450x00"), Err(Error::BadChar { ch: 'x', offset: 3 }));
        assert_eq!(parse("45 0xx0"), Err(Error::BadChar { ch: 'x', offset: 5 }));
        assert_eq!(
            Error::BadChar { ch: 'g', offset: 4 }.to_string(),
            "'g' at offset 4 is not a hex digit"
        );
    }

    #[test]
    fn an_odd_digit_count_is_rejected() {
        assert_eq!(parse("450"), Err(Error::OddDigits(3)));
        assert_eq!(parse("0x4 0x5 0x6"), Err(Error::OddDigits(3)));
    }
}
