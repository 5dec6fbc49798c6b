//! One attempt at a URL: its request, the redirects it leads to, and the reading of the final
//! response into a [`Page`] or a failure.

use std::io::{self, Read};
use std::time::{Duration, Instant, SystemTime};

use ureq::http::header::{ACCEPT_ENCODING, CONTENT_TYPE, LOCATION, USER_AGENT};
use ureq::http::{HeaderMap, HeaderValue, Response, Uri, Version};
use ureq::{Agent, Body, Proxy};

use super::checks::BodyChecks;
use super::classify::{Stage, classify, one_line};
use super::clients::{LONGEST_LINE, OUTPUT_BUFFER};
use super::facts;
use super::retry::retry_after;
use super::transport::is_stale;
use super::urls::{Refused, resolve_location};
use super::{
    Checks, Facts, FetchError, FetchOptions, Method, Page, StatusRanges, TlsInfo, redact_password,
};

/// Error bodies up to this size are read and discarded so the connection can be reused.
const DRAIN_LIMIT: u64 = 64 * 1024;

/// The largest buffer a body is read through.
const READ_BUFFER: usize = 64 * 1024;

/// What every request of a fetcher sends, and what it makes of the answer.
#[derive(Debug)]
pub(super) struct Exchange {
    method: Method,
    max_redirects: u32,
    headers: HeaderMap,
    /// The agent's output buffer size, from [`output_buffer`].
    output_buffer: usize,
    accept: StatusRanges,
    checks: Checks,
    cert_expiry_days: Option<u32>,
}

/// One request of a fetch: where it goes, and how much time it has.
#[derive(Debug)]
pub(super) struct Attempt<'a> {
    pub(super) uri: &'a Uri,
    pub(super) proxy: Option<&'a Proxy>,
    /// The end of the whole URL's time ([`deadline_from`](crate::sync::deadline_from): a
    /// timeout too large for the clock is a century).
    pub(super) deadline: Instant,
    /// When [`Fetcher::load_url`](super::Fetcher::load_url) started: every `elapsed` is counted
    /// from here.
    pub(super) started: Instant,
    /// For the first request; every redirect after it has [`Config::OwnDeadline`].
    pub(super) config: Config,
}

/// Which configuration a request runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Config {
    /// The agent's own: its deadline is the whole timeout, which is right for the first request
    /// of a URL fetched directly (ureq counts the deadline from the start of each request).
    AgentDeadline,
    /// One made for the request, with what is left of the deadline and the proxy: for a request
    /// after the first (a retry, a redirect), and for any request through a proxy (the pool is
    /// still shared: ureq keys pooled connections by proxy).
    OwnDeadline,
}

/// One request of an attempt: to the URL asked for, or to where a redirect led.
#[derive(Debug)]
struct Hop {
    uri: Uri,
    config: Config,
}

/// The output buffer the fetcher's connections write request heads through: [`OUTPUT_BUFFER`],
/// or the longest of `headers` if that is longer (up to [`LONGEST_LINE`], past which ureq fails
/// the request), so that a long `-H` costs each connection a larger buffer, not its keep-alive.
///
/// ureq writes a head a line at a time and fails a line longer than the buffer. A header line
/// is `name: value\r\n`, and the last one goes out with the `\r\n` of the blank line after it;
/// the fetcher's headers come after ureq's own, so the last line is always one of them.
fn output_buffer(headers: &HeaderMap) -> usize {
    let longest = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 6)
        .max()
        .unwrap_or(0);
    longest.clamp(OUTPUT_BUFFER, LONGEST_LINE)
}

/// The longest of the lines ureq makes from `uri`, with 2 bytes to spare for the blank line:
/// the request line (the path and query, with a `/` put before a bare query), `host` (the host
/// and port), or the `authorization` it encodes from a user and password in the URL (base64:
/// 4 bytes for 3).
fn longest_url_line(uri: &Uri) -> usize {
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len());
    let authority = uri.authority().map_or("", |a| a.as_str());
    let (user, host) = match authority.rfind('@') {
        Some(at) => (at, authority.len() - at - 1),
        None => (0, authority.len()),
    };
    // `HEAD /` and ` HTTP/1.1\r\n`; `host: ` and `\r\n`; `authorization: Basic ` and `\r\n`.
    let request = target + 19;
    let host = host + 10;
    let authorization = if user == 0 {
        0
    } else {
        user.div_ceil(3) * 4 + 25
    };
    request.max(host).max(authorization)
}

/// Why one attempt failed, and what that says about trying again.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) error: FetchError,
    /// The wait the response's `Retry-After` header asked for.
    pub(super) retry_after: Option<Duration>,
    /// A pooled connection that turned out closed before any byte of the response.
    pub(super) stale: bool,
    /// The TLS facts of the connection the failing response came on, if it came on one. Boxed:
    /// most failures have none, and this is the `Err` of every attempt.
    pub(super) tls: Option<Box<TlsInfo>>,
}

impl Failed {
    /// A failure that asks for no particular wait and is no keep-alive race.
    pub(super) fn at_once(error: FetchError) -> Failed {
        Failed {
            error,
            retry_after: None,
            stale: false,
            tls: None,
        }
    }
}

impl Exchange {
    /// The requests `options` ask for: `User-Agent` and `Accept-Encoding: identity`, then the
    /// given headers, which replace those.
    pub(super) fn new(options: &FetchOptions) -> Exchange {
        let mut headers = HeaderMap::with_capacity(2 + options.headers.len());
        headers.insert(USER_AGENT, options.user_agent.clone());
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let mut last = None;
        for (name, value) in options.headers.clone() {
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
        let output_buffer = output_buffer(&headers);
        Exchange {
            method: options.method,
            max_redirects: options.max_redirects,
            headers,
            output_buffer,
            accept: options.accept.clone(),
            checks: options.checks.clone(),
            cert_expiry_days: options.cert_expiry_days,
        }
    }

    /// Sends the request and follows its redirects, each a request of its own with what is left
    /// of the deadline, up to [`FetchOptions::max_redirects`] of them. ureq's own following is
    /// off: it resolves `?q` or `#f` against the directory instead of the document, and would
    /// try a `file:` URL.
    ///
    /// The method stays what it was on every redirect: `GET` and `HEAD` are what Python's
    /// `urllib` and curl keep on a 301, 302, 303, 307 or 308 alike. Each response's facts go to
    /// `facts`, so that the last one's are left.
    pub(super) fn follow(
        &self,
        agent: &Agent,
        attempt: &Attempt<'_>,
        facts: &mut Facts,
    ) -> Result<Page, Failed> {
        let mut hop = Hop {
            uri: attempt.uri.clone(),
            config: attempt.config,
        };
        let mut followed = 0;
        loop {
            let response = self.send(agent, attempt, &hop)?;
            read_facts(&response, &hop.uri, followed, facts);
            let Some(location) = self.location(&response) else {
                return self.read_page(response, attempt, &hop.uri);
            };
            let code = response.status().as_u16();
            drain(response);
            if followed == self.max_redirects {
                return Err(Failed::at_once(FetchError::TooManyRedirects {
                    code,
                    followed,
                }));
            }
            let uri = resolve_location(&hop.uri, &location).map_err(|refused| {
                Failed::at_once(match refused {
                    Refused::NotAllowed => FetchError::RedirectNotAllowed { code, location },
                    Refused::Invalid => FetchError::InvalidRedirect { code, location },
                })
            })?;
            if tracing::enabled!(tracing::Level::DEBUG) {
                let (from, to) = (hop.uri.to_string(), uri.to_string());
                let (from, to) = (redact_password(&from), redact_password(&to));
                tracing::debug!(%from, %to, code, "redirected");
            }
            hop = Hop {
                uri,
                config: Config::OwnDeadline,
            };
            followed += 1;
        }
    }

    /// The `Location` of a redirect to follow, as the server sent it: a 3xx's, when redirects
    /// are followed at all (the last one, if several, as ureq took it).
    fn location(&self, response: &Response<Body>) -> Option<String> {
        if self.max_redirects == 0 || !response.status().is_redirection() {
            return None;
        }
        let location = response.headers().get_all(LOCATION).iter().next_back()?;
        Some(String::from_utf8_lossy(location.as_bytes()).into_owned())
    }

    /// Sends one request and waits for the response's headers.
    fn send(
        &self,
        agent: &Agent,
        attempt: &Attempt<'_>,
        hop: &Hop,
    ) -> Result<Response<Body>, Failed> {
        let mut request = match self.method {
            Method::Get => agent.get(hop.uri.clone()),
            Method::Head => agent.head(hop.uri.clone()),
        };
        if let Some(headers) = request.headers_mut() {
            headers.clone_from(&self.headers);
        }
        // A URL whose request line (or `host`, or `authorization`) may not fit the agent's
        // output buffer gets one of 64 KiB, and with it, from ureq, a connection of its own,
        // neither taken from the pool nor put back in it: the rare URL of over 8 KiB.
        let long_url = longest_url_line(&hop.uri) > self.output_buffer;
        let response = if hop.config == Config::AgentDeadline && !long_url {
            request.call()
        } else {
            let mut builder = request.config();
            if hop.config == Config::OwnDeadline {
                let left = attempt.deadline.saturating_duration_since(Instant::now());
                builder = builder
                    .timeout_global(Some(left))
                    .proxy(attempt.proxy.cloned());
            }
            if long_url {
                builder = builder.output_buffer_size(LONGEST_LINE);
            }
            builder.build().call()
        };
        response.map_err(|e| Failed {
            stale: is_stale(&e),
            ..Failed::at_once(classify(e, Stage::Exchange, attempt.started.elapsed()))
        })
    }

    /// The output buffer size the fetcher's agents are to have (see [`output_buffer`]).
    pub(super) fn output_buffer(&self) -> usize {
        self.output_buffer
    }

    /// Reads the response from `uri`: its body counted into a [`Page`], or the status that makes
    /// it a failure.
    fn read_page(
        &self,
        response: Response<Body>,
        attempt: &Attempt<'_>,
        uri: &Uri,
    ) -> Result<Page, Failed> {
        // The facts of the connection the response came on (see `tls.rs`); an `http` one has
        // none.
        let tls = facts::last_tls().map(|info| TlsInfo::clone(&info));
        if let (Some(info), Some(days)) = (&tls, self.cert_expiry_days) {
            let now = SystemTime::now();
            let within = now.checked_add(Duration::from_secs(u64::from(days) * super::tls::DAY));
            if within.is_none_or(|limit| info.not_after < limit) {
                drain(response);
                return Err(Failed {
                    tls: Some(Box::new(info.clone())),
                    ..Failed::at_once(FetchError::CertificateExpires {
                        info: Box::new(info.clone()),
                        days_left: info.days_left(now),
                    })
                });
            }
        }
        let code = response.status().as_u16();
        if !self.accept.contains(code) {
            let retry_after = retry_after(response.headers(), SystemTime::now());
            drain(response);
            return Err(Failed {
                retry_after,
                tls: tls.map(Box::new),
                ..Failed::at_once(FetchError::Status { code, retry_after })
            });
        }

        if let Err(failure) = self.checks.check_headers(response.headers()) {
            drain(response);
            return Err(Failed {
                tls: tls.map(Box::new),
                ..Failed::at_once(FetchError::Check(failure))
            });
        }

        let final_url = (uri != attempt.uri).then(|| uri.to_string());
        let expected = response.body().content_length();
        let mut body = response.into_body().into_reader();
        let mut checks = self.checks.body();
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
                        tls,
                    }),
                    Err(failure) => Err(Failed {
                        tls: tls.map(Box::new),
                        ..Failed::at_once(FetchError::Check(failure))
                    }),
                }
            }
            (bytes, Err(e)) => {
                let stage = Stage::Body { bytes, expected };
                let elapsed = attempt.started.elapsed();
                Err(Failed {
                    tls: tls.map(Box::new),
                    ..Failed::at_once(classify(ureq::Error::from(e), stage, elapsed))
                })
            }
        }
    }
}

/// What a response from `uri`, after `redirects` redirects, says about itself: where it came
/// from (a password in it replaced by `***`), in which version of HTTP and with which content
/// type.
fn read_facts(response: &Response<Body>, uri: &Uri, redirects: u32, facts: &mut Facts) {
    let url = uri.to_string();
    // Only a URL with a user in it can have a password to hide.
    let has_user = uri.authority().is_some_and(|a| a.as_str().contains('@'));
    facts.final_url = Some(if has_user {
        redact_password(&url).into_owned()
    } else {
        url
    });
    facts.redirects = redirects;
    facts.content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| one_line(&String::from_utf8_lossy(value.as_bytes())));
    // ureq speaks HTTP/1.x only: its parser gives 1.0 or 1.1, nothing else.
    facts.http_version = Some(if response.version() == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    });
}

/// Reads a small body to its end, which lets the connection go back to the pool; a failure here
/// changes nothing about the answer.
fn drain(response: Response<Body>) {
    if response
        .body()
        .content_length()
        .is_some_and(|n| n <= DRAIN_LIMIT)
    {
        let mut body = response.into_body().into_reader();
        let _ = io::copy(&mut body, &mut io::sink());
    }
}

/// Reads `body` to its end and counts it, keeping none of it: a body of any size costs one
/// buffer of at most [`READ_BUFFER`] bytes (and no more than the body needs), and the window of
/// the `checks`, which are fed each read. Returns the count even when reading fails half way.
///
/// Not `io::copy`: its 8 KiB buffer makes twelve calls through ureq's body reader for each
/// 96 KiB ureq reads from the socket, and each call has its bookkeeping.
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
