//! setsockopt TCP_CONGESTION through the runner: known names are accepted (on a listener and
//! on an established connection), unknown ones fail with ENOENT as on Linux.

use std::path::Path;

use synack_packetdrill::run::{self, RunOptions};

const SCRIPT: &str = r#"
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 setsockopt(3, IPPROTO_TCP, TCP_CONGESTION, "reno", 4) = 0
   +0 setsockopt(3, IPPROTO_TCP, TCP_CONGESTION, "bbr", 3) = 0
   +0 setsockopt(3, IPPROTO_TCP, TCP_CONGESTION, "vegas", 5) = -1 ENOENT (No such file or directory)
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0

   +0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 7>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
   +0 setsockopt(4, SOL_TCP, TCP_CONGESTION, "cubic", 5) = 0
   +0 write(4, ..., 1000) = 1000
   +0 > P. 1:1001(1000) ack 1
"#;

#[test]
fn tcp_congestion_sockopt() {
    let path = Path::new("inline/tcp-congestion.pkt");
    let opts = RunOptions::default();
    let script = synack_packetdrill::parse("tcp-congestion.pkt", SCRIPT, &opts.defines)
        .expect("script parses");
    let r = run::run_script(&script, SCRIPT, Path::new("."), path, opts.ip_version);
    assert!(r.passed(), "{}", r.render(Some(16)));
}
