//! A small, fast HTTP/1.1 server on 127.0.0.1, for demos, tests and benchmarks.
//!
//! It binds the loopback address only, on a port the OS picks, and serves fixed routes that cover
//! both what a fetcher should count and every way a server can misbehave. One thread per
//! connection, keep-alive, one reused output buffer per connection and bodies streamed from a
//! static block: fast enough that a benchmark measures the client, not this server. Dropping the
//! [`Server`] stops it and ends every connection, including the ones that never answer.
//!
//! # Routes
//!
//! All routes answer `GET` and `HEAD` (other methods get `405`). A query string is ignored.
//!
//! | Route | Response |
//! |---|---|
//! | `/ok` | `200` with [`OK_BODY`] |
//! | `/bytes/N` | `200` with `N` bytes (`x`), streamed: any size, no memory |
//! | `/status/CODE` | `CODE` (200 to 599) with its standard reason phrase |
//! | `/sleep/MS` | `/ok` after `MS` milliseconds |
//! | `/sleep/MS/ROUTE...` | any other route after `MS` milliseconds, e.g. `/sleep/100/bytes/10` |
//! | `/redirect/N` | `302` to `/redirect/N-1`; `/redirect/0` is `/ok` |
//! | `/redirect-loop` | `302` to itself |
//! | `/hang` | reads the request and never answers |
//! | `/drip/N` | headers promising `N` bytes, then one byte a second |
//! | `/truncate` | promises [`TRUNCATE_LENGTH`] bytes, sends [`TRUNCATE_SENT`], closes |
//! | `/reset` | promises a body, sends part of it, then resets the connection (RST) |
//! | `/malformed` | a line that is not an HTTP status line, then closes |
//! | `/close` | closes without any response |
//! | `/echo` | `200` with the request head (request line and headers) as the body; also kept for [`Server::last_echo`] |
//! | `/flaky/KEY/N` | `503` to the first `N` requests naming `KEY`, `/ok` to the later ones |
//! | `/flaky/KEY/N/ROUTE...` | any other route to the first `N`, e.g. `/flaky/a/2/close` |
//! | `/retry-after/SECS` | `503` with `Retry-After: SECS` |
//! | `/stale` | `/ok`, then the connection's next request is read and the connection closed |
//! | `/text/TEXT` | `200`, `Content-Type: text/plain; charset=utf-8`, the rest of the path percent-decoded as the body |
//!
//! Anything else is `404`.
//!
//! `/flaky` counts requests per `KEY` for the server's lifetime ([`Server::requests_for`]), so a
//! test picks a fresh key for each run. `/stale` stages the keep-alive race: a client that sends
//! its next request on the idle connection finds it closed without an answer.
//!
//! # Examples
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use fetchall_serve::Server;
//!
//! let server = Server::start()?;
//! let mut conn = TcpStream::connect(server.addr())?;
//! conn.write_all(b"GET /bytes/5 HTTP/1.1\r\nConnection: close\r\n\r\n")?;
//! let mut response = String::new();
//! conn.read_to_string(&mut response)?;
//! assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(response.ends_with("\r\n\r\nxxxxx"));
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod testing;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use http::StatusCode;

/// The standard reason phrase for `code`, or `Unknown`.
fn reason(code: u16) -> &'static str {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Unknown")
}

/// The body of `/ok`.
pub const OK_BODY: &[u8] = b"ok\n";

/// The `Content-Length` that `/truncate` promises.
pub const TRUNCATE_LENGTH: u64 = 100;

/// The body bytes `/truncate` sends before closing.
pub const TRUNCATE_SENT: u64 = 10;

/// The `Content-Length` `/reset` promises, and the bytes it sends before the reset.
const RESET_LENGTH: u64 = 100_000;
const RESET_SENT: usize = 1000;

/// The largest request head (request line and headers) read; a larger one gets `431`.
const MAX_HEAD: usize = 16 * 1024;

/// No extra header, for [`Connection::begin`].
const NO_HEADER: (&str, &str) = ("", "");

/// How long dropping a [`Server`] waits for its connection threads before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The bytes `/bytes/N` and the partial bodies are written from.
static FILL: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// A running loopback server.
///
/// # Shutdown
///
/// Dropping the server stops it: no new connections, every open one shut down (a blocked read
/// or write returns at once), the waiting routes (`/hang`, `/drip`, `/sleep`) woken, and their
/// threads waited for. Nothing is left running and nothing hangs.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on 127.0.0.1 and a free port.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound or the accepting thread cannot start.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = fetchall_serve::Server::start()?;
    /// assert!(server.addr().ip().is_loopback());
    /// assert_eq!(server.url("/ok"), format!("http://{}/ok", server.addr()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start() -> io::Result<Server> {
        Server::launch()
    }

    fn launch() -> io::Result<Server> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            accepted: AtomicU64::new(0),
            seen: Mutex::default(),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("fetchall-accept".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(Server {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address the server listens on (127.0.0.1 and its port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full URL of `path` on this server: `http://127.0.0.1:PORT/path`. A missing leading
    /// `/` is added.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr)
    }

    /// How many TCP connections the server has accepted so far: with keep-alive, fewer than the
    /// requests served.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// How many requests named `/flaky/KEY/...` with this `key` the server has received.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::net::TcpStream;
    /// use fetchall_serve::Server;
    ///
    /// let server = Server::start()?;
    /// let mut conn = TcpStream::connect(server.addr())?;
    /// conn.write_all(b"GET /flaky/k/1 HTTP/1.1\r\nConnection: close\r\n\r\n")?;
    /// let mut response = String::new();
    /// conn.read_to_string(&mut response)?;
    /// assert!(response.starts_with("HTTP/1.1 503 "));
    /// assert_eq!(server.requests_for("k"), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn requests_for(&self, key: &str) -> u64 {
        self.shared.seen().flaky.get(key).copied().unwrap_or(0)
    }

    /// The head of the last `/echo` request: what a client really sent, for tests of the
    /// headers and method a fetcher sends, which the byte count alone cannot show.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::net::TcpStream;
    /// use fetchall_serve::Server;
    ///
    /// let server = Server::start()?;
    /// let mut conn = TcpStream::connect(server.addr())?;
    /// conn.write_all(b"HEAD /echo HTTP/1.1\r\nX-Test: 1\r\nConnection: close\r\n\r\n")?;
    /// conn.read_to_end(&mut Vec::new())?;
    /// let head = server.last_echo().expect("one /echo");
    /// assert!(head.starts_with("HEAD /echo HTTP/1.1\r\n") && head.contains("X-Test: 1\r\n"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn last_echo(&self) -> Option<String> {
        self.shared.seen().echo.clone()
    }
}

impl Drop for Server {
    /// Stops the server: see [Shutdown](Server#shutdown).
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            // Set under the lock that `register` takes, so no connection is added after the sweep.
            state.stopping = true;
            for stream in state.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        self.shared.changed.notify_all();

        if let Some(acceptor) = self.acceptor.take() {
            // accept() has no timeout: a connection of our own wakes it to see the flag. If even
            // that fails, leave the thread rather than hang on it.
            if TcpStream::connect(self.addr).is_ok() {
                let _ = acceptor.join();
            }
        }

        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut state = self.shared.lock();
        while !state.open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// What the accepting thread, the connection threads and [`Server`] share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when `stopping` is set and when a connection ends.
    changed: Condvar,
    accepted: AtomicU64,
    /// What the counting and recording routes saw. A lock of its own: no route takes both.
    seen: Mutex<Seen>,
}

/// What `/flaky` and `/echo` keep.
#[derive(Debug, Default)]
struct Seen {
    /// Requests per `/flaky` key.
    flaky: HashMap<String, u64>,
    /// The head of the last `/echo` request.
    echo: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    stopping: bool,
    next_id: u64,
    /// A second handle on every open connection, for `Drop` to shut it down.
    open: HashMap<u64, TcpStream>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code of ours can panic while holding this lock; take the state even if it did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_stopping(&self) -> bool {
        self.lock().stopping
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request for `key` and returns its number, from 1.
    fn count_request(&self, key: &str) -> u64 {
        let mut seen = self.seen();
        let count = seen.flaky.entry(key.to_owned()).or_insert(0);
        *count += 1;
        *count
    }

    /// Waits for `time` (`None`: until the server stops). Returns `false` if the server is
    /// stopping, so the caller ends its connection.
    fn pause(&self, time: Option<Duration>) -> bool {
        let deadline = time.and_then(|t| Instant::now().checked_add(t));
        let mut state = self.lock();
        while !state.stopping {
            state = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return true;
                    }
                    let waited = self.changed.wait_timeout(state, left);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
        false
    }

    /// Records an accepted connection; `None` when stopping (the caller drops it).
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let handle = stream.try_clone().ok()?;
        let mut state = self.lock();
        if state.stopping {
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.open.insert(id, handle);
        Some(id)
    }

    fn unregister(&self, id: u64) {
        self.lock().open.remove(&id);
        self.changed.notify_all();
    }
}

/// Removes a connection from [`State::open`] when its thread ends, however it ends.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.is_stopping() {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors, for instance: back off instead of spinning.
                shared.pause(Some(Duration::from_millis(10)));
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        // Headers and body may go out in separate writes: do not let Nagle hold the second.
        let _ = stream.set_nodelay(true);
        let Some(id) = shared.register(&stream) else {
            continue;
        };
        let conn_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name("fetchall-serve".into())
            .spawn(move || {
                let _registered = Registered {
                    shared: &conn_shared,
                    id,
                };
                Connection::new(stream, &conn_shared).run();
            });
        if spawned.is_err() {
            shared.unregister(id);
        }
    }
}

/// A request method the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Other,
}

/// The request body a client announced. The routes ignore it, but it must be read past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestBody {
    None,
    Length(u64),
    Chunked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
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
struct Request {
    method: Method,
    delay: Option<Duration>,
    route: Route,
    close: bool,
    body: RequestBody,
    /// Length of the head when it was only peeked at, and is still in the socket.
    unread: usize,
    /// The head itself, kept only for `/echo`.
    head: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A request, and the length of its head.
    Complete(Request, usize),
    /// No blank line yet: read more.
    Partial,
    /// Not HTTP/1.x.
    Invalid,
}

/// Parses a request head from the start of `buf`. Never panics, whatever the bytes.
fn parse_head(buf: &[u8]) -> Parsed {
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

/// What [`Connection::next_request`] found.
enum Incoming {
    Request(Request),
    /// Garbage or an oversized head: answer with this status and close.
    Invalid(u16),
    Closed,
}

/// One accepted connection, served request after request until either side closes.
struct Connection<'a> {
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
    fn new(stream: TcpStream, shared: &'a Shared) -> Self {
        Connection {
            stream,
            shared,
            input: vec![0; MAX_HEAD].into_boxed_slice(),
            buffered: 0,
            out: Vec::with_capacity(1024),
            stale: false,
        }
    }

    fn run(mut self) {
        loop {
            let keep_alive = match self.next_request() {
                Ok(Incoming::Request(request)) => self.respond(&request),
                Ok(Incoming::Invalid(code)) => self.send(code, false, false, &[]),
                Ok(Incoming::Closed) | Err(_) => return,
            };
            if !matches!(keep_alive, Ok(true)) {
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

    /// Answers one request. `Ok(true)` keeps the connection for the next one.
    fn respond(&mut self, request: &Request) -> io::Result<bool> {
        if request.route != Route::Reset {
            self.consume(request)?;
        }
        if self.stale {
            return Ok(false);
        }
        let keep = !request.close;
        let head = request.method == Method::Head;
        if request.delay.is_some() && !self.shared.pause(request.delay) {
            return Ok(false);
        }
        if request.method == Method::Other {
            return self.send(405, false, false, b"405 Method Not Allowed\n");
        }
        if request.body == RequestBody::Chunked {
            return self.send(501, false, head, b"501 Not Implemented\n");
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
            Route::Ok | Route::Redirect(0) => self.send(200, keep, head, OK_BODY),
            Route::Bytes(n) => self.send_fill(200, *n, *n, keep, head),
            Route::Status(code) => self.send_status(*code, keep, head),
            Route::Redirect(n) => self.send_redirect(&format!("/redirect/{}", n - 1), keep),
            Route::RedirectLoop => self.send_redirect("/redirect-loop", keep),
            Route::Hang => {
                self.shared.pause(None);
                Ok(false)
            }
            Route::Drip(n) => self.drip(*n, keep, head),
            Route::Truncate => self.send_fill(200, TRUNCATE_LENGTH, TRUNCATE_SENT, false, head),
            Route::Reset => {
                // Ends with the request still unread (see `next_request`), so closing the socket
                // makes the kernel send an RST instead of a FIN, after the partial body. A head
                // that had to be read in pieces is gone from the socket: then it is a plain close.
                self.send_fill(200, RESET_LENGTH, RESET_SENT as u64, false, head)?;
                Ok(false)
            }
            Route::Malformed => {
                self.stream.write_all(b"HELLO this is not HTTP\r\n\r\n")?;
                Ok(false)
            }
            Route::Close => Ok(false),
            Route::Echo => {
                let echo = request.head.as_deref().unwrap_or_default();
                // Kept before it is sent: a client that has the answer finds it kept.
                self.shared.seen().echo = Some(echo.to_owned());
                self.send(200, keep, head, echo.as_bytes())
            }
            Route::RetryAfter(secs) => {
                let header = ("Retry-After", &*secs.to_string());
                let body = b"503 Service Unavailable\n";
                self.send_with(503, header, keep, head, body)
            }
            Route::Stale => {
                self.stale = true;
                self.send(200, keep, head, OK_BODY)
            }
            Route::Text(text) => {
                let header = ("Content-Type", "text/plain; charset=utf-8");
                self.send_with(200, header, keep, head, text)
            }
            // A flaky route whose failure is itself flaky: the inner count is not kept.
            Route::Flaky { .. } => self.send_status(503, keep, head),
            Route::Other(_) => self.send(404, keep, head, b"404 Not Found\n"),
        }
    }

    /// Starts a response in `out`: the status line, `Content-Length` if given, one more header
    /// if its name is not empty, and `Connection: close` unless `keep`.
    fn begin(&mut self, code: u16, length: Option<u64>, header: (&str, &str), keep: bool) {
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
        if !keep {
            self.out.extend_from_slice(b"Connection: close\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// A complete response with a small body, in one write.
    fn send(&mut self, code: u16, keep: bool, head: bool, body: &[u8]) -> io::Result<bool> {
        self.send_with(code, NO_HEADER, keep, head, body)
    }

    /// [`Connection::send`] with one more header.
    fn send_with(
        &mut self,
        code: u16,
        header: (&str, &str),
        keep: bool,
        head: bool,
        body: &[u8],
    ) -> io::Result<bool> {
        self.begin(code, Some(body.len() as u64), header, keep);
        if !head {
            self.out.extend_from_slice(body);
        }
        self.stream.write_all(&self.out)?;
        Ok(keep)
    }

    /// A response promising `length` bytes of `x` and sending `sent` of them, streamed from
    /// [`FILL`]. The first block goes out with the head, so a small body costs one write.
    fn send_fill(
        &mut self,
        code: u16,
        length: u64,
        sent: u64,
        keep: bool,
        head: bool,
    ) -> io::Result<bool> {
        self.begin(code, Some(length), NO_HEADER, keep);
        let mut left = if head { 0 } else { sent };
        let first = left.min(16 * 1024) as usize;
        self.out.extend_from_slice(&FILL[..first]);
        self.stream.write_all(&self.out)?;
        left -= first as u64;
        while left > 0 {
            let block = left.min(FILL.len() as u64) as usize;
            self.stream.write_all(&FILL[..block])?;
            left -= block as u64;
        }
        Ok(keep)
    }

    fn send_status(&mut self, code: u16, keep: bool, head: bool) -> io::Result<bool> {
        if matches!(code, 204 | 304) {
            // These have no body, not even an empty one with a length.
            self.begin(code, None, NO_HEADER, keep);
            self.stream.write_all(&self.out)?;
            return Ok(keep);
        }
        let body = format!("{code} {}\n", reason(code));
        self.send(code, keep, head, body.as_bytes())
    }

    fn send_redirect(&mut self, location: &str, keep: bool) -> io::Result<bool> {
        self.begin(302, Some(0), ("Location", location), keep);
        self.stream.write_all(&self.out)?;
        Ok(keep)
    }

    /// Promises `n` bytes, sends the first at once and the rest one a second.
    fn drip(&mut self, n: u64, keep: bool, head: bool) -> io::Result<bool> {
        self.begin(200, Some(n), NO_HEADER, keep);
        self.stream.write_all(&self.out)?;
        if head {
            return Ok(keep);
        }
        for i in 0..n {
            if i > 0 && !self.shared.pause(Some(Duration::from_secs(1))) {
                return Ok(false);
            }
            self.stream.write_all(b"x")?;
        }
        Ok(keep)
    }
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
