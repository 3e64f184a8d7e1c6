//! SEGMENT ARRIVES (RFC 9293 §3.10.7) as a table: for every state and a fixed set of incoming
//! segments, the state afterwards and the reply, each on a fresh connection.
//!
//! The expectations are data (`TABLE`), derived from RFC 9293 §3.10.7.1-§3.10.7.4 with the
//! RFC 5961 mitigations (§3.2 RST, §4.2 SYN, §5.2 ACK) that §3.10.7.4 folds in, plus the few
//! places where synack deliberately does what Linux does:
//! * a SYN that repeats the peer's original SYN in SYN-RECEIVED gets the SYN-ACK again;
//! * a SYN-ACK in SYN-RECEIVED with SEQ = IRS and ACK = ISS + 1 (simultaneous open) is taken
//!   as the ACK of our SYN, and answered with a duplicate ACK;
//! * TIME-WAIT closes on a RST at RCV.NXT (RFC 9293, not RFC 1337) and runs as Linux's
//!   `tcp_timewait_state_process`: only a bare ACK or RST at RCV.NXT is taken, everything
//!   else but a RST is acknowledged.
//!
//! How each state is reached, by segment exchanges only (see `in_state`):
//! * LISTEN, SYN-RECEIVED: the server; a SYN from the client makes SYN-RECEIVED (passive open).
//! * SYN-SENT and everything after: the client, driven by segments injected "from the
//!   server"; FIN-WAIT-* and LAST-ACK/CLOSING/TIME-WAIT through `shutdown(Write)` and the
//!   peer's FIN; CLOSED is a client whose LAST-ACK was completed by the peer's ACK.
//!
//! The connections use no timestamps, SACK or window scaling, so the numbers are plain and
//! PAWS plays no part. The reply is everything the connection sends right after the segment,
//! plus what it sends when the delayed-ACK timer fires (an ACK for in-order data is delayed,
//! RFC 1122 §4.2.3.2; it is still the reply). A fresh connection per row keeps the challenge
//! ACK rate limit (RFC 5961 §7) out of the way.

use core::fmt::{self, Write as _};
use core::net::SocketAddr;
use std::sync::Arc;

use super::harness::*;
use crate::tcp::{Config, Connection, Counters, Shutdown, State};
use crate::time::Instant;
use crate::wire::tcp::Flags;

const T0: Instant = Instant::ZERO;

/// The client's first byte after its SYN, and the server's.
const C1: u32 = CLIENT_ISS.0 + 1;
const S1: u32 = SERVER_ISS.0 + 1;

/// Payload of the data segments.
const DATA: &[u8] = b"0123456789";
/// Far beyond any window we advertise (at most 65535 without window scaling).
const FAR: u32 = 1_000_000;
/// Inside the window, but not RCV.NXT.
const NEAR: u32 = 100;
/// How far beyond SND.NXT an unacceptable ACK points.
const AHEAD: u32 = 1000;

/// The numbers a row needs to build its segment and resolve its expected reply.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// The connection under test, and its peer (segments are injected from `peer` to `us`).
    us: SocketAddr,
    peer: SocketAddr,
    /// Our ISS (in LISTEN: the one `deliver` will choose).
    iss: u32,
    /// Our SND.NXT (in LISTEN: ISS + 1, what it would be).
    snd_nxt: u32,
    /// Our RCV.NXT (in LISTEN and SYN-SENT, where it is not known yet: the peer's ISS).
    rcv_nxt: u32,
    /// The peer's ISS (IRS once known).
    irs: u32,
    /// Sequence number of the peer's FIN, once received.
    peer_fin: Option<u32>,
}

/// The incoming segments. Unless said otherwise, SEG.SEQ = RCV.NXT and SEG.ACK = SND.NXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegKind {
    /// <CTL=SYN>.
    Syn,
    /// SYN-RECEIVED only: the peer's original SYN again (SEG.SEQ = IRS).
    SynDup,
    /// <CTL=SYN,ACK>, acceptable ACK.
    SynAck,
    /// SYN-RECEIVED only: SEG.SEQ = IRS, SEG.ACK = ISS + 1, the peer's SYN-ACK of a
    /// simultaneous open (RFC 9293 Figure 7).
    SynAckSimOpen,
    /// <CTL=SYN,ACK> with SEG.ACK > SND.NXT.
    SynAckBad,
    /// <CTL=ACK>, acceptable ACK.
    Ack,
    /// <CTL=ACK> with SEG.ACK > SND.NXT.
    AckTooNew,
    /// <CTL=RST> at exactly RCV.NXT.
    Rst,
    /// <CTL=RST> inside the window, not at RCV.NXT.
    RstInWindow,
    /// <CTL=RST> outside the window.
    RstOutOfWindow,
    /// <CTL=RST,ACK> at RCV.NXT with an acceptable ACK.
    RstAck,
    /// <CTL=FIN,ACK>. Where the peer's FIN was already received (CLOSE-WAIT, CLOSING,
    /// LAST-ACK, TIME-WAIT, CLOSED) it is that FIN retransmitted: SEG.SEQ = RCV.NXT - 1.
    FinAck,
    /// <CTL=ACK><DATA> in the window.
    Data,
    /// <CTL=ACK><DATA> outside the window.
    DataOutOfWindow,
    /// No control bit at all, no data.
    NoFlags,
}

use SegKind::*;

/// The thirteen segments every state is tested with.
const KINDS: [SegKind; 13] = [
    Syn,
    SynAck,
    SynAckBad,
    Ack,
    AckTooNew,
    Rst,
    RstInWindow,
    RstOutOfWindow,
    RstAck,
    FinAck,
    Data,
    DataOutOfWindow,
    NoFlags,
];

const STATES: [State; 11] = [
    State::Listen,
    State::SynSent,
    State::SynReceived,
    State::Established,
    State::FinWait1,
    State::FinWait2,
    State::CloseWait,
    State::Closing,
    State::LastAck,
    State::TimeWait,
    State::Closed,
];

impl SegKind {
    fn label(self) -> &'static str {
        match self {
            Syn => "SYN",
            SynDup => "SYN (dup, seq=IRS)",
            SynAck => "SYN,ACK",
            SynAckSimOpen => "SYN,ACK (seq=IRS, sim. open)",
            SynAckBad => "SYN,ACK (ack>SND.NXT)",
            Ack => "ACK",
            AckTooNew => "ACK (ack>SND.NXT)",
            Rst => "RST (seq=RCV.NXT)",
            RstInWindow => "RST (in window, not exact)",
            RstOutOfWindow => "RST (out of window)",
            RstAck => "RST,ACK",
            FinAck => "FIN,ACK",
            Data => "data,ACK (in window)",
            DataOutOfWindow => "data,ACK (out of window)",
            NoFlags => "no flags",
        }
    }

    /// The segment, from the peer of `ctx`.
    fn inject(self, ctx: &Ctx) -> Inject {
        let (syn, synack, ack, rst, rstack) = (
            Flags::SYN,
            Flags::SYN | Flags::ACK,
            Flags::ACK,
            Flags::RST,
            Flags::RST | Flags::ACK,
        );
        let (rcv, snd) = (ctx.rcv_nxt, ctx.snd_nxt);
        let new = |flags: Flags, seq: u32, ack: u32| Inject::new(ctx.peer, ctx.us, flags, seq, ack);
        match self {
            Syn => new(syn, rcv, 0).mss(MSS),
            SynDup => new(syn, ctx.irs, 0).mss(MSS),
            SynAck => new(synack, rcv, snd).mss(MSS),
            SynAckSimOpen => new(synack, ctx.irs, ctx.iss.wrapping_add(1)).mss(MSS),
            SynAckBad => new(synack, rcv, snd.wrapping_add(AHEAD)).mss(MSS),
            Ack => new(ack, rcv, snd),
            AckTooNew => new(ack, rcv, snd.wrapping_add(AHEAD)),
            Rst => new(rst, rcv, 0),
            RstInWindow => new(rst, rcv.wrapping_add(NEAR), 0),
            RstOutOfWindow => new(rst, rcv.wrapping_add(FAR), 0),
            RstAck => new(rstack, rcv, snd),
            FinAck => new(Flags::FIN | Flags::ACK, ctx.peer_fin.unwrap_or(rcv), snd),
            Data => new(ack | Flags::PSH, rcv, snd).data(DATA),
            DataOutOfWindow => new(ack | Flags::PSH, rcv.wrapping_add(FAR), snd).data(DATA),
            NoFlags => new(Flags::NONE, rcv, 0),
        }
    }
}

/// A sequence or acknowledgment number in an expected reply, by its RFC name.
#[derive(Debug, Clone, Copy)]
enum V {
    Zero,
    /// Our ISS.
    Iss,
    /// Our SND.NXT before the segment.
    SndNxt,
    /// Our RCV.NXT before the segment.
    RcvNxt,
    /// SEG.ACK.
    SegAck,
    /// SEG.SEQ + SEG.LEN (SYN and FIN counted): everything in the segment acknowledged.
    SegEnd,
}

/// What the connection sends in reply.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Nothing,
    /// <SEQ=a><ACK=b><CTL=ACK>
    Ack(V, V),
    /// <SEQ=a><CTL=RST>
    Rst(V),
    /// <SEQ=a><ACK=b><CTL=RST,ACK>
    RstAck(V, V),
    /// <SEQ=a><ACK=b><CTL=SYN,ACK>
    SynAck(V, V),
    /// <SEQ=a><CTL=RST>, then our SYN <SEQ=ISS><CTL=SYN> again two ticks later (Linux
    /// resends it early after the first unacceptable ACK in SYN-SENT).
    RstThenSyn(V),
}

const NOTHING: Reply = Reply::Nothing;
/// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>: the ACK for an unacceptable segment (§3.10.7.4
/// first), the challenge ACK (RFC 5961 §3.2, §4.2) and the ACK for an ACK of unsent data
/// (§3.10.7.4 fifth, RFC 5961 §5.2).
const ACK: Reply = Reply::Ack(V::SndNxt, V::RcvNxt);
/// <SEQ=SND.NXT><ACK=SEG.SEQ+SEG.LEN><CTL=ACK>: the segment's text and FIN taken.
const ACK_ALL: Reply = Reply::Ack(V::SndNxt, V::SegEnd);
/// <SEQ=SEG.ACK><CTL=RST>
const RST_SEG_ACK: Reply = Reply::Rst(V::SegAck);
/// <SEQ=SEG.ACK><CTL=RST>, then <SEQ=ISS><CTL=SYN>
const RST_SEG_ACK_SYN: Reply = Reply::RstThenSyn(V::SegAck);
/// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
const RST_ACK_0: Reply = Reply::RstAck(V::Zero, V::SegEnd);
/// <SEQ=ISS><ACK=SEG.SEQ+1><CTL=SYN,ACK>
const SYN_ACK: Reply = Reply::SynAck(V::Iss, V::SegEnd);

#[derive(Debug, Clone, Copy)]
struct Expect {
    state: State,
    reply: Reply,
}

const fn x(state: State, reply: Reply) -> Expect {
    Expect { state, reply }
}

use State::{
    CloseWait, Closed, Closing, Established, FinWait1, FinWait2, LastAck, Listen, SynReceived,
    SynSent, TimeWait,
};

/// The expected outcome of every (state, segment) pair.
#[rustfmt::skip]
const TABLE: &[(State, SegKind, Expect)] = &[
    // §3.10.7.2 LISTEN: "An incoming RST should be ignored"; "Any acknowledgment is bad ...
    // <SEQ=SEG.ACK><CTL=RST>"; a SYN: "<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>", SYN-RECEIVED;
    // anything else: "Drop the segment and return."
    (Listen, Syn,             x(SynReceived, SYN_ACK)),
    (Listen, SynAck,          x(Listen, RST_SEG_ACK)),
    (Listen, SynAckBad,       x(Listen, RST_SEG_ACK)),
    (Listen, Ack,             x(Listen, RST_SEG_ACK)),
    (Listen, AckTooNew,       x(Listen, RST_SEG_ACK)),
    (Listen, Rst,             x(Listen, NOTHING)),
    (Listen, RstInWindow,     x(Listen, NOTHING)),
    (Listen, RstOutOfWindow,  x(Listen, NOTHING)),
    (Listen, RstAck,          x(Listen, NOTHING)),
    (Listen, FinAck,          x(Listen, RST_SEG_ACK)),
    (Listen, Data,            x(Listen, RST_SEG_ACK)),
    (Listen, DataOutOfWindow, x(Listen, RST_SEG_ACK)),
    (Listen, NoFlags,         x(Listen, NOTHING)),

    // §3.10.7.3 SYN-SENT: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the
    // RST bit is set ...) <SEQ=SEG.ACK><CTL=RST>"; a RST counts only with an acceptable ACK;
    // SYN,ACK: ESTABLISHED, "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"; SYN: SYN-RECEIVED,
    // "<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>"; "if neither of the SYN or RST bits is set, then
    // drop the segment". Linux resends its SYN two ticks after the first unacceptable ACK.
    (SynSent, Syn,             x(SynReceived, SYN_ACK)),
    (SynSent, SynAck,          x(Established, ACK_ALL)),
    (SynSent, SynAckBad,       x(SynSent, RST_SEG_ACK_SYN)),
    (SynSent, Ack,             x(SynSent, NOTHING)),
    (SynSent, AckTooNew,       x(SynSent, RST_SEG_ACK_SYN)),
    (SynSent, Rst,             x(SynSent, NOTHING)),
    (SynSent, RstInWindow,     x(SynSent, NOTHING)),
    (SynSent, RstOutOfWindow,  x(SynSent, NOTHING)),
    (SynSent, RstAck,          x(Closed, NOTHING)),
    (SynSent, FinAck,          x(SynSent, NOTHING)),
    (SynSent, Data,            x(SynSent, NOTHING)),
    (SynSent, DataOutOfWindow, x(SynSent, NOTHING)),
    (SynSent, NoFlags,         x(SynSent, NOTHING)),

    // §3.10.7.4 SYN-RECEIVED, passive OPEN. Fourth step: "If the connection was initiated
    // with a passive OPEN, then return this connection to the LISTEN state and return"
    // (RFC 5961 §4's challenge ACK is for the synchronized states). Second: a RST at RCV.NXT
    // returns it to LISTEN. Fifth: "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED
    // ... If the segment acknowledgment is not acceptable, form a reset segment
    // <SEQ=SEG.ACK><CTL=RST>" (and §3.5.2: an ACK of something not yet sent in a
    // non-synchronized state draws a RST). Eighth: a FIN enters CLOSE-WAIT.
    (SynReceived, Syn,             x(Listen, NOTHING)),
    (SynReceived, SynDup,          x(SynReceived, Reply::SynAck(V::Iss, V::RcvNxt))), // Linux
    (SynReceived, SynAck,          x(Listen, NOTHING)),
    // Linux, Figure 7; its SYN is one we already have: a duplicate ACK (tcp_send_dupack).
    (SynReceived, SynAckSimOpen,   x(Established, ACK)),
    (SynReceived, SynAckBad,       x(Listen, NOTHING)),
    (SynReceived, Ack,             x(Established, NOTHING)),
    (SynReceived, AckTooNew,       x(SynReceived, RST_SEG_ACK)),
    (SynReceived, Rst,             x(Listen, NOTHING)),
    (SynReceived, RstInWindow,     x(SynReceived, ACK)),
    (SynReceived, RstOutOfWindow,  x(SynReceived, NOTHING)),
    (SynReceived, RstAck,          x(Listen, NOTHING)),
    (SynReceived, FinAck,          x(CloseWait, ACK_ALL)),
    (SynReceived, Data,            x(Established, ACK_ALL)),
    (SynReceived, DataOutOfWindow, x(SynReceived, ACK)),
    (SynReceived, NoFlags,         x(SynReceived, NOTHING)),

    // §3.10.7.4 in the synchronized states. First: an unacceptable segment gets
    // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> "unless the RST bit is set". Second (RFC 5961
    // §3.2): out of window, drop; exactly RCV.NXT, CLOSED; otherwise a challenge ACK.
    // Fourth (RFC 5961 §4.2): a SYN "irrespective of the sequence number" gets a challenge
    // ACK. Fifth: no ACK bit, drop; SEG.ACK > SND.NXT, "send an ACK, drop the segment".
    (Established, Syn,             x(Established, ACK)),
    (Established, SynAck,          x(Established, ACK)),
    (Established, SynAckBad,       x(Established, ACK)),
    (Established, Ack,             x(Established, NOTHING)),
    (Established, AckTooNew,       x(Established, ACK)),
    (Established, Rst,             x(Closed, NOTHING)),
    (Established, RstInWindow,     x(Established, ACK)),
    (Established, RstOutOfWindow,  x(Established, NOTHING)),
    (Established, RstAck,          x(Closed, NOTHING)),
    (Established, FinAck,          x(CloseWait, ACK_ALL)),
    (Established, Data,            x(Established, ACK_ALL)),
    (Established, DataOutOfWindow, x(Established, ACK)),
    (Established, NoFlags,         x(Established, NOTHING)),

    // FIN-WAIT-1: "if the FIN segment is now acknowledged, then enter FIN-WAIT-2"; a FIN:
    // "If our FIN has been ACKed (perhaps in this segment), then enter TIME-WAIT".
    (FinWait1, Syn,             x(FinWait1, ACK)),
    (FinWait1, SynAck,          x(FinWait1, ACK)),
    (FinWait1, SynAckBad,       x(FinWait1, ACK)),
    (FinWait1, Ack,             x(FinWait2, NOTHING)),
    (FinWait1, AckTooNew,       x(FinWait1, ACK)),
    (FinWait1, Rst,             x(Closed, NOTHING)),
    (FinWait1, RstInWindow,     x(FinWait1, ACK)),
    (FinWait1, RstOutOfWindow,  x(FinWait1, NOTHING)),
    (FinWait1, RstAck,          x(Closed, NOTHING)),
    (FinWait1, FinAck,          x(TimeWait, ACK_ALL)),
    (FinWait1, Data,            x(FinWait2, ACK_ALL)),
    (FinWait1, DataOutOfWindow, x(FinWait1, ACK)),
    (FinWait1, NoFlags,         x(FinWait1, NOTHING)),

    // FIN-WAIT-2: a FIN: "Enter the TIME-WAIT state"; text is still delivered.
    (FinWait2, Syn,             x(FinWait2, ACK)),
    (FinWait2, SynAck,          x(FinWait2, ACK)),
    (FinWait2, SynAckBad,       x(FinWait2, ACK)),
    (FinWait2, Ack,             x(FinWait2, NOTHING)),
    (FinWait2, AckTooNew,       x(FinWait2, ACK)),
    (FinWait2, Rst,             x(Closed, NOTHING)),
    (FinWait2, RstInWindow,     x(FinWait2, ACK)),
    (FinWait2, RstOutOfWindow,  x(FinWait2, NOTHING)),
    (FinWait2, RstAck,          x(Closed, NOTHING)),
    (FinWait2, FinAck,          x(TimeWait, ACK_ALL)),
    (FinWait2, Data,            x(FinWait2, ACK_ALL)),
    (FinWait2, DataOutOfWindow, x(FinWait2, ACK)),
    (FinWait2, NoFlags,         x(FinWait2, NOTHING)),

    // CLOSE-WAIT: text "should not occur since a FIN has been received ... Ignore the segment
    // text." The retransmitted FIN lies before RCV.NXT: unacceptable, so an ACK.
    (CloseWait, Syn,             x(CloseWait, ACK)),
    (CloseWait, SynAck,          x(CloseWait, ACK)),
    (CloseWait, SynAckBad,       x(CloseWait, ACK)),
    (CloseWait, Ack,             x(CloseWait, NOTHING)),
    (CloseWait, AckTooNew,       x(CloseWait, ACK)),
    (CloseWait, Rst,             x(Closed, NOTHING)),
    (CloseWait, RstInWindow,     x(CloseWait, ACK)),
    (CloseWait, RstOutOfWindow,  x(CloseWait, NOTHING)),
    (CloseWait, RstAck,          x(Closed, NOTHING)),
    (CloseWait, FinAck,          x(CloseWait, ACK)),
    (CloseWait, Data,            x(CloseWait, NOTHING)),
    (CloseWait, DataOutOfWindow, x(CloseWait, ACK)),
    (CloseWait, NoFlags,         x(CloseWait, NOTHING)),

    // CLOSING: "if the ACK acknowledges our FIN, then enter the TIME-WAIT state". The data
    // segment acknowledges our FIN too; its text is ignored. The retransmitted FIN is
    // unacceptable (it ends before RCV.NXT), so its ACK field is never looked at.
    (Closing, Syn,             x(Closing, ACK)),
    (Closing, SynAck,          x(Closing, ACK)),
    (Closing, SynAckBad,       x(Closing, ACK)),
    (Closing, Ack,             x(TimeWait, NOTHING)),
    (Closing, AckTooNew,       x(Closing, ACK)),
    (Closing, Rst,             x(Closed, NOTHING)),
    (Closing, RstInWindow,     x(Closing, ACK)),
    (Closing, RstOutOfWindow,  x(Closing, NOTHING)),
    (Closing, RstAck,          x(Closed, NOTHING)),
    (Closing, FinAck,          x(Closing, ACK)),
    (Closing, Data,            x(TimeWait, NOTHING)),
    (Closing, DataOutOfWindow, x(Closing, ACK)),
    (Closing, NoFlags,         x(Closing, NOTHING)),

    // LAST-ACK: "If our FIN is now acknowledged, delete the TCB, enter the CLOSED state".
    (LastAck, Syn,             x(LastAck, ACK)),
    (LastAck, SynAck,          x(LastAck, ACK)),
    (LastAck, SynAckBad,       x(LastAck, ACK)),
    (LastAck, Ack,             x(Closed, NOTHING)),
    (LastAck, AckTooNew,       x(LastAck, ACK)),
    (LastAck, Rst,             x(Closed, NOTHING)),
    (LastAck, RstInWindow,     x(LastAck, ACK)),
    (LastAck, RstOutOfWindow,  x(LastAck, NOTHING)),
    (LastAck, RstAck,          x(Closed, NOTHING)),
    (LastAck, FinAck,          x(LastAck, ACK)),
    (LastAck, Data,            x(Closed, NOTHING)),
    (LastAck, DataOutOfWindow, x(LastAck, ACK)),
    (LastAck, NoFlags,         x(LastAck, NOTHING)),

    // TIME-WAIT: "The only thing that can arrive in this state is a retransmission of the
    // remote FIN. Acknowledge it"; a RST at RCV.NXT closes (RFC 9293, not RFC 1337). As Linux
    // (`tcp_timewait_state_process`): a bare ACK at RCV.NXT is taken silently whatever it
    // acknowledges, any other RST is dropped silently, and data is acknowledged.
    (TimeWait, Syn,             x(TimeWait, ACK)),
    (TimeWait, SynAck,          x(TimeWait, ACK)),
    (TimeWait, SynAckBad,       x(TimeWait, ACK)),
    (TimeWait, Ack,             x(TimeWait, NOTHING)),
    (TimeWait, AckTooNew,       x(TimeWait, NOTHING)),
    (TimeWait, Rst,             x(Closed, NOTHING)),
    (TimeWait, RstInWindow,     x(TimeWait, NOTHING)),
    (TimeWait, RstOutOfWindow,  x(TimeWait, NOTHING)),
    (TimeWait, RstAck,          x(Closed, NOTHING)),
    (TimeWait, FinAck,          x(TimeWait, ACK)),
    (TimeWait, Data,            x(TimeWait, ACK)),
    (TimeWait, DataOutOfWindow, x(TimeWait, ACK)),
    (TimeWait, NoFlags,         x(TimeWait, NOTHING)),

    // §3.10.7.1 CLOSED: "An incoming segment containing a RST is discarded"; otherwise
    // "If the ACK bit is off ... <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; If the ACK bit
    // is on, <SEQ=SEG.ACK><CTL=RST>".
    (Closed, Syn,             x(Closed, RST_ACK_0)),
    (Closed, SynAck,          x(Closed, RST_SEG_ACK)),
    (Closed, SynAckBad,       x(Closed, RST_SEG_ACK)),
    (Closed, Ack,             x(Closed, RST_SEG_ACK)),
    (Closed, AckTooNew,       x(Closed, RST_SEG_ACK)),
    (Closed, Rst,             x(Closed, NOTHING)),
    (Closed, RstInWindow,     x(Closed, NOTHING)),
    (Closed, RstOutOfWindow,  x(Closed, NOTHING)),
    (Closed, RstAck,          x(Closed, NOTHING)),
    (Closed, FinAck,          x(Closed, RST_SEG_ACK)),
    (Closed, Data,            x(Closed, RST_SEG_ACK)),
    (Closed, DataOutOfWindow, x(Closed, RST_SEG_ACK)),
    (Closed, NoFlags,         x(Closed, RST_ACK_0)),
];

fn matrix_config() -> Config {
    Config {
        timestamps: false,
        sack: false,
        window_scaling: false,
        ..config()
    }
}

/// Delivers `inj` to `c` and returns what `c` sends right after.
fn feed(c: &mut Connection, inj: Inject, cc: &mut Counters) -> Vec<Seg> {
    deliver(c, T0, &inj.seg(), cc);
    drain(c, T0, cc)
}

/// One segment as `<SEQ=..><ACK=..><CTL=..>`, the ACK number shown only with the ACK bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wire {
    flags: Flags,
    seq: u32,
    ack: Option<u32>,
    len: usize,
}

impl Wire {
    fn of(s: &Seg) -> Wire {
        let r = s.repr();
        Wire {
            flags: r.flags,
            seq: r.seq.0,
            ack: r.flags.ack().then_some(r.ack.0),
            len: r.payload.len(),
        }
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<SEQ={}>", self.seq)?;
        if let Some(a) = self.ack {
            write!(f, "<ACK={a}>")?;
        }
        let names = [
            (Flags::SYN, "SYN"),
            (Flags::RST, "RST"),
            (Flags::FIN, "FIN"),
            (Flags::PSH, "PSH"),
            (Flags::ACK, "ACK"),
        ];
        let ctl: Vec<&str> = names
            .iter()
            .filter(|(fl, _)| self.flags.contains(*fl))
            .map(|(_, n)| *n)
            .collect();
        if !ctl.is_empty() {
            write!(f, "<CTL={}>", ctl.join(","))?;
        }
        if self.len > 0 {
            write!(f, "<DATA:{}>", self.len)?;
        }
        Ok(())
    }
}

fn show(segs: &[Wire]) -> String {
    if segs.is_empty() {
        "nothing".to_string()
    } else {
        segs.iter()
            .map(Wire::to_string)
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

/// The segment `reply` stands for, given the row's numbers and its incoming segment.
fn resolve(reply: Reply, ctx: &Ctx, inj: &Inject) -> Vec<Wire> {
    let v = |v: V| match v {
        V::Zero => 0,
        V::Iss => ctx.iss,
        V::SndNxt => ctx.snd_nxt,
        V::RcvNxt => ctx.rcv_nxt,
        V::SegAck => inj.ack.0,
        V::SegEnd => {
            let len = inj.payload.len() + inj.flags.syn() as usize + inj.flags.fin() as usize;
            inj.seq.0.wrapping_add(len as u32)
        }
    };
    let w = |flags: Flags, seq: V, ack: Option<V>| Wire {
        flags,
        seq: v(seq),
        ack: ack.map(v),
        len: 0,
    };
    match reply {
        Reply::Nothing => vec![],
        Reply::Ack(s, a) => vec![w(Flags::ACK, s, Some(a))],
        Reply::Rst(s) => vec![w(Flags::RST, s, None)],
        Reply::RstAck(s, a) => vec![w(Flags::RST | Flags::ACK, s, Some(a))],
        Reply::SynAck(s, a) => vec![w(Flags::SYN | Flags::ACK, s, Some(a))],
        Reply::RstThenSyn(s) => vec![w(Flags::RST, s, None), w(Flags::SYN, V::Iss, None)],
    }
}

/// A client established with the server by injected segments (ISS `CLIENT_ISS`, the server's
/// `SERVER_ISS`).
fn established_client(cfg: &Arc<Config>, cc: &mut Counters) -> Connection {
    let mut c = client(cfg);
    c.connect(T0, SERVER, CLIENT_ISS, cc).unwrap();
    let syn = drain(&mut c, T0, cc);
    assert_eq!(syn.len(), 1);
    assert_eq!(syn[0].seq(), CLIENT_ISS);
    let synack = Inject::to_client(Flags::SYN | Flags::ACK, SERVER_ISS.0, C1).mss(MSS);
    let ack = feed(&mut c, synack, cc);
    assert_eq!(ack.len(), 1, "{ack:?}");
    assert_eq!((ack[0].seq().0, ack[0].ack().0), (C1, S1));
    assert_eq!(c.state(), Established);
    c
}

/// Sends our FIN (shutdown(Write)) and checks it went out at `seq`.
fn send_fin(c: &mut Connection, cc: &mut Counters, seq: u32) {
    c.shutdown(Shutdown::Write).unwrap();
    let fin = drain(c, T0, cc);
    assert_eq!(fin.len(), 1, "{fin:?}");
    assert!(fin[0].flags().fin());
    assert_eq!(fin[0].seq().0, seq);
}

/// A fresh connection in state `s`, reached by segment exchanges, and the numbers of its
/// connection.
fn in_state(s: State) -> (Connection, Counters, Ctx) {
    let cfg = Arc::new(matrix_config());
    let mut cc = Counters::default();
    let client_ctx = |snd_nxt: u32, rcv_nxt: u32, peer_fin: Option<u32>| Ctx {
        us: CLIENT,
        peer: SERVER,
        iss: CLIENT_ISS.0,
        snd_nxt,
        rcv_nxt,
        irs: SERVER_ISS.0,
        peer_fin,
    };
    let server_ctx = |rcv_nxt: u32| Ctx {
        us: SERVER,
        peer: CLIENT,
        iss: SERVER_ISS.0,
        snd_nxt: S1,
        rcv_nxt,
        irs: CLIENT_ISS.0,
        peer_fin: None,
    };
    // The peer's FIN at S1, with SEG.ACK = `ack` (C1: ours not acknowledged; C1 + 1: it is).
    let fin = |ack: u32| Inject::to_client(Flags::FIN | Flags::ACK, S1, ack);

    let (c, ctx) = match s {
        Listen => (server(&cfg), server_ctx(CLIENT_ISS.0)),
        SynReceived => {
            let mut c = server(&cfg);
            let synack = feed(
                &mut c,
                Inject::to_server(Flags::SYN, CLIENT_ISS.0, 0).mss(MSS),
                &mut cc,
            );
            assert_eq!(synack.len(), 1, "{synack:?}");
            assert_eq!(synack[0].flags(), Flags::SYN | Flags::ACK);
            assert_eq!((synack[0].seq(), synack[0].ack().0), (SERVER_ISS, C1));
            (c, server_ctx(C1))
        }
        SynSent => {
            let mut c = client(&cfg);
            c.connect(T0, SERVER, CLIENT_ISS, &mut cc).unwrap();
            assert_eq!(drain(&mut c, T0, &mut cc).len(), 1);
            (c, client_ctx(C1, SERVER_ISS.0, None))
        }
        Established => (established_client(&cfg, &mut cc), client_ctx(C1, S1, None)),
        FinWait1 => {
            let mut c = established_client(&cfg, &mut cc);
            send_fin(&mut c, &mut cc, C1);
            (c, client_ctx(C1 + 1, S1, None))
        }
        FinWait2 => {
            let mut c = established_client(&cfg, &mut cc);
            send_fin(&mut c, &mut cc, C1);
            let out = feed(&mut c, Inject::to_client(Flags::ACK, S1, C1 + 1), &mut cc);
            assert!(out.is_empty(), "{out:?}");
            (c, client_ctx(C1 + 1, S1, None))
        }
        CloseWait => {
            let mut c = established_client(&cfg, &mut cc);
            assert_eq!(feed(&mut c, fin(C1), &mut cc).len(), 1);
            (c, client_ctx(C1, S1 + 1, Some(S1)))
        }
        Closing => {
            let mut c = established_client(&cfg, &mut cc);
            send_fin(&mut c, &mut cc, C1);
            assert_eq!(feed(&mut c, fin(C1), &mut cc).len(), 1);
            (c, client_ctx(C1 + 1, S1 + 1, Some(S1)))
        }
        LastAck | Closed => {
            let mut c = established_client(&cfg, &mut cc);
            assert_eq!(feed(&mut c, fin(C1), &mut cc).len(), 1);
            send_fin(&mut c, &mut cc, C1);
            if s == Closed {
                let ack = Inject::to_client(Flags::ACK, S1 + 1, C1 + 1);
                assert!(feed(&mut c, ack, &mut cc).is_empty());
            }
            (c, client_ctx(C1 + 1, S1 + 1, Some(S1)))
        }
        TimeWait => {
            let mut c = established_client(&cfg, &mut cc);
            send_fin(&mut c, &mut cc, C1);
            assert_eq!(feed(&mut c, fin(C1 + 1), &mut cc).len(), 1);
            (c, client_ctx(C1 + 1, S1 + 1, Some(S1)))
        }
    };
    assert_eq!(c.state(), s, "could not reach {s}");
    (c, cc, ctx)
}

/// What happened to one row: the state afterwards, the reply, and the bytes now readable
/// that were not before.
struct Outcome {
    state: State,
    reply: Vec<Wire>,
    delivered: usize,
}

fn run(state: State, kind: SegKind) -> (Ctx, Inject, Outcome) {
    let (mut c, mut cc, ctx) = in_state(state);
    let delay = matrix_config().delayed_ack;
    let inj = kind.inject(&ctx);
    let before = c.recv_queue_len();
    deliver(&mut c, T0, &inj.seg(), &mut cc);
    let mut out = drain(&mut c, T0, &mut cc);
    // A delayed ACK is still the reply: let the delayed-ACK timer run (nothing else is due
    // that early: retransmission timers are at least RTO.min away).
    for _ in 0..4 {
        let Some(t) = c.poll_timeout().filter(|&t| t <= T0 + delay) else {
            break;
        };
        c.handle_timeout(t, &mut cc);
        out.extend(drain(&mut c, t, &mut cc));
    }
    let outcome = Outcome {
        state: c.state(),
        reply: out.iter().map(Wire::of).collect(),
        delivered: c.recv_queue_len().saturating_sub(before),
    };
    (ctx, inj, outcome)
}

/// Every (state × segment) case of SEGMENT ARRIVES, RFC 9293 §3.10.7 with RFC 5961: the state
/// afterwards and the reply (nothing, an ACK, a RST with or without ACK, a SYN-ACK). Text is
/// delivered exactly when a data segment is taken in ESTABLISHED, FIN-WAIT-1 or FIN-WAIT-2
/// (the state it leaves the connection in); in the other states it is ignored. Every row runs;
/// on any disagreement the whole table is printed, mismatches marked.
#[test]
fn segment_arrives_every_state_and_segment() {
    // The table covers each state with each of the thirteen segments exactly once.
    for s in STATES {
        for k in KINDS {
            let n = TABLE.iter().filter(|r| r.0 == s && r.1 == k).count();
            assert_eq!(n, 1, "{s} × {} appears {n} times in TABLE", k.label());
        }
    }
    for (s, k, _) in TABLE {
        assert!(
            KINDS.contains(k) || *s == SynReceived,
            "{s} × {} is an extra row outside SYN-RECEIVED",
            k.label()
        );
    }

    let mut report = String::new();
    let mut bad = Vec::new();
    for (i, &(state, kind, expect)) in TABLE.iter().enumerate() {
        let (ctx, inj, got) = run(state, kind);
        let want = resolve(expect.reply, &ctx, &inj);
        let want_delivered =
            if kind == Data && matches!(expect.state, Established | FinWait1 | FinWait2) {
                DATA.len()
            } else {
                0
            };
        let mut wrong = Vec::new();
        if got.state != expect.state {
            wrong.push("state");
        }
        if got.reply != want {
            wrong.push("reply");
        }
        if got.delivered != want_delivered {
            wrong.push("delivered");
        }
        let incoming = Wire {
            flags: inj.flags,
            seq: inj.seq.0,
            ack: inj.flags.ack().then_some(inj.ack.0),
            len: inj.payload.len(),
        };
        let _ = writeln!(
            report,
            "{mark} {i:>3} {state:<12} {label:<29} {incoming:<42} expect {es:<12} {er:<34} {ed:>2}B | got {gs:<12} {gr} {gd}B",
            mark = if wrong.is_empty() { " " } else { "✗" },
            state = state.name(),
            label = kind.label(),
            incoming = incoming.to_string(),
            es = expect.state.name(),
            er = show(&want),
            ed = want_delivered,
            gs = got.state.name(),
            gr = show(&got.reply),
            gd = got.delivered,
        );
        if !wrong.is_empty() {
            bad.push(format!(
                "{} × {}: {}",
                state.name(),
                kind.label(),
                wrong.join(", ")
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} rows disagree with RFC 9293 §3.10.7 / RFC 5961:\n  {}\n\n\
         (#, state, segment, incoming, expected state / reply / bytes delivered, actual)\n{report}",
        bad.len(),
        TABLE.len(),
        bad.join("\n  ")
    );
}
