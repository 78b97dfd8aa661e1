"""config.pbtxt must parse against Triton's own model-config schema (shipped in tritonclient)."""

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from exporter.triton import config_pbtxt, labels_txt
from tests.exporter.models import random_spec


def parse(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_config_parses_with_onnxruntime_platform_batching_and_signature():
    config = parse(config_pbtxt(random_spec(), name="mnist", max_batch_size=64))
    assert config.name == "mnist" and config.platform == "onnxruntime_onnx"
    assert config.default_model_filename == "model.onnx"
    assert config.max_batch_size == 64
    assert config.HasField("dynamic_batching") and config.dynamic_batching.max_queue_delay_microseconds == 100
    (images,) = config.input
    assert (images.name, images.data_type, list(images.dims)) == ("images", model_config_pb2.TYPE_FP32, [28, 28])
    probabilities, label = config.output
    assert (probabilities.name, probabilities.data_type, list(probabilities.dims)) == (
        "probabilities",
        model_config_pb2.TYPE_FP32,
        [10],
    )
    assert probabilities.label_filename == "labels.txt"
    # [batch] in the model: one element per item, reshaped to a scalar (Triton's documented form)
    assert (label.name, label.data_type, list(label.dims)) == ("label", model_config_pb2.TYPE_INT64, [1])
    assert label.HasField("reshape") and list(label.reshape.shape) == []
    assert config.version_policy.HasField("all")
    assert config.model_warmup[0].inputs["images"].zero_data


def test_dims_follow_the_model_input_shape_and_classes():
    config = parse(config_pbtxt(random_spec(input_shape=(3, 8, 8), classes=4), name="small"))
    assert list(config.input[0].dims) == [3, 8, 8]
    assert list(config.output[0].dims) == [4]
    assert list(config.model_warmup[0].inputs["images"].dims) == [3, 8, 8]


@pytest.mark.parametrize("name", ["mnist", "model-1.2_b"])
def test_names_are_quoted_so_any_valid_model_name_parses(name):
    assert parse(config_pbtxt(random_spec(), name=name)).name == name


def test_labels_file_has_one_label_per_line_in_class_order():
    assert labels_txt(random_spec(classes=3)) == "0\n1\n2\n"
