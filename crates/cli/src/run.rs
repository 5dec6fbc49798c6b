//! The run loop: read lines, submit a task per line through any [`Executor`], print each
//! outcome as it completes, and stop cleanly on Ctrl-C or a closed stdout.
//!
//! Only the main thread writes to stdout. It never blocks for long: lines arrive over a channel
//! from the reader thread (see [`crate::input`]), completions are polled with
//! [`AsCompleted::next_timeout`], and at most [`in_flight_limit`] tasks are outstanding, so a
//! submit to the executor's bounded queue never waits on more than a worker picking up its next
//! task. Memory stays the same whether the input has ten lines or ten million.
//!
//! The main thread is also the dispatcher. With `--per-host` it submits a URL only when its host
//! has a free slot and holds the others back ([`crate::hosts`], at most [`MAX_HELD`] of them);
//! with `--ordered` it prints through a reorder buffer ([`crate::order`]) and takes no new line
//! while [`Options::window`] lines are taken and not printed. Either way the input is read only
//! as fast as the lines can be dealt with, and every line taken gets exactly one result line.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IsTerminal, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use fetchall::fetch::{FetchOptions, Fetcher, Pattern, Proxies};
use fetchall::{AsCompleted, BuildError, Executor, Sequential, TaskError, TaskHandle, ThreadPool};
use tracing_subscriber::EnvFilter;

use crate::cli::{Args, Backend, Format};
use crate::demo;
use crate::hosts::{Hosts, MAX_HELD, Slot, host_key};
use crate::input::{Event, Line, Source, count_lines, spawn_reader};
use crate::order::Reorder;
use crate::output::{
    Failure, FailureKind, Fetched, Outcome, Summary, Timeline, format_json, format_line,
};
use crate::progress::{Counts, Progress, StatusLine};
use crate::shard::Shard;

/// Fetches one URL: the real one wraps [`fetchall::fetch::Fetcher`], tests pass stand-ins.
pub(crate) type FetchFn = dyn Fn(&str) -> Result<Fetched, Failure> + Send + Sync;

/// Tasks queued per worker by the executor's bounded queue.
pub(crate) const QUEUE_PER_WORKER: usize = 2;

/// How long the main thread waits for a completion when it has nothing else to do, before it
/// looks at the Ctrl-C flag again.
const POLL: Duration = Duration::from_millis(50);

/// How long it waits for a completion when a new input line may also be coming.
const POLL_BOTH: Duration = Duration::from_millis(5);

/// The most tasks outstanding (queued, running, or finished and not printed yet): enough to
/// keep every worker busy and the bounded queue full, and no more.
pub(crate) fn in_flight_limit(max_workers: usize) -> usize {
    max_workers.saturating_mul(1 + QUEUE_PER_WORKER).max(1)
}

/// Exit status when some URL failed.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status for a usage or input error (clap uses 2 too).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C: 128 + SIGINT, as shells report it.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

const NO_RAYON: &str =
    "--backend rayon needs fetchall built with the rayon feature (cargo build --features rayon)";

/// Runs the command: everything between the parsed arguments and the exit status.
///
/// # Errors
///
/// A message for a usage or setup error (exit 2): an input that cannot be opened, a backend
/// this build lacks, a pool that cannot start.
pub(crate) fn run(args: &Args) -> Result<ExitCode, String> {
    // Logs, warnings and the summary share stderr with the progress line.
    let stderr = StatusLine::stderr();
    init_logging(args.verbose, stderr.clone());
    // Refused before anything starts; the `match` below refuses it again for the compiler.
    if args.backend == Backend::Rayon && !cfg!(feature = "rayon") {
        return Err(NO_RAYON.into());
    }
    // The demo's server must outlive the run.
    let (source, name, _server) = match &args.file {
        Some(path) => (Source::open(path)?, path.clone(), None),
        None => {
            let (server, source) = demo::start(args.max_workers, args.quiet)?;
            (source, PathBuf::from("--demo"), Some(server))
        }
    };
    let shard = args.shard.unwrap_or(Shard::ALL);
    let (lines, total) =
        spawn_reader(source, name, shard).map_err(|e| format!("cannot start reading: {e}"))?;
    let options = Options {
        format: args.format,
        ordered: args.ordered,
        per_host: args.per_host,
        progress: progress(args, &stderr, shard, total),
    };
    let fetch = fetcher(args);
    let builder = ThreadPool::builder()
        .num_threads(args.max_workers)
        .thread_name_prefix("fetchall")
        .queue_bound(args.max_workers.saturating_mul(QUEUE_PER_WORKER));
    let report = match args.backend {
        Backend::Pool => drive(builder.build(), &lines, fetch, options, &stderr)?,
        #[cfg(feature = "rayon")]
        Backend::Rayon => drive(builder.build_rayon(), &lines, fetch, options, &stderr)?,
        #[cfg(not(feature = "rayon"))]
        Backend::Rayon => return Err(NO_RAYON.into()),
        Backend::Sequential => drive(Ok(Sequential), &lines, fetch, options, &stderr)?,
    };
    Ok(conclude(report, args.quiet))
}

/// The progress line: on when stderr is a terminal, unless `--no-progress` or `-q`. The total
/// is counted ahead for a regular file; for other input the reader tells it (`read`) when it
/// reaches the end.
fn progress(args: &Args, stderr: &StatusLine, shard: Shard, read: Receiver<u64>) -> Progress {
    if args.no_progress || args.quiet || !io::stderr().is_terminal() {
        return Progress::off();
    }
    let counted = match args.file.as_deref() {
        Some(path) if path != Path::new("-") => count_lines(path, shard),
        _ => None,
    };
    Progress::on(stderr.clone(), read, counted, io::stdout().is_terminal())
}

/// Starts the executor, hands it to the Ctrl-C handler too, and runs the loop on stdout.
fn drive<E>(
    executor: Result<E, BuildError>,
    lines: &Receiver<Event>,
    fetch: Arc<FetchFn>,
    options: Options,
    stderr: &StatusLine,
) -> Result<Report, String>
where
    E: Executor + Send + 'static,
{
    let executor = Arc::new(executor.map_err(|e| format!("cannot start the pool: {e}"))?);
    let interrupted = Arc::new(AtomicBool::new(false));
    let (for_handler, flag, line) = (executor.clone(), interrupted.clone(), stderr.clone());
    let installed = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // Leave the shell a clean line; `exit` runs no destructor that would.
            line.try_clear();
            std::process::exit(EXIT_INTERRUPTED.into());
        }
        tracing::warn!("interrupted: stopping (press Ctrl-C again to quit at once)");
        // Unblocks a submit waiting on a full queue, and spares the queued URLs.
        for_handler.cancel_pending();
    });
    if let Err(e) = installed {
        tracing::warn!("Ctrl-C will stop the program without a report: {e}");
    }
    let stdout = io::stdout().lock();
    let report = fetch_all(&*executor, lines, fetch, stdout, options, &interrupted);
    if matches!(
        report.end,
        End::Interrupted | End::BrokenPipe | End::Output(_)
    ) {
        // Dropping the pool would join its workers, which may be stuck in fetches for up to the
        // timeout. The process is about to exit, which ends them: detach the pool instead. (An
        // installed Ctrl-C handler holds the other reference, which is never dropped.)
        if let Ok(executor) = Arc::try_unwrap(executor) {
            executor.detach();
        }
    }
    Ok(report)
}

/// The real fetch: one [`Fetcher`] (one connection pool) shared by every worker.
fn fetcher(args: &Args) -> Arc<FetchFn> {
    let mut options = FetchOptions::default();
    options.timeout = args.timeout;
    options.retries = args.retries;
    options.method = args.method;
    options.headers = args.headers.iter().cloned().collect();
    options.user_agent = args.user_agent.clone();
    options.accept = args.accept.clone();
    options.max_redirects = args.max_redirects;
    options.insecure = args.insecure;
    if args.insecure {
        tracing::warn!("--insecure: TLS certificates and host names are not verified");
    }
    if args.demo {
        // The demo fetches only its own server on 127.0.0.1, which a proxy named in the
        // environment could not reach.
        options.proxies = Proxies::none();
    }
    // Every worker may keep a connection to the same host alive.
    options.max_idle_connections_per_host =
        options.max_idle_connections_per_host.max(args.max_workers);
    checks(args, &mut options);
    let fetcher = Fetcher::new(options);
    Arc::new(move |url: &str| {
        let transfer = fetcher.fetch(url);
        let facts = transfer.facts;
        match transfer.result {
            Ok(page) => Ok(Fetched {
                bytes: page.bytes,
                status: page.status,
                attempts: page.attempts,
                facts,
            }),
            Err(e) => Err(Failure {
                status: e.status(),
                message: e.to_string(),
                attempts: Some(e.attempts()),
                kind: FailureKind::Fetch(e.kind()),
                facts: Box::new(facts),
            }),
        }
    })
}

/// The content checks and the time budget (`--expect`, `--reject`, `--expect-header`,
/// `--scan-limit`, `--slow`). Expected texts are tried before patterns, rejected ones after.
fn checks(args: &Args, options: &mut FetchOptions) {
    let checks = &mut options.checks;
    for text in &args.expect {
        checks.expect(Pattern::text(text.as_str()));
    }
    for pattern in &args.expect_regex {
        checks.expect(pattern.clone());
    }
    for text in &args.reject {
        checks.reject(Pattern::text(text.as_str()));
    }
    for pattern in &args.reject_regex {
        checks.reject(pattern.clone());
    }
    for header in &args.expect_header {
        checks.expect_header(header.clone());
    }
    checks.set_scan_limit(args.scan_limit);
    options.slow = args.slow;
}

/// Logs go to stderr, through `stderr` so that they never land on the progress line: warnings
/// by default, each URL's trail with `-v`, everything with `-vv`; `RUST_LOG` wins over both.
fn init_logging(verbose: u8, stderr: StatusLine) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,fetchall=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(stderr)
        .with_ansi(io::stderr().is_terminal());
    if verbose == 0 {
        // A warning reads like any command-line tool's: `WARN interrupted: ...`. Timestamps and
        // module paths are for the -v trail, where they tell the URLs' timeline apart.
        logs.without_time().with_target(false).init();
    } else {
        logs.init();
    }
}

/// Prints the summary and picks the exit status.
fn conclude(report: Report, quiet: bool) -> ExitCode {
    let summary = |interrupted: bool| {
        if !quiet {
            // A closed stderr is no reason to fail: the results are on stdout.
            let _ = writeln!(
                io::stderr(),
                "{}",
                report.summary.line(report.wall, interrupted)
            );
        }
    };
    let failed = || {
        if report.summary.failed() > 0 {
            ExitCode::from(EXIT_FAILED)
        } else {
            ExitCode::SUCCESS
        }
    };
    match &report.end {
        End::Finished => {
            summary(false);
            failed()
        }
        End::Interrupted => {
            summary(true);
            ExitCode::from(EXIT_INTERRUPTED)
        }
        // Whoever closed the pipe has what they wanted (`| head -1`), as in ripgrep.
        End::BrokenPipe => ExitCode::SUCCESS,
        End::Input(e) => {
            summary(false);
            let _ = writeln!(io::stderr(), "fetchall: error reading the input: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        End::Output(e) => {
            let _ = writeln!(io::stderr(), "fetchall: cannot write the results: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Every line has its result line.
    Finished,
    /// Ctrl-C: every submitted line has its result line, the rest of the input was not read.
    Interrupted,
    /// Stdout was closed (`fetchall urls.txt | head -1`).
    BrokenPipe,
    /// Reading the input failed part way; the lines read before have their result lines.
    Input(io::Error),
    /// Writing to stdout failed for another reason.
    Output(io::Error),
}

/// What [`fetch_all`] reports back.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) end: End,
    pub(crate) summary: Summary,
    pub(crate) wall: Duration,
}

/// What the run loop does besides fetching: the output format, `--ordered`, `--per-host` and
/// the progress line.
#[derive(Debug)]
pub(crate) struct Options {
    /// `--format`.
    pub(crate) format: Format,
    /// `--ordered`: print in input order.
    pub(crate) ordered: bool,
    /// `--per-host`: the most requests at once to one host.
    pub(crate) per_host: Option<NonZeroUsize>,
    /// The progress line, or [`Progress::off`].
    pub(crate) progress: Progress,
}

impl Options {
    /// With `--ordered`, the most lines taken and not printed yet: the tasks in flight, and
    /// with `--per-host` the URLs held back too. A slow line holds up the printing of the ones
    /// after it, and this is how far the run reads on meanwhile.
    pub(crate) fn window(&self, max_workers: usize) -> usize {
        let held = if self.per_host.is_some() { MAX_HELD } else { 0 };
        in_flight_limit(max_workers) + held
    }
}

/// A line taken from the input, numbered in input order.
#[derive(Debug)]
struct Taken {
    seq: u64,
    line: Line,
    /// When it was taken, since the run started.
    at: Duration,
}

/// A submitted line, kept until its result is printed: what a task that yields no
/// [`Outcome`] (cancelled, interrupted, panicked) is reported under.
struct Submitted {
    seq: u64,
    url: String,
    queued: Duration,
    /// Its host's slot, under `--per-host`.
    slot: Option<Slot>,
}

/// The outcome of a line that produced none of its own.
fn unfinished(
    url: String,
    queued: Duration,
    kind: FailureKind,
    message: impl Into<String>,
) -> Outcome {
    Outcome {
        url,
        result: Err(Failure::new(kind, message)),
        timeline: Timeline {
            queued,
            ..Timeline::default()
        },
    }
}

/// What a line is shown as in its result line.
fn shown(line: &Line) -> &str {
    match line {
        Line::Url(url) => url,
        Line::Rejected { shown, .. } => shown,
    }
}

/// Runs every line from `lines` through `executor` with `fetch`, writing one line per result
/// to `out` as results come in, until the input ends, `interrupted` is set, or `out` closes.
pub(crate) fn fetch_all<E: Executor>(
    executor: &E,
    lines: &Receiver<Event>,
    fetch: Arc<FetchFn>,
    out: impl Write,
    options: Options,
    interrupted: &AtomicBool,
) -> Report {
    let max_workers = executor.max_workers();
    let mut run = Run {
        executor,
        fetch,
        start: Instant::now(),
        limit: in_flight_limit(max_workers),
        pending: AsCompleted::new(),
        in_flight: HashMap::new(),
        backlog: VecDeque::new(),
        taken: 0,
        input_open: true,
        input_error: None,
        hosts: options.per_host.map(Hosts::new),
        window: options.window(max_workers),
        order: options.ordered.then(Reorder::new),
        progress: options.progress,
        out,
        format: options.format,
        summary: Summary::default(),
    };
    let end = match run.main_loop(lines, interrupted) {
        Ok(()) => match run.input_error.take() {
            None => End::Finished,
            Some(e) => End::Input(e),
        },
        Err(Stop::Interrupted) => match run.report_unfinished() {
            Ok(()) => End::Interrupted,
            Err(stop) => stop.into_end(),
        },
        Err(stop) => {
            executor.cancel_pending();
            stop.into_end()
        }
    };
    Report {
        end,
        wall: run.start.elapsed(),
        summary: run.summary,
    }
}

/// Why the main loop stopped early.
enum Stop {
    Interrupted,
    Output(io::Error),
}

impl Stop {
    fn into_end(self) -> End {
        match self {
            Stop::Interrupted => End::Interrupted,
            Stop::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => End::BrokenPipe,
            Stop::Output(e) => End::Output(e),
        }
    }
}

struct Run<'e, E, W> {
    executor: &'e E,
    fetch: Arc<FetchFn>,
    start: Instant,
    limit: usize,
    pending: AsCompleted<Outcome>,
    in_flight: HashMap<u64, Submitted>,
    /// Lines received from the reader and not taken yet: at most one batch.
    backlog: VecDeque<Line>,
    /// Lines taken from the backlog so far: the next one's sequence number.
    taken: u64,
    input_open: bool,
    input_error: Option<io::Error>,
    /// Per-host slots and held-back lines, with `--per-host`.
    hosts: Option<Hosts<Taken>>,
    /// With `--ordered`: results waiting for the lines before them.
    order: Option<Reorder<Outcome>>,
    /// See [`Options::window`].
    window: usize,
    progress: Progress,
    out: W,
    format: Format,
    summary: Summary,
}

impl<E: Executor, W: Write> Run<'_, E, W> {
    fn main_loop(&mut self, lines: &Receiver<Event>, interrupted: &AtomicBool) -> Result<(), Stop> {
        let stop_requested = || {
            if interrupted.load(Ordering::SeqCst) {
                Err(Stop::Interrupted)
            } else {
                Ok(())
            }
        };
        loop {
            stop_requested()?;
            while let Some(handle) = self.pending.try_next() {
                self.finish(handle)?;
            }
            self.progress.update(self.counts());
            let mut submitted = false;
            while self.in_flight.len() < self.limit {
                stop_requested()?;
                let now = Instant::now();
                // Lines held back for their host go first: they were read first.
                if let Some((taken, slot)) = self.hosts.as_mut().and_then(|h| h.next_ready(now)) {
                    self.submit(taken, Some(slot));
                } else if !self.room_to_take() {
                    break;
                } else if let Some(line) = self.ready_line(lines) {
                    self.dispatch(line, now);
                } else {
                    break;
                }
                submitted = true;
            }
            let held = self.hosts.as_ref().map_or(0, Hosts::held);
            if !self.input_open && self.backlog.is_empty() && self.in_flight.is_empty() && held == 0
            {
                return Ok(());
            }
            if !submitted {
                self.wait(lines)?;
            }
        }
    }

    /// Waits for whatever can come next: a completion, an input line, or a paused host's turn.
    fn wait(&mut self, lines: &Receiver<Event>) -> Result<(), Stop> {
        let now = Instant::now();
        let room = self.in_flight.len() < self.limit;
        // A paused host's turn matters only if there is room to submit its URL.
        let poll = match self.hosts.as_ref().and_then(Hosts::next_wake) {
            Some(at) if room => POLL.min(at.saturating_duration_since(now)),
            _ => POLL,
        };
        let reading = self.input_open && self.room_to_take();
        if self.in_flight.is_empty() {
            if reading {
                // Nothing runs: only the input can bring something (or a paused host its turn).
                match lines.recv_timeout(poll) {
                    Ok(event) => self.take(event),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.input_open = false,
                }
            } else {
                // All that is left waits for a paused host.
                thread::sleep(poll);
            }
        } else {
            let wait = if reading && room {
                poll.min(POLL_BOTH)
            } else {
                poll
            };
            // A time-out is not an error here: it is the moment to look at the flag again.
            if let Ok(Some(handle)) = self.pending.next_timeout(wait) {
                self.finish(handle)?;
            }
        }
        Ok(())
    }

    /// May another line be taken from the input? Not while the held-back lines are at their
    /// limit, nor, with `--ordered`, while the window is full.
    fn room_to_take(&self) -> bool {
        let held = self.hosts.as_ref().map_or(0, Hosts::held);
        let unprinted = self.order.as_ref().map_or(0, |o| self.taken - o.next());
        held < MAX_HELD && unprinted < self.window as u64
    }

    /// The next line read and not taken yet, without waiting for the reader.
    fn ready_line(&mut self, lines: &Receiver<Event>) -> Option<Line> {
        if self.backlog.is_empty() && self.input_open {
            match lines.try_recv() {
                Ok(event) => self.take(event),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.input_open = false,
            }
        }
        self.backlog.pop_front()
    }

    /// Takes one event from the reader: a batch of lines into the backlog, or the read error.
    fn take(&mut self, event: Event) {
        match event {
            Event::Lines(lines) => self.backlog.extend(lines),
            Event::Failed(e) => {
                self.input_error = Some(e);
                self.input_open = false;
            }
        }
    }

    /// Numbers a line, then submits it, or holds it back while its host is at its limit.
    fn dispatch(&mut self, line: Line, now: Instant) {
        let taken = Taken {
            seq: self.taken,
            line,
            at: self.start.elapsed(),
        };
        self.taken += 1;
        let key = match (&self.hosts, &taken.line) {
            (Some(_), Line::Url(url)) => host_key(url),
            _ => None,
        };
        match (self.hosts.as_mut(), key) {
            (Some(hosts), Some(key)) => match hosts.admit(&key, taken, now) {
                Some((taken, slot)) => self.submit(taken, Some(slot)),
                None => tracing::debug!(host = %key, held = hosts.held(), "held back"),
            },
            // Not a URL to fetch: no request, no slot.
            _ => self.submit(taken, None),
        }
    }

    fn submit(&mut self, taken: Taken, slot: Option<Slot>) {
        let Taken { seq, line, .. } = taken;
        let url = shown(&line).to_owned();
        let queued = self.start.elapsed();
        let (fetch, start) = (self.fetch.clone(), self.start);
        let handle = self
            .executor
            .submit(move || run_line(line, &*fetch, start, queued));
        tracing::debug!(%url, task = handle.id(), "queued");
        let submitted = Submitted {
            seq,
            url,
            queued,
            slot,
        };
        self.in_flight.insert(handle.id(), submitted);
        self.pending.push(handle);
    }

    /// Prints the result of a finished task, and frees its host's slot.
    fn finish(&mut self, handle: TaskHandle<Outcome>) -> Result<(), Stop> {
        let Submitted {
            seq,
            url,
            queued,
            slot,
        } = self.submitted(&handle);
        let outcome = match handle.join() {
            Ok(outcome) => outcome,
            Err(TaskError::Cancelled) => {
                unfinished(url, queued, FailureKind::Cancelled, "cancelled")
            }
            Err(e) => unfinished(url, queued, FailureKind::Panicked, e.to_string()),
        };
        if let (Some(hosts), Some(slot)) = (self.hosts.as_mut(), slot) {
            let throttled = matches!(&outcome.result, Err(f) if f.status == Some(429));
            hosts.release(slot, throttled, Instant::now());
        }
        self.deliver(seq, outcome)
    }

    fn submitted(&mut self, handle: &TaskHandle<Outcome>) -> Submitted {
        // Every handle in `pending` was put in `in_flight` just before, and leaves both at once.
        self.in_flight
            .remove(&handle.id())
            .expect("every pending task is in flight")
    }

    /// After Ctrl-C: cancels what is queued and prints a line for every line taken without
    /// waiting for the running fetches, which are reported as interrupted. Lines held back for
    /// their host are reported as cancelled.
    fn report_unfinished(&mut self) -> Result<(), Stop> {
        let cancelled = self.executor.cancel_pending();
        tracing::debug!(cancelled, running = self.in_flight.len(), "interrupted");
        while let Some(handle) = self.pending.try_next() {
            self.finish(handle)?;
        }
        let rest = std::mem::take(&mut self.pending).into_remaining();
        for handle in rest {
            if handle.is_finished() {
                self.finish(handle)?;
            } else {
                // Running, or cancelled but not yet resolved (rayon resolves a cancelled task
                // only when one of its threads reaches it).
                let (kind, message) = if handle.is_running() {
                    (FailureKind::Interrupted, "interrupted")
                } else {
                    (FailureKind::Cancelled, "cancelled")
                };
                let Submitted {
                    seq, url, queued, ..
                } = self.submitted(&handle);
                self.deliver(seq, unfinished(url, queued, kind, message))?;
            }
        }
        let held = self.hosts.as_mut().map(Hosts::drain).unwrap_or_default();
        for Taken { seq, line, at } in held {
            // Never submitted: `queued` is when it was taken from the input.
            let url = shown(&line).to_owned();
            self.deliver(
                seq,
                unfinished(url, at, FailureKind::Cancelled, "cancelled"),
            )?;
        }
        Ok(())
    }

    /// Prints `outcome` now, or with `--ordered` once every line before it is printed.
    fn deliver(&mut self, seq: u64, outcome: Outcome) -> Result<(), Stop> {
        let Some(order) = self.order.as_mut() else {
            return self.emit(&outcome);
        };
        order.insert(seq, outcome);
        while let Some(next) = self.order.as_mut().and_then(Reorder::pop) {
            self.emit(&next)?;
        }
        Ok(())
    }

    fn emit(&mut self, outcome: &Outcome) -> Result<(), Stop> {
        self.summary.record(outcome);
        let line = match self.format {
            Format::Text => format_line(outcome),
            Format::Json => format_json(outcome),
        };
        self.progress.before_stdout();
        // One write and one flush per line: each line shows as soon as its URL completes, and
        // a closed stdout is noticed at the next line.
        writeln!(self.out, "{line}")
            .and_then(|()| self.out.flush())
            .map_err(Stop::Output)
    }

    fn counts(&self) -> Counts {
        Counts {
            ok: self.summary.ok(),
            failed: self.summary.failed(),
            in_flight: self.in_flight.len(),
            held: self.hosts.as_ref().map_or(0, Hosts::held),
        }
    }
}

/// The task for one line, run on a worker: fetches it and records when and where.
fn run_line(line: Line, fetch: &FetchFn, start: Instant, queued: Duration) -> Outcome {
    let started = start.elapsed();
    let worker = thread::current().name().map(str::to_owned);
    let (url, result, elapsed) = match line {
        Line::Url(url) => {
            tracing::debug!(%url, worker = worker.as_deref(), "started");
            let begun = Instant::now();
            let result = fetch(&url);
            let elapsed = begun.elapsed();
            match &result {
                Ok(page) => tracing::debug!(
                    %url, status = page.status, bytes = page.bytes, ?elapsed, "fetched"
                ),
                Err(failure) => tracing::debug!(
                    %url, status = failure.status, error = %failure.message, ?elapsed, "failed"
                ),
            }
            (url, result, Some(elapsed))
        }
        Line::Rejected { shown, reason } => {
            tracing::debug!(url = %shown, %reason, "rejected");
            (shown, Err(Failure::new(FailureKind::Input, reason)), None)
        }
    };
    Outcome {
        url,
        result,
        timeline: Timeline {
            queued,
            started: Some(started),
            elapsed,
            worker,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{self, Sender};

    /// Generous: the machine is shared and noisy.
    const LIMIT: Duration = Duration::from_secs(30);

    fn lines_of(text: &str) -> Receiver<Event> {
        spawn_reader(
            Source::Memory(text.as_bytes().to_vec()),
            PathBuf::from("test"),
            Shard::ALL,
        )
        .unwrap()
        .0
    }

    impl Options {
        /// Results in `format`, in completion order, no per-host limit, no progress line.
        fn plain(format: Format) -> Options {
            Options {
                format,
                ordered: false,
                per_host: None,
                progress: Progress::off(),
            }
        }
    }

    /// A stand-in fetch: the page size is the URL's length; URLs with "fail" fail.
    fn by_length() -> Arc<FetchFn> {
        Arc::new(|url: &str| {
            if url.contains("fail") {
                Err(Failure {
                    message: "HTTP Error 500: Internal Server Error".into(),
                    status: Some(500),
                    attempts: Some(1),
                    kind: FailureKind::Fetch(fetchall::fetch::ErrorKind::Status),
                    facts: Box::default(),
                })
            } else {
                Ok(Fetched {
                    bytes: url.len() as u64,
                    status: 200,
                    attempts: 1,
                    facts: fetchall::fetch::Facts::default(),
                })
            }
        })
    }

    /// Runs `f` on a helper thread and fails the test if it takes longer than [`LIMIT`].
    fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(LIMIT).expect("hung, or panicked")
    }

    fn sorted_lines(bytes: &[u8]) -> Vec<String> {
        let mut lines: Vec<String> = String::from_utf8_lossy(bytes)
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    const INPUT: &str = "http://a/\n\n# comment\nhttp://bb/\nnot a url fail\nhttp://a/\n";

    fn expected() -> Vec<String> {
        let mut lines = vec![
            "'http://a/' page is 9 bytes".to_owned(),
            "'http://a/' page is 9 bytes".to_owned(),
            "'http://bb/' page is 10 bytes".to_owned(),
            "'not a url fail' generated an exception: HTTP Error 500: Internal Server Error"
                .to_owned(),
        ];
        lines.sort();
        lines
    }

    #[test]
    fn every_line_gets_one_result_on_each_executor() {
        let (pool_out, seq_out) = within(|| {
            let no = AtomicBool::new(false);
            let mut pool_out = Vec::new();
            let pool = ThreadPool::new(3);
            let report = fetch_all(
                &pool,
                &lines_of(INPUT),
                by_length(),
                &mut pool_out,
                Options::plain(Format::Text),
                &no,
            );
            assert!(matches!(report.end, End::Finished), "{:?}", report.end);
            assert_eq!(report.summary.failed(), 1);
            let mut seq_out = Vec::new();
            let report = fetch_all(
                &Sequential,
                &lines_of(INPUT),
                by_length(),
                &mut seq_out,
                Options::plain(Format::Text),
                &no,
            );
            assert!(matches!(report.end, End::Finished));
            (pool_out, seq_out)
        });
        assert_eq!(sorted_lines(&pool_out), expected());
        assert_eq!(sorted_lines(&seq_out), expected());
    }

    #[test]
    fn json_lines_carry_the_timeline() {
        let out = within(|| {
            let mut out = Vec::new();
            let pool = ThreadPool::builder()
                .num_threads(2)
                .thread_name_prefix("fetchall")
                .build()
                .unwrap();
            fetch_all(
                &pool,
                &lines_of("http://a/\n"),
                by_length(),
                &mut out,
                Options::plain(Format::Json),
                &AtomicBool::new(false),
            );
            out
        });
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["url"], "http://a/");
        assert_eq!(v["bytes"], 9);
        assert!(v["worker"].as_str().unwrap().starts_with("fetchall_"));
        assert!(v["started_ms"].as_f64().unwrap() >= v["queued_ms"].as_f64().unwrap());
    }

    /// Counts submits, and tells the test about each.
    struct Counting {
        inner: ThreadPool,
        submits: Sender<()>,
    }

    impl Executor for Counting {
        fn submit<T, F>(&self, f: F) -> TaskHandle<T>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            let _ = self.submits.send(());
            self.inner.submit(f)
        }

        fn max_workers(&self) -> usize {
            self.inner.max_workers()
        }

        fn cancel_pending(&self) -> usize {
            self.inner.cancel_pending()
        }
    }

    /// A fetch that blocks until the gate opens (or the test gives up), telling `started` first.
    fn gated(started: Sender<()>, gate: Receiver<()>) -> Arc<FetchFn> {
        let gate = std::sync::Mutex::new(gate);
        let started = std::sync::Mutex::new(started);
        Arc::new(move |_url: &str| {
            let _ = started.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv_timeout(LIMIT);
            Ok(Fetched {
                bytes: 0,
                status: 200,
                attempts: 1,
                facts: fetchall::fetch::Facts::default(),
            })
        })
    }

    /// [`gated`] for the URLs that contain `which`; [`by_length`] for the others.
    fn gated_only(which: &'static str, started: Sender<()>, gate: Receiver<()>) -> Arc<FetchFn> {
        let (slow, fast) = (gated(started, gate), by_length());
        Arc::new(move |url: &str| {
            if url.contains(which) {
                slow(url)
            } else {
                fast(url)
            }
        })
    }

    /// The URL of each result line, in the order printed.
    fn urls_printed(out: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| l.split('\'').nth(1).unwrap_or_default().to_owned())
            .collect()
    }

    /// A run on a 2-worker pool that reports its submits, with the fetch gated for the URLs
    /// that contain "slow": the test's ends of it.
    struct GatedRun {
        /// The report and the output, when the run ends.
        done: Receiver<(Report, Vec<u8>)>,
        submits: Receiver<()>,
        /// A gated fetch started.
        started: Receiver<()>,
        /// Dropping it opens the gate.
        open: Sender<()>,
    }

    impl GatedRun {
        fn start(
            lines: Receiver<Event>,
            options: Options,
            interrupted: Arc<AtomicBool>,
        ) -> GatedRun {
            let (submits_tx, submits) = mpsc::channel();
            let (started_tx, started) = mpsc::channel();
            let (open, gate) = mpsc::channel::<()>();
            let (tx, done) = mpsc::channel();
            thread::spawn(move || {
                let pool = Counting {
                    inner: ThreadPool::new(2),
                    submits: submits_tx,
                };
                let mut out = Vec::new();
                let fetch = gated_only("slow", started_tx, gate);
                let report = fetch_all(&pool, &lines, fetch, &mut out, options, &interrupted);
                // Sent before the pool is dropped: dropping it waits for the hung fetches,
                // which end when the test drops the gate.
                let _ = tx.send((report, out));
            });
            GatedRun {
                done,
                submits,
                started,
                open,
            }
        }

        /// Waits for `n` submits.
        fn submitted(&self, n: usize) {
            for _ in 0..n {
                self.submits.recv_timeout(LIMIT).unwrap();
            }
        }

        fn end(&self) -> (Report, Vec<u8>) {
            self.done.recv_timeout(LIMIT).expect("the run did not end")
        }

        /// Lets every gated fetch finish, and waits for the end.
        fn open_gate(self) -> (Report, Vec<u8>) {
            let GatedRun { done, open, .. } = self;
            drop(open);
            done.recv_timeout(LIMIT).expect("the run did not end")
        }
    }

    /// `n` URLs, the first of them gated.
    fn slow_then_fast(n: usize) -> Vec<String> {
        std::iter::once("http://h/slow".to_owned())
            .chain((1..n).map(|i| format!("http://h/{i}")))
            .collect()
    }

    fn ordered() -> Options {
        Options {
            ordered: true,
            ..Options::plain(Format::Text)
        }
    }

    #[test]
    fn ordered_output_follows_the_input_and_a_slow_line_bounds_the_look_ahead() {
        let urls = slow_then_fast(1000);
        let run = GatedRun::start(lines_of(&urls.join("\n")), ordered(), Arc::default());
        run.started.recv_timeout(LIMIT).unwrap();
        run.submitted(ordered().window(2));
        // The first line is not printed yet, so nothing past the window is taken.
        assert!(
            run.submits
                .recv_timeout(Duration::from_millis(200))
                .is_err()
        );
        let (report, out) = run.open_gate();
        assert!(matches!(report.end, End::Finished));
        assert_eq!(urls_printed(&out), urls);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("'http://h/slow' page is 0 bytes\n'http://h/1' page is 10 bytes\n")
        );
    }

    #[test]
    fn an_interrupt_with_ordered_output_still_prints_every_taken_line_in_order() {
        let urls = slow_then_fast(100);
        let interrupted = Arc::new(AtomicBool::new(false));
        let run = GatedRun::start(lines_of(&urls.join("\n")), ordered(), interrupted.clone());
        run.started.recv_timeout(LIMIT).unwrap();
        let window = ordered().window(2);
        run.submitted(window);
        interrupted.store(true, Ordering::SeqCst);
        let (report, out) = run.end();
        assert!(matches!(report.end, End::Interrupted));
        assert_eq!(urls_printed(&out), urls[..window]);
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("'http://h/slow' generated an exception: interrupted")
        );
        for line in lines {
            assert!(
                line.ends_with(" bytes") || line.ends_with("exception: cancelled"),
                "{line}"
            );
        }
    }

    #[test]
    fn per_host_holds_back_a_bounded_number_of_lines_then_stops_reading() {
        const BATCH: usize = 64;
        let total = MAX_HELD + 2000;
        let (feed, lines) = mpsc::sync_channel(1);
        let (sent_tx, sent) = mpsc::channel();
        thread::spawn(move || {
            for first in (0..total).step_by(BATCH) {
                let batch = (first..total.min(first + BATCH))
                    .map(|i| Line::Url(format!("http://one.host/slow{i}")))
                    .collect::<Vec<_>>();
                let n = batch.len();
                if feed.send(Event::Lines(batch)).is_err() || sent_tx.send(first + n).is_err() {
                    return;
                }
            }
        });
        let options = Options {
            per_host: NonZeroUsize::new(1),
            ..Options::plain(Format::Text)
        };
        let run = GatedRun::start(lines, options, Arc::default());
        run.started.recv_timeout(LIMIT).unwrap();
        // One URL runs, the others of its host are held back, up to the limit.
        let mut read = 0;
        while read < MAX_HELD {
            read = sent
                .recv_timeout(LIMIT)
                .expect("the held-back lines reach the limit");
        }
        while let Ok(n) = sent.recv_timeout(Duration::from_millis(200)) {
            read = n;
        }
        // Held, running, the batch being taken and the one in the channel.
        assert!(read <= MAX_HELD + 1 + 2 * BATCH, "read {read} lines");
        assert!(read < total);
        let (report, out) = run.open_gate();
        assert!(matches!(report.end, End::Finished), "{:?}", report.end);
        assert_eq!(urls_printed(&out).len(), total);
        assert_eq!(report.summary.ok(), total as u64);
    }

    #[test]
    fn submits_stop_at_the_in_flight_limit_while_workers_are_busy() {
        let (submits_tx, submits) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        let (open, gate) = mpsc::channel::<()>();
        let input: String = (0..1000).map(|i| format!("http://h/{i}\n")).collect();
        let done = thread::spawn(move || {
            let pool = Counting {
                inner: ThreadPool::builder()
                    .num_threads(1)
                    .queue_bound(QUEUE_PER_WORKER)
                    .build()
                    .unwrap(),
                submits: submits_tx,
            };
            let mut out = Vec::new();
            let report = fetch_all(
                &pool,
                &lines_of(&input),
                gated(started_tx, gate),
                &mut out,
                Options::plain(Format::Text),
                &AtomicBool::new(false),
            );
            (report, out)
        });
        started.recv_timeout(LIMIT).unwrap();
        let limit = in_flight_limit(1);
        for _ in 0..limit {
            submits.recv_timeout(LIMIT).unwrap();
        }
        // The one worker is blocked: nothing may be submitted past the limit.
        assert!(submits.recv_timeout(Duration::from_millis(200)).is_err());
        drop(open); // every fetch returns at once from now on
        let (report, out) = done.join().unwrap();
        assert!(matches!(report.end, End::Finished));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1000);
    }

    #[test]
    fn an_interrupt_reports_every_submitted_line_without_waiting() {
        let interrupted = Arc::new(AtomicBool::new(false));
        let input: String = (0..50).map(|i| format!("http://h/slow{i}\n")).collect();
        let options = Options::plain(Format::Text);
        let run = GatedRun::start(lines_of(&input), options, interrupted.clone());
        let limit = in_flight_limit(2);
        run.submitted(limit);
        run.started.recv_timeout(LIMIT).unwrap();
        run.started.recv_timeout(LIMIT).unwrap();
        interrupted.store(true, Ordering::SeqCst);
        let (report, out) = run.end();
        assert!(matches!(report.end, End::Interrupted));
        let text = String::from_utf8(out).unwrap();
        let ending = |end: &str| text.lines().filter(|l| l.ends_with(end)).count();
        assert_eq!(ending("exception: interrupted"), 2, "{text}");
        assert_eq!(ending("exception: cancelled"), limit - 2, "{text}");
        assert_eq!(text.lines().count(), limit);
        assert_eq!(report.summary.failed(), limit as u64);
    }

    /// A stdout whose reader went away after `left` lines.
    struct ClosesAfter {
        left: usize,
    }

    impl Write for ClosesAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.left -= buf.iter().filter(|&&b| b == b'\n').count();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stdout_stops_the_run() {
        let report = within(|| {
            let input: String = (0..100_000).map(|i| format!("http://h/{i}\n")).collect();
            let pool = ThreadPool::new(2);
            fetch_all(
                &pool,
                &lines_of(&input),
                by_length(),
                ClosesAfter { left: 1 },
                Options::plain(Format::Text),
                &AtomicBool::new(false),
            )
        });
        assert!(matches!(report.end, End::BrokenPipe), "{:?}", report.end);
        assert!(report.summary.failed() == 0);
    }

    #[test]
    fn a_panicking_fetch_is_a_failed_line() {
        let out = within(|| {
            let fetch: Arc<FetchFn> = Arc::new(|_: &str| panic!("boom"));
            let mut out = Vec::new();
            fetch_all(
                &Sequential,
                &lines_of("http://a/\n"),
                fetch,
                &mut out,
                Options::plain(Format::Text),
                &AtomicBool::new(false),
            );
            out
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "'http://a/' generated an exception: task panicked: boom\n"
        );
    }
}
