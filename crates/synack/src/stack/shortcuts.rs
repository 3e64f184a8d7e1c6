//! The stack's own shortcuts around its general paths, each proven by
//! `tests/shortcuts.rs`: a write or a read on an open connection that reports it changed
//! without the refresh's deadline check ([`Shortcut::Write`], [`Shortcut::Read`]), and the
//! IPv4 header of a packet that is not a fragment written at fixed offsets
//! ([`Shortcut::Ipv4Header`]). Outside tests they are always taken when they apply; in
//! tests a per-thread switch turns them all off, so that the same run can go through the
//! general paths and be compared, and each one taken is counted, so that a comparison that
//! never took one cannot pass.

/// One of the shortcuts (the index of its count).
#[derive(Debug, Clone, Copy)]
pub(super) enum Shortcut {
    /// `Stack::send`/`send_with`: no refresh after a write (`data_call`).
    Write = 0,
    /// `Stack::recv`: no refresh after a read (`data_call`).
    Read = 1,
    /// `Stack::emit_ip` and a segment's `emit_segment_ip`: the fixed-offset IPv4 header
    /// (`emit_ipv4_fixed`, `egress::ipv4_header`).
    Ipv4Header = 2,
}

#[cfg(test)]
std::thread_local! {
    static ON: core::cell::Cell<bool> = const { core::cell::Cell::new(true) };
    static TAKEN: core::cell::Cell<[u64; 3]> = const { core::cell::Cell::new([0; 3]) };
}

/// Tests only: turns the shortcuts on or off for the stacks this thread drives; returns how
/// many times this thread took each so far (indexed by [`Shortcut`]).
#[cfg(test)]
pub(crate) fn set_shortcuts(on: bool) -> [u64; 3] {
    ON.with(|c| c.set(on));
    TAKEN.with(|c| c.get())
}

/// Whether the shortcuts are on (always, outside tests).
#[inline(always)]
pub(super) fn on() -> bool {
    #[cfg(test)]
    return ON.with(|c| c.get());
    #[cfg(not(test))]
    true
}

/// Counts a shortcut taken (tests only; nothing outside them).
#[inline(always)]
pub(super) fn taken(s: Shortcut) {
    #[cfg(test)]
    TAKEN.with(|c| {
        let mut t = c.get();
        t[s as usize] += 1;
        c.set(t);
    });
    #[cfg(not(test))]
    let _ = s;
}
