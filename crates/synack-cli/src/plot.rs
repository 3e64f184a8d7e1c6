//! Pictures: the ladder diagram that `--svg FILE` writes on `demo`, `sim`, `serve`, `connect`
//! and `lab`.

use std::io;
use std::net::SocketAddr;

use synack::trace::ladder::Ladder;
use synack::trace::{TraceEvent, TraceSink, flow};

/// Keeps the trace events of the first TCP conversation (its packets, both hosts' state
/// changes for it, and every note and drop while it lasts), so that a long-running `serve`
/// keeps one connection in memory, not all of them.
#[derive(Debug, Default)]
pub struct Recorder {
    first: Option<(SocketAddr, SocketAddr)>,
    over: bool,
    pub events: Vec<TraceEvent>,
}

impl Recorder {
    fn belongs(&self, a: SocketAddr, b: SocketAddr) -> bool {
        self.first
            .is_some_and(|(x, y)| (a, b) == (x, y) || (a, b) == (y, x))
    }
}

impl TraceSink for Recorder {
    fn event(&mut self, e: &TraceEvent) {
        if self.over {
            return;
        }
        let keep = match e {
            TraceEvent::Packet { bytes, .. } => match flow::endpoints(bytes) {
                Some((src, dst)) => {
                    if self.first.is_none() {
                        self.first = Some((src, dst));
                    }
                    self.belongs(src, dst)
                }
                None => false,
            },
            TraceEvent::State { local, remote, .. } => {
                let ours = self.belongs(*local, *remote) || self.first.is_none();
                if ours && self.first.is_none() {
                    self.first = Some((*local, *remote));
                }
                ours
            }
            TraceEvent::Drop { .. } | TraceEvent::Note { .. } => self.first.is_some(),
        };
        if keep {
            self.events.push(e.clone());
        }
        // Done once the conversation closes on the side that closes last.
        if let TraceEvent::State {
            to, local, remote, ..
        } = e
        {
            if *to == synack::tcp::State::Closed && self.belongs(*local, *remote) {
                self.over = true;
            }
        }
    }
}

/// Draws the ladder of the first TCP conversation in `events` to `path`, with `title` above
/// it; `rename` may adjust the lanes. Says where it went, on stderr when `stderr` (stdout
/// may carry data), else on stdout.
pub fn write_ladder(
    events: &[TraceEvent],
    path: &str,
    title: &str,
    rename: impl FnOnce(&mut Ladder),
    stderr: bool,
) -> io::Result<()> {
    let mut ladder = Ladder::from_trace(events, 0)
        .map_err(|e| io::Error::other(format!("--svg {path}: {e}")))?;
    ladder.title = Some(title.to_string());
    rename(&mut ladder);
    std::fs::write(path, ladder.to_svg())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {path}: {e}")))?;
    let msg = format!("wrote {path} (ladder diagram; open it in a browser)");
    if stderr {
        eprintln!("{msg}");
    } else {
        println!("{msg}");
    }
    Ok(())
}
