"""The project's own gRPC API, health and reflection, against the real server (in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.client import GrpcClient, RequestError, RestClient
from tests.service.helpers import MAX_ROWS, InProcessService
from tests.service.helpers import encode as png
from tests.service.onnx_models import LinearModel, write_linear_model


@pytest.fixture
def grpc_client(served: InProcessService) -> Iterator[GrpcClient]:
    with GrpcClient(served.grpc_target) as client:
        yield client


def test_predict_matches_rest(
    served: InProcessService,
    grpc_client: GrpcClient,
    images: np.ndarray,
    references: dict[tuple[str, int], LinearModel],
) -> None:
    by_grpc = grpc_client.predict(images, model="cifar10", top_k=3)
    with RestClient(served.url) as rest:
        by_rest = rest.predict(images, model="cifar10", top_k=3)
    np.testing.assert_allclose(
        by_grpc.logits, references[("cifar10", 2)].logits(images), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(by_grpc.logits, by_rest.logits)
    np.testing.assert_array_equal(by_grpc.probabilities, by_rest.probabilities)
    assert by_grpc.top_k == by_rest.top_k
    assert (by_grpc.model, by_grpc.version) == ("cifar10", "2")


def test_predict_input_forms(grpc_client: GrpcClient, images: np.ndarray) -> None:
    as_uint8 = grpc_client.predict(images, model="cifar10")
    as_float = grpc_client.predict(images.astype(np.float32), model="cifar10")
    as_png = grpc_client.predict([png(i) for i in images], model="cifar10")
    np.testing.assert_array_equal(as_uint8.logits, as_float.logits)
    np.testing.assert_allclose(as_png.logits, as_float.logits, rtol=1e-6)
    logs = grpc_client.predict(images, model="cifar10", activation="log_softmax", version=1)
    assert logs.probabilities is None
    assert logs.log_probabilities is not None
    assert logs.version == "1"


def test_stream_predict_answers_each_batch_in_order(
    grpc_client: GrpcClient, images: np.ndarray
) -> None:
    batches = [images[:1], images[1:3], images[3:]]
    results = list(grpc_client.stream_predict(batches, model="cifar10"))
    assert [len(r.logits) for r in results] == [1, 2, 2]
    np.testing.assert_array_equal(
        np.concatenate([r.logits for r in results]),
        grpc_client.predict(images, model="cifar10").logits,
    )


def test_loss_matches_rest(
    served: InProcessService, grpc_client: GrpcClient, images: np.ndarray
) -> None:
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(6, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 6)
    options = {"reduction": "sum", "return_gradient": True, "label_smoothing": 0.1}
    with RestClient(served.url) as rest:
        for name in ("categorical_crossentropy", "categorical_focal_crossentropy"):
            by_grpc = grpc_client.loss(name, labels, logits=logits, **options)
            by_rest = rest.loss(name, labels, logits=logits, **options)
            assert by_grpc.value == pytest.approx(by_rest.value, rel=1e-7)
            np.testing.assert_array_equal(by_grpc.gradient, by_rest.gradient)
        on_images = grpc_client.loss(
            "sparse_categorical_crossentropy", [1, 2, 3, 4, 5], images=images, model="cifar10"
        )
        same_on_rest = rest.loss(
            "sparse_categorical_crossentropy", [1, 2, 3, 4, 5], images=images, model="cifar10"
        )
    assert on_images.metrics == pytest.approx(same_on_rest.metrics)
    assert on_images.value == pytest.approx(same_on_rest.value, rel=1e-6)
    assert on_images.model == "cifar10"
    alpha = grpc_client.loss(
        "categorical_focal_crossentropy", labels, logits=logits, alpha=[0.1] * 10, reduction="none"
    )
    assert isinstance(alpha.value, np.ndarray)
    assert alpha.value.shape == (6,)


def test_list_models(grpc_client: GrpcClient) -> None:
    assert grpc_client.list_models() == {"cifar10": ["1", "2"], "xy": ["1"]}


def test_large_batches_exceed_grpc_default_message_size(tmp_path: Path) -> None:
    """342 float32 images are already over gRPC's 4 MiB default; the server accepts 64 MiB."""
    write_linear_model(tmp_path / "m" / "1" / "model.onnx")
    pixels = np.random.default_rng(0).uniform(0, 255, (400, 32, 32, 3)).astype(np.float32)
    service = InProcessService(tmp_path).start()
    try:
        with GrpcClient(service.grpc_target) as client:
            assert client.predict(pixels).logits.shape == (400, 10)
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("call", "code", "fragment"),
    [
        (
            lambda c, x: c.predict(x, model="nope"),
            grpc.StatusCode.NOT_FOUND,
            "model 'nope' is not served",
        ),
        (
            lambda c, x: c.predict(x, model="cifar10", version=7),
            grpc.StatusCode.NOT_FOUND,
            "no version 7",
        ),
        (
            lambda c, x: c.predict(x[:, :16], model="cifar10"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "pixels must have shape [N, 32, 32, 3]",
        ),
        (
            lambda c, x: c.predict([b"not an image"], model="cifar10"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "images[0]",
        ),
        (
            lambda c, x: c.predict(x, model="cifar10", activation="relu"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "activation must be one of",
        ),
        (
            lambda c, x: c.predict(np.zeros((MAX_ROWS + 1, 32, 32, 3), np.uint8), model="cifar10"),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "limit",
        ),
        (
            lambda c, x: c.loss("kld", [0], logits=[[1.0, 2.0]]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown loss 'kld'",
        ),
        (
            lambda c, x: c.loss("hinge", [[1.0]]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "give one of logits",
        ),
        (
            lambda c, x: c.loss("sparse_categorical_crossentropy", [5], logits=[[1.0, 2.0]]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "class-id labels must lie in [0, 2)",
        ),
    ],
)
def test_error_status_codes(
    grpc_client: GrpcClient, images: np.ndarray, call, code: grpc.StatusCode, fragment: str
) -> None:
    with pytest.raises(RequestError) as caught:
        call(grpc_client, images)
    assert caught.value.code == code.name
    assert fragment in caught.value.message


def test_malformed_tensor_is_invalid_argument(served: InProcessService) -> None:
    from service._generated.cifar10.v1 import classifier_pb2 as pb
    from service._generated.cifar10.v1 import classifier_pb2_grpc as pb_grpc

    with grpc.insecure_channel(served.grpc_target) as channel:
        stub = pb_grpc.ClassifierStub(channel)
        bad = pb.Tensor(shape=[1, 32, 32, 3], dtype=pb.FLOAT32, data=b"\x00" * 10)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(pb.PredictRequest(model="cifar10", pixels=bad))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "10 bytes of data for shape [1, 32, 32, 3]" in str(caught.value.details())
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(pb.PredictRequest(model="cifar10"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert httpx.get(f"{served.url}/health/ready").status_code == 200


def test_health_reports_serving(served: InProcessService) -> None:
    with grpc.insecure_channel(served.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "cifar10.v1.Classifier", "inference.GRPCInferenceService"):
            response = stub.Check(health_pb2.HealthCheckRequest(service=service))  # type: ignore[attr-defined]
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))  # type: ignore[attr-defined]
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_services(served: InProcessService) -> None:
    with grpc.insecure_channel(served.grpc_target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="inference.GRPCInferenceService"
            ),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="cifar10.v1.Classifier"),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health"),
        ]
        listed, *files = list(stub.ServerReflectionInfo(iter(requests)))  # type: ignore[operator]
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "cifar10.v1.Classifier",
        "inference.GRPCInferenceService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    for response in files:
        assert response.file_descriptor_response.file_descriptor_proto, response


def test_v2_grpc_accepts_typed_contents(
    served: InProcessService, images: np.ndarray, references: dict[tuple[str, int], LinearModel]
) -> None:
    """tritonclient sends raw_input_contents; the protocol also allows typed contents."""
    from service._generated.inference import grpc_predict_v2_pb2 as v2
    from service._generated.inference import grpc_predict_v2_pb2_grpc as v2_grpc

    expected = references[("cifar10", 2)].logits(images)
    with grpc.insecure_channel(served.grpc_target) as channel:
        stub = v2_grpc.GRPCInferenceServiceStub(channel)
        for datatype, field in (
            ("FP32", "fp32_contents"),
            ("UINT8", "uint_contents"),
            ("INT64", "int64_contents"),
        ):
            tensor = v2.ModelInferRequest.InferInputTensor(
                name="images", datatype=datatype, shape=list(images.shape)
            )
            getattr(tensor.contents, field).extend(images.ravel().tolist())
            response = stub.ModelInfer(
                v2.ModelInferRequest(
                    model_name="cifar10",
                    inputs=[tensor],
                    outputs=[v2.ModelInferRequest.InferRequestedOutputTensor(name="logits")],
                )
            )
            (output,) = response.outputs
            assert (output.name, output.datatype, list(output.shape)) == ("logits", "FP32", [5, 10])
            assert not output.HasField("contents")
            logits = np.frombuffer(response.raw_output_contents[0], dtype="<f4").reshape(5, 10)
            np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)

        tensor = v2.ModelInferRequest.InferInputTensor(
            name="images", datatype="FP32", shape=[1, 32, 32, 3]
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(
                v2.ModelInferRequest(
                    model_name="cifar10", inputs=[tensor], raw_input_contents=[b"", b""]
                )
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "raw_input_contents has 2 entries for 1 inputs" in str(caught.value.details())
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelReady(v2.ModelReadyRequest(name="nope"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_calls_are_counted_by_status(served: InProcessService, grpc_client: GrpcClient) -> None:
    def count(status: str) -> float:
        text = httpx.get(f"{served.url}/metrics").text
        prefix = (
            'service_requests_total{endpoint="/cifar10.v1.Classifier/ListModels",'
            f'status="{status}",transport="grpc"}} '
        )
        return sum(
            float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)
        )

    before_ok, before_missing = count("OK"), count("NOT_FOUND")
    grpc_client.list_models()
    with pytest.raises(RequestError):
        grpc_client.predict(np.zeros((1, 32, 32, 3), np.uint8), model="nope")
    assert count("OK") == before_ok + 1
    predict_missing = 'endpoint="/cifar10.v1.Classifier/Predict",status="NOT_FOUND"'
    assert predict_missing in httpx.get(f"{served.url}/metrics").text
    assert count("NOT_FOUND") == before_missing
