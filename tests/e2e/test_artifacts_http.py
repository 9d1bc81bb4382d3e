"""Artifacts over HTTP: a runner uploads raw bytes with its run's credential; any reader
lists and downloads them, always as an attachment; hostile uploads store nothing. On the
PostgreSQL backend the bytes go to the database (the multi-replica store), elsewhere to
files."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest


def start(client, lab, device=0):
    response = client.post(
        "/api/test-runs",
        json={
            "test_case_ids": [lab["cases"][0]["id"]],
            "environment_id": lab["environment"]["id"],
            "device_ids": [lab["devices"][device]["id"]],
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def upload(client, container):
    def post(run_id, body, token=None, body_type="application/octet-stream", **query):
        if token is None:
            token = container.run_credentials().issue(
                run_id, datetime.now(UTC) + timedelta(hours=1)
            )
        return client.post(
            f"/api/runner/test-runs/{run_id}/artifacts",
            query_string=query,
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": body_type},
        )

    return post


def listed(client, run_id):
    response = client.get(f"/api/test-runs/{run_id}/artifacts")
    assert response.status_code == 200
    return response.get_json()["items"]


def test_an_upload_is_stored_with_size_and_sha256_and_downloads(client, lab, upload, container):
    run = start(client, lab)
    device, case = lab["devices"][0]["id"], lab["cases"][0]["id"]
    body = b"t,voltage\n" + b"0,231.4\n" * 50_000  # larger than the JSON body limit
    response = upload(
        run["id"],
        body,
        name="voltage.csv",
        content_type="text/csv",
        device_id=device,
        test_case_id=case,
    )
    assert response.status_code == 201, response.get_json()
    artifact = response.get_json()["artifact"]
    assert artifact["size"] == len(body)
    assert artifact["sha256"] == hashlib.sha256(body).hexdigest()
    assert (artifact["device_id"], artifact["test_case_id"]) == (device, case)
    assert [a["id"] for a in listed(client, run["id"])] == [artifact["id"]]

    download = client.get(artifact["download_url"])
    assert download.status_code == 200
    assert download.get_data() == body
    assert download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert 'filename="voltage.csv"' in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]


def test_a_viewer_may_download(client, lab, upload, signed_in):
    run = start(client, lab)
    artifact = upload(run["id"], b"x", name="x.bin").get_json()["artifact"]
    viewer = signed_in("viewer")
    assert viewer.get(artifact["download_url"]).get_data() == b"x"


def test_an_html_artifact_downloads_and_never_renders(client, lab, upload):
    run = start(client, lab)
    page = b"<html><script>fetch('/api/devices')</script></html>"
    artifact = upload(run["id"], page, name="report.html", content_type="text/html")
    download = client.get(artifact.get_json()["artifact"]["download_url"])
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["Content-Security-Policy"].startswith("sandbox")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_the_same_file_again_is_no_new_artifact_and_another_file_of_that_name_is_refused(
    client, lab, upload
):
    run = start(client, lab)
    assert upload(run["id"], b"one", name="a.txt").status_code == 201
    again = upload(run["id"], b"one", name="a.txt")
    assert again.status_code == 200 and again.get_json()["created"] is False
    clash = upload(run["id"], b"two", name="a.txt")
    assert clash.status_code == 409
    assert len(listed(client, run["id"])) == 1


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a/b.txt", "..\\x", "..", ".", "C:evil", "bad\nname", "", " ", "x" * 201],
)
def test_a_name_that_is_a_path_or_junk_is_refused(client, lab, upload, name):
    run = start(client, lab)
    response = upload(run["id"], b"x", name=name)
    assert response.status_code == 422, response.get_json()
    assert listed(client, run["id"]) == []


def test_a_file_over_the_limit_is_413_and_nothing_is_stored(client, lab, upload, container):
    container.config.max_artifact_bytes.override(1000)
    run = start(client, lab)
    response = upload(run["id"], b"x" * 1001, name="big.bin")
    assert response.status_code == 413, response.get_json()
    assert response.get_json()["code"] in ("too_large", "payload_too_large")
    assert listed(client, run["id"]) == []
    assert upload(run["id"], b"x" * 1000, name="fits.bin").status_code == 201


def test_a_body_without_length_over_the_limit_is_413(client, lab, container):
    """A chunked upload announces no length: the limit is found by reading."""
    container.config.max_artifact_bytes.override(1000)
    run = start(client, lab)
    token = container.run_credentials().issue(run["id"], datetime.now(UTC) + timedelta(hours=1))
    body = io.BytesIO(b"y" * 5000)
    response = client.post(
        f"/api/runner/test-runs/{run['id']}/artifacts?name=s.bin",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
        environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True},
    )
    environ_length = response.request.environ.get("CONTENT_LENGTH")
    assert environ_length in (None, "", "0")  # nothing announced
    assert response.status_code == 413, response.get_json()
    assert listed(client, run["id"]) == []


def test_the_runs_budget_counts_every_artifact(client, lab, upload, container):
    container.config.max_artifact_bytes_per_run.override(1500)
    run = start(client, lab)
    assert upload(run["id"], b"a" * 1000, name="a.bin").status_code == 201
    response = upload(run["id"], b"b" * 501, name="b.bin")
    assert response.status_code == 413
    assert "run" in response.get_json()["message"]
    assert [a["name"] for a in listed(client, run["id"])] == ["a.bin"]


def test_another_runs_credential_stores_nothing(client, lab, upload, container):
    first, second = start(client, lab, 0), start(client, lab, 1)
    token = container.run_credentials().issue(first["id"], datetime.now(UTC) + timedelta(hours=1))
    assert upload(second["id"], b"x", token=token, name="x.bin").status_code == 403
    assert upload(second["id"], b"x", token="junk", name="x.bin").status_code == 401
    assert listed(client, second["id"]) == []


def test_form_and_json_bodies_are_refused_with_415(client, lab, upload):
    run = start(client, lab)
    assert upload(run["id"], b"{}", body_type="application/json", name="a").status_code == 415
    form = upload(run["id"], b"a=1", body_type="multipart/form-data; boundary=x", name="a")
    assert form.status_code == 415
    assert listed(client, run["id"]) == []


def test_a_device_or_case_not_of_the_run_is_refused(client, lab, upload):
    run = start(client, lab)
    assert upload(run["id"], b"x", name="a", device_id="other").status_code == 422
    assert upload(run["id"], b"x", name="a", test_case_id="other").status_code == 422
    assert upload(run["id"], b"x", name="a", content_type="not a type").status_code == 422
    assert listed(client, run["id"]) == []


def test_a_finished_run_takes_no_artifacts_and_unknown_ones_are_404(client, lab, upload):
    run = start(client, lab)
    client.post(f"/api/test-runs/{run['id']}/cancel", json={})
    assert upload(run["id"], b"x", name="late.bin").status_code == 409
    assert client.get(f"/api/test-runs/{run['id']}/artifacts/nope").status_code == 404
    assert client.get("/api/test-runs/nope/artifacts").status_code == 404
