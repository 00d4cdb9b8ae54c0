"""Cut an ONNX model into one submodel per stage of a plan (``placer split``).

The model is loaded with its weights.  Each stage's submodel holds the stage's nodes in
the model's order, the initializers they read, and the constant nodes they consume
(:func:`placer.onnx_graph.constant_nodes`: weight generators and computations on
weights only, which placer folds into their consumer): a constant node goes with every
stage that reads its output, together with the constant nodes and initializers it
reads in turn.  Its inputs are the tensors it reads from the graph inputs or from
earlier stages; its outputs are what later stages read, and the model's outputs it
produces.  ``manifest.json`` lists the stages in pipeline order with their files,
devices, input and output tensors, and the bytes that cross each cut at the shapes
given (``--input-shape``, ``--batch-size``).

Running the submodels in order, each fed from the graph inputs and the outputs of the
stages before it (:func:`run_split`), computes what the whole model computes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import onnx
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, helper

from placer.check import read_plan_document
from placer.errors import InputError, ModelLoadError, PlanFormatError
from placer.fileio import write_atomic
from placer.onnx_graph import OpGraph, constant_nodes, load_onnx

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StageFile:
    """One submodel of a split, as the manifest lists it."""

    index: int
    file: str
    device: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    nodes: int
    bytes_in: float
    bytes_out: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "file": self.file,
            "device": self.device,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "nodes": self.nodes,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }


@dataclass(frozen=True)
class SplitManifest:
    """What :func:`split_model` wrote: the stages in pipeline order and the cuts."""

    model: str
    stages: tuple[StageFile, ...]
    graph_inputs: tuple[str, ...]
    graph_outputs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        cuts = [
            {"after_stage": stage.index, "bytes": stage.bytes_out} for stage in self.stages[:-1]
        ]
        return {
            "model": self.model,
            "inputs": list(self.graph_inputs),
            "outputs": list(self.graph_outputs),
            "stages": [stage.to_dict() for stage in self.stages],
            "cuts": cuts,
        }


def split_model(
    model_path: str | Path,
    plan_path: str | Path,
    out_dir: str | Path,
    *,
    batch_size: int = 1,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> SplitManifest:
    """Write one ONNX submodel per stage of the plan, and ``manifest.json``, to ``out_dir``.

    Parameters
    ----------
    model_path : str or Path
        The ``.onnx`` model the plan was made for.
    plan_path : str or Path
        placer's JSON plan (``placer place MODEL --format json``); its ``stages[].nodes``
        are ONNX node names, stages in pipeline order.
    out_dir : str or Path
        Created if missing; the submodels are ``stage_<i>_<device>.onnx``.
    batch_size, input_shapes
        Shapes at which the bytes crossing each cut are counted.

    Returns
    -------
    SplitManifest

    Raises
    ------
    PlanFormatError
        The plan is malformed, is a training plan (backward ops cannot be split into
        inference submodels), names a node the model lacks, leaves a node out, or has a
        stage that reads from a later one.
    ModelLoadError
        The model cannot be read, or a submodel fails the ONNX checker.

    Notes
    -----
    Linear in the size of the model plus ONNX shape inference and checking.
    """
    model_path, plan_path, out_dir = Path(model_path), Path(plan_path), Path(out_dir)
    document = read_plan_document(plan_path)
    stages = document["stages"]
    for s, stage in enumerate(stages):
        backward = [n for n in stage["nodes"] if isinstance(n, str) and n.endswith("/grad")]
        if backward:
            raise PlanFormatError(
                f"{plan_path}: stages[{s}] holds backward op {backward[0]!r}: only "
                "inference plans (forward ops) can be split into submodels; place the "
                "model with --mode inference"
            )
    graph = load_onnx(model_path, batch_size=batch_size, input_shapes=input_shapes)
    model = _load_with_weights(model_path)
    folded = constant_nodes(model.graph)
    names = _placer_names(model.graph, graph, folded, model_path)
    stage_of = _stage_of_nodes(model.graph, names, stages, plan_path)
    _check_order(model.graph, stage_of, plan_path)

    typed = _value_infos(model)
    main = model.graph
    initializers = {init.name: init for init in main.initializer}
    sparse = {init.values.name: init for init in main.sparse_initializer}
    graph_inputs = [v.name for v in main.input if v.name not in initializers]
    graph_outputs = [v.name for v in main.output]
    readers: dict[str, set[int]] = {}
    for index, node in enumerate(main.node):
        for name in _reads(node):
            readers.setdefault(name, set()).update(stage_of[index])
    # every stage that reads a folded tensor makes it itself: it never crosses a cut
    made_by_folded = {name for i in folded for name in main.node[i].output}
    tensor_bytes = {edge.tensor: edge.bytes for edge in graph.edges}

    files: list[StageFile] = []
    contents: list[bytes] = []  # written once every stage has passed the checker
    for s, stage in enumerate(stages):
        members = [i for i, node in enumerate(main.node) if s in stage_of[i]]
        nodes = [main.node[i] for i in members]
        produced = [name for node in nodes for name in node.output if name]
        produced_set = set(produced)
        reads = list(dict.fromkeys(name for node in nodes for name in _reads(node)))
        inputs = [n for n in reads if n not in produced_set and n not in initializers]
        inputs = [n for n in inputs if n not in sparse]
        outputs = [
            n for n in produced
            if n in graph_outputs
            or (n not in made_by_folded and any(r > s for r in readers.get(n, ())))
        ]  # fmt: skip
        used_inits = [initializers[n] for n in reads if n in initializers]
        value_inputs = [_value_info(typed, n, model_path) for n in inputs]
        if model.ir_version < 4:  # before IR 4, every initializer is also a graph input
            value_inputs += [_value_info(typed, i.name, model_path) for i in used_inits]
        sub_graph = helper.make_graph(
            nodes,
            f"{main.name or model_path.stem}_stage{s + 1}",
            value_inputs,
            [_value_info(typed, n, model_path) for n in outputs],
            initializer=used_inits,
            sparse_initializer=[sparse[n] for n in reads if n in sparse],
        )
        sub = helper.make_model(
            sub_graph,
            opset_imports=list(model.opset_import),
            producer_name="placer split",
            ir_version=model.ir_version,
        )
        sub.functions.extend(model.functions)
        try:
            onnx.checker.check_model(sub, full_check=True)
        except Exception as err:  # the checker raises several unrelated types
            line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelLoadError(
                f"{model_path}: the submodel of stage {s + 1} ({stage['device']}) fails the "
                f"ONNX checker: {line}"
            ) from err
        file = f"stage_{s + 1}_{re.sub(r'[^A-Za-z0-9]+', '_', stage['device'])}.onnx"
        contents.append(sub.SerializeToString())
        bytes_in = float(sum(tensor_bytes.get(n, 0.0) for n in inputs if n not in graph_inputs))
        files.append(
            StageFile(s + 1, file, stage["device"], tuple(inputs), tuple(outputs), len(nodes),
                      bytes_in, 0.0)
        )  # fmt: skip

    # the bytes crossing the cut after stage s: tensors made up to s and read after it
    made_in = {}
    for index, node in enumerate(main.node):
        for name in node.output:
            if name and index not in folded and stage_of[index]:
                made_in.setdefault(name, min(stage_of[index]))
    for s in range(len(files)):
        crossing = {
            name for name, stage in made_in.items()
            if stage <= s and any(r > s for r in readers.get(name, ()))
        }  # fmt: skip
        total = float(sum(tensor_bytes.get(name, 0.0) for name in crossing))
        files[s] = replace(files[s], bytes_out=total if s < len(files) - 1 else 0.0)
    manifest = SplitManifest(
        model_path.name, tuple(files), tuple(graph_inputs), tuple(graph_outputs)
    )
    _write(out_dir, manifest, contents)
    return manifest


def _write(out_dir: Path, manifest: SplitManifest, contents: list[bytes]) -> None:
    """Write the submodels and the manifest, and remove the submodels of an earlier
    split into ``out_dir`` that this one does not replace (so the directory holds one
    split, not a mix)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out_dir}: cannot create the output directory ({err.strerror})") from err
    stale = _listed_files(out_dir / MANIFEST) - {stage.file for stage in manifest.stages}
    for stage, data in zip(manifest.stages, contents, strict=True):
        write_atomic(out_dir / stage.file, data)
    write_atomic(out_dir / MANIFEST, json.dumps(manifest.to_dict(), indent=2) + "\n")
    for name in stale:
        (out_dir / name).unlink(missing_ok=True)


def _listed_files(manifest: Path) -> set[str]:
    """The stage files an existing manifest lists (none if it is absent or unreadable)."""
    try:
        document = json.loads(manifest.read_text())
        return {
            stage["file"] for stage in document["stages"]
            if re.fullmatch(r"stage_\d+_[A-Za-z0-9_]*\.onnx", stage["file"])
        }  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def run_split(directory: str | Path, feeds: Mapping[str, Any]) -> dict[str, Any]:
    """Run a split's submodels in order with onnxruntime; returns the model's outputs.

    Raises
    ------
    InputError
        onnxruntime is not installed (``pip install placer[runtime]``), or the
        directory holds no manifest.
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise InputError("running a split needs onnxruntime: pip install placer[runtime]") from err
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{directory}: no readable {MANIFEST}: {err}") from err
    values = dict(feeds)
    for stage in manifest["stages"]:
        session = ort.InferenceSession(
            str(directory / stage["file"]), providers=["CPUExecutionProvider"]
        )
        wanted = [i.name for i in session.get_inputs()]
        results = session.run(stage["outputs"], {name: values[name] for name in wanted})
        values.update(zip(stage["outputs"], results, strict=True))
    return {name: values[name] for name in manifest["outputs"]}


# -- helpers ---------------------------------------------------------------------------


def _load_with_weights(path: Path) -> ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as err:  # protobuf and onnx raise many unrelated types here
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"{path}: cannot load the model with its weights ({reason})") from err


def _subgraphs(node: NodeProto) -> Iterator[GraphProto]:
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == AttributeProto.GRAPHS:
            yield from attr.graphs


def _outer(graph: GraphProto) -> set[str]:
    """Names a subgraph reads from enclosing scopes."""
    defined = {v.name for v in graph.input} | {i.name for i in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(name for name in node.input if name)
        for sub in _subgraphs(node):
            used |= _outer(sub)
        defined.update(node.output)
    return used - defined


def _reads(node: NodeProto) -> list[str]:
    """Every tensor a node reads: its inputs, then what its subgraphs read from outside."""
    names = [name for name in node.input if name]
    extra: set[str] = set()
    for sub in _subgraphs(node):
        extra |= _outer(sub)
    return names + sorted(extra - set(names))


def _placer_names(
    main: GraphProto, graph: OpGraph, folded: frozenset[int], path: Path
) -> dict[int, str]:
    """placer's name of every node of ``main`` that is an op of ``graph`` (by index).

    The names follow :func:`placer.onnx_graph.load_onnx`: the node's name, else
    ``<OpType>_<index>``, with ``_<index>`` appended to a repeated name.  The nodes it
    folded (``folded``, the constant nodes) are left out.
    """
    ops = iter(graph.nodes)
    op = next(ops, None)
    used: set[str] = set()
    names: dict[int, str] = {}
    for index, node in enumerate(main.node):
        if index in folded:
            continue
        name = node.name or f"{node.op_type}_{index}"
        if name in used:
            name = f"{name}_{index}"
        if op is None or op.name != name or op.op_type != node.op_type:
            raise ModelLoadError(f"{path}: node {name!r} does not match placer's graph")
        names[index] = name
        used.add(name)
        op = next(ops, None)
    if op is not None:
        raise ModelLoadError(f"{path}: op {op.name!r} of placer's graph is not in the model")
    return names


def _stage_of_nodes(
    main: GraphProto, names: dict[int, str], stages: list[dict[str, Any]], plan: Path
) -> list[set[int]]:
    """The stages each node runs on: one for an op, every reader's for a folded node."""
    index_of = {name: index for index, name in names.items()}
    stage_of: list[set[int]] = [set() for _ in main.node]
    for s, stage in enumerate(stages):
        for key in stage["nodes"]:
            index = index_of.get(key) if isinstance(key, str) else None
            if index is None:
                raise PlanFormatError(f"{plan}: stages[{s}]: node {key!r} is not in the model")
            if stage_of[index]:
                raise PlanFormatError(f"{plan}: stages[{s}]: node {key!r} is placed twice")
            stage_of[index] = {s}
    missing = [names[i] for i in names if not stage_of[i]]
    if missing:
        raise PlanFormatError(
            f"{plan}: node {missing[0]!r} of the model is in no stage (is the plan for "
            "another model, or made with different options?)"
        )
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(main.node):
        for name in _reads(node):
            consumers.setdefault(name, []).append(index)
    # Readers come later in the graph, so a folded node's readers, folded ones included,
    # have their stages by the time it is reached.  A folded node makes no graph output.
    for index in reversed(range(len(main.node))):
        if index in names:
            continue
        for name in main.node[index].output:
            for reader in consumers.get(name, ()):
                stage_of[index] |= stage_of[reader]
    return stage_of


def _check_order(main: GraphProto, stage_of: list[set[int]], plan: Path) -> None:
    """No stage may read what a later stage produces."""
    made_in: dict[str, int] = {}
    for index, node in enumerate(main.node):
        for name in node.output:
            if name and stage_of[index]:
                made_in[name] = min(stage_of[index])
    for index, node in enumerate(main.node):
        for name in _reads(node):
            if name in made_in and stage_of[index] and made_in[name] > min(stage_of[index]):
                raise PlanFormatError(
                    f"{plan}: stage {min(stage_of[index]) + 1} reads tensor {name!r}, which "
                    f"stage {made_in[name] + 1} produces later: the stages are not in "
                    "pipeline order"
                )


def _value_infos(model: ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """Types of every tensor of the main graph, from ONNX shape inference."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference can fail on odd models: keep the declared types
        inferred = model
    graph = inferred.graph
    infos: dict[str, onnx.ValueInfoProto] = {}
    for init in graph.initializer:
        infos[init.name] = helper.make_tensor_value_info(init.name, init.data_type, init.dims)
    for value in (*graph.value_info, *graph.input, *graph.output):
        infos[value.name] = value
    return infos


def _value_info(typed: dict[str, onnx.ValueInfoProto], name: str, path: Path):
    info = typed.get(name)
    if info is None or not info.type.ListFields():
        raise ModelLoadError(
            f"{path}: ONNX shape inference cannot tell the type of tensor {name!r}, which "
            "crosses a stage boundary; declare it in the model's value_info"
        )
    return info
