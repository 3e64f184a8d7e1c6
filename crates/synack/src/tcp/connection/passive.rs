//! A passive connection built from a [`Handshake`] the stack kept outside any TCB: a
//! SYN-queue entry or a SYN cookie (RFC 4987 §3.1, §3.6: commit no resources until the peer's
//! ACK proves it receives at its address).

use core::net::SocketAddr;
use std::sync::Arc;

use super::Connection;
use crate::tcp::config::Config;
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
        let mut c = Connection::new(cfg, local, mss, ts_offset);
        c.replay_handshake(now, remote, hs);
        c
    }

    /// The second half of [`from_handshake`](Self::from_handshake), on a connection just
    /// built by [`new`](Self::new) for the same `local`: the stack builds it in its slot and
    /// runs this there, so that the TCB is not built once more on the way.
    pub(crate) fn replay_handshake(&mut self, now: Instant, remote: SocketAddr, hs: &Handshake) {
        // Only a fresh connection (from `new_in`) can replay a handshake; `listen` cannot fail then.
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
        self.arm_retransmit(now);
        self.record_events = true;
    }
}
