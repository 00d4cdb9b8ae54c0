"""Fixtures of the fuzz suite."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels() -> None:
    """Compile the DP's numba kernels once before any case, so that the first case's
    compilation is not mistaken for a hang (from a fresh clone, on a worker beside
    another, compiling them inside the corpus's wide_40 case took it past the hang
    limit): the warm-up ``make`` runs at install, in case the cache is cold."""
    from placer.solvers.dp.warmup import compile_kernels

    compile_kernels()
