//! Proxies against a real one: tinyproxy, started here on a free port of
//! 127.0.0.1 with a configuration this file writes, relaying to the loopback server. tinyproxy
//! logs each request line it gets, which shows how fetchall sent it: `http://` URLs whole, in
//! absolute form, `https://` ones as `CONNECT`, with the credentials of the proxy URL checked by
//! tinyproxy's `BasicAuth`.
//!
//! Ignored by default, since tinyproxy is a system package: run them with
//! `cargo test -- --include-ignored`. They then fail, saying so, when tinyproxy is missing
//! (`testing::require`); `.ci/install-tools` installs it.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Instant;

use common::{GENEROUS, server, within};
use fetchall::fetch::{FetchError, FetchOptions, Fetcher, Proxies};
use fetchall_serve::testing::require;

/// The user name and password of the proxies started with `BasicAuth`.
const USER: &str = "fetchall";
const PASSWORD: &str = "s3cret";

/// A tinyproxy process of this test's, and what it has logged.
struct Tinyproxy {
    child: Child,
    port: u16,
    log: Receiver<String>,
    lines: Vec<String>,
}

impl Tinyproxy {
    /// Starts tinyproxy on a free loopback port, asking for [`USER`] and [`PASSWORD`] when
    /// `basic_auth`, and waits until it accepts connections.
    fn start(basic_auth: bool) -> Tinyproxy {
        // Fails the test, saying what to install, when tinyproxy is missing.
        require("tinyproxy", "-v");
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tinyproxy-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).expect("a directory for the configuration");
        // A port the OS just handed out and that was closed again: free unless taken meanwhile,
        // in which case tinyproxy says so and the test fails with its log.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 16\n\
             Allow 127.0.0.1\nDisableViaHeader Yes\n"
        );
        if basic_auth {
            config.push_str(&format!("BasicAuth {USER} {PASSWORD}\n"));
        }
        let path = dir.join("tinyproxy.conf");
        fs::write(&path, config).expect("write the configuration");
        // -d: stay in the foreground and log to standard output.
        let spawned = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = spawned.unwrap_or_else(|e| panic!("tinyproxy did not start: {e}"));
        let stdout = child.stdout.take().expect("standard output is piped");
        let (lines, log) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let mut proxy = Tinyproxy {
            child,
            port,
            log,
            lines: Vec::new(),
        };
        proxy.wait_for("Accepting connections");
        proxy
    }

    /// The proxy's URL, with the credentials when `credentials`.
    fn url(&self, credentials: bool) -> String {
        if credentials {
            format!("http://{USER}:{PASSWORD}@127.0.0.1:{}", self.port)
        } else {
            format!("http://127.0.0.1:{}", self.port)
        }
    }

    /// Waits until tinyproxy has logged a line containing `text`, and returns it.
    ///
    /// # Panics
    ///
    /// When tinyproxy exits or has not logged it within [`GENEROUS`].
    fn wait_for(&mut self, text: &str) -> String {
        if let Some(line) = self.lines.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + GENEROUS;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.lines.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "tinyproxy never logged {text:?}; its log:\n{:#?}",
                    self.lines
                ),
            }
        }
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fetcher with `var` set to `proxy`, as the environment would.
fn through(var: &'static str, proxy: String) -> Fetcher {
    let mut options = FetchOptions::default();
    options.timeout = GENEROUS;
    options.proxies = Proxies::from_vars(|name| (name == var).then(|| proxy.clone()));
    Fetcher::new(options)
}

#[test]
#[ignore = "needs tinyproxy"]
fn http_urls_reach_tinyproxy_whole_in_absolute_form() {
    let server = server();
    let mut proxy = Tinyproxy::start(false);
    let fetcher = through("http_proxy", proxy.url(false));
    let url = server.url("/echo");
    let fetched = url.clone();
    let page = within(GENEROUS, move || fetcher.load_url(&fetched)).expect("through tinyproxy");
    assert_eq!(page.status, 200);
    proxy.wait_for(&format!("): GET {url} HTTP/1.1"));
    // tinyproxy passed it on in origin form, as a proxy does.
    let head = server.last_echo().expect("an /echo");
    assert!(head.starts_with("GET /echo HTTP/1.1\r\n"), "{head}");
}

#[test]
#[ignore = "needs tinyproxy"]
fn tinyproxy_basic_auth_gets_the_proxy_urls_credentials() {
    let server = server();
    let mut proxy = Tinyproxy::start(true);
    let url = server.url("/ok");

    let without = through("http_proxy", proxy.url(false));
    let fetched = url.clone();
    let e = within(GENEROUS, move || without.load_url(&fetched)).expect_err("no credentials");
    assert_eq!(
        e.to_string(),
        "HTTP Error 407: Proxy Authentication Required"
    );

    let with = through("http_proxy", proxy.url(true));
    let fetched = url.clone();
    let page = within(GENEROUS, move || with.load_url(&fetched)).expect("with credentials");
    assert_eq!(page.status, 200);
    proxy.wait_for(&format!("): GET {url} HTTP/1.1"));
}

#[test]
#[ignore = "needs tinyproxy"]
fn https_urls_tunnel_through_tinyproxy_with_the_credentials() {
    let server = server();
    let mut proxy = Tinyproxy::start(true);
    let authority = server.addr().to_string();
    let url = format!("https://{authority}/ok");

    let without = through("https_proxy", proxy.url(false));
    let fetched = url.clone();
    let e = within(GENEROUS, move || without.load_url(&fetched)).expect_err("no credentials");
    assert!(e.to_string().contains("407"), "{e}");

    // With them the tunnel opens, and the TLS handshake then meets a plain-HTTP server.
    let with = through("https_proxy", proxy.url(true));
    let e = within(GENEROUS, move || with.load_url(&url)).expect_err("not a TLS server");
    assert!(matches!(e, FetchError::Tls(_)), "{e:?}");
    proxy.wait_for(&format!("): CONNECT {authority} HTTP/1.1"));
}

#[test]
#[ignore = "needs tinyproxy"]
fn connect_to_goes_through_tinyproxy_in_a_tunnel_to_the_new_target() {
    let server = server();
    let mut proxy = Tinyproxy::start(false);
    let mut options = FetchOptions::default();
    options.timeout = GENEROUS;
    let via = proxy.url(false);
    options.proxies = Proxies::from_vars(|name| (name == "http_proxy").then(|| via.clone()));
    options.connect_to = vec![
        format!("example.test:80:{}", server.addr())
            .parse()
            .expect("a valid entry"),
    ];
    let fetcher = Fetcher::new(options);
    let page = within(GENEROUS, move || {
        fetcher.load_url("http://example.test/echo")
    })
    .expect("through the tunnel");
    assert_eq!(page.status, 200);
    proxy.wait_for(&format!("): CONNECT {} HTTP/1.1", server.addr()));
    // Inside the tunnel the request is the URL's own.
    let head = server.last_echo().expect("an /echo").to_ascii_lowercase();
    assert!(head.starts_with("get /echo http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nhost: example.test\r\n"), "{head}");
}
