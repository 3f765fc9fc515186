"""Tests of edgesim.rules: coupled learning updates, the sign rule, clipping, tap ladders.

Learning rule (DESIGN.md section 1):
``dk = -(alpha/eta) * [ dV_C^2 - (1 - lambda) dV_F^2 ]``; the sign rule moves
one tap in the direction of the sign of that update.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesim.rules import (
    TapLadder,
    clip_conductance,
    coupled_learning_update,
    coupled_learning_update_squared,
    sign_rule_direction,
)

finite = st.floats(-10, 10, allow_nan=False)


# -- coupled learning ----------------------------------------------------------

def test_coupled_learning_hand_computed_values():
    free = np.array([0.3, -0.5, 0.0, 2.0])
    clamped = np.array([0.5, 0.1, -1.0, 2.0])
    # alpha = 0.1, eta = 0.5 -> prefactor -0.2
    expected = -0.2 * np.array([0.25 - 0.09, 0.01 - 0.25, 1.0 - 0.0, 4.0 - 4.0])
    np.testing.assert_allclose(coupled_learning_update(free, clamped, 0.1, 0.5), expected, rtol=1e-14)
    np.testing.assert_allclose(expected, [-0.032, 0.048, -0.2, 0.0], atol=1e-15)


def test_power_efficient_coupled_learning_hand_computed():
    # dk = -(0.1/0.5) * (0.5^2 - 0.8 * 0.3^2) = -0.2 * (0.25 - 0.072) = -0.0356
    assert coupled_learning_update(0.3, 0.5, 0.1, 0.5, lam=0.2) == pytest.approx(-0.0356, rel=1e-13)


def test_larger_free_drop_raises_conductance():
    assert coupled_learning_update(1.0, 0.5, 1.0, 0.1) > 0
    assert coupled_learning_update(0.5, 1.0, 1.0, 0.1) < 0


def test_lambda_one_keeps_only_clamped_term():
    rng = np.random.default_rng(0)
    free, clamped = rng.normal(size=(2, 5, 7))
    dk = coupled_learning_update(free, clamped, 0.3, 0.01, lam=1.0)
    np.testing.assert_allclose(dk, -(0.3 / 0.01) * clamped**2, rtol=1e-14)
    # independent of the free drop
    np.testing.assert_array_equal(dk, coupled_learning_update(10 * free, clamped, 0.3, 0.01, lam=1.0))
    assert (dk <= 0).all()


def test_lambda_broadcasts_per_edge():
    free = np.array([[1.0, 2.0, 3.0]])
    clamped = np.zeros((1, 3))
    lam = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(coupled_learning_update(free, clamped, 1.0, 1.0, lam),
                               [[1.0, 2.0, 0.0]], atol=1e-15)


def test_update_scales_as_alpha_over_eta():
    base = coupled_learning_update(0.7, 0.2, 1.0, 1.0)
    assert coupled_learning_update(0.7, 0.2, 3.0, 0.25) == pytest.approx(12 * base, rel=1e-14)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=20),
       st.floats(1e-3, 10), st.floats(1e-3, 1), st.floats(0, 1))
def test_squared_form_equals_drop_form(pairs, alpha, eta, lam):
    free, clamped = np.array(pairs).T
    np.testing.assert_allclose(
        coupled_learning_update_squared(free**2, clamped**2, alpha, eta, lam),
        coupled_learning_update(free, clamped, alpha, eta, lam), rtol=1e-13, atol=1e-300)


def test_full_batch_update_is_mean_of_per_example_updates():
    rng = np.random.default_rng(3)
    free, clamped = rng.normal(size=(2, 6, 11))  # (edges, examples)
    per_example = coupled_learning_update(free, clamped, 0.5, 0.1, 0.3).mean(-1)
    batch = coupled_learning_update_squared((free**2).mean(-1), (clamped**2).mean(-1), 0.5, 0.1, 0.3)
    np.testing.assert_allclose(batch, per_example, rtol=1e-12)


# -- sign rule -----------------------------------------------------------------

def test_sign_rule_direction_basic():
    free = np.array([1.0, -1.0, 0.2, 0.5, -0.3])
    clamped = np.array([0.5, 0.2, -1.0, 0.5, 0.3])
    d = sign_rule_direction(free, clamped)
    np.testing.assert_array_equal(d, [1, 1, -1, 0, 0])
    assert d.dtype == np.int8


def test_sign_rule_deadband():
    free = np.array([1.00, 1.00, 1.00, 1.00, 1.00])
    clamped = np.array([0.95, 1.05, 0.80, 1.20, 1.0])
    np.testing.assert_array_equal(sign_rule_direction(free, clamped, deadband=0.1), [0, 0, 1, -1, 0])
    # a difference exactly equal to the deadband (exact in binary) holds
    np.testing.assert_array_equal(sign_rule_direction([0.75, 0.5], [0.5, 0.75], deadband=0.25), [0, 0])
    # a difference just above the deadband moves the tap
    np.testing.assert_array_equal(sign_rule_direction(1.0, 0.85, deadband=0.1), 1)
    np.testing.assert_array_equal(sign_rule_direction(0.85, 1.0, deadband=0.1), -1)


def test_sign_rule_lambda_is_gain_on_free_drop():
    # gain sqrt(1 - 0.75) = 0.5: 0.5 * |1.0| = 0.5 < 0.6 -> -1, > 0.4 -> +1
    assert sign_rule_direction(1.0, 0.6, lam=0.75) == -1
    assert sign_rule_direction(1.0, 0.4, lam=0.75) == 1
    # lambda = 1: the free twin is ignored, only lowering is possible
    assert sign_rule_direction(100.0, 0.1, lam=1.0) == -1
    assert sign_rule_direction(100.0, 0.0, lam=1.0) == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=20), st.floats(0, 1))
def test_sign_rule_is_sign_of_coupled_learning_update(pairs, lam):
    free, clamped = np.array(pairs).T
    d = sign_rule_direction(free, clamped, lam=lam)
    dk = coupled_learning_update(free, clamped, 1.0, 1.0, lam)
    # where the update is not (numerically) zero, the tap moves in its direction
    clear = np.abs(dk) > 1e-9 * (free**2 + clamped**2 + 1e-300)
    np.testing.assert_array_equal(d[clear], np.sign(dk[clear]))


# -- clipping ------------------------------------------------------------------

def test_clip_conductance():
    k = np.array([-1.0, 1e-4, 0.5, 2.0, 1e3])
    np.testing.assert_array_equal(clip_conductance(k, 1e-3, 1.0), [1e-3, 1e-3, 0.5, 1.0, 1.0])
    # per-edge bounds broadcast
    np.testing.assert_array_equal(clip_conductance(k, k, k), k)


# -- tap ladder ----------------------------------------------------------------

def test_default_ladder_is_128_ascending_conductances():
    ladder = TapLadder()
    k = ladder.conductances
    assert k.shape == (128,)
    assert (np.diff(k) > 0).all()
    np.testing.assert_allclose(k[0], 1 / 100e3, rtol=1e-14)
    np.testing.assert_allclose(k[-1], 128 / 100e3, rtol=1e-14)


def test_linear_resistance_ladder_has_equal_resistance_steps():
    ladder = TapLadder(n_taps=128, low=100e3 / 128, high=100e3, quantity="resistance", spacing="linear")
    R = 1.0 / ladder.conductances
    assert (np.diff(R) < 0).all()  # ascending conductance = descending resistance
    np.testing.assert_allclose(np.diff(R), -(100e3 - 100e3 / 128) / 127, rtol=1e-9)


def test_linear_conductance_ladder_has_equal_conductance_steps():
    ladder = TapLadder(n_taps=11, low=1e-3, high=2e-3, quantity="conductance")
    np.testing.assert_allclose(ladder.conductances, np.linspace(1e-3, 2e-3, 11), rtol=1e-14)


@pytest.mark.parametrize("quantity", ["resistance", "conductance"])
def test_log_ladder_has_constant_ratio(quantity):
    ladder = TapLadder(n_taps=64, low=1e3, high=1e6, quantity=quantity, spacing="log")
    k = ladder.conductances
    assert (np.diff(k) > 0).all()
    ratio = k[1:] / k[:-1]
    np.testing.assert_allclose(ratio, 1000 ** (1 / 63), rtol=1e-12)


def test_step_moves_one_tap_and_stays_on_ladder():
    ladder = TapLadder(n_taps=128)
    taps = np.array([0, 0, 0, 64, 64, 127, 127, 127])
    dirs = np.array([-1, 0, 1, -1, 1, -1, 0, 1])
    np.testing.assert_array_equal(ladder.step(taps, dirs), [0, 0, 1, 63, 65, 126, 127, 127])
    # the int8 output of the sign rule is accepted
    np.testing.assert_array_equal(ladder.step(np.array([127, 0]), np.array([1, -1], np.int8)), [127, 0])


def test_repeated_steps_saturate_at_ladder_ends():
    ladder = TapLadder(n_taps=5)
    t = np.array([2])
    for _ in range(10):
        t = ladder.step(t, 1)
    assert t[0] == 4
    for _ in range(10):
        t = ladder.step(t, -1)
    assert t[0] == 0


@pytest.mark.parametrize("ladder", [TapLadder(), TapLadder(spacing="log"),
                                    TapLadder(7, 1.0, 2.0, "conductance", "linear")])
def test_nearest_tap_round_trip(ladder):
    k = ladder.conductances
    np.testing.assert_array_equal(ladder.nearest_tap(k), np.arange(ladder.n_taps))
    # slightly perturbed values still map to their own tap
    np.testing.assert_array_equal(ladder.nearest_tap(k * (1 + 1e-6)), np.arange(ladder.n_taps))
    np.testing.assert_array_equal(ladder.nearest_tap(k * (1 - 1e-6)), np.arange(ladder.n_taps))
    # out-of-range values map to the end taps
    assert ladder.nearest_tap(k[0] / 10) == 0
    assert ladder.nearest_tap(k[-1] * 10) == ladder.n_taps - 1


def test_nearest_tap_picks_closer_neighbour():
    ladder = TapLadder(5, 1.0, 5.0, "conductance")  # taps 1, 2, 3, 4, 5
    np.testing.assert_array_equal(ladder.nearest_tap([1.4, 1.6, 2.49, 2.51, 4.9]), [0, 1, 1, 2, 4])


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_taps=1), "at least 2 taps"),
    (dict(low=0.0), "0 < low < high"),
    (dict(low=-1.0), "0 < low < high"),
    (dict(low=10.0, high=5.0), "0 < low < high"),
    (dict(low=5.0, high=5.0), "0 < low < high"),
    (dict(quantity="current"), "'resistance' or 'conductance'"),
    (dict(spacing="quadratic"), "'linear' or 'log'"),
])
def test_invalid_tap_ladder_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TapLadder(**kwargs)
