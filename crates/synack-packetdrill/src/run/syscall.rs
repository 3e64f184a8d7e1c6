//! Syscall lines (SUBSET.md §6): each one maps onto the stack's socket API; a call that would
//! block is retried as the clock moves until it completes or its time window passes.

use super::*;
use synack::stack::SocketOption;
use synack::tcp::PollEvents;

impl Runner {
    pub(super) fn syscall_event(
        &mut self,
        line: u32,
        sc: &Syscall,
        blocking_end: Option<Instant>,
    ) -> Result<(), Stop> {
        let attempt = self.attempt(sc, 0, true)?;
        match attempt {
            Attempt::Done(ret, errno) => {
                self.trace_call(sc, ret, errno);
                self.check_result(sc, ret, errno)?;
                if let Some(end) = blocking_end {
                    let tol = self.tolerance(end);
                    self.check_time("system call return", end, end, tol, self.now)?;
                }
                Ok(())
            }
            Attempt::Blocked(progress) => {
                let Some(end) = blocking_end else {
                    return Err(err(format!(
                        "{}() would block, but the script expects it to return at once \
                         (write T...E for a blocking call)",
                        sc.name
                    )));
                };
                self.blocked = Some(Blocked {
                    line,
                    call: sc.clone(),
                    end,
                    tolerance: self.tolerance(end),
                    progress,
                });
                Ok(())
            }
        }
    }

    pub(super) fn poll_blocked(&mut self) {
        let Some(mut b) = self.blocked.take() else {
            return;
        };
        match self.attempt(&b.call, b.progress, false) {
            Ok(Attempt::Blocked(p)) => {
                b.progress = p;
                self.blocked = Some(b);
            }
            Ok(Attempt::Done(ret, errno)) => {
                self.trace_call(&b.call, ret, errno);
                let r = self.check_result(&b.call, ret, errno).and_then(|()| {
                    self.check_time("system call return", b.end, b.end, b.tolerance, self.now)
                });
                if let Err(Stop::Fail(mut f)) = r {
                    if self.deferred.is_none() {
                        f.message = format!("{} (blocking {}())", f.message, b.call.name);
                        f.time = Some(self.now);
                        self.deferred = Some(f);
                    }
                }
            }
            Err(Stop::Fail(f)) => {
                if self.deferred.is_none() {
                    self.deferred = Some(f);
                }
            }
            Err(Stop::Skip(_)) => {}
        }
    }

    fn trace_call(&mut self, sc: &Syscall, ret: i64, errno: Option<Errno>) {
        if let Some(r) = &mut self.record {
            r.calls.push((ret, errno));
        }
        let e = errno.map(|e| format!(" {}", e.name())).unwrap_or_default();
        self.trace
            .push(format!("{}   {}(...) = {ret}{e}", secs(self.now), sc.name));
    }

    fn check_result(&self, sc: &Syscall, ret: i64, errno: Option<Errno>) -> Result<(), Stop> {
        if self.record.is_some() {
            return Ok(());
        }
        let expected = match &sc.result {
            Expr::Int(v) => *v,
            other => return Err(err(format!("unsupported result expression {other:?}"))),
        };
        let with_errno = |ret: i64| match errno {
            Some(e) if ret < 0 => format!("{ret} with errno {} ({})", e.0, e.message()),
            _ => format!("{ret}"),
        };
        let fd_call = matches!(sc.name.as_str(), "socket" | "accept");
        if fd_call && expected >= 0 {
            if ret < 0 {
                return Err(err(format!(
                    "runtime error in {} call: Expected non-negative result but got {}",
                    sc.name,
                    with_errno(ret)
                )));
            }
        } else if ret != expected {
            return Err(err(format!(
                "runtime error in {} call: Expected result {expected} but got {}",
                sc.name,
                with_errno(ret)
            )));
        }
        if let Some(name) = &sc.errno {
            let want =
                Errno::from_name(name).ok_or_else(|| err(format!("unknown errno name {name}")))?;
            if errno != Some(want) {
                return Err(err(format!(
                    "runtime error in {} call: Expected errno {} ({}) but got {}",
                    sc.name,
                    want.0,
                    want.message(),
                    errno.map_or("none".to_string(), |e| format!("{} ({})", e.0, e.message()))
                )));
            }
        }
        Ok(())
    }

    fn arg<'a>(&self, sc: &'a Syscall, i: usize) -> Result<&'a Expr, Stop> {
        sc.args
            .get(i)
            .ok_or_else(|| err(format!("{}() needs argument {}", sc.name, i + 1)))
    }

    fn int_arg(&self, sc: &Syscall, i: usize) -> Result<i64, Stop> {
        eval_int(self.arg(sc, i)?)
    }

    fn fd_arg(&self, sc: &Syscall) -> Result<(i64, Fd), Stop> {
        let n = self.int_arg(sc, 0)?;
        let fd = self
            .fds
            .get(&n)
            .cloned()
            .ok_or_else(|| err(format!("{}(): fd {n} is not open in the script", sc.name)))?;
        Ok((n, fd))
    }

    /// Performs (or retries) a call. `first` is false when a blocked call is retried.
    fn attempt(&mut self, sc: &Syscall, progress: usize, first: bool) -> Result<Attempt, Stop> {
        let done = |r: i64| Ok(Attempt::Done(r, None));
        let fail = |e: Errno| Ok(Attempt::Done(-1, Some(e)));
        match sc.name.as_str() {
            "socket" => {
                let ty = eval_int(self.arg(sc, 1)?)?;
                let proto = self.arg(sc, 2)?;
                let proto_ok = match proto {
                    Expr::Word(w) => w == "IPPROTO_TCP",
                    Expr::Int(0) | Expr::Int(6) => true,
                    _ => false,
                };
                if !proto_ok {
                    return fail(Errno::EPROTONOSUPPORT);
                }
                let fd = match &sc.result {
                    Expr::Int(v) if *v >= 0 => *v,
                    _ => (3..).find(|n| !self.fds.contains_key(n)).unwrap_or(3),
                };
                self.fds.insert(
                    fd,
                    Fd {
                        kind: FdKind::Fresh,
                        nonblock: ty & SOCK_NONBLOCK != 0,
                        cfg: self.cfg.clone(),
                        nodelay: false,
                        cork: false,
                        user_timeout: None,
                        keepalive: false,
                        keepalive_cfg: self.cfg.keepalive,
                        bound: false,
                        rcvbuf_set: false,
                        sndbuf_set: false,
                        linger_abort: false,
                        fastopen_qlen: None,
                        fastopen_connect: false,
                        fastopen_deferred: false,
                    },
                );
                self.under_test = UnderTest::Fd(fd);
                done(fd)
            }
            "bind" => {
                let (n, _) = self.fd_arg(sc)?;
                if let Some(f) = self.fds.get_mut(&n) {
                    f.bound = true;
                }
                done(0)
            }
            "listen" => {
                let (n, fd) = self.fd_arg(sc)?;
                let backlog = self.int_arg(sc, 1)?.max(0) as usize;
                let local = SocketAddr::new(self.sock_ip(self.local), PORT);
                match self
                    .stack
                    .listen_with(local, backlog, Arc::new(fd.cfg.clone()))
                {
                    Ok(h) => {
                        if let Some(q) = fd.fastopen_qlen {
                            let _ = self.stack.set_fastopen_queue(h, q);
                        }
                        self.set_kind(n, FdKind::Listener(h));
                        self.focus = Focus::Listener;
                        done(0)
                    }
                    Err(e) => fail(Errno::from_io(&e)),
                }
            }
            "accept" => {
                let (n, fd) = self.fd_arg(sc)?;
                let FdKind::Listener(h) = fd.kind else {
                    return fail(Errno::EINVAL);
                };
                match self.stack.accept(h) {
                    Ok(Some(c)) => {
                        let new = match &sc.result {
                            Expr::Int(v) if *v >= 0 => *v,
                            _ => (3..).find(|n| !self.fds.contains_key(n)).unwrap_or(3),
                        };
                        let mut child = fd.clone();
                        child.kind = FdKind::Conn(c);
                        child.nonblock = false;
                        self.apply_conn_opts(c, &child);
                        self.fds.insert(new, child);
                        if self.under_test == UnderTest::Passive {
                            self.under_test = UnderTest::Fd(new);
                        }
                        let _ = n;
                        done(new)
                    }
                    Ok(None) if fd.nonblock => fail(Errno::EAGAIN),
                    Ok(None) => Ok(Attempt::Blocked(0)),
                    Err(e) => fail(Errno::from_io(&e)),
                }
            }
            "connect" => {
                let (n, fd) = self.fd_arg(sc)?;
                if matches!(self.arg(sc, 1)?, Expr::Word(w) if w == "AF_UNSPEC") {
                    // Linux `tcp_disconnect`: reset the connection (or stop listening); the
                    // socket is a closed one again, free to connect, its port released.
                    if let FdKind::Conn(h) | FdKind::Connecting(h) | FdKind::Listener(h) = fd.kind {
                        self.stack.disconnect(self.now, h);
                        self.pump();
                    }
                    if let Some(f) = self.fds.get_mut(&n) {
                        f.kind = FdKind::Fresh;
                        f.bound = false;
                        f.fastopen_deferred = false;
                    }
                    return done(0);
                }
                if matches!(fd.kind, FdKind::Fresh) && fd.fastopen_connect {
                    let remote = self.sock_ip(self.remote);
                    if fd.fastopen_deferred {
                        // The socket counts as connected (Linux `inet_stream_connect`: the
                        // deferred connect left it SS_CONNECTED).
                        return fail(Errno::EISCONN);
                    }
                    if self.stack.fast_open_ready(remote, &self.cfg) {
                        // Linux `tcp_fastopen_defer_connect`: the SYN waits for the data.
                        if let Some(f) = self.fds.get_mut(&n) {
                            f.fastopen_deferred = true;
                        }
                        return done(0);
                    }
                    // No cookie yet: the SYN asks for one.
                    return match self.fast_open_connect(n, &fd, 0) {
                        Ok(_) if fd.nonblock => fail(Errno::EINPROGRESS),
                        Ok(_) => Ok(Attempt::Blocked(0)),
                        Err(e) => fail(e),
                    };
                }
                let h = match fd.kind {
                    FdKind::Fresh => {
                        let remote = SocketAddr::new(self.sock_ip(self.remote), PORT);
                        let local = fd
                            .bound
                            .then(|| SocketAddr::new(self.sock_ip(self.local), PORT));
                        self.focus = Focus::Connecting;
                        match self.stack.connect_with(
                            self.now,
                            remote,
                            local,
                            Arc::new(fd.cfg.clone()),
                        ) {
                            Ok(h) => {
                                self.apply_conn_opts(h, &fd);
                                self.set_kind(n, FdKind::Connecting(h));
                                self.pump();
                                if fd.nonblock {
                                    return fail(Errno::EINPROGRESS);
                                }
                                h
                            }
                            Err(e) => return fail(Errno::from_io(&e)),
                        }
                    }
                    FdKind::Connecting(h) => h,
                    // Linux's inet_stream_connect(): a socket that is not CLOSED (connected
                    // or listening) is "already connected".
                    FdKind::Conn(_) | FdKind::Listener(_) => return fail(Errno::EISCONN),
                    _ => return fail(Errno::EINVAL),
                };
                let Some(c) = self.stack.connection(h) else {
                    return fail(Errno(111));
                };
                if let Some(e) = c.error() {
                    self.set_kind(n, FdKind::Closed);
                    return fail(Errno::from_io(&std::io::Error::from(e)));
                }
                match c.state() {
                    State::SynSent | State::SynReceived => {
                        if fd.nonblock && first {
                            fail(Errno::EALREADY)
                        } else {
                            Ok(Attempt::Blocked(0))
                        }
                    }
                    State::Closed => fail(Errno(111)),
                    _ => {
                        self.set_kind(n, FdKind::Conn(h));
                        done(0)
                    }
                }
            }
            "write" | "send" | "sendto" | "sendmsg" => self.write_call(sc, progress),
            "read" | "recv" | "recvfrom" => {
                let (_, fd) = self.fd_arg(sc)?;
                let len = self.int_arg(sc, 2)?.max(0) as usize;
                let h = match fd.kind {
                    FdKind::Conn(h) | FdKind::Connecting(h) => h,
                    _ => return fail(Errno::ENOTCONN),
                };
                let Some(c) = self.stack.connection(h) else {
                    return done(0);
                };
                if !c.is_readable() {
                    return if fd.nonblock {
                        fail(Errno::EAGAIN)
                    } else {
                        Ok(Attempt::Blocked(0))
                    };
                }
                let mut buf = vec![0u8; len];
                match self.stack.recv(self.now, h, &mut buf) {
                    Ok(n) => {
                        self.pump();
                        done(n as i64)
                    }
                    Err(e) => fail(Errno::from_io(&e)),
                }
            }
            "shutdown" => {
                let (n, fd) = self.fd_arg(sc)?;
                let how = match self.arg(sc, 1)? {
                    Expr::Word(w) if w == "SHUT_RD" => Shutdown::Read,
                    Expr::Word(w) if w == "SHUT_WR" => Shutdown::Write,
                    Expr::Word(w) if w == "SHUT_RDWR" => Shutdown::Both,
                    Expr::Int(0) => Shutdown::Read,
                    Expr::Int(1) => Shutdown::Write,
                    Expr::Int(2) => Shutdown::Both,
                    // Linux checks `how` before anything else.
                    Expr::Int(_) => return fail(Errno::EINVAL),
                    other => return Err(err(format!("bad shutdown how {other:?}"))),
                };
                let (n, h) = match fd.kind {
                    FdKind::Conn(h) | FdKind::Connecting(h) | FdKind::Listener(h) => (n, h),
                    _ => return fail(Errno::ENOTCONN),
                };
                if matches!(fd.kind, FdKind::Listener(_)) && how != Shutdown::Write {
                    // The listener stopped listening (`Stack::shutdown`): a bound socket again,
                    // as Linux leaves it (listen() may be called again).
                    if let Some(f) = self.fds.get_mut(&n) {
                        f.kind = FdKind::Fresh;
                    }
                }
                match self.stack.shutdown(self.now, h, how) {
                    Ok(()) => {
                        self.pump();
                        done(0)
                    }
                    Err(e) => fail(Errno::from_io(&e)),
                }
            }
            "close" => {
                let (n, fd) = self.fd_arg(sc)?;
                if self.under_test == UnderTest::Fd(n) {
                    self.focus_closed = true;
                }
                match fd.kind {
                    // SO_LINGER {1, 0}: Linux's tcp_close() disconnects (ABORT, RFC 9293
                    // §3.10.5) instead of closing gracefully.
                    FdKind::Conn(h) | FdKind::Connecting(h) if fd.linger_abort => {
                        self.stack.abort(self.now, h);
                        self.pump();
                    }
                    FdKind::Listener(h) | FdKind::Conn(h) | FdKind::Connecting(h) => {
                        self.stack.close(self.now, h);
                        self.pump();
                    }
                    FdKind::Fresh | FdKind::Closed => {}
                }
                self.fds.remove(&n);
                done(0)
            }
            "fcntl" => {
                let (n, _) = self.fd_arg(sc)?;
                let cmd = self.arg(sc, 1)?;
                match cmd {
                    Expr::Word(w) if w == "F_SETFL" => {
                        let flags = eval_int(self.arg(sc, 2)?)?;
                        if let Some(f) = self.fds.get_mut(&n) {
                            f.nonblock = flags & O_NONBLOCK != 0;
                        }
                        done(0)
                    }
                    Expr::Word(w) if w == "F_GETFL" => {
                        let nb = self.fds.get(&n).is_some_and(|f| f.nonblock);
                        done(O_RDWR | if nb { O_NONBLOCK } else { 0 })
                    }
                    other => Err(err(format!("unsupported fcntl command {other:?}"))),
                }
            }
            "setsockopt" => self.setsockopt(sc),
            "getsockopt" => self.getsockopt(sc),
            "poll" => self.poll_call(sc, progress),
            other => Err(err(format!("unsupported system call {other}()"))),
        }
    }

    /// poll(fds, nfds, timeout): each `{fd=N, events=..., revents=...}` gets the socket's
    /// events as Linux's `tcp_poll` computes them ([`Stack::poll_events`]), masked by what it
    /// asks for (POLLERR and POLLHUP always). It returns at once when some are ready or the
    /// timeout is 0, else waits until some are or `timeout` ms have passed (`progress` holds
    /// the start, in microseconds plus one). The script's `revents` must match exactly.
    fn poll_call(&mut self, sc: &Syscall, progress: usize) -> Result<Attempt, Stop> {
        let Expr::Array(items) = self.arg(sc, 0)? else {
            return Err(err("poll() needs an array of {fd, events, revents}"));
        };
        let timeout = self.int_arg(sc, 2)?;
        let mut polled = Vec::with_capacity(items.len());
        for it in items {
            let Expr::Struct(fields) = it else {
                return Err(err(
                    "poll(): each entry is a {fd=..., events=..., revents=...}",
                ));
            };
            let field = |name: &str| fields.iter().find(|f| f.name.as_deref() == Some(name));
            let fd = eval_int(
                &field("fd")
                    .ok_or_else(|| err("poll(): entry without fd"))?
                    .value,
            )?;
            let events = field("events").map_or(Ok(0), |f| eval_int(&f.value))?;
            let expect = field("revents").map(|f| eval_int(&f.value)).transpose()?;
            let got = self.fd_events(fd).reported(PollEvents(events as u16));
            polled.push((fd, got, expect));
        }
        let ready = polled
            .iter()
            .filter(|(_, got, _)| *got != PollEvents::NONE)
            .count();
        let start = if progress == 0 {
            self.now.total_micros()
        } else {
            progress as u64 - 1
        };
        let waited = self.now.total_micros().saturating_sub(start);
        if ready == 0 && timeout != 0 && (timeout < 0 || waited < timeout as u64 * 1000) {
            return Ok(Attempt::Blocked(start as usize + 1));
        }
        for (fd, got, expect) in polled {
            if let Some(want) = expect
                && PollEvents(want as u16) != got
            {
                return Err(err(format!(
                    "poll(): fd {fd}: expected revents {:?} but got {got:?}",
                    PollEvents(want as u16)
                )));
            }
        }
        Ok(Attempt::Done(ready as i64, None))
    }

    /// The poll events of a script's fd: a socket not connected yet is closed, so POLLHUP
    /// and POLLOUT (Linux `tcp_poll` on TCP_CLOSE), unless a Fast Open connect was deferred
    /// (POLLOUT alone: the write sends the SYN).
    fn fd_events(&mut self, n: i64) -> PollEvents {
        let Some(fd) = self.fds.get(&n) else {
            // poll(2): "Invalid request: fd not open".
            return PollEvents(0x20);
        };
        match fd.kind {
            FdKind::Fresh if fd.fastopen_deferred => PollEvents::OUT,
            FdKind::Fresh => PollEvents::OUT | PollEvents::HUP,
            FdKind::Closed => {
                PollEvents::IN | PollEvents::OUT | PollEvents::HUP | PollEvents::RDHUP
            }
            FdKind::Conn(h) | FdKind::Connecting(h) | FdKind::Listener(h) => {
                self.stack.poll_events(h)
            }
        }
    }

    fn set_kind(&mut self, n: i64, kind: FdKind) {
        if let Some(f) = self.fds.get_mut(&n) {
            f.kind = kind;
        }
    }

    /// Applies the socket's options to a connection it made or accepted, as setsockopt on a
    /// connection does (so a timer an option arms, keep-alive, is scheduled).
    fn apply_conn_opts(&mut self, h: SocketHandle, fd: &Fd) {
        let now = self.now;
        let mut opts = Vec::new();
        if fd.nodelay {
            opts.push(SocketOption::NoDelay(true));
        }
        if fd.cork {
            opts.push(SocketOption::Cork(true));
        }
        if fd.user_timeout.is_some() {
            opts.push(SocketOption::UserTimeout(fd.user_timeout));
        }
        if fd.keepalive {
            opts.push(SocketOption::Keepalive(Some(fd.keepalive_cfg)));
        }
        for o in opts {
            // A handle that is no connection (any more) has no options to take.
            let _ = self.stack.set_option(now, h, o);
        }
    }

    fn write_call(&mut self, sc: &Syscall, progress: usize) -> Result<Attempt, Stop> {
        let (_, fd) = self.fd_arg(sc)?;
        let (len, flags) = match sc.name.as_str() {
            "write" => (self.int_arg(sc, 2)?, 0),
            "send" | "sendto" => (self.int_arg(sc, 2)?, eval_int(self.arg(sc, 3)?)?),
            _ => {
                let msg = self.arg(sc, 1)?;
                (iov_len(msg)?, eval_int(self.arg(sc, 2)?)?)
            }
        };
        let len = len.max(0) as usize;
        let nonblock = fd.nonblock || flags & MSG_DONTWAIT != 0;
        // RFC 7413 §4.2.1: sendto(MSG_FASTOPEN) on a fresh socket connects with data in the
        // SYN; so does the first write after a deferred TCP_FASTOPEN_CONNECT connect().
        let deferred = matches!(fd.kind, FdKind::Fresh) && fd.fastopen_deferred;
        let unspec =
            sc.name == "sendto" && matches!(self.arg(sc, 4), Ok(Expr::Word(w)) if w == "AF_UNSPEC");
        if flags & MSG_FASTOPEN != 0 && unspec {
            // Linux `tcp_sendmsg_fastopen`: AF_UNSPEC (a disconnect) cannot open.
            return Ok(Attempt::Done(-1, Some(Errno::EOPNOTSUPP)));
        }
        if (flags & MSG_FASTOPEN != 0 && matches!(fd.kind, FdKind::Fresh)) || deferred {
            return self.fast_open_write(sc, len, nonblock);
        }
        if flags & MSG_FASTOPEN != 0 && matches!(fd.kind, FdKind::Connecting(_)) && nonblock {
            return Ok(Attempt::Done(-1, Some(Errno::EALREADY)));
        }
        let h = match fd.kind {
            FdKind::Conn(h) | FdKind::Connecting(h) => h,
            _ => return Ok(Attempt::Done(-1, Some(Errno::EPIPE))),
        };
        let more = flags & MSG_MORE != 0;
        let eor = flags & MSG_EOR != 0;
        let zeros = vec![0u8; len - progress.min(len)];
        let mut done = progress;
        // A blocking Fast Open write whose data all went on the SYN returns once connected.
        if zeros.is_empty() && !nonblock {
            if let Some(State::SynSent) = self.stack.connection(h).map(|c| c.state()) {
                return Ok(Attempt::Blocked(done));
            }
        }
        if !zeros.is_empty() {
            let fo_child = self
                .stack
                .connection(h)
                .is_some_and(|c| c.fast_open_pending());
            match self.stack.connection(h).map(|c| c.state()) {
                Some(State::SynReceived) if fo_child => {}
                Some(State::SynSent | State::SynReceived) if nonblock => {
                    return Ok(Attempt::Done(-1, Some(Errno::EAGAIN)));
                }
                Some(State::SynSent | State::SynReceived) => return Ok(Attempt::Blocked(done)),
                _ => {}
            }
            let r = self.stack.send_with(self.now, h, &zeros, more, eor);
            match r {
                Ok(n) => done += n,
                Err(e) => {
                    return Ok(if done > 0 {
                        Attempt::Done(done as i64, None)
                    } else {
                        Attempt::Done(-1, Some(Errno::from_io(&e)))
                    });
                }
            }
            self.pump();
        }
        if done >= len {
            return Ok(Attempt::Done(len as i64, None));
        }
        if nonblock {
            return Ok(if done > 0 {
                Attempt::Done(done as i64, None)
            } else {
                Attempt::Done(-1, Some(Errno::EAGAIN))
            });
        }
        Ok(Attempt::Blocked(done))
    }

    /// A write that opens the connection with TCP Fast Open: the SYN carries what fits
    /// (with a cached cookie) or asks for a cookie. Non-blocking, it returns the bytes in the
    /// SYN, or EINPROGRESS when there are none; blocking, it waits for the connection and
    /// sends the rest as an ordinary write does.
    fn fast_open_write(
        &mut self,
        sc: &Syscall,
        len: usize,
        nonblock: bool,
    ) -> Result<Attempt, Stop> {
        let (n, fd) = self.fd_arg(sc)?;
        let c = match self.fast_open_connect(n, &fd, len) {
            Ok(c) => c,
            Err(e) => return Ok(Attempt::Done(-1, Some(e))),
        };
        if nonblock {
            return Ok(if c.syn_data > 0 {
                Attempt::Done(c.syn_data as i64, None)
            } else {
                Attempt::Done(-1, Some(Errno::EINPROGRESS))
            });
        }
        if c.syn_data >= len {
            // Linux's blocking sendto waits for the handshake before returning.
            return Ok(Attempt::Blocked(len));
        }
        self.stack.fast_open_writer_waiting(c.handle);
        Ok(Attempt::Blocked(c.syn_data))
    }

    /// Opens fd `n` with Fast Open and `len` bytes to send (`Stack::connect_fast_open`).
    fn fast_open_connect(
        &mut self,
        n: i64,
        fd: &Fd,
        len: usize,
    ) -> Result<synack::stack::FastOpenConnect, Errno> {
        let remote = SocketAddr::new(self.sock_ip(self.remote), PORT);
        let local = fd
            .bound
            .then(|| SocketAddr::new(self.sock_ip(self.local), PORT));
        self.focus = Focus::Connecting;
        // Linux reads tcp_fastopen when the call is made, not when the socket was created.
        let mut cfg = fd.cfg.clone();
        cfg.fastopen = self.cfg.fastopen;
        let data = vec![0u8; len];
        let c = self
            .stack
            .connect_fast_open(self.now, remote, local, Arc::new(cfg), &data)
            .map_err(|e| Errno::from_io(&e))?;
        self.apply_conn_opts(c.handle, fd);
        self.set_kind(n, FdKind::Connecting(c.handle));
        if let Some(f) = self.fds.get_mut(&n) {
            f.fastopen_deferred = false;
        }
        self.pump();
        Ok(c)
    }

    fn setsockopt(&mut self, sc: &Syscall) -> Result<Attempt, Stop> {
        let (n, fd) = self.fd_arg(sc)?;
        let level = word(self.arg(sc, 1)?)?;
        let name = word(self.arg(sc, 2)?)?;
        if name == "TCP_CONGESTION" {
            return self.set_congestion(sc, n, fd);
        }
        if (level.as_str(), name.as_str()) == ("SOL_SOCKET", "SO_LINGER") {
            // `{onoff=1, linger=0}`: only "abort on close" changes what TCP does here (a
            // positive linger time makes close() wait, which a script sees as time).
            let Expr::Struct(fields) = self.arg(sc, 3)? else {
                return Err(err("SO_LINGER expects {onoff=N, linger=N}"));
            };
            let field = |want: &str| -> Result<i64, Stop> {
                fields
                    .iter()
                    .find(|f| f.name.as_deref() == Some(want))
                    .ok_or_else(|| err(format!("SO_LINGER: no {want}")))
                    .and_then(|f| eval_int(&f.value))
            };
            let (onoff, secs) = (field("onoff")?, field("linger")?);
            if onoff != 0 && secs > 0 {
                self.note("SO_LINGER with a positive time: close() does not wait here".into());
            }
            if let Some(f) = self.fds.get_mut(&n) {
                f.linger_abort = onoff != 0 && secs == 0;
            }
            return Ok(Attempt::Done(0, None));
        }
        let value = match self.arg(sc, 3)? {
            Expr::Array(v) if v.len() == 1 => eval_int(&v[0])?,
            Expr::Int(v) => *v,
            Expr::Str(_) => {
                return Err(Stop::Skip(format!("setsockopt {name} with a string value")));
            }
            other => return Err(err(format!("unsupported setsockopt value {other:?}"))),
        };
        let conn = match fd.kind {
            FdKind::Conn(h) | FdKind::Connecting(h) => Some(h),
            _ => None,
        };
        let now = self.now;
        let mut f = fd.clone();
        match (level.as_str(), name.as_str()) {
            ("SOL_SOCKET", "SO_REUSEADDR" | "SO_REUSEPORT") => {}
            ("SOL_SOCKET", "SO_SNDBUF") => {
                // Linux doubles the value for its bookkeeping overhead.
                f.cfg.send_buffer = (2 * value.max(0) as usize).max(4608);
                f.sndbuf_set = true;
            }
            ("SOL_SOCKET", "SO_RCVBUF") => {
                f.cfg.recv_buffer = (2 * value.max(0) as usize).max(2304);
                f.cfg.recv_buffer_locked = true;
                f.rcvbuf_set = true;
            }
            ("SOL_SOCKET", "SO_KEEPALIVE") => f.keepalive = value != 0,
            // tcp(7): idle and interval 1..=MAX_TCP_KEEPIDLE/INTVL (32767 s), count
            // 1..=MAX_TCP_KEEPCNT (127); anything else is EINVAL and changes nothing.
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_KEEPIDLE") => {
                if !(1..=32767).contains(&value) {
                    return Ok(Attempt::Done(-1, Some(Errno::EINVAL)));
                }
                f.keepalive_cfg.idle = Duration::from_secs(value as u64)
            }
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_KEEPINTVL") => {
                if !(1..=32767).contains(&value) {
                    return Ok(Attempt::Done(-1, Some(Errno::EINVAL)));
                }
                f.keepalive_cfg.interval = Duration::from_secs(value as u64)
            }
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_KEEPCNT") => {
                if !(1..=127).contains(&value) {
                    return Ok(Attempt::Done(-1, Some(Errno::EINVAL)));
                }
                f.keepalive_cfg.count = value as u32
            }
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_NODELAY") => f.nodelay = value != 0,
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_CORK") => f.cork = value != 0,
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_MAXSEG") => {
                if !(88..=32767).contains(&value) {
                    return Ok(Attempt::Done(-1, Some(Errno::EINVAL)));
                }
                f.cfg.mss_clamp = Some(value as u16);
            }
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_USER_TIMEOUT") => {
                if value < 0 {
                    return Ok(Attempt::Done(-1, Some(Errno::EINVAL)));
                }
                f.user_timeout = (value > 0).then(|| Duration::from_millis(value as u64));
            }
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_SYNCNT") => {
                // Linux: 1..=MAX_TCP_SYNCNT (127), else EINVAL.
                if !(1..=127).contains(&value) {
                    return Ok(Attempt::Done(-1, Some(Errno::EINVAL)));
                }
                f.cfg.syn_retries = value as u32;
            }
            ("SOL_IP" | "IPPROTO_IP", "IP_MTU_DISCOVER" | "IP_TOS")
            | ("SOL_IPV6" | "IPPROTO_IPV6", "IPV6_MTU_DISCOVER" | "IPV6_TCLASS") => {
                self.note(format!("setsockopt {name}: accepted, no effect in synack"));
            }
            // The runner binds to one address, never `[::]`: dual-stack or not, the socket
            // sees its own family only.
            ("SOL_IPV6" | "IPPROTO_IPV6", "IPV6_V6ONLY") => {}
            // Linux `do_tcp_setsockopt`: on a closed or listening socket only; the queue is
            // at most net.core.somaxconn (4096) long.
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_FASTOPEN") => {
                let qlen = value.clamp(0, 4096) as usize;
                match fd.kind {
                    FdKind::Listener(h) => {
                        let _ = self.stack.set_fastopen_queue(h, qlen);
                    }
                    FdKind::Fresh => f.fastopen_qlen = Some(qlen),
                    _ => return Ok(Attempt::Done(-1, Some(Errno::EINVAL))),
                }
            }
            ("SOL_TCP" | "IPPROTO_TCP", "TCP_FASTOPEN_CONNECT") => {
                // Linux: EOPNOTSUPP unless tcp_fastopen has the client bit (read now).
                if !self.cfg.fastopen.has(synack::tcp::FastOpenMode::CLIENT) {
                    return Ok(Attempt::Done(-1, Some(Errno::EOPNOTSUPP)));
                }
                if !matches!(fd.kind, FdKind::Fresh) {
                    return Ok(Attempt::Done(-1, Some(Errno::EINVAL)));
                }
                f.fastopen_connect = value != 0;
            }
            _ => return Ok(Attempt::Done(-1, Some(Errno::ENOPROTOOPT))),
        }
        // Options that act on an existing connection.
        if let Some(h) = conn {
            let opt = match name.as_str() {
                "TCP_NODELAY" => Some(SocketOption::NoDelay(f.nodelay)),
                "TCP_CORK" => Some(SocketOption::Cork(f.cork)),
                "TCP_USER_TIMEOUT" => Some(SocketOption::UserTimeout(f.user_timeout)),
                "TCP_SYNCNT" => Some(SocketOption::SynCount(value as u8)),
                "SO_RCVBUF" => Some(SocketOption::RecvBuffer(value.max(0) as usize)),
                "SO_KEEPALIVE" | "TCP_KEEPIDLE" | "TCP_KEEPINTVL" | "TCP_KEEPCNT" => Some(
                    SocketOption::Keepalive(f.keepalive.then_some(f.keepalive_cfg)),
                ),
                _ => None,
            };
            if let Some(o) = opt {
                let _ = self.stack.set_option(now, h, o);
            }
            self.pump();
        }
        self.fds.insert(n, f);
        Ok(Attempt::Done(0, None))
    }

    /// setsockopt TCP_CONGESTION: the algorithm by name, for the connection and the ones
    /// the socket makes; Linux answers ENOENT for a name it does not have.
    fn set_congestion(&mut self, sc: &Syscall, n: i64, mut fd: Fd) -> Result<Attempt, Stop> {
        let Expr::Str(value) = self.arg(sc, 3)? else {
            return Err(err("TCP_CONGESTION: expected a string value"));
        };
        let Ok(alg) = value.parse::<synack::tcp::congestion::Algorithm>() else {
            return Ok(Attempt::Done(-1, Errno::from_name("ENOENT")));
        };
        fd.cfg.congestion = alg;
        if let FdKind::Conn(h) | FdKind::Connecting(h) = fd.kind {
            let _ = self
                .stack
                .set_option(self.now, h, SocketOption::Congestion(alg));
        }
        self.fds.insert(n, fd);
        Ok(Attempt::Done(0, None))
    }

    fn getsockopt(&mut self, sc: &Syscall) -> Result<Attempt, Stop> {
        let (_, fd) = self.fd_arg(sc)?;
        let name = word(self.arg(sc, 2)?)?;
        let got: i64 = match name.as_str() {
            // The pending error, once: Linux's sock_error() clears sk_err as it reads it.
            "SO_ERROR" => {
                let e = match fd.kind {
                    FdKind::Conn(h) | FdKind::Connecting(h) => {
                        self.stack.take_error(h).ok().flatten()
                    }
                    _ => None,
                };
                e.map_or(0, |e| i64::from(Errno::from_io(&e).0))
            }
            "TCP_MAXSEG" => match fd.kind {
                FdKind::Conn(h) | FdKind::Connecting(h) => self
                    .stack
                    .connection(h)
                    .map_or(536, |c| c.info().snd_mss as i64),
                _ => fd.cfg.mss_clamp.map_or(536, i64::from),
            },
            // socket(7): the size set with SO_RCVBUF/SO_SNDBUF, doubled, or the tcp_rmem /
            // tcp_wmem default. Linux autotunes an unlocked buffer once connected; synack does
            // not report that size, so only a locked (set) buffer can be checked there.
            "SO_RCVBUF" | "SO_SNDBUF" => {
                let rcv = name == "SO_RCVBUF";
                let locked = if rcv { fd.rcvbuf_set } else { fd.sndbuf_set };
                if !locked && matches!(fd.kind, FdKind::Conn(_) | FdKind::Connecting(_)) {
                    return Err(Stop::Skip(format!(
                        "getsockopt {name} on a connected socket whose buffer Linux autotunes"
                    )));
                }
                if rcv {
                    fd.cfg.recv_buffer as i64
                } else {
                    fd.cfg.send_buffer as i64
                }
            }
            "TCP_KEEPIDLE" => fd.keepalive_cfg.idle.as_secs() as i64,
            "TCP_KEEPINTVL" => fd.keepalive_cfg.interval.as_secs() as i64,
            "TCP_KEEPCNT" => i64::from(fd.keepalive_cfg.count),
            "TCP_USER_TIMEOUT" => fd.user_timeout.map_or(0, |d| d.as_millis() as i64),
            "TCP_NODELAY" => fd.nodelay as i64,
            "TCP_CORK" => fd.cork as i64,
            "SO_KEEPALIVE" => fd.keepalive as i64,
            _ => return Ok(Attempt::Done(-1, Some(Errno::ENOPROTOOPT))),
        };
        if let Some(Expr::Array(v)) = sc.args.get(3) {
            if let Some(e) = v.first() {
                let want = eval_int(e)?;
                if want != got {
                    return Err(err(format!(
                        "Bad getsockopt optval: expected: {want} actual: {got}"
                    )));
                }
            }
        }
        Ok(Attempt::Done(0, None))
    }
}

const SOCK_NONBLOCK: i64 = 0o4000;
const O_RDWR: i64 = 2;
const O_NONBLOCK: i64 = 0o4000;
const MSG_MORE: i64 = 0x8000;
const MSG_EOR: i64 = 0x80;
const MSG_DONTWAIT: i64 = 0x40;
const MSG_NOSIGNAL: i64 = 0x4000;
const MSG_FASTOPEN: i64 = 0x2000_0000;

/// Linux values of the symbolic constants scripts pass as integers.
fn constant(w: &str) -> Option<i64> {
    Some(match w {
        "SOCK_STREAM" => 1,
        "SOCK_DGRAM" => 2,
        "SOCK_NONBLOCK" => SOCK_NONBLOCK,
        "O_RDWR" => O_RDWR,
        "O_NONBLOCK" => O_NONBLOCK,
        "MSG_MORE" => MSG_MORE,
        "MSG_EOR" => MSG_EOR,
        "MSG_DONTWAIT" => MSG_DONTWAIT,
        "MSG_NOSIGNAL" => MSG_NOSIGNAL,
        "MSG_FASTOPEN" => MSG_FASTOPEN,
        "AF_INET" => 2,
        "AF_INET6" => 10,
        "IPPROTO_TCP" => 6,
        "IPPROTO_UDP" => 17,
        "SHUT_RD" => 0,
        "SHUT_WR" => 1,
        "SHUT_RDWR" => 2,
        "POLLIN" => 0x1,
        "POLLPRI" => 0x2,
        "POLLOUT" => 0x4,
        "POLLERR" => 0x8,
        "POLLHUP" => 0x10,
        "POLLNVAL" => 0x20,
        "POLLRDNORM" => 0x40,
        "POLLWRNORM" => 0x100,
        "POLLRDHUP" => 0x2000,
        "IP_PMTUDISC_DONT" => 0,
        "IP_PMTUDISC_WANT" => 1,
        "IP_PMTUDISC_DO" => 2,
        _ => return None,
    })
}

fn eval_int(e: &Expr) -> Result<i64, Stop> {
    match e {
        Expr::Int(v) => Ok(*v),
        Expr::Word(w) => constant(w)
            .or_else(|| Errno::from_name(w).map(|e| i64::from(e.0)))
            .ok_or_else(|| err(format!("unknown constant {w}"))),
        Expr::BitOr(v) => v.iter().try_fold(0, |acc, x| Ok(acc | eval_int(x)?)),
        Expr::Ellipsis => Ok(0),
        other => Err(err(format!("expected an integer, got {other:?}"))),
    }
}

fn word(e: &Expr) -> Result<String, Stop> {
    match e {
        Expr::Word(w) => Ok(w.clone()),
        other => Err(err(format!("expected a name, got {other:?}"))),
    }
}

/// Total length of a sendmsg `msg_iov(K)=[{..., len}, ...]`.
fn iov_len(msg: &Expr) -> Result<i64, Stop> {
    let Expr::Struct(fields) = msg else {
        return Err(err("sendmsg needs a {msg_...} struct"));
    };
    let iov = fields
        .iter()
        .find(|f| f.name.as_deref() == Some("msg_iov"))
        .ok_or_else(|| err("sendmsg struct has no msg_iov"))?;
    let Expr::Array(items) = &iov.value else {
        return Err(err("msg_iov must be an array"));
    };
    let mut total = 0;
    for it in items {
        match it {
            Expr::Struct(f) => {
                let len = f
                    .iter()
                    .filter(|x| x.name.is_none() || x.name.as_deref() == Some("iov_len"))
                    .filter_map(|x| eval_int(&x.value).ok())
                    .next_back()
                    .ok_or_else(|| err("iovec without a length"))?;
                total += len;
            }
            _ => return Err(err("msg_iov entries must be {..., len}")),
        }
    }
    Ok(total)
}
