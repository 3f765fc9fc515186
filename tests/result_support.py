"""Shared helpers of the result-file tests: compare datasets value for value, spell --set options."""

from __future__ import annotations

import numpy as np
import xarray as xr


def assert_same_values(a: xr.Dataset, b: xr.Dataset) -> None:
    """Identical variables, dimensions and values (NaN where NaN) and attributes, apart from ``history``."""
    assert set(a.variables) == set(b.variables)
    for name in a.variables:
        assert a[name].dims == b[name].dims, name
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert {k: v for k, v in a.attrs.items() if k != "history"} == {k: v for k, v in b.attrs.items() if k != "history"}


def set_options(overrides) -> list[str]:
    """``["--set", o1, "--set", o2, ...]``."""
    out = []
    for item in overrides:
        out += ["--set", item]
    return out
