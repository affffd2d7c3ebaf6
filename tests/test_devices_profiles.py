"""All device kinds: scan matching, profile write sequences understood by the virtual devices, robustness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hipback.ingest.devices import PROFILES, get_profile, match_profile
from hipback.processing import quaternion as qm
from hipback.simulator.devices import TWINS, make_encoder, make_twin


@pytest.mark.parametrize("kind", list(PROFILES))
def test_start_and_stop_sequences_are_accepted_by_the_virtual_device(kind):
    profile = get_profile(kind)
    for mode in profile.modes:
        for rate in profile.rates_hz:
            twin = make_twin(kind, rate, 247, mode if len(profile.modes) > 1 else None)
            config = profile.parse_config({uuid: twin.read(uuid, 1.0) for uuid in profile.config_reads})
            assert not config.notes, config.notes  # the twin answers every configuration read
            effects = []
            for w in profile.start_sequence(rate, mode, config) + profile.stop_sequence(mode):
                effects += twin.handle_write(w.char_uuid, w.data, 1.0)
            assert not [e for e in effects if e.kind == "error"], (rate, effects)
            assert any(e.kind == "rate" for e in effects) or twin.rate_hz == profile.nearest_rate(rate)
        assert profile.sensor_kind(mode) in ("quat", "raw")
        assert profile.notify_uuids(mode)


def test_every_profile_has_a_twin_with_its_layout():
    assert set(TWINS) == set(PROFILES)
    for kind, profile in PROFILES.items():
        twin_cls = TWINS[kind]
        chars = {c: props for _, cs in twin_cls.LAYOUT for c, props in cs}
        for mode in profile.modes:
            assert all("notify" in chars[u] for u in profile.notify_uuids(mode)), (kind, mode)
        assert all("read" in chars[u] for u in profile.config_reads), kind
        for w in profile.start_sequence(profile.rates_hz[0]) + profile.stop_sequence():
            assert "write" in chars[w.char_uuid], kind
        if profile.battery is not None:
            source = profile.battery
            assert source.char_uuid is None or "read" in chars[source.char_uuid]
            assert source.poll is None or "write" in chars[source.poll.char_uuid]
        # the twin advertises what the profile's scan matching looks for, under its usual name
        assert match_profile(twin_cls.default_name(1), list(twin_cls.ADVERTISED)) is profile
        assert match_profile(twin_cls.default_name(1), []) is profile
        assert set(twin_cls.RATES_HZ) >= set(profile.rates_hz), kind
        assert profile.nearest_rate(twin_cls.DEFAULT_RATE_HZ) == twin_cls.DEFAULT_RATE_HZ


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
