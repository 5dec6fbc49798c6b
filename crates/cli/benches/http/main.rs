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
//! ```
//!
//! Every client is a child process run once per round, rounds interleaved (the client order
//! rotates each round), and every run's output is checked to hold one correct line per URL.
//! Nothing but 127.0.0.1 is contacted: the URLs are the server's, curl gets `--noproxy '*'`, and
//! the proxy variables are removed from every child's environment. See `measure.rs` for how time
//! and memory are measured, and `BENCHMARKS.md`, "HTTP benchmarks" for the results and their reading.

mod clients;
mod drivers;
mod measure;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use fetchall_serve::Server;

use crate::clients::{
    Backend, Client, Inputs, Tools, check_output, curl_config_line, find_in_path,
};
use crate::measure::{Runner, Sample, Spread};

/// The longest one client run may take before it is killed and reported.
const RUN_LIMIT: Duration = Duration::from_secs(180);

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
    /// The body size every URL must report.
    bytes: u64,
    rounds: usize,
    /// Runs under GNU time (everywhere but the startup case, where its millisecond counts).
    rss: bool,
    ideal: Option<Duration>,
    rate: Option<Rate>,
    clients: Vec<Client>,
    /// Clients too slow to repeat: they run in the first round only.
    once: Vec<Client>,
}

impl Case {
    /// `n` URLs of `route` for `workers` workers, with the body size the route promises: one
    /// round under GNU time, no ideal, no rate, and no clients yet.
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
            bytes,
            rounds: 1,
            rss: true,
            ideal: None,
            rate: None,
            clients: Vec::new(),
            once: Vec::new(),
        }
    }
}

/// The full or quick plan.
fn plan(quick: bool) -> Vec<Case> {
    use Backend::{Pool, Rayon, Sequential};
    use Client::{Curl, CurlParallel, Fetchall, Library, Python, Raw, XargsCurl};
    let everyone = [
        Fetchall(Pool),
        Fetchall(Rayon),
        Fetchall(Sequential),
        Library,
        Python,
        CurlParallel,
        XargsCurl,
        Raw,
    ];
    let all_but = |left_out: Client| -> Vec<Client> {
        everyone
            .iter()
            .copied()
            .filter(|&c| c != left_out)
            .collect()
    };
    let (rounds, long_rounds) = if quick { (2, 1) } else { (5, 3) };
    let mut cases = Vec::new();

    let n: usize = if quick { 100 } else { 500 };
    for workers in [5, 50] {
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
            clients: all_but(Fetchall(Sequential)),
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
                all_but(XargsCurl)
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
            rounds: long_rounds,
            rate: Some(Rate::Bytes),
            clients: everyone.to_vec(),
            ..Case::new("bandwidth", title, n, workers, "/bytes/10000000")
        });
    }
    let scales: &[usize] = if quick {
        &[100_000]
    } else {
        &[100_000, 1_000_000]
    };
    for &n in scales {
        let title = format!("scale: {n} URLs x 1,000 B, W=50");
        // A million URLs take most of a minute a run: fetchall alone, twice.
        let (clients, rounds) = if n <= 100_000 {
            (vec![Fetchall(Pool), Library, CurlParallel], long_rounds)
        } else {
            (vec![Fetchall(Pool)], 2)
        };
        cases.push(Case {
            rounds,
            rate: Some(Rate::Requests),
            clients,
            ..Case::new("scale", title, n, 50, "/bytes/1000")
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
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, workers, file] = args.as_slice() {
        if flag == "--client" {
            return client_main(workers, Path::new(file));
        }
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
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--only" => options.only.extend(args.next()),
            "--fetchall" => options.fetchall = args.next().map(PathBuf::from),
            "--baseline" => options.baseline = args.next().map(PathBuf::from),
            "--out" => options.out = args.next().map(PathBuf::from),
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => {
                eprintln!(
                    "unknown argument {other:?}; use --quick, --only WORD, --fetchall PATH, \
                     --baseline PATH, --out FILE"
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

fn client_main(workers: &str, file: &Path) -> ExitCode {
    let workers = match workers.parse::<usize>() {
        Ok(w) if w > 0 => w,
        _ => {
            eprintln!("--client: the worker count must be a positive number");
            return ExitCode::from(2);
        }
    };
    match drivers::library_client(workers, file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("--client: {e}");
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
        // Not the million URLs: the baseline's memory there is not the question, and time is.
        for case in cases.iter_mut().filter(|c| c.n <= 100_000) {
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
        let rows = run_case(&case, &server, &runner, &tools, dir)?;
        measured.push(Measured { case, rows });
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
    for m in &measured {
        write_case(&mut report, m, &tools, dir);
    }
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

/// The URL list of a case, and the same list as a curl config; returns the first URL.
fn write_inputs(case: &Case, server: &Server, urls: &Path, config: &Path) -> io::Result<String> {
    let base = server.url(&case.route);
    let mut list = BufWriter::new(File::create(urls)?);
    let needs_config = case.clients.contains(&Client::CurlParallel);
    let mut curl = BufWriter::new(File::create(config)?);
    for i in 0..case.n {
        let url = format!("{base}?i={i}");
        writeln!(list, "{url}")?;
        if needs_config {
            curl.write_all(curl_config_line(&url).as_bytes())?;
        }
    }
    list.flush()?;
    curl.flush()?;
    Ok(format!("{base}?i=0"))
}

fn run_case(
    case: &Case,
    server: &Server,
    runner: &Runner,
    tools: &Tools,
    dir: &Path,
) -> io::Result<Vec<Row>> {
    let urls = dir.join("urls.txt");
    let curl_config = dir.join("urls.curl");
    let first_url = write_inputs(case, server, &urls, &curl_config)?;
    let inputs = Inputs {
        urls: &urls,
        curl_config: &curl_config,
        first_url: &first_url,
        workers: case.workers,
    };
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
            let sample = run_once(case, row.client, server, runner, tools, &inputs)?;
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
    server: &Server,
    runner: &Runner,
    tools: &Tools,
    inputs: &Inputs<'_>,
) -> io::Result<Sample> {
    let before = server.connections_accepted();
    let cpu_before = measure::own_cpu();
    let server_cpu = || Some(measure::own_cpu()?.saturating_sub(cpu_before?));
    let Some((program, args)) = tools.command(client, inputs) else {
        let started = Instant::now();
        let good = drivers::raw(server.addr(), &case.route, case.n, case.workers, case.bytes);
        let wall = started.elapsed();
        return Ok(Sample {
            wall,
            rss_kib: None,
            cpu: None,
            server_cpu: server_cpu(),
            connections: server.connections_accepted() - before,
            check: if good == case.n {
                Ok(good)
            } else {
                Err(format!("{good} good responses for {} URLs", case.n))
            },
        });
    };
    let finished = runner.run(&program, &args, case.rss)?;
    let connections = server.connections_accepted() - before;
    let server_cpu = server_cpu();
    let check = match finished.status {
        None => Err(finished.stderr),
        Some(status) => check_output(&finished.stdout, client.format(), case.n, case.bytes)
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

fn write_case(report: &mut String, m: &Measured, tools: &Tools, dir: &Path) {
    let case = &m.case;
    let _ = writeln!(report, "\n## {} ({} rounds)\n", case.title, case.rounds);
    let mut head = vec!["client", "median s", "min-max s"];
    match case.rate {
        Some(Rate::Requests) => head.push("req/s"),
        Some(Rate::Bytes) => head.push("MB/s"),
        None => {}
    }
    if case.ideal.is_some() {
        head.push("x ideal");
    }
    head.extend([
        "x fetchall",
        "CPU s",
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
                case.n as f64 * case.bytes as f64 / MB / median
            )),
            None => {}
        }
        if let Some(ideal) = case.ideal {
            cells.push(format!("{:.3}", median / ideal.as_secs_f64()));
        }
        cells.push(reference.map_or("-".into(), |(_, r)| {
            format!("{:.2}", median / r.as_secs_f64())
        }));
        for cpu in [row.median_of(|s| s.cpu), row.median_of(|s| s.server_cpu)] {
            cells.push(cpu.map_or("-".into(), |t| format!("{:.2}", t.as_secs_f64())));
        }
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
    let _ = writeln!(report, "\ncommands:");
    let urls = dir.join("urls.txt");
    let inputs = Inputs {
        urls: &urls,
        curl_config: &dir.join("urls.curl"),
        first_url: "URL",
        workers: case.workers,
    };
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

/// One of the benchmark's targets (BENCHMARKS.md): what was measured against what was asked.
struct Target {
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

fn write_targets(report: &mut String, measured: &[Measured], quick: bool) {
    let mut targets = Vec::new();
    for (workers, limit) in [(5, 1.04), (50, 1.10)] {
        let m = find(measured, "latency", workers, None);
        targets.push(Target {
            name: format!("latency W={workers}: time / ideal"),
            measured: m.and_then(|m| {
                let ideal = m.case.ideal?.as_secs_f64();
                Some(reference(m)?.1.as_secs_f64() / ideal)
            }),
            limit,
            at_most: true,
        });
    }
    let speedup = |m: Option<&Measured>, peer: Client| {
        let m = m?;
        Some(m.median(peer)?.as_secs_f64() / reference(m)?.1.as_secs_f64())
    };
    let throughput = find(measured, "throughput", 50, None);
    targets.push(Target {
        name: "throughput W=50: req/s over curl --parallel's".into(),
        measured: speedup(throughput, Client::CurlParallel),
        limit: 1.5,
        at_most: false,
    });
    targets.push(Target {
        name: "throughput W=50: req/s over Python's".into(),
        measured: speedup(throughput, Client::Python),
        limit: 15.0,
        at_most: false,
    });
    for workers in [5, 50] {
        targets.push(Target {
            name: format!("bandwidth W={workers}: MB/s over curl --parallel's"),
            measured: speedup(
                find(measured, "bandwidth", workers, None),
                Client::CurlParallel,
            ),
            limit: 1.2,
            at_most: false,
        });
    }
    targets.push(Target {
        name: "startup: time on one URL over curl's".into(),
        measured: speedup(find(measured, "startup", 1, None), Client::Curl).map(|s| 1.0 / s),
        limit: 2.0,
        at_most: true,
    });
    let rss = |m: Option<&Measured>| {
        let m = m?;
        let (client, _) = reference(m)?;
        m.row(client)?.peak_rss_mib()
    };
    targets.push(Target {
        name: "1 GiB body: peak RSS MiB".into(),
        measured: rss(find(measured, "1gib", 1, None)),
        limit: 16.0,
        at_most: true,
    });
    targets.push(Target {
        name: "1,000,000 URLs: peak RSS MiB".into(),
        measured: rss(find(measured, "scale", 50, Some(1_000_000))),
        limit: 32.0,
        at_most: true,
    });

    let _ = writeln!(report, "\n## Targets\n");
    if quick {
        let _ = writeln!(
            report,
            "A quick run: fewer URLs and rounds than the issue's cases (two batches of latency \
             are mostly start-up), so these verdicts are only a smoke test of the full run's.\n"
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
