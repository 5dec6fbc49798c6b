//! URLs with their password hidden, for every place fetchall repeats a URL other than the
//! result line itself: logs and error messages.

use std::borrow::Cow;

/// `url` with the password of its user information replaced by `***`:
/// `http://user:***@host/`. Anything else, an invalid URL included, is returned as it is.
///
/// A URL's credentials are sent (as HTTP Basic authentication, as curl sends them), and the URL
/// is printed as given on its result line and in the JSON `url` field; everywhere else, in the
/// `-v`/`-vv` logs and in error messages, it goes through this.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::redact_password;
///
/// assert_eq!(redact_password("https://me:s3cret@example.com/x?y"), "https://me:***@example.com/x?y");
/// assert_eq!(redact_password("http://me@example.com/"), "http://me@example.com/");
/// assert_eq!(redact_password("http://example.com/a:b@c"), "http://example.com/a:b@c");
/// assert_eq!(redact_password("not a url"), "not a url");
/// ```
pub fn redact_password(url: &str) -> Cow<'_, str> {
    // Byte searches: `str::find("://")` sets up a substring searcher per call, which cost
    // more than the rest of this on every URL fetched.
    let bytes = url.as_bytes();
    let Some(scheme_end) = (0..bytes.len())
        .filter(|&i| bytes[i] == b':')
        .find(|&i| bytes[i..].starts_with(b"://"))
    else {
        return Cow::Borrowed(url);
    };
    let authority_start = scheme_end + 3;
    let rest = &bytes[authority_start..];
    let authority_len = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    // The last `@`: a password may hold one unescaped, a host never does.
    let Some(at) = authority.iter().rposition(|&b| b == b'@') else {
        return Cow::Borrowed(url);
    };
    let Some(colon) = authority[..at].iter().position(|&b| b == b':') else {
        return Cow::Borrowed(url);
    };
    let password_start = authority_start + colon + 1;
    let password_end = authority_start + at;
    Cow::Owned(format!(
        "{}***{}",
        &url[..password_start],
        &url[password_end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_is_hidden() {
        for (url, shown) in [
            ("http://u:p@h/", "http://u:***@h/"),
            ("http://u:p@ss@h:8080/x", "http://u:***@h:8080/x"),
            ("http://u:@h/", "http://u:***@h/"),
            ("http://:p@h", "http://:***@h"),
            ("ftp://u:p@h#frag", "ftp://u:***@h#frag"),
            ("http://h/?q=a:b@c", "http://h/?q=a:b@c"),
            ("http://u@h/", "http://u@h/"),
            ("u:p@h", "u:p@h"),
            ("line 3: http://u:p@h/", "line 3: http://u:***@h/"),
            ("", ""),
        ] {
            assert_eq!(redact_password(url), shown, "{url}");
        }
    }
}
