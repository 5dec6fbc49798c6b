//! Port of the two deadlock programs from Python's `ThreadPoolExecutor` documentation
//! (<https://docs.python.org/3/library/concurrent.futures.html#threadpoolexecutor>).
//!
//! In Python both hang forever; so do their Java equivalents. With fetchall's pool:
//!
//! 1. `wait_on_b` / `wait_on_a` on two workers: each task waits on the other. The wait that
//!    would close the cycle is refused with `TaskError::Deadlock`, naming the tasks and threads,
//!    and the other wait then gets its answer.
//! 2. `wait_on_future` on one worker: the task submits `pow(5, 2)` and waits for it, but the only
//!    worker is the one waiting. fetchall's worker runs the queued task itself, and prints 25.
//!
//! What changed from the Python, and why:
//! - Python's globals `a` and `b` become `OnceLock` slots shared through `Arc`, because a Rust
//!   closure cannot name a variable that is assigned after it is created.
//! - Python's `time.sleep(5)` is there so that both tasks are running before either waits. A
//!   `Barrier` says exactly that, without guessing a duration.
//! - Python prints from inside the tasks; here the tasks send their lines to the main thread,
//!   which prints them, so the output can be checked in the test below.
//!
//! Run it with `cargo run --example deadlocks`.

use std::io::{self, Write};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Barrier, OnceLock};

use fetchall::{Executor, TaskHandle, ThreadPool};

type Slot = Arc<OnceLock<TaskHandle<i32>>>;

/// Python's first program. Returns what `a.result()` and `b.result()` give in the end.
fn wait_on_each_other(print: &Sender<String>) -> (String, String) {
    let executor = ThreadPool::new(2);
    let (a, b): (Slot, Slot) = (Arc::default(), Arc::default());
    let both_running = Arc::new(Barrier::new(2));

    let (b_slot, ready, out) = (b.clone(), both_running.clone(), print.clone());
    let wait_on_b = move || {
        ready.wait();
        // b will never complete because it is waiting on a, says the Python. Here one of the
        // two waits is refused instead.
        match b_slot.wait().result() {
            Ok(value) => out.send(format!("{value}")).ok(),
            Err(e) => out.send(format!("wait_on_b: {e}")).ok(),
        };
        5
    };
    let (a_slot, ready, out) = (a.clone(), both_running, print.clone());
    let wait_on_a = move || {
        ready.wait();
        match a_slot.wait().result() {
            Ok(value) => out.send(format!("{value}")).ok(),
            Err(e) => out.send(format!("wait_on_a: {e}")).ok(),
        };
        6
    };

    let _ = a.set(executor.submit(wait_on_b));
    let _ = b.set(executor.submit(wait_on_a));
    drop(executor); // the end of Python's script: wait for both tasks
    let show = |slot: &Slot| match slot.get().map(TaskHandle::result) {
        Some(Ok(v)) => v.to_string(),
        Some(Err(e)) => e.to_string(),
        None => "never submitted".to_owned(),
    };
    (show(&a), show(&b))
}

/// Python's second program: a task that waits on a task it submitted, with one worker.
fn wait_on_future(print: &Sender<String>) {
    let executor = Arc::new(ThreadPool::new(1));
    let inner = executor.clone();
    let out = print.clone();
    let task = executor.submit(move || {
        let f = inner.submit(|| 5_i32.pow(2));
        // This will never complete in Python, because there is only one worker thread and it is
        // executing this function. fetchall's worker runs `f` here instead.
        match f.join() {
            Ok(value) => out.send(format!("{value}")).ok(),
            Err(e) => out.send(format!("wait_on_future: {e}")).ok(),
        };
    });
    let _ = task.join();
}

fn run(out: &mut impl Write) -> io::Result<()> {
    let (print, printed) = mpsc::channel();

    writeln!(out, "# executor = ThreadPoolExecutor(max_workers=2)")?;
    writeln!(
        out,
        "# a = executor.submit(wait_on_b); b = executor.submit(wait_on_a)"
    )?;
    let (a, b) = wait_on_each_other(&print);
    for line in printed.try_iter() {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "a.result() -> {a}")?;
    writeln!(out, "b.result() -> {b}")?;

    writeln!(out)?;
    writeln!(out, "# executor = ThreadPoolExecutor(max_workers=1)")?;
    writeln!(out, "# executor.submit(wait_on_future)")?;
    wait_on_future(&print);
    for line in printed.try_iter() {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    run(&mut io::stdout().lock())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs the example on a helper thread so that a regression (a hang) fails the test.
    fn output() -> String {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            run(&mut buf).unwrap();
            tx.send(String::from_utf8(buf).unwrap()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the deadlock examples must end, not hang")
    }

    #[test]
    fn both_programs_end_with_an_answer_or_a_named_deadlock() {
        let out = output();
        let lines: Vec<&str> = out.lines().collect();
        // Program 1: exactly one wait refused, naming the cycle; the other printed a value.
        let refused: Vec<&&str> = lines.iter().filter(|l| l.contains("deadlock:")).collect();
        assert_eq!(refused.len(), 1, "{out}");
        assert!(refused[0].contains("which waits on task"), "{out}");
        assert!(
            lines.contains(&"5") || lines.contains(&"6"),
            "the other wait got its answer:\n{out}"
        );
        assert!(lines.contains(&"a.result() -> 5"), "{out}");
        assert!(lines.contains(&"b.result() -> 6"), "{out}");
        // Program 2: Python hangs; we print 25.
        assert_eq!(lines.last(), Some(&"25"), "{out}");
    }
}
