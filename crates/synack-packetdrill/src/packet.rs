//! Script packets to bytes (inbound) and live bytes to script notation (outbound), with the
//! sequence-space translation upstream packetdrill does ([`SeqSpace`]).

use std::net::IpAddr;

use synack::wire::checksum::{self, Checksum};
use synack::wire::{IpProtocol, ipv4, ipv6, tcp as wtcp};

use crate::ast::{Flags, IpInfo, SeqRange, TcpOption, TcpOptions, TcpPacket};

/// The addresses and ports of the connection a packet line refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
}

pub fn flag_bits(f: &Flags) -> u8 {
    let mut b = 0;
    for (on, bit) in [
        (f.fin, wtcp::Flags::FIN),
        (f.syn, wtcp::Flags::SYN),
        (f.rst, wtcp::Flags::RST),
        (f.psh, wtcp::Flags::PSH),
        (f.ack, wtcp::Flags::ACK),
        (f.urg, wtcp::Flags::URG),
        (f.ece, wtcp::Flags::ECE),
        (f.cwr, wtcp::Flags::CWR),
    ] {
        if on {
            b |= bit.0;
        }
    }
    b
}

/// Flags in script notation: `S.`, `P.`, `F.`, `R`, `.`, `-`.
pub fn flags_text(bits: u8, ae: bool) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (wtcp::Flags::SYN, 'S'),
        (wtcp::Flags::FIN, 'F'),
        (wtcp::Flags::RST, 'R'),
        (wtcp::Flags::PSH, 'P'),
        (wtcp::Flags::URG, 'U'),
        (wtcp::Flags::ECE, 'E'),
        (wtcp::Flags::CWR, 'W'),
    ] {
        if bits & bit.0 != 0 {
            s.push(c);
        }
    }
    if ae {
        s.push('A');
    }
    if bits & wtcp::Flags::ACK.0 != 0 {
        s.push('.');
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// Encodes a script option list verbatim (kinds in the order written). `sack_shift` is added
/// to SACK edges, `ecr` maps a script TS ecr to the live one.
pub fn encode_options(
    opts: &[TcpOption],
    sack_shift: u32,
    ecr: &mut dyn FnMut(u32) -> Result<u32, String>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for o in opts {
        match o {
            TcpOption::Nop => out.push(1),
            TcpOption::Eol => out.push(0),
            TcpOption::Mss(v) => out.extend_from_slice(&[2, 4, (v >> 8) as u8, *v as u8]),
            TcpOption::WindowScale(v) => out.extend_from_slice(&[3, 3, *v]),
            TcpOption::SackPermitted => out.extend_from_slice(&[4, 2]),
            TcpOption::Sack(blocks) => {
                out.extend_from_slice(&[5, (2 + 8 * blocks.len()) as u8]);
                for (l, r) in blocks {
                    out.extend_from_slice(&l.wrapping_add(sack_shift).to_be_bytes());
                    out.extend_from_slice(&r.wrapping_add(sack_shift).to_be_bytes());
                }
            }
            TcpOption::Timestamp { val, ecr: e } => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&val.to_be_bytes());
                out.extend_from_slice(&ecr(*e)?.to_be_bytes());
            }
            TcpOption::FastOpen(cookie) => {
                let c = cookie.as_deref().unwrap_or(&[]);
                out.extend_from_slice(&[34, (2 + c.len()) as u8]);
                out.extend_from_slice(c);
            }
            TcpOption::FastOpenExp(cookie) => {
                let c = cookie.as_deref().unwrap_or(&[]);
                out.extend_from_slice(&[254, (4 + c.len()) as u8, 0xf9, 0x89]);
                out.extend_from_slice(c);
            }
            TcpOption::Md5(sig) => {
                out.extend_from_slice(&[19, (2 + sig.len()) as u8]);
                out.extend_from_slice(sig);
            }
        }
    }
    if out.len() % 4 != 0 {
        return Err(format!(
            "TCP options take {} bytes, not a multiple of 4 (pad with nop)",
            out.len()
        ));
    }
    if out.len() > wtcp::MAX_OPTIONS_LEN {
        return Err(format!(
            "TCP options take {} bytes, more than 40",
            out.len()
        ));
    }
    Ok(out)
}

/// An IP packet around `payload` from `src` to `dst`, of their family: TOS/traffic class and
/// TTL/hop limit from the line's `ip` part, `ident` as IPv4 identification.
pub fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    proto: IpProtocol,
    ip: &IpInfo,
    ident: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut tos = ip.tos.unwrap_or(0);
    if let Some(e) = ip.ecn {
        tos = (tos & !3) | ecn_bits(e);
    }
    let ttl = ip.ttl.unwrap_or(64);
    match (src, dst) {
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut buf = vec![0u8; ipv6::HEADER_LEN + payload.len()];
            let mut r = ipv6::Repr::new(src, dst, proto, payload.len());
            r.hop_limit = ttl;
            let mut p = ipv6::Packet::new_unchecked(&mut buf[..]);
            let _ = r.emit(&mut p);
            p.set_traffic_class(tos);
            p.payload_mut().copy_from_slice(payload);
            buf
        }
        (src, dst) => {
            let (IpAddr::V4(src), IpAddr::V4(dst)) = (src.to_canonical(), dst.to_canonical())
            else {
                return Vec::new();
            };
            let total = ipv4::HEADER_LEN + payload.len();
            let mut buf = vec![0u8; total];
            let mut r = ipv4::Repr::new(src, dst, proto, payload.len());
            r.ttl = ttl;
            r.ident = ident;
            {
                let mut p = ipv4::Packet::new_unchecked(&mut buf[..]);
                let _ = r.emit(&mut p, false);
                p.set_tos(tos);
                p.fill_checksum();
            }
            buf[ipv4::HEADER_LEN..].copy_from_slice(payload);
            buf
        }
    }
}

/// The two IP ECN bits of a script's `[noecn]`, `[ect1]`, `[ect0]`, `[ect01]` (sent as ECT(0))
/// or `[ce]`.
pub(crate) fn ecn_bits(e: crate::ast::Ecn) -> u8 {
    use crate::ast::Ecn::*;
    match e {
        NoEcn => 0,
        Ect1 => 1,
        Ect0 | Ect01 => 2,
        Ce => 3,
    }
}

/// A TCP segment (header, options, `len` zero bytes of payload) with its checksum.
#[allow(clippy::too_many_arguments)]
pub fn tcp_segment(
    t: &Tuple,
    bits: u8,
    seq: u32,
    ack: u32,
    win: u16,
    urg: u16,
    options: &[u8],
    len: usize,
) -> Vec<u8> {
    let hl = wtcp::HEADER_LEN + options.len();
    let mut buf = vec![0u8; hl + len];
    buf[0..2].copy_from_slice(&t.remote_port.to_be_bytes());
    buf[2..4].copy_from_slice(&t.local_port.to_be_bytes());
    buf[4..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..12].copy_from_slice(&ack.to_be_bytes());
    buf[12] = ((hl / 4) as u8) << 4;
    buf[13] = bits;
    buf[14..16].copy_from_slice(&win.to_be_bytes());
    buf[18..20].copy_from_slice(&urg.to_be_bytes());
    buf[wtcp::HEADER_LEN..hl].copy_from_slice(options);
    let mut c: Checksum =
        checksum::pseudo_header(t.remote, t.local, IpProtocol::Tcp, buf.len() as u32);
    c.add_bytes(&buf);
    let sum = c.finish();
    buf[16..18].copy_from_slice(&sum.to_be_bytes());
    buf
}

/// How script sequence numbers map to live ones on the connection under test, exactly as upstream
/// packetdrill keeps them per socket (`socket.h`, `run_packet.c` of commit 2c4001c):
///
/// - on a SYN (or SYN-ACK), the peer's numbers are absolute and ours are shifted by
///   (live ISN − script ISN);
/// - on every other segment both are relative: a script `seq`, `ack` or SACK edge N stands for
///   ISN + N, the peer's ISN being what its SYN (passive) or first SYN-ACK (active) said.
///
/// So after `< S 1000:1000(0)`, the peer's next segment is written `< . 1:1(0)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqSpace {
    /// Our ISN as the script's outbound SYN or SYN-ACK wrote it.
    pub script_local_isn: u32,
    /// Our ISN on the wire.
    pub live_local_isn: u32,
    /// Both local ISNs are known (set once per connection, from its first SYN or SYN-ACK line).
    pub local_known: bool,
    /// The peer's ISN (the same in the script and on the wire).
    pub remote_isn: u32,
    /// An active open whose first SYN-ACK has not arrived: that one sets `remote_isn`.
    pub awaiting_synack: bool,
}

impl SeqSpace {
    /// Live minus script for numbers in our sequence space (seq we send, ack and SACK we
    /// receive) on a segment with or without SYN.
    pub fn local(&self, syn: bool) -> u32 {
        if syn {
            self.live_local_isn.wrapping_sub(self.script_local_isn)
        } else {
            self.live_local_isn
        }
    }

    /// Live minus script for numbers in the peer's space (seq it sends, ack and SACK we send).
    pub fn remote(&self, syn: bool) -> u32 {
        if syn { 0 } else { self.remote_isn }
    }
}

/// One outbound segment as the runner sees it: fields in the script's spaces.
#[derive(Debug, Clone)]
pub struct Live {
    pub bits: u8,
    pub ae: bool,
    /// In script space ([`SeqSpace`]), like `ack` and the SACK edges in `options`.
    pub seq: u32,
    pub len: u32,
    pub ack: u32,
    pub win: u16,
    pub urg: u16,
    pub options: Vec<u8>,
    pub tos: u8,
    pub ttl: u8,
}

impl Live {
    /// Script notation, as a `>` line would say it.
    pub fn text(&self) -> String {
        self.text_with(true)
    }

    /// Script notation with or without the window (a `>` line without `win` leaves it
    /// unchecked).
    pub fn text_with(&self, window: bool) -> String {
        let mut s = format!(
            "{} {}:{}({})",
            flags_text(self.bits, self.ae),
            self.seq,
            self.seq.wrapping_add(self.len),
            self.len
        );
        if self.bits & wtcp::Flags::ACK.0 != 0 || self.ack != 0 {
            s.push_str(&format!(" ack {}", self.ack));
        }
        if window {
            s.push_str(&format!(" win {}", self.win));
        }
        if self.urg != 0 {
            s.push_str(&format!(" urg {}", self.urg));
        }
        if !self.options.is_empty() {
            s.push_str(&format!(" <{}>", options_text(&self.options)));
        }
        s
    }
}

/// Options in script notation.
pub fn options_text(bytes: &[u8]) -> String {
    let mut parts = Vec::new();
    for o in wtcp::OptionsIter::new(bytes) {
        parts.push(match o {
            Ok(wtcp::TcpOption::EndOfList) => "eol".to_string(),
            Ok(wtcp::TcpOption::NoOperation) => "nop".to_string(),
            Ok(wtcp::TcpOption::Mss(v)) => format!("mss {v}"),
            Ok(wtcp::TcpOption::WindowScale(v)) => format!("wscale {v}"),
            Ok(wtcp::TcpOption::SackPermitted) => "sackOK".to_string(),
            Ok(wtcp::TcpOption::Sack(b)) => {
                let edges: Vec<String> = b
                    .as_slice()
                    .iter()
                    .map(|(l, r)| format!("{}:{}", l.0, r.0))
                    .collect();
                format!("sack {}", edges.join(" "))
            }
            Ok(wtcp::TcpOption::Timestamps { tsval, tsecr }) => {
                format!("TS val {tsval} ecr {tsecr}")
            }
            Ok(wtcp::TcpOption::FastOpen {
                experimental,
                cookie,
            }) => {
                let name = if experimental { "FOEXP" } else { "FO" };
                let hex: String = cookie.iter().map(|b| format!("{b:02x}")).collect();
                if hex.is_empty() {
                    name.to_string()
                } else {
                    format!("{name} {hex}")
                }
            }
            Ok(wtcp::TcpOption::Unknown { kind, data }) => {
                format!("kind {kind} len {}", data.len() + 2)
            }
            Err(e) => format!("<malformed: {e}>"),
        });
    }
    parts.join(",")
}

/// Parses an emitted IPv4 or IPv6 TCP packet, its numbers translated to script space by
/// `space`. `None` if it is not TCP.
pub fn parse_live(bytes: &[u8], space: &SeqSpace) -> Option<(Tuple, Live, Vec<u8>)> {
    let (src, dst, payload, tos, ttl) = match bytes.first()? >> 4 {
        6 => {
            let ip = ipv6::Packet::new_checked(bytes).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            let end = ipv6::HEADER_LEN + ip.payload().len();
            (
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
                &bytes[ipv6::HEADER_LEN..end],
                ip.traffic_class(),
                ip.hop_limit(),
            )
        }
        _ => {
            let ip = ipv4::Packet::new_checked(bytes).ok()?;
            if ip.protocol() != IpProtocol::Tcp {
                return None;
            }
            let start = ip.header_len();
            (
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
                &bytes[start..start + ip.payload().len()],
                ip.tos(),
                ip.ttl(),
            )
        }
    };
    let tcp = wtcp::Packet::new_checked(payload).ok()?;
    let t = Tuple {
        local: src,
        local_port: tcp.src_port(),
        remote: dst,
        remote_port: tcp.dst_port(),
    };
    let syn = tcp.flags().0 & wtcp::Flags::SYN.0 != 0;
    let mut options = tcp.options().to_vec();
    shift_sack_edges(&mut options, space.remote(syn).wrapping_neg());
    let live = Live {
        bits: tcp.flags().0,
        ae: tcp.reserved() & 1 != 0,
        seq: tcp.seq_number().0.wrapping_sub(space.local(syn)),
        len: tcp.payload().len() as u32,
        // Upstream translates the ack field only when the ACK bit is set.
        ack: if tcp.flags().0 & wtcp::Flags::ACK.0 != 0 {
            tcp.ack_number().0.wrapping_sub(space.remote(syn))
        } else {
            tcp.ack_number().0
        },
        win: tcp.window_len(),
        urg: tcp.urgent_at(),
        options,
        tos,
        ttl,
    };
    Some((t, live, tcp.payload().to_vec()))
}

/// Adds `by` to every SACK edge in an encoded option list (malformed lists are left alone).
fn shift_sack_edges(opts: &mut [u8], by: u32) {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return,
            1 => i += 1,
            kind => {
                let Some(&len) = opts.get(i + 1) else { return };
                let len = len as usize;
                if len < 2 || i + len > opts.len() {
                    return;
                }
                if kind == 5 {
                    for edge in opts[i + 2..i + len].chunks_exact_mut(4) {
                        let v = u32::from_be_bytes([edge[0], edge[1], edge[2], edge[3]]);
                        edge.copy_from_slice(&v.wrapping_add(by).to_be_bytes());
                    }
                }
                i += len;
            }
        }
    }
}

/// The options of `expected` against the live bytes (SUBSET.md §5.3): same kinds in the same
/// order, same values except TS (val checked by `ts_val`, ecr never).
pub fn compare_options(
    expected: &Option<TcpOptions>,
    live: &[u8],
    ts_val: &mut dyn FnMut(u32, u32) -> Result<(), String>,
) -> Result<(), String> {
    let list = match expected {
        None if live.is_empty() => return Ok(()),
        None => return Err("expected no TCP options".into()),
        Some(TcpOptions::Any) => return Ok(()),
        Some(TcpOptions::List(l)) => l,
    };
    let live_opts: Vec<_> = wtcp::OptionsIter::new(live)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("malformed live options: {e}"))?;
    if live_opts.len() != list.len() {
        return Err(format!(
            "expected {} TCP options, live packet has {}",
            list.len(),
            live_opts.len()
        ));
    }
    for (i, (e, l)) in list.iter().zip(&live_opts).enumerate() {
        let ok = match (e, l) {
            (TcpOption::Nop, wtcp::TcpOption::NoOperation) => true,
            (TcpOption::Eol, wtcp::TcpOption::EndOfList) => true,
            (TcpOption::Mss(a), wtcp::TcpOption::Mss(b)) => a == b,
            (TcpOption::WindowScale(a), wtcp::TcpOption::WindowScale(b)) => a == b,
            (TcpOption::SackPermitted, wtcp::TcpOption::SackPermitted) => true,
            (TcpOption::Sack(a), wtcp::TcpOption::Sack(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.as_slice())
                        .all(|(x, y)| x.0 == y.0.0 && x.1 == y.1.0)
            }
            (TcpOption::Timestamp { val, .. }, wtcp::TcpOption::Timestamps { tsval, .. }) => {
                ts_val(*val, *tsval)?;
                true
            }
            (
                TcpOption::FastOpen(c),
                wtcp::TcpOption::FastOpen {
                    experimental: false,
                    cookie,
                },
            )
            | (
                TcpOption::FastOpenExp(c),
                wtcp::TcpOption::FastOpen {
                    experimental: true,
                    cookie,
                },
            ) => c.as_deref().unwrap_or(&[]) == *cookie,
            _ => false,
        };
        if !ok {
            return Err(format!("TCP option {} differs", i + 1));
        }
    }
    Ok(())
}

/// The `start:end(len)` text of a range.
pub fn range_text(r: &SeqRange) -> String {
    format!("{}:{}({})", r.start, r.end, r.len)
}

/// A script TCP line in canonical notation (for messages).
pub fn script_text(p: &TcpPacket) -> String {
    let mut s = format!(
        "{} {}",
        flags_text(flag_bits(&p.flags), p.flags.ae),
        range_text(&p.seq)
    );
    if let Some(a) = p.ack {
        s.push_str(&format!(" ack {a}"));
    }
    if let Some(w) = p.win {
        s.push_str(&format!(" win {w}"));
    }
    if let Some(u) = p.urg {
        s.push_str(&format!(" urg {u}"));
    }
    match &p.options {
        None => {}
        Some(TcpOptions::Any) => s.push_str(" <...>"),
        Some(TcpOptions::List(l)) => {
            let parts: Vec<String> = l
                .iter()
                .map(|o| match o {
                    TcpOption::Nop => "nop".into(),
                    TcpOption::Eol => "eol".into(),
                    TcpOption::Mss(v) => format!("mss {v}"),
                    TcpOption::WindowScale(v) => format!("wscale {v}"),
                    TcpOption::SackPermitted => "sackOK".into(),
                    TcpOption::Sack(b) => format!(
                        "sack {}",
                        b.iter()
                            .map(|(l, r)| format!("{l}:{r}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    TcpOption::Timestamp { val, ecr } => format!("TS val {val} ecr {ecr}"),
                    TcpOption::FastOpen(_) => "FO".into(),
                    TcpOption::FastOpenExp(_) => "FOEXP".into(),
                    TcpOption::Md5(_) => "md5".into(),
                })
                .collect();
            s.push_str(&format!(" <{}>", parts.join(",")));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_encoded_in_script_order_with_translation() {
        let opts = [
            TcpOption::Nop,
            TcpOption::Nop,
            TcpOption::Timestamp { val: 7, ecr: 100 },
            TcpOption::Nop,
            TcpOption::Nop,
            TcpOption::Sack(vec![(1001, 2001)]),
        ];
        let b = encode_options(&opts, 10, &mut |e| Ok(e + 1)).unwrap();
        assert_eq!(&b[..4], &[1, 1, 8, 10]);
        assert_eq!(&b[4..8], &7u32.to_be_bytes());
        assert_eq!(&b[8..12], &101u32.to_be_bytes());
        assert_eq!(&b[12..16], &[1, 1, 5, 10]);
        assert_eq!(&b[16..20], &1011u32.to_be_bytes());
        assert_eq!(
            options_text(&b),
            "nop,nop,TS val 7 ecr 101,nop,nop,sack 1011:2011"
        );
        let e = encode_options(&[TcpOption::Mss(1), TcpOption::Nop], 0, &mut Ok).unwrap_err();
        assert!(e.contains("multiple of 4"), "{e}");
    }

    #[test]
    fn built_segment_parses_back_with_valid_checksums() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let v4 = (
            IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        );
        let v6 = (
            IpAddr::V6(Ipv6Addr::new(0xfd3d, 0xa0b, 0x17d6, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd3d, 0xfa7b, 0xd17d, 0, 0, 0, 0, 1)),
        );
        for (local, remote) in [v4, v6] {
            let t = Tuple {
                local,
                local_port: 8080,
                remote,
                remote_port: 40000,
            };
            let seg = tcp_segment(&t, 0x18, 5, 9, 257, 0, &[1, 1, 1, 1], 100);
            let ip = ip_packet(
                t.remote,
                t.local,
                IpProtocol::Tcp,
                &IpInfo::default(),
                1,
                &seg,
            );
            let (tu, live, payload) = parse_live(&ip, &SeqSpace::default()).unwrap();
            assert_eq!(
                (tu.local, tu.remote),
                (remote, local),
                "seen from the sender"
            );
            assert_eq!((live.seq, live.ack, live.win, live.ttl), (5, 9, 257, 64));
            assert_eq!(payload.len(), 100);
            assert_eq!(flags_text(live.bits, false), "P.");
            let hl = if local.is_ipv4() { 20 } else { 40 };
            let tcp = wtcp::Packet::new_checked(&ip[hl..]).unwrap();
            assert!(tcp.verify_checksum(t.remote, t.local));
            if local.is_ipv4() {
                assert!(
                    ipv4::Packet::new_checked(&ip[..])
                        .unwrap()
                        .verify_checksum()
                );
            }
        }
    }
}
