//! A receiver that handles a burst of arrivals before it transmits (a batch read from the
//! device in one go) still reports every SACK block: Linux's `tcp_sack_new_ofo_skb` sends
//! the ACK it owes before a segment opens a new block while two or more are held
//! (`TCP_SACK_BLOCKS_EXPECTED`), so that no block is pushed out of the option unreported and
//! the sender does not resend data that arrived.

use std::sync::Arc;

use super::harness::*;
use crate::tcp::{Config, Connection, Counters, SeqNum};
use crate::time::Instant;
use crate::wire::tcp::Flags;

const T0: Instant = Instant::ZERO;

/// A client that offered SACK, got MSS 1000 and no timestamps (four blocks an option), and
/// has received nothing yet (RCV.NXT = 300).
fn receiver() -> (Connection, Counters) {
    let cfg = Arc::new(Config {
        timestamps: false,
        ..config()
    });
    let mut ctr = Counters::default();
    let c = sack_client_established(&cfg, 0, 1000, T0, &mut ctr);
    (c, ctr)
}

/// Segments 1, 3, 5, 7, 9 and 11 (of 1000 bytes from 300) arrive in one batch: six blocks,
/// more than one option holds. Every block is reported by some ACK, the ACKs come in the
/// order of arrival, each with blocks that arrived, and the last one reports the present
/// state (the four newest blocks, newest first).
#[test]
fn a_batch_of_arrivals_reports_every_sack_block() {
    let (mut c, mut ctr) = receiver();
    let d = vec![1u8; 1000];
    let islands: Vec<u32> = (0..6).map(|k| 300 + 1000 * (2 * k + 1)).collect();
    for &s in &islands {
        let seg = Inject::to_client(Flags::ACK, s, 1).data(&d).seg();
        deliver(&mut c, T0, &seg, &mut ctr);
    }
    let acks = drain(&mut c, T0, &mut ctr);
    assert!(
        acks.len() > 1 && acks.len() <= islands.len(),
        "{} ACKs",
        acks.len()
    );
    let mut reported = Vec::new();
    for a in &acks {
        assert_eq!(a.ack(), SeqNum(300));
        assert_eq!(a.len(), 0);
        for &(l, r) in a.repr().options.sack.as_slice() {
            assert!(islands.contains(&l.0) && r.0 == l.0 + 1000, "{l:?}..{r:?}");
            reported.push(l.0);
        }
    }
    for s in &islands {
        assert!(reported.contains(s), "block at {s} never reported");
    }
    let last: Vec<u32> = acks[acks.len() - 1]
        .repr()
        .options
        .sack
        .as_slice()
        .iter()
        .map(|b| b.0.0)
        .collect();
    assert_eq!(last, [11300, 9300, 7300, 5300]);
    // Nothing more is owed.
    assert!(drain(&mut c, T0, &mut ctr).is_empty());
}

/// Segments that extend or join blocks open none: the batch owes no ACK for them, and one
/// ACK reports the state.
#[test]
fn extending_blocks_owes_no_ack() {
    let (mut c, mut ctr) = receiver();
    let d = vec![1u8; 1000];
    for s in [1300, 3300, 4300, 5300, 2300] {
        let seg = Inject::to_client(Flags::ACK, s, 1).data(&d).seg();
        deliver(&mut c, T0, &seg, &mut ctr);
    }
    let acks = drain(&mut c, T0, &mut ctr);
    assert_eq!(acks.len(), 1);
    assert_eq!(
        acks[0].repr().options.sack.as_slice(),
        &[(SeqNum(1300), SeqNum(6300))]
    );
}

/// Two duplicates in one batch that one D-SACK block cannot cover: each is reported, in
/// its own ACK, as Linux answers each duplicate at once (`tcp_send_dupack`).
#[test]
fn each_duplicate_of_a_batch_gets_its_d_sack() {
    let (mut c, mut ctr) = receiver();
    let d = vec![1u8; 1000];
    for s in [300, 1300, 2300] {
        let seg = Inject::to_client(Flags::ACK, s, 1).data(&d).seg();
        deliver(&mut c, T0, &seg, &mut ctr);
    }
    drain(&mut c, T0, &mut ctr);
    for s in [300, 2300] {
        let seg = Inject::to_client(Flags::ACK, s, 1).data(&d).seg();
        deliver(&mut c, T0, &seg, &mut ctr);
    }
    let acks = drain(&mut c, T0, &mut ctr);
    let blocks: Vec<_> = acks
        .iter()
        .map(|a| {
            assert_eq!(a.ack(), SeqNum(3300));
            a.repr().options.sack.as_slice().to_vec()
        })
        .collect();
    assert_eq!(
        blocks,
        [
            vec![(SeqNum(300), SeqNum(1300))],
            vec![(SeqNum(2300), SeqNum(3300))]
        ]
    );
}

/// Segments 1, 3, 5, 7 and 9 open blocks (three owed ACKs), then 0, 2, 4, 6 and 8 fill every
/// hole in the same batch: the owed ACKs report nothing any more, and would go out as bare
/// duplicate ACKs (a sender counting those would resend for nothing). One ACK, for all of it.
#[test]
fn owed_acks_whose_blocks_were_filled_are_not_sent() {
    let (mut c, mut ctr) = receiver();
    let d = vec![1u8; 1000];
    for k in [1u32, 3, 5, 7, 9, 0, 2, 4, 6, 8] {
        let seg = Inject::to_client(Flags::ACK, 300 + 1000 * k, 1)
            .data(&d)
            .seg();
        deliver(&mut c, T0, &seg, &mut ctr);
    }
    let acks = drain(&mut c, T0, &mut ctr);
    assert_eq!(acks.len(), 1, "{} ACKs", acks.len());
    assert_eq!(acks[0].ack(), SeqNum(10300));
    assert!(acks[0].repr().options.sack.is_empty());
}

/// A bare FIN held out of order is a block in the recorder's recency order, like data
/// (Linux `tcp_data_queue_ofo` records its `end_seq`): four later blocks push it out of the
/// four the recorder keeps, and once the holes up to them fill nothing reports it any more,
/// as on Linux, which rebuilds no block from its out-of-order queue
/// (`ack-opts-ooo-fin-sack-pushed-out.pkt`). The record goes back then: the recorder is idle
/// and the assembler empty, and the FIN is still held in `rcv.fin` until 8300.. arrives.
#[test]
fn a_fin_pushed_out_of_the_sack_blocks_is_reported_no_more() {
    let (mut c, mut ctr) = receiver();
    let d = vec![1u8; 1000];
    let fin = Inject::to_client(Flags::ACK | Flags::FIN, 10300, 1).seg();
    deliver(&mut c, T0, &fin, &mut ctr);
    drain(&mut c, T0, &mut ctr);
    // Four islands below the FIN, then the holes up to the fourth filled.
    for s in [1300, 3300, 5300, 7300, 300, 2300, 4300, 6300] {
        let seg = Inject::to_client(Flags::ACK, s, 1).data(&d).seg();
        deliver(&mut c, T0, &seg, &mut ctr);
        drain(&mut c, T0, &mut ctr);
    }
    assert_eq!(c.rcv.nxt, SeqNum(8300));
    assert_eq!(c.rcv.fin, Some(SeqNum(10300)), "the FIN is still held");
    assert!(
        c.rcv.ooo.is_none(),
        "the record stayed with nothing to report"
    );
    assert!(c.sack_now().is_empty());
    // The next ACK (for data in order) reports no block; the one that reaches the FIN
    // acknowledges it.
    let seg = Inject::to_client(Flags::ACK, 8300, 1).data(&d).seg();
    deliver(&mut c, T0, &seg, &mut ctr);
    let acks = drain(&mut c, T0 + std::time::Duration::from_secs(1), &mut ctr);
    let last = acks.last().expect("an ACK for the data");
    assert_eq!(last.ack(), SeqNum(9300));
    assert!(last.repr().options.sack.is_empty());
    let seg = Inject::to_client(Flags::ACK, 9300, 1).data(&d).seg();
    deliver(
        &mut c,
        T0 + std::time::Duration::from_secs(1),
        &seg,
        &mut ctr,
    );
    let acks = drain(&mut c, T0 + std::time::Duration::from_secs(2), &mut ctr);
    assert_eq!(
        acks.last().expect("an ACK for the FIN").ack(),
        SeqNum(10301)
    );
}

/// Blocks remembered [A, D, C, B] (A = 1300.., newest): in one batch the hole before A fills
/// and a new block E opens. A is acknowledged as soon as RCV.NXT passes it (Linux
/// `tcp_data_queue` runs `tcp_sack_remove` after `tcp_ofo_queue`), before E arrives, so
/// that E takes A's slot and not B's: the owed ACK reports [D C B], the next [E D C B], as
/// Linux sends them. Were A kept until an ACK went out, E would push B out of the four, and
/// nothing would report B again.
#[test]
fn a_block_acknowledged_within_a_batch_frees_its_slot_at_once() {
    let (mut c, mut ctr) = receiver();
    let d = vec![1u8; 1000];
    for s in [3300, 5300, 7300, 1300] {
        let seg = Inject::to_client(Flags::ACK, s, 1).data(&d).seg();
        deliver(&mut c, T0, &seg, &mut ctr);
        drain(&mut c, T0, &mut ctr);
    }
    for s in [300, 9300] {
        let seg = Inject::to_client(Flags::ACK, s, 1).data(&d).seg();
        deliver(&mut c, T0, &seg, &mut ctr);
    }
    let acks = drain(&mut c, T0, &mut ctr);
    let blocks: Vec<Vec<u32>> = acks
        .iter()
        .map(|a| {
            assert_eq!(a.ack(), SeqNum(2300));
            let sack = a.repr().options.sack;
            sack.as_slice()
                .iter()
                .map(|&(l, r)| {
                    assert_eq!(r - l, 1000);
                    l.0
                })
                .collect()
        })
        .collect();
    assert_eq!(
        blocks,
        [vec![7300, 5300, 3300], vec![9300, 7300, 5300, 3300]]
    );
}
