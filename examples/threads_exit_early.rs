//! Port of the Python FAQ answer "None of my threads seem to run: why?"
//! (<https://docs.python.org/3/faq/library.html#none-of-my-threads-seem-to-run-why>): ten threads
//! that print a few lines each, and a main thread that does not wait for them.
//!
//! ```text
//! cargo run --example threads_exit_early            # main does not wait: threads still running die with it
//! cargo run --example threads_exit_early -- sleep   # the FAQ's workaround: sleep 10 s and hope
//! cargo run --example threads_exit_early -- tokens  # the FAQ's "semaphore mechanism", on a channel
//! cargo run --example threads_exit_early -- join    # better: join every thread
//! cargo run --example threads_exit_early -- scope   # better still: std::thread::scope
//! ```
//!
//! # The program
//! The texts this crate started from lost the code blocks of this answer, so the program is
//! reconstructed from the FAQ's wording and its published source. It is:
//!
//! ```python
//! import threading, time
//!
//! def thread_task(name, n):
//!     time.sleep(0.001)  # only in the second program: the "tiny sleep"
//!     for i in range(n):
//!         print(name, i)
//!
//! for i in range(10):
//!     T = threading.Thread(target=thread_task, args=(str(i), i))
//!     T.start()
//!
//! time.sleep(10)  # <---------------------------!
//! ```
//!
//! Thread `i` prints `i 0` up to `i {i-1}`, so thread 0 prints nothing and the ten print 45 lines.
//!
//! # What changed, and why
//! - **Main does not wait** (`exit`). "As soon as the main thread exits, all threads are killed."
//!   That is no longer true of Python's `threading.Thread` (the interpreter waits for non-daemon
//!   threads at exit); it was true of the old `thread` module, and of daemon threads. It *is* true of
//!   Rust: returning from `main` ends the process, and every spawned thread with it. The last line
//!   counts how many of the ten had finished by then.
//! - **The sleep workaround** (`sleep`) is a guess both ways. On a busy machine no sleep is certainly
//!   long enough; on an idle one the 10 s is nearly all waste, since the work takes microseconds. The
//!   tests show the first case deterministically, by holding the threads back the way a busy scheduler
//!   would. The FAQ's "tiny sleep" against threads that "appear to run sequentially" is kept for
//!   fidelity: Rust's threads are OS threads, preempted and run on every core, and a task this short
//!   simply finishes within its first time slice. Printing in order is not a bug to be fixed by sleeping.
//! - **The token mechanism** (`tokens`), as the FAQ describes it: each thread puts a token on a queue
//!   when it finishes, and main takes as many tokens as there are threads. The queue is an `mpsc`
//!   channel. One improvement: main drops its own `Sender` first, so if a thread dies without sending
//!   its token (a panic), main's `recv` fails once every thread is gone, instead of waiting forever as
//!   Python's `queue.get()` would.
//! - **Join** (`join`): keep each `JoinHandle` and `join` it. That waits until the thread has really
//!   ended, not just sent a token, and a panic in the thread comes back as an `Err`.
//! - **Scope** (`scope`): `std::thread::scope` joins every thread it spawned before it returns, so
//!   forgetting to wait is impossible, and the threads may borrow from main's stack (here the
//!   `Sender`, with no clone), because the compiler knows they end first.
//!
//! Threads do not write to stdout themselves: they send their lines, and their token, over one channel
//! to main, which writes the lines to `out`. So the tests can capture them, and lines sent after main
//! has stopped listening are lost, as they are once a process has exited. The last line
//! (`Main thread exiting: N of 10 threads finished`) is ours, not the FAQ's.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The FAQ's `for i in range(10)`.
const THREADS: usize = 10;

/// What a thread sends to main.
#[derive(Debug)]
enum Msg {
    /// A line the FAQ's thread prints.
    Line(String),
    /// The token: this thread has finished.
    Finished,
}

/// How main waits for the threads.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// Not at all: the FAQ's problem.
    Nothing,
    /// `time.sleep(..)`: the FAQ's workaround.
    Sleep(Duration),
    /// One token per thread: the FAQ's "semaphore mechanism".
    Tokens,
    /// `JoinHandle::join` on every thread.
    Join,
    /// `thread::scope`, which joins them all.
    Scope,
}

/// How the threads start.
#[derive(Clone, Debug, Default)]
struct Setup {
    /// The FAQ's "tiny sleep" at the start of `thread_task`.
    start_delay: Duration,
    /// For the tests: the threads wait here before doing anything, as threads the OS has not yet
    /// got round to running would. Whoever holds the other end releases them with `wait()`.
    held: Option<Arc<Barrier>>,
}

/// The FAQ's `thread_task(name, n)`, plus the token at the end.
fn thread_task(name: &str, n: usize, setup: &Setup, out: &Sender<Msg>) {
    if let Some(start) = &setup.held {
        start.wait();
    }
    thread::sleep(setup.start_delay);
    // Sends fail only once main has stopped listening; in a real process this thread would be dead
    // by then, and its output lost. So the errors are ignored on purpose.
    for i in 0..n {
        let _ = out.send(Msg::Line(format!("{name} {i}")));
    }
    let _ = out.send(Msg::Finished);
}

/// The FAQ's loop: start thread `i` with `args=(str(i), i)`.
fn spawn_all(setup: &Setup, out: &Sender<Msg>) -> io::Result<Vec<JoinHandle<()>>> {
    (0..THREADS)
        .map(|i| {
            let (setup, out) = (setup.clone(), out.clone());
            thread::Builder::new().spawn(move || thread_task(&i.to_string(), i, &setup, &out))
        })
        .collect()
}

/// Writes the lines the threads sent and counts their tokens: first until `tokens` have come in,
/// blocking, then whatever else has already arrived. Returns the number of tokens.
fn relay(out: &mut impl Write, messages: &Receiver<Msg>, tokens: usize) -> io::Result<usize> {
    let mut finished = 0;
    loop {
        let msg = if finished < tokens {
            messages.recv().ok()
        } else {
            messages.try_recv().ok()
        };
        match msg {
            Some(Msg::Line(line)) => writeln!(out, "{line}")?,
            Some(Msg::Finished) => finished += 1,
            None => return Ok(finished),
        }
    }
}

/// Starts the FAQ's ten threads, waits for them as `wait` says, and returns how many had finished.
fn run(out: &mut impl Write, wait: Wait, setup: &Setup) -> io::Result<usize> {
    let (tx, messages) = mpsc::channel();
    let finished = match wait {
        Wait::Nothing => {
            // Dropping a JoinHandle detaches its thread: nothing can wait for it any more.
            drop(spawn_all(setup, &tx)?);
            relay(out, &messages, 0)?
        }
        Wait::Sleep(guess) => {
            drop(spawn_all(setup, &tx)?);
            thread::sleep(guess);
            // Main is the one printing here, so the lines appear when it wakes.
            relay(out, &messages, 0)?
        }
        Wait::Tokens => {
            drop(spawn_all(setup, &tx)?);
            // Without this, main's own Sender would keep the channel open, and a thread that died
            // before sending its token would leave `recv` waiting forever.
            drop(tx);
            relay(out, &messages, THREADS)?
        }
        Wait::Join => {
            for handle in spawn_all(setup, &tx)? {
                handle
                    .join()
                    .map_err(|_| io::Error::other("a thread panicked"))?;
            }
            relay(out, &messages, 0)?
        }
        Wait::Scope => {
            thread::scope(|s| {
                for i in 0..THREADS {
                    // A scoped thread may borrow `tx`: the scope outlives it.
                    let tx = &tx;
                    s.spawn(move || thread_task(&i.to_string(), i, setup, tx));
                }
            }); // Every thread has ended here; a panic in one would be re-raised here.
            relay(out, &messages, 0)?
        }
    };
    writeln!(
        out,
        "Main thread exiting: {finished} of {THREADS} threads finished"
    )?;
    Ok(finished)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "exit".to_owned());
    let (wait, start_delay) = match mode.as_str() {
        "exit" => (Wait::Nothing, Duration::ZERO),
        // The FAQ's second program: a tiny sleep in each thread, and 10 s in main.
        "sleep" => (
            Wait::Sleep(Duration::from_secs(10)),
            Duration::from_millis(1),
        ),
        "tokens" => (Wait::Tokens, Duration::ZERO),
        "join" => (Wait::Join, Duration::ZERO),
        "scope" => (Wait::Scope, Duration::ZERO),
        other => {
            return Err(
                format!("unknown mode {other:?}: use exit, sleep, tokens, join or scope").into(),
            );
        }
    };
    run(
        &mut io::stdout().lock(),
        wait,
        &Setup {
            start_delay,
            held: None,
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Runs the program on a helper thread, so that a hang fails the test instead of stalling it.
    /// Returns the output lines and the count `run` returned.
    fn output(wait: Wait, setup: Setup) -> (Vec<String>, usize) {
        let (done, result) = mpsc::channel();
        thread::spawn(move || {
            let mut out = Vec::new();
            let finished = run(&mut out, wait, &setup).map_err(|e| e.to_string());
            let _ = done.send(finished.map(|n| (out, n)));
        });
        let (out, finished) = result
            .recv_timeout(Duration::from_secs(30))
            .expect("run hung")
            .expect("run failed");
        let lines = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect();
        (lines, finished)
    }

    /// The `name i` lines, checked for shape: each name's numbers, in the order printed.
    fn task_lines(lines: &[String]) -> BTreeMap<usize, Vec<usize>> {
        let mut by_name = BTreeMap::<usize, Vec<usize>>::new();
        for line in lines.iter().filter(|l| !l.starts_with("Main thread")) {
            let (name, i) = line.split_once(' ').expect("`name i`");
            let (name, i) = (
                name.parse().expect("name is a number"),
                i.parse().expect("i is a number"),
            );
            by_name.entry(name).or_default().push(i);
        }
        by_name
    }

    fn assert_summary(lines: &[String], finished: usize) {
        let expected = format!("Main thread exiting: {finished} of 10 threads finished");
        assert_eq!(lines.last(), Some(&expected));
    }

    /// The threads are held at the start, as a busy scheduler might: main's wait, if it is not a
    /// real one, ends before any of them has run.
    fn assert_nothing_runs_when_held(wait: Wait) {
        let start = Arc::new(Barrier::new(THREADS + 1));
        let (lines, finished) = output(
            wait,
            Setup {
                start_delay: Duration::ZERO,
                held: Some(Arc::clone(&start)),
            },
        );
        assert_eq!(finished, 0);
        assert_eq!(lines.len(), 1, "only main's line: {lines:?}");
        assert_summary(&lines, 0);
        start.wait(); // let the threads go, so none is left blocked
    }

    #[test]
    fn not_waiting_loses_the_threads_work() {
        assert_nothing_runs_when_held(Wait::Nothing);
    }

    #[test]
    fn a_guessed_sleep_can_always_be_too_short() {
        assert_nothing_runs_when_held(Wait::Sleep(Duration::ZERO));
    }

    /// Every thread ran to the end: thread `n` printed `n 0` .. `n {n-1}`, in order, once.
    fn assert_all_work_done(wait: Wait) {
        let (lines, finished) = output(wait, Setup::default());
        assert_eq!(finished, THREADS);
        assert_summary(&lines, THREADS);
        assert_eq!(lines.len(), 45 + 1, "45 task lines and main's");
        let by_name = task_lines(&lines);
        let expected: BTreeMap<usize, Vec<usize>> =
            (1..THREADS).map(|n| (n, (0..n).collect())).collect();
        assert_eq!(by_name, expected);
    }

    #[test]
    fn tokens_wait_for_every_thread() {
        assert_all_work_done(Wait::Tokens);
    }

    #[test]
    fn join_waits_for_every_thread() {
        assert_all_work_done(Wait::Join);
    }

    #[test]
    fn scope_waits_for_every_thread() {
        assert_all_work_done(Wait::Scope);
    }
}
