//! `http://` URLs through an HTTP proxy the way curl and Python's `urllib` send them: the whole
//! request goes to the proxy, with the URL in absolute form (`GET http://host/path HTTP/1.1`),
//! and the proxy fetches it. ureq would open a `CONNECT` tunnel instead, which common proxy
//! configurations refuse for any port but 443 (Squid's default `http_access deny CONNECT
//! !SSL_ports`). `https://` URLs still go through ureq's `CONNECT` tunnel, as curl's do.
//!
//! ureq has no setting for this: it always writes the request target in origin-form, the path
//! and query. So [`ForwardConnector`], first in the connector chain, answers for an `http://` URL
//! whose request has an HTTP proxy configured: it connects to the proxy (TLS to an `https://`
//! proxy), and wraps that connection in a [`ForwardTransport`], which puts `http://host:port` in
//! front of each request's target as the request goes out, and adds the proxy's credentials as
//! `Proxy-Authorization: Basic ...`. Nothing else about the request changes: its `Host` header
//! and every other header are ureq's. ureq's pool keys a connection by the URL's host and the
//! proxy, so a kept-alive connection to the proxy is only reused for the host it was made for,
//! and the prefix of a connection never changes.
//!
//! One case goes the other way: a URL that a `--connect-to` entry sends elsewhere reaches it
//! through the proxy as curl does it, in a `CONNECT HOST2:PORT2` tunnel whatever the scheme
//! (ureq's own `CONNECT` could only name the URL's host), with the request inside in origin
//! form and TLS, for `https://`, still checked against the URL's host.

use std::sync::Arc;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use ureq::config::AutoHeaderValue;
use ureq::http::uri::Scheme;
use ureq::unversioned::transport::{
    Buffers, ChainedConnector, ConnectionDetails, Connector, Either, NextTimeout, Transport,
};
use ureq::{Proxy, ProxyProtocol};

use super::classify::server_text;
use super::resolver::host_and_port;
use super::socket::SocketConnector;
use super::targets::Targets;
use super::tls::TlsConnector;

/// The connections to the proxy itself: TCP, and TLS for an `https://` proxy.
type ToProxy = ChainedConnector<(), SocketConnector, TlsConnector>;

/// Connects `http://` URLs, and URLs that `--connect-to` sends elsewhere, to their HTTP proxy
/// as [`ForwardTransport`]s; passes on everything else. See the [module](self).
#[derive(Debug)]
pub(super) struct ForwardConnector {
    to_proxy: ToProxy,
    targets: Arc<Targets>,
    own_authorization: bool,
}

impl ForwardConnector {
    /// `tls` makes the TLS connection to an `https://` proxy; `targets` are the fetcher's
    /// `--connect-to` entries (its `--resolve` ones are the resolver's business).
    /// `own_authorization`: the fetcher's requests carry a `Proxy-Authorization` header of their
    /// own (from `-H`), which then goes to the proxy instead of the proxy URL's credentials.
    pub(super) fn new(
        tls: TlsConnector,
        targets: Arc<Targets>,
        own_authorization: bool,
    ) -> ForwardConnector {
        ForwardConnector {
            to_proxy: SocketConnector.chain(tls),
            targets,
            own_authorization,
        }
    }
}

impl<In: Transport> Connector<In> for ForwardConnector {
    type Out = Either<In, ForwardTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(chained) = chained {
            return Ok(Some(Either::A(chained)));
        }
        let Some(proxy) = details.config.proxy() else {
            return Ok(None);
        };
        let http_proxy = matches!(proxy.protocol(), ProxyProtocol::Http | ProxyProtocol::Https);
        if !http_proxy {
            return Ok(None);
        }
        let (host, port) = host_and_port(details.uri)?;
        let redirect = self.targets.redirect(host, port);
        if redirect.is_none() && details.uri.scheme() != Some(&Scheme::HTTP) {
            // https:// without --connect-to: ureq's CONNECT, next in the chain.
            return Ok(None);
        }
        let Some(authority) = details.uri.authority() else {
            return Err(ureq::Error::BadUri(details.uri.to_string()));
        };
        let addrs = details
            .resolver
            .resolve(proxy.uri(), details.config, details.timeout)?;
        let to_proxy = ConnectionDetails {
            uri: proxy.uri(),
            addrs,
            config: details.config,
            request_level: details.request_level,
            resolver: details.resolver,
            now: details.now,
            timeout: details.timeout,
            current_time: details.current_time.clone(),
            run_connector: details.run_connector.clone(),
            register_shutdown: details.register_shutdown.clone(),
        };
        let Some(connection) = self.to_proxy.connect(&to_proxy, None)? else {
            return Err(ureq::Error::ConnectionFailed);
        };
        let mut connection: Box<dyn Transport> = Box::new(connection);
        if let Some((host, port)) = redirect {
            let user_agent = match details.config.user_agent() {
                AutoHeaderValue::Provided(agent) => Some(agent.as_str()),
                _ => None,
            };
            let head = connect_head(host, port, user_agent, proxy_authorization(proxy));
            open_tunnel(&mut *connection, head.as_bytes(), details.timeout)?;
            return Ok(Some(Either::B(ForwardTransport {
                inner: connection,
                origin: None,
                authorization: None,
                at_request: false,
            })));
        }
        // The user information is never part of the target (RFC 9112, section 3.2.2).
        let origin = match authority.port() {
            Some(port) => format!("http://{}:{port}", authority.host()),
            None => format!("http://{}", authority.host()),
        };
        Ok(Some(Either::B(ForwardTransport {
            inner: connection,
            origin: Some(origin),
            authorization: proxy_authorization(proxy).filter(|_| !self.own_authorization),
            at_request: true,
        })))
    }
}

/// The `Proxy-Authorization` header line for a proxy URL with credentials, as curl sends it.
fn proxy_authorization(proxy: &Proxy) -> Option<String> {
    if proxy.username().is_none() && proxy.password().is_none() {
        return None;
    }
    let user = proxy.username().unwrap_or_default();
    let password = proxy.password().unwrap_or_default();
    let credentials = BASE64_STANDARD.encode(format!("{user}:{password}"));
    Some(format!("Proxy-Authorization: Basic {credentials}\r\n"))
}

/// The head of a `CONNECT` to `host` and `port` (`Host`, `User-Agent` and credentials as
/// ureq's own `CONNECT` sends them).
fn connect_head(
    host: &str,
    port: u16,
    user_agent: Option<&str>,
    authorization: Option<String>,
) -> String {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(agent) = user_agent {
        head.push_str(&format!("User-Agent: {agent}\r\n"));
    }
    head.push_str(&authorization.unwrap_or_default());
    head.push_str("\r\n");
    head
}

/// The longest answer to a `CONNECT` that is read.
const MAX_CONNECT_ANSWER: usize = 16 * 1024;

/// Sends the `CONNECT` request `head` on `connection` and reads the proxy's answer, leaving
/// anything after it unread.
///
/// # Errors
///
/// `ConnectProxyFailed` when the proxy answers with anything but a `2xx`, or closes first.
fn open_tunnel(
    connection: &mut dyn Transport,
    head: &[u8],
    timeout: NextTimeout,
) -> Result<(), ureq::Error> {
    send(connection, head, timeout)?;
    loop {
        let input = connection.buffers().input();
        if let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
            // `HTTP/1.1 200 Connection established`: the code is the status line's second
            // word (a status line without a reason phrase ends at the line's end).
            let line_end = input[..end]
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap_or(end);
            let status_line = String::from_utf8_lossy(&input[..line_end]);
            let code = status_line.split(' ').nth(1).unwrap_or_default().to_owned();
            connection.buffers().input_consume(end + 4);
            let is_code = code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit());
            if is_code && code.starts_with('2') {
                return Ok(());
            }
            // A status code as it is; anything else the proxy sent, quoted and bounded.
            let shown = if is_code { code } else { server_text(&code) };
            return Err(ureq::Error::ConnectProxyFailed(format!(
                "proxy server responded {shown}"
            )));
        }
        if input.len() > MAX_CONNECT_ANSWER || !connection.await_input(timeout)? {
            let reason = "proxy server did not respond".to_owned();
            return Err(ureq::Error::ConnectProxyFailed(reason));
        }
    }
}

/// Sends `bytes` through `connection`'s output buffer, as many pieces as it takes.
fn send(
    connection: &mut dyn Transport,
    bytes: &[u8],
    timeout: NextTimeout,
) -> Result<(), ureq::Error> {
    let size = connection.buffers().output().len();
    if size == 0 {
        return Err(ureq::Error::ConnectionFailed);
    }
    for piece in bytes.chunks(size) {
        connection.buffers().output()[..piece.len()].copy_from_slice(piece);
        connection.transmit_output(piece.len(), timeout)?;
    }
    Ok(())
}

/// A connection to an HTTP proxy: one that sends each request in absolute form, or a tunnel
/// opened with `CONNECT`. See the [module](self).
#[derive(Debug)]
pub(super) struct ForwardTransport {
    inner: Box<dyn Transport>,
    /// `http://host[:port]`, put before the path of each request line; `None` for a tunnel,
    /// whose requests go through as they are.
    origin: Option<String>,
    /// The `Proxy-Authorization` header line, when the proxy URL has credentials.
    authorization: Option<String>,
    /// The next output starts a request: nothing was sent yet, or a response has arrived since.
    at_request: bool,
}

impl Transport for ForwardTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let at_request = std::mem::replace(&mut self.at_request, false);
        let Some(origin) = self.origin.as_deref().filter(|_| at_request) else {
            return self.inner.transmit_output(amount, timeout);
        };
        // ureq writes the request line whole into the output before sending any of it, so a
        // request's first output starts with its complete request line.
        let head = &self.inner.buffers().output()[..amount];
        match absolute_form(head, origin, self.authorization.as_deref()) {
            Some(head) => send(&mut *self.inner, &head, timeout),
            None => self.inner.transmit_output(amount, timeout),
        }
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let progress = self.inner.await_input(timeout)?;
        if progress {
            self.at_request = true;
        }
        Ok(progress)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    /// A tunnel has no TLS to the URL's host yet, whatever it has to the proxy: rustls, next in
    /// the chain, adds it for an `https://` URL.
    fn is_tls(&self) -> bool {
        self.origin.is_some() && self.inner.is_tls()
    }
}

/// `head`, the start of a request in origin-form (`GET /path HTTP/1.1\r\n...`), with `origin`
/// put before its target and the `authorization` line, if any, added after the request line.
/// `None` when `head` does not start with such a request line.
fn absolute_form(head: &[u8], origin: &str, authorization: Option<&str>) -> Option<Vec<u8>> {
    let space = head.iter().position(|&b| b == b' ')?;
    if head.get(space + 1) != Some(&b'/') {
        return None;
    }
    let line_end = head.windows(2).position(|w| w == b"\r\n")? + 2;
    let extra = origin.len() + authorization.map_or(0, str::len);
    let mut out = Vec::with_capacity(head.len() + extra);
    out.extend_from_slice(&head[..=space]);
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(&head[space + 1..line_end]);
    if let Some(line) = authorization {
        out.extend_from_slice(line.as_bytes());
    }
    out.extend_from_slice(&head[line_end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(head: &str, authorization: Option<&str>) -> Option<String> {
        absolute_form(head.as_bytes(), "http://a.test:8080", authorization)
            .map(|bytes| String::from_utf8(bytes).expect("text"))
    }

    #[test]
    fn the_target_gets_the_origin_in_front() {
        let head = "GET /p?q=1 HTTP/1.1\r\nHost: a.test:8080\r\n\r\n";
        assert_eq!(
            rewritten(head, None).as_deref(),
            Some("GET http://a.test:8080/p?q=1 HTTP/1.1\r\nHost: a.test:8080\r\n\r\n")
        );
        let head = "HEAD / HTTP/1.1\r\n\r\n";
        assert_eq!(
            rewritten(head, None).as_deref(),
            Some("HEAD http://a.test:8080/ HTTP/1.1\r\n\r\n")
        );
    }

    #[test]
    fn credentials_follow_the_request_line() {
        let line = "Proxy-Authorization: Basic dTpw\r\n";
        let head = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
        assert_eq!(
            rewritten(head, Some(line)).as_deref(),
            Some(
                "GET http://a.test:8080/ HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\nHost: a.test\r\n\r\n"
            )
        );
    }

    #[test]
    fn anything_but_an_origin_form_request_line_is_left_alone() {
        for head in [
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "GET http://b.test/ HTTP/1.1\r\n\r\n",
            "GET /no-line-end",
            "nonsense",
            "",
        ] {
            assert_eq!(rewritten(head, None), None, "{head:?}");
        }
    }

    #[test]
    fn proxy_credentials_are_basic_auth() {
        let proxy = Proxy::new("http://user:p%40ss@127.0.0.1:3128").expect("proxy");
        assert_eq!(
            proxy_authorization(&proxy).as_deref(),
            Some("Proxy-Authorization: Basic dXNlcjpwQHNz\r\n")
        );
        let proxy = Proxy::new("http://127.0.0.1:3128").expect("proxy");
        assert_eq!(proxy_authorization(&proxy), None);
    }
}
