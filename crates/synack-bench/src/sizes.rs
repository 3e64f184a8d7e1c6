//! Where the bytes of an idle connection go: `size_of` of the connection and of its parts, and
//! what each part allocated on first use costs once something needs it (the TCB itemises
//! itself in `synack::tcp::connection::layout`; congestion control is a box of its own).

use std::mem::size_of;

use synack::tcp;

/// (part, bytes) for the connection, its parts, and the boxes it allocates.
pub fn parts() -> Vec<(&'static str, usize)> {
    let mut parts = tcp::connection::layout();
    parts.push(("heap always (the congestion controller's box):", 0));
    parts.push((
        "  congestion::cubic::Cubic (the default)",
        size_of::<tcp::congestion::cubic::Cubic>(),
    ));
    parts.push((
        "  or congestion::new_reno::NewReno",
        size_of::<tcp::congestion::new_reno::NewReno>(),
    ));
    parts.push((
        "a closed connection in TIME-WAIT, as a compact entry (its slot freed):",
        synack::stack::TIME_WAIT_ENTRY_SIZE,
    ));
    parts
}
