//! IPv6 fixed header: arbitrary bytes through the checked view, every accessor and setter,
//! `Repr::parse` (IPv6 has no header checksum to verify), `Display`, and emit → re-parse
//! round trips.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use synack::wire::ipv6::{HEADER_LEN, Packet, Repr};
use synack::wire::{Error, IpProtocol};

fuzz_target!(|data: &[u8]| {
    let packet = match Packet::new_checked(data) {
        Ok(packet) => packet,
        Err(error) => {
            let unchecked = Packet::new_unchecked(data);
            assert_eq!(Repr::parse(&unchecked), Err(error));
            if data.len() >= HEADER_LEN {
                black_box(unchecked.payload());
            }
            return;
        }
    };

    // Every accessor, and the invariants check_len promises.
    assert_eq!(packet.version(), 6);
    assert_eq!(packet.traffic_class(), packet.dscp() << 2 | packet.ecn());
    assert!(packet.flow_label() < 1 << 20);
    let payload_len = usize::from(packet.payload_len());
    assert!(HEADER_LEN + payload_len <= data.len());
    assert_eq!(
        packet.payload(),
        &data[HEADER_LEN..HEADER_LEN + payload_len]
    );
    black_box((
        packet.next_header(),
        packet.hop_limit(),
        packet.src_addr(),
        packet.dst_addr(),
        packet.as_ref(),
    ));
    assert_eq!(&packet.src_addr().octets()[..], &data[8..24]);
    assert_eq!(&packet.dst_addr().octets()[..], &data[24..40]);

    // Writing back what was read changes nothing.
    let mut copy = data.to_vec();
    let mut view = Packet::new_unchecked(&mut copy[..]);
    view.set_version(packet.version());
    view.set_traffic_class(packet.traffic_class());
    view.set_flow_label(packet.flow_label());
    view.set_payload_len(packet.payload_len());
    view.set_next_header(packet.next_header());
    view.set_hop_limit(packet.hop_limit());
    view.set_src_addr(packet.src_addr());
    view.set_dst_addr(packet.dst_addr());
    assert_eq!(view.payload_mut().len(), payload_len);
    assert_eq!(copy, data, "set_x(x()) must be the identity");

    let repr = Repr::parse(&packet).expect("a checked packet parses");
    assert_eq!(repr.payload_len, payload_len);
    assert_eq!(
        repr.next_header,
        IpProtocol::from(u8::from(repr.next_header))
    );
    black_box(repr.to_string());

    // Emit and parse again: the same Repr, the same payload.
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(
        repr.emit(&mut Packet::new_unchecked(
            &mut out[..repr.buffer_len() - 1]
        )),
        Err(Error::BufferTooSmall)
    );
    let mut emitted = Packet::new_unchecked(&mut out[..]);
    repr.emit(&mut emitted).expect("a parsed Repr emits");
    emitted.payload_mut().copy_from_slice(packet.payload());
    let reparsed_packet = Packet::new_checked(&out[..]).expect("emitted packet is well-formed");
    assert_eq!(Repr::parse(&reparsed_packet), Ok(repr));
    assert_eq!(reparsed_packet.payload(), packet.payload());
});
