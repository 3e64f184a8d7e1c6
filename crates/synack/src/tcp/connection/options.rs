//! The connection's options: the TCP options its handshake negotiated (RFC 7323 timestamps,
//! RFC 2018 SACK, the path's MSS) and the socket options the application set.

use core::num::NonZeroU32;

use crate::tcp::config::{Config, Keepalive};
use crate::tcp::handshake::Offer;
use crate::time::{Duration, Instant, MaybeInstant};

/// Timestamp option state once negotiated (RFC 7323 §3, §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timestamps {
    /// TS.Recent: the peer's TSval to echo.
    pub(super) recent: u32,
    /// When TS.Recent was last updated (for the 24-day PAWS validity rule, §5.5).
    pub(super) recent_at: Instant,
}

/// Negotiated TCP options and socket options.
#[derive(Debug)]
pub(super) struct Options {
    /// TS.Recent and when it was set (see [`Timestamps`]), once timestamps are negotiated:
    /// `ts_recent_at` is none until then (12 bytes where an `Option<Timestamps>` takes 24).
    ts_recent: u32,
    ts_recent_at: MaybeInstant,
    /// Offset added to our millisecond clock for TSval (per connection, from the caller).
    pub(super) ts_offset: u32,
    /// SACK negotiated.
    pub(super) sack: bool,
    /// Which options the peer put on its SYN (for the passive side's SYN-ACK).
    pub(super) peer_syn: Option<Offer>,
    /// The largest segment (without options) the path carries, from ICMP fragmentation-needed
    /// (RFC 1191) or the stack's cache of them (at least 536, so never zero).
    pub(super) path_mss: Option<NonZeroU32>,
    /// The MSS the peer announced on its SYN (or the default for its address family), before
    /// our options, the path and the peer's window bound it (Linux `rx_opt.mss_clamp`).
    pub(super) peer_mss: u16,
    /// The path MTU this connection sends by (Linux `icsk_pmtu_cookie`, tcpi_pmtu): the
    /// link's, lowered by fragmentation-needed messages (never raised).
    pub(super) pmtu: u16,
    /// TCP_NODELAY.
    pub(super) nodelay: bool,
    /// TCP_CORK.
    pub(super) cork: bool,
    /// SO_KEEPALIVE and TCP_USER_TIMEOUT, once the application sets either.
    pub(super) liveness: Option<Box<Liveness>>,
}

/// SO_KEEPALIVE (with its TCP_KEEP* settings) and TCP_USER_TIMEOUT: how long the connection
/// tolerates a silent peer. Allocated when the application first sets either.
#[derive(Debug, Default)]
pub(super) struct Liveness {
    pub(super) keepalive: Option<Keepalive>,
    pub(super) user_timeout: Option<Duration>,
    /// Keepalive probes sent since the peer was last heard from.
    pub(super) probes_sent: u32,
}

impl Options {
    pub(super) fn new(cfg: &Config, ts_offset: u32) -> Options {
        Options {
            ts_recent: 0,
            ts_recent_at: MaybeInstant::NONE,
            ts_offset,
            sack: false,
            peer_syn: None,
            path_mss: None,
            peer_mss: 536,
            pmtu: 0,
            nodelay: cfg.nodelay,
            cork: false,
            liveness: None,
        }
    }

    /// The timestamp state, if timestamps are negotiated.
    pub(super) fn ts(&self) -> Option<Timestamps> {
        self.ts_recent_at.get().map(|recent_at| Timestamps {
            recent: self.ts_recent,
            recent_at,
        })
    }

    pub(super) fn set_ts(&mut self, ts: Option<Timestamps>) {
        self.ts_recent = ts.map_or(0, |t| t.recent);
        self.ts_recent_at = ts.map(|t| t.recent_at).into();
    }

    /// The keepalive settings, if keepalive is on.
    pub(super) fn keepalive(&self) -> Option<Keepalive> {
        self.liveness.as_ref().and_then(|l| l.keepalive)
    }

    /// The user timeout, if one is set.
    pub(super) fn user_timeout(&self) -> Option<Duration> {
        self.liveness.as_ref().and_then(|l| l.user_timeout)
    }

    /// The liveness settings, allocated now if none were set before.
    pub(super) fn liveness(&mut self) -> &mut Liveness {
        self.liveness.get_or_insert_with(Box::default)
    }
}
