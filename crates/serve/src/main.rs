//! `fetchall-serve [PORT]`: the loopback test server as a program, for trying fetchall (or the
//! Python example) by hand. It serves 127.0.0.1:PORT (a free port without one), prints its base
//! URL on the first line and then its routes, and runs until it is killed (Ctrl-C).
//!
//! `cargo run -p fetchall-serve -- 8000` is the server the README's and `fetchall --help`'s
//! examples talk to.

use std::io::{self, Write};
use std::process::ExitCode;
use std::thread;

use fetchall_serve::Server;

/// The route table of the crate docs, printed for the terminal.
const ROUTES: &str = include_str!("../ROUTES.md");

const USAGE: &str = "usage: fetchall-serve [PORT]\n\
                     Serves fetchall's test routes on 127.0.0.1:PORT (default: a free port) until killed.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match args.as_slice() {
        [] => 0,
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [port] => match port.parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("fetchall-serve: {port:?} is not a port number (0 to 65535)\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("fetchall-serve: one argument at most\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::bind(port) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("fetchall-serve: cannot serve on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A closed stdout is no reason to stop serving: write errors are ignored.
    let _ = print_banner(&mut io::stdout().lock(), &server);
    // The server's threads do the work; this one only keeps the process alive.
    loop {
        thread::park();
    }
}

/// The base URL alone on the first line (for scripts), then the routes.
fn print_banner(out: &mut impl Write, server: &Server) -> io::Result<()> {
    writeln!(out, "{}", server.url("").trim_end_matches('/'))?;
    writeln!(out)?;
    writeln!(
        out,
        "Routes (GET and HEAD; any other path is 404). Stop with Ctrl-C."
    )?;
    for row in ROUTES.lines().filter_map(cells).skip(1) {
        writeln!(out, "  {:<24} {}", row.0, row.1)?;
    }
    out.flush()
}

/// The two cells of a table row, without Markdown's backticks and link brackets; `None` for
/// the separator row and anything that is not a row.
fn cells(line: &str) -> Option<(String, String)> {
    let plain = |cell: &str| {
        cell.trim()
            .replace("[`", "")
            .replace("`]", "")
            .replace('`', "")
    };
    let inner = line.strip_prefix('|')?.strip_suffix('|')?;
    let (route, response) = inner.split_once(" | ")?;
    if route.starts_with("---") {
        return None;
    }
    Some((plain(route), plain(response)))
}
