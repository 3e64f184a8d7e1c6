//! Classic Explicit Congestion Notification (RFC 3168), as Linux does it.
//!
//! * Negotiation (§6.1.1): an ECN-setup SYN carries ECE and CWR; an ECN-setup SYN-ACK carries
//!   ECE only. [`EcnMode`] is Linux's `tcp_ecn`: 0 never, 1 ask on our SYNs and accept, 2
//!   (Linux's default) accept when asked but never ask.
//! * Once negotiated, new data goes out ECN-capable, ECT(0) (§6.1.2); pure ACKs, control
//!   segments and retransmissions do not (§6.1.5, Linux `tcp_ecn_send`).
//! * Receiver (§6.1.3): a CE mark on an arriving segment makes every ACK carry ECE until a
//!   data segment with CWR arrives; the first mark asks for an immediate ACK (Linux
//!   `__tcp_ecn_check_ce`, `tcp_ecn_accept_cwr`).
//! * Sender (§6.1.2): an ACK with ECE reduces the congestion window once per window of data
//!   (Linux `tcp_enter_cwr`, done by the connection) and the next new data segment carries CWR.
//!
//! [`Ecn`] is one byte of flags; the connection asks it what to do at each of these points.

use crate::wire::tcp::Flags;

/// When to use ECN (Linux `net.ipv4.tcp_ecn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EcnMode {
    /// Never: our SYNs do not ask, and an ECN-setup SYN gets a plain SYN-ACK (`tcp_ecn=0`).
    Off,
    /// Ask on our SYNs, and accept when a peer asks (`tcp_ecn=1`).
    On,
    /// Accept when a peer asks, never ask (`tcp_ecn=2`, Linux's default).
    #[default]
    Passive,
}

impl EcnMode {
    /// The mode for a `tcp_ecn` value (Linux treats values above 2 as 2... except AccECN's
    /// 3 to 5, which synack does not implement; they map to 2 here).
    pub fn from_sysctl(v: u32) -> EcnMode {
        match v {
            0 => EcnMode::Off,
            1 => EcnMode::On,
            _ => EcnMode::Passive,
        }
    }

    /// Our SYN asks for ECN.
    pub fn asks(self) -> bool {
        self == EcnMode::On
    }

    /// A peer's ECN-setup SYN is answered with an ECN-setup SYN-ACK.
    pub fn accepts(self) -> bool {
        self != EcnMode::Off
    }
}

/// The ECN field of an IP header (RFC 3168 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codepoint {
    #[default]
    NotEct,
    Ect1,
    Ect0,
    Ce,
}

impl Codepoint {
    /// The codepoint of the two low bits of a TOS / traffic class byte.
    pub fn from_bits(bits: u8) -> Codepoint {
        match bits & 3 {
            0 => Codepoint::NotEct,
            1 => Codepoint::Ect1,
            2 => Codepoint::Ect0,
            _ => Codepoint::Ce,
        }
    }

    /// The two bits of the codepoint.
    pub fn bits(self) -> u8 {
        match self {
            Codepoint::NotEct => 0,
            Codepoint::Ect1 => 1,
            Codepoint::Ect0 => 2,
            Codepoint::Ce => 3,
        }
    }
}

/// A SYN asks for ECN: ECE and CWR both set (RFC 3168 §6.1.1).
pub fn syn_asks(flags: Flags) -> bool {
    flags.contains(Flags::ECE | Flags::CWR)
}

/// A SYN-ACK accepts ECN: ECE set, CWR clear (RFC 3168 §6.1.1; Linux `tcp_ecn_rcv_synack`).
pub fn synack_accepts(flags: Flags) -> bool {
    flags.contains(Flags::ECE) && !flags.contains(Flags::CWR)
}

const OK: u8 = 1;
/// An ECT or CE mark was seen on arriving data (TCPI_OPT_ECN_SEEN).
const SEEN: u8 = 2;
/// A CE mark arrived and no CWR since: our ACKs carry ECE.
const DEMAND_CWR: u8 = 4;
/// We reduced the window: the next new data segment carries CWR.
const QUEUE_CWR: u8 = 8;
/// The last segment sent was ECT(0).
const LAST_ECT: u8 = 16;

/// A connection's ECN state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ecn(u8);

impl Ecn {
    /// ECN is in use on this connection (negotiated).
    pub fn ok(self) -> bool {
        self.0 & OK != 0
    }

    /// An ECT or CE mark was seen on arriving data.
    pub fn seen(self) -> bool {
        self.0 & SEEN != 0
    }

    /// Our ACKs echo congestion (ECE) until the peer's CWR.
    pub fn demand_cwr(self) -> bool {
        self.0 & DEMAND_CWR != 0
    }

    /// The IP codepoint of the last segment [`on_send`](Self::on_send) was asked about.
    pub fn last_codepoint(self) -> Codepoint {
        if self.0 & LAST_ECT != 0 {
            Codepoint::Ect0
        } else {
            Codepoint::NotEct
        }
    }

    /// Marks ECN negotiated (or not: `on` false forgets everything).
    pub fn set_ok(&mut self, on: bool) {
        self.0 = if on { OK } else { 0 };
    }

    /// A data segment (in order or not) arrived with `cp` in its IP header. Returns true when
    /// the ACK should go out at once (the first CE mark: the sender's window may be tiny).
    pub fn on_data(&mut self, cp: Codepoint) -> bool {
        if !self.ok() {
            return false;
        }
        match cp {
            Codepoint::NotEct => false,
            Codepoint::Ce => {
                let first = !self.demand_cwr();
                self.0 |= DEMAND_CWR | SEEN;
                first
            }
            Codepoint::Ect0 | Codepoint::Ect1 => {
                self.0 |= SEEN;
                false
            }
        }
    }

    /// A data segment with CWR arrived (RFC 3168 §6.1.3): stop echoing. Returns true when the
    /// ACK should go out at once (the sender just reduced its window).
    pub fn on_cwr(&mut self) -> bool {
        if !self.ok() {
            return false;
        }
        self.0 &= !DEMAND_CWR;
        true
    }

    /// An ACK (not a SYN) carries ECE: true when it signals congestion to the sender.
    pub fn is_echo(self, flags: Flags) -> bool {
        self.ok() && flags.contains(Flags::ECE) && !flags.syn()
    }

    /// The window was reduced (ECE, fast recovery or a timeout): announce it with CWR on the
    /// next new data (Linux `tcp_ecn_queue_cwr`).
    pub fn queue_cwr(&mut self) {
        if self.ok() {
            self.0 |= QUEUE_CWR;
        }
    }

    /// A segment other than a SYN goes out: the flags to add (ECE while echoing, CWR on the
    /// first new data after a reduction) and its IP codepoint (ECT(0) for new data only).
    /// `new_data`: it carries data at or beyond SND.NXT, not a retransmission.
    pub fn on_send(&mut self, new_data: bool) -> (Flags, Codepoint) {
        self.0 &= !LAST_ECT;
        if !self.ok() {
            return (Flags::NONE, Codepoint::NotEct);
        }
        let mut flags = Flags::NONE;
        let mut cp = Codepoint::NotEct;
        if new_data {
            cp = Codepoint::Ect0;
            self.0 |= LAST_ECT;
            if self.0 & QUEUE_CWR != 0 {
                self.0 &= !QUEUE_CWR;
                flags |= Flags::CWR;
            }
        }
        if self.demand_cwr() {
            flags |= Flags::ECE;
        }
        (flags, cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> Ecn {
        let mut e = Ecn::default();
        e.set_ok(true);
        e
    }

    #[test]
    fn modes_map_linux_sysctl() {
        assert_eq!(EcnMode::default(), EcnMode::Passive);
        assert_eq!(EcnMode::from_sysctl(0), EcnMode::Off);
        assert_eq!(EcnMode::from_sysctl(1), EcnMode::On);
        assert_eq!(EcnMode::from_sysctl(2), EcnMode::Passive);
        assert!(EcnMode::On.asks() && EcnMode::On.accepts());
        assert!(!EcnMode::Passive.asks() && EcnMode::Passive.accepts());
        assert!(!EcnMode::Off.asks() && !EcnMode::Off.accepts());
    }

    #[test]
    fn setup_flags() {
        assert!(syn_asks(Flags::SYN | Flags::ECE | Flags::CWR));
        assert!(!syn_asks(Flags::SYN | Flags::ECE));
        assert!(!syn_asks(Flags::SYN | Flags::CWR));
        assert!(synack_accepts(Flags::SYN | Flags::ACK | Flags::ECE));
        assert!(!synack_accepts(
            Flags::SYN | Flags::ACK | Flags::ECE | Flags::CWR
        ));
        assert!(!synack_accepts(Flags::SYN | Flags::ACK));
    }

    #[test]
    fn codepoints_round_trip() {
        for b in 0..4 {
            assert_eq!(Codepoint::from_bits(0xfc | b).bits(), b);
        }
        assert_eq!(Codepoint::from_bits(2), Codepoint::Ect0);
        assert_eq!(Codepoint::from_bits(3), Codepoint::Ce);
    }

    #[test]
    fn not_negotiated_does_nothing() {
        let mut e = Ecn::default();
        assert!(!e.on_data(Codepoint::Ce));
        e.queue_cwr();
        assert_eq!(e.on_send(true), (Flags::NONE, Codepoint::NotEct));
        assert!(!e.is_echo(Flags::ACK | Flags::ECE));
        assert!(!e.seen());
    }

    #[test]
    fn new_data_is_ect0_acks_and_retransmissions_are_not() {
        let mut e = on();
        assert_eq!(e.on_send(true), (Flags::NONE, Codepoint::Ect0));
        assert_eq!(e.on_send(false), (Flags::NONE, Codepoint::NotEct));
    }

    #[test]
    fn ce_echoed_until_cwr() {
        let mut e = on();
        assert!(!e.on_data(Codepoint::Ect0));
        assert!(e.seen() && !e.demand_cwr());
        // The first CE asks for an immediate ACK, later ones do not.
        assert!(e.on_data(Codepoint::Ce));
        assert!(!e.on_data(Codepoint::Ce));
        assert_eq!(e.on_send(false), (Flags::ECE, Codepoint::NotEct));
        assert_eq!(e.on_send(true), (Flags::ECE, Codepoint::Ect0));
        assert!(e.on_cwr());
        assert_eq!(e.on_send(false), (Flags::NONE, Codepoint::NotEct));
        // A new CE starts echoing again.
        assert!(e.on_data(Codepoint::Ce));
        assert!(e.demand_cwr());
    }

    #[test]
    fn cwr_rides_the_first_new_data_only() {
        let mut e = on();
        assert!(e.is_echo(Flags::ACK | Flags::ECE));
        assert!(!e.is_echo(Flags::SYN | Flags::ACK | Flags::ECE));
        e.queue_cwr();
        // A pure ACK or a retransmission does not carry it.
        assert_eq!(e.on_send(false), (Flags::NONE, Codepoint::NotEct));
        assert_eq!(e.on_send(true), (Flags::CWR, Codepoint::Ect0));
        assert_eq!(e.on_send(true), (Flags::NONE, Codepoint::Ect0));
    }
}
