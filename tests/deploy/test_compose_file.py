"""docker-compose.yml: the pipeline wiring (train -> export -> service on named volumes), checked
without a Docker engine. Variables are interpolated as Compose does for ``${NAME:-default}``; the
commands are parsed by the project's real CLIs (``tests.deploy.commands``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config import Settings
from tests.deploy.commands import ROOT, dockerfile_env, instructions, parse_command, unknown_service_variables

COMPOSE_FILE = ROOT / "docker-compose.yml"
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::-(?P<default>[^}]*))?\}")
DONE = {"condition": "service_completed_successfully"}


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: env.get(m["name"]) or (m["default"] or ""), value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    result: dict[str, Any] = interpolate(raw, env or {})
    return result


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """container path -> (volume, mode) for ``volume:/path[:mode]`` entries."""
    found = {}
    for entry in service["volumes"]:
        volume, path, *mode = entry.split(":")
        found[path] = (volume, mode[0] if mode else "rw")
    return found


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    if isinstance(env, list):  # `- NAME` passes the shell's NAME through when set, `- NAME=value` sets it
        return {k: (v if sep else None) for k, sep, v in (e.partition("=") for e in env)}
    return dict(env)


def test_file_is_a_compose_specification_file_for_v1_and_v2() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    # No `version:`: Compose v2 warns that it is obsolete, and v1 (>= 1.27) then reads the Compose
    # Specification, which has `condition: service_completed_successfully` (v1 >= 1.29).
    assert "version" not in raw
    assert set(raw) == {"services", "volumes"}
    assert set(raw["services"]) == {"train", "export", "service"}


def test_one_image_built_once_runs_all_three_services() -> None:
    services = compose()["services"]
    assert services["train"]["build"] == "."
    assert {s["image"] for s in services.values()} == {"deploy-anywhere:latest"}
    assert [name for name, s in services.items() if "build" in s] == ["train"]
    # The others must not try a registry for an image that only `train` builds (Compose v2 pulls first).
    assert services["export"]["pull_policy"] == services["service"]["pull_policy"] == "never"
    assert compose({"IMAGE": "deploy-anywhere:ci-1"})["services"]["service"]["image"] == "deploy-anywhere:ci-1"


def test_services_start_in_order_only_after_the_previous_job_succeeded() -> None:
    services = compose()["services"]
    assert "depends_on" not in services["train"]
    assert services["export"]["depends_on"] == {"train": DONE}
    assert services["service"]["depends_on"] == {"export": DONE}
    assert "restart" not in services["train"] and "restart" not in services["export"]  # jobs run once


@pytest.mark.parametrize("env", [{}, {"TRAIN_EPOCHS": "1", "MODEL_NAME": "digits", "TRAIN_HIDDEN": "64"}])
def test_jobs_hand_the_model_over_through_named_volumes(env: dict[str, str]) -> None:
    spec = compose(env)
    services = spec["services"]
    train = vars(parse_command(services["train"]["command"]))
    export = vars(parse_command(services["export"]["command"]))
    assert train["epochs"] == int(env.get("TRAIN_EPOCHS", "10"))
    assert train["overwrite"] is True  # a second `up` retrains instead of failing on the existing artifact
    assert export["name"] == env.get("MODEL_NAME", "mnist")
    artifact, repository = Path(train["out"]), Path(export["repository"])
    assert Path(export["artifact"]) == artifact
    train_mounts, export_mounts, service_mounts = (mounts(services[n]) for n in ("train", "export", "service"))
    assert train_mounts[str(artifact.parent)] == ("artifacts", "rw")
    assert export_mounts[str(artifact.parent)] == ("artifacts", "ro")
    assert export_mounts[str(repository)] == ("models", "rw")
    # The service reads the repository where the image says it is (SERVICE_REPOSITORY), read-only.
    assert str(repository) == dockerfile_env()["SERVICE_REPOSITORY"]
    assert service_mounts[str(repository)] == ("models", "ro")
    assert set(spec["volumes"]) == {"artifacts", "models"}
    # Named volumes start empty and take the ownership of the image's folder: the non-root user's.
    (setup,) = (i for i in instructions() if "useradd" in i)
    assert "chown app:app /models /artifacts" in setup


def test_service_publishes_on_loopback_only() -> None:
    service = compose()["services"]["service"]
    (mapping,) = service["ports"]
    host, host_port, container_port = mapping.split(":")
    (expose,) = (i for i in instructions() if i.startswith("EXPOSE "))
    assert (host, host_port, container_port) == ("127.0.0.1", "8000", expose.split()[1])
    assert compose({"HOST_PORT": "18000"})["services"]["service"]["ports"] == ["127.0.0.1:18000:8000"]


def test_service_settings_come_from_documented_variables() -> None:
    service = compose()["services"]["service"]
    env = environment(service)
    assert "SERVICE_WORKERS" in env  # the worker count is the operator's to set
    assert unknown_service_variables(env) == []
    assert all(value is None for value in env.values())  # passed through, never hard-coded here
    settings = parse_command(service["command"], {**dockerfile_env(), "SERVICE_WORKERS": "3"})
    assert isinstance(settings, Settings)
    assert (settings.workers, settings.host, str(settings.repository)) == (3, "0.0.0.0", "/models")


def test_health_check_and_stop_grace_match_the_image_and_the_drain() -> None:
    service = compose()["services"]["service"]
    (healthcheck,) = (i for i in instructions() if i.startswith("HEALTHCHECK "))
    command = service["healthcheck"]["test"]
    assert command[0] == "CMD" and " CMD " + str(command[1:]).replace("'", '"') in healthcheck
    grace = int(service["stop_grace_period"].removesuffix("s"))
    settings = parse_command(["serve"], dockerfile_env())
    assert isinstance(settings, Settings)
    assert grace >= settings.request_timeout + 5  # uvicorn's graceful-shutdown limit (service.server)


def test_header_documents_every_variable_the_file_uses() -> None:
    text = COMPOSE_FILE.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    used = {m["name"] for m in VARIABLE.finditer(text)} | set(environment(compose()["services"]["service"]))
    assert sorted(name for name in used if name not in header) == []
