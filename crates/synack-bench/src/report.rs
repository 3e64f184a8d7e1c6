//! The markdown table and the JSON files.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One line of the table: a figure measured for up to three stacks.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub unit: &'static str,
    /// True when a larger value is better (Gbps, cycles/s); false for times and bytes.
    pub higher_is_better: bool,
    pub synack: Option<f64>,
    pub smoltcp: Option<f64>,
    pub kernel: Option<f64>,
    pub samples: [Vec<f64>; 3],
    pub note: String,
}

impl Row {
    fn new(
        figure: &str,
        unit: &'static str,
        higher: bool,
        s: Option<f64>,
        m: Option<f64>,
        k: Option<f64>,
    ) -> Row {
        Row {
            figure: figure.to_string(),
            unit,
            higher_is_better: higher,
            synack: s,
            smoltcp: m,
            kernel: k,
            samples: Default::default(),
            note: String::new(),
        }
    }

    pub fn higher(
        figure: &str,
        unit: &'static str,
        s: Option<f64>,
        m: Option<f64>,
        k: Option<f64>,
    ) -> Row {
        Row::new(figure, unit, true, s, m, k)
    }

    pub fn lower(
        figure: &str,
        unit: &'static str,
        s: Option<f64>,
        m: Option<f64>,
        k: Option<f64>,
    ) -> Row {
        Row::new(figure, unit, false, s, m, k)
    }

    pub fn samples(mut self, s: &[f64], m: &[f64], k: &[f64]) -> Row {
        self.samples = [s.to_vec(), m.to_vec(), k.to_vec()];
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    /// How many times better synack is than `peer` (> 1: synack better), whichever way the
    /// figure runs.
    pub fn ratio(&self, peer: Option<f64>) -> Option<f64> {
        let (s, p) = (self.synack?, peer?);
        if s <= 0.0 || p <= 0.0 {
            return None;
        }
        Some(if self.higher_is_better { s / p } else { p / s })
    }
}

pub fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

/// Nearest-rank percentile (`p` in 0..=100) of the values.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 {
        // Thousands separators for large counts.
        let s = format!("{:.0}", v);
        let (sign, digits) = s.split_at(if v < 0.0 { 1 } else { 0 });
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or("—".into(), num)
}

fn ratio_cell(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.2}×"))
}

/// The markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    t.push_str(
        "| figure | unit | synack | smoltcp | kernel | synack vs smoltcp | synack vs kernel |\n",
    );
    t.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.figure,
            r.unit,
            cell(r.synack),
            cell(r.smoltcp),
            cell(r.kernel),
            ratio_cell(r.ratio(r.smoltcp)),
            ratio_cell(r.ratio(r.kernel)),
        );
    }
    t
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".into(),
    }
}

fn json_list(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|&x| json_num(Some(x))).collect();
    format!("[{}]", items.join(", "))
}

/// The JSON document for one figure: what was measured, then the rows.
pub fn json(figure: &str, notes: &[String], rows: &[Row]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{{\n  \"figure\": {},", json_str(figure));
    let notes: Vec<String> = notes.iter().map(|n| json_str(n)).collect();
    let _ = writeln!(o, "  \"notes\": [{}],", notes.join(", "));
    o.push_str("  \"rows\": [\n");
    for (i, r) in rows.iter().enumerate() {
        let _ = write!(
            o,
            "    {{\"figure\": {}, \"unit\": {}, \"higher_is_better\": {}, \"synack\": {}, \"smoltcp\": {}, \"kernel\": {}, \"synack_vs_smoltcp\": {}, \"synack_vs_kernel\": {}, \"samples\": {{\"synack\": {}, \"smoltcp\": {}, \"kernel\": {}}}, \"note\": {}}}",
            json_str(&r.figure),
            json_str(r.unit),
            r.higher_is_better,
            json_num(r.synack),
            json_num(r.smoltcp),
            json_num(r.kernel),
            json_num(r.ratio(r.smoltcp)),
            json_num(r.ratio(r.kernel)),
            json_list(&r.samples[0]),
            json_list(&r.samples[1]),
            json_list(&r.samples[2]),
            json_str(&r.note),
        );
        o.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    o.push_str("  ]\n}\n");
    o
}

/// `target/bench/` of the workspace (or of `CARGO_TARGET_DIR`).
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("bench");
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median(&v), 3.0);
        assert_eq!(percentile(&v, 99.0), 5.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 99.0), 99.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ratios_point_at_synack_being_better() {
        let r = Row::higher("x", "Gbps", Some(30.0), Some(20.0), None);
        assert_eq!(r.ratio(r.smoltcp), Some(1.5));
        assert_eq!(r.ratio(r.kernel), None);
        let r = Row::lower("rtt", "µs", Some(2.0), Some(4.0), Some(20.0));
        assert_eq!(r.ratio(r.smoltcp), Some(2.0));
        assert_eq!(r.ratio(r.kernel), Some(10.0));
    }

    #[test]
    fn table_and_json_carry_the_values() {
        let rows = vec![
            Row::higher("cps", "cycles/s", Some(1234567.0), None, Some(19000.0))
                .samples(&[1.0], &[], &[2.0])
                .note("say \"how\""),
        ];
        let t = table(&rows);
        assert!(
            t.contains("| cps | cycles/s | 1,234,567 | — | 19,000 | — | 64.98× |"),
            "{t}"
        );
        let j = json("cps", &["n".into()], &rows);
        assert!(j.contains("\"synack\": 1234567"), "{j}");
        assert!(j.contains("\"smoltcp\": null"), "{j}");
        assert!(j.contains("say \\\"how\\\""), "{j}");
    }
}
