//! Durations on the command line: `500ms`, `2s`, `1.5m`, `1h`, or a bare number of seconds
//! (`60`, `0.25`), for every option that takes a time (`--timeout`, `--slow`, ...).
//!
//! One parser for all of them, so every option reads the same way. It is a few lines rather
//! than a crate: the options need a number and a unit, not humantime's `1h 30m` or dates.

use std::time::Duration;

/// The units a duration may end with, and how many seconds each is. `ms` comes before `m` and
/// `s`, since a suffix is tried in this order.
const UNITS: [(&str, f64); 4] = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];

/// Parses a positive duration: a number (fractions allowed) with an optional unit, `ms`, `s`,
/// `m` or `h`; without a unit it is seconds. Whitespace between the two is allowed.
///
/// # Errors
///
/// A message for clap to show: not a number, an unknown unit, zero or negative, not finite, or
/// too large for a [`Duration`].
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let (number, scale) = UNITS
        .iter()
        .find_map(|&(unit, scale)| trimmed.strip_suffix(unit).map(|n| (n, scale)))
        .unwrap_or((trimmed, 1.0));
    let value: f64 = number.trim_end().parse().map_err(|_| {
        format!("{text:?} is not a duration: give a number of seconds, or 500ms, 2s, 1m, 1h")
    })?;
    let secs = value * scale;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{text:?}: the duration must be greater than 0"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?}: the duration is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("60", ms(60_000)),
            ("0.25", ms(250)),
            ("500ms", ms(500)),
            ("2s", ms(2000)),
            ("1.5s", ms(1500)),
            ("1m", ms(60_000)),
            ("0.5m", ms(30_000)),
            ("1h", ms(3_600_000)),
            (" 2 s ", ms(2000)),
            ("1e-3", ms(1)),
            ("0.001", ms(1)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_durations_are_refused_with_a_reason() {
        for text in ["", "s", "ms", "two", "2x", "1d", "2 seconds", "1m30s"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("is not a duration"), "{text}: {err}");
        }
        for text in ["0", "0ms", "-1", "-2s", "inf", "NaN"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains("greater than 0"), "{text}: {err}");
        }
        assert!(parse_duration("1e300").unwrap_err().contains("too large"));
    }
}
