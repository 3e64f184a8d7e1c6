//! ICMPv6: arbitrary bytes as a message through the checked view, every accessor and setter,
//! the quoted invoking packet (`icmp::Quote`, extension headers walked), `Repr::parse` with and
//! without checksum verification (over the IPv6 pseudo-header), `Display`, and emit →
//! re-parse round trips.
#![no_main]

use std::hint::black_box;
use std::net::{IpAddr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use synack::wire::Error;
use synack::wire::icmp::Quote;
use synack::wire::icmpv6::{HEADER_LEN, Message, Packet, Repr};

const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

fn check_invoking(invoking: &Quote<'_>, quote: &[u8]) {
    assert!(invoking.payload().len() >= 8);
    assert!(invoking.payload().len() <= quote.len() - invoking.header().len());
    assert!(invoking.frag_offset().is_multiple_of(8));
    black_box((
        invoking.protocol(),
        invoking.ip_len(),
        invoking.hop_limit(),
        invoking.src_addr(),
        invoking.dst_addr(),
        invoking.src_port(),
        invoking.dst_port(),
        invoking.tcp_seq_no(),
        invoking.to_string(),
    ));
    if let (IpAddr::V6(src), IpAddr::V6(dst)) = (invoking.src_addr(), invoking.dst_addr()) {
        assert_eq!(&src.octets()[..], &quote[8..24]);
        assert_eq!(&dst.octets()[..], &quote[24..40]);
    }
}

fuzz_target!(|data: &[u8]| {
    let packet = match Packet::new_checked(data) {
        Ok(packet) => packet,
        Err(error) => {
            assert_eq!(error, Error::Truncated);
            let unchecked = Packet::new_unchecked(data);
            assert_eq!(Repr::parse(&unchecked, SRC, DST, false), Err(error));
            assert_eq!(Repr::parse(&unchecked, SRC, DST, true), Err(error));
            return;
        }
    };

    // Every accessor.
    assert_eq!(packet.data(), &data[HEADER_LEN..]);
    assert_eq!(packet.rest_of_header(), packet.pkt_too_big_mtu());
    assert_eq!(packet.rest_of_header(), packet.param_problem_ptr());
    assert_eq!(
        packet.rest_of_header(),
        u32::from(packet.echo_ident()) << 16 | u32::from(packet.echo_seq_no())
    );
    black_box((
        packet.msg_type(),
        packet.msg_type().to_string(),
        packet.msg_code(),
        packet.checksum(),
        packet.as_ref(),
    ));
    let quote = packet.quote();
    assert_eq!(quote, Quote::parse(packet.data()));
    if let Ok(invoking) = &quote {
        check_invoking(invoking, packet.data());
    }
    let verifies = packet.verify_checksum(SRC, DST);

    // Writing back what was read changes nothing; fill_checksum makes the message verify.
    let mut copy = data.to_vec();
    let mut view = Packet::new_unchecked(&mut copy[..]);
    view.set_msg_type(packet.msg_type());
    view.set_msg_code(packet.msg_code());
    view.set_checksum(packet.checksum());
    view.set_rest_of_header(packet.rest_of_header());
    view.set_pkt_too_big_mtu(packet.pkt_too_big_mtu());
    view.set_param_problem_ptr(packet.param_problem_ptr());
    view.set_echo_ident(packet.echo_ident());
    view.set_echo_seq_no(packet.echo_seq_no());
    assert_eq!(view.data_mut().len(), data.len() - HEADER_LEN);
    assert_eq!(copy, data, "set_x(x()) must be the identity");
    let mut view = Packet::new_unchecked(&mut copy[..]);
    view.fill_checksum(SRC, DST);
    assert!(view.verify_checksum(SRC, DST));
    // The pseudo-header counts: the same message between other addresses does not verify
    // (unless the address sums happen to coincide, which these two pairs do not).
    assert!(!view.verify_checksum(DST, Ipv6Addr::LOCALHOST));

    // Repr::parse: only the types in `Message` parse; verification rejects a bad checksum first.
    let unverified = Repr::parse(&packet, SRC, DST, false);
    let modelled = !matches!(packet.msg_type(), Message::Unknown(_));
    match Repr::parse(&packet, SRC, DST, true) {
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
            SRC,
            DST,
            true
        ),
        Err(Error::BufferTooSmall)
    );
    repr.emit(&mut Packet::new_unchecked(&mut out[..]), SRC, DST, true)
        .expect("a parsed Repr emits");
    assert_eq!(out[repr.buffer_len()], 0xa5, "emit wrote past buffer_len");
    let emitted =
        Packet::new_checked(&out[..repr.buffer_len()]).expect("emitted message is long enough");
    let again = Repr::parse(&emitted, SRC, DST, true).expect("emitted message parses");
    assert_eq!(again, repr, "emit -> parse must round-trip");
});
