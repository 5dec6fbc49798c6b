//! The smoke-testing options of the `fetchall` binary, end to end over real HTTP on 127.0.0.1:
//! `--per-host` (no starvation, 429 back-off), `--ordered`, `--shard`, and the progress line,
//! checked in a real terminal (tmux) when tmux is installed.
//!
//! Where a test needs to know what the server is doing, it uses [`GateServer`], which answers
//! each request only when the test says so and reports each request as it arrives: the order of
//! events is forced by the test, never guessed from sleeps.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fetchall_serve::testing::{GENEROUS, arrives_soon, server};

/// `cmd` with an environment of `PATH` alone: no proxy settings to send loopback requests
/// elsewhere, no `RUST_LOG`, no `COLUMNS`, no outer tmux.
fn clean(mut cmd: Command) -> Command {
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_fetchall")
}

/// A running `fetchall`: its stdout and stderr lines arrive on channels as it writes them.
/// Killed when dropped, if a failed test leaves it running.
struct Fetchall {
    child: Child,
    stdout: Receiver<String>,
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
    /// Starts `fetchall ARGS` with `input` on its stdin.
    fn start(args: &[&str], input: &str) -> Fetchall {
        let mut child = clean(Command::new(bin()))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fetchall starts");
        let mut stdin = child.stdin.take().expect("piped");
        let input = input.to_owned();
        thread::spawn(move || {
            // It may exit before it has read everything: that is not an error here.
            let _ = stdin.write_all(input.as_bytes());
        });
        let stdout = lines_of(child.stdout.take().expect("piped"));
        let stderr = lines_of(child.stderr.take().expect("piped"));
        Fetchall {
            child,
            stdout,
            stderr,
        }
    }

    /// The next stdout line.
    fn line(&self) -> String {
        self.stdout
            .recv_timeout(GENEROUS)
            .expect("fetchall printed a line")
    }

    /// Ctrl-C.
    fn interrupt(&self) {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -INT failed");
    }

    /// Waits for the end: the exit code and the stdout and stderr lines not taken yet.
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
        let stdout = rest(&self.stdout);
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

/// Runs `fetchall ARGS` on `input` to its end.
fn run(args: &[&str], input: &str) -> (Option<i32>, Vec<String>, String) {
    Fetchall::start(args, input).finish()
}

fn text(urls: &[String]) -> String {
    urls.iter().map(|u| format!("{u}\n")).collect()
}

/// The URL a result line is about.
fn url_of(line: &str) -> &str {
    line.split('\'').nth(1).unwrap_or_default()
}

/// A loopback HTTP server that answers each request with `200 ok` only when the test releases
/// it, reports every request's path as it arrives, and counts how many wait at once.
struct GateServer {
    addr: SocketAddr,
    arrivals: Receiver<String>,
    release: Option<Sender<()>>,
    peak: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl GateServer {
    fn start() -> GateServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let (arrived, arrivals) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let (peak, stopping) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let waiting = Arc::new(AtomicUsize::new(0));
        let acceptor = {
            let (peak, stopping) = (peak.clone(), stopping.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (arrived, gate) = (arrived.clone(), gate.clone());
                    let (peak, waiting) = (peak.clone(), waiting.clone());
                    thread::spawn(move || {
                        let Some(path) = request_path(&stream) else {
                            return;
                        };
                        let now = waiting.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        let _ = arrived.send(path);
                        // One release answers one request; dropping the sender answers all.
                        let _ = gate.lock().unwrap().recv_timeout(GENEROUS);
                        waiting.fetch_sub(1, Ordering::SeqCst);
                        let _ = (&stream).write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    });
                }
            })
        };
        GateServer {
            addr,
            arrivals,
            release: Some(release),
            peak,
            stopping,
            acceptor: Some(acceptor),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The path of the next request to arrive.
    fn arrival(&self) -> String {
        self.arrivals
            .recv_timeout(GENEROUS)
            .expect("a request arrives")
    }

    /// Lets one waiting request have its answer.
    fn release_one(&self) {
        if let Some(release) = &self.release {
            release.send(()).expect("the gate is open");
        }
    }
}

impl Drop for GateServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        drop(self.release.take());
        // Wakes the accept loop to see the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Reads a request head and returns the path of its request line.
fn request_path(stream: &TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut reader = BufReader::new(stream);
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        head.extend(line);
    }
    let head = String::from_utf8(head).ok()?;
    head.split(' ').nth(1).map(str::to_owned)
}

#[test]
fn per_host_serialises_a_host_while_the_other_hosts_go_ahead() {
    let (slow, fast) = (GateServer::start(), server());
    let mut urls = vec![slow.url("/1"), slow.url("/2")];
    urls.extend((0..6).map(|i| fast.url(&format!("/ok?{i}"))));
    let args = ["-", "-w", "2", "--per-host", "1", "--timeout", "30"];
    let run = Fetchall::start(&args, &text(&urls));
    assert_eq!(slow.arrival(), "/1");
    // The slow host's first request is stuck at the server and its second is held back, yet
    // the other worker fetches all of the fast host's URLs.
    let fast_lines: HashSet<String> = (0..6).map(|_| run.line()).collect();
    let expected: HashSet<String> = urls[2..]
        .iter()
        .map(|u| format!("'{u}' page is 3 bytes"))
        .collect();
    assert_eq!(fast_lines, expected);
    assert!(
        !arrives_soon(&slow.arrivals),
        "a second request to the slow host"
    );
    slow.release_one();
    assert_eq!(slow.arrival(), "/2");
    slow.release_one();
    let (code, rest, stderr) = run.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let rest: Vec<&str> = rest.iter().map(|l| url_of(l)).collect();
    assert_eq!(rest, [urls[0].as_str(), urls[1].as_str()]);
    assert_eq!(slow.peak.load(Ordering::SeqCst), 1);
}

#[test]
fn a_429_pauses_its_host_before_the_next_request() {
    let server = server();
    let urls = [
        server.url("/status/429"),
        server.url("/ok?1"),
        server.url("/ok?2"),
    ];
    let args = ["-", "--per-host", "1", "--format", "json", "-w", "4"];
    let (code, lines, stderr) = run(&args, &text(&urls));
    assert_eq!(code, Some(1), "{stderr}");
    let json: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let find = |url: &str| {
        json.iter()
            .find(|v| v["url"] == url)
            .unwrap_or_else(|| panic!("no line for {url}: {lines:#?}"))
    };
    let ms = |v: &serde_json::Value, field: &str| v[field].as_f64().expect(field);
    let throttled = find(&urls[0]);
    assert_eq!(throttled["status"], 429);
    let answered = ms(throttled, "started_ms") + ms(throttled, "elapsed_ms");
    let (next, last) = (find(&urls[1]), find(&urls[2]));
    // Not before the pause: one second after the 429 came back.
    assert!(
        ms(next, "started_ms") >= answered + 999.0,
        "{throttled}\n{next}"
    );
    // One at a time, and no pause after a good answer is needed to prove it: in order.
    assert!(ms(last, "started_ms") >= ms(next, "started_ms") + ms(next, "elapsed_ms"));
}

#[test]
fn ctrl_c_reports_held_lines_as_cancelled_in_input_order() {
    let (a, c, b) = (GateServer::start(), GateServer::start(), server());
    let mut urls: Vec<String> = (1..=3).map(|i| b.url(&format!("/ok?{i}"))).collect();
    for i in 1..=3 {
        // Two slow hosts, interleaved: the held lines of both are put back in input order.
        urls.push(a.url(&format!("/{i}")));
        urls.push(c.url(&format!("/{i}")));
    }
    // Three workers: one for each slow host's request, one for the fast host's one at a time.
    let args = ["-", "-w", "3", "--per-host", "1", "--ordered"];
    let run = Fetchall::start(&args, &text(&urls));
    let first: Vec<String> = (0..3).map(|_| run.line()).collect();
    assert_eq!(
        first,
        urls[..3]
            .iter()
            .map(|u| format!("'{u}' page is 3 bytes"))
            .collect::<Vec<_>>()
    );
    // Both workers are inside the slow hosts' first requests; their second and third wait.
    assert_eq!((a.arrival(), c.arrival()), ("/1".into(), "/1".into()));
    run.interrupt();
    let (code, rest, stderr) = run.finish();
    assert_eq!(code, Some(130), "{stderr}");
    let endings: Vec<&str> = rest
        .iter()
        .map(|l| l.rsplit(": ").next().unwrap())
        .collect();
    assert_eq!(
        endings,
        [
            "interrupted",
            "interrupted",
            "cancelled",
            "cancelled",
            "cancelled",
            "cancelled"
        ],
        "{rest:#?}"
    );
    let order: Vec<&str> = rest.iter().map(|l| url_of(l)).collect();
    assert_eq!(order, urls[3..]);
    assert!(
        stderr.contains("fetchall: interrupted: 3 ok, 2 failed, 4 not run"),
        "{stderr}"
    );
}

#[test]
fn ordered_output_is_the_input_order_on_every_backend() {
    let server = server();
    let paths = [
        "/sleep/300/bytes/1",
        "/bytes/2",
        "/sleep/100/bytes/3",
        "/status/404",
        "/bytes/5",
        "/sleep/50/bytes/6",
    ];
    let mut urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    urls.insert(3, "not a url".into());
    let expected: Vec<String> = urls
        .iter()
        .map(|u| {
            let error = match u.rsplit('/').next() {
                Some("404") => "HTTP Error 404: Not Found".to_owned(),
                Some(n) if n.len() == 1 => return format!("'{u}' page is {n} bytes"),
                _ => format!("unknown url type: '{u}'"),
            };
            format!("'{u}' generated an exception: {error}")
        })
        .collect();
    let mut backends = vec!["pool", "sequential"];
    if cfg!(feature = "rayon") {
        backends.push("rayon");
    }
    let input = text(&urls);
    let runs: Vec<_> = backends
        .iter()
        .map(|&backend| {
            let input = input.clone();
            thread::spawn(move || {
                let args = ["-", "--ordered", "-w", "4", "--backend", backend];
                run(&args, &input)
            })
        })
        .collect();
    let json = run(&["-", "--ordered", "-w", "4", "--format", "json"], &input);
    for (backend, handle) in backends.iter().zip(runs) {
        let (code, lines, stderr) = handle.join().unwrap();
        assert_eq!(code, Some(1), "{backend}: {stderr}");
        assert_eq!(lines, expected, "{backend}");
        // Not a terminal: no progress line.
        assert!(!stderr.contains('\r'), "{backend}: {stderr:?}");
    }
    let (code, lines, _) = json;
    assert_eq!(code, Some(1));
    let order: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["url"].take())
        .collect();
    assert_eq!(order, urls);
}

/// A file of our own under the target directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        Scratch(dir.join(format!("smoke-{}-{n}-{name}", std::process::id())))
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn the_shards_together_are_the_whole_run_each_line_once() {
    let server = server();
    let mut file = String::from("# a list shared by three machines\n\n");
    let mut urls = Vec::new();
    for i in 0..20 {
        let url = server.url(&format!("/bytes/{i}"));
        file += &format!("{url}\n");
        urls.push(url);
        if i % 7 == 3 {
            file += "# a comment does not count\n\n";
        }
    }
    file += "not a url\n";
    urls.push("not a url".into());
    let list = Scratch::new("list.txt");
    std::fs::write(&list.0, file).unwrap();
    let runs: Vec<_> = ["0/3", "1/3", "2/3", "0/1"]
        .into_iter()
        .map(|shard| {
            let path = list.path().to_owned();
            thread::spawn(move || run(&[&path, "-q", "--shard", shard], ""))
        })
        .collect();
    let outputs: Vec<Vec<String>> = runs
        .into_iter()
        .map(|t| {
            let (code, lines, stderr) = t.join().unwrap();
            // 1 for the run with the invalid line.
            assert!(matches!(code, Some(0 | 1)), "{stderr}");
            lines
        })
        .collect();
    let (shards, whole) = outputs.split_at(3);
    let mut union: Vec<&String> = shards.iter().flatten().collect();
    union.sort();
    let mut whole: Vec<&String> = whole[0].iter().collect();
    whole.sort();
    assert_eq!(union, whole);
    assert_eq!(whole.len(), 21);
    let distinct: BTreeSet<&str> = union.iter().map(|l| url_of(l)).collect();
    assert_eq!(distinct.len(), 21, "each line exactly once");
    // Shard K has the lines whose index among the URL lines is K mod 3.
    for (k, lines) in shards.iter().enumerate() {
        let got: BTreeSet<&str> = lines.iter().map(|l| url_of(l)).collect();
        let want: BTreeSet<&str> = urls
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == k)
            .map(|(_, u)| u.as_str())
            .collect();
        assert_eq!(got, want, "shard {k}/3");
    }
}

#[test]
fn bad_option_values_are_usage_errors() {
    let cases: [(&[&str], &str); 7] = [
        (&["--shard", "3/3"], "K must be less than N"),
        (&["--shard", "0/0"], "N must be at least 1"),
        (&["--shard", "1"], "is not K/N"),
        (&["--shard=-1/3"], "is not K/N"),
        (&["--shard", "x/y"], "is not K/N"),
        (&["--per-host", "0"], "--per-host"),
        (&["--per-host", "many"], "--per-host"),
    ];
    for (args, message) in cases {
        let (code, lines, stderr) = run(&[&["-"], args].concat(), "");
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(lines.is_empty());
    }
}

#[test]
fn help_documents_each_option() {
    let (code, lines, _) = run(&["--help"], "");
    assert_eq!(code, Some(0));
    let help = lines.join("\n");
    for needle in [
        "--per-host <N>",
        "429",
        "--ordered",
        "input order",
        "--shard <K/N>",
        "K mod N",
        "--no-progress",
        "terminal",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

/// A tmux server of our own (its own socket, no configuration), killed and its socket removed
/// when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// `None` (and a note) when tmux is not installed.
    fn start(name: &str) -> Option<Tmux> {
        let installed = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            eprintln!("note: tmux not found; the progress line is not checked in a terminal");
            return None;
        }
        // Short: a socket path has a length limit.
        let socket = format!("fetchall-tmux-{}-{name}", std::process::id());
        Some(Tmux {
            socket: std::env::temp_dir().join(socket),
        })
    }

    fn tmux(&self) -> Command {
        let mut cmd = clean(Command::new("tmux"));
        cmd.arg("-S").arg(&self.socket).args(["-f", "/dev/null"]);
        cmd
    }

    /// Runs `script` with sh in a new 100x20 window.
    fn run_script(&self, script: &Path) {
        let command = format!("sh {}", script.display());
        let status = self
            .tmux()
            .args(["new-session", "-d", "-x", "100", "-y", "20", &command])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "tmux new-session failed");
    }

    /// What the window shows now.
    fn screen(&self) -> String {
        let out = self.tmux().args(["capture-pane", "-p"]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Captures the window until `test` holds; the last capture either way.
    fn screen_until(&self, within: Duration, test: impl Fn(&str) -> bool) -> String {
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
        let _ = self.tmux().arg("kill-server").status();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A fetchall run in a tmux window, on a list of three fast URLs and two that wait for the
/// gate, stdout to a file. The exit status is written to a file when it ends, and the window
/// stays open until the tmux server is killed.
struct TerminalRun {
    tmux: Tmux,
    gate: GateServer,
    _fast: fetchall_serve::Server,
    out: Scratch,
    status: Scratch,
    _list: Scratch,
    _script: Scratch,
}

impl TerminalRun {
    fn start(name: &str, extra: &str) -> Option<TerminalRun> {
        let tmux = Tmux::start(name)?;
        let (gate, fast) = (GateServer::start(), server());
        let mut urls: Vec<String> = (0..3).map(|i| fast.url(&format!("/ok?{i}"))).collect();
        urls.extend([gate.url("/1"), gate.url("/2")]);
        let list = Scratch::new("list.txt");
        std::fs::write(&list.0, text(&urls)).unwrap();
        let (out, status, script) = (
            Scratch::new("out.txt"),
            Scratch::new("status"),
            Scratch::new("run.sh"),
        );
        std::fs::write(
            &script.0,
            format!(
                "'{bin}' '{list}' -w 4 --timeout 30 {extra} > '{out}'\n\
                 echo $? > '{status}.tmp' && mv '{status}.tmp' '{status}'\n\
                 exec cat > /dev/null\n",
                bin = bin(),
                list = list.path(),
                out = out.path(),
                status = status.path(),
            ),
        )
        .unwrap();
        tmux.run_script(&script.0);
        // Both slow requests are at the server: the fast ones went first, on other workers.
        let mut arrived = [gate.arrival(), gate.arrival()];
        arrived.sort();
        assert_eq!(arrived, ["/1", "/2"]);
        Some(TerminalRun {
            tmux,
            gate,
            _fast: fast,
            out,
            status,
            _list: list,
            _script: script,
        })
    }

    /// Lets the slow requests finish; returns fetchall's exit status and stdout.
    fn finish(self) -> (String, String, Tmux) {
        self.gate.release_one();
        self.gate.release_one();
        let deadline = Instant::now() + GENEROUS;
        while !self.status.0.exists() {
            assert!(Instant::now() < deadline, "fetchall did not end");
            thread::sleep(Duration::from_millis(20));
        }
        let status = std::fs::read_to_string(&self.status.0).unwrap();
        let stdout = std::fs::read_to_string(&self.out.0).unwrap();
        (status.trim().to_owned(), stdout, self.tmux)
    }
}

#[test]
fn the_progress_line_shows_in_a_terminal_and_is_wiped_before_the_summary() {
    let Some(run) = TerminalRun::start("progress", "") else {
        return;
    };
    let progress = "fetchall 3/5 (60%), 3 ok, 0 failed, ";
    let screen = run.tmux.screen_until(GENEROUS, |s| {
        s.contains(progress) && s.contains("2 in flight")
    });
    assert!(
        screen.contains(progress) && screen.contains("/s, 2 in flight"),
        "no progress line on the terminal:\n{screen}"
    );
    let (status, stdout, tmux) = run.finish();
    assert_eq!(status, "0");
    // The results went to stdout, whole and clean.
    assert_eq!(stdout.lines().count(), 5, "{stdout:?}");
    assert!(
        stdout
            .lines()
            .all(|l| l.ends_with("page is 2 bytes") || l.ends_with("page is 3 bytes"))
    );
    assert!(!stdout.contains('\r'));
    let screen = tmux.screen_until(GENEROUS, |s| s.contains("fetchall: 5 ok"));
    let rows: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rows.len(), 1, "only the summary is left:\n{screen}");
    assert!(
        rows[0].starts_with("fetchall: 5 ok, 0 failed in "),
        "{screen}"
    );
}

#[test]
fn no_progress_keeps_the_terminal_quiet() {
    let Some(run) = TerminalRun::start("quiet", "--no-progress") else {
        return;
    };
    // With the line on, it shows within an interval or two; give it many more.
    let screen = run
        .tmux
        .screen_until(Duration::from_millis(600), |s| !s.trim().is_empty());
    assert_eq!(screen.trim(), "", "the terminal shows something");
    let (status, stdout, tmux) = run.finish();
    assert_eq!(status, "0");
    assert_eq!(stdout.lines().count(), 5);
    let screen = tmux.screen_until(GENEROUS, |s| s.contains("fetchall: 5 ok"));
    assert!(
        screen.trim().starts_with("fetchall: 5 ok, 0 failed in "),
        "{screen}"
    );
}
