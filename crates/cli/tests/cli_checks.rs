//! The content checks (`--expect`, `--expect-regex`, `--reject`, `--reject-regex`,
//! `--expect-header`, `--scan-limit`), the time budget (`--slow`) and the JSON facts and
//! `error_kind`, end to end over real HTTP to a loopback server started here.

use fetchall_serve::testing::{refused_addr, server};

use crate::cli::measured;
use crate::support::bin::{Output, fetchall};
use crate::support::text;

/// Runs `fetchall - ARGS -q` with `urls` on stdin.
fn run(urls: &[String], args: &[&str]) -> Output {
    fetchall()
        .arg("-")
        .arg("-q")
        .args(args)
        .stdin(text(urls))
        .run()
}

/// The text line for a failure.
fn exception(url: &str, message: &str) -> String {
    format!("'{url}' generated an exception: {message}")
}

/// The JSON lines of a run, by URL.
fn json_by_url(out: &Output) -> std::collections::HashMap<String, serde_json::Value> {
    out.stdout
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            (v["url"].as_str().expect("a url").to_owned(), v)
        })
        .collect()
}

#[test]
fn a_failed_check_is_an_exception_line_and_exit_1() {
    let server = server();
    let welcome = server.url("/text/Hello,%20Welcome!");
    let other = server.url("/text/Hello%20there");
    let out = run(&[welcome.clone(), other.clone()], &["--expect", "Welcome"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let mut lines = out.lines();
    lines.sort();
    let mut want = vec![
        format!("'{welcome}' page is 15 bytes"),
        exception(&other, "expected text not found: 'Welcome'"),
    ];
    want.sort();
    assert_eq!(lines, want);

    let out = run(std::slice::from_ref(&welcome), &["--expect", "Welcome"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
}

#[test]
fn each_kind_of_check_names_itself() {
    let server = server();
    let page = server.url("/text/down%20for%20maintenance%2C%20Traceback");
    for (args, message) in [
        (
            &["--reject", "maintenance"][..],
            "rejected text found: 'maintenance'",
        ),
        (
            &["--reject-regex", "Trace(back)?"],
            "rejected pattern found: 'Trace(back)?'",
        ),
        (
            &["--expect-regex", "^up"],
            "expected pattern not found: '^up'",
        ),
        (
            &["--expect-header", "Content-Type: json"],
            "header content-type: 'text/plain; charset=utf-8' does not match 'json'",
        ),
        (
            &["--expect-header", "X-Missing: ."],
            "header x-missing missing (expected to match '.')",
        ),
        // User text is quoted like the URL: a quote or a newline cannot break the line.
        (
            &["--expect", "it's\n"],
            r#"expected text not found: "it's\n""#,
        ),
    ] {
        let out = run(std::slice::from_ref(&page), args);
        assert_eq!(out.code(), Some(1), "{args:?}: {}", out.stderr);
        assert_eq!(out.lines(), [exception(&page, message)], "{args:?}");
    }
    // And every check passing is a page.
    let out = run(
        std::slice::from_ref(&page),
        &[
            "--expect",
            "maintenance",
            "--expect-regex",
            r"\bTraceback$",
            "--reject",
            "Welcome",
            "--expect-header",
            "content-type: ^text/plain",
        ],
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
}

#[test]
fn the_scan_limit_is_named_in_the_failure_and_the_body_still_counted() {
    let server = server();
    let url = server.url("/bytes/1000000");
    let out = run(
        std::slice::from_ref(&url),
        &["--expect", "y", "--scan-limit", "64KiB"],
    );
    assert_eq!(
        out.lines(),
        [exception(
            &url,
            "expected text not found in the first 64 KiB: 'y'"
        )]
    );
    let out = run(
        std::slice::from_ref(&url),
        &["--expect", "x", "--reject", "y", "--scan-limit", "64KiB"],
    );
    assert_eq!(out.lines(), [format!("'{url}' page is 1000000 bytes")]);
}

#[test]
fn bad_checks_are_usage_errors() {
    for args in [
        &["--expect-regex", "(unclosed"][..],
        &["--expect-header", "no colon here"],
        &["--scan-limit", "a lot"],
        &["--slow", "-1"],
    ] {
        let out = run(&[], args);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_slow_page_fails_with_its_time_and_the_budget() {
    let server = server();
    let slow = server.url("/sleep/300/ok");
    let fast = server.url("/ok");
    let out = run(&[slow.clone(), fast.clone()], &["--slow", "0.1"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let lines = out.lines();
    assert!(
        lines.contains(&format!("'{fast}' page is 3 bytes")),
        "{lines:?}"
    );
    let line = lines
        .iter()
        .find(|l| l.starts_with(&format!("'{slow}'")))
        .expect("a line for the slow page");
    let rest = line
        .strip_prefix(&exception(&slow, "slow: "))
        .unwrap_or_else(|| panic!("{line}"));
    let (took, budget) = rest.split_once("s > ").unwrap_or_else(|| panic!("{line}"));
    assert_eq!(budget, "0.10s");
    assert!(took.parse::<f64>().is_ok_and(|t| t >= 0.3), "{line}");

    // --timeout still ends a fetch that never finishes.
    let hang = server.url("/hang");
    let out = run(
        std::slice::from_ref(&hang),
        &["--slow", "0.1", "--timeout", "0.5"],
    );
    let lines = out.lines();
    assert!(
        lines[0].starts_with(&exception(&hang, "timed out")),
        "{lines:?}"
    );
}

#[test]
fn json_lines_carry_the_facts_and_the_error_kind() {
    let server = server();
    let redirect = server.url("/redirect/1");
    let text = server.url("/text/hi");
    let missing = server.url("/status/404");
    let refused = format!("http://{}/", refused_addr());
    let checked = server.url("/text/nothing%20here");
    let urls = [
        redirect.clone(),
        text.clone(),
        missing.clone(),
        refused.clone(),
        checked.clone(),
        "ftp://example.com/".to_owned(),
    ];
    let mut input: Vec<u8> = urls
        .iter()
        .flat_map(|u| format!("{u}\n").into_bytes())
        .collect();
    input.extend(b"\xff\xfe not utf-8\n");
    let out = fetchall()
        .args(["-", "-q", "--format", "json", "--reject", "nothing"])
        .stdin(input)
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let by_url = json_by_url(&out);
    let addr = server.addr().to_string();

    let v = &by_url[&redirect];
    assert_eq!(v["ok"], true);
    assert_eq!(v["error_kind"], serde_json::Value::Null);
    assert_eq!(v["final_url"], server.url("/redirect/0"));
    assert_eq!(v["redirects"], 1);
    assert_eq!(v["http_version"], "HTTP/1.1");
    assert_eq!(v["remote_addr"], addr);
    assert_eq!(v["tls_ms"], serde_json::Value::Null);
    assert!(v["ttfb_ms"].as_f64().is_some_and(|t| t >= 0.0), "{v}");

    let v = &by_url[&text];
    assert_eq!(v["content_type"], "text/plain; charset=utf-8");
    assert_eq!(v["final_url"], text);
    assert_eq!(v["redirects"], 0);
    // The first request on a connection has its connect time; the lookup of an IP literal
    // takes next to none. Either way, each is a number or null, never missing.
    for key in ["dns_ms", "connect_ms", "ttfb_ms"] {
        assert!(v[key].is_number() || v[key].is_null(), "{key}: {v}");
    }

    for (url, kind) in [
        (&missing, "status"),
        (&refused, "connect"),
        (&checked, "check"),
        (&"ftp://example.com/".to_owned(), "invalid_url"),
        (&"\u{fffd}\u{fffd} not utf-8".to_owned(), "input"),
    ] {
        let v = &by_url[url];
        assert_eq!(v["ok"], false, "{url}");
        assert_eq!(v["error_kind"], kind, "{url}: {v}");
    }
    assert_eq!(by_url[&missing]["remote_addr"], addr);
    assert_eq!(
        by_url[&checked]["content_type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(by_url[&checked]["error"], "rejected text found: 'nothing'");
    assert_eq!(by_url[&refused]["final_url"], serde_json::Value::Null);
    assert_eq!(by_url[&refused]["redirects"], serde_json::Value::Null);
}

#[test]
fn the_text_output_is_unchanged_by_the_facts() {
    let server = server();
    let url = server.url("/text/hi");
    let out = run(std::slice::from_ref(&url), &[]);
    assert_eq!(out.stdout, format!("'{url}' page is 2 bytes\n"));
}

#[test]
#[ignore = "needs GNU time (/usr/bin/time)"]
fn a_checked_256_mib_body_runs_in_little_memory() {
    let server = server();
    let url = server.url("/bytes/268435456");
    // A reject keeps the scan going to the limit, a regex keeps the widest window; the rest of
    // the body is only counted.
    let args = [
        "-",
        "-q",
        "--expect",
        "xxxx",
        "--reject-regex",
        "y{3,}",
        "--scan-limit",
        "16MiB",
    ];
    let (out, kib) = measured(&args, format!("{url}\n").as_bytes());
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, format!("'{url}' page is 268435456 bytes\n"));
    assert!(
        kib < 64 * 1024,
        "peak RSS {kib} KiB for a checked 256 MiB body"
    );
}
