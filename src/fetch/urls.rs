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
///
/// A URL already in the form the WHATWG parser would give it back in ([`as_normalized`]) is
/// parsed by `http` alone: the `url` crate's full parse cost 6,600 instructions per URL, an
/// eighth of a whole fetch of a small page (`BENCHMARKS.md`, "Where the time goes").
pub(super) fn parse_url(input: &str) -> Result<Uri, FetchError> {
    if let Some(uri) = as_normalized(input).and_then(|url| url.parse().ok()) {
        return Ok(uri);
    }
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

/// `input` without its fragment, if the `url` crate would parse it into exactly that: an
/// `http` or `https` URL in lower case, a host of lower-case letters, digits, `-` and `.` (or a
/// dotted-quad IPv4 address as the URL standard writes it), a port only if it is not the
/// scheme's default, and a path and query of characters that are left as they are, with no `.`
/// or `..` segment. `None` for anything else, which then takes the full parse: this check may
/// turn down URLs that need no change, but must never pass one that does.
fn as_normalized(input: &str) -> Option<&str> {
    // Byte searches throughout: `str`'s pattern searchers cost more per call than these short
    // strings take to scan (`BENCHMARKS.md`, "The fetcher's own work").
    let url = match find(input.as_bytes(), b'#') {
        Some(at) => &input[..at],
        None => input,
    };
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, "80")
    } else {
        (url.strip_prefix("https://")?, "443")
    };
    let bytes = rest.as_bytes();
    let end = bytes
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(bytes.len());
    let (authority, path_and_query) = rest.split_at(end);
    let (host, port) = match find(authority.as_bytes(), b':') {
        Some(at) => (&authority[..at], Some(&authority[at + 1..])),
        None => (authority, None),
    };
    if let Some(port) = port {
        let number = port.parse::<u16>().ok()?;
        if port.starts_with(['0', '+']) || port == default_port || number == 0 {
            return None;
        }
    }
    if !is_normalized_host(host.as_bytes()) {
        return None;
    }
    let (path, query) = match find(path_and_query.as_bytes(), b'?') {
        Some(at) => (&path_and_query[..at], Some(&path_and_query[at + 1..])),
        None => (path_and_query, None),
    };
    let plain_path = path.starts_with('/')
        && path
            .as_bytes()
            .split(|&b| b == b'/')
            .all(|segment| segment.iter().all(|&b| is_plain(b)) && !is_dot_segment(segment));
    // http and https escape `'` in a query.
    let plain_query = query.is_none_or(|q| {
        q.bytes()
            .all(|b| (is_plain(b) && b != b'\'') || b == b'/' || b == b'?')
    });
    (plain_path && plain_query).then_some(url)
}

/// Where `byte` first is in `bytes`.
fn find(bytes: &[u8], byte: u8) -> Option<usize> {
    bytes.iter().position(|&b| b == byte)
}

/// Bytes the URL standard leaves as they are in a path and a query: RFC 3986's unreserved
/// characters, sub-delimiters, `:`, `@` and `%` (an escape is kept as written).
fn is_plain(b: u8) -> bool {
    PLAIN[usize::from(b)]
}

/// [`is_plain`] as a table: a scan of the punctuation list per byte cost more than the rest of
/// the short cut.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let punctuation = b"-._~!$&'()*+,;=:@%";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    table
};

/// `.` and `..`, also written with `%2e`: the parser removes them.
fn is_dot_segment(s: &[u8]) -> bool {
    let dot = |s: &[u8]| s == b"." || s.eq_ignore_ascii_case(b"%2e");
    match s.len() {
        1 | 3 => dot(s),
        2 => s == b"..",
        4 => (dot(&s[..1]) && dot(&s[1..])) || (dot(&s[..3]) && dot(&s[3..])),
        6 => dot(&s[..3]) && dot(&s[3..]),
        _ => false,
    }
}

/// A host the URL standard keeps as written: lower-case labels of letters, digits and `-`, the
/// last not a number (which would make the host an IPv4 address, written anew), or a dotted
/// quad without leading zeros. One pass over the labels.
fn is_normalized_host(host: &[u8]) -> bool {
    let mut labels = 0;
    let mut quad = true;
    let mut last_numeric = false;
    for label in host.split(|&b| b == b'.') {
        let letters = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
        if label.is_empty() || label.starts_with(b"xn--") || !label.iter().all(letters) {
            return false;
        }
        let digits = label.iter().all(u8::is_ascii_digit);
        last_numeric = digits || label.starts_with(b"0x");
        // A part of a dotted quad: 0 to 255, with no leading zero.
        let value = || {
            label
                .iter()
                .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'))
        };
        quad &= digits && label.len() <= 3 && (label == b"0" || label[0] != b'0') && value() <= 255;
        labels += 1;
    }
    !last_numeric || (quad && labels == 4)
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

    /// What the full parse makes of `input`, as a string.
    fn full_parse(input: &str) -> Option<String> {
        let mut url = url::Url::parse(input).ok()?;
        url.set_fragment(None);
        Some(url.as_str().to_owned())
    }

    #[test]
    fn the_short_cut_takes_only_urls_the_full_parse_leaves_as_they_are() {
        let taken = [
            "http://127.0.0.1:8080/bytes/1000?i=12",
            "https://example.com/",
            "http://a-b.example.com/p/a.html?q=1&r=%20x#frag",
            "http://1.example/x",
            "http://10.0.0.255/",
            "http://0.0.0.0/",
            "http://h:65535/a//b/.c/..d?x=/?y",
        ];
        for url in taken {
            let normal = as_normalized(url).expect(url);
            assert_eq!(Some(normal.to_owned()), full_parse(url), "{url}");
        }
        // Each would be changed (or refused) by the full parse, or might be.
        let turned_down = [
            "HTTP://example.com/",
            "http://Example.com/",
            "http://example.com",
            "http://example.com?q",
            "http://example.com:80/",
            "https://example.com:443/",
            "http://example.com:080/",
            "http://example.com:+81/",
            "http://example.com:/",
            "http://example.com:0/",
            "http://example.com:65536/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://127.0.0.01/",
            "http://256.0.0.1/",
            "http://1.2.3.4.5/",
            "http://a.1/",
            "http://a.0x1/",
            "http://example.com./",
            "http://a..b/",
            "http://xn--nxasmq6b/",
            "http://user@example.com/",
            "http://[::1]/",
            "http://a/./b",
            "http://a/b/..",
            "http://a/%2e/b",
            "http://a/.%2E/b",
            "http://a/%2e./b",
            "http://a/%2E%2e/b",
            "http://a/b c",
            "http://a/b\"c",
            "http://a/b<c",
            "http://a/b`c",
            "http://a/b{c}",
            "http://a/b\\c",
            "http://a/b?c'd",
            "http://a/b?c\"d",
            "http://a/\u{e9}",
            " http://a/",
            "http://a/\t",
            "ftp://a/",
        ];
        for url in turned_down {
            assert_eq!(as_normalized(url), None, "{url}");
        }
    }

    #[test]
    fn both_ways_give_the_same_uri() {
        for url in [
            "http://127.0.0.1:8080/a?b#c",
            "http://Example.COM:80/./x/../y?z#f",
        ] {
            let uri = parse_url(url).expect(url);
            assert_eq!(Some(uri.to_string()), full_parse(url), "{url}");
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
