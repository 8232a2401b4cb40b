"""The Open Inference Protocol's gRPC service (``inference.GRPCInferenceService``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from service import oip
from service._generated.inference import grpc_predict_v2_pb2 as v2
from service._generated.inference import grpc_predict_v2_pb2_grpc as v2_grpc
from service.dataplane import DataPlane
from service.errors import InvalidInputError
from service.grpc._typing import Context, deadline_of
from service.grpc.converters import infer_request_from_proto, infer_response_to_proto
from service.grpc.errors import request_error_message

__all__ = ["EXTENSIONS", "MAX_STREAM_IN_FLIGHT", "InferenceServicer"]

EXTENSIONS: list[str] = [*oip.repository.EXTENSIONS]

MAX_STREAM_IN_FLIGHT = 64
"""Requests of one ``ModelStreamInfer`` call read but not yet answered on the wire. The call
reads its next request only once fewer are, so a client that sends faster than the model
answers (or reads its answers slower) is held back by gRPC's flow control instead of buffered
here without bound; 64 is enough for a pipelining client to fill the dynamic batcher's batches."""

_STREAM_ENDPOINT = "/inference.GRPCInferenceService/ModelStreamInfer"


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

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[v2.ModelInferRequest], context: Context
    ) -> AsyncIterator[v2.ModelStreamInferResponse]:
        """Triton's streaming inference: each request runs as :meth:`ModelInfer` would run it,
        and is answered on the stream.

        * Requests run concurrently, up to :data:`MAX_STREAM_IN_FLIGHT` per call (the next is
          read only once an answer is written), so that a pipelining client's requests are
          batched together by the dynamic batcher; answers come in the order they finish, not
          the order sent, each with its request's ``id`` (``infer_response.id``).
        * A request that fails is answered with ``error_message`` (the message its unary call
          would end with; a fault of the server's own: "inference failed", the cause logged)
          and ``infer_response.id``; the stream goes on.
        * The call's deadline applies to every request of it (and a request's own ``timeout``
          parameter, as for :meth:`ModelInfer`).
        * The call ends OK once the client has half-closed and every request read is answered.
          Cancelled (client gone, deadline passed), it stops reading and cancels every request
          still running; nothing outlives the call.
        * A message that is not a ``ModelInferRequest`` at all (bytes protobuf cannot parse;
          no client library sends one) ends the call with INVALID_ARGUMENT, once the requests
          read before it are answered.
        """
        deadline = deadline_of(context)
        answers: asyncio.Queue[v2.ModelStreamInferResponse | Exception | None]
        answers = asyncio.Queue()
        room = asyncio.Semaphore(MAX_STREAM_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()

        async def answer(request: v2.ModelInferRequest) -> None:
            try:
                answers.put_nowait(await self._stream_answer(request, deadline))
            except BaseException:  # cancelled: its answer will never be written
                room.release()
                raise

        async def read() -> None:
            ending: Exception | None = None
            try:
                requests = aiter(request_iterator)
                for number in itertools.count(1):
                    await room.acquire()  # given back when the answer is written
                    try:
                        request = await anext(requests)
                    except StopAsyncIteration:
                        break
                    except DecodeError:
                        raise InvalidInputError(
                            f"message {number} of the stream is not a ModelInferRequest"
                        ) from None
                    task = asyncio.create_task(answer(request))
                    running.add(task)
                    task.add_done_callback(running.discard)
            except Exception as exc:  # no more can be read: the call ends with its status
                ending = exc
            if running:  # each puts its answer on the queue before it is done
                await asyncio.wait(set(running))
            answers.put_nowait(ending)

        reader = asyncio.create_task(read())
        try:
            while isinstance(answered := await answers.get(), v2.ModelStreamInferResponse):
                yield answered
                room.release()
            if answered is not None:
                raise answered
        finally:
            pending = [reader, *running]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _stream_answer(
        self, request: v2.ModelInferRequest, deadline: float | None
    ) -> v2.ModelStreamInferResponse:
        """One request of a stream, answered with its response or its error."""
        try:
            parsed = infer_request_from_proto(request)
            response = await oip.infer(self.plane, parsed, deadline=deadline)
            return v2.ModelStreamInferResponse(infer_response=infer_response_to_proto(response))
        except Exception as exc:
            return v2.ModelStreamInferResponse(
                error_message=request_error_message(exc, _STREAM_ENDPOINT),
                infer_response=v2.ModelInferResponse(id=request.id),
            )

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
