//! The interface every backend shares ([`Executor`]), its ordered [`Map`], and the
//! [`Sequential`] baseline backend.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use crate::error::TaskError;
use crate::handle::TaskHandle;

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
    /// `executor.map(fn, iterable, buffersize=...)`.
    ///
    /// Lazy over the input: at most `2 * max_workers()` tasks are submitted ahead of the one
    /// being waited on, so an endless iterator works in bounded memory. Work starts at once,
    /// as in Python. Dropping the iterator cancels the tasks it submitted that have not started.
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
        self.map_buffered(f, items, buffer)
    }

    /// [`map`](Self::map) with at most `buffersize` tasks in flight (at least 1).
    fn map_buffered<I, F, R>(
        &self,
        f: F,
        items: I,
        buffersize: usize,
    ) -> Map<'_, Self, I::IntoIter, F, R>
    where
        Self: Sized,
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        let mut map = Map {
            executor: self,
            items: items.into_iter(),
            f: Arc::new(f),
            in_flight: VecDeque::new(),
            buffersize: buffersize.max(1),
        };
        map.fill();
        map
    }
}

/// The iterator [`Executor::map`] returns: results in input order.
pub struct Map<'a, E, I, F, R> {
    executor: &'a E,
    items: I,
    f: Arc<F>,
    in_flight: VecDeque<TaskHandle<R>>,
    buffersize: usize,
}

impl<E, I, F, R> Map<'_, E, I, F, R>
where
    E: Executor,
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    fn fill(&mut self) {
        while self.in_flight.len() < self.buffersize {
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
        let next = self.in_flight.pop_front()?;
        // Refill before waiting, so the pool stays busy while we wait on the oldest task.
        self.fill();
        Some(next.join())
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
