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


def dense_voltages(task, k, rows, values):
    """Node voltages (N, n_ex) of ``task``'s network at conductances ``k`` with ``rows`` fixed to ``values``.

    Plain numpy, sharing no code with edgesim.physics: the Laplacian bordered
    by one Lagrange row per condition (the ground first), ``numpy.linalg.solve``.
    """
    net, ground = task.network, task.boundary.ground
    B = net.incidence.toarray()
    rows = [(ground, -1)] + list(rows)
    C = np.zeros((len(rows), net.n_nodes))
    for i, (a, b) in enumerate(rows):
        C[i, a] = 1.0
        if b >= 0:
            C[i, b] = -1.0
    M = np.block([[B.T @ (k[:, None] * B), C.T], [C, np.zeros((len(rows), len(rows)))]])
    rhs = np.vstack([np.zeros((net.n_nodes, values.shape[1])), np.zeros((1, values.shape[1])), values])
    return np.linalg.solve(M, rhs)[:net.n_nodes]


def dense_twins(task, k, x, y, eta):
    """Free and clamped twins of the examples ``x`` (targets ``y``), solved independently.

    Returns the edge drops (E, n_ex) of both twins and their dissipated powers (n_ex,).
    """
    B = task.network.incidence.toarray()
    bc = task.boundary
    V_free = dense_voltages(task, k, bc.inputs, x)
    out = np.array([V_free[a] - (V_free[b] if b >= 0 else 0.0) for a, b in bc.outputs])
    V_clamped = dense_voltages(task, k, bc.rows, np.vstack([x, out + eta * (y - out)]))
    dv_free, dv_clamped = B @ V_free, B @ V_clamped
    return dv_free, dv_clamped, (k[:, None] * dv_free**2).sum(0), (k[:, None] * dv_clamped**2).sum(0)


@pytest.mark.parametrize("batch", ["full", "online"])
def test_energy_is_integral_of_independently_solved_free_power(batch):
    """Training energy = sum over the steps done of (free power of the examples shown) x step_duration.

    Every recorded conductance state is solved again with plain numpy; full batch
    shows all examples each step (mean power), online shows example ``s mod n``.
    """
    task = stern_task(n_train=5, n_test=5)
    dt, eta, steps = 0.25, 1e-3, 12
    h = train_synchronous([task], LearningConfig(batch=batch), steps, [np.ones(task.network.n_edges)],
                          alpha=0.5, eta=eta, lam=1e-3, record_at=np.arange(steps + 1), step_duration=dt)
    np.testing.assert_array_equal(h.conductance_step, np.arange(steps + 1))
    X, Y = task.train_inputs, task.train_targets
    free_step, total_step = [], []
    for s in range(steps + 1):
        k = h.conductance[0, s]
        _, _, p_free, p_clamped = dense_twins(task, k, X, Y, eta)
        # recorded powers: mean over the whole training set, whatever the batch mode
        np.testing.assert_allclose(h.free_power[0, s], p_free.mean(), rtol=1e-9)
        np.testing.assert_allclose(h.clamped_power[0, s], p_clamped.mean(), rtol=1e-9)
        shown = slice(None) if batch == "full" else [s % task.n_train]
        free_step.append(p_free[shown].mean())
        total_step.append(p_free[shown].mean() + p_clamped[shown].mean())
    expected = dt * np.concatenate([[0.0], np.cumsum(free_step[:-1])])
    expected_total = dt * np.concatenate([[0.0], np.cumsum(total_step[:-1])])
    np.testing.assert_allclose(h.training_energy[0], expected, rtol=1e-9, atol=0)
    np.testing.assert_allclose(h.training_energy_total[0], expected_total, rtol=1e-9, atol=0)
    if batch == "online":  # the examples' powers differ, so the energy tells which one was shown
        assert np.ptp(free_step) > 0.1 * np.mean(free_step)
    assert h.conductance[0, -1].tolist() != h.conductance[0, 0].tolist()  # it learned something


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
    """Online step s updates with example s mod n only, as computed by hand from an independent solve."""
    net = lab_network()
    n = 3
    task = node_regression(net, [0, 8], [3, 5], 2, [[0.15, 0.2], [0.25, 0.1]], np.random.default_rng(1),
                           n_train=n, n_test=2)
    alpha, eta, lam, steps = 0.005, 0.1, 1e-2, 2 * n + 1
    k0 = np.random.default_rng(2).uniform(0.5, 2.0, net.n_edges)
    config = LearningConfig(batch="online")
    h = train_synchronous([task], config, steps, [k0], alpha=alpha, eta=eta, lam=lam,
                          record_at=np.arange(steps + 1))
    X, Y = task.train_inputs, task.train_targets
    for s in range(steps):
        k = h.conductance[0, s]
        dv_free, dv_clamped, _, _ = dense_twins(task, k, X, Y, eta)
        # the update each example would make: dk = -(alpha/eta) [dV_C^2 - (1 - lambda) dV_F^2], clipped
        candidates = np.clip(k[:, None] - (alpha / eta) * (dv_clamped**2 - (1 - lam) * dv_free**2),
                             config.k_min, config.k_max)  # (E, n)
        step = h.conductance[0, s + 1] - k
        scale = np.abs(candidates - k[:, None]).max()
        np.testing.assert_allclose(h.conductance[0, s + 1], candidates[:, s % n], rtol=0, atol=1e-10 * scale)
        for other in set(range(n)) - {s % n}:  # and not the update of any other example
            assert np.abs(step - (candidates[:, other] - k)).max() > 1e-3 * scale


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
