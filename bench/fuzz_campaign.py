"""A longer fuzz campaign over hipback's input boundaries (the test suite runs a bounded slice of it).

Usage::

    python -m bench.fuzz_campaign [--cases N] [--seed S] [--only NAME ...] [--memory-gib G]

Boundaries (``tests/fuzz_boundaries.py`` builds the mutated inputs and checks the property):

- ``file:hipback``, ``file:movella_dot``, ``file:xsens_mt``: mutated recording files (bytes, rows, headers,
  numbers) read by the importer;
- ``folder``: a hipback recording folder with a mutated ``session.json`` (bytes and values);
- ``recording``: a pelvis + thigh recording with one mutated file, read and processed end to end;
- ``config``: mutated session-config TOML text and values, with ``HIPBACK_STORE`` / ``_BLE_BACKEND`` /
  ``_SCAN_TIMEOUT_S`` overrides;
- ``env``: ``hipback sync`` under random ``HIPBACK_*`` settings (loopback hosts only: nothing leaves the
  machine);
- ``store``: truncated, garbled or foreign store files, used read-only and then for writing;
- ``ble:hipback_v1``, ``ble:movella_dot``, ``ble:witmotion``: BLE notification streams of each protocol in
  every payload mode, mutated (bit flips, truncation, extension, splicing, duplicates, replays, reordering,
  drops, sequence jumps and wraparounds, device-time jumps and a clock that stands still, extreme and
  out-of-datasheet values, header fields, empty, huge and random notifications, coalesced and split ones,
  stalls and bursts of arrival times) and followed by a clean tail, through the live session path (decoder,
  rejection counts, clock model, store writer into a temporary store); one case in five feeds mutated
  configuration / info / battery values or register replies to the profile's parsers
  (``tests/fuzz_packets.py`` checks the property after every notification);
- ``ble:long``: per case and protocol, 100,000 notifications of garbage through the same path: decoder and
  clock buffers stay within ``tests.fuzz_packets.BUFFER_BOUNDS`` and a clean tail still decodes.

Property: a one-sentence :class:`~hipback.ingest.errors.HipbackError` or a result that passes the boundary's
invariants; never another exception, a hang (watchdog per case), unbounded memory (an address-space limit
turns it into a MemoryError) or a silently wrong number. Prints, per boundary, the cases run, how many were
accepted and refused, the slowest case, and every failure with the seed that reproduces it
(``--seed-case``). Exit status 1 when any case failed. Figures go to ``bench/README.md``.

For the BLE boundaries a case is *refused* when every mutated notification was refused or held (a reply
case: the parser refused the value), *accepted* when some were taken as plausible samples; below each, the
outcomes per notification (``accepted``, ``held`` bytes of a frame still incomplete, ``rejected:<reason>``)
and the largest buffer sizes seen. ``cpu`` is the process CPU time of the boundary (s): the machine is
shared, so wall time alone says little.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import fuzz_boundaries as fb  # noqa: E402
from tests import fuzz_packets as fp  # noqa: E402

#: relative weight of each boundary in a campaign of N cases per unit
WEIGHTS = {
    "file:hipback": 1.0,
    "file:movella_dot": 1.0,
    "file:xsens_mt": 1.0,
    "folder": 0.5,
    "recording": 0.2,
    "config": 1.0,
    "env": 0.2,
    "store": 0.3,
    "ble:hipback_v1": 1.0,
    "ble:movella_dot": 1.0,
    "ble:witmotion": 1.0,
    "ble:long": 0.001,
}
#: watchdog of a boundary's case in units of --case-timeout-s: a ble:long case feeds 300,000 notifications
#: (about 30 s of CPU; several times that in wall time on the shared machine)
TIMEOUT_FACTOR = {"ble:long": 10}
#: per BLE boundary: the state that tallies notification outcomes and buffer sizes (filled by build)
PACKET_STATE: dict[str, fp.PacketFuzz] = {}


def build(work: Path) -> dict[str, fb.Fuzzer]:
    seeds = fb.make_file_seeds(work / "seeds")
    fuzzers = {
        f"file:{d}": fb.Fuzzer(f"file:{d}", fb.file_case(seeds, fb.fresh_dir(work / d), d)) for d in seeds
    }
    fuzzers["folder"] = fb.Fuzzer("folder", fb.folder_case(seeds, fb.fresh_dir(work / "folder")))
    fuzzers["recording"] = fb.Fuzzer("recording", fb.recording_case(seeds, fb.fresh_dir(work / "recording")))
    fuzzers["config"] = fb.Fuzzer("config", fb.config_case(fb.fresh_dir(work / "config")))
    env_dir = fb.fresh_dir(work / "env")
    fuzzers["env"] = fb.Fuzzer("env", fb.env_case(env_dir, fb.make_env_stores(env_dir)))
    store_seed = fb.make_store_seed(work / "store-seed.sqlite")
    fuzzers["store"] = fb.Fuzzer("store", fb.store_case(store_seed, fb.fresh_dir(work / "store")))
    ble = fb.fresh_dir(work / "ble")
    for kind in fp.KINDS:
        state = PACKET_STATE[f"ble:{kind}"] = fp.PacketFuzz(kind, ble)
        fuzzers[f"ble:{kind}"] = fb.Fuzzer(f"ble:{kind}", fp.packet_case(state))
    state = PACKET_STATE["ble:long"] = fp.PacketFuzz("long", ble)
    fuzzers["ble:long"] = fb.Fuzzer("ble:long", fp.long_case(state))
    return fuzzers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=2000, help="cases per unit weight (per file dialect)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None, help="boundaries to run (default: all)")
    ap.add_argument("--memory-gib", type=float, default=2.0, help="address space a case may add (GiB)")
    ap.add_argument("--case-timeout-s", type=int, default=60, help="watchdog per case (s)")
    ap.add_argument("--seed-case", type=int, default=None, help="rerun one case by its printed seed")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="hipback-fuzz-") as tmp:
        fuzzers = build(Path(tmp))
        names = args.only or list(fuzzers)
        total_fail = 0
        print(f"hipback fuzz campaign: seed {args.seed}, {args.cases} cases per unit, "
              f"SQLite {fb.sqlite_version()}")
        print(f"{'boundary':18s} {'cases':>7s} {'accepted':>9s} {'refused':>8s} {'failed':>7s} "
              f"{'slowest':>9s} {'time':>7s} {'cpu':>7s}")
        for name in names:
            fuzzer = fuzzers[name]
            if args.seed_case is not None:
                outcome = fuzzer.case(random.Random(args.seed_case))
                print(name, args.seed_case, outcome)
                continue
            n = max(1, int(args.cases * WEIGHTS[name]))
            slowest = 0.0
            start = time.perf_counter()
            cpu = time.process_time()
            case = fuzzer.case

            def timed(rng: random.Random, case=case) -> str:
                nonlocal slowest
                t0 = time.perf_counter()
                out = case(rng)
                slowest = max(slowest, time.perf_counter() - t0)
                return out

            fuzzer.case = timed
            fuzzer.timeout_s = args.case_timeout_s * TIMEOUT_FACTOR.get(name, 1)
            with fb.bounded(args.memory_gib, fuzzer.timeout_s):
                fuzzer.run(n, args.seed)
            fuzzer.case = case
            took = time.perf_counter() - start
            cpu = time.process_time() - cpu
            c = fuzzer.counts
            print(f"{name:18s} {n:7d} {c['ok']:9d} {c['error']:8d} {c['fail']:7d} {slowest:8.3f}s "
                  f"{took:6.1f}s {cpu:6.1f}s", flush=True)
            if name in PACKET_STATE:
                state = PACKET_STATE[name]
                outcomes = ", ".join(f"{k} {v}" for k, v in sorted(state.packets.items()))
                buffers = ", ".join(f"{k} {v}" for k, v in sorted(state.buffers.items()))
                print(f"    notifications: {sum(state.packets.values())} ({outcomes})")
                print(f"    largest buffers (entries): {buffers}")
                if state.skipped:
                    print(f"    samples the store skipped as duplicates (each a failure): {state.skipped}")
            for seed, what, detail in fuzzer.failures[:20]:
                print(f"    FAIL seed {seed} ({what}): {detail}")
            if len(fuzzer.failures) > 20:
                print(f"    ... and {len(fuzzer.failures) - 20} more")
            total_fail += c["fail"]
        print(f"failures: {total_fail}")
        for state in PACKET_STATE.values():
            state.close()
        return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
