"""Current laws of network edges: pure functions of the edge parameter and the terminal voltages.

Every law gives the current ``I`` flowing through an edge from its first
node ``a`` to its second node ``b`` and the two partial derivatives Newton's
method needs, as functions of the edge's learning degree of freedom ``k``
and the terminal voltages ``V_a``, ``V_b`` (arrays that broadcast).  ``k``
is what the rest of edgesim calls the edge's *conductance*: the trainer,
the engines, damage and the result files all carry ``k``, and each law says
what it means.

:class:`LinearLaw`
    A resistor: ``I = k (V_a - V_b)``.  Networks without a law use the
    linear solver of :mod:`edgesim.physics` directly (the fast path); this
    class exists for tests and for mixing into custom laws.
:class:`TransistorLaw`
    The square-law MOSFET fitted to the laboratory transistors (Dillavou et
    al., PNAS (2024), "Machine learning without a processor"; Stern et al., APL Mach. Learn. 2, 016114 (2024), Fig. 3),
    with ``k = S (V_G - V_T)``: the ohmic conductance at zero source
    voltage.  See the class for the regimes.

Adding a law
------------
Subclass :class:`EdgeLaw` and implement :meth:`EdgeLaw.current` (and, for
a good first Newton guess, :meth:`EdgeLaw.small_signal`; for exact warm
starts along a learning step, :meth:`EdgeLaw.parameter_derivative`, which
defaults to a central difference).  A diode with a
saturation current ``I_s`` and the thermal voltage ``V_t``, ``k`` scaling
the diode's area, is::

    class Diode(EdgeLaw):
        def current(self, k, va, vb):
            e = np.exp((va - vb) / 0.02585)
            return k * 1e-12 * (e - 1), k * 1e-12 * e / 0.02585, -k * 1e-12 * e / 0.02585

(``tests/test_nonlinear.py`` solves a diode-resistor circuit with such a law.)
The Jacobian assembled from ``dI/dV_a`` and ``dI/dV_b`` need not be
symmetric: :mod:`edgesim.nonlinear` solves it with a general LU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

__all__ = ["EdgeLaw", "LinearLaw", "TransistorLaw", "THERMAL_VOLTAGE"]

#: kT/q at 300 K (V).
THERMAL_VOLTAGE = 0.02585


class EdgeLaw:
    """The current law of every edge of a network (see module docstring).

    Attributes
    ----------
    leakage_conductance : float
        Conductance (S) in parallel with every edge, as SPICE's ``gmin``: it
        keeps the Jacobian regular where every transistor at a node is cut
        off.  Subclasses add it in :meth:`current`.
    """

    name = "edge law"
    leakage_conductance: float = 0.0

    def current(self, k, va, vb):
        """Current from ``a`` to ``b`` (A) and its derivatives ``dI/dV_a``, ``dI/dV_b`` (S)."""
        raise NotImplementedError

    def parameter_derivative(self, k, va, vb):
        """``dI/dk`` (A per unit of ``k``): how each edge's current moves with its learning parameter at fixed
        terminal voltages.  Newton's warm starts use it to follow the equilibrium along a learning step (the
        Euler predictor of :mod:`edgesim.nonlinear`).  The default is a central difference; a law with a
        closed form should override it."""
        k = np.asarray(k, dtype=float)
        step = 1e-6 * np.maximum(np.abs(k), 1e-12)
        return (self.current(k + step, va, vb)[0] - self.current(k - step, va, vb)[0]) / (2.0 * step)

    def small_signal(self, k):
        """Conductance (S) of each edge for small voltages around 0 V: the linear network used as Newton's first
        guess.  The default evaluates :meth:`current` at ``V_a = V_b = 0``."""
        _, g_a, g_b = self.current(k, np.zeros_like(k), np.zeros_like(k))
        return 0.5 * (g_a - g_b)

    def check(self, n_edges: int) -> None:
        """Raise ``ValueError`` if per-edge parameters do not fit a network of ``n_edges`` edges."""

    def describe(self) -> dict:
        """Parameters stored in result files (scalars and short strings)."""
        return {"law": self.name}


@dataclass(frozen=True)
class LinearLaw(EdgeLaw):
    """A resistor, ``I = k (V_a - V_b)`` with ``k`` in siemens."""

    name = "linear"

    def current(self, k, va, vb):
        k = np.asarray(k, dtype=float)
        drop = np.asarray(va) - np.asarray(vb)
        return k * drop, np.broadcast_to(k, drop.shape), -np.broadcast_to(k, drop.shape)

    def parameter_derivative(self, k, va, vb):
        return np.asarray(va, dtype=float) - np.asarray(vb, dtype=float)

    def small_signal(self, k):
        return np.asarray(k, dtype=float)


@dataclass(frozen=True, eq=False)
class TransistorLaw(EdgeLaw):
    """Square-law MOSFET edge, symmetric in source and drain, with the gate voltage as its state.

    With the overdrive at terminal ``x``, ``u_x = V_G - V_T - V_x = k / S - V_x``,
    and ``F(u) = (S / 2) h(u)^2``, the current from ``a`` to ``b`` is
    ``I = [F(u_b) - F(u_a)] (1 + lambda |V_a - V_b|) + g_leak (V_a - V_b)``.
    With ``h(u) = max(u, 0)`` (strong inversion) this is

    * ohmic (both ends conduct): ``I = S (V_G - V_T - (V_a + V_b)/2) (V_a - V_b)``;
    * saturation (the higher end pinched off): ``I = S/2 (V_G - V_T - min(V_a, V_b))^2``
      in the direction of the drop;
    * cut off (both ends): ``I = 0`` (plus the leakage).

    ``subthreshold = True`` replaces ``max(u, 0)`` by the EKV interpolation
    ``h(u) = 2 n V_t ln(1 + exp(u / (2 n V_t)))``: the same law in strong
    inversion, a current falling as ``exp(u / (n V_t))`` below threshold.
    The factor ``(1 + lambda |V_DS|)`` is channel-length modulation in the
    form of SPICE's level-1 model (applied in every regime, so the law stays
    smooth; ``lambda = 0`` by default).

    ``k = S (V_G - V_T)`` is the ohmic conductance with both terminals at 0 V:
    for drops and node voltages small against ``V_G - V_T`` the network is the
    linear network of conductances ``k`` (tested).

    Parameters
    ----------
    transconductance : float or ndarray (E,)
        ``S`` (A/V^2), one value or one per edge (per-edge mismatch).  The
        laboratory transistors: ``S = 8.5e-4 A/V^2`` (Dillavou et al. 2024).
    threshold : float or ndarray (E,)
        ``V_T`` (V), used only to convert gate voltages: about 0.62-0.7 V in the
        laboratory (0.65 V by default).
    gate_min, gate_max : float
        Range of the gate voltage (V); the laboratory gates range up to 8 V.
    channel_length_modulation : float
        ``lambda`` (1/V), >= 0.
    subthreshold : bool
        EKV interpolation instead of a hard threshold.
    slope_factor : float
        Subthreshold slope factor ``n`` (>= 1).
    thermal_voltage : float
        ``V_t = kT/q`` (V).
    leakage_conductance : float
        ``g_leak`` (S) in parallel with every edge (default 1e-9 S, 1 GOhm: nodes whose transistors are all cut
        off stay defined).
    """

    transconductance: object = 8.5e-4
    threshold: object = 0.65
    gate_min: float = -np.inf
    gate_max: float = np.inf
    channel_length_modulation: float = 0.0
    subthreshold: bool = False
    slope_factor: float = 1.5
    thermal_voltage: float = THERMAL_VOLTAGE
    leakage_conductance: float = 1e-9
    name: str = field(default="transistor", init=False)

    def __post_init__(self):
        S = np.asarray(self.transconductance, dtype=float)
        VT = np.asarray(self.threshold, dtype=float)
        if not np.isfinite(S).all() or (S <= 0).any():
            bad = S.ravel()[~(np.isfinite(S.ravel()) & (S.ravel() > 0))][0]
            raise ValueError(f"transistor transconductance S must be positive and finite (A/V^2), got {bad}")
        if not np.isfinite(VT).all():
            raise ValueError("transistor threshold V_T must be finite (V)")
        if not self.gate_min < self.gate_max:
            raise ValueError(f"the gate range needs gate_min < gate_max, got [{self.gate_min}, {self.gate_max}] V")
        for key in ("channel_length_modulation", "leakage_conductance"):
            value = getattr(self, key)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"transistor {key} must be >= 0 and finite, got {value}")
        if not self.slope_factor >= 1 or not self.thermal_voltage > 0:
            raise ValueError(f"transistor slope_factor must be >= 1 and thermal_voltage > 0 V, got "
                             f"{self.slope_factor} and {self.thermal_voltage}")
        S.setflags(write=False)
        VT.setflags(write=False)
        object.__setattr__(self, "transconductance", S)
        object.__setattr__(self, "threshold", VT)

    # -- the law --------------------------------------------------------------------------------------------
    def _h(self, u):
        """Effective overdrive ``h(u)`` and its derivative."""
        if not self.subthreshold:
            return np.maximum(u, 0.0), (u > 0).astype(float)
        scale = 2.0 * self.slope_factor * self.thermal_voltage
        return scale * np.logaddexp(0.0, u / scale), expit(u / scale)

    def _h_difference(self, u_a, u_b, h_a, h_b, drop):
        """``h(u_b) - h(u_a)`` without cancellation: where both ends conduct it is (nearly) the drop itself,
        which the difference of two overdrives of a volt or more would lose to rounding for small drops."""
        if not self.subthreshold:
            return np.where((u_a > 0) & (u_b > 0), drop, h_b - h_a)
        scale = 2.0 * self.slope_factor * self.thermal_voltage
        x_a, x_b = u_a / scale, u_b / scale
        # softplus(x) = max(x, 0) + log1p(exp(-|x|)); the max parts differ by the drop where both are positive
        linear = np.where((x_a > 0) & (x_b > 0), drop, scale * (np.maximum(x_b, 0.0) - np.maximum(x_a, 0.0)))
        return linear + scale * (np.log1p(np.exp(-np.abs(x_b))) - np.log1p(np.exp(-np.abs(x_a))))

    def current(self, k, va, vb):
        S = self.transconductance
        va, vb = np.asarray(va, dtype=float), np.asarray(vb, dtype=float)
        drive = np.asarray(k, dtype=float) / S
        u_a, u_b = drive - va, drive - vb
        h_a, dh_a = self._h(u_a)
        h_b, dh_b = self._h(u_b)
        drop = va - vb
        base = 0.5 * S * self._h_difference(u_a, u_b, h_a, h_b, drop) * (h_a + h_b)
        g_a, g_b = S * h_a * dh_a, S * h_b * dh_b  # dI/dV_a and -dI/dV_b of the square law
        lam, g_leak = self.channel_length_modulation, self.leakage_conductance
        if lam:
            clm = 1.0 + lam * np.abs(drop)
            slope = lam * np.sign(drop) * base
            return base * clm + g_leak * drop, g_a * clm + slope + g_leak, -g_b * clm - slope - g_leak
        return base + g_leak * drop, g_a + g_leak, -g_b - g_leak

    def parameter_derivative(self, k, va, vb):
        """``dI/dk``: the current depends on ``k`` through the drive ``k / S`` only, and on the voltages through
        ``drive - V_a``, ``drive - V_b`` and the drop, so raising the drive and both terminal voltages together
        changes nothing: ``dI/dk = -(dI/dV_a + dI/dV_b) / S``."""
        _, g_a, g_b = self.current(k, va, vb)
        return -(g_a + g_b) / self.transconductance

    def small_signal(self, k):
        h, dh = self._h(np.asarray(k, dtype=float) / self.transconductance)
        return self.transconductance * h * dh + self.leakage_conductance

    # -- the gate ----------------------------------------------------------------------------------------------
    def conductance(self, gate_voltage):
        """``k = S (V_G - V_T)`` of gate voltages (V), the gate clipped to its range."""
        v = np.clip(np.asarray(gate_voltage, dtype=float), self.gate_min, self.gate_max)
        return self.transconductance * (v - self.threshold)

    def gate_voltage(self, k):
        """Gate voltage (V) at which each edge has parameter ``k`` (the inverse of :meth:`conductance`)."""
        return self.threshold + np.asarray(k, dtype=float) / self.transconductance

    def conductance_bounds(self, k_min: float, k_max: float):
        """Per-edge range of ``k``: ``[k_min, k_max]`` within what the gate range allows."""
        low = np.maximum(k_min, self.transconductance * (self.gate_min - self.threshold))
        high = np.minimum(k_max, self.transconductance * (self.gate_max - self.threshold))
        return low, high

    def learning_gain(self):
        """``dk / dV_G`` of each edge relative to the nominal (mean) ``S``: a gate-voltage rule moves ``k`` by
        ``S_e dV_G``, so edges with more transconductance learn faster."""
        S = self.transconductance
        return S / S.mean()

    def check(self, n_edges: int) -> None:
        for key in ("transconductance", "threshold"):
            value = getattr(self, key)
            if value.ndim and value.shape != (n_edges,):
                raise ValueError(f"transistor {key} has {value.size} values for a network of {n_edges} edges")

    def describe(self) -> dict:
        S, VT = self.transconductance, self.threshold
        return {"law": self.name, "transconductance": float(S.mean()), "transconductance_spread":
                float(S.std() / S.mean()) if S.ndim else 0.0, "threshold": float(VT.mean()),
                "threshold_spread": float(VT.std()) if VT.ndim else 0.0, "gate_min": self.gate_min,
                "gate_max": self.gate_max, "channel_length_modulation": self.channel_length_modulation,
                "subthreshold": int(self.subthreshold), "leakage_conductance": self.leakage_conductance}
