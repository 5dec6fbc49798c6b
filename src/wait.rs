//! Waiting on many tasks at once: [`as_completed`] and [`wait`], Python's
//! `concurrent.futures.as_completed` and `concurrent.futures.wait`.
//!
//! Both rest on one `Notifier` (in `sync.rs`): a queue of slot numbers plus a `Condvar`, which
//! each task pushes its slot to when it finishes, so the waiting thread sees completion order.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::TimeoutError;
use crate::handle::TaskHandle;
use crate::sync::{Notifier, deadline_after};

/// Yields task handles as their tasks finish: Python's `concurrent.futures.as_completed`.
///
/// Made by [`as_completed`], or empty by [`AsCompleted::new`] and filled with
/// [`push`](Self::push) while it is being drained, which is how a caller streams millions of
/// tasks through a bounded pool. Handles of tasks that had already finished when they were added
/// come first. The iterator ends when every handle added so far has been yielded.
///
/// # Examples
///
/// The `future_to_url` idiom: keep a map from each handle's id back to its input.
///
/// ```
/// use std::collections::HashMap;
/// use fetchall::{as_completed, Executor, ThreadPool};
///
/// let pool = ThreadPool::new(4);
/// let mut word_of = HashMap::new();
/// let handles: Vec<_> = ["a", "bb", "ccc"]
///     .into_iter()
///     .map(|word| {
///         let handle = pool.submit(move || word.len());
///         word_of.insert(handle.id(), word);
///         handle
///     })
///     .collect();
/// for handle in as_completed(handles) {
///     let word = word_of[&handle.id()];
///     assert_eq!(handle.join(), Ok(word.len()));
/// }
/// ```
pub struct AsCompleted<T> {
    notifier: Arc<Notifier>,
    /// Done slots taken from the notifier and not yet yielded, in completion order.
    ready: VecDeque<usize>,
    slots: Vec<Option<TaskHandle<T>>>,
    free: Vec<usize>,
    pending: usize,
    total: usize,
}

/// Makes an [`AsCompleted`] over `handles`. Python's `as_completed(fs)`; for its `timeout`
/// argument see [`AsCompleted::with_timeout`] and [`AsCompleted::next_timeout`].
///
/// A cancelled task is yielded as soon as it is cancelled, where CPython waits until a worker
/// reaches it in the queue (see [`TaskHandle::cancel`]).
pub fn as_completed<T, I>(handles: I) -> AsCompleted<T>
where
    T: Send + 'static,
    I: IntoIterator<Item = TaskHandle<T>>,
{
    let mut all = AsCompleted::new();
    for handle in handles {
        all.push(handle);
    }
    all
}

impl<T: Send + 'static> AsCompleted<T> {
    /// An empty set; add handles with [`push`](Self::push).
    pub fn new() -> Self {
        AsCompleted {
            notifier: Arc::default(),
            ready: VecDeque::new(),
            slots: Vec::new(),
            free: Vec::new(),
            pending: 0,
            total: 0,
        }
    }

    /// Adds a handle to be yielded when its task finishes (at once if it already has).
    pub fn push(&mut self, handle: TaskHandle<T>) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.pending += 1;
        self.total += 1;
        // After the handle is in its slot: the push may come at once, from this thread.
        let handle = self.slots[slot].insert(handle);
        handle.add_listener(self.notifier.clone(), slot);
    }

    /// How many handles have not been yielded yet.
    pub fn len(&self) -> usize {
        self.pending
    }

    /// `true` if every handle added has been yielded.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// The next finished handle if one is ready now, without blocking.
    pub fn try_next(&mut self) -> Option<TaskHandle<T>> {
        if self.ready.is_empty() {
            self.notifier.try_take_all(&mut self.ready);
        }
        let slot = self.ready.pop_front()?;
        Some(self.take(slot))
    }

    /// The next finished handle, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`TimeoutError`] (counting the unfinished) if none finished in time; `Ok(None)` means
    /// every handle has been yielded.
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<TaskHandle<T>>, TimeoutError> {
        self.next_before(Some(deadline_after(timeout)))
    }

    /// Gives every later call a total time limit of `timeout` from now: Python's
    /// `as_completed(fs, timeout)`. The iterator then yields `Err(TimeoutError)` once when time
    /// runs out, and ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use fetchall::{as_completed, Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let (release, gate) = mpsc::channel::<()>();
    /// let handles = vec![pool.submit(|| true), pool.submit(move || gate.recv().is_ok())];
    /// let mut results = as_completed(handles).with_timeout(Duration::from_millis(50));
    /// assert!(results.next().unwrap().is_ok());
    /// let err = results.next().unwrap().unwrap_err();
    /// assert_eq!(err.to_string(), "1 (of 2) tasks unfinished");
    /// release.send(()).unwrap();
    /// ```
    pub fn with_timeout(self, timeout: Duration) -> AsCompletedTimeout<T> {
        AsCompletedTimeout {
            inner: self,
            deadline: deadline_after(timeout),
            timed_out: false,
        }
    }

    /// The handles not yielded yet, in no particular order; after a time-out, for example.
    pub fn into_remaining(self) -> Vec<TaskHandle<T>> {
        self.slots.into_iter().flatten().collect()
    }

    fn next_before(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<TaskHandle<T>>, TimeoutError> {
        if self.pending == 0 {
            return Ok(None);
        }
        if self.ready.is_empty() && !self.notifier.take_all(&mut self.ready, deadline) {
            return Err(TimeoutError {
                unfinished: self.pending,
                total: self.total,
            });
        }
        match self.ready.pop_front() {
            Some(slot) => Ok(Some(self.take(slot))),
            // `take_all` returned true, so it moved at least one slot.
            None => unreachable!("take_all returned no slot"),
        }
    }

    fn take(&mut self, slot: usize) -> TaskHandle<T> {
        self.pending -= 1;
        self.free.push(slot);
        // Each slot is pushed once per handle put in it, and freed only here.
        self.slots[slot]
            .take()
            .expect("a completed slot holds its handle")
    }
}

impl<T: Send + 'static> Default for AsCompleted<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> Iterator for AsCompleted<T> {
    type Item = TaskHandle<T>;

    fn next(&mut self) -> Option<TaskHandle<T>> {
        // Without a deadline the only way out of `next_before` is a handle or the end.
        self.next_before(None).ok().flatten()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.pending, Some(self.pending))
    }
}

impl<T: Send + 'static> ExactSizeIterator for AsCompleted<T> {}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("pending", &self.pending)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// [`AsCompleted`] with a total time limit; made by [`AsCompleted::with_timeout`].
pub struct AsCompletedTimeout<T> {
    inner: AsCompleted<T>,
    deadline: Instant,
    timed_out: bool,
}

impl<T: Send + 'static> AsCompletedTimeout<T> {
    /// The handles not yielded yet (after a time-out, the unfinished ones).
    pub fn into_remaining(self) -> Vec<TaskHandle<T>> {
        self.inner.into_remaining()
    }
}

impl<T: Send + 'static> Iterator for AsCompletedTimeout<T> {
    type Item = Result<TaskHandle<T>, TimeoutError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.timed_out {
            return None;
        }
        let next = self.inner.next_before(Some(self.deadline));
        self.timed_out = next.is_err();
        next.transpose()
    }
}

impl<T> fmt::Debug for AsCompletedTimeout<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompletedTimeout")
            .field("inner", &self.inner)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// When [`wait`] returns: Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task finishes or is cancelled.
    FirstCompleted,
    /// As soon as any task fails (panics, or its pool breaks or a deadlock is refused); if none
    /// fails, when all have finished. Cancellation is not a failure, as in Python.
    FirstException,
    /// When every task has finished or been cancelled.
    AllCompleted,
}

/// What [`wait`] returns: Python's `DoneAndNotDoneFutures` named tuple.
#[derive(Debug)]
pub struct DoneAndNotDone<T> {
    /// Handles whose tasks had finished when `wait` returned.
    pub done: Vec<TaskHandle<T>>,
    /// The others.
    pub not_done: Vec<TaskHandle<T>>,
}

/// Waits until `return_when` holds or `timeout` passes, and splits the handles into those done
/// and those not: Python's `concurrent.futures.wait`. Running out of time is not an error: the
/// unfinished handles are in `not_done`. A cancelled task is done as soon as it is cancelled
/// (in CPython, once a worker reaches it; see [`TaskHandle::cancel`]).
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use fetchall::{wait, Executor, ReturnWhen, ThreadPool};
///
/// let pool = ThreadPool::new(2);
/// let (release, gate) = mpsc::channel::<()>();
/// let handles = vec![pool.submit(|| 1), pool.submit(move || { gate.recv().ok(); 2 })];
/// let first = wait(handles, None, ReturnWhen::FirstCompleted);
/// assert_eq!(first.done.len(), 1);
/// assert_eq!(first.not_done.len(), 1);
/// release.send(()).unwrap();
/// let all = wait(first.not_done, None, ReturnWhen::AllCompleted);
/// assert_eq!(all.done.len(), 1);
/// ```
pub fn wait<T, I>(
    handles: I,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<T>
where
    T: Send + 'static,
    I: IntoIterator<Item = TaskHandle<T>>,
{
    let deadline = timeout.map(deadline_after);
    let mut pending = as_completed(handles);
    let mut done = Vec::new();
    while let Ok(Some(handle)) = pending.next_before(deadline) {
        let stop = match return_when {
            ReturnWhen::FirstCompleted => true,
            ReturnWhen::FirstException => handle.is_failed(),
            ReturnWhen::AllCompleted => false,
        };
        done.push(handle);
        if stop {
            break;
        }
    }
    // Tasks that finished while we were deciding to stop count as done, as in Python.
    let (finished, not_done): (Vec<_>, Vec<_>) = pending
        .into_remaining()
        .into_iter()
        .partition(TaskHandle::is_finished);
    done.extend(finished);
    DoneAndNotDone { done, not_done }
}
