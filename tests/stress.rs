//! Many submitters, cancels and waits at once over 100,000 tasks: no completion is lost or
//! told twice, and every task either ran exactly once or was cancelled and never ran.

mod common;

use std::sync::atomic::{AtomicU8, Ordering};

use common::{GENEROUS, within};
use fetchall::{AsCompleted, Executor, TaskError, ThreadPool};

const SUBMITTERS: usize = 4;
const PER_SUBMITTER: usize = 25_000;
const TOTAL: usize = SUBMITTERS * PER_SUBMITTER;

#[test]
fn no_completion_is_lost_or_duplicated() {
    within(GENEROUS, || {
        let pool = ThreadPool::builder()
            .num_threads(4)
            .queue_bound(256)
            .build()
            .unwrap();
        let runs: Vec<AtomicU8> = (0..TOTAL).map(|_| AtomicU8::new(0)).collect();
        let runs = std::sync::Arc::new(runs);
        let (yielded, cancelled) = std::thread::scope(|s| {
            let workers: Vec<_> = (0..SUBMITTERS)
                .map(|t| {
                    let (pool, runs) = (&pool, runs.clone());
                    s.spawn(move || {
                        let mut pending = AsCompleted::new();
                        let mut yielded = vec![0_u8; PER_SUBMITTER];
                        let mut cancelled = 0;
                        for i in 0..PER_SUBMITTER {
                            let index = t * PER_SUBMITTER + i;
                            let runs = runs.clone();
                            let handle = pool.submit(move || {
                                runs[index].fetch_add(1, Ordering::Relaxed);
                                index
                            });
                            // Cancel every 7th (it may already have started), and wait on every
                            // 11th directly; the rest go through as_completed.
                            if i % 7 == 0 && handle.cancel() {
                                cancelled += 1;
                                assert_eq!(handle.join(), Err(TaskError::Cancelled));
                                yielded[i] += 1;
                            } else if i % 11 == 0 {
                                assert_eq!(handle.join(), Ok(index));
                                yielded[i] += 1;
                            } else {
                                pending.push(handle);
                            }
                            while let Some(done) = pending.try_next() {
                                yielded[done.join().unwrap() - t * PER_SUBMITTER] += 1;
                            }
                        }
                        for done in pending {
                            yielded[done.join().unwrap() - t * PER_SUBMITTER] += 1;
                        }
                        (yielded, cancelled)
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(TOTAL);
            let mut cancelled = 0;
            for w in workers {
                let (y, c) = w.join().unwrap();
                all.extend(y);
                cancelled += c;
            }
            (all, cancelled)
        });
        assert!(
            yielded.iter().all(|&n| n == 1),
            "every task's result was seen exactly once"
        );
        let ran = runs
            .iter()
            .filter(|r| r.load(Ordering::Relaxed) == 1)
            .count();
        assert!(
            runs.iter().all(|r| r.load(Ordering::Relaxed) <= 1),
            "no task ran twice"
        );
        assert_eq!(
            ran + cancelled,
            TOTAL,
            "each task ran or was cancelled, never both"
        );
    });
}
