//! Inbound ICMP lines the way upstream packetdrill builds them (icmp_packet.c): every ICMPv4
//! type by name or `type_N`, codes by name (destination unreachable) or `code_N`, the next-hop
//! MTU only on frag_needed; anything else is the error upstream reports.

mod common;

use common::{PASSIVE_OPEN, SOCKET, run_text};
use synack_packetdrill::run::{Outcome, Report};

/// An established connection with 1000 bytes in flight.
fn run(rest: &str) -> Report {
    run_text(&format!(
        "{SOCKET}{PASSIVE_OPEN}   +0 write(4, ..., 1000) = 1000\n   +0 > P. 1:1001(1000) ack 1\n{rest}"
    ))
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
