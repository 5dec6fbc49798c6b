//! The hand-written fixed-size thread pool: [`ThreadPool`], its [`Builder`], and the worker loop.
//!
//! The queue is a `VecDeque` of task references behind one `Mutex`, with two `Condvar`s: workers
//! sleep on `work` while it is empty, and submitters sleep on `space` while a bounded queue is
//! full. Each side counts its sleepers, so the other side only pays for a wake-up syscall when
//! somebody is actually asleep. A worker holds the lock only to take a task, never to run one.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::executor::Executor;
use crate::graph::{self, PoolInfo};
use crate::handle::{JobRef, Task, TaskError, TaskHandle, panic_message};

/// An initializer, with its error already turned into text.
type Initializer = Arc<dyn Fn() -> Result<(), String> + Send + Sync + 'static>;

/// Python 3.8+'s default `max_workers`: `min(32, os.cpu_count() + 4)`, with
/// [`std::thread::available_parallelism`] for the CPU count (1 if it cannot be read).
///
/// # Examples
///
/// ```
/// let n = fetchall::default_workers();
/// assert!((5..=32).contains(&n));
/// ```
pub fn default_workers() -> usize {
    let cpus = thread::available_parallelism().map_or(1, usize::from);
    (cpus + 4).min(32)
}

/// Why [`Builder::build`] could not make a pool.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `num_threads(0)`: Python raises `ValueError("max_workers must be greater than 0")`.
    ZeroWorkers,
    /// `queue_bound(0)`: a queue that can hold nothing would block every submit.
    ZeroQueueBound,
    /// The operating system refused to start a worker thread.
    Spawn(std::io::Error),
    /// The rayon backend could not be built.
    #[cfg(feature = "rayon")]
    Rayon(rayon::ThreadPoolBuildError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => f.write_str("max_workers must be greater than 0"),
            BuildError::ZeroQueueBound => f.write_str("queue bound must be greater than 0"),
            BuildError::Spawn(e) => write!(f, "could not start a worker thread: {e}"),
            #[cfg(feature = "rayon")]
            BuildError::Rayon(e) => write!(f, "could not build the rayon pool: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn(e) => Some(e),
            #[cfg(feature = "rayon")]
            BuildError::Rayon(e) => Some(e),
            _ => None,
        }
    }
}

/// Configures a [`ThreadPool`] (or, with feature `rayon`, a `RayonPool`): Python's
/// `ThreadPoolExecutor(max_workers, thread_name_prefix, initializer)`, plus a queue bound.
///
/// # Examples
///
/// ```
/// use fetchall::{Executor, ThreadPool};
///
/// let pool = ThreadPool::builder()
///     .num_threads(2)
///     .thread_name_prefix("fetch")
///     .build()?;
/// let name = pool.submit(|| std::thread::current().name().map(str::to_owned));
/// assert!(name.join().unwrap().unwrap().starts_with("fetch_"));
/// # Ok::<(), fetchall::BuildError>(())
/// ```
#[derive(Clone, Default)]
pub struct Builder {
    num_threads: Option<usize>,
    prefix: Option<String>,
    initializer: Option<Initializer>,
    queue_bound: Option<usize>,
}

static NEXT_POOL: AtomicU64 = AtomicU64::new(0);

impl Builder {
    /// A builder with Python's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The number of worker threads: Python's `max_workers`. Defaults to [`default_workers`].
    pub fn num_threads(mut self, n: usize) -> Builder {
        self.num_threads = Some(n);
        self
    }

    /// Names workers `{prefix}_{i}`, `i` counting from 0: Python's `thread_name_prefix`.
    /// Without it they are `ThreadPoolExecutor-{n}_{i}`, `n` counting pools, as in Python.
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Builder {
        self.prefix = Some(prefix.into());
        self
    }

    /// Runs `init` once at the start of each worker thread: Python's `initializer`.
    ///
    /// If it returns an error or panics, the pool is *broken*: every task still queued and every
    /// later submit resolves to [`TaskError::BrokenPool`], as Python's `BrokenThreadPool`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::{Executor, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::builder()
    ///     .num_threads(1)
    ///     .initializer(|| Err("no database"))
    ///     .build()?;
    /// let task = pool.submit(|| 1);
    /// assert!(matches!(task.join(), Err(TaskError::BrokenPool(why)) if why.contains("no database")));
    /// # Ok::<(), fetchall::BuildError>(())
    /// ```
    pub fn initializer<F, E>(mut self, init: F) -> Builder
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        self.initializer = Some(Arc::new(move || init().map_err(|e| e.to_string())));
        self
    }

    /// Makes [`submit`](Executor::submit) block while `bound` tasks are queued (not counting
    /// running ones): back-pressure, so that a producer of millions of tasks runs in constant
    /// memory. Without it the queue is unbounded, as in Python.
    ///
    /// A worker of the pool that submits to its own full queue runs the task itself instead of
    /// blocking (Java's `CallerRunsPolicy`), since every worker blocking there would deadlock.
    pub fn queue_bound(mut self, bound: usize) -> Builder {
        self.queue_bound = Some(bound);
        self
    }

    /// Starts the pool.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroWorkers`] for `num_threads(0)`, [`BuildError::ZeroQueueBound`] for
    /// `queue_bound(0)`, [`BuildError::Spawn`] if a thread cannot be started.
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let config = self.validate()?;
        let shared = Arc::new(Shared {
            info: config.info.clone(),
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
            bound: self.queue_bound,
        });
        let mut workers = Vec::with_capacity(config.threads.len());
        for (id, name) in config.threads {
            let for_worker = shared.clone();
            let init = self.initializer.clone();
            let spawned = thread::Builder::new()
                .name(name)
                .spawn(move || worker_loop(id, &for_worker, init.as_ref()));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    // Stop the workers already started before reporting.
                    drop(ThreadPool {
                        shared,
                        workers,
                        num_threads: 0,
                    });
                    return Err(BuildError::Spawn(e));
                }
            }
        }
        let num_threads = workers.len();
        Ok(ThreadPool {
            shared,
            workers,
            num_threads,
        })
    }

    /// Checks the settings and names the threads; shared with the rayon backend.
    pub(crate) fn validate(&self) -> Result<Config, BuildError> {
        let n = self.num_threads.unwrap_or_else(default_workers);
        if n == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.queue_bound == Some(0) {
            return Err(BuildError::ZeroQueueBound);
        }
        let prefix = self.prefix.clone().unwrap_or_else(|| {
            format!(
                "ThreadPoolExecutor-{}",
                NEXT_POOL.fetch_add(1, Ordering::Relaxed)
            )
        });
        let threads: Vec<(u64, String)> = (0..n)
            .map(|i| (graph::new_thread_id(), format!("{prefix}_{i}")))
            .collect();
        Ok(Config {
            info: PoolInfo::new(prefix, threads.clone()),
            threads,
        })
    }

    #[cfg(feature = "rayon")]
    pub(crate) fn initializer_fn(&self) -> Option<Initializer> {
        self.initializer.clone()
    }

    #[cfg(feature = "rayon")]
    pub(crate) fn bound(&self) -> Option<usize> {
        self.queue_bound
    }
}

/// A validated [`Builder`]: the pool's graph entry and each worker's (id, name).
pub(crate) struct Config {
    pub(crate) info: Arc<PoolInfo>,
    pub(crate) threads: Vec<(u64, String)>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("num_threads", &self.num_threads)
            .field("thread_name_prefix", &self.prefix)
            .field("initializer", &self.initializer.is_some())
            .field("queue_bound", &self.queue_bound)
            .finish()
    }
}

/// Runs the initializer on a new worker; `Err(why)` if it failed or panicked.
pub(crate) fn run_initializer(init: Option<&Initializer>) -> Result<(), String> {
    let Some(init) = init else { return Ok(()) };
    match panic::catch_unwind(AssertUnwindSafe(|| init())) {
        Ok(result) => result,
        Err(payload) => Err(format!(
            "initializer panicked: {}",
            panic_message(&*payload)
        )),
    }
}

/// The message every task of a broken pool gets, worded after Python's.
pub(crate) fn broken_message(why: &str) -> String {
    format!("a worker initializer failed, the pool is not usable anymore: {why}")
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
/// [`shutdown`](Self::shutdown) gives Python's `wait` and `cancel_futures` choices.
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

    /// Shuts the pool down: Python's `executor.shutdown(wait, cancel_futures)`.
    ///
    /// No task can be submitted afterwards, since this consumes the pool. With `cancel_futures`,
    /// tasks still queued are cancelled (their handles resolve to [`TaskError::Cancelled`]);
    /// otherwise they still run. With `wait`, this returns once every worker has exited; without
    /// it, it returns at once and the workers exit by themselves when the queue is empty.
    /// Dropping the pool is `shutdown(true, false)`. Called from one of the pool's own workers,
    /// it does not wait for that worker (which would wait on itself).
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
    /// let running = pool.submit(move || { started_tx.send(()).unwrap(); gate.recv().is_ok() });
    /// started.recv().unwrap();
    /// let queued = pool.submit(|| 2);
    /// // Cancel what is queued, and return without waiting for the running task.
    /// pool.shutdown(false, true);
    /// assert_eq!(queued.join(), Err(TaskError::Cancelled));
    /// release.send(()).unwrap();
    /// assert_eq!(running.join(), Ok(true));
    /// ```
    pub fn shutdown(mut self, wait: bool, cancel_futures: bool) {
        if cancel_futures {
            self.cancel_pending();
        }
        self.shutdown_inner(wait);
    }

    fn shutdown_inner(&mut self, wait: bool) {
        self.shared.close();
        let me = thread::current().id();
        for worker in self.workers.drain(..) {
            if wait && worker.thread().id() != me {
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
        let (handle, job) = Task::create(f, Some(shared.info.clone()));
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
        self.shutdown_inner(true);
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("num_threads", &self.num_threads)
            .field("queued", &self.shared.lock().jobs.len())
            .finish_non_exhaustive()
    }
}
