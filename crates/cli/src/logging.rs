//! The binary's logs: `tracing` events from the library and the binary, on stderr.

use std::fmt;
use std::io::{self, IsTerminal};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

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
        // Without -v a warning is one of the program's own messages, worded as the others are.
        // Timestamps, levels and module paths are for the -v trail, where they tell the URLs'
        // timeline apart.
        logs.event_format(Message).init();
    } else {
        logs.init();
    }
}

/// Formats an event as `fetchall: warning: MESSAGE`, as the binary's other messages read.
struct Message;

impl<S, N> FormatEvent<S, N> for Message
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "fetchall: {}: ", label(*event.metadata().level()))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The word a message of `level` starts with.
fn label(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "note",
        Level::DEBUG | Level::TRACE => "debug",
    }
}
