//! [`GateServer`]: a loopback HTTP server that answers only when the test says so, so that the
//! order of events is forced by the test, never guessed from sleeps.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use fetchall_serve::testing::GENEROUS;

/// A loopback HTTP server that answers each request with `200 ok` only when the test releases
/// it, reports every request's path as it arrives, and counts how many wait at once.
pub(crate) struct GateServer {
    addr: SocketAddr,
    arrivals: Receiver<String>,
    release: Option<Sender<()>>,
    peak: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl GateServer {
    /// Starts one on 127.0.0.1 and a free port.
    pub(crate) fn start() -> GateServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let (arrived, arrivals) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let (peak, stopping) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let waiting = Arc::new(AtomicUsize::new(0));
        let acceptor = {
            let (peak, stopping) = (peak.clone(), stopping.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (arrived, gate) = (arrived.clone(), gate.clone());
                    let (peak, waiting) = (peak.clone(), waiting.clone());
                    thread::spawn(move || {
                        let Some(path) = request_path(&stream) else {
                            return;
                        };
                        let now = waiting.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        let _ = arrived.send(path);
                        // One release answers one request; dropping the sender answers all.
                        let _ = gate.lock().unwrap().recv_timeout(GENEROUS);
                        waiting.fetch_sub(1, Ordering::SeqCst);
                        let _ = (&stream).write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    });
                }
            })
        };
        GateServer {
            addr,
            arrivals,
            release: Some(release),
            peak,
            stopping,
            acceptor: Some(acceptor),
        }
    }

    /// The full URL of `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The path of the next request to arrive.
    pub(crate) fn arrival(&self) -> String {
        self.arrivals
            .recv_timeout(GENEROUS)
            .expect("a request arrives")
    }

    /// The paths of requests as they arrive, for a test that checks one has not.
    pub(crate) fn arrivals(&self) -> &Receiver<String> {
        &self.arrivals
    }

    /// The most requests that were waiting for their answer at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Lets one waiting request have its answer.
    pub(crate) fn release_one(&self) {
        if let Some(release) = &self.release {
            release.send(()).expect("the gate is open");
        }
    }
}

impl Drop for GateServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        drop(self.release.take());
        // Wakes the accept loop to see the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Reads a request head and returns the path of its request line.
fn request_path(stream: &TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut reader = BufReader::new(stream);
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        head.extend(line);
    }
    let head = String::from_utf8(head).ok()?;
    head.split(' ').nth(1).map(str::to_owned)
}
