//! Which statuses count as success: [`StatusRanges`], parsed from `200-299,304,404`.

use std::fmt;
use std::str::FromStr;

use crate::repr::repr;

/// The HTTP statuses that count as success, as inclusive ranges: `200-299,304,404`.
///
/// The default is `200-299`, Python's `urlopen` rule. Parsed from a comma-separated list of
/// codes (`404`) and ranges (`200-299`), each between 100 and 599.
///
/// # Examples
///
/// ```
/// use fetchall::fetch::StatusRanges;
///
/// let accept: StatusRanges = "200-299,304,404".parse()?;
/// assert!(accept.contains(204) && accept.contains(404));
/// assert!(!accept.contains(500));
/// assert_eq!(accept.to_string(), "200-299,304,404");
/// assert!("600".parse::<StatusRanges>().is_err());
/// # Ok::<(), fetchall::fetch::ParseStatusRangesError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRanges(Vec<(u16, u16)>);

impl StatusRanges {
    /// Whether `code` is in one of the ranges.
    pub fn contains(&self, code: u16) -> bool {
        self.0
            .iter()
            .any(|&(low, high)| (low..=high).contains(&code))
    }
}

impl Default for StatusRanges {
    fn default() -> Self {
        StatusRanges(vec![(200, 299)])
    }
}

impl FromStr for StatusRanges {
    type Err = ParseStatusRangesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |why: String| ParseStatusRangesError(why);
        let code = |text: &str| match text.trim().parse::<u16>() {
            Ok(code @ 100..=599) => Ok(code),
            _ => Err(error(format!(
                "{} is not a status code from 100 to 599",
                repr(text.trim())
            ))),
        };
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let range = match part.split_once('-') {
                Some((low, high)) => (code(low)?, code(high)?),
                None => (code(part)?, code(part)?),
            };
            if range.0 > range.1 {
                return Err(error(format!("{} is an empty range", repr(part.trim()))));
            }
            ranges.push(range);
        }
        Ok(StatusRanges(ranges))
    }
}

impl fmt::Display for StatusRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(low, high)) in self.0.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            if low == high {
                write!(f, "{comma}{low}")?;
            } else {
                write!(f, "{comma}{low}-{high}")?;
            }
        }
        Ok(())
    }
}

/// Why a text is not a [`StatusRanges`]: `'600' is not a status code from 100 to 599`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseStatusRangesError(String);

impl fmt::Display for ParseStatusRangesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseStatusRangesError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_parse_and_print() {
        let ranges: StatusRanges = " 200-299 , 304,404-404".parse().expect("valid");
        assert_eq!(ranges.to_string(), "200-299,304,404");
        for (code, accepted) in [(199, false), (200, true), (299, true), (301, false)] {
            assert_eq!(ranges.contains(code), accepted, "{code}");
        }
        assert!(ranges.contains(304) && ranges.contains(404) && !ranges.contains(405));
        assert_eq!(StatusRanges::default().to_string(), "200-299");
    }

    #[test]
    fn bad_status_ranges_say_why() {
        for (text, why) in [
            ("", "'' is not a status code from 100 to 599"),
            ("600", "'600' is not a status code from 100 to 599"),
            ("99", "'99' is not a status code from 100 to 599"),
            ("2xx", "'2xx' is not a status code from 100 to 599"),
            ("200,", "'' is not a status code from 100 to 599"),
            ("200-", "'' is not a status code from 100 to 599"),
            ("300-200", "'300-200' is an empty range"),
            (
                "200-250-299",
                "'250-299' is not a status code from 100 to 599",
            ),
        ] {
            let err = text.parse::<StatusRanges>().expect_err(text);
            assert_eq!(err.to_string(), why, "{text:?}");
        }
    }
}
