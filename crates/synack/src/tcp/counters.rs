//! Counters in the vocabulary of Linux's `nstat` (the `Tcp*`/`TcpExt*` MIB names without the
//! prefix), so a reader who knows `nstat -az` knows what each means.

use core::fmt;

macro_rules! counters {
    ($( $(#[$doc:meta])* $field:ident => $name:literal, )*) => {
        /// Event counts of a stack (or of one connection in tests). All start at zero.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[$doc])* pub $field: u64, )*
        }

        impl Counters {
            /// `(nstat name, value)` for every counter, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( ($name, self.$field), )*].into_iter()
            }

            /// Adds every counter of `other` into `self`.
            pub fn add(&mut self, other: &Counters) {
                $( self.$field += other.$field; )*
            }
        }
    };
}

counters! {
    /// Connections that went SYN-SENT from CLOSED (active opens).
    active_opens => "ActiveOpens",
    /// Connections that went SYN-RECEIVED from LISTEN (passive opens).
    passive_opens => "PassiveOpens",
    /// Opens that failed: SYN-SENT/SYN-RECEIVED to CLOSED, or SYN-RECEIVED back to LISTEN.
    attempt_fails => "AttemptFails",
    /// Resets from ESTABLISHED or CLOSE-WAIT.
    estab_resets => "EstabResets",
    /// Segments received (including those in error).
    in_segs => "InSegs",
    /// Segments sent, excluding retransmissions.
    out_segs => "OutSegs",
    /// Segments retransmitted.
    retrans_segs => "RetransSegs",
    /// Segments received in error (bad checksum, malformed).
    in_errs => "InErrs",
    /// Segments sent with RST.
    out_rsts => "OutRsts",
    /// Retransmission timeouts that fired.
    timeouts => "TCPTimeouts",
    /// Fast retransmissions (duplicate-ACK triggered).
    fast_retrans => "TCPFastRetrans",
    /// Delayed ACKs sent because the timer fired.
    delayed_acks => "DelayedACKs",
    /// Challenge ACKs sent (RFC 5961).
    challenge_acks => "TCPChallengeACK",
    /// SYNs in a synchronized state answered with a challenge ACK.
    syn_challenges => "TCPSYNChallenge",
    /// Challenge ACKs not sent because of the rate limit.
    challenge_ack_limited => "TCPACKSkippedChallenge",
    /// Segments dropped by PAWS (RFC 7323 §5) in an established connection.
    paws_estab => "PAWSEstab",
    /// Keepalive probes sent.
    keepalive_probes => "TCPKeepAlive",
    /// Connections aborted because retransmissions or keepalive probes ran out.
    abort_on_timeout => "TCPAbortOnTimeout",
    /// Connections aborted by close() with unread data (RST sent).
    abort_on_data => "TCPAbortOnData",
    /// Connections reset by ABORT from the application.
    abort_on_close => "TCPAbortOnClose",
    /// Segments that arrived out of order and were queued.
    ofo_queue => "TCPOFOQueue",
    /// Out-of-order segments dropped (reassembly full).
    ofo_drop => "TCPOFODrop",
    /// Zero-window probes sent.
    window_probes => "TCPWinProbe",
    /// Tail loss probes sent (RFC 8985 §7).
    loss_probes => "TCPLossProbes",
    /// SACK blocks ignored as invalid (outside what was sent, or inverted).
    sack_discard => "TCPSACKDiscard",
    /// Timeouts that found the peer had discarded SACKed data (RFC 2018 §8 reneging).
    sack_reneging => "TCPSACKReneging",
    /// ACKs carrying a D-SACK block (RFC 2883).
    dsack_recv => "TCPDSACKRecv",
    /// Retransmitted segments a D-SACK showed to have been unnecessary.
    dsack_recv_segs => "TCPDSACKRecvSegs",
    /// Recovery episodes whose window reduction was undone as spurious.
    full_undo => "TCPFullUndo",
    /// Episodes undone after they ended, by D-SACKs that came late (Linux TCPDSACKUndo).
    dsack_undo => "TCPDSACKUndo",
    /// Fast recoveries started with SACK (RACK or the duplicate-ACK threshold).
    sack_recovery => "TCPSackRecovery",
    /// Fast recoveries started without SACK (duplicate ACKs).
    reno_recovery => "TCPRenoRecovery",
    /// ACKs for data never sent, dropped (RFC 5961 §5).
    ack_too_new => "TCPACKSkippedSeq",
    /// Segments outside the receive window, dropped.
    out_of_window => "TCPOutOfWindow",
    /// Segments dropped for other reasons (no ACK bit, bad state).
    dropped => "TCPDropped",
    /// Completed handshakes dropped because the accept queue was full.
    listen_overflows => "ListenOverflows",
    /// SYNs or final ACKs a listener dropped (overflows included).
    listen_drops => "ListenDrops",
    /// SYN-ACKs sent with a SYN cookie instead of a SYN-queue entry (RFC 4987 §3.6).
    syncookies_sent => "SyncookiesSent",
    /// ACKs whose SYN cookie checked out: connections re-created from a cookie.
    syncookies_recv => "SyncookiesRecv",
    /// ACKs checked as SYN cookies that failed (forged, wrong 4-tuple, expired).
    syncookies_failed => "SyncookiesFailed",
    /// SYNs answered with a cookie because the SYN queue was full.
    req_q_full_do_cookies => "TCPReqQFullDoCookies",
    /// SYNs dropped because the SYN queue was full and cookies are off.
    req_q_full_drop => "TCPReqQFullDrop",
    /// Gauge, not a count: half-open connections in the SYN queues now.
    syn_queue_len => "SynQueueLen",
    /// Gauge, not a count: the most half-open connections the SYN queues held at once.
    syn_queue_peak => "SynQueuePeak",
    /// IP packets received.
    ip_in_receives => "IpInReceives",
    /// IP packets with header errors (bad checksum, bad length, bad version).
    ip_in_hdr_errors => "IpInHdrErrors",
    /// IP packets not for one of our addresses, or from an address no peer may use.
    ip_in_addr_errors => "IpInAddrErrors",
    /// IP fragments dropped (no reassembly yet).
    ip_reasm_fails => "IpReasmFails",
    /// IP packets for a protocol we do not speak.
    ip_in_unknown_protos => "IpInUnknownProtos",
    /// IP packets handed to a device.
    ip_out_requests => "IpOutRequests",
    /// IP packets we could not route.
    ip_out_no_routes => "IpOutNoRoutes",
    /// ICMP messages received.
    icmp_in_msgs => "IcmpInMsgs",
    /// ICMP messages received in error (bad checksum, truncated).
    icmp_in_errors => "IcmpInErrors",
    /// ICMP destination-unreachable messages received.
    icmp_in_dest_unreachs => "IcmpInDestUnreachs",
    /// ICMP echo requests received.
    icmp_in_echos => "IcmpInEchos",
    /// ICMP messages sent.
    icmp_out_msgs => "IcmpOutMsgs",
    /// ICMP echo replies sent.
    icmp_out_echo_reps => "IcmpOutEchoReps",
    /// TCP segments with a bad checksum.
    tcp_in_csum_errors => "InCsumErrors",
    /// RSTs sent for segments that found no connection or listener.
    no_port_rsts => "TCPNoPortRst",
}

impl fmt::Display for Counters {
    /// One `Name value` line per non-zero counter, like `nstat`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, v) in self.iter().filter(|&(_, v)| v != 0) {
            writeln!(f, "{name:<24} {v}")?;
        }
        Ok(())
    }
}
