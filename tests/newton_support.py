"""Random transistor networks and the solves a training run asks of Newton (tests/test_nonlinear.py and
benchmarks/stress_newton.py)."""

from __future__ import annotations

import numpy as np

from edgesim.edgelaws import TransistorLaw
from edgesim.network import square_lattice
from edgesim.nonlinear import make_twin_solver
from edgesim.physics import Boundary, clamped_solution, free_solution

S = 8.5e-4  # A/V^2, the laboratory transistors (Dillavou et al. 2024)


def random_transistor_network(seed, n=None, periodic=None, options=None):
    """A random n x n (3..8) transistor lattice, periodic or open, per-edge S with a 10 % spread, gates V_T + 0.3 to
    V_T + 7 V, ground, two inputs and an output at random nodes, and three examples of inputs in 0..5 V."""
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(3, 9))
    periodic = bool(rng.integers(2)) if periodic is None else periodic
    net = square_lattice(n, n, periodic=periodic and n >= 3)
    law = TransistorLaw(transconductance=S * (1 + 0.1 * rng.normal(size=net.n_edges)), **(options or {}))
    net = net.with_law(law)
    nodes = rng.choice(net.n_nodes, 4, replace=False)
    bc = Boundary(int(nodes[0]), [(int(nodes[1]), -1), (int(nodes[2]), -1)], [(int(nodes[3]), -1)])
    k = law.transconductance * rng.uniform(0.3, 7.0, net.n_edges)  # gate voltages V_T + 0.3 .. V_T + 7 V
    x = rng.uniform(0, 5, (1, 2, 3))
    return net, bc, k, x


def solve_like_training(net, bc, k, x, seed, backend="auto"):
    """The free twin, the clamped twin (outputs clamped up to 1 V off the free output), then three learning steps
    ``k *= 1 + 1e-2 noise`` (warm starts, clamps 30 % of the way back); returns the Newton iterations.  Raises
    :class:`~edgesim.nonlinear.NewtonError` where Newton fails."""
    rng = np.random.default_rng(seed)
    solver = make_twin_solver([net], [bc], backend=backend)
    state = solver.response(k[None])
    _, out, _ = free_solution(state, x)
    values = np.concatenate([x, out + rng.uniform(-1, 1, out.shape)], 1)
    clamped_solution(state, values)
    for _ in range(3):
        k = k * (1 + 1e-2 * rng.standard_normal(k.size))
        state = solver.response(k[None])
        _, out, _ = free_solution(state, x)
        clamped_solution(state, np.concatenate([x, out + 0.3 * (values[:, 2:] - out)], 1))
    return solver.stats["iterations"]
