"""Inference-and-loss service: numerics core, model repository, data plane and transports."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cifar10-inference-service")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
