//! ICMPv4: arbitrary bytes as a message through the checked view, every accessor and setter,
//! the quoted original datagram (`icmp::Quote`), `Repr::parse` with and without checksum
//! verification, `Display`, and emit → re-parse round trips.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use synack::wire::Error;
use synack::wire::icmp::Quote;
use synack::wire::icmpv4::{HEADER_LEN, Message, Packet, Repr};

fn check_invoking(invoking: &Quote<'_>) {
    // An IPv4 header is a multiple of 4 bytes; an IPv6 one (with extension headers) of 8.
    assert!(invoking.header().len() >= 20 && invoking.header().len().is_multiple_of(4));
    assert!(invoking.payload().len() >= 8);
    assert!(invoking.frag_offset().is_multiple_of(8));
    black_box((
        invoking.ip_len(),
        invoking.hop_limit(),
        invoking.protocol(),
        invoking.src_addr(),
        invoking.dst_addr(),
        invoking.src_port(),
        invoking.dst_port(),
        invoking.tcp_seq_no(),
        invoking.to_string(),
    ));
}

fuzz_target!(|data: &[u8]| {
    let packet = match Packet::new_checked(data) {
        Ok(packet) => packet,
        Err(error) => {
            assert_eq!(error, Error::Truncated);
            let unchecked = Packet::new_unchecked(data);
            assert_eq!(Repr::parse(&unchecked, false), Err(error));
            assert_eq!(Repr::parse(&unchecked, true), Err(error));
            return;
        }
    };

    // Every accessor.
    assert_eq!(packet.data(), &data[HEADER_LEN..]);
    assert_eq!(
        packet.rest_of_header(),
        u32::from(packet.echo_ident()) << 16 | u32::from(packet.echo_seq_no())
    );
    assert_eq!(packet.next_hop_mtu(), packet.echo_seq_no());
    black_box((
        packet.msg_type(),
        packet.msg_type().to_string(),
        packet.msg_code(),
        packet.checksum(),
        packet.as_ref(),
    ));
    let quote = packet.quote();
    assert_eq!(quote, Quote::parse(&data[HEADER_LEN..]));
    if let Ok(invoking) = &quote {
        check_invoking(invoking);
    }
    let verifies = packet.verify_checksum();

    // Writing back what was read changes nothing; fill_checksum makes the message verify.
    let mut copy = data.to_vec();
    let mut view = Packet::new_unchecked(&mut copy[..]);
    view.set_msg_type(packet.msg_type());
    view.set_msg_code(packet.msg_code());
    view.set_checksum(packet.checksum());
    view.set_rest_of_header(packet.rest_of_header());
    view.set_echo_ident(packet.echo_ident());
    view.set_echo_seq_no(packet.echo_seq_no());
    view.set_next_hop_mtu(packet.next_hop_mtu());
    assert_eq!(view.data_mut().len(), data.len() - HEADER_LEN);
    assert_eq!(copy, data, "set_x(x()) must be the identity");
    let mut view = Packet::new_unchecked(&mut copy[..]);
    view.fill_checksum();
    assert!(view.verify_checksum());

    // Repr::parse: only the types in `Message` parse; verification rejects a bad checksum first.
    let unverified = Repr::parse(&packet, false);
    let modelled = !matches!(packet.msg_type(), Message::Unknown(_));
    match Repr::parse(&packet, true) {
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
    let repr = match unverified {
        Ok(repr) => {
            assert!(modelled);
            repr
        }
        Err(error) => {
            assert!(!modelled);
            assert_eq!(error, Error::Unrecognized);
            return;
        }
    };
    assert_eq!(repr.msg_type(), packet.msg_type());
    assert_eq!(repr.data(), packet.data());
    assert_eq!(repr.buffer_len(), data.len());
    match repr.quote() {
        None => assert!(matches!(
            repr,
            Repr::EchoRequest { .. } | Repr::EchoReply { .. }
        )),
        Some(parsed) => assert_eq!(parsed, quote),
    }
    black_box(repr.to_string());

    // Emit and parse again: the same Repr. The buffer is one byte longer than the message, which
    // emit must leave alone.
    let mut out = vec![0xa5u8; repr.buffer_len() + 1];
    assert_eq!(
        repr.emit(
            &mut Packet::new_unchecked(&mut out[..repr.buffer_len() - 1]),
            true
        ),
        Err(Error::BufferTooSmall)
    );
    repr.emit(&mut Packet::new_unchecked(&mut out[..]), true)
        .expect("a parsed Repr emits");
    assert_eq!(out[repr.buffer_len()], 0xa5, "emit wrote past buffer_len");
    let emitted =
        Packet::new_checked(&out[..repr.buffer_len()]).expect("emitted message is long enough");
    let again = Repr::parse(&emitted, true).expect("emitted message parses");
    assert_eq!(again, repr, "emit -> parse must round-trip");
});
