//! `fetchall --demo`: the example, runnable on a machine with no internet.
//!
//! Starts the loopback test server ([`fetchall_serve::Server`]) and makes a URL list on
//! it with varied delays and sizes, a `404`, and a port where nothing listens, so the results
//! come back in a different order from the input, as they do on the real web.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};

use anyhow::Context as _;
use fetchall_serve::Server;

use crate::input::Source;

/// The routes fetched, in input order: slow and fast, small and large, one 404, one redirect.
const ROUTES: &[&str] = &[
    "/sleep/900/bytes/48213",
    "/bytes/1024",
    "/sleep/300/ok",
    "/status/404",
    "/sleep/600/bytes/250000",
    "/redirect/2",
    "/sleep/150/bytes/7000",
    "/bytes/1000000",
];

/// Starts the server and returns it with the URL list as the input. Unless `quiet`, prints the
/// list on stderr first, so the completion order can be compared with it.
///
/// # Errors
///
/// If the server cannot start.
pub(crate) fn start(workers: usize, quiet: bool) -> anyhow::Result<(Server, Source)> {
    let server = Server::start().context("cannot start the demo server")?;
    let mut urls: Vec<String> = ROUTES.iter().map(|path| server.url(path)).collect();
    urls.insert(3, refused_url());
    if !quiet {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "fetchall --demo: a test server is listening on {}.\n\
             Fetching these {} URLs with {workers} workers, in this order; \
             the results below come in the order they complete.\n\
             Two fail on purpose (a 404 and a refused port), so the run exits with status 1, \
             as any run with a failure does:",
            server.addr(),
            urls.len()
        );
        for url in &urls {
            let _ = writeln!(err, "  {url}");
        }
    }
    let text: String = urls.iter().map(|url| format!("{url}\n")).collect();
    Ok((server, Source::Memory(text.into_bytes())))
}

/// A URL on 127.0.0.1 where nothing listens: a port the OS just handed out and took back.
fn refused_url() -> String {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map_or(9, |addr| addr.port()); // 9 (discard) is closed on any sane machine
    format!("http://127.0.0.1:{port}/")
}
