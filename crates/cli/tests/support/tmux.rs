//! A real terminal for the tests of the progress line: [`Tmux`], a tmux server of the test's
//! own, and [`TerminalRun`], a `fetchall` run in one of its windows. The tests that use them are
//! `#[ignore = "needs tmux"]`; [`Tmux::start`] fails the test when tmux is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use fetchall_serve::testing::{GENEROUS, require, server};

use super::bin::{FETCHALL, TestCommand};
use super::gate::GateServer;
use super::{TempFile, text};

/// A tmux server of our own (its own socket, no configuration), killed and its socket removed
/// when dropped.
pub(crate) struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A server on a socket named after `name`; it starts with the first window.
    ///
    /// # Panics
    ///
    /// When tmux is not installed.
    pub(crate) fn start(name: &str) -> Tmux {
        require("tmux", "-V");
        // Short: a socket path has a length limit.
        let socket = format!("fetchall-tmux-{}-{name}", std::process::id());
        Tmux {
            socket: std::env::temp_dir().join(socket),
        }
    }

    fn tmux(&self) -> TestCommand {
        let mut cmd = TestCommand::program("tmux");
        cmd.arg("-S").arg(&self.socket).args(["-f", "/dev/null"]);
        cmd
    }

    /// Runs `script` with sh in a new 100x20 window.
    pub(crate) fn run_script(&self, script: &Path) {
        self.run_script_in(script, 100);
    }

    /// Runs `script` with sh in a new window `columns` wide and 20 rows high.
    pub(crate) fn run_script_in(&self, script: &Path, columns: u16) {
        let command = format!("sh {}", script.display());
        self.run(&[
            "new-session",
            "-d",
            "-x",
            &columns.to_string(),
            "-y",
            "20",
            &command,
        ]);
    }

    /// Makes the window `columns` wide.
    pub(crate) fn resize(&self, columns: u16) {
        self.run(&["resize-window", "-x", &columns.to_string(), "-y", "20"]);
    }

    /// Runs `tmux ARGS` on this server, and fails the test if it fails.
    pub(crate) fn run(&self, args: &[&str]) {
        let out = self.tmux().args(args).run();
        assert!(out.status.success(), "tmux {args:?}: {}", out.stderr);
    }

    /// What the window shows now.
    pub(crate) fn screen(&self) -> String {
        self.tmux().args(["capture-pane", "-p"]).run().stdout
    }

    /// Captures the window until `test` holds; the last capture either way.
    pub(crate) fn screen_until(&self, within: Duration, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if test(&screen) || Instant::now() >= deadline {
                return screen;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Not through TestCommand: a drop must not panic, and this may run while a test fails.
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A fetchall run in a tmux window, on a list of three fast URLs and two that wait for the
/// gate, stdout to a file. The exit status is written to a file when it ends, and the window
/// stays open until the tmux server is killed.
pub(crate) struct TerminalRun {
    /// The terminal it runs in.
    pub(crate) tmux: Tmux,
    gate: GateServer,
    _fast: fetchall_serve::Server,
    out: TempFile,
    status: TempFile,
    _list: TempFile,
    _script: TempFile,
}

impl TerminalRun {
    /// Starts `fetchall LIST -w 4 --timeout 30 EXTRA` in a new window of a tmux server named
    /// after `name`, and returns once both slow requests are at the gate.
    ///
    /// # Panics
    ///
    /// When tmux is not installed.
    pub(crate) fn start(name: &str, extra: &str) -> TerminalRun {
        let tmux = Tmux::start(name);
        let (gate, fast) = (GateServer::start(), server());
        let mut urls: Vec<String> = (0..3).map(|i| fast.url(&format!("/ok?{i}"))).collect();
        urls.extend([gate.url("/1"), gate.url("/2")]);
        let list = TempFile::holding(text(&urls));
        let (out, status, script) = (
            TempFile::named("out.txt"),
            TempFile::named("status"),
            TempFile::named("run.sh"),
        );
        std::fs::write(
            script.path(),
            format!(
                "'{bin}' '{list}' -w 4 --timeout 30 {extra} > '{out}'\n\
                 echo $? > '{status}.tmp' && mv '{status}.tmp' '{status}'\n\
                 exec cat > /dev/null\n",
                bin = FETCHALL,
                list = list.path_str(),
                out = out.path_str(),
                status = status.path_str(),
            ),
        )
        .expect("write the script");
        tmux.run_script(script.path());
        // Both slow requests are at the server: the fast ones went first, on other workers.
        let mut arrived = [gate.arrival(), gate.arrival()];
        arrived.sort();
        assert_eq!(arrived, ["/1", "/2"]);
        TerminalRun {
            tmux,
            gate,
            _fast: fast,
            out,
            status,
            _list: list,
            _script: script,
        }
    }

    /// Lets the slow requests finish; returns fetchall's exit status and stdout.
    pub(crate) fn finish(self) -> (String, String, Tmux) {
        self.gate.release_one();
        self.gate.release_one();
        let deadline = Instant::now() + GENEROUS;
        while !self.status.path().exists() {
            assert!(Instant::now() < deadline, "fetchall did not end");
            thread::sleep(Duration::from_millis(20));
        }
        let status = std::fs::read_to_string(self.status.path()).expect("the status file");
        let stdout = std::fs::read_to_string(self.out.path()).expect("the output file");
        (status.trim().to_owned(), stdout, self.tmux)
    }
}
