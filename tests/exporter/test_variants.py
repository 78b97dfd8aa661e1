"""Edge and mobile variants of a trained model: each loads in onnxruntime and keeps its accuracy."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from exporter.manifest import read_manifest
from exporter.variants import OPERATOR_CONFIG, quantize_int8


@pytest.fixture(scope="module")
def version(exported_repository):
    return exported_repository / "mnist" / "1"


@pytest.fixture(scope="module")
def test_set():
    from trainer import load_mnist

    test = load_mnist("test")
    return test.x.astype(np.float32), test.y


def accuracy_of(path, test_set):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (labels,) = sess.run(["label"], {"images": test_set[0]})
    return float(np.mean(labels == test_set[1]))


def test_int8_meets_the_size_and_accuracy_goals(version, test_set):
    float_accuracy = accuracy_of(version / "model.onnx", test_set)
    int8_accuracy = accuracy_of(version / "model.int8.onnx", test_set)
    assert float_accuracy > 0.85  # the fixture really is trained
    assert float_accuracy - int8_accuracy <= 0.005
    assert (version / "model.int8.onnx").stat().st_size <= 0.30 * (version / "model.onnx").stat().st_size
    report = read_manifest(version)["variants"]["model.int8.onnx"]
    assert report["accuracy"] == int8_accuracy
    assert report["goals"] == {
        "size_ratio_max": 0.3,
        "size_met": True,
        "accuracy_drop_max": 0.005,
        "accuracy_met": True,
    }


def test_the_more_accurate_quantization_is_chosen_and_is_what_is_on_disk(version):
    quantization = read_manifest(version)["quantization"]
    dynamic, static = quantization["candidates"]
    assert (dynamic["method"], static["method"]) == ("dynamic", "static")
    expected = "static" if static["accuracy"] > dynamic["accuracy"] else "dynamic"
    assert quantization["chosen"] == expected
    ops = {node.op_type for node in onnx.load(version / "model.int8.onnx").graph.node}
    if expected == "dynamic":
        assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    else:
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    chosen = dynamic if expected == "dynamic" else static
    assert chosen["bytes"] == (version / "model.int8.onnx").stat().st_size


def test_ort_format_loads_and_keeps_float_accuracy(version, test_set):
    data = (version / "model.ort").read_bytes()
    assert data[4:8] == b"ORTM"  # the ORT flatbuffer file identifier
    assert accuracy_of(version / "model.ort", test_set) == accuracy_of(version / "model.onnx", test_set)
    assert read_manifest(version)["variants"]["model.ort"]["parity_onnx"]["max_abs_diff"] <= 1e-5


def test_operator_config_lists_the_ops_a_reduced_mobile_build_needs(version):
    lines = [line for line in (version / OPERATOR_CONFIG).read_text().splitlines() if not line.startswith("#")]
    entries = {tuple(line.split(";")[:2]): set(line.split(";")[2].split(",")) for line in lines}
    ops = set().union(*entries.values())
    assert {"ArgMax", "Softmax"} <= ops
    assert ops & {"Gemm", "FusedGemm", "MatMul"}
    assert all(domain in {"ai.onnx", "com.microsoft"} and opset.isdigit() for domain, opset in entries)


def test_without_labels_dynamic_is_chosen_and_accuracy_is_unknown(version, tmp_path, test_set):
    result = quantize_int8(version / "model.onnx", tmp_path / "q.onnx", test_set[0][:200], test_set[0][:100], None)
    assert result.chosen.method == "dynamic" and all(c.accuracy is None for c in result.candidates)
    assert (tmp_path / "q.onnx").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["q.onnx"]
