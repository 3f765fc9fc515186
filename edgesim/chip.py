"""What a simulated network would cost as hardware: time, energy and area from a few chip parameters.

A :class:`ChipModel` holds the physical parameters of one kind of hardware
(conductance range, node capacitance, wire resistance, clock, supply,
transistors and area per edge, energy per update).  From a simulated network
and its learning record, :func:`chip_estimate` derives:

* the **settling time** of the network, ``tau ln(1 / settle_tolerance)``, with
  ``tau = C_node / mu_1`` its slowest mode: ``mu_1`` the smallest eigenvalue
  of the conductance-weighted Laplacian (wire resistance in series with every
  edge) with the nodes held by voltage sources removed (the free state: ground
  and inputs).  The clamped twin also holds its outputs, and holding more
  nodes only makes the modes faster (eigenvalue interlacing), so the free
  state's settling bounds both twins'.  Without held nodes ``mu_1`` is the
  algebraic connectivity ``lambda_2``, which *underestimates* the settling of a
  driven network (up to ~16x on a 16 x 16 lattice held at one node);
* the **hardware time per learning step**: a clock period (the edges' update
  loop) plus the settling of the twins, which settle in parallel;
* the **hardware time to train**: steps times the time per step;
* the **inference energy** per example: free power times the settling time;
  and that energy per parameter (edge);
* the **training energy**: per step, free plus clamped power over the step
  time plus every edge's update energy;
* the **area**: edges x transistors per edge x area per transistor.

Simulations are in SI units (S, V, W); a model also says which fraction of
the trained conductances lies outside its conductance range, and whether the
inputs exceed its supply.

The presets' numbers and where they come from are in :data:`CHIP_PRESETS`;
values no paper states are marked *assumed* there, with the reasoning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .network import Network

__all__ = ["ChipModel", "ChipEstimate", "CHIP_PRESETS", "chip_preset", "relaxation_time", "chip_estimate"]


@dataclass(frozen=True)
class ChipModel:
    """Physical parameters of learning hardware (SI units).

    Attributes
    ----------
    name : str
    k_min, k_max : float
        Conductance range of an edge (S).
    node_capacitance : float
        Capacitance of every node to ground (F).
    wire_resistance : float
        Resistance in series with every edge (ohm).
    clock_frequency : float
        Learning steps per second the edges' update loop allows, settling aside (Hz).
    supply_voltage : float
        Largest voltage the circuit applies (V).
    transistors_per_edge : int
        Transistors (or transistor equivalents) of one edge with its twin and update circuit.
    area_per_transistor : float
        Board or die area per transistor, routing included (m^2).
    energy_per_update : float
        Energy of one edge's update (comparator, counter or charge pump), per step (J).
    settle_tolerance : float
        Relative distance to equilibrium at which the network counts as settled.
    source : str
        Where the numbers come from.
    """

    name: str
    k_min: float
    k_max: float
    node_capacitance: float
    wire_resistance: float
    clock_frequency: float
    supply_voltage: float
    transistors_per_edge: int
    area_per_transistor: float
    energy_per_update: float
    settle_tolerance: float = 1e-3
    source: str = ""

    def __post_init__(self):
        for key in ("k_min", "k_max", "node_capacitance", "clock_frequency", "supply_voltage",
                    "transistors_per_edge", "area_per_transistor"):
            value = getattr(self, key)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"chip {self.name!r}: {key} must be positive and finite, got {value!r}")
        for key in ("wire_resistance", "energy_per_update"):
            value = getattr(self, key)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"chip {self.name!r}: {key} must be >= 0 and finite, got {value!r}")
        if self.k_min >= self.k_max:
            raise ValueError(f"chip {self.name!r}: k_min ({self.k_min}) must be below k_max ({self.k_max})")
        if not 0 < self.settle_tolerance < 1:
            raise ValueError(f"chip {self.name!r}: settle_tolerance must lie in (0, 1), got {self.settle_tolerance}")

    @property
    def clock_period(self) -> float:
        """Seconds per update of the edges' loop (s)."""
        return 1.0 / self.clock_frequency


#: Presets.  Stated values cite the paper; *assumed* values are order-of-magnitude choices explained here.
CHIP_PRESETS = {
    # Dillavou et al., Phys. Rev. Applied 18, 014040 (2022): 16 edges on breadboards, each a pair of
    # AD5220 100 kOhm 128-tap digital potentiometers (free and clamped twin) with a comparator.
    # Conductance range of the potentiometer ladder (781 Ohm .. 100 kOhm, as [learning.taps]);
    # clock 4 Hz as edgesim's digipot2022 preset.  Assumed: 100 pF per node (breadboard strips,
    # jumpers and the measurement inputs), 0.1 Ohm jumper wire, about 600 transistors per edge (two
    # 128-switch ladders with their 7-bit counters, comparator and logic), 20 cm^2 of breadboard per
    # edge, 1 nJ per update (clocking the counters and wiper switches of two potentiometers).
    "breadboard2022": ChipModel(
        name="breadboard2022", k_min=1e-5, k_max=1.28e-3, node_capacitance=100e-12, wire_resistance=0.1,
        clock_frequency=4.0, supply_voltage=5.0, transistors_per_edge=600, area_per_transistor=20e-4 / 600,
        energy_per_update=1e-9,
        source="Dillavou et al. 2022 (PRApplied 18, 014040); capacitance, wiring, area and update energy assumed"),
    # Dillavou et al., PNAS 2024 ("Machine learning without a processor"): 32 transistor edges (4 x 4
    # periodic lattice), gate voltage on a 2.2 uF capacitor charged through 1 kOhm, 1 ms learning clock,
    # conductance range 1e-7 .. 1e-2 S (edgesim's transistor2024 preset); the paper reports inference in
    # microseconds at picojoules per transistor.  Assumed: 50 pF per node (printed circuit board),
    # 0.05 Ohm traces, about 40 transistors per edge (twin transistors, comparator, charge pump and
    # switches), 1 cm^2 of board per edge, 10 nJ per update (moving a 2.2 uF gate by a few mV).
    "transistor2024": ChipModel(
        name="transistor2024", k_min=1e-7, k_max=1e-2, node_capacitance=50e-12, wire_resistance=0.05,
        clock_frequency=1e3, supply_voltage=5.0, transistors_per_edge=40, area_per_transistor=1e-4 / 40,
        energy_per_update=1e-8,
        source="Dillavou et al. 2024 (PNAS); capacitance, wiring, area and update energy assumed"),
    # A projected integrated chip (all assumed, typical of a 65 nm-class CMOS process): transistor
    # edges of 10 kOhm .. 10 MOhm, 1 fF per node (short wires, gate loads), 10 Ohm of wire per edge,
    # a 10 MHz update clock, 1 V supply, 40 transistors per edge at 1 um^2 each with routing, and
    # 10 fJ per update (a small charge pump or counter step).
    "integrated": ChipModel(
        name="integrated", k_min=1e-7, k_max=1e-4, node_capacitance=1e-15, wire_resistance=10.0,
        clock_frequency=1e7, supply_voltage=1.0, transistors_per_edge=40, area_per_transistor=1e-12,
        energy_per_update=1e-14,
        source="projection: every value assumed (65 nm-class CMOS)"),
}


def chip_preset(name: str) -> ChipModel:
    """The named chip model (see :data:`CHIP_PRESETS`); an unknown name lists the known ones."""
    if name not in CHIP_PRESETS:
        raise KeyError(f"unknown chip model {name!r}; known: {', '.join(CHIP_PRESETS)}")
    return CHIP_PRESETS[name]


def _slowest_rate(laplacian: sp.csr_matrix, held: np.ndarray) -> float:
    """Smallest eigenvalue of the Laplacian without the ``held`` nodes (none held: the second-smallest
    of the whole, the smallest being 0)."""
    keep = np.ones(laplacian.shape[0], bool)
    keep[held] = False
    reduced = laplacian[keep][:, keep]
    index = 0 if len(held) else 1
    if reduced.shape[0] <= 600:
        return float(sla.eigvalsh(reduced.toarray(), subset_by_index=[index, index])[0])
    # shift-invert about a point just below 0: the factorization stays positive definite
    shift = -1e-8 * float(reduced.diagonal().mean())
    values = spla.eigsh(reduced.tocsc(), k=index + 1, sigma=shift, which="LM", return_eigenvectors=False,
                        tol=1e-8)
    return float(np.sort(values)[index])


def relaxation_time(network: Network, conductance: np.ndarray, node_capacitance: float,
                    wire_resistance: float = 0.0, held_nodes=()) -> float:
    """Time constant (s) of the slowest mode of the node voltages: ``C_node / mu_1``.

    Parameters
    ----------
    network : Network
    conductance : ndarray (E,)
        Edge conductances (S); removed edges as 0 or NaN.
    node_capacitance : float
        F per node.
    wire_resistance : float
        Ohm in series with every edge.
    held_nodes : sequence of int
        Nodes held by voltage sources (ground and inputs); none: the floating network (``lambda_2``).
    """
    k = np.nan_to_num(np.asarray(conductance, dtype=float), nan=0.0)
    if k.shape != (network.n_edges,):
        raise ValueError(f"conductance must have one value per edge ({network.n_edges}), got {k.shape}")
    if (k < 0).any():
        raise ValueError("conductances must not be negative")
    k_eff = np.where(k > 0, 1.0 / (1.0 / np.where(k > 0, k, 1.0) + wire_resistance), 0.0)
    incidence = network.incidence
    laplacian = (incidence.T @ sp.diags(k_eff) @ incidence).tocsr()
    rate = _slowest_rate(laplacian, np.unique(np.asarray(held_nodes, dtype=np.int64)))
    if rate <= 1e-12 * float(laplacian.diagonal().max()):
        raise ValueError("the network with these conductances is not connected (to its held nodes): it never "
                         "settles")
    return node_capacitance / rate


@dataclass(frozen=True)
class ChipEstimate:
    """What one simulated network would cost on a :class:`ChipModel` (SI units)."""

    chip: str
    n_edges: int
    relaxation_time_s: float
    settling_time_s: float
    step_time_s: float
    training_time_s: float
    inference_energy_J: float
    energy_per_parameter_J: float
    training_energy_J: float
    area_m2: float
    fraction_outside_range: float
    inputs_within_supply: bool

    def as_dict(self) -> dict:
        return asdict(self)


def chip_estimate(chip: ChipModel, network: Network, conductance: np.ndarray, steps: float, free_power: float,
                  clamped_power: float, max_input: float = 0.0, held_nodes=()) -> ChipEstimate:
    """Hardware time, energy and area of a simulated network trained for ``steps`` steps.

    Parameters
    ----------
    chip : ChipModel
    network : Network
    conductance : ndarray (E,)
        Trained conductances (S; NaN or 0 for removed edges).
    steps : float
        Learning steps to train (e.g. steps to reach a tolerance).
    free_power, clamped_power : float
        Mean dissipated power (W) of the free and clamped twins per example during training; the free
        power of the trained network gives the inference energy.
    max_input : float
        Largest input voltage (V) of the task, checked against the supply.
    held_nodes : sequence of int
        Nodes held by the free state's voltage sources (ground and inputs; see :func:`relaxation_time`).
    """
    k = np.asarray(conductance, dtype=float)
    present = np.isfinite(k) & (k > 0)
    tau = relaxation_time(network, k, chip.node_capacitance, chip.wire_resistance, held_nodes)
    settling = tau * np.log(1.0 / chip.settle_tolerance)
    step_time = chip.clock_period + settling
    n = network.n_edges
    outside = float(((k[present] < chip.k_min) | (k[present] > chip.k_max)).mean()) if present.any() else 0.0
    inference = free_power * settling
    return ChipEstimate(
        chip=chip.name, n_edges=n, relaxation_time_s=tau, settling_time_s=settling, step_time_s=step_time,
        training_time_s=steps * step_time, inference_energy_J=inference, energy_per_parameter_J=inference / n,
        training_energy_J=steps * ((free_power + clamped_power) * step_time + n * chip.energy_per_update),
        area_m2=n * chip.transistors_per_edge * chip.area_per_transistor, fraction_outside_range=outside,
        inputs_within_supply=bool(max_input <= chip.supply_voltage))
