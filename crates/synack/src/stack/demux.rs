//! TCP input: a segment finds its connection by 4-tuple, else a SYN-queue entry, else a
//! listener; with none of them it is answered with a RST (RFC 9293 §3.10.7.1).

use crate::tcp::ecn::Codepoint;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use core::hash::BuildHasher;

use super::egress::IpHeader;
use super::hash::KeyedHasher;
use super::{SocketHandle, Stack, Tuple};
use crate::tcp::State;
use crate::time::Instant;
use crate::wire::{self, IpProtocol, tcp as wtcp};

/// Where an entry went in the demux table: a hint that stays right until the table grows
/// (or rehashes in place), which moves entries. A connection keeps its entry's, so that
/// leaving the table needs no hash of its 4-tuple (Linux's socket keeps its `inet_ehashfn`
/// value, `sk_hash`, for `inet_unhash` to find its bucket); a hint that no longer holds
/// the connection only costs the lookup it would have had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Bucket(pub(super) u32);

/// The demux table: a 4-tuple to its connection, half-open entry (`SQ_BIT`) or compact
/// TIME-WAIT entry (`TW_BIT`), under the stack's keyed hash. The hash of a 4-tuple is a pure
/// function of it, so a caller that hashed it once (`hash`) passes that hash to every lookup,
/// insertion or replacement of the same 4-tuple that follows: a passive open hashes its
/// 4-tuple once per segment (the SYN's lookup and its entry's insertion; the final ACK's
/// lookup and its connection replacing the entry).
pub(super) struct Demux {
    table: hashbrown::HashTable<(Tuple, SocketHandle)>,
    hasher: KeyedHasher,
}

impl Demux {
    pub(super) fn new(hasher: KeyedHasher) -> Demux {
        Demux {
            table: hashbrown::HashTable::new(),
            hasher,
        }
    }

    /// The keyed hasher (other tables of the stack share its key).
    pub(super) fn hasher(&self) -> &KeyedHasher {
        &self.hasher
    }

    /// The hash of `tuple` that the other calls take.
    #[inline]
    pub(super) fn hash(&self, tuple: &Tuple) -> u64 {
        self.hasher.hash_one(tuple)
    }

    /// What `tuple` maps to; `hash` is [`hash`](Self::hash) of it.
    #[inline]
    pub(super) fn get(&self, hash: u64, tuple: &Tuple) -> Option<SocketHandle> {
        debug_assert_eq!(hash, self.hash(tuple));
        self.table.find(hash, |e| e.0 == *tuple).map(|e| e.1)
    }

    /// Whether `tuple` maps to anything. An empty table answers without hashing (a client's
    /// table between its connections, at `connect`'s port check).
    #[inline]
    pub(super) fn contains(&self, tuple: &Tuple) -> bool {
        !self.table.is_empty() && self.get(self.hash(tuple), tuple).is_some()
    }

    /// What `tuple` maps to, to change in place; `hash` is [`hash`](Self::hash) of it.
    #[inline]
    pub(super) fn get_mut(&mut self, hash: u64, tuple: &Tuple) -> Option<&mut SocketHandle> {
        debug_assert_eq!(hash, self.hash(tuple));
        self.table
            .find_mut(hash, |e| e.0 == *tuple)
            .map(|e| &mut e.1)
    }

    /// Maps `tuple` to `h`, replacing what it mapped to; `hash` is [`hash`](Self::hash) of it.
    /// Returns where the entry went: a [`Bucket`] hint for [`remove_at`](Self::remove_at).
    pub(super) fn insert(&mut self, hash: u64, tuple: Tuple, h: SocketHandle) -> Bucket {
        debug_assert_eq!(hash, self.hash(&tuple));
        let hasher = self.hasher;
        let at = match self
            .table
            .entry(hash, |e| e.0 == tuple, |e| hasher.hash_one(e.0))
        {
            hashbrown::hash_table::Entry::Occupied(mut e) => {
                e.get_mut().1 = h;
                e.bucket_index()
            }
            hashbrown::hash_table::Entry::Vacant(e) => e.insert((tuple, h)).bucket_index(),
        };
        Bucket(u32::try_from(at).unwrap_or(u32::MAX))
    }

    /// [`insert`](Self::insert) for a 4-tuple that most likely maps to something already (the
    /// half-open entry the final ACK's connection replaces): found, it is replaced in place,
    /// without the room for an insertion that `insert`'s `entry` makes first (and the
    /// table's growth that can start); absent (a SYN cookie's connection), inserted. The
    /// same mapping as `insert` either way, and the [`Bucket`] where the entry now is.
    pub(super) fn replace(&mut self, hash: u64, tuple: Tuple, h: SocketHandle) -> Bucket {
        debug_assert_eq!(hash, self.hash(&tuple));
        if let Ok(mut e) = self.table.find_entry(hash, |e| e.0 == tuple) {
            // Only a half-open entry gives way to its connection: a live connection's or a
            // TIME-WAIT entry's mapping is never overwritten silently.
            debug_assert!(
                e.get().1.index & super::syn_queue::SQ_BIT != 0,
                "replace over {:?}",
                e.get().1
            );
            e.get_mut().1 = h;
            return Bucket(u32::try_from(e.bucket_index()).unwrap_or(u32::MAX));
        }
        self.insert(hash, tuple, h)
    }

    /// Takes `tuple` out if it maps to `h` (one lookup).
    pub(super) fn remove(&mut self, tuple: &Tuple, h: SocketHandle) {
        let hash = self.hash(tuple);
        if let Ok(e) = self.table.find_entry(hash, |e| e.0 == *tuple)
            && e.get().1 == h
        {
            e.remove();
        }
    }

    /// [`remove`](Self::remove) of connection `h`'s 4-tuple (`tuple` gives it) for a
    /// caller that kept where `h`'s entry went in: found there (it holds `h`, which only
    /// one 4-tuple maps to), it is taken out without hashing the 4-tuple or comparing it;
    /// moved by the table's growth since, or gone, the 4-tuple is looked up as `remove`
    /// does.
    #[inline]
    pub(super) fn remove_at(&mut self, at: Bucket, h: SocketHandle, tuple: impl FnOnce() -> Tuple) {
        match self.table.get_bucket_entry(at.0 as usize) {
            Ok(e) if e.get().1 == h => {
                e.remove();
            }
            _ => self.remove(&tuple(), h),
        }
    }

    /// The entry of connection `h` (whose 4-tuple `tuple` gives), to change in place: found
    /// at `at` as [`remove_at`](Self::remove_at) finds it, else by the 4-tuple; `None`
    /// when the table maps the 4-tuple to something else, or to nothing.
    #[inline]
    pub(super) fn get_mut_at(
        &mut self,
        at: Bucket,
        h: SocketHandle,
        tuple: impl FnOnce() -> Tuple,
    ) -> Option<&mut SocketHandle> {
        let here = self
            .table
            .get_bucket(at.0 as usize)
            .is_some_and(|e| e.1 == h);
        if here {
            return self.table.get_bucket_mut(at.0 as usize).map(|e| &mut e.1);
        }
        let tuple = tuple();
        let hash = self.hash(&tuple);
        self.get_mut(hash, &tuple).filter(|d| **d == h)
    }

    /// What the entry in bucket `at` maps to, if the bucket holds one (for tests).
    #[cfg(test)]
    pub(super) fn in_bucket(&self, at: Bucket) -> Option<SocketHandle> {
        self.table.get_bucket(at.0 as usize).map(|e| e.1)
    }

    /// How many 4-tuples it maps.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }
}

impl Stack {
    /// A TCP segment (`payload`) from `src` to `dst`; `bytes` is the whole IP packet, for
    /// traces; `ecn` its IP header's ECN field (RFC 3168 §5), as the IP layer read it.
    pub(super) fn handle_tcp(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
        bytes: &[u8],
        ecn: crate::tcp::ecn::Codepoint,
    ) {
        let packet = match wtcp::Packet::new_checked(payload) {
            Ok(p) => p,
            Err(_) => {
                self.counters.in_errs += 1;
                return self.trace_drop(now, "TCP header malformed", bytes);
            }
        };
        let seg = match wtcp::Repr::parse(&packet, src, dst, !self.rx_checksummed) {
            Ok(s) => s,
            Err(e) => {
                self.counters.in_errs += 1;
                if e == wire::Error::BadChecksum {
                    self.counters.tcp_in_csum_errors += 1;
                    return self.trace_drop(now, "TCP checksum", bytes);
                }
                return self.trace_drop(now, "TCP options malformed", bytes);
            }
        };
        let remote = SocketAddr::new(src, seg.src_port);
        let local = SocketAddr::new(dst, seg.dst_port);
        let tuple = (dst, seg.dst_port, src, seg.src_port);

        let mut reuse_isn = None;
        // Hashed once: a half-open entry's insertion or replacement below takes this hash.
        let hash = self.conns.hash(&tuple);
        let mut found = self.conns.get(hash, &tuple);
        if let Some(h) = found.filter(|h| h.index & super::syn_queue::SQ_BIT != 0) {
            // A half-open connection in the SYN queue (`syn_queue.rs`).
            return self.segment_to_entry(now, h, hash, &tuple, local, remote, &seg);
        }
        if let Some(h) = found.filter(|h| h.index & super::time_wait::TW_BIT != 0) {
            // A compact TIME-WAIT entry (`time_wait.rs`): answered there, or a SYN that
            // reuses the 4-tuple goes on to the listener, as below.
            let may_reopen = seg.flags.syn() && self.may_reopen(dst, seg.dst_port);
            reuse_isn = self.time_wait_segment(now, h, &tuple, &seg, may_reopen);
            if reuse_isn.is_none() {
                return;
            }
            found = None;
        }
        if let Some(h) = found {
            let mut reuse = false;
            let mut overflow = false;
            let mut learned = None;
            // Whether a SYN may reopen the 4-tuple is asked only of a SYN that TIME-WAIT
            // would accept (not of every SYN-ACK).
            let reopening = if seg.flags.syn() {
                self.conn_slot(h)
                    .and_then(|c| c.conn.time_wait_accepts_syn(&seg))
                    .map(|isn| (isn, self.may_reopen(dst, seg.dst_port)))
            } else {
                None
            };
            if let Some((c, ctr)) = self.slot_and_counters(h) {
                if let Some((isn, may_reopen)) = reopening {
                    if may_reopen {
                        // RFC 9293 §3.6.1 / Linux: a new incarnation replaces TIME-WAIT, its
                        // sequence space above the old one's.
                        reuse = true;
                        reuse_isn = Some(isn);
                    } else {
                        c.conn.ack_reopening_syn(ctr);
                    }
                } else if c.conn.state() == State::SynReceived
                    && c.parent.is_some()
                    && seg.flags.ack()
                    && !seg.flags.rst()
                {
                    overflow = true; // decided below, needs the listener
                } else {
                    c.conn.handle_segment_ecn(now, &seg, ecn, ctr);
                    learned = c.conn.take_fast_open_learned();
                }
            }
            if let Some(l) = learned {
                self.fast_open_learned(src, l);
            }
            if overflow {
                self.final_ack(now, h, &seg);
                return;
            }
            if reuse {
                self.remove_conn(h);
                // Fall through to the listener below.
            } else {
                self.touched(h, now);
                return;
            }
        }

        if self.forwards(dst) {
            // Not ours but forwarded: the application decides (forward.rs).
            let upper = super::udp::offset_in(bytes, payload);
            return self.forward_tcp(now, local, remote, &seg, bytes, upper);
        }

        if let Some(lh) = self.listener_for(dst, seg.dst_port) {
            if seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst() {
                // RFC 3168 §6.1.1: a SYN must be Not-ECT. An ECN-setup SYN that is ECN-capable
                // itself gets no ECN, as Linux's `tcp_ecn_create_request` decides.
                let mut seg = seg;
                if ecn != crate::tcp::ecn::Codepoint::NotEct {
                    seg.flags =
                        wtcp::Flags(seg.flags.0 & !(wtcp::Flags::ECE.0 | wtcp::Flags::CWR.0));
                }
                return self.syn_to_listener(now, lh, hash, local, remote, &seg, reuse_isn);
            }
            // §3.10.7.2: RST ignored; ACK answered with a RST; anything else dropped.
            if seg.flags.rst() {
                return;
            }
            if seg.flags.ack() && !self.cookie_ack(now, lh, hash, local, remote, &seg) {
                self.reply_rst(local, remote, seg.ack, None);
            }
            return;
        }
        self.no_socket(now, local, remote, &seg, bytes);
    }

    /// §3.10.7.1: a segment for no connection and no listener. Out of line (cold): not on
    /// the path of a segment that something takes.
    #[cold]
    #[inline(never)]
    fn no_socket(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &wtcp::Repr<'_>,
        bytes: &[u8],
    ) {
        self.counters.in_segs += 1;
        if let Some((seq, ack)) = crate::tcp::connection::reset_for_closed(seg) {
            self.counters.no_port_rsts += 1;
            self.trace_drop(now, "no connection or listener: RST", bytes);
            self.reply_rst(local, remote, seq, ack);
        }
    }

    /// The listener that takes a SYN to `dst`:`port`, if any.
    fn listener_for(&mut self, dst: IpAddr, port: u16) -> Option<SocketHandle> {
        let any = match dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        // The wildcard is looked up only when no listener has the address itself.
        match self
            .listeners
            .get(&(dst, port))
            .or_else(|| self.listeners.get(&(any, port)))
        {
            Some(&h) => Some(h),
            // RFC 3493 §3.7: an IPv6 listener on the unspecified address takes IPv4 too.
            None if dst.is_ipv4() => self.dual_stack_listener(port),
            None => None,
        }
    }

    /// May a SYN that would reopen a TIME-WAIT 4-tuple do so? Only when something takes it
    /// (a listener, or the forwarder); otherwise Linux answers it from TIME-WAIT with the old
    /// connection's ACK (`tcp_v4_rcv`: TCP_TW_SYN without a listener falls through to
    /// TCP_TW_ACK) and TIME-WAIT goes on. (A forwarded flow's SYN goes on to the application
    /// as a pending flow, which picks its own ISN, not one above the old SND.NXT.)
    /// Out of line: asked of a SYN for a 4-tuple in use only.
    #[inline(never)]
    fn may_reopen(&mut self, dst: IpAddr, port: u16) -> bool {
        self.listener_for(dst, port).is_some() || self.forwards(dst)
    }

    /// The final ACK of a handshake for a listener's child: Linux drops it when the accept
    /// queue is full (ListenOverflows); the client's data or the SYN-ACK retransmission
    /// completes the handshake later.
    fn final_ack(&mut self, now: Instant, h: SocketHandle, seg: &wtcp::Repr<'_>) {
        let parent = self.conn_slot(h).and_then(|c| c.parent);
        let full = parent
            .and_then(|p| self.listener_slot(p))
            .is_some_and(|l| l.accept_queue.len() >= l.backlog);
        if full {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            self.trace_drop_note(now, "accept queue full: final ACK dropped");
            return;
        }
        if let Some((c, ctr)) = self.slot_and_counters(h) {
            c.conn.handle_segment(now, seg, ctr);
        }
        self.touched(h, now);
    }

    /// Queues the RST that §3.10.7.1/§3.10.7.2 prescribe for a segment with no connection.
    pub(super) fn reply_rst(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        seq: crate::tcp::SeqNum,
        ack: Option<crate::tcp::SeqNum>,
    ) {
        let flags = if ack.is_some() {
            wtcp::Flags::RST | wtcp::Flags::ACK
        } else {
            wtcp::Flags::RST
        };
        let seg = wtcp::Repr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq,
            ack: ack.unwrap_or_default(),
            flags,
            window: 0,
            urgent: 0,
            options: wtcp::Options::default(),
            payload: &[],
        };
        let sent = self.queue_tcp(local, remote, &seg);
        if sent {
            self.counters.out_rsts += 1;
            self.counters.out_segs += 1;
        }
    }

    /// Queues a segment the stack sends outside any connection (a RST, an ACK for a
    /// half-open connection), written in place.
    pub(super) fn queue_tcp(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &wtcp::Repr<'_>,
    ) -> bool {
        let flow_label = self.flow_label(local.ip(), local.port(), remote.ip(), remote.port(), 0);
        self.queue_tcp_with(local, remote, seg, flow_label, None)
    }

    /// [`queue_tcp`](Self::queue_tcp) with the flow label and TTL given (a TIME-WAIT
    /// entry's, as its connection had them).
    pub(super) fn queue_tcp_with(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &wtcp::Repr<'_>,
        flow_label: u32,
        ttl: Option<u8>,
    ) -> bool {
        let (src, dst) = (local.ip(), remote.ip());
        let ip = IpHeader {
            src,
            dst,
            protocol: IpProtocol::Tcp,
            dont_frag: true,
            flow_label,
            ttl,
            ecn: Codepoint::NotEct,
        };
        self.queue_ip(ip, seg.buffer_len(), |payload| {
            seg.emit(&mut wtcp::Packet::new_unchecked(payload), src, dst)
                .is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    fn tuple(port: u16) -> Tuple {
        let (a, b) = (Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1));
        (IpAddr::V4(a), 80, IpAddr::V4(b), port)
    }

    fn handle(index: u32) -> SocketHandle {
        SocketHandle {
            index,
            generation: 1,
        }
    }

    /// A hash taken once serves the lookup and the insertion or replacement after it, as
    /// the map it replaces did with its own hashing: one entry per 4-tuple, the last handle
    /// wins, and a removal takes the 4-tuple out only if it still maps to the given handle.
    #[test]
    fn one_hash_serves_lookup_insert_and_replace() {
        let mut d = Demux::new(KeyedHasher(3, 5));
        let (t, u) = (tuple(40000), tuple(40001));
        let h = d.hash(&t);
        assert_eq!(h, KeyedHasher(3, 5).hash_one(t));
        assert_eq!(d.get(h, &t), None);
        assert!(!d.contains(&t));
        d.insert(h, t, handle(1 | super::super::syn_queue::SQ_BIT));
        assert!(d.contains(&t) && !d.contains(&tuple(40002)));
        d.insert(d.hash(&u), u, handle(7));
        // The final ACK's connection takes the half-open entry's place under the same hash.
        d.insert(h, t, handle(2));
        assert_eq!(d.len(), 2);
        assert_eq!(d.get(h, &t), Some(handle(2)));
        *d.get_mut(h, &t).unwrap() = handle(3);
        assert_eq!(d.get(h, &t), Some(handle(3)));
        // A stale handle does not take out the 4-tuple's current one.
        d.remove(&t, handle(2));
        assert_eq!(d.get(h, &t), Some(handle(3)));
        d.remove(&t, handle(3));
        assert_eq!(d.get(h, &t), None);
        assert_eq!(d.get(d.hash(&u), &u), Some(handle(7)));
        assert_eq!(d.len(), 1);
    }

    /// `replace` maps the 4-tuple to the new handle in the entry's own bucket when the
    /// 4-tuple is there, and inserts it when it is not: the same mapping as `insert` makes,
    /// and the returned bucket holds the entry (found there, not by the 4-tuple).
    #[test]
    fn replace_takes_the_entry_in_place_or_inserts() {
        let mut d = Demux::new(KeyedHasher(3, 5));
        let mut e = Demux::new(KeyedHasher(3, 5));
        // Half-open entries, which `replace` takes the place of.
        let half_open = |p: u16| handle(u32::from(p) | super::super::syn_queue::SQ_BIT);
        for p in 0..200u16 {
            let t = tuple(40000 + p);
            let h = d.hash(&t);
            let (a, b) = (d.insert(h, t, half_open(p)), e.insert(h, t, half_open(p)));
            assert_eq!(a, b);
        }
        for p in (0..400u16).step_by(3) {
            let t = tuple(40000 + p);
            let h = d.hash(&t);
            let new = handle(1000 + u32::from(p));
            let at = d.replace(h, t, new);
            e.insert(h, t, new);
            assert_eq!(d.get(h, &t), Some(new));
            let found = d.get_mut_at(at, new, || panic!("{p}: not in its bucket"));
            assert_eq!(found.copied(), Some(new));
        }
        assert_eq!(d.len(), e.len());
        for p in 0..400u16 {
            let t = tuple(40000 + p);
            assert_eq!(d.get(d.hash(&t), &t), e.get(e.hash(&t), &t));
        }
    }

    /// `replace` over a connection's mapping (not a half-open entry) is a bug it reports in
    /// debug builds; so is one over a TIME-WAIT entry.
    #[test]
    #[cfg(debug_assertions)]
    fn replace_refuses_to_overwrite_a_connection_or_time_wait_entry() {
        for old in [handle(4), handle(4 | super::super::time_wait::TW_BIT)] {
            let caught = std::panic::catch_unwind(|| {
                let mut d = Demux::new(KeyedHasher(3, 5));
                let t = tuple(40000);
                d.insert(d.hash(&t), t, old);
                d.replace(d.hash(&t), t, handle(9));
            });
            assert!(caught.is_err(), "{old:?} replaced silently");
        }
    }

    /// A kept bucket finds its connection's entry without the 4-tuple; a bucket that holds
    /// another entry (the table grew since), or none, falls back to the 4-tuple's lookup
    /// and leaves the other entry alone; and a handle the 4-tuple no longer maps to takes
    /// nothing out, as `remove` does.
    #[test]
    fn a_kept_bucket_is_a_hint_checked_by_the_handle() {
        let mut d = Demux::new(KeyedHasher(7, 9));
        let (t, u) = (tuple(40000), tuple(40001));
        let bt = d.insert(d.hash(&t), t, handle(1));
        let bu = d.insert(d.hash(&u), u, handle(2));
        assert_eq!(
            (d.in_bucket(bt), d.in_bucket(bu)),
            (Some(handle(1)), Some(handle(2)))
        );
        // The right bucket: the 4-tuple is not asked for.
        d.remove_at(bt, handle(1), || unreachable!("hashed again"));
        assert_eq!((d.len(), d.get(d.hash(&t), &t)), (1, None));
        // A bucket holding another connection's entry: that one stays, the 4-tuple's goes.
        let bt = d.insert(d.hash(&t), t, handle(3));
        d.remove_at(bu, handle(3), || t);
        assert_eq!(d.get(d.hash(&u), &u), Some(handle(2)));
        assert_eq!((d.len(), d.get(d.hash(&t), &t)), (1, None));
        // An empty bucket, one out of range, and a handle the 4-tuple no longer maps to.
        d.insert(d.hash(&t), t, handle(4));
        d.remove_at(Bucket(u32::MAX), handle(4), || t);
        assert_eq!(d.get(d.hash(&t), &t), None);
        d.insert(d.hash(&t), t, handle(5));
        d.remove_at(bt, handle(4), || t);
        assert_eq!(d.get(d.hash(&t), &t), Some(handle(5)));
        // `get_mut_at` finds the same way, and answers `None` for a stale handle.
        *d.get_mut_at(Bucket(u32::MAX), handle(5), || t).unwrap() = handle(6);
        assert_eq!(d.get(d.hash(&t), &t), Some(handle(6)));
        assert!(d.get_mut_at(bu, handle(5), || t).is_none());
        *d.get_mut_at(bu, handle(2), || unreachable!("hashed again"))
            .unwrap() = handle(7);
        assert_eq!(d.get(d.hash(&u), &u), Some(handle(7)));
        // Growth moves entries: a kept bucket may then hold another one or none.
        let mut kept: Vec<(Tuple, Bucket)> = Vec::new();
        for i in 0..64u16 {
            let v = tuple(41000 + i);
            kept.push((v, d.insert(d.hash(&v), v, handle(100 + u32::from(i)))));
        }
        let stale = kept
            .iter()
            .enumerate()
            .filter(|(i, (_, b))| d.in_bucket(*b) != Some(handle(100 + *i as u32)))
            .count();
        assert!(stale > 0, "the table's growth moved no entry");
        for (i, (v, b)) in kept.iter().enumerate() {
            d.remove_at(*b, handle(100 + i as u32), || *v);
            assert_eq!(d.len(), 2 + 63 - i, "entry {i} taken out alone");
        }
        assert_eq!(d.get(d.hash(&t), &t), Some(handle(6)));
        assert_eq!(d.get(d.hash(&u), &u), Some(handle(7)));
    }

    /// 200 4-tuples grow the table from empty several times: each growth rehashes the
    /// entries with `insert`'s closure, which must give the hash `get` is called with.
    /// Removing every other one by its handle leaves the rest found.
    #[test]
    fn growth_rehashes_under_the_lookup_hash() {
        let mut d = Demux::new(KeyedHasher(11, 13));
        let tuples: Vec<Tuple> = (0..200u16)
            .map(|i| {
                if i % 2 == 0 {
                    tuple(40000 + i)
                } else {
                    let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + i);
                    (IpAddr::V6(a), 443, IpAddr::V6(Ipv6Addr::LOCALHOST), 50000)
                }
            })
            .collect();
        for (i, t) in tuples.iter().enumerate() {
            d.insert(d.hash(t), *t, handle(i as u32));
        }
        assert_eq!(d.len(), 200);
        for (i, t) in tuples.iter().enumerate() {
            assert_eq!(d.get(d.hash(t), t), Some(handle(i as u32)), "{t:?}");
        }
        for (i, t) in tuples.iter().enumerate().step_by(2) {
            d.remove(t, handle(i as u32));
        }
        assert_eq!(d.len(), 100);
        for (i, t) in tuples.iter().enumerate() {
            let want = (i % 2 == 1).then_some(handle(i as u32));
            assert_eq!(d.get(d.hash(t), t), want, "{t:?}");
            assert_eq!(d.contains(t), want.is_some());
        }
    }
}
