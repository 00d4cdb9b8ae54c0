"""Export the transformer models of ``make bench-transformers`` to graph-only ONNX files.

``python bench/build_transformers.py [--out DIR] [--force] [--models NAME ...]``

Each model is built from a ``transformers`` config with random weights (nothing is
downloaded) and exported with PyTorch's dynamo exporter [1]_, batch and sequence left
symbolic so that ``placer --batch-size`` / ``--input-shape`` fix them. Where the symbolic
export fails, the model is exported again with the static shapes of :data:`STATIC` and the
script says so. Only the graph is kept: the weights file the exporter writes beside it
(``.onnx.data``) is dropped (placer reads parameter shapes, never their values), and so are
the node metadata that hold local paths (``pkg.torch.onnx.stack_trace``,
``pkg.torch.onnx.fx_node``); the module path of each node (``pkg.torch.onnx.name_scopes``)
stays, since placer names layers after it.

The models (:data:`MODELS`):

``llama``
    Llama-style decoder [2]_: 12 layers, hidden 2048, 16 heads over 4 key/value heads
    (grouped-query attention), intermediate 5632, vocabulary 32000, no KV cache; inputs
    ``input_ids`` and ``attention_mask``.
``t5``
    T5-small encoder-decoder [3]_ (``T5Config()`` defaults but ``use_cache=False``: the
    exporter cannot return transformers' ``EncoderDecoderCache``); inputs ``input_ids``,
    ``attention_mask``, ``decoder_input_ids``.
``vit``
    ViT-Base/16 [4]_ (``ViTConfig()``), input ``pixel_values`` (224 × 224).
``gpt2_48``, ``gpt2_48_raw``
    GPT-2 with 48 layers (``GPT2Config(n_layer=48)``, the width of GPT-2 small), no KV
    cache, inputs ``input_ids`` and ``attention_mask``; exported with the exporter's
    graph optimisation (default) and without it (``_raw``), since users produce both.

Only ``torch``, ``transformers`` and ``onnxscript`` (which the exporter needs) are used,
and only here: ``placer`` never imports them. Install them with ``pip install -e
'.[bench]'`` after torch's CPU build (see the Makefile's ``bench-transformers``). Each
export takes 10–60 s and a few GB of memory (Llama's random weights are 2.7 GB).

References
----------
.. [1] PyTorch documentation. torch.onnx: the TorchDynamo-based ONNX exporter
   (``torch.onnx.export(..., dynamo=True)``).
.. [2] Touvron et al. (2023). LLaMA: Open and Efficient Foundation Language Models. arXiv
   2302.13971; grouped-query attention: Ainslie et al. (2023). GQA. EMNLP.
.. [3] Raffel et al. (2020). Exploring the Limits of Transfer Learning with a Unified
   Text-to-Text Transformer. JMLR 21(140).
.. [4] Dosovitskiy et al. (2021). An Image is Worth 16x16 Words: Transformers for Image
   Recognition at Scale. ICLR.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "models"

#: Node metadata that hold local file paths and the FX source of each node.
STRIPPED_METADATA = ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node")

#: The sizes of the static fallback, and the ones the bench fixes symbolic dims to.
BATCH, SEQ, IMAGE = 8, 128, 224

#: Sizes the model is traced with when its dims stay symbolic: distinct from each other
#: and from 0 and 1, which torch.export would specialise on.
_TRACE_BATCH, _TRACE_SEQ, _TRACE_DECODER_SEQ = 2, 16, 12


@dataclass(frozen=True)
class ModelSpec:
    """One model to export: how to build it and the shape of each input.

    ``inputs`` maps each graph input to its dims, a symbolic dim named by a string
    (``"batch"``, ``"seq"``, ``"decoder_seq"``) and a fixed one by an int.
    """

    name: str
    inputs: dict[str, tuple[str | int, ...]]
    build: Callable[[], object]
    optimize: bool = True
    vocab: int = 0
    doc: str = ""

    def shape(self, name: str, sizes: dict[str, int]) -> tuple[int, ...]:
        """Input ``name``'s shape with each symbolic dim given its size in ``sizes``."""
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.inputs[name])

    def input_shapes(self, batch: int = BATCH, seq: int = SEQ) -> dict[str, tuple[int, ...]]:
        """Every input's full shape at ``batch`` × ``seq`` (the decoder's seq too)."""
        sizes = {"batch": batch, "seq": seq, "decoder_seq": seq}
        return {name: self.shape(name, sizes) for name in self.inputs}


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        num_hidden_layers=12, hidden_size=2048, num_attention_heads=16,
        num_key_value_heads=4, intermediate_size=5632, vocab_size=32000, use_cache=False,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def _t5():
    from transformers import T5Config, T5ForConditionalGeneration

    # In the config, not on the model: the decoder stack copies it when it is built.
    return T5ForConditionalGeneration(T5Config(use_cache=False))


def _vit():
    from transformers import ViTConfig, ViTModel

    return ViTModel(ViTConfig())


def _gpt2_48():
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(n_layer=48, use_cache=False))


_TEXT = {"input_ids": ("batch", "seq"), "attention_mask": ("batch", "seq")}

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("llama", dict(_TEXT), _llama, vocab=32000,
                  doc="Llama-style decoder, 12 layers, hidden 2048, GQA 16/4 heads"),
        ModelSpec("t5", {**_TEXT, "decoder_input_ids": ("batch", "decoder_seq")}, _t5,
                  vocab=32128, doc="T5-small encoder-decoder"),
        ModelSpec("vit", {"pixel_values": ("batch", 3, IMAGE, IMAGE)}, _vit,
                  doc="ViT-Base/16, 224 × 224"),
        ModelSpec("gpt2_48", dict(_TEXT), _gpt2_48, vocab=50257,
                  doc="GPT-2, 48 layers, exporter-optimised graph"),
        ModelSpec("gpt2_48_raw", dict(_TEXT), _gpt2_48, optimize=False, vocab=50257,
                  doc="GPT-2, 48 layers, graph as translated (optimize=False)"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Built:
    """What :func:`export` did: the file, how long it took, its node count, and whether
    the symbolic export failed and static shapes were used instead (with the reason)."""

    path: Path
    seconds: float
    nodes: int
    static_reason: str = ""


def _example_inputs(spec: ModelSpec, sizes: dict[str, int]) -> dict:
    import torch

    generator = torch.Generator().manual_seed(0)
    inputs = {}
    for name in spec.inputs:
        shape = spec.shape(name, sizes)
        if name == "pixel_values":
            inputs[name] = torch.randn(shape, generator=generator)
        elif name == "attention_mask":
            inputs[name] = torch.ones(shape, dtype=torch.long)
        else:
            inputs[name] = torch.randint(0, spec.vocab, shape, generator=generator)
    return inputs


def _dynamic_shapes(spec: ModelSpec) -> dict:
    from torch.export import Dim

    dims: dict[str, Dim] = {}
    return {
        name: {
            axis: dims.setdefault(d, Dim(d)) for axis, d in enumerate(dims_) if isinstance(d, str)
        }
        for name, dims_ in spec.inputs.items()
    }


def _root_cause(err: BaseException) -> str:
    """The innermost exception of ``err``'s chain in one line (the exporter wraps it)."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = str(err).strip().splitlines() or [""]
    return f"{type(err).__name__}: {lines[0][:300]}"


def strip_metadata(model) -> int:
    """Remove :data:`STRIPPED_METADATA` from every node of ``model``, subgraphs included.

    Returns
    -------
    int
        How many entries were removed.
    """
    from onnx import AttributeProto

    removed = 0

    def strip(graph) -> None:
        nonlocal removed
        for node in graph.node:
            keep = [p for p in node.metadata_props if p.key not in STRIPPED_METADATA]
            removed += len(node.metadata_props) - len(keep)
            del node.metadata_props[:]
            node.metadata_props.extend(keep)
            for attribute in node.attribute:
                if attribute.type == AttributeProto.GRAPH:
                    strip(attribute.g)
                for sub in attribute.graphs:
                    strip(sub)

    strip(model.graph)
    for function in model.functions:
        strip(function)
    return removed


def export(spec: ModelSpec, path: Path) -> Built:
    """Build ``spec``'s model with random weights and write its graph to ``path``.

    Parameters
    ----------
    spec : ModelSpec
        The model and its inputs.
    path : Path
        The ``.onnx`` file to write (graph only; no ``.data`` file is left beside it).

    Returns
    -------
    Built
        The file, export seconds, node count and, when the symbolic export failed, why.
    """
    import onnx
    import torch

    started = time.perf_counter()
    torch.manual_seed(0)
    model = spec.build().eval()
    static_reason = ""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        scratch = Path(tmp) / path.name
        with torch.no_grad(), warnings.catch_warnings():
            # The exporter warns for every axis it renames and every deprecated treespec.
            warnings.simplefilter("ignore")
            trace = {"batch": _TRACE_BATCH, "seq": _TRACE_SEQ, "decoder_seq": _TRACE_DECODER_SEQ}
            try:
                torch.onnx.export(
                    model, (), scratch, kwargs=_example_inputs(spec, trace),
                    input_names=list(spec.inputs), dynamic_shapes=_dynamic_shapes(spec),
                    dynamo=True, external_data=True, optimize=spec.optimize,
                )  # fmt: skip
            except Exception as err:  # the exporter raises many types; any means "retry static"
                static_reason = _root_cause(err)
                print(f"{spec.name}: the symbolic export failed ({static_reason}); exporting "
                      f"with static shapes {spec.input_shapes()}", flush=True)  # fmt: skip
                fixed = {"batch": BATCH, "seq": SEQ, "decoder_seq": SEQ}
                torch.onnx.export(
                    model, (), scratch, kwargs=_example_inputs(spec, fixed),
                    input_names=list(spec.inputs), dynamo=True, external_data=True,
                    optimize=spec.optimize,
                )  # fmt: skip
        graph = onnx.load(scratch, load_external_data=False)
    strip_metadata(graph)
    partial = path.with_name(path.name + ".partial")
    onnx.save(graph, partial)
    os.replace(partial, path)
    return Built(path, time.perf_counter() - started, len(graph.graph.node), static_reason)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder [{DEFAULT_OUT.relative_to(ROOT)}]")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="rebuild models already built")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        metavar="NAME", help=f"subset of: {', '.join(MODELS)}")  # fmt: skip
    parser.add_argument("--copy-to", type=Path, metavar="DIR",
                        help="also copy each .onnx file there (created if missing)")  # fmt: skip
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        spec = MODELS[name]
        path = args.out / f"{name}.onnx"
        if path.exists() and not args.force:
            print(f"{name}: {path} already built (--force rebuilds it)")
        else:
            print(f"{name}: exporting ({spec.doc})", flush=True)
            built = export(spec, path)
            how = "static shapes" if built.static_reason else "symbolic dims"
            print(f"{name}: {built.nodes:,} nodes in {built.seconds:.1f} s, {how} -> {path}",
                  flush=True)  # fmt: skip
        if args.copy_to:
            args.copy_to.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, args.copy_to / path.name)


if __name__ == "__main__":
    sys.exit(main())
