//! The progress line: `fetchall 120/1000 (12%), 110 ok, 10 failed, 45.2/s, 8 in flight` on
//! stderr, redrawn in place while the run goes on, when stderr is a terminal.
//!
//! Two pieces. [`StatusLine`] is standard error shared by the progress line and every other
//! message: it knows whether a progress line is on the screen, and the logs go through it
//! ([`StatusLine`] is the log writer), so a log line, a warning or the summary first wipes the
//! progress line instead of being glued to its end. [`Progress`] decides what the line says and
//! when to redraw it: at most every [`INTERVAL`], from the main thread only. Result lines go to
//! stdout and never pass through here; when stdout is the same terminal, the progress line is
//! wiped before each result line and redrawn as soon as the interval allows, without waiting
//! for anything else to happen (the run loop wakes for it: [`Progress::due`]).
//!
//! The line is drawn with `\r` and erased with `ESC [ K` (erase to the end of the line), and cut
//! to the terminal's width, read from the terminal itself (`TIOCGWINSZ`) at every redraw, so that
//! it never wraps: `\r` only goes back to the start of the last row. After the window has been
//! narrowed, a terminal that re-flows long lines (tmux does) has spread the line drawn at the old
//! width over several rows; the rows above are erased too (`ESC [ A`), so a resize leaves none
//! behind. (A terminal that truncates instead loses the row above the line at a narrowing.)
//! The run loop redraws at once on `SIGWINCH` ([`Progress::resized`]).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// The shortest time between two redraws.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// Standard error (or, in tests, any writer) with at most one progress line on it. Clones share
/// the writer.
#[derive(Debug)]
pub(crate) struct StatusLine<W = io::Stderr> {
    screen: Arc<Mutex<Screen<W>>>,
}

impl<W> Clone for StatusLine<W> {
    fn clone(&self) -> Self {
        StatusLine {
            screen: self.screen.clone(),
        }
    }
}

#[derive(Debug)]
struct Screen<W> {
    out: W,
    /// Columns taken by the progress line on the screen; 0 when none is shown.
    shown: usize,
    /// The terminal's width now.
    width: fn() -> usize,
}

/// The width of the terminal on stderr, 80 if it cannot be told.
fn stderr_width() -> usize {
    terminal_size::terminal_size_of(io::stderr()).map_or(80, |(w, _)| usize::from(w.0))
}

impl<W: Write> Screen<W> {
    /// Moves to the start of the progress line's first row and erases it, with every row the
    /// terminal re-flowed it onto if it was drawn wider than the terminal is now.
    fn erase(&self, width: usize) -> String {
        let rows = self.shown.saturating_sub(1) / width.max(1) + 1;
        let mut seq = String::from("\r\x1b[K");
        for _ in 1..rows {
            seq += "\x1b[A\x1b[K";
        }
        seq
    }

    fn wipe(&mut self) {
        if self.shown > 0 {
            let erase = self.erase((self.width)());
            // Nothing useful to do if stderr is gone.
            let _ = self.out.write_all(erase.as_bytes());
            let _ = self.out.flush();
            self.shown = 0;
        }
    }
}

impl StatusLine {
    /// The process's standard error.
    pub(crate) fn stderr() -> StatusLine {
        StatusLine::new(io::stderr(), stderr_width)
    }
}

impl<W: Write> StatusLine<W> {
    fn new(out: W, width: fn() -> usize) -> StatusLine<W> {
        StatusLine {
            screen: Arc::new(Mutex::new(Screen {
                out,
                shown: 0,
                width,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Screen<W>> {
        // Only writes happen under this lock; a panic there leaves nothing half-changed.
        self.screen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shows `text` in place of the progress line on the screen, cut to one column less than
    /// the terminal's width now. `text` is ASCII.
    fn draw(&self, text: &str) {
        let mut screen = self.lock();
        let width = (screen.width)();
        let text = &text[..text.len().min(width.saturating_sub(1))];
        let mut seq = if screen.shown > 0 {
            screen.erase(width)
        } else {
            String::from("\r")
        };
        let _ = write!(seq, "{text}");
        let _ = screen.out.write_all(seq.as_bytes());
        let _ = screen.out.flush();
        screen.shown = text.len();
    }

    /// Wipes the progress line, if one is shown.
    pub(crate) fn clear(&self) {
        self.lock().wipe();
    }

    /// [`clear`](Self::clear), unless another thread is writing: for the Ctrl-C handler, which
    /// must not wait on a stderr that blocks.
    pub(crate) fn try_clear(&self) {
        match self.screen.try_lock() {
            Ok(mut screen) => screen.wipe(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().wipe(),
            Err(TryLockError::WouldBlock) => {}
        }
    }
}

/// A writer for one log event: holds the screen, with the progress line wiped.
#[derive(Debug)]
pub(crate) struct LogWriter<'a, W> {
    screen: MutexGuard<'a, Screen<W>>,
}

impl<W: Write> Write for LogWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.screen.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.screen.out.flush()
    }
}

impl<'a, W: Write + 'a> MakeWriter<'a> for StatusLine<W> {
    type Writer = LogWriter<'a, W>;

    fn make_writer(&'a self) -> LogWriter<'a, W> {
        let mut screen = self.lock();
        screen.wipe();
        LogWriter { screen }
    }
}

/// What the progress line counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    /// Submitted and not finished.
    pub(crate) in_flight: usize,
    /// Held back by `--per-host`.
    pub(crate) held: usize,
}

/// The progress line's state; off, it does nothing. Dropping it wipes the line.
#[derive(Debug)]
pub(crate) struct Progress<W: Write = io::Stderr> {
    line: Option<StatusLine<W>>,
    /// Wipe the line before each result line: stdout is the same terminal.
    shares_stdout: bool,
    started: Instant,
    last_draw: Option<Instant>,
    /// The counts on the screen, or `None` when the line is not (yet, or any more) drawn.
    shown: Option<Counts>,
    /// The last update had other counts than `shown`, and was too early to draw them.
    stale: bool,
    total: Option<u64>,
    /// The number of lines, from the reader when it reaches the end of the input: exact.
    read: Option<Receiver<u64>>,
    /// The number of lines counted ahead by [`crate::input::count_lines`], until `read` has it.
    counted: Option<Receiver<u64>>,
}

impl Progress {
    /// A progress line that does nothing.
    pub(crate) fn off() -> Progress {
        Progress {
            line: None,
            shares_stdout: false,
            started: Instant::now(),
            last_draw: None,
            shown: None,
            stale: false,
            total: None,
            read: None,
            counted: None,
        }
    }
}

impl<W: Write> Progress<W> {
    /// A progress line on `line`. `read` brings the number of lines when the reader has read
    /// them all, `counted` earlier when they can be counted ahead; `shares_stdout` if stdout is
    /// the same terminal.
    pub(crate) fn on(
        line: StatusLine<W>,
        read: Receiver<u64>,
        counted: Option<Receiver<u64>>,
        shares_stdout: bool,
    ) -> Progress<W> {
        Progress {
            line: Some(line),
            shares_stdout,
            started: Instant::now(),
            last_draw: None,
            shown: None,
            stale: false,
            total: None,
            read: Some(read),
            counted,
        }
    }

    /// `true` unless the line is [`off`](Progress::off).
    pub(crate) fn is_on(&self) -> bool {
        self.line.is_some()
    }

    /// Takes the number of lines, if it has come: the reader's, else the count's.
    fn learn_total(&mut self) {
        if let Some(total) = self.read.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.total = Some(total);
            (self.read, self.counted) = (None, None);
        } else if let Some(total) = self.counted.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.total = Some(total);
            self.counted = None;
        }
    }

    /// Redraws the line with `counts` if it is due: if it is not on the screen or shows other
    /// counts, and the last redraw is at least [`INTERVAL`] ago. Until then, [`due`](Self::due)
    /// says when to call again.
    pub(crate) fn update(&mut self, counts: Counts) {
        self.update_at(Instant::now(), counts);
    }

    /// When the line wants redrawing (it showed other counts, or a result line wiped it at the
    /// last [`update`](Self::update)); `None` when it is up to date or off. A run that waits
    /// on nothing else needs no wake-up for the line.
    pub(crate) fn due(&self) -> Option<Instant> {
        let stale = self.line.is_some() && self.stale;
        stale.then(|| self.last_draw.unwrap_or(self.started) + INTERVAL)
    }

    fn update_at(&mut self, now: Instant, counts: Counts) {
        self.stale = self.shown != Some(counts);
        let since = self.last_draw.unwrap_or(self.started);
        if !self.stale || self.line.is_none() || now.saturating_duration_since(since) < INTERVAL {
            return;
        }
        self.learn_total();
        let elapsed = now.saturating_duration_since(self.started);
        let text = describe(counts, self.total, elapsed);
        if let Some(line) = &self.line {
            line.draw(&text);
        }
        self.last_draw = Some(now);
        self.shown = Some(counts);
        self.stale = false;
    }

    /// The terminal was resized: redraw at the next [`update`](Self::update), at the new
    /// width.
    pub(crate) fn resized(&mut self) {
        self.shown = None;
        self.stale = true;
        self.last_draw = None;
    }

    /// Called before a result line goes to stdout.
    pub(crate) fn before_stdout(&mut self) {
        if let (true, Some(line)) = (self.shares_stdout, &self.line) {
            line.clear();
            self.shown = None;
            self.stale = true;
        }
    }
}

impl<W: Write> Drop for Progress<W> {
    fn drop(&mut self) {
        if let Some(line) = &self.line {
            line.clear();
        }
    }
}

/// The progress line's text.
fn describe(counts: Counts, total: Option<u64>, elapsed: Duration) -> String {
    let done = counts.ok + counts.failed;
    let mut text = match total {
        Some(0) | None => format!("fetchall {done} done"),
        Some(total) => format!(
            "fetchall {done}/{total} ({}%)",
            (done.saturating_mul(100) / total).min(100)
        ),
    };
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let rate = if rate < 100.0 {
        format!("{rate:.1}")
    } else {
        format!("{rate:.0}")
    };
    text += &format!(
        ", {} ok, {} failed, {rate}/s, {} in flight",
        counts.ok, counts.failed, counts.in_flight
    );
    if counts.held > 0 {
        text += &format!(", {} held", counts.held);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn counts(ok: u64, failed: u64, in_flight: usize, held: usize) -> Counts {
        Counts {
            ok,
            failed,
            in_flight,
            held,
        }
    }

    #[test]
    fn the_line_says_done_of_total_rate_and_in_flight() {
        let second = Duration::from_secs(1);
        assert_eq!(
            describe(counts(110, 10, 8, 0), Some(1000), 2 * second),
            "fetchall 120/1000 (12%), 110 ok, 10 failed, 60.0/s, 8 in flight"
        );
        assert_eq!(
            describe(counts(3000, 0, 2, 40), None, second),
            "fetchall 3000 done, 3000 ok, 0 failed, 3000/s, 2 in flight, 40 held"
        );
        assert_eq!(
            describe(counts(0, 0, 0, 0), Some(0), Duration::ZERO),
            "fetchall 0 done, 0 ok, 0 failed, 0.0/s, 0 in flight"
        );
    }

    /// A writer the test can read back.
    #[derive(Debug, Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    /// A terminal 80 columns wide, and one 20 wide.
    fn wide() -> usize {
        80
    }

    fn narrow() -> usize {
        20
    }

    const ERASE: &str = "\r\x1b[K";

    #[test]
    fn redraws_at_most_every_interval_over_the_last_line() {
        let out = Shared::default();
        let (count, counted) = mpsc::channel();
        let (reader, read) = mpsc::channel();
        let line = StatusLine::new(out.clone(), wide);
        let mut p = Progress::on(line, read, Some(counted), false);
        let t0 = p.started;
        p.update_at(t0 + INTERVAL / 2, counts(1, 0, 1, 0));
        assert_eq!(out.take(), "", "too early");
        assert_eq!(p.due(), Some(t0 + INTERVAL), "but due then");
        count.send(10).unwrap();
        p.update_at(t0 + INTERVAL, counts(1, 1, 19, 0));
        let first = "fetchall 2/10 (20%), 1 ok, 1 failed, 20.0/s, 19 in flight";
        assert_eq!(out.take(), format!("\r{first}"));
        assert_eq!(p.due(), None, "up to date");
        p.update_at(t0 + INTERVAL * 3 / 2, counts(5, 1, 1, 0));
        assert_eq!(out.take(), "", "drawn less than an interval ago");
        // The reader's total replaces the count; the longer line is erased first.
        reader.send(6).unwrap();
        p.update_at(t0 + INTERVAL * 2, counts(5, 1, 0, 0));
        let second = "fetchall 6/6 (100%), 5 ok, 1 failed, 30.0/s, 0 in flight";
        assert_eq!(out.take(), format!("{ERASE}{second}"));
        p.update_at(t0 + INTERVAL * 4, counts(5, 1, 0, 0));
        assert_eq!(out.take(), "", "nothing changed");
        drop(p);
        assert_eq!(out.take(), ERASE, "wiped on drop");
    }

    #[test]
    fn logs_and_shared_stdout_wipe_the_line_first_and_it_comes_back_when_due() {
        let out = Shared::default();
        let line = StatusLine::new(out.clone(), wide);
        let mut p = Progress::on(line.clone(), mpsc::channel().1, None, true);
        p.update_at(p.started + INTERVAL, counts(1, 0, 0, 0));
        out.take();
        // A log event wipes the line, then writes; a second one has nothing to wipe.
        line.make_writer().write_all(b"WARN something\n").unwrap();
        line.make_writer().write_all(b"WARN again\n").unwrap();
        assert_eq!(out.take(), format!("{ERASE}WARN something\nWARN again\n"));
        p.update_at(p.started + INTERVAL * 2, counts(2, 0, 0, 0));
        out.take();
        p.before_stdout();
        assert_eq!(out.take(), ERASE);
        // Wiped for a result line: due again at once, with the same counts.
        assert_eq!(p.due(), Some(p.started + INTERVAL * 3));
        p.update_at(p.started + INTERVAL * 3, counts(2, 0, 0, 0));
        assert!(out.take().ends_with("2 ok, 0 failed, 6.7/s, 0 in flight"));
        line.clear();
        line.try_clear();
        drop(p);
        assert_eq!(out.take(), ERASE, "wiped once, then nothing left to wipe");
    }

    #[test]
    fn the_line_is_cut_to_the_terminal_width_and_a_narrowed_terminal_is_cleaned_up() {
        let out = Shared::default();
        let line = StatusLine::new(out.clone(), narrow);
        let mut p = Progress::on(line.clone(), mpsc::channel().1, None, false);
        p.update_at(p.started + INTERVAL, counts(1, 0, 0, 0));
        assert_eq!(out.take(), "\rfetchall 1 done, 1 ");
        // A line drawn 45 columns wide, then the terminal narrowed to 20: it now takes three
        // rows, and all three are erased before the next one is drawn.
        line.lock().shown = 45;
        p.resized();
        p.update_at(p.started + INTERVAL * 2, counts(1, 0, 0, 0));
        assert_eq!(
            out.take(),
            "\r\x1b[K\x1b[A\x1b[K\x1b[A\x1b[Kfetchall 1 done, 1 "
        );
    }
}
