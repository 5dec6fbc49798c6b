//! The smoke-testing options of the `fetchall` binary, end to end over real HTTP on 127.0.0.1:
//! `--per-host` (no starvation, 429 back-off), `--ordered`, `--shard`, a `--max-workers` far
//! above the list's length (a thread per URL, not per worker), and the progress line,
//! checked in a real terminal (tmux; those tests are `#[ignore = "needs tmux"]`).
//!
//! Where a test needs to know what the server is doing, it uses [`GateServer`], which answers
//! each request only when the test says so and reports each request as it arrives: the order of
//! events is forced by the test, never guessed from sleeps.

use std::collections::{BTreeSet, HashSet};
use std::thread;
use std::time::Duration;

use fetchall_serve::testing::{GENEROUS, arrives_soon, server};

use crate::support::bin::fetchall;
use crate::support::gate::GateServer;
use crate::support::hang::Hanging;
use crate::support::tmux::TerminalRun;
use crate::support::{TempFile, text, url_of};

/// Runs `fetchall ARGS` on `input` to its end: the exit code, the stdout lines and stderr.
fn run(args: &[&str], input: &str) -> (Option<i32>, Vec<String>, String) {
    let out = fetchall().args(args).stdin(input).run();
    (out.code(), out.lines(), out.stderr)
}

#[test]
fn per_host_serialises_a_host_while_the_other_hosts_go_ahead() {
    let (slow, fast) = (GateServer::start(), server());
    let mut urls = vec![slow.url("/1"), slow.url("/2")];
    urls.extend((0..6).map(|i| fast.url(&format!("/ok?{i}"))));
    let args = ["-", "-w", "2", "--per-host", "1", "--timeout", "30"];
    let run = fetchall().args(args).stdin(text(&urls)).spawn();
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
        !arrives_soon(slow.arrivals()),
        "a second request to the slow host"
    );
    slow.release_one();
    assert_eq!(slow.arrival(), "/2");
    slow.release_one();
    let out = run.finish();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let rest: Vec<String> = out.lines();
    let rest: Vec<&str> = rest.iter().map(|l| url_of(l)).collect();
    assert_eq!(rest, [urls[0].as_str(), urls[1].as_str()]);
    assert_eq!(slow.peak(), 1);
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
    let run = fetchall().args(args).stdin(text(&urls)).spawn();
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
    let out = run.finish();
    let (code, rest, stderr) = (out.code(), out.lines(), out.stderr);
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
    let list = TempFile::holding(file);
    let runs: Vec<_> = ["0/3", "1/3", "2/3", "0/1"]
        .into_iter()
        .map(|shard| {
            let path = list.path_str().to_owned();
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

/// Threads besides the workers that a run may have: main, the input reader, the line counter,
/// and the signal and resize watchers.
const OTHER_THREADS: usize = 5;

#[test]
fn a_huge_max_workers_starts_a_thread_per_url_not_per_worker() {
    let gate = GateServer::start();
    let urls: Vec<String> = (0..5).map(|i| gate.url(&format!("/{i}"))).collect();
    let run = fetchall()
        .args(["-", "--max-workers", "100000", "--timeout", "60"])
        .stdin(text(&urls))
        .spawn();
    // All five requests are held at the server: five workers are busy, and no URL is left that
    // would need another.
    let mut arrived: Vec<String> = (0..5).map(|_| gate.arrival()).collect();
    arrived.sort();
    assert_eq!(arrived, ["/0", "/1", "/2", "/3", "/4"]);
    let (threads, names) = run.threads();
    let workers = names.iter().filter(|n| n.starts_with("fetchall_")).count();
    assert_eq!(workers, 5, "{names:?}");
    assert!(threads <= 5 + OTHER_THREADS, "{threads} threads: {names:?}");
    for _ in 0..5 {
        gate.release_one();
    }
    let out = run.finish();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines().len(), 5);
}

#[test]
fn a_run_whose_servers_never_answer_sleeps_until_they_do() {
    let mut hang = Hanging::start(3);
    let urls = hang.urls(3);
    let args = ["-", "-w", "3", "--timeout", "600", "--no-progress"];
    let run = fetchall().args(args).stdin(text(&urls)).spawn();
    hang.wait_for(3);
    // Every fetch is at the server and nothing will happen until it answers. A loop that
    // woke on a timer (every 2 ms, as one did) would show hundreds of wake-ups in this second;
    // one that waits for events shows none but the last few of its start.
    let before = run.wakeups();
    thread::sleep(Duration::from_secs(1));
    // Saturating: a thread that exits meanwhile takes its counts out of the sum.
    let woken = run.wakeups().saturating_sub(before);
    assert!(woken <= 5, "{woken} wake-ups in a second of waiting");
    run.interrupt();
    let out = run.finish();
    assert_eq!(out.code(), Some(130), "{}", out.stderr);
    assert_eq!(out.lines().len(), 3);
}

#[test]
fn the_largest_max_workers_runs_a_list_to_its_end() {
    let server = server();
    let urls = [server.url("/ok"), server.url("/bytes/10")];
    let (code, mut lines, stderr) = run(&["-", "-w", &usize::MAX.to_string()], &text(&urls));
    lines.sort();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        lines,
        [
            format!("'{}' page is 10 bytes", urls[1]),
            format!("'{}' page is 3 bytes", urls[0]),
        ]
    );
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
        "no upper limit",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[test]
#[ignore = "needs tmux"]
fn the_progress_line_shows_in_a_terminal_and_is_wiped_before_the_summary() {
    let run = TerminalRun::start("progress", "");
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
#[ignore = "needs tmux"]
fn no_progress_keeps_the_terminal_quiet() {
    let run = TerminalRun::start("quiet", "--no-progress");
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
