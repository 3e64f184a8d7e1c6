//! TCP segments: the RFC 9293 §3.1 header, its options, and a Wireshark-style one-line
//! rendering.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Acknowledgment Number                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! |       |       |R|E|G|K|H|T|N|N|                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Checksum            |         Urgent Pointer        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           [Options]                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Options understood: EOL and NOP (kinds 0, 1), MSS (2, RFC 9293 §3.2), window scale
//! (3, RFC 7323 §2), SACK-permitted and SACK (4 and 5, RFC 2018), timestamps (8, RFC 7323 §3).
//! Unknown kinds are skipped by their length. A length of 0 or 1, a length running past the
//! header, or a known kind with the wrong length is [`Error::BadOption`].
//!
//! [`Repr::emit`] lays options out as Linux does (`mss, sackOK, TS val ecr, nop, wscale` on a
//! SYN; `nop, nop, TS` and `nop, nop, sack` on data), so captures of synack line up with
//! captures of the kernel.

use core::fmt;
use core::net::IpAddr;

use super::checksum::{self, Checksum};
use super::seq::SeqNum;
use super::{Error, IpProtocol, Result, be16, be32, put16, put32};

/// Byte offsets of the fixed header fields, as in the RFC 9293 §3.1 diagram.
mod field {
    use core::ops::Range;
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ_NUM: usize = 4;
    pub const ACK_NUM: usize = 8;
    /// Data offset (high nibble) and reserved bits.
    pub const DATA_OFF: usize = 12;
    /// Control bits CWR ECE URG ACK PSH RST SYN FIN.
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
    pub const OPTIONS: Range<usize> = 20..60;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Longest header: data offset 15.
pub const MAX_HEADER_LEN: usize = 60;
/// Most option bytes a header can carry.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// Option kinds (IANA "TCP Option Kind Numbers").
pub mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
    /// TCP Fast Open cookie (RFC 7413 §4.1.1).
    pub const FAST_OPEN: u8 = 34;
    /// RFC 6994 shared experimental option; with [`FAST_OPEN_MAGIC`] it is the Fast Open
    /// option as deployed before kind 34 was assigned (Linux still accepts and answers it).
    pub const EXPERIMENTAL: u8 = 254;
    /// The RFC 6994 experiment identifier of Fast Open.
    pub const FAST_OPEN_MAGIC: u16 = 0xF989;
}

/// The control bits, RFC 9293 §3.1 (plus CWR and ECE from RFC 3168).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: Flags = Flags(0x01);
    pub const SYN: Flags = Flags(0x02);
    pub const RST: Flags = Flags(0x04);
    pub const PSH: Flags = Flags(0x08);
    pub const ACK: Flags = Flags(0x10);
    pub const URG: Flags = Flags(0x20);
    pub const ECE: Flags = Flags(0x40);
    pub const CWR: Flags = Flags(0x80);
    pub const NONE: Flags = Flags(0);

    /// Names in the order Wireshark prints them (lowest bit first).
    const NAMES: [(Flags, &'static str); 8] = [
        (Flags::FIN, "FIN"),
        (Flags::SYN, "SYN"),
        (Flags::RST, "RST"),
        (Flags::PSH, "PSH"),
        (Flags::ACK, "ACK"),
        (Flags::URG, "URG"),
        (Flags::ECE, "ECE"),
        (Flags::CWR, "CWR"),
    ];

    /// True if every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any bit of `other` is set.
    #[inline]
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    #[inline]
    pub const fn syn(self) -> bool {
        self.contains(Flags::SYN)
    }
    #[inline]
    pub const fn ack(self) -> bool {
        self.contains(Flags::ACK)
    }
    #[inline]
    pub const fn fin(self) -> bool {
        self.contains(Flags::FIN)
    }
    #[inline]
    pub const fn rst(self) -> bool {
        self.contains(Flags::RST)
    }
    #[inline]
    pub const fn psh(self) -> bool {
        self.contains(Flags::PSH)
    }
    #[inline]
    pub const fn urg(self) -> bool {
        self.contains(Flags::URG)
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl core::ops::BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl core::ops::Not for Flags {
    type Output = Flags;
    fn not(self) -> Flags {
        Flags(!self.0)
    }
}

impl fmt::Display for Flags {
    /// `SYN, ACK` — Wireshark's order and spelling; `<None>` when no bit is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (flag, name) in Flags::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(", ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("<None>")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{self}]")
    }
}

/// One option as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    /// Maximum segment size (RFC 9293 §3.7.1).
    Mss(u16),
    /// Window scale shift count (RFC 7323 §2.2). Values above 14 are reported as sent; the
    /// connection clamps them (RFC 7323 §2.3).
    WindowScale(u8),
    SackPermitted,
    /// SACK blocks (RFC 2018 §3): 1 to 4 (left edge, right edge) pairs.
    Sack(SackBlocks),
    /// Timestamps (RFC 7323 §3.2).
    Timestamps {
        tsval: u32,
        tsecr: u32,
    },
    /// TCP Fast Open (RFC 7413 §4.1.1), kind 34 or the experimental kind 254 with magic
    /// 0xF989: the cookie as carried (empty: a cookie request).
    FastOpen {
        experimental: bool,
        cookie: &'a [u8],
    },
    /// An option we do not interpret, with its data (after kind and length).
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Up to four SACK blocks held inline (no allocation). Equality looks only at the blocks held.
#[derive(Clone, Copy, Default)]
pub struct SackBlocks {
    blocks: [(SeqNum, SeqNum); 4],
    len: u8,
}

impl SackBlocks {
    /// Most blocks an option can carry (RFC 2018 §3: 40 option bytes allow 4).
    pub const MAX: usize = 4;

    pub const fn new() -> Self {
        SackBlocks {
            blocks: [(SeqNum(0), SeqNum(0)); 4],
            len: 0,
        }
    }

    /// Builds from a slice; blocks past the fourth are ignored.
    pub fn from_slice(blocks: &[(SeqNum, SeqNum)]) -> Self {
        let mut s = SackBlocks::new();
        for &b in blocks.iter().take(Self::MAX) {
            s.push(b);
        }
        s
    }

    /// Appends a block; returns false (and changes nothing) when four are held already.
    pub fn push(&mut self, block: (SeqNum, SeqNum)) -> bool {
        if (self.len as usize) < Self::MAX {
            self.blocks[self.len as usize] = block;
            self.len += 1;
            true
        } else {
            false
        }
    }

    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        &self.blocks[..self.len as usize]
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n as u8);
    }
}

impl PartialEq for SackBlocks {
    fn eq(&self, other: &SackBlocks) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SackBlocks {}

impl fmt::Debug for SackBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Iterates the options of a header. Yields `Err(Error::BadOption)` once and then stops if
/// an option is malformed; stops after EOL (padding after it is not inspected).
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> OptionsIter<'a> {
    pub fn new(options: &'a [u8]) -> Self {
        OptionsIter {
            rest: options,
            done: false,
        }
    }

    fn fail(&mut self) -> Option<Result<TcpOption<'a>>> {
        self.done = true;
        Some(Err(Error::BadOption))
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let (&k, after_kind) = self.rest.split_first()?;
        match k {
            kind::EOL => {
                self.done = true;
                return Some(Ok(TcpOption::EndOfList));
            }
            kind::NOP => {
                self.rest = after_kind;
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        let Some(&len) = after_kind.first() else {
            return self.fail();
        };
        let len = len as usize;
        if len < 2 || len > self.rest.len() {
            return self.fail();
        }
        let data = &self.rest[2..len];
        self.rest = &self.rest[len..];
        let opt = match (k, data.len()) {
            (kind::MSS, 2) => TcpOption::Mss(be16(data, 0)),
            (kind::WINDOW_SCALE, 1) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
            (kind::TIMESTAMPS, 8) => TcpOption::Timestamps {
                tsval: be32(data, 0),
                tsecr: be32(data, 4),
            },
            (kind::SACK, n) if n > 0 && n % 8 == 0 && n <= 32 => {
                let mut blocks = SackBlocks::new();
                for b in data.chunks_exact(8) {
                    blocks.push((SeqNum(be32(b, 0)), SeqNum(be32(b, 4))));
                }
                TcpOption::Sack(blocks)
            }
            (
                kind::MSS
                | kind::WINDOW_SCALE
                | kind::SACK_PERMITTED
                | kind::TIMESTAMPS
                | kind::SACK,
                _,
            ) => {
                return self.fail();
            }
            (kind::FAST_OPEN, _) => TcpOption::FastOpen {
                experimental: false,
                cookie: data,
            },
            (kind::EXPERIMENTAL, n) if n >= 2 && be16(data, 0) == kind::FAST_OPEN_MAGIC => {
                TcpOption::FastOpen {
                    experimental: true,
                    cookie: &data[2..],
                }
            }
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        Some(Ok(opt))
    }
}

/// A view of a TCP segment (header and payload) in a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len): no accessor panics afterwards.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ensures the fixed header is present and the data offset lies within 5..=15 words and
    /// within the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN || hl > b.len() {
            return Err(Error::BadHeaderLength);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    #[inline]
    pub fn seq_number(&self) -> SeqNum {
        SeqNum(be32(self.buffer.as_ref(), field::SEQ_NUM))
    }

    /// The acknowledgement field, whether or not the ACK bit is set.
    #[inline]
    pub fn ack_number(&self) -> SeqNum {
        SeqNum(be32(self.buffer.as_ref(), field::ACK_NUM))
    }

    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::DATA_OFF] >> 4) as usize) * 4
    }

    /// The four reserved bits after the data offset (bit 0 of them is RFC 3540's NS / AccECN's AE).
    #[inline]
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::DATA_OFF] & 0x0f
    }

    #[inline]
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The window field as sent (unscaled).
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT)
    }

    /// The raw option bytes (including any padding).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS.start..self.header_len()]
    }

    /// Iterates the options.
    #[inline]
    pub fn options_iter(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.options())
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// SEG.LEN (RFC 9293 §3.4): payload octets plus one for SYN and one for FIN.
    #[inline]
    pub fn segment_len(&self) -> usize {
        let f = self.flags();
        self.payload().len() + f.syn() as usize + f.fin() as usize
    }

    /// True if the checksum over the pseudo-header, header and payload verifies.
    #[inline]
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let b = self.buffer.as_ref();
        let mut c = checksum::pseudo_header(src, dst, IpProtocol::Tcp, b.len() as u32);
        c.add_bytes(b);
        c.verifies()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v)
    }

    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v)
    }

    pub fn set_seq_number(&mut self, v: SeqNum) {
        put32(self.buffer.as_mut(), field::SEQ_NUM, v.0)
    }

    pub fn set_ack_number(&mut self, v: SeqNum) {
        put32(self.buffer.as_mut(), field::ACK_NUM, v.0)
    }

    /// Sets the data offset from a header length in bytes (a multiple of 4, 20..=60).
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        b[field::DATA_OFF] = (((len / 4) as u8) << 4) | (b[field::DATA_OFF] & 0x0f);
    }

    pub fn set_flags(&mut self, f: Flags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }

    pub fn set_window_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::WINDOW, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v)
    }

    pub fn set_urgent_at(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::URGENT, v)
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }

    /// Computes and stores the checksum over the pseudo-header, header and payload (the whole
    /// buffer is the segment).
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let mut c: Checksum = checksum::pseudo_header(src, dst, IpProtocol::Tcp, b.len() as u32);
        c.add_bytes(b);
        let sum = c.finish();
        self.set_checksum(sum);
    }

    /// [`fill_checksum`](Self::fill_checksum) given `payload`, the sum of the payload already
    /// taken (by [`Checksum::add_copy`] as it was copied in): sums only the pseudo-header and
    /// the header.
    pub fn fill_checksum_with(&mut self, src: IpAddr, dst: IpAddr, payload: Checksum) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let mut c: Checksum = checksum::pseudo_header(src, dst, IpProtocol::Tcp, b.len() as u32);
        let hl = self.header_len().min(b.len());
        c.add_bytes(&b[..hl]);
        // The header is a multiple of 4 bytes long, so the payload starts at an even offset.
        c.add_sum_at(payload, hl);
        let sum = c.finish();
        self.set_checksum(sum);
    }
}

/// The TCP timestamps option (RFC 7323 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamps {
    pub tsval: u32,
    pub tsecr: u32,
}

/// The options synack interprets, parsed out of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    pub mss: Option<u16>,
    /// The shift count as received (RFC 7323 §2.3 clamps values above 14 when used).
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: Option<Timestamps>,
    pub sack: SackBlocks,
    /// TCP Fast Open (RFC 7413 §4.1.1), emitted last as Linux does.
    pub fast_open: Option<FastOpen>,
}

/// A TCP Fast Open option (RFC 7413 §4.1.1): a cookie request (no cookie) or a cookie, in the
/// standard form (kind 34) or the experimental one (kind 254, magic 0xF989, RFC 6994).
///
/// A parsed option keeps the length the peer sent, even one no cookie may have (odd, below 4
/// or above 16 bytes): [`cookie`](Self::cookie) says whether it is a usable one. At most 16
/// bytes are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FastOpen {
    pub experimental: bool,
    /// The cookie length as carried (0: a request).
    len: u8,
    bytes: [u8; FastOpen::MAX_COOKIE],
}

impl FastOpen {
    /// RFC 7413 §4.1.1: "The cookie length MUST be between 4 and 16 bytes, inclusive."
    pub const MIN_COOKIE: usize = 4;
    pub const MAX_COOKIE: usize = 16;

    /// A cookie request: the option with no cookie (RFC 7413 §4.1.2).
    pub const fn request(experimental: bool) -> FastOpen {
        FastOpen {
            experimental,
            len: 0,
            bytes: [0; FastOpen::MAX_COOKIE],
        }
    }

    /// The option carrying `cookie`; `None` if it is longer than 16 bytes.
    pub fn with_cookie(experimental: bool, cookie: &[u8]) -> Option<FastOpen> {
        let mut f = FastOpen::request(experimental);
        f.bytes.get_mut(..cookie.len())?.copy_from_slice(cookie);
        f.len = cookie.len() as u8;
        Some(f)
    }

    /// As parsed: `carried` may be any length; only its first 16 bytes are kept.
    fn parsed(experimental: bool, carried: &[u8]) -> FastOpen {
        let mut f = FastOpen::request(experimental);
        let keep = carried.len().min(FastOpen::MAX_COOKIE);
        f.bytes[..keep].copy_from_slice(&carried[..keep]);
        f.len = carried.len().min(u8::MAX as usize) as u8;
        f
    }

    /// True for a cookie request (the option without a cookie).
    pub fn is_request(&self) -> bool {
        self.len == 0
    }

    /// The cookie, if the option carries a usable one: 4 to 16 bytes (RFC 7413 §4.1.1), and
    /// an even number of them, as Linux requires (`tcp_parse_fastopen_option`).
    pub fn cookie(&self) -> Option<&[u8]> {
        let n = self.len as usize;
        (FastOpen::MIN_COOKIE..=FastOpen::MAX_COOKIE)
            .contains(&n)
            .then_some(n)
            .filter(|n| n % 2 == 0)
            .map(|n| &self.bytes[..n])
    }

    /// The cookie length as carried (which [`cookie`](Self::cookie) may have refused).
    pub fn carried_len(&self) -> usize {
        self.len as usize
    }

    /// Bytes the option takes with its NOP padding to a 32-bit boundary.
    pub fn wire_len(&self) -> usize {
        (self.option_len() + 3) & !3
    }

    /// The option's length field: kind, length (and magic) plus the cookie.
    fn option_len(&self) -> usize {
        let head = if self.experimental { 4 } else { 2 };
        head + (self.len as usize).min(FastOpen::MAX_COOKIE)
    }

    /// Writes the option and its padding (Linux `tcp_options_write`: the option, then NOPs).
    fn emit(&self, out: &mut [u8]) -> usize {
        let len = self.option_len();
        let head = if self.experimental {
            let m = kind::FAST_OPEN_MAGIC.to_be_bytes();
            out[..4].copy_from_slice(&[kind::EXPERIMENTAL, len as u8, m[0], m[1]]);
            4
        } else {
            out[..2].copy_from_slice(&[kind::FAST_OPEN, len as u8]);
            2
        };
        out[head..len].copy_from_slice(&self.bytes[..len - head]);
        let padded = self.wire_len();
        out[len..padded].fill(kind::NOP);
        padded
    }
}

impl fmt::Debug for FastOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.experimental { "FOEXP" } else { "FO" };
        write!(f, "{kind}(")?;
        for b in &self.bytes[..(self.len as usize).min(FastOpen::MAX_COOKIE)] {
            write!(f, "{b:02x}")?;
        }
        if self.len as usize > FastOpen::MAX_COOKIE {
            write!(f, "..; {} bytes", self.len)?;
        }
        f.write_str(")")
    }
}

impl Options {
    /// Option bytes [`emit`](Self::emit) writes, including the NOP padding Linux uses, after
    /// dropping SACK blocks that do not fit into 40 bytes.
    pub fn wire_len(&self) -> usize {
        let (len, _) = self.layout();
        len
    }

    /// Only the timestamps option, if any (what `emit` writes as NOP, NOP, timestamps).
    #[inline]
    fn is_timestamps_only(&self) -> bool {
        self.mss.is_none()
            && !self.sack_permitted
            && self.window_scale.is_none()
            && self.sack.is_empty()
            && self.fast_open.is_none()
    }

    /// (bytes, SACK blocks that fit).
    fn layout(&self) -> (usize, usize) {
        if self.is_timestamps_only() {
            return (if self.timestamps.is_some() { 12 } else { 0 }, 0);
        }
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.timestamps.is_some() || self.sack_permitted {
            // SACK-permitted rides in the two bytes of padding before TS, or gets two NOPs.
            len += if self.timestamps.is_some() { 12 } else { 4 };
            if self.timestamps.is_some() && self.sack_permitted {
                // "sackOK, TS": 2 + 10 = 12, same as "nop, nop, TS".
            }
        }
        if self.window_scale.is_some() {
            len += 4;
        }
        let mut blocks = self.sack.len();
        while blocks > 0 && len + 4 + 8 * blocks > MAX_OPTIONS_LEN {
            blocks -= 1;
        }
        if blocks > 0 {
            len += 4 + 8 * blocks;
        }
        if let Some(fo) = &self.fast_open {
            len += fo.wire_len();
        }
        (len, blocks)
    }

    /// Writes the options in Linux's layout into `out` (which must hold
    /// [`wire_len`](Self::wire_len) bytes) and returns the bytes written.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize> {
        // Nearly every segment of a connection with timestamps: NOP, NOP, timestamps (the
        // layout `parse` reads first), written at once; the same bytes as the general path.
        if let Some(ts) = self.timestamps
            && self.is_timestamps_only()
        {
            let Some(out) = out.get_mut(..12) else {
                return Err(Error::BufferTooSmall);
            };
            out[..4].copy_from_slice(&[kind::NOP, kind::NOP, kind::TIMESTAMPS, 10]);
            out[4..8].copy_from_slice(&ts.tsval.to_be_bytes());
            out[8..].copy_from_slice(&ts.tsecr.to_be_bytes());
            return Ok(12);
        }
        let (len, blocks) = self.layout();
        if out.len() < len {
            return Err(Error::BufferTooSmall);
        }
        let mut i = 0;
        let mut put = |bytes: &[u8]| {
            out[i..i + bytes.len()].copy_from_slice(bytes);
            i += bytes.len();
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            put(&[kind::MSS, 4, m[0], m[1]]);
        }
        match (self.sack_permitted, self.timestamps) {
            (sack_ok, Some(ts)) => {
                if sack_ok {
                    put(&[kind::SACK_PERMITTED, 2]);
                } else {
                    put(&[kind::NOP, kind::NOP]);
                }
                put(&[kind::TIMESTAMPS, 10]);
                put(&ts.tsval.to_be_bytes());
                put(&ts.tsecr.to_be_bytes());
            }
            (true, None) => put(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]),
            (false, None) => {}
        }
        if let Some(ws) = self.window_scale {
            put(&[kind::NOP, kind::WINDOW_SCALE, 3, ws]);
        }
        if blocks > 0 {
            put(&[kind::NOP, kind::NOP, kind::SACK, (2 + 8 * blocks) as u8]);
            for &(l, r) in &self.sack.as_slice()[..blocks] {
                put(&l.0.to_be_bytes());
                put(&r.0.to_be_bytes());
            }
        }
        if let Some(fo) = &self.fast_open {
            i += fo.emit(&mut out[i..]);
        }
        Ok(i)
    }

    /// Parses the options of a header. Unknown options are skipped; the last occurrence of a
    /// repeated option wins. Inlined into [`Repr::parse`] for the fixed layouts read at once
    /// (the result is written in place); the general walk stays out of line.
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<Options> {
        let mut o = Options::default();
        // The layout of nearly every segment of a connection with timestamps (RFC 7323
        // Appendix A: NOP, NOP, timestamps), read without the general walk (as Linux's
        // tcp_parse_aligned_timestamp). It means the same as the walk would find.
        if let [1, 1, 8, 10, ts @ ..] = bytes
            && let Ok(ts) = <[u8; 8]>::try_from(ts)
        {
            let [a, b, c, d, e, f, g, h] = ts;
            o.timestamps = Some(Timestamps {
                tsval: u32::from_be_bytes([a, b, c, d]),
                tsecr: u32::from_be_bytes([e, f, g, h]),
            });
            return Ok(o);
        }
        // A segment without options: every segment of a connection without timestamps.
        if bytes.is_empty() {
            return Ok(o);
        }
        // The SYN and SYN-ACK of Linux (and of synack, `emit` above): MSS, then SACK-permitted
        // and timestamps as negotiated (NOP, NOP in place of either left out), then NOP,
        // window scale; read at once as the walk would.
        if let [2, 4, m0, m1, ref rest @ ..] = *bytes {
            let ts = |[a, b, c, d, e, f, g, h]: [u8; 8]| {
                Some(Timestamps {
                    tsval: u32::from_be_bytes([a, b, c, d]),
                    tsecr: u32::from_be_bytes([e, f, g, h]),
                })
            };
            let layout = match *rest {
                [4, 2, 8, 10, a, b, c, d, e, f, g, h, 1, 3, 3, ws] => {
                    Some((true, ts([a, b, c, d, e, f, g, h]), ws))
                }
                [1, 1, 8, 10, a, b, c, d, e, f, g, h, 1, 3, 3, ws] => {
                    Some((false, ts([a, b, c, d, e, f, g, h]), ws))
                }
                [1, 1, 4, 2, 1, 3, 3, ws] => Some((true, None, ws)),
                [1, 3, 3, ws] => Some((false, None, ws)),
                _ => None,
            };
            if let Some((sack_permitted, timestamps, ws)) = layout {
                o.mss = Some(u16::from_be_bytes([m0, m1]));
                o.sack_permitted = sack_permitted;
                o.timestamps = timestamps;
                o.window_scale = Some(ws);
                return Ok(o);
            }
        }
        Options::walk(bytes)
    }

    /// The general parse: every option in turn.
    #[inline(never)]
    fn walk(bytes: &[u8]) -> Result<Options> {
        let mut o = Options::default();
        for opt in OptionsIter::new(bytes) {
            match opt? {
                TcpOption::Mss(v) => o.mss = Some(v),
                TcpOption::WindowScale(v) => o.window_scale = Some(v),
                TcpOption::SackPermitted => o.sack_permitted = true,
                TcpOption::Timestamps { tsval, tsecr } => {
                    o.timestamps = Some(Timestamps { tsval, tsecr })
                }
                TcpOption::Sack(b) => o.sack = b,
                TcpOption::FastOpen {
                    experimental,
                    cookie,
                } => o.fast_open = Some(FastOpen::parsed(experimental, cookie)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(o)
    }
}

/// The meaning of a TCP segment: every header field, the interpreted options and the payload.
///
/// `ack` is the acknowledgement field as carried, meaningful only when `flags.ack()`;
/// `window` is the field as carried, before any window scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: Flags,
    pub window: u16,
    pub urgent: u16,
    pub options: Options,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a checked packet. With `verify` set, the checksum is verified over the
    /// pseudo-header of `src`/`dst` and a mismatch is [`Error::BadChecksum`].
    ///
    /// Inlined: the caller's `Repr` (100-odd bytes) is written in place instead of copied
    /// out of the `Result`, once per segment received.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: IpAddr,
        dst: IpAddr,
        verify: bool,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        if verify && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let buf: &'a [u8] = packet.buffer.as_ref();
        let hl = packet.header_len();
        let options = Options::parse(&buf[HEADER_LEN..hl])?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options,
            payload: &buf[hl..],
        })
    }

    /// Header length in bytes including options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.wire_len()
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// SEG.LEN: payload plus SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len() + self.flags.syn() as usize + self.flags.fin() as usize
    }

    /// Writes the header (with options) into the front of `packet`'s buffer, whose length
    /// must be `header_len() + payload_len`. The payload area is left for the caller to fill
    /// (e.g. straight from a send ring), after which it calls
    /// [`Packet::fill_checksum`].
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        let hl = self.header_len();
        let buf = packet.buffer.as_mut();
        if buf.len() < hl {
            return Err(Error::BufferTooSmall);
        }
        let written = self.options.emit(&mut buf[HEADER_LEN..hl])?;
        debug_assert_eq!(written + HEADER_LEN, hl);
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq);
        packet.set_ack_number(self.ack);
        packet.buffer.as_mut()[field::DATA_OFF] = 0;
        packet.set_header_len(hl);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent);
        Ok(())
    }

    /// Writes header and payload into `packet` (exactly `buffer_len()` bytes) and fills the
    /// checksum for `src`/`dst`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<()> {
        if packet.buffer.as_ref().len() != self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        self.emit_header(packet)?;
        packet.payload_mut().copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
        Ok(())
    }

    /// A Wireshark-style rendering with sequence numbers relative to the given ISNs.
    pub fn display(&self, ctx: DisplayContext) -> Display<'_, 'a> {
        Display { repr: self, ctx }
    }
}

/// The header of nearly every segment a connection sends: no option but timestamps (NOP,
/// NOP, timestamps, RFC 7323 Appendix A, the layout [`Options::emit`] writes) or none, and
/// no urgent pointer. [`emit_with_checksum`](Self::emit_with_checksum) writes it and its
/// checksum at fixed offsets, without the general option layout of [`Repr`]: the same bytes
/// as [`Repr::emit_header`] followed by [`Packet::fill_checksum_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlainHeader {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) seq: SeqNum,
    pub(crate) ack: SeqNum,
    pub(crate) flags: Flags,
    pub(crate) window: u16,
    pub(crate) timestamps: Option<Timestamps>,
}

impl PlainHeader {
    /// 20 bytes, or 32 with timestamps.
    #[inline]
    pub(crate) fn header_len(&self) -> usize {
        if self.timestamps.is_some() {
            HEADER_LEN + 12
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header into the front of `segment` (the whole segment: header, then the
    /// payload, already in place and summing to `payload`) and fills its checksum for
    /// `src`/`dst`.
    #[inline]
    pub(crate) fn emit_with_checksum(
        &self,
        segment: &mut [u8],
        src: IpAddr,
        dst: IpAddr,
        payload: Checksum,
    ) -> Result<()> {
        let hl = self.header_len();
        // Built on the stack and summed as eight words; without timestamps the last twelve
        // bytes stay zero, which adds nothing to the sum.
        let mut h = [0u8; HEADER_LEN + 12];
        put16(&mut h, field::SRC_PORT, self.src_port);
        put16(&mut h, field::DST_PORT, self.dst_port);
        put32(&mut h, field::SEQ_NUM, self.seq.0);
        put32(&mut h, field::ACK_NUM, self.ack.0);
        h[field::DATA_OFF] = ((hl / 4) as u8) << 4;
        h[field::FLAGS] = self.flags.0;
        put16(&mut h, field::WINDOW, self.window);
        if let Some(ts) = self.timestamps {
            h[20..24].copy_from_slice(&[kind::NOP, kind::NOP, kind::TIMESTAMPS, 10]);
            put32(&mut h, 24, ts.tsval);
            put32(&mut h, 28, ts.tsecr);
        }
        let total = segment.len() as u32;
        let Some(out) = segment.get_mut(..hl) else {
            return Err(Error::BufferTooSmall);
        };
        let mut c = checksum::pseudo_header(src, dst, IpProtocol::Tcp, total);
        c.add_32(&h);
        // The header is a multiple of 4 bytes long, so the payload starts at an even offset.
        c.add_sum_at(payload, hl);
        put16(&mut h, field::CHECKSUM, c.finish());
        out.copy_from_slice(&h[..hl]);
        Ok(())
    }
}

/// What a [`Display`] knows beyond the segment itself: the initial sequence numbers of the
/// sender and the receiver of this segment (for relative numbers, as Wireshark shows by
/// default) and the sender's window scale shift (for the scaled `Win=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DisplayContext {
    /// ISN of the side that sent this segment: `Seq=` is shown as `seq - isn_sender`.
    pub isn_sender: Option<SeqNum>,
    /// ISN of the side receiving it: `Ack=` is shown as `ack - isn_receiver`.
    pub isn_receiver: Option<SeqNum>,
    /// The sender's window scale shift once both sides agreed on scaling; `Win=` is
    /// `window << shift` then. Never applied to SYN segments (RFC 7323 §2.2).
    pub window_shift: Option<u8>,
}

/// Renders a segment as Wireshark's Info column does, e.g.
/// `49152 → 80 [SYN] Seq=0 Win=64240 Len=0 MSS=1460 SACK_PERM TSval=1 TSecr=0 WS=256`.
pub struct Display<'r, 'a> {
    repr: &'r Repr<'a>,
    ctx: DisplayContext,
}

impl fmt::Display for Display<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.repr;
        let rel = |v: SeqNum, isn: Option<SeqNum>| match isn {
            Some(isn) => v - isn,
            None => v.0,
        };
        write!(
            f,
            "{} \u{2192} {} [{}] Seq={}",
            r.src_port,
            r.dst_port,
            r.flags,
            rel(r.seq, self.ctx.isn_sender)
        )?;
        if r.flags.ack() {
            write!(f, " Ack={}", rel(r.ack, self.ctx.isn_receiver))?;
        }
        let win = match self.ctx.window_shift {
            Some(s) if !r.flags.syn() => (r.window as u32) << s.min(14),
            _ => r.window as u32,
        };
        write!(f, " Win={win}")?;
        if r.flags.urg() {
            write!(f, " Urg={}", r.urgent)?;
        }
        write!(f, " Len={}", r.payload.len())?;
        let o = &r.options;
        if let Some(mss) = o.mss {
            write!(f, " MSS={mss}")?;
        }
        if o.sack_permitted {
            f.write_str(" SACK_PERM")?;
        }
        if let Some(ts) = o.timestamps {
            write!(f, " TSval={} TSecr={}", ts.tsval, ts.tsecr)?;
        }
        if let Some(ws) = o.window_scale {
            write!(f, " WS={}", 1u32 << ws.min(14))?;
        }
        for &(l, r_edge) in o.sack.as_slice() {
            let isn = self.ctx.isn_receiver;
            write!(f, " SLE={} SRE={}", rel(l, isn), rel(r_edge, isn))?;
        }
        // Wireshark's notation: "TFO=R" for a cookie request, "TFO=C" for a cookie.
        if let Some(fo) = &o.fast_open {
            f.write_str(if fo.is_request() { " TFO=R" } else { " TFO=C" })?;
        }
        Ok(())
    }
}

impl fmt::Display for Repr<'_> {
    /// Absolute sequence numbers; see [`Repr::display`] for relative ones.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.display(DisplayContext::default()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));

    /// A SYN as Linux sends it (captured layout): 49152 → 80, seq 0x1a2b3c4d, window 64240,
    /// options mss 1460, sackOK, TS val 1 ecr 0, nop, wscale 8. Checksum computed over the
    /// pseudo-header 198.18.0.1 → 198.18.0.2.
    const LINUX_SYN: [u8; 40] = [
        0xc0, 0x00, 0x00, 0x50, // ports
        0x1a, 0x2b, 0x3c, 0x4d, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, 0xfa, 0xf0, // data offset 10, SYN, window 64240
        0x00, 0x00, 0x00, 0x00, // checksum (filled in by the test), urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, 0x08, 0x0a, // SACK-permitted, TS kind/len
        0x00, 0x00, 0x00, 0x01, // TSval 1
        0x00, 0x00, 0x00, 0x00, // TSecr 0
        0x01, 0x03, 0x03, 0x08, // NOP, WS 8
    ];

    fn linux_syn() -> [u8; 40] {
        let mut b = LINUX_SYN;
        Packet::new_unchecked(&mut b[..]).fill_checksum(SRC, DST);
        b
    }

    #[test]
    fn timestamps_only_options_are_nop_nop_ts() {
        let o = Options {
            timestamps: Some(Timestamps {
                tsval: 0x0102_0304,
                tsecr: 0xa0b0_c0d0,
            }),
            ..Options::default()
        };
        assert_eq!(o.wire_len(), 12);
        let mut out = [0xeeu8; 13];
        assert_eq!(o.emit(&mut out), Ok(12));
        assert_eq!(out, [1, 1, 8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 0xee]);
        assert_eq!(o.emit(&mut out[..11]), Err(Error::BufferTooSmall));
        assert_eq!(Options::parse(&out[..12]), Ok(o));
        assert_eq!(Options::default().wire_len(), 0);
        assert_eq!(Options::default().emit(&mut out), Ok(0));
    }

    #[test]
    fn literal_syn_parses_field_by_field() {
        let b = linux_syn();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 49152);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), SeqNum(0x1a2b3c4d));
        assert_eq!(p.ack_number(), SeqNum(0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), Flags::SYN);
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.segment_len(), 1);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3))));
        let opts: Vec<_> = p.options_iter().map(|o| o.unwrap()).collect();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps { tsval: 1, tsecr: 0 },
                TcpOption::NoOperation,
                TcpOption::WindowScale(8),
            ]
        );
        let r = Repr::parse(&p, SRC, DST, true).unwrap();
        assert_eq!(r.options.mss, Some(1460));
        assert_eq!(r.options.window_scale, Some(8));
        assert!(r.options.sack_permitted);
        assert_eq!(
            r.options.timestamps,
            Some(Timestamps { tsval: 1, tsecr: 0 })
        );
        assert!(r.payload.is_empty());
        // Our emitter reproduces Linux's byte layout exactly.
        let mut out = [0u8; 40];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), SRC, DST)
            .unwrap();
        assert_eq!(out, b);
    }

    #[test]
    fn wireshark_info_line() {
        let b = linux_syn();
        let p = Packet::new_checked(&b[..]).unwrap();
        let r = Repr::parse(&p, SRC, DST, true).unwrap();
        let ctx = DisplayContext {
            isn_sender: Some(SeqNum(0x1a2b3c4d)),
            ..Default::default()
        };
        assert_eq!(
            r.display(ctx).to_string(),
            "49152 \u{2192} 80 [SYN] Seq=0 Win=64240 Len=0 MSS=1460 SACK_PERM TSval=1 TSecr=0 WS=256"
        );
        assert_eq!(
            r.to_string(),
            "49152 \u{2192} 80 [SYN] Seq=439041101 Win=64240 Len=0 MSS=1460 SACK_PERM TSval=1 TSecr=0 WS=256"
        );
    }

    #[test]
    fn wireshark_info_line_data_and_sack() {
        let payload = [0u8; 100];
        let mut sack = SackBlocks::new();
        sack.push((SeqNum(5001), SeqNum(6001)));
        let r = Repr {
            src_port: 80,
            dst_port: 49152,
            seq: SeqNum(1107),
            ack: SeqNum(5001 - 1000),
            flags: Flags::PSH | Flags::ACK,
            window: 502,
            urgent: 0,
            options: Options {
                timestamps: Some(Timestamps { tsval: 7, tsecr: 9 }),
                sack,
                ..Default::default()
            },
            payload: &payload,
        };
        let ctx = DisplayContext {
            isn_sender: Some(SeqNum(1000)),
            isn_receiver: Some(SeqNum(1)),
            window_shift: Some(7),
        };
        assert_eq!(
            r.display(ctx).to_string(),
            "80 \u{2192} 49152 [PSH, ACK] Seq=107 Ack=4000 Win=64256 Len=100 TSval=7 TSecr=9 SLE=5000 SRE=6000"
        );
        assert_eq!(
            format!("{}", Flags::SYN | Flags::ACK | Flags::ECE | Flags::CWR),
            "SYN, ACK, ECE, CWR"
        );
        assert_eq!(format!("{}", Flags::FIN | Flags::ACK), "FIN, ACK");
        assert_eq!(format!("{}", Flags::RST), "RST");
        assert_eq!(format!("{}", Flags::NONE), "<None>");
    }

    #[test]
    fn data_segment_with_linux_option_layout() {
        let mut sack = SackBlocks::new();
        sack.push((SeqNum(10), SeqNum(20)));
        sack.push((SeqNum(30), SeqNum(40)));
        let r = Repr {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum(3),
            ack: SeqNum(4),
            flags: Flags::ACK,
            window: 5,
            urgent: 0,
            options: Options {
                timestamps: Some(Timestamps { tsval: 1, tsecr: 2 }),
                sack,
                ..Default::default()
            },
            payload: b"hi",
        };
        assert_eq!(r.header_len(), 20 + 12 + 4 + 16);
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), SRC, DST)
            .unwrap();
        assert_eq!(&buf[20..24], &[1, 1, 8, 10]);
        assert_eq!(&buf[32..36], &[1, 1, 5, 18]);
        assert_eq!(&buf[buf.len() - 2..], b"hi");
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p, SRC, DST, true).unwrap(), r);
    }

    #[test]
    fn sack_blocks_beyond_option_space_are_dropped() {
        let blocks: Vec<_> = (0..4)
            .map(|i| (SeqNum(i * 100), SeqNum(i * 100 + 50)))
            .collect();
        let o = Options {
            timestamps: Some(Timestamps { tsval: 0, tsecr: 0 }),
            sack: SackBlocks::from_slice(&blocks),
            ..Default::default()
        };
        // 12 bytes of timestamps leave room for 3 blocks (4 + 24), not 4.
        assert_eq!(o.wire_len(), 12 + 4 + 24);
        let mut out = [0u8; 40];
        let n = o.emit(&mut out).unwrap();
        let back = Options::parse(&out[..n]).unwrap();
        assert_eq!(back.sack.as_slice(), &blocks[..3]);
    }

    #[test]
    fn unknown_options_are_skipped_by_length() {
        // kind 30 (MPTCP) with 4 bytes of data, then EOL and padding that must not be read.
        let opts = [30, 6, 1, 2, 3, 4, kind::MSS, 4, 0x05, 0xb4, 0, 0xff];
        let mut it = OptionsIter::new(&opts);
        assert_eq!(
            it.next(),
            Some(Ok(TcpOption::Unknown {
                kind: 30,
                data: &[1, 2, 3, 4]
            }))
        );
        assert_eq!(it.next(), Some(Ok(TcpOption::Mss(1460))));
        assert_eq!(it.next(), Some(Ok(TcpOption::EndOfList)));
        assert_eq!(it.next(), None);
        assert_eq!(Options::parse(&opts).unwrap().mss, Some(1460));
    }

    #[test]
    fn malformed_options_are_errors() {
        let cases: &[&[u8]] = &[
            &[kind::MSS],       // kind without length byte
            &[30, 0],           // length 0
            &[30, 1],           // length 1
            &[30, 5, 0, 0],     // length past the header
            &[kind::MSS, 3, 0], // MSS with wrong length
            &[kind::WINDOW_SCALE, 4, 0, 0],
            &[kind::SACK_PERMITTED, 3, 0],
            &[kind::TIMESTAMPS, 9, 0, 0, 0, 0, 0, 0, 0],
            &[kind::SACK, 2], // no blocks
            &[kind::SACK, 9, 0, 0, 0, 0, 0, 0, 0],
        ];
        for c in cases {
            assert_eq!(Options::parse(c), Err(Error::BadOption), "case {c:?}");
        }
        // The error surfaces through Repr::parse too.
        let mut b = [0u8; 24];
        b[12] = 6 << 4;
        b[20..24].copy_from_slice(&[30, 0, 0, 0]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, SRC, DST, false), Err(Error::BadOption));
    }

    #[test]
    fn truncations_and_bad_offsets_are_typed_errors() {
        let b = linux_syn();
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&b[..len]).unwrap_err(),
                Error::Truncated,
                "len {len}"
            );
        }
        // Data offset 10 (40 bytes) but only 20..39 bytes present.
        for len in HEADER_LEN..40 {
            assert_eq!(
                Packet::new_checked(&b[..len]).unwrap_err(),
                Error::BadHeaderLength,
                "len {len}"
            );
        }
        for off in 0..5u8 {
            let mut c = b;
            c[12] = off << 4;
            assert_eq!(
                Packet::new_checked(&c[..]).unwrap_err(),
                Error::BadHeaderLength
            );
        }
        let mut c = b;
        c[12] = 15 << 4; // 60 bytes claimed, 40 present
        assert_eq!(
            Packet::new_checked(&c[..]).unwrap_err(),
            Error::BadHeaderLength
        );
        let mut c = b;
        c[30] ^= 0x01; // flip a TSval bit
        let p = Packet::new_checked(&c[..]).unwrap();
        assert_eq!(Repr::parse(&p, SRC, DST, true), Err(Error::BadChecksum));
        assert!(Repr::parse(&p, SRC, DST, false).is_ok());
    }

    #[test]
    fn checksum_over_ipv6_pseudo_header() {
        let s6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let d6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
        let mut b = LINUX_SYN;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(s6, d6);
        assert!(p.verify_checksum(s6, d6));
        assert!(!p.verify_checksum(SRC, DST));
    }

    fn arb_options() -> impl Strategy<Value = Options> {
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..=14),
            any::<bool>(),
            proptest::option::of((any::<u32>(), any::<u32>())),
            proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4),
        )
            .prop_map(|(mss, ws, sp, ts, sack)| {
                let blocks: Vec<_> = sack
                    .into_iter()
                    .map(|(l, r)| (SeqNum(l), SeqNum(r)))
                    .collect();
                Options {
                    mss,
                    window_scale: ws,
                    sack_permitted: sp,
                    timestamps: ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
                    sack: SackBlocks::from_slice(&blocks),
                    fast_open: None,
                }
            })
    }

    prop_compose! {
        fn arb_repr()(
            src_port in any::<u16>(), dst_port in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(),
            flags in any::<u8>(), window in any::<u16>(), urgent in any::<u16>(),
            options in arb_options(), payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) -> (Repr<'static>, Vec<u8>) {
            (Repr { src_port, dst_port, seq: SeqNum(seq), ack: SeqNum(ack), flags: Flags(flags), window, urgent, options, payload: &[] }, payload)
        }
    }

    /// Linux's SYN-ACK answering a cookie request with an experimental option: mss, sackOK,
    /// TS, nop, wscale, then FOEXP with an 8-byte cookie (12 bytes, no padding).
    #[test]
    fn fast_open_experimental_option_bytes() {
        let cookie = [0x00, 0xab, 0xaa, 0xab, 0xe8, 0xe9, 0x54, 0xc2];
        let o = Options {
            mss: Some(1460),
            sack_permitted: true,
            timestamps: Some(Timestamps { tsval: 1, tsecr: 2 }),
            window_scale: Some(8),
            fast_open: FastOpen::with_cookie(true, &cookie),
            ..Options::default()
        };
        let mut out = [0u8; 40];
        assert_eq!(o.wire_len(), 32);
        assert_eq!(o.emit(&mut out).unwrap(), 32);
        assert_eq!(
            out[..32],
            [
                2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3,
                8, // as before
                254, 12, 0xf9, 0x89, 0x00, 0xab, 0xaa, 0xab, 0xe8, 0xe9, 0x54, 0xc2,
            ]
        );
        let back = Options::parse(&out[..32]).unwrap();
        assert_eq!(back, o);
        assert_eq!(back.fast_open.unwrap().cookie(), Some(&cookie[..]));
    }

    /// The standard option (kind 34): a request is "FO,nop,nop", an 8-byte cookie
    /// "FO <cookie>,nop,nop" (length 10, padded to 12).
    #[test]
    fn fast_open_option_bytes_and_padding() {
        let req = Options {
            fast_open: Some(FastOpen::request(false)),
            ..Options::default()
        };
        let mut out = [0u8; 40];
        assert_eq!(req.emit(&mut out).unwrap(), 4);
        assert_eq!(out[..4], [34, 2, 1, 1]);
        let back = Options::parse(&out[..4]).unwrap().fast_open.unwrap();
        assert!(back.is_request() && !back.experimental);
        assert_eq!(back.cookie(), None);

        let c = Options {
            fast_open: FastOpen::with_cookie(false, &[1, 2, 3, 4, 5, 6, 7, 8]),
            ..Options::default()
        };
        assert_eq!(c.emit(&mut out).unwrap(), 12);
        assert_eq!(out[..12], [34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1]);
        let exp_req = Options {
            fast_open: Some(FastOpen::request(true)),
            ..Options::default()
        };
        assert_eq!(exp_req.emit(&mut out).unwrap(), 4);
        assert_eq!(out[..4], [254, 4, 0xf9, 0x89]);
        assert!(FastOpen::with_cookie(false, &[0; 17]).is_none());
    }

    /// Cookies of the wrong size parse (the length is kept) but are not usable: shorter than
    /// 4, longer than 16 (RFC 7413 §4.1.1), or odd (Linux). Kind 254 with another magic is
    /// not Fast Open.
    #[test]
    fn fast_open_cookie_lengths() {
        let fo = |bytes: &[u8]| Options::parse(bytes).unwrap().fast_open;
        assert_eq!(fo(&[34, 4, 0x11, 0x22]).unwrap().cookie(), None);
        assert_eq!(fo(&[34, 4, 0x11, 0x22]).unwrap().carried_len(), 2);
        assert_eq!(
            fo(&[34, 6, 0, 0, 0, 0]).unwrap().cookie(),
            Some(&[0u8, 0, 0, 0][..])
        );
        assert_eq!(fo(&[34, 5, 1, 2, 3, 1]).unwrap().cookie(), None);
        let mut long = vec![34u8, 20];
        long.extend(0..18u8);
        let f = fo(&long).unwrap();
        assert_eq!((f.cookie(), f.carried_len()), (None, 18));
        assert_eq!(fo(&[254, 4, 0x12, 0x34]), None);
        assert!(fo(&[254, 4, 0xf9, 0x89]).unwrap().experimental);
    }

    #[test]
    fn no_options_read_as_the_option_walk_reads_them() {
        assert_eq!(Options::parse(&[]), Options::walk(&[]));
        assert_eq!(Options::parse(&[]), Ok(Options::default()));
    }

    /// The layouts `Options::parse` reads without the walk, as literal bytes, with what they
    /// mean: NOP, NOP, TS (data segments), and the four SYN layouts of Linux's
    /// `tcp_options_write` (MSS; SACK-permitted + TS or NOP, NOP, TS or NOP, NOP,
    /// SACK-permitted or neither; NOP, WS).
    fn fast_layouts() -> Vec<(Vec<u8>, Options)> {
        let ts = Some(Timestamps {
            tsval: 0x0102_0304,
            tsecr: 0xa0b0_c0d0,
        });
        let syn = |sack_permitted, timestamps| Options {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted,
            timestamps,
            ..Options::default()
        };
        vec![
            (
                vec![1, 1, 8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0],
                Options {
                    timestamps: ts,
                    ..Options::default()
                },
            ),
            (
                vec![
                    2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 1, 3, 3, 7,
                ],
                syn(true, ts),
            ),
            (
                vec![
                    2, 4, 5, 0xb4, 1, 1, 8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 1, 3, 3, 7,
                ],
                syn(false, ts),
            ),
            (vec![2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7], syn(true, None)),
            (vec![2, 4, 5, 0xb4, 1, 3, 3, 7], syn(false, None)),
        ]
    }

    /// `emit` writes exactly the fast layouts, and each reads back field by field (and as the
    /// walk reads it): a change of `emit`'s order would leave `parse`'s fast path unused
    /// without this test.
    #[test]
    fn emit_writes_the_fast_layouts_parse_reads() {
        for (bytes, o) in fast_layouts() {
            let mut out = [0u8; 40];
            let n = o.emit(&mut out).unwrap();
            assert_eq!(&out[..n], &bytes[..], "{o:?}");
            assert_eq!(o.wire_len(), bytes.len());
            assert_eq!(Options::parse(&bytes), Ok(o));
            assert_eq!(Options::walk(&bytes), Ok(o));
        }
    }

    proptest! {
        /// The plain header's writer puts down the bytes of the general one, checksum
        /// included, for either IP version, any payload and a buffer with old bytes in it.
        #[test]
        fn plain_header_is_what_emit_header_writes(
            ports in any::<(u16, u16)>(),
            seq_ack in any::<(u32, u32)>(),
            flags in any::<u8>(),
            window in any::<u16>(),
            ts in proptest::option::of(any::<(u32, u32)>()),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            v6 in any::<bool>(),
            junk in any::<u8>(),
        ) {
            let (src, dst) = if v6 {
                (IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), IpAddr::V6(Ipv6Addr::LOCALHOST))
            } else {
                (SRC, DST)
            };
            let h = PlainHeader {
                src_port: ports.0,
                dst_port: ports.1,
                seq: SeqNum(seq_ack.0),
                ack: SeqNum(seq_ack.1),
                flags: Flags(flags),
                window,
                timestamps: ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
            };
            let r = Repr {
                src_port: h.src_port,
                dst_port: h.dst_port,
                seq: h.seq,
                ack: h.ack,
                flags: h.flags,
                window,
                urgent: 0,
                options: Options { timestamps: h.timestamps, ..Options::default() },
                payload: &[],
            };
            prop_assert_eq!(h.header_len(), r.header_len());
            let hl = r.header_len();
            let mut general = vec![junk; hl + payload.len()];
            let mut plain = general.clone();
            let mut sum = Checksum::new();
            sum.add_bytes(&payload);
            let mut p = Packet::new_unchecked(&mut general[..]);
            r.emit_header(&mut p).unwrap();
            p.payload_mut().copy_from_slice(&payload);
            p.fill_checksum_with(src, dst, sum);
            plain[hl..].copy_from_slice(&payload);
            h.emit_with_checksum(&mut plain, src, dst, sum).unwrap();
            prop_assert_eq!(&plain, &general);
            prop_assert!(Packet::new_checked(&plain[..]).unwrap().verify_checksum(src, dst));
        }

        #[test]
        fn emit_parse_round_trip((mut r, payload) in arb_repr()) {
            r.payload = &payload;
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]), SRC, DST).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            let back = Repr::parse(&p, SRC, DST, true).unwrap();
            // SACK blocks that do not fit into 40 option bytes are dropped on emit.
            let mut expect = r;
            let (_, fit) = r.options.layout();
            expect.options.sack.truncate(fit);
            prop_assert_eq!(back, expect);
        }

        #[test]
        fn aligned_timestamps_read_as_the_option_walk_reads_them(
            tsval in any::<u32>(), tsecr in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let mut bytes = vec![1, 1, 8, 10];
            bytes.extend_from_slice(&tsval.to_be_bytes());
            bytes.extend_from_slice(&tsecr.to_be_bytes());
            // 12 bytes: the fast path; longer: the walk (which may also refuse the tail).
            let walked = |b: &[u8]| -> Result<Options> {
                let mut o = Options::default();
                for opt in OptionsIter::new(b) {
                    if let TcpOption::Timestamps { tsval, tsecr } = opt? {
                        o.timestamps = Some(Timestamps { tsval, tsecr });
                    }
                }
                Ok(o)
            };
            prop_assert_eq!(Options::parse(&bytes), walked(&bytes));
            prop_assert_eq!(Options::parse(&bytes).unwrap().timestamps, Some(Timestamps { tsval, tsecr }));
            bytes.extend_from_slice(&tail);
            if tail.iter().all(|&b| b <= 1) {
                prop_assert_eq!(Options::parse(&bytes), walked(&bytes));
            }
        }

        #[test]
        fn syn_layouts_read_as_the_option_walk_reads_them(
            mss in any::<u16>(), tsval in any::<u32>(), tsecr in any::<u32>(), ws in any::<u8>(),
            sack in any::<bool>(), timestamps in any::<bool>(), flip in 0usize..21,
        ) {
            // What `emit` writes for a SYN, as Linux lays it out.
            let o = Options {
                mss: Some(mss),
                window_scale: Some(ws),
                sack_permitted: sack,
                timestamps: timestamps.then_some(Timestamps { tsval, tsecr }),
                ..Options::default()
            };
            let mut buf = [0u8; 40];
            let n = o.emit(&mut buf).unwrap();
            let mut bytes = buf[..n].to_vec();
            let fast = Options::parse(&bytes).unwrap();
            prop_assert_eq!(Ok(fast), Options::walk(&bytes));
            prop_assert_eq!(fast, o);
            // Any other layout takes the walk, with the walk's answer.
            if flip < bytes.len() {
                bytes[flip] ^= 0x5a;
            } else {
                bytes.push(0);
            }
            prop_assert_eq!(Options::parse(&bytes), Options::walk(&bytes));
        }

        #[test]
        fn arbitrary_option_bytes_read_as_the_option_walk_reads_them(
            bytes in proptest::collection::vec(any::<u8>(), 0..=40),
        ) {
            prop_assert_eq!(Options::parse(&bytes), Options::walk(&bytes));
        }

        #[test]
        fn fast_layouts_with_one_byte_changed_read_as_the_walk_reads_them(
            layout in 0usize..5, at in 0usize..20, value in any::<u8>(),
        ) {
            let (mut bytes, _) = fast_layouts().swap_remove(layout);
            let at = at % bytes.len();
            bytes[at] = value;
            prop_assert_eq!(Options::parse(&bytes), Options::walk(&bytes));
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags(),
                         p.window_len(), p.checksum(), p.urgent_at(), p.payload(), p.segment_len(), p.reserved());
                for o in p.options_iter() { let _ = o; }
                if let Ok(r) = Repr::parse(&p, SRC, DST, false) {
                    let _ = r.to_string();
                }
            }
        }

        #[test]
        fn ours_to_etherparse(( mut r, payload) in arb_repr()) {
            r.payload = &payload;
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]), SRC, DST).unwrap();
            let (h, rest) = etherparse::TcpHeader::from_slice(&buf).unwrap();
            prop_assert_eq!(h.source_port, r.src_port);
            prop_assert_eq!(h.destination_port, r.dst_port);
            prop_assert_eq!(h.sequence_number, r.seq.0);
            prop_assert_eq!(h.acknowledgment_number, r.ack.0);
            prop_assert_eq!(h.syn, r.flags.syn());
            prop_assert_eq!(h.ack, r.flags.ack());
            prop_assert_eq!(h.fin, r.flags.fin());
            prop_assert_eq!(h.rst, r.flags.rst());
            prop_assert_eq!(h.psh, r.flags.psh());
            prop_assert_eq!(h.urg, r.flags.urg());
            prop_assert_eq!(h.ece, r.flags.contains(Flags::ECE));
            prop_assert_eq!(h.cwr, r.flags.contains(Flags::CWR));
            prop_assert_eq!(h.window_size, r.window);
            prop_assert_eq!(h.urgent_pointer, r.urgent);
            prop_assert_eq!(rest, &payload[..]);
            let expect = h.calc_checksum_ipv4_raw([198, 18, 0, 1], [198, 18, 0, 2], rest).unwrap();
            prop_assert_eq!(h.checksum, expect);
            let mut mss = None;
            let mut ws = None;
            let mut ts = None;
            let mut sack_ok = false;
            for e in h.options_iterator() {
                match e.unwrap() {
                    etherparse::TcpOptionElement::MaximumSegmentSize(v) => mss = Some(v),
                    etherparse::TcpOptionElement::WindowScale(v) => ws = Some(v),
                    etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted => sack_ok = true,
                    etherparse::TcpOptionElement::Timestamp(a, b) => ts = Some(Timestamps { tsval: a, tsecr: b }),
                    _ => {}
                }
            }
            prop_assert_eq!(mss, r.options.mss);
            prop_assert_eq!(ws, r.options.window_scale);
            prop_assert_eq!(ts, r.options.timestamps);
            prop_assert_eq!(sack_ok, r.options.sack_permitted);
        }

        #[test]
        fn etherparse_to_ours(
            sp in any::<u16>(), dp in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(), win in any::<u16>(),
            syn in any::<bool>(), fin in any::<bool>(), mss in proptest::option::of(any::<u16>()),
            ts in proptest::option::of((any::<u32>(), any::<u32>())),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut h = etherparse::TcpHeader::new(sp, dp, seq, win);
            h.acknowledgment_number = ack;
            h.ack = true;
            h.syn = syn;
            h.fin = fin;
            let mut elems = Vec::new();
            if let Some(m) = mss { elems.push(etherparse::TcpOptionElement::MaximumSegmentSize(m)); }
            if let Some((a, b)) = ts { elems.push(etherparse::TcpOptionElement::Timestamp(a, b)); }
            h.set_options(&elems).unwrap();
            h.checksum = h.calc_checksum_ipv4_raw([198, 18, 0, 1], [198, 18, 0, 2], &payload).unwrap();
            let mut buf = h.to_bytes().to_vec();
            buf.extend_from_slice(&payload);
            let p = Packet::new_checked(&buf[..]).unwrap();
            let r = Repr::parse(&p, SRC, DST, true).unwrap();
            prop_assert_eq!(r.src_port, sp);
            prop_assert_eq!(r.dst_port, dp);
            prop_assert_eq!(r.seq, SeqNum(seq));
            prop_assert_eq!(r.ack, SeqNum(ack));
            prop_assert_eq!(r.window, win);
            prop_assert_eq!(r.flags.syn(), syn);
            prop_assert_eq!(r.flags.fin(), fin);
            prop_assert!(r.flags.ack());
            prop_assert_eq!(r.options.mss, mss);
            prop_assert_eq!(r.options.timestamps, ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }));
            prop_assert_eq!(r.payload, &payload[..]);
        }
    }
}
