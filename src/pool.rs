//! The hand-written thread pool: [`ThreadPool`], [`Builder::build`], and the worker loop.
//!
//! The queue is a `VecDeque` of task references behind one `Mutex`, with two `Condvar`s: workers
//! sleep on `work` while it is empty, and submitters sleep on `space` while a bounded queue is
//! full. Each side counts its sleepers, so the other side only pays for a wake-up syscall when
//! somebody is actually asleep. A worker holds the lock only to take a task, never to run one.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::builder::{Builder, Config, Initializer, broken_message, run_initializer};
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
    /// [`BuildError::ZeroWorkers`] for `num_threads(0)`, [`BuildError::ZeroQueueBound`] for
    /// `queue_bound(0)`, [`BuildError::Spawn`] if a thread cannot be started.
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        ThreadPool::start(self.into_config()?)
    }
}

/// How many times an idle worker yields and looks at the queue again before it sleeps. A worker
/// that is about to get a task then takes it without a futex wait and wake (two syscalls and a
/// context switch, which cost far more than a short task).
const SPIN_ROUNDS: u32 = 16;

struct Queue {
    jobs: VecDeque<JobRef>,
    closed: bool,
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

    /// Takes every queued task out; the caller resolves them after the lock is released.
    fn drain(&self) -> Vec<JobRef> {
        let mut q = self.lock();
        let jobs: Vec<JobRef> = q.jobs.drain(..).collect();
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

fn worker_loop(id: u64, shared: &Shared, init: Option<&Initializer>) {
    graph::enter_worker(id, &shared.info);
    if let Err(why) = run_initializer(init) {
        let why = broken_message(&why);
        tracing::error!(thread = ?thread::current().name(), "{why}");
        shared.info.set_broken(why.clone());
        shared.info.remove_worker(id);
        for job in shared.drain() {
            job.abandon(TaskError::BrokenPool(why.clone()));
        }
        return;
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

/// A fixed-size pool of worker threads: Python's `ThreadPoolExecutor`.
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
    workers: Vec<thread::JoinHandle<()>>,
    num_threads: usize,
}

impl ThreadPool {
    /// Starts a pool of `num_threads` workers with default names and no initializer.
    ///
    /// # Panics
    ///
    /// If `num_threads` is 0, or a thread cannot be started; use [`ThreadPool::builder`] to get
    /// an error instead.
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

    fn start(config: Config) -> Result<ThreadPool, BuildError> {
        let info = PoolInfo::new(config.prefix.clone(), config.max_workers);
        let shared = Arc::new(Shared {
            info: info.clone(),
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
                idle: 0,
                idle_notified: 0,
                spinning: 0,
                blocked: 0,
                blocked_notified: 0,
            }),
            work: Condvar::new(),
            space: Condvar::new(),
            bound: config.queue_bound,
        });
        let mut pool = ThreadPool {
            shared,
            workers: Vec::new(),
            num_threads: config.max_workers,
        };
        for i in 0..config.max_workers {
            let (id, name) = (graph::new_thread_id(), config.thread_name(i));
            info.add_worker(id, name.clone());
            let for_worker = pool.shared.clone();
            let init = config.initializer.clone();
            let spawned = thread::Builder::new()
                .name(name)
                .spawn(move || worker_loop(id, &for_worker, init.as_ref()));
            match spawned {
                Ok(handle) => pool.workers.push(handle),
                // Dropping the pool stops the workers already started.
                Err(e) => return Err(BuildError::Spawn(e)),
            }
        }
        Ok(pool)
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
    /// The cancelled tasks' handles resolve to [`TaskError::Cancelled`]. A task counts as
    /// running once a worker has taken it from the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use fetchall::{Executor, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (started_tx, started) = mpsc::channel();
    /// let running = pool.submit(move || started_tx.send(()).is_ok());
    /// started.recv().unwrap();
    /// let queued = pool.submit(|| 2);
    /// pool.shutdown_now();
    /// assert_eq!(running.join(), Ok(true));
    /// assert!(matches!(queued.join(), Ok(2) | Err(TaskError::Cancelled)));
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
        for worker in self.workers.drain(..) {
            if how == Stop::Wait && worker.thread().id() != me {
                // A worker cannot panic (tasks' panics are caught), and there is nothing to do
                // about one that did while shutting down; Drop must not panic.
                let _ = worker.join();
            }
        }
    }

    /// The number of worker threads the pool was built with.
    pub fn num_threads(&self) -> usize {
        self.num_threads
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
        q.jobs.push_back(job);
        // Wake a sleeper only if the queued tasks outnumber the workers already on their way
        // to the queue (spinning, or notified and not yet awake): every queued task then has a
        // taker, so no worker sleeps while a task waits, and nobody is woken twice.
        let on_the_way = q.spinning + q.idle_notified;
        let wake = q.idle > q.idle_notified && q.jobs.len() > on_the_way;
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
        self.num_threads
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

    fn cancel_pending(&self) -> usize {
        let jobs = self.shared.drain();
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

/// Whether stopping the pool joins its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Wait,
    Detach,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("num_threads", &self.num_threads)
            .field("queued", &self.shared.lock().jobs.len())
            .finish_non_exhaustive()
    }
}
