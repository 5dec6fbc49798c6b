//! The run loop: read lines, submit a task per line through any [`Executor`], print each
//! outcome as it completes, and stop cleanly on Ctrl-C or a closed stdout.
//!
//! Only the main thread writes to stdout. It never blocks for long: lines arrive over a channel
//! from the reader thread (see [`crate::input`]), completions are polled with
//! [`AsCompleted::next_timeout`], and at most [`in_flight_limit`] tasks are outstanding, so a
//! submit to the executor's bounded queue never waits on more than a worker picking up its next
//! task. Memory stays the same whether the input has ten lines or ten million.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use fetchall::{
    AsCompleted, BuildError, Executor, FetchOptions, Fetcher, Proxies, Sequential, TaskError,
    TaskHandle, ThreadPool,
};
use tracing_subscriber::EnvFilter;

use crate::cli::{Args, Backend, Format};
use crate::demo;
use crate::input::{Event, Line, Source, spawn_reader};
use crate::output::{Failure, Fetched, Outcome, Summary, Timeline, format_json, format_line};

/// Fetches one URL: the real one wraps [`fetchall::Fetcher`], tests pass stand-ins.
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
    init_logging(args.verbose);
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
    let lines = spawn_reader(source, name).map_err(|e| format!("cannot start reading: {e}"))?;
    let fetch = fetcher(args);
    let builder = ThreadPool::builder()
        .num_threads(args.max_workers)
        .thread_name_prefix("fetchall")
        .queue_bound(args.max_workers.saturating_mul(QUEUE_PER_WORKER));
    let report = match args.backend {
        Backend::Pool => drive(builder.build(), &lines, fetch, args.format)?,
        #[cfg(feature = "rayon")]
        Backend::Rayon => drive(builder.build_rayon(), &lines, fetch, args.format)?,
        #[cfg(not(feature = "rayon"))]
        Backend::Rayon => return Err(NO_RAYON.into()),
        Backend::Sequential => drive(Ok(Sequential), &lines, fetch, args.format)?,
    };
    Ok(conclude(report, args.quiet))
}

/// Starts the executor, hands it to the Ctrl-C handler too, and runs the loop on stdout.
fn drive<E>(
    executor: Result<E, BuildError>,
    lines: &Receiver<Event>,
    fetch: Arc<FetchFn>,
    format: Format,
) -> Result<Report, String>
where
    E: Executor + Send + 'static,
{
    let executor = Arc::new(executor.map_err(|e| format!("cannot start the pool: {e}"))?);
    let interrupted = Arc::new(AtomicBool::new(false));
    let (for_handler, flag) = (executor.clone(), interrupted.clone());
    let installed = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
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
    let report = fetch_all(&*executor, lines, fetch, stdout, format, &interrupted);
    if matches!(
        report.end,
        End::Interrupted | End::BrokenPipe | End::Output(_)
    ) {
        // Dropping the pool would join its workers, which may be stuck in fetches for up to the
        // timeout. The process is about to exit, which ends them; leave the pool be.
        std::mem::forget(executor);
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
    let fetcher = Fetcher::new(options);
    Arc::new(move |url: &str| {
        fetcher
            .load_url(url)
            .map(|page| Fetched {
                bytes: page.bytes,
                status: page.status,
                attempts: page.attempts,
            })
            .map_err(|e| Failure {
                status: e.status(),
                message: e.to_string(),
                attempts: Some(e.attempts()),
            })
    })
}

/// Logs go to stderr: warnings by default, each URL's trail with `-v`, everything with `-vv`;
/// `RUST_LOG` wins over both.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,fetchall=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
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

/// A submitted line, kept until its result is printed: what a task that yields no
/// [`Outcome`] (cancelled, interrupted, panicked) is reported under.
struct Submitted {
    url: String,
    queued: Duration,
}

impl Submitted {
    fn failed(self, message: impl Into<String>) -> Outcome {
        Outcome {
            url: self.url,
            result: Err(Failure::new(message)),
            timeline: Timeline {
                queued: self.queued,
                ..Timeline::default()
            },
        }
    }
}

/// Runs every line from `lines` through `executor` with `fetch`, writing one line per result
/// to `out` as results come in, until the input ends, `interrupted` is set, or `out` closes.
pub(crate) fn fetch_all<E: Executor>(
    executor: &E,
    lines: &Receiver<Event>,
    fetch: Arc<FetchFn>,
    out: impl Write,
    format: Format,
    interrupted: &AtomicBool,
) -> Report {
    let mut run = Run {
        executor,
        fetch,
        start: Instant::now(),
        limit: in_flight_limit(executor.max_workers()),
        pending: AsCompleted::new(),
        in_flight: HashMap::new(),
        backlog: VecDeque::new(),
        input_open: true,
        input_error: None,
        out,
        format,
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
    /// Lines received from the reader and not submitted yet: at most one batch.
    backlog: VecDeque<Line>,
    input_open: bool,
    input_error: Option<io::Error>,
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
            let mut submitted = false;
            while self.in_flight.len() < self.limit {
                stop_requested()?;
                let Some(line) = self.ready_line(lines) else {
                    break;
                };
                self.submit(line);
                submitted = true;
            }
            if !self.input_open && self.backlog.is_empty() && self.in_flight.is_empty() {
                return Ok(());
            }
            if submitted {
                continue;
            }
            if self.in_flight.is_empty() {
                // Nothing runs and nothing is ready: only the input can bring something.
                match lines.recv_timeout(POLL) {
                    Ok(event) => self.take(event),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.input_open = false,
                }
            } else {
                let room_for_input = self.input_open && self.in_flight.len() < self.limit;
                let wait = if room_for_input { POLL_BOTH } else { POLL };
                // A time-out is not an error here: it is the moment to look at the flag again.
                if let Ok(Some(handle)) = self.pending.next_timeout(wait) {
                    self.finish(handle)?;
                }
            }
        }
    }

    /// The next line read and not submitted yet, without waiting for the reader.
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

    fn submit(&mut self, line: Line) {
        let url = match &line {
            Line::Url(url) => url.clone(),
            Line::Rejected { shown, .. } => shown.clone(),
        };
        let queued = self.start.elapsed();
        let (fetch, start) = (self.fetch.clone(), self.start);
        let handle = self
            .executor
            .submit(move || run_line(line, &*fetch, start, queued));
        tracing::debug!(%url, task = handle.id(), "queued");
        self.in_flight
            .insert(handle.id(), Submitted { url, queued });
        self.pending.push(handle);
    }

    /// Prints the result of a finished task.
    fn finish(&mut self, handle: TaskHandle<Outcome>) -> Result<(), Stop> {
        let submitted = self.submitted(&handle);
        let outcome = match handle.join() {
            Ok(outcome) => outcome,
            Err(TaskError::Cancelled) => submitted.failed("cancelled"),
            Err(e) => submitted.failed(e.to_string()),
        };
        self.emit(&outcome)
    }

    fn submitted(&mut self, handle: &TaskHandle<Outcome>) -> Submitted {
        // Every handle in `pending` was put in `in_flight` just before, and leaves both at once.
        self.in_flight
            .remove(&handle.id())
            .expect("every pending task is in flight")
    }

    /// After Ctrl-C: cancels what is queued and prints a line for every submitted URL without
    /// waiting for the running fetches, which are reported as interrupted.
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
                let message = if handle.is_running() {
                    "interrupted"
                } else {
                    "cancelled"
                };
                let outcome = self.submitted(&handle).failed(message);
                self.emit(&outcome)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, outcome: &Outcome) -> Result<(), Stop> {
        self.summary.record(outcome);
        let line = match self.format {
            Format::Text => format_line(outcome),
            Format::Json => format_json(outcome),
        };
        // One write and one flush per line: each line shows as soon as its URL completes, and
        // a closed stdout is noticed at the next line.
        writeln!(self.out, "{line}")
            .and_then(|()| self.out.flush())
            .map_err(Stop::Output)
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
            (shown, Err(Failure::new(reason)), None)
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
        )
        .unwrap()
    }

    /// A stand-in fetch: the page size is the URL's length; URLs with "fail" fail.
    fn by_length() -> Arc<FetchFn> {
        Arc::new(|url: &str| {
            if url.contains("fail") {
                Err(Failure {
                    message: "HTTP Error 500: Internal Server Error".into(),
                    status: Some(500),
                    attempts: Some(1),
                })
            } else {
                Ok(Fetched {
                    bytes: url.len() as u64,
                    status: 200,
                    attempts: 1,
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
                Format::Text,
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
                Format::Text,
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
                Format::Json,
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
            })
        })
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
                Format::Text,
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
        let (submits_tx, submits) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        let (_open, gate) = mpsc::channel::<()>(); // never opened: fetches hang
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = interrupted.clone();
        let input: String = (0..50).map(|i| format!("http://h/{i}\n")).collect();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let pool = Counting {
                inner: ThreadPool::new(2),
                submits: submits_tx,
            };
            let mut out = Vec::new();
            let fetch = gated(started_tx, gate);
            let report = fetch_all(
                &pool,
                &lines_of(&input),
                fetch,
                &mut out,
                Format::Text,
                &flag,
            );
            // Sent before the pool is dropped: dropping it waits for the hung fetches, which
            // end when the test returns and drops the gate.
            let _ = tx.send((report, out));
        });
        let limit = in_flight_limit(2);
        for _ in 0..limit {
            submits.recv_timeout(LIMIT).unwrap();
        }
        started.recv_timeout(LIMIT).unwrap();
        started.recv_timeout(LIMIT).unwrap();
        interrupted.store(true, Ordering::SeqCst);
        let (report, out) = rx.recv_timeout(LIMIT).expect("the run did not stop");
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
                Format::Text,
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
                Format::Text,
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
