//! Interruption: the first Ctrl-C cancels the queued tasks and tells the run loop, which
//! reports every submitted line and ends; a second one quits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use fetchall::Executor;

use crate::dispatch::Event;
use crate::progress::StatusLine;

/// SIGINT's number: the run exits with 128 + it.
pub(crate) const SIGINT: i32 = 2;

/// Installs the Ctrl-C handler: it cancels what `executor` has queued and sends
/// [`Event::Interrupted`] to the run loop on `events`. `stderr` is wiped before a second
/// Ctrl-C exits.
pub(crate) fn install<E>(executor: Arc<E>, events: Sender<Event>, stderr: StatusLine)
where
    E: Executor + Send + 'static,
{
    let pressed = AtomicBool::new(false);
    let installed = ctrlc::set_handler(move || {
        if pressed.swap(true, Ordering::SeqCst) {
            // Leave the shell a clean line; `exit` runs no destructor that would.
            stderr.try_clear();
            std::process::exit(128 + SIGINT);
        }
        tracing::warn!("interrupted: stopping (press Ctrl-C again to quit at once)");
        // The loop may be gone already (the run is ending): nothing to tell it then.
        let _ = events.send(Event::Interrupted(SIGINT));
        // Unblocks a submit waiting on a full queue, and spares the queued URLs.
        executor.cancel_pending();
    });
    if let Err(e) = installed {
        tracing::warn!("Ctrl-C will stop the program without a report: {e}");
    }
}
