"""Tests of edgesim.rules: coupled learning updates, the sign rule, clipping, tap ladders.

The rules under test:

* Power-efficient coupled learning: an edge with drops ``dV_F`` in the free
  twin and ``dV_C`` in the clamped twin changes its conductance by
  ``dk = -(alpha/eta) * [ dV_C^2 - (1 - lambda) dV_F^2 ]`` (``lambda = 0``:
  plain coupled learning; ``lambda = 1``: directed aging, ``dk <= 0``).  With a
  full batch the update is the mean of this over the examples, i.e. the rule
  applied to the mean squared drops.
* Sign rule (digital potentiometers): the edge moves one tap up if
  ``sqrt(1 - lambda) |dV_F| > |dV_C| + deadband``, one tap down if smaller, and
  holds within the dead band -- the sign of the coupled-learning update.
* Conductances are clipped to ``[k_min, k_max]``; taps stay on their ladder.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesim.network import lab_network
from edgesim.physics import Boundary, TwinSolver, clamped_solution, free_solution, mean_square_drops
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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=20),
       st.floats(1e-3, 10), st.floats(1e-3, 1), st.floats(0, 1))
def test_coupled_learning_matches_the_formula_edge_by_edge(pairs, alpha, eta, lam):
    """Both forms of the rule against ``-(alpha/eta) [dV_C^2 - (1 - lambda) dV_F^2]``, written out per edge."""
    free, clamped = np.array(pairs).T
    expected = np.array([-(alpha / eta) * (c * c - (1.0 - lam) * (f * f)) for f, c in pairs])
    # Rounding scale of a difference of the two terms: a few ulps of the larger term.
    bound = 4 * np.finfo(float).eps * (alpha / eta) * (free**2 + clamped**2)
    dk = coupled_learning_update(free, clamped, alpha, eta, lam)
    assert dk.shape == free.shape
    assert (np.abs(dk - expected) <= bound).all(), (dk, expected)
    dk_sq = coupled_learning_update_squared(free**2, clamped**2, alpha, eta, lam)
    assert (np.abs(dk_sq - expected) <= bound).all(), (dk_sq, expected)
    # The sign follows the comparison of the clamped drop with the scaled free drop.
    grows = (1.0 - lam) * free**2 > clamped**2 * (1 + 1e-12) + 1e-300
    shrinks = (1.0 - lam) * free**2 < clamped**2 * (1 - 1e-12) - 1e-300
    assert (dk[grows] > 0).all() and (dk[shrinks] < 0).all()


@settings(max_examples=30, deadline=None)
@given(st.lists(finite, min_size=1, max_size=20), st.floats(1e-3, 10), st.floats(1e-3, 1))
def test_no_update_when_clamped_equals_free_without_power_term(drops, alpha, eta):
    """lambda = 0 and a clamped state equal to the free one (nothing to learn): exactly no change."""
    d = np.array(drops)
    np.testing.assert_array_equal(coupled_learning_update(d, d, alpha, eta, 0.0), 0.0)
    np.testing.assert_array_equal(coupled_learning_update(d, -d, alpha, eta, 0.0), 0.0)  # orientation-blind
    # with a power term the same edges shrink (where they carry any current)
    dk = coupled_learning_update(d, d, alpha, eta, 0.5)
    assert (dk[d**2 > 0] < 0).all() and (dk[d**2 == 0] == 0).all()


def _bordered_solve(B, k, rows, values):
    """Node voltages (N, n_ex) with every row ``(a, b)`` fixed to ``values`` (``b = -1``: node ``a``).

    Plain numpy: the Laplacian ``B^T diag(k) B`` bordered by one Lagrange row per
    condition, solved with ``numpy.linalg.solve`` (no code shared with edgesim.physics).
    """
    n = B.shape[1]
    C = np.zeros((len(rows), n))
    for i, (a, b) in enumerate(rows):
        C[i, a] = 1.0
        if b >= 0:
            C[i, b] = -1.0
    M = np.block([[B.T @ (k[:, None] * B), C.T], [C, np.zeros((len(rows), len(rows)))]])
    rhs = np.vstack([np.zeros((n, values.shape[1])), values])
    return np.linalg.solve(M, rhs)[:n]


def test_full_batch_update_from_the_solver_is_the_mean_of_per_example_updates():
    """The batch update (rule applied to the solver's mean squared drops) equals the mean of the
    per-example updates computed from explicit drops of an independently solved circuit."""
    net = lab_network()
    rng = np.random.default_rng(3)
    k = rng.uniform(0.2, 5.0, net.n_edges)
    bc = Boundary(0, [(8, -1), (2, 5)], [(4, -1), (6, 7)])  # a node input, a source edge; node and edge outputs
    x = rng.uniform(-1, 1, size=(2, 7))
    desired = rng.uniform(-1, 1, size=(2, 7))
    alpha, eta, lam = 0.05, 0.2, 0.3
    # independent per-example physics: explicit node voltages, drops, clamp and update of every example
    B = net.incidence.toarray()
    ground_row = np.zeros((1, x.shape[1]))
    V_free = _bordered_solve(B, k, [(0, -1)] + list(bc.inputs), np.vstack([ground_row, x]))
    out_free = np.array([V_free[a] - (V_free[b] if b >= 0 else 0.0) for a, b in bc.outputs])
    clamp = out_free + eta * (desired - out_free)
    V_clamped = _bordered_solve(B, k, [(0, -1)] + list(bc.rows), np.vstack([ground_row, x, clamp]))
    dv_free, dv_clamped = B @ V_free, B @ V_clamped  # (edges, examples)
    per_example = -(alpha / eta) * (dv_clamped**2 - (1 - lam) * dv_free**2)
    assert np.ptp(per_example, axis=1).max() > 0.1 * np.abs(per_example).max()  # examples really differ
    # the simulator's batch path
    resp = TwinSolver([net], [bc]).response(k[None])
    lam_f, out, _ = free_solution(resp, x[None])
    np.testing.assert_allclose(out[0], out_free, rtol=1e-10, atol=1e-12)
    lam_c, _ = clamped_solution(resp, np.concatenate([x, clamp], 0)[None])
    batch = coupled_learning_update_squared(mean_square_drops(resp, lam_f)[0], mean_square_drops(resp, lam_c)[0],
                                            alpha, eta, lam)
    scale = (alpha / eta) * (dv_free**2 + dv_clamped**2).mean(1).max()
    np.testing.assert_allclose(batch, per_example.mean(1), rtol=0, atol=1e-10 * scale)
    # and it is not the update of any single example
    assert np.abs(batch[:, None] - per_example).max(0).min() > 1e3 * 1e-10 * scale


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
    (dict(n_taps=1), r"learning\.taps\.n_taps.*at least 2 taps"),
    (dict(low=0.0), r"learning\.taps\.low must be > 0"),
    (dict(low=-1.0), r"learning\.taps\.low must be > 0"),
    (dict(low=10.0, high=5.0), r"learning\.taps.*low < high"),
    (dict(low=5.0, high=5.0), r"learning\.taps.*low < high"),
    (dict(quantity="current"), r"learning\.taps\.quantity must be one of 'resistance', 'conductance'"),
    (dict(spacing="quadratic"), r"learning\.taps\.spacing must be one of 'linear', 'log'"),
])
def test_invalid_tap_ladder_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TapLadder(**kwargs)
