//! Helpers shared by the integration tests: a loopback server, a fetcher with a given timeout,
//! and a bound on how long a test body may run, so that a hang fails the test instead of CI.
// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use fetchall::serve::Server;
use fetchall::{FetchOptions, Fetcher, Proxies};

/// How long a test body may run before [`within`] fails it. Generous: the machine is shared and
/// noisy, and this bound only exists to turn a hang into a failure.
pub(crate) const GENEROUS: Duration = Duration::from_secs(60);

/// A loopback server on a free port.
pub(crate) fn server() -> Server {
    Server::start().expect("start the loopback server")
}

/// A fetcher whose deadline per URL is `timeout`.
pub(crate) fn fetcher(timeout: Duration) -> Fetcher {
    let mut options = FetchOptions::default();
    options.timeout = timeout;
    // Loopback only, whatever proxy the developer's environment names.
    options.proxies = Proxies::none();
    Fetcher::new(options)
}

/// Runs `body` on a thread of its own and returns what it returns. Fails the test if `body`
/// panics (with its panic) or is still running after `limit`.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
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

/// A loopback address where nothing listens: a port the OS handed out and that was closed again.
pub(crate) fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

/// A gate a task waits at until the test opens it (or drops it): forces an order without sleeps.
pub(crate) fn gate() -> (mpsc::Sender<()>, mpsc::Receiver<()>) {
    mpsc::channel()
}

/// `true` if `rx` receives within a short grace period. Used only to assert that something has
/// NOT happened yet (a blocked submit), never to wait for something to happen.
pub(crate) fn arrives_soon<T>(rx: &mpsc::Receiver<T>) -> bool {
    rx.recv_timeout(Duration::from_millis(200)).is_ok()
}
