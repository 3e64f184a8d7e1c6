//! A sender's congestion state over time, as CSV: what `synack sim --samples 100ms
//! --samples-out FILE.csv` writes and `synack plot --kind cwnd|rtt FILE.csv` draws.
//!
//! One header line, then one row per sample, comma-separated, no quoting (no field contains a
//! comma):
//!
//! ```text
//! time_s,cwnd,ssthresh,srtt_ms,rttvar_ms,rto_ms,pipe,in_flight,lost,retransmits,ca_state,mss
//! 0.100000,14480,,20.312,5.078,221.000,14480,14480,0,0,Open,1448
//! ```
//!
//! `time_s` is seconds since the connection started; `cwnd`, `ssthresh`, `pipe` (RFC 6675) and
//! `in_flight` (SND.NXT − SND.UNA) are bytes; `ssthresh` is empty until the first congestion
//! event and `srtt_ms` before the first RTT sample; `lost` and `retransmits` count segments
//! (lost now, retransmitted in total); `ca_state` is Linux's name without `TCP_CA_`.
//!
//! ```
//! use synack::trace::samples::{Sample, from_csv, to_csv};
//! let s = Sample { time_s: 0.1, cwnd: 14480, ssthresh: None, srtt_ms: Some(20.5),
//!     rttvar_ms: 5.0, rto_ms: 221.0, pipe: 14480, in_flight: 14480, lost: 0,
//!     retransmits: 0, ca_state: "Open".into(), mss: 1448 };
//! let text = to_csv(std::slice::from_ref(&s));
//! assert_eq!(from_csv(&text).unwrap(), vec![s]);
//! ```

use core::fmt;
use std::fmt::Write as _;

use crate::tcp::connection::Info;
use crate::time::Duration;

/// The header line of the CSV.
pub const HEADER: &str =
    "time_s,cwnd,ssthresh,srtt_ms,rttvar_ms,rto_ms,pipe,in_flight,lost,retransmits,ca_state,mss";

/// One row.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub time_s: f64,
    pub cwnd: u32,
    pub ssthresh: Option<u32>,
    pub srtt_ms: Option<f64>,
    pub rttvar_ms: f64,
    pub rto_ms: f64,
    pub pipe: u32,
    pub in_flight: u32,
    pub lost: u32,
    pub retransmits: u64,
    pub ca_state: String,
    pub mss: u32,
}

impl Sample {
    /// The sample of a connection's statistics at `time` since it started.
    pub fn from_info(time: Duration, i: &Info) -> Sample {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Sample {
            time_s: time.as_secs_f64(),
            cwnd: i.cwnd,
            ssthresh: (i.ssthresh != u32::MAX).then_some(i.ssthresh),
            srtt_ms: i.srtt.map(ms),
            rttvar_ms: ms(i.rttvar),
            rto_ms: ms(i.rto),
            pipe: i.pipe,
            in_flight: i.bytes_in_flight,
            lost: i.lost,
            retransmits: i.retransmits,
            ca_state: i.ca_state.name().to_string(),
            mss: i.snd_mss,
        }
    }
}

/// The CSV text of `samples`, header first, each line newline-terminated.
pub fn to_csv(samples: &[Sample]) -> String {
    let mut s = String::with_capacity(64 * (samples.len() + 1));
    s.push_str(HEADER);
    s.push('\n');
    for x in samples {
        let _ = writeln!(
            s,
            "{:.6},{},{},{},{:.3},{:.3},{},{},{},{},{},{}",
            x.time_s,
            x.cwnd,
            x.ssthresh.map_or(String::new(), |v| v.to_string()),
            x.srtt_ms.map_or(String::new(), |v| format!("{v:.3}")),
            x.rttvar_ms,
            x.rto_ms,
            x.pipe,
            x.in_flight,
            x.lost,
            x.retransmits,
            x.ca_state,
            x.mss
        );
    }
    s
}

/// Why a samples file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvError {
    /// The first line is not [`HEADER`].
    Header,
    /// Line `line` (1-based) has a bad or missing `field`.
    Field { line: usize, field: &'static str },
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::Header => write!(
                f,
                "not a samples file: the first line must be {HEADER:?} (synack sim --samples-out)"
            ),
            CsvError::Field { line, field } => write!(f, "line {line}: bad {field}"),
        }
    }
}

impl std::error::Error for CsvError {}

/// Reads what [`to_csv`] writes (blank lines are skipped).
pub fn from_csv(text: &str) -> Result<Vec<Sample>, CsvError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim_end() == HEADER => {}
        _ => return Err(CsvError::Header),
    }
    const NAMES: [&str; 12] = [
        "time_s",
        "cwnd",
        "ssthresh",
        "srtt_ms",
        "rttvar_ms",
        "rto_ms",
        "pipe",
        "in_flight",
        "lost",
        "retransmits",
        "ca_state",
        "mss",
    ];
    let mut out = Vec::new();
    for (n, line) in lines {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let bad = |k: usize| CsvError::Field {
            line: n + 1,
            field: NAMES[k.min(NAMES.len() - 1)],
        };
        if f.len() != NAMES.len() {
            return Err(bad(f.len().min(NAMES.len() - 1)));
        }
        fn num<T: std::str::FromStr>(s: &str, e: CsvError) -> Result<T, CsvError> {
            s.parse().map_err(|_| e)
        }
        let opt =
            |k: usize| -> Result<Option<&str>, CsvError> { Ok((!f[k].is_empty()).then_some(f[k])) };
        let time_s: f64 = num(f[0], bad(0))?;
        if !time_s.is_finite() {
            return Err(bad(0));
        }
        out.push(Sample {
            time_s,
            cwnd: num(f[1], bad(1))?,
            ssthresh: opt(2)?.map(|v| num(v, bad(2))).transpose()?,
            srtt_ms: opt(3)?.map(|v| num(v, bad(3))).transpose()?,
            rttvar_ms: num(f[4], bad(4))?,
            rto_ms: num(f[5], bad(5))?,
            pipe: num(f[6], bad(6))?,
            in_flight: num(f[7], bad(7))?,
            lost: num(f[8], bad(8))?,
            retransmits: num(f[9], bad(9))?,
            ca_state: f[10].to_string(),
            mss: num(f[11], bad(11))?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_to_csv_and_back() {
        let info = Info {
            cwnd: 28960,
            ssthresh: u32::MAX,
            srtt: Some(Duration::from_micros(20_250)),
            rttvar: Duration::from_millis(5),
            rto: Duration::from_millis(221),
            pipe: 14480,
            bytes_in_flight: 20000,
            lost: 2,
            retransmits: 3,
            snd_mss: 1448,
            ..Info::default()
        };
        let s = Sample::from_info(Duration::from_millis(100), &info);
        let text = to_csv(std::slice::from_ref(&s));
        assert_eq!(
            text,
            format!("{HEADER}\n0.100000,28960,,20.250,5.000,221.000,14480,20000,2,3,Open,1448\n")
        );
        assert_eq!(from_csv(&text).unwrap(), [s]);
    }

    #[test]
    fn bad_files_say_where() {
        assert_eq!(from_csv(""), Err(CsvError::Header));
        assert_eq!(from_csv("a,b\n1,2"), Err(CsvError::Header));
        let bad = format!("{HEADER}\n0.1,x,,1,1,1,1,1,1,1,Open,1448\n");
        assert_eq!(from_csv(&bad).unwrap_err().to_string(), "line 2: bad cwnd");
        let short = format!("{HEADER}\n\n0.1,1\n");
        assert!(matches!(
            from_csv(&short),
            Err(CsvError::Field { line: 3, .. })
        ));
        let nan = format!("{HEADER}\nNaN,1,,1,1,1,1,1,1,1,Open,1448\n");
        assert_eq!(
            from_csv(&nan),
            Err(CsvError::Field {
                line: 2,
                field: "time_s"
            })
        );
    }
}
