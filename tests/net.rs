//! Where a fetch connects, through the public API: `--resolve` and
//! `--connect-to` entries, the race between a host's addresses, and proxies: an HTTP proxy that
//! gets `http://` URLs whole and `https://` ones as `CONNECT`, credentials, and SOCKS5. The
//! proxies here are small ones written in this file, on 127.0.0.1; `tests/tinyproxy.rs` runs the
//! same requests through a real one.

mod common;

use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::Sender;
use std::thread;
use std::time::{Duration, Instant};

use common::{GENEROUS, fetcher_with, refused_addr, server, within};
use fetchall::fetch::{FetchError, Fetcher, Proxies};
use fetchall_serve::testing::{Loopback, full_backlog, full_backlog_at, read_head};
use ureq::http::HeaderValue;

/// `--resolve` and `--connect-to` entries, parsed.
fn entries<T: std::str::FromStr>(texts: &[String]) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    texts
        .iter()
        .map(|t| t.parse().expect("a valid entry"))
        .collect()
}

/// The head of the last `/echo` the server answered, lower case.
fn echoed(server: &fetchall_serve::Server) -> String {
    server.last_echo().expect("an /echo").to_ascii_lowercase()
}

#[test]
fn resolve_gives_a_name_its_address_and_the_request_keeps_the_name() {
    let server = server();
    let port = server.addr().port();
    let fetcher = fetcher_with(|o| {
        o.resolve = entries(&[format!("Example.TEST:{port}:127.0.0.1")]);
    });
    let url = format!("http://example.test:{port}/echo");
    let page = within(GENEROUS, move || fetcher.load_url(&url)).expect("fetched");
    assert_eq!(page.status, 200);
    let head = echoed(&server);
    assert!(head.starts_with("get /echo http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nhost: example.test:{port}\r\n")),
        "{head}"
    );
}

#[test]
fn connect_to_sends_the_connection_elsewhere_and_the_request_keeps_the_url() {
    let server = server();
    let port = server.addr().port();
    for connect_to in [
        vec![format!("example.test:80:127.0.0.1:{port}")],
        vec![format!("::127.0.0.1:{port}")],
        vec![
            "other.test:80:nowhere.test:1".to_owned(),
            format!("example.test::127.0.0.1:{port}"),
        ],
    ] {
        let fetcher = fetcher_with(|o| o.connect_to = entries(&connect_to));
        let page = within(GENEROUS, move || {
            fetcher.load_url("http://example.test/echo")
        });
        assert_eq!(page.expect("fetched").status, 200, "{connect_to:?}");
        let head = echoed(&server);
        assert!(head.contains("\r\nhost: example.test\r\n"), "{head}");
    }
}

#[test]
fn the_host_connect_to_names_is_resolved_with_resolve_first() {
    let server = server();
    let port = server.addr().port();
    let fetcher = fetcher_with(|o| {
        o.connect_to = entries(&[format!("example.test:80:backend.test:{port}")]);
        o.resolve = entries(&[format!("backend.test:{port}:127.0.0.1")]);
    });
    let page = within(GENEROUS, move || {
        fetcher.load_url("http://example.test/echo")
    });
    assert_eq!(page.expect("fetched").status, 200);
    assert!(echoed(&server).contains("\r\nhost: example.test\r\n"));
}

#[test]
fn a_name_with_several_addresses_is_fetched_through_the_race() {
    let server = server();
    let port = server.addr().port();
    let fetcher = fetcher_with(|o| {
        o.resolve = entries(&[format!("example.test:{port}:127.0.0.1,127.0.0.1")]);
    });
    let url = format!("http://example.test:{port}/echo");
    let page = within(GENEROUS, move || fetcher.load_url(&url)).expect("fetched");
    assert_eq!(page.status, 200);
    assert!(echoed(&server).contains(&format!("\r\nhost: example.test:{port}\r\n")));
}

#[test]
fn a_first_address_that_drops_syns_costs_the_race_delay_not_a_share_of_the_deadline() {
    let server = server();
    let port = server.addr().port();
    // The server's port on another loopback address, with a full accept queue: a connect to
    // it hangs, as one to a host that drops SYNs does.
    let hanging = full_backlog_at(SocketAddr::from(([127, 0, 0, 2], port)));
    let fetcher = fetcher_with(|o| {
        o.timeout = Duration::from_secs(60);
        o.resolve = entries(&[format!("example.test:{port}:127.0.0.2,127.0.0.1")]);
    });
    let url = format!("http://example.test:{port}/echo");
    let started = Instant::now();
    let page = within(GENEROUS, move || fetcher.load_url(&url)).expect("fetched");
    let took = started.elapsed();
    assert_eq!(page.status, 200, "the good address answered");
    // Sequential shares of the deadline would have spent 30 s on the first address; the race
    // starts the second after 250 ms. The bound only has to tell the two apart on a loaded
    // machine.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(hanging);
}

#[test]
fn when_every_address_refuses_the_error_is_the_refusal() {
    let port = refused_addr().port();
    let fetcher = fetcher_with(|o| {
        o.resolve = entries(&[format!("example.test:{port}:127.0.0.1,127.0.0.1")]);
    });
    let url = format!("http://example.test:{port}/");
    let e = within(GENEROUS, move || fetcher.load_url(&url)).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "<urlopen error [Errno 111] Connection refused>"
    );
}

#[test]
fn addresses_that_drop_syns_time_out_as_a_connect() {
    let full = full_backlog();
    let port = full.addr().port();
    let fetcher = fetcher_with(|o| {
        o.timeout = Duration::from_millis(800);
        o.resolve = entries(&[format!("example.test:{port}:127.0.0.1,127.0.0.1")]);
    });
    let url = format!("http://example.test:{port}/");
    let e = within(GENEROUS, move || fetcher.load_url(&url)).expect_err("times out");
    assert!(
        matches!(e, FetchError::Timeout { .. }),
        "{e:?}: a timeout, not a share of the deadline per address"
    );
    assert!(
        e.to_string().starts_with("timed out (connect, after "),
        "{e}"
    );
}

/// How many requests one proxy connection answers at most: the serving loop is bounded.
const MAX_REQUESTS: usize = 16;

/// The body the recording proxy answers every request with.
const PROXY_BODY: &[u8] = b"from the proxy";

/// An HTTP proxy that reports each request head it gets and answers it itself, without
/// contacting anything: `200` with [`PROXY_BODY`] to a request, `407` to a `CONNECT`.
fn recording_proxy(client: TcpStream, seen: &Sender<String>) -> io::Result<()> {
    client.set_read_timeout(Some(GENEROUS))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    for _ in 0..MAX_REQUESTS {
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let _ = seen.send(head.clone());
        if head.starts_with("CONNECT ") {
            return client.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
            );
        }
        let length = PROXY_BODY.len();
        write!(
            client,
            "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n"
        )?;
        client.write_all(PROXY_BODY)?;
    }
    Ok(())
}

/// The proxies that `vars`, as environment variables, name.
fn from_vars(vars: &[(&str, String)]) -> Proxies {
    Proxies::from_vars(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
}

/// A fetcher with the proxies `vars` name.
fn proxied(vars: &[(&str, String)]) -> Fetcher {
    fetcher_with(|o| o.proxies = from_vars(vars))
}

#[test]
fn http_urls_go_to_an_http_proxy_whole_in_absolute_form() {
    let proxy = Loopback::start(recording_proxy);
    let fetcher = proxied(&[("http_proxy", proxy.url("http://"))]);
    let page = within(GENEROUS, move || {
        let first = fetcher.load_url("http://example.test:8080/a?b=1");
        let second = fetcher.load_url("http://example.test:8080/c");
        first.and(second)
    })
    .expect("the proxy answers");
    assert_eq!(page.bytes, PROXY_BODY.len() as u64);
    let heads = proxy.seen();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(
        heads[0].starts_with("GET http://example.test:8080/a?b=1 HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    // The second request went out on the kept-alive connection, in absolute form too.
    assert!(
        heads[1].starts_with("GET http://example.test:8080/c HTTP/1.1\r\n"),
        "{}",
        heads[1]
    );
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("\r\nhost: example.test:8080\r\n"), "{head}");
        assert!(!lower.contains("proxy-authorization"), "{head}");
    }
}

#[test]
fn proxy_credentials_are_sent_as_proxy_authorization_both_ways() {
    let proxy = Loopback::start(recording_proxy);
    let with_credentials = proxy.url("http://user:p%40ss@");
    let fetcher = proxied(&[
        ("http_proxy", with_credentials.clone()),
        ("https_proxy", with_credentials),
    ]);
    let (page, tunnel) = within(GENEROUS, move || {
        (
            fetcher.load_url("http://example.test/"),
            fetcher.load_url("https://example.test/"),
        )
    });
    assert_eq!(page.expect("the proxy answers").status, 200);
    let e = tunnel.expect_err("the proxy refuses the tunnel");
    assert!(e.to_string().contains("407"), "{e}");
    let heads = proxy.seen();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads[0].starts_with("GET http://example.test/ HTTP/1.1\r\n"));
    assert!(heads[1].starts_with("CONNECT example.test:443 HTTP/1.1\r\n"));
    for head in &heads {
        // base64("user:p@ss"): the password is percent-decoded first.
        assert!(
            head.contains("\r\nProxy-Authorization: Basic dXNlcjpwQHNz\r\n"),
            "{head}"
        );
    }
}

#[test]
fn a_proxy_authorization_of_the_requests_own_replaces_the_proxy_urls() {
    // With a short head, and with one longer than a connection's first 8 KiB of output.
    for padding in [0, 8100] {
        let proxy = Loopback::start(recording_proxy);
        let proxy_url = proxy.url("http://user:pass@");
        let long = HeaderValue::from_str(&"x".repeat(padding)).expect("value");
        let fetcher = fetcher_with(move |o| {
            o.proxies = from_vars(&[("http_proxy", proxy_url)]);
            o.headers.insert("x-long", long);
            o.headers.insert(
                "proxy-authorization",
                HeaderValue::from_static("Basic b3duOm93bg=="),
            );
        });
        let page = within(GENEROUS, move || fetcher.load_url("http://example.test/"));
        assert_eq!(page.expect("the proxy answers").status, 200);
        let heads = proxy.seen();
        assert_eq!(heads.len(), 1, "{heads:?}");
        let lower = heads[0].to_ascii_lowercase();
        let lines = lower.matches("\r\nproxy-authorization: ").count();
        assert_eq!(lines, 1, "{padding}: {lower:.300}");
        assert!(lower.contains("\r\nproxy-authorization: basic b3duom93bg==\r\n"));
    }
}

/// Copies bytes both ways between `client` and `upstream` until either side closes.
fn relay(client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    upstream.set_read_timeout(Some(GENEROUS))?;
    let mut to_client = client.try_clone()?;
    let mut from_upstream = upstream.try_clone()?;
    let back = thread::spawn(move || {
        let copied = io::copy(&mut from_upstream, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
        copied
    });
    let _ = io::copy(&mut &client, &mut &upstream);
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}

fn read_bytes(client: &mut &TcpStream, n: usize) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0; n];
    client.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// A SOCKS5 server (RFC 1928, with RFC 1929 passwords): reports the address it is asked to
/// connect to (`user:password@` first when a password was given), then relays to `target`,
/// whatever it was asked for: nothing but `target` is ever contacted.
fn socks5(client: TcpStream, seen: &Sender<String>, target: SocketAddr) -> io::Result<()> {
    client.set_read_timeout(Some(GENEROUS))?;
    let mut c = &client;
    let greeting = read_bytes(&mut c, 2)?;
    let methods = read_bytes(&mut c, usize::from(greeting[1]))?;
    let mut credentials = String::new();
    if methods.contains(&2) {
        c.write_all(&[5, 2])?;
        let user_length = read_bytes(&mut c, 2)?[1];
        let user = read_bytes(&mut c, usize::from(user_length))?;
        let password_length = read_bytes(&mut c, 1)?[0];
        let password = read_bytes(&mut c, usize::from(password_length))?;
        credentials = format!(
            "{}:{}@",
            String::from_utf8_lossy(&user),
            String::from_utf8_lossy(&password)
        );
        c.write_all(&[1, 0])?;
    } else {
        c.write_all(&[5, 0])?;
    }
    let request = read_bytes(&mut c, 4)?;
    let host = match request[3] {
        1 => {
            let octets: [u8; 4] = read_bytes(&mut c, 4)?.try_into().expect("4 bytes");
            Ipv4Addr::from(octets).to_string()
        }
        3 => {
            let length = read_bytes(&mut c, 1)?[0];
            String::from_utf8_lossy(&read_bytes(&mut c, usize::from(length))?).into_owned()
        }
        4 => {
            let octets: [u8; 16] = read_bytes(&mut c, 16)?.try_into().expect("16 bytes");
            format!("[{}]", Ipv6Addr::from(octets))
        }
        other => return Err(io::Error::other(format!("address type {other}"))),
    };
    let port = read_bytes(&mut c, 2)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    let _ = seen.send(format!("{credentials}{host}:{port}"));
    let upstream = TcpStream::connect(target)?;
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    relay(client, upstream)
}

#[test]
fn socks5h_hands_the_proxy_the_name_and_socks5_an_address() {
    let server = server();
    let target = server.addr();
    let port = target.port();
    let proxy = Loopback::start(move |client, seen| socks5(client, seen, target));
    let url = format!("http://example.test:{port}/ok");

    let fetcher = proxied(&[("all_proxy", proxy.url("socks5h://"))]);
    let fetched = url.clone();
    let page = within(GENEROUS, move || fetcher.load_url(&fetched)).expect("through socks5h");
    assert_eq!(page.status, 200);
    assert_eq!(proxy.seen(), [format!("example.test:{port}")]);

    // socks5 resolves here, so the name needs an address: --resolve gives it one.
    let vars = [("all_proxy", proxy.url("socks5://user:pass@"))];
    let fetcher = fetcher_with(|o| {
        o.proxies = from_vars(&vars);
        o.resolve = entries(&[format!("example.test:{port}:127.0.0.1")]);
    });
    let page = within(GENEROUS, move || fetcher.load_url(&url)).expect("through socks5");
    assert_eq!(page.status, 200);
    assert_eq!(proxy.seen(), [format!("user:pass@127.0.0.1:{port}")]);
}

#[test]
fn a_connect_answer_without_a_reason_phrase_opens_the_tunnel() {
    let server = server();
    let backend = server.addr();
    // `HTTP/1.1 200` and a header: the status line ends at its CRLF, with no reason phrase.
    let proxy = Loopback::start(move |client: TcpStream, seen: &Sender<String>| {
        client.set_read_timeout(Some(GENEROUS))?;
        let Some(head) = read_head(&mut BufReader::new(client.try_clone()?))? else {
            return Ok(());
        };
        let _ = seen.send(head);
        (&client).write_all(b"HTTP/1.1 200\r\nVia: 1.1 test\r\n\r\n")?;
        relay(client, TcpStream::connect(backend)?)
    });
    let via = proxy.url("http://");
    let fetcher = fetcher_with(|o| {
        o.proxies = from_vars(&[("http_proxy", via)]);
        o.connect_to = entries(&["example.test::backend.test:8443".to_owned()]);
    });
    let page = within(GENEROUS, move || fetcher.load_url("http://example.test/ok"))
        .expect("through the tunnel");
    assert_eq!(page.status, 200);
    assert!(proxy.seen()[0].starts_with("CONNECT backend.test:8443 "));
}

#[test]
fn connect_to_through_an_http_proxy_tunnels_to_the_new_target_as_curl_does() {
    let proxy = Loopback::start(recording_proxy);
    let with_credentials = proxy.url("http://user:p%40ss@");
    let fetcher = fetcher_with(|o| {
        o.proxies = from_vars(&[
            ("http_proxy", with_credentials.clone()),
            ("https_proxy", with_credentials),
        ]);
        o.connect_to = entries(&["example.test::backend.test:8443".to_owned()]);
    });
    let (plain, tls) = within(GENEROUS, move || {
        (
            fetcher.load_url("http://example.test/"),
            fetcher.load_url("https://example.test/"),
        )
    });
    // The recording proxy refuses every tunnel; what it was asked for is the point.
    for result in [plain, tls] {
        let e = result.expect_err("the proxy refuses the tunnel");
        assert_eq!(
            e.to_string(),
            "CONNECT proxy failed: proxy server responded 407"
        );
    }
    let heads = proxy.seen();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for head in &heads {
        assert!(
            head.starts_with("CONNECT backend.test:8443 HTTP/1.1\r\nHost: backend.test:8443\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\nProxy-Authorization: Basic dXNlcjpwQHNz\r\n"),
            "{head}"
        );
    }
}

#[test]
fn http_urls_go_whole_to_an_https_proxy_over_tls_to_the_proxy() {
    use fetchall::fetch::Trust;
    use fetchall_serve::tls::{Ca, LOCALHOST, TlsFront};

    let proxy = Loopback::start(recording_proxy);
    let ca = Ca::new("fetchall test proxy CA");
    let front = TlsFront::start(proxy.addr(), &ca.leaf(&LOCALHOST)).expect("TLS front");
    let via = format!("https://user:pass@{}", front.addr());
    let fetcher = fetcher_with(|o| {
        o.proxies = from_vars(&[("http_proxy", via)]);
        o.trust = Trust::from_pem(ca.cert_pem().as_bytes()).expect("the test CA");
    });
    let page = within(GENEROUS, move || {
        fetcher.load_url("http://example.test:8080/p")
    })
    .expect("through the https proxy");
    assert_eq!(page.bytes, PROXY_BODY.len() as u64);
    // The page came over plain http: the TLS to the proxy is not the page's.
    assert!(page.tls.is_none(), "{:?}", page.tls);
    let heads = proxy.seen();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with("GET http://example.test:8080/p HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    // base64("user:pass")
    assert!(heads[0].contains("\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n"));
    assert_eq!(front.connections_accepted(), 1);
}
