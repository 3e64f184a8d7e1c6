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
    pub fn write(&self, buf: &mut [u8]) -> Option<usize> {
        let repr = self.repr();
        let len = repr.header_len();
        let mut packet = Packet::new_unchecked(buf.get_mut(..len)?);
        repr.emit_header(&mut packet).ok()?;
        packet.fill_checksum(self.local.ip(), self.remote.ip());
        Some(len)
    }

    fn repr(&self) -> Repr<'static> {
        Repr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.iss,
            ack: self.ack,
            flags: if self.ece {
                Flags::SYN | Flags::ACK | Flags::ECE
            } else {
                Flags::SYN | Flags::ACK
            },
            window: self.window,
            urgent: 0,
            options: self.options,
            payload: &[],
        }
    }
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
