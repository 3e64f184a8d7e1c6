//! IPv4: arbitrary bytes through the checked view, every accessor and setter, `Repr::parse`
//! with and without checksum verification, `Display`, and emit → re-parse round trips.
//! Also cross-checks the optimised Internet checksum against a plain RFC 1071 loop.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use synack::wire::checksum::{self, Checksum};
use synack::wire::ipv4::{HEADER_LEN, MAX_HEADER_LEN, Packet, Repr};
use synack::wire::{Error, IpProtocol};

/// RFC 1071 §4.1, one 16-bit word at a time: the reference for `checksum::checksum`.
fn naive_checksum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for pair in data.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map_or(0, u64::from);
        sum += hi | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fuzz_target!(|data: &[u8]| {
    // The checksum: the whole input, and the same input fed in two pieces (the first even).
    assert_eq!(checksum::checksum(data), naive_checksum(data));
    let split = (data.len() / 2) & !1;
    let mut pieces = Checksum::new();
    pieces.add_bytes(&data[..split]);
    pieces.add_bytes(&data[split..]);
    assert_eq!(pieces.finish(), naive_checksum(data));

    let packet = match Packet::new_checked(data) {
        Ok(packet) => packet,
        Err(error) => {
            // Parsing an unchecked view fails the same way; the clamped accessors never panic.
            let unchecked = Packet::new_unchecked(data);
            assert_eq!(Repr::parse(&unchecked, false), Err(error));
            assert_eq!(Repr::parse(&unchecked, true), Err(error));
            if data.len() >= HEADER_LEN {
                black_box(unchecked.options());
                black_box(unchecked.payload());
                black_box(unchecked.verify_checksum());
            }
            return;
        }
    };

    // Every accessor, and the invariants check_len promises.
    let header_len = packet.header_len();
    assert!((HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len));
    assert_eq!(header_len, usize::from(packet.ihl()) * 4);
    assert_eq!(packet.version(), 4);
    assert_eq!(packet.tos(), packet.dscp() << 2 | packet.ecn());
    let total_len = usize::from(packet.total_len());
    assert!(header_len <= total_len && total_len <= data.len());
    assert_eq!(packet.options(), &data[HEADER_LEN..header_len]);
    assert_eq!(packet.payload(), &data[header_len..total_len]);
    assert!(packet.frag_offset().is_multiple_of(8));
    assert_eq!(
        packet.is_fragment(),
        packet.more_frags() || packet.frag_offset() != 0
    );
    black_box((
        packet.ident(),
        packet.reserved_flag(),
        packet.dont_frag(),
        packet.ttl(),
        packet.protocol(),
        packet.checksum(),
        packet.src_addr(),
        packet.dst_addr(),
        packet.as_ref(),
    ));
    let verifies = packet.verify_checksum();

    // Writing back what was read changes nothing; fill_checksum makes the header verify.
    let mut copy = data.to_vec();
    let mut view = Packet::new_unchecked(&mut copy[..]);
    view.set_version(packet.version());
    view.set_header_len(header_len);
    view.set_tos(packet.tos());
    view.set_dscp(packet.dscp());
    view.set_ecn(packet.ecn());
    view.set_total_len(packet.total_len());
    view.set_ident(packet.ident());
    view.set_dont_frag(packet.dont_frag());
    view.set_more_frags(packet.more_frags());
    view.set_frag_offset(packet.frag_offset());
    view.set_ttl(packet.ttl());
    view.set_protocol(packet.protocol());
    view.set_checksum(packet.checksum());
    view.set_src_addr(packet.src_addr());
    view.set_dst_addr(packet.dst_addr());
    assert_eq!(view.options_mut().len(), header_len - HEADER_LEN);
    assert_eq!(view.payload_mut().len(), total_len - header_len);
    assert_eq!(copy, data, "set_x(x()) must be the identity");
    let mut view = Packet::new_unchecked(&mut copy[..]);
    view.fill_checksum();
    assert!(view.verify_checksum());
    // The stored sum verifies exactly when it is the one fill_checksum writes, or the other
    // zero of one's-complement arithmetic (0xffff where 0x0000 is written).
    let (filled, stored) = (view.checksum(), packet.checksum());
    assert_eq!(
        verifies,
        filled == stored || (filled == 0 && stored == 0xffff)
    );

    // Repr::parse: without verification it succeeds; with it, only if the checksum verifies.
    let repr = Repr::parse(&packet, false).expect("a checked packet parses");
    match Repr::parse(&packet, true) {
        Ok(verified) => {
            assert!(verifies);
            assert_eq!(verified, repr);
        }
        Err(error) => {
            assert!(!verifies);
            assert_eq!(error, Error::BadChecksum);
        }
    }
    assert_eq!(repr.payload_len, total_len - header_len);
    assert_eq!(repr.protocol, IpProtocol::from(u8::from(repr.protocol)));
    black_box(repr.to_string());

    // Emit (20-byte header, the same payload) and parse again: the same Repr.
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(
        repr.emit(
            &mut Packet::new_unchecked(&mut out[..repr.buffer_len() - 1]),
            true
        ),
        Err(Error::BufferTooSmall)
    );
    let mut emitted = Packet::new_unchecked(&mut out[..]);
    repr.emit(&mut emitted, true).expect("a parsed Repr emits");
    emitted.payload_mut().copy_from_slice(packet.payload());
    let reparsed_packet = Packet::new_checked(&out[..]).expect("emitted packet is well-formed");
    let reparsed = Repr::parse(&reparsed_packet, true).expect("emitted checksum verifies");
    assert_eq!(reparsed, repr);
    assert_eq!(reparsed_packet.payload(), packet.payload());
    assert!(!reparsed_packet.more_frags() && reparsed_packet.frag_offset() == 0);
});
