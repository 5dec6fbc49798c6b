//! The `fetchall` binary's request and retry options end to end: `--retries`, `--method`,
//! `-H`, `--user-agent`, `--accept`, `--max-redirects`, `--insecure` and the proxy environment
//! variables, over real HTTP to a loopback server, and through a loopback proxy
//! ([`TunnelProxy`]); `--resolve` and `--connect-to`. The proxy variables reach a child only
//! when a test sets them.

use fetchall_serve::OK_BODY;
use fetchall_serve::testing::server;

use crate::support::bin::Output;
use crate::support::proxy::TunnelProxy;
use crate::support::{exception, fetch_one, json, page};

/// Runs `fetchall FILE ARGS`, FILE listing `url` alone, with the environment variables `env`
/// (and `PATH`) only.
/// [`fetch_one`] with no environment variable but `PATH`.
fn fetchall(url: &str, args: &[&str]) -> Output {
    fetch_one(url, args, &[])
}

/// Runs each `(ARGS, MESSAGE)` of `cases` on a URL of a fresh server: each must be a usage error
/// (exit 2) whose stderr says MESSAGE, printing nothing on stdout, and none may reach the server.
fn usage_errors(cases: &[(&[&str], &str)]) {
    let server = server();
    for &(args, says) in cases {
        let run = fetchall(&server.url("/ok"), args);
        assert_eq!(run.code(), Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    assert_eq!(server.connections_accepted(), 0);
}

#[test]
fn retries_end_in_a_page_and_the_json_counts_them() {
    let server = server();
    let url = server.url("/flaky/text/2");
    let run = fetchall(&url, &["--retries", "3"]);
    // The success line is the Python example's, retries or not.
    assert_eq!(run.stdout, page(&url, OK_BODY.len()));
    assert_eq!(run.code(), Some(0));

    let args = ["--retries", "3", "--format", "json"];
    let line = json(&fetchall(&server.url("/flaky/json/2"), &args));
    assert_eq!(line["ok"], true);
    assert_eq!(line["attempts"], 3);
    assert_eq!(server.requests_for("json"), 3);
}

#[test]
fn a_failure_after_retries_says_how_many_attempts() {
    let server = server();
    let url = server.url("/flaky/a/9");
    let run = fetchall(&url, &["--retries", "2"]);
    let message = "HTTP Error 503: Service Unavailable";
    let after = format!("{message} (after 3 attempts)");
    assert_eq!(run.stdout, exception(&url, &after));
    assert_eq!(run.code(), Some(1));
    assert_eq!(server.requests_for("a"), 3);

    // Without --retries the line is exactly as before.
    let url = server.url("/flaky/b/9");
    assert_eq!(fetchall(&url, &[]).stdout, exception(&url, message));
    let line = json(&fetchall(&server.url("/flaky/c/9"), &["--format", "json"]));
    assert_eq!(line["status"], 503);
    assert_eq!(line["attempts"], 1);
}

#[test]
fn accept_decides_which_statuses_are_pages() {
    let server = server();
    let url = server.url("/status/404");
    let run = fetchall(&url, &["--accept", "200-299,404"]);
    assert_eq!(run.stdout, page(&url, "404 Not Found\n".len()));
    assert_eq!(run.code(), Some(0));

    let run = fetchall(&url, &[]);
    assert_eq!(run.stdout, exception(&url, "HTTP Error 404: Not Found"));
    assert_eq!(run.code(), Some(1));
}

#[test]
fn max_redirects_zero_leaves_a_3xx_to_accept() {
    let server = server();
    let url = server.url("/redirect/1");
    let run = fetchall(&url, &["--max-redirects", "0"]);
    assert_eq!(run.stdout, exception(&url, "HTTP Error 302: Found"));
    let run = fetchall(&url, &["--max-redirects", "0", "--accept", "200-399"]);
    assert_eq!(run.stdout, page(&url, 0));
    let run = fetchall(&url, &["--max-redirects", "1"]);
    assert_eq!(run.stdout, page(&url, OK_BODY.len()));
}

#[test]
fn headers_user_agent_and_method_reach_the_server() {
    let server = server();
    let url = server.url("/echo");
    assert_eq!(fetchall(&url, &[]).code(), Some(0));
    let head = server.last_echo().expect("echoed").to_ascii_lowercase();
    assert!(head.starts_with("get /echo http/1.1\r\n"), "{head}");
    let agent = format!("user-agent: fetchall/{}\r\n", env!("CARGO_PKG_VERSION"));
    assert!(head.contains(&agent), "{head}");

    let args = [
        "-H",
        "X-Token: abc",
        "--header",
        "x-token:def ",
        "-H",
        "Accept: text/plain",
        "--user-agent",
        "probe/1 (smoke test)",
        "--method",
        "head",
    ];
    assert_eq!(fetchall(&url, &args).stdout, page(&url, 0));
    let head = server.last_echo().expect("echoed");
    assert!(head.starts_with("HEAD /echo HTTP/1.1\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    for line in [
        "x-token: abc\r\n",
        "x-token: def\r\n",
        "accept: text/plain\r\n",
        "user-agent: probe/1 (smoke test)\r\n",
    ] {
        assert!(lower.contains(line), "{line:?} not in {head}");
    }
    assert!(!lower.contains("fetchall/"), "{head}");
}

#[test]
fn malformed_options_are_usage_errors() {
    usage_errors(&[
        (&["-H", "no colon"][..], "is not 'NAME: VALUE'"),
        (&["-H", "Bad Name: x"], "is not a header name"),
        (&["-H", ": x"], "is not a header name"),
        (&["-H", "X-Bell: a\u{7}b"], "control character"),
        (&["-H", "Content-Length: 5"], "describes a request body"),
        (&["--user-agent", "a\nb"], "--user-agent"),
        (&["--accept", "600"], "'600' is not a status code"),
        (&["--accept", "300-200"], "is an empty range"),
        (&["--accept", ""], "is not a status code"),
        (&["--method", "POST"], "--method"),
        (&["--retries=-1"], "--retries"),
        (&["--max-redirects", "many"], "--max-redirects"),
    ]);
}

#[test]
fn insecure_warns_once_on_stderr() {
    let server = server();
    let url = server.url("/ok");
    let run = fetchall(&url, &["--insecure", "-q"]);
    assert_eq!(run.code(), Some(0));
    // In fetchall's own words, not as a log line.
    assert_eq!(
        run.stderr,
        "fetchall: warning: --insecure: TLS certificates and host names are not verified\n"
    );

    let run = fetchall(&url, &["-q"]);
    assert_eq!(run.stderr, "");
}

#[test]
fn proxies_come_from_the_environment_as_curl_reads_it() {
    let server = server();
    let proxy = TunnelProxy::start(server.addr());
    let url = server.url("/ok");
    // Sent whole, in absolute form, as curl and Python send http:// URLs to a proxy.
    let target = format!("GET {url} HTTP/1.1\r\n");
    let via = proxy.url();
    for (env, proxied) in [
        (&[("http_proxy", via.as_str())][..], true),
        (&[("all_proxy", via.as_str())], true),
        (&[("ALL_PROXY", via.as_str())], true),
        (
            &[("http_proxy", via.as_str()), ("no_proxy", "127.0.0.1")],
            false,
        ),
        (
            &[("http_proxy", via.as_str()), ("NO_PROXY", "127.0.0.0/8")],
            false,
        ),
        (&[("all_proxy", via.as_str()), ("no_proxy", "*")], false),
        // Upper-case HTTP_PROXY is ignored (httpoxy); https_proxy is for https:// URLs.
        (&[("HTTP_PROXY", via.as_str())], false),
        (
            &[("https_proxy", via.as_str()), ("HTTPS_PROXY", via.as_str())],
            false,
        ),
    ] {
        let run = fetch_one(&url, &[], env);
        assert_eq!(run.code(), Some(0), "{env:?}: {run:?}");
        let heads = proxy.received();
        if proxied {
            assert_eq!(heads.len(), 1, "{env:?}: {heads:?}");
            assert!(heads[0].starts_with(&target), "{}", heads[0]);
            let head = heads[0].to_ascii_lowercase();
            assert!(head.contains("\r\nuser-agent: fetchall/"), "{}", heads[0]);
        } else {
            assert!(heads.is_empty(), "{env:?} used the proxy: {heads:?}");
        }
    }
}

#[test]
fn https_urls_go_through_a_connect_tunnel() {
    let server = server();
    let proxy = TunnelProxy::start(server.addr());
    let via = proxy.url();
    // The tunnel reaches a plain-HTTP server, so the TLS handshake fails; the CONNECT is the point.
    let url = format!("https://{}/ok", server.addr());
    let run = fetch_one(&url, &[], &[("https_proxy", via.as_str())]);
    assert_eq!(run.code(), Some(1), "{run:?}");
    let heads = proxy.received();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let connect = format!("CONNECT {} HTTP/1.1\r\n", server.addr());
    assert!(heads[0].starts_with(&connect), "{}", heads[0]);
}

#[test]
fn an_unusable_proxy_fails_each_url_instead_of_going_around_it() {
    let server = server();
    let url = server.url("/ok");
    let run = fetch_one(&url, &[], &[("all_proxy", "ftp://127.0.0.1:9")]);
    let message = "unusable proxy in all_proxy: 'ftp://127.0.0.1:9' \
                   (a proxy is http://, https://, socks4://, socks4a://, socks5:// or socks5h://)";
    assert_eq!(run.stdout, exception(&url, message));
    assert_eq!(run.code(), Some(1));
    assert_eq!(server.connections_accepted(), 0);
}

#[test]
fn a_socks_proxy_is_used_not_gone_around() {
    let server = server();
    let url = server.url("/ok");
    let refused = fetchall_serve::testing::refused_addr();
    let proxy = format!("socks5h://{refused}");
    let run = fetch_one(&url, &[], &[("all_proxy", proxy.as_str())]);
    let message = "<urlopen error [Errno 111] Connection refused>";
    assert_eq!(run.stdout, exception(&url, message));
    assert_eq!(run.code(), Some(1));
    assert_eq!(server.connections_accepted(), 0);
}

#[test]
fn resolve_and_connect_to_reach_the_server_under_another_name() {
    let server = server();
    let port = server.addr().port();
    let url = format!("http://example.test:{port}/echo");
    let resolve = format!("example.test:{port}:127.0.0.1");
    let run = fetchall(&url, &["--resolve", &resolve]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let head = server.last_echo().expect("an /echo").to_ascii_lowercase();
    assert!(
        head.contains(&format!("\r\nhost: example.test:{port}\r\n")),
        "{head}"
    );

    let url = "http://example.test/echo";
    let connect_to = format!("example.test:80:127.0.0.1:{port}");
    let run = fetchall(url, &["--connect-to", &connect_to]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let head = server.last_echo().expect("an /echo").to_ascii_lowercase();
    assert!(head.contains("\r\nhost: example.test\r\n"), "{head}");
}

#[test]
fn bad_resolve_and_connect_to_values_are_usage_errors() {
    usage_errors(&[
        (
            &["--resolve", "example.test:80"][..],
            "'example.test:80' is not HOST:PORT:ADDR[,ADDR...]: no address",
        ),
        (
            &["--resolve", "example.test:80:localhost"],
            "'localhost' is not an IP address",
        ),
        (
            &["--connect-to", "example.test:80:other.test"],
            "is not HOST1:PORT1:HOST2:PORT2: it needs four parts",
        ),
        (
            &["--connect-to", "a.test:http::"],
            "'http' is not a port from 1 to 65535",
        ),
    ]);
}

#[test]
fn connect_to_through_a_proxy_tunnels_to_the_new_target() {
    let server = server();
    let proxy = TunnelProxy::start(server.addr());
    let via = proxy.url();
    let connect_to = format!("example.test:80:{}", server.addr());
    let run = fetch_one(
        "http://example.test/echo",
        &["--connect-to", &connect_to],
        &[("http_proxy", via.as_str())],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    let heads = proxy.received();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let tunnel = format!("CONNECT {} HTTP/1.1\r\n", server.addr());
    assert!(heads[0].starts_with(&tunnel), "{}", heads[0]);
    let head = server.last_echo().expect("an /echo").to_ascii_lowercase();
    assert!(head.starts_with("get /echo http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nhost: example.test\r\n"), "{head}");
}
