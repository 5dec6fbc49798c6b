//! The `fetchall` command: fetch every URL of a file on a thread pool and print each result as
//! it completes, as the `ThreadPoolExecutor` example in Python's docs does.
//!
//! This file wires the run together: parse the arguments ([`cli`]), build the reader, the
//! fetcher and the executor, drive the run loop ([`dispatch`]), and turn its end into an exit
//! status. The modules below are the binary's own: the library never prints.

mod baseline;
mod cli;
mod demo;
mod dispatch;
mod duration;
mod generate;
mod hosts;
mod input;
mod intake;
mod interrupt;
mod logging;
mod order;
mod output;
mod printer;
mod progress;
mod rate;
mod report;
mod shard;
mod task;
mod tls;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use fetchall::{BuildError, Executor, Sequential};

use crate::cli::{Args, Chosen, FailOn};
use crate::dispatch::{End, Events, Options, Report, fetch_all};
use crate::input::Source;
use crate::intake::Intake;
use crate::progress::StatusLine;
use crate::report::Outputs;
use crate::task::FetchFn;
use crate::tls::TlsOptions;

/// Exit status when some URL failed.
const EXIT_FAILED: u8 = 1;
/// Exit status for a usage error, an input that cannot be read, or results that cannot be
/// written (clap uses 2 for usage errors too).
const EXIT_ERROR: u8 = 2;
/// Exit status when stdout was closed before every result was written: 128 + SIGPIPE, what a
/// shell under `set -o pipefail` reports for `seq` and the coreutils in the same place.
const EXIT_BROKEN_PIPE: u8 = 141;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(what) = args.generate {
        return match generate::generate(what, &mut io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(io::stderr(), "fetchall: cannot write it: {e}");
                ExitCode::from(EXIT_ERROR)
            }
        };
    }
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}`: the error and its causes, `cannot open x: No such file or directory`.
            // Not eprintln!: it panics when stderr is closed.
            let _ = writeln!(io::stderr(), "fetchall: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Runs the command: everything between the parsed arguments and the exit status.
///
/// # Errors
///
/// A usage or setup error (exit 2), with its cause: an input that cannot be opened, a backend
/// this build lacks, a pool that cannot start.
fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // Logs, warnings and the summary share stderr with the progress line.
    let stderr = StatusLine::stderr();
    logging::init(args.verbose, stderr.clone());
    // The files the TLS options name are read, and refused, before anything starts.
    let tls = TlsOptions::from_args(args, &stderr).map_err(anyhow::Error::msg)?;
    let backend = args.backend()?;
    // The demo's server must outlive the run.
    let (source, name, _server) = match args.inputs.first() {
        Some(path) => (Source::open_all(&args.inputs)?, path.clone(), None),
        None => {
            let (server, source) = demo::start(args.max_workers, args.quiet)?;
            (source, PathBuf::from("--demo"), Some(server))
        }
    };
    if args.reads_the_terminal() && !args.quiet {
        // What the run waits for, instead of a progress line the typed URLs would be glued to.
        let _ = writeln!(
            io::stderr(),
            "fetchall: reading URLs from the terminal; end with Ctrl-D"
        );
    }
    // The baseline is read and every report file created before anything is fetched.
    let outputs = Outputs::open(args).map_err(anyhow::Error::msg)?;
    let events = Events::new();
    let (intake, total) = Intake::start(source, &name, args.shard(), events.input())
        .context("cannot start reading")?;
    let progress = args.progress(&stderr, total);
    if progress.is_on() {
        interrupt::watch_resizes(events.sender());
    }
    let options = Options {
        outputs,
        ordered: args.ordered,
        per_host: args.per_host,
        rate: args.rate,
        per_host_rate: args.per_host_rate,
        deadline: Some(args.timeout),
        progress,
    };
    let run = Run {
        intake,
        events,
        fetch: task::fetcher(tls.applied_to(args.fetch_options())),
        options,
        stderr,
    };
    let builder = args.pool_builder();
    let report = match backend {
        Chosen::Pool => run.drive(builder.build())?,
        #[cfg(feature = "rayon")]
        Chosen::Rayon => run.drive(builder.build_rayon())?,
        Chosen::Sequential => run.drive(Ok(Sequential))?,
    };
    Ok(conclude(report, args))
}

/// Everything a run needs but its executor.
struct Run {
    intake: Intake,
    events: Events,
    fetch: Arc<FetchFn>,
    options: Options,
    stderr: StatusLine,
}

impl Run {
    /// Starts the executor, installs the signal handler, and runs the loop on stdout.
    fn drive<E: Executor>(self, executor: Result<E, BuildError>) -> anyhow::Result<Report> {
        let executor = executor.context("cannot start the pool")?;
        interrupt::install(self.events.sender(), self.stderr);
        let stdout = io::stdout().lock();
        let report = fetch_all(
            &executor,
            self.intake,
            self.events,
            self.fetch,
            stdout,
            self.options,
        );
        // The process is about to exit, which ends the workers: detach the pool rather than
        // shut it down, which would wait for them. After a run that ended early (a signal, a
        // closed stdout) they may be stuck for up to the timeout in fetches whose results
        // nobody wants; after one that finished they are idle, and joining them still cost
        // 2 ms at 50 workers (each thread's exit unmaps its stacks: `BENCHMARKS.md`, round
        // four).
        executor.detach();
        Ok(report)
    }
}

/// Prints the summary, completes the reports and picks the exit status.
fn conclude(report: Report, args: &Args) -> ExitCode {
    // A closed stdout ends the run without a word (exit 141 says it), the baseline's report
    // included.
    let quiet = args.quiet || matches!(report.end, End::BrokenPipe);
    let interrupted = matches!(report.end, End::Interrupted(_));
    let verdict = report
        .outputs
        .finish(&report.summary, report.wall, interrupted, quiet);
    for error in &verdict.errors {
        let _ = writeln!(io::stderr(), "fetchall: {error}");
    }
    if verdict.empty && matches!(report.end, End::Finished) {
        let _ = writeln!(io::stderr(), "fetchall: no URLs in the input");
    }
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
        let failures = match args.fail_on {
            FailOn::Any => report.summary.failed(),
            FailOn::New => verdict.new_failures,
        };
        if !verdict.errors.is_empty() {
            ExitCode::from(EXIT_ERROR)
        } else if failures > 0 || (verdict.empty && args.fail_if_empty) {
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
        End::Interrupted(signal) => {
            summary(true);
            // 128 + the signal, as shells report a process the signal killed.
            ExitCode::from(u8::try_from(128 + signal).unwrap_or(u8::MAX))
        }
        // Quiet: whoever closed the pipe may have what they wanted (`| head -1`). Not 0:
        // results were not delivered, and `set -o pipefail` should see it.
        End::BrokenPipe => ExitCode::from(EXIT_BROKEN_PIPE),
        End::Input(e) => {
            summary(false);
            let _ = writeln!(io::stderr(), "fetchall: error reading the input: {e}");
            ExitCode::from(EXIT_ERROR)
        }
        End::Output(e) => {
            let _ = writeln!(io::stderr(), "fetchall: cannot write the results: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
