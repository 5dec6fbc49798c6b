//! The command line: [`Args`] (clap derive), the [`Backend`] and [`Format`] choices, the
//! checks that make a bad value a usage error (exit 2) before anything runs, and the mapping
//! from the arguments to the library's options, the pool and the progress line.

use std::io::{self, IsTerminal};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, ValueEnum};
use fetchall::fetch::{
    ConnectTo, FetchOptions, HeaderCheck, Method, Pattern, Proxies, Resolve, StatusRanges,
};
use fetchall::{Builder, ThreadPool};
use ureq::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use ureq::http::{HeaderName, HeaderValue};

use crate::dispatch::queue_bound;
use crate::duration::parse_duration;
use crate::input::count_lines;
use crate::progress::{Progress, StatusLine};
use crate::rate::Rate;
use crate::report::ReportSpec;
use crate::shard::Shard;

const EXAMPLES: &str = "\
Examples:
  fetchall urls.txt                       fetch every URL in urls.txt
  fetchall https://a.example/ https://b.example/
                                          fetch the URLs given
  fetchall urls.txt more.txt https://c.example/
                                          files and URLs, read in that order
  fetchall urls.txt --max-workers 5 --timeout 60
                                          the Python example's settings
  seq 1000 | sed 's|^|http://127.0.0.1:8000/bytes/|' | fetchall -
                                          read the URLs from standard input (a test server
                                          on port 8000: cargo run -p fetchall-serve -- 8000)
  fetchall urls.txt --format jsonl | jq 'select(.ok | not)'
                                          one JSON object per URL; show the failures
  fetchall urls.txt --expect '</html>' --reject maintenance --slow 2
                                          smoke-test a deploy: what each page says, how fast
  fetchall urls.txt --format jsonl | jq 'select(.error_kind == \"timeout\") | .url'
                                          filter on the kind of failure, not its wording
  fetchall urls.txt --report junit:results.xml --baseline last.jsonl --report jsonl:now.jsonl
                                          text on stdout, a JUnit report for CI, and what
                                          changed since the last run
  fetchall --demo                         no internet needed: fetch from a local test server
  fetchall urls.txt --cacert ca.pem --cert-expiry 14
                                          trust a private CA; fail certificates expiring soon

Input: each INPUT is a URL if it contains '://', standard input if it is '-', and a file
otherwise; they are read in the order given. A file has one URL per line; surrounding
whitespace is trimmed, blank lines and lines starting with '#' are skipped. Every other line
gets exactly one output line, in completion order. An input with no URL at all prints
'fetchall: no URLs in the input' (and exits 1 with --fail-if-empty).

Output: 'URL' page is N bytes
        'URL' generated an exception: MESSAGE
as the concurrent.futures example in the Python docs prints them. A summary goes to stderr.

https: certificates are checked against the system's trust store (SSL_CERT_FILE and
SSL_CERT_DIR when set), and failures read like Python's. Credentials in a URL
(http://user:pass@host/) are sent as Basic auth, as curl sends them; the password is shown only
on the URL's own result line (and JSON url), never in logs or messages.

Exit status: 0 if every URL was fetched, 1 if any failed (with --fail-on new: if any failed
that did not fail in the baseline; with --fail-if-empty: if the input held no URL), 2 for a
usage or input error or results that cannot be written, 130 when interrupted by
Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (a second signal quits at once), 141 when stdout was
closed before every result was written.

Durations (--timeout): a number of seconds (60, 2.5) or a number with a unit: 500ms, 2s, 1m.
Rates (--rate, --per-host-rate): N/s, N/m or N/h, e.g. 10/s or 600/m.

Logging: -v shows each URL's queueing, worker, status and timing on stderr; RUST_LOG
(e.g. RUST_LOG=fetchall=trace,ureq=debug) overrides -v.";

/// `fetchall --version`: the version, and the optional features this build has (`-V` prints
/// the first line only).
#[cfg(feature = "rayon")]
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nfeatures: rayon (--backend rayon): yes"
);
#[cfg(not(feature = "rayon"))]
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nfeatures: rayon (--backend rayon): no (build with --features rayon)"
);

/// Fetch many URLs concurrently on a thread pool and report each as it completes.
///
/// A port of the ThreadPoolExecutor example from Python's concurrent.futures documentation.
#[derive(Debug, Parser)]
#[command(
    name = "fetchall",
    version,
    long_version = LONG_VERSION,
    after_long_help = EXAMPLES
)]
pub(crate) struct Args {
    /// URLs, files of URLs (one per line) and '-' for standard input, read in order. An INPUT
    /// containing '://' is a URL, '-' is standard input, anything else is a file name
    #[arg(
        value_name = "INPUT",
        required_unless_present_any = ["demo", "generate"]
    )]
    pub(crate) inputs: Vec<PathBuf>,

    /// How many URLs are fetched at once; no upper limit, as threads start only when URLs need
    /// them [default: min(32, CPUs + 4), as in Python]
    #[arg(
        short = 'w',
        long,
        value_name = "N",
        value_parser = parse_workers,
        hide_default_value = true,
        default_value_t = fetchall::default_workers()
    )]
    pub(crate) max_workers: usize,

    /// Total time allowed for each URL: connect, response and the whole body. Seconds
    /// (fractions allowed) or a number with a unit: 500ms, 2s, 1m
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration, default_value = "60")]
    pub(crate) timeout: Duration,

    /// Try a URL up to N more times after a transient failure: a connection refused, reset or
    /// closed early, or status 408, 429, 500, 502, 503 or 504. Waits 50-100ms before the first
    /// retry, doubling to at most 10s, or what a Retry-After header asks; all within --timeout,
    /// and no retry starts that the time left cannot fit
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) retries: u32,

    /// Request method: GET fetches and counts the body, HEAD only the headers (0 bytes)
    #[arg(
        long,
        value_name = "METHOD",
        default_value = "GET",
        ignore_case = true,
        value_parser = PossibleValuesParser::new(["GET", "HEAD"])
            .map(|m| if m.eq_ignore_ascii_case("HEAD") { Method::Head } else { Method::Get })
    )]
    pub(crate) method: Method,

    /// Add a request header, e.g. -H 'Authorization: Bearer x' (repeatable; replaces a default
    /// header of the same name)
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'", value_parser = parse_header)]
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,

    /// The User-Agent header
    #[arg(long, value_name = "TEXT", default_value = fetchall::fetch::DEFAULT_USER_AGENT)]
    pub(crate) user_agent: HeaderValue,

    /// Statuses that count as success: codes and ranges such as 200-299,304,404. Any other is
    /// reported as an exception: HTTP Error 404: Not Found
    #[arg(long, value_name = "RANGES", default_value = "200-299")]
    pub(crate) accept: StatusRanges,

    /// Redirects to follow; 0 follows none, and a 3xx is then a status like any other
    #[arg(long, value_name = "N", default_value_t = fetchall::fetch::DEFAULT_MAX_REDIRECTS)]
    pub(crate) max_redirects: u32,

    /// Do not verify TLS certificates or host names (prints a warning)
    #[arg(long)]
    pub(crate) insecure: bool,

    // Host targeting (issue 10, item 4).
    /// Use ADDR for HOST on PORT instead of asking DNS, as curl's --resolve (repeatable)
    ///
    /// The request, its Host header, the TLS server name and the certificate check stay the
    /// URL's, so a site can be tried on a new server before DNS points at it. HOST may be '*'
    /// for every host; PORT is the one the URL connects to (80 or 443 when it names none);
    /// IPv6 addresses may be in brackets. Several addresses are raced as a host name's are: the
    /// next one 250ms after the one before began, or at once when it fails. Of several entries
    /// for one HOST:PORT the last counts, and one for the host beats '*'. A leading '+' (curl's
    /// "may time out") is accepted and changes nothing.
    #[arg(long, value_name = "HOST:PORT:ADDR[,ADDR...]")]
    pub(crate) resolve: Vec<Resolve>,

    /// Connect to HOST2:PORT2 for URLs of HOST1:PORT1, as curl's --connect-to (repeatable)
    ///
    /// An empty HOST1 or PORT1 matches every host or port; an empty HOST2 or PORT2 keeps the
    /// URL's. The first entry that matches counts, and HOST2 is looked up with --resolve first.
    /// The request, its Host header, the TLS server name and the certificate check stay the
    /// URL's. Through an HTTP proxy, a URL sent elsewhere goes in a CONNECT tunnel to
    /// HOST2:PORT2, as curl does; --resolve then only gives the proxy's own name its address,
    /// since the proxy connects (but socks5:// resolves here, so both apply to the URL).
    #[arg(long, value_name = "HOST1:PORT1:HOST2:PORT2")]
    pub(crate) connect_to: Vec<ConnectTo>,
    // TLS options (issue 10, items 1 and 3).
    /// Trust only the CA certificates in FILE (PEM, one or more) for https, instead of the
    /// system's trust store
    ///
    /// Without it, https servers are checked against the system's store, as Python and curl
    /// check them: SSL_CERT_FILE and SSL_CERT_DIR when set, else the OS's (on Linux the bundle
    /// and directory OpenSSL uses, where update-ca-certificates installs). As curl's --cacert,
    /// the file replaces that store.
    #[arg(long, value_name = "FILE")]
    pub(crate) cacert: Option<PathBuf>,

    /// Present the client certificate in FILE (PEM) to https servers that ask for one (mutual
    /// TLS); the key is read from --key, or from FILE itself when it holds the key too
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,

    /// The private key of --cert (PEM: PKCS #8, PKCS #1 or SEC1)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,

    /// Fail an https URL whose certificate expires within DAYS days: 'certificate expires in 5
    /// days (2026-12-06)'
    ///
    /// The certificate checked is the one of the connection the final response came on. With
    /// --format json, every https line that got an answer carries the certificate's dates
    /// anyway (cert_not_after, cert_days_left).
    #[arg(long, value_name = "DAYS")]
    pub(crate) cert_expiry: Option<u32>,

    /// Which executor runs the fetches
    #[arg(long, value_enum, default_value_t = Backend::Pool)]
    pub(crate) backend: Backend,

    /// Output format: text, jsonl (also called json), csv, junit or markdown
    #[arg(long, value_enum, default_value_t = Format::Text, hide_possible_values = true)]
    pub(crate) format: Format,

    /// Write the results (in --format) to FILE instead of standard output
    ///
    /// Line formats (text, jsonl, csv) are written as the results come. JUnit and Markdown
    /// are complete only at the end: they are written to a temporary file beside FILE and
    /// renamed over it when the run ends, so a killed run never leaves half a report.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Also write a report in FORMAT to FILE, e.g. junit:results.xml (repeatable)
    ///
    /// Standard output keeps its --format, so one run can print text lines for people and
    /// write JUnit for CI: --report junit:results.xml --report jsonl:run.jsonl. Formats as
    /// for --format; JUnit and Markdown reports are written whole at the end, as with -o.
    #[arg(long = "report", value_name = "FORMAT:FILE")]
    pub(crate) reports: Vec<ReportSpec>,

    /// Write a JSON summary of the run to FILE at the end: counts, wall time, fetch-time
    /// percentiles (p50, p95, p99) and, with --baseline, the changes
    #[arg(long, value_name = "FILE")]
    pub(crate) summary_json: Option<PathBuf>,

    /// Exit 1 when the input has no URL at all (else it is only reported on stderr)
    #[arg(long)]
    pub(crate) fail_if_empty: bool,

    /// Do not print the summary line on stderr
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// Log each URL's progress on stderr (-vv: also the HTTP client's logs)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// At most N requests at once to any one host; a host that answers 429 is slowed down
    ///
    /// A host is a URL's scheme, host and port. URLs of a host at its limit wait in line while
    /// the workers fetch other hosts' URLs, so a slow host never idles a worker. A 429 (Too
    /// Many Requests) answer halves the host's limit (down to 1) and pauses the host for what
    /// its Retry-After asks, or else 1s, doubling with each 429 in a row; at most 60s. A 503
    /// with Retry-After pauses it too. A URL the pause would hold past its --timeout is
    /// reported as timed out at once. The limit grows back by one after each run of that many
    /// good answers. Redirects to another host are not counted against it.
    #[arg(long, value_name = "N")]
    pub(crate) per_host: Option<NonZeroUsize>,

    /// Print the results in input order instead of completion order
    ///
    /// For comparing runs with diff. Results that finish early wait for the lines before
    /// them; while a slow URL holds the output up, the run reads at most max-workers +
    /// max(2 x max-workers, 128) lines past it (plus the URLs --per-host, --per-host-rate or
    /// --rate hold back), so memory stays bounded. Works with
    /// every backend, with --format json, and with --per-host. On Ctrl-C the remaining lines
    /// are still printed, in order.
    #[arg(long)]
    pub(crate) ordered: bool,

    /// Fetch only share K of N of the input: the lines whose index is K mod N
    ///
    /// The index counts, from 0, the lines that get a result (blank lines and # comments are
    /// not counted), so the N shards 0/N .. N-1/N split the work between N machines with no
    /// line fetched twice or missed, and editing comments moves no URL to another shard.
    /// Every machine must read the same list.
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<Shard>,

    /// Compare this run with an earlier run's JSON lines (--format jsonl or --report jsonl:FILE)
    ///
    /// Reports on stderr which URLs newly fail, recovered, changed status, changed size by
    /// more than --size-change, got slower by more than --slower, were added or removed; JSON
    /// lines gain a "baseline" field, CSV a baseline column, JUnit and Markdown a section.
    /// The baseline is held as a 64-bit hash and 16 bytes per URL.
    #[arg(long, value_name = "PREV.jsonl")]
    pub(crate) baseline: Option<PathBuf>,

    /// With --baseline: a body size change of more than PCT percent is a change
    #[arg(long, value_name = "PCT", default_value_t = 20.0, requires = "baseline", value_parser = parse_percent)]
    pub(crate) size_change: f64,

    /// With --baseline: a page more than FACTOR times slower (and 50ms slower) is a change
    #[arg(long, value_name = "FACTOR", default_value_t = 2.0, requires = "baseline", value_parser = parse_factor)]
    pub(crate) slower: f64,

    /// Which failures make the exit status 1: any, or only new ones (failing now and not in
    /// the baseline), so a list with known-bad URLs can still gate a deploy
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = FailOn::Any, requires_if("new", "baseline"))]
    pub(crate) fail_on: FailOn,

    /// At most N requests a second (N/s), minute (N/m) or hour (N/h) in all
    ///
    /// Requests are spaced evenly, one every 1/N, with no burst after a quiet spell. The
    /// dispatcher waits for the next slot; no worker is held up waiting.
    #[arg(long, value_name = "N/s")]
    pub(crate) rate: Option<Rate>,

    /// At most N requests a second (N/s, N/m, N/h) to any one host
    ///
    /// A host's URLs wait in line for its next slot while the workers fetch other hosts' URLs.
    /// As with --per-host, a 429 (or a 503 with Retry-After) pauses the host.
    #[arg(long, value_name = "N/s")]
    pub(crate) per_host_rate: Option<Rate>,

    /// Print a shell completion script or the man page, and exit: complete-bash,
    /// complete-zsh, complete-fish, complete-powershell, complete-elvish or man
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        hide_possible_values = true,
        exclusive = true
    )]
    pub(crate) generate: Option<crate::generate::Generate>,

    /// Do not show the progress line
    ///
    /// The progress line (done/total, ok, failed, rate, in flight) is drawn on stderr, in
    /// place, only when stderr is a terminal, cut to its width, and wiped before the summary.
    /// -q hides it too. When the URLs are typed at the terminal (-), a message says so instead.
    #[arg(long)]
    pub(crate) no_progress: bool,

    /// Start a local test server and fetch a list of its URLs: no internet needed
    #[arg(long, conflicts_with = "inputs")]
    pub(crate) demo: bool,

    // Content checks and a time budget (issue 11, items 2 and 3).
    /// The body must contain TEXT (byte for byte, case matters; repeatable), else the page
    /// fails: expected text not found: 'TEXT'
    ///
    /// The body is searched as it streams, through the same fixed buffer that counts it, so a
    /// text split between two reads is found and a body of any size costs no memory. Only the
    /// first --scan-limit bytes are searched; a text not found in a longer body fails with
    /// "expected text not found in the first 4 MiB: 'TEXT'".
    #[arg(long, value_name = "TEXT")]
    pub(crate) expect: Vec<String>,

    /// The body must contain a match of the regular expression RE (repeatable): (?i) ignores
    /// case, (?m) makes ^ and $ match at line ends
    ///
    /// Any match of up to 4096 bytes is found, wherever the reads split the body. ^ and $
    /// (without (?m)) mean the start and end of the body.
    #[arg(long, value_name = "RE", value_parser = Pattern::regex)]
    pub(crate) expect_regex: Vec<Pattern>,

    /// The body must not contain TEXT (repeatable): rejected text found: 'TEXT'
    ///
    /// Only the first --scan-limit bytes are searched: a text further on is not seen.
    #[arg(long, value_name = "TEXT")]
    pub(crate) reject: Vec<String>,

    /// The body must not contain a match of RE (repeatable)
    #[arg(long, value_name = "RE", value_parser = Pattern::regex)]
    pub(crate) reject_regex: Vec<Pattern>,

    /// The response must have the header NAME with a value that matches REGEX (repeatable):
    /// header content-type: 'text/html' does not match 'json'
    #[arg(long, value_name = "'NAME: REGEX'")]
    pub(crate) expect_header: Vec<HeaderCheck>,

    /// How much of each body the content checks search, in bytes, or with a unit: 512KiB,
    /// 4MiB, 1GiB (K, M, G mean the same). The rest is still counted
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "4MiB")]
    pub(crate) scan_limit: u64,

    /// A page that takes longer than DURATION in all (2, 2s, 500ms) fails, once fetched:
    /// slow: 2.31s > 2.00s. --timeout still bounds the fetch
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) slow: Option<Duration>,
}

/// Which failures set the exit status (`--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FailOn {
    /// Any failed URL
    Any,
    /// Only URLs that fail now and did not fail in the baseline (newly failing, or new)
    New,
}

/// The executor that runs the fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// fetchall's hand-written thread pool
    Pool,
    /// A rayon thread pool (only when built with the `rayon` feature)
    Rayon,
    /// One URL at a time on the main thread: the baseline
    Sequential,
}

/// How the results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// The Python example's lines: 'URL' page is N bytes
    Text,
    /// JSON Lines: one JSON object per URL, with timings and the worker's name ('json' is
    /// another name for it)
    #[value(alias = "json")]
    Jsonl,
    /// A header row, then one row per URL: the JSON line's fields
    Csv,
    /// A JUnit XML report, one test case per URL, written when the run ends
    Junit,
    /// A Markdown summary for a pull-request comment, written when the run ends
    Markdown,
}

/// The executor a run uses: [`Backend`] once this build is known to have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chosen {
    /// fetchall's thread pool.
    Pool,
    /// A rayon thread pool.
    #[cfg(feature = "rayon")]
    Rayon,
    /// One URL at a time on the main thread.
    Sequential,
}

/// `--backend rayon` in a build without the `rayon` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoRayon;

impl std::fmt::Display for NoRayon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "--backend rayon needs fetchall built with the rayon feature \
             (cargo build --features rayon)",
        )
    }
}

impl std::error::Error for NoRayon {}

impl Args {
    /// The executor to run on, checked against this build once, before anything starts.
    ///
    /// # Errors
    ///
    /// [`NoRayon`] for `--backend rayon` in a build without rayon.
    pub(crate) fn backend(&self) -> Result<Chosen, NoRayon> {
        match self.backend {
            Backend::Pool => Ok(Chosen::Pool),
            #[cfg(feature = "rayon")]
            Backend::Rayon => Ok(Chosen::Rayon),
            #[cfg(not(feature = "rayon"))]
            Backend::Rayon => Err(NoRayon),
            Backend::Sequential => Ok(Chosen::Sequential),
        }
    }

    /// The fetcher's options: every request option but the TLS ones (see `tls.rs`), and
    /// connections kept for every worker.
    pub(crate) fn fetch_options(&self) -> FetchOptions {
        let mut options = FetchOptions::default();
        options.timeout = self.timeout;
        options.retries = self.retries;
        options.method = self.method;
        options.headers = self.headers.iter().cloned().collect();
        options.user_agent = self.user_agent.clone();
        options.accept = self.accept.clone();
        options.max_redirects = self.max_redirects;
        options.resolve = self.resolve.clone();
        options.connect_to = self.connect_to.clone();
        // The TLS options, files to read among them, are `tls::TlsOptions`'.
        if self.demo {
            // The demo fetches only its own server on 127.0.0.1, which a proxy named in the
            // environment could not reach.
            options.proxies = Proxies::none();
        }
        // Every worker may keep a connection to the same host alive.
        options.max_idle_connections_per_host =
            options.max_idle_connections_per_host.max(self.max_workers);
        self.checks(&mut options);
        options
    }

    /// The content checks and the time budget (`--expect`, `--reject`, `--expect-header`,
    /// `--scan-limit`, `--slow`). Expected texts are tried before patterns, rejected ones after.
    fn checks(&self, options: &mut FetchOptions) {
        let checks = &mut options.checks;
        for text in &self.expect {
            checks.expect(Pattern::text(text.as_str()));
        }
        for pattern in &self.expect_regex {
            checks.expect(pattern.clone());
        }
        for text in &self.reject {
            checks.reject(Pattern::text(text.as_str()));
        }
        for pattern in &self.reject_regex {
            checks.reject(pattern.clone());
        }
        for header in &self.expect_header {
            checks.expect_header(header.clone());
        }
        checks.set_scan_limit(self.scan_limit);
        options.slow = self.slow;
    }

    /// The thread pool's builder (for the pool and rayon backends): `--max-workers` threads
    /// named `fetchall_N`, with a bounded queue.
    pub(crate) fn pool_builder(&self) -> Builder {
        ThreadPool::builder()
            .num_threads(self.max_workers)
            .thread_name_prefix("fetchall")
            .queue_bound(queue_bound(self.max_workers))
    }

    /// The share of the input this run fetches: `--shard`, or all of it.
    pub(crate) fn shard(&self) -> Shard {
        self.shard.unwrap_or(Shard::ALL)
    }

    /// `true` when the URLs are typed at a terminal: `-` with stdin a terminal.
    pub(crate) fn reads_the_terminal(&self) -> bool {
        self.inputs.iter().any(|input| input == Path::new("-")) && io::stdin().is_terminal()
    }

    /// The progress line: on when stderr is a terminal, unless `--no-progress` or `-q`, the
    /// URLs are typed at the terminal (the terminal echoes them where the line is), or
    /// `TERM=dumb` (the line is erased with `ESC [ K`). The total is counted ahead for a
    /// regular file; for other input the reader tells it (`read`) when it reaches the end.
    pub(crate) fn progress(&self, stderr: &StatusLine, read: Receiver<u64>) -> Progress {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        if self.no_progress
            || self.quiet
            || dumb
            || !io::stderr().is_terminal()
            || self.reads_the_terminal()
        {
            return Progress::off();
        }
        // Counted ahead only for a single file; several inputs are counted by the reader.
        let counted = match &self.inputs[..] {
            [path] if path != Path::new("-") => count_lines(path, self.shard()),
            _ => None,
        };
        Progress::on(stderr.clone(), read, counted, io::stdout().is_terminal())
    }
}

fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("max_workers must be greater than 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `--size-change`: a percentage, 0 or more.
fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(pct) if pct >= 0.0 && pct.is_finite() => Ok(pct),
        _ => Err(format!("{s:?} is not a percentage such as 20")),
    }
}

/// `--slower`: a factor of 1 or more.
fn parse_factor(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('x').parse::<f64>() {
        Ok(factor) if factor >= 1.0 && factor.is_finite() => Ok(factor),
        _ => Err(format!("{s:?} is not a factor of 1 or more, such as 2")),
    }
}

/// A byte count: `4194304`, `4MiB`, `4M`, `512KiB`, `1GiB` (powers of 1024, case ignored).
fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{s:?} is not a size such as 4MiB, 512KiB or 1000")),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 4MiB, 512KiB or 1000"))?;
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// `Name: value`, as curl's -H takes it. Whitespace around the value is dropped. Headers that
/// describe a request body are refused: fetchall sends none.
fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not 'NAME: VALUE'"))?;
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name"))?;
    if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
        return Err(format!(
            "{name} describes a request body, and fetchall sends none"
        ));
    }
    let value = HeaderValue::from_bytes(value.trim().as_bytes())
        .map_err(|_| format!("the value of {name} has a control character"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("fetchall").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_follow_python() {
        let args = parse(&["urls.txt"]).unwrap();
        assert_eq!(args.inputs, [PathBuf::from("urls.txt")]);
        assert_eq!(args.max_workers, fetchall::default_workers());
        assert_eq!(args.timeout, Duration::from_secs(60));
        assert_eq!(args.backend, Backend::Pool);
        assert_eq!(args.format, Format::Text);
        assert!(!args.quiet && !args.demo);
    }

    #[test]
    fn the_python_examples_settings_parse() {
        let args = parse(&["-", "--max-workers", "5", "--timeout", "0.25"]).unwrap();
        assert_eq!(args.inputs, [PathBuf::from("-")]);
        assert_eq!(args.max_workers, 5);
        assert_eq!(args.timeout, Duration::from_millis(250));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            &["urls.txt", "--max-workers", "0"][..],
            &["urls.txt", "--max-workers", "-1"],
            &["urls.txt", "--timeout", "0"],
            &["urls.txt", "--timeout", "-3"],
            &["urls.txt", "--timeout", "inf"],
            &["urls.txt", "--timeout", "NaN"],
            &["urls.txt", "--timeout", "1e300"],
            &["urls.txt", "--backend", "tokio"],
            &["urls.txt", "--format", "xml"],
            &["urls.txt", "--demo"],
            &[],
        ] {
            let err = parse(bad).err().unwrap_or_else(|| panic!("{bad:?} parsed"));
            assert_ne!(err.kind(), ErrorKind::DisplayHelp);
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn content_checks_parse() {
        let args = parse(&[
            "-",
            "--expect",
            "Welcome",
            "--expect",
            "Hello",
            "--expect-regex",
            "(?i)welc.me",
            "--reject",
            "maintenance",
            "--reject-regex",
            "Trace(back)?",
            "--expect-header",
            "Content-Type: ^text/html",
            "--scan-limit",
            "512KiB",
            "--slow",
            "2.5",
        ])
        .unwrap();
        assert_eq!(args.expect, ["Welcome", "Hello"]);
        assert_eq!(args.expect_regex[0].as_str(), "(?i)welc.me");
        assert_eq!(args.reject, ["maintenance"]);
        assert_eq!(args.reject_regex[0].as_str(), "Trace(back)?");
        assert_eq!(args.expect_header[0].name(), "content-type");
        assert_eq!(args.expect_header[0].pattern().as_str(), "^text/html");
        assert_eq!(args.scan_limit, 512 * 1024);
        assert_eq!(args.slow, Some(Duration::from_millis(2500)));
        let defaults = parse(&["-"]).unwrap();
        assert_eq!(defaults.scan_limit, fetchall::fetch::DEFAULT_SCAN_LIMIT);
        assert_eq!(defaults.slow, None);
        assert!(defaults.expect.is_empty() && defaults.expect_header.is_empty());
    }

    #[test]
    fn sizes_parse() {
        for (text, bytes) in [
            ("1000", 1000),
            ("4MiB", 4 << 20),
            ("4m", 4 << 20),
            ("64 KiB", 64 << 10),
            ("1G", 1 << 30),
            ("0", 0),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "4 parsecs",
            "-1",
            "1.5M",
            "99999999999999999999G",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_checks_are_usage_errors() {
        for bad in [
            &["-", "--expect-regex", "(unclosed"][..],
            &["-", "--reject-regex", "[z-a]"],
            &["-", "--expect-header", "no colon"],
            &["-", "--expect-header", "bad name: x"],
            &["-", "--expect-header", "a: ("],
            &["-", "--scan-limit", "lots"],
            &["-", "--slow", "0"],
            &["-", "--slow", "soon"],
        ] {
            let err = parse(bad).err().unwrap_or_else(|| panic!("{bad:?} parsed"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn resolve_and_connect_to_repeat() {
        let args = parse(&[
            "urls.txt",
            "--resolve",
            "a.test:443:127.0.0.1",
            "--resolve",
            "*:80:[::1]",
            "--connect-to",
            "a.test:443:b.test:8443",
        ])
        .unwrap();
        let resolve: Vec<String> = args.resolve.iter().map(ToString::to_string).collect();
        assert_eq!(resolve, ["a.test:443:127.0.0.1", "*:80:[::1]"]);
        assert_eq!(args.connect_to.len(), 1);
        for bad in [
            &["urls.txt", "--resolve", "a.test:443"][..],
            &["urls.txt", "--connect-to", "a.test:443"],
        ] {
            let err = parse(bad).err().unwrap_or_else(|| panic!("{bad:?} parsed"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn tls_options_parse() {
        let args = parse(&[
            "-",
            "--cacert",
            "ca.pem",
            "--cert",
            "me.pem",
            "--key",
            "me.key",
            "--cert-expiry",
            "14",
        ])
        .unwrap();
        assert_eq!(args.cacert, Some(PathBuf::from("ca.pem")));
        assert_eq!(args.cert, Some(PathBuf::from("me.pem")));
        assert_eq!(args.key, Some(PathBuf::from("me.key")));
        assert_eq!(args.cert_expiry, Some(14));
        let err = parse(&["-", "--key", "me.key"]).expect_err("--key needs --cert");
        assert_eq!(err.exit_code(), 2);
        assert!(parse(&["-", "--cert-expiry", "-1"]).is_err());
    }

    #[test]
    fn demo_needs_no_file() {
        let args = parse(&["--demo", "-q"]).unwrap();
        assert!(args.demo && args.quiet && args.inputs.is_empty());
    }

    #[test]
    fn inputs_are_urls_files_and_stdin_in_order() {
        let args = parse(&["https://a/", "list.txt", "-", "http://b/"]).unwrap();
        let inputs: Vec<&str> = args.inputs.iter().filter_map(|p| p.to_str()).collect();
        assert_eq!(inputs, ["https://a/", "list.txt", "-", "http://b/"]);
        assert!(parse(&["--demo", "https://a/"]).is_err());
    }

    #[test]
    fn report_options_parse() {
        let args = parse(&[
            "u.txt",
            "--format",
            "json",
            "-o",
            "out.jsonl",
            "--report",
            "junit:r.xml",
            "--report",
            "markdown:r.md",
            "--summary-json",
            "s.json",
            "--fail-if-empty",
        ])
        .unwrap();
        assert_eq!(args.format, Format::Jsonl);
        assert_eq!(args.output, Some(PathBuf::from("out.jsonl")));
        let formats: Vec<Format> = args.reports.iter().map(|r| r.format).collect();
        assert_eq!(formats, [Format::Junit, Format::Markdown]);
        assert_eq!(args.summary_json, Some(PathBuf::from("s.json")));
        assert!(args.fail_if_empty);
        for format in ["text", "jsonl", "csv", "junit", "markdown"] {
            assert!(parse(&["u.txt", "--format", format]).is_ok(), "{format}");
        }
        assert!(parse(&["u.txt", "--report", "xml:r.xml"]).is_err());
    }

    #[test]
    fn baseline_options_parse_and_need_a_baseline() {
        let args = parse(&[
            "u.txt",
            "--baseline",
            "prev.jsonl",
            "--size-change",
            "5%",
            "--slower",
            "1.5x",
            "--fail-on",
            "new",
        ])
        .unwrap();
        assert_eq!(args.baseline, Some(PathBuf::from("prev.jsonl")));
        assert_eq!((args.size_change, args.slower), (5.0, 1.5));
        assert_eq!(args.fail_on, FailOn::New);
        let defaults = parse(&["u.txt"]).unwrap();
        assert_eq!((defaults.size_change, defaults.slower), (20.0, 2.0));
        assert_eq!(defaults.fail_on, FailOn::Any);
        for lacking in [
            &["u.txt", "--fail-on", "new"][..],
            &["u.txt", "--size-change", "5"],
            &["u.txt", "--slower", "3"],
        ] {
            let err = parse(lacking).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::MissingRequiredArgument,
                "{lacking:?}"
            );
        }
        assert!(parse(&["u.txt", "--fail-on", "any"]).is_ok());
        for bad in ["-1", "x", "inf"] {
            assert!(parse(&["u.txt", "--baseline", "p", "--size-change", bad]).is_err());
        }
        for bad in ["0.5", "x", "NaN"] {
            assert!(parse(&["u.txt", "--baseline", "p", "--slower", bad]).is_err());
        }
    }

    #[test]
    fn rates_and_durations_parse() {
        let args = parse(&[
            "u.txt",
            "--rate",
            "10/s",
            "--per-host-rate",
            "30/m",
            "-t",
            "500ms",
        ])
        .unwrap();
        assert_eq!(
            args.rate.map(|r| r.interval()),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            args.per_host_rate.map(|r| r.interval()),
            Some(Duration::from_secs(2))
        );
        assert_eq!(args.timeout, Duration::from_millis(500));
        assert!(
            parse(&["u.txt", "--rate", "10"]).is_err(),
            "a rate needs a unit"
        );
    }

    #[test]
    fn generate_stands_alone() {
        let args = parse(&["--generate", "complete-zsh"]).unwrap();
        assert_eq!(args.generate, Some(crate::generate::Generate::CompleteZsh));
        assert!(parse(&["--generate", "man", "u.txt"]).is_err());
        assert!(parse(&["--generate", "complete-tcsh"]).is_err());
    }

    #[test]
    fn help_says_what_the_command_does() {
        let short = Args::command().render_help().to_string();
        assert!(short.starts_with("Fetch many URLs concurrently"), "{short}");
        let help = Args::command().render_long_help().to_string();
        assert!(help.contains("ThreadPoolExecutor example"));
        assert!(help.contains("Examples:"));
        assert!(help.contains("--max-workers 5 --timeout 60"));
    }
}
