"""Wycoff et al. 2022 ("Desynchronous learning in a physics-driven learning network", J. Chem. Phys. 156, 144903)."""

from __future__ import annotations

import numpy as np

from ..analysis import error_at_updates, geometric_mean, normalized_error
from .core import Reproduction, Row, Study, fmt, save_figure

SOURCE = "Wycoff et al. 2022"
UPDATES = (100, 125, 150)  # expected updates per edge at which the runs are compared


def _evaluate(results, quick):
    rows = []
    for name, label in (("continuous", "continuous conductances"), ("taps", "128-tap conductances")):
        ds = results[name]
        # a run too short for the published comparison (the quick scale) compares earlier, and says so
        reach = [u for u in UPDATES if u / float(ds.update_probability.min()) <= int(ds.step[-1])] or [UPDATES[0] / 4]
        table = geometric_mean(error_at_updates(ds, reach), "updates")  # (p, realization)
        sync = table.sel(update_probability=1.0)
        for p in ds.update_probability.values:
            if p == 1.0:
                continue
            ratio = (table.sel(update_probability=p) / sync).values
            rows.append(Row(SOURCE, f"{label}: error at equal updates per edge, p = {p:g} against synchronous",
                            "desynchronous learning reaches the synchronous error",
                            f"ratio {', '.join(fmt(r) for r in ratio)} (synchronous error "
                            f"{', '.join(fmt(s) for s in sync.values)}; at {', '.join(fmt(u) for u in reach)} "
                            "updates per edge)",
                            "ratio <= 2 (the synchronous error, within a factor 2), and the synchronous error "
                            "below 0.02 (it learned)", bool(np.all(ratio <= 2) and np.all(sync.values < 0.02))))
    return rows


def _plot(results, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, name in zip(axes, ("continuous", "taps")):
        ds = results[name]
        for p in ds.update_probability.values:
            one = ds.sel(update_probability=p)
            ax.loglog(p * one.step.values[1:], normalized_error(one).isel(realization=0).values[1:], label=f"p = {p:g}")
        ax.set_xlabel("expected updates per edge")
        ax.set_ylabel("normalised error")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    save_figure(fig, path, "Wycoff et al. 2022: desynchronous learning")


WYCOFF2022 = Reproduction(
    "wycoff2022", "Wycoff et al. 2022: desynchronous learning", SOURCE,
    (Study("continuous", "desync.toml", full=("engine.kind='vectorized'",), quick=("run.steps=400",)),
     Study("taps", "desync_taps.toml", full=("engine.kind='vectorized'",), quick=("run.steps=400",))),
    _evaluate, _plot,
    parameters="scenarios/desync.toml and desync_taps.toml: the 16-edge layout, allostery, every edge acting with "
               "probability p per 1 s tick (p = 1, 0.5, 0.1) on the vectorised engine with random clock phases; "
               "errors compared at 100, 125 and 150 expected updates per edge (geometric mean). The paper's network "
               "sizes and probabilities are not in the sources available to edgesim.")
