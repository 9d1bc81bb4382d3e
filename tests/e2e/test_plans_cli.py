"""`devicelab plan start NAME --wait` as a CI job runs it (the installed command in its own
process, a run-scoped service-account token): it starts the plan by name, follows the plan
run and exits by its overall verdict as `run start --wait` does."""

from __future__ import annotations

import json

import pytest

from tests.e2e import test_cli_client as cli_tests
from tests.e2e.test_plans_http import define

# the CI client's fixtures: a served app, a run-scoped token, the installed command
backend, server, ci_token, cli = (
    cli_tests.backend,
    cli_tests.server,
    cli_tests.ci_token,
    cli_tests.cli,
)
finish, measure = cli_tests.finish, cli_tests.measure


def plan_run_started(client, process):
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the command ended: {finish(process)}")
        items = client.get("/api/plan-runs").get_json()["items"]
        if items:
            return items[0]
        time.sleep(0.1)
    raise AssertionError("no plan run appeared")


@pytest.mark.parametrize(("voltage", "code"), [(230, 0), (251.5, 1), (None, 2)])
def test_plan_start_wait_exits_by_the_overall_verdict(cli, client, lab, report, voltage, code):
    assert define(client, lab, device_ids=[lab["devices"][0]["id"]]).status_code == 201
    # only the first case measured: a plan of one case keeps the verdict the voltage's
    client.patch(
        f"/api/plans/{client.get('/api/plans').get_json()['items'][0]['id']}",
        json={"test_case_ids": [lab["cases"][0]["id"]]},
    )
    process = cli.spawn("plan", "start", "Nightly", "--wait", "--json", "--poll-interval", "0.2")
    plan_run = plan_run_started(client, process)
    (entry,) = plan_run["runs"]
    measure(report, lab, {"id": entry["run_id"]}, voltage)
    done = finish(process)
    assert done.returncode == code, done.stderr
    final = json.loads(done.stdout)
    assert final["id"] == plan_run["id"]
    assert final["cause"]["by"] == "ci-firmware@service.invalid"
    assert f"plan run {plan_run['id']}: " in done.stderr


def test_a_cancelled_run_of_the_plan_exits_3_and_unknown_plans_4(cli, client, lab):
    assert define(client, lab, device_ids=[lab["devices"][0]["id"]]).status_code == 201
    process = cli.spawn("plan", "start", "nightly", "--wait", "--poll-interval", "0.2")
    plan_run = plan_run_started(client, process)
    client.post(f"/api/test-runs/{plan_run['runs'][0]['run_id']}/cancel", json={})
    assert finish(process).returncode == 3
    unknown = cli("plan", "start", "weekly")
    assert unknown.returncode == 4 and "unknown plan 'weekly'" in unknown.stderr
