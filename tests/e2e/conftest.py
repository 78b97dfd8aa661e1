"""Shared end-to-end fixtures: one model repository and one live server for the whole session.

Other suites reuse them: ``server`` (a LiveServer: ``.url``, ``.repository``, ``.log()``,
``.client()``) and ``client`` (an httpx.Client on it). Tests that must change the repository or
the settings start their own with ``tests.e2e.live.live_server``.

The shared repository:

    mnist/1, mnist/2     ours (exporter.graph.build_model, random weights), input images [batch, 28, 28]
    torch_mlp/1          torch.onnx.export: input [batch, 784], output logits (tests/data/foreign)
    tf_mlp/1             tf2onnx-style: dense_input [unk__6, 784] -> dense_1 (softmax)
    pair/1               two inputs a, b [batch, 3] -> sum, product (not an image model)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.live import RUNNING, LiveServer, live_server
from tests.e2e.models import TORCH_MLP, tf2onnx_style_mlp, two_input_model, write_model, write_onnx

SEEDS = {1: 101, 2: 202}  # mnist version -> weight seed
CORS_ORIGIN = "http://allowed.example"
MAX_BODY_BYTES = 8_000_000  # the 1000-image binary batch (3.1 MB) fits, its JSON twin (~11 MB) ...
MAX_BATCH_SIZE = 1000  # ... is sent in pieces; 1001 images in one request is too many


def build_repository(root: Path) -> Path:
    for version, seed in SEEDS.items():
        write_model(root, "mnist", version, seed=seed)
    write_onnx(root, "torch_mlp", 1, TORCH_MLP)
    write_onnx(root, "tf_mlp", 1, tf2onnx_style_mlp())
    write_onnx(root, "pair", 1, two_input_model())
    return root


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def server(repository: Path) -> Iterator[LiveServer]:
    args = ("--max-body-bytes", str(MAX_BODY_BYTES), "--max-batch-size", str(MAX_BATCH_SIZE))
    with live_server(repository, *args, env={"SERVICE_CORS_ORIGINS": CORS_ORIGIN}) as live:
        yield live


@pytest.fixture(scope="session")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, show the tail of each running server's log under the test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for live in RUNNING:
            report.sections.append((f"live server log {live.url} (tail)", live.log_tail(60)))
