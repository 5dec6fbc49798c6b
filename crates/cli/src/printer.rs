//! The output side of the run loop: every result line goes through [`Printer`], which writes it
//! in the chosen format, in completion order or (with `--ordered`) input order, counts it for
//! the summary, hands it to the reports and the baseline ([`Outputs`]), and keeps the progress
//! line out of its way.

use std::io::{self, BufWriter, Write};
use std::time::Instant;

use crate::order::Reorder;
use crate::output::{Outcome, Summary};
use crate::progress::{Counts, Progress};
use crate::report::Outputs;

/// The output buffer: lines gathered between two flushes, written with one call.
const OUT_BUFFER: usize = 32 * 1024;

/// Writes result lines to `out` through a buffer, flushed by [`Printer::flush`]: the run loop
/// flushes whenever it has handled what has come and is about to wait, so each line shows as
/// soon as the loop is idle (within milliseconds), and lines that finish together go out in one
/// `write` instead of one each (`BENCHMARKS.md`, "Where the time goes").
#[derive(Debug)]
pub(crate) struct Printer<W: Write> {
    out: BufWriter<W>,
    /// Standard output's format, the report files and the baseline.
    outputs: Outputs,
    /// With `--ordered`: results waiting for the lines before them.
    order: Option<Reorder<Outcome>>,
    summary: Summary,
    progress: Progress,
}

impl<W: Write> Printer<W> {
    /// A printer on `out`; `ordered` prints in input order.
    pub(crate) fn new(out: W, outputs: Outputs, ordered: bool, progress: Progress) -> Printer<W> {
        Printer {
            out: BufWriter::with_capacity(OUT_BUFFER, out),
            outputs,
            order: ordered.then(Reorder::new),
            summary: Summary::default(),
            progress,
        }
    }

    /// Writes what comes before any result: CSV's header row.
    ///
    /// # Errors
    ///
    /// If stdout cannot be written.
    pub(crate) fn start(&mut self) -> io::Result<()> {
        match self.outputs.preamble() {
            Some(first) => writeln!(self.out, "{first}").and_then(|()| self.out.flush()),
            None => Ok(()),
        }
    }

    /// Prints `outcome`, the result of line `seq`, now, or with `--ordered` once every line
    /// before it is printed.
    ///
    /// # Errors
    ///
    /// If stdout cannot be written (closed, full disk).
    pub(crate) fn deliver(&mut self, seq: u64, outcome: Outcome) -> io::Result<()> {
        let Some(order) = self.order.as_mut() else {
            return self.emit(&outcome);
        };
        order.insert(seq, outcome);
        while let Some(next) = self.order.as_mut().and_then(Reorder::pop) {
            self.emit(&next)?;
        }
        Ok(())
    }

    fn emit(&mut self, outcome: &Outcome) -> io::Result<()> {
        self.summary.record(outcome);
        // A report file that cannot be written stops the run as a failed stdout does.
        let Some(line) = self.outputs.record(outcome)? else {
            return Ok(());
        };
        self.progress.before_stdout();
        writeln!(self.out, "{line}")
    }

    /// Writes out the lines printed so far. A closed stdout is noticed here.
    ///
    /// # Errors
    ///
    /// If stdout cannot be written (closed, full disk).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.out.buffer().is_empty() {
            return Ok(());
        }
        self.progress.before_stdout();
        self.out.flush()
    }

    /// With `--ordered`, how many of the `taken` lines are not printed yet; 0 without.
    pub(crate) fn unprinted(&self, taken: u64) -> u64 {
        self.order.as_ref().map_or(0, |o| taken - o.next())
    }

    /// Redraws the progress line if it is due, with the printed counts and those given.
    pub(crate) fn update_progress(&mut self, in_flight: usize, held: usize) {
        let counts = Counts {
            ok: self.summary.ok(),
            failed: self.summary.failed(),
            in_flight,
            held,
        };
        self.progress.update(counts);
    }

    /// The terminal was resized: the progress line is redrawn at the next update.
    pub(crate) fn resized(&mut self) {
        self.progress.resized();
    }

    /// When the progress line next wants redrawing, if it does.
    pub(crate) fn progress_due(&self) -> Option<Instant> {
        self.progress.due()
    }

    /// The counts of every line printed, and the outputs to finish.
    pub(crate) fn into_parts(self) -> (Summary, Outputs) {
        (self.summary, self.outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Format;
    use crate::output::{Failure, FailureKind, Fetched, Timeline};

    fn outcome(url: &str, bytes: Option<u64>) -> Outcome {
        Outcome {
            url: url.to_owned(),
            result: bytes
                .map(|bytes| Fetched {
                    bytes,
                    status: 200,
                    attempts: 1,
                    facts: fetchall::fetch::Facts::default(),
                    tls: None,
                })
                .ok_or_else(|| {
                    Failure::new(
                        FailureKind::Fetch(fetchall::fetch::ErrorKind::Timeout),
                        "timed out",
                    )
                }),
            timeline: Timeline::default(),
        }
    }

    #[test]
    fn results_print_as_they_come_and_are_counted() {
        let mut out = Vec::new();
        let mut printer = Printer::new(
            &mut out,
            Outputs::plain(Format::Text),
            false,
            Progress::off(),
        );
        printer.deliver(1, outcome("http://b/", Some(5))).unwrap();
        printer.deliver(0, outcome("http://a/", None)).unwrap();
        assert_eq!(printer.unprinted(2), 0);
        let (summary, _) = printer.into_parts();
        assert_eq!((summary.ok(), summary.failed()), (1, 1));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "'http://b/' page is 5 bytes\n'http://a/' generated an exception: timed out\n"
        );
    }

    #[test]
    fn ordered_results_wait_for_the_lines_before_them() {
        let mut out = Vec::new();
        let mut printer = Printer::new(
            &mut out,
            Outputs::plain(Format::Jsonl),
            true,
            Progress::off(),
        );
        printer.deliver(2, outcome("http://c/", Some(3))).unwrap();
        printer.deliver(1, outcome("http://b/", Some(2))).unwrap();
        assert_eq!(printer.unprinted(3), 3, "nothing printed before line 0");
        printer.deliver(0, outcome("http://a/", Some(1))).unwrap();
        assert_eq!(printer.unprinted(3), 0);
        drop(printer);
        let urls: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["url"].to_string())
            .collect();
        assert_eq!(urls, [r#""http://a/""#, r#""http://b/""#, r#""http://c/""#]);
    }

    /// A stdout whose reader has gone.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stdout_is_an_error_for_the_caller() {
        let mut printer =
            Printer::new(Closed, Outputs::plain(Format::Text), false, Progress::off());
        printer.deliver(0, outcome("http://a/", Some(1))).unwrap();
        let err = printer.flush().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
