"""Open Inference Protocol (KServe V2) over TCP, against the spec in serving-anchors.md section 2."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import numpy as np
import orjson

from service.protocols.binary import HEADER_LENGTH, decode_response, encode_request
from tests.e2e.helpers import images, reference, v2_json_input
from tests.e2e.live import LiveServer

OUR_OUTPUTS = [
    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
    {"name": "label", "datatype": "INT64", "shape": [-1]},
]


def test_health_live_and_ready_are_200_with_empty_bodies(client: httpx.Client) -> None:
    for path in ("/v2/health/live", "/v2/health/ready"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.content == b"", path


def test_server_metadata_advertises_the_binary_extension(client: httpx.Client) -> None:
    response = client.get("/v2")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["name"], str) and body["name"]
    assert isinstance(body["version"], str) and body["version"]
    assert "binary_tensor_data" in body["extensions"]


def test_model_metadata_reads_the_signature_from_the_model(client: httpx.Client) -> None:
    body = client.get("/v2/models/mnist").json()
    assert body["name"] == "mnist"
    assert body["versions"] == ["1", "2"]
    assert body["platform"] == "onnxruntime_onnx"
    assert body["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert body["outputs"] == OUR_OUTPUTS


def test_version_metadata(client: httpx.Client) -> None:
    response = client.get("/v2/models/mnist/versions/1")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "mnist"
    assert body["inputs"][0]["name"] == "images" and body["outputs"] == OUR_OUTPUTS


def test_model_and_version_ready(client: httpx.Client) -> None:
    assert client.get("/v2/models/mnist/ready").status_code == 200
    assert client.get("/v2/models/mnist/versions/1/ready").status_code == 200
    assert client.get("/v2/models/mnist/versions/2/ready").status_code == 200
    missing = client.get("/v2/models/mnist/versions/9/ready")
    assert 400 <= missing.status_code < 500
    assert 400 <= client.get("/v2/models/nope/ready").status_code < 500


def test_infer_json_defaults_to_the_highest_version_and_matches_onnxruntime(
    client: httpx.Client, repository: Path
) -> None:
    x = images(3, seed=1)
    response = client.post("/v2/models/mnist/infer", json={"id": "req-42", "inputs": [v2_json_input("images", x)]})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["model_name"] == "mnist"
    assert body["model_version"] == "2"
    assert body["id"] == "req-42"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert set(outputs) == {"probabilities", "label"}
    expected = reference(repository, "mnist", 2, x)
    assert outputs["probabilities"]["datatype"] == "FP32" and outputs["probabilities"]["shape"] == [3, 10]
    assert outputs["label"]["datatype"] == "INT64" and outputs["label"]["shape"] == [3]
    got = np.array(outputs["probabilities"]["data"], dtype=np.float32).reshape(3, 10)
    np.testing.assert_allclose(got, expected["probabilities"], rtol=1e-6, atol=1e-7)
    assert outputs["label"]["data"] == expected["label"].tolist()


def test_infer_a_specific_version(client: httpx.Client, repository: Path) -> None:
    x = images(2, seed=2)
    body = client.post("/v2/models/mnist/versions/1/infer", json={"inputs": [v2_json_input("images", x)]}).json()
    assert body["model_version"] == "1"
    assert "id" not in body or body["id"] in ("", None)
    probs = np.array(next(o for o in body["outputs"] if o["name"] == "probabilities")["data"], np.float32)
    np.testing.assert_allclose(probs.reshape(2, 10), reference(repository, "mnist", 1, x)["probabilities"], rtol=1e-6)
    # the versions really differ, so the route did pick version 1
    assert not np.allclose(
        reference(repository, "mnist", 1, x)["probabilities"], reference(repository, "mnist", 2, x)["probabilities"]
    )


def test_nested_data_is_accepted_like_flat_data(client: httpx.Client) -> None:
    x = images(2, seed=3)
    flat = client.post("/v2/models/mnist/infer", json={"inputs": [v2_json_input("images", x)]}).json()
    nested_input = {"name": "images", "shape": [2, 28, 28], "datatype": "FP32", "data": x.tolist()}
    nested = client.post("/v2/models/mnist/infer", json={"inputs": [nested_input]}).json()
    assert nested["outputs"] == flat["outputs"]


def test_requested_outputs_only(client: httpx.Client, repository: Path) -> None:
    x = images(4, seed=4)
    request = {"inputs": [v2_json_input("images", x)], "outputs": [{"name": "label"}]}
    body = client.post("/v2/models/mnist/infer", json=request).json()
    assert [o["name"] for o in body["outputs"]] == ["label"]
    assert body["outputs"][0]["data"] == reference(repository, "mnist", 2, x)["label"].tolist()


def test_request_parameters_are_accepted(client: httpx.Client) -> None:
    request = {
        "id": "p",
        "parameters": {"priority": 1, "note": "anything", "flag": True},
        "inputs": [v2_json_input("images", images(1)) | {"parameters": {"unused": "x"}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": False}}],
    }
    response = client.post("/v2/models/mnist/infer", json=request)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == "p"
    assert HEADER_LENGTH.lower() not in response.headers


def test_integer_datatypes_are_converted_to_the_models_float(client: httpx.Client) -> None:
    x = images(1, seed=5)
    as_float = client.post("/v2/models/mnist/infer", json={"inputs": [v2_json_input("images", x)]}).json()
    request = {"inputs": [v2_json_input("images", x.astype(np.int64), "INT64")]}
    as_int = client.post("/v2/models/mnist/infer", json=request)
    assert as_int.status_code == 200, as_int.text
    assert as_int.json()["outputs"] == as_float["outputs"]


# ----- the binary tensor extension ----------------------------------------------------------------


def _binary_infer(client: httpx.Client, x: np.ndarray, outputs: list[dict] | None, **header: object) -> httpx.Response:
    request = {"inputs": [{"name": "images", "shape": list(x.shape), "datatype": "FP32"}], **header}
    if outputs is not None:
        request["outputs"] = outputs
    body, n = encode_request(request, {"images": x})
    headers = {HEADER_LENGTH: str(n), "Content-Type": "application/octet-stream"}
    return client.post("/v2/models/mnist/infer", content=body, headers=headers)


def test_binary_batch_of_1000_matches_the_json_answer(client: httpx.Client, repository: Path) -> None:
    x = images(1000, seed=6)
    binary_outputs = [{"name": n, "parameters": {"binary_data": True}} for n in ("probabilities", "label")]
    response = _binary_infer(client, x, binary_outputs, id="big")
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "application/octet-stream"
    header, arrays = decode_response(response.content, response.headers[HEADER_LENGTH])
    assert header["id"] == "big" and header["model_version"] == "2"
    assert arrays["probabilities"].shape == (1000, 10) and arrays["probabilities"].dtype == np.float32
    assert arrays["label"].shape == (1000,) and arrays["label"].dtype == np.int64

    # the same images as JSON (in two halves: the JSON of 1000 images is bigger than the body limit)
    json_probs, json_labels = [], []
    for part in np.split(x, 2):
        body = client.post("/v2/models/mnist/infer", json={"inputs": [v2_json_input("images", part)]}).json()
        out = {o["name"]: o["data"] for o in body["outputs"]}
        json_probs.append(np.array(out["probabilities"], np.float32).reshape(-1, 10))
        json_labels += out["label"]
    np.testing.assert_array_equal(arrays["probabilities"], np.concatenate(json_probs))
    assert arrays["label"].tolist() == json_labels
    np.testing.assert_allclose(
        arrays["probabilities"], reference(repository, "mnist", 2, x)["probabilities"], rtol=1e-6
    )


def test_binary_input_with_json_outputs(client: httpx.Client, repository: Path) -> None:
    x = images(5, seed=7)
    response = _binary_infer(client, x, None)
    assert response.status_code == 200, response.text
    assert HEADER_LENGTH.lower() not in response.headers
    body = response.json()
    labels = next(o for o in body["outputs"] if o["name"] == "label")["data"]
    assert labels == reference(repository, "mnist", 2, x)["label"].tolist()


def test_binary_data_output_for_a_json_request(client: httpx.Client, repository: Path) -> None:
    x = images(3, seed=8)
    request = {"inputs": [v2_json_input("images", x)], "parameters": {"binary_data_output": True}}
    response = client.post("/v2/models/mnist/infer", json=request)
    assert response.status_code == 200, response.text
    header, arrays = decode_response(response.content, response.headers[HEADER_LENGTH])
    assert set(arrays) == {"probabilities", "label"}
    for output in header["outputs"]:
        assert "data" not in output and output["parameters"]["binary_data_size"] == arrays[output["name"]].nbytes
    assert arrays["label"].tolist() == reference(repository, "mnist", 2, x)["label"].tolist()


def test_mixed_binary_and_json_outputs(client: httpx.Client) -> None:
    x = images(2, seed=9)
    outputs = [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "label"}]
    response = _binary_infer(client, x, outputs)
    header, arrays = decode_response(response.content, response.headers[HEADER_LENGTH])
    assert list(arrays) == ["probabilities"]
    label = next(o for o in header["outputs"] if o["name"] == "label")
    assert label["data"] == arrays["probabilities"].argmax(1).tolist()


def test_binary_request_with_bad_sizes_is_a_400_that_says_why(client: httpx.Client) -> None:
    x = images(2)
    request = {"inputs": [{"name": "images", "shape": [2, 28, 28], "datatype": "FP32"}]}
    body, n = encode_request(request, {"images": x})
    response = client.post(
        "/v2/models/mnist/infer",
        content=body[:-8],
        headers={HEADER_LENGTH: str(n), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 400
    assert "binary_data_size" in response.json()["error"]
    header = orjson.loads(body[:n])
    header["inputs"][0]["shape"] = [3, 28, 28]  # declares more data than sent
    raw = orjson.dumps(header)
    response = client.post(
        "/v2/models/mnist/infer",
        content=raw + body[n:],
        headers={HEADER_LENGTH: str(len(raw)), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 400
    assert "needs" in response.json()["error"] and "[3, 28, 28]" in response.json()["error"]


def test_two_inputs_in_any_order_and_one_requested_output(client: httpx.Client) -> None:
    a = np.array([[1, 2, 3]], np.float32)
    b = np.array([[4, 5, 6]], np.float32)
    request = {"inputs": [v2_json_input("b", b), v2_json_input("a", a)], "outputs": [{"name": "product"}]}
    body = client.post("/v2/models/pair/infer", json=request).json()
    assert body["outputs"] == [{"name": "product", "datatype": "FP32", "shape": [1, 3], "data": [4.0, 10.0, 18.0]}]
    missing = client.post("/v2/models/pair/infer", json={"inputs": [v2_json_input("a", a)]})
    assert missing.status_code == 400 and "'b'" in missing.json()["error"]


def test_concurrent_clients_each_get_their_own_answer(
    client: httpx.Client, server: LiveServer, repository: Path
) -> None:
    inputs = [images(1 + i % 4, seed=300 + i) for i in range(64)]
    expected = [reference(repository, "mnist", 2, x)["label"].tolist() for x in inputs]
    wrong: list[int] = []

    def worker(indices: range) -> None:
        with server.client() as c:
            for i in indices:
                body = c.post("/v2/models/mnist/infer", json={"inputs": [v2_json_input("images", inputs[i])]}).json()
                if next(o for o in body["outputs"] if o["name"] == "label")["data"] != expected[i]:
                    wrong.append(i)

    threads = [threading.Thread(target=worker, args=(range(k, 64, 16),)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not wrong
