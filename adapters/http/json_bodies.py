"""Answers built as plain JSON, for the busiest views.

flask-smorest dumps a view's return value with the response schema, field by field; for a
page of 50 devices or runs that was a fifth of the request. Those views build their body
directly (`device_json`, `run_json`) and return a ready Response, which flask-smorest passes
through; the schema still documents the answer, and tests hold the hand-built body to what
the schema would dump (tests/unit/test_json_bodies.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, current_app


def json_response(body: Any, status: int = 200) -> Response:
    response = current_app.json.response(body)
    response.status_code = status
    return response


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
