//! Where the bytes of an idle connection go: `size_of` of the connection and of the parts whose
//! types are public (the rest of the TCB is scalars and options).

use std::mem::size_of;

use synack::tcp;

/// (part, bytes) for the connection and its larger public components.
pub fn parts() -> Vec<(&'static str, usize)> {
    vec![
        ("tcp::Connection (whole TCB)", size_of::<tcp::Connection>()),
        (
            "  send_buf + recv_buf: 2 x buffer::RingBuffer",
            2 * size_of::<tcp::buffer::RingBuffer>(),
        ),
        (
            "  assembler: reassembly::Assembler",
            size_of::<tcp::reassembly::Assembler>(),
        ),
        (
            "  sack_rec: sack::SackRecorder",
            size_of::<tcp::sack::SackRecorder>(),
        ),
        (
            "  rtt: rtt::RttEstimator",
            size_of::<tcp::rtt::RttEstimator>(),
        ),
        (
            "  sampler: rtt::RttSampler",
            size_of::<tcp::rtt::RttSampler>(),
        ),
        (
            "  delack: delack::DelayedAck",
            size_of::<tcp::delack::DelayedAck>(),
        ),
        (
            "  info: connection::Info",
            size_of::<tcp::connection::Info>(),
        ),
        (
            "  events + record_ends: 2 x VecDeque (empty: no heap)",
            2 * size_of::<std::collections::VecDeque<u8>>(),
        ),
        (
            "  cfg: Arc<Config> (shared, pointer only)",
            size_of::<std::sync::Arc<tcp::Config>>(),
        ),
        (
            "  cc: Box<dyn CongestionControl> (pointer)",
            2 * size_of::<usize>(),
        ),
        (
            "  + heap: congestion::new_reno::NewReno",
            size_of::<tcp::congestion::new_reno::NewReno>(),
        ),
    ]
}
