"""A run's artifacts for readers: GET /api/test-runs/{id}/artifacts (the list) and
/artifacts/{artifact_id} (the file). Runners upload through adapters/http/runner_uploads.py.

A file is always a download, never a page of our origin: `Content-Disposition: attachment`,
`X-Content-Type-Options: nosniff` (the browser keeps to the stored content type) and a CSP
`sandbox` (were it opened anyway, an HTML artifact would run in an opaque origin, without
scripts, forms or our cookies and storage). It is sent chunk by chunk as the storage reads
it."""

from __future__ import annotations

import re
from urllib.parse import quote

from dependency_injector.wiring import Provide, inject
from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from adapters.http.json_bodies import iso, json_response
from adapters.http.security import requires
from application.use_cases.artifacts import ListArtifacts, OpenArtifact
from domain.artifacts import Artifact
from domain.users import Permission

blp = Blueprint(
    "artifacts", __name__, url_prefix="/api/test-runs", description="Run artifacts (files)"
)

DOWNLOAD_CSP = "sandbox; default-src 'none'"


class ArtifactSchema(Schema):
    id = fields.String()
    run_id = fields.String()
    name = fields.String()
    content_type = fields.String()
    size = fields.Integer(metadata={"description": "bytes"})
    sha256 = fields.String(metadata={"description": "hex digest of the bytes"})
    device_id = fields.String(allow_none=True)
    test_case_id = fields.String(allow_none=True)
    created_at = fields.DateTime()
    download_url = fields.String(metadata={"description": "where to download the file"})


class ArtifactListSchema(Schema):
    items = fields.List(fields.Nested(ArtifactSchema))


def artifact_json(artifact: Artifact) -> dict:
    return {
        "id": artifact.id,
        "run_id": artifact.run_id,
        "name": artifact.name,
        "content_type": artifact.content_type,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "device_id": artifact.device_id,
        "test_case_id": artifact.test_case_id,
        "created_at": iso(artifact.created_at),
        "download_url": f"/api/test-runs/{artifact.run_id}/artifacts/{artifact.id}",
    }


def attachment(name: str) -> str:
    """A Content-Disposition for `name`: an ASCII fallback and the exact name (RFC 6266)."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "artifact"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@blp.route("/<run_id>/artifacts")
class RunArtifacts(MethodView):
    @requires(Permission.READ)
    @blp.response(200, ArtifactListSchema)
    @inject
    def get(self, run_id, list_artifacts: ListArtifacts = Provide["list_artifacts"]):
        """The files the run's runner uploaded, oldest first"""
        return json_response({"items": [artifact_json(a) for a in list_artifacts(run_id)]})


@blp.route("/<run_id>/artifacts/<artifact_id>")
class RunArtifactDownload(MethodView):
    @requires(Permission.READ)
    @blp.response(
        200,
        content_type="application/octet-stream",
        description="the file, with its stored content type, as an attachment; streamed",
    )
    @inject
    def get(self, run_id, artifact_id, open_artifact: OpenArtifact = Provide["open_artifact"]):
        """Download one artifact"""
        artifact, chunks = open_artifact(run_id, artifact_id)
        return Response(
            stream_with_context(chunks),
            content_type=artifact.content_type,
            headers={
                "Content-Length": str(artifact.size),
                "Content-Disposition": attachment(artifact.name),
                "Content-Security-Policy": DOWNLOAD_CSP,
                "X-Content-Type-Options": "nosniff",
            },
        )
