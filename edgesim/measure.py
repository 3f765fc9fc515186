"""What the supervisor and the recorder measure: clamps, targets and figures of merit.

Shared by the synchronous trainer and the engines, so both compute every
recorded number with the same code.

Clamp
    The clamped twin holds each output at ``V_F + eta (V_D - V_F)``
    (:func:`clamp_values`).
Presentation
    Online training shows example ``step mod n_train`` at each step, full
    batch all of them (:func:`presented`); tracking tasks switch their target
    every ``steps_per_target`` steps (:func:`scheduled_targets`).
Classification (laboratory Iris protocol)
    At the start of every epoch the target of each class is reset to the
    network's mean free output over that class's training examples, with the
    class's own output raised by ``class_margin`` volts and the other outputs
    lowered by it, so that classes are pushed apart; an example is classified
    by the nearest class mean (:func:`class_targets`).
"""

from __future__ import annotations

import numpy as np

from .physics import Response, clamped_solution, free_solution

__all__ = ["clamp_values", "presented", "scheduled_targets", "class_targets", "classify", "measure"]


def clamp_values(free_outputs, desired, eta):
    """Clamped output values ``V_F + eta (V_D - V_F)`` (broadcasts)."""
    return free_outputs + eta * (desired - free_outputs)


def presented(batch: str, step: int, n_train: int) -> slice:
    """The training examples shown at ``step``: all (full batch) or one, cycling (online)."""
    if batch == "online":
        return slice(step % n_train, step % n_train + 1)
    return slice(None)


def scheduled_targets(schedule: np.ndarray, steps_per_target: int, step: int, n_train: int) -> np.ndarray:
    """Desired outputs at ``step`` of a tracking task: row ``(step // steps_per_target) mod n_phases``.

    ``schedule`` is (..., n_phases, n_out); the result (..., n_out, n_train).
    """
    phase = (step // steps_per_target) % schedule.shape[-2]
    row = schedule[..., phase, :, None]
    return np.broadcast_to(row, row.shape[:-1] + (n_train,))


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
    return _targets_from_means(_class_means(outputs, labels, n_classes), labels, margin, outputs.shape[1])


def _targets_from_means(means, labels, margin, n_out):
    n_classes = means.shape[2]
    targets = means + margin * (2.0 * np.eye(n_classes, n_out).T - 1.0)[None]
    shape = (labels.shape[0], n_out, labels.shape[1])
    return means, np.take_along_axis(targets, np.broadcast_to(labels[:, None, :], shape), 2)


def classify(outputs, means):
    """Index of the nearest class mean for every example: (R, n_ex)."""
    d = ((outputs[:, :, None, :] - means[:, :, :, None]) ** 2).sum(1)  # (R, C, n_ex)
    return d.argmin(1)


def measure(resp: Response, X, Y, XT, YT, eta, *, labels=None, test_labels=None, means=None, margin=0.0,
            tracking=False, clamped_resp: Response | None = None) -> dict:
    """Recorded figures of merit of a stack of systems in their current state.

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
                                  np.concatenate([X, clamp_values(out, Y, eta)], 1))
    m = {"error_train": ((out - Y) ** 2).mean((1, 2)), "free_power": power.mean(1),
         "clamped_power": power_c.mean(1), "output_free": out}
    if means is not None:
        m["accuracy_train"] = (classify(out, means) == labels).mean(1)
        m["accuracy_test"] = (classify(out_test, means) == test_labels).mean(1)
        _, test_targets = _targets_from_means(means, test_labels, margin, out.shape[1])
        m["error_test"] = ((out_test - test_targets) ** 2).mean((1, 2))
    else:
        yt = np.broadcast_to(Y[:, :, :1], out_test.shape) if tracking else YT
        m["error_test"] = ((out_test - yt) ** 2).mean((1, 2))
    return m
