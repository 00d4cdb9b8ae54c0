"""The choices a user makes about a run, as the command line spells them: what runs
(``--mode``), in what precision (``--dtype``), with which optimiser (``--optimizer``),
and which graph the cost model predicts (``--fusion``).

The command line turns its options into these at once; the library takes them, or
their values as strings (:class:`placer.api.ModelOptions` converts).  Text and
documents show their ``value``.
"""

from __future__ import annotations

from enum import Enum


class Mode(str, Enum):
    """What the pipeline runs."""

    INFERENCE = "inference"
    TRAINING = "training"


class DType(str, Enum):
    """Arithmetic precision of the run (``--dtype``).  ``tf32`` keeps fp32 tensors and
    multiplies them on TF32 tensor cores (Ampere and later): fp32's bytes at the
    device's ``tf32`` peak, which a device without one runs at its fp32 rate."""

    FP32 = "fp32"
    TF32 = "tf32"
    FP16 = "fp16"
    BF16 = "bf16"

    @property
    def nbytes(self) -> int:
        return 4 if self in (DType.FP32, DType.TF32) else 2


class Optimizer(str, Enum):
    """Optimiser whose state training keeps per parameter (``--optimizer``)."""

    ADAM = "adam"
    SGD = "sgd"


class Fusion(str, Enum):
    """Which graph the cost model predicts (``--fusion``)."""

    NONE = "none"  # the nodes as written, one kernel each
    RUNTIME = "runtime"  # the kernels onnxruntime's default optimisation level runs
