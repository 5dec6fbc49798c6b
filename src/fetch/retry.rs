//! How long to wait before trying a URL again: the backoff with its jitter, and what a
//! `Retry-After` header asks for.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use ureq::http::HeaderMap;
use ureq::http::header::RETRY_AFTER;

#[cfg(doc)]
use super::{FetchOptions, Fetcher};

/// The backoff before the first retry is between half this and this: 100 ms. It doubles for
/// each further retry, up to [`RETRY_MAX_DELAY`].
pub const RETRY_BASE_DELAY: Duration = Duration::from_millis(100);

/// The longest backoff between two attempts: 10 seconds. A `Retry-After` header may ask for more.
pub const RETRY_MAX_DELAY: Duration = Duration::from_secs(10);

/// Random numbers for backoff jitter, without a random-number crate: a splitmix64 sequence
/// whose seed comes from std's `RandomState` (random keys from the OS, per process, varied per
/// instance). One atomic add per number, so the clones of a [`Fetcher`] share it without a lock.
#[derive(Debug)]
pub(super) struct Jitter(AtomicU64);

impl Jitter {
    pub(super) fn new() -> Jitter {
        Jitter(AtomicU64::new(RandomState::new().hash_one(0u64)))
    }

    fn next(&self) -> u64 {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The wait before retry number `retry` (from 1): see [`FetchOptions::retries`].
    pub(super) fn backoff(&self, retry: u32) -> Duration {
        backoff(retry, self.next())
    }
}

/// Equal jitter: half of the capped exponential backoff for sure, and a `random` share of the
/// other half.
fn backoff(retry: u32, random: u64) -> Duration {
    let doublings = retry.saturating_sub(1).min(30);
    let ceiling = RETRY_BASE_DELAY
        .saturating_mul(1 << doublings)
        .min(RETRY_MAX_DELAY);
    let half = ceiling / 2;
    // At most 5 s in nanoseconds: no overflow.
    let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX - 1);
    half + Duration::from_nanos(random % (spread + 1))
}

/// The wait a `Retry-After` header asks for: delay-seconds, or an HTTP date counted from `now`
/// (a date already past asks for no wait). The date may take any of the three forms RFC 9110
/// asks recipients to accept: `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate), `Sunday,
/// 06-Nov-94 08:49:37 GMT` (RFC 850) and `Sun Nov  6 08:49:37 1994` (asctime).
pub(super) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is longer than any deadline.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;
    use ureq::http::HeaderValue;

    fn seconds(n: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(n)
    }

    #[test]
    fn http_dates_take_all_three_forms() {
        let now = seconds(784_111_777 - 30);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                retry_after_header(form, now),
                Some(Duration::from_secs(30)),
                "{form}"
            );
        }
        for (text, unix) in [
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
            ("Tue, 29 Feb 2000 12:00:00 GMT", 951_825_600),
            ("Mon, 01 Mar 2100 00:00:00 GMT", 4_107_542_400),
        ] {
            let at = retry_after_header(text, seconds(0)).map(|d| seconds(d.as_secs()));
            assert_eq!(at, Some(seconds(unix)), "{text}");
        }
        for wrong in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Mon, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(retry_after_header(wrong, now), None, "{wrong}");
        }
    }

    fn retry_after_header(value: &str, now: SystemTime) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("value"));
        retry_after(&headers, now)
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = seconds(784_111_777);
        let secs = Duration::from_secs;
        assert_eq!(retry_after_header("120", now), Some(secs(120)));
        assert_eq!(retry_after_header(" 0 ", now), Some(secs(0)));
        assert_eq!(
            retry_after_header("99999999999999999999999", now),
            Some(secs(u64::MAX))
        );
        assert_eq!(
            retry_after_header("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(secs(30))
        );
        // A date already past: retry now.
        assert_eq!(
            retry_after_header("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(secs(0))
        );
        for absent in ["-5", "1.5", "soon", ""] {
            assert_eq!(retry_after_header(absent, now), None, "{absent:?}");
        }
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_is_equal_jitter_doubling_to_the_cap() {
        let ms = Duration::from_millis;
        for (retry, low, high) in [
            (1, ms(50), ms(100)),
            (2, ms(100), ms(200)),
            (3, ms(200), ms(400)),
            (8, ms(5000), ms(10_000)),
            (u32::MAX, ms(5000), ms(10_000)),
        ] {
            assert_eq!(backoff(retry, 0), low, "retry {retry}");
            let top = u64::try_from((high - low).as_nanos()).expect("small");
            assert_eq!(backoff(retry, top), high, "retry {retry}");
            assert!((low..=high).contains(&backoff(retry, u64::MAX)));
        }
        let jitter = Jitter::new();
        let draws: Vec<u64> = (0..4).map(|_| jitter.next()).collect();
        assert!(draws.windows(2).all(|w| w[0] != w[1]), "{draws:?}");
    }
}
