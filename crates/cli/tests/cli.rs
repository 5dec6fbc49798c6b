//! The `fetchall` binary end to end: real HTTP to a loopback server started here
//! ([`fetchall_serve::Server`], 127.0.0.1, port 0), output lines, exit statuses, Ctrl-C, a
//! closed stdout, memory. Output order is completion order, so lines are sorted before they are
//! compared. Every child runs under a time limit and is killed if it overstays.

use std::collections::HashSet;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use fetchall_serve::Server;
use fetchall_serve::testing::{require, server};

use crate::support::TempFile;
use crate::support::bin::{FETCHALL, Output, TestCommand, fetchall};

fn sorted<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut lines: Vec<String> = lines.map(str::to_owned).collect();
    lines.sort();
    lines
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

fn quote(url: &str) -> String {
    format!("'{url}'")
}

#[test]
fn successes_print_the_python_line_and_exit_0() {
    let server = server();
    let input = fixture("good.txt", &server);
    let out = fetchall().args(["-", "-w", "4"]).stdin(input.clone()).run();
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
    let out = fetchall()
        .args(["-", "--timeout", "1", "-w", "16"])
        .stdin(input.clone())
        .run();
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
    let out = fetchall().args(["-", "-q"]).stdin(input).run();
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
    let file = TempFile::holding(fixture("good.txt", &server));
    let from_file = fetchall().arg(file.path()).run();
    let from_stdin = fetchall()
        .arg("-")
        .stdin(fixture("good.txt", &server))
        .run();
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
            "the duration must be greater than 0",
        ),
        (&["urls.txt", "--timeout", "soon"], "is not a duration"),
        (&[], "<INPUT>"),
    ];
    let children: Vec<_> = cases
        .iter()
        .map(|(args, _)| {
            thread::spawn({
                let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
                move || fetchall().args(args).run()
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
    let help = fetchall().arg("--help").run();
    assert_eq!(help.code(), Some(0));
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("--max-workers"));
    let short = fetchall().arg("-V").run();
    assert_eq!(short.code(), Some(0));
    assert_eq!(
        short.stdout.trim(),
        format!("fetchall {}", env!("CARGO_PKG_VERSION"))
    );
    // --version also lists the optional features built in.
    let long = fetchall().arg("--version").run();
    assert_eq!(long.code(), Some(0));
    let rayon = if cfg!(feature = "rayon") { "yes" } else { "no" };
    assert!(
        long.stdout.starts_with(&format!(
            "fetchall {}\nfeatures: rayon (--backend rayon): {rayon}",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        long.stdout
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
                fetchall()
                    .args(["-", "-q", "--backend", &backend])
                    .stdin(input)
                    .run()
            })
        })
        .collect();
    let outputs: Vec<Output> = runs.into_iter().map(|t| t.join().unwrap()).collect();
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
    let out = fetchall().args(["urls.txt", "--backend", "rayon"]).run();
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
    let out = fetchall()
        .args(["-", "--format", "json", "-w", "2"])
        .stdin(input)
        .run();
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
    let mut child = fetchall().arg("-").stdin(input).spawn();
    let first = child.line();
    assert!(first.ends_with(" page is 3 bytes"), "{first}");
    child.close_stdout(); // `| head -1`
    let output = child.finish();
    let stderr = output.stderr;
    // 128 + SIGPIPE, as `seq` reports it under `set -o pipefail`: not every result was written.
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("broken pipe"), "{stderr}");
}

#[test]
fn ctrl_c_reports_every_submitted_url_and_exits_130() {
    let server = server();
    let urls: Vec<String> = (0..400)
        .map(|i| server.url(&format!("/hang?{i}")))
        .collect();
    let input: String = urls.iter().map(|u| format!("{u}\n")).collect();
    let child = fetchall()
        .args(["-w", "3", "--timeout", "30", "-", "-v"])
        .stdin(input)
        .spawn();
    // Every worker is inside a fetch that will not end by itself.
    child.stderr_until("started", 3);
    let sent = Instant::now();
    child.interrupt();
    let output = child.finish();
    let stdout = &output.stdout;
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
    let summary: Vec<&str> = output
        .stderr
        .lines()
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
    let child = fetchall()
        .args(["--backend", "sequential", "--timeout", "30", "-", "-v"])
        .stdin(input)
        .spawn();
    child.stderr_until("started", 1);
    child.interrupt();
    child.stderr_until("press Ctrl-C again", 1);
    let sent = Instant::now();
    child.interrupt();
    let output = child.finish();
    assert_eq!(output.status.code(), Some(130));
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "took {:?}",
        sent.elapsed()
    );
}

/// Runs `fetchall ARGS` under GNU time's `-v`, and returns the run and its peak resident
/// memory in KiB.
///
/// # Panics
///
/// When /usr/bin/time is not installed, or does not report the peak.
pub(crate) fn measured(args: &[&str], stdin: &[u8]) -> (Output, u64) {
    require("/usr/bin/time", "--version");
    let out = TestCommand::program("/usr/bin/time")
        .arg("-v")
        .arg(FETCHALL)
        .args(args)
        .stdin(stdin)
        .run();
    let kib = out
        .stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory from GNU time: {}", out.stderr));
    (out, kib)
}

#[test]
#[ignore = "needs GNU time (/usr/bin/time)"]
fn a_100_mb_body_is_counted_in_little_memory() {
    let server = server();
    let url = server.url("/bytes/100000000");
    let (out, kib) = measured(&["-", "-q"], format!("{url}\n").as_bytes());
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("{} page is 100000000 bytes\n", quote(&url))
    );
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB for a 100 MB body");
}

#[test]
#[ignore = "needs GNU time (/usr/bin/time)"]
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
    let small = measured(&["-", "-q"], &input(10, 200)).1;
    let large = measured(&["-", "-q"], &input(400, 10_000)).1;
    assert!(
        large < small + 16 * 1024,
        "{small} KiB for 1 MiB of input, {large} KiB for 40 MiB"
    );
}

#[test]
fn the_demo_runs_without_internet() {
    let out = fetchall().args(["--demo"]).run();
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
#[ignore = "needs python3"]
fn success_lines_match_the_python_example() {
    require("python3", "--version");
    let server = server();
    let list = TempFile::holding(fixture("good.txt", &server));
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("fixtures/python_example.py");
    let python = {
        let mut cmd = TestCommand::program("python3");
        cmd.arg(script).arg(list.path());
        thread::spawn(move || cmd.run())
    };
    let ours = fetchall()
        .args(["--max-workers", "5", "--timeout", "60"])
        .arg(list.path())
        .run();
    let python = python.join().unwrap();
    assert!(python.status.success(), "python: {}", python.stderr);
    assert_eq!(ours.code(), Some(0), "{}", ours.stderr);
    assert_eq!(python.sorted_lines().len(), 8);
    assert_eq!(ours.sorted_lines(), python.sorted_lines());
}
