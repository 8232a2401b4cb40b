"""Inference-and-loss service: numerics core, model repository, data plane and transports."""

__version__ = "1.0.0"
