//! The executor's own cost: submit N no-op tasks and collect every result, per backend and
//! worker count, in nanoseconds per task.
//!
//! Our backends ([`ThreadPool`], unbounded and with `queue_bound(1024)`, [`RayonPool`] and
//! [`Sequential`]) submit every task, then drain [`as_completed`] and `join` each handle. The
//! `threadpool` crate and raw `rayon::ThreadPool::spawn` have no handles: each task sends its
//! result on an `mpsc` channel, their natural way, which the main thread receives N times.
//!
//! Each round runs every case once, in an order rotated by one each round, so that a noisy
//! neighbour spreads over all the cases instead of landing on one. Building and dropping a pool
//! is not timed. Every task returns its index and the sum is checked, so nothing is skipped.
//! The table gives wall-clock ns per task (median, min-max) and, beside it, the CPU time the
//! whole process used per task, which a neighbour's load does not stretch.
//!
//! ```text
//! cargo bench --features rayon --bench pool
//! FETCHALL_BENCH_TASKS=100000 FETCHALL_BENCH_ROUNDS=3 cargo bench --features rayon --bench pool
//! cargo bench --features rayon --bench pool -- pool/4 raw-rayon   # only these cases
//! FETCHALL_BENCH_PYTHON_US=31.5 cargo bench --features rayon --bench pool
//! ```
//!
//! A filter names a case as `key` (every worker count) or `key/workers`, the keys being
//! `sequential`, `pool`, `pool-bounded`, `rayon-pool`, `threadpool` and `raw-rayon`; it is how
//! one case is run alone under a profiler. `FETCHALL_BENCH_PYTHON_US` is Python's cost per task
//! in microseconds, from `benches/python/pool_cost.py`; given it, the table says how many times
//! cheaper each case is.

use std::env;
use std::fmt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fetchall::{Executor, RayonPool, Sequential, ThreadPool, as_completed};

/// Tasks per measurement unless `FETCHALL_BENCH_TASKS` says otherwise.
const DEFAULT_TASKS: usize = 1_000_000;
/// Rounds unless `FETCHALL_BENCH_ROUNDS` says otherwise; figures worth quoting take 5 or more.
const DEFAULT_ROUNDS: usize = 5;
/// A large fixed queue bound: the CLI's when the figures in BENCHMARKS.md were taken (it is
/// max(2W, 128) now; kept, so that the published figures stay comparable).
const FIXED_QUEUE_BOUND: usize = 1024;
const WORKER_COUNTS: [usize; 3] = [1, 2, 4];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sequential,
    Pool,
    PoolBounded,
    Rayon,
    ThreadpoolCrate,
    RawRayon,
}

impl Backend {
    const ALL: [Backend; 6] = [
        Backend::Sequential,
        Backend::Pool,
        Backend::PoolBounded,
        Backend::Rayon,
        Backend::ThreadpoolCrate,
        Backend::RawRayon,
    ];

    /// One timed run of `tasks` tasks on a fresh pool of `workers` threads.
    fn measure(self, workers: usize, tasks: usize) -> Sample {
        match self {
            Backend::Sequential => through_handles(&Sequential, tasks),
            Backend::Pool => through_handles(&ThreadPool::new(workers), tasks),
            Backend::PoolBounded => {
                let pool = ThreadPool::builder()
                    .num_threads(workers)
                    .queue_bound(FIXED_QUEUE_BOUND)
                    .build()
                    .expect("a pool of 1 to 4 threads can be built");
                through_handles(&pool, tasks)
            }
            Backend::Rayon => through_handles(&RayonPool::new(workers), tasks),
            Backend::ThreadpoolCrate => {
                through_channel(&threadpool::ThreadPool::new(workers), tasks)
            }
            Backend::RawRayon => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(workers)
                    .build()
                    .expect("a rayon pool of 1 to 4 threads can be built");
                through_channel(&pool, tasks)
            }
        }
    }

    /// The name a command-line filter matches, as `key` or `key/workers`.
    fn key(self) -> &'static str {
        match self {
            Backend::Sequential => "sequential",
            Backend::Pool => "pool",
            Backend::PoolBounded => "pool-bounded",
            Backend::Rayon => "rayon-pool",
            Backend::ThreadpoolCrate => "threadpool",
            Backend::RawRayon => "raw-rayon",
        }
    }

    /// The worker counts worth measuring: `Sequential` has no workers.
    fn worker_counts(self) -> &'static [usize] {
        match self {
            Backend::Sequential => &[1],
            _ => &WORKER_COUNTS,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Sequential => f.write_str("fetchall Sequential (as_completed)"),
            Backend::Pool => f.write_str("fetchall ThreadPool (as_completed)"),
            Backend::PoolBounded => write!(
                f,
                "fetchall ThreadPool bound {FIXED_QUEUE_BOUND} (as_completed)"
            ),
            Backend::Rayon => f.write_str("fetchall RayonPool (as_completed)"),
            Backend::ThreadpoolCrate => f.write_str("threadpool 1.8 (mpsc)"),
            Backend::RawRayon => f.write_str("raw rayon spawn (mpsc)"),
        }
    }
}

/// Submits `tasks` tasks, then takes each handle from `as_completed` as it finishes and joins
/// it: Python's `as_completed` loop.
fn through_handles<E: Executor>(executor: &E, tasks: usize) -> Sample {
    let start = Start::now();
    let handles: Vec<_> = (0..tasks).map(|i| executor.submit(move || i)).collect();
    let sum: usize = as_completed(handles)
        .map(|handle| handle.join().expect("a no-op task cannot fail"))
        .sum();
    let sample = start.sample(tasks);
    check_sum(sum, tasks);
    sample
}

/// A pool without handles: `execute` / `spawn` a closure and get nothing back.
trait Spawn {
    fn spawn_job<F: FnOnce() + Send + 'static>(&self, job: F);
}

impl Spawn for threadpool::ThreadPool {
    fn spawn_job<F: FnOnce() + Send + 'static>(&self, job: F) {
        self.execute(job);
    }
}

impl Spawn for rayon::ThreadPool {
    fn spawn_job<F: FnOnce() + Send + 'static>(&self, job: F) {
        self.spawn(job);
    }
}

/// Submits `tasks` tasks that each send their result on a channel, then receives `tasks`
/// results.
fn through_channel<P: Spawn>(pool: &P, tasks: usize) -> Sample {
    let (results, received) = mpsc::channel();
    let start = Start::now();
    for i in 0..tasks {
        let results = results.clone();
        pool.spawn_job(move || {
            // The receiver lives until every result is in, so the send cannot fail.
            let _ = results.send(i);
        });
    }
    let sum: usize = received.iter().take(tasks).sum();
    let sample = start.sample(tasks);
    check_sum(sum, tasks);
    sample
}

/// When a timed run started, by the wall clock and by the process's CPU time.
struct Start {
    wall: Instant,
    cpu: Option<Duration>,
}

/// One run's cost per task: wall-clock nanoseconds, and CPU nanoseconds summed over every thread
/// of the process (`None` where `/proc` cannot be read).
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: Option<f64>,
}

impl Start {
    fn now() -> Start {
        Start {
            cpu: process_cpu_time(),
            wall: Instant::now(),
        }
    }

    fn sample(self, tasks: usize) -> Sample {
        let wall = self.wall.elapsed();
        let cpu = process_cpu_time()
            .zip(self.cpu)
            .map(|(end, start)| end.saturating_sub(start));
        let per_task = |d: Duration| d.as_nanos() as f64 / tasks as f64;
        Sample {
            wall: per_task(wall),
            cpu: cpu.map(per_task),
        }
    }
}

/// User plus system CPU time of the whole process so far, threads that exited included, from
/// `/proc/self/stat` (Linux). Its unit is the clock tick, 10 ms (`USER_HZ` is 100 on Linux), so
/// it is only meaningful for runs of a second or so: the default run, not a quick one.
///
/// Wall time is what the tables rank by; CPU time is there because the machine is shared, and
/// a neighbour's load stretches the wall clock but not the CPU time this process used.
fn process_cpu_time() -> Option<Duration> {
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name is in parentheses and may hold spaces; fields are counted after it.
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (user + system) * 1000 / TICKS_PER_SECOND,
    ))
}

fn check_sum(sum: usize, tasks: usize) {
    assert_eq!(
        sum,
        tasks * tasks.saturating_sub(1) / 2,
        "a result went missing"
    );
}

/// Reads a positive count from the environment, or `default` if the variable is unset.
fn env_count(name: &str, default: usize) -> usize {
    match env::var(name) {
        Err(_) => default,
        Ok(text) => match text.trim().replace('_', "").parse() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name}={text:?}: expected a positive whole number"),
        },
    }
}

/// The median and the range of a set of samples.
#[derive(Debug, Clone, Copy)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

impl Summary {
    fn of(samples: &[f64]) -> Summary {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        Summary {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }
}

/// `a / b` as "1.23x", or "-" where there is nothing to compare with.
fn ratio(a: f64, b: Option<f64>) -> String {
    b.map_or_else(|| "-".to_owned(), |b| format!("{:.2}x", a / b))
}

fn main() {
    let tasks = env_count("FETCHALL_BENCH_TASKS", DEFAULT_TASKS);
    let rounds = env_count("FETCHALL_BENCH_ROUNDS", DEFAULT_ROUNDS);
    // Cargo passes `--bench`; every other argument is a filter.
    let filters: Vec<String> = env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |backend: Backend, workers: usize| {
        filters.is_empty()
            || filters
                .iter()
                .any(|f| *f == backend.key() || *f == format!("{}/{workers}", backend.key()))
    };
    let cases: Vec<(Backend, usize)> = Backend::ALL
        .iter()
        .flat_map(|&b| b.worker_counts().iter().map(move |&w| (b, w)))
        .filter(|&(b, w)| wanted(b, w))
        .collect();
    assert!(!cases.is_empty(), "no case matches {filters:?}");
    let python_us =
        env::var("FETCHALL_BENCH_PYTHON_US")
            .ok()
            .map(|text| match text.trim().parse::<f64>() {
                Ok(us) if us > 0.0 => us,
                _ => panic!("FETCHALL_BENCH_PYTHON_US={text:?}: expected microseconds per task"),
            });
    let mut samples: Vec<Vec<Sample>> = vec![Vec::with_capacity(rounds); cases.len()];

    eprintln!(
        "{tasks} no-op tasks per run, {rounds} rounds of {} cases",
        cases.len()
    );
    for round in 0..rounds {
        let round_start = Instant::now();
        for k in 0..cases.len() {
            // Rotated by one each round, so no case always runs right after the same neighbour.
            let index = (k + round) % cases.len();
            let (backend, workers) = cases[index];
            samples[index].push(backend.measure(workers, tasks));
        }
        eprintln!(
            "round {}/{rounds}: {:.1} s",
            round + 1,
            round_start.elapsed().as_secs_f64()
        );
    }

    let walls: Vec<Summary> = samples
        .iter()
        .map(|s| Summary::of(&s.iter().map(|x| x.wall).collect::<Vec<_>>()))
        .collect();
    let cpus: Vec<Option<Summary>> = samples
        .iter()
        .map(|s| s.iter().map(|x| x.cpu).collect::<Option<Vec<_>>>())
        .map(|cpu| cpu.map(|c| Summary::of(&c)))
        .collect();
    let median_of = |backend: Backend, workers: usize| {
        cases
            .iter()
            .position(|&c| c == (backend, workers))
            .map(|i| walls[i].median)
    };
    println!();
    println!("ns per task, {tasks} tasks, median of {rounds} rounds (min-max)");
    println!();
    println!(
        "| backend | workers | wall ns/task | min-max | CPU ns/task | vs RayonPool | vs threadpool | Python / this |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for ((&(backend, workers), wall), cpu) in cases.iter().zip(&walls).zip(&cpus) {
        let workers_text = match backend {
            Backend::Sequential => "-".to_owned(),
            _ => workers.to_string(),
        };
        let cpu_text = cpu.map_or_else(|| "-".to_owned(), |c| format!("{:.0}", c.median));
        let python_text = python_us.map_or_else(
            || "-".to_owned(),
            |us| format!("{:.0}x", us * 1000.0 / wall.median),
        );
        // Sequential is compared with the one-worker pools.
        println!(
            "| {backend} | {workers_text} | {:.0} | {:.0}-{:.0} | {cpu_text} | {} | {} | {python_text} |",
            wall.median,
            wall.min,
            wall.max,
            ratio(wall.median, median_of(Backend::Rayon, workers)),
            ratio(wall.median, median_of(Backend::ThreadpoolCrate, workers)),
        );
    }
}
