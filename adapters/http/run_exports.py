"""Results out for CI servers and spreadsheets: a run as JUnit XML, the run history as CSV.

The CSV answer is streamed: rows are written as the pages of runs are read (see
application/use_cases/run_exports.py), so the history of a busy lab is exported with the
memory of one page. A text cell that a spreadsheet would take for a formula (=, +, -, @, tab,
carriage return first) is written with a leading apostrophe."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from adapters.http.json_bodies import iso
from adapters.http.junit_report import junit_xml
from adapters.http.security import requires
from adapters.http.test_runs import RunFilterSchema, run_filter
from application.use_cases.run_exports import ExportTestRuns, ResultRow
from application.use_cases.test_runs import GetTestRun
from domain.users import Permission

blp = Blueprint("run_exports", __name__, url_prefix="/api", description="Test run exports")

CSV_COLUMNS = (
    "run_id",
    "run_status",
    "run_verdict",
    "created_at",
    "started_at",
    "finished_at",
    "started_by",
    "priority",
    "environment",
    "device_id",
    "device",
    "model",
    "serial",
    "firmware",
    "role",
    "test_case_id",
    "test_case",
    "test_case_version",
    "case_verdict",
    "metric",
    "condition",
    "threshold",
    "unit",
    "value",
    "passed",
    "message",
    "failure_reason",
    # added with the range criteria, at the end so that columns read by position stay put
    "expected",
    "outcome",
    "reason",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 200


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_cells(row: ResultRow) -> list[Any]:
    run, device, case, criterion = row.run, row.device, row.case, row.criterion
    result, measurement = row.result, row.measurement
    values = [
        run.id,
        run.status.value,
        run.verdict.value if run.verdict else None,
        iso(run.created_at),
        iso(run.started_at),
        iso(run.finished_at),
        run.started_by,
        run.priority.value,
        run.environment.name,
        device and device.id,
        device and device.name,
        device and device.model,
        device and device.serial,
        device and device.firmware_version,
        device and device.role,
        case and case.id,
        case and case.name,
        case and case.version,
        result and result.verdict.value,
        criterion and criterion.metric,
        criterion and criterion.condition.value,
        criterion and criterion.threshold,
        criterion and criterion.unit,
        measurement and measurement.value,
        measurement and measurement.passed,
        result and result.message,
        run.failure_reason,
        criterion and criterion.expectation(),
        measurement and measurement.outcome.value,
        measurement and measurement.reason,
    ]
    return [_cell(v) for v in values]


def csv_chunks(rows: Iterable[ResultRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for written, row in enumerate(rows, start=1):
        writer.writerow(csv_cells(row))
        if written % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@blp.route("/test-runs.csv")
class TestRunsCsv(MethodView):
    @requires(Permission.READ)
    @blp.arguments(RunFilterSchema, location="query")
    @blp.response(
        200,
        content_type="text/csv",
        description="one row per run by device by criterion, newest run first (a run without "
        "devices or criteria has one row with those columns empty); streamed",
    )
    @inject
    def get(self, args, export: ExportTestRuns = Provide["export_test_runs"]):
        """The run history as CSV, with the filters of the run list"""
        rows = export(run_filter(args))  # a bad filter is refused here, before streaming
        return Response(
            csv_chunks(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="test-runs.csv"'},
        )


@blp.route("/test-runs/<run_id>/junit.xml")
class TestRunJunit(MethodView):
    @requires(Permission.READ)
    @blp.response(
        200,
        content_type="application/xml",
        description="JUnit XML: one testsuite per device, one testcase per test case",
    )
    @inject
    def get(self, run_id, get_run: GetTestRun = Provide["get_test_run"]):
        """One run as a JUnit XML report, for CI servers"""
        run = get_run(run_id)
        return Response(
            junit_xml(run),
            mimetype="application/xml",
            headers={"Content-Disposition": f'attachment; filename="run-{run.id}.junit.xml"'},
        )
