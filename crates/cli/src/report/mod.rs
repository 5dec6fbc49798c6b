//! Where the results go besides the terminal: `-o FILE`, `--report FORMAT:FILE` (repeatable)
//! and `--summary-json FILE`, in any [`Format`].
//!
//! Line formats (text, jsonl, csv) are written as the results come, so `tail -f` follows them.
//! JUnit and Markdown are complete only at the end (the counts open a JUnit document), so they
//! are written to a hidden temporary file in the target's own directory and renamed over the
//! target when the run ends: a run that is killed never leaves half an XML file where a CI job
//! looks for its report (the temporary file stays, named `.NAME.fetchall-PID.tmp`). JUnit's test
//! cases are spooled to a file of their own meanwhile, so even a run of millions of URLs holds
//! none of them in memory.
//!
//! The formatters themselves ([`csv`], [`junit`], [`markdown`]) are pure functions of the same
//! [`Outcome`] the JSON line is made from.

pub(crate) mod csv;
pub(crate) mod junit;
pub(crate) mod markdown;
mod outputs;

pub(crate) use outputs::Outputs;

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;

use crate::baseline::{Change, Findings};
use crate::cli::Format;
use crate::output::{Outcome, Summary, format_json, format_line, json_value, millis};

/// Everything known at the end of a run, for the reports that need it.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    /// URLs that succeeded.
    pub(crate) ok: u64,
    /// URLs that failed.
    pub(crate) failed: u64,
    /// URLs whose task never ran (cancelled after an interruption).
    pub(crate) not_run: u64,
    /// The run's wall time.
    pub(crate) wall: Duration,
    /// Cut short by Ctrl-C (or a signal).
    pub(crate) interrupted: bool,
    /// Fetch-time percentiles.
    pub(crate) p50: Option<Duration>,
    /// 95th percentile.
    pub(crate) p95: Option<Duration>,
    /// 99th percentile.
    pub(crate) p99: Option<Duration>,
    /// The comparison with `--baseline`.
    pub(crate) baseline: Option<Findings>,
}

impl Totals {
    /// The totals of a run's `summary`.
    pub(crate) fn new(
        summary: &Summary,
        wall: Duration,
        interrupted: bool,
        baseline: Option<Findings>,
    ) -> Totals {
        Totals {
            ok: summary.ok(),
            failed: summary.failed(),
            not_run: summary.not_run(),
            wall,
            interrupted,
            p50: summary.quantile(0.50),
            p95: summary.quantile(0.95),
            p99: summary.quantile(0.99),
            baseline,
        }
    }

    /// The `--summary-json` object.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "total": self.ok + self.failed + self.not_run,
            "ok": self.ok,
            "failed": self.failed,
            "not_run": self.not_run,
            "interrupted": self.interrupted,
            "wall_ms": millis(self.wall),
            "fetch_ms": {
                "p50": self.p50.map(millis),
                "p95": self.p95.map(millis),
                "p99": self.p99.map(millis),
            },
            "baseline": self.baseline.as_ref().map(|b| b.counts.to_json()),
        })
    }
}

/// One result's line in a line format (text, jsonl, csv), without its line end; `None` for
/// the formats that are written whole at the end.
pub(crate) fn line(format: Format, outcome: &Outcome, change: Option<&Change>) -> Option<String> {
    match format {
        Format::Text => Some(format_line(outcome)),
        Format::Jsonl => {
            let Some(change) = change else {
                return Some(format_json(outcome));
            };
            let mut value = json_value(outcome);
            if let Some(object) = value.as_object_mut() {
                object.insert("baseline".into(), change.to_json());
            }
            Some(value.to_string())
        }
        Format::Csv => Some(csv::row(outcome, change)),
        Format::Junit | Format::Markdown => None,
    }
}

/// The line written before any result in a line format: CSV's header row.
pub(crate) fn preamble(format: Format, baseline: bool) -> Option<String> {
    (format == Format::Csv).then(|| csv::header(baseline))
}

/// `--report FORMAT:FILE`: a report in FORMAT written to FILE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportSpec {
    /// The format.
    pub(crate) format: Format,
    /// Where it goes.
    pub(crate) path: PathBuf,
}

impl FromStr for ReportSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<ReportSpec, String> {
        let names = || {
            Format::value_variants()
                .iter()
                .filter_map(|f| f.to_possible_value())
                .map(|v| v.get_name().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some((format, path)) = text.split_once(':') else {
            return Err(format!(
                "{text:?} is not FORMAT:FILE, e.g. junit:results.xml (formats: {})",
                names()
            ));
        };
        let format = Format::from_str(format, true)
            .map_err(|_| format!("unknown report format {format:?} (formats: {})", names()))?;
        if path.is_empty() {
            return Err(format!("{text:?} names no file"));
        }
        Ok(ReportSpec {
            format,
            path: PathBuf::from(path),
        })
    }
}

/// A report being written.
#[derive(Debug)]
enum Sink {
    /// A line format, straight into its file.
    Lines {
        format: Format,
        out: BufWriter<File>,
        path: PathBuf,
    },
    /// JUnit: test cases spooled, the document assembled at the end.
    Junit {
        spool: BufWriter<File>,
        spool_path: PathBuf,
        target: Target,
    },
    /// Markdown: the table rows kept (a bounded number), the document written at the end.
    Markdown {
        failures: markdown::Rows,
        changes: markdown::Rows,
        target: Target,
    },
    /// `--summary-json`: written at the end.
    Summary { target: Target },
}

/// Where a report written at the end goes.
#[derive(Debug)]
enum Target {
    /// Standard output (`--format junit` or `markdown` without `-o`).
    Stdout,
    /// A file, by way of a temporary one beside it.
    File(PathBuf),
}

impl Target {
    /// Writes `text` to the target whole (see [`Target::write_with`]).
    fn write(&self, text: &str) -> Result<(), String> {
        self.write_with(|out| out.write_all(text.as_bytes()))
    }

    /// Writes what `fill` writes to the target whole: to a temporary file in the same
    /// directory, then renamed over the target, so the target is never seen half written (and
    /// the temporary file removed if anything fails); or to stdout, where a closed pipe is no
    /// error.
    fn write_with(
        &self,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), String> {
        match self {
            Target::Stdout => {
                let mut out = io::stdout().lock();
                let written = fill(&mut out).and_then(|()| out.flush());
                quiet_pipe(written)
            }
            Target::File(path) => {
                let temp = beside(path, "tmp");
                let written = File::create(&temp).and_then(|file| {
                    let mut out = BufWriter::new(file);
                    fill(&mut out)?;
                    out.flush()?;
                    fs::rename(&temp, path)
                });
                written.map_err(|e| {
                    let _ = fs::remove_file(&temp);
                    format!("cannot write {}: {e}", path.display())
                })
            }
        }
    }
}

/// A report written to standard output: a closed pipe (`| head`) is no error, as for the
/// result lines.
fn quiet_pipe(written: io::Result<()>) -> Result<(), String> {
    match written {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the report to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

/// A hidden file beside `path`: `.NAME.fetchall-PID.SUFFIX`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    let file = format!(".{name}.fetchall-{}.{suffix}", std::process::id());
    path.with_file_name(file)
}

/// Creates `path` for writing, with the error worded for the command line.
fn create(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A new file in the shared temporary directory for JUnit's test cases when the report goes to
/// stdout. Made with `create_new`, so a name planted there by someone else (a link to a file
/// of ours) is never followed or emptied; a taken name is skipped for the next one. The names
/// carry the clock's nanoseconds as well as the process id, so they cannot all be taken in
/// advance.
fn create_private_spool() -> Result<(File, PathBuf), String> {
    let dir = std::env::temp_dir();
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let name = |n: u32| format!("fetchall-{}-{nonce}-{n}.cases", std::process::id());
    for n in 0..100 {
        let path = dir.join(name(n));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
        }
    }
    Err(format!(
        "cannot write {}: every name is taken",
        dir.join(name(99)).display()
    ))
}

/// Fails now, not at the end of the run, if the temporary file beside `path` cannot be
/// created (a missing directory, no permission); the error names `path`.
fn probe(path: &Path) -> Result<(), String> {
    let temp = beside(path, "tmp");
    File::create(&temp).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let _ = fs::remove_file(&temp);
    Ok(())
}

/// Every report of a run, fed each result as it is printed and finished at the end.
#[derive(Debug, Default)]
pub(crate) struct Reports {
    sinks: Vec<Sink>,
}

impl Reports {
    /// Opens the reports: `files` in their formats, `stdout_whole` when standard output's
    /// format is written whole at the end (junit, markdown), and `summary` for
    /// `--summary-json`. `baseline` adds the baseline column to CSV.
    ///
    /// # Errors
    ///
    /// A file cannot be created (a missing directory, no permission): a usage error, before
    /// anything is fetched.
    pub(crate) fn open(
        files: &[ReportSpec],
        stdout_whole: Option<Format>,
        summary: Option<&Path>,
        baseline: bool,
    ) -> Result<Reports, String> {
        let mut sinks = Vec::new();
        let whole = |format: Format, target: Target| -> Result<Sink, String> {
            if let Target::File(path) = &target {
                probe(path)?;
            }
            Ok(match format {
                Format::Junit => {
                    let (spool, spool_path) = match &target {
                        Target::File(path) => {
                            let spool_path = beside(path, "cases");
                            (create(&spool_path)?, spool_path)
                        }
                        Target::Stdout => create_private_spool()?,
                    };
                    Sink::Junit {
                        spool: BufWriter::new(spool),
                        spool_path,
                        target,
                    }
                }
                _ => Sink::Markdown {
                    failures: markdown::Rows::default(),
                    changes: markdown::Rows::default(),
                    target,
                },
            })
        };
        if let Some(format) = stdout_whole {
            sinks.push(whole(format, Target::Stdout)?);
        }
        for spec in files {
            let sink = match spec.format {
                Format::Junit | Format::Markdown => {
                    whole(spec.format, Target::File(spec.path.clone()))?
                }
                format => {
                    let mut out = BufWriter::new(create(&spec.path)?);
                    if let Some(first) = preamble(format, baseline) {
                        writeln!(out, "{first}")
                            .map_err(|e| format!("cannot write {}: {e}", spec.path.display()))?;
                    }
                    Sink::Lines {
                        format,
                        out,
                        path: spec.path.clone(),
                    }
                }
            };
            sinks.push(sink);
        }
        if let Some(path) = summary {
            probe(path)?;
            sinks.push(Sink::Summary {
                target: Target::File(path.to_owned()),
            });
        }
        Ok(Reports { sinks })
    }

    /// Adds one result to every report. `made` is the result's line in one format, if the
    /// caller has it already (standard output's): a report in that format writes it as it is.
    ///
    /// # Errors
    ///
    /// Writing a file failed (a full disk): the run stops, as for a failed stdout.
    pub(crate) fn record(
        &mut self,
        outcome: &Outcome,
        change: Option<&Change>,
        made: Option<(Format, &str)>,
    ) -> Result<(), String> {
        for sink in &mut self.sinks {
            match sink {
                Sink::Lines { format, out, path } => {
                    let text = match made {
                        Some((made_in, text)) if made_in == *format => Some(Cow::Borrowed(text)),
                        _ => line(*format, outcome, change).map(Cow::Owned),
                    };
                    if let Some(text) = text {
                        writeln!(out, "{text}")
                            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    }
                }
                Sink::Junit {
                    spool, spool_path, ..
                } => spool
                    .write_all(junit::testcase(outcome, change).as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", spool_path.display()))?,
                Sink::Markdown {
                    failures, changes, ..
                } => {
                    failures.push(markdown::failure_row(outcome));
                    if let Some(change) = change {
                        changes.push(markdown::change_row(outcome, change));
                    }
                }
                Sink::Summary { .. } => {}
            }
        }
        Ok(())
    }

    /// Completes every report with the run's `totals`. Every report is attempted even if one
    /// fails.
    ///
    /// # Errors
    ///
    /// The messages of the reports that could not be written.
    pub(crate) fn finish(self, totals: &Totals) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        for sink in self.sinks {
            if let Err(e) = finish_one(sink, totals) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Completes one report: flushes a line format's file, writes a whole one.
fn finish_one(sink: Sink, totals: &Totals) -> Result<(), String> {
    match sink {
        Sink::Lines { mut out, path, .. } => out
            .flush()
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        Sink::Junit {
            spool,
            spool_path,
            target,
        } => {
            let assembled = assemble_junit(spool, &spool_path, &target, totals);
            let _ = fs::remove_file(&spool_path);
            assembled
        }
        Sink::Markdown {
            failures,
            changes,
            target,
        } => target.write(&markdown::document(totals, &failures, &changes)),
        Sink::Summary { target } => target.write(&format!("{}\n", totals.to_json())),
    }
}

/// Head, the spooled test cases, tail: into the temporary file, which then replaces the target.
fn assemble_junit(
    spool: BufWriter<File>,
    spool_path: &Path,
    target: &Target,
    totals: &Totals,
) -> Result<(), String> {
    let spooled = |e: io::Error| format!("cannot read back {}: {e}", spool_path.display());
    spool.into_inner().map_err(|e| spooled(e.into_error()))?;
    let mut cases = Spooled {
        file: File::open(spool_path).map_err(spooled)?,
        path: spool_path,
    };
    target.write_with(|out| {
        out.write_all(junit::head(totals).as_bytes())?;
        io::copy(&mut cases, out)?;
        out.write_all(junit::tail(totals).as_bytes())
    })
}

/// The spooled test cases being read back: a read error names the spool, where `write_with`
/// would put it down to the target.
struct Spooled<'a> {
    file: File,
    path: &'a Path,
}

impl Read for Spooled<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read back {}: {e}", self.path.display()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Failure, Fetched, Timeline};

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fetchall-report-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn outcomes() -> Vec<Outcome> {
        let ok = Outcome {
            url: "http://a/".into(),
            result: Ok(Fetched::plain(3, 200)),
            timeline: Timeline::default(),
        };
        let failed = Outcome {
            url: "http://b/".into(),
            result: Err(Failure::new(
                crate::output::FailureKind::Fetch(fetchall::fetch::ErrorKind::Status),
                "HTTP Error 500: Internal Server Error",
            )),
            timeline: Timeline::default(),
        };
        vec![ok, failed]
    }

    #[test]
    fn report_specs_name_a_format_and_a_file() {
        let spec: ReportSpec = "junit:out/results.xml".parse().unwrap();
        assert_eq!(
            (spec.format, spec.path),
            (Format::Junit, "out/results.xml".into())
        );
        let spec: ReportSpec = "JSON:c:x".parse().unwrap();
        assert_eq!((spec.format, spec.path), (Format::Jsonl, "c:x".into()));
        for bad in ["junit", "xml:a.xml", "csv:"] {
            let err = bad.parse::<ReportSpec>().unwrap_err();
            assert!(
                err.contains("junit") || err.contains("no file"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn every_report_is_written_and_the_whole_ones_only_at_the_end() {
        let dir = scratch("all");
        let specs: Vec<ReportSpec> = ["junit:r.xml", "markdown:r.md", "csv:r.csv", "jsonl:r.jsonl"]
            .iter()
            .map(|s| {
                let (f, p) = s.split_once(':').unwrap();
                format!("{f}:{}", dir.join(p).display()).parse().unwrap()
            })
            .collect();
        let summary = dir.join("summary.json");
        let mut reports = Reports::open(&specs, None, Some(&summary), false).unwrap();
        for outcome in outcomes() {
            reports.record(&outcome, None, None).unwrap();
        }
        assert!(
            !dir.join("r.xml").exists(),
            "JUnit appears only when complete"
        );
        assert!(!dir.join("r.md").exists());
        let mut summary_of_run = Summary::default();
        for outcome in outcomes() {
            summary_of_run.record(&outcome);
        }
        let totals = Totals::new(&summary_of_run, Duration::from_secs(1), false, None);
        reports.finish(&totals).unwrap();
        let xml = fs::read_to_string(dir.join("r.xml")).unwrap();
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 2);
        assert!(xml.ends_with("</testsuites>\n"));
        let md = fs::read_to_string(dir.join("r.md")).unwrap();
        assert!(md.starts_with("### ❌ fetchall: 1 ok, 1 failed"), "{md}");
        let csv = fs::read_to_string(dir.join("r.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3);
        let jsonl = fs::read_to_string(dir.join("r.jsonl")).unwrap();
        assert_eq!(jsonl.lines().count(), 2);
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
        assert_eq!(
            (json["total"].as_u64(), json["failed"].as_u64()),
            (Some(2), Some(1))
        );
        // Nothing is left behind but the reports.
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["r.csv", "r.jsonl", "r.md", "r.xml", "summary.json"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_report_in_a_missing_directory_fails_up_front() {
        let dir = scratch("missing").join("no-such-dir");
        for format in ["junit", "csv"] {
            let spec = format!("{format}:{}", dir.join("r").display())
                .parse()
                .unwrap();
            let err = Reports::open(&[spec], None, None, false).unwrap_err();
            assert!(err.starts_with("cannot write "), "{err}");
        }
    }

    #[test]
    fn the_summary_object_has_counts_percentiles_and_wall_time() {
        let totals = Totals {
            ok: 3,
            failed: 1,
            wall: Duration::from_micros(1_500_250),
            p50: Some(Duration::from_millis(2)),
            ..Totals::default()
        };
        assert_eq!(
            totals.to_json(),
            serde_json::json!({
                "total": 4, "ok": 3, "failed": 1, "not_run": 0, "interrupted": false,
                "wall_ms": 1500.25,
                "fetch_ms": {"p50": 2.0, "p95": null, "p99": null}, "baseline": null,
            })
        );
    }

    #[test]
    fn jsonl_lines_gain_the_baseline_field_only_with_a_baseline() {
        let outcome = &outcomes()[0];
        let plain = line(Format::Jsonl, outcome, None).unwrap();
        assert!(!plain.contains("baseline"));
        let limits = crate::baseline::Thresholds {
            size_change_pct: 20.0,
            slower_factor: 2.0,
        };
        let record = crate::baseline::Record::new(true, Some(200), Some(3), None);
        let change = crate::baseline::compare(None, record, limits);
        let with: serde_json::Value =
            serde_json::from_str(&line(Format::Jsonl, outcome, Some(&change)).unwrap()).unwrap();
        assert_eq!(with["baseline"]["changes"][0], "added");
        assert_eq!(line(Format::Junit, outcome, None), None);
        assert_eq!(preamble(Format::Csv, true).unwrap(), csv::header(true));
        assert_eq!(preamble(Format::Text, true), None);
    }
}
