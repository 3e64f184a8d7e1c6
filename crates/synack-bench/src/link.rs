//! The in-memory link both userspace stacks run over: one FIFO of IP packets per direction.
//!
//! Every packet lives in a buffer of MTU bytes taken from a pool and given back after the
//! receiver has processed it, so a steady transfer allocates nothing. The pool and both queues
//! sit behind one `RefCell`, because smoltcp's device tokens need shared access; synack goes
//! through the very same calls, so both stacks pay the same (small) link cost. There is no delay,
//! loss or rate model: what is measured is the stacks' own work.

use std::cell::RefCell;
use std::collections::VecDeque;

/// Client to server.
pub const TO_SERVER: usize = 0;
/// Server to client.
pub const TO_CLIENT: usize = 1;

struct Inner {
    queues: [VecDeque<(Vec<u8>, usize)>; 2],
    pool: Vec<Vec<u8>>,
    packets: [u64; 2],
}

/// Two packet queues and a buffer pool.
pub struct Link {
    mtu: usize,
    inner: RefCell<Inner>,
}

impl Link {
    pub fn new(mtu: usize) -> Link {
        Link {
            mtu,
            inner: RefCell::new(Inner {
                queues: [VecDeque::new(), VecDeque::new()],
                pool: Vec::new(),
                packets: [0; 2],
            }),
        }
    }

    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// A buffer of `mtu` bytes to build a packet in.
    #[inline]
    pub fn take(&self) -> Vec<u8> {
        let mtu = self.mtu;
        self.inner
            .borrow_mut()
            .pool
            .pop()
            .unwrap_or_else(|| vec![0; mtu])
    }

    /// Sends the first `len` bytes of `buf` in direction `dir`.
    #[inline]
    pub fn push(&self, dir: usize, buf: Vec<u8>, len: usize) {
        let mut i = self.inner.borrow_mut();
        i.packets[dir] += 1;
        i.queues[dir].push_back((buf, len));
    }

    /// The next packet travelling in direction `dir`.
    #[inline]
    pub fn pop(&self, dir: usize) -> Option<(Vec<u8>, usize)> {
        self.inner.borrow_mut().queues[dir].pop_front()
    }

    /// Gives a buffer back to the pool.
    #[inline]
    pub fn recycle(&self, buf: Vec<u8>) {
        self.inner.borrow_mut().pool.push(buf);
    }

    /// Packets sent in direction `dir` so far.
    pub fn packets(&self, dir: usize) -> u64 {
        self.inner.borrow().packets[dir]
    }
}

/// Microseconds on a monotonic clock since the first call: the `now` both stacks are given.
/// One clock read per loop round, the same for both stacks.
pub fn now_micros() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_per_direction_and_buffers_are_reused() {
        let link = Link::new(1500);
        let mut a = link.take();
        assert_eq!(a.len(), 1500);
        a[0] = 7;
        link.push(TO_SERVER, a, 10);
        let mut b = link.take();
        b[0] = 8;
        link.push(TO_SERVER, b, 20);
        assert!(link.pop(TO_CLIENT).is_none());
        let (p, n) = link.pop(TO_SERVER).unwrap();
        assert_eq!((p[0], n), (7, 10));
        let ptr = p.as_ptr();
        link.recycle(p);
        let again = link.take();
        assert_eq!(again.as_ptr(), ptr, "the pool hands the buffer out again");
        let (q, n) = link.pop(TO_SERVER).unwrap();
        assert_eq!((q[0], n), (8, 20));
        assert!(link.pop(TO_SERVER).is_none());
        assert_eq!(link.packets(TO_SERVER), 2);
    }
}
