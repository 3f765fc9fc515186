"""Semantics of the shared physics that the engines rely on (settling, removed edges, comparators)."""

import numpy as np

from edgesim.engine.shared_physics import SharedPhysics
from edgesim.network import lab_network
from edgesim.physics import TwinSolver, free_solution
from edgesim.rules import sign_rule_direction
from edgesim.tasks import node_allostery
from edgesim.trainer import LearningConfig, train_synchronous


def lab_task():
    return node_allostery(lab_network(), {0: 5.0, 8: 1.0}, {3: 3.0, 5: 3.0, 7: 3.0}, ground=2)


def exact_outputs(task, k, alive, x):
    resp = TwinSolver([task.network], [task.boundary]).response(k[None], alive[None])
    return free_solution(resp, x[None])[1][0]


def test_settle_time_counts_from_the_change_not_from_the_last_refresh():
    task = lab_task()
    memory = np.ones(16)
    phys = SharedPhysics(task.network, task.boundary, memory, np.ones(16), settle_time=1.5)
    x = task.train_inputs
    before = phys.free_outputs(0.0, x)
    memory[3] = 5.0
    phys.commit(np.array([3]), 1.9)  # long after the refresh at t = 0
    np.testing.assert_array_equal(phys.free_outputs(1.95, x), before)  # not settled yet
    np.testing.assert_array_equal(phys.free_outputs(3.39, x), before)
    k = np.ones(16)
    k[3] = 5.0
    np.testing.assert_allclose(phys.free_outputs(3.4, x), exact_outputs(task, k, np.ones(16, bool), x), rtol=1e-12)


def test_removed_edges_leave_the_circuit_whatever_their_conductance_does():
    task = lab_task()
    memory = np.ones(16)
    phys = SharedPhysics(task.network, task.boundary, memory, np.ones(16), max_rank=4)
    x = task.train_inputs
    phys.free_outputs(0.0, x)
    phys.set_alive(np.array([4]), False, 1.0)
    phys.free_outputs(1.0, x)  # refactor without edge 4
    memory[[4, 6]] = [7.0, 2.0]
    phys.commit(np.array([4, 6]), 2.0)  # edge 4 keeps changing while removed
    k = np.ones(16)
    k[[4, 6]] = [7.0, 2.0]
    alive = np.ones(16, bool)
    alive[4] = False
    np.testing.assert_allclose(phys.free_outputs(2.0, x), exact_outputs(task, k, alive, x), rtol=1e-12)


def test_comparator_offset_keeps_its_sign():
    # free 5 mV, clamped 0 V: an offset of -10 mV makes the clamped reading look smaller -> step up
    assert sign_rule_direction(0.005, 0.0, comparator_error=-0.010) == 1
    assert sign_rule_direction(0.005, 0.0, comparator_error=+0.010) == -1
    assert sign_rule_direction(0.005, 0.0) == 1


def test_a_system_does_not_depend_on_what_it_is_stacked_with():
    task = lab_task()
    cfg = LearningConfig(k_min=1e-3, k_max=1e3)
    alone = train_synchronous([task], cfg, 100, [np.ones(16)], eta=0.5, alpha=0.05)
    stacked = train_synchronous([task, task], cfg, 100, [np.ones(16), np.full(16, 2.0)], eta=0.5, alpha=0.05)
    np.testing.assert_array_equal(stacked.conductance[0], alone.conductance[0])
    np.testing.assert_array_equal(stacked.error_train[0], alone.error_train[0])
