//! Socket options as the runner answers them, the way Linux does: getsockopt SO_RCVBUF /
//! SO_SNDBUF (socket(7): the size a script set, doubled, or the tcp_rmem / tcp_wmem default; a
//! connected socket whose buffer Linux would autotune makes the script a SKIP), and the keep-alive
//! and user-timeout options with tcp(7)'s ranges (EINVAL outside them, the old value kept).

mod common;

use common::{PASSIVE_OPEN as HANDSHAKE, SOCKET, run_text};
use synack_packetdrill::run::{Outcome, Report};

fn run(rest: &str) -> Report {
    run_text(&format!("{SOCKET}{rest}"))
}

#[test]
fn defaults_come_from_tcp_rmem_and_tcp_wmem() {
    let r = run(
        "   +0 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [540000], [4]) = 0
   +0 getsockopt(3, SOL_SOCKET, SO_SNDBUF, [16384], [4]) = 0
",
    );
    assert!(r.passed(), "{}", r.render(None));
}

#[test]
fn a_set_size_is_doubled_and_inherited_by_the_accepted_socket() {
    let r = run(&format!(
        "   +0 setsockopt(3, SOL_SOCKET, SO_RCVBUF, [4096], 4) = 0
   +0 setsockopt(3, SOL_SOCKET, SO_SNDBUF, [5000], 4) = 0
   +0 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [8192], [4]) = 0
   +0 getsockopt(3, SOL_SOCKET, SO_SNDBUF, [10000], [4]) = 0
{}   +0 getsockopt(4, SOL_SOCKET, SO_RCVBUF, [8192], [4]) = 0
   +0 getsockopt(4, SOL_SOCKET, SO_SNDBUF, [10000], [4]) = 0
",
        // A locked 8 KiB buffer needs no window scaling (tcp_select_initial_window).
        HANDSHAKE.replace("wscale 8>", "wscale 0>")
    ));
    assert!(r.passed(), "{}", r.render(None));
}

#[test]
fn a_wrong_expected_size_fails_with_both_values() {
    let r = run("   +0 setsockopt(3, SOL_SOCKET, SO_RCVBUF, [4096], 4) = 0
   +0 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [4096], [4]) = 0
");
    let Outcome::Fail(f) = &r.outcome else {
        panic!("expected a failure:\n{}", r.render(None));
    };
    assert_eq!(
        f.message,
        "Bad getsockopt optval: expected: 4096 actual: 8192"
    );
}

#[test]
fn an_autotuned_buffer_of_a_connection_is_not_guessed() {
    let r = run(&format!(
        "{HANDSHAKE}   +0 getsockopt(4, SOL_SOCKET, SO_RCVBUF, [540000], [4]) = 0
"
    ));
    let Outcome::Skip(why) = &r.outcome else {
        panic!("expected a skip:\n{}", r.render(None));
    };
    assert!(why.contains("SO_RCVBUF"), "{why}");
}

#[test]
fn keepalive_and_user_timeout_ranges_and_values() {
    let r = run("   +0 getsockopt(3, SOL_TCP, TCP_KEEPIDLE, [7200], [4]) = 0
   +0 setsockopt(3, SOL_TCP, TCP_KEEPIDLE, [30], 4) = 0
   +0 setsockopt(3, SOL_TCP, TCP_KEEPIDLE, [0], 4) = -1 EINVAL (Invalid argument)
   +0 setsockopt(3, SOL_TCP, TCP_KEEPIDLE, [32768], 4) = -1 EINVAL (Invalid argument)
   +0 getsockopt(3, SOL_TCP, TCP_KEEPIDLE, [30], [4]) = 0
   +0 setsockopt(3, SOL_TCP, TCP_KEEPINTVL, [0], 4) = -1 EINVAL (Invalid argument)
   +0 setsockopt(3, SOL_TCP, TCP_KEEPINTVL, [32767], 4) = 0
   +0 getsockopt(3, SOL_TCP, TCP_KEEPINTVL, [32767], [4]) = 0
   +0 setsockopt(3, SOL_TCP, TCP_KEEPCNT, [128], 4) = -1 EINVAL (Invalid argument)
   +0 setsockopt(3, SOL_TCP, TCP_KEEPCNT, [127], 4) = 0
   +0 getsockopt(3, SOL_TCP, TCP_KEEPCNT, [127], [4]) = 0
   +0 getsockopt(3, SOL_TCP, TCP_USER_TIMEOUT, [0], [4]) = 0
   +0 setsockopt(3, SOL_TCP, TCP_USER_TIMEOUT, [-1], 4) = -1 EINVAL (Invalid argument)
   +0 setsockopt(3, SOL_TCP, TCP_USER_TIMEOUT, [1500], 4) = 0
   +0 getsockopt(3, SOL_TCP, TCP_USER_TIMEOUT, [1500], [4]) = 0
");
    assert!(r.passed(), "{}", r.render(None));
}

/// Keep-alive set on a listener reaches the accepted connection with its timer running: the
/// first probe (seq SND.UNA-1) comes 1 s after the last segment received.
#[test]
fn keepalive_inherited_from_the_listener_probes() {
    let r = run(&format!(
        "   +0 setsockopt(3, SOL_SOCKET, SO_KEEPALIVE, [1], 4) = 0
   +0 setsockopt(3, SOL_TCP, TCP_KEEPIDLE, [1], 4) = 0
{HANDSHAKE}   +1 > . 0:0(0) ack 1
"
    ));
    assert!(r.passed(), "{}", r.render(None));
}
