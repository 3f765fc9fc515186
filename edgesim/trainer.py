"""The synchronous trainer: the plain clocked loop of the published simulations.

Every edge updates at every step.  A stack of independent systems (network
realizations, lambda values, initial conductance scales ...) is trained at
once: the shared :class:`~edgesim.physics.TwinSolver` factors all of them per
step and each twin is then a few small dense solves, so an ensemble costs
little more than its floating-point work.

Step ``s`` (``s = 0 .. steps``) sees the conductances after ``s`` updates.
Recorded quantities at step ``s`` are measured on that state; the training
energy at step ``s`` is the integral of the free power over the first ``s``
steps.

Classification (laboratory Iris protocol): at the start of every epoch the
target of each class is reset to the network's mean free output over that
class's training examples, with the class's own output raised by
``class_margin`` volts and the other outputs lowered by it, so that classes
are pushed apart; an example is classified by the nearest class mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .physics import TwinSolver, clamped_solution, free_solution, mean_square_drops
from .rules import TapLadder, clip_conductance, coupled_learning_update_squared, sign_rule_direction
from .tasks import Task

__all__ = ["LearningConfig", "History", "train_synchronous", "record_steps", "measure", "class_targets"]


@dataclass(frozen=True)
class LearningConfig:
    """How edges learn (shared by every system of a stack).

    Parameters
    ----------
    rule : {"coupled", "sign"}
        Continuous (power-efficient) coupled learning, or the discrete sign
        rule on a tap ladder.
    batch : {"full", "online"}
        Mean update over all training examples per step, or one example per
        step (cycling through the training set).
    k_min, k_max : float
        Conductance range of the element (continuous rule).
    taps : TapLadder or None
        Tap ladder of the sign rule (default: 128-tap 100 kOhm potentiometer).
    deadband : float
        Comparator dead band of the sign rule (volts).
    class_margin : float
        Separation pushed into the classification targets (volts).
    epoch_steps : int or None
        Steps between classification target resets (default: training-set size).
    """

    rule: str = "coupled"
    batch: str = "full"
    k_min: float = 1e-4
    k_max: float = 1e6
    taps: TapLadder | None = None
    deadband: float = 0.0
    class_margin: float = 0.5
    epoch_steps: int | None = None

    def __post_init__(self):
        if self.rule not in ("coupled", "sign"):
            raise ValueError(f"unknown learning rule {self.rule!r}; use 'coupled' or 'sign'")
        if self.batch not in ("full", "online"):
            raise ValueError(f"unknown batch mode {self.batch!r}; use 'full' or 'online'")
        if not 0 < self.k_min < self.k_max:
            raise ValueError(f"conductance range must satisfy 0 < k_min < k_max, got {self.k_min}, {self.k_max}")
        if self.deadband < 0:
            raise ValueError(f"deadband must be >= 0 V, got {self.deadband}")
        if self.epoch_steps is not None and self.epoch_steps < 1:
            raise ValueError(f"epoch_steps must be >= 1, got {self.epoch_steps}")

    @property
    def ladder(self) -> TapLadder:
        return self.taps if self.taps is not None else TapLadder()


@dataclass
class History:
    """Recorded trajectories of a stack of ``R`` systems over ``n`` record steps."""

    step: np.ndarray
    error_train: np.ndarray
    error_test: np.ndarray
    free_power: np.ndarray
    clamped_power: np.ndarray
    training_energy: np.ndarray
    training_energy_total: np.ndarray
    conductance_step: np.ndarray
    conductance: np.ndarray
    accuracy_train: np.ndarray | None = None
    accuracy_test: np.ndarray | None = None
    output_free: np.ndarray | None = None
    output_desired: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def measure(resp, X, Y, XT, YT, eta, *, labels=None, test_labels=None, means=None, margin=0.0,
            tracking=False, clamped_resp=None) -> dict:
    """Recorded figures of merit of a stack in its current state (shared by trainer and engines).

    Parameters
    ----------
    resp : Response
        Factorization of the current conductances.
    X, Y, XT, YT : ndarray (R, rows, n_examples)
        Training inputs and current desired outputs, test inputs and targets.
    eta : float or ndarray (R, 1, 1)
        Nudge used for the clamped power.
    labels, test_labels, means : ndarray, optional
        Classification: example classes and the current class means (R, n_out, C).
    tracking : bool
        Targets follow a schedule: the test target is the current training target.
    clamped_resp : Response, optional
        Factorization of the clamped twin when it differs from the free one.

    Returns
    -------
    dict of ndarray (R,)
        error_train, error_test, free_power, clamped_power (mean over training
        examples), accuracy_train/test for classification, and output_free.
    """
    _, out, power = free_solution(resp, X)
    _, out_test, _ = free_solution(resp, XT)
    _, power_c = clamped_solution(resp if clamped_resp is None else clamped_resp,
                                  np.concatenate([X, out + eta * (Y - out)], 1))
    m = {"error_train": ((out - Y) ** 2).mean((1, 2)), "free_power": power.mean(1),
         "clamped_power": power_c.mean(1), "output_free": out}
    if means is not None:
        m["accuracy_train"] = (_classify(out, means) == labels).mean(1)
        m["accuracy_test"] = (_classify(out_test, means) == test_labels).mean(1)
        _, test_targets = _class_targets_from_means(means, test_labels, margin, out.shape[1])
        m["error_test"] = ((out_test - test_targets) ** 2).mean((1, 2))
    else:
        yt = np.broadcast_to(Y[:, :, :1], out_test.shape) if tracking else YT
        m["error_test"] = ((out_test - yt) ** 2).mean((1, 2))
    return m


def record_steps(steps: int, n_records: int | None = None, every: int | None = None) -> np.ndarray:
    """Steps at which to record: every ``every`` steps, or ``n_records`` log-spaced ones.

    Step 0 and the final step are always included.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if every is not None:
        if every < 1:
            raise ValueError(f"record interval must be >= 1 step, got {every}")
        s = np.arange(0, steps + 1, every)
    else:
        n = n_records or 100
        s = np.unique(np.round(np.geomspace(1, steps + 1, n) - 1).astype(np.int64)) if steps else np.zeros(1, int)
    return np.unique(np.concatenate([[0, steps], s]))


def _stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(a, dtype=float) for a in arrays])


def _class_means(outputs, labels, n_classes):
    """Mean output per class: (R, n_out, n_classes)."""
    onehot = (labels[:, None, :] == np.arange(n_classes)[None, :, None]).astype(float)  # (R, C, n_ex)
    counts = onehot.sum(-1)
    return (outputs @ onehot.transpose(0, 2, 1)) / np.maximum(counts, 1)[:, None, :]


def class_targets(outputs, labels, n_classes: int, margin: float):
    """Per-epoch classification targets of the laboratory protocol.

    Returns the class means (R, n_out, C) and the desired output of every
    example (R, n_out, n_ex): its class mean with the class's own output raised
    by ``margin`` and the others lowered by it.
    """
    return _class_targets_from_means(_class_means(outputs, labels, n_classes), labels, margin, outputs.shape[1])


def _class_targets_from_means(means, labels, margin, no):
    n_classes = means.shape[2]
    targets = means + margin * (2.0 * np.eye(n_classes, no).T - 1.0)[None]
    shape = (labels.shape[0], no, labels.shape[1])
    return means, np.take_along_axis(targets, np.broadcast_to(labels[:, None, :], shape), 2)


def _classify(outputs, means):
    """Index of the nearest class mean for every example: (R, n_ex)."""
    d = ((outputs[:, :, None, :] - means[:, :, :, None]) ** 2).sum(1)  # (R, C, n_ex)
    return d.argmin(1)


def train_synchronous(tasks: Sequence[Task], config: LearningConfig, steps: int,
                      initial_conductance: Sequence[np.ndarray], *, alpha=0.5, eta=1e-3, lam=0.0,
                      record_at: np.ndarray | None = None, conductance_every: int = 1,
                      step_duration: float = 1.0, solver_backend: str = "auto",
                      progress=None) -> History:
    """Train a stack of systems with synchronous updates of every edge.

    Parameters
    ----------
    tasks : sequence of Task
        One task per system; all need the same numbers of inputs, outputs,
        training and test examples and the same kind.
    config : LearningConfig
    steps : int
        Number of learning steps.
    initial_conductance : sequence of ndarray
        Initial conductance of every edge of every system (siemens).
    alpha, eta, lam : float or array_like (R,)
        Learning rate, nudge and power-efficiency amplitude, per system.
    record_at : ndarray of int, optional
        Steps to record (default :func:`record_steps` with 100 log-spaced points).
    conductance_every : int
        Record conductances at every ``conductance_every``-th record step
        (the first and last are always kept).
    step_duration : float
        Simulated seconds per step (sets the ``time`` axis and the energy units).
    progress : callable or None
        ``progress(n)`` is called with the number of steps just completed.

    Returns
    -------
    History
    """
    tasks = list(tasks)
    R = len(tasks)
    first = tasks[0]
    for t in tasks:
        if (t.n_train, t.n_test, t.kind) != (first.n_train, first.n_test, first.kind):
            raise ValueError("all tasks of a stack need equal training/test sizes and kind")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    solver = TwinSolver([t.network for t in tasks], [t.boundary for t in tasks], backend=solver_backend)
    E, no = solver.n_edges, solver.n_outputs
    valid = solver.edge_valid
    def per(v, name):
        v = np.asarray(v, dtype=float)
        if v.ndim > 1 or v.size not in (1, R):
            raise ValueError(f"{name} must be one value or one per system ({R}), got shape {v.shape}")
        return np.broadcast_to(v.reshape(-1), (R,)).reshape(R, 1, 1)

    alpha_, eta_, lam_ = per(alpha, "alpha"), per(eta, "eta"), per(lam, "lambda")
    if ((eta_ <= 0) | (eta_ > 1)).any():
        raise ValueError(f"nudge eta must satisfy 0 < eta <= 1, got {np.unique(eta_)}")
    if not np.isfinite(alpha_).all() or not np.isfinite(lam_).all():
        raise ValueError("alpha and lambda must be finite numbers")

    initial_conductance = list(initial_conductance)
    if len(initial_conductance) != R:
        raise ValueError(f"need one initial conductance array per task ({R}), got {len(initial_conductance)}")
    k = np.ones((R, E))
    for r, k0 in enumerate(initial_conductance):
        k0 = np.asarray(k0, dtype=float)
        if k0.shape != (tasks[r].network.n_edges,):
            raise ValueError(f"system {r}: initial conductance must have one value per edge "
                             f"({tasks[r].network.n_edges}), got shape {k0.shape}")
        if not np.isfinite(k0).all():
            raise ValueError(f"system {r}: initial conductance contains NaN or infinite values")
        if (k0 <= 0).any():
            raise ValueError(f"system {r}: initial conductance must be positive, got min {k0.min()}")
        k[r, :len(k0)] = k0
    sign_rule = config.rule == "sign"
    if sign_rule:
        ladder_k = config.ladder.conductances
        taps = np.where(valid, config.ladder.nearest_tap(k), 0)
        k = np.where(valid, ladder_k[taps], 1.0)
    else:
        k = np.where(valid, clip_conductance(k, config.k_min, config.k_max), 1.0)

    X = _stack([t.train_inputs for t in tasks])
    Y = _stack([t.train_targets for t in tasks])
    XT = _stack([t.test_inputs for t in tasks])
    YT = _stack([t.test_targets for t in tasks])
    n_train = first.n_train
    classification = first.kind == "classification"
    if classification:
        labels = np.stack([t.train_labels for t in tasks])
        test_labels = np.stack([t.test_labels for t in tasks])
        n_classes = max(t.n_classes for t in tasks)
        epoch_steps = config.epoch_steps or n_train
    schedule = first.target_schedule
    if schedule is not None:
        if any(t.target_schedule is None or t.target_schedule.shape != schedule.shape for t in tasks):
            raise ValueError("all tasks of a stack need the same target schedule shape")
        schedules = np.stack([t.target_schedule for t in tasks])  # (R, n_phases, no)

    rec = record_steps(steps) if record_at is None else np.unique(np.asarray(record_at, dtype=np.int64))
    if rec.size == 0 or rec.min() < 0 or rec.max() > steps:
        raise ValueError(f"record steps must lie in 0..{steps}")
    n_rec = len(rec)
    crec_idx = np.unique(np.concatenate([[0, n_rec - 1], np.arange(0, n_rec, max(conductance_every, 1))]))
    crec_steps = set(rec[crec_idx].tolist())
    keep_outputs = n_train <= 4
    h = History(
        step=rec,
        error_train=np.zeros((R, n_rec)), error_test=np.zeros((R, n_rec)),
        free_power=np.zeros((R, n_rec)), clamped_power=np.zeros((R, n_rec)),
        training_energy=np.zeros((R, n_rec)), training_energy_total=np.zeros((R, n_rec)),
        conductance_step=rec[crec_idx], conductance=np.full((R, len(crec_idx), E), np.nan),
        accuracy_train=np.zeros((R, n_rec)) if classification else None,
        accuracy_test=np.zeros((R, n_rec)) if classification else None,
        output_free=np.zeros((R, n_rec, no, n_train)) if keep_outputs else None,
        output_desired=np.zeros((R, n_rec, no, n_train)) if keep_outputs else None,
    )
    rec_pos = {int(s): i for i, s in enumerate(rec)}
    energy = np.zeros(R)
    energy_total = np.zeros(R)
    means = None
    crec = 0
    for s in range(steps + 1):
        resp = solver.response(k)
        # Desired outputs of the training set at this step.
        if classification and s % epoch_steps == 0:
            _, out_all, _ = free_solution(resp, X)
            means, Y = class_targets(out_all, labels, n_classes, config.class_margin)
        if schedule is not None:
            phase = (s // first.steps_per_target) % schedule.shape[0]
            Y = np.broadcast_to(schedules[:, phase, :, None], (R, no, n_train))

        if config.batch == "online":
            ex = slice(s % n_train, s % n_train + 1)
            x, y = X[:, :, ex], Y[:, :, ex]
        else:
            x, y = X, Y
        lam_f, out_f, power_f = free_solution(resp, x)

        if s in rec_pos:
            i = rec_pos[s]
            m = measure(resp, X, Y, XT, YT, eta_, labels=labels if classification else None,
                        test_labels=test_labels if classification else None, means=means,
                        margin=config.class_margin, tracking=schedule is not None)
            for name in ("error_train", "error_test", "free_power", "clamped_power", "accuracy_train",
                         "accuracy_test"):
                if name in m:
                    getattr(h, name)[:, i] = m[name]
            out_all = m["output_free"]
            h.training_energy[:, i] = energy
            h.training_energy_total[:, i] = energy_total
            if keep_outputs:
                h.output_free[:, i] = out_all
                h.output_desired[:, i] = Y
            if s in crec_steps:
                h.conductance[:, crec] = np.where(valid, k, np.nan)
                crec += 1
        if s == steps:
            break

        clamp = out_f + eta_ * (y - out_f)
        lam_c, power_c = clamped_solution(resp, np.concatenate([x, clamp], 1))
        mean_free_power = power_f.mean(1)
        energy += mean_free_power * step_duration
        energy_total += (mean_free_power + power_c.mean(1)) * step_duration
        free_sq = mean_square_drops(resp, lam_f)
        clamped_sq = mean_square_drops(resp, lam_c)
        if sign_rule:
            # Comparators see drop magnitudes: RMS over the examples presented.
            direction = sign_rule_direction(np.sqrt(free_sq), np.sqrt(clamped_sq), lam_[:, :, 0], config.deadband)
            taps = np.where(valid, config.ladder.step(taps, direction), 0)
            k = np.where(valid, ladder_k[taps], 1.0)
        else:
            signal = coupled_learning_update_squared(free_sq, clamped_sq, 1.0, 1.0, lam_[:, :, 0])
            dk = (alpha_ / eta_)[:, :, 0] * signal
            # Padding edges have zero drops, so dk = 0 there and they stay at 1.
            k = clip_conductance(k + dk, config.k_min, config.k_max)
        if progress is not None:
            progress(1)
    return h
