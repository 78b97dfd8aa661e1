"""Hot reload: new versions load and take over, broken ones are rejected while the old one serves,
removed ones are drained; requests keep succeeding through every swap."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.registry import Registry, State
from service.runtime import RuntimeOptions
from tests.e2e.models import write_broken, write_model
from tests.service.conftest import wait_until

IMAGE = (np.arange(784).reshape(28, 28) % 256).tolist()


def probabilities(client: TestClient, path: str = "/v1/models/mnist:predict") -> list[float]:
    r = client.post(path, json={"instances": [IMAGE]})
    assert r.status_code == 200, r.text
    return r.json()["predictions"][0]["probabilities"]


def default_version(client: TestClient) -> int | None:
    return client.get("/api/models").json()["models"][0]["default_version"]


def test_a_new_version_takes_over_and_the_old_one_stays_addressable(client: TestClient, repository: Path) -> None:
    v1 = probabilities(client)
    write_model(repository, "mnist", 2, seed=2)
    wait_until(lambda: default_version(client) == 2)
    v2 = probabilities(client)
    assert not np.allclose(v1, v2)
    np.testing.assert_allclose(probabilities(client, "/v1/models/mnist/versions/1:predict"), v1)
    assert client.get("/v2/models/mnist").json()["versions"] == ["1", "2"]


def test_a_broken_version_is_rejected_reported_and_the_old_one_keeps_serving(
    client: TestClient, repository: Path
) -> None:
    v1 = probabilities(client)
    write_broken(repository, "mnist", 2)
    wait_until(lambda: len(client.get("/v1/models/mnist").json()["model_version_status"]) == 2)
    status = client.get("/v1/models/mnist/versions/2").json()["model_version_status"][0]
    assert status["state"] == "END" and status["status"]["error_code"] == "UNKNOWN"
    assert "onnxruntime cannot load it" in status["status"]["error_message"]
    np.testing.assert_allclose(probabilities(client), v1)
    r = client.post("/v1/models/mnist/versions/2:predict", json={"instances": [IMAGE]})
    assert r.status_code == 404 and "is not available" in r.json()["error"]
    assert client.get("/v2/health/ready").status_code == 200
    assert 'service_model_load_failures_total{model="mnist",version="2"} 1.0' in client.get("/metrics").text
    # fixing the file in place is picked up: its fingerprint changed
    model = write_model(repository / "fixed", "mnist", 2, seed=2)
    shutil.copyfile(model, repository / "mnist" / "2" / "model.onnx")
    wait_until(lambda: default_version(client) == 2)


def test_a_removed_version_is_dropped_and_the_previous_one_is_default_again(
    client: TestClient, repository: Path
) -> None:
    write_model(repository, "mnist", 2, seed=2)
    wait_until(lambda: default_version(client) == 2)
    shutil.rmtree(repository / "mnist" / "2")
    wait_until(lambda: default_version(client) == 1)
    r = client.post("/v1/models/mnist/versions/2:predict", json={"instances": [IMAGE]})
    assert r.status_code == 404 and "available versions: 1" in r.json()["error"]


def test_a_new_model_appears_and_a_removed_model_disappears(client: TestClient, repository: Path) -> None:
    write_model(repository, "other", 5, seed=3)
    wait_until(lambda: client.get("/v2/models/other/ready").status_code == 200)
    shutil.rmtree(repository / "other")
    wait_until(lambda: client.get("/v2/models/other").status_code == 404)


def test_requests_never_fail_while_versions_come_and_go(client: TestClient, repository: Path) -> None:
    stop = threading.Event()

    def churn() -> None:
        for v in range(2, 6):
            write_model(repository, "mnist", v, seed=v)
            stop.wait(0.15)
            write_broken(repository, "mnist", v + 10)
            stop.wait(0.15)
            shutil.rmtree(repository / "mnist" / str(v - 1))
            stop.wait(0.15)
        stop.set()

    worker = threading.Thread(target=churn)
    worker.start()
    codes = []
    while not stop.is_set():
        codes.append(client.post("/v1/models/mnist:predict", json={"instances": [IMAGE]}).status_code)
    worker.join()
    assert len(codes) > 20 and set(codes) == {200}


def test_draining_waits_for_in_flight_requests(tmp_path: Path) -> None:
    async def scenario() -> None:
        write_model(tmp_path, "m", 1, seed=1)
        write_model(tmp_path, "m", 2, seed=2)
        registry = Registry(tmp_path, RuntimeOptions())
        assert not registry.ready
        await registry.scan()
        assert registry.ready and registry.models["m"].default.version == 2  # type: ignore[union-attr]
        version = registry.models["m"].versions[2]
        with version.lease() as runtime:
            shutil.rmtree(tmp_path / "m" / "2")
            await registry.scan()
            assert registry.models["m"].default.version == 1  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
            assert version.state is State.UNLOADING and version.runtime is runtime  # still serving its request
            runtime.run({"images": np.zeros((1, 28, 28), np.float32)})
        await asyncio.sleep(0.05)
        assert version.state is State.END and version.runtime is None
        await registry.close()

    asyncio.run(scenario())


def test_a_version_folder_without_model_onnx_is_rejected_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "m" / "3").mkdir(parents=True)

    async def scan() -> Registry:
        registry = Registry(tmp_path, RuntimeOptions())
        await registry.scan()
        return registry

    registry = asyncio.run(scan())
    version = registry.models["m"].versions[3]
    assert version.state is State.END and "missing" in version.error and registry.models["m"].default is None


@pytest.mark.parametrize("name", ["a..b", ".hidden", "a b"])
def test_folders_that_are_not_model_names_are_skipped(tmp_path: Path, name: str) -> None:
    write_model(tmp_path, "ok", 1, seed=1)
    (tmp_path / name / "1").mkdir(parents=True, exist_ok=True)
    registry = Registry(tmp_path, RuntimeOptions())
    asyncio.run(registry.scan())
    assert list(registry.models) == ["ok"]
