"""Stern et al. 2024 ("Training self-learning circuits for power-efficient solutions", APL Mach. Learn. 2, 016114).

Simulations on the published N = 64 jammed networks, edge regression
``dV_out = A dV_in`` (2 source and 2 target edges, 20 training and 100 test
examples), full-batch coupled learning with ``eta = 1e-3``; the laboratory
figure (Fig. 3) on the engine's 4 x 4 transistor lattice.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..analysis import final, geometric_mean, loglog_slope, normalized_error
from .core import Reproduction, Row, Study, fmt, save_figure, spread, stored

SOURCE = "Stern et al. 2024"

# -- Fig. 1: kappa ------------------------------------------------------------------------------------
#: Initial conductance scales of the kappa study (scenarios/stern2024_kappa.toml: k in [1e-3, 10], early
#: stopping at L = 1e-4, at most 1e6 steps, 10 networks).
KAPPAS = (1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
#: Learning rate at kappa = 1 (the published notebook's alpha); alpha scales as kappa^0.5.
ALPHA_AT_KAPPA_1 = 0.5
TRAINED_ERROR = 1e-4  # "training time to L = 1e-4"


def _alpha(kappa: float) -> float:
    return ALPHA_AT_KAPPA_1 * kappa ** 0.5


def _kappa_studies():
    return tuple(Study(f"kappa={kappa:g}", "stern2024_kappa.toml",
                       full=(f"sweep.kappa=[{kappa!r}]", f"learning.alpha={_alpha(kappa)!r}"),
                       quick=("run.steps=3000", "run.realizations=2", "run.record_points=40",
                              "run.conductance_every=3000"))
                 for kappa in KAPPAS)


def _by_kappa(results):
    """kappa -> dataset (one kappa per study), sorted."""
    pairs = sorted(((float(ds.kappa.values[0]), ds.isel(kappa=0)) for ds in results.values()), key=lambda p: p[0])
    return [k for k, _ in pairs], [d for _, d in pairs]


def _kappa_table(results):
    kappas, sets = _by_kappa(results)
    time = np.array([ds.tolerance_time.values for ds in sets])  # (kappa, realization), NaN: not reached
    power = np.array([final(ds.free_power).values for ds in sets])
    energy = np.array([ds.training_energy_to_tolerance.values for ds in sets])
    return np.array(kappas), time, power, energy


_NO_SLOPE = "no slope: at some kappa of the range most networks did not reach the tolerance within the run"
#: Why the training time is not flat at high kappa with alpha ~ kappa^0.5 (evidence: a test).
ALPHA_NOTE = (
    "The update dk does not depend on kappa, so the relative rate alpha / kappa sets the speed of learning: with "
    "alpha ~ kappa^0.5 the training time grows as kappa^0.5 at high kappa, and with alpha ~ kappa the dynamics are "
    "scale invariant and the time is flat (4 networks, kappa = 0.1, 0.3, 1: 4949, 4896, 4855 steps; "
    "tests/test_reproduction.py::test_stern_training_time_is_flat_at_high_kappa_only_when_alpha_scales_with_kappa). "
    "The paper's flat training time therefore goes with alpha ~ kappa, or with a time unit that absorbs alpha; "
    "the energy minimum moves with the same choice. The paper's text was not available to settle which")


def _slope(x, y) -> float:
    """Log-log slope through the positive points (NaN with fewer than two)."""
    return loglog_slope(x, y) if (np.asarray(y) > 0).sum() >= 2 else float("nan")


def _finite_slope(x, y) -> float:
    """Log-log slope through the finite points (NaN if any point is infinite: a trend cannot be read)."""
    if not np.isfinite(y).all() or len(y) < 2:
        return float("nan")
    return loglog_slope(x, y)


def _evaluate_kappa(results, quick):
    kappa, time, power, energy = _kappa_table(results)
    reached = np.isfinite(time)
    rows = []
    median_power = np.nanmedian(power, 1)
    rows.append(Row(f"{SOURCE}, Fig. 1", "trained free power against kappa",
                    "falls as kappa falls", "median P_F by kappa: " + ", ".join(
                        f"{fmt(k)}: {fmt(p)}" for k, p in zip(kappa, median_power)),
                    "median P_F increases with kappa at every step", bool((np.diff(median_power) > 0).all())))
    frac = reached.mean(1)
    rows.append(Row(f"{SOURCE}, Fig. 1", f"realizations reaching L = {TRAINED_ERROR:g}",
                    "all (training time is finite at every kappa)",
                    ", ".join(f"{fmt(k)}: {f:.0%}" for k, f in zip(kappa, frac)), "all reach it at every kappa",
                    bool(frac.min() == 1.0),
                    note="" if frac.min() == 1.0 else "Within the 1e6 steps; networks that do not reach it count as "
                    "infinitely slow in the medians below (the paper does not say how it treats them)"))
    # a network that never reached the tolerance took longer than the run: +inf in the median, so a median
    # over mostly unreached networks is infinite (shown as inf) rather than the few that made it
    t_med = np.median(np.where(reached, time, np.inf), 1)
    low = kappa <= 1e-2
    high = (kappa >= 0.1) & (kappa <= 1.0)
    slope_low = _finite_slope(kappa[low], t_med[low])
    rows.append(Row(f"{SOURCE}, Fig. 1", f"training time to L = {TRAINED_ERROR:g} near k_min (kappa <= 1e-2)",
                    "grows like kappa^-1", f"log-log slope {fmt(slope_low)}; median times (steps) " + ", ".join(
                        f"{fmt(k)}: {fmt(t)}" for k, t in zip(kappa[low], t_med[low])),
                    "slope in [-1.2, -0.8] (every exponent in this report: within 20 %)",
                    bool(-1.2 <= slope_low <= -0.8), note=_NO_SLOPE if slope_low != slope_low
                    else "Near k_min the conductances that should fall are clipped at k_min = 1e-3, which slows "
                    "learning; the exponent presumably also carries the alpha ~ kappa^0.5 scaling (the next row; "
                    "not run at low kappa with alpha ~ kappa)"))
    slope_high = _finite_slope(kappa[high], t_med[high])
    rows.append(Row(f"{SOURCE}, Fig. 1", "training time at high kappa (0.1 <= kappa <= 1)", "flat",
                    f"log-log slope {fmt(slope_high)}; median times (steps) " + ", ".join(
                        f"{fmt(k)}: {fmt(t)}" for k, t in zip(kappa[high], t_med[high])),
                    "slope in [-0.2, 0.2] (flat: within the 0.2 allowed on an exponent of 1)",
                    bool(-0.2 <= slope_high <= 0.2), note=_NO_SLOPE if slope_high != slope_high else ALPHA_NOTE))
    e_med = np.median(np.where(reached, energy, np.inf), 1)
    i = int(np.argmin(e_med))
    # a minimum is only seen if the grid points beside it were measured (finite)
    seen = np.isfinite(e_med[max(i - 1, 0):i + 2]).all()
    best = float(kappa[i]) if seen else np.nan
    rows.append(Row(f"{SOURCE}, Fig. 1", f"kappa of minimal training energy (energy to L = {TRAINED_ERROR:g})",
                    "about 2e-2", f"{fmt(best)}; median energies " + ", ".join(
                        f"{fmt(k)}: {fmt(e)}" for k, e in zip(kappa, e_med)),
                    "minimum at 1e-2 <= kappa <= 5e-2 (the grid points around 2e-2), with both neighbours measured",
                    bool(1e-2 <= best <= 5e-2),
                    note=("inf: most networks at that kappa did not reach the tolerance within the run. "
                          if not np.isfinite(e_med).all() else "") + "The energies within 1.6x of the minimum span "
                    f"kappa = {fmt(kappa[e_med <= 1.6 * e_med.min()].min())} - "
                    f"{fmt(kappa[e_med <= 1.6 * e_med.min()].max())}: a plateau. The energy is the free power summed "
                    "over the training "
                    "time, so it presumably moves with the learning-rate scaling as the training time does (the row "
                    "above); this was not run"))
    return rows


def _plot_kappa(results, path):
    import matplotlib.pyplot as plt

    kappa, time, power, energy = _kappa_table(results)
    reached = np.isfinite(time)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, values, label in zip(axes, (power, np.where(reached, time, np.inf), np.where(reached, energy, np.inf)),
                                 ("trained free power P_F", f"training time to L = {TRAINED_ERROR:g} (steps)",
                                  "training energy to L = 1e-4")):
        med = np.median(values, 1)  # as the report's rows: an unreached network counts as infinitely slow
        ax.loglog(kappa, np.where(np.isfinite(med), med, np.nan), "o-")
        ax.set_xlabel("kappa (initial conductance)")
        ax.set_ylabel(label)
    save_figure(fig, path, "Stern et al. 2024, Fig. 1 (medians over realizations)")


FIG1 = Reproduction(
    "stern2024-fig1", "Stern et al. 2024, Fig. 1: the initial conductance scale kappa", SOURCE, _kappa_studies(),
    _evaluate_kappa, _plot_kappa,
    parameters=(f"N = 64 jammed networks (one per realization), edge regression, full batch, eta = 1e-3, lambda = 0, "
                f"k in [1e-3, 10], conductances start uniform at kappa, alpha = {ALPHA_AT_KAPPA_1} kappa^0.5 (the "
                "paper's scaling; the paper's alpha at kappa = 1 is not in the sources available to edgesim, so the published notebook's "
                "0.5 is used), up to 1e6 steps. Each realization stops learning when its normalised training error "
                f"reaches {TRAINED_ERROR:g} (early stopping): the training time is that step, the trained power the "
                "free power there, the training energy the sum of the free power over the steps until then. "
                "Realizations: 10 (the paper's number is not in the sources available to edgesim)."))


# -- Fig. 2: lambda --------------------------------------------------------------------------------
def _evaluate_lambda(results, quick):
    ds = results["lambda"]
    lam = ds["lambda"].values
    learned = (final(normalized_error(ds)).sel({"lambda": 0.0}) < 1e-10).values
    # the published notebook keeps the realizations that learn at lambda = 0; so do the rows after the first
    kept = ds.isel(realization=np.flatnonzero(learned)) if learned.any() else ds
    err = final(normalized_error(kept))  # (lambda, realization)
    power = final(kept.free_power)
    p0 = power.sel({"lambda": 0.0})
    rows = [Row(f"{SOURCE}, Fig. 2", "normalised training error at lambda = 0", "below 1e-10",
                spread(final(normalized_error(ds)).sel({"lambda": 0.0}).values),
                "most realizations (> 50 %) below 1e-10", bool(learned.mean() > 0.5),
                note=f"{learned.sum()} of {learned.size} realizations learn to 1e-10; " + (
                    "the other rows use these, as the published code does: its notebook keeps only the trials "
                    "below 1e-10 (ids = ACostsTr[:, 0, -1] < 1e-10), so there too not every task learns"
                    if learned.any() else "none does, so the other rows use all of them"))]
    gm = geometric_mean(err).values
    small = (lam > 0) & (lam <= 1e-4)
    slope = loglog_slope(lam[small], gm[small])
    rows.append(Row(f"{SOURCE}, Fig. 2", "error against lambda at small lambda (1e-10..1e-4)", "~ lambda^2",
                    f"log-log slope {fmt(slope)} (geometric mean over realizations)", "slope in [1.6, 2.4]",
                    bool(1.6 <= slope <= 2.4)))
    red = (1 - power / p0).median("realization").values
    # "small lambda": the linear-response regime, where the reduction is still small (below one half)
    rs = (lam > 0) & (red > 0) & (red < 0.5)
    slope_p = _slope(lam[rs], red[rs])
    rows.append(Row(f"{SOURCE}, Fig. 2", "power reduction 1 - P_F(lambda) / P_F(0) at small lambda (where it is "
                    "below 0.5)", "~ lambda", f"log-log slope {fmt(slope_p)} over lambda = {fmt(lam[rs].min())} - "
                    f"{fmt(lam[rs].max())}" if rs.any() else "no lambda with a reduction below 0.5",
                    "slope in [0.8, 1.2]", bool(0.8 <= slope_p <= 1.2)))
    if 1e-5 in lam:
        e5 = err.sel({"lambda": 1e-5}).values
        rows.append(Row(f"{SOURCE}, Fig. 2", "normalised error at lambda = 1e-5",
                        "about 1e-5 (five orders below the initial error)", spread(e5),
                        "median <= 1e-5", bool(np.nanmedian(e5) <= 1e-5), note=PUBLISHED_CODE_NOTE))
        ratio_p = (p0 / power.sel({"lambda": 1e-5})).values
        rows.append(Row(f"{SOURCE}, Fig. 2", "free power reduction factor P_F(0) / P_F(1e-5)", "about 10",
                        spread(ratio_p), "median in [5, 20] (10 within a factor 2)",
                        bool(5 <= np.nanmedian(ratio_p) <= 20),
                        note="see the error at lambda = 1e-5: the published code gives 49 here"))
        energy = final(kept.training_energy)
        ratio_e = (energy.sel({"lambda": 0.0}) / energy.sel({"lambda": 1e-5})).values
        rows.append(Row(f"{SOURCE}, Fig. 2", "training energy reduction factor E(0) / E(1e-5)", "about 10",
                        spread(ratio_e), "median in [5, 20] (10 within a factor 2)",
                        bool(5 <= np.nanmedian(ratio_e) <= 20)))
    if 1e-6 in lam:
        rows.append(Row(f"{SOURCE}, Fig. 2 (published code)", "normalised error at lambda = 1e-6",
                        "the published code on the same tasks: 2.2e-6 (median of 5)", spread(err.sel({"lambda": 1e-6}).values),
                        "reported", None))
        rows.append(Row(f"{SOURCE}, Fig. 2 (published code)", "free power reduction factor P_F(0) / P_F(1e-6)",
                        "the published code on the same tasks: 11 (median of 5)",
                        spread((p0 / power.sel({"lambda": 1e-6})).values), "reported", None))
    return rows


#: What the published code gives on edgesim's Fig. 2 tasks (benchmarks/published_lambda.py, 5 networks, 1e5 steps).
PUBLISHED_CODE_NOTE = (
    "The published code (the notebook's algorithm, benchmarks/published_lambda.py) on the first 5 of these tasks "
    "gives at lambda = 1e-5 an error of 7.2e-3 and a power factor of 49 (medians; edgesim on the same 5: 5.5e-3 and "
    "58), and at lambda = 1e-6 an error of 2.2e-6 and a factor of 11 (edgesim: 2.2e-6 and 11). The paper's numbers "
    "for lambda = 1e-5 are those of its own code at lambda = 1e-6; edgesim follows the code (the rows at 1e-6 "
    "below)")


def _plot_lambda(results, path):
    import matplotlib.pyplot as plt

    ds = results["lambda"]
    lam = ds["lambda"].values
    pos = lam > 0
    err = geometric_mean(final(normalized_error(ds))).values
    power = final(ds.free_power).median("realization").values
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    axes[0].loglog(lam[pos], err[pos], "o-", label="edgesim")
    axes[0].loglog(lam[pos], err[pos][-1] * (lam[pos] / lam[pos][-1]) ** 2, "k--", lw=0.8, label="~ lambda^2")
    axes[0].set_ylabel("normalised training error")
    axes[1].semilogx(lam[pos], power[pos] / power[~pos][0], "o-")
    axes[1].set_ylabel("P_F(lambda) / P_F(0)")
    for ax in axes:
        ax.set_xlabel("lambda")
    axes[0].legend()
    save_figure(fig, path, "Stern et al. 2024, Fig. 2")


FIG2 = Reproduction(
    "stern2024-fig2", "Stern et al. 2024, Fig. 2: the error-power trade-off of lambda", SOURCE,
    (Study("lambda", "stern2024_lambda.toml", quick=("run.steps=2000", "run.realizations=3",
                                                      "sweep.lambda=[0.0, 1e-6, 1e-5, 1e-4, 1e-3]")),),
    _evaluate_lambda, _plot_lambda,
    parameters="The published notebook's parameters: 50 N = 64 jammed networks x 18 lambda (0 and 1e-10..1e-2) x "
               "1e5 full-batch steps, alpha = 0.5, eta = 1e-3, k0 = 1, k in [1e-4, 1e6]; error normalised by its "
               "initial value; free power 0.5 sum k dV^2 averaged over the training examples; training energy the "
               "sum of the free power over the steps (step duration 1).")


# -- Fig. 4: lambda feedback against early stopping ----------------------------------------------------------
def _feedback_rows(results, quick):
    control, early = results["feedback"], results["early-stop"]
    rows = []
    published = {1e-2: "", 1e-3: "about 0.5 (50 %)", 1e-4: ""}
    for tol in control.tolerance.values:
        pc = final(control.free_power).sel({"tolerance": tol}).values
        pe = final(early.free_power).sel({"tolerance": tol}).values
        gain = 1 - pc / pe
        rows.append(Row(f"{SOURCE}, Fig. 4", f"power gain of lambda feedback over early stopping, L_tol = {tol:g}",
                        published[float(tol)] or "positive (the figure's curve)", spread(gain),
                        "median in [0.35, 0.65] (50 % within 15 points)" if float(tol) == 1e-3 else "median > 0",
                        bool(0.35 <= np.nanmedian(gain) <= 0.65) if float(tol) == 1e-3
                        else bool(np.nanmedian(gain) > 0),
                        note=FEEDBACK_NOTE if float(tol) == 1e-3 else ""))
        err = final(normalized_error(control)).sel({"tolerance": tol}).values
        rows.append(Row(f"{SOURCE}, Fig. 4", f"final error of the feedback run, L_tol = {tol:g}",
                        "held near the tolerance", spread(err), "median within a factor 3 of L_tol",
                        bool(tol / 3 <= np.nanmedian(err) <= 3 * tol)))
    return rows


#: What a longer run of the same study shows (docs/validation.md has the commands).
FEEDBACK_NOTE = (
    "The gain grows with the length of the run: the same 10 networks at L_tol = 1e-3 give a median gain of 0.34 "
    "after 1e5 steps, 0.37 after 2e5 and 0.39 after 3e5 (feedback and early stopping both run 3e5 steps). The "
    "paper's controller exponent p, initial lambda, learning rate and run length are not in the sources available to edgesim; "
    "edgesim's choices (p = 0.02, lambda(0) = 1e-4, alpha = 0.03, 1e5 steps) give a smaller gain than its 50 %")


def _plot_feedback(results, path):
    import matplotlib.pyplot as plt

    control, early = results["feedback"], results["early-stop"]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for tol in control.tolerance.values:
        c, e = control.sel({"tolerance": tol}), early.sel({"tolerance": tol})
        line, = axes[0].loglog(c.time, normalized_error(c).median("realization"), label=f"feedback {tol:g}")
        axes[0].loglog(e.time, normalized_error(e).median("realization"), "--", color=line.get_color())
        axes[1].loglog(c.time, c.free_power.median("realization"), color=line.get_color())
        axes[1].loglog(e.time, e.free_power.median("realization"), "--", color=line.get_color())
    axes[0].set_ylabel("normalised training error")
    axes[1].set_ylabel("free power P_F")
    for ax in axes:
        ax.set_xlabel("time (steps)")
    axes[0].legend(fontsize=7, title="solid: feedback, dashed: early stop", title_fontsize=7)
    save_figure(fig, path, "Stern et al. 2024, Fig. 4")


_QUICK_CONTROL = ("run.steps=3000", "run.realizations=2", "run.record_points=40", "run.conductance_every=3000")
FIG4 = Reproduction(
    "stern2024-fig4", "Stern et al. 2024, Fig. 4: lambda feedback against early stopping", SOURCE,
    (Study("feedback", "stern2024_lambda_control.toml", quick=_QUICK_CONTROL),
     Study("early-stop", "stern2024_lambda_control.toml",
           full=("control.kind='constant'", "control.early_stop=true", "learning.lambda=0.0"), quick=_QUICK_CONTROL)),
    _feedback_rows, _plot_feedback,
    parameters="scenarios/stern2024_lambda_control.toml: N = 64 jammed networks, edge regression, alpha = 0.03, "
               "eta = 1e-3, conductances start at k_min = 1e-3, lambda(0) = 1e-4, rho = 1 per step, p = 0.02, "
               "tolerances relative to the initial error, 10 realizations x 1e5 steps. The paper's p, initial "
               "lambda and alpha are not in the sources available to edgesim: these are edgesim's choices (docs/experiments.md). "
               "The comparison is plain coupled learning stopped when it first reaches the same tolerance.")


# -- Fig. 6: kappa and lambda -----------------------------------------------------------------------
KAPPAS_FIG6 = (1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)


def _fig6_studies():
    return tuple(Study(f"kappa={kappa:g}", "stern2024_lambda.toml",
                       full=(f"learning.kappa={kappa!r}", f"learning.alpha={_alpha(kappa)!r}", "learning.k_min=1e-3",
                             "learning.k_max=10.0", "run.realizations=10", "sweep.lambda=[0.0, 1e-8, 1e-4]"),
                       quick=("run.steps=2000", "run.realizations=2"))
                 for kappa in KAPPAS_FIG6)


def _fig6_table(results):
    """kappa, and per lambda the absolute and the relative power reduction (kappa, realization)."""
    pairs = sorted(((float(stored(ds, "learning", "kappa")), ds) for ds in results.values()),
                   key=lambda pair: pair[0])
    kappa = np.array([k for k, _ in pairs])
    absolute, relative = {}, {}
    for lam in (1e-8, 1e-4):
        p0 = [final(ds.free_power).sel({"lambda": 0.0}).values for _, ds in pairs]
        p = [final(ds.free_power).sel({"lambda": lam}).values for _, ds in pairs]
        absolute[lam] = np.array([a - b for a, b in zip(p0, p)])
        relative[lam] = np.array([1 - b / a for a, b in zip(p0, p)])
    return kappa, absolute, relative


def _evaluate_fig6(results, quick):
    kappa, absolute, relative = _fig6_table(results)
    rows = []
    for lam, want, lo, hi in ((1e-8, 0.5, 0.4, 0.6), (1e-4, 1.0, 0.8, 1.2)):  # exponents within 20 %
        med = np.nanmedian(absolute[lam], 1)
        ok = med > 0
        slope = _slope(kappa[ok], med[ok])
        rows.append(Row(f"{SOURCE}, Fig. 6", f"power reduction P_F(0) - P_F(lambda) against kappa, lambda = {lam:g}",
                        f"~ kappa^{want:g}", f"log-log slope {fmt(slope)}; medians " + ", ".join(
                            f"{fmt(k)}: {fmt(r)}" for k, r in zip(kappa, med))
                        + "; relative reduction 1 - P_F(lambda) / P_F(0): " + ", ".join(
                            f"{fmt(k)}: {fmt(r)}" for k, r in zip(kappa, np.nanmedian(relative[lam], 1))),
                        f"slope in [{lo}, {hi}]", bool(lo <= slope <= hi)))
    return rows


def _plot_fig6(results, path):
    import matplotlib.pyplot as plt

    kappa, absolute, _ = _fig6_table(results)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for lam in absolute:
        ax.loglog(kappa, np.nanmedian(absolute[lam], 1), "o-", label=f"lambda = {lam:g}")
    ax.set_xlabel("kappa")
    ax.set_ylabel("P_F(0) - P_F(lambda)")
    ax.legend()
    save_figure(fig, path, "Stern et al. 2024, Fig. 6")


FIG6 = Reproduction(
    "stern2024-fig6", "Stern et al. 2024, Fig. 6: how kappa sets the power gain of lambda", SOURCE, _fig6_studies(),
    _evaluate_fig6, _plot_fig6,
    parameters=f"As Fig. 2 (1e5 steps, eta = 1e-3) with k in [1e-3, 10], kappa in {list(KAPPAS_FIG6)}, alpha = "
               f"{ALPHA_AT_KAPPA_1} kappa^0.5 as in Fig. 1, lambda in (0, 1e-8, 1e-4), 10 realizations. The kappa "
               "grid stays a decade inside the conductance bounds; the paper's grid is not in the sources available to edgesim.")


# -- Fig. 3: the laboratory transistor lattice -----------------------------------------------------------------
LAB_LAMBDAS = (0.0, 0.01, 0.02, 0.035, 0.055)


def _evaluate_lab(results, quick):
    ds = results["lambda"]
    lam = ds["lambda"].values
    err = final(normalized_error(ds)).median("realization").values
    power = final(ds.free_power).median("realization").values
    listing = "; ".join(f"lambda = {fmt(v)}: error {fmt(e)}, P_F {fmt(p)} W" for v, e, p in zip(lam, err, power))
    return [
        Row(f"{SOURCE}, Fig. 3 (laboratory)", "trained free power against lambda", "falls as lambda rises",
            listing, "P_F at the largest lambda below P_F at lambda = 0, and the rank correlation negative",
            bool(power[-1] < power[0] and _rank_correlation(lam, power) < 0)),
        Row(f"{SOURCE}, Fig. 3 (laboratory)", "trained error against lambda", "rises as lambda rises",
            f"rank correlation of error with lambda {fmt(_rank_correlation(lam, err))}",
            "error at the largest lambda above the error at lambda = 0, and the rank correlation positive",
            bool(err[-1] > err[0] and _rank_correlation(lam, err) > 0),
            note="" if np.all(np.diff(err) > 0) else "One network, as in the laboratory: its error does not rise at "
            "every step of lambda, so the trend is read from the rank correlation and the end points"),
    ]


def _rank_correlation(x, y) -> float:
    """Spearman's rank correlation (no ties expected)."""
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def _plot_lab(results, path):
    import matplotlib.pyplot as plt

    ds = results["lambda"]
    err = final(normalized_error(ds)).median("realization")
    power = final(ds.free_power).median("realization")
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.loglog(power.values, err.values, "o-")
    for lam, p, e in zip(ds["lambda"].values, power.values, err.values):
        ax.annotate(f"{lam:g}", (p, e), fontsize=7)
    ax.set_xlabel("trained free power P_F (W)")
    ax.set_ylabel("normalised training error")
    save_figure(fig, path, "Stern et al. 2024, Fig. 3: error-power trade-off (labels: lambda)")


FIG3 = Reproduction(
    "stern2024-fig3", "Stern et al. 2024, Fig. 3: the laboratory transistor network's error-power trade-off",
    SOURCE,
    (Study("lambda", "transistor_lambda_control.toml",
           full=("control.kind='constant'", "learning.eta=0.22", f"sweep.lambda={list(LAB_LAMBDAS)}",
                 "run.realizations=1"),
           quick=("run.steps=400", "sweep.lambda=[0.0, 0.055]")),),
    _evaluate_lab, _plot_lab,
    parameters="scenarios/transistor_lambda_control.toml with constant lambda: the 4 x 4 periodic transistor "
               "lattice (32 edges) on the vectorised engine with the transistor2024 hardware preset (leaky gate "
               "capacitors, leak time 10 s; clock drift 2 %, jitter 10 us; comparator noise 2 mV, offsets 1 mV), "
               "nudge eta = 0.22, a two-output allostery task, 6000 presentations of 1 ms, lambda from 0 to 0.055 "
               "(the laboratory range), one network (the laboratory had one). The laboratory's inputs and its task "
               "are not in the sources available to edgesim: edgesim's allostery task is used.")


# -- Fig. 7: Iris and label noise under lambda ---------------------------------------------------------------
FIG7_LAMBDAS = (0.0, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
LABEL_NOISE = 1e-3  # V


#: What the full Iris run shows (docs/validation.md).
IRIS_NOTE = (
    "edgesim's Iris networks tolerate more lambda than the paper's: the median power gain passes 2 between lambda "
    "= 1e-7 (1.09) and 1e-6 (3.8), and the median accuracy holds to 1e-5 (gain 65) before it drops. The paper's "
    "Iris encoding, class targets and run length are not in the sources available to edgesim; the 0-1 V features, "
    "0.1 V class margin and 2e4 steps used here are edgesim's choices, and the lambda scale at which power and "
    "accuracy give way depends on them")


def _unaffected_up_to(lam, values, ok) -> float:
    """The largest lambda up to which every lambda's value passes ``ok`` (0 if the smallest fails)."""
    best = 0.0
    for v, value in zip(lam[1:], values[1:]):
        if not ok(value):
            break
        best = float(v)
    return best


def _iris(results, name="iris"):
    """100 realizations: the 50 networks with two draws of the task (seeds 2024 and 2025)."""
    first, second = results[name], results[f"{name}-second-draw"]
    second = second.assign_coords(realization=second.realization + first.sizes["realization"])
    keep = [v for v in first.data_vars if "realization" in first[v].dims and "step" in first[v].dims]
    return xr.concat([first[keep], second[keep]], "realization")


def _evaluate_fig7(results, quick):
    iris, noisy = _iris(results), _iris(results, "label-noise")
    lam = iris["lambda"].values
    acc = final(iris.accuracy_test).median("realization").values
    acc0 = acc[0]
    up_to = _unaffected_up_to(lam, acc, lambda a: a >= acc0 - 0.01)
    rows = [Row(f"{SOURCE}, Fig. 7", "Iris (N = 64): largest lambda with the test accuracy of lambda = 0",
                "about 1e-7", f"{fmt(up_to)}; median accuracies " + ", ".join(
                    f"{fmt(v)}: {a:.3f}" for v, a in zip(lam, acc)),
                "the accuracy stays within 0.01 of lambda = 0 up to a lambda in [1e-8, 1e-6] (1e-7 within a "
                "decade) and drops beyond it", bool(1e-8 <= up_to <= 1e-6), note=IRIS_NOTE)]
    power = final(iris.free_power)
    gain = (power.sel({"lambda": 0.0}) / power.sel({"lambda": 1e-7})).values
    rows.append(Row(f"{SOURCE}, Fig. 7", "Iris: free-power gain P_F(0) / P_F(1e-7)", "about 2", spread(gain),
                    "median in [1.5, 3]", bool(1.5 <= np.nanmedian(gain) <= 3), note=IRIS_NOTE))
    lam_n = noisy["lambda"].values
    err = final(normalized_error(noisy, "error_test"))
    ratio = (err / err.sel({"lambda": 0.0})).median("realization").values
    up_to_n = _unaffected_up_to(lam_n, ratio, lambda r: r <= 1.5)
    rows.append(Row(f"{SOURCE}, Fig. 7", f"regression with label noise {LABEL_NOISE:g} V: largest lambda with the "
                    "test error of lambda = 0", "about 1e-7 (unaffected below)", f"{fmt(up_to_n)}; median "
                    "error / error at lambda = 0: " + ", ".join(f"{fmt(v)}: {fmt(r)}" for v, r in zip(lam_n, ratio)),
                    "the test error stays within 1.5x of lambda = 0 up to a lambda in [1e-8, 1e-6] (1e-7 within a "
                    "decade) and rises beyond it", bool(1e-8 <= up_to_n <= 1e-6)))
    return rows


def _plot_fig7(results, path):
    import matplotlib.pyplot as plt

    iris, noisy = _iris(results), _iris(results, "label-noise")
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    lam = iris["lambda"].values
    pos = lam > 0
    acc = final(iris.accuracy_test).median("realization").values
    power = final(iris.free_power).median("realization").values
    axes[0].semilogx(lam[pos], acc[pos], "o-", label="test accuracy")
    axes[0].semilogx(lam[pos], power[pos] / power[0], "s--", label="P_F / P_F(0)")
    axes[0].set_title("Iris on N = 64 networks", fontsize=9)
    axes[0].legend(fontsize=7)
    lam_n = noisy["lambda"].values
    err = geometric_mean(final(normalized_error(noisy, "error_test"))).values
    axes[1].loglog(lam_n[lam_n > 0], err[lam_n > 0], "o-")
    axes[1].axhline(err[0], color="k", ls="--", lw=0.8, label="lambda = 0")
    axes[1].set_ylabel("normalised test error")
    axes[1].set_title(f"regression, label noise {LABEL_NOISE:g} V", fontsize=9)
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("lambda")
    save_figure(fig, path, "Stern et al. 2024, Fig. 7")


_LAMBDA_GRID = f"sweep.lambda={list(FIG7_LAMBDAS)}"
_QUICK_IRIS = ("run.steps=1500", "run.realizations=2", "sweep.lambda=[0.0, 1e-7, 1e-3]")
_NOISE = (f"task.label_noise={LABEL_NOISE!r}", "run.realizations=50", _LAMBDA_GRID)
_QUICK_NOISE = ("run.steps=1500", "run.realizations=2", "sweep.lambda=[0.0, 1e-8, 1e-3]")
FIG7 = Reproduction(
    "stern2024-fig7", "Stern et al. 2024, Fig. 7: Iris classification and noisy labels under lambda", SOURCE,
    (Study("iris", "stern2024_iris.toml", full=(_LAMBDA_GRID,), quick=_QUICK_IRIS),
     Study("iris-second-draw", "stern2024_iris.toml", full=(_LAMBDA_GRID, "run.seed=2025"), quick=_QUICK_IRIS),
     Study("label-noise", "stern2024_lambda.toml", full=_NOISE, quick=_QUICK_NOISE),
     Study("label-noise-second-draw", "stern2024_lambda.toml", full=_NOISE + ("run.seed=2025",),
           quick=_QUICK_NOISE)),
    _evaluate_fig7, _plot_fig7,
    parameters="Iris (scenarios/stern2024_iris.toml): 100 realizations, the 50 shipped N = 64 jammed networks "
               "each with two draws (seeds 2024 and 2025) of a random ground, 4 input and 3 output nodes and the "
               "training flowers; features scaled to 0-1 V (the simulations' input scale), 30 training and "
               "120 test flowers, full batch, targets reset every 30 steps to each species' mean output +- 0.1 V, "
               "alpha = 0.5, eta = 1e-3, k0 = 1, 2e4 steps, lambda 0 and 1e-10..1e-2. Regression with label noise: "
               f"the Fig. 2 task with Gaussian noise of {LABEL_NOISE:g} V on the training targets (the noise level "
               "of the paper's appendix according to a secondary summary of it), 100 realizations (the 50 networks, "
               "two draws of task and noise) x 1e5 steps, the test error "
               "against exact targets. The paper's Iris encoding, margin and step count are not in the sources "
               "available to edgesim: these are edgesim's choices.")
