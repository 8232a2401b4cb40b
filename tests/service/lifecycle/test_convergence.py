"""Every process converges: with several serving processes (``--workers``) and several model
processes each (``--model-processes``), explicit orders and polling reach all of them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import tritonclient.grpc as triton_grpc

from bench._proc import descendants
from service.launcher import running_service
from tests.service.lifecycle.helpers import publish, wait_for

BODY = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 32, 32, 3],
                    "data": [5] * 3072}]}  # fmt: skip
PROBES = 24
"""Fresh connections per check: the kernel spreads them over the workers."""


def _every_connection(url: str, path: str, *, method: str = "post") -> list[httpx.Response]:
    answers = []
    for _ in range(PROBES):
        with httpx.Client(base_url=url, timeout=30) as http:  # a new connection each time
            answers.append(http.request(method.upper(), path, json=BODY))
    return answers


def _grpc_versions(target: str, model: str) -> set[str]:
    seen = set()
    image = np.full((1, 32, 32, 3), 5, np.uint8)
    for _ in range(PROBES):
        client = triton_grpc.InferenceServerClient(target)
        data = triton_grpc.InferInput("images", [1, 32, 32, 3], "UINT8")
        data.set_data_from_numpy(image)
        try:
            seen.add(client.infer(model, [data]).get_response().model_version)
        except Exception as exc:
            seen.add(f"error: {exc}")
        finally:
            client.close()
    return seen


def test_orders_and_polling_reach_every_worker_and_model_process(tmp_path: Path) -> None:
    publish(tmp_path, "a", 1, seed=1)
    publish(tmp_path, "b", 1, seed=2)
    flags = ["--workers", "2", "--model-processes", "2", "--model-control-mode", "explicit"]
    with running_service(tmp_path, *flags) as service:
        # 1 supervisor + 2 workers + 2 model processes each (and the resource tracker).
        assert len(descendants(service.process.pid)) >= 7
        served = _every_connection(service.url, "/v2/models/b/infer")
        assert {a.status_code for a in served} == {200}

        assert httpx.post(f"{service.url}/v2/repository/models/b/unload", timeout=60).is_success
        gone = _every_connection(service.url, "/v2/models/b/infer")
        assert {a.status_code for a in gone} == {404}, [a.text for a in gone]
        assert _grpc_versions(f"127.0.0.1:{service.grpc_port}", "b") == {
            "error: [StatusCode.NOT_FOUND] model 'b' is not served (available: a)"
        }

        # A load order reaches every worker, and every model process of each: requests
        # spread over both model processes of both workers all succeed.
        assert httpx.post(f"{service.url}/v2/repository/models/b/load", timeout=60).is_success
        back = _every_connection(service.url, "/v2/models/b/infer")
        assert {a.status_code for a in back} == {200}, [a.text for a in back]
        assert _grpc_versions(f"127.0.0.1:{service.grpc_port}", "b") == {"1"}

        # A new version, then loaded by order: every worker serves it.
        publish(tmp_path, "b", 2, seed=3)
        assert httpx.post(f"{service.url}/v2/repository/models/b/load", timeout=60).is_success
        versions = {
            a.json()["model_version"] for a in _every_connection(service.url, "/v2/models/b/infer")
        }
        assert versions == {"2"}
        assert _grpc_versions(f"127.0.0.1:{service.grpc_port}", "b") == {"2"}

        # What a worker meets comes back as the same kind of error, whichever worker answers.
        unknown = httpx.post(f"{service.url}/v2/repository/models/nope/load", timeout=60)
        assert unknown.status_code == 404, unknown.text
        assert "'nope' is not in the repository" in unknown.json()["error"]
        (tmp_path / "b" / "3").mkdir()
        (tmp_path / "b" / "3" / "model.onnx").write_bytes(b"not a model")
        failed = httpx.post(f"{service.url}/v2/repository/models/b/load", timeout=60)
        assert failed.status_code == 400, failed.text
        assert "version 3 failed to load" in failed.json()["error"]
        still = {
            a.json()["model_version"] for a in _every_connection(service.url, "/v2/models/b/infer")
        }
        assert still == {"2"}  # the failed version replaced nothing, in any worker


def test_polling_reaches_every_worker(tmp_path: Path) -> None:
    publish(tmp_path, "a", 1, seed=1)
    flags = ["--workers", "2", "--model-processes", "2", "--poll-interval-seconds", "0.2"]
    with running_service(tmp_path, *flags) as service:
        publish(tmp_path, "a", 2, seed=2)
        (tmp_path / "a" / "config.json").write_text(json.dumps({"labels": {"stable": 1}}))

        def everywhere() -> bool:
            answers = _every_connection(service.url, "/v2/models/a/infer")
            stable = _every_connection(service.url, "/v2/models/a/versions/stable/infer")
            return (
                {a.json().get("model_version") for a in answers if a.is_success} == {"2"}
                and ({a.json().get("model_version") for a in stable if a.is_success} == {"1"})
                and all(a.is_success for a in answers + stable)
            )

        wait_for(everywhere, timeout=30, what="every worker serves 2 and stable = 1")
        assert _grpc_versions(f"127.0.0.1:{service.grpc_port}", "a") == {"2"}
