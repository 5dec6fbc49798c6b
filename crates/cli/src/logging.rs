//! The binary's logs: `tracing` events from the library and the binary, on stderr.

use std::io::{self, IsTerminal};

use tracing_subscriber::EnvFilter;

use crate::progress::StatusLine;

/// Logs go to stderr, through `stderr` so that they never land on the progress line: warnings
/// by default, each URL's trail with `-v`, everything with `-vv`; `RUST_LOG` wins over both.
pub(crate) fn init(verbose: u8, stderr: StatusLine) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,fetchall=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(stderr)
        .with_ansi(io::stderr().is_terminal());
    if verbose == 0 {
        // A warning reads like any command-line tool's: `WARN interrupted: ...`. Timestamps and
        // module paths are for the -v trail, where they tell the URLs' timeline apart.
        logs.without_time().with_target(false).init();
    } else {
        logs.init();
    }
}
