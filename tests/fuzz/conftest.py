"""Fixtures of the fuzz suite."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels() -> None:
    """Compile the DP's numba kernels once before any case, so that the first case's
    compilation is not mistaken for a hang: a chain's, and the ideal DP's over a wide
    workload (from a fresh clone, on a worker beside another, compiling them inside
    the corpus's wide_40 case took it past the hang limit)."""
    from placer import api as app
    from tests.conftest import ROOT
    from tests.fuzz.models import plan_for

    plan_for("chain.onnx")
    wide = ROOT / "tests" / "fuzz" / "corpus" / "workload" / "wide_40.json"
    app.place(app.load_problem(wide), "dp")
