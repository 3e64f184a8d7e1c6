//! A checked-in list of scripts whose result is known to differ between synack and Linux, one
//! per line as `path: what differs`, the path relative to the list's directory, `#` starting a
//! comment. `tests/packetdrill/known-divergences.txt` names the scripts Linux passes and synack
//! does not yet; the test of our suite and `synack oracle` hold the list to it both ways.

use std::path::{Path, PathBuf};

/// The entries of one list file.
#[derive(Debug, Clone, Default)]
pub struct Divergences {
    /// The directory paths are relative to.
    pub dir: PathBuf,
    /// (path as written, reason), in file order.
    pub entries: Vec<(String, String)>,
}

impl Divergences {
    /// Reads and checks a list: every entry needs a reason and must name an existing file,
    /// once.
    pub fn load(path: &Path) -> Result<Divergences, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Divergences::parse(&text, &dir).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the text of a list whose paths are relative to `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Divergences, String> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split_once('#').map_or(raw, |(a, _)| a).trim();
            if line.is_empty() {
                continue;
            }
            let Some((p, why)) = line.split_once(": ") else {
                return Err(format!(
                    "line {}: expected `script.pkt: what differs`",
                    i + 1
                ));
            };
            let (p, why) = (p.trim(), why.trim());
            if why.is_empty() {
                return Err(format!("line {}: {p} has no reason", i + 1));
            }
            if !dir.join(p).is_file() {
                return Err(format!("line {}: {p} does not exist", i + 1));
            }
            if entries.iter().any(|(q, _)| q == p) {
                return Err(format!("line {}: {p} is listed twice", i + 1));
            }
            entries.push((p.to_string(), why.to_string()));
        }
        Ok(Divergences {
            dir: dir.to_path_buf(),
            entries,
        })
    }

    /// The reason given for `script`, if it is listed.
    pub fn reason(&self, script: &Path) -> Option<&str> {
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        let want = canon(script)?;
        self.entries
            .iter()
            .find(|(p, _)| canon(&self.dir.join(p)).as_ref() == Some(&want))
            .map(|(_, why)| why.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_reasons_and_errors() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let d = Divergences::parse(
            "# comment\n\nCargo.toml: differs somehow  # trailing\n",
            dir,
        )
        .unwrap();
        assert_eq!(
            d.entries,
            vec![("Cargo.toml".to_string(), "differs somehow".to_string())]
        );
        assert_eq!(d.reason(&dir.join("Cargo.toml")), Some("differs somehow"));
        assert_eq!(d.reason(&dir.join("src/lib.rs")), None);
        let e = Divergences::parse("Cargo.toml\n", dir).unwrap_err();
        assert!(e.contains("line 1: expected"), "{e}");
        let e = Divergences::parse("nope.pkt: x\n", dir).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = Divergences::parse("Cargo.toml: a\nCargo.toml: b\n", dir).unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
    }
}
