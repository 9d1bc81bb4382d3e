"""Requests carrying the NUL character or a lone surrogate are refused at the door.

PostgreSQL's text and jsonb cannot hold U+0000 (SQLite can), and its driver refuses such a
string with a ValueError deep inside a use case, which would answer 500. Found by fuzzing the
API (tests/e2e/test_openapi_fuzz.py). A lone surrogate (U+D800-U+DFFF, e.g. the JSON escape
`"\\udfff"` with no partner) is no character at all: it cannot be encoded as UTF-8, so
PostgreSQL refuses the JSON it is in and no client could read it back. No name, id, metric,
message or parameter of devicelab needs either, so a request with one anywhere — path, query
string or JSON body, keys included — gets 422 in the usual error shape, on every backend
alike, before any use case runs."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, jsonify, request

from adapters.http.errors import error_body

PROBLEM = "must not contain the NUL character (U+0000)"
SURROGATE_PROBLEM = "must not contain a lone surrogate (U+D800-U+DFFF)"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def refuse_nul_characters(app: Flask) -> None:
    @app.before_request
    def _refuse_nul_characters():
        found = _unstorable_in_request()
        if found is None:
            return None
        where, problem = found
        body = error_body("validation_error", f"{where}: {problem}", {where: [problem]})
        return jsonify(body), 422


def _problem(text: str) -> str | None:
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    return PROBLEM if match.group() == "\x00" else SURROGATE_PROBLEM


def _printable(path: str) -> str:
    """`path` fit to be sent back in the error (as a key of a JSON object): NULs dropped,
    lone surrogates shown as U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", path.replace("\x00", "")) or "_body"


def _unstorable_in_request() -> tuple[str, str] | None:
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and (problem := _problem(value)):
            return name, problem
    for name, value in request.args.items(multi=True):
        if problem := _problem(name) or _problem(value):
            return _printable(name), problem
    if request.is_json:
        return _unstorable_in(request.get_json(silent=True), "")
    return None


def _unstorable_in(value: Any, path: str) -> tuple[str, str] | None:
    """The path of the first string holding a NUL or a lone surrogate (a key or a value),
    and what is wrong with it; or None."""
    if isinstance(value, str):
        problem = _problem(value)
        return (path or "_body", problem) if problem else None
    if isinstance(value, dict):
        for key, inner in value.items():
            inner_path = f"{path}.{key}" if path else str(key)
            if problem := _problem(key):
                return _printable(inner_path), problem
            found = _unstorable_in(inner, inner_path)
            if found:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found = _unstorable_in(inner, f"{path}[{index}]")
            if found:
                return found
    return None
