"""onnxruntime execution providers and session options from the settings."""

from __future__ import annotations

import onnxruntime as ort

from service.errors import ModelLoadError

__all__ = ["providers_for", "session_options"]

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def providers_for(device: str) -> list[str]:
    """``auto``: CUDA when this onnxruntime build offers it, else CPU; ``cuda`` requires it."""
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if CUDA in available:
        return [CUDA, CPU]
    if device == "cuda":
        raise ModelLoadError(
            "--device cuda was asked for, but this onnxruntime has no CUDA provider "
            f"(available: {', '.join(available)}); install the gpu extra on a CUDA machine"
        )
    return [CPU]


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    """Graph optimisations on; ``intra_op_threads`` threads per run, one inter-op thread, and
    idle threads that sleep instead of spinning: spinning would take the cores the event loop
    and the other executor threads need (see ``docs/service.md``)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Fatal only: a failed run reaches the service's own log once (as JSON when asked), and
    # onnxruntime's native error line on stderr would repeat it in a format of its own.
    options.log_severity_level = 4
    return options
