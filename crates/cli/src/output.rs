//! What the CLI prints: one line per URL ([`format_line`] for the Python example's text,
//! [`format_json`] for `--format json`), Python's `repr` of the URL, and the [`Summary`] line.
//!
//! Everything here is a pure function of an [`Outcome`], so the exact bytes are unit-tested
//! below against what Python prints. Only the main thread calls these and writes the result, so
//! lines never interleave.

use fetchall::fetch::{ErrorKind, Facts};
use fetchall::repr;
use std::fmt::Write as _;
use std::time::Duration;

/// How one input line ended: the URL as given, what happened, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The line as read (trimmed; invalid UTF-8 shown as U+FFFD).
    pub(crate) url: String,
    /// The page, or why there is none.
    pub(crate) result: Result<Fetched, Failure>,
    /// When it was queued, started and how long the fetch took.
    pub(crate) timeline: Timeline,
}

/// A page that was fetched in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetched {
    /// Body length as received: Python's `len(conn.read())`.
    pub(crate) bytes: u64,
    /// The final response's status code.
    pub(crate) status: u16,
    /// Attempts made ([`fetchall::fetch::Page::attempts`]): more than 1 after retries.
    pub(crate) attempts: u32,
    /// The final URL, the connection, the phase times ([`fetchall::fetch::Fetcher::fetch`]).
    pub(crate) facts: Facts,
    /// The TLS version and the server's certificate, for an `https` page.
    pub(crate) tls: Option<Certificate>,
}

#[cfg(test)]
impl Fetched {
    /// A page of `bytes` bytes with `status`, at the first attempt, over plain HTTP: for the
    /// tests of the formatters.
    pub(crate) fn plain(bytes: u64, status: u16) -> Fetched {
        Fetched {
            bytes,
            status,
            attempts: 1,
            facts: Facts::default(),
            tls: None,
        }
    }
}

/// What an `https` connection's certificate says, as the JSON line carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Certificate {
    /// `TLSv1.3`.
    pub(crate) version: String,
    /// `CN=example.com`.
    pub(crate) subject: String,
    /// `CN=Some CA, O=Some Org`.
    pub(crate) issuer: String,
    /// RFC 3339, UTC: `2026-12-06T21:28:43Z`.
    pub(crate) not_after: String,
    /// Whole days left when it was fetched; negative once expired (only with `--insecure`).
    pub(crate) days_left: i64,
}

impl Certificate {
    /// The facts of `info`, with the days left counted from `now`.
    pub(crate) fn new(info: &fetchall::fetch::TlsInfo, now: std::time::SystemTime) -> Certificate {
        Certificate {
            version: info.version.clone(),
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            not_after: info.not_after_rfc3339(),
            days_left: info.days_left(now),
        }
    }
}

/// Why a line produced no page: the text printed after `generated an exception: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// One line, worded like Python's where Python has words for it.
    pub(crate) message: String,
    /// The HTTP status, when the server answered with an error status.
    pub(crate) status: Option<u16>,
    /// Attempts made, when the fetch ran to its end ([`fetchall::fetch::FetchError::attempts`]; 0: none
    /// could be made). `None` for a line that was not fetched, or not to the end.
    pub(crate) attempts: Option<u32>,
    /// What the answer's `Retry-After` asked for ([`fetchall::fetch::FetchError::retry_after`]): how
    /// long the dispatcher pauses the host.
    pub(crate) retry_after: Option<Duration>,
    /// What sort of failure: the JSON's `error_kind`.
    pub(crate) kind: FailureKind,
    /// What the fetch learnt before it failed (all `None` if it never ran). Boxed: most
    /// failures have none, and a `Result` is as large as its larger side.
    pub(crate) facts: Box<Facts>,
    /// The certificate of the connection the failing response came on (an HTTP error status
    /// over https, a `--cert-expiry` failure). Boxed: a failure is the `Err` of every fetch, and
    /// most have none.
    pub(crate) tls: Option<Box<Certificate>>,
}

impl Failure {
    /// A failure with no HTTP status, of a line that was not fetched to the end.
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: None,
            attempts: None,
            retry_after: None,
            kind,
            facts: Box::default(),
            tls: None,
        }
    }

    /// The failure of a line whose task never ran: `cancelled`.
    pub(crate) fn cancelled() -> Failure {
        Failure::new(FailureKind::Cancelled, "cancelled")
    }

    /// The line's task never ran: cancelled before it started, after an interruption. Counted
    /// apart in the summary ("not run"), skipped in JUnit, left out of Markdown's failures;
    /// printed as any failure.
    pub(crate) fn never_ran(&self) -> bool {
        self.kind == FailureKind::Cancelled
    }
}

/// What sort of failure a line had. [`FailureKind::as_str`] is the JSON's `error_kind`, a
/// stable name, so that filters need not match messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The fetch failed: `dns`, `connect`, `status`, `check`, ... ([`ErrorKind::as_str`]).
    Fetch(ErrorKind),
    /// `cancelled`: queued, and never started because the run was interrupted.
    Cancelled,
    /// `interrupted`: being fetched when the run was interrupted.
    Interrupted,
    /// `input`: a line that is no URL to fetch (invalid UTF-8, too long).
    Input,
    /// `panicked`: the task panicked, which is a fetchall bug.
    Panicked,
}

impl FailureKind {
    /// The stable name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailureKind::Fetch(kind) => kind.as_str(),
            FailureKind::Cancelled => "cancelled",
            FailureKind::Interrupted => "interrupted",
            FailureKind::Input => "input",
            FailureKind::Panicked => "panicked",
        }
    }
}

/// When a line's task was queued and started (both since the run started), how long its fetch
/// took, and on which worker thread. Recorded inside the task, so it shows what really happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Timeline {
    /// Submitted to the executor, since the run started.
    pub(crate) queued: Duration,
    /// Picked up by a worker, since the run started; `None` if it never started.
    pub(crate) started: Option<Duration>,
    /// How long the fetch took; `None` when nothing was fetched (a rejected line, a cancelled
    /// or interrupted task).
    pub(crate) elapsed: Option<Duration>,
    /// The name of the thread that ran it.
    pub(crate) worker: Option<String>,
}

/// The Python example's line: `'URL' page is N bytes` or `'URL' generated an exception: ERR`.
pub(crate) fn format_line(outcome: &Outcome) -> String {
    // Appended to `repr`'s string rather than `format!`ted anew with it as an argument, which
    // copied it through the formatter a second time (`BENCHMARKS.md`, "The fetcher's own
    // work").
    let mut line = repr(&outcome.url);
    match &outcome.result {
        Ok(page) => {
            // Writing to a `String` cannot fail.
            let _ = write!(line, " page is {} bytes", page.bytes);
        }
        Err(failure) => {
            line.push_str(" generated an exception: ");
            line.push_str(&failure.message);
        }
    }
    line
}

/// One JSON object on one line, for `--format jsonl`. Lines with a TLS certificate (an https
/// answer) also carry `tls_version`, `cert_subject`, `cert_issuer`, `cert_not_after` and
/// `cert_days_left`.
pub(crate) fn format_json(outcome: &Outcome) -> String {
    json_value(outcome).to_string()
}

/// The object [`format_json`] prints, for a caller that adds to it (`--baseline`).
pub(crate) fn json_value(outcome: &Outcome) -> serde_json::Value {
    let (ok, bytes, status, error, attempts, kind, facts, tls) = match &outcome.result {
        Ok(page) => (
            true,
            Some(page.bytes),
            Some(page.status),
            None,
            Some(page.attempts),
            None,
            &page.facts,
            page.tls.as_ref(),
        ),
        Err(f) => (
            false,
            None,
            f.status,
            Some(f.message.as_str()),
            f.attempts,
            Some(f.kind.as_str()),
            &*f.facts,
            f.tls.as_deref(),
        ),
    };
    let t = &outcome.timeline;
    let mut line = serde_json::json!({
        "url": outcome.url,
        "ok": ok,
        "bytes": bytes,
        "status": status,
        "error": error,
        "error_kind": kind,
        "attempts": attempts,
        "elapsed_ms": t.elapsed.map(millis),
        "queued_ms": millis(t.queued),
        "started_ms": t.started.map(millis),
        "worker": t.worker,
        "final_url": facts.final_url,
        // No response, no redirect count.
        "redirects": facts.final_url.is_some().then_some(facts.redirects),
        "content_type": facts.content_type,
        "http_version": facts.http_version,
        "remote_addr": facts.remote_addr.map(|a| a.to_string()),
        "dns_ms": facts.dns.map(millis),
        "connect_ms": facts.connect.map(millis),
        "tls_ms": facts.tls.map(millis),
        "ttfb_ms": facts.ttfb.map(millis),
    });
    if let (Some(cert), Some(fields)) = (tls, line.as_object_mut()) {
        fields.insert("tls_version".into(), cert.version.clone().into());
        fields.insert("cert_subject".into(), cert.subject.clone().into());
        fields.insert("cert_issuer".into(), cert.issuer.clone().into());
        fields.insert("cert_not_after".into(), cert.not_after.clone().into());
        fields.insert("cert_days_left".into(), cert.days_left.into());
    }
    line
}

/// `d` in milliseconds, to the microsecond: how every machine format writes a time.
pub(crate) fn millis(d: Duration) -> f64 {
    // Whole microseconds first, so the printed number has at most three decimals.
    d.as_micros() as f64 / 1000.0
}

/// Counts and fetch-time percentiles over a whole run, in constant memory.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    ok: u64,
    failed: u64,
    not_run: u64,
    times: Histogram,
}

impl Summary {
    /// Counts one outcome, and its fetch time if it has one.
    pub(crate) fn record(&mut self, outcome: &Outcome) {
        match &outcome.result {
            Ok(_) => self.ok += 1,
            Err(failure) if failure.never_ran() => self.not_run += 1,
            Err(_) => self.failed += 1,
        }
        if let Some(elapsed) = outcome.timeline.elapsed {
            self.times.record(elapsed);
        }
    }

    /// How many lines were fetched.
    pub(crate) fn ok(&self) -> u64 {
        self.ok
    }

    /// How many lines failed (not counting those that never ran).
    pub(crate) fn failed(&self) -> u64 {
        self.failed
    }

    /// How many lines' tasks never ran (cancelled after an interruption).
    pub(crate) fn not_run(&self) -> u64 {
        self.not_run
    }

    /// The fetch time below which a fraction `q` of the fetches took (to within 6%); `None`
    /// when nothing was fetched.
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        self.times.quantile(q)
    }

    /// The stderr line: `fetchall: 3 ok, 1 failed in 1.52s (fetch time p50 120ms, p95 1.20s)`.
    /// When the run was cut short it starts `interrupted: ` and counts the lines whose task
    /// never ran apart from those that failed: `fetchall: interrupted: 45 ok, 41 failed,
    /// 2914 not run in 2.45s`.
    pub(crate) fn line(&self, wall: Duration, interrupted: bool) -> String {
        let mut line = if interrupted {
            format!(
                "fetchall: interrupted: {} ok, {} failed, {} not run",
                self.ok, self.failed, self.not_run
            )
        } else {
            format!("fetchall: {} ok, {} failed", self.ok, self.failed)
        };
        let _ = write!(line, " in {}", human(wall));
        if let (Some(p50), Some(p95)) = (self.times.quantile(0.50), self.times.quantile(0.95)) {
            let _ = write!(line, " (fetch time p50 {}, p95 {})", human(p50), human(p95));
        }
        line
    }
}

/// A duration the way a person reads it: `0.42ms`, `120ms`, `1.20s`.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

/// Sub-buckets per power of two: values are kept to within 1/16 (6%).
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Enough buckets for any `u64` of microseconds.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// A log-linear histogram of microseconds: exact below 16µs, then 16 buckets per power of two.
/// A fixed array, so a run of ten million URLs costs what a run of ten does.
#[derive(Debug)]
struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

impl Histogram {
    fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)] += 1;
        self.total += 1;
    }

    /// The value below which a fraction `q` of the samples fall (to the bucket's precision);
    /// `None` without samples.
    fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        // The rank of the sample wanted, from 1: the smallest with at least q of all at or below.
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        let index = self.counts.iter().position(|&n| {
            seen += n;
            seen >= rank
        })?;
        Some(Duration::from_micros(midpoint(index)))
    }
}

/// The bucket of `us`: values below 2^SUB_BITS have one each; above, the power of two picks a
/// group of SUB buckets and the next SUB_BITS bits pick one of them.
fn bucket(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let group = (exp - SUB_BITS + 1) as usize;
    group * SUB + ((us >> shift) as usize - SUB)
}

/// The middle of bucket `index`'s range of values.
fn midpoint(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let group = (index / SUB) as u32;
    let shift = group - 1;
    let low = ((SUB + index % SUB) as u64) << shift;
    let width = 1u64 << shift;
    low + (width - 1) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str, bytes: u64) -> Outcome {
        Outcome {
            url: url.to_owned(),
            result: Ok(Fetched {
                bytes,
                status: 200,
                attempts: 1,
                facts: Facts::default(),
                tls: None,
            }),
            timeline: Timeline::default(),
        }
    }

    fn failed(url: &str, message: &str) -> Outcome {
        Outcome {
            url: url.to_owned(),
            result: Err(Failure::new(FailureKind::Input, message)),
            timeline: Timeline::default(),
        }
    }

    #[test]
    fn success_line_is_the_python_examples() {
        // print('%r page is %d bytes' % ('http://www.bbc.co.uk/', 1234))
        assert_eq!(
            format_line(&ok("http://www.bbc.co.uk/", 1234)),
            "'http://www.bbc.co.uk/' page is 1234 bytes"
        );
    }

    #[test]
    fn failure_line_is_the_python_examples() {
        assert_eq!(
            format_line(&failed(
                "http://some-made-up-domain.com/",
                "<urlopen error [Errno -2] Name or service not known>"
            )),
            "'http://some-made-up-domain.com/' generated an exception: \
             <urlopen error [Errno -2] Name or service not known>"
        );
    }

    #[test]
    fn json_line_has_every_field() {
        let mut facts = Facts::default();
        facts.final_url = Some("http://a/y".into());
        facts.redirects = 1;
        facts.content_type = Some("text/html".into());
        facts.http_version = Some("HTTP/1.1");
        facts.remote_addr = Some(([127, 0, 0, 1], 8080).into());
        facts.connect = Some(Duration::from_micros(250));
        facts.ttfb = Some(Duration::from_millis(3));
        let outcome = Outcome {
            url: "http://a/x".into(),
            result: Ok(Fetched {
                bytes: 42,
                status: 200,
                attempts: 2,
                facts,
                tls: None,
            }),
            timeline: Timeline {
                queued: Duration::from_micros(1500),
                started: Some(Duration::from_micros(2250)),
                elapsed: Some(Duration::from_millis(12)),
                worker: Some("fetchall_3".into()),
            },
        };
        let line = format_json(&outcome);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "url": "http://a/x", "ok": true, "bytes": 42, "status": 200, "error": null,
                "error_kind": null, "attempts": 2,
                "elapsed_ms": 12.0, "queued_ms": 1.5, "started_ms": 2.25, "worker": "fetchall_3",
                "final_url": "http://a/y", "redirects": 1, "content_type": "text/html",
                "http_version": "HTTP/1.1", "remote_addr": "127.0.0.1:8080",
                "dns_ms": null, "connect_ms": 0.25, "tls_ms": null, "ttfb_ms": 3.0,
            })
        );
        // Keys in alphabetical order, as the README shows them.
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert!(
            line.starts_with(r#"{"attempts":2,"bytes":42,"connect_ms":0.25,"#),
            "{line}"
        );
    }

    #[test]
    fn json_failure_keeps_the_status_and_message() {
        let mut outcome = failed("http://a/\n", "HTTP Error 404: Not Found");
        outcome.result = Err(Failure {
            message: "HTTP Error 404: Not Found".into(),
            status: Some(404),
            attempts: Some(1),
            retry_after: None,
            kind: FailureKind::Fetch(ErrorKind::Status),
            facts: Box::default(),
            tls: None,
        });
        let v: serde_json::Value = serde_json::from_str(&format_json(&outcome)).unwrap();
        assert_eq!(v["url"], "http://a/\n");
        assert_eq!(v["ok"], false);
        assert_eq!(v["bytes"], serde_json::Value::Null);
        assert_eq!(v["status"], 404);
        assert_eq!(v["error"], "HTTP Error 404: Not Found");
        assert_eq!(v["attempts"], 1);
        assert_eq!(v["started_ms"], serde_json::Value::Null);
        assert_eq!(v["worker"], serde_json::Value::Null);
        assert_eq!(v["error_kind"], "status");
        // No response: no facts, and no redirect count either.
        for key in ["final_url", "redirects", "remote_addr", "dns_ms", "ttfb_ms"] {
            assert_eq!(v[key], serde_json::Value::Null, "{key}");
        }
    }

    #[test]
    fn the_run_s_own_failures_have_kinds_too() {
        for (kind, name) in [
            (FailureKind::Cancelled, "cancelled"),
            (FailureKind::Interrupted, "interrupted"),
            (FailureKind::Input, "input"),
            (FailureKind::Panicked, "panicked"),
            (FailureKind::Fetch(ErrorKind::Check), "check"),
        ] {
            let mut outcome = failed("x", "m");
            outcome.result = Err(Failure::new(kind, "m"));
            let v: serde_json::Value = serde_json::from_str(&format_json(&outcome)).unwrap();
            assert_eq!(v["error_kind"], name);
        }
    }

    fn certificate() -> Certificate {
        Certificate {
            version: "TLSv1.3".into(),
            subject: "CN=localhost".into(),
            issuer: "CN=fetchall test CA".into(),
            not_after: "2026-12-06T21:28:43Z".into(),
            days_left: 5,
        }
    }

    #[test]
    fn an_https_line_carries_its_certificate() {
        let mut outcome = ok("https://a/", 3);
        if let Ok(page) = &mut outcome.result {
            page.tls = Some(certificate());
        }
        let v: serde_json::Value = serde_json::from_str(&format_json(&outcome)).unwrap();
        assert_eq!(v["tls_version"], "TLSv1.3");
        assert_eq!(v["cert_subject"], "CN=localhost");
        assert_eq!(v["cert_issuer"], "CN=fetchall test CA");
        assert_eq!(v["cert_not_after"], "2026-12-06T21:28:43Z");
        assert_eq!(v["cert_days_left"], 5);
        // The text line is the Python example's, https or not.
        assert_eq!(format_line(&outcome), "'https://a/' page is 3 bytes");

        let mut expiring = failed("https://a/", "certificate expires in 5 days (2026-12-06)");
        if let Err(failure) = &mut expiring.result {
            failure.tls = Some(Box::new(certificate()));
        }
        let v: serde_json::Value = serde_json::from_str(&format_json(&expiring)).unwrap();
        assert_eq!(
            (v["ok"].clone(), v["cert_days_left"].clone()),
            (false.into(), 5.into())
        );
        // An http line has none of the fields.
        let plain = format_json(&ok("http://a/", 3));
        assert!(
            !plain.contains("tls_version") && !plain.contains("cert_"),
            "{plain}"
        );
    }

    #[test]
    fn buckets_are_ordered_and_midpoints_fall_inside() {
        let mut last = 0;
        for us in (0..100_000).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(us);
            assert!(b >= last, "bucket({us}) went backwards");
            assert!(b < BUCKETS);
            last = b;
            let mid = midpoint(b);
            // Within the bucket's precision of the value itself.
            assert!(
                mid.abs_diff(us) <= us / 16,
                "midpoint({b}) = {mid} for {us}"
            );
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_close_to_the_exact_ones() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        let within = |got: Duration, want_ms: f64| {
            let got = got.as_secs_f64() * 1000.0;
            assert!(
                (got - want_ms).abs() <= want_ms / 16.0,
                "{got} vs {want_ms}"
            );
        };
        within(h.quantile(0.5).unwrap(), 500.0);
        within(h.quantile(0.95).unwrap(), 950.0);
        within(h.quantile(1.0).unwrap(), 1000.0);
    }

    #[test]
    fn summary_counts_and_formats() {
        let mut s = Summary::default();
        let mut fast = ok("http://a/", 1);
        fast.timeline.elapsed = Some(Duration::from_millis(20));
        s.record(&fast);
        s.record(&failed("nope", "unknown url type: 'nope'"));
        assert_eq!((s.ok(), s.failed()), (1, 1));
        assert_eq!(
            s.line(Duration::from_millis(1520), false),
            "fetchall: 1 ok, 1 failed in 1.52s (fetch time p50 20ms, p95 20ms)"
        );
        assert_eq!(
            Summary::default().line(Duration::from_micros(420), true),
            "fetchall: interrupted: 0 ok, 0 failed, 0 not run in 0.42ms"
        );
        let mut cut = Summary::default();
        cut.record(&ok("http://a/", 1));
        cut.record(&failed("http://b/", "interrupted"));
        let mut never = failed("http://c/", "cancelled");
        never.result = Err(Failure::cancelled());
        cut.record(&never);
        cut.record(&never);
        assert_eq!((cut.ok(), cut.failed()), (1, 1));
        assert_eq!(
            cut.line(Duration::from_millis(2450), true),
            "fetchall: interrupted: 1 ok, 1 failed, 2 not run in 2.45s"
        );
    }
}
