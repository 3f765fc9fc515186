"""ngspice reference solutions of transistor networks (test and benchmark support; not part of edgesim).

Each edge of a network with a :class:`~edgesim.edgelaws.TransistorLaw` becomes a behavioural current
source (``B``) carrying exactly the law's current from its first node ``a`` to its second node ``b``::

    I = S/2 (h(d - V_b)^2 - h(d - V_a)^2) (1 + lambda |V_a - V_b|),     d = k / S,

with ``h(u) = uramp(u) = max(u, 0)`` or, with subthreshold conduction,
``h(u) = c (uramp(u/c) + ln(1 + exp(-|u/c|)))``, ``c = 2 n V_t`` (the softplus written so that ``exp``
never overflows), in parallel with a resistor ``1/g_leak`` (the law's leakage).  Fixed node voltages
(inputs, clamped outputs) are voltage sources to SPICE's node ``0``, which is edgesim's ground; fixed
drops (edge rows ``(a, b)``) are voltage sources between the two nodes.  Node ``i`` is SPICE node ``n<i>``.

Numbers inside B-source expressions are written as the sum of two 11-digit literals (:func:`_literal`):
ngspice-39 keeps only 11 significant digits of each literal there, which alone puts a reference ~1e-11 V off.

``ngspice -b -r <raw> <netlist>`` runs the operating-point analysis (``.op``) with tight tolerances
(:data:`TIGHT_OPTIONS`) and the node voltages are read back from the binary raw file, bit for bit.
SPICE's Newton stops when two successive iterates differ by less than ``reltol |V| + vntol``; the
iterate it returns is then (quadratic convergence) far closer than that to the equilibrium.  B sources
have no voltage limiting, so from its default start (every node at 0 V) ngspice's plain Newton diverges
on larger networks ("out of range for pwr"); it then recovers by dynamic gmin stepping, whose last
Newton solve runs without any added conductance (:attr:`NgspiceResult.stepping` records it).

Measured agreement with an exact Newton polish of the same law: ~1e-14 V at ordinary nodes, up to
~1e-9 V at nodes that only the leakage (1e-9 S) holds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ngspice_available", "transistor_netlist", "run_ngspice", "solve_with_ngspice", "NgspiceResult",
           "NgspiceError", "TIGHT_OPTIONS"]

#: ``.options`` of the reference solves: Newton until successive iterates agree to ~1e-12 relative, a
#: generous iteration limit for the direct DC Newton (``itl1``) before ngspice falls back to gmin and
#: source stepping, and ``acct`` for the analysis statistics.  ``gmin`` stays at its default: B sources and
#: resistors get no gmin, and it is only where dynamic gmin stepping stops (with ``gmin=0`` it steps down
#: to 1e-324 one decade at a time) before its final solve without added conductance.
TIGHT_OPTIONS = "reltol=1e-12 abstol=1e-18 vntol=1e-13 itl1=500 acct"


class NgspiceError(RuntimeError):
    """ngspice failed (not installed, did not converge, or wrote no solution)."""


def ngspice_available() -> bool:
    """Whether an ``ngspice`` executable is on the ``PATH``."""
    return shutil.which("ngspice") is not None


def _number(x: float) -> str:
    """A float as SPICE reads it back exactly in element values (shortest round-trip repr)."""
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"cannot write {x} into a netlist")
    return repr(x)


def _literal(x: float) -> str:
    """A float inside a B-source expression, to the last bit.

    ngspice (39) keeps only 11 significant digits of a number literal in a B-source expression
    (``I = 1.2345678901234567`` gives 1.2345678901 A), which would put the reference solution ~1e-11 V off.
    Written as the sum of its 11-digit rounding ``hi`` and the (exactly representable) remainder
    ``lo = x - hi``, also to 11 digits, the expression evaluates to ``x`` within an ulp.
    """
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"cannot write {x} into a netlist")
    hi = float(f"{x:.10e}")
    lo = x - hi
    return f"{hi:.10e}" if lo == 0 else f"({hi:.10e}{lo:+.10e})"


def _node(i: int, ground: int) -> str:
    return "0" if int(i) == int(ground) else f"n{int(i)}"


def _voltage(i: int, ground: int) -> str:
    return "0" if int(i) == int(ground) else f"V(n{int(i)})"


def transistor_netlist(network, k, fixed, ground: int, law=None, options: str = TIGHT_OPTIONS,
                       title: str = "edgesim transistor network", initial=None) -> str:
    """The ngspice netlist of ``network`` at edge parameters ``k`` with the voltages ``fixed`` applied.

    Parameters
    ----------
    network : edgesim.network.Network
        Its edges follow ``law`` (default ``network.law``), a :class:`~edgesim.edgelaws.TransistorLaw`.
    k : array (E,)
        Edge parameters ``k = S (V_G - V_T)`` (S).
    fixed : sequence of ((a, b), value)
        Boundary rows and their values (V): ``(a, -1)`` fixes node ``a``, ``(a, b)`` the drop ``V_a - V_b``.
    ground : int
        The node held at 0 V (SPICE node ``0``).
    initial : array (N,), optional
        A first guess of the node voltages for ngspice's Newton (``.nodeset``), e.g. the previous solution: how a
        SPICE-based simulator warm-starts the next equilibrium.  It changes where Newton starts, not the answer.
    """
    law = network.law if law is None else law
    if law is None or getattr(law, "name", "") != "transistor":
        raise ValueError("transistor_netlist needs a network with a TransistorLaw")
    E = network.n_edges
    k = np.asarray(k, dtype=float).reshape(E)
    S = np.broadcast_to(np.asarray(law.transconductance, dtype=float), (E,))
    drive = k / S  # exactly what TransistorLaw.current computes
    lam = float(law.channel_length_modulation)
    g_leak = float(law.leakage_conductance)
    lines = [f"* {title}", f"* {network.n_nodes} nodes, {E} edges, ground = node {ground} (SPICE node 0)"]
    if law.subthreshold:
        c = _literal(2.0 * law.slope_factor * law.thermal_voltage)
        lines.append(f".func h(u) {{{c}*(uramp(u/{c}) + ln(1 + exp(-abs(u/{c}))))}}")
    else:
        lines.append(".func h(u) {uramp(u)}")
    for j, ((a, b), value) in enumerate(fixed):
        if int(a) == int(ground) and int(b) < 0:
            raise ValueError(f"node {a} is the ground: it cannot take another fixed voltage")
        minus = "0" if int(b) < 0 else _node(b, ground)
        lines.append(f"VFIX{j} {_node(a, ground)} {minus} DC {_number(value)}")
    for e, (a, b) in enumerate(network.edges):
        va, vb = _voltage(a, ground), _voltage(b, ground)
        d = _literal(drive[e])
        current = f"{_literal(0.5 * S[e])}*(pwr(h({d}-{vb}),2) - pwr(h({d}-{va}),2))"
        if lam:
            current += f"*(1 + {_literal(lam)}*abs({va}-{vb}))"
        lines.append(f"B{e} {_node(a, ground)} {_node(b, ground)} I = {current}")
        if g_leak:
            lines.append(f"RL{e} {_node(a, ground)} {_node(b, ground)} {_number(1.0 / g_leak)}")
    if initial is not None:
        held = {int(a) for (a, b), _ in fixed if int(b) < 0} | {int(ground)}
        guess = [f"V(n{i})={float(v):.17g}" for i, v in enumerate(np.asarray(initial, dtype=float)) if i not in held]
        lines += [".nodeset " + " ".join(guess[i:i + 20]) for i in range(0, len(guess), 20)]
    lines += [f".options {options}", ".op", ".end", ""]
    return "\n".join(lines)


@dataclass
class NgspiceResult:
    """Node voltages (by lower-case SPICE name, e.g. ``n5``) and what the run cost."""

    voltages: dict
    wall_time: float  # seconds of the ngspice process, start to exit
    analysis_time: float | None  # ngspice's own "Total analysis time" (acct), seconds
    iterations: int | None  # ngspice's "Total iterations"
    stepping: bool  # whether plain Newton failed and ngspice fell back on gmin / source stepping
    stdout: str = field(repr=False, default="")


def _read_raw(path: str) -> dict:
    """The operating point in an ngspice raw file (binary or ascii): ``{name: value}``."""
    with open(path, "rb") as f:
        data = f.read()
    for marker, binary in ((b"Binary:\n", True), (b"Values:\n", False)):
        at = data.find(marker)
        if at >= 0:
            break
    else:
        raise NgspiceError(f"{path}: no data section")
    header = data[:at].decode("latin-1")
    if "Flags: real" not in header:
        raise NgspiceError(f"{path}: expected a real operating point, header:\n{header[:500]}")
    n_vars = int(re.search(r"No\. Variables:\s*(\d+)", header).group(1))
    names = []
    block = header.split("Variables:\n", 1)[1].splitlines()
    for line in block[:n_vars]:
        names.append(line.split()[1].lower())
    if binary:
        values = np.frombuffer(data[at + len(marker):at + len(marker) + 8 * n_vars], dtype="<f8")
    else:
        tokens = data[at + len(marker):].split()
        values = np.array([float(t) for t in tokens[1:1 + n_vars]])  # first token: point index
    if len(values) != n_vars:
        raise NgspiceError(f"{path}: {len(values)} values for {n_vars} variables")
    out = {}
    for name, value in zip(names, values):
        m = re.fullmatch(r"v\((.+)\)", name)
        out[m.group(1) if m else name] = float(value)
    return out


def _stat(stdout: str, label: str):
    m = re.search(re.escape(label) + r"\s*=\s*([-+0-9.eE]+)", stdout)
    return None if m is None else float(m.group(1))


def run_ngspice(netlist: str, timeout: float = 600.0, keep: str | None = None) -> NgspiceResult:
    """Run ``ngspice -b`` on ``netlist`` in a temporary directory (or ``keep``, a directory that is kept)."""
    exe = shutil.which("ngspice")
    if exe is None:
        raise NgspiceError("ngspice is not installed (Debian/Ubuntu: apt-get install ngspice)")
    with tempfile.TemporaryDirectory(prefix="edgesim-spice-") as tmp:
        where = keep or tmp
        os.makedirs(where, exist_ok=True)
        cir, raw = os.path.join(where, "network.cir"), os.path.join(where, "network.raw")
        with open(cir, "w") as f:
            f.write(netlist)
        env = dict(os.environ, SPICE_ASCIIRAWFILE="0")  # binary raw file: the voltages bit for bit
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "-b", "-r", raw, cir], cwd=where, capture_output=True, text=True,
                              timeout=timeout, env=env)
        wall = time.perf_counter() - t0
        text = proc.stdout + proc.stderr
        # "Error: ... out of range for pwr" is an iterate diverging (ngspice then tries gmin stepping): not fatal
        if proc.returncode != 0 or not os.path.exists(raw) or re.search(
                r"aborted|no convergence|iteration limit reached|timestep too small|source stepping failed",
                proc.stderr, re.IGNORECASE):
            raise NgspiceError(f"ngspice failed (exit {proc.returncode}):\n{text[-3000:]}")
        voltages = _read_raw(raw)
    iterations = _stat(text, "Total iterations")
    stepping = re.search(r"gmin stepping|source stepping|transient op", proc.stderr, re.IGNORECASE) is not None
    return NgspiceResult(voltages, wall, _stat(text, "Total analysis time (seconds)"),
                         None if iterations is None else int(iterations), stepping, text)


def solve_with_ngspice(network, k, boundary, values, clamped: bool = False, law=None,
                       options: str = TIGHT_OPTIONS, timeout: float = 600.0, keep: str | None = None,
                       initial=None):
    """Node voltages (N,) of ``network`` for one example, solved by ngspice, and the :class:`NgspiceResult`.

    ``values`` are the boundary row values (V): the inputs (``clamped=False``, the free twin) or the inputs
    followed by the outputs (``clamped=True``), in the order of ``boundary.rows``.  ``initial``: see
    :func:`transistor_netlist`.
    """
    rows = boundary.inputs + (boundary.outputs if clamped else ())
    values = np.asarray(values, dtype=float).ravel()
    if len(values) != len(rows):
        raise ValueError(f"{len(rows)} boundary rows but {len(values)} values")
    netlist = transistor_netlist(network, k, list(zip(rows, values)), boundary.ground, law=law, options=options,
                                 initial=initial)
    result = run_ngspice(netlist, timeout=timeout, keep=keep)
    V = np.zeros(network.n_nodes)
    for i in range(network.n_nodes):
        if i != boundary.ground:
            try:
                V[i] = result.voltages[f"n{i}"]
            except KeyError:
                raise NgspiceError(f"ngspice wrote no voltage for node n{i}") from None
    return V, result
