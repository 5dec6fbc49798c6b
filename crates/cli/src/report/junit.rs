//! `--format junit`: one `<testcase>` per URL in one `<testsuite>`, a failed URL's message in
//! its `<failure>`: the JUnit XML that GitLab (`artifacts:reports:junit`), Jenkins (`junit`)
//! and GitHub's test-report actions read.
//!
//! The document is written in three parts so that a run of millions of URLs never holds them:
//! [`testcase`] as each result comes (into a spool file), then [`head`] and [`tail`] around
//! them at the end, when the counts are known (see [`super`]).

use std::fmt::Write as _;
use std::time::Duration;

use crate::baseline::Change;
use crate::hosts::host_key;
use crate::output::Outcome;

use super::Totals;

/// The document's start: the XML declaration, `<testsuites>` and `<testsuite>` with the counts
/// and the wall time, up to the first test case.
pub(crate) fn head(totals: &Totals) -> String {
    let tests = totals.ok + totals.failed + totals.not_run;
    let time = seconds(totals.wall);
    let counts = format!(
        "tests=\"{tests}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{time}\"",
        totals.failed, totals.not_run
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"fetchall\" {counts}>\n\
         \x20 <testsuite name=\"fetchall\" {counts}>\n"
    )
}

/// One URL's test case: named by the URL, grouped (`classname`) by its host, timed by its
/// fetch. A failure carries the message as its `message` and its text; with `--baseline` the
/// changes go to `<system-out>`.
pub(crate) fn testcase(outcome: &Outcome, change: Option<&Change>) -> String {
    let class = host_key(&outcome.url).unwrap_or_else(|| "fetchall".to_owned());
    let time = outcome.timeline.elapsed.map(seconds).unwrap_or_default();
    let mut case = format!(
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        escape(&outcome.url),
        escape(&class),
        if time.is_empty() { "0" } else { &time },
    );
    let baseline = change.map(Change::names).filter(|names| !names.is_empty());
    if outcome.result.is_ok() && baseline.is_none() {
        case.push_str("/>\n");
        return case;
    }
    case.push_str(">\n");
    match &outcome.result {
        // Cancelled after an interruption: not a failure of the URL.
        Err(failure) if failure.never_ran() => {
            let message = escape(&failure.message);
            let _ = writeln!(case, "      <skipped message=\"{message}\"/>");
        }
        Err(failure) => {
            // The JSON line's `error_kind`: `status`, `timeout`, `connect`, `check`, ...
            let kind = failure.kind.as_str();
            let message = escape(&failure.message);
            let _ = writeln!(
                case,
                "      <failure message=\"{message}\" type=\"{kind}\">{message}</failure>"
            );
        }
        Ok(_) => {}
    }
    if let Some(names) = baseline {
        let _ = writeln!(
            case,
            "      <system-out>baseline: {}</system-out>",
            escape(&names)
        );
    }
    case.push_str("    </testcase>\n");
    case
}

/// The document's end; with `--baseline`, the suite's `<system-out>` holds the comparison's
/// report (the URLs removed since the baseline have no test case of their own).
pub(crate) fn tail(totals: &Totals) -> String {
    let mut tail = String::new();
    if let Some(baseline) = &totals.baseline {
        let _ = writeln!(
            tail,
            "    <system-out>{}</system-out>",
            escape(&baseline.report.join("\n"))
        );
    }
    tail.push_str("  </testsuite>\n</testsuites>\n");
    tail
}

/// Seconds with millisecond precision, as JUnit's `time` attributes have them.
fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// Text made safe for an XML attribute or element: the five markup characters as entities,
/// tabs and line breaks as character references (an attribute keeps them then), and the
/// characters XML 1.0 cannot carry at all (other control characters, U+FFFE, U+FFFF) as
/// U+FFFD.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{Record, Thresholds, compare};
    use crate::output::{Failure, Fetched, Timeline};

    fn outcome(url: &str, result: Result<Fetched, Failure>) -> Outcome {
        Outcome {
            url: url.to_owned(),
            result,
            timeline: Timeline {
                elapsed: Some(Duration::from_micros(12_345)),
                ..Timeline::default()
            },
        }
    }

    fn page() -> Result<Fetched, Failure> {
        Ok(Fetched::plain(1, 200))
    }

    #[test]
    fn markup_and_unwritable_characters_are_escaped() {
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
        assert_eq!(escape("t\tn\nr\r"), "t&#9;n&#10;r&#13;");
        assert_eq!(
            escape("\u{0}\u{1b}[0m\u{fffe}é✓"),
            "\u{fffd}\u{fffd}[0m\u{fffd}é✓"
        );
    }

    #[test]
    fn a_passing_url_is_an_empty_testcase_grouped_by_host() {
        assert_eq!(
            testcase(&outcome("http://Example.com/a?b=1&c=2", page()), None),
            "    <testcase name=\"http://Example.com/a?b=1&amp;c=2\" \
             classname=\"http://example.com:80\" time=\"0.012\"/>\n"
        );
    }

    #[test]
    fn a_failing_url_carries_its_message() {
        let failure = Failure {
            message: "HTTP Error 404: Not <Found>".into(),
            status: Some(404),
            attempts: Some(1),
            ..Failure::new(
                crate::output::FailureKind::Fetch(fetchall::fetch::ErrorKind::Status),
                "",
            )
        };
        let case = testcase(&outcome("not a url", Err(failure)), None);
        assert_eq!(
            case,
            "    <testcase name=\"not a url\" classname=\"fetchall\" time=\"0.012\">\n\
             \x20     <failure message=\"HTTP Error 404: Not &lt;Found&gt;\" type=\"status\">\
             HTTP Error 404: Not &lt;Found&gt;</failure>\n\
             \x20   </testcase>\n"
        );
    }

    #[test]
    fn a_url_that_never_ran_is_skipped_not_failed() {
        let case = testcase(&outcome("http://a/", Err(Failure::cancelled())), None);
        assert!(case.contains("<skipped message=\"cancelled\"/>"), "{case}");
        assert!(!case.contains("<failure"), "{case}");
        let totals = Totals {
            ok: 1,
            failed: 1,
            not_run: 2,
            ..Totals::default()
        };
        assert!(head(&totals).contains("tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"2\""));
    }

    #[test]
    fn baseline_changes_go_to_system_out() {
        let limits = Thresholds {
            size_change_pct: 20.0,
            slower_factor: 2.0,
        };
        let added = compare(None, Record::new(true, Some(200), Some(1), None), limits);
        let case = testcase(&outcome("http://a/", page()), Some(&added));
        assert!(
            case.contains("<system-out>baseline: added</system-out>"),
            "{case}"
        );
        let same = compare(
            Some(Record::new(true, Some(200), Some(1), None)),
            Record::new(true, Some(200), Some(1), None),
            limits,
        );
        let case = testcase(&outcome("http://a/", page()), Some(&same));
        assert!(case.ends_with("/>\n"), "{case}");
    }

    #[test]
    fn the_document_counts_its_cases() {
        let totals = Totals {
            ok: 2,
            failed: 1,
            wall: Duration::from_millis(1500),
            ..Totals::default()
        };
        let head = head(&totals);
        assert!(head.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert!(head.contains(
            "<testsuite name=\"fetchall\" tests=\"3\" failures=\"1\" errors=\"0\" \
             skipped=\"0\" time=\"1.500\">"
        ));
        assert_eq!(tail(&totals), "  </testsuite>\n</testsuites>\n");
    }
}
