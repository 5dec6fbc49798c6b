//! The small synchronisation pieces the rest of the pool shares: deadlines, the one timed wait
//! on a `Condvar`, and the [`Notifier`] that `as_completed` and `wait` listen on.

use std::collections::VecDeque;
use std::mem;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// `now + timeout`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    deadline_from(Instant::now(), timeout)
}

/// `start + timeout`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_from(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout)
        .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Sleeps on `cond` while `blocked` holds, until `deadline` (forever if `None`). Returns the
/// guard and `true` if `blocked` no longer holds, `false` if the deadline passed first.
///
/// `blocked` runs under the lock before every sleep, so it may also record that the caller is
/// about to sleep (for a notifier that only wakes sleepers). Spurious wake-ups are handled by
/// std's `wait_while` / `wait_timeout_while`.
pub(crate) fn wait_while<'a, T>(
    cond: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    blocked: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    match deadline {
        None => (
            cond.wait_while(guard, blocked)
                .unwrap_or_else(PoisonError::into_inner),
            true,
        ),
        Some(deadline) => {
            let timeout = deadline.saturating_duration_since(Instant::now());
            let (guard, result) = cond
                .wait_timeout_while(guard, timeout, blocked)
                .unwrap_or_else(PoisonError::into_inner);
            (guard, !result.timed_out())
        }
    }
}

/// Completed slots, in completion order: what a finishing task tells `as_completed` and `wait`.
///
/// Each handle is put in a slot and its task is told "when you finish, push my slot". The task
/// does that under its own lock if it is still running (so it pushes later, exactly once), or at
/// once if it has already finished; either way no completion is lost or told twice. The waiting
/// thread pops slots in the order they were pushed, which is completion order.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    ready: Mutex<Ready>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct Ready {
    slots: VecDeque<usize>,
    /// The consumer is blocked on `cond`: only then is a futex wake worth its syscall.
    waiting: bool,
}

impl Notifier {
    fn lock(&self) -> MutexGuard<'_, Ready> {
        // Only plain data is touched under this lock.
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by a finishing task: `slot` is done.
    pub(crate) fn push(&self, slot: usize) {
        let mut ready = self.lock();
        ready.slots.push_back(slot);
        // The consumer set `waiting` under this lock and went to sleep in the same step
        // (`Condvar::wait` releases the lock atomically), so it is asleep now. Clear the flag
        // so that pushes made before it wakes do not pay for more wake-ups, and notify after
        // unlocking so that it does not wake into a held lock.
        let wake = mem::take(&mut ready.waiting);
        drop(ready);
        if wake {
            self.cond.notify_one();
        }
    }

    /// Moves every done slot into `into` (which must be empty), waiting until there is at least
    /// one or `deadline` passes (forever if `None`); `false` on time-out. Taking them all in one
    /// lock, by swapping the queues, costs the consumer one lock per batch instead of per task.
    pub(crate) fn take_all(&self, into: &mut VecDeque<usize>, deadline: Option<Instant>) -> bool {
        let ready = self.lock();
        let (mut ready, any) = wait_while(&self.cond, ready, deadline, |ready| {
            ready.waiting = ready.slots.is_empty();
            ready.waiting
        });
        ready.waiting = false;
        if any {
            mem::swap(&mut ready.slots, into);
        }
        any
    }

    /// Like [`take_all`](Self::take_all), without waiting.
    pub(crate) fn try_take_all(&self, into: &mut VecDeque<usize>) {
        let mut ready = self.lock();
        if !ready.slots.is_empty() {
            mem::swap(&mut ready.slots, into);
        }
    }
}
