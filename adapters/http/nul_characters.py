"""Requests carrying the NUL character are refused at the door.

PostgreSQL's text and jsonb cannot hold U+0000 (SQLite can), and its driver refuses such a
string with a ValueError deep inside a use case, which would answer 500. Found by fuzzing the
API (tests/e2e/test_openapi_fuzz.py). No name, id, metric, message or parameter of devicelab
needs a NUL, so a request with one anywhere — path, query string or JSON body, keys included —
gets 422 in the usual error shape, on every backend alike, before any use case runs."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from adapters.http.errors import error_body

PROBLEM = "must not contain the NUL character (U+0000)"


def refuse_nul_characters(app: Flask) -> None:
    @app.before_request
    def _refuse_nul_characters():
        where = _nul_in_request()
        if where is None:
            return None
        body = error_body("validation_error", f"{where}: {PROBLEM}", {where: [PROBLEM]})
        return jsonify(body), 422


def _nul_in_request() -> str | None:
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and "\x00" in value:
            return name
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "")
    if request.is_json:
        return _nul_in(request.get_json(silent=True), "")
    return None


def _nul_in(value: Any, path: str) -> str | None:
    """The path of the first string holding a NUL (a key or a value), or None."""
    if isinstance(value, str):
        return (path or "_body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, inner in value.items():
            inner_path = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return inner_path.replace("\x00", "")
            found = _nul_in(inner, inner_path)
            if found:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found = _nul_in(inner, f"{path}[{index}]")
            if found:
                return found
    return None
