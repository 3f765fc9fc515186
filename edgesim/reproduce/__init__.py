"""Reproductions of published results: ``edgesim reproduce [NAME ... | all] --out DIR [--jobs N] [--quick]``.

Each :class:`~edgesim.reproduce.core.Reproduction` runs shipped scenarios with
the papers' parameters (as sweeps sharing one process pool) and judges the
results against the published numbers; :func:`reproduce` writes
``DIR/report.md`` with one row per published number.
"""

from __future__ import annotations

from .core import Reproduction, Row, Study
from .dillavou2022 import DILLAVOU2022
from .run import reproduce as _reproduce
from .stern2024 import FIG1, FIG2, FIG3, FIG4, FIG6, FIG7
from .wycoff2022 import WYCOFF2022

__all__ = ["REPRODUCTIONS", "reproduce", "Reproduction", "Row", "Study"]

#: Every reproduction by name, in the order of the report (the papers' figures, then the laboratory papers).
REPRODUCTIONS = {r.name: r for r in (FIG1, FIG2, FIG3, FIG4, FIG6, FIG7, DILLAVOU2022, WYCOFF2022)}


def reproduce(names, out, *, jobs=None, quick=False, progress=None, command=""):
    """Run the named reproductions (``["all"]``: every one) into ``out``; see :func:`edgesim.reproduce.run.reproduce`."""
    return _reproduce(names, out, REPRODUCTIONS, jobs=jobs, quick=quick, progress=progress, command=command)
