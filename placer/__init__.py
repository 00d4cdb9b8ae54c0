"""placer: optimal pipeline placement of DNN operator graphs on heterogeneous devices.

The library is the product; :mod:`placer.cli` is a thin layer over it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("placer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
