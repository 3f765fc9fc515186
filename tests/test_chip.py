"""The chip model (edgesim.chip): settling from the RC time constant, energy and area bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from edgesim.chip import CHIP_PRESETS, ChipModel, chip_estimate, chip_preset, relaxation_time
from edgesim.network import Network, square_lattice


def _chain(n_nodes):
    return Network(n_nodes, np.column_stack([np.arange(n_nodes - 1), np.arange(1, n_nodes)]), name="chain")


def test_two_nodes_relax_with_the_rc_time_of_the_pair():
    """Two capacitors C joined by k: the charge difference decays as exp(-2 k t / C)."""
    net = _chain(2)
    assert relaxation_time(net, np.array([1e-3]), 1e-9) == pytest.approx(1e-9 / 2e-3, rel=1e-12)


def test_wire_resistance_adds_in_series():
    net = _chain(2)
    slow = relaxation_time(net, np.array([1e-3]), 1e-9, wire_resistance=1000.0)  # 1 kOhm + 1 kOhm
    assert slow == pytest.approx(1e-9 / (2 * 0.5e-3), rel=1e-12)


@pytest.mark.parametrize("n_nodes", [10, 1000])
def test_chain_relaxation_matches_the_analytic_slowest_mode(n_nodes):
    """Uniform chain: lambda_2 = 2 k (1 - cos(pi / n)); the large case goes through the sparse eigensolver."""
    net = _chain(n_nodes)
    k = 2e-4
    expected = 1e-12 / (2 * k * (1 - np.cos(np.pi / n_nodes)))
    assert relaxation_time(net, np.full(net.n_edges, k), 1e-12) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n_nodes", [10, 1000])
def test_chain_held_at_one_end_relaxes_like_its_quarter_wave_mode(n_nodes):
    """Node 0 held by a source: mu_1 = 2 k (1 - cos(pi / (2n - 1))), nearly four times slower than lambda_2."""
    net = _chain(n_nodes)
    k = 2e-4
    expected = 1e-12 / (2 * k * (1 - np.cos(np.pi / (2 * n_nodes - 1))))
    held = relaxation_time(net, np.full(net.n_edges, k), 1e-12, held_nodes=[0])
    assert held == pytest.approx(expected, rel=1e-6)
    assert held > 3.5 * relaxation_time(net, np.full(net.n_edges, k), 1e-12)


def test_holding_more_nodes_only_speeds_the_network_up():
    """Eigenvalue interlacing: each node held by a source raises the slowest rate (or keeps it)."""
    net = square_lattice(12, 12)
    k = np.exp(np.random.default_rng(2).normal(0, 1, net.n_edges))
    taus = [relaxation_time(net, k, 1e-12, held_nodes=[0, 143, 70][:n]) for n in (1, 2, 3)]
    assert taus[0] >= taus[1] >= taus[2] > 0
    assert taus[0] > relaxation_time(net, k, 1e-12)  # one held node: slower than the floating network


def test_relaxation_time_grows_like_the_node_count_on_lattices():
    """Diffusive settling: tau ~ L^2 ~ N on a square lattice (lambda_2 = 2 k (1 - cos(pi / L)))."""
    taus = {side: relaxation_time(square_lattice(side, side), np.ones(2 * side * (side - 1)), 1.0)
            for side in (10, 40)}
    for side, tau in taus.items():
        assert tau == pytest.approx(1.0 / (2 * (1 - np.cos(np.pi / side))), rel=1e-6)
    assert 14 < taus[40] / taus[10] < 18


def test_estimate_bookkeeping():
    chip = chip_preset("integrated")
    net = square_lattice(6, 6)
    k = np.full(net.n_edges, 1e-5)
    est = chip_estimate(chip, net, k, steps=100, free_power=2e-6, clamped_power=3e-6, max_input=0.5)
    tau = relaxation_time(net, k, chip.node_capacitance, chip.wire_resistance)
    assert est.settling_time_s == pytest.approx(tau * np.log(1e3))
    assert est.step_time_s == pytest.approx(1e-7 + est.settling_time_s)
    assert est.training_time_s == pytest.approx(100 * est.step_time_s)
    assert est.inference_energy_J == pytest.approx(2e-6 * est.settling_time_s)
    assert est.energy_per_parameter_J == pytest.approx(est.inference_energy_J / net.n_edges)
    assert est.training_energy_J == pytest.approx(100 * (5e-6 * est.step_time_s + net.n_edges * 1e-14))
    assert est.area_m2 == pytest.approx(net.n_edges * 40 * 1e-12)
    assert est.fraction_outside_range == 0.0 and est.inputs_within_supply
    k[:6] = 1e-3  # above the chip's k_max
    assert chip_estimate(chip, net, k, 1, 0, 0, max_input=2.0).fraction_outside_range == pytest.approx(
        6 / net.n_edges)
    assert not chip_estimate(chip, net, k, 1, 0, 0, max_input=2.0).inputs_within_supply


def test_presets_are_valid_and_cite_sources():
    for name, chip in CHIP_PRESETS.items():
        assert chip.name == name and chip.source
    with pytest.raises(KeyError, match="known: breadboard2022"):
        chip_preset("tpu")


@pytest.mark.parametrize("field, value", [("node_capacitance", 0.0), ("clock_frequency", -1.0), ("k_min", 1.0),
                                          ("wire_resistance", -1.0), ("settle_tolerance", 1.0)])
def test_bad_parameters_are_errors_naming_them(field, value):
    base = chip_preset("integrated").__dict__ | {field: value}
    with pytest.raises(ValueError, match=field):
        ChipModel(**base)


def test_a_disconnected_network_never_settles():
    net = square_lattice(3, 3)
    deg0 = np.flatnonzero((net.edges == 0).any(1))
    k = np.ones(net.n_edges)
    k[deg0] = 0.0  # node 0 cut off
    with pytest.raises(ValueError, match="not connected"):
        relaxation_time(net, k, 1e-12)
