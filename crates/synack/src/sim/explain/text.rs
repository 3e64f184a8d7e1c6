//! Words: filling a sentence's `{placeholders}` from the line it explains. The two languages
//! are [`Lang`] (shared with the pictures); paragraphs are wrapped by
//! [`columns`](crate::trace::columns) (Chinese characters take two columns and may break
//! anywhere).

pub(crate) use crate::trace::columns::{width, wrap};
pub use crate::trace::lang::Lang;

/// The number after `key` (e.g. `"Seq="`) on a rendered line.
pub(crate) fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(key)? + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Replaces each `{name}` in `template` with `value(name)`; a name without a value stays as
/// written (tests look for leftovers).
pub(crate) fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_placeholders() {
        let line = "0.010000 server → client 80 → 40000 [SYN, ACK] Seq=0 Ack=1 Win=65535 Len=0";
        assert_eq!(field(line, "Ack="), Some(1));
        assert_eq!(field(line, "Win="), Some(65535));
        assert_eq!(field(line, "MSS="), None);
        let s = fill("Ack={ack}, {missing}", |n| (n == "ack").then(|| "1".into()));
        assert_eq!(s, "Ack=1, {missing}");
    }
}
