//! Writing to stdout when stdout may be a closed pipe.
//!
//! `synack sim | head -3` closes the pipe after three lines. Rust ignores SIGPIPE, so the next
//! `println!` would panic with "failed printing to stdout". [`outln!`] and [`out!`] end the
//! program quietly instead, with status 0, as a command that the shell's SIGPIPE stopped has
//! nothing left to say. Any other write error is reported on stderr with status 1.

use std::io;
use std::process;

/// `println!` to stdout that ends the program quietly when the reader has gone.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::out::stdout_failed(e);
        }
    }};
}

/// `print!` to stdout that ends the program quietly when the reader has gone.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            $crate::out::stdout_failed(e);
        }
    }};
}

/// Ends the program after a failed write to stdout: quietly when the reader closed the pipe.
pub(crate) fn stdout_failed(e: io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        process::exit(0);
    }
    eprintln!("error: writing to stdout: {e}");
    process::exit(1);
}
