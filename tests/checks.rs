//! Content checks, the time budget, response facts and error kinds of [`Fetcher::fetch`], over
//! real HTTP to a loopback server started here (127.0.0.1, port 0).

use std::time::Duration;

use fetchall::fetch::{
    CheckFailure, ErrorKind, FetchError, FetchOptions, Fetcher, HeaderCheck, Pattern, Proxies,
};
use fetchall_serve::testing::{GENEROUS, refused_addr, server, within};

fn options() -> FetchOptions {
    let mut options = FetchOptions::default();
    options.timeout = Duration::from_secs(30);
    options.proxies = Proxies::none();
    options
}

/// The error of fetching `path` from a new server with `options`, as its message and kind.
fn failure(path: &'static str, options: FetchOptions) -> (String, ErrorKind) {
    within(GENEROUS, move || {
        let server = server();
        let e = Fetcher::new(options)
            .load_url(&server.url(path))
            .expect_err("fails");
        (e.to_string(), e.kind())
    })
}

fn page_ok(path: &'static str, options: FetchOptions) -> u64 {
    within(GENEROUS, move || {
        let server = server();
        let page = Fetcher::new(options).load_url(&server.url(path));
        page.expect("the page passes").bytes
    })
}

#[test]
fn an_expected_text_passes_and_a_missing_one_fails() {
    let mut o = options();
    o.checks.expect(Pattern::text("Welcome"));
    assert_eq!(page_ok("/text/Hi,%20Welcome%20back", o.clone()), 16);
    assert_eq!(
        failure("/text/Hi,%20welcome%20back", o),
        (
            "expected text not found: 'Welcome'".into(),
            ErrorKind::Check
        )
    );
}

#[test]
fn a_rejected_text_or_pattern_fails() {
    let mut o = options();
    o.checks.reject(Pattern::text("maintenance"));
    assert_eq!(page_ok("/text/all%20good", o.clone()), 8);
    let (message, kind) = failure("/text/down%20for%20maintenance", o);
    assert_eq!(message, "rejected text found: 'maintenance'");
    assert_eq!(kind.as_str(), "check");

    let mut o = options();
    o.checks
        .reject(Pattern::regex("(?i)trace(back)?").expect("valid"));
    let (message, _) = failure("/text/TRACEBACK%20(most%20recent)", o);
    assert_eq!(message, "rejected pattern found: '(?i)trace(back)?'");
}

#[test]
fn a_big_body_is_searched_up_to_the_scan_limit_and_still_counted() {
    let mut o = options();
    o.checks
        .expect(Pattern::text("x"))
        .set_scan_limit(64 * 1024);
    assert_eq!(page_ok("/bytes/3000000", o), 3_000_000);
    let mut o = options();
    o.checks
        .expect(Pattern::regex("y+").expect("valid"))
        .set_scan_limit(64 * 1024);
    let (message, _) = failure("/bytes/3000000", o);
    assert_eq!(
        message,
        "expected pattern not found in the first 64 KiB: 'y+'"
    );
}

#[test]
fn header_checks_see_the_final_response() {
    let mut o = options();
    let check: HeaderCheck = "Content-Type: ^text/plain".parse().expect("valid");
    o.checks.expect_header(check);
    assert_eq!(page_ok("/text/hello", o.clone()), 5);
    let (message, kind) = failure("/bytes/10", o);
    assert_eq!(
        message,
        "header content-type missing (expected to match '^text/plain')"
    );
    assert_eq!(kind, ErrorKind::Check);

    let mut o = options();
    o.checks
        .expect_header("content-type: json".parse().expect("valid"));
    let e = within(GENEROUS, move || {
        let server = server();
        Fetcher::new(o)
            .load_url(&server.url("/text/hello"))
            .expect_err("not json")
    });
    assert_eq!(
        e.to_string(),
        "header content-type: 'text/plain; charset=utf-8' does not match 'json'"
    );
    assert!(matches!(
        e,
        FetchError::Check(CheckFailure::HeaderMismatch { .. })
    ));
}

#[test]
fn a_check_failure_is_not_retried() {
    let mut o = options();
    o.retries = 3;
    o.checks.expect(Pattern::text("absent"));
    let e = within(GENEROUS, move || {
        let server = server();
        let e = Fetcher::new(o)
            .load_url(&server.url("/text/present"))
            .expect_err("fails");
        (e.attempts(), e.is_transient())
    });
    assert_eq!(e, (1, false));
}

#[test]
fn a_slow_page_fails_with_its_time_and_the_budget() {
    let mut o = options();
    o.slow = Some(Duration::from_millis(100));
    let (message, kind) = failure("/sleep/300/ok", o.clone());
    assert_eq!(kind, ErrorKind::Slow);
    let (took, budget) = message
        .strip_prefix("slow: ")
        .and_then(|rest| rest.split_once(" > "))
        .unwrap_or_else(|| panic!("{message}"));
    assert_eq!(budget, "0.10s");
    let took: f64 = took.trim_end_matches('s').parse().expect("seconds");
    assert!(took >= 0.3, "{message}");
    // A fast page passes.
    assert_eq!(page_ok("/ok", o), 3);
}

#[test]
fn the_timeout_still_bounds_a_slow_page() {
    let mut o = options();
    o.slow = Some(Duration::from_millis(100));
    o.timeout = Duration::from_millis(500);
    let (message, kind) = failure("/hang", o);
    assert_eq!(kind, ErrorKind::Timeout, "{message}");
}

#[test]
fn facts_name_the_final_response_and_its_connection() {
    let (first, second, accepted, addr) = within(GENEROUS, || {
        let server = server();
        let fetcher = Fetcher::new(options());
        let url = server.url("/redirect/2");
        let first = fetcher.fetch(&url);
        let second = fetcher.fetch(&url);
        (first, second, server.connections_accepted(), server.addr())
    });
    let page = first.result.expect("fetched");
    let facts = first.facts;
    assert_eq!(
        facts.final_url.as_deref(),
        Some(format!("http://{addr}/redirect/0").as_str())
    );
    assert_eq!(facts.redirects, 2);
    assert_eq!(facts.http_version, Some("HTTP/1.1"));
    assert_eq!(facts.remote_addr, Some(addr));
    // The redirects kept the one connection: the final request reused it.
    assert_eq!(accepted, 1);
    assert_eq!((facts.dns, facts.connect, facts.tls), (None, None, None));
    let ttfb = facts.ttfb.expect("a first byte");
    assert!(ttfb <= page.elapsed);
    assert_eq!(second.facts.remote_addr, Some(addr));
    assert_eq!(second.facts.redirects, 2);
}

#[test]
fn a_new_connection_has_its_lookup_and_connect_times() {
    let (transfer, addr) = within(GENEROUS, || {
        let server = server();
        let transfer = Fetcher::new(options()).fetch(&server.url("/text/hi"));
        (transfer, server.addr())
    });
    let page = transfer.result.expect("fetched");
    let f = transfer.facts;
    assert_eq!(f.remote_addr, Some(addr));
    assert_eq!(f.redirects, 0);
    assert_eq!(f.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    let (dns, connect, ttfb) = (
        f.dns.expect("dns"),
        f.connect.expect("connect"),
        f.ttfb.expect("ttfb"),
    );
    // Plain HTTP: no handshake.
    assert_eq!(f.tls, None);
    // Per phase, not cumulative: together they fit in the whole.
    assert!(dns + connect + ttfb <= page.elapsed, "{f:?} in {page:?}");
}

#[test]
fn a_failure_keeps_what_was_learnt_before_it() {
    let (status, refused) = within(GENEROUS, || {
        let server = server();
        let fetcher = Fetcher::new(options());
        let status = fetcher.fetch(&server.url("/status/404"));
        let refused = fetcher.fetch(&format!("http://{}/", refused_addr()));
        (status, refused)
    });
    assert_eq!(status.result.expect_err("404").kind(), ErrorKind::Status);
    assert!(status.facts.final_url.is_some() && status.facts.remote_addr.is_some());
    assert_eq!(status.facts.http_version, Some("HTTP/1.1"));
    assert_eq!(
        refused.result.expect_err("refused").kind(),
        ErrorKind::Connect
    );
    assert_eq!(refused.facts.final_url, None);
    assert_eq!(refused.facts.remote_addr, None);
}

#[test]
fn errors_have_stable_kinds() {
    for (path, kind) in [
        ("/status/503", "status"),
        ("/malformed", "protocol"),
        ("/truncate", "closed"),
        ("/close", "closed"),
        ("/redirect-loop", "redirects"),
    ] {
        let (message, got) = failure(path, options());
        assert_eq!(got.as_str(), kind, "{path}: {message}");
    }
    let invalid = Fetcher::new(options()).load_url("ftp://example.com/");
    assert_eq!(invalid.expect_err("ftp").kind(), ErrorKind::InvalidUrl);
}

#[test]
fn an_https_connection_has_its_handshake_time_and_a_reused_one_none() {
    use fetchall::fetch::Trust;
    use fetchall_serve::tls::{Ca, LOCALHOST, TlsFront};

    let (first, second, addr) = within(GENEROUS, || {
        let server = server();
        let ca = Ca::new("fetchall checks CA");
        let front = TlsFront::start(server.addr(), &ca.leaf(&LOCALHOST)).expect("TLS front");
        let mut o = options();
        o.trust = Trust::from_pem(ca.cert_pem().as_bytes()).expect("the test CA");
        let fetcher = Fetcher::new(o);
        let url = front.url_for("localhost", "/text/secure");
        let first = fetcher.fetch(&url);
        let second = fetcher.fetch(&url);
        (first, second, front.addr())
    });
    let page = first.result.expect("fetched over TLS");
    let f = first.facts;
    assert_eq!(f.remote_addr.map(|a| a.port()), Some(addr.port()));
    let (dns, connect, tls, ttfb) = (
        f.dns.expect("dns"),
        f.connect.expect("connect"),
        f.tls.expect("a handshake"),
        f.ttfb.expect("ttfb"),
    );
    assert!(
        dns + connect + tls + ttfb <= page.elapsed,
        "{f:?} in {page:?}"
    );
    assert_eq!(f.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    // The second fetch reused the connection: no lookup, connect or handshake of its own.
    let reused = second.facts;
    assert!(second.result.is_ok());
    assert_eq!((reused.dns, reused.connect, reused.tls), (None, None, None));
    assert!(reused.ttfb.is_some() && reused.remote_addr.is_some());
}
