"""JSON bodies are measured before any parser reads them.

Python's json module parses nested arrays and objects by recursion, so a body of ~1,000 `[`
ended in a RecursionError (500) — on `/auth/login` too, before anyone signed in. And it turns
every integer literal into an int, which Python refuses beyond 4,300 digits (a ValueError
that webargs does not expect: 500 again). Two parsers read a body (webargs for the view's
arguments, Flask's `get_json` for the NUL check and the login rate limit), so the limits are
checked once, on the raw bytes, in a hook that runs before both:

- at most MAX_JSON_DEPTH levels of arrays and objects, however they are mixed;
- no number with more than MAX_NUMBER_DIGITS digits in a row (no field of devicelab needs
  more than a few dozen).

A body over either limit gets 400 in the usual error shape. The scan is linear: strings are
skipped with one regular expression (possessive, so it cannot backtrack), and only the
brackets outside them are counted."""

from __future__ import annotations

import re

from flask import Flask, jsonify, request

from adapters.http.errors import error_body

MAX_JSON_DEPTH = 64
MAX_NUMBER_DIGITS = 1000

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_LONG_NUMBER = re.compile(rb"\d{%d}" % (MAX_NUMBER_DIGITS + 1))


def refuse_unreadable_json(app: Flask) -> None:
    @app.before_request
    def _refuse_unreadable_json():
        if not request.is_json:
            return None
        problem = json_limit_exceeded(request.get_data(cache=True))
        if problem is None:
            return None
        return jsonify(error_body("bad_request", f"JSON body {problem}", {"_json": [problem]})), 400


def json_limit_exceeded(body: bytes) -> str | None:
    """What is wrong with `body` by the limits above, or None (it may still be malformed:
    the parser says so)."""
    # UTF-8 never puts a byte of a multi-byte character in the ASCII range, so `"`, `\`,
    # brackets and digits can be found in the bytes as they are
    outside_strings = _STRING.sub(b'""', body)
    if _LONG_NUMBER.search(outside_strings):
        return f"has a number of more than {MAX_NUMBER_DIGITS} digits"
    depth = 0
    for bracket in _BRACKET.finditer(outside_strings):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return f"is nested too deeply (more than {MAX_JSON_DEPTH} levels)"
        else:
            depth -= 1
    return None
