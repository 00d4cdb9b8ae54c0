"""Build the sample ONNX models with ``onnx.helper``: real architectures, no weights.

Usage::

    python sample_models/make_models.py [OUTDIR]

writes ``bert_base.onnx``, ``gpt2_small.onnx`` and ``mobilenet_v2.onnx`` into ``OUTDIR``
(default: the folder of this script). Nothing is downloaded and nothing random is drawn.

Each model has the layer structure, tensor shapes and parameter count of the published
network, but every weight is generated at run time by a ``ConstantOfShape`` node whose shape
input is an int64 initializer. The files therefore stay a few hundred kilobytes while the
parameter count can still be read from the shapes, and the models run: weights, biases and
shifts are about 0.02 and scales about 1.0, so outputs are finite and not all zero (though
with constant weights they hardly depend on the input).  No two weights are equal (each
differs from the one before by 1/4096 of its value): a runtime that merges computations
on equal weights would run less than the real network does.

The output is byte-for-byte reproducible: fixed producer name and version, no timestamps,
nodes emitted in a fixed order; each file is written to a temporary file in the target folder
and moved into place with :func:`os.replace`.

References
----------
.. [1] Devlin et al. (2019). BERT: Pre-training of Deep Bidirectional Transformers for
   Language Understanding. NAACL.
.. [2] Radford et al. (2019). Language Models are Unsupervised Multitask Learners. OpenAI.
.. [3] Sandler et al. (2018). MobileNetV2: Inverted Residuals and Linear Bottlenecks. CVPR.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # first opset with LayerNormalization
IR_VERSION = 8  # the IR version that goes with opset 17; onnxruntime >= 1.12 reads it
PRODUCER_NAME = "placer-sample-models"
PRODUCER_VERSION = "1"

WEIGHT_VALUE = 0.02
BIAS_VALUE = 0.02
SCALE_VALUE = 1.0
#: The k-th weight is its value times 1 + k / WEIGHT_SPREAD (:meth:`GraphBuilder.weight`).
WEIGHT_SPREAD = 4096


@dataclass
class GraphBuilder:
    """Accumulates nodes and small int64/float constants for one graph.

    Node names are ``{scope}/{OpType}`` (``_1``, ``_2``, ... appended on repeats) and an
    unnamed output is called ``{node name}_output_0``, the way exporters name them.
    """

    name: str
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    _used: set[str] = field(default_factory=set)
    _constants: set[str] = field(default_factory=set)
    _weights: int = 0

    def _unique(self, name: str) -> str:
        candidate, k = name, 0
        while candidate in self._used:
            k += 1
            candidate = f"{name}_{k}"
        self._used.add(candidate)
        return candidate

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        scope: str,
        *,
        out: str | None = None,
        **attrs: object,
    ) -> str:
        """Append one node with one output (named ``out`` if given); returns the output."""
        node_name = self._unique(f"{scope}/{op_type}")
        output = out if out is not None else f"{node_name}_output_0"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], node_name, **attrs))
        return output

    def ops(
        self, op_type: str, inputs: Sequence[str], scope: str, n_out: int, **attrs: object
    ) -> list[str]:
        """Append one node with ``n_out`` outputs; returns the output names."""
        node_name = self._unique(f"{scope}/{op_type}")
        outputs = [f"{node_name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, node_name, **attrs))
        return outputs

    def ints(self, name: str, values: Sequence[int], *, scalar: bool = False) -> str:
        """An int64 initializer (shapes, axes, indices)."""
        array = np.array(values[0] if scalar else list(values), dtype=np.int64)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def const(self, name: str, value: float) -> str:
        """A shared float32 scalar initializer, created on first use."""
        if name not in self._constants:
            self.initializers.append(numpy_helper.from_array(np.array(value, np.float32), name))
            self._constants.add(name)
        return name

    def weight(self, name: str, shape: Sequence[int], value: float = WEIGHT_VALUE) -> str:
        """A float32 parameter tensor ``name`` filled by a ConstantOfShape with ``value``
        times ``1 + k / 4096``, ``k`` counting the weights made before it: no two weights
        are equal, as in a trained model.  With equal weights, onnxruntime's
        common-subexpression elimination computed one of each BERT layer's query, key
        and value projections, where a trained BERT runs all three."""
        shape_name = self.ints(f"{name}_shape", shape)
        distinct = value * (1.0 + self._weights / WEIGHT_SPREAD)
        self._weights += 1
        fill = helper.make_tensor("value", TensorProto.FLOAT, [1], [distinct])
        self.op("ConstantOfShape", [shape_name], name, out=name, value=fill)
        return name

    def model(
        self,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        doc: str,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, self.name, list(inputs), list(outputs), self.initializers, doc_string=doc
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name=PRODUCER_NAME,
            producer_version=PRODUCER_VERSION,
            doc_string=doc,
        )
        model.ir_version = IR_VERSION
        return model


# ---------------------------------------------------------------------------------------
# shared blocks


def linear(
    g: GraphBuilder, x: str, scope: str, d_in: int, d_out: int, *, out: str | None = None
) -> str:
    """``x @ W + b`` with ``W`` stored ``[d_in, d_out]``, as transformer exporters emit it."""
    w = g.weight(f"{scope}.weight", [d_in, d_out])
    b = g.weight(f"{scope}.bias", [d_out], BIAS_VALUE)
    y = g.op("MatMul", [x, w], scope)
    return g.op("Add", [y, b], scope, out=out)


def layer_norm(
    g: GraphBuilder, x: str, scope: str, dim: int, eps: float, *, out: str | None = None
) -> str:
    scale = g.weight(f"{scope}.weight", [dim], SCALE_VALUE)
    shift = g.weight(f"{scope}.bias", [dim], BIAS_VALUE)
    """LayerNormalization over the last axis with learned scale and shift."""
    return g.op("LayerNormalization", [x, scale, shift], scope, out=out, axis=-1, epsilon=eps)


def gelu_erf(g: GraphBuilder, x: str, scope: str) -> str:
    """``0.5·x·(1 + erf(x/√2))``, the exact GELU that BERT uses."""
    y = g.op("Div", [x, g.const("const.sqrt2", math.sqrt(2.0))], scope)
    y = g.op("Erf", [y], scope)
    y = g.op("Add", [y, g.const("const.one", 1.0)], scope)
    y = g.op("Mul", [x, y], scope)
    return g.op("Mul", [y, g.const("const.half", 0.5)], scope)


def gelu_tanh(g: GraphBuilder, x: str, scope: str) -> str:
    """``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``, GPT-2's ``gelu_new``."""
    cube = g.op("Pow", [x, g.const("const.three", 3.0)], scope)
    y = g.op("Mul", [cube, g.const("const.gelu_coeff", 0.044715)], scope)
    y = g.op("Add", [x, y], scope)
    y = g.op("Mul", [y, g.const("const.sqrt_2_over_pi", math.sqrt(2.0 / math.pi))], scope)
    y = g.op("Tanh", [y], scope)
    y = g.op("Add", [y, g.const("const.one", 1.0)], scope)
    y = g.op("Mul", [x, y], scope)
    return g.op("Mul", [y, g.const("const.half", 0.5)], scope)


def split_heads(
    g: GraphBuilder, x: str, scope: str, heads: int, head_dim: int, perm: Sequence[int]
) -> str:
    """``[B, S, H·D]`` -> ``[B, S, H, D]`` -> transposed by ``perm``."""
    shape = g.ints(f"{scope}.heads_shape", [0, 0, heads, head_dim])
    y = g.op("Reshape", [x, shape], scope)
    return g.op("Transpose", [y], scope, perm=list(perm))


def merge_heads(g: GraphBuilder, x: str, scope: str, hidden: int) -> str:
    """``[B, H, S, D]`` -> ``[B, S, H·D]``."""
    y = g.op("Transpose", [x], scope, perm=[0, 2, 1, 3])
    return g.op("Reshape", [y, g.ints(f"{scope}.merged_shape", [0, 0, hidden])], scope)


def attention_core(
    g: GraphBuilder,
    q: str,
    k: str,
    v: str,
    scope: str,
    heads: int,
    hidden: int,
    mask: Callable[[str, str], str],
) -> str:
    """Scaled dot-product attention over ``[B, S, hidden]`` projections.

    ``mask(scores, scope)`` adds the nodes that mask the scaled scores and returns the result.
    """
    head_dim = hidden // heads
    qh = split_heads(g, q, f"{scope}.query", heads, head_dim, [0, 2, 1, 3])
    kh = split_heads(g, k, f"{scope}.key", heads, head_dim, [0, 2, 3, 1])
    vh = split_heads(g, v, f"{scope}.value", heads, head_dim, [0, 2, 1, 3])
    scores = g.op("MatMul", [qh, kh], f"{scope}.scores")
    scale = g.const(f"const.sqrt_head_dim_{head_dim}", math.sqrt(head_dim))
    scores = g.op("Div", [scores, scale], f"{scope}.scores")
    scores = mask(scores, f"{scope}.masked_scores")
    probs = g.op("Softmax", [scores], f"{scope}.probs", axis=-1)
    context = g.op("MatMul", [probs, vh], f"{scope}.context")
    return merge_heads(g, context, f"{scope}.context", hidden)


def sequence_positions(g: GraphBuilder, input_ids: str, scope: str) -> str:
    """``position_ids`` ``[B, S]``: ``0, 1, ..., S-1`` on every row.

    Built elementwise from ``input_ids`` (ones, running sum, minus one) rather than with
    ``Range`` on the runtime length, so that ONNX shape inference knows its shape.
    """
    zero = g.ints(f"{scope}.zero", [0], scalar=True)
    one = g.ints(f"{scope}.one", [1], scalar=True)
    ones = g.op("Add", [g.op("Mul", [input_ids, zero], scope), one], scope)
    counts = g.op("CumSum", [ones, g.ints(f"{scope}.axis", [1], scalar=True)], scope)
    return g.op("Sub", [counts, one], scope, out=scope)


# ---------------------------------------------------------------------------------------
# BERT-base


@dataclass(frozen=True)
class BertConfig:
    vocab: int = 30522
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    ffn: int = 3072
    max_positions: int = 512
    type_vocab: int = 2
    eps: float = 1e-12


BERT_BASE = BertConfig()


def bert_base(cfg: BertConfig = BERT_BASE) -> onnx.ModelProto:
    """BERT-base encoder with pooler [1]_, named like Hugging Face's ``BertModel``."""
    g = GraphBuilder("bert_base")
    h = cfg.hidden

    # embeddings: word + position + token type (all type 0), then LayerNorm
    emb = "embeddings"
    word = g.weight(f"{emb}.word_embeddings.weight", [cfg.vocab, h])
    pos = g.weight(f"{emb}.position_embeddings.weight", [cfg.max_positions, h])
    typ = g.weight(f"{emb}.token_type_embeddings.weight", [cfg.type_vocab, h])
    x = g.op("Gather", [word, "input_ids"], f"{emb}.word_embeddings", axis=0)
    positions = sequence_positions(g, "input_ids", f"{emb}.position_ids")
    p = g.op("Gather", [pos, positions], f"{emb}.position_embeddings", axis=0)
    type_ids = g.ints(f"{emb}.token_type_ids", [[0]])  # [1, 1]: broadcast over batch, sequence
    t = g.op("Gather", [typ, type_ids], f"{emb}.token_type_embeddings", axis=0)
    x = g.op("Add", [x, p], emb)
    x = g.op("Add", [x, t], emb)
    x = layer_norm(g, x, f"{emb}.LayerNorm", h, cfg.eps, out=f"{emb}.output")

    # additive mask: 0 where attended, -10000 where padded, shaped [B, 1, 1, S]
    m = "extended_attention_mask"
    mask = g.op("Unsqueeze", ["attention_mask", g.ints(f"{m}.axes", [1, 2])], m)
    mask = g.op("Cast", [mask], m, to=TensorProto.FLOAT)
    mask = g.op("Sub", [g.const("const.one", 1.0), mask], m)
    mask = g.op("Mul", [mask, g.const("const.mask_value", -10000.0)], m, out=m)

    def add_mask(scores: str, scope: str) -> str:
        return g.op("Add", [scores, mask], scope)

    for i in range(cfg.layers):
        layer = f"encoder.layer.{i}"
        att = f"{layer}.attention"
        q = linear(g, x, f"{att}.self.query", h, h)
        k = linear(g, x, f"{att}.self.key", h, h)
        v = linear(g, x, f"{att}.self.value", h, h)
        ctx = attention_core(g, q, k, v, f"{att}.self", cfg.heads, h, add_mask)
        y = linear(g, ctx, f"{att}.output.dense", h, h)
        y = g.op("Add", [y, x], f"{att}.output.residual")
        x = layer_norm(g, y, f"{att}.output.LayerNorm", h, cfg.eps, out=f"{att}.output")
        y = linear(g, x, f"{layer}.intermediate.dense", h, cfg.ffn)
        y = gelu_erf(g, y, f"{layer}.intermediate.gelu")
        y = linear(g, y, f"{layer}.output.dense", cfg.ffn, h)
        y = g.op("Add", [y, x], f"{layer}.output.residual")
        last = i == cfg.layers - 1
        out = "last_hidden_state" if last else f"{layer}.output"
        x = layer_norm(g, y, f"{layer}.output.LayerNorm", h, cfg.eps, out=out)

    # pooler: dense + tanh over the first ([CLS]) token
    first = g.op("Gather", [x, g.ints("pooler.cls_index", [0], scalar=True)], "pooler", axis=1)
    w = g.weight("pooler.dense.weight", [h, h])
    b = g.weight("pooler.dense.bias", [h], BIAS_VALUE)
    y = g.op("Gemm", [first, w, b], "pooler.dense", transB=1)
    g.op("Tanh", [y], "pooler.activation", out="pooler_output")

    batch_seq = ["batch", "sequence"]
    return g.model(
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, batch_seq),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, batch_seq),
        ],
        [
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*batch_seq, h]),
            helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, ["batch", h]),
        ],
        "BERT-base uncased encoder + pooler; weights are ConstantOfShape placeholders.",
    )


# ---------------------------------------------------------------------------------------
# GPT-2 small


@dataclass(frozen=True)
class Gpt2Config:
    vocab: int = 50257
    n_ctx: int = 1024
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    eps: float = 1e-5


GPT2_SMALL = Gpt2Config()


def gpt2_small(cfg: Gpt2Config = GPT2_SMALL) -> onnx.ModelProto:
    """GPT-2 small decoder with tied LM head [2]_, named like Hugging Face's ``GPT2LMHeadModel``."""
    g = GraphBuilder("gpt2_small")
    h = cfg.hidden

    wte = g.weight("transformer.wte.weight", [cfg.vocab, h])
    wpe = g.weight("transformer.wpe.weight", [cfg.n_ctx, h])
    x = g.op("Gather", [wte, "input_ids"], "transformer.wte", axis=0)
    positions = sequence_positions(g, "input_ids", "transformer.position_ids")
    p = g.op("Gather", [wpe, positions], "transformer.wpe", axis=0)
    x = g.op("Add", [x, p], "transformer.embeddings", out="transformer.embeddings.output")

    # causal mask [B, 1, S, S]: key position <= query position, computed once for all layers
    c = "transformer.causal_mask"
    rows = g.op("Unsqueeze", [positions, g.ints(f"{c}.row_axes", [2])], c)
    cols = g.op("Unsqueeze", [positions, g.ints(f"{c}.col_axes", [1])], c)
    causal = g.op("LessOrEqual", [cols, rows], c)
    causal = g.op("Unsqueeze", [causal, g.ints(f"{c}.head_axes", [1])], c, out=c)
    # torch.finfo(float32).min, as Hugging Face fills masked scores
    masked_value = g.const("const.float32_min", float(np.finfo(np.float32).min))

    def keep_past(scores: str, scope: str) -> str:
        return g.op("Where", [causal, scores, masked_value], scope)

    for i in range(cfg.layers):
        blk = f"transformer.h.{i}"
        y = layer_norm(g, x, f"{blk}.ln_1", h, cfg.eps)
        qkv = linear(g, y, f"{blk}.attn.c_attn", h, 3 * h)
        split = g.ints(f"{blk}.attn.split_sizes", [h, h, h])
        q, k, v = g.ops("Split", [qkv, split], f"{blk}.attn.split_qkv", 3, axis=-1)
        ctx = attention_core(g, q, k, v, f"{blk}.attn", cfg.heads, h, keep_past)
        y = linear(g, ctx, f"{blk}.attn.c_proj", h, h)
        x = g.op("Add", [x, y], f"{blk}.attn.residual", out=f"{blk}.attn.output")
        y = layer_norm(g, x, f"{blk}.ln_2", h, cfg.eps)
        y = linear(g, y, f"{blk}.mlp.c_fc", h, 4 * h)
        y = gelu_tanh(g, y, f"{blk}.mlp.act")
        y = linear(g, y, f"{blk}.mlp.c_proj", 4 * h, h)
        x = g.op("Add", [x, y], f"{blk}.mlp.residual", out=f"{blk}.output")
    x = layer_norm(g, x, "transformer.ln_f", h, cfg.eps, out="transformer.output")

    # LM head tied to the token embedding: logits = x @ wte^T
    wte_t = g.op("Transpose", [wte], "lm_head.tied_weight", perm=[1, 0])
    g.op("MatMul", [x, wte_t], "lm_head", out="logits")

    return g.model(
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [
            helper.make_tensor_value_info(
                "logits", TensorProto.FLOAT, ["batch", "sequence", cfg.vocab]
            )
        ],
        "GPT-2 small (124M) decoder with tied LM head; weights are ConstantOfShape placeholders.",
    )


# ---------------------------------------------------------------------------------------
# MobileNetV2

#: Inverted residual settings of [3]_ (Table 2): expansion t, channels c,
#: repeats n, first stride s.
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def conv_bn(
    g: GraphBuilder,
    x: str,
    scope: str,
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int,
    *,
    groups: int = 1,
    relu6: bool = True,
    out: str | None = None,
) -> str:
    """Conv with BatchNorm folded into its weight and bias, then ReLU6 as Clip(0, 6)."""
    w = g.weight(f"{scope}.weight", [c_out, c_in // groups, kernel, kernel])
    b = g.weight(f"{scope}.bias", [c_out], BIAS_VALUE)
    pad = kernel // 2
    conv = {
        "kernel_shape": [kernel, kernel],
        "strides": [stride, stride],
        "pads": [pad, pad, pad, pad],
        "group": groups,
    }
    if not relu6:
        return g.op("Conv", [x, w, b], scope, out=out, **conv)
    y = g.op("Conv", [x, w, b], scope, **conv)
    bounds = [g.const("const.zero", 0.0), g.const("const.six", 6.0)]
    return g.op("Clip", [y, *bounds], scope, out=out)


def mobilenet_v2(num_classes: int = 1000) -> onnx.ModelProto:
    """MobileNetV2 1.0 for 224×224 images [3]_, block numbering as in torchvision."""
    g = GraphBuilder("mobilenet_v2")
    x = conv_bn(g, "input", "features.0", 3, 32, 3, 2)
    c_in, index = 32, 1
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for repeat in range(n):
            stride = s if repeat == 0 else 1
            scope = f"features.{index}.conv"
            hidden = c_in * t
            y = x
            if t != 1:
                y = conv_bn(g, y, f"{scope}.expand", c_in, hidden, 1, 1)
            y = conv_bn(g, y, f"{scope}.depthwise", hidden, hidden, 3, stride, groups=hidden)
            block_out = f"features.{index}.output"
            residual = stride == 1 and c_in == c
            y = conv_bn(
                g,
                y,
                f"{scope}.project",
                hidden,
                c,
                1,
                1,
                relu6=False,
                out=None if residual else block_out,
            )
            if residual:
                y = g.op("Add", [x, y], f"features.{index}.residual", out=block_out)
            x = y
            c_in, index = c, index + 1
    x = conv_bn(g, x, f"features.{index}", c_in, 1280, 1, 1)
    x = g.op("GlobalAveragePool", [x], "pool")
    x = g.op("Flatten", [x], "pool", axis=1)
    w = g.weight("classifier.1.weight", [num_classes, 1280])
    b = g.weight("classifier.1.bias", [num_classes], BIAS_VALUE)
    g.op("Gemm", [x, w, b], "classifier.1", out="logits", transB=1)

    return g.model(
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", num_classes])],
        "MobileNetV2 1.0 (ImageNet, 224x224), BatchNorm folded into the convolutions; "
        "weights are ConstantOfShape placeholders.",
    )


# ---------------------------------------------------------------------------------------

MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "bert_base.onnx": bert_base,
    "gpt2_small.onnx": gpt2_small,
    "mobilenet_v2.onnx": mobilenet_v2,
}


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a committed model should be readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_all(outdir: Path) -> list[Path]:
    """Build every sample model into ``outdir``; returns the written paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, build in MODELS.items():
        path = outdir / filename
        write_atomic(path, build().SerializeToString(deterministic=True))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the sample ONNX models.")
    parser.add_argument(
        "outdir",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="folder to write into (default: the folder of this script)",
    )
    args = parser.parse_args(argv)
    for path in build_all(args.outdir):
        print(f"{path}  {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
