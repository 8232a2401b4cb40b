"""``python -m bench.null_grpc PORT``: a ``grpc.aio`` server (on uvloop, like the service)
whose ModelInfer returns a fixed response at once — the cost of the gRPC framework alone."""

from __future__ import annotations

import sys
from typing import Any

import grpc
import uvloop

from service._generated.inference import grpc_predict_v2_pb2 as v2

RESPONSE = v2.ModelInferResponse(model_name="null", model_version="1")


async def infer(request: v2.ModelInferRequest, context: Any) -> v2.ModelInferResponse:
    return RESPONSE


async def main(port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        infer,
        request_deserializer=v2.ModelInferRequest.FromString,
        response_serializer=v2.ModelInferResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(
            "inference.GRPCInferenceService", {"ModelInfer": handler}
        ),)
    )  # fmt: skip
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
