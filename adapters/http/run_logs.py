"""A run's log for readers: GET /api/test-runs/{id}/logs (a page of lines, oldest first, by
device, test case and lowest level) and /logs.txt (the whole log as plain text, streamed).
Runners append lines through adapters/http/runner_uploads.py; the live per-run stream is
adapters/http/run_log_stream.py."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from dependency_injector.wiring import Provide, inject
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from adapters.http.json_bodies import iso, json_response
from adapters.http.pagination import PageQuerySchema, page_schema
from adapters.http.security import requires
from application.run_log_ports import LogFilter
from application.use_cases.run_logs import ExportRunLog, ListRunLogs
from application.use_cases.test_runs import GetTestRun
from domain.run_logs import LogLevel, LogLine
from domain.users import Permission

blp = Blueprint("run_logs", __name__, url_prefix="/api/test-runs", description="Run logs")

LEVELS = [level.value for level in LogLevel]
TEXT_LINES_PER_CHUNK = 500


class LogLineSchema(Schema):
    seq = fields.Integer(metadata={"description": "the line's number in the run's log, from 1"})
    at = fields.DateTime(metadata={"description": "when the runner says the line was written"})
    level = fields.String(validate=validate.OneOf(LEVELS))
    message = fields.String()
    device_id = fields.String(allow_none=True)
    test_case_id = fields.String(allow_none=True)


LogPageSchema = page_schema(LogLineSchema, "LogPage")


class LogFilterSchema(Schema):
    device_id = fields.String(validate=validate.Length(max=100))
    test_case_id = fields.String(validate=validate.Length(max=100))
    level = fields.String(
        validate=validate.OneOf(LEVELS),
        metadata={"description": "this level and the more severe ones"},
    )


class LogQuerySchema(PageQuerySchema, LogFilterSchema):
    after = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=2**31 - 1),
        metadata={"description": "only lines after this number (`seq`); `cursor` wins"},
    )


def log_filter(args: dict) -> LogFilter:
    level = args.get("level")
    return LogFilter(
        device_id=args.get("device_id"),
        test_case_id=args.get("test_case_id"),
        min_level=LogLevel(level) if level else None,
    )


def line_json(line: LogLine) -> dict:
    return {
        "seq": line.seq,
        "at": iso(line.at),
        "level": line.level.value,
        "message": line.message,
        "device_id": line.device_id,
        "test_case_id": line.test_case_id,
    }


def text_chunks(lines: Iterable[LogLine], device_names: dict[str, str]) -> Iterator[str]:
    """`<time> <LEVEL> <device name or -> <message>`, one line each (a message's own line
    breaks are shown as `\\n`, so that each stored line stays one line of the file)."""
    chunk: list[str] = []
    for line in lines:
        device = device_names.get(line.device_id or "", line.device_id or "-")
        message = line.message.replace("\r", "\\r").replace("\n", "\\n")
        chunk.append(f"{iso(line.at)} {line.level.value.upper():<7} {device} {message}\n")
        if len(chunk) >= TEXT_LINES_PER_CHUNK:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk)


@blp.route("/<run_id>/logs")
class RunLogs(MethodView):
    @requires(Permission.READ)
    @blp.arguments(LogQuerySchema, location="query")
    @blp.response(200, LogPageSchema)
    @inject
    def get(self, args, run_id, list_logs: ListRunLogs = Provide["list_run_logs"]):
        """A page of the run's log, oldest line first"""
        page = list_logs(run_id, log_filter(args), args["limit"], args["cursor"], args["after"])
        return json_response(
            {"items": [line_json(line) for line in page.items], "next_cursor": page.next_cursor}
        )


@blp.route("/<run_id>/logs.txt")
class RunLogText(MethodView):
    @requires(Permission.READ)
    @blp.arguments(LogFilterSchema, location="query")
    @blp.response(200, content_type="text/plain", description="the log as text; streamed")
    @inject
    def get(
        self,
        args,
        run_id,
        export: ExportRunLog = Provide["export_run_log"],
        get_run: GetTestRun = Provide["get_test_run"],
    ):
        """The run's log (or its filtered part) as a plain-text download"""
        run = get_run(run_id)
        lines = export(run_id, log_filter(args))
        return Response(
            text_chunks(lines, {d.id: d.name for d in run.devices}),
            mimetype="text/plain",
            headers={"Content-Disposition": f'attachment; filename="run-{run.id}.log"'},
        )
