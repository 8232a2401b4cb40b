"""The Open Inference Protocol's gRPC service (``inference.GRPCInferenceService``)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from service import oip
from service._generated.inference import grpc_predict_v2_pb2 as v2
from service._generated.inference import grpc_predict_v2_pb2_grpc as v2_grpc
from service.dataplane import DataPlane
from service.grpc._typing import Context, deadline_of
from service.grpc.converters import infer_request_from_proto, infer_response_to_proto

__all__ = ["EXTENSIONS", "InferenceServicer"]

EXTENSIONS: list[str] = [*oip.repository.EXTENSIONS]


class InferenceServicer(v2_grpc.GRPCInferenceServiceServicer):
    """Health, metadata and inference, as the protocol specifies them, and Triton's
    model-repository and statistics extensions."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def ServerLive(
        self, request: v2.ServerLiveRequest, context: Context
    ) -> v2.ServerLiveResponse:
        return v2.ServerLiveResponse(live=self.plane.live())

    async def ServerReady(
        self, request: v2.ServerReadyRequest, context: Context
    ) -> v2.ServerReadyResponse:
        return v2.ServerReadyResponse(ready=self.plane.ready())

    async def ModelReady(
        self, request: v2.ModelReadyRequest, context: Context
    ) -> v2.ModelReadyResponse:
        return v2.ModelReadyResponse(
            ready=oip.model_ready(self.plane, request.name, request.version)
        )

    async def ServerMetadata(
        self, request: v2.ServerMetadataRequest, context: Context
    ) -> v2.ServerMetadataResponse:
        return v2.ServerMetadataResponse(**oip.server_metadata(EXTENSIONS))

    async def ModelMetadata(
        self, request: v2.ModelMetadataRequest, context: Context
    ) -> v2.ModelMetadataResponse:
        metadata = oip.model_metadata(self.plane, request.name, request.version)
        tensor = v2.ModelMetadataResponse.TensorMetadata
        return v2.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[tensor(**t) for t in metadata["inputs"]],
            outputs=[tensor(**t) for t in metadata["outputs"]],
        )

    async def ModelInfer(
        self, request: v2.ModelInferRequest, context: Context
    ) -> v2.ModelInferResponse:
        parsed = infer_request_from_proto(request)
        response = await oip.infer(self.plane, parsed, deadline=deadline_of(context))
        return infer_response_to_proto(response)

    async def RepositoryIndex(
        self, request: v2.RepositoryIndexRequest, context: Context
    ) -> v2.RepositoryIndexResponse:
        entries = await oip.repository.repository_index(self.plane, ready_only=request.ready)
        model = v2.RepositoryIndexResponse.ModelIndex
        return v2.RepositoryIndexResponse(models=[model(**entry) for entry in entries])

    async def RepositoryModelLoad(
        self, request: v2.RepositoryModelLoadRequest, context: Context
    ) -> v2.RepositoryModelLoadResponse:
        await oip.repository.load(self.plane, request.model_name, _parameters(request))
        return v2.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: v2.RepositoryModelUnloadRequest, context: Context
    ) -> v2.RepositoryModelUnloadResponse:
        await oip.repository.unload(self.plane, request.model_name, _parameters(request))
        return v2.RepositoryModelUnloadResponse()

    async def ModelStatistics(
        self, request: v2.ModelStatisticsRequest, context: Context
    ) -> v2.ModelStatisticsResponse:
        report = oip.repository.statistics(self.plane, request.name, request.version)
        return json_format.ParseDict(report, v2.ModelStatisticsResponse())


def _parameters(
    request: v2.RepositoryModelLoadRequest | v2.RepositoryModelUnloadRequest,
) -> dict[str, Any]:
    return {
        name: getattr(value, value.WhichOneof("parameter_choice") or "bool_param")
        for name, value in request.parameters.items()
    }
