"""The recorded trajectory of a stack of systems, shared by the trainer and the engines.

Every array has the system axis first (``R`` systems; an engine run is one
system).  The results layer (:mod:`edgesim.results`) turns histories into the
result :class:`xarray.Dataset`; :data:`HISTORY_DIMS` says which dimensions each
field has after the system axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

__all__ = ["History", "HISTORY_DIMS", "record_steps", "conductance_records"]


def _recorded(*dims: str, required: bool = False):
    """A recorded field with its dimensions after the system axis."""
    return field(metadata={"dims": dims}) if required else field(default=None, metadata={"dims": dims})


@dataclass(kw_only=True)
class History:
    """Recorded trajectories of ``R`` systems at the record steps ``step``.

    Every recorded field carries its dimensions (after the system axis) in
    its metadata (see :data:`HISTORY_DIMS`).  Fields left ``None`` were not
    recorded (accuracies: regression tasks; outputs: tasks with more than 4
    training examples; the engine fields: the synchronous trainer).
    """

    step: np.ndarray
    conductance_step: np.ndarray
    error_train: np.ndarray = _recorded("step", required=True)
    error_test: np.ndarray = _recorded("step", required=True)
    accuracy_train: np.ndarray | None = _recorded("step")
    accuracy_test: np.ndarray | None = _recorded("step")
    free_power: np.ndarray = _recorded("step", required=True)
    clamped_power: np.ndarray = _recorded("step", required=True)
    training_energy: np.ndarray = _recorded("step", required=True)
    training_energy_total: np.ndarray = _recorded("step", required=True)
    conductance: np.ndarray = _recorded("conductance_step", "edge", required=True)
    output_free: np.ndarray | None = _recorded("step", "output", "example")
    output_desired: np.ndarray | None = _recorded("step", "output", "example")
    # engines only
    alive_edges: np.ndarray | None = _recorded("step")
    edge_events: np.ndarray | None = _recorded("step")
    update_count: np.ndarray | None = _recorded("conductance_step", "edge")
    clock_period: np.ndarray | None = _recorded("edge")
    clock_phase: np.ndarray | None = _recorded("edge")
    comparator_offset: np.ndarray | None = _recorded("edge")
    edge_leak_time: np.ndarray | None = _recorded("edge")
    # lambda control (the dataset's ``lambda`` variable) and the tolerance it steers to
    lambda_: np.ndarray | None = _recorded("step")
    tolerance_time: np.ndarray | None = _recorded()
    training_energy_to_tolerance: np.ndarray | None = _recorded()
    # damage: one row per failed edge
    damage_time: np.ndarray | None = _recorded("damage_event")
    damage_edge: np.ndarray | None = _recorded("damage_event")
    damage_mode: np.ndarray | None = _recorded("damage_event")
    damage_error_before: np.ndarray | None = _recorded("damage_event")
    damage_error_after: np.ndarray | None = _recorded("damage_event")
    damage_recovery_time: np.ndarray | None = _recorded("damage_event")
    # the failed state at the end (not recorded in results): what the next phase of a protocol starts from
    final_alive: np.ndarray | None = None
    final_frozen: np.ndarray | None = None

    @classmethod
    def empty(cls, n_systems: int, step: np.ndarray, conductance_step: np.ndarray, n_edges: int, n_outputs: int,
              n_train: int, *, classification: bool, engine: bool) -> "History":
        """A history to fill: zeros for the series, NaN for conductances (absent edges stay NaN)."""
        R, n, nc = n_systems, len(step), len(conductance_step)
        keep_outputs = n_train <= 4
        series = lambda: np.zeros((R, n))  # noqa: E731
        return cls(
            step=step, conductance_step=conductance_step, error_train=series(), error_test=series(),
            free_power=series(), clamped_power=series(), training_energy=series(),
            training_energy_total=series(), conductance=np.full((R, nc, n_edges), np.nan),
            accuracy_train=series() if classification else None, accuracy_test=series() if classification else None,
            output_free=np.zeros((R, n, n_outputs, n_train)) if keep_outputs else None,
            output_desired=np.zeros((R, n, n_outputs, n_train)) if keep_outputs else None,
            alive_edges=np.zeros((R, n), np.int64) if engine else None,
            edge_events=np.zeros((R, n), np.int64) if engine else None,
            update_count=np.zeros((R, nc, n_edges), np.int64) if engine else None)

    def recorded(self) -> dict[str, np.ndarray]:
        """The recorded fields (name -> array), in declaration order."""
        return {name: getattr(self, name) for name in HISTORY_DIMS if getattr(self, name) is not None}

    def store_damage(self, log: list[list[tuple]]) -> None:
        """Fill the damage table from one log per system of ``(time, edge, mode code, before, after)``.

        The recovery times are filled in by :func:`edgesim.damage.store_recovery`.
        """
        R, n = len(log), max([len(rows) for rows in log] + [0])
        self.damage_time = np.full((R, n), np.nan)
        self.damage_edge = np.full((R, n), -1, np.int64)
        self.damage_mode = np.full((R, n), -1, np.int64)
        self.damage_error_before = np.full((R, n), np.nan)
        self.damage_error_after = np.full((R, n), np.nan)
        for r, rows in enumerate(log):
            for j, (t, e, mode, before, after) in enumerate(rows):
                self.damage_time[r, j], self.damage_edge[r, j], self.damage_mode[r, j] = t, e, mode
                self.damage_error_before[r, j], self.damage_error_after[r, j] = before, after
        self.damage_recovery_time = np.full((R, n), np.nan)

    def store(self, i: int, m: dict) -> None:
        """Store the figures of merit ``m`` (from :func:`edgesim.measure.measure`) at record ``i``."""
        for name in ("error_train", "error_test", "free_power", "clamped_power", "accuracy_train",
                     "accuracy_test"):
            if name in m:
                getattr(self, name)[:, i] = m[name]


#: Dimensions of each recorded field after the system axis (from the field metadata of :class:`History`).
HISTORY_DIMS = {f.name: f.metadata["dims"] for f in fields(History) if "dims" in f.metadata}


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


def conductance_records(n_records: int, every: int) -> np.ndarray:
    """Indices of the records that keep conductances: every ``every``-th, plus the first and the last."""
    return np.unique(np.concatenate([[0, n_records - 1], np.arange(0, n_records, max(every, 1))]))
