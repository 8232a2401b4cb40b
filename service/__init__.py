"""Inference-and-loss service: numerics core, and (as it lands) the data plane and transports."""
