"""placer: optimal pipeline placement of DNN operator graphs on heterogeneous devices.

The library is the product; :mod:`placer.cli` is a thin layer over it.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # the version is looked up on first use, so that importing placer stays instant
    if name != "__version__":
        raise AttributeError(f"module 'placer' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("placer")
    except PackageNotFoundError:  # running from a source tree that is not installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
