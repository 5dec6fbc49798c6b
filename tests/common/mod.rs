//! Helpers shared by the library's integration tests: a loopback server, a fetcher with a given
//! timeout, and gates; the time bound, the refused address and python3 to compare with come
//! from `fetchall_serve::testing`.
// Each test crate uses its own subset of these helpers.
#![allow(dead_code, unused_imports)]

use std::sync::mpsc;
use std::time::Duration;

use fetchall::fetch::{FetchOptions, Fetcher, Proxies};
pub(crate) use fetchall_serve::Server;
pub(crate) use fetchall_serve::testing::{
    GENEROUS, arrives_soon, python3, refused_addr, server, within,
};

/// A fetcher whose deadline per URL is `timeout`.
pub(crate) fn fetcher(timeout: Duration) -> Fetcher {
    fetcher_with(|options| options.timeout = timeout)
}

/// A fetcher with a generous deadline and no proxy, then what `change` sets.
pub(crate) fn fetcher_with(change: impl FnOnce(&mut FetchOptions)) -> Fetcher {
    let mut options = FetchOptions::default();
    options.timeout = GENEROUS;
    // Loopback only, whatever proxy the developer's environment names.
    options.proxies = Proxies::none();
    change(&mut options);
    Fetcher::new(options)
}

/// A gate a task waits at until the test opens it (or drops it): forces an order without sleeps.
pub(crate) fn gate() -> (mpsc::Sender<()>, mpsc::Receiver<()>) {
    mpsc::channel()
}
