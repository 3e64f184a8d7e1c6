//! TCP: arbitrary bytes as a segment through the checked view, every accessor and setter, the
//! options iterator against `Options::parse`, `Repr::parse` with and without checksum
//! verification (over an IPv4 and an IPv6 pseudo-header), both renderings, and emit →
//! re-parse round trips.
#![no_main]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use synack::tcp::SeqNum;
use synack::wire::Error;
use synack::wire::tcp::{
    DisplayContext, HEADER_LEN, MAX_HEADER_LEN, Options, OptionsIter, Packet, Repr, TcpOption,
};

/// The pseudo-header addresses the segment is checked against: one pair of each family.
const ADDRS: [(IpAddr, IpAddr); 2] = [
    (
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
    ),
    (
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
    ),
];

/// Walks the options: they end at most once, with EOL or an error as the last item, and every
/// other item consumes at least one byte. Returns whether an error was seen.
fn check_options_iter(options: &[u8]) -> bool {
    let items: Vec<_> = OptionsIter::new(options).take(options.len() + 2).collect();
    assert!(
        items.len() <= options.len(),
        "each option takes a byte at least"
    );
    let mut failed = false;
    for (i, item) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        match item {
            Err(error) => {
                assert_eq!(*error, Error::BadOption);
                assert!(last, "nothing follows an error");
                failed = true;
            }
            Ok(TcpOption::EndOfList) => assert!(last, "nothing follows EOL"),
            Ok(TcpOption::Sack(blocks)) => assert!((1..=4).contains(&blocks.len())),
            Ok(TcpOption::Unknown { data, .. }) => assert!(data.len() <= options.len() - 2),
            Ok(other) => {
                black_box(format!("{other:?}"));
            }
        }
    }
    assert_eq!(Options::parse(options).is_err(), failed);
    failed
}

fuzz_target!(|data: &[u8]| {
    let packet = match Packet::new_checked(data) {
        Ok(packet) => packet,
        Err(error) => {
            let unchecked = Packet::new_unchecked(data);
            for (src, dst) in ADDRS {
                assert_eq!(Repr::parse(&unchecked, src, dst, false), Err(error));
                assert_eq!(Repr::parse(&unchecked, src, dst, true), Err(error));
            }
            return;
        }
    };

    // Every accessor, and the invariants check_len promises.
    let header_len = packet.header_len();
    assert!((HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len) && header_len <= data.len());
    assert_eq!(packet.options(), &data[HEADER_LEN..header_len]);
    assert_eq!(packet.payload(), &data[header_len..]);
    let flags = packet.flags();
    assert_eq!(
        packet.segment_len(),
        packet.payload().len() + usize::from(flags.syn()) + usize::from(flags.fin())
    );
    assert!(packet.reserved() < 16);
    black_box((
        packet.src_port(),
        packet.dst_port(),
        packet.seq_number(),
        packet.ack_number(),
        packet.window_len(),
        packet.checksum(),
        packet.urgent_at(),
        format!("{flags} {flags:?}"),
    ));
    let options_failed = check_options_iter(packet.options());
    assert_eq!(
        packet.options_iter().count(),
        OptionsIter::new(packet.options()).count()
    );

    // Writing back what was read changes nothing.
    let mut copy = data.to_vec();
    let mut view = Packet::new_unchecked(&mut copy[..]);
    view.set_src_port(packet.src_port());
    view.set_dst_port(packet.dst_port());
    view.set_seq_number(packet.seq_number());
    view.set_ack_number(packet.ack_number());
    view.set_header_len(header_len);
    view.set_flags(flags);
    view.set_window_len(packet.window_len());
    view.set_checksum(packet.checksum());
    view.set_urgent_at(packet.urgent_at());
    assert_eq!(view.payload_mut().len(), data.len() - header_len);
    assert_eq!(copy, data, "set_x(x()) must be the identity");

    for (src, dst) in ADDRS {
        let verifies = packet.verify_checksum(src, dst);
        let unverified = Repr::parse(&packet, src, dst, false);
        assert_eq!(unverified.is_err(), options_failed);
        match Repr::parse(&packet, src, dst, true) {
            Ok(verified) => {
                assert!(verifies);
                assert_eq!(Ok(verified), unverified);
            }
            Err(Error::BadChecksum) => assert!(!verifies),
            Err(error) => {
                assert!(verifies);
                assert_eq!(Err(error), unverified);
            }
        }

        // With the checksum filled in, verification passes and parses the same.
        let mut filled = data.to_vec();
        let mut view = Packet::new_unchecked(&mut filled[..]);
        view.fill_checksum(src, dst);
        assert!(view.verify_checksum(src, dst));
        let filled_view = Packet::new_checked(&filled[..]).unwrap();
        let reparsed = Repr::parse(&filled_view, src, dst, true);
        assert_eq!(reparsed.is_err(), options_failed);

        let Ok(repr) = unverified else { continue };
        assert_eq!(reparsed, Ok(repr));
        assert_eq!(repr.payload, packet.payload());
        assert_eq!(repr.segment_len(), packet.segment_len());
        black_box(repr.to_string());
        let ctx = DisplayContext {
            isn_sender: Some(SeqNum(repr.ack.0 ^ u32::from(repr.urgent))),
            isn_receiver: Some(SeqNum(repr.seq.0.rotate_left(7))),
            window_shift: Some(packet.reserved() * 2),
        };
        black_box(repr.display(ctx).to_string());

        // Emit and parse again: the same Repr.
        let mut out = vec![0u8; repr.buffer_len()];
        let mut emitted = Packet::new_unchecked(&mut out[..]);
        repr.emit(&mut emitted, src, dst)
            .expect("a parsed Repr emits");
        let emitted = Packet::new_checked(&out[..]).expect("emitted segment is well-formed");
        assert_eq!(emitted.header_len(), repr.header_len());
        let again = Repr::parse(&emitted, src, dst, true).expect("emitted segment parses");
        // Emit lays options out with Linux's NOP padding and, as `Options::wire_len` documents,
        // drops the SACK blocks that then no longer fit in 40 bytes: a parsed segment packed
        // tighter (e.g. TS, WS and three SACK blocks in 39 bytes) loses its last block. That,
        // and only that, is allowed to differ.
        let mut expected = repr;
        let kept = again.options.sack.len();
        if kept < repr.options.sack.len() {
            let (mut fitting, mut one_more) = (repr.options, repr.options);
            fitting.sack.truncate(kept);
            one_more.sack.truncate(kept + 1);
            assert_eq!(
                fitting.wire_len(),
                one_more.wire_len(),
                "emit dropped a SACK block that fits"
            );
            expected.options.sack.truncate(kept);
        }
        assert_eq!(again, expected, "emit -> parse must round-trip");
    }
});
