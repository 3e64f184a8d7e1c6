//! The sending half of the TCB: the send sequence variables of RFC 9293 §3.3.1, the send
//! buffer, the record of what is in flight (the scoreboard, which is the retransmission queue;
//! allocated with the first segment) and, from the first data or FIN the application queues,
//! the [`Transmit`] state: the sender's decisions that outlive one call (Nagle's small-segment
//! mark, PSH marks, bursts, congestion-window validation, the tail loss probe). What only loss
//! recovery needs is in [`Recovery`](super::recovery::Recovery), allocated when recovery first
//! has something to do.

use super::recovery::Carried;
use crate::tcp::buffer::RingBuffer;
use crate::tcp::config::Config;
use crate::tcp::push::PushMarks;
use crate::tcp::rate::RateEstimator;
use crate::tcp::rtt::RttSampler;
use crate::tcp::scoreboard::Scoreboard;
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant, MaybeInstant};

/// The sender. Fields are named as in RFC 9293 without the `SND.` prefix (`una` is SND.UNA).
#[derive(Debug)]
pub(super) struct Sender {
    pub(super) iss: SeqNum,
    pub(super) una: SeqNum,
    pub(super) nxt: SeqNum,
    /// Highest sequence number sent so far, plus one (`nxt` goes back on retransmission).
    pub(super) max: SeqNum,
    /// Send window in bytes, already scaled.
    pub(super) wnd: u32,
    pub(super) wl1: SeqNum,
    pub(super) wl2: SeqNum,
    /// Largest window the peer has offered (RFC 9293 §3.8.6.2.1 sender SWS; RFC 5961 §5.2).
    pub(super) max_wnd: u32,
    /// The peer's window scale shift (applied to windows it sends).
    pub(super) shift: u8,
    /// Effective send MSS (payload bytes per segment).
    pub(super) mss: u32,
    /// Our SYN has been acknowledged (from then on SND.UNA is the first buffered byte).
    pub(super) syn_acked: bool,
    /// Bytes queued by the application, starting at SND.UNA (after the SYN).
    pub(super) buf: RingBuffer,
    /// The application has no more data to send (shutdown write / close): FIN after the data.
    pub(super) fin_queued: bool,
    /// Sequence number of our FIN once it has been sent.
    pub(super) fin_seq: Option<SeqNum>,
    /// Send urgent pointer (RFC 9293 §3.8.5): one past the last urgent byte (RFC 6093 §2),
    /// until SND.UNA passes it.
    pub(super) up: Option<SeqNum>,
    /// The last send() said MSG_MORE: hold a partial segment and set no PSH at its end. For
    /// that send's push only, as Linux's `tcp_push` passes TCP_NAGLE_CORK to that push alone:
    /// the next ACK clears it (its `tcp_data_snd_check` pushes with the socket's own Nagle
    /// setting), and so does the next send.
    pub(super) more: bool,
    /// TCP_NODELAY was just set or the cork removed: push what is queued once, whatever
    /// Nagle, cork or MSG_MORE would say (Linux's TCP_NAGLE_PUSH).
    pub(super) push_once: bool,
    /// What is in flight, and what the peer's ACKs and SACKs said of it.
    pub(super) sb: Scoreboard,
    /// How queued data goes out, once the application has queued data or the FIN.
    pub(super) tx: Option<Box<Transmit>>,
    /// The segment timed for an RTT sample when timestamps are off.
    pub(super) sampler: RttSampler,
    /// A tail loss probe is due: send one segment, new data if any, else the last one.
    pub(super) probe_due: bool,
    /// The segment being planned is that probe.
    pub(super) probe_out: bool,
    /// The FIN went out in a segment of its own: the probe resends just the FIN (the last
    /// segment sent).
    pub(super) fin_alone: bool,
    /// Retransmission timeouts in a row (SYN, SYN-ACK or data).
    pub(super) retries: u32,
    /// When the first retransmission of the current loss episode went out (a SYN's: when the
    /// first SYN did), until everything retransmitted is acknowledged (Linux `retrans_stamp`):
    /// the retransmission time limits and the user timeout (RFC 5482) count from here.
    pub(super) rtx_since: MaybeInstant,
    /// When the persist timer first fired while the window stays closed (Linux
    /// `icsk_probes_tstamp`): the user timeout bounds zero-window probing from here.
    pub(super) probes_since: MaybeInstant,
    /// A zero-window probe is due.
    pub(super) probe_now: bool,
    /// A simultaneous open's SYN-ACK is due: its first transmission, not a retransmission of
    /// the SYN (Linux's tcp_send_synack() turns the queued SYN into a SYN-ACK and sends it anew).
    pub(super) simopen_synack: bool,
    pub(super) persist_backoff: u8,
    /// Segments delivered to the peer (TCP_INFO's tcpi_delivered, 32 bits as Linux's).
    pub(super) delivered: u32,
    /// Segments this connection sent, retransmissions, ACKs and probes included, not a
    /// listener's SYN-ACK (Linux `tp->segs_out`, 32 bits; TCP_INFO's tcpi_segs_out).
    pub(super) segs_out: u32,
}

/// What the sender keeps about the data the application queued, from the first byte (or the
/// FIN) it queues: PSH and record marks, Nagle's mark, the current burst, congestion-window
/// validation and the tail loss probe. A connection that never sent anything has none of it.
#[derive(Debug)]
pub(super) struct Transmit {
    /// The end of the last segment we sent that was smaller than the MSS (Minshall's
    /// variant of Nagle, as Linux implements it: a partial segment waits only while an
    /// earlier partial one is unacknowledged).
    pub(super) sml: SeqNum,
    /// PSH and MSG_EOR boundaries of the unsent data, drawn as Linux draws them.
    pub(super) push_marks: PushMarks,
    /// New data goes out in bursts sized as Linux sizes its TSO packets (`burst_quota`):
    /// segments left in the current one, its size, and when it started.
    pub(super) burst_left: u16,
    pub(super) burst_size: u16,
    pub(super) burst_at: Instant,
    /// Last time data was sent (for restart after idle, RFC 5681 §4.1).
    pub(super) last_send: Instant,
    /// Linux's congestion-window validation: the most segments in flight in the last round,
    /// the round's end, and whether the window held sending back.
    pub(super) max_packets_out: u32,
    pub(super) cwnd_usage_seq: SeqNum,
    pub(super) cwnd_limited: bool,
    /// SND.NXT when the last probe went out, until an ACK covers it (RFC 8985 §7: one
    /// probe per tail).
    pub(super) tlp_high: Option<SeqNum>,
    /// Application bytes the peer acknowledged.
    pub(super) bytes_acked: u64,
    /// Delivery-rate estimation (`tcp::rate`).
    pub(super) rate: RateEstimator,
    /// Segments marked lost over the connection's life, lost retransmissions included
    /// (Linux `tp->lost`, 32 bits).
    pub(super) lost: u32,
    /// Pacing (Linux's internal pacing, `tcp_wstamp_ns`): the earliest departure time of the
    /// next burst...
    pub(super) next_departure: Instant,
    /// ...what of the current burst's pacing time may still be forgiven because the burst
    /// left late (Linux's `credit`, at most half of each segment's time)...
    pub(super) pacing_credit: Duration,
    /// ...and whether something waits for that time (then it is a deadline of
    /// `poll_timeout`).
    pub(super) pacing_wait: bool,
    /// Data segments sent, retransmissions included (Linux `tp->data_segs_out`, TCP_INFO's
    /// tcpi_data_segs_out): the first ten are not paced, as sch_fq does not pace them.
    pub(super) data_segs_out: u32,
    /// Payload bytes sent, retransmissions included (Linux `tp->bytes_sent`, tcpi_bytes_sent).
    pub(super) bytes_out: u64,
    /// What the last recovery state given back left for the next (`recovery.rs`).
    pub(super) carried: Option<Box<Carried>>,
}

impl Transmit {
    /// Nothing queued yet by a connection whose ISS is `iss`.
    pub(super) fn new(iss: SeqNum) -> Transmit {
        Transmit {
            sml: iss,
            push_marks: PushMarks::new(iss + 1u32),
            burst_left: 0,
            burst_size: 0,
            burst_at: Instant::ZERO,
            last_send: Instant::ZERO,
            max_packets_out: 0,
            cwnd_usage_seq: SeqNum(0),
            cwnd_limited: false,
            tlp_high: None,
            bytes_acked: 0,
            rate: RateEstimator::new(),
            lost: 0,
            next_departure: Instant::ZERO,
            pacing_credit: Duration::ZERO,
            pacing_wait: false,
            data_segs_out: 0,
            bytes_out: 0,
            carried: None,
        }
    }
}

impl Sender {
    /// The transmit state, allocated now if this is the first data or FIN queued. Inlined:
    /// the data path asks for it several times per segment, and it is there but once.
    #[inline]
    pub(super) fn transmit(&mut self) -> &mut Transmit {
        if self.tx.is_none() {
            self.new_transmit();
        }
        self.tx.as_deref_mut().expect("allocated above")
    }

    /// Allocates the transmit state (out of line: once per connection).
    #[inline(never)]
    fn new_transmit(&mut self) {
        self.tx = Some(Box::new(Transmit::new(self.iss)));
    }

    /// SND.NXT when the last tail loss probe went out, while no ACK has covered it.
    pub(super) fn tlp_high(&self) -> Option<SeqNum> {
        self.tx.as_ref().and_then(|t| t.tlp_high)
    }

    /// `mss`: the send MSS until the handshake says otherwise (the family's default).
    pub(super) fn new(cfg: &Config, mss: u16) -> Sender {
        Sender {
            iss: SeqNum(0),
            una: SeqNum(0),
            nxt: SeqNum(0),
            max: SeqNum(0),
            wnd: 0,
            wl1: SeqNum(0),
            wl2: SeqNum(0),
            max_wnd: 0,
            shift: 0,
            mss: u32::from(mss),
            syn_acked: false,
            buf: RingBuffer::new(cfg.send_buffer),
            fin_queued: false,
            fin_seq: None,
            up: None,
            more: false,
            push_once: false,
            sb: Scoreboard::new(),
            tx: None,
            sampler: RttSampler::new(),
            probe_due: false,
            probe_out: false,
            fin_alone: false,
            retries: 0,
            rtx_since: MaybeInstant::NONE,
            probes_since: MaybeInstant::NONE,
            probe_now: false,
            simopen_synack: false,
            persist_backoff: 0,
            delivered: 0,
            segs_out: 0,
        }
    }

    /// Sequence number of the first byte of the send buffer.
    pub(super) fn buf_seq(&self) -> SeqNum {
        // Before the SYN is acknowledged, SND.UNA points at the SYN itself.
        if self.syn_acked {
            self.una
        } else {
            self.iss + 1u32
        }
    }

    /// Bytes queued but not yet sent.
    pub(super) fn unsent_len(&self) -> usize {
        let sent = self.nxt - self.buf_seq();
        self.buf.len().saturating_sub(sent as usize)
    }
}
