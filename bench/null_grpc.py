"""``python -m bench.null_grpc PORT [KIND]``: a gRPC server whose ModelInfer returns a fixed
response at once — the cost of the gRPC framework alone. KIND is ``aio`` (default: ``grpc.aio``
on uvloop, as the service runs), ``sync-N`` (grpcio's thread-pool server, N threads) or
``grpclib`` (pure Python on h2, uvloop; needs grpclib on ``PYTHONPATH``, which
:mod:`bench.grpc_fronts` provides). KIND ``model:FILE`` is the one that is not null: a
``grpc.aio`` server that runs the ONNX model ``FILE`` in its handler, on the event loop, and
answers its logits and probabilities — the least a Python gRPC front can do for one request
(:mod:`bench.lone_request`)."""

from __future__ import annotations

import sys
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import uvloop

from service._generated.inference import grpc_predict_v2_pb2 as v2

RESPONSE = v2.ModelInferResponse(model_name="null", model_version="1")
SERVICE, METHOD = "inference.GRPCInferenceService", "ModelInfer"


def _handlers(infer: Any) -> tuple[grpc.GenericRpcHandler]:
    handler = grpc.unary_unary_rpc_method_handler(
        infer,
        request_deserializer=v2.ModelInferRequest.FromString,
        response_serializer=v2.ModelInferResponse.SerializeToString,
    )
    return (grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),)


async def _serve_on_aio(port: int, infer: Any) -> None:
    """A ``grpc.aio`` server whose ModelInfer is ``infer``, until it is stopped."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(_handlers(infer))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def serve_aio(port: int) -> None:
    async def infer(request: v2.ModelInferRequest, context: Any) -> v2.ModelInferResponse:
        return RESPONSE

    await _serve_on_aio(port, infer)


async def serve_model(port: int, path: str) -> None:
    import numpy as np

    from bench._models import one_thread_session
    from service.activations import softmax

    session = one_thread_session(Path(path))
    name = session.get_inputs()[0].name

    async def infer(request: v2.ModelInferRequest, context: Any) -> v2.ModelInferResponse:
        shape = tuple(request.inputs[0].shape)
        pixels = np.frombuffer(request.raw_input_contents[0], np.uint8).reshape(shape)
        (logits,) = session.run(None, {name: pixels.astype(np.float32)})
        scores = softmax(logits)  # the service's own, as the service computes it
        response = v2.ModelInferResponse(model_name=request.model_name, model_version="1")
        for output, values in (("logits", logits), ("probabilities", scores)):
            response.outputs.add(name=output, datatype="FP32", shape=list(values.shape))
            response.raw_output_contents.append(values.tobytes())
        return response

    await _serve_on_aio(port, infer)


def serve_sync(port: int, threads: int) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads))
    server.add_generic_rpc_handlers(_handlers(lambda request, context: RESPONSE))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


async def serve_grpclib(port: int) -> None:
    from grpclib.const import Cardinality, Handler  # type: ignore[import-not-found]
    from grpclib.server import Server  # type: ignore[import-not-found]

    class Null:
        def __mapping__(self) -> dict[str, Any]:
            return {f"/{SERVICE}/{METHOD}": Handler(
                self.infer, Cardinality.UNARY_UNARY, v2.ModelInferRequest, v2.ModelInferResponse
            )}  # fmt: skip

        async def infer(self, stream: Any) -> None:
            await stream.recv_message()
            await stream.send_message(RESPONSE)

    server = Server([Null()])
    await server.start("127.0.0.1", port)
    await server.wait_closed()


if __name__ == "__main__":
    port, kind = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else "aio")
    if kind == "aio":
        uvloop.run(serve_aio(port))
    elif kind == "grpclib":
        uvloop.run(serve_grpclib(port))
    elif kind.startswith("model:"):
        uvloop.run(serve_model(port, kind.removeprefix("model:")))
    elif kind.startswith("sync-"):
        serve_sync(port, int(kind.removeprefix("sync-")))
    else:
        raise SystemExit(f"unknown kind {kind!r}: aio, sync-N, grpclib or model:FILE")
