"""TensorFlow Serving REST API over TCP (api_rest.md; serving-anchors.md section 1)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from tests.e2e.helpers import images, reference


def test_predict_row_format_answers_one_object_per_instance(client: httpx.Client, repository: Path) -> None:
    x = images(3, seed=21)
    response = client.post("/v1/models/mnist:predict", json={"instances": x.tolist()})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    expected = reference(repository, "mnist", 2, x)  # the highest version is the default
    assert len(predictions) == 3
    for row, probs, label in zip(predictions, expected["probabilities"], expected["label"], strict=True):
        assert set(row) == {"probabilities", "label"}
        np.testing.assert_allclose(row["probabilities"], probs, rtol=1e-6, atol=1e-7)
        assert row["label"] == int(label)


def test_predict_columnar_format_answers_outputs_by_name(client: httpx.Client, repository: Path) -> None:
    x = images(2, seed=22)
    response = client.post("/v1/models/mnist:predict", json={"inputs": x.tolist()})
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    expected = reference(repository, "mnist", 2, x)
    np.testing.assert_allclose(outputs["probabilities"], expected["probabilities"], rtol=1e-6, atol=1e-7)
    assert outputs["label"] == expected["label"].tolist()


def test_columnar_inputs_keyed_by_input_name(client: httpx.Client) -> None:
    x = images(2, seed=23)
    plain = client.post("/v1/models/mnist:predict", json={"inputs": x.tolist()}).json()
    named = client.post("/v1/models/mnist:predict", json={"inputs": {"images": x.tolist()}}).json()
    assert named == plain


def test_row_format_objects_keyed_by_input_name(client: httpx.Client) -> None:
    x = images(2, seed=24)
    plain = client.post("/v1/models/mnist:predict", json={"instances": x.tolist()}).json()
    named = client.post("/v1/models/mnist:predict", json={"instances": [{"images": i.tolist()} for i in x]}).json()
    assert named == plain


def test_predict_a_specific_version_and_signature_name(client: httpx.Client, repository: Path) -> None:
    x = images(1, seed=25)
    body = {"signature_name": "serving_default", "instances": x.tolist()}
    response = client.post("/v1/models/mnist/versions/1:predict", json=body)
    assert response.status_code == 200, response.text
    row = response.json()["predictions"][0]
    np.testing.assert_allclose(
        row["probabilities"], reference(repository, "mnist", 1, x)["probabilities"][0], rtol=1e-6
    )


def test_single_output_model_answers_plain_lists(client: httpx.Client, repository: Path) -> None:
    # TF Serving omits the output name when a model has one output
    x = images(2, seed=26, shape=(784,))
    expected = reference(repository, "torch_mlp", 1, x)["logits"]
    rows = client.post("/v1/models/torch_mlp:predict", json={"instances": x.tolist()}).json()["predictions"]
    np.testing.assert_allclose(np.array(rows, np.float32), expected, rtol=1e-5)
    columns = client.post("/v1/models/torch_mlp:predict", json={"inputs": x.tolist()}).json()["outputs"]
    np.testing.assert_allclose(np.array(columns, np.float32), expected, rtol=1e-5)


def test_model_status_lists_every_version(client: httpx.Client) -> None:
    response = client.get("/v1/models/mnist")
    assert response.status_code == 200
    statuses = sorted(response.json()["model_version_status"], key=lambda s: int(s["version"]))
    assert statuses == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
    ]


def test_version_status(client: httpx.Client) -> None:
    response = client.get("/v1/models/mnist/versions/1")
    assert response.status_code == 200
    assert response.json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def test_metadata_is_a_signature_def_in_tf_servings_json(client: httpx.Client) -> None:
    response = client.get("/v1/models/mnist/metadata")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_spec"]["name"] == "mnist"
    assert body["model_spec"]["version"] == "2"
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    images_input = signature["inputs"]["images"]
    assert images_input["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in images_input["tensor_shape"]["dim"]] == ["-1", "28", "28"]
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert signature["outputs"]["label"]["dtype"] == "DT_INT64"


def test_version_metadata(client: httpx.Client) -> None:
    body = client.get("/v1/models/mnist/versions/1/metadata").json()
    assert body["model_spec"]["version"] == "1"


def test_unknown_model_is_404_in_tf_servings_error_format(client: httpx.Client) -> None:
    for response in (
        client.post("/v1/models/nope:predict", json={"instances": [[1.0]]}),
        client.get("/v1/models/nope"),
        client.get("/v1/models/nope/metadata"),
        client.post("/v1/models/mnist/versions/9:predict", json={"instances": images(1).tolist()}),
        client.get("/v1/models/mnist/versions/9"),
    ):
        assert response.status_code == 404, response.url
        error = response.json()["error"]
        assert isinstance(error, str) and ("nope" in error or "9" in error)


A = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
B = [[0.5, 0.5, 0.5], [2.0, -1.0, 0.0]]
SUM = [[1.5, 2.5, 3.5], [6.0, 4.0, 6.0]]
PRODUCT = [[0.5, 1.0, 1.5], [8.0, -5.0, 0.0]]


def test_multi_input_row_format_is_a_list_of_objects(client: httpx.Client) -> None:
    instances = [{"a": a, "b": b} for a, b in zip(A, B, strict=True)]
    response = client.post("/v1/models/pair:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [{"sum": s, "product": p} for s, p in zip(SUM, PRODUCT, strict=True)]}


def test_multi_input_columnar_format_is_an_object_keyed_by_name(client: httpx.Client) -> None:
    response = client.post("/v1/models/pair:predict", json={"inputs": {"a": A, "b": B}})
    assert response.status_code == 200, response.text
    assert response.json() == {"outputs": {"sum": SUM, "product": PRODUCT}}


def test_multi_input_missing_one_says_which(client: httpx.Client) -> None:
    for body in ({"inputs": {"a": A}}, {"instances": [{"a": A[0]}]}):
        response = client.post("/v1/models/pair:predict", json=body)
        assert response.status_code == 400
        assert "'b'" in response.json()["error"]


def test_foreign_model_metadata_uses_its_own_signature(client: httpx.Client) -> None:
    body = client.get("/v1/models/torch_mlp/metadata").json()
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert list(signature["inputs"]) == ["input"] and list(signature["outputs"]) == ["logits"]
    assert [d["size"] for d in signature["inputs"]["input"]["tensor_shape"]["dim"]] == ["-1", "784"]
    assert (body["model_spec"]["name"], body["model_spec"]["version"]) == ("torch_mlp", "1")
