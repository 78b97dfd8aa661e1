"""deploy/kubernetes: every manifest validates offline against the Kubernetes OpenAPI schemas (strict:
unknown fields fail), and the pieces fit each other, the image and the project's CLIs.

No cluster here, so ``kubernetes_validate`` checks the schemas of a pinned Kubernetes release
(and the newest it ships); KServe's ``InferenceService`` is a CRD outside those schemas, so it is
checked structurally, with its containers validated as Kubernetes containers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.config import Settings
from tests.deploy.commands import ROOT, dockerfile_env, instructions, parse_command, unknown_service_variables

K8S_VERSIONS = ("1.31.0", "1.37.0")  # pinned target release, and the newest schemas kubernetes-validate ships
MANIFESTS = ROOT / "deploy" / "kubernetes"
KSERVE = MANIFESTS / "kserve"
LIVE, READY = "/v2/health/live", "/v2/health/ready"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kubernetes_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> dict[str, dict[str, Any]]:
    """``Kind/name`` -> resource, over every manifest of the kustomization."""
    found: dict[str, dict[str, Any]] = {}
    for path in kubernetes_files():
        for doc in load(path):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def one(kind: str) -> dict[str, Any]:
    (resource,) = (r for key, r in resources().items() if key.startswith(f"{kind}/"))
    return resource


def image_uid() -> int:
    (useradd,) = (i for i in instructions() if "useradd" in i)
    match = re.search(r"--uid (\d+)", useradd)
    assert match, useradd
    return int(match.group(1))


def image_port() -> int:
    (expose,) = (i for i in instructions() if i.startswith("EXPOSE "))
    return int(expose.split()[1])


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = resource["spec"]["template"]["spec"]
    return spec


def containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(resource)
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", kubernetes_files(), ids=lambda p: p.name)
def test_manifest_validates_against_kubernetes_schemas(path: Path, version: str) -> None:
    docs = load(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_validator_rejects_a_broken_manifest(version: str) -> None:
    # The check above must be able to fail: a misspelt field and a wrong type are both caught.
    deployment = one("Deployment")
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, version, strict=True)
    wrong_type = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, version, strict=True)


def test_kustomization_lists_every_manifest_and_the_image() -> None:
    kustomization = load(MANIFESTS / "kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == [p.name for p in kubernetes_files()]
    images = {c["image"].split(":")[0] for r in resources().values() if "template" in r["spec"] for c in containers(r)}
    assert images == {image["name"] for image in kustomization["images"]} == {"deploy-anywhere"}


def test_deployment_probes_the_v2_health_routes_on_the_service_port() -> None:
    deployment = one("Deployment")
    (server,) = pod_spec(deployment)["containers"]
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports == {"http": image_port()}
    assert server["readinessProbe"]["httpGet"] == {"path": READY, "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": LIVE, "port": "http"}
    assert server["startupProbe"]["httpGet"]["path"] == LIVE
    settings = parse_command(server["args"], {**dockerfile_env(), **env_of(server)})
    assert isinstance(settings, Settings)
    assert settings.port == image_port() and settings.host == "0.0.0.0"


def test_deployment_runs_the_service_with_valid_settings_and_resources() -> None:
    deployment = one("Deployment")
    (server,) = pod_spec(deployment)["containers"]
    env = env_of(server)
    assert unknown_service_variables(env) == []
    settings = parse_command(server["args"], {**dockerfile_env(), **env})
    assert isinstance(settings, Settings)
    assert settings.workers == 1  # one process per pod; the HPA adds pods
    for container in containers(deployment):
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    # SIGTERM drains for up to request_timeout + 5 s after the preStop pause; the grace period covers both.
    pre_stop = int(server["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= pre_stop + settings.request_timeout + 5


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_run_as_the_images_non_root_user_with_a_read_only_root(kind: str) -> None:
    resource = one(kind)
    security = pod_spec(resource)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == image_uid() != 0
    assert security["fsGroup"] == security["runAsGroup"] == image_uid()  # the PVC is writable by that user
    for container in containers(resource):
        hardened = container["securityContext"]
        assert hardened["allowPrivilegeEscalation"] is False
        assert hardened["readOnlyRootFilesystem"] is True
        assert hardened["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts  # the only scratch space a read-only root leaves (matplotlib, tempfiles)
        assert dockerfile_env()["MPLCONFIGDIR"].startswith("/tmp/")


def test_model_repository_comes_from_the_pvc() -> None:
    claim = one("PersistentVolumeClaim")["metadata"]["name"]
    deployment = one("Deployment")
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    (server,) = pod_spec(deployment)["containers"]
    (models,) = (m for m in server["volumeMounts"] if m["mountPath"] == dockerfile_env()["SERVICE_REPOSITORY"])
    assert models["readOnly"] is True
    assert volumes[models["name"]]["persistentVolumeClaim"]["claimName"] == claim


def test_pipeline_job_trains_then_exports_into_the_pvc() -> None:
    job = one("Job")
    spec = pod_spec(job)
    (train,) = spec["initContainers"]  # init containers run first, and only a success starts the export
    (export,) = spec["containers"]
    assert train["args"][0] == "train" and export["args"][0] == "export"
    artifact = Path(vars(parse_command(train["args"]))["out"])
    export_args = vars(parse_command(export["args"]))
    assert Path(export_args["artifact"]) == artifact
    volumes = {v["name"]: v for v in spec["volumes"]}
    export_mounts = {Path(m["mountPath"]): m["name"] for m in export["volumeMounts"]}
    train_mounts = {Path(m["mountPath"]): m["name"] for m in train["volumeMounts"]}
    claim = one("PersistentVolumeClaim")["metadata"]["name"]
    assert volumes[export_mounts[Path(export_args["repository"])]]["persistentVolumeClaim"]["claimName"] == claim
    # The artifact travels from train to export in a volume both mount at the same place.
    (shared,) = (p for p in train_mounts if p in artifact.parents)
    assert export_mounts[shared] == train_mounts[shared] and "emptyDir" in volumes[train_mounts[shared]]
    assert spec["restartPolicy"] == "Never"


def test_service_and_autoscaler_target_the_deployment() -> None:
    deployment = one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = one("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in pod_spec(deployment)["containers"][0]["ports"]}
    hpa = one("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    # Utilization is relative to the request: every container of the pod must request CPU.
    assert all("cpu" in c["resources"]["requests"] for c in containers(deployment))
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # drains can always proceed


# --- KServe ------------------------------------------------------------------------------------


def inference_services() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(KSERVE.glob("*.yaml")):
        (doc,) = load(path)
        found[path.name] = doc
    return found


def test_kserve_inference_services_are_well_formed() -> None:
    services = inference_services()
    assert set(services) == {"inferenceservice.yaml", "inferenceservice-triton.yaml"}
    claim = one("PersistentVolumeClaim")["metadata"]["name"]
    for name, isvc in services.items():
        assert isvc["apiVersion"] == "serving.kserve.io/v1beta1", name
        assert isvc["kind"] == "InferenceService", name
        assert set(isvc) == {"apiVersion", "kind", "metadata", "spec"}, name
        assert DNS_LABEL.match(isvc["metadata"]["name"]), name
        assert set(isvc["spec"]) == {"predictor"}, name
        predictor = isvc["spec"]["predictor"]
        assert set(predictor) <= {"minReplicas", "maxReplicas", "containers", "model"}, name
        assert ("containers" in predictor) != ("model" in predictor), f"{name}: a custom container or a model format"
        assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"], name
        if "model" in predictor:
            storage = predictor["model"]["storageUri"]
        else:
            storage = env_of(predictor["containers"][0])["STORAGE_URI"]
        # The whole repository (model folders with config.pbtxt), not one model: both servers want the root.
        assert storage == f"pvc://{claim}/", name


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kserve_custom_predictor_runs_our_service_on_kserves_port(version: str) -> None:
    predictor = inference_services()["inferenceservice.yaml"]["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"  # the name KServe's storage initializer and agent look for
    # A KServe container is a Kubernetes container: validate it as one, strictly.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"}, "spec": {"containers": [container]}}
    kubernetes_validate.validate(pod, version, strict=True)
    env = env_of(container)
    assert unknown_service_variables(env) == []
    settings = parse_command(container["args"], {**dockerfile_env(), **env})
    assert isinstance(settings, Settings)
    assert str(settings.repository) == "/mnt/models"  # where KServe's storage initializer puts STORAGE_URI
    (port,) = container["ports"]
    assert port["containerPort"] == settings.port == 8080
    assert container["readinessProbe"]["httpGet"] == {"path": READY, "port": settings.port}
    assert container["livenessProbe"]["httpGet"] == {"path": LIVE, "port": settings.port}
    assert container["securityContext"]["runAsUser"] == image_uid()


def test_kserve_triton_predictor_serves_the_onnx_repository_over_v2() -> None:
    model = inference_services()["inferenceservice-triton.yaml"]["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "onnx"}
    assert model["protocolVersion"] == "v2"
    assert model["runtime"] == "kserve-tritonserver"
    assert {"cpu", "memory"} <= set(model["resources"]["requests"])
