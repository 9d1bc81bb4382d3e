"""One JSON error shape for every 4xx and 5xx: {"code", "message", "errors"}."""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Flask, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from application.auth.errors import AuthServiceUnavailable, Forbidden, Unauthenticated
from application.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    InvalidRunCredential,
    NotFound,
    StoreUnavailable,
    TooLarge,
    TooManyStreams,
    WrongRunCredential,
)
from domain.errors import (
    ConflictingReport,
    DeviceUnavailable,
    DomainError,
    InvalidTransition,
    InvalidValue,
    RunAlreadyFinished,
)

log = logging.getLogger(__name__)

# what a 503 asks to wait: the database or the auth service back, or a pooled connection free
RETRY_AFTER_S = 5

_STATUS_OF: list[tuple[type[DomainError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (TooManyStreams, 429),
    (AuthServiceUnavailable, 503),
    (StoreUnavailable, 503),
    (NotFound, 404),
    (InvalidValue, 422),
    (AlreadyExists, 409),
    (DeviceUnavailable, 409),
    (InvalidTransition, 409),
    (RunAlreadyFinished, 409),
    (ConflictingReport, 409),
    (ConcurrentUpdate, 409),
    (InvalidRunCredential, 401),
    (WrongRunCredential, 403),
    (TooLarge, 413),
]

_CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    503: "service_unavailable",
}


class ErrorSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "machine-readable error code"})
    message = ma.fields.String(required=True, metadata={"description": "what went wrong"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Raw(),
        metadata={"description": "field name → list of problems with that field"},
    )
    unavailable = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "device id → status, for device_unavailable errors"},
    )
    unavailable_names = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "device id → name, for device_unavailable errors"},
    )
    retry_after = ma.fields.Integer(
        metadata={
            "description": "seconds to wait (as in Retry-After), for too_many_requests, store_unavailable "
            "and auth_unavailable errors"
        }
    )
    request_id = ma.fields.String(
        metadata={"description": "names the request in the server log, for internal errors"}
    )


def error_body(code: str, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "errors": errors or {}}


def _flatten_locations(messages: Any) -> dict[str, Any]:
    """webargs nests problems by location ({"json": {...}}); clients want field names."""
    if not isinstance(messages, dict):
        return {"_request": messages if isinstance(messages, list) else [str(messages)]}
    flat: dict[str, Any] = {}
    for location, problems in messages.items():
        if isinstance(problems, dict):
            flat.update(problems)
        else:
            flat[f"_{location}"] = problems if isinstance(problems, list) else [str(problems)]
    return flat


def _summary(errors: dict[str, Any]) -> str:
    parts = []
    for field, problems in errors.items():
        first = problems[0] if isinstance(problems, list) and problems else problems
        if isinstance(first, dict | list):
            first = "invalid"
        parts.append(f"{field.lstrip('_')}: {first}")
    return "; ".join(parts)


class DevicelabApi(Api):
    """flask-smorest's Api with devicelab's error shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):  # type: ignore[override]
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        errors = {}
        if "errors" in data:
            errors = data["errors"]
        elif "messages" in data:
            errors = _flatten_locations(data["messages"])
        request_id = None
        if status >= 500:
            request_id = uuid.uuid4().hex[:16]
            log.error(
                "server error answering %s %s (request_id=%s)",
                request.method,
                request.path,
                request_id,
                exc_info=getattr(error, "original_exception", None),
            )
            message = (
                "the server failed to handle the request; it has been logged "
                f"as request {request_id}"
            )
        elif "message" in data:
            message = str(data["message"])
        elif errors:
            message = _summary(errors)
        else:
            message = error.description or HTTPStatus(status).phrase
        body = error_body(
            _CODE_OF_STATUS.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_")),
            message,
            errors,
        )
        if request_id:
            body["request_id"] = request_id
        headers = dict(data.get("headers") or {})
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)  # RFC 9110: a 405 must say
        return body, status, headers


def register_domain_error_handler(app: Flask) -> None:
    def handle(error: DomainError):
        status = next((s for kind, s in _STATUS_OF if isinstance(error, kind)), 400)
        body = error_body(error.code, error.message, getattr(error, "errors", None))
        if isinstance(error, DeviceUnavailable):
            body["unavailable"] = error.unavailable
            body["unavailable_names"] = error.names
            body["errors"] = {"device_ids": [f"{d} is {s}" for d, s in error.unavailable.items()]}
        headers = {}
        if isinstance(error, Unauthenticated):
            headers["WWW-Authenticate"] = 'Bearer realm="devicelab"'  # RFC 6750
        if isinstance(error, TooManyStreams):
            body["retry_after"] = error.retry_after
            headers["Retry-After"] = str(error.retry_after)
        if isinstance(error, StoreUnavailable | AuthServiceUnavailable):
            log.warning(
                "%s answering %s %s: %s",
                error.code,
                request.method,
                request.path,
                error.__cause__ or error.message,
            )
            body["retry_after"] = RETRY_AFTER_S
            headers["Retry-After"] = str(RETRY_AFTER_S)
        return jsonify(body), status, headers

    app.register_error_handler(DomainError, handle)
