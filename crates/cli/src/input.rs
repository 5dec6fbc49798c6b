//! Reading the URL list: one URL per line, streamed, in constant memory.
//!
//! Lines are read as bytes, so a line that is not UTF-8 is reported on its own instead of ending
//! the run, and no more than [`MAX_LINE`] bytes of one line are ever held: the rest of a longer
//! line is read and thrown away. A reader thread feeds the lines to the main thread's event
//! channel, paced by credits that the main thread hands out (see [`spawn_reader`]), so the main
//! thread never blocks on a slow input (a terminal, a pipe) while results are waiting to be
//! printed or a signal has come, and the input is read only a few batches ahead. Lines travel
//! in batches, which saves a thread wake-up per line; a batch is sent early whenever the next
//! read could block, so a line typed at a terminal is fetched at once.
//!
//! With `--shard K/N` the reader passes on only this run's share of the lines (see
//! [`crate::shard`]), so the others cost no more than being read.
//!
//! The command line may name several inputs ([`Source::open_all`]): files, `-` for standard
//! input, and URLs themselves, read in the order given as if they were one list. An argument
//! that contains `://` is a URL; `-` is standard input; anything else is a file name. A file
//! that does not exist but looks like a host name (`example.com`) gets a hint to add a scheme.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use anyhow::Context as _;

use crate::shard::Shard;

/// The longest line taken as a URL; a longer one is reported and skipped.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// How much of a rejected line is shown in its result line.
const SHOWN: usize = 200;

/// Lines sent to the main thread at once, at most.
const BATCH: usize = 64;

/// One input line worth a result line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line to fetch, trimmed.
    Url(String),
    /// A line that cannot be fetched: what to show for it, and why.
    Rejected {
        /// The line (or its start), with invalid UTF-8 replaced by U+FFFD.
        shown: String,
        /// The message for the result line.
        reason: String,
    },
}

impl Line {
    /// What the line is shown as in its result line.
    pub(crate) fn shown(&self) -> &str {
        match self {
            Line::Url(url) => url,
            Line::Rejected { shown, .. } => shown,
        }
    }
}

/// Where the URLs come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// Standard input (`-`).
    Stdin,
    /// An opened file.
    File(File),
    /// Lines made by the program itself (`--demo`).
    Memory(Vec<u8>),
    /// A URL given as an argument: one line, taken as it is (trimmed).
    Url(String),
    /// Several inputs read one after the other, each with its name for messages.
    Many(Vec<(Source, String)>),
    /// Any reader, for tests that watch how far the input is read.
    #[cfg(test)]
    Reader(AnyReader),
}

/// Any reader, for [`Source::Reader`].
#[cfg(test)]
pub(crate) struct AnyReader(pub(crate) Box<dyn Read + Send>);

#[cfg(test)]
impl std::fmt::Debug for AnyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnyReader(..)")
    }
}

impl Source {
    /// Opens the inputs named on the command line, in order: a URL (an argument with `://`),
    /// `-` for standard input, or a file. One input is that input itself; several are
    /// [`Source::Many`]. Every file is opened here, so a missing one is an error before anything
    /// runs.
    ///
    /// # Errors
    ///
    /// As [`Source::open`], for the first file that cannot be opened.
    pub(crate) fn open_all(inputs: &[impl AsRef<OsStr>]) -> anyhow::Result<Source> {
        let mut sources = Vec::with_capacity(inputs.len());
        for input in inputs {
            let input = input.as_ref();
            let source = match input.to_str() {
                Some(url) if url.contains("://") => Source::Url(url.trim().to_owned()),
                _ => Source::open(Path::new(input))?,
            };
            sources.push((source, input.to_string_lossy().into_owned()));
        }
        if sources.len() == 1 {
            if let Some((source, _)) = sources.pop() {
                return Ok(source);
            }
        }
        Ok(Source::Many(sources))
    }

    /// Opens `path` (`-` is standard input). A missing, unreadable or directory path is an error
    /// here, before anything runs.
    ///
    /// # Errors
    ///
    /// If `path` cannot be opened, or is a directory; the OS error is the cause.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Source> {
        if path == Path::new("-") {
            return Ok(Source::Stdin);
        }
        let shown = path.display();
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) => match (e.kind(), path.to_str().and_then(url_hint)) {
                (io::ErrorKind::NotFound, Some(url)) => {
                    anyhow::bail!(
                        "cannot open {shown}: {e}; to fetch a URL, give its scheme: {url}"
                    )
                }
                _ => return Err(e).with_context(|| format!("cannot open {shown}")),
            },
        };
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read {shown}"))?;
        if meta.is_dir() {
            anyhow::bail!("cannot read {shown}: it is a directory");
        }
        Ok(Source::File(file))
    }
}

/// Endings that make a name a file's rather than a host's, though they are letters only.
const FILE_ENDINGS: [&str; 16] = [
    "txt", "csv", "tsv", "json", "jsonl", "ndjson", "lst", "list", "log", "md", "xml", "html",
    "htm", "yaml", "yml", "gz",
];

/// The URL a missing file's name was probably meant as: `example.com` or
/// `www.example.com:8443/path` (a host name of two labels or more, ending in letters that are
/// not a file ending), `localhost[:PORT]` or an IPv4 address. `https://` is put before a host
/// name, `http://` before `localhost` and an address (test servers, mostly).
fn url_hint(name: &str) -> Option<String> {
    let host_port = name.split('/').next()?;
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => host_port,
    };
    let labels: Vec<&str> = host.split('.').collect();
    let local =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::Ipv4Addr>().is_ok();
    let named = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels.last().is_some_and(|tld| {
            tld.len() >= 2
                && tld.bytes().all(|b| b.is_ascii_alphabetic())
                && !FILE_ENDINGS.contains(&tld.to_ascii_lowercase().as_str())
        });
    match (local, named) {
        (true, _) => Some(format!("http://{name}")),
        (false, true) => Some(format!("https://{name}")),
        (false, false) => None,
    }
}

/// What the reader thread sends, in this order: batches of lines, then the end or the error.
#[derive(Debug)]
pub(crate) enum Input {
    /// The next lines worth a result, in input order.
    Lines(Vec<Line>),
    /// The input ended; nothing more comes.
    End,
    /// Reading failed; nothing more comes.
    Failed(io::Error),
}

/// Starts a thread that reads `source` and hands the lines of `shard` to `send`, in batches.
/// Each batch costs one credit: the thread waits for one on `credits` before it sends, so the
/// receiver decides how far the input is read ahead. The thread ends at the end of the input, on
/// a read error, or when `send` returns `false` or the credits' sender is dropped (the run
/// stopped).
///
/// The returned receiver gets the number of lines sent, once, as soon as the reader reaches the
/// end of the input: before the main thread has taken the last lines, so that the progress line
/// can show the total.
pub(crate) fn spawn_reader(
    source: Source,
    name: &Path,
    shard: Shard,
    send: impl Fn(Input) -> bool + Send + 'static,
    credits: Receiver<()>,
) -> io::Result<Receiver<u64>> {
    let (total_tx, total) = mpsc::channel();
    thread::Builder::new()
        .name("fetchall-input".into())
        .spawn(move || {
            let mut out = Out {
                send,
                credits,
                total: total_tx,
                batch: Vec::with_capacity(BATCH),
                count: 0,
                index: 0,
                shard,
            };
            out.send_all(source);
        })?;
    tracing::debug!(input = %name.display(), %shard, "reading");
    Ok(total)
}

/// Counts the lines of `shard` in the regular file at `path` on a thread of its own, for the
/// progress line's total; the count arrives on the returned channel. `None` (no count) for
/// anything but a regular file: reopening a pipe or a terminal would steal the reader's input.
///
/// The file is opened a second time, so the count is of the file as it is now; the run itself
/// reports what the reader read.
pub(crate) fn count_lines(path: &Path, shard: Shard) -> Option<Receiver<u64>> {
    let file = File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("fetchall-count".into())
        .spawn(move || {
            let mut lines = Lines::new(file, shard);
            let mut count = 0;
            loop {
                match lines.next_line(|| ()) {
                    Ok(Some(_)) => count += 1,
                    Ok(None) => break,
                    // No count is better than a wrong one; the reader reports the error.
                    Err(_) => return,
                }
            }
            let _ = tx.send(count);
        });
    spawned.ok().map(|_| rx)
}

/// Where the reader thread's lines go, and where the reading is.
struct Out<S> {
    send: S,
    credits: Receiver<()>,
    total: Sender<u64>,
    /// The batch being filled.
    batch: Vec<Line>,
    /// Lines sent (or in the batch).
    count: u64,
    /// Lines worth a result seen so far in all inputs: the index `--shard` goes by.
    index: u64,
    shard: Shard,
}

impl<S: Fn(Input) -> bool> Out<S> {
    /// Sends the batch, if it has lines, once a credit has come; `false` if the run stopped.
    fn batch(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.credits.recv().is_ok() && (self.send)(Input::Lines(full))
    }

    /// Adds a line, sending the batch when it is full; `false` if the run stopped.
    fn push(&mut self, line: Line) -> bool {
        self.count += 1;
        self.batch.push(line);
        self.batch.len() < BATCH || self.batch()
    }

    /// Reads `source` (every part of it, in order) to the end, then tells the total and sends
    /// the end.
    fn send_all(&mut self, source: Source) {
        if !self.send_source(source, None) {
            return;
        }
        // Told first: the last batch may wait for its credit for a while.
        let _ = self.total.send(self.count);
        if self.batch() {
            (self.send)(Input::End);
        }
    }

    /// Reads one input to its end. `false` if reading should stop: the run stopped, or a read
    /// failed (which has been sent).
    fn send_source(&mut self, source: Source, label: Option<String>) -> bool {
        let reader: Box<dyn Read + Send> = match source {
            Source::Stdin => Box::new(io::stdin()),
            Source::File(file) => Box::new(file),
            Source::Memory(bytes) => Box::new(io::Cursor::new(bytes)),
            #[cfg(test)]
            Source::Reader(reader) => reader.0,
            Source::Url(url) => {
                self.index += 1;
                return !self.shard.contains(self.index - 1) || self.push(Line::Url(url));
            }
            // Several inputs: each in turn, its lines labelled with its name.
            Source::Many(parts) => {
                return parts
                    .into_iter()
                    .all(|(source, name)| self.send_source(source, Some(name)));
            }
        };
        let lines = Lines::new(reader, self.shard).continuing(self.index, label);
        self.send_lines(lines)
    }

    fn send_lines(&mut self, mut lines: Lines<Box<dyn Read + Send>>) -> bool {
        loop {
            let mut open = true;
            let next = lines.next_line(|| open = self.batch());
            if !open {
                return false;
            }
            match next {
                Ok(Some(line)) => {
                    if !self.push(line) {
                        return false;
                    }
                }
                Ok(None) => {
                    self.index = lines.index;
                    return true;
                }
                Err(e) => {
                    if self.batch() {
                        (self.send)(Input::Failed(e));
                    }
                    return false;
                }
            }
        }
    }
}

/// The lines of a reader worth a result, and in `shard`: trimmed, blank and `#` lines skipped.
#[derive(Debug)]
pub(crate) struct Lines<R> {
    reader: BufReader<R>,
    /// Lines read, of any kind: the line number in messages.
    number: u64,
    /// Lines worth a result seen, in any shard: the index `--shard` goes by.
    index: u64,
    shard: Shard,
    /// The input's name in messages, when there are several inputs.
    label: Option<String>,
    buf: Vec<u8>,
}

impl<R: Read> Lines<R> {
    pub(crate) fn new(reader: R, shard: Shard) -> Lines<R> {
        Lines {
            reader: BufReader::with_capacity(64 * 1024, reader),
            number: 0,
            index: 0,
            shard,
            label: None,
            buf: Vec::new(),
        }
    }

    /// The same lines, counted for `--shard` from `index` (the inputs before this one had that
    /// many lines worth a result), and named `label` in messages.
    fn continuing(self, index: u64, label: Option<String>) -> Lines<R> {
        Lines {
            index,
            label,
            ..self
        }
    }

    /// `line 7`, or `line 7 of urls.txt` when there are several inputs.
    fn place(&self) -> String {
        match &self.label {
            Some(name) => format!("line {} of {name}", self.number),
            None => format!("line {}", self.number),
        }
    }

    /// The next line worth a result, `None` at the end of the input. `before_read` is called
    /// each time the buffer is empty and a read that may block comes next.
    pub(crate) fn next_line(&mut self, mut before_read: impl FnMut()) -> io::Result<Option<Line>> {
        loop {
            let Some(too_long) = self.read_raw(&mut before_read)? else {
                return Ok(None);
            };
            self.number += 1;
            let text = self.buf.trim_ascii();
            if text.is_empty() || text.starts_with(b"#") {
                continue;
            }
            self.index += 1;
            if !self.shard.contains(self.index - 1) {
                continue;
            }
            let line = if too_long {
                let start = String::from_utf8_lossy(&text[..SHOWN.min(text.len())]);
                Line::Rejected {
                    shown: format!("{start}..."),
                    reason: format!("{} is longer than {MAX_LINE} bytes; skipped", self.place()),
                }
            } else {
                match std::str::from_utf8(text) {
                    Ok(url) => Line::Url(url.to_owned()),
                    Err(_) => Line::Rejected {
                        shown: String::from_utf8_lossy(text).into_owned(),
                        reason: format!("{} is not valid UTF-8", self.place()),
                    },
                }
            };
            return Ok(Some(line));
        }
    }

    /// Reads one line into `buf`, keeping at most [`MAX_LINE`] bytes of it. `Some(true)` if
    /// bytes were dropped, `None` at the end of the input.
    fn read_raw(&mut self, before_read: &mut impl FnMut()) -> io::Result<Option<bool>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            if self.reader.buffer().is_empty() {
                before_read();
            }
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(any.then_some(too_long));
            }
            any = true;
            let (part, used, ended) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], i + 1, true),
                None => (chunk, chunk.len(), false),
            };
            let room = MAX_LINE - self.buf.len();
            if part.len() > room {
                self.buf.extend_from_slice(&part[..room]);
                too_long = true;
            } else {
                self.buf.extend_from_slice(part);
            }
            self.reader.consume(used);
            if ended {
                return Ok(Some(too_long));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads all of `reader` as lines.
    fn all_lines(reader: impl Read) -> Vec<Line> {
        shard_lines(reader, Shard::ALL)
    }

    fn shard_lines(reader: impl Read, shard: Shard) -> Vec<Line> {
        let mut lines = Lines::new(reader, shard);
        std::iter::from_fn(|| lines.next_line(|| ()).unwrap()).collect()
    }

    fn url(s: &str) -> Line {
        Line::Url(s.to_owned())
    }

    #[test]
    fn trims_and_skips_blank_and_comment_lines() {
        let input =
            b"  http://a/  \n\n\t\n# a comment\n   # indented comment\nhttp://b/\r\nhttp://c/";
        assert_eq!(
            all_lines(&input[..]),
            [url("http://a/"), url("http://b/"), url("http://c/")]
        );
    }

    #[test]
    fn keeps_duplicates_and_invalid_urls() {
        let input = b"http://a/\nhttp://a/\nnot a url\n";
        assert_eq!(
            all_lines(&input[..]),
            [url("http://a/"), url("http://a/"), url("not a url")]
        );
    }

    #[test]
    fn invalid_utf8_is_one_rejected_line() {
        let input = b"http://a/\nhttp://b/\xff\xfe\nhttp://c/\n";
        assert_eq!(
            all_lines(&input[..]),
            [
                url("http://a/"),
                Line::Rejected {
                    shown: "http://b/\u{fffd}\u{fffd}".into(),
                    reason: "line 2 is not valid UTF-8".into(),
                },
                url("http://c/"),
            ]
        );
    }

    #[test]
    fn an_overlong_line_is_rejected_and_the_next_line_still_read() {
        let mut input = b"http://a/".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE));
        input.extend(b"\nhttp://b/\n");
        let lines = all_lines(&input[..]);
        assert_eq!(lines.len(), 2);
        match &lines[0] {
            Line::Rejected { shown, reason } => {
                assert!(shown.starts_with("http://a/xxx") && shown.ends_with("..."));
                assert!(shown.len() < SHOWN + 10);
                assert_eq!(reason, "line 1 is longer than 65536 bytes; skipped");
            }
            other => panic!("expected a rejected line, got {other:?}"),
        }
        assert_eq!(lines[1], url("http://b/"));
    }

    #[test]
    fn a_line_of_exactly_max_line_bytes_is_kept() {
        let mut input = vec![b'y'; MAX_LINE];
        input.push(b'\n');
        assert_eq!(all_lines(&input[..]), [url(&"y".repeat(MAX_LINE))]);
    }

    /// A reader that hands out one byte at a time, as a slow pipe may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let input = b"http://a/\n# c\nhttp://b/";
        let mut lines = Lines::new(Trickle(input), Shard::ALL);
        let mut reads = 0;
        assert_eq!(
            lines.next_line(|| reads += 1).unwrap(),
            Some(url("http://a/"))
        );
        // One read per byte: the line ends with the last one.
        assert_eq!(reads, "http://a/\n".len());
        assert_eq!(lines.next_line(|| ()).unwrap(), Some(url("http://b/")));
        assert_eq!(lines.next_line(|| ()).unwrap(), None);
    }

    #[test]
    fn shards_count_only_the_lines_that_get_a_result() {
        let input = b"# list\nhttp://0/\n\nhttp://1/\n# moved\nhttp://2/\nbad \xff\nhttp://4/\n";
        let shard = |s: &str| shard_lines(&input[..], s.parse().unwrap());
        assert_eq!(
            shard("0/2"),
            [url("http://0/"), url("http://2/"), url("http://4/")]
        );
        // The rejected line is index 3 and keeps its real line number.
        assert_eq!(
            shard("1/2"),
            [
                url("http://1/"),
                Line::Rejected {
                    shown: "bad \u{fffd}".into(),
                    reason: "line 7 is not valid UTF-8".into(),
                },
            ]
        );
        // Comments and blank lines added anywhere move nothing to another shard.
        let edited = b"\n\n# new\nhttp://0/\nhttp://1/\n\n\nhttp://2/\n# x\nbad \xff\nhttp://4/";
        assert_eq!(
            shard_lines(&edited[..], "0/2".parse().unwrap()),
            shard("0/2")
        );
        assert_eq!(
            shard("3/5"),
            [Line::Rejected {
                shown: "bad \u{fffd}".into(),
                reason: "line 7 is not valid UTF-8".into(),
            }]
        );
    }

    #[test]
    fn the_reader_tells_the_total_without_waiting_for_the_lines_to_be_taken() {
        let text: String = (0..200).map(|i| format!("http://h/{i}\n# c\n")).collect();
        let source = Source::Memory(text.into_bytes());
        let (tx, lines) = mpsc::channel();
        let (credit, credits) = mpsc::channel();
        // Credits for every batch up front: the reader reaches the end with none taken.
        for _ in 0..100usize.div_ceil(BATCH) {
            credit.send(()).unwrap();
        }
        let send = move |input| tx.send(input).is_ok();
        let total = spawn_reader(
            source,
            Path::new("test"),
            "1/2".parse().unwrap(),
            send,
            credits,
        )
        .unwrap();
        let limit = std::time::Duration::from_secs(30);
        assert_eq!(total.recv_timeout(limit), Ok(100));
        let mut taken = 0;
        loop {
            match lines.recv_timeout(limit).expect("the reader sends its end") {
                Input::Lines(batch) => taken += batch.len(),
                Input::End => break,
                Input::Failed(e) => panic!("{e}"),
            }
        }
        assert_eq!(taken, 100);
    }

    #[test]
    fn a_regular_file_is_counted_and_a_pipe_is_not() {
        let path = std::env::temp_dir().join(format!("fetchall-count-{}.txt", std::process::id()));
        let text: String = (0..1000)
            .map(|i| format!("http://h/{i}\n# c\n\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        let count = |shard: &str| {
            count_lines(&path, shard.parse().unwrap())
                .expect("a regular file is counted")
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("the count arrives")
        };
        assert_eq!((count("0/1"), count("0/3"), count("2/3")), (1000, 334, 333));
        let _ = std::fs::remove_file(&path);
        assert!(count_lines(Path::new("/dev/null"), Shard::ALL).is_none());
        assert!(count_lines(&path, Shard::ALL).is_none(), "a missing file");
    }

    #[test]
    fn a_directory_is_refused_up_front() {
        let dir = std::env::temp_dir();
        let err = format!("{:#}", Source::open(&dir).unwrap_err());
        assert!(err.ends_with("it is a directory"), "{err}");
        let missing = dir.join("fetchall-no-such-file.txt");
        let err = format!("{:#}", Source::open(&missing).unwrap_err());
        assert!(err.starts_with("cannot open "), "{err}");
        assert!(err.ends_with("(os error 2)"), "the cause is shown: {err}");
    }

    /// Every line the reader thread sends for `source`.
    fn read_all(source: Source, shard: &str) -> Vec<Line> {
        let (tx, lines) = mpsc::channel();
        let (credit, credits) = mpsc::channel();
        let send = move |input| tx.send(input).is_ok();
        let shard = shard.parse().unwrap();
        let _total = spawn_reader(source, Path::new("test"), shard, send, credits).unwrap();
        let limit = std::time::Duration::from_secs(30);
        let mut all = Vec::new();
        // Bounded: the reader sends its end, or the test fails on the time limit.
        loop {
            // One credit for each batch, as the run loop gives them (the reader may have
            // ended already).
            let _ = credit.send(());
            match lines.recv_timeout(limit).expect("the reader sends its end") {
                Input::Lines(batch) => all.extend(batch),
                Input::End => return all,
                Input::Failed(e) => panic!("{e}"),
            }
        }
    }

    fn temp_file(name: &str, text: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("fetchall-{name}-{}.txt", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn urls_files_and_their_mix_are_read_in_the_order_given() {
        let a = temp_file("many-a", b"http://a/1\n# c\nhttp://a/2\n");
        let b = temp_file("many-b", b"http://b/1\nbad \xff\n");
        let args = [
            "http://first/".to_owned(),
            a.display().to_string(),
            " https://middle/ ".to_owned(),
            b.display().to_string(),
        ];
        let source = Source::open_all(&args).unwrap();
        let bad = Line::Rejected {
            shown: "bad \u{fffd}".into(),
            reason: format!("line 2 of {} is not valid UTF-8", b.display()),
        };
        let all = [
            url("http://first/"),
            url("http://a/1"),
            url("http://a/2"),
            url("https://middle/"),
            url("http://b/1"),
            bad.clone(),
        ];
        assert_eq!(read_all(source, "0/1"), all);
        // The shard index runs on from one input to the next.
        let source = Source::open_all(&args).unwrap();
        assert_eq!(
            read_all(source, "1/2"),
            [all[1].clone(), all[3].clone(), bad]
        );
        let _ = std::fs::remove_file(&a);
        let _ = std::fs::remove_file(&b);
    }

    #[test]
    fn one_input_is_read_as_before() {
        let source = Source::open_all(&["http://only/"]).unwrap();
        assert!(
            matches!(source, Source::Url(ref u) if u == "http://only/"),
            "{source:?}"
        );
        assert_eq!(read_all(source, "0/1"), [url("http://only/")]);
        let file = temp_file("one", b"x \xff\n");
        let lines = read_all(Source::open_all(&[&file]).unwrap(), "0/1");
        let _ = std::fs::remove_file(&file);
        assert!(
            matches!(&lines[..], [Line::Rejected { reason, .. }] if reason == "line 1 is not valid UTF-8"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_missing_file_that_looks_like_a_host_gets_a_hint() {
        let err = format!(
            "{:#}",
            Source::open_all(&["http://fine/", "example.com"]).unwrap_err()
        );
        assert!(
            err.starts_with("cannot open example.com: ")
                && err.ends_with("; to fetch a URL, give its scheme: https://example.com"),
            "{err}"
        );
        let err = format!("{:#}", Source::open_all(&["no-such-urls.txt"]).unwrap_err());
        assert!(!err.contains("scheme"), "{err}");
    }

    #[test]
    fn host_names_are_told_from_file_names() {
        for (name, hint) in [
            ("example.com", Some("https://example.com")),
            ("www.bbc.co.uk/news", Some("https://www.bbc.co.uk/news")),
            (
                "api.example.io:8443/v1",
                Some("https://api.example.io:8443/v1"),
            ),
            ("localhost:8000/x", Some("http://localhost:8000/x")),
            ("127.0.0.1:5000", Some("http://127.0.0.1:5000")),
            ("urls.txt", None),
            ("list.CSV", None),
            ("dir/urls", None),
            ("urls", None),
            ("a..b", None),
            ("-x.com", None),
            ("example.c0m", None),
            ("host:port", None),
            ("", None),
        ] {
            assert_eq!(url_hint(name).as_deref(), hint, "{name}");
        }
    }
}
