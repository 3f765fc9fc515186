"""Shared helpers of the ``analysis/`` scripts: open a result, check it, label and save figures.

Every script does the same few things with a result file: open it (and say
in one line when it is not an edgesim result), check that it holds the
variables and sweep dimensions the script plots (:func:`require`, again one
line naming what is missing and which scenario makes it), find the swept
dimensions (the dimensions before ``realization``; any name, dotted ones such
as ``network.size`` included), label axes from the ``long_name`` and
``units`` attributes, colour one line per sweep value, and mark a figure whose
run is too short to show the published trend (:func:`note_if_shortened`).

The scripts import this file as ``loading`` (their own folder is put on
``sys.path``), so they run both as ``python analysis/NAME.py`` and when
loaded from their path by the tests.  Errors meant for the user are
:class:`AnalysisError`; :func:`command` turns them into one line on stderr
and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import textwrap
from pathlib import Path

import numpy as np

__all__ = ["AnalysisError", "command", "open_result", "scenario", "run_steps", "describe", "require", "sweep_dims",
           "sweep_points", "first_of_others", "format_value", "units_text", "axis_label", "dim_label", "sweep_title",
           "colours", "legend", "log_if_decades", "log_floor", "note_if_shortened", "title", "pyplot", "save", "source"]


class AnalysisError(ValueError):
    """A problem with the script's input, reported to the user in one line (no traceback)."""


def command(func):
    """Decorator for a script's ``main(argv=None)``: an :class:`AnalysisError` becomes one line on
    stderr (``SCRIPT: error: ...``, like argparse) and the return value 2; success returns 0."""
    prog = Path(func.__globals__.get("__file__", func.__module__)).name

    @functools.wraps(func)
    def main(argv=None):
        try:
            result = func(argv)
        except AnalysisError as exc:
            print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        return 0 if result is None else result

    return main


# ---------------------------------------------------------------------------
# Opening and checking results
# ---------------------------------------------------------------------------

def open_result(path):
    """The edgesim result dataset in ``path`` (loaded, file closed); anything else is a one-line
    :class:`AnalysisError` naming the file."""
    from edgesim.results import open_result as _open

    try:
        ds = _open(path)
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise AnalysisError(str(exc).splitlines()[0] if str(exc) else f"{path} cannot be read") from None
    if "edgesim_version" not in ds.attrs or "scenario" not in ds.attrs:
        raise AnalysisError(f"{path} is a netCDF file but not an edgesim result (no edgesim_version/scenario "
                            "attributes); make one with `edgesim run SCENARIO.toml -o FILE.nc`")
    ds.encoding["source"] = str(path)
    return ds


def source(ds) -> str:
    """The file a dataset was read from (for messages)."""
    return str(ds.encoding.get("source", "this result"))


def scenario(ds) -> dict:
    """The resolved scenario stored in a result (a dict of sections)."""
    try:
        return json.loads(ds.attrs["scenario"])
    except (KeyError, ValueError):
        raise AnalysisError(f"{source(ds)}: no readable 'scenario' attribute") from None


def run_steps(ds) -> int:
    """``run.steps`` of the stored scenario: how long the run was."""
    return int(scenario(ds)["run"]["steps"])


def describe(ds) -> str:
    """What a result is, in a few words: its task and its sweep."""
    try:
        kind = scenario(ds).get("task", {}).get("kind", "?")
    except AnalysisError:
        kind = "?"
    dims = sweep_dims(ds)
    return f"task.kind = {kind!r}, " + (f"swept over {', '.join(dims)}" if dims else "no sweep")


def _names(kind: str, names) -> str:
    quoted = [repr(str(n)) for n in names]
    text = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return f"the {kind}{'s' if len(quoted) > 1 else ''} {text}"


def require(ds, *variables, script: str, made_by: str, dims=()):
    """Check that ``ds`` has ``variables`` (data variables or coordinates) and the sweep dimensions
    ``dims``; otherwise raise a one-line :class:`AnalysisError` that names what is missing, the
    ``script`` that needs it and ``made_by``, the kind of scenario whose results have it."""
    missing = [v for v in variables if v not in ds.variables]
    missing_dims = [d for d in dims if d not in ds.dims]
    if not (missing or missing_dims):
        return ds
    parts = []
    if missing:
        parts.append(_names("variable", missing))
    if missing_dims:
        parts.append(_names("sweep dimension", missing_dims))
    raise AnalysisError(f"{source(ds)}: {script} needs {' and '.join(parts)}, which a result of {made_by} has; "
                        f"this file has not ({describe(ds)})")


# ---------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------

def sweep_dims(ds, variable: str = "error_train") -> list[str]:
    """The swept dimensions of a result: those before ``realization`` in ``variable`` (any names)."""
    if variable in ds:
        dims = ds[variable].dims
    else:
        dims = next((v.dims for v in ds.data_vars.values() if "realization" in v.dims), ())
    return list(dims[:dims.index("realization")]) if "realization" in dims else []


def _value(ds, dim: str, i: int):
    return ds[dim].values[i] if dim in ds.coords else i


def format_value(value) -> str:
    """A sweep value for a legend: ``1e-04``-style numbers via ``:g``, anything else as text."""
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode()
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return f"{float(value):g}" if isinstance(value, (float, np.floating)) else str(int(value))
    return str(value)


def sweep_points(ds, dims=None):
    """``(label, selection)`` for every point of the sweep over ``dims`` (default: all swept dims).

    With one dimension the label is the value alone (the legend title names the
    dimension, :func:`dim_label`); with several it is ``name = value, ...``;
    without a sweep there is one point, labelled ``""``.
    """
    dims = sweep_dims(ds) if dims is None else list(dims)
    for idx in np.ndindex(*[ds.sizes[d] for d in dims]):
        sel = dict(zip(dims, idx))
        values = [format_value(_value(ds, d, i)) for d, i in sel.items()]
        label = values[0] if len(dims) == 1 else ", ".join(f"{d} = {v}" for d, v in zip(dims, values))
        yield label, sel


def first_of_others(ds, keep=()):
    """``ds`` at the first value of every swept dimension not in ``keep``, and a note saying so
    (``""`` when nothing was dropped) for the figure's title."""
    others = [d for d in sweep_dims(ds) if d not in keep]
    if not others:
        return ds, ""
    note = ", ".join(f"{d} = {format_value(_value(ds, d, 0))}" for d in others)
    return ds.isel({d: 0 for d in others}), f"{note} (not all of the sweep is shown)"


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------

def units_text(units) -> str:
    """CF-style units as mathtext: ``V2`` -> ``V$^{2}$``, ``S V-2`` -> ``S V$^{-2}$``; ``1`` -> ``""``."""
    units = str(units or "").strip()
    if units in ("", "1"):
        return ""
    return re.sub(r"(?<=[A-Za-z])(-?\d+)", r"$^{\1}$", units)


def axis_label(ds, name: str, text: str | None = None, units: str | None = None, width: int = 45) -> str:
    """``long_name (units)`` of variable/coordinate ``name`` (``text``/``units`` override them),
    wrapped at ``width`` characters; a name without attributes is labelled by the name itself."""
    attrs = ds[name].attrs if name in ds.variables else {}
    text = text or attrs.get("long_name") or name
    u = units_text(attrs.get("units") if units is None else units)
    return textwrap.fill(f"{text} ({u})" if u else text, width)


def dim_label(ds, dim: str) -> str:
    """Short label of a swept dimension for a legend title: its name and units, e.g. ``noise_std (V)``."""
    if dim is None:
        return ""
    u = units_text(ds[dim].attrs.get("units")) if dim in ds.variables else ""
    return f"{dim} ({u})" if u else dim


def sweep_title(ds, dims=None) -> str:
    """Legend title for the lines of :func:`sweep_points`."""
    dims = sweep_dims(ds) if dims is None else list(dims)
    return dim_label(ds, dims[0]) if len(dims) == 1 else ""


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

#: up to this many lines get the distinct qualitative colours of tab10; more get a colormap
QUALITATIVE = 10


def colours(n: int, cmap: str = "viridis"):
    """``n`` distinct colours: tab10 for up to 10 lines, else evenly spaced along ``cmap``."""
    plt = pyplot()
    if n <= QUALITATIVE:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    return [plt.get_cmap(cmap)(x) for x in np.linspace(0.0, 0.92, n)]


def legend(ax, title: str | None = None, outside: bool | None = None, **kwargs):
    """A legible legend: inside for a few entries, outside on the right (in columns) for many."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    n = len(handles)
    outside = n > 6 if outside is None else outside
    options = dict(fontsize=8 if n <= 10 else 7, title=textwrap.fill(title, 28) if title else None,
                   title_fontsize=8, framealpha=0.85)
    if outside:
        options.update(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                       ncol=1 if n <= 16 else 2)
    options.update(kwargs)
    return ax.legend(**options)


def log_if_decades(ax, values, axis: str = "y", decades: float = 1.0) -> bool:
    """Put ``axis`` on a log scale when the positive finite ``values`` span more than ``decades``."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2 or math.log10(v.max() / v.min()) <= decades:
        return False
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    return True


def log_floor(ax, values, decades: float = 8.0, axis: str = "y"):
    """Log scale on ``axis`` that shows at most ``decades`` decades below the largest value: errors that
    reach round-off (1e-30) or exactly 0 would squash the rest.  Returns ``values`` clipped to the floor
    (plot those); the floor is labelled in the axes when something was clipped."""
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v) & (v > 0)]
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    if finite.size == 0:
        return v
    floor = max(finite.min(), finite.max() / 10 ** decades)
    clipped = np.where(np.isfinite(v), np.maximum(v, floor), v)
    if (v[np.isfinite(v)] < floor).any():
        (ax.set_ylim if axis == "y" else ax.set_xlim)(floor / 2, None)
        if axis == "y":
            ax.axhline(floor, color="0.6", lw=0.6, ls="-.")
            ax.annotate(f"values below {floor:.1e} drawn at it", (0.01, floor), xycoords=("axes fraction", "data"),
                        xytext=(0, 2), textcoords="offset points", fontsize=7, color="0.4")
    return clipped


def note_if_shortened(fig, ds, needed_steps: float, reason: str, steps: int | None = None) -> str:
    """When ``run.steps`` of ``ds`` is below ``needed_steps`` (each script decides, with its reason
    in a comment), write a note under the figure and print it; returns the note ("" if none)."""
    steps = run_steps(ds) if steps is None else steps
    if steps >= needed_steps:
        return ""
    note = f"Shortened run ({steps:g} steps, fewer than {needed_steps:g}): {reason}"
    artist = getattr(fig, "_shortened_note", None)  # several notes share one text under the figure
    if artist is None:
        fig._shortened_note = fig.text(0.5, -0.01, textwrap.fill(note, 130), ha="center", va="top", fontsize=8,
                                       color="firebrick")
    else:
        artist.set_text(artist.get_text() + "\n" + textwrap.fill(note, 130))
    print(f"note: {note}")
    return note


def title(ax_or_fig, ds, extra: str = "", width: int = 90, **kwargs):
    """The result's title (and ``extra``), wrapped, as an axes title or a figure suptitle."""
    text = ds.attrs.get("title", "") + (f"\n{extra}" if extra else "")
    text = "\n".join(textwrap.fill(line, width) for line in text.splitlines())
    if hasattr(ax_or_fig, "suptitle"):
        return ax_or_fig.suptitle(text, fontsize=kwargs.pop("fontsize", 10), **kwargs)
    return ax_or_fig.set_title(text, fontsize=kwargs.pop("fontsize", 9), **kwargs)


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (one-line error without matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        raise AnalysisError("figures need matplotlib: pip install -e '.[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (folders made; notes and outside legends kept in), close it, say so."""
    plt = pyplot()
    path = Path(path)
    if path.is_dir():
        raise AnalysisError(f"--out {path} is a folder; give a file name such as {path / 'figure.png'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")
    return path
