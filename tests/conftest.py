"""Shared test configuration."""

import edgesim  # noqa: F401  (first: sets single-threaded BLAS before numpy loads)
