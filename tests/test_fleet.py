"""bench/fleet.py in miniature: a few gateway processes, one influxd restarted mid-run, every point counted.

The full-size run (200 gateways) is by hand; its figures are in bench/README.md. This keeps the bench's
own code working: it must run and report zero lost and zero duplicated.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.fleet import _field_keys

ROOT = Path(__file__).resolve().parents[1]


def test_field_keys_split_fields_not_strings() -> None:
    line = 'sessions,patient=P1,session=s1 kind="walk, then stretch",n=3i,x=1.5 1700000000000000000'
    assert _field_keys(line) == ["sessions|P1|s1|kind", "sessions|P1|s1|n", "sessions|P1|s1|x"]
    assert _field_keys("patient_status,patient=P1 a=1 1") == ["patient_status|P1||a"]


def test_small_fleet_across_a_restart_loses_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.fleet", "--gateways", "3", "--days", "2", "--walk-s", "30",
         "--holds", "1", "--templates", "1", "--interval-s", "1.5", "--restart-at", "0.3",
         "--down-s", "2"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "lost 0; duplicated 0" in out and "RESULT: zero lost, zero duplicated" in out, out
    assert "pending 0; set aside 0" in out and "gateways: 3 (0 failed)" in out, out
