//! Classic libpcap capture files, as Wireshark, tshark and tcpdump read them.
//!
//! [`PcapWriter`] writes the 24-byte global header (magic `0xa1b2c3d4`, microsecond timestamps,
//! version 2.4, snaplen 65535, link type 101 `LINKTYPE_RAW`: each record is a bare IPv4 or IPv6
//! packet) in little-endian byte order, then one 16-byte record header and the packet bytes per
//! packet. [`PcapSink`] feeds it from [`TraceEvent::Packet`] events. [`read_pcap`] reads files
//! back: both byte orders, micro- and nanosecond timestamps, and the link types that carry IP
//! (raw, IPv4, IPv6, Ethernet, Linux cooked, BSD loopback).
//!
//! Format reference: <https://www.tcpdump.org/manpages/pcap-savefile.5.html> and
//! <https://www.tcpdump.org/linktypes.html>.

use core::fmt;
use std::io::{self, Write};

use super::{Direction, TraceEvent, TraceSink};
use crate::time::Instant;

/// The magic number of a microsecond-resolution file.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// The magic number of a nanosecond-resolution file.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Largest number of packet bytes stored per record; longer packets are cut (their original
/// length is still recorded).
pub const SNAPLEN: u32 = 65535;
/// `LINKTYPE_RAW`: the packet begins with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `LINKTYPE_NULL`: BSD loopback, a 4-byte host-order address family first.
pub const LINKTYPE_NULL: u32 = 0;
/// `LINKTYPE_LINUX_SLL`: Linux "cooked" capture (`tcpdump -i any`), a 16-byte header first.
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// `LINKTYPE_IPV4`: raw IPv4 only.
pub const LINKTYPE_IPV4: u32 = 228;
/// `LINKTYPE_IPV6`: raw IPv6 only.
pub const LINKTYPE_IPV6: u32 = 229;

const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// Writes a pcap file of raw IP packets.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header to `out`.
    pub fn new(mut out: W) -> io::Result<PcapWriter<W>> {
        let mut h = [0u8; GLOBAL_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version major
        h[6..8].copy_from_slice(&4u16.to_le_bytes()); // version minor
        // 8..12 thiszone and 12..16 sigfigs: zero, as every writer does.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Writes one packet (a whole IPv4 or IPv6 packet) captured at `time`. Seconds beyond
    /// what 32 bits hold (the year 2106 if `time` counts from the Unix epoch) are clamped.
    pub fn write_packet(&mut self, time: Instant, bytes: &[u8]) -> io::Result<()> {
        let us = time.total_micros();
        let secs = u32::try_from(us / 1_000_000).unwrap_or(u32::MAX);
        let micros = (us % 1_000_000) as u32;
        let orig_len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let stored = &bytes[..bytes.len().min(SNAPLEN as usize)];
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&micros.to_le_bytes());
        h[8..12].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(stored)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Gives the underlying writer back (not flushed; call [`flush`](Self::flush) first if it
    /// buffers).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A [`TraceSink`] that writes the packets of [`TraceEvent::Packet`] events to a pcap file;
/// other events are ignored (a Drop's packet was already written when it came `In`).
///
/// Every packet event is written, `In` and `Out` alike, from every node. When more than one
/// host reports into the same sink, each packet that crosses between them is written twice
/// (once as the sender's `Out`, once as the receiver's `In`, at different times); Wireshark
/// then flags the copies as retransmissions. Use [`only`](Self::only) with
/// [`Direction::Out`] to write each packet once at its send time, or
/// [`only_node`](Self::only_node) to capture as on one host's interface.
///
/// A sink cannot fail the stack, so the first write error is kept, writing stops, and
/// [`finish`](Self::finish) returns the error.
#[derive(Debug)]
pub struct PcapSink<W: Write> {
    writer: PcapWriter<W>,
    only: Option<Direction>,
    node: Option<String>,
    error: Option<io::Error>,
    packets: u64,
}

impl<W: Write> PcapSink<W> {
    /// Writes the global header to `out`; the sink then writes every packet event.
    pub fn new(out: W) -> io::Result<PcapSink<W>> {
        Ok(PcapSink {
            writer: PcapWriter::new(out)?,
            only: None,
            node: None,
            error: None,
            packets: 0,
        })
    }

    /// Writes only packets that crossed their host's interface in direction `dir`.
    pub fn only(mut self, dir: Direction) -> PcapSink<W> {
        self.only = Some(dir);
        self
    }

    /// Writes only packets reported by the host named `node`.
    pub fn only_node(mut self, node: impl Into<String>) -> PcapSink<W> {
        self.node = Some(node.into());
        self
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes and gives the writer back, or returns the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.writer.flush()?;
        Ok(self.writer.into_inner())
    }
}

impl<W: Write> TraceSink for PcapSink<W> {
    fn event(&mut self, e: &TraceEvent) {
        let TraceEvent::Packet {
            time,
            dir,
            node,
            bytes,
        } = e
        else {
            return;
        };
        if self.error.is_some()
            || self.only.is_some_and(|d| d != *dir)
            || self.node.as_deref().is_some_and(|n| n != node)
        {
            return;
        }
        match self.writer.write_packet(*time, bytes) {
            Ok(()) => self.packets += 1,
            Err(err) => self.error = Some(err),
        }
    }
}

/// Why a capture could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PcapError {
    /// The file ends inside a header or a packet; `offset` is where the incomplete part starts.
    Truncated { offset: usize },
    /// The file is pcapng: [`read_capture`](super::read_capture) reads both formats.
    Pcapng,
    /// The first four bytes are not a pcap magic number.
    BadMagic(u32),
    /// The link type carries something other than IP.
    UnsupportedLinkType(u32),
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::Truncated { offset } => {
                write!(f, "capture file truncated at byte {offset}")
            }
            PcapError::Pcapng => f.write_str(
                "a pcapng file: read it with read_capture (or convert it: `tshark -F pcap -r IN -w OUT`)",
            ),
            PcapError::BadMagic(m) => write!(f, "not a pcap file (magic {m:#010x})"),
            PcapError::UnsupportedLinkType(t) => {
                write!(f, "link type {t} does not carry IP packets")
            }
        }
    }
}

impl std::error::Error for PcapError {}

/// Reads a classic pcap file into (time, IP packet) pairs, timestamps in microseconds as
/// written (nanosecond files are rounded down). Frames of Ethernet, Linux cooked and BSD
/// loopback captures are stripped to their IP packet, and frames that do not carry IPv4 or
/// IPv6 (ARP, for instance) are skipped. Never panics on any input.
pub fn read_pcap(bytes: &[u8]) -> Result<Vec<(Instant, Vec<u8>)>, PcapError> {
    let head = bytes
        .get(..GLOBAL_HEADER_LEN)
        .ok_or(PcapError::Truncated { offset: 0 })?;
    let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let magic_be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let (little, nanos) = match (magic_le, magic_be) {
        (MAGIC_MICROS, _) => (true, false),
        (MAGIC_NANOS, _) => (true, true),
        (_, MAGIC_MICROS) => (false, false),
        (_, MAGIC_NANOS) => (false, true),
        (0x0a0d_0d0a, _) => return Err(PcapError::Pcapng),
        _ => return Err(PcapError::BadMagic(magic_be)),
    };
    let u32_at = |b: &[u8], at: usize| {
        let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if little {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    // The low 16 bits; the upper ones may hold FCS information (pcap-savefile(5)).
    let linktype = u32_at(head, 20) & 0xffff;
    if !matches!(
        linktype,
        LINKTYPE_RAW
            | LINKTYPE_IPV4
            | LINKTYPE_IPV6
            | LINKTYPE_ETHERNET
            | LINKTYPE_LINUX_SLL
            | LINKTYPE_NULL
    ) {
        return Err(PcapError::UnsupportedLinkType(linktype));
    }
    let mut packets = Vec::new();
    let mut at = GLOBAL_HEADER_LEN;
    while at < bytes.len() {
        let rec = bytes
            .get(at..at + RECORD_HEADER_LEN)
            .ok_or(PcapError::Truncated { offset: at })?;
        let secs = u64::from(u32_at(rec, 0));
        let frac = u64::from(u32_at(rec, 4));
        let incl = u32_at(rec, 8) as usize;
        let start = at + RECORD_HEADER_LEN;
        let data = start
            .checked_add(incl)
            .and_then(|end| bytes.get(start..end))
            .ok_or(PcapError::Truncated { offset: at })?;
        let micros = if nanos { frac / 1000 } else { frac };
        let time = Instant::from_micros(secs.saturating_mul(1_000_000).saturating_add(micros));
        if let Some(ip) = ip_of_frame(linktype, data) {
            packets.push((time, ip.to_vec()));
        }
        at = start + incl;
    }
    Ok(packets)
}

/// The IP packet inside a frame of `linktype`, or `None` if the frame carries something else.
pub(crate) fn ip_of_frame(linktype: u32, frame: &[u8]) -> Option<&[u8]> {
    const ETHERTYPE_IPV4: u16 = 0x0800;
    const ETHERTYPE_IPV6: u16 = 0x86dd;
    const ETHERTYPE_VLAN: u16 = 0x8100;
    fn by_ethertype(ethertype: u16, rest: &[u8]) -> Option<&[u8]> {
        matches!(ethertype, ETHERTYPE_IPV4 | ETHERTYPE_IPV6).then_some(rest)
    }
    let be16 = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    match linktype {
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 => Some(frame),
        LINKTYPE_ETHERNET => match be16(12)? {
            ETHERTYPE_VLAN => by_ethertype(be16(16)?, frame.get(18..)?),
            t => by_ethertype(t, frame.get(14..)?),
        },
        LINKTYPE_LINUX_SLL => by_ethertype(be16(14)?, frame.get(16..)?),
        LINKTYPE_NULL => {
            // The address family in the capturing host's byte order: 2 is IPv4 everywhere;
            // IPv6 is 10, 24, 28 or 30 depending on the OS. Either order is accepted.
            let family = frame.get(..4)?;
            let af = u32::from_le_bytes([family[0], family[1], family[2], family[3]]).min(
                u32::from_be_bytes([family[0], family[1], family[2], family[3]]),
            );
            matches!(af, 2 | 10 | 24 | 28 | 30).then(|| &frame[4..])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::script::*;
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    #[test]
    fn global_header_bytes() {
        let w = PcapWriter::new(Vec::new()).unwrap();
        assert_eq!(
            w.into_inner(),
            [
                0xd4, 0xc3, 0xb2, 0xa1, // magic, little-endian, microseconds
                0x02, 0x00, 0x04, 0x00, // version 2.4
                0x00, 0x00, 0x00, 0x00, // thiszone
                0x00, 0x00, 0x00, 0x00, // sigfigs
                0xff, 0xff, 0x00, 0x00, // snaplen 65535
                0x65, 0x00, 0x00, 0x00, // LINKTYPE_RAW (101)
            ]
        );
    }

    #[test]
    fn record_header_bytes() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Instant::from_micros(3_000_042), &[0x45, 1, 2])
            .unwrap();
        let b = w.into_inner();
        assert_eq!(
            &b[24..],
            [
                3, 0, 0, 0, // seconds
                42, 0, 0, 0, // microseconds
                3, 0, 0, 0, // stored length
                3, 0, 0, 0, // original length
                0x45, 1, 2,
            ]
        );
    }

    #[test]
    fn round_trip() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let pkts: Vec<_> = connection_packets()
            .into_iter()
            .map(|(ms, b)| (Instant::from_millis(ms), b))
            .collect();
        for (t, b) in &pkts {
            w.write_packet(*t, b).unwrap();
        }
        w.write_packet(Instant::from_micros(7_654_321), &[])
            .unwrap();
        let file = w.into_inner();
        let mut back = read_pcap(&file).unwrap();
        assert_eq!(back.pop(), Some((Instant::from_micros(7_654_321), vec![])));
        assert_eq!(back, pkts);
        // Oversized packets are cut to the snaplen but keep their original length.
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Instant::ZERO, &vec![0x45; 70_000]).unwrap();
        let file = w.into_inner();
        assert_eq!(&file[32..40], &[0xff, 0xff, 0, 0, 0x70, 0x11, 0x01, 0]);
        assert_eq!(read_pcap(&file).unwrap()[0].1.len(), 65535);
    }

    /// Re-encodes a little-endian microsecond file big-endian, optionally with nanoseconds.
    fn to_big_endian(file: &[u8], nanos: bool) -> Vec<u8> {
        let word =
            |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut out = Vec::new();
        let magic = if nanos { MAGIC_NANOS } else { MAGIC_MICROS };
        out.extend_from_slice(&magic.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        for at in [8, 12, 16, 20] {
            out.extend_from_slice(&word(file, at).to_be_bytes());
        }
        let mut at = 24;
        while at < file.len() {
            let incl = word(file, at + 8) as usize;
            let frac = word(file, at + 4) * if nanos { 1000 } else { 1 };
            for v in [
                word(file, at),
                frac,
                word(file, at + 8),
                word(file, at + 12),
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&file[at + 16..at + 16 + incl]);
            at += 16 + incl;
        }
        out
    }

    #[test]
    fn reads_big_endian_nanosecond_and_framed_captures() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Instant::from_micros(1_500_001), &[0x45, 9])
            .unwrap();
        let le = w.into_inner();
        let want = vec![(Instant::from_micros(1_500_001), vec![0x45, 9])];
        assert_eq!(read_pcap(&to_big_endian(&le, false)).unwrap(), want);
        assert_eq!(read_pcap(&to_big_endian(&le, true)).unwrap(), want);

        // Ethernet: one IPv4 frame, one ARP frame (skipped), one VLAN-tagged IPv6 frame.
        let mut file = le[..24].to_vec();
        file[20] = LINKTYPE_ETHERNET as u8;
        let mut frame = |payload: &[u8]| {
            file.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
            file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            file.extend_from_slice(payload);
        };
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00, 0x45, 1]);
        frame(&eth);
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
        frame(&arp);
        let mut vlan = vec![0u8; 12];
        vlan.extend_from_slice(&[0x81, 0x00, 0, 5, 0x86, 0xdd, 0x60, 2]);
        frame(&vlan);
        frame(&[0u8; 5]); // runt frame: skipped, not a panic
        let got: Vec<_> = read_pcap(&file).unwrap().into_iter().map(|p| p.1).collect();
        assert_eq!(got, [vec![0x45, 1], vec![0x60, 2]]);
    }

    #[test]
    fn bad_files_are_typed_errors() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Instant::ZERO, &[0x45; 20]).unwrap();
        let good = w.into_inner();
        assert_eq!(
            read_pcap(&good[..10]),
            Err(PcapError::Truncated { offset: 0 })
        );
        assert_eq!(
            read_pcap(&good[..30]),
            Err(PcapError::Truncated { offset: 24 })
        );
        assert_eq!(
            read_pcap(&good[..50]),
            Err(PcapError::Truncated { offset: 24 })
        );
        assert_eq!(read_pcap(&good[..24]), Ok(vec![]));
        let mut ng = good.clone();
        ng[..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        assert_eq!(read_pcap(&ng), Err(PcapError::Pcapng));
        let mut junk = good.clone();
        junk[..4].copy_from_slice(b"GIF8");
        assert_eq!(read_pcap(&junk), Err(PcapError::BadMagic(0x4749_4638)));
        let mut usb = good.clone();
        usb[20] = 189;
        assert_eq!(read_pcap(&usb), Err(PcapError::UnsupportedLinkType(189)));
        // A record length near u32::MAX must not overflow or allocate.
        let mut huge = good;
        huge[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_pcap(&huge), Err(PcapError::Truncated { offset: 24 }));
        assert!(PcapError::Pcapng.to_string().contains("tshark"));
    }

    #[test]
    fn sink_writes_packet_events_with_filters() {
        let events = connection_events();
        let write = |make: fn(PcapSink<Vec<u8>>) -> PcapSink<Vec<u8>>| {
            let mut sink = make(PcapSink::new(Vec::new()).unwrap());
            for e in &events {
                sink.event(e);
            }
            let n = sink.packets();
            let file = sink.finish().unwrap();
            assert_eq!(read_pcap(&file).unwrap().len() as u64, n);
            n
        };
        assert_eq!(write(|s| s), 8);
        assert_eq!(write(|s| s.only(Direction::Out)), 8);
        assert_eq!(write(|s| s.only(Direction::In)), 0);
        assert_eq!(write(|s| s.only_node("client")), 5);
        assert_eq!(write(|s| s.only_node("server").only(Direction::Out)), 3);
    }

    #[test]
    fn sink_keeps_the_first_write_error() {
        #[derive(Debug)]
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = PcapSink::new(Full(100)).unwrap();
        for e in connection_events() {
            sink.event(&e);
        }
        assert_eq!(sink.packets(), 1);
        let err = sink.finish().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn never_panics_on_arbitrary_files() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for (ms, b) in connection_packets() {
            w.write_packet(Instant::from_millis(ms), &b).unwrap();
        }
        let file = w.into_inner();
        for len in 0..file.len() {
            let _ = read_pcap(&file[..len]);
        }
        for i in 0..64 {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut f = file.clone();
                f[i] = v;
                let _ = read_pcap(&f);
            }
        }
    }

    /// A scratch file that removes itself.
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn tshark(args: &[&str]) -> String {
        let out = Command::new("tshark")
            .args(args)
            .output()
            .expect("run tshark");
        assert!(
            out.status.success(),
            "tshark {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("tshark prints UTF-8")
    }

    /// tshark decodes our capture of a whole connection without complaint, and its Info column
    /// agrees with our renderer's, segment for segment.
    #[test]
    fn tshark_reads_our_capture() {
        let found = Command::new("tshark").arg("--version").output().is_ok();
        if !found {
            crate::testing::skip(
                "tshark_reads_our_capture",
                "tshark is not installed (.ci/run installs it)",
            );
            return;
        }
        let events = connection_events();
        let mut sink = PcapSink::new(Vec::new()).unwrap().only(Direction::Out);
        for e in &events {
            sink.event(e);
        }
        let file = TempFile(std::env::temp_dir().join(format!(
            "synack-trace-{}-{:?}.pcap",
            std::process::id(),
            std::thread::current().id()
        )));
        std::fs::write(&file.0, sink.finish().unwrap()).unwrap();
        let path = file.0.to_str().unwrap();
        let checks = [
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
        ];

        // Expert information: nothing malformed, no checksum complaint.
        let mut args = vec!["-r", path];
        args.extend(checks);
        args.extend([
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.expert.message",
        ]);
        let expert = tshark(&args);
        eprintln!("tshark expert messages:\n{expert}");
        assert_eq!(expert.lines().count(), 8, "{expert}");
        let lower = expert.to_lowercase();
        for bad in ["malformed", "bad checksum", "incorrect", "error"] {
            assert!(!lower.contains(bad), "tshark says {bad:?}:\n{expert}");
        }

        // Two SYNs, two FINs, and every segment decodes as TCP.
        let count = |filter: &str| {
            let mut args = vec!["-r", path, "-Y", filter];
            args.extend(checks);
            tshark(&args).lines().count()
        };
        assert_eq!(count("tcp.flags.syn == 1"), 2);
        assert_eq!(count("tcp.flags.fin == 1"), 2);
        assert_eq!(count("tcp && ip.checksum.status == \"Good\""), 8);
        assert_eq!(count("tcp.checksum.status == \"Good\""), 8);

        // tshark's Info column is what our renderer prints after the names.
        let info = tshark(&["-r", path, "-T", "fields", "-e", "_ws.col.Info"]);
        let mut renderer = super::super::Renderer::new(super::super::TraceLevel::All);
        renderer.only(Direction::Out);
        let ours: Vec<String> = renderer
            .render(&events)
            .iter()
            .filter(|l| l.contains("[") && l.contains(" \u{2192} "))
            .map(|l| {
                // "TIME SRC → DST INFO   STATES": keep INFO.
                let info = l.splitn(5, ' ').nth(4).unwrap_or_default();
                info.split("   ").next().unwrap_or_default().to_string()
            })
            .collect();
        // Wireshark marks data it hands to its HTTP reassembly (port 80); not TCP's business.
        let theirs: Vec<&str> = info
            .lines()
            .map(|l| l.trim_end_matches(" [TCP segment of a reassembled PDU]"))
            .collect();
        assert_eq!(theirs, ours);
    }
}
