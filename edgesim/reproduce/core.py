"""What a reproduction is, and how its studies run: scenarios from ``scenarios/`` run as sweeps.

A :class:`Reproduction` names the published figure or experiment, the
:class:`Study` runs it needs (a shipped scenario plus overrides, at the
published scale and at the reduced ``quick`` scale) and a function that turns
the collected results into report :class:`Row` s: one per published number,
with edgesim's value, its spread over realizations and a verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..scenario import Scenario, load_scenario

__all__ = ["Study", "Row", "Reproduction", "scenario_folder", "study_scenario", "spread", "fmt", "save_figure", "stored"]


def scenario_folder() -> Path:
    """The ``scenarios/`` folder of the source checkout edgesim runs from."""
    folder = Path(__file__).resolve().parents[2] / "scenarios"
    if not folder.is_dir():
        raise ValueError(f"edgesim reproduce runs the shipped scenarios, and {folder} does not exist: install edgesim "
                         "from a source checkout (pip install -e . in the cloned folder)")
    return folder


@dataclass(frozen=True)
class Study:
    """One run of a reproduction: a shipped scenario with overrides (``--set`` syntax).

    Attributes
    ----------
    name : str
        Folder name of the study under the reproduction's folder.
    scenario : str
        File name in ``scenarios/``.
    full : tuple of str
        Overrides that give the published parameters and scale.
    quick : tuple of str
        Overrides applied after ``full`` for the reduced smoke-test scale.
    """

    name: str
    scenario: str
    full: tuple = ()
    quick: tuple = ()


def study_scenario(study: Study, quick: bool) -> Scenario:
    """The resolved scenario of ``study`` at the full or the quick scale."""
    overrides = list(study.full) + (list(study.quick) if quick else [])
    return load_scenario(scenario_folder() / study.scenario, overrides)


@dataclass(frozen=True)
class Row:
    """One published number and edgesim's.

    Attributes
    ----------
    source : str
        Paper and figure.
    quantity : str
        What is compared.
    published : str
        The published value or behaviour.
    edgesim : str
        edgesim's value, with its spread over realizations.
    criterion : str
        The test applied to edgesim's value.
    passed : bool or None
        The verdict (None: reported without a criterion).
    note : str
        Why edgesim differs, where it does, or what was chosen where the paper is silent.
    """

    source: str
    quantity: str
    published: str
    edgesim: str
    criterion: str
    passed: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "meets", False: "differs", None: "reported"}[self.passed]


@dataclass(frozen=True)
class Reproduction:
    """A published figure or experiment, the studies that reproduce it and how they are judged.

    Attributes
    ----------
    name : str
        Command-line name (``edgesim reproduce NAME``).
    title : str
    source : str
        The paper.
    studies : tuple of Study
    evaluate : callable
        ``evaluate(results, quick) -> list[Row]`` with ``results`` mapping each
        study name to its collected dataset.
    plot : callable or None
        ``plot(results, path)`` draws the reproduction's figure to ``path``.
    parameters : str
        The parameters used, and what was chosen where the paper is silent (Markdown).  "Not in the
        sources available to edgesim" means not in the published code or the papers' abstracts: the
        papers' full texts could not be read where edgesim was built.
    """

    name: str
    title: str
    source: str
    studies: tuple
    evaluate: Callable
    plot: Callable | None = None
    parameters: str = ""


def fmt(value: float) -> str:
    """A number in three significant figures."""
    return f"{value:.3g}"


def spread(values) -> str:
    """Median over realizations with the 10-90 % range, e.g. ``3.1e-05 (1.2e-05 - 8e-05, n = 10)``.

    Values that are not finite (a quantity a realization never reached) are left out and counted.
    """
    values = np.asarray(values, dtype=float).ravel()
    finite = values[np.isfinite(values)]
    missing = values.size - finite.size
    if finite.size == 0:
        return f"n/a ({missing} not finite)" if missing else "n/a"
    median = np.median(finite)
    if finite.size == 1 and not missing:
        return fmt(median)
    lo, hi = np.percentile(finite, [10, 90])
    return f"{fmt(median)} ({fmt(lo)} - {fmt(hi)}, n = {finite.size}" + (f"; {missing} not finite)" if missing else ")")


def save_figure(fig, path, title: str) -> None:
    """Give ``fig`` its title, write it to ``path`` as a small PNG and close it."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def stored(ds, section: str, key: str):
    """A value of the resolved scenario a result file stores (``ds.attrs["scenario"]``)."""
    return json.loads(ds.attrs["scenario"])[section][key]
