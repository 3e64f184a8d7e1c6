//! Quantities as people write them on a command line: sizes (`1MiB`, `64k`), durations (`20ms`,
//! `1.5s`), fractions (`1%`, `0.01`) and rates (`100mbit`), and the same rendered back
//! (`1.0 MiB`, `12.3 Mbit/s`). Shared by the `synack` command and `synack-bench`, so a flag
//! means the same in both. Errors are one line that names the value and says what would do.
//!
//! ```
//! use synack::units;
//! assert_eq!(units::size("1GiB"), Ok(1 << 30));
//! assert_eq!(units::duration("1.5s"), Ok(std::time::Duration::from_millis(1500)));
//! assert_eq!(units::duration("-5ms"), Err("a duration cannot be negative: \"-5ms\"".into()));
//! assert_eq!(units::human_bytes(3 << 20), "3.0 MiB");
//! ```

use std::time::Duration;

/// Splits `"1.5 MiB"` into `(1.5, "MiB")`; errors name `s`, the value as given, with `what`
/// it should be and a `hint`.
fn number_and_unit<'a>(
    t: &'a str,
    s: &str,
    what: &str,
    hint: &str,
) -> Result<(f64, &'a str), String> {
    let t = t.trim();
    if t.starts_with('-') {
        return Err(format!("a {what} cannot be negative: {s:?}"));
    }
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n = num
        .parse()
        .map_err(|_| format!("not a {what}: {s:?} (try {hint})"))?;
    Ok((n, unit.trim()))
}

/// `1048576`, `64k`/`64KiB`, `1M`/`1MiB`, `10MB` (decimal), `1G`/`1GiB`.
pub fn size(s: &str) -> Result<u64, String> {
    let (n, unit) = number_and_unit(s, s, "size", "1MiB, 64KiB, 100000")?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        _ => {
            return Err(format!(
                "unknown size unit in {s:?} (use KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    let v = n * mult;
    if !v.is_finite() || !(0.0..=1e15).contains(&v) {
        return Err(format!("size out of range: {s:?}"));
    }
    Ok(v as u64)
}

/// `20ms`, `1.5s`, `250us`, `2m`; a bare number is milliseconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(s, s, "duration", "20ms, 1s")?;
    let secs = match unit {
        "" | "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "s" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("unknown duration unit in {s:?} (use us, ms, s, m)")),
    };
    if !secs.is_finite() || !(0.0..=86400.0).contains(&secs) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `1%` or `0.01`: a probability in [0, 1].
pub fn fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(format!("a probability cannot be negative: {s:?}"));
    }
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("not a probability: {s:?} (try 1% or 0.01)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("probability out of range [0, 1]: {s:?}"));
    }
    Ok(v)
}

/// `100mbit`, `1gbit`, `10M` (bits per second).
pub fn rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("bit")
        .or_else(|| t.strip_suffix("bps"))
        .unwrap_or(&t);
    let (n, unit) = number_and_unit(t, s, "rate", "100mbit")?;
    let mult = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        _ => return Err(format!("unknown rate unit in {s:?} (use kbit, mbit, gbit)")),
    };
    let v = n * mult;
    if !v.is_finite() || v < 1.0 {
        return Err(format!("rate out of range: {s:?}"));
    }
    Ok(v as u64)
}

/// `1.5 MiB`-style rendering of a byte count.
pub fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// `12.3 Mbit/s`.
pub fn human_rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} Gbit/s", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.1} Mbit/s", bps / 1e6)
    } else {
        format!("{:.1} kbit/s", bps / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("64k"), Ok(65536));
        assert_eq!(size("10MB"), Ok(10_000_000));
        assert_eq!(size("123"), Ok(123));
        assert_eq!(size(" 2 MiB "), Ok(2 << 20));
        assert!(size("1XB").is_err());
        assert_eq!(duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("7"), Ok(Duration::from_millis(7)));
        assert_eq!(
            duration("-1s"),
            Err("a duration cannot be negative: \"-1s\"".into())
        );
        assert_eq!(
            size("-5KiB"),
            Err("a size cannot be negative: \"-5KiB\"".into())
        );
        assert_eq!(
            fraction("-1%"),
            Err("a probability cannot be negative: \"-1%\"".into())
        );
        assert_eq!(
            rate("-1mbit"),
            Err("a rate cannot be negative: \"-1mbit\"".into())
        );
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(fraction("1%"), Ok(0.01));
        assert_eq!(fraction("0.2"), Ok(0.2));
        assert!(fraction("120%").is_err());
        assert_eq!(rate("100mbit"), Ok(100_000_000));
        assert_eq!(human_bytes(1 << 20), "1.0 MiB");
        assert_eq!(human_rate(12.3e6), "12.3 Mbit/s");
    }
}
