"""Property-based fuzzing of every route in the service's own ``/openapi.json`` (schemathesis),
against the live server: no 5xx, and every answer matches the documented status codes, content
types and response schemas. Bounded: a few examples per operation and a time budget.

schemathesis' pytest plugin (``from_fixture``/``parametrize``) does not run under pytest 9
(``Function._nodeid``), so this drives its Python API directly: one hypothesis run per operation.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.live import LiveServer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 15
BUDGET_SECONDS = 60.0


def _fuzz(operation: schemathesis.APIOperation, deadline: float) -> list[str]:
    failures: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,  # the same examples every run: a failure here is reproducible
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        if time.monotonic() > deadline:
            return
        try:
            case.call_and_validate(checks=CHECKS, timeout=10)
        except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - reported for every operation at the end
            failures.append(f"{operation.label}: {type(e).__name__}: {str(e)[:2500]}")
            raise

    try:
        run()
    except (Exception, BaseExceptionGroup):  # noqa: BLE001 - hypothesis re-raises the failure, already recorded
        pass
    return failures[-1:]


@pytest.mark.timeout(180)
def test_every_operation_conforms_to_its_schema(server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json", timeout=10)
    deadline = time.monotonic() + BUDGET_SECONDS
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    failures = [f for op in operations for f in _fuzz(op, deadline)]
    assert "POST /v2/models/{name}/infer" in [op.label for op in operations]
    assert not failures, "\n\n".join(failures)
