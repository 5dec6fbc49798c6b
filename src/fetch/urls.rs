//! Which URLs are fetched: `http` and `https` ones with a host, parsed once into the [`Uri`]
//! ureq sends.

use ureq::http::Uri;

use super::FetchError;

/// Parses a URL as [`Fetcher::load_url`](super::Fetcher::load_url) accepts it: `http` or `https`
/// with a host. The fragment is dropped, as a browser and Python's `urllib` do: it is never sent.
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
    let mut url = url::Url::parse(input).map_err(|_| invalid())?;
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
    let url = input.split_once('#').map_or(input, |(url, _)| url);
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, "80")
    } else {
        (url.strip_prefix("https://")?, "443")
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(end);
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if let Some(port) = port {
        let number = port.parse::<u16>().ok()?;
        if port.starts_with(['0', '+']) || port == default_port || number == 0 {
            return None;
        }
    }
    if !is_normalized_host(host) {
        return None;
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let plain_path = path.starts_with('/')
        && path.bytes().all(|b| is_plain(b) || b == b'/')
        && !path.split('/').any(is_dot_segment);
    // http and https escape `'` in a query.
    let plain_query = query.is_none_or(|q| {
        q.bytes()
            .all(|b| (is_plain(b) && b != b'\'') || b == b'/' || b == b'?')
    });
    (plain_path && plain_query).then_some(url)
}

/// Bytes the URL standard leaves as they are in a path and a query: RFC 3986's unreserved
/// characters, sub-delimiters, `:`, `@` and `%` (an escape is kept as written).
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b)
}

/// `.` and `..`, also written with `%2e`: the parser removes them.
fn is_dot_segment(segment: &str) -> bool {
    let dot = |s: &[u8]| s == b"." || s.eq_ignore_ascii_case(b"%2e");
    let s = segment.as_bytes();
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
/// quad without leading zeros.
fn is_normalized_host(host: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with("xn--")
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !host.split('.').all(label_ok) {
        return false;
    }
    let last = host.rsplit('.').next().unwrap_or(host);
    let numeric = |l: &str| l.bytes().all(|b| b.is_ascii_digit()) || l.starts_with("0x");
    if !numeric(last) {
        return true;
    }
    let quad = host.split('.').filter(|l| {
        (*l == "0" || !l.starts_with('0'))
            && l.bytes().all(|b| b.is_ascii_digit())
            && l.parse::<u8>().is_ok()
    });
    quad.count() == 4 && host.split('.').count() == 4
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
}
