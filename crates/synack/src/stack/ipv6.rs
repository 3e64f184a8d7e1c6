//! IPv6 input (RFC 8200): the fixed header and address checks, a bounded walk over the
//! extension headers in the order §4.1 gives them, fragments into reassembly (§4.5,
//! `fragments.rs`), and dispatch to TCP and ICMPv6. What is not understood is answered as
//! §4 says: an unrecognized Next Header with ICMPv6 parameter problem code 1, an option whose
//! type says so with code 2 (§4.2), a Routing header with segments left with code 0 (§4.4;
//! a host routes no further, RFC 5095).
//!
//! No neighbour discovery: the stack runs on layer-3 links (TUN, SimNet), where there are no
//! link-layer addresses to resolve; NDP and MLD messages are counted and dropped.

use core::net::IpAddr;

use super::Stack;
use super::fragments::{Drop, Fragment, Key, Outcome};
use super::ipv4::min_first_fragment;
use crate::time::Instant;
use crate::wire::icmpv6::ParamProblem;
use crate::wire::ipv6ext::{
    self, Chain, FRAG_OFFSET_FIELD, FRAGMENT_HEADER_LEN, FragmentHeader, Options, Routing,
    UnknownOption,
};
use crate::wire::{IpProtocol, ipv6};

/// Offset of the fixed header's Next Header field.
const FIXED_NEXT_HEADER: usize = 6;
/// Offset of the fixed header's Payload Length field.
const PAYLOAD_LEN_FIELD: usize = 4;

/// Where the walk over a packet's headers is.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// The Next Header value being looked at.
    next: u8,
    /// Offset, from the start of the packet, of the header it names.
    at: usize,
    /// Offset of the field that holds `next` (what a parameter problem points at).
    named_at: usize,
}

impl Stack {
    pub(super) fn ipv6_input(&mut self, now: Instant, bytes: &[u8]) {
        self.counters.ip6_in_receives += 1;
        let packet = match ipv6::Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(_) => {
                self.counters.ip6_in_hdr_errors += 1;
                return self.trace_drop(now, "IPv6 header truncated or bad length", bytes);
            }
        };
        let (src, dst) = (packet.src_addr(), packet.dst_addr());
        // RFC 4291 §2.5.2, §2.7: the unspecified and multicast addresses are never a source;
        // our own address as a source is a loop. We answer our unicast addresses only.
        let bad_src = src.is_unspecified()
            || src.is_multicast()
            || src.is_loopback()
            || self.is_local(IpAddr::V6(src));
        if !self.accepts(IpAddr::V6(dst)) || bad_src {
            self.counters.ip6_in_addr_errors += 1;
            return self.trace_drop(now, "not for us, or impossible source address", bytes);
        }
        // Bytes after the payload (link padding) are not part of the packet.
        let len = ipv6::HEADER_LEN + usize::from(packet.payload_len());
        let cursor = Cursor {
            next: u8::from(packet.next_header()),
            at: ipv6::HEADER_LEN,
            named_at: FIXED_NEXT_HEADER,
        };
        self.ipv6_headers(now, &bytes[..len], cursor, false);
    }

    /// RFC 8200 §4.1: the headers in order, from `c`, to the upper layer. `reassembled` is
    /// set for a datagram built from fragments (which may not hold another Fragment header).
    fn ipv6_headers(&mut self, now: Instant, bytes: &[u8], mut c: Cursor, reassembled: bool) {
        for _ in 0..=ipv6ext::MAX_HEADERS {
            match IpProtocol::from(c.next) {
                IpProtocol::Tcp => {
                    let (src, dst) = addrs(bytes);
                    let ecn = super::egress::ecn_of(bytes);
                    return self.handle_tcp(now, src, dst, &bytes[c.at..], bytes, ecn);
                }
                IpProtocol::Icmpv6 => return self.handle_icmpv6(now, bytes, c.at),
                IpProtocol::NoNextHeader => {
                    // §4.7: nothing follows; the packet ends here.
                    return self.trace_drop(now, "IPv6 no next header", bytes);
                }
                IpProtocol::Udp => {
                    let (src, dst) = addrs(bytes);
                    return self.handle_udp(now, src, dst, &bytes[c.at..], bytes);
                }
                IpProtocol::HopByHop if c.at != ipv6::HEADER_LEN => {
                    // §4.1: Hop-by-Hop comes first or not at all.
                    return self.unknown_next_header(now, bytes, c);
                }
                IpProtocol::HopByHop | IpProtocol::DestOpts => {
                    let Some(h) = self.ext_header(now, bytes, c) else {
                        return;
                    };
                    if !self.ipv6_options(now, bytes, c.at, h) {
                        return;
                    }
                }
                IpProtocol::Routing => {
                    let Some(h) = self.ext_header(now, bytes, c) else {
                        return;
                    };
                    let Ok(r) = Routing::parse(h) else {
                        self.counters.ip6_in_hdr_errors += 1;
                        return self.trace_drop(now, "IPv6 routing header truncated", bytes);
                    };
                    if r.segments_left != 0 {
                        // §4.4: a routing type we do not know (all of them, for a host) with
                        // segments left: parameter problem at the Routing Type.
                        self.counters.ip6_in_hdr_errors += 1;
                        let pointer = c.at + Routing::TYPE_OFFSET;
                        self.trace_drop(now, "IPv6 routing header with segments left", bytes);
                        return self.send_param_problem(
                            now,
                            bytes,
                            ParamProblem::ErroneousHeaderField,
                            pointer,
                        );
                    }
                }
                IpProtocol::Fragment => {
                    if reassembled {
                        self.counters.ip6_reasm_fails += 1;
                        return self.trace_drop(
                            now,
                            "fragment inside a reassembled datagram",
                            bytes,
                        );
                    }
                    match self.ipv6_fragment(now, bytes, c) {
                        // An atomic fragment (offset 0, no more): on with the next header.
                        Some(next) => {
                            c = next;
                            continue;
                        }
                        None => return,
                    }
                }
                _ => return self.unknown_next_header(now, bytes, c),
            }
            // Step over the extension header just processed.
            let len = ipv6ext::header_len(c.next, &bytes[c.at..]).unwrap_or(bytes.len());
            c = Cursor {
                next: bytes[c.at],
                at: c.at.saturating_add(len),
                named_at: c.at,
            };
        }
        self.counters.ip6_in_hdr_errors += 1;
        self.trace_drop(now, "too many IPv6 extension headers", bytes);
    }

    /// The extension header at `c`, if it is all there.
    fn ext_header<'a>(&mut self, now: Instant, bytes: &'a [u8], c: Cursor) -> Option<&'a [u8]> {
        let rest = &bytes[c.at.min(bytes.len())..];
        match ipv6ext::header_len(c.next, rest) {
            Ok(n) if n <= rest.len() => Some(&rest[..n]),
            _ => {
                self.counters.ip6_in_hdr_errors += 1;
                self.trace_drop(now, "IPv6 extension header truncated", bytes);
                None
            }
        }
    }

    /// RFC 8200 §4.2: the options of a Hop-by-Hop or Destination Options header at `at`.
    /// Pad1 and PadN are skipped, and so is every other option (none is acted on here) whose
    /// type's two high-order bits say so; otherwise the packet is discarded, with a parameter
    /// problem (code 2, pointing at the option type) where the bits ask for one. False if the
    /// packet is gone.
    fn ipv6_options(&mut self, now: Instant, bytes: &[u8], at: usize, header: &[u8]) -> bool {
        for opt in Options::new(header) {
            let Ok(opt) = opt else {
                self.counters.ip6_in_hdr_errors += 1;
                self.trace_drop(now, "IPv6 option runs past its header", bytes);
                return false;
            };
            if matches!(opt.kind, ipv6ext::OPT_PAD1 | ipv6ext::OPT_PADN) {
                continue;
            }
            let report = match opt.unknown_action() {
                UnknownOption::Skip => continue,
                UnknownOption::Discard => false,
                // Our destination is always one of our unicast addresses.
                UnknownOption::DiscardAndReport
                | UnknownOption::DiscardAndReportUnlessMulticast => true,
            };
            self.counters.ip6_in_discards += 1;
            self.trace_drop(now, "IPv6 option not recognized", bytes);
            if report {
                let pointer = at + opt.offset;
                self.send_param_problem(now, bytes, ParamProblem::UnrecognizedOption, pointer);
            }
            return false;
        }
        true
    }

    /// §4.1: "an unrecognized Next Header value": parameter problem code 1, pointing at it.
    fn unknown_next_header(&mut self, now: Instant, bytes: &[u8], c: Cursor) {
        self.counters.ip6_in_unknown_protos += 1;
        self.trace_drop(now, "IPv6 next header not recognized", bytes);
        self.send_param_problem(now, bytes, ParamProblem::UnrecognizedNextHeader, c.named_at);
    }

    /// RFC 8200 §4.5: a Fragment header at `c`. Returns where to go on for an atomic fragment
    /// (offset 0, M clear: the whole packet, RFC 6946), `None` once the fragment is queued,
    /// dropped, or has completed a datagram that went its way.
    fn ipv6_fragment(&mut self, now: Instant, bytes: &[u8], c: Cursor) -> Option<Cursor> {
        self.counters.ip6_reasm_reqds += 1;
        let Ok(fh) = FragmentHeader::new_checked(&bytes[c.at..]) else {
            self.counters.ip6_in_hdr_errors += 1;
            self.counters.ip6_reasm_fails += 1;
            self.trace_drop(now, "IPv6 fragment header truncated", bytes);
            return None;
        };
        let (offset, more) = (usize::from(fh.frag_offset()), fh.more_frags());
        let data_at = c.at + FRAGMENT_HEADER_LEN;
        if offset == 0 && !more {
            self.counters.ip6_reasm_oks += 1;
            return Some(Cursor {
                next: u8::from(fh.next_header()),
                at: data_at,
                named_at: c.at,
            });
        }
        let payload = &bytes[data_at..];
        if offset == 0 && !headers_complete(u8::from(fh.next_header()), payload) {
            // RFC 8200 §4.5 (RFC 7112): the first fragment must hold every header up to and
            // including the upper-layer one; parameter problem code 3, pointer 0.
            self.counters.ip6_in_hdr_errors += 1;
            self.trace_drop(
                now,
                "first fragment without the whole header chain (RFC 7112)",
                bytes,
            );
            self.send_param_problem(now, bytes, ParamProblem::IncompleteHeaderChain, 0);
            return None;
        }
        if offset + payload.len() > usize::from(u16::MAX) {
            // §4.5: past the largest datagram: parameter problem at the Fragment Offset.
            self.counters.ip6_in_hdr_errors += 1;
            self.trace_drop(now, "fragment ends past 65535", bytes);
            let pointer = c.at + FRAG_OFFSET_FIELD;
            self.send_param_problem(now, bytes, ParamProblem::ErroneousHeaderField, pointer);
            return None;
        }
        if more && payload.len() % 8 != 0 {
            // §4.5: every fragment but the last carries a multiple of 8 octets; parameter
            // problem at the Payload Length.
            self.counters.ip6_in_hdr_errors += 1;
            self.trace_drop(now, "fragment length not a multiple of 8", bytes);
            self.send_param_problem(
                now,
                bytes,
                ParamProblem::ErroneousHeaderField,
                PAYLOAD_LEN_FIELD,
            );
            return None;
        }
        let (src, dst) = addrs(bytes);
        let f = Fragment {
            key: Key {
                src,
                dst,
                ident: fh.ident(),
                protocol: 0,
            },
            offset,
            more,
            payload,
            header: &bytes[..data_at],
        };
        let dg = match self.frags6.insert(now, &f) {
            Outcome::Queued => return None,
            Outcome::Duplicate => {
                self.trace_drop(now, "duplicate fragment", bytes);
                return None;
            }
            Outcome::Dropped(d) => {
                self.counters.ip6_reasm_fails += 1;
                if d == Drop::Overlap {
                    self.counters.ip6_reasm_overlaps += 1;
                }
                self.trace_drop(now, d.reason(), bytes);
                return None;
            }
            Outcome::Complete(dg) => dg,
        };
        // Whether the device checked the fragment that completed it says nothing of the
        // others: the datagram's checksum is verified.
        self.rx_checksummed = false;
        let fragments = dg.fragments;
        let Some((packet, next)) = unfragment(dg.bytes, dg.header_len) else {
            self.counters.ip6_reasm_fails += 1;
            self.trace_drop(now, "reassembled datagram over 65535 bytes", bytes);
            return None;
        };
        self.counters.ip6_reasm_oks += 1;
        if self.trace_on() {
            let text = format!("reassembled {fragments} fragments: {} bytes", packet.len());
            self.trace_note(now, text);
        }
        self.ipv6_headers(now, &packet, next, true);
        None
    }
}

/// Source and destination of a packet whose fixed header has been checked.
fn addrs(bytes: &[u8]) -> (IpAddr, IpAddr) {
    let p = ipv6::Packet::new_unchecked(bytes);
    (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()))
}

/// Whether a first fragment's data (starting with header `next`) holds every extension
/// header and the upper-layer header's first bytes (Linux `ipv6frag_thdr_truncated`).
fn headers_complete(next: u8, data: &[u8]) -> bool {
    match Chain::walk(next, data) {
        Ok(c) => {
            let need = min_first_fragment(IpProtocol::from(c.upper));
            c.upper_offset + need <= data.len()
        }
        Err(_) => false,
    }
}

/// RFC 8200 §4.5 reassembly, the last step: fragment 0's headers (up to and including its
/// Fragment header, `header_len` bytes) and the data become one packet without the Fragment
/// header, its Payload Length the whole, and the header before names what the Fragment header
/// named. Returns the packet and where its walk goes on; `None` over 65535 bytes.
fn unfragment(mut bytes: Vec<u8>, header_len: usize) -> Option<(Vec<u8>, Cursor)> {
    let frag_at = header_len.checked_sub(FRAGMENT_HEADER_LEN)?;
    // The field naming the Fragment header: the fixed header's, or that of the last
    // extension header before it (each is at least 8 bytes long: a bounded walk).
    let mut named_at = FIXED_NEXT_HEADER;
    let mut kind = *bytes.get(FIXED_NEXT_HEADER)?;
    let mut at = ipv6::HEADER_LEN;
    while at < frag_at {
        let len = ipv6ext::header_len(kind, bytes.get(at..frag_at)?).ok()?;
        named_at = at;
        kind = bytes[at];
        at += len;
    }
    if at != frag_at {
        return None;
    }
    let next = bytes[frag_at];
    bytes[named_at] = next;
    bytes.drain(frag_at..header_len);
    let payload_len = u16::try_from(bytes.len() - ipv6::HEADER_LEN).ok()?;
    ipv6::Packet::new_unchecked(&mut bytes[..]).set_payload_len(payload_len);
    Some((
        bytes,
        Cursor {
            next,
            at: frag_at,
            named_at,
        },
    ))
}
