//! A passive connection built from a [`Handshake`] the stack kept outside any TCB: a
//! SYN-queue entry or a SYN cookie (RFC 4987 §3.1, §3.6: commit no resources until the peer's
//! ACK proves it receives at its address).

use core::net::SocketAddr;
use std::sync::Arc;

use super::{Connection, Spares};
use crate::tcp::config::Config;
use crate::tcp::counters::Counters;
use crate::tcp::handshake::Handshake;
use crate::time::Instant;
use crate::wire::tcp::{Flags, Options, Repr, Timestamps};

impl Connection {
    /// The connection a listener on `local` would hold after receiving the SYN of `hs` from
    /// `remote` and sending its SYN-ACK: SYN-RECEIVED, with ISS, IRS and the negotiated options
    /// of `hs`, SND.NXT = ISS + 1 (RFC 9293 §3.10.7.2). `mss` and `ts_offset` are as for
    /// [`new`](Self::new).
    ///
    /// Feed it the segment that completes the handshake with
    /// [`handle_segment`](Self::handle_segment): it enters ESTABLISHED (§3.10.7.4, fifth step)
    /// and takes any data on that segment, and from then on it is exactly the connection that
    /// went LISTEN → SYN-RECEIVED itself. It is built that way: the SYN is replayed from `hs`
    /// through the same passive-open code. No trace events or counts are left from the replay:
    /// the caller counts the PassiveOpens (Linux counts it when the child is created, not per
    /// SYN).
    pub fn from_handshake(
        cfg: Arc<Config>,
        local: SocketAddr,
        remote: SocketAddr,
        mss: u16,
        ts_offset: u32,
        now: Instant,
        hs: &Handshake,
    ) -> Connection {
        Connection::from_handshake_in(
            cfg,
            local,
            remote,
            mss,
            ts_offset,
            now,
            hs,
            &mut Spares::new(0),
        )
    }

    /// [`from_handshake`](Self::from_handshake), its congestion controller from `spares` when
    /// they hold one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_handshake_in(
        cfg: Arc<Config>,
        local: SocketAddr,
        remote: SocketAddr,
        mss: u16,
        ts_offset: u32,
        now: Instant,
        hs: &Handshake,
        spares: &mut Spares,
    ) -> Connection {
        let mut c = Connection::new_in(cfg, local, mss, ts_offset, spares);
        c.record_events = false;
        let _ = c.listen();
        let syn = Repr {
            src_port: remote.port(),
            dst_port: local.port(),
            seq: hs.irs,
            ack: Default::default(),
            flags: if hs.ecn {
                Flags::SYN | Flags::ECE | Flags::CWR
            } else {
                Flags::SYN
            },
            window: 0,
            urgent: 0,
            options: Options {
                mss: hs.mss,
                window_scale: hs.window_scale,
                sack_permitted: hs.sack_permitted,
                timestamps: hs.ts_recent.map(|tsval| Timestamps { tsval, tsecr: 0 }),
                ..Options::default()
            },
            payload: &[],
        };
        c.accept_syn(now, remote, &syn, hs.iss, &mut Counters::default());
        // The SYN-ACK is out: SND.NXT = ISS + 1, and the initial window it offered (as
        // `SynAck` sized it) fixes the right edge we never move left (§3.8.6).
        c.snd.nxt = hs.iss + 1u32;
        c.snd.max = c.snd.nxt;
        c.open_receive_window();
        if let Some(sent) = hs.synack_sent {
            c.snd.sampler.start(c.snd.nxt, sent);
        }
        for _ in 0..hs.retransmits {
            c.on_handshake_retransmitted();
        }
        c.arm_retransmit(now);
        c.record_events = true;
        c
    }
}
