//! Task handles: what [`submit`](crate::Executor::submit) returns, Python's `Future`.
//!
//! A task is a small state machine behind one `Mutex` + `Condvar`:
//! `Queued(job) -> Running -> Finished(result) -> Taken`, or `Queued -> Finished(Cancelled)`.
//! Whoever moves it out of `Queued` first owns the job: the worker that dequeues it, a worker of
//! the same pool that waits on it and runs it itself (see [`TaskHandle::join`]), or
//! [`TaskHandle::cancel`]. The queue only carries references to tasks, so a task that was claimed
//! elsewhere is skipped when its queue entry comes up.

use std::any::Any;
use std::fmt;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::graph::{self, NodeStatus, PoolInfo, WaitNode};
use crate::wait::Notifier;

/// The boxed closure a task runs.
type Job<T> = Box<dyn FnOnce() -> T + Send + 'static>;

/// A callback registered with [`TaskHandle::add_done_callback`].
type UserCallback<T> = Box<dyn FnOnce(&TaskHandle<T>) + Send + 'static>;

/// Why a task produced no value. Returned by [`TaskHandle::join`] and friends.
///
/// It is `Clone` and `Eq` so that it can be shared the way Python shares an exception between
/// everyone who calls `future.result()`, and compared in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The task was cancelled before it started (see [`TaskHandle::cancel`],
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
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("task was cancelled"),
            TaskError::Panicked(msg) => write!(f, "task panicked: {msg}"),
            TaskError::Timeout => f.write_str("timed out waiting for the task"),
            TaskError::BrokenPool(why) => write!(f, "broken pool: {why}"),
            TaskError::Deadlock(chain) => write!(f, "deadlock: {chain}"),
        }
    }
}

impl std::error::Error for TaskError {}

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

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

enum State<T> {
    Queued(Job<T>),
    Running {
        runner: u64,
    },
    Finished(Result<T, TaskError>),
    /// `join` moved the value out; only reachable after the last handle is gone.
    Taken,
}

struct Inner<T> {
    state: State<T>,
    /// Done-callbacks still to run; taken when the task finishes.
    callbacks: Vec<UserCallback<T>>,
    /// `as_completed` / `wait` listeners, told when the task finishes.
    listeners: Listeners,
    /// Finished and every done-callback has returned. `join` waits for this, so that a callback
    /// that reads [`TaskHandle::result`] never races with `join` moving the value out.
    settled: bool,
    /// Threads blocked on `cond`; `settle` only pays for a futex wake when this is non-zero.
    waiters: usize,
}

impl<T> Inner<T> {
    fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_) | State::Taken)
    }
}

/// (queue, slot) pairs to tell when a task finishes. Nearly always one (the `as_completed` the
/// handle is in), kept inline so that it costs no allocation per task.
#[derive(Default)]
struct Listeners {
    first: Option<(Arc<Notifier>, usize)>,
    rest: Vec<(Arc<Notifier>, usize)>,
}

impl Listeners {
    fn push(&mut self, listener: (Arc<Notifier>, usize)) {
        if self.first.is_none() {
            self.first = Some(listener);
        } else {
            self.rest.push(listener);
        }
    }
}

/// The shared half of a task: owned by its handle, its queue entry and its listeners.
pub(crate) struct Task<T> {
    id: u64,
    pool: Option<Arc<PoolInfo>>,
    inner: Mutex<Inner<T>>,
    cond: Condvar,
}

impl<T: Send + 'static> Task<T> {
    /// Makes a queued task, its handle, and the queue entry that runs it.
    pub(crate) fn create<F>(f: F, pool: Option<Arc<PoolInfo>>) -> (TaskHandle<T>, JobRef)
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let task = Arc::new(Task {
            id: NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed),
            pool,
            inner: Mutex::new(Inner {
                state: State::Queued(Box::new(f)),
                callbacks: Vec::new(),
                listeners: Listeners::default(),
                settled: false,
                waiters: 0,
            }),
            cond: Condvar::new(),
        });
        let job = JobRef(Some(task.clone()));
        (TaskHandle { task }, job)
    }

    /// Blocks until the task is finished (`settled == false`) or settled, or `deadline` passes.
    ///
    /// An untimed wait first tries to run the task itself (a worker waiting on a queued task of
    /// its own pool), then registers in the wait-for graph, which refuses a wait that can never
    /// end. Timed waits do neither: they end anyway, and a timed waiter counts as a free thread.
    fn wait(self: &Arc<Self>, deadline: Option<Instant>, settled: bool) -> Result<(), TaskError> {
        let done = |g: &Inner<T>| if settled { g.settled } else { g.is_finished() };
        if done(&self.lock()) {
            return Ok(());
        }
        let _registration = match deadline {
            Some(_) => None,
            None => {
                if let Some(job) = self.claim_for_helper() {
                    self.run_claimed(job);
                    return Ok(());
                }
                Some(graph::Registration::new(self.clone())?)
            }
        };
        let mut g = self.lock();
        g.waiters += 1;
        let mut outcome = Ok(());
        while !done(&g) {
            g = match deadline {
                None => self.cond.wait(g).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        outcome = Err(TaskError::Timeout);
                        break;
                    }
                    let (g, _) = self
                        .cond
                        .wait_timeout(g, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner);
                    g
                }
            };
        }
        g.waiters -= 1;
        outcome
    }
}

impl<T> Task<T> {
    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // No user code runs while this lock is held, so poisoning would be a fetchall bug; the
        // data is still consistent, so carry on rather than turning one bug into two.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the task from `Queued` to `Running` on the current thread, if nobody did first.
    fn claim(&self) -> Option<Job<T>> {
        let mut g = self.lock();
        if !matches!(g.state, State::Queued(_)) {
            return None;
        }
        let runner = graph::current_thread_id();
        match mem::replace(&mut g.state, State::Running { runner }) {
            State::Queued(job) => Some(job),
            // Checked just above, under the same lock.
            _ => unreachable!("task state changed under its lock"),
        }
    }

    /// Claims the task for a waiting worker of its own pool, which then runs it itself.
    fn claim_for_helper(&self) -> Option<Job<T>> {
        let pool = self.pool.as_ref()?;
        if graph::is_worker_of(pool) {
            self.claim()
        } else {
            None
        }
    }

    /// Runs a claimed job on this thread, catching a panic, and publishes the result.
    fn run_claimed(self: &Arc<Self>, job: Job<T>) {
        let result = match self.pool.as_ref().and_then(|p| p.broken()) {
            Some(why) => {
                drop(job);
                Err(TaskError::BrokenPool(why))
            }
            None => panic::catch_unwind(AssertUnwindSafe(job))
                .map_err(|payload| TaskError::Panicked(panic_message(&*payload))),
        };
        self.settle(self.lock(), result);
    }

    /// Resolves the task with `err` if it has not started; `true` if this call resolved it.
    fn resolve_if_queued(self: &Arc<Self>, err: TaskError) -> bool {
        let mut g = self.lock();
        let State::Queued(_) = g.state else {
            return false;
        };
        let job = mem::replace(&mut g.state, State::Finished(Err(err.clone())));
        // `settle` overwrites the state with the same error; the job is dropped only after the
        // lock is released, because dropping it runs the destructors of whatever it captured.
        self.settle(g, Err(err));
        drop(job);
        true
    }

    /// Stores the result, runs done-callbacks, wakes waiters and tells listeners. Takes the
    /// locked state so that "finished" and "callbacks taken" happen in one critical section:
    /// a callback added later sees the task finished and runs at once, none is lost.
    fn settle<'a>(
        self: &'a Arc<Self>,
        mut g: MutexGuard<'a, Inner<T>>,
        result: Result<T, TaskError>,
    ) {
        g.state = State::Finished(result);
        let callbacks = mem::take(&mut g.callbacks);
        if !callbacks.is_empty() {
            drop(g);
            let handle = TaskHandle { task: self.clone() };
            for callback in callbacks {
                run_callback(&handle, callback);
            }
            g = self.lock();
        }
        g.settled = true;
        if g.waiters > 0 {
            self.cond.notify_all();
        }
        let listeners = mem::take(&mut g.listeners);
        drop(g);
        for (notifier, slot) in listeners.first.into_iter().chain(listeners.rest) {
            notifier.push(slot);
        }
    }

    fn take_if_settled(&self) -> Option<Result<T, TaskError>> {
        let mut g = self.lock();
        if !g.settled {
            return None;
        }
        match mem::replace(&mut g.state, State::Taken) {
            State::Finished(result) => Some(result),
            // Settled means finished, and `Taken` needs the handle this call consumes.
            _ => unreachable!("a settled task holds its result"),
        }
    }

    /// Moves the result out; only called on a settled task by the owner of its handle.
    fn take(&self) -> Result<T, TaskError> {
        match mem::replace(&mut self.lock().state, State::Taken) {
            State::Finished(result) => result,
            // `join` consumes the only handle, and only after `wait(.., settled = true)`.
            _ => unreachable!("took the result of a task that was not finished"),
        }
    }

    pub(crate) fn add_listener(&self, notifier: Arc<Notifier>, slot: usize) {
        let mut g = self.lock();
        if g.settled {
            drop(g);
            notifier.push(slot);
        } else {
            g.listeners.push((notifier, slot));
        }
    }
}

fn run_callback<T>(handle: &TaskHandle<T>, callback: UserCallback<T>) {
    // Python logs and swallows an exception raised by a callback; so do we.
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback(handle))) {
        tracing::error!(
            task = handle.task.id,
            "done-callback panicked: {}",
            panic_message(&*payload)
        );
    }
}

impl<T: Send + 'static> WaitNode for Task<T> {
    fn id(&self) -> u64 {
        self.id
    }

    fn status(&self) -> NodeStatus {
        match self.lock().state {
            State::Queued(_) => NodeStatus::Queued(self.pool.clone()),
            State::Running { runner } => NodeStatus::Running(runner),
            State::Finished(_) | State::Taken => NodeStatus::Done,
        }
    }

    fn pool(&self) -> Option<&Arc<PoolInfo>> {
        self.pool.as_ref()
    }
}

/// The queue's reference to a task: running it claims the task; dropping it unrun (by
/// `shutdown(cancel_futures)`, a broken pool, or a backend that drops its queue) resolves the
/// task as [`TaskError::Cancelled`], so no handle can wait forever on a job that is gone.
pub(crate) struct JobRef(Option<Arc<dyn Runnable>>);

impl JobRef {
    /// Runs the task on this thread unless somebody claimed it first.
    pub(crate) fn run(mut self) {
        if let Some(task) = self.0.take() {
            task.run();
        }
    }

    /// Resolves the task with `err` if it is still queued; `true` if this call resolved it.
    pub(crate) fn abandon(mut self, err: TaskError) -> bool {
        self.0.take().is_some_and(|task| task.abandon(err))
    }
}

impl Drop for JobRef {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abandon(TaskError::Cancelled);
        }
    }
}

impl fmt::Debug for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobRef(..)")
    }
}

/// The type-erased view of a task that queues hold.
trait Runnable: Send + Sync {
    fn run(self: Arc<Self>);
    fn abandon(self: Arc<Self>, err: TaskError) -> bool;
}

impl<T: Send + 'static> Runnable for Task<T> {
    fn run(self: Arc<Self>) {
        if let Some(job) = self.claim() {
            self.run_claimed(job);
        }
    }

    fn abandon(self: Arc<Self>, err: TaskError) -> bool {
        self.resolve_if_queued(err)
    }
}

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
        self.task.wait(None, true)?;
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
        self.task.wait(Some(deadline_after(timeout)), true)?;
        self.task.take()
    }

    /// Waits up to `timeout` for the task to finish; `true` if it did. Python's
    /// `concurrent.futures.wait([f], timeout)` for one future.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.task.wait(Some(deadline_after(timeout)), false).is_ok()
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
        self.task.wait(None, false)?;
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
        let mut g = self.task.lock();
        if g.is_finished() {
            drop(g);
            run_callback(self, Box::new(callback));
        } else {
            g.callbacks.push(Box::new(callback));
        }
    }
}

impl<T> TaskHandle<T> {
    /// Cancels the task if it has not started: Python's `future.cancel()`.
    ///
    /// Returns `true` if the task is now cancelled (by this call or an earlier one), `false` if
    /// it is running or finished. A cancelled task's handle resolves to
    /// [`TaskError::Cancelled`], and its closure is dropped without running.
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

    pub(crate) fn task(&self) -> &Arc<Task<T>> {
        &self.task
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.task.lock().state {
            State::Queued(_) => "queued",
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

/// `now + timeout`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
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
    fn dropping_an_unrun_job_cancels_its_task() {
        let (handle, job) = Task::create(|| 1, None);
        drop(job);
        assert!(handle.is_cancelled());
        assert_eq!(handle.join(), Err(TaskError::Cancelled));
    }

    #[test]
    fn a_job_runs_once_even_if_claimed_twice() {
        let (handle, job) = Task::create(|| 5, None);
        assert!(handle.task.claim().is_some());
        assert!(handle.task.claim().is_none());
        drop(job);
        assert!(handle.is_running());
    }

    #[test]
    fn abandon_reports_whether_it_resolved_the_task() {
        let (handle, job) = Task::create(|| 5, None);
        assert!(job.abandon(TaskError::BrokenPool("x".into())));
        assert_eq!(handle.join(), Err(TaskError::BrokenPool("x".into())));
        let (handle, job) = Task::create(|| 5, None);
        assert!(handle.task.claim().is_some());
        assert!(!job.abandon(TaskError::Cancelled));
    }

    #[test]
    fn display_is_lowercase_without_period() {
        for e in [
            TaskError::Cancelled,
            TaskError::Panicked("p".into()),
            TaskError::Timeout,
            TaskError::BrokenPool("b".into()),
            TaskError::Deadlock("d".into()),
        ] {
            let s = e.to_string();
            assert!(s.starts_with(|c: char| c.is_lowercase()), "{s}");
            assert!(!s.ends_with('.'), "{s}");
        }
    }
}
