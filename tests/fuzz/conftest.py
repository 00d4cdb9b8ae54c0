"""Fixtures of the fuzz suite."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels() -> None:
    """Compile the DP's numba kernels once before any case, so that the first case's
    compilation is not mistaken for a hang."""
    from tests.fuzz.models import plan_for

    plan_for("chain.onnx")
