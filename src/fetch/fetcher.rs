//! The [`Fetcher`]: its parts, and the retry loop around one attempt (`exchange.rs`).

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::clients::Clients;
use super::exchange::{Attempt, Config, Exchange, Failed};
use super::facts;
use super::retry::Jitter;
use super::urls::parse_url;
use super::{Facts, FetchError, FetchOptions, Page, Proxies, TlsInfo, Transfer};

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
    timeout: Duration,
    retries: u32,
    slow: Option<Duration>,
    shared: Arc<Shared>,
}

/// What every clone of a [`Fetcher`] uses and nobody changes, except the jitter's state.
#[derive(Debug)]
struct Shared {
    exchange: Exchange,
    proxies: Proxies,
    jitter: Jitter,
}

impl Default for Fetcher {
    fn default() -> Self {
        Fetcher::new(FetchOptions::default())
    }
}

impl Fetcher {
    /// Makes a fetcher: keep-alive connections shared by all clones, the deadline from
    /// `options.timeout`, and a resolver that answers IP literals directly and remembers host
    /// names for [`DNS_TTL`](super::DNS_TTL), so that a host name is looked up once per TTL,
    /// not once per request.
    pub fn new(options: FetchOptions) -> Fetcher {
        let exchange = Exchange::new(&options);
        let clients = Clients::new(&options, exchange.output_buffer());
        Fetcher {
            clients: Arc::new(clients),
            timeout: options.timeout,
            retries: options.retries,
            slow: options.slow,
            shared: Arc::new(Shared {
                exchange,
                proxies: options.proxies,
                jitter: Jitter::new(),
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

    /// [`Fetcher::load_url`], and for a failure after a TLS handshake, that connection's TLS
    /// facts: an `https` URL answered with `HTTP Error 404`, cut short in its body, or failing
    /// [`FetchOptions::cert_expiry_days`] still tells what its certificate says. A page has its
    /// own, in [`Page::tls`]; the second value is then `None`. The same as
    /// [`Fetcher::fetch`]'s [`Transfer::result`] and [`Transfer::tls`].
    ///
    /// The facts are those of the last attempt's final response; a failure with no response
    /// (a refused connection, a failed handshake, a timeout) has none.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use fetchall::fetch::Fetcher;
    ///
    /// let (result, tls) = Fetcher::default().load_url_with_tls("https://example.com/missing");
    /// if let (Err(e), Some(tls)) = (result, tls) {
    ///     println!("{e}; the certificate expires {}", tls.not_after_date());
    /// }
    /// ```
    pub fn load_url_with_tls(&self, url: &str) -> (Result<Page, FetchError>, Option<TlsInfo>) {
        let transfer = self.fetch(url);
        (transfer.result, transfer.tls)
    }

    /// [`Fetcher::load_url`], and the [`Facts`] learnt on the way, whether it succeeded or not:
    /// the final URL, the redirects, the content type, the HTTP version, the remote address
    /// and the time of each phase of the final request; and for a failure after a TLS
    /// handshake, that connection's TLS facts (see [`Fetcher::load_url_with_tls`]).
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
        match self.fetch_into(url, &mut facts) {
            Ok(page) => Transfer {
                result: Ok(page),
                facts,
                tls: None,
            },
            Err(failed) => Transfer {
                result: Err(failed.error),
                facts,
                tls: failed.tls.map(|tls| *tls),
            },
        }
    }

    /// The retry loop of [`Fetcher::fetch`], ending in a page or the last attempt's failure
    /// (its error already counting the attempts); `facts` ends up with the last attempt's.
    fn fetch_into(&self, url: &str, facts: &mut Facts) -> Result<Page, Failed> {
        let started = Instant::now();
        let uri = parse_url(url).map_err(Failed::at_once)?;
        let proxy = self.shared.proxies.select(&uri).map_err(Failed::at_once)?;
        let deadline = crate::sync::deadline_from(started, self.timeout);
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
                        Some(limit) if page.elapsed > limit => Err(Failed {
                            tls: page.tls.map(Box::new),
                            ..Failed::at_once(
                                FetchError::Slow {
                                    elapsed: page.elapsed,
                                    limit,
                                }
                                .after(attempts),
                            )
                        }),
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
                Instant::now()
                    .checked_add(needed)
                    .is_some_and(|end| end < deadline)
            };
            let Some(wait) = wait.filter(fits) else {
                return Err(Failed {
                    error: failed.error.after(retries + 1),
                    ..failed
                });
            };
            if reconnect {
                reconnected = true;
            } else {
                retries += 1;
            }
            let url = super::redact_password(url);
            tracing::debug!(%url, retries, ?wait, error = %failed.error, "will try again");
            thread::sleep(wait);
        }
    }

    /// One request with what is left of the deadline, and the redirects it leads to, on an
    /// agent borrowed for them; and what it learnt.
    fn attempt(&self, attempt: &Attempt<'_>) -> (Result<Page, Failed>, Facts) {
        let agent = self.clients.take(attempt.uri);
        facts::reset();
        let mut response_facts = Facts::default();
        let result = self
            .shared
            .exchange
            .follow(&agent, attempt, &mut response_facts);
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
