//! Port of the Python FAQ program "How do I parcel out work among a bunch of worker threads?"
//! (<https://docs.python.org/3/faq/library.html#how-do-i-parcel-out-work-among-a-bunch-of-worker-threads>):
//! five worker threads take 50 jobs off a shared queue.
//!
//! ```text
//! cargo run --example queue_workers               # the FAQ's program, with its sleeps (5 s)
//! cargo run --example queue_workers -- late       # the same, but main queues late: the race, made visible
//! cargo run --example queue_workers -- fixed      # the fixed program (5 s of "work")
//! cargo run --example queue_workers -- fixed-late # the fixed program does not mind a late main
//! ```
//!
//! # What is ported as it is
//! [`worker`] keeps the FAQ's shape: it prints `Running worker`, gives main a 0.1 s head start, then
//! loops on a non-blocking get (`try_recv`, Python's `q.get(block=False)`), "works" 0.5 s per
//! argument, and exits at the first empty queue. [`run`] starts the five workers *before* it queues
//! anything, queues 0..49, prints `Main thread sleeping` and sleeps 5 s.
//!
//! # What is wrong with it, and what changed
//! 1. **The race.** The 0.1 s head start is a guess that main will have queued the jobs by then. If
//!    main is later (slow to produce its jobs, or descheduled on a busy machine), a worker finds the
//!    queue empty, takes that to mean "no more work", and exits: the jobs stay queued and nobody runs
//!    them. The `late` mode makes main late on purpose and deterministically: it queues nothing until
//!    every worker has already printed `queue empty`. The last line counts the jobs left behind.
//! 2. **The sleep at the end.** In Python `threading.Thread` threads are non-daemon and the
//!    interpreter waits for them at exit, so the FAQ's `time.sleep(5)` is harmless. In Rust, returning
//!    from `main` ends the process and kills every thread still running. 50 jobs of 0.5 s on 5 workers
//!    take 5 s after the 0.1 s head start, so the faithful port's 5 s sleep is too short: its last line
//!    reports workers still running, and their `queue empty` lines never appear.
//! 3. **The fix** (`fixed`): the queue is an `mpsc` channel, which can be *closed*. Workers block in
//!    `recv()` until a job arrives, or until main has dropped the last `Sender` and the queue is empty;
//!    only then do they exit. The one `Receiver` is shared as `Arc<Mutex<Receiver>>`, the Rust Book's
//!    way (ch. 21), and the lock is held only to receive, not while the job runs. Main closes the queue
//!    and then joins the workers. No delay is guessed anywhere, so a late main is harmless.
//!
//! # Output
//! Python prints `repr(threading.current_thread())`, such as
//! `<Thread(worker 1, started 130283832797456)>`. The number is `threading.get_ident()`, an OS
//! thread handle that may be reused once the thread ends. Rust has no stable numeric thread id:
//! [`std::thread::ThreadId`] is opaque (its `as_u64` is unstable), so we print its `Debug` form,
//! `ThreadId(2)`, which is unique for the life of the process and never reused. The name comes
//! from `thread::Builder::name`, Python's `name='worker %i'`.
//!
//! Workers do not write to stdout themselves: they send their lines to main over a channel, and main
//! writes them to `out`. Only one thread writes, so lines never interleave, the tests can capture
//! them in a `Vec<u8>`, and lines sent after main has stopped listening are lost, as they are when a
//! process has exited. The last line of each run (`Main thread ...: N jobs left on the queue`) is
//! ours, not the FAQ's.

use std::error::Error;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The FAQ's pool size: `for i in range(5)`.
const WORKERS: usize = 5;
/// The FAQ's job count: `for i in range(50)`.
const JOBS: u32 = 50;

/// The FAQ's sleeps: a 0.1 s head start, 0.5 s per job, and main's 5 s.
const FAQ_TIMING: Timing = Timing {
    head_start: Duration::from_millis(100),
    per_job: Duration::from_millis(500),
    main_sleep: Duration::from_secs(5),
};

/// Which program to run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Version {
    /// The FAQ's: non-blocking get, exit on empty, main sleeps.
    Original,
    /// Blocking get on a queue main closes, main joins.
    Fixed,
}

/// The delays of a run; the tests use zero so they run fast.
#[derive(Clone, Copy, Debug)]
struct Timing {
    /// How long a worker waits before its first get (the original only).
    head_start: Duration,
    /// How long one job takes.
    per_job: Duration,
    /// How long main sleeps instead of waiting for the workers (the original only).
    main_sleep: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Config {
    version: Version,
    /// Main queues only once every worker has had its first look at the queue.
    queue_late: bool,
    timing: Timing,
}

/// The shared job queue: the receiving end of a channel, for all workers to take from.
type Queue = Arc<Mutex<Receiver<u32>>>;

/// Python's `repr(threading.current_thread())`: `<Thread(worker 1, started ThreadId(2))>`.
fn current_thread() -> String {
    let me = thread::current();
    let name = me.name().unwrap_or("unnamed");
    format!("<Thread({name}, started {:?})>", me.id())
}

/// Hands a line to main, which prints it. If main has stopped listening the line is lost, as
/// output is once the process has exited, so the error is ignored on purpose.
fn say(log: &Sender<String>, line: String) {
    let _ = log.send(line);
}

/// The FAQ's `worker()`. The two versions differ only in how they take a job.
fn worker(version: Version, queue: &Queue, log: &Sender<String>, timing: Timing) {
    say(log, "Running worker".to_owned());
    if version == Version::Original {
        // The guess: by now main has surely queued the jobs.
        thread::sleep(timing.head_start);
    }
    loop {
        // The guard is a temporary, dropped at the end of its match arm: the lock is released before
        // the job runs, so the other workers can take jobs meanwhile. `while let Ok(arg) =
        // queue.lock().unwrap().recv()` would hold it through the whole loop body (Book ch. 21).
        // In the fix, one idle worker waits in `recv()` holding the lock while the other idle ones
        // wait for the lock: either way they are waiting for a job.
        let job = match version {
            // `q.get(block=False)`: an empty queue right now is taken to mean "no more work".
            Version::Original => queue.lock().unwrap().try_recv().ok(),
            // Waits for a job; `Err` only once the queue is closed (every Sender dropped) and empty.
            Version::Fixed => queue.lock().unwrap().recv().ok(),
        };
        let me = current_thread();
        let Some(arg) = job else {
            let why = match version {
                Version::Original => "queue empty",
                Version::Fixed => "queue closed",
            };
            say(log, format!("Worker {me} {why}"));
            return;
        };
        say(log, format!("Worker {me} running with argument {arg}"));
        thread::sleep(timing.per_job);
    }
}

/// Writes every line that arrives until `deadline`, then whatever had already arrived by then.
/// Returns early if every worker has gone (Python's main would sleep on).
fn relay_until(
    out: &mut impl Write,
    lines: &Receiver<String>,
    deadline: Instant,
) -> io::Result<()> {
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Takes whatever is still queued off the queue, and counts it.
fn drain(queue: &Queue) -> usize {
    queue.lock().unwrap().try_iter().count()
}

/// The FAQ's main program: start the workers, queue the jobs, then wait for the workers (by a
/// guessed sleep in the original, by closing the queue and joining in the fix).
fn run(out: &mut impl Write, config: Config) -> Result<(), Box<dyn Error>> {
    let (log, lines) = mpsc::channel::<String>();
    let (jobs, queue) = mpsc::channel::<u32>();
    let queue: Queue = Arc::new(Mutex::new(queue));

    // Start a pool of 5 workers, before there is any work.
    let workers = (1..=WORKERS)
        .map(|i| {
            let (queue, log) = (Arc::clone(&queue), log.clone());
            thread::Builder::new()
                .name(format!("worker {i}"))
                .spawn(move || worker(config.version, &queue, &log, config.timing))
        })
        .collect::<io::Result<Vec<JoinHandle<()>>>>()?;

    if config.queue_late {
        // Stand-in for a main that is slow to queue: it waits for the lines every worker prints
        // before it can possibly have a job. The original prints two (`Running worker`, then
        // `queue empty`, and it has exited); the fix prints one, then blocks in `recv()`.
        let early = match config.version {
            Version::Original => 2 * WORKERS,
            Version::Fixed => WORKERS,
        };
        for line in lines.iter().take(early) {
            writeln!(out, "{line}")?;
        }
    }

    // Begin adding work to the queue. `send` fails only if the Receiver is gone, and `queue` holds it.
    for arg in 0..JOBS {
        jobs.send(arg)?;
    }

    match config.version {
        Version::Original => {
            say(&log, "Main thread sleeping".to_owned());
            drop(log);
            relay_until(out, &lines, Instant::now() + config.timing.main_sleep)?;
            // Main returns now: in a real process every thread still running dies with it.
            let running = workers.iter().filter(|w| !w.is_finished()).count();
            let left = drain(&queue);
            writeln!(
                out,
                "Main thread exiting: {left} jobs left on the queue, {running} workers still running"
            )?;
        }
        Version::Fixed => {
            // Close the queue: the workers run what is queued, then their `recv()` returns `Err`.
            drop(jobs);
            say(&log, "Main thread waiting for workers".to_owned());
            drop(log);
            // Ends when the last worker has dropped its `log`, that is, when it has returned.
            for line in &lines {
                writeln!(out, "{line}")?;
            }
            for w in workers {
                w.join().map_err(|_| "a worker panicked")?;
            }
            writeln!(
                out,
                "Main thread joined {WORKERS} workers: {} jobs left on the queue",
                drain(&queue)
            )?;
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "original".to_owned());
    let (version, queue_late) = match mode.as_str() {
        "original" => (Version::Original, false),
        "late" => (Version::Original, true),
        "fixed" => (Version::Fixed, false),
        "fixed-late" => (Version::Fixed, true),
        other => {
            return Err(
                format!("unknown mode {other:?}: use original, late, fixed or fixed-late").into(),
            );
        }
    };
    let config = Config {
        version,
        queue_late,
        timing: FAQ_TIMING,
    };
    run(&mut io::stdout().lock(), config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    const FAST: Timing = Timing {
        head_start: Duration::ZERO,
        per_job: Duration::ZERO,
        main_sleep: Duration::ZERO,
    };

    /// Runs the program on a helper thread, so that a hang fails the test instead of stalling it.
    fn output(version: Version, queue_late: bool) -> Vec<String> {
        let (done, result) = mpsc::channel();
        thread::spawn(move || {
            let mut out = Vec::new();
            let ran = run(
                &mut out,
                Config {
                    version,
                    queue_late,
                    timing: FAST,
                },
            )
            .map_err(|e| e.to_string());
            let _ = done.send(ran.map(|()| out));
        });
        let out = result
            .recv_timeout(Duration::from_secs(30))
            .expect("run hung")
            .expect("run failed");
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A worker line split into (worker name, thread id, the rest), checking its shape on the way.
    fn worker_line(line: &str) -> Option<(&str, &str, &str)> {
        let rest = line.strip_prefix("Worker <Thread(")?;
        let (name, rest) = rest.split_once(", started ")?;
        let (id, rest) = rest.split_once(")> ")?;
        assert!(name.starts_with("worker "), "{line}");
        assert!(id.starts_with("ThreadId(") && id.ends_with(')'), "{line}");
        Some((name, id, rest))
    }

    /// The arguments the workers ran, in output order.
    fn arguments(lines: &[String]) -> Vec<u32> {
        let args = lines
            .iter()
            .filter_map(|l| worker_line(l)?.2.strip_prefix("running with argument "));
        args.map(|a| a.parse().expect("argument is a number"))
            .collect()
    }

    /// N in the original's last line, `Main thread exiting: N jobs left on the queue, ...`.
    fn jobs_left(line: &str) -> Option<usize> {
        let rest = line.strip_prefix("Main thread exiting: ")?;
        rest.split_once(" jobs left on the queue, ")?.0.parse().ok()
    }

    fn count(lines: &[String], line: &str) -> usize {
        lines.iter().filter(|l| *l == line).count()
    }

    fn count_endings(lines: &[String], ending: &str) -> usize {
        lines
            .iter()
            .filter(|l| worker_line(l).is_some_and(|(_, _, rest)| rest == ending))
            .count()
    }

    #[test]
    fn original_with_late_main_leaves_every_job_undone() {
        let lines = output(Version::Original, true);
        assert_eq!(count(&lines, "Running worker"), WORKERS);
        assert_eq!(count_endings(&lines, "queue empty"), WORKERS);
        assert_eq!(arguments(&lines), Vec::<u32>::new());
        assert_eq!(count(&lines, "Main thread sleeping"), 1);
        let last = lines.last().expect("a summary line");
        assert_eq!(jobs_left(last), Some(50), "{last}");
    }

    #[test]
    fn original_never_runs_a_job_twice() {
        // Without a late main the outcome depends on the scheduler; these hold for any of them.
        let lines = output(Version::Original, false);
        let args = arguments(&lines);
        let unique: BTreeSet<u32> = args.iter().copied().collect();
        assert_eq!(unique.len(), args.len(), "a job ran twice: {args:?}");
        assert!(args.iter().all(|a| *a < JOBS));
        let last = lines.last().expect("a summary line");
        let left = jobs_left(last).expect("summary shape");
        assert!(
            left + args.len() <= JOBS as usize,
            "{left} left + {} run",
            args.len()
        );
    }

    fn assert_fixed_runs_everything_once(queue_late: bool) {
        let lines = output(Version::Fixed, queue_late);
        assert_eq!(count(&lines, "Running worker"), WORKERS);
        assert_eq!(count_endings(&lines, "queue closed"), WORKERS);
        assert_eq!(count(&lines, "Main thread waiting for workers"), 1);
        let mut args = arguments(&lines);
        args.sort_unstable();
        assert_eq!(
            args,
            (0..JOBS).collect::<Vec<_>>(),
            "each argument exactly once"
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("Main thread joined 5 workers: 0 jobs left on the queue")
        );

        // Each worker keeps one name and one id, and no two workers share either.
        let mut ids = BTreeMap::new();
        for (name, id, _) in lines.iter().filter_map(|l| worker_line(l)) {
            assert_eq!(*ids.entry(name).or_insert(id), id, "{name} changed id");
        }
        assert_eq!(ids.len(), WORKERS);
        assert_eq!(ids.values().collect::<BTreeSet<_>>().len(), WORKERS);
    }

    #[test]
    fn fixed_runs_every_job_exactly_once() {
        assert_fixed_runs_everything_once(false);
    }

    #[test]
    fn fixed_does_not_mind_a_late_main() {
        assert_fixed_runs_everything_once(true);
    }
}
