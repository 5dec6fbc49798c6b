//! Which URLs are fetched: `http` and `https` ones with a host, parsed once into the [`Uri`]
//! ureq sends, and the targets of redirects, resolved as RFC 3986 resolves a reference.
//!
//! Nothing here rewrites a URL into a different one. The `url` crate, which parses them, follows
//! the WHATWG URL standard: it silently drops tabs and newlines, takes `\` for `/`, and trims
//! control characters at either end. So what it would change is refused first, as Python's
//! `http.client` refuses it: a control character or a space in a URL, and in a `Location`
//! anything that RFC 3986 does not allow in a URI reference.

use ureq::http::Uri;

use super::FetchError;

/// Parses a URL as [`Fetcher::load_url`](super::Fetcher::load_url) accepts it: `http` or `https`
/// with a host. The fragment is dropped, as a browser and Python's `urllib` do: it is never sent.
/// ASCII whitespace around the URL is ignored, as the CLI trims its lines and Python's
/// `urlopen` strips its argument; inside it, a control character or a space is
/// [`FetchError::ControlCharacter`].
pub(super) fn parse_url(input: &str) -> Result<Uri, FetchError> {
    let invalid = || FetchError::InvalidUrl {
        url: input.to_owned(),
    };
    let trimmed = input.trim_matches(|c: char| c.is_ascii_whitespace());
    // Python's order: a URL of another type is that before anything else.
    if !scheme(trimmed).is_some_and(|s| matches!(s.as_str(), "http" | "https")) {
        return Err(invalid());
    }
    if let Some(error) = control_character(trimmed) {
        return Err(error);
    }
    let mut url = url::Url::parse(trimmed).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(invalid());
    }
    url.set_fragment(None);
    url.as_str().parse().map_err(|_| invalid())
}

/// The error for a control character or a space in the part of `url` that would be sent (the
/// fragment never is), named as Python's `http.client` names it: in the host, the host; in the
/// path or query, the request target.
fn control_character(url: &str) -> Option<FetchError> {
    let sent = url.split_once('#').map_or(url, |(sent, _)| sent);
    // Python's `[\x00-\x20\x7f]`, and the C1 controls, which it cannot send either.
    let found = sent.chars().find(|&c| c.is_control() || c == ' ')?;
    let rest = sent.split_once("://").map_or(sent, |(_, rest)| rest);
    let (authority, target) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let part = if target.contains(found) {
        if target.starts_with('/') {
            target.to_owned()
        } else {
            format!("/{target}")
        }
    } else if authority.contains(found) {
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let port = host
            .rsplit_once(':')
            .filter(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
        let host = port.map_or(host, |(host, _)| host);
        if host.contains(found) {
            host
        } else {
            authority
        }
        .to_owned()
    } else {
        sent.to_owned()
    };
    Some(FetchError::ControlCharacter { part, found })
}

/// Why a redirect is not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// The target's scheme is not `http` or `https` (`file:`, `data:`, `javascript:`...).
    NotAllowed,
    /// The `Location` is not a URI reference, or does not lead to an `http`/`https` URL with
    /// a host.
    Invalid,
}

/// The URL a `Location` of a response to `base` leads to: the reference resolved against `base`
/// as RFC 3986 section 5.2 (and Python's `urljoin`) resolves it, without its fragment.
pub(super) fn resolve_location(base: &Uri, location: &str) -> Result<Uri, Refused> {
    // Python refuses a scheme it will not follow before it looks at anything else.
    if scheme(location).is_some_and(|s| !matches!(s.as_str(), "http" | "https")) {
        return Err(Refused::NotAllowed);
    }
    if !is_uri_reference(location) {
        return Err(Refused::Invalid);
    }
    let base = url::Url::parse(&base.to_string()).map_err(|_| Refused::Invalid)?;
    let mut url = base.join(location).map_err(|_| Refused::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(Refused::Invalid);
    }
    url.set_fragment(None);
    url.as_str().parse().map_err(|_| Refused::Invalid)
}

/// The scheme of a URI reference, lower case, if it has one (RFC 3986 section 3.1: a letter,
/// then letters, digits, `+`, `-` or `.`, then `:`, before any `/`, `?` or `#`).
fn scheme(reference: &str) -> Option<String> {
    let (scheme, _) = reference.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// Whether every character of `text` may stand in a URI reference (RFC 3986 section 2: the
/// unreserved and reserved characters, and `%` with two hex digits). The WHATWG parser would
/// quietly change the others (drop a tab, turn `\` into `/`, encode a space).
fn is_uri_reference(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'%' => bytes
            .get(i + 1..i + 3)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
        b if b.is_ascii_alphanumeric() => true,
        b'-' | b'.' | b'_' | b'~' => true,
        b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@' => true,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => true,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repr::repr;

    #[test]
    fn url_must_be_http_with_a_host() {
        assert!(
            parse_url("http://127.0.0.1:8080/a#frag").is_ok_and(|u| u == "http://127.0.0.1:8080/a")
        );
        assert!(parse_url(" http://127.0.0.1/a\r\n").is_ok_and(|u| u == "http://127.0.0.1/a"));
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

    #[test]
    fn control_characters_are_named_where_python_names_them() {
        for (url, message) in [
            (
                "http://h/a\x01b",
                r"URL can't contain control characters. '/a\x01b' (found at least '\x01')",
            ),
            (
                "http://h:8/a b?q",
                r"URL can't contain control characters. '/a b?q' (found at least ' ')",
            ),
            (
                "http://h?a\tb",
                r"URL can't contain control characters. '/?a\tb' (found at least '\t')",
            ),
            (
                "http://u@a\x7fb:9/x",
                r"URL can't contain control characters. 'a\x7fb' (found at least '\x7f')",
            ),
            (
                "http://h/\u{85}",
                r"URL can't contain control characters. '/\x85' (found at least '\x85')",
            ),
        ] {
            let e = parse_url(url).expect_err(url);
            assert_eq!(e.to_string(), message, "{url:?}");
            assert_eq!(e.attempts(), 0);
        }
        // The fragment is never sent, so nothing in it can reach the server.
        assert!(parse_url("http://h/a#b c").is_ok());
    }

    #[test]
    fn uri_references_are_rfc_3986_characters_only() {
        assert!(is_uri_reference("/a/b?c=d&e=%2F#f"));
        assert!(is_uri_reference(""));
        for bad in [
            "/a b",
            "/a\tb",
            r"\\evil",
            "/%zz",
            "/%4",
            "/caf\u{e9}",
            "/<x>",
        ] {
            assert!(!is_uri_reference(bad), "{bad:?}");
        }
        assert_eq!(scheme("FILE:///etc/passwd").as_deref(), Some("file"));
        assert_eq!(scheme("javascript:alert(1)").as_deref(), Some("javascript"));
        assert_eq!(scheme("/a:b"), None);
        assert_eq!(scheme("1x:y"), None);
    }
}
