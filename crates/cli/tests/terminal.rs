//! The `fetchall` binary in a real terminal (a tmux server of the test's own): the progress
//! line takes its width from the terminal, fits a narrow one, leaves no stale rows when the
//! window is narrowed, comes back below the result lines when stdout is the same terminal, and
//! gives way to a plain message when the URLs are typed at the terminal.
//!
//! Every test needs tmux and is ignored without `--include-ignored` (`.ci/run` passes it).

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use fetchall_serve::testing::{GENEROUS, server};

/// A file under the temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let unique = format!("fetchall-terminal-{}-{name}", std::process::id());
        Scratch(std::env::temp_dir().join(unique))
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A tmux server of our own (its own socket, no configuration), killed when dropped.
struct Tmux {
    socket: Scratch,
}

impl Tmux {
    fn start(name: &str) -> Tmux {
        Tmux {
            socket: Scratch::new(&format!("tmux-{name}")),
        }
    }

    fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        // PATH alone: no proxy settings, no COLUMNS, no outer tmux.
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.arg("-S").arg(&self.socket.0).args(["-f", "/dev/null"]);
        cmd
    }

    fn ok(&self, args: &[&str]) {
        let status = self.tmux().args(args).status();
        assert!(status.is_ok_and(|s| s.success()), "tmux {args:?} failed");
    }

    /// Runs `script` with sh in a new window `width` columns wide.
    fn run_script(&self, script: &Scratch, width: u16) {
        let command = format!("sh {}", script.path());
        let width = width.to_string();
        self.ok(&["new-session", "-d", "-x", &width, "-y", "20", &command]);
    }

    fn resize(&self, width: u16) {
        self.ok(&["resize-window", "-x", &width.to_string(), "-y", "20"]);
    }

    /// The window's rows that are not blank, as shown now.
    fn rows(&self) -> Vec<String> {
        let out = self.tmux().args(["capture-pane", "-p"]).output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim_end().to_owned())
            .collect()
    }

    /// Captures the window until `test` holds; panics with the last capture if it never does.
    fn rows_until(&self, what: &str, test: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + GENEROUS;
        loop {
            let rows = self.rows();
            if test(&rows) {
                return rows;
            }
            assert!(Instant::now() < deadline, "never {what}: {rows:#?}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

/// A listener that accepts and never answers: its fetches wait. The connections are held
/// while it lives.
struct Hanging {
    port: u16,
    arrived: Receiver<TcpStream>,
    held: Vec<TcpStream>,
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
            held: Vec::new(),
            _listener: listener,
        }
    }

    fn wait_for(&mut self, n: usize) {
        for _ in 0..n {
            let stream = self.arrived.recv_timeout(GENEROUS).expect("a connection");
            self.held.push(stream);
        }
    }
}

/// A run of three fast URLs and two that hang, in a tmux window `width` wide, with stdout to
/// `stdout` (a file, or the terminal when `None`). Returns once both hanging fetches are at
/// the server, with what must be kept alive meanwhile.
struct Run {
    tmux: Tmux,
    _hang: Hanging,
    _fast: fetchall_serve::Server,
    _files: Vec<Scratch>,
}

fn start(name: &str, width: u16, stdout_to_file: bool) -> Run {
    let tmux = Tmux::start(name);
    let (mut hang, fast) = (Hanging::start(2), server());
    let mut urls: Vec<String> = (0..3).map(|i| fast.url(&format!("/ok?{i}"))).collect();
    urls.extend((0..2).map(|i| format!("http://127.0.0.1:{}/hang/{i}", hang.port)));
    let (list, out, script) = (
        Scratch::new(&format!("{name}-list")),
        Scratch::new(&format!("{name}-out")),
        Scratch::new(&format!("{name}-run.sh")),
    );
    let mut file = std::fs::File::create(&list.0).unwrap();
    for url in &urls {
        writeln!(file, "{url}").unwrap();
    }
    let redirect = if stdout_to_file {
        format!("> '{}'", out.path())
    } else {
        String::new()
    };
    std::fs::write(
        &script.0,
        format!(
            "'{bin}' '{list}' -w 4 --timeout 600 {redirect}\nexec cat > /dev/null\n",
            bin = env!("CARGO_BIN_EXE_fetchall"),
            list = list.path(),
        ),
    )
    .unwrap();
    tmux.run_script(&script, width);
    hang.wait_for(2);
    Run {
        tmux,
        _hang: hang,
        _fast: fast,
        _files: vec![list, out, script],
    }
}

const PROGRESS: &str = "fetchall 3/5 (60%), 3 ok, 0 failed, ";

#[test]
#[ignore = "needs tmux"]
fn the_progress_line_fits_a_narrow_terminal_and_a_resize_leaves_no_stale_rows() {
    let run = start("narrow", 40, true);
    // The whole line is 55 columns or so: at 40 it is cut to 39, on one row, from the first
    // draw on (COLUMNS is not set: the width is the terminal's own).
    let rows = run.tmux.rows_until("the progress line", |rows| {
        rows.iter().any(|r| r.starts_with("fetchall 3/5"))
    });
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].len(), 39, "{rows:#?}");
    // Wider: the whole line, on one row.
    run.tmux.resize(100);
    let rows = run.tmux.rows_until("the whole line", |rows| {
        rows.len() == 1 && rows[0].starts_with(PROGRESS) && rows[0].ends_with("2 in flight")
    });
    assert!(rows[0].len() < 100);
    // Narrower again: the terminal re-flows the long line over two rows; both are erased and
    // one row, cut to the new width, is left.
    run.tmux.resize(30);
    let rows = run.tmux.rows_until("the line cut to 29 columns", |rows| {
        rows.iter()
            .any(|r| r.len() == 29 && r.starts_with("fetchall 3/5"))
    });
    assert_eq!(rows.len(), 1, "stale rows left: {rows:#?}");
}

#[test]
#[ignore = "needs tmux"]
fn with_stdout_on_the_terminal_the_line_comes_back_below_the_results() {
    let run = start("shared", 100, false);
    let rows = run.tmux.rows_until("the line below three results", |rows| {
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
    let script = Scratch::new("typed-run.sh");
    std::fs::write(
        &script.0,
        format!(
            "'{}' - --timeout 60\necho \"status $?\"\nexec cat > /dev/null\n",
            env!("CARGO_BIN_EXE_fetchall")
        ),
    )
    .unwrap();
    tmux.run_script(&script, 100);
    let waiting = "fetchall: reading URLs from the terminal; end with Ctrl-D";
    tmux.rows_until("the message", |rows| rows == [waiting]);
    let url = fast.url("/ok");
    tmux.ok(&["send-keys", "-l", &url]);
    tmux.ok(&["send-keys", "Enter"]);
    // The typed URL is on a row of its own, its result below it.
    let result = format!("'{url}' page is 3 bytes");
    let rows = tmux.rows_until("the result", |rows| rows.contains(&result));
    assert_eq!(rows, [waiting, url.as_str(), result.as_str()]);
    tmux.ok(&["send-keys", "C-d"]);
    let rows = tmux.rows_until("the end", |rows| {
        rows.last().is_some_and(|r| r == "status 0")
    });
    assert!(
        rows[3].starts_with("fetchall: 1 ok, 0 failed in "),
        "{rows:#?}"
    );
}
