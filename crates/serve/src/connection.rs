//! One accepted connection, served request after request until either side closes:
//! [`Connection::next_request`] reads a head, [`Connection::respond`] answers it by its route,
//! and the `send_*` methods write the response.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use http::StatusCode;

use crate::registry::{Pause, Shared};
use crate::request::{Method, Parsed, Request, RequestBody, Route, parse_head};
use crate::{OK_BODY, TRUNCATE_LENGTH, TRUNCATE_SENT};

/// The `Content-Length` `/reset` promises, and the bytes it sends before the reset.
const RESET_LENGTH: u64 = 100_000;
const RESET_SENT: u64 = 1000;

/// The largest request head (request line and headers) read; a larger one gets `431`.
const MAX_HEAD: usize = 16 * 1024;

/// No extra header, for [`Connection::begin`].
const NO_HEADER: (&str, &str) = ("", "");

/// The bytes `/bytes/N` and the partial bodies are written from.
static FILL: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// The standard reason phrase for `code`, or `Unknown`.
fn reason(code: u16) -> &'static str {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Unknown")
}

/// Whether the connection serves another request after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reuse {
    /// Keep-alive: read the next request.
    KeepAlive,
    /// Say `Connection: close`, and close after the response.
    Close,
}

/// Whether a response carries the body its head describes: not for `HEAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Send,
    Omit,
}

/// How the responses to one request go out.
#[derive(Debug, Clone, Copy)]
struct Framing {
    reuse: Reuse,
    body: Body,
}

impl Framing {
    /// The same, but closing the connection after the response.
    fn closing(self) -> Framing {
        Framing {
            reuse: Reuse::Close,
            ..self
        }
    }
}

/// What [`Connection::next_request`] found.
enum Incoming {
    Request(Request),
    /// Garbage or an oversized head: answer with this status and close.
    Invalid(u16),
    Closed,
}

/// One accepted connection, served request after request until either side closes.
pub(crate) struct Connection<'a> {
    stream: TcpStream,
    shared: &'a Shared,
    /// Request bytes read from the socket but not yet used: `input[..buffered]`.
    input: Box<[u8]>,
    buffered: usize,
    /// The response head (and a small body), reused for every response.
    out: Vec<u8>,
    /// Set by `/stale`: the next request is read and answered by closing the connection.
    stale: bool,
}

impl<'a> Connection<'a> {
    /// A connection on `stream`, with nothing read yet.
    pub(crate) fn new(stream: TcpStream, shared: &'a Shared) -> Self {
        Connection {
            stream,
            shared,
            input: vec![0; MAX_HEAD].into_boxed_slice(),
            buffered: 0,
            out: Vec::with_capacity(1024),
            stale: false,
        }
    }

    /// Serves requests until the client closes, a response closes, or the server stops.
    pub(crate) fn run(mut self) {
        let invalid = Framing {
            reuse: Reuse::Close,
            body: Body::Send,
        };
        loop {
            let reuse = match self.next_request() {
                Ok(Incoming::Request(request)) => self.respond(&request),
                Ok(Incoming::Invalid(code)) => self.send(code, invalid, &[]),
                Ok(Incoming::Closed) | Err(_) => return,
            };
            if !matches!(reuse, Ok(Reuse::KeepAlive)) {
                return;
            }
        }
    }

    /// Reads the next request head.
    ///
    /// With nothing buffered, the head is first only peeked at: it stays in the socket until
    /// [`Connection::respond`] consumes it. That is what lets `/reset` close the socket with
    /// unread data, the one way std offers to make the kernel send an RST (`set_linger` is
    /// unstable). A head that arrives in pieces is read the ordinary way.
    fn next_request(&mut self) -> io::Result<Incoming> {
        loop {
            if self.buffered > 0 {
                match parse_head(&self.input[..self.buffered]) {
                    Parsed::Complete(request, len) => {
                        self.input.copy_within(len..self.buffered, 0);
                        self.buffered -= len;
                        return Ok(Incoming::Request(request));
                    }
                    Parsed::Invalid => return Ok(Incoming::Invalid(400)),
                    Parsed::Partial if self.buffered == self.input.len() => {
                        return Ok(Incoming::Invalid(431));
                    }
                    Parsed::Partial => {}
                }
            } else {
                let n = self.stream.peek(&mut self.input)?;
                if n == 0 {
                    return Ok(Incoming::Closed);
                }
                if let Parsed::Complete(mut request, len) = parse_head(&self.input[..n]) {
                    request.unread = len;
                    return Ok(Incoming::Request(request));
                }
            }
            let n = self.stream.read(&mut self.input[self.buffered..])?;
            if n == 0 {
                return Ok(Incoming::Closed);
            }
            self.buffered += n;
        }
    }

    /// Reads past the request: the peeked head and any body.
    fn consume(&mut self, request: &Request) -> io::Result<()> {
        self.stream.read_exact(&mut self.input[..request.unread])?;
        if let RequestBody::Length(n) = request.body {
            let from_buffer = n.min(self.buffered as u64) as usize;
            self.input.copy_within(from_buffer..self.buffered, 0);
            self.buffered -= from_buffer;
            let rest = n - from_buffer as u64;
            if io::copy(&mut (&self.stream).take(rest), &mut io::sink())? < rest {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// Answers one request, and says whether the connection serves another.
    fn respond(&mut self, request: &Request) -> io::Result<Reuse> {
        if request.route != Route::Reset {
            self.consume(request)?;
        }
        if self.stale {
            return Ok(Reuse::Close);
        }
        let framing = Framing {
            reuse: if request.close {
                Reuse::Close
            } else {
                Reuse::KeepAlive
            },
            body: if request.method == Method::Head {
                Body::Omit
            } else {
                Body::Send
            },
        };
        if request.delay.is_some() && self.shared.pause(request.delay) == Pause::Stopping {
            return Ok(Reuse::Close);
        }
        if request.method == Method::Other {
            let framing = Framing {
                reuse: Reuse::Close,
                body: Body::Send,
            };
            return self.send(405, framing, b"405 Method Not Allowed\n");
        }
        if request.body == RequestBody::Chunked {
            return self.send(501, framing.closing(), b"501 Not Implemented\n");
        }
        let flaky;
        let route = match &request.route {
            Route::Flaky {
                key,
                failures,
                failure,
            } => {
                flaky = self.shared.count_request(key) <= *failures;
                if flaky { failure } else { &Route::Ok }
            }
            route => route,
        };
        match route {
            Route::Ok | Route::Redirect(0) => self.send(200, framing, OK_BODY),
            Route::Bytes(n) => self.send_fill(200, *n, *n, framing),
            Route::Status(code) => self.send_status(*code, framing),
            Route::Redirect(n) => self.send_redirect(&format!("/redirect/{}", n - 1), framing),
            Route::RedirectLoop => self.send_redirect("/redirect-loop", framing),
            Route::Hang => {
                self.shared.pause(None);
                Ok(Reuse::Close)
            }
            Route::Drip(n) => self.drip(*n, framing),
            Route::Truncate => {
                self.send_fill(200, TRUNCATE_LENGTH, TRUNCATE_SENT, framing.closing())
            }
            Route::Reset => {
                // Ends with the request still unread (see `next_request`), so closing the socket
                // makes the kernel send an RST instead of a FIN, after the partial body. A head
                // that had to be read in pieces is gone from the socket: then it is a plain close.
                self.send_fill(200, RESET_LENGTH, RESET_SENT, framing.closing())?;
                Ok(Reuse::Close)
            }
            Route::Malformed => {
                self.stream.write_all(b"HELLO this is not HTTP\r\n\r\n")?;
                Ok(Reuse::Close)
            }
            Route::Close => Ok(Reuse::Close),
            Route::Echo => {
                let echo = request.head.as_deref().unwrap_or_default();
                // Kept before it is sent: a client that has the answer finds it kept.
                self.shared.seen().echo = Some(echo.to_owned());
                self.send(200, framing, echo.as_bytes())
            }
            Route::RetryAfter(secs) => {
                let header = ("Retry-After", &*secs.to_string());
                let body = b"503 Service Unavailable\n";
                self.send_with(503, header, framing, body)
            }
            Route::Stale => {
                self.stale = true;
                self.send(200, framing, OK_BODY)
            }
            Route::Text(text) => {
                let header = ("Content-Type", "text/plain; charset=utf-8");
                self.send_with(200, header, framing, text)
            }
            // A flaky route whose failure is itself flaky: the inner count is not kept.
            Route::Flaky { .. } => self.send_status(503, framing),
            Route::Other(_) => self.send(404, framing, b"404 Not Found\n"),
        }
    }

    /// Starts a response in `out`: the status line, `Content-Length` if given, one more header
    /// if its name is not empty, and `Connection: close` unless the connection is kept.
    fn begin(&mut self, code: u16, length: Option<u64>, header: (&str, &str), reuse: Reuse) {
        self.out.clear();
        // Writing to a Vec cannot fail.
        let _ = write!(self.out, "HTTP/1.1 {code} {}\r\n", reason(code));
        if let Some(length) = length {
            let _ = write!(self.out, "Content-Length: {length}\r\n");
        }
        let (name, value) = header;
        if !name.is_empty() {
            let _ = write!(self.out, "{name}: {value}\r\n");
        }
        if reuse == Reuse::Close {
            self.out.extend_from_slice(b"Connection: close\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// A complete response with a small body, in one write.
    fn send(&mut self, code: u16, framing: Framing, body: &[u8]) -> io::Result<Reuse> {
        self.send_with(code, NO_HEADER, framing, body)
    }

    /// [`Connection::send`] with one more header.
    fn send_with(
        &mut self,
        code: u16,
        header: (&str, &str),
        framing: Framing,
        body: &[u8],
    ) -> io::Result<Reuse> {
        self.begin(code, Some(body.len() as u64), header, framing.reuse);
        if framing.body == Body::Send {
            self.out.extend_from_slice(body);
        }
        self.stream.write_all(&self.out)?;
        Ok(framing.reuse)
    }

    /// A response promising `length` bytes of `x` and sending `sent` of them, streamed from
    /// [`FILL`]. The first block goes out with the head, so a small body costs one write.
    fn send_fill(
        &mut self,
        code: u16,
        length: u64,
        sent: u64,
        framing: Framing,
    ) -> io::Result<Reuse> {
        self.begin(code, Some(length), NO_HEADER, framing.reuse);
        let mut left = match framing.body {
            Body::Send => sent,
            Body::Omit => 0,
        };
        let first = left.min(16 * 1024) as usize;
        self.out.extend_from_slice(&FILL[..first]);
        self.stream.write_all(&self.out)?;
        left -= first as u64;
        while left > 0 {
            let block = left.min(FILL.len() as u64) as usize;
            self.stream.write_all(&FILL[..block])?;
            left -= block as u64;
        }
        Ok(framing.reuse)
    }

    /// `CODE` with its reason phrase as the body (none for 204 and 304).
    fn send_status(&mut self, code: u16, framing: Framing) -> io::Result<Reuse> {
        if matches!(code, 204 | 304) {
            // These have no body, not even an empty one with a length.
            self.begin(code, None, NO_HEADER, framing.reuse);
            self.stream.write_all(&self.out)?;
            return Ok(framing.reuse);
        }
        let body = format!("{code} {}\n", reason(code));
        self.send(code, framing, body.as_bytes())
    }

    /// A `302` to `location`, with an empty body.
    fn send_redirect(&mut self, location: &str, framing: Framing) -> io::Result<Reuse> {
        self.begin(302, Some(0), ("Location", location), framing.reuse);
        self.stream.write_all(&self.out)?;
        Ok(framing.reuse)
    }

    /// Promises `n` bytes, sends the first at once and the rest one a second.
    fn drip(&mut self, n: u64, framing: Framing) -> io::Result<Reuse> {
        self.begin(200, Some(n), NO_HEADER, framing.reuse);
        self.stream.write_all(&self.out)?;
        if framing.body == Body::Omit {
            return Ok(framing.reuse);
        }
        for i in 0..n {
            if i > 0 && self.shared.pause(Some(Duration::from_secs(1))) == Pause::Stopping {
                return Ok(Reuse::Close);
            }
            self.stream.write_all(b"x")?;
        }
        Ok(framing.reuse)
    }
}
