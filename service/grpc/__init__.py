"""The gRPC transport: the project's API and the Open Inference Protocol."""

from service.grpc.server import GrpcServer

__all__ = ["GrpcServer"]
