//! What can go wrong with a fetch: [`FetchError`], and the one line it displays as.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::classify::{
    SocketFailure, detail_message, errno_message, lookup_message, one_line, reason, server_text,
    socket_failure,
};
use super::tls::TlsFailed;
use super::{CheckFailure, TlsInfo};
#[cfg(doc)]
use super::{FetchOptions, Fetcher, Page};
use crate::repr::repr;

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
    /// The URL holds a control character or a space, which no request may carry (Python's
    /// `http.client` check): `URL can't contain control characters. '/a b' (found at least ' ')`.
    /// Nothing was contacted.
    ControlCharacter {
        /// The part of the URL it is in: the host, or the request target (path and query).
        part: String,
        /// The first such character.
        found: char,
    },
    /// The final response's status is outside 2xx: `HTTP Error 404: Not Found`.
    Status {
        /// The status code.
        code: u16,
        /// The wait the response's `Retry-After` header asked for, if it had one (a 429 or a
        /// 503 usually): what a caller that paces its requests to the host should honour.
        retry_after: Option<Duration>,
    },
    /// Still redirected after following the allowed number of redirects:
    /// `HTTP Error 302: Found (stopped after 10 redirects)`.
    TooManyRedirects {
        /// The status of the last redirect.
        code: u16,
        /// How many redirects were followed.
        followed: u32,
    },
    /// A redirect to a URL whose scheme is not `http` or `https`, which is not followed:
    /// `HTTP Error 302: Found - Redirection to url 'file:///etc/passwd' is not allowed`.
    RedirectNotAllowed {
        /// The status of the redirect.
        code: u16,
        /// The `Location` header as the server sent it.
        location: String,
    },
    /// A redirect whose `Location` is not a valid URL, which is not followed (nor rewritten
    /// into one): `HTTP Error 302: Found - Redirection to url '/a b' is not a valid URL`.
    InvalidRedirect {
        /// The status of the redirect.
        code: u16,
        /// The `Location` header as the server sent it (bytes that are not UTF-8 as U+FFFD).
        location: String,
    },
    /// The request cannot be sent: a line of its head (the request line or a header, with a
    /// huge `-H` value, say) is longer than the most fetchall writes a head through, 64 KiB:
    /// `request too large to send: a request line or header over 65536 bytes`. Nothing was
    /// received.
    RequestTooLarge {
        /// The longest line that can be sent, in bytes.
        limit: usize,
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
    /// `unusable proxy in ALL_PROXY: 'ftp://h:21' (a proxy is http://, https://, socks4://,
    /// socks4a://, socks5:// or socks5h://)`.
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
    /// The `https` server's certificate expires within [`FetchOptions::cert_expiry_days`]:
    /// `certificate expires in 5 days (2026-12-06)`, or `certificate expired 3 days ago
    /// (2026-11-28)` when [`FetchOptions::insecure`] let an expired one through.
    CertificateExpires {
        /// The connection's TLS facts, the certificate's among them.
        info: Box<TlsInfo>,
        /// Whole days left when it was checked ([`TlsInfo::days_left`]).
        days_left: i64,
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
    /// let e = fetchall::fetch::FetchError::Status { code: 404, retry_after: None };
    /// assert_eq!(e.status(), Some(404));
    /// assert_eq!(e.to_string(), "HTTP Error 404: Not Found");
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { code, .. }
            | FetchError::TooManyRedirects { code, .. }
            | FetchError::RedirectNotAllowed { code, .. }
            | FetchError::InvalidRedirect { code, .. } => Some(*code),
            FetchError::Retried { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The TLS facts that come with the error: the certificate of a
    /// [`FetchError::CertificateExpires`] (also after retries).
    pub fn tls(&self) -> Option<&TlsInfo> {
        match self {
            FetchError::CertificateExpires { info, .. } => Some(info),
            FetchError::Retried { last, .. } => last.tls(),
            _ => None,
        }
    }

    /// How many attempts were made for the URL (see [`Page::attempts`]): 0 when none could be
    /// (an invalid URL, an unusable proxy), the count for [`FetchError::Retried`], 1 otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::fetch::FetchError;
    ///
    /// let unavailable = || FetchError::Status { code: 503, retry_after: None };
    /// assert_eq!(unavailable().attempts(), 1);
    /// let retried = FetchError::Retried {
    ///     attempts: 3,
    ///     last: Box::new(unavailable()),
    /// };
    /// assert_eq!(retried.attempts(), 3);
    /// assert_eq!(retried.status(), Some(503));
    /// assert_eq!(retried.to_string(), "HTTP Error 503: Service Unavailable (after 3 attempts)");
    /// ```
    pub fn attempts(&self) -> u32 {
        match self {
            FetchError::InvalidUrl { .. }
            | FetchError::ControlCharacter { .. }
            | FetchError::UnusableProxy { .. } => 0,
            FetchError::Retried { attempts, .. } => *attempts,
            _ => 1,
        }
    }

    /// The wait the final response's `Retry-After` header asked for, for
    /// [`FetchError::Status`] (also inside [`FetchError::Retried`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fetchall::fetch::FetchError;
    ///
    /// let busy = FetchError::Status { code: 429, retry_after: Some(Duration::from_secs(2)) };
    /// assert_eq!(busy.retry_after(), Some(Duration::from_secs(2)));
    /// assert_eq!(FetchError::RemoteClosed.retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            FetchError::Retried { last, .. } => last.retry_after(),
            _ => None,
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
    /// use fetchall::fetch::FetchError;
    ///
    /// let status = |code| FetchError::Status { code, retry_after: None };
    /// assert!(status(503).is_transient());
    /// assert!(!status(404).is_transient());
    /// assert!(FetchError::RemoteClosed.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { code, .. } => matches!(code, 408 | 429 | 500 | 502 | 503 | 504),
            FetchError::Timeout { .. }
            | FetchError::RemoteClosed
            | FetchError::IncompleteRead { .. } => true,
            FetchError::Io(e) => socket_failure(e.kind()) != SocketFailure::Other,
            FetchError::Retried { last, .. } => last.is_transient(),
            _ => false,
        }
    }

    /// The error to report after `attempts` attempts, the last of which failed with `self`.
    pub(super) fn after(self, attempts: u32) -> FetchError {
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
            FetchError::InvalidUrl { url } => {
                write!(
                    f,
                    "unknown url type: {}",
                    repr(&super::redact_password(url))
                )
            }
            FetchError::ControlCharacter { part, found } => write!(
                f,
                "URL can't contain control characters. {} (found at least {})",
                repr(part),
                repr(found.encode_utf8(&mut [0; 4]))
            ),
            FetchError::Status { code, .. } => write!(f, "HTTP Error {code}: {}", reason(*code)),
            FetchError::TooManyRedirects { code, followed } => write!(
                f,
                "HTTP Error {code}: {} (stopped after {followed} redirects)",
                reason(*code)
            ),
            FetchError::RedirectNotAllowed { code, location } => write!(
                f,
                "HTTP Error {code}: {} - Redirection to url {} is not allowed",
                reason(*code),
                server_text(location)
            ),
            FetchError::InvalidRedirect { code, location } => write!(
                f,
                "HTTP Error {code}: {} - Redirection to url {} is not a valid URL",
                reason(*code),
                server_text(location)
            ),
            FetchError::RequestTooLarge { limit } => write!(
                f,
                "request too large to send: a request line or header over {limit} bytes"
            ),
            FetchError::Timeout {
                phase: Phase::Body,
                bytes,
                elapsed,
            } => write!(
                f,
                "timed out (body, {bytes} bytes received after {})",
                Seconds(*elapsed)
            ),
            FetchError::Timeout { phase, elapsed, .. } => {
                write!(f, "timed out ({phase}, after {})", Seconds(*elapsed))
            }
            FetchError::Resolve(e) => write!(f, "<urlopen error {}>", lookup_message(e)),
            FetchError::Io(e) if socket_failure(e.kind()) == SocketFailure::Unreachable => {
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
            FetchError::Tls(ureq::Error::Other(inner)) if inner.is::<TlsFailed>() => {
                match inner.downcast_ref::<TlsFailed>() {
                    Some(failed) => f.write_str(&failed.python_message()),
                    None => Ok(()),
                }
            }
            FetchError::Tls(e) => write!(f, "<urlopen error [SSL] {}>", detail_message(e)),
            FetchError::BadResponse(e) => {
                write!(f, "invalid HTTP response: {}", detail_message(e))
            }
            FetchError::Other(e) => f.write_str(&one_line(&e.to_string())),
            FetchError::UnusableProxy { var, value } => write!(
                f,
                "unusable proxy in {var}: {} (a proxy is http://, https://, socks4://, socks4a://, \
                 socks5:// or socks5h://)",
                repr(value)
            ),
            FetchError::Check(failure) => fmt::Display::fmt(failure, f),
            FetchError::Slow { elapsed, limit } => write!(
                f,
                "slow: {:.2}s > {:.2}s",
                elapsed.as_secs_f64(),
                limit.as_secs_f64()
            ),
            FetchError::CertificateExpires { info, days_left } => {
                let date = info.not_after_date();
                match days_left {
                    1 => write!(f, "certificate expires in 1 day ({date})"),
                    0.. => write!(f, "certificate expires in {days_left} days ({date})"),
                    -1 => write!(f, "certificate expired 1 day ago ({date})"),
                    _ => write!(f, "certificate expired {} days ago ({date})", -days_left),
                }
            }
            FetchError::Retried { attempts, last } => {
                write!(f, "{last} (after {attempts} attempts)")
            }
        }
    }
}

/// A timeout's elapsed time in a message: `1.5s`, or whole milliseconds below a second
/// (`after 1ms`), where tenths of a second would all read `0.0s`.
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < Duration::from_secs(1) {
            write!(f, "{}ms", self.0.as_millis())
        } else {
            write!(f, "{:.1}s", self.0.as_secs_f64())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_under_a_second_are_in_milliseconds() {
        let timeout = |phase, bytes, ms| FetchError::Timeout {
            phase,
            bytes,
            elapsed: Duration::from_millis(ms),
        };
        assert_eq!(
            timeout(Phase::Connect, 0, 1).to_string(),
            "timed out (connect, after 1ms)"
        );
        assert_eq!(
            timeout(Phase::Body, 10, 999).to_string(),
            "timed out (body, 10 bytes received after 999ms)"
        );
        assert_eq!(
            timeout(Phase::Response, 0, 1000).to_string(),
            "timed out (response, after 1.0s)"
        );
    }

    #[test]
    fn status_uses_the_reason_phrase() {
        assert_eq!(
            FetchError::Status {
                code: 404,
                retry_after: None
            }
            .to_string(),
            "HTTP Error 404: Not Found"
        );
        assert_eq!(
            FetchError::Status {
                code: 500,
                retry_after: None
            }
            .to_string(),
            "HTTP Error 500: Internal Server Error"
        );
        assert_eq!(
            FetchError::Status {
                code: 599,
                retry_after: None
            }
            .to_string(),
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
    fn an_invalid_url_stays_on_one_line() {
        let e = FetchError::InvalidUrl { url: "a\nb".into() };
        assert_eq!(e.to_string(), r"unknown url type: 'a\nb'");
    }
}
