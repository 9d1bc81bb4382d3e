"""What a Test Runner sends besides its reports: log lines and artifacts (contract section
"Logs and artifacts" in docs/runner-contract.md). Same per-run credential as the report
callbacks (adapters/http/runner_callbacks.py), checked before the body is read.

- POST /api/runner/test-runs/{id}/logs: a batch of lines, `{"lines": [{device_id?,
  test_case_id?, at, level, message}]}`; devicelab numbers them. The answer says how many
  were stored and dropped and whether the run's log has been cut at its limits.
- POST /api/runner/test-runs/{id}/artifacts?name=…&content_type=…[&device_id=…]
  [&test_case_id=…]: the file as the raw body (`Content-Type: application/octet-stream`),
  read and stored chunk by chunk; at most DEVICELAB_MAX_ARTIFACT_BYTES per file (413
  beyond, whatever DEVICELAB_MAX_BODY_BYTES says) and DEVICELAB_MAX_ARTIFACT_BYTES_PER_RUN
  per run."""

from __future__ import annotations

from collections.abc import Iterator

from dependency_injector.wiring import Provide, inject
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields, validate

from adapters.http.artifacts import ArtifactSchema, artifact_json
from adapters.http.errors import error_body
from adapters.http.json_bodies import json_response
from adapters.http.run_logs import LEVELS
from adapters.http.runner_callbacks import RUN_CREDENTIAL, run_credential_required
from adapters.http.security import public
from application.use_cases.artifacts import ArtifactUpload, StoreArtifact
from application.use_cases.run_logs import AppendRunLogs
from domain.artifacts import MAX_NAME_CHARS
from domain.run_logs import MAX_BATCH_LINES, MAX_MESSAGE_CHARS, LogLevel, LogLine

blp = Blueprint(
    "runner_uploads",
    __name__,
    url_prefix="/api/runner/test-runs",
    description="Log lines and artifacts from Test Runners (see docs/runner-contract.md); "
    "each call carries the per-run credential as `Authorization: Bearer <token>`.",
)
blp.before_request(run_credential_required)

UPLOAD_CHUNK_BYTES = 64 * 1024
# bodies a form or JSON parser would read whole before the view: refused, send raw bytes
_PARSED_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class _Upload(Schema):
    class Meta:
        unknown = EXCLUDE  # fields of a later contract version are ignored


class LogLineInSchema(_Upload):
    device_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=100)
    )
    test_case_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=100)
    )
    at = fields.AwareDateTime(required=True)
    level = fields.String(load_default="info", validate=validate.OneOf(LEVELS))
    message = fields.String(required=True, validate=validate.Length(max=MAX_MESSAGE_CHARS))


class LogBatchSchema(_Upload):
    lines = fields.List(
        fields.Nested(LogLineInSchema),
        required=True,
        validate=validate.Length(max=MAX_BATCH_LINES),
    )


class LogBatchOutcomeSchema(Schema):
    accepted = fields.Integer(metadata={"description": "lines of the batch stored"})
    dropped = fields.Integer(metadata={"description": "lines dropped: the log is full"})
    truncated = fields.Boolean(
        metadata={"description": "the run's log has reached its limits; send no more lines"}
    )
    last_seq = fields.Integer(metadata={"description": "the number of the run's last line"})


class ArtifactQuerySchema(_Upload):
    name = fields.String(required=True, validate=validate.Length(min=1, max=MAX_NAME_CHARS))
    content_type = fields.String(load_default=None, validate=validate.Length(max=300))
    device_id = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    test_case_id = fields.String(load_default=None, validate=validate.Length(min=1, max=100))


class StoredArtifactSchema(Schema):
    created = fields.Boolean(
        metadata={"description": "false: the same file under this name was stored already"}
    )
    artifact = fields.Nested(ArtifactSchema)


@blp.route("/<run_id>/logs")
@public
class RunnerLogs(MethodView):
    @blp.arguments(LogBatchSchema)
    @blp.response(200, LogBatchOutcomeSchema)
    @blp.alt_response(409, description="the run has finished (`run_finished`): stop sending")
    @blp.doc(security=RUN_CREDENTIAL)
    @inject
    def post(self, data, run_id, append: AppendRunLogs = Provide["append_run_logs"]):
        """A batch of log lines, in the order they were written"""
        lines = [
            LogLine(
                at=line["at"],
                level=LogLevel(line["level"]),
                message=line["message"],
                device_id=line["device_id"],
                test_case_id=line["test_case_id"],
            )
            for line in data["lines"]
        ]
        outcome = append(run_id, lines)
        return json_response(
            {
                "accepted": outcome.accepted,
                "dropped": outcome.dropped,
                "truncated": outcome.truncated,
                "last_seq": outcome.last_seq,
            }
        )


def _body_chunks() -> Iterator[bytes]:
    stream = request.stream
    while chunk := stream.read(UPLOAD_CHUNK_BYTES):
        yield chunk


@blp.route("/<run_id>/artifacts")
@public
class RunnerArtifacts(MethodView):
    @blp.arguments(ArtifactQuerySchema, location="query")
    @blp.response(201, StoredArtifactSchema)
    @blp.alt_response(200, description="the same file was stored under this name already")
    @blp.alt_response(409, description="another file has this name, or the run has finished")
    @blp.alt_response(413, description="over the per-file or the per-run limit")
    @blp.alt_response(415, description="send the file as application/octet-stream")
    @blp.doc(
        security=RUN_CREDENTIAL,
        requestBody={
            "required": True,
            "description": "the file's bytes",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    )
    @inject
    def post(
        self,
        args,
        run_id,
        store: StoreArtifact = Provide["store_artifact"],
        max_bytes: int = Provide["config.max_artifact_bytes"],
    ):
        """Upload one file of the run (raw body)"""
        if request.is_json or request.mimetype in _PARSED_TYPES:
            message = "send the file as the raw body with Content-Type: application/octet-stream"
            return json_response(error_body("unsupported_media_type", message), 415)
        # the per-file limit replaces the body limit of JSON requests for this one view; the
        # stream refuses (413) a longer body, announced or not
        request.max_content_length = max_bytes
        upload = ArtifactUpload(
            name=args["name"],
            content_type=args["content_type"],
            device_id=args["device_id"],
            test_case_id=args["test_case_id"],
        )
        stored = store(run_id, upload, _body_chunks())
        body = {"created": stored.created, "artifact": artifact_json(stored.artifact)}
        return json_response(body, 201 if stored.created else 200)
