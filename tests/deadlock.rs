//! The two deadlock programs from the `ThreadPoolExecutor` docs, which hang in Python, end here:
//! one with the answer, one with a `Deadlock` error naming the cycle. Each runs under a time
//! bound, so a regression fails instead of hanging the suite.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, OnceLock};

use common::{GENEROUS, within};
use fetchall::{Executor, TaskError, TaskHandle, ThreadPool};

#[test]
fn wait_on_future_with_one_worker_prints_25() {
    let answer = within(GENEROUS, || {
        let executor = Arc::new(ThreadPool::new(1));
        let inner = executor.clone();
        let wait_on_future = move || {
            let f = inner.submit(|| 5_i32.pow(2));
            // Python hangs here: the only worker is running this function. Ours runs `f` itself.
            f.join()
        };
        executor.submit(wait_on_future).join().unwrap()
    });
    assert_eq!(answer, Ok(25));
}

#[test]
fn wait_on_a_and_wait_on_b_end_with_a_deadlock_error_naming_the_cycle() {
    let (a, b, a_id, b_id, log) = within(GENEROUS, || {
        let executor = ThreadPool::builder()
            .num_threads(2)
            .thread_name_prefix("ex")
            .build()
            .unwrap();
        let a_slot: Arc<OnceLock<TaskHandle<i32>>> = Arc::default();
        let b_slot: Arc<OnceLock<TaskHandle<i32>>> = Arc::default();
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        // Python sleeps 5 s so that both run before either waits; a barrier says so exactly.
        let both_running = Arc::new(Barrier::new(2));
        let (slot, ready, out) = (b_slot.clone(), both_running.clone(), log.clone());
        let wait_on_b = move || {
            ready.wait();
            let seen = slot.wait().result();
            out.lock().unwrap().push(format!("wait_on_b: {seen:?}"));
            5
        };
        let (slot, ready, out) = (a_slot.clone(), both_running.clone(), log.clone());
        let wait_on_a = move || {
            ready.wait();
            let seen = slot.wait().result();
            out.lock().unwrap().push(format!("wait_on_a: {seen:?}"));
            6
        };
        let a = executor.submit(wait_on_b);
        let a_id = a.id();
        a_slot.set(a).unwrap();
        let b = executor.submit(wait_on_a);
        let b_id = b.id();
        b_slot.set(b).unwrap();
        drop(executor); // waits for both tasks
        let a = Arc::into_inner(a_slot).unwrap().into_inner().unwrap();
        let b = Arc::into_inner(b_slot).unwrap().into_inner().unwrap();
        let log = log.lock().unwrap().clone();
        (a.join(), b.join(), a_id, b_id, log)
    });
    assert_eq!(
        (a, b),
        (Ok(5), Ok(6)),
        "both finish with Python's return values"
    );
    // Whichever waited second would have closed the cycle: its wait was refused, and the other
    // wait then got that task's value.
    assert_eq!(log.len(), 2, "{log:?}");
    let refused: Vec<&String> = log.iter().filter(|l| l.contains("Deadlock")).collect();
    assert_eq!(refused.len(), 1, "{log:?}");
    let chain = refused[0];
    assert!(
        chain.contains(&format!("task {a_id} running on ex_")),
        "{chain}"
    );
    assert!(
        chain.contains(&format!("task {b_id} running on ex_")),
        "{chain}"
    );
    assert!(chain.contains("which waits on"), "{chain}");
    let answered = log.iter().find(|l| !l.contains("Deadlock")).unwrap();
    assert!(
        answered == "wait_on_b: Ok(6)" || answered == "wait_on_a: Ok(5)",
        "{answered}"
    );
}

#[test]
fn a_task_waiting_on_itself_is_a_deadlock() {
    let result = within(GENEROUS, || {
        let executor = ThreadPool::new(1);
        let slot: Arc<OnceLock<TaskHandle<Result<(), TaskError>>>> = Arc::default();
        let inner = slot.clone();
        let me = executor.submit(move || inner.wait().result().map(|_| ()));
        slot.set(me).unwrap();
        drop(executor);
        Arc::into_inner(slot).unwrap().into_inner().unwrap().join()
    });
    assert!(
        matches!(result, Ok(Err(TaskError::Deadlock(_)))),
        "{result:?}"
    );
}

#[test]
fn a_task_queued_on_a_pool_whose_workers_are_all_blocked_is_reported() {
    // Pool P's only worker waits on a task running on pool Q; that task waits on a task queued
    // on P, which can never start: P's worker is the one waiting.
    let result = within(GENEROUS, || {
        let p = Arc::new(
            ThreadPool::builder()
                .num_threads(1)
                .thread_name_prefix("p")
                .build()
                .unwrap(),
        );
        let q = Arc::new(
            ThreadPool::builder()
                .num_threads(1)
                .thread_name_prefix("q")
                .build()
                .unwrap(),
        );
        let (p2, q2) = (p.clone(), q.clone());
        let on_p = p.submit(move || {
            let p3 = p2.clone();
            let on_q = q2.submit(move || {
                let never = p3.submit(|| "starts");
                never.join()
            });
            on_q.join()
        });
        on_p.join()
    });
    // Whichever of the two waits registers second sees the whole loop and is refused: Q's
    // worker waiting on the queued task (nested two levels deep), or P's worker waiting on Q.
    let chain = match result {
        Ok(Ok(Err(TaskError::Deadlock(chain)))) | Ok(Err(TaskError::Deadlock(chain))) => chain,
        other => panic!("expected a deadlock report, got {other:?}"),
    };
    assert!(
        chain.contains("queued on p, whose only worker is blocked"),
        "{chain}"
    );
}

#[test]
fn waiting_across_workers_without_a_cycle_is_not_a_deadlock() {
    let result = within(GENEROUS, || {
        let pool = Arc::new(ThreadPool::new(2));
        let (started_tx, started) = mpsc::channel();
        let (open, wait_here) = mpsc::channel::<()>();
        let long = pool.submit(move || {
            started_tx.send(()).unwrap();
            wait_here.recv().map(|()| 1)
        });
        started.recv().unwrap();
        let slot = Arc::new(long);
        let inner = slot.clone();
        let waiter = pool.submit(move || inner.result().map(|r| r.unwrap_or(0)));
        open.send(()).unwrap();
        waiter.join()
    });
    assert_eq!(result, Ok(Ok(1)));
}

#[test]
fn a_pool_that_may_still_start_a_thread_is_not_stuck() {
    // As above, but P may have two workers and has started one: the task queued on P gets a
    // thread of its own, so the chain ends with the value instead of a deadlock report.
    let result = within(GENEROUS, || {
        let p = Arc::new(ThreadPool::new(2));
        let q = Arc::new(ThreadPool::new(1));
        let (p2, q2) = (p.clone(), q.clone());
        let on_p = p.submit(move || {
            let p3 = p2.clone();
            let on_q = q2.submit(move || p3.submit(|| "starts").join());
            on_q.join()
        });
        let result = on_p.join();
        (result, p.started_threads())
    });
    assert_eq!(result, (Ok(Ok(Ok("starts"))), 2));
}
