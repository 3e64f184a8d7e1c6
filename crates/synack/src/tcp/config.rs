//! Tunables of the TCP layer. Every default follows Linux (ARCHITECTURE.md rule 8); the sysctl or
//! socket option each one mirrors is named beside it.

use core::net::IpAddr;

use crate::time::Duration;

use super::congestion::Algorithm;
use super::ecn::EcnMode;
use super::fastopen::{FastOpenKey, FastOpenMode};

/// Keepalive settings (RFC 1122 §4.2.3.6; Linux TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe (Linux tcp_keepalive_time, 7200 s).
    pub idle: Duration,
    /// Time between unanswered probes (tcp_keepalive_intvl, 75 s).
    pub interval: Duration,
    /// Unanswered probes before the connection is declared dead (tcp_keepalive_probes, 9).
    pub count: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// When a listener answers a SYN with a SYN cookie (RFC 4987 §3.6) instead of a SYN-queue entry
/// (Linux `net.ipv4.tcp_syncookies`, whose values 0, 1 and 2 these are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SynCookies {
    /// 0: never. A SYN that finds the SYN queue full is dropped.
    Never,
    /// 1 (Linux's default): only when the listener's SYN queue is full.
    #[default]
    OnOverflow,
    /// 2: for every SYN; the SYN queue stays empty.
    Always,
}

/// Configuration shared by the connections of a stack (per-connection overrides live on the
/// connection: nodelay, cork, keepalive, user timeout, congestion control).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Initial retransmission timeout (RFC 6298 §2.1: 1 s; Linux TCP_TIMEOUT_INIT).
    pub rto_initial: Duration,
    /// Lower bound on the RTO (Linux TCP_RTO_MIN, 200 ms; RFC 6298 says 1 s, Linux and most
    /// stacks use 200 ms).
    pub rto_min: Duration,
    /// Upper bound on the RTO (Linux TCP_RTO_MAX, 120 s).
    pub rto_max: Duration,
    /// SYN retransmissions before connect fails with TimedOut (tcp_syn_retries, 6). Like
    /// Linux, this bounds the attempt twice: by count (`syn_retries` + `syn_linear_timeouts`
    /// retransmissions) and by time (what `syn_retries` exponential backoffs from
    /// `rto_initial` take, (2^(n+1) − 1) × 1 s, counted from the first SYN; Linux
    /// `tcp_write_timeout`, `tcp_model_timeout`), whichever comes first.
    pub syn_retries: u32,
    /// SYN retransmission timeouts that keep the RTO at its initial value before the
    /// exponential backoff of RFC 6298 §5.5 starts (Linux 6.17+ `tcp_syn_linear_timeouts`,
    /// 4): SYNs go out at 0, 1, 2, 3, 4, 5 s, then 7, 11, 19 s ...
    pub syn_linear_timeouts: u32,
    /// SYN-ACK retransmissions before a half-open connection is dropped (tcp_synack_retries, 5).
    pub synack_retries: u32,
    /// Half-open connections (SYN-RECEIVED) one listener keeps in its SYN queue before it answers
    /// with SYN cookies or drops SYNs. Linux's `tcp_max_syn_backlog` defaults to
    /// max(128, established-hash buckets / 128), 4096 on a host with a few GB of memory; there
    /// the SYN queue's own bound is the listen backlog and this sysctl only decides when SYNs
    /// are dropped with cookies off. Here the two queues are independent knobs: `listen(backlog)`
    /// bounds the accept queue, this bounds the SYN queue (each entry is a compact record, no
    /// connection and no buffers).
    pub max_syn_backlog: usize,
    /// SYN cookies (Linux `tcp_syncookies`, default 1: when the SYN queue is full).
    pub syncookies: SynCookies,
    /// TCP Fast Open (RFC 7413): Linux `net.ipv4.tcp_fastopen`, whose bits these are
    /// ([`FastOpenMode`]); default 1, the client side only.
    pub fastopen: FastOpenMode,
    /// The server's Fast Open key (Linux `net.ipv4.tcp_fastopen_key`); `None`: a key the
    /// stack derives from its secret (Linux picks a random one).
    pub fastopen_key: Option<FastOpenKey>,
    /// How long retransmissions go on before the connection is aborted with TimedOut
    /// (tcp_retries2, 15): as Linux, a time, not a count — the time this many exponential
    /// backoffs from `rto_min` would take ((2^(n+1) − 1) × 200 ms up to `rto_max`, then
    /// `rto_max` each; about 924.6 s for 15), counted from the first retransmission
    /// (`tcp_write_timeout`, `retransmits_timed_out`). The timer that fires past it aborts,
    /// without a RST (`tcp_write_err`). A user timeout (TCP_USER_TIMEOUT) replaces it.
    pub max_retries: u32,
    /// Delayed-ACK timeout (Linux's minimum ATO, 40 ms; RFC 1122 §4.2.3.2 allows up to 500 ms).
    /// Zero turns delayed ACKs off.
    pub delayed_ack: Duration,
    /// TIME-WAIT duration, 2·MSL (Linux TCP_TIMEWAIT_LEN, 60 s).
    pub time_wait: Duration,
    /// Ignore a RST in TIME-WAIT, so that an old duplicate RST cannot cut TIME-WAIT short
    /// (RFC 1337's "TIME-WAIT assassination" fix; Linux `tcp_rfc1337`, off: a RST at RCV.NXT
    /// ends TIME-WAIT).
    pub rfc1337: bool,
    /// How long an orphaned connection (closed by the application) may stay in FIN-WAIT-2
    /// (tcp_fin_timeout, 60 s).
    pub fin_wait2_timeout: Duration,
    /// Initial congestion window in segments (RFC 6928 / Linux TCP_INIT_CWND, 10).
    pub initial_window: u32,
    /// Send buffer limit in bytes (tcp_wmem default 16 KiB grows to 4 MiB in Linux; we use a
    /// fixed limit).
    pub send_buffer: usize,
    /// Receive buffer in bytes of memory (Linux `tcp_rmem[1]`, or SO_RCVBUF doubled). As in
    /// Linux, the window offered is a share of it (half at first, then as measured per segment,
    /// Linux's scaling_ratio), and it grows with what the application reads per round trip
    /// up to [`recv_buffer_max`](Self::recv_buffer_max) unless
    /// [`recv_buffer_locked`](Self::recv_buffer_locked).
    pub recv_buffer: usize,
    /// The most the receive buffer may grow to (`tcp_rmem[2]`). Linux picks the window scale
    /// it offers from this, not from the current buffer, so the shift stays valid as the
    /// buffer grows: the default 6 MiB gives shift 7, defaults.sh's 15 MiB gives 8.
    pub recv_buffer_max: usize,
    /// The application fixed the receive buffer's size (SO_RCVBUF; Linux `SOCK_RCVBUF_LOCK`):
    /// no autotuning, and the window scale is chosen from this buffer rather than from
    /// `recv_buffer_max` (a locked 8 KiB buffer offers no scaling). Off, as in Linux.
    pub recv_buffer_locked: bool,
    /// Offer and accept window scaling (RFC 7323 §2; tcp_window_scaling, on).
    pub window_scaling: bool,
    /// Our window scale shift; `None` picks the smallest shift that lets `recv_buffer_max`
    /// be advertised.
    pub window_scale: Option<u8>,
    /// Offer and accept timestamps (RFC 7323 §3; tcp_timestamps, on).
    pub timestamps: bool,
    /// Offer and accept SACK (RFC 2018; tcp_sack, on).
    pub sack: bool,
    /// Report duplicate segments with D-SACK blocks (RFC 2883; tcp_dsack, on).
    pub dsack: bool,
    /// Classic ECN (RFC 3168; tcp_ecn): Linux's default 2, [`EcnMode::Passive`], accepts
    /// ECN when a peer's SYN asks for it and never asks; [`EcnMode::On`] asks too.
    pub ecn: EcnMode,
    /// MSS to use when the peer sends none over IPv4 (RFC 9293 §3.7.1: 536; Linux
    /// TCP_MSS_DEFAULT). An IPv4-mapped peer is an IPv4 one.
    pub default_mss: u16,
    /// MSS to use when the peer sends none over IPv6 (RFC 9293 §3.7.1, MUST-15: 1220, the
    /// IPv6 minimum MTU less 60; Linux's IPv6 mss_clamp).
    pub default_mss_v6: u16,
    /// Upper bound on the MSS we announce and send with (TCP_MAXSEG before connect/listen).
    pub mss_clamp: Option<u16>,
    /// Restart from the initial window after an idle period of one RTO (RFC 5681 §4.1;
    /// tcp_slow_start_after_idle, on).
    pub slow_start_after_idle: bool,
    /// Keepalive parameters used when a connection enables keepalive (off by default).
    pub keepalive: Keepalive,
    /// Challenge ACKs allowed per second per connection (RFC 5961 §7; Linux
    /// tcp_challenge_ack_limit is per host, 1000).
    pub challenge_ack_limit: u32,
    /// Per connection, at most one ACK per this interval answers an invalid segment: a
    /// challenge ACK (RFC 5961 §7 asks for a throttle) or the ACK to an out-of-window segment
    /// without data, so two stacks cannot loop on each other (Linux tcp_invalid_ratelimit,
    /// 500 ms). Zero turns it off.
    pub invalid_ratelimit: Duration,
    /// Congestion control for new connections (net.ipv4.tcp_congestion_control; CUBIC, as
    /// Linux). A connection can change it with `Connection::set_congestion` (TCP_CONGESTION).
    pub congestion: Algorithm,
    /// Disable Nagle for new connections (TCP_NODELAY).
    pub nodelay: bool,
    /// The fewest segments in one of the bursts Linux hands its device at once (its TSO
    /// packets; tcp_min_tso_segs, 2; 0 counts as 1, Linux's least). With the pacing ratios
    /// below it decides which of our segments end such a burst and so carry PSH, as Linux's
    /// do (see `tcp::push`).
    pub min_tso_segs: u32,
    /// Pacing rate in slow start, percent of cwnd × MSS / SRTT (tcp_pacing_ss_ratio, 200).
    pub pacing_ss_ratio: u32,
    /// Pacing rate in congestion avoidance, percent (tcp_pacing_ca_ratio, 120).
    pub pacing_ca_ratio: u32,
    /// One tick of Linux's timer clock (a jiffy: 1/HZ; 4 ms at the HZ=250 of the reference
    /// kernel). Where Linux arms a timer for a number of ticks, synack arms it for as many of
    /// these: the shortest retransmission timer, `TCP_TIMEOUT_MIN` (2 ticks), with which
    /// Linux resends its SYN after an unacceptable ACK in SYN-SENT.
    pub tick: Duration,
    /// Pace every connection at its congestion controller's pacing rate, as Linux does for
    /// every TCP flow when the interface's qdisc is `fq`. Off by default, as with Linux's
    /// default qdiscs (pfifo_fast, fq_codel), where only a controller that asks for pacing is
    /// paced (Linux's internal pacing, which BBR requests: BBR always paces).
    pub pacing: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(120),
            syn_retries: 6,
            syn_linear_timeouts: 4,
            synack_retries: 5,
            max_syn_backlog: 4096,
            syncookies: SynCookies::OnOverflow,
            fastopen: FastOpenMode::LINUX,
            fastopen_key: None,
            max_retries: 15,
            delayed_ack: Duration::from_millis(40),
            time_wait: Duration::from_secs(60),
            rfc1337: false,
            fin_wait2_timeout: Duration::from_secs(60),
            initial_window: 10,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            recv_buffer_max: 6 * 1024 * 1024,
            recv_buffer_locked: false,
            window_scaling: true,
            window_scale: None,
            timestamps: true,
            sack: true,
            dsack: true,
            ecn: EcnMode::Passive,
            default_mss: 536,
            default_mss_v6: 1220,
            mss_clamp: None,
            slow_start_after_idle: true,
            keepalive: Keepalive::default(),
            challenge_ack_limit: 1000,
            invalid_ratelimit: Duration::from_millis(500),
            congestion: Algorithm::Cubic,
            nodelay: false,
            min_tso_segs: 2,
            pacing_ss_ratio: 200,
            pacing_ca_ratio: 120,
            tick: Duration::from_millis(4),
            pacing: false,
        }
    }
}

impl Config {
    /// The MSS to send with when the peer at `ip` announced none (RFC 9293 §3.7.1).
    pub fn default_mss_for(&self, ip: IpAddr) -> u16 {
        match ip.to_canonical() {
            IpAddr::V4(_) => self.default_mss,
            IpAddr::V6(_) => self.default_mss_v6,
        }
    }

    /// The Linux kernel's own defaults, where they differ from [`Config::default`]'s choices:
    /// tcp_rmem `4096 131072 6291456` and tcp_wmem `4096 16384 4194304` (Linux grows both
    /// buffers while a connection runs; synack keeps them fixed), and tcp_syn_retries 6. The
    /// packetdrill runner starts from this and applies a script's sysctls on top.
    pub fn linux() -> Config {
        Config {
            recv_buffer: 131072,
            recv_buffer_max: 6291456,
            send_buffer: 16384,
            ..Config::default()
        }
    }

    /// The window scale shift we offer (RFC 7323 §2.2, §2.3: at most 14): `window_scale` if
    /// set, else as Linux picks it (`tcp_select_initial_window`):
    /// the smallest shift that covers `recv_buffer_max`, or the buffer itself when locked.
    pub fn our_window_shift(&self) -> u8 {
        if !self.window_scaling {
            return 0;
        }
        if let Some(s) = self.window_scale {
            return s.min(14);
        }
        super::rwnd::window_shift(self)
    }
}
