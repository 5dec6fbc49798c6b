//! The `fetchall` binary's tests, in one test binary (ripgrep's shape: `autotests = false` and
//! one `tests/tests.rs`): one link step instead of one per file, and the shared [`support`] is
//! compiled once, every helper of it used by some test.

mod support;

mod cli;
mod cli_checks;
mod cli_reports;
mod cli_request;
mod cli_scheduling;
mod cli_signals;
mod cli_terminal;
mod cli_tls;
