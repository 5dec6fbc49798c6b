//! The clients side by side: how each is started, and how its output is checked to hold one
//! correct line per URL.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// What curl prints per URL (`-w`), in the same run for `curl --parallel` and `xargs curl`.
const CURL_WRITE_OUT: &str = "%{url_effective} %{size_download}\\n";

/// fetchall's executor, chosen with `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Pool,
    Rayon,
    Sequential,
}

impl Backend {
    fn flag(self) -> &'static str {
        match self {
            Backend::Pool => "pool",
            Backend::Rayon => "rayon",
            Backend::Sequential => "sequential",
        }
    }
}

/// One client in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    /// The `fetchall` binary with a backend.
    Fetchall(Backend),
    /// Another build of `fetchall` (`--baseline PATH`), pool backend: the before of a change.
    Baseline,
    /// This harness run as a client (`--client`): `Fetcher` and `ThreadPool` with no CLI, the
    /// floor the CLI's own costs sit on.
    Library,
    /// This harness run as `--fetcher`: one `Fetcher` on W plain threads that each take the
    /// next URL themselves, as bare ureq's do: the fetcher with no pool and no CLI around it.
    Fetcher,
    /// The Python docs example, `fixtures/python_example.py`, run with W workers by
    /// `python_workers.py`.
    Python,
    /// `curl --parallel --parallel-max W` over a config file of every URL.
    CurlParallel,
    /// `xargs -P W -n 1 curl`: a process and a connection per URL.
    XargsCurl,
    /// One `curl` on one URL.
    Curl,
    /// `fetchall --backend pool` with one more option.
    FetchallWith(Extra),
    /// The harness's minimal keep-alive client (`--floor`): the least a client can do, and so
    /// what the server can serve.
    Floor,
    /// The same requests through a bare `ureq::Agent` (`--ureq`): ureq without fetchall.
    Ureq,
}

/// The options a [`Client::FetchallWith`] adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extra {
    /// `--ordered`: results in input order.
    Ordered,
    /// `--per-host N`.
    PerHost(usize),
    /// `--insecure`: TLS without verification, for the cost of verifying.
    Insecure,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Fetchall(backend) => write!(f, "fetchall --backend {}", backend.flag()),
            Client::Baseline => f.write_str("baseline fetchall --backend pool"),
            Client::Library => f.write_str("library (Fetcher + ThreadPool, no CLI)"),
            Client::Fetcher => f.write_str("Fetcher on W plain threads (no pool, no CLI)"),
            Client::Python => f.write_str("python3 docs example"),
            Client::CurlParallel => f.write_str("curl --parallel"),
            Client::XargsCurl => f.write_str("xargs -P W curl"),
            Client::Curl => f.write_str("curl"),
            Client::FetchallWith(Extra::Ordered) => f.write_str("fetchall --ordered"),
            Client::FetchallWith(Extra::PerHost(n)) => write!(f, "fetchall --per-host {n}"),
            Client::FetchallWith(Extra::Insecure) => f.write_str("fetchall --insecure"),
            Client::Floor => f.write_str("floor (minimal keep-alive client)"),
            Client::Ureq => f.write_str("bare ureq (one Agent, W threads)"),
        }
    }
}

/// How a client prints its line per URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `'URL' page is N bytes`, the Python example's line.
    Python,
    /// `URL N`, from [`CURL_WRITE_OUT`].
    Curl,
}

/// The programs found on this machine.
#[derive(Debug)]
pub(crate) struct Tools {
    pub(crate) fetchall: Option<PathBuf>,
    pub(crate) rayon: bool,
    pub(crate) baseline: Option<PathBuf>,
    pub(crate) harness: PathBuf,
    pub(crate) python: Option<PathBuf>,
    pub(crate) curl: Option<PathBuf>,
    pub(crate) xargs: Option<PathBuf>,
}

/// The files a case's clients read: the URL list, and the same list as a curl config.
#[derive(Debug)]
pub(crate) struct Inputs<'a> {
    /// The URL list, or `-` when the harness writes the URLs to the client's standard input.
    pub(crate) urls: &'a Path,
    pub(crate) curl_config: &'a Path,
    pub(crate) first_url: &'a str,
    pub(crate) workers: usize,
    /// Options every fetchall run of the case gets (`--cacert FILE`).
    pub(crate) fetchall_args: &'a [String],
    /// Options every curl run of the case gets (`--cacert FILE`).
    pub(crate) curl_args: &'a [String],
}

impl Tools {
    /// Why `client` cannot run here, or `None` if it can.
    pub(crate) fn missing(&self, client: Client) -> Option<String> {
        let found = match client {
            Client::Fetchall(Backend::Rayon) if self.fetchall.is_some() && !self.rayon => {
                return Some(
                    "fetchall --backend rayon: the binary was built without the rayon feature"
                        .into(),
                );
            }
            Client::Fetchall(_) | Client::FetchallWith(_) => self.fetchall.is_some(),
            Client::Baseline => self.baseline.is_some(),
            Client::Library | Client::Fetcher | Client::Floor | Client::Ureq => true,
            Client::Python => self.python.is_some(),
            Client::CurlParallel | Client::Curl => self.curl.is_some(),
            Client::XargsCurl => self.curl.is_some() && self.xargs.is_some(),
        };
        (!found).then(|| format!("{client}: not installed (or no fetchall binary yet)"))
    }

    /// The program and arguments that run `client` on `inputs`; `None` for a client that is
    /// not installed.
    pub(crate) fn command(
        &self,
        client: Client,
        inputs: &Inputs<'_>,
    ) -> Option<(PathBuf, Vec<String>)> {
        let w = inputs.workers.to_string();
        let urls = inputs.urls.display().to_string();
        let mut curl_quiet = ["-s", "--noproxy", "*", "-w", CURL_WRITE_OUT]
            .map(String::from)
            .to_vec();
        curl_quiet.extend(inputs.curl_args.iter().cloned());
        let fetchall = |program: &Option<PathBuf>, backend: Backend, extra: &[String]| {
            let args = [
                &urls,
                "--max-workers",
                &w,
                "--timeout",
                "60",
                "--backend",
                backend.flag(),
                "-q",
            ];
            let mut args = args.map(String::from).to_vec();
            args.extend(inputs.fetchall_args.iter().cloned());
            args.extend(extra.iter().cloned());
            Some((program.clone()?, args))
        };
        let harness = |flag: &str| {
            (
                self.harness.clone(),
                vec![flag.into(), w.clone(), urls.clone()],
            )
        };
        let command = match client {
            Client::Fetchall(backend) => fetchall(&self.fetchall, backend, &[])?,
            Client::FetchallWith(extra) => {
                let extra = match extra {
                    Extra::Ordered => vec!["--ordered".into()],
                    Extra::PerHost(n) => vec!["--per-host".into(), n.to_string()],
                    Extra::Insecure => vec!["--insecure".into()],
                };
                fetchall(&self.fetchall, Backend::Pool, &extra)?
            }
            Client::Baseline => fetchall(&self.baseline, Backend::Pool, &[])?,
            Client::Library => harness("--client"),
            Client::Fetcher => harness("--fetcher"),
            Client::Floor => harness("--floor"),
            Client::Ureq => harness("--ureq"),
            Client::Python => {
                let script =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/http/python_workers.py");
                (
                    self.python.clone()?,
                    vec![script.display().to_string(), urls, w],
                )
            }
            Client::CurlParallel => {
                let mut args = vec!["--parallel".into(), "--parallel-max".into(), w];
                args.extend(curl_quiet);
                args.extend(["-K".into(), inputs.curl_config.display().to_string()]);
                (self.curl.clone()?, args)
            }
            Client::XargsCurl => {
                let curl = self.curl.as_ref()?.display().to_string();
                let mut args = vec!["-P".into(), w, "-n".into(), "1".into(), "-a".into(), urls];
                args.extend([curl, "-o".into(), "/dev/null".into()]);
                args.extend(curl_quiet);
                (self.xargs.clone()?, args)
            }
            Client::Curl => {
                let mut args = vec!["-o".into(), "/dev/null".into()];
                args.extend(curl_quiet);
                args.push(inputs.first_url.to_owned());
                (self.curl.clone()?, args)
            }
        };
        Some(command)
    }
}

impl Client {
    /// The format of the client's line per URL.
    pub(crate) fn format(self) -> Format {
        match self {
            Client::Fetchall(_)
            | Client::FetchallWith(_)
            | Client::Baseline
            | Client::Library
            | Client::Fetcher
            | Client::Python => Format::Python,
            Client::CurlParallel
            | Client::XargsCurl
            | Client::Curl
            | Client::Floor
            | Client::Ureq => Format::Curl,
        }
    }
}

/// The config file `curl -K` reads: every URL with its own `output`.
pub(crate) fn curl_config_line(url: &str) -> String {
    format!("url = \"{url}\"\noutput = \"/dev/null\"\n")
}

/// What every URL of a case must come back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A body of this many bytes.
    Bytes(u64),
    /// A refused connection (the scale cases' closed port), in the Python example's wording.
    Refused,
}

/// The failure line fetchall prints for a refused connection, after the URL.
const REFUSED: &str = " generated an exception: <urlopen error [Errno 111] Connection refused>";

/// Checks that `output` holds exactly one line for each of the `n` URLs (told apart by their
/// `?i=` query), each saying what `expect` says. Returns the line count, or the first problem.
pub(crate) fn check_output(
    output: &Path,
    format: Format,
    n: usize,
    expect: Expect,
) -> Result<usize, String> {
    let file = File::open(output).map_err(|e| format!("no output: {e}"))?;
    let mut seen = vec![false; n];
    let mut lines = 0;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("unreadable output: {e}"))?;
        let bad = || format!("bad line {}: {line}", lines + 1);
        let (url, good) = match (format, expect) {
            (Format::Python, Expect::Bytes(bytes)) => line
                .strip_prefix('\'')
                .and_then(|l| l.split_once("' page is "))
                .and_then(|(url, rest)| {
                    let size = rest.strip_suffix(" bytes")?;
                    Some((url, size.parse::<u64>() == Ok(bytes)))
                }),
            (Format::Python, Expect::Refused) => line
                .strip_prefix('\'')
                .and_then(|l| l.strip_suffix(REFUSED))
                .and_then(|l| l.strip_suffix('\''))
                .map(|url| (url, true)),
            (Format::Curl, Expect::Bytes(bytes)) => line
                .rsplit_once(' ')
                .map(|(url, size)| (url, size.parse::<u64>() == Ok(bytes))),
            (Format::Curl, Expect::Refused) => None,
        }
        .ok_or_else(bad)?;
        let index = url
            .rsplit_once("?i=")
            .and_then(|(_, i)| i.parse::<usize>().ok())
            .filter(|&i| i < n)
            .ok_or_else(bad)?;
        if !good || std::mem::replace(&mut seen[index], true) {
            return Err(bad());
        }
        lines += 1;
    }
    if lines == n {
        Ok(lines)
    } else {
        Err(format!("{lines} lines for {n} URLs"))
    }
}

/// The first `name` on `PATH` that is a file.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
