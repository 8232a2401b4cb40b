"""The KubeRay RayJob: its pods are valid Kubernetes pod specs, its entrypoint is a valid
``python -m service.evaluate`` command on the Ray engine, and its volumes fit together."""

from __future__ import annotations

import shlex
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import CliApp

from service.evaluate.settings import EvaluateSettings
from service.launcher import REPO

RAYJOB = yaml.safe_load((REPO / "deploy" / "kuberay" / "rayjob.yaml").read_text())
CLUSTER = RAYJOB["spec"]["rayClusterSpec"]
TEMPLATES = [CLUSTER["headGroupSpec"]["template"]] + [
    group["template"] for group in CLUSTER["workerGroupSpecs"]
]


def test_it_is_a_ray_job() -> None:
    assert RAYJOB["apiVersion"] == "ray.io/v1"
    assert RAYJOB["kind"] == "RayJob"
    assert RAYJOB["spec"]["shutdownAfterJobFinishes"] is True


def test_entrypoint_is_a_valid_evaluation_on_the_ray_cluster() -> None:
    words = shlex.split(RAYJOB["spec"]["entrypoint"])
    assert words[:3] == ["python", "-m", "service.evaluate"]
    settings = CliApp.run(EvaluateSettings, cli_args=words[3:])
    assert settings.engine == "ray"
    assert settings.ray_address == "auto"  # the cluster KubeRay started, not a new local one
    assert settings.ray_ship_code is False  # the image has the code
    assert settings.progress is False
    mounts = {m["mountPath"] for m in TEMPLATES[0]["spec"]["containers"][0]["volumeMounts"]}
    for path in (settings.dataset, settings.model_repository, settings.out):
        assert any(str(path).startswith(mount) for mount in mounts), path


def test_ray_version_is_one_the_extra_allows() -> None:
    wanted = tuple(int(p) for p in CLUSTER["rayVersion"].split("."))
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"ray[data]>=2.40"' in pyproject
    assert wanted >= (2, 40, 0)


@pytest.mark.parametrize("template", TEMPLATES, ids=["head", "worker"])
@pytest.mark.parametrize("version", ["1.29.0", "1.37.0"])
def test_pod_templates_are_valid_pods(template: dict[str, Any], version: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": template["spec"]}
    kubernetes_validate.validate(pod, version, strict=True)
    volumes = {v["name"] for v in template["spec"]["volumes"]}
    for container in template["spec"]["containers"]:
        assert {m["name"] for m in container["volumeMounts"]} <= volumes
        assert container["image"] == "cifar10-inference-ray:latest"
    claims = {v["persistentVolumeClaim"]["claimName"] for v in template["spec"]["volumes"]}
    assert "cifar10-models" in claims  # the serving replicas' model volume
