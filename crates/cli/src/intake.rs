//! The input side of the run loop: the batches the reader has sent and the loop has not taken
//! yet, the credits that pace the reader, and the numbering of the lines taken.
//!
//! The reader ([`crate::input::spawn_reader`]) sends a batch only for a credit. [`Intake`]
//! hands out [`READ_AHEAD`] credits at the start and one more each time a batch has been taken
//! to its last line, so at most that many batches are ever read and not taken, however fast the
//! input and however slow the fetches: memory stays the same for ten lines or ten million, while
//! the channel the batches travel on stays unbounded (it also carries completions and signals,
//! which must never wait).

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};
use std::vec;

use crate::input::{Input, Line, Source, spawn_reader};
use crate::shard::Shard;

/// Batches the reader may have sent and the loop not taken yet.
pub(crate) const READ_AHEAD: usize = 4;

/// A line taken from the input, numbered in input order.
#[derive(Debug)]
pub(crate) struct Taken {
    /// Its place in the input, from 0, among the lines worth a result.
    pub(crate) seq: u64,
    /// The line.
    pub(crate) line: Line,
    /// When it was taken, since the run started.
    pub(crate) at: Duration,
}

/// The lines received from the reader and not taken yet, and where the input stands.
#[derive(Debug)]
pub(crate) struct Intake {
    batches: VecDeque<vec::IntoIter<Line>>,
    /// One message is one more batch the reader may send; dropping it stops the reader.
    credits: Sender<()>,
    /// The reader may send more.
    open: bool,
    error: Option<io::Error>,
    next_seq: u64,
}

impl Intake {
    /// Starts the reader on `source`; what it reads goes to `send`. Returns the intake and the
    /// receiver of the number of lines, which the reader sends when it reaches the end.
    pub(crate) fn start(
        source: Source,
        name: &Path,
        shard: Shard,
        send: impl Fn(Input) -> bool + Send + 'static,
    ) -> io::Result<(Intake, Receiver<u64>)> {
        let (credits, paced) = mpsc::channel();
        for _ in 0..READ_AHEAD {
            // The receiver is alive: it was made just above.
            let _ = credits.send(());
        }
        let total = spawn_reader(source, name, shard, send, paced)?;
        let intake = Intake {
            batches: VecDeque::new(),
            credits,
            open: true,
            error: None,
            next_seq: 0,
        };
        Ok((intake, total))
    }

    /// Takes what the reader sent: a batch of lines, the end, or the read error.
    pub(crate) fn receive(&mut self, input: Input) {
        match input {
            Input::Lines(lines) => self.batches.push_back(lines.into_iter()),
            Input::End => self.open = false,
            Input::Failed(e) => {
                self.error = Some(e);
                self.open = false;
            }
        }
    }

    /// The next line received and not taken yet, numbered; `start` is when the run started.
    pub(crate) fn next_line(&mut self, start: Instant) -> Option<Taken> {
        loop {
            let batch = self.batches.front_mut()?;
            let line = batch.next();
            if batch.len() == 0 {
                self.batches.pop_front();
                // The reader may have stopped (a read error): then nobody needs the credit.
                let _ = self.credits.send(());
            }
            if let Some(line) = line {
                let seq = self.next_seq;
                self.next_seq += 1;
                return Some(Taken {
                    seq,
                    line,
                    at: start.elapsed(),
                });
            }
        }
    }

    /// How many lines have been taken: the next one's number.
    pub(crate) fn taken(&self) -> u64 {
        self.next_seq
    }

    /// `true` once every line of the input has been taken (or the read failed and every line
    /// before the failure has been taken).
    pub(crate) fn is_drained(&self) -> bool {
        !self.open && self.batches.is_empty()
    }

    /// The read error, if reading failed.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn the_reader_waits_for_credits_and_lines_come_numbered() {
        let limit = Duration::from_secs(30);
        let text: String = (0..10_000).map(|i| format!("http://h/{i:05}\n")).collect();
        let source = Source::Memory(text.into_bytes());
        let (tx, rx) = mpsc::channel();
        let send = move |input| tx.send(input).is_ok();
        let (mut intake, _total) =
            Intake::start(source, Path::new("test"), Shard::ALL, send).unwrap();
        // Without a line taken, the reader sends READ_AHEAD batches and no more.
        for _ in 0..READ_AHEAD {
            intake.receive(rx.recv_timeout(limit).expect("a batch for each credit"));
        }
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        let start = Instant::now();
        let mut seen = 0;
        while !intake.is_drained() {
            while let Some(taken) = intake.next_line(start) {
                assert_eq!(taken.seq, seen);
                assert_eq!(taken.line, Line::Url(format!("http://h/{seen:05}")));
                seen += 1;
            }
            intake.receive(rx.recv_timeout(limit).expect("the next batch or the end"));
        }
        assert_eq!((seen, intake.taken()), (10_000, 10_000));
        assert!(intake.take_error().is_none());
    }
}
