"""Prediction options, defined once: what every transport accepts and validates the same way.

The REST schema inherits :class:`PredictOptions`; gRPC and the Open Inference Protocol build it
with :meth:`PredictOptions.parse`, which turns a violated constraint into
:class:`~service.errors.InvalidInputError`.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.activations import Activation
from service.calibration.file import Calibration
from service.errors import InvalidInputError

__all__ = ["Activation", "PredictOptions"]

FLOAT32_NORMAL = float(np.finfo(np.float32).tiny)
FLOAT32_MAX = float(np.finfo(np.float32).max)


class PredictOptions(BaseModel):
    """How logits are post-processed."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    activation: Activation = Field(
        Activation.SOFTMAX, description="What to return besides the logits."
    )
    temperature: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        1.0,
        description="The logits are divided by it before the activation (after the "
        "version's calibration, when that applies: the two multiply).",
    )
    calibrated: bool = Field(
        True,
        description="Apply the version's calibration (its calibration.json temperature) to "
        "softmax and log_softmax scores and top-k; false: the model's own scores.",
    )
    top_k: Annotated[int, Field(ge=0)] = Field(
        0, description="Also return the k best classes of each image (at most the class count)."
    )

    def divisor(self, calibration: Calibration | None) -> tuple[float, bool]:
        """What divides the logits before the activation, and whether ``calibration`` (the
        version's) is part of it: only softmax and log_softmax scores are calibrated
        (temperature scaling is fitted for a softmax classifier)."""
        applies = (
            calibration is not None
            and self.calibrated
            and self.activation in (Activation.SOFTMAX, Activation.LOG_SOFTMAX)
        )
        divisor = self.temperature * (calibration.temperature if calibration and applies else 1.0)
        if not FLOAT32_NORMAL <= divisor <= FLOAT32_MAX:  # the scores are computed in float32
            scaled = " times the version's calibrated temperature" if applies else ""
            raise InvalidInputError(
                f"temperature{scaled} must lie in [{FLOAT32_NORMAL:.3g}, {FLOAT32_MAX:.3g}] "
                f"(float32), got {divisor!r}",
                field="temperature",
            )
        return divisor, applies

    @classmethod
    def parse(cls, prefix: str = "", **values: Any) -> PredictOptions:
        """Options from loosely typed values (``None`` = default); a bad value raises
        :class:`InvalidInputError` naming ``prefix`` + the field."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return _DEFAULT
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = str(error["loc"][0]) if error["loc"] else "options"
            if error["type"] == "enum":
                message = f"must be one of {', '.join(Activation)}, got {error['input']!r}"
            else:
                message = f"{error['msg'][0].lower()}{error['msg'][1:]}"
            raise InvalidInputError(f"{prefix}{field} {message}", field=field) from None


_DEFAULT = PredictOptions.model_validate({})
