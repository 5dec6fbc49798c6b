//! The rayon backend, kept only for comparison: [`RayonPool`] runs tasks on a
//! `rayon::ThreadPool` of `max_workers` threads and returns the same [`TaskHandle`]s.
//!
//! Three things rayon does not do for us. `spawn` aborts the process when a job panics and no
//! `panic_handler` is set, so the job catches its panic itself (the shared task code does).
//! Dropping a rayon pool does not wait for spawned jobs, so [`RayonPool`] counts them and waits.
//! And rayon's queue cannot be drained, so [`cancel_pending`](Executor::cancel_pending) moves an
//! epoch forward instead, and a job that starts in an older epoch resolves as cancelled.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::builder::{Builder, broken_message, run_initializer};
use crate::error::{BuildError, TaskError};
use crate::executor::Executor;
use crate::graph::{self, PoolInfo};
use crate::handle::TaskHandle;

/// Tasks submitted and not finished, split into queued and running.
#[derive(Debug, Default)]
struct Counts {
    queued: usize,
    outstanding: usize,
    /// Threads asleep on `changed`: only then is a wake-up worth its syscall.
    waiters: usize,
}

#[derive(Debug, Default)]
struct Tracker {
    counts: Mutex<Counts>,
    changed: Condvar,
    epoch: AtomicU64,
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep<'a>(&self, mut counts: MutexGuard<'a, Counts>) -> MutexGuard<'a, Counts> {
        counts.waiters += 1;
        let mut counts = self
            .changed
            .wait(counts)
            .unwrap_or_else(PoisonError::into_inner);
        counts.waiters -= 1;
        counts
    }

    fn update(&self, change: impl FnOnce(&mut Counts)) {
        let mut counts = self.lock();
        change(&mut counts);
        if counts.waiters > 0 {
            self.changed.notify_all();
        }
    }
}

/// A [`rayon::ThreadPool`] behind the [`Executor`] interface, for comparison with
/// [`ThreadPool`](crate::ThreadPool). Built by [`RayonPool::builder`], with the same settings
/// as the hand-written pool's [`Builder`]; [`Builder::build_rayon`] finishes a `ThreadPool`'s
/// builder as a `RayonPool` instead, for a program that picks its backend at run time.
///
/// # Examples
///
/// ```
/// use fetchall::{Executor, RayonPool};
///
/// let pool = RayonPool::builder().num_threads(2).build()?;
/// assert_eq!(pool.submit(|| 2 + 2).join(), Ok(4));
/// # Ok::<(), fetchall::BuildError>(())
/// ```
///
/// # Shutdown
///
/// Dropping it waits for every submitted task to finish, as the hand-written pool does.
///
/// # Differences from `ThreadPool`
///
/// rayon's queue cannot be inspected or drained, so two things wait for a rayon thread to reach
/// a queued task: [`cancel_pending`](Executor::cancel_pending) resolves the cancelled handles
/// only then, and a [`queue_bound`](Builder::queue_bound) submit that is blocked on a full
/// queue is released only then. While every rayon thread is busy with a long task, both wait
/// for one to finish.
pub struct RayonPool {
    pool: rayon::ThreadPool,
    info: Arc<PoolInfo>,
    tracker: Arc<Tracker>,
    bound: Option<usize>,
    num_threads: usize,
    wait_on_drop: bool,
}

impl RayonPool {
    /// Starts a rayon pool of `num_threads` threads with default names.
    ///
    /// # Panics
    ///
    /// If `num_threads` is 0 or rayon cannot start its threads.
    pub fn new(num_threads: usize) -> RayonPool {
        match RayonPool::builder().num_threads(num_threads).build() {
            Ok(pool) => pool,
            Err(e) => panic!("RayonPool::new({num_threads}): {e}"),
        }
    }

    /// A builder of a `RayonPool`, with Python's defaults; its [`build`](Builder::build) makes a
    /// `RayonPool`.
    pub fn builder() -> Builder<RayonPool> {
        Builder::with_defaults()
    }

    /// Waits until every submitted task has finished, then drops the rayon pool: Python's
    /// `executor.shutdown(wait=True)`, and what dropping it does.
    pub fn shutdown(self) {
        drop(self);
    }

    /// Cancels the tasks rayon has not started (see
    /// [`cancel_pending`](Executor::cancel_pending)), then [`shutdown`](Self::shutdown).
    #[doc(alias = "cancel_futures")]
    pub fn shutdown_now(self) {
        self.cancel_pending();
        drop(self);
    }

    /// Returns at once without waiting for the submitted tasks: Python's
    /// `executor.shutdown(wait=False)`. rayon's threads finish them and then exit.
    pub fn detach(mut self) {
        self.wait_on_drop = false;
    }

    fn wait_idle(&self) {
        // A worker waiting for the pool to go idle would wait on itself.
        if graph::is_worker_of(&self.info) {
            return;
        }
        let mut counts = self.tracker.lock();
        while counts.outstanding > 0 {
            counts = self.tracker.sleep(counts);
        }
    }
}

impl Builder {
    /// Starts a [`RayonPool`] with these settings instead of a `ThreadPool` (feature `rayon`):
    /// for a program that picks its backend at run time from one set of settings.
    ///
    /// # Errors
    ///
    /// As [`Builder<RayonPool>::build`].
    pub fn build_rayon(self) -> Result<RayonPool, BuildError> {
        self.retarget::<RayonPool>().build()
    }
}

impl Builder<RayonPool> {
    /// Starts a [`RayonPool`] with these settings (feature `rayon`).
    ///
    /// An initializer that fails marks the pool broken, as with [`Builder::build`]; rayon's
    /// threads keep running, and every task they start afterwards resolves to
    /// [`TaskError::BrokenPool`].
    ///
    /// # Errors
    ///
    /// As [`Builder::build`], or [`BuildError::Rayon`] if rayon cannot start its threads.
    pub fn build(self) -> Result<RayonPool, BuildError> {
        let config = self.into_config()?;
        let num_threads = config.max_workers;
        let info = PoolInfo::new(config.prefix.clone(), num_threads);
        let start_info = info.clone();
        let init = config.initializer.clone();
        let config_bound = config.queue_bound;
        let names = Arc::new(config);
        let mut builder = rayon::ThreadPoolBuilder::new().num_threads(num_threads);
        if let Some(bytes) = names.stack_size {
            builder = builder.stack_size(bytes);
        }
        let pool = builder
            .thread_name({
                let names = names.clone();
                move |i| names.thread_name(i)
            })
            .start_handler(move |i| {
                let id = graph::new_thread_id();
                start_info.add_worker(id, names.thread_name(i));
                graph::enter_worker(id, &start_info);
                if let Err(why) = run_initializer(init.as_ref()) {
                    let why = broken_message(&why);
                    tracing::error!("{why}");
                    start_info.set_broken(why);
                }
            })
            .build()
            .map_err(BuildError::Rayon)?;
        Ok(RayonPool {
            pool,
            info,
            tracker: Arc::default(),
            bound: config_bound,
            num_threads,
            wait_on_drop: true,
        })
    }
}

impl Executor for RayonPool {
    fn submit<T, F>(&self, f: F) -> TaskHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (handle, job) = TaskHandle::queued(f, Some(self.info.clone()));
        if let Some(why) = self.info.broken() {
            job.abandon(TaskError::BrokenPool(why));
            return handle;
        }
        {
            let mut counts = self.tracker.lock();
            if let Some(bound) = self.bound {
                while counts.queued >= bound {
                    if graph::is_worker_of(&self.info) {
                        drop(counts);
                        job.run();
                        return handle;
                    }
                    counts = self.tracker.sleep(counts);
                }
            }
            counts.queued += 1;
            counts.outstanding += 1;
        }
        let tracker = self.tracker.clone();
        let epoch = tracker.epoch.load(Ordering::Acquire);
        self.pool.spawn(move || {
            tracker.update(|c| c.queued -= 1);
            if tracker.epoch.load(Ordering::Acquire) == epoch {
                job.run();
            } else {
                job.abandon(TaskError::Cancelled);
            }
            tracker.update(|c| c.outstanding -= 1);
        });
        handle
    }

    fn max_workers(&self) -> usize {
        self.num_threads
    }

    fn shutdown(self) {
        RayonPool::shutdown(self);
    }

    fn shutdown_now(self) {
        RayonPool::shutdown_now(self);
    }

    fn detach(self) {
        RayonPool::detach(self);
    }

    /// Cancels the tasks rayon has not started yet. Their handles resolve to
    /// [`TaskError::Cancelled`] when a rayon thread reaches them, which is at once unless every
    /// thread is busy: rayon's queue cannot be drained from outside.
    fn cancel_pending(&self) -> usize {
        let queued = self.tracker.lock().queued;
        self.tracker.epoch.fetch_add(1, Ordering::AcqRel);
        queued
    }
}

impl Drop for RayonPool {
    fn drop(&mut self) {
        if self.wait_on_drop {
            self.wait_idle();
        }
    }
}

impl fmt::Debug for RayonPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RayonPool")
            .field("num_threads", &self.num_threads)
            .field("counts", &*self.tracker.lock())
            .finish_non_exhaustive()
    }
}
