//! `--shard K/N`: which share of the input this run fetches, so that N machines can split one
//! list with no scheduler of our own.
//!
//! The index is the position of a line among the lines that get a result (URLs, and lines
//! reported as invalid), counted from 0 after blank lines and `#` comments are skipped. Shard K
//! takes the lines whose index is K mod N. Counting only those lines keeps the shards a
//! partition of the work (every result line in exactly one shard) and even in size however the
//! comments are spread, and editing comments or blank lines moves no URL to another shard.

use std::fmt;
use std::str::FromStr;

/// One share of the input: the lines whose index is `index` mod `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// Every line: `0/1`, the share of a run without `--shard`.
    pub(crate) const ALL: Shard = Shard { index: 0, count: 1 };

    /// `true` if the line at `index` (among the lines that get a result) is in this share.
    pub(crate) fn contains(self, index: u64) -> bool {
        index % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let form = || format!("{s:?} is not K/N (two whole numbers, as in 0/4)");
        let (k, n) = s.split_once('/').ok_or_else(form)?;
        let number = |part: &str| -> Result<u64, String> {
            // `u64::from_str` takes a leading `+`; a shard number is plain digits.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(form());
            }
            part.parse().map_err(|_| format!("{part} is too large"))
        };
        let (index, count) = (number(k)?, number(n)?);
        if count == 0 {
            return Err("N must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "K must be less than N: the shards of {count} are 0/{count} to {}/{count}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n() {
        assert_eq!("0/1".parse(), Ok(Shard::ALL));
        let shard: Shard = "2/4".parse().unwrap();
        assert_eq!(shard.to_string(), "2/4");
        assert_eq!(
            "18446744073709551614/18446744073709551615"
                .parse::<Shard>()
                .map(|s| s.count),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn bad_values_say_why() {
        for (bad, why) in [
            (
                "4/4",
                "K must be less than N: the shards of 4 are 0/4 to 3/4",
            ),
            ("5/4", "K must be less than N"),
            ("0/0", "N must be at least 1"),
            ("1", "is not K/N"),
            ("", "is not K/N"),
            ("/4", "is not K/N"),
            ("1/", "is not K/N"),
            ("-1/4", "is not K/N"),
            ("+1/4", "is not K/N"),
            (" 1/4", "is not K/N"),
            ("1/4/8", "is not K/N"),
            ("a/b", "is not K/N"),
            ("1.5/4", "is not K/N"),
            (
                "0/99999999999999999999",
                "99999999999999999999 is too large",
            ),
        ] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_shards_partition_the_indices() {
        let shards: Vec<Shard> = (0..3).map(|k| format!("{k}/3").parse().unwrap()).collect();
        for index in 0..100 {
            let owners = shards.iter().filter(|s| s.contains(index)).count();
            assert_eq!(owners, 1, "index {index}");
        }
        assert!((0..100).all(|i| Shard::ALL.contains(i)));
        assert!(shards[1].contains(4) && !shards[1].contains(5));
    }
}
