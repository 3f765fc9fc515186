"""``edgesim reproduce``: run reproductions as one pool of sweep parts, then evaluate and report.

Every study is a sweep (:mod:`edgesim.sweep`) in ``OUT/<reproduction>/<study>``;
the parts of all the studies share one process pool, so a full run keeps every
core busy, and running the same command again resumes it (finished parts are
skipped).  ``OUT/report.md`` and ``OUT/report.json`` hold the rows,
``OUT/figures/`` the figures.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import xarray as xr

from .. import __version__
from ..sweep import collect, run_sweeps, sweep_parts
from .core import Reproduction, Row, study_scenario
from .report import markdown_report

__all__ = ["reproduce", "select", "LOG_FILE"]

#: The file in an output folder that accumulates the wall time of every invocation.
LOG_FILE = "reproduce.json"


def select(names, registry: dict) -> list[Reproduction]:
    """The reproductions named (``all`` or nothing: every one), in registry order."""
    names = list(names or ["all"])
    unknown = [n for n in names if n != "all" and n not in registry]
    if unknown:
        raise ValueError(f"unknown reproduction {', '.join(map(repr, unknown))}; choose from: all, "
                         + ", ".join(registry))
    if "all" in names:
        return list(registry.values())
    return [registry[n] for n in dict.fromkeys(names)]


def _part_seconds(folder: Path, scenario) -> float:
    """Compute time of a study's parts (each part stores the seconds it ran)."""
    total = 0.0
    for part in sweep_parts(scenario):
        with xr.open_dataset(folder / part.name) as ds:
            total += float(ds.attrs.get("part_seconds", float("nan")))  # NaN: a part from an older edgesim
    return total


def _check_scale(out: Path, quick: bool) -> None:
    """Refuse to mix the quick and the full scale in one folder (the message says which is there)."""
    path = out / LOG_FILE
    if not path.is_file():
        return
    try:
        scales = {bool(i["quick"]) for i in json.loads(path.read_text())["invocations"]}
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not an edgesim reproduce log; use another --out folder") from None
    if scales and scales != {quick}:
        there = "a --quick run" if True in scales else "a full-scale run"
        raise ValueError(f"{out} holds {there}; give {'--quick runs' if quick else 'the full scale'} another "
                         "--out folder")


def _log(out: Path, entry: dict) -> dict:
    path = out / LOG_FILE
    log = json.loads(path.read_text()) if path.exists() else {"invocations": []}
    log["invocations"].append(entry)
    _write(path, json.dumps(log, indent=1))
    return log


def machine() -> str:
    """The machine in words: processor count, system, Python and edgesim versions."""
    return (f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
            f"edgesim {__version__}")


def reproduce(names, out, registry: dict, *, jobs: int | None = None, quick: bool = False,
              progress: bool | None = None, command: str = "") -> Path:
    """Run the named reproductions into ``out`` and write ``out/report.md``.

    Parameters
    ----------
    names : list of str
        Reproduction names, or ``["all"]``.
    out : path
        Output folder (made if needed; an unfinished run there is resumed).
    registry : dict
        Name -> :class:`Reproduction`.
    jobs : int, optional
        Worker processes (default: all cores).
    quick : bool
        Reduced scale (a smoke test; verdicts are indicative only).
    progress : bool or None
        Progress bar (None: on an interactive terminal).
    command : str
        The command line, for the report.

    Returns
    -------
    Path
        The report file.
    """
    chosen = select(names, registry)
    out = Path(out)
    _check_scale(out, quick)
    plans = [(r, s, study_scenario(s, quick), out / r.name / s.name) for r in chosen for s in r.studies]
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    entry = {"started": started.isoformat(timespec="seconds"), "command": command, "quick": quick,
             "reproductions": [r.name for r in chosen], "machine": machine()}
    try:
        run_sweeps([(scenario, folder) for _, _, scenario, folder in plans], jobs=jobs, progress=progress,
                   description="edgesim reproduce")
    except BaseException as exc:  # an interrupted invocation's time counts too: the report adds up every invocation
        if not isinstance(exc, ValueError) and out.is_dir():  # (a ValueError is a refusal before any work)
            _log(out, {**entry, "wall_seconds": round(time.perf_counter() - t0, 1), "finished": False})
        raise
    log = _log(out, {**entry, "wall_seconds": round(time.perf_counter() - t0, 1), "finished": True})
    sections = []
    for reproduction in chosen:
        mine = [(s, scenario, folder) for r, s, scenario, folder in plans if r is reproduction]
        results = {s.name: collect(folder) for s, _, folder in mine}
        figure = None
        try:  # one failing evaluation must not cost the report of the others (the results stay on disk)
            rows = reproduction.evaluate(results, quick)
            if reproduction.plot is not None:
                figure = _draw(reproduction, results, out / "figures" / f"{reproduction.name}.png")
        except Exception as exc:  # noqa: BLE001 - reported in the report's row
            rows = [Row(reproduction.source, "evaluation", "", f"failed: {exc.__class__.__name__}: {exc}",
                        "the evaluation runs", False, note="a defect of edgesim's evaluation, not a result")]
        seconds = sum(_part_seconds(folder, scenario) for _, scenario, folder in mine)
        sections.append(dict(reproduction=reproduction, rows=rows, figure=figure, compute_seconds=seconds,
                             studies=[(s, scenario) for s, scenario, _ in mine]))
    report = out / "report.md"
    _write(report, markdown_report(sections, log, quick=quick, out=out))
    _write(out / "report.json", json.dumps(
        {"quick": quick, "wall_seconds": sum(i["wall_seconds"] for i in log["invocations"]),
         "rows": [dict(reproduction=s["reproduction"].name, verdict=row.verdict, **row.__dict__)
                  for s in sections for row in s["rows"]]}, indent=1))
    return report


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a reader never sees a half-written file."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def _draw(reproduction: Reproduction, results: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    reproduction.plot(results, path)
    return path
