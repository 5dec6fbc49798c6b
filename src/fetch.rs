//! Fetching one URL: the Rust port of `load_url(url, timeout)` from Python's
//! `concurrent.futures` documentation, built to be a trustworthy smoke-testing fetcher.
//!
//! A [`Fetcher`] holds keep-alive connections that all its clones share, so every worker thread
//! reuses them. [`Fetcher::load_url`] streams the body through a fixed buffer and only counts it,
//! so a 1 GiB body costs no memory, and the count is what Python's `len(conn.read())` would give
//! (`Accept-Encoding: identity`, nothing is decompressed).
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use fetchall::fetch::{FetchOptions, Fetcher};
//!
//! let mut options = FetchOptions::default();
//! options.timeout = Duration::from_secs(10);
//! let page = Fetcher::new(options).load_url("http://example.com/")?;
//! println!("page is {} bytes", page.bytes);
//! # Ok::<(), fetchall::fetch::FetchError>(())
//! ```
//!
//! # How it differs from a plain ureq agent
//!
//! Nine things, each for a reason (what the TCP transport and the borrowed agents save is
//! measured in `BENCHMARKS.md`, "HTTP benchmarks"):
//! - **The timeout is one deadline for the whole URL** (DNS, connect, TLS, request, redirects and
//!   body together), where Python's is per socket operation. A server that drips a byte a second
//!   still fails on time.
//! - **Redirects are followed here** (`exchange.rs`), because ureq resolves a `Location` of
//!   `?q=1` or `#f` against the directory rather than the document and would try any scheme.
//!   A `Location` resolves as RFC 3986 (and Python's `urljoin`) resolves a reference; one to a
//!   scheme other than `http` or `https`, or one that is not a valid URL, ends the fetch with
//!   an error that names it (escaped and cut short: it is the server's text).
//! - **Errors are relabelled on the way out of the transport** (`transport.rs`), because ureq
//!   reports any expiry of the deadline as `Timeout::Global`, and a user wants to know whether
//!   DNS, the connect or the server was slow.
//! - **Proxies are chosen per URL scheme, as curl chooses them** ([`Proxies`]), where ureq takes
//!   one proxy for every scheme from whichever variable it finds first.
//! - **`http://` URLs go to an HTTP proxy whole, in absolute form** (`forward.rs`), as curl and
//!   Python send them, where ureq tunnels every URL with `CONNECT`.
//! - **Names resolve through a cache of their own** (`resolver.rs`): IP literals without a
//!   lookup, host names once per [`DNS_TTL`], [`Resolve`] and [`ConnectTo`] entries first
//!   (`targets.rs`). ureq's own resolver starts a thread for every request once a deadline is
//!   set, which held throughput well below what the connection pool allows.
//! - **Each request borrows an agent of its own** (`clients.rs`), kept per host between
//!   requests, because ureq's one pool per agent is behind a lock that many workers contend for.
//! - **The TCP transport is leaner** (`socket.rs`): ureq's spends system calls on every
//!   kept-alive request that this one does without.
//! - **A host's addresses are raced** (`eyeballs.rs`, Happy Eyeballs as curl does it), where
//!   ureq tries them one after another, each with the whole time left.
//!
//! [`FetchError`]'s `Display` is one line, worded like Python's `urllib` where it has words for
//! it; the CLI prints it after `generated an exception: `.
//!
//! # Retries
//!
//! With [`FetchOptions::retries`] above 0, a [transient](FetchError::is_transient) failure is
//! tried again after a backoff, and all of it stays inside the one deadline: each attempt may
//! only use what is left of it, and no retry starts unless, after its wait, at least as much time
//! is left as the failed attempt took. Independently of that setting, a request that finds its
//! pooled keep-alive connection closed by the server before any byte of an answer is sent again
//! once on a new connection, as browsers and curl do: the server may have closed an idle
//! connection just as it was reused.
//!
//! # The files, in reading order
//!
//! `options.rs` (what a caller sets and gets back), `fetcher.rs` (the retry loop),
//! `exchange.rs` (one attempt: its requests and redirects), `urls.rs` (which URLs are fetched,
//! where a redirect leads), `accept.rs`, `proxy.rs`, `retry.rs` (backoff and
//! `Retry-After`), `checks.rs` (the content checks on a streamed body), `error.rs`, `kind.rs`
//! and `classify.rs` (what went wrong, its stable kind and its wording), `facts.rs` (what a fetch
//! learns besides the byte count), `redact.rs` (passwords out of URLs shown), then the layers
//! under ureq: `clients.rs`, `transport.rs`, `forward.rs`, `tls.rs` (trust, certificates and
//! TLS's wording), `socket.rs`, `buffers.rs` (a connection's buffers), `eyeballs.rs`,
//! `resolver.rs` and `targets.rs`.

use std::time::Duration;

mod accept;
mod buffers;
mod checks;
mod classify;
mod clients;
mod error;
mod exchange;
mod eyeballs;
mod facts;
mod fetcher;
mod forward;
mod kind;
mod options;
mod proxy;
mod redact;
mod resolver;
mod retry;
mod socket;
mod targets;
mod tls;
mod transport;
mod urls;

pub use accept::{ParseStatusRangesError, StatusRanges};
pub use checks::{
    CheckFailure, Checks, DEFAULT_SCAN_LIMIT, HeaderCheck, Pattern, PatternError, REGEX_OVERLAP,
};
pub use error::{FetchError, Phase};
pub use facts::{Facts, Transfer};
pub use fetcher::{Fetcher, load_url};
pub use kind::ErrorKind;
pub use options::{FetchOptions, Method, Page};
pub use proxy::Proxies;
pub use redact::redact_password;
pub use resolver::DNS_TTL;
pub use retry::{RETRY_BASE_DELAY, RETRY_MAX_DELAY};
pub use targets::{ConnectTo, ParseTargetError, Resolve};
pub use tls::{CaCertificates, ClientIdentity, PemError, SystemStore, TlsInfo, Trust};

/// How long [`Fetcher::load_url`] may take for one URL unless told otherwise: 60 seconds, the
/// value the Python example passes to `load_url`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many redirects are followed by default: 10, like ureq, and like Python's
/// `HTTPRedirectHandler.max_redirections`.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

/// The `User-Agent` header sent by default: `fetchall/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("fetchall/", env!("CARGO_PKG_VERSION"));
