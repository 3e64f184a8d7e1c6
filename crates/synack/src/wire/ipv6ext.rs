//! IPv6 extension headers (RFC 8200 §4): the Hop-by-Hop and Destination Options headers and
//! their options (§4.2–§4.3, §4.6), the Routing header (§4.4), the Fragment header (§4.5), and
//! a bounded walk over a chain of them ([`Chain`]).
//!
//! ```text
//!  Hop-by-Hop / Destination Options / Routing (the common start, RFC 8200 §4.3, §4.4):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Header  |  Hdr Ext Len  |  options, or Routing Type and Segments Left ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  Hdr Ext Len: 8-octet units, not counting the first 8 octets.
//!
//!  Fragment (RFC 8200 §4.5):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Identification                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The views here read; what a host *does* with an unknown option or routing type is the
//! stack's decision (`stack/ipv6.rs`), made from what these views report.

use super::{Error, IpProtocol, Result, be16, be32, put16, put32};

/// Field offsets shared by the extension headers.
mod field {
    pub const NEXT_HEADER: usize = 0;
    pub const HDR_EXT_LEN: usize = 1;
    /// Routing header (§4.4).
    pub const ROUTING_TYPE: usize = 2;
    pub const SEGMENTS_LEFT: usize = 3;
    /// Fragment header (§4.5).
    pub const FRAG_OFFSET_M: usize = 2;
    pub const IDENT: usize = 4;
    /// The options of Hop-by-Hop and Destination Options headers start here.
    pub const OPTIONS: usize = 2;
}

/// Length of a Fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// Next Header value of the Destination Options header.
pub const DEST_OPTS: u8 = 60;
/// Next Header value of the Authentication Header (RFC 4302), walked like the others.
pub const AUTH: u8 = 51;

/// Most extension headers [`Chain::walk`] steps over before it gives up (Linux's
/// `IP6_MAX_EXT_HDRS_CNT` is 12 per kind of header; a real packet has two or three).
pub const MAX_HEADERS: usize = 16;

/// True if `next_header` names an extension header that [`Chain`] can step over.
pub fn is_extension(next_header: u8) -> bool {
    matches!(next_header, 0 | 43 | 44 | AUTH | DEST_OPTS)
}

/// The length of the extension header `next_header` at the start of `bytes`, from its length
/// field. `Truncated` if the length byte (or the 8-byte Fragment header) is cut off.
pub fn header_len(next_header: u8, bytes: &[u8]) -> Result<usize> {
    match next_header {
        44 => Ok(FRAGMENT_HEADER_LEN),
        AUTH => {
            // RFC 4302 §2.2: Payload Len counts 4-octet units, minus 2.
            let units = bytes.get(field::HDR_EXT_LEN).ok_or(Error::Truncated)?;
            Ok((usize::from(*units) + 2) * 4)
        }
        _ => {
            let units = bytes.get(field::HDR_EXT_LEN).ok_or(Error::Truncated)?;
            Ok((usize::from(*units) + 1) * 8)
        }
    }
}

/// One extension header in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Which header this is (the Next Header value that named it).
    pub kind: u8,
    /// Offset of the header from the start of the bytes walked.
    pub offset: usize,
    /// Its length in bytes.
    pub len: usize,
}

/// What a walk over the extension headers after the fixed header found: the headers in order,
/// and where the upper layer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    headers: [Header; MAX_HEADERS],
    count: usize,
    /// The Next Header value after the last extension header (the upper layer, or a header
    /// this module does not walk, e.g. ESP).
    pub upper: u8,
    /// Offset of the upper layer from the start of the bytes walked.
    pub upper_offset: usize,
    /// Offset, from the start of the bytes walked, of the Next Header field that names the
    /// upper layer (what an ICMPv6 parameter problem "unrecognized next header" points at,
    /// relative to the fixed header's end; the fixed header's own field is reported as
    /// `None`).
    pub upper_named_at: Option<usize>,
}

impl Chain {
    /// Walks the extension headers of `bytes` (an IPv6 payload) whose first header is
    /// `first`, stopping at the first value that is not an extension header, at a Fragment
    /// header whose offset is non-zero (the rest belongs to the fragmentable part, which is not
    /// there yet), or after [`MAX_HEADERS`]. Errors: `Truncated` when a header runs past the
    /// end of `bytes`; `BadLength` for more than [`MAX_HEADERS`] headers.
    pub fn walk(first: u8, bytes: &[u8]) -> Result<Chain> {
        let empty = Header {
            kind: 0,
            offset: 0,
            len: 0,
        };
        let mut chain = Chain {
            headers: [empty; MAX_HEADERS],
            count: 0,
            upper: first,
            upper_offset: 0,
            upper_named_at: None,
        };
        let mut next = first;
        let mut at = 0;
        while is_extension(next) {
            if chain.count == MAX_HEADERS {
                return Err(Error::BadLength);
            }
            let rest = &bytes[at.min(bytes.len())..];
            let len = header_len(next, rest)?;
            if rest.len() < len {
                return Err(Error::Truncated);
            }
            chain.headers[chain.count] = Header {
                kind: next,
                offset: at,
                len,
            };
            chain.count += 1;
            chain.upper_named_at = Some(at + field::NEXT_HEADER);
            let is_later_fragment =
                next == 44 && FragmentHeader::new_unchecked(rest).frag_offset() != 0;
            next = rest[field::NEXT_HEADER];
            at += len;
            if is_later_fragment {
                break;
            }
        }
        chain.upper = next;
        chain.upper_offset = at;
        Ok(chain)
    }

    /// The extension headers, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers[..self.count]
    }

    /// The Fragment header, if the chain has one.
    pub fn fragment(&self) -> Option<Header> {
        self.headers().iter().copied().find(|h| h.kind == 44)
    }
}

/// One option of a Hop-by-Hop or Destination Options header (RFC 8200 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt<'a> {
    /// Option Type.
    pub kind: u8,
    /// Offset of the Option Type octet from the start of the header.
    pub offset: usize,
    /// Option Data.
    pub data: &'a [u8],
}

/// Pad1 (RFC 8200 §4.2): a single octet, no length.
pub const OPT_PAD1: u8 = 0;
/// PadN.
pub const OPT_PADN: u8 = 1;

impl Opt<'_> {
    /// The action the two high-order bits of an unrecognized option's type require
    /// (RFC 8200 §4.2).
    pub fn unknown_action(&self) -> UnknownOption {
        match self.kind >> 6 {
            0 => UnknownOption::Skip,
            1 => UnknownOption::Discard,
            2 => UnknownOption::DiscardAndReport,
            _ => UnknownOption::DiscardAndReportUnlessMulticast,
        }
    }
}

/// RFC 8200 §4.2: what to do with an option whose type is not recognized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownOption {
    /// 00: skip over this option and continue processing the header.
    Skip,
    /// 01: discard the packet.
    Discard,
    /// 10: discard the packet and send an ICMP Parameter Problem, Code 2, pointing to the
    /// option's type, whatever the destination.
    DiscardAndReport,
    /// 11: as 10, but only if the destination was not a multicast address.
    DiscardAndReportUnlessMulticast,
}

/// The options of a Hop-by-Hop or Destination Options header, in order. Yields
/// `Err(Truncated)` (and then stops) for an option whose length runs past the header.
pub struct Options<'a> {
    header: &'a [u8],
    at: usize,
}

impl<'a> Options<'a> {
    /// The options of `header`, a whole Hop-by-Hop or Destination Options header (its length
    /// as [`header_len`] gives it).
    pub fn new(header: &'a [u8]) -> Options<'a> {
        Options {
            header,
            at: field::OPTIONS,
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<Opt<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.at;
        let kind = *self.header.get(offset)?;
        if kind == OPT_PAD1 {
            self.at += 1;
            return Some(Ok(Opt {
                kind,
                offset,
                data: &[],
            }));
        }
        let Some(&len) = self.header.get(offset + 1) else {
            self.at = self.header.len();
            return Some(Err(Error::Truncated));
        };
        let end = offset + 2 + usize::from(len);
        let Some(data) = self.header.get(offset + 2..end) else {
            self.at = self.header.len();
            return Some(Err(Error::Truncated));
        };
        self.at = end;
        Some(Ok(Opt { kind, offset, data }))
    }
}

/// A Routing header (RFC 8200 §4.4), read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routing {
    pub routing_type: u8,
    pub segments_left: u8,
}

impl Routing {
    /// Offset of the Routing Type field in the header (what a parameter problem points at).
    pub const TYPE_OFFSET: usize = field::ROUTING_TYPE;

    /// Reads the fixed part of a Routing header; `Truncated` below 4 bytes.
    pub fn parse(header: &[u8]) -> Result<Routing> {
        if header.len() < 4 {
            return Err(Error::Truncated);
        }
        Ok(Routing {
            routing_type: header[field::ROUTING_TYPE],
            segments_left: header[field::SEGMENTS_LEFT],
        })
    }
}

/// A view over a Fragment header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    /// Wraps `buffer` without checking its length; accessors panic below 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        FragmentHeader { buffer }
    }

    /// Wraps `buffer` if it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < FRAGMENT_HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(FragmentHeader { buffer })
    }

    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    /// Fragment Offset in bytes (the field counts 8-octet units).
    pub fn frag_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FRAG_OFFSET_M) & 0xfff8
    }

    /// The M flag: more fragments follow.
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FRAG_OFFSET_M) & 1 == 1
    }

    pub fn ident(&self) -> u32 {
        be32(self.buffer.as_ref(), field::IDENT)
    }
}

/// Offset of the Fragment Offset field in the header (a parameter problem points at it).
pub const FRAG_OFFSET_FIELD: usize = field::FRAG_OFFSET_M;

/// A Fragment header's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentRepr {
    pub next_header: IpProtocol,
    /// In bytes; a multiple of 8.
    pub frag_offset: u16,
    pub more_frags: bool,
    pub ident: u32,
}

impl FragmentRepr {
    pub fn parse<T: AsRef<[u8]>>(h: &FragmentHeader<T>) -> FragmentRepr {
        FragmentRepr {
            next_header: h.next_header(),
            frag_offset: h.frag_offset(),
            more_frags: h.more_frags(),
            ident: h.ident(),
        }
    }

    /// Writes the 8-byte header (reserved fields zero). `BufferTooSmall` below 8 bytes;
    /// `BadLength` for an offset that is not a multiple of 8.
    pub fn emit(&self, out: &mut [u8]) -> Result<()> {
        let out = out
            .get_mut(..FRAGMENT_HEADER_LEN)
            .ok_or(Error::BufferTooSmall)?;
        if self.frag_offset % 8 != 0 {
            return Err(Error::BadLength);
        }
        out[field::NEXT_HEADER] = u8::from(self.next_header);
        out[1] = 0;
        put16(
            out,
            field::FRAG_OFFSET_M,
            self.frag_offset | u16::from(self.more_frags),
        );
        put32(out, field::IDENT, self.ident);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_header_round_trips() {
        let r = FragmentRepr {
            next_header: IpProtocol::Tcp,
            frag_offset: 1448,
            more_frags: true,
            ident: 0xdead_beef,
        };
        let mut b = [0xffu8; 8];
        r.emit(&mut b).unwrap();
        assert_eq!(b, [6, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef]);
        let h = FragmentHeader::new_checked(&b[..]).unwrap();
        assert_eq!(FragmentRepr::parse(&h), r);
        assert_eq!(r.emit(&mut [0u8; 7]), Err(Error::BufferTooSmall));
        let odd = FragmentRepr {
            frag_offset: 3,
            ..r
        };
        assert_eq!(odd.emit(&mut b), Err(Error::BadLength));
        assert_eq!(
            FragmentHeader::new_checked(&b[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn a_chain_is_walked_to_the_upper_layer() {
        // Hop-by-Hop (8 bytes, PadN) -> Destination Options (16 bytes) -> Fragment -> TCP.
        let mut b = vec![DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        b.extend_from_slice(&[44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&[0xaa; 20]);
        let c = Chain::walk(0, &b).unwrap();
        let kinds: Vec<u8> = c.headers().iter().map(|h| h.kind).collect();
        assert_eq!(kinds, [0, DEST_OPTS, 44]);
        assert_eq!((c.upper, c.upper_offset), (6, 32));
        assert_eq!(c.upper_named_at, Some(24));
        assert_eq!(c.fragment().unwrap().offset, 24);
        // No extension headers at all.
        let c = Chain::walk(6, &b).unwrap();
        assert_eq!(
            (c.headers().len(), c.upper_offset, c.upper_named_at),
            (0, 0, None)
        );
    }

    #[test]
    fn a_later_fragment_ends_the_walk_and_bad_chains_are_errors() {
        // A fragment at offset 8: what follows is payload, not headers.
        let b = [0u8, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0];
        let c = Chain::walk(44, &b).unwrap();
        assert_eq!((c.upper, c.upper_offset), (0, 8));
        // A header that runs past the end.
        assert_eq!(Chain::walk(0, &[6, 1, 0, 0]), Err(Error::Truncated));
        assert_eq!(Chain::walk(0, &[6]), Err(Error::Truncated));
        // Too many headers: a loop of Destination Options.
        let many = [DEST_OPTS, 0, 1, 4, 0, 0, 0, 0].repeat(MAX_HEADERS + 1);
        assert_eq!(Chain::walk(DEST_OPTS, &many), Err(Error::BadLength));
    }

    #[test]
    fn options_are_iterated_with_their_offsets_and_actions() {
        // Pad1, an unknown option 0xc2 (action 11) with 4 data bytes, then PadN of 0 and of 3.
        let h = [6, 0, 0, 0xc2, 4, 1, 2, 3, 4, 1, 0, 1, 3, 0, 0, 0];
        let opts: Vec<Opt<'_>> = Options::new(&h).map(Result::unwrap).collect();
        assert_eq!(opts.len(), 4);
        assert_eq!((opts[0].kind, opts[0].offset), (OPT_PAD1, 2));
        assert_eq!(
            (opts[1].kind, opts[1].offset, opts[1].data),
            (0xc2, 3, &[1, 2, 3, 4][..])
        );
        assert_eq!(
            opts[1].unknown_action(),
            UnknownOption::DiscardAndReportUnlessMulticast
        );
        assert_eq!((opts[2].kind, opts[2].offset), (OPT_PADN, 9));
        // An option longer than the header.
        let bad = [6, 0, 0x3e, 9, 0, 0, 0, 0];
        let got: Vec<_> = Options::new(&bad).collect();
        assert_eq!(got, [Err(Error::Truncated)]);
        assert_eq!(
            Opt {
                kind: 0x40,
                offset: 0,
                data: &[]
            }
            .unknown_action(),
            UnknownOption::Discard
        );
    }

    #[test]
    fn routing_header_fields() {
        let r = Routing::parse(&[6, 0, 0, 2, 0, 0, 0, 0]).unwrap();
        assert_eq!((r.routing_type, r.segments_left), (0, 2));
        assert_eq!(Routing::parse(&[6, 0, 0]), Err(Error::Truncated));
    }
}
