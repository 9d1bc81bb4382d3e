"""ETags on the main lists (devices, test runs, test cases, environments), so that a client
asking again for a list that has not changed gets 304 Not Modified without a body.

A list's answer depends on the lab's data, on the query and on who asks. Its tag is a digest of
the change log's position (`ReadLabVersion`, read before the list), the view, the query
arguments as parsed, the caller (user, role, token scope) and the shape of the answers (a
digest of the OpenAPI document: a new version of the API never answers 304 to a body of the
old one). A request whose `If-None-Match` names the tag costs the token check and one query
for the position instead of the list's query, its mapping and its JSON.

The token is checked before any view runs (security.py), so a logged-out session or a revoked
API token gets 401, never 304. `Cache-Control` stays `no-store` (response_headers.py): no
browser or proxy cache keeps lab data; a client that wants the 304s keeps its last answer and
its tag itself."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, request

from adapters.http.security import current_principal

ANSWER_SHAPE = "devicelab.answer_shape"

# what the OpenAPI document says about a list with an ETag (`@blp.doc(**LIST_ETAG_DOC)`)
LIST_ETAG_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "the `ETag` of an earlier answer to the same query: 304 without a "
            "body when the list has not changed since",
        }
    ],
    "responses": {
        304: {
            "description": "NOT_MODIFIED: the list is as it was when the tag in "
            "`If-None-Match` was given; no body",
            "headers": {"ETag": {"schema": {"type": "string"}}},
        },
        200: {
            "headers": {
                "ETag": {
                    "schema": {"type": "string"},
                    "description": "send it back in `If-None-Match` to ask whether the "
                    "list has changed",
                }
            }
        },
    },
}


def remember_answer_shape(app: Flask, spec: Mapping[str, Any]) -> None:
    """Keep a digest of the API's OpenAPI document `spec` for the tags (see the module)."""
    document = json.dumps(spec, sort_keys=True, default=str).encode()
    app.extensions[ANSWER_SHAPE] = hashlib.sha256(document).hexdigest()[:16]


def list_etag(lab_version: str, args: Mapping[str, Any]) -> str:
    """The tag of this request's list answer at `lab_version` (quoted, as in the header)."""
    principal = current_principal()
    key = json.dumps(
        [
            lab_version,
            current_app.extensions.get(ANSWER_SHAPE, ""),
            request.endpoint,
            sorted((name, str(value)) for name, value in args.items()),
            principal.user_id,
            principal.role.value,
            principal.scope.value if principal.scope is not None else None,
        ]
    )
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def not_modified(etag: str) -> Response | None:
    """A 304 answer when the request's `If-None-Match` names `etag` (or `*`), else None."""
    if not request.if_none_match.contains_weak(etag.strip('"')):  # weak comparison, and `*`
        return None
    response = Response(status=304)
    response.headers["ETag"] = etag
    return response


def with_etag(answer: Any, etag: str) -> Any:
    """`answer` (a ready Response, or what the view's response schema dumps) with its tag."""
    if isinstance(answer, Response):
        answer.headers["ETag"] = etag
        return answer
    return answer, {"ETag": etag}
