"""Python's ThreadPoolExecutor cost per task, the reference for benches/pool.rs.

Submits N no-op tasks (each returns its index), then collects every result through
concurrent.futures.as_completed, exactly as the Rust benchmark does with fetchall's handles.
Prints microseconds per task: the median of the rounds, with min-max. Building and shutting
down the executor is not timed.

    python3 benches/python/pool_cost.py                 # N=100000, 4 workers, 5 rounds
    python3 benches/python/pool_cost.py --tasks 20000 --workers 1 2 4 --rounds 3
"""

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed


def no_op(i):
    return i


def measure(workers, tasks):
    """Seconds to submit `tasks` no-op tasks and collect them all through as_completed."""
    with ThreadPoolExecutor(max_workers=workers) as executor:
        start = time.perf_counter()
        futures = [executor.submit(no_op, i) for i in range(tasks)]
        total = sum(f.result() for f in as_completed(futures))
        elapsed = time.perf_counter() - start
    if total != tasks * (tasks - 1) // 2:
        raise AssertionError("a result went missing")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[4])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    samples = {w: [] for w in args.workers}
    for round_no in range(args.rounds):
        # Rotate the order each round, as the Rust benchmark does.
        shift = round_no % len(args.workers)
        for workers in args.workers[shift:] + args.workers[:shift]:
            samples[workers].append(measure(workers, args.tasks) / args.tasks * 1e6)
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)

    print(f"Python {sys.version.split()[0]} ThreadPoolExecutor, {args.tasks} no-op tasks,"
          f" median of {args.rounds} rounds (min-max)")
    print("| workers | median us/task | min-max |")
    print("|---:|---:|---:|")
    for workers in args.workers:
        s = samples[workers]
        print(f"| {workers} | {statistics.median(s):.2f} | {min(s):.2f}-{max(s):.2f} |")


if __name__ == "__main__":
    main()
