//! The Python FAQ's "Can't we get rid of the Global Interpreter Lock?"
//! (<https://docs.python.org/3/faq/library.html#can-t-we-get-rid-of-the-global-interpreter-lock>),
//! answered by measurement.
//!
//! The FAQ explains that a multi-threaded Python program "effectively only uses one CPU", so
//! CPU-bound work must be split across processes. Rust has no GIL: threads run Rust code in
//! parallel. This example runs one CPU-bound job (counting primes by trial division) three ways
//! and prints the wall time of each:
//!
//! - `Sequential`: on the calling thread, the baseline;
//! - fetchall's `ThreadPool`: coarse chunks, one task each;
//! - rayon's `par_iter`: fine-grained work stealing, which is what rayon is built for.
//!
//! Which executor fits which work: blocking I/O (fetching URLs, the point of fetchall) belongs on
//! a fixed pool with many more threads than cores, because its threads mostly wait. Fine-grained
//! CPU work belongs on rayon, with one thread per core and work stealing to balance uneven
//! pieces. Coarse CPU chunks run well on either.
//!
//! Run it with `cargo run --release --features rayon --example gil`. The speed-up is bounded by
//! the number of cores (`nproc`); on a 2-core machine, expect about 2x.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use fetchall::{Executor, Sequential, ThreadPool, as_completed};
use rayon::prelude::*;

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// Primes below `limit`, counted in `chunks` tasks on `executor`. A sum needs no order, so the
/// chunks are collected as they complete: with `map`, which yields in input order through a
/// small window, one slow chunk (the last ones are the slowest: trial division takes longer as
/// numbers grow) would hold back the rest and leave a core idle.
fn count_on<E: Executor>(executor: &E, limit: u64, chunks: u64) -> u64 {
    let step = limit.div_ceil(chunks);
    let handles: Vec<_> = (0..chunks)
        .map(|i| {
            executor.submit(move || {
                (i * step..((i + 1) * step).min(limit))
                    .filter(|&n| is_prime(n))
                    .count() as u64
            })
        })
        .collect();
    as_completed(handles).map(|h| h.join().unwrap_or(0)).sum()
}

fn timed(f: impl FnOnce() -> u64) -> (u64, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn run(out: &mut impl Write, limit: u64) -> io::Result<Vec<u64>> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let pool = ThreadPool::new(cpus);
    let runs = [
        (
            "Sequential (one thread)",
            timed(|| count_on(&Sequential, limit, 64)),
        ),
        ("fetchall ThreadPool", timed(|| count_on(&pool, limit, 64))),
        (
            "rayon par_iter",
            timed(|| (0..limit).into_par_iter().filter(|&n| is_prime(n)).count() as u64),
        ),
    ];
    let base = runs[0].1.1.as_secs_f64();
    writeln!(out, "primes below {limit}, {cpus} cores")?;
    for (name, (count, took)) in &runs {
        let speedup = base / took.as_secs_f64().max(f64::EPSILON);
        writeln!(
            out,
            "{name:<24} {count} primes in {took:>10.2?}  ({speedup:.2}x)"
        )?;
    }
    Ok(runs.iter().map(|(_, (count, _))| *count).collect())
}

fn main() -> io::Result<()> {
    run(&mut io::stdout().lock(), 3_000_000).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_executor_counts_the_same_primes() {
        let mut out = Vec::new();
        let counts = run(&mut out, 20_000).unwrap();
        // There are 2262 primes below 20,000.
        assert_eq!(counts, [2262, 2262, 2262]);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("fetchall ThreadPool"), "{text}");
    }

    #[test]
    fn is_prime_agrees_with_small_cases() {
        let primes: Vec<u64> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    }
}
