"""A typed client of the project's REST API, with the same methods as the gRPC client."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import numpy.typing as npt

from service.client._results import (
    QUALITY_FIGURES,
    CalibrationResult,
    LossResult,
    PredictResult,
    RequestError,
    TopClass,
)
from service.client._security import PathLike, bearer, ssl_context

__all__ = ["RestClient"]

Images = npt.NDArray[np.generic] | Sequence[bytes]


def _images(images: Images) -> dict[str, Any]:
    if isinstance(images, np.ndarray):
        return {"instances": np.asarray(images).tolist()}
    return {"images": [base64.b64encode(data).decode() for data in images]}


def _optional(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    return None if value is None else np.asarray(value, dtype=np.float32)


class RestClient:
    """``RestClient("http://127.0.0.1:8000").predict(images)``: numpy in, numpy out.

    ``retries``: how many times a request is sent again when it could not be delivered (no
    connection) or its connection closed before any answer, as happens when a server drains or
    a proxy in front of it reloads. Safe because every POST of this API is a pure function of
    its body (nothing is changed by running it twice).

    ``api_key``: sent as ``Authorization: Bearer KEY`` when the service requires a key. Over
    ``https://``, ``verify`` is the CA file that signed the service's certificate (True: the
    system's CAs), and ``cert`` = (certificate file, key file) the client certificate to
    present where the service requires one (mutual TLS)."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        timeout: float = 60.0,
        retries: int = 2,
        api_key: str | None = None,
        verify: bool | PathLike | ssl.SSLContext = True,
        cert: tuple[PathLike, PathLike] | None = None,
    ) -> None:
        transport = httpx.HTTPTransport(  # retries: connection failures
            retries=retries, verify=ssl_context(verify, cert)
        )
        headers = {} if api_key is None else {"Authorization": bearer(api_key)}
        self._http = httpx.Client(
            base_url=url, timeout=timeout, transport=transport, headers=headers
        )
        self._retries = retries

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self._retries + 1):
            try:
                response = self._http.post(path, json=body)
                break
            except (httpx.RemoteProtocolError, httpx.ReadError):  # closed or reset, unanswered
                if attempt == self._retries:
                    raise
        try:
            payload: dict[str, Any] = response.json()
        except ValueError:  # not this service's answer (a proxy's error page, say)
            raise RequestError("http_error", response.text[:200], response.status_code) from None
        if response.status_code != 200:
            error = payload.get("error", {})
            raise RequestError(
                error.get("code", ""), error.get("message", ""), response.status_code
            )
        return payload

    def predict(
        self,
        images: Images,
        *,
        model: str | None = None,
        version: str | int | None = None,
        activation: str = "softmax",
        temperature: float = 1.0,
        top_k: int = 0,
    ) -> PredictResult:
        """Pixels ``[N, H, W, C]`` (0–255), or encoded PNG/JPEG files."""
        body = {"model": model, "version": version, "activation": activation,
                "temperature": temperature, "top_k": top_k, **_images(images)}  # fmt: skip
        got = self._post("/predict", {k: v for k, v in body.items() if v is not None})
        return PredictResult(
            model=got["model"]["name"],
            version=got["model"]["version"],
            activation=got["activation"],
            logits=np.asarray(got["logits"], dtype=np.float32),
            probabilities=_optional(got, "probabilities"),
            log_probabilities=_optional(got, "log_probabilities"),
            top_k=[[TopClass(**c) for c in row] for row in got.get("top_k", [])],
        )

    def loss(
        self,
        loss: str,
        labels: npt.ArrayLike,
        *,
        logits: npt.ArrayLike | None = None,
        probabilities: npt.ArrayLike | None = None,
        images: Images | None = None,
        model: str | None = None,
        version: str | int | None = None,
        reduction: str = "sum_over_batch_size",
        sample_weight: npt.ArrayLike | None = None,
        return_gradient: bool = False,
        **options: Any,
    ) -> LossResult:
        """A Keras loss over a labelled batch; see ``service.losses.compute_loss``."""
        body: dict[str, Any] = {
            "loss": loss, "labels": np.asarray(labels).tolist(), "model": model, "version": version,
            "reduction": reduction, "return_gradient": return_gradient, **options,
        }  # fmt: skip
        for name, value in (
            ("logits", logits),
            ("probabilities", probabilities),
            ("sample_weight", sample_weight),
        ):
            if value is not None:
                body[name] = np.asarray(value, dtype=np.float32).tolist()
        if images is not None:
            body |= _images(images)
        got = self._post("/loss", {k: v for k, v in body.items() if v is not None})
        value = got["value"]
        return LossResult(
            loss=got["loss"],
            reduction=got["reduction"],
            value=float(value) if not isinstance(value, list) else np.asarray(value, np.float32),
            per_sample=np.asarray(got["per_sample"], dtype=np.float32),
            gradient=_optional(got, "gradient"),
            model=got["model"]["name"] if "model" in got else None,
            metrics=got.get("metrics"),
        )

    def calibrate(
        self,
        labels: npt.ArrayLike,
        *,
        logits: npt.ArrayLike | None = None,
        probabilities: npt.ArrayLike | None = None,
        images: Images | None = None,
        model: str | None = None,
        version: str | int | None = None,
    ) -> CalibrationResult:
        """The temperature that fits class-id ``labels`` [N] best, from logits or
        probabilities [N, C] or images the model runs on (exactly one); stores nothing."""
        body: dict[str, Any] = {
            "labels": np.asarray(labels).tolist(), "model": model, "version": version,
        }  # fmt: skip
        for name, value in (("logits", logits), ("probabilities", probabilities)):
            if value is not None:
                body[name] = np.asarray(value, dtype=np.float32).tolist()
        if images is not None:
            body |= _images(images)
        got = self._post("/calibrate", {k: v for k, v in body.items() if v is not None})
        ran = got.get("model")
        return CalibrationResult(
            temperature=float(got["temperature"]),
            rows=int(got["rows"]),
            iterations=int(got["iterations"]),
            at_bound=bool(got["at_bound"]),
            before={name: float(got["before"][name]) for name in QUALITY_FIGURES},
            after={name: float(got["after"][name]) for name in QUALITY_FIGURES},
            model=ran["name"] if ran else None,
            version=ran["version"] if ran else None,
        )

    def load_model(self, name: str) -> None:
        """(Re)load model ``name`` from the service's repository now (Triton's repository API,
        ``POST /v2/repository/models/{name}/load``): in poll mode the service reads the model's
        files at once. Answers once the model serves."""
        response = self._http.post(f"/v2/repository/models/{quote(name, safe='')}/load", json={})
        if response.is_success:
            return
        try:  # the protocol's own error body under /v2: {"error": "..."}
            payload = response.json()
            message = str(payload["error"]) if isinstance(payload, dict) else response.text
        except (ValueError, KeyError):  # not this service's answer (a proxy's error page, say)
            message = response.text
        raise RequestError("http_error", message.strip()[:200], response.status_code)

    def list_models(self) -> dict[str, list[str]]:
        """Model name → versions."""
        response = self._http.get("/models")
        response.raise_for_status()
        return {m["name"]: m["versions"] for m in response.json()["models"]}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
