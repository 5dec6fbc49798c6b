//! The HTTP benchmark: fetchall side by side with the Python docs example, `curl --parallel` and
//! `xargs -P W curl`, against a loopback server started here, with the server's own capacity
//! measured in the same run.
//!
//! ```text
//! cargo bench --bench http --features rayon                 # full run, about 10 minutes
//! cargo bench --bench http --features rayon -- --quick      # 1 to 4 minutes
//! cargo bench --bench http -- --only throughput --out report.md
//! cargo bench --bench http -- --fetchall path/to/fetchall   # another build of the CLI
//! cargo bench --bench http --features rayon -- --baseline path/to/old/fetchall
//!                                                           # before and after, in one run
//! cargo bench --bench http -- --out report.md --charts docs/bench   # the SVG charts too
//! ```
//!
//! Every client is a child process run once per round, rounds interleaved (the client order
//! rotates each round), and every run's output is checked to hold one correct line per URL.
//! Nothing but 127.0.0.1 is contacted: the URLs are the server's, curl gets `--noproxy '*'`, and
//! the proxy variables are removed from every child's environment. See `measure.rs` for how time
//! and memory are measured, and `BENCHMARKS.md`, "HTTP benchmarks" for the results and their reading.

mod charts;
mod clients;
mod drivers;
mod farm;
mod measure;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use fetchall_serve::Server;

use crate::clients::{
    Backend, Client, Expect, Extra, Inputs, Tools, check_output, curl_config_line, find_in_path,
};
use crate::farm::Farms;
use crate::measure::{Feed, Runner, Sample, Spread};

/// The longest one client run may take before it is killed and reported: ten million URLs take
/// about 150 s on this machine when it is busy.
const RUN_LIMIT: Duration = Duration::from_secs(600);

const MB: f64 = 1e6;
const MIB: f64 = 1024.0 * 1024.0;

/// What a case's rate is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rate {
    Requests,
    Bytes,
}

/// One measured situation: N URLs of one route, W workers, and the clients compared on it.
#[derive(Debug)]
struct Case {
    title: String,
    kind: &'static str,
    n: usize,
    workers: usize,
    /// The route every URL asks for (each gets its own `?i=` query).
    route: String,
    /// What every URL must come back with.
    expect: Expect,
    /// Where the URLs go: the server, a farm of many ports, or a closed port.
    target: Target,
    /// The URLs go to the client's standard input, written as it reads them, instead of a file.
    stdin: bool,
    rounds: usize,
    /// Runs under GNU time (everywhere but the startup case, where its millisecond counts).
    rss: bool,
    ideal: Option<Duration>,
    rate: Option<Rate>,
    clients: Vec<Client>,
    /// Clients too slow to repeat: they run in the first round only.
    once: Vec<Client>,
}

/// Where a case's URLs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The loopback server.
    Server,
    /// This many ports of farm processes (see `farm.rs`), each URL to one picked at random.
    Hosts(usize),
    /// A port nothing listens on: every URL is refused at once, with no server involved.
    Refused,
    /// The server behind `TlsFront` (TLS on 127.0.0.1 with a certificate from a CA made for
    /// the run), trusted through `--cacert` by fetchall and curl alike.
    Tls,
}

impl Case {
    /// `n` URLs of `route` on the server for `workers` workers, with the body size the route
    /// promises: one round under GNU time, no ideal, no rate, and no clients yet.
    fn new(kind: &'static str, title: String, n: usize, workers: usize, route: &str) -> Case {
        let bytes = match route.rsplit_once("/bytes/") {
            Some((_, size)) => size.parse().unwrap_or(0),
            None => fetchall_serve::OK_BODY.len() as u64,
        };
        Case {
            title,
            kind,
            n,
            workers,
            route: route.into(),
            expect: Expect::Bytes(bytes),
            target: Target::Server,
            stdin: false,
            rounds: 1,
            rss: true,
            ideal: None,
            rate: None,
            clients: Vec::new(),
            once: Vec::new(),
        }
    }

    /// The body size each URL has, or 0.
    fn bytes(&self) -> u64 {
        match self.expect {
            Expect::Bytes(n) => n,
            Expect::Refused => 0,
        }
    }
}

/// The full or quick plan.
fn plan(quick: bool) -> Vec<Case> {
    use Backend::{Pool, Rayon, Sequential};
    use Client::{
        Curl, CurlParallel, Fetchall, FetchallWith, Fetcher, Floor, Library, Python, Ureq,
        XargsCurl,
    };
    let everyone = [
        Fetchall(Pool),
        Fetchall(Rayon),
        Fetchall(Sequential),
        Library,
        Fetcher,
        Ureq,
        Python,
        CurlParallel,
        XargsCurl,
        Floor,
    ];
    let all_but = |left_out: &[Client]| -> Vec<Client> {
        everyone
            .iter()
            .copied()
            .filter(|c| !left_out.contains(c))
            .collect()
    };
    let (rounds, long_rounds) = if quick { (3, 1) } else { (5, 3) };
    let mut cases = Vec::new();

    for workers in [5, 50] {
        // Ten waves of 50 ms at W=50 even when quick (half a second a run): the target is set
        // on them, and with two, the start-up (a few ms whatever the run) was a fifth of it.
        let n: usize = if quick && workers == 5 { 100 } else { 500 };
        let title = format!("latency: {n} URLs x 50 ms, W={workers}");
        let batches = u32::try_from(n.div_ceil(workers)).unwrap_or(u32::MAX);
        cases.push(Case {
            rounds: if workers == 5 {
                long_rounds + 1
            } else {
                rounds
            },
            ideal: Some(Duration::from_millis(50) * batches),
            // N x 50 ms one after another is 25 s a run: the sequential backend sits it out.
            clients: all_but(&[Fetchall(Sequential)]),
            ..Case::new("latency", title, n, workers, "/sleep/50")
        });
    }
    let n = if quick { 2_000 } else { 5_000 };
    for workers in [5, 50] {
        let title = format!("throughput: {n} URLs x 1,000 B, W={workers}");
        cases.push(Case {
            rounds,
            rate: Some(Rate::Requests),
            // A process per URL, at several milliseconds each on this machine: 5,000 of them
            // take a minute, so one round is all the time budget has for it (none when quick).
            clients: if quick {
                all_but(&[XargsCurl])
            } else {
                everyone.to_vec()
            },
            once: vec![XargsCurl],
            ..Case::new("throughput", title, n, workers, "/bytes/1000")
        });
    }
    let n = if quick { 50 } else { 200 };
    for workers in [5, 50] {
        let title = format!("bandwidth: {n} URLs x 10 MB, W={workers}");
        cases.push(Case {
            rounds: long_rounds.max(3),
            rate: Some(Rate::Bytes),
            clients: everyone.to_vec(),
            ..Case::new("bandwidth", title, n, workers, "/bytes/10000000")
        });
    }
    let n = if quick { 2_000 } else { 5_000 };
    for workers in [5, 50] {
        let title = format!("TLS throughput: {n} URLs x 1,000 B over https, W={workers}");
        cases.push(Case {
            rounds,
            rate: Some(Rate::Requests),
            clients: vec![Fetchall(Pool), FetchallWith(Extra::Insecure), CurlParallel],
            target: Target::Tls,
            ..Case::new("tls-throughput", title, n, workers, "/bytes/1000")
        });
    }
    let n = if quick { 20 } else { 100 };
    let title = format!("TLS bandwidth: {n} URLs x 10 MB over https, W=5");
    cases.push(Case {
        rounds: long_rounds.max(3),
        rate: Some(Rate::Bytes),
        clients: vec![Fetchall(Pool), FetchallWith(Extra::Insecure), CurlParallel],
        target: Target::Tls,
        ..Case::new("tls-bandwidth", title, n, 5, "/bytes/10000000")
    });
    let n = if quick { 10_000 } else { 40_000 };
    for hosts in [2_000, 20_000] {
        let title = format!("many hosts: {n} URLs x 1,000 B over {hosts} hosts, W=50");
        cases.push(Case {
            rounds: long_rounds,
            rate: Some(Rate::Requests),
            clients: vec![Fetchall(Pool), CurlParallel, Floor],
            target: Target::Hosts(hosts),
            ..Case::new("hosts", title, n, 50, "/bytes/1000")
        });
    }
    let scales: &[usize] = if quick {
        &[100_000, 1_000_000]
    } else {
        &[100_000, 1_000_000, 10_000_000]
    };
    for &n in scales {
        let title = format!("scale: {n} URLs through stdin to a closed port, W=50");
        cases.push(Case {
            // Ten million URLs take minutes a run: once each.
            rounds: if n > 1_000_000 { 1 } else { long_rounds },
            rate: Some(Rate::Requests),
            clients: vec![
                Fetchall(Pool),
                FetchallWith(Extra::Ordered),
                FetchallWith(Extra::PerHost(25)),
            ],
            expect: Expect::Refused,
            target: Target::Refused,
            stdin: true,
            ..Case::new("scale", title, n, 50, "/refused")
        });
    }
    cases.push(Case {
        rounds: if quick { 10 } else { 30 },
        // GNU time's fork and exec would be a fair part of what is measured.
        rss: false,
        clients: vec![Fetchall(Pool), Library, Curl, Python],
        ..Case::new("startup", "startup: one URL (/ok)".into(), 1, 1, "/ok")
    });
    cases.push(Case {
        rounds: long_rounds,
        rate: Some(Rate::Bytes),
        clients: vec![Fetchall(Pool), Library, Curl],
        ..Case::new(
            "1gib",
            "memory: one 1 GiB body".into(),
            1,
            1,
            "/bytes/1073741824",
        )
    });
    cases
}

/// The runs of one client in one case.
#[derive(Debug)]
struct Row {
    client: Client,
    samples: Vec<Sample>,
}

impl Row {
    fn spread(&self) -> Option<Spread> {
        let walls: Vec<Duration> = self.samples.iter().map(|s| s.wall).collect();
        Spread::of(&walls)
    }

    /// The median of a per-run measure, over the runs that have it.
    fn median_of(&self, measure: impl Fn(&Sample) -> Option<Duration>) -> Option<Duration> {
        let values: Vec<Duration> = self.samples.iter().filter_map(measure).collect();
        Some(Spread::of(&values)?.median)
    }

    fn peak_rss_mib(&self) -> Option<f64> {
        let peak = self.samples.iter().filter_map(|s| s.rss_kib).max()?;
        Some(peak as f64 / 1024.0)
    }

    fn all_ok(&self) -> bool {
        !self.samples.is_empty() && self.samples.iter().all(|s| s.check.is_ok())
    }
}

#[derive(Debug)]
struct Measured {
    case: Case,
    rows: Vec<Row>,
    /// The load average when the case started and ended.
    load: String,
}

impl Measured {
    /// The median wall time of `client`, if it ran and every run was correct.
    fn median(&self, client: Client) -> Option<Duration> {
        let row = self.rows.iter().find(|r| r.client == client)?;
        if row.all_ok() {
            Some(row.spread()?.median)
        } else {
            None
        }
    }

    fn row(&self, client: Client) -> Option<&Row> {
        self.rows.iter().find(|r| r.client == client)
    }
}

struct Options {
    quick: bool,
    only: Vec<String>,
    fetchall: Option<PathBuf>,
    baseline: Option<PathBuf>,
    out: Option<PathBuf>,
    charts: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, workers, file]
            if ["--client", "--fetcher", "--floor", "--ureq"].contains(&flag.as_str()) =>
        {
            return client_main(flag, workers, Path::new(file));
        }
        [flag, first, count, bytes] if flag == "--farm" => {
            return farm_main(first, count, bytes);
        }
        [flag, ca] if flag == "--serve-tls" => return serve_tls_main(Path::new(ca)),
        _ => {}
    }
    if args.iter().any(|a| a == "--serve") {
        return serve_main();
    }
    let mut options = Options {
        quick: false,
        only: Vec::new(),
        fetchall: option_env!("CARGO_BIN_EXE_fetchall").map(PathBuf::from),
        baseline: None,
        out: None,
        charts: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--only" => options.only.extend(args.next()),
            "--fetchall" => options.fetchall = args.next().map(PathBuf::from),
            "--baseline" => options.baseline = args.next().map(PathBuf::from),
            "--out" => options.out = args.next().map(PathBuf::from),
            "--charts" => options.charts = args.next().map(PathBuf::from),
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => {
                eprintln!(
                    "unknown argument {other:?}; use --quick, --only WORD, --fetchall PATH, \
                     --baseline PATH, --out FILE, --charts DIR"
                );
                return ExitCode::from(2);
            }
        }
    }
    match bench(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--serve`: only the server, for profiling a client by hand. Prints its address and runs until
/// standard input closes.
fn serve_main() -> ExitCode {
    let server = match Server::start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("--serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.url("/"));
    let _ = io::copy(&mut io::stdin(), &mut io::sink());
    ExitCode::SUCCESS
}

/// `--serve-tls CA_FILE`: the server behind `TlsFront`, for profiling a client over https by
/// hand: writes the CA's certificate to `CA_FILE`, prints the base URL and runs until standard
/// input closes.
fn serve_tls_main(ca_file: &Path) -> ExitCode {
    use fetchall_serve::tls::{Ca, LOCALHOST, TlsFront};
    let ca = Ca::new("fetchall bench CA");
    let started = Server::start().and_then(|server| {
        fs::write(ca_file, ca.cert_pem())?;
        let front = TlsFront::start(server.addr(), &ca.leaf(&LOCALHOST))?;
        Ok((server, front))
    });
    let (_server, front) = match started {
        Ok(both) => both,
        Err(e) => {
            eprintln!("--serve-tls: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", front.url("/"));
    let _ = io::copy(&mut io::stdin(), &mut io::sink());
    ExitCode::SUCCESS
}

/// `--client`, `--floor` or `--ureq W FILE`: one of the harness's own clients (`drivers.rs`).
fn client_main(flag: &str, workers: &str, file: &Path) -> ExitCode {
    let workers = match workers.parse::<usize>() {
        Ok(w) if w > 0 => w,
        _ => {
            eprintln!("{flag}: the worker count must be a positive number");
            return ExitCode::from(2);
        }
    };
    let result = match flag {
        "--floor" => drivers::floor_client(workers, file),
        "--ureq" => drivers::ureq_client(workers, file),
        "--fetcher" => drivers::fetcher_client(workers, file),
        _ => drivers::library_client(workers, file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{flag}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--farm FIRST COUNT BYTES`: the many-hosts server (`farm.rs`).
fn farm_main(first: &str, count: &str, bytes: &str) -> ExitCode {
    let (Ok(first), Ok(count), Ok(bytes)) = (first.parse(), count.parse(), bytes.parse()) else {
        eprintln!("--farm FIRST COUNT BYTES: three numbers");
        return ExitCode::from(2);
    };
    match farm::farm_main(first, count, bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("--farm: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(options: &Options) -> io::Result<()> {
    let dir = std::env::temp_dir().join(format!("fetchall-http-bench-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let result = bench_in(options, &dir);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn bench_in(options: &Options, dir: &Path) -> io::Result<()> {
    let fetchall = options.fetchall.clone().filter(|p| p.is_file());
    let tools = Tools {
        rayon: fetchall.as_deref().is_some_and(has_rayon),
        fetchall,
        baseline: options.baseline.clone(),
        harness: std::env::current_exe()?,
        python: find_in_path("python3"),
        curl: find_in_path("curl"),
        xargs: find_in_path("xargs"),
    };
    let server = Server::start()?;
    let runner = Runner::new(dir, RUN_LIMIT);
    let started = Instant::now();
    let load_before = load_average();

    let mut cases = plan(options.quick);
    if options.baseline.is_some() {
        // Not the largest cases: the baseline's memory there is not the question, and time is.
        // Nor TLS: the baseline may have no --cacert.
        for case in cases
            .iter_mut()
            .filter(|c| c.n <= 100_000 && c.target != Target::Tls)
        {
            let at = usize::from(!case.clients.is_empty());
            case.clients.insert(at, Client::Baseline);
        }
    }
    if !options.only.is_empty() {
        cases.retain(|c| options.only.iter().any(|o| c.title.contains(o.as_str())));
    }
    let mut notes = Vec::new();
    for case in &mut cases {
        case.clients.retain(|&client| match tools.missing(client) {
            Some(why) => {
                if !notes.contains(&why) {
                    notes.push(why);
                }
                false
            }
            None => true,
        });
    }
    if !runner.measures_rss() {
        notes.push(format!(
            "{} is not installed: peak RSS is not measured",
            "/usr/bin/time"
        ));
    }

    let mut measured = Vec::new();
    for case in cases {
        let load = load_average();
        let rows = run_case(&case, &server, &runner, &tools, dir)?;
        measured.push(Measured {
            case,
            rows,
            load: format!("{load} at the start, {} at the end", load_average()),
        });
    }

    let mut report = String::new();
    let load = format!("{load_before} at the start, {} at the end", load_average());
    write_header(
        &mut report,
        options,
        &tools,
        &server,
        &load,
        started.elapsed(),
    );
    for note in &notes {
        let _ = writeln!(report, "- skipped: {note}");
    }
    let charts = options
        .charts
        .clone()
        .or_else(|| Some(options.out.as_ref()?.parent()?.to_path_buf()));
    for m in &measured {
        write_case(&mut report, m, &tools, dir, charts.as_deref());
    }
    write_scale_chart(&mut report, &measured, charts.as_deref());
    write_targets(&mut report, &measured, options.quick);
    print!("{report}");
    if let Some(out) = &options.out {
        fs::write(out, &report)?;
    }
    Ok(())
}

/// Whether the fetchall binary accepts `--backend rayon`: it refuses with a usage error when
/// built without the feature.
fn has_rayon(fetchall: &Path) -> bool {
    Command::new(fetchall)
        .args(["/dev/null", "--backend", "rayon", "-q"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Makes each URL of a case: where it goes depends on the case's [`Target`].
struct Urls {
    /// `http://127.0.0.1:PORT` of each host.
    bases: Vec<String>,
    route: String,
}

impl Urls {
    fn url(&self, i: usize) -> String {
        let host = if self.bases.len() > 1 {
            // The hosts in a random order that is the same every run: splitmix64 of the index.
            let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z % self.bases.len() as u64) as usize
        } else {
            0
        };
        format!("{}{}?i={i}", self.bases[host], self.route)
    }
}

/// The CA certificate of a TLS case, in the case's directory.
const CA_FILE: &str = "ca.pem";

/// The options a case gives every fetchall and every curl run: `--cacert` for TLS.
fn trust_args(case: &Case, dir: &Path) -> (Vec<String>, Vec<String>) {
    if case.target != Target::Tls {
        return (Vec::new(), Vec::new());
    }
    let cacert = [
        "--cacert".to_owned(),
        dir.join(CA_FILE).display().to_string(),
    ];
    (cacert.to_vec(), cacert.to_vec())
}

/// A port on 127.0.0.1 that nothing listens on: one bound and let go. Connections to it are
/// refused at once (unless something takes it meanwhile, which the output check would catch).
fn closed_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The URL list of a case (unless it goes through standard input), and the same list as a curl
/// config; returns the first URL.
fn write_inputs(case: &Case, urls: &Urls, list: &Path, config: &Path) -> io::Result<String> {
    if !case.stdin {
        let mut list = BufWriter::new(File::create(list)?);
        let needs_config = case.clients.contains(&Client::CurlParallel);
        let mut curl = BufWriter::new(File::create(config)?);
        for i in 0..case.n {
            let url = urls.url(i);
            writeln!(list, "{url}")?;
            if needs_config {
                curl.write_all(curl_config_line(&url).as_bytes())?;
            }
        }
        list.flush()?;
        curl.flush()?;
    }
    Ok(urls.url(0))
}

/// Where a case's connections are counted.
enum Counter<'a> {
    Server(&'a Server),
    Farms(Farms),
    /// Its connections are TLS handshakes.
    Tls(fetchall_serve::tls::TlsFront),
    None,
}

impl Counter<'_> {
    fn connections(&mut self) -> u64 {
        match self {
            Counter::Server(server) => server.connections_accepted(),
            Counter::Farms(farms) => farms.connections_accepted(),
            Counter::Tls(front) => front.connections_accepted(),
            Counter::None => 0,
        }
    }

    fn cpu(&self) -> Option<Duration> {
        match self {
            Counter::Farms(farms) => farms.cpu(),
            Counter::Server(_) | Counter::Tls(_) | Counter::None => measure::own_cpu(),
        }
    }
}

fn run_case(
    case: &Case,
    server: &Server,
    runner: &Runner,
    tools: &Tools,
    dir: &Path,
) -> io::Result<Vec<Row>> {
    let list = dir.join("urls.txt");
    let curl_config = dir.join("urls.curl");
    let (bases, mut counter) = match case.target {
        Target::Server => (vec![server.url("")], Counter::Server(server)),
        Target::Hosts(hosts) => {
            let farms = Farms::start(&tools.harness, hosts, case.bytes())?;
            let bases = farms
                .ports
                .iter()
                .map(|port| format!("http://127.0.0.1:{port}"))
                .collect();
            (bases, Counter::Farms(farms))
        }
        Target::Refused => (
            vec![format!("http://127.0.0.1:{}", closed_port()?)],
            Counter::None,
        ),
        Target::Tls => {
            use fetchall_serve::tls::{Ca, LOCALHOST, TlsFront};
            let ca = Ca::new("fetchall bench CA");
            fs::write(dir.join(CA_FILE), ca.cert_pem())?;
            let front = TlsFront::start(server.addr(), &ca.leaf(&LOCALHOST))?;
            (vec![front.url("")], Counter::Tls(front))
        }
    };
    let (fetchall_args, curl_args) = trust_args(case, dir);
    let urls = Urls {
        bases: bases
            .iter()
            .map(|b| b.trim_end_matches('/').to_owned())
            .collect(),
        route: case.route.clone(),
    };
    let first_url = write_inputs(case, &urls, &list, &curl_config)?;
    let stdin_path = PathBuf::from("-");
    let inputs = Inputs {
        urls: if case.stdin { &stdin_path } else { &list },
        curl_config: &curl_config,
        first_url: &first_url,
        workers: case.workers,
        fetchall_args: &fetchall_args,
        curl_args: &curl_args,
    };
    let feed = |out: &mut dyn Write| -> io::Result<()> {
        for i in 0..case.n {
            writeln!(out, "{}", urls.url(i))?;
        }
        Ok(())
    };
    let feed: Option<&Feed<'_>> = if case.stdin { Some(&feed) } else { None };
    let mut rows: Vec<Row> = case
        .clients
        .iter()
        .map(|&client| Row {
            client,
            samples: Vec::new(),
        })
        .collect();
    for round in 0..case.rounds {
        for k in 0..rows.len() {
            let row = &mut rows[(k + round) % case.clients.len()];
            if round > 0 && case.once.contains(&row.client) {
                continue;
            }
            let sample = run_once(case, row.client, &mut counter, runner, tools, &inputs, feed)?;
            eprintln!(
                "[{}] round {}/{}: {:<40} {:>9.3} s  {}",
                case.title,
                round + 1,
                case.rounds,
                row.client.to_string(),
                sample.wall.as_secs_f64(),
                match &sample.check {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => e.clone(),
                }
            );
            row.samples.push(sample);
        }
    }
    Ok(rows)
}

fn run_once(
    case: &Case,
    client: Client,
    counter: &mut Counter<'_>,
    runner: &Runner,
    tools: &Tools,
    inputs: &Inputs<'_>,
    feed: Option<&Feed<'_>>,
) -> io::Result<Sample> {
    let before = counter.connections();
    let cpu_before = counter.cpu();
    let Some((program, args)) = tools.command(client, inputs) else {
        return Err(io::Error::other(format!("{client}: no command")));
    };
    let finished = runner.run(&program, &args, case.rss, feed)?;
    let connections = counter.connections() - before;
    let server_cpu = (|| Some(counter.cpu()?.saturating_sub(cpu_before?)))();
    let check = match finished.status {
        None => Err(finished.stderr),
        Some(status) => check_output(&finished.stdout, client.format(), case.n, case.expect)
            .map_err(|e| {
                if status.success() {
                    e
                } else {
                    format!("{e}; {status}: {}", finished.stderr)
                }
            }),
    };
    Ok(Sample {
        wall: finished.wall,
        rss_kib: finished.rss_kib,
        cpu: finished.cpu,
        server_cpu,
        connections,
        check,
    })
}

fn first_line(command: &str, args: &[&str]) -> String {
    Command::new(command)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8(text).ok()
        })
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "not found".into())
}

/// The 1-minute load average: other work on the machine that the run shared it with.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn write_header(
    report: &mut String,
    options: &Options,
    tools: &Tools,
    server: &Server,
    load: &str,
    took: Duration,
) {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kib: f64 = s.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / MIB)
        })
        .unwrap_or(0.0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = writeln!(
        report,
        "# HTTP benchmark ({})\n",
        if options.quick { "quick" } else { "full" }
    );
    let _ = writeln!(
        report,
        "- date: {}\n- machine: {cpu}, {cores} cores, {memory:.1} GiB, Linux {}\n- server: fetchall_serve::Server on {} (thread per connection, keep-alive), in the harness process\n- fetchall: {}\n- {}\n- {}\n- load average (1 min): {load}\n- took {:.0} s",
        first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        kernel.trim(),
        server.addr(),
        tools
            .fetchall
            .as_ref()
            .map_or("not built".into(), |p| p.display().to_string()),
        first_line("curl", &["--version"]),
        first_line("python3", &["--version"]),
        took.as_secs_f64(),
    );
    let _ = writeln!(
        report,
        "- times: wall clock from spawn to exit, median and min-max over the rounds; CPU s: the client's user + system time (median), from the kernel's rusage via `/usr/bin/time -f '%M %U %S'` (10 ms resolution; all processes of xargs); server CPU s: the harness process's own time over the run (the server, and the raw client when it runs); peak RSS: max over the rounds of ru_maxrss (largest single process)\n- x fetchall: the client's median time over fetchall's (pool backend; the library client where there is no binary): above 1 means fetchall is faster"
    );
}

/// The reference for the ratios: the CLI's pool backend, or the library client without a CLI.
fn reference(m: &Measured) -> Option<(Client, Duration)> {
    [Client::Fetchall(Backend::Pool), Client::Library]
        .into_iter()
        .find_map(|c| Some((c, m.median(c)?)))
}

/// The floor's median time in a case, when it ran there.
fn floor_time(m: &Measured) -> Option<Duration> {
    m.median(Client::Floor)
}

fn write_case(report: &mut String, m: &Measured, tools: &Tools, dir: &Path, charts: Option<&Path>) {
    let case = &m.case;
    let _ = writeln!(report, "\n## {} ({} rounds)\n", case.title, case.rounds);
    let _ = writeln!(report, "load average (1 min): {}\n", m.load);
    let mut head = vec!["client", "median s", "min-max s"];
    match case.rate {
        Some(Rate::Requests) => head.push("req/s"),
        Some(Rate::Bytes) => head.push("MB/s"),
        None => {}
    }
    if case.ideal.is_some() {
        head.push("x ideal");
    }
    let floor = floor_time(m);
    if floor.is_some() {
        head.push("rate / floor");
    }
    head.extend([
        "x fetchall",
        "CPU s",
        "CPU us/URL",
        "server CPU s",
        "peak RSS MiB",
        "conns/run",
        "output",
    ]);
    let _ = writeln!(report, "| {} |", head.join(" | "));
    let _ = writeln!(report, "|{}", "---|".repeat(head.len()));
    let reference = reference(m);
    for row in &m.rows {
        let Some(spread) = row.spread() else { continue };
        let median = spread.median.as_secs_f64();
        let mut cells = vec![
            row.client.to_string(),
            format!("{median:.3}"),
            format!(
                "{:.3}-{:.3}",
                spread.min.as_secs_f64(),
                spread.max.as_secs_f64()
            ),
        ];
        match case.rate {
            Some(Rate::Requests) => cells.push(format!("{:.0}", case.n as f64 / median)),
            Some(Rate::Bytes) => cells.push(format!(
                "{:.0}",
                case.n as f64 * case.bytes() as f64 / MB / median
            )),
            None => {}
        }
        if let Some(ideal) = case.ideal {
            cells.push(format!("{:.3}", median / ideal.as_secs_f64()));
        }
        if let Some(floor) = floor {
            cells.push(format!("{:.2}", floor.as_secs_f64() / median));
        }
        cells.push(reference.map_or("-".into(), |(_, r)| {
            format!("{:.2}", median / r.as_secs_f64())
        }));
        let cpu = row.median_of(|s| s.cpu);
        cells.push(cpu.map_or("-".into(), |t| format!("{:.2}", t.as_secs_f64())));
        cells.push(cpu.map_or("-".into(), |t| {
            format!("{:.1}", t.as_secs_f64() * 1e6 / case.n as f64)
        }));
        let server_cpu = row.median_of(|s| s.server_cpu);
        cells.push(server_cpu.map_or("-".into(), |t| format!("{:.2}", t.as_secs_f64())));
        cells.push(
            row.peak_rss_mib()
                .map_or("-".into(), |mib| format!("{mib:.1}")),
        );
        let conns = row.samples.iter().map(|s| s.connections);
        cells.push(match (conns.clone().min(), conns.max()) {
            (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
            (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
            _ => "-".into(),
        });
        cells.push(
            match row.samples.iter().find_map(|s| s.check.as_ref().err()) {
                None => format!("{} lines ok", case.n),
                Some(e) => format!("FAILED: {}", e.replace('|', "/")),
            },
        );
        let _ = writeln!(report, "| {} |", cells.join(" | "));
    }
    if let Some(ideal) = case.ideal {
        let _ = writeln!(report, "\nideal: {:.3} s", ideal.as_secs_f64());
    }
    for client in m
        .rows
        .iter()
        .map(|r| r.client)
        .filter(|c| case.once.contains(c))
    {
        let _ = writeln!(report, "\n{client}: the first round only.");
    }
    if let Some(charts) = charts {
        match write_bars(m, charts) {
            Ok(name) => {
                let _ = writeln!(report, "\n![{}]({name})", case.title);
            }
            Err(e) => {
                let _ = writeln!(report, "\nno chart: {e}");
            }
        }
    }
    let _ = writeln!(report, "\ncommands:");
    let urls = if case.stdin {
        PathBuf::from("-")
    } else {
        dir.join("urls.txt")
    };
    let (fetchall_args, curl_args) = trust_args(case, dir);
    let inputs = Inputs {
        urls: &urls,
        curl_config: &dir.join("urls.curl"),
        first_url: "URL",
        workers: case.workers,
        fetchall_args: &fetchall_args,
        curl_args: &curl_args,
    };
    if case.stdin {
        let _ = writeln!(report, "- (the harness writes the URLs to standard input)");
    }
    for row in &m.rows {
        if let Some((program, args)) = tools.command(row.client, &inputs) {
            let shown = std::iter::once(program.display().to_string())
                .chain(args.iter().map(|a| shell_word(a)))
                .collect::<Vec<_>>()
                .join(" ")
                .replace(&dir.display().to_string(), "$TMP");
            let _ = writeln!(report, "- `{shown}`");
        }
    }
}

/// The file name of a case's chart: `http-throughput-w50.svg`.
fn chart_name(case: &Case) -> String {
    let detail = match case.target {
        Target::Hosts(hosts) => format!("{hosts}-hosts"),
        _ if case.kind == "scale" => format!("{}", case.n),
        _ => format!("w{}", case.workers),
    };
    format!("http-{}-{detail}.svg", case.kind)
}

/// The bar chart of one case, in `dir`; returns its file name.
fn write_bars(m: &Measured, dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let case = &m.case;
    let name = chart_name(case);
    // A rate where the case has one (higher is better), the median time where not.
    let value = |time: Duration| match case.rate {
        Some(Rate::Requests) => case.n as f64 / time.as_secs_f64(),
        Some(Rate::Bytes) => case.n as f64 * case.bytes() as f64 / MB / time.as_secs_f64(),
        None => time.as_secs_f64(),
    };
    let unit = match case.rate {
        Some(Rate::Requests) => "requests per second (longer is better)",
        Some(Rate::Bytes) => "MB per second (longer is better)",
        None => "median seconds (shorter is better)",
    };
    let bars: Vec<charts::Bar> = m
        .rows
        .iter()
        .filter(|r| r.client != Client::Floor)
        .filter_map(|r| {
            Some(charts::Bar {
                label: r.client.to_string(),
                value: value(m.median(r.client)?),
                ours: matches!(
                    r.client,
                    Client::Fetchall(_)
                        | Client::FetchallWith(_)
                        | Client::Library
                        | Client::Fetcher
                ),
            })
        })
        .collect();
    let mut marks = Vec::new();
    if let Some(floor) = floor_time(m) {
        let floor = value(floor);
        marks.push(charts::Mark {
            label: format!("floor: {}", Client::Floor),
            value: floor,
            color: charts::FLOOR,
        });
        let target = match case.kind {
            "throughput" => Some(("target: 0.8x floor", 0.8)),
            "bandwidth" => Some(("target: 0.95x floor", 0.95)),
            // A time: within 1.02x of the floor's.
            "latency" => Some(("target: 1.02x the floor's time", 1.02)),
            _ => None,
        };
        if let Some((label, ratio)) = target {
            marks.push(charts::Mark {
                label: label.into(),
                value: floor * ratio,
                color: charts::TARGET,
            });
        }
    }
    fs::create_dir_all(dir)?;
    charts::bars(&dir.join(&name), &case.title, unit, &bars, &marks)?;
    Ok(name)
}

/// The scale cases' peak RSS against URL count, one line per client, in `dir`.
fn write_scale_chart(report: &mut String, measured: &[Measured], charts: Option<&Path>) {
    let Some(dir) = charts else { return };
    let scale: Vec<&Measured> = measured.iter().filter(|m| m.case.kind == "scale").collect();
    let Some(first) = scale.first() else { return };
    let series: Vec<charts::Series> = first
        .rows
        .iter()
        .map(|r| charts::Series {
            label: r.client.to_string(),
            points: scale
                .iter()
                .filter_map(|m| Some((m.case.n as f64, m.row(r.client)?.peak_rss_mib()?)))
                .collect(),
        })
        .collect();
    let name = "http-scale-rss.svg";
    let drawn = fs::create_dir_all(dir).map_err(Into::into).and_then(|()| {
        charts::rss(
            &dir.join(name),
            "scale: peak RSS against URL count (W=50, through stdin)",
            &series,
            32.0,
        )
    });
    let _ = match drawn {
        Ok(()) => writeln!(report, "\n![scale: peak RSS against URL count]({name})"),
        Err(e) => writeln!(report, "\nno scale chart: {e}"),
    };
}

/// `arg` quoted for a POSIX shell when it needs it.
fn shell_word(arg: &str) -> String {
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=$".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// One target: what was measured against what was asked.
struct Verdict {
    name: String,
    measured: Option<f64>,
    limit: f64,
    /// `true`: the measure must be at most the limit; `false`: at least.
    at_most: bool,
}

fn find<'a>(
    measured: &'a [Measured],
    kind: &str,
    workers: usize,
    n: Option<usize>,
) -> Option<&'a Measured> {
    measured.iter().find(|m| {
        m.case.kind == kind && m.case.workers == workers && n.is_none_or(|n| m.case.n == n)
    })
}

fn find_hosts(measured: &[Measured], hosts: usize) -> Option<&Measured> {
    measured
        .iter()
        .find(|m| m.case.target == Target::Hosts(hosts))
}

/// The median CPU time per URL of `client` in `m`.
fn cpu_per_url(m: &Measured, client: Client) -> Option<f64> {
    let cpu = m.row(client)?.median_of(|s| s.cpu)?;
    Some(cpu.as_secs_f64() / m.case.n as f64)
}

fn write_targets(report: &mut String, measured: &[Measured], quick: bool) {
    let mut targets = Vec::new();
    // Rate over the floor's: the floor's time over fetchall's.
    let over_floor = |m: Option<&Measured>| {
        let m = m?;
        Some(floor_time(m)?.as_secs_f64() / reference(m)?.1.as_secs_f64())
    };
    let speedup = |m: Option<&Measured>, peer: Client| {
        let m = m?;
        Some(m.median(peer)?.as_secs_f64() / reference(m)?.1.as_secs_f64())
    };
    for workers in [5, 50] {
        targets.push(Verdict {
            name: format!("throughput W={workers}: req/s over the floor's"),
            measured: over_floor(find(measured, "throughput", workers, None)),
            limit: 0.8,
            at_most: false,
        });
    }
    for workers in [5, 50] {
        targets.push(Verdict {
            name: format!("bandwidth W={workers}: MB/s over the floor's"),
            measured: over_floor(find(measured, "bandwidth", workers, None)),
            limit: 0.95,
            at_most: false,
        });
    }
    for workers in [5, 50] {
        targets.push(Verdict {
            name: format!("latency W={workers}: time over the floor's"),
            measured: over_floor(find(measured, "latency", workers, None)).map(|r| 1.0 / r),
            limit: 1.02,
            at_most: true,
        });
    }
    targets.push(Verdict {
        name: "startup: time on one URL over curl's".into(),
        measured: speedup(find(measured, "startup", 1, None), Client::Curl).map(|s| 1.0 / s),
        limit: 1.0,
        at_most: true,
    });
    let tls = |workers| {
        measured
            .iter()
            .find(|m| m.case.kind == "tls-throughput" && m.case.workers == workers)
    };
    for workers in [5, 50] {
        targets.push(Verdict {
            name: format!("TLS throughput W={workers}: req/s over curl --parallel's"),
            measured: speedup(tls(workers), Client::CurlParallel),
            limit: 1.5,
            at_most: false,
        });
        targets.push(Verdict {
            name: format!("TLS throughput W={workers}: verified time over --insecure's"),
            measured: speedup(tls(workers), Client::FetchallWith(Extra::Insecure)).map(|s| 1.0 / s),
            limit: 1.10,
            at_most: true,
        });
    }
    targets.push(Verdict {
        name: "TLS bandwidth: MB/s over curl --parallel's".into(),
        measured: speedup(
            measured.iter().find(|m| m.case.kind == "tls-bandwidth"),
            Client::CurlParallel,
        ),
        limit: 1.0,
        at_most: false,
    });
    let rss = |m: Option<&Measured>, client: Option<Client>| {
        let m = m?;
        let client = client.or_else(|| Some(reference(m)?.0))?;
        m.row(client)?.peak_rss_mib()
    };
    for hosts in [2_000, 20_000] {
        targets.push(Verdict {
            name: format!("{hosts} hosts: req/s over curl --parallel's"),
            measured: speedup(find_hosts(measured, hosts), Client::CurlParallel),
            limit: 2.0,
            at_most: false,
        });
    }
    targets.push(Verdict {
        name: "20000 hosts: peak RSS MiB".into(),
        measured: rss(find_hosts(measured, 20_000), None),
        limit: 32.0,
        at_most: true,
    });
    let largest = measured
        .iter()
        .filter(|m| m.case.kind == "scale")
        .max_by_key(|m| m.case.n);
    let smallest = find(measured, "scale", 50, Some(100_000));
    for client in [
        Client::Fetchall(Backend::Pool),
        Client::FetchallWith(Extra::Ordered),
        Client::FetchallWith(Extra::PerHost(25)),
    ] {
        // The largest scale case that ran, if one did.
        let n = largest.map_or_else(|| "the largest".to_owned(), |m| m.case.n.to_string());
        targets.push(Verdict {
            name: format!("scale {n} URLs, {client}: peak RSS MiB"),
            measured: rss(largest, Some(client)),
            limit: 32.0,
            at_most: true,
        });
        targets.push(Verdict {
            name: format!("scale {n} URLs, {client}: CPU per URL over 100,000's"),
            measured: largest
                .zip(smallest)
                .filter(|(l, s)| l.case.n > s.case.n)
                .and_then(|(l, s)| Some(cpu_per_url(l, client)? / cpu_per_url(s, client)?)),
            limit: 1.10,
            at_most: true,
        });
    }
    targets.push(Verdict {
        name: "1 GiB body: peak RSS MiB".into(),
        measured: rss(find(measured, "1gib", 1, None), None),
        limit: 16.0,
        at_most: true,
    });

    let _ = writeln!(report, "\n## Targets\n");
    if quick {
        let _ = writeln!(
            report,
            "A quick run: fewer URLs and rounds than the issue's cases (latency at W=5 is 100 \
             URLs, and the largest scale case is 1,000,000 URLs), so these verdicts are only a \
             smoke test of the full run's.\n"
        );
    }
    let _ = writeln!(report, "| target | measured | asked | |\n|---|---|---|---|");
    for t in targets {
        let (value, verdict) = match t.measured {
            None => ("-".to_owned(), "not measured"),
            Some(v) => {
                let met = if t.at_most {
                    v <= t.limit
                } else {
                    v >= t.limit
                };
                (format!("{v:.2}"), if met { "met" } else { "MISSED" })
            }
        };
        let sign = if t.at_most { "<=" } else { ">=" };
        let _ = writeln!(
            report,
            "| {} | {value} | {sign} {} | {verdict} |",
            t.name, t.limit
        );
    }
}
