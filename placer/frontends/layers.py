"""Module scopes and layers of a model's operators, and cuts kept to their boundaries.

Practitioners split a pipeline between layers (DeepSpeed's ``PipelineModule``, Megatron,
``torch.distributed.pipelining``); placer may cut anywhere in the operator DAG. This
module names what each operator belongs to and lets a placement be held to those names:

- a node's *scope* is the path of the module that made it, ``model.layers.3.self_attn``:
  from the ``pkg.torch.onnx.name_scopes`` metadata that torch's dynamo exporter writes on
  each node (:func:`scope_from_metadata`), else from a ``/``-separated node name
  (``/model/layers.3/self_attn/MatMul``, ``encoder.layer.5.output/Add``:
  :func:`scope_from_name`), else none ("");
- its *layer* is the scope up to the first index (``model.layers.3``,
  ``encoder.block.3``, ``transformer.h.7``); a scope without an index belongs to the
  module one level below the nearest container of the repeated blocks
  (``embeddings``, ``transformer.ln_f``, ``lm_head``), and the containers' own glue code
  (ops directly in ``model``) to no layer (:func:`layer_map`);
- a :class:`CutRule` (``--granularity layer``, ``--cut-at REGEX``) gives the ops of one
  group one colour class, so that every solver and the evaluator keep the group on one
  device (:func:`restrict_cuts`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

from placer.errors import InputError
from placer.graphs import UnionFind

if TYPE_CHECKING:
    from onnx import NodeProto

    from placer.problem import Placement, Problem

__all__ = [
    "SCOPES_KEY",
    "CutRule",
    "Granularity",
    "layer_map",
    "layer_ranges",
    "node_scope",
    "restrict_cuts",
    "scope_from_metadata",
    "scope_from_name",
    "split_group",
]

#: The node metadata key under which torch's dynamo exporter records module scopes.
SCOPES_KEY = "pkg.torch.onnx.name_scopes"
#: Longest metadata value parsed: a list of module paths is far shorter; a longer one
#: is not worth a parser's time (and a deeply nested literal could exhaust the stack).
_MAX_METADATA_CHARS = 16_384
_INDEX = re.compile(r"[0-9]+")


def scope_from_metadata(value: str) -> str | None:
    """The module scope recorded in a ``pkg.torch.onnx.name_scopes`` value, or None when
    the value is not a list of names.

    The exporter writes the ``repr`` of a list of cumulative module paths, the root
    ``''`` first and the node's own name last: ``"['', 'model', 'model.layers.0',
    'linear_3']"``. The scope is the deepest module path: the last entry, unless it does
    not extend the one before it (then it is the node's name, which never holds a dot).
    A list that does not start at the root (torch 2.13 writes
    ``['_empty_nn_module_stack_from_metadata_hook', 'sym_size_int_63']`` for shape
    computations outside any module) names no scope.

    Examples
    --------
    >>> scope_from_metadata("['', 'model', 'model.layers.0', 'model.layers.0.mlp', 'linear_3']")
    'model.layers.0.mlp'
    >>> scope_from_metadata("['', 'model', 'model.layers.0', 'model.layers.0.self_attn']")
    'model.layers.0.self_attn'
    >>> scope_from_metadata("['', 'add_7']")
    ''
    >>> scope_from_metadata("['_empty_nn_module_stack_from_metadata_hook', 'sym_size_int_6']")
    ''
    >>> scope_from_metadata("__import__('os')") is None
    True
    """
    if len(value) > _MAX_METADATA_CHARS:
        return None
    try:
        entries = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(entries, list | tuple) or not all(isinstance(e, str) for e in entries):
        return None
    entries = list(entries)
    if entries and entries[0] != "":
        # no module stack: the exporter writes a placeholder in place of the root
        # ('_empty_nn_module_stack_from_metadata_hook') for shape computations
        return ""
    if len(entries) >= 2 and not _extends(entries[-2], entries[-1]):
        entries.pop()  # the node's own name
    return entries[-1].strip(".") if entries else ""


def _extends(parent: str, child: str) -> bool:
    return bool(parent) and child.startswith(parent + ".")


def scope_from_name(name: str) -> str:
    """The module scope a ``/``-separated node name spells, else "".

    The last part names the op itself; the others are module names, joined with dots.

    Examples
    --------
    >>> scope_from_name("/model/layers.3/self_attn/q_proj/MatMul")
    'model.layers.3.self_attn.q_proj'
    >>> scope_from_name("encoder.layer.5.attention.self.query/MatMul")
    'encoder.layer.5.attention.self.query'
    >>> scope_from_name("/Constant_3"), scope_from_name("MatMul_12")
    ('', '')
    """
    parts = name.split("/")[:-1]
    return ".".join(part.strip(".") for part in parts if part.strip("."))


def node_scope(node: NodeProto) -> str:
    """The module scope of an ONNX node: its ``pkg.torch.onnx.name_scopes`` metadata
    when present and well formed, else its name's path (:func:`scope_from_name`)."""
    for prop in getattr(node, "metadata_props", ()):
        if prop.key == SCOPES_KEY:
            scope = scope_from_metadata(prop.value)
            if scope is not None:
                return scope
    return scope_from_name(node.name)


# -- layers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A layer: ``name`` (``encoder.layer.5``, ``embeddings``); for a repeated block,
    ``stack`` is its container's path (``encoder.layer``) and ``index`` its position."""

    name: str
    stack: str | None = None
    index: int = 0


def _indexed(parts: list[str]) -> int | None:
    """Position of the first index among a scope's parts, or None."""
    return next((i for i, part in enumerate(parts) if _INDEX.fullmatch(part)), None)


def layer_map(scopes: Iterable[str]) -> dict[str, Layer | None]:
    """The layer of each distinct scope of a model (None: no layer).

    Parameters
    ----------
    scopes : iterable of str
        Every scope of the model ("" for a node without one).

    Returns
    -------
    dict of str to Layer or None

    Notes
    -----
    A scope with an index (a part of digits only) belongs to the layer that ends at that
    index: ``model.layers.3.mlp`` to ``model.layers.3``, ``encoder.block.3.layer.0`` to
    ``encoder.block.3``. The paths before those indices are the *stacks*
    (``model.layers``). A scope without an index that is a stack or contains one
    (``model``) is glue code of no layer; any other belongs to the module one part below
    the longest path it shares with a stack (``model.norm`` beside ``model.layers``;
    ``lm_head``), or to its top-level module when the model has no stacks. Time is linear
    in the total length of the scopes.

    Examples
    --------
    >>> layers = layer_map(["model.embed_tokens", "model.layers.0.mlp", "model.layers.1",
    ...                     "model.norm", "model", "lm_head", ""])
    >>> [None if layer is None else layer.name for layer in layers.values()]
    ['model.embed_tokens', 'model.layers.0', 'model.layers.1', 'model.norm', None, 'lm_head', None]
    """
    distinct = list(dict.fromkeys(scopes))
    stacks: set[tuple[str, ...]] = set()
    for scope in distinct:
        parts = scope.split(".")
        position = _indexed(parts)
        if scope and position is not None:
            stacks.add(tuple(parts[:position]))
    result: dict[str, Layer | None] = {}
    for scope in distinct:
        if not scope:
            result[scope] = None
            continue
        parts = scope.split(".")
        position = _indexed(parts)
        if position is not None:
            stack = ".".join(parts[:position])
            name = ".".join(parts[: position + 1])
            result[scope] = Layer(name, stack, int(parts[position]))
            continue
        if any(stack[: len(parts)] == tuple(parts) for stack in stacks):
            result[scope] = None  # the blocks' container itself
            continue
        shared = max((_common(parts, stack) for stack in stacks), default=0)
        result[scope] = Layer(".".join(parts[: shared + 1]))
    return result


def _common(parts: Sequence[str], other: Sequence[str]) -> int:
    count = 0
    for a, b in zip(parts, other, strict=False):
        if a != b:
            break
        count += 1
    return count


def layer_ranges(
    stage_scopes: Sequence[Sequence[str]], layers: Mapping[str, Layer | None]
) -> list[tuple[list[str], str]]:
    """Each stage's layers, as names and as short text such as ``"embeddings, layers 0-2"``.

    Parameters
    ----------
    stage_scopes : sequence of sequence of str
        For each stage in pipeline order, the scopes of its ops in op order.
    layers : mapping of str to Layer or None
        :func:`layer_map` of the model's scopes.

    Returns
    -------
    list of (list of str, str)
        Per stage, the layers that have an op on it, in order of first appearance, and
        the text: runs of whole consecutive blocks become ranges (``layers 0-2``), other
        layers show their names (without the path of the blocks' container:
        ``ln_f`` for ``transformer.ln_f`` beside ``transformer.h``), and a layer whose ops
        lie on several stages is shown as ``part of layer 3``. When the model has several
        stacks, the stack's path replaces "layers" (``encoder.block 0-5``) and names are
        shown whole.

    Examples
    --------
    >>> layers = layer_map(["embeddings.word", "encoder.layer.0.a", "encoder.layer.1.a",
    ...                     "encoder.layer.1.b", "pooler"])
    >>> stages = [["embeddings.word", "encoder.layer.0.a", "encoder.layer.1.a"],
    ...           ["encoder.layer.1.b", "pooler"]]
    >>> [text for _, text in layer_ranges(stages, layers)]
    ['embeddings, layer 0, part of layer 1', 'part of layer 1, pooler']
    """
    order: list[list[Layer]] = []
    holders: dict[Layer, set[int]] = {}
    for s, scopes in enumerate(stage_scopes):
        seen: dict[Layer, None] = {}
        for scope in scopes:
            layer = layers.get(scope)
            if layer is not None:
                seen.setdefault(layer)
                holders.setdefault(layer, set()).add(s)
        order.append(list(seen))
    stacks = {layer.stack for layer in holders if layer.stack is not None}
    several = len(stacks) > 1
    # with one stack, names read relative to its container: 'ln_f' for transformer.ln_f
    wrapper = "" if several or not stacks else next(iter(stacks)).rpartition(".")[0]

    def named(layer: Layer) -> str:
        if wrapper and layer.name.startswith(wrapper + "."):
            return layer.name[len(wrapper) + 1 :]
        return layer.name

    def block(stack: str, lo: int, hi: int, part: bool = False) -> str:
        label = (stack or "layers") if several else ("layer" if lo == hi else "layers")
        span = str(lo) if lo == hi else f"{lo}-{hi}"
        return f"{'part of ' if part else ''}{label} {span}"

    result = []
    for stage in order:
        texts: list[str] = []
        run: tuple[str, int, int] | None = None
        for layer in stage:
            whole = len(holders[layer]) == 1
            if layer.stack is not None and whole:
                if run is not None and run[0] == layer.stack and layer.index == run[2] + 1:
                    run = (run[0], run[1], layer.index)
                    continue
                if run is not None:
                    texts.append(block(*run))
                run = (layer.stack, layer.index, layer.index)
                continue
            if run is not None:
                texts.append(block(*run))
                run = None
            if layer.stack is not None:
                texts.append(block(layer.stack, layer.index, layer.index, part=True))
            else:
                texts.append(f"{'' if whole else 'part of '}{named(layer)}")
        if run is not None:
            texts.append(block(*run))
        result.append(([layer.name for layer in stage], ", ".join(texts)))
    return result


# -- cuts ---------------------------------------------------------------------------------


class Granularity(str, Enum):
    """Where a pipeline may be cut (``--granularity``)."""

    OP = "op"
    LAYER = "layer"


#: Flags such as ``(?i)`` that Python accepts only at the start of a pattern.
_GLOBAL_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")


@dataclass(frozen=True)
class CutRule:
    """Which groups of ops a placement keeps whole: none (``op``), each layer
    (``--granularity layer``), or each prefix of a scope that ``cut_at`` matches
    (``--cut-at REGEX``; see :meth:`labeller`)."""

    granularity: Granularity = Granularity.OP
    cut_at: str | None = None

    def __post_init__(self) -> None:
        if self.cut_at is not None and self.granularity is Granularity.LAYER:
            raise InputError(
                "--cut-at and --granularity layer both say where to cut: give one of them"
            )

    @property
    def active(self) -> bool:
        """Whether the rule keeps any group whole."""
        return self.granularity is Granularity.LAYER or self.cut_at is not None

    @property
    def option(self) -> str:
        """The command-line option that sets the rule, for messages."""
        if self.cut_at is not None:
            return f"--cut-at '{self.cut_at}'"
        return f"--granularity {self.granularity.value}"

    def labeller(self, scopes: Iterable[str], model: str) -> Callable[[str], str | None]:
        """The group of each scope under this rule: a function of a scope, None for a
        scope whose ops are free.

        With ``--granularity layer`` the group is the scope's layer (:func:`layer_map`).
        With ``--cut-at REGEX`` it is the scope's prefix up to the end of the first match
        of REGEX that ends where a part of the scope ends (``layers\\.\\d+`` groups
        ``model.layers.3.mlp`` as ``model.layers.3``, and does not match
        ``model.layers.31`` at ``layers.3``).

        Raises
        ------
        InputError
            The model names no scopes, REGEX is not a regular expression or matches the
            empty string, or it matches no scope of the model.

        Examples
        --------
        >>> label = CutRule(cut_at=r"layers\\.\\d+").labeller(["model.layers.3.mlp"], "m")
        >>> label("model.layers.3.mlp"), label("model.norm")
        ('model.layers.3', None)
        """
        scopes = [scope for scope in dict.fromkeys(scopes) if scope]
        if not scopes:
            raise InputError(
                f"{self.option}: {model} names no module scopes (neither "
                f"{SCOPES_KEY} metadata nor '/'-separated node names), so there is nothing "
                "to cut between"
            )
        if self.cut_at is None:
            layers = layer_map(scopes)
            return lambda scope: None if layers.get(scope) is None else layers[scope].name
        pattern = _compile(self.cut_at, self.option)
        labels: dict[str, str | None] = {}

        def label(scope: str) -> str | None:
            if scope not in labels:
                match = pattern.search(scope) if scope else None
                labels[scope] = scope[: match.end()] if match else None
            return labels[scope]

        if not any(label(scope) is not None for scope in scopes):
            raise InputError(
                f"{self.option}: matches no node's scope in {model} (scopes look like "
                f"{scopes[len(scopes) // 2]!r}; a match must end where a part of the scope "
                r"ends, before a '.' or at its end: 'layers\.\d+', not 'layer')"
            )
        return label


def _compile(text: str, option: str) -> re.Pattern[str]:
    """``--cut-at``'s pattern, made to end where a part of the scope ends."""
    flags = _GLOBAL_FLAGS.match(text)
    head = flags.group(0) if flags else ""
    try:
        plain = re.compile(text)
        body = text[len(head):] + ("\n" if "x" in head else "")  # ends a verbose comment
        pattern = re.compile(f"{head}(?:{body})(?=\\.|$)")
    except re.error as err:
        raise InputError(f"{option}: not a regular expression ({err})") from err
    if plain.fullmatch(""):
        raise InputError(
            f"{option}: matches the empty string; give a pattern that names modules, "
            r"such as 'layers\.\d+'"
        )
    return pattern


def restrict_cuts(problem: Problem, rule: CutRule, model: str) -> Problem:
    """``problem`` with the ops of each group of ``rule`` in one colour class.

    Ops with the same colour share a device in every solver and in the evaluator, so no
    placement of the result cuts inside a group. Ops whose scopes fall in no group keep
    their colour (a backward op shares its forward op's). ``model`` names the input in
    messages.

    Raises
    ------
    InputError
        As :meth:`CutRule.labeller`.

    Notes
    -----
    Linear in the number of ops and their members, plus the union-find's near-constant
    factor.
    """
    if not rule.active:
        return problem
    label = rule.labeller((s for op in problem.ops for s in op.scopes), model)
    groups = [[label(scope) for scope in op.scopes] for op in problem.ops]
    grouped, count = colour_groups(problem, groups)
    what = "layer" if rule.cut_at is None else "group of scopes it matches"
    note = f"{rule.option}: each {what} stays on one device ({count} in all)"
    return replace(grouped, notes=(*problem.notes, note))


def colour_groups(
    problem: Problem, groups: Sequence[Iterable[Hashable | None]]
) -> tuple[Problem, int]:
    """``problem`` with the ops that share a group in one colour class, and the number
    of groups: ``groups[u]`` are op ``u``'s groups (None: none).  Ops with the same
    colour share a device in every solver and in the evaluator, so no placement of the
    result splits a group; an op of no group keeps its colour."""
    sets = UnionFind()
    first: dict[Hashable, int] = {}
    for op, keys in zip(problem.ops, groups, strict=True):
        for key in keys:
            if key is not None:
                sets.union(op.color, first.setdefault(key, op.color))
    find = sets.find
    ops = tuple(
        op if find(op.color) == op.color else replace(op, color=find(op.color))
        for op in problem.ops
    )
    return replace(problem, ops=ops), len(first)


def split_group(
    problem: Problem, placement: Placement, rule: CutRule, model: str
) -> tuple[str, str, str] | None:
    """The first group of ``rule`` that ``placement`` puts on two devices, as ``(group,
    device, other device)`` (in device order), or None when it keeps every group whole."""
    if not rule.active:
        return None
    label = rule.labeller((s for op in problem.ops for s in op.scopes), model)
    home: dict[str, int] = {}
    for op, device in zip(problem.ops, placement.device_of_op, strict=True):
        for scope in op.scopes:
            group = label(scope)
            if group is None:
                continue
            first = home.setdefault(group, device)
            if first != device:
                a, b = sorted((first, device))
                return group, problem.devices[a].name, problem.devices[b].name
    return None
