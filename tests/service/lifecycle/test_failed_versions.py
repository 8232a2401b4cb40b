"""A version that cannot be loaded never replaces, retires or unlabels one that serves; gRPC
health follows readiness when the last model goes and comes back; a load whose caller gives up
still completes (no session is left behind, no state stuck at LOADING); and a look at the
repository that cannot see everything retires nothing."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.service.helpers import InProcessService, metric
from tests.service.lifecycle.helpers import index, publish, states, wait_for
from tests.service.onnx_models import write_linear_model

VERSION_1_READY = [{"name": "m", "version": "1", "state": "READY", "reason": ""}]


def _bad_version(root: Path, model: str, version: int) -> None:
    """A corrupt export, renamed into place as the exporter does (complete at once)."""
    staging = root / model / f".staging-{version}"
    staging.mkdir()
    (staging / "model.onnx").write_bytes(b"not an onnx file" * 64)
    staging.rename(root / model / str(version))


def _served(url: str, model: str) -> tuple[list[str], str]:
    """The model's ready versions and the one that answers when none is named."""
    versions = httpx.get(f"{url}/v2/models/{model}").json()["versions"]
    default = httpx.get(f"{url}/models/{model}").json()["version"]
    return versions, default


@pytest.mark.parametrize(
    ("config", "served"),
    [
        ({"version_policy": {"latest": 1}, "labels": {"stable": 1}}, ["1", "2"]),
        ({"version_policy": {"latest": 2}}, ["1", "2"]),
        ({"version_policy": {"latest": 1}}, ["2"]),
    ],
    ids=["latest-1-and-a-label", "latest-2", "latest-1"],
)
def test_a_bad_export_retires_nothing(
    tmp_path: Path, config: dict[str, object], served: list[str]
) -> None:
    publish(tmp_path, "m", 1, seed=1)
    publish(tmp_path, "m", 2, seed=2)
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with InProcessService(tmp_path, poll_interval_seconds=0.1) as service:
        assert _served(service.url, "m") == (served, "2")
        _bad_version(tmp_path, "m", 3)
        wait_for(lambda: "UNAVAILABLE" in states(service.url).values(), what="3 failed")
        time.sleep(0.5)  # several more looks
        assert _served(service.url, "m") == (served, "2")
        assert states(service.url) == {
            **{v: "READY" for v in served},
            "3": "UNAVAILABLE",
        }
        labels = httpx.get(f"{service.url}/models").json()["models"][0]["labels"]
        assert labels == ({"stable": "1"} if "labels" in config else {})


def test_a_label_moved_to_a_version_that_fails_stays_where_it_was(tmp_path: Path) -> None:
    publish(tmp_path, "m", 1, seed=1)
    config = tmp_path / "m" / "config.json"
    config.write_text(json.dumps({"version_policy": {"specific": [1]}, "labels": {"stable": 1}}))
    with InProcessService(tmp_path, model_control_mode="explicit") as service:
        _bad_version(tmp_path, "m", 2)
        config.write_text(
            json.dumps({"version_policy": {"specific": [1]}, "labels": {"stable": 2}})
        )
        load = httpx.post(f"{service.url}/v2/repository/models/m/load", timeout=60)
        assert load.status_code == 400
        assert "version 2 failed to load" in load.json()["error"]
        stable = httpx.get(f"{service.url}/v2/models/m/versions/stable")
        assert stable.status_code == 200, stable.text
        assert stable.json()["versions"] == ["1"]
        assert httpx.get(f"{service.url}/models").json()["models"][0]["labels"] == {"stable": "1"}
        # Fixed, the label moves.
        shutil.rmtree(tmp_path / "m" / "2")
        publish(tmp_path, "m", 2, seed=2)
        assert httpx.post(f"{service.url}/v2/repository/models/m/load", timeout=60).is_success
        moved = httpx.get(f"{service.url}/models").json()["models"][0]["labels"]
        assert moved == {"stable": "2"}


def test_the_failed_state_goes_with_the_bad_version(tmp_path: Path) -> None:
    publish(tmp_path, "m", 1, seed=1)
    with InProcessService(tmp_path, poll_interval_seconds=0.1) as service:
        state = lambda: metric(  # noqa: E731
            service.url, "service_model_version_state", model="m", version="2", state="FAILED"
        )
        _bad_version(tmp_path, "m", 2)
        wait_for(lambda: state() == 1, what="version 2 FAILED")
        shutil.rmtree(tmp_path / "m" / "2")
        wait_for(lambda: state() == 0, what="the FAILED state cleared")


def _grpc_health(target: str) -> str:
    with grpc.insecure_channel(target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def test_grpc_health_follows_readiness(tmp_path: Path) -> None:
    publish(tmp_path, "m", 1, seed=1)
    with InProcessService(tmp_path, model_control_mode="explicit") as service:
        assert _grpc_health(service.grpc_target) == "SERVING"
        assert httpx.post(f"{service.url}/v2/repository/models/m/unload", timeout=60).is_success
        assert httpx.get(f"{service.url}/v2/health/ready").status_code == 503
        wait_for(lambda: _grpc_health(service.grpc_target) == "NOT_SERVING", timeout=5)
        assert httpx.post(f"{service.url}/v2/repository/models/m/load", timeout=60).is_success
        assert httpx.get(f"{service.url}/v2/health/ready").status_code == 200
        wait_for(lambda: _grpc_health(service.grpc_target) == "SERVING", timeout=5)


def test_a_load_whose_caller_gives_up_completes(tmp_path: Path) -> None:
    publish(tmp_path, "small", 1, seed=1)
    write_linear_model(tmp_path / "big" / "1" / "model.onnx", seed=2, classes=12000)
    with InProcessService(tmp_path, model_control_mode="explicit") as service:
        url = service.url
        assert httpx.post(f"{url}/v2/repository/models/big/unload", timeout=60).is_success
        with pytest.raises(httpx.TimeoutException):  # the client leaves while it loads
            httpx.post(f"{url}/v2/repository/models/big/load", timeout=0.05)
        wait_for(
            lambda: states(url, "big").get("1") == "READY",
            timeout=30,
            what="the abandoned load completed",
        )
        assert httpx.get(f"{url}/v2/models/big/ready").status_code == 200


def _serves(url: str) -> bool:
    body = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 32, 32, 3],
                        "data": [7] * 3072}]}  # fmt: skip
    answer = httpx.post(f"{url}/v2/models/m/infer", json=body, timeout=30)
    return answer.status_code == 200 and httpx.get(f"{url}/v2/health/ready").status_code == 200


def test_a_repository_that_cannot_be_listed_retires_nothing(tmp_path: Path) -> None:
    root = tmp_path / "models"
    publish(root, "m", 1, seed=1)
    with InProcessService(root, poll_interval_seconds=0.1) as service:
        root.rename(tmp_path / "swapped")  # gone for many looks
        for _ in range(10):
            time.sleep(0.05)
            assert _serves(service.url)
        (tmp_path / "swapped").rename(root)
        time.sleep(0.3)
        assert _serves(service.url)
        assert index(service.url) == VERSION_1_READY


def test_a_model_folder_missing_at_one_look_only_is_not_retired(tmp_path: Path) -> None:
    publish(tmp_path, "m", 1, seed=1)
    with InProcessService(tmp_path, poll_interval_seconds=0.5) as service:
        # Gone for 0.2 s, then present for more than two intervals: at most one look finds it
        # missing, and the next one surely finds it back (a shorter wait could let the next
        # look fall into the next gap).
        for _ in range(6):
            (tmp_path / "m").rename(tmp_path / "m.old")
            time.sleep(0.2)
            (tmp_path / "m.old").rename(tmp_path / "m")
            time.sleep(1.1)
            assert _serves(service.url)
        assert index(service.url) == VERSION_1_READY


def _loop(path: Path) -> None:
    """A file no one can read, not even root: a link to itself (stat fails with ELOOP)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path.name)


def test_a_folder_that_cannot_be_read_holds_itself_only(tmp_path: Path) -> None:
    publish(tmp_path, "m", 1, seed=1)
    publish(tmp_path, "other", 1, seed=2)
    _loop(tmp_path / "junk" / "1" / "model.onnx")  # never a model, never stops polling
    with InProcessService(tmp_path, poll_interval_seconds=0.1) as service:
        url = service.url
        publish(tmp_path, "m", 2, seed=3)
        wait_for(lambda: _served(url, "m") == (["2"], "2"), what="m rolled to 2")
        _loop(tmp_path / "other" / "2" / "model.onnx")  # "other" cannot be seen whole
        shutil.rmtree(tmp_path / "other" / "1")
        time.sleep(0.6)
        assert _served(url, "other") == (["1"], "1")  # held, not taken for gone
        load = httpx.post(f"{url}/v2/repository/models/other/load", timeout=60)
        assert load.status_code == 503, load.text
        assert "cannot be read" in load.json()["error"]
        (tmp_path / "other" / "2" / "model.onnx").unlink()
        (tmp_path / "other" / "2").rmdir()
        publish(tmp_path, "other", 3, seed=4)
        wait_for(lambda: _served(url, "other") == (["3"], "3"), what="other readable again")


def test_a_labelled_version_whose_folder_is_deleted_is_retired(tmp_path: Path) -> None:
    publish(tmp_path, "m", 1, seed=1)
    publish(tmp_path, "m", 2, seed=2)
    (tmp_path / "m" / "config.json").write_text(json.dumps({"labels": {"stable": 1}}))
    with InProcessService(tmp_path, poll_interval_seconds=0.1) as service:
        assert _served(service.url, "m") == (["1", "2"], "2")
        shutil.rmtree(tmp_path / "m" / "1")
        wait_for(lambda: _served(service.url, "m") == (["2"], "2"), what="1 retired")
        assert httpx.get(f"{service.url}/models").json()["models"][0]["labels"] == {}


def test_a_load_of_a_model_whose_folder_is_gone_unloads_nothing(tmp_path: Path) -> None:
    publish(tmp_path, "m", 1, seed=1)
    with InProcessService(tmp_path, model_control_mode="explicit") as service:
        (tmp_path / "m").rename(tmp_path / "m.swapping")
        load = httpx.post(f"{service.url}/v2/repository/models/m/load", timeout=60)
        assert load.status_code == 404, load.text
        assert _serves(service.url)
        (tmp_path / "m.swapping").rename(tmp_path / "m")
        assert httpx.post(f"{service.url}/v2/repository/models/m/load", timeout=60).is_success
        assert _serves(service.url)
