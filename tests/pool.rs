//! The hand-written pool: sizing, names, initializer and broken pools, panics, handles,
//! bounded submission, shutdown, and that no thread outlives the pool.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use common::{GENEROUS, arrives_soon, gate, within};
use fetchall::{
    BuildError, Executor, TaskError, TaskHandle, ThreadPool, as_completed, default_workers,
};

fn current_name() -> String {
    thread::current().name().unwrap_or_default().to_owned()
}

/// Runs one task on each of the `n` workers at once (a barrier keeps any worker from taking two)
/// and returns their thread names.
fn worker_names(pool: &ThreadPool, n: usize) -> BTreeSet<String> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            pool.submit(move || {
                barrier.wait();
                current_name()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn default_workers_follows_python_rule() {
    let cpus = thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(default_workers(), (cpus + 4).min(32));
}

#[test]
fn zero_workers_is_an_error() {
    let err = ThreadPool::builder().num_threads(0).build().unwrap_err();
    assert!(matches!(err, BuildError::ZeroWorkers));
    assert_eq!(err.to_string(), "max_workers must be greater than 0");
    let err = ThreadPool::builder().queue_bound(0).build().unwrap_err();
    assert!(matches!(err, BuildError::ZeroQueueBound));
}

#[test]
fn a_prefix_with_a_nul_byte_is_an_error_not_a_panic() {
    let err = ThreadPool::builder()
        .thread_name_prefix("bad\0name")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::NulInName), "{err}");
}

#[test]
#[should_panic(expected = "max_workers must be greater than 0")]
fn new_with_zero_workers_panics() {
    let _ = ThreadPool::new(0);
}

#[test]
fn threads_are_named_prefix_underscore_index() {
    within(GENEROUS, || {
        let pool = ThreadPool::builder()
            .num_threads(3)
            .thread_name_prefix("fetch")
            .build()
            .unwrap();
        let expected: BTreeSet<String> = ["fetch_0", "fetch_1", "fetch_2"].map(String::from).into();
        assert_eq!(worker_names(&pool, 3), expected);
    });
}

#[test]
fn default_names_are_like_pythons() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(2);
        let names = worker_names(&pool, 2);
        let prefixes: BTreeSet<&str> = names
            .iter()
            .filter_map(|n| n.rsplit_once('_'))
            .map(|(p, _)| p)
            .collect();
        assert_eq!(prefixes.len(), 1, "{names:?}");
        let prefix = prefixes.first().unwrap();
        let number = prefix
            .strip_prefix("ThreadPoolExecutor-")
            .expect("Python's prefix");
        assert!(number.parse::<u64>().is_ok(), "{names:?}");
        let suffixes: BTreeSet<&str> = names
            .iter()
            .filter_map(|n| n.rsplit_once('_'))
            .map(|(_, i)| i)
            .collect();
        assert_eq!(suffixes, BTreeSet::from(["0", "1"]));
    });
}

#[test]
fn initializer_runs_once_per_worker_before_tasks() {
    within(GENEROUS, || {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let pool = ThreadPool::builder()
            .num_threads(3)
            .initializer(move || {
                seen.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            })
            .build()
            .unwrap();
        // Every worker has started a task, so every initializer has returned.
        let names = worker_names(&pool, 3);
        assert_eq!(names.len(), 3);
        assert_eq!(count.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn failing_initializer_breaks_queued_and_later_tasks() {
    within(GENEROUS, || {
        let (open, gate_rx) = gate();
        let gate_rx = Mutex::new(gate_rx);
        let pool = ThreadPool::builder()
            .num_threads(2)
            .initializer(move || {
                // Hold the workers in their initializer until tasks are queued.
                let _ = gate_rx.lock().unwrap().recv();
                Err("no database")
            })
            .build()
            .unwrap();
        let queued: Vec<_> = (0..5).map(|i| pool.submit(move || i)).collect();
        drop(open);
        for handle in queued {
            match handle.join() {
                Err(TaskError::BrokenPool(why)) => assert!(why.contains("no database"), "{why}"),
                other => panic!("expected BrokenPool, got {other:?}"),
            }
        }
        let later = pool.submit(|| 1);
        assert!(
            later.is_finished(),
            "a submit to a broken pool resolves at once"
        );
        assert!(matches!(later.join(), Err(TaskError::BrokenPool(_))));
    });
}

#[test]
fn panicking_initializer_breaks_the_pool_with_its_message() {
    within(GENEROUS, || {
        let pool = ThreadPool::builder()
            .num_threads(1)
            .initializer(|| -> Result<(), String> { panic!("init exploded") })
            .build()
            .unwrap();
        match pool.submit(|| 1).join() {
            Err(TaskError::BrokenPool(why)) => assert!(why.contains("init exploded"), "{why}"),
            other => panic!("expected BrokenPool, got {other:?}"),
        }
    });
}

#[test]
fn panic_is_data_and_worker_survives() {
    within(GENEROUS, || {
        let pool = ThreadPool::builder()
            .num_threads(1)
            .thread_name_prefix("solo")
            .build()
            .unwrap();
        let boom = pool.submit(|| -> i32 { panic!("boom {}", 7) });
        assert_eq!(boom.join(), Err(TaskError::Panicked("boom 7".into())));
        // Same single worker, still alive.
        assert_eq!(pool.submit(current_name).join(), Ok("solo_0".to_owned()));
    });
}

#[test]
fn states_move_queued_running_finished() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(1);
        let (open, first) = hold_worker(&pool);
        let second = pool.submit(|| 2);
        assert!(first.is_running() && !first.is_finished());
        assert!(!second.is_running() && !second.is_finished());
        open.send(()).unwrap();
        assert_eq!(first.join(), Ok(true));
        assert_eq!(second.result(), Ok(2));
        assert!(second.is_finished() && !second.is_running() && !second.is_cancelled());
    });
}

#[test]
fn cancel_succeeds_only_while_queued() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(1);
        let (open, running) = hold_worker(&pool);
        let ran = Arc::new(AtomicUsize::new(0));
        let ran_in_task = ran.clone();
        let queued = pool.submit(move || ran_in_task.fetch_add(1, Ordering::SeqCst));
        assert!(!running.cancel(), "a running task cannot be cancelled");
        assert!(queued.cancel());
        assert!(queued.cancel(), "cancelling twice still says cancelled");
        assert!(queued.is_cancelled() && queued.is_finished());
        open.send(()).unwrap();
        assert_eq!(running.join(), Ok(true));
        let finished = pool.submit(|| 3);
        assert!(finished.wait_timeout(GENEROUS));
        assert!(!finished.cancel(), "a finished task cannot be cancelled");
        assert_eq!(queued.join(), Err(TaskError::Cancelled));
        // Let the worker pass the cancelled entry, then check it never ran.
        assert_eq!(finished.join(), Ok(3));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn join_timeout_times_out_and_task_keeps_running() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(1);
        let (open, wait_here) = gate();
        let (done_tx, done) = mpsc::channel();
        let slow = pool.submit(move || {
            let _ = wait_here.recv();
            done_tx.send("finished anyway").unwrap();
        });
        assert!(!slow.wait_timeout(Duration::from_millis(20)));
        assert_eq!(
            slow.join_timeout(Duration::from_millis(20)),
            Err(TaskError::Timeout)
        );
        open.send(()).unwrap();
        assert_eq!(done.recv().unwrap(), "finished anyway");
    });
}

#[test]
fn done_callbacks_run_on_completion_or_at_once_and_panics_are_caught() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(1);
        let (open, wait_here) = gate();
        let (tx, rx) = mpsc::channel::<String>();
        let task = pool.submit(move || {
            let _ = wait_here.recv();
            5
        });
        let tx1 = tx.clone();
        task.add_done_callback(move |h| tx1.send(format!("first saw {:?}", h.result())).unwrap());
        task.add_done_callback(|_| panic!("callback exploded"));
        let tx2 = tx.clone();
        task.add_done_callback(move |h| {
            tx2.send(format!("third saw done={}", h.is_finished()))
                .unwrap()
        });
        assert!(rx.try_recv().is_err(), "callbacks wait for the task");
        open.send(()).unwrap();
        assert_eq!(rx.recv().unwrap(), "first saw Ok(5)");
        assert_eq!(rx.recv().unwrap(), "third saw done=true");
        // Already finished: runs at once, on this thread.
        let here = current_name();
        task.add_done_callback(move |_| tx.send(current_name()).unwrap());
        assert_eq!(rx.try_recv().unwrap(), here);
        assert_eq!(
            task.join(),
            Ok(5),
            "a panicking callback leaves the result alone"
        );
    });
}

#[test]
fn bounded_queue_blocks_submit_until_there_is_room() {
    within(GENEROUS, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .num_threads(1)
                .queue_bound(2)
                .build()
                .unwrap(),
        );
        let (open, busy) = hold_worker(&pool);
        let queued: Vec<_> = (0..2).map(|i| pool.submit(move || i)).collect();
        let (submitted_tx, submitted) = mpsc::channel();
        let submitter_pool = pool.clone();
        let submitter = thread::spawn(move || {
            let third = submitter_pool.submit(|| 2);
            submitted_tx.send(()).unwrap();
            third.join()
        });
        assert!(
            !arrives_soon(&submitted),
            "the third submit must block while 2 are queued"
        );
        open.send(()).unwrap();
        submitted.recv().unwrap();
        assert_eq!(submitter.join().unwrap(), Ok(2));
        busy.join().unwrap();
        let values: Vec<_> = queued.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(values, [0, 1]);
    });
}

#[test]
fn a_worker_submitting_to_its_own_full_queue_runs_the_task_itself() {
    within(GENEROUS, || {
        let pool = Arc::new(
            ThreadPool::builder()
                .num_threads(1)
                .queue_bound(1)
                .build()
                .unwrap(),
        );
        let inner_pool = pool.clone();
        let outer = pool.submit(move || {
            let filler = inner_pool.submit(current_name);
            // The queue (bound 1) is full, and the only worker is this one: blocking would
            // deadlock, so submit runs the task here and returns it finished.
            let inline = inner_pool.submit(current_name);
            let finished_on_return = inline.is_finished();
            (filler, finished_on_return, inline.join(), current_name())
        });
        let (filler, finished_on_return, inline, worker) = outer.join().unwrap();
        assert!(finished_on_return);
        assert_eq!(inline, Ok(worker));
        assert_eq!(filler.join(), Ok(worker_name_of(&pool)));
    });
}

/// A pool whose single worker is held at a gate, with three tasks queued behind it.
fn held_pool() -> (
    ThreadPool,
    Sender<()>,
    TaskHandle<bool>,
    Vec<TaskHandle<usize>>,
) {
    let pool = ThreadPool::new(1);
    let (open, running) = hold_worker(&pool);
    let queued = (0..3).map(|i| pool.submit(move || i)).collect();
    (pool, open, running, queued)
}

/// Occupies one worker of `pool` with a task that waits at a gate, and returns once it has
/// started: the gate's opener, and the task (which returns `true` when the gate opens).
fn hold_worker(pool: &ThreadPool) -> (Sender<()>, TaskHandle<bool>) {
    let (open, wait_here) = gate();
    let (started_tx, started) = mpsc::channel();
    let running = pool.submit(move || {
        started_tx.send(()).unwrap();
        wait_here.recv().is_ok()
    });
    started.recv().unwrap();
    (open, running)
}

#[test]
fn shutdown_waits_for_queued_tasks_to_run() {
    within(GENEROUS, || {
        let (pool, open, running, queued) = held_pool();
        open.send(()).unwrap();
        pool.shutdown();
        assert_eq!(running.join(), Ok(true));
        let values: Vec<_> = queued.into_iter().map(TaskHandle::join).collect();
        assert_eq!(values, [Ok(0), Ok(1), Ok(2)]);
    });
}

#[test]
fn shutdown_now_cancels_queued_tasks_and_waits_for_running_ones() {
    within(GENEROUS, || {
        let (pool, open, running, queued) = held_pool();
        // Open the gate only once the last queued task is resolved, i.e. by the cancellation
        // inside shutdown, so the worker cannot reach the queued tasks first.
        queued[2].add_done_callback(move |_| open.send(()).unwrap());
        pool.shutdown_now();
        assert_eq!(running.join(), Ok(true));
        let values: Vec<_> = queued.into_iter().map(TaskHandle::join).collect();
        assert_eq!(values, vec![Err(TaskError::Cancelled); 3]);
    });
}

#[test]
fn detach_returns_while_tasks_run() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(1);
        let (open, running) = hold_worker(&pool);
        let queued = pool.submit(|| "still runs");
        pool.detach(); // must not wait for the gated task
        open.send(()).unwrap();
        assert_eq!(running.join(), Ok(true));
        assert_eq!(queued.join(), Ok("still runs"));
    });
}

/// Sends on its channel when dropped; kept in a worker's thread-local storage, it reports that
/// the worker thread has exited (thread-local destructors run as a thread exits).
struct ExitSignal(Sender<String>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let _ = self.0.send(current_name());
    }
}

thread_local! {
    static EXIT_SIGNAL: RefCell<Option<ExitSignal>> = const { RefCell::new(None) };
}

#[test]
fn no_thread_outlives_its_pool() {
    within(GENEROUS, || {
        let (tx, exited) = mpsc::channel();
        let tx = Mutex::new(tx);
        let pool = ThreadPool::builder()
            .num_threads(4)
            .thread_name_prefix("gone")
            .initializer(move || {
                let signal = ExitSignal(tx.lock().unwrap().clone());
                EXIT_SIGNAL.with(|s| *s.borrow_mut() = Some(signal));
                Ok::<(), String>(())
            })
            .build()
            .unwrap();
        let handles: Vec<_> = (0..100).map(|i| pool.submit(move || i * 2)).collect();
        // Threads start on demand: between one and four of them ran the 100 tasks.
        let started = pool.started_threads();
        assert!((1..=4).contains(&started), "{started}");
        drop(pool);
        // Drop has joined every worker, so all have already signalled: no waiting here.
        let gone: BTreeSet<String> = exited.try_iter().collect();
        let expected: BTreeSet<String> = (0..started).map(|i| format!("gone_{i}")).collect();
        assert_eq!(gone, expected);
        // And every queued task ran before the workers left.
        let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (0..100).map(|i| i * 2).sum::<i32>());
    });
}

#[test]
fn dropping_the_last_reference_inside_a_task_does_not_hang() {
    within(GENEROUS, || {
        let pool = Arc::new(ThreadPool::new(2));
        let (release, wait_here) = gate();
        let (dropped_tx, dropped) = mpsc::channel();
        let in_task = pool.clone();
        pool.submit(move || {
            let _ = wait_here.recv();
            // The test's reference is gone by now, so the pool drops here, on its own worker,
            // which must join the other worker and not try to join itself.
            drop(in_task);
            dropped_tx.send("dropped inside").unwrap();
        });
        drop(pool);
        release.send(()).unwrap();
        assert_eq!(dropped.recv().unwrap(), "dropped inside");
    });
}

#[test]
fn many_threads_submit_at_once() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(4);
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for t in 0..8 {
                let (pool, total) = (&pool, &total);
                s.spawn(move || {
                    let handles: Vec<_> = (0..500)
                        .map(|i| pool.submit(move || t * 1000 + i))
                        .collect();
                    for h in handles {
                        h.join().unwrap();
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 8 * 500);
    });
}

fn worker_name_of(pool: &ThreadPool) -> String {
    pool.submit(current_name).join().unwrap()
}

#[test]
fn no_worker_sleeps_while_a_task_waits_in_the_queue() {
    // Each task blocks until all of them and the test have met, so the barrier only opens if
    // every task got a worker of its own: a task left in the queue while a worker sleeps (a
    // missed wake-up) hangs it, and the time bound turns that into a failure.
    within(GENEROUS, || {
        // One pool across rounds, so that each round's tasks arrive while the previous round's
        // workers are in every state: running, yielding before they sleep, or asleep.
        let pool = ThreadPool::new(8);
        for round in 0..1000 {
            let everyone = Arc::new(Barrier::new(9));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let everyone = everyone.clone();
                    pool.submit(move || everyone.wait().is_leader())
                })
                .collect();
            everyone.wait();
            let leaders = handles
                .into_iter()
                .filter(|h| h.result() == Ok(true))
                .count();
            assert!(leaders <= 1, "round {round}");
        }
    });
}

/// Submits `n` tasks that each report their thread's name and then wait at one shared barrier
/// with the test, so that none of them finishes (or frees its worker) before all have started.
fn all_at_once(pool: &ThreadPool, n: usize) -> (Arc<Barrier>, Vec<TaskHandle<String>>) {
    let everyone = Arc::new(Barrier::new(n + 1));
    let handles = (0..n)
        .map(|_| {
            let everyone = everyone.clone();
            pool.submit(move || {
                everyone.wait();
                current_name()
            })
        })
        .collect();
    (everyone, handles)
}

#[test]
fn threads_start_on_demand_so_a_huge_pool_with_five_tasks_starts_five() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(100_000);
        assert_eq!(pool.started_threads(), 0, "no thread before the first task");
        let (everyone, handles) = all_at_once(&pool, 5);
        everyone.wait();
        assert_eq!(pool.started_threads(), 5);
        assert_eq!(pool.max_workers(), 100_000);
        for handle in handles {
            handle.join().unwrap();
        }
    });
}

#[test]
fn usize_max_workers_is_fine() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(usize::MAX);
        let results: Vec<_> = pool
            .map(|i: u32| i + 1, 0..10)
            .map(Result::unwrap)
            .collect();
        assert_eq!(results, (1..=10).collect::<Vec<_>>());
        assert!((1..=10).contains(&pool.started_threads()));
    });
}

#[test]
fn no_more_threads_than_max_workers_however_many_tasks_wait() {
    // CPython's test_saturation: 15 tasks per worker, all blocked, start exactly max_workers.
    within(GENEROUS, || {
        let pool = ThreadPool::new(4);
        let (open, wait_here) = gate();
        let wait_here = Arc::new(Mutex::new(wait_here));
        let (started_tx, started) = mpsc::channel();
        let handles: Vec<_> = (0..60)
            .map(|_| {
                let (wait_here, started_tx) = (wait_here.clone(), started_tx.clone());
                pool.submit(move || {
                    started_tx.send(()).unwrap();
                    // Each task waits until the gate is dropped.
                    let _ = wait_here.lock().unwrap().recv();
                })
            })
            .collect();
        // Four tasks are running (one per worker); the other 56 wait in the queue.
        for _ in 0..4 {
            started.recv().unwrap();
        }
        assert_eq!(pool.started_threads(), 4);
        drop(open);
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(pool.started_threads(), 4);
    });
}

#[test]
fn an_idle_thread_is_reused_before_a_new_one_starts() {
    // CPython's test_idle_thread_reuse, a hundred times over. Only one task exists at a time,
    // so a new thread starts only while every started one is still on its way back from its
    // last task (it has published the result, and not yet reached the queue): a window of a
    // few instructions that a loaded machine can stretch, so allow a few, never one per task.
    within(GENEROUS, || {
        let pool = ThreadPool::new(100);
        for i in 0..100 {
            assert_eq!(pool.submit(move || i * 2).join(), Ok(i * 2));
        }
        let started = pool.started_threads();
        assert!(
            (1..=10).contains(&started),
            "{started} threads for 100 tasks in a row"
        );
    });
}

#[test]
fn threads_are_numbered_in_start_order() {
    within(GENEROUS, || {
        let pool = ThreadPool::builder()
            .num_threads(3)
            .thread_name_prefix("order")
            .build()
            .unwrap();
        // Each task holds its worker, so each submit starts the next thread: the k-th task
        // runs on the k-th thread started.
        let (names_tx, names) = mpsc::channel();
        let mut gates = Vec::new();
        for k in 0..3 {
            let (open, wait_here) = gate();
            let names_tx = names_tx.clone();
            pool.submit(move || {
                names_tx.send(current_name()).unwrap();
                let _ = wait_here.recv();
            });
            assert_eq!(names.recv().unwrap(), format!("order_{k}"));
            gates.push(open);
        }
        assert_eq!(pool.started_threads(), 3);
    });
}

#[test]
fn a_thread_that_cannot_start_is_an_error_for_its_task_and_never_a_hang() {
    within(GENEROUS, || {
        // No system gives a thread an exabyte of stack: every start fails.
        let pool = ThreadPool::builder()
            .num_threads(4)
            .stack_size(1 << 60)
            .build()
            .unwrap();
        let handles: Vec<_> = (0..3).map(|i| pool.submit(move || i)).collect();
        for handle in as_completed(handles) {
            match handle.join() {
                Err(TaskError::Spawn(why)) => assert!(!why.is_empty()),
                other => panic!("expected a Spawn error, got {other:?}"),
            }
        }
        assert_eq!(pool.started_threads(), 0);
        let err = pool.submit(|| 1).join().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("could not start a worker thread: "),
            "{err}"
        );
    });
}

/// CPython's test_cancel_futures: submit 50 tasks to a two-worker pool and shut down at once
/// with cancel_futures. The tasks a worker was committed to when `submit` returned run (at most
/// two: each worker then stays in its task), the `cancelled` behind them are cancelled, and none
/// does both. Returns how many were cancelled.
fn cancel_futures_on(pool: ThreadPool) -> usize {
    let (open, wait_here) = gate();
    let wait_here = Arc::new(Mutex::new(wait_here));
    let ran: Arc<Vec<AtomicUsize>> = Arc::new((0..50).map(|_| AtomicUsize::new(0)).collect());
    let fs: Vec<_> = (0..50)
        .map(|i| {
            let (wait_here, ran) = (wait_here.clone(), ran.clone());
            pool.submit(move || {
                ran[i].fetch_add(1, Ordering::SeqCst);
                // Hold the worker until the gate is dropped: no worker comes back for more.
                let _ = wait_here.lock().unwrap().recv();
            })
        })
        .collect();
    // The last task is cancelled inside shutdown_now; only then may the running ones end.
    let mut open = Some(open);
    fs[49].add_done_callback(move |_| drop(open.take()));
    pool.shutdown_now();
    let cancelled = fs.iter().filter(|f| f.is_cancelled()).count();
    assert!(cancelled >= 48, "{cancelled} cancelled");
    for (i, f) in fs.into_iter().enumerate() {
        let runs = ran[i].load(Ordering::SeqCst);
        match f.join() {
            Ok(()) => assert_eq!(runs, 1, "task {i} finished, so it ran once"),
            Err(TaskError::Cancelled) => assert_eq!(runs, 0, "task {i} was cancelled and ran"),
            Err(e) => panic!("task {i}: {e}"),
        }
    }
    cancelled
}

#[test]
fn shutdown_now_keeps_the_tasks_started_threads_were_given() {
    // A fresh pool starts a thread for each of the first two tasks and hands the task over:
    // exactly those two run.
    let cancelled = within(GENEROUS, || cancel_futures_on(ThreadPool::new(2)));
    assert_eq!(cancelled, 48);
}

#[test]
fn shutdown_now_after_a_warm_up_runs_at_most_two_and_cancels_the_rest() {
    within(GENEROUS, || {
        let pool = ThreadPool::new(2);
        // Start both threads, then let them go idle (yielding or asleep): the next two submits
        // are for them, and they may not have reached the queue when shutdown_now runs. (A
        // worker still on its way back from its warm-up task when the submits come is not
        // committed to anything, so this one can only say "at most two ran".)
        let (everyone, warm) = all_at_once(&pool, 2);
        everyone.wait();
        for handle in warm {
            handle.join().unwrap();
        }
        cancel_futures_on(pool);
    });
}
