//! Fetching one URL: the Rust port of `load_url(url, timeout)` from Python's
//! `concurrent.futures` documentation, built to be a trustworthy smoke-testing fetcher.
//!
//! A [`Fetcher`] holds keep-alive connections that all its clones share, so every worker thread
//! reuses them. [`Fetcher::load_url`] streams the body through a fixed buffer and only counts it,
//! so a 1 GiB body costs no memory, and the count is what Python's `len(conn.read())` would give
//! (`Accept-Encoding: identity`, nothing is decompressed).
//!
//! Six things differ from a plain ureq agent, each for a reason (the figures for the last two
//! are in `BENCHMARKS.md`, "HTTP benchmarks"):
//! - **The timeout is one deadline for the whole URL** (DNS, connect, TLS, request, redirects and
//!   body together), where Python's is per socket operation. A server that drips a byte a second
//!   still fails on time.
//! - **Names resolve through [`CachingResolver`]**: IP literals without a lookup, host names once per
//!   [`DNS_TTL`]. ureq's own resolver starts a thread for every request once a deadline is set,
//!   which capped throughput at a third of what the connection pool allows.
//! - **Errors are relabelled on the way out of the transport** ([`PhaseConnector`]), because ureq
//!   reports any expiry of the deadline as `Timeout::Global`, and a user wants to know whether DNS,
//!   the connect or the server was slow.
//! - **Proxies are chosen per URL scheme, as curl chooses them** ([`Proxies`]), where ureq takes
//!   one proxy for every scheme from whichever variable it finds first.
//! - **Each request borrows an agent of its own** (`clients.rs`), kept per host between
//!   requests, because ureq's one pool per agent is behind a lock that 50 workers contended for.
//! - **The TCP transport is leaner** (`socket.rs`): ureq's made eleven system calls per
//!   kept-alive request where six do.
//!
//! [`FetchError`]'s `Display` is the one-line message the CLI prints after
//! `generated an exception: `, worded like Python's `urllib` where it has words for it.
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

use crate::repr::repr;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ureq::config::Config;
use ureq::http::header::{ACCEPT_ENCODING, CONTENT_TYPE, LOCATION, RETRY_AFTER, USER_AGENT};
use ureq::http::{HeaderMap, HeaderValue, StatusCode, Uri, Version};
use ureq::tls::TlsConfig;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ChainedConnector, ConnectProxyConnector, ConnectionDetails, Connector, NextTimeout,
    RustlsConnector, Transport,
};
use ureq::{Agent, Proxy, ProxyProtocol, ResponseExt, Timeout};

pub use self::checks::{
    CheckFailure, Checks, DEFAULT_SCAN_LIMIT, HeaderCheck, Pattern, PatternError, REGEX_OVERLAP,
};
pub use self::facts::{Facts, Transfer};
pub use self::kind::ErrorKind;

use self::checks::BodyChecks;
use self::clients::{CONNECTIONS_PER_AGENT, Clients};
use self::facts::Opened;
use self::socket::SocketConnector;

mod checks;
mod clients;
mod facts;
mod kind;
mod socket;

/// How long [`Fetcher::load_url`] may take for one URL unless told otherwise: 60 seconds, the
/// value the Python example passes to `load_url`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many redirects are followed by default: 10, like ureq, and like Python's
/// `HTTPRedirectHandler.max_redirections`.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

/// The `User-Agent` header sent by default: `fetchall/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("fetchall/", env!("CARGO_PKG_VERSION"));

/// The backoff before the first retry is between half this and this: 100 ms. It doubles for
/// each further retry, up to [`RETRY_MAX_DELAY`].
pub const RETRY_BASE_DELAY: Duration = Duration::from_millis(100);

/// The longest backoff between two attempts: 10 seconds. A `Retry-After` header may ask for more.
pub const RETRY_MAX_DELAY: Duration = Duration::from_secs(10);

/// How long a host name's addresses are reused before it is looked up again.
pub const DNS_TTL: Duration = Duration::from_secs(60);

/// How long a failed lookup is remembered. Shorter than [`DNS_TTL`], so a passing resolver
/// hiccup does not fail a minute of URLs.
const DNS_NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Above this many cached host names, expired entries are swept out before adding one.
const DNS_CACHE_MAX: usize = 4096;

/// Error bodies up to this size are read and discarded so the connection can be reused.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// The largest buffer a body is read through.
const READ_BUFFER: usize = 64 * 1024;

/// Each connection's input buffer: ureq's default is 128 KiB, which is exactly glibc's threshold
/// for serving an allocation with its own `mmap`, and the kernel's copy into a buffer placed that
/// way cost 1.8 times the CPU of the copy into one from the heap (200 bodies of 10 MB on 5
/// workers: 1.89 s against 1.05 s of client CPU, `BENCHMARKS.md`, "HTTP benchmarks"). 96 KiB stays on
/// the heap and still holds the largest response head ureq accepts (64 KiB).
const INPUT_BUFFER: usize = 96 * 1024;

/// Each connection's output buffer, which must hold the whole request head (ureq fails a larger
/// one with `OutputOverflow`): 64 KiB, like the largest response head, where ureq's default is
/// 128 KiB. Every connection touches all of it, so 50 connections keep 3 MiB less.
const OUTPUT_BUFFER: usize = 64 * 1024;

/// The request method [`Fetcher::load_url`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Method {
    /// `GET`: fetch and count the body, as Python's `urlopen` does.
    #[default]
    Get,
    /// `HEAD`: headers only; [`Page::bytes`] is then 0.
    Head,
}

/// Settings for a [`Fetcher`]. Start from [`FetchOptions::default`] and change fields.
///
/// The struct is `#[non_exhaustive]` so that options can be added without breaking callers.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fetchall::{FetchOptions, Fetcher, Method};
///
/// let mut options = FetchOptions::default();
/// options.timeout = Duration::from_secs(5);
/// options.method = Method::Head;
/// options.retries = 2;
/// options.accept = "200-299,404".parse()?;
/// let fetcher = Fetcher::new(options);
/// # drop(fetcher);
/// # Ok::<(), fetchall::ParseStatusRangesError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchOptions {
    /// Total time allowed for one URL: resolve, connect, TLS, request, redirects and the whole
    /// body, and every retry with the waits before them. Default [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// How many times a [transient](FetchError::is_transient) failure is tried again. Default 0.
    ///
    /// Retry number `n` waits a random time between half and all of
    /// `min(`[`RETRY_BASE_DELAY`]` * 2^(n-1), `[`RETRY_MAX_DELAY`]`)` ("equal jitter": never less
    /// than half the backoff, spread over the other half), or what the response's `Retry-After`
    /// header asks for when it has one (seconds, or an HTTP date). A retry is only made when,
    /// after that wait, at least as much of [`FetchOptions::timeout`] is left as the failed
    /// attempt took; otherwise the last failure is the answer.
    ///
    /// Even with 0, a request that finds its pooled keep-alive connection closed by the server
    /// before any byte of an answer is sent again at once on a new connection, once: the server
    /// may have closed the idle connection just as it was reused. That is not counted as an
    /// attempt of its own.
    pub retries: u32,
    /// The statuses that count as success. Any other is [`FetchError::Status`]. Default
    /// `200-299`, as in Python's `urlopen`. A status accepted here is never retried.
    pub accept: StatusRanges,
    /// Redirects followed before giving up with [`FetchError::TooManyRedirects`]. With 0,
    /// redirects are not followed: a `3xx` is then a status like any other, a page if
    /// [`FetchOptions::accept`] has it and [`FetchError::Status`] if not. Default
    /// [`DEFAULT_MAX_REDIRECTS`].
    pub max_redirects: u32,
    /// The `User-Agent` header. Default [`DEFAULT_USER_AGENT`].
    pub user_agent: HeaderValue,
    /// `GET` (default) or `HEAD`.
    pub method: Method,
    /// Extra request headers. They are added after `User-Agent` and `Accept-Encoding: identity`,
    /// so a header given here replaces those (an `Accept-Encoding` other than `identity` makes the
    /// byte count the encoded size: bodies are never decompressed).
    pub headers: HeaderMap,
    /// Skip TLS certificate and host name verification. Default `false`: certificates are
    /// verified against the bundled Mozilla roots.
    pub insecure: bool,
    /// The HTTP proxies, by URL scheme. Default [`Proxies::from_env`]: the environment
    /// variables curl reads.
    pub proxies: Proxies,
    /// Idle keep-alive connections kept in total (after a redirect to another host, the request
    /// may keep one more, for that host). Default 128.
    pub max_idle_connections: usize,
    /// Idle keep-alive connections kept per host. Set it to at least the number of worker threads,
    /// or workers that share one host will reconnect. Default 32.
    pub max_idle_connections_per_host: usize,
    /// What each page must say: texts and patterns its body must or must not contain, and
    /// headers it must have, checked as the body streams past (see [`Checks`]). A page that
    /// fails a check fails with [`FetchError::Check`]. Default: no checks.
    pub checks: Checks,
    /// The longest a page may take, [`Page::elapsed`] (retries included): a page that takes
    /// longer fails with [`FetchError::Slow`] once it is fetched. [`FetchOptions::timeout`]
    /// still bounds the fetch itself. Default `None`: no limit but the timeout.
    pub slow: Option<Duration>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            timeout: DEFAULT_TIMEOUT,
            retries: 0,
            accept: StatusRanges::default(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
            user_agent: HeaderValue::from_static(DEFAULT_USER_AGENT),
            method: Method::Get,
            headers: HeaderMap::new(),
            insecure: false,
            proxies: Proxies::from_env(),
            max_idle_connections: 128,
            max_idle_connections_per_host: 32,
            checks: Checks::default(),
            slow: None,
        }
    }
}

/// What a successful fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page {
    /// The final response's status code, one that [`FetchOptions::accept`] has (2xx by default).
    pub status: u16,
    /// The body's length as received, without decoding: Python's `len(conn.read())`.
    pub bytes: u64,
    /// The URL the page came from, when redirects led away from the one asked for.
    pub final_url: Option<String>,
    /// Time from the start of [`Fetcher::load_url`] until the last body byte, retries included.
    pub elapsed: Duration,
    /// Attempts made for this page: 1, more after retries. A request sent again at once on a new
    /// connection after the keep-alive race (see [`FetchOptions::retries`]) is part of the
    /// attempt it repeats, as curl and browsers do not count it as a retry either.
    pub attempts: u32,
}

/// Fetches URLs with one shared connection pool. Cheap to clone: clones share the pool.
///
/// # Examples
///
/// ```no_run
/// use fetchall::Fetcher;
///
/// let fetcher = Fetcher::default();
/// let page = fetcher.load_url("http://example.com/")?;
/// println!("page is {} bytes", page.bytes);
/// # Ok::<(), fetchall::FetchError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Fetcher {
    clients: Arc<Clients>,
    method: Method,
    max_redirects: u32,
    timeout: Duration,
    retries: u32,
    slow: Option<Duration>,
    shared: Arc<Shared>,
}

/// What every clone of a [`Fetcher`] uses and nobody changes, except the jitter's state.
#[derive(Debug)]
struct Shared {
    headers: HeaderMap,
    accept: StatusRanges,
    proxies: Proxies,
    jitter: Jitter,
    checks: Checks,
}

impl Default for Fetcher {
    fn default() -> Self {
        Fetcher::new(FetchOptions::default())
    }
}

impl Fetcher {
    /// Makes a fetcher: keep-alive connections shared by all clones, the deadline from
    /// `options.timeout`, and a resolver that answers IP literals directly and remembers host
    /// names for [`DNS_TTL`], so that no request starts a thread of its own.
    pub fn new(options: FetchOptions) -> Fetcher {
        let mut config = Agent::config_builder()
            .timeout_global(Some(options.timeout))
            // Status and redirect errors are made here, with the reason phrase and the 3xx code
            // that ureq's own errors leave out.
            .http_status_as_error(false)
            .max_redirects(options.max_redirects)
            .max_redirects_will_error(false)
            // For `Facts::redirects`.
            .save_redirect_history(true)
            // Per agent: a request borrows a whole agent (see `clients.rs`).
            .max_idle_connections(CONNECTIONS_PER_AGENT)
            .max_idle_connections_per_host(1)
            .input_buffer_size(INPUT_BUFFER)
            .output_buffer_size(OUTPUT_BUFFER)
            // ureq would read one proxy for every scheme from the environment; `Proxies` picks
            // one per request instead (see `Fetcher::exchange`).
            .proxy(None)
            .tls_config(
                TlsConfig::builder()
                    .disable_verification(options.insecure)
                    .build(),
            );
        if let Ok(user_agent) = options.user_agent.to_str() {
            // Only for a proxy's CONNECT: the requests themselves carry the header below.
            config = config.user_agent(user_agent);
        }
        let clients = Clients::new(
            config.build(),
            PhaseConnector::new(),
            options.max_idle_connections,
            options.max_idle_connections_per_host,
        );

        let mut headers = HeaderMap::with_capacity(2 + options.headers.len());
        headers.insert(USER_AGENT, options.user_agent);
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let mut last = None;
        for (name, value) in options.headers {
            // The owning iterator names a header once, then yields its further values unnamed:
            // the first value replaces a default, the others are appended to it.
            match name {
                Some(name) => {
                    headers.insert(name.clone(), value);
                    last = Some(name);
                }
                None => {
                    if let Some(name) = &last {
                        headers.append(name, value);
                    }
                }
            }
        }

        Fetcher {
            clients: Arc::new(clients),
            method: options.method,
            max_redirects: options.max_redirects,
            timeout: options.timeout,
            retries: options.retries,
            slow: options.slow,
            shared: Arc::new(Shared {
                headers,
                accept: options.accept,
                proxies: options.proxies,
                jitter: Jitter::new(),
                checks: options.checks,
            }),
        }
    }

    /// Fetches `url` and counts its body, within the timeout, retrying as
    /// [`FetchOptions::retries`] allows.
    ///
    /// The URL must be `http` or `https`; anything else fails with [`FetchError::InvalidUrl`]
    /// without touching the network.
    ///
    /// # Errors
    ///
    /// Every way a fetch can fail is a [`FetchError`]: a status [`FetchOptions::accept`] lacks,
    /// a timeout (with the phase and the bytes received), a refused or reset connection, a
    /// truncated body, a TLS or protocol failure. After more than one attempt it is
    /// [`FetchError::Retried`], which holds the last attempt's error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use fetchall::Fetcher;
    ///
    /// let fetcher = Fetcher::default();
    /// match fetcher.load_url("http://example.com/missing") {
    ///     Ok(page) => println!("page is {} bytes", page.bytes),
    ///     Err(e) => println!("generated an exception: {e}"), // HTTP Error 404: Not Found
    /// }
    /// # Ok::<(), fetchall::FetchError>(())
    /// ```
    pub fn load_url(&self, url: &str) -> Result<Page, FetchError> {
        self.fetch(url).result
    }

    /// [`Fetcher::load_url`], and the [`Facts`] learnt on the way, whether it succeeded or not:
    /// the final URL, the redirects, the content type, the HTTP version, the remote address
    /// and the time of each phase of the final request.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use fetchall::Fetcher;
    ///
    /// let transfer = Fetcher::default().fetch("http://example.com/");
    /// if let Some(addr) = transfer.facts.remote_addr {
    ///     println!("from {addr}, first byte after {:?}", transfer.facts.ttfb);
    /// }
    /// let page = transfer.result?;
    /// # Ok::<(), fetchall::FetchError>(())
    /// ```
    pub fn fetch(&self, url: &str) -> Transfer {
        let mut facts = Facts::default();
        let result = self.fetch_into(url, &mut facts);
        Transfer { result, facts }
    }

    /// The retry loop of [`Fetcher::fetch`]; `facts` ends up with the last attempt's.
    fn fetch_into(&self, url: &str, facts: &mut Facts) -> Result<Page, FetchError> {
        let started = Instant::now();
        let uri = parse_url(url)?;
        let proxy = self.shared.proxies.select(&uri)?;
        // `None` only for a timeout too large to add to a clock: no deadline, as ureq does.
        let deadline = started.checked_add(self.timeout);
        let mut retries = 0;
        let mut reconnected = false;
        loop {
            let attempt_started = Instant::now();
            let first = retries == 0 && !reconnected;
            let (result, attempt_facts) = self.attempt(&uri, proxy, deadline, started, first);
            *facts = attempt_facts;
            let failed = match result {
                Ok(page) => {
                    let attempts = retries + 1;
                    return match self.slow {
                        Some(limit) if page.elapsed > limit => Err(FetchError::Slow {
                            elapsed: page.elapsed,
                            limit,
                        }
                        .after(attempts)),
                        _ => Ok(Page { attempts, ..page }),
                    };
                }
                Err(failed) => failed,
            };
            // The keep-alive race is not a failure of the server: the request is sent again
            // once, at once, as part of the same attempt.
            let reconnect = failed.stale && !reconnected;
            let wait = if reconnect {
                Some(Duration::ZERO)
            } else if retries < self.retries && failed.error.is_transient() {
                let backoff = || self.shared.jitter.backoff(retries + 1);
                Some(failed.retry_after.unwrap_or_else(backoff))
            } else {
                None
            };
            // The failed attempt's duration is the estimate of the next one's.
            let fits = |wait: &Duration| {
                let needed = wait.saturating_add(attempt_started.elapsed());
                deadline.is_none_or(|deadline| {
                    Instant::now()
                        .checked_add(needed)
                        .is_some_and(|end| end < deadline)
                })
            };
            let Some(wait) = wait.filter(fits) else {
                return Err(failed.error.after(retries + 1));
            };
            if reconnect {
                reconnected = true;
            } else {
                retries += 1;
            }
            tracing::debug!(url, retries, ?wait, error = %failed.error, "will try again");
            thread::sleep(wait);
        }
    }

    /// One request for `uri` with what is left of `deadline`, on an agent borrowed for it, and
    /// what it learnt.
    fn attempt(
        &self,
        uri: &Uri,
        proxy: Option<&Proxy>,
        deadline: Option<Instant>,
        started: Instant,
        first: bool,
    ) -> (Result<Page, Failed>, Facts) {
        let agent = self.clients.take(uri);
        facts::reset();
        let mut response_facts = Facts::default();
        let result = self.exchange(
            &agent,
            uri,
            proxy,
            deadline,
            (started, first),
            &mut response_facts,
        );
        // The response is read or dropped by now, so its connection is back in the agent's pool.
        self.clients.give_back(uri, agent);
        let measured = facts::take();
        let facts = Facts {
            remote_addr: measured.remote_addr,
            dns: measured.dns,
            connect: measured.connect,
            tls: measured.tls,
            ttfb: measured.ttfb,
            ..response_facts
        };
        (result, facts)
    }

    /// The request itself, and the reading of its response, whose facts go to `facts`.
    /// `(started, first)`: when the URL's fetch started, and whether this is its first request.
    fn exchange(
        &self,
        agent: &Agent,
        uri: &Uri,
        proxy: Option<&Proxy>,
        deadline: Option<Instant>,
        (started, first): (Instant, bool),
        facts: &mut Facts,
    ) -> Result<Page, Failed> {
        let mut request = match self.method {
            Method::Get => agent.get(uri.clone()),
            Method::Head => agent.head(uri.clone()),
        };
        if let Some(headers) = request.headers_mut() {
            headers.clone_from(&self.shared.headers);
        }
        // The agent's own deadline is the whole timeout, which is right for a first attempt.
        // Any other attempt, and any request through a proxy, gets a configuration of its own
        // (the pool is still shared: ureq keys pooled connections by proxy).
        let response = if first && proxy.is_none() {
            request.call()
        } else {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let config = request.config().timeout_global(left);
            config.proxy(proxy.cloned()).build().call()
        };
        let response = response.map_err(|e| Failed {
            stale: is_stale(&e),
            error: classify(e, Stage::Exchange, started.elapsed()),
            retry_after: None,
        })?;

        response_facts(&response, facts);
        let status = response.status();
        let code = status.as_u16();
        let redirect = status.is_redirection()
            && self.max_redirects > 0
            && response.headers().contains_key(LOCATION);
        if redirect || !self.shared.accept.contains(code) {
            let retry_after = retry_after(response.headers(), SystemTime::now());
            drain_small(response);
            let error = if redirect {
                FetchError::TooManyRedirects {
                    code,
                    followed: self.max_redirects,
                }
            } else {
                FetchError::Status { code }
            };
            return Err(Failed {
                error,
                retry_after,
                stale: false,
            });
        }

        if let Err(failure) = self.shared.checks.check_headers(response.headers()) {
            drain_small(response);
            return Err(Failed {
                error: FetchError::Check(failure),
                retry_after: None,
                stale: false,
            });
        }

        let final_url = (*response.get_uri() != *uri).then(|| response.get_uri().to_string());
        let expected = response.body().content_length();
        let mut body = response.into_body().into_reader();
        let mut checks = self.shared.checks.body();
        match count_body(&mut body, expected, checks.as_mut()) {
            (bytes, Ok(())) => {
                let verdict = checks.map_or(Ok(()), |mut checks| {
                    checks.finish();
                    checks.verdict()
                });
                match verdict {
                    Ok(()) => Ok(Page {
                        status: code,
                        bytes,
                        final_url,
                        elapsed: started.elapsed(),
                        attempts: 1,
                    }),
                    Err(failure) => Err(Failed {
                        error: FetchError::Check(failure),
                        retry_after: None,
                        stale: false,
                    }),
                }
            }
            (bytes, Err(e)) => {
                let stage = Stage::Body { bytes, expected };
                Err(Failed {
                    error: classify(ureq::Error::from(e), stage, started.elapsed()),
                    retry_after: None,
                    stale: false,
                })
            }
        }
    }
}

/// What the response itself says: where it came from, after how many redirects, in which
/// version of HTTP and with which content type.
fn response_facts(response: &ureq::http::Response<ureq::Body>, facts: &mut Facts) {
    facts.final_url = Some(response.get_uri().to_string());
    facts.redirects = response.get_redirect_history().map_or(0, |history| {
        u32::try_from(history.len().saturating_sub(1)).unwrap_or(u32::MAX)
    });
    facts.content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| one_line(&String::from_utf8_lossy(value.as_bytes())));
    facts.http_version = match response.version() {
        Version::HTTP_09 => Some("HTTP/0.9"),
        Version::HTTP_10 => Some("HTTP/1.0"),
        Version::HTTP_11 => Some("HTTP/1.1"),
        Version::HTTP_2 => Some("HTTP/2"),
        Version::HTTP_3 => Some("HTTP/3"),
        _ => None,
    };
}

/// Reads a small response that is not wanted (an error page) to its end, which lets the
/// connection go back to the pool; a failure here changes nothing about the answer. A large
/// one is dropped, and its connection closed.
fn drain_small(response: ureq::http::Response<ureq::Body>) {
    let expected = response.body().content_length();
    if expected.is_some_and(|n| n <= DRAIN_LIMIT) {
        let mut body = response.into_body().into_reader();
        let _ = io::copy(&mut body, &mut io::sink());
    }
}

/// Why one attempt failed, and what that says about trying again.
#[derive(Debug)]
struct Failed {
    error: FetchError,
    /// The wait the response's `Retry-After` header asked for.
    retry_after: Option<Duration>,
    /// A pooled connection that turned out closed before any byte of the response.
    stale: bool,
}

/// Fetches `url` with `fetcher`: the Python example's `load_url(url, timeout)`, with the timeout
/// inside the [`Fetcher`]. The same as [`Fetcher::load_url`].
///
/// # Errors
///
/// See [`Fetcher::load_url`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use fetchall::{load_url, FetchOptions, Fetcher};
///
/// let mut options = FetchOptions::default();
/// options.timeout = Duration::from_secs(60);
/// let fetcher = Fetcher::new(options);
/// let page = load_url(&fetcher, "http://www.foxnews.com/")?;
/// println!("page is {} bytes", page.bytes);
/// # Ok::<(), fetchall::FetchError>(())
/// ```
pub fn load_url(fetcher: &Fetcher, url: &str) -> Result<Page, FetchError> {
    fetcher.load_url(url)
}

/// The HTTP statuses that count as success, as inclusive ranges: `200-299,304,404`.
///
/// The default is `200-299`, Python's `urlopen` rule. Parsed from a comma-separated list of
/// codes (`404`) and ranges (`200-299`), each between 100 and 599.
///
/// # Examples
///
/// ```
/// use fetchall::StatusRanges;
///
/// let accept: StatusRanges = "200-299,304,404".parse()?;
/// assert!(accept.contains(204) && accept.contains(404));
/// assert!(!accept.contains(500));
/// assert_eq!(accept.to_string(), "200-299,304,404");
/// assert!("600".parse::<StatusRanges>().is_err());
/// # Ok::<(), fetchall::ParseStatusRangesError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRanges(Vec<(u16, u16)>);

impl StatusRanges {
    /// Whether `code` is in one of the ranges.
    pub fn contains(&self, code: u16) -> bool {
        self.0
            .iter()
            .any(|&(low, high)| (low..=high).contains(&code))
    }
}

impl Default for StatusRanges {
    fn default() -> Self {
        StatusRanges(vec![(200, 299)])
    }
}

impl FromStr for StatusRanges {
    type Err = ParseStatusRangesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |why: String| ParseStatusRangesError(why);
        let code = |text: &str| match text.trim().parse::<u16>() {
            Ok(code @ 100..=599) => Ok(code),
            _ => Err(error(format!(
                "{} is not a status code from 100 to 599",
                repr(text.trim())
            ))),
        };
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let range = match part.split_once('-') {
                Some((low, high)) => (code(low)?, code(high)?),
                None => (code(part)?, code(part)?),
            };
            if range.0 > range.1 {
                return Err(error(format!("{} is an empty range", repr(part.trim()))));
            }
            ranges.push(range);
        }
        Ok(StatusRanges(ranges))
    }
}

impl fmt::Display for StatusRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(low, high)) in self.0.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            if low == high {
                write!(f, "{comma}{low}")?;
            } else {
                write!(f, "{comma}{low}-{high}")?;
            }
        }
        Ok(())
    }
}

/// Why a text is not a [`StatusRanges`]: `'600' is not a status code from 100 to 599`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseStatusRangesError(String);

impl fmt::Display for ParseStatusRangesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseStatusRangesError {}

/// The HTTP proxy for each URL scheme, and the hosts that bypass them: curl's rules.
///
/// | URL | Proxy, first one set and not empty |
/// |---|---|
/// | `http://` | `http_proxy`, `all_proxy`, `ALL_PROXY` |
/// | `https://` | `https_proxy`, `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY` |
///
/// Upper-case `HTTP_PROXY` is ignored, as curl ignores it: under CGI, a request's `Proxy:`
/// header arrives as that variable ("httpoxy"). A value without a scheme is an `http://`
/// proxy. `no_proxy` (or `NO_PROXY`) lists hosts that are fetched directly, separated by commas
/// or spaces: `*` for every host, a domain name for itself and its subdomains (a leading `.` or
/// `*.` changes nothing), an IP address, or an IP network (`10.0.0.0/8`). Ports are not part of
/// the match.
///
/// Every request, `http://` ones included, reaches its proxy through a `CONNECT` tunnel, which is
/// how ureq uses proxies; curl and Python instead send a plain-HTTP request to the proxy whole.
/// A redirect keeps the proxy chosen for the URL it started from. A proxy other than `http://`
/// or `https://` (SOCKS) is not supported: each URL that would use it fails with
/// [`FetchError::UnusableProxy`], rather than go around it.
///
/// # Examples
///
/// ```
/// use fetchall::{FetchOptions, Proxies};
///
/// let mut options = FetchOptions::default(); // reads the environment
/// options.proxies = Proxies::none();
/// let vars = [("https_proxy", "http://127.0.0.1:3128"), ("no_proxy", "localhost,.internal")];
/// let proxies = Proxies::from_vars(|name| {
///     vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
/// });
/// # drop(proxies);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    http: Option<ProxyVar>,
    https: Option<ProxyVar>,
    no_proxy: Vec<NoProxy>,
}

/// A proxy variable and what it says: `None` when it is unusable.
#[derive(Debug, Clone)]
struct ProxyVar {
    var: &'static str,
    value: String,
    proxy: Option<Proxy>,
}

/// One `no_proxy` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxy {
    All,
    /// A domain, lower case, without a leading dot: matches it and its subdomains.
    Domain(String),
    /// An address and the number of leading bits that must match.
    Network(IpAddr, u32),
}

impl Proxies {
    /// No proxy: every URL is fetched directly.
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// The proxies the environment names (see the [table](Proxies)).
    pub fn from_env() -> Proxies {
        Proxies::from_vars(|name| std::env::var(name).ok())
    }

    /// The proxies `lookup` names, given the variable names of the [table](Proxies): for tests,
    /// and for settings that come from somewhere other than the environment.
    pub fn from_vars(mut lookup: impl FnMut(&str) -> Option<String>) -> Proxies {
        let mut first = |names: &[&'static str]| {
            names.iter().find_map(|&name| {
                let value = lookup(name)?;
                (!value.trim().is_empty()).then_some((name, value))
            })
        };
        let all = first(&["all_proxy", "ALL_PROXY"]);
        let http = first(&["http_proxy"]).or_else(|| all.clone());
        let https = first(&["https_proxy", "HTTPS_PROXY"]).or(all);
        let no_proxy = first(&["no_proxy", "NO_PROXY"])
            .map(|(_, value)| parse_no_proxy(&value))
            .unwrap_or_default();
        Proxies {
            http: http.map(ProxyVar::new),
            https: https.map(ProxyVar::new),
            no_proxy,
        }
    }

    /// The proxy for `uri`, `None` to fetch it directly.
    fn select(&self, uri: &Uri) -> Result<Option<&Proxy>, FetchError> {
        let var = match uri.scheme_str() {
            Some("https") => &self.https,
            _ => &self.http,
        };
        let Some(var) = var else {
            return Ok(None);
        };
        let host = uri.host().unwrap_or_default();
        if self.bypasses(host) {
            return Ok(None);
        }
        match &var.proxy {
            Some(proxy) => Ok(Some(proxy)),
            None => Err(FetchError::UnusableProxy {
                var: var.var,
                value: var.value.clone(),
            }),
        }
    }

    /// Whether `no_proxy` sends `host` (as in a URI: IPv6 in brackets) around the proxy.
    fn bypasses(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip = bare.parse::<IpAddr>().ok();
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| match (entry, ip) {
            (NoProxy::All, _) => true,
            (NoProxy::Network(network, bits), Some(ip)) => in_network(ip, *network, *bits),
            (NoProxy::Domain(domain), None) => {
                name == *domain
                    || name
                        .strip_suffix(domain.as_str())
                        .is_some_and(|sub| sub.ends_with('.'))
            }
            _ => false,
        })
    }
}

impl ProxyVar {
    fn new((var, value): (&'static str, String)) -> ProxyVar {
        let proxy = Proxy::new(value.trim())
            .ok()
            .filter(|p| matches!(p.protocol(), ProxyProtocol::Http | ProxyProtocol::Https));
        ProxyVar { var, value, proxy }
    }
}

/// The entries of a `no_proxy` value; entries that mean nothing are left out.
fn parse_no_proxy(value: &str) -> Vec<NoProxy> {
    let entry = |entry: &str| {
        if entry == "*" {
            return Some(NoProxy::All);
        }
        let (address, bits) = match entry.split_once('/') {
            Some((address, bits)) => (address, Some(bits.parse::<u32>().ok()?)),
            None => (entry, None),
        };
        let address = address.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = address.parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            return Some(NoProxy::Network(ip, bits.unwrap_or(max).min(max)));
        }
        let domain = entry.trim_start_matches('*').trim_start_matches('.');
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        (bits.is_none() && !domain.is_empty()).then_some(NoProxy::Domain(domain))
    };
    value
        .split([',', ' ', '\t'])
        .filter(|e| !e.is_empty())
        .filter_map(entry)
        .collect()
}

/// Whether the first `bits` bits of `ip` and `network` agree (never across address families).
fn in_network(ip: IpAddr, network: IpAddr, bits: u32) -> bool {
    let prefix = |a: u128, b: u128, width: u32| {
        let shift = width - bits.min(width);
        a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
    };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            prefix(u32::from(ip).into(), u32::from(net).into(), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => prefix(u128::from(ip), u128::from(net), 128),
        _ => false,
    }
}

/// Random numbers for backoff jitter, without a random-number crate: a splitmix64 sequence
/// whose seed comes from std's `RandomState` (random keys from the OS, per process, varied per
/// instance). One atomic add per number, so the clones of a [`Fetcher`] share it without a lock.
#[derive(Debug)]
struct Jitter(AtomicU64);

impl Jitter {
    fn new() -> Jitter {
        Jitter(AtomicU64::new(RandomState::new().hash_one(0u64)))
    }

    fn next(&self) -> u64 {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The wait before retry number `retry` (from 1): see [`FetchOptions::retries`].
    fn backoff(&self, retry: u32) -> Duration {
        backoff(retry, self.next())
    }
}

/// Equal jitter: half of the capped exponential backoff for sure, and a `random` share of the
/// other half.
fn backoff(retry: u32, random: u64) -> Duration {
    let doublings = retry.saturating_sub(1).min(30);
    let ceiling = RETRY_BASE_DELAY
        .saturating_mul(1 << doublings)
        .min(RETRY_MAX_DELAY);
    let half = ceiling / 2;
    // At most 5 s in nanoseconds: no overflow.
    let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX - 1);
    half + Duration::from_nanos(random % (spread + 1))
}

/// The wait a `Retry-After` header asks for: delay-seconds, or an HTTP date (the IMF-fixdate
/// form, `Sun, 06 Nov 1994 08:49:37 GMT`) counted from `now`. The two obsolete date forms that
/// RFC 9110 still asks recipients to accept count as no header.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is longer than any deadline.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(text: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let number = |text: &str, digits: usize| -> Option<u64> {
        let all_digits = text.len() == digits && text.bytes().all(|b| b.is_ascii_digit());
        all_digits.then(|| text.parse().ok()).flatten()
    };
    let words: Vec<&str> = text.split(' ').collect();
    let [weekday, day, month, year, time, "GMT"] = words[..] else {
        return None;
    };
    let (day, year) = (number(day, 2)?, number(year, 4)?);
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, s] = hms[..] else {
        return None;
    };
    let (h, m, s) = (number(h, 2)?, number(m, 2)?, number(s, 2)?);
    let valid = weekday.len() == 4
        && weekday.ends_with(',')
        && (1..=31).contains(&day)
        && year >= 1970
        && h < 24
        && m < 60
        && s <= 60;
    if !valid {
        return None;
    }
    let seconds = days_since_epoch(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Days from 1970-01-01 to the given date of the Gregorian calendar, for years from 1970.
///
/// Counting from 1 March makes the leap day the last day of the counted year, so the days
/// before a month follow one formula: `(153 * m + 2) / 5` for months numbered from March = 0.
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let leap_days = year / 4 - year / 100 + year / 400;
    // 719_468 days from 0000-03-01 to 1970-01-01.
    year * 365 + leap_days + day_of_year - 719_468
}

/// Reads `body` to its end and counts it, keeping none of it: a body of any size costs one
/// buffer of at most [`READ_BUFFER`] bytes (and no more than the body needs), and the window of
/// the `checks`, which are fed each read. Returns the count even when reading fails half way.
///
/// Not `io::copy`: its 8 KiB buffer makes sixteen calls through ureq's body reader for each
/// 128 KiB ureq reads from the socket, and each call has its bookkeeping.
fn count_body(
    body: &mut impl Read,
    expected: Option<u64>,
    mut checks: Option<&mut BodyChecks<'_>>,
) -> (u64, io::Result<()>) {
    let size = expected.map_or(READ_BUFFER, |n| {
        usize::try_from(n).map_or(READ_BUFFER, |n| n.clamp(1, READ_BUFFER))
    });
    let mut buf = vec![0; size];
    let mut bytes = 0;
    loop {
        match body.read(&mut buf) {
            Ok(0) => return (bytes, Ok(())),
            Ok(n) => {
                bytes += n as u64;
                if let Some(checks) = checks.as_deref_mut() {
                    checks.feed(&buf[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (bytes, Err(e)),
        }
    }
}

/// Parses a URL as [`Fetcher::load_url`] accepts it: `http` or `https` with a host. The
/// fragment is dropped, as a browser and Python's `urllib` do: it is never sent.
fn parse_url(input: &str) -> Result<Uri, FetchError> {
    let invalid = || FetchError::InvalidUrl {
        url: input.to_owned(),
    };
    let mut url = url::Url::parse(input).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(invalid());
    }
    url.set_fragment(None);
    url.as_str().parse().map_err(|_| invalid())
}

/// Which part of a fetch a timeout cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Looking the host name up.
    Resolve,
    /// Opening the TCP connection, including the TLS handshake.
    Connect,
    /// Sending the request and waiting for the response headers (of any redirect hop).
    Response,
    /// Receiving the body.
    Body,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Response => "response",
            Phase::Body => "body",
        })
    }
}

/// Why [`Fetcher::load_url`] failed. `Display` is one line (never a newline), worded like
/// Python's `urllib` where it has words for the case.
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// The input is not an `http`/`https` URL: `unknown url type: 'LINE'`. Nothing was contacted.
    InvalidUrl {
        /// The input as given.
        url: String,
    },
    /// The final response's status is outside 2xx: `HTTP Error 404: Not Found`.
    Status {
        /// The status code.
        code: u16,
    },
    /// Still redirected after following the allowed number of redirects:
    /// `HTTP Error 302: Found (stopped after 10 redirects)`.
    TooManyRedirects {
        /// The status of the last redirect.
        code: u16,
        /// How many redirects were followed.
        followed: u32,
    },
    /// The deadline passed: `timed out (body, 1234 bytes received after 5.0s)`.
    Timeout {
        /// What was going on when time ran out.
        phase: Phase,
        /// Body bytes received by then (0 unless `phase` is [`Phase::Body`]).
        bytes: u64,
        /// Time since the fetch started.
        elapsed: Duration,
    },
    /// The host name did not resolve: `<urlopen error [Errno -2] Name or service not known>`.
    Resolve(Arc<io::Error>),
    /// A socket error: `<urlopen error [Errno 111] Connection refused>` while connecting,
    /// `[Errno 104] Connection reset by peer` afterwards.
    Io(io::Error),
    /// The server closed the connection without sending a response:
    /// `Remote end closed connection without response`.
    RemoteClosed,
    /// The connection ended before the body did:
    /// `IncompleteRead(10 bytes read, 90 more expected)`.
    IncompleteRead {
        /// Body bytes received.
        read: u64,
        /// Bytes still missing, when the response said how long the body is.
        expected: Option<u64>,
    },
    /// TLS failed, for instance an untrusted certificate: `<urlopen error [SSL] ...>`.
    Tls(ureq::Error),
    /// The response is not valid HTTP (Python's `BadStatusLine`):
    /// `invalid HTTP response: http parse fail: ...`.
    BadResponse(ureq::Error),
    /// Anything else ureq reported.
    Other(ureq::Error),
    /// The proxy set for the URL's scheme cannot be used, so nothing was contacted:
    /// `unusable proxy in ALL_PROXY: 'socks5://h:1080' (only http:// and https:// proxies are supported)`.
    UnusableProxy {
        /// The environment variable it came from.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// The page failed a content check of [`FetchOptions::checks`]:
    /// `expected text not found: 'Welcome'`.
    Check(CheckFailure),
    /// The page was fetched, but took longer than [`FetchOptions::slow`]: `slow: 2.31s > 2.00s`.
    Slow {
        /// How long it took ([`Page::elapsed`]).
        elapsed: Duration,
        /// The limit.
        limit: Duration,
    },
    /// More than one attempt was made and the last one failed with `last`:
    /// `HTTP Error 503: Service Unavailable (after 3 attempts)`.
    Retried {
        /// How many attempts were made.
        attempts: u32,
        /// Why the last one failed. Never itself `Retried`.
        last: Box<FetchError>,
    },
}

impl FetchError {
    /// The HTTP status that caused the error, for [`FetchError::Status`] and
    /// [`FetchError::TooManyRedirects`].
    ///
    /// # Examples
    ///
    /// ```
    /// let e = fetchall::FetchError::Status { code: 404 };
    /// assert_eq!(e.status(), Some(404));
    /// assert_eq!(e.to_string(), "HTTP Error 404: Not Found");
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { code } | FetchError::TooManyRedirects { code, .. } => Some(*code),
            FetchError::Retried { last, .. } => last.status(),
            _ => None,
        }
    }

    /// How many attempts were made for the URL (see [`Page::attempts`]): 0 when none could be
    /// (an invalid URL, an unusable proxy), the count for [`FetchError::Retried`], 1 otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::FetchError;
    ///
    /// assert_eq!(FetchError::Status { code: 503 }.attempts(), 1);
    /// let retried = FetchError::Retried {
    ///     attempts: 3,
    ///     last: Box::new(FetchError::Status { code: 503 }),
    /// };
    /// assert_eq!(retried.attempts(), 3);
    /// assert_eq!(retried.status(), Some(503));
    /// assert_eq!(retried.to_string(), "HTTP Error 503: Service Unavailable (after 3 attempts)");
    /// ```
    pub fn attempts(&self) -> u32 {
        match self {
            FetchError::InvalidUrl { .. } | FetchError::UnusableProxy { .. } => 0,
            FetchError::Retried { attempts, .. } => *attempts,
            _ => 1,
        }
    }

    /// Whether trying again may succeed, and so whether [`FetchOptions::retries`] applies:
    ///
    /// - statuses 408, 429, 500, 502, 503 and 504 (the ones curl's `--retry` retries);
    /// - a refused, reset or aborted connection, an unreachable host or network, and a server
    ///   that closed the connection before the response or in the middle of the body;
    /// - a timeout, though with the attempt's deadline being the URL's, no time is left then.
    ///
    /// Not transient: other statuses, too many redirects, TLS and protocol errors, an invalid
    /// URL, and a failed name lookup (remembered for a few seconds, so a retry would get the
    /// same answer).
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::FetchError;
    ///
    /// assert!(FetchError::Status { code: 503 }.is_transient());
    /// assert!(!FetchError::Status { code: 404 }.is_transient());
    /// assert!(FetchError::RemoteClosed.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { code } => matches!(code, 408 | 429 | 500 | 502 | 503 | 504),
            FetchError::Timeout { .. }
            | FetchError::RemoteClosed
            | FetchError::IncompleteRead { .. } => true,
            FetchError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::NotConnected
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::AddrNotAvailable
            ),
            FetchError::Retried { last, .. } => last.is_transient(),
            _ => false,
        }
    }

    /// The error to report after `attempts` attempts, the last of which failed with `self`.
    fn after(self, attempts: u32) -> FetchError {
        if attempts > 1 {
            FetchError::Retried {
                attempts,
                last: Box::new(self),
            }
        } else {
            self
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::InvalidUrl { url } => write!(f, "unknown url type: {}", repr(url)),
            FetchError::Status { code } => write!(f, "HTTP Error {code}: {}", reason(*code)),
            FetchError::TooManyRedirects { code, followed } => write!(
                f,
                "HTTP Error {code}: {} (stopped after {followed} redirects)",
                reason(*code)
            ),
            FetchError::Timeout {
                phase: Phase::Body,
                bytes,
                elapsed,
            } => write!(
                f,
                "timed out (body, {bytes} bytes received after {:.1}s)",
                elapsed.as_secs_f64()
            ),
            FetchError::Timeout { phase, elapsed, .. } => {
                write!(
                    f,
                    "timed out ({phase}, after {:.1}s)",
                    elapsed.as_secs_f64()
                )
            }
            FetchError::Resolve(e) => write!(f, "<urlopen error {}>", lookup_message(e)),
            FetchError::Io(e) if is_connect_error(e) => {
                write!(f, "<urlopen error {}>", errno_message(e))
            }
            FetchError::Io(e) => f.write_str(&errno_message(e)),
            FetchError::RemoteClosed => {
                f.write_str("Remote end closed connection without response")
            }
            FetchError::IncompleteRead {
                read,
                expected: Some(more),
            } => write!(f, "IncompleteRead({read} bytes read, {more} more expected)"),
            FetchError::IncompleteRead {
                read,
                expected: None,
            } => write!(f, "IncompleteRead({read} bytes read)"),
            FetchError::Tls(e) => write!(f, "<urlopen error [SSL] {}>", detail_message(e)),
            FetchError::BadResponse(e) => {
                write!(f, "invalid HTTP response: {}", detail_message(e))
            }
            FetchError::Other(e) => f.write_str(&one_line(&e.to_string())),
            FetchError::UnusableProxy { var, value } => write!(
                f,
                "unusable proxy in {var}: {} (only http:// and https:// proxies are supported)",
                repr(value)
            ),
            FetchError::Check(failure) => fmt::Display::fmt(failure, f),
            FetchError::Slow { elapsed, limit } => write!(
                f,
                "slow: {:.2}s > {:.2}s",
                elapsed.as_secs_f64(),
                limit.as_secs_f64()
            ),
            FetchError::Retried { attempts, last } => {
                write!(f, "{last} (after {attempts} attempts)")
            }
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FetchError::Resolve(e) => Some(&**e),
            FetchError::Io(e) => Some(e),
            FetchError::Tls(e) | FetchError::BadResponse(e) | FetchError::Other(e) => Some(e),
            FetchError::Retried { last, .. } => Some(&**last),
            _ => None,
        }
    }
}

/// Where a fetch was when ureq reported an error.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Anywhere up to the final response's headers.
    Exchange,
    /// Reading the body, with what had arrived and what the headers promised in total.
    Body { bytes: u64, expected: Option<u64> },
}

/// Sorts a ureq error into a [`FetchError`]. The one place where ureq's and the socket's errors
/// get their Python wording.
fn classify(err: ureq::Error, stage: Stage, elapsed: Duration) -> FetchError {
    match err {
        ureq::Error::Timeout(reason) => {
            let (phase, bytes) = match stage {
                Stage::Body { bytes, .. } => (Phase::Body, bytes),
                Stage::Exchange => (timeout_phase(reason), 0),
            };
            FetchError::Timeout {
                phase,
                bytes,
                elapsed,
            }
        }
        ureq::Error::Io(e) => classify_io(e, stage),
        ureq::Error::Other(boxed) => classify_other(boxed, stage),
        e @ (ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::TlsRequired) => FetchError::Tls(e),
        e @ (ureq::Error::Protocol(_)
        | ureq::Error::LargeResponseHeader(..)
        | ureq::Error::BodyStalled) => FetchError::BadResponse(e),
        e => FetchError::Other(e),
    }
}

/// The errors that the wrappers in this module carry through ureq as `Error::Other`.
fn classify_other(boxed: Box<dyn std::error::Error + Send + Sync>, stage: Stage) -> FetchError {
    let boxed = match boxed.downcast::<LookupFailed>() {
        Ok(lookup) => return FetchError::Resolve(lookup.0),
        Err(boxed) => boxed,
    };
    let boxed = match boxed.downcast::<io::Error>() {
        Ok(e) => return classify_io(*e, stage),
        Err(boxed) => boxed,
    };
    let boxed = match boxed.downcast::<StaleConnection>() {
        Ok(stale) => return classify_io(stale.0, stage),
        Err(boxed) => boxed,
    };
    if boxed.is::<TlsFailed>() {
        FetchError::Tls(ureq::Error::Other(boxed))
    } else {
        FetchError::Other(ureq::Error::Other(boxed))
    }
}

/// The socket errors: an end of input is a server that closed early, the rest keep their errno.
fn classify_io(e: io::Error, stage: Stage) -> FetchError {
    match (e.kind(), stage) {
        (io::ErrorKind::UnexpectedEof, Stage::Exchange) => FetchError::RemoteClosed,
        (io::ErrorKind::UnexpectedEof, Stage::Body { bytes, expected }) => {
            FetchError::IncompleteRead {
                read: bytes,
                expected: expected.map(|total| total.saturating_sub(bytes)),
            }
        }
        _ => FetchError::Io(e),
    }
}

/// The phase a timeout before the body belongs to, from the label [`PhaseConnector`],
/// [`ExchangeTransport`] or [`CachingResolver`] put on it. `Global` is left only by ureq's own
/// checks between two steps of an exchange.
fn timeout_phase(reason: Timeout) -> Phase {
    match reason {
        Timeout::Resolve => Phase::Resolve,
        Timeout::Connect => Phase::Connect,
        _ => Phase::Response,
    }
}

/// The errors Python raises from inside `urlopen` while connecting, which it wraps as
/// `<urlopen error ...>`.
fn is_connect_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
    )
}

/// `[Errno 111] Connection refused`, the way Python prints an `OSError`; other errors as they are.
fn errno_message(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => {
            let suffix = format!(" (os error {code})");
            let strerror = text.strip_suffix(&suffix).unwrap_or(&text);
            format!("[Errno {code}] {}", one_line(strerror))
        }
        None => one_line(&text),
    }
}

/// `[Errno -2] Name or service not known`, the way Python prints a `socket.gaierror`.
///
/// std reports a failed `getaddrinfo` only as text (`failed to lookup address information: ...`),
/// so the `EAI_*` number is recovered from glibc's wording for the three failures that matter.
fn lookup_message(e: &io::Error) -> String {
    let text = e.to_string();
    let detail = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text);
    let code = match detail {
        "Name or service not known" => Some(-2),
        "Temporary failure in name resolution" => Some(-3),
        "No address associated with hostname" => Some(-5),
        _ => None,
    };
    match code {
        Some(code) => format!("[Errno {code}] {detail}"),
        None => one_line(detail),
    }
}

/// The error's own words, without ureq's `rustls: `, `protocol: ` or `other: ` prefix.
fn detail_message(e: &ureq::Error) -> String {
    let text = match e {
        ureq::Error::Rustls(inner) => inner.to_string(),
        ureq::Error::Protocol(inner) => inner.to_string(),
        ureq::Error::Other(inner) => inner.to_string(),
        other => other.to_string(),
    };
    one_line(&text)
}

/// The reason phrase for a status code, as the standard names it.
pub(crate) fn reason(code: u16) -> &'static str {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// `text` with every control character (a newline above all) turned into a space, so that a
/// message from a server or the OS cannot break the one-line-per-URL output.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// ureq's default connector chain (an HTTP `CONNECT` proxy when configured, TCP, rustls for
/// `https`), with [`SocketConnector`] for ureq's TCP connector.
type Chain = ChainedConnector<
    (),
    ChainedConnector<(), ChainedConnector<(), (), ConnectProxyConnector>, SocketConnector>,
    RustlsConnector,
>;

/// The connector chain, with every error labelled by phase: a timeout while connecting becomes
/// `Timeout::Connect`, and the connection it makes is wrapped in [`ExchangeTransport`].
///
/// ureq itself reports the expiry of the whole-URL deadline as `Timeout::Global` whatever it was
/// doing, which would leave "timed out" without the phase.
///
/// Clones share the chain, and with it what the chain caches: all the agents of a fetcher (see
/// `clients.rs`) use one rustls configuration, built once, with one TLS session cache.
#[derive(Debug, Clone)]
struct PhaseConnector(Arc<Chain>);

impl PhaseConnector {
    fn new() -> PhaseConnector {
        let chain =
            ().chain(ConnectProxyConnector::default())
                .chain(SocketConnector)
                .chain(RustlsConnector::default());
        PhaseConnector(Arc::new(chain))
    }
}

impl Connector for PhaseConnector {
    type Out = ExchangeTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<ExchangeTransport>, ureq::Error> {
        let started = Instant::now();
        facts::connecting();
        match self.0.connect(details, chained) {
            Ok(transport) => Ok(transport.map(|t| {
                let opened = facts::opened(started, t.is_tls());
                ExchangeTransport::new(Box::new(t), opened)
            })),
            Err(ureq::Error::Timeout(_)) => Err(ureq::Error::Timeout(Timeout::Connect)),
            Err(e) => Err(tls_labelled(e, details.needs_tls())),
        }
    }
}

/// rustls reports its failures, certificate verification among them, as an `io::Error` of kind
/// `InvalidData`; on a TLS connection that is what such an error means.
fn tls_labelled(e: ureq::Error, tls: bool) -> ureq::Error {
    match e {
        ureq::Error::Io(e) if tls && e.kind() == io::ErrorKind::InvalidData => {
            ureq::Error::Other(Box::new(TlsFailed(e)))
        }
        e => e,
    }
}

/// A TLS failure that arrived as an `io::Error`. Displays as the TLS library's message.
#[derive(Debug)]
struct TlsFailed(io::Error);

impl fmt::Display for TlsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.get_ref() {
            Some(inner) => fmt::Display::fmt(inner, f),
            None => fmt::Display::fmt(&self.0, f),
        }
    }
}

impl std::error::Error for TlsFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// An established connection (pooled ones included) whose errors say they happened after the
/// connect: a timeout becomes `Timeout::RecvResponse`.
///
/// A reset is passed on as `Error::Other`: ureq takes an `Error::Io` reset in the body for the
/// end of the body, which would report a connection the server reset as a mere short read.
///
/// It also recognises the keep-alive race. A request sent on a connection that has carried a
/// response before, and that ends (closed or reset) before any byte of its own response, is
/// reported as a [`StaleConnection`]: the server closed the idle connection while the request
/// was on its way, and never saw it. ureq's pool probes a connection before reusing it, so
/// this is the narrow window that probe cannot cover.
#[derive(Debug)]
struct ExchangeTransport {
    inner: Box<dyn Transport>,
    /// Some response byte arrived on this connection at some point.
    used: bool,
    /// Output was sent and no input has arrived since: a request awaits its first byte.
    awaiting: bool,
    /// `used` as it was when the awaited request went out.
    reused: bool,
    /// What opening the connection took, until the first request on it reports it.
    opened: Option<Opened>,
    remote_addr: Option<SocketAddr>,
}

impl ExchangeTransport {
    fn new(inner: Box<dyn Transport>, opened: Opened) -> ExchangeTransport {
        ExchangeTransport {
            inner,
            used: false,
            awaiting: false,
            reused: false,
            opened: Some(opened),
            remote_addr: opened.remote_addr,
        }
    }

    fn label(e: ureq::Error, tls: bool) -> ureq::Error {
        match e {
            ureq::Error::Timeout(_) => ureq::Error::Timeout(Timeout::RecvResponse),
            ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                ureq::Error::Other(Box::new(e))
            }
            e => tls_labelled(e, tls),
        }
    }

    /// Whether the connection ending now is the keep-alive race.
    fn is_stale(&self) -> bool {
        self.reused && self.awaiting
    }

    fn fail(&self, e: ureq::Error) -> ureq::Error {
        match e {
            ureq::Error::Io(e) if self.is_stale() && is_connection_lost(&e) => {
                ureq::Error::Other(Box::new(StaleConnection(e)))
            }
            e => ExchangeTransport::label(e, self.inner.is_tls()),
        }
    }
}

/// The ways a socket says the other end is gone.
fn is_connection_lost(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

impl Transport for ExchangeTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if !self.awaiting {
            // The first write since input arrived: a new request.
            self.awaiting = true;
            self.reused = self.used;
            facts::request_sent(self.opened.take(), self.remote_addr);
        }
        self.inner
            .transmit_output(amount, timeout)
            .map_err(|e| self.fail(e))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        match self.inner.await_input(timeout) {
            Ok(true) => {
                if self.awaiting {
                    facts::first_byte();
                }
                self.used = true;
                self.awaiting = false;
                Ok(true)
            }
            // No progress is the end of the input: ureq would make it `UnexpectedEof` itself.
            Ok(false) if self.is_stale() => {
                let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "Peer disconnected");
                Err(ureq::Error::Other(Box::new(StaleConnection(eof))))
            }
            Ok(false) => Ok(false),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// A reused connection that ended before any byte of the response: see [`ExchangeTransport`].
/// Carried through ureq as `Error::Other`; [`classify`] reports the socket error inside.
#[derive(Debug)]
struct StaleConnection(io::Error);

impl fmt::Display for StaleConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StaleConnection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Whether `e` is the keep-alive race (see [`ExchangeTransport`]).
fn is_stale(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Other(inner) if inner.is::<StaleConnection>())
}

/// The addresses of a host name, or why it has none. Shared by every request for the host.
type Lookup = Result<Arc<[IpAddr]>, Arc<io::Error>>;

/// A failed lookup, carried through ureq as `Error::Other` so that [`classify`] can tell it from
/// a connect error.
#[derive(Debug)]
struct LookupFailed(Arc<io::Error>);

impl fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for LookupFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Resolves host names without a thread per request.
///
/// - An IP literal is its own address: no lookup, no lock.
/// - A host name is looked up once per [`DNS_TTL`] (failures for a few seconds), on a thread of
///   its own so that the request's deadline bounds the wait even though `getaddrinfo` cannot be
///   interrupted. Requests for a host whose lookup is under way wait for that one.
///
/// Clones share the cache.
#[derive(Debug, Default, Clone)]
struct CachingResolver {
    hosts: Arc<Mutex<HashMap<String, Entry>>>,
}

#[derive(Debug)]
enum Entry {
    Ready { lookup: Lookup, expires: Instant },
    Pending(Arc<Pending>),
}

/// A lookup under way: its thread fills `result` and wakes everyone waiting.
#[derive(Debug, Default)]
struct Pending {
    result: Mutex<Option<Lookup>>,
    done: Condvar,
}

impl Pending {
    /// Waits until the lookup is done or `wait` has passed (then `None`).
    fn wait(&self, wait: Duration) -> Option<Lookup> {
        let deadline = Instant::now().checked_add(wait);
        let mut result = self.result.lock().unwrap();
        // A loop, not a single wait: wakeups can be spurious. The flag is set under the same lock
        // that `complete` takes before notifying, so a wakeup cannot slip between check and wait.
        while result.is_none() {
            result = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.done.wait_timeout(result, left).unwrap().0
                }
                None => self.done.wait(result).unwrap(),
            };
        }
        result.clone()
    }
}

impl CachingResolver {
    /// The addresses of `host`, from the cache or from a lookup that must end within `wait`.
    fn lookup(&self, host: &str, wait: Duration) -> Result<Arc<[IpAddr]>, ureq::Error> {
        let (pending, start) = {
            let mut hosts = self.hosts.lock().unwrap();
            let now = Instant::now();
            match hosts.get(host) {
                Some(Entry::Ready { lookup, expires }) if *expires > now => {
                    return lookup.clone().map_err(lookup_failed);
                }
                Some(Entry::Pending(pending)) => (pending.clone(), false),
                _ => {
                    if hosts.len() >= DNS_CACHE_MAX {
                        hosts.retain(
                            |_, e| !matches!(e, Entry::Ready { expires, .. } if *expires <= now),
                        );
                    }
                    let pending = Arc::new(Pending::default());
                    hosts.insert(host.to_owned(), Entry::Pending(pending.clone()));
                    (pending, true)
                }
            }
        };
        if start {
            self.start_lookup(host, &pending);
        }
        match pending.wait(wait) {
            Some(lookup) => lookup.map_err(lookup_failed),
            None => Err(ureq::Error::Timeout(Timeout::Resolve)),
        }
    }

    /// Starts the lookup thread. It outlives a request that stops waiting, and its answer still
    /// lands in the cache for the next one.
    fn start_lookup(&self, host: &str, pending: &Arc<Pending>) {
        let hosts = self.hosts.clone();
        let task_pending = pending.clone();
        let task_host = host.to_owned();
        let spawned = thread::Builder::new()
            .name("fetchall-dns".into())
            .spawn(move || {
                let lookup = (task_host.as_str(), 0)
                    .to_socket_addrs()
                    .and_then(|addrs| {
                        let ips: Arc<[IpAddr]> = addrs.map(|a| a.ip()).collect();
                        if ips.is_empty() {
                            Err(io::Error::new(
                                io::ErrorKind::NotFound,
                                "no address for host",
                            ))
                        } else {
                            Ok(ips)
                        }
                    })
                    .map_err(Arc::new);
                complete(&hosts, task_host, &task_pending, lookup);
            });
        if let Err(e) = spawned {
            complete(&self.hosts, host.to_owned(), pending, Err(Arc::new(e)));
        }
    }
}

/// Records a finished lookup in the cache and wakes the requests waiting for it.
fn complete(
    hosts: &Mutex<HashMap<String, Entry>>,
    host: String,
    pending: &Pending,
    lookup: Lookup,
) {
    let ttl = if lookup.is_ok() {
        DNS_TTL
    } else {
        DNS_NEGATIVE_TTL
    };
    let expires = Instant::now() + ttl;
    hosts.lock().unwrap().insert(
        host,
        Entry::Ready {
            lookup: lookup.clone(),
            expires,
        },
    );
    *pending.result.lock().unwrap() = Some(lookup);
    pending.done.notify_all();
}

fn lookup_failed(e: Arc<io::Error>) -> ureq::Error {
    ureq::Error::Other(Box::new(LookupFailed(e)))
}

/// The host (brackets stripped from IPv6) and port of an `http`/`https` URI.
fn host_and_port(uri: &Uri) -> Result<(&str, u16), ureq::Error> {
    let bad = || ureq::Error::BadUri(uri.to_string());
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(bad()),
    };
    let host = uri.host().ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((host, uri.port_u16().unwrap_or(default_port)))
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let started = Instant::now();
        let (host, port) = host_and_port(uri)?;
        let literal: [IpAddr; 1];
        let looked_up: Arc<[IpAddr]>;
        let ips: &[IpAddr] = match host.parse::<IpAddr>() {
            Ok(ip) => {
                literal = [ip];
                &literal
            }
            Err(_) => {
                looked_up = self.lookup(host, *timeout.after)?;
                &looked_up
            }
        };

        let mut addrs = self.empty();
        let family = config.ip_family();
        let wanted = family.keep_wanted(ips.iter().map(|ip| SocketAddr::new(*ip, port)));
        for addr in wanted {
            if addrs.try_push(addr).is_err() {
                break;
            }
        }
        if addrs.is_empty() {
            let e = io::Error::new(
                io::ErrorKind::NotFound,
                "no address of the wanted IP family",
            );
            return Err(lookup_failed(Arc::new(e)));
        }
        facts::looked_up(started.elapsed());
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(e: ureq::Error) -> String {
        classify(e, Stage::Exchange, Duration::from_millis(1500)).to_string()
    }

    fn body(e: ureq::Error, bytes: u64, expected: Option<u64>) -> String {
        let stage = Stage::Body { bytes, expected };
        classify(e, stage, Duration::from_millis(5000)).to_string()
    }

    fn os_error(code: i32) -> ureq::Error {
        ureq::Error::Io(io::Error::from_raw_os_error(code))
    }

    #[test]
    fn status_uses_the_reason_phrase() {
        assert_eq!(
            FetchError::Status { code: 404 }.to_string(),
            "HTTP Error 404: Not Found"
        );
        assert_eq!(
            FetchError::Status { code: 500 }.to_string(),
            "HTTP Error 500: Internal Server Error"
        );
        assert_eq!(
            FetchError::Status { code: 599 }.to_string(),
            "HTTP Error 599: Unknown"
        );
    }

    #[test]
    fn too_many_redirects_names_the_code() {
        let e = FetchError::TooManyRedirects {
            code: 302,
            followed: 10,
        };
        assert_eq!(
            e.to_string(),
            "HTTP Error 302: Found (stopped after 10 redirects)"
        );
        assert_eq!(e.status(), Some(302));
    }

    #[test]
    fn refused_is_an_urlopen_error() {
        // 111 is ECONNREFUSED on Linux; std's text for it is the C library's.
        assert_eq!(
            exchange(os_error(111)),
            "<urlopen error [Errno 111] Connection refused>"
        );
    }

    #[test]
    fn reset_keeps_its_errno_without_urlopen() {
        let reset = io::Error::from_raw_os_error(104);
        assert_eq!(reset.kind(), io::ErrorKind::ConnectionReset);
        let relabelled = ExchangeTransport::label(ureq::Error::Io(reset), false);
        assert_eq!(
            body(relabelled, 10, Some(100)),
            "[Errno 104] Connection reset by peer"
        );
        assert_eq!(
            exchange(os_error(104)),
            "[Errno 104] Connection reset by peer"
        );
    }

    #[test]
    fn lookup_failure_gets_the_gai_number() {
        let e = io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(
            exchange(lookup_failed(Arc::new(e))),
            "<urlopen error [Errno -2] Name or service not known>"
        );
        let e = io::Error::other("failed to lookup address information: something new");
        assert_eq!(
            exchange(lookup_failed(Arc::new(e))),
            "<urlopen error something new>"
        );
    }

    #[test]
    fn eof_before_the_response_is_remote_closed() {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "Peer disconnected");
        assert_eq!(
            exchange(ureq::Error::Io(eof)),
            "Remote end closed connection without response"
        );
    }

    #[test]
    fn eof_in_the_body_is_an_incomplete_read() {
        let eof = || ureq::Error::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "x"));
        assert_eq!(
            body(eof(), 10, Some(100)),
            "IncompleteRead(10 bytes read, 90 more expected)"
        );
        assert_eq!(body(eof(), 10, None), "IncompleteRead(10 bytes read)");
    }

    #[test]
    fn timeouts_name_their_phase() {
        for (reason, phase) in [
            (Timeout::Resolve, "resolve"),
            (Timeout::Connect, "connect"),
            (Timeout::RecvResponse, "response"),
            // Left only by ureq's checks between the steps of an exchange.
            (Timeout::Global, "response"),
        ] {
            assert_eq!(
                exchange(ureq::Error::Timeout(reason)),
                format!("timed out ({phase}, after 1.5s)")
            );
        }
        assert_eq!(
            body(
                ureq::Error::Timeout(Timeout::RecvResponse),
                1234,
                Some(5000)
            ),
            "timed out (body, 1234 bytes received after 5.0s)"
        );
    }

    #[test]
    fn connect_and_exchange_timeouts_are_relabelled() {
        let label = ExchangeTransport::label(ureq::Error::Timeout(Timeout::Global), true);
        assert!(matches!(label, ureq::Error::Timeout(Timeout::RecvResponse)));
    }

    #[test]
    fn tls_errors_say_ssl() {
        assert_eq!(
            exchange(ureq::Error::Tls("handshake failed")),
            "<urlopen error [SSL] handshake failed>"
        );
        let invalid = || ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, "bad record"));
        assert_eq!(
            exchange(tls_labelled(invalid(), true)),
            "<urlopen error [SSL] bad record>"
        );
        assert_eq!(exchange(tls_labelled(invalid(), false)), "bad record");
    }

    #[test]
    fn messages_never_span_lines() {
        let e = io::Error::other("first\nsecond\r\n");
        assert_eq!(exchange(ureq::Error::Io(e)), "first second  ");
        let e = FetchError::InvalidUrl { url: "a\nb".into() };
        assert_eq!(e.to_string(), r"unknown url type: 'a\nb'");
    }

    #[test]
    fn other_errors_keep_ureq_wording() {
        assert_eq!(exchange(ureq::Error::RedirectFailed), "redirect failed");
    }

    #[test]
    fn url_must_be_http_with_a_host() {
        assert!(
            parse_url("http://127.0.0.1:8080/a#frag").is_ok_and(|u| u == "http://127.0.0.1:8080/a")
        );
        for bad in [
            "ftp://example.com/",
            "example.com",
            "http://",
            "",
            "not a url",
            "file:///etc/passwd",
        ] {
            let e = parse_url(bad).expect_err(bad);
            assert_eq!(e.to_string(), format!("unknown url type: {}", repr(bad)));
        }
    }

    fn resolve(resolver: &CachingResolver, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().expect("test URL");
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::Exact(Duration::from_secs(10)),
            reason: Timeout::Global,
            ..NextTimeout::default()
        };
        let addrs = resolver.resolve(&uri, &Config::default(), timeout)?;
        Ok(addrs.to_vec())
    }

    #[test]
    fn ip_literals_resolve_without_a_lookup() {
        let resolver = CachingResolver::default();
        let v4 = resolve(&resolver, "http://127.0.0.1:8080/").expect("v4");
        assert_eq!(v4, vec![SocketAddr::from(([127, 0, 0, 1], 8080))]);
        let v6 = resolve(&resolver, "https://[::1]/").expect("v6");
        assert_eq!(v6, vec!["[::1]:443".parse::<SocketAddr>().expect("addr")]);
        // Nothing entered the cache, so no lookup thread was started.
        assert!(resolver.hosts.lock().unwrap().is_empty());
    }

    #[test]
    fn host_names_are_looked_up_once() {
        let resolver = CachingResolver::default();
        let first = resolve(&resolver, "http://localhost:8080/").expect("localhost");
        assert!(
            first
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080)
        );
        let second = resolve(&resolver, "http://localhost:9090/").expect("localhost again");
        assert!(second.iter().all(|a| a.port() == 9090));
        let hosts = resolver.hosts.lock().unwrap();
        assert_eq!(hosts.len(), 1);
        assert!(matches!(
            hosts.get("localhost"),
            Some(Entry::Ready { lookup: Ok(_), .. })
        ));
    }

    #[test]
    fn a_lookup_under_way_is_waited_for_by_the_deadline() {
        let resolver = CachingResolver::default();
        // A lookup that never completes: nobody fills this slot.
        let pending = Arc::new(Pending::default());
        resolver
            .hosts
            .lock()
            .unwrap()
            .insert("slow.test".into(), Entry::Pending(pending));
        let started = Instant::now();
        let e = resolver
            .lookup("slow.test", Duration::from_millis(50))
            .expect_err("no answer");
        assert!(matches!(e, ureq::Error::Timeout(Timeout::Resolve)));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_url_of_48_kib_is_sent_whole() {
        use std::io::{BufRead, BufReader, Write};
        use std::net::TcpListener;

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://{}/long?{}",
            listener.local_addr().expect("addr"),
            "q".repeat(48 * 1024)
        );
        // A server that reads the request head line by line, however long, and reports its size.
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(&stream);
            let mut head = 0;
            let mut line = String::new();
            while line != "\r\n" {
                line.clear();
                head += reader.read_line(&mut line).expect("read the head");
            }
            (&stream)
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .expect("respond");
            head
        });
        let options = FetchOptions {
            timeout: Duration::from_secs(30),
            ..FetchOptions::default()
        };
        let page = Fetcher::new(options).load_url(&url).expect("fetched");
        assert_eq!(page.bytes, 2);
        let head = server.join().expect("server thread");
        assert!(
            head > 48 * 1024 && head < OUTPUT_BUFFER,
            "head of {head} bytes"
        );
    }

    #[test]
    fn status_ranges_parse_and_print() {
        let ranges: StatusRanges = " 200-299 , 304,404-404".parse().expect("valid");
        assert_eq!(ranges.to_string(), "200-299,304,404");
        for (code, accepted) in [(199, false), (200, true), (299, true), (301, false)] {
            assert_eq!(ranges.contains(code), accepted, "{code}");
        }
        assert!(ranges.contains(304) && ranges.contains(404) && !ranges.contains(405));
        assert_eq!(StatusRanges::default().to_string(), "200-299");
    }

    #[test]
    fn bad_status_ranges_say_why() {
        for (text, why) in [
            ("", "'' is not a status code from 100 to 599"),
            ("600", "'600' is not a status code from 100 to 599"),
            ("99", "'99' is not a status code from 100 to 599"),
            ("2xx", "'2xx' is not a status code from 100 to 599"),
            ("200,", "'' is not a status code from 100 to 599"),
            ("200-", "'' is not a status code from 100 to 599"),
            ("300-200", "'300-200' is an empty range"),
            (
                "200-250-299",
                "'250-299' is not a status code from 100 to 599",
            ),
        ] {
            let err = text.parse::<StatusRanges>().expect_err(text);
            assert_eq!(err.to_string(), why, "{text:?}");
        }
    }

    fn seconds(n: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(n)
    }

    #[test]
    fn http_dates_are_imf_fixdates() {
        for (text, unix) in [
            ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777),
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
            ("Tue, 29 Feb 2000 12:00:00 GMT", 951_825_600),
            ("Mon, 01 Mar 2100 00:00:00 GMT", 4_107_542_400),
        ] {
            assert_eq!(http_date(text), Some(seconds(unix)), "{text}");
        }
        for obsolete_or_wrong in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "",
        ] {
            assert_eq!(http_date(obsolete_or_wrong), None, "{obsolete_or_wrong}");
        }
    }

    fn retry_after_header(value: &str, now: SystemTime) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("value"));
        retry_after(&headers, now)
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = seconds(784_111_777);
        let secs = Duration::from_secs;
        assert_eq!(retry_after_header("120", now), Some(secs(120)));
        assert_eq!(retry_after_header(" 0 ", now), Some(secs(0)));
        assert_eq!(
            retry_after_header("99999999999999999999999", now),
            Some(secs(u64::MAX))
        );
        assert_eq!(
            retry_after_header("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(secs(30))
        );
        // A date already past: retry now.
        assert_eq!(
            retry_after_header("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(secs(0))
        );
        for absent in ["-5", "1.5", "soon", ""] {
            assert_eq!(retry_after_header(absent, now), None, "{absent:?}");
        }
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_is_equal_jitter_doubling_to_the_cap() {
        let ms = Duration::from_millis;
        for (retry, low, high) in [
            (1, ms(50), ms(100)),
            (2, ms(100), ms(200)),
            (3, ms(200), ms(400)),
            (8, ms(5000), ms(10_000)),
            (u32::MAX, ms(5000), ms(10_000)),
        ] {
            assert_eq!(backoff(retry, 0), low, "retry {retry}");
            let top = u64::try_from((high - low).as_nanos()).expect("small");
            assert_eq!(backoff(retry, top), high, "retry {retry}");
            assert!((low..=high).contains(&backoff(retry, u64::MAX)));
        }
        let jitter = Jitter::new();
        let draws: Vec<u64> = (0..4).map(|_| jitter.next()).collect();
        assert!(draws.windows(2).all(|w| w[0] != w[1]), "{draws:?}");
    }

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        Proxies::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    /// The proxy `proxies` picks for `url`: its URI, or the error's text.
    fn picked(proxies: &Proxies, url: &str) -> Option<String> {
        let uri: Uri = url.parse().expect("test URL");
        match proxies.select(&uri) {
            Ok(proxy) => proxy.map(|p| format!("{}:{}", p.host(), p.port())),
            Err(e) => Some(e.to_string()),
        }
    }

    #[test]
    fn proxies_are_chosen_by_scheme_like_curl() {
        let p = proxies(&[("http_proxy", "http://h:1"), ("HTTPS_PROXY", "s:2")]);
        assert_eq!(picked(&p, "http://a/").as_deref(), Some("h:1"));
        assert_eq!(picked(&p, "https://a/").as_deref(), Some("s:2"));

        let all = proxies(&[("ALL_PROXY", "http://all:3"), ("https_proxy", "")]);
        assert_eq!(picked(&all, "http://a/").as_deref(), Some("all:3"));
        assert_eq!(picked(&all, "https://a/").as_deref(), Some("all:3"));

        // Upper-case HTTP_PROXY is ignored (httpoxy), and https_proxy is only for https.
        let ignored = proxies(&[("HTTP_PROXY", "http://h:1"), ("https_proxy", "http://s:2")]);
        assert_eq!(picked(&ignored, "http://a/"), None);
        assert_eq!(picked(&proxies(&[]), "https://a/"), None);
        assert!(Proxies::none().http.is_none() && Proxies::none().https.is_none());
    }

    #[test]
    fn an_unusable_proxy_is_an_error_only_where_it_applies() {
        let p = proxies(&[("all_proxy", "socks5://s:1080"), ("no_proxy", "direct")]);
        assert_eq!(
            picked(&p, "http://a/").as_deref(),
            Some(
                "unusable proxy in all_proxy: 'socks5://s:1080' \
                 (only http:// and https:// proxies are supported)"
            )
        );
        assert_eq!(picked(&p, "http://direct/"), None);
        let p = proxies(&[("http_proxy", "http://[bad")]);
        assert!(picked(&p, "http://a/").is_some_and(|e| e.starts_with("unusable proxy")));
    }

    #[test]
    fn no_proxy_matches_domains_addresses_and_networks() {
        let p = proxies(&[
            ("http_proxy", "http://h:1"),
            (
                "no_proxy",
                "Example.COM, .internal,*.corp 10.0.0.0/8,::1,192.168.1.7,[fd00::]/8,bad/x",
            ),
        ]);
        for (host, bypass) in [
            ("example.com", true),
            ("www.EXAMPLE.com", true),
            ("example.com.", true),
            ("notexample.com", false),
            ("example.org", false),
            ("internal", true),
            ("a.b.internal", true),
            ("corp", true),
            ("x.corp", true),
            ("10.1.2.3", true),
            ("11.0.0.1", false),
            ("[::1]", true),
            ("[::2]", false),
            ("192.168.1.7", true),
            ("192.168.1.8", false),
            ("[fd12::1]", true),
            ("bad", false),
        ] {
            assert_eq!(p.bypasses(host), bypass, "{host}");
        }
        assert!(proxies(&[("NO_PROXY", "*")]).bypasses("anything"));
        let whole = proxies(&[("no_proxy", "0.0.0.0/0")]);
        assert!(whole.bypasses("203.0.113.9") && !whole.bypasses("[::1]"));
    }
}
