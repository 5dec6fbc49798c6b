//! [`ErrorKind`]: a [`FetchError`] sorted into a few stable names, for filters and reports that
//! must not depend on the wording of a message.

use std::fmt;

use super::FetchError;
use super::classify::{SocketFailure, socket_failure};

/// What sort of failure a [`FetchError`] is, from [`FetchError::kind`]. Its
/// [`as_str`](ErrorKind::as_str) name is stable: the JSON output's `error_kind`.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::{ErrorKind, FetchError};
///
/// let e = FetchError::Status { code: 503, retry_after: None };
/// assert_eq!(e.kind(), ErrorKind::Status);
/// assert_eq!(e.kind().as_str(), "status");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `invalid_url`: not an `http`/`https` URL, or one with a control character or a space
    /// ([`FetchError::InvalidUrl`], [`FetchError::ControlCharacter`]).
    InvalidUrl,
    /// `request`: the request cannot be sent as asked, a line of its head being too long
    /// ([`FetchError::RequestTooLarge`]).
    Request,
    /// `proxy`: the proxy set for the scheme cannot be used ([`FetchError::UnusableProxy`]).
    Proxy,
    /// `dns`: the host name did not resolve ([`FetchError::Resolve`]).
    Dns,
    /// `connect`: no connection could be opened: refused, host or network unreachable.
    Connect,
    /// `tls`: the TLS handshake or a TLS record failed ([`FetchError::Tls`]).
    Tls,
    /// `cert_expiry`: the server's certificate expires within the days the options allow
    /// ([`FetchError::CertificateExpires`]).
    CertExpiry,
    /// `timeout`: the deadline passed, in any phase ([`FetchError::Timeout`]).
    Timeout,
    /// `closed`: the server closed or reset the connection before the response or the body was
    /// complete ([`FetchError::RemoteClosed`], [`FetchError::IncompleteRead`], a reset).
    Closed,
    /// `io`: any other socket error.
    Io,
    /// `protocol`: the response is not valid HTTP ([`FetchError::BadResponse`]).
    Protocol,
    /// `status`: the status is not one the options accept ([`FetchError::Status`]).
    Status,
    /// `redirects`: a redirect that was not followed: past the redirects allowed, to a scheme
    /// other than `http`/`https`, or to a `Location` that is no URL
    /// ([`FetchError::TooManyRedirects`], [`FetchError::RedirectNotAllowed`],
    /// [`FetchError::InvalidRedirect`]).
    Redirects,
    /// `check`: a content check failed ([`FetchError::Check`]).
    Check,
    /// `slow`: the page took longer than allowed ([`FetchError::Slow`]).
    Slow,
    /// `other`: anything else the HTTP client reported ([`FetchError::Other`]).
    Other,
}

impl ErrorKind {
    /// The stable name: `dns`, `connect`, `tls`, `timeout`, ... (see each variant).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::Request => "request",
            ErrorKind::Proxy => "proxy",
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::CertExpiry => "cert_expiry",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::Io => "io",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Status => "status",
            ErrorKind::Redirects => "redirects",
            ErrorKind::Check => "check",
            ErrorKind::Slow => "slow",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FetchError {
    /// What sort of failure this is; for [`FetchError::Retried`], the last attempt's.
    ///
    /// # Examples
    ///
    /// ```
    /// use fetchall::fetch::{ErrorKind, FetchError};
    ///
    /// let retried = FetchError::Retried {
    ///     attempts: 3,
    ///     last: Box::new(FetchError::RemoteClosed),
    /// };
    /// assert_eq!(retried.kind(), ErrorKind::Closed);
    /// let refused = FetchError::Io(std::io::ErrorKind::ConnectionRefused.into());
    /// assert_eq!(refused.kind().as_str(), "connect");
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            FetchError::InvalidUrl { .. } | FetchError::ControlCharacter { .. } => {
                ErrorKind::InvalidUrl
            }
            FetchError::RequestTooLarge { .. } => ErrorKind::Request,
            FetchError::UnusableProxy { .. } => ErrorKind::Proxy,
            FetchError::Status { .. } => ErrorKind::Status,
            FetchError::TooManyRedirects { .. }
            | FetchError::RedirectNotAllowed { .. }
            | FetchError::InvalidRedirect { .. } => ErrorKind::Redirects,
            FetchError::Timeout { .. } => ErrorKind::Timeout,
            FetchError::Resolve(_) => ErrorKind::Dns,
            FetchError::Io(e) => match socket_failure(e.kind()) {
                SocketFailure::Unreachable => ErrorKind::Connect,
                SocketFailure::Lost => ErrorKind::Closed,
                SocketFailure::Again | SocketFailure::Other => ErrorKind::Io,
            },
            FetchError::RemoteClosed | FetchError::IncompleteRead { .. } => ErrorKind::Closed,
            FetchError::Tls(_) => ErrorKind::Tls,
            FetchError::CertificateExpires { .. } => ErrorKind::CertExpiry,
            FetchError::BadResponse(_) => ErrorKind::Protocol,
            FetchError::Check(_) => ErrorKind::Check,
            FetchError::Slow { .. } => ErrorKind::Slow,
            FetchError::Other(_) => ErrorKind::Other,
            FetchError::Retried { last, .. } => last.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::time::Duration;

    #[test]
    fn every_error_has_its_kind() {
        let ureq = || ureq::Error::Tls("x");
        let io = |kind: io::ErrorKind| FetchError::Io(kind.into());
        for (error, kind) in [
            (FetchError::InvalidUrl { url: "x".into() }, "invalid_url"),
            (
                FetchError::ControlCharacter {
                    part: "/a b".into(),
                    found: ' ',
                },
                "invalid_url",
            ),
            (FetchError::RequestTooLarge { limit: 65536 }, "request"),
            (
                FetchError::RedirectNotAllowed {
                    code: 302,
                    location: "file:///".into(),
                },
                "redirects",
            ),
            (
                FetchError::InvalidRedirect {
                    code: 302,
                    location: "/a b".into(),
                },
                "redirects",
            ),
            (
                FetchError::UnusableProxy {
                    var: "all_proxy",
                    value: "socks5://h".into(),
                },
                "proxy",
            ),
            (FetchError::Resolve(io::Error::other("x").into()), "dns"),
            (io(io::ErrorKind::ConnectionRefused), "connect"),
            (io(io::ErrorKind::HostUnreachable), "connect"),
            (io(io::ErrorKind::ConnectionReset), "closed"),
            (io(io::ErrorKind::PermissionDenied), "io"),
            (FetchError::RemoteClosed, "closed"),
            (
                FetchError::IncompleteRead {
                    read: 1,
                    expected: None,
                },
                "closed",
            ),
            (FetchError::Tls(ureq()), "tls"),
            (FetchError::BadResponse(ureq()), "protocol"),
            (FetchError::Other(ureq()), "other"),
            (
                FetchError::Status {
                    code: 404,
                    retry_after: None,
                },
                "status",
            ),
            (
                FetchError::TooManyRedirects {
                    code: 302,
                    followed: 10,
                },
                "redirects",
            ),
            (
                FetchError::Timeout {
                    phase: crate::fetch::Phase::Body,
                    bytes: 0,
                    elapsed: Duration::ZERO,
                },
                "timeout",
            ),
            (
                FetchError::Slow {
                    elapsed: Duration::from_secs(3),
                    limit: Duration::from_secs(2),
                },
                "slow",
            ),
        ] {
            assert_eq!(error.kind().as_str(), kind, "{error}");
            assert_eq!(error.kind().to_string(), kind);
        }
    }
}
