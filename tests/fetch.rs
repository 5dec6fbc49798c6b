//! `Fetcher::load_url` against the loopback server: byte counts, every failure route and the
//! Python-worded message for it, the total deadline, and connection reuse.

mod common;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{GENEROUS, fetcher, fetcher_with, python3, refused_addr, server, within};
use fetchall::fetch::{FetchError, Fetcher, Method, Page, Phase, Proxies};
use fetchall_serve::{OK_BODY, TRUNCATE_LENGTH, TRUNCATE_SENT};
use ureq::http::HeaderValue;

const SHORT: Duration = Duration::from_secs(1);

fn ok_fetcher() -> Fetcher {
    fetcher(GENEROUS)
}

#[test]
fn counts_the_body_exactly() {
    let server = server();
    let fetcher = ok_fetcher();
    let page = fetcher.load_url(&server.url("/ok")).expect("/ok");
    assert_eq!((page.status, page.bytes), (200, OK_BODY.len() as u64));
    assert_eq!(page.final_url, None);
    for n in [0, 1, 12_345, 1 << 20] {
        let page = fetcher
            .load_url(&server.url(&format!("/bytes/{n}")))
            .expect("/bytes");
        assert_eq!(page.bytes, n);
    }
}

#[test]
fn counts_a_hundred_megabytes_without_keeping_them() {
    let server = server();
    let n = 100 * 1024 * 1024;
    let page = within(GENEROUS, move || {
        ok_fetcher().load_url(&server.url(&format!("/bytes/{n}")))
    })
    .expect("100 MB");
    assert_eq!(page.bytes, n);
}

#[test]
fn head_gets_the_status_and_no_body() {
    let server = server();
    let fetcher = fetcher_with(|o| o.method = Method::Head);
    let page = fetcher.load_url(&server.url("/bytes/1000")).expect("HEAD");
    assert_eq!((page.status, page.bytes), (200, 0));
    let err = fetcher
        .load_url(&server.url("/status/404"))
        .expect_err("HEAD 404");
    assert_eq!(err.status(), Some(404));
}

#[test]
fn error_statuses_read_like_urllib() {
    let server = server();
    let fetcher = ok_fetcher();
    for (code, message) in [
        (404, "HTTP Error 404: Not Found"),
        (500, "HTTP Error 500: Internal Server Error"),
        (503, "HTTP Error 503: Service Unavailable"),
    ] {
        let err = fetcher
            .load_url(&server.url(&format!("/status/{code}")))
            .expect_err("error status");
        assert!(matches!(err, FetchError::Status { code: c, .. } if c == code));
        assert_eq!(err.status(), Some(code));
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn other_2xx_statuses_succeed() {
    let server = server();
    let page = ok_fetcher()
        .load_url(&server.url("/status/204"))
        .expect("204");
    assert_eq!((page.status, page.bytes), (204, 0));
}

#[test]
fn redirects_are_followed_up_to_the_limit() {
    let server = server();
    let page = ok_fetcher()
        .load_url(&server.url("/redirect/3"))
        .expect("three redirects");
    assert_eq!(page.bytes, OK_BODY.len() as u64);
    assert_eq!(page.final_url, Some(server.url("/redirect/0")));

    let fetcher = fetcher_with(|o| o.max_redirects = 2);
    assert!(fetcher.load_url(&server.url("/redirect/2")).is_ok());
    let err = fetcher
        .load_url(&server.url("/redirect/3"))
        .expect_err("one redirect too many");
    assert_eq!(
        err.to_string(),
        "HTTP Error 302: Found (stopped after 2 redirects)"
    );
}

#[test]
fn a_redirect_loop_stops_with_the_3xx_code() {
    let err = failure("/redirect-loop");
    assert!(matches!(
        err,
        FetchError::TooManyRedirects {
            code: 302,
            followed: 10
        }
    ));
    assert_eq!(err.status(), Some(302));
    assert_eq!(
        err.to_string(),
        "HTTP Error 302: Found (stopped after 10 redirects)"
    );
}

/// The error from fetching `path` on a fresh server.
fn failure(path: &str) -> FetchError {
    let server = server();
    ok_fetcher().load_url(&server.url(path)).expect_err(path)
}

/// Fetches `path` with a one-second deadline, on a helper thread so a hang fails the test, and
/// returns the error and how long the fetch took.
fn fetch_with_short_deadline(path: &str) -> (FetchError, Duration) {
    let server = server();
    let url = server.url(path);
    within(GENEROUS, move || {
        let started = Instant::now();
        let err = fetcher(SHORT).load_url(&url).expect_err("deadline");
        // The server lives until the fetch is over.
        drop(server);
        (err, started.elapsed())
    })
}

#[test]
fn a_server_that_never_answers_times_out_by_the_deadline() {
    let (err, took) = fetch_with_short_deadline("/hang");
    assert!(took >= SHORT, "gave up early: {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(matches!(
        err,
        FetchError::Timeout {
            phase: Phase::Response,
            bytes: 0,
            ..
        }
    ));
    assert!(
        err.to_string().starts_with("timed out (response, after "),
        "{err}"
    );
}

#[test]
fn a_dripping_body_times_out_by_the_deadline_with_its_byte_count() {
    let (err, took) = fetch_with_short_deadline("/drip/100");
    assert!(
        took >= SHORT && took < Duration::from_secs(10),
        "took {took:?}"
    );
    let FetchError::Timeout {
        phase: Phase::Body,
        bytes,
        ..
    } = err
    else {
        panic!("not a body timeout: {err:?}");
    };
    // The first byte comes with the headers, the next one a second later.
    assert!((1..100).contains(&bytes), "{bytes} bytes");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("timed out (body, {bytes} bytes received after ")),
        "{message}"
    );
}

#[test]
fn a_slow_answer_inside_the_deadline_succeeds() {
    let server = server();
    let started = Instant::now();
    let page = fetcher(Duration::from_secs(30))
        .load_url(&server.url("/sleep/200/bytes/10"))
        .expect("slow but in time");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(page.bytes, 10);
}

/// The errno of `err`, which must be an OS error of `kind`.
fn os_error(err: &FetchError, kind: io::ErrorKind) -> i32 {
    let FetchError::Io(e) = err else {
        panic!("not an I/O error: {err:?}");
    };
    assert_eq!(e.kind(), kind);
    e.raw_os_error().expect("an OS error")
}

#[test]
fn a_reset_connection_reports_errno_104() {
    let err = failure("/reset");
    let errno = os_error(&err, io::ErrorKind::ConnectionReset);
    assert_eq!(
        err.to_string(),
        format!("[Errno {errno}] Connection reset by peer")
    );
}

#[test]
fn a_truncated_body_is_an_incomplete_read() {
    let err = failure("/truncate");
    assert_eq!(
        err.to_string(),
        format!(
            "IncompleteRead({TRUNCATE_SENT} bytes read, {} more expected)",
            TRUNCATE_LENGTH - TRUNCATE_SENT
        )
    );
}

#[test]
fn a_close_without_response_says_so() {
    let err = failure("/close");
    assert_eq!(
        err.to_string(),
        "Remote end closed connection without response"
    );
}

#[test]
fn a_malformed_status_line_is_a_bad_response() {
    let err = failure("/malformed");
    assert!(matches!(err, FetchError::BadResponse(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("invalid HTTP response: "),
        "{err}"
    );
}

#[test]
fn a_refused_connection_is_an_urlopen_error() {
    let addr = refused_addr();
    let err = ok_fetcher()
        .load_url(&format!("http://{addr}/ok"))
        .expect_err("refused");
    let errno = os_error(&err, io::ErrorKind::ConnectionRefused);
    assert_eq!(
        err.to_string(),
        format!("<urlopen error [Errno {errno}] Connection refused>")
    );
}

#[test]
fn tls_to_a_plain_http_server_is_an_ssl_error() {
    let server = server();
    let url = server.url("/ok").replacen("http:", "https:", 1);
    let err = within(GENEROUS, move || {
        fetcher(Duration::from_secs(10)).load_url(&url)
    })
    .expect_err("not TLS");
    assert!(matches!(err, FetchError::Tls(_)), "{err:?}");
    // OpenSSL's words, and so Python's, for an answer that is not TLS.
    assert_eq!(
        err.to_string(),
        "<urlopen error [SSL: WRONG_VERSION_NUMBER] wrong version number>"
    );
}

#[test]
fn invalid_urls_fail_without_contacting_anything() {
    let server = server();
    let port = server.addr().port();
    let fetcher = ok_fetcher();
    for url in [
        format!("ftp://127.0.0.1:{port}/ok"),
        format!("127.0.0.1:{port}/ok"),
        "http://".to_owned(),
        "not a url".to_owned(),
        String::new(),
        "file:///etc/hostname".to_owned(),
        "http://[::1/".to_owned(),
    ] {
        let err = fetcher.load_url(&url).expect_err(&url);
        assert!(matches!(&err, FetchError::InvalidUrl { url: u } if *u == url));
        assert_eq!(
            err.to_string(),
            format!("unknown url type: {}", fetchall::repr(&url))
        );
    }
    assert_eq!(server.connections_accepted(), 0);
}

#[test]
fn a_url_of_48_kib_is_sent_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/long?{}",
        listener.local_addr().expect("addr"),
        "q".repeat(48 * 1024)
    );
    // A server that reads the request head line by line, however long, and reports its size.
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(&stream);
        let mut head = 0;
        let mut line = String::new();
        while line != "\r\n" {
            line.clear();
            let read = reader.read_line(&mut line).expect("read the head");
            assert!(read > 0, "the head ended early");
            head += read;
        }
        (&stream)
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .expect("respond");
        head
    });
    let page = within(GENEROUS, move || ok_fetcher().load_url(&url)).expect("fetched");
    assert_eq!(page.bytes, 2);
    let head = server.join().expect("server thread");
    assert!(head > 48 * 1024, "head of {head} bytes");
}

#[test]
fn a_host_name_resolves() {
    let server = server();
    let url = format!("http://localhost:{}/ok", server.addr().port());
    let page = ok_fetcher().load_url(&url).expect("localhost");
    assert_eq!(page.bytes, OK_BODY.len() as u64);
}

#[test]
fn sequential_fetches_reuse_one_connection() {
    let server = server();
    let fetcher = ok_fetcher();
    for _ in 0..20 {
        fetcher.load_url(&server.url("/ok")).expect("/ok");
        // Small error pages are read to their end, so they do not cost the connection either.
        fetcher
            .load_url(&server.url("/status/404"))
            .expect_err("404");
    }
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn workers_share_one_pool() {
    const WORKERS: usize = 4;
    let server = server();
    let fetcher = ok_fetcher();
    let url = server.url("/bytes/100");
    let total = within(GENEROUS, move || {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let fetcher = fetcher.clone();
                let url = url.clone();
                thread::spawn(move || {
                    (0..25)
                        .map(|_| fetcher.load_url(&url).map(|p| p.bytes))
                        .sum::<Result<u64, FetchError>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .sum::<Result<u64, FetchError>>()
    })
    .expect("all fetches");
    assert_eq!(total, WORKERS as u64 * 25 * 100);
    // Each worker holds at most one connection at a time, and every one goes back to the pool.
    assert!(server.connections_accepted() <= WORKERS as u64);
}

#[test]
fn fetchers_pages_errors_and_servers_cross_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Fetcher>();
    shareable::<Page>();
    shareable::<FetchError>();
    shareable::<fetchall_serve::Server>();
}

// Retries, status rules, request options and proxies. These fetchers
// ignore the environment's proxy variables: `Proxies::none()` unless a test sets its own.

/// Fetches `url` with `retries` within `timeout`, on a helper thread so a hang fails the test,
/// and returns the result and how long it took.
fn timed(url: String, retries: u32, timeout: Duration) -> (Result<Page, FetchError>, Duration) {
    within(GENEROUS, move || {
        let started = Instant::now();
        let fetcher = fetcher_with(|o| {
            o.retries = retries;
            o.timeout = timeout;
        });
        (fetcher.load_url(&url), started.elapsed())
    })
}

fn retrying(retries: u32) -> Fetcher {
    fetcher_with(|o| o.retries = retries)
}

#[test]
fn a_transient_failure_is_retried_until_it_succeeds() {
    let server = server();
    let page = timed(server.url("/flaky/a/2"), 3, GENEROUS).0;
    let page = page.expect("third attempt succeeds");
    assert_eq!((page.status, page.bytes), (200, OK_BODY.len() as u64));
    assert_eq!(page.attempts, 3);
    assert_eq!(server.requests_for("a"), 3);
}

#[test]
fn without_retries_one_attempt_and_the_plain_message() {
    let server = server();
    let err = fetcher_with(|_| {})
        .load_url(&server.url("/flaky/a/1"))
        .expect_err("no retry");
    assert!(
        matches!(err, FetchError::Status { code: 503, .. }),
        "{err:?}"
    );
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.to_string(), "HTTP Error 503: Service Unavailable");
    assert_eq!(server.requests_for("a"), 1);
}

#[test]
fn exhausted_retries_report_the_last_error_and_the_count() {
    let server = server();
    let url = server.url("/flaky/a/9");
    let err = timed(url, 2, GENEROUS).0.expect_err("always 503");
    let FetchError::Retried { attempts, last } = &err else {
        panic!("not Retried: {err:?}");
    };
    assert_eq!(*attempts, 3);
    assert!(matches!(**last, FetchError::Status { code: 503, .. }));
    assert_eq!((err.attempts(), err.status()), (3, Some(503)));
    assert_eq!(
        err.to_string(),
        "HTTP Error 503: Service Unavailable (after 3 attempts)"
    );
    assert_eq!(server.requests_for("a"), 3);
}

#[test]
fn a_refused_connection_is_retried() {
    let url = format!("http://{}/ok", refused_addr());
    let err = timed(url, 2, GENEROUS).0.expect_err("refused");
    assert_eq!(err.attempts(), 3);
    assert!(
        err.to_string()
            .ends_with("Connection refused> (after 3 attempts)"),
        "{err}"
    );
}

#[test]
fn permanent_failures_are_not_retried() {
    let server = server();
    for (key, failure) in [("404", "status/404"), ("bad", "malformed")] {
        let err = retrying(3)
            .load_url(&server.url(&format!("/flaky/{key}/1/{failure}")))
            .expect_err(failure);
        assert_eq!(err.attempts(), 1, "{err}");
        assert_eq!(server.requests_for(key), 1);
    }
}

#[test]
fn each_retryable_status_is_retried_on_the_pooled_connection() {
    let server = server();
    let fetcher = retrying(1);
    for code in [408, 429, 500, 502, 503, 504] {
        let url = server.url(&format!("/flaky/{code}/1/status/{code}"));
        let page = fetcher.load_url(&url).expect("second attempt");
        assert_eq!(page.attempts, 2, "{code}");
    }
    // A retry has a deadline of its own, and still shares the agent's connections.
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn retry_after_is_waited_for() {
    let server = server();
    let (page, took) = timed(server.url("/flaky/a/1/retry-after/1"), 1, GENEROUS);
    let page = page.expect("after the wait");
    assert_eq!(page.attempts, 2);
    // The backoff alone would be at most 100 ms.
    assert!(took >= Duration::from_secs(1), "took {took:?}");
}

#[test]
fn a_retry_after_beyond_the_deadline_ends_at_once() {
    let server = server();
    let timeout = Duration::from_secs(5);
    let (err, took) = timed(server.url("/flaky/a/1/retry-after/60"), 3, timeout);
    let err = err.expect_err("no time to wait");
    assert!(
        matches!(err, FetchError::Status { code: 503, .. }),
        "{err:?}"
    );
    assert!(took < timeout, "waited anyway: {took:?}");
    assert_eq!(server.requests_for("a"), 1);
}

#[test]
fn the_retry_after_a_server_asked_for_is_in_the_error() {
    let server = server();
    let fetcher = fetcher_with(|_| {});
    let err = fetcher
        .load_url(&server.url("/retry-after/7"))
        .expect_err("503");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    let err = fetcher
        .load_url(&server.url("/status/429"))
        .expect_err("429");
    assert_eq!((err.status(), err.retry_after()), (Some(429), None));
}

#[test]
fn retries_stop_inside_the_deadline() {
    // Every answer takes 300 ms and is a 503; the retries could go on for 30 s.
    let server = server();
    let timeout = Duration::from_secs(2);
    let (err, took) = timed(server.url("/sleep/300/flaky/a/1000"), 100, timeout);
    let err = err.expect_err("always 503");
    let attempts = err.attempts();
    assert!((2..100).contains(&attempts), "{attempts} attempts: {err}");
    assert_eq!(server.requests_for("a"), u64::from(attempts));
    // No attempt was started that the time left could not fit, so the last one is a 503 and
    // everything ended before the deadline. (A noisy machine may still slow the last attempt
    // past it: then it is a timeout, and ends with the deadline.)
    if err.status() == Some(503) {
        assert!(took < timeout, "took {took:?}");
    } else {
        assert!(
            matches!(err, FetchError::Retried { ref last, .. }
            if matches!(**last, FetchError::Timeout { .. })),
            "{err:?}"
        );
        assert!(took < timeout + Duration::from_secs(5), "took {took:?}");
    }
}

#[test]
fn a_stale_keep_alive_connection_is_sent_again_once_on_a_new_one() {
    let server = server();
    let fetcher = fetcher_with(|_| {});
    fetcher.load_url(&server.url("/stale")).expect("/stale");
    // The pooled connection is reused, and the server closes it on reading the request.
    let page = fetcher
        .load_url(&server.url("/ok"))
        .expect("on a new connection");
    assert_eq!(server.connections_accepted(), 2);
    // Part of the same attempt, as for curl and browsers.
    assert_eq!(page.attempts, 1);
}

#[test]
fn a_connection_closed_again_after_the_reconnect_is_the_error() {
    let server = server();
    let fetcher = fetcher_with(|o| o.retries = 0);
    fetcher.load_url(&server.url("/ok")).expect("/ok");
    // Reused, closed without an answer; sent again on a new connection, closed again.
    let err = fetcher
        .load_url(&server.url("/close"))
        .expect_err("closed twice");
    assert!(matches!(err, FetchError::RemoteClosed), "{err:?}");
    assert_eq!(err.attempts(), 1);
    assert_eq!(server.connections_accepted(), 2);
}

#[test]
fn a_new_connection_closed_without_response_is_not_retried() {
    let server = server();
    let err = fetcher_with(|_| {})
        .load_url(&server.url("/close"))
        .expect_err("closed");
    assert!(matches!(err, FetchError::RemoteClosed), "{err:?}");
    assert_eq!(err.attempts(), 1);
}

#[test]
fn accepted_statuses_are_pages_and_others_errors() {
    let server = server();
    let fetcher = fetcher_with(|o| o.accept = "200-299,404".parse().expect("ranges"));
    let page = fetcher
        .load_url(&server.url("/status/404"))
        .expect("404 accepted");
    assert_eq!(page.status, 404);
    assert_eq!(page.bytes, "404 Not Found\n".len() as u64);
    let err = fetcher
        .load_url(&server.url("/status/500"))
        .expect_err("500 is not");
    assert_eq!(err.to_string(), "HTTP Error 500: Internal Server Error");
}

#[test]
fn an_accepted_retryable_status_is_not_retried() {
    let server = server();
    let fetcher = fetcher_with(|o| {
        o.retries = 3;
        o.accept = "200-299,503".parse().expect("ranges");
    });
    let page = fetcher
        .load_url(&server.url("/flaky/a/1"))
        .expect("503 accepted");
    assert_eq!((page.status, page.attempts), (503, 1));
}

#[test]
fn with_no_redirects_a_3xx_is_a_status() {
    let server = server();
    let err = fetcher_with(|o| o.max_redirects = 0)
        .load_url(&server.url("/redirect/1"))
        .expect_err("302 not accepted");
    assert!(
        matches!(err, FetchError::Status { code: 302, .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "HTTP Error 302: Found");

    let page = fetcher_with(|o| {
        o.max_redirects = 0;
        o.accept = "200-399".parse().expect("ranges");
    })
    .load_url(&server.url("/redirect/1"))
    .expect("302 accepted");
    assert_eq!((page.status, page.bytes, page.final_url), (302, 0, None));
}

/// The head of the request `fetcher` sends for `/echo`, as the server received it.
fn echoed(fetcher: &Fetcher) -> String {
    let server = server();
    fetcher.load_url(&server.url("/echo")).expect("/echo");
    server.last_echo().expect("the server kept the head")
}

#[test]
fn the_default_request_names_fetchall_and_asks_for_identity() {
    let head = echoed(&fetcher_with(|_| {}));
    assert!(head.starts_with("GET /echo HTTP/1.1\r\n"), "{head}");
    let agent = format!("user-agent: fetchall/{}\r\n", env!("CARGO_PKG_VERSION"));
    assert!(head.to_ascii_lowercase().contains(&agent), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("accept-encoding: identity\r\n")
    );
}

#[test]
fn headers_user_agent_and_method_are_sent() {
    let head = echoed(&fetcher_with(|o| {
        o.method = Method::Head;
        o.user_agent = HeaderValue::from_static("probe/2");
        o.headers.append("x-one", HeaderValue::from_static("1"));
        o.headers.append("x-one", HeaderValue::from_static("2"));
        o.headers
            .insert("accept-encoding", HeaderValue::from_static("gzip"));
    }))
    .to_ascii_lowercase();
    assert!(head.starts_with("head /echo http/1.1\r\n"), "{head}");
    assert!(head.contains("user-agent: probe/2\r\n"), "{head}");
    assert!(head.contains("x-one: 1\r\n") && head.contains("x-one: 2\r\n"));
    // Given headers replace the defaults.
    assert!(head.contains("accept-encoding: gzip\r\n"));
    assert!(!head.contains("identity"), "{head}");
}

#[test]
fn an_unusable_proxy_fails_the_url_without_contacting_anything() {
    let server = server();
    let fetcher = fetcher_with(|o| {
        o.proxies = Proxies::from_vars(|name| {
            (name == "all_proxy").then(|| "ftp://127.0.0.1:9".to_owned())
        });
    });
    let err = fetcher
        .load_url(&server.url("/ok"))
        .expect_err("unusable proxy");
    assert!(
        matches!(
            err,
            FetchError::UnusableProxy {
                var: "all_proxy",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.attempts(), 0);
    assert_eq!(
        err.to_string(),
        "unusable proxy in all_proxy: 'ftp://127.0.0.1:9' \
         (a proxy is http://, https://, socks4://, socks4a://, socks5:// or socks5h://)"
    );
    assert_eq!(server.connections_accepted(), 0);
}

// Redirects as RFC 3986 resolves them, and what a hostile server or a hostile URL line gets.

/// A loopback server that takes one connection per response `script` gives for its address,
/// reads one request from it, sends the request's target (`/a?b`) down the channel and answers
/// with the response.
fn scripted(
    script: impl FnOnce(SocketAddr) -> Vec<Vec<u8>>,
) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let responses = script(addr);
    let (targets, received) = mpsc::channel();
    thread::spawn(move || {
        for response in responses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                return;
            }
            let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
            // The rest of the head, up to its blank line (or the end of the stream).
            while !matches!(line.as_str(), "\r\n" | "") {
                line.clear();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
            }
            if targets.send(target).is_err() || (&stream).write_all(&response).is_err() {
                return;
            }
        }
    });
    (addr, received)
}

/// A `302` to `location` (raw bytes: a hostile server sends what it likes), closing the
/// connection.
fn found(location: &[u8]) -> Vec<u8> {
    let mut response = b"HTTP/1.1 302 Found\r\nLocation: ".to_vec();
    response.extend_from_slice(location);
    response.extend_from_slice(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    response
}

const OK_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/// A reference, and where it leads from [`BASE`], written down from RFC 3986 section 5.4 and
/// Python's `urljoin` (`HOST` is the server's address).
const REFERENCES: [(&str, &str); 10] = [
    ("?q=1", "http://HOST/a/b/c?q=1"),
    ("#f", "http://HOST/a/b/c?x=1#f"),
    ("//HOST/p", "http://HOST/p"),
    ("../x", "http://HOST/a/x"),
    ("", "http://HOST/a/b/c?x=1"),
    ("../../../x", "http://HOST/x"),
    ("g;x?y#s", "http://HOST/a/b/g;x?y#s"),
    (".", "http://HOST/a/b/"),
    ("http:g", "http://HOST/a/b/g"),
    ("/./g/.", "http://HOST/g/"),
];

/// The URL each redirect of [`REFERENCES`] starts from.
const BASE: &str = "http://HOST/a/b/c?x=1";

#[test]
fn a_location_resolves_as_rfc_3986_says() {
    for (reference, expected) in REFERENCES {
        // Each case has a server of its own, which the redirect leads back to.
        let (addr, targets) = scripted(|addr| {
            let location = reference.replace("HOST", &addr.to_string());
            vec![found(location.as_bytes()), OK_CLOSE.to_vec()]
        });
        let host = addr.to_string();
        let base = BASE.replace("HOST", &host);
        let expected = expected.replace("HOST", &host);
        let page = within(GENEROUS, {
            let base = base.clone();
            move || ok_fetcher().load_url(&base)
        })
        .unwrap_or_else(|e| panic!("{reference:?}: {e}"));
        assert_eq!(page.bytes, 2, "{reference:?}");
        let sent = expected.split('#').next().unwrap_or_default().to_owned();
        let final_url = (sent != base).then(|| sent.clone());
        assert_eq!(page.final_url, final_url, "{reference:?}");
        let requested: Vec<String> = targets.try_iter().collect();
        let target = sent
            .strip_prefix(&format!("http://{host}"))
            .unwrap_or_default();
        assert_eq!(requested, ["/a/b/c?x=1", target], "{reference:?}");
    }
}

/// The written-down cases of [`REFERENCES`] are what Python's `urljoin` gives. Fails, saying
/// what to install, when python3 is not installed.
#[test]
#[ignore = "needs python3"]
fn the_written_down_references_are_python_urljoins() {
    let host = "127.0.0.1:8000";
    let (pairs, written_down): (Vec<_>, Vec<_>) = REFERENCES
        .iter()
        .map(|(reference, expected)| {
            let pair = (BASE.replace("HOST", host), reference.replace("HOST", host));
            (pair, expected.replace("HOST", host))
        })
        .unzip();
    assert_eq!(python_urljoin(&pairs), written_down);
}

/// Python's `urljoin(base, reference)` for each pair.
///
/// # Panics
///
/// When python3 is not installed (saying what to install) or fails.
fn python_urljoin(pairs: &[(String, String)]) -> Vec<String> {
    let script = "import json, sys\nfrom urllib.parse import urljoin\n\
                  print(json.dumps([urljoin(b, r) for b, r in json.load(sys.stdin)]))\n";
    let input = serde_json::to_string(pairs).expect("json");
    serde_json::from_str(&python3(script, &input)).expect("python3's answer")
}

/// The error for a `302` to `location`, which must not be followed: no second request is made.
fn not_followed(location: &[u8]) -> FetchError {
    let (addr, targets) = scripted(|_| vec![found(location)]);
    let url = format!("http://{addr}/start");
    let err = within(GENEROUS, move || ok_fetcher().load_url(&url)).expect_err("not followed");
    assert_eq!(targets.try_iter().collect::<Vec<_>>(), ["/start"]);
    err
}

#[test]
fn a_redirect_to_another_scheme_is_refused_in_pythons_words() {
    for location in [
        "file:///etc/passwd",
        "data:text/plain,hi",
        "javascript:alert(1)",
        "FTP://127.0.0.1/x",
    ] {
        let err = not_followed(location.as_bytes());
        assert!(
            matches!(err, FetchError::RedirectNotAllowed { code: 302, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("HTTP Error 302: Found - Redirection to url '{location}' is not allowed")
        );
        assert_eq!(err.status(), Some(302));
    }
}

#[test]
fn a_location_that_is_no_url_is_an_error_naming_it_never_a_different_url() {
    for (location, shown) in [
        (&b"/a\tb"[..], r"'/a\tb'"),
        (b"/a b", "'/a b'"),
        (b"\\\\evil.test/x", r"'\\\\evil.test/x'"),
        (b"/%zz", "'/%zz'"),
        (b"http://", "'http://'"),
        (b"/caf\xc3\xa9", "'/caf\u{e9}'"),
    ] {
        let err = not_followed(location);
        assert!(
            matches!(err, FetchError::InvalidRedirect { code: 302, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("HTTP Error 302: Found - Redirection to url {shown} is not a valid URL")
        );
    }
}

#[test]
fn server_text_in_a_message_is_escaped_and_cut() {
    // A bidi override, a C1 control (what a header may carry as obs-text), and far too much.
    let hostile = format!("/\u{202e}x\u{85}{}", "a".repeat(5000));
    let message = not_followed(hostile.as_bytes()).to_string();
    let shown: String = hostile.chars().take(200).collect();
    let shown = fetchall::repr(&shown);
    assert!(shown.starts_with(r"'/\u202ex\x85a"), "{shown}");
    assert_eq!(
        message,
        format!("HTTP Error 302: Found - Redirection to url {shown}… is not a valid URL")
    );
    assert!(message.len() < 300, "{} bytes", message.len());
}

#[test]
fn redirects_count_against_the_limit_and_keep_the_deadline() {
    let server = server();
    let fetcher = fetcher_with(|o| o.max_redirects = 3);
    let page = fetcher
        .load_url(&server.url("/redirect/3"))
        .expect("3 of 3");
    assert_eq!(page.final_url, Some(server.url("/redirect/0")));
    let err = fetcher
        .load_url(&server.url("/redirect/4"))
        .expect_err("4 of 3");
    assert_eq!(
        err.to_string(),
        "HTTP Error 302: Found (stopped after 3 redirects)"
    );
    // Each hop is a request of its own; the deadline is still the whole URL's.
    let hang = server.url("/hang");
    let (addr, _targets) = scripted(|_| vec![found(hang.as_bytes())]);
    let url = format!("http://{addr}/start");
    let (result, took) = timed(url, 0, SHORT);
    let err = result.expect_err("the second hop never answers");
    assert!(took >= SHORT, "gave up early: {took:?}");
    assert!(
        matches!(
            err,
            FetchError::Timeout {
                phase: Phase::Response,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_request_head_too_large_to_send_says_so() {
    let server = server();
    let big = HeaderValue::from_str(&"x".repeat(70 * 1024)).expect("value");
    let fetcher = fetcher_with(move |o| {
        o.headers.insert("x-big", big);
    });
    let err = fetcher.load_url(&server.url("/ok")).expect_err("too large");
    assert!(
        matches!(err, FetchError::RequestTooLarge { limit: 65536 }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "request too large to send: a request line or header over 65536 bytes"
    );
    assert!(!err.is_transient());
}

#[test]
fn head_lines_longer_than_the_output_buffer_still_go_out_whole() {
    // Connections write through 8 KiB. A longer `-H` line gets the fetcher's connections a
    // buffer that holds it, kept alive as any; a longer URL line gets 64 KiB on a connection of
    // its own. The header is the last one, which goes out with the blank line after it: 8,180
    // bytes of value is the most that fits 8 KiB.
    let server = server();
    for len in [8170, 8180, 8181, 8186, 8190, 12 * 1024] {
        let long = "x".repeat(len);
        let value = HeaderValue::from_str(&long).expect("value");
        let fetcher = fetcher_with(move |o| {
            o.headers.insert("x-long", value);
        });
        let opened = server.connections_accepted();
        for _ in 0..2 {
            if let Err(e) = fetcher.load_url(&server.url("/echo")) {
                panic!("a header of {len} bytes: {e}");
            }
            let head = server.last_echo().expect("the server kept the head");
            assert!(head.ends_with(&format!("x-long: {long}\r\n")), "{len}");
        }
        assert_eq!(
            server.connections_accepted(),
            opened + 1,
            "{len}: kept alive"
        );
    }

    let query = "q".repeat(10 * 1024);
    let fetcher = ok_fetcher();
    fetcher.load_url(&server.url("/ok")).expect("/ok");
    let opened = server.connections_accepted();
    for round in 1..=2 {
        let url = server.url(&format!("/echo?{query}"));
        fetcher.load_url(&url).expect("a 10 KiB URL");
        let head = server.last_echo().expect("the server kept the head");
        assert!(
            head.starts_with(&format!("GET /echo?{query} HTTP/1.1\r\n")),
            "{head:.200}"
        );
        // Each on a connection of its own, neither taken from the pool nor put back in it.
        assert_eq!(server.connections_accepted(), opened + round);
    }
    for _ in 0..3 {
        fetcher.load_url(&server.url("/ok")).expect("/ok");
    }
    // The short requests go on on the connection the first one opened.
    assert_eq!(server.connections_accepted(), opened + 2);
}

#[test]
fn the_final_url_in_the_facts_hides_a_password() {
    let server = server();
    let fetcher = ok_fetcher();
    let addr = server.addr();
    let with_user = fetcher.fetch(&format!("http://me:s3cret@{addr}/ok"));
    assert!(with_user.result.is_ok(), "{:?}", with_user.result);
    let shown = format!("http://me:***@{addr}/ok");
    assert_eq!(with_user.facts.final_url.as_deref(), Some(shown.as_str()));
    let plain = fetcher.fetch(&server.url("/ok"));
    assert_eq!(plain.facts.final_url, Some(server.url("/ok")));
}

#[test]
fn control_characters_in_a_url_are_refused_not_removed() {
    let server = server();
    let port = server.addr().port();
    let fetcher = ok_fetcher();
    for (path, shown, found) in [
        ("/ok\x01", r"'/ok\x01'", r"'\x01'"),
        ("/o\tk", r"'/o\tk'", r"'\t'"),
        ("/o\nk", r"'/o\nk'", r"'\n'"),
        ("/a b", "'/a b'", "' '"),
        ("/ok?\x7f", r"'/ok?\x7f'", r"'\x7f'"),
    ] {
        let url = format!("http://127.0.0.1:{port}{path}");
        let err = fetcher.load_url(&url).expect_err(path);
        assert_eq!(
            err.to_string(),
            format!("URL can't contain control characters. {shown} (found at least {found})"),
        );
        assert_eq!(err.attempts(), 0);
    }
    // Whitespace around the line is not part of the URL.
    let page = fetcher
        .load_url(&format!(" http://127.0.0.1:{port}/ok\r\n"))
        .expect("trimmed");
    assert_eq!(page.status, 200);
    assert_eq!(server.connections_accepted(), 1);
}
