//! The layers fetchall puts around ureq's transport: the connector chain, which labels every
//! error with the phase it happened in, and the connection wrapper that recognises the
//! keep-alive race.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ureq::Timeout;
use ureq::unversioned::transport::{
    Buffers, ChainedConnector, ConnectProxyConnector, ConnectionDetails, Connector, Either,
    NextTimeout, SocksConnector, Transport,
};

use super::TlsInfo;
use super::classify::{SocketFailure, socket_failure};
use super::facts::{self, Opened};
use super::forward::ForwardConnector;
use super::socket::SocketConnector;
use super::targets::Targets;
use super::tls::TlsConnector;

/// ureq's default connector chain (a SOCKS proxy or an HTTP `CONNECT` proxy when configured,
/// TCP, TLS for `https`), with [`SocketConnector`] for ureq's TCP connector, [`TlsConnector`]
/// for its rustls one, and first [`ForwardConnector`], which sends `http://` URLs to an HTTP
/// proxy whole.
type Chain = ChainedConnector<
    (),
    ChainedConnector<
        (),
        ChainedConnector<
            (),
            ChainedConnector<(), ChainedConnector<(), (), ForwardConnector>, SocksConnector>,
            ConnectProxyConnector,
        >,
        SocketConnector,
    >,
    TlsConnector,
>;

/// The connector chain, with every error labelled by phase: a timeout while connecting becomes
/// `Timeout::Connect`, and the connection it makes is wrapped in [`ExchangeTransport`].
///
/// ureq itself reports the expiry of the whole-URL deadline as `Timeout::Global` whatever it was
/// doing, which would leave "timed out" without the phase.
///
/// Clones share the chain, and with it what the chain caches: all the agents of a fetcher (see
/// `clients.rs`) use one rustls configuration, built once, with one TLS session cache.
#[derive(Debug, Clone)]
pub(super) struct PhaseConnector(Arc<Chain>);

impl PhaseConnector {
    /// The chain, with `tls` for `https` (and `https://` proxies), and `targets` for the
    /// `--connect-to` entries that tunnel through a proxy. `own_proxy_authorization`: the
    /// fetcher's requests carry a `Proxy-Authorization` header of their own (see
    /// [`ForwardConnector::new`]).
    pub(super) fn new(
        tls: TlsConnector,
        targets: Arc<Targets>,
        own_proxy_authorization: bool,
    ) -> PhaseConnector {
        let chain = ()
            .chain(ForwardConnector::new(
                tls.clone(),
                targets,
                own_proxy_authorization,
            ))
            .chain(SocksConnector::default())
            .chain(ConnectProxyConnector::default())
            .chain(SocketConnector)
            .chain(tls);
        PhaseConnector(Arc::new(chain))
    }
}

impl Connector for PhaseConnector {
    type Out = ExchangeTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<ExchangeTransport>, ureq::Error> {
        let started = Instant::now();
        facts::connecting();
        match self.0.connect(details, chained) {
            Ok(transport) => Ok(transport.map(|t| {
                let opened = facts::opened(started, t.is_tls());
                // The outermost layer's: the target's TLS, not an `https://` proxy's under it.
                let tls = match &t {
                    Either::B(tls) => tls.info(),
                    Either::A(_) => None,
                };
                ExchangeTransport::new(Box::new(t), opened, tls)
            })),
            Err(ureq::Error::Timeout(_)) => Err(ureq::Error::Timeout(Timeout::Connect)),
            Err(e) => Err(tls_labelled(e, details.needs_tls())),
        }
    }
}

/// rustls reports its failures, certificate verification among them, as an `io::Error` of kind
/// `InvalidData`; on a TLS connection that is what such an error means.
fn tls_labelled(e: ureq::Error, tls: bool) -> ureq::Error {
    match e {
        ureq::Error::Io(e) if tls && e.kind() == io::ErrorKind::InvalidData => {
            ureq::Error::Other(Box::new(TlsLabelled(e)))
        }
        e => e,
    }
}

/// A TLS failure that arrived as an `io::Error`. Displays as the TLS library's message.
#[derive(Debug)]
pub(super) struct TlsLabelled(io::Error);

impl fmt::Display for TlsLabelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.get_ref() {
            Some(inner) => fmt::Display::fmt(inner, f),
            None => fmt::Display::fmt(&self.0, f),
        }
    }
}

impl std::error::Error for TlsLabelled {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// An established connection (pooled ones included) whose errors say they happened after the
/// connect: a timeout becomes `Timeout::RecvResponse`.
///
/// A reset is passed on as `Error::Other`: ureq takes an `Error::Io` reset in the body for the
/// end of the body, which would report a connection the server reset as a mere short read.
///
/// It also recognises the keep-alive race. A request sent on a connection that has carried a
/// response before, and that ends (closed or reset) before any byte of its own response, is
/// reported as a [`StaleConnection`]: the server closed the idle connection while the request
/// was on its way, and never saw it. ureq's pool probes a connection before reusing it, so
/// this is the narrow window that probe cannot cover.
#[derive(Debug)]
pub(super) struct ExchangeTransport {
    inner: Box<dyn Transport>,
    /// Some response byte arrived on this connection at some point.
    used: bool,
    /// Output was sent and no input has arrived since: a request awaits its first byte.
    awaiting: bool,
    /// `used` as it was when the awaited request went out.
    reused: bool,
    /// What opening the connection took, until the first request on it reports it.
    opened: Option<Opened>,
    remote_addr: Option<SocketAddr>,
    /// The TLS facts every response on this connection comes with; `None` for plain `http`.
    tls: Option<Arc<TlsInfo>>,
}

impl ExchangeTransport {
    fn new(
        inner: Box<dyn Transport>,
        opened: Opened,
        tls: Option<Arc<TlsInfo>>,
    ) -> ExchangeTransport {
        ExchangeTransport {
            inner,
            used: false,
            awaiting: false,
            reused: false,
            opened: Some(opened),
            remote_addr: opened.remote_addr,
            tls,
        }
    }

    fn label(e: ureq::Error, tls: bool) -> ureq::Error {
        match e {
            ureq::Error::Timeout(_) => ureq::Error::Timeout(Timeout::RecvResponse),
            ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                ureq::Error::Other(Box::new(e))
            }
            e => tls_labelled(e, tls),
        }
    }

    /// Whether the connection ending now is the keep-alive race.
    fn is_stale(&self) -> bool {
        self.reused && self.awaiting
    }

    fn fail(&self, e: ureq::Error) -> ureq::Error {
        match e {
            ureq::Error::Io(e)
                if self.is_stale() && socket_failure(e.kind()) == SocketFailure::Lost =>
            {
                ureq::Error::Other(Box::new(StaleConnection(e)))
            }
            e => ExchangeTransport::label(e, self.inner.is_tls()),
        }
    }
}

impl Transport for ExchangeTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if !self.awaiting {
            // The first write since input arrived: a new request.
            self.awaiting = true;
            self.reused = self.used;
            facts::request_sent(self.opened.take(), self.remote_addr, self.tls.clone());
        }
        self.inner
            .transmit_output(amount, timeout)
            .map_err(|e| self.fail(e))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        match self.inner.await_input(timeout) {
            Ok(true) => {
                if self.awaiting {
                    facts::first_byte();
                }
                self.used = true;
                self.awaiting = false;
                Ok(true)
            }
            // No progress is the end of the input: ureq would make it `UnexpectedEof` itself.
            Ok(false) if self.is_stale() => {
                let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "Peer disconnected");
                Err(ureq::Error::Other(Box::new(StaleConnection(eof))))
            }
            Ok(false) => Ok(false),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// A reused connection that ended before any byte of the response: see [`ExchangeTransport`].
/// Carried through ureq as `Error::Other`; `classify` reports the socket error inside.
#[derive(Debug)]
pub(super) struct StaleConnection(pub(super) io::Error);

impl fmt::Display for StaleConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StaleConnection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Whether `e` is the keep-alive race (see [`ExchangeTransport`]).
pub(super) fn is_stale(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Other(inner) if inner.is::<StaleConnection>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::classify::tests::{body, exchange, os_error};

    #[test]
    fn reset_keeps_its_errno_without_urlopen() {
        let reset = io::Error::from_raw_os_error(104);
        assert_eq!(reset.kind(), io::ErrorKind::ConnectionReset);
        let relabelled = ExchangeTransport::label(ureq::Error::Io(reset), false);
        assert_eq!(
            body(relabelled, 10, Some(100)),
            "[Errno 104] Connection reset by peer"
        );
        assert_eq!(
            exchange(os_error(104)),
            "[Errno 104] Connection reset by peer"
        );
    }

    #[test]
    fn connect_and_exchange_timeouts_are_relabelled() {
        let label = ExchangeTransport::label(ureq::Error::Timeout(Timeout::Global), true);
        assert!(matches!(label, ureq::Error::Timeout(Timeout::RecvResponse)));
    }

    #[test]
    fn tls_errors_say_ssl() {
        assert_eq!(
            exchange(ureq::Error::Tls("handshake failed")),
            "<urlopen error [SSL] handshake failed>"
        );
        let invalid = || ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, "bad record"));
        assert_eq!(
            exchange(tls_labelled(invalid(), true)),
            "<urlopen error [SSL] bad record>"
        );
        assert_eq!(exchange(tls_labelled(invalid(), false)), "bad record");
    }
}
