//! Request rates (`--rate 10/s`, `--per-host-rate 2/s`): the [`Rate`] a user gives, and the
//! [`Bucket`] the dispatcher asks before it starts a request.
//!
//! The bucket holds one token and refills it every `1 / rate`: requests are spaced evenly,
//! never sent in a burst after a quiet spell, which is what a server's `limit_req` or an API
//! quota counts. It is a pure function of the clock it is handed (no sleeping, no clock of its
//! own), so the dispatcher decides what to do while a token is missing (hand other hosts' URLs
//! to the workers, or wait for a completion), and the tests drive it with made-up instants.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// A number of requests per unit of time, e.g. `10/s` or `30/m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// The time between two requests.
    interval: Duration,
    /// As the user wrote it, for messages.
    count: f64,
    unit: char,
}

impl Rate {
    /// The time between two requests at this rate.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }
}

impl FromStr for Rate {
    type Err = String;

    /// `N/s`, `N/m` or `N/h`; N may have a fraction (`0.5/s`). A bare number is refused with a
    /// hint, since tools disagree on what it means (curl's `--rate 10` is per hour).
    fn from_str(text: &str) -> Result<Rate, String> {
        let Some((count, unit)) = text.trim().split_once('/') else {
            return Err(format!(
                "{text:?} has no unit: write it as N/s, N/m or N/h, e.g. 10/s or 600/m"
            ));
        };
        let seconds = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown rate unit {other:?}: use s, m or h")),
        };
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a rate such as 10/s"))?;
        if !(count > 0.0 && count.is_finite()) {
            return Err(format!("{text:?}: the rate must be greater than 0"));
        }
        let interval = Duration::try_from_secs_f64(seconds / count)
            .map_err(|_| format!("{text:?}: the rate is too small"))?;
        if interval.is_zero() {
            return Err(format!("{text:?}: the rate is too large"));
        }
        Ok(Rate {
            interval,
            count,
            unit: unit.trim().chars().next().unwrap_or('s'),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.unit)
    }
}

/// A token bucket of one token, refilled every [`Rate::interval`].
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    interval: Duration,
    /// When the next token is there; `None` when one is there already.
    next: Option<Instant>,
}

impl Bucket {
    /// A full bucket for `rate`: the first request may start at once.
    pub(crate) fn new(rate: Rate) -> Bucket {
        Bucket {
            interval: rate.interval(),
            next: None,
        }
    }

    /// When a request may start: `None` if now, else the instant the token comes.
    pub(crate) fn ready_at(&self, now: Instant) -> Option<Instant> {
        self.next.filter(|&at| at > now)
    }

    /// Takes the token if it is there (`true`), refilling it one interval from now.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        if self.ready_at(now).is_some() {
            return false;
        }
        // From `now`, not from the previous token: a quiet spell earns no burst.
        self.next = now.checked_add(self.interval);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        text.parse().unwrap()
    }

    #[test]
    fn rates_parse_per_second_minute_and_hour() {
        assert_eq!(rate("10/s").interval(), Duration::from_millis(100));
        assert_eq!(rate(" 2 / s ").interval(), Duration::from_millis(500));
        assert_eq!(rate("0.5/s").interval(), Duration::from_secs(2));
        assert_eq!(rate("30/m").interval(), Duration::from_secs(2));
        assert_eq!(rate("1/h").interval(), Duration::from_secs(3600));
        assert_eq!(rate("10/s").to_string(), "10/s");
        assert_eq!(rate("1.5/m").to_string(), "1.5/m");
    }

    #[test]
    fn bad_rates_are_refused_with_a_reason() {
        let err = |text: &str| text.parse::<Rate>().unwrap_err();
        assert!(err("10").contains("has no unit"), "{}", err("10"));
        assert!(err("10/d").contains("unknown rate unit"));
        assert!(err("ten/s").contains("not a rate"));
        for zero in ["0/s", "-1/s", "inf/s", "NaN/m"] {
            assert!(err(zero).contains("greater than 0"), "{zero}");
        }
        assert!(err("1e300/s").contains("too large"));
        assert!(err("1e-300/h").contains("too small"));
    }

    #[test]
    fn a_bucket_spaces_requests_one_interval_apart() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut bucket = Bucket::new(rate("10/s"));
        assert_eq!(bucket.ready_at(t0), None);
        assert!(bucket.try_take(t0));
        assert_eq!(bucket.ready_at(t0), Some(t0 + ms(100)));
        assert!(!bucket.try_take(t0 + ms(99)), "too early");
        assert_eq!(bucket.ready_at(t0 + ms(99)), Some(t0 + ms(100)));
        assert!(bucket.try_take(t0 + ms(100)));
        assert!(!bucket.try_take(t0 + ms(150)));
        // A token taken late refills from when it was taken: the lateness is not made up for.
        assert!(bucket.try_take(t0 + ms(250)));
        assert_eq!(bucket.ready_at(t0 + ms(250)), Some(t0 + ms(350)));
    }

    #[test]
    fn a_quiet_spell_earns_no_burst() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(rate("2/s"));
        assert!(bucket.try_take(t0));
        let later = t0 + Duration::from_secs(60);
        assert!(bucket.try_take(later));
        assert!(!bucket.try_take(later), "one token, not sixty");
        assert!(!bucket.try_take(later + Duration::from_millis(499)));
        assert!(bucket.try_take(later + Duration::from_millis(500)));
    }

    #[test]
    fn a_hundred_requests_at_ten_per_second_take_ten_seconds_of_clock() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(rate("10/s"));
        let mut now = t0;
        let mut started = 0;
        // Bounded: each turn either starts one or moves the clock to the next token.
        for _ in 0..1000 {
            if started == 100 {
                break;
            }
            if bucket.try_take(now) {
                started += 1;
            } else if let Some(at) = bucket.ready_at(now) {
                now = at;
            }
        }
        assert_eq!(started, 100);
        assert_eq!(now - t0, Duration::from_millis(9900));
    }
}
