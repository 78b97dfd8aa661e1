"""Service settings: one pydantic-settings class, read from ``SERVICE_<NAME>`` environment
variables or built from command-line flags (``service.__main__``). Nothing is read at import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _default_workers(intra_op_threads: int) -> int:
    from service.server import default_workers  # the performance rule lives with the server

    return default_workers(intra_op_threads)


class Settings(BaseSettings):
    """Everything the service can be told; each field is also a ``--flag`` of ``python -m service``."""

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore", frozen=True, use_attribute_docstrings=True)

    repository: Path = Path("models")
    """Model repository root: ``<repository>/<name>/<version>/model.onnx``."""
    host: str = "127.0.0.1"
    """Interface to listen on (``0.0.0.0`` in containers)."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port to listen on."""
    poll_interval: float = Field(default=2.0, ge=0)
    """Seconds between repository scans for new, fixed or removed versions; 0 disables polling."""
    api_key: str | None = None
    """When set, model and inference routes need ``Authorization: Bearer <key>``."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed by CORS (comma-separated, or a JSON list, in the environment; ``*`` for any); empty: no CORS."""
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest request body accepted; larger ones get 413."""
    max_batch_size: int = Field(default=4096, gt=0)
    """Largest batch (first dimension) accepted in one request; larger ones get 400."""
    request_timeout: float = Field(default=30.0, gt=0)
    """Seconds an inference may wait and run before the request gets 504."""
    intra_op_threads: int = Field(default=1, ge=0)
    """onnxruntime intra-op threads per session (0: onnxruntime's default, one per core)."""
    inter_op_threads: int = Field(default=1, ge=0)
    """onnxruntime inter-op threads per session (0: onnxruntime's default)."""
    workers: int = Field(default_factory=lambda data: _default_workers(data.get("intra_op_threads", 1)), ge=1)
    """uvicorn worker processes, each loading the repository; default: one per core (cores // intra_op_threads),
    so workers x intra-op threads == cores and workers never fight over them."""
    inference_threads: int = Field(default=2, ge=1)
    """Threads that run ``session.run`` off the event loop for inferences the batcher does not take."""
    inline_max_us: float = Field(default=100.0, ge=0)
    """Inferences expected to take at most this many microseconds (rows x the one-row time measured
    at warm-up) run on the event loop: cheaper than the hop to a thread; 0 sends every one to the pool."""
    hot_path: bool = True
    """Answer plainly valid one-tensor JSON inference requests on a lean path in front of the app
    (``service.hotpath``); false sends every request through the general path, which answers the same."""
    batching: bool = True
    """Coalesce concurrent requests into one ``session.run`` (dynamic batching); a request that is
    alone still runs at once (inline when tiny), so batching never adds latency at low load."""
    batch_max_size: int = Field(default=64, gt=0)
    """Largest coalesced batch when batching is on."""
    batch_max_delay_ms: float = Field(default=2.0, ge=0)
    """Longest a request waits for others to join its batch, in milliseconds."""
    batch_inline_max_us: float = Field(default=1000.0, ge=0)
    """Coalesced batches expected to take at most this many microseconds (rows x the one-row time
    measured at warm-up) run on the event loop instead of the batch thread, which costs a thread
    switch per batch and, with a worker per core, adds no parallelism; 0 sends every batch to the thread."""
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    """Log level of the service's loggers."""
    log_format: Literal["json", "text"] = "json"
    """``json``: one JSON object per line (with the request id); ``text``: human-readable."""
    ort_web_dir: Path = _PROJECT_ROOT / "node_modules" / "onnxruntime-web" / "dist"
    """onnxruntime-web files served under ``/ui/ort/`` for in-browser inference."""

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().startswith("["):
            return json.loads(value)  # the JSON list form pydantic-settings uses for lists
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value
