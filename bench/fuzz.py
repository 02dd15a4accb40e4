"""`make fuzz`: the whole-machine fuzzer of tests/fuzz_machine.py, for as long as you like.

    python bench/fuzz.py [--seed S] [-n N] [--batch B] [--jobs J]

Runs N sequences (default 50,000) of the state machine that ``make test`` runs 2,000 of, not
derandomized: batch k of B sequences is seeded with S * 1,000,000 + k, so the same S, N and B
give the same sequences, and another S explores elsewhere. ``--jobs J`` runs the batches in J
processes (batch k in process k mod J). On the first failure hypothesis shrinks it, prints
the smallest sequence of rules that shows it, and this exits 1 naming the seed and batch.
At the end it prints how many sequences, steps and seconds it took, and what the steps did.
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))

from hypothesis import seed as hypothesis_seed                       # noqa: E402
from hypothesis.stateful import run_state_machine_as_test            # noqa: E402

import fuzz_machine                                                   # noqa: E402


def batches(n: int, size: int) -> list[tuple[int, int]]:
    """(batch number, sequences in it) for n sequences in batches of ``size``."""
    return [(k, min(size, n - k * size)) for k in range((n + size - 1) // size)]


def run_batches(seed: int, work, progress=None):
    """Run the given batches in this process; returns (sequences done, the failure or None)."""
    done = 0
    for k, size in work:
        factory = hypothesis_seed(seed * 1_000_000 + k)(lambda: fuzz_machine.WholeMachine())
        try:
            run_state_machine_as_test(factory, settings=fuzz_machine.fuzz_settings(size, derandomize=False))
        except BaseException as e:
            traceback.print_exception(e)                  # its notes hold the shrunk sequence of rules
            return done, (k, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        done += size
        if progress is not None:
            progress(done)
    return done, None


def _job(args):
    seed, work = args
    done, failed = run_batches(seed, work)
    fuzz_machine.cleanup()
    sys.stdout.flush()                               # a pool worker ends without flushing
    sys.stderr.flush()
    return done, failed, dict(fuzz_machine.STATS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/fuzz.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: the clock's seconds)")
    parser.add_argument("-n", type=int, default=50_000, help="sequences to run (default 50,000)")
    parser.add_argument("--batch", type=int, default=1000, help="sequences per hypothesis run (default 1,000)")
    parser.add_argument("--jobs", type=int, default=1, help="processes to run the batches in (default 1)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.batch < 1 or args.jobs < 1:
        parser.error("-n, --batch and --jobs are whole numbers, at least 1")
    seed = int(time.time()) if args.seed is None else args.seed
    print(f"==> fuzz: {args.n} sequences of up to {fuzz_machine.STEPS} steps, seed {seed}, {args.jobs} "
          f"process(es) (again: make fuzz SEED={seed} N={args.n})", flush=True)
    t0 = time.perf_counter()
    work = batches(args.n, args.batch)

    def progress(done):
        secs = time.perf_counter() - t0
        print(f"    {done} sequences, {fuzz_machine.STATS['steps']} steps, {secs:.0f} s "
              f"({done / secs:.1f} sequences/s)", flush=True)

    if args.jobs == 1:
        done, failed = run_batches(seed, work, progress)
        failures = [failed] if failed else []
        stats = collections.Counter(fuzz_machine.STATS)
    else:
        shares = [(seed, work[j::args.jobs]) for j in range(args.jobs)]
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            results = pool.map(_job, shares)
        done = sum(r[0] for r in results)
        failures = [r[1] for r in results if r[1]]
        stats = collections.Counter()
        for r in results:
            stats.update(r[2])
    secs = time.perf_counter() - t0
    print(f"==> fuzz: {done} sequences, {stats['steps']} steps, {secs:.1f} s ({done / secs:.1f} sequences/s; "
          f"{stats['sequences']} machines built, shrinking included)")
    print("    what the steps did:")
    for name, count in sorted(stats.items()):
        if name not in ("sequences", "steps"):
            print(f"      {count:>9}  {name}")
    for k, what in failures:
        print(f"==> FAILED in batch {k} (seed {seed}): {what}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
