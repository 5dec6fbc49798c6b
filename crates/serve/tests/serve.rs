//! The loopback server seen from a raw TCP client: keep-alive, `Connection: close`, HEAD,
//! pipelining, garbage, and a `Drop` that ends every connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fetchall_serve::testing::{GENEROUS, server, within};
use fetchall_serve::{OK_BODY, Server};

/// A response as read off the wire.
#[derive(Debug)]
struct Response {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A hand-driven HTTP/1.1 client on one connection.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: &Server) -> Client {
        let stream = TcpStream::connect(server.addr()).expect("connect");
        // Never block a test forever on a server that does not answer.
        stream
            .set_read_timeout(Some(GENEROUS))
            .expect("read timeout");
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, raw: &[u8]) {
        self.reader.get_mut().write_all(raw).expect("send");
    }

    /// Sends `raw` and reads the response to it.
    fn exchange(&mut self, raw: &[u8]) -> Response {
        self.send(raw);
        self.response(true)
    }

    fn get(&mut self, path: &str) -> Response {
        self.exchange(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
    }

    /// Reads one response; its body only if `with_body` (a HEAD response promises one it does
    /// not send).
    fn response(&mut self, with_body: bool) -> Response {
        let mut status_line = String::new();
        self.reader
            .read_line(&mut status_line)
            .expect("status line");
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            status_line: status_line.trim_end().to_owned(),
            headers,
            body: Vec::new(),
        };
        if with_body {
            let length: usize = response
                .header("content-length")
                .map_or(0, |v| v.parse().expect("a length"));
            response.body = vec![0; length];
            self.reader.read_exact(&mut response.body).expect("body");
        }
        response
    }

    /// Whether the server has closed the connection: reading what is left ends (EOF or reset)
    /// instead of timing out.
    fn is_closed(&mut self) -> bool {
        match self.reader.read_to_end(&mut Vec::new()) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        }
    }
}

#[test]
fn keep_alive_serves_requests_in_turn_on_one_connection() {
    let server = server();
    let mut client = Client::connect(&server);
    let ok = client.get("/ok");
    assert_eq!(ok.status_line, "HTTP/1.1 200 OK");
    assert_eq!(ok.body, OK_BODY);
    assert_eq!(client.get("/bytes/5").body, b"xxxxx");
    assert_eq!(client.get("/ok?query=ignored").body, OK_BODY);
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = server();
    let mut client = Client::connect(&server);
    client.send(
        b"GET /bytes/1 HTTP/1.1\r\n\r\nGET /bytes/2 HTTP/1.1\r\n\r\nGET /bytes/3 HTTP/1.1\r\n\r\n",
    );
    for expected in [&b"x"[..], b"xx", b"xxx"] {
        assert_eq!(client.response(true).body, expected);
    }
}

#[test]
fn connection_close_is_honoured() {
    let server = server();
    let mut client = Client::connect(&server);
    let response = client.exchange(b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(response.header("connection"), Some("close"));
    assert!(client.is_closed());
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let server = server();
    let mut client = Client::connect(&server);
    assert_eq!(
        client
            .exchange(b"GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .body,
        OK_BODY
    );
    assert_eq!(client.exchange(b"GET /ok HTTP/1.0\r\n\r\n").body, OK_BODY);
    assert!(client.is_closed());
}

#[test]
fn head_sends_the_headers_only() {
    let server = server();
    let mut client = Client::connect(&server);
    client.send(b"HEAD /bytes/100 HTTP/1.1\r\n\r\n");
    let head = client.response(false);
    assert_eq!(head.header("content-length"), Some("100"));
    // Had any body bytes been sent, this response would not parse.
    assert_eq!(client.get("/ok").status_line, "HTTP/1.1 200 OK");
}

#[test]
fn status_routes_use_the_standard_reason_phrase() {
    let server = server();
    let mut client = Client::connect(&server);
    assert_eq!(
        client.get("/status/418").status_line,
        "HTTP/1.1 418 I'm a teapot"
    );
    let not_found = client.get("/status/404");
    assert_eq!(not_found.body, b"404 Not Found\n");
    let no_content = client.get("/status/204");
    assert_eq!(no_content.status_line, "HTTP/1.1 204 No Content");
    assert_eq!(no_content.header("content-length"), None);
    assert_eq!(client.get("/ok").body, OK_BODY);
}

#[test]
fn redirects_point_one_step_down() {
    let server = server();
    let mut client = Client::connect(&server);
    let redirect = client.get("/redirect/2");
    assert_eq!(redirect.status_line, "HTTP/1.1 302 Found");
    assert_eq!(redirect.header("location"), Some("/redirect/1"));
    let redirect = client.get("/redirect-loop");
    assert_eq!(redirect.header("location"), Some("/redirect-loop"));
    assert_eq!(client.get("/redirect/0").body, OK_BODY);
}

#[test]
fn unknown_paths_and_methods_are_refused() {
    let server = server();
    let mut client = Client::connect(&server);
    assert_eq!(client.get("/nowhere").status_line, "HTTP/1.1 404 Not Found");
    let response = client.exchange(b"POST /ok HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(response.status_line, "HTTP/1.1 405 Method Not Allowed");
    assert!(client.is_closed());
}

#[test]
fn garbage_gets_a_400_and_the_server_carries_on() {
    let server = server();
    let mut client = Client::connect(&server);
    // The start of a TLS ClientHello.
    assert_eq!(
        client
            .exchange(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            .status_line,
        "HTTP/1.1 400 Bad Request"
    );
    assert!(client.is_closed());

    let mut client = Client::connect(&server);
    assert_eq!(
        client.exchange(b"GET /ok\r\n\r\n").status_line,
        "HTTP/1.1 400 Bad Request"
    );

    assert_eq!(Client::connect(&server).get("/ok").body, OK_BODY);
}

#[test]
fn an_oversized_head_gets_a_431() {
    let server = server();
    let mut client = Client::connect(&server);
    let padding = "a".repeat(20 * 1024);
    client.send(format!("GET /ok HTTP/1.1\r\nX-Padding: {padding}\r\n\r\n").as_bytes());
    let response = client.response(true);
    assert_eq!(
        response.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

#[test]
fn connections_are_counted() {
    let server = server();
    for _ in 0..3 {
        Client::connect(&server).get("/ok");
    }
    assert_eq!(server.connections_accepted(), 3);
}

#[test]
fn dropping_the_server_ends_every_connection() {
    let server = server();
    let mut idle = Client::connect(&server);
    idle.get("/ok");
    let mut dripping = Client::connect(&server);
    dripping.send(b"GET /drip/1000 HTTP/1.1\r\n\r\n");
    dripping.response(false);
    let mut sleeping = Client::connect(&server);
    sleeping.send(b"GET /sleep/1000000 HTTP/1.1\r\n\r\n");
    let mut hanging = Client::connect(&server);
    hanging.send(b"GET /hang HTTP/1.1\r\n\r\n");

    let took = within(GENEROUS, move || {
        let started = Instant::now();
        drop(server);
        started.elapsed()
    });
    assert!(took < Duration::from_secs(10), "drop took {took:?}");
    for client in [&mut idle, &mut dripping, &mut sleeping, &mut hanging] {
        assert!(client.is_closed());
    }
}
