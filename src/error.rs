//! The pool's errors: why a task produced no value ([`TaskError`]), why a pool could not be
//! built ([`BuildError`]), and why a wait on several tasks gave up ([`TimeoutError`]).

use std::any::Any;
use std::fmt;

/// Why a task produced no value. Returned by [`TaskHandle::join`](crate::TaskHandle::join) and
/// friends.
///
/// It is `Clone` and `Eq` so that it can be shared the way Python shares an exception between
/// everyone who calls `future.result()`, and compared in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The task was cancelled before it started (see
    /// [`TaskHandle::cancel`](crate::TaskHandle::cancel),
    /// [`Executor::cancel_pending`](crate::Executor::cancel_pending)). Python's `CancelledError`.
    Cancelled,
    /// The task panicked; the string is the panic message (`Box<dyn Any>` when the payload was
    /// neither a `&str` nor a `String`). Python's "exception raised in fn".
    Panicked(String),
    /// A timed wait ran out first; the task itself keeps running. Python's `TimeoutError`.
    Timeout,
    /// A worker's initializer failed, so the pool runs no more tasks. The string says why.
    /// Python's `BrokenThreadPool`.
    BrokenPool(String),
    /// Waiting would never end: the wait would close a cycle of threads waiting on each other, or
    /// the task is queued on a pool whose every worker is blocked for good. The string names the
    /// chain. Python has no such error: its programs hang instead.
    Deadlock(String),
    /// The pool had no thread at all, needed one for this task, and the system refused to start
    /// it (the string says why); the task did not run. (A pool that has threads queues the task
    /// for them instead.) Python's `submit` raises `RuntimeError("can't start new thread")`.
    Spawn(String),
    /// The [`Completer`](crate::Completer) of a [`TaskHandle::pending`](crate::TaskHandle::pending)
    /// handle was dropped without setting a result. Python's bare `Future()` would wait forever.
    Abandoned,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("task was cancelled"),
            TaskError::Panicked(msg) => write!(f, "task panicked: {msg}"),
            TaskError::Timeout => f.write_str("timed out waiting for the task"),
            TaskError::BrokenPool(why) => write!(f, "broken pool: {why}"),
            TaskError::Deadlock(chain) => write!(f, "deadlock: {chain}"),
            TaskError::Spawn(why) => write!(f, "could not start a worker thread: {why}"),
            TaskError::Abandoned => f.write_str("task was abandoned without a result"),
        }
    }
}

impl std::error::Error for TaskError {}

/// Why [`Builder::build`](crate::Builder::build) could not make a pool.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `num_threads(0)`: Python raises `ValueError("max_workers must be greater than 0")`.
    ZeroWorkers,
    /// `queue_bound(0)`: a queue that can hold nothing would block every submit.
    ZeroQueueBound,
    /// The thread name prefix holds a NUL byte, which no thread name may.
    NulInName,
    /// The rayon backend could not be built.
    #[cfg(feature = "rayon")]
    Rayon(rayon::ThreadPoolBuildError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => f.write_str("max_workers must be greater than 0"),
            BuildError::ZeroQueueBound => f.write_str("queue bound must be greater than 0"),
            BuildError::NulInName => f.write_str("thread name prefix contains a NUL byte"),
            #[cfg(feature = "rayon")]
            // The cause is the source, not repeated here: `{:#}` chains show it once.
            BuildError::Rayon(_) => f.write_str("could not build the rayon pool"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "rayon")]
            BuildError::Rayon(e) => Some(e),
            _ => None,
        }
    }
}

/// A wait on several tasks ran out of time: Python's `TimeoutError` from `as_completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutError {
    /// How many tasks had not finished.
    pub unfinished: usize,
    /// How many tasks were waited on in all.
    pub total: usize,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Python: "%d (of %d) futures unfinished".
        write!(
            f,
            "{} (of {}) tasks unfinished",
            self.unfinished, self.total
        )
    }
}

impl std::error::Error for TimeoutError {}

/// A [`Completer`](crate::Completer) was asked to set a result on a task that already has one
/// (or was cancelled): Python's `InvalidStateError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidState;

impl fmt::Display for InvalidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the task is already finished or cancelled")
    }
}

impl std::error::Error for InvalidState {}

/// [`Executor::map_buffered`](crate::Executor::map_buffered) was given a buffer size of 0:
/// Python's `ValueError("buffersize must be None or > 0")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroBufferSize;

impl fmt::Display for ZeroBufferSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("buffersize must be greater than 0")
    }
}

impl std::error::Error for ZeroBufferSize {}

/// The text of a panic payload, as the default panic hook would print it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_message_reads_str_string_and_other_payloads() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert_eq!(panic_message(&42_u8), "Box<dyn Any>");
    }

    #[test]
    fn display_is_lowercase_without_period() {
        for e in [
            TaskError::Cancelled,
            TaskError::Panicked("p".into()),
            TaskError::Timeout,
            TaskError::BrokenPool("b".into()),
            TaskError::Deadlock("d".into()),
            TaskError::Spawn("s".into()),
            TaskError::Abandoned,
        ] {
            let s = e.to_string();
            assert!(s.starts_with(|c: char| c.is_lowercase()), "{s}");
            assert!(!s.ends_with('.'), "{s}");
        }
    }
}
