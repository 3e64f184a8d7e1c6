//! The receive window we offer, as Linux 6.18 sizes it from its receive buffer.
//!
//! RFC 9293 leaves the window's size to the receiver and asks only that it not shrink
//! (§3.8.6) and that it open in steps worth sending (receiver SWS avoidance, §3.8.6.2.2); RFC
//! 7323 §2.2 adds the window scale, chosen once in the SYN. Everything else here is Linux's
//! choice, kept because Linux is the reference for every behaviour question:
//!
//! * The buffer (`sk_rcvbuf`) holds packets, not bytes: Linux charges each segment its
//!   allocation (skb truesize) and offers `space * scaling_ratio / 256` of it as window
//!   (`tcp_win_from_space`). The ratio starts at 50 % (`TCP_DEFAULT_SCALING_RATIO`) and is
//!   measured on each new receive-MSS segment as payload / truesize (`tcp_measure_rcv_mss`).
//! * The initial window (`tcp_select_initial_window`) is the buffer's window rounded down to
//!   whole MSS; the window scale is the smallest that covers what the buffer may grow to
//!   (tcp_rmem[2]), or the buffer itself when the application fixed its size with SO_RCVBUF
//!   (`SOCK_RCVBUF_LOCK`): a locked 8 KiB buffer gets no scaling at all.
//! * The window opens as data arrives, not at once (`rcv_ssthresh`, `tcp_grow_window`), up to
//!   the clamp (`window_clamp`: the buffer's window less one MSS, `tcp_init_buffer_space`).
//! * Each window sent is what is free, at most `rcv_ssthresh`, in whole peer-MSS units without
//!   scaling or in scale units with it, zero once less than an MSS is free
//!   (`__tcp_select_window`), never less than the window already offered
//!   (`tcp_select_window`).
//! * An unlocked buffer grows with what the application reads per round trip (dynamic right
//!   sizing, `tcp_rcv_space_adjust`): twice that, up to tcp_rmem[2]
//!   ([`Config::recv_buffer_max`]).
//!
//! **The truesize model.** A userspace stack has no skb truesize; what it holds is bytes.
//! synack assumes what Linux's allocations give a segment received from a 1500-byte link: its
//! packet (payload and up to 64 bytes of headers, 64-byte aligned) plus the 320 bytes of
//! `skb_shared_info` in a power-of-two buffer, plus the 256-byte `sk_buff` ([`truesize`]:
//! 2304 bytes for any segment of 1000 to 1460 bytes, so a ratio of 111/256 for 1000-byte
//! segments and 160/256 for 1448-byte ones). Bytes held are charged at the measured ratio
//! (`held * 256 / ratio`), so the free window is the buffer's window less the bytes held.

use super::config::Config;

/// Linux's `TCP_DEFAULT_SCALING_RATIO`: a byte of buffer is half a byte of window until a
/// segment is measured.
pub const DEFAULT_SCALING_RATIO: u32 = 128;

/// The largest window a scaled field can express (RFC 7323 §2.3: shift 14).
const MAX_WINDOW: u32 = (u16::MAX as u32) << 14;

/// Linux's `SOCK_MIN_RCVBUF` (2 KiB plus an sk_buff): the least a receive buffer can be.
pub const MIN_RCVBUF: u32 = 2304;

/// The window `space` bytes of buffer offer at `ratio` (Linux `tcp_win_from_space`).
pub fn win_from_space(ratio: u32, space: u32) -> u32 {
    ((u64::from(space) * u64::from(ratio)) >> 8) as u32
}

/// The buffer a window of `win` bytes needs at `ratio` (Linux `tcp_space_from_win`).
pub fn space_from_win(ratio: u32, win: u32) -> u32 {
    ((u64::from(win) << 8) / u64::from(ratio.max(1))).min(u64::from(u32::MAX)) as u32
}

/// What Linux would charge a received segment of `len` payload bytes (see the module's truesize
/// model).
pub fn truesize(len: u32) -> u32 {
    let packet = (len.saturating_add(64)).div_ceil(64).saturating_mul(64);
    packet
        .saturating_add(320)
        .checked_next_power_of_two()
        .unwrap_or(u32::MAX)
        .saturating_add(256)
}

/// The window a buffer of `rcvbuf` bytes offers before any segment is measured (Linux
/// `tcp_full_space` at the default ratio).
fn initial_space(rcvbuf: u32) -> u32 {
    win_from_space(DEFAULT_SCALING_RATIO, rcvbuf)
}

/// The window scale shift `cfg` offers (RFC 7323 §2.2, §2.3: at most 14). Linux
/// `tcp_select_initial_window`: the smallest shift that lets the window reach what the buffer
/// may grow to (tcp_rmem[2]), bounded by the window clamp: for a locked buffer, its own window.
pub fn window_shift(cfg: &Config) -> u8 {
    let mut space = (cfg.recv_buffer_max.max(cfg.recv_buffer)).min(u32::MAX as usize) as u32;
    if cfg.recv_buffer_locked {
        space = initial_space(cfg.recv_buffer.min(u32::MAX as usize) as u32);
    }
    (space.max(1).ilog2().saturating_sub(15)).min(14) as u8
}

/// The initial receive window (Linux `tcp_select_initial_window`'s `rcv_wnd`): the buffer's
/// window at the default ratio, rounded down to whole `mss` (our MSS, less the timestamp
/// option on a passive open that negotiated it). A SYN or SYN-ACK carries at most 65535 of it
/// (unscaled, RFC 7323 §2.2); the rest is offered by the first scaled window.
pub fn initial_window(cfg: &Config, mss: u32) -> u32 {
    RecvWindow::new(cfg).initial_window(mss)
}

/// [`RecvWindow::initial_window`] of a buffer of `rcvbuf` bytes, which is all it reads: for a
/// caller that has no other part of the window's state at hand (a connection before its first
/// data would build its clamp and `rcv_ssthresh` only to leave them unread).
#[inline]
pub fn initial_window_of(rcvbuf: u32, mss: u32) -> u32 {
    let space = initial_space(rcvbuf).min(MAX_WINDOW);
    if space > mss && mss > 0 {
        space - space % mss
    } else {
        space
    }
}

/// A connection's receive-window state (Linux's `sk_rcvbuf`, `scaling_ratio`,
/// `window_clamp`, `rcv_ssthresh` and `rcv_wnd`), as a value: the connection keeps the parts
/// where they cost least (the buffer's size is its ring's limit, `rcv_wnd` is the right edge
/// less RCV.NXT when it was sent, the ratio and clamp wait for the first data) and assembles
/// this to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvWindow {
    /// The receive buffer in bytes of memory (`sk_rcvbuf`).
    pub rcvbuf: u32,
    /// The most the window may reach (`window_clamp`).
    pub clamp: u32,
    /// How far the window has opened (`rcv_ssthresh`).
    pub ssthresh: u32,
    /// The window last offered, counted from the RCV.NXT it was sent with (`rcv_wnd`;
    /// TCP_INFO's tcpi_rcv_wnd).
    pub wnd: u32,
    /// Bytes of window per 256 bytes of buffer (`scaling_ratio`).
    pub ratio: u8,
    /// The application fixed the buffer's size (SO_RCVBUF, `SOCK_RCVBUF_LOCK`): no autotuning.
    pub locked: bool,
}

impl RecvWindow {
    /// The state of a connection that has sent nothing yet.
    pub fn new(cfg: &Config) -> RecvWindow {
        RecvWindow {
            rcvbuf: (cfg.recv_buffer.min(u32::MAX as usize) as u32).max(MIN_RCVBUF),
            clamp: 0,
            ssthresh: 0,
            wnd: 0,
            ratio: DEFAULT_SCALING_RATIO as u8,
            locked: cfg.recv_buffer_locked,
        }
    }

    /// The clamp of a connection that has measured no segment yet, from the buffer as it is
    /// now: the buffer's window if locked (`tcp_connect_init`, `tcp_openreq_init_rwin`),
    /// within what the window field can carry (`tcp_select_initial_window`), then
    /// [`established`](Self::established)'s reserve.
    pub fn unmeasured_clamp(&self, advmss: u32, shift: u8) -> u32 {
        let mut w = RecvWindow {
            ratio: DEFAULT_SCALING_RATIO as u8,
            ..*self
        };
        w.clamp = if w.locked { w.full_space() } else { MAX_WINDOW };
        w.clamp = w.clamp.min((u16::MAX as u32) << shift);
        w.established(advmss, shift);
        w.clamp
    }

    fn ratio(&self) -> u32 {
        u32::from(self.ratio).max(1)
    }

    /// The window the whole buffer offers now (`tcp_full_space`).
    pub fn full_space(&self) -> u32 {
        win_from_space(self.ratio(), self.rcvbuf)
    }

    /// The window of our SYN or SYN-ACK, counted from RCV.NXT (Linux
    /// `tcp_select_initial_window`): the buffer's window at the default ratio, rounded down to
    /// whole `mss` (see [`initial_window`]).
    pub fn initial_window(&self, mss: u32) -> u32 {
        initial_window_of(self.rcvbuf, mss)
    }

    /// Entering ESTABLISHED (Linux `tcp_init_buffer_space` with tcp_app_win 31): the clamp
    /// becomes the buffer's window, less one MSS kept in reserve, and the window opened so far
    /// stays within it. `advmss` is the payload we announced room for; `shift` our window
    /// scale, 0 if the peer did not take it (then nothing above 65535 can be offered).
    fn established(&mut self, advmss: u32, shift: u8) {
        self.clamp = self.clamp.min((u16::MAX as u32) << shift);
        let maxwin = self.full_space();
        if self.clamp >= maxwin {
            self.clamp = maxwin;
        }
        if self.clamp > 2 * advmss && self.clamp + advmss > maxwin {
            self.clamp = (2 * advmss).max(maxwin.saturating_sub(advmss));
        }
        self.ssthresh = self.ssthresh.min(self.clamp);
    }

    /// A data segment of `len` bytes arrived in order and the receive MSS estimate was
    /// `rcv_mss` before it (Linux `tcp_measure_rcv_mss`): a segment at least that large but
    /// of a new size measures the ratio again, and the clamp follows the buffer's window at
    /// the new ratio (`tcp_set_window_clamp`).
    pub fn measure(&mut self, len: u32, rcv_mss: u32) {
        if len <= rcv_mss {
            return;
        }
        let ratio = ((u64::from(len) << 8) / u64::from(truesize(len))).clamp(1, 255) as u8;
        if ratio == self.ratio {
            return;
        }
        self.ratio = ratio;
        let clamp = self.full_space().max(MIN_RCVBUF / 2);
        if clamp < self.clamp {
            self.ssthresh = self.ssthresh.min(clamp);
        } else if clamp > self.clamp {
            self.ssthresh = self.ssthresh.max(self.wnd.min(clamp));
        }
        self.clamp = clamp;
        self.ssthresh = self.ssthresh.min(self.clamp);
    }

    /// Opens the window after a data segment of `len` bytes was queued, `held` bytes now in
    /// the buffer (Linux `tcp_grow_window`): by two MSS or twice the segment, whichever is
    /// more, as long as segments like it fit the buffer, up to the clamp and what is free.
    /// `max_buffer` is tcp_rmem[2]; `advmss` and `rcv_mss` as Linux's.
    pub fn grow(&mut self, len: u32, held: u32, advmss: u32, rcv_mss: u32, max_buffer: u32) {
        let room = self.clamp.min(self.free(held)) as i64 - i64::from(self.ssthresh);
        if room <= 0 {
            return;
        }
        let charged = win_from_space(self.ratio(), truesize(len));
        let incr = if charged <= len {
            2 * advmss
        } else {
            // Only while the window is small next to what the largest buffer offers, and
            // the more so the larger the segment's overhead (`__tcp_grow_window`).
            let mut charged = charged >> 1;
            let mut window = win_from_space(self.ratio(), max_buffer) >> 1;
            let mut incr = 0;
            while self.ssthresh <= window {
                if charged <= len {
                    incr = 2 * rcv_mss;
                    break;
                }
                charged >>= 1;
                window >>= 1;
            }
            incr
        };
        if incr > 0 {
            let incr = incr.max(2 * len);
            self.ssthresh += (room as u32).min(incr);
        }
    }

    /// The window the buffer offers with `held` bytes in it (Linux `tcp_space`).
    pub fn free(&self, held: u32) -> u32 {
        self.full_space().saturating_sub(held)
    }

    /// The window to offer now (Linux `__tcp_select_window`, with tcp_shrink_window off),
    /// counted from RCV.NXT, before the never-shrink rule: `held` bytes in the buffer, `mss`
    /// the peer's segment size as we see it (`icsk_ack.rcv_mss`), `shift` our window scale.
    pub fn select(&self, held: u32, mss: u32, shift: u8) -> u32 {
        let allowed = self.full_space();
        let full = self.clamp.min(allowed);
        let mut mss = mss;
        if mss > full {
            mss = full;
            if mss == 0 {
                return 0;
            }
        }
        let mut free = self.free(held);
        if free < full >> 1 {
            // RFC 9293 §3.8.6.2.2: do not offer less than an MSS (or a sixteenth of the
            // buffer's window); a scaled window is rounded down to what the field carries.
            free &= !((1u32 << shift) - 1);
            if free < allowed >> 4 || free < mss {
                return 0;
            }
        }
        free = free.min(self.ssthresh);
        if shift > 0 {
            // Rounded up so that a window below one scale unit is not sent as zero.
            let unit = 1u32 << shift;
            return free.div_ceil(unit).saturating_mul(unit);
        }
        let window = self.wnd;
        if mss == 0 {
            return free;
        }
        // Whole MSS units, keeping the window offered while it is within an MSS of what is
        // free (RFC 9293 §3.8.6.2.2's "increments of at least one MSS").
        if window + mss <= free || window > free {
            free - free % mss
        } else if mss == full && free > window + (full >> 1) {
            free
        } else {
            window
        }
    }

    /// The window to send now, counted from RCV.NXT, when `current` is what remains of the
    /// window offered before (Linux `tcp_select_window`): [`select`](Self::select), or the
    /// window already offered if that is more (RFC 9293 §3.8.6: the right edge does not move
    /// left), rounded up to the scale unit. Records it as the window offered.
    pub fn offer(&mut self, held: u32, mss: u32, shift: u8, current: u32) -> u32 {
        let mut new = self.select(held, mss, shift);
        if new < current {
            let unit = 1u32 << shift;
            new = current.div_ceil(unit).saturating_mul(unit);
        }
        self.wnd = new;
        new
    }

    /// Dynamic right sizing (Linux `tcp_rcvbuf_grow`): the application read `copied` bytes
    /// in the last round trip, more than ever before; an unlocked buffer grows so that the
    /// window can hold twice that, plus the out-of-order span `ooo_span`, up to `max_buffer`
    /// (tcp_rmem[2]). Returns the new buffer size if it grew.
    pub fn autotune(&mut self, copied: u32, ooo_span: u32, max_buffer: u32) -> Option<u32> {
        if self.locked {
            return None;
        }
        let rcvwin = copied.saturating_mul(2).saturating_add(ooo_span);
        let rcvbuf = space_from_win(self.ratio(), rcvwin).min(max_buffer);
        if rcvbuf <= self.rcvbuf {
            return None;
        }
        self.rcvbuf = rcvbuf;
        self.clamp = self.full_space();
        Some(rcvbuf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(rmem: (usize, usize)) -> Config {
        Config {
            recv_buffer: rmem.0,
            recv_buffer_max: rmem.1,
            ..Config::linux()
        }
    }

    /// The state after the handshake, as a connection assembles it before any data.
    fn opened(cfg: &Config, mss: u32, advmss: u32, shift: u8) -> RecvWindow {
        let mut w = RecvWindow::new(cfg);
        w.wnd = w.initial_window(mss);
        w.clamp = w.unmeasured_clamp(advmss, shift);
        w.ssthresh = w.wnd.min(w.clamp);
        w
    }

    #[test]
    fn truesize_model_matches_linux_skbs_from_a_1500_byte_link() {
        assert_eq!(truesize(1000), 2304);
        assert_eq!(truesize(1460), 2304);
        assert_eq!(truesize(1448), 2304);
        assert_eq!(truesize(100), 768);
        // 1000 bytes at 2304: Linux's scaling_ratio 111.
        assert_eq!((1000u32 << 8) / truesize(1000), 111);
    }

    #[test]
    fn initial_window_is_half_the_buffer_in_whole_mss() {
        // tcp_rmem[1] 540000: 270000 rounded down to 1460 (packetdrill's info scripts).
        let cfg = linux((540000, 15728640));
        assert_eq!(initial_window(&cfg, 1460), 268640);
        assert_eq!(initial_window(&cfg, 1448), 269328, "with timestamps");
        assert_eq!(window_shift(&cfg), 8);
        // Linux's own defaults: 65536 rounded to 1460 is the well-known 64240; shift 7.
        let cfg = linux((131072, 6291456));
        assert_eq!(initial_window(&cfg, 1460), 64240);
        assert_eq!(window_shift(&cfg), 7);
    }

    #[test]
    fn a_locked_small_buffer_gets_no_scaling() {
        let cfg = Config {
            recv_buffer_locked: true,
            ..linux((8192, 15728640))
        };
        assert_eq!(window_shift(&cfg), 0);
        assert_eq!(initial_window(&cfg, 1460), 2920);
        let w = RecvWindow::new(&cfg);
        assert_eq!(w.initial_window(1460), 2920);
        assert_eq!(w.unmeasured_clamp(1460, 0), 2920);
    }

    /// rwnd-fill-to-zero-window.pkt as Linux runs it: 1000-byte segments into a locked
    /// 8192-byte buffer offer 2000, 1000, then 0.
    #[test]
    fn filling_a_small_buffer_steps_down_by_whole_segments() {
        let cfg = Config {
            recv_buffer_locked: true,
            ..linux((8192, 15728640))
        };
        let mut w = opened(&cfg, 1460, 1460, 0);
        let mut rcv_mss = 536;
        let mut current = w.wnd;
        let mut offered = vec![];
        for held in [1000, 2000, 3000] {
            w.measure(1000, rcv_mss);
            rcv_mss = 1000;
            w.grow(1000, held, 1460, rcv_mss, 15728640);
            current -= 1000;
            current = w.offer(held, rcv_mss, 0, current);
            offered.push(current);
        }
        assert_eq!(offered, [2000, 1000, 0]);
        // Reading 1000 bytes frees a segment's worth; reading all offers 2000 (whole MSS
        // within rcv_ssthresh 2920).
        assert_eq!(w.select(2000, rcv_mss, 0), 1000);
        w.wnd = 1000;
        assert_eq!(w.select(0, rcv_mss, 0), 2000);
    }

    #[test]
    fn the_window_opens_by_two_mss_per_segment_up_to_the_clamp() {
        let cfg = linux((131072, 6291456));
        let mut w = opened(&cfg, 1448, 1448, 7);
        assert_eq!(w.ssthresh, 65536 - 1448);
        w.measure(1448, 536);
        // 1448 / 2304: ratio 160, the clamp is 5/8 of the buffer.
        assert_eq!((w.ratio, w.clamp), (160, 81920));
        let before = w.ssthresh;
        w.grow(1448, 1448, 1448, 1448, 6291456);
        assert_eq!(w.ssthresh, before + 2 * 1448);
        for _ in 0..20 {
            w.grow(1448, 1448, 1448, 1448, 6291456);
        }
        assert_eq!(w.ssthresh, 81920 - 1448, "at most what is free");
    }

    #[test]
    fn autotuning_grows_an_unlocked_buffer_only() {
        let cfg = linux((131072, 6291456));
        let mut w = opened(&cfg, 1448, 1448, 7);
        // 200000 bytes read in a round trip at ratio 128: a buffer for a 400000-byte window.
        assert_eq!(w.autotune(200000, 0, 6291456), Some(800000));
        assert_eq!(w.clamp, 400000);
        assert_eq!(w.autotune(100000, 0, 6291456), None);
        assert_eq!(w.autotune(10_000_000, 0, 6291456), Some(6291456));
        w.locked = true;
        assert_eq!(w.autotune(10_000_000, 0, 6291456), None);
    }
}
