"""Runner callbacks accept only the credential issued for that very run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def start(client, lab, index):
    response = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][index]["id"]],
        },
    )
    assert response.status_code == 201
    return response.get_json()


def test_no_credential_is_401_and_changes_nothing(client, lab):
    run = start(client, lab, 0)
    response = client.post(f"/api/runner/test-runs/{run['id']}/started", json={})
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_run_credential"
    assert client.get(f"/api/test-runs/{run['id']}").get_json()["status"] == "queued"


def test_tampered_credential_is_401(client, lab, report, container):
    run = start(client, lab, 0)
    token = container.run_credentials().issue(run["id"], datetime.now(UTC) + timedelta(hours=1))
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert report(run["id"], "started", {}, token=tampered).status_code == 401
    assert report(run["id"], "started", {}, token="not-a-token").status_code == 401


def test_expired_credential_is_401(client, lab, report, container):
    run = start(client, lab, 0)
    token = container.run_credentials().issue(run["id"], datetime.now(UTC) - timedelta(seconds=1))
    response = report(run["id"], "started", {}, token=token)
    assert response.status_code == 401
    assert "expired" in response.get_json()["message"]


def test_another_runs_credential_is_403(client, lab, report, container):
    first, second = start(client, lab, 0), start(client, lab, 1)
    token = container.run_credentials().issue(first["id"], datetime.now(UTC) + timedelta(hours=1))
    response = report(second["id"], "result", {"results": []}, token=token)
    assert response.status_code == 403
    assert response.get_json()["code"] == "wrong_run_credential"
    assert client.get(f"/api/test-runs/{second['id']}").get_json()["status"] == "queued"


def test_a_second_runner_cannot_take_a_running_run(client, lab, report):
    run = start(client, lab, 0)
    assert report(run["id"], "started", {"runner": "runner-a"}).status_code == 200
    assert report(run["id"], "started", {"runner": "runner-a"}).get_json()["changed"] is False
    clash = report(run["id"], "started", {"runner": "runner-b"})
    assert clash.status_code == 409
    body = clash.get_json()
    assert body["code"] == "run_claimed" and "runner-a" in body["message"]
    # when runner-a's claim lapses unless it reports again: the claim lease (20 s by default)
    assert 1 <= body["retry_after"] <= 20
    assert clash.headers["Retry-After"] == str(body["retry_after"])


def test_a_heartbeat_from_a_runner_that_lost_the_run_is_refused(client, lab, report):
    run = start(client, lab, 0)
    assert report(run["id"], "started", {"runner": "runner-a"}).status_code == 200
    beat = report(run["id"], "progress", {"progress": 0.5, "runner": "runner-a"})
    assert beat.status_code == 200
    lost = report(run["id"], "progress", {"progress": 0.5, "runner": "runner-b"})
    assert lost.status_code == 409
    assert lost.get_json()["code"] == "run_claimed" and "Retry-After" not in lost.headers
    assert client.get(f"/api/test-runs/{run['id']}").get_json()["runner"] == "runner-a"


def test_a_stopping_runner_gives_the_run_back_and_the_next_one_claims_it(client, lab, report):
    run = start(client, lab, 0)
    assert report(run["id"], "started", {"runner": "runner-a"}).status_code == 200
    refused = report(run["id"], "released", {"runner": "runner-b"})
    assert refused.status_code == 200 and refused.get_json()["changed"] is False
    given_back = report(run["id"], "released", {"runner": "runner-a"})
    assert given_back.get_json()["changed"] is True
    assert given_back.get_json()["run"]["runner"] == ""
    claimed = report(run["id"], "started", {"runner": "runner-b"})
    assert claimed.status_code == 200 and claimed.get_json()["run"]["runner"] == "runner-b"


def test_reports_may_carry_fields_of_later_contract_versions(client, lab, report):
    run = start(client, lab, 1)
    response = report(run["id"], "started", {"runner": "r", "capabilities": ["x"]})
    assert response.status_code == 200
