//! Configuring a pool: [`Builder`] and what it checks, shared by [`ThreadPool`] and (with the
//! `rayon` feature) `RayonPool`, and what every worker runs first (its initializer).

use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

#[cfg(doc)]
use crate::error::TaskError;
use crate::error::{BuildError, panic_message};
#[cfg(doc)]
use crate::executor::Executor;
// Only as the builder's default type: the pool module builds on this one, not the reverse.
use crate::pool::ThreadPool;

/// An initializer, with its error already turned into text.
pub(crate) type Initializer = Arc<dyn Fn() -> Result<(), String> + Send + Sync + 'static>;

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

/// Configures a [`ThreadPool`] (or, with feature `rayon`, a `RayonPool`): Python's
/// `ThreadPoolExecutor(max_workers, thread_name_prefix, initializer)`, plus a queue bound.
///
/// The type parameter is the pool that `build` makes: `ThreadPool::builder()` (or
/// [`Builder::new`]) gives a `Builder<ThreadPool>`, `RayonPool::builder()` a
/// `Builder<RayonPool>`. The settings are the same for both.
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
pub struct Builder<P = ThreadPool> {
    num_threads: Option<usize>,
    prefix: Option<String>,
    initializer: Option<Initializer>,
    queue_bound: Option<usize>,
    stack_size: Option<usize>,
    /// What `build` makes; `fn() -> P` keeps the builder `Send + Sync` whatever `P` is.
    pool: PhantomData<fn() -> P>,
}

static NEXT_POOL: AtomicU64 = AtomicU64::new(0);

impl Builder {
    /// A builder of a [`ThreadPool`] with Python's defaults.
    pub fn new() -> Builder {
        Builder::with_defaults()
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl<P> Clone for Builder<P> {
    fn clone(&self) -> Builder<P> {
        Builder {
            num_threads: self.num_threads,
            prefix: self.prefix.clone(),
            initializer: self.initializer.clone(),
            queue_bound: self.queue_bound,
            stack_size: self.stack_size,
            pool: PhantomData,
        }
    }
}

impl<P> Builder<P> {
    /// Python's defaults, for whichever pool `P` is.
    pub(crate) fn with_defaults() -> Builder<P> {
        Builder {
            num_threads: None,
            prefix: None,
            initializer: None,
            queue_bound: None,
            stack_size: None,
            pool: PhantomData,
        }
    }

    /// The same settings, for another kind of pool.
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    pub(crate) fn retarget<Q>(self) -> Builder<Q> {
        Builder {
            num_threads: self.num_threads,
            prefix: self.prefix,
            initializer: self.initializer,
            queue_bound: self.queue_bound,
            stack_size: self.stack_size,
            pool: PhantomData,
        }
    }

    /// The most worker threads the pool may have: Python's `max_workers`. Defaults to
    /// [`default_workers`]. A [`ThreadPool`] starts them as tasks arrive; rayon starts them all
    /// at once.
    pub fn num_threads(mut self, n: usize) -> Builder<P> {
        self.num_threads = Some(n);
        self
    }

    /// Names workers `{prefix}_{i}`, `i` counting from 0: Python's `thread_name_prefix`.
    /// Without it they are `ThreadPoolExecutor-{n}_{i}`, `n` counting pools, as in Python.
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Builder<P> {
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
    pub fn initializer<F, E>(mut self, init: F) -> Builder<P>
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
    pub fn queue_bound(mut self, bound: usize) -> Builder<P> {
        self.queue_bound = Some(bound);
        self
    }

    /// The stack size of each worker thread, in bytes: rayon's `ThreadPoolBuilder::stack_size`,
    /// rust-threadpool's `thread_stack_size`. Without it, std's default (2 MiB, or
    /// `RUST_MIN_STACK`). Python has `threading.stack_size()` for the whole process instead.
    ///
    /// A smaller stack lets a pool of many blocking threads fit in less memory. A thread the
    /// system cannot give this much stack does not start: see [`TaskError::Spawn`].
    pub fn stack_size(mut self, bytes: usize) -> Builder<P> {
        self.stack_size = Some(bytes);
        self
    }

    /// Checks the settings and fills in the defaults, numbering the pool (Python's counter) if
    /// it has no name of its own; shared with the rayon backend.
    pub(crate) fn into_config(self) -> Result<Config, BuildError> {
        let max_workers = self.num_threads.unwrap_or_else(default_workers);
        if max_workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.queue_bound == Some(0) {
            return Err(BuildError::ZeroQueueBound);
        }
        let prefix = self.prefix.unwrap_or_else(|| {
            format!(
                "ThreadPoolExecutor-{}",
                NEXT_POOL.fetch_add(1, Ordering::Relaxed)
            )
        });
        // std panics on a thread name with a NUL byte; refuse it here instead.
        if prefix.contains('\0') {
            return Err(BuildError::NulInName);
        }
        Ok(Config {
            max_workers,
            prefix,
            initializer: self.initializer,
            queue_bound: self.queue_bound,
            stack_size: self.stack_size,
        })
    }
}

/// A checked [`Builder`], with its defaults filled in.
pub(crate) struct Config {
    pub(crate) max_workers: usize,
    /// Workers are named `{prefix}_{i}`; the pool is named `prefix` in deadlock reports.
    pub(crate) prefix: String,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) queue_bound: Option<usize>,
    pub(crate) stack_size: Option<usize>,
}

impl Config {
    /// The name of the `i`th worker, counting from 0 in start order.
    pub(crate) fn thread_name(&self, i: usize) -> String {
        format!("{}_{i}", self.prefix)
    }
}

impl<P> fmt::Debug for Builder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("num_threads", &self.num_threads)
            .field("thread_name_prefix", &self.prefix)
            .field("initializer", &self.initializer.is_some())
            .field("queue_bound", &self.queue_bound)
            .field("stack_size", &self.stack_size)
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
