//! Request heads: [`parse_head`] turns the bytes a client sent into a [`Request`], and
//! [`parse_target`] its target into a [`Route`] (with the optional `/sleep/MS` prefix). Pure
//! functions, so every way a head can be malformed is a unit test here.

use std::str::FromStr;
use std::time::Duration;

/// A request method the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Other,
}

/// The request body a client announced. The routes ignore it, but it must be read past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestBody {
    None,
    Length(u64),
    Chunked,
}

/// What a request asks for: one of the routes in the crate docs' table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Ok,
    Bytes(u64),
    Status(u16),
    Redirect(u32),
    RedirectLoop,
    Hang,
    Drip(u64),
    Truncate,
    Reset,
    Malformed,
    Close,
    Echo,
    Flaky {
        key: String,
        failures: u64,
        failure: Box<Route>,
    },
    RetryAfter(u64),
    Stale,
    /// `/text/TEXT`: the decoded text as the body.
    Text(Vec<u8>),
    /// Not a built-in route: 404.
    Other(String),
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) delay: Option<Duration>,
    pub(crate) route: Route,
    pub(crate) close: bool,
    pub(crate) body: RequestBody,
    /// Length of the head when it was only peeked at, and is still in the socket.
    pub(crate) unread: usize,
    /// The head itself, kept only for `/echo`.
    pub(crate) head: Option<String>,
}

/// What [`parse_head`] made of the bytes so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A request, and the length of its head.
    Complete(Request, usize),
    /// No blank line yet: read more.
    Partial,
    /// Not HTTP/1.x.
    Invalid,
}

/// Parses a request head from the start of `buf`. Never panics, whatever the bytes.
pub(crate) fn parse_head(buf: &[u8]) -> Parsed {
    // Reject what cannot be a request line before waiting for the end of the head: a TLS
    // handshake sent to this plain-HTTP server gets its 400 at once instead of a silent wait.
    let first_line = match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) => &buf[..end],
        None => buf.strip_suffix(b"\r").unwrap_or(buf),
    };
    if first_line.iter().any(|b| !(0x20..0x7f).contains(b)) {
        return Parsed::Invalid;
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Parsed::Partial;
    };
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Parsed::Invalid;
    };
    let mut lines = head.split("\r\n");
    let mut words = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Parsed::Invalid;
    };
    let mut close = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Parsed::Invalid,
    };
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    let mut body = RequestBody::None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parsed::Invalid;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) => body = RequestBody::Length(n),
                Err(_) => return Parsed::Invalid,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            body = RequestBody::Chunked;
        }
    }
    let (delay, route) = parse_target(target);
    let request = Request {
        method,
        delay,
        head: (route == Route::Echo).then(|| format!("{head}\r\n")),
        route,
        close,
        body,
        unread: 0,
    };
    Parsed::Complete(request, end + 4)
}

/// The optional `/sleep/MS` prefix and the route of a request target.
fn parse_target(target: &str) -> (Option<Duration>, Route) {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if let Some(rest) = path.strip_prefix("/sleep/") {
        let (ms, route) = match rest.find('/') {
            Some(slash) => (&rest[..slash], parse_route(&rest[slash..])),
            None => (rest, Route::Ok),
        };
        if let Ok(ms) = ms.parse() {
            return (Some(Duration::from_millis(ms)), route);
        }
    }
    (None, parse_route(path))
}

fn parse_route(path: &str) -> Route {
    match path {
        "/ok" => Route::Ok,
        "/redirect-loop" => Route::RedirectLoop,
        "/hang" => Route::Hang,
        "/truncate" => Route::Truncate,
        "/reset" => Route::Reset,
        "/malformed" => Route::Malformed,
        "/close" => Route::Close,
        "/echo" => Route::Echo,
        "/stale" => Route::Stale,
        _ => {
            if let Some(n) = number(path, "/bytes/") {
                Route::Bytes(n)
            } else if let Some(code @ 200..=599) = number(path, "/status/") {
                Route::Status(code)
            } else if let Some(n) = number(path, "/redirect/") {
                Route::Redirect(n)
            } else if let Some(n) = number(path, "/drip/") {
                Route::Drip(n)
            } else if let Some(secs) = number(path, "/retry-after/") {
                Route::RetryAfter(secs)
            } else if let Some(flaky) = path.strip_prefix("/flaky/").and_then(parse_flaky) {
                flaky
            } else if let Some(text) = path.strip_prefix("/text/") {
                Route::Text(percent_decoded(text))
            } else {
                Route::Other(path.to_owned())
            }
        }
    }
}

/// `KEY/N` or `KEY/N/ROUTE...`, the rest of a `/flaky/` path.
fn parse_flaky(rest: &str) -> Option<Route> {
    let (key, rest) = rest.split_once('/')?;
    let (failures, failure) = match rest.find('/') {
        Some(slash) => (&rest[..slash], parse_route(&rest[slash..])),
        None => (rest, Route::Status(503)),
    };
    Some(Route::Flaky {
        key: key.to_owned(),
        failures: failures.parse().ok()?,
        failure: Box::new(failure),
    })
}

/// `text` with each `%XX` turned into its byte; a `%` without two hex digits stays as it is.
fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        let byte = hex.and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match byte {
            Some(byte) if bytes[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// The number after `prefix` in `path`, if that is all there is.
fn number<T: FromStr>(path: &str, prefix: &str) -> Option<T> {
    path.strip_prefix(prefix)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(route: Route) -> Request {
        Request {
            method: Method::Get,
            delay: None,
            route,
            close: false,
            body: RequestBody::None,
            unread: 0,
            head: None,
        }
    }

    #[test]
    fn parses_a_request_head() {
        let raw = b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\nGET /ok";
        assert_eq!(
            parse_head(raw),
            Parsed::Complete(request(Route::Bytes(10)), raw.len() - 7)
        );
    }

    #[test]
    fn connection_header_decides_keep_alive() {
        let Parsed::Complete(r, _) = parse_head(b"GET /ok HTTP/1.1\r\nConnection: Close\r\n\r\n")
        else {
            panic!("not parsed");
        };
        assert!(r.close);
        let Parsed::Complete(r, _) = parse_head(b"GET /ok HTTP/1.0\r\n\r\n") else {
            panic!("not parsed");
        };
        assert!(r.close);
        let Parsed::Complete(r, _) =
            parse_head(b"HEAD /ok HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
        else {
            panic!("not parsed");
        };
        assert!(!r.close);
        assert_eq!(r.method, Method::Head);
    }

    #[test]
    fn request_bodies_are_noticed() {
        let Parsed::Complete(r, _) =
            parse_head(b"POST /ok HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        else {
            panic!("not parsed");
        };
        assert_eq!((r.method, r.body), (Method::Other, RequestBody::Length(5)));
    }

    #[test]
    fn garbage_is_invalid_or_partial_never_a_panic() {
        assert_eq!(parse_head(b"GET /ok HTTP/1.1\r\nHost"), Parsed::Partial);
        assert_eq!(parse_head(b""), Parsed::Partial);
        for garbage in [
            &b"\r\n\r\n"[..],
            b"GET /ok\r\n\r\n",
            b"GET /ok HTTP/2.0\r\n\r\n",
            b"GET  /ok HTTP/1.1\r\n\r\n",
            b"GET /ok HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET /ok HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"\xff\xfe /ok HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"GET /ok\n",
        ] {
            assert_eq!(parse_head(garbage), Parsed::Invalid, "{garbage:?}");
        }
    }

    #[test]
    fn routes() {
        let cases = [
            ("/ok", Route::Ok),
            ("/ok?x=1", Route::Ok),
            ("/bytes/0", Route::Bytes(0)),
            ("/bytes/5000000000", Route::Bytes(5_000_000_000)),
            ("/status/503", Route::Status(503)),
            ("/status/99", Route::Other("/status/99".into())),
            ("/status/600", Route::Other("/status/600".into())),
            ("/redirect/3", Route::Redirect(3)),
            ("/redirect-loop", Route::RedirectLoop),
            ("/drip/4", Route::Drip(4)),
            ("/echo", Route::Echo),
            ("/stale", Route::Stale),
            ("/retry-after/7", Route::RetryAfter(7)),
            ("/retry-after/x", Route::Other("/retry-after/x".into())),
            ("/text/Hi%20there%2", Route::Text(b"Hi there%2".to_vec())),
            ("/text/%zz%+1%C3%A9", Route::Text("%zz%+1é".into())),
            (
                "/flaky/a/2",
                Route::Flaky {
                    key: "a".into(),
                    failures: 2,
                    failure: Box::new(Route::Status(503)),
                },
            ),
            (
                "/flaky/b/1/close",
                Route::Flaky {
                    key: "b".into(),
                    failures: 1,
                    failure: Box::new(Route::Close),
                },
            ),
            ("/flaky/a", Route::Other("/flaky/a".into())),
            ("/flaky/a/x", Route::Other("/flaky/a/x".into())),
            ("/bytes/x", Route::Other("/bytes/x".into())),
            ("/", Route::Other("/".into())),
        ];
        for (target, route) in cases {
            assert_eq!(parse_target(target), (None, route), "{target}");
        }
    }

    #[test]
    fn sleep_prefixes_any_route() {
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(parse_target("/sleep/20"), (ms(20), Route::Ok));
        assert_eq!(parse_target("/sleep/20/bytes/7"), (ms(20), Route::Bytes(7)));
        assert_eq!(
            parse_target("/sleep/20/status/500"),
            (ms(20), Route::Status(500))
        );
        assert_eq!(
            parse_target("/sleep/x/ok"),
            (None, Route::Other("/sleep/x/ok".into()))
        );
    }
}
