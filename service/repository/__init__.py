"""The model repository: the files (``<model>/<version>/model.onnx`` and ``config.json``), how
one version is loaded, and what is served right now.

:func:`scan` looks at the files, :func:`read_model_config` reads a model's settings,
:func:`load_model` opens a session (in a model process), and :class:`ModelRepository` routes
requests to the ready versions by name, version or label.
"""

from service.repository._layout import (
    CONFIG_FILE,
    MODEL_FILE,
    FileStamp,
    ModelFiles,
    discover,
    file_stamp,
    scan,
)
from service.repository._model import LoadedModel, ServedModel, TensorSpec, load_model
from service.repository.model_config import LABEL, ModelConfig, VersionPolicy, read_model_config
from service.repository.served import ModelRepository, VersionState, VersionStatus

__all__ = [
    "CONFIG_FILE",
    "LABEL",
    "MODEL_FILE",
    "FileStamp",
    "LoadedModel",
    "ModelConfig",
    "ModelFiles",
    "ModelRepository",
    "ServedModel",
    "TensorSpec",
    "VersionPolicy",
    "VersionState",
    "VersionStatus",
    "discover",
    "file_stamp",
    "load_model",
    "read_model_config",
    "scan",
]
