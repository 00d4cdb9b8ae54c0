"""Errors a user can cause, and the exit statuses the command line maps them to.

Anything that is not a :class:`PlacerError` is a bug in placer and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Exit statuses of the ``placer`` command (documented in the README)."""

    OK = 0
    ERROR = 1
    INVALID_INPUT = 2
    INFEASIBLE = 3
    BELOW_THRESHOLD = 4
    NO_SOLUTION = 5
    INTERRUPTED = 130


class PlacerError(Exception):
    """A problem with what the user gave placer; printed as one line, no traceback."""

    exit_status: ExitStatus = ExitStatus.INVALID_INPUT


class InputError(PlacerError):
    """A file or option the user passed is missing, unreadable or malformed."""


class WorkloadFormatError(InputError):
    """A profiled workload (reference JSON format) breaks a rule of the format."""


class PlanFormatError(InputError):
    """A placement plan file cannot be read or does not match its workload."""


class ModelLoadError(InputError):
    """An ONNX model cannot be loaded or its shapes cannot be resolved."""


class ClusterSpecError(InputError):
    """A cluster description is malformed or names an unknown device type."""


class InfeasiblePlacement(PlacerError):
    """No placement satisfies the memory, support and device-count constraints."""

    exit_status = ExitStatus.INFEASIBLE


class OverTotalMemory(InfeasiblePlacement):
    """The ops need more memory than all devices together hold."""


class SearchGaveUp(InfeasiblePlacement):
    """A solver gave up before it found a placement or proved there is none (the exact
    DP over too many ideals, whose linear orders fit no memory cap); another may find
    one."""


class NoPlacementFound(PlacerError):
    """The solver stopped (time limit, interrupt) before finding any placement."""

    exit_status = ExitStatus.NO_SOLUTION


class StageFailed(PlacerError):
    """A stage process of ``placer run`` failed, died or hung (placer's side: exit 1)."""

    exit_status = ExitStatus.ERROR


class BelowThreshold(PlacerError):
    """A plan misses a limit set for CI (``place --fail-below``, ``placer check``)."""

    exit_status = ExitStatus.BELOW_THRESHOLD
