"""In-process service fixtures: a model repository of small random-weight models and a TestClient
of ``create_app`` on it (lifespan run, repository loaded, polling fast so hot-reload tests are quick)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import Settings, create_app
from service.runtime import ModelRuntime
from tests.e2e.models import TORCH_MLP, write_model

Client = Callable[..., TestClient]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_model(root, "mnist", 1, seed=1)
    return root


@pytest.fixture
def make_client(repository: Path) -> Iterator[Client]:
    """``make_client(**settings)`` -> a started TestClient whose repository is loaded (ready)."""
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        options: dict[str, object] = {"repository": repository, "poll_interval": 0.1, **overrides}
        client = TestClient(create_app(Settings(**options)), raise_server_exceptions=False)  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        wait_until(lambda: client.get("/v2/health/ready").status_code == 200)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Client) -> TestClient:
    return make_client()


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> ModelRuntime:
    """Our signature: images [batch, 28, 28] FP32 -> probabilities [batch, 10], label [batch]."""
    path = write_model(tmp_path_factory.mktemp("runtime") / "models", "mnist", 1, seed=1)
    return ModelRuntime(path)


@pytest.fixture(scope="session")
def foreign_runtime() -> ModelRuntime:
    """torch.onnx.export's MLP: input [batch, 784] -> logits [batch, 10], no metadata."""
    return ModelRuntime(TORCH_MLP)
