"""A raw sensor's accelerometer offset estimated in one session is kept for its next sessions: the runner
asks the store for the newest offset the sensor (by Bluetooth address) estimated itself, and the session
subtracts it from the first sample until its own estimate is trusted; a sensor at another address, or one
whose earlier session only carried an offset over, gets none."""

from __future__ import annotations

from pathlib import Path

import pytest

from hipback.ingest.session import run_virtual_session
from hipback.ingest.store import LocalStore
from hipback.simulator import SensorSpec, simulate

KINDS = {"pelvis": "hipback_v1", "thigh_left": "hipback_v1"}


@pytest.fixture(scope="module")
def sim():
    return simulate("short", seed=11, sensors=[SensorSpec(p, kind="raw", rate_hz=100.0) for p in KINDS])


def _run(sim, path: Path):
    events: list = []
    outcome = run_virtual_session(sim, KINDS, path, until_s=20.0, calibration_s=0, on_event=events.append)
    with LocalStore(path) as store:
        summary = store.get_results(outcome.session_id, "summary")[0]
        addresses = {s["placement"]: s["address"] for s in store.sensors(outcome.session_id)}
    return outcome, events, summary, addresses


def _earlier(path: Path, address: str, offset: list[float], updates: int, start_utc: float) -> str:
    """A finished session in the store in which the sensor at ``address`` (left thigh, raw) had ``offset``."""
    with LocalStore(path) as store:
        sid = store.open_session("P-0011", meta={"start_utc": start_utc})
        store.add_sensor(sid, "thigh_left", "raw", "hipback_v1", address)
        entry = {"offset_m_s2": offset, "uncertainty_m_s2": [0.01, 0.01, 0.01], "updates": updates}
        store.put_results(sid, "summary", [{"accelerometer_offset": {"thigh_left": entry}}])
        store.close_session(sid, end_utc=start_utc + 600.0)
    return sid


def test_an_offset_estimated_in_an_earlier_session_is_subtracted_from_the_start(sim, tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    _, events, summary, addresses = _run(sim, path)  # the first session: nothing kept yet
    assert not [e for e in events if e.kind == "accelerometer_offset"]
    # too few postures to estimate one in this short session
    assert summary["accelerometer_offset"]["thigh_left"]["offset_m_s2"] is None
    older = _earlier(path, addresses["thigh_left"], [0.3, -0.2, 0.1], 3, 1_700_000_000.0)
    newer = _earlier(path, addresses["thigh_left"], [0.25, -0.15, 0.05], 2, 1_700_100_000.0)
    _earlier(path, addresses["thigh_left"], [0.9, 0.9, 0.9], 0, 1_700_200_000.0)  # carried over only
    _earlier(path, "AA:BB:CC:DD:EE:FF", [0.7, 0.7, 0.7], 5, 1_700_300_000.0)  # another sensor
    with LocalStore(path) as store:
        assert store.accelerometer_offset(addresses["thigh_left"])["session_id"] == newer != older
        assert store.accelerometer_offset(addresses["pelvis"]) is None
    _, events, summary, _ = _run(sim, path)
    (said,) = [e for e in events if e.kind == "accelerometer_offset"]
    assert said.placement == "thigh_left" and said.data["from_session"] == newer
    assert "0.296 m/s^2" in said.message  # |(0.25, -0.15, 0.05)|
    assert summary["accelerometer_offset"]["thigh_left"]["offset_m_s2"] == [0.25, -0.15, 0.05]
    assert summary["accelerometer_offset"]["pelvis"]["offset_m_s2"] is None


def test_an_unreadable_earlier_summary_is_passed_over(sim, tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    _, _, _, addresses = _run(sim, path)
    for bad in ([0.3, "x", 0.1], [0.3, 0.1], None):
        _earlier(path, addresses["thigh_left"], bad, 2, 1_700_000_000.0)  # type: ignore[arg-type]
    with LocalStore(path) as store:
        assert store.accelerometer_offset(addresses["thigh_left"]) is None


BAD = [(0.3, float("nan"), 0.1), (0.3, 0.1), "0.3,0.1,0.2", (0.1, 0.2, float("inf"))]


@pytest.mark.parametrize("bad", BAD)
def test_a_kept_offset_must_be_three_finite_numbers(bad) -> None:
    from hipback.processing import ProcessorConfig

    with pytest.raises(ValueError, match="acc_bias_initial of thigh_left"):
        ProcessorConfig(acc_bias_initial={"thigh_left": bad})


def test_the_kept_offset_reaches_the_raw_sensors_estimator_only() -> None:
    from hipback.processing import ProcessorConfig, SessionProcessor

    cfg = ProcessorConfig(acc_bias_initial={"thigh_left": (0.3, -0.2, 0.1), "thigh_right": (0.1, 0.1, 0.1)})
    proc = SessionProcessor({"pelvis": "raw", "thigh_left": "raw", "thigh_right": "quat"},
                            {"pelvis": 100.0, "thigh_left": 100.0, "thigh_right": 60.0}, cfg)
    est = proc.channels["thigh_left"].acc_bias_estimator_
    assert est is not None and est.initial == (0.3, -0.2, 0.1) and list(est.applied_) == [0.3, -0.2, 0.1]
    assert proc.channels["pelvis"].acc_bias_estimator_.initial is None
    assert proc.channels["thigh_right"].acc_bias_estimator_ is None  # a quaternion device: no estimator
