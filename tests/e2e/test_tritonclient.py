"""NVIDIA's tritonclient (a client made for the Open Inference Protocol), used unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.e2e.helpers import images, reference
from tests.e2e.live import LiveServer
from tests.e2e.models import DIGITS


@pytest.fixture(scope="module")
def triton_client(server: LiveServer) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=30.0)
    yield client
    client.close()


def _input(x: np.ndarray, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("images", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    return tensor


def test_health_and_metadata(triton_client: triton.InferenceServerClient) -> None:
    assert triton_client.is_server_live()
    assert triton_client.is_server_ready()
    assert triton_client.is_model_ready("mnist")
    assert triton_client.is_model_ready("mnist", "1")
    assert not triton_client.is_model_ready("mnist", "7")
    assert "binary_tensor_data" in triton_client.get_server_metadata()["extensions"]
    metadata = triton_client.get_model_metadata("mnist")
    assert metadata["name"] == "mnist"
    assert metadata["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert [o["name"] for o in metadata["outputs"]] == ["probabilities", "label"]


def test_infer_json_in_json_out(triton_client: triton.InferenceServerClient, repository: Path) -> None:
    x = images(4, seed=11)
    outputs = [triton.InferRequestedOutput(n, binary_data=False) for n in ("probabilities", "label")]
    result = triton_client.infer("mnist", [_input(x, binary=False)], outputs=outputs, request_id="t1")
    expected = reference(repository, "mnist", 2, x)
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])
    response = result.get_response()
    assert response["id"] == "t1" and response["model_version"] == "2"


def test_infer_binary_in_binary_out(triton_client: triton.InferenceServerClient, repository: Path) -> None:
    x = images(256, seed=12)
    outputs = [triton.InferRequestedOutput(n, binary_data=True) for n in ("probabilities", "label")]
    result = triton_client.infer("mnist", [_input(x, binary=True)], outputs=outputs, model_version="1")
    expected = reference(repository, "mnist", 1, x)
    assert result.as_numpy("probabilities").shape == (256, 10)
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])
    assert result.get_response()["model_version"] == "1"


def test_infer_without_requested_outputs_gets_all_of_them_binary(
    triton_client: triton.InferenceServerClient, repository: Path
) -> None:
    # tritonclient then sets binary_data_output on a plain JSON request
    x = images(3, seed=13)
    result = triton_client.infer("mnist", [_input(x, binary=False)])
    np.testing.assert_array_equal(result.as_numpy("label"), reference(repository, "mnist", 2, x)["label"])
    assert result.as_numpy("probabilities").shape == (3, 10)


def test_foreign_model_through_tritonclient(triton_client: triton.InferenceServerClient, repository: Path) -> None:
    x = images(2, seed=14, shape=(784,))
    tensor = triton.InferInput("input", [2, 784], "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    result = triton_client.infer("torch_mlp", [tensor], outputs=[triton.InferRequestedOutput("logits")])
    np.testing.assert_allclose(result.as_numpy("logits"), reference(repository, "torch_mlp", 1, x)["logits"], rtol=1e-5)


def test_errors_reach_the_client_as_exceptions_with_the_message(triton_client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="nope"):
        triton_client.get_model_metadata("nope")
    bad = triton.InferInput("images", [1, 27, 28], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 27, 28), np.float32), binary_data=True)
    with pytest.raises(InferenceServerException, match=r"28") as info:
        triton_client.infer("mnist", [bad])
    assert info.value.status() == "400"
    assert triton_client.is_server_ready()


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_request_is_decoded_or_refused_clearly(
    triton_client: triton.InferenceServerClient, repository: Path, algorithm: str
) -> None:
    # tritonclient can compress request bodies (Content-Encoding); the service must either read them
    # or say it does not, never report the compressed bytes as "malformed JSON"
    x = images(2, seed=15)
    try:
        result = triton_client.infer("mnist", [_input(x, binary=True)], request_compression_algorithm=algorithm)
    except InferenceServerException as e:
        assert e.status() == "415" and "content-encoding" in str(e).lower(), str(e)
    else:
        np.testing.assert_array_equal(result.as_numpy("label"), reference(repository, "mnist", 2, x)["label"])


def test_classification_request_is_answered_or_refused_never_ignored(
    triton_client: triton.InferenceServerClient, repository: Path
) -> None:
    """``InferRequestedOutput(name, class_count=k)`` asks for Triton's classification extension: k
    strings "score:index:label" per row. Ignoring it would hand the client floats it cannot parse."""
    x = images(2, seed=16)
    try:
        result = triton_client.infer(
            "mnist", [_input(x, binary=True)], outputs=[triton.InferRequestedOutput("probabilities", class_count=3)]
        )
    except InferenceServerException as e:
        assert e.status() == "400" and "classification" in str(e).lower(), str(e)
        assert "classification" not in triton_client.get_server_metadata()["extensions"]
        return
    assert "classification" in triton_client.get_server_metadata()["extensions"]
    rows = result.as_numpy("probabilities")
    assert rows.shape == (2, 3)
    probabilities = reference(repository, "mnist", 2, x)["probabilities"]
    for row, probs in zip(rows, probabilities, strict=True):
        entries = [item.decode().split(":") for item in row]
        assert [int(e[1]) for e in entries] == np.argsort(-probs, kind="stable")[:3].tolist()
        np.testing.assert_allclose([float(e[0]) for e in entries], np.sort(probs)[::-1][:3], rtol=1e-5)
        assert [e[2] for e in entries] == [DIGITS[int(e[1])] for e in entries]
