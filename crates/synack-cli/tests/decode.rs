//! `synack decode` end to end: the built binary on real packets, checking stdout, stderr and
//! the exit code.
//!
//! The packets were assembled and their checksums computed with a short independent script
//! (RFC 1071 sum over the RFC 9293 §3.1 / RFC 8200 §8.1 pseudo-headers), not with synack.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// SYN 198.18.0.1:49152 → 198.18.0.2:80, Linux's SYN options (MSS, SACK-permitted,
/// timestamps, NOP, window scale 8). The README's example.
const SYN_V4: &str = "4500003c000040004006ae94c6120001c6120002c00000501a2b3c4d00000000a002faf0aa1c0000020405b40402080a000000010000000001030308";

const SYN_V4_LINES: [&str; 2] = [
    "IPv4 198.18.0.1 > 198.18.0.2 proto=TCP ttl=64 len=40  [header checksum ok]",
    "TCP  49152 \u{2192} 80 [SYN] Seq=439041101 Win=64240 Len=0 MSS=1460 SACK_PERM TSval=1 TSecr=0 WS=256  [checksum ok]",
];

fn synack(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_synack"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run synack");
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8(bytes.to_vec())
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Asserts success with exactly `want` on stdout and nothing on stderr.
fn assert_decodes(out: &Output, want: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&out.stdout), want);
    assert_eq!(lines(&out.stderr), Vec::<String>::new());
}

/// Asserts exit code 1, the layers before the failure on stdout, and `error` on stderr.
fn assert_fails(out: &Output, stdout: &[&str], error: &str) {
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out.stdout), stdout);
    assert_eq!(lines(&out.stderr), [error]);
}

#[test]
fn ipv4_syn_prints_one_line_per_layer() {
    assert_decodes(&synack(&["decode", SYN_V4], None), &SYN_V4_LINES);
}

#[test]
fn pasted_layouts_decode_the_same() {
    // tcpdump -xx style groups over several arguments, and colon-separated bytes with 0x.
    let groups: Vec<String> = SYN_V4
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let mut args = vec!["decode"];
    args.extend(groups.iter().map(String::as_str));
    assert_decodes(&synack(&args, None), &SYN_V4_LINES);

    let colons: Vec<String> = SYN_V4
        .as_bytes()
        .chunks(2)
        .map(|c| format!("0x{}", std::str::from_utf8(c).unwrap()))
        .collect();
    assert_decodes(&synack(&["decode", &colons.join(":")], None), &SYN_V4_LINES);
}

#[test]
fn ipv6_syn_ack() {
    // SYN-ACK 2001:db8::2:80 → 2001:db8::1:49152, MSS 1440, SACK-permitted, TS, WS 7.
    let hex = "6000000000280640\
               20010db8000000000000000000000002\
               20010db8000000000000000000000001\
               0050c000000003e81a2b3c4ea012fe88bfcb0000\
               020405a00402080a000013880000000101030307";
    assert_decodes(
        &synack(&["decode", hex], None),
        &[
            "IPv6 2001:db8::2 > 2001:db8::1 next=TCP hop=64 len=40",
            "TCP  80 \u{2192} 49152 [SYN, ACK] Seq=1000 Ack=439041102 Win=65160 Len=0 MSS=1440 SACK_PERM TSval=5000 TSecr=1 WS=128  [checksum ok]",
        ],
    );
}

#[test]
fn icmpv4_frag_needed_shows_the_quoted_segment() {
    // A router at 198.18.0.254 could not forward a 1500-byte DF segment: next-hop MTU 1400.
    // The quote is the original IPv4 header and the first 8 bytes of its TCP header.
    let hex = "4500003855aa00003f0198f7c61200fec6120001\
               0304e0b900000578\
               450005d012344000400696ccc6120001c6120002\
               c00000501a2b3c4e";
    assert_decodes(
        &synack(&["decode", hex], None),
        &[
            "IPv4 198.18.0.254 > 198.18.0.1 proto=ICMP ttl=63 len=36  [header checksum ok]",
            "ICMP dst-unreachable frag-needed mtu=1400 for TCP 198.18.0.1:49152 > 198.18.0.2:80 seq=439041102  [checksum ok]",
        ],
    );
}

#[test]
fn icmpv6_packet_too_big_shows_the_quoted_segment() {
    // A router at 2001:db8::fe reports a next-hop MTU of 1400 for a segment 2001:db8::1 sent.
    let hex = "6000000000383a40\
               20010db80000000000000000000000fe\
               20010db8000000000000000000000001\
               0200bd7000000578\
               6000000005b40640\
               20010db8000000000000000000000001\
               20010db8000000000000000000000002\
               c00000501a2b3c4e";
    assert_decodes(
        &synack(&["decode", hex], None),
        &[
            "IPv6 2001:db8::fe > 2001:db8::1 next=ICMPv6 hop=64 len=56",
            "ICMPv6 packet-too-big mtu=1400 for TCP [2001:db8::1]:49152 > [2001:db8::2]:80 seq=439041102  [checksum ok]",
        ],
    );
}

#[test]
fn truncated_capture_fails_at_the_ip_layer() {
    // The SYN with its last byte (the window scale shift) cut off.
    let cut = &SYN_V4[..SYN_V4.len() - 2];
    assert_fails(
        &synack(&["decode", cut], None),
        &[],
        "error: IPv4: length field disagrees with the buffer \
         (Total Length 60, header 20 bytes, 59 bytes given)",
    );
}

#[test]
fn truncated_tcp_header_fails_at_the_tcp_layer() {
    // A well-formed IPv4 header (Total Length 30) carrying only 10 bytes of TCP.
    let hex = "4500001e000040004006aeb2c6120001c6120002c00000501a2b3c4d0000";
    assert_fails(
        &synack(&["decode", hex], None),
        &["IPv4 198.18.0.1 > 198.18.0.2 proto=TCP ttl=64 len=10  [header checksum ok]"],
        "error: TCP: packet shorter than its fixed header (10 bytes, the fixed header needs 20)",
    );
}

#[test]
fn malformed_option_fails_at_the_tcp_layer() {
    // The SYN with the MSS option's length byte changed from 4 to 3.
    let hex = SYN_V4.replacen("020405b4", "020305b4", 1);
    assert_fails(
        &synack(&["decode", &hex], None),
        &[SYN_V4_LINES[0]],
        "error: TCP: malformed TCP option (option bytes: \
         02 03 05 b4 04 02 08 0a 00 00 00 01 00 00 00 00 01 03 03 08)",
    );
}

#[test]
fn corrupted_tcp_checksum_is_reported_and_decoding_goes_on() {
    // Checksum field 0xaa1c → 0xaa1d.
    let hex = SYN_V4.replacen("aa1c", "aa1d", 1);
    assert_decodes(
        &synack(&["decode", &hex], None),
        &[
            SYN_V4_LINES[0],
            "TCP  49152 \u{2192} 80 [SYN] Seq=439041101 Win=64240 Len=0 MSS=1460 SACK_PERM TSval=1 TSecr=0 WS=256  [checksum BAD: 0xaa1d, expected 0xaa1c]",
        ],
    );
}

#[test]
fn corrupted_ip_header_checksum_is_reported() {
    let hex = SYN_V4.replacen("ae94", "0000", 1);
    let out = synack(&["decode", &hex], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        lines(&out.stdout)[0],
        "IPv4 198.18.0.1 > 198.18.0.2 proto=TCP ttl=64 len=40  \
         [header checksum BAD: 0x0000, expected 0xae94]"
    );
}

#[test]
fn hex_from_stdin() {
    // As a hex dump would be pasted: 16 bytes a line, spaces between bytes.
    let mut dump = String::new();
    for line in SYN_V4.as_bytes().chunks(32) {
        let bytes: Vec<&str> = line
            .chunks(2)
            .map(|b| std::str::from_utf8(b).unwrap())
            .collect();
        dump.push_str(&bytes.join(" "));
        dump.push('\n');
    }
    assert_decodes(&synack(&["decode", "-"], Some(&dump)), &SYN_V4_LINES);
}

#[test]
fn bare_tcp_segment() {
    let segment = &SYN_V4[40..];
    assert_decodes(
        &synack(&["decode", "--tcp", segment], None),
        &[
            "TCP  49152 \u{2192} 80 [SYN] Seq=439041101 Win=64240 Len=0 MSS=1460 SACK_PERM TSval=1 TSecr=0 WS=256  [checksum not verified: no IP header, so no pseudo-header]",
        ],
    );
}

#[test]
fn input_that_is_not_hex_or_not_ip() {
    assert_fails(
        &synack(&["decode", "45zz"], None),
        &[],
        "error: input is not hex: 'z' at offset 2 is not a hex digit",
    );
    assert_fails(
        &synack(&["decode", "450"], None),
        &[],
        "error: input is not hex: odd number of hex digits (3): a byte needs two",
    );
    assert_fails(
        &synack(&["decode", "-"], Some("\n")),
        &[],
        "error: no bytes to decode",
    );
    assert_fails(
        &synack(&["decode", "50000000"], None),
        &[],
        "error: IP: wrong IP version (version nibble 5; only 4 and 6 are decoded, \
         --tcp reads a bare TCP segment)",
    );
}

#[test]
fn help_shows_the_example() {
    let out = synack(&["decode", "--help"], None);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains(&format!("synack decode {SYN_V4}")), "{help}");
    for line in SYN_V4_LINES {
        assert!(help.contains(line), "{help}");
    }
}

#[test]
fn ipv6_extension_headers_and_fragments_are_shown() {
    // A non-first fragment (offset 1448) of an ICMPv6 message: the Fragment header, then the
    // data, not decoded (as for IPv4 fragments).
    let fragment = "6000000000102c40\
                    20010db8000000000000000000000001\
                    20010db8000000000000000000000002\
                    3a0005a800000009\
                    0102030405060708";
    assert_decodes(
        &synack(&["decode", fragment], None),
        &[
            "IPv6 2001:db8::1 > 2001:db8::2 next=IPv6-Frag hop=64 len=16",
            "     fragment header: id=0x00000009 offset=1448",
            "     fragment: 8 bytes of ICMPv6, not decoded further",
        ],
    );
    // An echo request behind a Destination Options header (PadN): walked past.
    let opts = "6000000000103c40\
                20010db8000000000000000000000001\
                20010db8000000000000000000000002\
                3a00010400000000\
                8000244500010002";
    assert_decodes(
        &synack(&["decode", opts], None),
        &[
            "IPv6 2001:db8::1 > 2001:db8::2 next=IPv6-Opts hop=64 len=16",
            "     destination options header, 8 bytes",
            "ICMPv6 echo request id=1 seq=2 len=0  [checksum ok]",
        ],
    );
}
