"""Virtual devices whose notifications are one sample each are encoded a block ahead
(``DeviceTwin.encode_range``): the bytes must be those of encoding each connection event's samples as they
are sent, whatever the chunking, across the block's end and across every state change a frame depends on
(a heading reset, a clock jump, another output mode or format; for hipback v1, whose packets hold several
samples, each sample's part of a packet), and the state a register read reports
(the last orientation sent) must follow what was sent, not what was encoded ahead."""

from __future__ import annotations

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.types import SensorStream
from hipback.simulator.devices import make_twin
from hipback.simulator.devices.base import FRAME_BLOCK, DeviceTwin


def _stream(n: int, rate_hz: float, seed: int = 3) -> SensorStream:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return SensorStream(
        placement="thigh_left",
        kind="quat",
        t=np.arange(n) / rate_hz,
        rate_hz=rate_hz,
        quat=q,
        acc=rng.normal(0.0, 40.0, size=(n, 3)),  # some beyond +-16 g: the clipping bits too
        gyr=rng.normal(0.0, 10.0, size=(n, 3)),
        mag=rng.normal(0.0, 0.5, size=(n, 3)),
    )


def _slices(n: int, seed: int = 5) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < n:
        j = min(n, i + int(rng.integers(1, 4)))
        out.append((i, j))
        i = j
    return out


def _change(twin: DeviceTwin, step: int) -> None:
    """The state changes a frame depends on, at fixed points of the stream."""
    st = twin.state
    if step == 700:
        twin.clock.jump(0.25)
    if step == 1500 and hasattr(st, "heading"):
        st.heading = qm.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.array(0.7))
    if step == 2100 and hasattr(st, "mode_id"):
        st.mode_id = 2  # extended quaternion: free acceleration and status in the frame
    if step == 2100 and hasattr(st, "fmt"):
        st.fmt = 0x1D  # hipback v1 quat_raw_mag
    if step == 1900 and hasattr(twin, "skip"):
        twin.skip(3)  # hipback v1: an overrun (sequence numbers jump, the status says so)


@pytest.mark.parametrize("kind", ["witmotion", "movella_dot", "hipback_v1"])
def test_frames_encoded_ahead_are_the_frames_encoded_as_sent(kind: str) -> None:
    s = _stream(2 * FRAME_BLOCK + 300, 100.0 if kind != "movella_dot" else 60.0)
    ahead, as_sent = make_twin(kind, s.rate_hz), make_twin(kind, s.rate_hz)
    for twin in (ahead, as_sent):
        twin.clock.offset_s = 1000.0
    checked = 0
    for i0, i1 in _slices(len(s.t)):
        for step in range(i0, i1):
            _change(ahead, step)
            _change(as_sent, step)
        got = ahead.encode_range(s, i0, i1)
        want = as_sent.encode(
            s.t[i0:i1], quat=s.quat[i0:i1], acc=s.acc[i0:i1], gyr=s.gyr[i0:i1], mag=s.mag[i0:i1]
        )
        assert got == want, (kind, i0, i1)
        for name in ("last_quat", "last_mag"):
            a, b = getattr(ahead.state, name, None), getattr(as_sent.state, name, None)
            assert (a is None) == (b is None) and (a is None or np.array_equal(a, b)), (kind, name, i1)
        checked += sum(ahead.packet_counts(got))
    assert checked == len(s.t)


def test_a_resampled_stream_is_a_new_block() -> None:
    """A rate change makes the sensor send another (resampled) stream: frames of the old one must not be
    taken for it, even at the same indices."""
    a, b = _stream(50, 100.0, seed=1), _stream(50, 100.0, seed=2)
    twin = make_twin("witmotion", 100.0)
    first = twin.encode_range(a, 10, 12)
    second = twin.encode_range(b, 10, 12)
    assert first != second
    assert second == make_twin("witmotion", 100.0).encode(
        b.t[10:12], quat=b.quat[10:12], acc=b.acc[10:12], gyr=b.gyr[10:12], mag=b.mag[10:12]
    )
