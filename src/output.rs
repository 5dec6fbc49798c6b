//! What the CLI prints: one line per URL ([`format_line`] for the Python example's text,
//! [`format_json`] for `--format json`), Python's `repr` of the URL, and the [`Summary`] line.
//!
//! Everything here is a pure function of an [`Outcome`], so the exact bytes are unit-tested
//! below against what Python prints. Only the main thread calls these and writes the result, so
//! lines never interleave.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fetched {
    /// Body length as received: Python's `len(conn.read())`.
    pub(crate) bytes: u64,
    /// The final response's status code.
    pub(crate) status: u16,
}

/// Why a line produced no page: the text printed after `generated an exception: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// One line, worded like Python's where Python has words for it.
    pub(crate) message: String,
    /// The HTTP status, when the server answered with an error status.
    pub(crate) status: Option<u16>,
}

impl Failure {
    /// A failure with no HTTP status.
    pub(crate) fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: None,
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
    let url = repr(&outcome.url);
    match &outcome.result {
        Ok(page) => format!("{url} page is {} bytes", page.bytes),
        Err(failure) => format!("{url} generated an exception: {}", failure.message),
    }
}

/// One JSON object on one line, for `--format json`.
pub(crate) fn format_json(outcome: &Outcome) -> String {
    let (ok, bytes, status, error) = match &outcome.result {
        Ok(page) => (true, Some(page.bytes), Some(page.status), None),
        Err(failure) => (false, None, failure.status, Some(failure.message.as_str())),
    };
    let t = &outcome.timeline;
    serde_json::json!({
        "url": outcome.url,
        "ok": ok,
        "bytes": bytes,
        "status": status,
        "error": error,
        "elapsed_ms": t.elapsed.map(millis),
        "queued_ms": millis(t.queued),
        "started_ms": t.started.map(millis),
        "worker": t.worker,
    })
    .to_string()
}

/// Milliseconds with microsecond precision, for JSON.
fn millis(d: Duration) -> f64 {
    // Whole microseconds first, so the printed number has at most three decimals.
    d.as_micros() as f64 / 1000.0
}

/// Python's `repr()` of a `str`, as `'%r' % url` prints it.
///
/// Single quotes, unless the text contains `'` and no `"`. Backslash, the quote in use, `\n`,
/// `\r` and `\t` are escaped; other characters Python counts as not printable become `\xNN`,
/// `\uNNNN` or `\UNNNNNNNN`; the rest, non-ASCII included, is kept as it is.
///
/// Python's "not printable" is the Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs (except
/// the space). All of them are covered except unassigned code points (Cn), which would need
/// Unicode's whole table and change with every Unicode version; only the noncharacters among
/// them are escaped. A URL never holds one, and a control character can never reach the
/// terminal unescaped.
pub(crate) fn repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let n = u32::from(c);
                // Writing to a String cannot fail.
                let _ = match n {
                    0..=0xff => write!(out, r"\x{n:02x}"),
                    0x100..=0xffff => write!(out, r"\u{n:04x}"),
                    _ => write!(out, r"\U{n:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable` for one character (see [`repr`] for the one gap).
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    // Cc: C0, DEL and C1 controls.
    if c.is_control() {
        return false;
    }
    let n = u32::from(c);
    // Noncharacters (Cn in every Unicode version): U+FDD0..U+FDEF, and the last two of each plane.
    if (0xfdd0..=0xfdef).contains(&n) || n & 0xfffe == 0xfffe {
        return false;
    }
    !NOT_PRINTABLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&n))
}

/// The categories Zs (less the space), Zl, Zp, Cf and Co, as inclusive ranges. Cs (surrogates)
/// cannot occur in a Rust `str`.
const NOT_PRINTABLE: &[(u32, u32)] = &[
    // Zs: spaces other than U+0020.
    (0xa0, 0xa0),
    (0x1680, 0x1680),
    (0x2000, 0x200a),
    (0x202f, 0x202f),
    (0x205f, 0x205f),
    (0x3000, 0x3000),
    // Zl, Zp: line and paragraph separators.
    (0x2028, 0x2029),
    // Cf: format characters (soft hyphen, zero-width and bidi controls, BOM, tags...).
    (0xad, 0xad),
    (0x600, 0x605),
    (0x61c, 0x61c),
    (0x6dd, 0x6dd),
    (0x70f, 0x70f),
    (0x890, 0x891),
    (0x8e2, 0x8e2),
    (0x180e, 0x180e),
    (0x200b, 0x200f),
    (0x202a, 0x202e),
    (0x2060, 0x2064),
    (0x2066, 0x206f),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x1343f),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
    // Co: private use.
    (0xe000, 0xf8ff),
    (0xf0000, 0xffffd),
    (0x100000, 0x10fffd),
];

/// Counts and fetch-time percentiles over a whole run, in constant memory.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    ok: u64,
    failed: u64,
    times: Histogram,
}

impl Summary {
    /// Counts one outcome, and its fetch time if it has one.
    pub(crate) fn record(&mut self, outcome: &Outcome) {
        if outcome.result.is_ok() {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        if let Some(elapsed) = outcome.timeline.elapsed {
            self.times.record(elapsed);
        }
    }

    /// How many lines failed.
    pub(crate) fn failed(&self) -> u64 {
        self.failed
    }

    /// The stderr line: `fetchall: 3 ok, 1 failed in 1.52s (fetch time p50 120ms, p95 1.20s)`,
    /// prefixed by `interrupted: ` when the run was cut short.
    pub(crate) fn line(&self, wall: Duration, interrupted: bool) -> String {
        let mut line = format!(
            "fetchall: {}{} ok, {} failed in {}",
            if interrupted { "interrupted: " } else { "" },
            self.ok,
            self.failed,
            human(wall),
        );
        if let (Some(p50), Some(p95)) = (self.times.quantile(0.50), self.times.quantile(0.95)) {
            let _ = write!(line, " (fetch time p50 {}, p95 {})", human(p50), human(p95));
        }
        line
    }
}

/// A duration the way a person reads it: `0.42ms`, `120ms`, `1.20s`.
fn human(d: Duration) -> String {
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
    use std::process::Command;

    fn ok(url: &str, bytes: u64) -> Outcome {
        Outcome {
            url: url.to_owned(),
            result: Ok(Fetched { bytes, status: 200 }),
            timeline: Timeline::default(),
        }
    }

    fn failed(url: &str, message: &str) -> Outcome {
        Outcome {
            url: url.to_owned(),
            result: Err(Failure::new(message)),
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

    /// Outputs of Python 3.11's `repr()`, written down by hand.
    #[test]
    fn repr_matches_known_python_outputs() {
        let cases = [
            ("http://a/", "'http://a/'"),
            ("", "''"),
            ("it's", "\"it's\""),
            ("say \"hi\"", "'say \"hi\"'"),
            ("both ' and \"", r#"'both \' and "'"#),
            (r"back\slash", r"'back\\slash'"),
            ("tab\there\r\n", r"'tab\there\r\n'"),
            ("\x00\x1b[31m\x7f", r"'\x00\x1b[31m\x7f'"),
            ("\u{85}\u{9f}", r"'\x85\x9f'"),
            (
                "caf\u{e9} \u{4e2d}\u{6587} \u{1f600}",
                "'caf\u{e9} \u{4e2d}\u{6587} \u{1f600}'",
            ),
            ("nb\u{a0}sp", r"'nb\xa0sp'"),
            ("soft\u{ad}hyphen", r"'soft\xadhyphen'"),
            ("zw\u{200b}sp \u{202e}rtl", r"'zw\u200bsp \u202ertl'"),
            ("\u{2028}\u{3000}\u{feff}", r"'\u2028\u3000\ufeff'"),
            (
                "private \u{e000} \u{10fffd}",
                r"'private \ue000 \U0010fffd'",
            ),
            ("tag \u{e0041}", r"'tag \U000e0041'"),
            (
                "nonchar \u{fdd0} \u{ffff} \u{1fffe}",
                r"'nonchar \ufdd0 \uffff \U0001fffe'",
            ),
        ];
        for (input, python) in cases {
            assert_eq!(repr(input), python, "repr({input:?})");
        }
    }

    /// Where `python3` is installed, asks it for the `repr` of characters from every range the
    /// table names and of their neighbours, and compares.
    #[test]
    fn repr_matches_python3_when_present() {
        let mut samples: Vec<String> = vec!["plain".into(), "'\"\\".into(), "a'b".into()];
        let mut chars: Vec<u32> = (0..0x300).collect();
        for &(lo, hi) in NOT_PRINTABLE {
            chars.extend([lo.saturating_sub(1), lo, hi, hi + 1]);
        }
        chars.extend([
            0xfdcf, 0xfdd0, 0xfdef, 0xfdf0, 0xfffd, 0xfffe, 0xffff, 0x10fffe,
        ]);
        samples.extend(
            chars
                .iter()
                .filter_map(|&n| char::from_u32(n))
                .map(String::from),
        );
        let script = "import json, sys\n\
                      unicodedata = __import__('unicodedata')\n\
                      for s in json.load(sys.stdin):\n\
                      \x20   assigned = all(unicodedata.category(c) != 'Cn' or (ord(c) & 0xfffe) == 0xfffe \
                                 or 0xfdd0 <= ord(c) <= 0xfdef for c in s)\n\
                      \x20   print(json.dumps(repr(s) if assigned else None))\n";
        let Some(python) = run_python(script, &serde_json::to_string(&samples).unwrap()) else {
            eprintln!("note: python3 not found; repr checked against the written-down cases only");
            return;
        };
        let answers: Vec<Option<String>> = python
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(answers.len(), samples.len());
        let mut compared = 0;
        for (sample, answer) in samples.iter().zip(answers) {
            // Unassigned code points (Cn) are the documented gap: Python escapes them, we cannot
            // know which they are without Unicode's table.
            if let Some(expected) = answer {
                assert_eq!(repr(sample), expected, "repr({sample:?})");
                compared += 1;
            }
        }
        assert!(compared > samples.len() / 2, "too few samples compared");
    }

    /// Runs `script` under `python3` with `input` on stdin; `None` if python3 is not installed.
    fn run_python(script: &str, input: &str) -> Option<String> {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "python3 failed");
        Some(String::from_utf8(output.stdout).unwrap())
    }

    #[test]
    fn json_line_has_every_field() {
        let outcome = Outcome {
            url: "http://a/x".into(),
            result: Ok(Fetched {
                bytes: 42,
                status: 200,
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
                "elapsed_ms": 12.0, "queued_ms": 1.5, "started_ms": 2.25, "worker": "fetchall_3",
            })
        );
    }

    #[test]
    fn json_failure_keeps_the_status_and_message() {
        let mut outcome = failed("http://a/\n", "HTTP Error 404: Not Found");
        outcome.result = Err(Failure {
            message: "HTTP Error 404: Not Found".into(),
            status: Some(404),
        });
        let v: serde_json::Value = serde_json::from_str(&format_json(&outcome)).unwrap();
        assert_eq!(v["url"], "http://a/\n");
        assert_eq!(v["ok"], false);
        assert_eq!(v["bytes"], serde_json::Value::Null);
        assert_eq!(v["status"], 404);
        assert_eq!(v["error"], "HTTP Error 404: Not Found");
        assert_eq!(v["started_ms"], serde_json::Value::Null);
        assert_eq!(v["worker"], serde_json::Value::Null);
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
        assert_eq!(s.failed(), 1);
        assert_eq!(
            s.line(Duration::from_millis(1520), false),
            "fetchall: 1 ok, 1 failed in 1.52s (fetch time p50 20ms, p95 20ms)"
        );
        assert_eq!(
            Summary::default().line(Duration::from_micros(420), true),
            "fetchall: interrupted: 0 ok, 0 failed in 0.42ms"
        );
    }
}
