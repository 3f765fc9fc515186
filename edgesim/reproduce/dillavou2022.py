"""Dillavou et al. 2022 ("Demonstration of decentralized, physics-driven learning", Phys. Rev. Applied 18, 014040).

The laboratory network: 16 AD5220 potentiometers (128 taps of 781.25 ohm) on
edgesim's 16-edge, 9-node layout, the sign rule at a 4 Hz clock.  The layout
is an approximation of the laboratory network (the paper's wiring diagram is
not reproduced edge for edge), so the numbers are those of a network of the
same size, elements and protocol, not of the same circuit.
"""

from __future__ import annotations

import numpy as np

from ..analysis import final, normalized_error
from .core import Reproduction, Row, Study, fmt, save_figure, spread, stored

SOURCE = "Dillavou et al. 2022"
LAYOUT = ("The noise-free sign rule with 128 taps on edgesim's 16-edge layout stops at a floor after about 200 steps "
          "(the same error at 400 and 1000 steps); with 8x finer taps (1024 over the same range) the same network "
          "passes four orders by 1000 steps "
          "(tests/test_reproduction.py::test_dillavou_allostery_floor_is_the_tap_quantisation): the floor is tap "
          "quantisation. Why the laboratory network passed four orders with the same taps was not established: its "
          "wiring differs from this layout, and its comparators were noisy")


def _evaluate(results, quick):
    rows = []
    allo = final(normalized_error(results["allostery"])).values
    rows.append(Row(SOURCE, "allostery (3 inputs at 5, 1, 0 V; 3 outputs at 3 V): error reduction",
                    "more than four orders of magnitude (< 1e-4)", spread(allo), "final / initial < 1e-4",
                    bool(np.nanmedian(allo) < 1e-4), note=LAYOUT))
    reg = final(normalized_error(results["regression"], "error_test")).values
    rows.append(Row(SOURCE, "regression (400 training / 20 test examples): test error reduction",
                    "more than two orders of magnitude (< 1e-2)", spread(reg), "final / initial test error < 1e-2",
                    bool(np.nanmedian(reg) < 1e-2)))
    acc = final(results["iris"].accuracy_test).values
    rows.append(Row(SOURCE, "Iris with 30 training flowers: test accuracy (120 flowers)", "over 95 %", spread(acc),
                    "median > 0.95", bool(np.nanmedian(acc) > 0.95)))
    dmg = results["damage"]
    recovered = np.isfinite(dmg.damage_recovery_time.values)
    times = dmg.damage_recovery_time.values[recovered]
    multiple = stored(dmg, "damage", "recovery_multiple")
    rows.append(Row(SOURCE, "damage: one edge removed every 100 steps, five in all",
                    "the network recovers after each removal",
                    f"{int(recovered.sum())} of {recovered.size} removals recovered; recovery times (s) "
                    + ", ".join(fmt(t) for t in times),
                    f"every removal recovered (error back below {fmt(multiple)} x its value before the removal)",
                    bool(recovered.all())))
    seven = results["seven-tasks"]
    ratio = (seven.phase_error_end / seven.phase_error_start).values.ravel()
    rows.append(Row(SOURCE, "seven allostery tasks in succession without a reset: error reduction of each task",
                    "each task is learned", ", ".join(fmt(r) for r in ratio),
                    "every task's error falls by more than four orders (< 1e-4), the allostery criterion",
                    bool((ratio < 1e-4).all()),
                    note="Every task's error falls by more than two orders, none by four: the same tap floor as the "
                         "allostery row (task 1 is that task). The paper's seven tasks are not in the sources "
                         "available to edgesim: these are seven allostery tasks on different output nodes and "
                         "voltages (scenarios/dillavou2022_seven_tasks.toml)"))
    return rows



def _plot(results, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for name in ("allostery", "regression"):
        ds = results[name]
        err = normalized_error(ds, "error_test" if name == "regression" else "error_train")
        axes[0].semilogy(ds.step, err.median("realization"), label=name)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("normalised error")
    axes[0].legend()
    iris = results["iris"]
    axes[1].plot(iris.step, iris.accuracy_test.median("realization"))
    axes[1].axhline(0.95, color="k", ls="--", lw=0.8)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("Iris test accuracy (median)")
    dmg = results["damage"]
    axes[2].semilogy(dmg.time, dmg.error_train.isel(realization=0))
    for t in dmg.damage_time.values.ravel():
        axes[2].axvline(t, color="r", lw=0.6)
    axes[2].set_xlabel("time (s)")
    axes[2].set_ylabel("training error (V^2), damage in red")
    save_figure(fig, path, "Dillavou et al. 2022")


DILLAVOU2022 = Reproduction(
    "dillavou2022", "Dillavou et al. 2022: the laboratory potentiometer network", SOURCE,
    (Study("allostery", "dillavou2022_allostery.toml", quick=("run.steps=200",)),
     Study("regression", "dillavou2022_regression.toml", quick=("run.steps=400",)),
     Study("iris", "dillavou2022_iris.toml", full=("run.realizations=10",),
           quick=("run.steps=300", "run.realizations=2")),
     Study("damage", "dillavou2022_damage.toml", quick=()),
     Study("seven-tasks", "dillavou2022_seven_tasks.toml", quick=())),
    _evaluate, _plot,
    parameters="edgesim's 16-edge, 9-node layout is an approximation of the laboratory network (same size, elements "
               "and protocol, not the same wiring). The shipped scenarios (scenarios/dillavou2022_*.toml): 128-tap 100 kOhm potentiometers starting at "
               "80 kOhm, 4 Hz clock, 5 / 1 / 0 V inputs. Allostery: 400 full-batch steps, nudge eta = 0.1. "
               "Regression: 2000 online steps, inputs 1-5 V, comparator dead band 10 mV. Iris: 100 epochs of 30 "
               "flowers (online), targets reset every epoch around each species' mean output, 10 random draws of "
               "the training flowers. Damage: 2-output allostery, edges 8, 7, 3, 6, 15 removed at steps 100..500. "
               "Where the paper's nudge and step counts are not in the sources available to edgesim, these are edgesim's choices.")
