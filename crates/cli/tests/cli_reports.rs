//! Issue 11's options of the `fetchall` binary, end to end over real HTTP on 127.0.0.1: URLs
//! and several inputs on the command line, the report formats and files (`--format`, `-o`,
//! `--report`, `--summary-json`), `--baseline` with `--fail-on`, the request-rate limits and
//! 429/`Retry-After` pauses, durations, empty input, `--generate` and `--version`.

use std::fs;
use std::time::Duration;

use fetchall_serve::testing::{refused_addr, server};

use crate::support::bin::fetchall;
use crate::support::{TempFile, text};

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn urls_files_and_stdin_mix_on_the_command_line_in_order() {
    let server = server();
    let list = TempFile::holding(text(&[server.url("/bytes/2"), server.url("/bytes/3")]));
    let args = [
        server.url("/bytes/1"),
        list.path_str().to_owned(),
        "-".to_owned(),
        server.url("/bytes/5"),
    ];
    let out = fetchall()
        .args(&args)
        .args(["--ordered", "-w", "3"])
        .stdin(server.url("/bytes/4") + "\n")
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let expected: Vec<String> = (1..=5)
        .map(|n| format!("'{}' page is {n} bytes", server.url(&format!("/bytes/{n}"))))
        .collect();
    assert_eq!(out.lines(), expected);
    // One URL alone works as curl's does.
    let one = fetchall().arg(server.url("/ok")).run();
    assert_eq!(one.code(), Some(0), "{}", one.stderr);
    assert_eq!(
        one.lines(),
        [format!("'{}' page is 3 bytes", server.url("/ok"))]
    );
}

#[test]
fn a_missing_file_named_like_a_host_gets_a_hint() {
    let out = fetchall().arg("fetchall-test.example").run();
    assert_eq!(out.code(), Some(2));
    assert!(
        out.stderr
            .starts_with("fetchall: cannot open fetchall-test.example: ")
            && out
                .stderr
                .trim_end()
                .ends_with("to fetch a URL, give its scheme: https://fetchall-test.example"),
        "{}",
        out.stderr
    );
    let plain = fetchall().arg("no-such-list.txt").run();
    assert_eq!(plain.code(), Some(2));
    assert!(!plain.stderr.contains("scheme"), "{}", plain.stderr);
    let help = fetchall().arg("--help").run();
    assert!(
        help.stdout
            .contains("each INPUT is a URL if it contains '://', standard input if it is '-'"),
        "{}",
        help.stdout
    );
}

#[test]
fn an_empty_input_is_reported_and_fails_only_if_asked() {
    let out = fetchall().arg("-").stdin("# nothing here\n\n").run();
    assert_eq!(out.code(), Some(0));
    assert!(
        out.stderr.contains("fetchall: no URLs in the input"),
        "{}",
        out.stderr
    );
    let strict = fetchall().args(["-", "--fail-if-empty"]).stdin("").run();
    assert_eq!(strict.code(), Some(1));
    assert!(strict.stderr.contains("fetchall: no URLs in the input"));
}

/// Two URLs that pass and one that fails, on `server`.
fn mixed(server: &fetchall_serve::Server) -> Vec<String> {
    vec![
        server.url("/bytes/10"),
        server.url("/ok"),
        server.url("/status/404"),
    ]
}

#[test]
fn jsonl_is_the_name_and_json_its_alias() {
    let server = server();
    let urls = mixed(&server);
    let jsonl = fetchall()
        .args(["-", "--format", "jsonl", "--ordered"])
        .stdin(text(&urls))
        .run();
    let json = fetchall()
        .args(["-", "--format", "json", "--ordered"])
        .stdin(text(&urls))
        .run();
    assert_eq!(jsonl.code(), Some(1));
    let (a, b) = (json_lines(&jsonl.stdout), json_lines(&json.stdout));
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (&x["url"], &x["ok"], &x["status"]),
            (&y["url"], &y["ok"], &y["status"])
        );
    }
    assert!(a.iter().all(|v| v.get("baseline").is_none()));
}

#[test]
fn csv_has_a_header_and_a_row_per_url() {
    let server = server();
    let out = fetchall()
        .args(["-", "--format", "csv", "--ordered"])
        .stdin(text(&mixed(&server)))
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let lines = out.lines();
    assert_eq!(
        lines[0],
        "url,ok,status,bytes,elapsed_ms,attempts,error,error_kind"
    );
    assert!(lines[1].starts_with(&format!("{},true,200,10,", server.url("/bytes/10"))));
    assert!(
        lines[3].starts_with(&format!("{},false,404,,", server.url("/status/404")))
            && lines[3].ends_with(",1,HTTP Error 404: Not Found,status"),
        "{}",
        lines[3]
    );
    assert_eq!(lines.len(), 4);
}

#[test]
fn junit_and_markdown_on_stdout_are_whole_documents() {
    let server = server();
    let junit = fetchall()
        .args(["-", "--format", "junit"])
        .stdin(text(&mixed(&server)))
        .run();
    assert_eq!(junit.code(), Some(1), "{}", junit.stderr);
    let xml = &junit.stdout;
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 3);
    assert!(xml.contains(
        "<failure message=\"HTTP Error 404: Not Found\" type=\"status\">HTTP Error 404: Not Found</failure>"
    ));
    assert!(xml.trim_end().ends_with("</testsuites>"));
    let md = fetchall()
        .args(["-", "--format", "markdown"])
        .stdin(text(&mixed(&server)))
        .run();
    assert_eq!(md.code(), Some(1));
    assert!(
        md.stdout.starts_with("### ❌ fetchall: 2 ok, 1 failed\n"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout.contains("| HTTP Error 404: Not Found |"),
        "{}",
        md.stdout
    );
}

#[test]
fn a_report_in_stdout_s_format_gets_the_same_lines() {
    let server = server();
    for format in ["jsonl", "csv", "text"] {
        let file = TempFile::named(&format!("same.{format}"));
        let run = fetchall()
            .args(["-", "--format", format, "--ordered"])
            .args(["--report", &format!("{format}:{}", file.path_str())])
            .stdin(text(&mixed(&server)))
            .run();
        assert_eq!(run.code(), Some(1), "{format}: {}", run.stderr);
        let written = fs::read_to_string(file.path()).expect("the report");
        assert_eq!(written, run.stdout, "{format}");
        assert!(written.lines().count() >= 3, "{format}: {written}");
    }
}

#[test]
fn stdout_keeps_its_text_while_files_get_the_reports() {
    let server = server();
    let urls = mixed(&server);
    let (xml, csv, summary) = (
        TempFile::named("r.xml"),
        TempFile::named("r.csv"),
        TempFile::named("summary.json"),
    );
    let plain = fetchall().arg("-").stdin(text(&urls)).run();
    let out = fetchall()
        .arg("-")
        .args(["--report", &format!("junit:{}", xml.path_str())])
        .args(["--report", &format!("csv:{}", csv.path_str())])
        .args(["--summary-json", summary.path_str()])
        .stdin(text(&urls))
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    // Byte for byte the Python example's lines, whatever the reports.
    assert_eq!(out.sorted_lines(), plain.sorted_lines());
    let xml = fs::read_to_string(xml.path()).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 3);
    assert_eq!(fs::read_to_string(csv.path()).unwrap().lines().count(), 4);
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(summary.path()).unwrap()).unwrap();
    assert_eq!(summary["total"], 3);
    assert_eq!(summary["ok"], 2);
    assert_eq!(summary["failed"], 1);
    assert!(summary["wall_ms"].as_f64().unwrap() > 0.0);
    assert!(summary["fetch_ms"]["p99"].as_f64().is_some(), "{summary}");
}

#[test]
fn output_sends_the_format_to_a_file_and_nothing_to_stdout() {
    let server = server();
    let xml = TempFile::named("results.xml");
    let out = fetchall()
        .args(["-", "--format", "junit", "-o", xml.path_str()])
        .stdin(text(&mixed(&server)))
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    let xml = fs::read_to_string(xml.path()).unwrap();
    assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
    let bad = fetchall()
        .args(["-", "--report", "junit:/no/such/dir/r.xml"])
        .stdin(text(&mixed(&server)))
        .run();
    assert_eq!(bad.code(), Some(2));
    assert!(
        bad.stderr.contains("cannot write /no/such/dir/r.xml"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_killed_run_leaves_no_half_written_junit() {
    let server = server();
    let xml = TempFile::named("killed.xml");
    let urls = [server.url("/ok"), server.url("/hang")];
    let run = fetchall()
        .args([
            "-",
            "-t",
            "60",
            "--report",
            &format!("junit:{}", xml.path_str()),
        ])
        .stdin(text(&urls))
        .spawn();
    // The first result is out, so the report is under way; then the run is killed.
    assert!(run.line().ends_with("page is 3 bytes"));
    run.signal("KILL");
    let out = run.finish();
    assert_eq!(out.code(), None, "killed");
    assert!(
        !xml.path().exists(),
        "a JUnit file appeared before the run ended"
    );
}

#[test]
fn an_interrupted_run_still_completes_its_junit_report() {
    let server = server();
    let xml = TempFile::named("interrupted.xml");
    let mut urls = vec![server.url("/ok"), server.url("/hang")];
    urls.extend((1..=4).map(|i| server.url(&format!("/ok?{i}"))));
    let run = fetchall()
        .args(["-", "-w", "1", "--ordered", "--report"])
        .arg(format!("junit:{}", xml.path_str()))
        .stdin(text(&urls))
        .spawn();
    // The one worker is inside /hang; the URLs after it wait.
    assert!(run.line().ends_with("page is 3 bytes"));
    run.interrupt();
    let out = run.finish();
    assert_eq!(out.code(), Some(130), "{}", out.stderr);
    let xml = fs::read_to_string(xml.path()).expect("the report is written at the end");
    // Every URL taken is a test case: the one fetched, the one interrupted, and the ones
    // cancelled (as many as the run had taken: the in-flight limit), which are skipped.
    let cases = xml.matches("<testcase ").count();
    let skipped = xml.matches("<skipped message=\"cancelled\"/>").count();
    assert!(cases >= 3 && skipped == cases - 2, "{xml}");
    let counts = format!("tests=\"{cases}\" failures=\"1\" errors=\"0\" skipped=\"{skipped}\"");
    assert!(xml.contains(&counts), "{xml}");
    assert!(xml.contains("<failure message=\"interrupted\""), "{xml}");
}

/// One line of an earlier run's `--format jsonl`.
fn earlier(url: &str, ok: bool, status: Option<u16>, bytes: Option<u64>, ms: f64) -> String {
    serde_json::json!({
        "url": url, "ok": ok, "status": status, "bytes": bytes, "elapsed_ms": ms,
        "error": if ok { None } else { Some("x") }, "attempts": 1,
    })
    .to_string()
        + "\n"
}

#[test]
fn the_baseline_shows_what_changed_and_fail_on_new_ignores_known_failures() {
    let server = server();
    let refused = format!("http://{}/", refused_addr());
    let url = |path: &str| server.url(path);
    let baseline = TempFile::holding(
        [
            earlier(&url("/status/500"), true, Some(200), Some(3), 1.0),
            earlier(&url("/ok"), false, Some(404), None, 1.0),
            earlier(&url("/bytes/100"), true, Some(200), Some(10), 1.0),
            earlier(&url("/sleep/300"), true, Some(200), Some(3), 1.0),
            earlier(&refused, false, None, None, 1.0),
            earlier("http://gone.invalid/", true, Some(200), Some(1), 1.0),
        ]
        .concat(),
    );
    let now = [
        url("/status/500"),
        url("/ok"),
        url("/bytes/100"),
        url("/sleep/300"),
        refused.clone(),
        url("/bytes/5"),
    ];
    let out = fetchall()
        .args([
            "-",
            "--ordered",
            "--format",
            "jsonl",
            "--baseline",
            baseline.path_str(),
        ])
        .stdin(text(&now))
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let changes: Vec<String> = json_lines(&out.stdout)
        .iter()
        .map(|v| {
            let names: Vec<&str> = v["baseline"]["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            names.join(",")
        })
        .collect();
    assert_eq!(
        changes,
        [
            "new_failure,status",
            "recovered,status",
            "size",
            "slower",
            "",
            "added"
        ]
    );
    let headline = format!(
        "fetchall: since {}: 1 newly failing, 1 recovered, 2 status changed, 1 size changed, \
         1 slower, 1 added, 1 removed (1 unchanged)",
        baseline.path_str()
    );
    assert!(out.stderr.contains(&headline), "{}", out.stderr);
    assert!(
        out.stderr.contains("  removed: 'http://gone.invalid/'"),
        "{}",
        out.stderr
    );
    // Only the refused URL fails now besides the new failure; it failed before too.
    let known_bad = [refused.clone(), url("/ok")];
    let gate = |fail_on: &str| {
        fetchall()
            .args(["-", "--baseline", baseline.path_str(), "--fail-on", fail_on])
            .stdin(text(&known_bad))
            .run()
            .code()
    };
    assert_eq!(gate("any"), Some(1));
    assert_eq!(gate("new"), Some(0));
    let regression = fetchall()
        .args(["-", "--baseline", baseline.path_str(), "--fail-on", "new"])
        .stdin(text(&[url("/status/500")]))
        .run();
    assert_eq!(regression.code(), Some(1));
}

#[test]
fn baseline_changes_reach_the_csv_junit_and_markdown_reports() {
    let server = server();
    let baseline = TempFile::holding(earlier(&server.url("/ok"), true, Some(200), Some(3), 1.0));
    let (csv, xml, md) = (
        TempFile::named("b.csv"),
        TempFile::named("b.xml"),
        TempFile::named("b.md"),
    );
    let out = fetchall()
        .args(["-", "--baseline", baseline.path_str()])
        .args(["--report", &format!("csv:{}", csv.path_str())])
        .args(["--report", &format!("junit:{}", xml.path_str())])
        .args(["--report", &format!("markdown:{}", md.path_str())])
        .stdin(text(&[server.url("/ok"), server.url("/bytes/1")]))
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let csv = fs::read_to_string(csv.path()).unwrap();
    assert!(csv.starts_with("url,ok,status,bytes,elapsed_ms,attempts,error,error_kind,baseline\n"));
    assert!(csv.contains(",1,,,added\n"), "{csv}");
    let xml = fs::read_to_string(xml.path()).unwrap();
    assert!(
        xml.contains("<system-out>baseline: added</system-out>"),
        "{xml}"
    );
    assert!(xml.contains("1 added"), "{xml}");
    let md = fs::read_to_string(md.path()).unwrap();
    assert!(md.contains("#### Since the baseline"), "{md}");
    assert!(md.contains("| added |"), "{md}");
}

#[test]
fn baseline_options_need_a_baseline() {
    for args in [
        &["x.txt", "--fail-on", "new"][..],
        &["x.txt", "--size-change", "5"],
        &["x.txt", "--slower", "3"],
    ] {
        let out = fetchall().args(args).run();
        assert_eq!(out.code(), Some(2), "{args:?}");
        assert!(
            out.stderr.contains("--baseline"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn rate_spaces_the_requests_of_the_whole_run() {
    let server = server();
    let urls: Vec<String> = (0..6).map(|i| server.url(&format!("/ok?{i}"))).collect();
    let out = fetchall()
        .args(["-", "-w", "6", "--rate", "10/s"])
        .stdin(text(&urls))
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines().len(), 6);
    // Six requests one every 100ms: the last starts 500ms after the first.
    assert!(out.took >= Duration::from_millis(500), "{:?}", out.took);
}

#[test]
fn per_host_rate_paces_one_host_while_another_goes_ahead() {
    let (a, b) = (server(), server());
    // All of host a's URLs first: a worker that waited for a's next token would hold b up.
    let mut urls: Vec<String> = (0..3).map(|i| a.url(&format!("/ok?{i}"))).collect();
    urls.extend((0..3).map(|i| b.url(&format!("/ok?{i}"))));
    let out = fetchall()
        .args([
            "-",
            "-w",
            "1",
            "--per-host-rate",
            "2/s",
            "--format",
            "jsonl",
        ])
        .stdin(text(&urls))
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 6);
    // When the dispatcher handed each URL to the executor: when it took the host's token.
    let started = |url: &str| {
        let line = lines
            .iter()
            .find(|v| v["url"] == url)
            .expect("a line per URL");
        line["queued_ms"].as_f64().expect("queued")
    };
    // Each host's requests are 500ms apart...
    for host in [&urls[..3], &urls[3..]] {
        for pair in host.windows(2) {
            let gap = started(&pair[1]) - started(&pair[0]);
            assert!(gap >= 499.0, "{} after {}: {gap}ms", pair[1], pair[0]);
        }
    }
    // ...and the one worker fetched b's first URL while a waited for its second token.
    assert!(started(&urls[3]) < started(&urls[1]), "{lines:#?}");
}

#[test]
fn a_host_that_always_answers_429_costs_seconds_not_minutes() {
    let server = server();
    let urls: Vec<String> = (0..9)
        .map(|i| server.url(&format!("/status/429?{i}")))
        .collect();
    let out = fetchall()
        .args(["-", "--per-host", "2", "-t", "2"])
        .stdin(text(&urls))
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let lines = out.lines();
    assert_eq!(lines.len(), 9, "{lines:#?}");
    for line in &lines {
        assert!(
            line.ends_with("HTTP Error 429: Too Many Requests")
                || line.contains("timed out (waiting for its host, paused"),
            "{line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("timed out (waiting for its host")),
        "{lines:#?}"
    );
    // The URLs' own deadline is 2s; the pauses would have been 1s, 2s, 4s, 8s, ...
    assert!(out.took < Duration::from_secs(10), "{:?}", out.took);
}

#[test]
fn a_503_with_retry_after_pauses_its_host_for_what_it_asks() {
    let server = server();
    let urls = [server.url("/retry-after/1?a"), server.url("/ok?b")];
    let out = fetchall()
        .args(["-", "--per-host", "1", "--ordered", "--format", "jsonl"])
        .stdin(text(&urls))
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    let ms = |v: &serde_json::Value, field: &str| v[field].as_f64().expect(field);
    let answered = ms(&lines[0], "started_ms") + ms(&lines[0], "elapsed_ms");
    assert!(
        ms(&lines[1], "started_ms") >= answered + 999.0,
        "{:?}",
        lines
    );
}

#[test]
fn durations_take_units_and_short_timeouts_print_milliseconds() {
    let server = server();
    let out = fetchall()
        .args(["-", "--timeout", "300ms"])
        .stdin(server.url("/sleep/5000") + "\n")
        .run();
    assert_eq!(out.code(), Some(1));
    let line = &out.lines()[0];
    assert!(line.contains("timed out (response, after "), "{line}");
    assert!(line.ends_with("ms)"), "{line}");
    assert!(out.took < Duration::from_secs(5), "{:?}", out.took);
    // Below a second the time is in milliseconds, not "after 0.0s".
    let tiny = fetchall()
        .args(["-", "--timeout", "0.001"])
        .stdin(server.url("/hang") + "\n")
        .run();
    let line = &tiny.lines()[0];
    assert!(
        line.contains("generated an exception: timed out ("),
        "{line}"
    );
    assert!(line.ends_with("ms)") && !line.contains("0.0s"), "{line}");
}

#[test]
fn completions_and_the_man_page_come_from_the_binary() {
    let bash = fetchall().args(["--generate", "complete-bash"]).run();
    assert_eq!(bash.code(), Some(0), "{}", bash.stderr);
    assert!(bash.stdout.contains("--per-host-rate"));
    let man = fetchall().args(["--generate", "man"]).run();
    assert_eq!(man.code(), Some(0));
    assert!(man.stdout.contains(".TH fetchall 1"));
    let both = fetchall().args(["--generate", "man", "urls.txt"]).run();
    assert_eq!(both.code(), Some(2), "--generate stands alone");
}
