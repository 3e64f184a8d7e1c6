//! The pieces of the three-way handshake (RFC 9293 §3.5) that live outside one TCB:
//!
//! * [`syn_options`]: the options of our SYN and SYN-ACK. It is the one place that decides
//!   them, for the connection's own SYN and SYN-ACK ([`Connection`](super::Connection)'s
//!   output) and for the SYN-ACKs the stack sends from its SYN queue or with a SYN cookie; the
//!   byte layout is [`Options::emit`]'s.
//! * [`SynAck`]: a SYN-ACK the stack owes a peer, written straight into the caller's buffer.
//! * [`Handshake`]: what a passive handshake negotiated (both ISNs and the peer's SYN options),
//!   which is all a SYN-queue entry keeps and all a SYN cookie carries; on the ACK that
//!   completes the handshake, [`Connection::from_handshake`](super::Connection::from_handshake)
//!   builds the connection from it.

use core::net::SocketAddr;

use super::config::Config;
use super::seq::SeqNum;
use crate::time::Instant;
use crate::wire::tcp::{Flags, Options, Packet, Repr, Timestamps};

/// Which options the peer's SYN offered (for a SYN-ACK, which answers only those).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offer {
    pub window_scale: bool,
    pub sack_permitted: bool,
    pub timestamps: bool,
    /// The SYN asked for ECN (ECE and CWR, RFC 3168 §6.1.1).
    pub ecn: bool,
}

/// The options of a SYN (`offer` is `None`: everything `cfg` enables) or of a SYN-ACK (only
/// what the peer's SYN offered and `cfg` enables; RFC 7323 §1.3, §2.2, §3.2; RFC 2018 §2).
/// `mss` is the MSS we announce (RFC 9293 §3.7.1), `rcv_shift` our window scale shift,
/// `tsval`/`tsecr` the timestamps to carry if timestamps are on (TSecr is zero on a SYN).
pub fn syn_options(
    cfg: &Config,
    mss: u32,
    rcv_shift: u8,
    offer: Option<Offer>,
    tsval: u32,
    tsecr: u32,
) -> Options {
    let answer = |offered: fn(&Offer) -> bool| offer.as_ref().is_none_or(offered);
    let mut options = Options {
        mss: Some(mss.min(u16::MAX as u32) as u16),
        ..Options::default()
    };
    if cfg.window_scaling && answer(|o| o.window_scale) {
        options.window_scale = Some(rcv_shift);
    }
    options.sack_permitted = cfg.sack && answer(|o| o.sack_permitted);
    if cfg.timestamps && answer(|o| o.timestamps) {
        options.timestamps = Some(Timestamps { tsval, tsecr });
    }
    options
}

/// The window a SYN-ACK answering `hs` advertises, never scaled (RFC 7323 §2.2), when we
/// announce `mss`: Linux's initial window ([`rwnd::initial_window`](super::rwnd::initial_window),
/// whole segments of `mss` less the timestamp option if the handshake negotiates it) up to 65535.
/// The window offered in full from the first scaled ACK is [`passive_window`].
pub fn syn_window(cfg: &Config, mss: u32, hs: &Handshake) -> u16 {
    passive_window(cfg, mss, hs).min(u16::MAX as u32) as u16
}

/// The receive window of a passive open answering `hs` with our MSS `mss` (Linux
/// `tcp_openreq_init_rwin`: `rsk_rcv_wnd`), counted from RCV.NXT, within what a window field
/// at the negotiated scale can say (as a connection's `open_receive_window` bounds it).
pub fn passive_window(cfg: &Config, mss: u32, hs: &Handshake) -> u32 {
    let shift = match hs.window_scale {
        Some(_) if cfg.window_scaling => cfg.our_window_shift(),
        _ => 0,
    };
    super::rwnd::initial_window(cfg, passive_rounding_mss(cfg, mss, hs.ts_recent.is_some()))
        .min((u16::MAX as u32) << shift)
}

/// The segment size a passive open rounds its initial window to: our MSS less the timestamp
/// option when the handshake negotiates timestamps (Linux `tcp_openreq_init_rwin`).
pub fn passive_rounding_mss(cfg: &Config, mss: u32, peer_timestamps: bool) -> u32 {
    if cfg.timestamps && peer_timestamps {
        mss.saturating_sub(12)
    } else {
        mss
    }
}

/// Our timestamp clock for a connection: milliseconds plus its offset (RFC 7323 §5.4), as the
/// connection itself computes it.
pub fn ts_clock(now: Instant, offset: u32) -> u32 {
    (now.total_millis() as u32).wrapping_add(offset)
}

/// A SYN-ACK `<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>` (RFC 9293 §3.10.7.2) that the stack sends
/// for a half-open connection it keeps no TCB for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAck {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub iss: SeqNum,
    /// The peer's ISN plus one.
    pub ack: SeqNum,
    pub window: u16,
    pub options: Options,
    /// An ECN-setup SYN-ACK (ECE; RFC 3168 §6.1.1).
    pub ece: bool,
}

impl SynAck {
    /// The SYN-ACK answering the SYN `hs` describes, with the options [`syn_options`] picks.
    pub fn new(
        cfg: &Config,
        local: SocketAddr,
        remote: SocketAddr,
        hs: &Handshake,
        mss: u16,
        tsval: u32,
    ) -> SynAck {
        let rcv_shift = if cfg.window_scaling {
            cfg.our_window_shift()
        } else {
            0
        };
        let tsecr = hs.ts_recent.unwrap_or(0);
        SynAck {
            local,
            remote,
            iss: hs.iss,
            ack: hs.irs + 1u32,
            window: syn_window(cfg, mss as u32, hs),
            options: syn_options(cfg, mss as u32, rcv_shift, Some(hs.offer()), tsval, tsecr),
            ece: hs.ecn && cfg.ecn.accepts(),
        }
    }

    /// The length of the TCP segment [`write`](Self::write) writes.
    pub fn len(&self) -> usize {
        self.repr().header_len()
    }

    /// Writes the TCP segment (checksum filled in) into `buf`; `None` if it does not fit.
    /// Every SYN-ACK `new` makes (an MSS option, no Fast Open cookie, no SACK blocks) is
    /// written by [`write_plain_syn`]; anything else through the general
    /// [`Repr`] emitter, which writes the same bytes for those (`a_plain_synack_is_written_
    /// as_the_general_emitter_writes_it` compares them).
    #[inline]
    pub fn write(&self, buf: &mut [u8]) -> Option<usize> {
        match self.options.mss {
            Some(mss) if self.options.fast_open.is_none() && self.options.sack.is_empty() => {
                self.write_plain(mss, buf)
            }
            _ => self.write_general(buf),
        }
    }

    /// The SYN-ACK by [`write_plain_syn`].
    fn write_plain(&self, mss: u16, buf: &mut [u8]) -> Option<usize> {
        let f = SynFields {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.iss,
            ack: self.ack,
            flags: self.flags(),
            window: self.window,
        };
        write_plain_syn(
            buf,
            self.local.ip(),
            self.remote.ip(),
            &f,
            mss,
            &self.options,
        )
    }

    /// [`write`](Self::write) through the general emitter: any options.
    pub(crate) fn write_general(&self, buf: &mut [u8]) -> Option<usize> {
        let repr = self.repr();
        let len = repr.header_len();
        let mut packet = Packet::new_unchecked(buf.get_mut(..len)?);
        repr.emit_header(&mut packet).ok()?;
        packet.fill_checksum(self.local.ip(), self.remote.ip());
        Some(len)
    }

    fn flags(&self) -> Flags {
        if self.ece {
            Flags::SYN | Flags::ACK | Flags::ECE
        } else {
            Flags::SYN | Flags::ACK
        }
    }

    fn repr(&self) -> Repr<'static> {
        Repr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.iss,
            ack: self.ack,
            flags: self.flags(),
            window: self.window,
            urgent: 0,
            options: self.options,
            payload: &[],
        }
    }
}

/// The fields of a SYN or SYN-ACK header besides its options (no urgent pointer, no data).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SynFields {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: Flags,
    pub window: u16,
}

/// Writes a SYN or SYN-ACK without data from `src` to `dst` (checksum filled in) into `buf`
/// and returns its length, `None` if it does not fit: the header `f`, the MSS option `mss`,
/// and of `o` only what a SYN carries besides (SACK-permitted, timestamps, window scale; the
/// caller sends one with SACK blocks or a Fast Open cookie through the general emitter).
/// Linux's layout (`tcp_options_write`), the general emitter's: MSS; SACK-permitted and
/// timestamps as negotiated, NOP, NOP in place of either left out; NOP, window scale. Header
/// and options are built in one 40-byte block, summed as two 20-byte halves (the bytes past
/// the header are zero and add nothing) and copied out once, not through the general
/// option walk, `Packet` setters and checksum loop (`Repr::emit_header`, `fill_checksum`).
pub(crate) fn write_plain_syn(
    buf: &mut [u8],
    src: core::net::IpAddr,
    dst: core::net::IpAddr,
    f: &SynFields,
    mss: u16,
    o: &Options,
) -> Option<usize> {
    use crate::wire::tcp::kind;
    debug_assert!(o.sack.is_empty() && o.fast_open.is_none());
    let mut h = [0u8; 40];
    h[0..2].copy_from_slice(&f.src_port.to_be_bytes());
    h[2..4].copy_from_slice(&f.dst_port.to_be_bytes());
    h[4..8].copy_from_slice(&f.seq.0.to_be_bytes());
    h[8..12].copy_from_slice(&f.ack.0.to_be_bytes());
    h[13] = f.flags.0;
    h[14..16].copy_from_slice(&f.window.to_be_bytes());
    let m = mss.to_be_bytes();
    h[20..24].copy_from_slice(&[kind::MSS, 4, m[0], m[1]]);
    let mut len = 24;
    match (o.sack_permitted, o.timestamps) {
        (sack_ok, Some(ts)) => {
            h[24..26].copy_from_slice(&if sack_ok {
                [kind::SACK_PERMITTED, 2]
            } else {
                [kind::NOP, kind::NOP]
            });
            h[26..28].copy_from_slice(&[kind::TIMESTAMPS, 10]);
            h[28..32].copy_from_slice(&ts.tsval.to_be_bytes());
            h[32..36].copy_from_slice(&ts.tsecr.to_be_bytes());
            len = 36;
        }
        (true, None) => {
            h[24..28].copy_from_slice(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]);
            len = 28;
        }
        (false, None) => {}
    }
    if let Some(ws) = o.window_scale {
        h[len..len + 4].copy_from_slice(&[kind::NOP, kind::WINDOW_SCALE, 3, ws]);
        len += 4;
    }
    h[12] = ((len / 4) as u8) << 4;
    let out = buf.get_mut(..len)?;
    let mut c =
        crate::wire::checksum::pseudo_header(src, dst, crate::wire::IpProtocol::Tcp, len as u32);
    let (first, second) = h.split_at(20);
    c.add_20(first.try_into().ok()?);
    c.add_20(second.try_into().ok()?);
    h[16..18].copy_from_slice(&c.finish().to_be_bytes());
    out.copy_from_slice(&h[..len]);
    Some(len)
}

/// What a passive handshake negotiated: everything needed to build the connection when the
/// ACK of the SYN-ACK arrives. Copy, no buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Our initial sequence number (from the ISN generator, or the cookie).
    pub iss: SeqNum,
    /// The peer's initial sequence number (its SYN's SEG.SEQ).
    pub irs: SeqNum,
    /// The peer's MSS option (for a cookie: the table entry it was rounded down to).
    pub mss: Option<u16>,
    /// The peer's window scale shift, if it offered scaling.
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// The TSval of the peer's SYN (TS.Recent), if it offered timestamps.
    pub ts_recent: Option<u32>,
    /// When our SYN-ACK went out, if it went out only once (Karn's rule: no RTT sample from a
    /// retransmitted segment).
    pub synack_sent: Option<Instant>,
    /// How many times the SYN-ACK went out again (the connection's first retransmissions:
    /// Linux's child inherits `req->num_retrans` as `total_retrans`).
    pub retransmits: u8,
    /// The SYN asked for ECN (RFC 3168 §6.1.1); whether it is granted is the listener's
    /// `Config::ecn`.
    pub ecn: bool,
}

impl Handshake {
    /// The options the peer's SYN offered.
    pub fn offer(&self) -> Offer {
        Offer {
            window_scale: self.window_scale.is_some(),
            sack_permitted: self.sack_permitted,
            timestamps: self.ts_recent.is_some(),
            ecn: self.ecn,
        }
    }

    /// The handshake a SYN `syn` starts, answered with `iss`.
    pub fn from_syn(syn: &Repr<'_>, iss: SeqNum) -> Handshake {
        let o = &syn.options;
        Handshake {
            iss,
            irs: syn.seq,
            mss: o.mss,
            window_scale: o.window_scale,
            sack_permitted: o.sack_permitted,
            ts_recent: o.timestamps.map(|t| t.tsval),
            synack_sent: None,
            retransmits: 0,
            ecn: super::ecn::syn_asks(syn.flags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, last)), port)
    }

    /// `write_plain` writes, for every SYN-ACK layout, the bytes the general emitter writes
    /// (header, options, checksum), over IPv4 and IPv6, and refuses a buffer too small as it
    /// does; a SYN-ACK with SACK blocks or a Fast Open cookie goes the general way.
    #[test]
    fn a_plain_synack_is_written_as_the_general_emitter_writes_it() {
        use core::net::Ipv6Addr;
        let v6 = |last: u16, port| {
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)),
                port,
            )
        };
        let mut plain = 0;
        for (local, remote) in [(addr(2, 80), addr(1, 49152)), (v6(2, 443), v6(1, 65535))] {
            for mss in [536u16, 1460, 65535] {
                for window_scale in [None, Some(0), Some(7), Some(14)] {
                    for sack_permitted in [false, true] {
                        for timestamps in [None, Some((0, 0)), Some((0xdead_beef, 0x0123_4567))] {
                            for ece in [false, true] {
                                for (iss, window) in
                                    [(0u32, 0u16), (0xffff_fff0, 65535), (77, 29200)]
                                {
                                    let sa = SynAck {
                                        local,
                                        remote,
                                        iss: SeqNum(iss),
                                        ack: SeqNum(iss ^ 0x5a5a_5a5a),
                                        window,
                                        options: Options {
                                            mss: Some(mss),
                                            window_scale,
                                            sack_permitted,
                                            timestamps: timestamps
                                                .map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
                                            ..Options::default()
                                        },
                                        ece,
                                    };
                                    let (mut a, mut b) = ([0xaau8; 64], [0x55u8; 64]);
                                    let n = sa.write(&mut a);
                                    let m = sa.write_general(&mut b);
                                    assert_eq!(n, m, "{sa:?}");
                                    let n = n.unwrap();
                                    assert_eq!(n, sa.len());
                                    assert_eq!(a[..n], b[..n], "{sa:?}");
                                    // Nothing written past the segment.
                                    assert!(a[n..].iter().all(|&x| x == 0xaa));
                                    // A buffer one byte short: nothing, either way.
                                    let mut short = vec![0u8; n - 1];
                                    assert_eq!(sa.write(&mut short), None);
                                    assert_eq!(sa.write_general(&mut short), None);
                                    plain += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(plain, 2 * 3 * 4 * 2 * 3 * 2 * 3);
        // SACK blocks (never on a SYN-ACK `new` makes) and a cookie: the general emitter.
        let mut sa = SynAck::new(
            &Config::default(),
            addr(2, 80),
            addr(1, 49152),
            &Handshake::from_syn(
                &Repr {
                    src_port: 49152,
                    dst_port: 80,
                    seq: SeqNum(9),
                    ack: SeqNum(0),
                    flags: Flags::SYN,
                    window: 100,
                    urgent: 0,
                    options: Options {
                        mss: Some(1400),
                        ..Options::default()
                    },
                    payload: &[],
                },
                SeqNum(1),
            ),
            1460,
            5,
        );
        let plain_sa = sa;
        sa.options.sack.push((SeqNum(1), SeqNum(2)));
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        assert_eq!(sa.write(&mut a), sa.write_general(&mut b));
        assert_eq!(a, b);
        // A Fast Open SYN-ACK (RFC 7413 §4.1.2: a cookie request answered with a cookie; the
        // experimental option too) over every option layout a SYN-ACK `new` makes: `write`
        // sends it the general way, cookie option included, never the plain writer's way.
        use crate::wire::tcp::FastOpen;
        let cookie = [0xc0, 0x0c, 0x1e, 0x5a, 1, 2, 3, 4];
        for fast_open in [
            FastOpen::request(false),
            FastOpen::request(true),
            FastOpen::with_cookie(false, &cookie).unwrap(),
            FastOpen::with_cookie(true, &cookie[..4]).unwrap(),
            FastOpen::with_cookie(false, &[7; FastOpen::MAX_COOKIE]).unwrap(),
        ] {
            for window_scale in [None, Some(7)] {
                for sack_permitted in [false, true] {
                    for timestamps in [None, Some(Timestamps { tsval: 3, tsecr: 9 })] {
                        let mut sa = plain_sa;
                        sa.options.window_scale = window_scale;
                        sa.options.sack_permitted = sack_permitted;
                        sa.options.timestamps = timestamps;
                        sa.options.fast_open = Some(fast_open);
                        let (mut a, mut b) = ([0xaau8; 80], [0x55u8; 80]);
                        let n = sa.write(&mut a);
                        assert_eq!(n, sa.write_general(&mut b), "{sa:?}");
                        let n = n.unwrap();
                        assert_eq!(n, sa.len());
                        assert_eq!(a[..n], b[..n], "{sa:?}");
                        assert!(a[n..].iter().all(|&x| x == 0xaa));
                        let back = Packet::new_checked(&a[..n]).unwrap();
                        let repr = Repr::parse(&back, sa.local.ip(), sa.remote.ip(), true).unwrap();
                        assert_eq!(repr.options.fast_open, Some(fast_open), "{sa:?}");
                        let mut short = vec![0u8; n - 1];
                        assert_eq!(sa.write(&mut short), None);
                    }
                }
            }
        }
    }

    #[test]
    fn syn_offers_what_config_enables_and_syn_ack_answers_only_offers() {
        let cfg = Config::default();
        let syn = syn_options(&cfg, 1460, 7, None, 100, 0);
        assert_eq!(syn.mss, Some(1460));
        assert_eq!(syn.window_scale, Some(7));
        assert!(syn.sack_permitted);
        assert_eq!(
            syn.timestamps,
            Some(Timestamps {
                tsval: 100,
                tsecr: 0
            })
        );

        let offer = Offer {
            window_scale: false,
            sack_permitted: true,
            timestamps: false,
            ecn: false,
        };
        let sa = syn_options(&cfg, 1460, 7, Some(offer), 100, 5);
        assert_eq!(sa.window_scale, None);
        assert!(sa.sack_permitted);
        assert_eq!(sa.timestamps, None);

        let off = Config {
            sack: false,
            timestamps: false,
            window_scaling: false,
            ..Config::default()
        };
        let all = Offer {
            window_scale: true,
            sack_permitted: true,
            timestamps: true,
            ecn: true,
        };
        let sa = syn_options(&off, 9000, 0, Some(all), 1, 2);
        assert_eq!(
            sa,
            Options {
                mss: Some(9000),
                ..Options::default()
            }
        );
    }

    #[test]
    fn syn_ack_bytes_parse_back() {
        let cfg = Config::default();
        let (l, r) = (addr(2, 80), addr(1, 40000));
        let hs = Handshake {
            iss: SeqNum(1000),
            irs: SeqNum(u32::MAX),
            mss: Some(1460),
            window_scale: Some(8),
            sack_permitted: true,
            ts_recent: Some(77),
            synack_sent: None,
            retransmits: 0,
            ecn: true,
        };
        let sa = SynAck::new(&cfg, l, r, &hs, 1460, 4242);
        let mut buf = [0u8; 60];
        let n = sa.write(&mut buf).unwrap();
        let p = Packet::new_checked(&buf[..n]).unwrap();
        let back = Repr::parse(&p, l.ip(), r.ip(), true).unwrap();
        assert_eq!(back.flags, Flags::SYN | Flags::ACK | Flags::ECE);
        assert_eq!((back.seq, back.ack), (SeqNum(1000), SeqNum(0)));
        assert_eq!(back.window, 65535);
        assert_eq!(back.options.mss, Some(1460));
        assert_eq!(back.options.window_scale, Some(cfg.our_window_shift()));
        assert_eq!(
            back.options.timestamps,
            Some(Timestamps {
                tsval: 4242,
                tsecr: 77
            })
        );
        assert!(sa.write(&mut buf[..20]).is_none());
        // An ECN-setup SYN gets an ECN-setup SYN-ACK (RFC 3168 §6.1.1), unless ECN is off.
        let off = Config {
            ecn: crate::tcp::EcnMode::Off,
            ..Config::default()
        };
        let sa = SynAck::new(&off, l, r, &hs, 1460, 4242);
        let n = sa.write(&mut buf).unwrap();
        let back = Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            Repr::parse(&back, l.ip(), r.ip(), true).unwrap().flags,
            Flags::SYN | Flags::ACK
        );
    }
}
