//! The two clients this harness is itself: the raw keep-alive client that shows what the server
//! can serve, and the library client (`--client W FILE`) that shows what `Fetcher` and
//! `ThreadPool` do without the CLI around them.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use fetchall::fetch::{FetchOptions, Fetcher};
use fetchall::{AsCompleted, Executor, ThreadPool, repr};

/// Fetches `path?i=0..n` from `addr` on `workers` threads, one keep-alive connection each, with
/// the least work a client can do: a fixed request, the head scanned for `Content-Length`, the
/// body skipped in 64 KiB reads. Returns how many responses were `200` with `bytes` bytes.
pub(crate) fn raw(addr: SocketAddr, path: &str, n: usize, workers: usize, bytes: u64) -> usize {
    let next = AtomicUsize::new(0);
    let good = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let Ok(count) = raw_worker(addr, path, n, bytes, &next) else {
                    return;
                };
                good.fetch_add(count, Ordering::Relaxed);
            });
        }
    });
    good.into_inner()
}

fn raw_worker(
    addr: SocketAddr,
    path: &str,
    n: usize,
    bytes: u64,
    next: &AtomicUsize,
) -> io::Result<usize> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(64 * 1024, &stream);
    let mut request = Vec::with_capacity(128);
    let mut line = String::new();
    let mut good = 0;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return Ok(good);
        }
        request.clear();
        write!(request, "GET {path}?i={i} HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
        (&stream).write_all(&request)?;

        let mut status_ok = false;
        let mut length = None;
        let mut first = true;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
            if first {
                status_ok = line.starts_with("HTTP/1.1 200 ");
                first = false;
            } else if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<u64>().ok();
                }
            }
        }
        let Some(length) = length else {
            return Err(io::Error::other("no Content-Length"));
        };
        let mut left = length;
        while left > 0 {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let used = available
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            reader.consume(used);
            left -= used as u64;
        }
        if status_ok && length == bytes {
            good += 1;
        }
    }
}

/// The library client: reads URLs from `file`, fetches them on a [`ThreadPool`] of `workers`
/// threads with one shared [`Fetcher`], and prints the Python example's line for each as it
/// completes. At most three tasks per worker are outstanding, so memory does not grow with the
/// file.
pub(crate) fn library_client(workers: usize, file: &Path) -> io::Result<()> {
    let mut options = FetchOptions::default();
    options.max_idle_connections = options.max_idle_connections.max(workers);
    options.max_idle_connections_per_host = options.max_idle_connections_per_host.max(workers);
    let fetcher = Fetcher::new(options);
    let pool = ThreadPool::builder()
        .num_threads(workers)
        .queue_bound(workers * 2)
        .build()
        .map_err(io::Error::other)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let mut completed = AsCompleted::new();
    for url in BufReader::new(File::open(file)?).lines() {
        let url = url?;
        if completed.len() >= workers * 3 {
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
        Ok((url, Ok(page))) => writeln!(out, "{} page is {} bytes", repr(&url), page.bytes),
        Ok((url, Err(e))) => writeln!(out, "{} generated an exception: {e}", repr(&url)),
        Err(e) => writeln!(out, "task failed: {e}"),
    }
}
