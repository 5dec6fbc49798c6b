//! [`TunnelProxy`]: a loopback HTTP proxy (`CONNECT` tunnels, and requests sent whole in
//! absolute form), for the tests of the proxy environment variables.

use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::Sender;
use std::thread;

use fetchall_serve::testing::{GENEROUS, Loopback, read_head};

/// An HTTP proxy on 127.0.0.1 that connects to `target` only, whatever it is asked for, and
/// sends the test every request head it gets: a `CONNECT` gets a tunnel, a request in absolute
/// form (`GET http://host/path HTTP/1.1`) is passed on in origin form. Dropping it stops
/// accepting.
pub(crate) struct TunnelProxy(Loopback);

impl TunnelProxy {
    /// Starts one on a free loopback port, tunnelling to `target`.
    pub(crate) fn start(target: SocketAddr) -> TunnelProxy {
        TunnelProxy(Loopback::start(move |client, heads| {
            tunnel(client, target, heads)
        }))
    }

    /// Its address, for a TLS front that makes it an `https://` proxy.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.0.addr()
    }

    /// Its URL, for a proxy variable.
    pub(crate) fn url(&self) -> String {
        self.0.url("http://")
    }

    /// The request heads received so far.
    pub(crate) fn received(&self) -> Vec<String> {
        self.0.seen()
    }
}

/// Serves one proxy connection: reads the head and reports it; for a `CONNECT` answers that the
/// tunnel is open, for a request in absolute form sends it on in origin form; then copies bytes
/// both ways between the client and `target` until either side closes.
fn tunnel(client: TcpStream, target: SocketAddr, heads: &Sender<String>) -> io::Result<()> {
    client.set_read_timeout(Some(GENEROUS))?;
    let mut from_client = BufReader::new(client.try_clone()?);
    let Some(head) = read_head(&mut from_client)? else {
        return Ok(());
    };
    let _ = heads.send(head.clone());
    let mut to_client = client;
    let forwarded = origin_form(&head);
    if !head.starts_with("CONNECT ") && forwarded.is_none() {
        return to_client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    }
    let mut upstream = TcpStream::connect(target)?;
    upstream.set_read_timeout(Some(GENEROUS))?;
    match forwarded {
        Some(head) => upstream.write_all(head.as_bytes())?,
        None => to_client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?,
    }
    let mut from_upstream = upstream.try_clone()?;
    let back = thread::spawn(move || {
        let copied = io::copy(&mut from_upstream, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
        copied
    });
    // Through the BufReader: anything the client sent after the head is in its buffer.
    let _ = io::copy(&mut from_client, &mut &upstream);
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}

/// `head` with the target of its request line in origin form (`GET /path HTTP/1.1`), when it is
/// in absolute form (`GET http://host:port/path HTTP/1.1`).
fn origin_form(head: &str) -> Option<String> {
    let (method, rest) = head.split_once(' ')?;
    let after_scheme = rest.strip_prefix("http://")?;
    let path = &after_scheme[after_scheme.find('/')?..];
    Some(format!("{method} {path}"))
}
