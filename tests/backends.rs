//! The contract every backend keeps: the hand-written pool, the sequential baseline, and (with
//! the `rayon` feature) the rayon pool return the same handles, and `as_completed`, `wait` and
//! `map` work the same on each.

mod common;

use std::sync::{Arc, OnceLock};

use common::{GENEROUS, within};
use fetchall::{
    Executor, ReturnWhen, Sequential, TaskError, TaskHandle, ThreadPool, as_completed, wait,
};

fn contract<E: Executor>(executor: &E) {
    // submit / join, and a panic as data.
    assert_eq!(executor.submit(|| 6 * 7).join(), Ok(42));
    let boom = executor.submit(|| -> u8 { panic!("backend boom") });
    assert_eq!(boom.join(), Err(TaskError::Panicked("backend boom".into())));

    // as_completed yields every handle exactly once.
    let handles: Vec<_> = (0..200_usize).map(|i| executor.submit(move || i)).collect();
    let mut seen = [false; 200];
    for handle in as_completed(handles) {
        let i = handle.join().unwrap();
        assert!(!seen[i], "task {i} yielded twice");
        seen[i] = true;
    }
    assert!(seen.iter().all(|&s| s));

    // wait for all.
    let handles: Vec<_> = (0..20).map(|i| executor.submit(move || i)).collect();
    let split = wait(handles, None, ReturnWhen::AllCompleted);
    assert_eq!((split.done.len(), split.not_done.len()), (20, 0));

    // map keeps input order.
    let squares: Vec<u32> = executor
        .map(|n: u32| n * n, 0..50)
        .map(Result::unwrap)
        .collect();
    assert_eq!(squares, (0..50).map(|n| n * n).collect::<Vec<_>>());
}

/// Python's `wait_on_future` program on a one-worker executor: 25, not a hang.
fn wait_on_future<E: Executor + Send + 'static>(
    executor: E,
) -> Result<Result<i32, TaskError>, TaskError> {
    let executor = Arc::new(executor);
    let inner = executor.clone();
    let outer: Arc<OnceLock<TaskHandle<Result<i32, TaskError>>>> = Arc::default();
    outer
        .set(executor.submit(move || inner.submit(|| 5_i32.pow(2)).join()))
        .unwrap();
    drop(executor);
    Arc::into_inner(outer).unwrap().into_inner().unwrap().join()
}

#[test]
fn thread_pool_keeps_the_contract() {
    within(GENEROUS, || contract(&ThreadPool::new(4)));
}

#[test]
fn sequential_keeps_the_contract() {
    within(GENEROUS, || contract(&Sequential));
}

#[test]
fn wait_on_future_ends_on_every_backend() {
    within(GENEROUS, || {
        assert_eq!(wait_on_future(ThreadPool::new(1)), Ok(Ok(25)));
        assert_eq!(wait_on_future(Sequential), Ok(Ok(25)));
    });
}

#[cfg(feature = "rayon")]
mod rayon {
    use super::*;
    use fetchall::{Builder, RayonPool};

    #[test]
    fn rayon_pool_keeps_the_contract() {
        within(GENEROUS, || contract(&RayonPool::new(4)));
    }

    #[test]
    fn rayon_pool_names_threads_and_runs_wait_on_future() {
        within(GENEROUS, || {
            // RayonPool::builder() builds a RayonPool: the type annotation is the check.
            let pool: RayonPool = RayonPool::builder()
                .num_threads(1)
                .thread_name_prefix("ray")
                .build()
                .unwrap();
            let name = pool.submit(|| std::thread::current().name().map(str::to_owned));
            assert_eq!(name.join(), Ok(Some("ray_0".to_owned())));
            assert_eq!(wait_on_future(pool), Ok(Ok(25)));
        });
    }

    #[test]
    fn rayon_pool_broken_by_its_initializer() {
        within(GENEROUS, || {
            let pool = Builder::new()
                .num_threads(1)
                .initializer(|| Err("nope"))
                .build_rayon()
                .unwrap();
            // The initializer may not have run yet when we submit; the task sees the broken
            // pool when it starts, or submit refuses it.
            match pool.submit(|| 1).join() {
                Err(TaskError::BrokenPool(why)) => assert!(why.contains("nope"), "{why}"),
                other => panic!("expected BrokenPool, got {other:?}"),
            }
        });
    }

    #[test]
    fn rayon_pool_drop_waits_for_its_tasks() {
        within(GENEROUS, || {
            let pool = RayonPool::new(2);
            let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for _ in 0..100 {
                let c = counter.clone();
                drop(pool.submit(move || c.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
            }
            drop(pool);
            assert_eq!(counter.load(std::sync::atomic::Ordering::SeqCst), 100);
        });
    }
}
