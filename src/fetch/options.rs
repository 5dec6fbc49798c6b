//! What a caller sets for a [`Fetcher`] and what a successful fetch gives back.

use std::time::Duration;

use ureq::http::{HeaderMap, HeaderValue};

use super::{
    Checks, ClientIdentity, ConnectTo, DEFAULT_MAX_REDIRECTS, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT,
    Proxies, Resolve, StatusRanges, TlsInfo, Trust,
};
#[cfg(doc)]
use super::{FetchError, Fetcher, RETRY_BASE_DELAY, RETRY_MAX_DELAY};

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
/// use fetchall::fetch::{FetchOptions, Fetcher, Method};
///
/// let mut options = FetchOptions::default();
/// options.timeout = Duration::from_secs(5);
/// options.method = Method::Head;
/// options.retries = 2;
/// options.accept = "200-299,404".parse()?;
/// let fetcher = Fetcher::new(options);
/// # drop(fetcher);
/// # Ok::<(), fetchall::fetch::ParseStatusRangesError>(())
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
    /// Redirects followed before giving up with [`FetchError::TooManyRedirects`]. A 3xx with a
    /// `Location` is followed with the same method, its target resolved against the URL it
    /// answered as RFC 3986 resolves a reference; a target that is not `http` or `https` is
    /// [`FetchError::RedirectNotAllowed`], a `Location` that is not a valid URL
    /// [`FetchError::InvalidRedirect`]. With 0,
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
    /// verified against [`FetchOptions::trust`].
    pub insecure: bool,
    /// The certificate authorities trusted for `https`. Default [`Trust::System`]: the system's
    /// store, with `SSL_CERT_FILE` and `SSL_CERT_DIR` honoured, as Python and curl trust.
    pub trust: Trust,
    /// The client certificate presented to a server that asks for one (mutual TLS). Default
    /// none.
    pub client_cert: Option<ClientIdentity>,
    /// Fail an `https` URL whose certificate expires within this many days, with
    /// [`FetchError::CertificateExpires`]: the check no TLS peer makes by default, so that a
    /// smoke test sees an expiry coming. The certificate checked is the one of the connection
    /// the final response came on. Default none.
    pub cert_expiry_days: Option<u32>,
    /// The HTTP proxies, by URL scheme. Default [`Proxies::from_env`]: the environment
    /// variables curl reads.
    pub proxies: Proxies,
    /// Addresses for host names, used instead of DNS: curl's `--resolve`. Default none.
    pub resolve: Vec<Resolve>,
    /// Where to connect instead of a URL's host and port: curl's `--connect-to`. Default none.
    /// The request, the TLS server name and the certificate check stay the URL's.
    pub connect_to: Vec<ConnectTo>,
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
            trust: Trust::System,
            client_cert: None,
            cert_expiry_days: None,
            proxies: Proxies::from_env(),
            resolve: Vec::new(),
            connect_to: Vec::new(),
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
    /// For an `https` page, the TLS version and the server certificate of the connection the
    /// final response came on.
    pub tls: Option<TlsInfo>,
}
