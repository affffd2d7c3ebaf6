"""The long fuzz campaign over InfluxDB answers (the test suite runs 60 seeded cases of the same thing).

Run by hand (not part of the test suite)::

    .venv/bin/python -m bench.influx_fuzz [--cases 2000] [--first-seed 100000] [--lines 40] [--batch 16]

Each case is :func:`tests.test_influx_fuzz.run_case`: a fresh local store with ``--lines`` outbox lines,
the real :class:`~hipback.ingest.sync.SyncWorker` and :class:`~hipback.ingest.influx.writer.InfluxWriter`
(timeout 0.3 s, one retry) against :class:`tests.hostile_influx.HostileInflux` answering every request
with a seeded random answer, then an honest server. A broken property (an exception other than
``DatabaseError``, a multi-line or unprintable message, a hang, a line marked delivered without a 204, a
delivered line sent again, a line neither delivered nor set aside at the end) stops the campaign with
the seed that reproduces it. Printed: cases, requests, answers by kind, and the time per case.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_influx_fuzz import run_case  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--first-seed", type=int, default=100_000)
    ap.add_argument("--lines", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    kinds: Counter[str] = Counter()
    errors = 0
    requests = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.cases):
            seed = args.first_seed + i
            try:
                outcome = run_case(seed, Path(tmp), n_lines=args.lines, batch_size=args.batch)
            except AssertionError as exc:
                print(f"PROPERTY BROKEN at seed {seed}: {exc}")
                sys.exit(1)
            requests += len(outcome["answers"])
            errors += outcome["error"] is not None
            for label in outcome["answers"]:
                kinds[label.split(" ")[0] if label[0].isdigit() else label.split(" (")[0]] += 1
            if (i + 1) % 200 == 0:
                done = time.perf_counter() - t0
                print(f"{i + 1} cases, {requests} fuzzed requests, {done:.0f} s", flush=True)
    elapsed = time.perf_counter() - t0
    last = args.first_seed + args.cases - 1
    print(f"{args.cases} cases (seeds {args.first_seed}..{last}), {requests} fuzzed requests, {errors} cases "
          f"ended in a DatabaseError (one sentence), 0 properties broken; "
          f"{elapsed:.0f} s ({elapsed / args.cases * 1000:.0f} ms per case)")
    print("answers by kind (status code or failure):")
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:28s} {n:6d}")


if __name__ == "__main__":
    main()
