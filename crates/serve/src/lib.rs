//! A small, fast HTTP/1.1 server on 127.0.0.1, for demos, tests and benchmarks.
//!
//! It binds the loopback address only, on a port the OS picks (or one it is given), and serves
//! fixed routes that cover both what a fetcher should count and every way a server can
//! misbehave. One thread per connection, keep-alive, one reused output buffer per connection and
//! bodies streamed from a static block: fast enough that a benchmark measures the client, not
//! this server. Dropping the [`Server`] stops it and ends every connection, including the ones
//! that never answer.
//!
//! # Routes
//!
//! All routes answer `GET` and `HEAD` (other methods get `405`). A query string is ignored.
//!
#![doc = include_str!("../ROUTES.md")]
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

//!
//! # The `fetchall-serve` binary
//!
//! `cargo run -p fetchall-serve -- [PORT]` serves these routes on `127.0.0.1:PORT` (a free
//! port without one) until it is killed: it prints its base URL, then this table. The README's
//! and `fetchall --help`'s examples that need a server start it this way.
//!
//! # Over TLS
//!
//! The [`tls`] module makes certificates for a test run (a CA, leaves good and bad, client
//! certificates) and serves any of them with [`tls::TlsFront`], which relays to a [`Server`], so
//! that every route above can be fetched over `https`.

mod connection;
mod registry;
mod request;
pub mod testing;
pub mod tls;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use registry::{Shared, accept_loop};

/// The body of `/ok`.
pub const OK_BODY: &[u8] = b"ok\n";

/// The `Content-Length` that `/truncate` promises.
pub const TRUNCATE_LENGTH: u64 = 100;

/// The body bytes `/truncate` sends before closing.
pub const TRUNCATE_SENT: u64 = 10;

/// How long dropping a [`Server`] waits for its connection threads before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
        Server::bind(0)
    }

    /// Starts a server on 127.0.0.1 and `port`; `0` picks a free port, as [`Server::start`]
    /// does. The `fetchall-serve` binary is this, on the port it is given.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound (the port is taken, say) or the accepting thread cannot
    /// start.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = fetchall_serve::Server::bind(0)?;
    /// assert_ne!(server.addr().port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(port: u16) -> io::Result<Server> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new());
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
        self.shared.stop();
        if let Some(acceptor) = self.acceptor.take() {
            // accept() has no timeout: a connection of our own wakes it to see the flag. If even
            // that fails, leave the thread rather than hang on it.
            if TcpStream::connect(self.addr).is_ok() {
                let _ = acceptor.join();
            }
        }
        self.shared.wait_closed(SHUTDOWN_GRACE);
    }
}
