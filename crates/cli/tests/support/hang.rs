//! [`Hanging`]: a listener on 127.0.0.1 that accepts and never answers, and tells the test of
//! each connection, so that a test acts only once the fetches it is about are at the server.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::thread;

use fetchall_serve::testing::GENEROUS;

/// A server that never answers: each fetch of it waits until fetchall gives up on it. Up to
/// `max` connections are accepted and told; later ones wait in the listen queue. Every
/// connection stays open as long as the server.
pub(crate) struct Hanging {
    port: u16,
    arrived: Receiver<TcpStream>,
    held: Vec<TcpStream>,
    _listener: TcpListener,
}

impl Hanging {
    /// Listens on a port of its own.
    pub(crate) fn start(max: usize) -> Hanging {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let accepting = listener.try_clone().expect("clone the listener");
        let (tx, arrived) = mpsc::channel();
        thread::spawn(move || {
            for _ in 0..max {
                let Ok((stream, _)) = accepting.accept() else {
                    return;
                };
                if tx.send(stream).is_err() {
                    return;
                }
            }
        });
        Hanging {
            port,
            arrived,
            held: Vec::new(),
            _listener: listener,
        }
    }

    /// `n` URLs on this server, in input order.
    pub(crate) fn urls(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("http://127.0.0.1:{}/hang/{i}", self.port))
            .collect()
    }

    /// Waits for `n` more connections.
    pub(crate) fn wait_for(&mut self, n: usize) {
        for _ in 0..n {
            let stream = self.arrived.recv_timeout(GENEROUS).expect("a connection");
            self.held.push(stream);
        }
    }
}
