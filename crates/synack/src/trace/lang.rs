//! The languages synack writes in for people: English and Chinese.

use core::fmt;
use core::str::FromStr;

/// The language of the words written for people: `synack explain`'s explanations and the
/// words of a ladder diagram. The protocol notation is the same in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Chinese (simplified).
    Zh,
}

impl Lang {
    /// Both languages, English first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// `"en"` or `"zh"`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// `en` or `zh`, whichever this language is.
    pub fn pick(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Lang {
    type Err = String;
    /// `en` or `zh` (also `zh-CN`, `zh_CN`, `cn`), any case.
    fn from_str(s: &str) -> Result<Lang, String> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "english" => Ok(Lang::En),
            "zh" | "zh-cn" | "zh_cn" | "cn" | "chinese" => Ok(Lang::Zh),
            _ => Err(format!("unknown language {s:?}: expected en or zh")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse() {
        assert_eq!("en".parse::<Lang>(), Ok(Lang::En));
        assert_eq!("ZH".parse::<Lang>(), Ok(Lang::Zh));
        assert_eq!("zh-CN".parse::<Lang>(), Ok(Lang::Zh));
        assert!("fr".parse::<Lang>().unwrap_err().contains("en or zh"));
    }
}
