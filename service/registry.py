"""The model repository in memory: every model and version, loaded, warmed up, polled and swapped.

Layout (``contracts.repository``): ``<root>/<name>/<version>/model.onnx``. The default version of a
model is its highest *available* version; older ones stay addressable. Requests read an immutable
snapshot (``dict`` name -> ModelEntry) that a scan replaces in one assignment, so a request sees the
old state or the new one, never half. A new version is loaded and warmed up (a real inference) in
a thread before it enters a snapshot; a version that fails is kept as ``END`` with its error (the
status routes report it) while the old default keeps serving; a removed version leaves the
snapshot at once and is unloaded once its in-flight requests have finished (drained).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from contracts import MODEL_ONNX, list_models, list_versions
from service.runtime import ModelLoadError, ModelRuntime, RuntimeOptions

log = logging.getLogger("service.registry")

Fingerprint = tuple[int, int] | None  # (mtime_ns, size) of model.onnx; None when missing


class State(StrEnum):
    """TF Serving's ``ModelVersionStatus.State`` names."""

    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


@dataclass(eq=False)
class ModelVersion:
    name: str
    version: int
    path: Path  # the version folder
    state: State = State.LOADING
    error: str = ""
    runtime: ModelRuntime | None = None
    fingerprint: Fingerprint = None
    inflight: int = 0  # requests holding a lease; changed on the event loop thread only

    def lease(self) -> Lease:
        """``with version.lease() as runtime``: hold the runtime for one request, so draining waits for it."""
        return Lease(self)


class Lease:
    """A context manager class, not ``contextlib.contextmanager``: it is entered on every inference
    request, and a generator-based one costs several times as much."""

    __slots__ = ("version",)

    def __init__(self, version: ModelVersion) -> None:
        self.version = version

    def __enter__(self) -> ModelRuntime:
        runtime = self.version.runtime
        assert runtime is not None, "lease() on a version that is not available"
        self.version.inflight += 1
        return runtime

    def __exit__(self, *exc_info: object) -> None:
        self.version.inflight -= 1


@dataclass(frozen=True)
class ModelEntry:
    name: str
    versions: dict[int, ModelVersion] = field(default_factory=dict)  # every version on disk

    @functools.cached_property  # entries are replaced, never changed, on every load or removal
    def default(self) -> ModelVersion | None:
        available = [v for v in self.versions.values() if v.state is State.AVAILABLE]
        return max(available, key=lambda v: v.version) if available else None


LoadListener = Callable[[ModelVersion], None]


class Registry:
    """Scan, load, warm up, poll, swap and drain the model repository."""

    def __init__(self, root: Path, options: RuntimeOptions) -> None:
        self.root = root
        self.options = options
        self.models: dict[str, ModelEntry] = {}  # the snapshot requests read; replaced, never mutated
        self.ready = False  # the first full scan has loaded (or rejected) every version
        self._listeners: list[LoadListener] = []
        self._drains: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def listen(self, listener: LoadListener) -> None:
        """Call ``listener(version)`` whenever a version is loaded, rejected or unloaded."""
        self._listeners.append(listener)

    def _on_change(self, version: ModelVersion) -> None:
        for listener in self._listeners:
            listener(version)

    async def scan(self) -> None:
        """Bring the snapshot in line with the disk: load new (or fixed) versions, drop removed ones."""
        async with self._lock:
            disk = await asyncio.to_thread(_read_disk, self.root)
            self._drop_removed(disk)
            todo = self._mark_loading(disk)
            for version in todo:
                loaded = await asyncio.to_thread(_load, version, self.options)
                self._publish(loaded)
            self.ready = True

    def _mark_loading(self, disk: dict[str, dict[int, Fingerprint]]) -> list[ModelVersion]:
        todo = []
        models = dict(self.models)
        for name, versions in disk.items():
            entry = models.get(name) or ModelEntry(name)
            current = dict(entry.versions)
            for number, fingerprint in versions.items():
                known = current.get(number)
                if known is None or (known.state is State.END and known.fingerprint != fingerprint):
                    current[number] = ModelVersion(
                        name, number, self.root / name / str(number), fingerprint=fingerprint
                    )
                    todo.append(current[number])
            models[name] = ModelEntry(name, current)
        self.models = models
        return sorted(todo, key=lambda v: (v.name, -v.version))  # newest first: it becomes the default

    def _publish(self, loaded: ModelVersion) -> None:
        entry = self.models.get(loaded.name)
        if entry is None or entry.versions.get(loaded.version) is None:
            return  # removed while loading
        self.models = {**self.models, loaded.name: ModelEntry(loaded.name, {**entry.versions, loaded.version: loaded})}
        self._on_change(loaded)

    def _drop_removed(self, disk: dict[str, dict[int, Fingerprint]]) -> None:
        models = {}
        for name, entry in self.models.items():
            keep = {n: v for n, v in entry.versions.items() if n in disk.get(name, {})}
            for number, version in entry.versions.items():
                if number not in keep:
                    self._drain(version)
            if keep:
                models[name] = ModelEntry(name, keep)
        self.models = models

    def _drain(self, version: ModelVersion) -> None:
        log.info(
            "version removed from the repository, draining", extra={"model": version.name, "version": version.version}
        )
        if version.state is State.AVAILABLE:
            version.state = State.UNLOADING
            task = asyncio.get_running_loop().create_task(self._unload_when_idle(version))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        else:
            version.state = State.END  # never loaded: nothing to drain, no metric changes

    async def _unload_when_idle(self, version: ModelVersion) -> None:
        while version.inflight:
            await asyncio.sleep(0.01)
        version.runtime = None  # the session is freed once the last reference goes
        version.state = State.END
        log.info("version unloaded", extra={"model": version.name, "version": version.version})
        self._on_change(version)

    async def poll(self, interval: float) -> None:
        """Scan every ``interval`` seconds until cancelled; a failing scan is logged, not fatal."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.scan()
            except Exception:
                log.exception("repository scan failed; keeping the models already loaded")

    async def close(self) -> None:
        for task in list(self._drains):
            task.cancel()
        self.models = {}


def _read_disk(root: Path) -> dict[str, dict[int, Fingerprint]]:
    disk: dict[str, dict[int, Fingerprint]] = {}
    for name in list_models(root):
        versions = {v: _fingerprint(root / name / str(v) / MODEL_ONNX) for v in list_versions(root / name)}
        if versions:
            disk[name] = versions
    return disk


def _fingerprint(path: Path) -> Fingerprint:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _load(version: ModelVersion, options: RuntimeOptions) -> ModelVersion:
    """Load and warm up one version (in a worker thread); failures become an END state with the error."""
    path = version.path / MODEL_ONNX
    try:
        if version.fingerprint is None:
            raise ModelLoadError(f"{path}: missing (every version folder needs a {MODEL_ONNX})")
        runtime = ModelRuntime(path, options)
        runtime.warmup()
    except Exception as e:  # whatever a broken file raises, the server keeps serving the others
        log.error("version rejected", extra={"model": version.name, "version": version.version, "error": str(e)})
        return replace(version, state=State.END, error=str(e))
    log.info("version loaded", extra={"model": version.name, "version": version.version})
    return replace(version, state=State.AVAILABLE, runtime=runtime)
