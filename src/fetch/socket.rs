//! The TCP transport under every fetch: ureq's own, without the system calls it spends on each
//! request over a kept-alive connection.
//!
//! Per kept-alive request, ureq's `TcpTransport` makes many more system calls than the two (one
//! `sendto`, one `recvfrom`) that do the work (`BENCHMARKS.md`, "HTTP benchmarks", has the
//! `strace` counts). Two habits cost them:
//! - **a liveness probe when the connection goes back to the pool, and another when it is taken
//!   out**, each `ioctl(FIONBIO)`, `recvfrom` (`EAGAIN`), `ioctl(FIONBIO)`. Only the second is
//!   kept: it sees everything the first would have seen (stray bytes after a body stay unread in
//!   the socket, and so does the end of a closed one), and it is the one that notices a server
//!   that dropped the idle connection in between.
//! - **a new socket timeout before every read and write** (`setsockopt`), because the time left of
//!   a total deadline is different each time it is asked. Here a socket timeout is changed only
//!   when it would outlast the deadline, and then set to 7/8 of the time left: the next requests,
//!   each with a fresh deadline, need no change at all, and a long body needs a handful. A read or
//!   write that times out before the deadline is simply tried again with what is left.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::Timeout;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, ShutdownHandle, Transport,
};

use super::classify::{SocketFailure, socket_failure};
use super::eyeballs;

/// Below this much time left, a socket timeout is set to exactly the time left.
const EXACT_BELOW: Duration = Duration::from_millis(100);

/// Opens plain TCP connections as [`Socket`]s. A connection an earlier connector in the chain
/// already made (to a proxy) is passed on untouched.
#[derive(Debug, Default)]
pub(super) struct SocketConnector;

impl<In: Transport> Connector<In> for SocketConnector {
    type Out = Either<In, Socket>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(chained) = chained {
            return Ok(Some(Either::A(chained)));
        }
        let budget = details.timeout.not_zero().map(|t| *t);
        let stream = connect_any(&details.addrs, budget)?;
        super::facts::tcp_connected(stream.peer_addr().ok());
        let config = details.config;
        if config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let buffers = super::buffers::SocketBuffers::new(
            config.input_buffer_size(),
            config.output_buffer_size(),
        );
        let socket = Socket {
            stream: Arc::new(stream),
            buffers,
            read_timeout: SocketTimeout::default(),
            write_timeout: SocketTimeout::default(),
            used: false,
        };
        // Lets `Agent::shutdown` interrupt a call blocked on this socket.
        let handle = Arc::downgrade(&socket.stream) as Weak<dyn ShutdownHandle>;
        (details.register_shutdown)(handle)?;
        Ok(Some(Either::B(socket)))
    }
}

/// Connects to one of `addrs` within `budget` (`None`: no limit), racing them as
/// [`eyeballs`](super::eyeballs) does.
fn connect_any(addrs: &[SocketAddr], budget: Option<Duration>) -> Result<TcpStream, ureq::Error> {
    let deadline = budget.and_then(|budget| Instant::now().checked_add(budget));
    eyeballs::connect(addrs, deadline, eyeballs::ATTEMPT_DELAY).map_err(|e| {
        if e.kind() == io::ErrorKind::TimedOut {
            ureq::Error::Timeout(Timeout::Connect)
        } else {
            ureq::Error::Io(e)
        }
    })
}

/// One TCP connection, with ureq's buffers.
#[derive(Debug)]
pub(super) struct Socket {
    /// In an `Arc` for the shutdown handle; all I/O goes through `&TcpStream`.
    stream: Arc<TcpStream>,
    buffers: super::buffers::SocketBuffers,
    read_timeout: SocketTimeout,
    write_timeout: SocketTimeout,
    /// Whether there was I/O since the last liveness probe.
    used: bool,
}

impl Transport for Socket {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let deadline = Deadline::new(timeout.for_write())?;
        self.used = true;
        let mut output = &self.buffers.output()[..amount];
        while !output.is_empty() {
            let left = deadline.left()?;
            let mut stream = &*self.stream;
            self.write_timeout
                .fit(left, |t| stream.set_write_timeout(t))?;
            match stream.write(output) {
                Ok(0) => return Err(ureq::Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => output = &output[n..],
                Err(e) if is_retry(&e) => {}
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let deadline = Deadline::new(timeout.for_read())?;
        self.used = true;
        loop {
            let left = deadline.left()?;
            let mut stream = &*self.stream;
            self.read_timeout
                .fit(left, |t| stream.set_read_timeout(t))?;
            match stream.read(self.buffers.input_append_buf()) {
                Ok(n) => {
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                Err(e) if is_retry(&e) => {}
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
    }

    /// ureq asks when the connection goes back to the pool, right after its last I/O, and again
    /// when it takes the connection out. Only the second asks the socket (see the module docs).
    fn is_open(&mut self) -> bool {
        if std::mem::take(&mut self.used) {
            return true;
        }
        is_idle(&self.stream)
    }
}

/// A socket call that ended without failing: the socket timeout, which is kept at or below the
/// deadline and is checked against it next, or a signal.
fn is_retry(e: &io::Error) -> bool {
    socket_failure(e.kind()) == SocketFailure::Again
}

/// `true` if the socket has nothing to read and is not closed: an idle keep-alive connection the
/// server still holds open. Anything else (bytes nobody asked for, the end of the stream, an
/// error) means the connection must not be used again.
///
/// One `recv(MSG_PEEK | MSG_DONTWAIT)`, where std's `set_nonblocking`, `peek`, `set_nonblocking`
/// take three system calls, on every request over a kept-alive connection (`BENCHMARKS.md`,
/// "Where the time goes").
#[cfg(unix)]
fn is_idle(stream: &TcpStream) -> bool {
    use rustix::net::{RecvFlags, recv};
    let peeked = recv(stream, &mut [0u8; 1], RecvFlags::PEEK | RecvFlags::DONTWAIT);
    matches!(peeked, Err(e) if e == rustix::io::Errno::WOULDBLOCK)
}

/// See the Unix version: here with std's three calls.
#[cfg(not(unix))]
fn is_idle(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let idle = matches!(stream.peek(&mut [0]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).is_ok() && idle
}

/// When an operation must be over, from ureq's [`NextTimeout`].
struct Deadline {
    /// `None`: no deadline.
    at: Option<Instant>,
    reason: Timeout,
}

impl Deadline {
    /// # Errors
    ///
    /// `Timeout` if no time is left.
    fn new(timeout: NextTimeout) -> Result<Deadline, ureq::Error> {
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let at = if timeout.after.is_not_happening() {
            None
        } else {
            Instant::now().checked_add(*timeout.after)
        };
        Ok(Deadline {
            at,
            reason: timeout.reason,
        })
    }

    /// The time left (`None`: no limit).
    ///
    /// # Errors
    ///
    /// `Timeout` once the deadline has passed.
    fn left(&self) -> Result<Option<Duration>, ureq::Error> {
        let Some(at) = self.at else {
            return Ok(None);
        };
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(ureq::Error::Timeout(self.reason))
        } else {
            Ok(Some(left))
        }
    }
}

/// A socket's read or write timeout (`SO_RCVTIMEO`, `SO_SNDTIMEO`) as last set.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SocketTimeout {
    /// `None`: calls may block forever.
    set: Option<Duration>,
}

impl SocketTimeout {
    /// Makes sure a blocked call returns within `left` (`None`: no limit), calling `apply` only
    /// when the timeout must change: when it would outlast `left`, or when there is no longer
    /// any limit.
    fn fit(
        &mut self,
        left: Option<Duration>,
        apply: impl FnOnce(Option<Duration>) -> io::Result<()>,
    ) -> io::Result<()> {
        let wanted = match (self.set, left) {
            (None, None) => return Ok(()),
            (Some(set), Some(left)) if set <= left => return Ok(()),
            (_, None) => None,
            (_, Some(left)) if left <= EXACT_BELOW => Some(left),
            (_, Some(left)) => Some(left - left / 8),
        };
        apply(wanted)?;
        self.set = wanted;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Runs `fit` and returns what it applied, if anything.
    fn fit(timeout: &mut SocketTimeout, left: Option<Duration>) -> Option<Option<Duration>> {
        let mut applied = None;
        timeout
            .fit(left, |t| {
                applied = Some(t);
                Ok(())
            })
            .expect("apply succeeds");
        applied
    }

    #[test]
    fn a_timeout_changes_only_when_it_would_outlast_the_deadline() {
        let secs = Duration::from_secs;
        let mut timeout = SocketTimeout::default();
        assert_eq!(fit(&mut timeout, Some(secs(80))), Some(Some(secs(70))));
        // Fresh deadlines of the next requests leave it alone, however many.
        assert_eq!(fit(&mut timeout, Some(secs(80))), None);
        assert_eq!(fit(&mut timeout, Some(secs(70))), None);
        // A deadline closer than the timeout lowers it, to 7/8 of the time left.
        assert_eq!(fit(&mut timeout, Some(secs(8))), Some(Some(secs(7))));
        // Close to the deadline it is the time left itself.
        let near = Duration::from_millis(40);
        assert_eq!(fit(&mut timeout, Some(near)), Some(Some(near)));
        // No limit at all clears it, once.
        assert_eq!(fit(&mut timeout, None), Some(None));
        assert_eq!(fit(&mut timeout, None), None);
    }

    #[test]
    fn a_failed_change_is_not_recorded() {
        let mut timeout = SocketTimeout::default();
        let result = timeout.fit(Some(Duration::from_secs(1)), |_| {
            Err(io::Error::other("no"))
        });
        assert!(result.is_err());
        assert_eq!(timeout, SocketTimeout::default());
    }

    #[test]
    fn a_passed_deadline_is_a_timeout() {
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::Exact(Duration::ZERO),
            reason: Timeout::RecvBody,
            ..NextTimeout::default()
        };
        assert!(matches!(
            Deadline::new(timeout),
            Err(ureq::Error::Timeout(Timeout::RecvBody))
        ));
        let open = Deadline::new(NextTimeout::default()).expect("no deadline");
        assert!(matches!(open.left(), Ok(None)));
    }

    #[test]
    fn idle_means_open_with_nothing_to_read() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        assert!(is_idle(&client));
        server.write_all(b"x").expect("write");
        // The byte may take a moment to arrive: a blocking peek waits for it.
        assert_eq!(client.peek(&mut [0]).expect("peek"), 1);
        assert!(!is_idle(&client), "unasked-for bytes");
        // The probe leaves the socket blocking and the byte unread.
        assert_eq!((&client).read(&mut [0]).expect("read"), 1);
        drop(server);
        assert_eq!((&client).read(&mut [0]).expect("end of stream"), 0);
        assert!(!is_idle(&client), "closed by the server");
    }

    #[test]
    fn connecting_tries_the_next_address() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let refused = {
            let gone = TcpListener::bind("127.0.0.1:0").expect("bind");
            gone.local_addr().expect("addr")
        };
        let addrs = [refused, listener.local_addr().expect("addr")];
        let stream = connect_any(&addrs, Some(Duration::from_secs(10))).expect("second address");
        assert_eq!(stream.peer_addr().ok(), Some(addrs[1]));
        let e = connect_any(&[refused], None).expect_err("refused");
        assert!(
            matches!(&e, ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused),
            "{e:?}"
        );
    }
}
