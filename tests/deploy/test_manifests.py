"""The Kubernetes and KServe manifests: valid against the Kubernetes API's schemas (the
kubernetes-validate package, strict: no unknown field), consistent with each other and with
the service (ports, probe paths that answer, a drain that fits the termination grace), and
the KServe predictor has what KServe's custom-container form requires."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import httpx
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.launcher import REPO, RunningService, running_service
from tests.service.onnx_models import write_linear_model

K8S, KSERVE = REPO / "deploy" / "k8s", REPO / "deploy" / "kserve"
VERSIONS = ["1.29.0", "1.37.0"]  # gRPC probes are GA since 1.27; the newest schemas bundled


def documents(folder: Path) -> dict[str, dict[str, Any]]:
    """Every manifest in ``folder`` by ``kind/name``."""
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


MANIFESTS = documents(K8S)
SERVICES = documents(KSERVE)


def env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def probes(container: dict[str, Any]) -> list[dict[str, Any]]:
    kinds = ("startupProbe", "readinessProbe", "livenessProbe")
    return [container[kind] for kind in kinds if kind in container]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("models")
    write_linear_model(folder / "m" / "1" / "model.onnx")
    with running_service(folder) as running:
        yield running


def answers(service: RunningService, probe: dict[str, Any]) -> bool:
    """Whether ``probe`` succeeds against the running service (its own ports)."""
    if "httpGet" in probe:
        return httpx.get(f"{service.url}{probe['httpGet']['path']}").status_code == 200
    with grpc.insecure_channel(service.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def test_the_manifests_are_the_expected_set() -> None:
    assert set(MANIFESTS) == {
        "Deployment/cifar10-inference", "Service/cifar10-inference",
        "HorizontalPodAutoscaler/cifar10-inference", "PodDisruptionBudget/cifar10-inference",
        "PersistentVolumeClaim/cifar10-models", "Job/cifar10-model",
    }  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_valid_against_the_kubernetes_schemas(name: str, version: str) -> None:
    kubernetes_validate.validate(MANIFESTS[name], version, strict=True)


def test_the_validator_catches_a_wrong_field() -> None:
    broken = yaml.safe_load(yaml.safe_dump(MANIFESTS["Deployment/cifar10-inference"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_the_deployment_fits_the_service() -> None:
    deployment = MANIFESTS["Deployment/cifar10-inference"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 50051}  # the service's defaults
    service = MANIFESTS["Service/cifar10-inference"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = float(env(container)["SERVICE_SHUTDOWN_GRACE_SECONDS"])
    assert pause + drain < pod["terminationGracePeriodSeconds"]
    assert pod["securityContext"]["runAsUser"] != 0
    claim = MANIFESTS["PersistentVolumeClaim/cifar10-models"]["metadata"]["name"]
    assert {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    } == {claim}
    hpa = MANIFESTS["HorizontalPodAutoscaler/cifar10-inference"]["spec"]["scaleTargetRef"]
    assert (hpa["kind"], hpa["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_every_probe_answers_on_a_running_service(service: RunningService) -> None:
    containers = [
        MANIFESTS["Deployment/cifar10-inference"]["spec"]["template"]["spec"]["containers"][0]
    ]
    containers += [s["spec"]["predictor"]["containers"][0] for s in SERVICES.values()]
    for container in containers:
        for probe in probes(container):
            assert answers(service, probe), probe


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_kserve_custom_predictor(name: str) -> None:
    resource = SERVICES[name]
    assert resource["apiVersion"] == "serving.kserve.io/v1beta1"
    assert resource["kind"] == "InferenceService"
    (container,) = resource["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container"  # KServe's name for the predictor
    assert container["image"]
    (port,) = container["ports"]  # Knative exposes exactly one
    settings = env(container)
    grpc_port = port.get("name") == "h2c"
    assert settings["PROTOCOL"] == ("grpc-v2" if grpc_port else "v2")
    served = settings["SERVICE_GRPC_PORT" if grpc_port else "SERVICE_HTTP_PORT"]
    assert port["containerPort"] == int(served)
    if "STORAGE_URI" in settings:  # the storage initializer downloads to /mnt/models
        assert settings["SERVICE_MODEL_REPOSITORY"].startswith("/mnt/models")
    for probe in probes(container):
        target = probe["httpGet"] if "httpGet" in probe else probe["grpc"]
        assert target["port"] in (
            int(settings["SERVICE_HTTP_PORT"]),
            int(settings["SERVICE_GRPC_PORT"]),
        )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [container]},
    }
    kubernetes_validate.validate(pod, VERSIONS[-1], strict=True)  # a valid container spec
