"""Mutation testing with mutmut 3, on a throw-away copy of the committed tree (never the working tree).

Run by hand or with ``make mutation`` (not part of the test suite; scores are in ``bench/README.md``)::

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python bench/mutation.py [--group lineprotocol] [--max-children 2] [--work DIR]

What it does:

1. exports ``HEAD`` (``git archive``: committed files only, so nobody's uncommitted work is read or
   touched) into ``--work`` (emptied first);
2. lays the copy out as mutmut expects an importable package: ``src/hipback/`` with ``ingest/``,
   ``processing/`` and ``simulator/`` moved under it (the wheel's ``package-dir`` mapping, made physical;
   mutmut puts ``mutants/src`` first on ``sys.path``, so the editable install of the working tree is
   never imported by the tests it runs);
3. writes a ``[tool.mutmut]`` section for the group: the files to mutate and the tests that cover them;
4. runs ``mutmut run`` on the group's mutants, then prints the score per module: killed / (killed +
   survived); timeouts count as killed (the mutant hung the tests), mutants no test reaches count as
   survived ("no tests").

Groups (``--group``, repeatable; ``all`` = every group in this order): ``lineprotocol``, ``writer``,
``outbox`` (the outbox methods of ``LocalStore`` and the sync worker), ``decoders`` (``ingest/devices``),
``gait`` (``processing/gait.py`` alone), one group per module of ``processing/`` (``holds``, ``activity``,
``calibration``, ...: each with the tests that exercise it, minutes each) and ``processing`` (all of it at
once: hours on two cores). Each group's results and the diffs of its survivors are kept as
``results-GROUP.txt`` and ``survivors-GROUP.txt`` in the work folder.

Equivalent mutants (the mutated program behaves the same for every input the code can receive) are listed
in :data:`EQUIVALENT` with the reason, per mutant, together with a piece of the mutated line: an entry whose
mutant no longer shows that line (the code changed, mutmut renumbered) is reported as stale and not counted.
The table shows both scores: raw, and without the equivalent mutants.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST_ARGS = ["-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly"]

#: processing module -> the tests that exercise it (``tests/test_mutants_<module>.py`` is added to each)
PROCESSING_TESTS: dict[str, list[str]] = {
    "holds": ["tests/test_holds.py"],
    "activity": ["tests/test_activity.py"],
    "calibration": ["tests/test_calibration.py"],
    "calibration_search": ["tests/test_calibration.py", "tests/test_pipeline.py"],
    "angles": ["tests/test_angles.py"],
    "angles3d": ["tests/test_angles3d.py"],
    "orientation": ["tests/test_orientation.py"],
    "resample": ["tests/test_pipeline.py"],
    "merge": ["tests/test_pipeline.py", "tests/test_block_contract.py"],
    "channel": ["tests/test_pipeline.py", "tests/test_block_contract.py"],
    "plausibility": ["tests/test_pipeline.py"],
    "summary": ["tests/test_pipeline.py", "tests/test_block_contract.py"],
    "quaternion": ["tests/test_orientation.py", "tests/test_angles.py"],
    "progress": ["tests/test_progress.py"],
    "blocks": ["tests/test_block_contract.py"],
    "pipeline": ["tests/test_pipeline.py", "tests/test_block_contract.py"],
}

#: group -> (files to mutate under src/hipback, test files, mutant name globs that count)
GROUPS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "lineprotocol": (["ingest/influx/lineprotocol.py"],
                     ["tests/test_influx_lineprotocol.py", "tests/test_influx_lineprotocol_exact.py",
                      "tests/test_schema.py"],
                     ["hipback.ingest.influx.lineprotocol.*"]),
    "writer": (["ingest/influx/writer.py"],
               ["tests/test_influx_writer.py", "tests/test_influx_fuzz.py"],
               ["hipback.ingest.influx.writer.*"]),
    "outbox": (["ingest/store.py", "ingest/sync.py"],
               ["tests/test_store.py", "tests/test_sync.py", "tests/test_store_durability.py",
                "tests/test_outbox.py"],
               ["hipback.ingest.store.xǁLocalStoreǁoutbox*", "hipback.ingest.sync.*"]),
    "decoders": (["ingest/devices/"],
                 ["tests/test_devices_hipback.py", "tests/test_devices_movella.py",
                  "tests/test_devices_witmotion.py", "tests/test_devices_profiles.py",
                  "tests/test_devices_vendor_bytes.py", "tests/test_decoder_gaps.py",
                  "tests/test_decoder_movella_exact.py", "tests/test_mutants_hipback_v1.py",
                  "tests/test_mutants_movella_dot.py", "tests/test_mutants_witmotion.py",
                  "tests/test_mutants_devices_base.py"],
                 ["hipback.ingest.devices.*"]),
    "gait": (["processing/gait.py"], ["tests/test_gait.py", "tests/test_processing_rules.py"],
             ["hipback.processing.gait.*"]),
    **{m: ([f"processing/{m}.py"], [*tests, f"tests/test_mutants_{m}.py"], [f"hipback.processing.{m}.*"])
       for m, tests in PROCESSING_TESTS.items()},
    "processing": (["processing/"],
                   ["tests/test_angles.py", "tests/test_orientation.py", "tests/test_calibration.py",
                    "tests/test_gait.py", "tests/test_holds.py", "tests/test_activity.py",
                    "tests/test_progress.py", "tests/test_pipeline.py", "tests/test_processing_rules.py"],
                   ["hipback.processing.*"]),
}


#: mutant name -> (a piece of its mutated line, why no input the code can receive tells it apart)
EQUIVALENT: dict[str, tuple[str, str]] = {}


def _equivalent(reason: str, prefix: str, entries: dict[int | str, str]) -> None:
    """Register equivalent mutants ``prefix + "__mutmut_" + n`` (``n`` -> piece of the mutated line)."""
    for n, piece in entries.items():
        EQUIVALENT[f"{prefix}__mutmut_{n}"] = (piece, reason)


def export(work: Path) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive.stdout, check=True)
    src = work / "src" / "hipback"
    src.parent.mkdir()
    shutil.move(str(work / "hipback"), str(src))
    for name in ("ingest", "processing", "simulator"):
        shutil.move(str(work / name), str(src / name))


def configure(work: Path, group: str) -> list[str]:
    files, tests, globs = GROUPS[group]
    tests = [t for t in tests if (work / t).is_file()]
    lines = ["", "[tool.mutmut]",
             "source_paths = [" + ", ".join(f'"src/hipback/{f}"' for f in files) + "]",
             'also_copy = ["tests", "bench", "dashboards", "docs", "firmware_notes", "src/hipback"]',
             "pytest_add_cli_args = [" + ", ".join(f'"{a}"' for a in PYTEST_ARGS) + "]",
             "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]",
             ""]
    pyproject = work / "pyproject.toml"
    text = pyproject.read_text()
    text = text.split("\n[tool.mutmut]")[0]
    pyproject.write_text(text + "\n".join(lines))
    shutil.rmtree(work / "mutants", ignore_errors=True)
    return globs


def run_group(work: Path, group: str, max_children: int, *, run: bool = True) -> dict[str, Counter]:
    """Mutate and test one group (``run=False``: only score the results already in ``work``)."""
    globs = configure(work, group) if run else GROUPS[group][2]
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    cmd = ["nice", "-n", "10", str(mutmut), "run", "--max-children", str(max_children), *globs]
    if run:
        print(f"[{group}] {' '.join(cmd[3:])}", flush=True)
        subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL)
    out = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=work, env=env, capture_output=True,
                         text=True).stdout
    (work / f"results-{group}.txt").write_text(out)  # kept: the next group starts a fresh mutants/ folder
    survivors = [line.strip().rpartition(": ")[0] for line in out.splitlines()
                 if line.strip().endswith((": survived", ": no tests"))]
    diffs = {name: subprocess.run([str(mutmut), "show", name], cwd=work, env=env, capture_output=True,
                                  text=True).stdout
             for name in survivors if any(_match(name, g) for g in globs)}
    (work / f"survivors-{group}.txt").write_text("\n".join(diffs.values()))
    per_module: dict[str, Counter] = {}
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name or not any(_match(name, g) for g in globs):
            continue
        if name in diffs and name in EQUIVALENT:
            piece, _reason = EQUIVALENT[name]
            added = [x[1:] for x in diffs[name].splitlines() if x.startswith("+") and not x.startswith("+++")]
            if any(piece in x for x in added):
                status = "equivalent"
            else:
                print(f"stale equivalent entry (the mutant no longer adds {piece!r}): {name}", flush=True)
        per_module.setdefault(_module_of(name), Counter())[status] += 1
    return per_module


def _match(name: str, glob: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, glob)


def _module_of(name: str) -> str:
    head = name.split("__mutmut_")[0]
    parts = head.split(".")
    while parts and (parts[-1].startswith("x_") or parts[-1].startswith("xǁ")):
        parts.pop()
    return ".".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", action="append", choices=[*GROUPS, "all"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/hipback-mutation"))
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--show-survivors", action="store_true")
    ap.add_argument("--rescore", action="store_true",
                    help="score the last run of the (one) group in --work again (after marking equivalent "
                         "mutants), without mutating or testing anything")
    args = ap.parse_args()
    groups = args.group or ["lineprotocol", "outbox"]
    if "all" in groups:
        groups = list(GROUPS)
    if args.work.resolve() == ROOT or ROOT in args.work.resolve().parents:
        raise SystemExit("--work must be outside the repository: mutation tools rewrite files")
    if args.rescore and len(groups) != 1:
        raise SystemExit("--rescore scores one group: the last one run in --work")
    if not args.rescore:
        export(args.work)
    print(f"{'module':44s} {'mutants':>8s} {'killed':>7s} {'timeout':>8s} {'survived':>9s} {'no test':>8s} "
          f"{'equiv.':>7s} {'raw':>6s} {'w/o eq':>7s}")
    for group in groups:
        for module, c in sorted(run_group(args.work, group, args.max_children, run=not args.rescore).items()):
            killed, timeout = c["killed"], c["timeout"]
            survived, untested, equivalent = c["survived"], c["no tests"], c["equivalent"]
            total = sum(c.values())
            judged = killed + timeout + survived + untested
            # raw: equivalent mutants count as survivors; adjusted: they are left out
            raw = (killed + timeout) / (judged + equivalent) if judged + equivalent else float("nan")
            adjusted = (killed + timeout) / judged if judged else float("nan")
            print(f"{module:44s} {total:8d} {killed:7d} {timeout:8d} {survived:9d} {untested:8d} "
                  f"{equivalent:7d} {raw:6.1%} {adjusted:7.1%}", flush=True)
        if args.show_survivors:
            mutmut = Path(sys.executable).with_name("mutmut")
            out = subprocess.run([str(mutmut), "results"], cwd=args.work, capture_output=True, text=True)
            print(out.stdout)


if __name__ == "__main__":
    main()
