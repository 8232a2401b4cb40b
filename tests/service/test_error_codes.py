"""An error met in another process (a worker applying a model order) is raised again here as
the same kind, so each transport answers it with the same status as where it was met."""

from __future__ import annotations

import pytest

from service.errors import ServiceError, error_from_code


def _kinds() -> list[type[ServiceError]]:
    found, todo = [], [ServiceError]
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return [k for k in found if k.__init__ is ServiceError.__init__]


@pytest.mark.parametrize("kind", _kinds(), ids=lambda k: k.__name__)
def test_every_kind_comes_back_as_itself(kind: type[ServiceError]) -> None:
    again = error_from_code(kind.code, "what went wrong", "model")
    assert type(again) is kind
    assert (again.message, again.field) == ("what went wrong", "model")


def test_the_kinds_cover_the_codes_a_worker_reports() -> None:
    codes = {k.code for k in _kinds()}
    assert {"not_found", "unavailable", "invalid_argument", "failed_precondition"} <= codes
    assert type(error_from_code("no such code", "m")) is ServiceError
    assert len(_kinds()) == len({k.code for k in _kinds()}), "one class per code"
