//! The `fetchall` binary end to end: real HTTP to a loopback server started here
//! ([`fetchall_serve::Server`], 127.0.0.1, port 0), output lines, exit statuses, Ctrl-C, a
//! closed stdout, memory. Output order is completion order, so lines are sorted before they are
//! compared. Every child runs under a time limit and is killed if it overstays.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use fetchall_serve::Server;
use fetchall_serve::testing::server;

/// Generous: the machine is shared and noisy. A child still running after this is killed and
/// the test fails.
const LIMIT: Duration = Duration::from_secs(60);

/// Proxy settings would send loopback requests elsewhere; none reach the children.
const CLEARED_ENV: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "RUST_LOG",
];

fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

fn fetchall() -> Command {
    command(env!("CARGO_BIN_EXE_fetchall"))
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    fn sorted_lines(&self) -> Vec<String> {
        sorted(self.stdout.lines())
    }
}

fn sorted<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut lines: Vec<String> = lines.map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Starts `cmd` with all three streams piped, and a thread writing `input` to its stdin (then
/// closing it). The child may exit before reading it all: a failed write is fine.
fn spawn(cmd: &mut Command, input: Vec<u8>) -> (Child, thread::JoinHandle<()>) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    (child, feeder)
}

/// Runs `cmd` with `stdin` as its input, within [`LIMIT`].
fn run(cmd: &mut Command, stdin: &[u8]) -> Run {
    let started = Instant::now();
    let (child, feeder) = spawn(cmd, stdin.to_vec());
    let output = wait_within(child, LIMIT);
    let _ = feeder.join();
    Run {
        status: output.status,
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// `wait_with_output`, failing the test (and killing the child) after `limit`.
fn wait_within(child: Child, limit: Duration) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("waiting on the child"),
        Err(_) => {
            let _ = command("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("fetchall still running after {limit:?}");
        }
    }
}

/// A fixture with `{base}` replaced by the server's address.
fn fixture(name: &str, server: &Server) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    text.replace("{base}", server.url("").trim_end_matches('/'))
}

/// The URLs of a fixture: its lines that are not blank or comments, trimmed.
fn urls_of(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// A file of our own under the target directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let name = format!(
            "cli-{}-{}.txt",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn quote(url: &str) -> String {
    format!("'{url}'")
}

#[test]
fn successes_print_the_python_line_and_exit_0() {
    let server = server();
    let input = fixture("good.txt", &server);
    let out = run(fetchall().args(["-", "-w", "4"]), input.as_bytes());
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let sizes = [3, 0, 1000, 123_457, 2000, 3, 3, 3];
    let lines: Vec<String> = urls_of(&input)
        .iter()
        .zip(sizes)
        .map(|(url, n)| format!("{} page is {n} bytes", quote(url)))
        .collect();
    let expected = sorted(lines.iter().map(String::as_str));
    assert_eq!(out.sorted_lines(), expected);
    assert!(
        out.stderr.starts_with("fetchall: 8 ok, 0 failed in "),
        "summary: {}",
        out.stderr
    );
}

/// The message each misbehaving route gets, keyed by the route.
fn failure_of<'a>(lines: &'a [String], route: &str) -> &'a str {
    let prefix = format!("{route}' generated an exception: ");
    let line = lines
        .iter()
        .find(|l| l.contains(&prefix))
        .unwrap_or_else(|| panic!("no failure line for {route} in {lines:#?}"));
    &line[line.find(&prefix).unwrap() + prefix.len()..]
}

#[test]
fn each_way_a_server_fails_is_one_exception_line_and_exit_1() {
    let server = server();
    let input = fixture("bad.txt", &server) + &fixture("slow.txt", &server);
    let out = run(
        fetchall().args(["-", "--timeout", "1", "-w", "16"]),
        input.as_bytes(),
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), urls_of(&input).len(), "{lines:#?}");
    assert_eq!(
        failure_of(&lines, "/status/404"),
        "HTTP Error 404: Not Found"
    );
    assert_eq!(
        failure_of(&lines, "/status/500"),
        "HTTP Error 500: Internal Server Error"
    );
    assert_eq!(
        failure_of(&lines, "/no-such-route"),
        "HTTP Error 404: Not Found"
    );
    assert!(failure_of(&lines, "/redirect-loop").starts_with("HTTP Error 302: Found"));
    assert!(failure_of(&lines, "/truncate").starts_with("IncompleteRead(10 bytes read"));
    assert!(failure_of(&lines, "/reset").contains("Connection reset"));
    assert!(!failure_of(&lines, "/malformed").is_empty());
    assert_eq!(
        failure_of(&lines, "/close"),
        "Remote end closed connection without response"
    );
    assert!(failure_of(&lines, "/hang").starts_with("timed out"));
    // A byte a second never finishes 1000 bytes: the deadline, not the server, ends it.
    assert!(failure_of(&lines, "/drip/1000").starts_with("timed out (body, "));
    // Both slow URLs ran at once and ended by their one-second deadline.
    assert!(out.took < Duration::from_secs(20), "took {:?}", out.took);
    assert!(
        out.stderr.starts_with("fetchall: 0 ok, 10 failed in "),
        "{}",
        out.stderr
    );
}

#[test]
fn input_lines_each_get_one_result() {
    let server = server();
    let mixed = fixture("mixed.txt", &server);
    let after = mixed.lines().count();
    let mut input = mixed.into_bytes();
    input.extend(format!("{}\n", server.url("/bytes/7")).as_bytes());
    input.extend(b"http://bad-\xff-utf8/\n");
    input.extend(b"http://long/");
    input.extend(std::iter::repeat_n(b'x', 100_000));
    input.extend(format!("\n# done\n{}", server.url("/bytes/8")).as_bytes());
    let out = run(fetchall().args(["-", "-q"]), &input);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert_eq!(out.stderr, "", "-q prints no summary");
    let ok = |path: &str, n: u64| format!("{} page is {n} bytes", quote(&server.url(path)));
    let long = format!("'http://long/{}...'", "x".repeat(188));
    let expected = sorted(
        [
            ok("/ok", 3),
            ok("/bytes/10", 10),
            ok("/bytes/10", 10),
            format!("{} generated an exception: HTTP Error 404: Not Found", quote(&server.url("/status/404"))),
            "'not a url' generated an exception: unknown url type: 'not a url'".to_owned(),
            "'ftp://files.invalid/readme.txt' generated an exception: unknown url type: 'ftp://files.invalid/readme.txt'".to_owned(),
            "'http://' generated an exception: unknown url type: 'http://'".to_owned(),
            r#""it's not a URL" generated an exception: unknown url type: "it's not a URL""#
                .to_owned(),
            r#"'both \' and " quotes' generated an exception: unknown url type: 'both \' and " quotes'"#
                .to_owned(),
            ok("/bytes/7", 7),
            format!(
                "'http://bad-\u{fffd}-utf8/' generated an exception: line {} is not valid UTF-8",
                after + 2
            ),
            format!(
                "{long} generated an exception: line {} is longer than 65536 bytes; skipped",
                after + 3
            ),
            ok("/bytes/8", 8),
        ]
        .iter()
        .map(String::as_str),
    );
    assert_eq!(out.sorted_lines(), expected);
}

#[test]
fn a_file_argument_is_read_like_stdin() {
    let server = server();
    let file = TempFile::new(fixture("good.txt", &server).as_bytes());
    let from_file = run(fetchall().arg(&file.0), b"");
    let from_stdin = run(fetchall().arg("-"), fixture("good.txt", &server).as_bytes());
    assert_eq!(from_file.code(), Some(0), "{}", from_file.stderr);
    assert_eq!(from_file.sorted_lines(), from_stdin.sorted_lines());
    assert_eq!(from_file.sorted_lines().len(), 8);
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let dir = env!("CARGO_TARGET_TMPDIR");
    let missing = Path::new(dir).join("no-such-list.txt");
    let cases: [(&[&str], &str); 7] = [
        (&[missing.to_str().unwrap()], "cannot open"),
        (&[dir], "is a directory"),
        (&["urls.txt", "--no-such-flag"], "--no-such-flag"),
        (
            &["urls.txt", "--max-workers", "0"],
            "max_workers must be greater than 0",
        ),
        (
            &["urls.txt", "--timeout", "0"],
            "positive number of seconds",
        ),
        (&["urls.txt", "--timeout", "soon"], "not a number"),
        (&[], "FILE"),
    ];
    let children: Vec<_> = cases
        .iter()
        .map(|(args, _)| {
            thread::spawn({
                let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
                move || run(fetchall().args(args), b"")
            })
        })
        .collect();
    for ((args, message), child) in cases.iter().zip(children) {
        let out = child.join().unwrap();
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
    }
}

#[test]
fn help_and_version_exit_0() {
    let help = run(fetchall().arg("--help"), b"");
    assert_eq!(help.code(), Some(0));
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("--max-workers"));
    let version = run(fetchall().arg("--version"), b"");
    assert_eq!(version.code(), Some(0));
    assert_eq!(
        version.stdout.trim(),
        format!("fetchall {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn every_backend_prints_the_same_lines() {
    let server = server();
    let input = fixture("good.txt", &server) + &fixture("bad.txt", &server);
    let mut backends = vec!["pool", "sequential"];
    if cfg!(feature = "rayon") {
        backends.push("rayon");
    }
    let runs: Vec<_> = backends
        .iter()
        .map(|backend| {
            let (backend, input) = (backend.to_string(), input.clone());
            thread::spawn(move || {
                run(
                    fetchall().args(["-", "-q", "--backend", &backend]),
                    input.as_bytes(),
                )
            })
        })
        .collect();
    let outputs: Vec<Run> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    for (backend, out) in backends.iter().zip(&outputs) {
        assert_eq!(out.code(), Some(1), "{backend}: {}", out.stderr);
        assert_eq!(out.sorted_lines().len(), 16, "{backend}");
        assert_eq!(
            out.sorted_lines(),
            outputs[0].sorted_lines(),
            "{backend} differs from pool"
        );
    }
}

#[cfg(not(feature = "rayon"))]
#[test]
fn the_rayon_backend_needs_its_feature() {
    let out = run(fetchall().args(["urls.txt", "--backend", "rayon"]), b"");
    assert_eq!(out.code(), Some(2));
    assert!(out.stderr.contains("rayon feature"), "{}", out.stderr);
}

#[test]
fn json_lines_parse_and_carry_the_timeline() {
    let server = server();
    let input = format!(
        "{}\n{}\n",
        server.url("/bytes/5"),
        server.url("/status/500")
    );
    let out = run(
        fetchall().args(["-", "--format", "json", "-w", "2"]),
        input.as_bytes(),
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let values: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(values.len(), 2);
    let ok = values.iter().find(|v| v["ok"] == true).expect("a success");
    assert_eq!(ok["url"], server.url("/bytes/5"));
    assert_eq!(ok["bytes"], 5);
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["error"], serde_json::Value::Null);
    let failed = values.iter().find(|v| v["ok"] == false).expect("a failure");
    assert_eq!(failed["status"], 500);
    assert_eq!(failed["error"], "HTTP Error 500: Internal Server Error");
    for v in &values {
        assert!(
            v["worker"].as_str().unwrap().starts_with("fetchall_"),
            "{v}"
        );
        let queued = v["queued_ms"].as_f64().unwrap();
        let started = v["started_ms"].as_f64().unwrap();
        assert!(queued <= started, "{v}");
        assert!(v["elapsed_ms"].as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn a_closed_stdout_ends_the_run_quietly_with_141() {
    let server = server();
    let input: String = (0..5000)
        .map(|i| format!("{}\n", server.url(&format!("/ok?{i}"))))
        .collect();
    let (mut child, feeder) = spawn(fetchall().arg("-"), input.into_bytes());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.ends_with(" page is 3 bytes\n"), "{first}");
    drop(stdout); // `| head -1`
    let output = wait_within(child, LIMIT);
    let _ = feeder.join();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 128 + SIGPIPE, as `seq` reports it under `set -o pipefail`: not every result was written.
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("broken pipe"), "{stderr}");
}

/// Starts `fetchall - -v` with `args` on `input`; returns the child and a channel of its
/// stderr lines, which show its progress.
fn spawn_verbose(args: &[&str], input: String) -> (Child, Receiver<String>) {
    let (mut child, _feeder) = spawn(fetchall().args(args).args(["-", "-v"]), input.into_bytes());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in stderr.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for `count` stderr lines that contain `marker`; returns every line seen.
fn await_lines(stderr: &Receiver<String>, marker: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    let mut found = 0;
    while found < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stderr
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("waiting for {count} x {marker:?}; saw {seen:#?}"));
        found += usize::from(line.contains(marker));
        seen.push(line);
    }
    seen
}

fn interrupt(child: &Child) {
    let status = command("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "kill -INT failed");
}

fn read_stdout(child: &mut Child) -> String {
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    stdout
}

#[test]
fn ctrl_c_reports_every_submitted_url_and_exits_130() {
    let server = server();
    let urls: Vec<String> = (0..40).map(|i| server.url(&format!("/hang?{i}"))).collect();
    let input: String = urls.iter().map(|u| format!("{u}\n")).collect();
    let (mut child, stderr) = spawn_verbose(&["-w", "3", "--timeout", "30"], input);
    // Every worker is inside a fetch that will not end by itself.
    await_lines(&stderr, "started", 3);
    let sent = Instant::now();
    interrupt(&child);
    let stdout_reader = {
        let mut stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        })
    };
    let output = wait_within(child, LIMIT);
    let stdout = stdout_reader.join().unwrap();
    assert_eq!(output.status.code(), Some(130));
    // It did not wait for the hung fetches' 30-second deadline.
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "took {:?}",
        sent.elapsed()
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let interrupted = lines
        .iter()
        .filter(|l| l.ends_with("exception: interrupted"))
        .count();
    let cancelled = lines
        .iter()
        .filter(|l| l.ends_with("exception: cancelled"))
        .count();
    assert_eq!(interrupted, 3, "{stdout}");
    assert_eq!(interrupted + cancelled, lines.len(), "{stdout}");
    // One line per submitted URL, none twice, and not the whole input: reading stopped.
    let distinct: HashSet<&str> = lines
        .iter()
        .map(|l| l.split('\'').nth(1).unwrap())
        .collect();
    assert_eq!(distinct.len(), lines.len());
    assert!(lines.len() < urls.len(), "{stdout}");
    let summary: Vec<String> = stderr
        .try_iter()
        .filter(|l| l.starts_with("fetchall: "))
        .collect();
    assert_eq!(
        summary
            .first()
            .map(|s| s.split(" in ").next().unwrap().to_owned()),
        Some(format!(
            "fetchall: interrupted: 0 ok, {interrupted} failed, {cancelled} not run"
        )),
        "{summary:?}"
    );
}

#[test]
fn a_second_ctrl_c_quits_at_once() {
    let server = server();
    // The sequential backend fetches on the main thread, so the first Ctrl-C cannot end it
    // before the fetch does; the second must.
    let input = format!("{}\n", server.url("/hang"));
    let (mut child, stderr) = spawn_verbose(&["--backend", "sequential", "--timeout", "30"], input);
    await_lines(&stderr, "started", 1);
    interrupt(&child);
    await_lines(&stderr, "press Ctrl-C again", 1);
    let sent = Instant::now();
    interrupt(&child);
    let status = wait_within_status(&mut child);
    assert_eq!(status.code(), Some(130));
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "took {:?}",
        sent.elapsed()
    );
    let _ = read_stdout(&mut child);
}

fn wait_within_status(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fetchall still running after {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `fetchall ARGS` under GNU time's `-v` when /usr/bin/time exists, and returns the run
/// and its peak resident memory in KiB (`None` without /usr/bin/time).
fn measured(args: &[&str], stdin: &[u8]) -> (Run, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return (run(fetchall().args(args), stdin), None);
    }
    let out = run(
        command(time)
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_fetchall"))
            .args(args),
        stdin,
    );
    let kib = out
        .stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok());
    (out, kib)
}

#[test]
fn a_100_mb_body_is_counted_in_little_memory() {
    let server = server();
    let url = server.url("/bytes/100000000");
    let (out, kib) = measured(&["-", "-q"], format!("{url}\n").as_bytes());
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("{} page is 100000000 bytes\n", quote(&url))
    );
    match kib {
        Some(kib) => assert!(kib < 64 * 1024, "peak RSS {kib} KiB for a 100 MB body"),
        None => eprintln!("note: /usr/bin/time not found; peak memory not checked"),
    }
}

#[test]
fn memory_does_not_grow_with_the_input() {
    // Lines that are not URLs, so nothing touches the network: short ones (each a task and a
    // result line) and 100 KiB ones (each rejected as too long). The large input is 40 MiB,
    // 40 times the small one, and must cost about the same memory: it is streamed, and
    // finished lines are not kept. (That tasks in flight are bounded is the run loop's unit
    // test: here every task ends at once.)
    let input = |long: usize, short: usize| -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..long.max(short) {
            if i < long {
                text.extend(b"not-a-url-");
                text.extend(std::iter::repeat_n(b'x', 100 * 1024));
                text.push(b'\n');
            }
            if i < short {
                text.extend(format!("not-a-url-{i}\n").as_bytes());
            }
        }
        text
    };
    let (Some(small), Some(large)) = (
        measured(&["-", "-q"], &input(10, 200)).1,
        measured(&["-", "-q"], &input(400, 10_000)).1,
    ) else {
        eprintln!("note: /usr/bin/time not found; memory growth not checked");
        return;
    };
    assert!(
        large < small + 16 * 1024,
        "{small} KiB for 1 MiB of input, {large} KiB for 40 MiB"
    );
}

#[test]
fn the_demo_runs_without_internet() {
    let out = run(fetchall().args(["--demo"]), b"");
    assert_eq!(
        out.code(),
        Some(1),
        "two demo URLs fail on purpose: {}",
        out.stderr
    );
    let lines = out.sorted_lines();
    assert_eq!(lines.len(), 9, "{}", out.stdout);
    let failures: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("generated an exception"))
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures
            .iter()
            .any(|l| l.ends_with("HTTP Error 404: Not Found"))
    );
    assert!(failures.iter().any(|l| l.contains("Connection refused")));
    assert!(out.stderr.contains("in this order"), "{}", out.stderr);
    assert!(out.stderr.contains("7 ok, 2 failed"), "{}", out.stderr);
}

#[test]
fn success_lines_match_the_python_example() {
    let python_ok = command("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !python_ok {
        eprintln!("note: python3 not found; the parity test is skipped");
        return;
    }
    let server = server();
    let list = TempFile::new(fixture("good.txt", &server).as_bytes());
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("fixtures/python_example.py");
    let python = {
        let mut cmd = command("python3");
        cmd.arg(script).arg(&list.0);
        thread::spawn(move || run(&mut cmd, b""))
    };
    let ours = run(
        fetchall()
            .args(["--max-workers", "5", "--timeout", "60"])
            .arg(&list.0),
        b"",
    );
    let python = python.join().unwrap();
    assert!(python.status.success(), "python: {}", python.stderr);
    assert_eq!(ours.code(), Some(0), "{}", ours.stderr);
    assert_eq!(python.sorted_lines().len(), 8);
    assert_eq!(ours.sorted_lines(), python.sorted_lines());
}
