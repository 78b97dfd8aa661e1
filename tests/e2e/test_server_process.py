"""The service as a process: its CLI, shutdown, request timeout, a slow request not stalling
others, dynamic batching keeping answers apart, and several workers without the delayed-ACK trap."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from service.config import Settings
from service.protocols.binary import HEADER_LENGTH, encode_request
from tests.e2e.helpers import images, reference, v2_json_input
from tests.e2e.live import LiveServer, live_server, stop
from tests.e2e.models import write_model, write_onnx


def test_help_explains_every_setting() -> None:
    out = subprocess.run([sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in Settings.model_fields:
        flag = "--" + name.replace("_", "-")
        assert flag in out.stdout, f"{flag} missing from --help"
        assert f"SERVICE_{name.upper()}" in out.stdout, f"env SERVICE_{name.upper()} not mentioned"


def test_bad_flag_is_a_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service", "--port", "lots"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "--port" in out.stderr


def slow_model(repeats: int = 60) -> onnx.ModelProto:
    """[batch, 784] -> the same values after ``repeats`` 784x784 MatMuls: about a second at batch 1000."""
    eye = numpy_helper.from_array(np.eye(784, dtype=np.float32), "eye")
    nodes = [helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", "eye"], [f"h{i + 1}"]) for i in range(repeats)]
    nodes.append(helper.make_node("Identity", [f"h{repeats}"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 784])],
        initializer=[eye],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def start_slow_request(server: LiveServer) -> tuple[threading.Thread, list[httpx.Response]]:
    """Post a 1000-row batch to the ``slow`` model from a thread; its answer lands in the list."""
    x = np.ones((1000, 784), np.float32)
    body, n = encode_request({"inputs": [{"name": "x", "shape": [1000, 784], "datatype": "FP32"}]}, {"x": x})
    answers: list[httpx.Response] = []
    url = server.url + "/v2/models/slow/infer"
    slow = threading.Thread(
        target=lambda: answers.append(httpx.post(url, content=body, headers={HEADER_LENGTH: str(n)}, timeout=30))
    )
    slow.start()
    return slow, answers


def test_request_timeout_is_a_504_and_does_not_stall_other_requests(tmp_path: Path) -> None:
    write_onnx(tmp_path, "slow", 1, slow_model())
    with live_server(tmp_path, "--request-timeout", "0.3") as server:
        slow, answers = start_slow_request(server)
        time.sleep(0.1)
        waits = []
        # probe for a fixed window, not just while the client waits: the inference goes on after the 504
        probe_until = time.monotonic() + 0.8
        while slow.is_alive() or time.monotonic() < probe_until:
            started = time.monotonic()
            assert httpx.get(server.url + "/v2/health/live", timeout=5).status_code == 200
            waits.append(time.monotonic() - started)
            time.sleep(0.02)
        slow.join()
        (response,) = answers
        assert response.status_code == 504, response.text
        assert "0.3" in response.json()["error"]
        # blocked, the loop would answer nothing until the inference ended (~1 s); the bound leaves room
        # for a busy 2-core machine, where even an idle loop sees 0.2 s scheduling gaps
        assert len(waits) >= 3 and max(waits) < 0.6, f"health checks waited up to {max(waits):.3f}s"
        small = {"inputs": [v2_json_input("x", np.ones((1, 784), np.float32))]}
        assert httpx.post(server.url + "/v2/models/slow/infer", json=small, timeout=30).status_code == 200
        assert httpx.get(server.url + "/v2/health/ready").status_code == 200


def test_dynamic_batching_keeps_each_callers_answer(tmp_path: Path) -> None:
    write_model(tmp_path, "m", 1, seed=3)
    inputs = [images(1 + i % 3, seed=100 + i) for i in range(48)]
    expected = [reference(tmp_path, "m", 1, x)["probabilities"] for x in inputs]
    with live_server(tmp_path, "--batching", "--batch-max-delay-ms", "5") as server:
        errors: list[str] = []

        def client(indices: range) -> None:
            with server.client() as c:
                for i in indices:
                    r = c.post("/v2/models/m/infer", json={"inputs": [v2_json_input("images", inputs[i])]})
                    got = np.array(r.json()["outputs"][0]["data"], np.float32).reshape(expected[i].shape)
                    if r.status_code != 200 or not np.allclose(got, expected[i], rtol=1e-5, atol=1e-7):
                        errors.append(f"request {i}: {r.status_code}")

        threads = [threading.Thread(target=client, args=(range(k, 48, 8),)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        metrics = httpx.get(server.url + "/metrics").text
        assert 'service_inference_batch_size_sum{model="m",version="1"} 96.0' in metrics


@pytest.mark.slow  # two spawned workers take ~10 s to start here
def test_two_workers_answer_without_the_delayed_ack_stall(tmp_path: Path) -> None:
    # uvicorn's own socket + asyncio without TCP_NODELAY makes each response wait ~44 ms (perf notes)
    write_model(tmp_path, "m", 1, seed=4)
    request = {"instances": images(1).tolist()}
    with live_server(tmp_path, "--workers", "2") as server, server.client() as c:
        for _ in range(5):
            assert c.post("/v1/models/m:predict", json=request).status_code == 200
        timings = []
        for _ in range(30):
            started = time.perf_counter()
            assert c.post("/v1/models/m:predict", json=request).status_code == 200
            timings.append(time.perf_counter() - started)
        assert statistics.median(timings) < 0.035, f"median {statistics.median(timings) * 1000:.1f} ms"


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    write_onnx(tmp_path, "slow", 1, slow_model())
    with live_server(tmp_path) as server:
        slow, answers = start_slow_request(server)
        time.sleep(0.15)
        started = time.monotonic()
        code = stop(server)
        slow.join()
        # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully
        assert code in (0, -signal.SIGTERM), server.log_tail()
        assert time.monotonic() - started < 8
        (response,) = answers
        assert response.status_code == 200, response.text
        assert len(response.json()["outputs"][0]["data"]) == 1000 * 784
        messages = [json.loads(line)["message"] for line in server.log().splitlines() if line.startswith("{")]
        assert "Shutting down" in messages and messages[-1].startswith("Finished server process"), messages[-5:]


def identity_after_matmul_chain(
    name: str, nodes: list[onnx.NodeProto], repeats: int, initializers: list[onnx.TensorProto]
) -> onnx.ModelProto:
    """[batch, 784] -> the same values, after ``nodes`` make ``a0`` and ``repeats`` MatMuls square it:
    the chain's result is multiplied by zero and added, so only its cost shows."""
    nodes = nodes + [helper.make_node("MatMul", [f"a{i}", f"a{i}"], [f"a{i + 1}"]) for i in range(repeats)]
    nodes += [
        helper.make_node("ReduceSum", [f"a{repeats}"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["x", "nothing"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 784])],
        initializer=[*initializers, numpy_helper.from_array(np.array(0, np.float32), "zero")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def heavy_model(side: int = 1200, repeats: int = 4) -> onnx.ModelProto:
    """[batch, 784] -> the same values, after a fraction of a second of MatMuls of ``side`` x ``side``
    matrices whose size is computed from the input at run time, so onnxruntime cannot fold them
    at load (loading holds the GIL; running does not): its warm-up inference is what is slow."""
    fill = helper.make_tensor("fill", TensorProto.FLOAT, [1], [0.001])
    nodes = [
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Gather", ["x_shape", "one"], ["width"], axis=0),
        helper.make_node("Div", ["width", "width"], ["unit"]),  # 1, known only at run time
        helper.make_node("Mul", ["unit", "side"], ["sides"]),
        helper.make_node("ConstantOfShape", ["sides"], ["a0"], value=fill),
    ]
    initializers = [
        numpy_helper.from_array(np.array(1, np.int64), "one"),
        numpy_helper.from_array(np.array([side, side], np.int64), "side"),
    ]
    return identity_after_matmul_chain("heavy", nodes, repeats, initializers)


def test_live_at_once_ready_only_when_every_model_is_loaded(tmp_path: Path) -> None:
    write_model(tmp_path, "quick", 1, seed=5)
    write_onnx(tmp_path, "heavy", 1, heavy_model())
    with live_server(tmp_path, wait_ready=False) as server:
        deadline = time.monotonic() + 30
        while True:  # liveness does not wait for models: it answers as soon as the port is open
            try:
                live = httpx.get(server.url + "/v2/health/live", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.process.poll() is None, server.log_tail()
                time.sleep(0.01)
        assert live.status_code == 200
        ready = httpx.get(server.url + "/v2/health/ready")
        heavy_ready = httpx.get(server.url + "/v2/models/heavy/ready")
        assert 400 <= ready.status_code < 500, f"ready answered {ready.status_code} while 'heavy' was loading"
        assert 400 <= heavy_ready.status_code < 500, heavy_ready.status_code
        request = {"inputs": [v2_json_input("x", np.full((1, 784), 7, np.float32))]}
        early = httpx.post(server.url + "/v2/models/heavy/infer", json=request)
        assert early.status_code == 503 and "heavy" in early.json()["error"], early.text
        status = httpx.get(server.url + "/v1/models/heavy").json()["model_version_status"]
        assert [s["state"] for s in status] == ["LOADING"], status
        server.wait_until(
            lambda: httpx.get(server.url + "/v2/health/ready").status_code == 200, timeout=30, what="readiness"
        )
        assert httpx.get(server.url + "/v2/models/heavy/ready").status_code == 200
        body = httpx.post(server.url + "/v2/models/heavy/infer", json=request).json()
        assert body["outputs"][0]["data"] == [7.0] * 784


def slow_to_load_model(side: int = 2000, repeats: int = 4) -> onnx.ModelProto:
    """[batch, 784] -> the same values, from a 16 MB file whose graph optimisation takes about a
    second: onnxruntime folds a chain of MatMuls of a constant ``side`` x ``side`` matrix."""
    matrix = np.random.default_rng(0).uniform(0, 0.001, (side, side)).astype(np.float32)
    return identity_after_matmul_chain("slow_to_load", [], repeats, [numpy_helper.from_array(matrix, "a0")])


@pytest.mark.slow  # the child process that optimises the model needs a core of its own: noisy on a busy machine
def test_loading_a_new_version_does_not_stall_other_requests(tmp_path: Path) -> None:
    """Before the fix (finding 3) two requests waited the whole optimisation, ~1-2 s, here."""
    write_model(tmp_path, "quick", 1, seed=6)
    with live_server(tmp_path) as server, server.client() as client:
        write_onnx(tmp_path, "big", 1, slow_to_load_model())
        waits = []
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, server.log_tail()
            started = time.monotonic()
            loaded = client.get("/v2/models/big/ready").status_code == 200
            assert client.get("/v2/health/live").status_code == 200
            waits.append(time.monotonic() - started)
            if loaded:
                break
            time.sleep(0.02)
        assert max(waits) < 0.5, f"two quick requests took {max(waits):.2f}s while a version was loading"


def test_repository_scan_follows_the_layout(tmp_path: Path) -> None:
    """Names with dots and dashes are models; hidden, invalid and non-numeric entries are ignored
    (as Triton and TF Serving do: version folders are positive integers without a leading zero)."""
    write_model(tmp_path, "digits-v2.final", 3, seed=7)
    for odd in ("01", "0", "latest", ".7.tmp"):  # not versions
        (tmp_path / "digits-v2.final" / odd).mkdir()
        (tmp_path / "digits-v2.final" / odd / "model.onnx").write_bytes(b"not a model")
    (tmp_path / ".hidden").mkdir()
    write_model(tmp_path / ".hidden", "m", 1, seed=8)
    (tmp_path / "README.md").write_text("a file, not a model\n")
    (tmp_path / "has space").mkdir()
    with live_server(tmp_path) as server, server.client() as client:
        models = [m["name"] for m in client.get("/api/models").json()["models"]]
        assert models == ["digits-v2.final"]
        body = client.get("/v2/models/digits-v2.final").json()
        assert body["versions"] == ["3"]
        x = images(1, seed=9)
        prediction = client.post("/v1/models/digits-v2.final:predict", json={"instances": x.tolist()})
        assert prediction.status_code == 200, prediction.text
        expected = reference(tmp_path, "digits-v2.final", 3, x)["label"][0]
        assert prediction.json()["predictions"][0]["label"] == int(expected)
        assert client.get("/v2/health/ready").status_code == 200
        assert "version rejected" not in server.log()
