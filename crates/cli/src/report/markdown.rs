//! `--format markdown`: a summary for a pull-request or merge-request comment. A table of the
//! counts and fetch times, then the failed URLs, then (with `--baseline`) what changed. Passing
//! URLs are not listed one by one; each list stops at [`MAX_ROWS`] rows with a count of the
//! rest, which keeps the comment under the 65,536 characters GitHub allows and the report's
//! memory bounded.

use std::fmt::Write as _;
use std::time::Duration;

use fetchall::repr;

use crate::baseline::{Change, Kind};
use crate::output::{Outcome, human};

use super::Totals;

/// The most rows in each table.
pub(crate) const MAX_ROWS: usize = 100;

/// The row of a URL in the failures table (URL, status, message), if it failed: not if it never
/// ran, as the summary above the table does not count it as failed either.
pub(crate) fn failure_row(outcome: &Outcome) -> Option<impl FnOnce() -> String> {
    let failure = outcome.result.as_ref().err().filter(|f| !f.never_ran())?;
    Some(move || {
        let status = failure.status.map(|s| s.to_string()).unwrap_or_default();
        format!(
            "| {} | {status} | {} |",
            cell(&repr(&outcome.url)),
            cell(&failure.message)
        )
    })
}

/// The row of a URL in the changes table (URL, the changes, what the baseline had), if it
/// changed.
pub(crate) fn change_row<'a>(
    outcome: &'a Outcome,
    change: &'a Change,
) -> Option<impl FnOnce() -> String + 'a> {
    change.kinds().next()?;
    Some(move || changed_row(outcome, change))
}

fn changed_row(outcome: &Outcome, change: &Change) -> String {
    let kinds: Vec<&str> = change.kinds().map(Kind::words).collect();
    let was = match change.was {
        None => String::new(),
        Some(was) => {
            let status = was
                .status()
                .map_or("no status".to_owned(), |s| s.to_string());
            let bytes = was
                .bytes()
                .map(|b| format!(", {b} bytes"))
                .unwrap_or_default();
            let time = was
                .elapsed()
                .map(|t| format!(", {}", human(t)))
                .unwrap_or_default();
            format!(
                "{}{status}{bytes}{time}",
                if was.ok { "ok, " } else { "failed, " }
            )
        }
    };
    format!(
        "| {} | {} | {} |",
        cell(&repr(&outcome.url)),
        kinds.join(", "),
        cell(&was)
    )
}

/// Rows kept for one table, and how many more there were.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    rows: Vec<String>,
    more: u64,
}

impl Rows {
    /// Keeps `row` if the table has room, else counts it: a row past the last one kept is
    /// never formatted.
    pub(crate) fn push(&mut self, row: Option<impl FnOnce() -> String>) {
        match row {
            Some(row) if self.rows.len() < MAX_ROWS => self.rows.push(row()),
            Some(_) => self.more += 1,
            None => {}
        }
    }

    /// Appends the table: `head` (its title and header rows), the rows, and the count of the
    /// rows left out.
    fn write(&self, out: &mut String, head: &str) {
        out.push_str(head);
        for row in &self.rows {
            out.push_str(row);
            out.push('\n');
        }
        if self.more > 0 {
            let _ = writeln!(out, "\n…and {} more.", self.more);
        }
    }
}

/// The whole comment.
pub(crate) fn document(totals: &Totals, failures: &Rows, changes: &Rows) -> String {
    let mut out = String::new();
    let verdict = if totals.failed == 0 { "✅" } else { "❌" };
    let not_run = if totals.not_run > 0 {
        format!(", {} not run", totals.not_run)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "### {verdict} fetchall: {} ok, {} failed{not_run}{}\n",
        totals.ok,
        totals.failed,
        if totals.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    let time = |d: Option<Duration>| d.map(human).unwrap_or_else(|| "–".to_owned());
    let _ = writeln!(
        out,
        "| URLs | ok | failed | wall time | fetch p50 | p95 | p99 |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {} | {} | {} | {} | {} | {} |",
        totals.ok + totals.failed + totals.not_run,
        totals.ok,
        totals.failed,
        human(totals.wall),
        time(totals.p50),
        time(totals.p95),
        time(totals.p99),
    );
    if totals.failed > 0 {
        failures.write(
            &mut out,
            "\n#### Failures\n\n| URL | status | error |\n|---|---:|---|\n",
        );
    }
    if let Some(baseline) = &totals.baseline {
        let counts = &baseline.counts;
        let _ = writeln!(out, "\n#### Since the baseline\n");
        let mut parts: Vec<String> = Kind::ALL
            .into_iter()
            .map(|k| format!("{} {}", counts.of(k), k.words()))
            .collect();
        parts.push(format!("{} removed", counts.removed));
        parts.push(format!("{} unchanged", counts.unchanged));
        let _ = writeln!(out, "{}.", parts.join(", "));
        if changes.rows.len() as u64 + changes.more > 0 {
            changes.write(&mut out, "\n| URL | change | was |\n|---|---|---|\n");
        }
        if !baseline.removed.is_empty() {
            let _ = writeln!(out, "\nRemoved:\n");
            for url in &baseline.removed {
                let _ = writeln!(out, "- {}", cell(&repr(url)));
            }
            let unnamed = counts.removed - baseline.removed.len() as u64;
            if unnamed > 0 {
                let _ = writeln!(out, "- …and {unnamed} more");
            }
        }
    }
    out
}

/// Text made safe for a table cell: Markdown's punctuation backslash-escaped, so that a URL
/// with `|`, `*`, `_` or `<` neither breaks the table nor turns into emphasis or HTML.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '|' | '`' | '*' | '_' | '<' | '>' | '[' | ']' | '#' | '~' | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{Record, Thresholds, compare};
    use crate::output::{Failure, Timeline};

    fn failed(url: &str, message: &str, status: Option<u16>) -> Outcome {
        Outcome {
            url: url.to_owned(),
            result: Err(Failure {
                message: message.to_owned(),
                status,
                attempts: Some(1),
                ..Failure::new(
                    crate::output::FailureKind::Fetch(fetchall::fetch::ErrorKind::Status),
                    "",
                )
            }),
            timeline: Timeline::default(),
        }
    }

    #[test]
    fn cells_escape_what_markdown_would_read() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(cell("'http://h/_x_*y*'"), "'http://h/\\_x\\_\\*y\\*'");
        assert_eq!(cell("<script>"), "\\<script\\>");
        assert_eq!(cell("plain"), "plain");
    }

    #[test]
    fn a_failure_is_a_row() {
        let bad = failed("http://h/a|b", "HTTP Error 404: Not Found", Some(404));
        assert_eq!(
            failure_row(&bad).map(|row| row()).as_deref(),
            Some("| 'http://h/a\\|b' | 404 | HTTP Error 404: Not Found |")
        );
    }

    #[test]
    fn a_url_that_never_ran_is_no_failure_row() {
        let mut cancelled = failed("http://h/c", "cancelled", None);
        cancelled.result = Err(crate::output::Failure::cancelled());
        assert!(failure_row(&cancelled).is_none());
    }

    #[test]
    fn tables_stop_at_max_rows() {
        let mut rows = Rows::default();
        for i in 0..MAX_ROWS + 5 {
            rows.push(failure_row(&failed(&format!("http://h/{i}"), "x", None)));
        }
        rows.push(None::<fn() -> String>);
        let mut out = String::new();
        rows.write(&mut out, "");
        assert_eq!(out.lines().filter(|l| l.starts_with('|')).count(), MAX_ROWS);
        assert!(out.ends_with("\n…and 5 more.\n"), "{out}");
    }

    #[test]
    fn the_document_has_the_summary_failures_and_changes() {
        let mut failures = Rows::default();
        let bad = failed("http://h/x", "timed out (connect, after 1ms)", None);
        failures.push(failure_row(&bad));
        let limits = Thresholds {
            size_change_pct: 20.0,
            slower_factor: 2.0,
        };
        let was = Record::new(true, Some(200), Some(10), Some(Duration::from_millis(3)));
        let change = compare(Some(was), Record::new(false, None, None, None), limits);
        let mut changes = Rows::default();
        changes.push(change_row(&bad, &change));
        let totals = Totals {
            ok: 1,
            failed: 1,
            wall: Duration::from_millis(1500),
            p50: Some(Duration::from_millis(20)),
            ..Totals::default()
        };
        let doc = document(&totals, &failures, &changes);
        assert!(
            doc.starts_with("### ❌ fetchall: 1 ok, 1 failed\n\n"),
            "{doc}"
        );
        assert!(
            doc.contains("| 2 | 1 | 1 | 1.50s | 20ms | – | – |\n"),
            "{doc}"
        );
        assert!(doc.contains(
            "#### Failures\n\n| URL | status | error |\n|---|---:|---|\n\
             | 'http://h/x' |  | timed out (connect, after 1ms) |\n"
        ));
        assert!(!doc.contains("baseline"), "{doc}");
        let cut = Totals {
            not_run: 3,
            interrupted: true,
            ..totals
        };
        let doc = document(&cut, &failures, &changes);
        assert!(
            doc.starts_with("### ❌ fetchall: 1 ok, 1 failed, 3 not run (interrupted)\n"),
            "{doc}"
        );
        assert_eq!(
            change_row(&bad, &change).map(|row| row()).as_deref(),
            Some("| 'http://h/x' | newly failing | ok, 200, 10 bytes, 3.00ms |")
        );
    }
}
