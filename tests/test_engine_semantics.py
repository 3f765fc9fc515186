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


def _process_sets_edge(edge, value, when):
    from edgesim.engine.core import DAMAGE, at

    def process(env, ctx):
        yield at(env, when, DAMAGE)
        ctx.set_conductance([edge], value)
    return process


def test_a_process_that_sets_a_conductance_is_not_undone_by_the_edge():
    """The edge's memory is the only owner of its conductance: a scenario process writes the memory,
    so the edge's next ticks start from the new value instead of restoring its old one."""
    from edgesim.config import EngineConfig, HardwareSpec, LearningConfig, MemorySpec
    from edgesim.engine.simulate import simulate

    task = lab_task()
    times = np.arange(11) * 1.0
    for kind in ("per_edge", "vectorized"):
        # alpha = 0: every tick rewrites the edge's own value, so a value kept outside the memory would be lost
        h, info = simulate(task, LearningConfig(alpha=0.0, eta=0.1), HardwareSpec(), EngineConfig(kind=kind),
                           np.ones(16), times, seed=0, processes=[_process_sets_edge(5, 4.0, 3.0)])
        k = h.conductance[0]
        # set at t = 3 s (damage phase: before the record at 3 s), kept through the 7 ticks after
        assert (k[:3, 5] == 1.0).all() and (k[3:, 5] == 4.0).all(), kind
        assert (h.update_count[0, -1] == 10).all()  # the edges did tick and update meanwhile
        # ... and the physics saw it: the free power changed when the edge did, then stayed.
        assert h.free_power[0, 2] != h.free_power[0, 3] and h.free_power[0, 3] == h.free_power[0, -1]
    # Taps: the value snaps to the nearest tap of the edge's ladder and learning continues from there.
    h, _ = simulate(task, LearningConfig(rule="sign", eta=0.1), HardwareSpec(memory=MemorySpec(kind="taps")),
                    EngineConfig(kind="vectorized"), np.full(16, 1.25e-5), times, seed=0,
                    processes=[_process_sets_edge(5, 5e-4, 3.0)])
    ladder = LearningConfig().taps.conductances
    k5 = h.conductance[0, :, 5]
    assert np.isin(k5, ladder).all()
    assert k5[3] == ladder[LearningConfig().taps.nearest_tap(5e-4)] != k5[2]  # the nearest tap
    assert (np.abs(np.diff(np.searchsorted(ladder, k5[3:]))) <= 1).all()  # then one tap per tick at most


def test_shared_physics_takes_conductances_only_from_the_memory():
    task = lab_task()
    memory = np.linspace(0.5, 1.5, 16)
    phys = SharedPhysics(task.network, task.boundary, memory, np.ones(16))
    assert not hasattr(phys, "set_conductance")
    memory[2] = 9.0
    phys.commit(np.array([2]), 0.0)
    np.testing.assert_array_equal(phys.k, memory)
