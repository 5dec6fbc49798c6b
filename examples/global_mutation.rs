//! Port of the Python FAQ answer "What kinds of global value mutation are thread-safe?"
//! (<https://docs.python.org/3/faq/library.html#what-kinds-of-global-value-mutation-are-thread-safe>).
//!
//! ```text
//! cargo run --example global_mutation
//! ```
//!
//! The FAQ has no program here, only two lists: operations on shared lists (`L`, `L1`, `L2`), dicts
//! (`D`, `D1`, `D2`) and objects (`x`, `y`) that CPython's global interpreter lock makes atomic, and
//! four that it does not (`i = i+1`, `L.append(L[-1])`, `L[i] = L[j]`, `D[x] = D[x] + 1`). This
//! example prints both lists as one table with what Rust makes of each operation, runs every Rust
//! equivalent in the table from several threads at once, then counts `i = i+1` three ways.
//!
//! # What Rust makes of it
//! Python lets every thread mutate every object, and whether an operation is safe depends on how
//! many bytecodes it takes. Rust asks another question, at compile time: who may mutate this value
//! now? Threads share a value through `&T`, and `&T` allows no mutation unless `T` synchronises it
//! (`Mutex`, `RwLock`, atomics). So the unsynchronised versions of the FAQ's operations are refused.
//! Examples cannot hold `compile_fail` doctests, so here they are with rustc 1.95's errors:
//!
//! ```text
//! let mut l = Vec::new();
//! thread::scope(|s| {
//!     s.spawn(|| l.push(1));
//!     s.spawn(|| l.push(2)); // error[E0499]: cannot borrow `l` as mutable more than once at a time
//! });
//!
//! let l: Arc<Vec<i32>> = Arc::new(Vec::new());
//! let l2 = Arc::clone(&l);
//! thread::spawn(move || l2.push(1)); // error[E0596]: cannot borrow data in an `Arc` as mutable
//!
//! let i = Arc::new(RefCell::new(0)); // single-threaded interior mutability
//! let j = Arc::clone(&i);
//! thread::spawn(move || *j.borrow_mut() += 1);
//! // error[E0277]: `RefCell<i32>` cannot be shared between threads safely
//!
//! static I: usize = 0;
//! I += 1; // error[E0594]: cannot assign to immutable static item `I`
//! static mut J: usize = 0;
//! J += 1; // error[E0133]: use of mutable static is unsafe and requires unsafe block
//!         // (and this crate has `unsafe_code = "forbid"`)
//!
//! let keys = d.lock().unwrap().keys(); // error[E0716]: temporary value dropped while borrowed
//! for k in keys {}                     // (the keys would outlive the lock)
//!
//! let mut l = l.lock().unwrap();
//! l.push(l[l.len() - 1]); // error[E0502]: cannot borrow `l` as immutable because it is also
//!                         // borrowed as mutable: read `L[-1]` into a local first, then push
//! ```
//!
//! What the compiler cannot know is where *your* critical section ends. `i = i+1` written as a read
//! under one `lock()` and a write under another compiles, and loses updates when another thread
//! writes in between. The last table shows it: a `Mutex` held for the whole `+= 1` and
//! `AtomicUsize::fetch_add` are exact; the two-lock version usually is not. How much it loses
//! depends on the scheduler, and it can be nothing on a given run, so the tests only check that it
//! never counts more than the exact total. To make the loss show on most runs, it calls
//! `thread::yield_now()` between its read and its write, as a thread switch would; that widens the
//! window, it does not make the race, which is there without it.
//!
//! `Ordering::Relaxed` is enough for a counter: `fetch_add` is one indivisible read-modify-write
//! at every ordering, and the stronger orderings only matter when the counter tells another thread
//! that some *other* data is ready. The final read comes after `thread::scope` has joined the
//! threads, and joining makes everything they did visible.
//!
//! The table's "Rust equivalent" column is the code that runs: each row's code is written once and
//! `stringify!`ed for the table.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// The FAQ's shared values. Each is behind what lets threads share it, and each row takes what it
/// needs: `x`, `y`, `i`, `j` are plain values, as in the FAQ's list.
#[derive(Debug)]
struct Globals {
    l: Mutex<Vec<i32>>,
    l1: Mutex<Vec<i32>>,
    l2: Mutex<Vec<i32>>,
    d: Mutex<HashMap<i32, i32>>,
    d1: Mutex<HashMap<i32, i32>>,
    d2: Mutex<HashMap<i32, i32>>,
    /// The FAQ's object `x`, the one whose `field` is set.
    obj: Mutex<Obj>,
    /// The FAQ's int `i`, the one that is incremented.
    counter: AtomicUsize,
    x: i32,
    y: i32,
    i: usize,
    j: usize,
}

/// How many items `Globals::new` puts in `L`.
const L_START: usize = 3;

impl Globals {
    fn new() -> Self {
        Globals {
            l: Mutex::new(vec![3, 1, 2]),
            l1: Mutex::new(vec![1, 2, 3]),
            l2: Mutex::new(vec![4, 5]),
            d: Mutex::new(HashMap::from([(1, 1)])),
            d1: Mutex::new(HashMap::new()),
            d2: Mutex::new(HashMap::from([(2, 2)])),
            obj: Mutex::new(Obj { field: 0 }),
            counter: AtomicUsize::new(0),
            x: 1,
            y: 2,
            i: 0,
            j: 1,
        }
    }
}

/// An object with a field, for `x.field = y`.
#[derive(Debug)]
struct Obj {
    field: i32,
}

/// One line of the FAQ's lists, and its Rust equivalent.
struct Row {
    python: &'static str,
    atomic_in_cpython: bool,
    /// The source of `run`.
    rust: &'static str,
    enforces: &'static str,
    run: fn(&Globals),
}

/// Builds a [`Row`] whose `rust` is the text of the code that `run` runs.
macro_rules! row {
    ($python:literal, $atomic:literal, $enforces:literal, |$globals:pat_param| $($code:tt)+) => {
        Row {
            python: $python,
            atomic_in_cpython: $atomic,
            rust: stringify!($($code)+),
            enforces: $enforces,
            run: |$globals| { $($code)+ },
        }
    };
}

/// The FAQ's two lists, in its order. A row that needs `x`, `y`, `i` or `j` matches
/// `&Globals { ref l, x, .. }`, copying the values and borrowing the rest, so that its code reads
/// like the Python; a row that only borrows matches `Globals { l, .. }`.
// Some rows bind a result, as the Python does (`x = L.pop()`), and do nothing with it.
#[allow(unused_variables)]
fn rows() -> [Row; 15] {
    [
        row!("L.append(x)", true,
            "`push` needs `&mut Vec`, and threads get one only through the lock",
            |&Globals { ref l, x, .. }| l.lock().unwrap().push(x);),
        row!("L1.extend(L2)", true,
            "the compiler does not order locks for you: copy `L2` first, or always lock `L1` before `L2`",
            |Globals { l1, l2, .. }| let l2 = l2.lock().unwrap().clone(); l1.lock().unwrap().extend(l2);),
        row!("x = L[i]", true,
            "reading locks too; out of range is `None`, not `IndexError`",
            |&Globals { ref l, i, .. }| let x = l.lock().unwrap().get(i).copied();),
        row!("x = L.pop()", true,
            "an empty list gives `None`, a value to handle, not an exception",
            |Globals { l, .. }| let x = l.lock().unwrap().pop();),
        row!("L1[i:j] = L2", true,
            "one critical section per lock; a range past the end panics",
            |&Globals { ref l1, ref l2, i, j, .. }| let l2 = l2.lock().unwrap().clone(); l1.lock().unwrap().splice(i..j, l2);),
        row!("L.sort()", true,
            "no thread sees a half-sorted list: the lock is held until `sort` returns",
            |Globals { l, .. }| l.lock().unwrap().sort();),
        row!("x = y", true,
            "a `static` is immutable and `static mut` needs `unsafe`: a global sits in a `Mutex` or an atomic",
            |&Globals { ref obj, y, .. }| *obj.lock().unwrap() = Obj { field: y };),
        row!("x.field = y", true,
            "a field is reached through the guard, or is an atomic itself",
            |&Globals { ref obj, y, .. }| obj.lock().unwrap().field = y;),
        row!("D[x] = y", true,
            "`insert` needs `&mut HashMap`, and threads get one only through the lock",
            |&Globals { ref d, x, y, .. }| d.lock().unwrap().insert(x, y);),
        row!("D1.update(D2)", true,
            "as `extend`: copy `D2`, then lock `D1`",
            |Globals { d1, d2, .. }| let d2 = d2.lock().unwrap().clone(); d1.lock().unwrap().extend(d2);),
        row!("D.keys()", true,
            "the keys borrow the guard: copy them out before it is dropped (E0716)",
            |Globals { d, .. }| let keys: Vec<i32> = d.lock().unwrap().keys().copied().collect();),
        row!("i = i+1", false,
            "one atomic read-modify-write; a plain `usize` cannot be mutated through `&`",
            |Globals { counter, .. }| counter.fetch_add(1, Ordering::Relaxed);),
        row!("L.append(L[-1])", false,
            "read and push under one guard; two `lock()`s compile, and race",
            |Globals { l, .. }| let mut l = l.lock().unwrap(); let last = l[l.len() - 1]; l.push(last);),
        row!("L[i] = L[j]", false,
            "one guard for the read and the write; two `lock()`s compile, and race",
            |&Globals { ref l, i, j, .. }| let mut l = l.lock().unwrap(); l[i] = l[j];),
        row!("D[x] = D[x] + 1", false,
            "`entry` updates in place under one guard; two `lock()`s compile, and race",
            |&Globals { ref d, x, .. }| *d.lock().unwrap().entry(x).or_insert(0) += 1;),
    ]
}

/// Runs `op` `times` times on each of `threads` threads, all at once, and returns when all are done.
fn hammer(threads: usize, times: usize, op: impl Fn() + Sync) {
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| (0..times).for_each(|_| op()));
        }
    });
}

/// Writes one Markdown table row, each cell padded to its column's width.
fn table_row(out: &mut impl Write, cells: &[impl AsRef<str>], widths: &[usize]) -> io::Result<()> {
    for (cell, width) in cells.iter().zip(widths) {
        write!(out, "| {:width$} ", cell.as_ref())?;
    }
    writeln!(out, "|")
}

/// Writes a Markdown table: a header, a separator, then the rows.
fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .fold(header[c].len(), usize::max)
        })
        .collect();
    table_row(out, header, &widths)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    table_row(out, &rule, &widths)?;
    rows.iter().try_for_each(|r| table_row(out, r, &widths))
}

/// Prints the FAQ's lists with their Rust equivalents, runs every equivalent `rounds` times on each
/// of `threads` threads, then counts `i = i+1` `increments` times on each of `threads` threads.
fn run(out: &mut impl Write, threads: usize, rounds: usize, increments: usize) -> io::Result<()> {
    faq_table(out, threads, rounds)?;
    writeln!(out)?;
    count_increments(out, threads, increments)
}

/// Prints the table of the FAQ's operations, then runs every row's code `rounds` times on each of
/// `threads` threads and prints what the two checkable rows counted.
fn faq_table(out: &mut impl Write, threads: usize, rounds: usize) -> io::Result<()> {
    let rows = rows();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let atomic = if r.atomic_in_cpython { "yes" } else { "no" };
            vec![
                format!("`{}`", r.python),
                atomic.to_owned(),
                format!("`{}`", r.rust),
                r.enforces.to_owned(),
            ]
        })
        .collect();
    let header = [
        "Python operation",
        "atomic in CPython?",
        "Rust equivalent",
        "what Rust enforces",
    ];
    table(out, &header, &cells)?;

    let globals = Globals::new();
    hammer(threads, rounds, || {
        rows.iter().for_each(|r| (r.run)(&globals))
    });
    let total = threads * rounds;
    // Per round, `L` gains one item from `L.append(x)`, loses one to `L.pop()` and gains one from
    // `L.append(L[-1])`. A thread pops only after its own append, so the pop always finds one.
    let len = globals.l.lock().unwrap().len();
    let i = globals.counter.load(Ordering::Relaxed);
    writeln!(out)?;
    writeln!(
        out,
        "Ran every Rust equivalent {rounds} times on each of {threads} threads:"
    )?;
    writeln!(
        out,
        "i = {i} (exact: {total}), len(L) = {len} (exact: {})",
        L_START + total
    )
}

/// Counts `i = i+1`, `increments` times on each of `threads` threads, with one lock, with an atomic
/// and with two locks, and prints a table of the totals.
fn count_increments(out: &mut impl Write, threads: usize, increments: usize) -> io::Result<()> {
    let locked = Mutex::new(0_usize);
    hammer(threads, increments, || *locked.lock().unwrap() += 1);
    let atomic = AtomicUsize::new(0);
    hammer(threads, increments, || {
        atomic.fetch_add(1, Ordering::Relaxed);
    });
    let two_locks = Mutex::new(0_usize);
    hammer(threads, increments, || {
        let read = *two_locks.lock().unwrap();
        thread::yield_now(); // widen the window in which another thread can write
        *two_locks.lock().unwrap() = read + 1; // may overwrite what others wrote meanwhile
    });

    let exact = threads * increments;
    let counted = [
        (
            "`*counter.lock().unwrap() += 1` (one lock)",
            locked.into_inner().unwrap(),
        ),
        (
            "`counter.fetch_add(1, Ordering::Relaxed)`",
            atomic.into_inner(),
        ),
        (
            "`let v = *counter.lock().unwrap();` then `*counter.lock().unwrap() = v + 1;` (two locks)",
            two_locks.into_inner().unwrap(),
        ),
    ];
    let cells: Vec<Vec<String>> = counted
        .iter()
        .map(|(rust, total)| {
            vec![
                (*rust).to_owned(),
                total.to_string(),
                exact.saturating_sub(*total).to_string(),
            ]
        })
        .collect();
    writeln!(
        out,
        "`i = i+1`, {increments} times on each of {threads} threads (exact total: {exact}):"
    )?;
    writeln!(out)?;
    table(out, &["Rust", "total", "lost updates"], &cells)
}

fn main() -> io::Result<()> {
    run(&mut io::stdout().lock(), 4, 100, 100_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAQ_ATOMIC: [&str; 11] = [
        "L.append(x)",
        "L1.extend(L2)",
        "x = L[i]",
        "x = L.pop()",
        "L1[i:j] = L2",
        "L.sort()",
        "x = y",
        "x.field = y",
        "D[x] = y",
        "D1.update(D2)",
        "D.keys()",
    ];
    const FAQ_NOT_ATOMIC: [&str; 4] = [
        "i = i+1",
        "L.append(L[-1])",
        "L[i] = L[j]",
        "D[x] = D[x] + 1",
    ];

    fn output(threads: usize, rounds: usize, increments: usize) -> String {
        let mut out = Vec::new();
        run(&mut out, threads, rounds, increments).expect("writing to a Vec");
        String::from_utf8(out).expect("utf-8")
    }

    /// The cells of every Markdown table row in `text`, trimmed, without the header separators.
    fn table_rows(text: &str) -> Vec<Vec<&str>> {
        let rows = text
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| --"));
        rows.map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect()
    }

    /// The number right after `label` in `line`.
    fn number_after(line: &str, label: &str) -> usize {
        let (_, rest) = line
            .split_once(label)
            .unwrap_or_else(|| panic!("no {label:?} in {line}"));
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().expect("a number")
    }

    #[test]
    fn the_table_lists_the_faq_operations_in_order_with_their_atomicity() {
        let text = output(2, 1, 1);
        let rows = table_rows(&text);
        assert_eq!(
            rows[0],
            [
                "Python operation",
                "atomic in CPython?",
                "Rust equivalent",
                "what Rust enforces"
            ]
        );
        let ops: Vec<_> = rows[1..16].iter().map(|r| r[0].trim_matches('`')).collect();
        assert_eq!(
            ops,
            FAQ_ATOMIC
                .iter()
                .chain(&FAQ_NOT_ATOMIC)
                .copied()
                .collect::<Vec<_>>()
        );
        for (n, r) in rows[1..16].iter().enumerate() {
            assert_eq!(r.len(), 4, "{r:?}");
            assert_eq!(
                r[1],
                if n < FAQ_ATOMIC.len() { "yes" } else { "no" },
                "{r:?}"
            );
            assert!(
                r[2].starts_with('`') && r[2].ends_with(";`"),
                "Rust code in backticks: {r:?}"
            );
            assert!(!r[3].is_empty(), "{r:?}");
        }
    }

    #[test]
    fn every_equivalent_runs_safely_on_many_threads() {
        let text = output(4, 200, 1);
        let line = text
            .lines()
            .find(|l| l.starts_with("i = "))
            .expect("the counts line");
        assert_eq!(number_after(line, "i = "), 800);
        assert_eq!(number_after(line, "len(L) = "), L_START + 800);
    }

    #[test]
    fn only_the_two_lock_counter_can_lose_updates() {
        let text = output(4, 1, 10_000);
        assert!(text.contains("(exact total: 40000)"), "{text}");
        let counted = &table_rows(&text)[17..];
        assert_eq!(counted.len(), 3, "{counted:?}");
        assert_eq!(counted[0][1..], ["40000", "0"], "one lock is exact");
        assert_eq!(counted[1][1..], ["40000", "0"], "fetch_add is exact");
        let (total, lost): (usize, usize) = (
            counted[2][1].parse().expect("total"),
            counted[2][2].parse().expect("lost"),
        );
        assert_eq!(total + lost, 40_000);
        assert!(
            (1..=40_000).contains(&total),
            "two locks count at most the exact total: {total}"
        );
    }
}
