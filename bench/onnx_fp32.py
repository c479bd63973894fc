"""The release ONNX model in fp32, for the onnxruntime baseline: the mirror's files are fp16 conversions of the
fp32 releases, and onnxruntime runs fp16 slower than fp32 on a CPU, which would flatter us."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper


def _to_fp32(tensor: onnx.TensorProto) -> onnx.TensorProto:
    return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)


def convert_to_fp32(source: Path, target: Path) -> Path:
    """Write ``source`` with every fp16 weight, constant, cast and tensor type made fp32; returns ``target``."""
    model = onnx.load(str(source))
    graph = model.graph
    for index, initializer in enumerate(graph.initializer):
        if initializer.data_type == TensorProto.FLOAT16:
            graph.initializer[index].CopyFrom(_to_fp32(initializer))
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name == "to" and attribute.i == TensorProto.FLOAT16:
                attribute.i = TensorProto.FLOAT
            if attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == TensorProto.FLOAT16:
                attribute.t.CopyFrom(_to_fp32(attribute.t))
    onnx.save(model, str(target))
    return target
