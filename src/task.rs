//! The shared state of one task, behind one `Mutex` + `Condvar`, and the queue's reference to
//! it ([`JobRef`]).
//!
//! A task is a small state machine: `Queued(job) -> Running -> Finished(result) -> Taken`, or
//! `Queued -> Finished(Cancelled)`. Whoever moves it out of `Queued` first owns the job: the
//! worker that dequeues it, a worker of the same pool that waits on it and runs it itself (see
//! [`TaskHandle::join`](crate::TaskHandle::join)), or a cancel. The queue only carries
//! references to tasks, so a task that was claimed elsewhere is skipped when its queue entry
//! comes up.

use std::fmt;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::error::{InvalidState, TaskError, panic_message};
use crate::graph::{self, NodeStatus, PoolInfo, WaitNode};
use crate::sync::{Notifier, wait_while};

/// The boxed closure a task runs.
type Job<T> = Box<dyn FnOnce() -> T + Send + 'static>;

/// A done-callback, given the finished task.
pub(crate) type Callback<T> = Box<dyn FnOnce(&Arc<Task<T>>) + Send + 'static>;

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) enum State<T> {
    Queued(Job<T>),
    /// Made by `TaskHandle::pending`: no job, completed by hand through its `Completer`.
    Pending,
    Running {
        runner: u64,
    },
    Finished(Result<T, TaskError>),
    /// `join` moved the value out; only reachable after the last handle is gone.
    Taken,
}

/// What a wait on a task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// The result is stored (`is_finished`).
    Finished,
    /// The result is stored and every done-callback has returned: what `join` needs before it
    /// moves the value out.
    Settled,
}

pub(crate) struct Inner<T> {
    pub(crate) state: State<T>,
    /// Done-callbacks still to run; taken when the task finishes.
    callbacks: Vec<Callback<T>>,
    /// `as_completed` / `wait` listeners, told when the task finishes.
    listeners: Listeners,
    /// Finished and every done-callback has returned. `join` waits for this, so that a callback
    /// that reads the result never races with `join` moving the value out.
    settled: bool,
    /// Threads blocked on `cond`; `settle` only pays for a futex wake when this is non-zero.
    waiters: usize,
}

impl<T> Inner<T> {
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_) | State::Taken)
    }

    fn reached(&self, until: Until) -> bool {
        match until {
            Until::Finished => self.is_finished(),
            Until::Settled => self.settled,
        }
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
    pub(crate) id: u64,
    pool: Option<Arc<PoolInfo>>,
    inner: Mutex<Inner<T>>,
    cond: Condvar,
}

impl<T: Send + 'static> Task<T> {
    /// Makes a queued task and the queue entry that runs it.
    pub(crate) fn create<F>(f: F, pool: Option<Arc<PoolInfo>>) -> (Arc<Task<T>>, JobRef)
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let task = Task::new(State::Queued(Box::new(f)), pool);
        let job = JobRef(Some(task.clone()));
        (task, job)
    }

    /// Makes a task with no job, to be completed by hand.
    pub(crate) fn pending() -> Arc<Task<T>> {
        Task::new(State::Pending, None)
    }

    fn new(state: State<T>, pool: Option<Arc<PoolInfo>>) -> Arc<Task<T>> {
        Arc::new(Task {
            id: NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed),
            pool,
            inner: Mutex::new(Inner {
                state,
                callbacks: Vec::new(),
                listeners: Listeners::default(),
                settled: false,
                waiters: 0,
            }),
            cond: Condvar::new(),
        })
    }

    /// Blocks until the task has reached `until`, or `deadline` passes.
    ///
    /// An untimed wait first tries to run the task itself (a worker waiting on a queued task of
    /// its own pool), then registers in the wait-for graph, which refuses a wait that can never
    /// end. Timed waits do neither: they end anyway, and a timed waiter counts as a free thread.
    ///
    /// # Errors
    ///
    /// [`TaskError::Timeout`] when the deadline passed first, [`TaskError::Deadlock`] when the
    /// graph refused the wait.
    pub(crate) fn wait(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        until: Until,
    ) -> Result<(), TaskError> {
        if self.lock().reached(until) {
            return Ok(());
        }
        let _registration = match deadline {
            Some(_) => None,
            None => {
                if let Some(job) = self.claim_for_helper() {
                    self.run_claimed(job);
                    return Ok(());
                }
                let registration = graph::Registration::new(self.clone())
                    .map_err(|stuck| TaskError::Deadlock(stuck.0))?;
                Some(registration)
            }
        };
        let mut g = self.lock();
        g.waiters += 1;
        let (mut g, reached) = wait_while(&self.cond, g, deadline, |g| !g.reached(until));
        g.waiters -= 1;
        if reached {
            Ok(())
        } else {
            Err(TaskError::Timeout)
        }
    }
}

impl<T> Task<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<T>> {
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
    pub(crate) fn resolve_if_queued(self: &Arc<Self>, err: TaskError) -> bool {
        let mut g = self.lock();
        if !matches!(g.state, State::Queued(_) | State::Pending) {
            return false;
        }
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
            for callback in callbacks {
                self.run_callback(callback);
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

    /// Completes a task made by [`pending`](Task::pending) with `result`, unless it has a result
    /// already (or was cancelled).
    pub(crate) fn complete(
        self: &Arc<Self>,
        result: Result<T, TaskError>,
    ) -> Result<(), InvalidState> {
        let g = self.lock();
        match g.state {
            State::Pending | State::Running { .. } => {
                self.settle(g, result);
                Ok(())
            }
            _ => Err(InvalidState),
        }
    }

    /// Moves a pending task to running on this thread: `Ok(true)`, or `Ok(false)` if it was
    /// cancelled (Python's `set_running_or_notify_cancel`).
    pub(crate) fn mark_running(&self) -> Result<bool, InvalidState> {
        let mut g = self.lock();
        match g.state {
            State::Pending => {
                g.state = State::Running {
                    runner: graph::current_thread_id(),
                };
                Ok(true)
            }
            State::Finished(Err(TaskError::Cancelled)) => Ok(false),
            _ => Err(InvalidState),
        }
    }

    /// Moves the result out if the task is settled; for the owner of its only handle.
    pub(crate) fn take_if_settled(&self) -> Option<Result<T, TaskError>> {
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
    pub(crate) fn take(&self) -> Result<T, TaskError> {
        match mem::replace(&mut self.lock().state, State::Taken) {
            State::Finished(result) => result,
            // `join` consumes the only handle, and only after `wait(.., Until::Settled)`.
            _ => unreachable!("took the result of a task that was not finished"),
        }
    }

    /// Runs `callback` when the task finishes, or at once if it has.
    pub(crate) fn add_callback(self: &Arc<Self>, callback: Callback<T>) {
        let mut g = self.lock();
        if g.is_finished() {
            drop(g);
            self.run_callback(callback);
        } else {
            g.callbacks.push(callback);
        }
    }

    /// Pushes `slot` to `notifier` when the task is settled, or at once if it is.
    pub(crate) fn add_listener(&self, notifier: Arc<Notifier>, slot: usize) {
        let mut g = self.lock();
        if g.settled {
            drop(g);
            notifier.push(slot);
        } else {
            g.listeners.push((notifier, slot));
        }
    }

    fn run_callback(self: &Arc<Self>, callback: Callback<T>) {
        // Python logs and swallows an exception raised by a callback; so do we.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback(self))) {
            tracing::error!(
                task = self.id,
                "done-callback panicked: {}",
                panic_message(&*payload)
            );
        }
    }
}

impl<T: Send + 'static> WaitNode for Task<T> {
    fn id(&self) -> u64 {
        self.id
    }

    fn status(&self) -> NodeStatus {
        match self.lock().state {
            State::Queued(_) => NodeStatus::Queued(self.pool.clone()),
            // Whoever holds the completer is not known to the graph: it may complete it.
            State::Pending => NodeStatus::Queued(None),
            State::Running { runner } => NodeStatus::Running(runner),
            State::Finished(_) | State::Taken => NodeStatus::Done,
        }
    }

    fn pool(&self) -> Option<&Arc<PoolInfo>> {
        self.pool.as_ref()
    }
}

/// The queue's reference to a task: running it claims the task; dropping it unrun (by
/// `shutdown_now`, a broken pool, or a backend that drops its queue) resolves the task as
/// [`TaskError::Cancelled`], so no handle can wait forever on a job that is gone.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_an_unrun_job_cancels_its_task() {
        let (task, job) = Task::create(|| 1, None);
        drop(job);
        assert!(matches!(
            task.lock().state,
            State::Finished(Err(TaskError::Cancelled))
        ));
    }

    #[test]
    fn a_job_runs_once_even_if_claimed_twice() {
        let (task, job) = Task::create(|| 5, None);
        assert!(task.claim().is_some());
        assert!(task.claim().is_none());
        drop(job);
        assert!(matches!(task.lock().state, State::Running { .. }));
    }

    #[test]
    fn abandon_reports_whether_it_resolved_the_task() {
        let (task, job) = Task::create(|| 5, None);
        assert!(job.abandon(TaskError::BrokenPool("x".into())));
        assert_eq!(task.take(), Err(TaskError::BrokenPool("x".into())));
        let (task, job) = Task::create(|| 5, None);
        assert!(task.claim().is_some());
        assert!(!job.abandon(TaskError::Cancelled));
    }

    #[test]
    fn a_timed_wait_ends_with_timeout() {
        let (task, _job) = Task::create(|| 5, None);
        let past = Instant::now();
        assert_eq!(
            task.wait(Some(past), Until::Finished),
            Err(TaskError::Timeout)
        );
    }
}
