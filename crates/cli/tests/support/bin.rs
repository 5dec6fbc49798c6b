//! The one runner for the `fetchall` binary (and for the other programs a test compares it
//! with): [`TestCommand`] builds the command line, [`Running`] is the child while it runs, and
//! [`Output`] is how it ended.
//!
//! Every child gets an environment of `PATH` alone plus what the test sets: no proxy setting of
//! the developer's sends loopback requests elsewhere, and no `RUST_LOG`, `COLUMNS` or outer tmux
//! changes the output. Its stdin is a pipe the test writes (then closes); its stdout and stderr
//! lines arrive on channels as it writes them, read by threads of their own, so a test can wait
//! for a line without a pipe filling up. Every wait is bounded by [`GENEROUS`], and a child
//! still running when its [`Running`] is dropped is killed.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use fetchall_serve::testing::GENEROUS;

/// The binary under test.
pub(crate) const FETCHALL: &str = env!("CARGO_BIN_EXE_fetchall");

/// `fetchall`, ready for its arguments.
pub(crate) fn fetchall() -> TestCommand {
    TestCommand::program(FETCHALL)
}

/// A command line to run, with the bytes for its stdin.
pub(crate) struct TestCommand {
    cmd: Command,
    stdin: Vec<u8>,
}

impl TestCommand {
    /// `program` with an environment of `PATH` alone and an empty stdin.
    pub(crate) fn program(program: impl AsRef<OsStr>) -> TestCommand {
        let mut cmd = Command::new(program);
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        TestCommand {
            cmd,
            stdin: Vec::new(),
        }
    }

    /// Adds an argument.
    pub(crate) fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub(crate) fn args<I, S>(&mut self, args: I) -> &mut TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets environment variables, on top of `PATH`.
    pub(crate) fn envs<'a>(
        &mut self,
        vars: impl IntoIterator<Item = &'a (&'a str, &'a str)>,
    ) -> &mut TestCommand {
        self.cmd.envs(vars.into_iter().copied());
        self
    }

    /// What the child reads on stdin; the pipe is closed after it.
    pub(crate) fn stdin(&mut self, input: impl Into<Vec<u8>>) -> &mut TestCommand {
        self.stdin = input.into();
        self
    }

    /// Starts the child.
    pub(crate) fn spawn(&mut self) -> Running {
        let started = Instant::now();
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{:?} starts: {e}", self.cmd.get_program()));
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = std::mem::take(&mut self.stdin);
        thread::spawn(move || {
            // The child may exit before it has read everything: that is not an error here.
            let _ = stdin.write_all(&input);
        });
        let stdout = lines_of(child.stdout.take().expect("stdout is piped"));
        let stderr = lines_of(child.stderr.take().expect("stderr is piped"));
        Running {
            child,
            stdout,
            stderr,
            started,
        }
    }

    /// Runs the child to its end.
    pub(crate) fn run(&mut self) -> Output {
        self.spawn().finish()
    }
}

/// Sends each line `from` gives, with its line ending, on a channel, until it ends or the
/// receiver is gone (then `from` is dropped: a closed pipe, as `| head -1` leaves it).
fn lines_of(from: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut from = BufReader::new(from);
        loop {
            let mut line = Vec::new();
            match from.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if tx.send(line).is_err() => break,
                Ok(_) => {}
            }
        }
    });
    rx
}

/// A line without its line ending.
fn trimmed(mut line: Vec<u8>) -> String {
    if line.ends_with(b"\n") {
        line.pop();
    }
    String::from_utf8(line).expect("output is UTF-8")
}

/// A running child. Killed when dropped, if a failed test leaves it running.
pub(crate) struct Running {
    child: Child,
    stdout: Receiver<Vec<u8>>,
    stderr: Receiver<Vec<u8>>,
    started: Instant,
}

impl Running {
    /// The next stdout line.
    pub(crate) fn line(&self) -> String {
        let line = self.stdout.recv_timeout(GENEROUS);
        trimmed(line.expect("the child printed a line"))
    }

    /// Waits for `count` stderr lines that contain `marker`; returns every stderr line seen.
    pub(crate) fn stderr_until(&self, marker: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + GENEROUS;
        let mut seen = Vec::new();
        let mut found = 0;
        while found < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.stderr.recv_timeout(left) else {
                panic!("waiting for {count} x {marker:?}; saw {seen:#?}");
            };
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            found += usize::from(line.contains(marker));
            seen.push(line);
        }
        seen
    }

    /// Stops reading stdout, as `| head -1` does: the next write the child makes finds the pipe
    /// closed.
    pub(crate) fn close_stdout(&mut self) {
        self.stdout = mpsc::channel().1;
    }

    /// The child's threads, by name (Linux's `/proc/PID/task/*/comm`), and how many it has by
    /// the `Threads:` line of `/proc/PID/status`.
    ///
    /// # Panics
    ///
    /// When `/proc` cannot be read (not Linux, or the child has been reaped).
    pub(crate) fn threads(&self) -> (usize, Vec<String>) {
        let proc = format!("/proc/{}", self.child.id());
        let status = std::fs::read_to_string(format!("{proc}/status")).expect("/proc/PID/status");
        let count = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("a Threads: line");
        let names = std::fs::read_dir(format!("{proc}/task"))
            .expect("/proc/PID/task")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim_end().to_owned())
            .collect();
        (count, names)
    }

    /// How many times the child's threads have gone to sleep and been woken so far: the sum of
    /// `voluntary_ctxt_switches` over `/proc/PID/task/*/status`.
    ///
    /// # Panics
    ///
    /// When `/proc` cannot be read (not Linux, or the child has been reaped).
    pub(crate) fn wakeups(&self) -> u64 {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .expect("/proc/PID/task")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
            .filter_map(|status| {
                let line = status
                    .lines()
                    .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?;
                line.trim().parse::<u64>().ok()
            })
            .sum()
    }

    /// Ctrl-C.
    pub(crate) fn interrupt(&self) {
        self.signal("INT");
    }

    /// Sends the signal `name` (`INT`, `TERM`, `HUP`, ...), as `kill -s NAME` does.
    ///
    /// # Panics
    ///
    /// When `kill` fails, for instance because the child has already been reaped.
    pub(crate) fn signal(&self, name: &str) {
        let sent = TestCommand::program("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .run();
        assert!(sent.status.success(), "kill -s {name}: {}", sent.stderr);
    }

    /// Waits for the end: its exit status, and the stdout and stderr it wrote that no
    /// [`Running::line`] or [`Running::stderr_until`] has taken. Fails the test (and kills the
    /// child) if it is still running after [`GENEROUS`].
    pub(crate) fn finish(mut self) -> Output {
        let deadline = Instant::now() + GENEROUS;
        // Each channel closes when the child closes the stream, at its exit.
        let rest = |rx: &Receiver<Vec<u8>>| -> Vec<u8> {
            let mut bytes = Vec::new();
            while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                bytes.extend(line);
            }
            bytes
        };
        let stdout = rest(&self.stdout);
        let stderr = String::from_utf8_lossy(&rest(&self.stderr)).into_owned();
        // Both streams are closed: the child is exiting, so this poll is short.
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait on the child") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} still running after {GENEROUS:?}; stderr: {stderr}",
                self.child.id()
            );
            thread::sleep(Duration::from_millis(10));
        };
        Output {
            status,
            stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
            stderr,
            took: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How a child ended.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    /// What it wrote to stdout (after the lines a test took while it ran).
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// From start to exit.
    pub(crate) took: Duration,
}

impl Output {
    /// The exit code; `None` if a signal ended it.
    pub(crate) fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The stdout lines, in the order written.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(str::to_owned).collect()
    }

    /// The stdout lines, sorted: output order is completion order.
    pub(crate) fn sorted_lines(&self) -> Vec<String> {
        let mut lines = self.lines();
        lines.sort();
        lines
    }
}
