"""The synchronous trainer against an independent reference and its own invariants."""

import numpy as np
import pytest

from edgesim.network import jammed_network, lab_network, voltage_divider
from edgesim.reference import train_dense
from edgesim.rules import TapLadder
from edgesim.tasks import divider_tracking, edge_regression, node_allostery, node_regression
from edgesim.trainer import LearningConfig, record_steps, train_synchronous


def stern_task(realization=1, seed=0, **kw):
    return edge_regression(jammed_network(64, realization), np.random.default_rng(seed), **kw)


@pytest.mark.parametrize("lam", [0.0, 1e-3])
def test_matches_dense_inverse_reference(lam):
    """Same trajectory as the published-style dense-inverse trainer (shares no solver code)."""
    task = stern_task()
    steps = 300
    k_ref, err_ref = train_dense(task, steps, lam=lam)
    h = train_synchronous([task], LearningConfig(), steps, [np.ones(task.network.n_edges)], lam=lam,
                          record_at=np.arange(steps + 1), conductance_every=steps + 1)
    np.testing.assert_allclose(h.error_train[0, :steps], err_ref, rtol=1e-9, atol=0)
    np.testing.assert_allclose(h.conductance[0, -1], k_ref, rtol=1e-9, atol=1e-12)
    if lam == 0:
        assert h.error_train[0, -1] < 0.5 * h.error_train[0, 0]  # it did learn


def test_stack_equals_separate_runs():
    """Stacking realizations (different sizes, padded) does not change any system's trajectory."""
    tasks = [stern_task(r, seed=r) for r in (1, 10, 11)]  # 143, 142 and 139 edges
    assert len({t.network.n_edges for t in tasks}) == 3
    lams = np.array([0.0, 1e-4, 1e-2])
    k0 = [np.full(t.network.n_edges, 0.7) for t in tasks]
    stacked = train_synchronous(tasks, LearningConfig(), 200, k0, lam=lams)
    # Batched BLAS kernels may round differently from single-matrix ones (last-bit
    # differences); 200 learning steps amplify them to ~1e-10 relative at most.
    for i, t in enumerate(tasks):
        alone = train_synchronous([t], LearningConfig(), 200, [k0[i]], lam=lams[i])
        np.testing.assert_allclose(stacked.error_train[i], alone.error_train[0], rtol=1e-8)
        n = t.network.n_edges
        np.testing.assert_allclose(stacked.conductance[i, :, :n], alone.conductance[0], rtol=1e-8)
        assert np.isnan(stacked.conductance[i, :, n:]).all()


def test_energy_is_integral_of_free_power():
    task = stern_task()
    dt = 0.25
    h = train_synchronous([task], LearningConfig(), 50, [np.ones(task.network.n_edges)],
                          record_at=np.arange(51), step_duration=dt)
    expected = np.concatenate([[0.0], np.cumsum(h.free_power[0, :-1]) * dt])
    np.testing.assert_allclose(h.training_energy[0], expected, rtol=1e-12)
    assert (h.training_energy_total[0, 1:] > h.training_energy[0, 1:]).all()


def test_power_efficiency_lowers_power_and_lambda_one_is_directed_aging():
    task = stern_task()
    k0 = [np.ones(task.network.n_edges)] * 3
    h = train_synchronous([task] * 3, LearningConfig(), 500, k0, lam=[0.0, 1e-2, 1.0])
    assert h.free_power[0, -1] > h.free_power[1, -1] > h.free_power[2, -1]
    # lambda = 1: every update is -alpha/eta dV_C^2 <= 0, so conductances only fall.
    assert (np.diff(h.conductance[2], axis=0) <= 0).all()


def test_sign_rule_stays_on_the_ladder_and_learns_allostery():
    net = lab_network()
    task = node_allostery(net, {0: 5.0, 8: 1.0}, {3: 3.0, 5: 3.0, 7: 3.0}, ground=2)
    ladder = TapLadder()
    cfg = LearningConfig(rule="sign", taps=ladder)
    h = train_synchronous([task], cfg, 200, [np.full(16, 1.25e-5)], eta=0.1, record_at=np.arange(201))
    allowed = ladder.conductances
    assert np.isin(h.conductance, allowed).all()
    # Each step moves each edge by at most one tap.
    taps = np.searchsorted(allowed, h.conductance[0])
    assert np.abs(np.diff(taps, axis=0)).max() <= 1
    assert h.error_train[0, -1] < 1e-2 * h.error_train[0, 0]


def test_online_training_cycles_through_examples():
    """Online updates with a single repeated example equal full-batch updates on it."""
    net = lab_network()
    task = node_regression(net, [0, 8], [3, 5], 2, [[0.15, 0.2], [0.25, 0.1]], np.random.default_rng(1),
                           n_train=1, n_test=2)
    k0 = [np.full(16, 1.0)]
    full = train_synchronous([task], LearningConfig(batch="full"), 30, k0, eta=0.1, alpha=0.05)
    online = train_synchronous([task], LearningConfig(batch="online"), 30, k0, eta=0.1, alpha=0.05)
    np.testing.assert_allclose(online.conductance, full.conductance, rtol=1e-13)


def test_divider_target_schedule():
    task = divider_tracking([1.0, 4.0], steps_per_target=10)
    h = train_synchronous([task], LearningConfig(), 25, [np.ones(2)], eta=0.5, alpha=0.05,
                          record_at=np.arange(26))
    desired = h.output_desired[0, :, 0, 0]
    assert (desired[:10] == 1.0).all() and (desired[10:20] == 4.0).all() and (desired[20:] == 1.0).all()


def test_record_steps():
    s = record_steps(1000, n_records=20)
    assert s[0] == 0 and s[-1] == 1000 and (np.diff(s) > 0).all() and len(s) <= 22
    assert list(record_steps(10, every=5)) == [0, 5, 10]
    with pytest.raises(ValueError, match="record interval"):
        record_steps(10, every=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(eta=0.0), "nudge eta"),
    (dict(eta=1.5), "nudge eta"),
    (dict(lam=np.nan), "finite"),
])
def test_bad_learning_parameters(kwargs, match):
    task = divider_tracking([1.0])
    with pytest.raises(ValueError, match=match):
        train_synchronous([task], LearningConfig(), 5, [np.ones(2)], **kwargs)


@pytest.mark.parametrize("k0, match", [
    ([1.0, -1.0], "positive"),
    ([1.0, np.nan], "NaN"),
    ([1.0], "one value per edge"),
])
def test_bad_initial_conductance(k0, match):
    task = divider_tracking([1.0])
    with pytest.raises(ValueError, match=match):
        train_synchronous([task], LearningConfig(), 5, [np.array(k0)])


def test_bad_config():
    with pytest.raises(ValueError, match="k_min"):
        LearningConfig(k_min=2.0, k_max=1.0)
    with pytest.raises(ValueError, match=r"learning\.rule"):
        LearningConfig(rule="hebbian")


def test_nan_in_task_data_is_rejected():
    net = voltage_divider()
    with pytest.raises(ValueError, match="NaN"):
        node_allostery(net, {0: np.nan}, {1: 1.0}, ground=2)
