"""Make ``torch_mlp.onnx``: a model exported by another tool, for the service's foreign-model tests.

A PyTorch MLP (784 -> 32 -> 10, random weights, seed 0) exported with ``torch.onnx.export``
(TorchScript exporter, ``dynamo=False``: the dynamo exporter needs onnxscript). It has PyTorch's
own names and shapes: input ``input`` float32 [batch, 784], output ``logits`` float32
[batch, 10] (no softmax, no labels metadata). The file is committed; the tests never need torch.

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy onnx
    /tmp/torchenv/bin/python tests/data/foreign/make_torch_mlp.py
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from torch import nn

OUT = Path(__file__).with_name("torch_mlp.onnx")


def main() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    example = torch.rand(2, 784) * 255
    torch.onnx.export(
        model,
        (example,),
        str(OUT),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    onnx.checker.check_model(onnx.load(OUT))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
