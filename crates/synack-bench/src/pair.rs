//! Two stacks of one kind joined by a [`Link`], with one connection established between them:
//! the common shape that `bulk`, `rtt` and the instruction counts drive, so the loop around
//! either stack is literally the same code.

use crate::link::Link;

/// Index of the client side.
pub const CLIENT: usize = 0;
/// Index of the server side.
pub const SERVER: usize = 1;

pub trait Pair: Sized {
    /// The stack's name in tables (synack's says which [`Variant`](crate::synack_pair::Variant)
    /// runs).
    fn name(&self) -> String;

    /// Two stacks (client 198.18.0.1, server 198.18.0.2) on a fresh link of `mtu` bytes, send
    /// and receive buffers of `buffer` bytes on both sides, one connection established.
    fn connected(mtu: usize, buffer: usize) -> Self;

    fn link(&self) -> &Link;

    /// The application writes on `side` at `now_us` (synack's calls take the time; smoltcp's do
    /// not); returns the bytes the stack accepted.
    fn send(&mut self, side: usize, now_us: u64, data: &[u8]) -> usize;

    /// The application reads on `side`; returns the bytes read (0: nothing ready).
    fn recv(&mut self, side: usize, now_us: u64, out: &mut [u8]) -> usize;

    /// `side` runs its due timers and writes every packet it has to send into the link.
    fn egress(&mut self, side: usize, now_us: u64);

    /// `side` processes every packet queued towards it.
    fn ingress(&mut self, side: usize, now_us: u64);

    /// Packets from `from` to the other side: `from`'s egress, then the other's ingress.
    fn carry(&mut self, from: usize, now_us: u64) {
        self.egress(from, now_us);
        self.ingress(1 - from, now_us);
    }
}

/// The direction packets from `side` travel in.
pub fn dir_from(side: usize) -> usize {
    if side == CLIENT {
        crate::link::TO_SERVER
    } else {
        crate::link::TO_CLIENT
    }
}
