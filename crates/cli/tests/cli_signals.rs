//! How the binary ends when it is told to stop: SIGTERM and SIGHUP end the run as Ctrl-C does
//! (a line for every submitted URL, the `--ordered` buffer flushed, the summary, with what
//! never ran counted apart) with status 128 + the signal, and a second signal quits at once.
//!
//! The server is a [`Hanging`] one, and a signal is sent only once the fetches it should
//! interrupt are at the server.

use crate::support::bin::{Output, fetchall};
use crate::support::hang::Hanging;
use crate::support::{text, url_of};

/// How many URLs a run with two workers takes before any finishes: the two running and the
/// executor's queue, which holds at least 128 (`MIN_QUEUED` in `crates/cli/src/dispatch.rs`).
const SUBMITTED: usize = 2 + 128;

/// Two workers take the first two of 200 URLs and hang; `signal` comes once the run has taken
/// all it will (`-v` logs each as `queued`). Returns the run's end and its URLs.
fn stopped_by(signal: &str, extra: &[&str]) -> (Output, Vec<String>) {
    let mut hang = Hanging::start(2);
    let urls = hang.urls(200);
    let run = fetchall()
        .args(["-v", "-w", "2", "--timeout", "600", "-"])
        .args(extra)
        .stdin(text(&urls))
        .spawn();
    run.stderr_until("queued", SUBMITTED);
    hang.wait_for(2);
    run.signal(signal);
    (run.finish(), urls)
}

#[test]
fn sigterm_ends_the_run_as_ctrl_c_does_with_status_143() {
    let (output, urls) = stopped_by("TERM", &["--ordered"]);
    assert_eq!(output.code(), Some(143), "{}", output.stderr);
    // Every submitted URL has its line, in input order: the buffer was flushed.
    let lines = output.lines();
    let printed: Vec<&str> = lines.iter().map(|l| url_of(l)).collect();
    assert_eq!(printed, urls[..SUBMITTED], "{lines:#?}");
    assert!(
        lines[..2]
            .iter()
            .all(|l| l.ends_with("exception: interrupted"))
    );
    assert!(
        lines[2..]
            .iter()
            .all(|l| l.ends_with("exception: cancelled"))
    );
    assert!(
        output.stderr.contains("terminated: stopping"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains(&format!(
            "fetchall: interrupted: 0 ok, 2 failed, {} not run in ",
            SUBMITTED - 2
        )),
        "{}",
        output.stderr
    );
}

#[test]
fn sighup_ends_the_run_as_ctrl_c_does_with_status_129() {
    let (output, _) = stopped_by("HUP", &[]);
    assert_eq!(output.code(), Some(129), "{}", output.stderr);
    assert_eq!(output.lines().len(), SUBMITTED, "{}", output.stdout);
    assert!(
        output.stderr.contains("fetchall: interrupted: 0 ok, "),
        "{}",
        output.stderr
    );
}

#[test]
fn sigint_still_exits_130_and_the_summary_counts_what_never_ran_apart() {
    let (output, _) = stopped_by("INT", &[]);
    assert_eq!(output.code(), Some(130), "{}", output.stderr);
    assert_eq!(output.lines().len(), SUBMITTED, "{}", output.stdout);
    let summary = output
        .stderr
        .lines()
        .find(|l| l.starts_with("fetchall: interrupted: "))
        .unwrap_or_else(|| panic!("no summary: {}", output.stderr));
    assert!(
        summary.starts_with(&format!(
            "fetchall: interrupted: 0 ok, 2 failed, {} not run in ",
            SUBMITTED - 2
        )),
        "{summary}"
    );
}

#[test]
fn a_second_sigterm_quits_at_once() {
    // The sequential backend fetches on the main thread, which hears the first signal only
    // when the fetch ends: here, not for ten minutes.
    let mut hang = Hanging::start(1);
    let run = fetchall()
        .args(["--backend", "sequential", "--timeout", "600", "-"])
        .stdin(text(&hang.urls(3)))
        .spawn();
    hang.wait_for(1);
    run.signal("TERM");
    run.stderr_until("terminated: stopping", 1);
    run.signal("TERM");
    let output = run.finish();
    assert_eq!(output.code(), Some(143));
    assert!(output.stdout.is_empty(), "{}", output.stdout);
}
