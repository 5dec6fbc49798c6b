//! `as_completed`, `wait` and `map`: completion order, time-outs, and bounded laziness.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use common::{GENEROUS, gate, within};
use fetchall::InvalidState;
use fetchall::{
    AsCompleted, Executor, ReturnWhen, TaskError, TaskHandle, ThreadPool, TimeoutError,
    ZeroBufferSize, as_completed, wait,
};

/// Submits `n` tasks that each wait for their own gate and return their index.
fn gated(pool: &ThreadPool, n: usize) -> (Vec<Sender<()>>, Vec<TaskHandle<usize>>) {
    (0..n)
        .map(|i| {
            let (open, wait_here) = gate();
            (
                open,
                pool.submit(move || wait_here.recv().map(|()| i).unwrap_or(usize::MAX)),
            )
        })
        .unzip()
}

#[test]
fn as_completed_yields_in_completion_order() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(3);
        let (gates, handles) = gated(&pool, 3);
        let mut index_of: HashMap<u64, usize> = HashMap::new();
        for (i, h) in handles.iter().enumerate() {
            index_of.insert(h.id(), i);
        }
        let mut done = as_completed(handles);
        for i in [2, 0, 1] {
            gates[i].send(()).unwrap();
            let handle = done.next().unwrap();
            // The future_to_url idiom: map the handle back to its input.
            assert_eq!(index_of[&handle.id()], i);
            assert_eq!(handle.join(), Ok(i));
        }
        assert!(done.next().is_none());
    });
}

#[test]
fn already_finished_handles_come_first() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(2);
        let (gates, mut handles) = gated(&pool, 1);
        let finished: Vec<_> = (10..13).map(|i| pool.submit(move || i)).collect();
        for h in &finished {
            assert!(h.wait_timeout(GENEROUS));
        }
        handles.extend(finished);
        let mut done = as_completed(handles);
        let firsts: Vec<usize> = (0..3)
            .map(|_| done.next().unwrap().join().unwrap())
            .collect();
        assert_eq!(firsts, [10, 11, 12]);
        gates[0].send(()).unwrap();
        assert_eq!(done.next().unwrap().join(), Ok(0));
    });
}

#[test]
fn total_timeout_names_the_unfinished() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(3);
        let (gates, mut handles) = gated(&pool, 2);
        handles.push(pool.submit(|| 7));
        let mut done = as_completed(handles).with_timeout(Duration::from_millis(100));
        assert_eq!(done.next().unwrap().unwrap().join(), Ok(7));
        let err = done.next().unwrap().unwrap_err();
        assert_eq!(
            err,
            TimeoutError {
                unfinished: 2,
                total: 3
            }
        );
        assert_eq!(err.to_string(), "2 (of 3) tasks unfinished");
        assert!(
            done.next().is_none(),
            "the iterator ends after its time-out"
        );
        let rest = done.into_remaining();
        assert_eq!(rest.len(), 2);
        for g in gates {
            g.send(()).unwrap();
        }
        let mut values: Vec<usize> = rest.into_iter().map(|h| h.join().unwrap()).collect();
        values.sort();
        assert_eq!(values, [0, 1]);
    });
}

#[test]
fn streaming_push_while_draining() {
    within(GENEROUS, || {
        let pool = ThreadPool::builder()
            .num_threads(2)
            .queue_bound(4)
            .build()
            .unwrap();
        let mut pending = AsCompleted::new();
        let mut seen = vec![0_u32; 1000];
        let mut most_pending = 0;
        for i in 0..1000_usize {
            pending.push(pool.submit(move || i));
            while let Some(h) = pending.try_next() {
                seen[h.join().unwrap()] += 1;
            }
            most_pending = most_pending.max(pending.len());
        }
        for h in pending.by_ref() {
            seen[h.join().unwrap()] += 1;
        }
        assert!(pending.is_empty());
        assert!(
            seen.iter().all(|&n| n == 1),
            "every task yielded exactly once"
        );
        // Bounded: the queue bound plus the running and just-finished tasks.
        assert!(
            most_pending <= 4 + 2 + 2,
            "pending peaked at {most_pending}"
        );
    });
}

#[test]
fn next_timeout_and_try_next() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(1);
        let (gates, handles) = gated(&pool, 1);
        let mut done = as_completed(handles);
        assert!(done.try_next().is_none());
        assert_eq!(
            done.next_timeout(Duration::from_millis(10)).unwrap_err(),
            TimeoutError {
                unfinished: 1,
                total: 1
            }
        );
        gates[0].send(()).unwrap();
        assert_eq!(done.next_timeout(GENEROUS).unwrap().unwrap().join(), Ok(0));
        assert!(done.next_timeout(Duration::ZERO).unwrap().is_none());
    });
}

#[test]
fn wait_first_completed() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(3);
        let (gates, handles) = gated(&pool, 3);
        gates[1].send(()).unwrap();
        let split = wait(handles, None, ReturnWhen::FirstCompleted);
        assert_eq!(split.done.len(), 1);
        assert_eq!(split.not_done.len(), 2);
        for g in &gates {
            let _ = g.send(());
        }
        let done = split.done.into_iter().next().unwrap();
        assert_eq!(done.join(), Ok(1));
    });
}

#[test]
fn wait_first_exception_returns_on_a_panic_but_not_on_a_cancel() {
    within(GENEROUS, || {
        // Two workers held by the gated tasks, one for the task that panics.
        let pool = ThreadPool::new(3);
        let (gates, mut handles) = gated(&pool, 2);
        let (open, wait_here) = gate();
        handles.push(pool.submit(move || -> usize {
            let _ = wait_here.recv();
            panic!("failed")
        }));
        // All three workers are held, so this one is still queued.
        let queued = pool.submit(|| 99);
        assert!(queued.cancel());
        handles.push(queued);
        open.send(()).unwrap();
        let split = wait(handles, None, ReturnWhen::FirstException);
        // The cancelled task is done but did not stop the wait; the panic did.
        assert_eq!(split.done.len(), 2);
        assert_eq!(split.not_done.len(), 2);
        let results: Vec<_> = split.done.into_iter().map(TaskHandle::join).collect();
        assert!(results.contains(&Err(TaskError::Cancelled)));
        assert!(results.contains(&Err(TaskError::Panicked("failed".into()))));
        for g in gates {
            g.send(()).unwrap();
        }
        let all = wait(split.not_done, None, ReturnWhen::FirstException);
        assert_eq!(
            (all.done.len(), all.not_done.len()),
            (2, 0),
            "no failure: waits for all"
        );
    });
}

#[test]
fn wait_all_completed_and_timeout_is_not_an_error() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(2);
        let (gates, handles) = gated(&pool, 2);
        gates[0].send(()).unwrap();
        let split = wait(
            handles,
            Some(Duration::from_millis(100)),
            ReturnWhen::AllCompleted,
        );
        assert_eq!((split.done.len(), split.not_done.len()), (1, 1));
        gates[1].send(()).unwrap();
        let split = wait(split.not_done, None, ReturnWhen::AllCompleted);
        assert_eq!((split.done.len(), split.not_done.len()), (1, 0));
    });
}

#[test]
fn map_keeps_input_order_when_completion_order_differs() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(4);
        // Item 0 finishes last: it waits until item 3 has run.
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(Some(rx)));
        let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
        let results: Vec<_> = pool
            .map(
                move |i: usize| {
                    if i == 0 {
                        let rx = rx.lock().unwrap().take();
                        if let Some(rx) = rx {
                            let _ = rx.recv();
                        }
                    }
                    if i == 3 {
                        tx.lock().unwrap().take();
                    }
                    i * 10
                },
                0..6,
            )
            .map(Result::unwrap)
            .collect();
        assert_eq!(results, [0, 10, 20, 30, 40, 50]);
    });
}

#[test]
fn map_is_lazy_and_bounded_over_an_endless_input() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(2);
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let endless = (0_u64..).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let first: Vec<u64> = pool
            .map_buffered(|n| n + 1, endless, 3)
            .unwrap()
            .take(5)
            .map(Result::unwrap)
            .collect();
        assert_eq!(first, [1, 2, 3, 4, 5]);
        // Five yielded, at most three ahead.
        assert!(
            pulled.load(Ordering::SeqCst) <= 5 + 3,
            "pulled {}",
            pulled.load(Ordering::SeqCst)
        );
    });
}

#[test]
fn map_reports_a_panic_at_its_position() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(2);
        let results: Vec<_> = pool
            .map(
                |i: i32| if i == 1 { panic!("bad item {i}") } else { i },
                0..3,
            )
            .collect();
        assert_eq!(
            results,
            [Ok(0), Err(TaskError::Panicked("bad item 1".into())), Ok(2)]
        );
    });
}

#[test]
fn dropping_map_cancels_what_has_not_started() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let (started_tx, started) = mpsc::channel();
        let (open, wait_here) = gate();
        let wait_here = std::sync::Mutex::new(wait_here);
        let mut results = pool
            .map_buffered(
                move |i: usize| {
                    if i == 1 {
                        started_tx.send(()).unwrap();
                        let _ = wait_here.lock().unwrap().recv();
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                },
                0..10,
                5,
            )
            .unwrap();
        assert!(results.next().unwrap().is_ok());
        // Item 1 now holds the only worker; items 2..=5 are queued behind it.
        started.recv().unwrap();
        drop(results);
        open.send(()).unwrap();
        drop(pool);
        assert_eq!(ran.load(Ordering::SeqCst), 2, "only items 0 and 1 ran");
    });
}

#[test]
fn map_buffered_refuses_a_buffer_of_zero() {
    let pool = ThreadPool::new(1);
    let err = pool.map_buffered(|n: u8| n, 0..3, 0).unwrap_err();
    assert_eq!(err, ZeroBufferSize);
    assert_eq!(err.to_string(), "buffersize must be greater than 0");
}

#[test]
fn map_timeout_yields_timeout_for_a_late_result_and_cancels_the_rest() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let (open, wait_here) = gate();
        let wait_here = std::sync::Mutex::new(wait_here);
        let results: Vec<_> = pool
            .map_buffered(
                move |i: usize| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    if i == 1 {
                        let _ = wait_here.lock().unwrap().recv();
                    }
                    i
                },
                0..10,
                4,
            )
            .unwrap()
            .timeout(Duration::from_secs(1))
            .collect();
        // Item 0 came in time; item 1 holds the only worker past the deadline; the iterator
        // ended there, and items 2.. were cancelled before they started (or never submitted).
        assert_eq!(results, [Ok(0), Err(TaskError::Timeout)]);
        open.send(()).unwrap();
        drop(pool);
        assert_eq!(ran.load(Ordering::SeqCst), 2, "only items 0 and 1 ran");
    });
}

#[test]
fn map_timeout_counts_from_the_map_call() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(1);
        let (open, wait_here) = gate();
        let wait_here = std::sync::Mutex::new(wait_here);
        // A deadline of zero from the call has passed before the first result is asked for.
        let mut results = pool
            .map(
                move |i: usize| {
                    let _ = wait_here.lock().unwrap().recv();
                    i
                },
                0..3,
            )
            .timeout(Duration::ZERO);
        assert_eq!(results.next(), Some(Err(TaskError::Timeout)));
        assert_eq!(results.next(), None);
        drop(open);
        // A generous one lets every result through.
        let all: Vec<_> = pool.map(|i: u8| i, 0..3).timeout(GENEROUS).collect();
        assert_eq!(all, [Ok(0), Ok(1), Ok(2)]);
    });
}

#[test]
fn a_handle_completed_by_hand_mixes_with_pool_handles() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(2);
        let (gates, mut handles) = gated(&pool, 1);
        let (completer, by_hand) = TaskHandle::pending();
        let by_hand_id = by_hand.id();
        assert!(!by_hand.is_finished() && !by_hand.is_running());
        handles.push(by_hand);
        let mut done = as_completed(handles);
        assert!(done.try_next().is_none());
        // Completed from another thread, as a callback API would.
        std::thread::spawn(move || completer.set_result(7))
            .join()
            .unwrap()
            .unwrap();
        let first = done.next().unwrap();
        assert_eq!(first.id(), by_hand_id);
        assert_eq!(first.join(), Ok(7));
        gates[0].send(()).unwrap();
        assert_eq!(done.next().unwrap().join(), Ok(0));
    });
}

#[test]
fn a_second_set_or_a_set_after_cancel_is_invalid_state() {
    let (completer, handle) = TaskHandle::pending();
    assert_eq!(completer.set_result(1), Ok(()));
    assert_eq!(completer.set_result(2), Err(InvalidState));
    assert_eq!(completer.set_error(TaskError::Timeout), Err(InvalidState));
    assert_eq!(completer.set_running_or_notify_cancel(), Err(InvalidState));
    assert_eq!(handle.join(), Ok(1));

    let (completer, handle) = TaskHandle::<u8>::pending();
    assert!(handle.cancel());
    assert_eq!(completer.set_running_or_notify_cancel(), Ok(false));
    assert_eq!(completer.set_result(1), Err(InvalidState));
    assert_eq!(handle.join(), Err(TaskError::Cancelled));
}

#[test]
fn a_dropped_completer_resolves_its_handle_instead_of_hanging() {
    within(GENEROUS, || {
        let (completer, handle) = TaskHandle::<u8>::pending();
        let (forgotten_completer, forgotten) = TaskHandle::<u8>::pending();
        let waiter = std::thread::spawn(move || handle.join());
        drop(forgotten_completer);
        drop(completer);
        assert_eq!(waiter.join().unwrap(), Err(TaskError::Abandoned));
        assert_eq!(forgotten.join(), Err(TaskError::Abandoned));
        // Running, then dropped: the same.
        let (completer, handle) = TaskHandle::<u8>::pending();
        assert_eq!(completer.set_running_or_notify_cancel(), Ok(true));
        drop(completer);
        assert_eq!(handle.join(), Err(TaskError::Abandoned));
    });
}

#[test]
fn wait_first_exception_sees_an_error_set_by_hand() {
    within(GENEROUS, || {
        let (completer, by_hand) = TaskHandle::pending();
        // Never completed: the wait can only end on the error.
        let (_never, pending) = TaskHandle::<i32>::pending();
        let handles = vec![pending, by_hand];
        completer
            .set_error(TaskError::Panicked("refused".into()))
            .unwrap();
        let split = wait(handles, None, ReturnWhen::FirstException);
        assert_eq!((split.done.len(), split.not_done.len()), (1, 1));
        let failed = split.done.into_iter().next().expect("one done");
        assert_eq!(failed.join(), Err(TaskError::Panicked("refused".into())));
    });
}
