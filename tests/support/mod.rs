//! Helpers for the executor tests: a time bound, and gates that make completion order
//! deterministic without sleeping.

#![allow(dead_code)] // each test file uses a different subset

use std::panic;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

/// Generous: the machine is shared and noisy. A deadlock fails the test after this instead of
/// stalling the suite.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// Runs `f` on its own thread and returns its value, failing the test if it takes longer than
/// [`LIMIT`] (a hang) and re-raising its panic (a failed assertion inside).
pub(crate) fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let runner = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(value) => value,
        Err(RecvTimeoutError::Disconnected) => match runner.join() {
            Err(payload) => panic::resume_unwind(payload),
            Ok(()) => unreachable!("the runner sends before it returns"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("hung: still running after {LIMIT:?}"),
    }
}

/// A gate a task waits at until the test opens it (or drops it).
pub(crate) fn gate() -> (Sender<()>, Receiver<()>) {
    mpsc::channel()
}

/// `true` if `rx` receives within a short grace period. Used only to assert that something
/// has NOT happened yet (a blocked submit), never to wait for something to happen.
pub(crate) fn arrives_soon<T>(rx: &Receiver<T>) -> bool {
    rx.recv_timeout(Duration::from_millis(200)).is_ok()
}
