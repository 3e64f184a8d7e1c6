//! Bad flag values: each is refused with one clear line on standard error (clap's hint may
//! follow it) and a non-zero exit status, before anything runs; none is silently adjusted.
//! None of these needs root: the checks come before any device is opened.

use std::process::Command;

/// Runs synack; returns (exit code, first line of standard error, standard output).
fn refused(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args(args)
        .output()
        .expect("run synack");
    let err = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code(),
        err.lines().next().unwrap_or("").to_string(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn assert_refused(args: &[&str], first_line: &str) {
    let (code, line, out) = refused(args);
    assert!(
        code.is_some_and(|c| c != 0),
        "synack {args:?} must fail, exited {code:?}"
    );
    assert_eq!(line, first_line, "synack {args:?}");
    assert_eq!(out, "", "synack {args:?} printed to standard output");
}

#[test]
fn a_queue_count_outside_the_kernels_range_is_refused() {
    for n in ["0", "257"] {
        assert_refused(
            &[
                "serve", "--tun", "sk9", "--port", "80", "--echo", "--queues", n,
            ],
            &format!("error: invalid value '{n}' for '--queues <N>': {n} is not in 1..=256"),
        );
    }
}

#[test]
fn an_mtu_that_cannot_carry_tcp_is_refused() {
    for mtu in ["0", "50", "127"] {
        assert_refused(
            &["sim", "--mtu", mtu],
            &format!("error: invalid value '{mtu}' for '--mtu <MTU>': {mtu} is not in 128..=65535"),
        );
    }
    assert_refused(
        &["sim", "--mtu", "-5"],
        "error: invalid value '-5' for '--mtu <MTU>': -5 is not in 128..=65535",
    );
    // IPv6 needs 1280 (RFC 8200 §5).
    let v6 = "error: MTU 1000 is too small for IPv6: every IPv6 link carries packets of 1280 bytes \
              (RFC 8200 §5)";
    assert_refused(&["sim", "--ipv6", "--mtu", "1000"], v6);
    #[cfg(target_os = "linux")]
    assert_refused(
        &[
            "serve",
            "--tun",
            "sk9",
            "--addr",
            "198.18.0.2/24,fd00:5ac::2/64",
            "--mtu",
            "1000",
            "--port",
            "80",
            "--echo",
        ],
        v6,
    );
}

#[test]
fn negative_durations_and_sizes_are_refused() {
    assert_refused(
        &["demo", "--rtt", "-5ms"],
        "error: invalid value '-5ms' for '--rtt <RTT>': a duration cannot be negative: \"-5ms\"",
    );
    assert_refused(
        &["sim", "--rtt", "-5ms"],
        "error: invalid value '-5ms' for '--rtt <RTT>': a duration cannot be negative: \"-5ms\"",
    );
    assert_refused(
        &["sim", "--bytes", "-1MiB"],
        "error: invalid value '-1MiB' for '--bytes <BYTES>': a size cannot be negative: \"-1MiB\"",
    );
    assert_refused(
        &["sim", "--loss", "-1%"],
        "error: invalid value '-1%' for '--loss <LOSS>': a probability cannot be negative: \"-1%\"",
    );
    assert_refused(
        &["sim", "--burst", "1%", "--burst-len", "0"],
        "error: invalid value '0' for '--burst-len <BURST_LEN>': expected a mean burst length \
         of at least 1 packet, got \"0\"",
    );
}

#[cfg(target_os = "linux")]
#[test]
fn tun_flags_are_checked_before_the_device_is_opened() {
    assert_refused(
        &[
            "serve", "--tun", "sk9", "--mtu", "0", "--port", "80", "--echo",
        ],
        "error: invalid value '0' for '--mtu <MTU>': 0 is not in 128..=65535",
    );
    assert_refused(
        &[
            "serve",
            "--tun",
            "sk9",
            "--addr",
            "198.18.0.2/24",
            "--kernel-addr",
            "198.18.1.1/24",
            "--port",
            "80",
            "--echo",
        ],
        "error: --addr 198.18.0.2/24 and --kernel-addr 198.18.1.1/24 are not in one subnet: \
         each side must reach the other on the link (e.g. --addr 198.18.0.2/24 --kernel-addr \
         198.18.0.1/24)",
    );
    assert_refused(
        &[
            "connect",
            "--tun",
            "sk9",
            "--addr",
            "198.18.0.2/30",
            "--kernel-addr",
            "198.18.0.9/24",
            "198.18.0.9:80",
        ],
        "error: --addr 198.18.0.2/30 and --kernel-addr 198.18.0.9/24 are not in one subnet: \
         each side must reach the other on the link (e.g. --addr 198.18.0.2/24 --kernel-addr \
         198.18.0.1/24)",
    );
    assert_refused(
        &["relay", "--a-tun", "a", "--b-tun", "b", "--mtu", "50"],
        "error: invalid value '50' for '--mtu <MTU>': 50 is not in 68..=65535",
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_connect_target_needs_a_port() {
    assert_refused(
        &["connect", "--tun", "sk9", "198.18.0.1"],
        "error: invalid value '198.18.0.1' for '<HOST:PORT>': 198.18.0.1 has no port: give \
         HOST:PORT, e.g. 198.18.0.1:80",
    );
    assert_refused(
        &["connect", "--tun", "sk9", "fd00::1"],
        "error: invalid value 'fd00::1' for '<HOST:PORT>': fd00::1 has no port: give HOST:PORT, \
         e.g. [fd00::1]:80",
    );
    assert_refused(
        &["connect", "--tun", "sk9", "198.18.0.1:http"],
        "error: invalid value '198.18.0.1:http' for '<HOST:PORT>': cannot resolve \
         \"198.18.0.1:http\": invalid port value",
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_socks5_login_needs_its_password_in_the_environment_and_rfc_1929_lengths() {
    let run = |pass: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_synack"));
        c.args(["forward", "--tun", "sk9", "--route", "default"])
            .args(["--socks5", "127.0.0.1:1080", "--socks5-user", "bob"])
            .env_remove("SYNACK_SOCKS5_PASSWORD");
        if let Some(p) = pass {
            c.env("SYNACK_SOCKS5_PASSWORD", p);
        }
        let out = c.output().expect("run synack");
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };
    assert_eq!(
        run(None),
        "error: --socks5-user bob: the password goes in the environment variable \
         SYNACK_SOCKS5_PASSWORD, which is not set (or not UTF-8)"
    );
    assert_eq!(
        run(Some("")),
        "error: a SOCKS5 password is 1 to 255 bytes (RFC 1929), not 0"
    );
}
