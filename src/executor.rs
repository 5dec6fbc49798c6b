//! The interface every backend shares ([`Executor`]), its ordered [`Map`], and the
//! [`Sequential`] baseline backend.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{TaskError, ZeroBufferSize};
use crate::handle::TaskHandle;
use crate::sync::deadline_from;

/// Something that runs closures and hands back [`TaskHandle`]s: Python's `Executor`.
///
/// Implemented by the hand-written [`ThreadPool`](crate::ThreadPool), by
/// `RayonPool` (feature `rayon`), and by [`Sequential`]. The same handles,
/// [`as_completed`](crate::as_completed) and [`wait`](crate::wait) work with all three, so code
/// written against `E: Executor` can be measured on each.
pub trait Executor: Sync {
    /// Schedules `f` and returns a handle to its result: Python's `executor.submit(fn)`.
    ///
    /// A bounded pool blocks here while its queue is full. Submitting to a broken pool returns a
    /// handle that is already resolved to [`TaskError::BrokenPool`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::{Executor, Sequential, ThreadPool};
    ///
    /// fn double_on<E: Executor>(executor: &E) -> i32 {
    ///     executor.submit(|| 21 * 2).join().unwrap()
    /// }
    /// assert_eq!(double_on(&ThreadPool::new(2)), 42);
    /// assert_eq!(double_on(&Sequential), 42);
    /// ```
    fn submit<T, F>(&self, f: F) -> TaskHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// How many tasks can run at once.
    fn max_workers(&self) -> usize;

    /// Cancels every task that is queued and not yet started; returns how many. Their handles
    /// resolve to [`TaskError::Cancelled`]. Running tasks are not touched, and neither is a task
    /// a worker is already committed to (see
    /// [`ThreadPool::shutdown_now`](crate::ThreadPool::shutdown_now)). This is the first half of
    /// Python's `shutdown(cancel_futures=True)`, usable without shutting down (on Ctrl-C, say).
    fn cancel_pending(&self) -> usize;

    /// Stops taking tasks, lets the queued ones run, and waits for all of them: Python's
    /// `executor.shutdown(wait=True)`. Dropping a backend of this crate does the same.
    ///
    /// The default drops `self`, which is all an executor whose `Drop` waits needs.
    fn shutdown(self)
    where
        Self: Sized,
    {
        drop(self);
    }

    /// [`cancel_pending`](Self::cancel_pending), then [`shutdown`](Self::shutdown): Python's
    /// `executor.shutdown(cancel_futures=True)`.
    #[doc(alias = "cancel_futures")]
    fn shutdown_now(self)
    where
        Self: Sized,
    {
        self.cancel_pending();
        self.shutdown();
    }

    /// Stops taking tasks and returns at once, leaving running (and queued) tasks to finish on
    /// threads nobody waits for: Python's `executor.shutdown(wait=False)`. For a program about
    /// to exit while tasks are stuck in long calls.
    ///
    /// The default is [`shutdown`](Self::shutdown), right for an executor that owns no threads
    /// ([`Sequential`]); the crate's pools override it.
    fn detach(self)
    where
        Self: Sized,
    {
        self.shutdown();
    }

    /// Runs `f` on every item and yields the results in input order: Python's
    /// `executor.map(fn, iterable, buffersize=...)`. For Python's `timeout=`, see
    /// [`Map::timeout`].
    ///
    /// Lazy over the input: at most `2 * max_workers()` tasks are submitted ahead of the one
    /// being waited on, so an endless iterator works in bounded memory. Work starts at once,
    /// as in Python.
    ///
    /// Differs from Python on purpose: Python without `buffersize` submits every item at once;
    /// and dropping the iterator cancels the tasks it submitted that have not started, where
    /// CPython cancels them only when the garbage collector closes its generator.
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::new(4);
    /// let squares: Vec<u64> = pool.map(|n: u64| n * n, 1..).take(5).map(Result::unwrap).collect();
    /// assert_eq!(squares, [1, 4, 9, 16, 25]);
    /// ```
    fn map<I, F, R>(&self, f: F, items: I) -> Map<'_, Self, I::IntoIter, F, R>
    where
        Self: Sized,
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        let buffer = self.max_workers().saturating_mul(2).max(1);
        Map::new(self, f, items.into_iter(), buffer)
    }

    /// [`map`](Self::map) with at most `buffersize` tasks in flight: Python's
    /// `executor.map(fn, iterable, buffersize=n)`.
    ///
    /// # Errors
    ///
    /// [`ZeroBufferSize`] for a `buffersize` of 0, as Python raises `ValueError`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let doubled: Vec<_> = pool.map_buffered(|n: i32| n * 2, 0..4, 2)?.map(Result::unwrap).collect();
    /// assert_eq!(doubled, [0, 2, 4, 6]);
    /// assert!(pool.map_buffered(|n: i32| n, 0..4, 0).is_err());
    /// # Ok::<(), fetchall::ZeroBufferSize>(())
    /// ```
    fn map_buffered<I, F, R>(
        &self,
        f: F,
        items: I,
        buffersize: usize,
    ) -> Result<Map<'_, Self, I::IntoIter, F, R>, ZeroBufferSize>
    where
        Self: Sized,
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        if buffersize == 0 {
            return Err(ZeroBufferSize);
        }
        Ok(Map::new(self, f, items.into_iter(), buffersize))
    }
}

/// The iterator [`Executor::map`] returns: results in input order.
pub struct Map<'a, E, I, F, R> {
    executor: &'a E,
    items: I,
    f: Arc<F>,
    in_flight: VecDeque<TaskHandle<R>>,
    buffersize: usize,
    /// When `map` was called, which [`Map::timeout`] counts from.
    called: Instant,
    deadline: Option<Instant>,
    /// A result timed out: nothing more is submitted or yielded.
    stopped: bool,
}

impl<'a, E, I, F, R> Map<'a, E, I, F, R>
where
    E: Executor,
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    fn new(executor: &'a E, f: F, items: I, buffersize: usize) -> Self {
        let mut map = Map {
            executor,
            items,
            f: Arc::new(f),
            in_flight: VecDeque::new(),
            buffersize,
            called: Instant::now(),
            deadline: None,
            stopped: false,
        };
        map.fill();
        map
    }

    /// Gives every result a deadline of `timeout` after the `map` call: Python's
    /// `executor.map(fn, iterable, timeout=...)`.
    ///
    /// The first result not ready by then is yielded as `Err(`[`TaskError::Timeout`]`)`, every
    /// task not started yet is cancelled (no more items are taken), and the iterator ends.
    /// Tasks already running go on, as in Python.
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
    /// let gate = std::sync::Mutex::new(gate);
    /// let results: Vec<_> = pool
    ///     .map(move |n: u32| { if n == 1 { gate.lock().unwrap().recv().ok(); } n }, 0..5)
    ///     .timeout(Duration::from_secs(1))
    ///     .collect();
    /// assert_eq!(results, [Ok(0), Err(TaskError::Timeout)]);
    /// release.send(()).unwrap();
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some(deadline_from(self.called, timeout));
        self
    }

    fn fill(&mut self) {
        while !self.stopped && self.in_flight.len() < self.buffersize {
            let Some(item) = self.items.next() else { break };
            let f = self.f.clone();
            self.in_flight
                .push_back(self.executor.submit(move || f(item)));
        }
    }
}

impl<E, I, F, R> Iterator for Map<'_, E, I, F, R>
where
    E: Executor,
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.stopped {
            return None;
        }
        let next = self.in_flight.pop_front()?;
        // Refill before waiting, so the pool stays busy while we wait on the oldest task.
        self.fill();
        let Some(deadline) = self.deadline else {
            return Some(next.join());
        };
        if next.wait_timeout(deadline.saturating_duration_since(Instant::now())) {
            return Some(next.join());
        }
        // Python's result_iterator cancels the late future and every one after it.
        next.cancel();
        self.stopped = true;
        for handle in self.in_flight.drain(..) {
            handle.cancel();
        }
        Some(Err(TaskError::Timeout))
    }
}

impl<E, I, F, R> Drop for Map<'_, E, I, F, R> {
    fn drop(&mut self) {
        for handle in &self.in_flight {
            handle.cancel();
        }
    }
}

impl<E, I, F, R> fmt::Debug for Map<'_, E, I, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("in_flight", &self.in_flight.len())
            .field("buffersize", &self.buffersize)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// Runs each task at once on the thread that submits it: the baseline every pool is measured
/// against. `submit` returns a handle that is already finished.
///
/// # Examples
///
/// ```
/// use fetchall::{Executor, Sequential};
///
/// let handle = Sequential.submit(|| std::thread::current().id());
/// assert_eq!(handle.join(), Ok(std::thread::current().id()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Sequential;

impl Executor for Sequential {
    fn submit<T, F>(&self, f: F) -> TaskHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (handle, job) = TaskHandle::queued(f, None);
        job.run();
        handle
    }

    fn max_workers(&self) -> usize {
        1
    }

    fn cancel_pending(&self) -> usize {
        0
    }
}
