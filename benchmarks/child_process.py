"""Shared by the benchmarks: run a command in a child process and measure its wall time and peak memory."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

#: The task of the lattice benchmarks, as scenario TOML: one edge-regression example, coupled learning.
LATTICE_REGRESSION = """
[task]
kind = "edge_regression"
n_sources = 1
n_targets = 1
n_train = 1
n_test = 1
[learning]
rule = "coupled"
alpha = 0.5
eta = 1e-3
"""


def run_measured(command: list[str]) -> tuple[int, float, float, str, str]:
    """(exit code, peak resident memory in MB, wall seconds, stdout, stderr) of ``command``.

    The output goes through temporary files, so a chatty child cannot block on a full pipe while we wait
    for its resource usage (``os.wait4``, which ``subprocess`` does not expose).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, usage.ru_maxrss / 1024, wall, out.read(), err.read()
