//! The worker side of a run: what one task does with one line, and the adapter from the
//! library's [`Page`](fetchall::fetch::Page) and [`FetchError`](fetchall::fetch::FetchError)
//! to the binary's [`Fetched`] and [`Failure`].

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use fetchall::fetch::{FetchOptions, Fetcher, redact_password};

use crate::input::Line;
use crate::output::{Certificate, Failure, FailureKind, Fetched, Outcome, Timeline};

/// Fetches one URL: the real one wraps [`fetchall::fetch::Fetcher`], tests pass stand-ins.
pub(crate) type FetchFn = dyn Fn(&str) -> Result<Fetched, Failure> + Send + Sync;

/// The real fetch: one [`Fetcher`] (one connection pool) shared by every worker.
pub(crate) fn fetcher(options: FetchOptions) -> Arc<FetchFn> {
    let fetcher = Fetcher::new(options);
    Arc::new(move |url: &str| {
        // A failure over https still tells what the certificate says.
        let transfer = fetcher.fetch(url);
        let facts = transfer.facts;
        match transfer.result {
            Ok(page) => Ok(Fetched {
                bytes: page.bytes,
                status: page.status,
                attempts: page.attempts,
                facts,
                tls: page
                    .tls
                    .map(|info| Certificate::new(&info, SystemTime::now())),
            }),
            Err(e) => Err(Failure {
                status: e.status(),
                message: e.to_string(),
                attempts: Some(e.attempts()),
                retry_after: e.retry_after(),
                kind: FailureKind::Fetch(e.kind()),
                facts: Box::new(facts),
                tls: transfer
                    .tls
                    .map(|info| Box::new(Certificate::new(&info, SystemTime::now()))),
            }),
        }
    })
}

/// The task for one line, run on a worker: fetches it and records when and where.
pub(crate) fn run_line(line: Line, fetch: &FetchFn, start: Instant, queued: Duration) -> Outcome {
    let started = start.elapsed();
    let worker = thread::current().name().map(str::to_owned);
    let (url, result, elapsed) = match line {
        Line::Url(url) => {
            tracing::debug!(url = %redact_password(&url), worker = worker.as_deref(), "started");
            let begun = Instant::now();
            let result = fetch(&url);
            let elapsed = begun.elapsed();
            match &result {
                Ok(page) => tracing::debug!(
                    url = %redact_password(&url), status = page.status, bytes = page.bytes, ?elapsed, "fetched"
                ),
                Err(failure) => tracing::debug!(
                    url = %redact_password(&url), status = failure.status, error = %failure.message, ?elapsed, "failed"
                ),
            }
            (url, result, Some(elapsed))
        }
        Line::Rejected { shown, reason } => {
            tracing::debug!(url = %redact_password(&shown), %reason, "rejected");
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

/// The outcome of a line whose task produced none of its own, queued at `queued`: `failure`
/// says why (interrupted, panicked, [`Failure::cancelled`]).
pub(crate) fn unfinished(url: String, queued: Duration, failure: Failure) -> Outcome {
    Outcome {
        url,
        result: Err(failure),
        timeline: Timeline {
            queued,
            ..Timeline::default()
        },
    }
}
