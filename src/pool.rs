//! The hand-written thread pool: [`ThreadPool`], [`Builder::build`], and the worker loop.
//!
//! The queue is a `VecDeque` of task references behind one `Mutex`, with two `Condvar`s: workers
//! sleep on `work` while it is empty, and submitters sleep on `space` while a bounded queue is
//! full. Each side counts its sleepers, so the other side only pays for a wake-up syscall when
//! somebody is actually asleep. A worker holds the lock only to take a task, never to run one.
//!
//! Threads start on demand, as CPython's `_adjust_thread_count` starts them: a submitted task
//! that no worker is on its way to take, and no sleeping worker can be woken for, starts a new
//! thread (up to `max_workers`), which runs that task first and then serves the queue. A
//! thread the system refuses leaves the task to the threads already started, if any.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::builder::{Builder, Config, broken_message, run_initializer};
use crate::error::{BuildError, TaskError};
use crate::executor::Executor;
use crate::graph::{self, PoolInfo};
use crate::handle::TaskHandle;
use crate::task::JobRef;

impl Builder {
    /// Starts a [`ThreadPool`] with these settings.
    ///
    /// # Errors
    ///
    /// As [`Builder`]'s settings say: [`BuildError::ZeroWorkers`] for `num_threads(0)`,
    /// [`BuildError::ZeroQueueBound`] for `queue_bound(0)`, [`BuildError::NulInName`] for a
    /// prefix with a NUL byte. No thread starts here: they start as tasks arrive, and a thread
    /// the system refuses is never a panic (see [`TaskError::Spawn`]).
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        Ok(ThreadPool::start(self.into_config()?))
    }
}

/// How many times an idle worker yields and looks at the queue again before it sleeps. A worker
/// that is about to get a task then takes it without a futex wait and wake (two syscalls and a
/// context switch, which cost far more than a short task).
const SPIN_ROUNDS: u32 = 16;

struct Queue {
    jobs: VecDeque<JobRef>,
    closed: bool,
    /// Worker threads started, or being started, and not failed to start.
    threads: usize,
    /// Workers asleep on `work`.
    idle: usize,
    /// Of those, how many were notified and have not woken up yet: a wake-up is only sent while
    /// `idle > idle_notified`, so one sleeper is not woken over and over.
    idle_notified: usize,
    /// Workers yielding before they sleep (see [`SPIN_ROUNDS`]): each will take a task
    /// without being woken.
    spinning: usize,
    /// Submitters asleep on `space`.
    blocked: usize,
    /// Of those, how many were notified and have not woken up yet.
    blocked_notified: usize,
}

struct Shared {
    info: Arc<PoolInfo>,
    config: Config,
    queue: Mutex<Queue>,
    work: Condvar,
    space: Condvar,
    bound: Option<usize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Only plain data is touched under this lock: no task runs while it is held.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes queued tasks out, all of them, or with [`Drain::Unclaimed`] those behind the ones
    /// a worker is already on its way to take; the caller resolves them after the lock is
    /// released.
    fn drain(&self, which: Drain) -> Vec<JobRef> {
        let mut q = self.lock();
        let keep = match which {
            Drain::All => 0,
            Drain::Unclaimed => (q.spinning + q.idle_notified).min(q.jobs.len()),
        };
        let jobs: Vec<JobRef> = q.jobs.drain(keep..).collect();
        if q.blocked > 0 {
            self.space.notify_all();
        }
        jobs
    }

    fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        self.work.notify_all();
        self.space.notify_all();
    }
}

/// A new worker's first task, handed over by the submit that started it. Kept apart from the
/// thread's closure so that the submitter can take the task back if the thread never starts.
type FirstJob = Arc<Mutex<Option<JobRef>>>;

fn take_first(first: &FirstJob) -> Option<JobRef> {
    first.lock().unwrap_or_else(PoisonError::into_inner).take()
}

fn worker_loop(id: u64, shared: &Shared, first: &FirstJob) {
    graph::enter_worker(id, &shared.info);
    if let Err(why) = run_initializer(shared.config.initializer.as_ref()) {
        let why = broken_message(&why);
        tracing::error!(thread = ?thread::current().name(), "{why}");
        shared.info.set_broken(why.clone());
        shared.info.remove_worker(id);
        let queued = shared.drain(Drain::All);
        for job in take_first(first).into_iter().chain(queued) {
            job.abandon(TaskError::BrokenPool(why.clone()));
        }
        return;
    }
    if let Some(job) = take_first(first) {
        job.run();
    }
    // A blocked submitter is woken once the queue is down to half the bound, not at every free
    // slot, so it refills a batch per wake-up instead of ping-ponging with the workers.
    let low_water = shared.bound.map_or(0, |bound| bound / 2);
    loop {
        let (job, wake_submitter) = {
            let mut q = shared.lock();
            let mut spins = 0;
            let job = loop {
                if let Some(job) = q.jobs.pop_front() {
                    break Some(job);
                }
                if q.closed {
                    break None;
                }
                if spins < SPIN_ROUNDS {
                    if spins == 0 {
                        q.spinning += 1;
                    }
                    spins += 1;
                    drop(q);
                    thread::yield_now();
                    q = shared.lock();
                    continue;
                }
                q.spinning -= 1;
                spins = 0;
                q.idle += 1;
                q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
                q.idle -= 1;
                q.idle_notified = q.idle_notified.saturating_sub(1);
            };
            if spins > 0 {
                q.spinning -= 1;
            }
            let wake = job.is_some() && q.blocked > q.blocked_notified && q.jobs.len() <= low_water;
            if wake {
                q.blocked_notified += 1;
            }
            (job, wake)
        };
        // The lock is released here, before the task runs: `while let Some(job) =
        // shared.lock().jobs.pop_front()` would keep the guard alive for the whole loop body.
        // The submitter is notified after the unlock, so it does not wake into a held lock.
        if wake_submitter {
            shared.space.notify_one();
        }
        match job {
            Some(job) => job.run(),
            None => break,
        }
    }
    shared.info.remove_worker(id);
}

/// A pool of at most `max_workers` worker threads: Python's `ThreadPoolExecutor`.
///
/// Submit closures with [`Executor::submit`]; each returns a [`TaskHandle`]. The pool is
/// `Sync`: share `&ThreadPool` (or an `Arc`) to submit from many threads, including from tasks
/// running on the pool itself.
///
/// # Examples
///
/// ```
/// use fetchall::{as_completed, Executor, ThreadPool};
///
/// let pool = ThreadPool::new(4);
/// let handles: Vec<_> = (1..=3).map(|n| pool.submit(move || n * n)).collect();
/// let mut squares: Vec<i32> = as_completed(handles).map(|h| h.join().unwrap()).collect();
/// squares.sort();
/// assert_eq!(squares, [1, 4, 9]);
/// ```
///
/// A task must be `Send`: a closure that captures an `Rc` is refused at compile time.
///
/// ```compile_fail,E0277
/// use std::rc::Rc;
/// use fetchall::{Executor, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// let shared = Rc::new(5);
/// pool.submit(move || *shared);
/// ```
///
/// # Threads
///
/// As in CPython, no thread starts with the pool: [`submit`](Executor::submit) starts one,
/// up to `max_workers`, when no worker is idle to take the task, so `ThreadPool::new(100_000)`
/// running five tasks starts at most five threads. [`started_threads`](Self::started_threads)
/// says how many there are. A thread the system refuses is never a panic: the task waits for
/// the threads already started, or, with none, resolves to [`TaskError::Spawn`].
///
/// # Shutdown
///
/// Dropping the pool is Python's `with ThreadPoolExecutor() as executor:` block ending: it stops
/// taking tasks, lets every queued task run, and joins every worker, so no thread outlives it.
/// [`shutdown`](Self::shutdown) does the same explicitly, [`shutdown_now`](Self::shutdown_now)
/// cancels the queued tasks first, and [`detach`](Self::detach) does not wait.
///
/// # Panic handling
///
/// A task that panics resolves its handle to [`TaskError::Panicked`] with the message; the worker
/// catches it and goes on, so the pool keeps its size. The panic hook still runs, so the panic is
/// printed to stderr as usual unless the program installs a quieter hook.
pub struct ThreadPool {
    shared: Arc<Shared>,
    /// Every worker started, in start order (the `i` of its name is its index here).
    workers: Mutex<Vec<thread::JoinHandle<()>>>,
    /// The stack size of each new worker thread; `None` for std's default.
    stack_size: Option<usize>,
}

impl ThreadPool {
    /// Makes a pool of at most `num_threads` workers with default names and no initializer.
    /// Threads start as tasks arrive, so a large `num_threads` costs nothing until it is used.
    ///
    /// # Panics
    ///
    /// If `num_threads` is 0; use [`ThreadPool::builder`] to get an error instead.
    pub fn new(num_threads: usize) -> ThreadPool {
        match Builder::new().num_threads(num_threads).build() {
            Ok(pool) => pool,
            Err(e) => panic!("ThreadPool::new({num_threads}): {e}"),
        }
    }

    /// A [`Builder`] with Python's defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }

    fn start(config: Config) -> ThreadPool {
        let info = PoolInfo::new(config.prefix.clone(), config.max_workers);
        let stack_size = config.stack_size;
        let bound = config.queue_bound;
        ThreadPool {
            shared: Arc::new(Shared {
                info,
                config,
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    closed: false,
                    threads: 0,
                    idle: 0,
                    idle_notified: 0,
                    spinning: 0,
                    blocked: 0,
                    blocked_notified: 0,
                }),
                work: Condvar::new(),
                space: Condvar::new(),
                bound,
            }),
            workers: Mutex::new(Vec::new()),
            stack_size,
        }
    }

    /// Starts a worker whose first task is `job`; the caller has counted it in `threads`.
    ///
    /// Threads are started one at a time (under the `workers` lock), so their names number them
    /// in start order with no gaps. If the system refuses the thread, the pool goes on with the
    /// threads it has: `job` joins the queue for them, or, when there are none, resolves to
    /// [`TaskError::Spawn`].
    fn start_worker(&self, job: JobRef) {
        let shared = &self.shared;
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        let (id, name) = (
            graph::new_thread_id(),
            shared.config.thread_name(workers.len()),
        );
        shared.info.add_worker(id, name.clone());
        let first: FirstJob = Arc::new(Mutex::new(Some(job)));
        let (for_worker, first_for_worker) = (shared.clone(), first.clone());
        let mut builder = thread::Builder::new().name(name);
        if let Some(bytes) = self.stack_size {
            builder = builder.stack_size(bytes);
        }
        match builder.spawn(move || worker_loop(id, &for_worker, &first_for_worker)) {
            Ok(handle) => workers.push(handle),
            Err(e) => {
                drop(workers);
                shared.info.remove_worker(id);
                let Some(job) = take_first(&first) else {
                    return;
                };
                let mut q = shared.lock();
                q.threads -= 1;
                // Checked under the queue lock, as in `submit`.
                if let Some(why) = shared.info.broken() {
                    drop(q);
                    job.abandon(TaskError::BrokenPool(why));
                } else if q.threads > 0 {
                    // The threads the pool has take the task when one comes free.
                    tracing::warn!(
                        "could not start a worker thread, using the {} started: {e}",
                        q.threads
                    );
                    q.jobs.push_back(job);
                    let wake = q.idle > q.idle_notified;
                    if wake {
                        q.idle_notified += 1;
                    }
                    drop(q);
                    if wake {
                        shared.work.notify_one();
                    }
                } else {
                    drop(q);
                    tracing::error!("could not start a worker thread: {e}");
                    job.abandon(TaskError::Spawn(e.to_string()));
                }
            }
        }
    }

    /// How many worker threads have been started so far: at most
    /// [`max_workers`](Executor::max_workers), and no more than the tasks ever submitted.
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::new(100_000);
    /// assert_eq!(pool.started_threads(), 0);
    /// for i in 0..5 {
    ///     assert_eq!(pool.submit(move || i).join(), Ok(i));
    /// }
    /// assert!((1..=5).contains(&pool.started_threads()));
    /// ```
    pub fn started_threads(&self) -> usize {
        self.workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Shuts the pool down and waits: Python's `executor.shutdown(wait=True)`, and what dropping
    /// the pool does (the end of Python's `with` block).
    ///
    /// No task can be submitted afterwards, since this consumes the pool. Tasks still queued
    /// run; this returns once every worker has exited. Called from one of the pool's own
    /// workers, it does not wait for that worker (which would wait on itself).
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let queued: Vec<_> = (0..10).map(|i| pool.submit(move || i)).collect();
    /// pool.shutdown();
    /// assert!(queued.iter().all(|h| h.is_finished()));
    /// ```
    pub fn shutdown(mut self) {
        self.stop(Stop::Wait);
    }

    /// Cancels the tasks still queued, then shuts down and waits for the running ones: Python's
    /// `executor.shutdown(wait=True, cancel_futures=True)`.
    ///
    /// The cancelled tasks' handles resolve to [`TaskError::Cancelled`].
    ///
    /// # Which tasks count as running
    ///
    /// A task runs, and is not cancelled here, once a worker is committed to it: a thread that
    /// [`submit`](Executor::submit) started for it (which holds it from the start), or a worker
    /// that `submit` woke for it, or that was already on its way to the queue, and that has not
    /// reached it yet. So, as in CPython, the first tasks submitted to a pool with free capacity
    /// are running by the time `submit` returns, and shutting down right after does not cancel
    /// them; only the tasks behind them, which wait for a busy worker, are cancelled.
    /// [`TaskHandle::cancel`] is Python's `future.cancel()` and still succeeds on such a task
    /// until the worker claims it: it reports the state of the task, not of the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use fetchall::{Executor, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (started_tx, started) = mpsc::channel();
    /// let (release, gate) = mpsc::channel::<()>();
    /// let running = pool.submit(move || {
    ///     started_tx.send(()).unwrap();
    ///     gate.recv().is_ok()
    /// });
    /// started.recv().unwrap();
    /// let queued = pool.submit(|| 2);
    /// // Let the running task end only once the queued one is cancelled.
    /// queued.add_done_callback(move |_| release.send(()).unwrap());
    /// pool.shutdown_now();
    /// assert_eq!(running.join(), Ok(true));
    /// assert_eq!(queued.join(), Err(TaskError::Cancelled));
    /// ```
    #[doc(alias = "cancel_futures")]
    pub fn shutdown_now(mut self) {
        self.cancel_pending();
        self.stop(Stop::Wait);
    }

    /// Shuts the pool down without waiting: Python's `executor.shutdown(wait=False)`.
    ///
    /// Returns at once. Queued tasks still run (call [`cancel_pending`](Executor::cancel_pending)
    /// first to spare them), and the workers exit by themselves once the queue is empty; they are
    /// not joined, so they may outlive the pool. This is how a program that is about to exit
    /// leaves tasks stuck in long calls behind instead of waiting for them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use fetchall::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (release, gate) = mpsc::channel::<()>();
    /// let running = pool.submit(move || gate.recv().is_ok());
    /// pool.detach(); // returns although the task is blocked
    /// release.send(()).unwrap();
    /// assert_eq!(running.join(), Ok(true));
    /// ```
    pub fn detach(mut self) {
        self.stop(Stop::Detach);
    }

    fn stop(&mut self, how: Stop) {
        self.shared.close();
        let me = thread::current().id();
        let workers = self
            .workers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for worker in workers.drain(..) {
            if how == Stop::Wait && worker.thread().id() != me {
                // A worker cannot panic (tasks' panics are caught), and there is nothing to do
                // about one that did while shutting down; Drop must not panic.
                let _ = worker.join();
            }
        }
    }
}

impl Executor for ThreadPool {
    fn submit<T, F>(&self, f: F) -> TaskHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = &*self.shared;
        let (handle, job) = TaskHandle::queued(f, Some(shared.info.clone()));
        let mut q = shared.lock();
        if let Some(bound) = shared.bound {
            while q.jobs.len() >= bound && !q.closed {
                if graph::is_worker_of(&shared.info) {
                    drop(q);
                    job.run();
                    return handle;
                }
                q.blocked += 1;
                q = shared.space.wait(q).unwrap_or_else(PoisonError::into_inner);
                q.blocked -= 1;
                q.blocked_notified = q.blocked_notified.saturating_sub(1);
            }
        }
        // Checked under the queue lock: a breaking worker marks the pool broken before it
        // drains the queue under this lock, so a task is either refused here or drained there.
        if let Some(why) = shared.info.broken() {
            drop(q);
            job.abandon(TaskError::BrokenPool(why));
            return handle;
        }
        // The task needs a taker if the queued tasks already match the workers on their way to
        // the queue (spinning, or notified and not yet awake). Then wake a sleeper if there is
        // one, or else start a thread if the pool may: every queued task has a taker, so no
        // worker sleeps while a task waits, nobody is woken twice, and an idle worker is always
        // used before a new thread starts. At `max_workers` the task waits for a busy worker.
        let needs_taker = q.jobs.len() >= q.spinning + q.idle_notified;
        if needs_taker && q.idle == q.idle_notified && q.threads < shared.config.max_workers {
            q.threads += 1;
            drop(q);
            self.start_worker(job);
            return handle;
        }
        q.jobs.push_back(job);
        let wake = needs_taker && q.idle > q.idle_notified;
        if wake {
            q.idle_notified += 1;
        }
        drop(q);
        if wake {
            shared.work.notify_one();
        }
        handle
    }

    fn max_workers(&self) -> usize {
        self.shared.config.max_workers
    }

    fn shutdown(self) {
        ThreadPool::shutdown(self);
    }

    fn shutdown_now(self) {
        ThreadPool::shutdown_now(self);
    }

    fn detach(self) {
        ThreadPool::detach(self);
    }

    /// Cancels the queued tasks that no worker is committed to yet; see
    /// [`ThreadPool::shutdown_now`] for which count as running.
    fn cancel_pending(&self) -> usize {
        let jobs = self.shared.drain(Drain::Unclaimed);
        jobs.into_iter()
            .map(|job| job.abandon(TaskError::Cancelled))
            .filter(|&cancelled| cancelled)
            .count()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.stop(Stop::Wait);
    }
}

/// Which queued tasks [`Shared::drain`] takes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drain {
    /// Every one (the pool is broken).
    All,
    /// Those no worker is on its way to take (cancelling).
    Unclaimed,
}

/// Whether stopping the pool joins its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Wait,
    Detach,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("max_workers", &self.shared.config.max_workers)
            .field("started_threads", &self.started_threads())
            .field("queued", &self.shared.lock().jobs.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn a_pool_that_cannot_start_more_threads_goes_on_with_those_it_has() {
        let mut pool = ThreadPool::new(3);
        let (open, gate) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel();
        let held = pool.submit(move || {
            started_tx.send(()).unwrap();
            gate.recv().is_ok()
        });
        started.recv().unwrap();
        // From now on the system refuses every new thread.
        pool.stack_size = Some(1 << 60);
        let waits = pool.submit(|| 1);
        assert!(!waits.is_finished(), "queued for the thread the pool has");
        open.send(()).unwrap();
        assert_eq!(held.join(), Ok(true));
        assert_eq!(waits.join(), Ok(1));
        assert_eq!(pool.submit(|| 2).join(), Ok(2));
        assert_eq!(pool.started_threads(), 1);
    }
}
