//! `Fetcher::load_url` against the loopback server: byte counts, every failure route and the
//! Python-worded message for it, the total deadline, and connection reuse.

mod common;

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use common::{GENEROUS, fetcher, refused_addr, server, within};
use fetchall::serve::{OK_BODY, TRUNCATE_LENGTH, TRUNCATE_SENT};
use fetchall::{FetchError, FetchOptions, Fetcher, Method, Page, Phase};

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
    let mut options = FetchOptions::default();
    options.method = Method::Head;
    let fetcher = Fetcher::new(options);
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
        assert!(matches!(err, FetchError::Status { code: c } if c == code));
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

    let mut options = FetchOptions::default();
    options.max_redirects = 2;
    let fetcher = Fetcher::new(options);
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
    assert!(
        err.to_string().starts_with("<urlopen error [SSL] "),
        "{err}"
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
    shareable::<fetchall::serve::Server>();
}
