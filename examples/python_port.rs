//! Port of the `ThreadPoolExecutor` example from the Python docs
//! (<https://docs.python.org/3/library/concurrent.futures.html#threadpoolexecutor-example>),
//! as close to line by line as Rust allows.
//!
//! ```python
//! with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
//!     future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}
//!     for future in concurrent.futures.as_completed(future_to_url):
//!         url = future_to_url[future]
//!         try:
//!             data = future.result()
//!         except Exception as exc:
//!             print('%r generated an exception: %s' % (url, exc))
//!         else:
//!             print('%r page is %d bytes' % (url, len(data)))
//! ```
//!
//! What changed, and why:
//! - The five news sites become five pages of a server this example starts on 127.0.0.1, with
//!   different sizes and delays, so it runs without internet and shows completion order
//!   differing from input order. `some-made-up-domain.com` becomes a port where nothing listens:
//!   looking up a made-up name would send a DNS query off this machine.
//! - Python's dict is keyed by the future itself. A `TaskHandle` is not hashable (it owns the
//!   result), so the map is keyed by [`TaskHandle::id`]; `as_completed` takes the handles.
//! - `load_url` returns the byte count, not the bytes: the body is counted while it streams, so a
//!   1 GiB page costs no memory. The count is the same as Python's `len(conn.read())`.
//! - Python's `timeout=60` is per socket operation; ours is a total deadline per URL.
//! - `future.result()` raising becomes a `Result` to match on: `Ok(Ok(bytes))` is the page,
//!   `Ok(Err(exc))` is `load_url`'s error (HTTP, network, timeout), and `Err(exc)` is the task
//!   itself failing (a panic), which Python folds into the same `except`.
//!
//! Run it with `cargo run --example python_port`.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::TcpListener;
use std::time::Duration;

use fetchall::fetch::{FetchError, FetchOptions, Fetcher, Proxies};
use fetchall::{Executor, TaskHandle, ThreadPool, as_completed, repr};
use fetchall_serve::Server;

/// The pages standing in for Python's first four URLs: different sizes, different delays.
const PAGES: [&str; 4] = [
    "/sleep/300/bytes/2370",
    "/sleep/100/bytes/1160",
    "/sleep/400/bytes/840",
    "/bytes/5120",
];

/// Retrieve a single page and report the URL and contents: Python's `load_url`.
fn load_url(fetcher: &Fetcher, url: &str) -> Result<u64, FetchError> {
    fetcher.load_url(url).map(|page| page.bytes)
}

fn run(out: &mut impl Write, urls: &[String]) -> io::Result<()> {
    let mut options = FetchOptions::default();
    options.timeout = Duration::from_secs(60);
    // The pages are on this machine's loopback, which a proxy could not reach.
    options.proxies = Proxies::none();
    let fetcher = Fetcher::new(options);

    // We can use a scope to ensure threads are cleaned up promptly: dropping the pool joins them.
    let executor = ThreadPool::new(5);
    // Start the load operations and mark each future with its URL.
    let mut future_to_url: HashMap<u64, &str> = HashMap::new();
    let futures: Vec<TaskHandle<Result<u64, FetchError>>> = urls
        .iter()
        .map(|url| {
            let (fetcher, owned) = (fetcher.clone(), url.clone());
            let future = executor.submit(move || load_url(&fetcher, &owned));
            future_to_url.insert(future.id(), url);
            future
        })
        .collect();
    for future in as_completed(futures) {
        let url = future_to_url[&future.id()];
        match future.join() {
            Ok(Ok(data)) => writeln!(out, "{} page is {data} bytes", repr(url))?,
            Ok(Err(exc)) => writeln!(out, "{} generated an exception: {exc}", repr(url))?,
            Err(exc) => writeln!(out, "{} generated an exception: {exc}", repr(url))?,
        }
    }
    Ok(())
}

/// The example's URLs on `server`, plus one where nothing listens.
fn urls(server: &Server) -> io::Result<Vec<String>> {
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut urls: Vec<String> = PAGES.iter().map(|path| server.url(path)).collect();
    urls.push(format!("http://{closed}/"));
    Ok(urls)
}

fn main() -> io::Result<()> {
    let server = Server::start()?;
    run(&mut io::stdout().lock(), &urls(&server)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_one_python_shaped_line_per_url() {
        let server = Server::start().unwrap();
        let urls = urls(&server).unwrap();
        let mut out = Vec::new();
        run(&mut out, &urls).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        for (url, bytes) in urls.iter().zip([2370, 1160, 840, 5120]) {
            let expected = format!("'{url}' page is {bytes} bytes");
            assert!(
                lines.contains(&expected.as_str()),
                "missing {expected:?} in\n{text}"
            );
        }
        let refused = format!(
            "'{}' generated an exception: <urlopen error [Errno 111] Connection refused>",
            urls[4]
        );
        assert!(lines.contains(&refused.as_str()), "{text}");
    }
}
