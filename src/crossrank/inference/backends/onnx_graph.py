"""Graph rewrites for the ONNX backend: CLS-only last layer, and dynamic int8 quantisation.

A cross-encoder reads only the first ([CLS]) position of the last layer. Every other position
of that layer still needs its keys and values, but not its query, attention output, or
feed-forward block. :func:`cls_only_last_layer` rewrites the last fused ``Attention`` node of
an ORT-optimised graph into ``MultiHeadAttention`` with a 1-token query, so the rest of the
layer runs on one position: 10 of the last layer's 12 ``hidden^2`` matrix products per token
disappear (about 14% of a 6-layer model), with identical results up to float rounding.
The exporter validates every rewrite numerically and drops it if it does not hold.

Example:
    >>> proto = onnx.load("model.onnx")  # doctest: +SKIP
    >>> cls_only_last_layer(proto)  # doctest: +SKIP
    True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossrank.errors import BackendUnavailableError

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic
except ImportError:  # optional dependency, reported by the onnx backend
    onnx = None

_PREFIX = "crossrank_cls_"
# Ops whose weights dynamic quantisation turns to int8. Embedding tables, the pooler and
# the classifier stay fp32: they cost little time and their rounding would go straight
# into the score.
INT8_OP_TYPES = ["MatMul", "Attention"]
_MHA_ATTRS = {"num_heads", "mask_filter_value", "scale"}


def cls_only_last_layer(model: onnx.ModelProto) -> bool:
    """Rewrite the last self-attention layer to compute only position 0; False if no match."""
    graph = model.graph
    nodes = list(graph.node)
    positions = [
        i for i, n in enumerate(nodes) if n.op_type == "Attention" and n.domain == "com.microsoft"
    ]
    if not positions:
        return False
    position = positions[-1]
    last = nodes[position]
    hidden, weight, bias, mask = (list(last.input) + [""] * 4)[:4]
    attrs = {a.name: helper.get_attribute_value(a) for a in last.attribute}
    if any(last.input[4:]) or attrs.get("unidirectional", 0) or set(attrs) - _MHA_ATTRS:
        return False
    inits = {init.name: init for init in graph.initializer}
    if weight not in inits or bias not in inits:
        return False
    consumers = [n for i, n in enumerate(nodes) if i != position and hidden in n.input]
    if len(consumers) != 1 or consumers[0].op_type != "SkipLayerNormalization":
        return False
    w = numpy_helper.to_array(inits[weight])
    b = numpy_helper.to_array(inits[bias])
    width = w.shape[0]
    if w.shape != (width, 3 * width) or b.shape != (3 * width,):
        return False
    new_inits, new_nodes = _cls_attention_nodes(
        hidden, w, b, mask=mask, output=last.output[0], attrs=attrs
    )
    residual = consumers[0]
    residual.input[list(residual.input).index(hidden)] = _PREFIX + "query_in"
    del graph.node[position]
    for offset, node in enumerate(new_nodes):
        graph.node.insert(position + offset, node)
    graph.initializer.extend(new_inits)
    _drop_unused_initializers(graph, {weight, bias})
    return True


def _cls_attention_nodes(
    hidden: str, w: np.ndarray, b: np.ndarray, *, mask: str, output: str, attrs: dict
) -> tuple[list[onnx.TensorProto], list[onnx.NodeProto]]:
    width = w.shape[0]
    p = _PREFIX

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.ascontiguousarray(value), p + name)

    inits = [
        const("wq", w[:, :width]),
        const("bq", b[:width]),
        const("wkv", w[:, width:]),
        const("bkv", b[width:]),
        const("zero", np.array([0], dtype=np.int64)),
        const("one", np.array([1], dtype=np.int64)),
        const("split", np.array([width, width], dtype=np.int64)),
    ]
    mha_attrs = {k: v for k, v in attrs.items() if k in _MHA_ATTRS}
    nodes = [
        helper.make_node(
            "Slice", [hidden, p + "zero", p + "one", p + "one"], [p + "query_in"], name=p + "slice"
        ),
        helper.make_node("MatMul", [p + "query_in", p + "wq"], [p + "q_mm"], name=p + "q_matmul"),
        helper.make_node("Add", [p + "q_mm", p + "bq"], [p + "q"], name=p + "q_add"),
        helper.make_node("MatMul", [hidden, p + "wkv"], [p + "kv_mm"], name=p + "kv_matmul"),
        helper.make_node("Add", [p + "kv_mm", p + "bkv"], [p + "kv"], name=p + "kv_add"),
        helper.make_node(
            "Split", [p + "kv", p + "split"], [p + "k", p + "v"], axis=2, name=p + "kv_split"
        ),
        helper.make_node(
            "MultiHeadAttention",
            [p + "q", p + "k", p + "v", "", mask] if mask else [p + "q", p + "k", p + "v"],
            [output],
            domain="com.microsoft",
            name=p + "mha",
            **mha_attrs,
        ),
    ]
    return inits, nodes


def _drop_unused_initializers(graph: onnx.GraphProto, names: set[str]) -> None:
    used = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name in names and i.name not in used]:
        graph.initializer.remove(init)


def quantize_int8(fp32_path: Path, out_path: Path) -> None:
    """Dynamic int8 quantisation (per-channel int8 weights, uint8 activations at run time)."""
    if onnx is None:
        raise BackendUnavailableError(
            "onnx-int8 needs onnxruntime and onnx: pip install 'crossrank[onnx]'"
        )
    quantize_dynamic(
        str(fp32_path),
        str(out_path),
        op_types_to_quantize=INT8_OP_TYPES,
        per_channel=True,
        weight_type=QuantType.QInt8,
        # Fused contrib ops defeat ONNX shape inference; their outputs are float anyway.
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )
