//! The signals a run listens to. Interruption: the first SIGINT (Ctrl-C), SIGTERM (`timeout`,
//! systemd, docker, Kubernetes, a cancelled CI job) or SIGHUP (a closed terminal) tells the run
//! loop, which cancels the queued tasks, reports every submitted line, prints the summary and
//! exits with 128 + the signal's number; a second one quits at once.
//!
//! The signals are caught by `signal-hook`, whose handler only writes to a pipe; a thread of
//! ours reads it and does the rest, outside the signal handler. `ctrlc` with its `termination`
//! feature would catch all three too, but calls one handler without saying which signal came,
//! and the exit status must say it.
//!
//! And SIGWINCH, for the progress line: a resized terminal gets the line redrawn at its new
//! width at once ([`watch_resizes`]).

use std::sync::mpsc::Sender;
use std::thread;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
use signal_hook::iterator::Signals;

use crate::dispatch::Event;
use crate::progress::StatusLine;

/// The signals that stop a run cleanly.
pub(crate) const STOPPING: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// Catches [`STOPPING`]. At the first, sends [`Event::Interrupted`] to the run loop on
/// `events`; at a second, wipes the progress line on `stderr` and exits with 128 + its number.
/// Without the handler (it could not be installed), a signal ends the program as if there were
/// none, and a warning says so.
///
/// The handler holds no executor: the loop cancels the queue itself when the event comes. It
/// never waits long in a submit (see [`crate::dispatch`]), so the event is seen at once.
pub(crate) fn install(events: Sender<Event>, stderr: StatusLine) {
    let mut signals = match Signals::new(STOPPING) {
        Ok(signals) => signals,
        Err(e) => {
            tracing::warn!("signals will stop the program without a report: {e}");
            return;
        }
    };
    let spawned = thread::Builder::new()
        .name("fetchall-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                if stopping {
                    // Leave the shell a clean line; `exit` runs no destructor that would.
                    stderr.try_clear();
                    std::process::exit(128 + signal);
                }
                stopping = true;
                tracing::warn!("{}", stopping_message(signal));
                // The loop may be gone already (the run is ending): nothing to tell it then.
                let _ = events.send(Event::Interrupted(signal));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("signals will stop the program without a report: {e}");
    }
}

/// Sends [`Event::Resized`] to the run loop on `events` each time the terminal is resized
/// (SIGWINCH), so that the progress line is redrawn at the new width at once. Without it (it
/// could not be installed) the line is redrawn at the new width when its counts next change.
pub(crate) fn watch_resizes(events: Sender<Event>) {
    let Ok(mut signals) = Signals::new([SIGWINCH]) else {
        return;
    };
    let _ = thread::Builder::new()
        .name("fetchall-resize".into())
        .spawn(move || {
            for _ in signals.forever() {
                if events.send(Event::Resized).is_err() {
                    return;
                }
            }
        });
}

/// The warning at the first signal.
fn stopping_message(signal: i32) -> &'static str {
    match signal {
        SIGINT => "interrupted: stopping (press Ctrl-C again to quit at once)",
        SIGTERM => "terminated: stopping (a second signal quits at once)",
        _ => "hung up: stopping (a second signal quits at once)",
    }
}
