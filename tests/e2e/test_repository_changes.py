"""Whole models coming and going while the server runs, versions without a model file, and the
file-download API refusing what is not a regular file of the version folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.e2e.helpers import images, v2_json_input
from tests.e2e.live import live_server
from tests.e2e.models import write_model


def _names(client: httpx.Client) -> list[str]:
    return [m["name"] for m in client.get("/api/models").json()["models"]]


def test_models_added_and_removed_at_run_time(tmp_path: Path) -> None:
    write_model(tmp_path, "keep", 1, seed=1)
    write_model(tmp_path, "gone", 1, seed=2)
    with live_server(tmp_path) as server, server.client() as client:
        assert _names(client) == ["gone", "keep"]
        write_model(tmp_path, "fresh", 4, seed=3)
        server.wait_until(lambda: client.get("/v2/models/fresh/ready").status_code == 200, what="the new model")
        body = client.post("/v2/models/fresh/infer", json={"inputs": [v2_json_input("images", images(1))]}).json()
        assert body["model_version"] == "4"

        shutil.rmtree(tmp_path / "gone")
        server.wait_until(lambda: client.get("/v2/models/gone").status_code == 404, what="the removed model to go")
        assert _names(client) == ["fresh", "keep"]
        error = client.post("/v1/models/gone:predict", json={"instances": images(1).tolist()}).json()["error"]
        assert "gone" in error and "keep" in error  # says which models there are
        assert client.get("/v2/health/ready").status_code == 200
        metrics = client.get("/metrics").text
        assert 'service_model_versions_loaded{model="gone"} 0.0' in metrics
        assert 'service_model_versions_loaded{model="fresh"} 1.0' in metrics


def test_version_folder_without_a_model_file_is_rejected_with_a_reason(tmp_path: Path) -> None:
    write_model(tmp_path, "m", 1, seed=1)
    (tmp_path / "m" / "2").mkdir()
    (tmp_path / "m" / "2" / "README.md").write_text("the export was interrupted\n")
    with live_server(tmp_path) as server, server.client() as client:
        status = {s["version"]: s for s in client.get("/v1/models/m").json()["model_version_status"]}
        assert status["1"]["state"] == "AVAILABLE"
        assert status["2"]["state"] != "AVAILABLE" and "model.onnx" in status["2"]["status"]["error_message"]
        assert client.get("/v2/models/m/versions/2/ready").status_code != 200
        infer = client.post("/v2/models/m/infer", json={"inputs": [v2_json_input("images", images(1))]})
        assert infer.json()["model_version"] == "1"


def test_file_api_serves_only_regular_files_of_the_version_folder(tmp_path: Path) -> None:
    write_model(tmp_path, "m", 1, seed=1)
    version = tmp_path / "m" / "1"
    (version / "notes.txt").write_text("hello\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the version folder\n")
    (version / "link.txt").symlink_to(secret)
    (version / "sub").mkdir()
    (version / "sub" / "inner.txt").write_text("nested\n")
    with live_server(tmp_path) as server, server.client() as client:
        assert client.get("/api/models/m/versions/1/files/notes.txt").text == "hello\n"
        for name in ("link.txt", "sub", "sub%2Finner.txt", "..%2F..%2Fsecret.txt", "%2E%2E"):
            response = client.get(f"/api/models/m/versions/1/files/{name}")
            assert response.status_code == 404, (name, response.text)
            assert "outside" not in response.text
        files = next(v for v in client.get("/api/models").json()["models"][0]["versions"] if str(v["version"]) == "1")[
            "files"
        ]
        assert "notes.txt" in files and "link.txt" not in files and "sub" not in files
