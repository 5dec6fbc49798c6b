//! `--baseline PREV.jsonl`: what changed since an earlier run's JSON lines.
//!
//! The earlier run is loaded as a compact map from a 64-bit hash of each URL to a 16-byte
//! [`Record`] (ok, status, bytes, fetch time): no URL text is kept, so a baseline of ten
//! million URLs costs a few hundred megabytes, not gigabytes (README: "Comparing with the last
//! run"). Each result of this run takes its URL's entry out of the map as it is printed and is
//! compared with it ([`Baseline::compare`]): newly failing, recovered, another status, a body
//! size changed by more than `--size-change`, slower by more than `--slower`, or added. The
//! entries left at the end are the removed URLs; their names are found by reading the
//! baseline file a second time ([`Baseline::finish`]), so they too cost no memory.
//!
//! A URL listed several times is matched occurrence by occurrence, in the order of the lines
//! of each file: the first result for it in this run with the first line for it in the
//! baseline, and so on. Extra occurrences are added or removed. (Without `--ordered` both runs
//! print in completion order, which for a repeated URL is any order: use `--ordered` on both
//! runs when duplicates matter.)

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fetchall::repr;

use crate::output::Outcome;

/// A page is "slower" only if it also took this much longer: below that, a factor of 2 is
/// scheduling noise (1ms against 2ms).
pub(crate) const SLOWER_MIN: Duration = Duration::from_millis(50);

/// How many changes the report on stderr lists one by one; the counts cover all of them.
pub(crate) const SHOWN: usize = 20;

/// What one URL's result was in the baseline: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// Fetched in full with an accepted status.
    pub(crate) ok: bool,
    /// The HTTP status; 0 when there was none.
    status: u16,
    /// Body bytes; `u64::MAX` when not fetched.
    bytes: u64,
    /// Fetch time in microseconds, saturating; `u32::MAX` when there was none.
    elapsed_us: u32,
}

impl Record {
    /// A record from a result's facts.
    pub(crate) fn new(
        ok: bool,
        status: Option<u16>,
        bytes: Option<u64>,
        elapsed: Option<Duration>,
    ) -> Self {
        Record {
            ok,
            status: status.unwrap_or(0),
            bytes: bytes.unwrap_or(u64::MAX),
            elapsed_us: elapsed.map_or(u32::MAX, |d| {
                u32::try_from(d.as_micros()).unwrap_or(u32::MAX - 1)
            }),
        }
    }

    /// What this run's `outcome` would be recorded as.
    fn of(outcome: &Outcome) -> Record {
        match &outcome.result {
            Ok(page) => Record::new(
                true,
                Some(page.status),
                Some(page.bytes),
                outcome.timeline.elapsed,
            ),
            Err(failure) => Record::new(false, failure.status, None, outcome.timeline.elapsed),
        }
    }

    /// The HTTP status, if there was one.
    pub(crate) fn status(&self) -> Option<u16> {
        (self.status != 0).then_some(self.status)
    }

    /// Body bytes, if the page was fetched.
    pub(crate) fn bytes(&self) -> Option<u64> {
        (self.bytes != u64::MAX).then_some(self.bytes)
    }

    /// The fetch time, if there was one.
    pub(crate) fn elapsed(&self) -> Option<Duration> {
        (self.elapsed_us != u32::MAX).then(|| Duration::from_micros(self.elapsed_us.into()))
    }

    /// The JSON form, for the `baseline` field's `was`.
    pub(crate) fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.ok,
            "status": self.status(),
            "bytes": self.bytes(),
            "elapsed_ms": self.elapsed().map(crate::output::millis),
        })
    }
}

/// One kind of change; a URL may have several (another status and another size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Fails now, and did not fail in the baseline (it was fine, or not there).
    NewFailure,
    /// Fine now, failed in the baseline.
    Recovered,
    /// Another HTTP status than in the baseline.
    Status,
    /// The body size changed by more than `--size-change`.
    Size,
    /// Slower by more than `--slower` times (and [`SLOWER_MIN`]).
    Slower,
    /// Not in the baseline.
    Added,
}

impl Kind {
    /// Every kind, in the order reports list them.
    pub(crate) const ALL: [Kind; 6] = [
        Kind::NewFailure,
        Kind::Recovered,
        Kind::Status,
        Kind::Size,
        Kind::Slower,
        Kind::Added,
    ];

    /// The name in JSON, CSV and JUnit: `new_failure`, `recovered`, ...
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::NewFailure => "new_failure",
            Kind::Recovered => "recovered",
            Kind::Status => "status",
            Kind::Size => "size",
            Kind::Slower => "slower",
            Kind::Added => "added",
        }
    }

    /// The words in the reports for people: `newly failing`, `recovered`, ...
    pub(crate) fn words(self) -> &'static str {
        match self {
            Kind::NewFailure => "newly failing",
            Kind::Recovered => "recovered",
            Kind::Status => "status changed",
            Kind::Size => "size changed",
            Kind::Slower => "slower",
            Kind::Added => "added",
        }
    }

    /// Its bit in [`Change`]'s set.
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// How one result compares with the baseline: its kinds of change (none: unchanged) and what
/// the baseline had for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    kinds: u8,
    /// The baseline's record; `None` for an added URL.
    pub(crate) was: Option<Record>,
}

impl Change {
    /// Whether it is of kind `kind`.
    pub(crate) fn is(&self, kind: Kind) -> bool {
        self.kinds & kind.bit() != 0
    }

    /// Its kinds, in [`Kind::ALL`] order.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        Kind::ALL.into_iter().filter(|&k| self.is(k))
    }

    /// `new_failure,status`: the kinds' names joined by commas; empty when unchanged.
    pub(crate) fn names(&self) -> String {
        self.kinds().map(Kind::name).collect::<Vec<_>>().join(",")
    }

    /// The `baseline` field of a JSON line: `{"changes": [...], "was": {...} or null}`.
    pub(crate) fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "changes": self.kinds().map(Kind::name).collect::<Vec<_>>(),
            "was": self.was.map(Record::to_json),
        })
    }
}

/// When a difference counts as a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Thresholds {
    /// `--size-change`: percent of the baseline's size.
    pub(crate) size_change_pct: f64,
    /// `--slower`: a factor of the baseline's fetch time.
    pub(crate) slower_factor: f64,
}

/// How `now` compares with `was` (`None`: the URL is new).
pub(crate) fn compare(was: Option<Record>, now: Record, limits: Thresholds) -> Change {
    let mut change = Change { kinds: 0, was };
    let mut mark = |kind: Kind| change.kinds |= kind.bit();
    let Some(was) = was else {
        mark(Kind::Added);
        if !now.ok {
            mark(Kind::NewFailure);
        }
        return change;
    };
    match (was.ok, now.ok) {
        (true, false) => mark(Kind::NewFailure),
        (false, true) => mark(Kind::Recovered),
        _ => {}
    }
    if was.status() != now.status() && was.status().is_some() && now.status().is_some() {
        mark(Kind::Status);
    }
    if let (Some(before), Some(after)) = (was.bytes(), now.bytes()) {
        let limit = before as f64 * limits.size_change_pct / 100.0;
        if before.abs_diff(after) as f64 > limit {
            mark(Kind::Size);
        }
    }
    if let (Some(before), Some(after)) = (was.elapsed(), now.elapsed()) {
        if after.as_secs_f64() > before.as_secs_f64() * limits.slower_factor
            && after.saturating_sub(before) >= SLOWER_MIN
        {
            mark(Kind::Slower);
        }
    }
    change
}

/// The 64-bit hash a URL is known by in the map. Fixed keys: the same URL hashes the same in
/// every run. Two URLs of ten million collide with a chance of about 3 in a million.
fn url_hash(url: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    url.hash(&mut hasher);
    hasher.finish()
}

/// The counts of each kind of change over a run, and the URLs removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Per kind, in [`Kind::ALL`] order.
    pub(crate) kinds: [u64; 6],
    /// In the baseline, not in this run.
    pub(crate) removed: u64,
    /// Compared and found unchanged.
    pub(crate) unchanged: u64,
}

impl Counts {
    /// How many results were of `kind`.
    pub(crate) fn of(&self, kind: Kind) -> u64 {
        self.kinds[kind as usize]
    }

    /// The JSON object for `--summary-json`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for kind in Kind::ALL {
            map.insert(kind.name().to_owned(), self.of(kind).into());
        }
        map.insert("removed".into(), self.removed.into());
        map.insert("unchanged".into(), self.unchanged.into());
        serde_json::Value::Object(map)
    }
}

/// The earlier run, as far as it is still unmatched, and what was found so far.
#[derive(Debug)]
pub(crate) struct Baseline {
    path: PathBuf,
    limits: Thresholds,
    /// The first unmatched occurrence of each URL.
    first: HashMap<u64, Record>,
    /// Further occurrences of URLs listed more than once, in file order.
    more: HashMap<u64, VecDeque<Record>>,
    counts: Counts,
    /// Results with at least one change.
    changed: u64,
    /// The first [`SHOWN`] changes, worded for stderr.
    shown: Vec<String>,
}

/// What [`Baseline::finish`] returns: the counts, and the stderr report's lines.
#[derive(Debug)]
pub(crate) struct Findings {
    /// Every kind of change, counted.
    pub(crate) counts: Counts,
    /// The report for stderr, first line a summary.
    pub(crate) report: Vec<String>,
    /// The removed URLs' names, at most [`SHOWN`] of them.
    pub(crate) removed: Vec<String>,
}

impl Baseline {
    /// Reads the JSON lines of an earlier run (`--format jsonl`). Lines that are not a JSON
    /// object with a `url` string are skipped and counted in `skipped`, so a run killed in the
    /// middle of a line still serves as a baseline.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or read.
    pub(crate) fn load(path: &Path, limits: Thresholds) -> Result<(Baseline, u64), String> {
        let shown = path.display();
        let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
        let mut baseline = Baseline {
            path: path.to_owned(),
            limits,
            first: HashMap::new(),
            more: HashMap::new(),
            counts: Counts::default(),
            changed: 0,
            shown: Vec::new(),
        };
        let mut skipped = 0;
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| format!("cannot read {shown}: {e}"))?;
            let Some((url, record)) = parse_line(&line) else {
                skipped += u64::from(!line.trim_ascii().is_empty());
                continue;
            };
            match baseline.first.entry(url_hash(&url)) {
                Entry::Vacant(slot) => {
                    slot.insert(record);
                }
                Entry::Occupied(slot) => {
                    baseline
                        .more
                        .entry(*slot.key())
                        .or_default()
                        .push_back(record);
                }
            }
        }
        Ok((baseline, skipped))
    }

    /// Compares one result with the baseline's next unmatched occurrence of its URL, and takes
    /// that occurrence out.
    pub(crate) fn compare(&mut self, outcome: &Outcome) -> Change {
        let hash = url_hash(&outcome.url);
        let was = self.first.remove(&hash);
        if was.is_some() {
            if let Entry::Occupied(mut queue) = self.more.entry(hash) {
                if let Some(next) = queue.get_mut().pop_front() {
                    self.first.insert(hash, next);
                }
                if queue.get().is_empty() {
                    queue.remove();
                }
            }
        }
        let change = compare(was, Record::of(outcome), self.limits);
        let mut any = false;
        for kind in change.kinds() {
            any = true;
            self.counts.kinds[kind as usize] += 1;
        }
        if !any {
            self.counts.unchanged += 1;
        } else {
            self.changed += 1;
            if self.shown.len() < SHOWN {
                self.shown.push(describe(outcome, &change));
            }
        }
        change
    }

    /// Ends the comparison: the entries left are the removed URLs, named by a second read of
    /// the baseline file (a file that changed meanwhile names fewer).
    pub(crate) fn finish(mut self) -> Findings {
        let left = self.first.len() + self.more.values().map(VecDeque::len).sum::<usize>();
        self.counts.removed = left as u64;
        let mut removed = Vec::new();
        if left > 0 {
            if let Ok(file) = File::open(&self.path) {
                for line in BufReader::new(file).split(b'\n').map_while(Result::ok) {
                    if removed.len() >= SHOWN || self.first.is_empty() {
                        break;
                    }
                    if let Some((url, _)) = parse_line(&line) {
                        if self.first.remove(&url_hash(&url)).is_some() {
                            removed.push(url);
                        }
                    }
                }
            }
        }
        let mut report = vec![self.headline()];
        report.extend(self.shown.iter().map(|line| format!("  {line}")));
        let listed = self.shown.len() as u64;
        let changed = self.changed;
        for url in &removed {
            report.push(format!("  removed: {}", repr(url)));
        }
        let unlisted = changed.saturating_sub(listed) + self.counts.removed - removed.len() as u64;
        if unlisted > 0 {
            report.push(format!("  and {unlisted} more"));
        }
        Findings {
            counts: self.counts,
            report,
            removed,
        }
    }

    /// `fetchall: since prev.jsonl: 1 newly failing, 2 added, 1 removed (40 unchanged)`.
    fn headline(&self) -> String {
        let counts = &self.counts;
        let mut parts: Vec<String> = Kind::ALL
            .into_iter()
            .filter(|&k| counts.of(k) > 0)
            .map(|k| format!("{} {}", counts.of(k), k.words()))
            .collect();
        if counts.removed > 0 {
            parts.push(format!("{} removed", counts.removed));
        }
        let mut line = format!("fetchall: since {}: ", self.path.display());
        if parts.is_empty() {
            line.push_str("no changes");
        } else {
            line.push_str(&parts.join(", "));
        }
        let _ = write!(line, " ({} unchanged)", counts.unchanged);
        line
    }
}

/// A baseline line's URL and record: `None` for anything but a JSON object with a `url`.
fn parse_line(line: &[u8]) -> Option<(String, Record)> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let url = value.get("url")?.as_str()?.to_owned();
    let ok = value.get("ok").and_then(serde_json::Value::as_bool)?;
    let status = value
        .get("status")
        .and_then(serde_json::Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    let bytes = value.get("bytes").and_then(serde_json::Value::as_u64);
    let elapsed = value
        .get("elapsed_ms")
        .and_then(serde_json::Value::as_f64)
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok());
    Some((url, Record::new(ok, status, bytes, elapsed)))
}

/// One change, worded for stderr: `newly failing: 'URL' HTTP Error 500: ... (was 200)`.
fn describe(outcome: &Outcome, change: &Change) -> String {
    let kinds: Vec<&str> = change.kinds().map(Kind::words).collect();
    let mut line = format!("{}: {}", kinds.join(", "), repr(&outcome.url));
    let now = Record::of(outcome);
    if let Err(failure) = &outcome.result {
        let _ = write!(line, " {}", failure.message);
    }
    let Some(was) = change.was else {
        return line;
    };
    let mut then = Vec::new();
    if change.is(Kind::NewFailure) || change.is(Kind::Recovered) || change.is(Kind::Status) {
        then.push(match was.status() {
            Some(status) => format!("status {status}"),
            None => "no status".to_owned(),
        });
    }
    if let (true, Some(before), Some(after)) = (change.is(Kind::Size), was.bytes(), now.bytes()) {
        then.push(format!("{before} bytes, now {after}"));
    }
    if let (true, Some(before), Some(after)) =
        (change.is(Kind::Slower), was.elapsed(), now.elapsed())
    {
        then.push(format!("{before:.2?}, now {after:.2?}"));
    }
    if !then.is_empty() {
        let _ = write!(line, " (was {})", then.join("; "));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Failure, Fetched, Timeline};

    const LIMITS: Thresholds = Thresholds {
        size_change_pct: 20.0,
        slower_factor: 2.0,
    };

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    fn fine(bytes: u64, elapsed: Option<Duration>) -> Record {
        Record::new(true, Some(200), Some(bytes), elapsed)
    }

    fn names(change: Change) -> String {
        change.names()
    }

    #[test]
    fn a_record_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Record>(), 16);
    }

    #[test]
    fn each_kind_of_change_is_found() {
        let failed = Record::new(false, Some(500), None, ms(5));
        let cmp = |was, now| names(compare(was, now, LIMITS));
        assert_eq!(cmp(Some(fine(100, ms(10))), fine(119, ms(19))), "");
        assert_eq!(cmp(Some(fine(100, ms(10))), failed), "new_failure,status");
        assert_eq!(cmp(Some(failed), fine(100, ms(10))), "recovered,status");
        let moved = Record::new(true, Some(203), Some(100), ms(10));
        assert_eq!(cmp(Some(fine(100, ms(10))), moved), "status");
        assert_eq!(cmp(Some(fine(100, ms(10))), fine(121, ms(10))), "size");
        assert_eq!(cmp(Some(fine(100, ms(10))), fine(79, ms(10))), "size");
        assert_eq!(cmp(Some(fine(0, ms(10))), fine(1, ms(10))), "size");
        assert_eq!(cmp(Some(fine(100, ms(100))), fine(100, ms(201))), "slower");
        // Twice as slow but only 20ms more: noise.
        assert_eq!(cmp(Some(fine(100, ms(20))), fine(100, ms(40))), "");
        assert_eq!(cmp(None, fine(1, None)), "added");
        assert_eq!(cmp(None, failed), "new_failure,added");
        // A connection refused both times: no status on either side, no change.
        let refused = Record::new(false, None, None, ms(1));
        assert_eq!(cmp(Some(refused), refused), "");
        assert_eq!(cmp(Some(refused), failed), "");
    }

    #[test]
    fn thresholds_are_the_users() {
        let strict = Thresholds {
            size_change_pct: 0.0,
            slower_factor: 1.1,
        };
        let change = compare(Some(fine(100, ms(100))), fine(101, ms(200)), strict);
        assert_eq!(change.names(), "size,slower");
        assert_eq!(
            change.to_json(),
            serde_json::json!({
                "changes": ["size", "slower"],
                "was": {"ok": true, "status": 200, "bytes": 100, "elapsed_ms": 100.0},
            })
        );
        let added = compare(None, fine(1, None), strict).to_json();
        assert_eq!(
            added,
            serde_json::json!({"changes": ["added"], "was": null})
        );
    }

    fn outcome(url: &str, result: Result<Fetched, Failure>, elapsed: u64) -> Outcome {
        Outcome {
            url: url.to_owned(),
            result,
            timeline: Timeline {
                elapsed: ms(elapsed),
                ..Timeline::default()
            },
        }
    }

    fn ok(url: &str, bytes: u64, elapsed: u64) -> Outcome {
        let page = Fetched::plain(bytes, 200);
        outcome(url, Ok(page), elapsed)
    }

    fn status(url: &str, code: u16) -> Outcome {
        let failure = Failure {
            message: format!("HTTP Error {code}: X"),
            status: Some(code),
            attempts: Some(1),
            ..Failure::new(
                crate::output::FailureKind::Fetch(fetchall::fetch::ErrorKind::Status),
                "",
            )
        };
        outcome(url, Err(failure), 1)
    }

    fn baseline_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "fetchall-baseline-{name}-{}.jsonl",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn line(url: &str, ok: bool, status: u16, bytes: Option<u64>, elapsed: f64) -> String {
        serde_json::json!({
            "url": url, "ok": ok, "status": status, "bytes": bytes, "elapsed_ms": elapsed,
            "error": null, "attempts": 1, "queued_ms": 0.0, "started_ms": 0.0, "worker": "w",
        })
        .to_string()
            + "\n"
    }

    #[test]
    fn a_run_against_its_baseline() {
        let text = [
            line("http://a/", true, 200, Some(10), 5.0),
            line("http://b/", false, 404, None, 1.0),
            line("http://gone/", true, 200, Some(1), 1.0),
            "{\"url\": \"http://half".to_owned(),
            "\n".to_owned(),
            line("http://c/", true, 200, Some(10), 5.0),
        ]
        .concat();
        let path = baseline_file("run", &text);
        let (mut baseline, skipped) = Baseline::load(&path, LIMITS).unwrap();
        assert_eq!(skipped, 1, "the cut line");
        assert_eq!(
            names(baseline.compare(&status("http://a/", 500))),
            "new_failure,status"
        );
        assert_eq!(
            names(baseline.compare(&ok("http://b/", 10, 5))),
            "recovered,status"
        );
        assert_eq!(names(baseline.compare(&ok("http://c/", 10, 5))), "");
        assert_eq!(names(baseline.compare(&ok("http://new/", 1, 1))), "added");
        let findings = baseline.finish();
        let _ = std::fs::remove_file(&path);
        assert_eq!(findings.counts.of(Kind::NewFailure), 1);
        assert_eq!(findings.counts.of(Kind::Recovered), 1);
        assert_eq!(findings.counts.of(Kind::Status), 2);
        assert_eq!(findings.counts.of(Kind::Added), 1);
        assert_eq!((findings.counts.removed, findings.counts.unchanged), (1, 1));
        assert_eq!(findings.removed, ["http://gone/"]);
        let report = findings.report.join("\n");
        let want = format!(
            "fetchall: since {}: 1 newly failing, 1 recovered, 2 status changed, 1 added, \
             1 removed (1 unchanged)\n\
             \x20 newly failing, status changed: 'http://a/' HTTP Error 500: X (was status 200)\n\
             \x20 recovered, status changed: 'http://b/' (was status 404)\n\
             \x20 added: 'http://new/'\n\
             \x20 removed: 'http://gone/'",
            path.display()
        );
        assert_eq!(report, want);
    }

    #[test]
    fn repeated_urls_match_occurrence_by_occurrence() {
        let text = [
            line("http://a/", true, 200, Some(10), 5.0),
            line("http://a/", true, 200, Some(99), 5.0),
            line("http://a/", false, 500, None, 5.0),
        ]
        .concat();
        let path = baseline_file("dup", &text);
        let (mut baseline, _) = Baseline::load(&path, LIMITS).unwrap();
        assert_eq!(names(baseline.compare(&ok("http://a/", 10, 5))), "");
        assert_eq!(names(baseline.compare(&ok("http://a/", 99, 5))), "");
        assert_eq!(
            names(baseline.compare(&ok("http://a/", 99, 5))),
            "recovered,status"
        );
        assert_eq!(names(baseline.compare(&ok("http://a/", 99, 5))), "added");
        let findings = baseline.finish();
        assert_eq!(findings.counts.removed, 0);
        let (mut baseline, _) = Baseline::load(&path, LIMITS).unwrap();
        baseline.compare(&ok("http://a/", 10, 5));
        let findings = baseline.finish();
        let _ = std::fs::remove_file(&path);
        assert_eq!(findings.counts.removed, 2);
        assert_eq!(findings.removed, ["http://a/"], "named once");
        assert!(findings.report.last().unwrap().ends_with("and 1 more"));
    }

    #[test]
    fn the_stderr_report_is_short() {
        let text: String = (0..100)
            .map(|i| line(&format!("http://h/{i}"), true, 200, Some(10), 5.0))
            .collect();
        let path = baseline_file("short", &text);
        let (mut baseline, _) = Baseline::load(&path, LIMITS).unwrap();
        for i in 0..100 {
            baseline.compare(&status(&format!("http://h/{i}"), 503));
        }
        let findings = baseline.finish();
        let _ = std::fs::remove_file(&path);
        assert_eq!(findings.report.len(), 1 + SHOWN + 1);
        assert_eq!(findings.report.last().unwrap(), "  and 80 more");
    }

    #[test]
    fn an_unchanged_run_says_so_and_a_missing_baseline_is_an_error() {
        let path = baseline_file("same", &line("http://a/", true, 200, Some(1), 1.0));
        let (mut baseline, _) = Baseline::load(&path, LIMITS).unwrap();
        baseline.compare(&ok("http://a/", 1, 1));
        let findings = baseline.finish();
        let _ = std::fs::remove_file(&path);
        assert!(
            findings.report[0].ends_with(": no changes (1 unchanged)"),
            "{:?}",
            findings.report
        );
        let err = Baseline::load(&path, LIMITS).unwrap_err();
        assert!(err.starts_with("cannot open "), "{err}");
    }
}
