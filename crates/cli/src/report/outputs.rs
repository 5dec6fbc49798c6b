//! [`Outputs`]: what happens to each result once it is counted. It is compared with
//! `--baseline`, added to every report file, and turned into standard output's line (unless
//! `-o` sent standard output's format to a file). At the end: the baseline's report on stderr,
//! the reports completed, and the facts the exit status depends on ([`Verdict`]).

use std::io::{self, Write};
use std::time::Duration;

use crate::baseline::{Baseline, Kind, Thresholds};
use crate::cli::{Args, Format};
use crate::output::{Outcome, Summary};

use super::{ReportSpec, Reports, Totals, line, preamble};

/// The printer's side of the reports and the baseline.
#[derive(Debug)]
pub(crate) struct Outputs {
    baseline: Option<Baseline>,
    reports: Reports,
    /// Standard output's line format; `None` when it gets no lines (`-o`, or a format written
    /// whole at the end, which is one of the reports then).
    stdout: Option<Format>,
}

/// What the end of the run found, for the exit status.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Results that fail now and did not in the baseline (all failures without one).
    pub(crate) new_failures: u64,
    /// No result at all.
    pub(crate) empty: bool,
    /// Reports that could not be written.
    pub(crate) errors: Vec<String>,
}

impl Outputs {
    /// Loads the baseline and opens the reports the options ask for.
    ///
    /// # Errors
    ///
    /// The baseline cannot be read, or a report file cannot be created: a usage error.
    pub(crate) fn open(args: &Args) -> Result<Outputs, String> {
        let baseline = match &args.baseline {
            Some(path) => {
                let limits = Thresholds {
                    size_change_pct: args.size_change,
                    slower_factor: args.slower,
                };
                let (baseline, skipped) = Baseline::load(path, limits)?;
                if skipped > 0 {
                    tracing::warn!(
                        "--baseline {}: {skipped} lines are not fetchall JSON lines; skipped",
                        path.display()
                    );
                }
                Some(baseline)
            }
            None => None,
        };
        let mut files = args.reports.clone();
        let whole = matches!(args.format, Format::Junit | Format::Markdown);
        let (stdout, stdout_whole) = match &args.output {
            Some(path) => {
                files.insert(
                    0,
                    ReportSpec {
                        format: args.format,
                        path: path.clone(),
                    },
                );
                (None, None)
            }
            None if whole => (None, Some(args.format)),
            None => (Some(args.format), None),
        };
        let reports = Reports::open(
            &files,
            stdout_whole,
            args.summary_json.as_deref(),
            baseline.is_some(),
        )?;
        Ok(Outputs {
            baseline,
            reports,
            stdout,
        })
    }

    /// Standard output in `format`, no report, no baseline: for the run loop's tests.
    #[cfg(test)]
    pub(crate) fn plain(format: Format) -> Outputs {
        Outputs {
            baseline: None,
            reports: Reports::default(),
            stdout: Some(format),
        }
    }

    /// Standard output's first line, before any result: CSV's header.
    pub(crate) fn preamble(&self) -> Option<String> {
        preamble(self.stdout?, self.baseline.is_some())
    }

    /// Compares `outcome` with the baseline, adds it to the reports, and returns standard
    /// output's line for it, if standard output gets one.
    ///
    /// # Errors
    ///
    /// A report file cannot be written.
    pub(crate) fn record(&mut self, outcome: &Outcome) -> io::Result<Option<String>> {
        let change = self.baseline.as_mut().map(|b| b.compare(outcome));
        let stdout = self
            .stdout
            .and_then(|format| Some((format, line(format, outcome, change.as_ref())?)));
        // A report in standard output's format gets the line already made.
        let made = stdout
            .as_ref()
            .map(|(format, text)| (*format, text.as_str()));
        self.reports
            .record(outcome, change.as_ref(), made)
            .map_err(io::Error::other)?;
        Ok(stdout.map(|(_, text)| text))
    }

    /// Ends the run's outputs: prints the baseline's report on stderr (unless `quiet`), and
    /// completes every report with the run's totals.
    pub(crate) fn finish(
        self,
        summary: &Summary,
        wall: Duration,
        interrupted: bool,
        quiet: bool,
    ) -> Verdict {
        let findings = self.baseline.map(Baseline::finish);
        if let (Some(findings), false) = (&findings, quiet) {
            let mut stderr = io::stderr().lock();
            for line in &findings.report {
                let _ = writeln!(stderr, "{line}");
            }
        }
        let new_failures = match &findings {
            Some(findings) => findings.counts.of(Kind::NewFailure),
            None => summary.failed(),
        };
        let totals = Totals::new(summary, wall, interrupted, findings);
        let errors = self.reports.finish(&totals).err().unwrap_or_default();
        Verdict {
            new_failures,
            empty: summary.ok() + summary.failed() == 0,
            errors,
        }
    }
}
