"""edgesim's Newton equilibria of transistor networks against ngspice on the same circuits.

Each edge is a behavioural current source implementing :class:`edgesim.edgelaws.TransistorLaw` in an ngspice
netlist (``tests/spice_support.py``); ngspice's operating point (``.op``, reltol 1e-12) and edgesim's free and
clamped twins must agree to 1e-8 V at every node.  Skipped where ngspice is not installed (CI installs it).

Nodes, or islands of nodes, that only leakage holds to the rest (every transistor leaving them cut off) are the
hard cases: a residual small against the largest current still means microvolts there.  edgesim's stopping rule
covers them (a per-node voltage-error bound and a bound on the last Newton step); a disagreement is reported with
the island, the residuals and where exact Newton steps from edgesim's answer land.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from edgesim.edgelaws import TransistorLaw
from edgesim.network import Network, jammed_network, square_lattice
from edgesim.nonlinear import make_twin_solver
from edgesim.physics import Boundary, clamped_solution, free_solution

from spice_support import _literal, ngspice_available, solve_with_ngspice, transistor_netlist

needs_ngspice = pytest.mark.skipif(not ngspice_available(),
                                   reason="ngspice is not installed (apt-get install ngspice)")

#: Largest node-voltage difference allowed between edgesim and ngspice (V).
AGREEMENT = 1e-8
S_NOMINAL = 8.5e-4

VARIANTS = {
    "square-law": {},
    "channel-length-modulation": {"channel_length_modulation": 0.05},
    "subthreshold": {"subthreshold": True},
}

def random_lattice(rng) -> Network:
    """A square lattice (open or periodic) of 10 to 500 edges."""
    while True:
        periodic = bool(rng.integers(2))
        nx_, ny = (int(v) for v in rng.integers(3 if periodic else 2, 17, 2))
        net = square_lattice(nx_, ny, periodic=periodic)
        if 10 <= net.n_edges <= 500:
            return net


def random_problem(rng, base: Network, law_options: dict, n_inputs: int | None = None):
    """The network with random transistors (S with 10 % spread, V_G in 1..8 V), its k and a boundary."""
    E = base.n_edges
    S = S_NOMINAL * (1.0 + 0.1 * rng.standard_normal(E))
    law = TransistorLaw(transconductance=S, **law_options)
    k = law.conductance(rng.uniform(1.0, 8.0, E))
    n_inputs = int(rng.integers(2, 4)) if n_inputs is None else n_inputs
    nodes = rng.choice(base.n_nodes, n_inputs + 2, replace=False)
    bc = Boundary(int(nodes[0]), [(int(v), -1) for v in nodes[1:-1]], [(int(nodes[-1]), -1)])
    return base.with_law(law), k, bc


def node_currents(net, k, V, held):
    """KCL residual (N,) at the free nodes, edge currents (E,) and their derivatives, by edgesim's law."""
    a, b = net.edges[:, 0], net.edges[:, 1]
    I, g_a, g_b = net.law.current(k, V[a], V[b])
    F = np.bincount(a, I, net.n_nodes) - np.bincount(b, I, net.n_nodes)
    F[held] = 0.0
    return F, I, g_a, g_b


def polish(net, k, V, held, iterations: int = 8):
    """More Newton steps from ``V`` with the exact Jacobian (no floor, no line search): where ``V`` is near the
    equilibrium this lands on it to rounding."""
    V = V.copy()
    N, a, b = net.n_nodes, net.edges[:, 0], net.edges[:, 1]
    pinned = np.zeros(N, bool)
    pinned[held] = True
    for _ in range(iterations):
        F, _, g_a, g_b = node_currents(net, k, V, held)
        rows, cols = np.r_[a, a, b, b], np.r_[a, b, a, b]
        vals = np.r_[g_a, g_b, -g_a, -g_b] * ~pinned[rows]
        J = sp.csc_matrix((vals, (rows, cols)), shape=(N, N)) + sp.diags(pinned.astype(float))
        step = spla.spsolve(J.tocsc(), F)
        V -= step
        if np.abs(step).max() < 1e-15:
            break
    return V


def check_agreement(net, k, cases):
    """Assert edgesim's node voltages agree with the reference to AGREEMENT volts in every case.

    ``cases``: (label, V_edgesim, V_reference, held nodes).  A disagreement fails, naming the node, its island of
    nodes joined by conducting transistors, the residuals, and how far exact Newton steps from edgesim's answer
    land from the reference (near zero: edgesim stopped too early; large: the circuits differ).
    """
    for label, V, ref, held in cases:
        error = np.abs(V - ref)
        if error.max() < AGREEMENT:
            continue
        node = int(np.argmax(error))
        F, I, g_a, g_b = node_currents(net, k, V, held)
        residual = np.abs(F).max() / np.abs(I).max()
        polished = np.abs(polish(net, k, V, held) - ref).max()
        # the island of the node: nodes joined to it by conducting transistors (more than 1000 x the leakage)
        _, _, ga_ref, gb_ref = node_currents(net, k, ref, held)
        g = 0.5 * (np.abs(ga_ref) + np.abs(gb_ref))
        strong = g > 1e3 * net.law.leakage_conductance
        graph = sp.coo_matrix((np.ones(strong.sum()), (net.edges[strong, 0], net.edges[strong, 1])),
                              shape=(net.n_nodes, net.n_nodes))
        island = connected_components(graph, directed=False)[1]
        inside = island == island[node]
        leaving = inside[net.edges[:, 0]] != inside[net.edges[:, 1]]
        what = (f"{label}: node {node} is {error.max():.2e} V off, in an island of {inside.sum()} node(s) held by "
                f"{g[leaving].sum():.2e} S (net KCL residual {abs(F[inside].sum()):.1e} A); edgesim's relative KCL "
                f"residual {residual:.1e}; after exact Newton steps {polished:.1e} V")
        pytest.fail(f"edgesim and the reference disagree: {what}")


def compare(net, k, bc, rng, n_examples: int = 2, solver=None):
    """Free and clamped twins of ``n_examples`` random examples by edgesim and by ngspice, checked to agree."""
    solver = solver or make_twin_solver([net], [bc])
    n_in = len(bc.inputs)
    x = rng.uniform(0.0, 5.0, (1, n_in, n_examples))
    state = solver.response(k[None, :])
    free, out, _ = free_solution(state, x)
    target = rng.uniform(0.0, 5.0, (1, 1, n_examples))
    values = np.concatenate([x, out + 0.5 * (target - out)], axis=1)
    clamped, _ = clamped_solution(state, values)
    inputs = [bc.ground] + [a for a, _ in bc.inputs]
    cases = []
    for j in range(n_examples):
        V_free, _ = solve_with_ngspice(net, k, bc, x[0, :, j])
        V_clamped, _ = solve_with_ngspice(net, k, bc, values[0, :, j], clamped=True)
        cases.append((f"free twin, example {j}", free.voltages[0, :, j], V_free, inputs))
        cases.append((f"clamped twin, example {j}", clamped.voltages[0, :, j], V_clamped,
                      inputs + [a for a, _ in bc.outputs]))
    check_agreement(net, k, cases)


def test_literals_are_exact():
    """B-source literals are an 11-digit head plus the remainder (ngspice keeps 11 digits of each literal)."""
    rng = np.random.default_rng(0)
    for x in np.exp(rng.uniform(-30, 5, 200)) * rng.choice([-1.0, 1.0], 200):
        text = _literal(x)
        numbers = re.findall(r"[-+]?(\d)\.(\d+)e[-+]\d+", text)
        assert numbers and all(1 + len(frac) <= 11 for _, frac in numbers)
        assert eval(text) == x  # noqa: S307  (the same two numbers, summed in double precision)


def test_netlist_maps_ground_to_spice_node_0():
    law = TransistorLaw(transconductance=S_NOMINAL, channel_length_modulation=0.05)
    net = square_lattice(3, 2).with_law(law)
    text = transistor_netlist(net, np.full(net.n_edges, 2 * S_NOMINAL), [((5, -1), 1.5)], ground=2)
    assert "VFIX0 n5 0 DC 1.5" in text
    assert " n2 " not in text and "V(n2)" not in text  # the ground is SPICE's node 0
    assert text.count("\nB") == net.n_edges and text.count("\nRL") == net.n_edges
    assert "abs(V(n0)-V(n1))" in text


@needs_ngspice
def test_ngspice_reference_is_exact():
    """The reference itself: a node held only by leakage sits at the leakage divider, and a series pair of ohmic
    transistors at the root of its KCL quadratic."""
    S = S_NOMINAL
    law = TransistorLaw(transconductance=S)
    net = Network(4, [[1, 0], [1, 3], [2, 3], [2, 0]], law=law)
    k = S * np.array([8.0, 1.0, 2.0, 8.0])  # edges (1,3), (2,3) cut off at node 3
    V, result = solve_with_ngspice(net, k, Boundary(0, [(1, -1), (2, -1)], [(3, -1)]), [5.0, 4.0])
    assert abs(V[3] - 4.5) < 1e-12 and not result.stepping
    # node 2 between an input at 2 V (node 1) and the ground through ohmic transistors with drives 6 V and 5 V:
    # (6 - v)^2 - 4^2 = 5^2 - (5 - v)^2, i.e. v^2 - 11 v + 10 = 0, v = 1 V
    net = Network(3, [[1, 2], [2, 0]], law=TransistorLaw(transconductance=S, leakage_conductance=0.0))
    V, _ = solve_with_ngspice(net, S * np.array([6.0, 5.0]), Boundary(0, [(1, -1)], [(2, -1)]), [2.0])
    assert abs(V[2] - 1.0) < 1e-13


@needs_ngspice
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("seed", range(6))
def test_random_lattices_agree_with_ngspice(variant, seed):
    rng = np.random.default_rng([seed, list(VARIANTS).index(variant)])
    net, k, bc = random_problem(rng, random_lattice(rng), VARIANTS[variant])
    compare(net, k, bc, rng)


@needs_ngspice
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_smallest_lattices_agree_with_ngspice(variant):
    """The lower end of the range: a 2x4 open lattice (10 edges) and a 3x3 periodic one (18 edges)."""
    for shape, periodic in (((2, 4), False), ((3, 3), True)):
        base = square_lattice(*shape, periodic=periodic)
        assert base.n_edges in (10, 18)
        rng = np.random.default_rng([base.n_edges, list(VARIANTS).index(variant)])
        net, k, bc = random_problem(rng, base, VARIANTS[variant], n_inputs=2)
        compare(net, k, bc, rng)


@needs_ngspice
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_jammed_network_agrees_with_ngspice(variant):
    rng = np.random.default_rng([7, list(VARIANTS).index(variant)])
    net, k, bc = random_problem(rng, jammed_network(64, 1 + list(VARIANTS).index(variant)), VARIANTS[variant])
    compare(net, k, bc, rng, n_examples=1)


@needs_ngspice
@pytest.mark.parametrize("backend", ["auto", "lu"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_warm_started_learning_steps_agree_with_ngspice(variant, backend):
    """Newton from the previous equilibrium after a learning step (k *= 1 + 1e-3 noise) finds the same point, with
    the dense steps (auto, at this size) and with the sparse ones networks above 400 nodes take (inexact GMRES
    steps preconditioned by kept LU factors, the free twin's factors for the clamped twin's first step)."""
    rng = np.random.default_rng([11, list(VARIANTS).index(variant)])
    net, k, bc = random_problem(rng, square_lattice(12, 12, periodic=True), VARIANTS[variant], n_inputs=2)
    solver = make_twin_solver([net], [bc], backend=backend)
    compare(net, k, bc, np.random.default_rng(0), n_examples=1, solver=solver)
    for _ in range(2):
        k = k * (1.0 + 1e-3 * rng.standard_normal(k.size))
        compare(net, k, bc, np.random.default_rng(0), n_examples=1, solver=solver)


def cut_off_problem(variant: str, seed: int = 3):
    """A 16x16 periodic lattice (512 edges) with 30 % of the transistors nearly off: V_G - V_T = 1e-6 V."""
    rng = np.random.default_rng([seed, list(VARIANTS).index(variant)])
    net, k, bc = random_problem(rng, square_lattice(16, 16, periodic=True), VARIANTS[variant], n_inputs=3)
    off = rng.random(k.size) < 0.3
    k = np.where(off, 1e-6 * net.law.transconductance, k)
    return net, k, bc, rng


@needs_ngspice
@pytest.mark.parametrize("backend", ["auto", "lu"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cut_off_edges_agree_with_ngspice(variant, backend):
    net, k, bc, rng = cut_off_problem(variant)
    compare(net, k, bc, rng, solver=make_twin_solver([net], [bc], backend=backend))


def test_node_held_by_leakage():
    """The smallest node held only by leakage (no ngspice needed): node 3 hangs between inputs at 5 V and 4 V through
    two cut-off transistors (V_G - V_T = 1 V and 2 V, below every terminal voltage), so only the two leakage
    conductances hold it: 4.5 V exactly.  Edge (1, 0) carries the largest current, 0.023 A."""
    law = TransistorLaw(transconductance=S_NOMINAL)
    net = Network(4, [[1, 0], [1, 3], [2, 3], [2, 0]], law=law)
    k = S_NOMINAL * np.array([8.0, 1.0, 2.0, 8.0])
    bc = Boundary(0, [(1, -1), (2, -1)], [(3, -1)])
    solver = make_twin_solver([net], [bc])
    sol, _, _ = free_solution(solver.response(k[None]), np.array([[[5.0], [4.0]]]))
    check_agreement(net, k, [("free twin", sol.voltages[0, :, 0], np.array([0.0, 5.0, 4.0, 4.5]), [0, 1, 2])])
