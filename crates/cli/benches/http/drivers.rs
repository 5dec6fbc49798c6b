//! The clients this harness is itself, each run as a child process (the harness re-running
//! itself) so that it is measured like every other client:
//!
//! - the **floor** (`--floor W FILE`): W threads, one keep-alive connection each, a fixed
//!   request, the head scanned for `Content-Length` and the body thrown away in 256 KiB reads.
//!   The least work a client can do; where it is far faster than everyone, the server is not
//!   the limit.
//! - **bare ureq** (`--ureq W FILE`): the same requests through one `ureq::Agent` shared by W
//!   threads, with nothing of fetchall around it: what ureq itself costs.
//! - the **library client** (`--client W FILE`): `Fetcher` and `ThreadPool` without the CLI.
//! - the **fetcher on plain threads** (`--fetcher W FILE`): one `Fetcher` shared by W threads
//!   that each take the next URL themselves, as bare ureq's do: what the fetcher costs over
//!   bare ureq, with no hand-off between threads in it.
//!
//! Each prints `URL N` (curl's `-w` line) or the Python example's line per URL, through a
//! buffer per thread, so that the harness can check every URL was fetched.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use fetchall::fetch::{FetchOptions, Fetcher};
use fetchall::{AsCompleted, Executor, ThreadPool, repr};

/// The floor's read size, and the size of each thread's output buffer before it is written.
const FLOOR_READ: usize = 256 * 1024;
const OUT_CHUNK: usize = 32 * 1024;

/// Reads the URL list whole: the floor and the bare ureq client are not measured for memory.
fn read_urls(file: &Path) -> io::Result<Vec<String>> {
    BufReader::new(File::open(file)?).lines().collect()
}

/// Runs `fetch` for every URL of `file` on `workers` threads, each taking the next URL from a
/// shared counter and printing through its own buffer.
fn on_threads<S>(
    workers: usize,
    file: &Path,
    state: impl Fn() -> S + Sync,
    fetch: impl Fn(&mut S, &str, &mut Vec<u8>) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let urls = read_urls(file)?;
    let next = AtomicUsize::new(0);
    let stdout = Mutex::new(io::stdout());
    let failed = Mutex::new(None);
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut state = state();
                let mut out = Vec::with_capacity(OUT_CHUNK + 1024);
                let flush = |out: &mut Vec<u8>| {
                    // Poisoning would mean a panic in a write: nothing else runs under the lock.
                    let mut stdout = stdout.lock().unwrap();
                    let written = stdout.write_all(out);
                    out.clear();
                    written
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(url) = urls.get(i) else { break };
                    let result = fetch(&mut state, url, &mut out).and_then(|()| {
                        if out.len() >= OUT_CHUNK {
                            flush(&mut out)
                        } else {
                            Ok(())
                        }
                    });
                    if let Err(e) = result {
                        *failed.lock().unwrap() = Some(e);
                        break;
                    }
                }
                if let Err(e) = flush(&mut out) {
                    *failed.lock().unwrap() = Some(e);
                }
            });
        }
    });
    match failed.into_inner().unwrap_or(None) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `http://AUTHORITY/PATH` split in two; only plain-HTTP URLs are the floor's.
fn split_url(url: &str) -> io::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::other(format!("not an http:// URL: {url}")))?;
    Ok(match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    })
}

/// One floor thread's connection: the authority it goes to, and the stream.
struct FloorConnection {
    authority: String,
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
    line: String,
}

/// `--floor W FILE`: see the module docs.
pub(crate) fn floor_client(workers: usize, file: &Path) -> io::Result<()> {
    on_threads(
        workers,
        file,
        || None::<FloorConnection>,
        |connection, url, out| {
            let (authority, path) = split_url(url)?;
            if connection.as_ref().is_none_or(|c| c.authority != authority) {
                let stream = TcpStream::connect(authority)?;
                stream.set_nodelay(true)?;
                *connection = Some(FloorConnection {
                    authority: authority.to_owned(),
                    reader: BufReader::with_capacity(FLOOR_READ, stream),
                    request: Vec::with_capacity(256),
                    line: String::new(),
                });
            }
            let Some(c) = connection.as_mut() else {
                return Err(io::Error::other("no connection"));
            };
            let length = floor_exchange(c, authority, path)?;
            writeln!(out, "{url} {length}")
        },
    )
}

/// Sends one request on `c` and reads its response; returns the body length.
fn floor_exchange(c: &mut FloorConnection, authority: &str, path: &str) -> io::Result<u64> {
    c.request.clear();
    write!(
        c.request,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    )?;
    c.reader.get_ref().write_all(&c.request)?;
    let mut length = None;
    let mut first = true;
    loop {
        c.line.clear();
        if c.reader.read_line(&mut c.line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if c.line == "\r\n" {
            break;
        }
        if first {
            if !c.line.starts_with("HTTP/1.1 200 ") {
                return Err(io::Error::other(format!("status line {:?}", c.line)));
            }
            first = false;
        } else if let Some((name, value)) = c.line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<u64>().ok();
            }
        }
    }
    let length = length.ok_or_else(|| io::Error::other("no Content-Length"))?;
    let mut left = length;
    while left > 0 {
        let available = c.reader.fill_buf()?;
        if available.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let used = available
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        c.reader.consume(used);
        left -= used as u64;
    }
    Ok(length)
}

/// `--ureq W FILE`: one `ureq::Agent` (ureq's defaults, no timeout, so that its resolver runs
/// inline) shared by W threads, with its idle-connection limits raised to W so that every
/// thread can keep its connection; each body is read to its end through a 64 KiB buffer.
pub(crate) fn ureq_client(workers: usize, file: &Path) -> io::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_idle_connections(workers)
        .max_idle_connections_per_host(workers)
        .build()
        .into();
    on_threads(
        workers,
        file,
        || vec![0u8; 64 * 1024],
        |buf, url, out| {
            let response = agent.get(url).call().map_err(io::Error::other)?;
            let mut body = response.into_body().into_reader();
            let mut bytes = 0u64;
            loop {
                match body.read(buf) {
                    Ok(0) => break,
                    Ok(n) => bytes += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            writeln!(out, "{url} {bytes}")
        },
    )
}

/// `--fetcher W FILE`: one shared [`Fetcher`] on W plain threads, each taking the next URL
/// itself as bare ureq's threads do: the fetcher's cost with no pool and no CLI around it.
pub(crate) fn fetcher_client(workers: usize, file: &Path) -> io::Result<()> {
    let fetcher = Fetcher::new(options_for(workers));
    on_threads(
        workers,
        file,
        || (),
        |(), url, out| write_fetched(out, url, &fetcher.load_url(url)),
    )
}

/// The executor's queue bound for `workers`, as the CLI's `dispatch::queue_bound` has it (the
/// bench cannot import from the binary).
fn queue_bound(workers: usize) -> usize {
    (workers * 2).max(128)
}

/// The fetcher's defaults with room for an idle connection per worker.
fn options_for(workers: usize) -> FetchOptions {
    let mut options = FetchOptions::default();
    options.max_idle_connections = options.max_idle_connections.max(workers);
    options.max_idle_connections_per_host = options.max_idle_connections_per_host.max(workers);
    options
}

/// The library client: reads URLs from `file`, fetches them on a [`ThreadPool`] of `workers`
/// threads with one shared [`Fetcher`], and prints the Python example's line for each as it
/// completes. As in the CLI, at most W running and max(2 W, 128) queued tasks are outstanding,
/// so memory does not grow with the file and the queue is deep enough that the workers rarely
/// wait for the reader.
pub(crate) fn library_client(workers: usize, file: &Path) -> io::Result<()> {
    let fetcher = Fetcher::new(options_for(workers));
    let pool = ThreadPool::builder()
        .num_threads(workers)
        .queue_bound(queue_bound(workers))
        .build()
        .map_err(io::Error::other)?;
    let outstanding = workers + queue_bound(workers);
    let mut out = BufWriter::new(io::stdout().lock());
    let mut completed = AsCompleted::new();
    for url in BufReader::new(File::open(file)?).lines() {
        let url = url?;
        if completed.len() >= outstanding {
            if let Some(handle) = completed.next() {
                print_result(&mut out, handle.join())?;
            }
        }
        let fetcher = fetcher.clone();
        completed.push(pool.submit(move || {
            let page = fetcher.load_url(&url);
            (url, page)
        }));
    }
    for handle in completed {
        print_result(&mut out, handle.join())?;
    }
    out.flush()
}

type Fetched = (
    String,
    Result<fetchall::fetch::Page, fetchall::fetch::FetchError>,
);

fn print_result(
    out: &mut impl Write,
    result: Result<Fetched, fetchall::TaskError>,
) -> io::Result<()> {
    match result {
        Ok((url, fetched)) => write_fetched(out, &url, &fetched),
        Err(e) => writeln!(out, "task failed: {e}"),
    }
}

/// The Python example's line for `url`.
fn write_fetched(
    out: &mut impl Write,
    url: &str,
    fetched: &Result<fetchall::fetch::Page, fetchall::fetch::FetchError>,
) -> io::Result<()> {
    match fetched {
        Ok(page) => writeln!(out, "{} page is {} bytes", repr(url), page.bytes),
        Err(e) => writeln!(out, "{} generated an exception: {e}", repr(url)),
    }
}
