"""Hot reload under load: while clients send requests without pause, versions are added (taking
traffic only once loaded and warmed up), a broken one is added (rejected and reported, the old
one keeps serving), and one is removed (drained). Not one request may fail."""

from __future__ import annotations

import datetime
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from exporter.graph import build_model
from tests.e2e.helpers import images, v2_json_input
from tests.e2e.live import LiveServer, live_server
from tests.e2e.models import make_spec, random_weights, write_broken, write_model

X = images(2, seed=51)
SEEDS = {1: 11, 2: 22, 3: 33}


@dataclass
class Traffic:
    """Background clients; every answer is checked against the version it says it came from."""

    server: LiveServer
    expected: dict[int, np.ndarray]  # version -> probabilities for X
    answers: list[tuple[float, int]] = field(default_factory=list)  # (time received, version)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, protocol: str) -> None:
        with self.server.client(timeout=10.0) as client:
            while not self.stop.is_set():
                try:
                    version, probs = self._one(client, protocol)
                except Exception as e:  # noqa: BLE001 - any failure of any kind is what we count
                    self.failures.append(f"{protocol}: {type(e).__name__}: {e}")
                    continue
                if version not in self.expected or not np.allclose(probs, self.expected[version], rtol=1e-5):
                    self.failures.append(f"{protocol}: version {version} answered wrong probabilities")
                self.answers.append((time.time(), version))

    def _one(self, client: httpx.Client, protocol: str) -> tuple[int, np.ndarray]:
        if protocol == "v2":
            response = client.post("/v2/models/hot/infer", json={"inputs": [v2_json_input("images", X)]})
            response.raise_for_status()
            body = response.json()
            probs = next(o for o in body["outputs"] if o["name"] == "probabilities")["data"]
            return int(body["model_version"]), np.array(probs, np.float32).reshape(2, 10)
        # TF Serving's predict does not say which version answered: ask the image-free V2 route's twin
        response = client.post("/v1/models/hot:predict", json={"instances": X.tolist()})
        response.raise_for_status()
        probs = np.array([row["probabilities"] for row in response.json()["predictions"]], np.float32)
        matches = [v for v, e in self.expected.items() if np.allclose(probs, e, rtol=1e-5)]
        return (matches[0] if matches else -1), probs

    def latest_version(self) -> int | None:
        return self.answers[-1][1] if self.answers else None

    def served_after(self, t: float) -> set[int]:
        return {v for when, v in list(self.answers) if when > t}


@pytest.fixture
def hot(tmp_path: Path) -> Iterator[tuple[LiveServer, Traffic]]:
    write_model(tmp_path, "hot", 1, seed=SEEDS[1])
    expected = {1: expected_for(1)}
    with live_server(tmp_path, poll_interval=0.2) as server:
        traffic = Traffic(server, expected)
        threads = [threading.Thread(target=traffic.run, args=(p,), daemon=True) for p in ("v2", "v2", "tfserving")]
        for t in threads:
            t.start()
        try:
            yield server, traffic
        finally:
            traffic.stop.set()
            for t in threads:
                t.join(15)


def expected_for(version: int) -> np.ndarray:
    """The probabilities version ``version`` must answer for X, computed before it is written."""
    spec = make_spec()
    model = build_model(spec, random_weights(spec, SEEDS[version]), name="hot", version=version)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"images": X})[0]


def _status(server: LiveServer) -> dict[str, dict]:
    body = httpx.get(server.url + "/v1/models/hot").json()
    return {s["version"]: s for s in body["model_version_status"]}


def _loaded_at(server: LiveServer, version: int) -> float:
    """Time of the service's log line saying this version finished loading and warming up."""
    for line in server.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "version loaded" and entry.get("model") == "hot" and entry.get("version") == version:
            stamp = datetime.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
            return stamp.replace(tzinfo=datetime.UTC).timestamp()
    raise AssertionError(f"no 'version loaded' log line for hot/{version}")


def test_versions_added_broken_and_removed_under_load(hot: tuple[LiveServer, Traffic]) -> None:
    server, traffic = hot
    repo = server.repository
    server.wait_until(lambda: len(traffic.answers) > 20, what="the clients to get going")

    # 1. a new version takes over, only after it was loaded and warmed up
    traffic.expected[2] = expected_for(2)
    write_model(repo, "hot", 2, seed=SEEDS[2])
    server.wait_until(lambda: traffic.latest_version() == 2, what="version 2 to take the default")
    assert _status(server)["2"]["state"] == "AVAILABLE"
    first_v2 = min(when for when, v in list(traffic.answers) if v == 2)
    assert first_v2 >= _loaded_at(server, 2), "version 2 answered before it was loaded and warmed up"
    assert (
        httpx.post(
            server.url + "/v2/models/hot/versions/1/infer", json={"inputs": [v2_json_input("images", X)]}
        ).json()["model_version"]
        == "1"
    )

    # 2. a broken version is rejected and reported; version 2 keeps serving
    write_broken(repo, "hot", 3)
    server.wait_until(
        lambda: "3" in _status(server) and _status(server)["3"]["state"] != "LOADING", what="version 3 to be judged"
    )
    status = _status(server)["3"]
    assert status["state"] != "AVAILABLE" and status["status"]["error_code"] != "OK"
    assert status["status"]["error_message"], status
    mark = time.time()
    time.sleep(1.0)
    assert traffic.served_after(mark) == {2}
    assert httpx.get(server.url + "/v2/health/ready").status_code == 200
    assert "version rejected" in server.log()
    api = httpx.get(server.url + "/api/models").json()["models"]
    (hot_api,) = [m for m in api if m["name"] == "hot"]
    assert hot_api["default_version"] in (2, "2")
    (v3,) = [v for v in hot_api["versions"] if str(v["version"]) == "3"]
    assert v3["error"] and v3["state"] != "AVAILABLE"
    metrics = httpx.get(server.url + "/metrics").text
    assert 'service_model_load_failures_total{model="hot",version="3"} 1.0' in metrics

    # 3. removing the default version drains it; version 1 takes over
    gone = repo / "hot" / ".2.removed"
    (repo / "hot" / "2").rename(gone)
    shutil.rmtree(gone)
    server.wait_until(lambda: traffic.latest_version() == 1, what="version 1 to take over from the removed 2")
    mark = time.time()
    time.sleep(0.6)
    assert traffic.served_after(mark) == {1}
    missing = httpx.post(server.url + "/v2/models/hot/versions/2/infer", json={"inputs": [v2_json_input("images", X)]})
    assert missing.status_code == 404

    # 4. fixing the broken version (a new model.onnx in its folder) loads it
    traffic.expected[3] = expected_for(3)
    broken = repo / "hot" / "3"
    broken.rename(broken.with_name(".3.broken"))
    write_model(repo, "hot", 3, seed=SEEDS[3])
    server.wait_until(lambda: traffic.latest_version() == 3, what="the fixed version 3 to take the default")
    assert _status(server)["3"]["status"] == {"error_code": "OK", "error_message": ""}

    traffic.stop.set()
    time.sleep(0.3)
    assert not traffic.failures, traffic.failures[:10]
    versions_seen = [v for _, v in traffic.answers]
    assert set(versions_seen) == {1, 2, 3}
    assert len(versions_seen) > 100
