//! How the `fetchall` binary ends when it is told to stop: SIGINT, SIGTERM and SIGHUP each end
//! the run as Ctrl-C does (a line for every submitted URL, the `--ordered` buffer flushed, the
//! summary with what never ran counted apart) with status 128 + the signal, and a second
//! signal quits at once.
//!
//! The servers are ours, on 127.0.0.1: [`Hanging`] accepts and never answers, and tells the
//! test of each connection, so a signal is sent only once the fetches it should interrupt are
//! at the server.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use fetchall_serve::testing::GENEROUS;

/// A server that never answers: each fetch of it waits until fetchall gives up on it. Up to
/// `max` connections are accepted and told on `arrived`; later ones wait in the listen queue.
/// Every connection stays open as long as the server.
struct Hanging {
    port: u16,
    arrived: Receiver<TcpStream>,
    held: RefCell<Vec<TcpStream>>,
    _listener: TcpListener,
}

impl Hanging {
    fn start(max: usize) -> Hanging {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let accepting = listener.try_clone().expect("clone the listener");
        let (tx, arrived) = mpsc::channel();
        thread::spawn(move || {
            for _ in 0..max {
                let Ok((stream, _)) = accepting.accept() else {
                    return;
                };
                if tx.send(stream).is_err() {
                    return;
                }
            }
        });
        Hanging {
            port,
            arrived,
            held: RefCell::default(),
            _listener: listener,
        }
    }

    /// `n` URLs on this server, in input order.
    fn urls(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("http://127.0.0.1:{}/hang/{i}", self.port))
            .collect()
    }

    /// Waits for `n` more connections.
    fn wait_for(&self, n: usize) {
        for _ in 0..n {
            let stream = self
                .arrived
                .recv_timeout(GENEROUS)
                .expect("fetchall connected");
            self.held.borrow_mut().push(stream);
        }
    }
}

/// A running `fetchall` with `input` on its stdin; its stdout and stderr lines arrive on
/// channels. Killed when dropped, if a failed test leaves it running.
struct Fetchall {
    child: Child,
    stdout: Option<Receiver<String>>,
    stderr: Receiver<String>,
}

/// Sends each line `from` gives on a channel, until it ends.
fn lines_of(from: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Fetchall {
    fn start(args: &[&str], urls: &[String]) -> Fetchall {
        // An environment of PATH alone: no proxy to send loopback requests elsewhere.
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fetchall"));
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let mut child = cmd
            .args(args)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fetchall starts");
        let mut stdin = child.stdin.take().expect("piped");
        let input: String = urls.iter().map(|u| format!("{u}\n")).collect();
        thread::spawn(move || {
            // It may stop reading before the end: that is not an error here.
            let _ = stdin.write_all(input.as_bytes());
        });
        let stdout = Some(lines_of(child.stdout.take().expect("piped")));
        let stderr = lines_of(child.stderr.take().expect("piped"));
        Fetchall {
            child,
            stdout,
            stderr,
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Waits for a stderr line containing `text`.
    fn stderr_says(&self, text: &str) {
        let deadline = Instant::now() + GENEROUS;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("stderr never said {text:?}"));
            if line.contains(text) {
                return;
            }
        }
    }

    /// Waits for the end: the exit code, and the stdout and stderr lines not taken yet.
    fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        let deadline = Instant::now() + GENEROUS;
        let rest = |rx: &Receiver<String>| -> Vec<String> {
            let mut lines = Vec::new();
            // The channel closes when the process closes the stream, at its exit.
            while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                lines.push(line);
            }
            lines
        };
        let stdout = self.stdout.as_ref().map(rest).unwrap_or_default();
        let stderr = rest(&self.stderr).join("\n");
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait on fetchall") {
                return (status.code(), stdout, stderr);
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("fetchall still running after {GENEROUS:?}; stderr: {stderr}");
    }
}

impl Drop for Fetchall {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Two workers take the first two URLs and hang; `signal` comes then. The two are reported
/// interrupted, the four queued behind them (the in-flight limit is 3 per worker) cancelled.
fn stopped_by(signal: &str, extra: &[&str]) -> (Option<i32>, Vec<String>, String, Vec<String>) {
    let hang = Hanging::start(2);
    let urls = hang.urls(20);
    let mut args = vec!["-w", "2", "--timeout", "600"];
    args.extend(extra);
    let run = Fetchall::start(&args, &urls);
    hang.wait_for(2);
    run.signal(signal);
    let (code, stdout, stderr) = run.finish();
    (code, stdout, stderr, urls)
}

/// The URL a result line is about.
fn url_of(line: &str) -> &str {
    line.split('\'').nth(1).unwrap_or_default()
}

#[test]
fn sigterm_ends_the_run_as_ctrl_c_does_with_status_143() {
    let (code, stdout, stderr, urls) = stopped_by("TERM", &["--ordered"]);
    assert_eq!(code, Some(143), "{stderr}");
    // Every submitted URL has its line, in input order: the buffer was flushed.
    let printed: Vec<&str> = stdout.iter().map(|l| url_of(l)).collect();
    assert_eq!(printed, urls[..6], "{stdout:?}");
    assert!(
        stdout[..2]
            .iter()
            .all(|l| l.ends_with("exception: interrupted"))
    );
    assert!(
        stdout[2..]
            .iter()
            .all(|l| l.ends_with("exception: cancelled"))
    );
    assert!(stderr.contains("terminated: stopping"), "{stderr}");
    assert!(stderr.contains("fetchall: interrupted: 0 ok, "), "{stderr}");
}

#[test]
fn sighup_ends_the_run_as_ctrl_c_does_with_status_129() {
    let (code, stdout, stderr, _) = stopped_by("HUP", &[]);
    assert_eq!(code, Some(129), "{stderr}");
    assert_eq!(stdout.len(), 6, "{stdout:?}");
    assert!(stderr.contains("fetchall: interrupted: 0 ok, "), "{stderr}");
}

#[test]
fn sigint_still_exits_130_and_the_summary_counts_what_never_ran_apart() {
    let (code, stdout, stderr, _) = stopped_by("INT", &[]);
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(stdout.len(), 6, "{stdout:?}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("fetchall: interrupted: "))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    assert!(
        summary.starts_with("fetchall: interrupted: 0 ok, 2 failed, 4 not run in "),
        "{summary}"
    );
}

#[test]
fn a_second_signal_quits_at_once() {
    // The sequential backend fetches on the main thread, which hears the first signal only
    // when the fetch ends: here, not for ten minutes.
    let hang = Hanging::start(1);
    let run = Fetchall::start(
        &["--backend", "sequential", "--timeout", "600"],
        &hang.urls(3),
    );
    hang.wait_for(1);
    run.signal("TERM");
    run.stderr_says("terminated: stopping");
    run.signal("TERM");
    let (code, stdout, _) = run.finish();
    assert_eq!(code, Some(143));
    assert!(stdout.is_empty(), "{stdout:?}");
}
