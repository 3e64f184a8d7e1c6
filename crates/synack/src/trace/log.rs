//! Trace events into the `tracing` ecosystem (feature `tracing`, on by default).
//!
//! [`TracingSink`] renders each event with a [`Renderer`] and emits the line as a `tracing`
//! event with target `synack`: packets at TRACE, state changes, drops and notes at DEBUG. Hand
//! it to a runtime with `Runtime::builder().trace(TracingSink::new(TraceLevel::All))`, and a
//! subscriber such as `tracing-subscriber` with `RUST_LOG=synack=trace` shows the conversation.

use super::render::Renderer;
use super::{TraceEvent, TraceLevel, TraceSink};

/// Forwards trace events to `tracing` as rendered lines.
#[derive(Debug)]
pub struct TracingSink {
    renderer: Renderer,
}

impl TracingSink {
    /// A sink that forwards what `level` admits.
    pub fn new(level: TraceLevel) -> TracingSink {
        TracingSink {
            renderer: Renderer::new(level),
        }
    }

    /// The renderer, to register host names (`renderer_mut().name(addr, "client")`).
    pub fn renderer_mut(&mut self) -> &mut Renderer {
        &mut self.renderer
    }
}

impl TraceSink for TracingSink {
    fn event(&mut self, e: &TraceEvent) {
        let packet = matches!(e, TraceEvent::Packet { .. });
        for line in self.renderer.push(e) {
            if packet {
                tracing::trace!(target: "synack", "{line}");
            } else {
                tracing::debug!(target: "synack", "{line}");
            }
        }
    }
}

impl Drop for TracingSink {
    fn drop(&mut self) {
        for line in self.renderer.finish() {
            tracing::debug!(target: "synack", "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// A minimal subscriber that keeps every event's message and target.
    struct Collect(Arc<Mutex<Vec<(String, String)>>>);

    struct Message(String);

    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn core::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    impl Subscriber for Collect {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut m = Message(String::new());
            event.record(&mut m);
            self.0
                .lock()
                .unwrap()
                .push((event.metadata().target().to_string(), m.0));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn events_reach_tracing_as_rendered_lines() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sub = Collect(seen.clone());
        tracing::subscriber::with_default(sub, || {
            let mut sink = TracingSink::new(TraceLevel::All);
            sink.event(&TraceEvent::Note {
                time: crate::time::Instant::from_millis(1500),
                node: "client".into(),
                text: "RTO fired".into(),
            });
            sink.event(&TraceEvent::Drop {
                time: crate::time::Instant::from_millis(1600),
                node: "server".into(),
                reason: "no listener",
                bytes: None,
            });
            drop(sink);
        });
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen,
            [
                (
                    "synack".to_string(),
                    "1.500000 client NOTE RTO fired".to_string()
                ),
                (
                    "synack".to_string(),
                    "1.600000 server DROP no listener".to_string()
                ),
            ]
        );
    }
}
