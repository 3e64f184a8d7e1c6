//! How many columns text takes in a terminal or a monospace picture, and wrapping it: CJK
//! characters take two columns, and a line may break between two of them, but never before
//! closing punctuation or after opening punctuation. Used by the text of `synack explain` and
//! by the ladder diagrams (whose labels and captions may be Chinese).

/// Columns a character takes in a terminal: two for CJK ideographs, kana, hangul and
/// full-width forms (Chinese punctuation included), one otherwise.
pub(crate) fn char_width(c: char) -> usize {
    let wide = matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6);
    if wide { 2 } else { 1 }
}

/// Columns a string takes.
pub(crate) fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Punctuation that must not start a line (it stays with what precedes it).
fn no_break_before(c: char) -> bool {
    "，。、；：？！）】」』”’,.;:?!)]".contains(c)
}

/// Punctuation that must not end a line (it stays with what follows it).
fn no_break_after(c: char) -> bool {
    "（【「『“‘".contains(c)
}

/// Splits `text` into pieces a line may break between: words (with the one space that
/// follows them) and single wide characters (with the punctuation around them).
fn pieces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let last = word.chars().last();
        let glued = last.is_some_and(no_break_after) || no_break_before(c);
        if c == ' ' {
            word.push(c);
            out.push(core::mem::take(&mut word));
        } else if char_width(c) == 2 || last.is_some_and(|l| char_width(l) == 2) {
            // A wide character, or a narrow one after a wide one: a new piece, unless
            // punctuation holds the two together.
            if !word.is_empty() && !glued {
                out.push(core::mem::take(&mut word));
            }
            word.push(c);
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Wraps `text` to `cols` columns; every line starts with `indent`.
pub(crate) fn wrap(text: &str, cols: usize, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::from(indent);
    let base = width(indent);
    let mut used = base;
    for p in pieces(text) {
        let w = width(p.trim_end());
        if used > base && used + w > cols {
            lines.push(line.trim_end().to_string());
            line = String::from(indent);
            used = base;
        }
        line.push_str(&p);
        used += width(&p);
    }
    if used > base {
        lines.push(line.trim_end().to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_wraps_at_spaces() {
        let lines = wrap("the quick brown fox jumps over the lazy dog", 16, "  ");
        assert_eq!(
            lines,
            [
                "  the quick",
                "  brown fox",
                "  jumps over the",
                "  lazy dog"
            ]
        );
        assert!(lines.iter().all(|l| width(l) <= 16));
    }

    #[test]
    fn chinese_wraps_between_characters_never_before_punctuation() {
        let lines = wrap("服务器收到旧的重复SYN，回复SYN-ACK。", 12, "");
        assert_eq!(lines.concat(), "服务器收到旧的重复SYN，回复SYN-ACK。");
        assert!(lines.iter().all(|l| width(l) <= 12), "{lines:?}");
        assert!(
            lines
                .iter()
                .all(|l| !l.starts_with('，') && !l.starts_with('。'))
        );
        assert_eq!(width("三次握手"), 8);
        let lines = wrap("从中重建连接（MSS、窗口缩放）", 14, "");
        assert!(lines.iter().all(|l| !l.ends_with('（')), "{lines:?}");
        assert_eq!(lines.concat(), "从中重建连接（MSS、窗口缩放）");
    }
}
