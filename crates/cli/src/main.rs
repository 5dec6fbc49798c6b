//! The `fetchall` command: fetch every URL of a file on a thread pool and print each result as
//! it completes, as the `ThreadPoolExecutor` example in Python's docs does.
//!
//! This file only parses the arguments and turns the run's end into an exit status; see
//! [`run::run`]. The modules below are the binary's own: the library never prints.

mod baseline;
mod cli;
mod demo;
mod duration;
mod generate;
mod hosts;
mod input;
mod order;
mod output;
mod progress;
mod rate;
mod report;
mod run;
mod shard;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(what) = args.generate {
        return match generate::generate(what, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "fetchall: cannot write it: {e}");
                ExitCode::from(run::EXIT_USAGE)
            }
        };
    }
    match run::run(&args) {
        Ok(code) => code,
        Err(message) => {
            // Not eprintln!: it panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "fetchall: {message}");
            ExitCode::from(run::EXIT_USAGE)
        }
    }
}
