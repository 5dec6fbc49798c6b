//! Connecting to a host that has several addresses: Happy Eyeballs (RFC 8305), as curl does it.
//!
//! The addresses are tried in turn, the two families interleaved (RFC 8305, section 4), starting
//! with the family of the first address. Each attempt starts [`ATTEMPT_DELAY`] after the one
//! before it began, or at once when the one before fails; the attempts already started go on, so
//! an address that drops SYNs costs a quarter of a second and not a share of the deadline. The
//! first connection made wins and the other attempts are aborted. Every attempt has the whole
//! deadline of the URL: nothing is split into sequential shares.
//!
//! std's `TcpStream::connect_timeout` blocks, and waiting on several connects at once needs
//! `poll`, which neither std nor `socket2` offers without `unsafe`. So each attempt blocks on a
//! thread of its own, at most one per address (a resolver returns a handful), and reports on a
//! channel. The sockets come from `socket2` for one reason: the thread that waits keeps a
//! duplicate of each attempt's socket, and a `shutdown` on it ends that attempt's `connect` at
//! once (Linux aborts a connect in progress on `shutdown`), so no losing thread lingers until the
//! deadline. A host with one address, the common case, is connected on the caller's thread.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// How long an attempt runs before the next address is tried alongside it: 250 ms, RFC 8305's
/// recommended "Connection Attempt Delay".
pub(super) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to whichever of `addrs` accepts first, racing them as the [module](self) describes,
/// before `deadline` (`None`: no limit).
///
/// # Errors
///
/// `TimedOut` when the deadline passes first. When every attempt fails before it, the error of
/// the attempt that failed last (`ConnectionRefused`, say). `NotFound` for no address at all.
pub(super) fn connect(
    addrs: &[SocketAddr],
    deadline: Option<Instant>,
    delay: Duration,
) -> io::Result<TcpStream> {
    match addrs {
        [] => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no address to connect to",
        )),
        [addr] => match deadline {
            None => TcpStream::connect(addr),
            Some(deadline) => TcpStream::connect_timeout(addr, time_left(deadline)?),
        },
        _ => race(&interleave(addrs), deadline, delay),
    }
}

/// `addrs` in the order they are tried: the families alternating, starting with the family of
/// the first address, and each family in the resolver's order.
fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let first_is_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (first, other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|a| a.is_ipv6() == first_is_v6);
    let mut order = Vec::with_capacity(addrs.len());
    let mut first = first.into_iter();
    let mut other = other.into_iter();
    loop {
        let (a, b) = (first.next(), other.next());
        if a.is_none() && b.is_none() {
            return order;
        }
        order.extend(a);
        order.extend(b);
    }
}

/// What an attempt's thread reports: the address's index, and the connected socket or why not.
type Report = (usize, io::Result<Socket>);

/// Runs the attempts. Every attempt still running when this returns is aborted.
fn race(addrs: &[SocketAddr], deadline: Option<Instant>, delay: Duration) -> io::Result<TcpStream> {
    let (reports, received) = mpsc::channel::<Report>();
    // A duplicate of each running attempt's socket, by index: `shutdown` on it aborts the attempt.
    let mut running: Vec<(usize, Socket)> = Vec::with_capacity(addrs.len());
    let mut next = 0;
    let mut next_at = Instant::now();
    let mut last_error = None;
    let outcome = loop {
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            break Err(timed_out());
        }
        let more = next < addrs.len();
        if more && (now >= next_at || running.is_empty()) {
            match start(next, addrs[next], deadline, &reports) {
                Ok(abort) => {
                    running.push((next, abort));
                    next_at = now + delay;
                }
                // No socket or no thread: a failed attempt, so the next starts at once.
                Err(e) => {
                    last_error = Some(e);
                    next_at = now;
                }
            }
            next += 1;
            continue;
        }
        if running.is_empty() {
            break Err(last_error.unwrap_or_else(timed_out));
        }
        let until = [deadline, more.then_some(next_at)]
            .into_iter()
            .flatten()
            .min();
        let report = match until {
            Some(until) => received.recv_timeout(until.saturating_duration_since(now)),
            None => received.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match report {
            Ok((index, result)) => {
                running.retain(|(i, _)| *i != index);
                match result {
                    Ok(socket) => break Ok(TcpStream::from(socket)),
                    Err(e) => {
                        last_error = Some(e);
                        next_at = Instant::now();
                    }
                }
            }
            // Time to start the next attempt, or the deadline: the top of the loop tells which.
            Err(RecvTimeoutError::Timeout) => {}
            // `reports` is held here, so the channel cannot close; were it to, nothing more
            // could arrive.
            Err(RecvTimeoutError::Disconnected) => break Err(last_error.unwrap_or_else(timed_out)),
        }
    };
    for (_, abort) in running {
        // An attempt that connected just now is closed when its thread finds nobody listening.
        let _ = abort.shutdown(Shutdown::Both);
    }
    outcome
}

/// Starts the attempt to connect to `addr` on a thread of its own, and returns a duplicate of
/// its socket to abort it with.
fn start(
    index: usize,
    addr: SocketAddr,
    deadline: Option<Instant>,
    reports: &Sender<Report>,
) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    let abort = socket.try_clone()?;
    let reports = reports.clone();
    thread::Builder::new()
        .name("fetchall-connect".into())
        .spawn(move || {
            let target = addr.into();
            let connected = match deadline {
                None => socket.connect(&target),
                Some(deadline) => {
                    time_left(deadline).and_then(|left| socket.connect_timeout(&target, left))
                }
            };
            // Nobody receives once another attempt has won or the deadline has passed: the
            // socket is then dropped here, which closes it.
            let _ = reports.send((index, connected.map(|()| socket)));
        })?;
    Ok(abort)
}

/// What is left until `deadline`.
///
/// # Errors
///
/// `TimedOut` when nothing is.
fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timed_out())
    } else {
        Ok(left)
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fetchall_serve::testing::{arrives_soon, full_backlog, refused_addr};
    use std::net::TcpListener;

    fn v4(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 80))
    }

    fn v6(last: u16) -> SocketAddr {
        SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, last], 80))
    }

    #[test]
    fn families_alternate_starting_with_the_first() {
        assert_eq!(
            interleave(&[v6(1), v6(2), v6(3), v4(1), v4(2)]),
            [v6(1), v4(1), v6(2), v4(2), v6(3)]
        );
        assert_eq!(
            interleave(&[v4(1), v6(1), v4(2), v4(3)]),
            [v4(1), v6(1), v4(2), v4(3)]
        );
        assert_eq!(interleave(&[v4(2), v4(1)]), [v4(2), v4(1)]);
    }

    fn good() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").expect("bind")
    }

    fn deadline(secs: u64) -> Option<Instant> {
        Instant::now().checked_add(Duration::from_secs(secs))
    }

    #[test]
    fn an_address_that_drops_syns_costs_one_attempt_delay() {
        let full = full_backlog();
        let hangs = full.addr();
        let listener = good();
        let addr = listener.local_addr().expect("addr");
        let started = Instant::now();
        let stream = connect(&[hangs, addr], deadline(60), ATTEMPT_DELAY).expect("connects");
        let took = started.elapsed();
        assert_eq!(stream.peer_addr().ok(), Some(addr));
        // The second attempt started after the delay, not after half of the 60 s deadline.
        assert!(took >= ATTEMPT_DELAY, "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn a_refused_address_lets_the_next_start_at_once() {
        let refused = refused_addr();
        let listener = good();
        let addr = listener.local_addr().expect("addr");
        // With a delay this long, only the failure of the first can have started the second.
        let delay = Duration::from_secs(120);
        let started = Instant::now();
        let stream = connect(&[refused, addr], deadline(300), delay).expect("connects");
        assert_eq!(stream.peer_addr().ok(), Some(addr));
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn when_all_fail_the_last_error_is_the_answer() {
        let refused = [refused_addr(), refused_addr()];
        let e = connect(&refused, deadline(60), ATTEMPT_DELAY).expect_err("all refused");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        let e = connect(&refused, None, ATTEMPT_DELAY).expect_err("all refused");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        let e = connect(&[], None, ATTEMPT_DELAY).expect_err("nothing to try");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn the_deadline_bounds_every_attempt() {
        let full = full_backlog();
        let hangs = full.addr();
        let refused = refused_addr();
        let wait = Duration::from_millis(600);
        let started = Instant::now();
        let e = connect(
            &[hangs, refused, hangs],
            Instant::now().checked_add(wait),
            ATTEMPT_DELAY,
        )
        .expect_err("nothing accepts");
        // One attempt was still hanging when time ran out: a timeout, not the refusal.
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        let took = started.elapsed();
        assert!(took >= wait && took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn shutdown_ends_a_connect_in_progress() {
        let full = full_backlog();
        let hangs = full.addr();
        let (reports, received) = mpsc::channel();
        let abort = start(0, hangs, deadline(120), &reports).expect("started");
        // Not answered yet: the SYN was dropped.
        assert!(!arrives_soon(&received));
        let started = Instant::now();
        abort.shutdown(Shutdown::Both).expect("shutdown");
        let (index, result) = received
            .recv_timeout(Duration::from_secs(60))
            .expect("the attempt ended");
        assert_eq!(index, 0);
        assert!(result.is_err(), "aborted, not connected");
        // Long before its own 120 s deadline.
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
