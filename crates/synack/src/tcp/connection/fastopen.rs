//! TCP Fast Open on one connection (RFC 7413): the server's child that took data in the SYN.
//!
//! RFC 7413 §4.2.2: a server that validated the cookie "creates a new connection in
//! SYN-RECEIVED state ... delivers the data to the application" before the handshake
//! completes, and may send data before the client's ACK. Linux (`tcp_fastopen_create_child`)
//! puts the child on the accept queue at once; its SYN-ACK acknowledges the SYN data.

use core::net::SocketAddr;

use super::Connection;
use crate::tcp::counters::Counters;
use crate::tcp::rate::TxState;
use crate::tcp::seq::SeqNum;
use crate::time::Instant;
use crate::wire::tcp::{FastOpen, Flags, Repr};

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
        self.sync_mss();
        let take = seg.payload.len().min(self.rcv.buf.free());
        if take > 0 {
            let n = self.rcv.buf.write_at(0, &seg.payload[..take]);
            self.rcv.buf.commit(n);
            self.rcv.nxt += n as u32;
            self.rcv.reception(self.cfg.delayed_ack).bytes_received += n as u64;
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

/// A client's Fast Open attempt (RFC 7413 §4.2.1), until its SYN-ACK arrives.
#[derive(Debug)]
pub(super) struct Active {
    /// The option of the first SYN: a cookie, a cookie request, or none (no-cookie mode).
    option: Option<FastOpen>,
    /// Bytes of the send buffer that ride on the first SYN.
    data: u32,
    /// The first SYN went out (a retransmitted SYN carries neither option nor data, as
    /// Linux's).
    sent: bool,
    /// The first SYN is being written now.
    writing: bool,
    /// The application waits to write more than the SYN carries.
    writer_waiting: bool,
    /// What the SYN-ACK taught, for the stack's cookie cache: its cookie (if a valid one) and
    /// its MSS option.
    learned: Option<Learned>,
}

/// What a SYN-ACK taught a Fast Open client (Linux `tcp_fastopen_cache_set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    /// A cookie of valid length the server sent (RFC 7413 §4.1.1).
    pub cookie: Option<FastOpen>,
    /// The server's MSS option.
    pub mss: Option<u16>,
}

impl Connection {
    /// Active OPEN with Fast Open (RFC 7413 §4.2.1): as [`connect`](Self::connect), and the
    /// first SYN carries `option` (a cookie, or an empty option asking for one) and the first
    /// `syn_data` bytes of `data`, which are queued. Returns how many bytes were queued.
    #[allow(clippy::too_many_arguments)]
    pub fn connect_fast_open(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        iss: SeqNum,
        option: Option<FastOpen>,
        data: &[u8],
        syn_data: usize,
        ctr: &mut Counters,
    ) -> Result<usize, super::Error> {
        self.connect(now, remote, iss, ctr)?;
        let n = self.send(&data[..syn_data.min(data.len())])?;
        self.fast_open_active = Some(Box::new(Active {
            option,
            data: n as u32,
            sent: false,
            writing: false,
            writer_waiting: false,
            learned: None,
        }));
        Ok(n)
    }

    /// The Fast Open option and data length of the SYN about to go out the first time, and
    /// marks it sent.
    pub(super) fn fast_open_first_syn(&mut self) -> Option<(Option<FastOpen>, u32)> {
        let a = self.fast_open_active.as_deref_mut()?;
        if a.sent {
            return None;
        }
        a.sent = true;
        a.writing = true;
        Some((a.option, a.data))
    }

    /// Our first SYN went out with data (Linux `syn_data`).
    pub(super) fn fast_open_syn_data_sent(&self) -> bool {
        self.fast_open_active
            .as_deref()
            .is_some_and(|a| a.sent && a.data > 0)
    }

    /// The Fast Open option of the SYN being written, if it is the first.
    pub(super) fn fast_open_syn_option(&self) -> Option<FastOpen> {
        self.fast_open_active
            .as_deref()
            .filter(|a| a.writing)
            .and_then(|a| a.option)
    }

    pub(super) fn fast_open_syn_written(&mut self) {
        if let Some(a) = self.fast_open_active.as_deref_mut() {
            a.writing = false;
        }
    }

    /// The SYN-ACK of a Fast Open attempt arrived and SND.UNA = SEG.ACK (Linux
    /// `tcp_rcv_fastopen_synack`): data it acknowledges leaves the send buffer; data it does
    /// not is sent again at once as ordinary data (RFC 7413 §4.2.1: "the client ...
    /// retransmits the data"). The cookie and MSS are kept for the stack's cache.
    /// Returns whether the application waits to write (the ACK is then delayed).
    pub(super) fn fast_open_synack(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        ctr: &mut Counters,
    ) -> bool {
        let Some(a) = self.fast_open_active.as_deref_mut() else {
            return false;
        };
        let writer = a.writer_waiting;
        let sent = if a.sent { a.data } else { 0 };
        let acked = (seg.ack - (self.snd.iss + 1u32)).min(sent);
        // A cookie we did not ask for (our SYN had no Fast Open option) is ignored, as
        // Linux does (`syn_fastopen` is set only when the option went out).
        let cookie = seg
            .options
            .fast_open
            .filter(|f| a.option.is_some() && f.cookie().is_some());
        a.learned = Some(Learned {
            cookie,
            mss: seg.options.mss,
        });
        if acked > 0 {
            // The SYN may have been sent again without its data, which moved SND.NXT back
            // to ISS + 1; the server took the data from the first one.
            self.snd.nxt = self.snd.nxt.max(self.snd.una);
            self.snd.buf.consume(acked as usize);
            self.fast_open |= bits::SYN_DATA_ACKED;
            ctr.fast_open_active += 1;
        }
        if writer {
            let ato = self.cfg.delayed_ack;
            self.rcv.reception(ato).delack.connected_with_writer(now);
            self.schedule_ack(now, false);
        }
        if acked < sent {
            ctr.fast_open_active_fail += 1;
            // What the SYN carried and the server did not take is sent again at once, as a
            // retransmission that is no sign of congestion (Linux marks the SYN data lost
            // and calls `tcp_non_congestion_loss_retransmit`): it counts in tcpi_retrans and
            // tcpi_total_retrans, and does not hold later small segments back as Nagle's
            // partial segment would.
            let end = self.snd.iss + 1u32 + sent;
            self.snd.max = end;
            self.snd
                .sb
                .on_send(self.snd.una, end, now, true, TxState::NONE);
            self.snd.sb.end_packet();
            self.resend_all_lost();
        }
        writer
    }

    /// Data (and a FIN) on the SYN-ACK answering our Fast Open SYN, once the connection is
    /// ESTABLISHED: taken as the segment text that follows the SYN (RFC 9293 §3.10.7.3:
    /// "continue processing at the sixth step"), as Linux's `tcp_fastopen_add_skb` does only
    /// for a Fast Open client; a plain SYN-ACK's text is dropped. The ACK goes at once,
    /// unless the application waits to write or the FIN put the connection in ping-pong
    /// mode (Linux `tcp_rcv_synsent_state_process`): then it is delayed.
    pub(super) fn fast_open_synack_text(
        &mut self,
        now: Instant,
        seg: &Repr<'_>,
        writer: bool,
        ctr: &mut Counters,
    ) {
        let text = Repr {
            seq: seg.seq + 1u32,
            flags: seg.flags & !Flags::SYN,
            ..*seg
        };
        self.process_text_and_fin(now, &text, ctr);
        if seg.flags.fin() || writer {
            self.rcv.ack_now = false;
            self.schedule_ack(now, false);
        } else {
            self.rcv.ack_now = true;
        }
    }

    /// The application is blocked writing more than the SYN carries (a blocking sendto with
    /// MSG_FASTOPEN): when the SYN-ACK comes, ACKs are delayed as Linux does for a pending
    /// writer, so the ACK rides on the data.
    pub fn fast_open_writer_waiting(&mut self) {
        if let Some(a) = self.fast_open_active.as_deref_mut() {
            a.writer_waiting = true;
        }
    }

    /// What the SYN-ACK of a Fast Open attempt taught (once), for the stack's cookie cache.
    pub fn take_fast_open_learned(&mut self) -> Option<Learned> {
        let a = self.fast_open_active.as_deref_mut()?;
        let l = a.learned.take();
        if l.is_some() {
            self.fast_open_active = None;
        }
        l
    }
}
