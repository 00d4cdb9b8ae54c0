"""Hypothesis strategies for ONNX files: grammar-built small graphs with odd names,
attributes, types and shapes; shipped and tiny models with fields edited; and bytes
flipped, cut and spliced.

Names that are not UTF-8 cannot be set on a proto from Python: such a name is drawn as a
placeholder of the same length and the bytes are swapped in after serialisation.
"""

from __future__ import annotations

import math

import onnx
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper

from tests.fuzz.models import OPSET, sample_bytes, tiny_bytes
from tests.fuzz.strategies import names

#: Placeholders for names that are not UTF-8, and the bytes that replace them.
BAD_UTF8 = {
    b"QQBAD0QQ": b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8",
    b"QQBAD1QQ": b"ab\xc3(\x80\x81cd",
    b"QQBAD2QQ": b"\xed\xa0\x80\xed\xb0\x80xy",  # an encoded surrogate pair
}


def _fix_bytes(data: bytes) -> bytes:
    for placeholder, bad in BAD_UTF8.items():
        data = data.replace(placeholder, bad)
    return data


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: protobuf refuses it, bytes stand in
        return False
    return True


onnx_names = st.one_of(names.filter(_encodable), st.sampled_from([p.decode() for p in BAD_UTF8]))

#: Dimensions: ordinary, zero, negative, past int32 and near int64, symbolic, empty
#: symbol, unknown (None).
DIMS = [1, 1, 2, 8, 0, -1, -(2**62), 2**31, 2**40, 2**62, 2**63 - 1, "N", "batch", "", None, "[/]"]
ELEM_TYPES = [1, 1, 1, 7, 10, 16, 9, 8, 2, 11, 17, 22, 0, 99]


@st.composite
def shapes(draw, max_rank: int = 4):
    if draw(st.integers(0, 9)) == 0:
        return None  # no shape at all
    return draw(st.lists(st.sampled_from(DIMS), min_size=0, max_size=max_rank))


def _value_info(name: str, elem_type: int, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, shape)


def _plain_shape(draw) -> list:
    return draw(st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=3))


ODD_ATTRIBUTES = [
    ("axis", 2**63 - 1),
    ("axis", -(2**63)),
    ("axis", 99),
    ("axis", "0"),
    ("axis", 1.5),
    ("perm", []),
    ("perm", [0, 0]),
    ("perm", [5, -7]),
    ("alpha", math.nan),
    ("alpha", math.inf),
    ("to", 99),
    ("to", 0),
    ("to", 8),
    ("equation", b"\xff\xfe"),
    ("equation", "ij,jk->ik"),
    ("kernel_shape", [0]),
    ("kernel_shape", [2**40, 2**40]),
    ("strides", [0, 0]),
    ("pads", [-5, -5, -5, -5]),
    ("group", 0),
    ("group", -1),
    ("", 1),
    ("\x00", 1),
    ("[/]", "x"),
    ("weird", b"\x80"),
    ("value_float", math.nan),
    ("num_outputs", 0),
    ("num_scan_inputs", "x"),
    ("body", 1),
    ("then_branch", 1.0),
    ("keepdims", 2**40),
    ("dilations", [2**62]),
    ("mode", b"\xc3("),
    ("direction", "sideways"),
]


def _odd_attribute(draw) -> AttributeProto:
    kind = draw(st.integers(0, 5))
    if kind == 0:  # a reference to a function attribute outside any function
        attribute = AttributeProto(
            name=draw(st.sampled_from(["axis", "alpha", "perm"])),
            ref_attr_name="outer",
            type=AttributeProto.INT,
        )
        return attribute
    if kind == 1:  # a type with no value, or no type at all
        return AttributeProto(
            name="axis",
            type=draw(st.sampled_from([0, AttributeProto.GRAPH, AttributeProto.TENSORS])),
        )
    if kind == 2:  # a graph attribute with an empty or odd graph
        graph = helper.make_graph([], draw(onnx_names) or "g", [], [])
        return helper.make_attribute(draw(st.sampled_from(["body", "then_branch", "x"])), graph)
    if kind == 3:  # a tensor attribute with odd dims and no data
        tensor = TensorProto(
            name="v",
            data_type=draw(st.sampled_from(ELEM_TYPES)),
            dims=draw(st.lists(st.sampled_from([0, 1, -1, 2**40]), max_size=3)),
        )
        return helper.make_attribute("value", tensor)
    name, value = draw(st.sampled_from(ODD_ATTRIBUTES))
    if value == []:  # helper cannot infer the type of an empty list
        return AttributeProto(name=name, type=AttributeProto.INTS)
    return helper.make_attribute(name, value)


def _initializer(draw, name: str) -> TensorProto:
    """A weight: real data, or dims with no data behind them (huge, zero, negative)."""
    if draw(st.booleans()):
        dims = _plain_shape(draw)
        count = math.prod(dims)
        return helper.make_tensor(name, TensorProto.FLOAT, dims, [0.5] * count)
    dims = draw(
        st.lists(st.sampled_from([0, 1, 3, -1, 2**31, 2**40, 2**62]), min_size=0, max_size=4)
    )
    return TensorProto(name=name, data_type=draw(st.sampled_from(ELEM_TYPES)), dims=dims)


def _int_initializer(name: str, values: list[int]) -> TensorProto:
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def ssa_problems(graph: onnx.GraphProto) -> list[str]:
    """How the top-level graph breaks single assignment (ONNX's SSA rule): a tensor made
    twice or made over a graph input, a read of a tensor nothing defines, a cycle, a
    graph output nothing makes. A model with any of these is invalid and must be refused."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    made: dict[str, int] = {}
    for node in graph.node:
        for name in node.output:
            if name:
                made[name] = made.get(name, 0) + 1
    problems = [f"tensor {n!r} is made twice" for n, c in made.items() if c > 1 or n in defined]
    available = defined | set(made)
    problems += [
        f"node {node.name!r} reads {name!r}, which nothing defines"
        for node in graph.node
        for name in node.input
        if name and name not in available
    ]
    problems += [
        f"graph output {v.name!r} is never made" for v in graph.output if v.name not in available
    ]
    producer = {name: i for i, node in enumerate(graph.node) for name in node.output if name}
    state: dict[int, int] = {}  # 1: on the path, 2: done

    def cyclic(i: int) -> bool:
        state[i] = 1
        for name in graph.node[i].input:
            j = producer.get(name)
            if j is not None and (state.get(j) == 1 or (state.get(j) is None and cyclic(j))):
                return True
        state[i] = 2
        return False

    if any(state.get(i) is None and cyclic(i) for i in range(len(graph.node))):
        problems.append("the nodes form a cycle")
    return problems


#: Einsum equations that shape inference finishes quickly (the ones that hang it are
#: kept for the subprocess test of ``test_fuzz_onnx.py``).
SAFE_EQUATIONS = [
    "ij,jk->ik",
    "ij->ji",
    "ii->i",
    "i,i->",
    "...ij->...ji",
    "->",
    "",
    "ij",
    "ab,bc",
    "i->ii",
    "ij,jk,kl->il",
    "a" * 60 + "->",
    "ΑΒ->ΒΑ",
    "ij,jk->iz",
]


@st.composite
def onnx_graphs(draw) -> tuple[bytes, list[str]]:
    """A small ONNX graph, mostly well-formed, with odd names, attributes, types and
    shapes, and sometimes broken on purpose: a tensor made twice, a cycle, a read of a
    tensor no one makes, an output no one makes. Returns the bytes and the graph's
    :func:`ssa_problems`."""
    nodes: list[onnx.NodeProto] = []
    initializers: list[TensorProto] = []
    inputs = []
    tensors: list[str] = []
    for i in range(draw(st.integers(1, 2))):
        name = draw(st.one_of(st.just(f"x{i}"), onnx_names))
        elem = (
            draw(st.sampled_from(ELEM_TYPES)) if draw(st.integers(0, 4)) == 0 else TensorProto.FLOAT
        )
        shape = draw(shapes()) if draw(st.integers(0, 2)) == 0 else [1, 8]
        inputs.append(_value_info(name, elem, shape))
        tensors.append(name)

    def fresh(prefix: str = "t") -> str:
        if draw(st.integers(0, 7)) == 0:
            return draw(onnx_names)  # an odd tensor name, maybe one already made
        return f"{prefix}{len(nodes)}_{draw(st.integers(0, 99))}"

    def pick() -> str:
        if draw(st.integers(0, 15)) == 0:
            return draw(st.sampled_from(["missing", "", *tensors]))
        return draw(st.sampled_from(tensors))

    for _ in range(draw(st.integers(1, 6))):
        index = len(nodes)
        kind = draw(
            st.sampled_from(
                [
                    "unary",
                    "unary",
                    "binary",
                    "matmul",
                    "gemm",
                    "conv",
                    "softmax",
                    "concat",
                    "split",
                    "transpose",
                    "reshape",
                    "einsum",
                    "cast",
                    "constant",
                    "constant_of_shape",
                    "if",
                    "scan",
                    "loop",
                    "unknown",
                    "custom",
                    "pool",
                    "gather",
                    "expand",
                    "range",
                    "norm",
                    "resize",
                ]
            )
        )
        attrs: dict = {}
        domain = ""
        outputs = [fresh()]
        if kind == "unary":
            op, ins = (
                draw(
                    st.sampled_from(
                        ["Relu", "Abs", "Neg", "Sigmoid", "Tanh", "Erf", "Identity", "Sqrt"]
                    )
                ),
                [pick()],
            )
        elif kind == "binary":
            op, ins = (
                draw(st.sampled_from(["Add", "Mul", "Sub", "Div", "Pow", "Max"])),
                [pick(), pick()],
            )
        elif kind == "matmul":
            weight = f"w{index}"
            initializers.append(_initializer(draw, weight))
            op, ins = "MatMul", [pick(), weight]
        elif kind == "gemm":
            weight = f"w{index}"
            initializers.append(_initializer(draw, weight))
            op, ins = "Gemm", [pick(), weight]
            attrs = {
                "transB": draw(st.sampled_from([0, 1, 2, -1])),
                "alpha": draw(st.sampled_from([1.0, math.nan, 1e38])),
            }
        elif kind == "conv":
            weight = f"w{index}"
            initializers.append(_initializer(draw, weight))
            op, ins = "Conv", [pick(), weight]
            attrs = draw(
                st.sampled_from(
                    [
                        {},
                        {"kernel_shape": [3, 3]},
                        {"strides": [0, 0]},
                        {"group": 0},
                        {"pads": [-1, -1, -1, -1]},
                        {"dilations": [2**40, 1]},
                    ]
                )
            )
        elif kind == "softmax":
            op, ins = "Softmax", [pick()]
            attrs = {"axis": draw(st.sampled_from([-1, 0, 1, 99, -99, 2**63 - 1]))}
        elif kind == "concat":
            op, ins = "Concat", [pick() for _ in range(draw(st.integers(0, 3)))]
            if draw(st.integers(0, 3)):
                attrs = {"axis": draw(st.sampled_from([0, 1, -1, 50]))}
        elif kind == "split":
            op, ins = "Split", [pick()]
            outputs = [fresh() for _ in range(draw(st.integers(0, 3)))]
            attrs = draw(st.sampled_from([{}, {"axis": 1}, {"axis": 7}, {"num_outputs": 0}]))
        elif kind == "transpose":
            op, ins = "Transpose", [pick()]
            if draw(st.booleans()):
                attrs = {
                    "perm": draw(st.sampled_from([[1, 0], [0, 0], [0], [3, 2, 1, 0], [-1, 0]]))
                }
        elif kind == "reshape":
            shape_name = f"shape{index}"
            initializers.append(
                _int_initializer(
                    shape_name,
                    draw(
                        st.sampled_from(
                            [
                                [-1],
                                [0, -1],
                                [1, -1],
                                [2**62],
                                [-2],
                                [0],
                                [],
                                [1, 2, 3, 4, 5, 6, 7, 8],
                                [-1, -1],
                            ]
                        )
                    ),
                )
            )
            op, ins = "Reshape", [pick(), shape_name]
        elif kind == "einsum":
            op, ins = "Einsum", [pick() for _ in range(draw(st.integers(1, 2)))]
            attrs = {"equation": draw(st.sampled_from(SAFE_EQUATIONS))}
        elif kind == "cast":
            op, ins = "Cast", [pick()]
            attrs = {"to": draw(st.sampled_from([1, 7, 10, 16, 8, 0, 99, 22]))}
        elif kind == "constant":
            op, ins = "Constant", []
            choice = draw(st.integers(0, 4))
            if choice == 0:
                attrs = {"value_float": draw(st.sampled_from([1.0, math.nan, math.inf]))}
            elif choice == 1:
                attrs = {
                    "value_ints": draw(
                        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=4)
                    )
                }
            elif choice == 2:
                attrs = {"value": helper.make_tensor("c", TensorProto.FLOAT, [2], [1.0, 2.0])}
            elif choice == 3:
                attrs = {"value_float": 1.0, "value_int": 2}  # two values: not allowed
        elif kind == "constant_of_shape":
            shape_name = f"cshape{index}"
            initializers.append(
                _int_initializer(
                    shape_name,
                    draw(st.sampled_from([[2, 2], [0], [-1], [2**40, 2**40], [2**62], []])),
                )
            )
            op, ins = "ConstantOfShape", [shape_name]
            if draw(st.integers(0, 3)) == 0:
                outputs = []  # ConstantOfShape without an output
        elif kind == "if":
            op, ins = "If", [pick()]
            branch_out = draw(st.sampled_from([[], ["r"]]))
            branch_nodes = (
                [helper.make_node("Identity", [pick()], ["r"], name=f"inner{index}")]
                if branch_out
                else []
            )
            graph = helper.make_graph(
                branch_nodes, "branch", [], [_value_info(n, 1, None) for n in branch_out]
            )
            attrs = {"then_branch": graph, "else_branch": graph}
            if draw(st.integers(0, 3)) == 0:
                attrs = {"then_branch": graph}
        elif kind == "scan":
            op, ins = "Scan", [pick()]
            body = helper.make_graph(
                [helper.make_node("Identity", ["s_in"], ["s_out"], name=f"scanbody{index}")],
                "body",
                [_value_info("s_in", 1, draw(shapes(2)))],
                [_value_info("s_out", 1, None)],
            )
            attrs = draw(
                st.sampled_from(
                    [
                        {"body": body, "num_scan_inputs": 1},
                        {"body": body, "num_scan_inputs": 0},
                        {"body": body, "num_scan_inputs": 5},
                        {"body": body, "num_scan_inputs": 1, "scan_input_axes": [99]},
                        {"body": body, "num_scan_inputs": 1, "scan_input_directions": [7]},
                        {"num_scan_inputs": 1},
                        {"body": body, "num_scan_inputs": "one"},
                        {"body": body, "num_scan_inputs": 1.5},
                        {"body": "not a graph", "num_scan_inputs": 1},
                    ]
                )
            )
        elif kind == "loop":
            op, ins = "Loop", [draw(st.sampled_from(["", "trip"])), "", pick()]
            if ins[0] == "trip":
                initializers.append(
                    helper.make_tensor(
                        "trip", TensorProto.INT64, [], [draw(st.sampled_from([3, 0, -1, 2**62]))]
                    )
                )
            body = helper.make_graph(
                [helper.make_node("Identity", ["v"], ["v2"], name=f"loopbody{index}")],
                "loop",
                [_value_info("i", 7, []), _value_info("c", 9, []), _value_info("v", 1, None)],
                [_value_info("c", 9, []), _value_info("v2", 1, None)],
            )
            attrs = {"body": body}
        elif kind == "unknown":
            op, ins = (
                draw(st.sampled_from(["FooBar", "", "relu", "[/]", "Relu\x00", "QQBAD1QQ"])),
                [pick()],
            )
        elif kind == "custom":
            op, ins = "Thing", [pick()]
            domain = draw(
                st.sampled_from(["com.example", "ai.onnx.ml", "ai.onnx", "", "[/]", "QQBAD0QQ"])
            )
        elif kind == "pool":
            op, ins = (
                draw(st.sampled_from(["MaxPool", "AveragePool", "GlobalAveragePool"])),
                [pick()],
            )
            if op != "GlobalAveragePool":
                attrs = {
                    "kernel_shape": draw(
                        st.sampled_from([[2, 2], [0, 0], [2**40, 1], [1, 1, 1], [1]])
                    )
                }
        elif kind == "gather":
            indices = f"idx{index}"
            initializers.append(
                _int_initializer(indices, draw(st.sampled_from([[0], [99], [-99], [2**62]])))
            )
            op, ins = "Gather", [pick(), indices]
            attrs = {"axis": draw(st.sampled_from([0, 1, 9]))}
        elif kind == "expand":
            shape_name = f"eshape{index}"
            initializers.append(
                _int_initializer(
                    shape_name, draw(st.sampled_from([[1, 8], [2**40, 8], [-1], [0, 8]]))
                )
            )
            op, ins = "Expand", [pick(), shape_name]
        elif kind == "range":
            for part, value in zip(
                "sld",
                draw(st.sampled_from([(0, 4, 1), (0, 10, 0), (0, -5, 1), (0, 2**40, 1)])),
                strict=True,
            ):
                initializers.append(
                    helper.make_tensor(f"{part}{index}", TensorProto.INT64, [], [value])
                )
            op, ins = "Range", [f"s{index}", f"l{index}", f"d{index}"]
        elif kind == "norm":
            scale = f"scale{index}"
            initializers.append(_initializer(draw, scale))
            op, ins = "LayerNormalization", [pick(), scale]
            attrs = {
                "axis": draw(st.sampled_from([-1, 0, 5])),
                "epsilon": draw(st.sampled_from([1e-5, math.nan, -1.0])),
            }
        else:  # resize
            scales = f"scales{index}"
            initializers.append(
                helper.make_tensor(
                    scales,
                    TensorProto.FLOAT,
                    [2],
                    draw(st.sampled_from([[1.0, 2.0], [1e30, 1e30], [0.0, 0.0], [math.nan, 1.0]])),
                )
            )
            op, ins = "Resize", [pick(), "", scales]
        node = helper.make_node(
            op,
            ins,
            outputs,
            name=draw(st.one_of(st.just(f"node{index}"), onnx_names)),
            domain=domain or None,
            **attrs,
        )
        if draw(st.integers(0, 5)) == 0:
            node.attribute.append(_odd_attribute(draw))
        nodes.append(node)
        tensors.extend(o for o in outputs if o)

    # breakage on purpose
    broken = draw(st.integers(0, 9))
    if broken == 0 and len(nodes) > 1:  # two producers of one tensor
        nodes[-1].output[:] = [nodes[0].output[0]] if nodes[0].output else ["dup"]
    elif broken == 1:  # a cycle: the first node reads the last one's output
        if nodes[-1].output:
            nodes[0].input.append(nodes[-1].output[0])
    elif broken == 2:  # a node reads its own output
        if nodes[0].output:
            nodes[0].input.append(nodes[0].output[0])
    elif broken == 3:  # the nodes out of topological order
        nodes.reverse()

    produced = [o for node in nodes for o in node.output if o]
    out_names = [produced[-1]] if produced else [draw(onnx_names)]
    if draw(st.integers(0, 6)) == 0:
        out_names = [draw(st.sampled_from(["nobody_makes_this", *tensors]))]
    if draw(st.integers(0, 8)) == 0:
        out_names = []
    outputs_vi = [
        _value_info(n, TensorProto.FLOAT, draw(shapes()) if draw(st.integers(0, 3)) == 0 else None)
        for n in out_names
    ]
    value_infos = []
    if produced and draw(st.integers(0, 3)) == 0:  # a recorded shape for an inner tensor
        value_infos.append(
            _value_info(
                draw(st.sampled_from(produced)), draw(st.sampled_from(ELEM_TYPES)), draw(shapes())
            )
        )
    graph = helper.make_graph(
        nodes,
        draw(st.one_of(st.just("g"), onnx_names)),
        inputs,
        outputs_vi,
        initializer=initializers,
        value_info=value_infos,
    )
    opsets = draw(
        st.sampled_from(
            [[helper.make_opsetid("", OPSET)]] * 6
            + [
                [helper.make_opsetid("", 1)],
                [helper.make_opsetid("", 99)],
                [helper.make_opsetid("", 0)],
                [],
                [helper.make_opsetid("", OPSET), helper.make_opsetid("", 13)],
                [helper.make_opsetid("", OPSET), helper.make_opsetid("com.example", 1)],
            ]
        )
    )
    model = helper.make_model(graph, opset_imports=opsets)
    choice = draw(st.integers(0, 9))
    if choice == 0:
        model.ir_version = draw(st.sampled_from([0, 1, 3, 99, 2**62]))
    elif choice == 1:  # a local function, maybe called by a node
        function = helper.make_function(
            "local",
            "Fn",
            ["a"],
            ["b"],
            [helper.make_node("Relu", ["a"], ["b"])],
            [helper.make_opsetid("", OPSET)],
        )
        model.functions.append(function)
        model.opset_import.append(helper.make_opsetid("local", 1))
        model.graph.node.append(
            helper.make_node("Fn", [tensors[0]], ["fn_out"], domain="local", name="call")
        )
    return _fix_bytes(model.SerializeToString()), ssa_problems(model.graph)


# --- edits of existing models --------------------------------------------------------

EDITS = [
    "node_name",
    "node_name",
    "op_type",
    "domain",
    "two_producers",
    "missing_input",
    "cycle",
    "drop_node",
    "odd_attribute",
    "input_dim",
    "input_type",
    "initializer_dims",
    "opset",
    "graph_name",
    "no_nodes",
    "drop_output",
    "output_unmade",
    "ir_version",
    "doc_string",
    "many_names_alike",
    "value_info_dim",
]


@st.composite
def edited_models(draw, base: bytes) -> tuple[bytes, list[str]]:
    """``base`` (a serialised model) with one to three fields edited; returns the bytes
    and the edited graph's :func:`ssa_problems`."""
    model = onnx.ModelProto()
    model.ParseFromString(base)
    graph = model.graph
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(EDITS))
        node = graph.node[draw(st.integers(0, len(graph.node) - 1))] if len(graph.node) else None
        if edit == "node_name" and node is not None:
            node.name = draw(onnx_names)
        elif edit == "op_type" and node is not None:
            node.op_type = draw(
                st.sampled_from(["", "FooBar", "relu", "[/]", "QQBAD0QQ", "Einsum", "If", "Scan"])
            )
        elif edit == "domain" and node is not None:
            node.domain = draw(
                st.sampled_from(["com.example", "ai.onnx.ml", "QQBAD2QQ", "ai.onnx"])
            )
        elif edit == "two_producers" and len(graph.node) > 1:
            other = graph.node[draw(st.integers(0, len(graph.node) - 1))]
            if node is not None and node.output and other.output and node is not other:
                other.output[0] = node.output[0]
        elif edit == "missing_input" and node is not None and node.input:
            node.input[draw(st.integers(0, len(node.input) - 1))] = draw(
                st.sampled_from(["missing", "QQBAD1QQ", "[/]"])
            )
        elif edit == "cycle" and node is not None and node.output:
            first = graph.node[0]
            first.input.append(
                graph.node[-1].output[0] if graph.node[-1].output else node.output[0]
            )
        elif edit == "drop_node" and node is not None:
            graph.node.remove(node)
        elif edit == "odd_attribute" and node is not None:
            node.attribute.append(_odd_attribute(draw))
        elif edit == "input_dim" and len(graph.input):
            tensor_type = graph.input[0].type.tensor_type
            if len(tensor_type.shape.dim):
                dim = tensor_type.shape.dim[draw(st.integers(0, len(tensor_type.shape.dim) - 1))]
                value = draw(st.sampled_from(DIMS))
                if isinstance(value, int):
                    dim.dim_value = value
                elif value is None:
                    dim.Clear()
                else:
                    dim.dim_param = value
        elif edit == "input_type" and len(graph.input):
            graph.input[0].type.tensor_type.elem_type = draw(st.sampled_from(ELEM_TYPES))
        elif edit == "initializer_dims" and len(graph.initializer):
            init = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
            init.dims[:] = draw(
                st.lists(st.sampled_from([0, 1, -1, 2**31, 2**40, 2**62]), max_size=4)
            )
        elif edit == "opset":
            del model.opset_import[:]
            if draw(st.booleans()):
                model.opset_import.append(
                    helper.make_opsetid("", draw(st.sampled_from([0, 1, 7, 99, 2**40])))
                )
        elif edit == "graph_name":
            graph.name = draw(onnx_names)
        elif edit == "no_nodes":
            del graph.node[:]
        elif edit == "drop_output" and node is not None:
            del node.output[:]
        elif edit == "output_unmade" and len(graph.output):
            graph.output[0].name = "nobody_makes_this"
        elif edit == "ir_version":
            model.ir_version = draw(st.sampled_from([0, 1, 3, 99]))
        elif edit == "doc_string":
            graph.doc_string = "QQBAD0QQ" + "\x1b]0;x\x07"
        elif edit == "many_names_alike":
            for other in graph.node:
                other.name = draw(st.sampled_from(["same", ""]))
        elif edit == "value_info_dim" and len(graph.value_info):
            info = graph.value_info[draw(st.integers(0, len(graph.value_info) - 1))]
            for dim in info.type.tensor_type.shape.dim:
                dim.dim_value = draw(st.sampled_from([0, 2**62, 1]))
    return _fix_bytes(model.SerializeToString()), ssa_problems(graph)


@st.composite
def mutated_bytes(draw, base: bytes) -> bytes:
    """``base`` with bytes flipped, cut, inserted, repeated or zeroed."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        kind = draw(
            st.sampled_from(
                ["flip", "flip", "truncate", "insert", "delete", "repeat", "fill", "append"]
            )
        )
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif kind == "fill":
            size = draw(st.integers(1, 16))
            data[at : at + size] = draw(st.sampled_from([b"\x00", b"\xff", b"\x7f"])) * size
        else:
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def tiny_base(name: str) -> bytes:
    return tiny_bytes(name)


def sample_base(name: str) -> bytes:
    return sample_bytes(name)
