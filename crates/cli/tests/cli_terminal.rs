//! The binary in a real terminal (tmux): the progress line takes its width from the terminal,
//! fits a narrow one, leaves no stale rows when the window is narrowed, comes back below the
//! result lines when stdout is the same terminal, and gives way to a plain message when the
//! URLs are typed at the terminal. Every test needs tmux.

use std::thread;
use std::time::{Duration, Instant};

use fetchall_serve::testing::{GENEROUS, server};

use crate::support::TempFile;
use crate::support::bin::FETCHALL;
use crate::support::hang::Hanging;
use crate::support::tmux::Tmux;

/// The window's rows that are not blank, as shown now.
fn rows(tmux: &Tmux) -> Vec<String> {
    tmux.screen()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim_end().to_owned())
        .collect()
}

/// Captures the window until `test` holds; fails with the last capture if it never does.
fn rows_until(tmux: &Tmux, what: &str, test: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + GENEROUS;
    loop {
        let rows = rows(tmux);
        if test(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "never {what}: {rows:#?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A run of three fast URLs and two that hang, in a tmux window `columns` wide, stdout to a
/// file or to the terminal. Returns once both hanging fetches are at the server, with what
/// must be kept alive meanwhile.
struct Run {
    tmux: Tmux,
    _hang: Hanging,
    _fast: fetchall_serve::Server,
    _files: [TempFile; 3],
}

fn start(name: &str, columns: u16, stdout_to_file: bool) -> Run {
    let tmux = Tmux::start(name);
    let (mut hang, fast) = (Hanging::start(2), server());
    let mut urls: Vec<String> = (0..3).map(|i| fast.url(&format!("/ok?{i}"))).collect();
    urls.extend(hang.urls(2));
    let list = TempFile::holding(crate::support::text(&urls));
    let (out, script) = (TempFile::named("out.txt"), TempFile::named("run.sh"));
    let redirect = if stdout_to_file {
        format!("> '{}'", out.path_str())
    } else {
        String::new()
    };
    std::fs::write(
        script.path(),
        format!(
            "'{FETCHALL}' '{}' -w 4 --timeout 600 {redirect}\nexec cat > /dev/null\n",
            list.path_str()
        ),
    )
    .unwrap();
    tmux.run_script_in(script.path(), columns);
    hang.wait_for(2);
    Run {
        tmux,
        _hang: hang,
        _fast: fast,
        _files: [list, out, script],
    }
}

const PROGRESS: &str = "fetchall 3/5 (60%), 3 ok, 0 failed, ";

#[test]
#[ignore = "needs tmux"]
fn the_progress_line_fits_a_narrow_terminal_and_a_resize_leaves_no_stale_rows() {
    let run = start("narrow", 40, true);
    // The whole line is 55 columns or so: at 40 it is cut to 39, on one row, from the first
    // draw on (COLUMNS is not set: the width is the terminal's own).
    let rows = rows_until(&run.tmux, "the progress line", |rows| {
        rows.iter().any(|r| r.starts_with("fetchall 3/5"))
    });
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].len(), 39, "{rows:#?}");
    // Wider: the whole line, on one row.
    run.tmux.resize(100);
    let rows = rows_until(&run.tmux, "the whole line", |rows| {
        rows.len() == 1 && rows[0].starts_with(PROGRESS) && rows[0].ends_with("2 in flight")
    });
    assert!(rows[0].len() < 100);
    // Narrower again: the terminal re-flows the long line over two rows; both are erased and
    // one row, cut to the new width, is left.
    run.tmux.resize(30);
    let rows = rows_until(&run.tmux, "the line cut to 29 columns", |rows| {
        rows.iter()
            .any(|r| r.len() == 29 && r.starts_with("fetchall 3/5"))
    });
    assert_eq!(rows.len(), 1, "stale rows left: {rows:#?}");
}

#[test]
#[ignore = "needs tmux"]
fn with_stdout_on_the_terminal_the_line_comes_back_below_the_results() {
    let run = start("shared", 100, false);
    let rows = rows_until(&run.tmux, "the line below three results", |rows| {
        rows.len() == 4 && rows[3].starts_with(PROGRESS)
    });
    assert!(
        rows[..3].iter().all(|r| r.ends_with("page is 3 bytes")),
        "{rows:#?}"
    );
}

#[test]
#[ignore = "needs tmux"]
fn urls_typed_at_the_terminal_get_a_message_not_a_progress_line() {
    let tmux = Tmux::start("typed");
    let fast = server();
    let script = TempFile::holding(format!(
        "'{FETCHALL}' - --timeout 60\necho \"status $?\"\nexec cat > /dev/null\n"
    ));
    tmux.run_script(script.path());
    let waiting = "fetchall: reading URLs from the terminal; end with Ctrl-D";
    rows_until(&tmux, "the message", |rows| rows == [waiting]);
    let url = fast.url("/ok");
    tmux.run(&["send-keys", "-l", &url]);
    tmux.run(&["send-keys", "Enter"]);
    // The typed URL is on a row of its own, its result below it.
    let result = format!("'{url}' page is 3 bytes");
    let rows = rows_until(&tmux, "the result", |rows| rows.contains(&result));
    assert_eq!(rows, [waiting, url.as_str(), result.as_str()]);
    tmux.run(&["send-keys", "C-d"]);
    let rows = rows_until(&tmux, "the end", |rows| {
        rows.last().is_some_and(|r| r == "status 0")
    });
    assert!(
        rows[3].starts_with("fetchall: 1 ok, 0 failed in "),
        "{rows:#?}"
    );
}
