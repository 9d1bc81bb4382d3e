"""Schemathesis against the OpenAPI document the app serves (/api/openapi.json): every
operation, fed examples generated from its documented parameters and bodies — valid ones and
deliberately invalid ones — signed in as an admin, on a real database.

Every answer must be below 500, carry a documented status and content type, and match the
documented schema of that status. On PostgreSQL by default (DEVICELAB_FUZZ_BACKENDS=postgres,sqlite
for both). The number of examples per operation is bounded:
DEVICELAB_FUZZ_EXAMPLES (default 15 for `make test`; `make bench` runs many more).

Left out: POST /auth/logout (it would end the session every later example needs) and
GET /api/events (a stream that stays open; tests/e2e/test_live_and_stats.py covers it)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# per operation; the long fuzz run of `make bench` takes more (Makefile)
EXAMPLES = int(os.environ.get("DEVICELAB_FUZZ_EXAMPLES", "15"))
# PostgreSQL, as in production (it refuses some text SQLite takes); DEVICELAB_FUZZ_BACKENDS
# may name sqlite too
BACKENDS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgres" else name
    for name in os.environ.get("DEVICELAB_FUZZ_BACKENDS", "postgres").split(",")
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in ("/auth/logout", "/api/events"):
            yield operation


def _describe(error: BaseException) -> str:
    inner = getattr(error, "exceptions", None)
    if inner:  # Hypothesis found several distinct failures
        return "\n".join(_describe(e) for e in inner)
    return f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_every_operation_answers_as_documented(app, client, lab):
    headers = {"Authorization": f"Bearer {client.token}"}
    failures: dict[str, str] = {}
    operations = list(_operations(app))
    assert len(operations) >= 35  # the whole API, not an empty document
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def answers_as_documented(case):
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                answers_as_documented()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing there to get wrong
            except Exception as error:  # every operation is tried; all failures are shown
                failures[f"{operation.label} ({mode.value})"] = _describe(error)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
