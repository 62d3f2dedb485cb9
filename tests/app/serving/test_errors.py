"""Serving errors carry the contract's code and status (app.contracts.invocation.ERROR_STATUS)."""

from __future__ import annotations

import pytest

from app.contracts.invocation import ERROR_STATUS
from app.serving import errors
from app.serving.errors import ServingError


def test_every_serving_error_answers_with_its_contract_status() -> None:
    kinds = ServingError.__subclasses__()
    assert {kind.code for kind in kinds} == set(ERROR_STATUS) - {"internal_error"}
    for kind in kinds:
        assert kind("why").status == ERROR_STATUS[kind.code] and getattr(errors, kind.__name__) is kind


def test_an_error_with_a_code_the_contract_lacks_fails_where_it_is_declared() -> None:
    with pytest.raises(TypeError, match=r"Teapot: code 'teapot' is not in .*ERROR_STATUS"):

        class Teapot(ServingError, code="teapot"):
            """Not in the contract."""
