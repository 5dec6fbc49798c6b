//! Running one client once: wall time from spawn to exit, peak RSS from the kernel, a hard time
//! limit, and the statistics over rounds.
//!
//! **Wall time** is `Instant` around spawn and `wait`, taken in this process.
//! **Peak RSS** and **CPU time** are the kernel's `ru_maxrss`, `ru_utime` and `ru_stime` for
//! the client, read by GNU time (`/usr/bin/time -f '%M %U %S'`), which `wait4`s on it. For a
//! client that is several processes (`xargs -P W curl`) the CPU time covers them all and the RSS
//! is the largest single process, not their sum. CPU time has GNU time's 10 ms resolution; it
//! is what a neighbour's load on a shared machine stretches least. Without `/usr/bin/time` these
//! columns are left empty. The wrapper costs about a millisecond per run; the startup case runs
//! without it.
//! **Server CPU** is the harness process's own user + system time over the run
//! (`/proc/self/stat`, 10 ms ticks): the loopback server, plus the in-process raw client when
//! that is the one running.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// GNU time, which reports the peak RSS of the command it runs.
const GNU_TIME: &str = "/usr/bin/time";

/// The proxy variables curl, Python and ureq all honour: removed from every client's
/// environment, so that nothing but 127.0.0.1 is ever contacted.
const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Writes a client's standard input: the URLs of a case too large for a file.
pub(crate) type Feed<'a> = dyn Fn(&mut dyn io::Write) -> io::Result<()> + Sync + 'a;

/// What one run of a client produced.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) wall: Duration,
    /// Peak resident set, in KiB.
    pub(crate) rss_kib: Option<u64>,
    /// User + system CPU time of the client.
    pub(crate) cpu: Option<Duration>,
    /// User + system CPU time of this process (the server) during the run.
    pub(crate) server_cpu: Option<Duration>,
    /// Connections the server accepted during the run.
    pub(crate) connections: u64,
    /// `Ok(lines)` when every URL got one correct line, else what was wrong.
    pub(crate) check: Result<usize, String>,
}

/// A child process run: where its output goes, and the limit after which it is killed.
#[derive(Debug)]
pub(crate) struct Runner {
    dir: PathBuf,
    limit: Duration,
    gnu_time: bool,
}

/// How a child run ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) wall: Duration,
    pub(crate) rss_kib: Option<u64>,
    pub(crate) cpu: Option<Duration>,
    pub(crate) status: Option<ExitStatus>,
    /// The child's standard output, in a file.
    pub(crate) stdout: PathBuf,
    /// The first line of its standard error, if any.
    pub(crate) stderr: String,
}

impl Runner {
    pub(crate) fn new(dir: &Path, limit: Duration) -> Runner {
        Runner {
            dir: dir.to_path_buf(),
            limit,
            gnu_time: Path::new(GNU_TIME).exists(),
        }
    }

    /// `true` when peak RSS can be measured.
    pub(crate) fn measures_rss(&self) -> bool {
        self.gnu_time
    }

    /// Runs `program args` with stdout to a file, under GNU time when `rss` is asked for, and
    /// with `feed` writing its standard input from a thread of its own when there is one (else
    /// the input is empty). The child leads its own process group, so that a run over the limit
    /// is killed with everything it started (`xargs` and its `curl`s).
    pub(crate) fn run(
        &self,
        program: &Path,
        args: &[String],
        rss: bool,
        feed: Option<&Feed<'_>>,
    ) -> io::Result<Finished> {
        let stdout = self.dir.join("stdout.txt");
        let stderr = self.dir.join("stderr.txt");
        let rss_file = self.dir.join("rss.txt");
        let timed = rss && self.gnu_time;
        let mut command = if timed {
            let _ = fs::remove_file(&rss_file);
            let mut c = Command::new(GNU_TIME);
            c.arg("-f")
                .arg("%M %U %S")
                .arg("-o")
                .arg(&rss_file)
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .stdin(if feed.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(File::create(&stdout)?)
            .stderr(File::create(&stderr)?)
            .process_group(0);
        for var in PROXY_VARS {
            command.env_remove(var);
        }

        let started = Instant::now();
        let mut child = command.spawn()?;
        let pid = child.id();
        let input = child.stdin.take();
        let (done, exited) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let status = child.wait();
            let _ = done.send((status, Instant::now()));
        });
        let waited = thread::scope(|scope| {
            if let (Some(feed), Some(input)) = (feed, input) {
                // A write error is the child gone early (killed, or failed): its status says why.
                scope.spawn(move || {
                    let mut input = io::BufWriter::with_capacity(1 << 16, input);
                    let _ = feed(&mut input).and_then(|()| io::Write::flush(&mut input));
                });
            }
            match exited.recv_timeout(self.limit) {
                Ok(result) => Ok((result, false)),
                Err(RecvTimeoutError::Timeout) => {
                    kill_group(pid);
                    let result = exited
                        .recv()
                        .map_err(|_| io::Error::other("the waiting thread died"))?;
                    Ok((result, true))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    Err(io::Error::other("the waiting thread died"))
                }
            }
        });
        let ((status, ended), killed) = waited?;
        let _ = waiter.join();
        let wall = ended - started;
        let status = status?;
        let usage = if timed {
            fs::read_to_string(&rss_file).ok()
        } else {
            None
        };
        // The last line: GNU time puts "Command exited with non-zero status" before it.
        let fields: Vec<&str> = usage
            .as_deref()
            .and_then(|s| s.lines().last())
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        let rss_kib = fields.first().and_then(|f| f.parse().ok());
        let seconds = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let cpu = seconds(1)
            .zip(seconds(2))
            .and_then(|(user, system)| Duration::try_from_secs_f64(user + system).ok());
        let mut first = fs::read_to_string(&stderr)
            .unwrap_or_default()
            .lines()
            .find(|l| !l.starts_with("Command exited with non-zero status"))
            .unwrap_or_default()
            .to_owned();
        if killed {
            first = format!("killed after {:?}", self.limit);
        }
        Ok(Finished {
            wall,
            rss_kib,
            cpu,
            status: (!killed).then_some(status),
            stdout,
            stderr: first,
        })
    }
}

/// This process's user + system CPU time so far, from `/proc/self/stat` (in ticks of 10 ms, the
/// fixed `USER_HZ` of Linux's /proc).
pub(crate) fn own_cpu() -> Option<Duration> {
    cpu_of("/proc/self/stat")
}

/// A process's user + system CPU time so far, from its `/proc/PID/stat`.
pub(crate) fn cpu_of(stat: &str) -> Option<Duration> {
    let stat = fs::read_to_string(stat).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: utime and
    // stime are the 14th and 15th of the line, the 12th and 13th after the name.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// Kills a process group this harness started (its leader's pid is the group id).
fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(format!("-{pid}"))
        .status();
}

/// Median, minimum and maximum of some durations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spread {
    pub(crate) median: Duration,
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

impl Spread {
    /// `None` for no samples. An even count takes the mean of the middle two.
    pub(crate) fn of(samples: &[Duration]) -> Option<Spread> {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let n = sorted.len();
        let (first, last) = (*sorted.first()?, *sorted.last()?);
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        Some(Spread {
            median,
            min: first,
            max: last,
        })
    }
}
