"""`devicelab run ...` and `devicelab devices ...`: the lab from a shell or a CI job, as an
ordinary client of the public API (DEVICELAB_URL and DEVICELAB_TOKEN, or --url / --token).

Names of test cases, environments and devices resolve to ids (an id works too); an unknown or
ambiguous name is an error naming what was meant. `run start --wait` follows the run (live
events, else polling) with progress on stderr and ends with an exit code CI can branch on:
0 pass (also marginal: a pass with a warning, printed), 1 fail, 2 inconclusive, 3 failed or aborted (also a run cancelled by --timeout),
4 a usage or server error. Results go to stdout only when asked (--json, the run id)."""

from __future__ import annotations

import functools
import json
import sys
import unicodedata
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from adapters.api_client.follow import RunFollower, WaitTimedOut, finished
from adapters.api_client.http import ApiClientError, DevicelabClient, quote

EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_NOT_COMPLETED, EXIT_ERROR = 0, 1, 2, 3, 4
PRIORITIES = ("low", "normal", "high")
RUN_STATUSES = ("waiting", "queued", "running", "completed", "failed", "aborted")
VERDICTS = ("pass", "marginal", "fail", "inconclusive")
REQUEST_KEYS = ("model", "count", "role")


class ClientError(click.ClickException):
    exit_code = EXIT_ERROR

    def show(self, file=None) -> None:
        click.echo(f"devicelab: error: {self.format_message()}", err=True)


class _UsageExits4:
    """Click's own usage errors (a missing option, a bad choice) exit 4 here, not 2: exit 2
    means an inconclusive verdict for these commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except click.UsageError as error:
            error.exit_code = EXIT_ERROR
            raise


class ClientCommand(_UsageExits4, click.Command):
    pass


class ClientGroup(_UsageExits4, click.Group):
    command_class = ClientCommand

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            error.exit_code = EXIT_ERROR
            raise


def exit_code_of(run: dict) -> int:
    if run["status"] != "completed":
        return EXIT_NOT_COMPLETED
    verdicts = {"pass": EXIT_PASS, "marginal": EXIT_PASS, "fail": EXIT_FAIL}
    return verdicts.get(run.get("verdict"), EXIT_INCONCLUSIVE)


def _connection(function: Callable) -> Callable:
    function = click.option(
        "--token",
        envvar="DEVICELAB_TOKEN",
        default="",
        show_envvar=True,
        help="An API token (dlp_...) or session token.",
    )(function)
    return click.option(
        "--url",
        envvar="DEVICELAB_URL",
        default="",
        show_envvar=True,
        help="The devicelab server, e.g. https://lab.example.",
    )(function)


def _client(url: str, token: str) -> DevicelabClient:
    if not url:
        raise ClientError("no server: set DEVICELAB_URL or pass --url")
    if not token:
        raise ClientError("no token: set DEVICELAB_TOKEN or pass --token (an API token, dlp_...)")
    try:
        client = DevicelabClient(url, token)
    except ApiClientError as error:
        raise ClientError(str(error)) from None
    host = urllib.parse.urlsplit(url).hostname or ""
    if url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
        click.echo(f"devicelab: warning: the token goes to {host} unencrypted (http)", err=True)
    return client


def _calling(function: Callable) -> Callable:
    """Server and network failures become exit 4 with the server's message."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ApiClientError as error:
            where = f" (HTTP {error.status})" if error.status else ""
            raise ClientError(f"{error}{where}") from None
        except click.UsageError as error:
            error.exit_code = EXIT_ERROR
            raise

    return wrapper


# -- names to ids ------------------------------------------------------------------------


def _same_name(a: str, b: str) -> bool:
    def key(text: str) -> str:
        return unicodedata.normalize("NFKC", text).casefold().strip()

    return key(a) == key(b)


def resolve(client: DevicelabClient, collection: str, what: str, value: str) -> dict:
    """The one item of /api/<collection> whose id or name is `value`."""
    by_id = None
    try:
        by_id = client.get(f"/api/{collection}/{quote(value)}")
    except ApiClientError as error:
        if error.status != 404:
            raise
    query: dict[str, Any] = {"q": value[:200]}
    if collection == "devices":
        query["include_retired"] = True
    found = client.get_all(f"/api/{collection}", limit=1000, **query)
    named = [item for item in found if _same_name(item["name"], value)]
    matches = {item["id"]: item for item in ([by_id] if by_id else []) + named}
    if len(matches) == 1:
        return next(iter(matches.values()))
    if len(matches) > 1:
        listed = ", ".join(f"{m['name']} (id {m['id']})" for m in matches.values())
        raise ClientError(f"{what} {value!r} is ambiguous: {listed}; give the id")
    hint = ""
    if found:
        hint = "; did you mean " + ", ".join(repr(item["name"]) for item in found[:5]) + "?"
    raise ClientError(f"unknown {what} {value!r}{hint}")


def parse_request(text: str) -> dict[str, Any]:
    """model=EM-340,count=2,role=meter,label.type=dongle -> a device request."""
    request: dict[str, Any] = {"labels": {}}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{part!r} is not key=value", param_hint="--request")
        if key.startswith("label."):
            request["labels"][key.removeprefix("label.")] = value
        elif key == "count":
            if not value.isdigit() or int(value) < 1:
                raise click.BadParameter("count must be a whole number ≥ 1", param_hint="--request")
            request["count"] = int(value)
        elif key in REQUEST_KEYS:
            request[key] = value
        else:
            raise click.BadParameter(
                f"unknown key {key!r} (model, count, role, label.NAME)", param_hint="--request"
            )
    return request


def parse_param(text: str) -> tuple[str, Any]:
    """key=value; the value is JSON when it reads as JSON (3, true, [1,2]), else text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not key=value", param_hint="--param")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


# -- progress on stderr --------------------------------------------------------------------


def _say(text: str) -> None:
    click.echo(text, err=True)


def describe_measurement(m: dict) -> str:
    unit = f" {m['unit']}" if m.get("unit") else ""
    expected = m.get("expected") or f"{m['condition']} {m['threshold']:g}{unit}"
    if m.get("value") is None:
        return f"{m['metric']} not measured (expected {expected})"
    text = f"{m['metric']} = {m['value']:g}{unit} (expected {expected})"
    return text + (f": {m['reason']}" if m.get("reason") else "")


class Progress:
    """Prints what changed in a run since it was last shown: status, queue place, progress,
    and a line per device and test case as its result comes in."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.status = ""
        self.results: set[tuple[str, str]] = set()
        self.progress: tuple[int, str] | None = None
        self.position: int | None = None

    def run(self, run: dict) -> None:
        if run["status"] != self.status:
            self.status = run["status"]
            _say(f"run {run['id']}: {self._status_line(run)}")
        if run["status"] == "waiting" and run.get("position") is not None:
            self.queue(run["position"], None, run.get("estimated_start_at"))
        progress = (int(float(run.get("progress") or 0) * 100), run.get("progress_message", ""))
        if run["status"] == "running" and progress != self.progress and progress != (0, ""):
            self.progress = progress
            _say(f"  {progress[0]}% {progress[1]}".rstrip())
        devices = {d["id"]: d["name"] for d in run.get("devices", [])}
        cases = {c["id"]: c["name"] for c in run.get("test_cases", [])}
        for result in run.get("results", []):
            key = (result["test_case_id"], result["device_id"])
            if key in self.results:
                continue
            self.results.add(key)
            line = f"  {devices.get(key[1], key[1])} · {cases.get(key[0], key[0])}: {result['verdict']}"
            failed = [
                describe_measurement(m) for m in result["measurements"] if m["passed"] is False
            ]
            marginal = [
                "marginal: " + describe_measurement(m)
                for m in result["measurements"]
                if m.get("outcome") == "marginal"
            ]
            if failed or marginal:
                line += " — " + "; ".join(failed or marginal)
            elif result["verdict"] != "pass" and result.get("message"):
                line += f" — {result['message']}"
            _say(line)

    def _status_line(self, run: dict) -> str:
        status = run["status"]
        devices = ", ".join(d["name"] for d in run.get("devices", []))
        if status == "waiting":
            waits = run.get("waiting_for") or {}
            parts = [f"{k} {v}" for k, v in (waits.get("devices") or {}).items()]
            parts += [p["description"] for p in waits.get("requests") or []]
            return "waiting for devices" + (f" ({'; '.join(parts)})" if parts else "")
        if status == "queued":
            return f"queued on {devices}"
        if status == "running":
            return f"running on {devices}" + (
                f" (runner {run['runner']})" if run.get("runner") else ""
            )
        if status == "completed":
            warning = (
                " (warning: passed only marginally)" if run.get("verdict") == "marginal" else ""
            )
            return f"completed, verdict {run.get('verdict')}{warning}"
        reason = f": {run['failure_reason']}" if run.get("failure_reason") else ""
        return f"{status}{reason}"

    def queue(self, position: int | None, length: int | None, estimated: str | None) -> None:
        if position is None or position == self.position:
            return
        self.position = position
        of = f" of {length}" if length else ""
        eta = f", estimated start {estimated}" if estimated else ""
        _say(f"  waiting in the queue: position {position}{of}{eta}")

    def summary(self, run: dict) -> None:
        counts: dict[str, int] = {}
        for result in run.get("results", []):
            counts[result["verdict"]] = counts.get(result["verdict"], 0) + 1
        tally = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
        _say(f"run {run['id']} {self._status_line(run)}" + (f" ({tally})" if tally else ""))
        _say(f"  {self.base_url}/runs/{run['id']}")


# -- output ----------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _write_junit(client: DevicelabClient, run_id: str, path: str) -> None:
    report = client.download(f"/api/test-runs/{quote(run_id)}/junit.xml", "application/xml")
    try:
        Path(path).write_bytes(report)
    except OSError as error:
        raise ClientError(f"cannot write the JUnit report to {path}: {error}") from None
    _say(f"  JUnit report: {path}")


def _wait(client: DevicelabClient, run: dict, timeout_s: float | None, poll_s: float) -> dict:
    progress = Progress(client.base_url)
    follower = RunFollower(
        client,
        on_run=progress.run,
        on_queue=progress.queue,
        on_fallback=lambda why: _say(f"  live events unavailable ({why}); polling"),
        poll_s=poll_s,
    )
    progress.run(run)
    try:
        done = run if finished(run) else follower(run["id"], timeout_s)
    except WaitTimedOut:
        _say(f"run {run['id']}: not finished after {timeout_s:g} s: cancelling it")
        try:
            done = client.post(
                f"/api/test-runs/{quote(run['id'])}/cancel",
                {"reason": f"devicelab run --timeout {timeout_s:g} s reached"},
            )
        except ApiClientError as error:
            if error.status != 409:  # 409: it ended meanwhile
                raise
            done = client.get(f"/api/test-runs/{quote(run['id'])}")
    except KeyboardInterrupt:
        _say(f"interrupted; the run goes on: devicelab run cancel {run['id']}")
        raise click.exceptions.Exit(EXIT_ERROR) from None
    progress.run(done)
    progress.summary(done)
    return done


def _finish(client, run: dict, wait: bool, timeout_s, junit: str | None, as_json: bool, poll_s):
    if wait:
        run = _wait(client, run, timeout_s, poll_s)
    if junit:
        _write_junit(client, run["id"], junit)
    if as_json:
        _print_json(run)
    elif not wait:
        click.echo(run["id"])
    sys.exit(exit_code_of(run) if wait else EXIT_PASS)


_wait_options = [
    click.option("--wait", is_flag=True, help="Follow the run until it ends; exit by verdict."),
    click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        help="With --wait: cancel the run if it has not ended after this many seconds (exit 3).",
    ),
    click.option(
        "--junit", type=click.Path(dir_okay=False), help="Write the JUnit XML report here."
    ),
    click.option(
        "--json", "as_json", is_flag=True, help="Print the (final) run as JSON on stdout."
    ),
    click.option(
        "--poll-interval",
        "poll_s",
        type=click.FloatRange(min=0.1),
        default=2.0,
        show_default=True,
        help="Seconds between polls when live events are unavailable.",
    ),
]


def _with(options: list[Callable]) -> Callable:
    def apply(function: Callable) -> Callable:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


# -- the commands ----------------------------------------------------------------------------


@click.group("run", cls=ClientGroup)
def run_group() -> None:
    """Start, follow, list and cancel test runs on a devicelab server."""


@run_group.command("start")
@click.option(
    "--case", "cases", multiple=True, required=True, help="Test case name or id (repeat)."
)
@click.option("--env", "environment", required=True, help="Environment name or id.")
@click.option("--device", "devices", multiple=True, help="Device name or id (repeat).")
@click.option(
    "--request",
    "requests",
    multiple=True,
    help="Devices by kind (repeat): model=EM-340,count=2[,role=meter][,label.KEY=VALUE].",
)
@click.option("--param", "params", multiple=True, help="key=value run parameter (repeat).")
@click.option("--priority", type=click.Choice(PRIORITIES), default="normal", show_default=True)
@_with(_wait_options)
@_connection
@_calling
def run_start(
    url,
    token,
    cases,
    environment,
    devices,
    requests,
    params,
    priority,
    wait,
    timeout,
    junit,
    as_json,
    poll_s,
) -> None:
    """Start a run of test cases in an environment, on named devices or devices by kind."""
    if not devices and not requests:
        raise click.UsageError("name at least one --device or --request")
    if timeout is not None and not wait:
        raise click.UsageError("--timeout needs --wait")
    if junit and not wait:
        raise click.UsageError("--junit needs --wait (or use `devicelab run show ID --junit`)")
    device_requests = [parse_request(r) for r in requests]
    parameters = dict(parse_param(p) for p in params)
    client = _client(url, token)
    body = {
        "test_case_ids": [resolve(client, "test-cases", "test case", c)["id"] for c in cases],
        "environment_id": resolve(client, "environments", "environment", environment)["id"],
        "device_ids": [resolve(client, "devices", "device", d)["id"] for d in devices],
        "device_requests": device_requests,
        "parameters": parameters,
        "priority": priority,
    }
    run = client.post("/api/test-runs", body)
    _say(f"started run {run['id']} ({run['status']})")
    _finish(client, run, wait, timeout, junit, as_json, poll_s)


@run_group.command("wait")
@click.argument("run_id")
@_with([o for o in _wait_options if o is not _wait_options[0]])
@_connection
@_calling
def run_wait(url, token, run_id, timeout, junit, as_json, poll_s) -> None:
    """Follow a run until it ends; exit by its verdict (as run start --wait)."""
    client = _client(url, token)
    run = client.get(f"/api/test-runs/{quote(run_id)}")
    _finish(client, run, True, timeout, junit, as_json, poll_s)


@run_group.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="The run as JSON.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write its JUnit XML report here.")
@_connection
@_calling
def run_show(url, token, run_id, as_json, junit) -> None:
    """One run: status, verdict, and each device's results."""
    client = _client(url, token)
    run = client.get(f"/api/test-runs/{quote(run_id)}")
    if junit:
        _write_junit(client, run_id, junit)
    if as_json:
        _print_json(run)
        return
    progress = Progress(client.base_url)
    click.echo(f"run {run['id']}: {progress._status_line(run)}")
    click.echo(
        f"  environment {run['environment']['name']}, priority {run['priority']}, "
        f"started by {run['started_by']}, created {run['created_at']}"
    )
    devices = {d["id"]: d["name"] for d in run["devices"]}
    cases = {c["id"]: c["name"] for c in run["test_cases"]}
    rows = []
    for result in run["results"]:
        detail = "; ".join(describe_measurement(m) for m in result["measurements"])
        rows.append(
            [
                devices.get(result["device_id"], result["device_id"]),
                cases.get(result["test_case_id"], result["test_case_id"]),
                result["verdict"],
                detail,
            ]
        )
    if rows:
        _table(rows, ["DEVICE", "TEST CASE", "VERDICT", "MEASURED"])


@run_group.command("cancel")
@click.argument("run_id")
@click.option("--reason", default="", help="Why (recorded on the run).")
@_connection
@_calling
def run_cancel(url, token, run_id, reason) -> None:
    """Cancel a waiting, queued or running run; its devices are freed."""
    client = _client(url, token)
    run = client.post(f"/api/test-runs/{quote(run_id)}/cancel", {"reason": reason})
    click.echo(f"run {run['id']}: {run['status']}")


@run_group.command("list")
@click.option("--status", type=click.Choice(RUN_STATUSES))
@click.option("--verdict", type=click.Choice(VERDICTS))
@click.option("--device", help="Only runs on this device (name or id).")
@click.option("--env", "environment", help="Only runs in this environment (name or id).")
@click.option("--case", help="Only runs of this test case (name or id).")
@click.option("--firmware", help="Only runs on devices with this firmware version.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The runs as a JSON list.")
@_connection
@_calling
def run_list(
    url, token, status, verdict, device, environment, case, firmware, limit, as_json
) -> None:
    """The newest runs, filtered."""
    client = _client(url, token)
    query = {
        "status": status,
        "verdict": verdict,
        "device_id": device and resolve(client, "devices", "device", device)["id"],
        "environment_id": environment
        and resolve(client, "environments", "environment", environment)["id"],
        "test_case_id": case and resolve(client, "test-cases", "test case", case)["id"],
        "firmware": firmware,
    }
    runs = client.get_all("/api/test-runs", limit=limit, **query)
    if as_json:
        _print_json(runs)
        return
    _table(
        [
            [
                r["id"],
                r["status"],
                r["verdict"] or "",
                r["created_at"][:19],
                ",".join(c["name"] for c in r["test_cases"]),
                ",".join(d["name"] for d in r["devices"]),
            ]
            for r in runs
        ],
        ["ID", "STATUS", "VERDICT", "CREATED", "TEST CASES", "DEVICES"],
    )


@click.group("devices", cls=ClientGroup)
def devices_group() -> None:
    """The lab's devices on a devicelab server."""


@devices_group.command("list")
@click.option("--status", help="Only devices with this status (available, in_test, offline, ...).")
@click.option("--label", help="Only devices with this label: KEY or KEY:VALUE.")
@click.option("--search", help="Text in name, serial, model, location or firmware.")
@click.option("--json", "as_json", is_flag=True, help="The devices as a JSON list.")
@_connection
@_calling
def devices_list(url, token, status, label, search, as_json) -> None:
    """Every device (retired ones only with --status retired)."""
    client = _client(url, token)
    devices = client.get_all("/api/devices", status=status, label=label, q=search)
    if as_json:
        _print_json(devices)
        return
    _table(
        [
            [
                d["name"],
                d["id"],
                d["status"],
                d["model"],
                d["firmware_version"],
                ",".join(f"{k}={v}" for k, v in sorted(d["labels"].items())),
            ]
            for d in devices
        ],
        ["NAME", "ID", "STATUS", "MODEL", "FIRMWARE", "LABELS"],
    )


# -- test plans ------------------------------------------------------------------------------


def plan_exit_code(plan_run: dict) -> int:
    """As for a run: 0 pass (also marginal), 1 fail, 2 inconclusive, and 3 when a run of the
    plan failed or was aborted (and none failed its criteria)."""
    verdict = plan_run.get("verdict")
    if verdict == "fail":
        return EXIT_FAIL
    if any(r.get("status") in ("failed", "aborted") for r in plan_run["runs"]):
        return EXIT_NOT_COMPLETED
    return {"pass": EXIT_PASS, "marginal": EXIT_PASS}.get(verdict, EXIT_INCONCLUSIVE)


def _plan_line(plan_run: dict) -> str:
    progress = plan_run["progress"]
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(progress["by_status"].items()))
    return (
        f"plan run {plan_run['id']}: {progress['finished']}/{progress['total']} runs finished "
        f"({statuses}), {progress['fraction'] * 100:.0f} %"
    )


def _wait_plan(client: DevicelabClient, plan_run: dict, timeout_s, poll_s: float) -> dict:
    import time

    path = f"/api/plan-runs/{quote(plan_run['id'])}"
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    said = ""
    try:
        while plan_run.get("verdict") is None:
            line = _plan_line(plan_run)
            if line != said:
                _say(f"  {line}")
                said = line
            if deadline is not None and time.monotonic() >= deadline:
                _say(f"plan run {plan_run['id']}: not finished after {timeout_s:g} s: cancelling")
                for run in plan_run["runs"]:
                    if run.get("status") in ("waiting", "queued", "running"):
                        try:
                            client.post(
                                f"/api/test-runs/{quote(run['run_id'])}/cancel",
                                {"reason": f"devicelab plan --timeout {timeout_s:g} s reached"},
                            )
                        except ApiClientError as error:
                            if error.status != 409:  # 409: it ended meanwhile
                                raise
                plan_run = client.get(path)
                if plan_run.get("verdict") is None:
                    time.sleep(poll_s)
                    continue
                break
            time.sleep(poll_s)
            plan_run = client.get(path)
    except KeyboardInterrupt:
        _say(f"interrupted; the plan run goes on: {plan_run['id']}")
        raise click.exceptions.Exit(EXIT_ERROR) from None
    _say(f"  {_plan_line(plan_run)}")
    for run in plan_run["runs"]:
        where = (run.get("environment_name") or run["environment_id"]) + (
            f" × {run['model']}" if run.get("model") else ""
        )
        _say(f"  run {run['run_id']} ({where}): {run.get('status')} {run.get('verdict') or ''}")
    _say(f"plan run {plan_run['id']}: {plan_run.get('verdict')}")
    return plan_run


@click.group("plan", cls=ClientGroup)
def plan_group() -> None:
    """Start test plans on a devicelab server."""


@plan_group.command("start")
@click.argument("plan")
@click.option("--wait", is_flag=True, help="Follow the plan run until every run ended.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    help="With --wait: cancel the runs still going after this many seconds (exit 3).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the (final) plan run as JSON.")
@click.option(
    "--poll-interval",
    "poll_s",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between looks at the plan run.",
)
@_connection
@_calling
def plan_start(url, token, plan, wait, timeout, as_json, poll_s) -> None:
    """Start the test plan PLAN (name or id); with --wait, exit by its overall verdict."""
    if timeout is not None and not wait:
        raise click.UsageError("--timeout needs --wait")
    client = _client(url, token)
    found = resolve(client, "plans", "plan", plan)
    plan_run = client.post(f"/api/plans/{quote(found['id'])}/start", {})
    _say(f"started plan {found['name']}: plan run {plan_run['id']} ({len(plan_run['runs'])} runs)")
    if wait:
        plan_run = _wait_plan(client, plan_run, timeout, poll_s)
    if as_json:
        _print_json(plan_run)
    elif not wait:
        click.echo(plan_run["id"])
    sys.exit(plan_exit_code(plan_run) if wait else EXIT_PASS)
