//! `synack decode`: one packet, given as hex, printed one line per layer with the library's
//! own `Display` renderings and a verdict on every checksum.
//!
//! IPv4 or IPv6 is chosen by the version nibble; `--tcp` reads a bare TCP segment instead.
//! Above IP, TCP, ICMP (over IPv4) and ICMPv6 (over IPv6) are decoded. A malformed layer stops
//! the decoding with `<layer>: <wire::Error>` and exit code 1; a bad checksum is only reported.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;

use synack::wire::{self, IpProtocol, icmpv4, icmpv6, ipv4, ipv6, ipv6ext, tcp};

use crate::hex;

/// The example packet shown in `--help` and the README: a SYN from 198.18.0.1:49152 to
/// 198.18.0.2:80 with Linux's SYN options, both checksums correct. A test below rebuilds it
/// with the library's emitters, so it cannot drift.
macro_rules! example_syn_hex {
    () => {
        "4500003c000040004006ae94c6120001c6120002c00000501a2b3c4d00000000a002faf0aa1c0000020405b40402080a000000010000000001030308"
    };
}

const AFTER_LONG_HELP: &str = concat!(
    "Example (a SYN with Linux's options):\n\n  synack decode ",
    example_syn_hex!(),
    "\n\nprints\n\n",
    "  IPv4 198.18.0.1 > 198.18.0.2 proto=TCP ttl=64 len=40  [header checksum ok]\n",
    "  TCP  49152 \u{2192} 80 [SYN] Seq=439041101 Win=64240 Len=0 MSS=1460 SACK_PERM TSval=1 ",
    "TSecr=0 WS=256  [checksum ok]\n\n",
    "`len=` on the IP line is the payload length. Exit status: 0 when every layer parsed (bad ",
    "checksums are reported, not fatal), 1 when the input is not hex or a layer is malformed.\n\n",
    "Output: the layers on standard output (also those decoded before a malformed one), the ",
    "error on standard error."
);

/// Decode one packet given as hex: IPv4/IPv6, then TCP, ICMP or ICMPv6.
///
/// The version nibble picks IPv4 or IPv6; `--tcp` reads a bare TCP segment instead. Prints one
/// line per layer, in Wireshark's notation for TCP, with each checksum checked.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_LONG_HELP)]
pub struct Args {
    /// The packet in hex. Several arguments are joined; `-` reads hex from standard input.
    /// Whitespace, newlines, `:`, `,` and `0x` prefixes are ignored.
    #[arg(value_name = "HEX", required = true)]
    hex: Vec<String>,

    /// The bytes are a bare TCP segment with no IP header (its checksum cannot be verified
    /// then: the pseudo-header needs the IP addresses).
    #[arg(long)]
    tcp: bool,
}

/// Runs the command: prints the layers on stdout, a failure on stderr.
pub fn run(args: Args) -> ExitCode {
    let bytes = match read_input(&args.hex) {
        Ok(bytes) => bytes,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let decoded = decode(&bytes, args.tcp);
    let mut out = io::stdout().lock();
    for line in &decoded.lines {
        // A closed pipe (`synack decode ... | head -1`) is not worth a panic.
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    match decoded.failure {
        None => ExitCode::SUCCESS,
        Some(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Joins the arguments (reading standard input for `-`) and parses the hex.
fn read_input(args: &[String]) -> Result<Vec<u8>, String> {
    let mut text = String::new();
    for arg in args {
        if arg == "-" {
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading standard input: {e}"))?;
        } else {
            text.push_str(arg);
        }
        text.push(' ');
    }
    let bytes = hex::parse(&text).map_err(|e| format!("input is not hex: {e}"))?;
    if bytes.is_empty() {
        return Err("no bytes to decode".to_string());
    }
    Ok(bytes)
}

/// What [`decode`] found: the lines for the layers that parsed, and why it stopped early.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub lines: Vec<String>,
    pub failure: Option<Failure>,
}

/// A layer that did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `IP`, `IPv4`, `IPv6`, `TCP`, `ICMP` or `ICMPv6`.
    pub layer: &'static str,
    pub error: wire::Error,
    /// The numbers behind the error, for a person to act on.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.layer, self.error)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// Decodes `bytes` as an IP packet, or as a bare TCP segment when `bare_tcp` is set.
pub fn decode(bytes: &[u8], bare_tcp: bool) -> Decoded {
    let mut lines = Vec::new();
    let result = if bare_tcp {
        decode_tcp(&mut lines, bytes, None)
    } else {
        match bytes.first().map(|b| b >> 4) {
            Some(4) => decode_ipv4(&mut lines, bytes),
            Some(6) => decode_ipv6(&mut lines, bytes),
            version => Err(Failure {
                layer: "IP",
                error: wire::Error::BadVersion,
                detail: format!(
                    "version nibble {}; only 4 and 6 are decoded, --tcp reads a bare TCP segment",
                    version.unwrap_or(0)
                ),
            }),
        }
    };
    Decoded {
        lines,
        failure: result.err(),
    }
}

type Step = Result<(), Failure>;

/// `[<what> ok]` or `[<what> BAD: 0x<stored>, expected 0x<expected>]`.
fn checksum_verdict(what: &str, ok: bool, stored: u16, expected: impl FnOnce() -> u16) -> String {
    if ok {
        format!("[{what} ok]")
    } else {
        format!("[{what} BAD: {stored:#06x}, expected {:#06x}]", expected())
    }
}

/// A line for a layer that is present but not decoded further.
fn not_decoded(lines: &mut Vec<String>, what: fmt::Arguments<'_>) {
    lines.push(format!("     {what}, not decoded further"));
}

/// A line noting bytes after the IP packet's stated length (Ethernet padding, usually).
fn trailing(lines: &mut Vec<String>, extra: usize, field: &str) {
    if extra > 0 {
        lines.push(format!(
            "     {extra} byte(s) after the {field} ignored (link-layer padding?)"
        ));
    }
}

fn protocol_name(p: IpProtocol) -> String {
    match p {
        IpProtocol::Icmp => "ICMP".into(),
        IpProtocol::Tcp => "TCP".into(),
        IpProtocol::Udp => "UDP".into(),
        IpProtocol::Icmpv6 => "ICMPv6".into(),
        IpProtocol::HopByHop => "hop-by-hop options header".into(),
        IpProtocol::Routing => "routing header".into(),
        IpProtocol::Fragment => "fragment header".into(),
        IpProtocol::NoNextHeader => "no next header".into(),
        IpProtocol::DestOpts => "destination options header".into(),
        IpProtocol::Unknown(n) => format!("protocol {n}"),
    }
}

fn decode_ipv4(lines: &mut Vec<String>, bytes: &[u8]) -> Step {
    let fail = |error| Failure {
        layer: "IPv4",
        error,
        detail: ipv4_detail(bytes, error),
    };
    let packet = ipv4::Packet::new_checked(bytes).map_err(fail)?;
    let repr = ipv4::Repr::parse(&packet, false).map_err(fail)?;
    let verdict = checksum_verdict(
        "header checksum",
        packet.verify_checksum(),
        packet.checksum(),
        || {
            let mut header = bytes[..packet.header_len()].to_vec();
            let mut copy = ipv4::Packet::new_unchecked(&mut header[..]);
            copy.fill_checksum();
            copy.checksum()
        },
    );
    lines.push(format!("{repr}  {verdict}"));
    trailing(
        lines,
        bytes.len() - usize::from(packet.total_len()),
        "IPv4 Total Length",
    );
    if packet.is_fragment() {
        let mf = if packet.more_frags() { " MF" } else { "" };
        not_decoded(
            lines,
            format_args!(
                "fragment id={:#06x} offset={}{mf}",
                packet.ident(),
                packet.frag_offset()
            ),
        );
        return Ok(());
    }
    let (src, dst) = (repr.src_addr, repr.dst_addr);
    match repr.protocol {
        IpProtocol::Tcp => decode_tcp(lines, packet.payload(), Some((src.into(), dst.into()))),
        IpProtocol::Icmp => decode_icmpv4(lines, packet.payload()),
        other => {
            let len = packet.payload().len();
            not_decoded(
                lines,
                format_args!("{len} bytes of {}", protocol_name(other)),
            );
            Ok(())
        }
    }
}

/// The raw fields behind an IPv4 error.
fn ipv4_detail(bytes: &[u8], error: wire::Error) -> String {
    let n = bytes.len();
    match error {
        wire::Error::Truncated => format!("{n} bytes, the fixed header needs 20"),
        wire::Error::BadHeaderLength => {
            let ihl = bytes[0] & 0x0f;
            format!(
                "IHL {ihl} means {} header bytes; {n} given",
                usize::from(ihl) * 4
            )
        }
        wire::Error::BadLength => {
            let total = u16::from_be_bytes([bytes[2], bytes[3]]);
            let header = usize::from(bytes[0] & 0x0f) * 4;
            format!("Total Length {total}, header {header} bytes, {n} bytes given")
        }
        _ => String::new(),
    }
}

fn decode_ipv6(lines: &mut Vec<String>, bytes: &[u8]) -> Step {
    let fail = |error| {
        let n = bytes.len();
        let detail = match error {
            wire::Error::Truncated => format!("{n} bytes, the fixed header needs 40"),
            wire::Error::BadLength => {
                let payload = u16::from_be_bytes([bytes[4], bytes[5]]);
                format!("Payload Length {payload} after the 40-byte header, {n} bytes given")
            }
            _ => String::new(),
        };
        Failure {
            layer: "IPv6",
            error,
            detail,
        }
    };
    let packet = ipv6::Packet::new_checked(bytes).map_err(fail)?;
    let repr = ipv6::Repr::parse(&packet).map_err(fail)?;
    lines.push(repr.to_string());
    trailing(
        lines,
        bytes.len() - ipv6::HEADER_LEN - usize::from(packet.payload_len()),
        "IPv6 Payload Length",
    );
    let (src, dst) = (repr.src_addr, repr.dst_addr);
    let all = packet.payload();
    // The extension headers (RFC 8200 §4), one line each, then the upper layer.
    let chain = ipv6ext::Chain::walk(u8::from(repr.next_header), all).map_err(|error| Failure {
        layer: "IPv6 extension header",
        error,
        detail: format!("{} bytes after the fixed header", all.len()),
    })?;
    for h in chain.headers() {
        let bytes = &all[h.offset..h.offset + h.len];
        let name = protocol_name(IpProtocol::from(h.kind));
        if h.kind == u8::from(IpProtocol::Fragment) {
            let f = ipv6ext::FragmentHeader::new_unchecked(bytes);
            let mf = if f.more_frags() { " MF" } else { "" };
            lines.push(format!(
                "     {name}: id={:#010x} offset={}{mf}",
                f.ident(),
                f.frag_offset()
            ));
            if f.frag_offset() != 0 || f.more_frags() {
                let len = all.len() - chain.upper_offset;
                let upper = protocol_name(IpProtocol::from(chain.upper));
                not_decoded(lines, format_args!("fragment: {len} bytes of {upper}"));
                return Ok(());
            }
        } else {
            lines.push(format!("     {name}, {} bytes", h.len));
        }
    }
    let payload = &all[chain.upper_offset..];
    match IpProtocol::from(chain.upper) {
        IpProtocol::Tcp => decode_tcp(lines, payload, Some((src.into(), dst.into()))),
        IpProtocol::Icmpv6 => decode_icmpv6(lines, payload, src, dst),
        IpProtocol::NoNextHeader => Ok(()),
        other => {
            let len = payload.len();
            not_decoded(
                lines,
                format_args!("{len} bytes of {}", protocol_name(other)),
            );
            Ok(())
        }
    }
}

/// `addrs` is the IP source and destination, or `None` for a bare segment.
fn decode_tcp(lines: &mut Vec<String>, bytes: &[u8], addrs: Option<(IpAddr, IpAddr)>) -> Step {
    let fail = |error| {
        let n = bytes.len();
        let detail = match error {
            wire::Error::Truncated => format!("{n} bytes, the fixed header needs 20"),
            wire::Error::BadHeaderLength => {
                let offset = bytes[12] >> 4;
                let len = usize::from(offset) * 4;
                format!("data offset {offset} means {len} header bytes; {n} given")
            }
            wire::Error::BadOption => {
                let end = (usize::from(bytes[12] >> 4) * 4).min(n);
                let options: Vec<String> = bytes[tcp::HEADER_LEN..end]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("option bytes: {}", options.join(" "))
            }
            _ => String::new(),
        };
        Failure {
            layer: "TCP",
            error,
            detail,
        }
    };
    let packet = tcp::Packet::new_checked(bytes).map_err(fail)?;
    // Without addresses the pseudo-header is unknown; the unspecified address only fills the
    // argument, as the checksum is not verified then.
    let (src, dst) = addrs.unwrap_or((Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::UNSPECIFIED.into()));
    let repr = tcp::Repr::parse(&packet, src, dst, false).map_err(fail)?;
    let verdict = match addrs {
        Some((src, dst)) => checksum_verdict(
            "checksum",
            packet.verify_checksum(src, dst),
            packet.checksum(),
            || {
                let mut segment = bytes.to_vec();
                let mut copy = tcp::Packet::new_unchecked(&mut segment[..]);
                copy.fill_checksum(src, dst);
                copy.checksum()
            },
        ),
        None => "[checksum not verified: no IP header, so no pseudo-header]".to_string(),
    };
    lines.push(format!("TCP  {repr}  {verdict}"));
    Ok(())
}

fn decode_icmpv4(lines: &mut Vec<String>, bytes: &[u8]) -> Step {
    let fail = |error| Failure {
        layer: "ICMP",
        error,
        detail: format!("{} bytes, the header needs 8", bytes.len()),
    };
    let packet = icmpv4::Packet::new_checked(bytes).map_err(fail)?;
    let verdict = checksum_verdict(
        "checksum",
        packet.verify_checksum(),
        packet.checksum(),
        || {
            let mut message = bytes.to_vec();
            let mut copy = icmpv4::Packet::new_unchecked(&mut message[..]);
            copy.fill_checksum();
            copy.checksum()
        },
    );
    let line = match icmpv4::Repr::parse(&packet, false) {
        Ok(repr) => {
            let quote = match repr.quote() {
                Some(Err(e)) => format!("  [quoted datagram unreadable: {e}]"),
                _ => String::new(),
            };
            format!("{repr}  {verdict}{quote}")
        }
        // A type this library does not model: still show what the header says.
        Err(wire::Error::Unrecognized) => format!(
            "ICMP {} code={} len={}  {verdict}",
            packet.msg_type(),
            packet.msg_code(),
            packet.data().len()
        ),
        Err(e) => return Err(fail(e)),
    };
    lines.push(line);
    Ok(())
}

fn decode_icmpv6(lines: &mut Vec<String>, bytes: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Step {
    let fail = |error| Failure {
        layer: "ICMPv6",
        error,
        detail: format!("{} bytes, the header needs 8", bytes.len()),
    };
    let packet = icmpv6::Packet::new_checked(bytes).map_err(fail)?;
    let verdict = checksum_verdict(
        "checksum",
        packet.verify_checksum(src, dst),
        packet.checksum(),
        || {
            let mut message = bytes.to_vec();
            let mut copy = icmpv6::Packet::new_unchecked(&mut message[..]);
            copy.fill_checksum(src, dst);
            copy.checksum()
        },
    );
    let line = match icmpv6::Repr::parse(&packet, src, dst, false) {
        Ok(repr) => {
            let quote = match repr.quote() {
                Some(Err(e)) => format!("  [quoted packet unreadable: {e}]"),
                _ => String::new(),
            };
            format!("{repr}  {verdict}{quote}")
        }
        Err(wire::Error::Unrecognized) => format!(
            "ICMPv6 {} code={} len={}  {verdict}",
            packet.msg_type(),
            packet.msg_code(),
            packet.data().len()
        ),
        Err(e) => return Err(fail(e)),
    };
    lines.push(line);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use synack::tcp::SeqNum;

    /// The example, built with the library's emitters rather than by hand.
    fn example_syn() -> Vec<u8> {
        let src = Ipv4Addr::new(198, 18, 0, 1);
        let dst = Ipv4Addr::new(198, 18, 0, 2);
        let segment = tcp::Repr {
            src_port: 49152,
            dst_port: 80,
            seq: SeqNum(439_041_101),
            ack: SeqNum(0),
            flags: tcp::Flags::SYN,
            window: 64240,
            urgent: 0,
            options: tcp::Options {
                mss: Some(1460),
                window_scale: Some(8),
                sack_permitted: true,
                timestamps: Some(tcp::Timestamps { tsval: 1, tsecr: 0 }),
                sack: tcp::SackBlocks::new(),
                fast_open: None,
            },
            payload: &[],
        };
        let ip = ipv4::Repr::new(src, dst, IpProtocol::Tcp, segment.buffer_len());
        let mut buf = vec![0u8; ip.buffer_len()];
        ip.emit(&mut ipv4::Packet::new_unchecked(&mut buf[..]), true)
            .unwrap();
        segment
            .emit(
                &mut tcp::Packet::new_unchecked(&mut buf[ipv4::HEADER_LEN..]),
                src.into(),
                dst.into(),
            )
            .unwrap();
        buf
    }

    #[test]
    fn example_is_what_the_library_emits() {
        let hex: String = example_syn().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(example_syn_hex!(), hex);
    }

    #[test]
    fn example_decodes_as_the_help_text_says() {
        let decoded = decode(&example_syn(), false);
        assert_eq!(decoded.failure, None);
        assert_eq!(
            decoded.lines,
            [
                "IPv4 198.18.0.1 > 198.18.0.2 proto=TCP ttl=64 len=40  [header checksum ok]",
                "TCP  49152 \u{2192} 80 [SYN] Seq=439041101 Win=64240 Len=0 MSS=1460 SACK_PERM \
                 TSval=1 TSecr=0 WS=256  [checksum ok]",
            ]
        );
        for line in &decoded.lines {
            assert!(AFTER_LONG_HELP.contains(line.as_str()), "{line}");
        }
    }

    #[test]
    fn no_prefix_of_the_example_panics_or_passes_silently() {
        // Every strict prefix is malformed somewhere: the IPv4 lengths no longer fit.
        let syn = example_syn();
        for len in 1..syn.len() {
            let decoded = decode(&syn[..len], false);
            let failure = decoded.failure.expect("a prefix must fail");
            assert_eq!(failure.layer, "IPv4", "len {len}");
        }
    }

    #[test]
    fn wrong_version_nibble_names_the_nibble() {
        let decoded = decode(&[0x50, 0, 0, 0], false);
        assert!(decoded.lines.is_empty());
        let failure = decoded.failure.unwrap();
        assert_eq!(failure.error, wire::Error::BadVersion);
        assert!(
            failure
                .to_string()
                .starts_with("IP: wrong IP version (version nibble 5;")
        );
    }

    #[test]
    fn bare_segment_says_its_checksum_is_unverified() {
        let syn = example_syn();
        let decoded = decode(&syn[ipv4::HEADER_LEN..], true);
        assert_eq!(decoded.failure, None);
        assert_eq!(decoded.lines.len(), 1);
        assert!(decoded.lines[0].starts_with("TCP  49152 \u{2192} 80 [SYN] Seq=439041101"));
        assert!(
            decoded.lines[0]
                .ends_with("[checksum not verified: no IP header, so no pseudo-header]")
        );
    }

    #[test]
    fn fragments_are_not_decoded_further() {
        let mut syn = example_syn();
        // MF set, offset 0: the first fragment of a larger datagram. Refill the header sum.
        syn[6] |= 0x20;
        ipv4::Packet::new_unchecked(&mut syn[..]).fill_checksum();
        let decoded = decode(&syn, false);
        assert_eq!(decoded.failure, None);
        assert_eq!(
            decoded.lines[1],
            "     fragment id=0x0000 offset=0 MF, not decoded further"
        );
    }

    #[test]
    fn malformed_option_names_layer_and_bytes() {
        let mut syn = example_syn();
        // The MSS option's length byte (IP 20 + TCP 20 + 1) set to 3: wrong for MSS.
        syn[41] = 3;
        let decoded = decode(&syn, false);
        assert_eq!(decoded.lines.len(), 1, "the IPv4 line is still printed");
        let failure = decoded.failure.unwrap();
        assert_eq!(failure.error, wire::Error::BadOption);
        assert!(
            failure
                .to_string()
                .starts_with("TCP: malformed TCP option (option bytes: 02 03 05 b4 "),
            "{failure}"
        );
    }

    #[test]
    fn unknown_payload_protocols_are_named() {
        let mut syn = example_syn();
        syn[9] = 17; // UDP
        ipv4::Packet::new_unchecked(&mut syn[..]).fill_checksum();
        let decoded = decode(&syn, false);
        assert_eq!(decoded.failure, None);
        assert_eq!(
            decoded.lines[1],
            "     40 bytes of UDP, not decoded further"
        );
    }
}
