//! UDP: arbitrary bytes as a datagram through the checked view, every accessor and setter,
//! `Repr::parse` with and without checksum verification over both families' pseudo-headers
//! (zero is "none" over IPv4, refused over IPv6), and emit → re-parse round trips.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use synack::wire::Error;
use synack::wire::udp::{HEADER_LEN, Packet, Repr};

const S4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const D4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 77));
const S6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 1));
const D6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5ac, 0, 0, 0, 0, 0, 0x77));

fuzz_target!(|data: &[u8]| {
    let packet = match Packet::new_checked(data) {
        Ok(p) => p,
        Err(e) => {
            assert!(matches!(e, Error::Truncated | Error::BadLength));
            return;
        }
    };
    let len = usize::from(packet.len());
    assert!(len >= HEADER_LEN && len <= data.len());
    assert_eq!(packet.payload(), &data[HEADER_LEN..len]);
    // Setters write back what was read without changing a byte.
    let mut copy = data.to_vec();
    let mut p = Packet::new_unchecked(&mut copy[..]);
    p.set_src_port(packet.src_port());
    p.set_dst_port(packet.dst_port());
    p.set_len(packet.len());
    p.set_checksum(packet.checksum());
    assert_eq!(copy, data);
    for (src, dst) in [(S4, D4), (S6, D6)] {
        let unverified = Repr::parse(&packet, src, dst, false);
        let verified = Repr::parse(&packet, src, dst, true);
        if packet.verify_checksum(src, dst) {
            assert_eq!(verified, unverified);
        } else {
            assert_eq!(verified, Err(Error::BadChecksum));
        }
        if packet.checksum() == 0 {
            assert_eq!(packet.verify_checksum(src, dst), src.is_ipv4());
        }
        let Ok(r) = unverified else {
            assert_eq!(packet.dst_port(), 0);
            continue;
        };
        let mut out = vec![0u8; r.buffer_len()];
        assert_eq!(
            r.emit(&mut out[..r.buffer_len() - 1], src, dst),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(r.emit(&mut out, src, dst), Ok(r.buffer_len()));
        let back = Packet::new_checked(&out[..]).expect("emitted datagram is valid");
        assert!(back.verify_checksum(src, dst));
        assert_ne!(back.checksum(), 0, "a computed zero goes out as all ones");
        assert_eq!(Repr::parse(&back, src, dst, true), Ok(r));
    }
    // fill_checksum makes it verify.
    let mut filled = data[..len].to_vec();
    let mut p = Packet::new_unchecked(&mut filled[..]);
    p.fill_checksum(S6, D6);
    assert!(p.verify_checksum(S6, D6));
});
