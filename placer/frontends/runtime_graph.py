"""Which original ops a node of onnxruntime's optimised graph stands for.

With its optimisations on (``placer profile --fusion runtime``), onnxruntime runs
another graph than the model's: it fuses patterns into one node (a bias ``Add``, a
residual ``Add`` and a ``LayerNormalization`` into ``SkipLayerNormalization``, a bias
``Add`` and the five ops of an exact GELU into ``BiasGelu``, a ``Conv`` and its ``Clip``
into an NCHWc ``Conv``), removes ops (``Identity``, constant folding) and inserts some
(layout reorders, copies between host and device).  Its profile names the nodes it
ran, and a fused node gets a new name (``SkipLayerNormalization_token_22``,
``BiasGelu``, ``<tensor>_nchwc``) that names no op of the model.  :func:`attribute`
maps each back, by the tensors the graphs share: a fused node makes the tensor the
last op of its pattern made, and the ops it replaced lie between that tensor and the
fused node's inputs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from onnx import GraphProto

__all__ = ["Attribution", "attribute"]

#: Suffix of the nodes onnxruntime's NCHWc transformer makes: it names each after the
#: tensor the original node made (whose own name it drops for ``reorder_token_N``).
NCHWC_SUFFIX = "_nchwc"
#: The domain of those nodes.  Their inputs are new tensors, which bound no pattern; a
#: pattern starts at an op of the node's type (a ``Conv``, then its ``Add`` and
#: activation), so the search for what such a node replaced stops there.
NCHWC_DOMAIN = "com.microsoft.nchwc"
#: Nodes onnxruntime inserts to copy tensors between host and device: transfers, which
#: placer charges by the links of the cluster, not as ops.
COPY_OPS = frozenset({"MemcpyToHost", "MemcpyFromHost"})


@dataclass(frozen=True)
class Attribution:
    """The original op charged with each node of the optimised graph.

    Parameters
    ----------
    owner : mapping of str to str
        Optimised node name -> the original node that gets its time.
    absorbed : frozenset of str
        Original nodes that get no time of their own: fused into a node charged to
        another member, or removed by the runtime.
    unmapped : tuple of str
        Optimised nodes charged to no original node (copies between devices, and nodes
        neither their tensors nor their neighbours tie to one).
    """

    owner: Mapping[str, str]
    absorbed: frozenset[str]
    unmapped: tuple[str, ...]


def attribute(
    original: GraphProto,
    optimized: GraphProto,
    weight: Mapping[str, float],
    left_out: Collection[str] = (),
) -> Attribution:
    """Map each node of ``optimized`` (onnxruntime's graph of ``original``) to the
    original node charged with its time.

    Parameters
    ----------
    original : GraphProto
        The graph handed to onnxruntime, its nodes uniquely named.
    optimized : GraphProto
        The graph onnxruntime ran (``SessionOptions.optimized_model_filepath``), in
        topological order.
    weight : mapping of str to float
        FLOPs of the original nodes: a fused node's time goes to its dearest member.
    left_out : collection of str
        Original nodes that are no ops (the constants placer folds): never charged, and
        never members.

    Returns
    -------
    Attribution

    Notes
    -----
    In the optimised graph's order, each node ``N``:

    1. keeps its own time when an original node has its name;
    2. else its *members* are the original nodes it replaced: from the original maker
       of each tensor ``N`` makes (and, for ``<tensor>_nchwc``, of that tensor), back
       through original nodes the optimised graph no longer has and that no earlier
       node claimed, up to ``N``'s inputs and tensors other optimised nodes make (for an
       NCHWc node, whose inputs are new tensors, up to the first op of its own type);
       ``N``'s time goes to the member with the most FLOPs (the first of them on a
       tie), and the other members get none;
    3. else (a node the runtime inserted: a layout reorder) its time goes to the op
       charged for the node making its first input, else for the first node reading
       its output; copies between host and device (:data:`COPY_OPS`) go to no op.

    Original nodes that end up charged with nothing were fused or removed: they are
    ``absorbed``.  Time is linear in the size of both graphs.
    """
    order = {node.name: i for i, node in enumerate(original.node)}
    left_out = set(left_out)
    maker0 = {t: node.name for node in original.node for t in node.output if t}
    inputs0 = {node.name: [t for t in node.input if t] for node in original.node}
    types0 = {node.name: node.op_type for node in original.node}
    names1 = {node.name for node in optimized.node}
    maker1 = {t: node.name for node in optimized.node for t in node.output if t}
    gone = {name for name in order if name not in names1 and name not in left_out}
    claimed: set[str] = set()
    owner: dict[str, str] = {}
    inserted = []
    for node in optimized.node:
        made = [t for t in node.output if t]
        if node.name.endswith(NCHWC_SUFFIX):
            made.append(node.name[: -len(NCHWC_SUFFIX)])
        boundary = set(node.input)
        first = node.op_type if node.domain == NCHWC_DOMAIN else None
        members: list[str] = []
        stack = [maker0[t] for t in made if t in maker0]
        while stack:
            name = stack.pop()
            if name not in gone or name in claimed:
                continue
            claimed.add(name)
            members.append(name)
            if types0[name] == first:
                continue  # where the pattern starts
            for tensor in inputs0[name]:
                if tensor in boundary or maker1.get(tensor, node.name) != node.name:
                    continue  # the pattern's edge: a tensor the optimised graph keeps
                if tensor in maker0:
                    stack.append(maker0[tensor])
        if node.name in order and node.name not in left_out:
            owner[node.name] = node.name
        elif members:
            owner[node.name] = max(members, key=lambda m: (weight.get(m, 0.0), -order[m]))
        elif node.name not in order:
            inserted.append(node)
    _charge_inserted(optimized, inserted, owner)
    unmapped = tuple(node.name for node in inserted if node.name not in owner)
    charged = set(owner.values())
    absorbed = frozenset(name for name in order if name not in left_out and name not in charged)
    return Attribution(owner, absorbed, unmapped)


def _charge_inserted(optimized: GraphProto, inserted: list, owner: dict[str, str]) -> None:
    """Charge each inserted node (a layout reorder) to the op charged for the node
    making its first input, else for the first node reading its outputs."""
    if not inserted:
        return
    maker = {t: node.name for node in optimized.node for t in node.output if t}
    readers: dict[str, list[str]] = {}
    for node in optimized.node:
        for tensor in node.input:
            readers.setdefault(tensor, []).append(node.name)
    charged = [node for node in inserted if node.op_type not in COPY_OPS]
    for node in charged:  # topological order: a chain of reorders follows its maker
        source = maker.get(node.input[0]) if node.input else None
        if source in owner:
            owner[node.name] = owner[source]
    for node in reversed(charged):
        if node.name in owner:
            continue
        for tensor in node.output:
            reader = next((r for r in readers.get(tensor, ()) if r in owner), None)
            if reader is not None:
                owner[node.name] = owner[reader]
                break
