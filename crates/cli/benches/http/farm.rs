//! The many-hosts case's server: thousands of listening ports on 127.0.0.1, each a distinct
//! host to a client (fetchall and curl key their connections by host and port), served by one
//! thread on `mio`.
//!
//! It runs as a child process of the harness (`--farm FIRST COUNT BYTES`), because a process
//! may hold at most `ulimit -n` descriptors (20,000 on this machine, and the hard limit cannot be
//! raised here): 20,000 hosts take two farms of 10,000 ports. Ports are taken from `FIRST` up,
//! below the ephemeral range (32768 and up on Linux) that the clients' own connections use,
//! skipping any port in use. It prints each port it listens on, then `ready`; after that each
//! line `count` on its standard input is answered with the connections accepted so far, and
//! the end of its input stops it.
//!
//! Every request, whatever its path, gets `200` with a body of `BYTES` bytes, kept alive.

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// The most ports one farm process listens on: half of the descriptors it may hold, the other
/// half for connections.
pub(crate) const PORTS_PER_FARM: usize = 10_000;

/// One client connection: what it sent and not answered yet, and what is not written yet.
struct Connection {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
}

/// `--farm FIRST COUNT BYTES`: see the module docs.
pub(crate) fn farm_main(first: u16, count: usize, bytes: usize) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listeners = Vec::with_capacity(count);
    let mut stdout = io::stdout().lock();
    let mut port = first;
    while listeners.len() < count {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if let Ok(mut listener) = TcpListener::bind(addr) {
            let token = Token(listeners.len());
            poll.registry()
                .register(&mut listener, token, Interest::READABLE)?;
            listeners.push(listener);
            writeln!(stdout, "{port}")?;
        }
        port = port
            .checked_add(1)
            .ok_or_else(|| io::Error::other("ran out of ports"))?;
    }
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    drop(stdout);

    let accepted = Arc::new(AtomicU64::new(0));
    let counter = accepted.clone();
    // The control channel: answers `count`, and ends the process when the harness goes.
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "count" {
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{}", counter.load(Ordering::Relaxed));
                let _ = out.flush();
            }
        }
        std::process::exit(0);
    });

    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {bytes}\r\n\r\n").into_bytes();
    response.resize(response.len() + bytes, b'x');
    let mut connections: Vec<Option<Connection>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in &events {
            let Token(token) = event.token();
            if let Some(listener) = listeners.get(token) {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            let _ = stream.set_nodelay(true);
                            let slot = free.pop().unwrap_or_else(|| {
                                connections.push(None);
                                connections.len() - 1
                            });
                            let token = Token(listeners.len() + slot);
                            poll.registry()
                                .register(&mut stream, token, Interest::READABLE)?;
                            connections[slot] = Some(Connection {
                                stream,
                                input: Vec::new(),
                                output: Vec::new(),
                                written: 0,
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        // Out of descriptors, or the client gave up: the next event retries.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let slot = token - listeners.len();
            let Some(Some(connection)) = connections.get_mut(slot) else {
                continue;
            };
            let open = serve(connection, &mut buf, &response);
            let keep = match open {
                Ok(true) => {
                    let interest = if connection.written < connection.output.len() {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    poll.registry()
                        .reregister(&mut connection.stream, Token(token), interest)?;
                    true
                }
                Ok(false) | Err(_) => false,
            };
            if !keep {
                if let Some(mut gone) = connections[slot].take() {
                    let _ = poll.registry().deregister(&mut gone.stream);
                }
                free.push(slot);
            }
        }
    }
}

/// Reads what `connection` has, answers every complete request head in it, and writes what
/// the socket takes. `Ok(false)` when the client has closed the connection.
fn serve(connection: &mut Connection, buf: &mut [u8], response: &[u8]) -> io::Result<bool> {
    // Edge-triggered: read until the socket has nothing more.
    let mut open = true;
    loop {
        match connection.stream.read(buf) {
            Ok(0) => {
                open = false;
                break;
            }
            Ok(n) => connection.input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut start = 0;
    while let Some(end) = find_head_end(&connection.input[start..]) {
        connection.output.extend_from_slice(response);
        start += end;
    }
    connection.input.drain(..start);
    while connection.written < connection.output.len() {
        match connection
            .stream
            .write(&connection.output[connection.written..])
        {
            Ok(n) => connection.written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if connection.written == connection.output.len() {
        connection.output.clear();
        connection.written = 0;
    }
    Ok(open)
}

/// The length of the first request head in `input`, up to and with its blank line.
fn find_head_end(input: &[u8]) -> Option<usize> {
    input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// The farms of one case, seen from the harness: their ports, and their counters.
pub(crate) struct Farms {
    children: Vec<(
        std::process::Child,
        io::BufReader<std::process::ChildStdout>,
    )>,
    /// One port per host.
    pub(crate) ports: Vec<u16>,
}

impl Farms {
    /// Starts enough farms (the harness re-run as `--farm`) for `hosts` ports answering with
    /// `bytes` bytes, and waits until they listen.
    pub(crate) fn start(harness: &std::path::Path, hosts: usize, bytes: u64) -> io::Result<Farms> {
        use std::process::{Command, Stdio};
        let mut farms = Farms {
            children: Vec::new(),
            ports: Vec::with_capacity(hosts),
        };
        // Below the ephemeral range; each farm gets a range of its own with room to skip.
        let mut first: u16 = 10_000;
        while farms.ports.len() < hosts {
            let count = (hosts - farms.ports.len()).min(PORTS_PER_FARM);
            let mut child = Command::new(harness)
                .args([
                    "--farm",
                    &first.to_string(),
                    &count.to_string(),
                    &bytes.to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| io::Error::other("no stdout"))?;
            let mut reader = io::BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Err(io::Error::other("a farm ended before it was ready"));
                }
                match line.trim() {
                    "ready" => break,
                    port => farms.ports.push(port.parse().map_err(io::Error::other)?),
                }
            }
            let last = farms.ports.last().copied().unwrap_or(first);
            first = last
                .checked_add(1 + (PORTS_PER_FARM / 10) as u16)
                .ok_or_else(|| io::Error::other("ran out of ports"))?;
            farms.children.push((child, reader));
        }
        Ok(farms)
    }

    /// Connections accepted so far, by all farms.
    pub(crate) fn connections_accepted(&mut self) -> u64 {
        let mut total = 0;
        for (child, reader) in &mut self.children {
            let Some(stdin) = child.stdin.as_mut() else {
                continue;
            };
            let mut line = String::new();
            if writeln!(stdin, "count")
                .and_then(|()| stdin.flush())
                .is_ok()
                && reader.read_line(&mut line).is_ok()
            {
                total += line.trim().parse::<u64>().unwrap_or(0);
            }
        }
        total
    }

    /// The farms' user + system CPU time so far.
    pub(crate) fn cpu(&self) -> Option<std::time::Duration> {
        let mut total = std::time::Duration::ZERO;
        for (child, _) in &self.children {
            total += crate::measure::cpu_of(&format!("/proc/{}/stat", child.id()))?;
        }
        Some(total)
    }
}

impl Drop for Farms {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            // The end of its input stops a farm.
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}
