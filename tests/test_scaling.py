"""The scaling study (scenarios/chip_scaling*.toml, analysis/scaling.py) end to end at small sizes, and its
pieces: steps to a tolerance, power-law fits and the crossover."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from edgesim.cli import main as edgesim

ROOT = Path(__file__).resolve().parent.parent


def _scaling():
    spec = importlib.util.spec_from_file_location("analysis_scaling", ROOT / "analysis" / "scaling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scaling = _scaling()


def test_steps_to_tolerance_interpolates_power_laws_exactly():
    """error = step^-1 recorded at 1, 10, 100, 1000: tolerance 0.02 is reached at step 50."""
    steps = np.array([0, 1, 10, 100, 1000])
    error = np.array([1.0, 1.0, 0.1, 0.01, 0.001])
    assert scaling.steps_to_tolerance(steps, error, 0.02) == pytest.approx(50.0)
    assert scaling.steps_to_tolerance(steps, error, 1e-4) == np.inf
    assert scaling.steps_to_tolerance(steps, error, 1.0) == 0.0


def test_fit_recovers_exponent_and_prefactor():
    x = np.array([1e2, 1e3, 1e4, 1e5])
    exponent, prefactor = scaling.fit(x, 3e-6 * x**1.4)
    assert exponent == pytest.approx(1.4) and prefactor == pytest.approx(3e-6)
    assert scaling.fit([1.0], [1.0]) is None


def test_crossover_between_measured_sizes_and_extrapolated():
    edges = np.array([1e2, 1e3, 1e4])
    simulation = 1e-6 * edges  # 1e-4 .. 1e-2 s
    assert scaling.crossover(edges, simulation, np.full(3, 1e-3)) == (pytest.approx(1e3), False)
    cross, extrapolated = scaling.crossover(edges, simulation, np.full(3, 1.0))
    assert extrapolated and cross == pytest.approx(1e6)
    assert scaling.crossover(edges, simulation, np.full(3, 1e-6))[1] is None  # hardware faster everywhere
    assert scaling.crossover(edges, simulation, 1e-3 * edges) is None  # hardware slower and growing faster


@pytest.mark.parametrize("name, overrides", [
    ("chip_scaling", ["sweep.network.nx=[4, 6, 10]", "run.steps=300", "run.record_points=20"]),
    ("chip_scaling_hardware", ["sweep.network.nx=[4, 6]", "run.steps=40", "run.realizations=1"]),
])
def test_the_study_runs_end_to_end_at_small_sizes(tmp_path, capsys, name, overrides):
    out = tmp_path / f"{name}.nc"
    args = ["run", f"scenarios/{name}.toml", "-o", str(out)]
    for item in overrides:
        args += ["--set", item]
    assert edgesim(args) == 0
    figure, table = tmp_path / "scaling.png", tmp_path / "scaling.json"
    assert scaling.main([str(out), "--out", str(figure), "--json", str(table), "--tolerance", "0.5"]) == 0
    assert figure.stat().st_size > 10_000
    report = json.loads(table.read_text())
    edges = report["timing"]["edges"]
    assert edges == sorted(edges) and len(edges) == len(overrides[0].split(","))
    assert all(t > 0 for t in report["timing"]["simulation"])
    assert set(report["crossover_edges"]) == {"breadboard2022", "transistor2024", "integrated"}
    # the 4 Hz breadboard is slower per step than the simulation of these small networks
    assert report["timing"]["hardware"]["breadboard2022"][0] > report["timing"]["simulation"][0]
    # the settling time grows with the lattice (diffusive relaxation: tests/test_chip.py checks tau ~ edges)
    assert report["exponents"]["integrated settling time"] > 0.5
    printed = capsys.readouterr().out
    assert "fitted exponents" in printed and "crossover with integrated" in printed


def test_a_result_without_a_size_sweep_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "q.nc"
    assert edgesim(["run", "scenarios/quickstart.toml", "-o", str(out), "--set", "run.steps=20",
                    "--set", "sweep={}", "--set", "run.realizations=1"]) == 0
    assert scaling.main([str(out)]) == 2
    assert "needs a sweep over network size" in capsys.readouterr().err


def test_crossover_extrapolates_with_the_hardware_model():
    """A constant clock plus settling ~ edges: fitting one power law to their sum would misplace the crossing."""
    edges = np.array([1e2, 1e3, 1e4])
    simulation = 1e-6 * edges  # 1e-4 .. 1e-2 s
    model = lambda e: 0.25 + 1e-7 * np.asarray(e, dtype=float)  # noqa: E731  (s)
    cross, extrapolated = scaling.crossover(edges, simulation, model(edges), model)
    assert extrapolated and cross == pytest.approx(0.25 / (1e-6 - 1e-7), rel=1e-6)
    assert scaling.crossover(edges, simulation, model(edges), lambda e: 1e-5 * np.asarray(e, dtype=float)) is None
