//! Inbound ICMP lines the way upstream packetdrill builds them (icmp_packet.c): every ICMPv4
//! type by name or `type_N`, codes by name (destination unreachable) or `code_N`, the next-hop
//! MTU only on frag_needed; anything else is the error upstream reports.

use std::collections::HashMap;
use std::path::Path;

use synack_packetdrill::run::{Outcome, Report, run_script};

const PRELUDE: &str = "\
`sysctl -q net.ipv4.tcp_rmem=\"4096 540000 15728640\"
sysctl -q net.ipv4.tcp_timestamps=0`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 65535 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 256
   +0 accept(3, ..., ...) = 4
   +0 write(4, ..., 1000) = 1000
   +0 > P. 1:1001(1000) ack 1
";

fn run(rest: &str) -> Report {
    let text = format!("{PRELUDE}{rest}");
    let script = synack_packetdrill::parse("inline.pkt", &text, &HashMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    run_script(&script, &text, dir, Path::new("inline.pkt"))
}

fn failure(r: &Report) -> String {
    match &r.outcome {
        Outcome::Fail(f) => f.message.clone(),
        _ => panic!("expected a failure:\n{}", r.render(None)),
    }
}

#[test]
fn every_error_type_reaches_the_stack_by_name_or_number() {
    let r = run("   +0 < icmp source_quench [1:1001(1000)]
   +0 < icmp redirect code_1 [1:1001(1000)]
   +0 < icmp parameter_problem [1:1001(1000)]
   +0 < icmp time_exceeded code_1 [1:1001(1000)]
   +0 < icmp unreachable code_16 [1:1001(1000)]
   +0 < icmp type_42 code_7 [1:1001(1000)]
  +.1 < . 1:1(0) ack 1001 win 256
");
    assert!(r.passed(), "{}", r.render(None));
    let icmp: Vec<&String> = r.trace.iter().filter(|l| l.contains("< icmp")).collect();
    assert_eq!(icmp.len(), 6, "{:#?}", r.trace);
    assert!(icmp[1].contains("redirect code_1"), "{}", icmp[1]);
}

#[test]
fn unknown_names_and_misplaced_mtu_are_errors() {
    let r = run("   +0 < icmp unreachable host_gone [1:1001(1000)]\n");
    assert_eq!(failure(&r), "bad ICMP code host_gone");
    let r = run("   +0 < icmp bogus [1:1001(1000)]\n");
    assert_eq!(failure(&r), "bad ICMP type bogus");
    let r = run("   +0 < icmp unreachable host_unreachable mtu 1200 [1:1001(1000)]\n");
    assert_eq!(
        failure(&r),
        "ICMPv4 MTU is only valid for unreachable-frag_needed"
    );
}
