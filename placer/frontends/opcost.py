"""Per-operator cost figures: FLOPs and bytes moved, from tensor shapes alone.

One function per family of ONNX operators returns the FLOPs of one node (a multiply-add
counts as two); :data:`FLOP_FORMULAS` maps each op type to its function. Bytes read are
the sizes of all inputs (weights included), bytes written the sizes of all outputs.
An op type without a formula is costed by its bytes only (see :func:`op_cost`).
The formulas are written out in ``docs/costs.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple, TypeVar

from onnx import TensorProto

from placer.errors import ModelLoadError

_T = TypeVar("_T")

#: Bytes per element of each ONNX element type (4-bit types take half a byte).
ELEMENT_BYTES: Mapping[int, float] = {
    TensorProto.FLOAT: 4,
    TensorProto.UINT8: 1,
    TensorProto.INT8: 1,
    TensorProto.UINT16: 2,
    TensorProto.INT16: 2,
    TensorProto.INT32: 4,
    TensorProto.INT64: 8,
    TensorProto.STRING: 8,  # a pointer; the strings themselves are not counted
    TensorProto.BOOL: 1,
    TensorProto.FLOAT16: 2,
    TensorProto.DOUBLE: 8,
    TensorProto.UINT32: 4,
    TensorProto.UINT64: 8,
    TensorProto.COMPLEX64: 8,
    TensorProto.COMPLEX128: 16,
    TensorProto.BFLOAT16: 2,
    TensorProto.FLOAT8E4M3FN: 1,
    TensorProto.FLOAT8E4M3FNUZ: 1,
    TensorProto.FLOAT8E5M2: 1,
    TensorProto.FLOAT8E5M2FNUZ: 1,
    TensorProto.UINT4: 0.5,
    TensorProto.INT4: 0.5,
}


def element_bytes(elem_type: int, default: float = 4) -> float:
    """Bytes per element of ONNX element type ``elem_type`` (``default`` if unknown).

    Examples
    --------
    >>> element_bytes(TensorProto.FLOAT16)
    2
    """
    return ELEMENT_BYTES.get(elem_type, default)


@dataclass(frozen=True)
class TensorInfo:
    """What a cost formula knows of a tensor: its shape and bytes per element."""

    shape: tuple[int, ...]
    itemsize: float

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> float:
        return self.numel * self.itemsize


class AttrKind(str, Enum):
    """The Python types a formula reads an attribute as; the value is how messages
    name it."""

    INT = "an int"
    FLOAT = "a float"
    STRING = "a string"
    INTS = "ints"
    FLOATS = "floats"


def _describe(value: Any) -> str:
    """How a message names what an attribute holds."""
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return AttrKind.INT.value
    if isinstance(value, float):
        return AttrKind.FLOAT.value
    if isinstance(value, (str, bytes)):
        return AttrKind.STRING.value
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return AttrKind.INTS.value
        if all(isinstance(v, float) for v in value):
            return AttrKind.FLOATS.value
        if all(isinstance(v, (str, bytes)) for v in value):
            return "strings"
        return "a list of mixed values"
    return {"TensorProto": "a tensor", "GraphProto": "a graph"}.get(
        type(value).__name__, type(value).__name__
    )


def attribute(
    attrs: Mapping[str, Any], name: str, kind: AttrKind, default: _T, *, where: str
) -> Any:
    """Attribute ``name`` of ``attrs`` as ``kind``, or ``default`` when it is absent.

    Every attribute placer reads goes through here, so a model with an attribute of the
    wrong type (``kernel_shape`` given as a float, ``num_scan_inputs`` as a string) is
    refused with one line instead of failing somewhere in a formula.

    Parameters
    ----------
    attrs : Mapping
        Attribute values as ``onnx.helper.get_attribute_value`` gives them.
    name : str
        The attribute.
    kind : AttrKind
        The type it must have: an ``INT`` is an int, a ``FLOAT`` an int or a float, a
        ``STRING`` text or UTF-8 bytes (returned as text), ``INTS`` and ``FLOATS`` a
        list or tuple of them (returned as a tuple).
    default
        Returned as it is when the attribute is absent.
    where : str
        The node, for messages: ``"node 'conv1' (Conv)"``.

    Raises
    ------
    ModelLoadError
        ``node 'conv1' (Conv): attribute 'kernel_shape' must be ints, got a float``.

    Examples
    --------
    >>> attribute({"transA": 1}, "transA", AttrKind.INT, 0, where="node 'g' (Gemm)")
    1
    >>> attribute({"mode": b"linear"}, "mode", AttrKind.STRING, "nearest", where="n")
    'linear'
    >>> attribute({"group": 2.5}, "group", AttrKind.INT, 1, where="node 'c' (Conv)")
    Traceback (most recent call last):
    ...
    placer.errors.ModelLoadError: node 'c' (Conv): attribute 'group' must be an int, got a float
    """
    if name not in attrs:
        return default
    value = attrs[name]

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def is_float(v: Any) -> bool:
        return is_int(v) or isinstance(v, float)

    if kind is AttrKind.INT and is_int(value):
        return value
    if kind is AttrKind.FLOAT and is_float(value):
        return float(value)
    if kind is AttrKind.STRING and isinstance(value, str):
        return value
    if kind is AttrKind.STRING and isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelLoadError(f"{where}: attribute {name!r} is not UTF-8 text") from None
    if kind in (AttrKind.INTS, AttrKind.FLOATS) and isinstance(value, (list, tuple)):
        test = is_int if kind is AttrKind.INTS else is_float
        if all(test(v) for v in value):
            return tuple(value)
    raise ModelLoadError(
        f"{where}: attribute {name!r} must be {kind.value}, got {_describe(value)}"
    )


@dataclass(frozen=True)
class OpContext:
    """One node as a formula sees it.

    Parameters
    ----------
    op_type : str
        The ONNX op type.
    inputs, outputs : tuple of TensorInfo or None
        In the node's order; ``None`` for an omitted optional input or output.
    attrs : Mapping
        The node's attributes as Python values (``onnx.helper.get_attribute_value``);
        formulas read them through :meth:`attr`.
    node : str
        The node's name, for messages.
    """

    op_type: str
    inputs: tuple[TensorInfo | None, ...]
    outputs: tuple[TensorInfo | None, ...]
    attrs: Mapping[str, Any]
    node: str = ""

    def attr(self, name: str, kind: AttrKind, default: _T) -> Any:
        """Attribute ``name`` as ``kind``, or ``default``; see :func:`attribute`."""
        where = f"node {self.node!r} ({self.op_type})" if self.node else f"{self.op_type} node"
        return attribute(self.attrs, name, kind, default, where=where)

    def input(self, i: int) -> TensorInfo | None:
        return self.inputs[i] if i < len(self.inputs) else None

    @property
    def out_numel(self) -> int:
        """Elements of the first output (0 when it is absent)."""
        first = self.outputs[0] if self.outputs else None
        return first.numel if first is not None else 0

    @property
    def in_numel(self) -> int:
        """Elements of the first input (0 when it is absent)."""
        first = self.input(0)
        return first.numel if first is not None else 0


class OpClass(str, Enum):
    """What limits an op on real hardware: each class gets its own compute rate
    (:mod:`placer.costs.roofline`, ``docs/costs.md``)."""

    GEMM = "gemm"  # MatMul, Gemm, Einsum with a constant weight (pre-packed by runtimes)
    MATMUL = "matmul"  # a product of two activations (attention scores and context)
    CONV = "conv"  # dense convolution
    GROUPED_CONV = "grouped_conv"  # depthwise: at most NARROW_GROUP channels per group
    ELEMENTWISE = "elementwise"  # arithmetic, comparisons, activations without exp/erf
    TRANSCENDENTAL = "transcendental"  # exp, erf, tanh, sigmoid, GELU and kin
    REDUCTION = "reduction"  # reductions, Softmax, normalisations, pooling
    SCALAR = "scalar"  # element by element through scalar library calls: LRN
    MOVEMENT = "movement"  # copies of contiguous runs: Concat, Slice, Gather, ...
    TRANSPOSE = "transpose"  # a Transpose that moves the last axis: element by element
    VIEW = "view"  # a new shape over the same buffer: the runtime aliases it
    OTHER = "other"  # control flow, recurrent ops, unknown op types


#: Op types that only relabel a tensor's shape: runtimes alias their output to their
#: input, so they move no bytes.
VIEW_OPS: frozenset[str] = frozenset(
    {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
)
#: Input channels per group up to which a grouped convolution is costed as depthwise
#: (:attr:`OpClass.GROUPED_CONV`): a few multiply-adds per output, memory-bound kernels.
NARROW_GROUP = 8
#: Op types that read only the rows (elements) their indices select.
GATHER_OPS: frozenset[str] = frozenset({"Gather", "GatherElements", "GatherND"})
_GEMM_OPS = frozenset(
    {"MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "Gemm", "Einsum"}
)
_CONV_OPS = frozenset({"Conv", "ConvInteger", "QLinearConv", "ConvTranspose"})
_TRANSCENDENTAL_OPS = frozenset(
    {
        "Exp", "Log", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Elu", "Selu",
        "Celu", "Softplus", "Softsign", "Mish", "Gelu", "FastGelu", "BiasGelu", "Sin", "Cos",
        "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Pow",
        "Sqrt", "Reciprocal",
    }
)  # fmt: skip
_REDUCTION_OPS = frozenset(
    {
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
        "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "ArgMax", "ArgMin",
        "TopK", "Softmax", "LogSoftmax", "Hardmax", "BatchNormalization",
        "LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization",
        "InstanceNormalization", "GroupNormalization", "LpNormalization",
        "MeanVarianceNormalization", "MaxPool", "AveragePool", "LpPool",
        "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "CumSum",
    }
)  # fmt: skip


#: Op types a runtime finishes with a scalar ``pow`` per element (onnxruntime's CPU
#: ``LRN``: a running sum of squares over the channel window, vectorised, then Eigen's
#: element-by-element ``pow``): their time follows their element count at a rate of
#: their own, far below any vector kernel's.
_SCALAR_OPS = frozenset({"LRN"})


_PRODUCTS = frozenset({OpClass.GEMM, OpClass.MATMUL, OpClass.CONV, OpClass.GROUPED_CONV})


def op_class(op_type: str, attrs: Mapping[str, Any] | None = None) -> OpClass:
    """The class of an op type (``attrs``: a Conv's ``group``).  A product with a
    constant weight is :attr:`OpClass.GEMM` here; the graph loader, which knows the
    weights, makes it :attr:`OpClass.MATMUL` when neither input is one.

    Examples
    --------
    >>> op_class("Conv", {"group": 32}).value, op_class("Erf").value
    ('grouped_conv', 'transcendental')
    """
    if op_type in VIEW_OPS:
        return OpClass.VIEW
    if op_type in _GEMM_OPS:
        return OpClass.GEMM
    if op_type in _CONV_OPS:
        group = (attrs or {}).get("group", 1)
        grouped = isinstance(group, int) and not isinstance(group, bool) and group > 1
        return OpClass.GROUPED_CONV if grouped else OpClass.CONV
    if op_type in _TRANSCENDENTAL_OPS:
        return OpClass.TRANSCENDENTAL
    if op_type in _REDUCTION_OPS:
        return OpClass.REDUCTION
    if op_type in _SCALAR_OPS:
        return OpClass.SCALAR
    if op_type == "Transpose":
        perm = (attrs or {}).get("perm")
        # without perm the axes reverse: the last one moves unless the tensor is 1-D
        moves_last = perm is None or (
            isinstance(perm, (list, tuple)) and len(perm) > 1 and perm[-1] != len(perm) - 1
        )
        return OpClass.TRANSPOSE if moves_last else OpClass.MOVEMENT
    formula = FLOP_FORMULAS.get(op_type)
    if formula is None or formula in _RECURRENT:
        return OpClass.OTHER
    if formula is no_flops:
        return OpClass.MOVEMENT
    return OpClass.ELEMENTWISE


class ProductShape(NamedTuple):
    """The GEMM a product or convolution runs as, for its efficiency
    (:meth:`placer.costs.cluster.DeviceGroup.compute_rate`): ``inner``, multiply-adds per
    output element (``K``); for a convolution, ``channels``, its output channels per group
    (``M``), ``positions``, its output positions per image (``N``), and its largest
    ``stride``.  0 where not known or not a product.

    For a pointwise convolution with a bias (a 1x1 kernel, stride 1, no padding),
    ``bias_bytes``, the bytes of its output, and ``bias_block``, those of one image's
    output per group: onnxruntime's plain kernel for it (MLAS's direct GEMM) writes each
    such block, then sweeps it again to add the bias; 0 for any other op."""

    inner: float = 0.0
    channels: float = 0.0
    positions: float = 0.0
    stride: int = 1
    bias_bytes: float = 0.0
    bias_block: float = 0.0


#: A product whose GEMM shape is not known, or no product: no half-efficiency length
#: applies.
UNSHAPED = ProductShape()


@dataclass(frozen=True)
class OpCost:
    """The cost of one node: FLOPs and bytes, whether a formula gave the FLOPs, and
    the node's :class:`OpClass`."""

    flops: float
    bytes_read: float
    bytes_written: float
    has_formula: bool = True
    op_class: OpClass = OpClass.OTHER
    inner: float = 0.0  # multiply-adds per output element of a product or convolution
    #: For a convolution: output channels per group (the ``M`` of the GEMM a runtime
    #: turns it into), output positions per image (its ``N``), and its largest stride.
    channels: float = 0.0
    positions: float = 0.0
    stride: int = 1
    #: For a pointwise convolution with a bias: its output's bytes, and one image's per
    #: group (:class:`ProductShape`).
    bias_bytes: float = 0.0
    bias_block: float = 0.0

    @property
    def product_shape(self) -> ProductShape:
        return ProductShape(self.inner, self.channels, self.positions, self.stride,
                            self.bias_bytes, self.bias_block)  # fmt: skip


# -- formulas, one per family ----------------------------------------------------------


def conv_flops(ctx: OpContext) -> float:
    """Conv: 2·N·Cout·prod(out spatial)·(Cin/group)·prod(kernel), plus one add per output
    element for the bias."""
    weight = ctx.input(1)
    if weight is None:
        raise ValueError("Conv without a weight")
    # The weight is (Cout, Cin/group, k1, k2, ...), so its size already holds Cin/group.
    per_output = math.prod(weight.shape[1:])
    flops = 2.0 * ctx.out_numel * per_output
    if ctx.input(2) is not None:
        flops += ctx.out_numel
    return flops


def conv_transpose_flops(ctx: OpContext) -> float:
    """ConvTranspose: every input element is multiplied into a (Cout/group)·prod(kernel)
    patch, 2·N·Cin·prod(in spatial)·(Cout/group)·prod(kernel), plus the bias."""
    weight = ctx.input(1)
    if weight is None:
        raise ValueError("ConvTranspose without a weight")
    # The weight is (Cin, Cout/group, k1, ...).
    flops = 2.0 * ctx.in_numel * math.prod(weight.shape[1:])
    if ctx.input(2) is not None:
        flops += ctx.out_numel
    return flops


def matmul_flops(ctx: OpContext) -> float:
    """MatMul (batched, broadcasting): 2·prod(output)·K, K the shared dimension."""
    a = ctx.input(0)
    if a is None or not a.shape:
        raise ValueError("MatMul without a first input")
    return 2.0 * ctx.out_numel * a.shape[-1]


def gemm_flops(ctx: OpContext) -> float:
    """Gemm: 2·M·N·K, plus M·N for adding C, plus M·N when alpha or beta scales."""
    a = ctx.input(0)
    if a is None or len(a.shape) != 2:
        raise ValueError("Gemm needs a 2-D first input")
    k = a.shape[0] if ctx.attr("transA", AttrKind.INT, 0) else a.shape[1]
    flops = 2.0 * ctx.out_numel * k
    if ctx.input(2) is not None:
        flops += ctx.out_numel * (2 if ctx.attr("beta", AttrKind.FLOAT, 1.0) != 1.0 else 1)
    if ctx.attr("alpha", AttrKind.FLOAT, 1.0) != 1.0:
        flops += ctx.out_numel
    return flops


_EINSUM_TERM = re.compile(r"[A-Za-z]|\.\.\.")


def einsum_flops(ctx: OpContext) -> float:
    """Einsum: the product of the sizes of all indices (ellipsis dimensions included),
    times the number of operands less one, doubled when an index is summed over."""
    equation = ctx.attr("equation", AttrKind.STRING, "").replace(" ", "")
    lhs, _, rhs = equation.partition("->")
    sizes: dict[str, int] = {}
    ellipsis: list[int] = []
    for term, info in zip(lhs.split(","), ctx.inputs, strict=False):
        if info is None:
            raise ValueError("Einsum with an absent operand")
        labels = _EINSUM_TERM.findall(term)
        n_ellipsis = len(info.shape) - (len(labels) - labels.count("..."))
        axis = 0
        for label in labels:
            if label == "...":
                dims = list(info.shape[axis : axis + n_ellipsis])
                # Broadcast ellipsis dimensions right-aligned, keeping the larger.
                width = max(len(ellipsis), len(dims))
                a = [1] * (width - len(ellipsis)) + ellipsis
                b = [1] * (width - len(dims)) + dims
                ellipsis = [max(x, y) for x, y in zip(a, b, strict=True)]
                axis += n_ellipsis
            else:
                sizes[label] = max(sizes.get(label, 1), info.shape[axis])
                axis += 1
    if "->" in equation:
        kept = {label for label in _EINSUM_TERM.findall(rhs) if label != "..."}
    else:  # implicit output: the labels that appear once
        all_labels = _EINSUM_TERM.findall(lhs)
        kept = {lab for lab in all_labels if lab != "..." and all_labels.count(lab) == 1}
    summed = set(sizes) - kept
    volume = math.prod(sizes.values()) * math.prod(ellipsis)
    operands = max(1, len(ctx.inputs) - 1)
    return float(volume * operands * (2 if summed and len(ctx.inputs) > 1 else 1))


def per_output_element(count: float) -> Callable[[OpContext], float]:
    """A formula charging ``count`` FLOPs per element of the first output."""

    def formula(ctx: OpContext) -> float:
        return count * ctx.out_numel

    formula.__doc__ = f"{count} FLOP(s) per output element."
    return formula


def per_input_element(count: float) -> Callable[[OpContext], float]:
    """A formula charging ``count`` FLOPs per element of the first input."""

    def formula(ctx: OpContext) -> float:
        return count * ctx.in_numel

    formula.__doc__ = f"{count} FLOP(s) per input element."
    return formula


def no_flops(ctx: OpContext) -> float:
    """Data movement, shape bookkeeping or an identity at inference: no arithmetic."""
    return 0.0


def variadic_flops(ctx: OpContext) -> float:
    """Sum/Max/Min/Mean over n inputs: n-1 operations per output element (Mean: n)."""
    present = sum(1 for info in ctx.inputs if info is not None)
    extra = 1 if ctx.op_type == "Mean" else 0
    return float(max(present - 1 + extra, 0) * ctx.out_numel)


def pool_flops(ctx: OpContext) -> float:
    """MaxPool/AveragePool/LpPool: prod(kernel) operations per output element, one more
    for the division of AveragePool."""
    kernel = math.prod(ctx.attr("kernel_shape", AttrKind.INTS, ()) or (1,))
    extra = 1 if ctx.op_type == "AveragePool" else 0
    return float(ctx.out_numel * (kernel + extra))


def global_pool_flops(ctx: OpContext) -> float:
    """GlobalAveragePool/GlobalMaxPool/GlobalLpPool: one operation per input element,
    plus a division per output element for the average."""
    extra = ctx.out_numel if ctx.op_type == "GlobalAveragePool" else 0
    return float(ctx.in_numel + extra)


def reduce_flops(ctx: OpContext) -> float:
    """Reduce*/ArgMax/ArgMin: one operation per input element (two for the squaring
    reductions), plus one per output element for ReduceMean and the L2 square root."""
    per_input = 2 if ctx.op_type in ("ReduceSumSquare", "ReduceL2", "ReduceLogSumExp") else 1
    per_output = 1 if ctx.op_type in ("ReduceMean", "ReduceL2", "ReduceLogSumExp") else 0
    return float(per_input * ctx.in_numel + per_output * ctx.out_numel)


def batchnorm_flops(ctx: OpContext) -> float:
    """BatchNormalization at inference folds to one multiply and one add per element."""
    return 2.0 * ctx.in_numel


def normalization_flops(ctx: OpContext) -> float:
    """Layer/Instance/Group normalization: 5 FLOPs per element for the mean, variance
    and normalising (sum, subtract, square, sum, scale), plus 2 for scale and bias."""
    return 7.0 * ctx.in_numel


def softmax_flops(ctx: OpContext) -> float:
    """Softmax/LogSoftmax: max, subtract, exp, sum and divide, 5 FLOPs per element."""
    return 5.0 * ctx.in_numel


def lrn_flops(ctx: OpContext) -> float:
    """LRN: a square and an add per window element, then scale, pow and divide:
    2·size + 3 per element."""
    return float(ctx.in_numel * (2 * ctx.attr("size", AttrKind.INT, 1) + 3))


def resize_flops(ctx: OpContext) -> float:
    """Resize/Upsample: nearest copies (0 FLOPs); (bi/tri)linear interpolates
    2·2^d FLOPs per output element, cubic 2·4^d, d the spatial rank."""
    mode = ctx.attr("mode", AttrKind.STRING, "nearest")
    first = ctx.outputs[0] if ctx.outputs else None
    spatial = max(len(first.shape) - 2, 1) if first is not None else 1
    if mode == "nearest":
        return 0.0
    taps = 4**spatial if mode == "cubic" else 2**spatial
    return 2.0 * taps * ctx.out_numel


def _recurrent_flops(gates: int, elementwise: int) -> Callable[[OpContext], float]:
    def formula(ctx: OpContext) -> float:
        x, w = ctx.input(0), ctx.input(1)
        if x is None or w is None:
            raise ValueError("recurrent op without input or weight")
        seq, batch, in_size = x.shape
        if ctx.attr("layout", AttrKind.INT, 0) == 1:  # batch first
            seq, batch = batch, seq
        directions = w.shape[0]
        hidden = ctx.attr("hidden_size", AttrKind.INT, w.shape[1] // gates)
        per_step = 2 * gates * hidden * (in_size + hidden) + 2 * gates * hidden
        per_step += elementwise * hidden
        return float(seq * batch * directions * per_step)

    formula.__doc__ = (
        f"{gates} gate(s): per time step, batch row and direction "
        f"2·{gates}·H·(I+H) for the matrix products, 2·{gates}·H for the biases and "
        f"{elementwise}·H for the gate activations and state update."
    )
    return formula


def _quantized(formula: Callable[[OpContext], float], shift: int) -> Callable[..., float]:
    """Reuse ``formula`` for a quantized op whose data inputs sit at 0 and ``shift``."""

    def wrapped(ctx: OpContext) -> float:
        inputs = (ctx.input(0), ctx.input(shift))
        return formula(OpContext(ctx.op_type, inputs, ctx.outputs, ctx.attrs, ctx.node))

    wrapped.__doc__ = formula.__doc__
    return wrapped


_ONE = per_output_element(1)
_TWO = per_output_element(2)

# fmt: off
#: FLOPs of one node, by op type (domain ignored: contrib ops have distinct names).
FLOP_FORMULAS: dict[str, Callable[[OpContext], float]] = {
    # dense linear algebra
    "Conv": conv_flops,
    "ConvInteger": conv_flops,
    "QLinearConv": _quantized(conv_flops, 3),
    "ConvTranspose": conv_transpose_flops,
    "MatMul": matmul_flops,
    "MatMulInteger": matmul_flops,
    "QLinearMatMul": matmul_flops,
    "FusedMatMul": matmul_flops,
    "Gemm": gemm_flops,
    "Einsum": einsum_flops,
    "RNN": _recurrent_flops(1, 1),
    "GRU": _recurrent_flops(3, 6),
    "LSTM": _recurrent_flops(4, 9),
    # elementwise arithmetic, one operation per output element
    **{
        op: _ONE
        for op in (
            "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Neg", "Abs", "Reciprocal", "Sqrt",
            "Relu", "Floor", "Ceil", "Round", "Sign", "Where", "Equal", "Less", "Greater",
            "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "BitShift",
            "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "IsNaN", "IsInf",
            "CumSum", "Exp", "Log",
            # a clamp is one vectorised min-max pass: onnxruntime runs Clip at 1.1 to 1.3
            # times a Relu's time per element (chains of 16, one thread), not twice it
            "Clip",
        )
    },
    **{op: _TWO for op in ("LeakyRelu", "PRelu", "ThresholdedRelu", "Shrink")},
    **{
        op: per_output_element(count)
        for op, count in (
            ("Sigmoid", 4), ("HardSigmoid", 3), ("HardSwish", 4), ("Tanh", 5), ("Erf", 10),
            ("Elu", 4), ("Selu", 5), ("Celu", 5), ("Softplus", 3), ("Softsign", 3),
            ("Mish", 9), ("Gelu", 8), ("FastGelu", 8), ("BiasGelu", 9), ("Sin", 5),
            ("Cos", 5), ("Tan", 5), ("Asin", 5), ("Acos", 5), ("Atan", 5), ("Sinh", 5),
            ("Cosh", 5), ("Asinh", 5), ("Acosh", 5), ("Atanh", 5),
            ("QuantizeLinear", 2), ("DequantizeLinear", 2), ("DynamicQuantizeLinear", 4),
        )
    },
    **{op: variadic_flops for op in ("Sum", "Max", "Min", "Mean")},
    # pooling and reductions
    **{op: pool_flops for op in ("MaxPool", "AveragePool", "LpPool")},
    **{op: global_pool_flops for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")},
    **{
        op: reduce_flops
        for op in (
            "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
            "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "ArgMax",
            "ArgMin", "TopK",
        )
    },
    # normalization and friends
    "BatchNormalization": batchnorm_flops,
    "LayerNormalization": normalization_flops,
    "SimplifiedLayerNormalization": normalization_flops,
    "SkipLayerNormalization": per_input_element(8),
    "InstanceNormalization": normalization_flops,
    "GroupNormalization": normalization_flops,
    "LpNormalization": per_input_element(3),
    "MeanVarianceNormalization": per_input_element(5),
    "Softmax": softmax_flops,
    "LogSoftmax": softmax_flops,
    "Hardmax": per_input_element(1),
    "LRN": lrn_flops,
    "Resize": resize_flops,
    "Upsample": resize_flops,
    # no arithmetic: layout, indexing, shape bookkeeping, inference-time identities
    **{
        op: no_flops
        for op in (
            "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout",
            "Shape", "Size", "Gather", "GatherElements", "GatherND", "Scatter",
            "ScatterElements", "ScatterND", "Concat", "Split", "Slice", "Expand", "Tile",
            "Pad", "Cast", "CastLike", "Constant", "ConstantOfShape", "Range", "OneHot",
            "DepthToSpace", "SpaceToDepth", "NonZero", "Trilu", "EyeLike", "ReverseSequence",
            "Compress", "Unique", "SequenceConstruct", "SequenceAt", "SequenceInsert",
            "SequenceLength", "SequenceEmpty", "SplitToSequence", "ConcatFromSequence",
            "Optional", "OptionalGetElement", "OptionalHasElement",
        )
    },
}

_RECURRENT = frozenset(FLOP_FORMULAS[op] for op in ("RNN", "GRU", "LSTM"))

#: Input positions that carry shapes, indices or scalars steering an op rather than
#: weights: a constant there is not a parameter of the op.
CONTROL_INPUTS: Mapping[str, frozenset[int]] = {
    op: frozenset(positions)
    for op, positions in {
        "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4),
        "Pad": (1, 2, 3), "Resize": (1, 2, 3), "Upsample": (1,), "Unsqueeze": (1,),
        "Squeeze": (1,), "Split": (1,), "TopK": (1,), "Clip": (1, 2),
        "ConstantOfShape": (0,), "Range": (0, 1, 2), "OneHot": (1, 2), "Gather": (1,),
        "GatherElements": (1,), "GatherND": (1,), "ScatterND": (1,),
        "ScatterElements": (1,), "Scatter": (1,), "Loop": (0, 1), "If": (0,),
        "CumSum": (1,), "Trilu": (1,), "Dropout": (1, 2), "Compress": (1,),
        "ReduceMean": (1,), "ReduceSum": (1,), "ReduceMax": (1,), "ReduceMin": (1,),
        "ReduceProd": (1,), "ReduceL1": (1,), "ReduceL2": (1,), "ReduceSumSquare": (1,),
        "ReduceLogSum": (1,), "ReduceLogSumExp": (1,), "ReverseSequence": (1,),
        "NonMaxSuppression": (2, 3, 4),
    }.items()
}
# fmt: on

#: Input positions holding state that is stored with the op but not learned (BatchNorm's
#: running mean and variance): counted in ``param_bytes``, not in ``param_count``.
STATE_INPUTS: Mapping[str, frozenset[int]] = {"BatchNormalization": frozenset({3, 4})}

def has_formula(op_type: str) -> bool:
    """Whether ``op_type`` has a FLOP formula.

    Examples
    --------
    >>> has_formula("Conv"), has_formula("NoSuchOp")
    (True, False)
    """
    return op_type in FLOP_FORMULAS


def op_cost(ctx: OpContext) -> OpCost:
    """FLOPs and bytes of one node.

    Parameters
    ----------
    ctx : OpContext
        The node's op type, attributes and input/output tensors.

    Returns
    -------
    OpCost
        ``bytes_read`` is the size of all inputs (weights included), ``bytes_written``
        the size of all outputs, except: a view op (:data:`VIEW_OPS`) moves nothing, a
        gather (:data:`GATHER_OPS`) reads its indices and the rows it gathers (as many
        bytes as it writes), ``Shape`` and ``Size`` read no data.  An op type without a
        formula, or a node whose shapes do not fit its formula, gets ``flops=0`` and
        ``has_formula=False``; FLOPs past the range of a float are ``inf``.

    Raises
    ------
    ModelLoadError
        An attribute the formula reads has the wrong type (see :func:`attribute`).

    Examples
    --------
    >>> x = TensorInfo((1, 4), 4)
    >>> cost = op_cost(OpContext("Relu", (x,), (x,), {}))
    >>> cost.flops, cost.bytes_read, cost.bytes_written, cost.op_class.value
    (4.0, 16, 16, 'elementwise')
    """
    bytes_read = sum(info.nbytes for info in ctx.inputs if info is not None)
    bytes_written = sum(info.nbytes for info in ctx.outputs if info is not None)
    kind = op_class(ctx.op_type, ctx.attrs)
    weight = ctx.input(1) if kind is OpClass.GROUPED_CONV else None
    if weight is not None and len(weight.shape) > 1 and weight.shape[1] > NARROW_GROUP:
        kind = OpClass.CONV  # wide groups (ShuffleNet's) run like a dense convolution
    if ctx.op_type == "Shape" or ctx.op_type == "Size":
        bytes_read = 0  # only the shape metadata is read
    elif kind is OpClass.VIEW:
        bytes_read = bytes_written = 0  # the output aliases the input's buffer
    elif ctx.op_type in GATHER_OPS:
        # the rows gathered (as many bytes as the output) and the indices, not the table
        indices = ctx.input(1)
        bytes_read = bytes_written + (indices.nbytes if indices is not None else 0)
    formula = FLOP_FORMULAS.get(ctx.op_type)
    if formula is None:
        return OpCost(0.0, bytes_read, bytes_written, has_formula=False, op_class=kind)
    try:
        flops = float(formula(ctx))
    except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError):
        # A malformed node (wrong rank, missing weight): keep the bytes, flag the op.
        return OpCost(0.0, bytes_read, bytes_written, has_formula=False, op_class=kind)
    except OverflowError:  # an integer count past float range: the caller refuses it
        flops = math.inf
    inner = 0.0
    if kind in _PRODUCTS and ctx.out_numel > 0 and math.isfinite(flops):
        inner = flops / (2.0 * ctx.out_numel)  # the reduction length, K of a GEMM
    if ctx.op_type == "Conv" and kind in (OpClass.CONV, OpClass.GROUPED_CONV):
        channels, positions, stride = _conv_shape(ctx)
        bias_bytes, bias_block = _bias_sweep(ctx)
        return OpCost(flops, bytes_read, bytes_written, op_class=kind, inner=inner,
                      channels=channels, positions=positions, stride=stride,
                      bias_bytes=bias_bytes, bias_block=bias_block)  # fmt: skip
    return OpCost(flops, bytes_read, bytes_written, op_class=kind, inner=inner)


def _conv_shape(ctx: OpContext) -> tuple[float, float, int]:
    """A Conv's output channels per group, output positions per image and largest
    stride; zeros (and stride 1) where the shapes do not tell."""
    out = ctx.outputs[0] if ctx.outputs else None
    try:
        strides = ctx.attr("strides", AttrKind.INTS, ())
        stride = max((int(v) for v in strides), default=1)
        group = max(1, int(ctx.attr("group", AttrKind.INT, 1)))
    except (ModelLoadError, TypeError, ValueError):  # the FLOP formula's concern
        return 0.0, 0.0, 1
    if out is None or len(out.shape) < 3 or any(d <= 0 for d in out.shape):
        return 0.0, 0.0, max(1, stride)
    return out.shape[1] / group, float(math.prod(out.shape[2:])), max(1, stride)


def _bias_sweep(ctx: OpContext) -> tuple[float, float]:
    """``(bias_bytes, bias_block)`` of :class:`ProductShape` for a Conv: its output's
    bytes and one image's per group when it is pointwise (every kernel dim 1, every
    stride 1, no padding) and has a bias; zeros otherwise.

    onnxruntime runs such a convolution as one GEMM per image and group on the input as
    it lies (MLAS's ``MlasConvAlgorithmGemmDirect``), then adds the bias in a pass of its
    own over the block the GEMM wrote, where other convolutions add it to each slice
    while it is in cache."""
    weight, bias = ctx.input(1), ctx.input(2)
    out = ctx.outputs[0] if ctx.outputs else None
    if weight is None or bias is None or out is None or len(out.shape) < 3:
        return 0.0, 0.0
    try:
        strides = [int(v) for v in ctx.attr("strides", AttrKind.INTS, ())]
        pads = [int(v) for v in ctx.attr("pads", AttrKind.INTS, ())]
        group = max(1, int(ctx.attr("group", AttrKind.INT, 1)))
    except (ModelLoadError, TypeError, ValueError):  # the FLOP formula's concern
        return 0.0, 0.0
    pointwise = all(d == 1 for d in weight.shape[2:]) and all(v == 1 for v in strides)
    if not pointwise or any(pads) or out.shape[0] <= 0 or out.nbytes <= 0:
        return 0.0, 0.0
    return float(out.nbytes), float(out.nbytes) / (out.shape[0] * group)


def cost_of(
    op_type: str,
    inputs: Sequence[TensorInfo | None],
    outputs: Sequence[TensorInfo | None],
    attrs: Mapping[str, Any] | None = None,
) -> OpCost:
    """Shorthand for ``op_cost(OpContext(...))``.

    Examples
    --------
    >>> a, b, c = TensorInfo((2, 3), 4), TensorInfo((3, 5), 4), TensorInfo((2, 5), 4)
    >>> cost_of("MatMul", [a, b], [c]).flops  # 2·2·5·3
    60.0
    """
    return op_cost(OpContext(op_type, tuple(inputs), tuple(outputs), dict(attrs or {})))
