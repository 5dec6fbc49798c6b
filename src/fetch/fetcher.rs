//! The [`Fetcher`]: the retry loop around one attempt, and the attempt itself (send the request,
//! read the response into a [`Page`] or a failure).

use std::io::{self, Read};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use ureq::http::header::{ACCEPT_ENCODING, CONTENT_TYPE, LOCATION, USER_AGENT};
use ureq::http::{HeaderMap, HeaderValue, Response, Uri, Version};
use ureq::{Agent, Body, Proxy, ResponseExt};

use super::checks::BodyChecks;
use super::classify::{Stage, classify, one_line};
use super::clients::Clients;
use super::facts;
use super::retry::{Jitter, retry_after};
use super::transport::is_stale;
use super::urls::parse_url;
use super::{
    Checks, Facts, FetchError, FetchOptions, Method, Page, Proxies, StatusRanges, Transfer,
};

/// Error bodies up to this size are read and discarded so the connection can be reused.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// The largest buffer a body is read through.
const READ_BUFFER: usize = 64 * 1024;

/// Fetches URLs with one shared connection pool. Cheap to clone: clones share the pool.
///
/// # Examples
///
/// ```no_run
/// use fetchall::fetch::Fetcher;
///
/// let fetcher = Fetcher::default();
/// let page = fetcher.load_url("http://example.com/")?;
/// println!("page is {} bytes", page.bytes);
/// # Ok::<(), fetchall::fetch::FetchError>(())
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

/// One request of a fetch: where it goes, and how much time it has.
#[derive(Debug)]
struct Attempt<'a> {
    uri: &'a Uri,
    proxy: Option<&'a Proxy>,
    /// The end of the whole URL's time; `None` for a timeout too large to add to a clock.
    deadline: Option<Instant>,
    /// When [`Fetcher::load_url`] started: every `elapsed` is counted from here.
    started: Instant,
    config: Config,
}

/// Which configuration a request runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    /// The agent's own: its deadline is the whole timeout, which is right for the first request
    /// of a URL fetched directly.
    AgentDeadline,
    /// One made for the request, with what is left of the deadline and the proxy: for a request
    /// after the first, and for any request through a proxy (the pool is still shared: ureq
    /// keys pooled connections by proxy).
    OwnDeadline,
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

impl Default for Fetcher {
    fn default() -> Self {
        Fetcher::new(FetchOptions::default())
    }
}

impl Fetcher {
    /// Makes a fetcher: keep-alive connections shared by all clones, the deadline from
    /// `options.timeout`, and a resolver that answers IP literals directly and remembers host
    /// names for [`DNS_TTL`](super::DNS_TTL), so that no request starts a thread of its own.
    pub fn new(options: FetchOptions) -> Fetcher {
        let clients = Clients::new(&options);

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
    /// use fetchall::fetch::Fetcher;
    ///
    /// let fetcher = Fetcher::default();
    /// match fetcher.load_url("http://example.com/missing") {
    ///     Ok(page) => println!("page is {} bytes", page.bytes),
    ///     Err(e) => println!("generated an exception: {e}"), // HTTP Error 404: Not Found
    /// }
    /// # Ok::<(), fetchall::fetch::FetchError>(())
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
    /// use fetchall::fetch::Fetcher;
    ///
    /// let transfer = Fetcher::default().fetch("http://example.com/");
    /// if let Some(addr) = transfer.facts.remote_addr {
    ///     println!("from {addr}, first byte after {:?}", transfer.facts.ttfb);
    /// }
    /// let page = transfer.result?;
    /// # Ok::<(), fetchall::fetch::FetchError>(())
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
        let deadline = started.checked_add(self.timeout);
        let mut retries = 0;
        let mut reconnected = false;
        loop {
            let attempt_started = Instant::now();
            let config = if retries == 0 && !reconnected && proxy.is_none() {
                Config::AgentDeadline
            } else {
                Config::OwnDeadline
            };
            let attempt = Attempt {
                uri: &uri,
                proxy,
                deadline,
                started,
                config,
            };
            let (result, attempt_facts) = self.attempt(&attempt);
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

    /// One request with what is left of the deadline, on an agent borrowed for it, and what it
    /// learnt.
    fn attempt(&self, attempt: &Attempt<'_>) -> (Result<Page, Failed>, Facts) {
        let agent = self.clients.take(attempt.uri);
        facts::reset();
        let mut response_facts = Facts::default();
        let result = self.send(&agent, attempt).and_then(|response| {
            read_facts(&response, &mut response_facts);
            self.read_page(response, attempt)
        });
        // The response is read or dropped by now, so its connection is back in the agent's pool.
        self.clients.give_back(attempt.uri, agent);
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

    /// Sends the request and waits for the response's headers (after the redirects ureq follows).
    fn send(&self, agent: &Agent, attempt: &Attempt<'_>) -> Result<Response<Body>, Failed> {
        let mut request = match self.method {
            Method::Get => agent.get(attempt.uri.clone()),
            Method::Head => agent.head(attempt.uri.clone()),
        };
        if let Some(headers) = request.headers_mut() {
            headers.clone_from(&self.shared.headers);
        }
        let response = match attempt.config {
            Config::AgentDeadline => request.call(),
            Config::OwnDeadline => {
                let left = attempt
                    .deadline
                    .map(|d| d.saturating_duration_since(Instant::now()));
                let config = request.config().timeout_global(left);
                config.proxy(attempt.proxy.cloned()).build().call()
            }
        };
        response.map_err(|e| Failed {
            stale: is_stale(&e),
            error: classify(e, Stage::Exchange, attempt.started.elapsed()),
            retry_after: None,
        })
    }

    /// Reads the response: its body counted into a [`Page`], or the status that makes it a
    /// failure (a small error body is drained, so that the connection can be reused).
    fn read_page(&self, response: Response<Body>, attempt: &Attempt<'_>) -> Result<Page, Failed> {
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

        let final_url = (response.get_uri() != attempt.uri).then(|| response.get_uri().to_string());
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
                        elapsed: attempt.started.elapsed(),
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
                    error: classify(ureq::Error::from(e), stage, attempt.started.elapsed()),
                    retry_after: None,
                    stale: false,
                })
            }
        }
    }
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
/// use fetchall::fetch::{load_url, FetchOptions, Fetcher};
///
/// let mut options = FetchOptions::default();
/// options.timeout = Duration::from_secs(60);
/// let fetcher = Fetcher::new(options);
/// let page = load_url(&fetcher, "http://www.foxnews.com/")?;
/// println!("page is {} bytes", page.bytes);
/// # Ok::<(), fetchall::fetch::FetchError>(())
/// ```
pub fn load_url(fetcher: &Fetcher, url: &str) -> Result<Page, FetchError> {
    fetcher.load_url(url)
}

/// What the response itself says: where it came from, after how many redirects, in which
/// version of HTTP and with which content type.
fn read_facts(response: &Response<Body>, facts: &mut Facts) {
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
fn drain_small(response: Response<Body>) {
    let expected = response.body().content_length();
    if expected.is_some_and(|n| n <= DRAIN_LIMIT) {
        let mut body = response.into_body().into_reader();
        let _ = io::copy(&mut body, &mut io::sink());
    }
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
