//! The run loop: take lines, submit a task per line through any [`Executor`], print each
//! outcome as it completes, and stop cleanly on a signal or a closed stdout.
//!
//! The loop is driven by events on one channel ([`Event`]): a batch of lines from the reader
//! ([`crate::intake`]), a task's completion (sent by the handle's done-callback), and an
//! interruption (from [`crate::interrupt`]). Between events it sleeps in `recv`, bounded only
//! by the next moment something is due without an event: a host paused by `--per-host` gets
//! its turn, or the progress line wants redrawing. A run waiting on servers that never answer
//! sleeps until one does.
//!
//! Only the main thread writes to stdout, and it never blocks for long: at most
//! [`in_flight_limit`] tasks are outstanding, so a submit to the executor's bounded queue never
//! waits on more than a worker picking up its next task, and the reader is paced by credits, so
//! memory stays the same whether the input has ten lines or ten million.
//!
//! The main thread is also the dispatcher. With `--per-host` it submits a URL only when its host
//! has a free slot and holds the others back ([`crate::hosts`], at most [`MAX_HELD`] of them);
//! with `--per-host-rate` also only when its host's token is there, and with `--rate` only when
//! the run's is ([`crate::rate`]): a missing token is waited for here, like a paused host's
//! turn, never in a worker;
//! with `--ordered` it prints through a reorder buffer ([`crate::order`]) and takes no new line
//! while [`Options::window`] lines are taken and not printed. Either way the input is read only
//! as fast as the lines can be dealt with, and every line taken gets exactly one result line.

use std::collections::HashMap;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fetchall::fetch::redact_password;
use fetchall::{Executor, TaskError, TaskHandle};

use crate::hosts::{Admit, Expired, Hosts, MAX_HELD, Slot, Throttle, host_key};
use crate::input::{Input, Line};
use crate::intake::{Intake, Taken};
use crate::output::{Failure, FailureKind, Outcome, Summary};
use crate::printer::Printer;
use crate::progress::Progress;
use crate::rate::{Bucket, Rate};
use crate::report::Outputs;
use crate::task::{FetchFn, run_line, unfinished};

/// Tasks queued per worker by the executor's bounded queue...
const QUEUE_PER_WORKER: usize = 2;

/// ...and never fewer than this many in all. The loop is woken once half of the queued tasks
/// have finished (see [`Completions`]), so the queue's length is what sets how many results
/// one wake-up of the loop handles: with 2 per worker, 5 workers woke it every 5 results, and
/// the wake-ups (a futex call on each side and two context switches) cost a third of the
/// run's CPU per URL on 1 KB pages (`BENCHMARKS.md`, round three, "the run loop's
/// wake-ups"). A queued task is a URL and a handle, about 200 bytes.
const MIN_QUEUED: usize = 128;

/// The executor's queue bound for `max_workers` workers.
pub(crate) fn queue_bound(max_workers: usize) -> usize {
    max_workers.saturating_mul(QUEUE_PER_WORKER).max(MIN_QUEUED)
}

/// The most tasks outstanding (queued, running, or finished and not printed yet): enough to
/// keep every worker busy and the bounded queue full, and no more.
pub(crate) fn in_flight_limit(max_workers: usize) -> usize {
    max_workers.max(1).saturating_add(queue_bound(max_workers))
}

/// The longest a finished task waits for the loop to notice it while fewer than
/// the loop wants have finished: its line is printed at most this late.
const GATHER: Duration = Duration::from_millis(2);

/// What wakes the run loop.
#[derive(Debug)]
pub(crate) enum Event {
    /// The reader sent lines, the end of the input, or a read error.
    Input(Input),
    /// Finished tasks are waiting in [`Completions`].
    Done,
    /// A signal asks the run to stop: its number.
    Interrupted(i32),
    /// The terminal was resized: the progress line wants redrawing at the new width.
    Resized,
}

/// The run loop's channel. Unbounded, so that a completion or a signal never waits; the
/// reader's share of it is bounded by credits (see [`crate::intake`]).
#[derive(Debug)]
pub(crate) struct Events {
    tx: Sender<Event>,
    rx: Receiver<Event>,
}

impl Events {
    /// A new channel.
    pub(crate) fn new() -> Events {
        let (tx, rx) = mpsc::channel();
        Events { tx, rx }
    }

    /// A sender, for the signal handler.
    pub(crate) fn sender(&self) -> Sender<Event> {
        self.tx.clone()
    }

    /// What the reader sends through: `false` once the loop has gone.
    pub(crate) fn input(&self) -> impl Fn(Input) -> bool + Send + 'static {
        let tx = self.tx.clone();
        move |input| tx.send(Event::Input(input)).is_ok()
    }
}

/// How a run ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Every line has its result line.
    Finished,
    /// A signal (its number): every submitted line has its result line, the rest of the input
    /// was not read.
    Interrupted(i32),
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
    /// The reports and the baseline, to be finished.
    pub(crate) outputs: Outputs,
}

/// What the run loop does besides fetching: the outputs, `--ordered`, `--per-host`, the rate
/// limits and the progress line.
#[derive(Debug)]
pub(crate) struct Options {
    /// Standard output's format, the report files and the baseline.
    pub(crate) outputs: Outputs,
    /// `--ordered`: print in input order.
    pub(crate) ordered: bool,
    /// `--per-host`: the most requests at once to one host.
    pub(crate) per_host: Option<NonZeroUsize>,
    /// `--rate`: requests per unit of time in all.
    pub(crate) rate: Option<Rate>,
    /// `--per-host-rate`: requests per unit of time to one host.
    pub(crate) per_host_rate: Option<Rate>,
    /// How long a URL may wait for a paused host, from when it is taken (`--timeout`).
    pub(crate) deadline: Option<Duration>,
    /// The progress line, or [`Progress::off`].
    pub(crate) progress: Progress,
}

impl Options {
    /// Whether hosts are tracked: with `--per-host`, `--per-host-rate` or `--rate` (and then a
    /// 429 pauses its host).
    fn per_host_tracking(&self) -> bool {
        self.per_host.is_some() || self.per_host_rate.is_some() || self.rate.is_some()
    }

    /// With `--ordered`, the most lines taken and not printed yet: the tasks in flight, and
    /// with hosts tracked the URLs held back too. A slow line holds up the printing of the
    /// ones after it, and this is how far the run reads on meanwhile.
    pub(crate) fn window(&self, max_workers: usize) -> usize {
        let held = if self.per_host_tracking() {
            MAX_HELD
        } else {
            0
        };
        in_flight_limit(max_workers) + held
    }
}

/// The ids of finished tasks the loop has not handled yet. A task's done-callback puts its id
/// here and wakes the loop only once as many ids as it asked for have gathered while it sleeps,
/// not for every task: waking the loop cost a futex call on each side and a context switch per
/// URL, and with them gathered the loop also writes their lines in one `write`
/// (`BENCHMARKS.md`, "Where the time goes"). While results are coming, the loop asks for half
/// the tasks queued behind the running ones, so the workers never run dry waiting for it, and
/// sleeps at most [`GATHER`] meanwhile; once a [`GATHER`] has passed with none, it asks to be
/// woken by the next one and sleeps with no timer, so a run whose servers never answer costs
/// no CPU while it waits.
#[derive(Debug, Default)]
struct Completions(Mutex<Gathered>);

#[derive(Debug, Default)]
struct Gathered {
    ids: Vec<u64>,
    /// The loop sleeps, and wants waking at this many ids.
    asleep: bool,
    wake_at: usize,
}

impl Completions {
    fn lock(&self) -> MutexGuard<'_, Gathered> {
        // Nothing that can panic runs while this lock is held.
        self.0.lock().unwrap()
    }

    /// From a done-callback: `id` has finished. `true` if the loop must be woken for it.
    fn push(&self, id: u64) -> bool {
        let mut gathered = self.lock();
        gathered.ids.push(id);
        let wake = gathered.asleep && gathered.ids.len() >= gathered.wake_at;
        if wake {
            gathered.asleep = false;
        }
        wake
    }

    /// The ids gathered so far, swapped into `into` (emptied first).
    fn take(&self, into: &mut Vec<u64>) {
        into.clear();
        let mut gathered = self.lock();
        gathered.asleep = false;
        std::mem::swap(&mut gathered.ids, into);
    }

    /// Before the loop sleeps: `false` if `wake_at` ids are already there (then it should not
    /// sleep), else marks it asleep until that many have gathered.
    fn sleep_until(&self, wake_at: usize) -> bool {
        let mut gathered = self.lock();
        if gathered.ids.len() >= wake_at.max(1) {
            return false;
        }
        gathered.asleep = true;
        gathered.wake_at = wake_at.max(1);
        true
    }
}

/// A submitted line, kept until its result is printed: what a task that yields no
/// [`Outcome`] (cancelled, interrupted, panicked) is reported under.
#[derive(Debug)]
struct Submitted {
    seq: u64,
    url: String,
    queued: Duration,
    /// Its host's slot, under `--per-host`.
    slot: Option<Slot>,
    handle: TaskHandle<Outcome>,
}

/// Runs every line of `intake` through `executor` with `fetch`, writing one line per result
/// to `out` as results come in, until the input ends, [`Event::Interrupted`] comes on
/// `events`, or `out` closes.
pub(crate) fn fetch_all<E: Executor>(
    executor: &E,
    intake: Intake,
    events: Events,
    fetch: Arc<FetchFn>,
    out: impl Write,
    options: Options,
) -> Report {
    let max_workers = executor.max_workers();
    let window = options.window(max_workers);
    let hosts = options
        .per_host_tracking()
        .then(|| Hosts::new(options.per_host, options.per_host_rate));
    let mut run = Dispatcher {
        executor,
        fetch,
        start: Instant::now(),
        limit: in_flight_limit(max_workers),
        max_workers,
        in_flight: HashMap::new(),
        completions: Arc::new(Completions::default()),
        last_results: None,
        finished: Vec::new(),
        events,
        intake,
        hosts,
        rate: options.rate.map(Bucket::new),
        deadline: options.deadline,
        expired: Vec::new(),
        window,
        printer: Printer::new(out, options.outputs, options.ordered, options.progress),
    };
    let started = run.printer.start().map_err(Stop::Output);
    let end = match started.and_then(|()| run.main_loop()) {
        Ok(()) => match run.intake.take_error() {
            None => End::Finished,
            Some(e) => End::Input(e),
        },
        Err(Stop::Interrupted(signal)) => match run.report_unfinished() {
            Ok(()) => match run.printer.flush() {
                Ok(()) => End::Interrupted(signal),
                Err(e) => Stop::from(e).into_end(),
            },
            Err(stop) => stop.into_end(),
        },
        Err(stop) => {
            executor.cancel_pending();
            stop.into_end()
        }
    };
    let (summary, outputs) = run.printer.into_parts();
    Report {
        end,
        wall: run.start.elapsed(),
        summary,
        outputs,
    }
}

/// Why the main loop stopped early.
enum Stop {
    Interrupted(i32),
    Output(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Output(e)
    }
}

impl Stop {
    fn into_end(self) -> End {
        match self {
            Stop::Interrupted(signal) => End::Interrupted(signal),
            Stop::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => End::BrokenPipe,
            Stop::Output(e) => End::Output(e),
        }
    }
}

/// The run loop's state: what is in flight, and where each line is between the input and the
/// output.
struct Dispatcher<'e, E, W: Write> {
    executor: &'e E,
    fetch: Arc<FetchFn>,
    start: Instant,
    limit: usize,
    max_workers: usize,
    /// Submitted and not printed yet, by task id.
    in_flight: HashMap<u64, Submitted>,
    /// Finished tasks not handled yet, filled by their done-callbacks.
    completions: Arc<Completions>,
    /// When the loop last found finished tasks: while that is less than a [`GATHER`] ago,
    /// results are coming, and the loop gathers them in batches with a timer.
    last_results: Option<Instant>,
    /// The ids taken from `completions`, kept to reuse the allocation.
    finished: Vec<u64>,
    events: Events,
    intake: Intake,
    /// Per-host slots, tokens and held-back lines, with `--per-host`, `--per-host-rate` or
    /// `--rate`.
    hosts: Option<Hosts<Taken>>,
    /// `--rate`: the run's token.
    rate: Option<Bucket>,
    /// How long a URL may wait for a paused host.
    deadline: Option<Duration>,
    /// URLs a pause made time out, to be printed next.
    expired: Vec<(u64, Outcome)>,
    /// See [`Options::window`].
    window: usize,
    printer: Printer<W>,
}

impl<E: Executor, W: Write> Dispatcher<'_, E, W> {
    fn main_loop(&mut self) -> Result<(), Stop> {
        loop {
            self.submit_ready()?;
            // Everything gathered so far is handled: out with its lines before sleeping.
            self.printer.flush()?;
            self.printer
                .update_progress(self.in_flight.len(), self.held());
            if self.intake.is_drained() && self.in_flight.is_empty() && self.held() == 0 {
                return Ok(());
            }
            self.next_event()?;
        }
    }

    /// Handles every task finished so far.
    fn finish_gathered(&mut self) -> Result<(), Stop> {
        let mut finished = std::mem::take(&mut self.finished);
        self.completions.take(&mut finished);
        if !finished.is_empty() {
            self.last_results = Some(Instant::now());
        }
        for id in finished.drain(..) {
            // Absent once an interruption has reported it.
            if let Some(submitted) = self.in_flight.remove(&id) {
                self.finish(submitted)?;
            }
        }
        self.finished = finished;
        Ok(())
    }

    /// Submits lines while there is room: the ones held back for a host that has a slot
    /// again first (they were read first), then new ones.
    fn submit_ready(&mut self) -> Result<(), Stop> {
        while self.in_flight.len() < self.limit {
            // Whatever has come meanwhile, without waiting: with the sequential backend a
            // submit runs the whole fetch, and a signal must be heard between two of them.
            while let Ok(event) = self.events.rx.try_recv() {
                self.handle(event)?;
            }
            self.finish_gathered()?;
            let now = Instant::now();
            if self
                .rate
                .as_ref()
                .is_some_and(|b| b.ready_at(now).is_some())
            {
                // The run's next request slot is not there yet: `next_event` wakes up for it.
                return Ok(());
            }
            if let Some((taken, slot)) = self.hosts.as_mut().and_then(|h| h.next_ready(now)) {
                self.submit(taken, Some(slot));
            } else if !self.room_to_take() {
                return Ok(());
            } else if let Some(taken) = self.intake.next_line(self.start) {
                self.dispatch(taken, now);
                self.deliver_expired()?;
            } else {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sleeps until the next event and handles it, or until the next thing due without one: a
    /// paused or token-less host's turn or the run's next token (only if there is room to
    /// submit a URL), a progress redraw.
    fn next_event(&mut self) -> Result<(), Stop> {
        let room = self.in_flight.len() < self.limit;
        let now = Instant::now();
        let hosts_wake = self.hosts.as_ref().and_then(Hosts::next_wake);
        let token = self.rate.as_ref().and_then(|b| b.ready_at(now));
        let wake = hosts_wake.into_iter().chain(token).min().filter(|_| room);
        let mut due = match (wake, self.printer.progress_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if !self.in_flight.is_empty() {
            // While results come: woken once half of the tasks queued behind the running ones
            // have finished (the workers still have the other half to go on with), by the
            // clock, or at once when none is queued (with `--per-host`, say, or at the end of
            // the input). Once a gathering time has passed with none: by the next one.
            let results_coming = self.last_results.is_some_and(|at| at.elapsed() < GATHER);
            let wake_at = if results_coming {
                let queued = self.in_flight.len().saturating_sub(self.max_workers);
                queued / 2
            } else {
                1
            };
            if !self.completions.sleep_until(wake_at) {
                return self.finish_gathered();
            }
            if results_coming {
                let gather = Instant::now() + GATHER;
                due = Some(due.map_or(gather, |due| due.min(gather)));
            }
        }
        let event = match due {
            // The loop holds a sender itself, so the channel never disconnects.
            None => self.events.rx.recv().ok(),
            // A time-out is no error: the host's turn or the redraw is due.
            Some(at) => self
                .events
                .rx
                .recv_timeout(at.saturating_duration_since(Instant::now()))
                .ok(),
        };
        if let Some(event) = event {
            self.handle(event)?;
        }
        self.finish_gathered()
    }

    fn handle(&mut self, event: Event) -> Result<(), Stop> {
        match event {
            Event::Input(input) => self.intake.receive(input),
            // What has gathered is handled by the caller, right after.
            Event::Done => {}
            Event::Interrupted(signal) => return Err(Stop::Interrupted(signal)),
            Event::Resized => self.printer.resized(),
        }
        Ok(())
    }

    fn held(&self) -> usize {
        self.hosts.as_ref().map_or(0, Hosts::held)
    }

    /// May another line be taken from the input? Not while the held-back lines are at their
    /// limit, nor, with `--ordered`, while the window is full.
    fn room_to_take(&self) -> bool {
        let unprinted = self.printer.unprinted(self.intake.taken());
        self.held() < MAX_HELD && unprinted < self.window as u64
    }

    /// Submits a line, or holds it back while its host is at its limit.
    fn dispatch(&mut self, taken: Taken, now: Instant) {
        let key = match (&self.hosts, &taken.line) {
            (Some(_), Line::Url(url)) => host_key(url),
            _ => None,
        };
        let deadline = self.deadline.and_then(|d| now.checked_add(d));
        match (self.hosts.as_mut(), key) {
            (Some(hosts), Some(key)) => match hosts.admit(&key, taken, deadline, now) {
                Admit::Start(taken, slot) => self.submit(taken, Some(slot)),
                Admit::Held => tracing::debug!(host = %key, held = hosts.held(), "held back"),
                Admit::Expired(expired) => self.expire(expired),
            },
            // Not a URL to fetch: no request, no slot.
            _ => self.submit(taken, None),
        }
    }

    /// Reports a URL that its host's pause would have held past its deadline as timed out.
    fn expire(&mut self, expired: Expired<Taken>) {
        let Taken { seq, line, at } = expired.item;
        let message = format!("timed out (waiting for its host, {})", expired.pause);
        let timeout = FailureKind::Fetch(fetchall::fetch::ErrorKind::Timeout);
        let outcome = unfinished(line.shown().to_owned(), at, Failure::new(timeout, message));
        // Printed by the caller, which can stop the run if the write fails.
        self.expired.push((seq, outcome));
    }

    /// Prints the URLs [`expire`](Self::expire) reported.
    fn deliver_expired(&mut self) -> Result<(), Stop> {
        for (seq, outcome) in std::mem::take(&mut self.expired) {
            self.printer.deliver(seq, outcome)?;
        }
        Ok(())
    }

    fn submit(&mut self, taken: Taken, slot: Option<Slot>) {
        let Taken { seq, line, .. } = taken;
        if let (Some(bucket), Line::Url(_)) = (self.rate.as_mut(), &line) {
            bucket.try_take(Instant::now());
        }
        let url = line.shown().to_owned();
        let queued = self.start.elapsed();
        let (fetch, start) = (self.fetch.clone(), self.start);
        let handle = self
            .executor
            .submit(move || run_line(line, &*fetch, start, queued));
        let id = handle.id();
        tracing::debug!(url = %redact_password(&url), task = id, "queued");
        let (done, completions) = (self.events.tx.clone(), self.completions.clone());
        handle.add_done_callback(move |_| {
            if completions.push(id) {
                // The loop may be gone when a task it gave up on ends: nobody to tell then.
                drop(done.send(Event::Done));
            }
        });
        let submitted = Submitted {
            seq,
            url,
            queued,
            slot,
            handle,
        };
        self.in_flight.insert(id, submitted);
    }

    /// Prints the result of a finished task, and frees its host's slot.
    fn finish(&mut self, submitted: Submitted) -> Result<(), Stop> {
        let Submitted {
            seq,
            url,
            queued,
            slot,
            handle,
        } = submitted;
        let outcome = match handle.join() {
            Ok(outcome) => outcome,
            Err(TaskError::Cancelled) => unfinished(url, queued, Failure::cancelled()),
            Err(e) => unfinished(
                url,
                queued,
                Failure::new(FailureKind::Panicked, e.to_string()),
            ),
        };
        if let (Some(hosts), Some(slot)) = (self.hosts.as_mut(), slot) {
            let throttle = match &outcome.result {
                Err(f) => Throttle::of(f.status, f.retry_after),
                Ok(_) => None,
            };
            for expired in hosts.release(slot, throttle, Instant::now()) {
                self.expire(expired);
            }
        }
        self.printer.deliver(seq, outcome)?;
        self.deliver_expired()
    }

    /// After a signal: cancels what is queued and prints a line for every line taken without
    /// waiting for the running fetches, which are reported as interrupted. Lines held back for
    /// their host are reported as cancelled.
    fn report_unfinished(&mut self) -> Result<(), Stop> {
        let cancelled = self.executor.cancel_pending();
        tracing::debug!(cancelled, running = self.in_flight.len(), "interrupted");
        let mut rest: Vec<Submitted> = self.in_flight.drain().map(|(_, s)| s).collect();
        rest.sort_by_key(|s| s.seq);
        // The finished ones first, as they would have been printed.
        let (finished, unfinished_ones): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|s| s.handle.is_finished());
        for submitted in finished {
            self.finish(submitted)?;
        }
        for Submitted {
            seq,
            url,
            queued,
            handle,
            ..
        } in unfinished_ones
        {
            // Running, or cancelled but not yet resolved (rayon resolves a cancelled task only
            // when one of its threads reaches it).
            let failure = if handle.is_running() {
                Failure::new(FailureKind::Interrupted, "interrupted")
            } else {
                Failure::cancelled()
            };
            self.printer
                .deliver(seq, unfinished(url, queued, failure))?;
        }
        let held = self.hosts.as_mut().map(Hosts::drain).unwrap_or_default();
        for Taken { seq, line, at } in held {
            // Never submitted: `queued` is when it was taken from the input.
            let url = line.shown().to_owned();
            self.printer
                .deliver(seq, unfinished(url, at, Failure::cancelled()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Format;
    use std::path::Path;
    use std::sync::mpsc::{self, Sender};
    use std::thread;

    use fetchall::{Sequential, ThreadPool};

    use crate::input::{AnyReader, Source};
    use crate::intake::READ_AHEAD;
    use crate::output::Fetched;
    use crate::shard::Shard;
    use signal_hook::consts::SIGINT;

    /// Generous: the machine is shared and noisy.
    const LIMIT: Duration = Duration::from_secs(30);

    /// The loop's input: an intake reading `source`, and the channel it sends on.
    fn read(source: Source) -> (Intake, Events) {
        let events = Events::new();
        let (intake, _total) =
            Intake::start(source, Path::new("test"), Shard::ALL, events.input()).unwrap();
        (intake, events)
    }

    fn lines_of(text: &str) -> (Intake, Events) {
        read(Source::Memory(text.as_bytes().to_vec()))
    }

    /// [`fetch_all`] on `lines`.
    fn run_on<E: Executor>(
        executor: &E,
        (intake, events): (Intake, Events),
        fetch: Arc<FetchFn>,
        out: impl Write,
        options: Options,
    ) -> Report {
        fetch_all(executor, intake, events, fetch, out, options)
    }

    impl Options {
        /// Results in `format`, in completion order, no per-host limit, no progress line.
        fn plain(format: Format) -> Options {
            Options {
                outputs: Outputs::plain(format),
                ordered: false,
                per_host: None,
                rate: None,
                per_host_rate: None,
                deadline: None,
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
                    retry_after: None,
                    kind: FailureKind::Fetch(fetchall::fetch::ErrorKind::Status),
                    facts: Box::default(),
                    tls: None,
                })
            } else {
                Ok(Fetched {
                    bytes: url.len() as u64,
                    status: 200,
                    attempts: 1,
                    facts: fetchall::fetch::Facts::default(),
                    tls: None,
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
            let mut pool_out = Vec::new();
            let pool = ThreadPool::new(3);
            let report = run_on(
                &pool,
                lines_of(INPUT),
                by_length(),
                &mut pool_out,
                Options::plain(Format::Text),
            );
            assert!(matches!(report.end, End::Finished), "{:?}", report.end);
            assert_eq!(report.summary.failed(), 1);
            let mut seq_out = Vec::new();
            let report = run_on(
                &Sequential,
                lines_of(INPUT),
                by_length(),
                &mut seq_out,
                Options::plain(Format::Text),
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
            run_on(
                &pool,
                lines_of("http://a/\n"),
                by_length(),
                &mut out,
                Options::plain(Format::Jsonl),
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
                tls: None,
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
        /// The run loop's channel, to interrupt it.
        events: Sender<Event>,
    }

    impl GatedRun {
        fn start((intake, events): (Intake, Events), options: Options) -> GatedRun {
            let to_loop = events.sender();
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
                let report = fetch_all(&pool, intake, events, fetch, &mut out, options);
                // Sent before the pool is dropped: dropping it waits for the hung fetches,
                // which end when the test drops the gate.
                let _ = tx.send((report, out));
            });
            GatedRun {
                done,
                submits,
                started,
                open,
                events: to_loop,
            }
        }

        /// Waits for `n` submits.
        fn submitted(&self, n: usize) {
            for _ in 0..n {
                self.submits.recv_timeout(LIMIT).unwrap();
            }
        }

        /// Ctrl-C, as the signal handler reports it.
        fn interrupt(&self) {
            self.events.send(Event::Interrupted(SIGINT)).unwrap();
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
        let run = GatedRun::start(lines_of(&urls.join("\n")), ordered());
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
        let urls = slow_then_fast(in_flight_limit(2) + 100);
        let run = GatedRun::start(lines_of(&urls.join("\n")), ordered());
        run.started.recv_timeout(LIMIT).unwrap();
        let window = ordered().window(2);
        run.submitted(window);
        run.interrupt();
        let (report, out) = run.end();
        assert!(matches!(report.end, End::Interrupted(SIGINT)));
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

    /// A reader that tells how many bytes it has handed out, after each read.
    struct Watched {
        inner: io::Cursor<Vec<u8>>,
        read: usize,
        tell: Sender<usize>,
    }

    impl io::Read for Watched {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n;
            let _ = self.tell.send(self.read);
            Ok(n)
        }
    }

    #[test]
    fn per_host_holds_back_a_bounded_number_of_lines_then_stops_reading() {
        const LINE: usize = "http://one.host/slow00000\n".len();
        let total = MAX_HELD + 20_000;
        let text: String = (0..total)
            .map(|i| format!("http://one.host/slow{i:05}\n"))
            .collect();
        let (tell, told) = mpsc::channel();
        let source = Source::Reader(AnyReader(Box::new(Watched {
            inner: io::Cursor::new(text.into_bytes()),
            read: 0,
            tell,
        })));
        let options = Options {
            per_host: NonZeroUsize::new(1),
            ..Options::plain(Format::Text)
        };
        let run = GatedRun::start(read(source), options);
        run.started.recv_timeout(LIMIT).unwrap();
        // One URL runs, the others of its host are held back, up to the limit.
        let mut bytes = 0;
        while bytes / LINE < MAX_HELD {
            bytes = told
                .recv_timeout(LIMIT)
                .expect("the held-back lines reach the limit");
        }
        while let Ok(n) = told.recv_timeout(Duration::from_millis(200)) {
            bytes = n;
        }
        // Held, running, the batches read ahead and being taken, and the reader's buffer.
        let bound = MAX_HELD + 1 + (READ_AHEAD + 1) * 64 + (64 * 1024) / LINE + 1;
        assert!(bytes / LINE <= bound, "read {} lines", bytes / LINE);
        assert!(bytes / LINE < total);
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
                    .queue_bound(queue_bound(1))
                    .build()
                    .unwrap(),
                submits: submits_tx,
            };
            let mut out = Vec::new();
            let report = run_on(
                &pool,
                lines_of(&input),
                gated(started_tx, gate),
                &mut out,
                Options::plain(Format::Text),
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
        let limit = in_flight_limit(2);
        let input: String = (0..limit + 50)
            .map(|i| format!("http://h/slow{i}\n"))
            .collect();
        let options = Options::plain(Format::Text);
        let run = GatedRun::start(lines_of(&input), options);
        run.submitted(limit);
        run.started.recv_timeout(LIMIT).unwrap();
        run.started.recv_timeout(LIMIT).unwrap();
        run.interrupt();
        let (report, out) = run.end();
        assert!(matches!(report.end, End::Interrupted(SIGINT)));
        let text = String::from_utf8(out).unwrap();
        let ending = |end: &str| text.lines().filter(|l| l.ends_with(end)).count();
        assert_eq!(ending("exception: interrupted"), 2, "{text}");
        assert_eq!(ending("exception: cancelled"), limit - 2, "{text}");
        assert_eq!(text.lines().count(), limit);
        // Two ran and failed; the others never ran.
        assert_eq!(report.summary.failed(), 2);
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
            let lines = buf.iter().filter(|&&b| b == b'\n').count();
            self.left = self.left.saturating_sub(lines);
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
            run_on(
                &pool,
                lines_of(&input),
                by_length(),
                ClosesAfter { left: 1 },
                Options::plain(Format::Text),
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
            run_on(
                &Sequential,
                lines_of("http://a/\n"),
                fetch,
                &mut out,
                Options::plain(Format::Text),
            );
            out
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "'http://a/' generated an exception: task panicked: boom\n"
        );
    }
}
