//! The user calls of RFC 9293 §3.10.1–§3.10.5 (OPEN, SEND, RECEIVE, CLOSE, ABORT, with
//! shutdown) and the per-connection socket options.

use crate::tcp::congestion::CongestionControl;
use crate::tcp::rwnd::MIN_RCVBUF;
use core::net::SocketAddr;
use core::num::NonZeroU32;

use super::spares::Spares;
use super::timers::Timer;
use super::{Connection, Error, Event, PendingRst, State};
use crate::tcp::config::Keepalive;
use crate::tcp::congestion;
use crate::tcp::counters::Counters;
use crate::tcp::push::{self, PushMarks};
use crate::tcp::seq::SeqNum;
use crate::time::{Duration, Instant};

/// Shutdown directions (like `std::net::Shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Read,
    Write,
    Both,
}

impl Connection {
    // ----- OPEN (RFC 9293 §3.10.1) -----

    /// Active OPEN: send a SYN with initial sequence number `iss` (from
    /// the stack's ISN generator, RFC 9293 3.4.1) and enter SYN-SENT.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        iss: SeqNum,
        ctr: &mut Counters,
    ) -> Result<(), Error> {
        if self.state != State::Closed {
            return Err(Error::InvalidInput);
        }
        self.set_remote(remote);
        self.init_send(iss);
        self.rcv.last_recv = now;
        // The SYN's time limit counts from now (Linux sets `retrans_stamp` in tcp_connect).
        self.snd.rtx_since = Some(now).into();
        ctr.active_opens += 1;
        // RFC 9293 §3.10.1: "A SYN segment of the form <SEQ=ISS><CTL=SYN> is sent. Set SND.UNA
        // to ISS, SND.NXT to ISS+1, enter SYN-SENT state". The SYN goes out on poll_transmit.
        self.set_state(State::SynSent, "connect");
        Ok(())
    }

    /// Passive OPEN: wait for a SYN on the local address.
    pub fn listen(&mut self) -> Result<(), Error> {
        if self.state != State::Closed {
            return Err(Error::InvalidInput);
        }
        self.passive = true;
        self.set_state(State::Listen, "listen");
        Ok(())
    }

    pub(super) fn init_send(&mut self, iss: SeqNum) {
        self.snd.iss = iss;
        self.snd.una = iss;
        self.snd.nxt = iss;
        self.snd.max = iss;
        if let Some(tx) = &mut self.snd.tx {
            // A passive connection back in LISTEN taking a new SYN.
            tx.sml = iss;
            tx.push_marks = PushMarks::new(iss + 1u32);
        }
        self.rcv.shift = if self.cfg.window_scaling {
            self.cfg.our_window_shift()
        } else {
            0
        };
    }

    // ----- SEND (§3.10.2) -----

    /// Queues data; returns how much fit (0 when the send buffer is full: try again when
    /// [`send_capacity`](Self::send_capacity) grows). Data queued in SYN-SENT or
    /// SYN-RECEIVED goes out once the connection is established (§3.10.2).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.send_with(data, false, false)
    }

    fn enqueue(&mut self, data: &[u8]) -> Result<usize, Error> {
        if self.error.is_some() {
            // The error is reported once (`take_error`); then the socket is simply closed for
            // writing.
            return Err(self.take_error().unwrap_or(Error::BrokenPipe));
        }
        match self.state {
            // Shut down for writing, even once the close has completed: EPIPE, as Linux
            // reports it (`tcp_sendmsg`: SEND_SHUTDOWN).
            _ if self.snd.fin_queued => Err(Error::BrokenPipe),
            State::Closed | State::Listen => Err(Error::NotConnected),
            s if s.can_send() => Ok(self.snd.buf.enqueue(data)),
            _ => Err(Error::BrokenPipe),
        }
    }

    /// [`send`](Self::send) with send() flags: `more` (MSG_MORE) holds a partial segment
    /// back for data to come and sets no PSH; `eor` (MSG_EOR) ends a record, so no segment
    /// carries data from both sides of its end.
    ///
    /// PSH goes where Linux puts it (see the `push` module): at the end of each
    /// write unless `more`, and every half window of a long write. A send that stops short
    /// because the buffer is full pushes what it queued; the next send continues that write.
    pub fn send_with(&mut self, data: &[u8], more: bool, eor: bool) -> Result<usize, Error> {
        self.write(data, more, eor, false)
    }

    /// [`send_with`](Self::send_with) for a connection of a stack: a first write takes its
    /// transmit state from the stack's `spares` when they hold one (no allocation).
    #[inline]
    pub(crate) fn send_spared(
        &mut self,
        data: &[u8],
        more: bool,
        eor: bool,
        spares: &mut Spares,
    ) -> Result<usize, Error> {
        if self.snd.tx.is_some() {
            return self.write(data, more, eor, false);
        }
        self.first_write(data, more, eor, spares)
    }

    /// A write while the connection has no transmit state yet: one from `spares` if they
    /// hold one, given back when the write queues nothing (it returns before asking for it,
    /// so the connection has none afterwards, as without the spares).
    #[inline(never)]
    fn first_write(
        &mut self,
        data: &[u8],
        more: bool,
        eor: bool,
        spares: &mut Spares,
    ) -> Result<usize, Error> {
        spares.lend_transmit(&mut self.snd);
        let r = self.write(data, more, eor, false);
        if !matches!(r, Ok(n) if n > 0) {
            self.give_transmit(spares);
        }
        r
    }

    // Inlined into its callers (the stack's `send_spared` and `first_write` above all): a
    // call and its frame fewer per write (bench README, E16).
    #[inline(always)]
    fn write(&mut self, data: &[u8], more: bool, eor: bool, oob: bool) -> Result<usize, Error> {
        let seq = self.snd.buf_seq() + self.snd.buf.len();
        let n = self.enqueue(data)?;
        self.snd.more = more;
        if n == 0 {
            return Ok(0);
        }
        // Linux `tcp_rate_check_app_limited`, as sendmsg begins: was the sender waiting for
        // this data?
        let unsent_below_mss = self.snd.unsent_len().saturating_sub(n) < self.snd.mss as usize;
        let (in_flight, cwnd) = (self.pipe_segs(), self.cwnd_segs());
        let (lost_unresent, delivered) = (self.snd.sb.lost_unresent(), self.snd.delivered);
        self.snd.transmit().rate.check_app_limited(
            unsent_below_mss,
            in_flight,
            cwnd,
            lost_unresent,
            delivered,
        );
        let mss = self.snd.mss;
        let header_len = 20 + if self.opts.ts().is_some() { 12 } else { 0 };
        let wnd_end = self.snd.una + self.snd.wnd;
        let cwnd_end = self.snd.nxt + cwnd.saturating_sub(in_flight).saturating_mul(mss);
        // MSG_OOB data goes in buffers of one segment (Linux `tcp_send_mss`); other data in
        // buffers of up to one TSO burst. That burst comes from the pacing rate, worked out
        // only when the write depends on it: not for a write into an empty queue that fits in
        // the least burst (`min_tso_segs` segments), which is one buffer whatever its size.
        let one_buffer = !oob && seq <= self.snd.max && n <= mss as usize;
        let size_goal = if oob {
            mss
        } else if one_buffer {
            // Nothing unsent before it and at most one segment (every request/response
            // write): one new buffer that the write fills, whatever the goal of at least
            // `n` (`PushMarks::on_write`'s one-buffer case): neither the goal nor the burst
            // is worked out. The general goal is at least one MSS (`min_tso_segs` is at
            // least one), so at least `n`.
            debug_assert!(
                n as u32
                    <= push::size_goal(mss, self.snd.max_wnd, header_len)
                        .min(self.min_tso_segs().saturating_mul(mss)),
                "a one-buffer write above the size goal"
            );
            n as u32
        } else {
            let goal = push::size_goal(mss, self.snd.max_wnd, header_len);
            let floor = goal.min(self.min_tso_segs().saturating_mul(mss));
            let (sent_end, copied) = (self.snd.max, n as u32);
            if self
                .snd
                .transmit()
                .push_marks
                .goal_matters(seq, sent_end, copied, floor)
            {
                goal.min(self.tso_segs().saturating_mul(mss))
            } else {
                floor
            }
        };
        let w = push::Write {
            seq,
            sendable_end: wnd_end.min(cwnd_end),
            copied: n as u32,
            requested: data.len().min(u32::MAX as usize) as u32,
            sent_end: self.snd.max,
            size_goal,
            max_window: self.snd.max_wnd,
            more,
            eor,
        };
        let marks = &mut self.snd.transmit().push_marks;
        if one_buffer && push::push_shortcut_on() {
            marks.on_new_buffer_write(w);
        } else {
            marks.on_write(w);
        }
        Ok(n)
    }

    /// Queues data as urgent (MSG_OOB): segments sent while SND.UNA is before the end of it
    /// carry URG and the urgent pointer (RFC 9293 §3.8.5), which points one past the last
    /// urgent byte as every implementation does (RFC 6093 §2). The data itself travels inline.
    pub fn send_urgent(&mut self, data: &[u8]) -> Result<usize, Error> {
        let n = self.write(data, false, false, true)?;
        if n > 0 {
            self.snd.up = Some(self.snd.buf_seq() + self.snd.buf.len());
        }
        Ok(n)
    }

    /// Free space in the send buffer.
    pub fn send_capacity(&self) -> usize {
        if self.state.can_send() && !self.snd.fin_queued {
            self.snd.buf.free()
        } else {
            0
        }
    }

    /// Bytes queued and not yet acknowledged.
    pub fn send_queue_len(&self) -> usize {
        self.snd.buf.len()
    }

    // ----- RECEIVE (§3.10.3) -----

    /// Sets the receive buffer to `bytes` of memory, as SO_RCVBUF does once Linux has doubled
    /// the value (socket(7); at least 2304 bytes). The size is locked from then on: no
    /// autotuning. On a connection that is open, the window already offered stays (RFC 9293
    /// §3.8.6) and the window shrinks to the new buffer's share as data arrives; before the
    /// SYN it also picks the window scale (set it on the [`Config`](crate::tcp::Config) of a
    /// listener or before connecting to have the SYN or SYN-ACK offer a window from it).
    pub fn set_recv_buffer(&mut self, bytes: usize) {
        let bytes = bytes.clamp(MIN_RCVBUF as usize, u32::MAX as usize);
        let cfg = self.config_mut();
        cfg.recv_buffer = bytes;
        cfg.recv_buffer_locked = true;
        // Out-of-order bytes already held stay held.
        let held = self.rcv.buf.len() + self.rcv.buf.uncommitted();
        self.rcv.buf.set_limit(bytes.max(held));
    }

    /// The receive buffer's size in bytes of memory (SO_RCVBUF's value).
    pub fn recv_buffer(&self) -> usize {
        self.rcv.buf.limit()
    }

    /// Dynamic right sizing (Linux `tcp_rcv_space_adjust`), after the application read: once
    /// a round trip has passed since the last measurement, if it read more than ever in one,
    /// an unlocked buffer grows to let the window hold twice that (up to
    /// `Config::recv_buffer_max`). synack has no receiver-side RTT estimate (Linux's
    /// `rcv_rtt_est`): it uses the smoothed RTT, and the time the last segment arrived as
    /// the clock.
    fn adjust_receive_buffer(&mut self) {
        // In the estimator's nanoseconds: no `Duration` made and compared on every read.
        let Some(rtt) = self.rtt.srtt_nanos() else {
            return;
        };
        let now = self.rcv.last_recv;
        let read_seq = self.rcv.nxt - self.rcv.buf.len() as u32;
        let inq = self.rcv.buf.len() as u32;
        // Most reads end here: less than a round trip since the last measurement.
        let Some(d) = self.rcv.data.as_mut() else {
            return;
        };
        if now.micros_since(d.drs_time).saturating_mul(1000) < rtt {
            return;
        }
        let copied = (read_seq - d.drs_seq).saturating_sub(inq);
        let grew = copied > d.drs_space;
        if grew {
            d.drs_space = copied;
        }
        d.drs_seq = read_seq;
        d.drs_time = now;
        if !grew {
            return;
        }
        let ooo_span = match &self.rcv.ooo {
            Some(o) => o.assembler.iter().map(|(_, e)| e).max().unwrap_or(0),
            None => 0,
        };
        let max = self.cfg.recv_buffer_max.min(u32::MAX as usize) as u32;
        let mut w = self.rwnd();
        if w.autotune(copied, ooo_span, max).is_some() {
            self.rcv.store_rwnd(&w);
        }
    }

    /// Reads received data. `Ok(0)` means end of stream (the peer sent FIN and everything
    /// before it has been read), or an empty `out`. Data received before a reset or before
    /// TIME-WAIT expired stays readable until drained.
    pub fn recv(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let n = self.rcv.buf.dequeue(out);
        if n > 0 {
            self.adjust_receive_buffer();
            // A window update once reading at least doubled a window that had fallen to half
            // the clamp or less (Linux's tcp_cleanup_rbuf). This is within RFC 9293
            // §3.8.6.2.2 (the window it offers is in steps of an MSS) and spares an ACK per
            // read while the window is wide open.
            let current = self.rcv.window();
            // A Fast Open child before the handshake completes keeps the window of its
            // SYN-ACK (Linux grows it only with rcv_ssthresh, as data arrives).
            if self.state.can_receive()
                && !self.fast_open_pending()
                && 2 * u64::from(current) <= u64::from(self.rwnd_clamp())
            {
                let new = self.window_now();
                if new > 0 && u64::from(new) >= 2 * u64::from(current) {
                    self.rcv.ack_now = true;
                }
            }
            // An ACK the connection is delaying goes now if more than a segment's worth is
            // unacknowledged (Linux's tcp_cleanup_rbuf: "once-per-two-segments ACK was not
            // sent"), as after data and a FIN on a Fast Open SYN-ACK.
            if self.timers.is_armed(Timer::DelayedAck)
                && self.rcv.nxt - self.rcv.last_ack_sent > self.rcv.seg_est
            {
                self.rcv.ack_now = true;
            }
            return Ok(n);
        }
        if out.is_empty() || self.rcv.fin_done || self.rcv.shut {
            return Ok(0);
        }
        if self.error.is_some() {
            // Reported once (`take_error`); then reads see the end of the stream.
            return self.take_error().map_or(Ok(0), Err);
        }
        match self.state {
            State::Closed | State::Listen => Err(Error::NotConnected),
            // Nothing yet: the caller waits for readability.
            _ => Ok(0),
        }
    }

    /// Copies received data into `out` without consuming it (MSG_PEEK): the next
    /// [`recv`](Self::recv) returns the same bytes. Returns how many were copied.
    pub fn peek(&self, out: &mut [u8]) -> usize {
        self.rcv.buf.peek(0, out)
    }

    /// Bytes ready for [`recv`](Self::recv).
    pub fn recv_queue_len(&self) -> usize {
        self.rcv.buf.len()
    }

    /// True when a read would not block: data is queued, the stream ended, or an error is set.
    pub fn is_readable(&self) -> bool {
        !self.rcv.buf.is_empty() || self.rcv.fin_done || self.rcv.shut || self.error.is_some()
    }

    /// True once the peer's FIN has been received in order (after the data before it).
    pub fn peer_closed(&self) -> bool {
        self.rcv.fin_done
    }

    /// The urgent pointer, if the peer sent urgent data not yet passed by the reader: the
    /// sequence number one past the last urgent byte (RFC 6093 §2), as an offset from the
    /// next byte [`recv`](Self::recv) returns.
    pub fn urgent_offset(&self) -> Option<usize> {
        let up = self.rcv.up?;
        let read_seq = self.rcv.nxt - self.rcv.buf.len() as u32;
        (up > read_seq).then(|| (up - read_seq) as usize)
    }

    // ----- CLOSE, SHUTDOWN, ABORT (§3.10.4, §3.10.5) -----

    /// Half or full shutdown. `Write` queues a FIN after the data (§3.10.4 CLOSE semantics);
    /// `Read` discards further incoming data.
    pub fn shutdown(&mut self, how: Shutdown) -> Result<(), Error> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            // Data already queued, and data that still arrives while the connection is
            // ESTABLISHED, stays readable; reads return it, then end of file (Linux's
            // RCV_SHUTDOWN). Once we have sent our FIN, new data resets the connection
            // (`process_text_and_fin`).
            self.rcv.shut = true;
        }
        if matches!(self.state, State::Closed | State::TimeWait) {
            // Linux's inet_shutdown: a socket whose connection is over (reset, closed, or
            // handed to a TIME-WAIT mini-socket) is not connected, whatever `how` is.
            return Err(Error::NotConnected);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            if self.state == State::SynReceived {
                // After a simultaneous open (the only way an application holds a connection
                // in SYN-RECEIVED): Linux's tcp_shutdown() leaves SYN-RECV alone and only
                // marks the socket shut for sending, so the FIN waits for the ACK that
                // completes the open, which then moves to FIN-WAIT-1 (close() sends it at
                // once, as RFC 9293 §3.10.4 says).
                self.snd.fin_queued = true;
                self.snd.transmit();
                return Ok(());
            }
            self.close_send()?;
        }
        Ok(())
    }

    fn close_send(&mut self) -> Result<(), Error> {
        match self.state {
            State::Closed => return Err(Error::NotConnected),
            State::Listen | State::SynSent => {
                // §3.10.4: "Delete the TCB, enter CLOSED state, and return."
                self.set_state(State::Closed, "close before established");
                self.clear_timers();
                return Ok(());
            }
            _ => {}
        }
        if self.snd.fin_queued {
            return Ok(());
        }
        self.snd.fin_queued = true;
        self.snd.transmit();
        // Linux moves to FIN-WAIT-1 / LAST-ACK at the call; the FIN itself goes out after the
        // queued data (§3.10.4: "queue this until all preceding SENDs have been segmentized").
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::FinWait1, "close"),
            State::CloseWait => self.set_state(State::LastAck, "close"),
            _ => {}
        }
        Ok(())
    }

    /// The application closes its socket. Like Linux (RFC 2525 §2.17), unread received data
    /// makes this an abort: a RST goes out and nothing more is delivered. Otherwise the
    /// connection closes gracefully in the background and FIN-WAIT-2 is bounded by
    /// `fin_wait2_timeout`.
    pub fn close(&mut self, now: Instant, ctr: &mut Counters) {
        self.orphaned = true;
        if !self.rcv.buf.is_empty()
            && self.state.is_synchronized()
            && !matches!(self.state, State::TimeWait)
        {
            ctr.abort_on_data += 1;
            self.reset_and_close(now, "close with unread data", ctr);
            return;
        }
        self.rcv.shut = true;
        let _ = self.close_send();
        if self.state == State::FinWait2 {
            self.timers
                .arm(Timer::Close, now + self.cfg.fin_wait2_timeout);
        }
    }

    /// ABORT (§3.10.5): send a RST in the synchronized states (and SYN-RECEIVED) and drop
    /// everything.
    pub fn abort(&mut self, now: Instant, ctr: &mut Counters) {
        ctr.abort_on_close += 1;
        self.reset_and_close(now, "abort", ctr);
    }

    /// Disconnect (connect() with AF_UNSPEC, Linux's `tcp_disconnect`): the connection is
    /// reset as [`abort`](Self::abort) resets it — a RST in SYN-RECEIVED and the
    /// synchronized states before our FIN is acknowledged — and everything queued is
    /// dropped; unlike close() it is no abort on close. The socket may then connect afresh
    /// (the stack makes a new connection for it).
    pub fn disconnect(&mut self, now: Instant, ctr: &mut Counters) {
        self.reset_and_close(now, "disconnect", ctr);
    }

    fn reset_and_close(&mut self, _now: Instant, reason: &'static str, ctr: &mut Counters) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            // §3.10.5: "<SEQ=SND.NXT><CTL=RST>", SND.NXT being the highest sent and kept
            // within the peer's window (Linux `tcp_send_active_reset`).
            self.pending_rst = Some(PendingRst {
                seq: self.acceptable_seq(),
                ack: Some(self.rcv.nxt),
                active: true,
            });
            self.push_event(Event::ResetSent { reason });
            if matches!(self.state, State::Established | State::CloseWait) {
                ctr.estab_resets += 1;
            }
        }
        let n = self.snd.buf.len();
        self.snd.buf.consume(n);
        self.snd.sb.clear();
        let n = self.rcv.buf.len();
        self.rcv.buf.consume(n);
        self.orphaned = true;
        self.set_state(State::Closed, reason);
        self.clear_timers();
    }

    // ----- Socket options -----

    /// TCP_NODELAY: send small segments at once instead of waiting for outstanding data to be
    /// acknowledged (Nagle, RFC 896 / RFC 1122 §4.2.3.4).
    pub fn set_nodelay(&mut self, on: bool) {
        self.opts.nodelay = on;
        // Setting it pushes what is queued, even past a cork (as Linux does).
        self.snd.push_once |= on;
    }

    pub fn nodelay(&self) -> bool {
        self.opts.nodelay
    }

    /// TCP_CORK: hold partial segments until uncorked (or the data fills a segment).
    /// Uncorking sends what waits as Nagle allows; with TCP_NODELAY on it pushes the tail at
    /// once (Linux `__tcp_sock_set_cork` sets TCP_NAGLE_PUSH only then).
    pub fn set_cork(&mut self, on: bool) {
        self.snd.push_once |= self.opts.cork && !on && self.opts.nodelay;
        self.opts.cork = on;
    }

    /// SO_KEEPALIVE with TCP_KEEPIDLE/KEEPINTVL/KEEPCNT; `None` turns keepalive off. As
    /// Linux: turning it on starts the idle time now (`tcp_set_keepalive`); a new idle time on
    /// a connection with keepalive on counts from the last segment received, so a probe is
    /// due at once if the connection has been idle that long already
    /// (`tcp_sock_set_keepidle_locked`); a new interval or count applies when the timer next
    /// fires.
    pub fn set_keepalive(&mut self, now: Instant, ka: Option<Keepalive>) {
        let liveness = self.opts.liveness();
        let was = std::mem::replace(&mut liveness.keepalive, ka);
        match (was, ka) {
            (_, None) => self.timers.stop(Timer::Keepalive),
            (None, Some(k)) => {
                liveness.probes_sent = 0;
                self.timers.arm(Timer::Keepalive, now + k.idle);
            }
            (Some(old), Some(k)) if old.idle != k.idle => {
                let at = (self.rcv.last_recv + k.idle).max(now);
                self.timers.arm(Timer::Keepalive, at);
            }
            _ => {}
        }
    }

    pub fn keepalive(&self) -> Option<Keepalive> {
        self.opts.keepalive()
    }

    /// TCP_USER_TIMEOUT (RFC 5482): abort when transmitted data stays unacknowledged this long
    /// (measured from its transmission, or from the last ACK that made progress).
    pub fn set_user_timeout(&mut self, t: Option<Duration>) {
        self.opts.liveness().user_timeout = t;
    }

    /// RFC 5927 §4.1: may an ICMP error quoting our segment with sequence number `seq` act on
    /// this connection? Only if `seq` is data we sent and is not yet acknowledged,
    /// SND.UNA <= seq <= SND.NXT (Linux `tcp_v4_err` / `tcp_v6_err`, both ends included; the
    /// highest SND.NXT, as Linux never pulls it back for a retransmission), so that a blind
    /// attacker must guess the window; and never in TIME-WAIT or CLOSED, where Linux ignores
    /// them.
    pub fn icmp_quote_acceptable(&self, seq: SeqNum) -> bool {
        !matches!(self.state, State::TimeWait | State::Closed)
            && self.snd.una <= seq
            && seq <= self.snd.max.max(self.snd.nxt)
    }

    /// Sets the send MSS (Linux `tcp_sync_mss`): the peer's MSS, ours and the path's, less
    /// our options (RFC 6691), then bounded by the peer's largest window as
    /// `tcp_bound_to_half_wnd` does: at most half of it once it exceeds 536 bytes, the whole
    /// of it below (sender silly-window avoidance, RFC 1122 §4.2.3.4), never under 68 bytes
    /// of header and payload. Called when the handshake settles the options, when the
    /// largest window grows and when the path MTU drops.
    pub(super) fn sync_mss(&mut self) {
        let opt_overhead = if self.opts.ts().is_some() { 12 } else { 0 };
        let full = u32::from(self.opts.peer_mss)
            .min(self.rcv.mss)
            .min(self.opts.path_mss.map_or(u32::MAX, NonZeroU32::get))
            .saturating_sub(opt_overhead)
            .max(64);
        let max_wnd = self.snd.max_wnd;
        let cutoff = if max_wnd > 536 { max_wnd / 2 } else { max_wnd };
        let mss = if cutoff > 0 && full > cutoff {
            cutoff.max(68 - 20 - opt_overhead)
        } else {
            full
        };
        if mss != self.snd.mss {
            self.snd.mss = mss;
            self.cc.set_mss(mss);
        }
    }

    /// The peer offered `window`: a larger window than any before is the new largest, which
    /// may lift the bound on the send MSS (Linux `tcp_ack_update_window`).
    pub(super) fn raise_max_window(&mut self, window: u32) {
        if window > self.snd.max_wnd {
            self.snd.max_wnd = window;
            self.sync_mss();
        }
    }

    /// Path MTU discovery (RFC 1191 §6.3): an ICMP "fragmentation needed" for this
    /// connection lowers the MSS to fit `mtu` (IP and TCP headers and our options taken off).
    /// The stack keeps `mtu` at or above the IP version's floor (552 for IPv4 as Linux's
    /// route.min_pmtu, 1280 for IPv6); the MSS never falls below Linux's TCP_MIN_SND_MSS, 48.
    /// Returns the new MSS if it changed.
    pub fn on_path_mtu(&mut self, mtu: u16, ip_header: u16) -> Option<u32> {
        let path = (mtu as u32)
            .saturating_sub(ip_header as u32 + 20)
            .max(48 + 12);
        let path = self.opts.path_mss.map_or(path, |p| p.get().min(path));
        let lowered = self.opts.path_mss.is_none_or(|p| path < p.get());
        self.opts.path_mss = NonZeroU32::new(path);
        // The MTU the path MSS stands for (the floor above may keep it above `mtu`).
        let mtu = u16::try_from(path + 20 + u32::from(ip_header)).unwrap_or(u16::MAX);
        self.opts.pmtu = self.opts.pmtu.min(mtu);
        if matches!(self.state, State::Closed | State::SynSent) {
            // The MSS our SYN (or its retransmission) announces is capped by the path's (Linux
            // `tcp_advertise_mss`: the route's advmss metric, MTU − 40, lowers tp->advmss).
            self.rcv.mss = self.rcv.mss.min(path);
            if lowered && self.state == State::SynSent && self.fast_open_syn_data_sent() {
                // The SYN that carried data was too big and is gone: the SYN goes again now,
                // without data and announcing the smaller MSS (Linux's tcp_simple_retransmit
                // marks a Fast Open SYN lost whatever its size).
                self.snd.nxt = self.snd.iss;
            }
        }
        if matches!(self.state, State::Closed | State::Listen | State::SynSent) {
            // Applied when the handshake settles the MSS.
            return None;
        }
        let before = self.snd.mss;
        self.sync_mss();
        let mss = self.snd.mss;
        if mss >= before {
            return None;
        }
        if self.snd.una < self.snd.nxt {
            // What is in flight was too big for the path and is gone: send it again now in
            // segments that fit (Linux's tcp_simple_retransmit), without treating it as
            // congestion.
            self.snd.sb.resegment(mss);
            self.resend_all_lost();
        }
        Some(mss)
    }

    /// An ICMP error other than a path MTU quoted this connection (within SND.UNA..=SND.NXT),
    /// `err` being what Linux makes of its type and code (`icmp_err_convert`). Before the
    /// connection is synchronized it ends the attempt with `err` at once, as Linux's
    /// `tcp_v4_err` / `tcp_v6_err` do in SYN-SENT and SYN-RECEIVED (RFC 5461 §4 describes
    /// this choice; RFC 1122 §4.2.3.9 calls most of these soft errors). Afterwards it is a
    /// soft error: the connection carries on, and `err` is what the application sees if it
    /// then times out. Returns whether the attempt was aborted.
    pub fn on_icmp_error(&mut self, err: Error) -> bool {
        let attempt = match self.state {
            State::SynSent => true,
            // A Fast Open child too (Linux `tcp_v4_err`: "Only in fast or simultaneous open").
            State::SynReceived => !self.passive || self.fast_open_pending(),
            _ => false,
        };
        if attempt {
            self.reset_by_peer(err, "ICMP error before the connection was established");
            return true;
        }
        self.soft_error = Some(err);
        false
    }

    /// Replaces the congestion controller (like TCP_CONGESTION). On a connection that is
    /// under way the new controller starts from the old one's cwnd and ssthresh, as Linux's
    /// `tcp_reinit_congestion_control` keeps them; only the algorithm's own state starts
    /// afresh. Choosing the algorithm in use changes nothing.
    pub fn set_congestion(&mut self, alg: congestion::Algorithm) {
        if alg == self.cc.algorithm() {
            return;
        }
        let (cwnd, ssthresh) = (self.cc.cwnd(), self.cc.ssthresh());
        self.cc = congestion::Controller::new(alg, self.snd.mss, self.cfg.initial_window);
        if self.state.is_synchronized() {
            self.cc.set_cwnd(cwnd);
            self.cc.set_ssthresh(ssthresh);
            // The controller starts now (Linux `tcp_reinit_congestion_control`); the last
            // segment's arrival stands for "now", which this call is not given.
            self.start_congestion_control(self.rcv.last_recv);
        }
    }

    /// The congestion control algorithm in use (like getsockopt TCP_CONGESTION).
    pub fn congestion(&self) -> congestion::Algorithm {
        self.cc.algorithm()
    }
}
