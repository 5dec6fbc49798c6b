//! Content checks: what a page's body must and must not contain, and what its headers must say,
//! decided while the body streams through the fetcher's fixed read buffer.
//!
//! [`Checks`] is what a caller asks for ([`FetchOptions::checks`](super::FetchOptions::checks)).
//! [`BodyChecks`] is its state during one body: fed each read as it arrives, it keeps only a
//! window of the last few bytes, so a body of any size costs the same few KiB, and nothing of
//! the body is kept once it is decided.
//!
//! What is found across reads, and what the scan limit means, is in [`Checks`]' docs.

use std::fmt;
use std::str::FromStr;

use memchr::memmem::Finder;
use regex_automata::Input;
use regex_automata::meta::Regex;
use ureq::http::{HeaderMap, HeaderName};

use crate::repr::repr;

/// How much of a body the checks look at unless told otherwise: the first 4 MiB.
pub const DEFAULT_SCAN_LIMIT: u64 = 4 * 1024 * 1024;

/// The longest match of a [regular expression](Pattern::regex) that is always found, wherever
/// the reads split the body: 4096 bytes (see [`Checks`]).
pub const REGEX_OVERLAP: usize = 4096;

/// Bytes kept on either side of a regex search for its look-around (`\b`, `^`, `$`): one
/// UTF-8 character at most.
const CONTEXT: usize = 4;

/// A text or a regular expression that a body or a header is searched for.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::Pattern;
///
/// let text = Pattern::text("Welcome");
/// assert_eq!(text.as_str(), "Welcome");
/// let regex = Pattern::regex(r"(?i)welcome\s+back")?;
/// assert!(regex.is_regex());
/// assert!(Pattern::regex("(unclosed").is_err());
/// # Ok::<(), fetchall::fetch::PatternError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// Boxed: a finder is 288 bytes, a regex (an `Arc` inside) 16.
    Text(Box<Finder<'static>>),
    Regex(Regex),
}

impl Pattern {
    /// A text, matched byte for byte: case matters, and nothing in it is special. An empty
    /// text is in every body.
    pub fn text(text: impl Into<String>) -> Pattern {
        let source = text.into();
        let finder = Box::new(Finder::new(source.as_bytes()).into_owned());
        Pattern {
            source,
            matcher: Matcher::Text(finder),
        }
    }

    /// A regular expression in the syntax of the `regex` crate (`(?i)` for case-insensitive,
    /// `(?m)` for `^` and `$` at line ends). It matches anywhere in the body unless anchored.
    ///
    /// # Errors
    ///
    /// When `pattern` is not a valid expression, or compiles to more than the regex engine's
    /// size limit.
    pub fn regex(pattern: &str) -> Result<Pattern, PatternError> {
        let regex = Regex::new(pattern).map_err(|e| {
            // The syntax error says where and what; the build error only "error parsing pattern 0".
            PatternError(
                e.syntax_error()
                    .map_or_else(|| e.to_string(), |s| s.to_string()),
            )
        })?;
        Ok(Pattern {
            source: pattern.to_owned(),
            matcher: Matcher::Regex(regex),
        })
    }

    /// The text or the expression as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether this is a regular expression rather than a text.
    pub fn is_regex(&self) -> bool {
        matches!(self.matcher, Matcher::Regex(_))
    }

    /// How many bytes before a read a match that ends in it can start: `len - 1` for a text.
    fn overlap(&self) -> usize {
        match &self.matcher {
            Matcher::Text(finder) => finder.needle().len().saturating_sub(1),
            Matcher::Regex(_) => REGEX_OVERLAP + 2 * CONTEXT,
        }
    }

    /// Whether `haystack` (a whole header value) contains a match.
    fn is_in(&self, haystack: &[u8]) -> bool {
        match &self.matcher {
            Matcher::Text(finder) => finder.find(haystack).is_some(),
            Matcher::Regex(regex) => regex.is_match(haystack),
        }
    }
}

/// Why a text is not a [`Pattern`] or a [`HeaderCheck`]: the regex engine's message, or what
/// the `NAME: REGEX` form lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

/// A header that the final response must have, with a value that contains a match of a
/// pattern: `Content-Type: json`. With several values of the header, one matching is enough.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::HeaderCheck;
///
/// let check: HeaderCheck = "Content-Type: ^application/json".parse()?;
/// assert_eq!(check.name(), "content-type");
/// assert_eq!(check.pattern().as_str(), "^application/json");
/// assert!("no colon".parse::<HeaderCheck>().is_err());
/// # Ok::<(), fetchall::fetch::PatternError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HeaderCheck {
    name: HeaderName,
    pattern: Pattern,
}

impl HeaderCheck {
    /// The header `name` must have a value in which `pattern` is found.
    pub fn new(name: HeaderName, pattern: Pattern) -> HeaderCheck {
        HeaderCheck { name, pattern }
    }

    /// The header's name, lower case.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// What its value must contain.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), CheckFailure> {
        let mut values = headers.get_all(&self.name).iter().peekable();
        if values.peek().is_none() {
            return Err(CheckFailure::HeaderMissing {
                name: self.name.to_string(),
                pattern: self.pattern.source.clone(),
            });
        }
        let mut seen = Vec::new();
        for value in values {
            if self.pattern.is_in(value.as_bytes()) {
                return Ok(());
            }
            seen.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        Err(CheckFailure::HeaderMismatch {
            name: self.name.to_string(),
            values: seen,
            pattern: self.pattern.source.clone(),
        })
    }
}

/// `NAME: REGEX`, as `--expect-header` takes it: whitespace around the expression is dropped.
impl FromStr for HeaderCheck {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, pattern) = s
            .split_once(':')
            .ok_or_else(|| PatternError(format!("{} is not 'NAME: REGEX'", repr(s))))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| PatternError(format!("{} is not a header name", repr(name))))?;
        Ok(HeaderCheck::new(name, Pattern::regex(pattern.trim())?))
    }
}

/// What a page must say, checked on each fetched page after its status is accepted: texts and
/// patterns its body must contain ([`expect`](Checks::expect)) or must not
/// ([`reject`](Checks::reject)), headers it must have ([`expect_header`](Checks::expect_header)),
/// and how much of the body is looked at ([`set_scan_limit`](Checks::set_scan_limit)). A page
/// that fails one fails with [`FetchError::Check`](super::FetchError::Check).
///
/// # Matches across reads
///
/// A read can end anywhere, in the middle of the very text a check looks for.
/// - A [text](Pattern::text) is found wherever the reads split it: the window keeps the last
///   `len - 1` bytes of the body, the most of it that a match still to come can start in.
/// - A [regular expression](Pattern::regex) is searched in the window, which keeps the last
///   [`REGEX_OVERLAP`] bytes plus a few bytes of context: **a match of at most
///   [`REGEX_OVERLAP`] bytes is always found**, however the reads split the body. A longer
///   match is found only when it happens to lie within one read and the overlap before it (and
///   not in the last few bytes of the read, which are searched with the next one). The
///   window's edges are not mistaken for the body's: `\A`, `^` and `$` (without `(?m)`) mean
///   the start and the end of the body, and `\b` sees the bytes on both sides of a read's edge.
///
/// # The scan limit
///
/// Only the first [`Checks::scan_limit`] bytes are looked at (default [`DEFAULT_SCAN_LIMIT`]);
/// the rest of the body is still read and counted. An expected text not found in a body longer
/// than that fails with the limit in its message (`expected text not found in the first 4 MiB:
/// 'Welcome'`), since it may come later. A rejected text beyond the limit is not seen, and the
/// check passes. Scanning also stops early once every check is decided: a rejected text found,
/// or every expected one found and nothing to reject.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::{Checks, FetchOptions, Pattern};
///
/// let mut options = FetchOptions::default();
/// options.checks
///     .expect(Pattern::text("Welcome"))
///     .reject(Pattern::regex("(?i)maintenance|Traceback")?)
///     .expect_header("content-type: html".parse()?)
///     .set_scan_limit(1 << 20);
/// assert!(!options.checks.is_empty());
/// assert!(Checks::default().is_empty());
/// # Ok::<(), fetchall::fetch::PatternError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Checks {
    expect: Vec<Pattern>,
    reject: Vec<Pattern>,
    headers: Vec<HeaderCheck>,
    scan_limit: u64,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            expect: Vec::new(),
            reject: Vec::new(),
            headers: Vec::new(),
            scan_limit: DEFAULT_SCAN_LIMIT,
        }
    }
}

impl Checks {
    /// The body must contain a match of `pattern` within the scan limit.
    pub fn expect(&mut self, pattern: Pattern) -> &mut Checks {
        self.expect.push(pattern);
        self
    }

    /// The body must not contain a match of `pattern` within the scan limit.
    pub fn reject(&mut self, pattern: Pattern) -> &mut Checks {
        self.reject.push(pattern);
        self
    }

    /// The final response must have the header, with a value that matches.
    pub fn expect_header(&mut self, check: HeaderCheck) -> &mut Checks {
        self.headers.push(check);
        self
    }

    /// Look at the first `bytes` bytes of a body only. Default [`DEFAULT_SCAN_LIMIT`].
    pub fn set_scan_limit(&mut self, bytes: u64) -> &mut Checks {
        self.scan_limit = bytes;
        self
    }

    /// How many bytes of a body are looked at.
    pub fn scan_limit(&self) -> u64 {
        self.scan_limit
    }

    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.expect.is_empty() && self.reject.is_empty() && self.headers.is_empty()
    }

    /// The header checks, in the order they were added: the first that fails is the answer.
    pub(crate) fn check_headers(&self, headers: &HeaderMap) -> Result<(), CheckFailure> {
        self.headers
            .iter()
            .try_for_each(|check| check.check(headers))
    }

    /// The state for checking one body, or `None` when there is no body check.
    pub(crate) fn body(&self) -> Option<BodyChecks<'_>> {
        if self.expect.is_empty() && self.reject.is_empty() {
            return None;
        }
        let items: Vec<Item<'_>> = (self.expect.iter().map(|p| (p, true)))
            .chain(self.reject.iter().map(|p| (p, false)))
            .map(|(pattern, expected)| Item {
                pattern,
                expected,
                found: false,
            })
            .collect();
        let keep = items.iter().map(|i| i.pattern.overlap()).max().unwrap_or(0);
        Some(BodyChecks {
            items,
            limit: self.scan_limit,
            window: Vec::new(),
            window_start: 0,
            received: 0,
            regex_done: 0,
            keep,
            over_limit: false,
            stopped: false,
        })
    }
}

/// Which check a page failed. `Display` is the exception line's message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckFailure {
    /// An expected text or pattern is not in the body: `expected text not found: 'Welcome'`,
    /// or for a body longer than the scan limit
    /// `expected pattern not found in the first 4 MiB: 'Welc.me'`.
    NotFound {
        /// The text or expression as given.
        pattern: String,
        /// Whether it is a regular expression.
        regex: bool,
        /// The scan limit, when the body went on past it (the text may be further on).
        limit: Option<u64>,
    },
    /// A rejected text or pattern is in the body: `rejected text found: 'maintenance'`.
    Found {
        /// The text or expression as given.
        pattern: String,
        /// Whether it is a regular expression.
        regex: bool,
    },
    /// The header has no value that matches:
    /// `header content-type: 'text/html' does not match 'json'`.
    HeaderMismatch {
        /// The header's name, lower case.
        name: String,
        /// Its values (invalid UTF-8 shown as U+FFFD).
        values: Vec<String>,
        /// The expression as given.
        pattern: String,
    },
    /// The header is not in the response: `header content-type missing (expected to match 'json')`.
    HeaderMissing {
        /// The header's name, lower case.
        name: String,
        /// The expression as given.
        pattern: String,
    },
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = |regex: bool| if regex { "pattern" } else { "text" };
        match self {
            CheckFailure::NotFound {
                pattern,
                regex,
                limit: None,
            } => write!(f, "expected {} not found: {}", noun(*regex), repr(pattern)),
            CheckFailure::NotFound {
                pattern,
                regex,
                limit: Some(limit),
            } => write!(
                f,
                "expected {} not found in the first {}: {}",
                noun(*regex),
                size(*limit),
                repr(pattern)
            ),
            CheckFailure::Found { pattern, regex } => {
                write!(f, "rejected {} found: {}", noun(*regex), repr(pattern))
            }
            CheckFailure::HeaderMismatch {
                name,
                values,
                pattern,
            } => {
                write!(f, "header {name}: ")?;
                for (i, value) in values.iter().enumerate() {
                    let comma = if i > 0 { ", " } else { "" };
                    write!(f, "{comma}{}", repr(value))?;
                }
                write!(f, " does not match {}", repr(pattern))
            }
            CheckFailure::HeaderMissing { name, pattern } => {
                write!(
                    f,
                    "header {name} missing (expected to match {})",
                    repr(pattern)
                )
            }
        }
    }
}

/// `4 MiB`, `64 KiB` or `1000 bytes`: a byte count as a person would write it.
fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    match bytes {
        0 => "0 bytes".to_owned(),
        b if b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b % KIB == 0 => format!("{} KiB", b / KIB),
        1 => "1 byte".to_owned(),
        b => format!("{b} bytes"),
    }
}

/// One body check and whether its pattern has been seen.
#[derive(Debug)]
struct Item<'c> {
    pattern: &'c Pattern,
    /// `true` for [`Checks::expect`], `false` for [`Checks::reject`].
    expected: bool,
    found: bool,
}

/// The body checks of [`Checks`] during one body: [`feed`](BodyChecks::feed) it every read,
/// [`finish`](BodyChecks::finish) it at the end of the body, then ask for the
/// [`verdict`](BodyChecks::verdict).
///
/// Memory: the window holds the bytes of the current read plus the overlap (the longest
/// text's length - 1, or [`REGEX_OVERLAP`] and a few bytes with a regex), whatever the size of
/// the body.
#[derive(Debug)]
pub(crate) struct BodyChecks<'c> {
    items: Vec<Item<'c>>,
    /// [`Checks::scan_limit`].
    limit: u64,
    /// The last bytes received, up to `limit + CONTEXT` of the body (the bytes past the limit
    /// are only look-ahead for a regex).
    window: Vec<u8>,
    /// The offset in the body of `window[0]`.
    window_start: u64,
    /// Body bytes fed so far, all of them.
    received: u64,
    /// The regex searches have covered the body up to this offset.
    regex_done: u64,
    /// How many bytes of the window a search still needs after a read: the largest overlap.
    keep: usize,
    /// The body went on past the limit.
    over_limit: bool,
    /// Nothing more to look at: every check decided, or the limit reached.
    stopped: bool,
}

impl BodyChecks<'_> {
    /// Looks at the next `chunk` of the body.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let before = self.received;
        self.received = before.saturating_add(chunk.len() as u64);
        if self.received > self.limit {
            self.over_limit = true;
        }
        if self.stopped {
            return;
        }
        // Past the limit, a few bytes more are kept as look-ahead for the regexes.
        let end_wanted = self.limit.saturating_add(CONTEXT as u64);
        let room = end_wanted.saturating_sub(before);
        let take = usize::try_from(room).map_or(chunk.len(), |room| room.min(chunk.len()));
        self.window.extend_from_slice(&chunk[..take]);
        let end = before + take as u64;
        let at_limit = end >= end_wanted;
        self.search(before, end, at_limit);
        if at_limit {
            self.stop();
        } else {
            self.trim();
        }
    }

    /// The body has ended: decides what the end of the body decides (`$`, a match in the last
    /// bytes).
    pub(crate) fn finish(&mut self) {
        if !self.stopped {
            let end = self.window_start + self.window.len() as u64;
            self.search(end, end, true);
            self.stop();
        }
    }

    /// The first failed check: a rejected pattern found, else an expected one not found.
    pub(crate) fn verdict(&self) -> Result<(), CheckFailure> {
        let rejected = self.items.iter().find(|i| !i.expected && i.found);
        if let Some(item) = rejected {
            return Err(CheckFailure::Found {
                pattern: item.pattern.source.clone(),
                regex: item.pattern.is_regex(),
            });
        }
        let missing = self.items.iter().find(|i| i.expected && !i.found);
        if let Some(item) = missing {
            return Err(CheckFailure::NotFound {
                pattern: item.pattern.source.clone(),
                regex: item.pattern.is_regex(),
                limit: self.over_limit.then_some(self.limit),
            });
        }
        Ok(())
    }

    /// Searches what is new in the window: `before..end` are the offsets of the bytes just
    /// added. With `last`, nothing follows them that is looked at.
    fn search(&mut self, before: u64, end: u64, last: bool) {
        let start = self.window_start;
        let index = |offset: u64| usize::try_from(offset - start).unwrap_or(usize::MAX);
        let scan_end = end.min(self.limit);
        // A regex search ends CONTEXT bytes short of the window's end, so that its look-ahead
        // sees real bytes; the next search takes those up. At the end it goes to the end.
        let regex_end = if last {
            scan_end
        } else {
            end.saturating_sub(CONTEXT as u64).min(self.limit)
        };
        // It starts REGEX_OVERLAP bytes before where the last one ended, and never closer than
        // CONTEXT bytes to the window's start, unless that is the start of the body.
        let floor = if start > 0 { start + CONTEXT as u64 } else { 0 };
        let regex_start = self
            .regex_done
            .saturating_sub(REGEX_OVERLAP as u64)
            .max(floor);
        let window = &self.window;
        for item in self.items.iter_mut().filter(|i| !i.found) {
            item.found = match &item.pattern.matcher {
                Matcher::Text(finder) => {
                    let len = finder.needle().len() as u64;
                    let from = before.saturating_sub(len.saturating_sub(1)).max(start);
                    scan_end >= from + len
                        && finder.find(&window[index(from)..index(scan_end)]).is_some()
                }
                Matcher::Regex(regex) => {
                    (regex_start < regex_end || last)
                        && regex_start <= regex_end
                        && regex.is_match(
                            Input::new(window.as_slice())
                                .range(index(regex_start)..index(regex_end)),
                        )
                }
            };
        }
        self.regex_done = self.regex_done.max(regex_end);
        let rejected = self.items.iter().any(|i| !i.expected && i.found);
        let settled = self.items.iter().all(|i| i.expected && i.found);
        if rejected || settled {
            self.stop();
        }
    }

    /// Drops the bytes no search needs any more.
    fn trim(&mut self) {
        if self.window.len() > self.keep {
            let drop = self.window.len() - self.keep;
            self.window.drain(..drop);
            self.window_start += drop as u64;
        }
    }

    fn stop(&mut self) {
        self.stopped = true;
        self.window = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    fn checks(expect: &[Pattern], reject: &[Pattern], limit: u64) -> Checks {
        let mut checks = Checks::default();
        for p in expect {
            checks.expect(p.clone());
        }
        for p in reject {
            checks.reject(p.clone());
        }
        checks.set_scan_limit(limit);
        checks
    }

    /// The verdict on `body` fed in the pieces that `cuts` (offsets, ascending) make.
    fn run(checks: &Checks, body: &[u8], cuts: &[usize]) -> Result<(), CheckFailure> {
        let mut state = checks.body().expect("body checks");
        let mut at = 0;
        for &cut in cuts.iter().chain([&body.len()]) {
            state.feed(&body[at..cut]);
            at = cut;
        }
        state.finish();
        state.verdict()
    }

    fn text(t: &str) -> Pattern {
        Pattern::text(t)
    }

    fn regex(r: &str) -> Pattern {
        Pattern::regex(r).expect("valid regex")
    }

    #[test]
    fn a_text_is_found_at_every_split_point() {
        let body = b"<p>xx Welcome yy</p>";
        let expect = checks(&[text("Welcome")], &[], DEFAULT_SCAN_LIMIT);
        let reject = checks(&[], &[text("Welcome")], DEFAULT_SCAN_LIMIT);
        for i in 0..=body.len() {
            for j in i..=body.len() {
                assert_eq!(run(&expect, body, &[i, j]), Ok(()), "cuts {i} {j}");
                assert!(run(&reject, body, &[i, j]).is_err(), "cuts {i} {j}");
            }
        }
        // One byte at a time: every read shorter than the text.
        let bytes: Vec<usize> = (1..body.len()).collect();
        assert_eq!(run(&expect, body, &bytes), Ok(()));
    }

    #[test]
    fn a_missing_text_fails_with_its_name() {
        let c = checks(&[text("Welcome")], &[], DEFAULT_SCAN_LIMIT);
        let e = run(&c, b"Welcom e", &[6]).expect_err("not there");
        assert_eq!(e.to_string(), "expected text not found: 'Welcome'");
        let c = checks(&[], &[text("maintenance")], DEFAULT_SCAN_LIMIT);
        assert_eq!(run(&c, b"all fine", &[3]), Ok(()));
        let e = run(&c, b"down for maintenance", &[12]).expect_err("there");
        assert_eq!(e.to_string(), "rejected text found: 'maintenance'");
    }

    #[test]
    fn a_reject_is_reported_before_a_missing_expect() {
        let c = checks(&[text("Welcome")], &[text("Traceback")], DEFAULT_SCAN_LIMIT);
        let e = run(&c, b"Traceback (most recent call last)", &[]).expect_err("both fail");
        assert_eq!(e.to_string(), "rejected text found: 'Traceback'");
    }

    #[test]
    fn texts_that_overlap_themselves_are_found() {
        let c = checks(&[text("aab")], &[], DEFAULT_SCAN_LIMIT);
        for cut in 0..=5 {
            assert_eq!(run(&c, b"aaaab", &[cut]), Ok(()), "cut {cut}");
        }
    }

    #[test]
    fn an_empty_body_has_only_the_empty_text() {
        assert_eq!(run(&checks(&[text("")], &[], 10), b"", &[]), Ok(()));
        assert_eq!(run(&checks(&[regex("^$")], &[], 10), b"", &[]), Ok(()));
        assert!(run(&checks(&[text("x")], &[], 10), b"", &[]).is_err());
    }

    #[test]
    fn the_scan_limit_bounds_the_search_and_says_so() {
        let mut body = vec![b'x'; 100];
        body.extend_from_slice(b"Welcome");
        let c = checks(&[text("Welcome")], &[], 100);
        let e = run(&c, &body, &[50]).expect_err("past the limit");
        assert_eq!(
            e.to_string(),
            "expected text not found in the first 100 bytes: 'Welcome'"
        );
        // Straddling the limit is past it too.
        let c = checks(&[text("Welcome")], &[], 103);
        assert!(run(&c, &body, &[]).is_err());
        // Ending exactly at the limit is within it.
        let c = checks(&[text("Welcome")], &[], 107);
        assert_eq!(run(&c, &body, &[101]), Ok(()));
        // A rejected text past the limit is not seen.
        let c = checks(&[], &[text("Welcome")], 100);
        assert_eq!(run(&c, &body, &[]), Ok(()));
        // A body that ends within the limit says nothing of it.
        let c = checks(&[text("Goodbye")], &[], 4 * 1024 * 1024);
        let e = run(&c, &body, &[]).expect_err("absent");
        assert_eq!(e.to_string(), "expected text not found: 'Goodbye'");
    }

    #[test]
    fn reads_past_a_small_limit_are_only_counted() {
        let body = [b'x'; 40];
        for limit in [0, 1, 3, 10, 39, 40] {
            for cuts in [&[][..], &[12], &[1, 2, 3, 12, 13], &[5, 30]] {
                let literal = checks(&[text("y")], &[], limit);
                let pattern = checks(&[regex(r"y|\bz")], &[text("zz")], limit);
                for c in [literal, pattern] {
                    let e = run(&c, &body, cuts).expect_err("no y");
                    let within = limit >= 40;
                    assert_eq!(
                        e.to_string().contains("in the first"),
                        !within,
                        "limit {limit}, cuts {cuts:?}: {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(size(DEFAULT_SCAN_LIMIT), "4 MiB");
        assert_eq!(size(64 * 1024), "64 KiB");
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(1000), "1000 bytes");
        assert_eq!(size(1), "1 byte");
        assert_eq!(size(0), "0 bytes");
    }

    #[test]
    fn a_regex_match_as_long_as_the_overlap_is_found_at_every_split_point() {
        // A match of exactly REGEX_OVERLAP bytes, between filler, split in three reads.
        let inner = "b".repeat(REGEX_OVERLAP - 2);
        let body = format!("{}a{inner}c{}", "x".repeat(5000), "y".repeat(5000));
        let c = checks(&[regex("ab+c")], &[], DEFAULT_SCAN_LIMIT);
        let start = 5000;
        let end = start + REGEX_OVERLAP;
        let points: Vec<usize> = (start.saturating_sub(10)..start + 10)
            .chain(end - 10..end + 10)
            .chain([start + REGEX_OVERLAP / 2])
            .collect();
        for &i in &points {
            for &j in &points {
                if i <= j {
                    assert_eq!(run(&c, body.as_bytes(), &[i, j]), Ok(()), "cuts {i} {j}");
                }
            }
        }
        // Every read a single byte.
        let small = format!("xxa{}cyy", "b".repeat(100));
        let bytes: Vec<usize> = (1..small.len()).collect();
        assert_eq!(run(&c, small.as_bytes(), &bytes), Ok(()));
    }

    #[test]
    fn a_regex_match_longer_than_the_overlap_may_be_missed_across_reads() {
        let body = format!("a{}c and more", "b".repeat(2 * REGEX_OVERLAP));
        let c = checks(&[regex("ab+c")], &[], DEFAULT_SCAN_LIMIT);
        // Within one read it is found...
        assert_eq!(run(&c, body.as_bytes(), &[]), Ok(()));
        // ...and not when reads cut it in pieces each shorter than it.
        let cuts: Vec<usize> = (1..body.len()).step_by(1024).collect();
        assert!(run(&c, body.as_bytes(), &cuts).is_err());
    }

    #[test]
    fn anchors_mean_the_body_not_the_read() {
        let body = b"<html>hello world</html>";
        let at = |r: &str| checks(&[regex(r)], &[], DEFAULT_SCAN_LIMIT);
        for cut in 0..=body.len() {
            let cuts = [cut];
            assert_eq!(run(&at(r"\A<html>"), body, &cuts), Ok(()), "{cut}");
            assert_eq!(run(&at(r"</html>$"), body, &cuts), Ok(()), "{cut}");
            // `world` begins no body and `hello` ends none, wherever a read ends.
            assert!(run(&at(r"^world"), body, &cuts).is_err(), "{cut}");
            assert!(run(&at(r"hello$"), body, &cuts).is_err(), "{cut}");
            // `\b` sees the bytes on the far side of a read's edge.
            assert!(run(&at(r"\bworl\b"), body, &cuts).is_err(), "{cut}");
            assert_eq!(run(&at(r"\bworld\b"), body, &cuts), Ok(()), "{cut}");
        }
        // The same far into a body, once the window has moved on from its start.
        let long = format!("{}hello world{}", "x ".repeat(5000), " x".repeat(5000));
        let hello = 10_000;
        for cut in hello - 6..hello + 16 {
            let cuts = [6000, cut];
            let long = long.as_bytes();
            assert!(run(&at(r"^world"), long, &cuts).is_err(), "{cut}");
            assert!(run(&at(r"hello$"), long, &cuts).is_err(), "{cut}");
            assert!(run(&at(r"\bworl\b"), long, &cuts).is_err(), "{cut}");
            assert_eq!(run(&at(r"\bhello world\b"), long, &cuts), Ok(()), "{cut}");
            assert_eq!(run(&at(r"(?m)x$"), long, &cuts), Ok(()), "{cut}");
        }
    }

    #[test]
    fn a_regex_failure_says_pattern() {
        let c = checks(&[regex("Welc.me")], &[], 1024);
        let body = vec![b'x'; 2000];
        let e = run(&c, &body, &[]).expect_err("absent");
        assert_eq!(
            e.to_string(),
            "expected pattern not found in the first 1 KiB: 'Welc.me'"
        );
        let c = checks(&[], &[regex("(?i)traceback")], 1024);
        let e = run(&c, b"TRACEBACK", &[4]).expect_err("present");
        assert_eq!(e.to_string(), "rejected pattern found: '(?i)traceback'");
    }

    #[test]
    fn scanning_stops_once_decided_and_keeps_counting() {
        let c = checks(&[text("ok")], &[], DEFAULT_SCAN_LIMIT);
        let mut state = c.body().expect("body checks");
        state.feed(b"ok");
        assert!(state.stopped && state.window.capacity() == 0);
        state.feed(&[b'x'; 1000]);
        assert_eq!(state.received, 1002);
        state.finish();
        assert_eq!(state.verdict(), Ok(()));
        // With something to reject, it goes on looking.
        let c = checks(&[text("ok")], &[text("bad")], DEFAULT_SCAN_LIMIT);
        let mut state = c.body().expect("body checks");
        state.feed(b"ok");
        assert!(!state.stopped);
    }

    #[test]
    fn the_window_stays_small_whatever_the_body() {
        let c = checks(&[text("never")], &[regex("nor this")], u64::MAX);
        let mut state = c.body().expect("body checks");
        let chunk = [b'x'; 64 * 1024];
        for _ in 0..64 {
            state.feed(&chunk);
            assert!(state.window.len() <= REGEX_OVERLAP + 2 * CONTEXT);
        }
        state.finish();
        assert!(state.verdict().is_err());
    }

    #[test]
    fn header_checks_match_any_value_and_say_what_they_saw() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/html"));
        headers.append("x-tag", HeaderValue::from_static("a"));
        headers.append("x-tag", HeaderValue::from_static("b"));
        let check = |spec: &str| {
            let mut checks = Checks::default();
            checks.expect_header(spec.parse().expect("valid"));
            checks.check_headers(&headers).map_err(|e| e.to_string())
        };
        assert_eq!(check("Content-Type: html"), Ok(()));
        assert_eq!(check("content-type:^text/"), Ok(()));
        assert_eq!(check("X-Tag: ^b$"), Ok(()));
        assert_eq!(
            check("Content-Type: json"),
            Err("header content-type: 'text/html' does not match 'json'".into())
        );
        assert_eq!(
            check("X-Tag: c"),
            Err("header x-tag: 'a', 'b' does not match 'c'".into())
        );
        assert_eq!(
            check("Location: ."),
            Err("header location missing (expected to match '.')".into())
        );
    }

    #[test]
    fn bad_header_checks_say_why() {
        let err = |s: &str| s.parse::<HeaderCheck>().expect_err(s).to_string();
        assert_eq!(err("json"), "'json' is not 'NAME: REGEX'");
        assert_eq!(err("bad name: x"), "'bad name' is not a header name");
        assert!(err("a: (").contains("unclosed"), "{}", err("a: ("));
    }
}
