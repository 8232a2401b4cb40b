"""The transport-neutral, async data plane: every transport decodes a request, awaits one of
these methods, and encodes the result.

It owns the business rules (row limits, readiness, activations, top-k, which loss runs on what)
and the one executor all CPU work runs on; model runs go through each model version's
:class:`~service.batching.DynamicBatcher`, which the model manager owns (versions come and go
while the service runs); :attr:`DataPlane.models` is what is served and how it changes. It
knows nothing of wire formats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sized
from dataclasses import replace
from typing import ParamSpec, TypeVar

import numpy as np

from service.calibration.request import calibrate_rows
from service.control import ModelControl
from service.dataplane.catalog import Catalog
from service.dataplane.entry import current_lane
from service.dataplane.messages import (
    CalibrateRequest,
    CalibrationOutcome,
    FloatArray,
    Images,
    LossInput,
    LossOutcome,
    LossRequest,
    ModelImages,
    Prediction,
)
from service.dataplane.options import PredictOptions
from service.errors import InvalidInputError, RequestTooLargeError, UnavailableError
from service.evaluate.metrics import classification_metrics
from service.execution import Executor
from service.execution.runs import ModelCall, ModelOutput, Postprocess
from service.losses import compute_loss
from service.repository import ServedModel
from service.telemetry import Telemetry

__all__ = ["INLINE_BYTES", "DataPlane"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

INLINE_BYTES = 32 << 10
"""Work on inputs up to this size runs on the event loop: below it, handing it to a thread
costs about as much as doing it."""


class DataPlane:
    """Predictions, losses, model metadata and health over the models ``control`` serves."""

    def __init__(
        self,
        control: ModelControl,
        telemetry: Telemetry,
        executor: Executor,
        *,
        max_request_rows: int,
    ) -> None:
        self.models = Catalog(control)
        self.repository = control.manager.repository
        self.telemetry = telemetry
        self.executor = executor
        self.max_request_rows = max_request_rows
        self._control = control
        self._manager = control.manager
        self._ready = False
        self._admitting = True

    # -- life cycle and health -----------------------------------------------------------
    def live(self) -> bool:
        """The process is up."""
        return True

    def ready(self) -> bool:
        """Models are loaded and warmed up (at least one is served), and the service is not
        shutting down."""
        return self._ready and self._manager.ready()

    def on_readiness_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when what is served makes :meth:`ready` change (the last model
        unloaded, a first one loaded)."""
        self._manager.on_readiness_change(callback)

    def set_ready(self, ready: bool) -> None:
        """Called by the server once it can take requests, and when it starts draining.

        Readiness is what probes and load balancers see; it does not refuse requests: one
        that still reaches the plane while the listeners close is served like those in flight
        (refusing it would fail a request no load balancer can retry, such as a gRPC call
        answered UNAVAILABLE in its trailers)."""
        self._ready = ready

    def set_admitting(self, admitting: bool) -> None:
        """Whether inference requests are taken; the server stops admitting when a model
        process has died (and :meth:`stop` does): then they get UNAVAILABLE."""
        self._admitting = admitting

    async def stop(self, timeout: float = 30.0) -> None:
        """Not ready and not admitting any more; run what is queued for every model (for at
        most ``timeout`` seconds: a model run that never ends must not keep the process alive),
        then stop the executor, which fails whatever is still running."""
        self._ready = self._admitting = False
        await self._control.stop()
        closing = self._manager.stop()
        try:
            await asyncio.wait_for(closing, timeout)
        except TimeoutError:
            log.warning("queued requests did not finish within %.0f s; stopping anyway", timeout)
        await self.executor.stop()

    # -- models --------------------------------------------------------------------------
    def model(self, name: str | None = None, version: str | int | None = None) -> ServedModel:
        """The served model ``name`` at ``version`` — a number or a label — (its default
        version when ``None``)."""
        return self.repository.get(name, version)

    # -- CPU work --------------------------------------------------------------------------
    async def offload(self, size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(...)`` for a transport (decoding, encoding): inline when ``size`` (bytes of
        input) is at most :data:`INLINE_BYTES`, else on the executor."""
        if size <= INLINE_BYTES:
            return fn(*args, **kwargs)
        return await self.executor.run(fn, *args, **kwargs)

    def sole_model(self) -> ServedModel | None:
        """The default version of the served model when there is exactly one (then a request
        that names none is for it, and a transport can check its queue before it decodes
        anything)."""
        names = self.repository.names()
        return self.repository.get(names[0]) if len(names) == 1 else None

    def check_room(self, model: ServedModel) -> None:
        """Raise :class:`OverloadedError` now if ``model``'s queue has no room for the running
        request's transport, before the transport spends time decoding it."""
        self._manager.batcher(model).check_room(current_lane())

    def check_rows(self, rows: int, field: str) -> None:
        """Raise :class:`RequestTooLargeError` when ``rows`` exceeds the per-request limit."""
        if rows > self.max_request_rows:
            raise RequestTooLargeError(
                f"{field} holds {rows} rows; the limit is {self.max_request_rows} per request",
                field=field,
            )

    # -- inference -------------------------------------------------------------------------
    async def _run(
        self, model: ServedModel, call: ModelCall, field: str, deadline: float | None
    ) -> ModelOutput:
        """``call`` in a model run shared with concurrent requests for ``model``.

        ``deadline`` (``time.monotonic()``) drops the call if it is still queued then."""
        images = call.images
        if not self._admitting:
            raise UnavailableError("the service is shutting down")
        if images.ndim != 4 or images.shape[1:] != model.image_shape or len(images) == 0:
            raise InvalidInputError(
                f"{field} must have shape [N, {', '.join(map(str, model.image_shape))}] with "
                f"N >= 1, got {list(images.shape)}",
                field=field,
            )
        self.check_rows(len(images), field)
        batcher = self._manager.batcher(model)
        return await batcher.submit(call, len(images), lane=current_lane(), deadline=deadline)

    async def infer(
        self,
        model: ServedModel,
        images: Images,
        *,
        field: str = "images",
        deadline: float | None = None,
    ) -> FloatArray:
        """Logits for a pixel batch ``[N, H, W, C]``, batched with concurrent requests."""
        return (await self._run(model, ModelCall(images, None), field, deadline)).logits

    async def predict(
        self,
        model: ServedModel,
        images: Images,
        options: PredictOptions,
        *,
        field: str = "images",
        deadline: float | None = None,
    ) -> Prediction:
        """Logits plus the requested activation and top-k classes."""
        if options.top_k > model.num_classes:
            raise InvalidInputError(
                f"top_k must be between 0 and {model.num_classes}, got {options.top_k}",
                field="top_k",
            )
        temperature, calibrated = options.divisor(model.calibration)
        post = Postprocess(options.activation, temperature, options.top_k)
        output = await self._run(model, ModelCall(images, post), field, deadline)
        return Prediction(
            model, output.logits, options, output.scores, output.top_k, calibrated, temperature
        )

    async def _predictions(
        self, inputs: LossInput, deadline: float | None
    ) -> tuple[object, bool, ServedModel | None]:
        """What a loss or a fit works on: the given logits or probabilities (their rows
        checked), or the logits the model gives for images; whether they are logits; the
        model when it ran."""
        if isinstance(inputs, ModelImages):
            logits = await self.infer(
                inputs.model, inputs.images, field=inputs.field, deadline=deadline
            )
            return logits, True, inputs.model
        if isinstance(inputs.values, Sized) and getattr(inputs.values, "ndim", 1) > 0:
            self.check_rows(len(inputs.values), inputs.field)  # a 0-d array: compute_loss refuses
        return inputs.values, inputs.from_logits, None

    async def loss(self, request: LossRequest, *, deadline: float | None = None) -> LossOutcome:
        """``compute_loss`` on the given predictions, or on the model's logits for images (then
        with accuracy, top-5 accuracy and calibration error when labels are class ids)."""
        values, from_logits, model = await self._predictions(request.inputs, deadline)
        logits, probabilities = (values, None) if from_logits else (None, values)
        return await self.executor.run(_loss, request, logits, probabilities, model)

    async def calibrate(
        self, request: CalibrateRequest, *, deadline: float | None = None
    ) -> CalibrationOutcome:
        """Fit a temperature to labelled logits or probabilities, or to the model's logits
        for images, and measure the rows before and after it (stores nothing)."""
        values, from_logits, model = await self._predictions(request.inputs, deadline)
        fitted = await self.executor.run(
            calibrate_rows,
            request.labels,
            values,
            field=request.inputs.field,
            probabilities=not from_logits,
        )
        return replace(fitted, model=model)


def _loss(
    request: LossRequest, logits: object, probabilities: object, model: ServedModel | None
) -> LossOutcome:
    result = compute_loss(
        request.loss,
        request.labels,
        logits=logits,
        probabilities=probabilities,
        reduction=request.reduction,
        sample_weight=request.sample_weight,
        return_gradient=request.return_gradient,
        threads=1,  # the executor's other threads serve other requests
        **request.options,
    )
    metrics = None
    if model is not None:
        assert isinstance(logits, np.ndarray)
        metrics = _metrics_for(logits, request.labels, request.options.get("ignore_class"))
    return LossOutcome(result, model, metrics)


def _metrics_for(
    logits: FloatArray, labels: object, ignore_class: object
) -> dict[str, float] | None:
    ids = np.asarray(labels)
    if ids.ndim == 2 and ids.shape[1] == 1:
        ids = ids[:, 0]
    if ids.ndim != 1:
        return None  # one-hot or soft targets: no class ids to score against
    ids = ids.astype(np.int64)
    keep = ids != ignore_class if ignore_class is not None else np.ones(len(ids), dtype=bool)
    if not keep.any():
        return None
    return classification_metrics(logits[keep], ids[keep])
