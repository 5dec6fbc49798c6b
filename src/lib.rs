//! fetchall is Python's `concurrent.futures.ThreadPoolExecutor`, written by hand in Rust, and the
//! URL fetcher from its documentation built on it.
//!
//! # Example
//!
//! The `load_url` example from the Python docs, ported: fetch each URL on a pool of five
//! threads, keep a map from each handle back to its URL, and print each result as it completes.
//!
//! ```no_run
//! use std::collections::HashMap;
//! use fetchall::fetch::{FetchOptions, Fetcher};
//! use fetchall::{as_completed, repr, Executor, ThreadPool};
//!
//! let urls = [
//!     "http://www.foxnews.com/",
//!     "http://www.cnn.com/",
//!     "http://europe.wsj.com/",
//!     "http://www.bbc.co.uk/",
//!     "http://some-made-up-domain.com/",
//! ];
//! // Retrieve a single page and report the URL and contents: one shared client, 60 s in all.
//! let fetcher = Fetcher::new(FetchOptions::default());
//! // Dropping the pool at the end of the block joins its threads, like Python's `with`.
//! let executor = ThreadPool::new(5);
//! // Start the load operations and mark each handle with its URL.
//! let mut future_to_url = HashMap::new();
//! let mut futures = Vec::new();
//! for url in urls {
//!     let fetcher = fetcher.clone();
//!     let future = executor.submit(move || fetcher.load_url(url));
//!     future_to_url.insert(future.id(), url);
//!     futures.push(future);
//! }
//! for future in as_completed(futures) {
//!     let url = repr(future_to_url[&future.id()]);
//!     match future.join() {
//!         Ok(Ok(page)) => println!("{url} page is {} bytes", page.bytes),
//!         Ok(Err(exc)) => println!("{url} generated an exception: {exc}"),
//!         Err(exc) => println!("{url} generated an exception: {exc}"),
//!     }
//! }
//! ```
//!
//! # Python → Rust
//!
//! | Python `concurrent.futures` | fetchall |
//! |---|---|
//! | `ThreadPoolExecutor(max_workers=n)` | [`ThreadPool::new(n)`](ThreadPool::new), [`ThreadPool::builder()`](ThreadPool::builder)`.num_threads(n)` |
//! | default `max_workers` = `min(32, cpu_count + 4)` | [`default_workers()`] |
//! | `thread_name_prefix="p"` (threads `p_0`, `p_1`, …) | [`Builder::thread_name_prefix`] |
//! | `initializer=fn`, `BrokenThreadPool` | [`Builder::initializer`], [`TaskError::BrokenPool`] |
//! | *(none; cpython#73781)* | [`Builder::queue_bound`]: `submit` blocks while K tasks wait |
//! | `executor.submit(fn)` | [`Executor::submit`] → [`TaskHandle<T>`] |
//! | `Future` | [`TaskHandle`] |
//! | `Future()`, `set_result` / `set_exception`, `InvalidStateError` | [`TaskHandle::pending`] → [`Completer::set_result`] / [`Completer::set_error`], [`InvalidState`] |
//! | `f.result()` / `f.result(timeout)` | [`TaskHandle::join`] (or [`TaskHandle::result`] to share) / [`TaskHandle::join_timeout`] |
//! | `f.done()` / `f.running()` / `f.cancelled()` | [`TaskHandle::is_finished`] / [`TaskHandle::is_running`] / [`TaskHandle::is_cancelled`] |
//! | `f.cancel()` | [`TaskHandle::cancel`] |
//! | `f.add_done_callback(fn)` | [`TaskHandle::add_done_callback`] |
//! | `as_completed(fs, timeout)` | [`as_completed`]`(handles)`, [`AsCompleted::with_timeout`] |
//! | `wait(fs, timeout, return_when)` | [`wait`]`(handles, timeout, `[`ReturnWhen`]`)` → [`DoneAndNotDone`] |
//! | `FIRST_COMPLETED` / `FIRST_EXCEPTION` / `ALL_COMPLETED` | [`ReturnWhen::FirstCompleted`] / [`ReturnWhen::FirstException`] / [`ReturnWhen::AllCompleted`] |
//! | `executor.map(fn, it, buffersize=n)` | [`Executor::map`], [`Executor::map_buffered`] ([`ZeroBufferSize`] for 0) |
//! | `executor.map(fn, it, timeout=t)` | [`Map::timeout`] |
//! | `shutdown(wait=True)`, `with` block | [`ThreadPool::shutdown`], `Drop` |
//! | `shutdown(cancel_futures=True)` | [`ThreadPool::shutdown_now`] |
//! | `shutdown(wait=False)` | [`ThreadPool::detach`] |
//! | `CancelledError` / `TimeoutError` | [`TaskError::Cancelled`] / [`TaskError::Timeout`], [`TimeoutError`] |
//! | exception raised in `fn` | [`TaskError::Panicked`] |
//! | `RuntimeError` on submit after shutdown | impossible: `shutdown` consumes the pool |
//! | the two deadlock programs hang | [`TaskError::Deadlock`], or the waiting worker runs the task itself |
//! | `load_url(url, timeout)` | [`fetch::Fetcher::load_url`], with [`fetch::FetchOptions::timeout`] a total deadline |
//! | `'%r' % url` | [`repr`] |
//!
//! # Shutdown and panics
//!
//! Dropping a [`ThreadPool`] is the end of Python's `with` block: queued tasks still run, and
//! every worker is joined, so no thread outlives the pool. A task that panics resolves its handle
//! to [`TaskError::Panicked`]; the worker catches the panic and carries on.
//!
//! # Deadlocks end
//!
//! A worker that waits on a task of its own pool that has not started runs it itself, so
//! Python's `wait_on_future` program prints 25 instead of hanging. A wait that would close a
//! cycle of threads waiting on each other (Python's `wait_on_a` / `wait_on_b`), or that waits on a
//! task queued on a pool whose every worker is blocked for good, returns
//! [`TaskError::Deadlock`] naming the chain.
//!
//! # Backends
//!
//! [`ThreadPool`] is the hand-written pool and the default. [`Sequential`] runs each task on the
//! caller, as a baseline. With the `rayon` feature, `RayonPool` runs tasks on a
//! `rayon::ThreadPool`, for comparison only. All three implement [`Executor`] and return the
//! same [`TaskHandle`]s.
//!
//! # Fetching
//!
//! The HTTP side lives in the [`fetch`] module, as ureq keeps its settings in `ureq::config`;
//! the pool's names are at the crate root. [`fetch::Fetcher`] is `load_url` done properly: one
//! shared HTTP client (connections reused), one total deadline per URL covering DNS, connect,
//! TLS, redirects and body (Python's timeout is per socket operation, so a server that drips a
//! byte a second can hold it for hours), the body counted while it streams and never buffered,
//! and errors worded like urllib's.
//!
//! # Features
//!
//! - `rayon`: the `RayonPool` backend (off by default).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod builder;
mod error;
mod executor;
pub mod fetch;
mod graph;
mod handle;
mod pool;
#[cfg(feature = "rayon")]
mod rayon_pool;
mod repr;
mod sync;
mod task;
mod wait;

pub use builder::{Builder, default_workers};
pub use error::{BuildError, InvalidState, TaskError, TimeoutError, ZeroBufferSize};
pub use executor::{Executor, Map, Sequential};
pub use handle::{Completer, TaskHandle};
pub use pool::ThreadPool;
#[cfg(feature = "rayon")]
pub use rayon_pool::RayonPool;
pub use repr::repr;
pub use wait::{AsCompleted, AsCompletedTimeout, DoneAndNotDone, ReturnWhen, as_completed, wait};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
