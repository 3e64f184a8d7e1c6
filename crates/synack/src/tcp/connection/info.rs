//! TCP_INFO: per-connection statistics in the manner of Linux's `struct tcp_info`, and the
//! congestion-avoidance state names it reports.

use super::{Connection, State};
use crate::tcp::congestion::CongestionControl;
use crate::time::Duration;

/// Per-connection statistics, like Linux's `struct tcp_info` (TCP_INFO).
///
/// Windows and sizes are in bytes, as synack keeps them; the `*_segments` methods and
/// [`options`](Info::options) give Linux's encodings (what packetdrill scripts assert on as
/// `tcpi_*`). The loss-recovery fields come from the sender's scoreboard
/// (`tcp::scoreboard`, `connection/recovery.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Info {
    /// The RFC 9293 state (Linux `tcpi_state`, numbered differently).
    pub state: Option<State>,
    /// Effective send MSS: payload bytes per segment after options (`tcpi_snd_mss`).
    pub snd_mss: u32,
    /// The MSS we announce (from the MTU, clamped by TCP_MAXSEG).
    pub rcv_mss: u32,
    /// The MSS we announced in our SYN or SYN-ACK, less the timestamp option once timestamps
    /// are negotiated, as Linux keeps `tcpi_advmss` (12 bytes off, `tcp_create_openreq_child`,
    /// `tcp_rcv_synsent_state_process`).
    pub advmss: u32,
    /// Congestion window in bytes (`tcpi_snd_cwnd` is this in segments, see
    /// [`cwnd_segments`](Info::cwnd_segments)).
    pub cwnd: u32,
    /// Slow-start threshold in bytes; `u32::MAX` until the first congestion event.
    pub ssthresh: u32,
    /// Smoothed RTT (RFC 6298 SRTT; `tcpi_rtt` in µs); `None` before the first sample.
    pub srtt: Option<Duration>,
    /// RTT variation (RFC 6298 RTTVAR; `tcpi_rttvar`).
    pub rttvar: Duration,
    /// Current retransmission timeout, with backoff (`tcpi_rto`).
    pub rto: Duration,
    /// FlightSize (RFC 5681 §2): SND.NXT − SND.UNA in bytes.
    pub bytes_in_flight: u32,
    /// RFC 6675 §4 "pipe", in bytes: the sender's estimate of the bytes in the network
    /// (outstanding − SACKed − lost + retransmitted, as Linux's `tcp_packets_in_flight`).
    pub pipe: u32,
    /// Segments sent and not yet cumulatively acknowledged (`tcpi_unacked`, Linux
    /// `packets_out`): the unacknowledged sequence space (SYN and FIN included) in whole
    /// segments of `snd_mss`, rounded up.
    pub unacked: u32,
    /// Segments the peer has SACKed above SND.UNA (`tcpi_sacked`); without SACK, duplicate
    /// ACKs counted as segments that arrived (Linux's emulation).
    pub sacked: u32,
    /// Segments marked lost and not yet acknowledged (`tcpi_lost`).
    pub lost: u32,
    /// Retransmitted segments still in flight (`tcpi_retrans`).
    pub retrans: u32,
    /// The sender's reordering degree estimate in segments (`tcpi_reordering`; Linux starts
    /// at 3, the RFC 5681 duplicate-ACK threshold, and raises it when a SACK shows a segment
    /// overtaken by later ones).
    pub reordering: u32,
    /// Segments delivered to the peer, retransmissions included (`tcpi_delivered`).
    pub delivered: u32,
    /// Segments D-SACKs reported as arrived twice (RFC 2883; `tcpi_dsack_dups`), usually
    /// spurious retransmissions.
    pub dsack_dups: u32,
    /// Congestion-avoidance state (`tcpi_ca_state`).
    pub ca_state: CaState,
    /// Segments retransmitted over the connection's life (`tcpi_total_retrans`).
    pub retransmits: u64,
    /// Sequence space the peer acknowledged, as Linux counts SND.UNA's advance
    /// (`tcpi_bytes_acked`): the application's bytes, our FIN, and our SYN on an active open
    /// (a listener's SYN-ACK is its request's, not the connection's).
    pub bytes_sent: u64,
    /// Sequence space received in order, as Linux counts RCV.NXT's advance
    /// (`tcpi_bytes_received`): data, read by the application or not, and the FIN.
    pub bytes_received: u64,
    /// Payload bytes sent, retransmissions included (`tcpi_bytes_sent`).
    pub bytes_out: u64,
    /// Payload bytes retransmitted (`tcpi_bytes_retrans`).
    pub bytes_retrans: u64,
    /// Segments sent, pure ACKs, probes and retransmissions included (`tcpi_segs_out`). A
    /// listener's SYN-ACK is not counted, as Linux's request socket sends it.
    pub segs_out: u32,
    /// Segments received, whatever became of them (`tcpi_segs_in`); a passive connection
    /// counts the SYN that created it.
    pub segs_in: u32,
    /// Segments sent with data, retransmissions included (`tcpi_data_segs_out`).
    pub data_segs_out: u32,
    /// Segments received with data (`tcpi_data_segs_in`).
    pub data_segs_in: u32,
    /// Retransmission timeouts in a row, reset when an ACK acknowledges new data
    /// (`tcpi_retransmits`).
    pub timeouts: u8,
    /// How many times the retransmission or persist timer is backed off now (`tcpi_backoff`).
    pub backoff: u8,
    /// Zero-window or keepalive probes sent and unanswered (`tcpi_probes`).
    pub probes: u8,
    /// Retransmission timeouts over the connection's life (`tcpi_total_rto`)...
    pub total_rto: u16,
    /// ...and the episodes they formed (`tcpi_total_rto_recoveries`).
    pub total_rto_recoveries: u16,
    /// Bytes queued by the application and not yet sent (`tcpi_notsent_bytes`).
    pub notsent_bytes: u32,
    /// The peer's segment size as seen in the data it sends, 536 until data arrives (Linux's
    /// `icsk_ack.rcv_mss`, `tcpi_rcv_mss`; [`rcv_mss`](Info::rcv_mss) is the MSS we announce).
    pub rcv_mss_estimate: u32,
    /// The smallest RTT sample over the connection's life (`tcpi_min_rtt`; Linux's is the
    /// minimum of the last 300 s, `tcp_min_rtt_wlen`); `None` before the first sample.
    pub min_rtt: Option<Duration>,
    /// The path MTU the connection sends by (`tcpi_pmtu`): the link's, lowered by ICMP
    /// fragmentation-needed (RFC 1191) or ICMPv6 packet-too-big (RFC 8201) messages.
    pub pmtu: u16,
    /// Send window in bytes (scaled; `tcpi_snd_wnd`).
    pub snd_wnd: u32,
    /// Receive window we last advertised, in bytes, counted from the RCV.NXT it was sent with
    /// (`tcpi_rcv_wnd`, Linux's `rcv_wnd`).
    pub rcv_wnd: u32,
    /// The peer's window scale shift (`tcpi_snd_wscale`).
    pub snd_wscale: u8,
    /// Our window scale shift (`tcpi_rcv_wscale`).
    pub rcv_wscale: u8,
    /// Timestamps negotiated (RFC 7323 §3).
    pub timestamps: bool,
    /// SACK negotiated (RFC 2018).
    pub sack: bool,
    /// Window scaling negotiated (RFC 7323 §2). Inferred from the shifts: a connection where
    /// both sides offered shift 0 reports `false`.
    pub window_scaling: bool,
    /// Data in a SYN was acknowledged: ours by the peer, or the peer's by us (TCP Fast Open,
    /// RFC 7413; `tcpi_options` TCPI_OPT_SYN_DATA).
    pub syn_data: bool,
    /// ECN negotiated (RFC 3168 §6.1.1; TCPI_OPT_ECN).
    pub ecn: bool,
    /// An ECT or CE mark was seen on arriving data (TCPI_OPT_ECN_SEEN).
    pub ecn_seen: bool,
}

/// Linux's `TCP_INFINITE_SSTHRESH`: `tcpi_snd_ssthresh` before the first congestion event.
pub const TCP_INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// Bits of Linux's `tcpi_options` (include/uapi/linux/tcp.h), as [`Info::options`] sets them.
pub mod tcpi_opt {
    /// Timestamps negotiated.
    pub const TIMESTAMPS: u8 = 1;
    /// SACK negotiated.
    pub const SACK: u8 = 2;
    /// Window scaling negotiated.
    pub const WSCALE: u8 = 4;
    /// ECN negotiated.
    pub const ECN: u8 = 8;
    /// An ECT or CE mark was seen on arriving data.
    pub const ECN_SEEN: u8 = 16;
    /// Data in the SYN was acknowledged (TCP Fast Open, RFC 7413).
    pub const SYN_DATA: u8 = 32;
}

impl Info {
    /// `tcpi_snd_cwnd`: the congestion window in whole segments of `snd_mss` (rounded down).
    pub fn cwnd_segments(&self) -> u32 {
        self.cwnd / self.snd_mss.max(1)
    }

    /// `tcpi_snd_ssthresh`: ssthresh in whole segments, or [`TCP_INFINITE_SSTHRESH`] while it
    /// is still "arbitrarily high" (RFC 5681 §3.1).
    pub fn ssthresh_segments(&self) -> u32 {
        if self.ssthresh == u32::MAX {
            TCP_INFINITE_SSTHRESH
        } else {
            (self.ssthresh / self.snd_mss.max(1)).min(TCP_INFINITE_SSTHRESH)
        }
    }

    /// `tcpi_options`: the negotiated options as Linux's [`tcpi_opt`] bits.
    pub fn options(&self) -> u8 {
        let mut o = 0;
        if self.timestamps {
            o |= tcpi_opt::TIMESTAMPS;
        }
        if self.sack {
            o |= tcpi_opt::SACK;
        }
        if self.window_scaling {
            o |= tcpi_opt::WSCALE;
        }
        if self.syn_data {
            o |= tcpi_opt::SYN_DATA;
        }
        if self.ecn {
            o |= tcpi_opt::ECN;
        }
        if self.ecn_seen {
            o |= tcpi_opt::ECN_SEEN;
        }
        o
    }
}

/// Linux's congestion-avoidance states (`tcpi_ca_state`, `enum tcp_ca_state`), by their
/// Linux names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CaState {
    /// Nothing suspicious (`TCP_CA_Open`, 0).
    #[default]
    Open,
    /// Duplicate ACKs or SACKs seen, no loss decided yet (`TCP_CA_Disorder`, 1).
    Disorder,
    /// cwnd reduced for a non-loss signal such as ECN (`TCP_CA_CWR`, 2).
    Cwr,
    /// Fast recovery (`TCP_CA_Recovery`, 3).
    Recovery,
    /// Recovery after a retransmission timeout (`TCP_CA_Loss`, 4).
    Loss,
}

impl CaState {
    /// The number Linux reports in `tcpi_ca_state`.
    pub fn linux_value(self) -> u8 {
        match self {
            CaState::Open => 0,
            CaState::Disorder => 1,
            CaState::Cwr => 2,
            CaState::Recovery => 3,
            CaState::Loss => 4,
        }
    }

    /// Linux's name, e.g. `Recovery`.
    pub fn name(self) -> &'static str {
        match self {
            CaState::Open => "Open",
            CaState::Disorder => "Disorder",
            CaState::Cwr => "CWR",
            CaState::Recovery => "Recovery",
            CaState::Loss => "Loss",
        }
    }
}

impl Connection {
    /// Zero-window probes sent since the window closed, or keepalive probes since the peer
    /// was last heard from (Linux's `icsk_probes_out` counts both; they never overlap).
    fn probes_out(&self) -> u8 {
        let keepalive = self.opts.liveness.as_ref().map_or(0, |l| l.probes_sent);
        (u32::from(self.snd.persist_backoff) + keepalive).min(u8::MAX.into()) as u8
    }

    /// Statistics in the manner of TCP_INFO.
    pub fn info(&self) -> Info {
        let flight = self.snd.nxt - self.snd.una;
        let mss = self.snd.mss.max(1);
        let (reordering, dsack_dups, retransmits) = self.reordering_dsacks_retransmits();
        let negotiated = !matches!(self.state, State::Closed | State::Listen | State::SynSent);
        let (tx, rx) = (self.snd.tx.as_deref(), self.rcv.data.as_deref());
        let (bytes_retrans, total_rto, total_rto_recoveries) = self.retransmission_totals();
        // What of the buffer has gone out at least once (SND.MAX, not SND.NXT, which a
        // timeout rewinds); with the FIN sent this is one past the buffer.
        let base = self.snd.buf_seq();
        let sent = if self.snd.max > base {
            self.snd.max - base
        } else {
            0
        };
        Info {
            state: Some(self.state),
            snd_mss: self.snd.mss,
            rcv_mss: self.rcv.mss,
            advmss: self.advmss(),
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            rto: self.rto(),
            bytes_in_flight: flight,
            pipe: self.snd.sb.pipe().bytes,
            // SND.MAX, not SND.NXT: a timeout rewinds SND.NXT but the segments stay out.
            unacked: (self.snd.max - self.snd.una).div_ceil(mss),
            sacked: self.snd.sb.sacked().segs + self.reno_sacked(),
            lost: self.snd.sb.lost().segs,
            retrans: self.snd.sb.retrans().segs,
            reordering,
            delivered: self.snd.delivered,
            dsack_dups,
            ca_state: self.ca_state(),
            snd_wnd: self.snd.wnd,
            rcv_wnd: self.rcv.offered(),
            snd_wscale: self.snd.shift,
            rcv_wscale: self.rcv.shift,
            timestamps: self.opts.ts().is_some(),
            sack: self.opts.sack,
            window_scaling: negotiated
                && self.cfg.window_scaling
                && (self.snd.shift != 0 || self.rcv.shift != 0),
            retransmits,
            syn_data: self.syn_data_acked(),
            ecn: self.ecn.ok(),
            ecn_seen: self.ecn.seen(),
            bytes_sent: tx.map_or(0, |t| t.bytes_acked)
                + u64::from(!self.passive && self.snd.syn_acked)
                + u64::from(self.snd.fin_seq.is_some_and(|f| self.snd.una > f)),
            bytes_received: rx.map_or(0, |d| d.bytes_received),
            bytes_out: tx.map_or(0, |t| t.bytes_out),
            bytes_retrans,
            segs_out: self.snd.segs_out,
            segs_in: self.rcv.segs_in,
            data_segs_out: tx.map_or(0, |t| t.data_segs_out),
            data_segs_in: rx.map_or(0, |d| d.data_segs_in),
            timeouts: self.snd.retries.min(u8::MAX.into()) as u8,
            backoff: self
                .rtt
                .backoff_count()
                .max(self.snd.persist_backoff.into())
                .min(u8::MAX.into()) as u8,
            probes: self.probes_out(),
            total_rto,
            total_rto_recoveries,
            notsent_bytes: self.snd.buf.len().saturating_sub(sent as usize) as u32,
            rcv_mss_estimate: self.rcv.seg_est,
            min_rtt: self.rtt.min_rtt(),
            pmtu: self.opts.pmtu,
        }
    }
}
