//! Spare parts: the heap memory of finished connections (ring storage, scoreboards, congestion
//! controllers, the sender's transmit state) kept by
//! their stack for its next connections, so that a short connection does not cost a trip
//! into the allocator and back for each part. Linux keeps freed sockets' memory in slab
//! caches for the same reason (`kmem_cache_free`, then `kmem_cache_alloc` of the next
//! socket from the per-CPU array).
//!
//! Bounded: at most `cap` parts of each kind, and only small ones (a ring below
//! [`ZEROED_BY_THE_OS`], which larger rings get fresh from the OS as untouched pages; a
//! scoreboard whose deque had room for at most [`MAX_BOARD_ROOM`] entries), so what the spares
//! hold is a few hundred KiB at most whatever the traffic was. Cleared on reuse: a ring's
//! storage is zeroed before its new connection can write or read it
//! ([`RingBuffer::adopt_storage`]), a board is emptied ([`Scoreboard::adopt`]), a controller
//! starts over ([`CongestionControl::start_over`]), a transmit state is emptied when it is kept
//! (its push-mark queue and any carried recovery state freed) and written anew
//! ([`Transmit::new`]) at the start of a connection's first write through the stack (given
//! back if that write queues nothing).

use super::Connection;
use super::sender::{Sender, Transmit};
use crate::tcp::buffer::{RingBuffer, ZEROED_BY_THE_OS};
use crate::tcp::congestion::{Algorithm, CongestionControl, Controller};
use crate::tcp::push::PushMarks;
use crate::tcp::scoreboard::{Scoreboard, SpareBoard};

/// The largest scoreboard deque (in entries of room) kept as a spare.
pub const MAX_BOARD_ROOM: usize = 16;

/// Parts of finished connections, for the next ones (see the module documentation).
#[derive(Default)]
pub(crate) struct Spares {
    cap: usize,
    rings: Vec<Box<[u8]>>,
    boards: Vec<SpareBoard>,
    controllers: Vec<Controller>,
    /// Boxes, not values: a connection holds its transmit state in a box, and the point is
    /// to hand the box itself over without allocating.
    #[allow(clippy::vec_box)]
    transmits: Vec<Box<Transmit>>,
}

impl Spares {
    /// Keeps at most `cap` parts of each kind (0: none, every part goes back to the allocator).
    pub(crate) fn new(cap: usize) -> Spares {
        Spares {
            cap,
            rings: Vec::new(),
            boards: Vec::new(),
            controllers: Vec::new(),
            transmits: Vec::new(),
        }
    }

    /// Ring storages, scoreboards and congestion controllers held now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize, usize) {
        (self.rings.len(), self.boards.len(), self.controllers.len())
    }

    /// Transmit states held now.
    #[cfg(test)]
    pub(crate) fn transmits_held(&self) -> usize {
        self.transmits.len()
    }

    /// Heap memory the transmit states held now keep beyond their boxes (push-mark queue
    /// room, carried recovery states): none, since [`Connection::give_transmit`] empties them.
    #[cfg(test)]
    pub(crate) fn transmit_heap(&self) -> usize {
        self.transmits
            .iter()
            .map(|t| t.push_marks.heap_room() + usize::from(t.carried.is_some()))
            .sum()
    }

    /// Gives `snd` its transmit state now, from a finished connection's box written anew,
    /// if it has none and a box is kept: for the caller that is about to ask for it
    /// ([`Sender::transmit`] would allocate the same `Transmit::new(iss)`), which gives it
    /// back if it did not ask after all.
    pub(super) fn lend_transmit(&mut self, snd: &mut Sender) {
        if snd.tx.is_none()
            && let Some(mut b) = self.transmits.pop()
        {
            *b = Transmit::new(snd.iss);
            snd.tx = Some(b);
        }
    }

    fn keep_ring(&mut self, storage: Option<Box<[u8]>>) {
        if let Some(s) = storage {
            if s.len() < ZEROED_BY_THE_OS && self.rings.len() < self.cap {
                self.rings.push(s);
            }
        }
    }

    fn lend_ring(&mut self, ring: &mut RingBuffer) {
        if let Some(s) = self.rings.pop() {
            if let Err(s) = ring.adopt_storage(s) {
                self.rings.push(s);
            }
        }
    }

    fn keep_board(&mut self, board: Option<SpareBoard>) {
        if let Some(b) = board {
            if b.room() <= MAX_BOARD_ROOM && self.boards.len() < self.cap {
                self.boards.push(b);
            }
        }
    }

    /// A congestion controller running `alg` as [`Controller::new`] makes it: a finished
    /// connection's box started over when the last one kept runs `alg`, else a new one.
    pub(super) fn controller(
        &mut self,
        alg: Algorithm,
        mss: u32,
        initial_window_segments: u32,
    ) -> Controller {
        match self.controllers.pop() {
            Some(mut cc) if cc.algorithm() == alg => {
                cc.start_over(mss, initial_window_segments);
                cc
            }
            _ => Controller::new(alg, mss, initial_window_segments),
        }
    }

    /// Keeps the controller of a connection that is being dropped.
    pub(crate) fn keep_controller(&mut self, cc: Controller) {
        if !matches!(cc, Controller::Given) && self.controllers.len() < self.cap {
            self.controllers.push(cc);
        }
    }

    fn lend_board(&mut self, sb: &mut Scoreboard) {
        if let Some(b) = self.boards.pop() {
            if let Err(b) = sb.adopt(b) {
                self.boards.push(b);
            }
        }
    }
}

impl Connection {
    /// Gives the parts this connection no longer needs to `spares` (or back to the allocator
    /// when the spares are full): an empty send ring, an empty scoreboard, a drained receive
    /// ring. For a connection in TIME-WAIT (everything sent is acknowledged) and one being
    /// dropped; parts that still hold something stay.
    /// Returns whether nothing is left to give (a ring still holding bytes, unread received
    /// data say, keeps its storage for a later call).
    pub(crate) fn give_parts(&mut self, spares: &mut Spares) -> bool {
        spares.keep_ring(self.snd.buf.take_storage());
        spares.keep_board(self.snd.sb.take_if_empty());
        spares.keep_ring(self.rcv.buf.take_storage());
        !self.snd.buf.has_storage() && !self.snd.sb.has_board() && !self.rcv.buf.has_storage()
    }

    /// Takes parts for a new connection from `spares`: storage for its rings and its
    /// scoreboard's memory, each cleared. Changes nothing a caller can see but where the
    /// memory comes from.
    pub(crate) fn take_parts(&mut self, spares: &mut Spares) {
        spares.lend_ring(&mut self.snd.buf);
        spares.lend_ring(&mut self.rcv.buf);
        spares.lend_board(&mut self.snd.sb);
    }

    /// Gives the congestion controller of a connection about to be dropped to `spares`,
    /// taken out in place: the connection is left with [`Controller::Given`], which allocates
    /// nothing, so that its slot is freed where it is, not moved out whole to take the
    /// controller.
    pub(crate) fn give_controller(&mut self, spares: &mut Spares) {
        spares.keep_controller(core::mem::replace(&mut self.cc, Controller::Given));
    }

    /// Gives the transmit state of a connection about to be dropped (or of a first write that
    /// queued nothing) to `spares`, emptied; it is written anew again when lent
    /// ([`Spares::lend_transmit`]), with the next connection's ISS.
    pub(crate) fn give_transmit(&mut self, spares: &mut Spares) {
        if let Some(mut b) = self.snd.tx.take()
            && spares.transmits.len() < spares.cap
        {
            // Kept empty: the push marks' queue (as long as the most marks the connection
            // ever had outstanding, which its writes decide) and a carried recovery state go
            // back to the allocator now, so the spares stay small whatever the traffic was.
            // Only those two: the rest is written whole when the box is lent
            // (`lend_transmit`), not twice.
            b.push_marks = PushMarks::new(self.snd.iss + 1u32);
            b.carried = None;
            spares.transmits.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a connection holds once its controller is given is not a controller: given
    /// again (a second `give_controller`), it is not kept, so that no later connection starts
    /// with a window that never moves.
    #[test]
    fn a_given_controller_is_not_kept() {
        let mut spares = Spares::new(4);
        spares.keep_controller(Controller::Given);
        assert_eq!(spares.held().2, 0);
        spares.keep_controller(Controller::new(Algorithm::NewReno, 1460, 10));
        assert_eq!(spares.held().2, 1);
        let cc = spares.controller(Algorithm::NewReno, 536, 4);
        assert_eq!((cc.algorithm(), cc.cwnd()), (Algorithm::NewReno, 4 * 536));
    }
}
