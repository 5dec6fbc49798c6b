//! What a fetch learns besides the byte count: [`Facts`] about the final response and the
//! connection it came on, and the per-phase times, gathered by the transport wrappers.
//!
//! The times come from where each phase happens: the resolver ([`CachingResolver`]) times a
//! lookup, the connector ([`PhaseConnector`]) the TCP connect (ended where [`SocketConnector`]
//! hands over the socket) and the TLS handshake, and each connection ([`ExchangeTransport`])
//! the wait from sending a request to the first byte of its answer. They reach
//! [`Fetcher::fetch`](super::Fetcher::fetch) through a thread-local record: ureq is blocking,
//! so every step of a request, from the lookup to the last body byte, runs on the thread that
//! called it, and one thread makes one request at a time. The record is reset when a request
//! starts and read when it ends, so nothing carries over from one URL to the next.
//!
//! [`CachingResolver`]: super::resolver::CachingResolver
//! [`PhaseConnector`]: super::transport::PhaseConnector
//! [`SocketConnector`]: super::socket::SocketConnector
//! [`ExchangeTransport`]: super::transport::ExchangeTransport

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{FetchError, Page, TlsInfo};

/// What is known about how a URL was fetched, whether it succeeded or not: the final response
/// (after redirects), the connection it came on, and how long each phase of that last request
/// took. Every field is `None` (or 0) when the fetch did not get that far.
///
/// The times are **per phase, not cumulative** (curl's `-w` times are cumulative: its
/// `time_connect` includes `time_namelookup`), and they are the final request's: the earlier
/// hops of a redirect chain and earlier attempts are only in the total time,
/// [`Page::elapsed`]. For one request on a new connection, `dns + connect + tls + ttfb` is
/// curl's `time_starttransfer`.
///
/// A request that reused a kept-alive connection made no lookup, connect or handshake:
/// [`dns`](Facts::dns), [`connect`](Facts::connect) and [`tls`](Facts::tls) are then `None`,
/// as `tls` is for `http://`. Through a proxy, [`remote_addr`](Facts::remote_addr) is the
/// proxy's and [`tls`](Facts::tls) includes the `CONNECT` exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Facts {
    /// The URL of the final response: the one asked for, or where the redirects led, with a
    /// password in it replaced by `***` ([`redact_password`](super::redact_password)).
    pub final_url: Option<String>,
    /// Redirects followed to the final response.
    pub redirects: u32,
    /// The final response's `Content-Type` header (invalid UTF-8 shown as U+FFFD).
    pub content_type: Option<String>,
    /// The final response's HTTP version: `HTTP/1.1` or `HTTP/1.0`.
    pub http_version: Option<&'static str>,
    /// The address of the connection the final request went over.
    pub remote_addr: Option<SocketAddr>,
    /// The name lookup for that connection (an IP literal or a cached name takes next to no
    /// time).
    pub dns: Option<Duration>,
    /// Its TCP connect.
    pub connect: Option<Duration>,
    /// Its TLS handshake.
    pub tls: Option<Duration>,
    /// From sending the final request to the first byte of its response: the server's time
    /// plus a round trip.
    pub ttfb: Option<Duration>,
}

/// The answer of [`Fetcher::fetch`](super::Fetcher::fetch): the page or the error, and the
/// [`Facts`] learnt on the way either way.
#[derive(Debug)]
#[non_exhaustive]
pub struct Transfer {
    /// What [`Fetcher::load_url`](super::Fetcher::load_url) returns.
    pub result: Result<Page, FetchError>,
    /// What is known of the final response and its connection.
    pub facts: Facts,
    /// For a failure whose response came over TLS, that connection's TLS facts; `None` for a
    /// page, which has its own in [`Page::tls`].
    pub tls: Option<TlsInfo>,
}

/// What a new connection took to open, kept by the connection for the first request on it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Opened {
    pub(super) remote_addr: Option<SocketAddr>,
    pub(super) dns: Option<Duration>,
    pub(super) connect: Option<Duration>,
    pub(super) tls: Option<Duration>,
}

/// The thread's record of the request under way.
#[derive(Debug, Default)]
struct Record {
    /// The last lookup's time.
    lookup: Option<Duration>,
    /// When and to where the last TCP connect succeeded.
    tcp: Option<(Instant, Option<SocketAddr>)>,
    /// The connection the last request went over; `None` for what a reused one lacks.
    opened: Opened,
    /// When the last request was sent, and how long its first response byte took.
    sent: Option<Instant>,
    ttfb: Option<Duration>,
    /// The TLS facts of the connection the last request went over.
    tls: Option<Arc<TlsInfo>>,
}

thread_local! {
    static RECORD: RefCell<Record> = const {
        RefCell::new(Record {
            lookup: None,
            tcp: None,
            opened: Opened {
                remote_addr: None,
                dns: None,
                connect: None,
                tls: None,
            },
            sent: None,
            ttfb: None,
            tls: None,
        })
    };
}

fn with<T>(f: impl FnOnce(&mut Record) -> T) -> T {
    RECORD.with_borrow_mut(f)
}

/// A request starts on this thread: forget the last one's facts.
pub(super) fn reset() {
    with(|r| *r = Record::default());
}

/// The resolver looked a host up (or found it cached) in `took`.
pub(super) fn looked_up(took: Duration) {
    with(|r| r.lookup = Some(took));
}

/// The socket connector has connected to `remote`.
pub(super) fn tcp_connected(remote: Option<SocketAddr>) {
    with(|r| r.tcp = Some((Instant::now(), remote)));
}

/// A connector is about to open a connection: no TCP connect of its own has happened yet.
pub(super) fn connecting() {
    with(|r| r.tcp = None);
}

/// What the connection opened since `started` took: the last lookup, the TCP connect up to
/// when the socket connector finished, and the rest, when `tls`, as the handshake.
pub(super) fn opened(started: Instant, tls: bool) -> Opened {
    let now = Instant::now();
    with(|r| {
        let (connected, remote_addr) = match r.tcp {
            Some((at, remote)) if at >= started => (at, remote),
            _ => (now, None),
        };
        Opened {
            remote_addr,
            dns: r.lookup,
            connect: Some(connected.saturating_duration_since(started)),
            tls: tls.then(|| now.saturating_duration_since(connected)),
        }
    })
}

/// A request goes out on a connection: `Some` with what opening it took if it is the
/// connection's first, `None` (and the remote address alone) if it was reused.
pub(super) fn request_sent(
    opened: Option<Opened>,
    remote_addr: Option<SocketAddr>,
    tls: Option<Arc<TlsInfo>>,
) {
    with(|r| {
        r.opened = opened.unwrap_or(Opened {
            remote_addr,
            ..Opened::default()
        });
        r.sent = Some(Instant::now());
        r.ttfb = None;
        r.tls = tls;
    });
}

/// The TLS facts of the connection the last request went over: `None` for plain `http`.
pub(super) fn last_tls() -> Option<Arc<TlsInfo>> {
    with(|r| r.tls.clone())
}

/// The first byte of the answer to the last request sent has arrived.
pub(super) fn first_byte() {
    with(|r| {
        if r.ttfb.is_none() {
            r.ttfb = r.sent.map(|sent| sent.elapsed());
        }
    });
}

/// The facts of the last request on this thread, to be completed from its response.
pub(super) fn take() -> Facts {
    with(|r| {
        let record = std::mem::take(r);
        Facts {
            remote_addr: record.opened.remote_addr,
            dns: record.opened.dns,
            connect: record.opened.connect,
            tls: record.opened.tls,
            ttfb: record.ttfb,
            ..Facts::default()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_connection_reports_its_opening_once() {
        reset();
        looked_up(Duration::from_micros(5));
        let started = Instant::now();
        connecting();
        let remote = Some(SocketAddr::from(([127, 0, 0, 1], 80)));
        tcp_connected(remote);
        let opened = opened(started, false);
        assert_eq!(opened.remote_addr, remote);
        assert_eq!(opened.dns, Some(Duration::from_micros(5)));
        assert!(opened.connect.is_some() && opened.tls.is_none());

        request_sent(Some(opened), remote, None);
        first_byte();
        let first = take();
        assert_eq!(first.remote_addr, remote);
        assert!(first.connect.is_some() && first.ttfb.is_some());

        // The next request on the same connection: reused, only the address and the wait.
        request_sent(None, remote, None);
        first_byte();
        let second = take();
        assert_eq!(second.remote_addr, remote);
        assert_eq!((second.dns, second.connect, second.tls), (None, None, None));
        assert!(second.ttfb.is_some());
    }

    #[test]
    fn a_connect_of_an_earlier_request_is_not_taken_for_this_one() {
        reset();
        tcp_connected(Some(SocketAddr::from(([127, 0, 0, 1], 81))));
        let started = Instant::now();
        // No connect of its own happened (a chained transport, say): no address, and the whole
        // time counts as the connect.
        connecting();
        let opened = opened(started, true);
        assert_eq!(opened.remote_addr, None);
        assert!(opened.connect.is_some());
        assert_eq!(opened.tls, Some(Duration::ZERO));
        // Only the first byte after a request counts, and only once.
        reset();
        first_byte();
        assert_eq!(take().ttfb, None);
    }
}
