//! `--format csv`: one row per URL under a header row, RFC 4180 quoting, for a spreadsheet or
//! `xsv`/`mlr`/`duckdb`. The columns are the JSON line's scalars, in the same units.

use std::borrow::Cow;

use crate::baseline::Change;
use crate::output::Outcome;

/// The header row, without its line end; with `--baseline`, a last `baseline` column holds the
/// kinds of change (`new_failure,status`), empty when unchanged.
pub(crate) fn header(baseline: bool) -> String {
    let mut header = "url,ok,status,bytes,elapsed_ms,attempts,error,error_kind".to_owned();
    if baseline {
        header.push_str(",baseline");
    }
    header
}

/// One URL's row, without its line end. Empty fields stand for JSON's `null`.
pub(crate) fn row(outcome: &Outcome, change: Option<&Change>) -> String {
    let (ok, status, bytes, attempts, error, kind) = match &outcome.result {
        Ok(page) => (
            "true",
            Some(page.status),
            Some(page.bytes),
            Some(page.attempts),
            "",
            "",
        ),
        Err(f) => (
            "false",
            f.status,
            None,
            f.attempts,
            f.message.as_str(),
            f.kind.as_str(),
        ),
    };
    let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let elapsed = outcome
        .timeline
        .elapsed
        .map(|d| crate::output::millis(d).to_string())
        .unwrap_or_default();
    let mut row = [
        field(&outcome.url).into_owned(),
        ok.to_owned(),
        number(status.map(u64::from)),
        number(bytes),
        elapsed,
        number(attempts.map(u64::from)),
        field(error).into_owned(),
        kind.to_owned(),
    ]
    .join(",");
    if let Some(change) = change {
        row.push(',');
        row.push_str(&field(&change.names()));
    }
    row
}

/// A field as RFC 4180 writes it: in double quotes (doubled inside) when it holds a comma, a
/// quote or a line break, or starts or ends with a space; as it is otherwise.
fn field(text: &str) -> Cow<'_, str> {
    let special = text.contains([',', '"', '\n', '\r']) || text.trim() != text;
    if special {
        Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{Record, Thresholds, compare};
    use crate::output::{Failure, Fetched, Timeline};
    use std::time::Duration;

    fn ok() -> Outcome {
        Outcome {
            url: "http://a/x".into(),
            result: Ok(Fetched::plain(42, 200)),
            timeline: Timeline {
                elapsed: Some(Duration::from_micros(12_345)),
                ..Timeline::default()
            },
        }
    }

    #[test]
    fn rows_line_up_with_the_header() {
        assert_eq!(
            header(false),
            "url,ok,status,bytes,elapsed_ms,attempts,error,error_kind"
        );
        assert_eq!(row(&ok(), None), "http://a/x,true,200,42,12.345,1,,");
        let failed = Outcome {
            url: "http://a/?q=1,2".into(),
            result: Err(Failure {
                message: "say \"no\", twice".into(),
                status: Some(404),
                attempts: Some(2),
                ..Failure::new(
                    crate::output::FailureKind::Fetch(fetchall::fetch::ErrorKind::Status),
                    "",
                )
            }),
            timeline: Timeline::default(),
        };
        assert_eq!(
            row(&failed, None),
            "\"http://a/?q=1,2\",false,404,,,2,\"say \"\"no\"\", twice\",status"
        );
        let rejected = Outcome {
            url: " odd line".into(),
            result: Err(Failure::new(
                crate::output::FailureKind::Fetch(fetchall::fetch::ErrorKind::InvalidUrl),
                "unknown url type: ' odd line'",
            )),
            timeline: Timeline::default(),
        };
        assert_eq!(
            row(&rejected, None),
            "\" odd line\",false,,,,,unknown url type: ' odd line',invalid_url"
        );
    }

    #[test]
    fn the_baseline_column_lists_the_changes() {
        let limits = Thresholds {
            size_change_pct: 20.0,
            slower_factor: 2.0,
        };
        assert!(header(true).ends_with(",error,error_kind,baseline"));
        let added = compare(None, Record::new(true, Some(200), Some(42), None), limits);
        assert!(row(&ok(), Some(&added)).ends_with(",1,,,added"));
    }

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("a\"b"), "\"a\"\"b\"");
        assert_eq!(field("a\rb"), "\"a\rb\"");
        assert_eq!(field(""), "");
    }
}
