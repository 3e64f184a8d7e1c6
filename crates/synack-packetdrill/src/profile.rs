//! The Linux-compatible profile the runner uses: [`Config::linux`] plus the sysctls a script
//! sets (defaults.sh, `sysctl -q`, set_sysctls.py), each mapped onto a [`Config`] field.

use synack::tcp::Config;

/// The settings a script starts from, before its init command.
pub fn linux() -> Config {
    Config::linux()
}

/// The sysctls Linux reads each time it needs them, so that changing one affects the
/// connections that already exist (the others are copied into a socket when it is created,
/// like the buffer sizes, or settled by the handshake, like the options).
pub const LIVE_SYSCTLS: &[&str] = &[
    "tcp_retries2",
    "tcp_syn_retries",
    "tcp_synack_retries",
    "tcp_syn_linear_timeouts",
    "tcp_fin_timeout",
    "tcp_slow_start_after_idle",
    "tcp_dsack",
    "tcp_rfc1337",
    "tcp_min_tso_segs",
    "tcp_pacing_ss_ratio",
    "tcp_pacing_ca_ratio",
    "tcp_invalid_ratelimit",
    "tcp_fastopen",
    "tcp_fastopen_key",
];

/// What a sysctl did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Set,
    /// Accepted, but synack has no such mechanism (yet); the text says what it means.
    NoEffect(&'static str),
}

/// Applies `net.ipv4.<name> = value`. Unknown names and malformed values are errors.
pub fn apply_sysctl(cfg: &mut Config, name: &str, value: &str) -> Result<Applied, String> {
    let int = || -> Result<u64, String> {
        let v = value.trim();
        let parsed = match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse(),
        };
        parsed.map_err(|_| format!("sysctl {name}: expected a number, got {value:?}"))
    };
    let triple = || -> Result<[usize; 3], String> {
        let v: Vec<usize> = value
            .split_whitespace()
            .map(|x| {
                x.parse()
                    .map_err(|_| format!("sysctl {name}: bad value {value:?}"))
            })
            .collect::<Result<_, _>>()?;
        v.try_into()
            .map_err(|_| format!("sysctl {name}: expected three numbers, got {value:?}"))
    };
    match name {
        "tcp_rmem" => {
            let [_, def, max] = triple()?;
            cfg.recv_buffer = def;
            cfg.recv_buffer_max = max;
        }
        "tcp_wmem" => {
            let [_, def, _] = triple()?;
            cfg.send_buffer = def;
        }
        "tcp_timestamps" => cfg.timestamps = int()? != 0,
        "tcp_sack" => cfg.sack = int()? != 0,
        "tcp_window_scaling" => cfg.window_scaling = int()? != 0,
        "tcp_syn_retries" => cfg.syn_retries = int()?.clamp(1, 127) as u32,
        "tcp_syn_linear_timeouts" => cfg.syn_linear_timeouts = int()?.min(127) as u32,
        "tcp_synack_retries" => cfg.synack_retries = int()?.min(255) as u32,
        "tcp_retries2" => cfg.max_retries = int()?.min(255) as u32,
        "tcp_slow_start_after_idle" => cfg.slow_start_after_idle = int()? != 0,
        "tcp_fin_timeout" => cfg.fin_wait2_timeout = synack::time::Duration::from_secs(int()?),
        "tcp_keepalive_time" => cfg.keepalive.idle = synack::time::Duration::from_secs(int()?),
        "tcp_keepalive_intvl" => cfg.keepalive.interval = synack::time::Duration::from_secs(int()?),
        "tcp_keepalive_probes" => cfg.keepalive.count = int()? as u32,
        "tcp_congestion_control" => {
            cfg.congestion = value.parse().map_err(|e| format!("sysctl {name}: {e}"))?;
        }
        "tcp_reordering" => {
            if int()? != 3 {
                return Ok(Applied::NoEffect(
                    "the duplicate-ACK threshold is fixed at 3",
                ));
            }
        }
        "tcp_ecn" => {
            let v = int()?;
            if v > 2 {
                return Ok(Applied::NoEffect(
                    "AccECN (tcp_ecn 3 to 5) is not implemented",
                ));
            }
            cfg.ecn = synack::tcp::EcnMode::from_sysctl(v as u32);
        }
        "tcp_fastopen" => cfg.fastopen = synack::tcp::FastOpenMode(int()? as u32),
        "tcp_fastopen_key" => {
            cfg.fastopen_key = Some(
                synack::tcp::FastOpenKey::parse(value)
                    .map_err(|e| format!("sysctl {name}: {e}"))?,
            )
        }
        "tcp_frto" => return Ok(Applied::NoEffect("F-RTO (RFC 5682) is not implemented")),
        "tcp_dsack" => cfg.dsack = int()? != 0,
        "tcp_rfc1337" => cfg.rfc1337 = int()? != 0,
        // RACK (tcp_recovery bit 0) and the tail loss probe (tcp_early_retrans 3 or 4) are
        // always on in synack, as in Linux's defaults.
        "tcp_recovery" => {
            if int()? & 1 == 0 {
                return Ok(Applied::NoEffect(
                    "RACK loss detection cannot be turned off",
                ));
            }
        }
        "tcp_early_retrans" => {
            if !matches!(int()?, 3 | 4) {
                return Ok(Applied::NoEffect(
                    "the tail loss probe cannot be turned off",
                ));
            }
        }
        "tcp_syncookies" => {
            cfg.syncookies = match int()? {
                0 => synack::tcp::SynCookies::Never,
                1 => synack::tcp::SynCookies::OnOverflow,
                _ => synack::tcp::SynCookies::Always,
            }
        }
        "tcp_min_tso_segs" => cfg.min_tso_segs = int()?.clamp(1, 255) as u32,
        "tcp_pacing_ss_ratio" => cfg.pacing_ss_ratio = int()?.min(1000) as u32,
        "tcp_pacing_ca_ratio" => cfg.pacing_ca_ratio = int()?.min(1000) as u32,
        "tcp_max_syn_backlog" => cfg.max_syn_backlog = int()?.max(1) as usize,
        "tcp_invalid_ratelimit" => {
            cfg.invalid_ratelimit = synack::time::Duration::from_millis(int()?)
        }
        // Mechanisms that only exist to shape Linux's TSO/pacing/FACK internals or belong to
        // Fast Open and AccECN, which synack does not have.
        "tcp_fack"
        | "tcp_tso_win_divisor"
        | "tcp_notsent_lowat"
        | "tcp_ecn_option"
        | "tcp_fastopen_blackhole_timeout_sec" => {
            return Ok(Applied::NoEffect("no such mechanism in synack"));
        }
        _ => return Err(format!("unknown sysctl net.ipv4.{name}")),
    }
    Ok(Applied::Set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_sh_buffers_give_linux_window_scale_8() {
        let mut c = linux();
        assert_eq!(c.our_window_shift(), 7, "Linux's 6 MiB rmem max gives 7");
        apply_sysctl(&mut c, "tcp_rmem", "4096 540000 15728640").unwrap();
        assert_eq!(c.recv_buffer, 540000);
        assert_eq!(c.our_window_shift(), 8);
    }

    #[test]
    fn unknown_and_malformed_settings_are_errors() {
        let mut c = linux();
        assert!(apply_sysctl(&mut c, "tcp_no_such_thing", "1").is_err());
        assert!(apply_sysctl(&mut c, "tcp_timestamps", "yes").is_err());
        assert_eq!(
            apply_sysctl(&mut c, "tcp_timestamps", "0"),
            Ok(Applied::Set)
        );
        assert!(!c.timestamps);
        // RACK is what synack does; turning it off is not possible.
        assert_eq!(apply_sysctl(&mut c, "tcp_recovery", "1"), Ok(Applied::Set));
        assert!(matches!(
            apply_sysctl(&mut c, "tcp_recovery", "0"),
            Ok(Applied::NoEffect(_))
        ));
        assert_eq!(
            apply_sysctl(&mut c, "tcp_min_tso_segs", "10"),
            Ok(Applied::Set)
        );
        assert_eq!(c.min_tso_segs, 10);
    }

    #[test]
    fn congestion_control_names() {
        use synack::tcp::congestion::Algorithm;
        let mut c = linux();
        assert_eq!(c.congestion, Algorithm::Cubic, "Linux's default");
        assert_eq!(
            apply_sysctl(&mut c, "tcp_congestion_control", "reno"),
            Ok(Applied::Set)
        );
        assert_eq!(c.congestion, Algorithm::NewReno);
        assert_eq!(
            apply_sysctl(&mut c, "tcp_congestion_control", "cubic\n"),
            Ok(Applied::Set)
        );
        assert_eq!(c.congestion, Algorithm::Cubic);
        assert_eq!(
            apply_sysctl(&mut c, "tcp_congestion_control", "bbr"),
            Ok(Applied::Set)
        );
        assert_eq!(c.congestion, Algorithm::Bbr);
        assert!(apply_sysctl(&mut c, "tcp_congestion_control", "vegas").is_err());
        assert_eq!(
            c.congestion,
            Algorithm::Bbr,
            "an unknown name changes nothing"
        );
    }
}
