//! TCP Fast Open on one connection (RFC 7413): the server's child that took data in the SYN.
//!
//! RFC 7413 §4.2.2: a server that validated the cookie "creates a new connection in
//! SYN-RECEIVED state ... delivers the data to the application" before the handshake
//! completes, and may send data before the client's ACK. Linux (`tcp_fastopen_create_child`)
//! puts the child on the accept queue at once; its SYN-ACK acknowledges the SYN data.

use core::net::SocketAddr;

use super::Connection;
use crate::tcp::counters::Counters;
use crate::tcp::seq::SeqNum;
use crate::time::Instant;
use crate::wire::tcp::Repr;

/// Bits of [`Connection`]'s Fast Open state.
pub(super) mod bits {
    /// A server child created by Fast Open (Linux `tcp_passive_fastopen`, `fastopen_rsk`).
    pub const PASSIVE: u8 = 1;
    /// Data in the SYN was acknowledged (Linux `syn_data_acked`, TCPI_OPT_SYN_DATA).
    pub const SYN_DATA_ACKED: u8 = 2;
}

impl Connection {
    /// LISTEN → SYN-RECEIVED on a SYN whose Fast Open cookie the stack validated (or that
    /// needs none): as [`accept_syn`](Self::accept_syn), and the SYN's data is taken into the
    /// receive buffer, so RCV.NXT is past it and the SYN-ACK acknowledges it (RFC 7413
    /// §4.2.2). The connection may send before the handshake completes. Returns false if the
    /// connection was not listening or `seg` is no SYN.
    pub fn accept_fast_open_syn(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        seg: &Repr<'_>,
        iss: SeqNum,
        ctr: &mut Counters,
    ) -> bool {
        if !self.accept_syn(now, remote, seg, iss, ctr) {
            return false;
        }
        self.fast_open |= bits::PASSIVE;
        // Linux's child starts at SND.UNA = ISS + 1 (its request socket tracks the SYN-ACK), so
        // the SYN-ACK takes no room in the peer's window: the child may fill all of it.
        self.snd.wnd = self.snd.wnd.saturating_add(1);
        self.snd.max_wnd = self.snd.wnd;
        let take = seg.payload.len().min(self.rcv.buf.free());
        if take > 0 {
            let n = self.rcv.buf.write_at(0, &seg.payload[..take]);
            self.rcv.buf.commit(n);
            self.rcv.nxt += n as u32;
            self.rcv.last_ack_sent = self.rcv.nxt;
            self.fast_open |= bits::SYN_DATA_ACKED;
        }
        true
    }

    /// A server connection created by Fast Open that has not completed its handshake yet:
    /// it can be accepted, read and written in SYN-RECEIVED.
    pub fn fast_open_pending(&self) -> bool {
        self.fast_open & bits::PASSIVE != 0 && self.state == super::State::SynReceived
    }

    /// Data in our SYN, or the peer's, was acknowledged (TCPI_OPT_SYN_DATA).
    pub fn syn_data_acked(&self) -> bool {
        self.fast_open & bits::SYN_DATA_ACKED != 0
    }
}
