//! Which URLs are fetched: `http` and `https` ones with a host, parsed once into the [`Uri`]
//! ureq sends.

use ureq::http::Uri;

use super::FetchError;

/// Parses a URL as [`Fetcher::load_url`](super::Fetcher::load_url) accepts it: `http` or `https`
/// with a host. The fragment is dropped, as a browser and Python's `urllib` do: it is never sent.
pub(super) fn parse_url(input: &str) -> Result<Uri, FetchError> {
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
}
