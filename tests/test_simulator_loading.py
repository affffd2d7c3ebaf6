"""The virtual walker's vertical motion from its ground reaction force (hipback.simulator.loading)."""

from __future__ import annotations

import numpy as np
import pytest

from hipback.simulator.loading import G, GroundReaction


def test_one_foot_carries_the_double_hump_over_its_stance_only():
    grf = GroundReaction(peak1=1.2, valley=0.7, peak2=1.1, stance_share=0.6)
    f = grf.foot_force(np.array([-0.01, 0.0, 0.25, 0.5, 0.8, 1.0, 1.01]))
    np.testing.assert_allclose(f, [0.0, 0.0, 1.2, 0.7, 1.1, 0.0, 0.0], atol=1e-12)
    s = np.linspace(0.0, 1.0, 2001)
    assert grf.foot_force(s).max() == pytest.approx(1.2)  # shape-preserving: no overshoot of the peaks
    assert grf.foot_force(s).min() >= 0.0


def test_the_ground_carries_the_body_weight_on_average_and_the_motion_integrates_to_it():
    grf = GroundReaction(peak1=1.15, valley=0.75, peak2=1.1, stance_share=0.62, left_offset=0.49)
    ph = np.arange(4000) / 4000
    a = grf.body_acceleration(ph)
    # a steady cycle: no net vertical velocity change (the mean force is taken on a 1024-point cycle)
    assert abs(a.mean()) < 1e-4
    # double support (both feet down) pushes up, single support around mid-stance lets the body fall
    assert a[np.argmin(np.abs(ph - 0.05))] > 0.0 > a[np.argmin(np.abs(ph - 0.3))]
    f0 = 0.9
    t = ph / f0
    z = grf.pelvis_displacement(ph, f0)
    dd = np.gradient(np.gradient(z, t), t)
    # the displacement's second derivative is the acceleration, up to the harmonics left out (> 18 Hz)
    assert np.sqrt(np.mean((dd[10:-10] - a[10:-10]) ** 2)) < 0.05 * np.sqrt(np.mean(a**2))
    assert 0.005 < z.max() - z.min() < 0.08  # a few centimetres of vertical pelvis excursion
    assert abs(z.mean()) < 1e-6


def test_the_pelvis_accelerates_upwards_into_each_contact():
    """The trailing leg's push-off peak (80 % of its stance) comes just before the leading leg's contact
    (82 % of it at a stance of 61 %): the body's vertical acceleration rises over the 150 ms before each
    contact, as on the real walks, and rises further after it (loading)."""
    grf = GroundReaction(peak1=1.15, valley=0.75, peak2=1.1, stance_share=0.61)
    stride = 1.1
    lags = np.array([-0.15, -0.1, -0.05, 0.0, 0.05, 0.08])
    a = grf.body_acceleration(lags / stride)
    assert np.all(np.diff(a[:3]) > 0)  # rising before the contact
    assert a[3] - a[0] > 1.5  # by more than 1.5 m/s^2 over 150 ms
    assert a[5] > a[4] > a[3]  # and on after it


def test_a_faster_walker_with_higher_peaks_moves_more():
    slow = GroundReaction(peak1=1.03, valley=0.92, peak2=1.03, stance_share=0.65)
    fast = GroundReaction(peak1=1.25, valley=0.65, peak2=1.12, stance_share=0.6)
    ph = np.arange(1000) / 1000
    assert np.ptp(fast.body_acceleration(ph)) > np.ptp(slow.body_acceleration(ph))
    assert np.ptp(slow.body_acceleration(ph)) < 0.6 * G


@pytest.mark.parametrize("kw", [{"stance_share": 0.5}, {"stance_share": 0.8}, {"valley": 1.2},
                                {"peak1": 2.5}, {"valley": 0.2}])
def test_impossible_force_shapes_are_refused(kw):
    with pytest.raises(ValueError):
        GroundReaction(**kw)
