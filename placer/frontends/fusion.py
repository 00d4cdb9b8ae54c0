"""What a runtime fuses: the graph it executes, costed on the nodes placer places.

placer places the model's own nodes (so that plans, ``split`` and ``--costs`` keep the
names users see), but a runtime does not run them one by one: its graph optimiser fuses
chains of them into single kernels that keep the intermediate tensors in registers or
cache.  With ``--fusion runtime`` (the default) each fused group is costed as the kernel
the runtime runs, and the cost is carried by the original nodes: the group's first node
pays the bytes it reads from outside and one per-op overhead, its last node the bytes it
writes, and every node its own FLOPs (but the epilogues below: none); the others move
nothing and pay no overhead.  On one device the group then costs what the fused kernel
costs; split across two devices (which a runtime could not fuse), each part is charged
less than it would be, and the transfer between them is charged in full.

The patterns are those onnxruntime's CPU provider fuses at its default level [1]_, [2]_:

* **removed**: ``Identity`` and ``Dropout`` (redundant node eliminations), and a node
  that recomputes the value of an earlier one (common-subexpression elimination,
  :mod:`placer.frontends.cse`), which joins no group; its readers count as the
  readers of the node it repeats, which then fuses with none of them when they are
  several (two equal ``Conv`` nodes, then a ``Relu`` and a ``Sigmoid``: the runtime
  runs one ``Conv`` and both activations alone).  Like a fused group split
  across devices, a recomputation placed on another device than the node it repeats
  is charged nothing, though that device's runtime must compute it;
* **epilogues** (their arithmetic runs in the anchor's kernel, on values in registers:
  charged no FLOPs of their own): a ``BatchNormalization`` (folded into the weights),
  an activation (``Relu``, ``Clip``,
  ``LeakyRelu``, ``Sigmoid``, ``HardSigmoid``, ``Tanh``, ``HardSwish``) or a residual
  ``Add`` (or a ``Sum`` of two, as Caffe2 exports it) after a ``Conv`` (ConvBNFusion,
  ConvActivationFusion, the NCHWc Conv's sum input); an activation after a ``Gemm``; a
  multiplication or division by a scalar constant after a ``MatMul``
  (MatMulScaleFusion).  A node is absorbed only when it is the sole reader of what it
  absorbs.  A constant counts wherever it is read, though placer charges a weight
  shared by several nodes to the first alone;
* **GELU**: ``x / √2 → Erf → + 1 → · x → · ½`` (in either order of the last two), with
  the bias ``Add`` before it when it has no other reader (GeluFusion, BiasGeluFusion);
* **layer norms written out**: a ``ReduceMean`` of a tensor, the ops that normalise it
  (``Sub``, ``Pow``, ``ReduceMean``, ``Add``, ``Sqrt``, ``Reciprocal``, ``Div``,
  ``Mul``) and its scale and shift, all reading only each other and that tensor
  (LayerNormFusion, SimplifiedLayerNormFusion for RMSNorm);
* **skip layer norm**: an ``Add`` of two activations whose only reader is a
  ``LayerNormalization``, with the bias ``Add`` before it when the skip ``Add`` is its
  only reader (SkipLayerNormFusion).  Its nodes' FLOPs run at the device's
  ``efficiency.kernels.skip_norm`` where it gives one (``placer calibrate`` measures
  it): onnxruntime's CPU kernel took 4.8 ms for 1024 × 768 floats, where the ``Add``
  and the ``LayerNormalization`` alone took 1.0 ms.

With ``--fusion none`` nodes are costed one by one, and a weight that nodes compute
(placer folds them: ``ConstantOfShape``, a ``Transpose`` of an initializer) is computed
at every run, so a product that reads one runs at the rate of a product of two
activations (nothing to pre-pack): what onnxruntime does with its optimisations off.

References
----------
.. [1] onnxruntime, Graph optimizations (docs: performance, model optimizations).
.. [2] onnxruntime, ``onnxruntime/core/optimizer/`` (the transformers named above).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from placer.frontends.onnx_graph import OpGraph
from placer.frontends.opcost import OpClass


@dataclass(frozen=True)
class Fused:
    """How one node is costed inside a fused kernel: the bytes it still moves, whether
    it pays the kernel's per-op overhead, whether its FLOPs still run (a
    BatchNormalization folded into the Conv's weights, a Dropout removed, run none),
    and the kernel's name where a device may give its FLOPs a rate of their own
    (:data:`placer.costs.cluster.KERNEL_KEYS`)."""

    bytes_read: float
    bytes_written: float
    overhead: bool
    computes: bool = True
    kernel: str = ""


#: Op types onnxruntime removes from an inference graph (its redundant node
#: eliminations): they cost nothing at all.
REMOVED = frozenset({"Identity", "Dropout"})


_ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "Tanh",
                          "HardSwish"})  # fmt: skip
_NORM_OPS = frozenset({"ReduceMean", "Sub", "Pow", "Add", "Sqrt", "Reciprocal", "Div", "Mul"})
#: The kernel an Add and the LayerNormalization reading it fuse into.
SKIP_NORM = "skip_norm"
#: Most nodes one anchor absorbs (a Conv's BatchNorm, residual Add and activation).
_MAX_EPILOGUE = 3
#: Bytes of a scalar constant (the scale of MatMulScaleFusion).
_SCALAR_BYTES = 8


def fuse(graph: OpGraph) -> dict[int, Fused]:
    """The nodes of ``graph`` a runtime fuses with others, and how each is costed;
    nodes it runs alone are left out."""
    view = _View(graph)
    fused: dict[int, Fused] = {
        i: Fused(0.0, 0.0, overhead=False, computes=False)
        for i, node in enumerate(view.nodes) if node.recomputes
    }  # fmt: skip
    taken: set[int] = set(fused)
    for group in (*_normalisations(view), *_gelus(view)):
        if taken.isdisjoint(group):
            taken.update(group)
            fused.update(_kernel(view, group))
    fused.update(_skip_norms(view, taken))
    fused.update(_epilogues(view, taken))
    for i, node in enumerate(view.nodes):
        if node.op_type in REMOVED and i not in fused:
            fused[i] = Fused(0.0, 0.0, overhead=False, computes=False)
    return fused


class _View:
    """Readers, producers and tensor sizes of a graph's nodes."""

    def __init__(self, graph: OpGraph) -> None:
        self.nodes = graph.nodes
        n = len(graph.nodes)
        self.readers: list[set[int]] = [set() for _ in range(n)]
        self.producers: list[set[int]] = [set() for _ in range(n)]
        self.tensor_in: list[dict[int, float]] = [{} for _ in range(n)]  # producer -> bytes
        for edge in graph.edges:
            self.readers[edge.src].add(edge.dst)
            self.producers[edge.dst].add(edge.src)
            self.tensor_in[edge.dst][edge.src] = edge.bytes
        # the runtime computes a repeated value once: the repeat's readers read the
        # original's output, which then fuses with none of them (nor its own readers)
        for node, original in graph.repeats:
            self.readers[original] |= self.readers[node]

    def op(self, i: int) -> str:
        return self.nodes[i].op_type

    def sole_reader(self, i: int) -> int | None:
        readers = self.readers[i]
        return next(iter(readers)) if len(readers) == 1 else None

    def constant_bytes(self, i: int) -> float:
        """Bytes node ``i`` reads besides the activations other nodes make: its weights,
        whether it owns them or shares them with others (a scalar initializer that every
        layer's GELU reads belongs to its first reader alone), and any graph input."""
        return max(self.nodes[i].bytes_read - sum(self.tensor_in[i].values()), 0.0)

    def scalar_constant(self, i: int) -> bool:
        """Whether node ``i`` reads one activation and a scalar constant."""
        return len(self.producers[i]) == 1 and 0 < self.constant_bytes(i) <= _SCALAR_BYTES


def _kernel(view: _View, group: list[int], name: str = "") -> Mapping[int, Fused]:
    """One kernel for ``group`` (in topological order), called ``name``: it reads what
    enters the group and writes what leaves it."""
    members = set(group)
    costs = {}
    for i in group:
        node = view.nodes[i]
        inside = sum(b for p, b in view.tensor_in[i].items() if p in members)
        read = max(node.bytes_read - inside, 0.0)
        leaves = any(r not in members for r in view.readers[i]) or not view.readers[i]
        written = node.bytes_written if leaves else 0.0
        costs[i] = Fused(read, written, overhead=i == group[0], kernel=name)
    return costs


def _gelus(view: _View) -> list[list[int]]:
    """``x / √2 → Erf → + 1 → · x → · ½`` groups (with a bias Add before them)."""
    groups = []
    for e, node in enumerate(view.nodes):
        if node.op_type != "Erf" or len(view.producers[e]) != 1:
            continue
        (d,) = view.producers[e]
        a = view.sole_reader(e)
        if view.op(d) not in ("Div", "Mul") or not view.scalar_constant(d) or a is None:
            continue
        if view.op(a) != "Add" or not view.scalar_constant(a):
            continue
        (x,) = view.producers[d]
        chain = [d, e, a]
        tail = view.sole_reader(a)
        # the two products: by x and by ½, in either order
        while tail is not None and view.op(tail) == "Mul" and len(chain) < 5:
            chain.append(tail)
            tail = view.sole_reader(tail) if len(chain) < 5 else None
        if len(chain) != 5 or not any(x in view.producers[m] for m in chain[3:]):
            continue
        if not view.readers[x] <= set(chain) or view.readers[chain[3]] != {chain[4]}:
            continue
        if view.readers[d] != {e}:
            continue
        if _is_bias(view, x):  # an Add of a bias vector, read by the GELU alone
            chain.insert(0, x)
        groups.append(chain)
    return groups


def _normalisations(view: _View) -> list[list[int]]:
    """Layer norms (and RMSNorms) written out op by op."""
    groups = []
    for r, node in enumerate(view.nodes):
        if node.op_type != "ReduceMean" or len(view.producers[r]) > 1:
            continue
        # x: the normalised tensor, read by the first ReduceMean (or Pow) of the group
        sources = view.producers[r]
        first = next(iter(sources)) if sources else None
        if first is not None and view.op(first) == "Pow" and view.scalar_constant(first):
            start, x = first, next(iter(view.producers[first]), None)  # RMSNorm: x²
        else:
            start, x = r, first
        if x is None:
            continue
        group = _closure(view, x, start)
        if group is None or len(group) < 4:
            continue
        if not any(view.op(i) in ("Sqrt", "Reciprocal") or
                   (view.op(i) == "Pow" and i != start) for i in group):  # fmt: skip
            continue
        groups.append(sorted(group))
    return groups


def _closure(view: _View, x: int, start: int) -> set[int] | None:
    """The normalisation ops, from ``start`` on, that read only ``x`` and each other,
    with exactly one of them read from outside; None if there is no such group."""
    group = {start}
    grown = True
    while grown and len(group) <= 16:
        grown = False
        near = {r for i in group | {x} for r in view.readers[i]} - group
        for i in sorted(near):
            if view.op(i) in _NORM_OPS and view.producers[i] <= group | {x}:
                group.add(i)
                grown = True
    # a node nobody reads is a graph output
    outputs = [i for i in group if not view.readers[i] <= group or not view.readers[i]]
    return group if len(outputs) == 1 else None


def _skip_norms(view: _View, taken: set[int]) -> dict[int, Fused]:
    """An Add of two activations read only by a LayerNormalization, with the bias Add
    before it when that Add has no other reader (SkipLayerNormFusion takes the bias)."""
    fused = {}
    for v, node in enumerate(view.nodes):
        if node.op_type != "Add" or v in taken or node.param_bytes > 0 or _is_bias(view, v):
            continue  # a bias Add is no skip connection
        norm = view.sole_reader(v)
        if norm is None or view.op(norm) != "LayerNormalization" or norm in taken:
            continue
        biases = [
            u for u in sorted(view.producers[v])
            if u not in taken and _is_bias(view, u) and view.readers[u] == {v}
        ]  # fmt: skip
        group = [*biases[:1], v, norm]
        taken.update(group)
        fused.update(_kernel(view, group, SKIP_NORM))
    return fused


def _is_bias(view: _View, i: int) -> bool:
    """Whether node ``i`` is an Add of a constant vector to one activation."""
    return (
        view.op(i) == "Add"
        and len(view.producers[i]) == 1
        and view.constant_bytes(i) > _SCALAR_BYTES
    )


def _epilogues(view: _View, taken: set[int]) -> dict[int, Fused]:
    """Ops absorbed into the Conv, Gemm or MatMul before them."""
    anchor_of: dict[int, int] = {}
    absorbed: dict[int, int] = {}
    fused = {}
    for v, node in enumerate(view.nodes):
        if v in taken:
            continue
        kind = node.op_class
        if kind in (OpClass.CONV, OpClass.GROUPED_CONV, OpClass.GEMM, OpClass.MATMUL):
            anchor_of[v] = v
            continue
        for u in sorted(view.producers[v]):
            anchor = anchor_of.get(u)
            if anchor is None or view.readers[u] != {v}:
                continue
            if absorbed.get(anchor, 0) >= _MAX_EPILOGUE or not _absorbs(view, anchor, v, u):
                continue
            absorbed[anchor] = absorbed.get(anchor, 0) + 1
            anchor_of[v] = anchor
            # the kernel writes v's output instead of u's, and reads besides what it
            # computed only what v takes from elsewhere (a residual)
            before = fused.get(u, Fused(view.nodes[u].bytes_read, 0.0, True))
            fused[u] = Fused(before.bytes_read, 0.0, before.overhead, before.computes)
            extra = max(node.bytes_read - view.tensor_in[v][u], 0.0)
            # a BatchNormalization after a Conv is folded into the Conv's weights; the
            # rest is a few vector instructions per output of the anchor's kernel, in
            # registers: its FLOPs are the anchor's epilogue, not an op of their own
            folded = node.op_type == "BatchNormalization"
            fused[v] = Fused(extra if not folded else 0.0, node.bytes_written,
                             overhead=False, computes=False)  # fmt: skip
            break
    return fused


def _absorbs(view: _View, anchor: int, v: int, u: int) -> bool:
    """Whether the kernel of ``anchor`` (its last node so far ``u``) takes ``v`` in."""
    op = view.op(v)
    anchor_op = view.op(anchor)
    if anchor_op == "Conv" or view.nodes[anchor].op_class is OpClass.GROUPED_CONV:
        if op == "BatchNormalization" or op in _ACTIVATIONS:
            return len(view.producers[v]) == 1
        if op == "Sum":  # Caffe2's residual: the NCHWc Conv takes it as its sum input
            return len(view.producers[v]) == 2 and view.constant_bytes(v) == 0
        return op == "Add" and len(view.producers[v]) <= 2  # a bias, or the residual sum
    if anchor_op == "Gemm":
        return op in _ACTIVATIONS and len(view.producers[v]) == 1
    # MatMul: a scale by a scalar constant, right after the product
    return u == anchor and op in ("Mul", "Div") and view.scalar_constant(v)
