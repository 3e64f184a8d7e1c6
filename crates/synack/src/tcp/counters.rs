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
    /// Segments in TIME-WAIT dropped or only acknowledged because their timestamp failed
    /// PAWS (Linux 6.15+ counts these apart from PAWSEstab).
    paws_timewait => "PAWSTimewait",
    /// ACKs not sent in TIME-WAIT because of the rate limit on answers to invalid segments
    /// (`Config::invalid_ratelimit`).
    ack_skipped_time_wait => "TCPACKSkippedTimeWait",
    /// SYN-ACKs reset in SYN-SENT because their timestamp echo is none we sent.
    paws_active_rejected => "PAWSActiveRejected",
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
    /// Fast recoveries undone on a partial ACK: the timestamps showed a delayed original
    /// filled the hole (Linux TCPPartialUndo).
    partial_undo => "TCPPartialUndo",
    /// Episodes undone after they ended, by D-SACKs that came late (Linux TCPDSACKUndo).
    dsack_undo => "TCPDSACKUndo",
    /// Timeouts undone because the timestamps or D-SACKs showed the originals arrived.
    loss_undo => "TCPLossUndo",
    /// Timeouts F-RTO (RFC 5682) found spurious: data never retransmitted was acknowledged.
    spurious_rtos => "TCPSpuriousRTOs",
    /// Fast recoveries started with SACK (RACK or the duplicate-ACK threshold).
    sack_recovery => "TCPSackRecovery",
    /// Fast recoveries started without SACK (duplicate ACKs).
    reno_recovery => "TCPRenoRecovery",
    /// Without SACK, more duplicate ACKs than segments could have arrived: taken for
    /// reordering (the degree set to what was outstanding, Linux `tcp_check_reno_reordering`).
    reno_reorder => "TCPRenoReorder",
    /// ACKs for data never sent, dropped (RFC 5961 §5).
    ack_too_new => "TCPACKSkippedSeq",
    /// Segments outside the receive window, dropped.
    out_of_window => "TCPOutOfWindow",
    /// Segments dropped for other reasons (no ACK bit, bad state).
    dropped => "TCPDropped",
    /// ICMP errors for a connection whose quoted sequence number lies outside
    /// SND.UNA..=SND.NXT, ignored (RFC 5927 §4.1; Linux `LINUX_MIB_OUTOFWINDOWICMPS`).
    out_of_window_icmps => "OutOfWindowIcmps",
    /// Connections closed at once on reaching TIME-WAIT because `StackConfig::max_time_wait`
    /// entries were in use (Linux's time wait bucket table overflow).
    tw_overflow => "TCPTimeWaitOverflow",
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
    /// Fast Open connections a listener accepted with the data of their SYN (RFC 7413 §4.2.2).
    fast_open_passive => "TCPFastOpenPassive",
    /// SYNs with a Fast Open cookie that did not check out (answered with a fresh cookie).
    fast_open_passive_fail => "TCPFastOpenPassiveFail",
    /// Fast Open SYNs handled as ordinary ones because the listener's Fast Open queue was full.
    fast_open_listen_overflow => "TCPFastOpenListenOverflow",
    /// SYNs that asked for a Fast Open cookie.
    fast_open_cookie_reqd => "TCPFastOpenCookieReqd",
    /// Connections whose SYN data the server acknowledged (client side).
    fast_open_active => "TCPFastOpenActive",
    /// Connections whose SYN data the server did not acknowledge (client side).
    fast_open_active_fail => "TCPFastOpenActiveFail",
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
    /// IPv4 fragments received (each one counts).
    ip_reasm_reqds => "IpReasmReqds",
    /// IPv4 datagrams reassembled.
    ip_reasm_oks => "IpReasmOKs",
    /// IPv4 reassembly failures: datagrams dropped (overlap, timeout, contradiction) and
    /// fragments refused (memory bound, tiny first fragment).
    ip_reasm_fails => "IpReasmFails",
    /// IPv4 datagrams whose reassembly timed out.
    ip_reasm_timeout => "IpReasmTimeout",
    /// IPv4 datagrams dropped for overlapping fragments.
    ip_reasm_overlaps => "IpExtReasmOverlaps",
    /// IPv4 datagrams sent in fragments.
    ip_frag_oks => "IpFragOKs",
    /// IPv4 fragments sent.
    ip_frag_creates => "IpFragCreates",
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
    /// ICMP time-exceeded messages sent (fragment reassembly timed out).
    icmp_out_time_excds => "IcmpOutTimeExcds",
    /// ICMP errors not sent because of the rate limit (Linux icmp_msgs_per_sec).
    icmp_out_rate_limited => "IcmpOutRateLimitGlobal",
    /// IPv6 packets received.
    ip6_in_receives => "Ip6InReceives",
    /// IPv6 packets with header errors (bad length, bad version, malformed extension headers).
    ip6_in_hdr_errors => "Ip6InHdrErrors",
    /// IPv6 packets not for one of our addresses, or from an address no peer may use.
    ip6_in_addr_errors => "Ip6InAddrErrors",
    /// IPv6 packets for an upper layer we do not speak.
    ip6_in_unknown_protos => "Ip6InUnknownProtos",
    /// IPv6 packets discarded for an extension header we must not skip.
    ip6_in_discards => "Ip6InDiscards",
    /// IPv6 packets handed to a device.
    ip6_out_requests => "Ip6OutRequests",
    /// IPv6 fragments received (each one counts).
    ip6_reasm_reqds => "Ip6ReasmReqds",
    /// IPv6 datagrams reassembled (atomic fragments included, as Linux counts them).
    ip6_reasm_oks => "Ip6ReasmOKs",
    /// IPv6 reassembly failures.
    ip6_reasm_fails => "Ip6ReasmFails",
    /// IPv6 datagrams whose reassembly timed out with fragment 0 in.
    ip6_reasm_timeout => "Ip6ReasmTimeout",
    /// IPv6 datagrams dropped for overlapping fragments (RFC 5722).
    ip6_reasm_overlaps => "Ip6ReasmOverlaps",
    /// IPv6 datagrams sent in fragments.
    ip6_frag_oks => "Ip6FragOKs",
    /// IPv6 fragments sent.
    ip6_frag_creates => "Ip6FragCreates",
    /// ICMPv6 messages received.
    icmp6_in_msgs => "Icmp6InMsgs",
    /// ICMPv6 messages received in error (bad checksum, truncated).
    icmp6_in_errors => "Icmp6InErrors",
    /// ICMPv6 destination-unreachable messages received.
    icmp6_in_dest_unreachs => "Icmp6InDestUnreachs",
    /// ICMPv6 packet-too-big messages received.
    icmp6_in_pkt_too_bigs => "Icmp6InPktTooBigs",
    /// ICMPv6 echo requests received.
    icmp6_in_echos => "Icmp6InEchos",
    /// ICMPv6 messages sent.
    icmp6_out_msgs => "Icmp6OutMsgs",
    /// ICMPv6 echo replies sent.
    icmp6_out_echo_replies => "Icmp6OutEchoReplies",
    /// ICMPv6 parameter-problem messages sent.
    icmp6_out_parm_problems => "Icmp6OutParmProblems",
    /// ICMPv6 time-exceeded messages sent (fragment reassembly timed out).
    icmp6_out_time_excds => "Icmp6OutTimeExcds",
    /// Flow labels changed after a retransmission timeout (Linux sk_rethink_txhash).
    timeout_rehash => "TCPTimeoutRehash",
    /// TCP segments with a bad checksum.
    tcp_in_csum_errors => "InCsumErrors",
    /// RSTs sent for segments that found no connection or listener.
    no_port_rsts => "TCPNoPortRst",
    /// ICMP destination unreachable messages sent (UDP port unreachable, forwarder refusals).
    icmp_out_dest_unreachs => "IcmpOutDestUnreachs",
    /// ICMPv6 destination unreachable messages sent.
    icmp6_out_dest_unreachs => "Icmp6OutDestUnreachs",
    /// UDP datagrams the application read from a socket (or the forwarder's), IPv4: counted
    /// at the read, as Linux counts `UDP_MIB_INDATAGRAMS` in `udp_recvmsg`, not when queued
    /// (one still queued, or dropped with its socket, is not counted; a peek is not).
    udp_in_datagrams => "UdpInDatagrams",
    /// UDP datagrams for a port nobody listens on, IPv4.
    udp_no_ports => "UdpNoPorts",
    /// UDP datagrams not delivered for another reason (bad length, checksum, full queue).
    udp_in_errors => "UdpInErrors",
    /// UDP datagrams sent, IPv4.
    udp_out_datagrams => "UdpOutDatagrams",
    /// UDP datagrams dropped because the socket's receive queue was full, IPv4.
    udp_rcvbuf_errors => "UdpRcvbufErrors",
    /// UDP datagrams not sent because the output queue was full, IPv4.
    udp_sndbuf_errors => "UdpSndbufErrors",
    /// UDP datagrams with a bad checksum, IPv4.
    udp_in_csum_errors => "UdpInCsumErrors",
    /// UDP datagrams the application read, IPv6 (counted at the read, as `udp_in_datagrams`).
    /// Counted by the datagram's family, not the socket's, as Linux's `udpv6_recvmsg` counts
    /// an IPv4 datagram read from an IPv6 socket in `udp_in_datagrams`; in synack only the
    /// forwarder's socket takes both families.
    udp6_in_datagrams => "Udp6InDatagrams",
    /// UDP datagrams for a port nobody listens on, IPv6.
    udp6_no_ports => "Udp6NoPorts",
    /// UDP datagrams not delivered for another reason, IPv6.
    udp6_in_errors => "Udp6InErrors",
    /// UDP datagrams sent, IPv6.
    udp6_out_datagrams => "Udp6OutDatagrams",
    /// UDP datagrams dropped on a full receive queue, IPv6.
    udp6_rcvbuf_errors => "Udp6RcvbufErrors",
    /// UDP datagrams not sent on a full output queue, IPv6.
    udp6_sndbuf_errors => "Udp6SndbufErrors",
    /// UDP datagrams with a bad (or, as IPv6 requires one, zero) checksum.
    udp6_in_csum_errors => "Udp6InCsumErrors",
    /// Forwarder: SYNs to forwarded destinations put before the application.
    fwd_tcp_pending => "FwdTcpPending",
    /// Forwarder: SYNs past the cap on pending decisions (answered with a SYN cookie when
    /// cookies are on, else dropped).
    fwd_tcp_pending_full => "FwdTcpPendingFull",
    /// Forwarder: pending decisions that timed out.
    fwd_tcp_pending_expired => "FwdTcpPendingExpired",
    /// Forwarder: flows refused (RST or ICMP unreachable) by the application.
    fwd_refused => "FwdRefused",
    /// Forwarder: UDP flows opened.
    fwd_udp_flows => "FwdUdpFlows",
    /// Forwarder: UDP flows closed (idle, or the client said unreachable).
    fwd_udp_flows_closed => "FwdUdpFlowsClosed",
    /// Forwarder: UDP datagrams dropped because the flow table was full.
    fwd_udp_flows_full => "FwdUdpFlowsFull",
    /// Forwarder: echo requests put before the application.
    fwd_echo_pending => "FwdEchoPending",
    /// Forwarder: echo requests dropped past the cap on pending ones.
    fwd_echo_full => "FwdEchoFull",
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
