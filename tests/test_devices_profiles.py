"""All device kinds: scan matching, profile write sequences understood by the virtual devices, robustness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hipback.ingest.devices import PROFILES, get_profile, match_profile
from hipback.processing import quaternion as qm
from hipback.simulator.devices import make_encoder


@pytest.mark.parametrize("kind", list(PROFILES))
def test_start_and_stop_sequences_are_accepted_by_the_virtual_device(kind):
    profile = get_profile(kind)
    for mode in profile.modes:
        rate = profile.rates_hz[-1] if kind != "witmotion" else 100.0
        enc = make_encoder(kind, rate, 247, mode if kind != "witmotion" else None)
        state = enc.state
        current = {uuid: state.read(uuid) for uuid in profile.config_reads}
        effects = []
        for w in profile.start_sequence(rate, mode, current) + profile.stop_sequence(mode):
            effects += state.handle_write(w.char_uuid, w.data, now=1.0)
        assert effects and not [e for e in effects if e.kind == "error"], effects
        assert profile.sensor_kind(mode) in ("quat", "raw")
        assert profile.notify_uuids(mode)


@pytest.mark.parametrize("kind", list(PROFILES))
def test_encoded_stream_decodes_with_the_profile_decoder(kind):
    profile = get_profile(kind)
    rate = {"hipback_v1": 100.0, "movella_dot": 60.0, "witmotion": 100.0}[kind]
    n = 200
    t = np.arange(n) / rate
    quat = qm.from_rotvec(np.c_[np.sin(t), 0.3 * t, np.cos(2 * t)])
    acc = np.tile([0.0, 0.0, 9.81], (n, 1))
    gyr = np.c_[np.cos(t), np.zeros(n), np.zeros(n)]
    enc = make_encoder(kind, rate, 247)
    dec = profile.make_decoder(rate)
    outs = [dec.feed(p, 0.0) for p in enc.encode(t, quat, acc, gyr)]
    got = np.concatenate([o.quat for o in outs if o.n])
    assert len(got) == n and np.degrees(qm.angle_between(got, quat)).max() < 0.05
    assert dec.stats.rejected_total == 0


def test_match_profile():
    assert match_profile(None, []) is None
    assert match_profile("Polar Sense", ["0000180d-0000-1000-8000-00805f9b34fb"]) is None
    with pytest.raises(KeyError):
        get_profile("metawear")
    with pytest.raises(ValueError):
        get_profile("movella_dot").start_sequence(60, "no_such_mode")


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["custom5", "extended_quaternion", "rate_quantities_mag"]),
    st.lists(st.binary(max_size=70), max_size=15),
)
def test_movella_random_bytes_never_raise(mode, chunks):
    dec = get_profile("movella_dot").make_decoder(60, mode)
    for c in chunks:
        out = dec.feed(c, 0.0)
        assert out.n in (0, 1)
    assert dec.stats.packets == len(chunks)
