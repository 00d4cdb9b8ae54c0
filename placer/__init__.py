"""placer: optimal pipeline placement of DNN operator graphs on heterogeneous devices.

The library is the product; :mod:`placer.cli` is a thin layer over it.  The names below
are its public API (``docs/api.md`` shows them at work); each is imported on first use,
so that ``import placer`` stays instant (numba, PuLP and onnx load in seconds).

>>> import placer
>>> sorted(placer.__all__)[:4]
['Comparison', 'ModelOptions', 'Placement', 'PlacementResult']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: Public name -> the module that defines it.
_PUBLIC = {
    # load a model or workload into a costed problem
    "ModelOptions": "placer.api",
    "load_problem": "placer.api",
    "load_cluster": "placer.api",
    "Problem": "placer.problem",
    # place it, evaluate a plan, compare with the baselines
    "SolverOptions": "placer.solvers.base",
    "place": "placer.api",
    "evaluate_plan": "placer.api",
    "evaluate": "placer.evaluator",
    "Placement": "placer.problem",
    "PlacementResult": "placer.outputs.result",
    "compare": "placer.comparison",
    "Comparison": "placer.comparison",
    # report, simulate and split a plan
    "to_html": "placer.outputs.report",
    "to_markdown": "placer.outputs.report",
    "with_simulation": "placer.api",
    "split_model": "placer.outputs.split",
    # what a user can cause
    "PlacerError": "placer.errors",
}

__all__ = [
    "Comparison", "ModelOptions", "Placement", "PlacementResult", "PlacerError", "Problem",
    "SolverOptions", "__version__", "compare", "evaluate", "evaluate_plan", "load_cluster",
    "load_problem", "place", "split_model", "to_html", "to_markdown", "with_simulation",
]  # fmt: skip

if TYPE_CHECKING:
    from placer.api import (
        ModelOptions,
        evaluate_plan,
        load_cluster,
        load_problem,
        place,
        with_simulation,
    )
    from placer.comparison import Comparison, compare
    from placer.errors import PlacerError
    from placer.evaluator import evaluate
    from placer.outputs.report import to_html, to_markdown
    from placer.outputs.result import PlacementResult
    from placer.outputs.split import split_model
    from placer.problem import Placement, Problem
    from placer.solvers.base import SolverOptions


def __getattr__(name: str):
    if name == "__version__":
        return _version()
    if name not in _PUBLIC:
        raise AttributeError(f"module 'placer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _version() -> str:
    # looked up on first use, so that importing placer stays instant
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("placer")
    except PackageNotFoundError:  # running from a source tree that is not installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
