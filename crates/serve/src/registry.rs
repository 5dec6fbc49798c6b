//! What the accepting thread, the connection threads and [`Server`](crate::Server) share: the
//! open connections (so that dropping the server can shut every one down), the stop flag the
//! waiting routes wait on, and what the counting and recording routes saw. Also the accept loop,
//! which registers each connection before its thread starts.

use std::collections::HashMap;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use crate::connection::Connection;

/// What the accepting thread, the connection threads and [`Server`](crate::Server) share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when `stopping` is set and when a connection ends.
    changed: Condvar,
    /// Connections accepted so far.
    pub(crate) accepted: AtomicU64,
    /// What the counting and recording routes saw. A lock of its own: no route takes both.
    seen: Mutex<Seen>,
}

/// What `/flaky` and `/echo` keep.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Requests per `/flaky` key.
    pub(crate) flaky: HashMap<String, u64>,
    /// The head of the last `/echo` request.
    pub(crate) echo: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    stopping: bool,
    next_id: u64,
    /// A second handle on every open connection, for `Drop` to shut it down.
    open: HashMap<u64, TcpStream>,
}

/// How a [`Shared::pause`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// The time was up.
    Elapsed,
    /// The server is stopping: the caller ends its connection.
    Stopping,
}

impl Shared {
    /// Nothing open, nothing seen.
    pub(crate) fn new() -> Shared {
        Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            accepted: AtomicU64::new(0),
            seen: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code of ours can panic while holding this lock; take the state even if it did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_stopping(&self) -> bool {
        self.lock().stopping
    }

    /// What the counting and recording routes saw.
    pub(crate) fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request for `key` and returns its number, from 1.
    pub(crate) fn count_request(&self, key: &str) -> u64 {
        let mut seen = self.seen();
        let count = seen.flaky.entry(key.to_owned()).or_insert(0);
        *count += 1;
        *count
    }

    /// Waits for `time` (`None`: until the server stops), or less if the server stops first.
    pub(crate) fn pause(&self, time: Option<Duration>) -> Pause {
        let running = |state: &mut State| !state.stopping;
        let state = match time {
            Some(time) => {
                let waited = self.changed.wait_timeout_while(self.lock(), time, running);
                waited.unwrap_or_else(PoisonError::into_inner).0
            }
            None => self
                .changed
                .wait_while(self.lock(), running)
                .unwrap_or_else(PoisonError::into_inner),
        };
        if state.stopping {
            Pause::Stopping
        } else {
            Pause::Elapsed
        }
    }

    /// Sets the stop flag, shuts every open connection down (a blocked read or write returns at
    /// once) and wakes every pause.
    pub(crate) fn stop(&self) {
        {
            let mut state = self.lock();
            // Set under the lock that `register` takes, so no connection is added after the sweep.
            state.stopping = true;
            for stream in state.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        self.changed.notify_all();
    }

    /// Waits until every connection's thread has ended, for `grace` at the most.
    pub(crate) fn wait_closed(&self, grace: Duration) {
        let open = |state: &mut State| !state.open.is_empty();
        let waited = self.changed.wait_timeout_while(self.lock(), grace, open);
        drop(waited.unwrap_or_else(PoisonError::into_inner));
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

/// Accepts connections until the server stops, each served on a thread of its own.
pub(crate) fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
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
