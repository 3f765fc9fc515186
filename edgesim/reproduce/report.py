"""The Markdown validation report of ``edgesim reproduce``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["markdown_report"]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: parts written by an edgesim that did not time them
        return "n/a"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def markdown_report(sections: list, log: dict, *, quick: bool, out: Path) -> str:
    """The report: how it was made, a summary, then one table of rows per reproduction.

    ``sections`` holds dicts with the reproduction, its rows, its figure path
    (or None), its compute time and its studies; ``log`` the invocations of
    the output folder (each with its wall time, command and machine).
    """
    invocations = log["invocations"]
    wall = sum(i["wall_seconds"] for i in invocations)
    last = invocations[-1]
    lines = ["# edgesim validation report", ""]
    if quick:
        lines += ["**Quick run (`--quick`)**: every reproduction at reduced scale, a smoke test. The verdicts are "
                  "indicative only; the published scale is the run without `--quick`.", ""]
    lines += [f"- command: `{last['command'] or 'edgesim reproduce'}`",
              f"- date: {last['started']} (UTC)",
              f"- machine: {last['machine']}",
              f"- wall time: {_duration(wall)} over {len(invocations)} invocation(s) "
              "(a resumed run adds the invocations' times)", ""]
    total = sum(len(s["rows"]) for s in sections)
    meets = sum(r.passed is True for s in sections for r in s["rows"])
    differs = sum(r.passed is False for s in sections for r in s["rows"])
    unexplained = sum(r.passed is False and not r.note for s in sections for r in s["rows"])
    lines += [f"{meets} of {total} rows meet the published criterion; {differs} differ"
              + (f", {unexplained} of them without an explanation in this report." if unexplained else
                 ", each explained below its table."),
              "", "| reproduction | rows | meets | differs | reported | compute time (all workers) |",
              "|---|---|---|---|---|---|"]
    for s in sections:
        rows = s["rows"]
        lines.append(f"| [{s['reproduction'].name}](#{s['reproduction'].name}) | {len(rows)} | "
                     f"{sum(r.passed is True for r in rows)} | {sum(r.passed is False for r in rows)} | "
                     f"{sum(r.passed is None for r in rows)} | {_duration(s['compute_seconds'])} |")
    lines.append("")
    for s in sections:
        rep = s["reproduction"]
        lines += [f"## {rep.name}", "", f"**{rep.title}**", "", rep.parameters, ""]
        lines += ["Runs (study: scenario, overrides; realizations x steps):", ""]
        lines += [f"- `{study.name}`: `{study.scenario}` " + (f"`{' '.join(_overrides(study, quick))}`" if
                                                              _overrides(study, quick) else "as shipped")
                  + f"; {scenario.run.realizations} x {scenario.run.steps}{_sweep_text(scenario)}"
                  for study, scenario in s["studies"]]
        lines.append("")
        if s["figure"] is not None:
            lines += [f"![{rep.name}]({os.path.relpath(s['figure'], out)})", ""]
        lines += ["| source | quantity | published | edgesim: median (10-90 % range, n realizations), or as stated "
                  "| criterion | verdict |",
                  "|---|---|---|---|---|---|"]
        for r in s["rows"]:
            lines.append("| " + " | ".join(_cell(v) for v in (r.source, r.quantity, r.published, r.edgesim,
                                                             r.criterion, f"**{r.verdict}**")) + " |")
        notes = [r for r in s["rows"] if r.note]
        if notes:
            lines.append("")
            lines += [f"- *{r.quantity}*: {r.note}" for r in notes]
        lines.append("")
    return "\n".join(lines)


def _overrides(study, quick: bool) -> list:
    """The overrides in effect (a quick value replaces the full one of the same key)."""
    effective = {}
    for text in list(study.full) + (list(study.quick) if quick else []):
        effective[text.split("=", 1)[0]] = text
    return list(effective.values())


def _sweep_text(scenario) -> str:
    if not scenario.sweep:
        return ""
    return ", sweeping " + ", ".join(f"{k} over [{', '.join(f'{x:g}' if isinstance(x, float) else str(x) for x in v)}]"
                                     for k, v in scenario.sweep.items())
