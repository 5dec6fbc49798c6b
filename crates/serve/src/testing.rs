//! Helpers every test suite of the workspace shares: a bound on how long a test body may run, so
//! that a hang fails the test instead of stalling CI, a loopback address where nothing
//! listens, one where a connect hangs, a listener whose connections a test handles itself (for
//! fake proxies), the check that a tool an ignored test needs is installed, and python3 to
//! compare with.

use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// How long a test body may run before [`within`] fails it. Generous: the machine is shared and
/// noisy, and this bound only exists to turn a hang into a failure.
pub const GENEROUS: Duration = Duration::from_secs(60);

/// Runs `body` on a thread of its own and returns what it returns. Fails the test if `body`
/// panics (with its panic) or is still running after `limit`.
///
/// # Panics
///
/// When `body` panics (its panic is resumed) or is still running after `limit`.
///
/// # Examples
///
/// ```
/// use fetchall_serve::testing::{GENEROUS, within};
/// assert_eq!(within(GENEROUS, || 6 * 7), 42);
/// ```
pub fn within<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    let handle = thread::spawn(move || {
        // The receiver is gone only if the test already failed on the time limit.
        let _ = done.send(body());
    });
    match result.recv_timeout(limit) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("still running after {limit:?}: it hangs"),
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the test thread ended without a result"),
        },
    }
}

/// A listener on 127.0.0.1 whose connections a test handles itself (a proxy that records what
/// it is asked, a SOCKS server, a tunnel): each connection goes to the handler on a thread of
/// its own, and the handler reports what it saw on a channel. At most 16 connections are
/// accepted, so the accepting loop is bounded. Dropping it stops accepting.
#[derive(Debug)]
pub struct Loopback {
    addr: SocketAddr,
    seen: Receiver<String>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// More connections than any test makes.
const MAX_CONNECTIONS: usize = 16;

/// The longest request head [`read_head`] reads.
pub const MAX_HEAD: usize = 16 * 1024;

impl Loopback {
    /// Listens on a free loopback port and hands each connection to `handle`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub fn start<F>(handle: F) -> Loopback
    where
        F: Fn(TcpStream, &Sender<String>) -> io::Result<()> + Send + Sync + 'static,
    {
        let handle = Arc::new(handle);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let (report, seen) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let acceptor = thread::spawn(move || {
            for _ in 0..MAX_CONNECTIONS {
                let accepted = listener.accept();
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok((client, _)) = accepted {
                    let report = report.clone();
                    let handle = handle.clone();
                    thread::spawn(move || handle(client, &report));
                }
            }
        });
        Loopback {
            addr,
            seen,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `prefix` followed by its address: `url("http://")`, `url("socks5h://user:pw@")`.
    pub fn url(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.addr)
    }

    /// What the handlers reported so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.try_iter().collect()
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // A connection of our own wakes the blocked accept() to see the flag.
        if TcpStream::connect(self.addr).is_ok()
            && let Some(acceptor) = self.acceptor.take()
        {
            let _ = acceptor.join();
        }
    }
}

/// Reads a request head from `reader`, through its blank line, or [`MAX_HEAD`] bytes of it at
/// most; `None` when the connection ends first.
///
/// # Errors
///
/// When reading fails (a read timeout included).
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") && head.len() < MAX_HEAD {
        if reader.read_line(&mut head)? == 0 {
            return Ok(None);
        }
    }
    Ok(Some(head))
}

/// A loopback address where nothing listens: a port the OS handed out and that was closed again.
///
/// # Panics
///
/// When no loopback port can be bound.
pub fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

/// A loopback listener that never accepts and whose accept queue is full, so that the kernel
/// drops every further SYN to it and a connect hangs, as it does to a host behind a firewall
/// that drops packets. Made by [`full_backlog`]; dropping it closes the listener and the
/// connections that fill its queue.
#[derive(Debug)]
pub struct FullBacklog {
    addr: SocketAddr,
    _listener: Socket,
    _queued: Vec<TcpStream>,
}

impl FullBacklog {
    /// The address a connect to hangs.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Starts a [`FullBacklog`] on a free loopback port.
///
/// The listener's backlog is 0 (std's `TcpListener` always asks for 128, hence `socket2`), and
/// it is filled by connections made here until one of them is not answered within half a
/// second: on loopback a connect to a queue with room completes at once.
///
/// # Panics
///
/// When the listener cannot be made, or its queue does not fill within 8 connections.
pub fn full_backlog() -> FullBacklog {
    full_backlog_at(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A [`FullBacklog`] on `addr`, a loopback address (all of 127.0.0.0/8 is this machine's), port 0
/// for a free one: with another loopback address than a server's and the server's port, one
/// host name can have a hanging address and a good one.
///
/// # Panics
///
/// As [`full_backlog`], or when `addr` cannot be bound.
pub fn full_backlog_at(addr: SocketAddr) -> FullBacklog {
    assert!(addr.ip().is_loopback(), "{addr} is not a loopback address");
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    listener
        .bind(&addr.into())
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    listener.listen(0).expect("listen");
    let addr = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("an IP address");
    let mut queued = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(stream) => queued.push(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return FullBacklog {
                    addr,
                    _listener: listener,
                    _queued: queued,
                };
            }
            Err(e) => panic!("filling the accept queue of {addr}: {e}"),
        }
    }
    panic!("the accept queue of {addr} never filled");
}

/// `true` if `rx` receives within a short grace period. Used only to assert that something has
/// NOT happened yet (a blocked submit, a line not printed), never to wait for something to
/// happen: under load it can only say "not yet" wrongly in the passing direction.
pub fn arrives_soon<T>(rx: &mpsc::Receiver<T>) -> bool {
    rx.recv_timeout(Duration::from_millis(200)).is_ok()
}

/// A [`Server`](crate::Server) on a free loopback port, for a test.
///
/// # Panics
///
/// When the server cannot start.
pub fn server() -> crate::Server {
    crate::Server::start().expect("start the loopback server")
}

/// Fails the test, saying what to install, unless `program` runs with `version_arg` and exits
/// with success. For the tests marked `#[ignore = "needs python3"]` (or tmux, or GNU time):
/// plain `cargo test` skips them visibly, `.ci/run` installs the tool and runs them with
/// `--ignored`, and a run that asks for them without the tool fails instead of passing.
///
/// # Panics
///
/// When `program` cannot be run or exits with a failure.
pub fn require(program: &str, version_arg: &str) {
    let works = Command::new(program)
        .arg(version_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "this test needs `{program}`, which is not installed (Debian: `apt-get install {}`; \
         .ci/run installs it)",
        debian_package(program)
    );
}

/// What `python3 -c script` prints with `input` on its stdin, for the tests that compare
/// fetchall with Python (marked `#[ignore = "needs python3"]`).
///
/// # Panics
///
/// When python3 is not installed (saying what to install, as [`require`] does), or the script
/// fails or prints something that is not UTF-8.
pub fn python3(script: &str, input: &str) -> String {
    require("python3", "--version");
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(input.as_bytes()).expect("write to python3");
    drop(stdin);
    let output = child.wait_with_output().expect("python3 runs");
    assert!(output.status.success(), "python3 failed");
    String::from_utf8(output.stdout).expect("python3 prints UTF-8")
}

/// The Debian package that provides `program`.
fn debian_package(program: &str) -> &str {
    match program {
        "/usr/bin/time" => "time",
        other => other,
    }
}
