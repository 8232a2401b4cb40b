"""Several batchers share the model processes: two models (or two versions of one during a roll)
each keep up to one run per model process in flight, so a run can find every process busy
with the other's batch. It waits for a free process and runs; it is never refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from tests.service.helpers import InProcessService
from tests.service.onnx_models import write_slow_model


def test_two_models_busy_at_once_on_one_model_process_fail_no_request(tmp_path: Path) -> None:
    references = {
        name: write_slow_model(tmp_path / name / "1" / "model.onnx", seed=seed, layers=8)
        for seed, name in enumerate(["a", "b"])
    }
    images = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    service = InProcessService(tmp_path, max_queue_delay_ms=0).start()  # one model process
    try:

        def predict(name: str) -> tuple[str, int, np.ndarray | str]:
            answer = httpx.post(
                f"{service.url}/predict",
                json={"instances": images.tolist(), "model": name},
                timeout=60,
            )
            if answer.status_code != 200:
                return name, answer.status_code, answer.text
            return name, 200, np.array(answer.json()["logits"], np.float32)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(predict, ["a", "b"] * 24))
    finally:
        service.stop()
    failed = [(name, status, body) for name, status, body in answers if status != 200]
    assert failed == []
    for name, _status, logits in answers:
        np.testing.assert_allclose(logits, references[name].logits(images), rtol=1e-5, atol=1e-5)
