"""Cut an ONNX model into one submodel per stage of a plan (``placer split``).

The model is loaded with its weights.  Each stage's submodel holds the stage's nodes in
the model's order, the initializers they read, and the constant nodes they consume
(:func:`placer.frontends.onnx_graph.constant_nodes`: weight generators and computations on
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

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import GraphProto, ModelProto, NodeProto, helper, numpy_helper

from placer import __version__
from placer.errors import InputError, ModelLoadError, PlanFormatError
from placer.frontends.onnx_graph import (
    folded_nodes,
    load_onnx,
    op_positions,
    read_model_with_weights,
)
from placer.frontends.onnx_nodes import node_reads
from placer.frontends.plans import load_plan_document
from placer.frontends.shapes import infer_shapes
from placer.outputs.check import checked_plan
from placer.util.fileio import TEMP_PREFIX, check_output_directory, current_umask, write_output
from placer.util.inputs import load_json, read_text
from placer.util.interrupts import deferred_interrupt
from placer.util.safe_yaml import shown
from placer.util.text import first_line, printable

MANIFEST = "manifest.json"
#: The manifest's ``generator``: with each file's size and SHA-256, how a later split
#: recognises a directory it may replace.
GENERATOR = f"placer {__version__}"


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
    file_size: int
    sha256: str

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
            "file_size": self.file_size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class SplitManifest:
    """What :func:`split_model` wrote: the stages in pipeline order and the cuts.

    ``shapes_estimated`` of the model's ``tensor_count`` tensors had their shapes
    estimated (:attr:`placer.frontends.onnx_graph.OpGraph.unknown_shapes`), so that the bytes at
    the cuts may be too; neither is written to the manifest file.
    """

    model: str
    stages: tuple[StageFile, ...]
    graph_inputs: tuple[str, ...]
    graph_outputs: tuple[str, ...]
    shapes_estimated: int = 0
    tensor_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        cuts = [
            {"after_stage": stage.index, "bytes": stage.bytes_out} for stage in self.stages[:-1]
        ]
        return {
            "generator": GENERATOR,
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
    batch_size: int | None = None,
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
        Created if missing; the submodels are ``stage_<i>_<device>.onnx``.  It must be
        new, empty, or hold an earlier split (its manifest and the files it lists,
        unchanged), which this one replaces; entries placer did not write are kept.
    batch_size, input_shapes
        Shapes at which the bytes crossing each cut are counted.

    Returns
    -------
    SplitManifest

    Raises
    ------
    InputError
        ``out_dir`` holds files but no earlier split, is or holds the model or the plan,
        or cannot be written (the message names it and the reason); ``out_dir`` is then
        left as it was.
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
    # refuse before minutes of work
    _existing(_target(out_dir), printable(str(out_dir)))
    check_output_directory(out_dir, {"the model": model_path, "the plan": plan_path})
    built = build_split(model_path, plan_path, batch_size=batch_size, input_shapes=input_shapes)
    _write(out_dir, built.manifest, list(built.contents))
    return built.manifest


@dataclass(frozen=True)
class Split:
    """A split made in memory: the manifest, each stage's serialised submodel in
    pipeline order, and the shapes of the graph inputs it was made at."""

    manifest: SplitManifest
    contents: tuple[bytes, ...]
    input_shapes: Mapping[str, tuple[int, ...]]


def build_split(
    model_path: str | Path,
    plan_path: str | Path,
    *,
    batch_size: int | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> Split:
    """The submodels of :func:`split_model`, made in memory and written nowhere
    (``placer run`` writes them to a directory of its own).

    Raises
    ------
    PlanFormatError, ModelLoadError
        As :func:`split_model`.
    """
    model_path, plan_path = Path(model_path), Path(plan_path)
    stages = plan_stages(plan_path)
    _refuse_backward(stages, plan_path)
    graph = load_onnx(model_path, batch_size=batch_size, input_shapes=input_shapes)
    cut = _Cut.of(model_path, graph, stages, plan_path)
    files: list[StageFile] = []
    contents: list[bytes] = []  # written once every stage has passed the checker
    for s, stage in enumerate(stages):
        file, data = cut.submodel(s, stage["device"])
        files.append(file)
        contents.append(data)
    files = cut.with_bytes_out(files)
    manifest = SplitManifest(
        model_path.name, tuple(files), tuple(cut.graph_inputs), tuple(cut.graph_outputs),
        len(graph.unknown_shapes), graph.tensor_count,
    )  # fmt: skip
    return Split(manifest, tuple(contents), dict(graph.input_shapes))


def plan_stages(plan_path: Path) -> list[dict[str, Any]]:
    """The stages of the plan at ``plan_path``: placer's own output, checked whole
    (:func:`~placer.outputs.check.read_plan_document`), or a plan that gives only
    ``stages`` of ``device`` and ``nodes``, as ``evaluate`` reads it.

    Raises
    ------
    PlanFormatError
        One line naming the field at fault.
    """
    document = load_plan_document(plan_path)
    if isinstance(document, dict) and "placer_version" in document:
        return checked_plan(document, str(plan_path))["stages"]
    if not isinstance(document, dict) or not isinstance(document.get("stages"), list):
        raise PlanFormatError(
            f"{plan_path}: expected an object with 'stages' (a list of {{device, nodes}}), "
            "as placer place --format json writes"
        )
    stages = document["stages"]
    if not stages:
        raise PlanFormatError(f"{plan_path}: stages is empty")
    for s, stage in enumerate(stages):
        if not isinstance(stage, dict):
            raise PlanFormatError(f"{plan_path}: stages[{s}] must be an object, got {shown(stage)}")
        if not isinstance(stage.get("device"), str) or not stage["device"]:
            raise PlanFormatError(f"{plan_path}: stages[{s}].device must be a device name")
        if not isinstance(stage.get("nodes"), list):
            raise PlanFormatError(f"{plan_path}: stages[{s}].nodes must be a list of node names")
    return stages


def _refuse_backward(stages, plan_path: Path) -> None:
    """Refuse a training plan: only forward ops make submodels."""
    for s, stage in enumerate(stages):
        backward = [n for n in stage["nodes"] if isinstance(n, str) and n.endswith("/grad")]
        if backward:
            raise PlanFormatError(
                f"{plan_path}: stages[{s}] holds backward op {backward[0]!r}: only "
                "inference plans (forward ops) can be split into submodels; place the "
                "model with --mode inference"
            )


@dataclass(frozen=True)
class _Cut:
    """A model cut by a plan: each node's stages (``stage_of``: a placed op's one, a
    folded node's or side computation's every stage that reads it), folded ``Shape``
    and ``Size`` nodes as constants, and what each tensor's readers and bytes are."""

    model_path: Path
    model: ModelProto
    folded: frozenset[int]
    side: frozenset[int]
    as_constant: dict[int, NodeProto]
    stage_of: list[set[int]]
    readers: dict[str, set[int]]
    tensor_bytes: dict[str, float]
    typed: dict[str, onnx.ValueInfoProto]

    @classmethod
    def of(cls, model_path: Path, graph, stages, plan_path: Path) -> _Cut:
        model = read_model_with_weights(model_path)
        # the Shape/Size nodes placer folded (their input's shape is known) become constants
        shape_values = dict(graph.shape_constants)
        folded = folded_nodes(model.graph, graph)
        as_constant = {
            index: _constant_node(node, shape_values[node.output[0]])
            for index, node in enumerate(model.graph.node)
            if index in folded and node.output and node.output[0] in shape_values
        }
        names = op_positions(model.graph, graph, model_path)
        # side computations run, like folded nodes, in every stage that reads them
        side_names = {graph.nodes[k].name for k in graph.replicated}
        side = {index for index, name in names.items() if name in side_names}
        placed = {index: name for index, name in names.items() if index not in side}
        stage_of = _stage_of_nodes(model.graph, placed, stages, plan_path, side_names)
        _check_order(model.graph, stage_of, plan_path)
        readers: dict[str, set[int]] = {}
        for index, node in enumerate(model.graph.node):
            for name in node_reads(as_constant.get(index, node)):
                readers.setdefault(name, set()).update(stage_of[index])
        tensor_bytes = {edge.tensor: edge.bytes for edge in graph.edges}
        return cls(model_path, model, frozenset(folded), frozenset(side), as_constant,
                   stage_of, readers, tensor_bytes, _value_infos(model))  # fmt: skip

    # what every stage's submodel reads, worked out once for all of them

    @cached_property
    def initializers(self) -> dict[str, onnx.TensorProto]:
        return {init.name: init for init in self.model.graph.initializer}

    @cached_property
    def sparse(self) -> dict[str, onnx.SparseTensorProto]:
        return {init.values.name: init for init in self.model.graph.sparse_initializer}

    @cached_property
    def graph_inputs(self) -> list[str]:
        initializers = self.initializers
        return [v.name for v in self.model.graph.input if v.name not in initializers]

    @cached_property
    def graph_outputs(self) -> list[str]:
        return [v.name for v in self.model.graph.output]

    @cached_property
    def made_by_folded(self) -> set[str]:
        """What folded nodes and side computations make: every stage that reads it makes
        it itself, so it never crosses a cut."""
        main = self.model.graph
        return {name for i in self.folded | self.side for name in main.node[i].output}

    def submodel(self, s: int, device: str) -> tuple[StageFile, bytes]:
        """Stage ``s``'s submodel (checked by the ONNX checker) and its manifest entry."""
        model, main, model_path = self.model, self.model.graph, self.model_path
        initializers, sparse = self.initializers, self.sparse
        graph_outputs, made_by_folded = self.graph_outputs, self.made_by_folded
        members = [i for i, node in enumerate(main.node) if s in self.stage_of[i]]
        nodes = [self.as_constant.get(i, main.node[i]) for i in members]
        produced = [name for node in nodes for name in node.output if name]
        produced_set = set(produced)
        reads = list(dict.fromkeys(name for node in nodes for name in node_reads(node)))
        inputs = [n for n in reads if n not in produced_set and n not in initializers]
        inputs = [n for n in inputs if n not in sparse]
        outputs = [
            n for n in produced
            if n in graph_outputs
            or (n not in made_by_folded and any(r > s for r in self.readers.get(n, ())))
        ]  # fmt: skip
        used_inits = [initializers[n] for n in reads if n in initializers]
        value_inputs = [_value_info(self.typed, n, model_path) for n in inputs]
        if model.ir_version < 4:  # before IR 4, every initializer is also a graph input
            value_inputs += [_value_info(self.typed, i.name, model_path) for i in used_inits]
        sub_graph = helper.make_graph(
            nodes,
            f"{main.name or model_path.stem}_stage{s + 1}",
            value_inputs,
            [_value_info(self.typed, n, model_path) for n in outputs],
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
            raise ModelLoadError(
                f"{model_path}: the submodel of stage {s + 1} ({device}) fails the "
                f"ONNX checker: {first_line(err)}"
            ) from err
        file = f"stage_{s + 1}_{re.sub(r'[^A-Za-z0-9]+', '_', device)}.onnx"
        data = sub.SerializeToString()
        graph_inputs = self.graph_inputs
        bytes_in = float(
            sum(self.tensor_bytes.get(n, 0.0) for n in inputs if n not in graph_inputs)
        )
        entry = StageFile(s + 1, file, device, tuple(inputs), tuple(outputs), len(nodes),
                          bytes_in, 0.0, len(data), hashlib.sha256(data).hexdigest())  # fmt: skip
        return entry, data

    def with_bytes_out(self, files: list[StageFile]) -> list[StageFile]:
        """``files`` with the bytes crossing the cut after each stage: the tensors made
        up to it and read after it (none after the last)."""
        made_in = {}
        for index, node in enumerate(self.model.graph.node):
            for name in node.output:
                placed = index not in self.folded and index not in self.side
                if name and placed and self.stage_of[index]:
                    made_in.setdefault(name, min(self.stage_of[index]))
        out = []
        for s, file in enumerate(files):
            crossing = {
                name for name, stage in made_in.items()
                if stage <= s and any(r > s for r in self.readers.get(name, ()))
            }  # fmt: skip
            total = float(sum(self.tensor_bytes.get(name, 0.0) for name in crossing))
            out.append(replace(file, bytes_out=total if s < len(files) - 1 else 0.0))
        return out


def _write(out_dir: Path, manifest: SplitManifest, contents: list[bytes]) -> None:
    """Write the submodels and the manifest into a new directory beside ``out_dir``, then
    swap it in for ``out_dir``.

    Until the swap, ``out_dir`` is left exactly as it was, whatever fails (no space left,
    Ctrl-C).  The swap holds Ctrl-C: it moves the old directory aside, moves the new one
    in, moves over the files placer did not write, and deletes the old split's files.
    """
    target = _target(out_dir)
    shown = printable(str(out_dir))
    earlier = _existing(target, shown)
    clash = [name for name in earlier.foreign if name in {s.file for s in manifest.stages}]
    if clash:
        raise InputError(
            f"{shown}: {printable(clash[0])} is not a file of the earlier split, and this "
            "split would write over it; move it away, or split into another directory"
        )
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{shown}: cannot create the output directory ({_reason(err)})") from err
    staging = None
    try:
        with deferred_interrupt():  # so that a Ctrl-C cannot lose track of the directory
            staging = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=parent)
        _take_over_mode(staging, earlier)
        for stage, data in zip(manifest.stages, contents, strict=True):
            write_output(Path(staging, stage.file), data, shown_as=str(out_dir / stage.file))
        document = json.dumps(manifest.to_dict(), indent=2) + "\n"
        write_output(Path(staging, MANIFEST), document, shown_as=str(out_dir / MANIFEST))
        _swap(Path(staging), target, earlier, shown)
        staging = None
    except BaseException as err:
        with deferred_interrupt():
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)  # only what this split wrote
        if isinstance(err, OSError):
            where = printable(str(parent))
            raise InputError(
                f"{shown}: cannot write the split (placer builds it in a new directory in "
                f"{where} and swaps it in): {_reason(err)}"
            ) from err
        raise


@dataclass(frozen=True)
class _Existing:
    """What the output directory holds before a split: nothing (``exists`` False), or
    the files of an earlier split (``ours``) and entries placer did not write (``foreign``)."""

    exists: bool
    mode: int = 0
    owner: tuple[int, int] = (-1, -1)
    ours: frozenset[str] = frozenset()
    foreign: tuple[str, ...] = ()


def _target(out_dir: Path) -> Path:
    """Where the split goes: ``out_dir``, or the directory a symbolic link names (the
    link stays a link)."""
    return Path(os.path.realpath(out_dir))


def _existing(target: Path, shown: str) -> _Existing:
    """What ``target`` holds; refuses a directory a split may not replace."""
    try:
        info = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return _Existing(exists=False)
    except OSError as err:
        raise InputError(f"{shown}: cannot use as the output directory: {_reason(err)}") from err
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(f"{shown}: is not a directory; name a directory for the split")
    here = os.getcwd()
    if here == str(target) or here.startswith(str(target).rstrip(os.sep) + os.sep):
        raise InputError(
            f"{shown}: holds the current directory, and placer split replaces the whole "
            "directory; run it from another directory"
        )
    try:
        entries = os.listdir(target)
    except OSError as err:
        raise InputError(f"{shown}: cannot use as the output directory: {_reason(err)}") from err
    existing = _Existing(True, stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid))
    if not entries:
        return existing
    ours = _earlier_split(target)
    if ours is None:
        if MANIFEST in entries:
            raise InputError(
                f"{shown}: its {MANIFEST} was not written by placer split, or the files it "
                "lists have changed since; placer split replaces only an earlier split of "
                "its own: split into a new or empty directory"
            )
        raise InputError(
            f"{shown}: is not empty and holds no earlier placer split; split into a new or "
            "empty directory"
        )
    foreign = tuple(sorted(name for name in entries if name not in ours))
    return replace(existing, ours=frozenset(ours), foreign=foreign)


_STAGE_FILE = re.compile(r"stage_\d+_[A-Za-z0-9_]*\.onnx")


def _earlier_split(directory: Path) -> set[str] | None:
    """The files (the manifest included) of the split placer wrote into ``directory``, or
    None if its manifest is missing, another program's, or its files have changed since.

    A split is recognised by its manifest's ``generator`` and by each listed file still
    having the size and SHA-256 the manifest records, which a manifest written by hand
    or by another program does not hold by accident.
    """
    try:
        text = read_text(directory / MANIFEST, what="a split manifest", max_bytes=64 * 2**20)
        document = load_json(text, MANIFEST)
    except InputError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("stages"), list):
        return None
    generator = document.get("generator")
    if not isinstance(generator, str) or not generator.startswith("placer "):
        return None
    names = {MANIFEST}
    for stage in document["stages"]:
        if not isinstance(stage, dict):
            return None
        file, size, digest = stage.get("file"), stage.get("file_size"), stage.get("sha256")
        if not (
            isinstance(file, str) and _STAGE_FILE.fullmatch(file)
            and isinstance(size, int) and isinstance(digest, str)
            and _same_file(directory / file, size, digest)
        ):  # fmt: skip
            return None
        names.add(file)
    return names


def _same_file(path: Path, size: int, digest: str) -> bool:
    """Whether ``path`` is a regular file (not a link) of ``size`` bytes and SHA-256
    ``digest``."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest() == digest
    except OSError:
        return False


def _take_over_mode(directory: str, earlier: _Existing) -> None:
    """Give the new directory the old one's permissions and owner (mkdtemp makes it
    private), or the usual ones for a new directory."""
    if not earlier.exists:
        os.chmod(directory, 0o777 & ~current_umask())
        return
    os.chmod(directory, earlier.mode)
    if earlier.owner != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):  # only root may give a directory away
            os.chown(directory, *earlier.owner)


def _swap(staging: Path, target: Path, earlier: _Existing, shown: str) -> None:
    """Put ``staging`` in ``target``'s place, carrying over what placer did not write.

    Ctrl-C is held throughout, so the swap is never left half-done.
    """
    with deferred_interrupt():
        aside = None
        if earlier.exists:
            aside = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=target.parent))
            try:
                os.rename(target, aside)  # over the empty directory mkdtemp made
            except OSError:
                os.rmdir(aside)
                raise
        try:
            os.rename(staging, target)
        except OSError:
            if aside is not None:
                os.rename(aside, target)
            raise
        if aside is None:
            return
        try:
            for name in earlier.foreign:
                os.rename(aside / name, target / name)
        except OSError as err:
            raise InputError(
                f"{shown}: the new split is written, but {printable(name)} (not placer's) "
                f"could not be moved back into it ({_reason(err)}): it is in "
                f"{printable(str(aside))}"
            ) from err
        for name in earlier.ours:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(aside / name)
        os.rmdir(aside)


def _reason(err: OSError) -> str:
    text = err.strerror or str(err)
    return text[:1].lower() + text[1:]


def run_split(directory: str | Path, feeds: Mapping[str, Any]) -> dict[str, Any]:
    """Run a split's submodels in order with onnxruntime; returns the model's outputs.

    Raises
    ------
    InputError
        onnxruntime, a dependency of placer, is missing (``pip install onnxruntime``), or the
        directory holds no manifest.
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise InputError(
            "running a split needs onnxruntime, a dependency of placer: pip install onnxruntime"
        ) from err
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


def _constant_node(node: NodeProto, value: tuple[int, ...]) -> NodeProto:
    """A ``Constant`` making what the folded ``Shape``/``Size`` ``node`` makes."""
    array = np.array(value if node.op_type == "Shape" else value[0], dtype=np.int64)
    return helper.make_node(
        "Constant", [], [node.output[0]], name=node.name,
        value=numpy_helper.from_array(array, node.output[0]),
    )  # fmt: skip


def _stage_of_nodes(
    main: GraphProto,
    names: dict[int, str],
    stages: list[dict[str, Any]],
    plan: Path,
    side: set[str] = frozenset(),
) -> list[set[int]]:
    """The stages each node runs on: one for an op, every reader's for a folded node or
    a side computation (whose names in ``side`` a plan may list: they are ignored)."""
    index_of = {name: index for index, name in names.items()}
    stage_of: list[set[int]] = [set() for _ in main.node]
    for s, stage in enumerate(stages):
        for key in stage["nodes"]:
            if isinstance(key, str) and key in side:
                continue  # an older plan placed it; every reader's stage makes it now
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
        for name in node_reads(node):
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
        for name in node_reads(node):
            if name in made_in and stage_of[index] and made_in[name] > min(stage_of[index]):
                raise PlanFormatError(
                    f"{plan}: stage {min(stage_of[index]) + 1} reads tensor {name!r}, which "
                    f"stage {made_in[name] + 1} produces later: the stages are not in "
                    "pipeline order"
                )


def _value_infos(model: ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """Types of every tensor of the main graph, from ONNX shape inference."""
    # inference can fail on odd models: keep the declared types
    graph = (infer_shapes(model) or model).graph
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
