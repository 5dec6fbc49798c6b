//! Task handles: what [`submit`](crate::Executor::submit) returns, Python's `Future`. The state
//! behind a handle lives in [`task`](crate::task); this file is the public face of it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{InvalidState, TaskError};
use crate::graph::PoolInfo;
use crate::sync::{Notifier, deadline_after};
use crate::task::{JobRef, State, Task, Until};

/// A handle to a submitted task: Python's `concurrent.futures.Future`.
///
/// Get the result with [`join`](Self::join) (Python's `f.result()`), or with a time limit with
/// [`join_timeout`](Self::join_timeout); ask [`is_finished`](Self::is_finished),
/// [`is_running`](Self::is_running) and [`is_cancelled`](Self::is_cancelled); stop a task that
/// has not started with [`cancel`](Self::cancel); and run code when it finishes with
/// [`add_done_callback`](Self::add_done_callback). Dropping a handle detaches the task: it
/// still runs.
///
/// # Examples
///
/// ```
/// use fetchall::{Executor, ThreadPool};
///
/// let pool = ThreadPool::new(2);
/// let handle = pool.submit(|| 6 * 7);
/// assert_eq!(handle.join(), Ok(42));
/// ```
#[doc(alias = "Future")]
pub struct TaskHandle<T> {
    task: Arc<Task<T>>,
}

impl<T: Send + 'static> TaskHandle<T> {
    /// A handle that no executor runs: the caller completes it by hand through the
    /// [`Completer`]. Python's bare `Future()`, for adapting a callback API into something
    /// [`as_completed`](crate::as_completed) and [`wait`](crate::wait) can take along with pool
    /// handles.
    ///
    /// The handle is [`is_cancelled`](Self::is_cancelled) after [`cancel`](Self::cancel), which
    /// succeeds until the completer calls
    /// [`set_running_or_notify_cancel`](Completer::set_running_or_notify_cancel) or sets a
    /// result. Dropping the completer without a result resolves the handle to
    /// [`TaskError::Abandoned`], so nothing waits for ever on a forgotten promise (where Python
    /// would).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::thread;
    /// use fetchall::{as_completed, Executor, InvalidState, TaskHandle, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (completer, by_hand) = TaskHandle::pending();
    /// // A callback API, say, that calls back on a thread of its own.
    /// let callback = thread::spawn(move || {
    ///     completer.set_result(2).unwrap();
    ///     assert_eq!(completer.set_result(3), Err(InvalidState));
    /// });
    /// let handles = vec![by_hand, pool.submit(|| 1)];
    /// let mut values: Vec<i32> = as_completed(handles).map(|h| h.join().unwrap()).collect();
    /// values.sort();
    /// assert_eq!(values, [1, 2]);
    /// callback.join().unwrap();
    /// ```
    #[doc(alias = "Future")]
    pub fn pending() -> (Completer<T>, TaskHandle<T>) {
        let task = Task::pending();
        (Completer { task: task.clone() }, TaskHandle { task })
    }

    /// A queued task running `f`, its handle, and the queue entry that runs it.
    pub(crate) fn queued<F>(f: F, pool: Option<Arc<PoolInfo>>) -> (TaskHandle<T>, JobRef)
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let (task, job) = Task::create(f, pool);
        (TaskHandle { task }, job)
    }
}

impl<T: Send + 'static> TaskHandle<T> {
    /// Waits for the task and returns its value: Python's `future.result()`.
    ///
    /// A worker thread that waits on a task of its own pool that has not started yet runs it
    /// itself instead of waiting, so a one-worker pool whose task submits and waits on another
    /// task finishes (Python's `wait_on_future` example hangs).
    ///
    /// # Errors
    ///
    /// [`TaskError::Cancelled`] if it was cancelled, [`TaskError::Panicked`] if it panicked,
    /// [`TaskError::BrokenPool`] if its pool broke first, and [`TaskError::Deadlock`] if the wait
    /// could never end (the task waits, directly or through others, on this very thread).
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::{Executor, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let fails = pool.submit(|| -> u32 { panic!("boom") });
    /// assert_eq!(fails.join(), Err(TaskError::Panicked("boom".into())));
    /// ```
    #[doc(alias = "result")]
    pub fn join(self) -> Result<T, TaskError> {
        // The common case, a handle from `as_completed`, is settled: one lock, no wait.
        if let Some(result) = self.task.take_if_settled() {
            return result;
        }
        self.task.wait(None, Until::Settled)?;
        self.task.take()
    }

    /// Like [`join`](Self::join), but gives up after `timeout`: Python's `future.result(timeout)`.
    ///
    /// # Errors
    ///
    /// [`TaskError::Timeout`] if the task did not finish in time. The task keeps running, but
    /// the handle is gone; to wait again later, use [`wait_timeout`](Self::wait_timeout) and
    /// then `join`. Otherwise as [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use fetchall::{Executor, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (release, gate) = mpsc::channel::<()>();
    /// let blocked = pool.submit(move || gate.recv().is_ok());
    /// assert_eq!(blocked.join_timeout(Duration::from_millis(10)), Err(TaskError::Timeout));
    /// release.send(()).unwrap();
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<T, TaskError> {
        self.task
            .wait(Some(deadline_after(timeout)), Until::Settled)?;
        self.task.take()
    }

    /// Waits up to `timeout` for the task to finish; `true` if it did. Python's
    /// `concurrent.futures.wait([f], timeout)` for one future.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.task
            .wait(Some(deadline_after(timeout)), Until::Finished)
            .is_ok()
    }

    /// Waits for the task and returns a clone of its value, leaving it in place: Python's
    /// `future.result()` where several threads share the future.
    ///
    /// Takes `&self`, so a handle shared between tasks (through an `Arc` or a `OnceLock`) can be
    /// waited on by all of them, and a done-callback can read the value.
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let handle = pool.submit(|| String::from("shared"));
    /// assert_eq!(handle.result().as_deref(), Ok("shared"));
    /// assert_eq!(handle.join().as_deref(), Ok("shared"));
    /// ```
    pub fn result(&self) -> Result<T, TaskError>
    where
        T: Clone,
    {
        self.task.wait(None, Until::Finished)?;
        match &self.task.lock().state {
            State::Finished(result) => result.clone(),
            // `wait` returned, so the task is finished, and `Taken` needs `join(self)`.
            _ => unreachable!("result of a task that was not finished"),
        }
    }

    /// Runs `callback` with this handle when the task finishes: Python's
    /// `future.add_done_callback(fn)`.
    ///
    /// It runs on the thread that finishes the task, before [`join`](Self::join) returns, or at
    /// once on this thread if the task is already finished. A callback that panics is caught and
    /// logged (through `tracing`), as Python logs an exception raised by a callback.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use fetchall::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let handle = pool.submit(|| 7);
    /// handle.add_done_callback(move |h| tx.send(h.result()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), Ok(7));
    /// ```
    pub fn add_done_callback<F>(&self, callback: F)
    where
        F: FnOnce(&TaskHandle<T>) + Send + 'static,
    {
        self.task.add_callback(Box::new(move |task: &Arc<Task<T>>| {
            callback(&TaskHandle { task: task.clone() });
        }));
    }
}

impl<T> TaskHandle<T> {
    /// Cancels the task if it has not started: Python's `future.cancel()`.
    ///
    /// Returns `true` if the task is now cancelled (by this call or an earlier one), `false` if
    /// it is running or finished. A cancelled task's handle resolves to
    /// [`TaskError::Cancelled`], and its closure is dropped without running.
    ///
    /// Differs from CPython on purpose: the task counts as done at once, for
    /// [`as_completed`](crate::as_completed), [`wait`](crate::wait) and done-callbacks alike.
    /// CPython marks the future `CANCELLED` but tells `as_completed` and `wait` only once a
    /// worker reaches it in the queue (`CANCELLED_AND_NOTIFIED`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use fetchall::{Executor, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (release, gate) = mpsc::channel::<()>();
    /// let (started_tx, started) = mpsc::channel();
    /// let busy = pool.submit(move || { started_tx.send(()).unwrap(); gate.recv().is_ok() });
    /// started.recv().unwrap();
    /// let queued = pool.submit(|| 1);
    /// assert!(queued.cancel());
    /// assert!(!busy.cancel());
    /// release.send(()).unwrap();
    /// assert_eq!(queued.join(), Err(TaskError::Cancelled));
    /// ```
    pub fn cancel(&self) -> bool {
        self.task.resolve_if_queued(TaskError::Cancelled) || self.is_cancelled()
    }

    /// A number that identifies the task in logs and deadlock reports.
    pub fn id(&self) -> u64 {
        self.task.id
    }

    /// `true` once the task has finished, failed or been cancelled: Python's `future.done()`.
    #[doc(alias = "done")]
    pub fn is_finished(&self) -> bool {
        self.task.lock().is_finished()
    }

    /// `true` while a thread is running the task: Python's `future.running()`.
    #[doc(alias = "running")]
    pub fn is_running(&self) -> bool {
        matches!(self.task.lock().state, State::Running { .. })
    }

    /// `true` if the task was cancelled: Python's `future.cancelled()`.
    #[doc(alias = "cancelled")]
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self.task.lock().state,
            State::Finished(Err(TaskError::Cancelled))
        )
    }

    /// `true` if the task finished with an error other than cancellation (a panic, a broken
    /// pool, a deadlock): what `ReturnWhen::FirstException` waits for.
    pub(crate) fn is_failed(&self) -> bool {
        matches!(
            self.task.lock().state,
            State::Finished(Err(ref e)) if *e != TaskError::Cancelled
        )
    }

    /// Pushes `slot` to `notifier` once the task is settled (at once if it is).
    pub(crate) fn add_listener(&self, notifier: Arc<Notifier>, slot: usize) {
        self.task.add_listener(notifier, slot);
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.task.lock().state {
            State::Queued(_) => "queued",
            State::Pending => "pending",
            State::Running { .. } => "running",
            State::Finished(Ok(_)) => "finished",
            State::Finished(Err(TaskError::Cancelled)) => "cancelled",
            State::Finished(Err(_)) => "failed",
            State::Taken => "taken",
        };
        f.debug_struct("TaskHandle")
            .field("id", &self.task.id)
            .field("state", &state)
            .finish()
    }
}

/// The completing side of a [`TaskHandle::pending`] handle: Python's `Future.set_result`,
/// `set_exception` and `set_running_or_notify_cancel`, for the code that produces the value.
///
/// Methods take `&self`, so a callback API that wants a shared `Fn` can hold it in an `Arc`.
/// Dropping the last one without a result resolves the handle to [`TaskError::Abandoned`].
pub struct Completer<T> {
    task: Arc<Task<T>>,
}

impl<T> Completer<T> {
    /// Completes the handle with `value`: Python's `future.set_result(value)`.
    ///
    /// # Errors
    ///
    /// [`InvalidState`] if the handle already has a result or was cancelled, as Python raises
    /// `InvalidStateError`; `value` is dropped then.
    pub fn set_result(&self, value: T) -> Result<(), InvalidState> {
        self.task.complete(Ok(value))
    }

    /// Completes the handle with `error`: Python's `future.set_exception(exc)`. For errors of
    /// your own, a `T` that is a `Result` is usually clearer.
    ///
    /// # Errors
    ///
    /// [`InvalidState`], as [`set_result`](Self::set_result).
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::{TaskError, TaskHandle};
    ///
    /// let (completer, handle) = TaskHandle::<u8>::pending();
    /// completer.set_error(TaskError::Panicked("no route".into()))?;
    /// assert_eq!(handle.join(), Err(TaskError::Panicked("no route".into())));
    /// # Ok::<(), fetchall::InvalidState>(())
    /// ```
    #[doc(alias = "set_exception")]
    pub fn set_error(&self, error: TaskError) -> Result<(), InvalidState> {
        self.task.complete(Err(error))
    }

    /// Marks the handle running, so that [`TaskHandle::cancel`] no longer succeeds: Python's
    /// `future.set_running_or_notify_cancel()`. `Ok(true)` if it is now running, `Ok(false)` if
    /// it was cancelled first (then do not start the work).
    ///
    /// # Errors
    ///
    /// [`InvalidState`] if it is already running or has a result (Python raises
    /// `RuntimeError`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::TaskHandle;
    ///
    /// let (completer, handle) = TaskHandle::<u8>::pending();
    /// assert_eq!(completer.set_running_or_notify_cancel(), Ok(true));
    /// assert!(handle.is_running() && !handle.cancel());
    /// completer.set_result(1)?;
    /// assert_eq!(handle.join(), Ok(1));
    /// # Ok::<(), fetchall::InvalidState>(())
    /// ```
    pub fn set_running_or_notify_cancel(&self) -> Result<bool, InvalidState> {
        self.task.mark_running()
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        // Err means it has its result already, which is the usual case.
        let _ = self.task.complete(Err(TaskError::Abandoned));
    }
}

impl<T> fmt::Debug for Completer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer")
            .field("task", &self.task.id)
            .finish_non_exhaustive()
    }
}
