"""Shapes placer can trust: the graph inputs' symbolic dimensions fixed from the batch
size and ``--input-shape``, then ONNX's shape inference and, for the tensors it leaves
unknown, onnxruntime's symbolic shape inference.

Two given shapes that size one symbolic dimension differently are an error naming both
inputs; what is still unknown afterwards is reported, never silently guessed.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
from onnx import GraphProto, ModelProto, NodeProto, TensorProto

from placer.errors import ModelLoadError
from placer.frontends.onnx_checks import check_elements
from placer.frontends.onnx_nodes import MAX_READ_ELEMENTS, is_default_domain, shape_of, subgraphs
from placer.util.text import first_line


def real_inputs(graph: GraphProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs fed at run time (old models list their initializers as inputs)."""
    weights = {init.name for init in graph.initializer}
    return [
        value
        for value in graph.input
        if value.name not in weights and value.type.HasField("tensor_type")
    ]


def leading_dim(input_shapes: Mapping[str, Sequence[int]]) -> int:
    """The batch size ``input_shapes`` imply: the leading dim they all share, else 1.

    >>> leading_dim({"input_ids": (8, 128), "attention_mask": (8, 128)}), leading_dim({})
    (8, 1)
    """
    values = {shape[0] for shape in input_shapes.values() if shape}
    return values.pop() if len(values) == 1 else 1


def fix_input_dims(
    model: ModelProto, path: Path, batch_size: int, given: dict[str, Sequence[int]],
    explicit: bool = False,
) -> tuple[ModelProto, bool]:
    """A copy of ``model`` whose graph inputs have concrete dims, and whether any changed;
    ``explicit``: the user gave ``batch_size``, which some input must then take."""
    inputs = real_inputs(model.graph)
    names = [value.name for value in inputs]
    _check_given(path, names, given)
    symbols = _symbol_sizes(path, inputs, batch_size, given)
    resolved = _resolved_dims(path, inputs, batch_size, given, symbols)
    if explicit:
        _check_batch_applies(path, inputs, batch_size, given)
    changed = any(
        [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
        != resolved[v.name]
        for v in inputs
    )
    if not changed:
        return model, False
    fixed = ModelProto()
    fixed.CopyFrom(model)
    by_name = {value.name: value for value in fixed.graph.input}
    for name, sizes in resolved.items():
        shape = by_name[name].type.tensor_type.shape
        shape.ClearField("dim")
        for size in sizes:
            shape.dim.add().dim_value = size
    drop_recorded_shapes(fixed.graph)  # recorded for other sizes, they would contradict
    return fixed, True


def drop_recorded_shapes(graph: GraphProto) -> None:
    """Clear the shapes ``graph`` records for its intermediate tensors and outputs, so
    that shape inference derives them from the inputs' and weights' sizes alone."""
    del graph.value_info[:]
    for output in graph.output:
        if output.type.HasField("tensor_type"):
            output.type.tensor_type.ClearField("shape")




def fixed_dims_overridden(model: ModelProto, given: Mapping[str, Sequence[int]]
                          ) -> list[tuple[str, int, int, int]]:  # fmt: skip
    """``(input, axis, the model's size, the given size)`` for each dim the model fixes
    that ``--input-shape`` (``given``, already checked) sets to another size."""
    found = []
    for value in real_inputs(model.graph):
        tensor_type = value.type.tensor_type
        if value.name not in given or not tensor_type.HasField("shape"):
            continue
        for axis, (dim, size) in enumerate(zip(tensor_type.shape.dim, given[value.name],
                                               strict=False)):  # fmt: skip
            if dim.HasField("dim_value") and dim.dim_value > 0 and dim.dim_value != int(size):
                found.append((value.name, axis, dim.dim_value, int(size)))
    return found


def _check_given(path: Path, names: list[str], given: dict[str, Sequence[int]]) -> None:
    """Refuse ``--input-shape`` values for no input, or with a dim below 1."""
    strangers = sorted(set(given) - set(names))
    if strangers:
        raise ModelLoadError(
            f"{path}: --input-shape names no input of the model: {', '.join(strangers)} "
            f"(its inputs: {', '.join(names) or 'none'})"
        )
    for name, dims in given.items():
        if not dims or any(int(d) < 1 for d in dims):
            raise ModelLoadError(
                f"{path}: --input-shape {name}=... needs positive dims, got {list(dims)}"
            )


def _symbol_sizes(path: Path, inputs, batch_size: int, given) -> dict[str, int]:
    """The size of each symbolic dim: as the user's shapes pin it down, then the batch
    size for the leading symbol of the inputs they leave out; one size per symbol, used
    for every input (two sizes for one symbol are refused, naming both sources)."""
    symbols: dict[str, int] = {}
    source: dict[str, str] = {}  # where each symbol got its size: "NAME axis I"
    for value in inputs:
        if value.name not in given:
            continue
        tensor_type = value.type.tensor_type
        dims = list(tensor_type.shape.dim) if tensor_type.HasField("shape") else None
        wanted = [int(d) for d in given[value.name]]
        if dims is not None and len(dims) != len(wanted):
            raise ModelLoadError(
                f"{path}: --input-shape {value.name} has {len(wanted)} dims, "
                f"the input has {len(dims)}"
            )
        for axis, (dim, size) in enumerate(zip(dims or (), wanted, strict=False)):
            if not dim.dim_param:
                continue
            where = f"{value.name} axis {axis}"
            if symbols.setdefault(dim.dim_param, size) != size:
                raise ModelLoadError(
                    f"{path}: --input-shape gives dim {dim.dim_param!r} two sizes: "
                    f"{symbols[dim.dim_param]} ({source[dim.dim_param]}) and {size} ({where})"
                )
            source.setdefault(dim.dim_param, where)
    for value in inputs:
        tensor_type = value.type.tensor_type
        if value.name in given or not tensor_type.HasField("shape"):
            continue
        dims = list(tensor_type.shape.dim)
        if dims and not dims[0].HasField("dim_value") and dims[0].dim_param:
            symbol = dims[0].dim_param
            if symbols.setdefault(symbol, batch_size) != batch_size:
                raise ModelLoadError(
                    f"{path}: dim {symbol!r} would take two sizes: {symbols[symbol]} from "
                    f"--input-shape ({source[symbol]}) and the batch size {batch_size} "
                    f"({value.name} axis 0); pass --batch-size {symbols[symbol]}, or "
                    f"--input-shape {value.name}=..."
                )

    return symbols


def _check_batch_applies(path: Path, inputs, batch_size: int, given) -> None:
    """Refuse a batch size (given by the user) the model's inputs leave no room for: no
    input is named by ``--input-shape`` and every input of one or more dims fixes its
    leading one at another size (the onnx package's test models fix theirs), or above 1
    where every input is a scalar: the costs would stay those of the model's own batch
    while the throughput counted ``batch_size`` samples a step."""
    if given:
        return
    fixed = []
    for value in inputs:
        tensor_type = value.type.tensor_type
        dims = list(tensor_type.shape.dim) if tensor_type.HasField("shape") else []
        if not dims:
            continue  # a scalar has no batch
        if not dims[0].HasField("dim_value") or dims[0].dim_value in (0, batch_size):
            return  # the batch fills this input's leading dim
        fixed.append((value.name, [d.dim_value if d.HasField("dim_value") else None
                                   for d in dims]))  # fmt: skip
    if not fixed:  # every input a scalar (the loop returns at any that takes the batch)
        if batch_size > 1:
            raise ModelLoadError(
                f"{path}: --batch-size {batch_size} changes nothing: no input of the model "
                "has an axis to take it (its inputs are scalars, or it has none)"
            )
        return
    name, dims = fixed[0]
    shown = ",".join("?" if d is None else str(d) for d in dims)
    wanted = ",".join([str(batch_size)] + ["D" if d is None else str(d) for d in dims[1:]])
    raise ModelLoadError(
        f"{path}: --batch-size {batch_size} changes nothing: input {name} has a fixed "
        f"batch of {dims[0]} ({shown}); pass --input-shape {name}={wanted} to cost "
        "another batch"
    )


def _resolved_dims(path: Path, inputs, batch_size: int, given, symbols) -> dict[str, list[int]]:
    """Every graph input's concrete dims (refused when some stay unknown, or the
    tensor would hold more elements than placer handles)."""
    resolved: dict[str, list[int]] = {}
    unresolved: list[str] = []
    for value in inputs:
        tensor_type = value.type.tensor_type
        if value.name in given:
            resolved[value.name] = [int(d) for d in given[value.name]]
            continue
        if not tensor_type.HasField("shape"):
            unresolved.append(f"{value.name} (rank unknown)")
            continue
        sizes: list[int] = []
        missing: list[str] = []
        for axis, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                sizes.append(dim.dim_value)
            elif dim.dim_param in symbols:
                sizes.append(symbols[dim.dim_param])
            elif axis == 0:
                sizes.append(batch_size)
            else:
                missing.append(f"axis {axis} '{dim.dim_param or '?'}'")
        if missing:
            unresolved.append(f"{value.name} ({', '.join(missing)})")
        resolved[value.name] = sizes
    if unresolved:
        first = unresolved[0].split(" (")[0]
        raise ModelLoadError(
            f"{path}: unknown input dims: {'; '.join(unresolved)}; pass "
            f"--input-shape {first}=D0,D1,... (a size for each axis; a named dim that "
            "inputs share is given once) to fix them"
        )
    # Before the dims go into the proto (int64) and through shape inference (whose
    # products would overflow).
    for name, sizes in resolved.items():
        if name in given:
            hint = f" (--input-shape {name})"
        else:
            hint = f" (at --batch-size {batch_size})" if batch_size != 1 else ""
        check_elements(path, f"graph input {name!r}", sizes, hint)

    return resolved


#: Seconds ONNX shape inference may take before the model is refused: far more than any
#: real model needs (GPT-2 with 48 layers: a few seconds), and a malformed op can make
#: it loop forever.
SHAPE_INFERENCE_SECONDS = 120.0
#: Memory ONNX shape inference may take beyond the process's own: its data propagation
#: computes small tensors' values, and a ``Range`` of 2**62 elements would fill the machine.
SHAPE_INFERENCE_BYTES = 2 * 2**30
#: Seconds onnxruntime's symbolic shape inference may take before its shapes are done
#: without: it is Python over sympy, and reruns after merging dims (GPT-2 with 48 layers
#: exported by torch's dynamo exporter, 6,246 nodes: about 2 s).
SYMBOLIC_INFERENCE_SECONDS = 180.0


def inferred_shapes(model: ModelProto, changed: bool) -> tuple[ModelProto, tuple[str, ...]]:
    """Shapes from two passes: ONNX shape inference, then, for the tensors it leaves
    unknown, onnxruntime's symbolic shape inference; and the notes they call for.

    ONNX's shapes are kept wherever it finds them. The second pass runs only when a
    tensor some node reads is still unknown, and its failure only leaves them unknown.
    """
    notes: list[str] = []
    inferred = infer_shapes(model)
    if inferred is None:
        note = "ONNX shape inference failed; costs use the shapes the model records"
        if changed:
            note += " (recorded output shapes were dropped for the new input dims)"
        notes.append(note)
        inferred = model
    needed, known = tensor_shapes(inferred.graph)
    missing = needed - known
    if not missing:
        return inferred, tuple(notes)
    found, failure = symbolic_shapes(model, missing)
    if failure:
        notes.append(f"onnxruntime's symbolic shape inference failed: {failure}")
    if not found:
        return inferred, tuple(notes)
    merged = ModelProto()
    merged.CopyFrom(inferred)
    merged.graph.value_info.extend(found)
    notes.append(
        f"onnxruntime's symbolic shape inference found {len(found):,} tensor "
        f"shape{'s' if len(found) != 1 else ''} ONNX shape inference left unknown"
    )
    return merged, tuple(notes)


def tensor_shapes(graph: GraphProto) -> tuple[set[str], set[str]]:
    """The node outputs some node or graph output reads, in ``graph`` and its subgraphs
    (the tensors whose shapes the costs need), and those of them whose shapes are known.

    Examples
    --------
    >>> from onnx import TensorProto, helper
    >>> nodes = [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    >>> needed, known = tensor_shapes(helper.make_graph(nodes, "g", [x], [y]))
    >>> sorted(needed), sorted(known)
    (['h', 'y'], [])
    """
    made: set[str] = set()
    read: set[str] = set()
    known: set[str] = set()

    def walk(scope: GraphProto) -> None:
        read.update(value.name for value in scope.output)
        for value in (*scope.input, *scope.value_info, *scope.output):
            if shape_of(value.type) is not None:
                known.add(value.name)
        for node in scope.node:
            outputs = [name for name in node.output if name]
            made.update(outputs)
            read.update(node.input)
            if node.op_type == "Constant" and is_default_domain(node):
                known.update(outputs)  # the builder reads their shapes off the attribute
            for _, sub in subgraphs(node):
                walk(sub)

    walk(graph)
    needed = made & read
    return needed, needed & known


def symbolic_shapes(
    model: ModelProto, wanted: Iterable[str]
) -> tuple[list[onnx.ValueInfoProto], str]:
    """The concrete shapes onnxruntime's symbolic shape inference finds for ``wanted``
    tensors of the main graph, and why it failed ("" if it did not).

    ``SymbolicShapeInference`` [1]_ computes shapes with sympy where ONNX's inference
    gives up: arithmetic on shapes (``Div``, ``Range``), ``com.microsoft`` ops, shapes
    merged across broadcasts (``auto_merge``). It runs in a child process under
    :data:`SYMBOLIC_INFERENCE_SECONDS` and :data:`SHAPE_INFERENCE_BYTES`, with its
    standard output and error sent nowhere (it logs, and may raise), on a copy of
    ``model`` whose large or external weights are graph inputs of their shape
    (:func:`_weights_as_inputs`) and whose ``Constant`` nodes hold tensors
    (:func:`_constants_as_tensors`), with ``SplitToSequence`` inferred as ONNX defines
    it (:func:`_symbolic_engine`). Its loop is run here rather than through
    ``infer_shapes``, which on an incomplete result throws the partial shapes away and
    saves the model into the current directory. onnxruntime is imported in the child
    only.

    Parameters
    ----------
    model : ModelProto
        The model with concrete graph-input dims.
    wanted : iterable of str
        Names of tensors of the main graph whose shapes are asked for.

    Returns
    -------
    list of ValueInfoProto
        One per wanted tensor it gave every dimension of.
    str
        The reason it failed or timed out, or "" (its partial result is still returned).

    References
    ----------
    .. [1] onnxruntime, ``onnxruntime/tools/symbolic_shape_infer.py``.
    """
    from placer.util.isolate import IsolatedFailure, IsolatedTimeout, run_isolated

    wanted = frozenset(wanted)
    caller = os.getpid()

    def infer() -> bytes:
        light = model
        if os.getpid() == caller:  # no fork: work on a copy, not the caller's model
            light = ModelProto()
            light.CopyFrom(model)
        _weights_as_inputs(light.graph)
        _constants_as_tensors(light.graph)
        found = GraphProto()  # the shapes, and in doc_string why it stopped early
        with _silenced():
            engine = _symbolic_engine()
            try:
                engine._preprocess(light)
                while engine.run_:  # infer_shapes's loop: it reruns after merging dims
                    if not engine._infer_impl():
                        break  # stopped at a node it cannot infer: keep what it found
                engine._update_output_from_vi()
            except Exception as err:  # its partial shapes are still good
                found.doc_string = first_line(err)
            graph = engine.out_mp_.graph if hasattr(engine, "out_mp_") else GraphProto()
            for value in (*graph.value_info, *graph.output):
                if value.name in wanted and shape_of(value.type) is not None:
                    found.value_info.add().CopyFrom(value)
        return found.SerializeToString()

    try:
        data = run_isolated(infer, SYMBOLIC_INFERENCE_SECONDS, memory=SHAPE_INFERENCE_BYTES)
    except IsolatedTimeout:
        return [], f"it did not finish within {SYMBOLIC_INFERENCE_SECONDS:g} s"
    except IsolatedFailure as err:  # not installed, out of memory, ...
        return [], str(err)
    found = GraphProto()
    found.ParseFromString(data)
    values = {value.name: value for value in found.value_info}  # one per tensor
    return list(values.values()), found.doc_string


#: onnxruntime's symbolic shape inference, as a module name.
_SYMBOLIC_MODULE = "onnxruntime.tools.symbolic_shape_infer"


def _symbolic_module() -> Any:
    """onnxruntime's ``symbolic_shape_infer`` module, loaded from its file where it is not
    loaded yet: imported by its name, it first runs ``onnxruntime/tools/__init__.py``,
    which imports torch wherever torch is installed (2 of the 2.5 s that import took
    here, for nothing the inference uses; practitioners who export models have torch).
    The module needs numpy, onnx, sympy and packaging only."""
    import importlib.util

    if _SYMBOLIC_MODULE in sys.modules:
        return sys.modules[_SYMBOLIC_MODULE]
    found = importlib.util.find_spec("onnxruntime")  # finds the package, runs nothing
    where = found.submodule_search_locations if found is not None else None
    if where:
        path = Path(next(iter(where))) / "tools" / "symbolic_shape_infer.py"
        spec = importlib.util.spec_from_file_location(_SYMBOLIC_MODULE, path)
        if path.is_file() and spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            sys.modules[_SYMBOLIC_MODULE] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[_SYMBOLIC_MODULE]
                raise
            return module
    return importlib.import_module(_SYMBOLIC_MODULE)  # a layout this does not know


def _symbolic_engine() -> Any:
    """onnxruntime's ``SymbolicShapeInference`` (``auto_merge`` on, no rank guessing),
    with ``SplitToSequence`` inferred as ONNX defines it.

    onnxruntime 1.32 infers ``SplitToSequence`` as a ``Split`` with one output per
    piece (it has one, the sequence) through a helper ONNX 1.19 removed; torch's dynamo
    exporter splits each attention's QKV projection this way, so without this no shape
    after the first attention is found. The sequence's elements get the input's shape
    with the split axis sized by the pieces where they are all equal (unknown otherwise).
    """
    import numpy as np

    ssi = _symbolic_module()

    class Engine(ssi.SymbolicShapeInference):
        def __init__(self) -> None:
            super().__init__(2**31 - 1, True, False, 0)
            self.dispatcher_["SplitToSequence"] = self._split_to_sequence

        def _split_to_sequence(self, node: NodeProto) -> None:
            shape: list[Any] = self._get_sympy_shape(node, 0)
            axis = ssi.handle_negative_axis(ssi.get_attribute(node, "axis", 0), len(shape))
            split = self._try_get_value(node, 1) if len(node.input) > 1 else None
            if split is None:  # pieces of one along the axis, which keepdims may drop
                if ssi.get_attribute(node, "keepdims", 1):
                    shape[axis] = 1
                else:
                    del shape[axis]
            else:
                pieces = [int(p) if ssi.is_literal(p) else None for p in np.ravel(split)]
                whole = int(shape[axis]) if ssi.is_literal(shape[axis]) else None
                equal = len(set(pieces)) == 1 and None not in pieces and pieces[0] > 0
                if equal and np.ndim(split) == 0:  # a scalar: pieces of that size, the
                    equal = whole is not None and whole % pieces[0] == 0  # last maybe less
                shape[axis] = pieces[0] if equal else None
            elem_type = self.known_vi_[node.input[0]].type.tensor_type.elem_type
            self.known_vi_[node.output[0]].CopyFrom(
                onnx.helper.make_tensor_sequence_value_info(
                    node.output[0], elem_type, ssi.get_shape_from_sympy_shape(shape)
                )
            )

    return Engine()


def _weights_as_inputs(graph: GraphProto) -> None:
    """Turn the initializers of ``graph`` placer never reads the values of (over
    :data:`MAX_READ_ELEMENTS` elements, or stored in external files) into graph inputs
    of their type and shape: onnxruntime's symbolic inference reads the values of every
    initializer an arithmetic op takes (a ``Mul`` by a norm's weight), from the external
    file if need be, which placer never reads."""
    declared = {value.name for value in graph.input}
    large = [
        index
        for index, init in enumerate(graph.initializer)
        if math.prod(init.dims) > MAX_READ_ELEMENTS or init.data_location == TensorProto.EXTERNAL
    ]
    for index in reversed(large):
        init = graph.initializer[index]
        if init.name not in declared:
            graph.input.append(
                onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
            )
        del graph.initializer[index]


def _constants_as_tensors(graph: GraphProto) -> None:
    """Rewrite each ``Constant`` of ``graph`` (and its subgraphs) that holds its value in
    ``value_int(s)``, ``value_float(s)`` or ``value_string(s)`` to hold it in ``value``:
    onnxruntime's symbolic inference reads ``value`` only (torch's exporters write
    ``value_ints``), and raises on the others."""
    kinds = {
        "value_int": (TensorProto.INT64, "i", False),
        "value_ints": (TensorProto.INT64, "ints", True),
        "value_float": (TensorProto.FLOAT, "f", False),
        "value_floats": (TensorProto.FLOAT, "floats", True),
        "value_string": (TensorProto.STRING, "s", False),
        "value_strings": (TensorProto.STRING, "strings", True),
    }
    for node in graph.node:
        for _, sub in subgraphs(node):
            _constants_as_tensors(sub)
        if node.op_type != "Constant" or not is_default_domain(node) or len(node.attribute) != 1:
            continue
        attr = node.attribute[0]
        if attr.name not in kinds:
            continue
        elem_type, field_name, is_list = kinds[attr.name]
        values = list(getattr(attr, field_name)) if is_list else [getattr(attr, field_name)]
        dims = [len(values)] if is_list else []
        name = node.output[0] if node.output else ""
        tensor = onnx.helper.make_tensor(name, elem_type, dims, values)
        del node.attribute[:]
        node.attribute.add().CopyFrom(onnx.helper.make_attribute("value", tensor))


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Send whatever is written to standard output and error, by Python or by native
    code, nowhere, and put both back after."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1)
        os.dup2(sink, 2)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, sink):
            os.close(fd)


def infer_shapes(model: ModelProto) -> ModelProto | None:
    """``model`` with the shapes ONNX shape inference finds (with data propagation, then
    without), or None when inference fails.

    Inference runs in a child process (:func:`placer.util.isolate.run_isolated`) so that
    Ctrl-C and :data:`SHAPE_INFERENCE_SECONDS` stop it whatever it does; only shapes
    travel back (large weights are left out, then put back from ``model``).

    Raises
    ------
    ModelLoadError
        Shape inference did not finish within :data:`SHAPE_INFERENCE_SECONDS`.
    """
    from placer.util.isolate import IsolatedFailure, IsolatedTimeout, run_isolated

    deadline = time.monotonic() + SHAPE_INFERENCE_SECONDS
    for options in ({"data_prop": True}, {}):

        def infer(options=options) -> bytes:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, **options)
            _drop_weight_data(inferred.graph)
            return inferred.SerializeToString()

        try:
            data = run_isolated(
                infer, max(0.0, deadline - time.monotonic()), memory=SHAPE_INFERENCE_BYTES
            )
        except IsolatedTimeout as err:
            raise ModelLoadError(
                f"{model.graph.name or 'the model'}: ONNX shape inference did not finish "
                f"within {SHAPE_INFERENCE_SECONDS:g} s (a malformed op?)"
            ) from err
        except IsolatedFailure:  # a lenient second try, then none
            continue
        inferred = ModelProto()
        inferred.ParseFromString(data)
        _restore_weight_data(inferred.graph, model.graph)
        return inferred
    return None


def _drop_weight_data(graph: GraphProto) -> None:
    """Clear the values of the initializers too large for placer ever to read."""
    for tensor in graph.initializer:
        if math.prod(tensor.dims) > MAX_READ_ELEMENTS:
            tensor.ClearField("raw_data")
            for name in ("float_data", "int32_data", "int64_data", "double_data",
                         "uint64_data", "string_data"):  # fmt: skip
                tensor.ClearField(name)


def _restore_weight_data(inferred: GraphProto, original: GraphProto) -> None:
    """Put back the initializers :func:`_drop_weight_data` emptied (same order)."""
    for mine, theirs in zip(inferred.initializer, original.initializer, strict=True):
        if math.prod(theirs.dims) > MAX_READ_ELEMENTS:
            mine.CopyFrom(theirs)
