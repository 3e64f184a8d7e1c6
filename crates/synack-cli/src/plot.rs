//! Pictures: the ladder diagram that `--svg FILE` writes on `demo`, `sim`, `serve`, `connect`
//! and `lab`.

use std::io;

use synack::trace::TraceEvent;
use synack::trace::ladder::Ladder;

/// Draws the ladder of the first TCP conversation in `events` to `path`, with `title` above
/// it; says where it went (on stderr when `quiet_stdout`, else stdout) and, when the trace
/// holds more conversations, how to draw the others.
pub fn write_ladder(
    events: &[TraceEvent],
    path: &str,
    title: &str,
    rename: impl FnOnce(&mut Ladder),
    quiet_stdout: bool,
) -> io::Result<()> {
    let mut ladder = Ladder::from_trace(events, 0)
        .map_err(|e| io::Error::other(format!("--svg {path}: {e}")))?;
    ladder.title = Some(title.to_string());
    rename(&mut ladder);
    std::fs::write(path, ladder.to_svg())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {path}: {e}")))?;
    let more = match Ladder::from_trace(events, 1) {
        Ok(_) => {
            " (the first connection; --pcap and `synack plot --kind ladder --flow N` draw the others)"
        }
        Err(_) => "",
    };
    let msg = format!("wrote {path} (ladder diagram; open it in a browser){more}");
    if quiet_stdout {
        eprintln!("{msg}");
    } else {
        println!("{msg}");
    }
    Ok(())
}
