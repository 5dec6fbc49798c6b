//! Sorting ureq's and the socket's errors into [`FetchError`]s, and the Python wording of their
//! parts: errno text, lookup failures, reason phrases.

use std::io;
use std::time::Duration;

use ureq::Timeout;
use ureq::http::StatusCode;

use super::clients::LONGEST_LINE;
use super::error::{FetchError, Phase};
use super::resolver::LookupFailed;
use super::tls::TlsFailed;
use super::transport::{StaleConnection, TlsLabelled};
use crate::repr::repr;

/// At most this many characters of a server's text go into a message.
const SERVER_TEXT_MAX: usize = 200;

/// What a socket error means to a fetch. The one table of [`io::ErrorKind`]s that the retry
/// rule, the wording, the keep-alive race and the socket's own loop all read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SocketFailure {
    /// No connection was made: worth trying again, and worded as Python's `urlopen` words a
    /// failed connect, `<urlopen error [Errno 111] Connection refused>`.
    Unreachable,
    /// The other end is gone: worth trying again, and on a reused keep-alive connection before
    /// any byte of the answer, the keep-alive race.
    Lost,
    /// The call ended without failing (a socket timeout, a signal): the socket calls it again
    /// with what is left of the deadline.
    Again,
    /// Anything else: final.
    Other,
}

/// The [`SocketFailure`] of an error kind.
pub(super) fn socket_failure(kind: io::ErrorKind) -> SocketFailure {
    use io::ErrorKind::*;
    match kind {
        ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable => {
            SocketFailure::Unreachable
        }
        UnexpectedEof | ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe => {
            SocketFailure::Lost
        }
        TimedOut | WouldBlock | Interrupted => SocketFailure::Again,
        _ => SocketFailure::Other,
    }
}

/// Where a fetch was when ureq reported an error.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stage {
    /// Anywhere up to the final response's headers.
    Exchange,
    /// Reading the body, with what had arrived and what the headers promised in total.
    Body { bytes: u64, expected: Option<u64> },
}

/// Sorts a ureq error into a [`FetchError`]. The one place where ureq's and the socket's errors
/// get their Python wording.
pub(super) fn classify(err: ureq::Error, stage: Stage, elapsed: Duration) -> FetchError {
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
        // The request head is written through the output buffer a line at a time.
        ureq::Error::Protocol(ureq_proto::Error::OutputOverflow) => FetchError::RequestTooLarge {
            limit: LONGEST_LINE,
        },
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
    if boxed.is::<TlsFailed>() || boxed.is::<TlsLabelled>() {
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

/// The phase a timeout before the body belongs to, from the label that the connector chain, the
/// transport or the resolver put on it. `Global` is left only by ureq's own
/// checks between two steps of an exchange.
fn timeout_phase(reason: Timeout) -> Phase {
    match reason {
        Timeout::Resolve => Phase::Resolve,
        Timeout::Connect => Phase::Connect,
        _ => Phase::Response,
    }
}

/// `[Errno 111] Connection refused`, the way Python prints an `OSError`; other errors as they are.
pub(super) fn errno_message(e: &io::Error) -> String {
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
pub(super) fn lookup_message(e: &io::Error) -> String {
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
pub(super) fn detail_message(e: &ureq::Error) -> String {
    let text = match e {
        ureq::Error::Rustls(inner) => inner.to_string(),
        ureq::Error::Protocol(inner) => inner.to_string(),
        ureq::Error::Other(inner) => inner.to_string(),
        other => other.to_string(),
    };
    one_line(&text)
}

/// The reason phrase for a status code, as the standard names it.
pub(super) fn reason(code: u16) -> &'static str {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// Text a server sent (a `Location`, a header value, a reason phrase), made fit for a message:
/// quoted and escaped as [`repr`] quotes a URL, so that no control, bidi or C1 character can
/// reach a terminal or a log, and cut after [`SERVER_TEXT_MAX`] characters, with `…` after the
/// closing quote to say so. Every message that shows a server's text shows it through this.
pub(super) fn server_text(text: &str) -> String {
    match text.char_indices().nth(SERVER_TEXT_MAX) {
        Some((end, _)) => format!("{}…", repr(&text[..end])),
        None => repr(text),
    }
}

/// `text` with every control character (a newline above all) turned into a space, so that a
/// message from a server or the OS cannot break the one-line-per-URL output.
pub(super) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::fetch::resolver::lookup_failed;
    use std::sync::Arc;

    pub(in crate::fetch) fn exchange(e: ureq::Error) -> String {
        classify(e, Stage::Exchange, Duration::from_millis(1500)).to_string()
    }

    pub(in crate::fetch) fn body(e: ureq::Error, bytes: u64, expected: Option<u64>) -> String {
        let stage = Stage::Body { bytes, expected };
        classify(e, stage, Duration::from_millis(5000)).to_string()
    }

    pub(in crate::fetch) fn os_error(code: i32) -> ureq::Error {
        ureq::Error::Io(io::Error::from_raw_os_error(code))
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
    fn other_errors_keep_ureq_wording() {
        assert_eq!(exchange(ureq::Error::RedirectFailed), "redirect failed");
    }

    #[test]
    fn server_text_is_escaped_and_bounded() {
        assert_eq!(server_text("/a b"), "'/a b'");
        assert_eq!(
            server_text("/\u{202e}evil\u{85}\x1b[2J\t"),
            r"'/\u202eevil\x85\x1b[2J\t'"
        );
        let long = "é".repeat(SERVER_TEXT_MAX + 1);
        let cut = server_text(&long);
        assert_eq!(cut, format!("'{}'…", "é".repeat(SERVER_TEXT_MAX)));
        assert_eq!(
            server_text(&long[..2 * SERVER_TEXT_MAX]),
            repr(&long[..2 * SERVER_TEXT_MAX])
        );
    }

    #[test]
    fn an_overlong_request_line_is_the_request_side() {
        let e = exchange(ureq::Error::Protocol(ureq_proto::Error::OutputOverflow));
        assert_eq!(
            e,
            "request too large to send: a request line or header over 65536 bytes"
        );
    }

    #[test]
    fn messages_never_span_lines() {
        let e = io::Error::other("first\nsecond\r\n");
        assert_eq!(exchange(ureq::Error::Io(e)), "first second  ");
    }
}
