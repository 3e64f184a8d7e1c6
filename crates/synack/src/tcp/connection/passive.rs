//! A passive connection built from a [`Handshake`] the stack kept outside any TCB: a
//! SYN-queue entry or a SYN cookie (RFC 4987 §3.1, §3.6: commit no resources until the peer's
//! ACK proves it receives at its address).

use core::net::SocketAddr;
use std::sync::Arc;

use super::Connection;
use crate::tcp::config::Config;
use crate::tcp::handshake::Handshake;
use crate::time::Instant;

impl Connection {
    /// The connection a listener on `local` would hold after receiving the SYN of `hs` from
    /// `remote` and sending its SYN-ACK: SYN-RECEIVED, with ISS, IRS and the negotiated options
    /// of `hs`, SND.NXT = ISS + 1 (RFC 9293 §3.10.7.2). `mss` and `ts_offset` are as for
    /// [`new`](Self::new).
    ///
    /// Feed it the segment that completes the handshake with
    /// [`handle_segment`](Self::handle_segment): it enters ESTABLISHED (§3.10.7.4, fifth step)
    /// and takes any data on that segment, and from then on it is exactly the connection that
    /// went LISTEN → SYN-RECEIVED itself: it is set up with what that passive open sets, each
    /// field once (`syn_received_from`). No trace events or counts are left:
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
        let mut c = Connection::new(cfg, local, mss, ts_offset);
        c.syn_received_from(now, remote, hs);
        c
    }

    /// The second half of [`from_handshake`](Self::from_handshake), on a connection just
    /// built by [`new`](Self::new) for the same `local`: the stack builds it in its slot and
    /// runs this there, so that the TCB is not built once more on the way.
    ///
    /// What LISTEN, the SYN of `hs` through `take_syn` and the SYN-ACK's transmission set,
    /// each field set once, straight from the SYN-queue entry (Linux
    /// `tcp_create_openreq_child` builds its child from the request the same way): no
    /// LISTEN, no synthetic SYN, no state-change events (the replay recorded none either).
    /// `tests/passive_open.rs` builds both ways and compares every field; the reference
    /// replay is `replay_handshake` (tests only).
    pub(crate) fn syn_received_from(&mut self, now: Instant, remote: SocketAddr, hs: &Handshake) {
        // Only a fresh connection (from `new_in`) is set up so.
        debug_assert_eq!(self.state, crate::tcp::State::Closed);
        // `listen`.
        self.passive = true;
        // `take_syn` for the SYN `hs` describes (§3.10.7.2): the peer, ISS and IRS, the
        // negotiated options, ECN (RFC 3168 §6.1.1), the SYN's window (0 in the entry: the
        // final ACK's window is the first one taken), the send MSS, SND.WL1/WL2.
        self.rcv.segs_in = 1;
        self.set_remote(remote);
        self.init_send(hs.iss);
        self.rcv.irs = hs.irs;
        self.rcv.nxt = hs.irs + 1u32;
        self.rcv.last_ack_sent = self.rcv.nxt;
        self.rcv.last_recv = now;
        self.opts.peer_syn = Some(hs.offer());
        self.negotiate_offer(
            now,
            hs.mss,
            hs.window_scale,
            hs.sack_permitted,
            hs.ts_recent,
        );
        self.ecn.set_ok(hs.ecn && self.cfg.ecn.accepts());
        self.snd.wnd = 0;
        self.snd.max_wnd = 0;
        self.sync_mss();
        self.snd.wl1 = hs.irs;
        self.snd.wl2 = hs.iss;
        self.state = crate::tcp::State::SynReceived;
        // The SYN-ACK is out: SND.NXT = ISS + 1, and the initial window it offered (as
        // `SynAck` sized it) fixes the right edge we never move left (§3.8.6).
        self.snd.nxt = hs.iss + 1u32;
        self.snd.max = self.snd.nxt;
        self.open_receive_window();
        if let Some(sent) = hs.synack_sent {
            self.snd.sampler.start(self.snd.nxt, sent);
        }
        for _ in 0..hs.retransmits {
            self.on_handshake_retransmitted();
        }
        // `arm_retransmit` for the SYN-ACK outstanding: no timer running yet, no retries
        // (no user-timeout clamp), and no loss probe before ESTABLISHED.
        self.arm_first_retransmit(now);
    }

    /// The reference for [`syn_received_from`](Self::syn_received_from): the SYN replayed
    /// from `hs` through the same passive-open code (LISTEN, `take_syn`), as the stack built
    /// its connections before.
    #[cfg(test)]
    pub(crate) fn replay_handshake(&mut self, now: Instant, remote: SocketAddr, hs: &Handshake) {
        use crate::wire::tcp::{Flags, Options, Repr, Timestamps};
        debug_assert_eq!(self.state, crate::tcp::State::Closed);
        self.record_events = false;
        let listened = self.listen();
        debug_assert!(listened.is_ok());
        let local_port = self.local_port;
        let syn = Repr {
            src_port: remote.port(),
            dst_port: local_port,
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
        self.take_syn(now, remote, &syn, hs.iss);
        self.snd.nxt = hs.iss + 1u32;
        self.snd.max = self.snd.nxt;
        self.open_receive_window();
        if let Some(sent) = hs.synack_sent {
            self.snd.sampler.start(self.snd.nxt, sent);
        }
        for _ in 0..hs.retransmits {
            self.on_handshake_retransmitted();
        }
        self.arm_retransmit(now);
        self.record_events = true;
    }
}
