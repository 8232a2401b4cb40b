"""Optional packages: imported where needed, or one clear error naming the extra to install.

The evaluation itself needs only the server's dependencies (onnxruntime, numpy, pydantic...);
the progress bar (tqdm), the figures (matplotlib), the digits dataset (scikit-learn) and the
Ray engine (Ray Data) come with extras. A missing one is an :class:`EvaluationError` (exit
status 2, one line), never a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from service.evaluate.errors import EvaluationError

__all__ = ["require"]

PACKAGES = {"tqdm": "tqdm", "matplotlib": "matplotlib", "sklearn": "scikit-learn", "ray": "ray"}
"""Distribution names of the optional modules (what ``pip`` installs)."""


def require(module: str, what: str, extra: str = "evaluate", instead: str = "") -> ModuleType:
    """``module`` imported, or :class:`EvaluationError` saying that its package, needed for
    ``what``, is installed with ``extra`` (``instead``: the option that does without it)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        package = PACKAGES.get(top, top)
        missing = exc.name if exc.name and exc.name.split(".")[0] != top else None
        because = f"{missing}, which {package} needs," if missing else package
        alternative = f", or pass {instead}" if instead else ""
        raise EvaluationError(
            f"{because} is not installed (needed for {what}): pip install -e '.[{extra}]'"
            f"{alternative}"
        ) from None
