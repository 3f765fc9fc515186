"""Networks of nonlinear (transistor) edges: the edge law, Newton's equilibrium, and its errors.

Analytic circuits (one edge, two-edge dividers in the ohmic and saturation regimes, a diode and a resistor),
Kirchhoff's law and power balance on random networks, the linear limit for small voltages, and the
solver's bookkeeping (warm starts, stacking, backends).
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import lambertw

from edgesim.edgelaws import EdgeLaw, LinearLaw, TransistorLaw
from edgesim.network import Network, square_lattice, transistor_lattice, voltage_divider
from edgesim.nonlinear import NewtonError, NonlinearTwinSolver, make_twin_solver
from edgesim.physics import Boundary, TwinSolver, clamped_solution, free_solution, mean_square_drops

from newton_support import random_transistor_network, solve_like_training

S = 8.5e-4  # A/V^2, the laboratory transistors (Dillavou et al. 2024)


def divider_output(law, k, v_in, **options):
    """Output voltage of the two-edge divider: input node 0 at v_in, output node 1, ground node 2."""
    net = voltage_divider().with_law(law)
    solver = NonlinearTwinSolver([net], [Boundary(2, [(0, -1)], [(1, -1)])], **options)
    _, out, _ = free_solution(solver.response(np.asarray(k, float)[None]), np.array([[[v_in]]]))
    return out[0, 0, 0]


# -- the edge law ----------------------------------------------------------------------------------------------
def test_transistor_current_in_each_regime_matches_the_square_law():
    law = TransistorLaw(leakage_conductance=0.0)
    k = S * 2.0  # overdrive V_G - V_T = 2 V
    # ohmic: both ends below the overdrive
    i, _, _ = law.current(k, 1.5, 0.5)
    assert i == pytest.approx(S * (2.0 - (1.5 + 0.5) / 2) * (1.5 - 0.5), rel=1e-14)
    # saturation: the higher end (3 V) pinched off, current set by the lower end
    i, _, _ = law.current(k, 3.0, 0.5)
    assert i == pytest.approx(S / 2 * (2.0 - 0.5) ** 2, rel=1e-14)
    # the same with source and drain swapped: the current reverses
    assert law.current(k, 0.5, 3.0)[0] == pytest.approx(-S / 2 * (2.0 - 0.5) ** 2, rel=1e-14)
    # cut off: both ends above the overdrive
    assert law.current(k, 3.0, 2.5)[0] == 0.0


@pytest.mark.parametrize("options", [{}, {"channel_length_modulation": 0.05}, {"subthreshold": True},
                                     {"leakage_conductance": 1e-6}])
def test_transistor_derivatives_match_finite_differences(options):
    law = TransistorLaw(**options)
    rng = np.random.default_rng(0)
    k = S * rng.uniform(0.2, 5.0, 200)
    va, vb = rng.uniform(0, 5, 200), rng.uniform(0, 5, 200)
    _, ga, gb = law.current(k, va, vb)
    h = 1e-6
    fa = (law.current(k, va + h, vb)[0] - law.current(k, va - h, vb)[0]) / (2 * h)
    fb = (law.current(k, va, vb + h)[0] - law.current(k, va, vb - h)[0]) / (2 * h)
    away = (np.abs(k / S - va) > 1e-3) & (np.abs(k / S - vb) > 1e-3) & (np.abs(va - vb) > 1e-3)  # off the kinks
    np.testing.assert_allclose(ga[away], fa[away], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(gb[away], fb[away], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("law", [TransistorLaw(), TransistorLaw(channel_length_modulation=0.05),
                                 TransistorLaw(subthreshold=True, leakage_conductance=1e-6), LinearLaw()],
                         ids=["square law", "CLM", "subthreshold", "linear"])
def test_parameter_derivative_matches_finite_differences(law):
    """dI/dk, which Newton's warm starts follow along a learning step: the closed forms against central
    differences in k (and the EdgeLaw default, a central difference itself, agrees with them)."""
    rng = np.random.default_rng(1)
    k = S * rng.uniform(0.2, 5.0, 200)
    va, vb = rng.uniform(0, 5, 200), rng.uniform(0, 5, 200)
    h = 1e-9
    numeric = (law.current(k + h, va, vb)[0] - law.current(k - h, va, vb)[0]) / (2 * h)
    away = (np.abs(k / S - va) > 1e-3) & (np.abs(k / S - vb) > 1e-3)  # off the kinks
    np.testing.assert_allclose(law.parameter_derivative(k, va, vb)[away], numeric[away], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(EdgeLaw.parameter_derivative(law, k, va, vb)[away], numeric[away], rtol=1e-6,
                               atol=1e-12)


def test_small_drops_lose_nothing_to_rounding():
    """The ohmic current of a 1 uV drop is exact to rounding (the difference of two squared overdrives is not)."""
    law = TransistorLaw(leakage_conductance=0.0)
    i, _, _ = law.current(S * 2.0, 1.000001, 1.0)
    assert i == pytest.approx(S * (2.0 - 1.0000005) * 1e-6, rel=1e-9)


def test_transistor_law_rejects_bad_parameters():
    with pytest.raises(ValueError, match="transconductance S must be positive"):
        TransistorLaw(transconductance=[8.5e-4, 0.0])
    with pytest.raises(ValueError, match="gate_min < gate_max"):
        TransistorLaw(gate_min=5.0, gate_max=1.0)
    with pytest.raises(ValueError, match="channel_length_modulation"):
        TransistorLaw(channel_length_modulation=-0.1)
    with pytest.raises(ValueError, match="has 3 values for a network of 2 edges"):
        voltage_divider().with_law(TransistorLaw(transconductance=[S, S, S]))


def test_gate_voltage_and_conductance_are_inverse_within_the_gate_range():
    law = TransistorLaw(transconductance=np.array([S, 2 * S]), threshold=np.array([0.6, 0.7]), gate_min=0.0,
                        gate_max=8.0)
    k = np.array([1e-3, 4e-3])
    np.testing.assert_allclose(law.conductance(law.gate_voltage(k)), k, rtol=1e-14)
    assert law.conductance(np.array([20.0, 20.0])) == pytest.approx([S * 7.4, 2 * S * 7.3])  # clipped at 8 V
    low, high = law.conductance_bounds(1e-7, 1.0)
    np.testing.assert_allclose(high, [S * 7.4, 2 * S * 7.3])


# -- analytic circuits -----------------------------------------------------------------------------------------
def test_divider_in_the_ohmic_regime_matches_the_closed_form():
    d_a, d_b, v_in = 3.0, 2.5, 1.0  # overdrives above every node voltage: both edges ohmic
    law = TransistorLaw(leakage_conductance=0.0)
    v = divider_output(law, [S * d_a, S * d_b], v_in)
    # S (d_a - (v_in + V)/2)(v_in - V) = S (d_b - V/2) V  =>  V^2 - (d_a + d_b) V + d_a v_in - v_in^2 / 2 = 0
    b, c = d_a + d_b, d_a * v_in - v_in ** 2 / 2
    assert v == pytest.approx((b - np.sqrt(b * b - 4 * c)) / 2, rel=1e-12, abs=1e-13)


def test_divider_with_a_saturated_edge_matches_the_closed_form():
    d_a, d_b, v_in = 1.5, 2.0, 4.0  # node 0 above edge a's overdrive: edge a saturates, edge b is ohmic
    law = TransistorLaw(leakage_conductance=0.0)
    v = divider_output(law, [S * d_a, S * d_b], v_in)
    # S/2 (d_a - V)^2 = S (d_b - V/2) V  =>  V^2 - (d_a + d_b) V + d_a^2 / 2 = 0
    b, c = d_a + d_b, d_a ** 2 / 2
    expected = (b - np.sqrt(b * b - 4 * c)) / 2
    assert expected < min(d_a, d_b)  # the regimes assumed hold
    assert v == pytest.approx(expected, rel=1e-12, abs=1e-13)


def test_divider_output_does_not_depend_on_the_input_once_saturated():
    """Saturation: above its overdrive the input no longer changes the current (the laboratory's nonlinearity)."""
    law = TransistorLaw(leakage_conductance=0.0)
    k = [S * 1.5, S * 2.0]
    assert divider_output(law, k, 4.0) == pytest.approx(divider_output(law, k, 6.0), rel=1e-12)
    assert divider_output(law, k, 1.0) < divider_output(law, k, 1.4)


class ResistorOrDiode(EdgeLaw):
    """A custom law in a few lines: edges marked ``diode`` are diodes of saturation current ``k * 1e-12`` A,
    the others resistors of conductance ``k``."""

    name = "resistor or diode"

    def __init__(self, diode):
        self.diode = np.asarray(diode, bool)

    def current(self, k, va, vb):
        drop = va - vb
        e = np.exp(np.where(self.diode, drop, 0.0) / 0.02585)
        i_s = k * 1e-12
        current = np.where(self.diode, i_s * (e - 1), k * drop)
        slope = np.where(self.diode, i_s * e / 0.02585, k)
        return current, slope, -slope


def test_a_custom_diode_law_solves_the_diode_resistor_circuit():
    r, i_s, v_in, vt = 1e3, 1e-12, 2.0, 0.02585
    net = voltage_divider().with_law(ResistorOrDiode([False, True]))  # resistor 0-1, diode 1-2 (to ground)
    solver = make_twin_solver([net], [Boundary(2, [(0, -1)], [(1, -1)])])
    _, out, power = free_solution(solver.response(np.array([[1 / r, 1.0]])), np.array([[[v_in]]]))
    # (v_in - V)/R = I_s (exp(V/V_t) - 1): V = v_in + I_s R - V_t W(I_s R / V_t exp((v_in + I_s R) / V_t))
    w = lambertw(i_s * r / vt * np.exp((v_in + i_s * r) / vt)).real
    expected = v_in + i_s * r - vt * w
    assert out[0, 0, 0] == pytest.approx(expected, rel=1e-10)
    current = (v_in - expected) / r
    assert power[0, 0] == pytest.approx(current * v_in, rel=1e-9)  # all the source's power is dissipated


# -- random networks -------------------------------------------------------------------------------------------
def node_currents(net, k, V):
    """Net current leaving every node through the edges (A), and the edge currents, for voltages V (N,)."""
    u, v = net.edges[:, 0], net.edges[:, 1]
    i, _, _ = net.law.current(k, V[u], V[v])
    return np.bincount(u, i, net.n_nodes) - np.bincount(v, i, net.n_nodes), i


# derandomized: CI must not depend on what a random draw finds (a random run once found the network of the next
# test, which an earlier Newton could not solve)
@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), option=st.sampled_from([{}, {"channel_length_modulation": 0.05},
                                                           {"subthreshold": True}]))
def test_kirchhoff_holds_to_the_tolerance_on_random_transistor_networks(seed, option):
    net, bc, k, x = random_transistor_network(seed, options=option)
    solver = make_twin_solver([net], [bc], newton_tolerance=1e-12)
    sol, out, power = free_solution(solver.response(k[None]), x)
    held = [bc.ground] + [a for a, _ in bc.inputs]
    for j in range(x.shape[2]):
        V = sol.voltages[0, :, j]
        assert V[bc.inputs[0][0]] == x[0, 0, j] and V[bc.ground] == 0.0
        outflow, i = node_currents(net, k, V)
        free = np.setdiff1d(np.arange(net.n_nodes), held)
        assert np.abs(outflow[free]).max() <= 1e-12 * np.abs(i).max()
        # power balance: what the edges dissipate is what the inputs deliver
        delivered = sum(outflow[a] * V[a] for a in held)
        assert power[0, j] == pytest.approx(delivered, rel=1e-9)
        assert power[0, j] == pytest.approx((i * (V[net.edges[:, 0]] - V[net.edges[:, 1]])).sum(), rel=1e-12)


@pytest.mark.parametrize("backend", ["dense", "lu"])
@pytest.mark.parametrize("option", [{}, {"channel_length_modulation": 0.05}], ids=["square law", "CLM"])
def test_newton_solves_what_training_asks_on_random_hard_threshold_networks(option, backend):
    """Free twin, clamped twin (outputs clamped up to 1 V off), three warm-started learning steps: on 100 random
    lattices none fails (benchmarks/stress_newton.py runs 1,500 per variant and backend)."""
    failed = []
    for seed in range(100):
        net, bc, k, x = random_transistor_network(seed, options=option)
        try:
            solve_like_training(net, bc, k, x, seed, backend)
        except NewtonError:
            failed.append(seed)
    assert failed == []


@pytest.mark.parametrize("subthreshold", [False, True])
def test_the_network_an_earlier_newton_could_not_solve_is_solved(subthreshold):
    """A random run of the Kirchhoff test above once drew this 3x3 hard-threshold network, on which Newton with a
    smoothed threshold kink in its Jacobian stalled at a relative residual of 1e-3 (a node held only by
    transistors at their threshold).  The exact Jacobian (the square law's conductance is continuous at the
    threshold) solves it, as subthreshold conduction does."""
    net, bc, k, x = random_transistor_network(1301, options={"subthreshold": subthreshold})
    solver = make_twin_solver([net], [bc])
    sol, _, _ = free_solution(solver.response(k[None]), x)
    free = np.setdiff1d(np.arange(net.n_nodes), [bc.ground] + [a for a, _ in bc.inputs])
    for j in range(x.shape[2]):
        outflow, i = node_currents(net, k, sol.voltages[0, :, j])
        assert np.abs(outflow[free]).max() <= 1e-12 * np.abs(i).max()


@pytest.mark.parametrize("seed", range(4))
def test_small_voltages_give_the_linear_network_of_k(seed):
    """For voltages small against the overdrive, transistor network = resistor network with k = S (V_G - V_T)."""
    net, bc, k, x = random_transistor_network(seed, options={"leakage_conductance": 0.0})
    linear = TwinSolver([Network(net.n_nodes, net.edges)], [bc]).response(k[None])
    deviations = []
    for scale in (1e-3, 1e-4, 1e-5):
        solver = make_twin_solver([net], [bc])
        _, out, power = free_solution(solver.response(k[None]), x * scale)
        _, out_lin, power_lin = free_solution(linear, x * scale)
        deviations.append(np.abs(out / out_lin - 1).max())
        np.testing.assert_allclose(power, power_lin, rtol=10 * scale)
    assert deviations[-1] < 1e-5
    # the deviation is first order in the voltage scale
    assert deviations[0] / deviations[1] == pytest.approx(10, rel=0.2)
    assert deviations[1] / deviations[2] == pytest.approx(10, rel=0.2)


def test_clamped_twin_holds_the_outputs_and_the_rule_reads_mean_squared_drops():
    net, bc, k, x = random_transistor_network(3)
    state = make_twin_solver([net], [bc]).response(k[None])
    free, out, _ = free_solution(state, x)
    clamp = out + 0.1 * (np.array([[[0.5, 1.0, 1.5]]]) - out)
    clamped, power_c = clamped_solution(state, np.concatenate([x, clamp], 1))
    np.testing.assert_array_equal(clamped.voltages[0, bc.outputs[0][0]], clamp[0, 0])
    np.testing.assert_allclose(mean_square_drops(state, clamped), (clamped.drops ** 2).mean(2), rtol=1e-15)
    assert (mean_square_drops(state, free) >= 0).all()


# -- the solver's bookkeeping ------------------------------------------------------------------------------------
def test_warm_starts_need_fewer_newton_iterations():
    net, bc, k, x = random_transistor_network(5, n=12)
    solver = make_twin_solver([net], [bc])
    free_solution(solver.response(k[None]), x)
    cold = solver.iterations
    free_solution(solver.response((k * (1 + 1e-3))[None]), x)
    warm = solver.iterations - cold
    assert warm < cold
    solver.reset_warm_start()
    before = solver.iterations
    free_solution(solver.response((k * (1 + 2e-3))[None]), x)
    assert solver.iterations - before > warm


@pytest.mark.parametrize("backend", ["dense", "lu"])
def test_the_warm_start_follows_the_tangent_of_the_equilibrium(backend):
    """After a learning step ``k -> k (1 + eps noise)`` Newton starts from the old equilibrium moved along the
    tangent (the Euler predictor): its distance to the new equilibrium is second order in eps (halving eps
    quarters it), the old equilibrium's only first order (halving halves it)."""
    net, bc, k, x = random_transistor_network(11, n=12)
    noise = np.random.default_rng(3).standard_normal(net.n_edges)
    errors = {}
    for eps in (1e-3, 5e-4):
        solver = make_twin_solver([net], [bc], backend=backend)
        free_solution(solver.response(k[None]), x)
        old = solver._warm[("free", x.shape[2])][0][0].copy()
        starts = []
        newton = solver._newton
        solver._newton = lambda k_, alive, V, *rest, **options: starts.append(V.copy()) or newton(k_, alive, V, *rest,
                                                                                                    **options)
        k1 = k * (1 + eps * noise)
        sol, _, _ = free_solution(solver.response(k1[None]), x)
        exact = sol.voltages[0].T
        errors[eps] = (np.abs(starts[0] - exact).max(), np.abs(old - exact).max())
    (predicted, plain), (predicted_half, plain_half) = errors[1e-3], errors[5e-4]
    assert predicted < 0.05 * plain
    assert predicted / predicted_half == pytest.approx(4, rel=0.25)
    assert plain / plain_half == pytest.approx(2, rel=0.1)


def test_a_learning_step_costs_few_newton_iterations():
    """Warm-started (predictor) free and clamped solves of a learning step on a 5,000-edge transistor lattice
    (the benchmark's problem) take a handful of Newton iterations, no refactorization after the first steps."""
    side = 50
    net = square_lattice(side, side, periodic=True)
    rng = np.random.default_rng(0)
    law = TransistorLaw(transconductance=S * (1 + 0.1 * rng.standard_normal(net.n_edges)))
    net = net.with_law(law)
    k = law.conductance(rng.uniform(1.0, 8.0, net.n_edges))
    bc = Boundary(0, [(side // 2, -1), ((side // 2) * side, -1)], [((side // 2) * side + side // 2, -1)])
    x = np.array([[[1.3], [3.9]]])
    solver = make_twin_solver([net], [bc])
    assert solver.backend == "lu"
    for step in range(4):
        state = solver.response(k[None])
        _, out, _ = free_solution(state, x)
        clamped_solution(state, np.concatenate([x, out + 0.1 * (2.0 - out)], 1))
        if step == 0:
            after_cold = dict(solver.stats)
        k = k * (1 + 1e-3 * rng.standard_normal(net.n_edges))
    iterations = (solver.stats["iterations"] - after_cold["iterations"]) / 6
    assert iterations <= 5
    assert solver.stats["factorizations"] - after_cold["factorizations"] <= 1


def _lattice_learning_iterations(seed, predict=True, weak_node=None, monkeypatch=None):
    """Newton iterations of a cold free + clamped solve and of four warm learning steps after it on a 5,000-edge
    periodic transistor lattice (the benchmark's kind), with or without the predictor and the curvature step."""
    import edgesim.nonlinear as nonlinear
    if weak_node is not None:
        monkeypatch.setattr(nonlinear, "WEAK_NODE", weak_node)
    net = square_lattice(50, 50, periodic=True)
    rng = np.random.default_rng(seed)
    law = TransistorLaw(transconductance=S * (1 + 0.1 * rng.standard_normal(net.n_edges)))
    net = net.with_law(law)
    k = law.conductance(rng.uniform(1.0, 8.0, net.n_edges))
    nodes = rng.choice(net.n_nodes, 4, replace=False)
    bc = Boundary(int(nodes[0]), [(int(nodes[1]), -1), (int(nodes[2]), -1)], [(int(nodes[3]), -1)])
    x, target = rng.uniform(0, 5, (1, 2, 1)), rng.uniform(0, 5)
    solver = make_twin_solver([net], [bc])
    if not predict:
        solver._predict = lambda k_, k_old, alive, V_old, mu_old, V, mu, *rest: (V, mu, None, None)
    cold = None
    for step in range(5):
        state = solver.response(k[None])
        _, out, _ = free_solution(state, x)
        clamped_solution(state, np.concatenate([x, out + 0.5 * (target - out)], 1))
        if step == 0:
            cold = solver.stats["iterations"]
        k = k * (1 + 1e-3 * rng.standard_normal(k.size))
    return cold, solver.stats["iterations"] - cold


def test_the_predictor_and_the_curvature_step_save_newton_iterations(monkeypatch):
    """On six 5,000-edge lattices (what docs/nonlinear.md quotes): the Euler predictor saves warm iterations on
    every one (114 against 163 in all), the curvature step cold ones (76 against 92), and neither costs any."""
    both = np.array([_lattice_learning_iterations(seed) for seed in range(6)])
    plain_start = np.array([_lattice_learning_iterations(seed, predict=False) for seed in range(6)])
    no_curvature = np.array([_lattice_learning_iterations(seed, weak_node=0.0, monkeypatch=monkeypatch)
                             for seed in range(6)])
    assert np.all(both[:, 1] < plain_start[:, 1]) and both[:, 1].sum() < 0.8 * plain_start[:, 1].sum()
    assert np.all(both[:, 0] <= no_curvature[:, 0]) and both[:, 0].sum() < 0.9 * no_curvature[:, 0].sum()


def test_a_system_gets_the_same_numbers_alone_or_in_a_stack():
    nets, bcs, ks, xs = zip(*(random_transistor_network(s, n=5, periodic=True) for s in (1, 2, 3)))
    stacked = make_twin_solver(nets, bcs)
    _, out, power = free_solution(stacked.response(np.stack(ks)), np.concatenate(xs))
    for r in range(3):
        alone = make_twin_solver([nets[r]], [bcs[r]])
        _, o, p = free_solution(alone.response(ks[r][None]), xs[r])
        np.testing.assert_array_equal(o[0], out[r])
        np.testing.assert_array_equal(p[0], power[r])


def test_sparse_and_dense_newton_agree():
    net, bc, k, x = random_transistor_network(7, n=8)
    dense = free_solution(make_twin_solver([net], [bc], backend="dense").response(k[None]), x)
    sparse = free_solution(make_twin_solver([net], [bc], backend="lu").response(k[None]), x)
    np.testing.assert_allclose(dense[0].voltages, sparse[0].voltages, rtol=0, atol=1e-12)


def test_changed_columns_counts_what_moved_more_than_a_tenth_of_its_column():
    import scipy.sparse as sp
    J = sp.csc_matrix(np.array([[4.0, -1.0, 0.0], [-1.0, 4.0, -2.0], [0.0, -3.0, 5.0]]))
    same_pattern = J.copy()
    assert NonlinearTwinSolver._changed_columns(J, same_pattern) == 0
    same_pattern.data[J.indptr[1]:J.indptr[2]] *= 1.05  # column 1 by 5 %: not counted
    assert NonlinearTwinSolver._changed_columns(J, same_pattern) == 0
    same_pattern.data[J.indptr[2]:J.indptr[3]] *= 1.5  # column 2 by 50 %
    assert NonlinearTwinSolver._changed_columns(J, same_pattern) == 1
    assert NonlinearTwinSolver._changed_columns(J, sp.csc_matrix(np.eye(3))) == 3  # another pattern: everything


def test_removed_edges_carry_nothing_and_cut_off_parts_read_zero():
    net = transistor_lattice().with_law(TransistorLaw())
    bc = Boundary(0, [(5, -1)], [(10, -1)])
    alive = np.ones((1, 32), bool)
    alive[0, net.incidence[:, 10].nonzero()[0]] = False  # isolate the output node
    state = make_twin_solver([net], [bc]).response(np.full((1, 32), 2e-3), alive)
    sol, out, _ = free_solution(state, np.array([[[2.0]]]))
    assert out[0, 0, 0] == 0.0
    assert np.all(sol.drops[0, ~alive[0]] == 0)


# -- errors ----------------------------------------------------------------------------------------------------
def test_newton_that_does_not_converge_says_where_and_what_to_try():
    net, bc, k, x = random_transistor_network(11, n=6)
    solver = make_twin_solver([net], [bc], max_iterations=1)
    with pytest.raises(NewtonError, match=r"did not converge for system 0, example \d of the free twin after 1 "
                                          r"iteration\(s\).*at node \d+.*edges at that node.*Try:"):
        free_solution(solver.response(k[None]), x)


def test_bad_inputs_to_the_nonlinear_solver_are_refused():
    net, bc, k, x = random_transistor_network(2)
    solver = make_twin_solver([net], [bc])
    with pytest.raises(ValueError, match="must be finite voltages"):
        free_solution(solver.response(k[None]), np.where(x > 2, np.nan, x))
    with pytest.raises(ValueError, match="not a finite number"):
        solver.response(np.full((1, net.n_edges), np.inf))
    with pytest.raises(ValueError, match="cannot solve nonlinear networks"):
        make_twin_solver([net], [bc], backend="cg")
    with pytest.raises(ValueError, match="mixes networks with linear and nonlinear edges"):
        make_twin_solver([net, Network(net.n_nodes, net.edges)], [bc, bc])


def test_linear_law_reproduces_the_linear_solver():
    net = transistor_lattice()
    bc = Boundary(0, [(5, -1), (7, -1)], [(10, -1)])
    k = np.random.default_rng(0).uniform(1e-3, 3e-3, (1, 32))
    x = np.array([[[1.0, 2.0], [3.0, 0.5]]])

    class Resistor(LinearLaw):
        name = "resistor (through Newton)"  # not "linear": forces the Newton path

    _, out, power = free_solution(make_twin_solver([net.with_law(Resistor())], [bc]).response(k), x)
    _, out_lin, power_lin = free_solution(TwinSolver([net], [bc]).response(k), x)
    np.testing.assert_allclose(out, out_lin, rtol=1e-12)
    np.testing.assert_allclose(power, power_lin, rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), step=st.floats(0.01, 2.0))
def test_node_voltages_never_fall_when_an_input_rises(seed, step):
    """The Jacobian is an M-matrix: raising an input raises (or keeps) every node voltage.  Hence no single
    output node can compute XOR, whatever the learned gates (docs/nonlinear.md)."""
    net, bc, k, x = random_transistor_network(seed, options={"subthreshold": True})
    solver = make_twin_solver([net], [bc])
    higher = x.copy()
    higher[0, 0] += step
    low = free_solution(solver.response(k[None]), x)[0].voltages
    high = free_solution(solver.response(k[None]), higher)[0].voltages
    assert (high - low).min() >= -1e-12
