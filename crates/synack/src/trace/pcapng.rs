//! pcapng capture files (what Wireshark and dumpcap write by default), read into the same
//! `(time, IP packet)` pairs as [`read_pcap`]. [`read_capture`] takes
//! either format.
//!
//! Read: the Section Header Block (either byte order; a file may hold several sections),
//! Interface Description Blocks (link type and `if_tsresol`), Enhanced Packet Blocks and
//! Simple Packet Blocks (which carry no time: they get the previous packet's). Other blocks
//! (statistics, name resolution, custom) are skipped. Frames are stripped to their IP packet
//! as in pcap files; frames that carry no IP are skipped.
//!
//! Format reference: draft-ietf-opsawg-pcapng (<https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html>).

use super::pcap::{PcapError, ip_of_frame, read_pcap};
use crate::time::Instant;

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// `if_tsresol`: the interface's timestamp resolution.
const OPT_TSRESOL: u16 = 9;

/// Reads a pcap or pcapng file, whichever it is.
pub fn read_capture(bytes: &[u8]) -> Result<Vec<(Instant, Vec<u8>)>, PcapError> {
    if bytes.len() >= 4 && u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == SHB {
        read_pcapng(bytes)
    } else {
        read_pcap(bytes)
    }
}

/// One interface of the current section.
#[derive(Clone, Copy)]
struct Interface {
    linktype: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
}

/// Reads a pcapng file. Never panics on any input.
pub fn read_pcapng(bytes: &[u8]) -> Result<Vec<(Instant, Vec<u8>)>, PcapError> {
    let mut packets = Vec::new();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut little = true;
    let mut last_time = Instant::ZERO;
    let mut at = 0usize;
    while at < bytes.len() {
        let head = bytes
            .get(at..at + 12)
            .ok_or(PcapError::Truncated { offset: at })?;
        let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if raw_type == SHB {
            // The byte-order magic says how to read this section, its own length included.
            let magic = [head[8], head[9], head[10], head[11]];
            little = match (u32::from_le_bytes(magic), u32::from_be_bytes(magic)) {
                (BYTE_ORDER_MAGIC, _) => true,
                (_, BYTE_ORDER_MAGIC) => false,
                _ => return Err(PcapError::BadMagic(u32::from_be_bytes(magic))),
            };
            interfaces.clear();
        } else if at == 0 {
            return Err(PcapError::BadMagic(raw_type.swap_bytes()));
        }
        let u32_at = |b: &[u8], i: usize| -> Option<u32> {
            let w = [*b.get(i)?, *b.get(i + 1)?, *b.get(i + 2)?, *b.get(i + 3)?];
            Some(if little {
                u32::from_le_bytes(w)
            } else {
                u32::from_be_bytes(w)
            })
        };
        let u16_at = |b: &[u8], i: usize| -> Option<u16> {
            let w = [*b.get(i)?, *b.get(i + 1)?];
            Some(if little {
                u16::from_le_bytes(w)
            } else {
                u16::from_be_bytes(w)
            })
        };
        let truncated = PcapError::Truncated { offset: at };
        let block_type = u32_at(head, 0).ok_or(truncated)?;
        let len = u32_at(head, 4).ok_or(truncated)? as usize;
        if len < 12 || len % 4 != 0 {
            return Err(truncated);
        }
        let block = at
            .checked_add(len)
            .and_then(|end| bytes.get(at..end))
            .ok_or(truncated)?;
        let body = &block[8..len - 4];
        match block_type {
            IDB => {
                let linktype = u32::from(u16_at(body, 0).ok_or(truncated)?);
                let mut units_per_sec = 1_000_000u64;
                // Options after linktype, reserved and snaplen: code, length, value padded.
                let mut o = 8usize;
                while let (Some(code), Some(olen)) = (u16_at(body, o), u16_at(body, o + 2)) {
                    if code == 0 {
                        break;
                    }
                    let olen = usize::from(olen);
                    if code == OPT_TSRESOL && olen >= 1 {
                        let v = *body.get(o + 4).ok_or(truncated)?;
                        units_per_sec = if v & 0x80 == 0 {
                            10u64.checked_pow(u32::from(v)).unwrap_or(u64::MAX)
                        } else {
                            2u64.checked_pow(u32::from(v & 0x7f)).unwrap_or(u64::MAX)
                        };
                    }
                    o += 4 + olen.div_ceil(4) * 4;
                }
                interfaces.push(Interface {
                    linktype,
                    units_per_sec: units_per_sec.max(1),
                });
            }
            EPB => {
                let iface = u32_at(body, 0).ok_or(truncated)? as usize;
                let hi = u64::from(u32_at(body, 4).ok_or(truncated)?);
                let lo = u64::from(u32_at(body, 8).ok_or(truncated)?);
                let caplen = u32_at(body, 12).ok_or(truncated)? as usize;
                let data = body.get(20..20 + caplen).ok_or(truncated)?;
                let i = *interfaces
                    .get(iface)
                    .ok_or(PcapError::Truncated { offset: at })?;
                let units = (hi << 32) | lo;
                let micros = u128::from(units) * 1_000_000 / u128::from(i.units_per_sec);
                last_time = Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX));
                if let Some(ip) = ip_of_frame(i.linktype, data) {
                    packets.push((last_time, ip.to_vec()));
                }
            }
            SPB => {
                let i = *interfaces.first().ok_or(truncated)?;
                let orig = u32_at(body, 0).ok_or(truncated)? as usize;
                let data = body.get(4..).ok_or(truncated)?;
                let data = &data[..orig.min(data.len())];
                if let Some(ip) = ip_of_frame(i.linktype, data) {
                    packets.push((last_time, ip.to_vec()));
                }
            }
            _ => {}
        }
        at += len;
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::super::pcap::{LINKTYPE_ETHERNET, LINKTYPE_RAW};
    use super::*;

    fn block(ty: u32, body: &[u8], be: bool) -> Vec<u8> {
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = (body.len() + 12) as u32;
        let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut b = Vec::new();
        b.extend(w(ty));
        b.extend(w(len));
        b.extend(body);
        b.extend(w(len));
        b
    }

    /// A file with one interface of `linktype` at nanosecond resolution, an EPB at 1.5 s and
    /// an SPB, in either byte order.
    fn file(be: bool, linktype: u16, frame: &[u8]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut shb = Vec::new();
        shb.extend(w32(BYTE_ORDER_MAGIC));
        shb.extend(w16(1));
        shb.extend(w16(0));
        shb.extend([0xff; 8]); // section length unknown
        let mut idb = Vec::new();
        idb.extend(w16(linktype));
        idb.extend(w16(0));
        idb.extend(w32(65535));
        idb.extend(w16(OPT_TSRESOL));
        idb.extend(w16(1));
        idb.extend([9, 0, 0, 0]);
        idb.extend([0, 0, 0, 0]); // opt_endofopt
        let ts: u64 = 1_500_000_000; // ns
        let mut epb = Vec::new();
        epb.extend(w32(0));
        epb.extend(w32((ts >> 32) as u32));
        epb.extend(w32(ts as u32));
        epb.extend(w32(frame.len() as u32));
        epb.extend(w32(frame.len() as u32));
        epb.extend(frame);
        let mut spb = Vec::new();
        spb.extend(w32(frame.len() as u32));
        spb.extend(frame);
        let mut f = block(SHB, &shb, be);
        // The SHB's type reads the same either way; its magic decides.
        f[..4].copy_from_slice(&SHB.to_le_bytes());
        f.extend(block(IDB, &idb, be));
        f.extend(block(0xbad, &[1, 2, 3], be)); // unknown: skipped
        f.extend(block(EPB, &epb, be));
        f.extend(block(SPB, &spb, be));
        f
    }

    #[test]
    fn both_byte_orders_nanoseconds_and_simple_packets() {
        let ip = [
            0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        for be in [false, true] {
            let got = read_capture(&file(be, LINKTYPE_RAW as u16, &ip)).unwrap();
            assert_eq!(
                got,
                [
                    (Instant::from_micros(1_500_000), ip.to_vec()),
                    (Instant::from_micros(1_500_000), ip.to_vec())
                ],
                "big-endian {be}"
            );
        }
        // Ethernet: stripped to the IP packet; ARP skipped.
        let mut eth = vec![0u8; 12];
        eth.extend([0x08, 0x00]);
        eth.extend(ip);
        let got = read_pcapng(&file(false, LINKTYPE_ETHERNET as u16, &eth)).unwrap();
        assert_eq!(got[0].1, ip);
        let mut arp = vec![0u8; 12];
        arp.extend([0x08, 0x06, 0, 0]);
        assert!(
            read_pcapng(&file(false, LINKTYPE_ETHERNET as u16, &arp))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let ip = [0x45u8; 20];
        let good = file(false, LINKTYPE_RAW as u16, &ip);
        for len in 0..good.len() {
            let _ = read_capture(&good[..len]);
        }
        for i in 0..good.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let _ = read_capture(&b);
            }
        }
        assert_eq!(
            read_pcapng(&good[..30]),
            Err(PcapError::Truncated { offset: 28 })
        );
        let mut bad_magic = good.clone();
        bad_magic[8] = 0;
        assert!(matches!(
            read_pcapng(&bad_magic),
            Err(PcapError::BadMagic(_))
        ));
    }
}
